/*
 * gca-recover: restarts a job from one of its checkpoints (paper 5.3, flow "Recovery").
 *
 * restore_prepare asks the CTS to find and verify the image; then the job is brought back as our
 * child (app: a fork that execs the job with GCA_RESTORE_DIR; criu: `criu restore -d`, whose
 * restored tree is reparented to us because we are a child subreaper; for a user who is not root,
 * through gca-criu-helper, which runs that criu as the user with the two capabilities it needs,
 * from the copy the CTS verified and lent to the user) and bound to the GID with
 * local_bind {recovery: true, pid: the job's}. We stay resident: signals are forwarded to the job
 * and we exit with its status, so whoever started gca-recover sees the job as if it were it.
 *
 * The app job must not run before the CTS has accepted the binding, yet the CTS wants its pid in
 * local_bind. So the child is forked first and waits on a pipe: the parent sends it the
 * environment as "NAME=VALUE\0" records, ended by an empty record (a lone "\0"; a real record
 * always holds '='). EOF before that end marker means the bind failed: the child exits 127
 * without running the job.
 *
 * Exit status: the job's, or 128+N if signal N killed it; 1 the job was not recovered;
 * 2 usage; 127 the job cannot be run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/wrapper.h"

static const char recover_usage_text[] =
    "usage: gca-recover --gid GID --checkpoint ID|latest [--cts SOCKET] [--checkpoint-every "
    "DURATION|auto] -- JOB [ARGS...]\n";

static const char recover_help_text[] =
    "  --gid GID              the job's grid identifier\n"
    "  --checkpoint ID|latest the checkpoint to restart from (latest: highest sequence number)\n"
    "  --cts SOCKET           the CTS's unix socket (default: $GCA_CTS_SOCKET)\n"
    "  --checkpoint-every DURATION  periodic checkpoints of the recovered job (30s, 5m, 2h, or\n"
    "                         auto: the CTS sets the interval from their cost and the MTBF)\n"
    "See gca-recover(1).\n";

#define RECOVER_LOG_TAIL 5		/* lines of criu's log shown when it fails */

/* What the job's environment and the placeholders are made of. */
struct recover {
	const char		*gid, *checkpoint, *socket;
	uint64_t		 every_ms;	/* --checkpoint-every, 0 none */
	char			**job;
	struct proto_sync	*s;
	struct msg_restore_ok	*r;
};

static int
recover_usage(void)
{
	fputs(recover_usage_text, stderr);
	return 2;
}

static int
recover_bind(struct recover *rc, pid_t job, struct msg_local_bind_ok **ok)
{
	char code[64], msg[512];
	struct msg_local_bind bind = {
		.gid = rc->gid, .checkpoint_id = rc->r->checkpoint_id, .pid = (uint64_t)job,
		.checkpoint_every_ms = WRAPPER_EVERY_MS(rc->every_ms),
		.checkpoint_auto = WRAPPER_EVERY_IS_AUTO(rc->every_ms), .recovery = true,
	};

	if (wrapper_bind("gca-recover", rc->s, &bind, (void **)ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, "gca-recover: GID %s refused: %s (%s)\n", rc->gid, msg, code);
		return -1;
	}
	return 0;
}

/* The job runs, bound: signals go to it; its status is ours and the CTS is told it. */
static int
recover_watch(struct recover *rc, pid_t job)
{
	int status;

	forward_start(job);
	status = forward_wait("gca-recover", job);
	wrapper_report_exit("gca-recover", rc->socket, rc->gid, job, status);
	return status;
}

/* ---- the app core service ---- */

/* Expands the CTS's parameters and sends them, then the fixed variables, then the end marker. */
static int
recover_send_env(struct recover *rc, const struct msg_local_bind_ok *ok, pid_t job, int wfd)
{
	char pid[24], seq[24], fd[16], err[512], *kv;
	const struct msg_restore_ok *r = rc->r;
	int rv = 0;

	snprintf(pid, sizeof pid, "%ld", (long)job);
	snprintf(seq, sizeof seq, "%llu", (unsigned long long)r->seq);
	/* The child has the same descriptor number as ours (fork). */
	snprintf(fd, sizeof fd, "%d", proto_sync_fd(rc->s));
	const struct wrapper_var vars[] = {
		{ "gid", rc->gid }, { "cts", ok->cts }, { "pid", pid },
		{ "core_service", ok->core_service }, { "checkpoint_id", r->checkpoint_id },
		{ "image_dir", r->image_dir }, { "seq", seq },
	};
	for (size_t i = 0; i < ok->params.n && rv == 0; i++) {
		if ((kv = wrapper_expand(ok->params.v[i], vars, GCA_NITEMS(vars), err,
		    sizeof err)) == NULL) {
			fprintf(stderr, "gca-recover: CTS %s: %s; the job is not started\n", ok->cts,
			    err);
			return -1;
		}
		rv = wrapper_hold_put(wfd, kv, NULL);
		free(kv);
	}
	const char *fixed[][2] = {
		{ "GCA_RESTORE_DIR", r->image_dir }, { "GCA_APP_FD", fd }, { "GCA_GID", rc->gid },
		{ "GCA_CTS_SOCKET", rc->socket }, { "GCA_CHECKPOINT_ID", r->checkpoint_id },
	};
	for (size_t i = 0; i < GCA_NITEMS(fixed) && rv == 0; i++)
		rv = wrapper_hold_put(wfd, fixed[i][0], fixed[i][1]);
	if (rv != 0)
		fprintf(stderr, "gca-recover: cannot pass the environment to the job: %s\n",
		    strerror(errno));
	return rv;
}

static int
recover_app(struct recover *rc)
{
	struct msg_local_bind_ok *ok = NULL;
	bool bound;
	int wfd;
	pid_t job;

	if ((job = wrapper_hold("gca-recover", rc->job, proto_sync_fd(rc->s), &wfd)) < 0)
		return 1;
	bound = recover_bind(rc, job, &ok) == 0 && recover_send_env(rc, ok, job, wfd) == 0;
	if (wrapper_hold_release(wfd, bound) != 0)
		bound = false;
	proto_body_free(proto_type_find("local_bind")->reply, ok);
	if (!bound) {
		forward_kill(job);
		return 1;
	}
	proto_sync_close(rc->s);	/* our copy only: the child has its own */
	rc->s = NULL;
	return recover_watch(rc, job);
}

/* ---- the criu core service ---- */

/* Prints the last lines of criu's log, which say why the restore failed. */
static void
recover_log_tail(const char *path)
{
	char buf[8192], *p;
	int fd, lines = 0;
	off_t size;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "gca-recover: no criu log %s: %s\n", path, strerror(errno));
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof buf - 1)
		lseek(fd, size - (off_t)(sizeof buf - 1), SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (p = buf + n; p > buf; p--)
		if (p[-1] == '\n' && ++lines == RECOVER_LOG_TAIL)
			break;
	fprintf(stderr, "gca-recover: criu's log (%s) ends with:\n%s\n", path, p);
}

#define RECOVER_INHERIT_FILE "gca-inherit-fd"	/* written by the CTS at dump (cts/core/criu.c) */

/*
 * The pipes the job had as fds 0-2 when it was dumped, each named for criu as ours with the same
 * number ("--inherit-fd fd[1]:pipe:[INODE]"): without it criu would restore a new pipe nobody
 * reads. Lines "fd N pipe:[INODE]" (verified with the image); a fd we do not have open is left
 * out (criu then makes the pipe anew). Returns how many argv entries it added, 2 per pipe (3 at
 * most).
 */
static int
recover_criu_inherit(const char *image_dir, char spec[3][64], const char **argv)
{
	char path[4200], *buf = NULL, *line, *save;
	int n = 0, fd;
	unsigned long long inode;
	size_t len;
	char end;

	snprintf(path, sizeof path, "%s/%s", image_dir, RECOVER_INHERIT_FILE);
	if (file_read_all(path, &buf, &len, 4096) != 0)
		return 0;	/* no pipes then, or an image from before the file */
	for (line = strtok_r(buf, "\n", &save); line != NULL && n < 3;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "fd %d pipe:[%llu%c", &fd, &inode, &end) != 3 || end != ']' ||
		    fd < 0 || fd > 2 || fcntl(fd, F_GETFD) < 0)
			continue;
		snprintf(spec[n], 64, "fd[%d]:pipe:[%llu]", fd, inode);
		argv[2 * n] = "--inherit-fd";
		argv[2 * n + 1] = spec[n];
		n++;
	}
	free(buf);
	return 2 * n;
}

/* Runs criu restore and waits for it; returns the restored job's pid, or -1 (said why). */
static pid_t
recover_criu_run(struct recover *rc, const char *tmp)
{
	char pidfile[4200], log[4200], inherit[3][64], *buf = NULL, **av;
	const char *argv[24];
	int argc = 0, status;
	size_t len;
	long job;
	pid_t criu;

	snprintf(pidfile, sizeof pidfile, "%s/restore.pid", tmp);
	snprintf(log, sizeof log, "%s/restore.log", tmp);
	if (getuid() != 0) {
		/* an ordinary user's job: criu as us, with the two capabilities the helper carries,
		 * from the copy the CTS verified and lent us (docs/ARCHITECTURE.md) */
		argv[argc++] = "gca-criu-helper";
		argv[argc++] = "restore";
		argv[argc++] = rc->r->image_dir;
		argv[argc++] = tmp;
	} else {
		argv[argc++] = "criu";
		argv[argc++] = "restore";
		argv[argc++] = "-D";
		argv[argc++] = rc->r->image_dir;
		argv[argc++] = "-W";	/* criu's own files (stats) go there, not into the store */
		argv[argc++] = tmp;
		argv[argc++] = "-d";
		argv[argc++] = "--pidfile";
		argv[argc++] = pidfile;
		argv[argc++] = "-o";
		argv[argc++] = log;
		argv[argc++] = "-v4";
		argv[argc++] = "--cpu-cap=fpu";	/* the CPU check against the dump's cpuinfo.img */
	}
	if (isatty(STDIN_FILENO))
		argv[argc++] = "--shell-job";
	argc += recover_criu_inherit(rc->r->image_dir, inherit, argv + argc);
	argv[argc] = NULL;

	av = xstrvdup(argv);	/* copied before fork: the child only execs */
	if ((criu = fork()) < 0) {
		fprintf(stderr, "gca-recover: fork: %s\n", strerror(errno));
		xstrv_free(av);
		return -1;
	}
	if (criu == 0) {
		forward_reset();
		execvp(av[0], av);
		fprintf(stderr, "gca-recover: cannot run %s: %s\n", av[0], strerror(errno));
		_exit(127);
	}
	xstrv_free(av);
	/* Only criu itself: the restored tree becomes our child when criu exits. */
	while (waitpid(criu, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "gca-recover: waiting for criu: %s\n", strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return -1;	/* the child said it could not run criu */
		if (getuid() != 0 && access(log, F_OK) != 0)
			return -1;	/* gca-criu-helper refused before criu ran, and said why */
		fprintf(stderr, "gca-recover: criu restore of %s failed (%s %d)\n",
		    rc->r->image_dir, WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		recover_log_tail(log);
		return -1;
	}
	if (file_read_all(pidfile, &buf, &len, 64) != 0 || (job = strtol(buf, NULL, 10)) <= 0) {
		fprintf(stderr, "gca-recover: criu restored %s but left no pid in %s\n",
		    rc->r->image_dir, pidfile);
		free(buf);
		recover_log_tail(log);
		return -1;
	}
	free(buf);
	return (pid_t)job;
}

static int
recover_criu(struct recover *rc)
{
	char tmp[] = "/tmp/gca-recover.XXXXXX";
	struct msg_local_bind_ok *ok = NULL;
	pid_t job;

	if (mkdtemp(tmp) == NULL) {
		fprintf(stderr, "gca-recover: cannot make a folder for criu's log in /tmp: %s\n",
		    strerror(errno));
		return 1;
	}
	if ((job = recover_criu_run(rc, tmp)) < 0) {
		char log[4200];

		/* Keep criu's log for whoever looks into it; an empty folder says nothing. */
		snprintf(log, sizeof log, "%s/restore.log", tmp);
		if (access(log, F_OK) == 0) {
			fprintf(stderr, "gca-recover: the job is not recovered; criu's files are kept "
			    "in %s\n", tmp);
		} else {
			file_remove_tree(tmp);
			fprintf(stderr, "gca-recover: the job is not recovered\n");
		}
		return 1;
	}
	file_remove_tree(tmp);
	if (recover_bind(rc, job, &ok) != 0) {
		forward_kill(job);
		return 1;
	}
	/*
	 * The job's environment was restored with it, so the CTS's parameters cannot reach it; they
	 * matter to the start (gca-exec) only.
	 */
	proto_body_free(proto_type_find("local_bind")->reply, ok);
	proto_sync_close(rc->s);	/* nothing of ours must look like part of the job to criu */
	rc->s = NULL;
	return recover_watch(rc, job);
}

/* ---- main ---- */

/* Prepares the checkpoint, then restores and watches the job; returns the exit status. */
static int
recover_run(struct recover *rc)
{
	struct msg_restore_prepare prep = {
		.gid = rc->gid, .checkpoint = rc->checkpoint,
	};
	char code[64], msg[512];

	forward_setup();
	wrapper_sigpipe_ignore();
	if ((rc->s = wrapper_connect("gca-recover", rc->socket)) == NULL)
		return 1;
	proto_sync_set_timeout(rc->s, WRAPPER_PREPARE_MS);
	if (proto_sync_call(rc->s, "restore_prepare", proto_type_find("restore_prepare"), &prep,
	    (void **)&rc->r, code, sizeof code, msg, sizeof msg) != 0) {
		fprintf(stderr, "gca-recover: cannot prepare checkpoint %s of %s: %s (%s)\n",
		    rc->checkpoint, rc->gid, msg, code);
		return 1;
	}
	if (rc->r->image_dir == NULL || rc->r->core_service == NULL) {
		fprintf(stderr, "gca-recover: the CTS prepared checkpoint %s of %s without saying "
		    "its %s\n", rc->r->checkpoint_id, rc->gid,
		    rc->r->image_dir == NULL ? "image folder" : "core service");
		return 1;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		fprintf(stderr, "gca-recover: cannot become a subreaper: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(rc->r->core_service, "app") == 0)
		return recover_app(rc);
	if (strcmp(rc->r->core_service, "criu") == 0)
		return recover_criu(rc);
	fprintf(stderr, "gca-recover: checkpoint %s of %s was made by core service %s, which "
	    "gca-recover cannot restore\n", rc->r->checkpoint_id, rc->gid, rc->r->core_service);
	return 1;
}

int
main(int argc, char **argv)
{
	static const char *const help[2] = { recover_usage_text, recover_help_text };
	struct wrapper_args a;
	struct recover rc = { 0 };
	char *socket;
	int status;

	if ((status = wrapper_args_parse("gca-recover", argc, argv, true, help, &a)) != 0)
		return status > 0 ? 0 : recover_usage();
	if (strcmp(a.checkpoint, "latest") != 0 && !id_valid(a.checkpoint)) {
		fprintf(stderr, "gca-recover: bad checkpoint \"%s\" (a checkpoint id or latest)\n",
		    a.checkpoint);
		return recover_usage();
	}

	if ((socket = wrapper_socket("gca-recover", a.cts)) == NULL)
		return 1;
	rc.gid = a.gid;
	rc.checkpoint = a.checkpoint;
	rc.socket = socket;
	rc.every_ms = a.every_ms;
	rc.job = a.job;
	status = recover_run(&rc);
	proto_body_free(proto_type_find("restore_prepare")->reply, rc.r);
	proto_sync_close(rc.s);
	free(socket);
	return status;
}
