/*
 * gca-gcs: the Grid Checkpoint Service.
 *
 * usage: gca-gcs [-f gcs.conf] [--name N] [--listen HOST:PORT] [--endpoint HOST:PORT]
 *                [--ca F] [--cert F] [--key F] [--directory F] [--port-file F] [-d]
 *
 * Flags win over the config file ("key value" lines with the same names: name, listen, endpoint,
 * ca, cert, key, directory, cts_timeout, request_timeout, directory_timeout, subscriber_backlog;
 * times in seconds, the backlog in bytes). --directory names the GCS's directory
 * identity file (uri, binddn, password, base), as scripts/gca-site writes it.
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
	{ "ping", PROTO_ROLE_ANY & ~PROTO_ROLE_LOCAL, router_ping },
	{ "cts_register", PROTO_ROLE_CTS, registry_cts_register },
	{ "cts_heartbeat", PROTO_ROLE_CTS, registry_cts_heartbeat },
	{ "cts_remove", PROTO_ROLE_ADMIN, registry_cts_remove },
	{ "class_register", PROTO_ROLE_ADMIN, registry_class_register },
	{ "job_bind", PROTO_ROLE_CTS, router_job_bind },
	{ "job_unbind", PROTO_ROLE_CTS, router_job_unbind },
	{ "do_checkpoint", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN, router_do_checkpoint },
	{ "checkpoint_log", PROTO_ROLE_CTS, record_checkpoint_log },
	{ "query", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN | PROTO_ROLE_CTS, query_handle },
	{ "subscribe", PROTO_ROLE_BROKER | PROTO_ROLE_ADMIN, notify_subscribe },
	{ "image_grant", PROTO_ROLE_CTS, grant_image },
	{ "image_location", PROTO_ROLE_CTS, grant_location },
	{ "image_gc", PROTO_ROLE_ADMIN, grant_gc },
};
const size_t gcs_nhandlers = GCA_NITEMS(gcs_handlers);

static const char gcs_usage[] =
    "usage: gca-gcs [-f gcs.conf] [--name N] [--listen HOST:PORT] [--endpoint HOST:PORT]\n"
    "               [--ca F] [--cert F] [--key F] [--directory F] [--port-file F] [-d]\n";

const char *
gcs_dir_code(enum dir_status s)
{
	switch (s) {
	case DIR_NOT_FOUND: return PROTO_E_NOT_FOUND;
	case DIR_EXISTS: return PROTO_E_EXISTS;
	case DIR_DOWN: return PROTO_E_DIRECTORY_DOWN;
	case DIR_CAS_LOST: return PROTO_E_CONFLICT;
	case DIR_DENIED: return PROTO_E_FORBIDDEN;
	case DIR_SCHEMA: return PROTO_E_BAD_FIELD;
	default: return PROTO_E_INTERNAL;
	}
}

static void
gcs_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	registry_tick(arg);
	relay_tick(arg);
}

static void
gcs_on_stopped(const struct dir_result *r, void *arg)
{
	struct gcs *g = arg;

	if (r->status != DIR_OK)
		log_warn("cannot mark %s stopped in ou=services: %s", g->name, r->msg);
	event_base_loopexit(g->base, NULL);
}

/*
 * A clean stop says so in ou=services (brokers then know this GCS is gone, not silent), giving
 * the directory two seconds; a second signal stops at once. A crash leaves "ok": the entry's
 * status is a state change written by the GCS itself, never a timed heartbeat (DESIGN.md).
 */
static void
gcs_on_signal(evutil_socket_t sig, short what, void *arg)
{
	static const struct timeval grace = { 2, 0 };
	static bool stopping;
	struct gcs *g = arg;

	(void)what;
	if (stopping) {
		event_base_loopexit(g->base, NULL);
		return;
	}
	stopping = true;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(g->base, &grace);
	dir_service_publish(g->dir, g->name, g->endpoint, "stopped", gcs_on_stopped, g);
}

static void
gcs_on_published(const struct dir_result *r, void *arg)
{
	struct gcs *g = arg;

	if (r->status != DIR_OK)
		log_warn("cannot publish %s in ou=services: %s", g->name, r->msg);
	else
		log_info("published %s at %s in ou=services", g->name, g->endpoint);
}

static void
gcs_on_conn_close(struct proto_conn *c, void *ctx)
{
	notify_drop(ctx, c);
}

struct gcs_opts {
	const char *conf, *name, *listen, *endpoint, *ca, *cert, *key, *directory, *port_file;
	bool debug;
};

static int
gcs_parse_args(int argc, char **argv, struct gcs_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		const char *a = argv[i];

		if (strcmp(a, "-d") == 0) {
			o->debug = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(gcs_usage, stdout);
			exit(0);
		}
		if (strcmp(a, "-f") == 0) dst = &o->conf;
		else if (strcmp(a, "--name") == 0) dst = &o->name;
		else if (strcmp(a, "--listen") == 0) dst = &o->listen;
		else if (strcmp(a, "--endpoint") == 0) dst = &o->endpoint;
		else if (strcmp(a, "--ca") == 0) dst = &o->ca;
		else if (strcmp(a, "--cert") == 0) dst = &o->cert;
		else if (strcmp(a, "--key") == 0) dst = &o->key;
		else if (strcmp(a, "--directory") == 0) dst = &o->directory;
		else if (strcmp(a, "--port-file") == 0) dst = &o->port_file;
		if (dst == NULL || i + 1 >= argc) {
			fprintf(stderr, "gca-gcs: %s: %s\n%s", a, dst ? "needs a value" : "unknown option",
			    gcs_usage);
			return -1;
		}
		*dst = argv[++i];
	}
	return 0;
}

/* A setting: the flag, else the config file, else the default. */
static char *
gcs_setting(const char *flag, const struct config *c, const char *key, const char *def)
{
	const char *v = flag ? flag : c ? config_get(c, key) : NULL;

	v = v ? v : def;
	return v ? strdup(v) : NULL;
}

int
main(int argc, char **argv)
{
	struct gcs g = { 0 };
	struct gcs_opts o = { 0 };
	struct config cf = { 0 };
	struct proto_server_config scfg = { 0 };
	struct event *sigint, *sigterm;
	struct timeval second = { 1, 0 };
	char err[512], *dirfile;
	long n;

	log_init(argv[0]);
	if (gcs_parse_args(argc, argv, &o) != 0)
		return 2;
	if (o.debug)
		log_set_level(LOG_DEBUG);
	if (o.conf != NULL && config_load(&cf, o.conf, err, sizeof err) != 0)
		log_fatal("%s", err);
	g.name = gcs_setting(o.name, &cf, "name", "gcs");
	g.listen = gcs_setting(o.listen, &cf, "listen", "127.0.0.1:7390");
	g.tls.ca = gcs_setting(o.ca, &cf, "ca", NULL);
	g.tls.cert = gcs_setting(o.cert, &cf, "cert", NULL);
	g.tls.key = gcs_setting(o.key, &cf, "key", NULL);
	dirfile = gcs_setting(o.directory, &cf, "directory", NULL);
	g.cts_timeout_ms = 15000;
	g.request_timeout_ms = 60000;
	if (config_get_int(&cf, "cts_timeout", 1, 3600, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	else if (config_get(&cf, "cts_timeout") != NULL)
		g.cts_timeout_ms = (int)n * 1000;
	if (config_get_int(&cf, "request_timeout", 1, 3600, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	else if (config_get(&cf, "request_timeout") != NULL)
		g.request_timeout_ms = (int)n * 1000;
	if (config_get_int(&cf, "subscriber_backlog", 4096, 1L << 30, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	g.subscriber_backlog = config_get(&cf, "subscriber_backlog") ? (size_t)n : 1024 * 1024;
	if (g.tls.ca == NULL || g.tls.cert == NULL || g.tls.key == NULL || dirfile == NULL) {
		fprintf(stderr, "gca-gcs: ca, cert, key and directory must be given\n%s", gcs_usage);
		return 2;
	}
	if (dir_config_load(&g.dircfg, dirfile, err, sizeof err) != 0)
		log_fatal("%s", err);
	/* How long a directory operation may wait before the caller is told the directory is down. */
	if (config_get_int(&cf, "directory_timeout", 1, 600, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	g.dircfg.op_timeout_ms = config_get(&cf, "directory_timeout") ? (int)n * 1000 : 10000;
	if (config_get_bool(&cf, "directory_transactions", false, &g.dircfg.transactions, err,
	    sizeof err) != 0)
		log_fatal("%s", err);
	signal(SIGPIPE, SIG_IGN);
	g.base = event_base_new();
	if ((g.dir = dir_open(g.base, &g.dircfg, err, sizeof err)) == NULL)
		log_fatal("directory: %s", err);
	if (cache_open(&g, err, sizeof err) != 0)
		log_fatal("directory feed: %s", err);
	if (relay_open(&g, err, sizeof err) != 0)
		log_fatal("directory feed: %s", err);
	if (registry_open(&g, err, sizeof err) != 0)
		log_fatal("directory feed: %s", err);
	scfg = (struct proto_server_config){ .handlers = gcs_handlers, .nhandlers = gcs_nhandlers,
		.ctx = &g, .on_close = gcs_on_conn_close };
	if ((g.server = proto_server_tls(g.base, g.listen, &g.tls, &scfg, err, sizeof err)) == NULL)
		log_fatal("%s", err);
	if (o.endpoint != NULL || config_get(&cf, "endpoint") != NULL) {
		g.endpoint = gcs_setting(o.endpoint, &cf, "endpoint", NULL);
	} else {
		char ep[300];
		const char *colon = strrchr(g.listen, ':');
		snprintf(ep, sizeof ep, "%.*s:%d", (int)(colon - g.listen), g.listen,
		    proto_server_port(g.server));
		g.endpoint = strdup(ep);
	}
	if (o.port_file != NULL) {
		char port[16];
		int len = snprintf(port, sizeof port, "%d\n", proto_server_port(g.server));
		if (file_write_whole(o.port_file, port, (size_t)len, 0644) != 0)
			log_fatal("cannot write %s", o.port_file);
	}
	log_info("%s listening on %s (directory %s, base %s)", g.name, g.endpoint, g.dircfg.uri,
	    g.dircfg.base);
	dir_service_publish(g.dir, g.name, g.endpoint, "ok", gcs_on_published, &g);
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
	proto_server_free(g.server);
	registry_free(&g);
	relay_close(&g);
	cache_close(&g);
	dir_close(g.dir);
	dir_config_free(&g.dircfg);
	event_base_free(g.base);
	config_free(&cf);
	free(g.name);
	free(g.listen);
	free(g.endpoint);
	free((char *)g.tls.ca);
	free((char *)g.tls.cert);
	free((char *)g.tls.key);
	free(dirfile);
	return 0;
}
