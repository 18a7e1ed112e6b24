/*
 * The app core service: application-level checkpointing, the paper's basic class. The job saves
 * its own state (wrappers/gca_app.h): the CTS sends `app_save` on the socket the job kept from
 * gca-exec (after SIGUSR2, to a job that catches it), naming a staging folder the job's user owns;
 * the job writes its files there and answers `app_saved`. The CTS then copies the files into its
 * own store, opened beneath the staging folder without following links, and hashes them while
 * copying (docs/DESIGN.md, "Image store safety").
 * With app_incremental, app_save also offers the job's previous image (parent_id, and a copy of its
 * chain in parent_dir); a job that wrote only what changed answers with that parent.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cts/cts.h"

static int
app_probe(struct cts *c, char *why, size_t len)
{
	(void)c;
	(void)why;
	(void)len;
	return 0;	/* it needs nothing but the job's cooperation */
}

static void
app_properties(struct cts *c, struct proto_strlist *out)
{
	(void)c;
	(void)out;
}

static void
app_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cts_ckpt *ck = arg;
	char why[200];

	(void)fd;
	(void)what;
	snprintf(why, sizeof why, "the job did not answer within %d ms (app_timeout); it keeps "
	    "running", ck->cts->app_timeout_ms);
	ckpt_dumped(ck, why);
}

static void
app_send_save(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	struct msg_app_save b;
	struct timeval tv = { ck->cts->app_timeout_ms / 1000, (ck->cts->app_timeout_ms % 1000) * 1000 };
	char parent_dir[PATH_MAX + 8];
	static uint32_t frame_id;

	if (j->channel == NULL || !proto_conn_open(j->channel)) {
		ckpt_dumped(ck, "the job's channel to the CTS closed");
		return;
	}
	snprintf(parent_dir, sizeof parent_dir, "%s.parent", ck->staging);
	b = (struct msg_app_save){ ck->id, ck->staging, ck->offered[0] ? ck->offered : NULL,
		ck->offered[0] ? parent_dir : NULL };
	/* "a signal, then a message": a job that catches SIGUSR2 is woken first (from a long
	 * computation, say, to call gca_app_poll); one that does not is never signalled, so a job
	 * that leaves SIGUSR2 at its default (which kills) is not killed by a checkpoint */
	if (jobs_catches(j, SIGUSR2) && jobs_signal(j, SIGUSR2) != 0)
		log_warn("checkpoint %s of %s: cannot send SIGUSR2 to pid %d", ck->id, j->gid,
		    (int)j->pid);
	if (proto_conn_send(j->channel, "app_save", ++frame_id, proto_type_find("app_save"), &b) != 0) {
		ckpt_dumped(ck, "cannot write to the job's channel");
		return;
	}
	ck->timeout = event_new(ck->cts->base, -1, 0, app_on_timeout, ck);
	event_add(ck->timeout, &tv);
}

/* In the child: the parent's chain, verified and copied for the job's user to read. */
static int
app_parent_copy(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	char dir[PATH_MAX], copy[PATH_MAX + 8];

	if (cts_image_dir(ck->cts, ck->job->gid, ck->offered, dir, sizeof dir) != 0) {
		snprintf(out, len, "no image folder for %s", ck->offered);
		return -1;
	}
	snprintf(copy, sizeof copy, "%s.parent", ck->staging);
	if (restore_chain_copy(ck->cts, dir, copy, ck->job->uid, ck->job->gidn, out, len) != 0)
		return -1;
	snprintf(out, len, "ok");
	return 0;
}

static void
app_on_parent_copied(bool ok, const char *out, void *arg)
{
	struct cts_ckpt *ck = arg;

	if (!ok && ck->expired) {
		ckpt_dumped(ck, out);	/* killed by dump_timeout */
		return;
	}
	if (!ok) {
		/* the job saves in full this time */
		log_warn("checkpoint %s of %s: parent %s not offered: %s", ck->id, ck->job->gid,
		    ck->offered, out);
		ck->offered[0] = '\0';
	}
	app_send_save(ck);
}

/*
 * app_incremental N: the job's previous image (and its chain) is offered, copied for the job's
 * user, unless N incremental ones followed the last full one, it is gone, or images are encrypted.
 */
static bool
app_offer_parent(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	char dir[PATH_MAX];
	struct stat st;

	ck->offered[0] = '\0';
	if (ck->cts->app_incremental == 0 || j->incr_last[0] == '\0' ||
	    j->incr_n >= ck->cts->app_incremental || ck->cts->image_key_id[0] != '\0')
		return false;
	if (cts_image_dir(ck->cts, j->gid, j->incr_last, dir, sizeof dir) != 0 || stat(dir, &st) != 0)
		return false;
	snprintf(ck->offered, sizeof ck->offered, "%s", j->incr_last);
	return true;
}

/*
 * A job read back from the job table after a CTS restart has no channel until its library
 * re-attaches (gca_app_poll does, at most once a second): for APP_REATTACH_MS after the start that
 * is a retryable "not yet", not the job's fault; after that, the job does not poll or closed
 * GCA_APP_FD, and the checkpoint is refused saying so.
 */
#define APP_REATTACH_MS 30000
static void
app_no_channel(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	uint64_t since = time_mono_ms() - ck->cts->started_ms;
	char why[400];

	if (j->reloaded && since < APP_REATTACH_MS) {
		snprintf(why, sizeof why, "the CTS restarted %llu s ago and the job has not "
		    "re-attached yet (its library does so from gca_app_poll within a second); retry "
		    "in a few seconds", (unsigned long long)(since / 1000));
		ckpt_dump_failed(ck, PROTO_E_UNAVAILABLE, why);
	} else if (j->reloaded) {
		snprintf(why, sizeof why, "the job has not re-attached since the CTS restarted %llu s "
		    "ago (it does not call gca_app_poll, or it closed GCA_APP_FD)",
		    (unsigned long long)(since / 1000));
		ckpt_dumped(ck, why);
	} else {
		ckpt_dumped(ck, "the job has no open channel to the CTS (started without gca-exec, "
		    "or it closed GCA_APP_FD)");
	}
}

static void
app_dump(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;

	if (j->channel == NULL || !proto_conn_open(j->channel)) {
		app_no_channel(ck);
		return;
	}
	snprintf(ck->staging, sizeof ck->staging, "%s/staging/%s", ck->cts->state, ck->id);
	if (mkdir(ck->staging, 0700) != 0 || chown(ck->staging, j->uid, j->gidn) != 0) {
		ckpt_dumped(ck, "cannot make the staging folder");
		return;
	}
	if (app_offer_parent(ck)) {
		if (child_run(ck->cts, app_parent_copy, ck, app_on_parent_copied, ck) == 0)
			return;
		ck->offered[0] = '\0';
	}
	app_send_save(ck);
}

/*
 * A small image is copied on the loop, not in a child: a fork, the faults of its copy-on-write
 * pages and its exit cost the CTS more CPU than copying a few KiB (docs/BENCHMARKS.md, "The
 * CTS's CPU per checkpoint"). The child is not there for isolation (the copy opens beneath the
 * staging folder with openat2 in either case) but to keep a long copy off the loop, so the copy
 * on the loop is bounded, whatever the job does to its files meanwhile; one over the bound is
 * dropped and made again in a child.
 */
#define APP_SMALL_BYTES		(1024 * 1024)
#define APP_SMALL_ENTRIES	16	/* files and folders */

/*
 * Whether staging's top level looks small enough to copy on the loop (at most APP_SMALL_ENTRIES
 * entries, its files APP_SMALL_BYTES together), before an image folder is made for it: a large
 * image goes straight to the child, without a first megabyte copied and thrown away, and without
 * a half-made folder that a CTS killed meanwhile would leave (removed only once quiet, by
 * cts/orphans.c). Only a guess (subfolders are not looked into, files may grow): the copy keeps
 * its own bound.
 */
static bool
app_staging_small(const char *staging)
{
	struct dirent *de;
	struct stat st;
	uint64_t bytes = 0;
	int n = 0;
	bool ok = true;
	DIR *d;

	if ((d = opendir(staging)) == NULL)
		return false;
	while (ok && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ok = ++n <= APP_SMALL_ENTRIES &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0) <= APP_SMALL_BYTES;
	}
	closedir(d);
	return ok;
}

/* staging -> image folder, hashed, with its manifest: in a child, or bounded on the loop. */
static int
app_store_with(struct cts_ckpt *ck, bool small, char *out, size_t len)
{
	struct image_meta m = { 0 };
	struct image_result r = { 0 };
	char p[PATH_MAX + 8];

	snprintf(m.checkpoint_id, sizeof m.checkpoint_id, "%s", ck->id);
	snprintf(m.gid, sizeof m.gid, "%s", ck->job->gid);
	snprintf(m.core_service, sizeof m.core_service, "app");
	snprintf(m.parent, sizeof m.parent, "%s", ck->parent);
	m.time_ms = ck->time_ms;
	if (ck->parent[0] != '\0') {
		/* a restore puts the parent's copy there */
		struct stat st;
		snprintf(p, sizeof p, "%s/parent", ck->staging);
		if (lstat(p, &st) == 0) {
			snprintf(out, len, "the job wrote %s, a name an incremental image keeps for its "
			    "parent", p);
			return -1;
		}
	}
	/* with a site key the files are encrypted as they are copied: no plain copy in the store */
	snprintf(m.key_id, sizeof m.key_id, "%s", ck->cts->image_key_id);
	ckpt_signer(ck->cts, &m);	/* manifest.sig sealed with the manifest, here */
	if (small) {
		if (image_store_copy_small(ck->staging, ck->image_dir, &m, APP_SMALL_BYTES,
		    APP_SMALL_ENTRIES, &r, out, len) != 0)
			return -1;
		ckpt_result_line(&r, out, len);
		return 0;	/* its staging folder: app_staging_remove_small */
	}
	/* compressed as they are copied, before they are encrypted (cts/compress.c) */
	if (ck->cts->compress_level != 0) {
		if (image_store_copy_packed(ck->staging, ck->image_dir, &m, ck->cts->compress_level,
		    m.key_id[0] != '\0' ? ck->cts->image_key : NULL, &r, out, len) != 0)
			return -1;
	} else if ((m.key_id[0] != '\0' ? image_store_copy_encrypted(ck->staging, ck->image_dir,
	    &m, ck->cts->image_key, &r, out, len) : image_store_copy(ck->staging, ck->image_dir, &m,
	    &r, out, len)) != 0) {
		return -1;
	}
	/* the store has its copy: the staging folders go now, in this child, so that the
	 * recorded checkpoint leaves nothing to remove later (cts/checkpoint.c, ckpt_cleanup) */
	file_remove_tree(ck->staging);
	snprintf(p, sizeof p, "%s.parent", ck->staging);
	file_remove_tree(p);
	ckpt_result_line(&r, out, len);
	return 0;
}

/* In the child: any image. */
static int
app_store(void *arg, char *out, size_t len)
{
	return app_store_with(arg, false, out, len);
}

/*
 * After a copy on the loop: its staging folder goes here too, if it still holds no more than the
 * copy did (the job may have written more into it since). Anything else (a folder, a file grown
 * past the bound, more entries) is left to ckpt_cleanup's child. true: removed.
 */
static bool
app_staging_remove_small(const char *staging)
{
	struct dirent *de;
	struct stat st;
	int n = 0;
	bool ok = true;
	DIR *d;

	if ((d = opendir(staging)) == NULL)
		return false;
	while (ok && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ok = ++n <= APP_SMALL_ENTRIES &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(st.st_mode) && st.st_size <= APP_SMALL_BYTES &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0;
	}
	closedir(d);
	return ok && rmdir(staging) == 0;
}

/* The image is stored (ok) or not; staging_gone: its staging folder was removed with it. */
static void
app_stored(struct cts_ckpt *ck, bool ok, const char *out, bool staging_gone)
{
	if (ok && ckpt_result_read(ck, out) == 0) {
		if (staging_gone)
			ck->staging[0] = '\0';	/* else ckpt_cleanup removes it */
		ck->encrypted = ck->cts->image_key_id[0] != '\0';	/* by app_store */
		ck->compressed = ck->cts->compress_level != 0;		/* the same */
		snprintf(ck->job->incr_last, sizeof ck->job->incr_last, "%s", ck->id);
		ck->job->incr_n = ck->parent[0] != '\0' ? ck->job->incr_n + 1 : 0;
		ckpt_dumped(ck, NULL);
		return;
	}
	ckpt_dumped(ck, ok ? "the image store gave no result" : out);
}

static void
app_on_stored(bool ok, const char *out, void *arg)
{
	app_stored(arg, ok, out, true);	/* removed by app_store, in the child */
}

/* The filesystem of ck's staging folder (the CTS's state disk) has no room left. */
static bool
app_staging_full(const struct cts_ckpt *ck)
{
	struct statvfs st;

	return statvfs(ck->staging, &st) == 0 && (st.f_bavail == 0 || st.f_favail == 0);
}

static void
app_saved(struct cts_ckpt *ck, bool ok, const char *error)
{
	char why[1200];

	if (!ok) {
		bool full = app_staging_full(ck);

		snprintf(why, sizeof why, "the job could not save its state: %s%s",
		    error ? error : "no reason given", full ? " (the CTS's staging folder, on its "
		    "state disk, has no space left)" : "");
		/* a full disk is the site's to fix, and passes: not the job's refusal */
		if (full || (error != NULL && strstr(error, strerror(ENOSPC)) != NULL))
			ckpt_dump_failed(ck, PROTO_E_UNAVAILABLE, why);
		else
			ckpt_dumped(ck, why);
		return;
	}
	/* plain and full images only: an encrypted or compressed one, or one whose parent's copy
	 * must go with its staging folder, is the child's; and only while no child that writes
	 * runs: one may be writing a large image to the same disk, and the copy's fsyncs on the
	 * loop would wait for it (retention's child only removes files; at a steady checkpoint
	 * rate one runs during many checkpoints, and would send each of their small copies to a
	 * fork of its own) */
	if (ck->cts->image_key_id[0] == '\0' && ck->cts->compress_level == 0 &&
	    ck->offered[0] == '\0' && !child_any_writing() &&
	    app_staging_small(ck->staging)) {
		char out[CHILD_OUT];

		if (app_store_with(ck, true, out, sizeof out) == 0) {
			app_stored(ck, true, out, app_staging_remove_small(ck->staging));
			return;
		}
		log_debug("checkpoint %s of %s: not copied on the loop (%s): in a child", ck->id,
		    ck->job->gid, out);
	}
	if (child_run(ck->cts, app_store, ck, app_on_stored, ck) != 0)
		ckpt_dumped(ck, "cannot start the image copy");
}

const struct core_service core_app = {
	.name = "app",
	.external = true,
	.self_checkpoint = true,
	.probe = app_probe,
	.properties = app_properties,
	.dump = app_dump,
	.saved = app_saved,
	.keeps_channel = true,
};
