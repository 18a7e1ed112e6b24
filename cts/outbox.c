/*
 * The outbox (docs/DESIGN.md, "One record path"): a record is appended to STATE/outbox/log and
 * fdatasynced before it is sent, and dropped only when the GCS acknowledged that the directory
 * stored it. After a crash or a lost GCS, what is left is sent again; the GCS is idempotent by
 * checkpoint id, so the directory holds each record once.
 *
 * A second kind of entry, "<checkpoint id>.gone", is a copy this CTS's retention removed
 * (image_location with removed, and expired when this CTS took the checkpoint): the image is gone
 * already, so the directory must hear it even if the GCS is away right then, or the record would
 * keep a location that holds nothing and never be marked expired. Sent again the same way; the
 * GCS answers a removal already made with ok.
 *
 * The log is text, one line per change, so that a person (or a test) can read it:
 *   + <name> <frame length> <FNV-1a 64 of the frame, hex> <the frame, base64>
 *   - <name>                          acknowledged (or refused for good): dropped
 * where name is "<checkpoint id>" or "<checkpoint id>.gone" and the frame is the checkpoint_log
 * (or image_location) frame itself. One file and one fdatasync per commit: a file per record
 * cost a new inode, a rename and two fsyncs (the file's and the folder's) each
 * (docs/BENCHMARKS.md, "The CTS's CPU per checkpoint"). The log's own folder entry is made
 * durable once, when the log is created (or replaced by a compaction: temp, fsync, rename, fsync
 * of outbox/).
 *
 * Group commit: what the loop adds in one turn (records of checkpoints whose copies ended
 * together, removals of one retention run) is appended on the next turn in one write, then one
 * fdatasync for all; only then is any of them sent. A "-" line is appended without a sync: if a
 * crash loses it, the entry is sent again after the restart and the GCS answers it as stored.
 * When the last entry is dropped the log is cut to nothing (not synced either, for the same
 * reason); past OUTBOX_COMPACT bytes a commit writes the entries held as a fresh log instead.
 * A write cut short (a full disk) is cut back off, so a torn line is never followed by a whole
 * one; a line that does not check out at start (a torn tail, a bad hash) is skipped, said in the
 * log, and the log written fresh. Entries of the older layout, a file per entry
 * (STATE/outbox/<name>), are read at start, written into the log and then removed.
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
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cts/cts.h"

#define OUTBOX_LOG	"log"
#define OUTBOX_COMPACT	(1024 * 1024)	/* bytes of log past which a commit writes it fresh */
#define OUTBOX_LOG_MAX	((size_t)1024 * 1024 * 1024)	/* a log longer than this is not read */

/* The log, open for appending (one CTS per process, as child.c's list). */
static int outbox_fd = -1;
static uint64_t outbox_end;	/* its length, as this process wrote it */
static bool outbox_torn;	/* a write cut short could not be cut back off: end its line first */

static void outbox_schedule(struct cts *c);

/* STATE/outbox/<name>: the log, or an entry's file in the older layout; -1 if it does not fit. */
static int
outbox_path(struct cts *c, const char *name, char *out, size_t len)
{
	return snprintf(out, len, "%s/outbox/%s", c->state, name) >= (int)len ? -1 : 0;
}

/* Detects a torn or damaged line, nothing more: the folder is the CTS's own. */
static uint64_t
outbox_fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A growing text, the lines of one write. */
struct outbox_buf {
	char	*p;
	size_t	 len, cap;
};

static void
outbox_buf_room(struct outbox_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	b->cap = (b->len + more) * 2;
	b->p = xreallocarray(b->p, b->cap, 1);
}

/* "+ <name> <len> <hash> <base64>\n" */
static void
outbox_buf_entry(struct outbox_buf *b, const char *name, const uint8_t *frame, size_t len)
{
	size_t b64 = 4 * ((len + 2) / 3);

	outbox_buf_room(b, strlen(name) + b64 + 48);
	b->len += (size_t)snprintf(b->p + b->len, b->cap - b->len, "+ %s %zu %016llx ", name, len,
	    (unsigned long long)outbox_fnv(frame, len));
	b->len += (size_t)EVP_EncodeBlock((unsigned char *)b->p + b->len, frame, (int)len);
	b->p[b->len++] = '\n';
}

/*
 * buf at the log's end. A write cut short is cut back off (a half line must not swallow the next
 * whole one); if even that fails, the next append ends the torn line first. Not synced.
 */
static int
outbox_append(const char *buf, size_t len)
{
	size_t done = 0;
	int e;

	if (outbox_fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (outbox_torn && write(outbox_fd, "\n", 1) == 1) {
		outbox_torn = false;
		outbox_end++;
	}
	while (done < len) {
		ssize_t n = write(outbox_fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : ENOSPC;
			if (done > 0 && ftruncate(outbox_fd, (off_t)outbox_end) != 0)
				outbox_torn = true;
			errno = e;
			return -1;
		}
		done += (size_t)n;
	}
	outbox_end += len;
	return 0;
}

/* The log is dir/log, opened for appending (after a compaction, or at start). */
static int
outbox_open(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (outbox_fd >= 0)
		close(outbox_fd);
	outbox_fd = fd;
	outbox_end = (uint64_t)st.st_size;
	outbox_torn = false;
	return 0;
}

/* f holds frame (taken), to be appended to the log by the next commit. */
static void
outbox_file_pending(struct cts *c, struct outbox_file *f, uint8_t *frame, size_t len)
{
	f->frame = frame;
	f->len = len;
	f->durable = false;
	outbox_schedule(c);
}

/* f was read back (from the log, or a file of the older layout): on disk already. The caller
 * checked name (an id, or an id and ".gone"), so it fits. */
static void
outbox_file_loaded(struct outbox_file *f, const char *name)
{
	size_t n = strnlen(name, sizeof f->name - 1);

	memcpy(f->name, name, n);
	f->name[n] = '\0';
	f->durable = true;
}

/* f's part of a commit: durable (synced) or not; its frame is freed either way. */
static bool
outbox_file_settle(struct outbox_file *f, bool synced, int error)
{
	free(f->frame);
	f->frame = NULL;
	f->durable = synced;
	if (!synced)
		f->error = error;
	return synced;
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

/*
 * name is out of the queue (its entry taken off the lists): a "-" line, not synced; if a crash
 * loses it, the entry is sent again after the restart and the GCS, which stores a record once
 * by its checkpoint id and answers a removal already made with ok, answers it as done. With
 * nothing left the log is cut to nothing instead, not synced for the same reason (the next
 * commit's fdatasync makes the new length durable with its lines).
 */
static void
outbox_log_drop(struct cts *c, const char *name)
{
	char line[sizeof ((struct outbox_file *)0)->name + 4];
	int n;

	if (outbox_fd < 0)
		return;
	if (c->outbox == NULL && c->outbox_gone == NULL) {
		if (ftruncate(outbox_fd, 0) == 0) {
			outbox_end = 0;
			outbox_torn = false;
			return;
		}
	}
	n = snprintf(line, sizeof line, "- %s\n", name);
	if (outbox_append(line, (size_t)n) != 0)
		log_warn("outbox: cannot note that %s is done: %s (it is sent again after a "
		    "restart)", name, strerror(errno));
}

static void
outbox_gone_on_ack(const char *code, const char *msg, const void *body, void *arg)
{
	struct outbox_gone *g = arg;
	struct cts *c = g->cts;

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
	outbox_gone_unlink(c, g);
	outbox_log_drop(c, g->file.name);
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

/* outbox_gone, or with on_disk its entry written already by retention's child (outbox_gone_ahead,
 * a file of the older layout): it joins the log like any other, and the child's file is removed
 * only once the log holds it. Should that commit fail (a full disk), the child's file still
 * holds it: it is sent anyway, and read back at the next start (outbox_commit). */
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
	g->ahead = on_disk;
	outbox_file_pending(c, &g->file, frame, len);
	return 0;
}

/* An entry named name is held already. */
static bool
outbox_holds_name(struct cts *c, const char *name)
{
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next)
		if (strcmp(it->file.name, name) == 0)
			return true;
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next)
		if (strcmp(g->file.name, name) == 0)
			return true;
	return false;
}

bool
outbox_holds(struct cts *c, const char *id)
{
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next)
		if (strcmp(it->file.name, id) == 0)
			return true;
	return false;
}

/* An entry read back (from the log, or a file of the older layout): a record or a removal, by its
 * name; one held already is left as it is. 0, or -1 with why. */
static int
outbox_entry_load(struct cts *c, const char *name, const uint8_t *frame, size_t len, char *why,
    size_t whylen)
{
	struct outbox_item *it;
	struct outbox_gone *g;
	char id[ID_LEN + 1];

	if (outbox_holds_name(c, name))
		return 0;
	if (outbox_is_gone(name, id)) {
		if ((g = outbox_gone_from_frame(c, frame, len, why, whylen)) == NULL)
			return -1;
		outbox_file_loaded(&g->file, name);
		return 0;
	}
	if (!id_valid(name)) {
		snprintf(why, whylen, "\"%.80s\" is not an entry's name", name);
		return -1;
	}
	if ((it = outbox_item_from_frame(frame, len, why, whylen)) == NULL)
		return -1;
	outbox_file_loaded(&it->file, name);
	it->cb = c->outbox_done;	/* no caller after a restart */
	it->cts = c;
	outbox_link(c, it);
	return 0;
}

/* A "-" line read back: the entry named name is dropped. */
static void
outbox_entry_forget(struct cts *c, const char *name)
{
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (strcmp(it->file.name, name) == 0) {
			outbox_unlink(c, it);
			outbox_item_free(it);
			return;
		}
	}
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next) {
		if (strcmp(g->file.name, name) == 0) {
			outbox_gone_unlink(c, g);
			outbox_gone_free(g);
			return;
		}
	}
}

/* One line of the log (its newline taken off). 0, or -1 with why. */
static int
outbox_log_line(struct cts *c, char *line, char *why, size_t whylen)
{
	char *name = line + 2, *lenp, *hash, *b64, *end;
	unsigned long long len, h;
	uint8_t *frame;
	size_t b64len;
	int n, rc;

	if (line[0] == '-' && line[1] == ' ') {
		outbox_entry_forget(c, name);
		return 0;
	}
	if (line[0] != '+' || line[1] != ' ' || (lenp = strchr(name, ' ')) == NULL ||
	    (hash = strchr(lenp + 1, ' ')) == NULL || (b64 = strchr(hash + 1, ' ')) == NULL) {
		snprintf(why, whylen, "not a \"+ name length hash frame\" or \"- name\" line");
		return -1;
	}
	*lenp++ = '\0';
	*hash++ = '\0';
	*b64++ = '\0';
	errno = 0;
	len = strtoull(lenp, &end, 10);
	if (*end != '\0' || errno != 0 || len == 0 || len > PROTO_MAX_FRAME + PROTO_HEADER) {
		snprintf(why, whylen, "entry %.80s: bad length", name);
		return -1;
	}
	h = strtoull(hash, &end, 16);
	b64len = strlen(b64);
	if (*end != '\0' || strlen(hash) != 16 || b64len != 4 * ((len + 2) / 3)) {
		snprintf(why, whylen, "entry %.80s: cut short or damaged", name);
		return -1;
	}
	frame = xmalloc(b64len / 4 * 3 + 1);
	n = EVP_DecodeBlock(frame, (const unsigned char *)b64, (int)b64len);
	if (n < 0 || (size_t)n < len || outbox_fnv(frame, (size_t)len) != h) {
		snprintf(why, whylen, "entry %.80s: does not match its hash", name);
		rc = -1;
	} else {
		rc = outbox_entry_load(c, name, frame, (size_t)len, why, whylen);
	}
	free(frame);
	return rc;
}

/* The log at path into the lists; *fresh when it must be written anew (it has "-" lines or lines
 * that do not check out). 0 (a missing log too: *exists false), or -1 (errno). */
static int
outbox_log_read(struct cts *c, const char *path, bool *fresh, bool *exists)
{
	char *buf, *line, why[256];
	size_t len;

	*exists = false;
	if (file_read_all(path, &buf, &len, OUTBOX_LOG_MAX) != 0)
		return errno == ENOENT ? 0 : -1;
	*exists = true;
	for (line = buf; line < buf + len; ) {
		char *nl = memchr(line, '\n', (size_t)(buf + len - line));

		if (nl == NULL) {
			/* a write a crash cut short: never synced, so never sent */
			log_warn("outbox %s: its last line is cut short (a write a crash interrupted): "
			    "skipped", path);
			*fresh = true;
			break;
		}
		*nl = '\0';
		if (line[0] == '-')
			*fresh = true;
		if (line[0] != '\0' && outbox_log_line(c, line, why, sizeof why) != 0) {
			log_error("outbox %s: a line skipped: %s", path, why);
			*fresh = true;
		}
		line = nl + 1;
	}
	free(buf);
	return 0;
}

/* The entry f (of a body of type) as a line of b: its frame if it is new, else encoded again. */
static int
outbox_buf_held(struct outbox_buf *b, const struct outbox_file *f, const char *type,
    const void *body)
{
	uint8_t *frame;
	size_t len;

	if (f->frame != NULL) {
		outbox_buf_entry(b, f->name, f->frame, f->len);
		return 0;
	}
	if (proto_encode(type, 0, proto_type_find(type), body, &frame, &len) != 0) {
		errno = ENOMEM;
		return -1;
	}
	outbox_buf_entry(b, f->name, frame, len);
	free(frame);
	return 0;
}

/*
 * Every entry held, written as a fresh log (temp, fsync, rename, fsync of outbox/:
 * file_write_whole), which appends then go to. 0, or -1 with errno (the old log stays).
 */
static int
outbox_rewrite(struct cts *c)
{
	struct outbox_buf b = { 0 };
	char path[PATH_MAX];
	int rc = 0;

	for (struct outbox_item *it = c->outbox; rc == 0 && it != NULL; it = it->next)
		rc = outbox_buf_held(&b, &it->file, "checkpoint_log", &it->rec);
	for (struct outbox_gone *g = c->outbox_gone; rc == 0 && g != NULL; g = g->next)
		rc = outbox_buf_held(&b, &g->file, "image_location", &g->loc);
	if (rc == 0 && outbox_path(c, OUTBOX_LOG, path, sizeof path) != 0) {
		errno = ENAMETOOLONG;
		rc = -1;
	}
	if (rc == 0)
		rc = file_write_whole(path, b.p != NULL ? b.p : "", b.len, 0600);
	if (rc == 0)
		rc = outbox_open(path);
	free(b.p);
	return rc;
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
	struct proto_strlist older = { 0 };
	bool fresh = false, exists;
	struct dirent *d;
	unsigned n = 0;
	DIR *dp;

	c->outbox_done = done;
	snprintf(dir, sizeof dir, "%s/outbox", c->state);
	if ((dp = opendir(dir)) == NULL) {
		snprintf(err, errlen, "outbox %s: cannot open it: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/%s", dir, OUTBOX_LOG);
	if (outbox_log_read(c, path, &fresh, &exists) != 0) {
		snprintf(err, errlen, "outbox %s: cannot read it: %s", path, strerror(errno));
		closedir(dp);
		return -1;
	}
	/* entries of the older layout, a file each: into the log, then removed */
	while ((d = readdir(dp)) != NULL) {
		char *buf, why[256], id[ID_LEN + 1];
		size_t len;

		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		if (strstr(d->d_name, ".tmp.") != NULL) {
			/* a write a crash interrupted before its rename: never sent, never durable */
			if (unlink(path) == 0)
				log_info("outbox: removed %s, left by an interrupted write", path);
			continue;
		}
		if (!id_valid(d->d_name) && !outbox_is_gone(d->d_name, id))
			continue;
		if (file_read_all(path, &buf, &len, PROTO_MAX_FRAME + PROTO_HEADER) != 0)
			continue;
		if (outbox_entry_load(c, d->d_name, (uint8_t *)buf, len, why, sizeof why) != 0)
			log_error("outbox %s: %s; left in place", path, why);
		else
			proto_strlist_add(&older, d->d_name);
		free(buf);
	}
	closedir(dp);
	snprintf(path, sizeof path, "%s/%s", dir, OUTBOX_LOG);
	if (fresh || older.n > 0) {
		if (outbox_rewrite(c) != 0) {
			snprintf(err, errlen, "outbox %s: cannot write it: %s", path, strerror(errno));
			proto_strlist_free(&older);
			return -1;
		}
		for (size_t i = 0; i < older.n; i++) {
			snprintf(path, sizeof path, "%s/%s", dir, older.v[i]);
			unlink(path);	/* in the log now, durably */
		}
	} else if (outbox_open(path) != 0 || (!exists && file_fsync_dir(dir) != 0)) {
		/* a new log's folder entry is made durable before anything relies on it */
		snprintf(err, errlen, "outbox %s: cannot make it: %s", path, strerror(errno));
		return -1;
	}
	proto_strlist_free(&older);
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next)
		n++;
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next)
		n++;
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

/* it is done with (the GCS stored or refused its record for good): off the queue, and a "-"
 * line in the log (outbox_log_drop). */
static void
outbox_drop(struct cts *c, struct outbox_item *it)
{
	outbox_unlink(c, it);
	outbox_log_drop(c, it->file.name);
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
 * Appends what was added since the last commit (entries with a frame) in one write, then one
 * fdatasync; past OUTBOX_COMPACT bytes of log, every entry held is written as a fresh log
 * instead. Those written are then durable and sent (not when stopping: after the restart); if the
 * write or the sync fails, its lines are cut back off, the entries taken out and their
 * checkpoints fail. Callbacks come last, as they may add or remove entries.
 */
static void
outbox_commit(struct cts *c, bool stopping)
{
	struct outbox_item **its = NULL;
	struct outbox_gone **gs = NULL;
	struct outbox_buf b = { 0 };
	size_t ni = 0, ng = 0;
	bool synced;
	int e = 0;

	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (it->file.frame != NULL) {
			outbox_grow(&its, ni, sizeof *its);
			its[ni++] = it;
			outbox_buf_entry(&b, it->file.name, it->file.frame, it->file.len);
		}
	}
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next) {
		if (g->file.frame != NULL) {
			outbox_grow(&gs, ng, sizeof *gs);
			gs[ng++] = g;
			outbox_buf_entry(&b, g->file.name, g->file.frame, g->file.len);
		}
	}
	if (ni + ng == 0)
		return;
	if (outbox_end > OUTBOX_COMPACT) {
		log_debug("outbox: %zu record(s) and %zu removal(s), with the log written fresh "
		    "(%llu bytes long)", ni, ng, (unsigned long long)outbox_end);
		synced = outbox_rewrite(c) == 0;
	} else {
		uint64_t before = outbox_end;

		log_debug("outbox: %zu record(s) and %zu removal(s) appended, one fdatasync", ni, ng);
		synced = outbox_append(b.p, b.len) == 0 && fdatasync(outbox_fd) == 0;
		e = errno;
		if (!synced && outbox_end != before) {
			if (ftruncate(outbox_fd, (off_t)before) == 0)
				outbox_end = before;
			else
				log_error("outbox: cannot cut the lines not kept back off: %s (sent "
				    "after a restart if they survive it)", strerror(errno));
		}
	}
	if (!synced) {
		e = e != 0 ? e : errno;
		log_error("outbox: writing %s/outbox/%s: %s: its %zu new entries are not kept",
		    c->state, OUTBOX_LOG, strerror(e), ni + ng);
	}
	free(b.p);
	for (size_t i = 0; i < ni; i++)
		if (!outbox_file_settle(&its[i]->file, synced, e))
			outbox_unlink(c, its[i]);
	for (size_t i = 0; i < ng; i++)
		(void)outbox_file_settle(&gs[i]->file, synced, e);
	for (size_t i = 0; i < ng; i++) {
		struct outbox_gone *g = gs[i];
		char path[PATH_MAX];

		if (g->ahead && outbox_path(c, g->file.name, path, sizeof path) == 0) {
			if (synced)	/* the log holds it now: the child's file is not needed */
				(void)unlink(path);
			else {		/* the child's file keeps it durable (read at the next start) */
				g->file.durable = true;
				g->file.error = 0;
			}
		}
		g->ahead = false;
		if (!g->file.durable)
			outbox_gone_unlink(c, g);
	}
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
	if (outbox_fd >= 0)
		close(outbox_fd);
	outbox_fd = -1;
}
