/*
 * gca-gcs, the real daemon, against a real slapd (gca-site) and real TLS (gca-pki), with a
 * scripted CTS: a thread of this test serving do_checkpoint the way a CTS does (it logs the record
 * with checkpoint_log first, then answers), registering and beating its heart.
 * The real gca-cts replaces the script in the CTS suites.
 * Longer than 800 lines on purpose: its cases share one started site and scripted CTS (set up
 * once); a case that needs a site of its own goes in a suite of its own.
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
	atomic_bool		 silent, stop, release;
	struct proto_req	*held[16];	/* "silent" GIDs: never answered until released */
	int			 nheld;
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
	if (strncmp(b->gid, "unavail", 7) == 0) {
		/* the CTS is alive and says so with its code; no "core service" in the words */
		proto_reply_err(r, PROTO_E_UNAVAILABLE, "the job's process is gone");
		return;
	}
	if (strncmp(b->gid, "silent", 6) == 0 && cts.nheld < (int)GCA_NITEMS(cts.held)) {
		cts.held[cts.nheld++] = r;
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
	log.sha256 = TEST_IMAGE_SHA256;
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
	char *classes[] = { "basic" }, *props[] = { "arch=x86_64", "os=linux" };
	struct msg_cts_register reg = { .name = "cts-1", .endpoint = ep, .exec_manager = "em://t",
		.core_service = "app", .external = true, .self_checkpoint = true, .migrate = true,
		.any_image = true, .classes = { classes, 1 }, .properties = { props, 2 },
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
	if (atomic_load(&cts.release) || atomic_load(&cts.stop)) {
		for (; cts.nheld > 0; cts.nheld--)
			proto_reply_err(cts.held[cts.nheld - 1], PROTO_E_REFUSED, "released");
		atomic_store(&cts.release, false);
	}
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

static const char gcs_more[] = "cts_timeout 2\nrequest_timeout 6\ndirectory_timeout 2\n"
    "subscriber_backlog 65536\n";

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 ||
	    test_pki(&site, "gcs gcs-t gcs gcs-late cts cts-1 cts cts-2 cts live broker b1 admin a1")
	    != 0)
		return -1;
	snprintf(pki, sizeof pki, "%s/pki", site.dir);
	if ((gcs_pid = test_gcs_start(&site, "gcs-t", "127.0.0.1:0", gcs_more, gcs_ep,
	    sizeof gcs_ep)) < 0)
		return -1;
	return cts_start();
}

static int ldap_count(const char *base, const char *filter);
static bool heard(struct proto_sync *sub, const char *event, const char *gid, const char *cts_name,
	int ms);
static bool heard_until(struct proto_sync *sub, const char *event, const char *until,
	const char *gid, int ms);

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
as_at(const char *ep, const char *who)
{
	struct proto_tls_files t = files(who);
	char err[256];
	struct proto_sync *s = proto_sync_connect(ep, &t, "gcs", 10000, err, sizeof err);

	if (s == NULL)
		print_message("connect as %s: %s\n", who, err);
	assert_non_null(s);
	return s;
}

static struct proto_sync *
as(const char *who)
{
	return as_at(gcs_ep, who);
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
	struct msg_job_bind b = { .gid = gid, .cts = as_cts + 4, .local_id = "4242",
		.owner = owner, .recovery = recovery };
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
	char *cls[] = { "no-such-class" }, *props[] = { "mpi=yes" };
	struct msg_class_register cr = { .name = "mpi", .description = "MPI jobs",
		.properties = { props, 1 } };
	char code[32], msg[512];

	(void)state;
	/* a CTS registers only itself */
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	/* a class that does not exist */
	reg.name = "cts-2";
	reg.classes.v = cls;
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
	reg.classes.v = (char *[]){ "mpi" };
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
	/* root on a CTS (its resource's administrator) may recover it too; the job stays alice's */
	bind_job("cts-cts-1", "job-held", "root", true, "");
	assert_int_equal(ldap_count("ou=jobs,o=gca",
	    "(&(gcaGID=job-held)(gcaCTSName=cts-1)(gcaOwner=alice))"), 1);
	/* but root takes no one's GID without a recovery */
	bind_job("cts-cts-2", "job-held", "root", false, PROTO_E_FORBIDDEN);
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
	struct msg_do_checkpoint req = { .gid = gid, .idem_key = key };
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

/* Moves a binding the way another GCS does (an ldapmodify with the GCS's identity): with
 * from=<the binding it replaced>, or without (what a concurrent bind at another provider leaves). */
static void
move_elsewhere(const char *gid, const char *to, const char *from)
{
	char out[1024], extra[200] = "";

	if (from != NULL)
		snprintf(extra, sizeof extra, "-\\nreplace: gcaProperty\\ngcaProperty: from=%s\\n", from);
	assert_int_equal(test_sh(out, sizeof out, "pw=$(awk '$1==\"password\"{print $2}' %s); "
	    "printf 'dn: gcaGID=%s,ou=jobs,o=gca\\nchangetype: modify\\nreplace: gcaCTSName\\n"
	    "gcaCTSName: %s\\n%s' | ldapmodify -x -ZZ -H '%s' -D cn=gcs-directory,o=gca -w \"$pw\" 2>&1",
	    site.gcs_conf, gid, to, extra, site.ldap_uri), 0);
}

/* Another GCS moves a binding: this GCS's cache follows the directory's change feed and routes
 * to the new holder at once. A move from the binding made here (a recovery through another GCS)
 * is an ordinary "moved"; only a binding replaced by one that never saw it is "bind_lost". */
static void
test_cache_follows_the_directory(void **state)
{
	struct proto_sync *b = as("broker-b1"), *sub = as("broker-b1");
	struct msg_subscribe all = { NULL };

	(void)state;
	assert_int_equal(call(sub, "subscribe", &all, NULL, NULL, NULL), 0);
	bind_job("cts-cts-1", "job-moved", "alice", false, "");
	checkpoint(b, "job-moved", NULL, NULL, "");
	move_elsewhere("job-moved", "cts-2", "cts-1");
	/* "moved", and no "bind_lost" before it or after */
	assert_false(heard_until(sub, "bind_lost", "moved", "job-moved", 5000));
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
	assert_false(heard_until(sub, "bind_lost", NULL, "job-moved", 300));
	bind_job("cts-cts-1", "job-lost", "alice", false, "");
	move_elsewhere("job-lost", "cts-2", NULL);
	assert_true(heard(sub, "bind_lost", "job-lost", "cts-1", 5000));
	proto_sync_close(sub);
	proto_sync_close(b);
}

static void
test_checkpoint_log_is_idempotent(void **state)
{
	struct proto_sync *c = as("cts-cts-1");
	char id[ID_LEN + 1], filter[200];
	struct msg_checkpoint_log log = { .checkpoint_id = id, .gid = "job-b", .cts = "cts-1",
		.core_service = "app", .kind = "periodic", .sha256 = TEST_IMAGE_SHA256 };
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
	/* a record without the image's sha256 (or not in its form) is refused, and nothing stored */
	{
		const char *bad[] = { NULL, "", "e3b0c44298fc1c149afbf4c8996fb924",
			"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" };
		char code[32], msg[256];

		for (size_t i = 0; i < GCA_NITEMS(bad); i++) {
			id_new(id);
			log.sha256 = bad[i];
			assert_int_equal(call(c, "checkpoint_log", &log, NULL, code, msg), -1);
			assert_string_equal(code, PROTO_E_BAD_FIELD);
			assert_non_null(strstr(msg, "sha256"));
			snprintf(filter, sizeof filter, "(gcaCheckpointId=%s)", id);
			assert_int_equal(ldap_count("ou=jobs,o=gca", filter), 0);
		}
	}
	proto_sync_close(c);
}

/* One rule for names wherever they enter (common/name.c): the directory compares them ignoring
 * spaces at either end and runs of spaces, and class names ignoring case, so such a name would be
 * served as another's. Class add says whether it added or replaced, and never folds "MPI" into
 * "mpi". */
static void
test_names_follow_one_rule(void **state)
{
	struct proto_sync *b = as("broker-b1"), *a = as("admin-a1");
	static const char *const bad[] = { " job-b", "job-b ", "job  b", "job\nb", "job\tb" };
	char *p1[] = { "ranks=many" }, *p2[] = { "ranks=few" };
	struct msg_class_register cr = { .name = "names-1", .properties = { p1, 1 } };
	struct msg_class_register_ok *ok;
	struct msg_query_ok *qok;
	char code[32], msg[512];

	(void)state;
	assert_int_equal(call(a, "class_register", &cr, (void **)&ok, code, msg), 0);
	assert_false(ok->replaced);
	proto_body_free(proto_type_find("class_register")->reply, ok);
	cr.properties.v = p2;
	assert_int_equal(call(a, "class_register", &cr, (void **)&ok, code, msg), 0);
	assert_true(ok->replaced);
	proto_body_free(proto_type_find("class_register")->reply, ok);
	cr.name = "NAMES-1";
	cr.properties.v = p1;
	assert_int_equal(call(a, "class_register", &cr, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_EXISTS);
	assert_non_null(strstr(msg, "class \"names-1\" exists"));
	assert_int_equal(ldap_count("ou=classes,o=gca", "(&(cn=names-1)(gcaProperty=ranks=few))"), 1);
	assert_int_equal(ldap_count("ou=classes,o=gca", "(gcaProperty=ranks=many)"), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct msg_do_checkpoint dc = { .gid = bad[i] };
		struct msg_subscribe sb = { .gid = bad[i] };
		struct msg_query q = { .what = "jobs", .gid = bad[i] };

		cr.name = bad[i];
		assert_int_equal(call(a, "class_register", &cr, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_BAD_FIELD);
		assert_int_equal(call(b, "do_checkpoint", &dc, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_BAD_FIELD);
		assert_int_equal(call(b, "query", &q, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_BAD_FIELD);
		q.what = "checkpoints";
		assert_int_equal(call(b, "query", &q, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_BAD_FIELD);
		assert_int_equal(call(b, "subscribe", &sb, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_BAD_FIELD);
	}
	/* the name as given is still served */
	struct msg_query q = { .what = "jobs", .gid = "job-b" };
	assert_int_equal(call(b, "query", &q, (void **)&qok, code, msg), 0);
	assert_int_equal(qok->entries.n, 1);
	proto_body_free(proto_type_find("query")->reply, qok);
	proto_sync_close(a);
	proto_sync_close(b);
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
	assert_true(ok->more);		/* a page of a longer list says so */
	assert_non_null(ok->cursor);
	proto_body_free(proto_type_find("query")->reply, ok);
	q = (struct msg_query){ .what = "jobs", .cts = "cts-1" };
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_true(ok->entries.n >= 2);
	assert_false(ok->more);
	proto_body_free(proto_type_find("query")->reply, ok);
	/* a list cut at the limit is never cut silently */
	q = (struct msg_query){ .what = "jobs", .limit = 1 };
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 1);
	assert_true(ok->more);
	assert_non_null(ok->cursor);		/* jobs page by GID: after=K */
	assert_memory_equal(ok->cursor, "after=", 6);
	proto_body_free(proto_type_find("query")->reply, ok);
	/* a jobs or cts cursor is "after=K", K percent-encoded: anything else is refused */
	static const char *const bad_after[] = { "before=3", "after=", "after=a b", "after=%2", "after=%zz",
		"after=%00", "after" };
	for (size_t i = 0; i < sizeof bad_after / sizeof bad_after[0]; i++) {
		q = (struct msg_query){ .what = i % 2 ? "cts" : "jobs", .cursor = bad_after[i] };
		if (call(b, "query", &q, (void **)&ok, code, NULL) == 0) {
			proto_body_free(proto_type_find("query")->reply, ok);
			fail_msg("cursor %s was taken", bad_after[i]);
		}
		assert_string_equal(code, PROTO_E_BAD_FIELD);
	}
	q = (struct msg_query){ .what = "jobs", .cursor = "after=%7E" };	/* after every GID */
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 0);
	assert_false(ok->more);
	proto_body_free(proto_type_find("query")->reply, ok);
	q = (struct msg_query){ .what = "everything" };
	assert_int_equal(call(b, "query", &q, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	/* a cursor is "before=N", N unsigned and within 64 bits: anything else is refused */
	static const char *const bad[] = { "before=-1", "before=18446744073709551616", "before=+3",
		"before= 3", "before=3x", "before=", "after=3", "before=99999999999999999999999" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		q = (struct msg_query){ .what = "checkpoints", .gid = "job-b", .cursor = bad[i] };
		if (call(b, "query", &q, (void **)&ok, code, NULL) == 0) {
			proto_body_free(proto_type_find("query")->reply, ok);
			fail_msg("cursor %s was taken", bad[i]);
		}
		assert_string_equal(code, PROTO_E_BAD_FIELD);
	}
	q = (struct msg_query){ .what = "checkpoints", .gid = "job-b", .cursor = "before=3" };
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 2);		/* 2 and 1 */
	proto_body_free(proto_type_find("query")->reply, ok);
	q.cursor = "before=18446744073709551615";
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 4);
	proto_body_free(proto_type_find("query")->reply, ok);
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
	enum { N = 4000, WINDOW = 128 };	/* WINDOW: records in flight, well inside directory_timeout */
	struct proto_sync *cts1 = as("cts-cts-1"), *slow = as("broker-b1");
	struct fast_reader fast = { as("broker-b1"), N, 0 };
	char gid[256], err[256];
	struct msg_subscribe all = { NULL }, one = { gid };
	struct msg_job_bind jb = { gid, "cts-1", "1", "alice", NULL, false };
	int slow_events = 0, acked = 0, read = 0;
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
			.core_service = "app", .kind = "job", .time_ms = time_now_ms(),
			.sha256 = TEST_IMAGE_SHA256 };
		id_new(id);
		assert_int_equal(proto_sync_send(cts1, "checkpoint_log", i,
		    proto_type_find("checkpoint_log"), &rec), 0);
		for (; read < N && (i == N || (int)i - read >= WINDOW); read++) {
			assert_int_equal(proto_sync_read(cts1, 30000,
			    proto_type_find("checkpoint_log")->reply, &m, err, sizeof err), 0);
			if (strcmp(m.type, "ok") == 0)
				acked++;
			else
				print_message("checkpoint_log: %s\n", m.type);
			proto_msg_free(&m);
		}
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
	/* never a hang: directory_timeout is 2 s, and the record path may wait for it twice (a
	 * read, then the write after a reconnect); inside request_timeout (6 s) */
	assert_true(time_mono_ms() - t0 < 5500);
	/* a GID the cache does not hold: the GCS's own lookup of the job fails as clearly */
	t0 = time_mono_ms();
	checkpoint(b, "never-bound-gid", NULL, NULL, PROTO_E_DIRECTORY_DOWN);
	print_message("directory_down (lookup) after %llu ms\n",
	    (unsigned long long)(time_mono_ms() - t0));
	assert_true(time_mono_ms() - t0 < 4000);	/* one directory_timeout, + 2 s */
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

/* The first value of attr in the one entry under base matching filter ("" if none). */
static void
ldap_value(const char *base, const char *filter, const char *attr, char *out, size_t len)
{
	char *nl;

	test_sh(out, len, "ldapsearch -x -LLL -o ldif-wrap=no -H '%s' -b '%s' '%s' %s | "
	    "sed -n 's/^%s: //p' | head -1", site.ldap_uri, base, filter, attr, attr);
	if ((nl = strchr(out, '\n')) != NULL)
		*nl = '\0';
}

/* Every value of attr, one a line, sorted. */
static void
ldap_values(const char *base, const char *filter, const char *attr, char *out, size_t len)
{
	test_sh(out, len, "ldapsearch -x -LLL -o ldif-wrap=no -H '%s' -b '%s' '%s' %s | "
	    "sed -n 's/^%s: //p' | sort", site.ldap_uri, base, filter, attr, attr);
}

/* Polls the directory (bounded) until the CTS's status is want; each round beats for it first
 * when beat is given (a CTS that stops beating is marked down after cts_timeout). */
static bool
wait_status(const char *cts_name, const char *want, struct proto_sync *beat, const char *status)
{
	char filter[300], got[300];

	snprintf(filter, sizeof filter, "(cn=%s)", cts_name);
	for (int i = 0; i < 100; i++) {
		if (beat != NULL) {
			struct msg_cts_heartbeat hb = { cts_name, status };
			call(beat, "cts_heartbeat", &hb, NULL, NULL, NULL);
		}
		ldap_value("ou=cts,o=gca", filter, "gcaStatus", got, sizeof got);
		if (strcmp(got, want) == 0)
			return true;
		usleep(100 * 1000);
	}
	print_message("CTS %s: status '%s', not '%s'\n", cts_name, got, want);
	return false;
}

/* Reads notify frames for up to ms; returns whether an event (event, gid or cts) came. */
static bool
heard(struct proto_sync *sub, const char *event, const char *gid, const char *cts_name, int ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)ms;
	struct proto_msg m;
	char err[256];

	while (time_mono_ms() < end) {
		bool match = false;
		if (proto_sync_read(sub, (int)(end - time_mono_ms()) + 1, NULL, &m, err, sizeof err) != 0)
			return false;
		if (strcmp(m.type, "notify") == 0) {
			struct msg_notify *n = m.body;
			match = strcmp(n->event, event) == 0 &&
			    (gid == NULL || (n->gid != NULL && strcmp(n->gid, gid) == 0)) &&
			    (cts_name == NULL || (n->cts != NULL && strcmp(n->cts, cts_name) == 0));
		}
		proto_msg_free(&m);
		if (match)
			return true;
	}
	return false;
}

/* Reads events of gid until one named until (NULL: for ms): whether event came meanwhile. */
static bool
heard_until(struct proto_sync *sub, const char *event, const char *until, const char *gid, int ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)ms;
	struct proto_msg m;
	char err[256];
	bool seen = false, done = false;

	while (!done && time_mono_ms() < end &&
	    proto_sync_read(sub, (int)(end - time_mono_ms()) + 1, NULL, &m, err, sizeof err) == 0) {
		if (strcmp(m.type, "notify") == 0) {
			struct msg_notify *n = m.body;
			if (n->gid != NULL && strcmp(n->gid, gid) == 0) {
				seen = seen || strcmp(n->event, event) == 0;
				done = until != NULL && strcmp(n->event, until) == 0;
			}
		}
		proto_msg_free(&m);
	}
	if (until != NULL && !done)
		fail_msg("no %s event for %s within %d ms", until, gid, ms);
	return seen;
}

static int
checkpoint_timed(struct proto_sync *b, const char *gid, const char *key, uint64_t timeout_ms,
    char *code, char *msg, uint64_t *elapsed)
{
	struct msg_do_checkpoint req = { .gid = gid, .idem_key = key,
		.timeout_ms = timeout_ms };
	uint64_t t0 = time_mono_ms();
	int rc = call(b, "do_checkpoint", &req, NULL, code, msg);

	*elapsed = time_mono_ms() - t0;
	return rc;
}

/* A CTS that never answers: the broker hears `timeout` at the deadline (request_timeout 6 s,
 * or the broker's shorter timeout_ms), not when its own client gives up. */
static void
test_a_silent_cts_times_out(void **state)
{
	struct proto_sync *b = as("broker-b1");
	char code[32], msg[512];
	uint64_t ms;

	(void)state;
	bind_job("cts-cts-1", "silent-1", "alice", false, "");
	assert_int_equal(checkpoint_timed(b, "silent-1", NULL, 0, code, msg, &ms), -1);
	print_message("# timeout after %llu ms: %s\n", (unsigned long long)ms, msg);
	assert_string_equal(code, PROTO_E_TIMEOUT);
	assert_string_equal(msg, "checkpoint of silent-1: no answer within 6000 ms (CTS cts-1)");
	assert_true(ms >= 5500 && ms <= 7000);		/* request_timeout 6 s, + 1 s */
	assert_int_equal(checkpoint_timed(b, "silent-1", NULL, 1500, code, msg, &ms), -1);
	assert_string_equal(code, PROTO_E_TIMEOUT);
	assert_true(ms >= 1400 && ms <= 2500);		/* the broker's timeout_ms, + 1 s */
	/* with a key, the record is looked for until the deadline, never past it */
	assert_int_equal(checkpoint_timed(b, "silent-1", "k-silent", 2000, code, msg, &ms), -1);
	assert_string_equal(code, PROTO_E_TIMEOUT);
	assert_true(ms <= 3000);
	atomic_store(&cts.release, true);
	proto_sync_close(b);
}

/* The CTS's own code reaches the broker: `unavailable` from a live CTS is not `cts_down`; a CTS
 * that cannot be reached is `cts_down` at once, with a key too (nothing can have been taken). */
static void
test_cts_errors_keep_their_code(void **state)
{
	struct proto_sync *b = as("broker-b1");
	char code[32], msg[512];
	uint64_t ms;

	(void)state;
	bind_job("cts-cts-1", "unavail-1", "alice", false, "");
	assert_int_equal(checkpoint_timed(b, "unavail-1", NULL, 0, code, msg, &ms), -1);
	assert_string_equal(code, PROTO_E_UNAVAILABLE);
	assert_non_null(strstr(msg, "the job's process is gone"));
	/* job-on-dead-cts: cts-2 registered 127.0.0.1:1 */
	assert_int_equal(checkpoint_timed(b, "job-on-dead-cts", "k-dead", 0, code, msg, &ms), -1);
	print_message("# cts_down with a key after %llu ms\n", (unsigned long long)ms);
	assert_string_equal(code, PROTO_E_CTS_DOWN);
	assert_true(ms < 2500);
	proto_sync_close(b);
}

/* Every field of the paper's 3.3 reads back with ldapsearch; registering again with less leaves
 * nothing of the first registration behind. */
static void
test_registration_reads_back_whole(void **state)
{
	struct proto_sync *c2 = as("cts-cts-2");
	char *cls[] = { "basic", "mpi" }, *props[] = { "arch=x86_64", "gpu=yes" };
	struct msg_cts_register reg = { .name = "cts-2", .endpoint = "127.0.0.1:1",
		.exec_manager = "em://cts-2", .core_service = "app", .external = true,
		.self_checkpoint = false, .migrate = true, .any_image = false,
		.classes = { cls, 2 }, .properties = { props, 2 },
		.exec_wrapper = "gca-exec", .recovery_wrapper = "gca-recover",
		.exec_params = "--gid {gid}", .recovery_params = "--checkpoint {checkpoint}",
		.wrapper_params = "-v", .status = "ok" };
	static const struct { const char *attr, *want; } first[] = {
		{ "gcaEndpoint", "127.0.0.1:1" }, { "gcaExecutionManager", "em://cts-2" },
		{ "gcaCoreService", "app" }, { "gcaExternalCheckpoints", "TRUE" },
		{ "gcaSelfCheckpointing", "FALSE" }, { "gcaMigration", "TRUE" },
		{ "gcaAnyImageRecovery", "FALSE" }, { "gcaClass", "basic\nmpi\n" },
		{ "gcaProperty", "arch=x86_64\ngcs=gcs-t\ngpu=yes\n" },
		{ "gcaExecuteWrapper", "gca-exec" }, { "gcaRecoveryWrapper", "gca-recover" },
		{ "gcaExecuteParams", "--gid {gid}" }, { "gcaRecoveryParams", "--checkpoint {checkpoint}" },
		{ "gcaWrapperParams", "-v" }, { "gcaStatus", "ok" },
	}, second[] = {
		{ "gcaExecutionManager", "" }, { "gcaExternalCheckpoints", "FALSE" },
		{ "gcaSelfCheckpointing", "TRUE" }, { "gcaAnyImageRecovery", "TRUE" },
		{ "gcaClass", "basic\n" }, { "gcaProperty", "arch=x86_64\ngcs=gcs-t\n" },
		{ "gcaRecoveryWrapper", "" }, { "gcaRecoveryParams", "" }, { "gcaWrapperParams", "" },
	};
	char got[1024], code[32], msg[512];

	(void)state;
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), 0);
	for (size_t i = 0; i < GCA_NITEMS(first); i++) {
		ldap_values("ou=cts,o=gca", "(cn=cts-2)", first[i].attr, got, sizeof got);
		if (strchr(first[i].want, '\n') == NULL && got[0] != '\0')
			got[strlen(got) - 1] = '\0';
		if (strcmp(got, first[i].want) != 0)
			print_message("%s: '%s', not '%s'\n", first[i].attr, got, first[i].want);
		assert_string_equal(got, first[i].want);
	}
	reg.exec_manager = NULL;
	reg.external = false;
	reg.self_checkpoint = true;
	reg.any_image = true;
	reg.classes.n = 1;
	reg.properties.n = 1;
	reg.recovery_wrapper = NULL;
	reg.recovery_params = NULL;
	reg.wrapper_params = NULL;
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), 0);
	for (size_t i = 0; i < GCA_NITEMS(second); i++) {
		ldap_values("ou=cts,o=gca", "(cn=cts-2)", second[i].attr, got, sizeof got);
		if (strchr(second[i].want, '\n') == NULL && got[0] != '\0')
			got[strlen(got) - 1] = '\0';
		if (strcmp(got, second[i].want) != 0)
			print_message("%s: '%s', not '%s'\n", second[i].attr, got, second[i].want);
		assert_string_equal(got, second[i].want);
	}
	/* a status a CTS may not claim */
	reg.status = "retired";
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	proto_sync_close(c2);
}

/* A core service that becomes unavailable after registration is published from the heartbeat
 * (a change only), found by the status filter of query cts, and back to ok the same way. */
static void
test_heartbeat_status_is_published(void **state)
{
	struct proto_sync *c2 = as("cts-cts-2"), *b = as("broker-b1");
	struct msg_query q = { .what = "cts", .status = "unavailable: probe failed" };
	struct msg_query_ok *ok;
	struct msg_cts_heartbeat bad = { "cts-2", "down" };
	char code[32];

	(void)state;
	assert_true(wait_status("cts-2", "unavailable: probe failed", c2, "unavailable: probe failed"));
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 1);
	proto_body_free(proto_type_find("query")->reply, ok);
	q.status = "ok";
	assert_int_equal(call(b, "query", &q, (void **)&ok, code, NULL), 0);
	assert_int_equal(ok->entries.n, 1);		/* cts-1 only */
	for (size_t a = 0; a < ok->entries.v[0].n; a++)
		if (strcmp(ok->entries.v[0].attrs[a].name, "cn") == 0)
			assert_string_equal(ok->entries.v[0].attrs[a].vals.v[0], "cts-1");
	proto_body_free(proto_type_find("query")->reply, ok);
	assert_true(wait_status("cts-2", "ok", c2, "ok"));
	assert_int_equal(call(c2, "cts_heartbeat", &bad, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	proto_sync_close(b);
	proto_sync_close(c2);
}

/* Events reach a subscriber: bound, moved (a recovery elsewhere), cts_up, cts_down; and a GID
 * held by a CTS marked down is routed to a clear cts_down. */
static void
test_events_and_a_down_cts(void **state)
{
	struct proto_sync *sub = as("broker-b1"), *b = as("broker-b1"), *c2 = as("cts-cts-2");
	struct msg_subscribe all = { NULL };
	struct msg_cts_heartbeat hb = { "cts-2", "ok" };
	char code[32], msg[512];
	uint64_t ms;

	(void)state;
	assert_int_equal(call(sub, "subscribe", &all, NULL, NULL, NULL), 0);
	/* cts-2 is down by now (no beat for cts_timeout) or soon; a beat brings it up */
	assert_true(wait_status("cts-2", "down", NULL, NULL));
	assert_int_equal(call(c2, "cts_heartbeat", &hb, NULL, code, msg), 0);
	assert_true(heard(sub, "cts_up", NULL, "cts-2", 5000));
	bind_job("cts-cts-1", "ev-1", "alice", false, "");
	assert_true(heard(sub, "bound", "ev-1", "cts-1", 5000));
	bind_job("cts-cts-2", "ev-1", "alice", true, "");
	assert_true(heard(sub, "moved", "ev-1", "cts-2", 5000));
	assert_true(heard(sub, "cts_down", NULL, "cts-2", 10000));	/* silent again */
	assert_true(wait_status("cts-2", "down", NULL, NULL));
	assert_int_equal(checkpoint_timed(b, "ev-1", NULL, 0, code, msg, &ms), -1);
	assert_string_equal(code, PROTO_E_CTS_DOWN);
	assert_non_null(strstr(msg, "is down"));
	proto_sync_close(c2);
	proto_sync_close(b);
	proto_sync_close(sub);
}

/* Only the holder ends a binding. */
static void
test_unbind_by_another_cts_is_refused(void **state)
{
	struct proto_sync *c2 = as("cts-cts-2"), *c1 = as("cts-cts-1");
	struct msg_job_unbind u = { .gid = "job-u", .cts = "cts-2", .state = "finished",
		.exit_status = 0 };
	char code[32];

	(void)state;
	bind_job("cts-cts-1", "job-u", "alice", false, "");
	assert_int_equal(call(c2, "job_unbind", &u, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_CONFLICT);
	assert_int_equal(call(c1, "job_unbind", &u, NULL, code, NULL), -1);	/* not in its name */
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_int_equal(ldap_count("ou=jobs,o=gca",
	    "(&(gcaGID=job-u)(gcaCTSName=cts-1)(gcaJobState=running))"), 1);
	proto_sync_close(c1);
	proto_sync_close(c2);
}

/* job_unbind {state: fenced}: a CTS stopped its old copy of a GID bound elsewhere. The GCS notes
 * it on the job entry and tells subscribers; never for the process the binding names. */
static void
test_fenced_is_noted(void **state)
{
	struct proto_sync *c2 = as("cts-cts-2"), *c1 = as("cts-cts-1"), *sub = as("broker-b1");
	struct msg_job_unbind u = { .gid = "job-f", .cts = "cts-2", .state = "fenced",
		.exit_status = -1, .local_id = "77:123" };
	struct msg_subscribe all = { NULL };
	char code[32];

	(void)state;
	assert_int_equal(call(sub, "subscribe", &all, NULL, NULL, NULL), 0);
	bind_job("cts-cts-1", "job-f", "alice", false, "");
	assert_int_equal(call(c2, "job_unbind", &u, NULL, code, NULL), 0);
	assert_true(heard(sub, "fenced", "job-f", "cts-2", 5000));
	assert_int_equal(ldap_count("ou=jobs,o=gca",
	    "(&(gcaGID=job-f)(gcaCTSName=cts-1)(gcaJobState=running)(gcaProperty=fenced=cts-2/77:123))"), 1);
	assert_int_equal(call(c2, "job_unbind", &u, NULL, code, NULL), 0);	/* sent again: fine */
	u.cts = "cts-1";
	u.local_id = "4242";		/* the bound process itself */
	assert_int_equal(call(c1, "job_unbind", &u, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_CONFLICT);
	u.local_id = NULL;
	assert_int_equal(call(c1, "job_unbind", &u, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_MISSING_FIELD);
	u.state = "gone";
	assert_int_equal(call(c1, "job_unbind", &u, NULL, code, NULL), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	assert_int_equal(ldap_count("ou=jobs,o=gca",
	    "(&(gcaGID=job-f)(gcaCTSName=cts-1)(gcaJobState=running))"), 1);
	proto_sync_close(c1);
	proto_sync_close(c2);
	proto_sync_close(sub);
}

/* A retired CTS (a real gca-cts, beating every 300 ms to gcs-t) stays retired: the admin retires
 * it through another GCS (gcs-late), gcs-t hears of it on the directory's change feed and refuses
 * its heartbeats and registrations, subscribers hear cts_down, its GIDs get cts_down. */
static void
test_a_retired_cts_stays_retired(void **state)
{
	struct proto_sync *a, *sub = as("broker-b1"), *b = as("broker-b1"), *l;
	char other[64];
	int other_pid;
	struct msg_subscribe all = { NULL };
	struct msg_name rm = { "live" };
	struct msg_cts_heartbeat hb = { "live", "ok" };
	struct msg_cts_register reg = { .name = "live", .endpoint = "127.0.0.1:1", .core_service = "app" };
	char sock[300], code[32], msg[512], got[64];
	uint64_t ms;
	int pid;

	(void)state;
	pid = test_cts_start(&site, "live", "app", gcs_ep, "heartbeat 300ms\n", sock, sizeof sock);
	assert_true(pid > 0);
	other_pid = test_gcs_start(&site, "gcs-late", "127.0.0.1:0", gcs_more, other, sizeof other);
	assert_true(other_pid > 0);
	a = as_at(other, "admin-a1");
	assert_true(wait_status("live", "ok", NULL, NULL));
	bind_job("cts-live", "job-live", "alice", false, "");
	assert_int_equal(call(sub, "subscribe", &all, NULL, NULL, NULL), 0);
	assert_int_equal(call(a, "cts_remove", &rm, NULL, code, msg), 0);
	assert_true(heard(sub, "cts_down", NULL, "live", 5000));
	/* two seconds of its heartbeats (and its attempts to register again) change nothing */
	for (int i = 0; i < 20; i++) {
		ldap_value("ou=cts,o=gca", "(cn=live)", "gcaStatus", got, sizeof got);
		assert_string_equal(got, "retired");
		usleep(100 * 1000);
	}
	l = as("cts-live");
	assert_int_equal(call(l, "cts_heartbeat", &hb, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_non_null(strstr(msg, "retired"));
	assert_int_equal(call(l, "cts_register", &reg, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_int_equal(checkpoint_timed(b, "job-live", NULL, 0, code, msg, &ms), -1);
	assert_string_equal(code, PROTO_E_CTS_DOWN);
	assert_non_null(strstr(msg, "retired"));
	rm.name = "no-such-cts";
	assert_int_equal(call(a, "cts_remove", &rm, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	assert_int_equal(test_gcs_stop(pid), 0);
	proto_sync_close(a);
	assert_int_equal(test_gcs_stop(other_pid), 0);
	proto_sync_close(l);
	proto_sync_close(b);
	proto_sync_close(sub);
}

/* Every message from every role the GCS's dispatch table does not allow is refused `forbidden`
 * before any handler runs; a type the GCS does not serve is `unknown_type` for everyone. The
 * table is PROTOCOL.md's, so a new entry in gcs_handlers that is not written here fails too. */
static void
fill(const struct proto_type *pt, void *body)
{
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct proto_field *f = &pt->fields[i];
		char *p = (char *)body + f->offset;
		switch (f->kind) {
		case PK_STR: *(char **)p = strdup(strcmp(f->name, "checkpoint_id") == 0 ?
		    "00000000000000000000000000000000" : "x"); break;
		case PK_U64: *(uint64_t *)p = 1; break;
		case PK_I64: *(int64_t *)p = 0; break;
		case PK_BOOL: *(bool *)p = false; break;
		case PK_STRLIST: proto_strlist_add((struct proto_strlist *)p, "k=v"); break;
		case PK_BIN: {
			struct proto_bin *bin = (struct proto_bin *)p;
			bin->p = malloc(1);
			bin->p[0] = 0;
			bin->n = 1;
			break;
		}
		case PK_ENTRIES: break;
		}
	}
}

static void
test_roles_are_enforced(void **state)
{
	enum { B = PROTO_ROLE_BROKER, C = PROTO_ROLE_CTS, G = PROTO_ROLE_GCS, A = PROTO_ROLE_ADMIN };
	static const struct { const char *type; int roles; } served[] = {
		{ "ping", B | C | G | A }, { "cts_register", C }, { "cts_heartbeat", C },
		{ "cts_remove", A }, { "class_register", A }, { "job_bind", C }, { "job_unbind", C },
		{ "do_checkpoint", B | A }, { "checkpoint_log", C }, { "query", B | A | C },
		{ "subscribe", B | A }, { "image_grant", C }, { "image_location", C }, { "image_gc", A },
		{ "audit", A },
	};
	static const char *const all[] = {
		"hello", "ping", "cts_register", "cts_heartbeat", "cts_remove", "class_register",
		"job_bind", "job_unbind", "do_checkpoint", "checkpoint_log", "restore_prepare",
		"image_grant", "image_fetch", "image_replicate", "image_location", "image_gc", "query",
		"audit", "image_audit",
		"subscribe", "notify", "local_bind", "local_checkpoint", "app_save", "app_saved",
	};
	static const struct { const char *who; int role; } callers[] = {
		{ "broker-b1", B }, { "cts-cts-1", C }, { "gcs-gcs-late", G }, { "admin-a1", A },
	};
	int refused = 0;

	(void)state;
	for (size_t k = 0; k < GCA_NITEMS(callers); k++) {
		struct proto_sync *s = as(callers[k].who);
		for (size_t t = 0; t < GCA_NITEMS(all); t++) {
			const struct proto_type *pt = proto_type_find(all[t]);
			int roles = -1;
			void *body;
			char code[32], msg[512];

			assert_non_null(pt);
			for (size_t i = 0; i < GCA_NITEMS(served); i++)
				if (strcmp(served[i].type, all[t]) == 0)
					roles = served[i].roles;
			if (roles >= 0 && (roles & callers[k].role) != 0)
				continue;	/* allowed: the other tests run it */
			body = calloc(1, pt->size ? pt->size : 1);
			fill(pt, body);
			assert_int_equal(call(s, all[t], body, NULL, code, msg), -1);
			if (strcmp(code, roles < 0 ? PROTO_E_UNKNOWN_TYPE : PROTO_E_FORBIDDEN) != 0)
				print_message("%s from %s: %s %s\n", all[t], callers[k].who, code, msg);
			assert_string_equal(code, roles < 0 ? PROTO_E_UNKNOWN_TYPE : PROTO_E_FORBIDDEN);
			if (roles >= 0) {
				assert_non_null(strstr(msg, "may not send"));	/* the table, not a handler */
				refused++;
			}
			proto_body_free(pt, body);
		}
		proto_sync_close(s);
	}
	print_message("# %d refusals checked\n", refused);
	assert_true(refused >= 30);
}

/* Settings are flags too; a bad value is a clear error naming the setting. */
static void
test_every_setting_has_a_flag(void **state)
{
	static const char *const bad[] = {
		"--cts-timeout 0", "--request-timeout x", "--directory-timeout 9999",
		"--subscriber-backlog 1", "--directory-transactions maybe",
	};
	char out[1024];

	(void)state;
	for (size_t i = 0; i < GCA_NITEMS(bad); i++) {
		char key[64];
		snprintf(key, sizeof key, "%s", bad[i] + 2);
		*strchr(key, ' ') = '\0';
		for (char *p = key; *p; p++)
			*p = *p == '-' ? '_' : *p;
		assert_int_not_equal(test_sh(out, sizeof out, "'%s/gca-gcs' -f %s/gcs-t.conf %s 2>&1",
		    getenv("GCA_BUILD"), site.dir, bad[i]), 0);
		if (strstr(out, key) == NULL || strstr(out, "command line") == NULL)
			print_message("%s: %s\n", bad[i], out);
		assert_non_null(strstr(out, key));
		assert_non_null(strstr(out, "command line"));
	}
	test_sh(out, sizeof out, "'%s/gca-gcs' --help", getenv("GCA_BUILD"));
	assert_non_null(strstr(out, "--subscriber-backlog"));
}

/* A GCS started while the directory is down publishes itself once the directory is back. */
static void
test_a_gcs_started_without_the_directory_publishes_later(void **state)
{
	char ep[64];
	int pid, found = 0;

	(void)state;
	assert_int_equal(test_site_slapd_signal(&site, SIGSTOP), 0);
	pid = test_gcs_start(&site, "gcs-late", "127.0.0.1:0", gcs_more, ep, sizeof ep);
	assert_true(pid > 0);
	usleep(2500 * 1000);	/* its first publication times out (directory_timeout 2 s) */
	assert_int_equal(test_site_slapd_signal(&site, SIGCONT), 0);
	for (int i = 0; i < 200 && !found; i++) {
		found = ldap_count("ou=services,o=gca", "(&(cn=gcs-late)(gcaStatus=ok))");
		if (!found)
			usleep(100 * 1000);
	}
	assert_int_equal(found, 1);
	assert_int_equal(test_gcs_stop(pid), 0);
}

static void
test_kill_and_restart_loses_nothing(void **state)
{
	struct proto_sync *b, *c2 = as("cts-cts-2");
	int before = ldap_count("gcaGID=job-b,ou=jobs,o=gca", "(objectClass=gcaCheckpoint)");
	struct msg_cts_register reg = { .name = "cts-2", .endpoint = "127.0.0.1:1", .core_service = "app",
		.status = "ok" };
	char bound[8192], code[32], msg[512];
	uint64_t seq;
	int before_reg;

	(void)state;
	/* every running binding, "gid cts" a line */
	test_sh(bound, sizeof bound, "ldapsearch -x -LLL -o ldif-wrap=no -H '%s' -b ou=jobs,o=gca "
	    "'(&(objectClass=gcaJob)(gcaJobState=running))' gcaGID gcaCTSName | awk '/^gcaGID:/{g=$2} "
	    "/^gcaCTSName:/{c=$2} /^$/{if (g != \"\") print g, c; g=\"\"}'", site.ldap_uri);
	/* cts-2 is up (it registered here) when this GCS dies, and never comes back */
	assert_int_equal(call(c2, "cts_register", &reg, NULL, code, msg), 0);
	proto_sync_close(c2);
	assert_int_equal(ldap_count("ou=cts,o=gca", "(&(cn=cts-2)(gcaStatus=ok)(gcaProperty=gcs=gcs-t))"), 1);
	/* counted before the kill: the CTS may register with the new GCS before test_gcs_start
	 * returns (seen in CI: counted after, its registration was missed) */
	before_reg = atomic_load(&cts.registered);
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
		for (int i = 0; i < 100 && atomic_load(&cts.registered) == before_reg; i++)
			usleep(50 * 1000);
		assert_true(atomic_load(&cts.registered) > before_reg);
	}
	b = as("broker-b1");
	/* the binding is in the directory: job-b still goes to cts-1, numbering goes on (past any
	 * number reserved by a compare-and-swap that timed out in the test before: gaps, never
	 * duplicates) */
	seq = checkpoint(b, "job-b", NULL, NULL, "");
	assert_true(seq >= (uint64_t)before + 1);
	{
		char f[64];
		snprintf(f, sizeof f, "(gcaSequenceNumber>=%llu)", (unsigned long long)seq);
		assert_int_equal(ldap_count("gcaGID=job-b,ou=jobs,o=gca", f), 1);
	}
	assert_int_equal(ldap_count("gcaGID=job-b,ou=jobs,o=gca", "(objectClass=gcaCheckpoint)"), before + 1);
	/* every GID still routes to its CTS: cts-1 answers (as its script does), the others are
	 * down (dead endpoints) or retired */
	{
		int n = 0;
		for (char *line = strtok(bound, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			char gid[256], holder[64], want[32];
			struct msg_do_checkpoint req = { .gid = gid };
			if (sscanf(line, "%255s %63s", gid, holder) != 2 || strncmp(gid, "silent", 6) == 0)
				continue;
			snprintf(want, sizeof want, "%s", strcmp(holder, "cts-1") != 0 ? PROTO_E_CTS_DOWN :
			    strncmp(gid, "refuse", 6) == 0 ? PROTO_E_REFUSED :
			    strncmp(gid, "unavail", 7) == 0 ? PROTO_E_UNAVAILABLE : "");
			call(b, "do_checkpoint", &req, NULL, code, msg);
			if (strcmp(code, want) != 0)
				print_message("%s (held by %s): '%s' %s\n", gid, holder, code, msg);
			assert_string_equal(code, want);
			n++;
		}
		print_message("# %d bound GIDs routed as before\n", n);
		assert_true(n >= 8);
	}
	/* cts-2, left up by the GCS that died, is marked down once cts_timeout passed; cts-1,
	 * which came back, stays up */
	for (int i = 0; i < 100 && ldap_count("ou=cts,o=gca", "(&(cn=cts-2)(gcaStatus=down))") == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(ldap_count("ou=cts,o=gca", "(&(cn=cts-2)(gcaStatus=down))"), 1);
	assert_int_equal(ldap_count("ou=cts,o=gca", "(&(cn=cts-1)(gcaStatus=ok))"), 1);
	/* a retired CTS is still refused by the new GCS (it reads the directory) */
	{
		struct proto_sync *l = as("cts-live");
		struct msg_cts_register lr = { .name = "live", .endpoint = "127.0.0.1:1",
			.core_service = "app" };
		assert_int_equal(call(l, "cts_register", &lr, NULL, code, msg), -1);
		assert_string_equal(code, PROTO_E_FORBIDDEN);
		proto_sync_close(l);
	}
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
		cmocka_unit_test(test_names_follow_one_rule),
		cmocka_unit_test(test_subscribers_hear_checkpoints),
		cmocka_unit_test(test_slow_subscriber_is_dropped),
		cmocka_unit_test(test_directory_down_is_a_clear_error),
		cmocka_unit_test(test_silent_cts_is_marked_down),
		cmocka_unit_test(test_a_silent_cts_times_out),
		cmocka_unit_test(test_cts_errors_keep_their_code),
		cmocka_unit_test(test_registration_reads_back_whole),
		cmocka_unit_test(test_heartbeat_status_is_published),
		cmocka_unit_test(test_events_and_a_down_cts),
		cmocka_unit_test(test_unbind_by_another_cts_is_refused),
		cmocka_unit_test(test_fenced_is_noted),
		cmocka_unit_test(test_a_retired_cts_stays_retired),
		cmocka_unit_test(test_roles_are_enforced),
		cmocka_unit_test(test_every_setting_has_a_flag),
		cmocka_unit_test(test_a_gcs_started_without_the_directory_publishes_later),
		cmocka_unit_test(test_kill_and_restart_loses_nothing),
	};
	signal(SIGPIPE, SIG_IGN);
	log_init("test_gcs");
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
