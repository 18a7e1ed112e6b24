/*
 * audit (gca-ctl audit [GID], admin; docs/PROTOCOL.md, "Auditing a site"): the directory against
 * what the CTSes hold. The GCS does the work because it has both: one subtree search of ou=jobs
 * (job entries and records), one of ou=cts, then image_audit to every CTS that is not retired,
 * with the records that place a copy there (gcaLocation); each checks its copies as a restore
 * would and names the images no record names and the jobs it holds (cts/audit.c). Joined here:
 *
 *   image_missing     a record (not expired) with no copy at any holder
 *   image_bad         a record whose copies all fail their checks (sha256, signature, a file)
 *   copy_bad          one holder's copy missing or failing while another holder's is good
 *   image_unrecorded  an image a CTS holds that no record names (or whose record does not name it)
 *   job_unknown       a job bound to a CTS that does not hold it
 *   seq_repeat        two records of one job with one sequence number, or gcaLastSequence below
 *                     a recorded number (the next checkpoint would repeat it)
 *   seq_gap           numbers between 1 and a job's highest with no record (a number reserved
 *                     for a record that then failed: ldap/dir_record.c)
 *
 * A CTS not asked (down), not answering in time (the pooled client's limit, request_timeout) or
 * whose answer was cut is named in `unchecked`, and what only it could tell is not judged.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "gcs/gcs.h"

/* What one request to a CTS, and the answer, may carry: under the 1 MiB frame limit, with the
 * findings at most AUDIT_BYTES and every CTS not checked (the field's 1000 at most) a line of at
 * most AUDIT_LINE beside them. */
#define AUDIT_BYTES	(640 * 1024)
#define AUDIT_ITEMS	4000
#define AUDIT_DETAIL	400
#define AUDIT_LINE	300
#define AUDIT_CTS_MAX	1000

enum audit_kind {
	AUDIT_IMAGE_MISSING, AUDIT_IMAGE_BAD, AUDIT_COPY_BAD, AUDIT_IMAGE_UNRECORDED,
	AUDIT_JOB_UNKNOWN, AUDIT_SEQ_REPEAT, AUDIT_SEQ_GAP, AUDIT_NKINDS
};
static const char *const audit_kinds[AUDIT_NKINDS] = {
	"image_missing", "image_bad", "copy_bad", "image_unrecorded", "job_unknown", "seq_repeat",
	"seq_gap",
};

struct audit_rec {
	char		*id, *gid, *sha256, *taker;	/* sha256 NULL: none that could be checked */
	uint64_t	 seq;
	bool		 has_seq, expired;
	char		**locs;
	size_t		 nlocs;
};

struct audit_job {
	char		*gid, *cts, *local_id;
	uint64_t	 last;
	bool		 finished, has_last;
};

enum audit_state { AUDIT_ASKED, AUDIT_ANSWERED, AUDIT_UNCHECKED, AUDIT_RETIRED };

struct audit_op;
struct audit_cts {
	char			*name;
	enum audit_state	 state;
	struct proto_strlist	 bad, images, jobs;	/* its answer */
	struct audit_op		*op;
};

struct audit_op {
	struct gcs		*g;
	struct proto_req	*r;
	char			*gid;
	struct audit_rec	*recs;		/* sorted by id */
	size_t			 nrecs;
	struct audit_job	*jobs;
	size_t			 njobs;
	struct audit_cts	*cts;
	size_t			 ncts;
	unsigned		 waiting;
	struct msg_audit_ok	 ok;
	size_t			 bytes;
	uint64_t		 counts[AUDIT_NKINDS];
};

static void
audit_op_free(struct audit_op *op)
{
	for (size_t i = 0; i < op->nrecs; i++) {
		struct audit_rec *a = &op->recs[i];

		free(a->id);
		free(a->gid);
		free(a->sha256);
		free(a->taker);
		for (size_t k = 0; k < a->nlocs; k++)
			free(a->locs[k]);
		free(a->locs);
	}
	free(op->recs);
	for (size_t i = 0; i < op->njobs; i++) {
		free(op->jobs[i].gid);
		free(op->jobs[i].cts);
		free(op->jobs[i].local_id);
	}
	free(op->jobs);
	for (size_t i = 0; i < op->ncts; i++) {
		free(op->cts[i].name);
		proto_strlist_free(&op->cts[i].bad);
		proto_strlist_free(&op->cts[i].images);
		proto_strlist_free(&op->cts[i].jobs);
	}
	free(op->cts);
	proto_strlist_free(&op->ok.findings);
	proto_strlist_free(&op->ok.counts);
	proto_strlist_free(&op->ok.unchecked);
	free(op->gid);
	free(op);
}

static char *
audit_dup(const struct dir_entry *e, const char *attr)
{
	const char *v = dir_entry_get(e, attr);

	return v != NULL ? xstrdup(v) : NULL;
}

static int
audit_rec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct audit_rec *)a)->id, ((const struct audit_rec *)b)->id);
}

static struct audit_rec *
audit_rec_find(struct audit_op *op, const char *id)
{
	struct audit_rec key = { .id = (char *)(uintptr_t)id };

	return bsearch(&key, op->recs, op->nrecs, sizeof *op->recs, audit_rec_cmp);
}

static bool
audit_rec_at(const struct audit_rec *a, const char *cts)
{
	for (size_t k = 0; k < a->nlocs; k++) {
		if (strcasecmp(a->locs[k], cts) == 0)
			return true;
	}
	return false;
}

static struct audit_cts *
audit_cts_find(struct audit_op *op, const char *name)
{
	for (size_t i = 0; i < op->ncts; i++) {
		if (strcasecmp(op->cts[i].name, name) == 0)
			return &op->cts[i];
	}
	return NULL;
}

static int
audit_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* s is in l, which audit_on_reply sorted. */
static bool
audit_has(const struct proto_strlist *l, const char *s)
{
	return l->n > 0 && bsearch(&s, l->v, l->n, sizeof *l->v, audit_str_cmp) != NULL;
}

/* The why a CTS gave for its copy of id ("id\twhy" in its answer), or NULL: the copy is good. */
static const char *
audit_bad_why(const struct audit_cts *c, const char *id)
{
	size_t n = strlen(id);

	for (size_t i = 0; i < c->bad.n; i++) {
		if (strncmp(c->bad.v[i], id, n) == 0 && c->bad.v[i][n] == '\t')
			return c->bad.v[i] + n + 1;
	}
	return NULL;
}

/* l += s within the answer's bounds; else the answer says it was cut. */
static void
audit_add(struct audit_op *op, struct proto_strlist *l, const char *s)
{
	if (l->n >= AUDIT_ITEMS || op->bytes + strlen(s) + 8 > AUDIT_BYTES) {
		op->ok.cut = true;
		return;
	}
	op->bytes += strlen(s) + 8;
	proto_strlist_add(l, s);
}

static void audit_find(struct audit_op *op, enum audit_kind k, const char *gid, const char *id,
	const char *cts, const char *fmt, ...) GCA_PRINTF(6, 7);

/* One finding: "kind\tgid\tcheckpoint\tcts\tdetail", "-" for what it does not concern. */
static void
audit_find(struct audit_op *op, enum audit_kind k, const char *gid, const char *id,
    const char *cts, const char *fmt, ...)
{
	char detail[AUDIT_DETAIL + 1], *line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	for (char *p = detail; *p != '\0'; p++) {
		if (*p == '\t' || *p == '\n')
			*p = ' ';
	}
	op->counts[k]++;
	xasprintf(&line, "%s\t%s\t%s\t%s\t%s", audit_kinds[k], gid ? gid : "-", id ? id : "-",
	    cts ? cts : "-", detail);
	audit_add(op, &op->ok.findings, line);
	free(line);
}

static void
audit_unchecked(struct audit_op *op, const char *cts, const char *fmt, ...) GCA_PRINTF(3, 4);

static void
audit_unchecked(struct audit_op *op, const char *cts, const char *fmt, ...)
{
	char why[600], *line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	log_info("audit: CTS %s not checked: %s", cts, why);
	/* never dropped for the findings' sake: a CTS not checked makes the audit incomplete */
	if (op->ok.unchecked.n >= AUDIT_CTS_MAX)
		return;
	xasprintf(&line, "%.*s: %s", AUDIT_LINE / 2, cts, why);
	if (strlen(line) > AUDIT_LINE)
		line[AUDIT_LINE] = '\0';
	proto_strlist_add(&op->ok.unchecked, line);
	free(line);
}

/* ---- the join ---- */

/* Each record that is not expired: a good copy at some holder, or a finding. */
static void
audit_join_records(struct audit_op *op)
{
	for (size_t i = 0; i < op->nrecs; i++) {
		struct audit_rec *a = &op->recs[i];
		char whys[2048] = "", holders[1024] = "";
		size_t good = 0, unknown = 0, missing = 0, nbad = 0;

		if (a->expired)
			continue;
		if (a->sha256 == NULL) {
			audit_find(op, AUDIT_IMAGE_BAD, a->gid, a->id, a->taker, "the record has no "
			    "image sha256: no copy can be checked against it");
			continue;
		}
		if (a->nlocs == 0) {
			audit_find(op, AUDIT_IMAGE_MISSING, a->gid, a->id, a->taker, "no CTS holds a "
			    "copy (the record's gcaLocation is empty)");
			continue;
		}
		for (size_t k = 0; k < a->nlocs; k++) {
			struct audit_cts *c = audit_cts_find(op, a->locs[k]);
			const char *why = NULL;
			char buf[300];

			if (c == NULL) {
				why = "missing: the CTS is not in the directory";
			} else if (c->state == AUDIT_RETIRED) {
				why = "missing: the CTS is retired";
			} else if (c->state != AUDIT_ANSWERED) {
				unknown++;
				continue;
			} else if ((why = audit_bad_why(c, a->id)) == NULL) {
				good++;
				continue;
			}
			missing += strncmp(why, "missing", 7) == 0;
			nbad++;
			snprintf(buf, sizeof buf, "%s%s", holders[0] ? "," : "", a->locs[k]);
			strncat(holders, buf, sizeof holders - strlen(holders) - 1);
			snprintf(buf, sizeof buf, "%s%.100s: %.180s", whys[0] ? "; " : "", a->locs[k],
			    why);
			strncat(whys, buf, sizeof whys - strlen(whys) - 1);
		}
		if (nbad == 0)
			continue;
		if (good > 0) {
			/* another holder has a good copy: this location is wrong, nothing is lost */
			for (size_t k = 0; k < a->nlocs; k++) {
				struct audit_cts *c = audit_cts_find(op, a->locs[k]);
				const char *why = c == NULL ? "missing: the CTS is not in the directory" :
				    c->state == AUDIT_RETIRED ? "missing: the CTS is retired" :
				    c->state == AUDIT_ANSWERED ? audit_bad_why(c, a->id) : NULL;

				if (why != NULL)
					audit_find(op, AUDIT_COPY_BAD, a->gid, a->id, a->locs[k],
					    "%s (another holder's copy is good)", why);
			}
		} else if (unknown == 0) {
			audit_find(op, missing == nbad ? AUDIT_IMAGE_MISSING : AUDIT_IMAGE_BAD, a->gid,
			    a->id, holders, "at every holder: %s", whys);
		}
	}
}

/* Images a CTS holds that no record names, or whose record does not name that CTS. */
static void
audit_join_images(struct audit_op *op)
{
	for (size_t i = 0; i < op->ncts; i++) {
		struct audit_cts *c = &op->cts[i];

		for (size_t k = 0; c->state == AUDIT_ANSWERED && k < c->images.n; k++) {
			char *gid = xstrdup(c->images.v[k]), *id = strchr(gid, '\t');
			struct audit_rec *a;

			if (id == NULL) {
				free(gid);
				continue;
			}
			*id++ = '\0';
			if ((a = audit_rec_find(op, id)) == NULL)
				audit_find(op, AUDIT_IMAGE_UNRECORDED, gid, id, c->name, "an image "
				    "with no record in the directory");
			else if (!audit_rec_at(a, c->name))
				audit_find(op, AUDIT_IMAGE_UNRECORDED, gid, id, c->name, "an image "
				    "whose record does not name this CTS in gcaLocation%s",
				    a->expired ? " (the record is expired)" : "");
			free(gid);
		}
	}
}

/* Jobs bound (not finished) to a CTS that does not hold them. */
static void
audit_join_jobs(struct audit_op *op)
{
	for (size_t i = 0; i < op->njobs; i++) {
		struct audit_job *j = &op->jobs[i];
		struct audit_cts *c;

		if (j->finished || j->cts == NULL)
			continue;
		if ((c = audit_cts_find(op, j->cts)) == NULL)
			audit_find(op, AUDIT_JOB_UNKNOWN, j->gid, NULL, j->cts, "bound to a CTS that "
			    "is not in the directory");
		else if (c->state == AUDIT_RETIRED)
			audit_find(op, AUDIT_JOB_UNKNOWN, j->gid, NULL, j->cts, "bound to a retired "
			    "CTS");
		else if (c->state == AUDIT_ANSWERED && !audit_has(&c->jobs, j->gid))
			audit_find(op, AUDIT_JOB_UNKNOWN, j->gid, NULL, j->cts, "bound to this CTS "
			    "(process %s), which does not hold it", j->local_id ? j->local_id : "?");
	}
}

static int
audit_seq_cmp(const void *x, const void *y)
{
	const struct audit_rec *a = *(const struct audit_rec *const *)x;
	const struct audit_rec *b = *(const struct audit_rec *const *)y;
	int c = strcmp(a->gid, b->gid);

	if (c != 0)
		return c;
	if (a->has_seq != b->has_seq)
		return a->has_seq ? 1 : -1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static const struct audit_job *
audit_job_find(const struct audit_op *op, const char *gid)
{
	for (size_t i = 0; i < op->njobs; i++) {
		if (strcmp(op->jobs[i].gid, gid) == 0)
			return &op->jobs[i];
	}
	return NULL;
}

/* One job's records, by sequence number: each number once, none missing below the highest. */
static void
audit_join_seq_job(struct audit_op *op, struct audit_rec **v, size_t n)
{
	const struct audit_job *j = audit_job_find(op, v[0]->gid);
	uint64_t next = 1, high = 0;

	for (size_t i = 0; i < n; i++) {
		struct audit_rec *a = v[i];

		if (!a->has_seq) {
			audit_find(op, AUDIT_SEQ_GAP, a->gid, a->id, a->taker, "the record has no "
			    "sequence number");
			continue;
		}
		if (i > 0 && v[i - 1]->has_seq && v[i - 1]->seq == a->seq) {
			audit_find(op, AUDIT_SEQ_REPEAT, a->gid, a->id, a->taker, "sequence number "
			    "%llu is also checkpoint %s's", (unsigned long long)a->seq, v[i - 1]->id);
			continue;
		}
		if (a->seq > next + 1)
			audit_find(op, AUDIT_SEQ_GAP, a->gid, NULL, NULL, "no record has sequence "
			    "numbers %llu to %llu (the next recorded is %llu)",
			    (unsigned long long)next, (unsigned long long)(a->seq - 1),
			    (unsigned long long)a->seq);
		else if (a->seq > next)
			audit_find(op, AUDIT_SEQ_GAP, a->gid, NULL, NULL, "no record has sequence "
			    "number %llu (the next recorded is %llu)", (unsigned long long)next,
			    (unsigned long long)a->seq);
		next = a->seq + 1;
		high = a->seq;
	}
	if (j != NULL && j->has_last && j->last < high)
		audit_find(op, AUDIT_SEQ_REPEAT, j->gid, NULL, j->cts, "gcaLastSequence %llu is below "
		    "the highest recorded number %llu: the next checkpoint would repeat a number",
		    (unsigned long long)j->last, (unsigned long long)high);
}

static void
audit_join_seq(struct audit_op *op)
{
	struct audit_rec **v = xcalloc(op->nrecs + 1, sizeof *v);
	size_t from = 0;

	for (size_t i = 0; i < op->nrecs; i++)
		v[i] = &op->recs[i];
	qsort(v, op->nrecs, sizeof *v, audit_seq_cmp);
	for (size_t i = 1; i <= op->nrecs; i++) {
		if (i == op->nrecs || strcmp(v[i]->gid, v[from]->gid) != 0) {
			audit_join_seq_job(op, v + from, i - from);
			from = i;
		}
	}
	free(v);
}

static void
audit_join(struct audit_op *op)
{
	uint64_t total = 0;
	char line[64];

	audit_join_records(op);
	audit_join_images(op);
	audit_join_jobs(op);
	audit_join_seq(op);
	for (int k = 0; k < AUDIT_NKINDS; k++) {
		snprintf(line, sizeof line, "%s %llu", audit_kinds[k], (unsigned long long)op->counts[k]);
		proto_strlist_add(&op->ok.counts, line);
		total += op->counts[k];
	}
	op->ok.records = op->nrecs;
	op->ok.jobs = op->njobs;
	log_info("audit%s%s: %llu record(s), %llu job(s), %llu image(s) at %llu CTS(es): %llu "
	    "finding(s), %zu CTS(es) not checked", op->gid ? " of " : "", op->gid ? op->gid : "",
	    (unsigned long long)op->ok.records, (unsigned long long)op->ok.jobs,
	    (unsigned long long)op->ok.images, (unsigned long long)op->ok.cts,
	    (unsigned long long)total, op->ok.unchecked.n);
	proto_reply_ok(op->r, op->r->pt->reply, &op->ok);
	audit_op_free(op);
}

/* ---- asking the CTSes ---- */

static void
audit_on_reply(const char *code, const char *msg, const void *body, void *arg)
{
	struct audit_cts *c = arg;
	struct audit_op *op = c->op;
	const struct msg_image_audit_ok *ok = body;

	if (code != NULL) {
		c->state = AUDIT_UNCHECKED;
		audit_unchecked(op, c->name, "%s (%s)", msg, code);
	} else {
		c->state = AUDIT_ANSWERED;
		for (size_t i = 0; i < ok->bad.n; i++)
			proto_strlist_add(&c->bad, ok->bad.v[i]);
		for (size_t i = 0; i < ok->images.n; i++)
			proto_strlist_add(&c->images, ok->images.v[i]);
		for (size_t i = 0; i < ok->jobs.n; i++)
			proto_strlist_add(&c->jobs, ok->jobs.v[i]);
		if (c->jobs.n > 0)
			qsort(c->jobs.v, c->jobs.n, sizeof *c->jobs.v, audit_str_cmp);
		op->ok.images += ok->held;
		if (ok->cut)
			audit_unchecked(op, c->name, "it holds more images than one answer lists: "
			    "audit one GID at a time");
	}
	if (--op->waiting == 0)
		audit_join(op);
}

/* image_audit to c at endpoint, with the records that place a copy there. */
static void
audit_ask(struct audit_op *op, struct audit_cts *c, const char *endpoint)
{
	struct gcs *g = op->g;
	struct gcs_cts *live = registry_find(g, c->name);
	struct msg_image_audit b = { .gid = op->gid };
	size_t bytes = 0;
	char err[256], *line;

	for (size_t i = 0; i < op->nrecs; i++) {
		const struct audit_rec *a = &op->recs[i];

		if (a->expired || a->sha256 == NULL || a->taker == NULL || !audit_rec_at(a, c->name))
			continue;
		xasprintf(&line, "%s\t%s\t%s\t%s", a->id, a->sha256, a->taker, a->gid);
		bytes += strlen(line) + 8;
		proto_strlist_add(&b.records, line);
		free(line);
	}
	if (b.records.n > AUDIT_ITEMS || bytes > AUDIT_BYTES) {
		c->state = AUDIT_UNCHECKED;
		audit_unchecked(op, c->name, "it holds %zu recorded images, more than one audit "
		    "checks at once: audit one GID at a time", b.records.n);
		proto_strlist_free(&b.records);
		return;
	}
	if (live == NULL)	/* known from the directory only: not marked up, no heartbeat expected */
		live = registry_touch(g, c->name, endpoint);
	if (pool_client(g, live, err, sizeof err) != 0) {
		c->state = AUDIT_UNCHECKED;
		audit_unchecked(op, c->name, "%s", err);
		proto_strlist_free(&b.records);
		return;
	}
	op->ok.cts++;
	op->waiting++;
	proto_client_request(live->client, "image_audit", proto_type_find("image_audit"), &b,
	    audit_on_reply, c);
	proto_strlist_free(&b.records);
}

static void
audit_on_cts(const struct dir_result *res, void *arg)
{
	struct audit_op *op = arg;
	struct gcs *g = op->g;

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		proto_reply_err(op->r, gcs_dir_code(res->status), "the directory: %s", res->msg);
		audit_op_free(op);
		return;
	}
	op->cts = xcalloc(res->nentries + 1, sizeof *op->cts);
	for (size_t i = 0; i < res->nentries; i++) {
		const char *name = dir_entry_get(&res->entries[i], "cn");

		if (name == NULL)
			continue;
		op->cts[op->ncts].name = xstrdup(name);
		op->cts[op->ncts++].op = op;
	}
	op->waiting = 1;	/* this function's, dropped once every CTS was asked */
	for (size_t i = 0; i < op->ncts; i++) {
		struct audit_cts *c = &op->cts[i];
		const struct dir_entry *e = NULL;
		struct gcs_cts *live = registry_find(g, c->name);
		const char *ep, *st;

		for (size_t k = 0; k < res->nentries && e == NULL; k++) {
			const char *n = dir_entry_get(&res->entries[k], "cn");
			if (n != NULL && strcmp(n, c->name) == 0)
				e = &res->entries[k];
		}
		ep = e != NULL ? dir_entry_get(e, "gcaEndpoint") : NULL;
		st = e != NULL ? dir_entry_get(e, "gcaStatus") : NULL;
		if (st != NULL && strcmp(st, "retired") == 0) {
			c->state = AUDIT_RETIRED;
		} else if (live != NULL && live->up && live->endpoint != NULL) {
			audit_ask(op, c, live->endpoint);
		} else if (st != NULL && strcmp(st, "down") == 0) {
			c->state = AUDIT_UNCHECKED;
			audit_unchecked(op, c->name, "down (gcaStatus in the directory): not asked");
		} else if (ep == NULL) {
			c->state = AUDIT_UNCHECKED;
			audit_unchecked(op, c->name, "no endpoint in the directory: not asked");
		} else {
			audit_ask(op, c, ep);
		}
	}
	if (--op->waiting == 0)
		audit_join(op);
}

static void
audit_take_entry(struct audit_op *op, const struct dir_entry *e)
{
	const struct dir_attr *oc = dir_entry_attr(e, "objectClass"), *loc;
	const char *v;
	bool record = false;

	for (size_t k = 0; oc != NULL && k < oc->nvals; k++)
		record |= strcasecmp(oc->vals[k], "gcaCheckpoint") == 0;
	if (dir_entry_get(e, "gcaGID") == NULL)
		return;
	if (!record) {
		struct audit_job *j = &op->jobs[op->njobs++];

		j->gid = audit_dup(e, "gcaGID");
		j->cts = audit_dup(e, "gcaCTSName");
		j->local_id = audit_dup(e, "gcaLocalId");
		v = dir_entry_get(e, "gcaJobState");
		j->finished = v != NULL && strcmp(v, "finished") == 0;
		if ((v = dir_entry_get(e, "gcaLastSequence")) != NULL) {
			j->last = strtoull(v, NULL, 10);
			j->has_last = true;
		}
		return;
	}
	struct audit_rec *a = &op->recs[op->nrecs];

	if ((a->id = audit_dup(e, "gcaCheckpointId")) == NULL)
		return;
	op->nrecs++;
	a->gid = audit_dup(e, "gcaGID");
	a->taker = audit_dup(e, "gcaCTSName");
	v = dir_entry_get(e, "gcaImageSha256");
	if (v != NULL && strlen(v) == 64 && strspn(v, "0123456789abcdef") == 64)
		a->sha256 = xstrdup(v);
	if ((v = dir_entry_get(e, "gcaSequenceNumber")) != NULL) {
		a->seq = strtoull(v, NULL, 10);
		a->has_seq = true;
	}
	v = dir_entry_get(e, "gcaStatus");
	a->expired = v != NULL && strncasecmp(v, "expired", 7) == 0;
	if ((loc = dir_entry_attr(e, "gcaLocation")) != NULL) {
		a->locs = xcalloc(loc->nvals + 1, sizeof *a->locs);
		for (size_t k = 0; k < loc->nvals; k++)
			a->locs[a->nlocs++] = xstrdup(loc->vals[k]);
	}
}

static void
audit_on_jobs(const struct dir_result *res, void *arg)
{
	struct audit_op *op = arg;
	char base[512];

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		proto_reply_err(op->r, gcs_dir_code(res->status), "the directory: %s", res->msg);
		audit_op_free(op);
		return;
	}
	op->recs = xcalloc(res->nentries + 1, sizeof *op->recs);
	op->jobs = xcalloc(res->nentries + 1, sizeof *op->jobs);
	for (size_t i = 0; i < res->nentries; i++)
		audit_take_entry(op, &res->entries[i]);
	qsort(op->recs, op->nrecs, sizeof *op->recs, audit_rec_cmp);
	snprintf(base, sizeof base, "ou=cts,%s", dir_base(op->g->dir));
	dir_search(op->g->dir, base, 1, "(objectClass=gcaTranslationService)", 0, audit_on_cts, op);
}

void
audit_handle(struct proto_req *r, void *ctx)
{
	struct msg_audit *b = r->body;
	struct audit_op *op;
	char filter[1024], esc[800], base[512];
	static const char both[] = "(|(objectClass=gcaJob)(objectClass=gcaCheckpoint))";

	if (b->gid != NULL && (!name_valid(b->gid) ||
	    dir_filter_escape(b->gid, esc, sizeof esc) != 0)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "gid: %s", name_valid(b->gid) ? "too long" :
		    name_why(b->gid));
		return;
	}
	op = xcalloc(1, sizeof *op);
	op->g = ctx;
	op->r = r;
	if (b->gid != NULL) {
		op->gid = xstrdup(b->gid);
		snprintf(filter, sizeof filter, "(&(gcaGID=%s)%s)", esc, both);
	} else {
		snprintf(filter, sizeof filter, "%s", both);
	}
	snprintf(base, sizeof base, "ou=jobs,%s", dir_base(op->g->dir));
	dir_search(op->g->dir, base, 2, filter, 0, audit_on_jobs, op);
}
