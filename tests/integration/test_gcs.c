/*
 * gca-gcs, the real daemon, against a real slapd (gca-site) and real TLS (gca-pki), with a
 * scripted CTS: a thread of this test serving do_checkpoint the way a CTS does (it logs the record
 * with checkpoint_log first, then answers), registering and beating its heart.
 * The real gca-cts replaces the script in the CTS suites.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
static char pki[300], gcs_ep[64], cts_ep[64];
static pid_t gcs_pid;

/* ---- the scripted CTS (its own thread and loop) ---- */

static struct {
	struct event_base	*base;
	struct proto_server	*server;
	struct proto_client	*gcs;
	struct event		*beat;
	atomic_bool		 silent, stop;
	atomic_int		 registered;
	pthread_t		 thread;
	int			 port;
} cts;

struct cts_pending {
	struct proto_req	*r;
	char			 id[ID_LEN + 1];
	char			 image[300];
};

static struct proto_tls_files
files(const char *who)
{
	static char ca[400], crt[400], key[400];

	snprintf(ca, sizeof ca, "%s/ca.crt", pki);
	snprintf(crt, sizeof crt, "%s/%s.crt", pki, who);
	snprintf(key, sizeof key, "%s/%s.key", pki, who);
	return (struct proto_tls_files){ ca, crt, key };
}

static void
cts_on_logged(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts_pending *p = arg;
	struct msg_do_checkpoint *b = p->r->body;

	if (code != NULL) {
		proto_reply_err(p->r, code, "record not stored: %s", msg);
	} else {
		struct msg_checkpoint_ok ok = { p->id, p->image, "cts-1",
			((const struct msg_seq_ok *)body)->seq };
		(void)b;
		proto_reply_ok(p->r, p->r->pt->reply, &ok);
	}
	free(p);
}

static void
cts_do_checkpoint(struct proto_req *r, void *ctx)
{
	struct msg_do_checkpoint *b = r->body;
	struct cts_pending *p;
	struct msg_checkpoint_log log = { 0 };
	char idem[200];

	(void)ctx;
	if (strncmp(b->gid, "refuse", 6) == 0) {
		proto_reply_err(r, PROTO_E_REFUSED, "core service: the job did not answer");
		return;
	}
	p = calloc(1, sizeof *p);
	p->r = r;
	id_new(p->id);
	snprintf(p->image, sizeof p->image, "%s/%s", b->gid, p->id);
	log.checkpoint_id = p->id;
	log.gid = b->gid;
	log.cts = "cts-1";
	log.core_service = "app";
	log.image_name = p->image;
	log.kind = "external";
	log.time_ms = time_now_ms();
	log.size = 123;
	if (b->idem_key != NULL) {
		snprintf(idem, sizeof idem, "idem=%s", b->idem_key);
		proto_strlist_add(&log.properties, idem);
	}
	proto_client_request(cts.gcs, "checkpoint_log", proto_type_find("checkpoint_log"), &log,
	    cts_on_logged, p);
	proto_strlist_free(&log.properties);
}

static void
cts_on_registered(const char *code, const char *msg, const void *body, void *arg)
{
	(void)body;
	(void)arg;
	if (code == NULL)
		atomic_fetch_add(&cts.registered, 1);
	else
		fprintf(stderr, "scripted CTS: register: %s %s\n", code, msg);
}

static void
cts_register(void)
{
	char ep[64];
	const char *classes[] = { "basic" }, *props[] = { "arch=x86_64", "os=linux" };
	struct msg_cts_register reg = { .name = "cts-1", .endpoint = ep, .exec_manager = "em://t",
		.core_service = "app", .external = true, .self_checkpoint = true, .migrate = true,
		.any_image = true, .classes = { (char **)classes, 1 }, .properties = { (char **)props, 2 },
		.exec_wrapper = "gca-exec", .recovery_wrapper = "gca-recover",
		.exec_params = "--gid {gid}", .status = "ok" };

	snprintf(ep, sizeof ep, "127.0.0.1:%d", cts.port);
	proto_client_request(cts.gcs, "cts_register", proto_type_find("cts_register"), &reg,
	    cts_on_registered, NULL);
}

static void
cts_on_beat_reply(const char *code, const char *msg, const void *body, void *arg)
{
	(void)msg;
	(void)body;
	(void)arg;
	if (code != NULL && strcmp(code, PROTO_E_NOT_FOUND) == 0)
		cts_register();		/* the GCS restarted: register again */
}

static void
cts_on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct msg_cts_heartbeat hb = { "cts-1", "ok" };

	(void)fd;
	(void)what;
	(void)arg;
	if (atomic_load(&cts.stop))
		event_base_loopbreak(cts.base);
	else if (!atomic_load(&cts.silent))
		proto_client_request(cts.gcs, "cts_heartbeat", proto_type_find("cts_heartbeat"), &hb,
		    cts_on_beat_reply, NULL);
}

static const struct proto_handler cts_handlers[] = {
	{ "do_checkpoint", PROTO_ROLE_GCS, cts_do_checkpoint },
};

static void *
cts_main(void *arg)
{
	(void)arg;
	event_base_dispatch(cts.base);
	return NULL;
}

static int
cts_start(void)
{
	struct proto_tls_files t = files("cts-cts-1");
	struct proto_server_config scfg = { .handlers = cts_handlers, .nhandlers = 1 };
	struct proto_client_config ccfg = { .endpoint = gcs_ep, .expect_role = "gcs", .timeout_ms = 10000 };
	struct timeval every = { 0, 300 * 1000 };
	char err[256];

	cts.base = event_base_new();
	if ((cts.server = proto_server_tls(cts.base, "127.0.0.1:0", &t, &scfg, err, sizeof err)) == NULL ||
	    (cts.gcs = proto_client_new(cts.base, &t, &ccfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "scripted CTS: %s\n", err);
		return -1;
	}
	cts.port = proto_server_port(cts.server);
	snprintf(cts_ep, sizeof cts_ep, "127.0.0.1:%d", cts.port);
	cts_register();
	cts.beat = event_new(cts.base, -1, EV_PERSIST, cts_on_beat, NULL);
	event_add(cts.beat, &every);
	return pthread_create(&cts.thread, NULL, cts_main, NULL);
}

/* ---- the daemon ---- */

static const char gcs_more[] = "cts_timeout 2\nrequest_timeout 5\ndirectory_timeout 2\n"
    "subscriber_backlog 65536\n";

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 ||
	    test_pki(&site, "gcs gcs-t cts cts-1 cts cts-2 broker b1 admin a1") != 0)
		return -1;
	snprintf(pki, sizeof pki, "%s/pki", site.dir);
	if ((gcs_pid = test_gcs_start(&site, "gcs-t", "127.0.0.1:0", gcs_more, gcs_ep,
	    sizeof gcs_ep)) < 0)
		return -1;
	return cts_start();
}

static int ldap_count(const char *base, const char *filter);

static int
teardown(void **state)
{
	int status = 0;

	(void)state;
	atomic_store(&cts.stop, true);
	pthread_join(cts.thread, NULL);
	proto_client_free(cts.gcs);
	proto_server_free(cts.server);
	event_free(cts.beat);
	event_base_free(cts.base);
	status = test_gcs_stop(gcs_pid);
	/* a clean stop says so in ou=services; a broker reading it knows the GCS is gone */
	if (status == 0 && ldap_count("ou=services,o=gca", "(&(cn=gcs-t)(gcaStatus=stopped))") != 1) {
		fprintf(stderr, "gca-gcs did not mark itself stopped in ou=services\n");
		status = -1;
	}
	test_site_down(&site);
	/* gca-gcs stops cleanly on SIGTERM (under SAN=1: and leaks nothing) */
	if (status != 0) {
		fprintf(stderr, "gca-gcs exited with status %d\n", status);
		return -1;
	}
	return 0;
}

/* ---- a broker's view ---- */

static struct proto_sync *
as(const char *who)
{
	struct proto_tls_files t = files(who);
	char err[256];
	struct proto_sync *s = proto_sync_connect(gcs_ep, &t, "gcs", 10000, err, sizeof err);

	if (s == NULL)
		print_message("connect as %s: %s\n", who, err);
	assert_non_null(s);
	return s;
}

/* One request; returns 0 or -1 with code. reply (may be NULL) gets the body, to free. */
static int
call(struct proto_sync *s, const char *type, const void *body, void **reply, char *code, char *msg)
{
	void *r = NULL;
	char c[32], m[512];
	int rc = proto_sync_call(s, type, proto_type_find(type), body, &r, c, sizeof c, m, sizeof m);

	if (code != NULL)
		strcpy(code, rc == 0 ? "" : c);
	if (msg != NULL)
		strcpy(msg, rc == 0 ? "" : m);
	if (reply != NULL)
		*reply = r;
	else
		proto_body_free(proto_type_find(type)->reply, r);
	return rc;
}

static int
ldap_count(const char *base, const char *filter)
{
	char out[256];

	test_sh(out, sizeof out, "ldapsearch -x -LLL -H '%s' -b '%s' '%s' dn | grep -c '^dn:'",
	    site.ldap_uri, base, filter);
	return atoi(out);
}

static void
bind_job(const char *as_cts, const char *gid, const char *owner, bool recovery, const char *want)
{
	struct proto_sync *s = as(as_cts);
	struct msg_job_bind b = { .gid = (char *)gid, .cts = (char *)as_cts + 4, .local_id = "4242",
		.owner = (char *)owner, .recovery = recovery };
	char code[32], msg[512];

	call(s, "job_bind", &b, NULL, code, msg);
	if (strcmp(code, want) != 0)
		print_message("job_bind %s by %s: '%s' %s\n", gid, as_cts, code, msg);
	assert_string_equal(code, want);
	proto_sync_close(s);
}

static void
wait_registered(void)
{
	for (int i = 0; i < 100 && atomic_load(&cts.registered) == 0; i++)
		usleep(50 * 1000);
	assert_true(atomic_load(&cts.registered) > 0);
}

static void
test_gcs_and_cts_are_published(void **state)
{
	(void)state;
	wait_registered();
	assert_int_equal(ldap_count("ou=services,o=gca", "(&(cn=gcs-t)(gcaEndpoint=*))"), 1);
	assert_int_equal(ldap_count("ou=cts,o=gca", "(&(cn=cts-1)(gcaClass=basic)(gcaProperty=arch=x86_64)"
	    "(gcaMigration=TRUE)(gcaStatus=ok))"), 1);
}

static void
test_registration_rules(void **state)
{
	struct proto_sync *c2 = as("cts-cts-2"), *b = as("broker-b1"), *a = as("admin-a1");
	struct msg_cts_register reg = { .name = "cts-1", .endpoint = "127.0.0.1:1", .core_service = "app" };
	const char *cls[] = { "no-such-class" }, *props[] = { "mpi=yes" };
	struct msg_class_register cr = { .name = "mpi", .description = "MPI jobs",
		.properties = { (char **)props, 1 } };
	char code[32], msg[512];

	(void)state;
	/* a CTS registers only itself */
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	/* a class that does not exist */
	reg.name = "cts-2";
	reg.classes.v = (char **)cls;
	reg.classes.n = 1;
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	assert_non_null(strstr(msg, "no-such-class"));
	/* only an admin adds classes */
	assert_int_equal(call(b, "class_register", &cr, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_int_equal(call(a, "class_register", &cr, NULL, code, msg), 0);
	assert_int_equal(ldap_count("ou=classes,o=gca", "(&(cn=mpi)(gcaProperty=mpi=yes))"), 1);
	/* now cts-2 may name it; its endpoint is dead (127.0.0.1:1) */
	reg.classes.v = (char **)(const char *[]){ "mpi" };
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), 0);
	/* a broker may not log records */
	{
		char id[ID_LEN + 1];
		struct msg_checkpoint_log log = { .checkpoint_id = id, .gid = "x", .cts = "cts-1",
			.core_service = "app" };
		id_new(id);
		assert_int_equal(call(b, "checkpoint_log", &log, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_FORBIDDEN);
	}
	proto_sync_close(a);
	proto_sync_close(b);
	proto_sync_close(c2);
}

static void
test_binding_rules(void **state)
{
	(void)state;
	bind_job("cts-cts-1", "job-held", "alice", false, "");
	/* cts-2 may not take a GID that live cts-1 holds, unless it recovers it */
	bind_job("cts-cts-2", "job-held", "alice", false, PROTO_E_CONFLICT);
	/* nor may another user's process bind it, recovery or not */
	bind_job("cts-cts-2", "job-held", "bob", true, PROTO_E_FORBIDDEN);
	/* its owner recovers it on cts-2 */
	bind_job("cts-cts-2", "job-held", "alice", true, "");
	assert_int_equal(ldap_count("ou=jobs,o=gca", "(&(gcaGID=job-held)(gcaCTSName=cts-2))"), 1);
	/* a CTS binds for itself only */
	{
		struct proto_sync *s = as("cts-cts-1");
		struct msg_job_bind b = { .gid = "job-x", .cts = "cts-2", .owner = "alice" };
		char code[32];
		assert_int_equal(call(s, "job_bind", &b, NULL, code, NULL), -1);
		assert_string_equal(code, PROTO_E_FORBIDDEN);
		proto_sync_close(s);
	}
}

static uint64_t
checkpoint(struct proto_sync *b, const char *gid, const char *key, char *id, const char *want)
{
	struct msg_do_checkpoint req = { .gid = (char *)gid, .idem_key = (char *)key };
	struct msg_checkpoint_ok *ok;
	char code[32], msg[512];
	uint64_t seq = 0;

	if (call(b, "do_checkpoint", &req, (void **)&ok, code, msg) == 0) {
		seq = ok->seq;
		if (id != NULL)
			strcpy(id, ok->checkpoint_id);
		proto_body_free(proto_type_find("do_checkpoint")->reply, ok);
	} else {
		print_message("do_checkpoint %s: %s: %s\n", gid, code, msg);
	}
	assert_string_equal(code, want);
	return seq;
}

static void
test_checkpoints_are_routed_and_recorded(void **state)
{
	struct proto_sync *b = as("broker-b1");
	char id1[64], id2[64], idk[64], idk2[64], filter[200];

	(void)state;
	bind_job("cts-cts-1", "job-b", "alice", false, "");
	assert_int_equal(checkpoint(b, "job-b", NULL, id1, ""), 1);
	assert_int_equal(checkpoint(b, "job-b", NULL, id2, ""), 2);
	assert_string_not_equal(id1, id2);
	snprintf(filter, sizeof filter, "(&(gcaCheckpointId=%s)(gcaSequenceNumber=2)(gcaCTSName=cts-1))", id2);
	assert_int_equal(ldap_count("gcaGID=job-b,ou=jobs,o=gca", filter), 1);
	/* a retry with the same idempotency key returns the first result, takes no second checkpoint */
	assert_int_equal(checkpoint(b, "job-b", "k-1", idk, ""), 3);
	assert_int_equal(checkpoint(b, "job-b", "k-1", idk2, ""), 3);
	assert_string_equal(idk, idk2);
	assert_int_equal(ldap_count("gcaGID=job-b,ou=jobs,o=gca", "(objectClass=gcaCheckpoint)"), 3);
	/* each error is its own */
	checkpoint(b, "no-such-job", NULL, NULL, PROTO_E_NOT_FOUND);
	bind_job("cts-cts-1", "refuse-1", "alice", false, "");
	checkpoint(b, "refuse-1", NULL, NULL, PROTO_E_REFUSED);
	bind_job("cts-cts-2", "job-on-dead-cts", "alice", false, "");
	checkpoint(b, "job-on-dead-cts", NULL, NULL, PROTO_E_CTS_DOWN);
	proto_sync_close(b);
}

/* Another GCS (here: a plain ldapmodify with the GCS's identity) moves a binding: this GCS's
 * cache follows the directory's change feed and routes to the new holder at once. */
static void
test_cache_follows_the_directory(void **state)
{
	struct proto_sync *b = as("broker-b1");
	char out[1024];

	(void)state;
	bind_job("cts-cts-1", "job-moved", "alice", false, "");
	checkpoint(b, "job-moved", NULL, NULL, "");
	assert_int_equal(test_sh(out, sizeof out, "pw=$(awk '$1==\"password\"{print $2}' %s); "
	    "printf 'dn: gcaGID=job-moved,ou=jobs,o=gca\\nchangetype: modify\\nreplace: gcaCTSName\\n"
	    "gcaCTSName: cts-2\\n' | ldapmodify -x -H '%s' -D cn=gcs-directory,o=gca -w \"$pw\" 2>&1",
	    site.gcs_conf, site.ldap_uri), 0);
	/* cts-2's endpoint is dead: the request must go there, not to cts-1 */
	for (int i = 0; i < 50; i++) {
		struct msg_do_checkpoint req = { .gid = "job-moved" };
		char code[32];
		call(b, "do_checkpoint", &req, NULL, code, NULL);
		if (strcmp(code, PROTO_E_CTS_DOWN) == 0)
			break;
		usleep(100 * 1000);
	}
	checkpoint(b, "job-moved", NULL, NULL, PROTO_E_CTS_DOWN);
	proto_sync_close(b);
}

static void
test_checkpoint_log_is_idempotent(void **state)
{
	struct proto_sync *c = as("cts-cts-1");
	char id[ID_LEN + 1], filter[200];
	struct msg_checkpoint_log log = { .checkpoint_id = id, .gid = "job-b", .cts = "cts-1",
		.core_service = "app", .kind = "periodic" };
	struct msg_seq_ok *a, *b2;

	(void)state;
	id_new(id);
	assert_int_equal(call(c, "checkpoint_log", &log, (void **)&a, NULL, NULL), 0);
	assert_int_equal(call(c, "checkpoint_log", &log, (void **)&b2, NULL, NULL), 0);
	assert_int_equal(a->seq, b2->seq);
	snprintf(filter, sizeof filter, "(gcaCheckpointId=%s)", id);
	assert_int_equal(ldap_count("ou=jobs,o=gca", filter), 1);
	free(a);
	free(b2);
	proto_sync_close(c);
}

static void
test_queries(void **state)
{
	struct proto_sync *b = as("broker-b1");
	struct msg_query q = { .what = "cts", .class_ = "basic" };
	struct msg_query_ok *ok;
	char code[32];

	(void)state;
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 1);
	proto_body_free(proto_type_find("query")->reply, ok);
	q = (struct msg_query){ .what = "checkpoints", .gid = "job-b", .limit = 2 };
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 2);
	for (size_t a = 0; a < ok->entries.v[0].n; a++)
		if (strcasecmp(ok->entries.v[0].attrs[a].name, "gcaSequenceNumber") == 0)
			assert_string_equal(ok->entries.v[0].attrs[a].vals.v[0], "4");	/* newest first */
	proto_body_free(proto_type_find("query")->reply, ok);
	q = (struct msg_query){ .what = "jobs", .cts = "cts-1" };
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_true(ok->entries.n >= 2);
	proto_body_free(proto_type_find("query")->reply, ok);
	q = (struct msg_query){ .what = "everything" };
	assert_int_equal(call(b, "query", &q, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	proto_sync_close(b);
}

static void
test_subscribers_hear_checkpoints(void **state)
{
	struct proto_sync *sub = as("broker-b1"), *b = as("broker-b1");
	struct msg_subscribe s = { .gid = "job-b" };
	struct proto_msg m;
	char err[256], id[64];
	bool heard = false;

	(void)state;
	assert_int_equal(call(sub, "subscribe", &s, NULL, NULL, NULL), 0);
	checkpoint(b, "job-b", NULL, id, "");
	for (int i = 0; i < 10 && !heard; i++) {
		assert_int_equal(proto_sync_read(sub, 5000, NULL, &m, err, sizeof err), 0);
		if (strcmp(m.type, "notify") == 0) {
			struct msg_notify *n = m.body;
			if (strcmp(n->event, "checkpoint") == 0) {
				assert_string_equal(n->gid, "job-b");
				assert_string_equal(n->checkpoint_id, id);
				heard = true;
			}
		}
		proto_msg_free(&m);
	}
	assert_true(heard);
	proto_sync_close(sub);
	proto_sync_close(b);
}

/* Reads checkpoint events of one GID until want or 30 s; returns how many. */
struct fast_reader {
	struct proto_sync	*s;
	int			 want, got;
};

static void *
fast_read(void *arg)
{
	struct fast_reader *f = arg;
	uint64_t end = time_mono_ms() + 30000;
	struct proto_msg m;
	char err[256];

	while (f->got < f->want && time_mono_ms() < end) {
		if (proto_sync_read(f->s, 5000, NULL, &m, err, sizeof err) != 0)
			break;
		if (strcmp(m.type, "notify") == 0 &&
		    strcmp(((struct msg_notify *)m.body)->event, "checkpoint") == 0)
			f->got++;
		proto_msg_free(&m);
	}
	return NULL;
}

static void
test_slow_subscriber_is_dropped(void **state)
{
	enum { N = 4000 };
	struct proto_sync *cts1 = as("cts-cts-1"), *slow = as("broker-b1");
	struct fast_reader fast = { as("broker-b1"), N, 0 };
	char gid[256], err[256];
	struct msg_subscribe all = { NULL }, one = { gid };
	struct msg_job_bind jb = { gid, "cts-1", "1", "alice", NULL, false };
	int slow_events = 0, acked = 0;
	struct proto_msg m;
	pthread_t t;

	(void)state;
	/* long GIDs make big events: the bound is reached with fewer records */
	memset(gid, 'x', 215);
	snprintf(gid + 215, sizeof gid - 215, "-slow");
	{
		char code[32], msg[512];
		if (call(cts1, "job_bind", &jb, NULL, code, msg) != 0)
			fail_msg("job_bind: %s: %s", code, msg);
	}
	assert_int_equal(call(slow, "subscribe", &all, NULL, NULL, NULL), 0);
	assert_int_equal(call(fast.s, "subscribe", &one, NULL, NULL, NULL), 0);
	pthread_create(&t, NULL, fast_read, &fast);
	for (uint32_t i = 1; i <= N; i++) {
		char id[ID_LEN + 1];
		struct msg_checkpoint_log rec = { .checkpoint_id = id, .gid = gid, .cts = "cts-1",
			.core_service = "app", .kind = "job", .time_ms = time_now_ms() };
		id_new(id);
		assert_int_equal(proto_sync_send(cts1, "checkpoint_log", i,
		    proto_type_find("checkpoint_log"), &rec), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(proto_sync_read(cts1, 30000, proto_type_find("checkpoint_log")->reply,
		    &m, err, sizeof err), 0);
		acked += strcmp(m.type, "ok") == 0;
		proto_msg_free(&m);
	}
	pthread_join(t, NULL);
	assert_int_equal(acked, N);
	assert_int_equal(fast.got, N);		/* the reader heard every one, at its own pace */
	/* the one that did not read was dropped: it finds fewer events, then the end */
	while (proto_sync_read(slow, 5000, NULL, &m, err, sizeof err) == 0) {
		slow_events++;
		proto_msg_free(&m);
	}
	print_message("# the slow subscriber got %d of %d events before it was dropped\n",
	    slow_events, N);
	assert_true(slow_events < N);
	proto_sync_close(slow);
	proto_sync_close(fast.s);
	proto_sync_close(cts1);
}

static void
test_directory_down_is_a_clear_error(void **state)
{
	struct proto_sync *b = as("broker-b1");
	uint64_t t0;

	(void)state;
	assert_int_equal(test_site_slapd_signal(&site, SIGSTOP), 0);
	t0 = time_mono_ms();
	checkpoint(b, "job-b", NULL, NULL, PROTO_E_DIRECTORY_DOWN);
	print_message("directory_down after %llu ms\n", (unsigned long long)(time_mono_ms() - t0));
	assert_int_equal(test_site_slapd_signal(&site, SIGCONT), 0);
	/* and back to work */
	for (int i = 0; i < 20; i++) {
		struct msg_do_checkpoint req = { .gid = "job-b" };
		char code[32];
		if (call(b, "do_checkpoint", &req, NULL, code, NULL) == 0)
			break;
		usleep(200 * 1000);
	}
	checkpoint(b, "job-b", NULL, NULL, "");
	proto_sync_close(b);
}

static void
test_silent_cts_is_marked_down(void **state)
{
	(void)state;
	atomic_store(&cts.silent, true);
	for (int i = 0; i < 100 && ldap_count("ou=cts,o=gca", "(&(cn=cts-1)(gcaStatus=down))") == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(ldap_count("ou=cts,o=gca", "(&(cn=cts-1)(gcaStatus=down))"), 1);
	atomic_store(&cts.silent, false);
	for (int i = 0; i < 100 && ldap_count("ou=cts,o=gca", "(&(cn=cts-1)(gcaStatus=ok))") == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(ldap_count("ou=cts,o=gca", "(&(cn=cts-1)(gcaStatus=ok))"), 1);
}

static void
test_kill_and_restart_loses_nothing(void **state)
{
	struct proto_sync *b;
	int before = ldap_count("gcaGID=job-b,ou=jobs,o=gca", "(objectClass=gcaCheckpoint)");
	uint64_t seq;

	(void)state;
	kill(gcs_pid, SIGKILL);
	waitpid(gcs_pid, NULL, 0);
	/* a new GCS at the same address (where the CTS looks for it) over the same directory */
	{
		char listen[64];
		snprintf(listen, sizeof listen, "%s", gcs_ep);
		assert_true((gcs_pid = test_gcs_start(&site, "gcs-t", listen, gcs_more, gcs_ep,
		    sizeof gcs_ep)) > 0);
	}
	/* the CTS notices on its next heartbeat and registers again */
	{
		int before_reg = atomic_load(&cts.registered);
		for (int i = 0; i < 100 && atomic_load(&cts.registered) == before_reg; i++)
			usleep(50 * 1000);
		assert_true(atomic_load(&cts.registered) > before_reg);
	}
	b = as("broker-b1");
	/* the binding is in the directory: job-b still goes to cts-1, numbering goes on */
	seq = checkpoint(b, "job-b", NULL, NULL, "");
	assert_int_equal(seq, (uint64_t)before + 1);
	assert_int_equal(ldap_count("gcaGID=job-b,ou=jobs,o=gca", "(objectClass=gcaCheckpoint)"), before + 1);
	proto_sync_close(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcs_and_cts_are_published),
		cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_binding_rules),
		cmocka_unit_test(test_checkpoints_are_routed_and_recorded),
		cmocka_unit_test(test_cache_follows_the_directory),
		cmocka_unit_test(test_checkpoint_log_is_idempotent),
		cmocka_unit_test(test_queries),
		cmocka_unit_test(test_subscribers_hear_checkpoints),
		cmocka_unit_test(test_slow_subscriber_is_dropped),
		cmocka_unit_test(test_directory_down_is_a_clear_error),
		cmocka_unit_test(test_silent_cts_is_marked_down),
		cmocka_unit_test(test_kill_and_restart_loses_nothing),
	};
	signal(SIGPIPE, SIG_IGN);
	log_init("test_gcs");
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
