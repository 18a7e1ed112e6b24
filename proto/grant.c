/*
 * Image grants (docs/DESIGN.md, "Who may bind a GID"): the GCS lets one CTS fetch one checkpoint's
 * image for a short time. A grant is a token the GCS signs with its certificate's key and that
 * carries that certificate, so the CTS holding the image checks it alone, with the site CA, without
 * asking any GCS back (any GCS of the site may issue it):
 *
 *   G1.<base64 payload>.<base64 signature>.<base64 DER certificate>
 *   payload: "gca-grant 2\n<checkpoint id>\n<target cts>\n<expires ms>\n<gcs name>\n
 *             <record's gcaImageSha256>\n<record's gcaCTSName>\n<gid>"
 *
 * The record's hash and taker travel in the grant so that a CTS that fetches (a recovery, or a
 * replica asked by the CTS that holds the image) checks the copy against what the directory says,
 * not against what another CTS claims.
 *
 * The signature is ECDSA (or RSA) over sha256 of the payload's bytes. The certificate must chain
 * to the CA and carry OU=gcs.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"

#define GRANT_MAGIC "gca-grant 2"
#define GRANT_LINES 8

static char *
grant_b64(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* Decodes s[0..len) (standard base64 with padding) into a malloc'd buffer. */
static unsigned char *
grant_unb64(const char *s, size_t len, size_t *n)
{
	unsigned char *out;
	int r;

	if (len == 0 || len % 4 != 0 || len > 16384)
		return NULL;
	out = xmalloc(len / 4 * 3 + 1);
	if ((r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len)) < 0) {
		free(out);
		return NULL;
	}
	if (s[len - 1] == '=')
		r--;
	if (s[len - 2] == '=')
		r--;
	*n = (size_t)r;
	return out;
}

static int
grant_payload(const struct proto_grant *g, char *out, size_t len)
{
	int n;

	/* every field but the last (the GID) is one line */
	if (strpbrk(g->checkpoint_id, "\n") || strpbrk(g->target, "\n") || strpbrk(g->gcs, "\n") ||
	    strpbrk(g->sha256, "\n") || strpbrk(g->taker, "\n"))
		return -1;
	n = snprintf(out, len, GRANT_MAGIC "\n%s\n%s\n%llu\n%s\n%s\n%s\n%s", g->checkpoint_id,
	    g->target, (unsigned long long)g->expires_ms, g->gcs, g->sha256, g->taker, g->gid);

	return n < 0 || (size_t)n >= len ? -1 : n;
}

/*
 * This daemon's signing key and certificate (a CTS's sign identity, a GCS's TLS one for grants),
 * read from their files once and again only when one of them (or the paths) changes (a renewed
 * certificate): reading and decoding the PEM files took 2.6 ms
 * against 0.14 ms for the signature itself, most of the CPU a CTS spent on a checkpoint
 * (docs/BENCHMARKS.md). The caller gets references of its own (freed as before); NULL if not.
 */
static struct {
	pthread_mutex_t	 lock;
	char		 key_path[PATH_MAX], cert_path[PATH_MAX];
	struct stat	 key_st, cert_st;
	EVP_PKEY	*key;
	X509		*cert;
} grant_identity = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool
grant_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void
grant_read_identity(const char *keyp, const char *certp, EVP_PKEY **key, X509 **cert)
{
	FILE *f;

	if ((f = fopen(keyp, "r")) != NULL) {
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(certp, "r")) != NULL) {
		*cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
}

static void
grant_load_identity(const char *keyp, const char *certp, EVP_PKEY **key, X509 **cert)
{
	struct stat ks, cs;
	EVP_PKEY *k = NULL;
	X509 *c = NULL;

	*key = NULL;
	*cert = NULL;
	if (stat(keyp, &ks) != 0 || stat(certp, &cs) != 0)
		return;
	pthread_mutex_lock(&grant_identity.lock);
	if (grant_identity.key == NULL || strcmp(grant_identity.key_path, keyp) != 0 ||
	    strcmp(grant_identity.cert_path, certp) != 0 ||
	    !grant_same_file(&grant_identity.key_st, &ks) ||
	    !grant_same_file(&grant_identity.cert_st, &cs)) {
		grant_read_identity(keyp, certp, &k, &c);
		if (k != NULL && c != NULL && strlen(keyp) < PATH_MAX && strlen(certp) < PATH_MAX) {
			EVP_PKEY_free(grant_identity.key);
			X509_free(grant_identity.cert);
			grant_identity.key = k;
			grant_identity.cert = c;
			snprintf(grant_identity.key_path, PATH_MAX, "%s", keyp);
			snprintf(grant_identity.cert_path, PATH_MAX, "%s", certp);
			grant_identity.key_st = ks;
			grant_identity.cert_st = cs;
		} else {
			EVP_PKEY_free(k);
			X509_free(c);
			pthread_mutex_unlock(&grant_identity.lock);
			return;		/* unreadable now: never sign with what it was before */
		}
	}
	if (EVP_PKEY_up_ref(grant_identity.key) == 1)
		*key = grant_identity.key;
	if (X509_up_ref(grant_identity.cert) == 1)
		*cert = grant_identity.cert;
	pthread_mutex_unlock(&grant_identity.lock);
}

int
proto_grant_sign(const struct proto_tls_files *tls, const struct proto_grant *g, char **token,
	char *err, size_t errlen)
{
	char payload[2048];
	unsigned char sig[1024], *der = NULL;
	size_t siglen = sizeof sig;
	int plen, derlen;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	EVP_MD_CTX *md = NULL;
	char *a = NULL, *b = NULL, *c = NULL;
	int rc = -1;

	*token = NULL;
	if ((plen = grant_payload(g, payload, sizeof payload)) < 0) {
		snprintf(err, errlen, "grant fields too long");
		return -1;
	}
	grant_load_identity(tls->key, tls->cert, &key, &cert);
	if (key == NULL || cert == NULL) {
		snprintf(err, errlen, "cannot read the key %s or the certificate %s to sign a grant",
		    tls->key, tls->cert);
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)payload, (size_t)plen) != 1 ||
	    (derlen = i2d_X509(cert, &der)) <= 0) {
		snprintf(err, errlen, "cannot sign a grant with %s", tls->key);
		goto out;
	}
	a = grant_b64((unsigned char *)payload, (size_t)plen);
	b = grant_b64(sig, siglen);
	c = grant_b64(der, (size_t)derlen);
	xasprintf(token, "G1.%s.%s.%s", a, b, c);
	rc = 0;
out:
	free(a);
	free(b);
	free(c);
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

/* Splits the payload's lines into g. */
static int
grant_parse(const char *p, size_t n, struct proto_grant *g)
{
	char buf[2048], *line[GRANT_LINES], *s, *nl;
	unsigned long long exp;
	char *end;

	if (n >= sizeof buf || memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	s = buf;
	for (int i = 0; i < GRANT_LINES; i++) {
		line[i] = s;
		nl = strchr(s, '\n');
		if (i < GRANT_LINES - 1) {
			if (nl == NULL)
				return -1;
			*nl = '\0';
			s = nl + 1;
		} else if (nl != NULL) {
			return -1;
		}
	}
	if (strcmp(line[0], GRANT_MAGIC) != 0)
		return -1;
	exp = strtoull(line[3], &end, 10);
	if (*end != '\0' || end == line[3])
		return -1;
	if (snprintf(g->checkpoint_id, sizeof g->checkpoint_id, "%s", line[1]) >=
	    (int)sizeof g->checkpoint_id ||
	    snprintf(g->target, sizeof g->target, "%s", line[2]) >= (int)sizeof g->target ||
	    snprintf(g->gcs, sizeof g->gcs, "%s", line[4]) >= (int)sizeof g->gcs ||
	    snprintf(g->sha256, sizeof g->sha256, "%s", line[5]) >= (int)sizeof g->sha256 ||
	    snprintf(g->taker, sizeof g->taker, "%s", line[6]) >= (int)sizeof g->taker ||
	    snprintf(g->gid, sizeof g->gid, "%s", line[7]) >= (int)sizeof g->gid)
		return -1;
	g->expires_ms = exp;
	return 0;
}

static bool
grant_subject_is(X509 *cert, int nid, const char *want)
{
	X509_NAME *n = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(n, nid, -1);
	ASN1_STRING *d;

	if (i < 0 || (d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i))) == NULL)
		return false;
	return (size_t)ASN1_STRING_length(d) == strlen(want) &&
	    memcmp(ASN1_STRING_get0_data(d), want, strlen(want)) == 0;
}

/* Whether cert's OU is one of roles ("sign|cts": either). */
static bool
grant_role_in(X509 *cert, const char *roles)
{
	char one[32];
	size_t n;

	for (const char *p = roles; *p != '\0'; p += n + (p[n] == '|')) {
		n = strcspn(p, "|");
		if (n < sizeof one) {
			memcpy(one, p, n);
			one[n] = '\0';
			if (grant_subject_is(cert, NID_organizationalUnitName, one))
				return true;
		}
	}
	return false;
}

/* The certificate chains to the CA in ca_file, has OU role (or one of "a|b") and, if name != NULL,
 * CN name. */
static int
grant_check_cert(const char *ca_file, X509 *cert, const char *role, const char *name, char *err,
	size_t errlen)
{
	X509_STORE *store = tls_check_store(ca_file, err, errlen);	/* a revoked signer signs nothing */
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	if (store == NULL || ctx == NULL) {
		if (store != NULL)
			snprintf(err, errlen, "out of memory checking a signature");
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, store, cert, NULL) != 1 || X509_verify_cert(ctx) != 1) {
		snprintf(err, errlen, "the signer's certificate is not one of the site CA's (%s)",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (!grant_role_in(cert, role)) {
		char ou[64] = "", cn[128] = "";

		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationalUnitName, ou,
		    sizeof ou);
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
		snprintf(err, errlen, "not signed by a %s certificate (signed by %s %s)",
		    strcmp(role, "gcs") == 0 ? "GCS" : role, ou[0] ? ou : "no role", cn);
		goto out;
	}
	if (name != NULL && !grant_subject_is(cert, NID_commonName, name)) {
		char cn[128] = "";

		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
		snprintf(err, errlen, "not signed by %s (signed by %s)", name, cn);
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

int
proto_grant_verify(const char *ca_file, const char *token, uint64_t now_ms, struct proto_grant *g,
	char *err, size_t errlen)
{
	const char *p[3], *dot1, *dot2;
	size_t len[3], n[3] = { 0 };
	unsigned char *bin[3] = { NULL };
	const unsigned char *dp;
	X509 *cert = NULL;
	EVP_MD_CTX *md = NULL;
	int rc = -1;

	memset(g, 0, sizeof *g);
	if (strncmp(token, "G1.", 3) != 0 || (dot1 = strchr(token + 3, '.')) == NULL ||
	    (dot2 = strchr(dot1 + 1, '.')) == NULL) {
		snprintf(err, errlen, "not a grant token");
		return -1;
	}
	p[0] = token + 3, len[0] = (size_t)(dot1 - p[0]);
	p[1] = dot1 + 1, len[1] = (size_t)(dot2 - p[1]);
	p[2] = dot2 + 1, len[2] = strlen(p[2]);
	for (int i = 0; i < 3; i++) {
		if ((bin[i] = grant_unb64(p[i], len[i], &n[i])) == NULL) {
			snprintf(err, errlen, "not a grant token (bad base64)");
			goto out;
		}
	}
	if (grant_parse((char *)bin[0], n[0], g) != 0) {
		snprintf(err, errlen, "not a grant token (bad payload)");
		goto out;
	}
	dp = bin[2];
	if ((cert = d2i_X509(NULL, &dp, (long)n[2])) == NULL) {
		snprintf(err, errlen, "not a grant token (bad certificate)");
		goto out;
	}
	/* the name in the payload is for the logs; the role is what counts */
	if (grant_check_cert(ca_file, cert, "gcs", NULL, err, errlen) != 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) != 1 ||
	    EVP_DigestVerify(md, bin[1], n[1], bin[0], n[0]) != 1) {
		snprintf(err, errlen, "the grant's signature does not match (altered?)");
		goto out;
	}
	if (g->expires_ms <= now_ms) {
		snprintf(err, errlen, "the grant for checkpoint %s expired", g->checkpoint_id);
		goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < 3; i++)
		free(bin[i]);
	EVP_MD_CTX_free(md);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

/* ---- detached signatures of other bytes (an image's manifest): S1.<b64 sig>.<b64 DER cert> ---- */

int
proto_sig_make(const struct proto_signer *s, const void *data, size_t len, char **token,
	char *err, size_t errlen)
{
	unsigned char sig[1024], *der = NULL;
	size_t siglen = sizeof sig;
	int derlen, rc = -1;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	EVP_MD_CTX *md = NULL;
	char *a = NULL, *b = NULL;

	*token = NULL;
	grant_load_identity(s->key, s->cert, &key, &cert);
	if (key == NULL || cert == NULL || (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, data, len) != 1 || (derlen = i2d_X509(cert, &der)) <= 0) {
		snprintf(err, errlen, "cannot sign with %s and %s", s->key, s->cert);
		goto out;
	}
	a = grant_b64(sig, siglen);
	b = grant_b64(der, (size_t)derlen);
	xasprintf(token, "S1.%s.%s\n", a, b);
	rc = 0;
out:
	free(a);
	free(b);
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

int
proto_sig_prepare(const struct proto_signer *s)
{
	EVP_PKEY *key;
	X509 *cert;
	int rc;

	grant_load_identity(s->key, s->cert, &key, &cert);
	rc = key != NULL && cert != NULL ? 0 : -1;
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

int
proto_sig_check(const char *ca_file, const char *token, const void *data, size_t len,
	const char *role, const char *name, char *err, size_t errlen)
{
	const char *dot;
	size_t tlen = strcspn(token, "\n"), n[2] = { 0 };
	unsigned char *bin[2] = { NULL };
	const unsigned char *dp;
	X509 *cert = NULL;
	EVP_MD_CTX *md = NULL;
	int rc = -1;

	if (strncmp(token, "S1.", 3) != 0 || (dot = memchr(token + 3, '.', tlen - 3)) == NULL ||
	    (bin[0] = grant_unb64(token + 3, (size_t)(dot - token - 3), &n[0])) == NULL ||
	    (bin[1] = grant_unb64(dot + 1, tlen - (size_t)(dot + 1 - token), &n[1])) == NULL) {
		snprintf(err, errlen, "not a signature");
		goto out;
	}
	dp = bin[1];
	if ((cert = d2i_X509(NULL, &dp, (long)n[1])) == NULL) {
		snprintf(err, errlen, "not a signature (bad certificate)");
		goto out;
	}
	if (grant_check_cert(ca_file, cert, role, name, err, errlen) != 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) != 1 ||
	    EVP_DigestVerify(md, bin[0], n[0], data, len) != 1) {
		snprintf(err, errlen, "the signature does not match (altered?)");
		goto out;
	}
	rc = 0;
out:
	free(bin[0]);
	free(bin[1]);
	EVP_MD_CTX_free(md);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}
