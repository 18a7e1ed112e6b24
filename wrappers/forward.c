/*
 * A resident wrapper's signals (wrapper.h): the signals a job would get from whoever started it
 * are caught and passed on to the job, and the wrapper waits for the job and returns its status.
 * gca-recover does it for a restored job, gca-exec for every job it starts, and a criu job's
 * namespace's init (pidns.c) for the job inside it. A job the wrapper forks is held until the CTS
 * has bound its pid (wrapper_hold).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "wrappers/wrapper.h"

/* The signals passed on to the job. */
static const int forward_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP,
};

static volatile sig_atomic_t forward_job;	/* the pid signals go to; 0 before the job exists */
static volatile sig_atomic_t forward_job_our_pgrp;	/* the job is in our process group */
static sigset_t forward_orig_mask;		/* the mask we were started with, for children */

static void
forward_on_signal(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	pid_t job = forward_job;

	(void)uctx;
	/*
	 * A signal from the terminal (^C, ^Z, ^\, hang-up) goes to the whole foreground process
	 * group: a job in our group has had it already, and must not get it twice.
	 * SIGTSTP is caught, so we do not stop ourselves; only the job does.
	 */
	if (info->si_code == SI_KERNEL && forward_job_our_pgrp)
		job = 0;
	if (job > 0)
		kill(job, sig);
	errno = saved;
}

/*
 * Forwarded signals are caught from the start but blocked until the job's pid is known, so one
 * that arrives before there is a job is passed on once there is one rather than lost.
 */
void
forward_setup(void)
{
	struct sigaction sa = { .sa_sigaction = forward_on_signal,
	    .sa_flags = SA_RESTART | SA_SIGINFO };
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < GCA_NITEMS(forward_signals); i++) {
		sigaddset(&block, forward_signals[i]);
		sigaddset(&sa.sa_mask, forward_signals[i]);
	}
	sigprocmask(SIG_BLOCK, &block, &forward_orig_mask);
	for (size_t i = 0; i < GCA_NITEMS(forward_signals); i++)
		sigaction(forward_signals[i], &sa, NULL);
}

void
forward_start(pid_t job)
{
	forward_job_our_pgrp = getpgid(job) == getpgrp();
	forward_job = job;
	sigprocmask(SIG_SETMASK, &forward_orig_mask, NULL);
}

void
forward_reset(void)
{
	for (size_t i = 0; i < GCA_NITEMS(forward_signals); i++)
		signal(forward_signals[i], SIG_DFL);
	wrapper_sigpipe_restore();
	sigprocmask(SIG_SETMASK, &forward_orig_mask, NULL);
}

int
forward_wait(const char *prog, pid_t job)
{
	int status;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: lost the job (pid %ld): %s\n", prog, (long)job,
			    strerror(errno));
			return 1;
		}
		if (pid != job)
			continue;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
	}
}

void
forward_kill(pid_t job)
{
	kill(job, SIGKILL);
	while (waitpid(job, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- a job held until it is bound ---- */

/* Reads the whole pipe: the records, then EOF. */
static char *
wrapper_hold_read(int fd, size_t *len)
{
	char *buf = malloc(WRAPPER_ENV_MAX);
	size_t n = 0;
	ssize_t got;

	if (buf == NULL)
		return NULL;
	while (n < WRAPPER_ENV_MAX) {
		got = read(fd, buf + n, WRAPPER_ENV_MAX - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return NULL;
		}
		if (got == 0)
			break;
		n += got;
	}
	*len = n;
	return buf;
}

/* The forked job: waits for its environment, then becomes the job. Never returns. */
static void GCA_NORETURN
wrapper_hold_child(const char *prog, char **job, pid_t parent, int rfd)
{
	size_t len, n;
	char *buf, *p, *end;
	bool ended = false;

	/* The job goes with its wrapper: whoever kills the wrapper with SIGKILL (which it cannot
	 * pass on) kills the job, as when the job ran in the wrapper's place. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	if ((buf = wrapper_hold_read(rfd, &len)) == NULL)
		_exit(127);
	close(rfd);
	for (p = buf, end = buf + len; p < end; p += n + 1) {
		n = strnlen(p, end - p);
		if (p + n == end)		/* a record cut short: the parent died mid-way */
			break;
		if (n == 0) {
			ended = true;
			break;
		}
		if (wrapper_setenv(p) != 0)
			_exit(127);
	}
	if (!ended)
		_exit(127);		/* the bind failed: the job must not run */
	free(buf);
	forward_reset();
	execvp(job[0], job);
	fprintf(stderr, "%s: cannot run %s: %s\n", prog, job[0], strerror(errno));
	_exit(127);
}

pid_t
wrapper_hold(const char *prog, char **job, int keep_fd, int *wfd)
{
	pid_t parent = getpid(), pid;
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[1]);
		/* The job owns the conversation with the CTS from now on. */
		if (keep_fd >= 0 && wrapper_keep_fd(keep_fd) != 0)
			_exit(127);
		wrapper_hold_child(prog, job, parent, p[0]);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

int
wrapper_hold_put(int wfd, const char *name, const char *value)
{
	char *kv;
	const char *q;
	size_t n;
	int rc = 0;

	if (value == NULL) {
		kv = strdup(name);
	} else if (asprintf(&kv, "%s=%s", name, value) < 0) {
		kv = NULL;
	}
	if (kv == NULL)
		return -1;
	for (q = kv, n = strlen(kv) + 1; n > 0 && rc == 0; ) {
		ssize_t w = write(wfd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = -1;
		else
			q += w, n -= (size_t)w;
	}
	free(kv);
	return rc;
}

int
wrapper_hold_release(int wfd, bool go)
{
	ssize_t w = 0;

	while (go && (w = write(wfd, "", 1)) < 0 && errno == EINTR)	/* the end marker */
		;
	close(wfd);
	return go && w == 1 ? 0 : -1;
}
