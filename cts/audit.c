/*
 * cts/audit.c: image_audit, this CTS's part of `gca-ctl audit` (docs/PROTOCOL.md, "Auditing a
 * site"). The GCS lists the records that place a copy here (gcaLocation); a child checks each copy
 * as a restore would (the manifest has the record's sha256 and the taker's signature, every file
 * matches the manifest: transfer_manifest_check and verify_image) and lists the image folders that
 * no listed record names. A checkpoint being written, or whose record is still in the outbox, is
 * not listed: its record is on its way; nor is a copy retention removed while the GCS has not heard
 * it yet (an outbox .gone entry). The loop adds the GIDs of the job table and answers.
 * The GCS joins the answers of every CTS with the directory (gcs/audit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cts/cts.h"

/* What one answer may carry: under the peer's frame limit (1 MiB), whatever the names' lengths. */
#define AUDIT_REPLY_BYTES	(768 * 1024)
#define AUDIT_REPLY_ITEMS	4000
#define AUDIT_WHY_MAX		300

struct audit_rec {
	char	*line;			/* as the GCS sent it, split in place into: */
	char	*id, *sha256, *taker, *gid;
};

struct audit_op {
	struct cts		*cts;
	struct proto_req	*r;
	struct audit_rec	*recs;		/* sorted by id */
	size_t			 nrecs;
	char			**busy;		/* ids being written or recorded: sorted */
	size_t			 nbusy;
	char			*gid;		/* only this job's folder, or NULL: every one */
	int			 fd;		/* the child's lines: "B\tid\twhy", "I\tgid\tid", "H\tN" */
};

static void
audit_op_free(struct audit_op *op)
{
	for (size_t i = 0; i < op->nrecs; i++)
		free(op->recs[i].line);
	free(op->recs);
	for (size_t i = 0; i < op->nbusy; i++)
		free(op->busy[i]);
	free(op->busy);
	free(op->gid);
	if (op->fd >= 0)
		close(op->fd);
	free(op);
}

static int
audit_rec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct audit_rec *)a)->id, ((const struct audit_rec *)b)->id);
}

static int
audit_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "id\tsha256\ttaker\tgid", split in place into r; -1 if a field is missing or not valid. */
static int
audit_rec_parse(char *line, struct audit_rec *r)
{
	char *f[4], *p = line;

	r->line = line;
	for (int i = 0; i < 4; i++) {
		if ((f[i] = strsep(&p, "\t")) == NULL)
			return -1;
	}
	if (p != NULL || !id_valid(f[0]) || strlen(f[1]) != 64 || !name_valid(f[2]) ||
	    !name_valid(f[3]))
		return -1;
	r->id = f[0];
	r->sha256 = f[1];
	r->taker = f[2];
	r->gid = f[3];
	return 0;
}

static bool
audit_listed(const struct audit_op *op, const char *id)
{
	struct audit_rec key = { .id = (char *)(uintptr_t)id };
	const char *k = id;

	/* (never bsearch or qsort a NULL array, even of 0 items: UBSan stops the CTS) */
	return (op->nrecs > 0 &&
	    bsearch(&key, op->recs, op->nrecs, sizeof *op->recs, audit_rec_cmp) != NULL) ||
	    (op->nbusy > 0 &&
	    bsearch(&k, op->busy, op->nbusy, sizeof *op->busy, audit_str_cmp) != NULL);
}

/* In the child: one listed record's copy here, checked as a restore checks it. */
static void
audit_check(struct audit_op *op, const struct audit_rec *rec)
{
	struct cts *c = op->cts;
	char dir[PATH_MAX], err[PATH_MAX + 64];
	struct stat st;

	if (cts_image_dir(c, rec->gid, rec->id, dir, sizeof dir) != 0)
		snprintf(err, sizeof err, "missing: GID %s cannot name an image folder here", rec->gid);
	else if (lstat(dir, &st) != 0 && errno == ENOENT)
		snprintf(err, sizeof err, "missing: no image folder %s", dir);
	else if (transfer_manifest_check(dir, c->tls.ca, rec->id, rec->sha256, rec->taker,
	    c->tls_signed_before_ms, err, sizeof err) == 0 &&
	    verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err) == 0)
		return;
	for (char *p = err; *p != '\0'; p++) {
		if (*p == '\t' || *p == '\n')
			*p = ' ';
	}
	dprintf(op->fd, "B\t%s\t%.*s\n", rec->id, AUDIT_WHY_MAX, err);
}

/* In the child: the checkpoint folders of one job folder that no listed record names. */
static unsigned
audit_scan_job(struct audit_op *op, const char *jobdir, const char *gid)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	unsigned held = 0;
	DIR *d;

	if ((d = opendir(jobdir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!id_valid(de->d_name))
			continue;
		held++;
		if (audit_listed(op, de->d_name))
			continue;
		snprintf(path, sizeof path, "%s/outbox/%s", op->cts->state, de->d_name);
		if (access(path, F_OK) == 0)
			continue;	/* its record is on its way */
		dprintf(op->fd, "I\t%s\t%s\n", gid, de->d_name);
	}
	closedir(d);
	return held;
}

static int
audit_run(void *arg, char *out, size_t len)
{
	struct audit_op *op = arg;
	char images[PATH_MAX], jobdir[PATH_MAX + 300];
	struct dirent *de;
	unsigned held = 0;
	DIR *d;

	for (size_t i = 0; i < op->nrecs; i++)
		audit_check(op, &op->recs[i]);
	if (op->gid != NULL) {
		if (cts_job_dir(op->cts, op->gid, jobdir, sizeof jobdir) == 0)
			held = audit_scan_job(op, jobdir, op->gid);
	} else {
		snprintf(images, sizeof images, "%s/images", op->cts->state);
		if ((d = opendir(images)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				char *gid;

				if (de->d_name[0] == '.' || (gid = orphans_gid(de->d_name)) == NULL)
					continue;
				snprintf(jobdir, sizeof jobdir, "%s/%s", images, de->d_name);
				held += audit_scan_job(op, jobdir, gid);
				free(gid);
			}
			closedir(d);
		}
	}
	dprintf(op->fd, "H\t%u\n", held);
	snprintf(out, len, "ok");
	return 0;
}

/* l += s while the answer stays under its bounds; false (and *cut) once it would not. */
static void
audit_add(struct proto_strlist *l, const char *s, size_t *bytes, bool *cut)
{
	if (l->n >= AUDIT_REPLY_ITEMS || *bytes + strlen(s) + 8 > AUDIT_REPLY_BYTES) {
		*cut = true;
		return;
	}
	*bytes += strlen(s) + 8;
	proto_strlist_add(l, s);
}

/* Retention removed id here and the GCS has not heard it yet (STATE/outbox/<id>.gone): its record
 * still names this CTS, but its copy is gone on purpose. */
static bool
audit_removing(const struct cts *c, const char *line)
{
	const char *tab = strchr(line, '\t');
	size_t n = tab != NULL ? (size_t)(tab - line) : strlen(line);

	for (const struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next) {
		if (g->loc.checkpoint_id != NULL && strlen(g->loc.checkpoint_id) == n &&
		    strncmp(g->loc.checkpoint_id, line, n) == 0)
			return true;
	}
	return false;
}

static void
audit_done(bool ok, const char *out, void *arg)
{
	struct audit_op *op = arg;
	struct msg_image_audit_ok reply = { 0 };
	char *text = NULL, *line, *save = NULL;
	size_t bytes = 0;
	struct stat st;

	if (!ok) {
		proto_reply_err(op->r, PROTO_E_INTERNAL, "the audit's worker failed: %s", out);
		audit_op_free(op);
		return;
	}
	if (fstat(op->fd, &st) != 0 || (text = malloc((size_t)st.st_size + 1)) == NULL ||
	    pread(op->fd, text, (size_t)st.st_size, 0) != st.st_size) {
		proto_reply_err(op->r, PROTO_E_INTERNAL, "the audit's worker's answer cannot be read: "
		    "%s", strerror(errno));
		free(text);
		audit_op_free(op);
		return;
	}
	text[st.st_size] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'B' && line[1] == '\t') {
			if (!audit_removing(op->cts, line + 2))
				audit_add(&reply.bad, line + 2, &bytes, &reply.cut);
		}
		else if (line[0] == 'I' && line[1] == '\t')
			audit_add(&reply.images, line + 2, &bytes, &reply.cut);
		else if (line[0] == 'H' && line[1] == '\t')
			reply.held = strtoull(line + 2, NULL, 10);
	}
	free(text);
	/* A job whose GID moved away is no longer this CTS's (it is being fenced). */
	for (struct cts_job *j = op->cts->jobs; j != NULL; j = j->next) {
		if (!j->moved && (op->gid == NULL || strcmp(op->gid, j->gid) == 0))
			proto_strlist_add(&reply.jobs, j->gid);
	}
	log_info("audit: %zu record(s) checked, %zu copy(ies) failing, %zu image(s) unlisted, "
	    "%llu held", op->nrecs, reply.bad.n, reply.images.n, (unsigned long long)reply.held);
	proto_reply_ok(op->r, op->r->pt->reply, &reply);
	proto_strlist_free(&reply.bad);
	proto_strlist_free(&reply.images);
	proto_strlist_free(&reply.jobs);
	audit_op_free(op);
}

static void
audit_busy(struct audit_op *op, const char *id)
{
	op->busy = xreallocarray(op->busy, op->nbusy + 1, sizeof *op->busy);
	op->busy[op->nbusy++] = xstrdup(id);
}

void
audit_image(struct proto_req *r, void *ctx)
{
	struct msg_image_audit *b = r->body;
	struct cts *c = ctx;
	struct audit_op *op;

	if (b->gid != NULL && !name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "gid: %s", name_why(b->gid));
		return;
	}
	op = xcalloc(1, sizeof *op);
	op->cts = c;
	op->r = r;
	op->fd = -1;
	op->gid = b->gid != NULL ? xstrdup(b->gid) : NULL;
	op->recs = xcalloc(b->records.n + 1, sizeof *op->recs);
	for (size_t i = 0; i < b->records.n; i++) {
		char *line = xstrdup(b->records.v[i]);

		if (audit_rec_parse(line, &op->recs[op->nrecs]) != 0) {
			free(line);
			op->recs[op->nrecs].line = NULL;
			proto_reply_err(r, PROTO_E_BAD_FIELD, "records, line %zu: not \"checkpoint "
			    "id, sha256, CTS, GID\" separated by tabs", i + 1);
			audit_op_free(op);
			return;
		}
		op->nrecs++;
	}
	qsort(op->recs, op->nrecs, sizeof *op->recs, audit_rec_cmp);
	/* being written (their folders fill now) or on their way to the GCS */
	for (struct cts_job *j = c->jobs; j != NULL; j = j->next) {
		if (j->running != NULL)
			audit_busy(op, j->running->id);
		for (struct cts_ckpt *q = j->queue; q != NULL; q = q->next)
			audit_busy(op, q->id);
	}
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (it->rec.checkpoint_id != NULL)
			audit_busy(op, it->rec.checkpoint_id);
	}
	if (op->nbusy > 0)
		qsort(op->busy, op->nbusy, sizeof *op->busy, audit_str_cmp);
	if ((op->fd = memfd_create("gca-audit", MFD_CLOEXEC)) < 0 ||
	    child_run(c, audit_run, op, audit_done, op) != 0) {
		proto_reply_err(r, PROTO_E_INTERNAL, "cannot start the audit's worker: %s",
		    strerror(errno));
		audit_op_free(op);
	}
}
