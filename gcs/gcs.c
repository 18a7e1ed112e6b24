/*
 * gca-gcs: the Grid Checkpoint Service.
 *
 * usage: gca-gcs [-f gcs.conf] [--name N] [--listen HOST:PORT] [--endpoint HOST:PORT]
 *                [--ca F] [--cert F] [--key F] [--directory F] [--port-file F]
 *                [--cts-timeout S] [--request-timeout S] [--directory-timeout S]
 *                [--subscriber-backlog BYTES] [--directory-transactions yes|no]
 *                [--idle-timeout S] [--handshake-timeout S] [--max-peer-connections N]
 *                [--max-handshakes N] [--glue-base DN] [--glue-domain NAME]
 *                [--glue-validity S] [--metrics-listen HOST:PORT] [-d]
 *
 * Flags win over the config file ("key value" lines with the same names, '-' written '_': name,
 * listen, endpoint, ca, cert, key, directory, cts_timeout, request_timeout, directory_timeout,
 * subscriber_backlog, directory_transactions, idle_timeout, handshake_timeout,
 * max_peer_connections, max_handshakes, glue_base, glue_domain, glue_validity, metrics_listen;
 * times in seconds, the backlog in bytes). glue_base (e.g. GLUE2GroupID=resource,o=glue) turns on
 * the GLUE 2.0 view (glue.c).
 * --directory names the GCS's directory identity file (uri, binddn, password, base), as
 * scripts/gca-site writes it.
 */
#include <event2/event.h>
#include <strings.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "gcs/gcs.h"

const struct proto_handler gcs_handlers[] = {
	{ "ping", PROTO_ROLE_ANY & ~PROTO_ROLE_LOCAL, proto_server_ping },
	{ "cts_register", PROTO_ROLE_CTS, registry_cts_register },
	{ "cts_heartbeat", PROTO_ROLE_CTS, registry_cts_heartbeat },
	{ "cts_remove", PROTO_ROLE_ADMIN, registry_cts_remove },
	{ "class_register", PROTO_ROLE_ADMIN, registry_class_register },
	{ "job_bind", PROTO_ROLE_CTS, bind_job_bind },
	{ "job_unbind", PROTO_ROLE_CTS, bind_job_unbind },
	{ "do_checkpoint", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN, router_do_checkpoint },
	{ "checkpoint_log", PROTO_ROLE_CTS, record_checkpoint_log },
	{ "query", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN | PROTO_ROLE_CTS, query_handle },
	{ "subscribe", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN, notify_subscribe },
	{ "image_grant", PROTO_ROLE_CTS, grant_image },
	{ "image_location", PROTO_ROLE_CTS, grant_location },
	{ "image_gc", PROTO_ROLE_ADMIN, grant_gc },
	{ "audit", PROTO_ROLE_ADMIN, audit_handle },
};
const size_t gcs_nhandlers = GCA_NITEMS(gcs_handlers);

static const char gcs_usage[] =
    "usage: gca-gcs [-f gcs.conf] [--name N] [--listen HOST:PORT] [--endpoint HOST:PORT]\n"
    "               [--ca F] [--cert F] [--key F] [--directory F] [--port-file F]\n"
    "               [--cts-timeout S] [--request-timeout S] [--directory-timeout S]\n"
    "               [--subscriber-backlog BYTES] [--directory-transactions yes|no]\n"
    "               [--idle-timeout S] [--handshake-timeout S] [--max-peer-connections N]\n"
    "               [--max-handshakes N] [--glue-base DN] [--glue-domain NAME]\n"
    "               [--glue-validity S] [--metrics-listen HOST:PORT] [-d]\n";

/* relay.c saw a binding made here lose to one made at once elsewhere: the losing CTS is told, so
 * it stops its copy (one live copy). Registered here, so relay.c calls no file above it. */
static void
gcs_on_bind_lost(const char *gid, const char *lost_cts, const char *cts, void *arg)
{
	moved_tell(arg, lost_cts, gid, cts, NULL);
}

static void
gcs_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	registry_tick(arg);
	relay_tick(arg);
	glue_tick(arg);
}

static void
gcs_on_stopped(const struct dir_result *r, void *arg)
{
	struct gcs *g = arg;

	if (r->status != DIR_OK)
		log_warn("cannot mark %s stopped in ou=services: %s", g->name, r->msg);
	glue_written(g, r);
	event_base_loopexit(g->base, NULL);
}

/*
 * A clean stop says so in ou=services (brokers then know this GCS is gone, not silent), giving
 * the directory two seconds; a second signal stops at once. A crash leaves "ok": the entry's
 * status is a state change written by the GCS itself, never a timed heartbeat (docs/DESIGN.md,
 * "Liveness is not a directory write").
 */
static void
gcs_on_signal(evutil_socket_t sig, short what, void *arg)
{
	static const struct timeval grace = { 2, 0 };
	struct gcs *g = arg;

	(void)what;
	if (g->stopping) {
		event_base_loopexit(g->base, NULL);
		return;
	}
	g->stopping = true;
	evtimer_del(g->publish);
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(g->base, &grace);
	dir_service_publish_view(g->dir, g->name, g->endpoint, "stopped", glue_gcs_view(g, "stopped"),
	    gcs_on_stopped, g);
}

static void
gcs_on_conn_close(struct proto_conn *c, void *ctx)
{
	notify_drop(ctx, c);
}

/* Every setting of gcs.conf has its flag: --cts-timeout is cts_timeout. */
static const char *const gcs_keys[] = {
	"name", "listen", "endpoint", "ca", "cert", "key", "directory", "cts_timeout",
	"request_timeout", "directory_timeout", "subscriber_backlog", "directory_transactions",
	"idle_timeout", "handshake_timeout", "max_peer_connections", "max_handshakes",
	"glue_base", "glue_domain", "glue_validity", "metrics_listen",
};

struct gcs_opts {
	const char	*conf, *port_file;
	struct config	 flags;		/* the settings given as flags, which win over the file */
	bool		 debug;
};

static void
gcs_flag_add(struct config *c, const char *key, const char *value)
{
	struct config_entry *e;

	c->entries = xreallocarray(c->entries, c->n + 1, sizeof *e);
	e = &c->entries[c->n++];
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	e->line = 0;
}

static int
gcs_parse_args(int argc, char **argv, struct gcs_opts *o)
{
	o->flags.path = xstrdup("the command line");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *key = NULL;
		char name[64];
		bool known;

		if (strcmp(a, "-d") == 0) {
			o->debug = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(gcs_usage, stdout);
			exit(0);
		}
		for (size_t k = 0; k < GCA_NITEMS(gcs_keys) && strncmp(a, "--", 2) == 0; k++) {
			snprintf(name, sizeof name, "%s", gcs_keys[k]);
			for (char *p = name; *p != '\0'; p++)
				*p = *p == '_' ? '-' : *p;
			if (strcmp(a + 2, name) == 0)
				key = gcs_keys[k];
		}
		known = key != NULL || strcmp(a, "-f") == 0 || strcmp(a, "--port-file") == 0;
		if (!known || i + 1 >= argc) {
			fprintf(stderr, "gca-gcs: %s: %s\n%s", a, known ? "needs a value" :
			    "unknown option", gcs_usage);
			return -1;
		}
		if (key != NULL)
			gcs_flag_add(&o->flags, key, argv[++i]);
		else if (strcmp(a, "-f") == 0)
			o->conf = argv[++i];
		else
			o->port_file = argv[++i];
	}
	return 0;
}

/* A setting: the flag, else the config file, else the default. */
static char *
gcs_setting(const struct config *flags, const struct config *c, const char *key, const char *def)
{
	const char *v = config_get(flags, key);

	v = v ? v : config_get(c, key);
	v = v ? v : def;
	return v ? xstrdup(v) : NULL;
}

/* A number setting (flag, file, default) times scale; exits with a clear message if bad. */
static long
gcs_number(const struct config *flags, const struct config *c, const char *key, long min,
    long max, long def, long scale)
{
	const struct config *from = config_get(flags, key) ? flags : c;
	char err[512];
	long n = def;

	if (config_get_int(from, key, min, max, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	return n * scale;
}

/* Publishing in ou=services is tried until it works: a GCS started while the directory is down
 * shows up there once it is back (from the directory thread; the loop never waits). */
static void gcs_publish(evutil_socket_t fd, short what, void *arg);

static void
gcs_on_published(const struct dir_result *r, void *arg)
{
	struct gcs *g = arg;
	struct timeval tv = { g->publish_backoff_s, 0 };

	if (r->status == DIR_OK) {
		log_info("published %s at %s in ou=services", g->name, g->endpoint);
		return;
	}
	log_warn("cannot publish %s in ou=services: %s (trying again in %d s)", g->name, r->msg,
	    g->publish_backoff_s);
	evtimer_add(g->publish, &tv);
	g->publish_backoff_s = g->publish_backoff_s < 16 ? g->publish_backoff_s * 2 : 30;
}

static void
gcs_publish(evutil_socket_t fd, short what, void *arg)
{
	struct gcs *g = arg;

	(void)fd;
	(void)what;
	if (!g->stopping)
		dir_service_publish(g->dir, g->name, g->endpoint, "ok", gcs_on_published, g);
}

int
main(int argc, char **argv)
{
	struct gcs g = { 0 };
	struct gcs_opts o = { 0 };
	struct config cf = { 0 };
	struct proto_server_config scfg = { 0 }, limits = { 0 };
	struct event *sigint, *sigterm;
	struct timeval second = { 1, 0 };
	char err[512], *dirfile, *metrics_listen, *tls_ca, *tls_cert, *tls_key;

	log_init(argv[0]);
	if (gcs_parse_args(argc, argv, &o) != 0)
		return 2;
	if (o.debug)
		log_set_level(LOG_DEBUG);
	if (o.conf != NULL && config_load(&cf, o.conf, err, sizeof err) != 0)
		log_fatal("%s", err);
	g.name = gcs_setting(&o.flags, &cf, "name", "gcs");
	g.listen = gcs_setting(&o.flags, &cf, "listen", "127.0.0.1:7390");
	g.tls.ca = tls_ca = gcs_setting(&o.flags, &cf, "ca", NULL);
	g.tls.cert = tls_cert = gcs_setting(&o.flags, &cf, "cert", NULL);
	g.tls.key = tls_key = gcs_setting(&o.flags, &cf, "key", NULL);
	dirfile = gcs_setting(&o.flags, &cf, "directory", NULL);
	metrics_listen = gcs_setting(&o.flags, &cf, "metrics_listen", NULL);	/* unset: off */
	g.cts_timeout_ms = (int)gcs_number(&o.flags, &cf, "cts_timeout", 1, 3600, 15, 1000);
	/* Clearly shorter than gca-ctl's 60 s: the broker hears the GCS's own `timeout`. */
	g.request_timeout_ms = (int)gcs_number(&o.flags, &cf, "request_timeout", 1, 3600, 30, 1000);
	g.subscriber_backlog = (size_t)gcs_number(&o.flags, &cf, "subscriber_backlog", 4096,
	    1L << 30, 1024 * 1024, 1);
	limits.idle_timeout_ms = (int)gcs_number(&o.flags, &cf, "idle_timeout", 1, 86400, 300, 1000);
	limits.handshake_timeout_ms = (int)gcs_number(&o.flags, &cf, "handshake_timeout", 1, 600, 10,
	    1000);
	limits.max_per_peer = (int)gcs_number(&o.flags, &cf, "max_peer_connections", 0, 1000000, 64,
	    1);
	limits.max_handshakes = (int)gcs_number(&o.flags, &cf, "max_handshakes", 1, 1000000, 256, 1);
	/* The GLUE 2.0 view (docs/GLUE.md): off unless glue_base names where it goes. */
	g.glue_base = gcs_setting(&o.flags, &cf, "glue_base", NULL);
	g.glue_domain = gcs_setting(&o.flags, &cf, "glue_domain", NULL);
	g.glue_validity_s = (int)gcs_number(&o.flags, &cf, "glue_validity", 4, 86400, 600, 1);
	if (g.tls.ca == NULL || g.tls.cert == NULL || g.tls.key == NULL || dirfile == NULL) {
		fprintf(stderr, "gca-gcs: ca, cert, key and directory must be given\n%s", gcs_usage);
		return 2;
	}
	if (dir_config_load(&g.dircfg, dirfile, err, sizeof err) != 0)
		log_fatal("%s", err);
	/* How long a directory operation may wait before the caller is told the directory is down. */
	g.dircfg.op_timeout_ms = (int)gcs_number(&o.flags, &cf, "directory_timeout", 1, 600, 10, 1000);
	if (config_get_bool(config_get(&o.flags, "directory_transactions") ? &o.flags : &cf,
	    "directory_transactions", false, &g.dircfg.transactions, err, sizeof err) != 0)
		log_fatal("%s", err);
	if (g.dircfg.transactions)
		log_warn("directory_transactions yes: Debian 12's slapd 2.5.13 was seen to die under "
		    "RFC 5805 transactions (docs/BENCHMARKS.md); keep them for a slapd known to survive");
	signal(SIGPIPE, SIG_IGN);
	g.base = event_base_new();
	if ((g.dir = dir_open(g.base, &g.dircfg, err, sizeof err)) == NULL)
		log_fatal("directory: %s", err);
	if (cache_open(&g, err, sizeof err) != 0)
		log_fatal("directory feed: %s", err);
	if (relay_open(&g, gcs_on_bind_lost, &g, err, sizeof err) != 0)
		log_fatal("directory feed: %s", err);
	if (registry_open(&g, err, sizeof err) != 0)
		log_fatal("directory feed: %s", err);
	if (glue_open(&g, err, sizeof err) != 0)
		log_fatal("%s", err);
	/*
	 * Limits a peer cannot break (docs/ARCHITECTURE.md, "Limits"). A CTS's link is never cut
	 * for being quiet (its heartbeat may be set longer than the idle timeout); subscriptions are
	 * kept by notify.c. The cap counts connections per certificate CN.
	 */
	scfg = (struct proto_server_config){ .handlers = gcs_handlers, .nhandlers = gcs_nhandlers,
		.ctx = &g, .on_close = gcs_on_conn_close, .idle_exempt_roles = PROTO_ROLE_CTS,
		.idle_timeout_ms = limits.idle_timeout_ms,
		.handshake_timeout_ms = limits.handshake_timeout_ms,
		.max_per_peer = limits.max_per_peer, .max_handshakes = limits.max_handshakes };
	if ((g.server = proto_server_tls(g.base, g.listen, &g.tls, &scfg, err, sizeof err)) == NULL)
		log_fatal("%s", err);
	if ((g.endpoint = gcs_setting(&o.flags, &cf, "endpoint", NULL)) == NULL)
		g.endpoint = proto_server_endpoint(g.server, g.listen);
	/* after the TLS port, before the directory is waited for: a bad address stops it here */
	if (gcs_metrics_open(&g, metrics_listen, err, sizeof err) != 0)
		log_fatal("%s", err);
	if (o.port_file != NULL) {
		char port[16];
		int len = snprintf(port, sizeof port, "%d\n", proto_server_port(g.server));
		if (file_write_whole(o.port_file, port, (size_t)len, 0644) != 0)
			log_fatal("cannot write %s", o.port_file);
	}
	log_info("%s listening on %s (directory %s, base %s)", g.name, g.endpoint, g.dircfg.uri,
	    g.dircfg.base);
	g.publish = evtimer_new(g.base, gcs_publish, &g);
	g.publish_backoff_s = 1;
	gcs_publish(-1, 0, &g);
	g.tick = event_new(g.base, -1, EV_PERSIST, gcs_on_tick, &g);
	event_add(g.tick, &second);
	sigint = evsignal_new(g.base, SIGINT, gcs_on_signal, &g);
	sigterm = evsignal_new(g.base, SIGTERM, gcs_on_signal, &g);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(g.base);

	event_free(sigint);
	event_free(sigterm);
	event_free(g.tick);
	event_free(g.publish);
	gcs_metrics_close(&g);
	proto_server_free(g.server);
	registry_free(&g);
	relay_close(&g);
	cache_close(&g);
	dir_close(g.dir);
	dir_config_free(&g.dircfg);
	glue_close(&g);
	event_base_free(g.base);
	config_free(&cf);
	config_free(&o.flags);
	free(g.name);
	free(g.listen);
	free(g.endpoint);
	free(tls_ca);
	free(tls_cert);
	free(tls_key);
	free(dirfile);
	free(metrics_listen);
	return 0;
}
