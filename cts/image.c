/*
 * The image store: copies a job's image files into a folder the CTS owns (or seals what criu
 * wrote there), hashes them, writes the manifest, verifies an image before it is used again, and
 * removes old images. See cts/image.h for the folder layout and the manifest format.
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
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

#define IMAGE_BUF (1024 * 1024)
#define IMAGE_MANIFEST_MAX (64 * 1024 * 1024)

struct image_file {
	char		*path;		/* relative to the image's top folder */
	uint64_t	 size;
	char		 sha256[65];
};

struct image_list {
	struct image_file	*v;
	size_t			 n, cap;
};

/* One walk over a source folder, for image_store_copy (copy != 0) or image_store_seal. */
struct image_walk {
	const char		*src;		/* for messages */
	int			 srcfd;		/* base of every openat2 */
	int			 copy;
	const unsigned char	*key;		/* copying: encrypt with it (image_store_copy_encrypted) */
	const char		*id;		/* the checkpoint's, for the encryption's AD */
	struct image_list	*files;
	unsigned char		*buf;
	char			*err;
	size_t			 errlen;
};

static int GCA_PRINTF(3, 4)
image_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void
image_list_free(struct image_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int
image_list_add(struct image_list *l, const char *path, uint64_t size, const char *sha256)
{
	struct image_file *f;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct image_file *v = realloc(l->v, cap * sizeof *v);

		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	f = &l->v[l->n];
	if ((f->path = strdup(path)) == NULL)
		return -1;
	f->size = size;
	memcpy(f->sha256, sha256, 65);
	l->n++;
	return 0;
}

static int
image_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct image_file *)a)->path, ((const struct image_file *)b)->path);
}

/* Opens rel below base; fails with ELOOP on any symlink and EXDEV on any way out of base. */
static int
image_open_beneath(int base, const char *rel, int flags)
{
	struct open_how how;

	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
	return (int)syscall(SYS_openat2, base, rel, &how, sizeof how);
}

static const char *
image_open_error(int e)
{
	switch (e) {
	case ELOOP:
		return "a symbolic link, refused";
	case EXDEV:
		return "leads outside the image folder, refused";
	case ENOENT:
		return "missing";
	default:
		return strerror(e);
	}
}

static int
image_write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
image_hex(const unsigned char *md, char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

static int
image_sha256(const void *buf, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	image_hex(md, out);
	return 0;
}

/*
 * Reads in to its end, hashing, and writes every byte to out when out >= 0.
 * Returns 0, -1 on a read error, -2 on a write error, -3 if hashing failed (errno kept).
 */
static int
image_pump(int in, int out, unsigned char *buf, uint64_t *size, char sha256[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = 0;

	*size = 0;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -3;
	}
	for (;;) {
		ssize_t n = read(in, buf, IMAGE_BUF);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rc = -3;
			break;
		}
		if (out >= 0 && image_write_all(out, buf, (size_t)n) != 0) {
			rc = -2;
			break;
		}
		*size += (uint64_t)n;
	}
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -3;
	if (rc == 0)
		image_hex(md, sha256);
	EVP_MD_CTX_free(ctx);
	return rc;
}

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

static int image_seal_stream(int in, int out, const unsigned char *site_key, const char *id,
    const char *path, EVP_MD_CTX *hash, uint64_t *size);

/* Copying with a key: the file is written encrypted from its first byte and the stored bytes are
 * hashed, so no plain copy of it is ever in the image folder. 0 or -1 with err set. */
static int
image_walk_seal(struct image_walk *w, int in, int out, const char *rel, uint64_t *size,
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
		rc = image_seal_stream(in, out, w->key, w->id, rel, ctx, size);
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -1;
	EVP_MD_CTX_free(ctx);
	if (rc == -2)
		return image_fail(w->err, w->errlen, "%s/%s: encrypting the copy: %s", w->src, rel,
		    strerror(errno));
	if (rc == -3)
		return image_fail(w->err, w->errlen, "%s/%s: shrank while it was copied, refused",
		    w->src, rel);
	if (rc != 0)
		return image_fail(w->err, w->errlen, "%s/%s: the cipher or the hash failed", w->src,
		    rel);
	image_hex(md, sha256);
	return 0;
}

/* One regular file of a walk: hashed, and copied as name into dstfd when copying. */
static int
image_walk_file(struct image_walk *w, const char *rel, int dstfd, const char *name)
{
	char sha256[65];
	uint64_t size;
	struct stat st;
	int in, out = -1, rc;

	if (w->files->n >= IMAGE_MAX_FILES)
		return image_fail(w->err, w->errlen, "%s/%s: more than %d files in the image, refused",
		    w->src, rel, IMAGE_MAX_FILES);
	/* O_NONBLOCK: a file swapped for a fifo after the readdir must not hang the open. */
	if ((in = image_open_beneath(w->srcfd, rel, O_RDONLY | O_NONBLOCK)) < 0)
		return image_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, image_open_error(errno));
	if (fstat(in, &st) != 0) {
		rc = image_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = image_fail(w->err, w->errlen, "%s/%s: %s, refused", w->src, rel,
		    image_type_name(st.st_mode));
		goto done;
	}
	/* A hard link could make a file the job cannot read part of its image, readable later. */
	if (w->copy && st.st_nlink != 1) {
		rc = image_fail(w->err, w->errlen, "%s/%s: has %lu hard links, refused", w->src, rel,
		    (unsigned long)st.st_nlink);
		goto done;
	}
	if (w->copy) {
		out = openat(dstfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0 || fchmod(out, 0600) != 0) {
			rc = image_fail(w->err, w->errlen, "image copy of %s/%s: %s", w->src, rel,
			    strerror(errno));
			goto done;
		}
	}
	if (w->key != NULL) {
		if ((rc = image_walk_seal(w, in, out, rel, &size, sha256)) != 0)
			goto done;
	} else if ((rc = image_pump(in, out, w->buf, &size, sha256)) != 0) {
		rc = image_fail(w->err, w->errlen, "%s/%s: %s: %s", w->src, rel,
		    rc == -1 ? "reading" : rc == -2 ? "writing the copy" : "hashing",
		    strerror(errno));
		goto done;
	}
	/* Sealing: criu wrote the file but need not have flushed it. */
	if (fsync(out >= 0 ? out : in) != 0) {
		rc = image_fail(w->err, w->errlen, "%s/%s: fsync: %s", w->src, rel, strerror(errno));
		goto done;
	}
	if (image_list_add(w->files, rel, size, sha256) != 0)
		rc = image_fail(w->err, w->errlen, "%s/%s: out of memory", w->src, rel);
done:
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = image_fail(w->err, w->errlen, "image copy of %s/%s: %s", w->src, rel,
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
		return image_fail(w->err, w->errlen, "%s/%s: folders nested deeper than %d, refused",
		    w->src, rel, IMAGE_MAX_DEPTH);
	if (w->copy) {
		if (mkdirat(dstfd, name, 0700) != 0 ||
		    (sub = openat(dstfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
		    fchmod(sub, 0700) != 0) {
			rc = image_fail(w->err, w->errlen, "image copy of %s/%s: %s", w->src, rel,
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

	fd = image_open_beneath(w->srcfd, rel[0] != '\0' ? rel : ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return image_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, image_open_error(errno));
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return image_fail(w->err, w->errlen, "%s/%s: %s", w->src, rel, strerror(errno));
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		char child[PATH_MAX];
		struct stat st;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		/* Sealing again replaces the manifest (or a temp file left by a crash). */
		if (!w->copy && image_reserved(depth, name))
			continue;
		if (snprintf(child, sizeof child, "%s%s%s", rel, rel[0] != '\0' ? "/" : "", name) >=
		    (int)sizeof child) {
			rc = image_fail(w->err, w->errlen, "%s/%s/%s: path too long, refused", w->src,
			    rel, name);
		} else if (strchr(name, '\n') != NULL || strlen(name) > NAME_MAX) {
			rc = image_fail(w->err, w->errlen, "%s/%s: a name with a newline or over %d "
			    "bytes, refused", w->src, child, NAME_MAX);
		} else if (image_reserved(depth, name)) {
			rc = image_fail(w->err, w->errlen, "%s/%s: the name is reserved for the image "
			    "store's manifest, refused", w->src, name);
		} else if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = image_fail(w->err, w->errlen, "%s/%s: %s", w->src, child, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = image_walk_subdir(w, child, depth + 1, dstfd, name);
		} else if (S_ISREG(st.st_mode)) {
			rc = image_walk_file(w, child, dstfd, name);
		} else {
			rc = image_fail(w->err, w->errlen, "%s/%s: %s, refused", w->src, child,
			    image_type_name(st.st_mode));
		}
	}
	if (rc == 0 && errno != 0)
		rc = image_fail(w->err, w->errlen, "%s/%s: reading the folder: %s", w->src, rel,
		    strerror(errno));
	/* The folder that now holds the files: the copy's when copying, the source's when sealing.
	 * The top one is fsynced once its manifest is in it too (image_manifest_write). */
	if (rc == 0 && depth > 0 && fsync(dstfd >= 0 ? dstfd : dirfd(d)) != 0)
		rc = image_fail(w->err, w->errlen, "%s/%s: fsync: %s", w->src, rel, strerror(errno));
	closedir(d);
	return rc;
}

static int
image_meta_check(const struct image_meta *m, char *err, size_t errlen)
{
	size_t gidlen = strnlen(m->gid, sizeof m->gid);
	size_t svclen = strnlen(m->core_service, sizeof m->core_service);

	if (!id_valid(m->checkpoint_id))
		return image_fail(err, errlen, "image: checkpoint id \"%.64s\" is not an id",
		    m->checkpoint_id);
	if (gidlen == 0 || gidlen >= sizeof m->gid || memchr(m->gid, '\n', gidlen) != NULL)
		return image_fail(err, errlen, "image of checkpoint %s: the GID is empty, too long "
		    "or has a newline", m->checkpoint_id);
	if (svclen == 0 || svclen >= sizeof m->core_service)
		return image_fail(err, errlen, "image of checkpoint %s: bad core service name",
		    m->checkpoint_id);
	for (size_t i = 0; i < svclen; i++)
		if ((unsigned char)m->core_service[i] <= ' ' || m->core_service[i] == 0x7f)
			return image_fail(err, errlen, "image of checkpoint %s: bad core service "
			    "name", m->checkpoint_id);
	if (m->parent[0] != '\0' && !id_valid(m->parent))
		return image_fail(err, errlen, "image of checkpoint %s: parent \"%.64s\" is not an id",
		    m->checkpoint_id, m->parent);
	return 0;
}

/* Sorts the files, writes dir/manifest whole (and its signature, when m says how), fsyncs dir and
 * fills r. */
static int
image_manifest_write(const char *dir, const struct image_meta *m, struct image_list *l,
    struct image_result *r, char *err, size_t errlen)
{
	char path[PATH_MAX], *text = NULL, *sig = NULL;
	size_t len = 0;
	uint64_t total = 0;
	FILE *f;
	int rc = 0;

	if (snprintf(path, sizeof path, "%s/manifest", dir) >= (int)sizeof path)
		return image_fail(err, errlen, "%s/manifest: path too long", dir);
	qsort(l->v, l->n, sizeof *l->v, image_file_cmp);
	if ((f = open_memstream(&text, &len)) == NULL)
		return image_fail(err, errlen, "%s: out of memory", path);
	fprintf(f, "gca-manifest 1\ncheckpoint %s\ngid %s\ncore_service %s\nparent %s\n"
	    "time_ms %llu\n", m->checkpoint_id, m->gid, m->core_service,
	    m->parent[0] != '\0' ? m->parent : "-", (unsigned long long)m->time_ms);
	if (m->key_id[0] != '\0')
		fprintf(f, "key %s\n", m->key_id);
	for (size_t i = 0; i < l->n; i++) {
		fprintf(f, "file %s %llu %s\n", l->v[i].sha256, (unsigned long long)l->v[i].size,
		    l->v[i].path);
		total += l->v[i].size;
	}
	if (fclose(f) != 0 || text == NULL) {
		free(text);
		return image_fail(err, errlen, "%s: out of memory", path);
	}
	r->with_sig = false;
	if (m->sign != NULL && m->sign(m->sign_arg, text, len, &sig, err, errlen) != 0)
		rc = -1;
	else if (file_write_whole_batch(path, text, len, 0600) != 0)
		rc = image_fail(err, errlen, "%s: %s", path, strerror(errno));
	else if (sig != NULL && (snprintf(path, sizeof path, "%s/manifest.sig", dir) >=
	    (int)sizeof path || file_write_whole_batch(path, sig, strlen(sig), 0600) != 0))
		rc = image_fail(err, errlen, "%s: %s", path, strerror(errno));
	/* one folder fsync seals the files copied in, the manifest and its signature */
	else if (file_fsync_dir(dir) != 0)
		rc = image_fail(err, errlen, "%s: fsync: %s", dir, strerror(errno));
	else if (image_sha256(text, len, r->sha256) != 0)
		rc = image_fail(err, errlen, "%s: sha256 failed", path);
	r->with_sig = rc == 0 && sig != NULL;
	r->size = total;
	r->nfiles = (unsigned)l->n;
	free(text);
	free(sig);
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
    const unsigned char *key, struct image_result *r, char *err, size_t errlen)
{
	struct image_list files = { 0 };
	struct image_walk w = { .src = src, .copy = dstfd >= 0, .key = key, .id = m->checkpoint_id,
	    .files = &files, .err = err, .errlen = errlen };
	char parent[PATH_MAX];
	int rc;

	if ((w.srcfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return image_fail(err, errlen, "image folder %s: %s", src, strerror(errno));
	if ((w.buf = malloc(IMAGE_BUF)) == NULL) {
		close(w.srcfd);
		return image_fail(err, errlen, "image folder %s: out of memory", src);
	}
	rc = image_walk_dir(&w, "", 0, dstfd);
	if (rc == 0)
		rc = image_manifest_write(top, m, &files, r, err, errlen);
	if (rc == 0 && (image_parent(top, parent, sizeof parent) != 0 ||
	    file_fsync_dir(parent) != 0))
		rc = image_fail(err, errlen, "fsync of the folder holding %s: %s", top,
		    strerror(errno));
	image_list_free(&files);
	free(w.buf);
	close(w.srcfd);
	return rc;
}

static int
image_store_copy_with(const char *src, const char *dst, const struct image_meta *m,
    const unsigned char *key, struct image_result *r, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	int dstfd, rc;

	if (image_meta_check(m, err, errlen) != 0)
		return -1;
	if ((key != NULL) != (m->key_id[0] != '\0'))
		return image_fail(err, errlen, "image of checkpoint %s: a key id without a key, or a "
		    "key without its id", m->checkpoint_id);
	if (image_parent(dst, parent, sizeof parent) != 0 || file_mkdirs(parent, 0700) != 0)
		return image_fail(err, errlen, "image folder %s: creating its parent: %s", dst,
		    strerror(errno));
	if (mkdir(dst, 0700) != 0)
		return image_fail(err, errlen, "image folder %s: %s", dst,
		    errno == EEXIST ? "already exists" : strerror(errno));
	dstfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dstfd < 0 || fchmod(dstfd, 0700) != 0) {
		rc = image_fail(err, errlen, "image folder %s: %s", dst, strerror(errno));
	} else {
		uint64_t t0 = time_mono_ms();

		rc = image_store(src, dstfd, dst, m, key, r, err, errlen);
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
		return image_fail(err, errlen, "image of checkpoint %s: an encrypted copy needs its "
		    "key (image_store_copy_encrypted)", m->checkpoint_id);
	return image_store_copy_with(src, dst, m, NULL, r, err, errlen);
}

int
image_store_copy_encrypted(const char *src, const char *dst, const struct image_meta *m,
    const unsigned char key[IMAGE_KEY_LEN], struct image_result *r, char *err, size_t errlen)
{
	return image_store_copy_with(src, dst, m, key, r, err, errlen);
}

int
image_store_seal(const char *dir, const struct image_meta *m, struct image_result *r,
    char *err, size_t errlen)
{
	if (image_meta_check(m, err, errlen) != 0)
		return -1;
	uint64_t t0 = time_mono_ms();
	int rc = image_store(dir, -1, dir, m, NULL, r, err, errlen);

	r->seal_ms = time_mono_ms() - t0;
	return rc;
}

/* ---- reading a manifest ---- */

static bool
image_path_ok(const char *p)
{
	size_t len = strlen(p);
	int parts = 0;

	if (len == 0 || len >= PATH_MAX || p[0] == '/' || strcmp(p, "manifest") == 0 ||
	    strcmp(p, "manifest.sig") == 0)
		return false;
	for (const char *c = p; ; ) {
		const char *slash = strchr(c, '/');
		size_t n = slash != NULL ? (size_t)(slash - c) : strlen(c);

		if (n == 0 || n > NAME_MAX || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.') || ++parts > IMAGE_MAX_DEPTH + 1)
			return false;
		if (slash == NULL)
			return true;
		c = slash + 1;
	}
}

static bool
image_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

static bool
image_hex_ok(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One "file <sha256> <size> <path>" line (without "file "); NULL if fine, else what is wrong. */
static const char *
image_parse_file(char *s, struct image_list *l)
{
	char *sp, sha256[65];
	uint64_t size;

	if (strlen(s) < 66 || !image_hex_ok(s) || s[64] != ' ')
		return "expected \"file <sha256 hex> <size> <path>\"";
	memcpy(sha256, s, 64);
	sha256[64] = '\0';
	s += 65;
	if ((sp = strchr(s, ' ')) == NULL)
		return "expected \"file <sha256 hex> <size> <path>\"";
	*sp = '\0';
	if (!image_u64(s, &size))
		return "bad size";
	s = sp + 1;
	if (!image_path_ok(s))
		return "bad path (empty, absolute, with \"..\" or \".\" or empty parts, or reserved)";
	if (l->n > 0 && strcmp(l->v[l->n - 1].path, s) >= 0)
		return "files not sorted by path, or listed twice";
	if (l->n >= IMAGE_MAX_FILES)
		return "too many files";
	if (image_list_add(l, s, size, sha256) != 0)
		return "out of memory";
	return NULL;
}

/* One of the six header lines (0-based n), into m. NULL if fine, else what is wrong. */
static const char *
image_parse_header(int n, const char *s, struct image_meta *m)
{
	static const char *const keys[] = { "gca-manifest ", "checkpoint ", "gid ",
	    "core_service ", "parent ", "time_ms " };
	size_t klen = strlen(keys[n]), vlen;
	const char *v = s + klen;

	if (strncmp(s, keys[n], klen) != 0)
		return n == 0 ? "not a gca manifest" : "header lines out of order or missing";
	vlen = strlen(v);
	switch (n) {
	case 0:
		return strcmp(v, "1") == 0 ? NULL : "unknown manifest version";
	case 1:
		if (!id_valid(v))
			return "bad checkpoint id";
		memcpy(m->checkpoint_id, v, vlen + 1);
		return NULL;
	case 2:
		if (vlen == 0 || vlen >= sizeof m->gid)
			return "bad gid";
		memcpy(m->gid, v, vlen + 1);
		return NULL;
	case 3:
		if (vlen == 0 || vlen >= sizeof m->core_service || strpbrk(v, " \t") != NULL)
			return "bad core_service";
		memcpy(m->core_service, v, vlen + 1);
		return NULL;
	case 4:
		if (strcmp(v, "-") == 0) {
			m->parent[0] = '\0';
			return NULL;
		}
		if (!id_valid(v))
			return "bad parent id";
		memcpy(m->parent, v, vlen + 1);
		return NULL;
	default:
		return image_u64(v, &m->time_ms) ? NULL : "bad time_ms";
	}
}

static int
image_manifest_parse(const char *dir, struct image_meta *mp, struct image_list *l, char *err,
    size_t errlen)
{
	char path[PATH_MAX], *buf, *line;
	struct image_meta m;
	size_t len;
	int n = 0, rc = 0;

	memset(&m, 0, sizeof m);
	memset(l, 0, sizeof *l);
	if (snprintf(path, sizeof path, "%s/manifest", dir) >= (int)sizeof path)
		return image_fail(err, errlen, "manifest of %s: path too long", dir);
	if (file_read_all(path, &buf, &len, IMAGE_MANIFEST_MAX) != 0)
		return image_fail(err, errlen, "manifest of %s: %s", dir,
		    errno == ENOENT ? "missing" : strerror(errno));
	if (memchr(buf, '\0', len) != NULL) {
		free(buf);
		return image_fail(err, errlen, "manifest of %s: holds a NUL byte", dir);
	}
	for (line = buf; rc == 0 && *line != '\0'; n++) {
		char *nl = strchr(line, '\n');
		const char *bad;

		if (nl == NULL) {
			rc = image_fail(err, errlen, "manifest of %s, line %d: no end of line", dir,
			    n + 1);
			break;
		}
		*nl = '\0';
		if (n < 6)
			bad = image_parse_header(n, line, &m);
		else if (n == 6 && strncmp(line, "key ", 4) == 0)
			bad = strlen(line + 4) == 16 && strspn(line + 4, "0123456789abcdef") == 16 ?
			    (memcpy(m.key_id, line + 4, 17), NULL) : "bad key id";
		else if (strncmp(line, "file ", 5) == 0)
			bad = image_parse_file(line + 5, l);
		else
			bad = "expected a \"file\" line";
		if (bad != NULL)
			rc = image_fail(err, errlen, "manifest of %s, line %d: %s", dir, n + 1, bad);
		line = nl + 1;
	}
	if (rc == 0 && n < 6)
		rc = image_fail(err, errlen, "manifest of %s: ends after %d lines, before its header "
		    "does", dir, n);
	free(buf);
	if (rc != 0)
		image_list_free(l);
	else if (mp != NULL)
		*mp = m;
	return rc;
}

int
image_manifest_read(const char *dir, struct image_meta *m, char *err, size_t errlen)
{
	struct image_list l;

	if (image_manifest_parse(dir, m, &l, err, errlen) != 0)
		return -1;
	image_list_free(&l);
	return 0;
}

int
image_lists_folder(const char *dir, const char *folder, char *err, size_t errlen)
{
	struct image_list l;
	size_t len = strlen(folder);
	int found = 0;

	if (image_manifest_parse(dir, NULL, &l, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < l.n && !found; i++)
		found = strncmp(l.v[i].path, folder, len) == 0 && l.v[i].path[len] == '/';
	image_list_free(&l);
	return found;
}

/* ---- verifying ---- */

/* Creates the folders of path (relative) below cfd, 0700, chowned. */
static int
image_verify_mkdirs(int cfd, const char *path, uid_t uid, gid_t gid)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdirat(cfd, buf, 0700) == 0) {
			if (fchmodat(cfd, buf, 0700, 0) != 0 ||
			    (uid != (uid_t)-1 && fchownat(cfd, buf, uid, gid, AT_SYMLINK_NOFOLLOW) != 0))
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* Opens the copy of f below cfd, 0600, chowned. */
static int
image_verify_create(int cfd, const struct image_file *f, uid_t uid, gid_t gid)
{
	int fd;

	if (image_verify_mkdirs(cfd, f->path, uid, gid) != 0)
		return -1;
	fd = openat(cfd, f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0600) != 0 || (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0)) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Checks one listed file (copying it into cfd when >= 0). */
static int
image_verify_file(int imgfd, const struct image_meta *m, const struct image_file *f, int cfd,
    uid_t uid, gid_t gid, unsigned char *buf, char *err, size_t errlen)
{
	char sha256[65];
	uint64_t size;
	struct stat st;
	int in, out = -1, rc;

	if ((in = image_open_beneath(imgfd, f->path, O_RDONLY | O_NONBLOCK)) < 0)
		return image_fail(err, errlen, "image file %s of checkpoint %s: %s", f->path,
		    m->checkpoint_id, image_open_error(errno));
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: not a regular file",
		    f->path, m->checkpoint_id);
		goto done;
	}
	if ((uint64_t)st.st_size != f->size) {
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: size mismatch "
		    "(manifest says %llu, file has %llu)", f->path, m->checkpoint_id,
		    (unsigned long long)f->size, (unsigned long long)st.st_size);
		goto done;
	}
	if (cfd >= 0 && (out = image_verify_create(cfd, f, uid, gid)) < 0) {
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: copying: %s", f->path,
		    m->checkpoint_id, strerror(errno));
		goto done;
	}
	if ((rc = image_pump(in, out, buf, &size, sha256)) != 0) {
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: %s: %s", f->path,
		    m->checkpoint_id, rc == -1 ? "reading" : rc == -2 ? "copying" : "hashing",
		    strerror(errno));
	} else if (size != f->size || strcmp(sha256, f->sha256) != 0) {
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: sha256 mismatch "
		    "(manifest says %.16s..., file has %.16s...)", f->path, m->checkpoint_id,
		    f->sha256, sha256);
	} else if (out >= 0 && fsync(out) != 0) {
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: copying: %s", f->path,
		    m->checkpoint_id, strerror(errno));
	}
done:
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = image_fail(err, errlen, "image file %s of checkpoint %s: copying: %s", f->path,
		    m->checkpoint_id, strerror(errno));
	close(in);
	return rc;
}

/* The folders of the copy, each once (the list is sorted, so a folder's files are together). */
static int
image_verify_sync_dirs(int cfd, const struct image_list *l)
{
	const char *prev = NULL;
	size_t prevlen = 0;

	for (size_t i = 0; i < l->n; i++) {
		const char *slash = strrchr(l->v[i].path, '/');
		size_t len = slash != NULL ? (size_t)(slash - l->v[i].path) : 0;
		char sub[PATH_MAX];
		int fd, rc;

		if (len == 0 || (prev != NULL && len == prevlen && memcmp(prev, l->v[i].path, len) == 0))
			continue;
		prev = l->v[i].path;
		prevlen = len;
		snprintf(sub, sizeof sub, "%.*s", (int)len, l->v[i].path);
		if ((fd = openat(cfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			return -1;
		rc = fsync(fd);
		close(fd);
		if (rc != 0)
			return -1;
	}
	return fsync(cfd);
}

int
image_verify(const char *dir, struct image_meta *mp, const char *copy_to, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	struct image_list l;
	struct image_meta m;
	unsigned char *buf = NULL;
	int imgfd = -1, cfd = -1, made = 0, rc = 0;

	if (image_manifest_parse(dir, &m, &l, err, errlen) != 0)
		return -1;
	if ((imgfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rc = image_fail(err, errlen, "image folder %s: %s", dir, strerror(errno));
		goto done;
	}
	if ((buf = malloc(IMAGE_BUF)) == NULL) {
		rc = image_fail(err, errlen, "image folder %s: out of memory", dir);
		goto done;
	}
	if (copy_to != NULL) {
		if (mkdir(copy_to, 0700) != 0) {
			rc = image_fail(err, errlen, "copy of checkpoint %s into %s: %s",
			    m.checkpoint_id, copy_to, errno == EEXIST ? "already exists" :
			    strerror(errno));
			goto done;
		}
		made = 1;
		cfd = open(copy_to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0 || fchmod(cfd, 0700) != 0) {
			rc = image_fail(err, errlen, "copy of checkpoint %s into %s: %s",
			    m.checkpoint_id, copy_to, strerror(errno));
			goto done;
		}
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = image_verify_file(imgfd, &m, &l.v[i], cfd, uid, gid, buf, err, errlen);
	/* The top folder is handed over last: until then the user cannot look inside. */
	if (rc == 0 && cfd >= 0 && (image_verify_sync_dirs(cfd, &l) != 0 ||
	    (uid != (uid_t)-1 && fchown(cfd, uid, gid) != 0)))
		rc = image_fail(err, errlen, "copy of checkpoint %s into %s: %s", m.checkpoint_id,
		    copy_to, strerror(errno));
done:
	if (cfd >= 0)
		close(cfd);
	if (rc != 0 && made)
		file_remove_tree(copy_to);
	if (imgfd >= 0)
		close(imgfd);
	free(buf);
	image_list_free(&l);
	if (rc == 0 && mp != NULL)
		*mp = m;
	return rc;
}

/* ---- retention ---- */

struct image_ckpt {
	char	id[ID_LEN + 1];
	bool	keep, expanded;
};

static int
image_ckpt_cmp_newest_first(const void *a, const void *b)
{
	return strcmp(((const struct image_ckpt *)b)->id, ((const struct image_ckpt *)a)->id);
}

/* Every folder in job_dir whose name is an id (before `before`, if not NULL), newest first. */
static int
image_list_ckpts(const char *job_dir, const char *before, struct image_ckpt **out, size_t *n)
{
	struct image_ckpt *v = NULL;
	size_t cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if ((d = opendir(job_dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (!id_valid(de->d_name) || (before != NULL && strcmp(de->d_name, before) >= 0) ||
		    fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (*n == cap) {
			struct image_ckpt *grown;

			cap = cap ? cap * 2 : 16;
			if ((grown = realloc(v, cap * sizeof *v)) == NULL) {
				free(v);
				closedir(d);
				return -1;
			}
			v = grown;
		}
		memset(&v[*n], 0, sizeof v[*n]);
		memcpy(v[*n].id, de->d_name, ID_LEN + 1);
		(*n)++;
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof *v, image_ckpt_cmp_newest_first);
	*out = v;
	return 0;
}

/* Marks the parents of kept folders kept, until nothing changes. -1 if a manifest is unreadable. */
static int
image_keep_parents(const char *job_dir, struct image_ckpt *v, size_t n)
{
	bool changed = true;

	while (changed) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			char dir[PATH_MAX], err[512];
			struct image_meta m;

			if (!v[i].keep || v[i].expanded)
				continue;
			v[i].expanded = true;
			snprintf(dir, sizeof dir, "%s/%s", job_dir, v[i].id);
			if (image_manifest_read(dir, &m, err, sizeof err) != 0) {
				log_warn("image retention in %s: nothing removed: %s", job_dir, err);
				return -1;
			}
			if (m.parent[0] == '\0')
				continue;
			for (size_t j = 0; j < n; j++) {
				if (strcmp(v[j].id, m.parent) != 0)
					continue;
				if (!v[j].keep)
					v[j].keep = changed = true;
				break;
			}
		}
	}
	return 0;
}

static int image_retain_run(const char *job_dir, unsigned keep, const char *before, unsigned max,
    bool dry, void (*removed)(const char *id, void *arg), void *arg);

int
image_retain(const char *job_dir, unsigned keep, void (*removed)(const char *id, void *arg),
    void *arg)
{
	return image_retain_run(job_dir, keep, NULL, UINT_MAX, false, removed, arg);
}

int
image_retain_before(const char *job_dir, unsigned keep, const char *before, unsigned max,
    void (*removed)(const char *id, void *arg), void *arg)
{
	return image_retain_run(job_dir, keep, before, max, false, removed, arg);
}

int
image_retain_plan(const char *job_dir, unsigned keep, void (*removed)(const char *id, void *arg),
    void *arg)
{
	return image_retain_run(job_dir, keep, NULL, UINT_MAX, true, removed, arg);
}

static int
image_retain_run(const char *job_dir, unsigned keep, const char *before, unsigned max, bool dry,
    void (*removed)(const char *id, void *arg), void *arg)
{
	struct image_ckpt *v;
	size_t n;
	int count = 0, failed = 0;

	if (image_list_ckpts(job_dir, before, &v, &n) != 0) {
		log_warn("image retention in %s: %s", job_dir, strerror(errno));
		return -1;
	}
	if (keep == 0 || n <= keep) {
		free(v);
		return 0;
	}
	for (size_t i = 0; i < keep; i++)
		v[i].keep = true;
	if (image_keep_parents(job_dir, v, n) != 0) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < n && (unsigned)count < max; i++) {
		char dir[PATH_MAX];

		if (v[i].keep)
			continue;
		snprintf(dir, sizeof dir, "%s/%s", job_dir, v[i].id);
		if (!dry && file_remove_tree(dir) != 0) {
			log_warn("image retention: removing %s: %s", dir, strerror(errno));
			failed = 1;
			continue;
		}
		count++;
		if (removed != NULL)
			removed(v[i].id, arg);
	}
	free(v);
	if (!dry && count > 0 && file_fsync_dir(job_dir) != 0)
		log_warn("image retention: fsync of %s: %s", job_dir, strerror(errno));
	return failed ? -1 : count;
}

/*
 * ---- encryption at rest ----
 *
 * A file is sealed in segments of IMAGE_SEG plaintext bytes (docs/DESIGN.md, "Image store safety":
 * the chunk index and count are associated data), so no GCM message grows past what one nonce
 * may cover and a reader checks each segment before it writes its bytes:
 *
 *   "GCAE2\n" | salt (16 random bytes) | segment 0 | ... | segment n-1
 *   segment i = ciphertext of IMAGE_SEG plaintext bytes (the last one 0..IMAGE_SEG) | tag (16)
 *
 * Each file has its own key, HKDF-SHA256(site key, salt), so nonces never repeat across the
 * files of a site; the nonce of segment i is i (96 bits, big-endian). The associated data of
 * segment i is "gca-image 2\n<checkpoint id>\n<path>\n", then i and the number of segments n
 * (8 bytes each, big-endian): a segment moved to another place in the file, a segment dropped, a
 * file cut (even at a segment boundary: n, which a reader takes from the stored size, changes), or
 * a file moved to another path or image all fail to decrypt. A file is sealed at the size it has
 * when it is opened; one that shrinks meanwhile is refused.
 */

#define IMAGE_ENC_MAGIC	"GCAE2\n"
#define IMAGE_ENC_HDR	6
#define IMAGE_SALT	16
#define IMAGE_NONCE	12
#define IMAGE_TAG	16
#define IMAGE_SEG	(1024 * 1024)

/* What sealing or opening one file needs: its key, the AD's fixed part, buffers. */
struct image_seal {
	EVP_CIPHER_CTX	*ctx;
	unsigned char	 key[IMAGE_KEY_LEN];
	unsigned char	*plain, *cipher;	/* IMAGE_SEG, IMAGE_SEG + IMAGE_TAG */
	char		 ad[PATH_MAX + 128];
	size_t		 adlen;
};

int
image_key_load(const char *path, unsigned char key[IMAGE_KEY_LEN], char id[33], char *err,
    size_t errlen)
{
	unsigned char md[32];
	unsigned mdlen = 0;
	struct stat st;
	char buf[4097];
	ssize_t n;
	size_t len;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
		image_fail(err, errlen, "image key %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Checked on the descriptor that is read, so a file swapped meanwhile is not taken. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return image_fail(err, errlen, "image key %s: not a regular file", path);
		if (st.st_uid != geteuid())
			return image_fail(err, errlen, "image key %s: owned by uid %u, not by this CTS's "
			    "user (uid %u)", path, (unsigned)st.st_uid, (unsigned)geteuid());
		return image_fail(err, errlen, "image key %s: readable by others (mode %o): make it "
		    "0600", path, (unsigned)(st.st_mode & 0777));
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return image_fail(err, errlen, "image key %s: %s", path, strerror(errno));
	len = (size_t)n;
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len == 2 * IMAGE_KEY_LEN && strspn(buf, "0123456789abcdefABCDEF") >= len) {
		for (size_t i = 0; i < IMAGE_KEY_LEN; i++) {
			unsigned v;
			sscanf(buf + 2 * i, "%2x", &v);
			key[i] = (unsigned char)v;
		}
	} else if (len == IMAGE_KEY_LEN) {
		memcpy(key, buf, IMAGE_KEY_LEN);
	} else {
		OPENSSL_cleanse(buf, sizeof buf);
		return image_fail(err, errlen, "image key %s: not 32 bytes or 64 hex digits", path);
	}
	OPENSSL_cleanse(buf, sizeof buf);
	EVP_Digest(key, IMAGE_KEY_LEN, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static void
image_seal_free(struct image_seal *s)
{
	EVP_CIPHER_CTX_free(s->ctx);
	OPENSSL_cleanse(s->key, sizeof s->key);
	free(s->plain);
	free(s->cipher);
}

/* The file's key from the site key and its salt, the AD's fixed part, buffers. */
static int
image_seal_init(struct image_seal *s, const unsigned char *site_key,
    const unsigned char salt[IMAGE_SALT], const char *id, const char *path)
{
	static const char info[] = "gca image file key";
	EVP_PKEY_CTX *kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t klen = sizeof s->key;
	int n, ok;

	memset(s, 0, sizeof *s);
	ok = kdf != NULL && EVP_PKEY_derive_init(kdf) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(kdf, salt, IMAGE_SALT) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_key(kdf, site_key, IMAGE_KEY_LEN) == 1 &&
	    EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)info, sizeof info - 1) == 1 &&
	    EVP_PKEY_derive(kdf, s->key, &klen) == 1 && klen == sizeof s->key;
	EVP_PKEY_CTX_free(kdf);
	n = snprintf(s->ad, sizeof s->ad, "gca-image 2\n%s\n%s\n", id, path);
	if (!ok || n < 0 || (size_t)n + 16 > sizeof s->ad || (s->ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    (s->plain = malloc(IMAGE_SEG)) == NULL ||
	    (s->cipher = malloc(IMAGE_SEG + IMAGE_TAG)) == NULL) {
		image_seal_free(s);
		return -1;
	}
	s->adlen = (size_t)n + 16;
	return 0;
}

/* Nonce and AD of segment i of count; then the cipher is ready for its bytes. */
static int
image_seal_segment(struct image_seal *s, uint64_t i, uint64_t count, int enc)
{
	unsigned char nonce[IMAGE_NONCE] = { 0 };
	size_t at = s->adlen - 16;
	int outl;

	for (int b = 0; b < 8; b++) {
		nonce[IMAGE_NONCE - 1 - b] = (unsigned char)(i >> (8 * b));
		s->ad[at + 7 - b] = (char)(i >> (8 * b));
		s->ad[at + 15 - b] = (char)(count >> (8 * b));
	}
	return EVP_CipherInit_ex(s->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_IVLEN, IMAGE_NONCE, NULL) == 1 &&
	    EVP_CipherInit_ex(s->ctx, NULL, NULL, s->key, nonce, enc) == 1 &&
	    EVP_CipherUpdate(s->ctx, NULL, &outl, (unsigned char *)s->ad, (int)s->adlen) == 1 ?
	    0 : -1;
}

/* Reads up to len bytes, fewer only at the end of the file. */
static ssize_t
image_read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Writes p to out and into the hash of what is stored (when hash != NULL). */
static int
image_emit(int out, EVP_MD_CTX *hash, const unsigned char *p, size_t len, uint64_t *size)
{
	if (hash != NULL && EVP_DigestUpdate(hash, p, len) != 1)
		return -1;
	*size += len;
	return image_write_all(out, p, len);
}

/*
 * Encrypts the st_size bytes in has now into out, hashing what is written when hash != NULL (the
 * manifest lists the stored bytes). 0, -1 the cipher failed, -2 I/O (errno), -3 the file shrank
 * while it was read.
 */
static int
image_seal_stream(int in, int out, const unsigned char *site_key, const char *id,
    const char *path, EVP_MD_CTX *hash, uint64_t *size)
{
	unsigned char salt[IMAGE_SALT];
	struct image_seal s;
	struct stat st;
	uint64_t plain, count;
	int outl, rc = -1;

	*size = 0;
	if (fstat(in, &st) != 0)
		return -2;
	plain = (uint64_t)st.st_size;
	count = plain == 0 ? 1 : (plain + IMAGE_SEG - 1) / IMAGE_SEG;
	if (RAND_bytes(salt, sizeof salt) != 1 || image_seal_init(&s, site_key, salt, id, path) != 0)
		return -1;
	if (image_emit(out, hash, (const unsigned char *)IMAGE_ENC_MAGIC, IMAGE_ENC_HDR, size) != 0 ||
	    image_emit(out, hash, salt, sizeof salt, size) != 0) {
		rc = -2;
		goto out;
	}
	for (uint64_t i = 0; i < count; i++) {
		size_t n = plain - i * IMAGE_SEG < IMAGE_SEG ? (size_t)(plain - i * IMAGE_SEG) :
		    IMAGE_SEG;
		ssize_t got = image_read_full(in, s.plain, n);

		if (got < 0 || (size_t)got != n) {
			rc = got < 0 ? -2 : -3;
			goto out;
		}
		if (image_seal_segment(&s, i, count, 1) != 0 ||
		    (n > 0 && EVP_CipherUpdate(s.ctx, s.cipher, &outl, s.plain, (int)n) != 1) ||
		    EVP_CipherFinal_ex(s.ctx, s.cipher + n, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(s.ctx, EVP_CTRL_GCM_GET_TAG, IMAGE_TAG, s.cipher + n) != 1)
			goto out;
		if (image_emit(out, hash, s.cipher, n + IMAGE_TAG, size) != 0) {
			rc = -2;
			goto out;
		}
	}
	rc = 0;
out:
	image_seal_free(&s);
	return rc;
}

/*
 * Decrypts in (stored bytes, size bytes) into out, each segment checked before its plaintext is
 * written. 0, -1 it does not decrypt (altered, moved, cut, another key), -2 I/O (errno).
 */
static int
image_open_stream(int in, int out, uint64_t size, const unsigned char *site_key, const char *id,
    const char *path)
{
	unsigned char hdr[IMAGE_ENC_HDR + IMAGE_SALT];
	const uint64_t full = IMAGE_SEG + IMAGE_TAG;
	struct image_seal s;
	uint64_t body, count, written = 0;
	int outl, rc = -1;

	if (size < sizeof hdr + IMAGE_TAG || image_read_full(in, hdr, sizeof hdr) != sizeof hdr ||
	    memcmp(hdr, IMAGE_ENC_MAGIC, IMAGE_ENC_HDR) != 0)
		return -1;
	body = size - sizeof hdr;
	count = (body + full - 1) / full;
	/* what sealing writes: only an empty file ends with a segment of no bytes */
	if (body - (count - 1) * full < IMAGE_TAG ||
	    (count > 1 && body - (count - 1) * full == IMAGE_TAG))
		return -1;
	if (image_seal_init(&s, site_key, hdr + IMAGE_ENC_HDR, id, path) != 0)
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		size_t n = (size_t)(i + 1 < count ? full : body - i * full) - IMAGE_TAG;
		ssize_t got = image_read_full(in, s.cipher, n + IMAGE_TAG);

		if (got < 0) {
			rc = -2;
			goto out;
		}
		if ((size_t)got != n + IMAGE_TAG || image_seal_segment(&s, i, count, 0) != 0 ||
		    (n > 0 && EVP_CipherUpdate(s.ctx, s.plain, &outl, s.cipher, (int)n) != 1) ||
		    EVP_CIPHER_CTX_ctrl(s.ctx, EVP_CTRL_GCM_SET_TAG, IMAGE_TAG, s.cipher + n) != 1 ||
		    EVP_CipherFinal_ex(s.ctx, s.plain + n, &outl) != 1)
			goto out;
		if (image_emit(out, NULL, s.plain, n, &written) != 0) {
			rc = -2;
			goto out;
		}
	}
	rc = 0;
out:
	image_seal_free(&s);
	return rc;
}

/* path below dirfd: encrypt (or decrypt) into a temp file, then rename over it. */
static int
image_crypt_file(int dirfd, const char *id, const char *path, const unsigned char *key,
    bool enc, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int in = -1, o = -1, rc = -1;
	struct stat st;
	uint64_t size;

	if (snprintf(tmp, sizeof tmp, "%s.crypt.tmp", path) >= (int)sizeof tmp)
		return image_fail(err, errlen, "image file %s: path too long", path);
	if ((in = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(in, &st) != 0 ||
	    (o = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ||
	    fchown(o, st.st_uid, st.st_gid) != 0) {
		image_fail(err, errlen, "image file %s: %s", path, strerror(errno));
		goto out;
	}
	rc = enc ? image_seal_stream(in, o, key, id, path, NULL, &size) :
	    image_open_stream(in, o, (uint64_t)st.st_size, key, id, path);
	if (rc == -3)
		rc = -2, errno = EIO;	/* the store's own file: nothing writes to it now */
	if (rc == -1)
		image_fail(err, errlen, "image file %s of checkpoint %s: %s", path, id, enc ?
		    "cannot encrypt" : "does not decrypt with this site key (altered, moved, cut, or "
		    "another key)");
	else if (rc == 0 && (fsync(o) != 0 || renameat(dirfd, tmp, dirfd, path) != 0))
		rc = -2;
	if (rc == -2)
		image_fail(err, errlen, "image file %s: %s", path, strerror(errno));
out:
	if (rc != 0 && o >= 0)
		unlinkat(dirfd, tmp, 0);
	if (in >= 0)
		close(in);
	if (o >= 0)
		close(o);
	return rc != 0 ? -1 : 0;
}

static int
image_crypt(const char *manifest_dir, const char *files_dir, const unsigned char *key, bool enc,
    uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct image_meta m;
	struct image_list l;
	int dirfd, rc = 0;

	if (image_manifest_parse(manifest_dir, &m, &l, err, errlen) != 0)
		return -1;
	if ((dirfd = open(files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		image_list_free(&l);
		return image_fail(err, errlen, "image folder %s: %s", files_dir, strerror(errno));
	}
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = image_crypt_file(dirfd, m.checkpoint_id, l.v[i].path, key, enc, err, errlen);
	/* the files, then their folders, then the top: owned by the job's user only now */
	for (size_t i = 0; i < l.n && rc == 0 && uid != (uid_t)-1; i++) {
		char p[PATH_MAX], *slash;
		snprintf(p, sizeof p, "%s", l.v[i].path);
		if (fchownat(dirfd, p, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
			rc = image_fail(err, errlen, "image file %s: chown: %s", p, strerror(errno));
		while (rc == 0 && (slash = strrchr(p, '/')) != NULL) {
			*slash = '\0';
			if (fchownat(dirfd, p, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
				rc = image_fail(err, errlen, "image folder %s: chown: %s", p,
				    strerror(errno));
		}
	}
	if (rc == 0 && uid != (uid_t)-1 && fchown(dirfd, uid, gid) != 0)
		rc = image_fail(err, errlen, "image folder %s: chown: %s", files_dir, strerror(errno));
	if (rc == 0 && fsync(dirfd) != 0)
		rc = image_fail(err, errlen, "image folder %s: %s", files_dir, strerror(errno));
	close(dirfd);
	image_list_free(&l);
	return rc;
}

int
image_encrypt(const char *dir, const unsigned char key[IMAGE_KEY_LEN], char *err, size_t errlen)
{
	return image_crypt(dir, dir, key, true, (uid_t)-1, (gid_t)-1, err, errlen);
}

int
image_decrypt(const char *manifest_dir, const char *files_dir,
    const unsigned char key[IMAGE_KEY_LEN], uid_t uid, gid_t gid, char *err, size_t errlen)
{
	return image_crypt(manifest_dir, files_dir, key, false, uid, gid, err, errlen);
}
