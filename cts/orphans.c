/*
 * Image folders no record names. A checkpoint's image is written by a child; its record goes to
 * the outbox only once the loop hears the child. A CTS killed in between (or a copy child that
 * finished after its CTS was killed) leaves a folder in STATE/images with neither an outbox entry
 * nor a record: nothing will ever use it, and nothing would ever remove it.
 *
 * At start, before the loop runs (so before any new checkpoint), every image folder without an
 * outbox entry is a candidate. Once registered, the CTS asks the GCS for each candidate job's
 * records (query checkpoints, a page at a time); a candidate whose id is recorded is an image like
 * any other. The rest are removed in a child, off the loop: a sealed one (its manifest written)
 * at once, one still without a manifest only when nothing in it changed for ORPHAN_QUIET_MS (a
 * copy child of the previous run may still be writing it).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cts/cts.h"

#define ORPHAN_QUIET_MS	60000
#define ORPHAN_PAGE	500

struct orphan {
	char		*gid;
	char		 id[ID_LEN + 1];
	bool		 recorded;
	uint64_t	 next_ms;	/* not asked about again before (time_mono_ms) */
	struct orphan	*next;
};

struct cts_orphans {
	struct orphan	*list;
	bool		 asking, removing;
	char		*gid;		/* the job asked about, or NULL */
	char		*cursor;	/* its next page */
};

/* The gid whose folder is name (name_to_path undone), or NULL. */
char *
orphans_gid(const char *name)
{
	size_t n = strlen(name), o = 0;
	char *gid = xmalloc(n + 1);
	unsigned v;

	for (size_t i = 0; i < n; i++) {
		if (name[i] != '%')
			gid[o++] = name[i];
		else if (i + 2 < n && sscanf(name + i + 1, "%2X", &v) == 1) {
			gid[o++] = (char)v;
			i += 2;
		} else {
			free(gid);
			return NULL;
		}
	}
	gid[o] = '\0';
	if (!name_valid(gid)) {
		free(gid);
		return NULL;
	}
	return gid;
}

static void
orphans_add(struct cts_orphans *o, const char *gid, const char *id)
{
	struct orphan *op = xcalloc(1, sizeof *op);

	op->gid = xstrdup(gid);
	memcpy(op->id, id, ID_LEN);	/* id_valid: ID_LEN characters */
	op->id[ID_LEN] = '\0';
	op->next = o->list;
	o->list = op;
}

/* The candidates of one job folder: ids without an outbox entry. */
static unsigned
orphans_scan_job(struct cts *c, struct cts_orphans *o, const char *jobdir, const char *gid)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if ((d = opendir(jobdir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!id_valid(de->d_name))
			continue;
		if (outbox_holds(c, de->d_name))
			continue;	/* its record is on its way */
		orphans_add(o, gid, de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

void
orphans_scan(struct cts *c)
{
	char images[PATH_MAX], jobdir[PATH_MAX + 300];
	struct cts_orphans *o = xcalloc(1, sizeof *o);
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	c->orphans = o;
	snprintf(images, sizeof images, "%s/images", c->state);
	if ((d = opendir(images)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *gid;

		if (de->d_name[0] == '.' || (gid = orphans_gid(de->d_name)) == NULL)
			continue;
		snprintf(jobdir, sizeof jobdir, "%s/%s", images, de->d_name);
		n += orphans_scan_job(c, o, jobdir, gid);
		free(gid);
	}
	closedir(d);
	if (n > 0)
		log_debug("images: %u folder(s) from before the start to check against the records", n);
}

/* The newest change in dir's files (ms since the epoch), 0 if none can be read. */
static uint64_t
orphans_newest(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	struct stat st;
	uint64_t newest = 0;
	DIR *d;

	if (stat(dir, &st) == 0)
		newest = (uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000;
	if ((d = opendir(dir)) == NULL)
		return newest;
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0) {
			uint64_t t = (uint64_t)st.st_mtim.tv_sec * 1000 +
			    (uint64_t)st.st_mtim.tv_nsec / 1000000;
			newest = t > newest ? t : newest;
		}
	}
	closedir(d);
	return newest;
}

/* In a child: the unrecorded folders of gid removed (a list of paths, one a line, in arg). */
static int
orphans_remove_run(void *arg, char *out, size_t len)
{
	char *paths = arg, *save = NULL;
	unsigned n = 0;

	for (char *p = strtok_r(paths, "\n", &save); p != NULL; p = strtok_r(NULL, "\n", &save))
		n += file_remove_tree(p) == 0;
	snprintf(out, len, "%u", n);
	return 0;
}

static void
orphans_on_removed(bool ok, const char *out, void *arg)
{
	struct cts *c = arg;

	if (!ok)
		log_warn("images: removing unrecorded folders: %s", out);
	if (c->orphans != NULL) {
		c->orphans->removing = false;
		orphans_check(c);	/* the next job's, without waiting for a tick */
	}
}

/*
 * gid's records are all known: its candidates not recorded are removed (those still without a
 * manifest only once quiet), the recorded ones forgotten. The rest wait for the next tick.
 */
static void
orphans_settle(struct cts *c, const char *gid)
{
	struct cts_orphans *o = c->orphans;
	char dir[PATH_MAX], man[PATH_MAX + 16];
	char *paths = NULL;
	size_t used = 0, cap = 0;
	uint64_t now = time_now_ms();

	for (struct orphan **p = &o->list, *op; (op = *p) != NULL;) {
		bool drop = false;

		if (strcmp(op->gid, gid) != 0) {
			p = &op->next;
			continue;
		}
		if (op->recorded || cts_image_dir(c, gid, op->id, dir, sizeof dir) != 0 ||
		    access(dir, F_OK) != 0) {
			drop = true;
		} else {
			snprintf(man, sizeof man, "%s/manifest", dir);
			if (access(man, F_OK) == 0 || now - orphans_newest(dir) > ORPHAN_QUIET_MS) {
				size_t l = strlen(dir);
				if (used + l + 2 > cap) {
					cap = (used + l + 2) * 2;
					paths = xreallocarray(paths, cap, 1);
				}
				memcpy(paths + used, dir, l);
				used += l;
				paths[used++] = '\n';
				paths[used] = '\0';
				log_warn("checkpoint %s of %s: its image folder has no record and no "
				    "outbox entry (its CTS stopped before recording it): removed", op->id,
				    gid);
				drop = true;
			}
		}
		if (drop) {
			*p = op->next;
			free(op->gid);
			free(op);
		} else {
			op->next_ms = time_mono_ms() + ORPHAN_QUIET_MS / 4;	/* still written? */
			p = &op->next;
		}
	}
	if (paths == NULL)
		return;
	/* the child gets its own copy of the list (fork); the loop's is freed now */
	o->removing = true;
	if (child_run(c, orphans_remove_run, paths, orphans_on_removed, c) != 0) {
		char out[64];
		log_warn("images: cannot start a process to remove unrecorded folders: doing it here");
		orphans_remove_run(paths, out, sizeof out);
		o->removing = false;
	}
	free(paths);
}

static void orphans_ask(struct cts *c);

static void
orphans_on_page(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts *c = arg;
	struct cts_orphans *o = c->orphans;
	const struct msg_query_ok *ok = body;
	char *gid;

	if (o == NULL)
		return;		/* stopping */
	o->asking = false;
	gid = o->gid;
	o->gid = NULL;
	if (code != NULL && strcmp(code, PROTO_E_NOT_FOUND) == 0)
		code = NULL;	/* no such job in the directory: no records */
	if (code != NULL) {
		log_info("images: cannot check %s's folders against its records yet: %s: %s", gid,
		    code, msg);
		free(o->cursor);
		o->cursor = NULL;
		free(gid);
		return;		/* the next tick asks again */
	}
	for (size_t e = 0; ok != NULL && e < ok->entries.n; e++) {
		const struct proto_entry *en = &ok->entries.v[e];
		for (size_t a = 0; a < en->n; a++) {
			if (strcasecmp(en->attrs[a].name, "gcaCheckpointId") != 0 ||
			    en->attrs[a].vals.n == 0)
				continue;
			for (struct orphan *op = o->list; op != NULL; op = op->next)
				if (strcmp(op->gid, gid) == 0 &&
				    strcmp(op->id, en->attrs[a].vals.v[0]) == 0)
					op->recorded = true;
		}
	}
	free(o->cursor);
	o->cursor = NULL;
	if (ok != NULL && ok->more && ok->cursor != NULL) {
		o->cursor = xstrdup(ok->cursor);
		o->gid = gid;
		orphans_ask(c);
		return;
	}
	orphans_settle(c, gid);
	free(gid);
	orphans_check(c);	/* the next job's, without waiting for a tick */
}

/* One page of o->gid's records (the first one when there is no cursor). */
static void
orphans_ask(struct cts *c)
{
	struct cts_orphans *o = c->orphans;
	struct msg_query q = { .what = "checkpoints", .gid = o->gid, .cursor = o->cursor,
		.limit = ORPHAN_PAGE };

	o->asking = true;
	gcslink_request(c, "query", &q, orphans_on_page, c);
}

void
orphans_check(struct cts *c)
{
	struct cts_orphans *o = c->orphans;

	uint64_t now = time_mono_ms();

	if (o == NULL || o->asking || o->removing || !c->registered)
		return;
	for (struct orphan *op = o->list; op != NULL; op = op->next) {
		if (op->next_ms <= now) {
			o->gid = xstrdup(op->gid);
			orphans_ask(c);
			return;
		}
	}
}

void
orphans_free(struct cts *c)
{
	struct cts_orphans *o = c->orphans;

	if (o == NULL)
		return;
	c->orphans = NULL;
	while (o->list != NULL) {
		struct orphan *op = o->list;
		o->list = op->next;
		free(op->gid);
		free(op);
	}
	free(o->gid);
	free(o->cursor);
	free(o);
}
