/*
 * How a job ended (docs/DESIGN.md, "One live copy"; docs/ARCHITECTURE.md, "Jobs end").
 *
 * The CTS watches the bound process through a pidfd, but it is not that process's parent, so it
 * cannot read its exit status. The resident wrappers (gca-exec, gca-recover) are: they reap the
 * job, and before exiting send local_exit {gid, pid, exit_status}. A wrapper that bound its child
 * is recorded at bind time (its pid, start time and a pidfd); when the job's process goes first,
 * the unbind waits for the wrapper's word, at most ENDING_WAIT_MS and no longer than the wrapper
 * lives. A wrapper that bound itself (gca-exec of a criu job) says the status before it exits, so
 * nothing waits then. The status reaches the job entry as gcaExitStatus through job_unbind.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cts/cts.h"

void
ending_set_wrapper(struct cts_job *j, pid_t pid)
{
	uint64_t start;
	int fd;

	if (pid <= 0 || pid == j->pid || j->wrapper > 0)
		return;
	/* the pidfd is taken first and the start time checked after: it names that one process */
	if ((fd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
		return;
	if (proc_stat(pid, NULL, NULL, NULL, &start) != 0) {
		close(fd);
		return;
	}
	j->wrapper = pid;
	j->wrapper_start = start;
	j->wrapper_pidfd = fd;
}

/* The wrapper still runs: the same process as at bind time. */
static bool
ending_wrapper_alive(const struct cts_job *j)
{
	uint64_t start;

	return j->wrapper > 0 && syscall(SYS_pidfd_send_signal, j->wrapper_pidfd, 0, NULL, 0) == 0 &&
	    proc_stat(j->wrapper, NULL, NULL, NULL, &start) == 0 && start == j->wrapper_start;
}

void
ending_unwatch(struct cts_job *j)
{
	if (j->exit_wait_ev != NULL)
		event_free(j->exit_wait_ev);
	if (j->exit_wait_timer != NULL)
		event_free(j->exit_wait_timer);
	j->exit_wait_ev = j->exit_wait_timer = NULL;
	if (j->wrapper > 0)
		close(j->wrapper_pidfd);
	j->wrapper = 0;
}

/* The wait is over: the wrapper spoke, went away, or took too long. */
static void
ending_on_wait(evutil_socket_t fd, short what, void *arg)
{
	struct cts_job *j = arg;

	(void)fd;
	if (!j->exit_known)
		log_warn("job %s (pid %d) ended; its wrapper (pid %d) %s without saying its exit "
		    "status", j->gid, (int)j->pid, (int)j->wrapper,
		    (what & EV_TIMEOUT) ? "took too long" : "ended");
	jobs_ended(j);
}

void
ending_on_exit(struct cts_job *j)
{
	struct timeval tv = { ENDING_WAIT_MS / 1000, (ENDING_WAIT_MS % 1000) * 1000 };

	if (j->exit_known || !ending_wrapper_alive(j)) {
		jobs_ended(j);
		return;
	}
	if (j->exit_wait_ev != NULL)
		return;
	/* the wrapper reaps the job and then says how it ended; the loop goes on meanwhile */
	j->exit_wait_ev = event_new(j->cts->base, j->wrapper_pidfd, EV_READ, ending_on_wait, j);
	j->exit_wait_timer = event_new(j->cts->base, -1, 0, ending_on_wait, j);
	event_add(j->exit_wait_ev, NULL);
	event_add(j->exit_wait_timer, &tv);
}

/* local_exit: only the bound process itself or the wrapper that bound it may say how it ended. */
void
ending_local_exit(struct proto_req *r, void *ctx)
{
	struct msg_local_exit *m = r->body;
	struct cts_job *j = jobs_find(ctx, m->gid);
	uint64_t start;

	if (j == NULL || j->moved || j->pid != (pid_t)m->pid) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "GID %s is not bound here to pid %llu", m->gid,
		    (unsigned long long)m->pid);
		return;
	}
	if (m->exit_status < 0 || m->exit_status > 255) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "exit_status %lld is not 0..255",
		    (long long)m->exit_status);
		return;
	}
	if (r->peer.pid != j->pid && (j->wrapper <= 0 || r->peer.pid != j->wrapper ||
	    proc_stat(j->wrapper, NULL, NULL, NULL, &start) != 0 || start != j->wrapper_start)) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "pid %d is neither GID %s's process nor the "
		    "wrapper that bound it", (int)r->peer.pid, m->gid);
		return;
	}
	if (j->ended) {
		proto_reply_err(r, PROTO_E_CONFLICT, "GID %s is already being unbound", m->gid);
		return;
	}
	j->exit_known = true;
	j->exit_status = m->exit_status;
	log_info("job %s (pid %d) exit status %lld", j->gid, (int)j->pid, (long long)m->exit_status);
	proto_reply_ok(r, r->pt->reply, NULL);
	if (j->exit_wait_ev != NULL)
		jobs_ended(j);
}
