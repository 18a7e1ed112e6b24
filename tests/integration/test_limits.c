/*
 * Limits a peer cannot break (docs/ARCHITECTURE.md, "Limits"), against the real gca-gcs and
 * gca-cts started with RLIMIT_NOFILE 64 (set by the test before exec) and their logs in files:
 * a flood of connections (TLS port, unix socket) that runs them out of descriptors leaves them
 * answering an existing client, their CPU idle and their log small; the per-peer cap refuses the
 * connection over it with a clear error, without counting a job's bound channel; idle
 * connections are closed, a bound channel and a subscription are not; memory after a flood of
 * handshakes goes back; a request on a fresh connection is not held back by Nagle.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

#define NOFILE		64
#define FLOOD		150		/* connections at once: over NOFILE */
#define CAP		4		/* max_peer_connections of both daemons here */
#define LIMITS		"idle_timeout 2\nhandshake_timeout 2\nmax_peer_connections 4\n"
#define LOG_MAX		(100 * 1024)	/* bytes a flood may add to a daemon's log */
#define CPU_MAX		10		/* percent of one core while flooded */

static struct test_site site;
static char gcs_ep[64], cts_sock[400], gcs_log[400], cts_log[400];
static pid_t gcs_pid, cts_pid, job_pid, proxy_pid;
static struct proto_sync *job_channel;	/* a bound job's channel (test_cap_per_uid) */

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 || test_pki(&site, "gcs g1 gcs gm cts c1 broker b1 broker b2 "
	    "admin a") != 0)
		return -1;
	snprintf(gcs_log, sizeof gcs_log, "%s/g1.log", site.dir);
	snprintf(cts_log, sizeof cts_log, "%s/c1.log", site.dir);
	test_daemon_limits(NOFILE, gcs_log);
	gcs_pid = test_gcs_start(&site, "g1", "127.0.0.1:0", LIMITS, gcs_ep, sizeof gcs_ep);
	test_daemon_limits(NOFILE, cts_log);
	cts_pid = test_cts_start(&site, "c1", "app", gcs_ep, LIMITS, cts_sock, sizeof cts_sock);
	test_daemon_limits(0, NULL);
	return gcs_pid > 0 && cts_pid > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	int gcs = 0, cts = 0;

	(void)state;
	proto_sync_close(job_channel);
	if (job_pid > 0) {
		kill(job_pid, SIGKILL);
		waitpid(job_pid, NULL, 0);
	}
	if (proxy_pid > 0) {		/* a failed test_pooled_client_resends */
		kill(proxy_pid, SIGKILL);
		waitpid(proxy_pid, NULL, 0);
	}
	if (cts_pid > 0)
		cts = test_gcs_stop(cts_pid);
	if (gcs_pid > 0)
		gcs = test_gcs_stop(gcs_pid);
	test_site_down(&site);
	assert_int_equal(cts, 0);
	assert_int_equal(gcs, 0);
	return 0;
}

static struct proto_sync *
tls_as(const char *who, const char *ep)
{
	struct proto_tls_files f = test_identity(&site, who);
	char err[256];
	struct proto_sync *s = proto_sync_connect(ep, &f, NULL, 5000, err, sizeof err);

	if (s == NULL)
		fail_msg("%s to %s: %s", who, ep, err);
	return s;
}

static struct proto_sync *
local(void)
{
	char ep[500], err[256];
	struct proto_sync *s;

	snprintf(ep, sizeof ep, "unix:%s", cts_sock);
	if ((s = proto_sync_connect(ep, NULL, NULL, 5000, err, sizeof err)) == NULL)
		fail_msg("%s: %s", ep, err);
	return s;
}

/* ping on s: 0, or -1 with the error's code and message */
static int
ping(struct proto_sync *s, char *code, char *msg)
{
	void *reply = NULL;
	char c[64], m[512];
	int rc = proto_sync_call(s, "ping", proto_type_find("ping"), NULL, &reply, c, sizeof c, m,
	    sizeof m);

	if (reply != NULL)
		proto_body_free(proto_type_find("ping")->reply, reply);
	if (code != NULL)
		snprintf(code, 64, "%s", rc == 0 ? "" : c);
	if (msg != NULL)
		snprintf(msg, 512, "%s", rc == 0 ? "" : m);
	return rc;
}

static long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* utime + stime of pid, in clock ticks */
static long
cpu_ticks(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	p = fgets(buf, sizeof buf, f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

/* percent of one core pid used over the next second */
static long
cpu_percent(pid_t pid)
{
	long before = cpu_ticks(pid), after;

	sleep(1);
	after = cpu_ticks(pid);
	return (after - before) * 100 / sysconf(_SC_CLK_TCK);
}

static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

static bool
log_has(const char *path, const char *what)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "grep -q -- '%s' '%s'", what, path);
	return test_sh(NULL, 0, "%s", cmd) == 0;
}

/* n non-blocking connects to the TLS port (port > 0) or the unix socket; fds in fds, -1 for the
 * ones the kernel refused (a full backlog) */
static void
flood_open(int *fds, int n, int port)
{
	for (int i = 0; i < n; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int fd = socket(port > 0 ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		int rc;

		memcpy(sun.sun_path, cts_sock, strnlen(cts_sock, sizeof sun.sun_path - 1));
		rc = port > 0 ? connect(fd, (struct sockaddr *)&sin, sizeof sin) :
		    connect(fd, (struct sockaddr *)&sun, sizeof sun);
		if (fd >= 0 && rc != 0 && errno != EINPROGRESS) {
			close(fd);
			fd = -1;
		}
		fds[i] = fd;
	}
}

static void
flood_close(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
}

/*
 * The common part of both floods: the daemon (started with RLIMIT_NOFILE 64) meets FLOOD
 * connections; the existing client is answered during and after, the CPU stays idle, the log
 * small, and the listener pauses (its log says so) instead of spinning.
 */
static void
flood_check(const char *what, pid_t pid, const char *log, int port, struct proto_sync *existing,
    struct proto_sync *(*fresh)(void))
{
	int fds[FLOOD];
	long log0 = file_size(log), cpu, grew;
	char code[64], msg[512];
	struct proto_sync *after;

	assert_int_equal(ping(existing, code, msg), 0);
	flood_open(fds, FLOOD, port);
	usleep(300 * 1000);
	assert_int_equal(ping(existing, code, msg), 0);
	cpu = cpu_percent(pid);
	if (ping(existing, code, msg) != 0)
		fail_msg("%s: the existing client during the flood: %s: %s", what, code, msg);
	grew = file_size(log) - log0;
	print_message("%s flooded with %d connections: %ld%% CPU over a second, log +%ld bytes\n",
	    what, FLOOD, cpu, grew);
	if (cpu > CPU_MAX)
		fail_msg("%s: %ld%% CPU while flooded (over %d%%)", what, cpu, CPU_MAX);
	if (grew > LOG_MAX)
		fail_msg("%s: its log grew by %ld bytes during the flood", what, grew);
	if (!log_has(log, "cannot accept"))
		fail_msg("%s: the flood never ran it out of descriptors (no 'cannot accept' in %s)",
		    what, log);
	flood_close(fds, FLOOD);
	usleep(500 * 1000);
	assert_int_equal(ping(existing, code, msg), 0);
	after = fresh();
	if (ping(after, code, msg) != 0)
		fail_msg("%s: a fresh client after the flood: %s: %s", what, code, msg);
	proto_sync_close(after);
	assert_true(file_size(log) - log0 < LOG_MAX);
}

static struct proto_sync *
fresh_gcs(void)
{
	return tls_as("broker-b1", gcs_ep);
}

static void
test_gcs_flood(void **state)
{
	struct proto_sync *e = tls_as("broker-b1", gcs_ep);

	(void)state;
	proto_sync_set_timeout(e, 3000);
	flood_check("gca-gcs", gcs_pid, gcs_log, atoi(strrchr(gcs_ep, ':') + 1), e, fresh_gcs);
	proto_sync_close(e);
}

static void
test_cts_unix_flood(void **state)
{
	struct proto_sync *e = local();

	(void)state;
	proto_sync_set_timeout(e, 3000);
	flood_check("gca-cts (unix socket)", cts_pid, cts_log, 0, e, local);
	proto_sync_close(e);
}

/*
 * A request on a fresh connection is answered at once: without TCP_NODELAY it waits about 40 ms
 * for a delayed ACK (the server's session tickets, written after the handshake, are still
 * unacknowledged when it writes the answer). The regression guard of issue 22: the first ping on
 * each of 10 fresh connections (after the mutual TLS 1.3 handshake), median under 30 ms: a wide
 * margin over the ~1 ms it takes here, and still under the 40 ms stall. Checked by hand
 * (docs/BENCHMARKS.md, "gca-ctl and a fresh connection"): without proto_tcp_nodelay it fails.
 */
#define FRESH_N		10

static int
fresh_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_fresh_connection_is_fast(void **state)
{
	uint64_t took[FRESH_N];

	(void)state;
	for (int i = 0; i < FRESH_N; i++) {
		struct proto_sync *s = tls_as("admin-a", gcs_ep);
		uint64_t t0 = time_mono_ms();

		assert_int_equal(ping(s, NULL, NULL), 0);
		took[i] = time_mono_ms() - t0;
		proto_sync_close(s);
	}
	qsort(took, FRESH_N, sizeof took[0], fresh_cmp);
	print_message("first ping on a fresh TLS connection: %llu ms (median of %d; min %llu, "
	    "max %llu)\n", (unsigned long long)took[FRESH_N / 2], FRESH_N, (unsigned long long)took[0],
	    (unsigned long long)took[FRESH_N - 1]);
	assert_true(took[FRESH_N / 2] < 30);
}

static void
test_cap_per_cn(void **state)
{
	struct proto_sync *c[CAP + 1], *other;
	char code[64], msg[512];

	(void)state;
	for (int i = 0; i < CAP; i++) {
		c[i] = tls_as("broker-b2", gcs_ep);
		assert_int_equal(ping(c[i], code, msg), 0);
	}
	c[CAP] = tls_as("broker-b2", gcs_ep);
	assert_int_equal(ping(c[CAP], code, msg), -1);
	print_message("connection %d of broker b2: %s: %s\n", CAP + 1, code, msg);
	assert_string_equal(code, PROTO_E_BUSY);
	assert_non_null(strstr(msg, "too many connections from broker b2"));
	assert_true(log_has(gcs_log, "refusing a connection: too many connections from broker b2"));
	other = tls_as("broker-b1", gcs_ep);		/* another CN is not refused */
	assert_int_equal(ping(other, code, msg), 0);
	proto_sync_close(other);
	proto_sync_close(c[CAP]);
	proto_sync_close(c[0]);
	usleep(200 * 1000);
	c[0] = tls_as("broker-b2", gcs_ep);		/* under the cap again */
	assert_int_equal(ping(c[0], code, msg), 0);
	for (int i = 0; i < CAP; i++)
		proto_sync_close(c[i]);
}

/* A job: a child that sleeps, bound on its own channel (the app core service keeps it). */
static void
bind_job(void)
{
	struct msg_local_bind b = { "limits-job", NULL, 0, 0, false, false };
	char code[64] = "", msg[512] = "";
	void *reply = NULL;
	int rc = -1;

	if ((job_pid = fork()) == 0) {
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	b.pid = (uint64_t)job_pid;
	job_channel = local();
	for (int i = 0; i < 100; i++) {	/* busy until the CTS registered */
		rc = proto_sync_call(job_channel, "local_bind", proto_type_find("local_bind"), &b,
		    &reply, code, sizeof code, msg, sizeof msg);
		if (rc == 0 || strcmp(code, PROTO_E_BUSY) != 0)
			break;
		usleep(100 * 1000);
	}
	if (reply != NULL)
		proto_body_free(proto_type_find("local_bind")->reply, reply);
	if (rc != 0)
		fail_msg("local_bind: %s: %s", code, msg);
}

static void
test_cap_per_uid(void **state)
{
	struct proto_sync *c[CAP + 1];
	char code[64], msg[512];

	(void)state;
	bind_job();			/* not counted: a site runs hundreds of jobs per user */
	for (int i = 0; i < CAP; i++) {
		c[i] = local();
		assert_int_equal(ping(c[i], code, msg), 0);
	}
	c[CAP] = local();
	assert_int_equal(ping(c[CAP], code, msg), -1);
	print_message("unix connection %d of uid %u: %s: %s\n", CAP + 1, (unsigned)getuid(), code,
	    msg);
	assert_string_equal(code, PROTO_E_BUSY);
	assert_non_null(strstr(msg, "too many connections from uid"));
	{
		/* gca-exec over the cap: refused at once, saying why (not 15 s of "not ready") */
		char out[2048];
		uint64_t t0 = time_mono_ms();
		int rc = test_sh(out, sizeof out, "%s/gca-exec --gid limits-over --cts %s -- true 2>&1",
		    getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build", cts_sock);

		print_message("gca-exec over the cap (%llu ms): %s", (unsigned long long)(time_mono_ms() -
		    t0), out);
		assert_int_not_equal(rc, 0);
		assert_non_null(strstr(out, "too many connections from uid"));
		assert_true(time_mono_ms() - t0 < 5000);
	}
	for (int i = 0; i <= CAP; i++)
		proto_sync_close(c[i]);
	assert_int_equal(ping(job_channel, code, msg), 0);
}

/* idle_timeout 2 s: a quiet connection is closed; a subscription and a job's bound channel are
 * not. */
static void
test_idle_timeout(void **state)
{
	struct proto_sync *quiet = tls_as("broker-b1", gcs_ep), *sub = tls_as("broker-b1", gcs_ep);
	struct proto_sync *lquiet = local();
	struct msg_subscribe sb = { NULL };
	struct proto_msg m;
	char code[64], msg[512], err[256];
	void *reply = NULL;

	(void)state;
	assert_non_null(job_channel);
	assert_int_equal(ping(quiet, code, msg), 0);
	assert_int_equal(ping(lquiet, code, msg), 0);
	assert_int_equal(proto_sync_call(sub, "subscribe", proto_type_find("subscribe"), &sb, &reply,
	    code, sizeof code, msg, sizeof msg), 0);
	proto_body_free(proto_type_find("subscribe")->reply, reply);
	sleep(4);
	assert_int_equal(ping(quiet, code, msg), -1);
	assert_string_equal(code, "io");
	assert_int_equal(ping(lquiet, code, msg), -1);
	assert_string_equal(code, "io");
	/* the subscription is open: no event, but no end of stream either */
	assert_int_equal(proto_sync_read(sub, 200, NULL, &m, err, sizeof err), -2);
	assert_int_equal(ping(job_channel, code, msg), 0);
	proto_sync_close(quiet);
	proto_sync_close(lquiet);
	proto_sync_close(sub);
}

/* Handshakes without a certificate, batch at a time (2,000 by 200; GCA_LIMITS_HANDSHAKES and
 * GCA_LIMITS_BATCH change them for a measurement by hand); returns the handshakes made. */
static int
handshake_flood(int port, pid_t pid, long *peak)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *env_n = getenv("GCA_LIMITS_HANDSHAKES"), *env_b = getenv("GCA_LIMITS_BATCH");
	int total = env_n ? atoi(env_n) : 2000, batch = env_b ? atoi(env_b) : 200;
	int *fds = calloc((size_t)batch, sizeof *fds);
	SSL **ssl = calloc((size_t)batch, sizeof *ssl);
	int made = 0;

	assert_true(batch > 0 && total >= batch && fds != NULL && ssl != NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	for (int round = 0; round < total / batch; round++) {
		uint64_t until = time_mono_ms() + 3000 + (uint64_t)batch * 5;
		int left = batch;

		flood_open(fds, batch, port);
		for (int i = 0; i < batch; i++) {
			ssl[i] = NULL;
			if (fds[i] < 0) {
				left--;
				continue;
			}
			ssl[i] = SSL_new(ctx);
			SSL_set_fd(ssl[i], fds[i]);
		}
		while (left > 0 && time_mono_ms() < until) {
			for (int i = 0; i < batch; i++) {
				int rc, e;

				if (ssl[i] == NULL || SSL_is_init_finished(ssl[i]))
					continue;
				rc = SSL_connect(ssl[i]);
				e = SSL_get_error(ssl[i], rc);
				if (rc == 1 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)) {
					made += rc == 1;
					SSL_free(ssl[i]);
					ssl[i] = NULL;
					close(fds[i]);
					fds[i] = -1;
					left--;
				}
			}
			usleep(5 * 1000);
		}
		if (rss_kib(pid) > *peak)
			*peak = rss_kib(pid);
		for (int i = 0; i < batch; i++) {
			if (ssl[i] != NULL)
				SSL_free(ssl[i]);
		}
		flood_close(fds, batch);
	}
	SSL_CTX_free(ctx);
	free(fds);
	free(ssl);
	return made;
}

static void
test_memory_after_handshake_flood(void **state)
{
	char ep[64], log[400];
	long before, peak = 0, after;
	pid_t pid;
	int made;

	(void)state;
	snprintf(log, sizeof log, "%s/gm.log", site.dir);
	test_daemon_limits(0, log);
	pid = test_gcs_start(&site, "gm", "127.0.0.1:0", NULL, ep, sizeof ep);
	test_daemon_limits(0, NULL);
	assert_true(pid > 0);
	sleep(1);
	before = rss_kib(pid);
	made = handshake_flood(atoi(strrchr(ep, ':') + 1), pid, &peak);
	sleep(2);			/* the trim runs a second after the last close */
	after = rss_kib(pid);
	print_message("gca-gcs RSS: %ld KiB before, %ld KiB at the peak of %d handshakes, %ld KiB "
	    "two seconds after\n", before, peak, made, after);
	assert_int_equal(test_gcs_stop(pid), 0);
	assert_true(made >= (getenv("GCA_LIMITS_HANDSHAKES") ? 1 : 1000));
#ifdef __SANITIZE_ADDRESS__
	/* ASan keeps freed memory in its quarantine and its own allocator ignores malloc_trim: the
	 * figures are printed, the plain build checks them */
	print_message("(SAN build: RSS not checked)\n");
#else
	/* most of what the flood took is given back (without malloc_trim nearly nothing is) */
	assert_true(after - before <= (peak - before) / 2 || after - before < 2048);
	assert_true(after < before + 16 * 1024);
#endif
}

/*
 * A proxy in a child: the first connection it accepts is closed at once (before any handshake,
 * as a server out of descriptors or over its handshake budget does), the next ones are carried
 * to to_port. Returns its pid; *port is where it listens.
 */
static pid_t
closing_proxy(int to_port, int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(l, 8) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	*port = ntohs(sin.sin_port);
	if ((pid = fork()) != 0) {
		close(l);
		return pid;
	}
	alarm(20);			/* bounded, whatever the test does */
	close(accept(l, NULL, NULL));
	for (;;) {
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)to_port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int a = accept(l, NULL, NULL), b = socket(AF_INET, SOCK_STREAM, 0);
		char buf[16384];

		if (a < 0 || b < 0 || connect(b, (struct sockaddr *)&to, sizeof to) != 0)
			_exit(1);
		if (fork() != 0) {
			close(a);
			close(b);
			continue;
		}
		alarm(20);
		for (;;) {
			struct pollfd p[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
			ssize_t n;

			if (poll(p, 2, -1) < 0)
				_exit(0);
			for (int i = 0; i < 2; i++) {
				if (p[i].revents == 0)
					continue;
				if ((n = read(p[i].fd, buf, sizeof buf)) <= 0 ||
				    write(p[1 - i].fd, buf, (size_t)n) != n)
					_exit(0);
			}
		}
	}
}

struct pooled_reply {
	bool	done;
	char	code[64], msg[512];
};

static void
on_pooled_reply(const char *code, const char *msg, const void *body, void *arg)
{
	struct pooled_reply *r = arg;

	(void)body;
	r->done = true;
	snprintf(r->code, sizeof r->code, "%s", code ? code : "");
	snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
}

/*
 * The pooled client (the GCS's to each CTS) sends again, on a fresh connection, a request whose
 * connection closed before its handshake completed, instead of failing it (the GCS would say
 * cts_down); and it closes a connection quiet for idle_close_ms itself.
 */
static void
test_pooled_client_resends(void **state)
{
	struct event_base *base = event_base_new();
	struct proto_tls_files t = test_identity(&site, "admin-a");
	struct pooled_reply r = { 0 };
	char ep[64], err[256];
	int port;
	pid_t proxy = proxy_pid = closing_proxy(atoi(strrchr(gcs_ep, ':') + 1), &port);
	struct proto_client_config cfg = { .endpoint = ep, .expect_role = "gcs", .timeout_ms = 5000,
		.idle_close_ms = 500 };
	struct proto_client *cl;
	uint64_t until = time_mono_ms() + 8000;

	(void)state;
	assert_true(proxy > 0);
	snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
	cl = proto_client_new(base, &t, &cfg, err, sizeof err);
	assert_non_null(cl);
	proto_client_request(cl, "ping", proto_type_find("ping"), NULL, on_pooled_reply, &r);
	while (!r.done && time_mono_ms() < until)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	print_message("ping through a first connection closed before its handshake: %s %s\n",
	    r.code[0] ? r.code : "ok", r.msg);
	assert_true(r.done);
	assert_string_equal(r.code, "");
	assert_true(proto_client_up(cl));
	until = time_mono_ms() + 1500;		/* idle_close_ms 500: closed by the client */
	while (proto_client_up(cl) && time_mono_ms() < until)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	assert_false(proto_client_up(cl));
	r.done = false;				/* and a fresh one for the next request */
	until = time_mono_ms() + 5000;
	proto_client_request(cl, "ping", proto_type_find("ping"), NULL, on_pooled_reply, &r);
	while (!r.done && time_mono_ms() < until)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	assert_string_equal(r.code, "");
	proto_client_free(cl);
	event_base_free(base);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	proxy_pid = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_connection_is_fast),
		cmocka_unit_test(test_gcs_flood),
		cmocka_unit_test(test_cts_unix_flood),
		cmocka_unit_test(test_cap_per_cn),
		cmocka_unit_test(test_cap_per_uid),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_pooled_client_resends),
		cmocka_unit_test(test_memory_after_handshake_flood),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
