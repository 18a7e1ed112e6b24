/*
 * cts/verify.c: checks an image against its manifest before it is used (restored, sent, or made
 * a parent), every listed file's size and sha256, and on the way copies it out for a job's user
 * when asked (restore). Apart from image.c because it reads a store the seal wrote, rather than a
 * job's folder: a file's bytes are hashed as they are copied, so the copy is what was checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

/* Creates the folders of path (relative) below cfd, 0700, chowned. */
static int
verify_mkdirs(int cfd, const char *path, uid_t uid, gid_t gid)
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
verify_create(int cfd, const struct image_file *f, uid_t uid, gid_t gid)
{
	int fd;

	if (verify_mkdirs(cfd, f->path, uid, gid) != 0)
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
verify_file(int imgfd, const struct image_meta *m, const struct image_file *f, int cfd,
    uid_t uid, gid_t gid, unsigned char *buf, char *err, size_t errlen)
{
	char sha256[65];
	uint64_t size;
	struct stat st;
	int in, out = -1, rc;

	if ((in = store_open_beneath(imgfd, f->path, O_RDONLY | O_NONBLOCK)) < 0)
		return store_fail(err, errlen, "image file %s of checkpoint %s: %s", f->path,
		    m->checkpoint_id, store_open_error(errno));
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: not a regular file",
		    f->path, m->checkpoint_id);
		goto done;
	}
	if ((uint64_t)st.st_size != f->size) {
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: size mismatch "
		    "(manifest says %llu, file has %llu)", f->path, m->checkpoint_id,
		    (unsigned long long)f->size, (unsigned long long)st.st_size);
		goto done;
	}
	if (cfd >= 0 && (out = verify_create(cfd, f, uid, gid)) < 0) {
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: copying: %s", f->path,
		    m->checkpoint_id, strerror(errno));
		goto done;
	}
	if ((rc = store_pump(in, out, buf, &size, sha256)) != 0) {
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: %s: %s", f->path,
		    m->checkpoint_id, rc == -1 ? "reading" : rc == -2 ? "copying" : "hashing",
		    strerror(errno));
	} else if (size != f->size || strcmp(sha256, f->sha256) != 0) {
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: sha256 mismatch "
		    "(manifest says %.16s..., file has %.16s...)", f->path, m->checkpoint_id,
		    f->sha256, sha256);
	} else if (out >= 0 && fsync(out) != 0) {
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: copying: %s", f->path,
		    m->checkpoint_id, strerror(errno));
	}
done:
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = store_fail(err, errlen, "image file %s of checkpoint %s: copying: %s", f->path,
		    m->checkpoint_id, strerror(errno));
	close(in);
	return rc;
}

/* The folders of the copy, each once (the list is sorted, so a folder's files are together). */
static int
verify_sync_dirs(int cfd, const struct image_list *l)
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
verify_image(const char *dir, struct image_meta *mp, const char *copy_to, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	struct image_list l;
	struct image_meta m;
	unsigned char *buf = NULL;
	int imgfd = -1, cfd = -1, made = 0, rc = 0;

	if (manifest_parse(dir, &m, &l, err, errlen) != 0)
		return -1;
	if ((imgfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rc = store_fail(err, errlen, "image folder %s: %s", dir, strerror(errno));
		goto done;
	}
	if ((buf = malloc(IMAGE_BUF)) == NULL) {
		rc = store_fail(err, errlen, "image folder %s: out of memory", dir);
		goto done;
	}
	if (copy_to != NULL) {
		if (mkdir(copy_to, 0700) != 0) {
			rc = store_fail(err, errlen, "copy of checkpoint %s into %s: %s",
			    m.checkpoint_id, copy_to, errno == EEXIST ? "already exists" :
			    strerror(errno));
			goto done;
		}
		made = 1;
		cfd = open(copy_to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0 || fchmod(cfd, 0700) != 0) {
			rc = store_fail(err, errlen, "copy of checkpoint %s into %s: %s",
			    m.checkpoint_id, copy_to, strerror(errno));
			goto done;
		}
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = verify_file(imgfd, &m, &l.v[i], cfd, uid, gid, buf, err, errlen);
	/* The top folder is handed over last: until then the user cannot look inside. */
	if (rc == 0 && cfd >= 0 && (verify_sync_dirs(cfd, &l) != 0 ||
	    (uid != (uid_t)-1 && fchown(cfd, uid, gid) != 0)))
		rc = store_fail(err, errlen, "copy of checkpoint %s into %s: %s", m.checkpoint_id,
		    copy_to, strerror(errno));
done:
	if (cfd >= 0)
		close(cfd);
	if (rc != 0 && made)
		file_remove_tree(copy_to);
	if (imgfd >= 0)
		close(imgfd);
	free(buf);
	store_list_free(&l);
	if (rc == 0 && mp != NULL)
		*mp = m;
	return rc;
}

