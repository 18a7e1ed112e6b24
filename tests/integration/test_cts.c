/*
 * gca-cts, the real daemon, with a real slapd, gca-gcs and TLS: its registration, the rules of its
 * wrapper socket (who may bind which process and GID), the app core service's conversation with a
 * job (this test plays the job on the socket), the image store's refusal of links, and the criu
 * core service published unavailable with criu's own reason where `criu check` fails.
 * The whole scenario with gca-exec, gca-recover and examples/counter is cts_scenario.sh.
 * Longer than 800 lines on purpose: its cases share one started site (set up once).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <grp.h>
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

static struct test_site site;
#define APP_MORE "app_timeout 1\nretention 2\napp_incremental 3\n"	/* app-1's cts.conf lines */
static char gcs_ep[64], app_sock[400], criu_sock[400];
static pid_t gcs_pid, app_pid, criu_pid;
/* q-1: an app CTS with max_queue 1 whose own GCS (gcs-a) the tests kill; brokers ask gcs-t */
static char gcsa_ep[64], q_sock[400];
static pid_t gcsa_pid, q_pid;
#define Q_MORE "max_queue 1\napp_timeout 20\n"
static char stub_sock[400];	/* criu-s: criu is tests/lib/criu-stub */
static pid_t stub_pid;
static pid_t test_children[8];	/* idle_child's, killed at the end whatever happened */

static struct proto_sync *
local_connect(const char *sock)
{
	char ep[500], err[256];
	struct proto_sync *s;

	snprintf(ep, sizeof ep, "unix:%s", sock);
	s = proto_sync_connect(ep, NULL, NULL, 5000, err, sizeof err);
	if (s == NULL)
		fail_msg("%s: %s", ep, err);
	return s;	/* closed by the caller (a failed assert leaks it: the test ends anyway) */
}

static struct proto_sync *
broker(void)
{
	struct proto_tls_files f = test_identity(&site, "broker-b");
	char err[256];
	struct proto_sync *s = proto_sync_connect(gcs_ep, &f, "gcs", 15000, err, sizeof err);

	if (s == NULL)
		fail_msg("broker: %s", err);
	return s;
}

/* local_bind; returns 0 or -1 with code and msg. */
static int
bind_gid(struct proto_sync *s, const char *gid, pid_t pid, char *code, char *msg)
{
	struct msg_local_bind b = { gid, NULL, (uint64_t)pid, 0, false, false };
	void *reply = NULL;
	int rc;

	code[0] = msg[0] = '\0';
	rc = proto_sync_call(s, "local_bind", proto_type_find("local_bind"), &b, &reply, code, 64,
	    msg, 512);
	if (reply != NULL)
		proto_body_free(proto_type_find("local_bind")->reply, reply);
	return rc;
}

/* The directory's value of attr in the entry found by filter under ou, via ldapsearch. */
static int
ldap_value(const char *ou, const char *filter, const char *attr, char *out, size_t len)
{
	return test_sh(out, len, "ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H '%s' -D \"$(awk '$1==\"binddn\""
	    "{print $2}' %s)\" -w \"$(awk '$1==\"password\"{print $2}' %s)\" -b 'ou=%s,o=gca' '%s' %s "
	    "| sed -n 's/^%s: //p' | head -1 | tr -d '\\n'", site.ldap_uri, site.gcs_conf, site.gcs_conf,
	    ou, filter, attr, attr);
}

/* The job entry's gcaJobState once it says finished, polling up to 10 s (in v). */
static void
wait_finished(const char *gid, char *v, size_t len)
{
	char filter[300];

	snprintf(filter, sizeof filter, "(gcaGID=%s)", gid);
	v[0] = '\0';
	for (int i = 0; i < 100 && strcmp(v, "finished") != 0; i++) {
		ldap_value("jobs", filter, "gcaJobState", v, len);
		if (strcmp(v, "finished") != 0)
			usleep(100 * 1000);
	}
}

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 ||
	    test_pki(&site, "gcs gcs-t gcs gcs-a cts app-1 cts criu-1 cts q-1 cts criu-s cts grp-1 broker b") != 0)
		return -1;
	chmod(site.dir, 0755);		/* the socket is reached by another user in a test */
	if ((gcs_pid = test_gcs_start(&site, "gcs-t", "127.0.0.1:0", "cts_timeout 3\n", gcs_ep,
	    sizeof gcs_ep)) < 0)
		return -1;
	app_pid = test_cts_start(&site, "app-1", "app", gcs_ep, APP_MORE, app_sock, sizeof app_sock);
	criu_pid = test_cts_start(&site, "criu-1", "criu", gcs_ep, NULL, criu_sock,
	    sizeof criu_sock);
	if ((gcsa_pid = test_gcs_start(&site, "gcs-a", "127.0.0.1:0", NULL, gcsa_ep,
	    sizeof gcsa_ep)) < 0)
		return -1;
	q_pid = test_cts_start(&site, "q-1", "app", gcsa_ep, Q_MORE, q_sock, sizeof q_sock);
	return app_pid > 0 && criu_pid > 0 && q_pid > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	int app = 0, criu = 0, q = 0;

	(void)state;
	/* jobs a failed test left (they would hold the test's output open) */
	for (size_t i = 0; i < GCA_NITEMS(test_children); i++) {
		if (test_children[i] > 0 && waitpid(test_children[i], NULL, WNOHANG) == 0) {
			kill(test_children[i], SIGKILL);	/* still our child: not reaped yet */
			waitpid(test_children[i], NULL, 0);
		}
	}
	if (app_pid > 0)
		app = test_gcs_stop(app_pid);
	if (criu_pid > 0)
		criu = test_gcs_stop(criu_pid);
	if (q_pid > 0)
		q = test_gcs_stop(q_pid);
	if (stub_pid > 0)
		test_gcs_stop(stub_pid);
	if (gcs_pid > 0)
		test_gcs_stop(gcs_pid);
	if (gcsa_pid > 0)
		test_gcs_stop(gcsa_pid);
	test_site_down(&site);
	assert_int_equal(app, 0);	/* a clean stop: no crash, no leak under SAN=1 */
	assert_int_equal(criu, 0);
	assert_int_equal(q, 0);
	return 0;
}

static void
test_cts_registers_itself(void **state)
{
	char v[512] = "";

	(void)state;
	for (int i = 0; i < 100 && strcmp(v, "ok") != 0; i++) {
		ldap_value("cts", "(cn=app-1)", "gcaStatus", v, sizeof v);
		if (strcmp(v, "ok") != 0)
			usleep(100 * 1000);
	}
	assert_string_equal(v, "ok");
	ldap_value("cts", "(cn=app-1)", "gcaCoreService", v, sizeof v);
	assert_string_equal(v, "app");
	ldap_value("cts", "(cn=app-1)", "gcaEndpoint", v, sizeof v);
	assert_true(strncmp(v, "127.0.0.1:", 10) == 0);
}

static void
test_criu_is_published_with_its_reason(void **state)
{
	char want[600] = "", v[600] = "", line[512] = "", code[64], msg[512];
	struct proto_sync *s;
	bool works = test_sh(NULL, 0, "criu check >/dev/null 2>&1") == 0;

	(void)state;
	if (!works) {
		test_sh(line, sizeof line, "criu check 2>&1 </dev/null | grep Error | grep -v 'exited, "
		    "status=' | head -1 | sed 's/^Error ([^)]*): //' | tr -d '\\n'");
		snprintf(want, sizeof want, "unavailable: criu check: %s", line);
	} else {
		snprintf(want, sizeof want, "ok");
	}
	for (int i = 0; i < 100 && strcmp(v, want) != 0; i++) {
		ldap_value("cts", "(cn=criu-1)", "gcaStatus", v, sizeof v);
		if (strcmp(v, want) != 0)
			usleep(100 * 1000);
	}
	assert_string_equal(v, want);
	ldap_value("cts", "(cn=criu-1)", "gcaProperty", v, sizeof v);
	assert_non_null(strstr(v, "criu="));
	/* what a restore must match, found the way a broker looks for it (issue 7 item 5) */
	ldap_value("cts", "(&(cn=criu-1)(gcaProperty=kernel=*))", "cn", v, sizeof v);
	assert_string_equal(v, "criu-1");
#if defined(__x86_64__)
	ldap_value("cts", "(&(cn=criu-1)(gcaProperty=cpu.fpu=*fpu*))", "cn", v, sizeof v);
	assert_string_equal(v, "criu-1");
	/* criu's own XSAVE figures (criu cpuinfo dump) only where criu works; the VM suite checks
	 * their values */
	ldap_value("cts", "(&(cn=criu-1)(gcaProperty=cpu.xfeatures=0x*)(gcaProperty=cpu.xsave=*/*))",
	    "cn", v, sizeof v);
	assert_string_equal(v, works ? "criu-1" : "");
#endif
	if (works)
		return;
	s = local_connect(criu_sock);
	assert_int_equal(bind_gid(s, "criu-job", getpid(), code, msg), -1);
	assert_string_equal(code, PROTO_E_UNAVAILABLE);
	assert_non_null(strstr(msg, line));		/* every request gets the reason */
	proto_sync_close(s);
}

/* local_info: what the CTS publishes, asked on its socket (vmm-ready-job-executor reads its guest
 * from it); every caller may ask, nothing is bound. */
static void
test_local_info(void **state)
{
	const struct proto_type *pt = proto_type_find("local_info");
	struct proto_sync *s = local_connect(criu_sock);
	struct msg_empty req = { 0 };
	struct msg_local_info_ok *ok = NULL;
	char code[64], msg[512];
	bool criu = false;

	(void)state;
	assert_non_null(pt);
	assert_int_equal(proto_sync_call(s, "local_info", pt, &req, (void **)&ok, code, sizeof code,
	    msg, sizeof msg), 0);
	assert_string_equal(ok->cts, "criu-1");
	assert_string_equal(ok->core_service, "criu");
	for (size_t i = 0; i < ok->properties.n; i++)
		criu = criu || strncmp(ok->properties.v[i], "criu=", 5) == 0;
	assert_true(criu);		/* the probe's, as on the CTS entry */
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
}

/* A child that runs as nobody and waits to be killed. */
static pid_t
nobody_child(void)
{
	pid_t p = fork();

	if (p == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(1);
		pause();
		_exit(0);
	}
	return p;
}

/* local_exit {gid, pid, status}: 0 or -1 with code. */
static int
exit_gid(const char *gid, pid_t pid, int64_t status, char *code)
{
	struct proto_sync *s = local_connect(app_sock);
	struct msg_local_exit m = { gid, (uint64_t)pid, status };
	void *reply = NULL;
	char msg[512];
	int rc;

	code[0] = '\0';
	rc = proto_sync_call(s, "local_exit", proto_type_find("local_exit"), &m, &reply, code, 64,
	    msg, sizeof msg);
	proto_body_free(proto_type_find("local_exit")->reply, reply);
	proto_sync_close(s);
	return rc;
}

/* How a job ended is said by the wrapper that bound it (its parent) or by the job itself, never
 * by another process; the status lands on the job entry (docs/ARCHITECTURE.md, "Exit statuses"). */
static void
test_local_exit_rules(void **state)
{
	struct proto_sync *s = local_connect(app_sock);
	char code[64], msg[512], v[64];
	pid_t child, other;
	int status;

	(void)state;
	if ((child = fork()) == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(bind_gid(s, "exit-1", child, code, msg), 0);
	/* a sibling (not the job, not its wrapper) may not say it */
	if ((other = fork()) == 0) {
		char c[64];
		_exit(exit_gid("exit-1", child, 7, c) == -1 && strcmp(c, PROTO_E_FORBIDDEN) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(other, &status, 0), other);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(exit_gid("exit-1", child, 300, code), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	assert_int_equal(exit_gid("exit-1", getpid(), 7, code), -1);	/* not the bound pid */
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* the job went first: the CTS waits for its wrapper's word (us) */
	assert_int_equal(exit_gid("exit-1", child, 7, code), 0);
	wait_finished("exit-1", v, sizeof v);
	assert_string_equal(v, "finished");
	for (int i = 0; i < 50 && (ldap_value("jobs", "(gcaGID=exit-1)", "gcaExitStatus", v, sizeof v),
	    strcmp(v, "7") != 0); i++)
		usleep(100 * 1000);
	assert_string_equal(v, "7");
	proto_sync_close(s);
}

static void
test_bind_rules(void **state)
{
	struct proto_sync *s = local_connect(app_sock);
	char code[64], msg[512];
	pid_t child;
	int status;

	(void)state;
	assert_int_equal(bind_gid(s, "g1", 1, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_non_null(strstr(msg, "neither the caller"));
	assert_int_equal(bind_gid(s, "g1", 4194000, code, msg), -1);
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	assert_int_equal(bind_gid(s, "bad\001gid", getpid(), code, msg), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	if (getuid() != 0) {
		test_not_run("integration/test_cts", "test_bind_rules across users (needs root to run a "
		    "process as another user)");
		proto_sync_close(s);
		return;
	}
	/* a child running as another user: not the caller's to bind */
	child = nobody_child();
	usleep(100 * 1000);
	assert_int_equal(bind_gid(s, "g-other", child, code, msg), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_non_null(strstr(msg, "runs as uid 65534"));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	/* a GID root owns, then another user tries it (and root's process) */
	if ((child = fork()) == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(bind_gid(s, "g-root", child, code, msg), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	{
		char v[64];
		wait_finished("g-root", v, sizeof v);	/* the CTS unbinds the ended job */
	}
	if ((child = fork()) == 0) {
		struct proto_sync *n;
		char c[64], m[512];
		int bad = 0;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(100);
		n = local_connect(app_sock);
		if (bind_gid(n, "g-root", getpid(), c, m) != -1 || strcmp(c, PROTO_E_FORBIDDEN) != 0 ||
		    strstr(m, "belongs to root") == NULL)
			bad |= 1, fprintf(stderr, "# g-root as nobody: %s %s\n", c, m);
		if (bind_gid(n, "g-x", getppid(), c, m) != -1 || strcmp(c, PROTO_E_FORBIDDEN) != 0)
			bad |= 2, fprintf(stderr, "# root's pid as nobody: %s %s\n", c, m);
		proto_sync_close(n);
		_exit(bad);
	}
	waitpid(child, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	proto_sync_close(s);
}

/* A broker's do_checkpoint through gcs-t, sent; the reply is read with broker_read. */
static struct proto_sync *
broker_ask(const char *gid, const char *idem)
{
	struct proto_sync *b = broker();
	struct msg_do_checkpoint dc = { gid, idem, 0 };

	assert_int_equal(proto_sync_send(b, "do_checkpoint", 1, proto_type_find("do_checkpoint"),
	    &dc), 0);
	return b;
}

/* The reply on b (closed then): 0 with *ok, or -1 with code and msg. */
static int
broker_read(struct proto_sync *b, int timeout_ms, struct msg_checkpoint_ok **ok, char *code,
	char *msg)
{
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	struct proto_msg m = { 0 };
	char err[256];
	int rc = -1;

	*ok = NULL;
	if (proto_sync_read(b, timeout_ms, pt->reply, &m, err, sizeof err) != 0)
		fail_msg("no reply to do_checkpoint within %d ms: %s", timeout_ms, err);
	if (strcmp(m.type, "ok") == 0) {
		*ok = m.body;
		m.body = NULL;
		rc = 0;
	} else {
		const struct msg_err *e = m.body;
		snprintf(code, 64, "%s", e->code);
		snprintf(msg, 512, "%s", e->msg ? e->msg : "");
	}
	proto_msg_free(&m);
	proto_sync_close(b);
	return rc;
}

/* The same, giving the checkpoint id and seq. */
static int
broker_reply(struct proto_sync *b, int timeout_ms, char *id, uint64_t *seq, char *code, char *msg)
{
	struct msg_checkpoint_ok *ok;

	if (broker_read(b, timeout_ms, &ok, code, msg) != 0)
		return -1;
	snprintf(id, ID_LEN + 1, "%s", ok->checkpoint_id);
	*seq = ok->seq;
	proto_body_free(proto_type_find("do_checkpoint")->reply, ok);
	return 0;
}

/* The broker asks; this test, bound as the job, reads app_save and answers with answer(). */
static int
checkpoint_as_job(struct proto_sync *job, const char *gid, const char *idem,
	int (*answer)(struct proto_sync *job, const struct msg_app_save *save), char *code, char *msg,
	struct msg_checkpoint_ok **ok)
{
	struct proto_sync *b = broker_ask(gid, idem);
	struct proto_msg m = { 0 };
	char err[256];

	if (answer != NULL) {
		assert_int_equal(proto_sync_read(job, 5000, NULL, &m, err, sizeof err), 0);
		assert_string_equal(m.type, "app_save");
		answer(job, m.body);
		proto_msg_free(&m);
	}
	return broker_read(b, 10000, ok, code, msg);
}

static int
saved(struct proto_sync *job, const char *id, bool ok, const char *error)
{
	struct msg_app_saved a = { .checkpoint_id = id, .error = error, .ok = ok };
	char code[64], msg[512];
	void *reply = NULL;
	int rc = proto_sync_call(job, "app_saved", proto_type_find("app_saved"), &a, &reply, code,
	    sizeof code, msg, sizeof msg);

	proto_body_free(proto_type_find("app_saved")->reply, reply);
	return rc;
}

static int
answer_nothing(struct proto_sync *job, const struct msg_app_save *save)
{
	(void)job;
	assert_non_null(strstr(save->image_dir, "/staging/"));
	return 0;
}

static int
answer_failure(struct proto_sync *job, const struct msg_app_save *save)
{
	return saved(job, save->checkpoint_id, false, "disk full");
}

static int
answer_files(struct proto_sync *job, const struct msg_app_save *save)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/state", save->image_dir);
	assert_int_equal(file_write_whole(p, "42\n", 3, 0600), 0);
	return saved(job, save->checkpoint_id, true, NULL);
}

static int
answer_symlink(struct proto_sync *job, const struct msg_app_save *save)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/passwd", save->image_dir);
	assert_int_equal(symlink("/etc/shadow", p), 0);
	return saved(job, save->checkpoint_id, true, NULL);
}

static void
test_app_conversation(void **state)
{
	struct proto_sync *job = local_connect(app_sock);
	struct msg_checkpoint_ok *ok, *again;
	char code[64], msg[512], path[1200], v[64];
	const struct proto_type *okt = proto_type_find("do_checkpoint")->reply;

	(void)state;
	/* this test process is the job: its own pid, on its own connection */
	assert_int_equal(bind_gid(job, "g-app", getpid(), code, msg), 0);

	assert_int_equal(checkpoint_as_job(job, "g-app", NULL, answer_nothing, code, msg, &ok), -1);
	assert_non_null(strstr(msg, "did not answer within"));

	assert_int_equal(checkpoint_as_job(job, "g-app", NULL, answer_failure, code, msg, &ok), -1);
	assert_non_null(strstr(msg, "disk full"));

	assert_int_equal(checkpoint_as_job(job, "g-app", NULL, answer_symlink, code, msg, &ok), -1);
	assert_non_null(strstr(msg, "passwd"));

	assert_int_equal(checkpoint_as_job(job, "g-app", "key-1", answer_files, code, msg, &ok), 0);
	assert_int_equal(ok->seq, 1);
	snprintf(path, sizeof path, "%s/state-app-1/images/g-app/%s/state", site.dir, ok->checkpoint_id);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/state-app-1/images/g-app/%s/manifest", site.dir,
	    ok->checkpoint_id);
	assert_int_equal(access(path, F_OK), 0);
	ldap_value("jobs", "(gcaCheckpointId=*)", "gcaCheckpointKind", v, sizeof v);
	assert_string_equal(v, "external");

	/* the same idempotency key: the first result, no second checkpoint (no app_save) */
	assert_int_equal(checkpoint_as_job(job, "g-app", "key-1", NULL, code, msg, &again), 0);
	assert_string_equal(again->checkpoint_id, ok->checkpoint_id);
	proto_body_free(okt, ok);
	proto_body_free(okt, again);

	/* the same key asked again while the first still runs (a broker retrying through another
	 * GCS): one dump, one app_save, both answered with its id */
	{
		struct proto_sync *b1 = broker(), *b2 = broker();
		struct msg_do_checkpoint dc = { "g-app", "key-2", 0 };
		const struct proto_type *pt = proto_type_find("do_checkpoint");
		struct proto_msg m1 = { 0 }, m2 = { 0 }, extra = { 0 };
		struct msg_app_save *save;
		char err[256];

		assert_int_equal(proto_sync_send(b1, "do_checkpoint", 1, pt, &dc), 0);
		assert_int_equal(proto_sync_read(job, 5000, NULL, &m1, err, sizeof err), 0);
		assert_string_equal(m1.type, "app_save");
		save = m1.body;
		assert_int_equal(proto_sync_send(b2, "do_checkpoint", 1, pt, &dc), 0);
		usleep(300 * 1000);	/* the second reaches the CTS while the first waits */
		answer_files(job, save);
		assert_int_equal(proto_sync_read(b1, 10000, pt->reply, &m2, err, sizeof err), 0);
		assert_string_equal(m2.type, "ok");
		assert_string_equal(((struct msg_checkpoint_ok *)m2.body)->checkpoint_id,
		    save->checkpoint_id);
		proto_msg_free(&m2);
		assert_int_equal(proto_sync_read(b2, 10000, pt->reply, &m2, err, sizeof err), 0);
		assert_string_equal(m2.type, "ok");
		assert_string_equal(((struct msg_checkpoint_ok *)m2.body)->checkpoint_id,
		    save->checkpoint_id);
		proto_msg_free(&m2);
		/* no second app_save came */
		assert_int_not_equal(proto_sync_read(job, 500, NULL, &extra, err, sizeof err), 0);
		proto_msg_free(&m1);
		proto_sync_close(b1);
		proto_sync_close(b2);
	}
	proto_sync_close(job);
}

/* ---- one checkpoint at a time per GID, the queue's bound, keyed retries (CTS q-1) ---- */

/* The next app_save on job within timeout_ms (its checkpoint id in id), or -1 if none came. */
static int
job_save(struct proto_sync *job, int timeout_ms, char *id, char *dir, size_t dirlen)
{
	struct proto_msg m = { 0 };
	char err[256];

	if (proto_sync_read(job, timeout_ms, NULL, &m, err, sizeof err) != 0)
		return -1;
	assert_string_equal(m.type, "app_save");
	snprintf(id, ID_LEN + 1, "%s", ((struct msg_app_save *)m.body)->checkpoint_id);
	if (dir != NULL)
		snprintf(dir, dirlen, "%s", ((struct msg_app_save *)m.body)->image_dir);
	proto_msg_free(&m);
	return 0;
}

/* The job writes its state into dir and answers. */
static void
job_saved(struct proto_sync *job, const char *id, const char *dir)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/state", dir);
	assert_int_equal(file_write_whole(p, "7\n", 2, 0600), 0);
	assert_int_equal(saved(job, id, true, NULL), 0);
}

static pid_t
idle_child(void)
{
	pid_t p = fork();

	if (p == 0) {
		pause();
		_exit(0);
	}
	for (size_t i = 0; i < GCA_NITEMS(test_children); i++) {
		if (test_children[i] <= 0 || waitpid(test_children[i], NULL, WNOHANG) != 0) {
			test_children[i] = p;
			break;
		}
	}
	return p;
}

/* A new idle child bound as gid at the CTS on sock (asked again while that CTS is busy, i.e. not
 * registered yet); returns its pid. */
static pid_t
bound_child(const char *sock, const char *gid)
{
	struct proto_sync *s = local_connect(sock);
	char code[64], msg[512];
	pid_t child = idle_child();
	int rc;

	for (int i = 0; i < 100 && (rc = bind_gid(s, gid, child, code, msg)) != 0 &&
	    strcmp(code, PROTO_E_BUSY) == 0; i++)
		usleep(100 * 1000);
	if (rc != 0)
		fail_msg("bind %s at %s: %s %s", gid, sock, code, msg);
	proto_sync_close(s);
	return child;
}

static pid_t q_job1, q_job2;		/* the two jobs bound at q-1 (g-q1, g-q2) */
static struct proto_sync *q_conn1;	/* g-q1's channel: this test plays its library */

/*
 * Requests for one GID wait for the running one: the second app_save comes only after the first
 * is answered, and both get consecutive sequence numbers; with max_queue 1 a third is busy, but
 * the waiting one's retry (same key) is not; another GID's checkpoint runs meanwhile.
 */
static void
test_one_checkpoint_at_a_time(void **state)
{
	struct proto_sync *conn2, *ba, *bb, *bb2, *bc, *bx;
	char code[64], msg[512], ida[ID_LEN + 1], idb[ID_LEN + 1], idx[ID_LEN + 1], id[ID_LEN + 1];
	char dira[4200], dirb[4200], dirx[4200];
	uint64_t seqa, seqb, seq;

	(void)state;
	q_job1 = idle_child();
	q_job2 = idle_child();
	q_conn1 = local_connect(q_sock);
	conn2 = local_connect(q_sock);
	for (int i = 0; i < 100 && bind_gid(q_conn1, "g-q1", q_job1, code, msg) != 0; i++) {
		assert_string_equal(code, PROTO_E_BUSY);	/* until q-1 registered at gcs-a */
		usleep(100 * 1000);
	}
	assert_int_equal(bind_gid(conn2, "g-q2", q_job2, code, msg), 0);

	ba = broker_ask("g-q1", NULL);
	assert_int_equal(job_save(q_conn1, 10000, ida, dira, sizeof dira), 0);
	bb = broker_ask("g-q1", "key-b");
	/* B waits for A: no second app_save while A runs */
	assert_int_equal(job_save(q_conn1, 500, id, NULL, 0), -1);
	/* B asked again with its key: no place taken in the queue, so not busy */
	bb2 = broker_ask("g-q1", "key-b");
	/* a third checkpoint: the queue (max_queue 1) is full */
	bc = broker_ask("g-q1", NULL);
	assert_int_equal(broker_reply(bc, 10000, id, &seq, code, msg), -1);
	assert_string_equal(code, PROTO_E_BUSY);
	assert_non_null(strstr(msg, "max_queue"));

	/* another GID runs beside A: both app_saves outstanding at once */
	bx = broker_ask("g-q2", NULL);
	assert_int_equal(job_save(conn2, 10000, idx, dirx, sizeof dirx), 0);
	job_saved(conn2, idx, dirx);
	assert_int_equal(broker_reply(bx, 10000, id, &seq, code, msg), 0);
	assert_string_equal(id, idx);

	job_saved(q_conn1, ida, dira);
	assert_int_equal(broker_reply(ba, 10000, id, &seqa, code, msg), 0);
	assert_string_equal(id, ida);
	assert_int_equal(job_save(q_conn1, 10000, idb, dirb, sizeof dirb), 0);
	assert_string_not_equal(idb, ida);
	job_saved(q_conn1, idb, dirb);
	assert_int_equal(broker_reply(bb, 10000, id, &seqb, code, msg), 0);
	assert_string_equal(id, idb);
	assert_int_equal(seqb, seqa + 1);
	assert_int_equal(broker_reply(bb2, 10000, id, &seq, code, msg), 0);
	assert_string_equal(id, idb);			/* the same checkpoint, not a third */
	assert_int_equal(seq, seqb);
	assert_int_equal(job_save(q_conn1, 300, id, NULL, 0), -1);
	proto_sync_close(conn2);
	kill(q_job2, SIGKILL);
	waitpid(q_job2, NULL, 0);
}

/* The entries in cts's outbox: its log's "+ name ..." lines without a later "- name". */
static int
outbox_count(const char *cts)
{
	char out[64];

	test_sh(out, sizeof out, "awk '$1==\"+\"{p[$2]=1} $1==\"-\"{delete p[$2]} "
	    "END{n=0; for (k in p) n++; print n}' %s/state-%s/outbox/log", site.dir, cts);
	return atoi(out);
}

/*
 * The CTS loses its GCS while that one stores a keyed checkpoint's record: the checkpoint fails
 * (its record stays in the outbox), and the broker's retry with the same key through another GCS
 * must not take a second dump: it is answered with that checkpoint once its record is stored.
 */
static void
test_keyed_retry_after_a_lost_gcs(void **state)
{
	struct proto_sync *b1, *b2;
	char code[64], msg[512], id[ID_LEN + 1], got[ID_LEN + 1], dir[4200], filter[200], v[64];
	uint64_t seq;

	(void)state;
	assert_non_null(q_conn1);
	b1 = broker_ask("g-q1", "key-lost");
	assert_int_equal(job_save(q_conn1, 10000, id, dir, sizeof dir), 0);
	kill(gcsa_pid, SIGSTOP);		/* q-1's GCS hangs, then dies */
	job_saved(q_conn1, id, dir);
	for (int i = 0; i < 100 && outbox_count("q-1") == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(outbox_count("q-1"), 1);
	kill(gcsa_pid, SIGKILL);
	waitpid(gcsa_pid, NULL, 0);
	gcsa_pid = -1;
	/* the CTS fails it (gcs-t then looks for the record a few seconds, in vain) */
	assert_int_equal(broker_reply(b1, 20000, got, &seq, code, msg), -1);
	assert_int_equal(outbox_count("q-1"), 1);

	b2 = broker_ask("g-q1", "key-lost");
	assert_int_equal(job_save(q_conn1, 500, got, NULL, 0), -1);	/* no second dump */
	gcsa_pid = test_gcs_start(&site, "gcs-a", gcsa_ep, NULL, gcsa_ep, sizeof gcsa_ep);
	assert_true(gcsa_pid > 0);
	assert_int_equal(broker_reply(b2, 30000, got, &seq, code, msg), 0);
	assert_string_equal(got, id);
	/* the broker may hear it from the directory (gcs-t's lookup) a moment before q-1 hears
	 * its record's acknowledgement and drops it */
	for (int i = 0; i < 50 && outbox_count("q-1") != 0; i++)
		usleep(100 * 1000);
	assert_int_equal(outbox_count("q-1"), 0);
	snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaGID=g-q1)"
	    "(gcaProperty=idem=key-lost))");
	test_sh(v, sizeof v, "ldapsearch -LLL -x -ZZ -H '%s' -D \"$(awk '$1==\"binddn\"{print $2}' %s)\" "
	    "-w \"$(awk '$1==\"password\"{print $2}' %s)\" -b 'ou=jobs,o=gca' '%s' dn | grep -c '^dn:'",
	    site.ldap_uri, site.gcs_conf, site.gcs_conf, filter);
	assert_int_equal(atoi(v), 1);
	/* and once stored, the same key again: the same checkpoint */
	assert_int_equal(broker_reply(broker_ask("g-q1", "key-lost"), 10000, got, &seq, code, msg), 0);
	assert_string_equal(got, id);
	assert_int_equal(job_save(q_conn1, 300, got, NULL, 0), -1);
	proto_sync_close(q_conn1);
	q_conn1 = NULL;
	kill(q_job1, SIGKILL);
	waitpid(q_job1, NULL, 0);
}

/* ---- the criu core service's failures, with tests/lib/criu-stub as criu ---- */

/* criu-s: a criu CTS whose criu is the stub (first on its PATH), dump_timeout 4 s (so that a stub
 * started late on a loaded machine still writes its pid before it is killed) */
static void
stub_cts_start(void)
{
	char bin[400], path[4096];
	const char *old = getenv("PATH");

	snprintf(bin, sizeof bin, "%s/stub-bin", site.dir);
	assert_int_equal(test_sh(NULL, 0, "mkdir -p %s && ln -sf %s/tests/lib/criu-stub %s/criu", bin,
	    test_top(), bin), 0);
	snprintf(path, sizeof path, "%s:%s", bin, old ? old : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	stub_pid = test_cts_start(&site, "criu-s", "criu", gcs_ep, "dump_timeout 4\n", stub_sock,
	    sizeof stub_sock);
	if (old != NULL)
		setenv("PATH", old, 1);
	assert_true(stub_pid > 0);
}


/*
 * A failed dump's error names criu's log where it is kept (STATE/failed/<id>.log: the image
 * folder it was in is removed), with criu's Error line; the newest CKPT_FAILED_LOGS (10) stay.
 * A successful dump keeps its log with the image.
 */
static void
test_criu_failure_keeps_its_log(void **state)
{
	char code[64], msg[512], id[ID_LEN + 1], first[4200] = "", log[4200], out[256];
	const char *at, *end;
	uint64_t seq;

	(void)state;
	stub_cts_start();
	bound_child(stub_sock, "g-fail");
	for (int i = 0; i < 12; i++) {
		assert_int_equal(broker_reply(broker_ask("g-fail", NULL), 20000, id, &seq, code, msg), -1);
		assert_non_null(strstr(msg, "criu dump failed"));
		assert_non_null(strstr(msg, "stub: cannot seize the task"));
		assert_non_null(at = strstr(msg, "(log "));
		assert_non_null(end = strstr(at, ".log)"));
		snprintf(log, sizeof log, "%.*s", (int)(end + 4 - at - 5), at + 5);
		assert_non_null(strstr(log, "/state-criu-s/failed/"));
		assert_int_equal(test_sh(NULL, 0, "grep -q 'Error (criu/cr-dump.c:1): stub: cannot "
		    "seize the task' '%s'", log), 0);
		if (i == 0)
			snprintf(first, sizeof first, "%s", log);
	}
	test_sh(out, sizeof out, "ls %s/state-criu-s/failed | wc -l", site.dir);
	assert_int_equal(atoi(out), 10);
	assert_int_equal(access(first, F_OK), -1);	/* the oldest went */
	test_sh(out, sizeof out, "ls -A %s/state-criu-s/images/g-fail | wc -l", site.dir);
	assert_int_equal(atoi(out), 0);			/* no failed image left */

	bound_child(stub_sock, "g-ok");
	assert_int_equal(broker_reply(broker_ask("g-ok", NULL), 20000, id, &seq, code, msg), 0);
	snprintf(log, sizeof log, "%s/state-criu-s/images/g-ok/%s/dump.log", site.dir, id);
	assert_int_equal(test_sh(NULL, 0, "grep -q 'finished successfully' '%s'", log), 0);
}

/* A dump that hangs is killed after dump_timeout (4 s): the checkpoint fails saying so, criu
 * (here the stub's sleep) is gone, and the job's next checkpoint is not held up behind it. */
static void
test_hung_dump_is_killed(void **state)
{
	char code[64], msg[512], id[ID_LEN + 1], path[600], pid[32] = "";
	struct proto_sync *b1, *b2;
	uint64_t seq, t0;
	int hung;

	(void)state;
	assert_true(stub_pid > 0);
	bound_child(stub_sock, "g-hang");
	snprintf(path, sizeof path, "%s/state-criu-s/hang.pid", site.dir);
	unlink(path);
	t0 = time_mono_ms();
	b1 = broker_ask("g-hang", NULL);
	b2 = broker_ask("g-hang", NULL);	/* waits behind the first */
	/* the first stub's pid, read while it hangs: once it is killed the second overwrites it */
	for (int i = 0; i < 30 && atoi(pid) <= 0; i++) {
		usleep(100 * 1000);
		test_sh(pid, sizeof pid, "cat %s 2>/dev/null", path);
	}
	hung = atoi(pid);
	assert_true(hung > 0);
	assert_true(time_mono_ms() - t0 < 4000);
	assert_int_equal(broker_reply(b1, 20000, id, &seq, code, msg), -1);
	assert_non_null(strstr(msg, "not done within 4 s (dump_timeout); its processes were killed"));
	assert_true(time_mono_ms() - t0 >= 4000);
	for (int i = 0; i < 50 && !test_process_gone(hung); i++)
		usleep(100 * 1000);
	assert_true(test_process_gone(hung));
	/* the second one ran next (and hung, and was killed, in its turn) */
	assert_int_equal(broker_reply(b2, 20000, id, &seq, code, msg), -1);
	assert_non_null(strstr(msg, "dump_timeout"));
	test_sh(pid, sizeof pid, "cat %s", path);
	assert_int_not_equal(atoi(pid), hung);
	assert_int_equal(test_gcs_stop(stub_pid), 0);
	stub_pid = -1;
}

/* ---- the wake signal: SIGUSR2 before app_save, to a job that catches it ---- */

static volatile sig_atomic_t wake_count;
static int wake_pending;	/* SIGUSR2 was pending when app_save arrived */

static void
on_wake(int sig)
{
	(void)sig;
	wake_count++;
}

static int
answer_wake(struct proto_sync *job, const struct msg_app_save *save)
{
	sigset_t set;

	sigpending(&set);
	wake_pending = sigismember(&set, SIGUSR2);
	return answer_files(job, save);
}

static void
test_wake_signal(void **state)
{
	struct proto_sync *job = local_connect(app_sock);
	const struct proto_type *okt = proto_type_find("do_checkpoint")->reply;
	struct sigaction sa = { .sa_handler = on_wake, .sa_flags = SA_RESTART }, dfl = { 0 };
	struct msg_checkpoint_ok *ok;
	char code[64], msg[512];
	sigset_t usr2;

	(void)state;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigemptyset(&sa.sa_mask);
	dfl.sa_handler = SIG_DFL;
	assert_int_equal(bind_gid(job, "g-wake", getpid(), code, msg), 0);
	/* blocked, so a signal would wait as pending (and not kill us at its default action) */
	sigprocmask(SIG_BLOCK, &usr2, NULL);

	/* SIGUSR2 not caught: never sent */
	sigaction(SIGUSR2, &dfl, NULL);
	assert_int_equal(checkpoint_as_job(job, "g-wake", NULL, answer_wake, code, msg, &ok), 0);
	proto_body_free(okt, ok);
	assert_false(wake_pending);

	/* caught: sent before app_save */
	sigaction(SIGUSR2, &sa, NULL);
	assert_int_equal(checkpoint_as_job(job, "g-wake", NULL, answer_wake, code, msg, &ok), 0);
	proto_body_free(okt, ok);
	assert_true(wake_pending);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	assert_int_equal(wake_count, 1);
	sigaction(SIGUSR2, &dfl, NULL);
	proto_sync_close(job);
}

static int
count_images(const char *gid)
{
	char out[64];

	test_sh(out, sizeof out, "ls %s/state-app-1/images/%s | wc -l", site.dir, gid);
	return atoi(out);
}

/* ---- incremental app images (app_incremental 3): the job writes only what changed ---- */

static char inc_prev[ID_LEN + 1];	/* the checkpoint the next app_save must offer, "" none */

static void
inc_write(const char *dir, const char *name, const char *value)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	assert_int_equal(file_write_whole(p, value, strlen(value), 0600), 0);
}

static void
inc_expect(const char *dir, const char *name, const char *value)
{
	char p[4200], *buf = NULL;
	size_t len;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (file_read_all(p, &buf, &len, 4096) != 0)
		fail_msg("%s: cannot read it", p);
	assert_int_equal(len, strlen(value));
	assert_memory_equal(buf, value, len);
	free(buf);
}

static void
inc_absent(const char *dir, const char *name)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	assert_int_equal(access(p, F_OK), -1);
}

static int
saved_on(struct proto_sync *job, const char *id, const char *parent)
{
	struct msg_app_saved a = { .checkpoint_id = id, .ok = true, .parent = parent };
	char code[64], msg[512];
	void *reply = NULL;
	int rc = proto_sync_call(job, "app_saved", proto_type_find("app_saved"), &a, &reply, code,
	    sizeof code, msg, sizeof msg);

	proto_body_free(proto_type_find("app_saved")->reply, reply);
	return rc;
}

/* 1: a and b in full (nothing offered) */
static int
inc_full(struct proto_sync *job, const struct msg_app_save *save)
{
	assert_null(save->parent_id);
	inc_write(save->image_dir, "a", "a1");
	inc_write(save->image_dir, "b", "b1");
	return saved_on(job, save->checkpoint_id, NULL);
}

/* 2: the first offered with a and b; only b changed */
static int
inc_b(struct proto_sync *job, const struct msg_app_save *save)
{
	assert_non_null(save->parent_id);
	assert_string_equal(save->parent_id, inc_prev);
	inc_expect(save->parent_dir, "a", "a1");
	inc_expect(save->parent_dir, "b", "b1");
	inc_write(save->image_dir, "b", "b2");
	return saved_on(job, save->checkpoint_id, save->parent_id);
}

/* 3: the second offered as a chain (b2 there, a1 in its parent); only a changed */
static int
inc_a(struct proto_sync *job, const struct msg_app_save *save)
{
	char older[4200];

	assert_string_equal(save->parent_id, inc_prev);
	inc_expect(save->parent_dir, "b", "b2");
	inc_absent(save->parent_dir, "a");
	snprintf(older, sizeof older, "%s/parent", save->parent_dir);
	inc_expect(older, "a", "a1");
	inc_write(save->image_dir, "a", "a3");
	return saved_on(job, save->checkpoint_id, save->parent_id);
}

/* a job claiming a parent it was not offered */
static int
inc_wrong(struct proto_sync *job, const struct msg_app_save *save)
{
	inc_write(save->image_dir, "a", "a4");
	return saved_on(job, save->checkpoint_id, "0190a0b0-0000-7000-8000-000000000000");
}

static void
test_app_incremental(void **state)
{
	struct proto_sync *job = local_connect(app_sock);
	int (*step[])(struct proto_sync *, const struct msg_app_save *) = { inc_full, inc_b, inc_a };
	const struct proto_type *okt = proto_type_find("do_checkpoint")->reply;
	const struct proto_type *rpt = proto_type_find("restore_prepare");
	char code[64], msg[512], ids[3][ID_LEN + 1], v[64], filter[128], path[1200];
	struct msg_checkpoint_ok *ok;
	struct msg_restore_prepare rq = { "g-inc", "latest", NULL };
	struct msg_restore_ok *r = NULL;

	(void)state;
	assert_int_equal(bind_gid(job, "g-inc", getpid(), code, msg), 0);
	inc_prev[0] = '\0';
	for (int i = 0; i < 3; i++) {
		assert_int_equal(checkpoint_as_job(job, "g-inc", NULL, step[i], code, msg, &ok), 0);
		snprintf(ids[i], sizeof ids[i], "%s", ok->checkpoint_id);
		snprintf(inc_prev, sizeof inc_prev, "%s", ok->checkpoint_id);
		proto_body_free(okt, ok);
	}
	/* the records name their parents */
	for (int i = 1; i < 3; i++) {
		snprintf(filter, sizeof filter, "(gcaCheckpointId=%s)", ids[i]);
		ldap_value("jobs", filter, "gcaParentCheckpointId", v, sizeof v);
		assert_string_equal(v, ids[i - 1]);
	}
	snprintf(filter, sizeof filter, "(gcaCheckpointId=%s)", ids[0]);
	v[0] = '\0';
	ldap_value("jobs", filter, "gcaParentCheckpointId", v, sizeof v);
	assert_string_equal(v, "");
	/* retention 2 keeps all three: the newest two need the first */
	assert_int_equal(count_images("g-inc"), 3);
	/* the second image holds only b */
	snprintf(path, sizeof path, "%s/state-app-1/images/g-inc/%s", site.dir, ids[1]);
	inc_expect(path, "b", "b2");
	inc_absent(path, "a");

	/* restore gives the chain: a3 / parent: b2 / parent/parent: a1 b1 */
	assert_int_equal(proto_sync_call(job, "restore_prepare", rpt, &rq, (void **)&r, code,
	    sizeof code, msg, sizeof msg), 0);
	assert_string_equal(r->checkpoint_id, ids[2]);
	inc_expect(r->image_dir, "a", "a3");
	inc_absent(r->image_dir, "b");
	snprintf(path, sizeof path, "%s/parent", r->image_dir);
	inc_expect(path, "b", "b2");
	snprintf(path, sizeof path, "%s/parent/parent", r->image_dir);
	inc_expect(path, "a", "a1");
	inc_expect(path, "b", "b1");
	file_remove_tree(r->image_dir);
	proto_body_free(rpt->reply, r);

	/* a parent not offered is refused */
	assert_int_equal(checkpoint_as_job(job, "g-inc", NULL, inc_wrong, code, msg, &ok), -1);
	assert_non_null(strstr(msg, "not offered"));
	proto_sync_close(job);
}

static void
test_retention_keeps_the_newest(void **state)
{
	struct proto_sync *job = local_connect(app_sock);
	struct msg_checkpoint_ok *ok;
	const struct proto_type *okt = proto_type_find("do_checkpoint")->reply;
	char code[64], msg[512], first[ID_LEN + 1], path[1200];

	(void)state;
	assert_int_equal(bind_gid(job, "g-ret", getpid(), code, msg), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(checkpoint_as_job(job, "g-ret", NULL, answer_files, code, msg, &ok), 0);
		if (i == 0)
			snprintf(first, sizeof first, "%s", ok->checkpoint_id);
		proto_body_free(okt, ok);
	}
	for (int i = 0; i < 50 && count_images("g-ret") != 2; i++)
		usleep(100 * 1000);	/* retention runs after the reply, off the loop */
	assert_int_equal(count_images("g-ret"), 2);	/* retention 2 */
	snprintf(path, sizeof path, "%s/state-app-1/images/g-ret/%s", site.dir, first);
	assert_int_equal(access(path, F_OK), -1);
	proto_sync_close(job);
}

/* gid's checkpoint id: its record's gcaStatus (polling up to 10 s for want, "" = any) in v. */
static void
record_status(const char *id, const char *want, char *v, size_t len)
{
	char filter[128];

	snprintf(filter, sizeof filter, "(gcaCheckpointId=%s)", id);
	for (int i = 0; i < 100; i++) {
		v[0] = '\0';
		ldap_value("jobs", filter, "gcaStatus", v, len);
		if (strcmp(v, want) == 0)
			break;
		usleep(100 * 1000);
	}
}

/*
 * Retention under a burst (cts/retention.c): two jobs checkpointed back to back ask for retention
 * after each record, served by runs one at a time for both (a run at most every second, so most
 * requests wait and are coalesced): each job ends with its newest two images (retention 2), and
 * every image removed has its record expired in the directory (its removal went through the
 * outbox), the two kept not.
 */
static void
test_retention_coalesced(void **state)
{
	struct proto_sync *job[2] = { local_connect(app_sock), local_connect(app_sock) };
	const struct proto_type *okt = proto_type_find("do_checkpoint")->reply;
	const char *gid[2] = { "g-rb1", "g-rb2" };
	char ids[2][6][ID_LEN + 1], code[64], msg[512], v[64];
	struct msg_checkpoint_ok *ok;

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(bind_gid(job[i], gid[i], getpid(), code, msg), 0);
	for (int k = 0; k < 6; k++) {
		for (int i = 0; i < 2; i++) {
			assert_int_equal(checkpoint_as_job(job[i], gid[i], NULL, answer_files, code, msg,
			    &ok), 0);
			snprintf(ids[i][k], sizeof ids[i][k], "%s", ok->checkpoint_id);
			proto_body_free(okt, ok);
		}
	}
	for (int i = 0; i < 2; i++) {
		for (int t = 0; t < 100 && count_images(gid[i]) != 2; t++)
			usleep(100 * 1000);
		assert_int_equal(count_images(gid[i]), 2);
		for (int k = 0; k < 6; k++) {
			record_status(ids[i][k], k < 4 ? "expired" : "", v, sizeof v);
			assert_string_equal(v, k < 4 ? "expired" : "");
		}
		proto_sync_close(job[i]);
	}
}

/* The job table across a CTS crash: a job that died meanwhile is unbound, a live one re-attaches. */
static void
test_restart_keeps_the_job_table(void **state)
{
	struct proto_sync *s;
	char code[64], msg[512], v[64] = "";
	pid_t child;

	(void)state;
	child = bound_child(app_sock, "g-gone");
	kill(app_pid, SIGKILL);
	waitpid(app_pid, NULL, 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	app_pid = test_cts_start(&site, "app-1", "app", gcs_ep, APP_MORE, app_sock, sizeof app_sock);
	assert_true(app_pid > 0);
	wait_finished("g-gone", v, sizeof v);
	assert_string_equal(v, "finished");
	/* this test process still runs g-app: binding it again re-attaches */
	s = local_connect(app_sock);
	for (int i = 0; i < 50 && bind_gid(s, "g-app", getpid(), code, msg) != 0; i++)
		usleep(100 * 1000);		/* until the CTS registered again */
	assert_int_equal(bind_gid(s, "g-app", getpid(), code, msg), 0);
	proto_sync_close(s);
}

/* ldapmodify as the GCS's directory identity; the change in LDIF. */
static int
ldap_modify(const char *ldif)
{
	return test_sh(NULL, 0, "printf '%%s\\n' '%s' | ldapmodify -x -ZZ -H '%s' -D \"$(awk '$1==\"binddn\""
	    "{print $2}' %s)\" -w \"$(awk '$1==\"password\"{print $2}' %s)\" >/dev/null", ldif,
	    site.ldap_uri, site.gcs_conf, site.gcs_conf);
}

/*
 * A PID reused while the CTS was away: the job table and the directory name pid P started at S,
 * and P is now another process. After the restart the entry is unbound (finished), the live
 * process is left alone, and nothing of it is ever dumped.
 */
static void
test_reused_pid_is_never_dumped(void **state)
{
	char code[64], msg[512], v[128] = "", ldif[512], path[600], out[256];
	unsigned long long start;
	struct msg_checkpoint_ok *ok;
	pid_t child;

	(void)state;
	child = bound_child(app_sock, "g-reuse");
	ldap_value("jobs", "(gcaGID=g-reuse)", "gcaLocalId", v, sizeof v);
	assert_int_equal(sscanf(v, "%*d:%llu", &start), 1);
	kill(app_pid, SIGKILL);
	waitpid(app_pid, NULL, 0);
	/* as if the bound process had ended and P been given to this one, started later */
	snprintf(path, sizeof path, "%s/state-app-1/jobs", site.dir);
	assert_int_equal(test_sh(NULL, 0, "sed -i 's/^job %d %llu \\(.* g-reuse\\)$/job %d %llu \\1/' %s"
	    " && grep -q '^job %d %llu .* g-reuse$' %s", (int)child, start, (int)child, start + 4242,
	    path, (int)child, start + 4242, path), 0);
	snprintf(ldif, sizeof ldif, "dn: gcaGID=g-reuse,ou=jobs,o=gca\nchangetype: modify\n"
	    "replace: gcaLocalId\ngcaLocalId: %d:%llu", (int)child, start + 4242);
	assert_int_equal(ldap_modify(ldif), 0);

	app_pid = test_cts_start(&site, "app-1", "app", gcs_ep, APP_MORE, app_sock, sizeof app_sock);
	assert_true(app_pid > 0);
	wait_finished("g-reuse", v, sizeof v);
	assert_string_equal(v, "finished");
	for (int i = 0; i < 50 && test_sh(NULL, 0, "grep -q ' g-reuse$' %s", path) == 0; i++)
		usleep(100 * 1000);
	assert_int_not_equal(test_sh(NULL, 0, "grep -q ' g-reuse$' %s", path), 0);
	assert_int_equal(kill(child, 0), 0);		/* the other process is left alone */
	assert_int_equal(checkpoint_as_job(NULL, "g-reuse", NULL, NULL, code, msg, &ok), -1);
	assert_non_null(strstr(msg, "finished"));
	test_sh(out, sizeof out, "ls -A %s/state-app-1/images/g-reuse 2>/dev/null | wc -l", site.dir);
	assert_int_equal(atoi(out), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

static void
test_restore_prepare_errors(void **state)
{
	struct proto_sync *s = local_connect(app_sock);
	struct msg_restore_prepare b = { "g-app", "yesterday", NULL };
	const struct proto_type *pt = proto_type_find("restore_prepare");
	char code[64], msg[512];
	void *reply = NULL;

	(void)state;
	assert_int_equal(proto_sync_call(s, "restore_prepare", pt, &b, &reply, code, sizeof code, msg,
	    sizeof msg), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	b = (struct msg_restore_prepare){ "no-such-gid", "latest", NULL };
	assert_int_equal(proto_sync_call(s, "restore_prepare", pt, &b, &reply, code, sizeof code, msg,
	    sizeof msg), -1);
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	b = (struct msg_restore_prepare){ "g-app", "0190a0b0-0000-7000-8000-000000000000", NULL };
	assert_int_equal(proto_sync_call(s, "restore_prepare", pt, &b, &reply, code, sizeof code, msg,
	    sizeof msg), -1);
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	proto_sync_close(s);
}

static void
test_bad_descriptors_stop_the_start(void **state)
{
	char out[2048], conf[600];

	(void)state;
	snprintf(conf, sizeof conf, "%s/bad.conf", site.dir);
	test_sh(NULL, 0, "printf 'gcaCoreService: criu\\n' > %s/bad1.ldif; "
	    "printf 'gcaClass: basic\\ngcaColour: blue\\n' > %s/bad2.ldif", site.dir, site.dir);
	test_sh(NULL, 0, "printf 'name x\\nsocket %s/x.sock\\ngcs 127.0.0.1:1\\nca a\\ncert b\\nkey c\\n"
	    "state %s/x\\ndescriptor %s/bad1.ldif\\n' > %s", site.dir, site.dir, site.dir, conf);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s 2>&1", getenv("GCA_BUILD") ?
	    getenv("GCA_BUILD") : "build", conf), 0);
	assert_non_null(strstr(out, "gcaCoreService criu, but cts.conf's core_service is app"));
	test_sh(NULL, 0, "sed -i 's/bad1/bad2/' %s", conf);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s 2>&1", getenv("GCA_BUILD") ?
	    getenv("GCA_BUILD") : "build", conf), 0);
	assert_non_null(strstr(out, "unknown attribute gcaColour"));

	/* a pattern the wrappers cannot fill stops the start, naming it (else every gca-exec of a
	 * job here would fail) */
	test_sh(NULL, 0, "printf 'gcaExecuteParams: JOB_DIR=/scratch/{gid}/{nope}\\n' > %s/bad3.ldif; "
	    "printf 'gcaExecuteParams: JOB_IMAGE={image_dir}\\n' > %s/bad4.ldif; "
	    "printf 'gcaRecoveryParams: JOB_IMAGE={image_dir}/{seq}/{checkpoint_id}\\n"
	    "gcaExecuteParams: JOB_DIR={{literal}/{gid}/{pid}/{cts}/{core_service}\\n' > %s/good.ldif",
	    site.dir, site.dir, site.dir);
	test_sh(NULL, 0, "sed -i 's/bad2/bad3/' %s", conf);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s 2>&1", getenv("GCA_BUILD") ?
	    getenv("GCA_BUILD") : "build", conf), 0);
	assert_non_null(strstr(out, "gcaExecuteParams \"JOB_DIR=/scratch/{gid}/{nope}\": unknown "
	    "placeholder {nope}"));
	test_sh(NULL, 0, "sed -i 's/bad3/bad4/' %s", conf);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s 2>&1", getenv("GCA_BUILD") ?
	    getenv("GCA_BUILD") : "build", conf), 0);
	assert_non_null(strstr(out, "\"JOB_IMAGE={image_dir}\": unknown placeholder {image_dir} for "
	    "a job that starts"));
	/* every placeholder the wrappers fill passes the check (the start then fails further on:
	 * the config's certificate files do not exist) */
	test_sh(NULL, 0, "sed -i 's/bad4/good/' %s", conf);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s 2>&1", getenv("GCA_BUILD") ?
	    getenv("GCA_BUILD") : "build", conf), 0);
	assert_null(strstr(out, "placeholder"));
	assert_null(strstr(out, "good.ldif"));
}

/* connect() to path as uid/gid nobody, in the supplementary group extra (-1: none): errno or 0 */
static int
connect_as_nobody(const char *path, gid_t extra)
{
	int status;
	pid_t p = fork();

	if (p == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int fd, n = extra == (gid_t)-1 ? 0 : 1;

		if (setgroups((size_t)n, &extra) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(200);
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			_exit(201);
		_exit(connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ? 0 : errno);
	}
	waitpid(p, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* socket_group: the socket is 0660 and the group's; others cannot connect; a group that does not
 * exist stops the start, naming it. */
static void
test_socket_group(void **state)
{
	const char *build = getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build";
	struct group *daemon = getgrnam("daemon");
	char sock[400], out[2048];
	struct stat st;
	pid_t pid;

	(void)state;
	if (getuid() != 0 || daemon == NULL) {
		test_not_run("integration/test_cts", "socket_group (needs %s)", getuid() != 0 ? "root" :
		    "the group daemon");
		skip();
	}
	pid = test_cts_start(&site, "grp-1", "app", gcs_ep, "socket_group daemon\n", sock,
	    sizeof sock);
	assert_true(pid > 0);
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(st.st_gid, daemon->gr_gid);
	assert_int_equal(connect_as_nobody(sock, (gid_t)-1), EACCES);
	assert_int_equal(connect_as_nobody(sock, daemon->gr_gid), 0);	/* a member may */
	assert_int_equal(test_gcs_stop(pid), 0);

	test_sh(NULL, 0, "sed -i 's/^socket_group .*/socket_group no-such-group/' %s/grp-1.conf",
	    site.dir);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s/grp-1.conf 2>&1", build,
	    site.dir), 0);
	assert_non_null(strstr(out, "socket_group no-such-group: no such group"));
}

/* A second gca-cts on a running one's socket (here its very cts.conf) refuses to start and leaves
 * the first one its socket; a stale socket file (nobody listening) is removed, as after a crash. */
static void
test_second_cts_on_the_socket(void **state)
{
	const char *build = getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build";
	struct proto_sync *s;
	char out[2048], code[64], msg[512];
	struct msg_ping_ok *pong = NULL;

	(void)state;
	assert_int_not_equal(test_sh(out, sizeof out, "timeout 20 %s/gca-cts -f %s/app-1.conf "
	    "--port-file %s/second.port 2>&1", build, site.dir, site.dir), 0);
	assert_non_null(strstr(out, "another process listens on it"));
	assert_non_null(strstr(out, app_sock));
	s = local_connect(app_sock);	/* the first one still has it */
	assert_int_equal(proto_sync_call(s, "ping", proto_type_find("ping"), NULL, (void **)&pong,
	    code, sizeof code, msg, sizeof msg), 0);
	proto_body_free(proto_type_find("ping")->reply, pong);
	proto_sync_close(s);

	/* a path that is not a socket is not removed */
	test_sh(NULL, 0, "printf 'name x\\nsocket %s/notasocket\\ngcs 127.0.0.1:1\\nca a\\ncert b\\n"
	    "key c\\nstate %s/x\\n' > %s/x.conf; echo data > %s/notasocket", site.dir, site.dir,
	    site.dir, site.dir);
	assert_int_not_equal(test_sh(out, sizeof out, "%s/gca-cts -f %s/x.conf 2>&1", build,
	    site.dir), 0);
	assert_non_null(strstr(out, "is not a socket"));
	assert_int_equal(test_sh(NULL, 0, "grep -qx data %s/notasocket", site.dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cts_registers_itself),
		cmocka_unit_test(test_criu_is_published_with_its_reason),
		cmocka_unit_test(test_local_info),
		cmocka_unit_test(test_bind_rules),
		cmocka_unit_test(test_local_exit_rules),
		cmocka_unit_test(test_app_conversation),
		cmocka_unit_test(test_retention_keeps_the_newest),
		cmocka_unit_test(test_retention_coalesced),
		cmocka_unit_test(test_wake_signal),
		cmocka_unit_test(test_app_incremental),
		cmocka_unit_test(test_one_checkpoint_at_a_time),
		cmocka_unit_test(test_keyed_retry_after_a_lost_gcs),
		cmocka_unit_test(test_criu_failure_keeps_its_log),
		cmocka_unit_test(test_hung_dump_is_killed),
		cmocka_unit_test(test_restart_keeps_the_job_table),
		cmocka_unit_test(test_reused_pid_is_never_dumped),
		cmocka_unit_test(test_restore_prepare_errors),
		cmocka_unit_test(test_bad_descriptors_stop_the_start),
		cmocka_unit_test(test_second_cts_on_the_socket),
		cmocka_unit_test(test_socket_group),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
