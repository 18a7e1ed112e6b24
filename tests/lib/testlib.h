/* Helpers for cmocka suites that run real parts: a site folder with a real slapd. */
#ifndef GCA_TESTLIB_H
#define GCA_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>

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
/* Runs a shell command; returns its exit status, its stdout in out (may be NULL). */
int  test_sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *test_top(void);				/* the source tree */

#endif
