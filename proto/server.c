/*
 * Servers: a TLS listener (every gca daemon's network face) and a unix-socket listener (the CTS's
 * socket for the wrappers). Both hand accepted connections to conn.c with the same dispatch table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
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

struct proto_server_conn {
	struct proto_conn		*conn;
	struct proto_server_conn	*next, *prev;
};

struct proto_server {
	struct event_base		*base;
	struct evconnlistener		*listener;
	SSL_CTX				*ctx;		/* NULL: unix */
	struct proto_server_config	 cfg;
	struct proto_server_conn	*conns;
	char				*path;		/* unix */
	int				 port;
};

static void
proto_server_on_close(struct proto_conn *c, const char *why, void *arg)
{
	struct proto_server *s = arg;

	log_debug("connection from %s %s closed: %s", proto_conn_peer(c)->role,
	    proto_conn_peer(c)->name, why);
	for (struct proto_server_conn *sc = s->conns; sc != NULL; sc = sc->next) {
		if (sc->conn != c)
			continue;
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

static void
proto_server_adopt(struct proto_server *s, struct bufferevent *bev, const struct proto_peer *peer)
{
	struct proto_conn_ops ops = {
		.handlers = s->cfg.handlers, .nhandlers = s->cfg.nhandlers, .ctx = s->cfg.ctx,
		.max_frame = s->cfg.max_frame, .max_output = s->cfg.max_output,
		.handshake_timeout_ms = s->cfg.handshake_timeout_ms,
		.idle_timeout_ms = s->cfg.idle_timeout_ms,
		.on_close = proto_server_on_close, .arg = s, .tls = s->ctx != NULL,
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
	tls_ctx_refresh(s->ctx);	/* a CRL written since: in force from this connection on */
	if ((ssl = SSL_new(s->ctx)) == NULL) {
		close(fd);
		return;
	}
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
	s->path = strdup(path);
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
	return s;
}

int
proto_server_port(struct proto_server *s)
{
	return s->port;
}

void
proto_server_free(struct proto_server *s)
{
	if (s == NULL)
		return;
	evconnlistener_free(s->listener);
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
