/*
 * Servers: a TLS listener (every gca daemon's network face) and a unix-socket listener (the CTS's
 * socket for the wrappers). Both hand accepted connections to conn.c with the same dispatch table.
 *
 * Limits a peer cannot break (docs/ARCHITECTURE.md, "Limits"): out of descriptors (EMFILE,
 * ENFILE), the listener pauses for a moment instead of failing accept() in a loop; at most
 * max_handshakes TLS connections are in their handshake at once (the rest are closed at accept);
 * a peer (certificate CN, or uid on the unix socket) has at most max_per_peer connections that are
 * not kept (a job's channel, a subscription); memory freed by closed connections goes back to the
 * system (malloc_trim) a second after they close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "proto/metrics.h"

#define PROTO_SERVER_PAUSE_MS		250	/* accepting stops this long at EMFILE */
#define PROTO_SERVER_HANDSHAKES		256	/* max_handshakes by default */

struct proto_server_conn {
	struct proto_conn		*conn;
	struct proto_server_conn	*next, *prev;
	bool				 handshaking;
};

struct proto_server {
	struct event_base		*base;
	struct evconnlistener		*listener;
	SSL_CTX				*ctx;		/* NULL: unix */
	struct proto_server_config	 cfg;
	struct proto_server_conn	*conns;
	char				*path;		/* unix */
	int				 port;
	int				 handshaking;	/* TLS connections not up yet */
	struct event			*resume;	/* accepting again after EMFILE */
	struct event			*trim;		/* malloc_trim after connections closed */
	struct log_limit		 log_accept, log_budget, log_cap;
};

static void
proto_server_on_close(struct proto_conn *c, const char *why, void *arg)
{
	struct proto_server *s = arg;
	struct timeval second = { 1, 0 };

	log_debug("connection from %s %s closed: %s", proto_conn_peer(c)->role,
	    proto_conn_peer(c)->name, why);
	if (!evtimer_pending(s->trim, NULL))
		evtimer_add(s->trim, &second);
	for (struct proto_server_conn *sc = s->conns; sc != NULL; sc = sc->next) {
		if (sc->conn != c)
			continue;
		if (sc->handshaking)
			s->handshaking--;
		if (sc->prev != NULL)
			sc->prev->next = sc->next;
		else
			s->conns = sc->next;
		if (sc->next != NULL)
			sc->next->prev = sc->prev;
		free(sc);
		break;
	}
	if (s->cfg.on_close != NULL)
		s->cfg.on_close(c, s->cfg.ctx);
}

static bool
proto_server_same_peer(const struct proto_peer *a, const struct proto_peer *b)
{
	if (a->local != b->local)
		return false;
	return a->local ? a->uid == b->uid :
	    strcmp(a->role, b->role) == 0 && strcmp(a->name, b->name) == 0;
}

/* The per-peer cap: c is refused when its peer already has max_per_peer open connections that
 * are up, not kept and not refused themselves. */
static void
proto_server_check_cap(struct proto_server *s, struct proto_conn *c)
{
	const struct proto_peer *p = proto_conn_peer(c);
	char why[512];
	int n = 0;

	if (s->cfg.max_per_peer <= 0)
		return;
	for (struct proto_server_conn *sc = s->conns; sc != NULL; sc = sc->next) {
		if (sc->conn != c && proto_conn_open(sc->conn) && proto_conn_up(sc->conn) &&
		    !proto_conn_kept(sc->conn) && !proto_conn_refused(sc->conn) &&
		    proto_server_same_peer(proto_conn_peer(sc->conn), p))
			n++;
	}
	if (n < s->cfg.max_per_peer)
		return;
	if (p->local)
		snprintf(why, sizeof why, "too many connections from uid %u: %d open, not bound to a "
		    "job (the CTS's max_peer_connections); close some and try again", (unsigned)p->uid,
		    n);
	else
		snprintf(why, sizeof why, "too many connections from %s %s: %d open (the server's "
		    "max_peer_connections); close some and try again", p->role, p->name, n);
	log_limited(&s->log_cap, LOG_WARN, "refusing a connection: %s", why);
	if (!p->local)
		metrics_tls_refused("over_cap");
	proto_conn_refuse(c, why);
}

static void
proto_server_on_up(struct proto_conn *c, void *arg)
{
	struct proto_server *s = arg;

	for (struct proto_server_conn *sc = s->conns; sc != NULL; sc = sc->next) {
		if (sc->conn == c && sc->handshaking) {
			sc->handshaking = false;
			s->handshaking--;
		}
	}
	if (proto_role_bit(proto_conn_peer(c)->role) & s->cfg.idle_exempt_roles)
		proto_conn_idle_exempt(c);
	proto_server_check_cap(s, c);
}

static void
proto_server_adopt(struct proto_server *s, struct bufferevent *bev, const struct proto_peer *peer)
{
	struct proto_conn_ops ops = {
		.handlers = s->cfg.handlers, .nhandlers = s->cfg.nhandlers, .ctx = s->cfg.ctx,
		.max_frame = s->cfg.max_frame, .max_output = s->cfg.max_output,
		.handshake_timeout_ms = s->cfg.handshake_timeout_ms,
		.idle_timeout_ms = s->cfg.idle_timeout_ms,
		.on_close = proto_server_on_close, .on_up = proto_server_on_up, .arg = s,
		.tls = s->ctx != NULL, .accepted = true,
	};
	struct proto_server_conn *sc = calloc(1, sizeof *sc);

	if (sc == NULL || (sc->conn = proto_conn_new(s->base, bev, &ops, peer)) == NULL) {
		free(sc);
		return;
	}
	sc->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = sc;
	s->conns = sc;
	if (s->ctx != NULL) {
		sc->handshaking = true;
		s->handshaking++;
	} else {
		proto_server_check_cap(s, sc->conn);	/* a unix peer is known at once */
	}
}

static void
proto_server_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct proto_server *s = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(s->listener);
}

/*
 * accept() failed with something other than "try again": out of descriptors (EMFILE, ENFILE) or
 * memory. Retrying at once would spin (the pending connection stays in the backlog): pause the
 * listener and say so, once a second at most. libevent logs nothing itself when this is set.
 */
static void
proto_server_on_accept_error(struct evconnlistener *l, void *arg)
{
	struct proto_server *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = { 0, PROTO_SERVER_PAUSE_MS * 1000 };
	int n = 0;

	for (struct proto_server_conn *sc = s->conns; sc != NULL; sc = sc->next)
		n++;
	log_limited(&s->log_accept, LOG_WARN, "cannot accept on %s: %s; pausing %d ms (%d "
	    "connections open)", s->path ? s->path : "the TLS port", evutil_socket_error_to_string(err),
	    PROTO_SERVER_PAUSE_MS, n);
	evconnlistener_disable(l);
	evtimer_add(s->resume, &pause);
}

static void
proto_server_on_trim(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	malloc_trim(0);		/* a flood's buffers are freed by now; give the pages back */
}

/* What both listeners share once made: the timers and the accept error callback. */
static void
proto_server_setup(struct proto_server *s)
{
	s->resume = evtimer_new(s->base, proto_server_on_resume, s);
	s->trim = evtimer_new(s->base, proto_server_on_trim, s);
	evconnlistener_set_error_cb(s->listener, proto_server_on_accept_error);
	if (s->cfg.max_handshakes <= 0)
		s->cfg.max_handshakes = PROTO_SERVER_HANDSHAKES;
}

static void
proto_server_on_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct proto_server *s = arg;
	struct bufferevent *bev;
	SSL *ssl;

	(void)l;
	(void)sa;
	(void)salen;
	if (s->handshaking >= s->cfg.max_handshakes) {
		log_limited(&s->log_budget, LOG_WARN, "%d TLS connections are in their handshake "
		    "(max_handshakes): closing new ones at once", s->handshaking);
		metrics_tls_refused("handshake_budget");
		close(fd);
		return;
	}
	tls_ctx_refresh(s->ctx);	/* a CRL written since: in force from this connection on */
	if ((ssl = SSL_new(s->ctx)) == NULL) {
		close(fd);
		return;
	}
	proto_tcp_nodelay(fd);
	bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	proto_server_adopt(s, bev, NULL);
}

static void
proto_server_on_accept_unix(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct proto_server *s = arg;
	struct proto_peer peer = { .local = true };
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		close(fd);
		return;
	}
	snprintf(peer.role, sizeof peer.role, "local");
	snprintf(peer.name, sizeof peer.name, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
	peer.uid = cred.uid;
	peer.gid = cred.gid;
	peer.pid = cred.pid;
	if ((bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return;
	}
	proto_server_adopt(s, bev, &peer);
}

static int
proto_server_parse(const char *listen, struct sockaddr_storage *ss, int *sslen, char *err,
    size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	char buf[300];
	bool any_port = colon != NULL && strcmp(colon, ":0") == 0;

	/* libevent refuses port 0; "host:0" means "pick a free port", as bind() does. */
	snprintf(buf, sizeof buf, "%.*s%s", colon ? (int)(colon - listen) : 0, listen,
	    any_port ? ":1" : colon ? colon : "");
	*sslen = sizeof *ss;
	if (colon == NULL || evutil_parse_sockaddr_port(buf, (struct sockaddr *)ss, sslen) != 0) {
		snprintf(err, errlen, "\"%s\" is not an address:port", listen);
		return -1;
	}
	if (any_port) {
		if (ss->ss_family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_port = 0;
		else
			((struct sockaddr_in *)ss)->sin_port = 0;
	}
	return 0;
}

struct proto_server *
proto_server_tls(struct event_base *base, const char *listen, const struct proto_tls_files *tls,
    const struct proto_server_config *cfg, char *err, size_t errlen)
{
	struct proto_server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss;
	int sslen;

	if (s == NULL)
		return NULL;
	s->base = base;
	s->cfg = *cfg;
	if (proto_server_parse(listen, &ss, &sslen, err, errlen) != 0 ||
	    (s->ctx = tls_ctx_new(true, tls, err, errlen)) == NULL)
		goto fail;
	s->listener = evconnlistener_new_bind(base, proto_server_on_accept_tls, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
	    (struct sockaddr *)&ss, sslen);
	if (s->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
		goto fail;
	}
	{
		struct sockaddr_storage got;
		socklen_t gl = sizeof got;
		getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&got, &gl);
		s->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port :
		    ((struct sockaddr_in *)&got)->sin_port);
	}
	proto_server_setup(s);
	return s;
fail:
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	free(s);
	return NULL;
}

/*
 * What is at path before we bind there: nothing, or a socket left by a previous run (nobody
 * answers a connect: removed), 0; or a socket someone still listens on (a second daemon would
 * steal the first one's clients), or a file that is no socket: -1 with why.
 */
static int
proto_server_unix_clear(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(sun->sun_path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "socket %s: the path exists and is not a socket; not removing it",
		    sun->sun_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket %s: %s", sun->sun_path, strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof *sun);
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "socket %s: another process listens on it (a gca-cts already "
		    "running?); not taking it over", sun->sun_path);
		return -1;
	}
	if (unlink(sun->sun_path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "socket %s: cannot remove the stale socket: %s", sun->sun_path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

struct proto_server *
proto_server_unix(struct event_base *base, const char *path, mode_t mode,
    const struct proto_server_config *cfg, char *err, size_t errlen)
{
	struct proto_server *s;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if (proto_server_unix_clear(&sun, err, errlen) != 0)
		return NULL;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->base = base;
	s->cfg = *cfg;
	s->path = xstrdup(path);
	s->listener = evconnlistener_new_bind(base, proto_server_on_accept_unix, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, (struct sockaddr *)&sun, sizeof sun);
	if (s->listener == NULL || chmod(path, mode) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		if (s->listener != NULL)
			evconnlistener_free(s->listener);
		free(s->path);
		free(s);
		return NULL;
	}
	proto_server_setup(s);
	return s;
}

/* Connections a network process accepted and checked (relay.c): plain unix sockets here, with
 * the TLS peer's identity; the same limits and dispatch as a TLS listener's. */
struct proto_server *
proto_server_relayed(struct event_base *base, const struct proto_server_config *cfg)
{
	struct proto_server *s = xcalloc(1, sizeof *s);

	s->base = base;
	s->cfg = *cfg;
	s->resume = evtimer_new(base, proto_server_on_resume, s);
	s->trim = evtimer_new(base, proto_server_on_trim, s);
	return s;
}

void
proto_server_take(struct proto_server *s, int fd, const struct proto_peer *peer)
{
	struct bufferevent *bev;

	evutil_make_socket_nonblocking(fd);
	if ((bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return;
	}
	proto_server_adopt(s, bev, peer);
}

int
proto_server_port(struct proto_server *s)
{
	return s->port;
}

/* The address peers reach a server at: its listen address's host with the port it got (a listen
 * port of 0 picks one), as the daemon publishes it when no endpoint is configured. */
char *
proto_server_endpoint(struct proto_server *s, const char *listen)
{
	const char *colon = strrchr(listen, ':');
	int hostlen = colon != NULL ? (int)(colon - listen) : (int)strlen(listen);
	char *ep;

	xasprintf(&ep, "%.*s:%d", hostlen, listen, s->port);
	return ep;
}

/* "ping", the same on every server (GCS, CTS, the CTS's socket): the server's clock, so a caller
 * sees the daemon's event loop answer. */
void
proto_server_ping(struct proto_req *r, void *ctx)
{
	struct msg_ping_ok ok = { time_now_ms() };

	(void)ctx;
	proto_reply_ok(r, r->pt->reply, &ok);
}

void
proto_server_free(struct proto_server *s)
{
	if (s == NULL)
		return;
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	event_free(s->resume);
	event_free(s->trim);
	while (s->conns != NULL) {
		struct proto_server_conn *sc = s->conns;

		s->conns = sc->next;
		proto_conn_kill(sc->conn);
		free(sc);
	}
	if (s->path != NULL) {
		unlink(s->path);
		free(s->path);
	}
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	free(s);
}
