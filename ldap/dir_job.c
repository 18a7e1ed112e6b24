/*
 * Job entries: a binding made or moved by compare-and-swap of the holder (so two GCS instances
 * never bind a GID twice), the job's state, its fencing notes and its interval.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

/* The replace, asserting gcaLocalId in the same modify (delete the value, add it back). */
static void
dir_job_state_if_run(struct dir *d, struct dir_op *op)
{
	dir_do_cas(d, op->entry->dn, "gcaLocalId", op->u.job_state.local_id,
	    op->u.job_state.local_id, op->entry, NULL, &op->res);
}

static void
dir_job_bind_run(struct dir *d, struct dir_op *op)
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
	dir_entry_add(&also, "gcaJobState", "running");
	/* The binding this move replaced, so whoever follows the change feed can tell a move (made
	 * by someone who saw that binding) from a binding lost to a concurrent one (gcs/relay.c). */
	dir_entry_addf(&also, "gcaProperty", "from=%s", expect);
	if (dir_entry_get(op->entry, "gcaLocalId") != NULL)
		dir_entry_add(&also, "gcaLocalId", dir_entry_get(op->entry, "gcaLocalId"));
	dir_do_cas(d, dn, "gcaCTSName", expect, dir_entry_get(op->entry, "gcaCTSName"), &also, NULL,
	    &op->res);
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
	op = dir_op_new(dir_job_bind_run, cb, arg);
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
	op = dir_op_new(local_id ? dir_job_state_if_run : dir_ops_replace, cb, arg);
	op->u.job_state.local_id = dir_op_strdup(op, local_id);
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "gcaJobState", state);
	if (exit_status >= 0)
		dir_entry_addf(op->entry, "gcaExitStatus", "%d", exit_status);
	dir_op_submit(d, op);
}

static void
dir_job_fenced_run(struct dir *d, struct dir_op *op)
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
	op = dir_op_new(dir_job_fenced_run, cb, arg);
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

static bool
dir_job_has(const struct dir_attr *a, const char *value)
{
	for (size_t i = 0; i < a->nvals; i++)
		if (strcmp(a->vals[i], value) == 0)
			return true;
	return false;
}

/* Reads the job's interval= values, then one modify: they go, value comes, and gcaCTSName is
 * deleted and added back (a job bound elsewhere meanwhile is not written: DIR_CAS_LOST). */
static void
dir_job_interval_run(struct dir *d, struct dir_op *op)
{
	struct dir_result q = { 0 };
	struct dir_entry del = { 0 }, add = { 0 };
	const struct dir_attr *a;

	if (dir_do_search(d, op->u.interval.dn, 0, "(objectClass=gcaJob)", 1, &q) != DIR_OK ||
	    q.nentries != 1) {
		if (q.status == DIR_OK)
			dir_result_set(&op->res, DIR_NOT_FOUND, "no job entry %s",
			    op->u.interval.dn);
		else
			op->res = q, q.entries = NULL, q.nentries = 0;
		dir_result_clear(&q);
		return;
	}
	if ((a = dir_entry_attr(&q.entries[0], "gcaProperty")) != NULL) {
		for (size_t i = 0; i < a->nvals; i++) {
			if (strncmp(a->vals[i], "interval=", 9) == 0 &&
			    strcmp(a->vals[i], op->u.interval.value) != 0)
				dir_entry_add(&del, "gcaProperty", a->vals[i]);
		}
	}
	dir_entry_add(&del, "gcaCTSName", op->u.interval.cts);
	dir_entry_add(&add, "gcaCTSName", op->u.interval.cts);
	if (a == NULL || !dir_job_has(a, op->u.interval.value))
		dir_entry_add(&add, "gcaProperty", op->u.interval.value);
	dir_do_modify(d, op->u.interval.dn, &del, &add, NULL, &op->res);
	dir_entry_clear(&del);
	dir_entry_clear(&add);
	dir_result_clear(&q);
}

void
dir_job_interval(struct dir *d, const char *gid, const char *cts, const char *value, dir_cb cb,
    void *arg)
{
	char dn[DN_MAX];
	struct dir_op *op;

	if (!name_valid(gid) || dir_dn_job(d, gid, dn, sizeof dn) != 0)
		return dir_ops_reject(d, DIR_GID_RULE, gid, cb, arg);
	op = dir_op_new(dir_job_interval_run, cb, arg);
	op->u.interval.dn = dir_op_strdup(op, dn);
	op->u.interval.cts = dir_op_strdup(op, cts);
	op->u.interval.value = dir_op_strdup(op, value);
	dir_op_submit(d, op);
}
