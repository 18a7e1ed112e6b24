/*
 * libFuzzer target: bytes through the real connection layer into the servers' dispatch tables.
 *
 * Input: byte 0 picks the table or client scenario (fuzz_tables), byte 1 the caller's role
 * (fuzz_roles), byte 2 how the directory answers (fake_dir.c: from its tree, or down, or a lost
 * compare-and-swap, ...); the rest is what the peer writes, as it is, on a socketpair whose other
 * end is a real proto_conn (proto/conn.c: its reader, frame checks, role checks and dispatch)
 * serving that table with the daemon's real handlers. No TLS: the peer's identity is set as TLS
 * or SO_PEERCRED would set it. What the server writes back is read and decoded (a reply that does
 * not decode is a bug too).
 *
 * Faked, here only: the directory (fake_dir.c), and a CTS's surroundings (no jobs running but this
 * process, bound by a local caller and never signalled; a state folder in $TMPDIR; grants are
 * checked against a CA whose key no input has). Nothing ever connects out (see below).
 *
 * The other way (fuzz_client: this file built with FUZZ_CLIENT), hostile replies into the client
 * side (proto/client.c): every connection a daemon makes goes to a socketpair
 * (bufferevent_socket_connect is interposed below; nothing else is ever dialled) whose other end
 * is a hostile peer with a real certificate of the expected role and name from this run's own
 * site, over real TLS, that writes the input's bytes as its answers. Scenario "gcs>cts": a CTS
 * registers and binds a job, a broker asks a checkpoint, and the hostile CTS answers the GCS's
 * do_checkpoint. Scenario "cts>gcs": a CTS registers and beats, a local caller's binding going out
 * too, and the hostile GCS answers. Built with FUZZ_RELAYED as well (fuzz_client_relayed), the
 * same scenarios with no TLS, every client connecting through the network process this file
 * plays. (A hostile holder answering an image fetch: fuzz_fetch.c.)
 *
 * Adding a table (the CTS's privileged side, say) is one entry in fuzz_tables: its handlers, and
 * how to make and free the context they take.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/cts.h"
#include "gcs/gcs.h"
#include "tests/fuzz/fuzz.h"

#if defined(FUZZ_RELAYED)
#define FUZZ_NAME "fuzz_client_relayed"
#elif defined(FUZZ_CLIENT)
#define FUZZ_NAME "fuzz_client"
#else
#define FUZZ_NAME "fuzz_server"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the tables ---- */

struct fuzz_table {
	const char			*name;
	/* a client scenario: what the daemon is made to send first (the input's bytes are then
	 * the hostile peer's answers), and the certificate that peer shows; NULL for a server's */
	void	(*prelude)(void *ctx);
	const char			*hostile_cert;
	const struct proto_handler	*handlers;
	const size_t			*nhandlers;
	void	*(*open)(struct event_base *base);
	void	 (*on_close)(struct proto_conn *c, void *ctx);	/* the server's, or NULL */
	void	 (*close)(void *ctx);
};

static char fuzz_state[4096];	/* the site's files and the CTS's state, made once in $TMPDIR */

static void *
fuzz_gcs_open(struct event_base *base)
{
	struct gcs *g = xcalloc(1, sizeof *g);
	char err[256];

	g->base = base;
	g->name = xstrdup("fuzz-gcs");
	g->listen = xstrdup("127.0.0.1:0");
	g->endpoint = xstrdup("127.0.0.1:7390");
	/* its certificate, to sign grants with, and the CA: its clients dial only the hostile
	 * peers of fuzz_connect, never an endpoint an input names */
	xasprintf((char **)&g->tls.ca, "%s/ca.crt", fuzz_state);
	xasprintf((char **)&g->tls.cert, "%s/gcs-fuzz-gcs.crt", fuzz_state);
	xasprintf((char **)&g->tls.key, "%s/gcs-fuzz-gcs.key", fuzz_state);
	g->dircfg.uri = xstrdup("ldap://fake");
	g->dircfg.base = xstrdup("o=gca");
	g->cts_timeout_ms = 15000;
	g->request_timeout_ms = 30000;
	g->subscriber_backlog = 64 * 1024;
	if ((g->dir = dir_open(base, &g->dircfg, err, sizeof err)) == NULL)
		log_fatal("fake directory: %s", err);
	return g;
}

static void
fuzz_gcs_on_close(struct proto_conn *c, void *ctx)
{
	notify_drop(ctx, c);	/* as gca-gcs's own on_close */
}

static void
fuzz_gcs_close(void *ctx)
{
	struct gcs *g = ctx;

	registry_free(g);
	relay_close(g);
	cache_close(g);
	dir_close(g->dir);
	dir_config_free(&g->dircfg);
	glue_close(g);
	free(g->name);
	free(g->listen);
	free(g->endpoint);
	free((char *)g->tls.ca);
	free((char *)g->tls.cert);
	free((char *)g->tls.key);
	free(g);
}


static void *
fuzz_cts_open(struct event_base *base)
{
	struct cts *c = xcalloc(1, sizeof *c);
	char err[512];

	c->base = base;
	c->name = xstrdup("fuzz-cts");
	c->endpoint = xstrdup("127.0.0.1:7391");
	c->state = xstrdup(fuzz_state);
	xasprintf(&c->ca_file, "%s/ca.crt", fuzz_state);
	c->tls.ca = c->ca_file;
	/* its GCS link: a real client, whose connection fuzz_connect takes */
	c->gcs_endpoint = xstrdup("127.0.0.1:1");
	c->core = core_find("app");
	c->retention = 3;
	c->app_timeout_ms = 1000;
	c->heartbeat_ms = 1000;
	c->max_queue = 4;
	/* a job bound here is this very process (a local peer binds itself): never signalled */
	c->fence_none = true;
	if (gcslink_open(c, err, sizeof err) != 0)
		log_fatal("fuzz: the CTS's GCS link: %s", err);
	/* what gca-cts's main hangs on the link's events */
	gcslink_on(GCSLINK_REGISTERED | GCSLINK_BEAT, outbox_flush);
	gcslink_on(GCSLINK_REGISTERED | GCSLINK_BEAT, jobs_retry_unbind);
	gcslink_on(GCSLINK_REGISTERED | GCSLINK_BACK, fence_check);
	return c;
}

static void
fuzz_cts_close(void *ctx)
{
	struct cts *c = ctx;

	gcslink_close(c);
	proto_body_clear(proto_type_find("cts_register"), &c->reg);	/* as gca-cts's cts_free */
	jobs_free(c);
	outbox_free(c);
	retention_free(c);
	free(c->name);
	free(c->endpoint);
	free(c->state);
	free(c->ca_file);
	free(c->gcs_endpoint);
	free(c);
}

static void fuzz_gcs_to_cts(void *ctx) __attribute__((unused));
static void fuzz_cts_to_gcs(void *ctx) __attribute__((unused));

/* fuzz_server: the servers' tables; fuzz_client (this file built with FUZZ_CLIENT): the client
 * scenarios, apart because each input costs TLS handshakes (a few hundred times slower). */
static const struct fuzz_table fuzz_tables[] = {
#ifndef FUZZ_CLIENT
	{ "gcs", NULL, NULL, gcs_handlers, &gcs_nhandlers, fuzz_gcs_open, fuzz_gcs_on_close,
	    fuzz_gcs_close },
	{ "cts", NULL, NULL, cts_handlers, &cts_nhandlers, fuzz_cts_open, NULL, fuzz_cts_close },
	{ "cts-local", NULL, NULL, local_handlers, &local_nhandlers, fuzz_cts_open,
	    local_on_close, fuzz_cts_close },
#else
	{ "gcs>cts", fuzz_gcs_to_cts, "cts-fuzz-cts", gcs_handlers, &gcs_nhandlers, fuzz_gcs_open,
	    fuzz_gcs_on_close, fuzz_gcs_close },
	{ "cts>gcs", fuzz_cts_to_gcs, "gcs-fuzz-gcs", local_handlers, &local_nhandlers,
	    fuzz_cts_open, local_on_close, fuzz_cts_close },
#endif
};
#define FUZZ_NTABLES GCA_NITEMS(fuzz_tables)

/* Who calls: none (a certificate naming no known role), each certificate role, a local user. */
static const char *const fuzz_roles[] = { "none", "broker", "admin", "cts", "gcs", "local" };
#define FUZZ_NROLES GCA_NITEMS(fuzz_roles)
static const enum dir_status fuzz_dir_modes[] = { DIR_OK, DIR_OK, DIR_OK, DIR_OK, DIR_DOWN,
	DIR_CAS_LOST, DIR_NOT_FOUND, DIR_ERROR };

/* ---- counting ---- */

#define FUZZ_MAX_HANDLERS 32
static unsigned long fuzz_runs[FUZZ_NTABLES][FUZZ_NROLES];
static unsigned long fuzz_reached[FUZZ_NTABLES][FUZZ_MAX_HANDLERS][FUZZ_NROLES];
static unsigned long fuzz_errs[FUZZ_NTABLES][8];	/* the err codes the server sent */
static const char *const fuzz_err_names[] = { PROTO_E_BAD_FRAME, PROTO_E_UNKNOWN_TYPE,
	PROTO_E_FORBIDDEN, PROTO_E_BAD_FIELD, PROTO_E_MISSING_FIELD, PROTO_E_TOO_LARGE, "other",
	"ok" };
static unsigned long fuzz_execs;
static unsigned long fuzz_frames_in;	/* frames the server wrote back, this input */
/* client scenarios: connections made to hostile peers, frames the daemon sent them */
static unsigned long fuzz_connects[FUZZ_NTABLES], fuzz_asked[FUZZ_NTABLES];
static SSL_CTX *fuzz_ssl[2];	/* the hostile peers': as cts fuzz-cts, as gcs fuzz-gcs */
static SSL_CTX *fuzz_ssl_ctx(const char *who);

/* The one running input: the trampoline below finds its table and role here. */
static struct {
	size_t				 table, role;
	void				*ctx;
	struct event_base		*base;
	struct dir			*dir;		/* a GCS's, to wait for its answers */
	struct proto_conn		*conn;		/* NULL once closed */
	struct proto_handler		 wrapped[FUZZ_MAX_HANDLERS];
} fuzz_now;

/* Every entry of a wrapped table: count, then the daemon's own handler with its own context.
 * The role check has been made by proto_conn already, against the table's real roles. */
static void
fuzz_trampoline(struct proto_req *r, void *ctx)
{
	const struct fuzz_table *t = &fuzz_tables[fuzz_now.table];

	(void)ctx;
	for (size_t i = 0; i < *t->nhandlers; i++) {
		if (strcmp(t->handlers[i].type, r->pt->name) == 0) {
			fuzz_reached[fuzz_now.table][i][fuzz_now.role]++;
			t->handlers[i].handle(r, fuzz_now.ctx);
			return;
		}
	}
	log_fatal("fuzz: %s is not in table %s", r->pt->name, t->name);
}

static unsigned long fuzz_bases;

static void
fuzz_print(void)
{
	fprintf(stderr, "\n%s: %lu executions (event loops made: %lu, a new one after an input "
	    "left events on the last)\n", FUZZ_NAME, fuzz_execs, fuzz_bases);
	for (size_t t = 0; t < FUZZ_NTABLES; t++) {
		if (fuzz_tables[t].prelude != NULL) {
			unsigned long n = 0;
			for (size_t r = 0; r < FUZZ_NROLES; r++)
				n += fuzz_runs[t][r];
			fprintf(stderr, "table %-10s inputs %lu\n  hostile %s peers: %lu connections, "
			    "%lu frames the daemon sent them\n", fuzz_tables[t].name, n,
			    fuzz_tables[t].hostile_cert, fuzz_connects[t], fuzz_asked[t]);
			continue;
		}
		fprintf(stderr, "table %-10s inputs by role:", fuzz_tables[t].name);
		for (size_t r = 0; r < FUZZ_NROLES; r++)
			fprintf(stderr, " %s %lu", fuzz_roles[r], fuzz_runs[t][r]);
		fprintf(stderr, "\n  replies:");
		for (size_t e = 0; e < GCA_NITEMS(fuzz_err_names); e++)
			fprintf(stderr, " %s %lu", fuzz_err_names[e], fuzz_errs[t][e]);
		fprintf(stderr, "\n  %-18s", "handler reached by");
		for (size_t r = 0; r < FUZZ_NROLES; r++)
			fprintf(stderr, " %8s", fuzz_roles[r]);
		fprintf(stderr, "\n");
		for (size_t h = 0; h < *fuzz_tables[t].nhandlers; h++) {
			fprintf(stderr, "  %-18s", fuzz_tables[t].handlers[h].type);
			for (size_t r = 0; r < FUZZ_NROLES; r++)
				fprintf(stderr, " %8lu", fuzz_reached[t][h][r]);
			fprintf(stderr, "\n");
		}
	}
}

/* The state folder goes with the run (it holds only what this run made). */
static void
fuzz_cleanup(void)
{
	char *cmd;

	xasprintf(&cmd, "rm -rf '%s'", fuzz_state);
	if (system(cmd) != 0)
		log_warn("fuzz: cannot remove %s", fuzz_state);
	free(cmd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *cmd;

	(void)argc;
	(void)argv;
	log_init(FUZZ_NAME);
	log_set_level(getenv("FUZZ_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	snprintf(fuzz_state, sizeof fuzz_state, "%s/gca-fuzz-state.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(fuzz_state) == NULL)
		log_fatal("mkdtemp: %s", strerror(errno));
	/* A site of its own (scripts/gca-pki): the GCS signs grants with its certificate, the
	 * CTS's clients trust the CA; no input can sign a grant with it. */
	xasprintf(&cmd, "%s/scripts/gca-pki init %s >/dev/null && "
	    "%s/scripts/gca-pki issue %s gcs fuzz-gcs >/dev/null && "
	    "%s/scripts/gca-pki issue %s cts fuzz-cts >/dev/null", GCA_TOP_DIR, fuzz_state,
	    GCA_TOP_DIR, fuzz_state, GCA_TOP_DIR, fuzz_state);
	if (system(cmd) != 0)
		log_fatal("fuzz: scripts/gca-pki cannot make a site in %s", fuzz_state);
	free(cmd);
	fuzz_ssl[0] = fuzz_ssl_ctx("cts-fuzz-cts");
	fuzz_ssl[1] = fuzz_ssl_ctx("gcs-fuzz-gcs");
	for (size_t t = 0; t < FUZZ_NTABLES; t++)
		if (*fuzz_tables[t].nhandlers > FUZZ_MAX_HANDLERS)
			log_fatal("fuzz: table %s has over %d handlers", fuzz_tables[t].name,
			    FUZZ_MAX_HANDLERS);
	atexit(fuzz_cleanup);
	atexit(fuzz_print);
	return 0;
}

/* ---- TLS contexts, made once ----
 *
 * Every CTS opened for an input makes its GCS link's client, and the GCS's pool a client per CTS
 * it asks: each a tls_ctx_new, which reads and parses the CA, certificate and key from files (half
 * of the harness's time when it was made per input). The link is built with
 * -Wl,--wrap=tls_ctx_new (tests/fuzz/Makefile): the first context made for a set of files is
 * kept, and every later call gets a reference to it (SSL_CTX_free by its owner only drops that).
 * The files never change during a run, and tls_ctx_refresh still runs on the kept context.
 */
SSL_CTX *__real_tls_ctx_new(bool server, const struct proto_tls_files *files, char *err,
    size_t errlen);
SSL_CTX *__wrap_tls_ctx_new(bool server, const struct proto_tls_files *files, char *err,
    size_t errlen);

static struct {
	bool		 server;
	char		*ca, *cert, *key;
	SSL_CTX		*ctx;
} fuzz_tls_kept[8];

static bool
fuzz_tls_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

SSL_CTX *
__wrap_tls_ctx_new(bool server, const struct proto_tls_files *files, char *err, size_t errlen)
{
	size_t i;
	SSL_CTX *ctx;

	if (files == NULL)
		return __real_tls_ctx_new(server, files, err, errlen);
	for (i = 0; i < GCA_NITEMS(fuzz_tls_kept) && fuzz_tls_kept[i].ctx != NULL; i++) {
		if (fuzz_tls_kept[i].server == server && fuzz_tls_same(fuzz_tls_kept[i].ca, files->ca) &&
		    fuzz_tls_same(fuzz_tls_kept[i].cert, files->cert) &&
		    fuzz_tls_same(fuzz_tls_kept[i].key, files->key)) {
			SSL_CTX_up_ref(fuzz_tls_kept[i].ctx);
			return fuzz_tls_kept[i].ctx;
		}
	}
	if ((ctx = __real_tls_ctx_new(server, files, err, errlen)) == NULL ||
	    i == GCA_NITEMS(fuzz_tls_kept))
		return ctx;
	fuzz_tls_kept[i].server = server;
	fuzz_tls_kept[i].ca = files->ca ? xstrdup(files->ca) : NULL;
	fuzz_tls_kept[i].cert = files->cert ? xstrdup(files->cert) : NULL;
	fuzz_tls_kept[i].key = files->key ? xstrdup(files->key) : NULL;
	fuzz_tls_kept[i].ctx = ctx;
	SSL_CTX_up_ref(ctx);	/* the kept reference */
	return ctx;
}

/* ---- hostile peers: every connection a daemon makes ---- */

#define FUZZ_MAX_PEERS 8
static struct {
	const uint8_t		*bytes;		/* what each hostile peer writes */
	size_t			 len;
	struct bufferevent	*peers[FUZZ_MAX_PEERS];
	size_t			 npeers;
	struct evbuffer		*asked;		/* what the daemon sent them, decrypted */
} fuzz_hostile;
static SSL_CTX *
fuzz_ssl_ctx(const char *who)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char *crt, *key;

	xasprintf(&crt, "%s/%s.crt", fuzz_state, who);
	xasprintf(&key, "%s/%s.key", fuzz_state, who);
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		log_fatal("fuzz: cannot load %s", crt);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	/* no session cache: it would grow with every input (and be scanned for leaks each time) */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	free(crt);
	free(key);
	return ctx;
}

static void
fuzz_hostile_on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_add_buffer(fuzz_hostile.asked, bufferevent_get_input(bev));
}

static void
fuzz_hostile_on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	(void)arg;
}

/*
 * Interposed (the executable's definition wins over libevent's): the one way any daemon code
 * connects. Outside a client scenario it refuses; in one, the connection is a socketpair whose
 * other end is a hostile peer over real TLS, showing the scenario's certificate.
 */
int bufferevent_socket_connect(struct bufferevent *bev, const struct sockaddr *sa, int socklen);
int
bufferevent_socket_connect(struct bufferevent *bev, const struct sockaddr *sa, int socklen)
{
	const struct fuzz_table *t = &fuzz_tables[fuzz_now.table];
	struct bufferevent *peer;
	SSL *ssl;
	int sv[2];

	(void)sa;
	(void)socklen;
	if (t->prelude == NULL || fuzz_hostile.npeers == FUZZ_MAX_PEERS)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	fuzz_connects[fuzz_now.table]++;
	bufferevent_setfd(bev, sv[0]);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	ssl = SSL_new(fuzz_ssl[strcmp(t->hostile_cert, "cts-fuzz-cts") == 0 ? 0 : 1]);
	peer = bufferevent_openssl_socket_new(bufferevent_get_base(bev), sv[1], ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(peer, fuzz_hostile_on_read, NULL, fuzz_hostile_on_event, NULL);
	bufferevent_enable(peer, EV_READ | EV_WRITE);
	bufferevent_write(peer, fuzz_hostile.bytes, fuzz_hostile.len);
	fuzz_hostile.peers[fuzz_hostile.npeers++] = peer;
	return 0;
}

#ifdef FUZZ_RELAYED
/*
 * fuzz_client_relayed (built with FUZZ_RELAYED and -Wl,--wrap=proto_relay_on,--wrap=
 * proto_relay_dial): the same scenarios with no TLS. Every client connects as a
 * privilege-separated CTS's does, through its network process (proto/client.c,
 * proto_client_connect_relayed), played here: the socketpair's other end is the hostile peer,
 * which says net_up as the server asked for and then writes the input's bytes, unfiltered (the
 * relay is fuzz_relay's). The client's reader and decoders are the same as over TLS; a
 * handshake per connection is not, and that was most of fuzz_client's time.
 */
static int fuzz_relayed_fds[FUZZ_MAX_PEERS];

bool __wrap_proto_relay_on(void);
int  __wrap_proto_relay_dial(const char *endpoint, const char *role, const char *name, char *err,
    size_t errlen);

bool
__wrap_proto_relay_on(void)
{
	return true;
}

int
__wrap_proto_relay_dial(const char *endpoint, const char *role, const char *name, char *err,
    size_t errlen)
{
	const struct fuzz_table *t = &fuzz_tables[fuzz_now.table];
	const char *who = strchr(t->hostile_cert, '-') + 1;	/* "cts-fuzz-cts": fuzz-cts */
	struct msg_net up = { endpoint, role, name != NULL ? name : who };
	uint8_t *frame;
	size_t len;
	int sv[2];

	if (t->prelude == NULL || fuzz_hostile.npeers == FUZZ_MAX_PEERS ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "cannot connect to %s", endpoint);
		return -1;
	}
	fuzz_connects[fuzz_now.table]++;
	if (proto_encode("net_up", 0, proto_type_find("net_up"), &up, &frame, &len) != 0)
		log_fatal("fuzz: cannot encode net_up");
	/* the input is a few KiB at most: it fits the socket's buffer */
	if (write(sv[1], frame, len) != (ssize_t)len || (fuzz_hostile.len > 0 &&
	    write(sv[1], fuzz_hostile.bytes, fuzz_hostile.len) != (ssize_t)fuzz_hostile.len))
		log_fatal("fuzz: a short write to the socketpair");
	free(frame);
	fuzz_relayed_fds[fuzz_hostile.npeers++] = sv[1];
	return sv[0];
}
#endif

static void
fuzz_hostile_free(void)
{
	for (size_t i = 0; i < fuzz_hostile.npeers; i++) {
#ifdef FUZZ_RELAYED
		uint8_t buf[65536];
		ssize_t n;
		/* what the daemon sent this peer */
		while ((n = read(fuzz_relayed_fds[i], buf, sizeof buf)) > 0)
			evbuffer_add(fuzz_hostile.asked, buf, (size_t)n);
		close(fuzz_relayed_fds[i]);
#else
		bufferevent_free(fuzz_hostile.peers[i]);
#endif
	}
	fuzz_hostile.npeers = 0;
	if (fuzz_hostile.asked != NULL) {
		uint8_t hdr[PROTO_HEADER];
		/* the frames the daemon sent its hostile peers */
		while (evbuffer_copyout(fuzz_hostile.asked, hdr, sizeof hdr) == sizeof hdr) {
			long n = proto_frame_length(hdr, PROTO_MAX_FRAME);
			if (n < 0 || evbuffer_get_length(fuzz_hostile.asked) < PROTO_HEADER + (size_t)n)
				break;
			evbuffer_drain(fuzz_hostile.asked, PROTO_HEADER + (size_t)n);
			fuzz_asked[fuzz_now.table]++;
		}
		evbuffer_free(fuzz_hostile.asked);
		fuzz_hostile.asked = NULL;
	}
}

/* ---- the client scenarios' preludes: real frames from their real callers ---- */

/* A peer of the scenario's server as role, sending one frame; its fd is left to fuzz_peer_free. */
static int fuzz_side_fds[4];
static size_t fuzz_nside;

static void
fuzz_side_send(const char *role, const char *type, const void *body)
{
	const struct fuzz_table *t = &fuzz_tables[fuzz_now.table];
	struct proto_conn_ops ops = { 0 };
	struct proto_peer peer = { 0 };
	struct event_base *base = t->open == fuzz_gcs_open ?
	    ((struct gcs *)fuzz_now.ctx)->base : ((struct cts *)fuzz_now.ctx)->base;
	uint8_t *frame;
	size_t len;
	int sv[2];

	if (fuzz_nside == GCA_NITEMS(fuzz_side_fds) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return;
	snprintf(peer.role, sizeof peer.role, "%s", role);
	snprintf(peer.name, sizeof peer.name, "fuzz-%s", role);
	peer.uid = getuid();
	peer.gid = getgid();
	peer.pid = getpid();
	peer.local = strcmp(role, "local") == 0;
	ops.handlers = t->handlers;
	ops.nhandlers = *t->nhandlers;
	ops.ctx = fuzz_now.ctx;
	ops.idle_timeout_ms = 60000;
	proto_conn_new(base, bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE), &ops, &peer);
	fuzz_side_fds[fuzz_nside++] = sv[1];
	if (proto_encode(type, 1, proto_type_find(type), body, &frame, &len) == 0) {
		if (write(sv[1], frame, len) != (ssize_t)len)
			log_warn("fuzz: a short write");
		free(frame);
	}
}

static void fuzz_settle(struct event_base *base, struct dir *d, int fd, struct evbuffer *got);

/* Everything the prelude started answered, the side peers' replies read and dropped. */
static void
fuzz_settle_sides(void)
{
	for (size_t i = 0; i < fuzz_nside; i++) {
		struct evbuffer *got = evbuffer_new();	/* each its own stream of frames */
		fuzz_settle(fuzz_now.base, fuzz_now.dir, fuzz_side_fds[i], got);
		evbuffer_free(got);
	}
	fuzz_settle(fuzz_now.base, fuzz_now.dir, -1, NULL);
}

/* Without TLS the hostile answer is in within a few turns of the loop, not a handshake later;
 * the deadline is most of an input's time where the answer settles nothing. */
#ifdef FUZZ_RELAYED
#define FUZZ_BROKER_DEADLINE_MS 2
#else
#define FUZZ_BROKER_DEADLINE_MS 25
#endif

static void
fuzz_gcs_to_cts(void *ctx)
{
	struct msg_cts_register reg = { .name = "fuzz-cts", .endpoint = "127.0.0.1:7391",
		.exec_manager = "fork", .core_service = "app", .external = true, .status = "ok" };
	struct msg_job_bind bind = { .gid = "job1", .cts = "fuzz-cts", .local_id = "1:2",
		.owner = "1000" };
	/* a short deadline: a route the hostile CTS leaves hanging is answered soon (timeout);
	 * the hostile answer, over a socketpair in this process, comes well before it */
	struct msg_do_checkpoint ck = { .gid = "job1", .idem_key = "k1",
		.timeout_ms = FUZZ_BROKER_DEADLINE_MS };

	(void)ctx;
	fuzz_side_send("cts", "cts_register", &reg);
	fuzz_settle_sides();
	fuzz_side_send("cts", "job_bind", &bind);
	fuzz_settle_sides();
	fuzz_side_send("broker", "do_checkpoint", &ck);
	fuzz_settle_sides();
}

static void
fuzz_cts_to_gcs(void *ctx)
{
	struct msg_local_bind bind = { .gid = "job1", .pid = (uint64_t)getpid() };

	gcslink_tick(ctx);	/* cts_register */
	fuzz_settle_sides();
	fuzz_side_send("local", "local_bind", &bind);	/* job_bind */
	fuzz_settle_sides();
	gcslink_tick(ctx);	/* cts_heartbeat, or cts_register again */
	fuzz_settle_sides();
}

/* ---- one input ---- */

static void
fuzz_on_close(struct proto_conn *c, const char *why, void *arg)
{
	const struct fuzz_table *t = &fuzz_tables[fuzz_now.table];

	(void)why;
	(void)arg;
	if (t->on_close != NULL)
		t->on_close(c, fuzz_now.ctx);
	fuzz_now.conn = NULL;
}

/* What the server wrote: whole frames must decode; the err codes are counted. */
static size_t
fuzz_read_replies(int fd, struct evbuffer *got)
{
	uint8_t buf[65536], hdr[PROTO_HEADER];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0) {
		evbuffer_add(got, buf, (size_t)n);
		total += (size_t)n;
	}
	while (evbuffer_copyout(got, hdr, sizeof hdr) == sizeof hdr) {
		long len = proto_frame_length(hdr, PROTO_MAX_FRAME);
		struct proto_msg m;
		const char *code;
		char err[256];
		uint8_t *payload;
		size_t e;

		if (len < 0)
			log_fatal("fuzz: the server wrote a frame over the limit");
		if (evbuffer_get_length(got) < PROTO_HEADER + (size_t)len)
			break;
		evbuffer_drain(got, PROTO_HEADER);
		payload = xmalloc((size_t)len + 1);
		evbuffer_remove(got, payload, (size_t)len);
		if (proto_decode(payload, (size_t)len, NULL, &m, &code, err, sizeof err) != 0)
			log_fatal("fuzz: the server wrote a frame that does not decode: %s", err);
		free(payload);
		e = GCA_NITEMS(fuzz_err_names) - 1;
		if (strcmp(m.type, "err") == 0) {
			const struct msg_err *me = m.body;
			for (e = 0; e < GCA_NITEMS(fuzz_err_names) - 2; e++)
				if (me != NULL && me->code != NULL && strcmp(me->code, fuzz_err_names[e]) == 0)
					break;
		}
		fuzz_errs[fuzz_now.table][e]++;
		fuzz_frames_in++;
		proto_msg_free(&m);
	}
	return total;
}

/* Turns of the loop until nothing more happens (bounded: a hang is a failure of its own). */
static void
fuzz_settle(struct event_base *base, struct dir *d, int fd, struct evbuffer *got)
{
	/* a TLS handshake with a hostile peer takes turns that read nothing here */
	int quiet = 0, enough = fuzz_hostile.npeers > 0 ? 8 : 3;

	for (int i = 0; i < 200 && quiet < enough; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((fd >= 0 && fuzz_read_replies(fd, got) > 0) || (d != NULL && dir_queued(d) > 0))
			quiet = 0;
		else
			quiet++;
	}
}

/*
 * The loop, kept from input to input while each leaves it empty (making one per input cost a
 * tenth of the time): an input whose daemon left an event on it (a timer, a connection) gets
 * that loop freed, as before, and the next input a new one, so nothing of one input runs in
 * another.
 */
static struct event_base *fuzz_kept_base;

static struct event_base *
fuzz_base(void)
{
	if (fuzz_kept_base == NULL) {
		if ((fuzz_kept_base = event_base_new()) == NULL)
			log_fatal("fuzz: event_base_new failed");
		fuzz_bases++;
	}
	return fuzz_kept_base;
}

static void
fuzz_base_done(struct event_base *base)
{
	if (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE |
	    EVENT_BASE_COUNT_VIRTUAL) == 0)
		return;
	event_base_free(base);
	fuzz_kept_base = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_table *t;
	struct event_base *base;
	struct bufferevent *bev;
	struct evbuffer *got;
	struct proto_peer peer = { 0 };
	struct proto_conn_ops ops = { 0 };
	struct dir *d;
	int sv[2];

	if (size < 3)
		return 0;
	fuzz_execs++;
	fuzz_frames_in = 0;
	memset(&fuzz_now, 0, sizeof fuzz_now);
	fuzz_now.table = data[0] % FUZZ_NTABLES;
	fuzz_now.role = data[1] % FUZZ_NROLES;
	t = &fuzz_tables[fuzz_now.table];
	fuzz_runs[fuzz_now.table][fuzz_now.role]++;
	fake_dir_reset();
	fake_dir_fail(fuzz_dir_modes[data[2] % GCA_NITEMS(fuzz_dir_modes)]);

	base = fuzz_base();
	fuzz_now.base = base;
	fuzz_now.ctx = t->open(base);
	/* the GCS's directory, to know when its answers are all in */
	d = fuzz_now.dir = t->open == fuzz_gcs_open ? ((struct gcs *)fuzz_now.ctx)->dir : NULL;
	got = evbuffer_new();
	sv[1] = -1;
	if (t->prelude != NULL) {
		/* a client scenario: the input is what its hostile peers answer */
		fuzz_hostile.bytes = data + 3;
		fuzz_hostile.len = size - 3;
		fuzz_hostile.asked = evbuffer_new();
		t->prelude(fuzz_now.ctx);	/* its callers stay connected for their answers */
		fuzz_settle_sides();
		fuzz_hostile_free();	/* the peers hang up: what was pending fails */
		fuzz_settle_sides();
		/* Every request of the prelude is answered, if only by its deadline (a daemon never
		 * leaves a caller hanging): waited for, within 5 s (a loaded machine's margin over
		 * the 25 ms deadline), else a hang. */
		for (uint64_t until = time_mono_ms() + 5000; fuzz_frames_in < fuzz_nside;) {
			struct timeval tick = { 0, 1000 };
			if (time_mono_ms() > until)
				log_fatal("fuzz: %s: a caller of the prelude got no answer within 5 s",
				    t->name);
			event_base_loopexit(base, &tick);
			event_base_loop(base, EVLOOP_ONCE);
			fuzz_settle_sides();
		}
		for (size_t i = 0; i < fuzz_nside; i++)
			close(fuzz_side_fds[i]);
		fuzz_nside = 0;
		fuzz_settle(base, d, -1, got);
		goto close;
	}
	for (size_t i = 0; i < *t->nhandlers; i++) {
		fuzz_now.wrapped[i] = t->handlers[i];
		fuzz_now.wrapped[i].handle = fuzz_trampoline;
	}
	if (strcmp(fuzz_roles[fuzz_now.role], "local") == 0) {
		snprintf(peer.role, sizeof peer.role, "local");
		snprintf(peer.name, sizeof peer.name, "uid %u", (unsigned)getuid());
		peer.uid = getuid();
		peer.gid = getgid();
		peer.pid = getpid();
		peer.local = true;
	} else {
		/* "none": a certificate with no known role (TLS refuses it; dispatch must too) */
		snprintf(peer.role, sizeof peer.role, "%s", fuzz_roles[fuzz_now.role]);
		snprintf(peer.name, sizeof peer.name, "fuzz-%s", fuzz_roles[fuzz_now.role]);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		log_fatal("socketpair: %s", strerror(errno));
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	ops.handlers = fuzz_now.wrapped;
	ops.nhandlers = *t->nhandlers;
	ops.ctx = fuzz_now.ctx;
	ops.on_close = fuzz_on_close;
	ops.idle_timeout_ms = 60000;
	fuzz_now.conn = proto_conn_new(base, bev, &ops, &peer);

	if (write(sv[1], data + 3, size - 3) != (ssize_t)(size - 3))
		log_fatal("fuzz: a short write to the socketpair");
	fuzz_settle(base, d, sv[1], got);
	shutdown(sv[1], SHUT_WR);	/* the peer leaves; late replies are dropped */
	fuzz_settle(base, d, sv[1], got);
	if (fuzz_now.conn != NULL) {	/* still open: what a server's free does */
		if (t->on_close != NULL)
			t->on_close(fuzz_now.conn, fuzz_now.ctx);
		proto_conn_kill(fuzz_now.conn);
	}
	fuzz_settle(base, d, -1, got);
	close(sv[1]);
close:
	evbuffer_free(got);
	t->close(fuzz_now.ctx);
	fuzz_settle(base, NULL, -1, NULL);	/* what the close let go of */
	fuzz_base_done(base);
	fake_dir_reset();
	return 0;
}
