/*
 * Slow work off the loop: copying and hashing images, running criu, removing images. A forked
 * child runs the function and writes its one-line result into a pipe; the loop reads it and reaps
 * the child. The child touches only files and exits with _exit, so nothing of the parent's state
 * (TLS connections, the event base) is used twice. Each child leads its own process group, so
 * child_kill ends it with whatever it started (criu, a shell), and a terminal's ^C to the CTS does
 * not reach it.
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cts/cts.h"

struct child {
	pid_t		 pid;
	int		 fd;
	struct event	*ev;
	char		 out[CHILD_OUT + 2];
	size_t		 used;
	void		(*done)(bool ok, const char *out, void *arg);
	void		*arg;
	bool		 remover;	/* only removes files (child_mark_remover) */
	struct child	*next;
};

/* The children running now (one CTS per process). */
static struct child *child_list;

static void
child_unlink(struct child *ch)
{
	for (struct child **p = &child_list; *p != NULL; p = &(*p)->next) {
		if (*p == ch) {
			*p = ch->next;
			return;
		}
	}
}

/* The child is reaped: its result goes to whoever asked. */
static void
child_finish(struct child *ch, int status)
{
	bool ok;

	ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && ch->used >= 2 && ch->out[0] == '0';
	if (ch->used < 2)
		snprintf(ch->out, sizeof ch->out, "1 the worker process died (%s %d)",
		    WIFSIGNALED(status) ? "signal" : "status",
		    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	child_unlink(ch);
	if (ch->ev != NULL)
		event_free(ch->ev);
	if (ch->fd >= 0)
		close(ch->fd);
	ch->done(ok, ch->out + 2, ch->arg);
	free(ch);
}

/* The child's pidfd is readable: it has exited. */
static void
child_on_exit(evutil_socket_t fd, short what, void *arg)
{
	struct child *ch = arg;
	int status = 0;

	(void)fd;
	(void)what;
	if (waitpid(ch->pid, &status, WNOHANG) == 0)
		return;		/* not yet, after all: the event stays */
	child_finish(ch, status);
}

static void
child_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct child *ch = arg;
	struct event_base *base = event_get_base(ch->ev);
	ssize_t n;
	int status = 0, pidfd;
	pid_t r;

	(void)what;
	n = read(fd, ch->out + ch->used, CHILD_OUT - ch->used);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		ch->used += (size_t)n;
		if (ch->used < CHILD_OUT)
			return;
	}
	/* EOF (or full): the child is done, but may still be exiting (unmapping its copy of the
	 * CTS takes a while): reap it now if it is gone, else when its pidfd says so, so the loop
	 * never waits for a child's exit */
	ch->out[ch->used] = '\0';
	while ((r = waitpid(ch->pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r != 0) {
		child_finish(ch, status);
		return;
	}
	event_free(ch->ev);
	close(ch->fd);
	if ((pidfd = (int)syscall(SYS_pidfd_open, ch->pid, 0)) < 0) {
		while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
			;
		ch->fd = -1;
		ch->ev = NULL;
		child_finish(ch, status);
		return;
	}
	ch->fd = pidfd;
	ch->ev = event_new(base, pidfd, EV_READ | EV_PERSIST, child_on_exit, ch);
	event_add(ch->ev, NULL);
}

int
child_run(struct cts *c, child_fn fn, void *fn_arg, void (*done)(bool ok, const char *out,
	void *arg), void *arg)
{
	struct child *ch;
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	ch = xcalloc(1, sizeof *ch);
	if ((ch->pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		free(ch);
		return -1;
	}
	if (ch->pid == 0) {
		char out[CHILD_OUT];
		int rc;

		setpgid(0, 0);
		close(p[0]);
		out[0] = '\0';
		rc = fn(fn_arg, out, sizeof out - 2);
		dprintf(p[1], "%d %s", rc == 0 ? 0 : 1, out);
		_exit(0);
	}
	setpgid(ch->pid, ch->pid);	/* as the child does: whichever runs first */
	close(p[1]);
	ch->fd = p[0];
	ch->done = done;
	ch->arg = arg;
	ch->ev = event_new(c->base, ch->fd, EV_READ | EV_PERSIST, child_on_read, ch);
	event_add(ch->ev, NULL);
	ch->next = child_list;
	child_list = ch;
	return 0;
}

int
child_kill(const void *arg)
{
	int n = 0;

	for (struct child *ch = child_list; ch != NULL; ch = ch->next) {
		if (ch->arg != arg)
			continue;
		/* the whole group: criu and the helpers it ran end with the worker */
		if (kill(-ch->pid, SIGKILL) != 0)
			kill(ch->pid, SIGKILL);
		n++;
	}
	return n;
}

bool
child_any(void)
{
	return child_list != NULL;
}

void
child_mark_remover(const void *arg)
{
	for (struct child *ch = child_list; ch != NULL; ch = ch->next)
		if (ch->arg == arg)
			ch->remover = true;
}

bool
child_any_writing(void)
{
	for (struct child *ch = child_list; ch != NULL; ch = ch->next)
		if (!ch->remover)
			return true;
	return false;
}
