/*
 * gcs/: gca-gcs, the Grid Checkpoint Service (paper 3.5). It keeps nothing the directory does not
 * hold, except what is live: CTS heartbeats, connections to CTSes, subscribers.
 */
#ifndef GCA_GCS_H
#define GCA_GCS_H

#include <stdbool.h>
#include <stdint.h>

#include "ldap/gca_ldap.h"
#include "proto/proto.h"

struct event_base;
struct event;
struct cache_job;
struct relay_key;
struct relay_held;
struct metrics_http;

/* relay.c's callback for a binding made here that lost to a concurrent one (see relay_open) */
typedef void (*relay_lost_cb)(const char *gid, const char *lost_cts, const char *cts, void *arg);

/* A CTS this GCS has heard from (registry.c). */
struct gcs_cts {
	char			*name;
	char			*endpoint;
	char			*status;		/* as it says: "ok" or "unavailable: ..."; NULL:
						 * not registered here */
	char			*written;		/* its gcaStatus as this GCS last knew it */
	uint64_t		 last_beat_ms;
	bool			 up;
	bool			 retired, told_retired;	/* by an admin: refused from then on */
	bool			 stale;		/* left up by this GCS's previous run, not heard yet */
	bool			 dirty;		/* a status write failed: the tick tries again */
	unsigned		 conn_ups;	/* connections made to it (pool.c) */
	char			*core_service;	/* as registered (or read back): its GLUE view */
	char			**classes;
	size_t			 nclasses;
	struct proto_client	*client;		/* to its endpoint, made when first needed */
	struct gcs_cts		*next;
};

struct gcs_sub {			/* notify.c */
	struct proto_conn	*conn;
	char			*gid;		/* NULL: every event */
	uint64_t		 over_since_ms;	/* its backlog has been over the bound since */
	struct gcs_sub		*next;
};

struct gcs {
	struct event_base	*base;
	struct dir		*dir;
	struct dir_config	 dircfg;
	struct proto_server	*server;
	struct proto_tls_files	 tls;
	char			*name, *listen, *endpoint;
	int			 cts_timeout_ms, request_timeout_ms;
	size_t			 subscriber_backlog;	/* bytes of events a subscriber may leave unread */
	struct gcs_cts		*cts;
	struct dir_feed		*cts_feed;	/* registry.c: ou=cts */
	bool			 cts_feed_ready;
	int			 stale_cts;
	struct gcs_sub		*subs;
	struct event		*tick;
	struct event		*publish;	/* gcs.c: ou=services, tried until it works */
	int			 publish_backoff_s;
	bool			 stopping;
	struct dir_feed		*feed;		/* cache.c */
	struct cache_job	*cache;
	bool			 cache_ready;
	struct dir_feed		*relay_feed;	/* relay.c: records made through other GCSes */
	struct relay_key	*relay;		/* changes made here, whose echo is not news */
	struct relay_held	*held;		/* bindings made here lately */
	relay_lost_cb		 relay_lost;	/* relay.c: told of a binding lost here */
	void			*relay_lost_arg;
	/* glue.c: the GLUE 2.0 view (glue_base NULL: none) */
	char			*glue_base, *glue_domain, *glue_issuer, *glue_trusted;
	int			 glue_validity_s;
	uint64_t		 glue_next_ms;	/* the next refresh (monotonic) */
	bool			 glue_dirty, glue_failing;
	struct metrics_http	*metrics;	/* metrics.c: GET /metrics, or NULL */
};

extern const struct proto_handler gcs_handlers[];
extern const size_t gcs_nhandlers;

/* cache.c */
int  cache_open(struct gcs *g, char *err, size_t errlen);
const char *cache_holder(struct gcs *g, const char *gid, bool *finished);
void cache_close(struct gcs *g);

/* registry.c */
int  registry_open(struct gcs *g, char *err, size_t errlen);
struct gcs_cts *registry_find(struct gcs *g, const char *name);
struct gcs_cts *registry_touch(struct gcs *g, const char *name, const char *endpoint);
void registry_tick(struct gcs *g);
void registry_free(struct gcs *g);
void registry_cts_register(struct proto_req *r, void *ctx);
void registry_cts_heartbeat(struct proto_req *r, void *ctx);
void registry_cts_remove(struct proto_req *r, void *ctx);
void registry_class_register(struct proto_req *r, void *ctx);

/* glue.c: the GLUE 2.0 view (docs/GLUE.md); the views are NULL when it is off */
int  glue_open(struct gcs *g, char *err, size_t errlen);
void glue_close(struct gcs *g);
void glue_tick(struct gcs *g);
struct dir_entry *glue_gcs_view(struct gcs *g, const char *status);
struct dir_entry *glue_cts_view(struct gcs *g, const struct gcs_cts *c, const char *status);
/* What GLUE shows of a CTS, borrowed from a registration or a removal not in the registry yet. */
struct glue_cts {
	const char		*name, *endpoint, *core_service;
	const char *const	*classes;
	size_t			 nclasses;
};
struct dir_entry *glue_cts_entry(struct gcs *g, const struct glue_cts *c, const char *status);
void glue_written(struct gcs *g, const struct dir_result *r);

/* pool.c: the pooled connection to a CTS */
int  pool_client(struct gcs *g, struct gcs_cts *c, char *err, size_t errlen);

/* bind.c: job_bind, job_unbind */
void bind_job_bind(struct proto_req *r, void *ctx);
void bind_job_unbind(struct proto_req *r, void *ctx);

/* moved.c: job_moved to the CTS that held gid (local_id: its process, or NULL) */
void moved_tell(struct gcs *g, const char *holder, const char *gid, const char *cts,
    const char *local_id);

/* router.c: do_checkpoint */
void router_do_checkpoint(struct proto_req *r, void *ctx);

/* record.c */
void record_checkpoint_log(struct proto_req *r, void *ctx);

/* grant.c */
void grant_image(struct proto_req *r, void *ctx);
void grant_location(struct proto_req *r, void *ctx);
void grant_gc(struct proto_req *r, void *ctx);

/* audit.c: audit (gca-ctl audit), the directory against what each CTS holds */
void audit_handle(struct proto_req *r, void *ctx);

/* query.c */
void query_handle(struct proto_req *r, void *ctx);
void query_entries(const struct dir_result *res, struct proto_entries *out);	/* copies */

/* notify.c */
void notify_subscribe(struct proto_req *r, void *ctx);
void notify_event(struct gcs *g, const char *event, const char *gid, const char *cts,
	const char *checkpoint_id, uint64_t seq);
void notify_drop(struct gcs *g, struct proto_conn *c);

/* relay.c: events of changes made through another GCS, from the directory's change feed. A
 * binding made here that lost to a concurrent one elsewhere is handed to on_lost (lost_cts: the CTS
 * it was bound to here), which the caller of relay_open registers with its argument. */
int  relay_open(struct gcs *g, relay_lost_cb on_lost, void *arg, char *err, size_t errlen);
void relay_expect(struct gcs *g, const char *kind, const char *a, const char *b);
void relay_forget(struct gcs *g, const char *kind, const char *a, const char *b);
void relay_hold(struct gcs *g, const char *gid, const char *cts);
void relay_job(struct gcs *g, const char *gid, const char *cts, const char *from, bool finished,
	bool known, const char *prev_cts, bool prev_finished, bool news);
void relay_tick(struct gcs *g);
void relay_close(struct gcs *g);

/* metrics.c (docs/METRICS.md) */
int  gcs_metrics_open(struct gcs *g, const char *listen, char *err, size_t errlen);
void gcs_metrics_close(struct gcs *g);
void gcs_metrics_record(const char *core_service, const char *outcome);

/* The proto error code for a directory status. Here, not in gcs.c, because every handler uses it
 * and gcs.c (the daemon's main and dispatch table) sits above them all. */
static inline const char *
gcs_dir_code(enum dir_status s)
{
	switch (s) {
	case DIR_NOT_FOUND: return PROTO_E_NOT_FOUND;
	case DIR_EXISTS: return PROTO_E_EXISTS;
	case DIR_DOWN: return PROTO_E_DIRECTORY_DOWN;
	case DIR_CAS_LOST: return PROTO_E_CONFLICT;
	case DIR_DENIED: return PROTO_E_FORBIDDEN;
	case DIR_MOVED: return PROTO_E_MOVED;
	case DIR_SCHEMA: return PROTO_E_BAD_FIELD;
	default: return PROTO_E_INTERNAL;
	}
}

#endif
