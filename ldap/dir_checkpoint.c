/* Checkpoint records: one logged (written by dir_record.c), its locations, and the listings. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

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
	op = dir_op_new(NULL, cb, arg);
	op->batch = dir_record_batch;		/* written in batches by dir.c */
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
dir_checkpoint_location_run(struct dir *d, struct dir_op *op)
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
	op = dir_op_new(dir_checkpoint_location_run, cb, arg);
	op->u.location.dn = dir_op_strdup(op, dn);
	op->u.location.cts = dir_op_strdup(op, cts);
	op->u.location.removed = removed;
	if (expired) {
		op->entry = dir_entry_new(dn);
		dir_entry_add(op->entry, "gcaStatus", "expired");
	}
	dir_op_submit(d, op);
}

static int
dir_checkpoint_by_seq_desc(const void *a, const void *b)
{
	const char *x = dir_entry_get(a, "gcaSequenceNumber"), *y = dir_entry_get(b, "gcaSequenceNumber");
	unsigned long long sx = x ? strtoull(x, NULL, 10) : 0, sy = y ? strtoull(y, NULL, 10) : 0;

	return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static void
dir_checkpoints_run(struct dir *d, struct dir_op *op)
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
	qsort(op->res.entries, op->res.nentries, sizeof *op->res.entries, dir_checkpoint_by_seq_desc);
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
	op = dir_op_new(dir_checkpoints_run, cb, arg);
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
