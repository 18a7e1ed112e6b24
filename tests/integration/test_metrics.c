/*
 * GET /metrics of the real gca-gcs and gca-cts (docs/METRICS.md): each metric made to move by what
 * a user does. A checkpoint moves the CTS's checkpoint counter, its phase histogram and image bytes
 * and the GCS's record counter; restores count by outcome; with the GCS stopped (SIGSTOP) a job's checkpoint stays in the
 * outbox (depth 1, an age) and drains once the GCS runs again; a client without a certificate and
 * one with a certificate of another CA move the refused handshakes; a CTS that stops takes the
 * GCS's count of CTSes up down, and up again when it is back; the directory's state follows slapd.
 * Bad input: an unknown path gets 404, POST gets 405, a 17th connection waits for one of 16 to
 * close, a metrics address that cannot be bound stops either daemon at start with a clear message.
 * promtool (Debian's prometheus) checks the text. gca_cts_image_fetches_total needs a second
 * resource: tests/integration/transfer.sh checks it after its fetch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

static struct test_site site;
static char gcs_ep[64], cts_sock[400], cts_log[400];
static int gcs_port, cts_port;		/* their metrics ports */
static pid_t gcs_pid, cts_pid;
static int kept_gcs = -1, kept_cts = -1;	/* open while the daemons stop */

/* A loopback port free now (the test picks it; the daemon binds it a moment later). */
static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int
gcs_start(void)
{
	char more[200];

	snprintf(more, sizeof more, "cts_timeout 2\nmetrics_listen 127.0.0.1:%d\n", gcs_port);
	return test_gcs_start(&site, "g1", gcs_ep[0] ? gcs_ep : "127.0.0.1:0", more, gcs_ep,
	    sizeof gcs_ep);
}

static int
cts_start(void)
{
	char more[200];

	snprintf(more, sizeof more, "metrics_listen 127.0.0.1:%d\n", cts_port);
	test_daemon_limits(0, cts_log);
	int pid = test_cts_start(&site, "c1", "app", gcs_ep, more, cts_sock, sizeof cts_sock);
	test_daemon_limits(0, NULL);
	return pid;
}

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 || test_pki(&site, "gcs g1 cts c1 cts c2 broker b") != 0)
		return -1;
	snprintf(cts_log, sizeof cts_log, "%s/c1.log", site.dir);
	gcs_port = free_port();
	cts_port = free_port();
	gcs_pid = gcs_start();
	cts_pid = cts_start();
	return gcs_pid > 0 && cts_pid > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	int gcs = 0, cts = 0;

	(void)state;
	if (gcs_pid > 0)
		kill(gcs_pid, SIGCONT);
	if (cts_pid > 0)
		cts = test_gcs_stop(cts_pid);
	if (gcs_pid > 0)
		gcs = test_gcs_stop(gcs_pid);
	if (kept_gcs >= 0)
		close(kept_gcs);
	if (kept_cts >= 0)
		close(kept_cts);
	test_site_down(&site);
	assert_int_equal(cts, 0);	/* a clean stop: no crash, no leak under SAN=1 */
	assert_int_equal(gcs, 0);
	return 0;
}

static const char *http_accept = "*/*";	/* the Accept header of http() */

/* One HTTP/1.0 request to 127.0.0.1:port; its status, the whole answer in out. -1: no answer. */
static int
http(int port, const char *method, const char *path, char *out, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[300];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1, n;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	out[0] = '\0';
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: %s\r\n\r\n",
	    method, path, http_accept);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	while (got + 1 < len && poll(&p, 1, 5000) == 1 &&
	    (n = (int)read(fd, out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	if (sscanf(out, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	return status;
}

static char page[256 * 1024];

/* The value of the sample line that starts with sample ("name{labels}" as rendered, or "name"),
 * in a fresh scrape of port; 0 if absent (a counter that never moved). */
static double
metric(int port, const char *sample)
{
	size_t n = strlen(sample);

	assert_int_equal(http(port, "GET", "/metrics", page, sizeof page), 200);
	for (const char *l = strstr(page, "\r\n\r\n"); l != NULL; l = strchr(l + 1, '\n')) {
		const char *s = l[0] == '\r' ? l + 4 : l + 1;

		if (strncmp(s, sample, n) == 0 && s[n] == ' ')
			return strtod(s + n + 1, NULL);
	}
	return 0;
}

/* Polls port until sample has value v (up to ms); the last value seen. */
static double
wait_metric(int port, const char *sample, double v, int ms)
{
	double got = metric(port, sample);

	for (int i = 0; i < ms / 100 && got != v; i++) {
		usleep(100 * 1000);
		got = metric(port, sample);
	}
	return got;
}

static struct proto_sync *
local_connect(void)
{
	char ep[500], err[256];
	struct proto_sync *s;

	snprintf(ep, sizeof ep, "unix:%s", cts_sock);
	if ((s = proto_sync_connect(ep, NULL, NULL, 5000, err, sizeof err)) == NULL)
		fail_msg("%s: %s", ep, err);
	return s;
}

static void
bind_gid(struct proto_sync *s, const char *gid)
{
	struct msg_local_bind b = { gid, NULL, (uint64_t)getpid(), 0, false, false };
	void *reply = NULL;
	char code[64], msg[512];

	if (proto_sync_call(s, "local_bind", proto_type_find("local_bind"), &b, &reply, code,
	    sizeof code, msg, sizeof msg) != 0)
		fail_msg("local_bind %s: %s %s", gid, code, msg);
	proto_body_free(proto_type_find("local_bind")->reply, reply);
}

/* The job (this process, bound on job) asks for its own checkpoint on another connection and
 * answers app_save with a small file; the asking connection is returned, its reply unread. */
static struct proto_sync *
job_checkpoint(struct proto_sync *job, const char *gid)
{
	struct proto_sync *ask = local_connect();
	struct msg_local_checkpoint lc = { gid };
	struct proto_msg m = { 0 };
	struct msg_app_saved a = { 0 };
	char err[256], p[4200], code[64], msg[512];
	void *reply = NULL;

	assert_int_equal(proto_sync_send(ask, "local_checkpoint", 1,
	    proto_type_find("local_checkpoint"), &lc), 0);
	assert_int_equal(proto_sync_read(job, 10000, NULL, &m, err, sizeof err), 0);
	assert_string_equal(m.type, "app_save");
	snprintf(p, sizeof p, "%s/state", ((struct msg_app_save *)m.body)->image_dir);
	assert_int_equal(file_write_whole(p, "0123456789", 10, 0600), 0);
	a = (struct msg_app_saved){ .checkpoint_id = ((struct msg_app_save *)m.body)->checkpoint_id,
		.ok = true };
	assert_int_equal(proto_sync_call(job, "app_saved", proto_type_find("app_saved"), &a, &reply,
	    code, sizeof code, msg, sizeof msg), 0);
	proto_body_free(proto_type_find("app_saved")->reply, reply);
	proto_msg_free(&m);
	return ask;
}

/* ask's reply to local_checkpoint: 0 ok, -1 an error. */
static int
job_checkpoint_reply(struct proto_sync *ask, int timeout_ms)
{
	struct proto_msg m = { 0 };
	char err[256];
	int rc;

	if (proto_sync_read(ask, timeout_ms, proto_type_find("local_checkpoint")->reply, &m, err,
	    sizeof err) != 0)
		fail_msg("no reply to local_checkpoint within %d ms: %s", timeout_ms, err);
	rc = strcmp(m.type, "ok") == 0 ? 0 : -1;
	proto_msg_free(&m);
	proto_sync_close(ask);
	return rc;
}

static void
test_http_answers(void **state)
{
	char *body;

	(void)state;
	assert_int_equal(http(gcs_port, "GET", "/metrics", page, sizeof page), 200);
	assert_non_null(strstr(page, "Content-Type: text/plain; version=0.0.4"));
	body = strstr(page, "\r\n\r\n");
	assert_non_null(body);
	assert_non_null(strstr(body, "# TYPE gca_gcs_directory_up gauge\n"));
	assert_non_null(strstr(body, "gca_process_resident_memory_bytes "));
	assert_non_null(strstr(body, "gca_process_open_fds "));
	assert_int_equal(strcmp(page + strlen(page) - 6, "# EOF\n"), 0);
	assert_int_equal(http(gcs_port, "GET", "/", page, sizeof page), 404);
	assert_int_equal(http(cts_port, "GET", "/metricsx", page, sizeof page), 404);
	assert_int_equal(http(cts_port, "POST", "/metrics", page, sizeof page), 405);
	assert_int_equal(http(cts_port, "HEAD", "/metrics", page, sizeof page), 200);
	assert_null(strstr(page, "# EOF"));	/* HEAD: no body */
	/* OpenMetrics when asked: a counter's family without _total, its sample with it */
	http_accept = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
	assert_int_equal(http(cts_port, "GET", "/metrics", page, sizeof page), 200);
	http_accept = "*/*";
	assert_non_null(strstr(page, "Content-Type: application/openmetrics-text; version=1.0.0"));
	assert_non_null(strstr(page, "# TYPE gca_cts_checkpoints counter\n"));
	assert_int_equal(strcmp(page + strlen(page) - 6, "# EOF\n"), 0);
	assert_true(metric(gcs_port, "gca_process_resident_memory_bytes") > 1e6);
	assert_true(metric(cts_port, "gca_process_open_fds") >= 3);
}

static void
test_checkpoint_moves_counters(void **state)
{
	struct proto_sync *job = local_connect();
	const char *ok = "gca_cts_checkpoints_total{core_service=\"app\",outcome=\"ok\"}";
	const char *rec = "gca_gcs_checkpoint_records_total{core_service=\"app\",outcome=\"ok\"}";
	const char *cnt = "gca_cts_checkpoint_phase_seconds_count{core_service=\"app\","
	    "phase=\"record\"}";
	const char *inf = "gca_cts_checkpoint_phase_seconds_bucket{core_service=\"app\","
	    "phase=\"seal\",le=\"+Inf\"}";
	double before = metric(cts_port, ok), rbefore = metric(gcs_port, rec);
	double cbefore = metric(cts_port, cnt), ibefore = metric(cts_port, inf);
	double bytes = metric(cts_port, "gca_cts_image_bytes_total{core_service=\"app\"}");

	(void)state;
	/* registered first: a bind before that is answered busy */
	assert_int_equal(wait_metric(cts_port, "gca_cts_gcs_link_up", 1, 10000), 1);
	bind_gid(job, "g-m1");
	assert_int_equal(wait_metric(cts_port, "gca_cts_jobs", 1, 2000), 1);
	assert_int_equal(job_checkpoint_reply(job_checkpoint(job, "g-m1"), 20000), 0);
	assert_int_equal(metric(cts_port, ok), before + 1);
	assert_int_equal(metric(cts_port, cnt), cbefore + 1);
	assert_int_equal(metric(cts_port, inf), ibefore + 1);
	assert_true(metric(cts_port, "gca_cts_checkpoint_phase_seconds_sum{core_service=\"app\","
	    "phase=\"record\"}") > 0);
	/* the image: the job's 10 bytes and the manifest the CTS wrote beside them */
	assert_true(metric(cts_port, "gca_cts_image_bytes_total{core_service=\"app\"}") >=
	    bytes + 10);
	assert_int_equal(metric(gcs_port, rec), rbefore + 1);
	proto_sync_close(job);
}

/* restore_prepare as gca-recover asks it: 0 ok, -1 an error (code). */
static int
restore(const char *gid, char *code)
{
	struct proto_sync *s = local_connect();
	struct msg_restore_prepare b = { gid, "latest", NULL };
	void *reply = NULL;
	char msg[512];
	int rc = proto_sync_call(s, "restore_prepare", proto_type_find("restore_prepare"), &b, &reply,
	    code, 64, msg, sizeof msg);

	proto_body_free(proto_type_find("restore_prepare")->reply, reply);
	proto_sync_close(s);
	return rc;
}

/* After test_checkpoint_moves_counters: g-m1 has an image here. */
static void
test_restores(void **state)
{
	const char *ok = "gca_cts_restores_total{outcome=\"ok\"}";
	const char *nf = "gca_cts_restores_total{outcome=\"not_found\"}";
	double ok0 = metric(cts_port, ok), nf0 = metric(cts_port, nf);
	char code[64];

	(void)state;
	assert_int_equal(restore("g-m1", code), 0);
	assert_int_equal(metric(cts_port, ok), ok0 + 1);
	assert_int_equal(restore("g-nobody", code), -1);
	assert_string_equal(code, "not_found");
	assert_int_equal(metric(cts_port, nf), nf0 + 1);
}

static void
test_outbox_grows_with_the_gcs_stopped(void **state)
{
	struct proto_sync *job = local_connect(), *ask;
	const char *depth = "gca_cts_outbox_depth{kind=\"record\"}";

	(void)state;
	bind_gid(job, "g-m2");
	assert_int_equal(metric(cts_port, depth), 0);
	assert_int_equal(metric(cts_port, "gca_cts_outbox_oldest_age_seconds"), 0);
	assert_int_equal(wait_metric(cts_port, "gca_cts_gcs_link_up", 1, 5000), 1);
	kill(gcs_pid, SIGSTOP);
	ask = job_checkpoint(job, "g-m2");
	assert_int_equal(wait_metric(cts_port, depth, 1, 5000), 1);
	usleep(1100 * 1000);
	assert_true(metric(cts_port, "gca_cts_outbox_oldest_age_seconds") >= 1);
	kill(gcs_pid, SIGCONT);
	/* the record goes once the GCS answers (now, or resent after a failed checkpoint) */
	(void)job_checkpoint_reply(ask, 30000);
	assert_int_equal(wait_metric(cts_port, depth, 0, 20000), 0);
	assert_int_equal(metric(cts_port, "gca_cts_outbox_oldest_age_seconds"), 0);
	proto_sync_close(job);
}

static void
test_refused_handshakes(void **state)
{
	const char *nocert = "gca_tls_handshakes_refused_total{reason=\"no_certificate\"}";
	const char *bad = "gca_tls_handshakes_refused_total{reason=\"certificate\"}";
	double n0 = metric(gcs_port, nocert), b0 = metric(gcs_port, bad), c0 = metric(cts_port, bad);
	char out[256];
	const char *colon = strrchr(gcs_ep, ':');

	(void)state;
	/* a client without a certificate */
	test_sh(out, sizeof out, "timeout 10 openssl s_client -connect %s -CAfile %s/pki/ca.crt "
	    "</dev/null >/dev/null 2>&1; echo done", gcs_ep, site.dir);
	assert_int_equal(wait_metric(gcs_port, nocert, n0 + 1, 5000), n0 + 1);
	/* a client with a certificate of another CA, at the GCS and at the CTS */
	assert_int_equal(test_sh(out, sizeof out, "cd %s && openssl req -x509 -newkey rsa:2048 "
	    "-nodes -keyout other.key -out other.crt -subj /CN=broker-x -days 1 >/dev/null 2>&1 "
	    "&& echo made", site.dir), 0);
	assert_non_null(strstr(out, "made"));
	test_sh(out, sizeof out, "timeout 10 openssl s_client -connect 127.0.0.1:%s -cert %s/other.crt "
	    "-key %s/other.key </dev/null >/dev/null 2>&1; echo done", colon + 1, site.dir, site.dir);
	assert_int_equal(wait_metric(gcs_port, bad, b0 + 1, 5000), b0 + 1);
	{
		char ep[64];

		assert_int_equal(test_daemon_endpoint(&site, "c1", ep, sizeof ep), 0);
		test_sh(out, sizeof out, "timeout 10 openssl s_client -connect %s -cert "
		    "%s/other.crt -key %s/other.key </dev/null >/dev/null 2>&1; echo done", ep,
		    site.dir, site.dir);
	}
	assert_int_equal(wait_metric(cts_port, bad, c0 + 1, 5000), c0 + 1);
}

static void
test_cts_up_and_down(void **state)
{
	(void)state;
	assert_int_equal(wait_metric(gcs_port, "gca_gcs_cts_up", 1, 5000), 1);
	assert_int_equal(test_gcs_stop(cts_pid), 0);
	cts_pid = -1;
	/* down once its heartbeats stop for cts_timeout (2 s) */
	assert_int_equal(wait_metric(gcs_port, "gca_gcs_cts_up", 0, 10000), 0);
	assert_int_equal(metric(gcs_port, "gca_gcs_cts_known"), 1);
	assert_true((cts_pid = cts_start()) > 0);
	assert_int_equal(wait_metric(gcs_port, "gca_gcs_cts_up", 1, 10000), 1);
	assert_int_equal(wait_metric(cts_port, "gca_cts_gcs_link_up", 1, 10000), 1);
}

static void
test_directory_state(void **state)
{
	(void)state;
	assert_int_equal(wait_metric(gcs_port, "gca_gcs_directory_up", 1, 5000), 1);
	assert_int_equal(metric(gcs_port, "gca_gcs_directory_queue_depth"), 0);
	/* slapd stopped: the GCS's writes wait in the queue; the loop still answers the scrape */
	assert_int_equal(test_site_slapd_signal(&site, SIGSTOP), 0);
	{
		struct proto_sync *job = local_connect();
		struct msg_local_bind b = { "g-m3", NULL, (uint64_t)getpid(), 0, false, false };

		/* the CTS asks the GCS to bind: the GCS queues a directory write */
		assert_int_equal(proto_sync_send(job, "local_bind", 1, proto_type_find("local_bind"),
		    &b), 0);
		assert_true(wait_metric(gcs_port, "gca_gcs_directory_queue_depth", 1, 5000) >= 1);
		assert_int_equal(test_site_slapd_signal(&site, SIGCONT), 0);
		assert_int_equal(wait_metric(gcs_port, "gca_gcs_directory_queue_depth", 0, 15000), 0);
		proto_sync_close(job);
	}
}

static void
test_promtool_accepts(void **state)
{
	char out[8192], path[400];
	int rc;

	(void)state;
	if (test_sh(NULL, 0, "command -v promtool >/dev/null") != 0) {
		test_not_run("integration/test_metrics promtool", "promtool is not installed "
		    "(Debian's prometheus package)");
		return;
	}
	for (int i = 0; i < 2; i++) {
		int port = i == 0 ? gcs_port : cts_port;
		const char *hist = "# TYPE gca_cts_checkpoint_phase_seconds histogram";

		/* this test's own client, not curl: what promtool reads is the body it checked */
		assert_int_equal(http(port, "GET", "/metrics", page, sizeof page), 200);
		snprintf(path, sizeof path, "%s/scrape-%d.txt", site.dir, i);
		assert_int_equal(file_write_whole(path, strstr(page, "\r\n\r\n") + 4,
		    strlen(strstr(page, "\r\n\r\n") + 4), 0600), 0);
		if (i == 1 && strstr(page, hist) == NULL)
			fail_msg("no histogram in the CTS's metrics");
		rc = test_sh(out, sizeof out, "promtool check metrics < %s 2>&1; echo \"rc=$?\"", path);
		(void)rc;
		if (strstr(out, "rc=0") == NULL)
			fail_msg("promtool check metrics on %s: %s", i == 0 ? "gca-gcs" : "gca-cts",
			    out);
	}
}

/* A connection to 127.0.0.1:port that sent an HTTP/1.1 scrape (kept alive) and read its answer's
 * first bytes; -1 if none came within ms. */
static int
kept_scrape(int port, int ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64];

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1) || poll(&p, 1, ms) != 1 ||
	    read(fd, buf, sizeof buf) <= 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* 16 connections at once (proto/metrics.h): the 17th waits until one closes. */
static void
test_connection_cap(void **state)
{
	int fds[16], extra;

	(void)state;
	for (size_t i = 0; i < GCA_NITEMS(fds); i++)
		assert_true((fds[i] = kept_scrape(cts_port, 5000)) >= 0);
	extra = kept_scrape(cts_port, 1000);
	if (extra >= 0)
		close(extra);
	assert_int_equal(extra, -1);
	close(fds[0]);
	assert_true((fds[0] = kept_scrape(cts_port, 5000)) >= 0);
	for (size_t i = 0; i < GCA_NITEMS(fds); i++)
		close(fds[i]);
	assert_int_equal(http(cts_port, "GET", "/metrics", page, sizeof page), 200);
	/* a scraper's kept connection at each daemon while they stop (teardown: a clean exit) */
	assert_true((kept_gcs = kept_scrape(gcs_port, 5000)) >= 0);
	assert_true((kept_cts = kept_scrape(cts_port, 5000)) >= 0);
}

/* A metrics address that cannot be bound stops the daemon at start, saying which and why. */
static void
test_bad_address_stops_start(void **state)
{
	char out[2048], log[400];
	struct proto_tls_files g = test_identity(&site, "gcs-g1");
	int pid;

	(void)state;
	/* the GCS's own TLS port is taken: binding metrics there fails */
	assert_int_equal(test_sh(out, sizeof out, "%s/gca-gcs --ca %s --cert %s --key %s "
	    "--directory %s --listen 127.0.0.1:0 --name g2 --metrics-listen 127.0.0.1:%d 2>&1",
	    getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build", g.ca, g.cert, g.key, site.gcs_conf,
	    gcs_port) != 0, 1);
	assert_non_null(strstr(out, "metrics_listen: cannot listen on 127.0.0.1:"));
	assert_int_equal(test_sh(out, sizeof out, "%s/gca-gcs --ca %s --cert %s --key %s "
	    "--directory %s --listen 127.0.0.1:0 --name g2 --metrics-listen nowhere 2>&1",
	    getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build", g.ca, g.cert, g.key,
	    site.gcs_conf) != 0, 1);
	assert_non_null(strstr(out, "\"nowhere\" is not an address:port"));
	/* a second CTS asking for the first one's metrics port */
	snprintf(log, sizeof log, "%s/c2.log", site.dir);
	test_daemon_limits(0, log);
	{
		char more[200], sock[400];

		snprintf(more, sizeof more, "metrics_listen 127.0.0.1:%d\n", cts_port);
		pid = test_cts_start(&site, "c2", "app", gcs_ep, more, sock, sizeof sock);
	}
	test_daemon_limits(0, NULL);
	assert_int_equal(pid, -1);
	test_sh(out, sizeof out, "cat %s", log);
	assert_non_null(strstr(out, "metrics_listen: cannot listen on 127.0.0.1:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_answers),
		cmocka_unit_test(test_checkpoint_moves_counters),
		cmocka_unit_test(test_restores),
		cmocka_unit_test(test_promtool_accepts),	/* with a histogram's series */
		cmocka_unit_test(test_outbox_grows_with_the_gcs_stopped),
		cmocka_unit_test(test_refused_handshakes),
		cmocka_unit_test(test_cts_up_and_down),
		cmocka_unit_test(test_directory_state),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_bad_address_stops_start),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
