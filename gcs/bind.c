/*
 * Bindings (paper 5.1 step 4, 5.2): which CTS holds a GID is in the directory, moved by
 * compare-and-swap (ldap/dir_job.c). job_bind applies the rules of who may bind a GID: a CTS binds only
 * for itself; a GID already bound needs the same owner, or root's recovery; a GID held by a CTS
 * that is up moves only by a recovery. job_unbind records that a job ended, or that a CTS stopped
 * the old copy of a GID bound elsewhere (fenced). The CTS that held a moved GID is told (moved.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct bind_op {
	struct gcs		*g;
	struct proto_req	*r;
	char			 holder[256];
	char			 holder_local[64];	/* the process the holder had (gcaLocalId) */
};

static struct bind_op *
bind_op_new(struct gcs *g, struct proto_req *r)
{
	struct bind_op *op = xcalloc(1, sizeof *op);

	op->g = g;
	op->r = r;
	return op;
}

/* ---- job_bind ---- */

/* A bind that did not happen: its names in relay.c will see no echo. */
static void
bind_failed(struct bind_op *op)
{
	struct msg_job_bind *b = op->r->body;

	relay_forget(op->g, "bind", b->gid, b->cts);
	relay_hold(op->g, b->gid, NULL);
}

static void
bind_on_moved(const struct dir_result *res, void *arg)
{
	struct bind_op *op = arg;
	struct msg_job_bind *b = op->r->body;
	struct msg_job_bind_ok ok = { "running" };

	if (res->status != DIR_OK)
		bind_failed(op);

	if (res->status == DIR_OK) {
		log_info("GID %s moved from CTS %s to %s%s", b->gid, op->holder, b->cts,
		    b->recovery ? " (recovery)" : "");
		notify_event(op->g, strcmp(op->holder, b->cts) == 0 ? "bound" : "moved", b->gid, b->cts,
		    b->checkpoint_id, 0);
		if (op->holder[0] != '\0' && strcmp(op->holder, b->cts) != 0)
			moved_tell(op->g, op->holder, b->gid, b->cts, op->holder_local);
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
bind_status_up(const char *status)
{
	return status != NULL && (strcmp(status, "ok") == 0 || strncmp(status, "unavailable", 11) == 0);
}

static void
bind_on_holder(const struct dir_result *res, void *arg)
{
	struct bind_op *op = arg;
	struct msg_job_bind *b = op->r->body;
	const char *status = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (res->status == DIR_OK && bind_status_up(status)) {
		bind_failed(op);
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is held by CTS %s, which is up (%s, "
		    "as its GCS says); only a recovery may move it", b->gid, op->holder, status);
		free(op);
		return;
	}
	dir_job_bind(op->g->dir, b->gid, b->cts, b->owner, b->local_id, op->holder, bind_on_moved,
	    op);
}

static void
bind_on_bound(const struct dir_result *res, void *arg)
{
	struct bind_op *op = arg;
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
		bind_failed(op);
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
		free(op);
		return;
	}
	/* The GID exists: its owner may bind it again (recovery, migration), or an admin may
	 * recover it: root on a CTS's socket is that resource's administrator (docs/DESIGN.md, "Who may
	 * bind a GID"). A move keeps the job's owner (ldap/dir_job.c), so it stays its user's. */
	holder = dir_entry_get(&res->entries[0], "gcaCTSName");
	owner = dir_entry_get(&res->entries[0], "gcaOwner");
	state = dir_entry_get(&res->entries[0], "gcaJobState");
	local = dir_entry_get(&res->entries[0], "gcaLocalId");
	if (owner != NULL && strcmp(owner, b->owner) != 0 &&
	    !(b->recovery && strcmp(b->owner, "root") == 0)) {
		bind_failed(op);
		proto_reply_err(op->r, PROTO_E_FORBIDDEN, "GID %s belongs to %s, not %s", b->gid, owner,
		    b->owner);
		free(op);
		return;
	}
	live = holder ? registry_find(op->g, holder) : NULL;
	if (holder != NULL && strcmp(holder, b->cts) != 0 && !b->recovery && live != NULL &&
	    live->up && (state == NULL || strcmp(state, "finished") != 0)) {
		bind_failed(op);
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
			    bind_on_holder, op);
			return;
		}
	}
	dir_job_bind(op->g->dir, b->gid, b->cts, b->owner, b->local_id, holder, bind_on_moved, op);
}

void
bind_job_bind(struct proto_req *r, void *ctx)
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
	    bind_on_bound, bind_op_new(ctx, r));
}

/* ---- job_unbind: the job ended ---- */

static void
bind_on_unbound(const struct dir_result *res, void *arg)
{
	struct bind_op *op = arg;
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
bind_on_fenced(const struct dir_result *res, void *arg)
{
	struct bind_op *op = arg;
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
bind_fenced(struct bind_op *op, const char *holder, const char *local)
{
	struct msg_job_unbind *b = op->r->body;

	if (holder != NULL && local != NULL && strcmp(holder, b->cts) == 0 &&
	    strcmp(local, b->local_id) == 0) {
		proto_reply_err(op->r, PROTO_E_CONFLICT, "GID %s is bound to %s's process %s: that "
		    "copy is the live one, not a fenced one", b->gid, b->cts, b->local_id);
		free(op);
		return;
	}
	dir_job_fenced(op->g->dir, b->gid, b->cts, b->local_id, bind_on_fenced, op);
}

static void
bind_on_unbind_holder(const struct dir_result *res, void *arg)
{
	struct bind_op *op = arg;
	struct msg_job_unbind *b = op->r->body;
	const char *holder = res->nentries ? dir_entry_get(&res->entries[0], "gcaCTSName") : NULL;

	if (res->status != DIR_OK || res->nentries == 0) {
		proto_reply_err(op->r, res->status == DIR_OK ? PROTO_E_NOT_FOUND :
		    gcs_dir_code(res->status), "unknown GID %s", b->gid);
		free(op);
		return;
	}
	if (b->state != NULL && strcmp(b->state, "fenced") == 0) {
		bind_fenced(op, holder, dir_entry_get(&res->entries[0], "gcaLocalId"));
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
	    (int)b->exit_status, bind_on_unbound, op);
}

void
bind_job_unbind(struct proto_req *r, void *ctx)
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
	dir_job_get(((struct gcs *)ctx)->dir, b->gid, bind_on_unbind_holder, bind_op_new(ctx, r));
}
