/*
 * gca-exec: starts a job under a CTS (paper 5.1, flow "A job starts").
 *
 * It binds the job's GID to the CTS on the CTS's unix socket (local_bind) and sets the
 * environment the CTS's parameter patterns ask for. It stays resident for every core service,
 * the job's parent and the process whoever started us waits for: signals we get go to the job,
 * we exit with the job's status, and before that we tell the CTS how the job ended (local_exit:
 * the job entry's gcaExitStatus). A SIGKILL cannot be passed on; the job dies with us then
 * (PR_SET_PDEATHSIG).
 *
 * For the app core service (and any but criu) the job is forked first and held on a pipe
 * (wrapper_hold), the CTS binds its pid, and then it runs with the socket kept across exec
 * (GCA_APP_FD): the job's gca_app library answers app_save on it.
 *
 * For criu the socket is closed (criu refuses to dump a process holding a unix socket to an
 * outside peer) and the job runs in a PID namespace of its own under a small init (pidns.c), so
 * that a restore, which gives the job its old pids, never collides with a copy still running.
 * The CTS binds us and dumps the init's tree (cts/core/criu.c finds it as our child); kill the
 * init (our child) to kill the job.
 *
 * An ordinary user's criu job has no PID namespace (making one takes root, and criu cannot dump a
 * user's job inside one: docs/ARCHITECTURE.md, "The privilege line"). For criu the job is then our
 * child from the start, waiting on a pipe: the GID is bound to it (the tree the CTS dumps, as its
 * user, through gca-criu-helper), it gets the CTS's parameters over the pipe, leads a session of
 * its own and execs, without the socket. We stay resident and pass signals on as for root's jobs;
 * a SIGKILL to the job itself ends it.
 *
 * Exit status: the job's, 128+N when signal N ended it; 1 the job was not started (no CTS,
 * refused, no PID namespace); 2 usage; 127 the job cannot be run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/wrapper.h"

static const char exec_usage_text[] =
    "usage: gca-exec --gid GID [--cts SOCKET] [--checkpoint-every DURATION|auto] -- JOB [ARGS...]\n";

static const char exec_help_text[] =
    "  --gid GID                  the job's grid identifier\n"
    "  --cts SOCKET               the CTS's unix socket (default: $GCA_CTS_SOCKET)\n"
    "  --checkpoint-every DURATION  ask the CTS for periodic checkpoints (30s, 5m, 2h); auto:\n"
    "                             the CTS sets the interval from their cost and the MTBF\n"
    "See gca-exec(1).\n";

static int
exec_usage(void)
{
	fputs(exec_usage_text, stderr);
	return 2;
}

/* Expands every parameter the CTS gave ({pid}: the job's) and hands it to the job (wfd, see
 * wrapper_hold), or sets it here (wfd -1: the criu job inherits our environment); on error
 * says which and returns -1. */
static int
exec_params(const struct msg_local_bind_ok *ok, const char *gid, pid_t job, int wfd)
{
	char pid[24], err[512], *kv;
	int rc;

	snprintf(pid, sizeof pid, "%ld", (long)job);
	const struct wrapper_var vars[] = {
		{ "gid", gid }, { "cts", ok->cts }, { "pid", pid },
		{ "core_service", ok->core_service },
	};
	for (size_t i = 0; i < ok->params.n; i++) {
		if ((kv = wrapper_expand(ok->params.v[i], vars, GCA_NITEMS(vars), err,
		    sizeof err)) == NULL) {
			fprintf(stderr, "gca-exec: CTS %s: %s; the job is not started\n", ok->cts, err);
			return -1;
		}
		rc = wfd >= 0 ? wrapper_hold_put(wfd, kv, NULL) : wrapper_setenv(kv);
		if (rc != 0) {
			fprintf(stderr, "gca-exec: cannot set %s: %s; the job is not started\n", kv,
			    strerror(errno));
			free(kv);
			return -1;
		}
		free(kv);
	}
	return 0;
}

/* The job runs, bound as pid job: signals go to it; its status is ours and the CTS is told it. */
static int
exec_watch(const char *gid, const char *socket, pid_t job, pid_t bound)
{
	int status;

	forward_start(job);
	status = forward_wait("gca-exec", job);
	wrapper_report_exit("gca-exec", socket, gid, bound, status);
	return status;
}

/* The criu job: bound as us (the CTS dumps our child's tree), in its own PID namespace. */
static int
exec_criu(const char *gid, const char *socket, char **job)
{
	pid_t init;

	if ((init = pidns_start("gca-exec", job)) < 0)
		return 1;
	return exec_watch(gid, socket, init, getpid());
}

/* The user's criu job, our child: its environment from the pipe ("NAME=value\0" records, then
 * an empty one), a session of its own, then the job. EOF before the end: the bind failed. */
static void GCA_NORETURN
exec_user_child(int rfd, char **job)
{
	static char buf[256 * 1024];
	size_t used = 0;
	ssize_t n;
	char *p;

	while (used < sizeof buf - 1 && (n = read(rfd, buf + used, sizeof buf - 1 - used)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(127);
		used += (size_t)n;
		if (used > 0 && buf[used - 1] == '\0' && (used == 1 || buf[used - 2] == '\0'))
			break;		/* the end marker */
	}
	if (used == 0 || buf[used - 1] != '\0' || (used > 1 && buf[used - 2] != '\0'))
		_exit(127);	/* the bind failed: the job must not run */
	close(rfd);
	for (p = buf; *p != '\0'; p += strlen(p) + 1)
		if (wrapper_setenv(p) != 0)
			_exit(127);
	if (setsid() < 0)
		_exit(127);
	forward_reset();
	wrapper_sigpipe_restore();
	execvp(job[0], job);
	fprintf(stderr, "gca-exec: cannot run %s: %s\n", job[0], strerror(errno));
	_exit(127);
}

/* An ordinary user's criu job: bound as our child, no PID namespace; returns its exit status. */
static int
exec_criu_user(struct proto_sync *s, const char *gid, const char *socket, uint64_t every_ms,
    char **job)
{
	struct msg_local_bind bind = {
		.gid = gid, .checkpoint_every_ms = WRAPPER_EVERY_MS(every_ms),
		.checkpoint_auto = WRAPPER_EVERY_IS_AUTO(every_ms),
	};
	struct msg_local_bind_ok *ok = NULL;
	char code[64], msg[512];
	int p[2], rc = 1;
	pid_t child;

	if (pipe2(p, O_CLOEXEC) != 0 || (child = fork()) < 0) {
		fprintf(stderr, "gca-exec: cannot start the job: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		close(p[1]);
		exec_user_child(p[0], job);
	}
	close(p[0]);
	bind.pid = (uint64_t)child;
	if (wrapper_bind("gca-exec", s, &bind, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, "gca-exec: GID %s refused: %s (%s)\n", gid, msg, code);
		goto fail;
	}
	if (exec_params(ok, gid, child, p[1]) != 0 || write(p[1], "", 1) != 1)
		goto fail;
	close(p[1]);
	proto_body_free(proto_type_find("local_bind")->reply, ok);
	return exec_watch(gid, socket, child, child);
fail:
	close(p[1]);
	proto_body_free(proto_type_find("local_bind")->reply, ok);
	forward_kill(child);
	return rc;
}

/* Any other core service: the job is our child, held until the CTS bound its pid; it keeps
 * the conversation with the CTS (GCA_APP_FD, the app core service's channel). */
static int
exec_child(const char *gid, const char *socket, struct proto_sync **s, char **job,
    uint64_t every_ms)
{
	const struct proto_type *pt = proto_type_find("local_bind");
	struct msg_local_bind bind = {
		.gid = gid, .checkpoint_every_ms = WRAPPER_EVERY_MS(every_ms),
		.checkpoint_auto = WRAPPER_EVERY_IS_AUTO(every_ms), .recovery = false,
	};
	struct msg_local_bind_ok *ok = NULL;
	char code[64], msg[512], fd[16];
	bool bound;
	int wfd;
	pid_t child;

	if ((child = wrapper_hold("gca-exec", job, proto_sync_fd(*s), &wfd)) < 0)
		return 1;
	bind.pid = (uint64_t)child;
	snprintf(fd, sizeof fd, "%d", proto_sync_fd(*s));	/* the same number in the child */
	bound = wrapper_bind("gca-exec", *s, &bind, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) == 0;
	if (!bound)
		fprintf(stderr, "gca-exec: GID %s refused: %s (%s)\n", gid, msg, code);
	/* From here the CTS holds the binding; if the child goes unrun, it sees it go and unbinds. */
	bound = bound && exec_params(ok, gid, child, wfd) == 0 &&
	    wrapper_hold_put(wfd, "GCA_APP_FD", fd) == 0 &&
	    wrapper_hold_put(wfd, "GCA_GID", gid) == 0 &&
	    wrapper_hold_put(wfd, "GCA_CTS_SOCKET", socket) == 0;
	if (wrapper_hold_release(wfd, bound) != 0) {
		if (ok != NULL && bound)
			fprintf(stderr, "gca-exec: cannot pass the environment to the job: %s; the "
			    "job is not started\n", strerror(errno));
		bound = false;
	}
	proto_body_free(pt->reply, ok);
	proto_sync_close(*s);	/* our copy only: the child has its own */
	*s = NULL;
	if (!bound) {
		forward_kill(child);
		return 1;
	}
	return exec_watch(gid, socket, child, child);
}

/* Binds and runs the job; returns its exit status (or ours if it did not start). */
static int
exec_start(const char *gid, const char *socket, uint64_t every_ms, char **job)
{
	const struct proto_type *pt = proto_type_find("local_bind");
	struct msg_local_bind bind = {
		.gid = gid, .pid = (uint64_t)getpid(),
		.checkpoint_every_ms = WRAPPER_EVERY_MS(every_ms),
		.checkpoint_auto = WRAPPER_EVERY_IS_AUTO(every_ms), .recovery = false,
	};
	struct msg_local_bind_ok *ok = NULL;
	char code[64], msg[512], info_code[64];
	struct msg_local_info_ok *info = NULL;
	struct proto_sync *s;
	int rc = 1;

	forward_setup();
	wrapper_sigpipe_ignore();
	if ((s = wrapper_connect("gca-exec", socket)) == NULL)
		return 1;
	/* Which core service: criu binds us (the namespace's parent), the others our child. */
	if (proto_sync_call(s, "local_info", proto_type_find("local_info"), NULL, (void **)&info,
	    info_code, sizeof info_code, msg, sizeof msg) != 0) {
		fprintf(stderr, "gca-exec: the CTS at %s did not say its core service: %s (%s)\n",
		    socket, msg, info_code);
		goto out;
	}
	if (strcmp(info->core_service, "criu") != 0) {
		rc = exec_child(gid, socket, &s, job, every_ms);
		goto out;
	}
	if (getuid() != 0) {	/* a user's criu job: no PID namespace */
		rc = exec_criu_user(s, gid, socket, every_ms, job);
		goto out;
	}
	if (wrapper_bind("gca-exec", s, &bind, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, "gca-exec: GID %s refused: %s (%s)\n", gid, msg, code);
		goto out;
	}
	/* The socket is closed before the job starts: criu refuses to dump a process holding a
	 * unix socket to an outside peer. If we exit now, the CTS sees us go and unbinds. */
	proto_sync_close(s);
	s = NULL;
	if (exec_params(ok, gid, getpid(), -1) == 0)
		rc = exec_criu(gid, socket, job);
out:
	proto_body_free(proto_type_find("local_info")->reply, info);
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
	return rc;
}

int
main(int argc, char **argv)
{
	static const char *const help[2] = { exec_usage_text, exec_help_text };
	struct wrapper_args a;
	char *socket;
	int rc;

	if ((rc = wrapper_args_parse("gca-exec", argc, argv, false, help, &a)) != 0)
		return rc > 0 ? 0 : exec_usage();
	if ((socket = wrapper_socket("gca-exec", a.cts)) == NULL)
		return 1;
	rc = exec_start(a.gid, socket, a.every_ms, a.job);
	free(socket);
	return rc;
}
