/*
 * GET /metrics over HTTP with evhttp, behind limits of our own (proto/metrics.h).
 *
 * evhttp (libevent 2.1) has no connection cap. It makes each connection's bufferevent through the
 * callback evhttp_set_bevcb gives it: ours is a pass-through filter over a socket bufferevent,
 * whose free callback says when the connection is gone. So the listener stops accepting at the cap
 * and starts again when one closes; and, made by us, it gets the same EMFILE pause as proto/server.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/common.h"
#include "common/metrics.h"
#include "proto/metrics.h"

#define METRICS_HTTP_PAUSE_MS	250	/* accepting stops this long at EMFILE */

struct metrics_http {
	struct event_base	*base;
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct event		*resume;
	char			 host[256];
	int			 port;
	int			 open;		/* connections evhttp holds */
	bool			 paused;	/* EMFILE: until resume */
	bool			 closing;	/* freed once the last connection's bufferevent is */
	struct log_limit	 log_accept, log_cap;
};

static void
metrics_http_enable(struct metrics_http *m)
{
	if (m->open < METRICS_HTTP_CONNECTIONS && !m->paused && !m->closing)
		evconnlistener_enable(m->listener);
}

/* A connection's bufferevent is freed: evhttp is done with it. */
static void
metrics_http_on_conn_free(void *arg)
{
	struct metrics_http *m = arg;

	m->open--;
	if (m->closing) {
		if (m->open == 0)
			free(m);
		return;
	}
	metrics_http_enable(m);
}

static struct bufferevent *
metrics_http_bev(struct event_base *base, void *arg)
{
	struct metrics_http *m = arg;
	struct bufferevent *sock, *bev;

	if ((sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;
	bev = bufferevent_filter_new(sock, NULL, NULL, BEV_OPT_CLOSE_ON_FREE,
	    metrics_http_on_conn_free, m);
	if (bev == NULL) {
		bufferevent_free(sock);
		return NULL;	/* evhttp makes one itself: uncounted, but that is out of memory */
	}
	if (++m->open >= METRICS_HTTP_CONNECTIONS) {
		log_limited(&m->log_cap, LOG_WARN, "metrics: %d HTTP connections open: not accepting "
		    "more until one closes", m->open);
		evconnlistener_disable(m->listener);
	}
	return bev;
}

static void
metrics_http_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *m = arg;

	(void)fd;
	(void)what;
	m->paused = false;
	metrics_http_enable(m);
}

/* accept() failed (EMFILE, ENFILE, ENOMEM): pause rather than spin, as proto/server.c does. */
static void
metrics_http_on_accept_error(struct evconnlistener *l, void *arg)
{
	struct metrics_http *m = arg;
	struct timeval pause = { 0, METRICS_HTTP_PAUSE_MS * 1000 };

	log_limited(&m->log_accept, LOG_WARN, "metrics: cannot accept: %s; pausing %d ms",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), METRICS_HTTP_PAUSE_MS);
	evconnlistener_disable(l);
	m->paused = true;
	evtimer_add(m->resume, &pause);
}

static void
metrics_http_on_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
	bool om = accept != NULL && strstr(accept, "application/openmetrics-text") != NULL;
	struct evbuffer *body;
	char *text;
	size_t len;

	(void)arg;
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if ((text = metrics_render(om, &len)) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	evhttp_add_header(out, "Content-Type", om ?
	    "application/openmetrics-text; version=1.0.0; charset=utf-8" :
	    "text/plain; version=0.0.4; charset=utf-8");
	if ((body = evbuffer_new()) == NULL || evbuffer_add(body, text, len) != 0) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
	} else {
		evhttp_send_reply(req, HTTP_OK, "OK", body);
	}
	if (body != NULL)
		evbuffer_free(body);
	free(text);
}

/* "host:port" (":0" for any free port) into ss; host kept for the URL. */
static int
metrics_http_parse(struct metrics_http *m, const char *listen, struct sockaddr_storage *ss,
    int *sslen, char *err, size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	char buf[300];
	bool any_port = colon != NULL && strcmp(colon, ":0") == 0;

	/* evutil refuses port 0 */
	snprintf(buf, sizeof buf, "%.*s%s", colon ? (int)(colon - listen) : 0, listen,
	    any_port ? ":1" : colon ? colon : "");
	*sslen = sizeof *ss;
	if (colon == NULL || colon == listen ||
	    evutil_parse_sockaddr_port(buf, (struct sockaddr *)ss, sslen) != 0) {
		snprintf(err, errlen, "metrics_listen: \"%s\" is not an address:port (e.g. "
		    "127.0.0.1:9464)", listen);
		return -1;
	}
	if (any_port) {
		if (ss->ss_family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_port = 0;
		else
			((struct sockaddr_in *)ss)->sin_port = 0;
	}
	snprintf(m->host, sizeof m->host, "%.*s", (int)(colon - listen), listen);
	return 0;
}

struct metrics_http *
metrics_http_new(struct event_base *base, const char *listen, char *err, size_t errlen)
{
	struct metrics_http *m = calloc(1, sizeof *m);
	struct sockaddr_storage ss, got;
	socklen_t gl = sizeof got;
	int sslen;

	if (m == NULL) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->base = base;
	if (metrics_http_parse(m, listen, &ss, &sslen, err, errlen) != 0)
		goto fail;
	m->listener = evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, 16,
	    (struct sockaddr *)&ss, sslen);
	if (m->listener == NULL) {
		snprintf(err, errlen, "metrics_listen: cannot listen on %s: %s", listen,
		    strerror(errno));
		goto fail;
	}
	getsockname(evconnlistener_get_fd(m->listener), (struct sockaddr *)&got, &gl);
	m->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port :
	    ((struct sockaddr_in *)&got)->sin_port);
	if ((m->http = evhttp_new(base)) == NULL || (m->resume = evtimer_new(base,
	    metrics_http_on_resume, m)) == NULL) {
		snprintf(err, errlen, "metrics: out of memory");
		goto fail;
	}
	evhttp_set_timeout(m->http, METRICS_HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 4096);
	/* every method is parsed, so that one other than GET or HEAD gets 405, not 501 */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(m->http, metrics_http_on_request, m);
	evhttp_set_bevcb(m->http, metrics_http_bev, m);
	if (evhttp_bind_listener(m->http, m->listener) == NULL) {
		snprintf(err, errlen, "metrics: cannot serve on %s", listen);
		goto fail;
	}
	evconnlistener_set_error_cb(m->listener, metrics_http_on_accept_error);
	evconnlistener_enable(m->listener);
	return m;
fail:
	if (m->http != NULL)
		evhttp_free(m->http);	/* with the listener, once bound */
	else if (m->listener != NULL)
		evconnlistener_free(m->listener);
	if (m->resume != NULL)
		event_free(m->resume);
	free(m);
	return NULL;
}

int
metrics_http_port(const struct metrics_http *m)
{
	return m->port;
}

void
metrics_http_url(const struct metrics_http *m, char *out, size_t len)
{
	bool v6 = strchr(m->host, ':') != NULL && m->host[0] != '[';

	snprintf(out, len, "http://%s%s%s:%d/metrics", v6 ? "[" : "", m->host, v6 ? "]" : "",
	    m->port);
}

void
metrics_http_free(struct metrics_http *m)
{
	if (m == NULL)
		return;
	m->closing = true;
	evhttp_free(m->http);	/* its listener and connections; their bufferevents go later */
	event_free(m->resume);
	if (m->open == 0)
		free(m);
}

/* ---- TLS handshakes refused, counted by the TLS servers ---- */

void
metrics_tls_define(void)
{
	metrics_counter("gca_tls_handshakes_refused", "TLS connections refused before their first "
	    "frame, by reason: certificate (not verified: unknown CA, revoked, expired), "
	    "no_certificate, no_role (the certificate names no gca role), over_cap (the peer's "
	    "max_peer_connections), handshake_budget (max_handshakes in progress), "
	    "handshake_timeout, tls_error (any other TLS failure).");
}

void
metrics_tls_refused(const char *reason)
{
	metrics_add("gca_tls_handshakes_refused", 1, "reason", reason, NULL);
}
