/*
 * Bindings and routing (paper 5.1 step 4, 5.2, 5.3 step 11): which CTS holds a GID is in the
 * directory; a broker's do_checkpoint goes to that CTS over a pooled mTLS connection, and its
 * answer comes back after the CTS's record was stored (the one record path).
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct router_op {
	struct gcs		*g;
	struct proto_req	*r;
	char			 holder[256];
};

static struct router_op *
router_op_new(struct gcs *g, struct proto_req *r)
{
	struct router_op *op = calloc(1, sizeof *op);

	if (op == NULL)
		abort();
	op->g = g;
	op->r = r;
	return op;
}

void
router_ping(struct proto_req *r, void *ctx)
{
	struct msg_ping_ok ok = { time_now_ms() };

	(void)ctx;
	proto_reply_ok(r, r->pt->reply, &ok);
}

/* ---- job_bind ---- */

/* A bind that did not happen: its names in relay.c will see no echo. */
static void
router_bind_failed(struct router_op *op)
{
	struct msg_job_bind *b = op->r->body;

	relay_forget(op->g, "bind", b->gid, b->cts);
	relay_hold(op->g, b->gid, NULL);
}

static void
router_on_moved(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_job_bind *b = op->r->body;
	struct msg_job_bind_ok ok = { "running" };

	if (res->status != DIR_OK)
		router_bind_failed(op);

	if (res->status == DIR_OK) {
		log_info("GID %s moved from CTS %s to %s%s", b->gid, op->holder, b->cts,
		    b->recovery ? " (recovery)" : "");
		notify_event(op->g, strcmp(op->holder, b->cts) == 0 ? "bound" : "moved", b->gid, b->cts,
		    b->checkpoint_id, 0);
		proto_reply_ok(op->r, op->r->pt->reply, &ok);
	} else if (res->status == DIR_CAS_LOST) {
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s was bound elsewhere meanwhile", b->gid);
	} else {
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
	}
	free(op);
}

/* Up as far as the GCS it beats to said: "ok" or "unavailable: ..." (alive, its core service
 * not), not "down" or "retired". */
static bool
router_status_up(const char *status)
{
	return status != NULL && (strcmp(status, "ok") == 0 || strncmp(status, "unavailable", 11) == 0);
}

static void
router_on_holder(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_job_bind *b = op->r->body;
	const char *status = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (res->status == DIR_OK && router_status_up(status)) {
		router_bind_failed(op);
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is held by CTS %s, which is up (%s, "
		    "as its GCS says); only a recovery may move it", b->gid, op->holder, status);
		free(op);
		return;
	}
	dir_job_bind(op->g->dir, b->gid, b->cts, b->owner, b->local_id, op->holder, router_on_moved,
	    op);
}

static void
router_on_bound(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_job_bind *b = op->r->body;
	struct msg_job_bind_ok ok = { "running" };
	const char *holder, *owner, *state;
	struct gcs_cts *live;

	if (res->status == DIR_OK) {
		log_info("GID %s bound to CTS %s (local id %s, owner %s)", b->gid, b->cts,
		    b->local_id ? b->local_id : "-", b->owner);
		notify_event(op->g, "bound", b->gid, b->cts, NULL, 0);
		proto_reply_ok(op->r, op->r->pt->reply, &ok);
		free(op);
		return;
	}
	if (res->status != DIR_EXISTS || res->nentries == 0) {
		router_bind_failed(op);
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
		free(op);
		return;
	}
	/* The GID exists: its owner may bind it again (recovery, migration), nobody else. */
	holder = dir_entry_get(&res->entries[0], "gcaCTSName");
	owner = dir_entry_get(&res->entries[0], "gcaOwner");
	state = dir_entry_get(&res->entries[0], "gcaJobState");
	if (owner != NULL && strcmp(owner, b->owner) != 0) {
		router_bind_failed(op);
		proto_reply_err(op->r, PROTO_E_FORBIDDEN, "GID %s belongs to %s, not %s", b->gid, owner,
		    b->owner);
		free(op);
		return;
	}
	live = holder ? registry_find(op->g, holder) : NULL;
	if (holder != NULL && strcmp(holder, b->cts) != 0 && !b->recovery && live != NULL &&
	    live->up && (state == NULL || strcmp(state, "finished") != 0)) {
		router_bind_failed(op);
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is held by CTS %s, which is up; only "
		    "a recovery may move it", b->gid, holder);
		free(op);
		return;
	}
	snprintf(op->holder, sizeof op->holder, "%s", holder ? holder : "");
	if (holder != NULL && strcmp(holder, b->cts) != 0 && !b->recovery &&
	    (live == NULL || live->status == NULL) && (state == NULL || strcmp(state, "finished") != 0)) {
		char dn[1024];
		/* The holder never registered here: it may beat to another GCS (several GCS, issue
		 * 11), which keeps its gcaStatus in ou=cts. */
		if (dir_dn_cts(op->g->dir, holder, dn, sizeof dn) == 0) {
			dir_search(op->g->dir, dn, 0, "(objectClass=gcaTranslationService)", 1,
			    router_on_holder, op);
			return;
		}
	}
	dir_job_bind(op->g->dir, b->gid, b->cts, b->owner, b->local_id, holder, router_on_moved, op);
}

void
router_job_bind(struct proto_req *r, void *ctx)
{
	struct msg_job_bind *b = r->body;

	/* A CTS binds only for itself. */
	if (strcmp(r->peer.name, b->cts) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may not bind for %s", r->peer.name, b->cts);
		return;
	}
	/* Named before the write: the feed's echo may come before the reply (relay.c). */
	relay_expect(ctx, "bind", b->gid, b->cts);
	relay_hold(ctx, b->gid, b->cts);
	dir_job_bind(((struct gcs *)ctx)->dir, b->gid, b->cts, b->owner, b->local_id, NULL,
	    router_on_bound, router_op_new(ctx, r));
}

/* ---- job_unbind: the job ended ---- */

static void
router_on_unbound(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_job_unbind *b = op->r->body;

	if (res->status == DIR_OK) {
		notify_event(op->g, "unbound", b->gid, b->cts, NULL, 0);
		proto_reply_ok(op->r, op->r->pt->reply, NULL);
	} else if (res->status == DIR_CAS_LOST) {
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is bound to another process than %s "
		    "now: left as it is", b->gid, b->local_id);
	} else {
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
	}
	free(op);
}

static void
router_on_unbind_holder(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_job_unbind *b = op->r->body;
	const char *holder = res->nentries ? dir_entry_get(&res->entries[0], "gcaCTSName") : NULL;

	if (res->status != DIR_OK || res->nentries == 0) {
		proto_reply_err(op->r, res->status == DIR_OK ? PROTO_E_NOT_FOUND :
		    gcs_dir_code(res->status), "unknown GID %s", b->gid);
		free(op);
		return;
	}
	if (holder == NULL || strcmp(holder, b->cts) != 0) {
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is held by %s, not %s", b->gid,
		    holder ? holder : "nobody", b->cts);
		free(op);
		return;
	}
	relay_expect(op->g, "unbound", b->gid, b->cts);
	dir_job_state(op->g->dir, b->gid, b->local_id, b->state ? b->state : "finished",
	    (int)b->exit_status, router_on_unbound, op);
}

void
router_job_unbind(struct proto_req *r, void *ctx)
{
	struct msg_job_unbind *b = r->body;

	if (strcmp(r->peer.name, b->cts) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may not unbind for %s", r->peer.name, b->cts);
		return;
	}
	dir_job_get(((struct gcs *)ctx)->dir, b->gid, router_on_unbind_holder, router_op_new(ctx, r));
}

/* ---- do_checkpoint ---- */

static void router_on_idem(const struct dir_result *res, void *arg);

/*
 * A keyed checkpoint whose CTS could not reach its GCS to store the record (that GCS died: the
 * CTS keeps the record and sends it through its next GCS), or did not answer in time: the record
 * may yet arrive. Look for it by its key for a few seconds before telling the broker it failed, so
 * a checkpoint taken is reported taken (several GCS, issue 11).
 */
#define ROUTER_LATE_TRIES	25
#define ROUTER_LATE_EVERY_MS	200

struct router_late {
	struct router_op	*op;
	struct event		*timer;
	int			 tries;
	char			 code[32], msg[512];
};

static void router_late_look(evutil_socket_t fd, short what, void *arg);

static void
router_on_late(const struct dir_result *res, void *arg)
{
	struct router_late *late = arg;
	struct router_op *op = late->op;
	struct timeval every = { 0, ROUTER_LATE_EVERY_MS * 1000 };

	if (res->status == DIR_OK && res->nentries > 0) {
		log_info("checkpoint of %s: its record arrived after the CTS's error (%s)",
		    ((struct msg_do_checkpoint *)op->r->body)->gid, late->msg);
		router_on_idem(res, op);	/* replies with the record, frees op */
	} else if (++late->tries < ROUTER_LATE_TRIES) {
		evtimer_add(late->timer, &every);
		return;
	} else {
		proto_reply_err(op->r, late->code, "CTS %s: %s", op->holder, late->msg);
		free(op);
	}
	event_free(late->timer);
	free(late);
}

static void
router_late_look(evutil_socket_t fd, short what, void *arg)
{
	struct router_late *late = arg;
	struct msg_do_checkpoint *b = late->op->r->body;
	char dn[1024], esc[512], filter[700];

	(void)fd;
	(void)what;
	if (dir_dn_job(late->op->g->dir, b->gid, dn, sizeof dn) != 0 ||
	    dir_filter_escape(b->idem_key, esc, sizeof esc) != 0) {
		struct dir_result none = { .status = DIR_NOT_FOUND };
		late->tries = ROUTER_LATE_TRIES;
		router_on_late(&none, late);
		return;
	}
	snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaProperty=idem=%s))", esc);
	dir_search(late->op->g->dir, dn, 1, filter, 1, router_on_late, late);
}

static void
router_wait_record(struct router_op *op, const char *code, const char *msg)
{
	struct router_late *late = calloc(1, sizeof *late);
	struct timeval every = { 0, ROUTER_LATE_EVERY_MS * 1000 };

	if (late == NULL)
		abort();
	late->op = op;
	snprintf(late->code, sizeof late->code, "%s", code);
	snprintf(late->msg, sizeof late->msg, "%s", msg);
	late->timer = evtimer_new(op->g->base, router_late_look, late);
	evtimer_add(late->timer, &every);
}

static void
router_on_cts_reply(const char *code, const char *msg, const void *body, void *arg)
{
	struct router_op *op = arg;
	struct msg_do_checkpoint *b = op->r->body;

	if (code != NULL && b->idem_key != NULL && strstr(msg, "core service") == NULL &&
	    (strcmp(code, PROTO_E_UNAVAILABLE) == 0 || strcmp(code, PROTO_E_TIMEOUT) == 0)) {
		router_wait_record(op, strcmp(code, PROTO_E_TIMEOUT) == 0 ? PROTO_E_TIMEOUT :
		    PROTO_E_CTS_DOWN, msg);
		return;
	}
	if (code == NULL) {
		const struct msg_checkpoint_ok *ok = body;
		log_info("checkpoint of %s at %s: %s seq %llu", b->gid, op->holder, ok->checkpoint_id,
		    (unsigned long long)ok->seq);
		proto_reply_ok(op->r, op->r->pt->reply, ok);
	} else if (strcmp(code, PROTO_E_UNAVAILABLE) == 0 && strstr(msg, "core service") == NULL) {
		proto_reply_err(op->r, PROTO_E_CTS_DOWN, "CTS %s holding %s does not answer: %s",
		    op->holder, b->gid, msg);
	} else if (strcmp(code, PROTO_E_TIMEOUT) == 0) {
		proto_reply_err(op->r, PROTO_E_TIMEOUT, "CTS %s: %s", op->holder, msg);
	} else {
		proto_reply_err(op->r, code, "CTS %s: %s", op->holder, msg);
	}
	free(op);
}

static void
router_forward(struct router_op *op, const char *endpoint)
{
	struct msg_do_checkpoint *b = op->r->body;
	struct gcs_cts *c = registry_find(op->g, op->holder);

	if (c == NULL) {
		/* known from the directory only: not marked up, so no heartbeat is expected here */
		c = registry_touch(op->g, op->holder, endpoint);
	}
	char err[256];

	if (c->client == NULL) {
		struct proto_client_config cfg = { .endpoint = c->endpoint, .expect_role = "cts",
			.expect_name = c->name, .timeout_ms = op->g->request_timeout_ms };
		if ((c->client = proto_client_new(op->g->base, &op->g->tls, &cfg, err, sizeof err)) == NULL) {
			proto_reply_err(op->r, PROTO_E_INTERNAL, "%s", err);
			free(op);
			return;
		}
	}
	proto_client_request(c->client, "do_checkpoint", op->r->pt, b, router_on_cts_reply, op);
}

static void
router_on_cts_entry(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	const char *ep = res->nentries ? dir_entry_get(&res->entries[0], "gcaEndpoint") : NULL;
	const char *status = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (res->status != DIR_OK || ep == NULL) {
		proto_reply_err(op->r, res->status == DIR_OK ? PROTO_E_CTS_DOWN : gcs_dir_code(res->status),
		    "CTS %s holding the GID is not known: %s", op->holder, res->msg);
		free(op);
		return;
	}
	if (status != NULL && (strcmp(status, "retired") == 0 || strcmp(status, "down") == 0)) {
		proto_reply_err(op->r, PROTO_E_CTS_DOWN, "CTS %s holding the GID is %s", op->holder, status);
		free(op);
		return;
	}
	router_forward(op, ep);
}

static void
router_on_idem(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;

	if (res->status == DIR_OK && res->nentries > 0) {
		const struct dir_entry *e = &res->entries[0];
		const char *seq = dir_entry_get(e, "gcaSequenceNumber");
		struct msg_checkpoint_ok ok = {
			.checkpoint_id = (char *)dir_entry_get(e, "gcaCheckpointId"),
			.image_name = (char *)dir_entry_get(e, "gcaImageName"),
			.cts = (char *)dir_entry_get(e, "gcaCTSName"),
			.seq = seq ? strtoull(seq, NULL, 10) : 0,
		};
		proto_reply_ok(op->r, op->r->pt->reply, &ok);	/* a retry: the first result */
		free(op);
		return;
	}
	{
		struct gcs_cts *c = registry_find(op->g, op->holder);
		char dn[1024];

		if (c != NULL && c->endpoint != NULL && c->up) {
			router_forward(op, c->endpoint);
			return;
		}
		if (dir_dn_cts(op->g->dir, op->holder, dn, sizeof dn) != 0) {
			proto_reply_err(op->r, PROTO_E_INTERNAL, "bad CTS name %s", op->holder);
			free(op);
			return;
		}
		dir_search(op->g->dir, dn, 0, "(objectClass=gcaTranslationService)", 1,
		    router_on_cts_entry, op);
	}
}

static void
router_on_job(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_do_checkpoint *b = op->r->body;
	const char *holder, *state;

	if (res->status != DIR_OK || res->nentries == 0) {
		if (res->status == DIR_OK || res->status == DIR_NOT_FOUND)
			proto_reply_err(op->r, PROTO_E_NOT_FOUND, "unknown GID %s: no job was started "
			    "with it (gca-exec --gid)", b->gid);
		else
			proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
		free(op);
		return;
	}
	holder = dir_entry_get(&res->entries[0], "gcaCTSName");
	state = dir_entry_get(&res->entries[0], "gcaJobState");
	if (state != NULL && strcmp(state, "finished") == 0) {
		proto_reply_err(op->r, PROTO_E_NOT_FOUND, "job %s has finished", b->gid);
		free(op);
		return;
	}
	snprintf(op->holder, sizeof op->holder, "%s", holder ? holder : "");
	if (b->idem_key != NULL) {
		char dn[1024], esc[512], filter[700];
		if (dir_dn_job(op->g->dir, b->gid, dn, sizeof dn) == 0 &&
		    dir_filter_escape(b->idem_key, esc, sizeof esc) == 0) {
			snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaProperty=idem=%s))",
			    esc);
			dir_search(op->g->dir, dn, 1, filter, 1, router_on_idem, op);
			return;
		}
	}
	{
		struct dir_result none = { 0 };
		router_on_idem(&none, op);
	}
}

void
router_do_checkpoint(struct proto_req *r, void *ctx)
{
	struct msg_do_checkpoint *b = r->body;

	struct gcs *g = ctx;
	const char *holder;
	bool finished = false;

	if (!name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID");
		return;
	}
	/* The cache, in step with the directory's change feed, saves a directory round trip. */
	if ((holder = cache_holder(g, b->gid, &finished)) != NULL && !finished) {
		struct dir_entry e = { 0 };
		struct dir_result res = { .status = DIR_OK, .entries = &e, .nentries = 1 };

		dir_entry_add(&e, "gcaCTSName", holder);
		router_on_job(&res, router_op_new(g, r));
		dir_entry_clear(&e);
		return;
	}
	dir_job_get(g->dir, b->gid, router_on_job, router_op_new(g, r));
}
