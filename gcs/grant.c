/*
 * image_grant (docs/DESIGN.md, "Who may bind a GID"; docs/PROTOCOL.md): a CTS asks to fetch one
 * checkpoint's image, for itself (a recovery there) or, when it holds the image, for a replica.
 * The GCS reads the record and the CTS entries: the record must exist and not be expired, the
 * target must run the same core service and, unless it took the checkpoint, say gcaMigration TRUE.
 * The reply is a signed token (proto/grant.c) the holder checks alone, and the holders a fetch may
 * try ("name@host:port", live ones first): the CTS that took it and every gcaLocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define GRANT_TTL_MS	(10 * 60 * 1000)
#define GRANT_HOLDERS	16

struct grant_op {
	struct gcs		*g;
	struct proto_req	*r;
	char			 gid[256], core[128], sha256[65], taker[256];
	char			*holders[GRANT_HOLDERS];
	size_t			 nholders;
};

static void
grant_op_free(struct grant_op *op)
{
	for (size_t i = 0; i < op->nholders; i++)
		free(op->holders[i]);
	free(op);
}

static void
grant_fail(struct grant_op *op, const char *code, const char *msg)
{
	proto_reply_err(op->r, code, "%s", msg);
	grant_op_free(op);
}

static void
grant_add_holder(struct grant_op *op, const char *name)
{
	for (size_t i = 0; i < op->nholders; i++) {
		if (strcasecmp(op->holders[i], name) == 0)
			return;
	}
	if (op->nholders < GRANT_HOLDERS)
		op->holders[op->nholders++] = xstrdup(name);
}

static const struct dir_entry *
grant_cts_entry(const struct dir_result *res, const char *name)
{
	for (size_t i = 0; i < res->nentries; i++) {
		const char *cn = dir_entry_get(&res->entries[i], "cn");
		if (cn != NULL && strcasecmp(cn, name) == 0)
			return &res->entries[i];
	}
	return NULL;
}

static void
grant_on_cts(const struct dir_result *res, void *arg)
{
	struct grant_op *op = arg;
	struct msg_image_grant *b = op->r->body;
	const struct dir_entry *t;
	const char *core, *mig;
	struct msg_image_grant_ok ok = { 0 };
	struct proto_grant pg = { 0 };
	char err[512], why[768];
	char *token = NULL;
	bool taker = op->nholders > 0 && strcasecmp(op->holders[0], b->target_cts) == 0;

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		grant_fail(op, gcs_dir_code(res->status), res->msg);
		return;
	}
	if ((t = grant_cts_entry(res, b->target_cts)) == NULL) {
		snprintf(why, sizeof why, "CTS %s is not in the directory", b->target_cts);
		grant_fail(op, PROTO_E_NOT_FOUND, why);
		return;
	}
	core = dir_entry_get(t, "gcaCoreService");
	mig = dir_entry_get(t, "gcaMigration");
	if (core == NULL || strcasecmp(core, op->core) != 0) {
		snprintf(why, sizeof why, "CTS %s runs core service %s, checkpoint %s was taken by %s",
		    b->target_cts, core ? core : "none", b->checkpoint_id, op->core);
		grant_fail(op, PROTO_E_REFUSED, why);
		return;
	}
	if (!taker && (mig == NULL || strcasecmp(mig, "TRUE") != 0)) {
		snprintf(why, sizeof why, "CTS %s does not take jobs from other resources "
		    "(gcaMigration FALSE in its descriptor)", b->target_cts);
		grant_fail(op, PROTO_E_REFUSED, why);
		return;
	}
	/* Holders with an endpoint, the live ones first. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < op->nholders; i++) {
			const struct dir_entry *h = grant_cts_entry(res, op->holders[i]);
			struct gcs_cts *live = registry_find(op->g, op->holders[i]);
			const char *ep = live && live->endpoint ? live->endpoint :
			    h ? dir_entry_get(h, "gcaEndpoint") : NULL;
			bool up = live != NULL && live->up;
			char hs[1024];

			if (ep == NULL || strcasecmp(op->holders[i], b->target_cts) == 0 ||
			    (pass == 0) != up)
				continue;
			snprintf(hs, sizeof hs, "%s@%s", op->holders[i], ep);
			proto_strlist_add(&ok.holders, hs);
		}
	}
	snprintf(pg.checkpoint_id, sizeof pg.checkpoint_id, "%s", b->checkpoint_id);
	snprintf(pg.target, sizeof pg.target, "%s", b->target_cts);
	snprintf(pg.gcs, sizeof pg.gcs, "%s", op->g->name);
	snprintf(pg.gid, sizeof pg.gid, "%s", op->gid);
	snprintf(pg.sha256, sizeof pg.sha256, "%s", op->sha256);
	snprintf(pg.taker, sizeof pg.taker, "%s", op->taker);
	pg.expires_ms = time_now_ms() + GRANT_TTL_MS;
	if (proto_grant_sign(&op->g->tls, &pg, &token, err, sizeof err) != 0) {
		log_error("image_grant: %s", err);
		proto_strlist_free(&ok.holders);
		grant_fail(op, PROTO_E_INTERNAL, err);
		return;
	}
	ok.grant = token;
	ok.expires_ms = pg.expires_ms;
	log_info("grant for checkpoint %s of %s to CTS %s (%zu holders)", b->checkpoint_id, op->gid,
	    b->target_cts, ok.holders.n);
	proto_reply_ok(op->r, op->r->pt->reply, &ok);
	proto_strlist_free(&ok.holders);
	free(token);
	grant_op_free(op);
}

static void
grant_on_record(const struct dir_result *res, void *arg)
{
	struct grant_op *op = arg;
	struct msg_image_grant *b = op->r->body;
	const struct dir_entry *e;
	const struct dir_attr *loc;
	const char *gid, *taker, *core, *status, *sha;
	char filter[4096], esc[800], base[512], why[512];
	bool caller_holds;

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		grant_fail(op, gcs_dir_code(res->status), res->msg);
		return;
	}
	if (res->nentries == 0) {
		snprintf(why, sizeof why, "no checkpoint %s in the directory", b->checkpoint_id);
		grant_fail(op, PROTO_E_NOT_FOUND, why);
		return;
	}
	e = &res->entries[0];
	gid = dir_entry_get(e, "gcaGID");
	taker = dir_entry_get(e, "gcaCTSName");
	core = dir_entry_get(e, "gcaCoreService");
	status = dir_entry_get(e, "gcaStatus");
	sha = dir_entry_get(e, "gcaImageSha256");
	/* without the hash no copy could be checked against the record */
	if (gid == NULL || taker == NULL || core == NULL || sha == NULL || strlen(sha) != 64) {
		snprintf(why, sizeof why, "the record of checkpoint %s lacks its GID, CTS, core "
		    "service or image sha256", b->checkpoint_id);
		grant_fail(op, PROTO_E_INTERNAL, why);
		return;
	}
	if (status != NULL && strncasecmp(status, "expired", 7) == 0) {
		snprintf(why, sizeof why, "checkpoint %s has expired (removed by retention)",
		    b->checkpoint_id);
		grant_fail(op, PROTO_E_NOT_FOUND, why);
		return;
	}
	snprintf(op->gid, sizeof op->gid, "%s", gid);
	snprintf(op->core, sizeof op->core, "%s", core);
	snprintf(op->sha256, sizeof op->sha256, "%s", sha);
	snprintf(op->taker, sizeof op->taker, "%s", taker);
	grant_add_holder(op, taker);
	if ((loc = dir_entry_attr(e, "gcaLocation")) != NULL) {
		for (size_t i = 0; i < loc->nvals; i++)
			grant_add_holder(op, loc->vals[i]);
	}
	/* A CTS asks for itself, or for a replica of an image it holds. */
	caller_holds = false;
	for (size_t i = 0; i < op->nholders; i++)
		caller_holds |= strcasecmp(op->holders[i], op->r->peer.name) == 0;
	if (strcmp(op->r->peer.name, b->target_cts) != 0 && !caller_holds) {
		snprintf(why, sizeof why, "CTS %s may ask a grant only for itself or for a copy of an "
		    "image it holds", op->r->peer.name);
		grant_fail(op, PROTO_E_FORBIDDEN, why);
		return;
	}
	snprintf(filter, sizeof filter, "(&(objectClass=gcaTranslationService)(|");
	for (size_t i = 0; i <= op->nholders; i++) {
		const char *n = i < op->nholders ? op->holders[i] : b->target_cts;
		size_t used = strlen(filter);
		if (dir_filter_escape(n, esc, sizeof esc) != 0 ||
		    snprintf(filter + used, sizeof filter - used, "(cn=%s)", esc) >=
		    (int)(sizeof filter - used)) {
			grant_fail(op, PROTO_E_BAD_FIELD, "CTS names too long");
			return;
		}
	}
	if (strlen(filter) + 3 > sizeof filter) {
		grant_fail(op, PROTO_E_BAD_FIELD, "CTS names too long");
		return;
	}
	strcat(filter, "))");
	snprintf(base, sizeof base, "ou=cts,%s", dir_base(op->g->dir));
	dir_search(op->g->dir, base, 1, filter, GRANT_HOLDERS + 1, grant_on_cts, op);
}

void
grant_image(struct proto_req *r, void *ctx)
{
	struct msg_image_grant *b = r->body;
	struct grant_op *op;
	char filter[256], base[512];

	if (!id_valid(b->checkpoint_id) || !name_valid(b->target_cts)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "checkpoint_id must be a checkpoint id and "
		    "target_cts a CTS name");
		return;
	}
	op = xcalloc(1, sizeof *op);
	op->g = ctx;
	op->r = r;
	/* An id is a lower-case UUID: nothing to escape. */
	snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=%s))",
	    b->checkpoint_id);
	snprintf(base, sizeof base, "ou=jobs,%s", dir_base(op->g->dir));
	dir_search(op->g->dir, base, 2, filter, 1, grant_on_record, op);
}

/* ---- image_location: a CTS holds a verified copy (a replica, or a fetch for a recovery), or no
 * longer holds it (retention; the CTS that took the checkpoint also marks the record expired) ---- */

static void
grant_on_location(const struct dir_result *res, void *arg)
{
	struct proto_req *r = arg;
	struct msg_image_location *b = r->body;

	/* CAS_LOST here is "already so": the value was there (added) or gone (removed). */
	if (res->status == DIR_OK || res->status == DIR_CAS_LOST) {
		log_info("checkpoint %s of %s: %s at CTS %s%s", b->checkpoint_id, b->gid,
		    b->removed ? "no copy" : "a verified copy", b->cts,
		    b->expired ? "; the record is expired" : "");
		proto_reply_ok(r, r->pt->reply, NULL);
	} else if (res->status == DIR_NOT_FOUND) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "no checkpoint %s of GID %s", b->checkpoint_id,
		    b->gid);
	} else {
		proto_reply_err(r, gcs_dir_code(res->status), "%s", res->msg);
	}
}

struct grant_loc {
	struct gcs		*g;
	struct proto_req	*r;
};

/* expired: only the CTS that took the checkpoint decides it. */
static void
grant_on_taker(const struct dir_result *res, void *arg)
{
	struct grant_loc *gl = arg;
	struct proto_req *r = gl->r;
	struct msg_image_location *b = r->body;
	const char *taker = res->nentries ? dir_entry_get(&res->entries[0], "gcaCTSName") : NULL;
	struct gcs *g = gl->g;

	free(gl);
	if (res->status != DIR_OK || taker == NULL) {
		proto_reply_err(r, res->status == DIR_OK ? PROTO_E_NOT_FOUND :
		    gcs_dir_code(res->status), "no checkpoint %s of GID %s", b->checkpoint_id, b->gid);
		return;
	}
	/* Another CTS's retention (a fetched copy) removes only its own location. */
	b->expired = strcmp(taker, r->peer.name) == 0;
	dir_checkpoint_location(g->dir, b->gid, b->checkpoint_id, b->cts, b->removed, b->expired,
	    grant_on_location, r);
}

void
grant_location(struct proto_req *r, void *ctx)
{
	struct msg_image_location *b = r->body;
	struct gcs *g = ctx;
	struct grant_loc *gl;

	if (strcmp(r->peer.name, b->cts) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may record only its own copies, not %s's",
		    r->peer.name, b->cts);
		return;
	}
	if (!id_valid(b->checkpoint_id) || !name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID and checkpoint id");
		return;
	}
	if (!b->expired) {
		dir_checkpoint_location(g->dir, b->gid, b->checkpoint_id, b->cts, b->removed, false,
		    grant_on_location, r);
		return;
	}
	gl = xcalloc(1, sizeof *gl);
	gl->g = g;
	gl->r = r;
	dir_checkpoint_get(g->dir, b->gid, b->checkpoint_id, grant_on_taker, gl);
}

/*
 * ---- image_gc (gca-ctl gc): retention at every live CTS now, or what it would remove ----
 *
 * Every CTS in the directory is considered, not only those this GCS hears (another GCS may hear
 * them): one that is down (this GCS lost its heartbeats, or the directory says down or retired)
 * is not asked and is named in `skipped`, so "nothing to remove" never hides a CTS that was not
 * asked.
 */

struct grant_gc {
	struct gcs		*g;
	struct proto_req	*r;
	unsigned		 waiting;
	struct msg_image_gc_ok	 ok;
};

struct grant_gc_one {
	struct grant_gc		*gc;
	char			 cts[256];
};

static void
grant_gc_done(struct grant_gc *gc)
{
	proto_reply_ok(gc->r, gc->r->pt->reply, &gc->ok);
	proto_strlist_free(&gc->ok.removed);
	proto_strlist_free(&gc->ok.errors);
	proto_strlist_free(&gc->ok.skipped);
	free(gc);
}

static void
grant_on_gc(const char *code, const char *msg, const void *body, void *arg)
{
	struct grant_gc_one *one = arg;
	struct grant_gc *gc = one->gc;
	const struct msg_image_gc_ok *ok = body;
	char line[1024];

	if (code != NULL) {
		snprintf(line, sizeof line, "%s: %s: %s", one->cts, code, msg);
		proto_strlist_add(&gc->ok.errors, line);
	} else {
		for (size_t i = 0; i < ok->removed.n; i++)
			proto_strlist_add(&gc->ok.removed, ok->removed.v[i]);
		for (size_t i = 0; i < ok->errors.n; i++)
			proto_strlist_add(&gc->ok.errors, ok->errors.v[i]);
	}
	free(one);
	if (--gc->waiting == 0)
		grant_gc_done(gc);
}

static void
grant_gc_skip(struct grant_gc *gc, const char *name, const char *why)
{
	char line[600];

	snprintf(line, sizeof line, "%.256s: %.300s", name, why);
	log_info("gc: CTS %s not asked: %s", name, why);
	proto_strlist_add(&gc->ok.skipped, line);
}

/* Sends image_gc to the CTS name at endpoint. */
static void
grant_gc_ask(struct grant_gc *gc, const char *name, const char *endpoint)
{
	struct gcs *g = gc->g;
	struct gcs_cts *c = registry_find(g, name);
	struct grant_gc_one *one;
	char err[256];

	if (c == NULL)	/* known from the directory only: not marked up, no heartbeat expected */
		c = registry_touch(g, name, endpoint);
	if (pool_client(g, c, err, sizeof err) != 0) {
		proto_strlist_add(&gc->ok.errors, err);
		return;
	}
	one = xcalloc(1, sizeof *one);
	one->gc = gc;
	snprintf(one->cts, sizeof one->cts, "%s", name);
	gc->waiting++;
	proto_client_request(c->client, "image_gc", gc->r->pt, gc->r->body, grant_on_gc, one);
}

static void
grant_on_gc_cts(const struct dir_result *res, void *arg)
{
	struct grant_gc *gc = arg;
	struct gcs *g = gc->g;
	char line[600];

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		/* the directory is away: those this GCS hears are still asked */
		snprintf(line, sizeof line, "the directory is unavailable (%.300s): only the CTSes this "
		    "GCS hears were asked", res->msg);
		proto_strlist_add(&gc->ok.errors, line);
		for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
			if (c->up && c->endpoint != NULL)
				grant_gc_ask(gc, c->name, c->endpoint);
			else
				grant_gc_skip(gc, c->name, "down (no heartbeat here)");
		}
	}
	for (size_t i = 0; i < res->nentries; i++) {
		const char *name = dir_entry_get(&res->entries[i], "cn");
		const char *ep = dir_entry_get(&res->entries[i], "gcaEndpoint");
		const char *st = dir_entry_get(&res->entries[i], "gcaStatus");
		struct gcs_cts *live;

		if (name == NULL)
			continue;
		live = registry_find(g, name);
		if (live != NULL && live->up && live->endpoint != NULL) {
			grant_gc_ask(gc, name, live->endpoint);
		} else if (st != NULL && (strcmp(st, "down") == 0 || strcmp(st, "retired") == 0)) {
			snprintf(line, sizeof line, "%s (gcaStatus in the directory)", st);
			grant_gc_skip(gc, name, line);
		} else if (ep == NULL) {
			grant_gc_skip(gc, name, "no endpoint in the directory");
		} else {
			grant_gc_ask(gc, name, ep);
		}
	}
	if (--gc->waiting == 0)
		grant_gc_done(gc);
}

void
grant_gc(struct proto_req *r, void *ctx)
{
	struct gcs *g = ctx;
	struct grant_gc *gc = xcalloc(1, sizeof *gc);
	char base[512];

	gc->g = g;
	gc->r = r;
	gc->waiting = 1;	/* the directory search's, dropped when it has asked every CTS */
	snprintf(base, sizeof base, "ou=cts,%s", dir_base(g->dir));
	dir_search(g->dir, base, 1, "(objectClass=gcaTranslationService)", 0, grant_on_gc_cts, gc);
}
