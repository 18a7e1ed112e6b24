/*
 * cts/compress.c: image compression (cts.conf `compress zstd [LEVEL]`), with Debian's libzstd.
 * Like encryption (crypt.c) it is a transform of each stored file, made before the seal and
 * undone on a restore's copy after the copy was verified; it comes first (compress, then
 * encrypt), since ciphertext does not compress. image.c compresses an app image as it copies it
 * and a criu image in place after the dump (image_store_pack); a restore's copy is made plain
 * again here (compress_unpack_dir).
 *
 * A compressed file is one zstd frame (with zstd's own checksum of its content), listed in the
 * manifest as "zstd <sha256> <stored size> <raw size> <path>": the sha256 and size are of the
 * stored bytes, what is fetched and verified; the raw size bounds what a restore writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/common.h"
#include "cts/image.h"

/* Writes what zstd put out, into the hash of what is stored when hash != NULL. */
static int
compress_emit(int out, EVP_MD_CTX *hash, const ZSTD_outBuffer *o, uint64_t *stored)
{
	if (o->pos == 0)
		return 0;
	if (hash != NULL && EVP_DigestUpdate(hash, o->dst, o->pos) != 1)
		return -1;
	*stored += o->pos;
	return store_write_all(out, o->dst, o->pos) != 0 ? -2 : 0;
}

int
compress_stream(int in, int out, int level, uint64_t pledged, EVP_MD_CTX *hash, EVP_MD_CTX *inhash,
    uint64_t *raw, uint64_t *stored)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	unsigned char *ibuf = malloc(IMAGE_BUF), *obuf = malloc(IMAGE_BUF);
	int rc = -1;

	*raw = *stored = 0;
	if (z == NULL || ibuf == NULL || obuf == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1)) ||
	    (pledged != UINT64_MAX && ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(z, pledged))))
		goto out;
	for (;;) {
		ssize_t n = store_read_full(in, ibuf, IMAGE_BUF);
		ZSTD_inBuffer i = { ibuf, n > 0 ? (size_t)n : 0, 0 };
		ZSTD_EndDirective mode = n == IMAGE_BUF ? ZSTD_e_continue : ZSTD_e_end;
		size_t left;

		if (n < 0) {
			rc = -2;
			goto out;
		}
		*raw += (uint64_t)n;
		if (inhash != NULL && n > 0 && EVP_DigestUpdate(inhash, ibuf, (size_t)n) != 1)
			goto out;
		if (pledged != UINT64_MAX && *raw > pledged) {
			rc = -3;	/* grew while it was read */
			goto out;
		}
		do {
			ZSTD_outBuffer o = { obuf, IMAGE_BUF, 0 };

			left = ZSTD_compressStream2(z, &o, &i, mode);
			if (ZSTD_isError(left)) {
				rc = pledged != UINT64_MAX && *raw != pledged ? -3 : -1;
				goto out;
			}
			if ((rc = compress_emit(out, hash, &o, stored)) != 0)
				goto out;
		} while (mode == ZSTD_e_end ? left != 0 : i.pos < i.size);
		rc = -1;
		if (mode == ZSTD_e_end)
			break;
	}
	rc = 0;
out:
	ZSTD_freeCCtx(z);
	free(ibuf);
	free(obuf);
	return rc;
}

/* One call of zstd's decoder on i, what it gave (got bytes) written to out after written of
 * raw: NULL, or why not (zstd's error, more bytes than raw, a write). Output is capped one byte
 * past what is left, so a frame that would write more than the manifest says stops here. */
static const char *
compress_unstep(ZSTD_DCtx *z, ZSTD_inBuffer *i, int out, uint64_t raw, unsigned char *obuf,
    uint64_t *written, size_t *last, size_t *got)
{
	uint64_t room = raw - *written + 1;
	ZSTD_outBuffer o = { obuf, room < IMAGE_BUF ? (size_t)room : IMAGE_BUF, 0 };

	*last = ZSTD_decompressStream(z, &o, i);
	*got = o.pos;
	if (ZSTD_isError(*last))
		return ZSTD_getErrorName(*last);
	if (*written + o.pos > raw)
		return "decompresses to more bytes than the manifest says";
	if (store_write_all(out, obuf, o.pos) != 0)
		return strerror(errno);
	*written += o.pos;
	return NULL;
}

/*
 * in (stored bytes) into out: exactly raw bytes or a message. Output is capped one byte past
 * what is left, so a frame that would write more than the manifest says stops before it does.
 */
static const char *
compress_unstream(int in, int out, uint64_t raw, unsigned char *ibuf, unsigned char *obuf)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	uint64_t written = 0;
	size_t last = 1, got = 0;
	bool any = false;
	const char *why = NULL;

	if (z == NULL)
		return "out of memory";
	for (;;) {
		ssize_t n = store_read_full(in, ibuf, IMAGE_BUF);
		ZSTD_inBuffer i = { ibuf, n > 0 ? (size_t)n : 0, 0 };

		if (n < 0) {
			why = strerror(errno);
			break;
		}
		if (n == 0)
			break;
		any = true;
		while (i.pos < i.size && why == NULL)
			why = compress_unstep(z, &i, out, raw, obuf, &written, &last, &got);
		if (why != NULL)
			break;
	}
	/* the last frame may still hold bytes zstd has not given out: ask until it says done */
	while (why == NULL && any && last != 0) {
		ZSTD_inBuffer i = { ibuf, 0, 0 };

		why = compress_unstep(z, &i, out, raw, obuf, &written, &last, &got);
		if (why == NULL && got == 0)
			why = "the zstd frame is cut short";
	}
	if (why == NULL && !any)
		why = "empty, not a zstd frame";
	if (why == NULL && written != raw)
		why = "decompresses to fewer bytes than the manifest says";
	ZSTD_freeDCtx(z);
	return why;
}

/* One listed file of files_dir made plain: into name.unzst.tmp, renamed over it. */
static int
compress_unpack_file(int dirfd, const struct image_meta *m, const struct image_file *f,
    unsigned char *ibuf, unsigned char *obuf, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	const char *why = NULL;
	int in, o = -1, rc = -1;

	if (snprintf(tmp, sizeof tmp, "%s.unzst.tmp", f->path) >= (int)sizeof tmp)
		return store_fail(err, errlen, "image file %s: path too long", f->path);
	if ((in = store_open_beneath(dirfd, f->path, O_RDONLY)) < 0 ||
	    (o = store_open_beneath(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC)) < 0 ||
	    fchmod(o, 0600) != 0) {
		store_fail(err, errlen, "image file %s of checkpoint %s: %s", f->path,
		    m->checkpoint_id, strerror(errno));
		goto out;
	}
	if ((why = compress_unstream(in, o, f->raw, ibuf, obuf)) != NULL)
		store_fail(err, errlen, "image file %s of checkpoint %s: does not decompress: %s "
		    "(%llu bytes)", f->path, m->checkpoint_id, why, (unsigned long long)f->raw);
	else if (renameat(dirfd, tmp, dirfd, f->path) != 0)
		store_fail(err, errlen, "image file %s: %s", f->path, strerror(errno));
	else
		rc = 0;
out:
	if (rc != 0 && o >= 0)
		unlinkat(dirfd, tmp, 0);
	if (in >= 0)
		close(in);
	if (o >= 0)
		close(o);
	return rc;
}

int
compress_unpack_dir(const char *manifest_dir, const char *files_dir, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	struct image_meta m;
	struct image_list l;
	unsigned char *ibuf = NULL, *obuf = NULL;
	int dirfd, rc = 0;

	if (manifest_parse(manifest_dir, &m, &l, err, errlen) != 0)
		return -1;
	if ((dirfd = open(files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		store_list_free(&l);
		return store_fail(err, errlen, "image folder %s: %s", files_dir, strerror(errno));
	}
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		if (!l.v[i].zstd)
			continue;
		if (ibuf == NULL && ((ibuf = malloc(IMAGE_BUF)) == NULL ||
		    (obuf = malloc(IMAGE_BUF)) == NULL))
			rc = store_fail(err, errlen, "image folder %s: out of memory", files_dir);
		else
			rc = compress_unpack_file(dirfd, &m, &l.v[i], ibuf, obuf, err, errlen);
	}
	if (rc == 0)
		rc = store_give(dirfd, &l, uid, gid, files_dir, err, errlen);
	close(dirfd);
	free(ibuf);
	free(obuf);
	store_list_free(&l);
	return rc;
}
