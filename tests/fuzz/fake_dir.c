/*
 * The fuzz harnesses' directory (only here: everywhere else a real slapd runs). It stands in for
 * ldap/dir.c (the queue and its thread) and ldap/dir_do.c (the blocking libldap calls), and so
 * for nothing else: the real operation builders (dir_job.c, dir_record.c, dir_cts.c, ...) run
 * unchanged on top of it. Operations are answered on the loop, one turn later, as the real queue
 * answers through its eventfd, from a small in-memory tree: entries by DN, base/one/subtree
 * searches with a filter of =, =*, <=, >=, &, |, !. fake_dir_fail makes every operation answer a
 * status instead (a directory down, a lost compare-and-swap), as the input asks.
 *
 * Linked before libgca.a, these definitions win, and ldap/dir.o and ldap/dir_do.o are never
 * pulled from the archive: every symbol they define is defined here.
 */
#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"
#include "tests/fuzz/fuzz.h"

static struct dir_entry **fake_tree;
static size_t fake_n;
static enum dir_status fake_fail;	/* DIR_OK: answer from the tree */

void
fake_dir_fail(enum dir_status s)
{
	fake_fail = s;
}

void
fake_dir_reset(void)
{
	for (size_t i = 0; i < fake_n; i++)
		dir_entry_free(fake_tree[i]);
	free(fake_tree);
	fake_tree = NULL;
	fake_n = 0;
	fake_fail = DIR_OK;
}

static struct dir_entry *
fake_copy(const struct dir_entry *e, const char *dn)
{
	struct dir_entry *c = dir_entry_new(dn ? dn : e->dn);

	for (size_t i = 0; i < e->nattrs; i++)
		for (size_t j = 0; j < e->attrs[i].nvals; j++)
			dir_entry_add(c, e->attrs[i].name, e->attrs[i].vals[j]);
	return c;
}

static ssize_t
fake_find(const char *dn)
{
	for (size_t i = 0; i < fake_n; i++)
		if (strcasecmp(fake_tree[i]->dn, dn) == 0)
			return (ssize_t)i;
	return -1;
}

static void
fake_attr_del(struct dir_entry *e, const char *attr, const char *value)
{
	for (size_t i = 0; i < e->nattrs; i++) {
		struct dir_attr *a = &e->attrs[i];

		if (strcasecmp(a->name, attr) != 0)
			continue;
		for (size_t j = 0; j < a->nvals; j++) {
			if (value != NULL && strcmp(a->vals[j], value) != 0)
				continue;
			free(a->vals[j]);
			memmove(&a->vals[j], &a->vals[j + 1], (a->nvals - j - 1) * sizeof *a->vals);
			a->nvals--;
			j--;
		}
	}
}

static bool
fake_has(const struct dir_entry *e, const char *attr, const char *value)
{
	const struct dir_attr *a = dir_entry_attr(e, attr);

	for (size_t j = 0; a != NULL && j < a->nvals; j++)
		if (value == NULL || strcmp(a->vals[j], value) == 0)
			return true;
	return false;
}

/* ---- filters: enough of RFC 4515 for what the builders write ---- */

static bool fake_filter(const struct dir_entry *e, const char **f);

static bool
fake_filter_list(const struct dir_entry *e, const char **f, bool and)
{
	bool r = and;

	while (**f == '(') {
		bool one = fake_filter(e, f);
		r = and ? r && one : r || one;
	}
	return r;
}

static bool
fake_filter_item(const struct dir_entry *e, const char *item, size_t len)
{
	char attr[128], value[512];
	const char *op = memchr(item, '=', len);
	size_t an, vn;
	char kind = '=';
	const struct dir_attr *a;

	if (op == NULL)
		return false;
	an = (size_t)(op - item);
	if (an > 0 && (item[an - 1] == '<' || item[an - 1] == '>' || item[an - 1] == '~'))
		kind = item[--an];
	vn = len - (size_t)(op + 1 - item);
	if (an >= sizeof attr || vn >= sizeof value)
		return false;
	memcpy(attr, item, an);
	attr[an] = '\0';
	memcpy(value, op + 1, vn);
	value[vn] = '\0';
	if (strcasecmp(attr, "objectClass") == 0)
		return true;	/* the tree keeps no classes: every entry is what was asked */
	if (strcmp(value, "*") == 0)
		return fake_has(e, attr, NULL);
	if (kind == '=' && strchr(value, '*') == NULL)
		return fake_has(e, attr, value);
	a = dir_entry_attr(e, attr);
	for (size_t j = 0; a != NULL && j < a->nvals; j++) {
		unsigned long long have = strtoull(a->vals[j], NULL, 10), want = strtoull(value, NULL, 10);
		if ((kind == '<' && have <= want) || (kind == '>' && have >= want) || kind == '=' ||
		    kind == '~')
			return true;	/* a substring match: taken as a match */
	}
	return false;
}

static bool
fake_filter(const struct dir_entry *e, const char **f)
{
	const char *p = *f, *end;
	bool r;

	if (*p != '(')
		return false;
	p++;
	if (*p == '&' || *p == '|') {
		bool and = *p == '&';
		p++;
		r = fake_filter_list(e, &p, and);
	} else if (*p == '!') {
		p++;
		r = !fake_filter(e, &p);
	} else {
		end = p;
		while (*end != '\0' && *end != ')')
			end++;
		r = fake_filter_item(e, p, (size_t)(end - p));
		p = end;
	}
	if (*p == ')')
		p++;
	*f = p;
	return r;
}

/* The number of RDNs above base in dn, or -1 if dn is not under base. */
static int
fake_depth(const char *dn, const char *base)
{
	size_t dl = strlen(dn), bl = strlen(base);
	int depth = 0;

	if (dl < bl || strcasecmp(dn + dl - bl, base) != 0)
		return -1;
	if (dl == bl)
		return 0;
	if (dn[dl - bl - 1] != ',')
		return -1;
	for (size_t i = 0; i < dl - bl; i++)
		if (dn[i] == ',' && (i == 0 || dn[i - 1] != '\\'))
			depth++;
	return depth;
}

static bool
fake_failing(struct dir_result *r)
{
	if (fake_fail == DIR_OK)
		return false;
	dir_result_set(r, fake_fail, "fake directory: %s", dir_status_name(fake_fail));
	return true;
}

/* ---- ldap/dir_do.c ---- */

enum dir_status
dir_do_search(struct dir *d, const char *base, int scope, const char *filter, int limit,
    struct dir_result *r)
{
	(void)d;
	if (fake_failing(r))
		return r->status;
	if (scope == 0 && fake_find(base) < 0) {
		dir_result_set(r, DIR_NOT_FOUND, "fake directory: no %s", base);
		return r->status;
	}
	for (size_t i = 0; i < fake_n && (limit <= 0 || r->nentries < (size_t)limit); i++) {
		int depth = fake_depth(fake_tree[i]->dn, base);
		const char *f = filter ? filter : "(objectClass=*)";
		struct dir_entry *c;

		if (depth < 0 || (scope == 0 && depth != 0) || (scope == 1 && depth != 1) ||
		    !fake_filter(fake_tree[i], &f))
			continue;
		c = fake_copy(fake_tree[i], NULL);
		r->entries = xreallocarray(r->entries, r->nentries + 1, sizeof *r->entries);
		r->entries[r->nentries++] = *c;
		free(c);
	}
	r->status = DIR_OK;
	return DIR_OK;
}

enum dir_status
dir_do_add(struct dir *d, const struct dir_entry *e, void *txn, struct dir_result *r)
{
	(void)d;
	(void)txn;
	if (fake_failing(r))
		return r->status;
	if (fake_find(e->dn) >= 0) {
		dir_result_set(r, DIR_EXISTS, "fake directory: %s exists", e->dn);
		return r->status;
	}
	if (fake_n >= 4096) {
		dir_result_set(r, DIR_ERROR, "fake directory: full");
		return r->status;
	}
	fake_tree = xreallocarray(fake_tree, fake_n + 1, sizeof *fake_tree);
	fake_tree[fake_n++] = fake_copy(e, NULL);
	r->status = DIR_OK;
	return DIR_OK;
}

static void
fake_replace_attrs(struct dir_entry *t, const struct dir_entry *e)
{
	for (size_t i = 0; i < e->nattrs; i++) {
		fake_attr_del(t, e->attrs[i].name, NULL);
		for (size_t j = 0; j < e->attrs[i].nvals; j++)
			dir_entry_add(t, e->attrs[i].name, e->attrs[i].vals[j]);
	}
}

enum dir_status
dir_do_replace(struct dir *d, const struct dir_entry *e, struct dir_result *r)
{
	ssize_t i;

	(void)d;
	if (fake_failing(r))
		return r->status;
	if ((i = fake_find(e->dn)) < 0) {
		dir_result_set(r, DIR_NOT_FOUND, "fake directory: no %s", e->dn);
		return r->status;
	}
	fake_replace_attrs(fake_tree[i], e);
	r->status = DIR_OK;
	return DIR_OK;
}

enum dir_status
dir_do_cas(struct dir *d, const char *dn, const char *attr, const char *old, const char *new_,
    const struct dir_entry *also, void *txn, struct dir_result *r)
{
	ssize_t i;

	(void)d;
	(void)txn;
	if (fake_failing(r))
		return r->status;
	if ((i = fake_find(dn)) < 0) {
		dir_result_set(r, DIR_NOT_FOUND, "fake directory: no %s", dn);
		return r->status;
	}
	if ((old != NULL && !fake_has(fake_tree[i], attr, old)) ||
	    (old == NULL && new_ != NULL && fake_has(fake_tree[i], attr, NULL))) {
		dir_result_set(r, DIR_CAS_LOST, "fake directory: %s changed", attr);
		return r->status;
	}
	if (old != NULL)
		fake_attr_del(fake_tree[i], attr, old);
	if (new_ != NULL)
		dir_entry_add(fake_tree[i], attr, new_);
	if (also != NULL)
		fake_replace_attrs(fake_tree[i], also);
	r->status = DIR_OK;
	return DIR_OK;
}

enum dir_status
dir_do_modify(struct dir *d, const char *dn, const struct dir_entry *del,
    const struct dir_entry *add, const struct dir_entry *repl, struct dir_result *r)
{
	struct dir_entry *t;
	ssize_t i;

	(void)d;
	if (fake_failing(r))
		return r->status;
	if ((i = fake_find(dn)) < 0) {
		dir_result_set(r, DIR_NOT_FOUND, "fake directory: no %s", dn);
		return r->status;
	}
	t = fake_tree[i];
	for (size_t a = 0; del != NULL && a < del->nattrs; a++)
		for (size_t v = 0; v < del->attrs[a].nvals; v++)
			if (!fake_has(t, del->attrs[a].name, del->attrs[a].vals[v])) {
				dir_result_set(r, DIR_CAS_LOST, "fake directory: %s changed",
				    del->attrs[a].name);
				return r->status;
			}
	for (size_t a = 0; del != NULL && a < del->nattrs; a++)
		for (size_t v = 0; v < del->attrs[a].nvals; v++)
			fake_attr_del(t, del->attrs[a].name, del->attrs[a].vals[v]);
	for (size_t a = 0; add != NULL && a < add->nattrs; a++)
		for (size_t v = 0; v < add->attrs[a].nvals; v++)
			dir_entry_add(t, add->attrs[a].name, add->attrs[a].vals[v]);
	if (repl != NULL)
		fake_replace_attrs(t, repl);
	r->status = DIR_OK;
	return DIR_OK;
}

enum dir_status
dir_do_delete(struct dir *d, const char *dn, struct dir_result *r)
{
	ssize_t i;

	(void)d;
	if (fake_failing(r))
		return r->status;
	if ((i = fake_find(dn)) < 0) {
		dir_result_set(r, DIR_NOT_FOUND, "fake directory: no %s", dn);
		return r->status;
	}
	dir_entry_free(fake_tree[i]);
	fake_tree[i] = fake_tree[--fake_n];
	r->status = DIR_OK;
	return DIR_OK;
}

void *
dir_do_txn_begin(struct dir *d, struct dir_result *r)
{
	(void)d;
	dir_result_set(r, DIR_ERROR, "fake directory: no transactions");
	return NULL;
}

enum dir_status
dir_do_txn_end(struct dir *d, void *txn, bool commit, struct dir_result *r)
{
	(void)d;
	(void)txn;
	(void)commit;
	r->status = DIR_OK;
	return DIR_OK;
}

/* ---- ldap/dir.c: the queue, answered on the loop ---- */

const char *
dir_base(const struct dir *d)
{
	return d->suffix;
}

struct dir_op *
dir_op_new(dir_op_fn fn, dir_cb cb, void *arg)
{
	struct dir_op *op = xcalloc(1, sizeof *op);

	op->fn = fn;
	op->cb = cb;
	op->arg = arg;
	return op;
}

const char *
dir_op_keep(struct dir_op *op, char *s)
{
	if (s == NULL)
		return NULL;
	if (op->ncopies == GCA_NITEMS(op->copies))
		log_fatal("directory: an operation carries more than %zu strings",
		    GCA_NITEMS(op->copies));
	op->copies[op->ncopies++] = s;
	return s;
}

const char *
dir_op_strdup(struct dir_op *op, const char *s)
{
	return dir_op_keep(op, s != NULL ? xstrdup(s) : NULL);
}

static void
fake_op_free(struct dir_op *op)
{
	for (size_t i = 0; i < op->ncopies; i++)
		free(op->copies[i]);
	dir_entry_free(op->entry);
	dir_entry_free(op->view);
	dir_result_clear(&op->res);
	free(op);
}

/* One turn of the loop after it was queued, as the real thread answers: run it, answer it. */
static void
fake_on_turn(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;
	struct dir_op *list = d->todo;

	(void)fd;
	(void)what;
	d->todo = NULL;
	d->todo_tail = &d->todo;
	while (list != NULL) {
		struct dir_op *op = list;

		list = op->next;
		if (op->batch != NULL)
			op->batch(d, &op, 1);
		else
			op->fn(d, op);
		if (op->fn != NULL && op->after != NULL && op->res.status == DIR_OK)
			op->after(d, op);
		d->queued--;
		if (op->cb != NULL)
			op->cb(&op->res, op->arg);
		fake_op_free(op);
	}
}

void
dir_op_submit(struct dir *d, struct dir_op *op)
{
	op->queued_ms = time_mono_ms();
	op->next = NULL;
	*d->todo_tail = op;
	d->todo_tail = &op->next;
	d->queued++;
	if (d->todo == op)
		event_base_once(d->base, -1, EV_TIMEOUT, fake_on_turn, d, NULL);
}

struct dir *
dir_open(struct event_base *base, const struct dir_config *c, char *err, size_t errlen)
{
	struct dir *d = xcalloc(1, sizeof *d);

	(void)err;
	(void)errlen;
	d->base = base;
	d->suffix = xstrdup(c->base ? c->base : "o=gca");
	dir_config_copy(&d->link, c);
	d->op_timeout_ms = 10000;
	d->batch_max = 1;
	d->todo_tail = &d->todo;
	return d;
}

void
dir_close(struct dir *d)
{
	struct dir_op *op, *next;

	if (d == NULL)
		return;
	for (op = d->todo; op != NULL; op = next) {
		next = op->next;
		fake_op_free(op);
	}
	free(d->suffix);
	dir_config_free(&d->link);
	free(d);
}

size_t
dir_queued(struct dir *d)
{
	return d->queued;
}

bool
dir_connected(struct dir *d)
{
	(void)d;
	return fake_fail != DIR_DOWN;
}
