/*
 * GET /metrics over HTTP with evhttp, behind limits of our own (proto/metrics.h).
 *
 * evhttp (libevent 2.1) has no connection cap and tells nobody when it frees a connection that
 * never sent a request. What it does tell: each new connection (the bufferevent callback of
 * evhttp_set_bevcb) and, once a request came, the connection's close (evhttp_connection_set_closecb).
 * A connection without a request lives at most METRICS_HTTP_TIMEOUT_S (evhttp's timeout closes
 * it). So each connection takes a slot until it closes, or, if it never sent a request, until
 * that timeout has surely passed; with every slot taken the listener stops accepting, and a
 * second's timer or a close starts it again. The listener is ours, with proto/server.c's EMFILE
 * pause. (A connection is accepted only while a slot is free; connections already in one
 * accept() burst when the last slot went still go through: at most the backlog's, and each is
 * bounded by the timeout as well.)
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
#define METRICS_HTTP_BACKLOG	16

struct metrics_http_slot {
	const struct bufferevent	*bev;		/* NULL: free (compared, never used) */
	struct evhttp_connection	*evcon;		/* once it sent a request */
	uint64_t			 since_ms;
};

struct metrics_http {
	struct event_base	*base;
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct event		*resume, *recheck;
	char			 host[256];
	int			 port;
	bool			 paused;	/* EMFILE: until resume */
	bool			 stopping;	/* evhttp_free: its listener is gone first */
	struct metrics_http_slot slot[METRICS_HTTP_CONNECTIONS];
	struct log_limit	 log_accept, log_cap;
};

/* Slots of connections without a request whose timeout has passed: evhttp closed them. */
static int
metrics_http_free_slots(struct metrics_http *m)
{
	uint64_t now = time_mono_ms();
	int n = 0;

	for (size_t i = 0; i < GCA_NITEMS(m->slot); i++) {
		struct metrics_http_slot *s = &m->slot[i];

		if (s->bev != NULL && s->evcon == NULL &&
		    now - s->since_ms > (METRICS_HTTP_TIMEOUT_S + 1) * 1000ULL)
			s->bev = NULL;
		n += s->bev == NULL;
	}
	return n;
}

static void
metrics_http_enable(struct metrics_http *m)
{
	struct timeval second = { 1, 0 };

	if (m->paused)
		return;
	if (metrics_http_free_slots(m) > 0) {
		evconnlistener_enable(m->listener);
		return;
	}
	evconnlistener_disable(m->listener);
	if (!evtimer_pending(m->recheck, NULL))
		evtimer_add(m->recheck, &second);
}

static void
metrics_http_on_recheck(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	metrics_http_enable(arg);
}

/* A new connection: a slot for it (or none, in an accept burst past the cap; see above). */
static struct bufferevent *
metrics_http_bev(struct event_base *base, void *arg)
{
	struct metrics_http *m = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (bev == NULL)
		return NULL;
	metrics_http_free_slots(m);
	for (size_t i = 0; i < GCA_NITEMS(m->slot); i++) {
		if (m->slot[i].bev == NULL) {
			m->slot[i] = (struct metrics_http_slot){ bev, NULL, time_mono_ms() };
			break;
		}
	}
	if (metrics_http_free_slots(m) == 0) {
		log_limited(&m->log_cap, LOG_WARN, "metrics: %d HTTP connections open: not accepting "
		    "more until one closes", METRICS_HTTP_CONNECTIONS);
		metrics_http_enable(m);		/* disables, and checks again in a second */
	}
	return bev;
}

/* A connection that sent a request closes: its slot is free. */
static void
metrics_http_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct metrics_http *m = arg;

	if (m->stopping)
		return;
	for (size_t i = 0; i < GCA_NITEMS(m->slot); i++)
		if (m->slot[i].evcon == evcon)
			m->slot[i] = (struct metrics_http_slot){ 0 };
	metrics_http_enable(m);
}

/* The connection sent a request: its slot is freed by its close from now on. */
static void
metrics_http_track(struct metrics_http *m, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

	if (bev == NULL)
		return;
	for (size_t i = 0; i < GCA_NITEMS(m->slot); i++) {
		if (m->slot[i].evcon == evcon)
			return;			/* a second request on it */
		if (m->slot[i].bev == bev && m->slot[i].evcon == NULL) {
			m->slot[i].evcon = evcon;
			evhttp_connection_set_closecb(evcon, metrics_http_on_close, m);
			return;
		}
	}
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

	metrics_http_track(arg, req);
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
	if (cmd == EVHTTP_REQ_HEAD) {
		body = NULL;	/* evhttp would send one on an HTTP/1.0 HEAD */
		evhttp_send_reply(req, HTTP_OK, "OK", NULL);
	} else if ((body = evbuffer_new()) == NULL || evbuffer_add(body, text, len) != 0) {
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
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, METRICS_HTTP_BACKLOG,
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
	    metrics_http_on_resume, m)) == NULL || (m->recheck = evtimer_new(base,
	    metrics_http_on_recheck, m)) == NULL) {
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
	if (m->recheck != NULL)
		event_free(m->recheck);
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
	m->stopping = true;
	evhttp_free(m->http);	/* its listener, then its connections (their close callbacks) */
	event_free(m->resume);
	event_free(m->recheck);
	free(m);
}

int
metrics_serve(struct event_base *base, const char *listen, void (*on_scrape)(void *arg),
    void *arg, struct metrics_http **out, char *err, size_t errlen)
{
	char url[300];

	*out = NULL;
	metrics_on_scrape(on_scrape, arg);
	if (listen == NULL || listen[0] == '\0')
		return 0;
	if ((*out = metrics_http_new(base, listen, err, errlen)) == NULL)
		return -1;
	metrics_http_url(*out, url, sizeof url);
	log_info("metrics at %s", url);
	return 0;
}

void
metrics_stop(struct metrics_http **m)
{
	metrics_http_free(*m);
	*m = NULL;
	metrics_reset();
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
