/*
 * One connection: frames in, frames out, dispatch by table. Shared by the TLS server, the unix
 * server and the async client. A connection is reference counted: the transport holds one
 * reference while it is open, every request being handled holds one, so a handler may reply
 * long after the peer went away (the reply is then dropped).
 *
 * Back-pressure: when more than max_output bytes wait to be written to a peer, the connection
 * stops reading from it until the output drains to half; a peer that sends requests but never
 * reads the replies therefore stalls itself, and the server's buffer stays bounded.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"
#include "proto/metrics.h"

struct proto_conn {
	struct event_base	*base;
	struct bufferevent	*bev;
	struct event		*handshake_timer;
	struct proto_conn_ops	 ops;
	struct proto_peer	 peer;
	int			 refs;
	int			 inflight;	/* requests being handled */
	int			 keeps;		/* proto_conn_keep: a job's channel, a subscription */
	char			*refused;	/* why its requests are refused (proto_conn_refuse) */
	bool			 open, up, paused, closing, idle_exempt;
};

static void proto_conn_shut(struct proto_conn *c, const char *why);

void
proto_conn_ref(struct proto_conn *c)
{
	c->refs++;
}

void
proto_conn_unref(struct proto_conn *c)
{
	if (--c->refs > 0)
		return;
	if (c->handshake_timer != NULL)
		event_free(c->handshake_timer);
	free(c->refused);
	free(c);
}

/*
 * A connection a user relies on while it is quiet (a job's bound channel, a subscribe stream):
 * never cut for being idle, and not counted by the per-peer cap (server.c). Counted, so that a
 * channel two jobs share stays kept until both let go.
 */
void
proto_conn_keep(struct proto_conn *c, bool keep)
{
	c->keeps += keep ? 1 : -1;
	if (c->keeps < 0)
		c->keeps = 0;
}

bool
proto_conn_kept(struct proto_conn *c)
{
	return c->keeps > 0;
}

bool
proto_conn_up(struct proto_conn *c)
{
	return c->up;
}

void
proto_conn_idle_exempt(struct proto_conn *c)
{
	c->idle_exempt = true;
}

bool
proto_conn_refused(struct proto_conn *c)
{
	return c->refused != NULL;
}

/* Frames are written whole: Nagle would only hold the last segment of one back (about 40 ms,
 * waiting for a delayed ACK) on every fresh connection. */
void
proto_tcp_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);	/* fails on unix sockets */
}

bool
proto_conn_open(struct proto_conn *c)
{
	return c->open && !c->closing;
}

const struct proto_peer *
proto_conn_peer(struct proto_conn *c)
{
	return &c->peer;
}

size_t
proto_conn_output(struct proto_conn *c)
{
	return c->open ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

int
proto_conn_fd(struct proto_conn *c)
{
	return c->open ? (int)bufferevent_getfd(c->bev) : -1;
}

void
proto_conn_send_raw(struct proto_conn *c, uint8_t *frame, size_t len)
{
	if (proto_conn_open(c)) {
		bufferevent_write(c->bev, frame, len);
		if (!c->paused && evbuffer_get_length(bufferevent_get_output(c->bev)) > c->ops.max_output) {
			c->paused = true;
			bufferevent_disable(c->bev, EV_READ);
		}
	}
	free(frame);
}

int
proto_conn_send(struct proto_conn *c, const char *type, uint32_t id, const struct proto_type *pt,
    const void *body)
{
	uint8_t *frame;
	size_t len;

	if (!proto_conn_open(c) || proto_encode(type, id, pt, body, &frame, &len) != 0)
		return -1;
	proto_conn_send_raw(c, frame, len);
	return 0;
}

static void
proto_conn_send_err(struct proto_conn *c, uint32_t id, const char *code, const char *msg)
{
	uint8_t *frame;
	size_t len;

	if (proto_encode_err(id, code, msg, &frame, &len) == 0)
		proto_conn_send_raw(c, frame, len);
}

static void
proto_req_free(struct proto_req *r)
{
	proto_body_free(r->pt, r->body);
	r->conn->inflight--;
	proto_conn_unref(r->conn);
	free(r);
}

void
proto_reply_ok(struct proto_req *r, const struct proto_type *reply_pt, const void *body)
{
	proto_conn_send(r->conn, "ok", r->id, reply_pt, body);
	proto_req_free(r);
}

void
proto_reply_err(struct proto_req *r, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	proto_conn_send_err(r->conn, r->id, code, msg);
	proto_req_free(r);
}

static bool
proto_conn_serves(struct proto_conn *c, const char *type)
{
	for (size_t i = 0; i < c->ops.nhandlers; i++) {
		if (strcmp(c->ops.handlers[i].type, type) == 0)
			return true;
	}
	return false;
}

static bool
proto_is_reply(const char *type)
{
	return strcmp(type, "ok") == 0 || strcmp(type, "err") == 0;
}

/*
 * A reply sent to a server, which asked nothing: the peer is confused or hostile. It is told why
 * and the connection is closed once that is written. Never answered in kind and left open: two
 * confused peers would trade errors for ever.
 */
static void
proto_conn_stray_reply(struct proto_conn *c, const struct proto_msg *m)
{
	char msg[128];

	log_debug("%s: sent %s to a server; closing", c->peer.name, m->type);
	snprintf(msg, sizeof msg, "%s is a reply, and nothing was asked of you", m->type);
	proto_conn_send_err(c, m->id, PROTO_E_UNKNOWN_TYPE, msg);
	proto_conn_close(c);
}

/* A request: find its entry, check the caller's role, hand it to the handler. */
static void
proto_conn_dispatch(struct proto_conn *c, struct proto_msg *m)
{
	const struct proto_handler *h = NULL;
	struct proto_req *r;

	if (c->refused != NULL) {
		proto_conn_send_err(c, m->id, PROTO_E_BUSY, c->refused);
		proto_conn_close(c);
		return;
	}
	for (size_t i = 0; i < c->ops.nhandlers; i++) {
		if (strcmp(c->ops.handlers[i].type, m->type) == 0)
			h = &c->ops.handlers[i];
	}
	if (h == NULL) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s is not served here", m->type);
		proto_conn_send_err(c, m->id, PROTO_E_UNKNOWN_TYPE, msg);
		return;
	}
	if ((h->roles & proto_role_bit(c->peer.role)) == 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "%s may not send %s", c->peer.role, m->type);
		proto_conn_send_err(c, m->id, PROTO_E_FORBIDDEN, msg);
		return;
	}
	if ((r = calloc(1, sizeof *r)) == NULL) {
		proto_conn_send_err(c, m->id, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	r->conn = c;
	proto_conn_ref(c);
	c->inflight++;
	r->id = m->id;
	r->pt = m->pt;
	r->body = m->body;
	m->body = NULL;
	r->peer = c->peer;
	h->handle(r, c->ops.ctx);
}

static void proto_conn_became_up(struct proto_conn *c);

/*
 * A connection the network process made for us (relay.c): its first frame says who answered
 * (net_up) or why nobody did (err); only then is it up, as a TLS connection after its handshake.
 */
static void
proto_conn_relay_up(struct proto_conn *c, struct evbuffer *in)
{
	uint8_t hdr[PROTO_HEADER], *payload;
	struct proto_msg m;
	const char *code = NULL;
	char err[600];
	long n;

	if (evbuffer_copyout(in, hdr, PROTO_HEADER) < PROTO_HEADER)
		return;
	if ((n = proto_frame_length(hdr, 4096)) < 0) {
		proto_conn_shut(c, "the network process sent a frame too large");
		return;
	}
	if (evbuffer_get_length(in) < PROTO_HEADER + (size_t)n)
		return;
	payload = xmalloc((size_t)n + 1);
	evbuffer_drain(in, PROTO_HEADER);
	evbuffer_remove(in, payload, (size_t)n);
	if (proto_decode(payload, (size_t)n, NULL, &m, &code, err, sizeof err) != 0) {
		free(payload);
		proto_conn_shut(c, err);
		return;
	}
	free(payload);
	if (strcmp(m.type, "err") == 0) {
		const struct msg_err *e = m.body;
		snprintf(err, sizeof err, "%s", e && e->msg ? e->msg : "no connection");
		proto_msg_free(&m);
		proto_conn_shut(c, err);
		return;
	}
	if (strcmp(m.type, "net_up") == 0) {
		const struct msg_net *b = m.body;
		if (b->role != NULL && b->name != NULL) {
			snprintf(c->peer.role, sizeof c->peer.role, "%s", b->role);
			snprintf(c->peer.name, sizeof c->peer.name, "%s", b->name);
			c->peer.local = false;
			proto_msg_free(&m);
			proto_conn_became_up(c);
			return;
		}
	}
	proto_msg_free(&m);
	proto_conn_shut(c, "the network process answered with no net_up");
}

static void
proto_conn_on_read(struct bufferevent *bev, void *arg)
{
	struct proto_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!c->up && c->ops.relayed) {
		/* held: a refusal frees the connection; once up, became_up reads the rest */
		if (c->open) {
			proto_conn_ref(c);
			proto_conn_relay_up(c, in);
			proto_conn_unref(c);
		}
		return;
	}
	if (!c->up)
		return;		/* nothing is read before the peer is known */
	proto_conn_ref(c);
	while (proto_conn_open(c) && !c->paused) {
		uint8_t hdr[PROTO_HEADER], *payload;
		struct proto_msg m;
		const char *code = NULL;
		char err[256];
		long n;

		if (evbuffer_copyout(in, hdr, PROTO_HEADER) < PROTO_HEADER)
			break;
		if ((n = proto_frame_length(hdr, c->ops.max_frame)) < 0) {
			/* Refused before reading it: the stream cannot be resynchronised, so close. */
			snprintf(err, sizeof err, "frame over %zu bytes", c->ops.max_frame);
			proto_conn_send_err(c, 0, PROTO_E_TOO_LARGE, err);
			proto_conn_close(c);
			break;
		}
		if (evbuffer_get_length(in) < PROTO_HEADER + (size_t)n)
			break;
		evbuffer_drain(in, PROTO_HEADER);
		if ((payload = malloc(n ? (size_t)n : 1)) == NULL) {
			proto_conn_shut(c, "out of memory");
			break;
		}
		evbuffer_remove(in, payload, (size_t)n);
		if (proto_decode(payload, (size_t)n, NULL, &m, &code, err, sizeof err) == 0 &&
		    strcmp(m.type, "ok") == 0 && c->ops.reply_type != NULL) {
			/* decode the reply again with the type its request expects */
			const struct proto_type *rt = c->ops.reply_type(m.id, c->ops.arg);
			proto_msg_free(&m);
			proto_decode(payload, (size_t)n, rt, &m, &code, err, sizeof err);
		}
		free(payload);
		if (code != NULL) {
			log_debug("%s: bad frame: %s: %s", c->peer.name, code, err);
			if (c->ops.on_frame != NULL && c->ops.nhandlers == 0) {
				proto_conn_shut(c, err);	/* a client: the server is broken */
				break;
			}
			proto_conn_send_err(c, m.id, code, err);
			proto_msg_free(&m);
			continue;
		}
		if (c->ops.on_frame != NULL && (proto_is_reply(m.type) || !proto_conn_serves(c, m.type)))
			c->ops.on_frame(c, &m, c->ops.arg);	/* a reply, or an unasked frame */
		else if (proto_is_reply(m.type))
			proto_conn_stray_reply(c, &m);
		else
			proto_conn_dispatch(c, &m);
		proto_msg_free(&m);
	}
	proto_conn_unref(c);
}

static void
proto_conn_on_write(struct bufferevent *bev, void *arg)
{
	struct proto_conn *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		proto_conn_shut(c, NULL);
		return;
	}
	if (c->paused && evbuffer_get_length(bufferevent_get_output(bev)) <= c->ops.max_output / 2) {
		c->paused = false;
		bufferevent_enable(bev, EV_READ);
		proto_conn_on_read(bev, c);
	}
}

/* The idle timeout: a read timeout, which the peer's every byte restarts (proto_conn_on_event
 * decides whether an expired one cuts). */
static void
proto_conn_arm_idle(struct proto_conn *c)
{
	int ms = c->ops.idle_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms > 0 && !c->closing)
		bufferevent_set_timeouts(c->bev, &tv, NULL);
}

/*
 * Quiet, but not idle: a connection kept (a job's channel, a subscription), exempt (the GCS's
 * pooled connection at a CTS), or with a request still being handled (a checkpoint may take
 * minutes) is never cut; its timer starts again.
 */
static bool
proto_conn_idle_spared(struct proto_conn *c)
{
	if (c->refused != NULL || c->closing)
		return false;
	if (c->keeps == 0 && !c->idle_exempt && c->inflight == 0)
		return false;
	if (!c->paused)
		bufferevent_enable(c->bev, EV_READ);
	return true;
}

/*
 * Over a limit (server.c: the per-peer cap): every request gets `busy` with why, and so does a
 * peer that only listens (a frame with id 0 now); the connection closes after its first request
 * or a second of silence.
 */
void
proto_conn_refuse(struct proto_conn *c, const char *why)
{
	struct timeval second = { 1, 0 };

	if (!proto_conn_open(c) || c->refused != NULL)
		return;
	c->refused = strdup(why);
	if (c->refused == NULL) {
		proto_conn_shut(c, why);
		return;
	}
	proto_conn_send_err(c, 0, PROTO_E_BUSY, why);
	bufferevent_set_timeouts(c->bev, &second, NULL);
}

static void
proto_conn_became_up(struct proto_conn *c)
{
	if (c->ops.tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		struct proto_peer p;

		if (tls_peer_identity(ssl, &p) != 0) {
			if (c->ops.accepted)
				metrics_tls_refused("no_role");
			proto_conn_shut(c, "the peer's certificate names no known role");
			return;
		}
		if (c->ops.expect_role != NULL && strcmp(p.role, c->ops.expect_role) != 0) {
			char why[300];
			snprintf(why, sizeof why, "the server is %s %s, not a %s", p.role, p.name,
			    c->ops.expect_role);
			proto_conn_shut(c, why);
			return;
		}
		if (c->ops.expect_name != NULL && strcmp(p.name, c->ops.expect_name) != 0) {
			char why[600];
			snprintf(why, sizeof why, "the server is %s, not %s", p.name, c->ops.expect_name);
			proto_conn_shut(c, why);
			return;
		}
		c->peer = p;
	} else if (c->ops.relayed && ((c->ops.expect_role != NULL &&
	    strcmp(c->peer.role, c->ops.expect_role) != 0) || (c->ops.expect_name != NULL &&
	    strcmp(c->peer.name, c->ops.expect_name) != 0))) {
		proto_conn_shut(c, "the network process connected to another server than asked");
		return;
	}
	c->up = true;
	if (c->handshake_timer != NULL)
		event_del(c->handshake_timer);
	proto_conn_arm_idle(c);
	if (c->ops.on_up != NULL)
		c->ops.on_up(c, c->ops.arg);
	if (proto_conn_open(c))
		proto_conn_on_read(c->bev, c);
}

static void
proto_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct proto_conn *c = arg;
	char why[256] = "closed by the peer";

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		proto_conn_became_up(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && proto_conn_idle_spared(c))
		return;
	if ((what & BEV_EVENT_TIMEOUT) && c->refused != NULL)
		snprintf(why, sizeof why, "refused: %s", c->refused);
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof why, "idle for %d ms", c->ops.idle_timeout_ms);
	else if (what & BEV_EVENT_ERROR) {
		unsigned long e = 0;
		int sockerr = EVUTIL_SOCKET_ERROR();

		SSL *ssl = c->ops.tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
		long v = ssl != NULL && !c->up ? SSL_get_verify_result(ssl) : X509_V_OK;

		if (v != X509_V_OK)	/* the peer's certificate: say why (revoked, expired, ...) */
			snprintf(why, sizeof why, "certificate refused: %s", X509_verify_cert_error_string(v));
		else if (c->ops.tls && (e = bufferevent_get_openssl_error(c->bev)) != 0)
			ERR_error_string_n(e, why, sizeof why);
		else if (sockerr != 0)
			snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(sockerr));
		else
			snprintf(why, sizeof why, "connection error");
		if (c->ops.accepted && c->ops.tls && !c->up)
			metrics_tls_refused(v != X509_V_OK ? "certificate" : e != 0 &&
			    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ?
			    "no_certificate" : "tls_error");
	}
	proto_conn_shut(c, why);
}

static void
proto_conn_on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proto_conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->up) {
		if (c->ops.accepted)
			metrics_tls_refused("handshake_timeout");
		proto_conn_shut(c, "no TLS handshake in time");
	}
}

/* Closes now (why != NULL: tell the owner) and drops the transport's reference. */
static void
proto_conn_shut(struct proto_conn *c, const char *why)
{
	if (!c->open)
		return;
	c->open = false;
	if (c->handshake_timer != NULL)
		event_del(c->handshake_timer);
	if (c->ops.tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl != NULL)
			SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->ops.on_close != NULL)
		c->ops.on_close(c, why ? why : "closed", c->ops.arg);
	proto_conn_unref(c);
}

void
proto_conn_kill(struct proto_conn *c)
{
	c->ops.on_close = NULL;
	if (c->open)
		proto_conn_shut(c, NULL);
}

/* Graceful: stop reading, send what is queued, then close. */
void
proto_conn_close(struct proto_conn *c)
{
	if (!proto_conn_open(c))
		return;
	struct timeval drain = { 5, 0 };

	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &drain);	/* a peer that never reads: cut */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		proto_conn_shut(c, NULL);
}

struct proto_conn *
proto_conn_new(struct event_base *base, struct bufferevent *bev, const struct proto_conn_ops *ops,
    const struct proto_peer *peer)
{
	struct proto_conn *c = calloc(1, sizeof *c);

	if (c == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	c->base = base;
	c->bev = bev;
	c->ops = *ops;
	if (c->ops.max_frame == 0)
		c->ops.max_frame = PROTO_MAX_FRAME;
	if (c->ops.max_output == 0)
		c->ops.max_output = 4 * 1024 * 1024;
	if (peer != NULL)
		c->peer = *peer;
	c->refs = 1;
	c->open = true;
	bufferevent_setcb(bev, proto_conn_on_read, proto_conn_on_write, proto_conn_on_event, c);
	bufferevent_setwatermark(bev, EV_WRITE, c->ops.max_output / 2, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (c->ops.tls || c->ops.relayed) {
		struct timeval tv = { 10, 0 };
		if (c->ops.handshake_timeout_ms > 0) {
			tv.tv_sec = c->ops.handshake_timeout_ms / 1000;
			tv.tv_usec = (c->ops.handshake_timeout_ms % 1000) * 1000;
		}
		c->handshake_timer = evtimer_new(base, proto_conn_on_handshake_timeout, c);
		evtimer_add(c->handshake_timer, &tv);
	} else {
		c->up = true;
		proto_conn_arm_idle(c);
	}
	return c;
}
