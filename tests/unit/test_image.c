/* The image store (cts/image.c, manifest.c, verify.c, retain.c, crypt.c, compress.c, store.c, tail.c):
 * copy, seal, manifest, verify, retention, encryption, compression, in a mkdtemp folder under /tmp. Longer than 800 lines:
 * one case per rule of the store, each small; they share the helpers at the top. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"
#include "tests/lib/testlib.h"

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char top[64];

static void
put(const char *dir, const char *name, const char *text)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(file_write_whole(path, text, strlen(text), 0644), 0);
}

static char *
slurp(const char *path)
{
	char *buf;
	size_t len;

	assert_int_equal(file_read_all(path, &buf, &len, 1 << 20), 0);
	return buf;
}

static void
sha256sum(const char *path, char out[65])
{
	char cmd[600];
	FILE *p;

	snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(fgets(out, 65, p));
	assert_int_equal(strlen(out), 64);
	assert_int_equal(pclose(p), 0);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
meta_new(struct image_meta *m, const char *parent)
{
	memset(m, 0, sizeof *m);
	id_new(m->checkpoint_id);
	snprintf(m->gid, sizeof m->gid, "grid job 7");
	snprintf(m->core_service, sizeof m->core_service, "app");
	snprintf(m->parent, sizeof m->parent, "%s", parent != NULL ? parent : "");
	m->time_ms = time_now_ms();
}

/* A job's staging folder: abc, sub/big.bin (300 KiB), sub/deeper/empty. */
static void
make_src(const char *src)
{
	char path[512], *big = malloc(300 * 1024 + 1);

	assert_int_equal(mkdir(src, 0755), 0);
	put(src, "abc", "abc");
	snprintf(path, sizeof path, "%s/sub", src);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/sub/deeper", src);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int i = 0; i < 300 * 1024; i++)
		big[i] = (char)('a' + i % 26);
	big[300 * 1024] = '\0';
	put(src, "sub/big.bin", big);
	put(src, "sub/deeper/empty", "");
	free(big);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(top, sizeof top, "/tmp/gca-image.XXXXXX");
	return mkdtemp(top) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return file_remove_tree(top);
}

static void
test_copy_manifest_modes_verify(void **state)
{
	char src[256], dst[256], path[512], want[65], line[700], err[512], *man;
	struct image_meta m, back;
	struct image_result r;

	(void)state;
	snprintf(src, sizeof src, "%s/stage1", top);
	snprintf(dst, sizeof dst, "%s/images/grid%%20job/ck1", top);
	make_src(src);
	meta_new(&m, NULL);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 3);
	assert_int_equal(r.size, 3 + 300 * 1024);

	/* Manifest: header, then files sorted by path with size and sha256. */
	snprintf(path, sizeof path, "%s/manifest", dst);
	man = slurp(path);
	snprintf(line, sizeof line, "gca-manifest 1\ncheckpoint %s\ngid grid job 7\n"
	    "core_service app\nparent -\ntime_ms %llu\nfile " SHA_ABC " 3 abc\n",
	    m.checkpoint_id, (unsigned long long)m.time_ms);
	assert_memory_equal(man, line, strlen(line));
	snprintf(path, sizeof path, "%s/sub/big.bin", src);
	sha256sum(path, want);
	snprintf(line, sizeof line, "file %s %d sub/big.bin\n", want, 300 * 1024);
	assert_non_null(strstr(man, line));
	assert_non_null(strstr(man, "file e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	    " 0 sub/deeper/empty\n"));
	assert_true(strstr(man, "sub/big.bin") < strstr(man, "sub/deeper/empty"));
	assert_null(strstr(man, " manifest\n"));
	free(man);
	snprintf(path, sizeof path, "%s/manifest", dst);
	sha256sum(path, want);
	assert_string_equal(r.sha256, want);

	/* Modes. */
	assert_int_equal(mode_of(dst), 0700);
	snprintf(path, sizeof path, "%s/sub", dst);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof path, "%s/sub/deeper/empty", dst);
	assert_int_equal(mode_of(path), 0600);
	snprintf(path, sizeof path, "%s/abc", dst);
	assert_int_equal(mode_of(path), 0600);
	snprintf(path, sizeof path, "%s/manifest", dst);
	assert_int_equal(mode_of(path), 0600);

	/* Verify reads the manifest back. */
	memset(&back, 0, sizeof back);
	assert_int_equal(verify_image(dst, &back, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_string_equal(back.checkpoint_id, m.checkpoint_id);
	assert_string_equal(back.gid, "grid job 7");
	assert_string_equal(back.core_service, "app");
	assert_string_equal(back.parent, "");
	assert_int_equal(back.time_ms, m.time_ms);

	/* An existing dst is not overwritten. */
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "already exists"));
}

/* A copy made on the CTS's loop (cts/core/app.c) stops at its bounds, whatever the files hold,
 * and leaves no folder behind; within them it is the same copy. */
static void
test_copy_small_bounded(void **state)
{
	char src[256], dst[256], path[512], sha[65], err[512];
	unsigned char *buf = malloc(IMAGE_BUF);
	struct image_meta m, back;
	struct image_result r;
	uint64_t size;
	int fd;

	(void)state;
	assert_non_null(buf);
	snprintf(src, sizeof src, "%s/stage-small", top);
	snprintf(dst, sizeof dst, "%s/images/small/ck", top);
	make_src(src);	/* 3 files, 300 KiB + 3 bytes */
	meta_new(&m, NULL);
	assert_int_equal(image_store_copy_small(src, dst, &m, 300 * 1024, 16, &r, err, sizeof err),
	    -1);
	assert_non_null(strstr(err, "over its bound"));
	assert_int_equal(access(dst, F_OK), -1);
	/* 3 files and 2 folders */
	assert_int_equal(image_store_copy_small(src, dst, &m, 1 << 20, 4, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "more files and folders than its bound"));
	assert_int_equal(access(dst, F_OK), -1);
	assert_int_equal(image_store_copy_small(src, dst, &m, 300 * 1024 + 3, 5, &r, err, sizeof err),
	    0);
	assert_int_equal(r.nfiles, 3);
	assert_int_equal(r.size, 3 + 300 * 1024);
	assert_int_equal(verify_image(dst, &back, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);

	/* the pump itself: a file longer than the bound is not read to its end */
	snprintf(path, sizeof path, "%s/sub/big.bin", src);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(store_pump_max(fd, -1, buf, 1000, &size, sha), -4);
	assert_true(size <= 1000);
	close(fd);
	free(buf);
}

static void
test_copy_refuses_symlinks_and_fifos(void **state)
{
	char src[256], dst[256], path[512], err[512];
	struct image_meta m;
	struct image_result r;

	(void)state;
	meta_new(&m, NULL);
	snprintf(src, sizeof src, "%s/stage2", top);
	snprintf(dst, sizeof dst, "%s/images/j2/ck", top);
	make_src(src);
	snprintf(path, sizeof path, "%s/sub/passwd", src);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "sub/passwd"));
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(access(dst, F_OK), -1);		/* nothing half-made is left */
	assert_int_equal(unlink(path), 0);

	/* A symlinked folder, a fifo, a hard link, a name with a newline, a reserved name. */
	snprintf(path, sizeof path, "%s/linkdir", src);
	assert_int_equal(symlink("/etc", path), 0);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "linkdir"));
	assert_int_equal(unlink(path), 0);

	snprintf(path, sizeof path, "%s/sub/fifo", src);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "sub/fifo: a fifo"));
	assert_int_equal(unlink(path), 0);

	snprintf(path, sizeof path, "%s/hard", src);
	{
		char old[512];

		snprintf(old, sizeof old, "%s/abc", src);
		assert_int_equal(link(old, path), 0);
	}
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "hard link"));
	assert_int_equal(unlink(path), 0);

	put(src, "new\nline", "x");
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "newline"));
	snprintf(path, sizeof path, "%s/new\nline", src);
	assert_int_equal(unlink(path), 0);

	put(src, "manifest", "x");
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "reserved"));
	snprintf(path, sizeof path, "%s/manifest", src);
	assert_int_equal(unlink(path), 0);

	put(src, "manifest.tmp.1", "x");
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "manifest.tmp.1: the name is reserved"));
	snprintf(path, sizeof path, "%s/manifest.tmp.1", src);
	assert_int_equal(unlink(path), 0);

	/* A GID with a newline would forge manifest lines. */
	snprintf(m.gid, sizeof m.gid, "a\nfile x 1 y");
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "newline"));
	meta_new(&m, NULL);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), 0);
}

static void
test_copy_refuses_deep_nesting(void **state)
{
	char src[256], path[512], dst[256], err[512];
	struct image_meta m;
	struct image_result r;
	size_t len;

	(void)state;
	meta_new(&m, NULL);
	snprintf(src, sizeof src, "%s/stage3", top);
	snprintf(dst, sizeof dst, "%s/images/j3/ck", top);
	len = (size_t)snprintf(path, sizeof path, "%s", src);
	for (int i = 0; i <= 8; i++) {
		assert_int_equal(mkdir(path, 0700), 0);
		len += (size_t)snprintf(path + len, sizeof path - len, "/d");
	}
	put(src, "d/d/d/d/d/d/d/d/f", "deep");		/* 8 levels: fine */
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 1);
	assert_int_equal(verify_image(dst, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_int_equal(mkdir(path, 0700), 0);		/* 9 levels: refused */
	snprintf(dst, sizeof dst, "%s/images/j3/ck2", top);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "deeper than 8"));
}

static void
test_verify_finds_changed_and_missing_files(void **state)
{
	char src[256], dst[256], copy[256], path[512], err[512], *a, *b;
	struct image_meta m;
	struct image_result r;
	int fd;

	(void)state;
	snprintf(src, sizeof src, "%s/stage4", top);
	snprintf(dst, sizeof dst, "%s/images/j4/ck", top);
	make_src(src);
	put(src, "extra-later", "");
	meta_new(&m, NULL);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), 0);

	/* copy_to: the same files, 0700/0600, no manifest; an existing folder is refused. */
	snprintf(copy, sizeof copy, "%s/restore", top);
	assert_int_equal(verify_image(dst, NULL, copy, getuid(), getgid(), err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/sub/big.bin", copy);
	a = slurp(path);
	snprintf(path, sizeof path, "%s/sub/big.bin", src);
	b = slurp(path);
	assert_string_equal(a, b);
	free(a);
	free(b);
	snprintf(path, sizeof path, "%s/abc", copy);
	a = slurp(path);
	assert_string_equal(a, "abc");
	free(a);
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(mode_of(copy), 0700);
	snprintf(path, sizeof path, "%s/sub/deeper", copy);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof path, "%s/manifest", copy);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "already exists"));

	/* As root (the CTS), the copy is handed to the job's user, the top folder included. */
	if (geteuid() == 0) {
		struct stat st;

		snprintf(copy, sizeof copy, "%s/restore-nobody", top);
		assert_int_equal(verify_image(dst, NULL, copy, 65534, 65534, err, sizeof err), 0);
		assert_int_equal(lstat(copy, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
		snprintf(path, sizeof path, "%s/sub/deeper/empty", copy);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		snprintf(path, sizeof path, "%s/sub/deeper", copy);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_uid, 65534);
	} else {
		test_not_run("unit/test_image", "a verified copy handed to the job's user (needs root)");
	}

	/* An unlisted file is ignored. */
	put(dst, "unlisted", "x");
	assert_int_equal(verify_image(dst, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);

	/* One flipped byte. */
	snprintf(path, sizeof path, "%s/sub/big.bin", dst);
	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, "Z", 1, 1000), 1);
	close(fd);
	snprintf(copy, sizeof copy, "%s/restore2", top);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "image file sub/big.bin of checkpoint "));
	assert_non_null(strstr(err, m.checkpoint_id));
	assert_non_null(strstr(err, "sha256 mismatch"));
	assert_int_equal(access(copy, F_OK), -1);		/* a failed copy is removed */

	/* A removed file. */
	snprintf(path, sizeof path, "%s/abc", dst);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(verify_image(dst, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "image file abc of checkpoint"));
	assert_non_null(strstr(err, "missing"));

	/* A file that grew. */
	put(dst, "abc", "abcd");
	assert_int_equal(verify_image(dst, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "image file abc"));
	assert_non_null(strstr(err, "size mismatch"));
}

static void
test_seal_in_place(void **state)
{
	char dir[256], err[512];
	struct image_meta m, back;
	struct image_result r, r2;

	(void)state;
	snprintf(dir, sizeof dir, "%s/images/j5/sealed", top);
	assert_int_equal(file_mkdirs(dir, 0700), 0);
	put(dir, "pages-1.img", "abc");
	put(dir, "core-1.img", "");
	meta_new(&m, "0190a1b2-0000-7000-8000-000000000000");
	snprintf(m.core_service, sizeof m.core_service, "criu");
	assert_int_equal(image_store_seal(dir, &m, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 2);
	assert_int_equal(r.size, 3);
	/* Sealing again does not list the manifest and gives the same bytes. */
	assert_int_equal(image_store_seal(dir, &m, &r2, err, sizeof err), 0);
	assert_int_equal(r2.nfiles, 2);
	assert_string_equal(r.sha256, r2.sha256);
	assert_int_equal(verify_image(dir, &back, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_string_equal(back.parent, "0190a1b2-0000-7000-8000-000000000000");
	assert_string_equal(back.core_service, "criu");
}

/* A criu image with its pre-dump in predump/: sealed and verified whole, the folder found from
 * the manifest (not from what lies in the image folder), a look-alike name not taken for it. */
static void
test_lists_predump_folder(void **state)
{
	char dir[256], sub[300], err[512];
	struct image_meta m;
	struct image_result r;

	(void)state;
	snprintf(dir, sizeof dir, "%s/images/j6/withpre", top);
	snprintf(sub, sizeof sub, "%s/predump", dir);
	assert_int_equal(file_mkdirs(sub, 0700), 0);
	put(dir, "pages-1.img", "new");
	put(dir, "predump.img", "x");
	put(sub, "pages-1.img", "abc");
	meta_new(&m, NULL);
	snprintf(m.core_service, sizeof m.core_service, "criu");
	assert_int_equal(image_store_seal(dir, &m, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 3);
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_int_equal(manifest_lists_folder(dir, "predump", err, sizeof err), 1);
	assert_int_equal(manifest_lists_folder(dir, "predum", err, sizeof err), 0);
	assert_int_equal(manifest_lists_folder(dir, "pages-1.img", err, sizeof err), 0);
	/* a folder the manifest does not list is not part of the image */
	snprintf(dir, sizeof dir, "%s/images/j6/without", top);
	snprintf(sub, sizeof sub, "%s/predump", dir);
	assert_int_equal(file_mkdirs(dir, 0700), 0);
	put(dir, "pages-1.img", "new");
	assert_int_equal(image_store_seal(dir, &m, &r, err, sizeof err), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	put(sub, "pages-1.img", "abc");
	assert_int_equal(manifest_lists_folder(dir, "predump", err, sizeof err), 0);
	snprintf(dir, sizeof dir, "%s/images/j6/none", top);
	assert_int_equal(manifest_lists_folder(dir, "predump", err, sizeof err), -1);
	assert_non_null(strstr(err, "missing"));
}

/* cts/tail.c: files hashed while they are written (front to back, in chunks, with pauses the
 * tail's thread may use: it runs at nice 19, so on a busy machine it may hash nothing, and the
 * seal all) give the very manifest a seal of the finished files gives; a file swapped for another
 * of the same name is hashed whole; bytes added after the thread stopped are read on. */
static void
append_chunks(const char *path, int chunks, size_t len, char fill)
{
	char *buf = malloc(len);
	int fd;

	assert_non_null(buf);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0);
	for (int i = 0; i < chunks; i++) {
		memset(buf, fill + i, len);
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
		usleep(20 * 1000);
	}
	close(fd);
	free(buf);
}

static void
test_seal_tailed(void **state)
{
	char dir[256], path[300], tmp[320], err[512];
	struct image_meta m;
	struct image_result r, r2;
	struct image_tail *t;

	(void)state;
	snprintf(dir, sizeof dir, "%s/images/j7/tailed", top);
	assert_int_equal(file_mkdirs(dir, 0700), 0);
	assert_non_null(t = image_tail_start(dir));
	put(dir, "core-1.img", "core");
	snprintf(path, sizeof path, "%s/pages-1.img", dir);
	append_chunks(path, 5, 3 * 1024 * 1024 + 17, 'a');	/* not a multiple of its buffer */
	snprintf(path, sizeof path, "%s/swapped.img", dir);
	append_chunks(path, 2, 4096, 'x');
	snprintf(tmp, sizeof tmp, "%s/swapped.tmp", dir);
	append_chunks(tmp, 1, 5000, 'y');
	assert_int_equal(rename(tmp, path), 0);			/* another inode, same name */
	/* bytes written once the thread stopped: the seal reads on from where it was */
	image_tail_stop(t);
	snprintf(path, sizeof path, "%s/pages-1.img", dir);
	append_chunks(path, 1, 1000, 'z');
	meta_new(&m, NULL);
	snprintf(m.core_service, sizeof m.core_service, "criu");
	assert_int_equal(image_store_seal_tailed(dir, &m, t, &r, err, sizeof err), 0);
	image_tail_free(t);
	assert_int_equal(r.nfiles, 3);
	assert_int_equal(r.size, 4 + 5 * (3 * 1024 * 1024 + 17) + 1000 + 5000);
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	/* sealed again without the tail: the same manifest */
	assert_int_equal(image_store_seal(dir, &m, &r2, err, sizeof err), 0);
	assert_string_equal(r.sha256, r2.sha256);
	/* a tail that could not start (NULL) leaves the seal to hash everything */
	assert_int_equal(image_store_seal_tailed(dir, &m, NULL, &r2, err, sizeof err), 0);
	assert_string_equal(r.sha256, r2.sha256);
}

static void
write_manifest(const char *dir, const char *files)
{
	char text[1024];

	snprintf(text, sizeof text, "gca-manifest 1\ncheckpoint 0190a1b2-0000-7000-8000-000000000001\n"
	    "gid g\ncore_service app\nparent -\ntime_ms 5\n%s", files);
	put(dir, "manifest", text);
}

static void
bad_manifest(const char *dir, const char *files, const char *want)
{
	char err[512];

	write_manifest(dir, files);
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "manifest of "));
	if (strstr(err, want) == NULL)
		fail_msg("for %s: got \"%s\", want \"%s\"", files, err, want);
}

static void
test_manifest_rejects_bad_lines(void **state)
{
	char dir[256], err[512];
	const char *sha = "file " SHA_ABC " 3 ";
	char line[512];

	(void)state;
	snprintf(dir, sizeof dir, "%s/images/j6/bad", top);
	assert_int_equal(file_mkdirs(dir, 0700), 0);
	put(dir, "abc", "abc");
	write_manifest(dir, "");		/* fine: no files */
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	snprintf(line, sizeof line, "%sabc\n", sha);
	write_manifest(dir, line);
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);

#define BAD(path, want) do { snprintf(line, sizeof line, "%s%s\n", sha, path); \
	bad_manifest(dir, line, want); } while (0)
	BAD("../x", "line 7: bad path");
	BAD("sub/../../x", "line 7: bad path");
	BAD("/etc/passwd", "line 7: bad path");
	BAD("a//b", "line 7: bad path");
	BAD("./abc", "line 7: bad path");
	BAD("manifest", "line 7: bad path");
	BAD("", "line 7");
#undef BAD
	bad_manifest(dir, "file abc 3 abc\n", "line 7");
	bad_manifest(dir, "file " SHA_ABC " -3 abc\n", "line 7: bad size");
	bad_manifest(dir, "file " SHA_ABC " 3 b\nfile " SHA_ABC " 3 a\n", "line 8: files not sorted");
	bad_manifest(dir, "file " SHA_ABC " 3 a\nfile " SHA_ABC " 3 a\n", "line 8");
	bad_manifest(dir, "hello\n", "line 7: expected a \"file\" or \"zstd\" line");
	bad_manifest(dir, "file " SHA_ABC " 3 abc", "line 7: no end of line");
	/* A listed path through a symlinked folder is refused by openat2, not followed. */
	snprintf(line, sizeof line, "%s/etc", dir);
	assert_int_equal(symlink("/etc", line), 0);
	write_manifest(dir, "file " SHA_ABC " 3 etc/hostname\n");
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "image file etc/hostname of checkpoint"));
	assert_non_null(strstr(err, "symbolic link"));
	put(dir, "manifest", "gca-manifest 2\n");
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "line 1: unknown manifest version"));
	put(dir, "manifest", "gca-manifest 1\ncheckpoint ../../x\n");
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "line 2: bad checkpoint id"));
	put(dir, "manifest", "gca-manifest 1\n");
	assert_int_equal(verify_image(dir, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "ends after 1 lines"));
}

static char removed_ids[8][ID_LEN + 1];
static int nremoved;

static void
on_removed(const char *id, void *arg)
{
	assert_ptr_equal(arg, &nremoved);
	assert_true(nremoved < 8);
	snprintf(removed_ids[nremoved++], ID_LEN + 1, "%s", id);
}

static bool
was_removed(const char *id)
{
	for (int i = 0; i < nremoved; i++)
		if (strcmp(removed_ids[i], id) == 0)
			return true;
	return false;
}

/* A sealed checkpoint folder in job with the given parent ("" = none). */
static void
make_ckpt(const char *job, char id[ID_LEN + 1], const char *parent)
{
	char dir[512], err[512];
	struct image_meta m;
	struct image_result r;

	meta_new(&m, parent);
	memcpy(id, m.checkpoint_id, ID_LEN + 1);
	snprintf(dir, sizeof dir, "%s/%s", job, id);
	assert_int_equal(file_mkdirs(dir, 0700), 0);
	put(dir, "f", id);
	assert_int_equal(image_store_seal(dir, &m, &r, err, sizeof err), 0);
	usleep(2000);		/* ids are ms-ordered */
}

static void
test_retain_keeps_newest_and_parents(void **state)
{
	char job[256], id[7][ID_LEN + 1], path[600];

	(void)state;
	snprintf(job, sizeof job, "%s/images/j7", top);
	assert_int_equal(file_mkdirs(job, 0700), 0);
	for (int i = 0; i < 5; i++)
		make_ckpt(job, id[i], NULL);
	snprintf(path, sizeof path, "%s/not-an-id", job);
	assert_int_equal(mkdir(path, 0700), 0);
	nremoved = 0;
	assert_int_equal(retain_prune(job, 0, on_removed, &nremoved), 0);	/* keep all */
	assert_int_equal(retain_prune(job, 2, on_removed, &nremoved), 3);
	assert_int_equal(nremoved, 3);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/%s", job, id[i]);
		assert_int_equal(was_removed(id[i]), i < 3);
		assert_int_equal(access(path, F_OK) == 0, i >= 3);
	}
	snprintf(path, sizeof path, "%s/not-an-id", job);
	assert_int_equal(access(path, F_OK), 0);

	/* id[5] <- id[6] (incremental), both newer than id[3], id[4]: keep 1 keeps id[6] and id[5]. */
	make_ckpt(job, id[5], id[4]);
	make_ckpt(job, id[6], id[5]);
	nremoved = 0;
	assert_int_equal(retain_prune(job, 1, on_removed, &nremoved), 1);
	assert_true(was_removed(id[3]));
	for (int i = 4; i < 7; i++) {
		snprintf(path, sizeof path, "%s/%s", job, id[i]);
		assert_int_equal(access(path, F_OK), 0);
	}

	/* A kept folder without a manifest (still being written): nothing is removed. */
	{
		char fresh[ID_LEN + 1];

		usleep(2000);
		id_new(fresh);
		snprintf(path, sizeof path, "%s/%s", job, fresh);
		assert_int_equal(mkdir(path, 0700), 0);
		nremoved = 0;
		assert_int_equal(retain_prune(job, 1, on_removed, &nremoved), -1);
		assert_int_equal(nremoved, 0);
	}
	snprintf(path, sizeof path, "%s/none", top);
	assert_int_equal(retain_prune(path, 1, NULL, NULL), 0);
}

/*
 * retain_prune_before (cts/retention.c's child): a folder being written (no manifest yet, the
 * newest id) is left alone instead of stopping retention, and at most max go per call.
 */
static void
test_retain_before_and_at_most(void **state)
{
	char job[256], id[5][ID_LEN + 1], fresh[ID_LEN + 1], path[600];

	(void)state;
	snprintf(job, sizeof job, "%s/images/j8", top);
	assert_int_equal(file_mkdirs(job, 0700), 0);
	for (int i = 0; i < 5; i++)
		make_ckpt(job, id[i], NULL);
	id_new(fresh);
	snprintf(path, sizeof path, "%s/%s", job, fresh);
	assert_int_equal(mkdir(path, 0700), 0);
	nremoved = 0;
	assert_int_equal(retain_prune(job, 2, on_removed, &nremoved), -1);	/* it stops */
	assert_int_equal(nremoved, 0);
	/* before the fresh one: keeps id[4] and id[3], removes two of the others, then the last */
	assert_int_equal(retain_prune_before(job, 2, fresh, 2, on_removed, &nremoved), 2);
	assert_int_equal(nremoved, 2);
	assert_true(was_removed(id[2]) && was_removed(id[1]));
	assert_int_equal(retain_prune_before(job, 2, fresh, 2, on_removed, &nremoved), 1);
	assert_true(was_removed(id[0]));
	assert_int_equal(retain_prune_before(job, 2, fresh, 2, on_removed, &nremoved), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/%s", job, id[i]);
		assert_int_equal(access(path, F_OK) == 0, i >= 3);
	}
	snprintf(path, sizeof path, "%s/%s", job, fresh);
	assert_int_equal(access(path, F_OK), 0);
	/* a bound before every folder: nothing counted, nothing removed */
	assert_int_equal(retain_prune_before(job, 1, id[3], 10, on_removed, &nremoved), 0);
	assert_int_equal(access(path, F_OK), 0);
}

/* ---- the manifest's signature, sealed with it ---- */

/* A signer for the test: "SIG <length> <first line>\n" of what it is given; "fail" refuses. */
static int
test_signer(void *arg, const char *text, size_t len, char **sig, char *err, size_t errlen)
{
	if (arg != NULL && strcmp(arg, "fail") == 0) {
		snprintf(err, errlen, "cannot sign with the test key");
		return -1;
	}
	if (asprintf(sig, "SIG %zu %.*s\n", len, (int)strcspn(text, "\n"), text) < 0)
		abort();
	return 0;
}

static void
test_manifest_signed_with_it(void **state)
{
	char src[256], dst[256], path[600], err[512], want[128], *man, *sig;
	struct image_meta m;
	struct image_result r;

	(void)state;
	snprintf(src, sizeof src, "%s/sig-src", top);
	make_src(src);
	snprintf(dst, sizeof dst, "%s/images/j9/signed", top);
	meta_new(&m, NULL);
	m.sign = test_signer;
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), 0);
	assert_true(r.with_sig);
	snprintf(path, sizeof path, "%s/manifest", dst);
	man = slurp(path);
	snprintf(path, sizeof path, "%s/manifest.sig", dst);
	sig = slurp(path);
	snprintf(want, sizeof want, "SIG %zu gca-manifest 1\n", strlen(man));
	assert_string_equal(sig, want);
	assert_int_equal(mode_of(path), 0600);
	free(man);
	free(sig);
	/* sealing again signs again, and the signature is not listed */
	assert_int_equal(image_store_seal(dst, &m, &r, err, sizeof err), 0);
	assert_true(r.with_sig);
	assert_int_equal(verify_image(dst, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	/* without a signer: none written */
	m.sign = NULL;
	snprintf(dst, sizeof dst, "%s/images/j9/plain", top);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), 0);
	assert_false(r.with_sig);
	snprintf(path, sizeof path, "%s/manifest.sig", dst);
	assert_int_equal(access(path, F_OK), -1);
	/* a signer that fails fails the copy, which leaves nothing */
	m.sign = test_signer;
	m.sign_arg = "fail";
	snprintf(dst, sizeof dst, "%s/images/j9/refused", top);
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_string_equal(err, "cannot sign with the test key");
	assert_int_equal(access(dst, F_OK), -1);
}

/* ---- encryption at rest ---- */

#define SEG (1024 * 1024)
#define HDR 22		/* "GCAE2\n" and the salt */

static const unsigned char key1[IMAGE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[IMAGE_KEY_LEN] = "fedcba9876543210fedcba9876543210";

/* n bytes of a pattern that differs in every segment, so swapped segments differ. */
static void
put_big(const char *dir, const char *name, size_t n)
{
	char path[512], *buf = malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('A' + (i / 4096 + i / SEG * 7) % 26);
	buf[n] = '\0';
	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(file_write_whole(path, buf, n, 0644), 0);
	free(buf);
}

static void
same_file(const char *a, const char *b)
{
	char *x, *y;
	size_t nx, ny;

	assert_int_equal(file_read_all(a, &x, &nx, 64 << 20), 0);
	assert_int_equal(file_read_all(b, &y, &ny, 64 << 20), 0);
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	free(x);
	free(y);
}

/* A staging folder with a file of 2.5 segments, one of exactly 2, an empty one and a small one. */
static void
make_src_big(const char *src)
{
	make_src(src);
	put_big(src, "pages.img", 2 * SEG + SEG / 2);
	put_big(src, "aligned.img", 2 * SEG);
}

/* The image's files decrypted into a fresh copy (verified first): 0, or -1 with err. */
static int
decrypt_copy(const char *dst, const char *copy, const unsigned char *key, char *err, size_t len)
{
	file_remove_tree(copy);
	if (verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, len) != 0)
		fail_msg("verify %s: %s", dst, err);
	return crypt_decrypt_dir(dst, copy, key, (uid_t)-1, (gid_t)-1, err, len);
}

static void
test_encrypted_round_trip(void **state)
{
	char src[256], dst[256], sealed[256], copy[256], path[512], other[512], err[512], *man;
	const char *names[] = { "abc", "pages.img", "aligned.img", "sub/big.bin", "sub/deeper/empty" };
	struct image_meta m;
	struct image_result r;
	struct stat st;

	(void)state;
	snprintf(src, sizeof src, "%s/stage-enc", top);
	snprintf(dst, sizeof dst, "%s/images/enc/ck1", top);
	make_src_big(src);
	meta_new(&m, NULL);
	snprintf(m.key_id, sizeof m.key_id, "0011223344556677");
	/* the plain copy refuses a key id without the key */
	assert_int_equal(image_store_copy(src, dst, &m, &r, err, sizeof err), -1);
	assert_int_equal(image_store_copy_encrypted(src, dst, &m, key1, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 5);
	snprintf(path, sizeof path, "%s/manifest", dst);
	man = slurp(path);
	assert_non_null(strstr(man, "\nkey 0011223344556677\n"));
	free(man);
	/* stored encrypted from the start: magic, salt, each segment 16 bytes longer */
	snprintf(path, sizeof path, "%s/pages.img", dst);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, HDR + 2 * SEG + SEG / 2 + 3 * 16);
	snprintf(path, sizeof path, "%s/aligned.img", dst);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, HDR + 2 * SEG + 2 * 16);
	snprintf(path, sizeof path, "%s/sub/deeper/empty", dst);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, HDR + 16);
	snprintf(path, sizeof path, "%s/abc", dst);
	man = slurp(path);
	assert_memory_equal(man, "GCAE2\n", 6);
	free(man);
	/* the manifest lists the stored bytes */
	assert_int_equal(verify_image(dst, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);

	snprintf(copy, sizeof copy, "%s/enc-copy", top);
	assert_int_equal(decrypt_copy(dst, copy, key1, err, sizeof err), 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", copy, names[i]);
		snprintf(other, sizeof other, "%s/%s", src, names[i]);
		same_file(path, other);
	}

	/* Encrypting in place what criu wrote, then sealing again, gives the same plain files. */
	snprintf(sealed, sizeof sealed, "%s/images/enc/ck2", top);
	assert_int_equal(file_mkdirs(sealed, 0700), 0);
	put_big(sealed, "pages.img", 2 * SEG + 5);
	put(sealed, "core.img", "core");
	meta_new(&m, NULL);
	assert_int_equal(image_store_seal(sealed, &m, &r, err, sizeof err), 0);
	assert_int_equal(crypt_encrypt_dir(sealed, key1, err, sizeof err), 0);
	snprintf(m.key_id, sizeof m.key_id, "0011223344556677");
	assert_int_equal(image_store_seal(sealed, &m, &r, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pages.img", sealed);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, HDR + 2 * SEG + 5 + 3 * 16);
	snprintf(path, sizeof path, "%s/pages.img.crypt.tmp", sealed);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(decrypt_copy(sealed, copy, key1, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/core.img", copy);
	man = slurp(path);
	assert_string_equal(man, "core");
	free(man);
	file_remove_tree(copy);
}

/* Rewrites path with len bytes taken from it: at `at` the bytes from `from` (n of them). */
static void
edit(const char *path, size_t at, size_t from, size_t n, long truncate_to)
{
	char *buf, *piece = malloc(n ? n : 1);
	size_t len;

	assert_int_equal(file_read_all(path, &buf, &len, 64 << 20), 0);
	memcpy(piece, buf + from, n);
	memcpy(buf + at, piece, n);
	assert_int_equal(file_write_whole(path, buf, truncate_to >= 0 ? (size_t)truncate_to : len,
	    0600), 0);
	free(buf);
	free(piece);
}

static int
copy_file(const char *from, const char *to)
{
	char *buf;
	size_t len;
	int rc;

	if (file_read_all(from, &buf, &len, 64 << 20) != 0)
		return -1;
	rc = file_write_whole(to, buf, len, 0600);
	free(buf);
	return rc;
}

static void
refused(const char *dst, const char *copy, const char *file, char *err, size_t len)
{
	assert_int_equal(crypt_decrypt_dir(dst, copy, key1, (uid_t)-1, (gid_t)-1, err, len), -1);
	assert_non_null(strstr(err, file));
	assert_non_null(strstr(err, "does not decrypt"));
}

static void
test_encrypted_tampering_refused(void **state)
{
	char src[256], dst[256], dst2[256], copy[256], path[512], from[512], err[512];
	struct image_meta m, m2;
	struct image_result r;
	const size_t full = SEG + 16;

	(void)state;
	snprintf(src, sizeof src, "%s/stage-tamper", top);
	snprintf(dst, sizeof dst, "%s/images/tamper/ck1", top);
	snprintf(dst2, sizeof dst2, "%s/images/tamper/ck2", top);
	snprintf(copy, sizeof copy, "%s/tamper-copy", top);
	make_src_big(src);
	meta_new(&m, NULL);
	snprintf(m.key_id, sizeof m.key_id, "0011223344556677");
	assert_int_equal(image_store_copy_encrypted(src, dst, &m, key1, &r, err, sizeof err), 0);
	m2 = m;
	id_new(m2.checkpoint_id);
	assert_int_equal(image_store_copy_encrypted(src, dst2, &m2, key1, &r, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pages.img", copy);

	/* one flipped ciphertext byte, in the second segment */
	assert_int_equal(decrypt_copy(dst, copy, key1, err, sizeof err), 0);
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	{
		char *buf;
		size_t len;
		assert_int_equal(file_read_all(path, &buf, &len, 64 << 20), 0);
		buf[HDR + full + 100] ^= 0x5a;
		assert_int_equal(file_write_whole(path, buf, len, 0600), 0);
		free(buf);
	}
	refused(dst, copy, "pages.img", err, sizeof err);

	/* the first two segments swapped (each with its tag) */
	assert_int_equal(decrypt_copy(dst, copy, key1, err, sizeof err), 0);
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	{
		char *buf, *tmp = malloc(full);
		size_t len;
		assert_int_equal(file_read_all(path, &buf, &len, 64 << 20), 0);
		memcpy(tmp, buf + HDR, full);
		memcpy(buf + HDR, buf + HDR + full, full);
		memcpy(buf + HDR + full, tmp, full);
		assert_int_equal(file_write_whole(path, buf, len, 0600), 0);
		free(buf);
		free(tmp);
	}
	refused(dst, copy, "pages.img", err, sizeof err);

	/* cut after the second segment (whole segments: the count a reader derives changes),
	 * cut by a few bytes, and the middle segment dropped */
	for (int k = 0; k < 3; k++) {
		struct stat st;
		file_remove_tree(copy);
		assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err),
		    0);
		assert_int_equal(stat(path, &st), 0);
		if (k == 0)
			edit(path, 0, 0, 0, (long)(HDR + 2 * full));
		else if (k == 1)
			edit(path, 0, 0, 0, (long)st.st_size - 5);
		else
			edit(path, HDR + full, HDR + 2 * full, (size_t)st.st_size - HDR - 2 * full,
			    (long)st.st_size - (long)full);
		refused(dst, copy, "pages.img", err, sizeof err);
	}

	/* a file moved to another path of the image: aligned.img's bytes as pages.img */
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	snprintf(from, sizeof from, "%s/aligned.img", dst);
	assert_int_equal(copy_file(from, path), 0);
	refused(dst, copy, "pages.img", err, sizeof err);

	/* the same path of another checkpoint, encrypted with the same key */
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	snprintf(from, sizeof from, "%s/pages.img", dst2);
	assert_int_equal(copy_file(from, path), 0);
	refused(dst, copy, "pages.img", err, sizeof err);

	/* another site key */
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_int_equal(crypt_decrypt_dir(dst, copy, key2, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "does not decrypt"));
	file_remove_tree(copy);
}

/* The manifest line of name in dir, "file ..." or "zstd ...", into out (without the newline). */
static void
manifest_line(const char *dir, const char *name, char *out, size_t len)
{
	char path[512], *man, *l;
	size_t nlen = strlen(name);

	snprintf(path, sizeof path, "%s/manifest", dir);
	man = slurp(path);
	out[0] = '\0';
	for (l = man; l != NULL && *l != '\0'; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t n = strcspn(l, "\n");
		if (n > nlen && l[n - nlen - 1] == ' ' && memcmp(l + n - nlen, name, nlen) == 0) {
			snprintf(out, len, "%.*s", (int)n, l);
			break;
		}
	}
	free(man);
}

/* A fresh copy of dst made plain: verified, decrypted with key (when not NULL), decompressed. */
static int
unpack_copy(const char *dst, const char *copy, const unsigned char *key, char *err, size_t len)
{
	file_remove_tree(copy);
	if (verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, len) != 0)
		fail_msg("verify %s: %s", dst, err);
	if (key != NULL && crypt_decrypt_dir(dst, copy, key, (uid_t)-1, (gid_t)-1, err, len) != 0)
		return -1;
	return compress_unpack_dir(dst, copy, (uid_t)-1, (gid_t)-1, err, len);
}

/* compress zstd: app copies (plain and encrypted) and a sealed criu folder packed in place; each
 * comes back byte for byte, smaller on disk where the bytes compress. */
static void
test_compressed_round_trip(void **state)
{
	char src[256], dst[256], sealed[256], copy[256], path[512], other[512], err[512], line[512];
	const char *names[] = { "abc", "pages.img", "aligned.img", "sub/big.bin", "sub/deeper/empty" };
	struct image_meta m;
	struct image_result r;
	struct stat st;

	(void)state;
	snprintf(src, sizeof src, "%s/stage-zstd", top);
	snprintf(dst, sizeof dst, "%s/images/zstd/ck1", top);
	snprintf(copy, sizeof copy, "%s/zstd-copy", top);
	make_src_big(src);
	meta_new(&m, NULL);
	assert_int_equal(image_store_copy_packed(src, dst, &m, 20, NULL, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "level 20"));
	assert_int_equal(image_store_copy_packed(src, dst, &m, 1, NULL, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 5);
	manifest_line(dst, "pages.img", line, sizeof line);
	assert_memory_equal(line, "zstd ", 5);
	snprintf(other, sizeof other, " %d pages.img", 2 * SEG + SEG / 2);
	assert_non_null(strstr(line, other));	/* the raw size */
	snprintf(path, sizeof path, "%s/pages.img", dst);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < SEG / 10);	/* letters in runs of 4 KiB */
	assert_true(r.size < 3 * SEG / 10);	/* the record's size: what is stored */
	assert_int_equal(unpack_copy(dst, copy, NULL, err, sizeof err), 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", copy, names[i]);
		snprintf(other, sizeof other, "%s/%s", src, names[i]);
		same_file(path, other);
	}

	/* compressed, then encrypted: the stored file is ciphertext, the copy plain again */
	snprintf(dst, sizeof dst, "%s/images/zstd/ck2", top);
	meta_new(&m, NULL);
	snprintf(m.key_id, sizeof m.key_id, "0011223344556677");
	assert_int_equal(image_store_copy_packed(src, dst, &m, 3, key1, &r, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pages.img", dst);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < SEG / 10);
	edit(path, 0, 0, 0, -1);
	assert_int_equal(unpack_copy(dst, copy, key1, err, sizeof err), 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", copy, names[i]);
		snprintf(other, sizeof other, "%s/%s", src, names[i]);
		same_file(path, other);
	}

	/* criu's folder, sealed, then packed in place: random bytes stay as they are */
	snprintf(sealed, sizeof sealed, "%s/images/zstd/ck3", top);
	assert_int_equal(file_mkdirs(sealed, 0700), 0);
	put_big(sealed, "pages-1.img", 2 * SEG + 5);
	snprintf(path, sizeof path, "head -c 200000 /dev/urandom > %s/random.img", sealed);
	assert_int_equal(system(path), 0);
	snprintf(other, sizeof other, "%s/random.img.orig", top);
	snprintf(path, sizeof path, "%s/random.img", sealed);
	assert_int_equal(copy_file(path, other), 0);
	meta_new(&m, NULL);
	snprintf(m.core_service, sizeof m.core_service, "criu");
	assert_int_equal(image_store_seal(sealed, &m, &r, err, sizeof err), 0);
	assert_int_equal(image_store_pack(sealed, &m, 1, NULL, &r, err, sizeof err), 0);
	manifest_line(sealed, "pages-1.img", line, sizeof line);
	assert_memory_equal(line, "zstd ", 5);
	manifest_line(sealed, "random.img", line, sizeof line);
	assert_memory_equal(line, "file ", 5);
	snprintf(path, sizeof path, "%s/pages-1.img.pack.tmp", sealed);
	assert_int_equal(access(path, F_OK), -1);
	/* packed twice: refused, the image unchanged */
	assert_int_equal(image_store_pack(sealed, &m, 1, NULL, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "compressed already"));
	assert_int_equal(unpack_copy(sealed, copy, NULL, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/random.img", copy);
	same_file(path, other);
	snprintf(path, sizeof path, "%s/pages-1.img", copy);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * SEG + 5);

	/* criu's folder never sealed, packed and sealed in one pass: the same, and a kept file's
	 * sha256 from that one read */
	snprintf(sealed, sizeof sealed, "%s/images/zstd/ck5", top);
	assert_int_equal(file_mkdirs(sealed, 0700), 0);
	put_big(sealed, "pages-1.img", 2 * SEG + 5);
	snprintf(path, sizeof path, "%s/random.img", sealed);
	assert_int_equal(copy_file(other, path), 0);
	meta_new(&m, NULL);
	assert_int_equal(image_store_seal_packed(sealed, &m, 1, NULL, &r, err, sizeof err), 0);
	assert_int_equal(r.nfiles, 2);
	manifest_line(sealed, "pages-1.img", line, sizeof line);
	assert_memory_equal(line, "zstd ", 5);
	manifest_line(sealed, "random.img", line, sizeof line);
	assert_memory_equal(line, "file ", 5);
	assert_int_equal(verify_image(sealed, NULL, NULL, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_int_equal(unpack_copy(sealed, copy, NULL, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/random.img", copy);
	same_file(path, other);
	/* a symbolic link in it is refused, as by a seal */
	snprintf(sealed, sizeof sealed, "%s/images/zstd/ck6", top);
	assert_int_equal(file_mkdirs(sealed, 0700), 0);
	snprintf(path, sizeof path, "%s/core.img", sealed);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	meta_new(&m, NULL);
	assert_int_equal(image_store_seal_packed(sealed, &m, 1, NULL, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "core.img"));

	/* the same with a key: both files encrypted, the compressible one compressed first */
	snprintf(sealed, sizeof sealed, "%s/images/zstd/ck4", top);
	assert_int_equal(file_mkdirs(sealed, 0700), 0);
	put_big(sealed, "pages-1.img", 2 * SEG + 5);
	put(sealed, "core.img", "core");
	meta_new(&m, NULL);
	assert_int_equal(image_store_seal(sealed, &m, &r, err, sizeof err), 0);
	snprintf(m.key_id, sizeof m.key_id, "0011223344556677");
	assert_int_equal(image_store_pack(sealed, &m, 1, key1, &r, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/core.img", sealed);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, HDR + 4 + 16);	/* "core" does not compress: encrypted only */
	assert_int_equal(unpack_copy(sealed, copy, key1, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pages-1.img", copy);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * SEG + 5);
	file_remove_tree(copy);
}

/* Rewrites the raw size of name's "zstd" line in dir/manifest (a test's own edit, unsigned). */
static void
set_raw(const char *dir, const char *name, unsigned long long raw)
{
	char path[512], line[512], sha[65], fixed[600], *man, *out;
	unsigned long long size, was;
	size_t at, n;

	manifest_line(dir, name, line, sizeof line);
	assert_int_equal(sscanf(line, "zstd %64s %llu %llu", sha, &size, &was), 3);
	snprintf(fixed, sizeof fixed, "zstd %s %llu %llu %s", sha, size, raw, name);
	snprintf(path, sizeof path, "%s/manifest", dir);
	assert_int_equal(file_read_all(path, &man, &n, 1 << 20), 0);
	assert_non_null(strstr(man, line));
	at = (size_t)(strstr(man, line) - man);
	n = strlen(man) + 64;
	out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)at, man, fixed, man + at + strlen(line));
	assert_int_equal(file_write_whole(path, out, strlen(out), 0600), 0);
	free(out);
	free(man);
}

/* A stored byte changed is a sha256 mismatch before anything decompresses; a frame that writes
 * more or fewer bytes than the manifest says, a corrupt frame and a cut one are refused by name,
 * and the copy keeps no half-written file. */
static void
test_compressed_bad_frames(void **state)
{
	char src[256], dst[256], copy[256], path[512], saved[512], err[512];
	struct image_meta m;
	struct image_result r;
	struct stat st;

	(void)state;
	snprintf(src, sizeof src, "%s/stage-zbad", top);
	snprintf(dst, sizeof dst, "%s/images/zbad/ck1", top);
	snprintf(copy, sizeof copy, "%s/zbad-copy", top);
	make_src_big(src);
	meta_new(&m, NULL);
	assert_int_equal(image_store_copy_packed(src, dst, &m, 1, NULL, &r, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pages.img", dst);
	assert_int_equal(stat(path, &st), 0);

	/* a changed stored byte: the hash, first */
	snprintf(saved, sizeof saved, "%s/zbad-pages.saved", top);
	assert_int_equal(copy_file(path, saved), 0);
	edit(path, 100, 0, 1, -1);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "sha256 mismatch"));
	assert_int_equal(access(copy, F_OK), -1);
	assert_int_equal(copy_file(saved, path), 0);

	/* the frames themselves, below the hash (as a signing key's holder could make them) */
	assert_int_equal(unpack_copy(dst, copy, NULL, err, sizeof err), 0);
	set_raw(dst, "pages.img", 2 * SEG);
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_int_equal(compress_unpack_dir(dst, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "image file pages.img of checkpoint"));
	assert_non_null(strstr(err, "more bytes than the manifest says"));
	snprintf(path, sizeof path, "%s/pages.img.unzst.tmp", copy);
	assert_int_equal(access(path, F_OK), -1);
	set_raw(dst, "pages.img", 3 * SEG);
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	assert_int_equal(compress_unpack_dir(dst, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "fewer bytes than the manifest says"));
	set_raw(dst, "pages.img", 2 * SEG + SEG / 2);
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);

	/* a byte inside the copy's frame changed (past the hash, as a disk could): zstd says */
	snprintf(path, sizeof path, "%s/pages.img", copy);
	assert_int_equal(stat(path, &st), 0);
	edit(path, (size_t)st.st_size / 2, 0, 8, -1);
	assert_int_equal(compress_unpack_dir(dst, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "does not decompress"));
	/* a cut frame */
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	edit(path, 0, 0, 0, st.st_size - 10);
	assert_int_equal(compress_unpack_dir(dst, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "does not decompress"));
	/* not a frame at all */
	file_remove_tree(copy);
	assert_int_equal(verify_image(dst, NULL, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), 0);
	put(copy, "pages.img", "plain text, no frame");
	assert_int_equal(compress_unpack_dir(dst, copy, (uid_t)-1, (gid_t)-1, err, sizeof err), -1);
	assert_non_null(strstr(err, "does not decompress"));
	file_remove_tree(copy);
}

static void
test_key_file_rules(void **state)
{
	char path[512], err[512], id[33], want[17];
	unsigned char key[IMAGE_KEY_LEN], raw[IMAGE_KEY_LEN], md[32];
	unsigned mdlen = 0;
	const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

	(void)state;
	snprintf(path, sizeof path, "%s/site.key", top);
	assert_int_equal(file_write_whole(path, hex, strlen(hex), 0600), 0);
	assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), 0);
	assert_int_equal(key[31], 0x1f);
	for (int i = 0; i < IMAGE_KEY_LEN; i++)
		raw[i] = (unsigned char)i;
	assert_memory_equal(key, raw, IMAGE_KEY_LEN);
	EVP_Digest(raw, sizeof raw, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(id, want);

	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), -1);
	assert_non_null(strstr(err, "readable by others"));
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), -1);
	assert_non_null(strstr(err, "readable by others"));
	assert_int_equal(chmod(path, 0600), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), -1);
		assert_non_null(strstr(err, "owned by uid 65534"));
		assert_int_equal(chown(path, 0, 0), 0);
	} else {
		test_not_run("unit/test_image", "a key file owned by another user (needs root to chown it)");
	}
	assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), 0);
	assert_int_equal(file_write_whole(path, "short\n", 6, 0600), 0);
	assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), -1);
	assert_non_null(strstr(err, "not 32 bytes"));
	snprintf(path, sizeof path, "%s/no-such.key", top);
	assert_int_equal(crypt_key_load(path, key, id, err, sizeof err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_manifest_modes_verify),
		cmocka_unit_test(test_copy_small_bounded),
		cmocka_unit_test(test_copy_refuses_symlinks_and_fifos),
		cmocka_unit_test(test_copy_refuses_deep_nesting),
		cmocka_unit_test(test_verify_finds_changed_and_missing_files),
		cmocka_unit_test(test_seal_in_place),
		cmocka_unit_test(test_lists_predump_folder),
		cmocka_unit_test(test_seal_tailed),
		cmocka_unit_test(test_manifest_rejects_bad_lines),
		cmocka_unit_test(test_retain_keeps_newest_and_parents),
		cmocka_unit_test(test_retain_before_and_at_most),
		cmocka_unit_test(test_manifest_signed_with_it),
		cmocka_unit_test(test_encrypted_round_trip),
		cmocka_unit_test(test_encrypted_tampering_refused),
		cmocka_unit_test(test_key_file_rules),
		cmocka_unit_test(test_compressed_round_trip),
		cmocka_unit_test(test_compressed_bad_frames),
	};

	log_init("test_image");
	return cmocka_run_group_tests(tests, setup, teardown);
}
