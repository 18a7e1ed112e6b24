/*
 * The mTLS transport on 127.0.0.1 with certificates from scripts/gca-pki: a test server in a child
 * process, real clients (the blocking one, the async one, openssl s_client).
 *
 * The test server's handlers: ping (anyone); do_checkpoint (broker, admin) echoes the GID, and for
 * the GID "stats" answers with what the server saw (seq = requests dispatched, checkpoint_id =
 * the largest output buffered for one peer), for GID "peer" with the caller's identity;
 * cts_register (cts only); query (anyone) answers 64 KiB, to fill a slow reader's buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

static char dir[256], endpoint[64], sock[300];
static pid_t server_pid;
static uint64_t dispatched, max_output;
#define MAX_OUTPUT (256 * 1024)

/* ---- the test server (child) ---- */

static void
h_ping(struct proto_req *r, void *ctx)
{
	struct msg_ping_ok ok = { time_now_ms() };

	(void)ctx;
	dispatched++;
	proto_reply_ok(r, r->pt->reply, &ok);
}

static void
h_do_checkpoint(struct proto_req *r, void *ctx)
{
	struct msg_do_checkpoint *b = r->body;
	struct msg_checkpoint_ok ok = { .checkpoint_id = b->gid, .seq = ++dispatched, .cts = "cts-t" };
	char buf[300];

	(void)ctx;
	if (strcmp(b->gid, "stats") == 0) {
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)max_output);
		ok.checkpoint_id = buf;
		ok.seq = --dispatched;	/* asking for the figures is not counted */
	} else if (strcmp(b->gid, "peer") == 0) {
		snprintf(buf, sizeof buf, "%s/%s/%u/%d", r->peer.role, r->peer.name, (unsigned)r->peer.uid,
		    (int)r->peer.pid);
		ok.checkpoint_id = buf;
	}
	proto_reply_ok(r, r->pt->reply, &ok);
}

static void
h_cts_register(struct proto_req *r, void *ctx)
{
	(void)ctx;
	dispatched++;
	proto_reply_ok(r, r->pt->reply, NULL);
}

static void
h_query(struct proto_req *r, void *ctx)
{
	static char big[4000];
	static char *v[16];
	struct msg_query_ok ok = { 0 };
	struct proto_entry e = { 0 };
	struct proto_attr a = { .name = "blob" };
	struct proto_conn *c = r->conn;
	size_t out;

	(void)ctx;
	dispatched++;
	memset(big, 'x', sizeof big - 1);
	for (size_t i = 0; i < 16; i++)
		v[i] = big;
	a.vals.v = v;
	a.vals.n = 16;
	e.attrs = &a;
	e.n = 1;
	ok.entries.v = &e;
	ok.entries.n = 1;
	proto_conn_ref(c);
	proto_reply_ok(r, r->pt->reply, &ok);
	if ((out = proto_conn_output(c)) > max_output)
		max_output = out;
	proto_conn_unref(c);
}

static const struct proto_handler handlers[] = {
	{ "ping", PROTO_ROLE_ANY, h_ping },
	{ "do_checkpoint", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN | PROTO_ROLE_LOCAL, h_do_checkpoint },
	{ "cts_register", PROTO_ROLE_CTS, h_cts_register },
	{ "query", PROTO_ROLE_ANY, h_query },
};

static void
serve(int report)
{
	struct event_base *base = event_base_new();
	struct proto_tls_files tls;
	struct proto_server_config cfg = { handlers, GCA_NITEMS(handlers), NULL, 0, MAX_OUTPUT,
		2000, 0, NULL, 0, 0, 0 };
	char ca[300], crt[300], key[300], err[256];
	struct proto_server *s, *u;
	int port;

	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	snprintf(crt, sizeof crt, "%s/gcs-gcs-t.crt", dir);
	snprintf(key, sizeof key, "%s/gcs-gcs-t.key", dir);
	tls = (struct proto_tls_files){ ca, crt, key };
	s = proto_server_tls(base, "127.0.0.1:0", &tls, &cfg, err, sizeof err);
	u = proto_server_unix(base, sock, 0600, &cfg, err, sizeof err);
	port = s && u ? proto_server_port(s) : -1;
	if (port < 0)
		fprintf(stderr, "server: %s\n", err);
	if (write(report, &port, sizeof port) != sizeof port)
		_exit(1);
	close(report);
	event_base_dispatch(base);
	_exit(0);
}

/* ---- helpers (parent) ---- */

static struct proto_tls_files
creds(const char *who)
{
	static char ca[300], crt[300], key[300];

	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	snprintf(crt, sizeof crt, "%s/%s.crt", dir, who);
	snprintf(key, sizeof key, "%s/%s.key", dir, who);
	return (struct proto_tls_files){ ca, who ? crt : NULL, who ? key : NULL };
}

static struct proto_sync *
connect_as(const char *who)
{
	struct proto_tls_files t = creds(who);
	char err[256];

	return proto_sync_connect(endpoint, &t, "gcs", 5000, err, sizeof err);
}

static int
call_checkpoint(struct proto_sync *s, const char *gid, char *code, char *out, size_t outlen)
{
	struct msg_do_checkpoint req = { .gid = gid };
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	void *reply;
	char msg[512];
	int rc = proto_sync_call(s, "do_checkpoint", pt, &req, &reply, code, 32, msg, sizeof msg);

	if (rc == 0) {
		snprintf(out, outlen, "%s", ((struct msg_checkpoint_ok *)reply)->checkpoint_id);
		proto_body_free(pt->reply, reply);
	} else {
		snprintf(out, outlen, "%s", msg);
	}
	return rc;
}

static uint64_t
server_stat(const char *which)
{
	struct proto_sync *s = connect_as("broker-b1");
	struct msg_do_checkpoint req = { .gid = "stats" };
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	char code[32], msg[128];
	void *reply;
	uint64_t v;

	assert_non_null(s);
	assert_int_equal(proto_sync_call(s, "do_checkpoint", pt, &req, &reply, code, sizeof code, msg,
	    sizeof msg), 0);
	if (strcmp(which, "dispatched") == 0)
		v = ((struct msg_checkpoint_ok *)reply)->seq;
	else
		v = strtoull(((struct msg_checkpoint_ok *)reply)->checkpoint_id, NULL, 10);
	proto_body_free(pt->reply, reply);
	proto_sync_close(s);
	return v;
}

static int
setup(void **state)
{
	int fds[2], port = -1;
	char out[4096];

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/gca-tls.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	if (test_sh(out, sizeof out, "cd %s && P=%s/scripts/gca-pki && $P init . && "
	    "$P issue . gcs gcs-t && $P issue . broker b1 && $P issue . cts c1 && $P issue . admin a1 && "
	    "$P issue . broker old --expired && $P init other && $P issue other broker x && "
	    "cp other/broker-x.crt broker-x.crt && cp other/broker-x.key broker-x.key && "
	    "$P issue . broker farhost --host 10.9.9.9 >/dev/null", dir, test_top()) != 0) {
		fprintf(stderr, "gca-pki failed: %s\n", out);
		return -1;
	}
	snprintf(sock, sizeof sock, "%s/local.sock", dir);
	if (pipe(fds) != 0)
		return -1;
	if ((server_pid = fork()) == 0) {
		close(fds[0]);
		serve(fds[1]);
	}
	close(fds[1]);
	if (read(fds[0], &port, sizeof port) != sizeof port || port <= 0)
		return -1;
	close(fds[0]);
	snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", port);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	if (getenv("GCA_KEEP") == NULL)
		file_remove_tree(dir);
	return 0;
}

/* ---- the tests ---- */

static void
test_roles_decide_what_may_be_sent(void **state)
{
	struct proto_sync *b = connect_as("broker-b1"), *c = connect_as("cts-c1");
	struct msg_cts_register reg = { .name = "c1", .endpoint = "127.0.0.1:1", .core_service = "app" };
	const struct proto_type *pt = proto_type_find("cts_register");
	char code[32], out[512];
	void *reply;

	(void)state;
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(call_checkpoint(b, "job-1", code, out, sizeof out), 0);
	assert_string_equal(out, "job-1");
	/* a broker may not register a CTS */
	assert_int_equal(proto_sync_call(b, "cts_register", pt, &reg, &reply, code, sizeof code, out,
	    sizeof out), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_non_null(strstr(out, "broker may not send cts_register"));
	/* the connection stays up after a refusal */
	assert_int_equal(call_checkpoint(b, "job-2", code, out, sizeof out), 0);
	/* a CTS may, and may not checkpoint */
	assert_int_equal(proto_sync_call(c, "cts_register", pt, &reg, &reply, code, sizeof code, out,
	    sizeof out), 0);
	proto_body_free(pt->reply, reply);
	assert_int_equal(call_checkpoint(c, "job-1", code, out, sizeof out), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	/* the server knows who called */
	assert_int_equal(call_checkpoint(b, "peer", code, out, sizeof out), 0);
	assert_true(strncmp(out, "broker/b1/", 10) == 0);
	proto_sync_close(b);
	proto_sync_close(c);
}

/* A refused client: either the handshake fails, or its first request gets no answer (TLS 1.3
 * sends the server's refusal after the client thinks the handshake is done). Never dispatched. */
static void
refused(const char *who, const char *why)
{
	uint64_t before = server_stat("dispatched"), after;
	struct proto_tls_files t = creds(who);	/* after server_stat: creds() reuses its buffers */
	struct proto_sync *s;
	char err[256], code[32] = "", out[256];

	s = proto_sync_connect(endpoint, &t, "gcs", 5000, err, sizeof err);
	if (s != NULL) {
		assert_int_equal(call_checkpoint(s, "job-x", code, out, sizeof out), -1);
		assert_string_equal(code, "io");
		proto_sync_close(s);
	}
	after = server_stat("dispatched");
	print_message("%s refused (%s)\n", why, s ? out : err);
	assert_int_equal(after, before);	/* nothing of the refused client was dispatched */
}

static void
test_bad_credentials_are_refused(void **state)
{
	(void)state;
	refused(NULL, "no certificate");
	refused("broker-x", "a certificate of another CA");
	refused("broker-old", "an expired certificate");
}

/* A ping frame in a file of the test's folder, for openssl s_client to send as its first data. */
static void
ping_frame_file(char *path, size_t len)
{
	struct msg_empty body = { 0 };
	uint8_t *frame;
	size_t n;

	snprintf(path, len, "%s/ping.frame", dir);
	assert_int_equal(proto_encode("ping", 1, proto_type_find("ping"), &body, &frame, &n), 0);
	assert_int_equal(file_write_whole(path, frame, n, 0600), 0);
	free(frame);
}

static void
test_openssl_clients_without_a_certificate_or_over_tls12(void **state)
{
	char out[16384], frame[400];
	uint64_t before;

	(void)state;
	ping_frame_file(frame, sizeof frame);
	before = server_stat("dispatched");
	/* s_client without a certificate: alert 116 (certificate required). With TLS 1.3 its side of
	 * the handshake is done before the server's refusal, so it sends its ping; stdin stays open a
	 * second so that s_client does not quit before the refusal arrives. */
	test_sh(out, sizeof out, "(cat %s; sleep 1) | timeout 10 openssl s_client -connect %s "
	    "-CAfile %s/ca.crt 2>&1", frame, endpoint, dir);
	/* TLS 1.3: the refusal comes after the client's side of the handshake: alert 116, or the
	 * connection closed under it */
	if (!(strstr(out, "certificate required") != NULL || strstr(out, "alert number 116") != NULL ||
	    strstr(out, "unexpected eof") != NULL))
		print_message("s_client said:\n%s\n", out);
	assert_true(strstr(out, "certificate required") != NULL || strstr(out, "alert number 116") != NULL ||
	    strstr(out, "unexpected eof") != NULL);
	/* and its ping was never dispatched */
	assert_int_equal(server_stat("dispatched"), before);
	/* the same ping from s_client with a broker's certificate is dispatched: the frame is right,
	 * and the check above can fail */
	test_sh(out, sizeof out, "(cat %s; sleep 1) | timeout 10 openssl s_client -connect %s "
	    "-CAfile %s/ca.crt -cert %s/broker-b1.crt -key %s/broker-b1.key 2>&1", frame, endpoint, dir,
	    dir, dir);
	if (server_stat("dispatched") != before + 1)
		print_message("s_client with a certificate said:\n%s\n", out);
	assert_int_equal(server_stat("dispatched"), before + 1);
	/* TLS 1.2 is refused whatever the certificate: no cipher is ever agreed */
	test_sh(out, sizeof out, "echo | timeout 10 openssl s_client -tls1_2 -connect %s -CAfile %s/ca.crt "
	    "-cert %s/broker-b1.crt -key %s/broker-b1.key 2>&1", endpoint, dir, dir, dir);
	assert_non_null(strstr(out, "Cipher is (NONE)"));
	assert_true(strstr(out, "protocol version") != NULL || strstr(out, "unsupported protocol") != NULL ||
	    strstr(out, "alert") != NULL);
}

static void
test_client_checks_the_server_name_and_role(void **state)
{
	struct proto_tls_files t = creds("broker-b1");
	char err[256];
	struct proto_sync *s;

	(void)state;
	/* the server is a gcs: a client expecting a cts refuses it */
	s = proto_sync_connect(endpoint, &t, "cts", 5000, err, sizeof err);
	assert_null(s);
	assert_non_null(strstr(err, "is not a cts"));
	/* dialled as "localhost", the certificate names it: fine */
	{
		char ep[64];
		snprintf(ep, sizeof ep, "localhost:%s", strrchr(endpoint, ':') + 1);
		s = proto_sync_connect(ep, &t, "gcs", 5000, err, sizeof err);
		assert_non_null(s);
		proto_sync_close(s);
	}
}

static void
test_thousand_pipelined_requests_match_their_ids(void **state)
{
	struct proto_sync *s = connect_as("broker-b1");
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	static bool seen[1001];
	char err[256];

	(void)state;
	assert_non_null(s);
	for (uint32_t id = 1; id <= 1000; id++) {
		char gid[32];
		struct msg_do_checkpoint req = { .gid = gid };
		snprintf(gid, sizeof gid, "job-%u", id);
		assert_int_equal(proto_sync_send(s, "do_checkpoint", id, pt, &req), 0);
	}
	for (int i = 0; i < 1000; i++) {
		struct proto_msg m;
		char want[32];
		assert_int_equal(proto_sync_read(s, 10000, pt->reply, &m, err, sizeof err), 0);
		assert_string_equal(m.type, "ok");
		assert_true(m.id >= 1 && m.id <= 1000 && !seen[m.id]);
		seen[m.id] = true;
		snprintf(want, sizeof want, "job-%u", m.id);
		assert_string_equal(((struct msg_checkpoint_ok *)m.body)->checkpoint_id, want);
		proto_msg_free(&m);
	}
	proto_sync_close(s);
}

static void
test_malformed_and_oversized_frames(void **state)
{
	struct proto_sync *s = connect_as("broker-b1");
	struct proto_msg m;
	char err[256], code[32], out[128];
	static const uint8_t garbage[] = { 0, 0, 0, 3, 0xc1, 0xc1, 0xc1 };
	static const uint8_t unknown[] = { 0, 0, 0, 0x11, 0x84, 0xa1, 'v', 1, 0xa1, 't', 0xa3, 'z', 'z',
		'z', 0xa2, 'i', 'd', 9, 0xa1, 'b', 0x80 };
	uint8_t huge[4] = { 0, 0x20, 0, 0 };	/* 2 MiB */

	(void)state;
	assert_non_null(s);
	assert_int_equal(proto_sync_write_raw(s, garbage, sizeof garbage), 0);
	assert_int_equal(proto_sync_read(s, 5000, NULL, &m, err, sizeof err), 0);
	assert_string_equal(m.type, "err");
	assert_string_equal(((struct msg_err *)m.body)->code, PROTO_E_BAD_FRAME);
	proto_msg_free(&m);
	assert_int_equal(proto_sync_write_raw(s, unknown, sizeof unknown), 0);
	assert_int_equal(proto_sync_read(s, 5000, NULL, &m, err, sizeof err), 0);
	assert_string_equal(((struct msg_err *)m.body)->code, PROTO_E_UNKNOWN_TYPE);
	assert_int_equal(m.id, 9);
	proto_msg_free(&m);
	/* still up */
	assert_int_equal(call_checkpoint(s, "after-garbage", code, out, sizeof out), 0);
	/* an oversized frame: refused from its header, then the connection is closed */
	assert_int_equal(proto_sync_write_raw(s, huge, sizeof huge), 0);
	assert_int_equal(proto_sync_read(s, 5000, NULL, &m, err, sizeof err), 0);
	assert_string_equal(((struct msg_err *)m.body)->code, PROTO_E_TOO_LARGE);
	proto_msg_free(&m);
	assert_int_not_equal(proto_sync_read(s, 5000, NULL, &m, err, sizeof err), 0);
	proto_sync_close(s);
	/* and the server serves others */
	s = connect_as("broker-b1");
	assert_int_equal(call_checkpoint(s, "next", code, out, sizeof out), 0);
	proto_sync_close(s);
}

static void
test_a_peer_that_stops_reading_does_not_grow_the_server(void **state)
{
	struct proto_sync *s = connect_as("broker-b1");
	const struct proto_type *pt = proto_type_find("query");
	struct msg_query q = { .what = "cts" };
	enum { N = 1000 };	/* 1000 answers of 64 KiB: 64 MiB if nothing held the server back */
	char err[256];
	uint64_t seen;

	(void)state;
	assert_non_null(s);
	for (uint32_t id = 1; id <= N; id++)
		assert_int_equal(proto_sync_send(s, "query", id, pt, &q), 0);
	usleep(500 * 1000);
	seen = server_stat("max_output");
	print_message("largest output held for one peer: %llu bytes (bound %d)\n",
	    (unsigned long long)seen, MAX_OUTPUT);
	assert_true(seen <= MAX_OUTPUT + 128 * 1024);
	/* the reader comes back: every answer arrives */
	for (int i = 0; i < N; i++) {
		struct proto_msg m;
		int rc = proto_sync_read(s, 10000, pt->reply, &m, err, sizeof err);
		if (rc != 0)
			print_message("answer %d: %s\n", i, err);
		assert_int_equal(rc, 0);
		assert_string_equal(m.type, "ok");
		proto_msg_free(&m);
	}
	proto_sync_close(s);
}

struct async_seen {
	int	 done, ok;
	char	 code[32], msg[256];
};

static void
on_async(const char *code, const char *msg, const void *body, void *arg)
{
	struct async_seen *a = arg;

	a->done++;
	if (code == NULL && body != NULL)
		a->ok++;
	if (code != NULL) {
		snprintf(a->code, sizeof a->code, "%s", code);
		snprintf(a->msg, sizeof a->msg, "%s", msg);
	}
}

static void
run_async(struct event_base *base, int *counter, int want)
{
	uint64_t end = time_mono_ms() + 10000;

	while (*counter < want && time_mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(500);
}

static void
test_async_client(void **state)
{
	struct event_base *base = event_base_new();
	struct proto_tls_files t = creds("broker-b1");
	struct proto_client_config cfg = { .endpoint = endpoint, .expect_role = "gcs", .timeout_ms = 3000 };
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	struct msg_do_checkpoint req = { .gid = "async" };
	struct async_seen a = { 0 }, b = { 0 }, c = { 0 };
	char err[256];
	struct proto_client *cl = proto_client_new(base, &t, &cfg, err, sizeof err);

	(void)state;
	assert_non_null(cl);
	for (int i = 0; i < 50; i++)
		proto_client_request(cl, "do_checkpoint", pt, &req, on_async, &a);
	run_async(base, &a.done, 50);
	assert_int_equal(a.ok, 50);
	assert_true(proto_client_up(cl));
	proto_client_free(cl);
	/* expecting a CTS at a GCS's address: refused, clearly */
	cfg.expect_role = "cts";
	cl = proto_client_new(base, &t, &cfg, err, sizeof err);
	proto_client_request(cl, "do_checkpoint", pt, &req, on_async, &b);
	run_async(base, &b.done, 1);
	assert_string_equal(b.code, PROTO_E_UNAVAILABLE);
	assert_non_null(strstr(b.msg, "not a cts"));
	proto_client_free(cl);
	/* nobody listening: unavailable at once, not a hang */
	cfg.expect_role = "gcs";
	cfg.endpoint = "127.0.0.1:1";
	cl = proto_client_new(base, &t, &cfg, err, sizeof err);
	proto_client_request(cl, "do_checkpoint", pt, &req, on_async, &c);
	run_async(base, &c.done, 1);
	assert_int_equal(c.done, 1);
	assert_string_equal(c.code, PROTO_E_UNAVAILABLE);
	proto_client_free(cl);
	event_base_free(base);
}

static void
test_unix_socket_knows_the_caller(void **state)
{
	char ep[320], code[32], out[256], want[64];
	struct proto_sync *s;

	(void)state;
	snprintf(ep, sizeof ep, "unix:%s", sock);
	s = proto_sync_connect(ep, NULL, NULL, 5000, out, sizeof out);
	assert_non_null(s);
	assert_int_equal(call_checkpoint(s, "peer", code, out, sizeof out), 0);
	snprintf(want, sizeof want, "local/uid %u pid %d/%u/%d", (unsigned)getuid(), (int)getpid(),
	    (unsigned)getuid(), (int)getpid());
	assert_string_equal(out, want);
	proto_sync_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles_decide_what_may_be_sent),
		cmocka_unit_test(test_bad_credentials_are_refused),
		cmocka_unit_test(test_openssl_clients_without_a_certificate_or_over_tls12),
		cmocka_unit_test(test_client_checks_the_server_name_and_role),
		cmocka_unit_test(test_thousand_pipelined_requests_match_their_ids),
		cmocka_unit_test(test_malformed_and_oversized_frames),
		cmocka_unit_test(test_a_peer_that_stops_reading_does_not_grow_the_server),
		cmocka_unit_test(test_async_client),
		cmocka_unit_test(test_unix_socket_knows_the_caller),
	};
	signal(SIGPIPE, SIG_IGN);
	log_init("test_transport");
	return cmocka_run_group_tests(tests, setup, teardown);
}
