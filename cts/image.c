/*
 * cts/image.c: the image store's copy and seal. Copies a job's image files into a folder the CTS
 * owns (app images, encrypted as they are copied when the site has a key), or seals what criu or
 * QEMU wrote there: one walk hashes every file (manifest.c then writes the manifest) and fsyncs
 * every file and folder. The helpers it shares with the store's other files (the file list,
 * opening beneath a folder, hashing a stream) are in cts/store.c; a seal of root's criu dump
 * takes what cts/tail.c hashed while criu wrote it and reads each file on from there. See
 * cts/image.h for the folder layout, the manifest format and why the store is seven files.
 *
 * A job's staging folder is hostile ground: the job can swap a file for a symlink, a fifo or a
 * hard link to someone else's file at any moment. So every open below it goes through openat2
 * with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS relative to the folder, and what was opened is checked
 * with fstat on the descriptor, never on the name. Hashes are taken of the bytes we copied.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

/* One walk over a source folder, for image_store_copy (copy != 0) or image_store_seal. */
struct image_walk {
	const char		*src;		/* for messages */
	int			 srcfd;		/* base of every openat2 */
	int			 copy;
	const unsigned char	*key;		/* copying: encrypt with it (image_store_copy_encrypted) */
	int			 level;		/* copying: compress at it first, 0 = not */
	const char		*id;		/* the checkpoint's, for the encryption's AD */
	struct image_list	*files;
	uint64_t		 left;		/* bytes the walk may still read (image_store_copy_small) */
	size_t			 left_entries;	/* files and folders it may still meet */
	struct image_tail	*tail;		/* sealing: files hashed while written (tail.c) */
	bool			 list_only;	/* sealing: files listed with their sizes, not read */
	unsigned char		*buf;
	char			*err;
	size_t			 errlen;
};

static const char *
image_type_name(mode_t mode)
{
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISFIFO(mode))
		return "a fifo";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file or folder";
}

/* Copying with a key: the file is written encrypted from its first byte and the stored bytes are
 * hashed, so no plain copy of it is ever in the image folder. 0 or -1 with err set. */
static int
image_walk_encrypt(struct image_walk *w, int in, int out, const char *rel, uint64_t *size,
    char sha256[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc;

	errno = 0;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		rc = -1;
	else
		rc = crypt_encrypt_stream(in, out, w->key, w->id, rel, ctx, size);
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -1;
	EVP_MD_CTX_free(ctx);
	if (rc == -2)
		return store_fail(w->err, w->errlen, "%s/%s: encrypting the copy: %s", w->src, rel,
		    strerror(errno));
	if (rc == -3)
		return store_fail(w->err, w->errlen, "%s/%s: shrank while it was copied, refused",
		    w->src, rel);
	if (rc != 0)
		return store_fail(w->err, w->errlen, "%s/%s: the cipher or the hash failed", w->src,
		    rel);
	store_hex(md, sha256);
	return 0;
}

/*
 * Copying with compression: the file is written as one zstd frame, encrypted when the walk has a
 * key (the frame then goes through an unnamed file of dstfd first, so no plain copy is ever named
 * in the image folder); the stored bytes are hashed. 0 or -1 with err set.
 */
static int
image_walk_compress(struct image_walk *w, int in, int out, int dstfd, const char *rel,
    uint64_t *size, uint64_t *raw, char sha256[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t z;
	int tmp = -1, rc;

	errno = 0;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		rc = -1;
	else if (w->key == NULL)
		rc = compress_stream(in, out, w->level, UINT64_MAX, ctx, NULL, raw, size);
	else if ((tmp = openat(dstfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0)
		rc = -2;
	else if ((rc = compress_stream(in, tmp, w->level, UINT64_MAX, NULL, NULL, raw, &z)) == 0)
		rc = lseek(tmp, 0, SEEK_SET) != 0 ? -2 :
		    crypt_encrypt_stream(tmp, out, w->key, w->id, rel, ctx, size);
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -1;
	EVP_MD_CTX_free(ctx);
	if (tmp >= 0)
		close(tmp);
	if (rc == -2)
		return store_fail(w->err, w->errlen, "%s/%s: compressing the copy: %s", w->src, rel,
		    strerror(errno));
	if (rc == -3)
		return store_fail(w->err, w->errlen, "%s/%s: shrank while it was copied, refused",
		    w->src, rel);
	if (rc != 0)
		return store_fail(w->err, w->errlen, "%s/%s: zstd, the cipher or the hash failed",
		    w->src, rel);
	store_hex(md, sha256);
	return 0;
}

/* One regular file of a walk: hashed, and copied as name into dstfd when copying. */
static int
image_walk_file(struct image_walk *w, const char *rel, int dstfd, const char *name)
{
	char sha256[65];
	uint64_t size, raw = 0;
	struct stat st;
	int in, out = -1, rc;

	if (w->files->n >= IMAGE_MAX_FILES)
		return store_fail(w->err, w->errlen, "%s/%s: more than %d files in the image, refused",
		    w->src, rel, IMAGE_MAX_FILES);
	/* O_NONBLOCK: a file swapped for a fifo after the readdir must not hang the open. */
	if ((in = store_open_beneath(w->srcfd, rel, O_RDONLY | O_NONBLOCK)) < 0)
		return store_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, store_open_error(errno));
	if (fstat(in, &st) != 0) {
		rc = store_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = store_fail(w->err, w->errlen, "%s/%s: %s, refused", w->src, rel,
		    image_type_name(st.st_mode));
		goto done;
	}
	/* A hard link could make a file the job cannot read part of its image, readable later. */
	if (w->copy && st.st_nlink != 1) {
		rc = store_fail(w->err, w->errlen, "%s/%s: has %lu hard links, refused", w->src, rel,
		    (unsigned long)st.st_nlink);
		goto done;
	}
	if (w->copy) {
		out = openat(dstfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0 || fchmod(out, 0600) != 0) {
			rc = store_fail(w->err, w->errlen, "image copy of %s/%s: %s", w->src, rel,
			    strerror(errno));
			goto done;
		}
	}
	if (w->list_only) {	/* image_store_seal_packed reads it once, later */
		static const char none[65];	/* its sha256 comes with that read */

		rc = store_list_add(w->files, rel, (uint64_t)st.st_size, none) != 0 ?
		    store_fail(w->err, w->errlen, "%s/%s: out of memory", w->src, rel) : 0;
		goto done;
	}
	/* Sealing: the file's writeback starts now and runs while it is hashed, so the fsync below
	 * waits for less (criu and QEMU leave their files to the page cache). */
	if (!w->copy)
		(void)sync_file_range(in, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (w->level != 0) {
		if ((rc = image_walk_compress(w, in, out, dstfd, rel, &size, &raw, sha256)) != 0)
			goto done;
	} else if (w->key != NULL) {
		if ((rc = image_walk_encrypt(w, in, out, rel, &size, sha256)) != 0)
			goto done;
	} else if (!w->copy && (rc = image_tail_take(w->tail, rel, &st, &size, sha256)) != 1) {
		if (rc != 0) {
			rc = store_fail(w->err, w->errlen, "%s/%s: %s: %s", w->src, rel,
			    rc == -1 ? "reading" : "hashing", strerror(errno));
			goto done;
		}
	} else if ((rc = store_pump_max(in, out, w->buf, w->left, &size, sha256)) != 0) {
		if (rc == -4)
			rc = store_fail(w->err, w->errlen, "%s: over its bound", w->src);
		else
			rc = store_fail(w->err, w->errlen, "%s/%s: %s: %s", w->src, rel,
			    rc == -1 ? "reading" : rc == -2 ? "writing the copy" : "hashing",
			    strerror(errno));
		goto done;
	}
	if (w->left != UINT64_MAX)
		w->left -= size;
	/* Sealing: criu wrote the file but need not have flushed it. */
	if (fsync(out >= 0 ? out : in) != 0) {
		rc = store_fail(w->err, w->errlen, "%s/%s: fsync: %s", w->src, rel, strerror(errno));
		goto done;
	}
	if (store_list_add(w->files, rel, size, sha256) != 0) {
		rc = store_fail(w->err, w->errlen, "%s/%s: out of memory", w->src, rel);
	} else if (w->level != 0) {
		w->files->v[w->files->n - 1].zstd = true;
		w->files->v[w->files->n - 1].raw = raw;
	}
done:
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = store_fail(w->err, w->errlen, "image copy of %s/%s: %s", w->src, rel,
		    strerror(errno));
	close(in);
	return rc;
}

static int image_walk_dir(struct image_walk *w, const char *rel, int depth, int dstfd);

/* One subfolder of a walk: its copy is made 0700 in dstfd first when copying. */
static int
image_walk_subdir(struct image_walk *w, const char *rel, int depth, int dstfd, const char *name)
{
	int sub = -1, rc;

	if (depth > IMAGE_MAX_DEPTH)
		return store_fail(w->err, w->errlen, "%s/%s: folders nested deeper than %d, refused",
		    w->src, rel, IMAGE_MAX_DEPTH);
	if (w->copy) {
		if (mkdirat(dstfd, name, 0700) != 0 ||
		    (sub = openat(dstfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
		    fchmod(sub, 0700) != 0) {
			rc = store_fail(w->err, w->errlen, "image copy of %s/%s: %s", w->src, rel,
			    strerror(errno));
			if (sub >= 0)
				close(sub);
			return rc;
		}
	}
	rc = image_walk_dir(w, rel, depth, sub);
	if (sub >= 0)
		close(sub);
	return rc;
}

/* The manifest, its signature, and file_write_whole's temp files for them. */
static bool
image_reserved(int depth, const char *name)
{
	return depth == 0 &&
	    (strcmp(name, "manifest") == 0 || strncmp(name, "manifest.tmp.", 13) == 0 ||
	    strcmp(name, "manifest.sig") == 0 || strncmp(name, "manifest.sig.tmp.", 17) == 0);
}

/* The folder rel of the source (depth 0 = the top), copied into dstfd when copying. */
static int
image_walk_dir(struct image_walk *w, const char *rel, int depth, int dstfd)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = store_open_beneath(w->srcfd, rel[0] != '\0' ? rel : ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return store_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, store_open_error(errno));
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return store_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, strerror(errno));
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		char child[PATH_MAX];
		struct stat st;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (w->left_entries-- == 0) {
			rc = store_fail(w->err, w->errlen, "%s: more files and folders than its bound",
			    w->src);
			break;
		}
		/* Sealing again replaces the manifest (or a temp file left by a crash). */
		if (!w->copy && image_reserved(depth, name))
			continue;
		if (snprintf(child, sizeof child, "%s%s%s", rel, rel[0] != '\0' ? "/" : "", name) >=
		    (int)sizeof child) {
			rc = store_fail(w->err, w->errlen, "%s/%s/%s: path too long, refused", w->src,
			    rel, name);
		} else if (strchr(name, '\n') != NULL || strlen(name) > NAME_MAX) {
			rc = store_fail(w->err, w->errlen, "%s/%s: a name with a newline or over %d "
			    "bytes, refused", w->src, child, NAME_MAX);
		} else if (image_reserved(depth, name)) {
			rc = store_fail(w->err, w->errlen, "%s/%s: the name is reserved for the image "
			    "store's manifest, refused", w->src, name);
		} else if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = store_fail(w->err, w->errlen, "%s/%s: %s", w->src, child, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = image_walk_subdir(w, child, depth + 1, dstfd, name);
		} else if (S_ISREG(st.st_mode)) {
			rc = image_walk_file(w, child, dstfd, name);
		} else {
			rc = store_fail(w->err, w->errlen, "%s/%s: %s, refused", w->src, child,
			    image_type_name(st.st_mode));
		}
	}
	if (rc == 0 && errno != 0)
		rc = store_fail(w->err, w->errlen, "%s/%s: reading the folder: %s", w->src, rel,
		    strerror(errno));
	/* The folder that now holds the files: the copy's when copying, the source's when sealing.
	 * The top one is fsynced once its manifest is in it too (manifest_write). */
	if (rc == 0 && depth > 0 && fsync(dstfd >= 0 ? dstfd : dirfd(d)) != 0)
		rc = store_fail(w->err, w->errlen, "%s/%s: fsync: %s", w->src, rel, strerror(errno));
	closedir(d);
	return rc;
}


/* The folder that holds path, so that path's own entry can be fsynced. */
static int
image_parent(const char *path, char *out, size_t outlen)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	while (len > 0 && path[len - 1] != '/')
		len--;
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len == 0)
		return snprintf(out, outlen, ".") >= (int)outlen ? -1 : 0;
	if (len >= outlen)
		return -1;
	memcpy(out, path, len);
	out[len] = '\0';
	return 0;
}

/* Walks src (copying into dstfd when >= 0, encrypted with key when not NULL), then writes
 * top/manifest; top is dst or src. */
static int
image_store(const char *src, int dstfd, const char *top, const struct image_meta *m,
    const unsigned char *key, int level, uint64_t max_bytes, size_t max_entries,
    struct image_tail *tail, struct image_result *r, char *err, size_t errlen)
{
	struct image_list files = { 0 };
	struct image_walk w = { .src = src, .copy = dstfd >= 0, .key = key, .level = level,
	    .id = m->checkpoint_id,
	    .files = &files, .left = max_bytes, .left_entries = max_entries, .tail = tail, .err = err,
	    .errlen = errlen };
	char parent[PATH_MAX];
	int rc;

	if ((w.srcfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return store_fail(err, errlen, "image folder %s: %s", src, strerror(errno));
	if ((w.buf = malloc(IMAGE_BUF)) == NULL) {
		close(w.srcfd);
		return store_fail(err, errlen, "image folder %s: out of memory", src);
	}
	rc = image_walk_dir(&w, "", 0, dstfd);
	if (rc == 0)
		rc = manifest_write(top, m, &files, r, err, errlen);
	if (rc == 0 && (image_parent(top, parent, sizeof parent) != 0 ||
	    file_fsync_dir(parent) != 0))
		rc = store_fail(err, errlen, "fsync of the folder holding %s: %s", top,
		    strerror(errno));
	store_list_free(&files);
	free(w.buf);
	close(w.srcfd);
	return rc;
}

static int
image_store_copy_with(const char *src, const char *dst, const struct image_meta *m,
    const unsigned char *key, int level, uint64_t max_bytes, size_t max_entries,
    struct image_result *r, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	int dstfd, rc;

	if (manifest_meta_check(m, err, errlen) != 0)
		return -1;
	if ((key != NULL) != (m->key_id[0] != '\0'))
		return store_fail(err, errlen, "image of checkpoint %s: a key id without a key, or a "
		    "key without its id", m->checkpoint_id);
	if (image_parent(dst, parent, sizeof parent) != 0 || file_mkdirs(parent, 0700) != 0)
		return store_fail(err, errlen, "image folder %s: creating its parent: %s", dst,
		    strerror(errno));
	if (mkdir(dst, 0700) != 0)
		return store_fail(err, errlen, "image folder %s: %s", dst,
		    errno == EEXIST ? "already exists" : strerror(errno));
	dstfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dstfd < 0 || fchmod(dstfd, 0700) != 0) {
		rc = store_fail(err, errlen, "image folder %s: %s", dst, strerror(errno));
	} else {
		uint64_t t0 = time_mono_ms();

		rc = image_store(src, dstfd, dst, m, key, level, max_bytes, max_entries, NULL, r,
		    err, errlen);
		r->seal_ms = time_mono_ms() - t0;
	}
	if (dstfd >= 0)
		close(dstfd);
	if (rc != 0)
		file_remove_tree(dst);
	return rc;
}

int
image_store_copy(const char *src, const char *dst, const struct image_meta *m,
    struct image_result *r, char *err, size_t errlen)
{
	if (m->key_id[0] != '\0')
		return store_fail(err, errlen, "image of checkpoint %s: an encrypted copy needs its "
		    "key (image_store_copy_encrypted)", m->checkpoint_id);
	return image_store_copy_with(src, dst, m, NULL, 0, UINT64_MAX, SIZE_MAX, r, err, errlen);
}

int
image_store_copy_small(const char *src, const char *dst, const struct image_meta *m,
    uint64_t max_bytes, size_t max_entries, struct image_result *r, char *err, size_t errlen)
{
	if (m->key_id[0] != '\0')
		return store_fail(err, errlen, "image of checkpoint %s: an encrypted copy needs its "
		    "key (image_store_copy_encrypted)", m->checkpoint_id);
	return image_store_copy_with(src, dst, m, NULL, 0, max_bytes, max_entries, r, err, errlen);
}

int
image_store_copy_encrypted(const char *src, const char *dst, const struct image_meta *m,
    const unsigned char key[IMAGE_KEY_LEN], struct image_result *r, char *err, size_t errlen)
{
	return image_store_copy_with(src, dst, m, key, 0, UINT64_MAX, SIZE_MAX, r, err, errlen);
}

int
image_store_copy_packed(const char *src, const char *dst, const struct image_meta *m, int level,
    const unsigned char *key, struct image_result *r, char *err, size_t errlen)
{
	if (level < 1 || level > 19)
		return store_fail(err, errlen, "image of checkpoint %s: zstd level %d is not 1..19",
		    m->checkpoint_id, level);
	return image_store_copy_with(src, dst, m, key, level, UINT64_MAX, SIZE_MAX, r, err, errlen);
}

int
image_store_seal(const char *dir, const struct image_meta *m, struct image_result *r,
    char *err, size_t errlen)
{
	return image_store_seal_tailed(dir, m, NULL, r, err, errlen);
}

int
image_store_seal_tailed(const char *dir, const struct image_meta *m, struct image_tail *tail,
    struct image_result *r, char *err, size_t errlen)
{
	if (manifest_meta_check(m, err, errlen) != 0)
		return -1;
	uint64_t t0 = time_mono_ms();
	int rc;

	image_tail_stop(tail);	/* the writer is done: what is left of each file is hashed here */
	rc = image_store(dir, -1, dir, m, NULL, 0, UINT64_MAX, SIZE_MAX, tail, r, err, errlen);
	r->seal_ms = time_mono_ms() - t0;
	return rc;
}


/*
 * One file of an image packed in place (image_store_pack, image_store_seal_packed): compressed
 * into name.pack.tmp (hashed as it is written), or, with a key, into an unnamed file and then
 * encrypted into name.pack.tmp; renamed over the file once fsynced. A file zstd cannot make
 * smaller stays as it is (encrypted with a key); with hash_in its sha256 comes from the same
 * read, and it is fsynced (it was never sealed). f is updated to what is stored.
 */
static int
image_pack_file(int topfd, const struct image_meta *m, struct image_file *f, int level,
    const unsigned char *key, bool hash_in, char *err, size_t errlen)
{
	char folder[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(f->path, '/'), *name = slash != NULL ? slash + 1 : f->path;
	unsigned char md[EVP_MAX_MD_SIZE], imd[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, imdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *ictx = hash_in ? EVP_MD_CTX_new() : NULL;
	uint64_t raw = 0, zsize = 0, size = 0;
	int pfd = -1, in = -1, z = -1, o = -1, rc = -1;
	bool packed = false;
	struct stat st;

	snprintf(folder, sizeof folder, "%.*s", slash != NULL ? (int)(slash - f->path) : 1,
	    slash != NULL ? f->path : ".");
	if (snprintf(tmp, sizeof tmp, "%s.pack.tmp", name) >= (int)sizeof tmp || ctx == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || (hash_in && (ictx == NULL ||
	    EVP_DigestInit_ex(ictx, EVP_sha256(), NULL) != 1))) {
		store_fail(err, errlen, "image file %s: path too long or out of memory", f->path);
		goto out;
	}
	errno = 0;
	if ((pfd = store_open_beneath(topfd, folder, O_RDONLY | O_DIRECTORY)) < 0 ||
	    (in = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(in, &st) != 0 ||
	    (key != NULL && (z = openat(pfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0) ||
	    (o = openat(pfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		store_fail(err, errlen, "image file %s: %s", f->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->size) {
		store_fail(err, errlen, "image file %s: %llu bytes, its listing says %llu", f->path,
		    (unsigned long long)st.st_size, (unsigned long long)f->size);
		goto out;
	}
	(void)sync_file_range(in, 0, 0, SYNC_FILE_RANGE_WRITE);	/* kept ones: fsync waits less */
	rc = compress_stream(in, key != NULL ? z : o, level, f->size, key != NULL ? NULL : ctx,
	    ictx, &raw, &zsize);
	packed = rc == 0 && zsize < raw;
	if (rc == 0 && key != NULL) {
		int src = packed ? z : in;
		rc = lseek(src, 0, SEEK_SET) != 0 ? -2 :
		    crypt_encrypt_stream(src, o, key, m->checkpoint_id, f->path, ctx, &size);
	} else if (rc == 0 && !packed) {
		rc = 1;		/* kept as it is */
	}
	size = key != NULL ? size : zsize;
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -1;
	if (rc == 1 && hash_in && (EVP_DigestFinal_ex(ictx, imd, &imdlen) != 1 || imdlen != 32))
		rc = -1;
	if (rc == 1 && hash_in && fsync(in) != 0)
		rc = -2;
	if (rc == 0 && (fsync(o) != 0 || renameat(pfd, tmp, pfd, name) != 0))
		rc = -2;
	if (rc >= 0 && slash != NULL && fsync(pfd) != 0)
		rc = -2;
	if (rc < 0)
		store_fail(err, errlen, "image file %s of checkpoint %s: %s", f->path,
		    m->checkpoint_id, rc == -2 ? strerror(errno) : rc == -3 ?
		    "changed while it was compressed" : "zstd, the cipher or the hash failed");
	if (rc == 0) {
		store_hex(md, f->sha256);
		f->size = size;
		f->zstd = packed;
		f->raw = packed ? raw : 0;
	} else if (rc == 1 && hash_in) {
		store_hex(imd, f->sha256);
	}
out:
	if (rc != 0 && o >= 0)
		unlinkat(pfd, tmp, 0);
	if (o >= 0)
		close(o);
	if (z >= 0)
		close(z);
	if (in >= 0)
		close(in);
	if (pfd >= 0)
		close(pfd);
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(ictx);
	return rc < 0 ? -1 : 0;
}

int
image_store_pack(const char *dir, const struct image_meta *m, int level, const unsigned char *key,
    struct image_result *r, char *err, size_t errlen)
{
	struct image_meta was;
	struct image_list l;
	uint64_t t0 = time_mono_ms();
	int topfd, rc = 0;

	if (manifest_meta_check(m, err, errlen) != 0)
		return -1;
	if ((key != NULL) != (m->key_id[0] != '\0') || level < 1 || level > 19)
		return store_fail(err, errlen, "image of checkpoint %s: a key id without a key (or a "
		    "key without its id), or zstd level %d not 1..19", m->checkpoint_id, level);
	if (manifest_parse(dir, &was, &l, err, errlen) != 0)
		return -1;
	if (strcmp(was.checkpoint_id, m->checkpoint_id) != 0 || was.key_id[0] != '\0') {
		store_list_free(&l);
		return store_fail(err, errlen, "image folder %s: holds checkpoint %s%s, not a plain "
		    "one of %s", dir, was.checkpoint_id, was.key_id[0] ? " (encrypted)" : "",
		    m->checkpoint_id);
	}
	if ((topfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		store_list_free(&l);
		return store_fail(err, errlen, "image folder %s: %s", dir, strerror(errno));
	}
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = l.v[i].zstd ? store_fail(err, errlen, "image file %s: compressed already",
		    l.v[i].path) : image_pack_file(topfd, m, &l.v[i], level, key, false, err,
		    errlen);
	close(topfd);
	if (rc == 0)
		rc = manifest_write(dir, m, &l, r, err, errlen);
	r->seal_ms = time_mono_ms() - t0;
	store_list_free(&l);
	return rc;
}

int
image_store_seal_packed(const char *dir, const struct image_meta *m, int level,
    const unsigned char *key, struct image_result *r, char *err, size_t errlen)
{
	struct image_list files = { 0 };
	struct image_walk w = { .src = dir, .copy = 0, .id = m->checkpoint_id, .files = &files,
	    .left = UINT64_MAX, .left_entries = SIZE_MAX, .list_only = true, .err = err,
	    .errlen = errlen };
	char parent[PATH_MAX];
	uint64_t t0 = time_mono_ms();
	int rc;

	if (manifest_meta_check(m, err, errlen) != 0)
		return -1;
	if ((key != NULL) != (m->key_id[0] != '\0') || level < 1 || level > 19)
		return store_fail(err, errlen, "image of checkpoint %s: a key id without a key (or a "
		    "key without its id), or zstd level %d not 1..19", m->checkpoint_id, level);
	if ((w.srcfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return store_fail(err, errlen, "image folder %s: %s", dir, strerror(errno));
	/* the same walk and refusals as a seal, listing only: each file is read once, below */
	rc = image_walk_dir(&w, "", 0, -1);
	for (size_t i = 0; rc == 0 && i < files.n; i++)
		rc = image_pack_file(w.srcfd, m, &files.v[i], level, key, true, err, errlen);
	close(w.srcfd);
	if (rc == 0)
		rc = manifest_write(dir, m, &files, r, err, errlen);
	if (rc == 0 && (image_parent(dir, parent, sizeof parent) != 0 ||
	    file_fsync_dir(parent) != 0))
		rc = store_fail(err, errlen, "fsync of the folder holding %s: %s", dir,
		    strerror(errno));
	r->seal_ms = time_mono_ms() - t0;
	store_list_free(&files);
	return rc;
}
