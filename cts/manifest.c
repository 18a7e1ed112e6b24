/*
 * cts/manifest.c: the image manifest, its one writer and its one parser (format in cts/image.h).
 * Its own file because everything that reads an image starts here (verify.c, crypt.c, retain.c,
 * restore and transfer through manifest_read) while only the seal (image.c) writes one; a
 * manifest is input from disk or from another CTS, so the parser checks every line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

#define MANIFEST_MAX (64 * 1024 * 1024)

static int
manifest_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct image_file *)a)->path, ((const struct image_file *)b)->path);
}

static int
manifest_sha256(const void *buf, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	store_hex(md, out);
	return 0;
}

int
manifest_meta_check(const struct image_meta *m, char *err, size_t errlen)
{
	size_t gidlen = strnlen(m->gid, sizeof m->gid);
	size_t svclen = strnlen(m->core_service, sizeof m->core_service);

	if (!id_valid(m->checkpoint_id))
		return store_fail(err, errlen, "image: checkpoint id \"%.64s\" is not an id",
		    m->checkpoint_id);
	if (gidlen == 0 || gidlen >= sizeof m->gid || memchr(m->gid, '\n', gidlen) != NULL)
		return store_fail(err, errlen, "image of checkpoint %s: the GID is empty, too long "
		    "or has a newline", m->checkpoint_id);
	if (svclen == 0 || svclen >= sizeof m->core_service)
		return store_fail(err, errlen, "image of checkpoint %s: bad core service name",
		    m->checkpoint_id);
	for (size_t i = 0; i < svclen; i++)
		if ((unsigned char)m->core_service[i] <= ' ' || m->core_service[i] == 0x7f)
			return store_fail(err, errlen, "image of checkpoint %s: bad core service "
			    "name", m->checkpoint_id);
	if (m->parent[0] != '\0' && !id_valid(m->parent))
		return store_fail(err, errlen, "image of checkpoint %s: parent \"%.64s\" is not an id",
		    m->checkpoint_id, m->parent);
	return 0;
}

/*
 * path written and fsynced. In a folder that does not hold it yet (a fresh image folder: every
 * app copy, and a first seal), straight into its name: no temp file and rename, two inodes of
 * churn fewer per checkpoint. A crash midway leaves a torn manifest in a folder that no record
 * names yet (the record is written after the seal), which cts/orphans.c removes, and nothing
 * reads a folder before its record (retention's bound, verify and fetch go by records). Where one
 * is there already (a reseal after encryption), replaced whole: temp, fsync, rename. The folder's
 * fsync is the caller's (one for the seal).
 */
static int
manifest_put(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), saved;

	if (fd < 0)
		return errno == EEXIST ? file_write_whole_batch(path, buf, len, 0600) : -1;
	if (store_write_all(fd, (const unsigned char *)buf, len) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(path);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0) {
		saved = errno;
		unlink(path);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Sorts the files, writes dir/manifest whole (and its signature, when m says how), fsyncs dir and
 * fills r. */
int
manifest_write(const char *dir, const struct image_meta *m, struct image_list *l,
    struct image_result *r, char *err, size_t errlen)
{
	char path[PATH_MAX], *text = NULL, *sig = NULL;
	size_t len = 0;
	uint64_t total = 0;
	FILE *f;
	int rc = 0;

	if (snprintf(path, sizeof path, "%s/manifest", dir) >= (int)sizeof path)
		return store_fail(err, errlen, "%s/manifest: path too long", dir);
	qsort(l->v, l->n, sizeof *l->v, manifest_file_cmp);
	if ((f = open_memstream(&text, &len)) == NULL)
		return store_fail(err, errlen, "%s: out of memory", path);
	fprintf(f, "gca-manifest 1\ncheckpoint %s\ngid %s\ncore_service %s\nparent %s\n"
	    "time_ms %llu\n", m->checkpoint_id, m->gid, m->core_service,
	    m->parent[0] != '\0' ? m->parent : "-", (unsigned long long)m->time_ms);
	if (m->key_id[0] != '\0')
		fprintf(f, "key %s\n", m->key_id);
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].zstd)
			fprintf(f, "zstd %s %llu %llu %s\n", l->v[i].sha256,
			    (unsigned long long)l->v[i].size, (unsigned long long)l->v[i].raw,
			    l->v[i].path);
		else
			fprintf(f, "file %s %llu %s\n", l->v[i].sha256,
			    (unsigned long long)l->v[i].size, l->v[i].path);
		total += l->v[i].size;
	}
	if (fclose(f) != 0 || text == NULL) {
		free(text);
		return store_fail(err, errlen, "%s: out of memory", path);
	}
	r->with_sig = false;
	if (m->sign != NULL && m->sign(m->sign_arg, text, len, &sig, err, errlen) != 0)
		rc = -1;
	else if (manifest_put(path, text, len) != 0)
		rc = store_fail(err, errlen, "%s: %s", path, strerror(errno));
	else if (sig != NULL && (snprintf(path, sizeof path, "%s/manifest.sig", dir) >=
	    (int)sizeof path || manifest_put(path, sig, strlen(sig)) != 0))
		rc = store_fail(err, errlen, "%s: %s", path, strerror(errno));
	/* one folder fsync seals the files copied in, the manifest and its signature */
	else if (file_fsync_dir(dir) != 0)
		rc = store_fail(err, errlen, "%s: fsync: %s", dir, strerror(errno));
	else if (manifest_sha256(text, len, r->sha256) != 0)
		rc = store_fail(err, errlen, "%s: sha256 failed", path);
	r->with_sig = rc == 0 && sig != NULL;
	r->size = total;
	r->nfiles = (unsigned)l->n;
	free(text);
	free(sig);
	return rc;
}

/* ---- reading ---- */

static bool
manifest_path_ok(const char *p)
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
manifest_u64(const char *s, uint64_t *out)
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
manifest_hex_ok(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One "file <sha256> <size> <path>" line (without "file "), or with zstd a "zstd <sha256> <size>
 * <raw size> <path>" line (without "zstd "); NULL if fine, else what is wrong. */
static const char *
manifest_parse_file(char *s, bool zstd, struct image_list *l)
{
	const char *form = zstd ? "expected \"zstd <sha256 hex> <size> <raw size> <path>\"" :
	    "expected \"file <sha256 hex> <size> <path>\"";
	char *sp, sha256[65];
	uint64_t size, raw = 0;

	if (strlen(s) < 66 || !manifest_hex_ok(s) || s[64] != ' ')
		return form;
	memcpy(sha256, s, 64);
	sha256[64] = '\0';
	s += 65;
	if ((sp = strchr(s, ' ')) == NULL)
		return form;
	*sp = '\0';
	if (!manifest_u64(s, &size))
		return "bad size";
	s = sp + 1;
	if (zstd) {
		if ((sp = strchr(s, ' ')) == NULL)
			return form;
		*sp = '\0';
		if (!manifest_u64(s, &raw))
			return "bad raw size";
		s = sp + 1;
	}
	if (!manifest_path_ok(s))
		return "bad path (empty, absolute, with \"..\" or \".\" or empty parts, or reserved)";
	if (l->n > 0 && strcmp(l->v[l->n - 1].path, s) >= 0)
		return "files not sorted by path, or listed twice";
	if (l->n >= IMAGE_MAX_FILES)
		return "too many files";
	if (store_list_add(l, s, size, sha256) != 0)
		return "out of memory";
	l->v[l->n - 1].zstd = zstd;
	l->v[l->n - 1].raw = raw;
	return NULL;
}

/* One of the six header lines (0-based n), into m. NULL if fine, else what is wrong. */
static const char *
manifest_parse_header(int n, const char *s, struct image_meta *m)
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
		return manifest_u64(v, &m->time_ms) ? NULL : "bad time_ms";
	}
}

int
manifest_parse(const char *dir, struct image_meta *mp, struct image_list *l, char *err,
    size_t errlen)
{
	char path[PATH_MAX], *buf, *line;
	struct image_meta m;
	size_t len;
	int n = 0, rc = 0;

	memset(&m, 0, sizeof m);
	memset(l, 0, sizeof *l);
	if (snprintf(path, sizeof path, "%s/manifest", dir) >= (int)sizeof path)
		return store_fail(err, errlen, "manifest of %s: path too long", dir);
	if (file_read_all(path, &buf, &len, MANIFEST_MAX) != 0)
		return store_fail(err, errlen, "manifest of %s: %s", dir,
		    errno == ENOENT ? "missing" : strerror(errno));
	if (memchr(buf, '\0', len) != NULL) {
		free(buf);
		return store_fail(err, errlen, "manifest of %s: holds a NUL byte", dir);
	}
	for (line = buf; rc == 0 && *line != '\0'; n++) {
		char *nl = strchr(line, '\n');
		const char *bad;

		if (nl == NULL) {
			rc = store_fail(err, errlen, "manifest of %s, line %d: no end of line", dir,
			    n + 1);
			break;
		}
		*nl = '\0';
		if (n < 6)
			bad = manifest_parse_header(n, line, &m);
		else if (n == 6 && strncmp(line, "key ", 4) == 0)
			bad = strlen(line + 4) == 16 && strspn(line + 4, "0123456789abcdef") == 16 ?
			    (memcpy(m.key_id, line + 4, 17), NULL) : "bad key id";
		else if (strncmp(line, "file ", 5) == 0)
			bad = manifest_parse_file(line + 5, false, l);
		else if (strncmp(line, "zstd ", 5) == 0)
			bad = manifest_parse_file(line + 5, true, l);
		else
			bad = "expected a \"file\" or \"zstd\" line";
		if (bad != NULL)
			rc = store_fail(err, errlen, "manifest of %s, line %d: %s", dir, n + 1, bad);
		line = nl + 1;
	}
	if (rc == 0 && n < 6)
		rc = store_fail(err, errlen, "manifest of %s: ends after %d lines, before its header "
		    "does", dir, n);
	free(buf);
	if (rc != 0)
		store_list_free(l);
	else if (mp != NULL)
		*mp = m;
	return rc;
}

int
manifest_read(const char *dir, struct image_meta *m, char *err, size_t errlen)
{
	struct image_list l;

	if (manifest_parse(dir, m, &l, err, errlen) != 0)
		return -1;
	store_list_free(&l);
	return 0;
}

int
manifest_lists_folder(const char *dir, const char *folder, char *err, size_t errlen)
{
	struct image_list l;
	size_t len = strlen(folder);
	int found = 0;

	if (manifest_parse(dir, NULL, &l, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < l.n && !found; i++)
		found = strncmp(l.v[i].path, folder, len) == 0 && l.v[i].path[len] == '/';
	store_list_free(&l);
	return found;
}


int
manifest_lists_zstd(const char *dir, char *err, size_t errlen)
{
	struct image_list l;
	int found = 0;

	if (manifest_parse(dir, NULL, &l, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < l.n && !found; i++)
		found = l.v[i].zstd;
	store_list_free(&l);
	return found;
}
