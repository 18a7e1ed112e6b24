/*
 * TLS contexts and identities. TLS 1.3 only; servers require a client certificate from the site
 * CA; the certificate's OU is the caller's role and its CN the caller's name.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "proto/proto.h"

static void
tls_error(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof buf);
	snprintf(err, errlen, "%s %s: %s", what, file ? file : "", e ? buf : "failed");
	ERR_clear_error();
}

/*
 * Revocation (docs/DEPLOYMENT.md, "Revoking a certificate"): the CRL is the CA file's name with
 * its extension replaced by .crl (pki/ca.crt -> pki/ca.crl), written by `gca-pki revoke`. When it
 * exists every endpoint checks the peer's certificate against it; a daemon's context notices a new
 * CRL within a second (a stat per new connection at most once a second) and loads it without a
 * restart. A CRL that cannot be read is an error at start and, later, keeps the last good one.
 */
struct tls_crl {
	char		*ca, *crl;
	struct stat	 seen;		/* of the CRL when last loaded or tried; st_ino 0: absent */
	uint64_t	 checked_ms;
};

static int tls_crl_index = -1;

static void
tls_crl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct tls_crl *t = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (t != NULL) {
		free(t->ca);
		free(t->crl);
		free(t);
	}
}

/* pki/ca.crt -> pki/ca.crl; a name without an extension gets .crl appended. */
char *
tls_crl_path(const char *ca)
{
	const char *slash = strrchr(ca, '/'), *dot = strrchr(ca, '.');
	size_t keep = dot != NULL && (slash == NULL || dot > slash) ? (size_t)(dot - ca) : strlen(ca);
	char *p = malloc(keep + 5);

	if (p != NULL) {
		memcpy(p, ca, keep);
		memcpy(p + keep, ".crl", 5);
	}
	return p;
}

static bool
tls_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A store of the CA and, when present, its CRL, checked for the peer's certificate. */
static X509_STORE *
tls_store_new(const struct tls_crl *t, bool with_crl, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();

	if (store == NULL || X509_STORE_load_file(store, t->ca) != 1) {
		tls_error(err, errlen, "cannot load the site CA", t->ca);
		X509_STORE_free(store);
		return NULL;
	}
	if (with_crl) {
		if (X509_STORE_load_file(store, t->crl) != 1) {
			tls_error(err, errlen, "cannot load the CRL", t->crl);
			X509_STORE_free(store);
			return NULL;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	return store;
}

/* Loads the CA (and its CRL if there is one) into ctx; 0, or -1 with err. */
static int
tls_crl_load(SSL_CTX *ctx, struct tls_crl *t, char *err, size_t errlen)
{
	struct stat st;
	bool present = stat(t->crl, &st) == 0;
	X509_STORE *store;

	if (!present)
		memset(&st, 0, sizeof st);
	t->seen = st;
	t->checked_ms = time_mono_ms();
	if ((store = tls_store_new(t, present, err, errlen)) == NULL)
		return -1;
	SSL_CTX_set_cert_store(ctx, store);	/* frees the one before */
	return 0;
}

void
tls_ctx_refresh(SSL_CTX *ctx)
{
	struct tls_crl *t = tls_crl_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, tls_crl_index);
	struct stat st;
	uint64_t now = time_mono_ms();
	char err[300];

	if (t == NULL || now - t->checked_ms < 1000)
		return;
	t->checked_ms = now;
	if (stat(t->crl, &st) != 0)
		memset(&st, 0, sizeof st);
	if (tls_same_file(&st, &t->seen))
		return;
	if (tls_crl_load(ctx, t, err, sizeof err) != 0)
		log_error("%s; the revocations known before stay in force", err);
	else
		log_info("%s %s", st.st_ino != 0 ? "revocations read from" : "no CRL any more at", t->crl);
}

/*
 * The store that signatures and grants are checked against (proto/grant.c): the same CA and CRL
 * as the TLS endpoints, read once and again only when a file changed (a stat of each per check,
 * so a revocation counts at once), so a check costs no file reads. Like the endpoints, a CRL that cannot be read later
 * keeps the last good store in force. One store is kept (a daemon has one CA); a caller frees its
 * reference with X509_STORE_free.
 */
static struct {
	struct tls_crl	 t;
	struct stat	 ca_seen;
	X509_STORE	*store;
} tls_check;

X509_STORE *
tls_check_store(const char *ca, char *err, size_t errlen)
{
	struct tls_crl *t = &tls_check.t;
	struct stat ca_st, crl_st;
	X509_STORE *fresh;

	if (t->ca == NULL || strcmp(t->ca, ca) != 0) {
		X509_STORE_free(tls_check.store);
		tls_check.store = NULL;
		free(t->ca);
		free(t->crl);
		t->ca = xstrdup(ca);
		if ((t->crl = tls_crl_path(ca)) == NULL)
			abort();
	}
	if (stat(ca, &ca_st) != 0)
		memset(&ca_st, 0, sizeof ca_st);
	if (stat(t->crl, &crl_st) != 0)
		memset(&crl_st, 0, sizeof crl_st);
	if (tls_check.store != NULL && tls_same_file(&ca_st, &tls_check.ca_seen) &&
	    tls_same_file(&crl_st, &t->seen))
		goto out;
	if ((fresh = tls_store_new(t, crl_st.st_ino != 0, err, errlen)) == NULL) {
		if (tls_check.store == NULL)
			return NULL;
		log_error("%s; signatures are checked with the revocations known before", err);
	} else {
		X509_STORE_free(tls_check.store);
		tls_check.store = fresh;
	}
	tls_check.ca_seen = ca_st;
	t->seen = crl_st;
out:
	X509_STORE_up_ref(tls_check.store);
	return tls_check.store;
}


/* A network process chrooted into root: the CA and CRL it watches are root's copies (the daemon
 * writes them there), named from inside. */
void
tls_ctx_chroot(SSL_CTX *ctx, const char *root)
{
	struct tls_crl *t = tls_crl_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, tls_crl_index);
	size_t n = strlen(root);
	char *ca, *crl;

	if (t == NULL || strncmp(t->ca, root, n) != 0 || t->ca[n] != '/')
		return;
	ca = xstrdup(t->ca + n);
	if ((crl = tls_crl_path(ca)) == NULL) {
		free(ca);
		return;
	}
	free(t->ca);
	free(t->crl);
	t->ca = ca;
	t->crl = crl;
}

/* The site CA and its CRL, watched for changes by tls_ctx_refresh. */
static int
tls_ctx_trust(SSL_CTX *ctx, const char *ca, char *err, size_t errlen)
{
	struct tls_crl *t;

	if (tls_crl_index < 0 &&
	    (tls_crl_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_crl_free)) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((t = calloc(1, sizeof *t)) == NULL || (t->ca = strdup(ca)) == NULL ||
	    (t->crl = tls_crl_path(ca)) == NULL || SSL_CTX_set_ex_data(ctx, tls_crl_index, t) != 1) {
		tls_crl_free(NULL, t, NULL, 0, 0, NULL);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return tls_crl_load(ctx, t, err, errlen);
}

SSL_CTX *
tls_ctx_new(bool server, const struct proto_tls_files *files, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (ctx == NULL) {
		tls_error(err, errlen, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	/* Frames are length-prefixed: a peer that closes without close_notify loses nothing. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	/* An idle connection holds no record buffers (about 34 KiB each): a flood of them, or of
	 * handshakes, does not leave the heap at its high-water mark. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (files == NULL || files->ca == NULL) {
		snprintf(err, errlen, "no site CA given");
		goto fail;
	}
	if (tls_ctx_trust(ctx, files->ca, err, errlen) != 0)
		goto fail;
	if (files->cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, files->cert) != 1) {
			tls_error(err, errlen, "cannot load the certificate", files->cert);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, files->key ? files->key : files->cert,
		    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			tls_error(err, errlen, "cannot load the key", files->key);
			goto fail;
		}
	} else if (server) {
		snprintf(err, errlen, "a server needs its certificate and key");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT :
	    SSL_VERIFY_PEER, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The client checks the server's certificate names the address it dialled (SAN IP or DNS). */
int
tls_expect_host(SSL *ssl, const char *host)
{
	X509_VERIFY_PARAM *p = SSL_get0_param(ssl);

	X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_ip_asc(p, host) == 1)
		return 0;
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

static void
tls_subject_field(X509 *cert, int nid, char *out, size_t outlen)
{
	X509_NAME *n = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(n, nid, -1);
	ASN1_STRING *s;
	unsigned char *utf8 = NULL;
	int len;

	out[0] = '\0';
	if (i < 0 || (s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i))) == NULL)
		return;
	if ((len = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
		return;
	if ((size_t)len < outlen && memchr(utf8, '\0', (size_t)len) == NULL) {
		memcpy(out, utf8, (size_t)len);
		out[len] = '\0';
	}
	OPENSSL_free(utf8);
}

/* Fills role and name from the verified peer certificate; -1 if there is none or no role. */
int
tls_peer_identity(SSL *ssl, struct proto_peer *peer)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);

	memset(peer, 0, sizeof *peer);
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
		X509_free(cert);
		return -1;
	}
	tls_subject_field(cert, NID_organizationalUnitName, peer->role, sizeof peer->role);
	tls_subject_field(cert, NID_commonName, peer->name, sizeof peer->name);
	X509_free(cert);
	if (proto_role_bit(peer->role) == 0 || strcmp(peer->role, "local") == 0 || peer->name[0] == '\0')
		return -1;
	return 0;
}

unsigned
proto_role_bit(const char *role)
{
	static const struct { const char *name; unsigned bit; } roles[] = {
		{ "broker", PROTO_ROLE_BROKER }, { "cts", PROTO_ROLE_CTS }, { "gcs", PROTO_ROLE_GCS },
		{ "admin", PROTO_ROLE_ADMIN }, { "local", PROTO_ROLE_LOCAL },
	};

	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		if (strcmp(role, roles[i].name) == 0)
			return roles[i].bit;
	}
	return 0;
}
