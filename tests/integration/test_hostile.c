/*
 * Hostile frames to running daemons: every message type there is, the replies "ok" and "err",
 * and a type nobody knows, each with an empty body, sent to gca-gcs and to two gca-cts (app,
 * criu and vmm) over mTLS as every role, and to each CTS's unix socket as an ordinary user. Each frame
 * must be answered (an error, or ok for what is served) or the connection closed; none may hang
 * the client, and the daemon must answer a ping afterwards (docs/ARCHITECTURE.md, "Servers answer
 * every frame"). A reply sent to a server once killed it (a NULL on_frame in proto/conn.c).
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

/* An ordinary user for the unix sockets: numeric, so no account is needed (uid 1000 may exist). */
#define STRANGER_UID	61234
#define STRANGER_GID	61234

static struct test_site site;
static char gcs_ep[64], app_ep[64], criu_ep[64], vmm_ep[64], app_sock[300], criu_sock[300],
    vmm_sock[300];
static int gcs_pid = -1, app_pid = -1, criu_pid = -1, vmm_pid = -1;

/* Every frame type a peer could name; the body is always empty. */
static const char *const frame_types[] = {
	"ok", "err", "no_such_type", "hello", "ping", "cts_register", "cts_heartbeat",
	"cts_remove", "class_register", "job_bind", "job_unbind", "job_moved", "do_checkpoint",
	"checkpoint_log", "restore_prepare", "image_grant", "image_fetch", "image_replicate",
	"image_location", "image_gc", "query", "subscribe", "notify", "local_bind",
	"audit", "image_audit",
	"local_checkpoint", "local_info", "local_exit", "local_vm_take", "app_save", "app_saved",
};

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 ||
	    test_pki(&site, "gcs gcs-h cts app-h cts criu-h cts vmm-h broker b admin a") != 0)
		return -1;
	chmod(site.dir, 0711);		/* the stranger reaches the sockets, and nothing else */
	if ((gcs_pid = test_gcs_start(&site, "gcs-h", "127.0.0.1:0", NULL, gcs_ep, sizeof gcs_ep)) < 0)
		return -1;
	app_pid = test_cts_start(&site, "app-h", "app", gcs_ep, NULL, app_sock, sizeof app_sock);
	criu_pid = test_cts_start(&site, "criu-h", "criu", gcs_ep, NULL, criu_sock, sizeof criu_sock);
	vmm_pid = test_cts_start(&site, "vmm-h", "vmm", gcs_ep, NULL, vmm_sock, sizeof vmm_sock);
	if (app_pid < 0 || criu_pid < 0 || vmm_pid < 0 ||
	    test_daemon_endpoint(&site, "app-h", app_ep, sizeof app_ep) != 0 ||
	    test_daemon_endpoint(&site, "criu-h", criu_ep, sizeof criu_ep) != 0 ||
	    test_daemon_endpoint(&site, "vmm-h", vmm_ep, sizeof vmm_ep) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int app = 0, criu = 0, vmm = 0, gcs = 0;

	(void)state;
	if (app_pid > 0)
		app = test_gcs_stop(app_pid);
	if (criu_pid > 0)
		criu = test_gcs_stop(criu_pid);
	if (vmm_pid > 0)
		vmm = test_gcs_stop(vmm_pid);
	if (gcs_pid > 0)
		gcs = test_gcs_stop(gcs_pid);
	test_site_down(&site);
	assert_int_equal(app, 0);	/* a clean stop: no crash, no leak under SAN=1 */
	assert_int_equal(criu, 0);
	assert_int_equal(vmm, 0);
	assert_int_equal(gcs, 0);
	return 0;
}

static struct proto_sync *
hostile_connect(const char *endpoint, const char *who)
{
	struct proto_tls_files t;
	char err[256];

	if (strncmp(endpoint, "unix:", 5) == 0)
		return proto_sync_connect(endpoint, NULL, NULL, 5000, err, sizeof err);
	t = test_identity(&site, who);
	return proto_sync_connect(endpoint, &t, NULL, 5000, err, sizeof err);
}

/*
 * Sends type with an empty body on a fresh connection: 0 if it was answered (err, or ok) or the
 * connection closed; -1, with why, if the daemon could not be reached or never answered.
 */
static int
hostile_send(const char *endpoint, const char *who, const char *type, char *why, size_t len)
{
	struct proto_sync *s = hostile_connect(endpoint, who);
	struct proto_msg m;
	char err[256];
	int rc;

	if (s == NULL) {
		snprintf(why, len, "cannot connect to %s as %s before sending %s", endpoint, who, type);
		return -1;
	}
	if (proto_sync_send(s, type, 7, NULL, NULL) != 0) {
		proto_sync_close(s);
		return 0;	/* closed already: a refusal, not a hang */
	}
	rc = proto_sync_read(s, 5000, NULL, &m, err, sizeof err);
	if (rc == 0)
		proto_msg_free(&m);
	proto_sync_close(s);
	if (rc == -2) {
		snprintf(why, len, "%s as %s: %s sent, no answer in 5 s", endpoint, who, type);
		return -1;
	}
	return 0;
}

/* The daemon still answers: a ping on a new connection. */
static int
hostile_alive(const char *endpoint, const char *who, char *why, size_t len)
{
	struct proto_sync *s = hostile_connect(endpoint, who);
	char code[32] = "", msg[512] = "";
	int rc;

	if (s == NULL) {
		snprintf(why, len, "%s no longer accepts %s", endpoint, who);
		return -1;
	}
	rc = test_call(s, "ping", NULL, NULL, code, msg);
	proto_sync_close(s);
	if (rc != 0)
		snprintf(why, len, "%s: ping as %s: %s %s", endpoint, who, code, msg);
	return rc;
}

/* Every type as who to endpoint, the daemon checked after each; the first failure in why. */
static int
hostile_campaign(const char *endpoint, const char *who, const char *ping_as, char *why, size_t len)
{
	for (size_t i = 0; i < GCA_NITEMS(frame_types); i++) {
		if (hostile_send(endpoint, who, frame_types[i], why, len) != 0)
			return -1;
		if (hostile_alive(endpoint, ping_as, why, len) != 0) {
			size_t n = strlen(why);
			snprintf(why + n, len - n, " (after %s sent %s)", who, frame_types[i]);
			return -1;
		}
	}
	return 0;
}

static void
test_every_frame_to_the_gcs_as_every_role(void **state)
{
	static const char *const roles[] = { "broker-b", "admin-a", "cts-app-h", "gcs-gcs-h" };
	char why[600] = "";

	(void)state;
	for (size_t i = 0; i < GCA_NITEMS(roles); i++) {
		if (hostile_campaign(gcs_ep, roles[i], "broker-b", why, sizeof why) != 0)
			fail_msg("%s", why);
	}
	assert_int_equal(kill(gcs_pid, 0), 0);
}

static void
test_every_frame_to_each_cts_over_tls_as_every_role(void **state)
{
	static const char *const roles[] = { "broker-b", "admin-a", "cts-criu-h", "gcs-gcs-h" };
	char why[600] = "";

	(void)state;
	for (size_t i = 0; i < GCA_NITEMS(roles); i++) {
		if (hostile_campaign(app_ep, roles[i], "admin-a", why, sizeof why) != 0 ||
		    hostile_campaign(criu_ep, roles[i], "admin-a", why, sizeof why) != 0 ||
		    hostile_campaign(vmm_ep, roles[i], "admin-a", why, sizeof why) != 0)
			fail_msg("%s", why);
	}
	assert_int_equal(kill(app_pid, 0), 0);
	assert_int_equal(kill(criu_pid, 0), 0);
	assert_int_equal(kill(vmm_pid, 0), 0);
}

/* Every CTS's unix socket, as whoever runs this. */
static int
hostile_sockets(char *why, size_t len)
{
	const char *const socks[] = { app_sock, criu_sock, vmm_sock };
	char ep[320];

	for (size_t i = 0; i < GCA_NITEMS(socks); i++) {
		snprintf(ep, sizeof ep, "unix:%s", socks[i]);
		if (hostile_campaign(ep, "", "", why, len) != 0)
			return -1;
	}
	return 0;
}

/* The stranger's side: exit 0, or 1 with the reason on stderr. */
static int
hostile_as_stranger(void)
{
	char why[600] = "";

	if (setgroups(0, NULL) != 0 || setresgid(STRANGER_GID, STRANGER_GID, STRANGER_GID) != 0 ||
	    setresuid(STRANGER_UID, STRANGER_UID, STRANGER_UID) != 0) {
		fprintf(stderr, "cannot become uid %d: %s\n", STRANGER_UID, strerror(errno));
		return 1;
	}
	if (hostile_sockets(why, sizeof why) != 0) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	return 0;
}

static void
test_every_frame_to_each_cts_socket_as_an_ordinary_user(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		/* without root the test runs as the one user it has, which is ordinary already */
		char why[600] = "";
		if (hostile_sockets(why, sizeof why) != 0)
			fail_msg("%s", why);
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(hostile_as_stranger());
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(kill(app_pid, 0), 0);
	assert_int_equal(kill(criu_pid, 0), 0);
	assert_int_equal(kill(vmm_pid, 0), 0);
}

/* A local_bind naming no process (pid 0, or past a pid_t) is answered, not left hanging (the
 * CTS once returned without a word: found by tests/fuzz, seed regress-local-bind-pid-0). */
static void
test_local_bind_of_no_process_is_answered(void **state)
{
	static const uint64_t pids[] = { 0, (uint64_t)INT32_MAX + 1 };
	char ep[320], code[32], msg[512];

	(void)state;
	snprintf(ep, sizeof ep, "unix:%s", app_sock);
	for (size_t i = 0; i < GCA_NITEMS(pids); i++) {
		struct msg_local_bind b = { .gid = "hostile-job", .pid = pids[i] };
		struct proto_sync *s = hostile_connect(ep, "");

		assert_non_null(s);
		code[0] = '\0';
		assert_int_equal(test_call(s, "local_bind", &b, NULL, code, msg), -1);
		proto_sync_close(s);
		assert_string_equal(code, PROTO_E_BAD_FIELD);
	}
	assert_int_equal(kill(app_pid, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_frame_to_the_gcs_as_every_role),
		cmocka_unit_test(test_every_frame_to_each_cts_over_tls_as_every_role),
		cmocka_unit_test(test_every_frame_to_each_cts_socket_as_an_ordinary_user),
		cmocka_unit_test(test_local_bind_of_no_process_is_answered),
	};

	log_init("test_hostile");
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
