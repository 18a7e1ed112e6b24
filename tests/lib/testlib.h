/* Helpers for cmocka suites that run real parts: a site folder with a real slapd. */
#ifndef GCA_TESTLIB_H
#define GCA_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>

/* A well-formed image sha256 for records a test logs as a CTS would (the sha256 of nothing). */
#define TEST_IMAGE_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct test_site {
	char	dir[256];
	char	ldap_uri[256];
	char	gcs_conf[300];		/* the GCS's directory identity file */
	int	slapd_pid;
};
/* `gca-site up` in a fresh temp folder; returns 0 or -1 with a message printed. */
int  test_site_up(struct test_site *s);
void test_site_down(struct test_site *s);		/* stops and removes the folder */
int  test_site_slapd_signal(struct test_site *s, int sig);
int  test_site_restart_slapd(struct test_site *s);	/* `gca-site up` again (same port) */
/* pid is gone or a zombie: dead, waiting only for whoever reaps orphans (this machine's PID 1
 * may take its time). */
bool test_process_gone(int pid);
/* A PKI in <site>/pki with the identities given as "role name" pairs, e.g. "gcs gcs-t cts cts-1". */
int  test_pki(struct test_site *s, const char *identities);
/* Starts gca-gcs (from $GCA_BUILD) with the certificate gcs-<name>, the site's directory, and more
 * config lines; listen is "127.0.0.1:0" or a fixed address. Fills endpoint; returns its pid. */
int  test_gcs_start(struct test_site *s, const char *name, const char *listen, const char *more,
	char *endpoint, size_t len);
/* SIGTERM to a daemon test_gcs_start or test_cts_start started; returns its exit status
 * (0 = clean). */
int  test_gcs_stop(int pid);
/* The daemons started next (test_gcs_start, test_cts_start) get RLIMIT_NOFILE nofile (soft and
 * hard, set before exec; 0: inherited) and their stderr appended to log (NULL: inherited). */
void test_daemon_limits(long nofile, const char *log);
/* Starts gca-cts <name> (certificate cts-<name>, state in the site folder) for core service core
 * (app|criu), talking to the GCS at gcs, with more config lines; fills its socket path; -1 if it
 * did not start. Stop it with test_gcs_stop. */
int  test_cts_start(struct test_site *s, const char *name, const char *core, const char *gcs,
	const char *more, char *socket, size_t len);
/* The site PKI's files of identity who ("cts-cts-1", "broker-b"); static, valid until the next call. */
struct proto_tls_files;
struct proto_tls_files test_identity(const struct test_site *s, const char *who);
/* A blocking mTLS connection to endpoint as identity who, expecting a peer of role (NULL: any). */
struct proto_sync *test_connect(const struct test_site *s, const char *endpoint, const char *who,
	const char *role);
/* One request on s: 0 (reply, if not NULL, gets the body to free with proto_body_free), or -1
 * with the error's code and message (each may be NULL; code >= 32 bytes, msg >= 512 bytes). */
int  test_call(struct proto_sync *s, const char *type, const void *body, void **reply, char *code,
	char *msg);
/* A daemon's "port file" next to its config: "127.0.0.1:<port>" into ep, or -1. */
int  test_daemon_endpoint(const struct test_site *s, const char *name, char *ep, size_t len);
/* Runs a shell command; returns its exit status, its stdout in out (may be NULL). */
int  test_sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *test_top(void);				/* the source tree */
/* A part of a suite that cannot run here says so in the runner's form, "<suite>: not run: <reason>"
 * on stdout (tests/run counts it as not run, a failure under CI=true; docs/ARCHITECTURE.md, Tests),
 * never by returning early in silence. */
void test_not_run(const char *suite, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
