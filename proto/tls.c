/*
 * TLS contexts and identities. TLS 1.3 only; servers require a client certificate from the site
 * CA; the certificate's OU is the caller's role and its CN the caller's name.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

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
	if (SSL_CTX_load_verify_locations(ctx, files->ca, NULL) != 1) {
		tls_error(err, errlen, "cannot load the site CA", files->ca);
		goto fail;
	}
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
