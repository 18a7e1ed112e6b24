/*
 * One live copy per job (docs/DESIGN.md, "One live copy"; docs/ARCHITECTURE.md, "Fencing").
 *
 * When a GID's binding moves away from a process here (recovered on another resource or on this
 * one, or a simultaneous bind lost), that process is stopped, unless cts.conf says `fence none`.
 * What is stopped is the whole job: a criu job's PID-namespace init (gca-exec stays its parent;
 * a restored job is bound as the init itself), whose death ends every process of the namespace;
 * otherwise the bound process, and its whole process group when it leads one. SIGTERM first,
 * SIGKILL after fence_grace, from timers: the loop never waits. Every signal goes through a pidfd
 * taken while the bound process was known alive (its start time re-checked), so a reused PID is
 * never hit; a process group is signalled only while its leader is still that process.
 *
 * The stop is logged and reported to the GCS as job_unbind {state: fenced, local_id}: the GCS
 * writes it on the job entry (gcaProperty fenced=CTS/LOCAL_ID) and publishes a "fenced" event. A
 * report the GCS did not take (this CTS away) is sent again after the next registration.
 *
 * A move made while this CTS could not be told (its link cut, the CTS stopped) is found at the
 * next registration: fence_check asks the GCS for the job entry of every job held here.
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cts/cts.h"

struct fence {
	struct cts	*cts;
	char		*gid;
	char		 local_id[64];	/* the bound process's, as the directory knew it */
	pid_t		 pid;		/* the process stopped: the namespace's init or the bound one */
	uint64_t	 start;
	int		 pidfd;		/* -1 once it is gone */
	bool		 group;		/* it leads its process group: the group gets the signals */
	bool		 killed;	/* SIGKILL sent */
	bool		 reporting, reported;
	struct event	*timer, *gone;
	struct fence	*next;
};

/* The fences of this process (one CTS per process): freed once stopped and reported. */
static struct fence *fence_list;

/* f's process is still the one it was: its pidfd answers and its start time is the same. */
static bool
fence_alive(const struct fence *f)
{
	uint64_t start;

	return f->pidfd >= 0 && syscall(SYS_pidfd_send_signal, f->pidfd, 0, NULL, 0) == 0 &&
	    proc_stat(f->pid, NULL, NULL, NULL, &start) == 0 && start == f->start;
}

static void
fence_signal(struct fence *f, int sig)
{
	if (!fence_alive(f))
		return;
	/* the leader is alive and is our process: the group is its group */
	if (f->group && getpgid(f->pid) == f->pid && kill(-f->pid, sig) == 0)
		return;
	syscall(SYS_pidfd_send_signal, f->pidfd, sig, NULL, 0);
}

static void
fence_free_one(struct fence *f)
{
	for (struct fence **p = &fence_list; *p != NULL; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			break;
		}
	}
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->gone != NULL)
		event_free(f->gone);
	if (f->pidfd >= 0)
		close(f->pidfd);
	free(f->gid);
	free(f);
}

static void
fence_maybe_free(struct fence *f)
{
	if (f->pidfd < 0 && f->reported)
		fence_free_one(f);
}

static void
fence_on_reported(const char *code, const char *msg, const void *body, void *arg)
{
	struct fence *f = arg;

	(void)body;
	f->reporting = false;
	if (code != NULL && strcmp(code, PROTO_E_CONFLICT) != 0 &&
	    strcmp(code, PROTO_E_NOT_FOUND) != 0 && strcmp(code, PROTO_E_BAD_FIELD) != 0) {
		log_warn("job %s: cannot report its old copy (%s) fenced to the GCS: %s: %s (again "
		    "after the next registration)", f->gid, f->local_id, code, msg);
		return;
	}
	if (code != NULL)
		log_warn("job %s: the GCS did not record its old copy (%s) fenced: %s: %s", f->gid,
		    f->local_id, code, msg);
	f->reported = true;
	fence_maybe_free(f);
}

static void
fence_report(struct fence *f)
{
	struct msg_job_unbind b = { f->gid, f->cts->name, "fenced", -1, f->local_id };

	if (f->reporting || f->reported || !f->cts->registered)
		return;
	f->reporting = true;
	gcslink_request(f->cts, "job_unbind", &b, fence_on_reported, f);
}

static void
fence_on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct fence *f = arg;

	(void)fd;
	(void)what;
	log_info("job %s: its old copy (pid %d) is stopped%s", f->gid, (int)f->pid,
	    f->killed ? " (SIGKILL)" : "");
	event_del(f->timer);
	close(f->pidfd);
	f->pidfd = -1;
	fence_maybe_free(f);
}

static void
fence_on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct fence *f = arg;

	(void)fd;
	(void)what;
	if (!fence_alive(f))
		return;
	log_warn("job %s: its old copy (pid %d) is still there after %d ms: SIGKILL", f->gid,
	    (int)f->pid, f->cts->fence_grace_ms);
	f->killed = true;
	fence_signal(f, SIGKILL);
}

/* A pidfd of root, taken while bound (j) is alive and root is j or j's child: never another
 * process than the job's. -1 if that cannot be made sure. */
static int
fence_pidfd(const struct cts_job *j, pid_t root, uint64_t *start)
{
	pid_t ppid;
	int fd;

	if (root == j->pid) {
		*start = j->start;
		return fcntl(j->pidfd, F_DUPFD_CLOEXEC, 3);
	}
	if ((fd = (int)syscall(SYS_pidfd_open, root, 0)) < 0)
		return -1;
	if (proc_stat(root, &ppid, NULL, NULL, start) != 0 || ppid != j->pid || !jobs_alive(j)) {
		close(fd);
		return -1;
	}
	return fd;
}

void
fence_stop(struct cts_job *j, const char *why)
{
	struct cts *c = j->cts;
	struct timeval tv = { c->fence_grace_ms / 1000, (c->fence_grace_ms % 1000) * 1000 };
	struct fence *f;
	pid_t root;

	if (c->fence_none) {
		log_warn("job %s (pid %d): %s; its copy here is left running (fence none)", j->gid,
		    (int)j->pid, why);
		return;
	}
	if (!jobs_alive(j))
		return;
	f = xcalloc(1, sizeof *f);
	f->cts = c;
	f->gid = xstrdup(j->gid);
	jobs_local_id(j->pid, j->start, f->local_id, sizeof f->local_id);
	root = proc_job_root(j->pid);
	if ((f->pidfd = fence_pidfd(j, root, &f->start)) < 0 && root != j->pid) {
		root = j->pid;		/* the init went meanwhile: the bound process itself */
		f->pidfd = fence_pidfd(j, root, &f->start);
	}
	f->pid = root;
	f->group = getpgid(root) == root;
	f->next = fence_list;
	fence_list = f;
	if (f->pidfd < 0) {
		log_error("job %s (pid %d): %s; cannot hold it to stop it: %s", j->gid, (int)j->pid,
		    why, strerror(errno));
	} else {
		log_warn("job %s (pid %d): %s; stopping its copy here: SIGTERM to %s %d, SIGKILL "
		    "after %d ms", j->gid, (int)j->pid, why, f->group ? "process group" : "process",
		    (int)root, c->fence_grace_ms);
		f->timer = event_new(c->base, -1, 0, fence_on_grace, f);
		f->gone = event_new(c->base, f->pidfd, EV_READ, fence_on_gone, f);
		event_add(f->gone, NULL);
		event_add(f->timer, &tv);
		fence_signal(f, SIGTERM);
	}
	fence_report(f);
}

/* ---- after (re)registering: what moved while we were away ---- */

struct fence_ask {
	struct cts	*cts;
	char		*gid;
	char		 local_id[64];
};

static const char *
fence_attr(const struct proto_entry *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++) {
		if (strcasecmp(e->attrs[i].name, name) == 0 && e->attrs[i].vals.n > 0)
			return e->attrs[i].vals.v[0];
	}
	return NULL;
}

static void
fence_on_entry(const char *code, const char *msg, const void *body, void *arg)
{
	struct fence_ask *a = arg;
	const struct msg_query_ok *ok = body;
	struct cts_job *j = jobs_find(a->cts, a->gid);
	const char *holder, *local;
	char mine[64], why[700];

	if (code != NULL) {
		log_info("job %s: cannot ask the GCS whether it is still bound here: %s: %s", a->gid,
		    code, msg);
		goto out;
	}
	if (j == NULL || j->ended || j->moved || ok->entries.n == 0)
		goto out;
	jobs_local_id(j->pid, j->start, mine, sizeof mine);
	if (strcmp(mine, a->local_id) != 0)
		goto out;		/* another process holds the GID here since we asked */
	holder = fence_attr(&ok->entries.v[0], "gcaCTSName");
	local = fence_attr(&ok->entries.v[0], "gcaLocalId");
	if (holder == NULL || local == NULL)
		goto out;
	if (strcmp(holder, a->cts->name) != 0 || strcmp(local, mine) != 0) {
		snprintf(why, sizeof why, "the directory binds GID %s to CTS %s (process %s) now, "
		    "a move made while this CTS was away", a->gid, holder, local);
		jobs_moved(j, why);
	}
out:
	free(a->gid);
	free(a);
}

void
fence_check(struct cts *c)
{
	for (struct fence *f = fence_list; f != NULL; f = f->next)
		fence_report(f);
	for (struct cts_job *j = c->jobs; j != NULL; j = j->next) {
		struct msg_query q = { .what = "jobs", .gid = j->gid, .limit = 1 };
		struct fence_ask *a;

		if (j->ended || j->moved)
			continue;
		a = xcalloc(1, sizeof *a);
		a->cts = c;
		a->gid = xstrdup(j->gid);
		jobs_local_id(j->pid, j->start, a->local_id, sizeof a->local_id);
		gcslink_request(c, "query", &q, fence_on_entry, a);
	}
}

void
fence_free(void)
{
	while (fence_list != NULL)
		fence_free_one(fence_list);
}
