/*
 * cts/store.c: the few helpers the image store's files share (image.c, manifest.c, verify.c,
 * crypt.c, compress.c): a message into err, the list of an image's files, opening a name beneath a
 * folder without following a link or leaving it, writing and hashing a stream, handing a copy to
 * its user. It calls none of them: it is the bottom of the store, so that they use it and one
 * another one way (image.c -> compress.c, crypt.c -> manifest.c -> store.c). See cts/image.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

int
store_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void
store_list_free(struct image_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof *l);
}

int
store_list_add(struct image_list *l, const char *path, uint64_t size, const char *sha256)
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
	f->zstd = false;
	f->raw = 0;
	l->n++;
	return 0;
}

/* Reads up to len bytes, fewer only at the end of the file; -1 on an error. */
ssize_t
store_read_full(int fd, unsigned char *buf, size_t len)
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

/* Opens rel below base; fails with ELOOP on any symlink and EXDEV on any way out of base. */
int
store_open_beneath(int base, const char *rel, int flags)
{
	struct open_how how;

	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
	return (int)syscall(SYS_openat2, base, rel, &how, sizeof how);
}

const char *
store_open_error(int e)
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

int
store_write_all(int fd, const unsigned char *p, size_t len)
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

void
store_hex(const unsigned char *md, char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

int
store_pump(int in, int out, unsigned char *buf, uint64_t *size, char sha256[65])
{
	return store_pump_max(in, out, buf, UINT64_MAX, size, sha256);
}

/*
 * Reads in to its end, hashing, and writes every byte to out when out >= 0; more than max bytes
 * stop it (a file the job still writes cannot keep a bounded copy going).
 * Returns 0, -1 on a read error, -2 on a write error, -3 if hashing failed (errno kept), -4 over
 * max.
 */
int
store_pump_max(int in, int out, unsigned char *buf, uint64_t max, uint64_t *size,
    char sha256[65])
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
		if ((uint64_t)n > max - *size) {
			rc = -4;
			break;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rc = -3;
			break;
		}
		if (out >= 0 && store_write_all(out, buf, (size_t)n) != 0) {
			rc = -2;
			break;
		}
		*size += (uint64_t)n;
	}
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -3;
	if (rc == 0)
		store_hex(md, sha256);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/*
 * A restore's copy handed to its user: the listed files, then their folders, then the top (dirfd,
 * named dir in messages) chowned to uid:gid, so the user gets the folder only when it is whole
 * and plain; then dirfd fsynced. uid (uid_t)-1: only the fsync.
 */
int
store_give(int dirfd, const struct image_list *l, uid_t uid, gid_t gid, const char *dir,
    char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; i < l->n && rc == 0 && uid != (uid_t)-1; i++) {
		char p[PATH_MAX], *slash;
		snprintf(p, sizeof p, "%s", l->v[i].path);
		if (fchownat(dirfd, p, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
			rc = store_fail(err, errlen, "image file %s: chown: %s", p, strerror(errno));
		while (rc == 0 && (slash = strrchr(p, '/')) != NULL) {
			*slash = '\0';
			if (fchownat(dirfd, p, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
				rc = store_fail(err, errlen, "image folder %s: chown: %s", p,
				    strerror(errno));
		}
	}
	if (rc == 0 && uid != (uid_t)-1 && fchown(dirfd, uid, gid) != 0)
		rc = store_fail(err, errlen, "image folder %s: chown: %s", dir, strerror(errno));
	if (rc == 0 && fsync(dirfd) != 0)
		rc = store_fail(err, errlen, "image folder %s: %s", dir, strerror(errno));
	return rc;
}
