/*
 * Retention of the jobs' own images (cts.conf retention N): once a checkpoint is recorded, a job
 * that holds more than N images has those it no longer needs removed (cts/retain.c's
 * retain_prune_before keeps the newest N and every parent they need), and each removal is told to
 * the GCS through the outbox (retention_removed: the record is expired, even if the GCS is away
 * right then). This file decides when to ask and where it runs; retain.c decides what goes.
 *
 * Removing a multi-GB image takes a while, so it happens in a child, but not one per checkpoint
 * (a fork of the CTS costs its loop more than anything else a checkpoint does there): the loop
 * counts the job's images first (one readdir) and asks only when there are too many, and one
 * child at a time serves every job that asked; jobs that ask while it runs are served together by
 * one more run after it, started RETENTION_SPACING_MS at the soonest after the one before: a busy
 * CTS forks for retention once a second at most, whatever its checkpoint rate, and an image
 * outlives its retention by a second more at most. (Ten times a second, as it was, meant a fork
 * every few small checkpoints at a steady rate: docs/BENCHMARKS.md, "The CTS's CPU per
 * checkpoint".) Its child only removes files (child_mark_remover), so a small app image is still
 * copied on the loop while it runs.
 *
 * A job's next checkpoint may be written while the child runs: each job is given a bound, the
 * lowest id among its checkpoints not yet recorded and ids of "now", and the child looks only at
 * the folders before it, so it never reads or removes a folder being written.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cts/cts.h"

#define RETENTION_SPACING_MS 1000

/* One run: the jobs it serves, as they were when it was forked. */
struct retention_run {
	struct cts	*cts;
	size_t		 n;
	struct retention_job {
		char	*gid;
		char	 before[ID_LEN + 1];	/* folders from this id on are left alone */
	}		*jobs;
};

/* What the child says: "<job index>/<id>" for each image removed, "<job index>/+" for a job that
 * may have more to remove than the answer had room for, and "<job index>/=" when the answer is
 * full before that job: it and the jobs after it are served again by the next run. */
struct retention_out {
	struct retention_run	*run;
	char		*out;
	size_t		 len, used;
	size_t		 job;
	unsigned	 removed;
};

/* The images (folders named by an id) in job_dir: the loop's cheap count, one readdir. */
static unsigned
retention_count(const char *job_dir)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if ((d = opendir(job_dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if ((de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) && id_valid(de->d_name))
			n++;
	closedir(d);
	return n;
}

/* The lowest id of "now": every checkpoint asked from now on has an id at least this one. */
static void
retention_now(char out[ID_LEN + 1])
{
	uint64_t ms = time_now_ms();

	snprintf(out, ID_LEN + 1, "%08llx-%04llx-0000-0000-000000000000",
	    (unsigned long long)(ms >> 16) & 0xffffffffULL, (unsigned long long)ms & 0xffff);
}

/* The bound of gid's job: before its first checkpoint not recorded yet, or now. A checkpoint whose
 * record waits in the outbox (the directory was away when it was taken) counts as not recorded:
 * removed now, its record would be stored later naming an image that is gone, and never expired. */
void
retention_bound(struct cts *c, const char *gid, char before[ID_LEN + 1])
{
	struct cts_job *j = jobs_find(c, gid);

	retention_now(before);
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next)
		if (it->rec.gid != NULL && strcmp(it->rec.gid, gid) == 0 &&
		    it->rec.checkpoint_id != NULL && id_valid(it->rec.checkpoint_id) &&
		    strcmp(it->rec.checkpoint_id, before) < 0)
			memcpy(before, it->rec.checkpoint_id, ID_LEN + 1);
	if (j == NULL)
		return;
	if (j->running != NULL && !j->running->recorded && strcmp(j->running->id, before) < 0)
		memcpy(before, j->running->id, ID_LEN + 1);
	for (struct cts_ckpt *ck = j->queue; ck != NULL; ck = ck->next)
		if (strcmp(ck->id, before) < 0)
			memcpy(before, ck->id, ID_LEN + 1);
}

static void
retention_run_free(struct retention_run *run)
{
	for (size_t i = 0; i < run->n; i++)
		free(run->jobs[i].gid);
	free(run->jobs);
	free(run);
}

static void
retention_out_add(const char *id, void *arg)
{
	struct retention_out *ro = arg;

	ro->used += (size_t)snprintf(ro->out + ro->used, ro->len - ro->used, "%s%zu/%s",
	    ro->used ? " " : "", ro->job, id);
	ro->removed++;
}

/* In the child, before a removal: its outbox entry, durable, so that the directory hears of it
 * even if this CTS is killed before it read the child's answer (the image would be gone and its
 * record would still name this copy). The loop then only links and sends it (retention_done). */
static int
retention_announce(const char *id, void *arg)
{
	struct retention_out *ro = arg;
	const char *gid = ro->run->jobs[ro->job].gid;

	if (outbox_gone_ahead(ro->run->cts, gid, id, true) != 0) {
		log_warn("retention: checkpoint %s of %s kept: cannot write its removal to the "
		    "outbox: %s", id, gid, strerror(errno));
		return -1;
	}
	return 0;
}

/* In the child: each job's retention, as many removals as the answer can name. */
static int
retention_child(void *arg, char *out, size_t len)
{
	struct retention_run *run = arg;
	struct retention_out ro = { run, out, len, 0, 0, 0 };
	/* one removal as said, " index/id"; room is kept for a "+" and an "=" after the last */
	const size_t one = 1 + 20 + 1 + ID_LEN, room = len > 3 * one ? len - 2 * one : 0;
	char jd[PATH_MAX];

	out[0] = '\0';
	for (size_t i = 0; i < run->n; i++) {
		unsigned max = ro.used < room ? (unsigned)((room - ro.used) / one) : 0;

		if (max == 0) {
			snprintf(out + ro.used, len - ro.used, "%s%zu/=", ro.used ? " " : "", i);
			break;
		}
		if (cts_job_dir(run->cts, run->jobs[i].gid, jd, sizeof jd) != 0)
			continue;
		ro.job = i;
		ro.removed = 0;
		if (retain_prune_announced(jd, run->cts->retention, run->jobs[i].before, max,
		    retention_announce, retention_out_add, &ro) >= 0 && ro.removed == max)
			ro.used += (size_t)snprintf(out + ro.used, len - ro.used, "%s%zu/+",
			    ro.used ? " " : "", i);	/* perhaps more: the next run sees */
	}
	return 0;
}

/* Retention removed this CTS's copy: gcaLocation -= it; expired when it took the checkpoint. The
 * image is gone already, so this goes through the outbox: resent until the GCS stored it. */
void
retention_removed(struct cts *c, const char *gid, const char *id, bool expired)
{
	if (outbox_gone(c, gid, id, expired) != 0)
		log_error("checkpoint %s of %s: cannot keep the removal of the copy here in the "
		    "outbox: the directory may still list it", id, gid);
}

static void retention_start(struct cts *c);

static void
retention_done(bool ok, const char *out, void *arg)
{
	struct retention_run *run = arg;
	struct cts *c = run->cts;
	char id[ID_LEN + 2];
	size_t job;
	int n;

	c->retaining = false;
	if (!ok)
		log_warn("retention: %s", out);
	for (const char *p = out; ok && sscanf(p, "%zu/%37s%n", &job, id, &n) == 2; p += n) {
		if (job >= run->n)
			break;
		if (strcmp(id, "+") == 0) {
			retention_want(c, run->jobs[job].gid);
		} else if (strcmp(id, "=") == 0) {
			while (job < run->n)
				retention_want(c, run->jobs[job++].gid);
			break;
		} else if (id_valid(id)) {
			log_info("retention: removed image %s of %s", id, run->jobs[job].gid);
			if (outbox_gone_written(c, run->jobs[job].gid, id, true) != 0)
				log_error("checkpoint %s of %s: cannot send the removal of the copy "
				    "here: it is sent after a restart", id, run->jobs[job].gid);
		}
	}
	retention_run_free(run);
	retention_start(c);
}

static void
retention_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	retention_start(arg);
}

/* A child for every job that asked, unless one runs (then after it) or one started less than
 * RETENTION_SPACING_MS ago (then when that is over). */
static void
retention_start(struct cts *c)
{
	struct retention_run *run;
	char out[CHILD_OUT];
	uint64_t now = time_mono_ms();

	if (c->retaining || c->retain_wanted.n == 0)
		return;
	if (now < c->retain_last_ms + RETENTION_SPACING_MS) {
		uint64_t wait = c->retain_last_ms + RETENTION_SPACING_MS - now;
		struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };

		if (c->retain_timer == NULL &&
		    (c->retain_timer = evtimer_new(c->base, retention_on_timer, c)) == NULL)
			log_fatal("retention: no memory for a timer");
		if (!evtimer_pending(c->retain_timer, NULL))
			evtimer_add(c->retain_timer, &tv);
		return;
	}
	c->retain_last_ms = now;
	run = xcalloc(1, sizeof *run);
	run->jobs = xcalloc(c->retain_wanted.n, sizeof *run->jobs);
	run->cts = c;
	run->n = c->retain_wanted.n;
	for (size_t i = 0; i < run->n; i++) {
		run->jobs[i].gid = c->retain_wanted.v[i];	/* taken from the list */
		retention_bound(c, run->jobs[i].gid, run->jobs[i].before);
	}
	free(c->retain_wanted.v);
	c->retain_wanted.v = NULL;
	c->retain_wanted.n = 0;
	c->retaining = true;
	if (child_run(c, retention_child, run, retention_done, run) != 0) {
		log_warn("retention: cannot start a process for it: doing it here");
		retention_child(run, out, sizeof out);
		retention_done(true, out, run);
		return;
	}
	child_mark_remover(run);
}

void
retention_want(struct cts *c, const char *gid)
{
	char jd[PATH_MAX];

	if (c->retention == 0 || cts_job_dir(c, gid, jd, sizeof jd) != 0 ||
	    retention_count(jd) <= c->retention)
		return;
	for (size_t i = 0; i < c->retain_wanted.n; i++)
		if (strcmp(c->retain_wanted.v[i], gid) == 0)
			return;		/* asked already: the next run serves it */
	proto_strlist_add(&c->retain_wanted, gid);
	retention_start(c);
}

/* ---- other removals: restore copies, the image of a refused record ---- */

struct retention_removal {
	struct cts			*cts;
	char				*path;
	struct retention_removal	*next;
};

static int
retention_remove_run(void *arg, char *out, size_t len)
{
	struct retention_removal *rm = arg;

	if (file_remove_tree(rm->path) != 0) {
		snprintf(out, len, "removing %s: %s", rm->path, strerror(errno));
		return -1;
	}
	snprintf(out, len, "ok");
	return 0;
}

static void
retention_removal_free(struct retention_removal *rm)
{
	free(rm->path);
	free(rm);
}

static void
retention_on_removed(bool ok, const char *out, void *arg)
{
	struct retention_removal *rm = arg;

	if (!ok)
		log_warn("%s", out);
	for (struct retention_removal **p = &rm->cts->removals; *p != NULL; p = &(*p)->next) {
		if (*p == rm) {
			*p = rm->next;
			break;
		}
	}
	retention_removal_free(rm);
}

void
retention_remove(struct cts *c, const char *path)
{
	struct retention_removal *rm;
	char out[CHILD_OUT];

	for (rm = c->removals; rm != NULL; rm = rm->next)
		if (strcmp(rm->path, path) == 0)
			return;		/* under way */
	rm = xcalloc(1, sizeof *rm);
	rm->path = xstrdup(path);
	rm->cts = c;
	rm->next = c->removals;
	c->removals = rm;
	if (child_run(c, retention_remove_run, rm, retention_on_removed, rm) != 0) {
		log_warn("cannot start a process to remove %s: doing it here", path);
		retention_on_removed(retention_remove_run(rm, out, sizeof out) == 0, out, rm);
	}
}

void
retention_free(struct cts *c)
{
	if (c->retain_timer != NULL)
		event_free(c->retain_timer);
	c->retain_timer = NULL;
	proto_strlist_free(&c->retain_wanted);
	/* removals still under way: their children finish on their own copy of the list */
	while (c->removals != NULL) {
		struct retention_removal *rm = c->removals;
		c->removals = rm->next;
		retention_removal_free(rm);
	}
}
