/*
 * The relay between a privileged daemon and its unprivileged network process (docs/ARCHITECTURE.md,
 * "The privilege line"). The network process holds the TLS contexts, accepts and makes every TLS
 * connection, and hands the daemon one end of a fresh unix socketpair per connection, over a
 * SOCK_SEQPACKET control socket (one frame a message, the descriptor in SCM_RIGHTS). Frames from
 * the network are checked here (length, msgpack against the message's table) and re-encoded, so
 * the daemon never reads a byte a peer wrote; frames from the daemon go out as they are.
 *
 * Control messages: net_accepted {role, name} + fd (network -> daemon: a TLS peer, its checked
 * identity); net_refused {name: why} (network -> daemon: a handshake refused, for the daemon's
 * metrics); net_connect {endpoint, role, name} + fd (daemon -> network: connect there, expect
 * that server). The first frame the network process writes on a connection it made is net_up
 * {role, name} (who answered) or an err saying why there is no connection.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"

#define RELAY_OUTPUT_MAX	(4 * 1024 * 1024)	/* stop reading the other side over this */
#define RELAY_OWN_FRAME_MAX	(256 * 1024 * 1024)	/* the daemon's frames: its own limits */
#define RELAY_ASK_DECODE	(64 * 1024)	/* the daemon's requests are small; data replies not */
#define RELAY_ASKED_MAX		4096		/* requests awaiting a reply, per connection */

static int relay_ctl_fd = -1;	/* this process's connections go through it (proto_relay_via) */

void
proto_relay_via(int ctl)
{
	relay_ctl_fd = ctl;
}

bool
proto_relay_on(void)
{
	return relay_ctl_fd >= 0;
}

int
proto_relay_send(int ctl, const char *type, const struct msg_net *body, int fd)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr mh = { 0 };
	struct iovec iov;
	uint8_t *frame;
	size_t len;
	ssize_t n;

	if (proto_encode(type, 0, proto_type_find(type), body, &frame, &len) != 0)
		return -1;
	iov = (struct iovec){ frame, len };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &fd, sizeof fd);
	}
	do
		n = sendmsg(ctl, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	free(frame);
	return n == (ssize_t)len ? 0 : -1;
}

int
proto_relay_recv(int ctl, size_t max, struct proto_msg *m, int *fd, char *err, size_t errlen)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(4 * sizeof(int))]; } u;
	struct msghdr mh = { 0 };
	uint8_t *buf = xmalloc(max + PROTO_HEADER + 1);
	struct iovec iov = { buf, max + PROTO_HEADER + 1 };
	const char *code = NULL;
	int nfds = 0, fds[4];
	ssize_t n;
	long flen;

	*fd = -1;
	memset(m, 0, sizeof *m);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof u.buf;
	do
		n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; h != NULL;
	    h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k && nfds < 4; i++)
				memcpy(&fds[nfds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
		}
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		free(buf);
		return 1;
	}
	if (n <= 0)
		snprintf(err, errlen, "%s", n == 0 ? "closed" : strerror(errno));
	else if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		snprintf(err, errlen, "a message over %zu bytes", max);
	else if (nfds > 1)
		snprintf(err, errlen, "%d descriptors in one message", nfds);
	else if (n < PROTO_HEADER || (flen = proto_frame_length(buf, max)) < 0 ||
	    (size_t)flen + PROTO_HEADER != (size_t)n)
		snprintf(err, errlen, "a message whose length is not its frame's");
	else if (proto_decode(buf + PROTO_HEADER, (size_t)flen, NULL, m, &code, err, errlen) == 0) {
		free(buf);
		*fd = nfds == 1 ? fds[0] : -1;
		return 0;
	}
	proto_msg_free(m);
	memset(m, 0, sizeof *m);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free(buf);
	return -1;
}

int
proto_relay_dial(const char *endpoint, const char *role, const char *name, char *err,
    size_t errlen)
{
	struct msg_net b = { endpoint, role, name };
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", endpoint, strerror(errno));
		return -1;
	}
	if (proto_relay_send(relay_ctl_fd, "net_connect", &b, sp[1]) != 0) {
		snprintf(err, errlen, "cannot connect to %s: the network process is not running",
		    endpoint);
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	close(sp[1]);
	return sp[0];
}

/* ---- the network process's side ---- */

struct relay_asked {
	uint32_t			 id;
	const struct proto_type		*reply;
	struct relay_asked		*next;
};

struct relay_link {
	struct proto_relay	*r;
	struct bufferevent	*net;		/* TLS, the peer */
	struct bufferevent	*own;		/* the daemon's end of a socketpair */
	struct event		*timer;		/* the handshake, then the drain at close */
	bool			 up, accepted, closing;
	char			 role[16], name[256], endpoint[300];	/* outbound: expected */
	struct relay_asked	*asked;		/* the daemon's requests, for their replies' types */
	int			 nasked;
	struct relay_link	*next, *prev;
};

struct proto_relay {
	struct event_base		*base;
	struct proto_relay_config	 cfg;
	SSL_CTX				*server, *client;
	struct evconnlistener		*listener;
	struct event			*ctl_ev, *resume;
	struct relay_link		*links;
	int				 handshaking;
	struct log_limit		 log_accept;
};

/* A handshake refused here is counted by the daemon, which serves the metrics (net_refused). */
static void
relay_refused(struct proto_relay *r, const char *reason)
{
	struct msg_net b = { NULL, NULL, reason };

	proto_relay_send(r->cfg.ctl, "net_refused", &b, -1);
}

static void
relay_free(struct relay_link *l)
{
	if (!l->up && l->accepted)
		l->r->handshaking--;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		l->r->links = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	if (l->net != NULL) {
		SSL *ssl = bufferevent_openssl_get_ssl(l->net);
		if (ssl != NULL)
			SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
		bufferevent_free(l->net);
	}
	if (l->own != NULL)
		bufferevent_free(l->own);
	if (l->timer != NULL)
		event_free(l->timer);
	while (l->asked != NULL) {
		struct relay_asked *a = l->asked;
		l->asked = a->next;
		free(a);
	}
	free(l);
}

static bool
relay_drained(struct bufferevent *b)
{
	return b == NULL || evbuffer_get_length(bufferevent_get_output(b)) == 0;
}

static void
relay_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct relay_link *l = arg;

	(void)fd;
	(void)what;
	if (!l->closing) {
		log_debug("%s: no TLS handshake in time", l->endpoint[0] ? l->endpoint : "a peer");
		if (l->accepted)
			relay_refused(l->r, "handshake_timeout");
	}
	relay_free(l);
}

/* Closes both sides once what each was sent is written (5 s at most). */
static void
relay_close(struct relay_link *l, const char *why)
{
	struct timeval drain = { 5, 0 };

	if (l->closing)
		return;
	l->closing = true;
	log_debug("relay %s %s closed: %s", l->role, l->name, why);
	if (l->net != NULL)
		bufferevent_disable(l->net, EV_READ);
	if (l->own != NULL)
		bufferevent_disable(l->own, EV_READ);
	/* freed from the timer, never under a caller that still holds l */
	if (relay_drained(l->net) && relay_drained(l->own))
		drain = (struct timeval){ 0, 0 };
	evtimer_add(l->timer, &drain);
}

static void
relay_write(struct relay_link *l, struct bufferevent *to, const void *buf, size_t len)
{
	struct bufferevent *from = to == l->net ? l->own : l->net;

	bufferevent_write(to, buf, len);
	if (from != NULL && evbuffer_get_length(bufferevent_get_output(to)) > RELAY_OUTPUT_MAX)
		bufferevent_disable(from, EV_READ);
}

static void
relay_write_err(struct relay_link *l, struct bufferevent *to, uint32_t id, const char *code,
    const char *msg)
{
	uint8_t *frame;
	size_t len;

	if (proto_encode_err(id, code, msg, &frame, &len) == 0) {
		relay_write(l, to, frame, len);
		free(frame);
	}
}

static const struct proto_type *
relay_take_asked(struct relay_link *l, uint32_t id)
{
	for (struct relay_asked **p = &l->asked; *p != NULL; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct relay_asked *a = *p;
			const struct proto_type *pt = a->reply;
			*p = a->next;
			free(a);
			l->nasked--;
			return pt;
		}
	}
	return NULL;
}

/*
 * One frame from the peer: decoded with its type's table (a reply with the table of the request
 * the daemon sent) and encoded again, so only what the tables allow reaches the daemon. A bad
 * frame is answered as a server answers it (err, or closed when over the length limit); on a
 * connection the daemon made, the server is broken and the connection closes.
 */
static int
relay_from_net(struct relay_link *l, const uint8_t *payload, size_t n)
{
	struct proto_msg m;
	const struct proto_type *rt = NULL;
	const char *code = NULL;
	char err[256];
	uint8_t *frame;
	size_t len;

	if (proto_decode(payload, n, NULL, &m, &code, err, sizeof err) == 0 &&
	    strcmp(m.type, "ok") == 0) {
		uint32_t id = m.id;
		proto_msg_free(&m);
		if ((rt = relay_take_asked(l, id)) == NULL) {
			/* To a server, which asked nothing: the daemon answers it as any stray reply
			 * (its body is not read). To a client: late, dropped as the client would. */
			if (l->accepted && proto_encode("ok", id, NULL, NULL, &frame, &len) == 0) {
				relay_write(l, l->own, frame, len);
				free(frame);
			}
			return 0;
		}
		proto_decode(payload, n, rt, &m, &code, err, sizeof err);
	}
	if (code != NULL) {
		log_debug("%s %s: bad frame: %s: %s", l->role, l->name, code, err);
		if (!l->accepted) {
			proto_msg_free(&m);
			relay_close(l, err);
			return -1;
		}
		relay_write_err(l, l->net, m.id, code, err);
		proto_msg_free(&m);
		return 0;
	}
	if (strcmp(m.type, "err") == 0)
		relay_take_asked(l, m.id);
	if (proto_encode(m.type, m.id, m.pt, m.body, &frame, &len) != 0) {
		proto_msg_free(&m);
		relay_close(l, "cannot encode a frame again");
		return -1;
	}
	proto_msg_free(&m);
	relay_write(l, l->own, frame, len);
	free(frame);
	return 0;
}

/* A frame from the daemon goes out as it is; a request's id is noted for its reply's table. */
static void
relay_from_own(struct relay_link *l, const uint8_t *payload, size_t n)
{
	struct proto_msg m;
	const char *code = NULL;
	char err[128];

	if (n > RELAY_ASK_DECODE || l->nasked >= RELAY_ASKED_MAX)
		return;
	if (proto_decode(payload, n, NULL, &m, &code, err, sizeof err) == 0 && m.pt != NULL &&
	    strcmp(m.type, "ok") != 0 && strcmp(m.type, "err") != 0 && m.pt->reply != NULL) {
		struct relay_asked *a = xcalloc(1, sizeof *a);
		a->id = m.id;
		a->reply = m.pt->reply;
		a->next = l->asked;
		l->asked = a;
		l->nasked++;
	}
	proto_msg_free(&m);
}

static void
relay_on_read(struct bufferevent *bev, void *arg)
{
	struct relay_link *l = arg;
	bool from_net = bev == l->net;
	size_t max = from_net ? l->r->cfg.max_frame : RELAY_OWN_FRAME_MAX;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!l->up)
		return;		/* nothing is read before the peer is known */
	while (!l->closing) {
		uint8_t hdr[PROTO_HEADER], *frame;
		long n;

		if (evbuffer_copyout(in, hdr, PROTO_HEADER) < PROTO_HEADER)
			return;
		if ((n = proto_frame_length(hdr, max)) < 0) {
			char why[96];
			snprintf(why, sizeof why, "frame over %zu bytes", max);
			if (from_net && l->accepted)
				relay_write_err(l, l->net, 0, PROTO_E_TOO_LARGE, why);
			relay_close(l, why);
			return;
		}
		if (evbuffer_get_length(in) < PROTO_HEADER + (size_t)n)
			return;
		frame = xmalloc(PROTO_HEADER + (size_t)n);
		evbuffer_remove(in, frame, PROTO_HEADER + (size_t)n);
		if (from_net) {
			int rc = relay_from_net(l, frame + PROTO_HEADER, (size_t)n);
			free(frame);
			if (rc != 0)
				return;
		} else {
			relay_from_own(l, frame + PROTO_HEADER, (size_t)n);
			relay_write(l, l->net, frame, PROTO_HEADER + (size_t)n);
			free(frame);
		}
		if ((bufferevent_get_enabled(bev) & EV_READ) == 0)
			return;
	}
}

static void
relay_on_write(struct bufferevent *bev, void *arg)
{
	struct relay_link *l = arg;
	struct bufferevent *from = bev == l->net ? l->own : l->net;

	if (l->closing) {
		if (relay_drained(l->net) && relay_drained(l->own))
			relay_free(l);
		return;
	}
	if (l->up && from != NULL && !(bufferevent_get_enabled(from) & EV_READ) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <= RELAY_OUTPUT_MAX / 2) {
		bufferevent_enable(from, EV_READ);
		relay_on_read(from, l);
	}
}

/* Why a TLS connection failed, as conn.c says it (the certificate refused, TLS, the socket). */
static const char *
relay_why(struct relay_link *l, short what, char *why, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(l->net);
	long v = ssl != NULL && !l->up ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e = 0;
	int sockerr = EVUTIL_SOCKET_ERROR();

	if (!(what & BEV_EVENT_ERROR)) {
		snprintf(why, len, "closed by the peer");
		return NULL;
	}
	if (v != X509_V_OK)
		snprintf(why, len, "certificate refused: %s", X509_verify_cert_error_string(v));
	else if ((e = bufferevent_get_openssl_error(l->net)) != 0)
		ERR_error_string_n(e, why, len);
	else if (sockerr != 0)
		snprintf(why, len, "%s", evutil_socket_error_to_string(sockerr));
	else
		snprintf(why, len, "connection error");
	/* the reasons of proto/metrics.h's refused handshakes, as conn.c counts them */
	return v != X509_V_OK ? "certificate" : e != 0 &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ? "no_certificate" :
	    "tls_error";
}

static void relay_on_event(struct bufferevent *bev, short what, void *arg);

/* The handshake is done: the peer's identity is checked, and the daemon gets its end. */
static void
relay_up(struct relay_link *l)
{
	struct proto_peer p;
	struct msg_net b = { NULL, NULL, NULL };
	char why[600];
	uint8_t *frame;
	size_t len;
	int sp[2];

	/* "local" is the unix socket's role: no certificate speaks for a local user */
	if (tls_peer_identity(bufferevent_openssl_get_ssl(l->net), &p) != 0 ||
	    strcmp(p.role, "local") == 0) {
		snprintf(why, sizeof why, "the peer's certificate names no known role");
		if (l->accepted)
			relay_refused(l->r, "no_role");
		goto refuse;
	}
	if (!l->accepted && strcmp(p.role, l->role) != 0) {
		snprintf(why, sizeof why, "the server is %s %s, not a %s", p.role, p.name, l->role);
		goto refuse;
	}
	if (!l->accepted && l->name[0] != '\0' && strcmp(p.name, l->name) != 0) {
		snprintf(why, sizeof why, "the server is %s, not %s", p.name, l->name);
		goto refuse;
	}
	b.role = p.role;
	b.name = p.name;
	if (l->accepted) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) != 0) {
			relay_close(l, strerror(errno));
			return;
		}
		if (proto_relay_send(l->r->cfg.ctl, "net_accepted", &b, sp[1]) != 0) {
			close(sp[0]);
			close(sp[1]);
			relay_close(l, "the daemon did not take the connection");
			return;
		}
		close(sp[1]);
		l->own = bufferevent_socket_new(l->r->base, sp[0], BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(l->own, relay_on_read, relay_on_write, relay_on_event, l);
		l->r->handshaking--;
	} else if (proto_encode("net_up", 0, proto_type_find("net_up"), &b, &frame, &len) == 0) {
		bufferevent_write(l->own, frame, len);
		free(frame);
	}
	snprintf(l->role, sizeof l->role, "%s", p.role);
	snprintf(l->name, sizeof l->name, "%s", p.name);
	l->up = true;
	evtimer_del(l->timer);
	bufferevent_setwatermark(l->own, EV_WRITE, RELAY_OUTPUT_MAX / 2, 0);
	bufferevent_setwatermark(l->net, EV_WRITE, RELAY_OUTPUT_MAX / 2, 0);
	bufferevent_enable(l->own, EV_READ | EV_WRITE);
	bufferevent_enable(l->net, EV_READ | EV_WRITE);
	relay_on_read(l->own, l);
	if (!l->closing)
		relay_on_read(l->net, l);
	return;
refuse:
	if (!l->accepted)
		relay_write_err(l, l->own, 0, PROTO_E_UNAVAILABLE, why);
	relay_close(l, why);
}


static void
relay_on_net_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay_link *l = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		relay_up(l);
		return;
	}
	relay_on_event(bev, what, arg);
}

static void
relay_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay_link *l = arg;
	char why[300];

	if (bev == l->net) {
		const char *reason = relay_why(l, what, why, sizeof why);

		if (l->accepted && !l->up && reason != NULL)
			relay_refused(l->r, reason);
		if (!l->up && !l->accepted) {
			char msg[700];
			snprintf(msg, sizeof msg, "%s: %s", l->endpoint, why);
			relay_write_err(l, l->own, 0, PROTO_E_UNAVAILABLE, msg);
		}
		/* what the peer sent before it closed still reaches the daemon */
		if (l->up && !l->closing)
			relay_on_read(l->net, l);
		bufferevent_free(l->net);
		l->net = NULL;
	} else {
		snprintf(why, sizeof why, "the daemon closed its end");
		bufferevent_free(l->own);
		l->own = NULL;
	}
	if (!l->closing)
		relay_close(l, why);
	else if (relay_drained(l->net) && relay_drained(l->own)) {
		struct timeval now = { 0, 0 };
		evtimer_add(l->timer, &now);
	}
}

static struct relay_link *
relay_link_new(struct proto_relay *r, bool accepted)
{
	struct relay_link *l = xcalloc(1, sizeof *l);

	l->r = r;
	l->accepted = accepted;
	l->timer = evtimer_new(r->base, relay_on_timer, l);
	l->next = r->links;
	if (r->links != NULL)
		r->links->prev = l;
	r->links = l;
	return l;
}

static void
relay_handshake_timer(struct relay_link *l)
{
	int ms = l->r->cfg.handshake_timeout_ms > 0 ? l->r->cfg.handshake_timeout_ms : 10000;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(l->timer, &tv);
}

static void
relay_on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct proto_relay *r = arg;
	struct relay_link *l;
	SSL *ssl;

	(void)lis;
	(void)sa;
	(void)salen;
	if (r->handshaking >= r->cfg.max_handshakes) {
		log_limited(&r->log_accept, LOG_WARN, "%d TLS connections are in their handshake "
		    "(max_handshakes): closing new ones at once", r->handshaking);
		relay_refused(r, "handshake_budget");
		close(fd);
		return;
	}
	tls_ctx_refresh(r->server);	/* a CRL written since: in force from this connection on */
	if ((ssl = SSL_new(r->server)) == NULL) {
		close(fd);
		return;
	}
	proto_tcp_nodelay(fd);
	l = relay_link_new(r, true);
	r->handshaking++;
	l->net = bufferevent_openssl_socket_new(r->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (l->net == NULL) {
		SSL_free(ssl);
		close(fd);
		relay_free(l);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(l->net, 1);
	bufferevent_setcb(l->net, relay_on_read, relay_on_write, relay_on_net_event, l);
	bufferevent_enable(l->net, EV_READ | EV_WRITE);
	relay_handshake_timer(l);
}

/* net_connect from the daemon: a TLS connection to endpoint, whose server must be role (name). */
static void
relay_connect(struct proto_relay *r, const struct msg_net *b, int fd)
{
	struct relay_link *l = relay_link_new(r, false);
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	char host[300], why[400];
	const char *colon;
	SSL *ssl = NULL;

	l->own = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(l->own, relay_on_read, relay_on_write, relay_on_event, l);
	bufferevent_enable(l->own, EV_WRITE);	/* its requests wait until the server is known */
	snprintf(l->endpoint, sizeof l->endpoint, "%s", b->endpoint ? b->endpoint : "");
	snprintf(l->role, sizeof l->role, "%s", b->role ? b->role : "");
	snprintf(l->name, sizeof l->name, "%s", b->name ? b->name : "");
	colon = strrchr(l->endpoint, ':');
	snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - l->endpoint) : 0, l->endpoint);
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (l->role[0] == '\0' || evutil_parse_sockaddr_port(l->endpoint, (struct sockaddr *)&ss,
	    &sslen) != 0) {
		snprintf(why, sizeof why, "\"%s\" is not address:port", l->endpoint);
		goto fail;
	}
	tls_ctx_refresh(r->client);
	if ((ssl = SSL_new(r->client)) == NULL || tls_expect_host(ssl, host) != 0) {
		SSL_free(ssl);
		snprintf(why, sizeof why, "cannot make a TLS session");
		goto fail;
	}
	l->net = bufferevent_openssl_socket_new(r->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (l->net == NULL) {
		SSL_free(ssl);
		snprintf(why, sizeof why, "cannot make a connection");
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(l->net, 1);
	bufferevent_setcb(l->net, relay_on_read, relay_on_write, relay_on_net_event, l);
	if (bufferevent_socket_connect(l->net, (struct sockaddr *)&ss, sslen) != 0) {
		snprintf(why, sizeof why, "cannot connect to %s", l->endpoint);
		goto fail;
	}
	proto_tcp_nodelay(bufferevent_getfd(l->net));
	bufferevent_enable(l->net, EV_READ | EV_WRITE);
	relay_handshake_timer(l);
	return;
fail:
	relay_write_err(l, l->own, 0, PROTO_E_UNAVAILABLE, why);
	relay_close(l, why);
}

/* The daemon's messages: net_connect only. The daemon going away ends the network process. */
static void
relay_on_ctl(evutil_socket_t fd, short what, void *arg)
{
	struct proto_relay *r = arg;
	struct proto_msg m;
	char err[256];
	int rc, got;

	(void)what;
	while ((rc = proto_relay_recv(fd, PROTO_MAX_FRAME, &m, &got, err, sizeof err)) == 0) {
		if (strcmp(m.type, "net_connect") == 0 && got >= 0)
			relay_connect(r, m.body, got);
		else {
			log_warn("the daemon sent %s on the control socket; ignored", m.type);
			if (got >= 0)
				close(got);
		}
		proto_msg_free(&m);
	}
	if (rc < 0) {
		log_info("the control socket: %s; the network process ends", err);
		event_base_loopbreak(r->base);
	}
}

static void
relay_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct proto_relay *r = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(r->listener);
}

static void
relay_on_accept_error(struct evconnlistener *lis, void *arg)
{
	struct proto_relay *r = arg;
	struct timeval pause = { 0, 250000 };

	log_limited(&r->log_accept, LOG_WARN, "cannot accept on the TLS port: %s; pausing 250 ms",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(lis);
	evtimer_add(r->resume, &pause);
}

struct proto_relay *
proto_relay_new(struct event_base *base, const struct proto_relay_config *cfg,
    const struct proto_tls_files *tls, char *err, size_t errlen)
{
	struct proto_relay *r = xcalloc(1, sizeof *r);

	r->base = base;
	r->cfg = *cfg;
	if (r->cfg.max_frame == 0)
		r->cfg.max_frame = PROTO_MAX_FRAME;
	if (r->cfg.max_handshakes <= 0)
		r->cfg.max_handshakes = 256;
	if ((r->server = tls_ctx_new(true, tls, err, errlen)) == NULL ||
	    (r->client = tls_ctx_new(false, tls, err, errlen)) == NULL) {
		proto_relay_free(r);
		return NULL;
	}
	return r;
}

void
proto_relay_chroot(struct proto_relay *r, const char *root)
{
	tls_ctx_chroot(r->server, root);
	tls_ctx_chroot(r->client, root);
}

int
proto_relay_start(struct proto_relay *r, char *err, size_t errlen)
{
	r->listener = evconnlistener_new(r->base, relay_on_accept, r,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, r->cfg.listen_fd);
	if (r->listener == NULL) {
		snprintf(err, errlen, "cannot accept on the TLS port: %s", strerror(errno));
		return -1;
	}
	r->resume = evtimer_new(r->base, relay_on_resume, r);
	evconnlistener_set_error_cb(r->listener, relay_on_accept_error);
	r->ctl_ev = event_new(r->base, r->cfg.ctl, EV_READ | EV_PERSIST, relay_on_ctl, r);
	event_add(r->ctl_ev, NULL);
	return 0;
}

/* tests/fuzz/fuzz_relay.c: a relay with no TLS, listener or control socket, for links made up by
 * proto_relay_test_link. */
struct proto_relay *
proto_relay_test_new(struct event_base *base, size_t max_frame)
{
	struct proto_relay *r = xcalloc(1, sizeof *r);

	r->base = base;
	r->cfg.ctl = -1;
	r->cfg.max_frame = max_frame;
	return r;
}

/* Whether a link is still there (a link the relay closed is freed once drained). */
bool
proto_relay_test_linked(const struct proto_relay *r)
{
	return r->links != NULL;
}

/* A link up between two bufferevents the caller made (net: the peer's side, own: the daemon's),
 * as relay_up leaves one once the handshake is done: the same callbacks read both, so frames from
 * the peer go through relay_from_net. The relay frees both with the link. */
void
proto_relay_test_link(struct proto_relay *r, bool accepted, const char *role,
    struct bufferevent *net, struct bufferevent *own)
{
	struct relay_link *l = relay_link_new(r, accepted);

	l->net = net;
	l->own = own;
	snprintf(l->role, sizeof l->role, "%s", role);
	snprintf(l->name, sizeof l->name, "fuzz-peer");
	l->up = true;
	bufferevent_setcb(l->own, relay_on_read, relay_on_write, relay_on_event, l);
	bufferevent_setcb(l->net, relay_on_read, relay_on_write, relay_on_event, l);
	bufferevent_enable(l->own, EV_READ | EV_WRITE);
	bufferevent_enable(l->net, EV_READ | EV_WRITE);
}

void
proto_relay_free(struct proto_relay *r)
{
	if (r == NULL)
		return;
	while (r->links != NULL)
		relay_free(r->links);
	if (r->listener != NULL)
		evconnlistener_free(r->listener);
	if (r->resume != NULL)
		event_free(r->resume);
	if (r->ctl_ev != NULL)
		event_free(r->ctl_ev);
	if (r->server != NULL)
		SSL_CTX_free(r->server);
	if (r->client != NULL)
		SSL_CTX_free(r->client);
	free(r);
}
