/*
 * restore_prepare (paper 5.3 steps 6-10): gca-recover asks for a checkpoint of a GID, by id or
 * "latest" (the highest sequence number in the directory, asked through the GCS). The CTS checks
 * the caller owns the GID, finds the image in its store, checks its manifest against the record
 * (gcaImageSha256, and manifest.sig by the record's gcaCTSName) and every file against the
 * manifest. For the app core service the verified files are copied into a folder the caller's
 * user owns, since the job reads them itself; root's criu restores read the store, an ordinary
 * user's read a verified copy of root's that the user may read but not change (restore_lend).
 * An image this CTS does not hold is fetched first (transfer.c) from a CTS that does, with a grant
 * from the GCS (image_grant), unless this CTS's descriptor says gcaMigration FALSE.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cts/cts.h"

struct restore_op {
	struct cts		*cts;
	struct proto_req	*r;
	char			 id[ID_LEN + 1];
	uint64_t		 seq;
	char			 image_dir[PATH_MAX], copy[PATH_MAX];
	char			 link[ID_LEN + 1];	/* a missing link of the chain, to fetch */
	/* from the record: the manifest's sha256 and the CTS that took (and signed) it */
	char			 sha256[65], taker[256];
	int			 nfetched;
	struct transfer_fetch	 fetch;
};

#define RESTORE_CHAIN_MAX 1000	/* links of an incremental chain */

static void restore_on_checkpoints(const char *code, const char *msg, const void *body,
	void *arg);

static const char *
restore_attr(const struct proto_entry *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++) {
		if (strcasecmp(e->attrs[i].name, name) == 0 && e->attrs[i].vals.n > 0)
			return e->attrs[i].vals.v[0];
	}
	return NULL;
}

static void
restore_fail(struct restore_op *op, const char *code, const char *fmt, const char *a,
	const char *b)
{
	cts_metrics_restore(code);
	proto_reply_err(op->r, code, fmt, a, b);
	free(op->fetch.grant);
	free(op);
}

/* app and vmm restore as the job's user, from a verified copy that user owns; criu as root. */
static bool
restore_gives_copy(const struct cts *c)
{
	return c->core->keeps_channel || c->core->user_restore;
}

/* One link, dir/name -> target, made again (an earlier restore may have left one). */
static int
restore_symlink(const char *dir, const char *name, const char *target, char *out, size_t len)
{
	char lnk[PATH_MAX + 32];

	snprintf(lnk, sizeof lnk, "%s/%s", dir, name);
	if ((unlink(lnk) != 0 && errno != ENOENT) || symlink(target, lnk) != 0) {
		snprintf(out, len, "cannot link %s to %s: %s", lnk, target, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * criu's "parent" links in one verified folder of a criu image, which the store does not keep
 * (criu restore follows them). With a pre-dump (its manifest lists predump/): parent -> predump,
 * and the pre-dump's own parent -> the parent checkpoint; without: parent -> the parent
 * checkpoint. parent "" = a full image.
 */
static int
restore_criu_links(const char *dir, const char *parent, char *out, size_t len)
{
	char target[ID_LEN + 16];
	int pre;

	if ((pre = manifest_lists_folder(dir, CRIU_PREDUMP_DIR, out, len)) < 0)
		return -1;
	if (pre && restore_symlink(dir, "parent", CRIU_PREDUMP_DIR, out, len) != 0)
		return -1;
	if (parent[0] == '\0')
		return 0;
	snprintf(target, sizeof target, "%s%s", pre ? "../../" : "../", parent);
	return restore_symlink(dir, pre ? CRIU_PREDUMP_DIR "/parent" : "parent", target, out, len);
}

/*
 * In the child, for a criu image: its links made again and, when its manifest names a parent
 * (an incremental image), every link of the chain verified and linked the same way. A link not in
 * the store: "missing <id>", and the CTS fetches it.
 */
static int
restore_chain(struct restore_op *op, const struct image_meta *top, char *out, size_t len)
{
	struct image_meta m = *top;
	struct stat st;
	int n = 0;

	if (restore_criu_links(op->image_dir, m.parent, out, len) != 0)
		return -1;
	while (m.parent[0] != '\0') {
		char pdir[PATH_MAX];

		if (++n > RESTORE_CHAIN_MAX) {
			snprintf(out, len, "checkpoint %s: its chain of parents is longer than %d", op->id,
			    RESTORE_CHAIN_MAX);
			return -1;
		}
		if (cts_image_dir(op->cts, m.gid, m.parent, pdir, sizeof pdir) != 0) {
			snprintf(out, len, "checkpoint %s: no image folder for parent %s", op->id,
			    m.parent);
			return -1;
		}
		if (stat(pdir, &st) != 0) {
			snprintf(out, len, "missing %s", m.parent);
			return -1;
		}
		struct image_meta child = m;
		if (verify_image(pdir, &m, NULL, (uid_t)-1, (gid_t)-1, out, len) != 0)
			return -1;
		if (strcmp(m.checkpoint_id, child.parent) != 0 || strcmp(m.gid, child.gid) != 0) {
			snprintf(out, len, "checkpoint %s: the folder of parent %s holds checkpoint %s of "
			    "%s", op->id, child.parent, m.checkpoint_id, m.gid);
			return -1;
		}
		if (m.key_id[0] != '\0' || strcmp(m.core_service, "criu") != 0 ||
		    manifest_lists_zstd(pdir, out, len) != 0) {
			snprintf(out, len, "checkpoint %s: parent %s of %s is not a plain criu image", op->id,
			    m.checkpoint_id, child.checkpoint_id);
			return -1;
		}
		if (restore_criu_links(pdir, m.parent, out, len) != 0)
			return -1;
	}
	if (n > 0)
		log_info("checkpoint %s: %d parent%s verified", op->id, n, n == 1 ? "" : "s");
	return 0;
}

static uid_t restore_chown_uid;
static gid_t restore_chown_gid;

static int
restore_chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return lchown(path, restore_chown_uid, restore_chown_gid);
}

int
restore_chain_copy(struct cts *c, const char *dir, const char *copy, uid_t uid, gid_t gid,
	char *out, size_t len)
{
	struct image_meta m;
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int n = 0;

	snprintf(src, sizeof src, "%s", dir);
	snprintf(dst, sizeof dst, "%s", copy);
	for (;;) {
		char want[sizeof m.parent], gid_want[sizeof m.gid];
		snprintf(want, sizeof want, "%s", n > 0 ? m.parent : "");
		snprintf(gid_want, sizeof gid_want, "%s", n > 0 ? m.gid : "");
		/* copied as the CTS: the user gets the tree only when it is whole */
		if (verify_image(src, &m, dst, (uid_t)-1, (gid_t)-1, out, len) != 0)
			goto fail;
		if (n > 0 && (strcmp(m.checkpoint_id, want) != 0 || strcmp(m.gid, gid_want) != 0)) {
			snprintf(out, len, "the folder of parent %s holds checkpoint %s of %s", want,
			    m.checkpoint_id, m.gid);
			goto fail;
		}
		if (m.key_id[0] != '\0' && (n > 0 || m.parent[0] != '\0')) {
			snprintf(out, len, "checkpoint %s is incremental and encrypted: not supported",
			    m.checkpoint_id);
			goto fail;
		}
		/* a compressed link is made plain in the copy (its files verified as stored) */
		if (compress_unpack_dir(src, dst, (uid_t)-1, (gid_t)-1, out, len) != 0)
			goto fail;
		if (m.parent[0] == '\0')
			break;
		if (++n > RESTORE_CHAIN_MAX) {
			snprintf(out, len, "the chain of parents of %s is longer than %d", dir,
			    RESTORE_CHAIN_MAX);
			goto fail;
		}
		if (cts_image_dir(c, m.gid, m.parent, src, sizeof src) != 0 ||
		    strlen(dst) + sizeof "/parent" > sizeof dst) {
			snprintf(out, len, "checkpoint %s: no folder for its parent %s",
			    m.checkpoint_id, m.parent);
			goto fail;
		}
		if (stat(src, &st) != 0) {
			snprintf(out, len, "missing %s", m.parent);
			goto fail;
		}
		strcat(dst, "/parent");
	}
	restore_chown_uid = uid;
	restore_chown_gid = gid;
	if (uid != (uid_t)-1 && nftw(copy, restore_chown_one, 16, FTW_PHYS | FTW_DEPTH) != 0) {
		snprintf(out, len, "%s: cannot give it to uid %d: %s", copy, (int)uid,
		    strerror(errno));
		goto fail;
	}
	return 0;
fail:
	file_remove_tree(copy);
	return -1;
}

/*
 * In the child: the image is the one the directory describes, here as after a fetch: its manifest
 * has the record's sha256 and is signed by the CTS that took it, and so is every parent already
 * in the store (a missing one is fetched, and checked, later), so a store edited consistently
 * (file bytes and the manifest's lines) is refused.
 */
static int
restore_check_record(struct restore_op *op, const struct image_meta *top, char *out, size_t len)
{
	struct image_meta m = *top;
	char dir[PATH_MAX];
	int n = 0;

	if (transfer_manifest_check(op->image_dir, op->cts->tls.ca, op->id, op->sha256, op->taker,
	    op->cts->tls_signed_before_ms, out, len) != 0)
		return -1;
	while (m.parent[0] != '\0' && ++n <= RESTORE_CHAIN_MAX) {
		char id[sizeof m.parent];

		snprintf(id, sizeof id, "%s", m.parent);
		if (cts_image_dir(op->cts, m.gid, id, dir, sizeof dir) != 0 || access(dir, F_OK) != 0)
			return 0;
		if (transfer_manifest_check(dir, op->cts->tls.ca, id, NULL, op->taker,
		    op->cts->tls_signed_before_ms, out, len) != 0 ||
		    manifest_read(dir, &m, out, len) != 0)
			return -1;
	}
	return 0;
}

static int
restore_lend_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_SL || lchown(path, 0, restore_chown_gid) != 0)
		return -1;
	return chmod(path, S_ISDIR(st->st_mode) ? 0750 : 0640);
}

/*
 * An ordinary user's criu restore (docs/ARCHITECTURE.md, "The privilege line"): criu runs as that
 * user (gca-criu-helper), so it reads a copy verified here: owned by root, readable by the user's
 * group (0750, files 0640), writable by nobody else, so the owner can change nothing a restore
 * trusts between this check and criu's read. The root-owned marker gca-restore-for says for whom
 * (the helper restores a copy made for its caller's uid only); the top folder is readable last.
 */
static int
restore_lend(const char *copy, uid_t uid, gid_t gid, char *out, size_t len)
{
	char marker[PATH_MAX + 32], text[32];

	snprintf(marker, sizeof marker, "%s/gca-restore-for", copy);
	snprintf(text, sizeof text, "uid %u\n", (unsigned)uid);
	restore_chown_gid = gid;
	if (file_write_whole(marker, text, strlen(text), 0640) != 0 ||
	    nftw(copy, restore_lend_one, 16, FTW_PHYS | FTW_DEPTH) != 0) {
		snprintf(out, len, "%s: cannot lend it to uid %u: %s", copy, (unsigned)uid,
		    strerror(errno));
		file_remove_tree(copy);
		return -1;
	}
	return 0;
}

/* In the child, an ordinary user's criu checkpoint: full images only (the user's own criu could
 * not read an earlier one), verified and copied for the CTS, decrypted, decompressed, then lent
 * (restore_lend). */
static int
restore_verify_user(struct restore_op *op, const struct image_meta *m, char *out, size_t len)
{
	const struct proto_peer *p = &op->r->peer;
	struct cts *c = op->cts;
	int pre = 0;

	if (m->parent[0] != '\0' ||
	    (pre = manifest_lists_folder(op->image_dir, CRIU_PREDUMP_DIR, out, len)) != 0) {
		if (m->parent[0] != '\0' || pre > 0)
			snprintf(out, len, "checkpoint %s is incremental: an ordinary user's restore "
			    "takes full images only", op->id);
		return -1;
	}
	if (m->key_id[0] != '\0' && strcmp(m->key_id, c->image_key_id) != 0) {
		snprintf(out, len, "the image of checkpoint %s is encrypted with site key %s; this CTS "
		    "has %s%s (image_key in cts.conf)", op->id, m->key_id,
		    c->image_key_id[0] ? "key " : "no key", c->image_key_id);
		return -1;
	}
	if (verify_image(op->image_dir, NULL, op->copy, (uid_t)-1, (gid_t)-1, out, len) != 0)
		return -1;
	if ((m->key_id[0] != '\0' && crypt_decrypt_dir(op->image_dir, op->copy, c->image_key,
	    (uid_t)-1, (gid_t)-1, out, len) != 0) ||
	    compress_unpack_dir(op->image_dir, op->copy, (uid_t)-1, (gid_t)-1, out, len) != 0) {
		file_remove_tree(op->copy);
		return -1;
	}
	if (restore_lend(op->copy, p->uid, p->gid, out, len) != 0)
		return -1;
	snprintf(out, len, "ok lent");
	return 0;
}

/* In the child: every file against the manifest, and the copy for the job's user. */
/* An encrypted or compressed image is verified as stored, copied for the CTS, decrypted,
 * decompressed, and only then given to the job's user (app) or to gca-recover as root (criu):
 * "ok plain" or "ok decrypted" (a copy, made plain). */
static int
restore_verify(void *arg, char *out, size_t len)
{
	struct restore_op *op = arg;
	const struct proto_peer *p = &op->r->peer;
	struct image_meta m;
	struct cts *c = op->cts;
	int zstd;

	if (manifest_read(op->image_dir, &m, out, len) != 0 ||
	    restore_check_record(op, &m, out, len) != 0 ||
	    (zstd = manifest_lists_zstd(op->image_dir, out, len)) < 0)
		return -1;
	if (!restore_gives_copy(c) && p->uid != 0)
		return restore_verify_user(op, &m, out, len);
	if (m.key_id[0] == '\0' && (zstd == 0 || restore_gives_copy(c))) {
		bool app = restore_gives_copy(c);
		/* the chain's copy makes each compressed link plain */
		if (app && (m.parent[0] != '\0' || zstd > 0)) {
			if (restore_chain_copy(c, op->image_dir, op->copy, p->uid, p->gid, out, len) != 0)
				return -1;
			snprintf(out, len, "ok plain");
			return 0;
		}
		if (verify_image(op->image_dir, NULL, app ? op->copy : NULL, app ? p->uid : (uid_t)-1,
		    app ? p->gid : (gid_t)-1, out, len) != 0)
			return -1;
		if (!app && restore_chain(op, &m, out, len) != 0)
			return -1;
		snprintf(out, len, "ok plain");
		return 0;
	}
	if (m.parent[0] != '\0') {
		snprintf(out, len, "checkpoint %s is incremental and %s: not supported", op->id,
		    m.key_id[0] != '\0' ? "encrypted" : "compressed");
		return -1;
	}
	/* the decrypted copy would lack criu's link to the pre-dump (cts.conf refuses both) */
	int pre = restore_gives_copy(c) ? 0 : manifest_lists_folder(op->image_dir, CRIU_PREDUMP_DIR,
	    out, len);
	if (pre != 0) {
		if (pre > 0)
			snprintf(out, len, "checkpoint %s has a pre-dump and is %s: not supported",
			    op->id, m.key_id[0] != '\0' ? "encrypted" : "compressed");
		return -1;
	}
	if (m.key_id[0] != '\0' && strcmp(m.key_id, c->image_key_id) != 0) {
		snprintf(out, len, "the image of checkpoint %s is encrypted with site key %s; this CTS "
		    "has %s%s (image_key in cts.conf)", op->id, m.key_id,
		    c->image_key_id[0] ? "key " : "no key", c->image_key_id);
		return -1;
	}
	if (verify_image(op->image_dir, NULL, op->copy, (uid_t)-1, (gid_t)-1, out, len) != 0)
		return -1;
	/* decrypted first, then decompressed (compressed first, then encrypted), then given */
	if ((m.key_id[0] != '\0' && crypt_decrypt_dir(op->image_dir, op->copy, c->image_key,
	    (uid_t)-1, (gid_t)-1, out, len) != 0) ||
	    compress_unpack_dir(op->image_dir, op->copy, restore_gives_copy(c) ? p->uid : (uid_t)-1,
	    restore_gives_copy(c) ? p->gid : (gid_t)-1, out, len) != 0) {
		file_remove_tree(op->copy);
		return -1;
	}
	snprintf(out, len, "ok decrypted");
	return 0;
}

static void
restore_on_verified(bool ok, const char *out, void *arg)
{
	struct restore_op *op = arg;
	bool copied = restore_gives_copy(op->cts) || strcmp(out, "ok decrypted") == 0 ||
	    strcmp(out, "ok lent") == 0;
	struct msg_restore_ok reply = { op->id, copied ? op->copy : op->image_dir,
		op->cts->core->name, op->seq };

	if (!ok && strncmp(out, "missing ", 8) == 0 && op->nfetched < RESTORE_CHAIN_MAX) {
		/* a link of an incremental chain is not here: its record, a grant, a fetch */
		struct msg_restore_prepare *b = op->r->body;
		snprintf(op->link, sizeof op->link, "%s", out + 8);
		log_info("checkpoint %s: fetching its parent %s", op->id, op->link);
		struct msg_query cq = { .what = "checkpoints", .gid = b->gid, .limit = 99999 };
		gcslink_request(op->cts, "query", &cq, restore_on_checkpoints, op);
		return;
	}
	if (!ok) {
		static struct log_limit refused;	/* any local user may ask again and again */

		if (access(op->copy, F_OK) == 0)
			retention_remove(op->cts, op->copy);	/* in a child */
		log_limited(&refused, LOG_WARN, "restore of %s refused: %s", op->id, out);
		restore_fail(op, PROTO_E_REFUSED, "%s%s", out, "");
		return;
	}
	log_info("checkpoint %s (seq %llu) verified for recovery by pid %d", op->id,
	    (unsigned long long)op->seq, (int)op->r->peer.pid);
	cts_metrics_restore("ok");
	proto_reply_ok(op->r, op->r->pt->reply, &reply);
	free(op->fetch.grant);
	free(op);
}

/* The image is in the store: verify it (and copy it for an app job's user) in a child. */
static void
restore_start_verify(struct restore_op *op)
{
	/* app, vmm: a copy for the job's user; criu: used only for an encrypted image */
	snprintf(op->copy, sizeof op->copy, "%s/staging/restore-%d-%s", op->cts->state,
	    (int)op->r->peer.pid, op->id);
	if (child_run(op->cts, restore_verify, op, restore_on_verified, op) != 0)
		restore_fail(op, PROTO_E_INTERNAL, "cannot start the image check%s%s", "", "");
}

static void
restore_on_fetched(bool ok, const char *out, void *arg)
{
	struct restore_op *op = arg;

	cts_metrics_fetch(ok ? "ok" : "failed");
	if (!ok) {
		log_warn("restore of %s: %s", op->id, out);
		restore_fail(op, PROTO_E_UNAVAILABLE, "%s%s", out, "");
		return;
	}
	log_info("checkpoint %s fetched and verified (%s)", op->fetch.id, out);
	replica_located(op->cts, op->fetch.gid, op->fetch.id);
	op->nfetched++;
	free(op->fetch.grant);
	op->fetch.grant = NULL;
	op->fetch.nholders = 0;
	restore_start_verify(op);
}

static void
restore_on_grant(const char *code, const char *msg, const void *body, void *arg)
{
	struct restore_op *op = arg;
	const struct msg_image_grant_ok *g = body;
	struct transfer_fetch *f = &op->fetch;

	if (code != NULL) {
		restore_fail(op, code, "the GCS gives no grant to fetch checkpoint %s: %s", f->id,
		    msg);
		return;
	}
	for (size_t i = 0; i < g->holders.n && f->nholders < TRANSFER_HOLDERS; i++)
		snprintf(f->holders[f->nholders++], sizeof f->holders[0], "%s", g->holders.v[i]);
	if (f->nholders == 0) {
		restore_fail(op, PROTO_E_NOT_FOUND, "no other CTS known to the GCS holds checkpoint "
		    "%s%s", f->id, "");
		return;
	}
	f->grant = xstrdup(g->grant);
	snprintf(f->state, sizeof f->state, "%s", op->cts->state);
	f->tls = op->cts->tls;
	log_info("fetching checkpoint %s from %s", f->id, f->holders[0]);
	if (child_run(op->cts, transfer_fetch_run, f, restore_on_fetched, op) != 0)
		restore_fail(op, PROTO_E_INTERNAL, "cannot start the fetch%s%s", "", "");
}

static void
restore_on_checkpoints(const char *code, const char *msg, const void *body, void *arg)
{
	struct restore_op *op = arg;
	struct msg_restore_prepare *b = op->r->body;
	const struct msg_query_ok *q = body;
	const struct proto_entry *found = NULL;
	const char *holder, *seq, *want = op->link[0] != '\0' ? op->link : b->checkpoint;
	struct stat st;

	if (code != NULL) {
		restore_fail(op, code, "cannot read the checkpoints from the GCS: %s%s", msg, "");
		return;
	}
	for (size_t i = 0; i < q->entries.n && found == NULL; i++) {
		const char *id = restore_attr(&q->entries.v[i], "gcaCheckpointId");
		if (strcmp(want, "latest") == 0 || (id && strcmp(id, want) == 0))
			found = &q->entries.v[i];
	}
	if (found == NULL || restore_attr(found, "gcaCheckpointId") == NULL) {
		if (op->link[0] != '\0')
			restore_fail(op, PROTO_E_NOT_FOUND, "checkpoint %s needs its parent %s, which "
			    "has no record in the directory (expired?)", op->id, op->link);
		else
			restore_fail(op, PROTO_E_NOT_FOUND, "GID %s has no checkpoint %s in the "
			    "directory", b->gid, b->checkpoint);
		return;
	}
	holder = restore_attr(found, "gcaCTSName");
	if (op->link[0] == '\0' && op->cts->core->restore_check != NULL) {
		/* an image this resource cannot run is refused before it is fetched (vmm: machine) */
		static const struct proto_strlist none;
		const struct proto_strlist *props = &none;
		char why[600];
		for (size_t i = 0; i < found->n; i++)
			if (strcasecmp(found->attrs[i].name, "gcaProperty") == 0)
				props = &found->attrs[i].vals;
		if (op->cts->core->restore_check(op->cts, props, why, sizeof why) != 0) {
			restore_fail(op, PROTO_E_REFUSED, "checkpoint %s cannot be resumed here: %s",
			    restore_attr(found, "gcaCheckpointId"), why);
			return;
		}
	}
	if (op->link[0] == '\0') {
		interval_seed(op->cts, b->gid, found);	/* the recovered job goes on from its costs */
		snprintf(op->id, sizeof op->id, "%s", restore_attr(found, "gcaCheckpointId"));
		seq = restore_attr(found, "gcaSequenceNumber");
		op->seq = seq ? strtoull(seq, NULL, 10) : 0;
		snprintf(op->sha256, sizeof op->sha256, "%s",
		    restore_attr(found, "gcaImageSha256") ? restore_attr(found, "gcaImageSha256") : "");
		snprintf(op->taker, sizeof op->taker, "%s", holder ? holder : "");
		if (cts_image_dir(op->cts, b->gid, op->id, op->image_dir, sizeof op->image_dir) != 0) {
			restore_fail(op, PROTO_E_BAD_FIELD, "GID %s: no image folder for it%s", b->gid,
			    "");
			return;
		}
		if (stat(op->image_dir, &st) == 0) {
			restore_start_verify(op);
			return;
		}
	}
	/* Not here: fetch it from a CTS that holds it (another resource, or a replica). */
	if (holder != NULL && strcmp(holder, op->cts->name) != 0 && !op->cts->reg.migrate) {
		restore_fail(op, PROTO_E_REFUSED, "checkpoint %s was taken by CTS %s and this CTS's "
		    "descriptor says gcaMigration FALSE: it restores only its own jobs", op->id,
		    holder);
		return;
	}
	struct transfer_fetch *f = &op->fetch;
	snprintf(f->id, sizeof f->id, "%s", restore_attr(found, "gcaCheckpointId"));
	if (cts_image_dir(op->cts, b->gid, f->id, f->image_dir, sizeof f->image_dir) != 0) {
		restore_fail(op, PROTO_E_BAD_FIELD, "GID %s: no image folder for it%s", b->gid, "");
		return;
	}
	snprintf(f->gid, sizeof f->gid, "%s", b->gid);
	snprintf(f->signer, sizeof f->signer, "%s", holder ? holder : "");
	f->tls_signed_before_ms = op->cts->tls_signed_before_ms;
	const char *sha = restore_attr(found, "gcaImageSha256");
	snprintf(f->sha256, sizeof f->sha256, "%s", sha ? sha : "");
	struct msg_image_grant gq = { f->id, op->cts->name };
	gcslink_request(op->cts, "image_grant", &gq, restore_on_grant, op);
}

static void
restore_on_job(const char *code, const char *msg, const void *body, void *arg)
{
	struct restore_op *op = arg;
	struct msg_restore_prepare *b = op->r->body;
	const struct msg_query_ok *q = body;
	const char *owner;
	char user[64];

	if (code != NULL) {
		restore_fail(op, code, "cannot ask the GCS about GID %s: %s", b->gid, msg);
		return;
	}
	if (q->entries.n == 0) {
		restore_fail(op, PROTO_E_NOT_FOUND, "unknown GID %s%s", b->gid, "");
		return;
	}
	owner = restore_attr(&q->entries.v[0], "gcaOwner");
	user_name(op->r->peer.uid, user, sizeof user);
	if (op->r->peer.uid != 0 && (owner == NULL || strcmp(owner, user) != 0)) {
		restore_fail(op, PROTO_E_FORBIDDEN, "GID %s belongs to %s", b->gid,
		    owner ? owner : "nobody");
		return;
	}
	struct msg_query cq = { .what = "checkpoints", .gid = b->gid,
		.limit = strcmp(b->checkpoint, "latest") == 0 ? 1 : 99999 };
	gcslink_request(op->cts, "query", &cq, restore_on_checkpoints, op);
}

void
restore_prepare(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_restore_prepare *b = r->body;
	struct restore_op *op;

	if (!name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID");
		return;
	}
	if (strcmp(b->checkpoint, "latest") != 0 && !id_valid(b->checkpoint)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "checkpoint must be a checkpoint id or latest, "
		    "not \"%s\"", b->checkpoint);
		return;
	}
	if (c->unavailable[0] != '\0') {
		proto_reply_err(r, PROTO_E_UNAVAILABLE, "core service %s: %s", c->core->name,
		    c->unavailable);
		return;
	}
	if (!c->core->keeps_channel && !c->core->user_restore && r->peer.uid != 0) {
		char why[400];

		if (c->core->user_job == NULL) {
			proto_reply_err(r, PROTO_E_FORBIDDEN, "a %s restore runs as root: run "
			    "gca-recover as root", c->core->name);
			return;
		}
		if (c->core->user_job(c, r->peer.uid, why, sizeof why) != 0) {
			proto_reply_err(r, PROTO_E_FORBIDDEN, "uid %u is not root: %s",
			    (unsigned)r->peer.uid, why);
			return;
		}
	}
	op = xcalloc(1, sizeof *op);
	op->cts = c;
	op->r = r;
	struct msg_query jq = { .what = "jobs", .gid = b->gid, .limit = 1 };
	gcslink_request(c, "query", &jq, restore_on_job, op);
}

/*
 * The copies restore_prepare made (staging/restore-PID-ID) for a caller that is gone without
 * binding a job to it: a resume that failed (QEMU refused the image, the gate never answered).
 * The caller cannot remove it (staging is ours), and a bound job's copy goes when the job ends.
 */
void
restore_sweep(struct cts *c)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/staging", c->state);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int pid;
		bool claimed = false;

		if (sscanf(e->d_name, "restore-%d-", &pid) != 1 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;	/* its caller still runs (and may bind, or be a zombie) */
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		for (struct cts_job *j = c->jobs; j != NULL && !claimed; j = j->next)
			claimed = j->restore_dir != NULL && strcmp(j->restore_dir, path) == 0;
		if (claimed)
			continue;
		log_info("removing %s: its caller, pid %d, is gone and bound no job to it", path, pid);
		retention_remove(c, path);	/* in a child; asked once while under way */
	}
	closedir(d);
}
