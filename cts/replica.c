/*
 * Replication (the paper's Data Replication Service, issue 10): after each checkpoint is recorded,
 * its image is copied to every replica CTS named in cts.conf (`replicas name@host:port ...`), so it
 * outlives the resource that took it. The copy is pulled by the replica, with the same fetch as a
 * recovery (transfer.c):
 *
 *   this CTS -> GCS      image_grant {id, target = replica}     (allowed: this CTS holds the image)
 *   this CTS -> replica  image_replicate {id, gid, sha256, grant, holders}
 *   replica  -> this CTS image_fetch ...                          (verified, renamed into images/)
 *   replica  -> GCS      image_location {id, gid, cts = replica}  (gcaLocation += replica)
 *   replica  -> this CTS ok
 *
 * so the record lists a location only once a verified copy is there: verified against the record's
 * sha256 and taker, which the GCS put in the grant, never against what the sender says. A failed
 * copy is logged and not retried (the next checkpoint is copied again); the image stays on this
 * CTS. A copy removed by retention is told to the GCS through the outbox (retention_removed).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cts/cts.h"

#define REPLICA_TIMEOUT_MS	(10 * 60 * 1000)

struct replica_op {
	struct cts		*cts;
	size_t			 i;		/* which replica (sender), or */
	struct proto_req	*r;		/* the request being served (replica) */
	char			 id[ID_LEN + 1], gid[256], sha256[65];
	struct transfer_fetch	 fetch;
};

static void
replica_op_free(struct replica_op *op)
{
	free(op->fetch.grant);
	free(op);
}

/* ---- the CTS that took the checkpoint ---- */

int
replica_configure(struct cts *c, const char *list, char *err, size_t errlen)
{
	char *copy, *tok, *save = NULL;

	if (list == NULL)
		return 0;
	copy = xstrdup(list);
	for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		char *at = strchr(tok, '@'), name[256];
		/* closed after 30 s without a push: the pooled side closes first */
		struct proto_client_config cfg = { .expect_role = "cts", .idle_close_ms = 30000,
			.timeout_ms = REPLICA_TIMEOUT_MS };

		if (at == NULL || at == tok || strchr(at + 1, ':') == NULL ||
		    (size_t)(at - tok) >= sizeof name) {
			snprintf(err, errlen, "replicas: \"%s\" is not name@host:port", tok);
			free(copy);
			return -1;
		}
		snprintf(name, sizeof name, "%.*s", (int)(at - tok), tok);
		proto_strlist_add(&c->replicas, name);
		cfg.endpoint = at + 1;
		/* the client keeps this pointer: the list's copy lives as long as it */
		cfg.expect_name = c->replicas.v[c->replicas.n - 1];
		c->replica_conn = xreallocarray(c->replica_conn, c->replicas.n,
		    sizeof *c->replica_conn);
		if ((c->replica_conn[c->replicas.n - 1] = proto_client_new(c->base, &c->tls, &cfg,
		    err, errlen)) == NULL) {
			c->replicas.n--;	/* replica_free frees only the clients made */
			free(c->replicas.v[c->replicas.n]);
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

void
replica_free(struct cts *c)
{
	for (size_t i = 0; i < c->replicas.n; i++)
		proto_client_free(c->replica_conn[i]);
	free(c->replica_conn);
	c->replica_conn = NULL;
	proto_strlist_free(&c->replicas);
}

static void
replica_on_copied(const char *code, const char *msg, const void *body, void *arg)
{
	struct replica_op *op = arg;

	(void)body;
	if (code != NULL)
		log_warn("checkpoint %s: no copy at replica %s: %s: %s", op->id,
		    op->cts->replicas.v[op->i], code, msg);
	else
		log_info("checkpoint %s of %s: copied to replica %s", op->id, op->gid,
		    op->cts->replicas.v[op->i]);
	replica_op_free(op);
}

static void
replica_on_grant(const char *code, const char *msg, const void *body, void *arg)
{
	struct replica_op *op = arg;
	const struct msg_image_grant_ok *g = body;

	if (code != NULL) {
		log_warn("checkpoint %s: no grant to copy it to %s: %s: %s", op->id,
		    op->cts->replicas.v[op->i], code, msg);
		replica_op_free(op);
		return;
	}
	struct msg_image_replicate q = { op->id, op->gid, op->sha256, g->grant, g->holders };
	proto_client_request(op->cts->replica_conn[op->i], "image_replicate",
	    proto_type_find("image_replicate"), &q, replica_on_copied, op);
}

void
replica_start(struct cts *c, const char *gid, const char *id, const char *sha256)
{
	for (size_t i = 0; i < c->replicas.n; i++) {
		struct replica_op *op = xcalloc(1, sizeof *op);

		op->cts = c;
		op->i = i;
		snprintf(op->id, sizeof op->id, "%s", id);
		snprintf(op->gid, sizeof op->gid, "%s", gid);
		snprintf(op->sha256, sizeof op->sha256, "%s", sha256);
		struct msg_image_grant q = { op->id, c->replicas.v[i] };
		gcslink_request(c, "image_grant", &q, replica_on_grant, op);
	}
}

/* ---- a copy is here: tell the GCS (gcaLocation) ---- */

static void
replica_on_located(const char *code, const char *msg, const void *body, void *arg)
{
	struct replica_op *op = arg;

	(void)body;
	if (code != NULL) {
		log_warn("checkpoint %s: cannot record the copy here: %s: %s", op->id, code, msg);
		if (op->r != NULL)
			proto_reply_err(op->r, code, "the copy at %s is verified but not recorded: %s",
			    op->cts->name, msg);
	} else if (op->r != NULL) {
		proto_reply_ok(op->r, op->r->pt->reply, NULL);
	}
	replica_op_free(op);
}

void
replica_located(struct cts *c, const char *gid, const char *id)
{
	struct replica_op *op = xcalloc(1, sizeof *op);

	op->cts = c;
	snprintf(op->id, sizeof op->id, "%s", id);
	struct msg_image_location q = { op->id, gid, c->name, false, false };
	gcslink_request(c, "image_location", &q, replica_on_located, op);
}

/* ---- the replica ---- */

static void
replica_on_fetched(bool ok, const char *out, void *arg)
{
	struct replica_op *op = arg;

	if (!ok) {
		log_warn("copy of checkpoint %s refused: %s", op->id, out);
		proto_reply_err(op->r, PROTO_E_REFUSED, "%s", out);
		replica_op_free(op);
		return;
	}
	struct msg_image_location q = { op->id, op->gid, op->cts->name, false, false };

	/* A replica keeps as many copies per job as its own retention says: removed by retention
	 * (retention.c: in a child, never a folder still being written); the GCS expires only the
	 * taker's records, so a copy's removal leaves the record as it is. */
	retention_want(op->cts, op->gid);
	gcslink_request(op->cts, "image_location", &q, replica_on_located, op);
}

/* What a copy is checked against comes from the record, through the GCS's grant, not from the
 * sender: the record's sha256 and the CTS that took (and signed) it. The grant must name this CTS
 * and this checkpoint. */
static int
replica_grant_check(struct cts *c, const struct msg_image_replicate *b, struct proto_grant *g,
	char *err, size_t errlen)
{
	if (proto_grant_verify(c->tls.ca, b->grant, time_now_ms(), g, err, errlen) != 0)
		return -1;
	if (strcmp(g->target, c->name) != 0 || strcmp(g->checkpoint_id, b->checkpoint_id) != 0 ||
	    strcmp(g->gid, b->gid) != 0) {
		snprintf(err, errlen, "the grant is for checkpoint %s of %.200s to CTS %.200s, not "
		    "%s of %.200s to %.200s", g->checkpoint_id, g->gid, g->target, b->checkpoint_id,
		    b->gid, c->name);
		return -1;
	}
	return 0;
}

void
replica_receive(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_image_replicate *b = r->body;
	struct replica_op *op;
	struct transfer_fetch *f;
	struct proto_grant g;
	struct stat st;
	char err[1200];

	if (!id_valid(b->checkpoint_id) || !name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID and checkpoint id");
		return;
	}
	if (replica_grant_check(c, b, &g, err, sizeof err) != 0) {
		log_warn("copy of checkpoint %s from %s refused: %s", b->checkpoint_id, r->peer.name,
		    err);
		proto_reply_err(r, PROTO_E_FORBIDDEN, "%s", err);
		return;
	}
	if (b->sha256 != NULL && strcmp(b->sha256, g.sha256) != 0)
		log_warn("copy of checkpoint %s: %s says sha256 %.12s..., the record %.12s...: the "
		    "record's is checked", b->checkpoint_id, r->peer.name, b->sha256, g.sha256);
	if (b->holders.n == 0) {
		proto_reply_err(r, PROTO_E_MISSING_FIELD, "a copy needs at least one holder");
		return;
	}
	op = xcalloc(1, sizeof *op);
	op->cts = c;
	op->r = r;
	snprintf(op->id, sizeof op->id, "%s", b->checkpoint_id);
	snprintf(op->gid, sizeof op->gid, "%s", b->gid);
	f = &op->fetch;
	if (cts_image_dir(c, b->gid, b->checkpoint_id, f->image_dir, sizeof f->image_dir) != 0) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "GID %s: no image folder for it", b->gid);
		replica_op_free(op);
		return;
	}
	if (stat(f->image_dir, &st) == 0) {	/* a resent request: the copy is here already */
		replica_on_fetched(true, "ok (already here)", op);
		return;
	}
	snprintf(f->id, sizeof f->id, "%s", b->checkpoint_id);
	snprintf(f->gid, sizeof f->gid, "%s", b->gid);
	snprintf(f->sha256, sizeof f->sha256, "%s", g.sha256);
	snprintf(f->signer, sizeof f->signer, "%s", g.taker);
	f->tls_signed_before_ms = c->tls_signed_before_ms;
	snprintf(f->state, sizeof f->state, "%s", c->state);
	f->grant = xstrdup(b->grant);
	f->tls = c->tls;
	for (size_t i = 0; i < b->holders.n && f->nholders < TRANSFER_HOLDERS; i++)
		snprintf(f->holders[f->nholders++], sizeof f->holders[0], "%s", b->holders.v[i]);
	log_info("copying checkpoint %s of %s from %s", op->id, op->gid, f->holders[0]);
	if (child_run(c, transfer_fetch_run, f, replica_on_fetched, op) != 0) {
		proto_reply_err(r, PROTO_E_INTERNAL, "cannot start the copy");
		replica_op_free(op);
	}
}

/* ---- image_gc (gca-ctl gc through the GCS): retention now, or what it would remove ---- */

struct replica_gc {
	struct cts		*cts;
	const char		*gid;
	bool			 dry;
	struct msg_image_gc_ok	*ok;
};

static void
replica_gc_one(const char *id, void *arg)
{
	struct replica_gc *g = arg;
	char line[600];

	snprintf(line, sizeof line, "%s %s %s", g->cts->name, id, g->gid);
	proto_strlist_add(&g->ok->removed, line);
	if (!g->dry)
		retention_removed(g->cts, g->gid, id, true);	/* the GCS expires only its taker's */
}

/* Retention of one job folder now, or its plan (dry). Like retention.c's, it never looks at the
 * folders from the job's bound on (a checkpoint of it being written). */
static int
replica_gc_job(struct replica_gc *g, const char *jd)
{
	char before[ID_LEN + 1];

	if (g->dry)
		return retain_plan(jd, g->cts->retention, replica_gc_one, g);
	retention_bound(g->cts, g->gid, before);
	return retain_prune_before(jd, g->cts->retention, before, UINT_MAX, replica_gc_one, g);
}

/* The GID of a job folder: from the manifest of any checkpoint in it. */
static int
replica_folder_gid(const char *job_dir, char *gid, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(job_dir);
	struct image_meta m;
	char p[PATH_MAX], err[256];
	int rc = -1;

	if (d == NULL)
		return -1;
	while (rc != 0 && (de = readdir(d)) != NULL) {
		if (!id_valid(de->d_name) ||
		    snprintf(p, sizeof p, "%s/%s", job_dir, de->d_name) >= (int)sizeof p)
			continue;
		if (manifest_read(p, &m, err, sizeof err) == 0) {
			snprintf(gid, len, "%s", m.gid);
			rc = 0;
		}
	}
	closedir(d);
	return rc;
}

void
replica_gc(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_image_gc *b = r->body;
	struct msg_image_gc_ok ok = { 0 };
	struct replica_gc g = { c, NULL, b->dry_run, &ok };
	char jd[PATH_MAX], gid[256], line[600];
	struct dirent *de;
	DIR *d;

	if (b->gid != NULL) {
		if (!name_valid(b->gid) || cts_job_dir(c, b->gid, jd, sizeof jd) != 0) {
			proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID");
			return;
		}
		g.gid = b->gid;
		if (replica_gc_job(&g, jd) < 0 && access(jd, F_OK) == 0) {
			snprintf(line, sizeof line, "%s %s: retention stopped (see its log)", c->name,
			    b->gid);
			proto_strlist_add(&ok.errors, line);
		}
	} else if (snprintf(jd, sizeof jd, "%s/images", c->state) < (int)sizeof jd &&
	    (d = opendir(jd)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char one[PATH_MAX];
			if (de->d_name[0] == '.' ||
			    snprintf(one, sizeof one, "%s/%s", jd, de->d_name) >= (int)sizeof one ||
			    replica_folder_gid(one, gid, sizeof gid) != 0)
				continue;
			g.gid = gid;
			if (replica_gc_job(&g, one) < 0) {
				snprintf(line, sizeof line, "%s %s: retention stopped (see its log)",
				    c->name, gid);
				proto_strlist_add(&ok.errors, line);
			}
		}
		closedir(d);
	}
	proto_reply_ok(r, r->pt->reply, &ok);
	proto_strlist_free(&ok.removed);
	proto_strlist_free(&ok.errors);
}
