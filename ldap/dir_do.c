/*
 * The blocking calls the operations are made of, on the directory thread only: search, add,
 * replace, compare-and-swap, modify, delete, and RFC 5805 transactions.
 */
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

static void
dir_do_txn_control(void *txn, LDAPControl *c, LDAPControl **list)
{
	list[0] = NULL;
	if (txn == NULL)
		return;
	c->ldctl_oid = LDAP_CONTROL_TXN_SPEC;
	c->ldctl_value = *(struct berval *)txn;
	c->ldctl_iscritical = 1;
	list[0] = c;
	list[1] = NULL;
}

static void
dir_do_result_add(struct dir *d, LDAPMessage *m, struct dir_result *r)
{
	struct dir_entry *e = dir_entry_from_ldap(d->ld, m);

	r->entries = xreallocarray(r->entries, r->nentries + 1, sizeof *r->entries);
	r->entries[r->nentries++] = *e;
	free(e);
}

enum dir_status
dir_do_search(struct dir *d, const char *base, int scope, const char *filter, int limit,
    struct dir_result *r)
{
	struct timeval tv = { d->op_timeout_ms / 1000, (d->op_timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	int rc;

	if (!dir_link_ready(d, r))
		return r->status;
	rc = ldap_search_ext_s(d->ld, base, scope, filter, NULL, 0, NULL, NULL, &tv,
	    limit > 0 ? limit : 0, &res);
	if (res != NULL) {
		for (LDAPMessage *m = ldap_first_entry(d->ld, res); m != NULL;
		    m = ldap_next_entry(d->ld, m))
			dir_do_result_add(d, m, r);
		ldap_msgfree(res);
	}
	if (rc == LDAP_SIZELIMIT_EXCEEDED)
		rc = LDAP_SUCCESS;	/* the caller asked for at most `limit` */
	return dir_link_outcome(d, rc, "search", r);
}

static LDAPMod **
dir_do_mods(const struct dir_entry *e, int op, size_t extra)
{
	LDAPMod **mods = xcalloc(e->nattrs + extra + 1, sizeof *mods);
	size_t n = 0;

	for (size_t i = 0; i < e->nattrs; i++) {
		/* An attribute with no value: replacing deletes it; an add has nothing to add. */
		if (e->attrs[i].nvals == 0 && op == LDAP_MOD_ADD)
			continue;
		mods[n] = xcalloc(1, sizeof **mods);
		mods[n]->mod_op = op;
		mods[n]->mod_type = e->attrs[i].name;
		mods[n]->mod_values = xcalloc(e->attrs[i].nvals + 1, sizeof(char *));
		for (size_t j = 0; j < e->attrs[i].nvals; j++)
			mods[n]->mod_values[j] = e->attrs[i].vals[j];
		n++;
	}
	return mods;
}

static void
dir_do_mods_free(LDAPMod **mods)
{
	for (size_t i = 0; mods[i] != NULL; i++) {
		free(mods[i]->mod_values);
		free(mods[i]);
	}
	free(mods);
}

enum dir_status
dir_do_add(struct dir *d, const struct dir_entry *e, void *txn, struct dir_result *r)
{
	LDAPControl c, *ctrls[2];
	LDAPMod **mods;
	int rc;

	if (!dir_link_ready(d, r))
		return r->status;
	dir_do_txn_control(txn, &c, ctrls);
	mods = dir_do_mods(e, LDAP_MOD_ADD, 0);
	rc = ldap_add_ext_s(d->ld, e->dn, mods, ctrls, NULL);
	dir_do_mods_free(mods);
	return dir_link_outcome(d, rc, "add", r);
}

enum dir_status
dir_do_replace(struct dir *d, const struct dir_entry *e, struct dir_result *r)
{
	LDAPMod **mods;
	int rc;

	if (!dir_link_ready(d, r))
		return r->status;
	mods = dir_do_mods(e, LDAP_MOD_REPLACE, 0);
	rc = ldap_modify_ext_s(d->ld, e->dn, mods, NULL, NULL);
	dir_do_mods_free(mods);
	return dir_link_outcome(d, rc, "modify", r);
}

/*
 * Compare-and-swap in one modify: delete the old value (fails with noSuchAttribute if someone
 * changed it), add the new one; `also` replaces more attributes in the same atomic modify.
 * old == NULL means the attribute must have no value: adding to a single-valued attribute that
 * has one fails.
 */
static bool
dir_do_attr_has(const struct dir_attr *a, const char *v)
{
	for (size_t i = 0; a != NULL && i < a->nvals; i++)
		if (strcmp(a->vals[i], v) == 0)
			return true;
	return false;
}

/*
 * A compare-and-swap sent again after its connection dropped lost (its old value is not there):
 * if the first sending committed before the drop, the entry is exactly as the swap makes it: new
 * there (and old gone, unless the swap only asserts it: old == new), every attribute of also as it
 * sets it. Then the swap is done, not lost to someone else. Read back here, on the new connection.
 */
static bool
dir_do_cas_in_place(struct dir *d, const char *dn, const char *attr, const char *old,
    const char *new_, const struct dir_entry *also)
{
	struct dir_result got = { 0 };
	const struct dir_entry *e;
	bool same = false;

	if (new_ == NULL && old == NULL)
		return false;
	if (dir_do_search(d, dn, LDAP_SCOPE_BASE, "(objectClass=*)", 1, &got) != DIR_OK ||
	    got.nentries != 1)
		goto out;
	e = &got.entries[0];
	if (new_ != NULL && !dir_do_attr_has(dir_entry_attr(e, attr), new_))
		goto out;
	if (old != NULL && (new_ == NULL || strcmp(old, new_) != 0) &&
	    dir_do_attr_has(dir_entry_attr(e, attr), old))
		goto out;
	if (old != NULL && new_ != NULL && strcmp(old, new_) == 0)
		goto out;	/* a bare assertion that failed: nothing of ours to find */
	for (size_t i = 0; also != NULL && i < also->nattrs; i++) {
		const struct dir_attr *want = &also->attrs[i], *a = dir_entry_attr(e, want->name);
		if ((a ? a->nvals : 0) != want->nvals)
			goto out;
		for (size_t j = 0; j < want->nvals; j++)
			if (!dir_do_attr_has(a, want->vals[j]))
				goto out;
	}
	same = true;
out:
	dir_result_clear(&got);
	return same;
}

enum dir_status
dir_do_cas(struct dir *d, const char *dn, const char *attr, const char *old, const char *new_,
    const struct dir_entry *also, void *txn, struct dir_result *r)
{
	struct dir_entry none = { 0 };
	LDAPControl c, *ctrls[2];
	LDAPMod **mods, del, add;
	char *delv[2] = { NULL, NULL }, *addv[2] = { NULL, NULL }, *type;
	size_t n;
	int rc;

	if (!dir_link_ready(d, r))
		return r->status;
	/* libldap's LDAPMod takes char *: copies, not casts of the caller's const strings */
	type = xstrdup(attr);
	delv[0] = old != NULL ? xstrdup(old) : NULL;
	addv[0] = new_ != NULL ? xstrdup(new_) : NULL;
	mods = dir_do_mods(also ? also : &none, LDAP_MOD_REPLACE, 2);
	n = also ? also->nattrs : 0;
	del.mod_op = LDAP_MOD_DELETE;
	del.mod_type = type;
	del.mod_values = delv;
	add.mod_op = LDAP_MOD_ADD;
	add.mod_type = type;
	add.mod_values = addv;
	if (old != NULL)
		mods[n++] = &del;
	if (new_ != NULL)	/* NULL: only remove old (a value of a multi-valued attribute) */
		mods[n++] = &add;
	dir_do_txn_control(txn, &c, ctrls);
	rc = ldap_modify_ext_s(d->ld, dn, mods, ctrls, NULL);
	mods[also ? also->nattrs : 0] = NULL;	/* del/add live on this stack */
	dir_do_mods_free(mods);
	free(type);
	free(delv[0]);
	free(addv[0]);
	if (dir_link_outcome(d, rc, "compare-and-swap", r) == DIR_CAS_LOST && d->resending &&
	    txn == NULL && dir_do_cas_in_place(d, dn, attr, old, new_, also)) {
		log_info("directory: compare-and-swap of %s on %s, sent again after the connection "
		    "dropped, was already made: done", attr, dn);
		dir_result_set(r, DIR_OK, "%s", "");
	}
	return r->status;
}

/*
 * One atomic modify: the values in del deleted (noSuchAttribute, DIR_CAS_LOST, if one is not
 * there: the assertions of a compare-and-swap), those in add added, those in repl replaced.
 * Each may be NULL.
 */
enum dir_status
dir_do_modify(struct dir *d, const char *dn, const struct dir_entry *del,
    const struct dir_entry *add, const struct dir_entry *repl, struct dir_result *r)
{
	const struct dir_entry *parts[3] = { del, add, repl };
	const int ops[3] = { LDAP_MOD_DELETE, LDAP_MOD_ADD, LDAP_MOD_REPLACE };
	LDAPMod **all, **one;
	size_t n = 0, cap = 1;
	int rc;

	if (!dir_link_ready(d, r))
		return r->status;
	for (int i = 0; i < 3; i++)
		cap += parts[i] ? parts[i]->nattrs : 0;
	all = xcalloc(cap, sizeof *all);
	for (int i = 0; i < 3; i++) {
		if (parts[i] == NULL)
			continue;
		one = dir_do_mods(parts[i], ops[i] == LDAP_MOD_DELETE ? LDAP_MOD_ADD : ops[i], 0);
		for (size_t j = 0; one[j] != NULL; j++) {
			one[j]->mod_op = ops[i];	/* built as adds: attributes of no value left out */
			all[n++] = one[j];
		}
		free(one);
	}
	rc = ldap_modify_ext_s(d->ld, dn, all, NULL, NULL);
	dir_do_mods_free(all);
	return dir_link_outcome(d, rc, "compare-and-swap", r);
}

enum dir_status
dir_do_delete(struct dir *d, const char *dn, struct dir_result *r)
{
	if (!dir_link_ready(d, r))
		return r->status;
	return dir_link_outcome(d, ldap_delete_ext_s(d->ld, dn, NULL, NULL), "delete", r);
}

void *
dir_do_txn_begin(struct dir *d, struct dir_result *r)
{
	struct berval *txnid = NULL;
	int rc;

	if (!dir_link_ready(d, r))
		return NULL;
	rc = ldap_txn_start_s(d->ld, NULL, NULL, &txnid);
	if (dir_link_outcome(d, rc, "transaction start", r) != DIR_OK) {
		ber_bvfree(txnid);
		return NULL;
	}
	return txnid;
}

enum dir_status
dir_do_txn_end(struct dir *d, void *txn, bool commit, struct dir_result *r)
{
	int rc, failed = 0;

	if (d->ld == NULL) {
		ber_bvfree(txn);
		dir_result_set(r, DIR_DOWN, "directory unavailable: %s: %s", d->link.uri, d->down_reason);
		return DIR_DOWN;
	}
	rc = ldap_txn_end_s(d->ld, commit, txn, NULL, NULL, &failed);
	ber_bvfree(txn);
	return dir_link_outcome(d, rc, commit ? "transaction commit" : "transaction abort", r);
}
