/*
 * The PID namespace of a criu job (docs/DESIGN.md, "The CRIU privilege line"). criu restores a
 * process tree with the pids it had, so two copies of one job (a restore while the dumped one still
 * runs, or two restores of one checkpoint) can only live side by side when each has pids of its
 * own: a job that gca-exec starts for the criu core service runs in a new PID namespace, and criu
 * restores the tree it dumped into a new one again.
 *
 * The job is not the namespace's PID 1: the kernel drops every signal that a PID 1 has no handler
 * for, so a job relying on SIGTERM's default action could not be ended. PID 1 is a small init, a
 * fork of the wrapper that never execs (criu dumps and restores this code with the job): it leads
 * a session of its own (criu wants the session leader inside the tree it dumps, else
 * --shell-job), closes what an exec would have closed, passes the signals it gets on to the job
 * (pid 2), reaps what is orphaned inside and exits with the job's status (128+N for signal N),
 * which the wrapper outside returns in turn. The tree criu dumps is the init's.
 *
 * Making a PID namespace takes CAP_SYS_ADMIN, so gca-exec must run as root for criu jobs. A user
 * namespace would give it to anyone, but criu 3.17 then refuses the dump ("One or more
 * namespaces doesn't belong to the target user namespace") unless every namespace is the job's
 * own, a network namespace included, which would cut the job off the network
 * (docs/ARCHITECTURE.md, the CTS).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/common.h"
#include "wrappers/wrapper.h"

/* What exec would have closed: the wrapper's own descriptors are no part of the job. */
static void
pidns_close_cloexec(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fd, flags;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = atoi(e->d_name);
		if (fd != dirfd(d) && (flags = fcntl(fd, F_GETFD)) >= 0 && (flags & FD_CLOEXEC))
			close(fd);
	}
	closedir(d);
}

/* PID 1 of the namespace: starts the job, then lives as long as it does. Never returns. */
static void GCA_NORETURN
pidns_init(const char *prog, char **job, int ready)
{
	pid_t pid;

	if (setsid() < 0) {
		fprintf(stderr, "%s: the job's init cannot lead a session: %s\n", prog,
		    strerror(errno));
		_exit(127);
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		_exit(127);
	}
	if (pid == 0) {
		forward_reset();
		execvp(job[0], job);
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, job[0], strerror(errno));
		_exit(127);
	}
	close(ready);
	pidns_close_cloexec();
	forward_start(pid);
	_exit(forward_wait(prog, pid));
}

pid_t
pidns_start(const char *prog, char **job)
{
	int ready[2];
	pid_t init;
	char c;

	if (pipe2(ready, O_CLOEXEC) != 0) {
		fprintf(stderr, "%s: pipe: %s; the job is not started\n", prog, strerror(errno));
		return -1;
	}
	/*
	 * A fork into a new PID namespace. Not unshare(CLONE_NEWPID) and fork(): that would put
	 * every later child of ours there too, and once the init is gone no fork of ours (a
	 * sanitizer's at exit, say) could succeed.
	 */
	if ((init = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL)) < 0) {
		fprintf(stderr, "%s: cannot make a PID namespace for the job: %s (criu restores a job "
		    "with the pids it had, so each criu job runs with pids of its own, and making "
		    "them takes root: run %s as root for this CTS); the job is not started\n", prog,
		    strerror(errno), prog);
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	if (init == 0) {
		close(ready[0]);
		pidns_init(prog, job, ready[1]);
	}
	/*
	 * The write end closes in the init once the job is forked and in the job when it execs: from
	 * then on the init leads its session, and signals we pass on reach someone who handles them.
	 */
	close(ready[1]);
	while (read(ready[0], &c, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	return init;
}
