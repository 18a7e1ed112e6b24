/*
 * The async client on a daemon's loop (GCS -> CTS, CTS -> GCS). It connects when first asked,
 * queues requests while connecting, matches replies by id, times every request out, and fails
 * every pending request when the connection drops; the next request connects again.
 *
 * A pooled connection (idle_close_ms) is closed by the client once nothing was pending for that
 * long: the client closes first, so a server's idle timeout never cuts it under a request. A
 * connection that closes before its handshake completed carried no request to the server: its
 * requests are sent again, once, on a fresh connection instead of failing.
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"

struct proto_pending {
	uint32_t		 id;
	const struct proto_type	*reply_pt;
	proto_reply_cb		 cb;
	void			*arg;
	uint8_t			*frame;		/* a copy, to send again (see above) */
	size_t			 len;
	bool			 resent;
	struct event		*timer;
	struct proto_client	*client;
	struct proto_pending	*next;
};

struct proto_client {
	struct event_base		*base;
	SSL_CTX				*ctx;
	struct proto_client_config	 cfg;
	char				*endpoint, *host;
	struct proto_conn		*conn;
	bool				 up;
	uint32_t			 next_id;
	struct proto_pending		*pending;
	struct event			*idle;		/* idle_close_ms */
	uint64_t			 last_ms;	/* a request or a frame, monotonic */
};

static void
proto_client_idle_arm(struct proto_client *c, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (c->idle != NULL)
		evtimer_add(c->idle, &tv);
}

/* Armed while connected; closes the connection once nothing was pending for idle_close_ms. */
static void
proto_client_on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct proto_client *c = arg;
	struct proto_conn *conn = c->conn;
	uint64_t quiet = time_mono_ms() - c->last_ms;

	(void)fd;
	(void)what;
	if (conn == NULL)
		return;
	if (c->pending != NULL || quiet < (uint64_t)c->cfg.idle_close_ms) {
		proto_client_idle_arm(c, c->pending != NULL ? c->cfg.idle_close_ms :
		    c->cfg.idle_close_ms - (int)quiet);
		return;
	}
	log_debug("%s: closing the pooled connection, idle for %d ms", c->endpoint,
	    c->cfg.idle_close_ms);
	c->conn = NULL;
	c->up = false;
	proto_conn_kill(conn);
	proto_conn_unref(conn);
}

static struct proto_pending *
proto_client_take(struct proto_client *c, uint32_t id)
{
	for (struct proto_pending **pp = &c->pending; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct proto_pending *p = *pp;
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static void
proto_client_finish(struct proto_pending *p, const char *code, const char *msg, const void *body)
{
	if (p->timer != NULL)
		event_free(p->timer);
	free(p->frame);
	p->cb(code, msg, body, p->arg);
	free(p);
}

static void
proto_client_fail_all(struct proto_client *c, const char *code, const char *why)
{
	while (c->pending != NULL) {
		struct proto_pending *p = c->pending;
		c->pending = p->next;
		proto_client_finish(p, code, why, NULL);
	}
}

static const struct proto_type *
proto_client_reply_type(uint32_t id, void *arg)
{
	struct proto_client *c = arg;

	for (struct proto_pending *p = c->pending; p != NULL; p = p->next) {
		if (p->id == id)
			return p->reply_pt;
	}
	return NULL;
}

static void
proto_client_on_frame(struct proto_conn *conn, struct proto_msg *m, void *arg)
{
	struct proto_client *c = arg;
	struct proto_pending *p;

	(void)conn;
	c->last_ms = time_mono_ms();
	if (strcmp(m->type, "ok") != 0 && strcmp(m->type, "err") != 0) {
		if (c->cfg.on_frame != NULL)
			c->cfg.on_frame(m, c->cfg.arg);
		return;
	}
	if ((p = proto_client_take(c, m->id)) == NULL)
		return;		/* timed out already */
	if (strcmp(m->type, "err") == 0) {
		const struct msg_err *e = m->body;
		proto_client_finish(p, e && e->code ? e->code : PROTO_E_INTERNAL,
		    e && e->msg ? e->msg : "", NULL);
	} else {
		proto_client_finish(p, NULL, NULL, m->body);
	}
}

static void
proto_client_on_up(struct proto_conn *conn, void *arg)
{
	struct proto_client *c = arg;

	(void)conn;
	c->up = true;
	if (c->cfg.on_state != NULL)
		c->cfg.on_state(true, NULL, c->cfg.arg);
}

static int proto_client_connect(struct proto_client *c, char *err, size_t errlen);

/* The connection closed before its handshake completed: nothing reached the server's dispatch
 * (it reads nothing before the peer is known), so what was pending goes once more on a fresh
 * connection; 0 if it went. */
static int
proto_client_resend(struct proto_client *c)
{
	char err[256];

	for (struct proto_pending *p = c->pending; p != NULL; p = p->next) {
		if (p->resent || p->frame == NULL)
			return -1;
	}
	if (c->pending == NULL || proto_client_connect(c, err, sizeof err) != 0)
		return -1;
	for (struct proto_pending *p = c->pending; p != NULL; p = p->next) {
		uint8_t *copy = xmalloc(p->len);

		p->resent = true;
		memcpy(copy, p->frame, p->len);
		proto_conn_send_raw(c->conn, copy, p->len);
	}
	log_debug("%s: the connection closed in its handshake; its requests sent again", c->endpoint);
	return 0;
}

static void
proto_client_on_close(struct proto_conn *conn, const char *why, void *arg)
{
	struct proto_client *c = arg;
	char msg[512];
	bool was_up = c->up;

	if (c->conn != conn)
		return;
	snprintf(msg, sizeof msg, "%s: %s", c->endpoint, why);
	c->conn = NULL;
	c->up = false;
	proto_conn_unref(conn);
	if (!was_up && proto_client_resend(c) == 0)
		return;
	proto_client_fail_all(c, PROTO_E_UNAVAILABLE, msg);
	if (c->cfg.on_state != NULL)
		c->cfg.on_state(false, msg, c->cfg.arg);
}

/* Through the network process (relay.c): it connects and checks the server; the connection is
 * up at its net_up frame. */
static int
proto_client_connect_relayed(struct proto_client *c, struct proto_conn_ops *ops, char *err,
    size_t errlen)
{
	struct bufferevent *bev;
	int fd;

	if ((fd = proto_relay_dial(c->endpoint, c->cfg.expect_role, c->cfg.expect_name, err,
	    errlen)) < 0)
		return -1;
	evutil_make_socket_nonblocking(fd);
	if ((bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot make a connection");
		return -1;
	}
	ops->tls = false;
	ops->relayed = true;
	if ((c->conn = proto_conn_new(c->base, bev, ops, NULL)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	proto_conn_ref(c->conn);	/* ours, dropped in on_close */
	c->last_ms = time_mono_ms();
	proto_client_idle_arm(c, c->cfg.idle_close_ms);
	return 0;
}

static int
proto_client_connect(struct proto_client *c, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	SSL *ssl;
	struct bufferevent *bev;
	struct proto_conn_ops ops = {
		.handlers = c->cfg.handlers, .nhandlers = c->cfg.nhandlers, .ctx = c->cfg.ctx,
		.max_frame = c->cfg.max_frame, .on_frame = proto_client_on_frame,
		.reply_type = proto_client_reply_type, .on_up = proto_client_on_up,
		.on_close = proto_client_on_close, .arg = c, .tls = true,
		.expect_role = c->cfg.expect_role, .expect_name = c->cfg.expect_name,
	};

	if (proto_relay_on())
		return proto_client_connect_relayed(c, &ops, err, errlen);
	if (evutil_parse_sockaddr_port(c->endpoint, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "\"%s\" is not address:port", c->endpoint);
		return -1;
	}
	tls_ctx_refresh(c->ctx);
	if ((ssl = SSL_new(c->ctx)) == NULL || tls_expect_host(ssl, c->host) != 0) {
		SSL_free(ssl);
		snprintf(err, errlen, "cannot make a TLS session");
		return -1;
	}
	bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		snprintf(err, errlen, "cannot make a connection");
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if ((c->conn = proto_conn_new(c->base, bev, &ops, NULL)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	proto_conn_ref(c->conn);	/* ours, dropped in on_close */
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sslen) != 0) {
		snprintf(err, errlen, "cannot connect to %s", c->endpoint);
		proto_conn_kill(c->conn);
		proto_conn_unref(c->conn);
		c->conn = NULL;
		return -1;
	}
	proto_tcp_nodelay(bufferevent_getfd(bev));
	c->last_ms = time_mono_ms();
	proto_client_idle_arm(c, c->cfg.idle_close_ms);
	return 0;
}

static void
proto_client_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proto_pending *p = arg;
	struct proto_client *c = p->client;
	char msg[300];

	(void)fd;
	(void)what;
	p = proto_client_take(c, p->id);
	snprintf(msg, sizeof msg, "no answer from %s within %d ms", c->endpoint, c->cfg.timeout_ms);
	if (p != NULL)
		proto_client_finish(p, PROTO_E_TIMEOUT, msg, NULL);
}

void
proto_client_request(struct proto_client *c, const char *type, const struct proto_type *pt,
    const void *body, proto_reply_cb cb, void *arg)
{
	struct proto_pending *p = xcalloc(1, sizeof *p);
	struct timeval tv = { c->cfg.timeout_ms / 1000, (c->cfg.timeout_ms % 1000) * 1000 };
	char err[256];

	p->id = ++c->next_id ? c->next_id : ++c->next_id;
	p->reply_pt = pt ? pt->reply : NULL;
	p->cb = cb;
	p->arg = arg;
	p->client = c;
	if (proto_encode(type, p->id, pt, body, &p->frame, &p->len) != 0) {
		proto_client_finish(p, PROTO_E_INTERNAL, "cannot encode the request", NULL);
		return;
	}
	p->timer = evtimer_new(c->base, proto_client_on_timeout, p);
	evtimer_add(p->timer, &tv);
	p->next = c->pending;
	c->pending = p;
	if (c->conn == NULL && proto_client_connect(c, err, sizeof err) != 0) {
		proto_client_take(c, p->id);
		proto_client_finish(p, PROTO_E_UNAVAILABLE, err, NULL);
		return;
	}
	/* Written now: the TLS bufferevent keeps it until the handshake is done. p->frame stays
	 * for proto_client_resend while the handshake is not done. */
	c->last_ms = time_mono_ms();
	if (!c->up) {
		uint8_t *copy = xmalloc(p->len);
		memcpy(copy, p->frame, p->len);
		proto_conn_send_raw(c->conn, copy, p->len);
		return;
	}
	proto_conn_send_raw(c->conn, p->frame, p->len);
	p->frame = NULL;
}

bool
proto_client_up(struct proto_client *c)
{
	return c->up;
}

struct proto_client *
proto_client_new(struct event_base *base, const struct proto_tls_files *tls,
    const struct proto_client_config *cfg, char *err, size_t errlen)
{
	struct proto_client *c = calloc(1, sizeof *c);
	const char *colon;

	if (c == NULL)
		return NULL;
	c->base = base;
	c->cfg = *cfg;
	if (c->cfg.timeout_ms <= 0)
		c->cfg.timeout_ms = 30000;
	c->endpoint = xstrdup(cfg->endpoint);
	colon = strrchr(cfg->endpoint, ':');
	c->host = xstrndup(cfg->endpoint,
	    colon ? (size_t)(colon - cfg->endpoint) : strlen(cfg->endpoint));
	if (c->host[0] == '[') {
		memmove(c->host, c->host + 1, strlen(c->host));
		c->host[strcspn(c->host, "]")] = '\0';
	}
	c->cfg.endpoint = c->endpoint;
	if (c->cfg.idle_close_ms > 0)
		c->idle = evtimer_new(base, proto_client_on_idle, c);
	if ((c->ctx = tls_ctx_new(false, tls, err, errlen)) == NULL) {
		if (c->idle != NULL)
			event_free(c->idle);
		free(c->endpoint);
		free(c->host);
		free(c);
		return NULL;
	}
	return c;
}

void
proto_client_free(struct proto_client *c)
{
	if (c == NULL)
		return;
	if (c->conn != NULL) {
		struct proto_conn *conn = c->conn;
		c->conn = NULL;
		proto_conn_kill(conn);
		proto_conn_unref(conn);
	}
	proto_client_fail_all(c, PROTO_E_UNAVAILABLE, "client closed");
	if (c->idle != NULL)
		event_free(c->idle);
	SSL_CTX_free(c->ctx);
	free(c->endpoint);
	free(c->host);
	free(c);
}
