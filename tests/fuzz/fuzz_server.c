/*
 * libFuzzer target: bytes through the real connection layer into the servers' dispatch tables.
 *
 * Input: byte 0 picks the table (fuzz_tables), byte 1 the caller's role (fuzz_roles), byte 2 how
 * the directory answers (fake_dir.c: from its tree, or down, or a lost compare-and-swap, ...); the
 * rest is what the peer writes, as it is, on a socketpair whose other end is a real proto_conn
 * (proto/conn.c: its reader, frame checks, role checks and dispatch) serving that table with the
 * daemon's real handlers. No TLS: the peer's identity is set as TLS or SO_PEERCRED would set it.
 * What the server writes back is read and decoded (a reply that does not decode is a bug too).
 *
 * Faked, here only: the directory (fake_dir.c), and a CTS's surroundings (no GCS link, no jobs
 * running, a state folder under /tmp, no site CA: grants never verify). A GCS has no TLS files,
 * so it can never connect out to an endpoint a hostile cts_register names.
 *
 * Adding a table (the CTS's privileged side, say) is one entry in fuzz_tables: its handlers, and
 * how to make and free the context they take.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the tables ---- */

struct fuzz_table {
	const char			*name;
	const struct proto_handler	*handlers;
	const size_t			*nhandlers;
	void	*(*open)(struct event_base *base);
	void	 (*on_close)(struct proto_conn *c, void *ctx);	/* the server's, or NULL */
	void	 (*close)(void *ctx);
};

static void *
fuzz_gcs_open(struct event_base *base)
{
	struct gcs *g = xcalloc(1, sizeof *g);
	char err[256];

	g->base = base;
	g->name = xstrdup("fuzz-gcs");
	g->listen = xstrdup("127.0.0.1:0");
	g->endpoint = xstrdup("127.0.0.1:7390");
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
	free(g);
}

static char fuzz_state[4096];	/* the CTS's state folder, made once in $TMPDIR */

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
	/* its GCS link: a real client, to a loopback port where nothing listens */
	c->gcs_endpoint = xstrdup("127.0.0.1:1");
	c->core = core_find("app");
	c->retention = 3;
	c->app_timeout_ms = 1000;
	c->heartbeat_ms = 1000;
	c->max_queue = 4;
	if (gcslink_open(c, err, sizeof err) != 0)
		log_fatal("fuzz: the CTS's GCS link: %s", err);
	return c;
}

static void
fuzz_cts_close(void *ctx)
{
	struct cts *c = ctx;

	gcslink_close(c);
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

static const struct fuzz_table fuzz_tables[] = {
	{ "gcs", gcs_handlers, &gcs_nhandlers, fuzz_gcs_open, fuzz_gcs_on_close, fuzz_gcs_close },
	{ "cts", cts_handlers, &cts_nhandlers, fuzz_cts_open, NULL, fuzz_cts_close },
	{ "cts-local", local_handlers, &local_nhandlers, fuzz_cts_open, local_on_close,
	    fuzz_cts_close },
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

/* The one running input: the trampoline below finds its table and role here. */
static struct {
	size_t				 table, role;
	void				*ctx;
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

static void
fuzz_print(void)
{
	fprintf(stderr, "\nfuzz_server: %lu executions\n", fuzz_execs);
	for (size_t t = 0; t < FUZZ_NTABLES; t++) {
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
	log_init("fuzz_server");
	log_set_level(getenv("FUZZ_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	snprintf(fuzz_state, sizeof fuzz_state, "%s/gca-fuzz-state.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(fuzz_state) == NULL)
		log_fatal("mkdtemp: %s", strerror(errno));
	/* a CA of its own, that nothing here signs with: the CTS's clients need one to exist, and
	 * no grant the fuzzer writes verifies against it */
	xasprintf(&cmd, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-subj /CN=fuzz-ca -days 2 -keyout %s/ca.key -out %s/ca.crt 2>/dev/null", fuzz_state,
	    fuzz_state);
	if (system(cmd) != 0)
		log_fatal("fuzz: cannot make a CA with openssl");
	free(cmd);
	for (size_t t = 0; t < FUZZ_NTABLES; t++)
		if (*fuzz_tables[t].nhandlers > FUZZ_MAX_HANDLERS)
			log_fatal("fuzz: table %s has over %d handlers", fuzz_tables[t].name,
			    FUZZ_MAX_HANDLERS);
	atexit(fuzz_cleanup);
	atexit(fuzz_print);
	return 0;
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
		proto_msg_free(&m);
	}
	return total;
}

/* Turns of the loop until nothing more happens (bounded: a hang is a failure of its own). */
static void
fuzz_settle(struct event_base *base, struct dir *d, int fd, struct evbuffer *got)
{
	int quiet = 0;

	for (int i = 0; i < 200 && quiet < 3; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((fd >= 0 && fuzz_read_replies(fd, got) > 0) || (d != NULL && dir_queued(d) > 0))
			quiet = 0;
		else
			quiet++;
	}
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
	memset(&fuzz_now, 0, sizeof fuzz_now);
	fuzz_now.table = data[0] % FUZZ_NTABLES;
	fuzz_now.role = data[1] % FUZZ_NROLES;
	t = &fuzz_tables[fuzz_now.table];
	fuzz_runs[fuzz_now.table][fuzz_now.role]++;
	fake_dir_reset();
	fake_dir_fail(fuzz_dir_modes[data[2] % GCA_NITEMS(fuzz_dir_modes)]);

	base = event_base_new();
	fuzz_now.ctx = t->open(base);
	/* the GCS's directory, to know when its answers are all in */
	d = t->open == fuzz_gcs_open ? ((struct gcs *)fuzz_now.ctx)->dir : NULL;
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

	got = evbuffer_new();
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
	evbuffer_free(got);
	t->close(fuzz_now.ctx);
	event_base_free(base);
	fake_dir_reset();
	return 0;
}
