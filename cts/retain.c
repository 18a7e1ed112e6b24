/*
 * cts/retain.c: which of one job's images to keep (the newest n and every parent they need) and
 * the removal of the others, blocking, in the caller's process. cts/retention.c decides when to
 * ask and runs this in a child; replica.c asks the same for held replicas. Kept apart from
 * retention.c so that the rule has no part in the event loop and its unit test links it alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "cts/image.h"

/* One checkpoint folder of the job: kept (the newest n, or a kept one's parent), and whether its
 * manifest was read for its parent yet. */
struct retain_ckpt {
	char	id[ID_LEN + 1];
	bool	keep, expanded;
};

static int
retain_cmp_newest_first(const void *a, const void *b)
{
	return strcmp(((const struct retain_ckpt *)b)->id, ((const struct retain_ckpt *)a)->id);
}

/* Every folder in job_dir whose name is an id (before `before`, if not NULL), newest first. */
static int
retain_list(const char *job_dir, const char *before, struct retain_ckpt **out, size_t *n)
{
	struct retain_ckpt *v = NULL;
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
			struct retain_ckpt *grown;

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
		qsort(v, *n, sizeof *v, retain_cmp_newest_first);
	*out = v;
	return 0;
}

/* Marks the parents of kept folders kept, until nothing changes. -1 if a manifest is unreadable. */
static int
retain_keep_parents(const char *job_dir, struct retain_ckpt *v, size_t n)
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
			if (manifest_read(dir, &m, err, sizeof err) != 0) {
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

static int retain_run(const char *job_dir, unsigned keep, const char *before, unsigned max,
    bool dry, int (*removing)(const char *id, void *arg), void (*removed)(const char *id, void *arg),
    void *arg);

int
retain_prune(const char *job_dir, unsigned keep, void (*removed)(const char *id, void *arg),
    void *arg)
{
	return retain_run(job_dir, keep, NULL, UINT_MAX, false, NULL, removed, arg);
}

int
retain_prune_before(const char *job_dir, unsigned keep, const char *before, unsigned max,
    void (*removed)(const char *id, void *arg), void *arg)
{
	return retain_run(job_dir, keep, before, max, false, NULL, removed, arg);
}

int
retain_prune_announced(const char *job_dir, unsigned keep, const char *before, unsigned max,
    int (*removing)(const char *id, void *arg), void (*removed)(const char *id, void *arg),
    void *arg)
{
	return retain_run(job_dir, keep, before, max, false, removing, removed, arg);
}

int
retain_plan(const char *job_dir, unsigned keep, void (*removed)(const char *id, void *arg),
    void *arg)
{
	return retain_run(job_dir, keep, NULL, UINT_MAX, true, NULL, removed, arg);
}

static int
retain_run(const char *job_dir, unsigned keep, const char *before, unsigned max, bool dry,
    int (*removing)(const char *id, void *arg), void (*removed)(const char *id, void *arg),
    void *arg)
{
	struct retain_ckpt *v;
	size_t n;
	int count = 0, failed = 0;

	if (retain_list(job_dir, before, &v, &n) != 0) {
		log_warn("image retention in %s: %s", job_dir, strerror(errno));
		return -1;
	}
	if (keep == 0 || n <= keep) {
		free(v);
		return 0;
	}
	for (size_t i = 0; i < keep; i++)
		v[i].keep = true;
	if (retain_keep_parents(job_dir, v, n) != 0) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < n && (unsigned)count < max; i++) {
		char dir[PATH_MAX];

		if (v[i].keep)
			continue;
		snprintf(dir, sizeof dir, "%s/%s", job_dir, v[i].id);
		if (!dry && removing != NULL && removing(v[i].id, arg) != 0) {
			failed = 1;	/* not announced: kept, and asked again later */
			continue;
		}
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

