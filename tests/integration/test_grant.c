/*
 * Image grants (proto/grant.c) with a real site PKI from scripts/gca-pki: a GCS's grant is
 * accepted; an altered payload, a signature from another key, a certificate of another CA or of
 * another role (a CTS signing its own grant), an expired grant and garbage are refused. A manifest's
 * detached signature is checked against its bytes and its signer's name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

static char dir[64], ca[128];

static int
setup(void **state)
{
	char out[4096];

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/gca-grant.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	if (test_sh(out, sizeof out, "cd %s && P=%s/scripts/gca-pki && $P init . && "
	    "$P issue . gcs gcs-t && $P issue . gcs gcs-u && $P issue . cts c1 && $P init other && "
	    "$P issue other gcs gcs-x >/dev/null", dir, test_top()) != 0) {
		fprintf(stderr, "gca-pki failed: %s\n", out);
		return -1;
	}
	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	file_remove_tree(dir);
	return 0;
}

static char *
sign_as(const char *base, const char *certbase, uint64_t expires)
{
	char cert[128], key[128], err[256];
	struct proto_tls_files f = { ca, cert, key };
	struct proto_grant g = { .expires_ms = expires };
	char *tok = NULL;

	snprintf(cert, sizeof cert, "%s/%s.crt", dir, certbase);
	snprintf(key, sizeof key, "%s/%s.key", dir, base);
	snprintf(g.checkpoint_id, sizeof g.checkpoint_id, "01a21249-ef6a-7557-b239-820806130ba3");
	snprintf(g.target, sizeof g.target, "cts-b");
	snprintf(g.gcs, sizeof g.gcs, "gcs-t");
	snprintf(g.gid, sizeof g.gid, "a job, (with) *odd* chars");
	if (proto_grant_sign(&f, &g, &tok, err, sizeof err) != 0)
		fail_msg("sign: %s", err);
	return tok;
}

static void
test_a_gcs_grant_is_accepted(void **state)
{
	char *tok = sign_as("gcs-gcs-t", "gcs-gcs-t", time_now_ms() + 60000), err[256];
	struct proto_grant g;

	(void)state;
	assert_true(strlen(tok) < PROTO_GRANT_MAX);
	assert_int_equal(proto_grant_verify(ca, tok, time_now_ms(), &g, err, sizeof err), 0);
	assert_string_equal(g.target, "cts-b");
	assert_string_equal(g.gid, "a job, (with) *odd* chars");
	assert_string_equal(g.checkpoint_id, "01a21249-ef6a-7557-b239-820806130ba3");
	free(tok);
}

static void
test_tampered_grants_are_refused(void **state)
{
	uint64_t later = time_now_ms() + 60000;
	char *tok = sign_as("gcs-gcs-t", "gcs-gcs-t", later), *other, err[256], *t2, *d1, *d2;
	struct proto_grant g;

	(void)state;
	/* one character of the payload changed */
	t2 = strdup(tok);
	t2[10] = t2[10] == 'A' ? 'B' : 'A';
	assert_int_equal(proto_grant_verify(ca, t2, time_now_ms(), &g, err, sizeof err), -1);
	free(t2);
	/* another GCS's payload and signature with this certificate */
	other = sign_as("gcs-gcs-u", "gcs-gcs-t", later);
	assert_int_equal(proto_grant_verify(ca, other, time_now_ms(), &g, err, sizeof err), -1);
	assert_non_null(strstr(err, "signature"));
	free(other);
	/* a CTS's own key and certificate: the right CA, the wrong role */
	other = sign_as("cts-c1", "cts-c1", later);
	assert_int_equal(proto_grant_verify(ca, other, time_now_ms(), &g, err, sizeof err), -1);
	assert_non_null(strstr(err, "GCS"));
	free(other);
	/* a GCS of another CA */
	other = sign_as("other/gcs-gcs-x", "other/gcs-gcs-x", later);
	assert_int_equal(proto_grant_verify(ca, other, time_now_ms(), &g, err, sizeof err), -1);
	assert_non_null(strstr(err, "CA"));
	free(other);
	/* a grant with a later expiry, carrying the signature of the first one */
	d1 = strchr(tok + 3, '.');
	d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	other = sign_as("gcs-gcs-t", "gcs-gcs-t", later + 1);
	t2 = strdup(other);
	memcpy(strchr(t2 + 3, '.') + 1, d1 + 1, (size_t)(d2 - d1 - 1));	/* same length */
	assert_int_equal(proto_grant_verify(ca, t2, time_now_ms(), &g, err, sizeof err), -1);
	free(t2);
	free(other);
	/* expired, and garbage */
	assert_int_equal(proto_grant_verify(ca, tok, later + 1, &g, err, sizeof err), -1);
	assert_non_null(strstr(err, "expired"));
	assert_int_equal(proto_grant_verify(ca, "G1.a.b.c", time_now_ms(), &g, err, sizeof err), -1);
	assert_int_equal(proto_grant_verify(ca, "hello", time_now_ms(), &g, err, sizeof err), -1);
	free(tok);
}

static void
test_manifest_signatures(void **state)
{
	char cert[128], key[128], err[256], *sig = NULL;
	struct proto_tls_files f = { ca, cert, key };
	const char man[] = "gca-manifest 1\ncheckpoint x\n", other[] = "gca-manifest 1\ncheckpoint y\n";

	(void)state;
	snprintf(cert, sizeof cert, "%s/cts-c1.crt", dir);
	snprintf(key, sizeof key, "%s/cts-c1.key", dir);
	assert_int_equal(proto_sig_make(&f, man, strlen(man), &sig, err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "cts", "c1", err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "cts", NULL, err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, other, strlen(other), "cts", "c1", err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "cts", "c2", err, sizeof err), -1);
	assert_non_null(strstr(err, "c2"));
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "gcs", NULL, err, sizeof err), -1);
	assert_int_equal(proto_sig_check(ca, "S1.xx", man, strlen(man), "cts", NULL, err, sizeof err),
	    -1);
	free(sig);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_gcs_grant_is_accepted),
		cmocka_unit_test(test_tampered_grants_are_refused),
		cmocka_unit_test(test_manifest_signatures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
