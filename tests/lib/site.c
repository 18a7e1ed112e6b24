/* A real site for a test: scripts/gca-site in a temp folder. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

const char *
test_top(void)
{
	const char *t = getenv("GCA_TOP");

	return t != NULL ? t : ".";
}

int
test_sh(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (out != NULL && outlen > 0) {
		size_t got;
		while (n + 1 < outlen && (got = fread(out + n, 1, outlen - 1 - n, p)) > 0)
			n += got;
		out[n] = '\0';
	}
	{
		char sink[4096];
		while (fread(sink, 1, sizeof sink, p) > 0)
			;
	}
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int
test_site_read(struct test_site *s)
{
	char out[256], *nl;

	if (test_sh(out, sizeof out, ". %s/site.env && printf %%s \"$GCA_LDAP_URI\"", s->dir) != 0)
		return -1;
	snprintf(s->ldap_uri, sizeof s->ldap_uri, "%s", out);
	if (test_sh(out, sizeof out, "cat %s/ldap/slapd.pid", s->dir) != 0)
		return -1;
	if ((nl = strchr(out, '\n')) != NULL)
		*nl = '\0';
	s->slapd_pid = atoi(out);
	snprintf(s->gcs_conf, sizeof s->gcs_conf, "%s/gcs-directory.conf", s->dir);
	/* A simple bind needs TLS (ldapsearch -ZZ): the tools the tests run check slapd with the
	 * site CA. */
	char ca[sizeof s->dir + 16];
	snprintf(ca, sizeof ca, "%s/pki/ca.crt", s->dir);
	setenv("LDAPTLS_CACERT", ca, 1);
	return 0;
}

int
test_site_up(struct test_site *s)
{
	char log[4096];

	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s/gca-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	if (test_sh(log, sizeof log, "%s/scripts/gca-site up %s --only-directory 2>&1", test_top(), s->dir) != 0) {
		fprintf(stderr, "gca-site up failed:\n%s\n", log);
		return -1;
	}
	return test_site_read(s);
}

int
test_site_restart_slapd(struct test_site *s)
{
	char log[4096];

	if (test_sh(log, sizeof log, "%s/scripts/gca-site up %s --only-directory 2>&1", test_top(), s->dir) != 0) {
		fprintf(stderr, "gca-site up failed:\n%s\n", log);
		return -1;
	}
	return test_site_read(s);
}

void
test_not_run(const char *suite, const char *fmt, ...)
{
	va_list ap;

	/* cmocka prints to stdout too (CMOCKA_MESSAGE_OUTPUT=stdout): one buffer, lines in order */
	printf("%s: not run: ", suite);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

bool
test_process_gone(int pid)
{
	char path[64], *buf = NULL, *paren;
	size_t len;
	bool gone;

	if (kill(pid, 0) != 0)
		return true;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (file_read_all(path, &buf, &len, 4096) != 0)
		return true;
	paren = strrchr(buf, ')');
	gone = paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
	free(buf);
	return gone;
}

int
test_site_slapd_signal(struct test_site *s, int sig)
{
	return s->slapd_pid > 0 ? kill(s->slapd_pid, sig) : -1;
}

void
test_site_down(struct test_site *s)
{
	if (s->dir[0] == '\0')
		return;
	test_site_slapd_signal(s, SIGCONT);
	test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), s->dir);
	if (getenv("GCA_KEEP") == NULL)
		file_remove_tree(s->dir);
	s->dir[0] = '\0';
}

int
test_pki(struct test_site *s, const char *identities)
{
	char out[4096], cmd[2048];
	int n;

	n = snprintf(cmd, sizeof cmd, "P=%s/scripts/gca-pki; D=%s/pki; $P init $D >/dev/null && "
	    "set -- %s; while [ $# -gt 1 ]; do $P issue $D $1 $2 >/dev/null || exit 1; "
	    "if [ $1 = cts ]; then $P issue $D sign $2 >/dev/null || exit 1; fi; shift 2; done",
	    test_top(), s->dir, identities);
	if (n >= (int)sizeof cmd || test_sh(out, sizeof out, "%s", cmd) != 0) {
		fprintf(stderr, "gca-pki failed: %s\n", out);
		return -1;
	}
	return 0;
}

static long test_daemon_nofile;			/* test_daemon_limits */
static char test_daemon_log[400];

void
test_daemon_limits(long nofile, const char *log)
{
	test_daemon_nofile = nofile;
	snprintf(test_daemon_log, sizeof test_daemon_log, "%s", log ? log : "");
}

/* In the child, before exec: the limit and the log test_daemon_limits asked for. */
static void
test_daemon_child_limits(void)
{
	if (test_daemon_nofile > 0) {
		struct rlimit rl = { (rlim_t)test_daemon_nofile, (rlim_t)test_daemon_nofile };
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(126);
	}
	if (test_daemon_log[0] != '\0') {
		int fd = open(test_daemon_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
	}
}

/* Runs $GCA_BUILD/<prog> -f conf --port-file <portfile> and waits for the port; returns its pid. */
static int
test_daemon_start(const char *prog, const char *conf, const char *portfile, int *portp)
{
	char port[32] = "";
	int pid, status;

	unlink(portfile);
	if ((pid = fork()) == 0) {
		char bin[400];

		test_daemon_child_limits();
		snprintf(bin, sizeof bin, "%s/%s", getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build",
		    prog);
		execl(bin, prog, "-f", conf, "--port-file", portfile, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && port[0] == '\0'; i++) {
		FILE *f;
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if ((f = fopen(portfile, "r")) != NULL) {
			if (fgets(port, sizeof port, f) == NULL)
				port[0] = '\0';
			fclose(f);
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			/* said here: a setup that fails says which daemon and how */
			if (WIFSIGNALED(status))
				fprintf(stderr, "%s -f %s: killed by signal %d before it wrote %s\n",
				    prog, conf, WTERMSIG(status), portfile);
			else
				fprintf(stderr, "%s -f %s: exited with status %d before it wrote %s%s\n",
				    prog, conf, WEXITSTATUS(status), portfile,
				    WEXITSTATUS(status) == 127 ? " (could it be run?)" : "");
			return -1;
		}
	}
	if (port[0] == '\0') {
		fprintf(stderr, "%s -f %s: no port in %s after 10 s: killed\n", prog, conf, portfile);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	*portp = atoi(port);
	return pid;
}

int
test_gcs_start(struct test_site *s, const char *name, const char *listen, const char *more,
    char *endpoint, size_t len)
{
	char conf[400], portfile[400], body[4096];
	int n, pid, port;

	snprintf(conf, sizeof conf, "%s/%s.conf", s->dir, name);
	snprintf(portfile, sizeof portfile, "%s/%s.port", s->dir, name);
	n = snprintf(body, sizeof body, "name %s\nlisten %s\nca %s/pki/ca.crt\ncert %s/pki/gcs-%s.crt\n"
	    "key %s/pki/gcs-%s.key\ndirectory %s\n%s", name, listen, s->dir, s->dir, name, s->dir, name,
	    s->gcs_conf, more ? more : "");
	if (file_write_whole(conf, body, (size_t)n, 0600) != 0)
		return -1;
	if ((pid = test_daemon_start("gca-gcs", conf, portfile, &port)) < 0)
		return -1;
	snprintf(endpoint, len, "127.0.0.1:%d", port);
	return pid;
}

int
test_cts_start(struct test_site *s, const char *name, const char *core, const char *gcs,
    const char *more, char *socket, size_t len)
{
	char conf[400], portfile[400], body[4096];
	int n, port;

	snprintf(conf, sizeof conf, "%s/%s.conf", s->dir, name);
	snprintf(portfile, sizeof portfile, "%s/%s.port", s->dir, name);
	snprintf(socket, len, "%s/%s.sock", s->dir, name);
	n = snprintf(body, sizeof body, "name %s\ncore_service %s\nlisten 127.0.0.1:0\nsocket %s\n"
	    "gcs %s\nca %s/pki/ca.crt\ncert %s/pki/cts-%s.crt\nkey %s/pki/cts-%s.key\n"
	    "sign_cert %s/pki/sign-%s.crt\nsign_key %s/pki/sign-%s.key\n"
	    "state %s/state-%s\nheartbeat 1\n%s", name, core, socket, gcs, s->dir, s->dir, name, s->dir,
	    name, s->dir, name, s->dir, name, s->dir, name, more ? more : "");
	if (file_write_whole(conf, body, (size_t)n, 0600) != 0)
		return -1;
	return test_daemon_start("gca-cts", conf, portfile, &port);
}

int
test_gcs_stop(int pid)
{
	int status = 0;

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct proto_tls_files
test_identity(const struct test_site *s, const char *who)
{
	static char ca[400], crt[400], key[400];

	snprintf(ca, sizeof ca, "%s/pki/ca.crt", s->dir);
	snprintf(crt, sizeof crt, "%s/pki/%s.crt", s->dir, who);
	snprintf(key, sizeof key, "%s/pki/%s.key", s->dir, who);
	return (struct proto_tls_files){ ca, crt, key };
}

struct proto_sync *
test_connect(const struct test_site *s, const char *endpoint, const char *who, const char *role)
{
	struct proto_tls_files t = test_identity(s, who);
	char err[256];
	struct proto_sync *c = proto_sync_connect(endpoint, &t, role, 15000, err, sizeof err);

	if (c == NULL)
		fprintf(stderr, "connect to %s as %s: %s\n", endpoint, who, err);
	return c;
}

int
test_call(struct proto_sync *s, const char *type, const void *body, void **reply, char *code,
    char *msg)
{
	const struct proto_type *pt = proto_type_find(type);
	void *r = NULL;
	char c[32], m[512];
	int rc = proto_sync_call(s, type, pt, body, &r, c, sizeof c, m, sizeof m);

	if (code != NULL)
		snprintf(code, 32, "%s", rc == 0 ? "" : c);
	if (msg != NULL)
		snprintf(msg, 512, "%s", rc == 0 ? "" : m);
	if (reply != NULL)
		*reply = r;
	else if (r != NULL)
		proto_body_free(pt->reply, r);
	return rc;
}

int
test_daemon_endpoint(const struct test_site *s, const char *name, char *ep, size_t len)
{
	char path[400], *buf;
	size_t n;
	int port;

	snprintf(path, sizeof path, "%s/%s.port", s->dir, name);
	if (file_read_all(path, &buf, &n, 64) != 0)
		return -1;
	port = atoi(buf);
	free(buf);
	return port > 0 && snprintf(ep, len, "127.0.0.1:%d", port) < (int)len ? 0 : -1;
}
