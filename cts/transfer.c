/*
 * Images between CTSes (paper 3.3, 5.3 steps 6-8): one CTS serves image_fetch from its store to
 * another that holds a grant from the GCS (gcs/grant.c, proto/grant.c); the other fetches in a
 * forked child, so its loop keeps answering.
 *
 * Serving: each image_fetch reads at most TRANSFER_CHUNK bytes of one file of the image (the
 * manifest or a path below the image's folder, opened with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS).
 * Flow control is the connection's: a peer whose replies pile up past max_output (libevent write
 * watermark, proto/conn.c) is not read until they drain, so a fetcher can ask ahead but never make
 * the server buffer a whole image.
 *
 * Fetching (transfer_fetch_run): into STATE/incoming/<checkpoint id>/ (0700, this CTS's), never
 * visible as an image. The manifest first: its sha256 must be the record's gcaImageSha256 and its
 * signature the record's taker's, so one hash in the directory covers every file. Then each file
 * it lists, TRANSFER_WINDOW chunks asked ahead; a broken connection resumes from the bytes already
 * on disk, with the same holder only (another starts from nothing, so no file mixes two holders'
 * bytes). Then every file's size and sha256 against the manifest (verify_image): a holder whose
 * copy fails any check is not asked again and the next holder is tried from scratch. Only then one
 * rename into images/, so a partial or altered image is never used.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cts/cts.h"

#define TRANSFER_CHUNK		(512 * 1024)
#define TRANSFER_WINDOW		8
#define TRANSFER_ATTEMPTS	8

/* ---- serving ---- */

/* A relative path without "..", "." or empty parts. */
static bool
transfer_path_ok(const char *p)
{
	const char *s = p;

	if (*p == '\0' || *p == '/' || strlen(p) > 255)
		return false;
	while (*s != '\0') {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
		if (*s == '/')
			s++;
		if (*s == '\0' && s[-1] == '/')
			return false;
	}
	return true;
}

/* The last grant checked, so a fetch of many chunks checks its signature once. */
static char		*transfer_grant_ok;
static struct proto_grant transfer_grant_last;

static int
transfer_grant_check(struct cts *c, const char *token, struct proto_grant *g, char *err,
	size_t errlen)
{
	if (transfer_grant_ok != NULL && strcmp(transfer_grant_ok, token) == 0 &&
	    transfer_grant_last.expires_ms > time_now_ms()) {
		*g = transfer_grant_last;
		return 0;
	}
	if (proto_grant_verify(c->tls.ca, token, time_now_ms(), g, err, errlen) != 0)
		return -1;
	free(transfer_grant_ok);
	transfer_grant_ok = xstrdup(token);
	transfer_grant_last = *g;
	return 0;
}

void
transfer_serve(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_image_fetch *b = r->body;
	struct msg_image_fetch_ok ok = { 0 };
	struct proto_grant g;
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
	char err[512], dir[PATH_MAX];
	struct stat st;
	uint64_t want;
	ssize_t n;
	int dfd, fd;

	if (transfer_grant_check(c, b->grant, &g, err, sizeof err) != 0) {
		log_warn("image_fetch from %s refused: %s", r->peer.name, err);
		proto_reply_err(r, PROTO_E_FORBIDDEN, "%s", err);
		return;
	}
	if (strcmp(g.checkpoint_id, b->checkpoint_id) != 0 || strcmp(g.target, r->peer.name) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "the grant is for checkpoint %s and CTS %s, not "
		    "%s and %s", g.checkpoint_id, g.target, b->checkpoint_id, r->peer.name);
		return;
	}
	if (!transfer_path_ok(b->file)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "file \"%s\" is not a path inside an image",
		    b->file);
		return;
	}
	if (cts_image_dir(c, g.gid, b->checkpoint_id, dir, sizeof dir) != 0 ||
	    (dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "CTS %s does not hold checkpoint %s", c->name,
		    b->checkpoint_id);
		return;
	}
	fd = (int)syscall(SYS_openat2, dfd, b->file, &how, sizeof how);
	close(dfd);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		proto_reply_err(r, PROTO_E_NOT_FOUND, "checkpoint %s has no file %s here",
		    b->checkpoint_id, b->file);
		return;
	}
	if (b->offset > (uint64_t)st.st_size) {
		close(fd);
		proto_reply_err(r, PROTO_E_BAD_FIELD, "offset %llu past the end of %s (%lld bytes)",
		    (unsigned long long)b->offset, b->file, (long long)st.st_size);
		return;
	}
	want = (uint64_t)st.st_size - b->offset;
	if (want > TRANSFER_CHUNK)
		want = TRANSFER_CHUNK;
	if (b->max > 0 && want > b->max)
		want = b->max;
	ok.data.p = xmalloc(want ? want : 1);
	n = want ? pread(fd, ok.data.p, want, (off_t)b->offset) : 0;
	close(fd);
	if (n < 0) {
		free(ok.data.p);
		proto_reply_err(r, PROTO_E_INTERNAL, "cannot read %s of checkpoint %s: %s", b->file,
		    b->checkpoint_id, strerror(errno));
		return;
	}
	ok.data.n = (size_t)n;
	ok.size = (uint64_t)st.st_size;
	ok.eof = b->offset + (uint64_t)n >= (uint64_t)st.st_size;
	proto_reply_ok(r, r->pt->reply, &ok);
	free(ok.data.p);
}

/* ---- fetching, in a child ---- */

struct transfer_conn {
	struct proto_sync	*s;
	uint32_t		 next_id;
	uint64_t		 bytes;		/* received in this fetch */
};

/* GCA_TRANSFER_BREAK_AFTER=N (tests): the first connection is dropped after N bytes, to show a
 * fetch resumes where it stopped. */
static uint64_t transfer_break_after;

static void
transfer_hex(const unsigned char *md, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*
 * Fetches bytes [from, to) of file name into fd (to == 0: until the holder says eof), asking
 * TRANSFER_WINDOW chunks ahead. Returns 0, -1 for a refusal (err says why; no point resuming
 * with this holder), -2 for a broken connection (resume).
 */
static int
transfer_range(struct transfer_conn *tc, const struct transfer_fetch *f, const char *name, int fd,
	uint64_t from, uint64_t to, char *err, size_t errlen)
{
	uint64_t asked = from, got = from;
	unsigned inflight = 0;
	bool eof = false;
	uint32_t first_id = tc->next_id + 1;
	uint64_t offsets[TRANSFER_WINDOW];

	while (!eof && (to == 0 || got < to)) {
		while (inflight < TRANSFER_WINDOW && (to == 0 ? inflight == 0 : asked < to)) {
			struct msg_image_fetch q = { f->id, f->grant, name, asked,
				TRANSFER_CHUNK };
			uint32_t id = ++tc->next_id;
			if (proto_sync_send(tc->s, "image_fetch", id, proto_type_find("image_fetch"),
			    &q) != 0) {
				snprintf(err, errlen, "the connection was closed");
				return -2;
			}
			offsets[(id - first_id) % TRANSFER_WINDOW] = asked;
			asked += TRANSFER_CHUNK;
			inflight++;
		}
		struct proto_msg m;
		if (proto_sync_read(tc->s, 30000, proto_type_find("image_fetch")->reply, &m, err,
		    errlen) != 0)
			return -2;
		uint32_t expect = tc->next_id - inflight + 1;
		if (m.id != expect) {
			proto_msg_free(&m);
			snprintf(err, errlen, "a reply out of order");
			return -2;
		}
		inflight--;
		if (strcmp(m.type, "ok") != 0) {
			const struct msg_err *e = m.body;
			snprintf(err, errlen, "%s: %s", e && e->code ? e->code : "err",
			    e && e->msg ? e->msg : "");
			proto_msg_free(&m);
			return -1;
		}
		const struct msg_image_fetch_ok *ok = m.body;
		uint64_t off = offsets[(m.id - first_id) % TRANSFER_WINDOW];
		if (off != got || (ok->data.n == 0 && !ok->eof) || (to != 0 && ok->size != to)) {
			snprintf(err, errlen, "file %s: the holder sent %zu bytes at %llu of %llu, "
			    "expected %llu of %llu", name, ok->data.n, (unsigned long long)off,
			    (unsigned long long)ok->size, (unsigned long long)got,
			    (unsigned long long)to);
			proto_msg_free(&m);
			return -1;
		}
		if (ok->data.n > 0 && pwrite(fd, ok->data.p, ok->data.n, (off_t)off) !=
		    (ssize_t)ok->data.n) {
			snprintf(err, errlen, "cannot write %.300s: %s", name, strerror(errno));
			proto_msg_free(&m);
			return -3;	/* this disk's fault, not the holder's */
		}
		got += ok->data.n;
		tc->bytes += ok->data.n;
		eof = ok->eof;
		proto_msg_free(&m);
		if (transfer_break_after > 0 && tc->bytes >= transfer_break_after) {
			transfer_break_after = 0;
			snprintf(err, errlen, "dropped on purpose after %llu bytes "
			    "(GCA_TRANSFER_BREAK_AFTER)", (unsigned long long)tc->bytes);
			return -2;
		}
	}
	/* Replies still in flight (to was reached): read and drop them. */
	while (inflight-- > 0) {
		struct proto_msg m;
		if (proto_sync_read(tc->s, 30000, proto_type_find("image_fetch")->reply, &m, err,
		    errlen) != 0)
			return -2;
		proto_msg_free(&m);
	}
	return 0;
}

/* One small file of the image (manifest, manifest.sig), whole, into dir. */
static int
transfer_whole(struct transfer_conn *tc, const struct transfer_fetch *f, const char *dir,
	const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd, rc;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return -3;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
		return -3;
	}
	rc = transfer_range(tc, f, name, fd, 0, 0, err, errlen);
	if (rc == 0 && fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
		rc = -3;
	}
	close(fd);
	return rc;
}

int
transfer_manifest_check(const char *dir, const char *ca, const char *id, const char *sha256,
	const char *signer, uint64_t tls_signed_before_ms, char *err, size_t errlen)
{
	char path[PATH_MAX], *man = NULL, *sig = NULL, hex[65], why[512];
	unsigned char md[32];
	unsigned mdlen = 0;
	size_t mlen, slen;
	int rc = -1;

	if (snprintf(path, sizeof path, "%s/manifest", dir) >= (int)sizeof path ||
	    file_read_all(path, &man, &mlen, 64 * 1024 * 1024) != 0) {
		snprintf(err, errlen, "the manifest of checkpoint %s cannot be read", id);
		return -1;
	}
	EVP_Digest(man, mlen, md, &mdlen, EVP_sha256(), NULL);
	transfer_hex(md, hex);
	if (sha256 != NULL && strcmp(hex, sha256) != 0) {
		snprintf(err, errlen, "the manifest of checkpoint %s has sha256 %.12s..., the record "
		    "says %.12s...: refused", id, hex, sha256[0] ? sha256 : "nothing");
		goto out;
	}
	if (snprintf(path, sizeof path, "%s/manifest.sig", dir) >= (int)sizeof path ||
	    file_read_all(path, &sig, &slen, 64 * 1024) != 0) {
		snprintf(err, errlen, "the manifest of checkpoint %s is refused: its signature "
		    "(manifest.sig) is missing", id);
		goto out;
	}
	/* the holder's signing certificate (one check for every new image); or, for an image
	 * made before CTSes had signing keys, its TLS certificate (docs/DESIGN.md, "Keys"); never
	 * another CTS's or another role's */
	if (proto_sig_check(ca, sig, man, mlen, "sign", signer, why, sizeof why) == 0) {
		rc = 0;
		goto out;
	}
	if (proto_sig_check(ca, sig, man, mlen, "sign|cts", signer, why, sizeof why) != 0) {
		snprintf(err, errlen, "the manifest of checkpoint %s is refused: its signature: %s",
		    id, why);
		goto out;
	}
	/* Signed with a TLS key: only an image older than the site's move to signing keys, or
	 * whoever holds a network side's key could sign images for ever. */
	if (id_time_ms(id) >= tls_signed_before_ms) {
		snprintf(err, errlen, "the manifest of checkpoint %s is refused: it is signed with a "
		    "CTS's TLS key, which is accepted only for checkpoints taken before "
		    "tls_signed_before (cts.conf(5)%s)", id,
		    tls_signed_before_ms == 0 ? ": not set here" : "");
		goto out;
	}
	rc = 0;
out:
	free(man);
	free(sig);
	return rc;
}

/* The manifest and its signature, whole, checked against the record's sha256 and taker. */
static int
transfer_manifest(struct transfer_conn *tc, const struct transfer_fetch *f, const char *dir,
	char *err, size_t errlen)
{
	int rc;

	if ((rc = transfer_whole(tc, f, dir, "manifest", err, errlen)) != 0 ||
	    (rc = transfer_whole(tc, f, dir, "manifest.sig", err, errlen)) != 0)
		return rc;
	return transfer_manifest_check(dir, f->tls.ca, f->id, f->sha256, f->signer,
	    f->tls_signed_before_ms, err, errlen);
}

/* Every file the manifest lists ("file" and "zstd" lines: the stored bytes), each from the bytes
 * already there. */
static int
transfer_files(struct transfer_conn *tc, const struct transfer_fetch *f, const char *dir,
	char *err, size_t errlen)
{
	char path[PATH_MAX], *buf, *line, *save = NULL;
	size_t len;
	int rc = 0;

	/* errors of this disk are -3 (the fetch stops, naming them); -1 only for what the holder
	 * sent (its copy is refused) */
	if (snprintf(path, sizeof path, "%s/manifest", dir) >= (int)sizeof path)
		return -3;
	if (file_read_all(path, &buf, &len, 64 * 1024 * 1024) != 0) {
		snprintf(err, errlen, "cannot read %.300s", path);
		return -3;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL && rc == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		char sha[65], name[PATH_MAX], *slash;
		unsigned long long size;
		struct stat st;
		int n = 0, fd;

		/* "zstd <sha256> <size> <raw size> <path>": a compressed file, fetched as stored */
		if (strncmp(line, "zstd ", 5) == 0) {
			if (sscanf(line, "zstd %64s %llu %*s%n", sha, &size, &n) != 2 || n == 0 ||
			    line[n] != ' ')
				n = 0;
			else
				n++;
		} else if (strncmp(line, "file ", 5) != 0) {
			continue;
		} else if (sscanf(line, "file %64s %llu %n", sha, &size, &n) != 2) {
			n = 0;
		}
		if (n == 0 ||
		    !transfer_path_ok(line + n) ||
		    snprintf(name, sizeof name, "%s/%s", dir, line + n) >= (int)sizeof name) {
			snprintf(err, errlen, "the manifest of checkpoint %s: bad line \"%.80s\"",
			    f->id, line);
			rc = -1;
			break;
		}
		if ((slash = strrchr(name, '/')) != NULL) {
			*slash = '\0';
			file_mkdirs(name, 0700);
			*slash = '/';
		}
		if ((fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
		    fstat(fd, &st) != 0) {
			snprintf(err, errlen, "cannot write %.300s: %s", name, strerror(errno));
			if (fd >= 0)
				close(fd);
			rc = -3;
			break;
		}
		if ((uint64_t)st.st_size > size && ftruncate(fd, 0) == 0)
			st.st_size = 0;
		if ((uint64_t)st.st_size < size) {
			if (st.st_size > 0)
				log_info("fetch of %s: %s resumes at byte %lld of %llu", f->id,
				    line + n, (long long)st.st_size, size);
			rc = transfer_range(tc, f, line + n, fd, (uint64_t)st.st_size, size, err,
			    errlen);
		}
		if (rc == 0 && fsync(fd) != 0) {
			snprintf(err, errlen, "cannot write %.300s: %s", name, strerror(errno));
			rc = -3;
		}
		close(fd);
	}
	free(buf);
	return rc;
}

/*
 * holder is "name@host:port". Whoever answers at host:port must be that CTS (its certificate's CN),
 * not only some CTS of the site: the image is asked from the holder the grant's list names, never
 * from another that took over the address (every test endpoint is 127.0.0.1: an address proves
 * nothing). 0 with *out, -4 no connection (try again later), -1 another CTS answered (refused).
 */
static int
transfer_connect(const struct transfer_fetch *f, const char *holder, struct proto_sync **out,
	char *err, size_t errlen)
{
	const char *at = strrchr(holder, '@');
	struct proto_peer peer = { 0 };
	struct proto_sync *s;

	*out = NULL;
	if (at == NULL || at == holder) {
		snprintf(err, errlen, "holder \"%s\" is not name@host:port", holder);
		return -1;
	}
	if ((s = proto_sync_connect(at + 1, &f->tls, "cts", 15000, err, errlen)) == NULL)
		return -4;
	if (proto_sync_peer(s, &peer) != 0 || strlen(peer.name) != (size_t)(at - holder) ||
	    memcmp(peer.name, holder, (size_t)(at - holder)) != 0) {
		snprintf(err, errlen, "%s answers as CTS %s, not as the holder %.*s", at + 1,
		    peer.name, (int)(at - holder), holder);
		proto_sync_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

/* The fetch's folder, made (or found) 0700 and owned by this CTS (docs/DESIGN.md, "Image store
 * safety"): one left by someone else is not written into. */
static int
transfer_own_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc = -1;

	if (file_mkdirs(dir, 0700) != 0 ||
	    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create %.300s: %s", dir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid())
		snprintf(err, errlen, "%.300s is not owned by this CTS's user", dir);
	else if (fchmod(fd, 0700) != 0)
		snprintf(err, errlen, "%.300s: %s", dir, strerror(errno));
	else
		rc = 0;
	close(fd);
	return rc;
}

/*
 * Bytes in the fetch's folder came from one holder (named in <dir>.holder): a fetch resumes only
 * with that holder, and starts again from nothing with another, so no file is ever made of two
 * holders' bytes.
 */
static int
transfer_start_with(const char *dir, const char *holder, char *err, size_t errlen)
{
	char mark[PATH_MAX + 8], *was = NULL;
	size_t len;
	bool same;

	snprintf(mark, sizeof mark, "%s.holder", dir);
	same = file_read_all(mark, &was, &len, 4096) == 0 && strcmp(was, holder) == 0;
	free(was);
	if (same)
		return 0;
	file_remove_tree(dir);
	if (transfer_own_dir(dir, err, errlen) != 0)
		return -1;
	if (file_write_whole(mark, holder, strlen(holder), 0600) != 0) {
		snprintf(err, errlen, "cannot write %.300s: %s", mark, strerror(errno));
		return -1;
	}
	return 0;
}

/* What a refused holder sent: gone, so nothing of it is resumed or left behind. */
static void
transfer_discard(const char *dir)
{
	char mark[PATH_MAX + 8];

	file_remove_tree(dir);
	snprintf(mark, sizeof mark, "%s.holder", dir);
	unlink(mark);
}

/* One holder: the manifest, every file, then each file against the manifest. -1 refused (the
 * holder's copy is bad: the next one starts from nothing), -2 broken (resume), -3 local error,
 * -4 not reachable. */
static int
transfer_from(struct transfer_conn *tc, const struct transfer_fetch *f, const char *holder,
	const char *dir, char *err, size_t errlen)
{
	struct image_meta m;
	int rc;

	/* connected first: an unreachable holder leaves the bytes of the one before to resume */
	if ((rc = transfer_connect(f, holder, &tc->s, err, errlen)) != 0)
		return rc;
	if (transfer_start_with(dir, holder, err, errlen) != 0) {
		proto_sync_close(tc->s);
		tc->s = NULL;
		return -3;
	}
	rc = transfer_manifest(tc, f, dir, err, errlen);
	if (rc == 0)
		rc = transfer_files(tc, f, dir, err, errlen);
	proto_sync_close(tc->s);
	tc->s = NULL;
	if (rc != 0)
		return rc;
	err[0] = '\0';
	if (verify_image(dir, &m, NULL, (uid_t)-1, (gid_t)-1, err, errlen) != 0 ||
	    strcmp(m.checkpoint_id, f->id) != 0 || strcmp(m.gid, f->gid) != 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "its manifest names another job");
		return -1;
	}
	return 0;
}

/* The verified folder becomes the image: one rename into images/. */
static int
transfer_install(const struct transfer_fetch *f, const char *dir, char *out, size_t outlen)
{
	char parent[PATH_MAX], *slash;

	snprintf(parent, sizeof parent, "%s", f->image_dir);
	if ((slash = strrchr(parent, '/')) != NULL)
		*slash = '\0';
	if (file_mkdirs(parent, 0700) != 0 || rename(dir, f->image_dir) != 0 ||
	    file_fsync_dir(parent) != 0) {
		snprintf(out, outlen, "cannot move the fetched image into %s: %s", f->image_dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
transfer_fetch_run(void *arg, char *out, size_t outlen)
{
	struct transfer_fetch *f = arg;
	struct transfer_conn tc = { 0 };
	char dir[PATH_MAX], path[PATH_MAX + 16], err[1024] = "no holder", refusals[2048] = "";
	const char *env = getenv("GCA_TRANSFER_BREAK_AFTER");
	bool bad[TRANSFER_HOLDERS] = { false };
	int rc = -1, lock;
	size_t h = 0, nbad = 0;
	uint64_t t0 = time_mono_ms(), ms;

	transfer_break_after = env ? strtoull(env, NULL, 10) : 0;
	if (strlen(f->sha256) != 64 || f->signer[0] == '\0') {
		snprintf(out, outlen, "checkpoint %s: no record sha256 or taker to check a copy against",
		    f->id);
		return -1;
	}
	/* One fetch of an id at a time (a recovery and a replica copy may ask at once): the lock
	 * goes with this child's exit. The second finds the image there. */
	if (snprintf(dir, sizeof dir, "%s/incoming/%s.lock", f->state, f->id) >= (int)sizeof dir ||
	    (lock = open(dir, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(lock, LOCK_EX) != 0) {
		snprintf(out, outlen, "cannot lock %.300s", dir);
		return -1;
	}
	if (access(f->image_dir, F_OK) == 0) {
		snprintf(out, outlen, "ok 0 (fetched meanwhile)");
		return 0;
	}
	if (snprintf(dir, sizeof dir, "%s/incoming/%s", f->state, f->id) >= (int)sizeof dir) {
		snprintf(out, outlen, "state folder path too long");
		return -1;
	}
	for (int attempt = 0; attempt < TRANSFER_ATTEMPTS && nbad < f->nholders; attempt++) {
		const char *holder;

		while (bad[h % f->nholders])
			h++;
		holder = f->holders[h % f->nholders];
		rc = transfer_from(&tc, f, holder, dir, err, sizeof err);
		if (rc == 0) {
			ms = time_mono_ms() - t0;
			log_info("fetched checkpoint %s from %s: %llu bytes in %llu ms (%.1f MiB/s)",
			    f->id, holder, (unsigned long long)tc.bytes, (unsigned long long)ms,
			    ms ? (double)tc.bytes / 1048576.0 * 1000.0 / (double)ms : 0.0);
			break;
		}
		if (rc == -3)
			break;
		log_warn("fetch of %s from %s: %s (%s)", f->id, holder, err, rc == -2 ? "resuming" :
		    rc == -4 ? "trying another holder" : "its copy is refused: trying the next holder");
		if (rc == -1) {
			/* this holder's copy is bad: not asked again; the next starts from nothing */
			size_t used = strlen(refusals);
			transfer_discard(dir);
			snprintf(refusals + used, sizeof refusals - used, "%s%.40s: %.400s",
			    used ? "; " : "", holder, err);
			bad[h % f->nholders] = true;
			nbad++;
		} else if (rc == -4) {
			h++;	/* no connection at all: try another, come back later */
		}
	}
	if (rc != 0) {
		if (refusals[0] != '\0')
			snprintf(out, outlen, "the image of checkpoint %s is refused from every holder "
			    "tried: %s", f->id, refusals);
		else
			snprintf(out, outlen, "cannot fetch checkpoint %s from %s: %s", f->id,
			    f->nholders ? f->holders[h % f->nholders] : "any CTS (none holds it)", err);
		return -1;
	}
	if (transfer_install(f, dir, out, outlen) != 0)
		return -1;
	/* dir is "<state>/incoming/<id>", which fits: its marks fit in path */
	snprintf(path, sizeof path, "%.4000s.holder", dir);
	unlink(path);
	snprintf(path, sizeof path, "%.4000s.lock", dir);
	unlink(path);
	snprintf(out, outlen, "ok %llu", (unsigned long long)tc.bytes);
	return 0;
}
