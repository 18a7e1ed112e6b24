/*
 * The blocking client: for gca-ctl, the wrappers and tests. Plain sockets and OpenSSL, one request
 * at a time or sends and reads by hand; every wait is bounded by a timeout.
 */
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"

struct proto_sync {
	int	 fd;
	SSL_CTX	*ctx;
	SSL	*ssl;
	uint32_t next_id;
	int	 timeout_ms;
	bool	 refused;	/* the server refused the connection itself (an err with id 0) */
	bool	 relayed;	/* made by the network process (relay.c): its peer below */
	struct proto_peer relay_peer;
};

static int proto_sync_read_all(struct proto_sync *s, void *buf, size_t len, uint64_t deadline);

/* Through the network process (relay.c): its first frame names the server or says why none. */
static int
proto_sync_relayed(struct proto_sync *s, const char *endpoint, const char *expect_role,
    char *err, size_t errlen)
{
	uint8_t hdr[PROTO_HEADER], payload[4096];
	uint64_t deadline = time_mono_ms() + (uint64_t)s->timeout_ms;
	struct proto_msg m;
	const char *code = NULL;
	long n;
	int rc = -1;

	if ((s->fd = proto_relay_dial(endpoint, expect_role ? expect_role : "cts", NULL, err,
	    errlen)) < 0)
		return -1;
	if (proto_sync_read_all(s, hdr, PROTO_HEADER, deadline) != 0 ||
	    (n = proto_frame_length(hdr, sizeof payload)) < 0 ||
	    proto_sync_read_all(s, payload, (size_t)n, deadline) != 0) {
		snprintf(err, errlen, "%s: no answer from the network process", endpoint);
		return -1;
	}
	if (proto_decode(payload, (size_t)n, NULL, &m, &code, err, errlen) != 0)
		return -1;
	if (strcmp(m.type, "err") == 0) {
		const struct msg_err *e = m.body;
		snprintf(err, errlen, "%s", e && e->msg ? e->msg : "no connection");
	} else if (strcmp(m.type, "net_up") == 0 && ((const struct msg_net *)m.body)->role != NULL &&
	    ((const struct msg_net *)m.body)->name != NULL) {
		const struct msg_net *b = m.body;
		snprintf(s->relay_peer.role, sizeof s->relay_peer.role, "%s", b->role);
		snprintf(s->relay_peer.name, sizeof s->relay_peer.name, "%s", b->name);
		s->relayed = true;
		rc = 0;
	} else
		snprintf(err, errlen, "%s: the network process answered with no net_up", endpoint);
	proto_msg_free(&m);
	return rc;
}

static int
proto_sync_dial(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
	char host[256], port[16];
	const char *colon = strrchr(endpoint, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int fd, rc;

	if (strncmp(endpoint, "unix:", 5) == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(endpoint + 5) >= sizeof sun.sun_path) {
			snprintf(err, errlen, "socket path too long");
			return -1;
		}
		strcpy(sun.sun_path, endpoint + 5);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			snprintf(err, errlen, "cannot connect to %s: %s", endpoint + 5, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	if (colon == NULL || (size_t)(colon - endpoint) >= sizeof host || strlen(colon + 1) >= sizeof port) {
		snprintf(err, errlen, "\"%s\" is not host:port", endpoint);
		return -1;
	}
	memcpy(host, endpoint, (size_t)(colon - endpoint));
	host[colon - endpoint] = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	strcpy(port, colon + 1);
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s: %s", endpoint, gai_strerror(rc));
		return -1;
	}
	/* every address the name has, in order: "localhost" is ::1 first on a stock Debian, and a
	 * server may listen on 127.0.0.1 only */
	fd = -1;
	for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
		if ((fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
			snprintf(err, errlen, "cannot connect to %s: %s", endpoint, strerror(errno));
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		proto_tcp_nodelay(fd);
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			snprintf(err, errlen, "cannot connect to %s: %s", endpoint, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

struct proto_sync *
proto_sync_connect(const char *endpoint, const struct proto_tls_files *tls, const char *expect_role,
    int timeout_ms, char *err, size_t errlen)
{
	struct proto_sync *s = calloc(1, sizeof *s);
	struct proto_peer peer;
	char host[256];
	const char *colon;

	if (s == NULL)
		return NULL;
	s->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	s->fd = -1;
	if (strncmp(endpoint, "unix:", 5) != 0 && proto_relay_on()) {
		if (proto_sync_relayed(s, endpoint, expect_role, err, errlen) != 0)
			goto fail;
		return s;
	}
	if ((s->fd = proto_sync_dial(endpoint, s->timeout_ms, err, errlen)) < 0)
		goto fail;
	if (strncmp(endpoint, "unix:", 5) == 0)
		return s;
	if ((s->ctx = tls_ctx_new(false, tls, err, errlen)) == NULL)
		goto fail;
	colon = strrchr(endpoint, ':');
	snprintf(host, sizeof host, "%.*s", (int)(colon - endpoint), endpoint);
	if ((s->ssl = SSL_new(s->ctx)) == NULL || tls_expect_host(s->ssl, host) != 0 ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		snprintf(err, errlen, "cannot make a TLS session");
		goto fail;
	}
	if (SSL_connect(s->ssl) != 1) {
		unsigned long e = ERR_get_error();
		long v = SSL_get_verify_result(s->ssl);
		char buf[200];
		ERR_error_string_n(e, buf, sizeof buf);
		if (v != X509_V_OK)	/* say why the server's certificate was refused (revoked, ...) */
			snprintf(buf, sizeof buf, "its certificate: %s", X509_verify_cert_error_string(v));
		snprintf(err, errlen, "TLS with %s failed: %s", endpoint, e || v != X509_V_OK ? buf : "closed");
		goto fail;
	}
	if (tls_peer_identity(s->ssl, &peer) != 0 ||
	    (expect_role != NULL && strcmp(peer.role, expect_role) != 0)) {
		snprintf(err, errlen, "%s is not a %s (its certificate says %s %s)", endpoint,
		    expect_role ? expect_role : "gca service", peer.role, peer.name);
		goto fail;
	}
	return s;
fail:
	ERR_clear_error();
	proto_sync_close(s);
	return NULL;
}

int
proto_sync_peer(const struct proto_sync *s, struct proto_peer *peer)
{
	if (s->relayed) {
		*peer = s->relay_peer;
		return 0;
	}
	return s->ssl != NULL ? tls_peer_identity(s->ssl, peer) : -1;
}

struct proto_sync *
proto_sync_from_fd(int fd)
{
	struct proto_sync *s = calloc(1, sizeof *s);

	if (s != NULL) {
		s->fd = fd;
		s->timeout_ms = 30000;
	}
	return s;
}

int
proto_sync_fd(struct proto_sync *s)
{
	return s->fd;
}

static int
proto_sync_write_all(struct proto_sync *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = s->ssl ? SSL_write(s->ssl, p, (int)len) : write(s->fd, p, len);
		if (n <= 0) {
			if (!s->ssl && n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
proto_sync_write_raw(struct proto_sync *s, const void *buf, size_t len)
{
	return proto_sync_write_all(s, buf, len);
}

/* Reads exactly len bytes, waiting at most until deadline (monotonic ms). */
static int
proto_sync_read_all(struct proto_sync *s, void *buf, size_t len, uint64_t deadline)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n;

		if (!(s->ssl && SSL_pending(s->ssl) > 0)) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
			uint64_t now = time_mono_ms();
			int rc;

			if (now >= deadline)
				return -2;
			rc = poll(&pfd, 1, (int)(deadline - now));
			if (rc < 0 && errno == EINTR)
				continue;
			if (rc <= 0)
				return rc == 0 ? -2 : -1;
		}
		n = s->ssl ? SSL_read(s->ssl, p, (int)len) : read(s->fd, p, len);
		if (n <= 0) {
			if (s->ssl && SSL_get_error(s->ssl, (int)n) == SSL_ERROR_WANT_READ)
				continue;
			if (!s->ssl && n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
proto_sync_send(struct proto_sync *s, const char *type, uint32_t id, const struct proto_type *pt,
    const void *body)
{
	uint8_t *frame;
	size_t len;
	int rc;

	if (proto_encode(type, id, pt, body, &frame, &len) != 0)
		return -1;
	rc = proto_sync_write_all(s, frame, len);
	free(frame);
	return rc;
}

int
proto_sync_read(struct proto_sync *s, int timeout_ms, const struct proto_type *reply_pt,
    struct proto_msg *m, char *err, size_t errlen)
{
	uint64_t deadline = time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : s->timeout_ms);
	uint8_t hdr[PROTO_HEADER], *payload;
	const char *code = NULL;
	long n;
	int rc;

	memset(m, 0, sizeof *m);
	if ((rc = proto_sync_read_all(s, hdr, sizeof hdr, deadline)) != 0) {
		snprintf(err, errlen, rc == -2 ? "no answer in time" : "the connection was closed");
		return rc;
	}
	if ((n = proto_frame_length(hdr, PROTO_MAX_FRAME * 2)) < 0) {
		snprintf(err, errlen, "the peer sent a frame too large");
		return -1;
	}
	if ((payload = malloc(n ? (size_t)n : 1)) == NULL)
		return -1;
	if ((rc = proto_sync_read_all(s, payload, (size_t)n, deadline)) != 0) {
		free(payload);
		snprintf(err, errlen, rc == -2 ? "no answer in time" : "the connection was closed");
		return rc;
	}
	rc = proto_decode(payload, (size_t)n, reply_pt, m, &code, err, errlen);
	free(payload);
	return rc;
}

int
proto_sync_call(struct proto_sync *s, const char *type, const struct proto_type *pt,
    const void *body, void **reply, char *code, size_t codelen, char *msg, size_t msglen)
{
	uint32_t id = ++s->next_id;
	struct proto_msg m;
	char err[512];

	*reply = NULL;
	if (proto_sync_send(s, type, id, pt, body) != 0) {
		snprintf(code, codelen, "io");
		snprintf(msg, msglen, "cannot send: the connection was closed");
		return -1;
	}
	for (;;) {
		if (proto_sync_read(s, 0, pt ? pt->reply : NULL, &m, err, sizeof err) != 0) {
			snprintf(code, codelen, "io");
			snprintf(msg, msglen, "%s", err);
			return -1;
		}
		/* id 0: the server refuses the connection itself (a limit), with why */
		if ((m.id == id || m.id == 0) && strcmp(m.type, "err") == 0) {
			const struct msg_err *e = m.body;
			s->refused = s->refused || m.id == 0;
			snprintf(code, codelen, "%s", e && e->code ? e->code : "internal");
			snprintf(msg, msglen, "%s", e && e->msg ? e->msg : "");
			proto_msg_free(&m);
			return -1;
		}
		if (m.id == id && strcmp(m.type, "ok") == 0) {
			*reply = m.body;
			return 0;
		}
		proto_msg_free(&m);	/* a notify or a stale reply: not ours */
	}
}

bool
proto_sync_refused(struct proto_sync *s)
{
	return s->refused;
}

void
proto_sync_set_timeout(struct proto_sync *s, int timeout_ms)
{
	s->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
}

void
proto_sync_close(struct proto_sync *s)
{
	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}
