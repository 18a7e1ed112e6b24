/*
 * The job table: which GIDs run here, as which process and user (docs/DESIGN.md, "Who may bind a GID").
 * A job is known by its PID and the start time /proc gives, so a reused PID is never taken for the
 * job; a pidfd tells the loop when it ends. The table is rewritten whole on every change
 * (STATE/jobs) and read back at start, dropping jobs whose process is gone (and unbinding them).
 *
 * Below the files that act on a job (checkpoint.c, ending.c, fence.c): what a job's events mean
 * to them (a periodic checkpoint due, the process gone, the GID moved, the job freed) goes to one
 * callback that cts.c sets at start (jobs_set_cb), so this file calls none of them by name.
 */
#include <event2/event.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cts/cts.h"

static jobs_cb jobs_event_cb;

void
jobs_set_cb(jobs_cb cb)
{
	jobs_event_cb = cb;
}

static void
jobs_event(struct cts_job *j, enum jobs_event ev, const char *why)
{
	if (jobs_event_cb != NULL)
		jobs_event_cb(j, ev, why);
}

int
user_name(uid_t uid, char *out, size_t len)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL)
		return snprintf(out, len, "%s", pw.pw_name) >= (int)len ? -1 : 0;
	return snprintf(out, len, "uid%u", (unsigned)uid) >= (int)len ? -1 : 0;
}

/*
 * The pidfd taken at bind time (and checked against the start time then) names that one process
 * even after its PID is reused: signal 0 through it fails once it is gone. The start time in /proc
 * is checked again as well, so a PID number alone never decides.
 */
bool
jobs_alive(const struct cts_job *j)
{
	uint64_t start;

	if (j->ended || j->pidfd < 0 || syscall(SYS_pidfd_send_signal, j->pidfd, 0, NULL, 0) != 0)
		return false;
	return proc_stat(j->pid, NULL, NULL, NULL, &start) == 0 && start == j->start;
}

bool
jobs_catches(const struct cts_job *j, int sig)
{
	char path[64], *buf = NULL, *l;
	unsigned long long mask = 0;
	size_t len;

	snprintf(path, sizeof path, "/proc/%d/status", (int)j->pid);
	if (sig < 1 || sig > 64 || !jobs_alive(j) || file_read_all(path, &buf, &len, 65536) != 0)
		return false;
	if ((l = strstr(buf, "\nSigCgt:")) == NULL || sscanf(l, "\nSigCgt: %llx", &mask) != 1)
		mask = 0;
	free(buf);
	return (mask >> (sig - 1)) & 1;
}

int
jobs_signal(const struct cts_job *j, int sig)
{
	if (j->ended || j->pidfd < 0)
		return -1;
	return (int)syscall(SYS_pidfd_send_signal, j->pidfd, sig, NULL, 0);
}

struct cts_job *
jobs_find(struct cts *c, const char *gid)
{
	for (struct cts_job *j = c->jobs; j != NULL; j = j->next) {
		if (strcmp(j->gid, gid) == 0)
			return j;
	}
	return NULL;
}

struct cts_job *
jobs_by_channel(struct cts *c, struct proto_conn *conn)
{
	for (struct cts_job *j = c->jobs; j != NULL; j = j->next) {
		if (j->channel == conn)
			return j;
	}
	return NULL;
}

int
jobs_save(struct cts *c)
{
	char path[PATH_MAX], *buf;
	size_t len = 32, used;
	int rc;

	for (struct cts_job *j = c->jobs; j != NULL; j = j->next)
		len += strlen(j->gid) + 128;
	buf = xmalloc(len);
	used = (size_t)snprintf(buf, len, "gca-jobs 1\n");
	for (struct cts_job *j = c->jobs; j != NULL; j = j->next)
		used += (size_t)snprintf(buf + used, len - used, "job %d %llu %u %u %llu %d %s\n",
		    (int)j->pid, (unsigned long long)j->start, (unsigned)j->uid, (unsigned)j->gidn,
		    (unsigned long long)j->every_ms, j->ended, j->gid);
	snprintf(path, sizeof path, "%s/jobs", c->state);
	if ((rc = file_write_whole(path, buf, used, 0600)) != 0)
		log_error("cannot write the job table %s: %s", path, strerror(errno)); /* keeps errno */
	free(buf);
	return rc;
}

static void
jobs_on_exit(evutil_socket_t fd, short what, void *arg)
{
	struct cts_job *j = arg;

	(void)fd;
	(void)what;
	log_info("job %s (pid %d) ended", j->gid, (int)j->pid);
	jobs_event(j, JOBS_EXITED, NULL);	/* unbinds, once its wrapper said how it ended */
}

static void
jobs_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cts_job *j = arg;

	(void)fd;
	(void)what;
	/* Periodic checkpoints do not pile up behind a slow one. */
	if (j->running == NULL && j->queue == NULL && !j->ended)
		jobs_event(j, JOBS_DUE, NULL);
}

/* Watches the process through a pidfd, checked against the start time after it was opened. */
static int
jobs_watch(struct cts_job *j)
{
	uint64_t start;

	j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
	if (j->pidfd < 0 || proc_stat(j->pid, NULL, NULL, NULL, &start) != 0 || start != j->start) {
		if (j->pidfd >= 0)
			close(j->pidfd);
		j->pidfd = -1;
		return -1;
	}
	j->exit_ev = event_new(j->cts->base, j->pidfd, EV_READ, jobs_on_exit, j);
	event_add(j->exit_ev, NULL);
	if (j->every_ms > 0) {
		uint64_t ms = interval_ms(j);	/* auto: Daly's (interval.c) */
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
		j->timer = event_new(j->cts->base, -1, EV_PERSIST, jobs_on_timer, j);
		event_add(j->timer, &tv);
	}
	return 0;
}

struct cts_job *
jobs_add(struct cts *c, const char *gid, pid_t pid, uint64_t start, uid_t uid, gid_t gidn,
	uint64_t every_ms)
{
	struct cts_job *j = xcalloc(1, sizeof *j);

	j->gid = xstrdup(gid);
	j->pid = pid;
	j->start = start;
	j->uid = uid;
	j->gidn = gidn;
	j->every_ms = every_ms;
	j->pidfd = -1;
	j->cts = c;
	user_name(uid, j->owner, sizeof j->owner);
	if (jobs_watch(j) != 0)
		j->ended = true;
	j->next = c->jobs;
	c->jobs = j;
	return j;
}

void
jobs_set_channel(struct cts_job *j, struct proto_conn *conn)
{
	/* a bound job's channel (GCA_APP_FD, kept across exec) is never cut for being quiet, nor
	 * counted by the per-uid cap (proto_conn_keep) */
	if (conn != NULL) {
		proto_conn_ref(conn);
		proto_conn_keep(conn, true);
	}
	if (j->channel != NULL) {
		proto_conn_keep(j->channel, false);
		proto_conn_unref(j->channel);
	}
	j->channel = conn;
}

static void
jobs_unwatch(struct cts_job *j)
{
	if (j->exit_ev != NULL)
		event_free(j->exit_ev);
	if (j->timer != NULL)
		event_free(j->timer);
	if (j->pidfd >= 0)
		close(j->pidfd);
	j->exit_ev = j->timer = NULL;
	j->pidfd = -1;
	jobs_event(j, JOBS_UNWATCHED, NULL);
}

static void
jobs_free_one(struct cts_job *j)
{
	jobs_event(j, JOBS_FREED, NULL);	/* its checkpoints answered, its restore copy removed */
	jobs_unwatch(j);
	jobs_set_channel(j, NULL);
	free(j->restore_dir);
	free(j->gid);
	free(j);
}

static void
jobs_remove(struct cts *c, struct cts_job *j)
{
	for (struct cts_job **p = &c->jobs; *p != NULL; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			break;
		}
	}
	jobs_free_one(j);
	jobs_save(c);
}

static void
jobs_on_unbound(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts_job *j = arg;

	(void)body;
	j->unbinding = false;
	/* not_found / conflict: the directory no longer gives this GID to us; nothing to undo. */
	if (code != NULL && strcmp(code, PROTO_E_NOT_FOUND) != 0 && strcmp(code, PROTO_E_CONFLICT) != 0) {
		log_warn("cannot unbind %s at the GCS: %s: %s (retrying)", j->gid, code, msg);
		return;
	}
	log_info("job %s finished and unbound%s%s", j->gid, code ? ": " : "", code ? msg : "");
	if (j->running == NULL)
		jobs_remove(j->cts, j);
}

void
jobs_local_id(pid_t pid, uint64_t start, char *out, size_t len)
{
	snprintf(out, len, "%d:%llu", (int)pid, (unsigned long long)start);
}

static void
jobs_unbind(struct cts_job *j)
{
	char local_id[64];
	/* local_id: a late unbind must not end a binding made since by another process */
	struct msg_job_unbind b = { j->gid, j->cts->name, "finished",
		j->exit_known ? j->exit_status : -1, local_id };

	if (j->unbinding)
		return;
	jobs_local_id(j->pid, j->start, local_id, sizeof local_id);
	j->unbinding = true;
	gcslink_request(j->cts, "job_unbind", &b, jobs_on_unbound, j);
}

void
jobs_ended(struct cts_job *j)
{
	j->ended = true;
	jobs_unwatch(j);
	jobs_event(j, JOBS_GONE, NULL);
	jobs_save(j->cts);
	jobs_unbind(j);
}

/* j's GID is bound to another process now (recovered elsewhere or here, its old process still
 * alive: the GCS said so with job_moved, refused a record of it, or its entry said so after a
 * registration): the old process is stopped (fence.c, unless fence none), no longer watched or
 * checkpointed here, and not unbound either (the binding is not this process's). */
void
jobs_moved(struct cts_job *j, const char *why)
{
	log_warn("job %s (pid %d) is no longer watched here: %s", j->gid, (int)j->pid, why);
	if (!j->ended)
		jobs_event(j, JOBS_MOVED, why);	/* one live copy: before the pidfd is let go */
	jobs_unwatch(j);
	jobs_event(j, JOBS_GONE, NULL);	/* before ended: a checkpoint it ends must not remove j under us */
	j->ended = j->moved = true;
	if (j->running == NULL)
		jobs_remove(j->cts, j);
	else
		jobs_save(j->cts);	/* removed once its checkpoint is over (jobs_retry_unbind) */
}

/* The GCS says a GID this CTS held was bound elsewhere (a recovery on another CTS while its
 * process still runs here): that process is no longer watched or checkpointed here. local_id
 * names the process the move replaced, so a late message never forgets a newer binding. */
void
jobs_on_moved(struct proto_req *r, void *ctx)
{
	struct msg_job_moved *m = r->body;
	struct cts_job *j = jobs_find(ctx, m->gid);
	char local_id[64], why[512];

	if (j == NULL) {
		/* not (yet) here: its bind's answer may still be on its way; the GCS asks again */
		proto_reply_err(r, PROTO_E_NOT_FOUND, "GID %s is not held here", m->gid);
		return;
	}
	if (!j->ended) {
		jobs_local_id(j->pid, j->start, local_id, sizeof local_id);
		if (m->local_id == NULL || strcmp(m->local_id, local_id) == 0) {
			snprintf(why, sizeof why, "the GCS says GID %s moved to CTS %s", m->gid, m->cts);
			jobs_moved(j, why);
		}
	}
	proto_reply_ok(r, r->pt->reply, NULL);
}

void
jobs_retry_unbind(struct cts *c)
{
	struct cts_job *j, *next;

	for (j = c->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->ended && j->running == NULL) {
			if (j->moved)
				jobs_remove(c, j);
			else
				jobs_unbind(j);
		}
	}
}

int
jobs_load(struct cts *c, char *err, size_t errlen)
{
	char path[PATH_MAX], *buf, *line, *save = NULL;
	size_t len;

	snprintf(path, sizeof path, "%s/jobs", c->state);
	if (file_read_all(path, &buf, &len, 64 << 20) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "job table %s: cannot read it: %s", path, strerror(errno));
		return -1;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		int pid, ended, n = 0;
		unsigned long long start, every;
		unsigned uid, gidn;
		struct cts_job *j;

		if (strncmp(line, "job ", 4) != 0)
			continue;
		if (sscanf(line, "job %d %llu %u %u %llu %d %n", &pid, &start, &uid, &gidn, &every,
		    &ended, &n) != 6 || n == 0 || !name_valid(line + n)) {
			log_warn("job table %s: bad line skipped: %.80s", path, line);
			continue;
		}
		j = jobs_add(c, line + n, pid, start, uid, gidn, every);
		if (j->ended || ended)
			log_info("job %s (pid %d) ended while the CTS was away: unbinding it", j->gid, pid);
		else
			log_info("job %s (pid %d) still runs: watching it again", j->gid, pid);
		j->ended = j->ended || ended;
		j->reloaded = true;
	}
	free(buf);
	/* rewritten at once (the jobs found gone are marked ended): a state disk that cannot take
	 * it (full, read-only) stops the start here, saying so, rather than at the first bind */
	if (jobs_save(c) != 0) {
		snprintf(err, errlen, "job table %s: cannot write it: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

void
jobs_free(struct cts *c)
{
	while (c->jobs != NULL) {
		struct cts_job *j = c->jobs;
		c->jobs = j->next;
		jobs_free_one(j);
	}
}
