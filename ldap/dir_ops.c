/*
 * The paper's operations on the directory, each a function run on the directory thread
 * (dir.c). Sequence numbers and bindings move by compare-and-swap, so two GCS instances over one
 * directory never hand out a number twice or bind a GID twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

#define DN_MAX 4096
#define DIR_GID_RULE "not a valid GID (printable; at most 220 bytes, and fewer with LDAP special characters)"

/* ---- generic ---- */

static void
dir_ops_search(struct dir *d, struct dir_op *op)
{
	dir_do_search(d, op->u.search.base, op->u.search.scope, op->u.search.filter,
	    op->u.search.limit, &op->res);
}

void
dir_search(struct dir *d, const char *base, int scope, const char *filter, int limit, dir_cb cb,
    void *arg)
{
	struct dir_op *op = dir_op_new(dir_ops_search, cb, arg);

	op->u.search.base = dir_op_strdup(op, base);
	op->u.search.filter = dir_op_strdup(op, filter ? filter : "(objectClass=*)");
	op->u.search.scope = scope;
	op->u.search.limit = limit;
	dir_op_submit(d, op);
}

static void
dir_ops_add(struct dir *d, struct dir_op *op)
{
	dir_do_add(d, op->entry, NULL, &op->res);
}

void
dir_add(struct dir *d, struct dir_entry *e, dir_cb cb, void *arg)
{
	struct dir_op *op = dir_op_new(dir_ops_add, cb, arg);

	op->entry = e;
	dir_op_submit(d, op);
}

/* Add; when the entry exists, replace the attributes given (the objectClass stays). */
static void
dir_ops_upsert(struct dir *d, struct dir_op *op)
{
	struct dir_entry *e = op->entry, repl = { 0 };

	if (dir_do_add(d, e, NULL, &op->res) != DIR_EXISTS)
		return;
	repl.dn = e->dn;
	repl.attrs = e->attrs;
	repl.nattrs = e->nattrs;
	/* objectClass first by construction (the builders add it first): leave it out. */
	if (repl.nattrs > 0 && strcasecmp(repl.attrs[0].name, "objectClass") == 0) {
		repl.attrs++;
		repl.nattrs--;
	}
	memset(&op->res, 0, sizeof op->res);
	dir_do_replace(d, &repl, &op->res);
}

static void
dir_ops_upsert_view(struct dir *d, struct dir_entry *e, struct dir_entry *view, dir_cb cb,
    void *arg)
{
	struct dir_op *op = dir_op_new(dir_ops_upsert, cb, arg);

	op->entry = e;
	op->view = view;
	dir_op_submit(d, op);
}

void
dir_upsert(struct dir *d, struct dir_entry *e, dir_cb cb, void *arg)
{
	dir_ops_upsert_view(d, e, NULL, cb, arg);
}

/* op->view after op succeeded: upserted, or deleted when it has no attributes. Its outcome goes
 * to res.view_status; the operation's own result stays as it was. */
void
dir_view_run(struct dir *d, struct dir_op *op)
{
	struct dir_entry *v = op->view, repl = { 0 };
	struct dir_result r = { 0 };

	if (v->nattrs == 0) {
		if (dir_do_delete(d, v->dn, &r) == DIR_NOT_FOUND)
			r.status = DIR_OK;
	} else if (dir_do_add(d, v, NULL, &r) == DIR_EXISTS) {
		repl.dn = v->dn;
		repl.attrs = v->attrs;
		repl.nattrs = v->nattrs;
		if (repl.nattrs > 0 && strcasecmp(repl.attrs[0].name, "objectClass") == 0) {
			repl.attrs++;
			repl.nattrs--;
		}
		memset(&r, 0, sizeof r);
		dir_do_replace(d, &repl, &r);
	}
	op->res.view_status = r.status;
	if (r.status != DIR_OK)
		snprintf(op->res.view_msg, sizeof op->res.view_msg, "%.100s: %.140s", v->dn, r.msg);
	for (size_t i = 0; i < r.nentries; i++)
		dir_entry_clear(&r.entries[i]);
	free(r.entries);
}

/* An operation that could not even be built (a name that makes no DN) fails on the thread too,
 * so the callback always comes from the loop, never from inside the caller. */
static void
dir_ops_fail(struct dir *d, struct dir_op *op)
{
	(void)d;
	dir_result_set(&op->res, DIR_SCHEMA, "%s", op->u.fail.why);	/* the caller's value is bad */
}

static void
dir_ops_reject(struct dir *d, const char *why, const char *name, dir_cb cb, void *arg)
{
	struct dir_op *op = dir_op_new(dir_ops_fail, cb, arg);
	char msg[512];

	snprintf(msg, sizeof msg, "%s: \"%.300s\"", why, name ? name : "(none)");
	op->u.fail.why = dir_op_strdup(op, msg);
	dir_op_submit(d, op);
}

/* ---- services, classes, CTSes ---- */

void
dir_service_publish(struct dir *d, const char *name, const char *endpoint, const char *status,
    dir_cb cb, void *arg)
{
	dir_service_publish_view(d, name, endpoint, status, NULL, cb, arg);
}

void
dir_service_publish_view(struct dir *d, const char *name, const char *endpoint,
    const char *status, struct dir_entry *view, dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_entry *e;

	if (dir_dn_service(d, name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid service name", name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaService");
	dir_entry_add(e, "cn", name);
	dir_entry_add(e, "gcaEndpoint", endpoint);
	dir_entry_add(e, "gcaHeartbeat", when);
	dir_entry_add(e, "gcaStatus", status);
	dir_ops_upsert_view(d, e, view, cb, arg);
}

void
dir_class_publish(struct dir *d, const char *name, const char *description,
    const char **properties, size_t nproperties, dir_cb cb, void *arg)
{
	char dn[DN_MAX];
	struct dir_entry *e;

	if (dir_dn_class(d, name, dn, sizeof dn) != 0)
		return dir_ops_reject(d, "not a valid class name", name, cb, arg);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaCheckpointerClass");
	dir_entry_add(e, "cn", name);
	/* A class registered again is what the admin said this time: owned attributes not given are
	 * removed. */
	dir_entry_own(e, "description");
	dir_entry_own(e, "gcaProperty");
	if (description != NULL && *description != '\0')
		dir_entry_add(e, "description", description);
	for (size_t i = 0; i < nproperties; i++)
		dir_entry_add(e, "gcaProperty", properties[i]);
	dir_upsert(d, e, cb, arg);
}

static const char *
dir_ops_bool(bool b)
{
	return b ? "TRUE" : "FALSE";
}

static const char *const dir_ops_cts_owned[] = {
	"gcaEndpoint", "gcaExecutionManager", "gcaCoreService", "gcaClass", "gcaProperty",
	"gcaExecuteWrapper", "gcaRecoveryWrapper", "gcaExecuteParams", "gcaRecoveryParams",
	"gcaWrapperParams",
};

void
dir_cts_publish(struct dir *d, const struct dir_cts *c, dir_cb cb, void *arg)
{
	dir_cts_publish_view(d, c, NULL, cb, arg);
}

void
dir_cts_publish_view(struct dir *d, const struct dir_cts *c, struct dir_entry *view, dir_cb cb,
    void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_entry *e;

	if (dir_dn_cts(d, c->name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid CTS name", c->name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaTranslationService");
	dir_entry_add(e, "cn", c->name);
	/* A registration is the CTS's whole description (paper 3.3): every attribute it owns is
	 * replaced, and one it no longer sends (a class, a property, a wrapper) is removed. */
	for (size_t i = 0; i < GCA_NITEMS(dir_ops_cts_owned); i++)
		dir_entry_own(e, dir_ops_cts_owned[i]);
	dir_entry_add(e, "gcaEndpoint", c->endpoint);
	dir_entry_add(e, "gcaExecutionManager", c->exec_manager);
	dir_entry_add(e, "gcaCoreService", c->core_service);
	dir_entry_add(e, "gcaExternalCheckpoints", dir_ops_bool(c->external));
	dir_entry_add(e, "gcaSelfCheckpointing", dir_ops_bool(c->self_checkpoint));
	dir_entry_add(e, "gcaMigration", dir_ops_bool(c->migrate));
	dir_entry_add(e, "gcaAnyImageRecovery", dir_ops_bool(c->any_image));
	for (size_t i = 0; i < c->nclasses; i++)
		dir_entry_add(e, "gcaClass", c->classes[i]);
	for (size_t i = 0; i < c->nproperties; i++)
		dir_entry_add(e, "gcaProperty", c->properties[i]);
	if (c->gcs != NULL)
		dir_entry_addf(e, "gcaProperty", "gcs=%s", c->gcs);
	dir_entry_add(e, "gcaExecuteWrapper", c->exec_wrapper);
	dir_entry_add(e, "gcaRecoveryWrapper", c->recovery_wrapper);
	dir_entry_add(e, "gcaExecuteParams", c->exec_params);
	dir_entry_add(e, "gcaRecoveryParams", c->recovery_params);
	dir_entry_add(e, "gcaWrapperParams", c->wrapper_params);
	dir_entry_add(e, "gcaStatus", c->status ? c->status : "ok");
	dir_entry_add(e, "gcaHeartbeat", when);
	dir_ops_upsert_view(d, e, view, cb, arg);
}

static void
dir_ops_replace(struct dir *d, struct dir_op *op)
{
	dir_do_replace(d, op->entry, &op->res);
}

/* The replace, asserting gcaLocalId in the same modify (delete the value, add it back). */
static void
dir_ops_job_state_if(struct dir *d, struct dir_op *op)
{
	dir_do_cas(d, op->entry->dn, "gcaLocalId", op->u.job_state.local_id,
	    op->u.job_state.local_id, op->entry, NULL, &op->res);
}

void
dir_cts_status(struct dir *d, const char *name, const char *status, dir_cb cb, void *arg)
{
	dir_cts_status_view(d, name, status, NULL, cb, arg);
}

void
dir_cts_status_view(struct dir *d, const char *name, const char *status, struct dir_entry *view,
    dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_op *op;

	if (dir_dn_cts(d, name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid CTS name", name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	op = dir_op_new(dir_ops_replace, cb, arg);
	op->view = view;
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "gcaStatus", status);
	dir_entry_add(op->entry, "gcaHeartbeat", when);
	dir_op_submit(d, op);
}

/* The status change, in one modify that asserts the entry's status is still old (and, with gcs,
 * that the CTS still names that GCS): a change made meanwhile elsewhere (a retirement, a
 * registration at another GCS) is never written over. */
static void
dir_ops_cts_status_if(struct dir *d, struct dir_op *op)
{
	struct dir_entry del = { 0 }, add = { 0 };

	dir_entry_add(&del, "gcaStatus", op->u.cts_status.old_status);
	if (op->u.cts_status.gcs != NULL) {
		dir_entry_addf(&del, "gcaProperty", "gcs=%s", op->u.cts_status.gcs);
		dir_entry_addf(&add, "gcaProperty", "gcs=%s", op->u.cts_status.gcs);
	}
	dir_do_modify(d, op->entry->dn, &del, &add, op->entry, &op->res);
	dir_entry_clear(&del);
	dir_entry_clear(&add);
}

void
dir_cts_status_if(struct dir *d, const char *name, const char *status, const char *old,
    const char *gcs, dir_cb cb, void *arg)
{
	dir_cts_status_if_view(d, name, status, old, gcs, NULL, cb, arg);
}

void
dir_cts_status_if_view(struct dir *d, const char *name, const char *status, const char *old,
    const char *gcs, struct dir_entry *view, dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_op *op;

	if (old == NULL)
		return dir_cts_status_view(d, name, status, view, cb, arg);
	if (dir_dn_cts(d, name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid CTS name", name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	op = dir_op_new(dir_ops_cts_status_if, cb, arg);
	op->view = view;
	op->u.cts_status.old_status = dir_op_strdup(op, old);
	op->u.cts_status.gcs = dir_op_strdup(op, gcs);
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "gcaStatus", status);
	dir_entry_add(op->entry, "gcaHeartbeat", when);
	dir_op_submit(d, op);
}

/* ---- jobs ---- */

static void
dir_ops_job_bind(struct dir *d, struct dir_op *op)
{
	const char *dn = op->entry->dn, *expect = op->u.bind.expected_cts;
	struct dir_entry also = { 0 };

	if (expect == NULL) {
		if (dir_do_add(d, op->entry, NULL, &op->res) == DIR_EXISTS)
			dir_do_search(d, dn, 0, "(objectClass=gcaJob)", 1, &op->res);
		if (op->res.nentries > 0)
			op->res.status = DIR_EXISTS;
		return;
	}
	/* Move: compare-and-swap of the holder; the local id and state go in the same modify. */
	also.dn = (char *)dn;
	dir_entry_add(&also, "gcaJobState", "running");
	/* The binding this move replaced, so whoever follows the change feed can tell a move (made
	 * by someone who saw that binding) from a binding lost to a concurrent one (gcs/relay.c). */
	dir_entry_addf(&also, "gcaProperty", "from=%s", expect);
	if (dir_entry_get(op->entry, "gcaLocalId") != NULL)
		dir_entry_add(&also, "gcaLocalId", dir_entry_get(op->entry, "gcaLocalId"));
	dir_do_cas(d, dn, "gcaCTSName", expect, dir_entry_get(op->entry, "gcaCTSName"), &also, NULL,
	    &op->res);
	also.dn = NULL;
	dir_entry_clear(&also);
}

void
dir_job_bind(struct dir *d, const char *gid, const char *cts, const char *owner,
    const char *local_id, const char *expect_cts, dir_cb cb, void *arg)
{
	char dn[DN_MAX];
	struct dir_op *op;

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	op = dir_op_new(dir_ops_job_bind, cb, arg);
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "objectClass", "gcaJob");
	dir_entry_add(op->entry, "gcaGID", gid);
	dir_entry_add(op->entry, "gcaCTSName", cts);
	dir_entry_add(op->entry, "gcaOwner", owner);
	dir_entry_add(op->entry, "gcaLocalId", local_id);
	dir_entry_add(op->entry, "gcaJobState", "running");
	dir_entry_add(op->entry, "gcaLastSequence", "0");
	op->u.bind.expected_cts = dir_op_strdup(op, expect_cts);
	dir_op_submit(d, op);
}

void
dir_job_state(struct dir *d, const char *gid, const char *local_id, const char *state,
    int exit_status, dir_cb cb, void *arg)
{
	char dn[DN_MAX];
	struct dir_op *op;

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	op = dir_op_new(local_id ? dir_ops_job_state_if : dir_ops_replace, cb, arg);
	op->u.job_state.local_id = dir_op_strdup(op, local_id);
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "gcaJobState", state);
	if (exit_status >= 0)
		dir_entry_addf(op->entry, "gcaExitStatus", "%d", exit_status);
	dir_op_submit(d, op);
}

static void
dir_ops_job_fenced(struct dir *d, struct dir_op *op)
{
	dir_do_cas(d, op->u.fenced.dn, "gcaProperty", NULL, op->u.fenced.value, NULL, NULL,
	    &op->res);
}

void
dir_job_fenced(struct dir *d, const char *gid, const char *cts, const char *local_id,
    dir_cb cb, void *arg)
{
	char dn[DN_MAX], *value;
	struct dir_op *op;

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	xasprintf(&value, "fenced=%s/%s", cts, local_id);
	op = dir_op_new(dir_ops_job_fenced, cb, arg);
	op->u.fenced.dn = dir_op_strdup(op, dn);
	op->u.fenced.value = dir_op_keep(op, value);
	dir_op_submit(d, op);
}

void
dir_job_get(struct dir *d, const char *gid, dir_cb cb, void *arg)
{
	char dn[DN_MAX];

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	dir_search(d, dn, 0, "(objectClass=gcaJob)", 1, cb, arg);
}

static void dir_ops_result_clear(struct dir_result *q);

static bool
dir_ops_has(const struct dir_attr *a, const char *value)
{
	for (size_t i = 0; i < a->nvals; i++)
		if (strcmp(a->vals[i], value) == 0)
			return true;
	return false;
}

/* Reads the job's interval= values, then one modify: they go, value comes, and gcaCTSName is
 * deleted and added back (a job bound elsewhere meanwhile is not written: DIR_CAS_LOST). */
static void
dir_ops_job_interval(struct dir *d, struct dir_op *op)
{
	struct dir_result q = { 0 };
	struct dir_entry del = { 0 }, add = { 0 };
	const struct dir_attr *a;

	if (dir_do_search(d, op->u.interval.dn, 0, "(objectClass=gcaJob)", 1, &q) != DIR_OK ||
	    q.nentries != 1) {
		if (q.status == DIR_OK)
			dir_result_set(&op->res, DIR_NOT_FOUND, "no job entry %s", op->u.interval.dn);
		else
			op->res = q, q.entries = NULL, q.nentries = 0;
		dir_ops_result_clear(&q);
		return;
	}
	if ((a = dir_entry_attr(&q.entries[0], "gcaProperty")) != NULL) {
		for (size_t i = 0; i < a->nvals; i++) {
			if (strncmp(a->vals[i], "interval=", 9) == 0 && strcmp(a->vals[i], op->u.interval.value) != 0)
				dir_entry_add(&del, "gcaProperty", a->vals[i]);
		}
	}
	dir_entry_add(&del, "gcaCTSName", op->u.interval.cts);
	dir_entry_add(&add, "gcaCTSName", op->u.interval.cts);
	if (a == NULL || !dir_ops_has(a, op->u.interval.value))
		dir_entry_add(&add, "gcaProperty", op->u.interval.value);
	dir_do_modify(d, op->u.interval.dn, &del, &add, NULL, &op->res);
	dir_entry_clear(&del);
	dir_entry_clear(&add);
	dir_ops_result_clear(&q);
}

void
dir_job_interval(struct dir *d, const char *gid, const char *cts, const char *value, dir_cb cb,
    void *arg)
{
	char dn[DN_MAX];
	struct dir_op *op;

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	op = dir_op_new(dir_ops_job_interval, cb, arg);
	op->u.interval.dn = dir_op_strdup(op, dn);
	op->u.interval.cts = dir_op_strdup(op, cts);
	op->u.interval.value = dir_op_strdup(op, value);
	dir_op_submit(d, op);
}

/* ---- checkpoint records ---- */

void
dir_checkpoint_log(struct dir *d, const struct dir_checkpoint *c, dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_op *op;
	struct dir_entry *e;

	if (!name_valid(c->gid) || !id_valid(c->id) ||
	    dir_dn_checkpoint(d, c->gid, c->id, dn, sizeof dn) != 0)
		return dir_ops_reject(d, "not a valid GID and checkpoint id", c->id, cb, arg);
	time_generalized(c->time_ms ? c->time_ms : time_now_ms(), when);
	op = dir_op_new(NULL, cb, arg);		/* fn NULL: batched by dir.c */
	e = op->entry = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaCheckpoint");
	dir_entry_add(e, "gcaCheckpointId", c->id);
	dir_entry_add(e, "gcaGID", c->gid);
	dir_entry_add(e, "gcaCheckpointTime", when);
	dir_entry_add(e, "gcaCTSName", c->cts);
	dir_entry_add(e, "gcaCoreService", c->core_service);
	dir_entry_add(e, "gcaImageName", c->image_name);
	dir_entry_add(e, "gcaExecutionManager", c->exec_manager);
	dir_entry_add(e, "gcaParentCheckpointId", c->parent && *c->parent ? c->parent : NULL);
	dir_entry_addf(e, "gcaImageSize", "%" PRIu64, c->size);
	dir_entry_add(e, "gcaImageSha256", c->sha256 && *c->sha256 ? c->sha256 : NULL);
	dir_entry_add(e, "gcaCheckpointKind", c->kind ? c->kind : "external");
	dir_entry_add(e, "gcaLocation", c->cts);	/* more copies are added by image_location */
	for (size_t i = 0; i < c->nproperties; i++)
		dir_entry_add(e, "gcaProperty", c->properties[i]);
	dir_op_submit(d, op);
}

/* A copy of the image at cts added to the record's gcaLocation, or removed; expired also sets
 * gcaStatus: expired in the same modify (retention: the image and the record's state together). */
static void
dir_ops_location(struct dir *d, struct dir_op *op)
{
	const char *cts = op->u.location.cts;
	bool removed = op->u.location.removed;

	dir_do_cas(d, op->u.location.dn, "gcaLocation", removed ? cts : NULL, removed ? NULL : cts,
	    op->entry, NULL, &op->res);
}

void
dir_checkpoint_location(struct dir *d, const char *gid, const char *id, const char *cts,
	bool removed, bool expired, dir_cb cb, void *arg)
{
	char dn[DN_MAX];
	struct dir_op *op;

	if (!name_valid(gid) || !id_valid(id) || dir_dn_checkpoint(d, gid, id, dn, sizeof dn) != 0)
		return dir_ops_reject(d, "not a valid GID and checkpoint id", id, cb, arg);
	op = dir_op_new(dir_ops_location, cb, arg);
	op->u.location.dn = dir_op_strdup(op, dn);
	op->u.location.cts = dir_op_strdup(op, cts);
	op->u.location.removed = removed;
	if (expired) {
		op->entry = dir_entry_new(dn);
		dir_entry_add(op->entry, "gcaStatus", "expired");
	}
	dir_op_submit(d, op);
}

/* The job entry's DN is the record's parent: everything after the first unescaped comma. */
static const char *
dir_ops_parent(const char *dn)
{
	for (const char *p = dn; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == ',')
			return p + 1;
	}
	return dn;
}

/* The job's last sequence number as the directory has it now, and the CTS it is bound to (its
 * gcaCTSName, into holder); -1 with r set if none. */
static int64_t
dir_ops_last_seq(struct dir *d, const char *jobdn, char *holder, size_t holderlen,
    struct dir_result *r)
{
	struct dir_result q = { 0 };
	const char *v, *h;
	int64_t seq = -1;

	if (dir_do_search(d, jobdn, 0, "(objectClass=gcaJob)", 1, &q) == DIR_OK && q.nentries == 1 &&
	    (v = dir_entry_get(&q.entries[0], "gcaLastSequence")) != NULL) {
		seq = strtoll(v, NULL, 10);
		h = dir_entry_get(&q.entries[0], "gcaCTSName");
		snprintf(holder, holderlen, "%s", h ? h : "");
	} else if (q.status == DIR_OK || q.status == DIR_NOT_FOUND)
		dir_result_set(r, DIR_NOT_FOUND, "unknown GID: no job entry %s", jobdn);
	else
		*r = q, q.entries = NULL, q.nentries = 0;
	for (size_t i = 0; i < q.nentries; i++)
		dir_entry_clear(&q.entries[i]);
	free(q.entries);
	return seq;
}

/* A record from a CTS the job is no longer bound to (it lost the GID to a recovery elsewhere) is
 * refused: its checkpoints would take numbers and "latest" from the job's new home. */
static bool
dir_ops_bound_elsewhere(const struct dir_entry *rec, const char *holder, struct dir_result *r)
{
	const char *cts = dir_entry_get(rec, "gcaCTSName");

	if (cts != NULL && strcasecmp(holder, cts) == 0)
		return false;
	dir_result_set(r, DIR_MOVED, "GID %s is bound to CTS %s, not %s: only the CTS a job is "
	    "bound to records its checkpoints", dir_entry_get(rec, "gcaGID"),
	    holder[0] ? holder : "(none)", cts ? cts : "(none)");
	return true;
}

/* Another writer moved the number: wait a little, longer each time, so writers fall out of step. */
static void
dir_ops_backoff(int attempt)
{
	unsigned r;

	if (getrandom(&r, sizeof r, 0) != sizeof r)
		r = (unsigned)attempt;
	usleep(200 + r % (500u * (unsigned)(attempt < 8 ? attempt + 1 : 8)));
}

/* gcaLastSequence old -> new in one modify that also asserts the job is still bound to holder
 * (its gcaCTSName deleted and added back): a move between the read and the swap, even one that
 * came back, makes it fail (DIR_CAS_LOST) like a number that moved. */
static enum dir_status
dir_ops_swap_seq(struct dir *d, const char *jobdn, const char *old, const char *new_,
    const char *holder, struct dir_result *r)
{
	struct dir_entry del = { 0 }, add = { 0 };
	enum dir_status s;

	dir_entry_add(&del, "gcaLastSequence", old);
	dir_entry_add(&del, "gcaCTSName", holder);
	dir_entry_add(&add, "gcaLastSequence", new_);
	dir_entry_add(&add, "gcaCTSName", holder);
	s = dir_do_modify(d, jobdn, &del, &add, NULL, r);
	dir_entry_clear(&del);
	dir_entry_clear(&add);
	return s;
}

/*
 * Reserves k numbers of a job for records from the CTS of rec: one compare-and-swap of
 * gcaLastSequence from last to last + k that holds only while the job is bound to that CTS
 * (dir_ops_swap_seq). Returns the first reserved number, or 0 with r set (DIR_MOVED: bound to
 * another CTS). A number reserved for a record that is then not written stays unused: numbers
 * never repeat, gaps are allowed.
 */
static uint64_t
dir_ops_reserve(struct dir *d, const char *jobdn, uint64_t k, const struct dir_entry *rec,
    struct dir_result *r)
{
	char holder[256];

	for (int attempt = 0; attempt < 64; attempt++) {
		char old[24], new_[24];
		int64_t last;

		if ((last = dir_ops_last_seq(d, jobdn, holder, sizeof holder, r)) < 0 ||
		    dir_ops_bound_elsewhere(rec, holder, r))
			return 0;
		snprintf(old, sizeof old, "%" PRId64, last);
		snprintf(new_, sizeof new_, "%" PRIu64, (uint64_t)last + k);
		memset(r, 0, sizeof *r);
		if (dir_ops_swap_seq(d, jobdn, old, new_, holder, r) == DIR_OK)
			return (uint64_t)last + 1;
		if (r->status != DIR_CAS_LOST)
			return 0;
		dir_ops_backoff(attempt);
	}
	dir_result_set(r, DIR_CAS_LOST, "gave up: the sequence number of %s kept moving", jobdn);
	return 0;
}

static void
dir_ops_set_seq(struct dir_entry *e, uint64_t seq)
{
	struct dir_attr *a = (struct dir_attr *)dir_entry_attr(e, "gcaSequenceNumber");
	char buf[24];

	snprintf(buf, sizeof buf, "%" PRIu64, seq);
	if (a == NULL) {
		dir_entry_add(e, "gcaSequenceNumber", buf);
	} else {
		free(a->vals[0]);
		a->vals[0] = xstrdup(buf);
	}
}

static void
dir_ops_result_clear(struct dir_result *q)
{
	for (size_t i = 0; i < q->nentries; i++)
		dir_entry_clear(&q->entries[i]);
	free(q->entries);
	memset(q, 0, sizeof *q);
}

/* Records of this batch already in the directory (resent from a CTS's outbox) are answered with
 * the number they have, found with one search. Returns how many are left to write; a down
 * directory answers them all. */
static size_t
dir_ops_answer_resent(struct dir *d, struct dir_op **ops, size_t n, bool *todo)
{
	char *filter = xmalloc(64 + n * (ID_LEN + 20));
	struct dir_result q = { 0 };
	size_t left = n;

	strcpy(filter, "(&(objectClass=gcaCheckpoint)(|");
	for (size_t i = 0; i < n; i++) {
		todo[i] = true;
		strcat(filter, "(gcaCheckpointId=");
		strcat(filter, dir_entry_get(ops[i]->entry, "gcaCheckpointId"));	/* id_valid */
		strcat(filter, ")");
	}
	strcat(filter, "))");
	if (dir_do_search(d, dir_base(d), 2, filter, 0, &q) != DIR_OK) {
		for (size_t i = 0; i < n; i++) {
			ops[i]->res.status = q.status;
			snprintf(ops[i]->res.msg, sizeof ops[i]->res.msg, "%s", q.msg);
			todo[i] = false;
		}
		left = 0;
	}
	for (size_t e = 0; e < q.nentries; e++) {
		const char *id = dir_entry_get(&q.entries[e], "gcaCheckpointId");
		const char *seq = dir_entry_get(&q.entries[e], "gcaSequenceNumber");

		for (size_t i = 0; id != NULL && i < n; i++) {
			if (!todo[i] || strcasecmp(id, dir_entry_get(ops[i]->entry, "gcaCheckpointId")) != 0)
				continue;
			todo[i] = false;
			left--;
			ops[i]->res.status = DIR_OK;
			ops[i]->res.seq = seq ? strtoull(seq, NULL, 10) : 0;
			snprintf(ops[i]->res.msg, sizeof ops[i]->res.msg, "already recorded");
		}
	}
	dir_ops_result_clear(&q);
	free(filter);
	return left;
}

/* One record alone, after its batch failed: an add; if it exists, the number it has. */
static void
dir_ops_record_single(struct dir *d, struct dir_op *op)
{
	uint64_t seq = op->res.seq;

	memset(&op->res, 0, sizeof op->res);
	if (seq == 0) {
		if ((seq = dir_ops_reserve(d, dir_ops_parent(op->entry->dn), 1, op->entry,
		    &op->res)) == 0)
			return;
		dir_ops_set_seq(op->entry, seq);
	}
	if (dir_do_add(d, op->entry, NULL, &op->res) == DIR_OK) {
		op->res.seq = seq;
		return;
	}
	if (op->res.status == DIR_EXISTS) {
		struct dir_result q = { 0 };
		const char *v;

		if (dir_do_search(d, op->entry->dn, 0, "(objectClass=gcaCheckpoint)", 1, &q) == DIR_OK &&
		    q.nentries == 1 && (v = dir_entry_get(&q.entries[0], "gcaSequenceNumber")) != NULL) {
			memset(&op->res, 0, sizeof op->res);
			op->res.seq = strtoull(v, NULL, 10);
			snprintf(op->res.msg, sizeof op->res.msg, "already recorded");
		}
		dir_ops_result_clear(&q);
	}
}

/* Reserve the numbers of every record of one job from one CTS in this batch, in one
 * compare-and-swap. */
static bool
dir_ops_same_job(struct dir_op *a, struct dir_op *b)
{
	return strcmp(dir_ops_parent(a->entry->dn), dir_ops_parent(b->entry->dn)) == 0 &&
	    strcasecmp(dir_entry_get(a->entry, "gcaCTSName"), dir_entry_get(b->entry,
	    "gcaCTSName")) == 0;
}

static void
dir_ops_number_job(struct dir *d, struct dir_op **ops, size_t n, bool *todo, size_t i, size_t *left)
{
	const char *jobdn = dir_ops_parent(ops[i]->entry->dn);
	struct dir_result r = { 0 };
	uint64_t k = 0, first;

	for (size_t j = i; j < n; j++)
		if (todo[j] && dir_ops_same_job(ops[i], ops[j]))
			k++;
	first = dir_ops_reserve(d, jobdn, k, ops[i]->entry, &r);
	for (size_t j = i; j < n; j++) {
		if (!todo[j] || !dir_ops_same_job(ops[i], ops[j]))
			continue;
		if (first == 0) {
			ops[j]->res = r;
			todo[j] = false;
			(*left)--;
		} else {
			ops[j]->res.seq = first++;
			dir_ops_set_seq(ops[j]->entry, ops[j]->res.seq);
		}
	}
}

/*
 * A batch of records: resent ones are answered from the directory; each job's numbers are reserved
 * with one compare-and-swap, outside any transaction; then the adds, one by one. With
 * transactions on (dir_config), all adds go in one RFC 5805 transaction instead: one mdb commit;
 * if it aborts (a record added meanwhile by someone else), every record is added alone, keeping
 * its reserved number. Transactions are off by default: Debian 12's slapd 2.5.13 segfaults under
 * them (in do_add and syncprov, with one writing connection and a sync search open, or with
 * several writers: docs/BENCHMARKS.md, bench/slapd-txn-crash.sh), and a dead directory costs
 * more than the mdb commits they save.
 */
void
dir_records_run(struct dir *d, struct dir_op **ops, size_t n)
{
	bool *todo = xcalloc(n, sizeof *todo);
	struct dir_result r = { 0 };
	size_t left;
	void *txn = NULL;
	bool ok = true;

	left = dir_ops_answer_resent(d, ops, n, todo);
	for (size_t i = 0; i < n; i++) {
		if (todo[i] && ops[i]->res.seq == 0)
			dir_ops_number_job(d, ops, n, todo, i, &left);
	}
	if (left > 1 && dir_transactions(d) && (txn = dir_txn_begin(d, &r)) == NULL)
		ok = false;
	for (size_t i = 0; ok && txn != NULL && i < n; i++) {
		if (todo[i] && dir_do_add(d, ops[i]->entry, txn, &r) != DIR_OK)
			ok = false;
	}
	if (txn != NULL) {
		if (ok)
			ok = dir_txn_end(d, txn, true, &r) == DIR_OK;
		else
			dir_txn_end(d, txn, false, &r);
	}
	for (size_t i = 0; i < n; i++) {
		if (!todo[i])
			continue;
		if (ok && txn != NULL)
			ops[i]->res.status = DIR_OK;
		else
			dir_ops_record_single(d, ops[i]);
	}
	free(todo);
}

static int
dir_ops_by_seq_desc(const void *a, const void *b)
{
	const char *x = dir_entry_get(a, "gcaSequenceNumber"), *y = dir_entry_get(b, "gcaSequenceNumber");
	unsigned long long sx = x ? strtoull(x, NULL, 10) : 0, sy = y ? strtoull(y, NULL, 10) : 0;

	return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static void
dir_ops_checkpoints(struct dir *d, struct dir_op *op)
{
	int limit = op->u.checkpoints.limit;

	if (dir_do_search(d, op->u.checkpoints.dn, 0, "(objectClass=gcaJob)", 1, &op->res) != DIR_OK)
		return;
	if (op->res.nentries == 0) {
		dir_result_set(&op->res, DIR_NOT_FOUND, "unknown GID");
		return;
	}
	dir_entry_clear(&op->res.entries[0]);
	op->res.nentries = 0;
	if (dir_do_search(d, op->u.checkpoints.dn, 1, op->u.checkpoints.filter, 0, &op->res) !=
	    DIR_OK)
		return;
	qsort(op->res.entries, op->res.nentries, sizeof *op->res.entries, dir_ops_by_seq_desc);
	while (limit > 0 && op->res.nentries > (size_t)limit)
		dir_entry_clear(&op->res.entries[--op->res.nentries]);
}

void
dir_checkpoints(struct dir *d, const char *gid, uint64_t before, int limit, dir_cb cb, void *arg)
{
	char dn[DN_MAX], filter[128];
	struct dir_op *op;

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	if (before > 0)
		snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaSequenceNumber<=%llu))",
		    (unsigned long long)before - 1);
	else
		snprintf(filter, sizeof filter, "(objectClass=gcaCheckpoint)");
	op = dir_op_new(dir_ops_checkpoints, cb, arg);
	op->u.checkpoints.dn = dir_op_strdup(op, dn);
	op->u.checkpoints.filter = dir_op_strdup(op, filter);
	op->u.checkpoints.limit = limit;
	dir_op_submit(d, op);
}

void
dir_checkpoint_get(struct dir *d, const char *gid, const char *id, dir_cb cb, void *arg)
{
	char dn[DN_MAX];

	if (!name_valid(gid) || !id_valid(id) || dir_dn_checkpoint(d, gid, id, dn, sizeof dn) != 0)
		return dir_ops_reject(d, "not a valid GID and checkpoint id", id, cb, arg);
	dir_search(d, dn, 0, "(objectClass=gcaCheckpoint)", 1, cb, arg);
}
