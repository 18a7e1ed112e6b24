/*
 * query: the lists brokers and gca-ctl show (services, classes, CTSes by class, core service,
 * property or status, jobs, a job's checkpoints newest first). The same data is in the directory
 * for ldapsearch; this is for clients that speak only the wire.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define QUERY_DEFAULT_LIMIT 500

void
query_entries(const struct dir_result *res, struct proto_entries *out)
{
	out->n = 0;
	out->v = xcalloc(res->nentries ? res->nentries : 1, sizeof *out->v);
	for (size_t i = 0; i < res->nentries; i++) {
		const struct dir_entry *e = &res->entries[i];
		struct proto_entry *pe = &out->v[out->n++];

		pe->attrs = xcalloc(e->nattrs ? e->nattrs : 1, sizeof *pe->attrs);
		for (size_t a = 0; a < e->nattrs; a++) {
			struct proto_attr *pa = &pe->attrs[pe->n++];
			pa->name = xstrdup(e->attrs[a].name);
			for (size_t v = 0; v < e->attrs[a].nvals; v++)
				proto_strlist_add(&pa->vals, e->attrs[a].vals[v]);
		}
	}
}

static size_t
query_limit(const struct msg_query *q)
{
	return q->limit > 0 && q->limit < 100000 ? q->limit : QUERY_DEFAULT_LIMIT;
}

/* A list other than a job's checkpoints: one more than the limit is read, so that a list cut at
 * the limit says so (more), never silently. */
static void
query_on_result(const struct dir_result *res, void *arg)
{
	struct proto_req *r = arg;
	struct msg_query_ok ok = { 0 };
	struct dir_result page = *res;

	if (res->status != DIR_OK) {
		proto_reply_err(r, gcs_dir_code(res->status), "%s", res->status == DIR_NOT_FOUND ?
		    "not found" : res->msg);
		return;
	}
	if (page.nentries > query_limit(r->body)) {
		page.nentries = query_limit(r->body);
		ok.more = true;
	}
	query_entries(&page, &ok.entries);
	proto_reply_ok(r, r->pt->reply, &ok);
	proto_entries_free(&ok.entries);
}

/* A job's checkpoints, a page at a time: one more than the limit is read to know whether another
 * page follows; the cursor "before=N" (N the last number given) asks for the next one. */
static void
query_on_checkpoints(const struct dir_result *res, void *arg)
{
	struct proto_req *r = arg;
	struct msg_query *q = r->body;
	struct msg_query_ok ok = { 0 };
	struct dir_result page = *res;
	size_t limit = query_limit(q);
	char cursor[40];

	if (res->status != DIR_OK) {
		query_on_result(res, arg);
		return;
	}
	if (page.nentries > limit) {
		const char *seq = dir_entry_get(&page.entries[limit - 1], "gcaSequenceNumber");
		page.nentries = limit;
		snprintf(cursor, sizeof cursor, "before=%s", seq ? seq : "0");
		ok.cursor = cursor;
		ok.more = true;
	}
	query_entries(&page, &ok.entries);
	proto_reply_ok(r, r->pt->reply, &ok);
	proto_entries_free(&ok.entries);
}

/* Appends "(attr=<escaped value>)" to f. */
static int
query_and(char *f, size_t len, const char *attr, const char *value)
{
	char esc[3 * 1024 + 1];
	size_t used = strlen(f);

	if (value == NULL)
		return 0;
	if (dir_filter_escape(value, esc, sizeof esc) != 0 ||
	    snprintf(f + used, len - used, "(%s=%s)", attr, esc) >= (int)(len - used))
		return -1;
	return 0;
}

/* A cursor this GCS gives: "before=N", N in decimal digits only (no sign, no space, nothing
 * after) and within 64 bits; strtoull alone would take "-1" as 2^64-1 and wrap 2^64 silently. */
static int
query_cursor(const char *cursor, uint64_t *before)
{
	const char *digits;
	unsigned long long v;
	char *end;

	*before = 0;
	if (cursor == NULL)
		return 0;
	digits = cursor + strcspn(cursor, "=") + 1;
	if (strncmp(cursor, "before=", 7) != 0 || *digits == '\0' ||
	    strspn(digits, "0123456789") != strlen(digits))
		return -1;
	errno = 0;
	v = strtoull(digits, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*before = v;
	return 0;
}

/*
 * jobs and cts, paged by key (gcaGID, cn). Neither attribute has an ordering rule in the schema, so
 * the directory cannot give "the entries after X" (a filter (gcaGID>=X) is undefined), and the
 * paged results control (RFC 2696) keeps its cookie on one LDAP connection, which the GCS shares
 * among all its clients and loses on a reconnect. So the GCS reads the matching entries whole (its
 * directory identity has no size limit: gca-site) and pages them in its own order, the bytes of
 * the key: the cursor "after=K" (K percent-encoded, so that any GID is one shell word) asks for
 * the entries whose key sorts after K. A page costs a read of the whole list: fine for the jobs
 * and CTSes of a site; checkpoints, which may be millions, page in the directory (before=N).
 */
#define QUERY_KEY_MAX 256

struct query_keyed {
	const char		*key;
	const struct dir_entry	*e;
};

static int
query_keyed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct query_keyed *)a)->key, ((const struct query_keyed *)b)->key);
}

static void
query_key_encode(const char *key, char *out, size_t len)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	    "-_.:";
	size_t o = snprintf(out, len, "after=");

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0' && o + 4 < len; p++) {
		if (strchr(safe, *p) != NULL)
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, len - o, "%%%02X", *p);
	}
	out[o] = '\0';
}

/* "after=K" into key; NULL cursor: "" (from the start). -1 for anything else. */
static int
query_key_cursor(const char *cursor, char *key, size_t len)
{
	size_t o = 0;
	const char *p;
	unsigned v;

	key[0] = '\0';
	if (cursor == NULL)
		return 0;
	if (strncmp(cursor, "after=", 6) != 0 || cursor[6] == '\0')
		return -1;
	for (p = cursor + 6; *p != '\0'; p++) {
		if (o + 1 >= len)
			return -1;
		if (*p != '%') {
			if ((unsigned char)*p < 0x21 || *p == 0x7f)
				return -1;
			key[o++] = *p;
			continue;
		}
		if (sscanf(p + 1, "%2x", &v) != 1 || !isxdigit((unsigned char)p[1]) ||
		    !isxdigit((unsigned char)p[2]) || v == 0)
			return -1;
		key[o++] = (char)v;
		p += 2;
	}
	key[o] = '\0';
	return 0;
}

struct query_page {
	struct proto_req	*r;
	const char		*attr;		/* the key */
	char			 after[QUERY_KEY_MAX + 1];
};

static void
query_on_keyed(const struct dir_result *res, void *arg)
{
	struct query_page *qp = arg;
	struct proto_req *r = qp->r;
	size_t limit = query_limit(r->body), n = 0;
	struct msg_query_ok ok = { 0 };
	struct dir_result page = { 0 };
	struct query_keyed *k;
	char cursor[3 * QUERY_KEY_MAX + 8];

	if (res->status != DIR_OK) {
		query_on_result(res, r);
		free(qp);
		return;
	}
	k = xcalloc(res->nentries ? res->nentries : 1, sizeof *k);
	for (size_t i = 0; i < res->nentries; i++) {
		const char *key = dir_entry_get(&res->entries[i], qp->attr);

		if (key == NULL)
			key = "";
		if (qp->after[0] == '\0' || strcmp(key, qp->after) > 0)
			k[n++] = (struct query_keyed){ key, &res->entries[i] };
	}
	qsort(k, n, sizeof *k, query_keyed_cmp);
	page.nentries = n > limit ? limit : n;
	page.entries = xcalloc(page.nentries ? page.nentries : 1, sizeof *page.entries);
	for (size_t i = 0; i < page.nentries; i++)
		page.entries[i] = *k[i].e;	/* shallow: read only, by query_entries */
	if (n > limit) {
		query_key_encode(k[limit - 1].key, cursor, sizeof cursor);
		ok.cursor = cursor;
		ok.more = true;
	}
	query_entries(&page, &ok.entries);
	proto_reply_ok(r, r->pt->reply, &ok);
	proto_entries_free(&ok.entries);
	free(page.entries);
	free(k);
	free(qp);
}

void
query_handle(struct proto_req *r, void *ctx)
{
	struct msg_query *q = r->body;
	struct gcs *g = ctx;
	char base[512], filter[8192];
	int limit = (int)query_limit(q);
	const char *ou, *oc;

	/* names as every command takes them: " job-1" would match job-1 in the directory */
	if ((q->gid != NULL && !name_valid(q->gid)) || (q->cts != NULL && !name_valid(q->cts)) ||
	    (q->class_ != NULL && !name_valid(q->class_))) {
		const char *bad = q->gid != NULL && !name_valid(q->gid) ? q->gid :
		    q->cts != NULL && !name_valid(q->cts) ? q->cts : q->class_;
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid %s: %s (%s)", bad == q->gid ? "GID" :
		    bad == q->cts ? "CTS name" : "class name", name_why(bad), NAME_RULE);
		return;
	}
	if (strcmp(q->what, "checkpoints") == 0) {
		if (q->gid == NULL) {
			proto_reply_err(r, PROTO_E_MISSING_FIELD, "checkpoints of which GID? (gid)");
			return;
		}
		uint64_t before;
		if (query_cursor(q->cursor, &before) != 0) {
			proto_reply_err(r, PROTO_E_BAD_FIELD, "cursor \"%s\" is not one this GCS gives "
			    "(before=N, N a sequence number)", q->cursor);
			return;
		}
		dir_checkpoints(g->dir, q->gid, before, limit + 1, query_on_checkpoints, r);
		return;
	}
	if (strcmp(q->what, "services") == 0)
		ou = "services", oc = "gcaService";
	else if (strcmp(q->what, "classes") == 0)
		ou = "classes", oc = "gcaCheckpointerClass";
	else if (strcmp(q->what, "cts") == 0)
		ou = "cts", oc = "gcaTranslationService";
	else if (strcmp(q->what, "jobs") == 0)
		ou = "jobs", oc = "gcaJob";
	else {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "what must be services, classes, cts, jobs or "
		    "checkpoints, not \"%s\"", q->what);
		return;
	}
	snprintf(base, sizeof base, "ou=%s,%s", ou, dir_base(g->dir));
	snprintf(filter, sizeof filter, "(&(objectClass=%s)", oc);
	if (query_and(filter, sizeof filter, "cn", strcmp(ou, "jobs") ? q->cts : NULL) != 0 ||
	    query_and(filter, sizeof filter, "gcaCTSName", strcmp(ou, "jobs") == 0 ? q->cts : NULL) != 0 ||
	    query_and(filter, sizeof filter, "gcaGID", q->gid) != 0 ||
	    query_and(filter, sizeof filter, "gcaClass", q->class_) != 0 ||
	    query_and(filter, sizeof filter, "gcaCoreService", q->core_service) != 0 ||
	    query_and(filter, sizeof filter, "gcaProperty", q->property) != 0 ||
	    query_and(filter, sizeof filter, "gcaStatus", q->status) != 0 ||
	    strlen(filter) + 2 > sizeof filter) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "filter values too long");
		return;
	}
	strcat(filter, ")");
	if (strcmp(ou, "jobs") == 0 || strcmp(ou, "cts") == 0) {
		struct query_page *qp = xcalloc(1, sizeof *qp);

		qp->r = r;
		qp->attr = strcmp(ou, "jobs") == 0 ? "gcaGID" : "cn";
		if (query_key_cursor(q->cursor, qp->after, sizeof qp->after) != 0) {
			proto_reply_err(r, PROTO_E_BAD_FIELD, "cursor \"%s\" is not one this GCS gives "
			    "(after=K, K the last %s given, percent-encoded)", q->cursor,
			    strcmp(ou, "jobs") == 0 ? "GID" : "CTS name");
			free(qp);
			return;
		}
		dir_search(g->dir, base, 1, filter, 0, query_on_keyed, qp);
		return;
	}
	dir_search(g->dir, base, 1, filter, limit + 1, query_on_result, r);
}
