/*
 * The generic operations (search, add, upsert), the views written after an operation, and what
 * the operations of every kind share: a refused name answered from the thread, a replace. Each
 * operation is a function run on the directory thread (dir.c); the paper's records are built in
 * dir_cts.c, dir_job.c and dir_checkpoint.c, and written in batches by dir_record.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

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
static enum dir_status
dir_ops_add_or_replace(struct dir *d, const struct dir_entry *e, struct dir_result *r)
{
	struct dir_entry repl = { 0 };

	if (dir_do_add(d, e, NULL, r) != DIR_EXISTS)
		return r->status;
	repl.dn = e->dn;
	repl.attrs = e->attrs;
	repl.nattrs = e->nattrs;
	/* objectClass first by construction (the builders add it first): leave it out. */
	if (repl.nattrs > 0 && strcasecmp(repl.attrs[0].name, "objectClass") == 0) {
		repl.attrs++;
		repl.nattrs--;
	}
	memset(r, 0, sizeof *r);
	return dir_do_replace(d, &repl, r);
}

static void
dir_ops_upsert(struct dir *d, struct dir_op *op)
{
	dir_ops_add_or_replace(d, op->entry, &op->res);
}

void
dir_ops_upsert_view(struct dir *d, struct dir_entry *e, struct dir_entry *view, dir_cb cb,
    void *arg)
{
	struct dir_op *op = dir_op_new(dir_ops_upsert, cb, arg);

	op->entry = e;
	dir_ops_set_view(op, view);
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
dir_ops_set_view(struct dir_op *op, struct dir_entry *view)
{
	op->view = view;
	op->after = view != NULL ? dir_ops_view : NULL;
}

void
dir_ops_view(struct dir *d, struct dir_op *op)
{
	struct dir_entry *v = op->view;
	struct dir_result r = { 0 };

	if (v->nattrs == 0) {
		if (dir_do_delete(d, v->dn, &r) == DIR_NOT_FOUND)
			r.status = DIR_OK;
	} else
		dir_ops_add_or_replace(d, v, &r);
	op->res.view_status = r.status;
	if (r.status != DIR_OK)
		snprintf(op->res.view_msg, sizeof op->res.view_msg, "%.100s: %.140s", v->dn, r.msg);
	dir_result_clear(&r);
}

/* An operation that could not even be built (a name that makes no DN) fails on the thread too,
 * so the callback always comes from the loop, never from inside the caller. */
static void
dir_ops_fail(struct dir *d, struct dir_op *op)
{
	(void)d;
	dir_result_set(&op->res, DIR_SCHEMA, "%s", op->u.fail.why);	/* the caller's value */
}

void
dir_ops_reject(struct dir *d, const char *why, const char *name, dir_cb cb, void *arg)
{
	struct dir_op *op = dir_op_new(dir_ops_fail, cb, arg);
	char msg[512];

	snprintf(msg, sizeof msg, "%s: \"%.300s\"", why, name ? name : "(none)");
	op->u.fail.why = dir_op_strdup(op, msg);
	dir_op_submit(d, op);
}

void
dir_ops_replace(struct dir *d, struct dir_op *op)
{
	dir_do_replace(d, op->entry, &op->res);
}
