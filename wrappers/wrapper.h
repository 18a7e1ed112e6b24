/*
 * wrappers/wrapper.c: what gca-exec and gca-recover share: finding and reaching the CTS's unix
 * socket, expanding the CTS's parameter patterns into NAME=value, and keeping the socket for the
 * job across exec. wrappers/forward.c: the signals of a wrapper that stays resident.
 * wrappers/pidns.c: the PID namespace of a criu job.
 */
#ifndef GCA_WRAPPER_H
#define GCA_WRAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proto_sync;

/* A placeholder a parameter pattern may name, e.g. {gid}. */
struct wrapper_var {
	const char	*name;
	const char	*value;
};

/*
 * The CTS socket: the --cts flag, else $GCA_CTS_SOCKET; made absolute (the job may chdir). Prints
 * the error naming both ways and returns NULL if neither is given. The result is malloc'd.
 */
char *wrapper_socket(const char *prog, const char *flag);

/* Connects to the CTS's unix socket; on failure prints why (naming the socket) and returns NULL. */
struct proto_sync *wrapper_connect(const char *prog, const char *socket);
/* How long a recovery wrapper waits for restore_prepare: the CTS may first fetch an image, or a
 * whole incremental chain, from another resource and check every file of it. */
#define WRAPPER_PREPARE_MS (10 * 60 * 1000)

/*
 * One parameter "NAME=pattern" from the CTS into a malloc'd "NAME=value": {name} is replaced by the
 * value of that var, "{{" is a literal '{'. Returns NULL with err set for a parameter without '=',
 * an empty or bad NAME, an unknown placeholder or an unclosed '{'.
 */
char *wrapper_expand(const char *param, const struct wrapper_var *vars, size_t nvars, char *err,
	size_t errlen);

/* setenv from a "NAME=value" string (wrapper_expand's result); -1 with errno on failure. */
int wrapper_setenv(const char *assignment);

/*
 * local_bind on s, as prog. A CTS that is busy (just started and not yet registered at the GCS,
 * or its GCS briefly away) is asked again every 200 ms for up to $GCA_BIND_WAIT seconds (15),
 * saying once that it waits. Returns 0 with *ok, or -1 with code and msg.
 */
int wrapper_bind(const char *prog, struct proto_sync *s, void *bind, void **ok, char *code,
	size_t codelen, char *msg, size_t msglen);

/*
 * --checkpoint-every: a positive duration ("30s", "5m", "2h"), or "auto": the CTS sets the
 * interval from the cost of the job's checkpoints and the mean time between failures
 * (docs/ARCHITECTURE.md, "Adaptive checkpoint intervals"), *ms then WRAPPER_EVERY_AUTO. On a
 * bad value it says so as prog and returns -1. WRAPPER_EVERY_MS and WRAPPER_EVERY_IS_AUTO give
 * local_bind's checkpoint_every_ms and checkpoint_auto.
 */
#define WRAPPER_EVERY_AUTO		UINT64_MAX
#define WRAPPER_EVERY_MS(e)		((e) == WRAPPER_EVERY_AUTO ? 0 : (e))
#define WRAPPER_EVERY_IS_AUTO(e)	((e) == WRAPPER_EVERY_AUTO)
int wrapper_every_parse(const char *prog, const char *s, uint64_t *ms);

/* The options of the resident wrappers, gca-exec and gca-recover (recovery: --checkpoint too),
 * parsed up to the job's own argv (the first non-option), the GID checked. Returns 0, 1 after
 * printing help (--help: its two texts), or -1 for a usage error (said as prog when it is more
 * than a missing option). */
struct wrapper_args {
	const char	 *gid, *checkpoint, *cts;
	uint64_t	  every_ms;
	char		**job;
};
int wrapper_args_parse(const char *prog, int argc, char **argv, bool recovery,
	const char *const help[2], struct wrapper_args *a);

/* Lets fd survive exec (the app core service's job owns the conversation with the CTS). */
int wrapper_keep_fd(int fd);

/* Exports GCA_APP_FD=fd (kept across exec), GCA_GID and GCA_CTS_SOCKET for an app job. */
int wrapper_app_env(int fd, const char *gid, const char *socket);

/*
 * A job forked before it is bound, so that the CTS binds its pid (the wrapper stays its parent):
 * wrapper_hold forks it (keep_fd, if >= 0, stays open across exec: GCA_APP_FD), and the child
 * waits for "NAME=VALUE" records on *wfd (at most WRAPPER_ENV_MAX bytes): wrapper_hold_put sends
 * one (value NULL: name is already NAME=VALUE), wrapper_hold_release(wfd, true) sends the end
 * marker (an empty record) and closes wfd (0 if it went), and the child sets them and execs job with the default signal
 * handlers. Releasing with go false (the bind failed) makes the child exit 127 unrun. The
 * child dies with SIGKILL when the wrapper dies (PR_SET_PDEATHSIG). -1 after saying why.
 */
#define WRAPPER_ENV_MAX	(1024 * 1024)
pid_t wrapper_hold(const char *prog, char **job, int keep_fd, int *wfd);
int wrapper_hold_put(int wfd, const char *name, const char *value);
int wrapper_hold_release(int wfd, bool go);

/*
 * Tells the CTS at socket how the job it bound as pid job ended (local_exit; status as
 * forward_wait gives it): the job entry's gcaExitStatus. A failure is said on stderr, as prog,
 * and changes nothing else: the wrapper still exits with the job's status.
 */
void wrapper_report_exit(const char *prog, const char *socket, const char *gid, pid_t job,
	int status);

/*
 * A CTS that goes away mid-write must give an error, not kill the wrapper: SIGPIPE is ignored
 * while we talk, and the old disposition is put back before a job is exec'd (an ignored signal
 * would stay ignored in the job).
 */
void wrapper_sigpipe_ignore(void);
void wrapper_sigpipe_restore(void);

/*
 * forward_setup catches SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT and SIGTSTP and holds
 * them (blocked) until forward_start names the job they go to; a terminal's signal is not passed
 * to a job in our own process group (it had it already). forward_reset, in a child before exec,
 * puts back the default handlers and the mask we were started with. forward_wait reaps every
 * child (a subreaper inherits the job's orphans) until the job exits and returns its status, or
 * 128+N if signal N ended it (1 if the job is lost, said as prog). forward_kill kills and reaps a
 * job that must not run.
 */
void forward_setup(void);
void forward_start(pid_t job);
void forward_reset(void);
int  forward_wait(const char *prog, pid_t job);
void forward_kill(pid_t job);

/*
 * Starts job in a new PID namespace under a small init (its PID 1; the job is PID 2) and returns
 * the init's pid, the root of the tree criu dumps; -1 after saying why (as prog) if the namespace
 * cannot be made. Call forward_setup first: the init passes on the signals it gets and exits with
 * the job's status.
 */
pid_t pidns_start(const char *prog, char **job);

#endif
