/*
 * gca-cts: the Checkpoint Translation Service.
 *
 * usage: gca-cts -f cts.conf [--port-file F] [-d]
 *
 * cts.conf ("key value", see cts.conf(5)): name, listen, endpoint, socket, socket_group, gcs, ca,
 * cert, key, state, descriptor, core_service, exec_manager, retention, app_timeout, heartbeat,
 * max_queue, replicas, image_key, compress, criu_incremental, criu_predump, app_incremental,
 * idle_timeout, handshake_timeout, max_peer_connections, max_handshakes, metrics_listen, net_user.
 * Times in seconds unless they carry a unit (500ms, 2m).
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cts/cts.h"

static const char cts_usage[] = "usage: gca-cts -f cts.conf [--port-file F] [-d]\n";

/* The TLS endpoint: the GCS asks for checkpoints and says when a GID moved away, other CTSes
 * fetch images with a grant. */
const struct proto_handler cts_handlers[] = {
	{ "ping", PROTO_ROLE_GCS | PROTO_ROLE_ADMIN | PROTO_ROLE_CTS, proto_server_ping },
	{ "do_checkpoint", PROTO_ROLE_GCS, ckpt_do_checkpoint },
	{ "job_moved", PROTO_ROLE_GCS, jobs_on_moved },
	{ "image_fetch", PROTO_ROLE_CTS, transfer_serve },
	{ "image_replicate", PROTO_ROLE_CTS, replica_receive },
	{ "image_gc", PROTO_ROLE_GCS | PROTO_ROLE_ADMIN, replica_gc },
	{ "image_audit", PROTO_ROLE_GCS, audit_image },
};
const size_t cts_nhandlers = GCA_NITEMS(cts_handlers);

static void
cts_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	gcslink_tick(arg);
	restore_sweep(arg);
	orphans_check(arg);
}

/* What a job's events mean to the files above the job table (jobs.c calls none by name). */
static void
cts_job_event(struct cts_job *j, enum jobs_event ev, const char *why)
{
	switch (ev) {
	case JOBS_DUE:
		ckpt_request(j, "periodic", NULL, NULL);
		break;
	case JOBS_EXITED:
		ending_on_exit(j);
		break;
	case JOBS_MOVED:
		fence_stop(j, why);
		break;
	case JOBS_GONE:
		ckpt_job_gone(j);
		break;
	case JOBS_UNWATCHED:
		ending_unwatch(j);
		break;
	case JOBS_FREED:
		ckpt_job_free(j);
		if (j->restore_dir != NULL)
			retention_remove(j->cts, j->restore_dir);	/* in a child */
		break;
	}
}

static void
cts_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(arg, NULL);
}

/* A duration setting ("5", "500ms", "2m"), or def. */
static int
cts_duration(const struct config *cf, const char *key, int def)
{
	const char *v = config_get(cf, key);
	uint64_t ms;

	if (v == NULL)
		return def;
	if (duration_parse(v, &ms) != 0 || ms == 0 || ms > 24 * 3600 * 1000ULL)
		log_fatal("%s: %s: not a duration (e.g. 10, 500ms, 2m)", cf->path, key);
	return (int)ms;
}

static char *
cts_setting(const struct config *cf, const char *key, const char *def)
{
	const char *v = config_get(cf, key);

	if (v == NULL && def == NULL)
		log_fatal("%s: %s must be set (see cts.conf(5))", cf->path, key);
	return strdup(v ? v : def);
}

/* The state folder: 0711 so a job's user can reach its own staging folder inside, nothing more. */
static void
cts_state_open(struct cts *c)
{
	char p[PATH_MAX];
	/* incoming/: partial fetches (transfer.c), kept across a restart so they resume. */
	const char *sub[] = { "images", "outbox", "staging", "incoming" };
	mode_t modes[] = { 0700, 0700, 0711, 0700 };

	if (file_mkdirs(c->state, 0711) != 0 || chmod(c->state, 0711) != 0)
		log_fatal("state folder %s: cannot create it: %s", c->state, strerror(errno));
	for (size_t i = 0; i < GCA_NITEMS(sub); i++) {
		snprintf(p, sizeof p, "%s/%s", c->state, sub[i]);
		if (file_mkdirs(p, modes[i]) != 0)
			log_fatal("state folder %s: cannot create it: %s", p, strerror(errno));
	}
	/* Staging folders of a previous run belong to checkpoints that never finished. */
	snprintf(p, sizeof p, "%s/staging", c->state);
	file_remove_tree(p);
	if (file_mkdirs(p, 0711) != 0 || chmod(p, 0711) != 0)
		log_fatal("state folder %s: cannot create it: %s", p, strerror(errno));
}

/* A duration setting of --checkpoint-every auto's, positive, or def. */
static uint64_t
cts_auto_duration(const struct config *cf, const char *key, uint64_t def)
{
	const char *v = config_get(cf, key);
	uint64_t ms;

	if (v == NULL)
		return def;
	if (daly_mtbf_parse(v, &ms) != 0)
		log_fatal("%s: %s: \"%s\" is not a positive duration (e.g. 30s, 90m, 12h)", cf->path,
		    key, v);
	return ms;
}

/* mtbf, auto_min, auto_max: --checkpoint-every auto (interval.c) */
static void
cts_configure_auto(struct cts *c, const struct config *cf)
{
	c->mtbf_ms = cts_auto_duration(cf, "mtbf", 0);
	c->auto_min_ms = cts_auto_duration(cf, "auto_min", 30 * 1000);
	c->auto_max_ms = cts_auto_duration(cf, "auto_max", 24 * 3600 * 1000);
	if (c->auto_min_ms > c->auto_max_ms)
		log_fatal("%s: auto_min is more than auto_max", cf->path);
}

/*
 * The signing identity of the manifests: a key and an OU=sign certificate named after this CTS,
 * never the TLS key (which the network side holds). Without one the CTS does not start: falling
 * back to the TLS key would sign images that a compromised network process could forge.
 */
static void
cts_configure_signer(struct cts *c, const struct config *cf)
{
	const char *cert = config_get(cf, "sign_cert"), *key = config_get(cf, "sign_key"), *before;
	char err[512], *sig = NULL;
	struct tm tm = { 0 };
	time_t t = 0;
	const char *end;
	static const char probe[] = "gca-cts signing key probe";

	if (cert == NULL || key == NULL)
		log_fatal("%s: no signing key (sign_cert and sign_key must be set): make one with "
		    "`gca-pki issue PKI_DIR sign %s` and point sign_cert and sign_key at "
		    "PKI_DIR/sign-%s.crt and .key (`gca-site up` does it for a site's CTSes; see "
		    "cts.conf(5))", cf->path, c->name, c->name);
	if ((before = config_get(cf, "tls_signed_before")) != NULL &&
	    ((end = strptime(before, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL || *end != '\0' ||
	    (t = timegm(&tm)) <= 0))
		log_fatal("%s: tls_signed_before %s: not a time like 2026-12-07T18:00:00Z", cf->path,
		    before);
	c->tls_signed_before_ms = before != NULL ? (uint64_t)t * 1000 : 0;
	c->sign.cert = c->sign_cert_file = xstrdup(cert);
	c->sign.key = c->sign_key_file = xstrdup(key);
	if (proto_sig_make(&c->sign, probe, sizeof probe - 1, &sig, err, sizeof err) != 0)
		log_fatal("%s: the signing key: %s", cf->path, err);
	if (proto_sig_check(c->ca_file, sig, probe, sizeof probe - 1, "sign", c->name, err,
	    sizeof err) != 0)
		log_fatal("%s: the signing key %s and certificate %s: %s (make them with `gca-pki "
		    "issue PKI_DIR sign %s`)", cf->path, key, cert, err, c->name);
	free(sig);
}

/* zstd's level when cts.conf says only "compress zstd": measured in docs/BENCHMARKS.md,
 * "Compression (issue 22, item 6)" */
#define CTS_ZSTD_LEVEL 1

/* compress: "zstd" or "zstd LEVEL" (1..19), or "no"; absent = no (docs/man/cts.conf.5). */
static void
cts_configure_compress(struct cts *c, const struct config *cf)
{
	const char *v = config_get(cf, "compress");
	char word[16], extra;
	int level = CTS_ZSTD_LEVEL, n;

	c->compress_level = 0;
	if (v == NULL || strcmp(v, "no") == 0)
		return;
	n = sscanf(v, "%15s %d %c", word, &level, &extra);
	if (n < 1 || n > 2 || strcmp(word, "zstd") != 0 || level < 1 || level > 19)
		log_fatal("%s: compress: \"%s\" is not \"zstd\", \"zstd LEVEL\" (LEVEL 1..19) or "
		    "\"no\"", cf->path, v);
	if (strcmp(c->core->name, "vmm") == 0)
		log_fatal("%s: compress: vmm images are not compressed (their disk layers are "
		    "incremental images a compressed store does not restore): take it out", cf->path);
	if (c->criu_predump)
		log_fatal("%s: criu_predump and compress do not go together (a compressed image "
		    "restores from a copy without criu's parent links)", cf->path);
	c->compress_level = level;
}

static void
cts_configure(struct cts *c, const struct config *cf)
{
	char err[512];
	long n;

	c->name = cts_setting(cf, "name", NULL);
	if (!name_valid(c->name))
		log_fatal("%s: name: not a valid CTS name", cf->path);
	c->listen = cts_setting(cf, "listen", "127.0.0.1:0");
	c->socket = cts_setting(cf, "socket", NULL);
	c->state = cts_setting(cf, "state", NULL);
	c->gcs_endpoint = cts_setting(cf, "gcs", NULL);
	c->exec_manager = cts_setting(cf, "exec_manager", "local");
	c->tls.ca = c->ca_file = cts_setting(cf, "ca", NULL);
	c->tls.cert = c->cert_file = cts_setting(cf, "cert", NULL);
	c->tls.key = c->key_file = cts_setting(cf, "key", NULL);
	if (config_get_int(cf, "retention", 0, 100000, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->retention = config_get(cf, "retention") ? (unsigned)n : 5;
	if (config_get_int(cf, "max_queue", 1, 1000, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->max_queue = config_get(cf, "max_queue") ? (unsigned)n : 8;
	if (config_get_int(cf, "criu_incremental", 0, 1000, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->criu_incremental = config_get(cf, "criu_incremental") ? (unsigned)n : 0;
	if (config_get_bool(cf, "criu_predump", false, &c->criu_predump, err, sizeof err) != 0)
		log_fatal("%s", err);
	if (config_get_int(cf, "app_incremental", 0, 1000, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->app_incremental = config_get(cf, "app_incremental") ? (unsigned)n : 0;
	c->app_timeout_ms = cts_duration(cf, "app_timeout", 10000);
	if (config_get(cf, "fence") != NULL && strcmp(config_get(cf, "fence"), "kill") != 0 &&
	    strcmp(config_get(cf, "fence"), "none") != 0)
		log_fatal("%s: fence: \"%s\" is neither kill nor none", cf->path, config_get(cf, "fence"));
	c->fence_none = config_get(cf, "fence") != NULL && strcmp(config_get(cf, "fence"), "none") == 0;
	c->fence_grace_ms = cts_duration(cf, "fence_grace", 5000);
	c->heartbeat_ms = cts_duration(cf, "heartbeat", 5000);
	/* dump_timeout: a core service's work on one checkpoint, at most (checkpoint.c) */
	c->dump_timeout_ms = cts_duration(cf, "dump_timeout", 600000);
	c->vmm_qemu = cts_setting(cf, "vmm_qemu", "qemu-system-x86_64");
	c->vmm_timeout_ms = cts_duration(cf, "vmm_timeout", 120000);
	/* the guest the operator offers (vmm-ready-job-executor takes it when no flag names one) */
	c->vmm_kernel = config_get(cf, "vmm_kernel") ? strdup(config_get(cf, "vmm_kernel")) : NULL;
	c->vmm_initrd = config_get(cf, "vmm_initrd") ? strdup(config_get(cf, "vmm_initrd")) : NULL;
	c->vmm_disk = config_get(cf, "vmm_disk") ? xstrdup(config_get(cf, "vmm_disk")) : NULL;
	c->vmm_machine = cts_setting(cf, "vmm_machine", "pc");
	if (config_get_int(cf, "vmm_memory", 16, 1024 * 1024, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->vmm_memory_mib = config_get(cf, "vmm_memory") ? (unsigned)n : 256;
	if (config_get_int(cf, "vmm_pool", 0, 8, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->vmm_pool = config_get(cf, "vmm_pool") ? (unsigned)n : 0;
	c->vmm_pool_user = config_get(cf, "vmm_pool_user") ? xstrdup(config_get(cf,
	    "vmm_pool_user")) : NULL;
	if (config_get(cf, "vmm_pool_accel") != NULL && strcmp(config_get(cf, "vmm_pool_accel"),
	    "kvm") != 0 && strcmp(config_get(cf, "vmm_pool_accel"), "tcg") != 0)
		log_fatal("%s: vmm_pool_accel: \"%s\" is neither kvm nor tcg", cf->path,
		    config_get(cf, "vmm_pool_accel"));
	c->vmm_pool_accel = config_get(cf, "vmm_pool_accel") ? xstrdup(config_get(cf,
	    "vmm_pool_accel")) : NULL;
	c->idle_timeout_ms = cts_duration(cf, "idle_timeout", 300000);
	c->handshake_timeout_ms = cts_duration(cf, "handshake_timeout", 10000);
	if (config_get_int(cf, "max_peer_connections", 0, 1000000, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->max_peer_connections = config_get(cf, "max_peer_connections") ? (int)n : 64;
	if (config_get_int(cf, "max_handshakes", 1, 1000000, &n, err, sizeof err) != 0)
		log_fatal("%s", err);
	c->max_handshakes = config_get(cf, "max_handshakes") ? (int)n : 256;
	cts_configure_auto(c, cf);
}

static void
cts_free(struct cts *c)
{
	free(c->name);
	free(c->listen);
	free(c->endpoint);
	free(c->socket);
	free(c->state);
	free(c->gcs_endpoint);
	free(c->exec_manager);
	free(c->vmm_qemu);
	free(c->vmm_kernel);
	free(c->vmm_initrd);
	free(c->vmm_disk);
	free(c->vmm_pool_user);
	free(c->vmm_pool_accel);
	free(c->vmm_machine);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->sign_cert_file);
	free(c->sign_key_file);
	proto_body_clear(proto_type_find("cts_register"), &c->reg);
	proto_strlist_free(&c->exec_params);
	proto_strlist_free(&c->recovery_params);
}

/* The TLS endpoint is the network process's (net.c): the connections it accepted reach these
 * handlers over unix sockets, with the identity it checked. */
static void
cts_listen(struct cts *c, const struct config *cf)
{
	/* GCSes (their pooled connection) and other CTSes (replica pushes) are never cut for
	 * being quiet; their clients close first. The cap counts per certificate CN. */
	struct proto_server_config scfg = { .handlers = cts_handlers,
		.nhandlers = cts_nhandlers, .ctx = c,
		.idle_timeout_ms = c->idle_timeout_ms, .handshake_timeout_ms = c->handshake_timeout_ms,
		.idle_exempt_roles = PROTO_ROLE_GCS | PROTO_ROLE_CTS,
		.max_per_peer = c->max_peer_connections, .max_handshakes = c->max_handshakes };
	char err[512];
	const char *colon = strrchr(c->listen, ':');

	c->server = proto_server_relayed(c->base, &scfg);
	if (net_open(c, cf, err, sizeof err) != 0)
		log_fatal("%s", err);
	if (config_get(cf, "endpoint") != NULL)
		c->endpoint = xstrdup(config_get(cf, "endpoint"));
	else
		xasprintf(&c->endpoint, "%.*s:%d", colon ? (int)(colon - c->listen) :
		    (int)strlen(c->listen), c->listen, net_port());
}

/*
 * --port-file: written last, once the state is loaded and everything else is set up, so that
 * whoever waits for it (gca-site) knows the CTS started, not only that it listens: a CTS that
 * dies on its state folder (a full disk) never writes it.
 */
static void
cts_port_file(const char *port_file)
{
	char port[16];
	int len = snprintf(port, sizeof port, "%d\n", net_port());

	if (port_file != NULL && file_write_whole(port_file, port, (size_t)len, 0644) != 0)
		log_fatal("cannot write %s: %s", port_file, strerror(errno));
}

int
main(int argc, char **argv)
{
	struct cts c = { 0 };
	struct config cf = { 0 };
	const char *conf = NULL, *port_file = NULL;
	struct event *sigint, *sigterm;
	struct timeval beat;
	char err[512], why[512];

	if (argc > 1 && strcmp(argv[1], "--net") == 0)
		return net_main(argc, argv);
	log_init(argv[0]);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0)
			log_set_level(LOG_DEBUG);
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(cts_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
			port_file = argv[++i];
		else {
			fprintf(stderr, "gca-cts: %s: unknown option or missing value\n%s", argv[i],
			    cts_usage);
			return 2;
		}
	}
	if (conf == NULL) {
		fputs(cts_usage, stderr);
		return 2;
	}
	if (config_load(&cf, conf, err, sizeof err) != 0)
		log_fatal("%s", err);
	cts_configure(&c, &cf);
	{
		char *core = cts_setting(&cf, "core_service", "app");
		if ((c.core = core_find(core)) == NULL)
			log_fatal("%s: core_service %s: unknown (app, criu or vmm)", conf, core);
		free(core);
	}
	cts_configure_compress(&c, &cf);	/* after the core service: not for vmm */
	/* A core service that cannot work here is published as unavailable, with its reason. */
	if (c.core->probe(&c, why, sizeof why) != 0) {
		snprintf(c.unavailable, sizeof c.unavailable, "%s", why);
		log_warn("core service %s is unavailable here: %s", c.core->name, why);
	}
	if (descriptor_load(&c, config_get(&cf, "descriptor"), err, sizeof err) != 0)
		log_fatal("%s", err);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	c.base = event_base_new();
	c.started_ms = time_mono_ms();
	/* the socket first: a second gca-cts started on a running one's socket (the same cts.conf)
	 * stops here, before it touches that one's state folder */
	if (local_open(&c, config_get(&cf, "socket_group"), err, sizeof err) != 0)
		log_fatal("%s", err);
	cts_configure_signer(&c, &cf);	/* before the state folder and any image */
	cts_state_open(&c);
	pool_start(&c);	/* vmm_pool: off unless cts.conf sets it */
	cts_listen(&c, &cf);
	if (cts_metrics_open(&c, config_get(&cf, "metrics_listen"), err, sizeof err) != 0)
		log_fatal("%s: %s", conf, err);
	jobs_set_cb(cts_job_event);
	if (outbox_load(&c, ckpt_recorded, err, sizeof err) != 0 || jobs_load(&c, err, sizeof err) != 0)
		log_fatal("%s", err);
	orphans_scan(&c);	/* before any checkpoint of this run */
	if (gcslink_open(&c, err, sizeof err) != 0)
		log_fatal("%s", err);
	/* what the GCS link's events do above it (gcslink.c calls none of them by name) */
	gcslink_on(GCSLINK_REGISTERED | GCSLINK_BEAT, outbox_flush);
	gcslink_on(GCSLINK_REGISTERED | GCSLINK_BEAT, jobs_retry_unbind);
	gcslink_on(GCSLINK_REGISTERED | GCSLINK_BACK, fence_check);
	if (replica_configure(&c, config_get(&cf, "replicas"), err, sizeof err) != 0)
		log_fatal("%s: %s", conf, err);
	if (config_get(&cf, "image_key") != NULL && crypt_key_load(config_get(&cf, "image_key"),
	    c.image_key, c.image_key_id, err, sizeof err) != 0)
		log_fatal("%s: %s", conf, err);
	/* an encrypted image is restored from a decrypted copy of its folder, without criu's links */
	if (c.criu_predump && c.image_key_id[0] != '\0')
		log_fatal("%s: criu_predump and image_key do not go together (an encrypted image "
		    "restores from a copy without criu's parent links)", conf);
	log_info("%s (%s%s%s) at %s, socket %s, GCS %s", c.name, c.core->name,
	    c.unavailable[0] ? ", unavailable: " : "", c.unavailable, c.endpoint, c.socket,
	    c.gcs_endpoint);
	cts_port_file(port_file);
	beat = (struct timeval){ c.heartbeat_ms / 1000, (c.heartbeat_ms % 1000) * 1000 };
	c.tick = event_new(c.base, -1, EV_PERSIST, cts_on_tick, &c);
	event_add(c.tick, &beat);
	gcslink_tick(&c);
	sigint = evsignal_new(c.base, SIGINT, cts_on_signal, c.base);
	sigterm = evsignal_new(c.base, SIGTERM, cts_on_signal, c.base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(c.base);

	event_free(sigint);
	event_free(sigterm);
	event_free(c.tick);
	/* the GCS link first: its pending callbacks still find the jobs and the outbox */
	gcslink_close(&c);
	pool_stop(&c);
	orphans_free(&c);
	cts_metrics_close(&c);
	replica_free(&c);
	proto_server_free(c.local);
	net_close(&c);
	proto_server_free(c.server);
	jobs_free(&c);
	fence_free();
	outbox_free(&c);
	retention_free(&c);
	event_base_free(c.base);
	config_free(&cf);
	cts_free(&c);
	return 0;
}
