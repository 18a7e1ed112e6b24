/*
 * The outbox (docs/DESIGN.md, "One record path"): a record is written to STATE/outbox/<checkpoint id>
 * (whole-file, fsynced) before it is sent, and removed only when the GCS acknowledged that the
 * directory stored it. After a crash or a lost GCS, what is left is sent again; the GCS is
 * idempotent by checkpoint id, so the directory holds each record once.
 *
 * A second kind of entry, STATE/outbox/<checkpoint id>.gone, is a copy this CTS's retention
 * removed (image_location with removed, and expired when this CTS took the checkpoint): the image
 * is gone already, so the directory must hear it even if the GCS is away right then, or the record
 * would keep a location that holds nothing and never be marked expired. Sent again the same way;
 * the GCS answers a removal already made with ok.
 *
 * Group commit: what the loop adds in one turn (records of checkpoints whose children ended
 * together, removals of one retention run) is written on the next turn, each file whole (temp,
 * fsync, rename) and then one fsync of outbox/ for all of them; only then is any of them sent.
 * A record is durable once its data and its folder entry are on disk, so none is sent before
 * both are. Removing an acknowledged one needs no fsync of its own (see outbox_drop).
 *
 * A queue that knows nothing of its callers: a record comes with a completion callback and its
 * argument (outbox_add), as a libevent event does, and the outbox calls it with the record's
 * outcome (stored, not stored, refused, not kept, stopping). Only the caller knows what a record
 * means to it (checkpoint.c: a checkpoint's answer, its image, its job). After a restart the
 * records read back from disk have no caller and no argument: they report to the queue's own
 * callback, the one outbox_load was given (checkpoint.c's ckpt_recorded, set by cts.c once at
 * start), with arg NULL. A record's argument serves its first outcome only: a record that stays
 * (not stored) reports every later outcome there too, as its caller was told already (and may
 * be freed). At a stop everything reports there as well: the callers are freed first.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cts/cts.h"

static void outbox_schedule(struct cts *c);

/* STATE/outbox/<f->name>; -1 if it does not fit. */
static int
outbox_file_path(struct cts *c, const struct outbox_file *f, char *out, size_t len)
{
	return snprintf(out, len, "%s/outbox/%s", c->state, f->name) >= (int)len ? -1 : 0;
}

/* f holds frame (taken) to be written as STATE/outbox/<f->name> by the next commit. */
static void
outbox_file_pending(struct cts *c, struct outbox_file *f, uint8_t *frame, size_t len)
{
	f->frame = frame;
	f->len = len;
	f->durable = false;
	outbox_schedule(c);
}

/* f was read from STATE/outbox/<name>: on disk already. The caller checked name (an id, or an
 * id and ".gone"), so it fits. */
static void
outbox_file_loaded(struct outbox_file *f, const char *name)
{
	size_t n = strnlen(name, sizeof f->name - 1);

	memcpy(f->name, name, n);
	f->name[n] = '\0';
	f->durable = true;
}

/* The commit's first half for f: written whole, its folder entry not yet fsynced. */
static void
outbox_file_write(struct cts *c, struct outbox_file *f)
{
	char path[PATH_MAX];

	f->error = 0;
	if (outbox_file_path(c, f, path, sizeof path) != 0)
		errno = ENAMETOOLONG;
	else if (file_write_whole_batch(path, f->frame, f->len, 0600) == 0)
		f->durable = true;
	if (!f->durable) {
		f->error = errno;
		log_error("outbox: cannot write %s/outbox/%s: %s", c->state, f->name, strerror(errno));
	}
}

/* Its second half, once outbox/ is fsynced (synced) or not: durable, or its file removed. */
static bool
outbox_file_settle(struct cts *c, struct outbox_file *f, bool synced)
{
	char path[PATH_MAX];

	free(f->frame);
	f->frame = NULL;
	if (f->durable && synced)
		return true;
	f->durable = false;
	if (outbox_file_path(c, f, path, sizeof path) == 0)
		unlink(path);
	return false;
}

/* "<id>.gone": a removal to tell the GCS; copies the id into id. */
static bool
outbox_is_gone(const char *name, char id[ID_LEN + 1])
{
	size_t n = strlen(name);

	if (n != ID_LEN + 5 || strcmp(name + ID_LEN, ".gone") != 0)
		return false;
	memcpy(id, name, ID_LEN);
	id[ID_LEN] = '\0';
	return id_valid(id);
}

/* The body of a frame as written in the outbox (a struct msg_*, to free), if it is a `type`
 * message; NULL with err otherwise. */
static void *
outbox_decode(const uint8_t *frame, size_t len, const char *type, char *err, size_t errlen)
{
	struct proto_msg m = { 0 };
	const char *code;

	if (len < PROTO_HEADER || proto_decode(frame + PROTO_HEADER, len - PROTO_HEADER, NULL, &m,
	    &code, err, errlen) != 0)
		return NULL;
	if (strcmp(m.type, type) != 0) {
		snprintf(err, errlen, "not a %s frame", type);
		proto_msg_free(&m);
		return NULL;
	}
	return m.body;
}

/* A record from its frame (as written in the outbox), or NULL. */
static struct outbox_item *
outbox_item_from_frame(const uint8_t *frame, size_t len, char *err, size_t errlen)
{
	struct outbox_item *it;
	void *body;

	if ((body = outbox_decode(frame, len, "checkpoint_log", err, errlen)) == NULL)
		return NULL;
	it = xcalloc(1, sizeof *it);
	memcpy(&it->rec, body, sizeof it->rec);	/* takes the fields */
	free(body);
	return it;
}

static void
outbox_link(struct cts *c, struct outbox_item *it)
{
	struct outbox_item **p = &c->outbox;

	while (*p != NULL)
		p = &(*p)->next;
	*p = it;
}

static void
outbox_unlink(struct cts *c, struct outbox_item *it)
{
	for (struct outbox_item **p = &c->outbox; *p != NULL; p = &(*p)->next) {
		if (*p == it) {
			*p = it->next;
			return;
		}
	}
}

static void
outbox_item_free(struct outbox_item *it)
{
	proto_body_clear(proto_type_find("checkpoint_log"), &it->rec);
	free(it->file.frame);
	free(it);
}

/* ---- removals (image_location removed) ---- */

static void
outbox_gone_free(struct outbox_gone *g)
{
	proto_body_clear(proto_type_find("image_location"), &g->loc);
	free(g->file.frame);
	free(g);
}

static void
outbox_gone_unlink(struct cts *c, struct outbox_gone *g)
{
	for (struct outbox_gone **p = &c->outbox_gone; *p != NULL; p = &(*p)->next) {
		if (*p == g) {
			*p = g->next;
			return;
		}
	}
}

/* A removal from its frame (as written in the outbox), linked; NULL if it is not one. */
static struct outbox_gone *
outbox_gone_from_frame(struct cts *c, const uint8_t *frame, size_t len, char *err, size_t errlen)
{
	struct outbox_gone *g, **p;
	void *body;

	if ((body = outbox_decode(frame, len, "image_location", err, errlen)) == NULL)
		return NULL;
	g = xcalloc(1, sizeof *g);
	memcpy(&g->loc, body, sizeof g->loc);	/* takes the fields */
	free(body);
	g->cts = c;
	for (p = &c->outbox_gone; *p != NULL; p = &(*p)->next)
		;
	*p = g;
	return g;
}

static int
outbox_gone_load(struct cts *c, const char *dir, const char *name)
{
	char path[PATH_MAX + 300], why[256], *buf;
	struct outbox_gone *g;
	size_t len;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (file_read_all(path, &buf, &len, PROTO_MAX_FRAME + PROTO_HEADER) != 0)
		return -1;
	if ((g = outbox_gone_from_frame(c, (uint8_t *)buf, len, why, sizeof why)) == NULL)
		log_error("outbox %s: %s; left in place", path, why);
	else
		outbox_file_loaded(&g->file, name);
	free(buf);
	return g != NULL ? 0 : -1;
}

static void
outbox_gone_on_ack(const char *code, const char *msg, const void *body, void *arg)
{
	struct outbox_gone *g = arg;
	struct cts *c = g->cts;
	char path[PATH_MAX];

	(void)body;
	g->sending = false;
	/* not_found: no such record (any more); forbidden, bad_field: never will be. Done, too. */
	if (code != NULL && strcmp(code, PROTO_E_NOT_FOUND) != 0 &&
	    strcmp(code, PROTO_E_FORBIDDEN) != 0 && strcmp(code, PROTO_E_BAD_FIELD) != 0) {
		log_warn("checkpoint %s of %s: the GCS has not heard that the copy here is gone: %s: "
		    "%s (kept in the outbox)", g->loc.checkpoint_id, g->loc.gid, code, msg);
		return;
	}
	if (code != NULL)
		log_warn("checkpoint %s of %s: the removal of the copy here: %s: %s (dropped)",
		    g->loc.checkpoint_id, g->loc.gid, code, msg);
	else
		log_info("checkpoint %s of %s: the directory no longer lists the copy here%s",
		    g->loc.checkpoint_id, g->loc.gid, g->loc.expired ? "; its record is expired" : "");
	/* no fsync: see outbox_drop */
	if (outbox_file_path(c, &g->file, path, sizeof path) == 0)
		unlink(path);
	outbox_gone_unlink(c, g);
	outbox_gone_free(g);
}

static void
outbox_gone_send(struct cts *c, struct outbox_gone *g)
{
	if (!g->file.durable)
		return;		/* outbox_commit sends it */
	g->sending = true;
	gcslink_request(c, "image_location", &g->loc, outbox_gone_on_ack, g);
}

/* outbox_gone, or with on_disk its entry written already (outbox_gone_ahead): then it is only
 * linked and sent, never written again, since a failed write (a full disk) would remove the file
 * the child made durable and the removal would be lost. */
static int
outbox_gone_add(struct cts *c, const char *gid, const char *id, bool expired, bool on_disk)
{
	struct msg_image_location q = { id, gid, c->name, true, expired };
	char why[256];
	struct outbox_gone *g;
	uint8_t *frame;
	size_t len;

	for (g = c->outbox_gone; g != NULL; g = g->next) {
		if (strcmp(g->loc.checkpoint_id, id) == 0) {
			/* one removal of this copy is enough (retention removes a copy once; a
			 * second only after a fetch made it again, and then the flags agree) */
			return 0;
		}
	}
	if (proto_encode("image_location", 0, proto_type_find("image_location"), &q, &frame,
	    &len) != 0)
		return -1;
	if ((g = outbox_gone_from_frame(c, frame, len, why, sizeof why)) == NULL) {
		free(frame);
		return -1;
	}
	snprintf(g->file.name, sizeof g->file.name, "%s.gone", id);
	if (!on_disk) {
		outbox_file_pending(c, &g->file, frame, len);
		return 0;
	}
	free(frame);
	g->file.durable = true;
	outbox_gone_send(c, g);
	return 0;
}

int
outbox_gone(struct cts *c, const char *gid, const char *id, bool expired)
{
	return outbox_gone_add(c, gid, id, expired, false);
}

int
outbox_gone_written(struct cts *c, const char *gid, const char *id, bool expired)
{
	return outbox_gone_add(c, gid, id, expired, true);
}

int
outbox_gone_ahead(struct cts *c, const char *gid, const char *id, bool expired)
{
	struct msg_image_location q = { id, gid, c->name, true, expired };
	char path[PATH_MAX];
	uint8_t *frame;
	size_t len;
	int rc;

	if (snprintf(path, sizeof path, "%s/outbox/%s.gone", c->state, id) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (proto_encode("image_location", 0, proto_type_find("image_location"), &q, &frame,
	    &len) != 0) {
		errno = EINVAL;
		return -1;
	}
	rc = file_write_whole(path, frame, len, 0600);
	free(frame);
	return rc;
}

int
outbox_load(struct cts *c, outbox_cb done, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *d;
	DIR *dp;
	unsigned n = 0;

	c->outbox_done = done;
	snprintf(dir, sizeof dir, "%s/outbox", c->state);
	if ((dp = opendir(dir)) == NULL) {
		snprintf(err, errlen, "outbox %s: cannot open it: %s", dir, strerror(errno));
		return -1;
	}
	while ((d = readdir(dp)) != NULL) {
		struct outbox_item *it;
		char *buf, why[256], id[ID_LEN + 1];
		size_t len;

		if (outbox_is_gone(d->d_name, id)) {
			n += outbox_gone_load(c, dir, d->d_name) == 0;
			continue;
		}
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		if (strstr(d->d_name, ".tmp.") != NULL) {
			/* a write a crash interrupted before its rename: never sent, never durable */
			if (unlink(path) == 0)
				log_info("outbox: removed %s, left by an interrupted write", path);
			continue;
		}
		if (!id_valid(d->d_name))
			continue;
		if (file_read_all(path, &buf, &len, PROTO_MAX_FRAME + PROTO_HEADER) != 0)
			continue;
		it = outbox_item_from_frame((uint8_t *)buf, len, why, sizeof why);
		free(buf);
		if (it == NULL) {
			log_error("outbox %s: %s; left in place", path, why);
			continue;
		}
		outbox_file_loaded(&it->file, d->d_name);
		it->cb = c->outbox_done;	/* no caller after a restart */
		it->cts = c;
		outbox_link(c, it);
		n++;
	}
	closedir(dp);
	if (n > 0)
		log_info("outbox: %u record(s) or removal(s) from before the restart, to send again", n);
	return 0;
}

struct outbox_item *
outbox_add(struct cts *c, const struct msg_checkpoint_log *rec, outbox_cb cb, void *arg)
{
	struct outbox_item *it;
	char why[256];
	uint8_t *frame;
	size_t len;

	if (proto_encode("checkpoint_log", 0, proto_type_find("checkpoint_log"), rec, &frame,
	    &len) != 0)
		return NULL;
	/* Decoding what is written makes the item's own copy of every field. */
	if ((it = outbox_item_from_frame(frame, len, why, sizeof why)) == NULL) {
		log_error("outbox: record %s: %s", rec->checkpoint_id, why);
		free(frame);
		return NULL;
	}
	snprintf(it->file.name, sizeof it->file.name, "%s", rec->checkpoint_id);
	it->cb = cb;
	it->arg = arg;
	it->cts = c;
	outbox_link(c, it);
	outbox_file_pending(c, &it->file, frame, len);
	return it;
}

/*
 * The outbox file of it, removed (the GCS stored or refused its record for good). Not fsynced:
 * if a crash undoes the removal, the record is sent again after the restart and the GCS, which
 * stores a record once by its checkpoint id, answers it as stored; the next commit's fsync of
 * outbox/ makes the removal durable anyway.
 */
static void
outbox_drop(struct cts *c, struct outbox_item *it)
{
	char path[PATH_MAX];

	if (outbox_file_path(c, &it->file, path, sizeof path) == 0)
		unlink(path);
	outbox_unlink(c, it);
}

/*
 * Tells its caller (or the queue's callback, see the top) how it ended. Its argument serves one
 * outcome: a record that stays reports the next ones to the queue's callback.
 */
static void
outbox_report(struct cts *c, struct outbox_item *it, const struct outbox_result *r)
{
	outbox_cb cb = it->cb;
	void *arg = it->arg;

	it->cb = c->outbox_done;
	it->arg = NULL;
	if (cb != NULL)
		cb(c, &it->rec, r, arg);
}

static void
outbox_on_ack(const char *code, const char *msg, const void *body, void *arg)
{
	struct outbox_item *it = arg;
	struct cts *c = it->cts;
	struct outbox_result r = { OUTBOX_STORED, 0, code, msg, 0 };

	it->sending = false;
	if (code != NULL && strcmp(code, PROTO_E_MOVED) == 0) {
		/* refused for good: the GID is bound to another CTS now (a recovery elsewhere while
		 * this CTS was away). Only that code: a "forbidden" (a directory that refuses the
		 * GCS's identity, say) keeps the record. */
		r.outcome = OUTBOX_REFUSED;
		outbox_drop(c, it);
		outbox_report(c, it, &r);
		outbox_item_free(it);
		return;
	}
	if (code != NULL) {
		log_warn("record %s of %s not acknowledged: %s: %s (kept in the outbox)",
		    it->rec.checkpoint_id, it->rec.gid, code, msg);
		r.outcome = OUTBOX_NOT_STORED;
		outbox_report(c, it, &r);
		return;
	}
	r.seq = body ? ((const struct msg_seq_ok *)body)->seq : 0;
	log_info("record %s of %s stored: seq %llu", it->rec.checkpoint_id, it->rec.gid,
	    (unsigned long long)r.seq);
	outbox_drop(c, it);
	outbox_report(c, it, &r);
	outbox_item_free(it);
}

void
outbox_send(struct cts *c, struct outbox_item *it)
{
	if (!it->file.durable || it->sending)
		return;		/* outbox_commit sends it; or its answer is awaited */
	it->sending = true;
	it->cts = c;
	gcslink_request(c, "checkpoint_log", &it->rec, outbox_on_ack, it);
}

void
outbox_flush(struct cts *c)
{
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (!it->sending && it->file.durable)
			outbox_send(c, it);
	}
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next) {
		if (!g->sending && g->file.durable)
			outbox_gone_send(c, g);
	}
}

struct outbox_item *
outbox_find_idem(struct cts *c, const char *gid, const char *idem_key)
{
	size_t klen = strlen(idem_key);

	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (it->rec.gid == NULL || strcmp(it->rec.gid, gid) != 0)
			continue;
		for (size_t i = 0; i < it->rec.properties.n; i++) {
			const char *p = it->rec.properties.v[i];
			if (strncmp(p, "idem=", 5) == 0 && strlen(p + 5) == klen &&
			    memcmp(p + 5, idem_key, klen) == 0)
				return it;
		}
	}
	return NULL;
}

/* ---- group commit ---- */

static void
outbox_grow(void *pv, size_t n, size_t size)
{
	void **p = pv;

	*p = xreallocarray(*p, n + 1, size);
}

/*
 * Writes what was added since the last commit (entries with a frame): each file whole without
 * its folder's fsync, then one fsync of outbox/ for all. Those written are then durable and sent
 * (not when stopping: after the restart); one that could not be written is taken out, its file
 * too, and its checkpoint fails. Callbacks come last, as they may add or remove entries.
 */
static void
outbox_commit(struct cts *c, bool stopping)
{
	char dir[PATH_MAX];
	struct outbox_item **its = NULL;
	struct outbox_gone **gs = NULL;
	size_t ni = 0, ng = 0;
	bool synced;

	snprintf(dir, sizeof dir, "%s/outbox", c->state);
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (it->file.frame != NULL) {
			outbox_grow(&its, ni, sizeof *its);
			its[ni++] = it;
			outbox_file_write(c, &it->file);
		}
	}
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next) {
		if (g->file.frame != NULL) {
			outbox_grow(&gs, ng, sizeof *gs);
			gs[ng++] = g;
			outbox_file_write(c, &g->file);
		}
	}
	if (ni + ng == 0)
		return;
	log_debug("outbox: %zu record(s) and %zu removal(s) written, one fsync of %s", ni, ng, dir);
	if (!(synced = file_fsync_dir(dir) == 0)) {
		int e = errno;

		log_error("outbox: fsync of %s: %s: its %zu new entries are not kept", dir,
		    strerror(e), ni + ng);
		for (size_t i = 0; i < ni; i++)
			its[i]->file.error = its[i]->file.error ? its[i]->file.error : e;
	}
	for (size_t i = 0; i < ni; i++)
		if (!outbox_file_settle(c, &its[i]->file, synced))
			outbox_unlink(c, its[i]);
	for (size_t i = 0; i < ng; i++)
		if (!outbox_file_settle(c, &gs[i]->file, synced))
			outbox_gone_unlink(c, gs[i]);
	for (size_t i = 0; i < ni; i++) {
		struct outbox_item *it = its[i];

		if (it->file.durable) {
			if (!stopping)
				outbox_send(c, it);
			continue;
		}
		/* at a stop its caller is answered and freed already: the queue's callback hears it */
		if (stopping) {
			it->cb = c->outbox_done;
			it->arg = NULL;
		}
		outbox_report(c, it, &(struct outbox_result){ .outcome = OUTBOX_NOT_KEPT,
		    .error = it->file.error });
		outbox_item_free(it);
	}
	for (size_t i = 0; i < ng; i++) {
		struct outbox_gone *g = gs[i];

		if (g->file.durable) {
			if (!stopping)
				outbox_gone_send(c, g);
			continue;
		}
		log_error("checkpoint %s of %s: cannot keep the removal of the copy here in the "
		    "outbox: the directory may still list it", g->loc.checkpoint_id, g->loc.gid);
		outbox_gone_free(g);
	}
	free(its);
	free(gs);
}

static void
outbox_on_commit(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	outbox_commit(arg, false);
}

/*
 * A commit on the loop's next turn: entries added while this turn's events run (children that
 * ended together, one retention run's removals), and those of the events ready by then, share
 * it. No wait beyond that: a record alone is not held back.
 */
static void
outbox_schedule(struct cts *c)
{
	static const struct timeval now = { 0, 0 };

	if (c->outbox_commit == NULL &&
	    (c->outbox_commit = evtimer_new(c->base, outbox_on_commit, c)) == NULL)
		log_fatal("outbox: cannot make the commit's timer");
	if (!evtimer_pending(c->outbox_commit, NULL))
		evtimer_add(c->outbox_commit, &now);
}

void
outbox_free(struct cts *c)
{
	/* what this turn added is written, to be sent after the restart (its callers were
	 * answered "the CTS is stopping" already) */
	outbox_commit(c, true);
	if (c->outbox_commit != NULL)
		event_free(c->outbox_commit);
	c->outbox_commit = NULL;
	while (c->outbox != NULL) {
		struct outbox_item *it = c->outbox;
		c->outbox = it->next;
		it->cb = c->outbox_done;	/* its caller is freed already */
		it->arg = NULL;
		outbox_report(c, it, &(struct outbox_result){ .outcome = OUTBOX_STOPPING,
		    .code = PROTO_E_UNAVAILABLE, .msg = "the CTS is stopping; its record stays in the "
		    "outbox and is sent after the restart" });
		outbox_item_free(it);
	}
	while (c->outbox_gone != NULL) {
		struct outbox_gone *g = c->outbox_gone;
		c->outbox_gone = g->next;
		outbox_gone_free(g);
	}
}
