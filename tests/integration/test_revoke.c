/*
 * Revoked certificates (`gca-pki revoke`, docs/DEPLOYMENT.md "Revoking a certificate"): a running
 * gca-gcs and gca-cts read the new pki/ca.crl without a restart and refuse a revoked broker, CTS
 * or admin at the handshake; gca-ctl refuses a revoked GCS and says why; identities not revoked
 * go on; a CRL spoilt later keeps the revocations known before; a daemon whose CRL cannot be read
 * does not start.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

static struct test_site site;
static char gcs_ep[64], cts_ep[64], cts_sock[300];
static int gcs_pid = -1, cts_pid = -1;
static char client_ca[400];	/* set: clients trust this copy of the CA, which has no CRL beside it */

static int
setup(void **state)
{
	(void)state;
	if (test_site_up(&site) != 0 ||
	    test_pki(&site, "gcs gcs-r gcs gcs-x cts cts-r broker b broker b2 admin a admin a2") != 0)
		return -1;
	if ((gcs_pid = test_gcs_start(&site, "gcs-r", "127.0.0.1:0", NULL, gcs_ep, sizeof gcs_ep)) < 0)
		return -1;
	if ((cts_pid = test_cts_start(&site, "cts-r", "app", gcs_ep, NULL, cts_sock, sizeof cts_sock)) < 0 ||
	    test_daemon_endpoint(&site, "cts-r", cts_ep, sizeof cts_ep) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int cts = 0, gcs = 0;

	(void)state;
	if (cts_pid > 0)
		cts = test_gcs_stop(cts_pid);
	if (gcs_pid > 0)
		gcs = test_gcs_stop(gcs_pid);
	test_site_down(&site);
	assert_int_equal(cts, 0);
	assert_int_equal(gcs, 0);
	return 0;
}

/* A ping to endpoint as who on a new connection: 0 if answered. */
static int
revoke_ping(const char *endpoint, const char *who)
{
	struct proto_tls_files t = test_identity(&site, who);
	char err[256];
	struct proto_sync *s;
	int rc;

	if (client_ca[0] != '\0')
		t.ca = client_ca;
	if ((s = proto_sync_connect(endpoint, &t, NULL, 5000, err, sizeof err)) == NULL)
		return -1;
	rc = test_call(s, "ping", NULL, NULL, NULL, NULL);
	proto_sync_close(s);
	return rc;
}

static void
revoke_id(const char *role, const char *name)
{
	char out[1024];

	assert_int_equal(test_sh(out, sizeof out, "%s/scripts/gca-pki revoke %s/pki %s %s 2>&1",
	    test_top(), site.dir, role, name), 0);
	assert_non_null(strstr(out, "revoked"));
}

/* Daemons look at the CRL at most once a second: a little over that, and the change is seen. */
static void
revoke_settle(void)
{
	struct timespec ts = { 1, 200 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static void
test_a_revoked_broker_is_refused_by_the_running_gcs(void **state)
{
	(void)state;
	assert_int_equal(revoke_ping(gcs_ep, "broker-b"), 0);
	revoke_id("broker", "b");
	revoke_settle();
	assert_int_not_equal(revoke_ping(gcs_ep, "broker-b"), 0);
	assert_int_equal(revoke_ping(gcs_ep, "broker-b2"), 0);		/* the others go on */
	assert_int_equal(revoke_ping(gcs_ep, "admin-a"), 0);
}

static void
test_a_revoked_admin_is_refused_by_the_running_cts(void **state)
{
	(void)state;
	assert_int_equal(revoke_ping(cts_ep, "admin-a2"), 0);
	revoke_id("admin", "a2");
	revoke_settle();
	assert_int_not_equal(revoke_ping(cts_ep, "admin-a2"), 0);
	assert_int_equal(revoke_ping(cts_ep, "admin-a"), 0);
}

static void
test_a_revoked_cts_is_refused_by_the_gcs_and_by_its_clients(void **state)
{
	struct proto_tls_files t = test_identity(&site, "admin-a");
	char err[256] = "";
	struct proto_sync *s;

	(void)state;
	revoke_id("cts", "cts-r");
	revoke_settle();
	/* the GCS refuses the CTS's certificate as a client ... */
	assert_int_not_equal(revoke_ping(gcs_ep, "cts-cts-r"), 0);
	/* ... and a client refuses it as a server, saying why */
	s = proto_sync_connect(cts_ep, &t, NULL, 5000, err, sizeof err);
	if (s != NULL)
		proto_sync_close(s);
	assert_null(s);
	assert_non_null(strstr(err, "revoked"));
}

static void
test_gca_ctl_refuses_a_revoked_gcs_and_says_why(void **state)
{
	char out[2048];
	int rc;

	(void)state;
	revoke_id("gcs", "gcs-r");
	rc = test_sh(out, sizeof out, "GCA_GCS_ENDPOINT=%s GCA_CA_FILE=%s/pki/ca.crt "
	    "GCA_CERT_FILE=%s/pki/broker-b2.crt GCA_KEY_FILE=%s/pki/broker-b2.key GCA_ADMIN_CERT_FILE= "
	    "%s/gca-ctl status 2>&1", gcs_ep, site.dir, site.dir, site.dir, getenv("GCA_BUILD"));
	assert_int_not_equal(rc, 0);
	if (strstr(out, "revoked") == NULL)
		fail_msg("gca-ctl said: %s", out);
}

static void
test_a_spoilt_crl_keeps_what_was_revoked(void **state)
{
	char out[512];

	(void)state;
	/* a client's own spoilt CRL would stop the client; this is about the daemon's */
	snprintf(client_ca, sizeof client_ca, "%s/client-ca.crt", site.dir);
	assert_int_equal(test_sh(out, sizeof out, "cp %s/pki/ca.crt %s", site.dir, client_ca), 0);
	assert_int_equal(revoke_ping(gcs_ep, "broker-b2"), 0);
	assert_int_equal(test_sh(out, sizeof out, "echo spoilt > %s/pki/ca.crl", site.dir), 0);
	revoke_settle();
	assert_int_not_equal(revoke_ping(gcs_ep, "broker-b"), 0);
	assert_int_equal(revoke_ping(gcs_ep, "broker-b2"), 0);
	/* and a daemon that starts with it refuses to start */
	{
		char ep[64];
		int pid = test_gcs_start(&site, "gcs-x", "127.0.0.1:0", NULL, ep, sizeof ep);

		if (pid > 0)
			test_gcs_stop(pid);
		assert_true(pid < 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_revoked_broker_is_refused_by_the_running_gcs),
		cmocka_unit_test(test_a_revoked_admin_is_refused_by_the_running_cts),
		cmocka_unit_test(test_a_revoked_cts_is_refused_by_the_gcs_and_by_its_clients),
		cmocka_unit_test(test_gca_ctl_refuses_a_revoked_gcs_and_says_why),
		cmocka_unit_test(test_a_spoilt_crl_keeps_what_was_revoked),
	};

	log_init("test_revoke");
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
