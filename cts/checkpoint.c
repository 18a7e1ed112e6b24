/*
 * Checkpoints (paper 5.2 steps 6-8, 5.1 step 8): one at a time per job, the others wait in a
 * bounded queue. The core service dumps (cts/core/), the image is sealed with its manifest, the
 * record goes to the outbox and then to the GCS, and whoever asked (the GCS for a broker, the job
 * itself, or nobody for a periodic one) gets the answer after the GCS stored the record.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cts/cts.h"

static void ckpt_next(struct cts_job *j);
static void ckpt_outbox_failed(struct cts_ckpt *ck, int error);

static void
ckpt_free(struct cts_ckpt *ck)
{
	if (ck->timeout != NULL)
		event_free(ck->timeout);
	if (ck->dump_timer != NULL)
		event_free(ck->dump_timer);
	free(ck->idem_key);
	proto_strlist_free(&ck->properties);
	free(ck);
}

/* ck is over (recorded or failed) and cleaned up: the job's next checkpoint may start. */
static void
ckpt_finish(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;

	j->running = NULL;
	ckpt_free(ck);
	if (j->ended)
		jobs_retry_unbind(j->cts);
	else
		ckpt_next(j);
}

/*
 * In a child, since a multi-GB image takes a while to remove: what a checkpoint leaves behind
 * (its staging folders, unless its core service removed them; its image folder if it failed).
 */
static int
ckpt_cleanup_run(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	char path[PATH_MAX + 8];

	(void)len;
	out[0] = '\0';
	if (ck->staging[0] != '\0') {
		file_remove_tree(ck->staging);
		snprintf(path, sizeof path, "%s.parent", ck->staging);
		file_remove_tree(path);	/* app: the parent offered, if any */
	}
	if (!ck->recorded && ck->image_dir[0] != '\0')
		file_remove_tree(ck->image_dir);
	return 0;
}

static void
ckpt_on_cleaned(bool ok, const char *out, void *arg)
{
	struct cts_ckpt *ck = arg;

	if (!ok)
		log_warn("checkpoint %s of %s: cleaning up: %s", ck->id, ck->job->gid, out);
	ckpt_finish(ck);
}

/*
 * Cleans up (off the loop when there is anything to remove), then finishes ck. A recorded one
 * usually leaves nothing (the app core service removes its staging folder in the child that
 * copied it): then no child, only retention's count (retention.c).
 */
static void
ckpt_cleanup(struct cts_ckpt *ck)
{
	if (ck->recorded)
		retention_want(ck->cts, ck->job->gid);
	if ((ck->staging[0] == '\0' || access(ck->staging, F_OK) != 0) && (ck->recorded ||
	    ck->image_dir[0] == '\0' || access(ck->image_dir, F_OK) != 0)) {
		ckpt_finish(ck);	/* nothing to remove */
		return;
	}
	if (child_run(ck->cts, ckpt_cleanup_run, ck, ckpt_on_cleaned, ck) != 0) {
		char out[CHILD_OUT];

		log_warn("checkpoint %s of %s: cannot start a process to clean up: doing it here",
		    ck->id, ck->job->gid);
		ckpt_cleanup_run(ck, out, sizeof out);
		ckpt_on_cleaned(true, out, ck);
	}
}

static int
ckpt_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* STATE/failed/ keeps the newest CKPT_FAILED_LOGS logs (ids sort by time). */
static void
ckpt_failed_prune(const char *dir)
{
	char *names[4 * CKPT_FAILED_LOGS], path[PATH_MAX + 64];
	size_t n = 0;
	struct dirent *d;
	DIR *dp;

	if ((dp = opendir(dir)) == NULL)
		return;
	while ((d = readdir(dp)) != NULL && n < GCA_NITEMS(names)) {
		size_t l = strlen(d->d_name);
		if (l == ID_LEN + 4 && strcmp(d->d_name + ID_LEN, ".log") == 0)
			names[n++] = xstrdup(d->d_name);
	}
	closedir(dp);
	qsort(names, n, sizeof names[0], ckpt_name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i + CKPT_FAILED_LOGS < n) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			unlink(path);
		}
		free(names[i]);
	}
}

/*
 * A failed image folder goes, but the log in it that the error names (criu: "criu dump failed
 * (log <image_dir>/dump.log): ...") is kept as STATE/failed/<id>.log, and the error (in out)
 * names that instead. Any other error is out as it is.
 */
static void
ckpt_keep_log(struct cts_ckpt *ck, const char *why, char *out, size_t len)
{
	size_t dl = strlen(ck->image_dir), fl;
	const char *at = strstr(why, ck->image_dir);
	char from[PATH_MAX], to[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	snprintf(out, len, "%s", why);
	if (at == NULL || at[dl] != '/')
		return;
	fl = dl + strcspn(at + dl, " ):;,\n");
	if (fl >= sizeof from)
		return;
	memcpy(from, at, fl);
	from[fl] = '\0';
	snprintf(dir, sizeof dir, "%s/failed", ck->cts->state);
	if (strstr(from + dl, "/../") != NULL || lstat(from, &st) != 0 || !S_ISREG(st.st_mode) ||
	    snprintf(to, sizeof to, "%s/%s.log", dir, ck->id) >= (int)sizeof to)
		return;
	if (file_mkdirs(dir, 0700) != 0 || rename(from, to) != 0) {
		log_warn("checkpoint %s: cannot keep %s as %s: %s", ck->id, from, to,
		    strerror(errno));
		return;
	}
	if (snprintf(out, len, "%.*s%s%s", (int)(at - why), why, to, at + fl) >= (int)len)
		out[len - 1] = '\0';	/* a long error is cut */
	ckpt_failed_prune(dir);
}

/*
 * ck is answered; while it cleans up it is still the job's running checkpoint, but a retry of its
 * key must not wait on it: it finds the outbox record or the acknowledged one (idem_retry).
 */
static void
ckpt_forget_asked(struct cts_ckpt *ck)
{
	ck->req = NULL;
	ck->nagain = 0;
	free(ck->idem_key);
	ck->idem_key = NULL;
}

/* Whoever asked for ck (and asked again) gets this error. */
static void
ckpt_tell(struct cts_ckpt *ck, const char *code, const char *why)
{
	if (ck->req != NULL)
		proto_reply_err(ck->req, code, "%s", why);
	for (int i = 0; i < ck->nagain; i++)
		proto_reply_err(ck->again[i], code, "%s", why);
	ckpt_forget_asked(ck);
}

static void
ckpt_fail(struct cts_ckpt *ck, const char *code, const char *why)
{
	char kept[1400], msg[1700];

	snprintf(kept, sizeof kept, "%s", why);
	if (ck->image_dir[0] != '\0')
		ckpt_keep_log(ck, why, kept, sizeof kept);	/* before the reply naming it */
	log_warn("checkpoint %s of %s (%s) failed: %s", ck->id, ck->job->gid, ck->kind, kept);
	cts_metrics_checkpoint(ck, code);
	snprintf(msg, sizeof msg, "checkpoint of %s failed: %s", ck->job->gid, kept);
	ckpt_tell(ck, code, msg);
	ckpt_cleanup(ck);
}

/* "2 s", "1500 ms": a duration setting, as an error says it */
static const char *
ckpt_duration(int ms)
{
	static char buf[32];

	if (ms % 1000 == 0)
		snprintf(buf, sizeof buf, "%d s", ms / 1000);
	else
		snprintf(buf, sizeof buf, "%d ms", ms);
	return buf;
}

/*
 * dump_timeout: a core service's child that hangs (criu stuck, a copy on a dead disk) would hold
 * the job's queue for ever. It is killed, and the dump ends with this reason. A core service
 * waiting on the loop instead (app: for the job's answer; vmm: QMP) has its own bound, but an app
 * job that still has not answered is given up now.
 */
static void
ckpt_on_dump_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cts_ckpt *ck = arg;
	char why[200];

	(void)fd;
	(void)what;
	if (child_kill(ck) > 0) {
		ck->expired = true;	/* ckpt_dumped says why, when the killed child is reaped */
		log_warn("checkpoint %s of %s: not done within dump_timeout: its processes are killed",
		    ck->id, ck->job->gid);
	} else if (ck->timeout != NULL) {
		snprintf(why, sizeof why, "not done within %s (dump_timeout); the job did not answer "
		    "and keeps running", ckpt_duration(ck->cts->dump_timeout_ms));
		ckpt_dumped(ck, why);
	} else {
		log_warn("checkpoint %s of %s: not done within dump_timeout; the %s core service "
		    "bounds what it waits for itself", ck->id, ck->job->gid, ck->cts->core->name);
	}
}

static void
ckpt_start(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	struct timeval tv = { ck->cts->dump_timeout_ms / 1000, (ck->cts->dump_timeout_ms % 1000) * 1000 };
	char jd[PATH_MAX];

	if (!jobs_alive(j)) {
		/* a PID reused by another process is never dumped */
		ckpt_fail(ck, PROTO_E_NOT_FOUND, "the job's process is gone");
		return;
	}
	if (cts_job_dir(ck->cts, j->gid, jd, sizeof jd) != 0 || file_mkdirs(jd, 0700) != 0 ||
	    cts_image_dir(ck->cts, j->gid, ck->id, ck->image_dir, sizeof ck->image_dir) != 0) {
		ckpt_fail(ck, PROTO_E_INTERNAL, "cannot make the image folder in the state folder");
		return;
	}
	/* the child that seals the image signs its manifest with the identity cached here (read
	 * again only after a renewal), not by decoding the PEM key itself (2.6 ms each time); an
	 * unreadable key is the signature's to report */
	(void)proto_sig_prepare(&ck->cts->sign);
	ck->time_ms = time_now_ms();
	ck->start_mono_ms = time_mono_ms();
	ck->dump_timer = evtimer_new(ck->cts->base, ckpt_on_dump_timeout, ck);
	evtimer_add(ck->dump_timer, &tv);
	log_debug("checkpoint %s of %s (%s) starts", ck->id, j->gid, ck->kind);
	ck->cts->core->dump(ck);
}

static void
ckpt_next(struct cts_job *j)
{
	struct cts_ckpt *ck = j->queue;

	if (j->running != NULL || ck == NULL)
		return;
	j->queue = ck->next;
	j->nqueued--;
	ck->next = NULL;
	j->running = ck;
	ckpt_start(ck);
}

void
ckpt_request(struct cts_job *j, const char *kind, struct proto_req *req, const char *idem_key)
{
	struct cts *c = j->cts;
	struct cts_ckpt *ck, **p;

	if (c->unavailable[0] != '\0') {
		if (req != NULL)
			proto_reply_err(req, PROTO_E_UNAVAILABLE, "core service %s: %s", c->core->name,
			    c->unavailable);
		return;
	}
	/* before the queue's bound: a retry takes no place in the queue */
	if (idem_key != NULL && req != NULL && idem_retry(j, idem_key, req))
		return;
	if (j->nqueued >= c->max_queue) {
		if (req != NULL)
			proto_reply_err(req, PROTO_E_BUSY, "%u checkpoints of %s already wait (max_queue)",
			    j->nqueued, j->gid);
		return;
	}
	ck = xcalloc(1, sizeof *ck);
	ck->cts = c;
	ck->job = j;
	ck->kind = kind;
	ck->req = req;
	ck->idem_key = idem_key ? xstrdup(idem_key) : NULL;
	id_new(ck->id);
	for (p = &j->queue; *p != NULL; p = &(*p)->next)
		;
	*p = ck;
	j->nqueued++;
	ckpt_next(j);
}

/* image_meta's sign: the manifest's signature with this CTS's signing key (never its TLS key),
 * which another resource checks before it uses a copy (transfer.c). Runs in the child that seals the image: the
 * signing identity it inherited is the parent's cached one (proto/grant.c). */
static int
ckpt_sign_text(void *arg, const char *text, size_t len, char **sig, char *err, size_t errlen)
{
	struct cts *c = arg;

	return proto_sig_make(&c->sign, text, len, sig, err, errlen);
}

void
ckpt_signer(struct cts *c, struct image_meta *m)
{
	m->sign = ckpt_sign_text;
	m->sign_arg = c;
}

/* manifest.sig beside the manifest, for a core service whose child sealed the image without it
 * (ckpt_signer): signed here, on the loop. Not listed in the manifest. */
static int
ckpt_sign(struct cts_ckpt *ck)
{
	char path[PATH_MAX + 16], err[512], *buf = NULL, *sig = NULL;
	size_t len;
	int rc = -1;

	snprintf(path, sizeof path, "%s/manifest", ck->image_dir);
	if (file_read_all(path, &buf, &len, 64 * 1024 * 1024) != 0) {
		log_error("checkpoint %s: cannot read %s to sign it", ck->id, path);
		return -1;
	}
	if (proto_sig_make(&ck->cts->sign, buf, len, &sig, err, sizeof err) != 0) {
		log_error("checkpoint %s: %s", ck->id, err);
	} else {
		snprintf(path, sizeof path, "%s/manifest.sig", ck->image_dir);
		if ((rc = file_write_whole(path, sig, strlen(sig), 0600)) != 0)
			log_error("checkpoint %s: cannot write %s", ck->id, path);
	}
	free(buf);
	free(sig);
	return rc;
}

/* In a child: the sealed image's files encrypted in place, then sealed again (the manifest then
 * describes what is stored and says "key <id>"): "size sha256 nfiles". */
static int
ckpt_encrypt(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	struct image_meta m;
	struct image_result r;

	if (manifest_read(ck->image_dir, &m, out, len) != 0 ||
	    crypt_encrypt_dir(ck->image_dir, ck->cts->image_key, out, len) != 0)
		return -1;
	snprintf(m.key_id, sizeof m.key_id, "%s", ck->cts->image_key_id);
	ckpt_signer(ck->cts, &m);
	if (image_store_seal(ck->image_dir, &m, &r, out, len) != 0)
		return -1;
	ckpt_result_line(&r, out, len);
	return 0;
}

/* In a child: the sealed image's files compressed in place (zstd), then encrypted when the site
 * has a key, then sealed again (cts/image.c, image_store_pack): "size sha256 nfiles". */
static int
ckpt_pack(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	struct cts *c = ck->cts;
	struct image_meta m;
	struct image_result r;

	if (manifest_read(ck->image_dir, &m, out, len) != 0)
		return -1;
	snprintf(m.key_id, sizeof m.key_id, "%s", c->image_key_id);
	ckpt_signer(c, &m);
	if (image_store_pack(ck->image_dir, &m, c->compress_level, c->image_key_id[0] != '\0' ?
	    c->image_key : NULL, &r, out, len) != 0)
		return -1;
	ckpt_result_line(&r, out, len);
	return 0;
}

static void
ckpt_on_encrypted(bool ok, const char *out, void *arg)
{
	struct cts_ckpt *ck = arg;

	if (!ok || ckpt_result_read(ck, out) != 0) {
		ckpt_dumped(ck, ok ? "bad answer from the encryption" : out);	/* the folder goes */
		return;
	}
	ckpt_dumped(ck, NULL);
}

void
ckpt_result_line(const struct image_result *r, char *out, size_t len)
{
	snprintf(out, len, "%llu %s %u %d %llu", (unsigned long long)r->size, r->sha256, r->nfiles,
	    r->with_sig ? 1 : 0, (unsigned long long)r->seal_ms);
}

int
ckpt_result_read(struct cts_ckpt *ck, const char *out)
{
	unsigned long long size, seal_ms = 0;
	unsigned n;
	int with_sig;

	/* the seal's time (5th) is for the metrics only: a line without it still reads */
	if (sscanf(out, "%llu %64s %u %d %llu", &size, ck->result.sha256, &n, &with_sig,
	    &seal_ms) < 4)
		return -1;
	ck->result.seal_ms = seal_ms;
	ck->result.size = size;
	ck->result.nfiles = n;
	ck->result.with_sig = with_sig == 1;
	return 0;
}

void
ckpt_dump_failed(struct cts_ckpt *ck, const char *code, const char *error)
{
	if (ck->timeout != NULL) {
		event_free(ck->timeout);
		ck->timeout = NULL;
	}
	ckpt_fail(ck, code, error);
}

/* The core service is done: the image is sealed (ck->result), or it failed. */
void
ckpt_dumped(struct cts_ckpt *ck, const char *error)
{
	struct cts *c = ck->cts;
	struct outbox_item *it;
	struct msg_checkpoint_log rec = { 0 };
	char image_name[PATH_MAX], idem[600];

	if (ck->timeout != NULL) {
		event_free(ck->timeout);
		ck->timeout = NULL;
	}
	if (ck->expired) {
		char why[1200];

		/* its worker was killed: say why, not only that it died (and a dump that ended
		 * just then is not taken: its processes were killed midway, perhaps) */
		snprintf(why, sizeof why, "not done within %s (dump_timeout); its processes were "
		    "killed (%s)", ckpt_duration(c->dump_timeout_ms), error ? error : "it ended then");
		ckpt_fail(ck, PROTO_E_REFUSED, why);
		return;
	}
	if (error != NULL) {
		ckpt_fail(ck, PROTO_E_REFUSED, error);
		return;
	}
	if (c->compress_level != 0 && !ck->compressed) {
		/* app and criu compress in their own child (ck->compressed); any other core's
		 * image is compressed here, then encrypted when the site has a key, in one child */
		ck->compressed = true;
		ck->encrypted = c->image_key_id[0] != '\0';
		if (child_run(c, ckpt_pack, ck, ckpt_on_encrypted, ck) != 0)
			ckpt_fail(ck, PROTO_E_INTERNAL, "cannot start the image's compression");
		return;
	}
	if (c->image_key_id[0] != '\0' && !ck->encrypted) {
		ck->encrypted = true;
		if (child_run(c, ckpt_encrypt, ck, ckpt_on_encrypted, ck) != 0)
			ckpt_fail(ck, PROTO_E_INTERNAL, "cannot start the image's encryption");
		return;
	}
	if (!ck->result.with_sig && ckpt_sign(ck) != 0) {
		ckpt_fail(ck, PROTO_E_INTERNAL, "cannot sign the image's manifest (see the log)");
		return;
	}
	/* the image is whole: what follows is the record's, bounded by the GCS link's timeout */
	event_free(ck->dump_timer);
	ck->dump_timer = NULL;
	snprintf(image_name, sizeof image_name, "%s:%s", c->name, ck->image_dir + strlen(c->state) + 1);
	rec = (struct msg_checkpoint_log){ .checkpoint_id = ck->id, .gid = ck->job->gid,
		.cts = c->name, .core_service = c->core->name, .image_name = image_name,
		.exec_manager = c->exec_manager, .sha256 = ck->result.sha256, .kind = ck->kind,
		.time_ms = ck->time_ms, .size = ck->result.size,
		.parent = ck->parent[0] != '\0' ? ck->parent : NULL };
	c->core->properties(c, &rec.properties);
	interval_measured(ck, &rec.properties);	/* its cost; an auto job's next interval */
	for (size_t i = 0; i < ck->properties.n; i++)
		proto_strlist_add(&rec.properties, ck->properties.v[i]);
	if (ck->idem_key != NULL) {
		snprintf(idem, sizeof idem, "idem=%s", ck->idem_key);
		proto_strlist_add(&rec.properties, idem);
	}
	if (ck->encrypted) {
		snprintf(idem, sizeof idem, "image_key=%s", c->image_key_id);
		proto_strlist_add(&rec.properties, idem);	/* the key id on the record */
	}
	ck->dumped_mono_ms = time_mono_ms();
	/* sent once it is durable (outbox_commit); ckpt_recorded hears how it ended */
	it = outbox_add(c, &rec, ckpt_recorded, ck);
	proto_strlist_free(&rec.properties);
	if (it == NULL)
		ckpt_outbox_failed(ck, 0);
}

/*
 * A write that failed (a full or read-only state disk) is the site's to fix, not a bug: the asker
 * gets the cause and `unavailable` (it may pass: retry once there is room). Only a record that
 * could not even be encoded is `internal`.
 */
static const char *
ckpt_outbox_why(int error, char *out, size_t len)
{
	if (error == 0) {
		snprintf(out, len, "cannot encode the record for the outbox");
		return PROTO_E_INTERNAL;
	}
	snprintf(out, len, "%s writing the outbox (the CTS's state folder)%s", strerror(error),
	    error == ENOSPC || error == EDQUOT ? ": the image is not kept; retry once there is room"
	    : "");
	return PROTO_E_UNAVAILABLE;
}

/* ck's record could not be written to the outbox (errno error; 0: not even encoded): ck fails,
 * its asker told why, and its image goes. */
static void
ckpt_outbox_failed(struct cts_ckpt *ck, int error)
{
	char why[400];
	const char *code = ckpt_outbox_why(error, why, sizeof why);

	ckpt_fail(ck, code, why);
}

/* The GCS acknowledged ck's record (seq) or not (code, why). */
static void
ckpt_logged(struct cts_ckpt *ck, uint64_t seq, const char *code, const char *why)
{
	struct cts *c = ck->cts;

	if (code != NULL) {
		/* the image and its outbox record stay: the record is sent again */
		ck->image_dir[0] = '\0';
		ckpt_fail(ck, code, why);
		return;
	}
	log_info("checkpoint %s of %s (%s): seq %llu, %llu bytes", ck->id, ck->job->gid, ck->kind,
	    (unsigned long long)seq, (unsigned long long)ck->result.size);
	cts_metrics_checkpoint(ck, NULL);
	if (ck->req != NULL || ck->nagain > 0) {
		char image_name[PATH_MAX];
		snprintf(image_name, sizeof image_name, "%s:%s", c->name,
		    ck->image_dir + strlen(c->state) + 1);
		struct msg_checkpoint_ok ok = { ck->id, image_name, c->name, seq };
		if (ck->req != NULL)
			proto_reply_ok(ck->req, ck->req->pt->reply, &ok);
		for (int i = 0; i < ck->nagain; i++)
			proto_reply_ok(ck->again[i], ck->again[i]->pt->reply, &ok);
	}
	replica_start(c, ck->job->gid, ck->id, ck->result.sha256);
	ckpt_forget_asked(ck);
	ck->recorded = true;
	ckpt_cleanup(ck);	/* and retention, if the job has too many images */
}

/*
 * The GCS refused the record for good (moved): the GID is bound to another CTS now (a recovery
 * elsewhere while this CTS was away), so this checkpoint will never be one. The outbox dropped
 * the record; its image (an orphan) leaves the store, and the job is no longer watched here.
 */
static void
ckpt_refused(struct cts *c, const struct msg_checkpoint_log *rec, struct cts_ckpt *ck,
	const char *code, const char *msg)
{
	struct cts_job *j = jobs_find(c, rec->gid);
	char dir[PATH_MAX], why[600];

	log_warn("record %s of %s refused by the GCS: %s: dropped, with its image",
	    rec->checkpoint_id, rec->gid, msg);
	if (cts_image_dir(c, rec->gid, rec->checkpoint_id, dir, sizeof dir) == 0)
		retention_remove(c, dir);	/* in a child */
	if (j != NULL && !j->ended)
		jobs_moved(j, msg);
	snprintf(why, sizeof why, "the GCS refused its record: %s", msg);
	if (ck != NULL)
		ckpt_logged(ck, 0, code, why);
	idem_acked(rec, 0, code, why);	/* its retries: the same answer */
}

void
ckpt_recorded(struct cts *c, const struct msg_checkpoint_log *rec, const struct outbox_result *r,
	void *arg)
{
	struct cts_ckpt *ck = arg;
	const char *code;
	char why[600];

	switch (r->outcome) {
	case OUTBOX_STORED:
		if (ck != NULL)
			ckpt_logged(ck, r->seq, NULL, NULL);
		idem_acked(rec, r->seq, NULL, NULL);
		break;
	case OUTBOX_NOT_STORED:
		snprintf(why, sizeof why, "the image is kept, but the GCS has not stored its record "
		    "yet (%s: %s); the CTS sends it again", r->code, r->msg);
		if (ck != NULL)
			ckpt_logged(ck, 0, r->code, why);
		idem_acked(rec, 0, r->code, why);
		break;
	case OUTBOX_REFUSED:
		ckpt_refused(c, rec, ck, r->code, r->msg);
		break;
	case OUTBOX_NOT_KEPT:
		if (ck != NULL)
			ckpt_outbox_failed(ck, r->error);
		code = ckpt_outbox_why(r->error, why, sizeof why);
		idem_acked(rec, 0, code, why);
		break;
	case OUTBOX_STOPPING:
		idem_acked(rec, 0, r->code, r->msg);
		break;
	}
}

/* app: the job's answer to app_save. */
void
ckpt_saved(struct cts_job *j, const struct msg_app_saved *b)
{
	struct cts_ckpt *ck = j->running;

	if (ck == NULL || ck->timeout == NULL || strcmp(ck->id, b->checkpoint_id) != 0) {
		log_warn("job %s answered for checkpoint %s, which no longer waits (too late?)", j->gid,
		    b->checkpoint_id);
		return;
	}
	event_free(ck->timeout);
	ck->timeout = NULL;
	if (b->ok && b->parent != NULL && b->parent[0] != '\0') {
		if (ck->offered[0] == '\0' || strcmp(b->parent, ck->offered) != 0) {
			ckpt_dumped(ck, "the job saved on a parent it was not offered");
			return;
		}
		snprintf(ck->parent, sizeof ck->parent, "%s", ck->offered);	/* incremental */
	}
	j->cts->core->saved(ck, b->ok, b->error);
}

void
ckpt_job_gone(struct cts_job *j)
{
	char why[300];

	snprintf(why, sizeof why, "job %s ended", j->gid);
	while (j->queue != NULL) {
		struct cts_ckpt *ck = j->queue;
		j->queue = ck->next;
		j->nqueued--;
		ckpt_tell(ck, PROTO_E_NOT_FOUND, why);
		ckpt_free(ck);
	}
	/* one waiting for the job's answer will not get it; one being sealed completes */
	if (j->running != NULL && j->running->timeout != NULL)
		ckpt_dumped(j->running, "the job ended before it saved");
}

void
ckpt_job_free(struct cts_job *j)
{
	struct cts_ckpt *ck;

	while ((ck = j->queue) != NULL) {
		j->queue = ck->next;
		ckpt_tell(ck, PROTO_E_UNAVAILABLE, "the CTS is stopping");
		ckpt_free(ck);
	}
	j->nqueued = 0;
	if ((ck = j->running) != NULL) {
		ckpt_tell(ck, PROTO_E_UNAVAILABLE, "the CTS is stopping");
		j->running = NULL;
		ckpt_free(ck);
	}
}

void
ckpt_do_checkpoint(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_do_checkpoint *b = r->body;
	struct cts_job *j = jobs_find(c, b->gid);

	if (j == NULL || j->ended) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "GID %s is not running at CTS %s", b->gid, c->name);
		return;
	}
	ckpt_request(j, "external", r, b->idem_key);
}
