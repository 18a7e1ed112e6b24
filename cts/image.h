/*
 * cts/image.h: the CTS's image store, one header for its seven files:
 *   image.c     copying a job's files into the store, or sealing what criu or QEMU wrote there
 *   manifest.c  the manifest: written by the seal, parsed by everything that reads an image
 *   verify.c    checking an image against its manifest before it is used (and copying it out)
 *   retain.c    which of a job's images to keep (cts/retention.c decides when to ask)
 *   crypt.c     encryption at rest: the AES-256-GCM stream of each file and the site key
 *   compress.c  compression (zstd), which comes before encryption
 *   store.c     the helpers the others share (messages, the file list, opening beneath a folder)
 *   tail.c      hashing criu's or QEMU's files while they are written, for the seal
 * They use one another one way: image.c -> compress.c, crypt.c -> manifest.c -> store.c (verify.c
 * and retain.c use manifest.c and store.c; image.c uses tail.c, which uses store.c).
 * Two words keep one meaning each: to seal an image is to hash its files into the manifest and
 * write it (signed when the caller signs) with one fsync of the folder; to encrypt is the
 * AES-GCM stream of crypt.c, which comes before the seal.
 *
 * A checkpoint image is one folder, STATE/images/<gid as path>/<checkpoint id>/, mode 0700,
 * owned by the CTS, holding the image files and a text manifest that lists each of them with
 * its size and sha256. The sha256 of the manifest's bytes is the record's gcaSHA256, so one hash
 * in the directory covers every file.
 *
 * Manifest (mode 0600, written and fsynced, straight into its name in a folder that has none yet,
 * else temp file and rename; then one fsync of the folder; its signature, when the caller signs,
 * the same way in the same folder fsync: the seal):
 *
 *   gca-manifest 1
 *   checkpoint <id>
 *   gid <gid>                          everything after "gid " up to the end of the line
 *   core_service <name>
 *   parent <id or ->
 *   time_ms <n>
 *   key <key id>                       only when the files are encrypted (crypt.c)
 *   file <sha256 hex> <size> <path>    one per file, sorted by path (strcmp), path relative
 *   zstd <sha256 hex> <size> <raw size> <path>
 *                                      instead of "file" for a file stored compressed (compress.c):
 *                                      one zstd frame of raw size bytes; sha256 and size are of the
 *                                      stored bytes (as for "file", and for an encrypted file those
 *                                      of its ciphertext: compressed first, then encrypted)
 *
 * The manifest does not list itself; top-level files named "manifest" and "manifest.sig" (the
 * manifest's signature by the CTS, sealed with it: see docs/PROTOCOL.md) are reserved.
 *
 * These functions block and keep no state: the CTS calls them in a forked child. Every one
 * returns -1 with a message for people in err (naming the file) on failure.
 */
#ifndef GCA_CTS_IMAGE_H
#define GCA_CTS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/types.h>

#include "common/common.h"

#define IMAGE_MAX_FILES 100000
#define IMAGE_MAX_DEPTH 8		/* folders below the image's top folder */

/* What the manifest says besides the files. */
struct image_meta {
	char		checkpoint_id[64];	/* a UUIDv7 (id_valid) */
	char		gid[256];		/* 1..255 bytes, no '\n' */
	char		core_service[64];	/* no white space */
	char		parent[64];		/* "" = none (a full image), else an id */
	uint64_t	time_ms;
	char		key_id[33];		/* "" = plain files, else the site key's id */
	/* When set, the manifest's signature (manifest.sig, see docs/PROTOCOL.md) is made from its
	 * bytes and sealed with it, in the same folder fsync: sign returns 0 and a malloc'd text in
	 * *sig, or -1 with err. manifest_read leaves these NULL. */
	int		(*sign)(void *arg, const char *text, size_t len, char **sig, char *err,
			    size_t errlen);
	void		*sign_arg;
};

struct image_result {
	uint64_t	size;			/* sum of the listed files' sizes */
	char		sha256[65];		/* hex sha256 of the manifest's bytes: gcaSHA256 */
	unsigned	nfiles;
	bool		with_sig;		/* manifest.sig was sealed with it (image_meta's sign) */
	uint64_t	seal_ms;		/* hashing and writing the manifest took (metrics) */
};

/* ---- image.c ---- */

/*
 * Copies every regular file under src (a folder a job wrote, so not trusted) into dst.
 * Every file and folder is opened with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS relative to
 * src; symlinks, devices, fifos, sockets, files with more than one hard link, names with '\n',
 * folders nested deeper than IMAGE_MAX_DEPTH and more than IMAGE_MAX_FILES files are refused
 * with a message naming the path. dst must not exist; it is created 0700 (its missing parents
 * 0700 too), files 0600, subfolders 0700. Files are hashed (sha256) from the bytes copied, so
 * the manifest describes the copy even if the job still writes to src. Every file and folder,
 * and dst's parent, are fsynced. On failure dst is removed.
 */
int image_store_copy(const char *src, const char *dst, const struct image_meta *m,
	struct image_result *r, char *err, size_t errlen);

/*
 * The same, for a copy small enough to make on the CTS's loop (cts/core/app.c): at most
 * max_bytes read in all and max_entries files and folders met, however the job's files grow
 * meanwhile; beyond either it fails (dst removed), and the caller copies in a child instead.
 */
int image_store_copy_small(const char *src, const char *dst, const struct image_meta *m,
	uint64_t max_bytes, size_t max_entries, struct image_result *r, char *err, size_t errlen);

/*
 * The same, each file encrypted as it is copied (m->key_id names key; see "Encryption at rest"
 * below): no plain copy of a job's file is ever written into the store. The manifest lists the
 * stored (encrypted) bytes.
 */
#define IMAGE_KEY_LEN 32
int image_store_copy_encrypted(const char *src, const char *dst, const struct image_meta *m,
	const unsigned char key[IMAGE_KEY_LEN], struct image_result *r, char *err, size_t errlen);

/*
 * The same, each file compressed (zstd at level, 1..19) as it is copied, then encrypted when key
 * is not NULL (m->key_id names it): the manifest lists each as a "zstd" line. The compressed bytes
 * of an encrypted file go through an unnamed file (O_TMPFILE) of dst, so no plain copy is ever
 * named in the store.
 */
int image_store_copy_packed(const char *src, const char *dst, const struct image_meta *m,
	int level, const unsigned char *key, struct image_result *r, char *err, size_t errlen);

/*
 * A sealed image (criu's dump) compressed in place: each file the manifest in dir lists is
 * compressed (zstd at level) when that makes it smaller, else kept as it is, then encrypted when
 * key is not NULL (m->key_id names it); then dir is sealed again with m, each file fsynced first.
 */
int image_store_pack(const char *dir, const struct image_meta *m, int level,
	const unsigned char *key, struct image_result *r, char *err, size_t errlen);
/*
 * The same in one pass for files just written into dir (criu's dump) and never sealed: the folder
 * is walked as by image_store_seal (the same refusals), then each file is packed as above, a file
 * kept as it is hashed from the same read; then dir is sealed with m.
 */
int image_store_seal_packed(const char *dir, const struct image_meta *m, int level,
	const unsigned char *key, struct image_result *r, char *err, size_t errlen);

/*
 * The same for files already in dir (written there by criu as root): hashes them in place,
 * writes dir/manifest (replacing an earlier one), fsyncs every file and folder and dir's parent.
 */
int image_store_seal(const char *dir, const struct image_meta *m, struct image_result *r,
	char *err, size_t errlen);

/* ---- tail.c ---- */

/*
 * Hashing the files at the top of dir while their writer (root's criu, the CTS's QEMU) still
 * writes them, front to back, in a thread of the calling process; it also starts their writeback.
 * NULL if the thread cannot start: the seal then hashes every file itself.
 */
struct image_tail;
struct stat;
struct image_tail *image_tail_start(const char *dir);
/* Stops the thread (the writer has exited); image_tail_free stops it too and frees (NULL ok). */
void image_tail_stop(struct image_tail *t);
void image_tail_free(struct image_tail *t);
/* For the seal, once stopped: 0 with the size and sha256 of rel (a top-level file, st its fstat)
 * hashed on to its end; 1 when the tail has no use for it (hash it whole); -1 read error or the
 * file shrank, -3 hashing failed (errno set). */
int image_tail_take(struct image_tail *t, const char *rel, const struct stat *st, uint64_t *size,
	char sha256[65]);

/* image_store_seal, taking what tail (NULL allowed) hashed while dir was written; stops it. */
int image_store_seal_tailed(const char *dir, const struct image_meta *m, struct image_tail *tail,
	struct image_result *r, char *err, size_t errlen);

/* ---- verify.c ---- */

/*
 * Reads dir/manifest into m (NULL allowed) and checks every file it lists: present, a regular
 * file, the same size, the same sha256. Files the manifest does not list are ignored. err names
 * the file, e.g. "image file pages-1.img of checkpoint <id>: missing".
 * If copy_to != NULL the verified files are also copied there (not the manifest), so that a job
 * running as uid:gid can read its own image: copy_to must not exist (its parent must); it is
 * created 0700, subfolders 0700, files 0600, all chowned to uid:gid when uid != (uid_t)-1 (the
 * top folder last, so the user sees it only when complete). On failure copy_to is removed.
 */
int verify_image(const char *dir, struct image_meta *m, const char *copy_to, uid_t uid, gid_t gid,
	char *err, size_t errlen);

/* ---- compress.c ---- */

/*
 * Makes a restore's copy plain: below files_dir (a copy verify_image made for uid -1, and
 * decrypted when its image is encrypted), every file that manifest_dir/manifest lists as "zstd"
 * is decompressed in place. A frame that does not decompress, or to another size than the
 * manifest's, fails naming the file. Then, when uid != -1, the files, their folders and files_dir
 * itself (last) are chowned to uid:gid (as crypt_decrypt_dir), and files_dir is fsynced.
 */
int compress_unpack_dir(const char *manifest_dir, const char *files_dir, uid_t uid, gid_t gid,
	char *err, size_t errlen);

/* ---- manifest.c ---- */

/*
 * Reads and checks dir/manifest only (lines, ids, paths without ".." or a leading '/', sorted
 * and unique). m may be NULL. For callers that need the parent or the times without hashing.
 */
int manifest_read(const char *dir, struct image_meta *m, char *err, size_t errlen);
/* 1 if dir/manifest lists a file below folder/ (a criu image's pre-dump), 0 if not, -1 (err). */
int manifest_lists_folder(const char *dir, const char *folder, char *err, size_t errlen);
/* 1 if dir/manifest lists a compressed ("zstd") file, 0 if not, -1 (err). */
int manifest_lists_zstd(const char *dir, char *err, size_t errlen);

/* ---- retain.c ---- */

/*
 * Retention in one job's folder (STATE/images/<gid>/): keeps the newest `keep` checkpoint
 * folders (by id order; entries whose names are not ids are left alone) plus every folder a
 * kept one names as parent in its manifest, transitively; removes the others with
 * file_remove_tree, calling removed(id, arg) for each (removed may be NULL). keep == 0 keeps all.
 * A kept folder whose manifest cannot be read (a checkpoint being written, or damage) might need
 * any older folder, so then nothing is removed and -1 is returned (logged). A missing job_dir
 * removes nothing. Returns the number removed, or -1 (also when a removal failed).
 */
int retain_prune(const char *job_dir, unsigned keep, void (*removed)(const char *id, void *arg),
	void *arg);
/*
 * The same among the folders whose ids sort before `before` only (checkpoints being written have
 * newer ids: they are neither counted nor read nor removed), removing at most max of them (the
 * caller asks again for the rest).
 */
int retain_prune_before(const char *job_dir, unsigned keep, const char *before, unsigned max,
	void (*removed)(const char *id, void *arg), void *arg);
/*
 * retain_prune_before announcing each removal first: removing(id, arg) is called before the
 * folder is removed, and a nonzero return keeps it (the result is then -1). cts/retention.c
 * writes the removal's outbox entry there, so a CTS killed before it heard of the removal still
 * tells the directory after its restart.
 */
int retain_prune_announced(const char *job_dir, unsigned keep, const char *before, unsigned max,
	int (*removing)(const char *id, void *arg), void (*removed)(const char *id, void *arg),
	void *arg);
/* The same without removing anything: removed(id) for each image retain_prune would remove. */
int retain_plan(const char *job_dir, unsigned keep,
	void (*removed)(const char *id, void *arg), void *arg);

/* ---- crypt.c ---- */

/*
 * Encryption at rest (AES-256-GCM through EVP): a key per site, 32 bytes in a file owned by the
 * CTS's user and readable by no one else (64 hex digits or 32 raw bytes; crypt_key_load refuses
 * anything else), its id the first 16 hex digits of its sha256. An encrypted file is "GCAE2\n", a
 * 16-byte random salt, then segments of 1 MiB of plaintext, each its ciphertext and a 16-byte tag.
 * Each file has its own key, HKDF-SHA256(site key, salt); segment i of n has nonce i and
 * additional data "gca-image 2\n<checkpoint id>\n<path>\n", i and n, so a flipped byte,
 * swapped, dropped or cut segments, and a file moved to another path or image do not decrypt.
 * The manifest lists the encrypted files (sizes and sha256 of what is stored and sent) and says
 * "key <id>"; verify_image checks those, crypt_decrypt_dir gives back the plain files.
 */
int crypt_key_load(const char *path, unsigned char key[IMAGE_KEY_LEN], char id[33], char *err,
	size_t errlen);
/* Encrypts, in place, every file the manifest in dir lists; the caller then reseals dir
 * (image_store_seal with m->key_id set) so the manifest describes the encrypted files. */
int crypt_encrypt_dir(const char *dir, const unsigned char key[IMAGE_KEY_LEN], char *err,
	size_t errlen);
/* Decrypts in place, below files_dir (a copy verify_image made for uid -1, so owned by the CTS),
 * every file listed in manifest_dir/manifest; then, when uid != -1, chowns the files, their
 * folders and files_dir itself (last) to uid:gid, so the user gets the folder only when plain. */
int crypt_decrypt_dir(const char *manifest_dir, const char *files_dir,
	const unsigned char key[IMAGE_KEY_LEN], uid_t uid, gid_t gid, char *err, size_t errlen);

/*
 * ---- shared by the store's files only (image.c, manifest.c, verify.c, crypt.c) ----
 */

#define IMAGE_BUF (1024 * 1024)		/* one read or write of a file's bytes */

struct image_file {
	char		*path;		/* relative to the image's top folder */
	uint64_t	 size;		/* stored bytes */
	char		 sha256[65];	/* of the stored bytes */
	bool		 zstd;		/* stored as one zstd frame (a "zstd" line) */
	uint64_t	 raw;		/* zstd: its size once decompressed */
};

/* The files of an image, as a walk found them or a manifest lists them. */
struct image_list {
	struct image_file	*v;
	size_t			 n, cap;
};

/* store.c: the bottom of the store, calling none of the others */
int store_fail(char *err, size_t errlen, const char *fmt, ...) GCA_PRINTF(3, 4);
void store_list_free(struct image_list *l);
int store_list_add(struct image_list *l, const char *path, uint64_t size, const char *sha256);
/* Opens rel below base; fails with ELOOP on any symlink and EXDEV on any way out of base. */
int store_open_beneath(int base, const char *rel, int flags);
const char *store_open_error(int e);
/* The listed files, their folders, then dirfd (named dir) chowned to uid:gid unless uid is -1;
 * then dirfd fsynced. */
int store_give(int dirfd, const struct image_list *l, uid_t uid, gid_t gid, const char *dir,
	char *err, size_t errlen);
int store_write_all(int fd, const unsigned char *p, size_t len);
ssize_t store_read_full(int fd, unsigned char *buf, size_t len);
void store_hex(const unsigned char *md, char out[65]);
/* Reads in to its end, hashing, and writes every byte to out when out >= 0 (buf: IMAGE_BUF).
 * Returns 0, -1 on a read error, -2 on a write error, -3 if hashing failed (errno kept). */
int store_pump(int in, int out, unsigned char *buf, uint64_t *size, char sha256[65]);
/* The same, stopping with -4 once more than max bytes were read. */
int store_pump_max(int in, int out, unsigned char *buf, uint64_t max, uint64_t *size,
	char sha256[65]);

/* manifest.c */
/* The fields a manifest can hold, checked before a store writes anything. */
int manifest_meta_check(const struct image_meta *m, char *err, size_t errlen);
/* Sorts l, writes dir/manifest whole (and its signature, when m says how), fsyncs dir, fills r. */
int manifest_write(const char *dir, const struct image_meta *m, struct image_list *l,
	struct image_result *r, char *err, size_t errlen);
/* Reads dir/manifest into *m (NULL allowed) and its files into l (freed on failure). */
int manifest_parse(const char *dir, struct image_meta *m, struct image_list *l, char *err,
	size_t errlen);

/* crypt.c */
/* Encrypts what in holds now into out, hashing the stored bytes into hash when not NULL. 0, -1
 * the cipher failed, -2 I/O (errno), -3 the file shrank while it was read. */
int crypt_encrypt_stream(int in, int out, const unsigned char *site_key, const char *id,
	const char *path, EVP_MD_CTX *hash, uint64_t *size);

/* compress.c */
/* Compresses in (to its end; pledged bytes exactly unless UINT64_MAX) into out as one zstd frame,
 * hashing the stored bytes into hash and the bytes read into inhash when not NULL. 0, -1 zstd or
 * a hash failed, -2 I/O (errno), -3 the file's size changed while it was read. */
int compress_stream(int in, int out, int level, uint64_t pledged, EVP_MD_CTX *hash,
	EVP_MD_CTX *inhash, uint64_t *raw, uint64_t *stored);

#endif
