/*
 * Bindings and routing (paper 5.1 step 4, 5.2, 5.3 step 11): which CTS holds a GID is in the
 * directory; a broker's do_checkpoint goes to that CTS over a pooled mTLS connection, and its
 * answer comes back after the CTS's record was stored (the one record path).
 */
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct router_op {
	struct gcs		*g;
	struct proto_req	*r;
	char			 holder[256];
	char			 holder_local[64];	/* the process the holder had (gcaLocalId) */
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
route_on_cts_state(bool up, const char *why, void *arg)
{
	struct gcs_cts *c = arg;

	(void)why;
	if (up)
		c->conn_ups++;
}

/* c's pooled connection (do_checkpoint, job_moved, image_gc), made when first needed. 0, or -1
 * and why in err. The GCS closes it after a minute without a request: the pooled side closes
 * first (the CTS never cuts a GCS's connection for being quiet either). */
#define ROUTER_POOL_IDLE_MS 60000
int
router_cts_client(struct gcs *g, struct gcs_cts *c, char *err, size_t errlen)
{
	/* the client's own limit only frees what a CTS never answers: routes have theirs */
	struct proto_client_config cfg = { .endpoint = c->endpoint, .expect_role = "cts",
		.expect_name = c->name, .timeout_ms = g->request_timeout_ms + 1000,
		.on_state = route_on_cts_state, .arg = c, .idle_close_ms = ROUTER_POOL_IDLE_MS };

	if (c->client != NULL)
		return 0;
	if (c->endpoint == NULL) {
		snprintf(err, errlen, "no endpoint known for CTS %s", c->name);
		return -1;
	}
	return (c->client = proto_client_new(g->base, &g->tls, &cfg, err, errlen)) == NULL ? -1 : 0;
}

/* A job_moved on its way: asked again, a second apart, while the CTS does not hold the GID yet
 * (its own bind's answer may still be on its way to it when a concurrent binding is seen). */
struct router_moved {
	struct gcs	*g;
	char		 holder[256], gid[256], cts[256], local_id[64];
	int		 tries;
};

static void router_send_moved(struct router_moved *mv);

static void
router_moved_again(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	router_send_moved(arg);
}

static void
router_on_told_moved(const char *code, const char *msg, const void *body, void *arg)
{
	struct router_moved *mv = arg;
	struct timeval second = { 1, 0 };

	(void)body;
	if (code != NULL && strcmp(code, PROTO_E_NOT_FOUND) == 0 && ++mv->tries < 5 &&
	    event_base_once(mv->g->base, -1, EV_TIMEOUT, router_moved_again, mv, &second) == 0)
		return;
	if (code != NULL)
		log_info("GID %s: its previous CTS %s was not told of the move (%s: %s); it learns it "
		    "from its next record", mv->gid, mv->holder, code, msg);
	free(mv);
}

static void
router_send_moved(struct router_moved *mv)
{
	struct gcs_cts *c = registry_find(mv->g, mv->holder);
	struct msg_job_moved m = { mv->gid, mv->cts, mv->local_id[0] ? mv->local_id : NULL };
	char err[256];

	if (c == NULL || !c->up || c->retired || c->endpoint == NULL) {
		free(mv);
		return;
	}
	if (router_cts_client(mv->g, c, err, sizeof err) != 0) {
		log_info("GID %s: cannot tell CTS %s of the move: %s", mv->gid, mv->holder, err);
		free(mv);
		return;
	}
	proto_client_request(c->client, "job_moved", proto_type_find("job_moved"), &m,
	    router_on_told_moved, mv);
}

/*
 * The CTS that held gid before this move (or lost its binding to a concurrent one, relay.c) is
 * told at once, when this GCS knows it up, so it stops checkpointing its process (local_id, or
 * NULL: whichever it has). One that is down, or beats to another GCS, learns it when its next
 * record is refused (outbox.c).
 */
void
router_tell_moved(struct gcs *g, const char *holder, const char *gid, const char *cts,
    const char *local_id)
{
	struct router_moved *mv = calloc(1, sizeof *mv);

	if (mv == NULL)
		abort();
	mv->g = g;
	snprintf(mv->holder, sizeof mv->holder, "%s", holder);
	snprintf(mv->gid, sizeof mv->gid, "%s", gid);
	snprintf(mv->cts, sizeof mv->cts, "%s", cts);
	snprintf(mv->local_id, sizeof mv->local_id, "%s", local_id ? local_id : "");
	router_send_moved(mv);
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
		if (op->holder[0] != '\0' && strcmp(op->holder, b->cts) != 0)
			router_tell_moved(op->g, op->holder, b->gid, b->cts, op->holder_local);
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
	const char *holder, *owner, *state, *local;
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
	/* The GID exists: its owner may bind it again (recovery, migration), or an admin may
	 * recover it: root on a CTS's socket is that resource's administrator (docs/DESIGN.md, "Who may
	 * bind a GID"). A move keeps the job's owner (dir_ops.c), so it stays its user's. */
	holder = dir_entry_get(&res->entries[0], "gcaCTSName");
	owner = dir_entry_get(&res->entries[0], "gcaOwner");
	state = dir_entry_get(&res->entries[0], "gcaJobState");
	local = dir_entry_get(&res->entries[0], "gcaLocalId");
	if (owner != NULL && strcmp(owner, b->owner) != 0 &&
	    !(b->recovery && strcmp(b->owner, "root") == 0)) {
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
	snprintf(op->holder_local, sizeof op->holder_local, "%s", local ? local : "");
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
		relay_hold(op->g, b->gid, NULL);	/* ended here: a later bind elsewhere is no loss */
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

/* ---- job_unbind {state: fenced}: a CTS stopped the old copy of a GID bound elsewhere ---- */

static void
router_on_fenced(const struct dir_result *res, void *arg)
{
	struct router_op *op = arg;
	struct msg_job_unbind *b = op->r->body;

	/* CAS_LOST: the note is there already (a report sent again) */
	if (res->status == DIR_OK || res->status == DIR_CAS_LOST) {
		if (res->status == DIR_OK) {
			log_info("GID %s: CTS %s stopped its old copy (%s)", b->gid, b->cts,
			    b->local_id);
			notify_event(op->g, "fenced", b->gid, b->cts, NULL, 0);
		}
		proto_reply_ok(op->r, op->r->pt->reply, NULL);
	} else {
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
	}
	free(op);
}

/* Only a copy the binding no longer names may be reported fenced: never the bound process. */
static void
router_fenced(struct router_op *op, const char *holder, const char *local)
{
	struct msg_job_unbind *b = op->r->body;

	if (holder != NULL && local != NULL && strcmp(holder, b->cts) == 0 &&
	    strcmp(local, b->local_id) == 0) {
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is bound to %s's process %s: that "
		    "copy is the live one, not a fenced one", b->gid, b->cts, b->local_id);
		free(op);
		return;
	}
	dir_job_fenced(op->g->dir, b->gid, b->cts, b->local_id, router_on_fenced, op);
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
	if (b->state != NULL && strcmp(b->state, "fenced") == 0) {
		router_fenced(op, holder, dir_entry_get(&res->entries[0], "gcaLocalId"));
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
	if (b->state != NULL && strcmp(b->state, "finished") != 0 && strcmp(b->state, "fenced") != 0) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "state must be finished or fenced, not \"%s\"",
		    b->state);
		return;
	}
	if (b->state != NULL && strcmp(b->state, "fenced") == 0 &&
	    (b->local_id == NULL || *b->local_id == '\0')) {
		proto_reply_err(r, PROTO_E_MISSING_FIELD, "which copy was fenced? (local_id)");
		return;
	}
	dir_job_get(((struct gcs *)ctx)->dir, b->gid, router_on_unbind_holder, router_op_new(ctx, r));
}

/* ---- do_checkpoint ---- */

/*
 * A checkpoint request is a route: the holder looked up (cache, then directory), a retry's record
 * looked for by its key, the request forwarded to the CTS, its answer relayed. Every route has a
 * deadline, the broker's timeout_ms capped by request_timeout: then the broker is answered
 * `timeout` (or the CTS's failure it was waiting on) whatever is still under way, and the route
 * is freed when that step comes back (busy: a directory or CTS callback is outstanding). A reply
 * frees the request: after one, only route_back may look at the route.
 *
 * A keyed checkpoint that the CTS may have taken without saying so (its GCS died before storing
 * the record, the connection broke after the request went out, no answer) looks for its record by
 * key for up to ROUTE_LATE_MS, within the deadline, before telling the broker it failed: the CTS
 * keeps the record in its outbox and sends it through its next GCS, so a checkpoint taken is
 * reported taken (several GCS, issue 11). A request that never reached the CTS (no connection
 * came up) was not taken: cts_down at once.
 */
#define ROUTE_LATE_MS		5000
#define ROUTE_LATE_EVERY_MS	200

struct route {
	struct gcs		*g;
	struct proto_req	*r;
	char			 holder[256];
	char			 holder_status[256];	/* as this GCS or the directory says */
	struct event		*deadline, *late;
	uint64_t		 late_until_ms;
	int			 timeout_ms;
	bool			 busy, replied;
	bool			 was_up;		/* the connection was up when sent */
	unsigned		 ups;			/* the CTS's conn_ups then */
	char			 code[32], msg[512];	/* told if no late record comes */
};

static void route_find_record(struct route *rt);
static void route_to_holder(struct route *rt);

static void
route_free(struct route *rt)
{
	if (rt->deadline != NULL)
		event_free(rt->deadline);
	if (rt->late != NULL)
		event_free(rt->late);
	free(rt);
}

/* A step came back: true if the route goes on; false if it was answered meanwhile (freed). */
static bool
route_back(struct route *rt)
{
	rt->busy = false;
	if (!rt->replied)
		return true;
	route_free(rt);
	return false;
}

static void
route_err(struct route *rt, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
route_err(struct route *rt, const char *code, const char *fmt, ...)
{
	char msg[800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	proto_reply_err(rt->r, code, "%s", msg);
	rt->replied = true;
	if (!rt->busy)
		route_free(rt);
}

static void
route_ok(struct route *rt, const struct msg_checkpoint_ok *ok)
{
	proto_reply_ok(rt->r, rt->r->pt->reply, ok);
	rt->replied = true;
	if (!rt->busy)
		route_free(rt);
}

static void
route_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct route *rt = arg;
	struct msg_do_checkpoint *b = rt->r->body;

	(void)fd;
	(void)what;
	if (rt->code[0] != '\0')	/* a late record did not come in time */
		route_err(rt, rt->code, "CTS %s: %s", rt->holder, rt->msg);
	else
		route_err(rt, PROTO_E_TIMEOUT, "checkpoint of %s: no answer within %d ms%s%s%s", b->gid,
		    rt->timeout_ms, rt->holder[0] ? " (CTS " : "", rt->holder, rt->holder[0] ? ")" : "");
}

static void
route_late_look(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	route_find_record(arg);
}

/* The CTS may have taken it: look for its record by key a while before telling code. */
static void
route_wait_record(struct route *rt, const char *code, const char *msg)
{
	struct timeval every = { 0, ROUTE_LATE_EVERY_MS * 1000 };

	snprintf(rt->code, sizeof rt->code, "%s", code);
	snprintf(rt->msg, sizeof rt->msg, "%s", msg);
	rt->late_until_ms = time_mono_ms() + ROUTE_LATE_MS;
	if ((rt->late = evtimer_new(rt->g->base, route_late_look, rt)) == NULL)
		abort();
	evtimer_add(rt->late, &every);
}

static void
route_on_record(const struct dir_result *res, void *arg)
{
	struct route *rt = arg;
	struct timeval every = { 0, ROUTE_LATE_EVERY_MS * 1000 };

	if (!route_back(rt))
		return;
	if (res->status == DIR_OK && res->nentries > 0) {
		const struct dir_entry *e = &res->entries[0];
		const char *seq = dir_entry_get(e, "gcaSequenceNumber");
		struct msg_checkpoint_ok ok = {
			.checkpoint_id = dir_entry_get(e, "gcaCheckpointId"),
			.image_name = dir_entry_get(e, "gcaImageName"),
			.cts = dir_entry_get(e, "gcaCTSName"),
			.seq = seq ? strtoull(seq, NULL, 10) : 0,
		};
		if (rt->code[0] != '\0')
			log_info("checkpoint of %s: its record arrived after the CTS's error (%s)",
			    ((struct msg_do_checkpoint *)rt->r->body)->gid, rt->msg);
		route_ok(rt, &ok);	/* a retry or a late record: the first result */
	} else if (rt->code[0] == '\0') {
		route_to_holder(rt);	/* no checkpoint with this key yet */
	} else if (time_mono_ms() + ROUTE_LATE_EVERY_MS < rt->late_until_ms) {
		evtimer_add(rt->late, &every);
	} else {
		route_err(rt, rt->code, "CTS %s: %s", rt->holder, rt->msg);
	}
}

/* The job's record with the request's idempotency key, if there is one yet. */
static void
route_find_record(struct route *rt)
{
	struct msg_do_checkpoint *b = rt->r->body;
	char dn[1024], esc[512], filter[700];

	if (dir_dn_job(rt->g->dir, b->gid, dn, sizeof dn) != 0 ||
	    dir_filter_escape(b->idem_key, esc, sizeof esc) != 0) {
		struct dir_result none = { .status = DIR_NOT_FOUND };
		rt->busy = true;
		route_on_record(&none, rt);
		return;
	}
	snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaProperty=idem=%s))", esc);
	rt->busy = true;
	dir_search(rt->g->dir, dn, 1, filter, 1, route_on_record, rt);
}

static void
route_on_cts_reply(const char *code, const char *msg, const void *body, void *arg)
{
	struct route *rt = arg;
	struct msg_do_checkpoint *b;
	struct gcs_cts *c;
	bool answered, reached;

	if (!route_back(rt))
		return;		/* answered at the deadline: the request is gone */
	b = rt->r->body;
	if (code == NULL) {
		const struct msg_checkpoint_ok *ok = body;
		log_info("checkpoint of %s at %s: %s seq %llu", b->gid, rt->holder, ok->checkpoint_id,
		    (unsigned long long)ok->seq);
		route_ok(rt, ok);
		return;
	}
	/* An error frame comes over a live connection: the CTS itself answered (its code says
	 * what); a failure of the connection (none could be made, or it broke) means it is down. */
	c = registry_find(rt->g, rt->holder);
	answered = c != NULL && c->client != NULL && proto_client_up(c->client);
	reached = rt->was_up || (c != NULL && c->conn_ups != rt->ups);
	if (strcmp(code, PROTO_E_TIMEOUT) == 0) {
		if (b->idem_key != NULL)
			route_wait_record(rt, PROTO_E_TIMEOUT, msg);
		else
			route_err(rt, PROTO_E_TIMEOUT, "CTS %s: %s", rt->holder, msg);
	} else if (!answered && strcmp(code, PROTO_E_UNAVAILABLE) == 0) {
		if (b->idem_key != NULL && reached)
			route_wait_record(rt, PROTO_E_CTS_DOWN, msg);
		else
			route_err(rt, PROTO_E_CTS_DOWN, "CTS %s holding %s does not answer: %s",
			    rt->holder, b->gid, msg);
	} else if (b->idem_key != NULL && strncmp(rt->holder_status, "unavailable", 11) != 0 &&
	    (strcmp(code, PROTO_E_UNAVAILABLE) == 0 || strcmp(code, PROTO_E_DIRECTORY_DOWN) == 0)) {
		/* a CTS whose core service works took it, but its GCS did not store the record */
		route_wait_record(rt, code, msg);
	} else {
		route_err(rt, code, "CTS %s: %s", rt->holder, msg);
	}
}

static void
route_forward(struct route *rt, const char *endpoint)
{
	struct msg_do_checkpoint *b = rt->r->body;
	struct gcs_cts *c = registry_find(rt->g, rt->holder);
	struct msg_do_checkpoint fwd = *b;
	char err[256];

	if (c == NULL) {
		/* known from the directory only: not marked up, so no heartbeat is expected here */
		c = registry_touch(rt->g, rt->holder, endpoint);
	}
	if (router_cts_client(rt->g, c, err, sizeof err) != 0) {
		route_err(rt, PROTO_E_INTERNAL, "%s", err);
		return;
	}
	rt->was_up = proto_client_up(c->client);
	rt->ups = c->conn_ups;
	fwd.timeout_ms = (uint64_t)rt->timeout_ms;	/* the CTS may use what is left */
	rt->busy = true;
	proto_client_request(c->client, "do_checkpoint", rt->r->pt, &fwd, route_on_cts_reply, rt);
}

static void
route_on_cts_entry(const struct dir_result *res, void *arg)
{
	struct route *rt = arg;
	const char *ep = res->nentries ? dir_entry_get(&res->entries[0], "gcaEndpoint") : NULL;
	const char *status = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (!route_back(rt))
		return;
	if (res->status != DIR_OK || ep == NULL) {
		route_err(rt, res->status == DIR_OK || res->status == DIR_NOT_FOUND ? PROTO_E_CTS_DOWN :
		    gcs_dir_code(res->status), "CTS %s holding the GID is not known: %s", rt->holder,
		    res->msg);
		return;
	}
	if (status != NULL && (strcmp(status, "retired") == 0 || strcmp(status, "down") == 0)) {
		route_err(rt, PROTO_E_CTS_DOWN, "CTS %s holding the GID is %s", rt->holder, status);
		return;
	}
	snprintf(rt->holder_status, sizeof rt->holder_status, "%s", status ? status : "");
	route_forward(rt, ep);
}

static void
route_to_holder(struct route *rt)
{
	struct gcs_cts *c = registry_find(rt->g, rt->holder);
	char dn[1024];

	if (c != NULL && c->endpoint != NULL && c->up && !c->retired) {
		snprintf(rt->holder_status, sizeof rt->holder_status, "%s", c->status ? c->status : "");
		route_forward(rt, c->endpoint);
		return;
	}
	/* Not beating here: down, retired, or beating to another GCS (which keeps its status). */
	if (dir_dn_cts(rt->g->dir, rt->holder, dn, sizeof dn) != 0) {
		route_err(rt, PROTO_E_INTERNAL, "bad CTS name %s", rt->holder);
		return;
	}
	rt->busy = true;
	dir_search(rt->g->dir, dn, 0, "(objectClass=gcaTranslationService)", 1, route_on_cts_entry, rt);
}

static void
route_on_job(const struct dir_result *res, void *arg)
{
	struct route *rt = arg;
	struct msg_do_checkpoint *b;
	const char *holder, *state;

	if (!route_back(rt))
		return;
	b = rt->r->body;
	if (res->status != DIR_OK || res->nentries == 0) {
		if (res->status == DIR_OK || res->status == DIR_NOT_FOUND)
			route_err(rt, PROTO_E_NOT_FOUND, "unknown GID %s: no job was started with it "
			    "(gca-exec --gid)", b->gid);
		else
			route_err(rt, gcs_dir_code(res->status), "%s", res->msg);
		return;
	}
	holder = dir_entry_get(&res->entries[0], "gcaCTSName");
	state = dir_entry_get(&res->entries[0], "gcaJobState");
	if (state != NULL && strcmp(state, "finished") == 0) {
		route_err(rt, PROTO_E_NOT_FOUND, "job %s has finished", b->gid);
		return;
	}
	snprintf(rt->holder, sizeof rt->holder, "%s", holder ? holder : "");
	if (b->idem_key != NULL)
		route_find_record(rt);
	else
		route_to_holder(rt);
}

void
router_do_checkpoint(struct proto_req *r, void *ctx)
{
	struct msg_do_checkpoint *b = r->body;
	struct gcs *g = ctx;
	struct route *rt;
	struct timeval tv;
	const char *holder;
	bool finished = false;

	if (!name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID: %s (%s)", name_why(b->gid),
		    NAME_RULE);
		return;
	}
	if ((rt = calloc(1, sizeof *rt)) == NULL)
		abort();
	rt->g = g;
	rt->r = r;
	rt->timeout_ms = g->request_timeout_ms;
	if (b->timeout_ms > 0 && b->timeout_ms < (uint64_t)rt->timeout_ms)
		rt->timeout_ms = (int)b->timeout_ms;
	tv = (struct timeval){ rt->timeout_ms / 1000, (rt->timeout_ms % 1000) * 1000 };
	if ((rt->deadline = evtimer_new(g->base, route_on_deadline, rt)) == NULL)
		abort();
	evtimer_add(rt->deadline, &tv);
	rt->busy = true;
	/* The cache, in step with the directory's change feed, saves a directory round trip. */
	if ((holder = cache_holder(g, b->gid, &finished)) != NULL && !finished) {
		struct dir_entry e = { 0 };
		struct dir_result res = { .status = DIR_OK, .entries = &e, .nentries = 1 };

		dir_entry_add(&e, "gcaCTSName", holder);
		route_on_job(&res, rt);
		dir_entry_clear(&e);
		return;
	}
	dir_job_get(g->dir, b->gid, route_on_job, rt);
}
