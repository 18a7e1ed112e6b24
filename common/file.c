/* Files written whole: a reader sees the old content or the new one, never a torn mix. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

int
file_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
file_parent(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return snprintf(dir, dirlen, ".") >= (int)dirlen ? -1 : 0;
	if (slash == path)
		return snprintf(dir, dirlen, "/") >= (int)dirlen ? -1 : 0;
	if ((size_t)(slash - path) >= dirlen)
		return -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return 0;
}

/*
 * One file of a batch written whole: temp, fsync, rename. Its folder's entry is not yet durable:
 * the caller fsyncs the folder once for the batch (file_fsync_dir) before it relies on any of them.
 */
int
file_write_whole_batch(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	const char *p = buf;
	int fd, saved;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int
file_write_whole(const char *path, const void *buf, size_t len, mode_t mode)
{
	char dir[PATH_MAX];

	if (file_parent(path, dir, sizeof dir) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (file_write_whole_batch(path, buf, len, mode) != 0)
		return -1;
	return file_fsync_dir(dir);
}

int
file_read_all(const char *path, char **bufp, size_t *lenp, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t len = 0, cap = 0;

	*bufp = NULL;
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *grown;

			cap = cap ? cap * 2 : 8192;
			if ((grown = realloc(buf, cap + 1)) == NULL)
				goto fail;
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	if (lenp != NULL)
		*lenp = len;
	return 0;
fail:
	{
		int saved = errno;
		close(fd);
		free(buf);
		errno = saved;
	}
	return -1;
}

int
file_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* the leaf first: it is usually there already, or only it is missing (one call, not one
	 * per level of the path) */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
file_remove_tree(const char *path)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if ((d = opendir(path)) == NULL)
		return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		char child[PATH_MAX];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
			rc = -1;
			continue;
		}
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			rc |= file_remove_tree(child);
		else if (unlink(child) != 0)
			rc = -1;
	}
	closedir(d);
	if (rmdir(path) != 0)
		rc = -1;
	return rc;
}
