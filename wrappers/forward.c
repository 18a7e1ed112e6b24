/*
 * A resident wrapper's signals (wrapper.h): the signals a job would get from whoever started it
 * are caught and passed on to the job, and the wrapper waits for the job and returns its status.
 * gca-recover does it for a restored job, gca-exec for the PID namespace of a criu job, and that
 * namespace's init (pidns.c) for the job inside it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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
