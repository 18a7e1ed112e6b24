/*
 * Image grants (proto/grant.c) with a real site PKI from scripts/gca-pki: a GCS's grant is
 * accepted; an altered payload, a signature from another key, a certificate of another CA or of
 * another role (a CTS signing its own grant), an expired grant and garbage are refused. A manifest's
 * detached signature is checked against its bytes and its signer's name.
 *
 * Then with real daemons (slapd, gca-gcs, a holder gca-cts cts-a and a replica gca-cts cts-r; this
 * test speaks as cts-a and cts-b): image_fetch without a grant, with one for another checkpoint or
 * another target is forbidden; image_grant for another CTS by one that holds nothing, and for an
 * expired record, is refused; a replica checks a copy against the record (the grant), not against
 * what the sender says, and asks the image of the holder a list names, not of another CTS that
 * answers at its address; a fetcher that asks far ahead and reads slowly does not make the holder
 * buffer the image; a CTS the GID moved away from cannot record its checkpoints.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
	    "$P issue . gcs gcs-t && $P issue . gcs gcs-u && $P issue . cts c1 && $P issue . sign c1 && "
	    "$P init other && "
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
	char cert[128], key[128], err[256], out[512], *sig = NULL;
	struct proto_signer f = { cert, key };
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
	/* what a CTS accepts of a holder c1: its sign certificate, or its TLS one (older images) */
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "sign|cts", "c1", err,
	    sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "sign", "c1", err, sizeof err),
	    -1);
	assert_non_null(strstr(err, "not signed by a sign certificate (signed by cts c1)"));
	free(sig);
	snprintf(cert, sizeof cert, "%s/sign-c1.crt", dir);
	snprintf(key, sizeof key, "%s/sign-c1.key", dir);
	assert_int_equal(proto_sig_make(&f, man, strlen(man), &sig, err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "sign|cts", "c1", err,
	    sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "sign|cts", "c2", err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "not signed by c2 (signed by c1)"));
	/* a revoked signing certificate signs nothing any more */
	assert_int_equal(test_sh(out, sizeof out, "cd %s && %s/scripts/gca-pki revoke . sign c1",
	    dir, test_top()), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "sign|cts", "c1", err,
	    sizeof err), -1);
	if (strstr(err, "revoked") == NULL)
		fail_msg("%s", err);
	free(sig);
	/* a GCS's certificate signs nothing a CTS takes */
	snprintf(cert, sizeof cert, "%s/gcs-gcs-t.crt", dir);
	snprintf(key, sizeof key, "%s/gcs-gcs-t.key", dir);
	assert_int_equal(proto_sig_make(&f, man, strlen(man), &sig, err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "sign|cts", NULL, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "not signed by a sign|cts certificate (signed by gcs gcs-t)"));
	free(sig);
}

/* The signing identity is read once and again when its files change: a certificate renewed in
 * place (another CN here) signs the next manifest; a key gone means no signature, never the old one. */
static void
test_signing_identity_follows_its_files(void **state)
{
	char cert[128], key[128], err[256], out[512], *sig = NULL;
	struct proto_signer f = { cert, key };
	const char man[] = "gca-manifest 1\ncheckpoint z\n";

	(void)state;
	snprintf(cert, sizeof cert, "%s/live.crt", dir);
	snprintf(key, sizeof key, "%s/live.key", dir);
	assert_int_equal(test_sh(out, sizeof out, "cp %s/cts-c1.crt %s && cp %s/cts-c1.key %s",
	    dir, cert, dir, key), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(proto_sig_make(&f, man, strlen(man), &sig, err, sizeof err), 0);
		assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "cts", "c1", err,
		    sizeof err), 0);
		free(sig);
		if (i > 0)
			continue;
		/* the key's bytes spoilt in place, size and times kept: the second and third
		 * signatures can come only from what was read first */
		assert_int_equal(test_sh(out, sizeof out, "touch -r %s %s.when && dd if=/dev/zero "
		    "of=%s bs=1 count=64 seek=40 conv=notrunc 2>/dev/null && touch -r %s.when %s",
		    key, key, key, key, key), 0);
	}
	assert_int_equal(test_sh(out, sizeof out, "cd %s && %s/scripts/gca-pki issue . cts c9 && "
	    "cp cts-c9.crt %s && cp cts-c9.key %s", dir, test_top(), cert, key), 0);
	assert_int_equal(proto_sig_make(&f, man, strlen(man), &sig, err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "cts", "c9", err, sizeof err), 0);
	assert_int_equal(proto_sig_check(ca, sig, man, strlen(man), "cts", "c1", err, sizeof err), -1);
	free(sig);
	assert_int_equal(unlink(key), 0);
	assert_int_equal(proto_sig_make(&f, man, strlen(man), &sig, err, sizeof err), -1);
	assert_null(sig);
}

/* ---- with real daemons ---- */

static struct test_site site;
static char gcs_ep[64], ep_a[64], ep_r[64];
static int gcs_pid = -1, a_pid = -1, r_pid = -1;
static const char job[] = "grant-job";

struct image {
	char	id[ID_LEN + 1], sha256[65], dir[600];
};
static struct image i1, i2;

static void
hex(const unsigned char *md, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* An image of checkpoint im->id in cts-a's store, one file "data" of len bytes (byte o is
 * pattern(o)), its manifest signed with cts-a's signing key (as the CTS does; image_signer names
 * another identity); im->sha256 is the manifest's. */
static const char *image_signer = "sign-cts-a";

static unsigned char
pattern(uint64_t o, unsigned salt)
{
	return (unsigned char)((o >> 12) ^ o ^ salt);
}

static void
image_write(struct image *im, size_t len, unsigned salt)
{
	struct proto_tls_files t = test_identity(&site, image_signer);
	struct proto_signer a = { t.cert, t.key };
	unsigned char md[32], *buf = malloc(len ? len : 1);
	unsigned mdlen = 0;
	char path[700], dsha[65], man[1024], err[256], *sig = NULL;
	int n;

	for (size_t o = 0; o < len; o++)
		buf[o] = pattern(o, salt);
	snprintf(im->dir, sizeof im->dir, "%s/state-cts-a/images/%s/%s", site.dir, job, im->id);
	assert_int_equal(file_mkdirs(im->dir, 0700), 0);
	snprintf(path, sizeof path, "%s/data", im->dir);
	assert_int_equal(file_write_whole(path, buf, len, 0600), 0);
	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, dsha);
	free(buf);
	n = snprintf(man, sizeof man, "gca-manifest 1\ncheckpoint %s\ngid %s\ncore_service app\n"
	    "parent -\ntime_ms 1\nfile %s %zu data\n", im->id, job, dsha, len);
	snprintf(path, sizeof path, "%s/manifest", im->dir);
	assert_int_equal(file_write_whole(path, man, (size_t)n, 0600), 0);
	EVP_Digest(man, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	hex(md, im->sha256);
	if (proto_sig_make(&a, man, (size_t)n, &sig, err, sizeof err) != 0)
		fail_msg("sign: %s", err);
	snprintf(path, sizeof path, "%s/manifest.sig", im->dir);
	assert_int_equal(file_write_whole(path, sig, strlen(sig), 0600), 0);
	free(sig);
}

static struct proto_sync *
to_gcs(const char *who)
{
	struct proto_sync *s = test_connect(&site, gcs_ep, who, "gcs");

	assert_non_null(s);
	return s;
}

/* checkpoint_log by cts of checkpoint id of gid with the image's sha256; the seq, or 0 with code. */
static uint64_t
record(const char *cts, const char *gid, const char *id, const char *sha256, char *code, char *msg)
{
	char who[64];
	struct msg_checkpoint_log l = { .checkpoint_id = id, .gid = gid,
		.cts = cts, .core_service = "app", .sha256 = sha256, .kind = "external" };
	struct msg_seq_ok *ok = NULL;
	struct proto_sync *s;
	uint64_t seq = 0;

	snprintf(who, sizeof who, "cts-%s", cts);
	s = to_gcs(who);
	if (test_call(s, "checkpoint_log", &l, (void **)&ok, code, msg) == 0)
		seq = ok->seq;
	free(ok);
	proto_sync_close(s);
	return seq;
}

/* image_grant asked by who; the token (to free) or NULL with code and msg; holders if wanted. */
static char *
grant(const char *who, const char *id, const char *target, struct proto_strlist *holders,
	char *code, char *msg)
{
	struct proto_sync *s = to_gcs(who);
	struct msg_image_grant q = { id, target };
	struct msg_image_grant_ok *ok = NULL;
	char *tok = NULL;

	if (test_call(s, "image_grant", &q, (void **)&ok, code, msg) == 0) {
		tok = strdup(ok->grant);
		if (holders != NULL) {
			*holders = ok->holders;
			ok->holders = (struct proto_strlist){ 0 };
		}
		proto_body_free(proto_type_find("image_grant")->reply, ok);
	}
	proto_sync_close(s);
	return tok;
}

static int
fetch(struct proto_sync *h, const char *id, const char *tok, const char *file, char *code,
	char *msg, struct msg_image_fetch_ok **ok)
{
	struct msg_image_fetch q = { id, tok, file, 0, 0 };

	return test_call(h, "image_fetch", &q, (void **)ok, code, msg);
}

/* cts-a, the holder. Under the sanitizers its freed memory is handed back at once (no ASan
 * quarantine), so its peak memory measures what it holds, as without them. */
/* cts-r's cts.conf line: images signed with a TLS key verify if taken before an hour from now */
static const char *
cutoff_line(void)
{
	static char line[64];
	time_t t = time(NULL) + 3600;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(line, sizeof line, "tls_signed_before %Y-%m-%dT%H:%M:%SZ\n", &tm);
	return line;
}

static int
holder_start(char *sock, size_t len)
{
	const char *was = getenv("ASAN_OPTIONS");
	char *keep = was ? strdup(was) : NULL, opts[1024];
	int pid;

	if (getenv("GCA_SAN") != NULL && strcmp(getenv("GCA_SAN"), "1") == 0) {
		snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0", was ? was : "", was ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
	pid = test_cts_start(&site, "cts-a", "app", gcs_ep, NULL, sock, len);
	if (keep != NULL)
		setenv("ASAN_OPTIONS", keep, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(keep);
	return pid;
}

static int
setup_daemons(void **state)
{
	struct msg_cts_register reg = { .name = "cts-b", .endpoint = "127.0.0.1:1",
		.core_service = "app", .migrate = true };
	struct msg_job_bind jb = { job, "cts-a", "1:1", "root", NULL, false };
	char code[32], msg[512], sock[400];
	struct proto_sync *s;
	int up = 0;

	(void)state;
	if (test_site_up(&site) != 0 ||
	    test_pki(&site, "gcs gcs-t cts cts-a cts cts-b cts cts-r") != 0 ||
	    (gcs_pid = test_gcs_start(&site, "gcs-t", "127.0.0.1:0", NULL, gcs_ep,
	    sizeof gcs_ep)) < 0 ||
	    (a_pid = holder_start(sock, sizeof sock)) < 0 ||
	    (r_pid = test_cts_start(&site, "cts-r", "app", gcs_ep, cutoff_line(), sock,
	    sizeof sock)) < 0 ||
	    test_daemon_endpoint(&site, "cts-a", ep_a, sizeof ep_a) != 0 ||
	    test_daemon_endpoint(&site, "cts-r", ep_r, sizeof ep_r) != 0)
		return -1;
	if ((s = test_connect(&site, gcs_ep, "cts-cts-b", "gcs")) == NULL ||
	    test_call(s, "cts_register", &reg, NULL, code, msg) != 0) {
		fprintf(stderr, "cts-b registers: %s %s\n", code, msg);
		return -1;
	}
	/* both daemons registered: in the directory with their endpoints */
	for (int i = 0; i < 200 && up < 2; i++) {
		struct msg_query q = { .what = "cts" };
		struct msg_query_ok *ok = NULL;
		up = 0;
		if (test_call(s, "query", &q, (void **)&ok, NULL, NULL) == 0) {
			for (size_t e = 0; e < ok->entries.n; e++)
				for (size_t a = 0; a < ok->entries.v[e].n; a++)
					up += strcasecmp(ok->entries.v[e].attrs[a].name, "gcaEndpoint") == 0 &&
					    (strcmp(ok->entries.v[e].attrs[a].vals.v[0], ep_a) == 0 ||
					    strcmp(ok->entries.v[e].attrs[a].vals.v[0], ep_r) == 0);
			proto_body_free(proto_type_find("query")->reply, ok);
		}
		if (up < 2)
			usleep(50 * 1000);
	}
	proto_sync_close(s);
	if (up < 2) {
		fprintf(stderr, "cts-a and cts-r did not register\n");
		return -1;
	}
	s = test_connect(&site, gcs_ep, "cts-cts-a", "gcs");
	if (s == NULL || test_call(s, "job_bind", &jb, NULL, code, msg) != 0) {
		fprintf(stderr, "job_bind: %s %s\n", code, msg);
		return -1;
	}
	proto_sync_close(s);
	id_new(i1.id);
	id_new(i2.id);
	image_write(&i1, 1000, 1);
	image_write(&i2, 2000, 2);
	if (record("cts-a", job, i1.id, i1.sha256, code, msg) == 0 ||
	    record("cts-a", job, i2.id, i2.sha256, code, msg) == 0) {
		fprintf(stderr, "checkpoint_log: %s %s\n", code, msg);
		return -1;
	}
	return 0;
}

static int
teardown_daemons(void **state)
{
	int rc = 0;

	(void)state;
	if (r_pid > 0)
		rc |= test_gcs_stop(r_pid);
	if (a_pid > 0)
		rc |= test_gcs_stop(a_pid);
	if (gcs_pid > 0)
		rc |= test_gcs_stop(gcs_pid);
	test_site_down(&site);
	if (rc != 0)
		fprintf(stderr, "a daemon did not stop cleanly\n");
	return rc ? -1 : 0;
}

static void
test_fetch_needs_its_grant(void **state)
{
	char code[32], msg[512], want[600];
	char *g1b = grant("cts-cts-b", i1.id, "cts-b", NULL, code, msg);
	char *g2b = grant("cts-cts-b", i2.id, "cts-b", NULL, code, msg);
	char *g1r = grant("cts-cts-a", i1.id, "cts-r", NULL, code, msg);
	struct proto_sync *h = test_connect(&site, ep_a, "cts-cts-b", "cts");
	struct msg_image_fetch_ok *ok = NULL;
	char *bad;

	(void)state;
	assert_non_null(g1b);
	assert_non_null(g2b);
	assert_non_null(g1r);
	assert_non_null(h);
	/* the right grant: the manifest's bytes */
	assert_int_equal(fetch(h, i1.id, g1b, "manifest", code, msg, &ok), 0);
	assert_true(ok->eof);
	assert_true(ok->data.n > 100 && memcmp(ok->data.p, "gca-manifest 1\n", 15) == 0);
	proto_body_free(proto_type_find("image_fetch")->reply, ok);
	/* no grant */
	assert_int_equal(fetch(h, i1.id, "", "manifest", code, msg, NULL), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_non_null(strstr(msg, "not a grant"));
	/* a grant for another checkpoint */
	assert_int_equal(fetch(h, i1.id, g2b, "data", code, msg, NULL), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	snprintf(want, sizeof want, "the grant is for checkpoint %s and CTS cts-b, not %s and cts-b",
	    i2.id, i1.id);
	assert_string_equal(msg, want);
	/* a grant for another target CTS (the replica's), shown by cts-b */
	assert_int_equal(fetch(h, i1.id, g1r, "data", code, msg, NULL), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	snprintf(want, sizeof want, "the grant is for checkpoint %s and CTS cts-r, not %s and cts-b",
	    i1.id, i1.id);
	assert_string_equal(msg, want);
	/* an altered one */
	bad = strdup(g1b);
	bad[20] = bad[20] == 'A' ? 'B' : 'A';
	assert_int_equal(fetch(h, i1.id, bad, "data", code, msg, NULL), -1);
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	free(bad);
	/* refusals leave the connection usable: the right grant still works */
	assert_int_equal(fetch(h, i1.id, g1b, "data", code, msg, &ok), 0);
	assert_int_equal(ok->data.n, 1000);
	assert_int_equal(((unsigned char *)ok->data.p)[999], pattern(999, 1));
	proto_body_free(proto_type_find("image_fetch")->reply, ok);
	proto_sync_close(h);
	free(g1b);
	free(g2b);
	free(g1r);
}

static void
test_grant_refusals(void **state)
{
	char code[32], msg[512], none[ID_LEN + 1];
	struct msg_image_location gone = { i2.id, job, "cts-a", true, true };
	struct proto_sync *a = to_gcs("cts-cts-a");

	(void)state;
	/* cts-b holds nothing: it asks only for itself */
	assert_null(grant("cts-cts-b", i1.id, "cts-r", NULL, code, msg));
	assert_string_equal(code, PROTO_E_FORBIDDEN);
	assert_non_null(strstr(msg, "CTS cts-b may ask a grant only for itself or for a copy of an "
	    "image it holds"));
	/* an expired record (retention at its taker) */
	assert_int_equal(test_call(a, "image_location", &gone, NULL, code, msg), 0);
	proto_sync_close(a);
	assert_null(grant("cts-cts-b", i2.id, "cts-b", NULL, code, msg));
	assert_string_equal(code, PROTO_E_NOT_FOUND);
	assert_non_null(strstr(msg, "has expired"));
	/* no such record */
	id_new(none);
	assert_null(grant("cts-cts-b", none, "cts-b", NULL, code, msg));
	assert_string_equal(code, PROTO_E_NOT_FOUND);
}

/* The record of id lists cts at gcaLocation. */
static bool
located(const char *id, const char *cts)
{
	struct proto_sync *s = to_gcs("cts-cts-b");
	struct msg_query q = { .what = "checkpoints", .gid = job, .limit = 100 };
	struct msg_query_ok *ok = NULL;
	bool here = false, it;

	assert_int_equal(test_call(s, "query", &q, (void **)&ok, NULL, NULL), 0);
	for (size_t e = 0; e < ok->entries.n; e++) {
		const struct proto_entry *pe = &ok->entries.v[e];
		it = false;
		for (size_t a = 0; a < pe->n; a++)
			it |= strcasecmp(pe->attrs[a].name, "gcaCheckpointId") == 0 &&
			    strcmp(pe->attrs[a].vals.v[0], id) == 0;
		for (size_t a = 0; it && a < pe->n; a++)
			for (size_t v = 0; strcasecmp(pe->attrs[a].name, "gcaLocation") == 0 &&
			    v < pe->attrs[a].vals.n; v++)
				here |= strcmp(pe->attrs[a].vals.v[v], cts) == 0;
	}
	proto_body_free(proto_type_find("query")->reply, ok);
	proto_sync_close(s);
	return here;
}

static void
test_replica_checks_the_record(void **state)
{
	struct image good, bad;
	struct proto_strlist holders = { 0 };
	char code[32], msg[512], path[700], *tok;
	struct proto_sync *r;

	(void)state;
	id_new(good.id);
	image_write(&good, 5000, 3);
	assert_true(record("cts-a", job, good.id, good.sha256, code, msg) > 0);
	/* cts-a's store is then changed consistently, and signed again with cts-a's own key: the
	 * sender vouches for it, the record does not */
	bad = good;
	image_write(&bad, 5000, 4);
	tok = grant("cts-cts-a", good.id, "cts-r", &holders, code, msg);
	assert_non_null(tok);
	assert_true(holders.n >= 1);
	r = test_connect(&site, ep_r, "cts-cts-a", "cts");
	assert_non_null(r);
	struct msg_image_replicate q = { good.id, job, bad.sha256, tok, holders };
	assert_int_equal(test_call(r, "image_replicate", &q, NULL, code, msg), -1);
	assert_string_equal(code, PROTO_E_REFUSED);
	assert_non_null(strstr(msg, "the record says"));
	assert_false(located(good.id, "cts-r"));
	snprintf(path, sizeof path, "%s/state-cts-r/images/%s/%s", site.dir, job, good.id);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof path, "%s/state-cts-r/incoming/%s", site.dir, good.id);
	assert_int_equal(access(path, F_OK), -1);	/* nothing of the refused copy is kept */
	/* the store as the record says: the copy is made and recorded */
	image_write(&good, 5000, 3);
	assert_int_equal(test_call(r, "image_replicate", &q, NULL, code, msg), 0);
	assert_true(located(good.id, "cts-r"));
	snprintf(path, sizeof path, "%s/state-cts-r/images/%s/%s/data", site.dir, job, good.id);
	assert_int_equal(access(path, F_OK), 0);
	proto_sync_close(r);
	proto_strlist_free(&holders);
	free(tok);
}

/* The holder's manifest signature: its sign certificate (the CTS today), its TLS certificate for
 * an image taken before tls_signed_before (made before CTSes had signing keys; cts-r's cut-off is
 * an hour from now), never another role's or another CTS's. */
static const struct {
	const char *signer, *refusal;	/* refusal NULL: copied */
	uint64_t    later_ms;		/* the checkpoint id's time moved this far ahead */
} signers[] = {
	{ "sign-cts-a", NULL, 0 },
	{ "cts-cts-a", NULL, 0 },
	{ "cts-cts-a", "accepted only for checkpoints taken before tls_signed_before", 7200000 },
	{ "sign-cts-a", NULL, 7200000 },
	{ "gcs-gcs-t", "not signed by a sign|cts certificate (signed by gcs gcs-t)", 0 },
	{ "sign-cts-r", "not signed by cts-a (signed by cts-r)", 0 },
	{ "cts-cts-b", "not signed by cts-a (signed by cts-b)", 0 },
};

/* id made later by ms: its UUIDv7 time, the first 48 bits, moved ahead */
static void
id_later(char id[ID_LEN + 1], uint64_t ms)
{
	char head[32];
	uint64_t t = id_time_ms(id) + ms;

	snprintf(head, sizeof head, "%08x-%04x", (unsigned)(t >> 16 & 0xffffffffu),
	    (unsigned)(t & 0xffff));
	memcpy(id, head, 13);
}

static void
test_replica_checks_the_signer(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof signers / sizeof signers[0]; i++) {
		struct image im;
		struct proto_strlist holders = { 0 };
		char code[32], msg[512], *tok;
		struct proto_sync *r;

		id_new(im.id);
		id_later(im.id, signers[i].later_ms);
		image_signer = signers[i].signer;
		image_write(&im, 4000, 6);
		image_signer = "sign-cts-a";
		assert_true(record("cts-a", job, im.id, im.sha256, code, msg) > 0);
		tok = grant("cts-cts-a", im.id, "cts-r", &holders, code, msg);
		assert_non_null(tok);
		r = test_connect(&site, ep_r, "cts-cts-a", "cts");
		assert_non_null(r);
		struct msg_image_replicate q = { im.id, job, im.sha256, tok, holders };
		if (signers[i].refusal == NULL) {
			if (test_call(r, "image_replicate", &q, NULL, code, msg) != 0)
				fail_msg("signed by %s: %s %s", signers[i].signer, code, msg);
			assert_true(located(im.id, "cts-r"));
		} else {
			assert_int_equal(test_call(r, "image_replicate", &q, NULL, code, msg), -1);
			if (strstr(msg, signers[i].refusal) == NULL)
				fail_msg("signed by %s: %s %s", signers[i].signer, code, msg);
			assert_false(located(im.id, "cts-r"));
		}
		proto_sync_close(r);
		proto_strlist_free(&holders);
		free(tok);
	}
}

/* A signing certificate is no TLS identity: no CTS or GCS takes it at a handshake (with TLS 1.3
 * the client learns it at its first request, which gets no answer). */
static void
ping_as(const char *endpoint, const char *who, const char *role, int want)
{
	struct proto_sync *s = test_connect(&site, endpoint, who, role);
	char code[32], msg[512];
	void *ok = NULL;

	if (s == NULL) {
		assert_int_equal(want, -1);
		return;
	}
	assert_int_equal(test_call(s, "ping", &(struct msg_empty){ 0 }, &ok, code, msg), want);
	proto_body_free(proto_type_find("ping")->reply, ok);
	proto_sync_close(s);
}

static void
test_sign_certificate_is_no_peer(void **state)
{
	(void)state;
	ping_as(ep_a, "sign-cts-r", "cts", -1);
	ping_as(gcs_ep, "sign-cts-r", "gcs", -1);
	/* the same CTS's TLS identity is taken: the refusal is the certificate's */
	ping_as(ep_a, "cts-cts-r", "cts", 0);
	ping_as(gcs_ep, "cts-cts-r", "gcs", 0);
}

/* A holder list names cts-b at the address where cts-a answers: the replica asks the image of the
 * CTS the list names, not of whoever answers there, so the copy is refused, naming both. */
static void
test_fetch_checks_the_holder_name(void **state)
{
	struct image im;
	struct proto_strlist holders = { 0 };
	char code[32], msg[1024], path[700], h[600], *tok;
	struct proto_sync *r;

	(void)state;
	id_new(im.id);
	image_write(&im, 3000, 5);
	assert_true(record("cts-a", job, im.id, im.sha256, code, msg) > 0);
	tok = grant("cts-cts-a", im.id, "cts-r", NULL, code, msg);
	assert_non_null(tok);
	snprintf(h, sizeof h, "cts-b@%s", ep_a);
	proto_strlist_add(&holders, h);
	r = test_connect(&site, ep_r, "cts-cts-a", "cts");
	assert_non_null(r);
	struct msg_image_replicate q = { im.id, job, im.sha256, tok, holders };
	assert_int_equal(test_call(r, "image_replicate", &q, NULL, code, msg), -1);
	if (strstr(msg, "answers as CTS cts-a, not as the holder cts-b") == NULL)
		fail_msg("%s: %s", code, msg);
	assert_false(located(im.id, "cts-r"));
	snprintf(path, sizeof path, "%s/state-cts-r/images/%s/%s", site.dir, job, im.id);
	assert_int_equal(access(path, F_OK), -1);
	/* the same list with the name that answers there: copied */
	proto_strlist_free(&holders);
	snprintf(h, sizeof h, "cts-a@%s", ep_a);
	proto_strlist_add(&holders, h);
	q.holders = holders;
	if (test_call(r, "image_replicate", &q, NULL, code, msg) != 0)
		fail_msg("%s: %s", code, msg);
	assert_true(located(im.id, "cts-r"));
	proto_sync_close(r);
	proto_strlist_free(&holders);
	free(tok);
}

static long
vm_kb(int pid, const char *what)
{
	char path[64], *buf, *p;
	size_t len;
	long kb = -1;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if (file_read_all(path, &buf, &len, 1 << 16) != 0)
		return -1;
	if ((p = strstr(buf, what)) != NULL)
		kb = strtol(p + strlen(what) + 1, NULL, 10);
	free(buf);
	return kb;
}

/* A fetcher asks for a whole 32 MiB file at once and does not read for a while: the holder stops
 * reading it while its answers wait unsent (its output bound, 4 MiB), so its memory does not grow
 * with the image. */
static void
test_fetch_flow_control(void **state)
{
	enum { CHUNK = 512 * 1024, N = 64 };
	const struct proto_type *pt = proto_type_find("image_fetch");
	struct image big;
	char code[32], msg[512], err[256];
	char *tok;
	struct proto_sync *h;
	long hwm0, hwm1, rss1;
	int sndbuf = 1 << 20;
	uint64_t got = 0;

	(void)state;
	id_new(big.id);
	image_write(&big, (size_t)N * CHUNK, 5);
	assert_true(record("cts-a", job, big.id, big.sha256, code, msg) > 0);
	assert_non_null(tok = grant("cts-cts-b", big.id, "cts-b", NULL, code, msg));
	assert_non_null(h = test_connect(&site, ep_a, "cts-cts-b", "cts"));
	/* room in the kernel for every request, so this side never blocks sending them */
	setsockopt(proto_sync_fd(h), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	hwm0 = vm_kb(a_pid, "VmHWM:");
	for (int k = 0; k < N; k++) {
		struct msg_image_fetch q = { big.id, tok, "data", (uint64_t)k * CHUNK, CHUNK };
		assert_int_equal(proto_sync_send(h, "image_fetch", (uint32_t)k + 1, pt, &q), 0);
	}
	sleep(1);	/* the slow reader: 32 MiB asked, nothing read */
	hwm1 = vm_kb(a_pid, "VmHWM:");
	rss1 = vm_kb(a_pid, "VmRSS:");
	for (int k = 0; k < N; k++) {
		struct proto_msg m;
		const struct msg_image_fetch_ok *ok;

		assert_int_equal(proto_sync_read(h, 30000, pt->reply, &m, err, sizeof err), 0);
		assert_int_equal(m.id, k + 1);
		assert_string_equal(m.type, "ok");
		ok = m.body;
		assert_int_equal(ok->data.n, CHUNK);
		assert_int_equal(((unsigned char *)ok->data.p)[CHUNK - 1],
		    pattern((uint64_t)k * CHUNK + CHUNK - 1, 5));
		got += ok->data.n;
		proto_msg_free(&m);
	}
	assert_int_equal(got, (uint64_t)N * CHUNK);
	print_message("holder while 32 MiB were asked and none read: VmHWM %ld -> %ld KiB, VmRSS "
	    "%ld KiB\n", hwm0, hwm1, rss1);
	assert_true(hwm0 > 0 && hwm1 - hwm0 < 12 * 1024);
	assert_true(vm_kb(a_pid, "VmHWM:") - hwm0 < 12 * 1024);
	proto_sync_close(h);
	free(tok);
}

/* docs/DESIGN.md, "Who may bind a GID": after a recovery elsewhere the old CTS's records are
 * refused, naming the holder; a resend of a record stored before still answers ok with its
 * number. */
static void
test_records_only_from_the_bound_cts(void **state)
{
	const char *gid = "moving-job";
	struct msg_job_bind ja = { gid, "cts-a", "3:3", "root", NULL, false };
	struct msg_job_bind jb = { gid, "cts-b", "4:4", "root", NULL, true };
	char code[32], msg[512], id5[ID_LEN + 1], id6[ID_LEN + 1], id7[ID_LEN + 1];
	struct proto_sync *s;
	uint64_t s5;

	(void)state;
	s = to_gcs("cts-cts-a");
	assert_int_equal(test_call(s, "job_bind", &ja, NULL, code, msg), 0);
	proto_sync_close(s);
	id_new(id5);
	id_new(id6);
	id_new(id7);
	assert_true((s5 = record("cts-a", gid, id5, TEST_IMAGE_SHA256, code, msg)) > 0);
	s = to_gcs("cts-cts-b");
	assert_int_equal(test_call(s, "job_bind", &jb, NULL, code, msg), 0);	/* a recovery */
	proto_sync_close(s);
	assert_int_equal(record("cts-a", gid, id6, TEST_IMAGE_SHA256, code, msg), 0);
	assert_string_equal(code, PROTO_E_MOVED);
	assert_non_null(strstr(msg, "GID moving-job is bound to CTS cts-b, not cts-a"));
	/* the one stored before is still answered; the new holder's next number follows it */
	assert_int_equal(record("cts-a", gid, id5, TEST_IMAGE_SHA256, code, msg), s5);
	assert_int_equal(record("cts-b", gid, id7, TEST_IMAGE_SHA256, code, msg), s5 + 1);
}

static int
setup_all(void **state)
{
	return setup(state) == 0 && setup_daemons(state) == 0 ? 0 : -1;
}

static int
teardown_all(void **state)
{
	return (teardown_daemons(state) | teardown(state)) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_gcs_grant_is_accepted),
		cmocka_unit_test(test_tampered_grants_are_refused),
		cmocka_unit_test(test_manifest_signatures),
		cmocka_unit_test(test_signing_identity_follows_its_files),
		cmocka_unit_test(test_fetch_needs_its_grant),
		cmocka_unit_test(test_grant_refusals),
		cmocka_unit_test(test_replica_checks_the_record),
		cmocka_unit_test(test_fetch_checks_the_holder_name),
		cmocka_unit_test(test_replica_checks_the_signer),
		cmocka_unit_test(test_sign_certificate_is_no_peer),
		cmocka_unit_test(test_fetch_flow_control),
		cmocka_unit_test(test_records_only_from_the_bound_cts),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
