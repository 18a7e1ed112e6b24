/*
 * cts/image.c: the CTS's image store. A checkpoint image is one folder,
 * STATE/images/<gid as path>/<checkpoint id>/, mode 0700, owned by the CTS, holding the image
 * files and a text manifest that lists each of them with its size and sha256. The sha256 of the
 * manifest's bytes is the record's gcaSHA256, so one hash in the directory covers every file.
 *
 * Manifest (mode 0600, written whole: temp file, fsync, rename, fsync of the folder; its signature,
 * when the caller signs, the same way in the same folder fsync):
 *
 *   gca-manifest 1
 *   checkpoint <id>
 *   gid <gid>                          everything after "gid " up to the end of the line
 *   core_service <name>
 *   parent <id or ->
 *   time_ms <n>
 *   key <key id>                       only when the files are encrypted (image_encrypt)
 *   file <sha256 hex> <size> <path>    one per file, sorted by path (strcmp), path relative
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
	 * *sig, or -1 with err. image_manifest_read leaves these NULL. */
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
 * The same, each file encrypted as it is copied (m->key_id names key; see "Encryption at rest"
 * below): no plain copy of a job's file is ever written into the store. The manifest lists the
 * stored (encrypted) bytes.
 */
#define IMAGE_KEY_LEN 32
int image_store_copy_encrypted(const char *src, const char *dst, const struct image_meta *m,
	const unsigned char key[IMAGE_KEY_LEN], struct image_result *r, char *err, size_t errlen);

/*
 * The same for files already in dir (written there by criu as root): hashes them in place,
 * writes dir/manifest (replacing an earlier one), fsyncs every file and folder and dir's parent.
 */
int image_store_seal(const char *dir, const struct image_meta *m, struct image_result *r,
	char *err, size_t errlen);

/*
 * Reads dir/manifest into m (NULL allowed) and checks every file it lists: present, a regular
 * file, the same size, the same sha256. Files the manifest does not list are ignored. err names
 * the file, e.g. "image file pages-1.img of checkpoint <id>: missing".
 * If copy_to != NULL the verified files are also copied there (not the manifest), so that a job
 * running as uid:gid can read its own image: copy_to must not exist (its parent must); it is
 * created 0700, subfolders 0700, files 0600, all chowned to uid:gid when uid != (uid_t)-1 (the
 * top folder last, so the user sees it only when complete). On failure copy_to is removed.
 */
int image_verify(const char *dir, struct image_meta *m, const char *copy_to, uid_t uid, gid_t gid,
	char *err, size_t errlen);

/*
 * Reads and checks dir/manifest only (lines, ids, paths without ".." or a leading '/', sorted
 * and unique). m may be NULL. For callers that need the parent or the times without hashing.
 */
int image_manifest_read(const char *dir, struct image_meta *m, char *err, size_t errlen);
/* 1 if dir/manifest lists a file below folder/ (a criu image's pre-dump), 0 if not, -1 (err). */
int image_lists_folder(const char *dir, const char *folder, char *err, size_t errlen);

/*
 * Retention in one job's folder (STATE/images/<gid>/): keeps the newest `keep` checkpoint
 * folders (by id order; entries whose names are not ids are left alone) plus every folder a
 * kept one names as parent in its manifest, transitively; removes the others with
 * file_remove_tree, calling removed(id, arg) for each (removed may be NULL). keep == 0 keeps all.
 * A kept folder whose manifest cannot be read (a checkpoint being written, or damage) might need
 * any older folder, so then nothing is removed and -1 is returned (logged). A missing job_dir
 * removes nothing. Returns the number removed, or -1 (also when a removal failed).
 */
int image_retain(const char *job_dir, unsigned keep, void (*removed)(const char *id, void *arg),
	void *arg);
/*
 * The same among the folders whose ids sort before `before` only (checkpoints being written have
 * newer ids: they are neither counted nor read nor removed), removing at most max of them (the
 * caller asks again for the rest).
 */
int image_retain_before(const char *job_dir, unsigned keep, const char *before, unsigned max,
	void (*removed)(const char *id, void *arg), void *arg);
/* The same without removing anything: removed(id) for each image image_retain would remove. */
int image_retain_plan(const char *job_dir, unsigned keep,
	void (*removed)(const char *id, void *arg), void *arg);

/*
 * Encryption at rest (AES-256-GCM through EVP): a key per site, 32 bytes in a file owned by the
 * CTS's user and readable by no one else (64 hex digits or 32 raw bytes; image_key_load refuses
 * anything else), its id the first 16 hex digits of its sha256. An encrypted file is "GCAE2\n", a
 * 16-byte random salt, then segments of 1 MiB of plaintext, each its ciphertext and a 16-byte tag.
 * Each file has its own key, HKDF-SHA256(site key, salt); segment i of n has nonce i and
 * additional data "gca-image 2\n<checkpoint id>\n<path>\n", i and n, so a flipped byte,
 * swapped, dropped or cut segments, and a file moved to another path or image do not decrypt.
 * The manifest lists the encrypted files (sizes and sha256 of what is stored and sent) and says
 * "key <id>"; image_verify checks those, image_decrypt gives back the plain files.
 */
int image_key_load(const char *path, unsigned char key[IMAGE_KEY_LEN], char id[33], char *err,
	size_t errlen);
/* Encrypts, in place, every file the manifest in dir lists; the caller then reseals dir
 * (image_store_seal with m->key_id set) so the manifest describes the encrypted files. */
int image_encrypt(const char *dir, const unsigned char key[IMAGE_KEY_LEN], char *err,
	size_t errlen);
/* Decrypts in place, below files_dir (a copy image_verify made for uid -1, so owned by the CTS),
 * every file listed in manifest_dir/manifest; then, when uid != -1, chowns the files, their
 * folders and files_dir itself (last) to uid:gid, so the user gets the folder only when plain. */
int image_decrypt(const char *manifest_dir, const char *files_dir,
	const unsigned char key[IMAGE_KEY_LEN], uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
