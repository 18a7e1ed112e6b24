/*
 * cts/crypt.c: encryption at rest of image files (AES-256-GCM through EVP) and the site key. The
 * stream is the only thing here that is encrypted or decrypted; the seal (image.c, manifest.c)
 * then hashes what is stored. app images are encrypted as image.c copies them
 * (crypt_encrypt_stream), criu and vmm images in place after their dump (crypt_encrypt_dir), and
 * a restore's copy is decrypted in place (crypt_decrypt_dir).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

/*
 * The stored form of a file.
 *
 * A file is encrypted in segments of CRYPT_SEG plaintext bytes (docs/DESIGN.md, "Image store safety":
 * the chunk index and count are associated data), so no GCM message grows past what one nonce
 * may cover and a reader checks each segment before it writes its bytes:
 *
 *   "GCAE2\n" | salt (16 random bytes) | segment 0 | ... | segment n-1
 *   segment i = ciphertext of CRYPT_SEG plaintext bytes (the last one 0..CRYPT_SEG) | tag (16)
 *
 * Each file has its own key, HKDF-SHA256(site key, salt), so nonces never repeat across the
 * files of a site; the nonce of segment i is i (96 bits, big-endian). The associated data of
 * segment i is "gca-image 2\n<checkpoint id>\n<path>\n", then i and the number of segments n
 * (8 bytes each, big-endian): a segment moved to another place in the file, a segment dropped, a
 * file cut (even at a segment boundary: n, which a reader takes from the stored size, changes), or
 * a file moved to another path or image all fail to decrypt. A file is encrypted at the size it
 * has when it is opened; one that shrinks meanwhile is refused.
 */

#define CRYPT_MAGIC	"GCAE2\n"
#define CRYPT_HDR	6
#define CRYPT_SALT	16
#define CRYPT_NONCE	12
#define CRYPT_TAG	16
#define CRYPT_SEG	(1024 * 1024)

/* What encrypting or decrypting one file needs: its key, the AD's fixed part, buffers. */
struct crypt_file {
	EVP_CIPHER_CTX	*ctx;
	unsigned char	 key[IMAGE_KEY_LEN];
	unsigned char	*plain, *cipher;	/* CRYPT_SEG, CRYPT_SEG + CRYPT_TAG */
	char		 ad[PATH_MAX + 128];
	size_t		 adlen;
};

int
crypt_key_load(const char *path, unsigned char key[IMAGE_KEY_LEN], char id[33], char *err,
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
		store_fail(err, errlen, "image key %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Checked on the descriptor that is read, so a file swapped meanwhile is not taken. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return store_fail(err, errlen, "image key %s: not a regular file", path);
		if (st.st_uid != geteuid())
			return store_fail(err, errlen, "image key %s: owned by uid %u, not by this CTS's "
			    "user (uid %u)", path, (unsigned)st.st_uid, (unsigned)geteuid());
		return store_fail(err, errlen, "image key %s: readable by others (mode %o): make it "
		    "0600", path, (unsigned)(st.st_mode & 0777));
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return store_fail(err, errlen, "image key %s: %s", path, strerror(errno));
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
		return store_fail(err, errlen, "image key %s: not 32 bytes or 64 hex digits", path);
	}
	OPENSSL_cleanse(buf, sizeof buf);
	EVP_Digest(key, IMAGE_KEY_LEN, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static void
crypt_file_free(struct crypt_file *s)
{
	EVP_CIPHER_CTX_free(s->ctx);
	OPENSSL_cleanse(s->key, sizeof s->key);
	free(s->plain);
	free(s->cipher);
}

/* The file's key from the site key and its salt, the AD's fixed part, buffers. */
static int
crypt_file_init(struct crypt_file *s, const unsigned char *site_key,
    const unsigned char salt[CRYPT_SALT], const char *id, const char *path)
{
	static const char info[] = "gca image file key";
	EVP_PKEY_CTX *kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t klen = sizeof s->key;
	int n, ok;

	memset(s, 0, sizeof *s);
	ok = kdf != NULL && EVP_PKEY_derive_init(kdf) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(kdf, salt, CRYPT_SALT) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_key(kdf, site_key, IMAGE_KEY_LEN) == 1 &&
	    EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)info, sizeof info - 1) == 1 &&
	    EVP_PKEY_derive(kdf, s->key, &klen) == 1 && klen == sizeof s->key;
	EVP_PKEY_CTX_free(kdf);
	n = snprintf(s->ad, sizeof s->ad, "gca-image 2\n%s\n%s\n", id, path);
	if (!ok || n < 0 || (size_t)n + 16 > sizeof s->ad || (s->ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    (s->plain = malloc(CRYPT_SEG)) == NULL ||
	    (s->cipher = malloc(CRYPT_SEG + CRYPT_TAG)) == NULL) {
		crypt_file_free(s);
		return -1;
	}
	s->adlen = (size_t)n + 16;
	return 0;
}

/* Nonce and AD of segment i of count; then the cipher is ready for its bytes. */
static int
crypt_file_segment(struct crypt_file *s, uint64_t i, uint64_t count, int enc)
{
	unsigned char nonce[CRYPT_NONCE] = { 0 };
	size_t at = s->adlen - 16;
	int outl;

	for (int b = 0; b < 8; b++) {
		nonce[CRYPT_NONCE - 1 - b] = (unsigned char)(i >> (8 * b));
		s->ad[at + 7 - b] = (char)(i >> (8 * b));
		s->ad[at + 15 - b] = (char)(count >> (8 * b));
	}
	return EVP_CipherInit_ex(s->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPT_NONCE, NULL) == 1 &&
	    EVP_CipherInit_ex(s->ctx, NULL, NULL, s->key, nonce, enc) == 1 &&
	    EVP_CipherUpdate(s->ctx, NULL, &outl, (unsigned char *)s->ad, (int)s->adlen) == 1 ?
	    0 : -1;
}

/* Writes p to out and into the hash of what is stored (when hash != NULL). */
static int
crypt_emit(int out, EVP_MD_CTX *hash, const unsigned char *p, size_t len, uint64_t *size)
{
	if (hash != NULL && EVP_DigestUpdate(hash, p, len) != 1)
		return -1;
	*size += len;
	return store_write_all(out, p, len);
}

/*
 * Encrypts the st_size bytes in has now into out, hashing what is written when hash != NULL (the
 * manifest lists the stored bytes). 0, -1 the cipher failed, -2 I/O (errno), -3 the file shrank
 * while it was read.
 */
int
crypt_encrypt_stream(int in, int out, const unsigned char *site_key, const char *id,
    const char *path, EVP_MD_CTX *hash, uint64_t *size)
{
	unsigned char salt[CRYPT_SALT];
	struct crypt_file s;
	struct stat st;
	uint64_t plain, count;
	int outl, rc = -1;

	*size = 0;
	if (fstat(in, &st) != 0)
		return -2;
	plain = (uint64_t)st.st_size;
	count = plain == 0 ? 1 : (plain + CRYPT_SEG - 1) / CRYPT_SEG;
	if (RAND_bytes(salt, sizeof salt) != 1 || crypt_file_init(&s, site_key, salt, id, path) != 0)
		return -1;
	if (crypt_emit(out, hash, (const unsigned char *)CRYPT_MAGIC, CRYPT_HDR, size) != 0 ||
	    crypt_emit(out, hash, salt, sizeof salt, size) != 0) {
		rc = -2;
		goto out;
	}
	for (uint64_t i = 0; i < count; i++) {
		size_t n = plain - i * CRYPT_SEG < CRYPT_SEG ? (size_t)(plain - i * CRYPT_SEG) :
		    CRYPT_SEG;
		ssize_t got = store_read_full(in, s.plain, n);

		if (got < 0 || (size_t)got != n) {
			rc = got < 0 ? -2 : -3;
			goto out;
		}
		if (crypt_file_segment(&s, i, count, 1) != 0 ||
		    (n > 0 && EVP_CipherUpdate(s.ctx, s.cipher, &outl, s.plain, (int)n) != 1) ||
		    EVP_CipherFinal_ex(s.ctx, s.cipher + n, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(s.ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG, s.cipher + n) != 1)
			goto out;
		if (crypt_emit(out, hash, s.cipher, n + CRYPT_TAG, size) != 0) {
			rc = -2;
			goto out;
		}
	}
	rc = 0;
out:
	crypt_file_free(&s);
	return rc;
}

/*
 * Decrypts in (stored bytes, size bytes) into out, each segment checked before its plaintext is
 * written. 0, -1 it does not decrypt (altered, moved, cut, another key), -2 I/O (errno).
 */
static int
crypt_decrypt_stream(int in, int out, uint64_t size, const unsigned char *site_key, const char *id,
    const char *path)
{
	unsigned char hdr[CRYPT_HDR + CRYPT_SALT];
	const uint64_t full = CRYPT_SEG + CRYPT_TAG;
	struct crypt_file s;
	uint64_t body, count, written = 0;
	int outl, rc = -1;

	if (size < sizeof hdr + CRYPT_TAG || store_read_full(in, hdr, sizeof hdr) != sizeof hdr ||
	    memcmp(hdr, CRYPT_MAGIC, CRYPT_HDR) != 0)
		return -1;
	body = size - sizeof hdr;
	count = (body + full - 1) / full;
	/* what encrypting writes: only an empty file ends with a segment of no bytes */
	if (body - (count - 1) * full < CRYPT_TAG ||
	    (count > 1 && body - (count - 1) * full == CRYPT_TAG))
		return -1;
	if (crypt_file_init(&s, site_key, hdr + CRYPT_HDR, id, path) != 0)
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		size_t n = (size_t)(i + 1 < count ? full : body - i * full) - CRYPT_TAG;
		ssize_t got = store_read_full(in, s.cipher, n + CRYPT_TAG);

		if (got < 0) {
			rc = -2;
			goto out;
		}
		if ((size_t)got != n + CRYPT_TAG || crypt_file_segment(&s, i, count, 0) != 0 ||
		    (n > 0 && EVP_CipherUpdate(s.ctx, s.plain, &outl, s.cipher, (int)n) != 1) ||
		    EVP_CIPHER_CTX_ctrl(s.ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG, s.cipher + n) != 1 ||
		    EVP_CipherFinal_ex(s.ctx, s.plain + n, &outl) != 1)
			goto out;
		if (crypt_emit(out, NULL, s.plain, n, &written) != 0) {
			rc = -2;
			goto out;
		}
	}
	rc = 0;
out:
	crypt_file_free(&s);
	return rc;
}

/* path below dirfd: encrypt (or decrypt) into a temp file, then rename over it. */
static int
crypt_rewrite_file(int dirfd, const char *id, const char *path, const unsigned char *key,
    bool enc, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int in = -1, o = -1, rc = -1;
	struct stat st;
	uint64_t size;

	if (snprintf(tmp, sizeof tmp, "%s.crypt.tmp", path) >= (int)sizeof tmp)
		return store_fail(err, errlen, "image file %s: path too long", path);
	if ((in = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(in, &st) != 0 ||
	    (o = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ||
	    fchown(o, st.st_uid, st.st_gid) != 0) {
		store_fail(err, errlen, "image file %s: %s", path, strerror(errno));
		goto out;
	}
	rc = enc ? crypt_encrypt_stream(in, o, key, id, path, NULL, &size) :
	    crypt_decrypt_stream(in, o, (uint64_t)st.st_size, key, id, path);
	if (rc == -3)
		rc = -2, errno = EIO;	/* the store's own file: nothing writes to it now */
	if (rc == -1)
		store_fail(err, errlen, "image file %s of checkpoint %s: %s", path, id, enc ?
		    "cannot encrypt" : "does not decrypt with this site key (altered, moved, cut, or "
		    "another key)");
	else if (rc == 0 && (fsync(o) != 0 || renameat(dirfd, tmp, dirfd, path) != 0))
		rc = -2;
	if (rc == -2)
		store_fail(err, errlen, "image file %s: %s", path, strerror(errno));
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
crypt_dir(const char *manifest_dir, const char *files_dir, const unsigned char *key, bool enc,
    uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct image_meta m;
	struct image_list l;
	int dirfd, rc = 0;

	if (manifest_parse(manifest_dir, &m, &l, err, errlen) != 0)
		return -1;
	if ((dirfd = open(files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		store_list_free(&l);
		return store_fail(err, errlen, "image folder %s: %s", files_dir, strerror(errno));
	}
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = crypt_rewrite_file(dirfd, m.checkpoint_id, l.v[i].path, key, enc, err, errlen);
	/* the files, then their folders, then the top: owned by the job's user only now */
	if (rc == 0)
		rc = store_give(dirfd, &l, uid, gid, files_dir, err, errlen);
	close(dirfd);
	store_list_free(&l);
	return rc;
}

int
crypt_encrypt_dir(const char *dir, const unsigned char key[IMAGE_KEY_LEN], char *err, size_t errlen)
{
	return crypt_dir(dir, dir, key, true, (uid_t)-1, (gid_t)-1, err, errlen);
}

int
crypt_decrypt_dir(const char *manifest_dir, const char *files_dir,
    const unsigned char key[IMAGE_KEY_LEN], uid_t uid, gid_t gid, char *err, size_t errlen)
{
	return crypt_dir(manifest_dir, files_dir, key, false, uid, gid, err, errlen);
}
