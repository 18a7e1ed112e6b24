/*
 * cts/tail.c: hashing an image's files while criu (or QEMU) is still writing them, so that the
 * seal after the dump has only each file's last bytes left to hash (docs/BENCHMARKS.md, "criu
 * natively": hashing a 256 MiB dump after it took longer than the dump itself).
 *
 * A thread, in the CTS's child that runs the dump, learns the files criu creates at the top of
 * the image folder from inotify, opens each, and every few milliseconds hashes what each file
 * holds so far, reading on from where it stopped. It runs at nice 19 and takes no lock criu
 * waits for: no readdir (the folder's lock, which criu's creates need) and no writeback (ext4's
 * block allocation locks the inode criu appends to); a thread at nice 19 preempted while holding
 * such a lock would stretch the job's freeze. The seal starts each file's writeback itself
 * (image.c). This relies on the writer writing every file from
 * front to back and never going back into one (criu's images and its pages files, QEMU's
 * migration stream are written so): bytes it has read are taken as final. The seal checks the
 * rest: a file it meets is taken from here only if it is the very file (device and inode) the
 * thread opened, and is hashed whole otherwise; a file shorter than what was hashed fails there.
 * A rewrite in place that kept the size would give a manifest that no longer matches the file:
 * verify.c refuses such an image before any restore, so the worst outcome is a checkpoint that
 * cannot be restored, never a wrong restore. Only folders whose writer is root's criu or the
 * CTS's QEMU are tailed (never a folder a job's user can write to).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/image.h"

#define TAIL_MAX_FILES	256			/* more are left to the seal */
#define TAIL_NAP_NS	(2 * 1000 * 1000)	/* between two passes that found nothing new */
#define TAIL_NICE	19			/* only the time criu leaves */

struct tail_file {
	char		 name[NAME_MAX + 1];
	int		 fd;
	dev_t		 dev;
	ino_t		 ino;
	EVP_MD_CTX	*ctx;
	uint64_t	 size;		/* bytes hashed so far */
	bool		 failed;	/* the seal hashes this one whole */
};

struct image_tail {
	pthread_t		 thread;
	atomic_bool		 stop;
	int			 dirfd;
	int			 inotify;	/* IN_CREATE and IN_MOVED_TO of dirfd */
	unsigned char		*buf;
	struct tail_file	 files[TAIL_MAX_FILES];
	size_t			 n;
};

/* Hashes what f holds beyond what was hashed; true if it read anything. */
static bool
tail_read(struct image_tail *t, struct tail_file *f, bool to_end)
{
	bool any = false;

	while (!f->failed) {
		ssize_t n = read(f->fd, t->buf, IMAGE_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->failed = n < 0;
			break;
		}
		if (EVP_DigestUpdate(f->ctx, t->buf, (size_t)n) != 1) {
			f->failed = true;
			break;
		}
		f->size += (uint64_t)n;
		any = true;
		/* a pass serves every file in turn (criu may be writing another one), and a stop is
		 * seen within one buffer: the seal waits for this thread, and reads on itself */
		if (!to_end && ((uint64_t)n < IMAGE_BUF || atomic_load(&t->stop)))
			break;
	}
	return any;
}

/* A file the thread has not met yet: opened and its hash begun (false: left to the seal). */
static bool
tail_open(struct image_tail *t, const char *name)
{
	struct tail_file *f = &t->files[t->n];
	struct stat st;
	int fd;

	if (t->n >= TAIL_MAX_FILES || strlen(name) > NAME_MAX)
		return false;
	fd = openat(t->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (f->ctx = EVP_MD_CTX_new()) == NULL) {
		close(fd);
		return false;
	}
	if (EVP_DigestInit_ex(f->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(f->ctx);
		f->ctx = NULL;
		close(fd);
		return false;
	}
	snprintf(f->name, sizeof f->name, "%s", name);
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = 0;
	f->failed = false;
	t->n++;
	return true;
}

static struct tail_file *
tail_find(struct image_tail *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->files[i].name, name) == 0)
			return &t->files[i];
	return NULL;
}

/* The names criu created since the last pass opened, every file read on. True if anything was
 * read. */
static bool
tail_pass(struct image_tail *t)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	ssize_t n;
	size_t i;

	while ((n = read(t->inotify, ev, sizeof ev)) > 0) {
		for (char *p = ev; p < ev + n; ) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			/* the manifest's own names are the seal's, never tailed */
			if (e->len > 0 && !(e->mask & IN_ISDIR) && tail_find(t, e->name) == NULL &&
			    strncmp(e->name, "manifest", 8) != 0)
				tail_open(t, e->name);
			p += sizeof *e + e->len;
		}
	}
	for (i = 0; i < t->n; i++)
		any |= tail_read(t, &t->files[i], false);
	return any;
}

static void *
tail_main(void *arg)
{
	struct image_tail *t = arg;
	const struct timespec nap = { 0, TAIL_NAP_NS };

	/* The job is frozen while criu writes its pages: criu keeps the core it wants, this thread
	 * takes the time left (on a busy machine, the seal then hashes more itself). On Linux a
	 * thread's nice value is its own. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), TAIL_NICE);
	while (!atomic_load(&t->stop)) {
		if (!tail_pass(t))
			nanosleep(&nap, NULL);
	}
	return NULL;
}

struct image_tail *
image_tail_start(const char *dir)
{
	struct image_tail *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	if (getenv("GCA_CTS_NO_TAIL") != NULL) {	/* for measuring the seal without it */
		free(t);
		return NULL;
	}
	atomic_init(&t->stop, false);
	t->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	t->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	t->buf = malloc(IMAGE_BUF);
	/* watched before criu starts: no file it creates is missed (the folder is new and empty) */
	if (t->dirfd < 0 || t->inotify < 0 || t->buf == NULL ||
	    inotify_add_watch(t->inotify, dir, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR) < 0 ||
	    pthread_create(&t->thread, NULL, tail_main, t) != 0) {
		if (t->dirfd >= 0)
			close(t->dirfd);
		if (t->inotify >= 0)
			close(t->inotify);
		free(t->buf);
		free(t);
		return NULL;
	}
	return t;
}

void
image_tail_stop(struct image_tail *t)
{
	if (t == NULL || atomic_exchange(&t->stop, true))
		return;
	pthread_join(t->thread, NULL);
}

void
image_tail_free(struct image_tail *t)
{
	size_t i;

	if (t == NULL)
		return;
	image_tail_stop(t);
	for (i = 0; i < t->n; i++) {
		EVP_MD_CTX_free(t->files[i].ctx);
		close(t->files[i].fd);
	}
	close(t->dirfd);
	close(t->inotify);
	free(t->buf);
	free(t);
}

int
image_tail_take(struct image_tail *t, const char *rel, const struct stat *st, uint64_t *size,
    char sha256[65])
{
	struct tail_file *f;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (t == NULL || !atomic_load(&t->stop) || strchr(rel, '/') != NULL ||
	    (f = tail_find(t, rel)) == NULL || f->failed || f->ctx == NULL ||
	    f->dev != st->st_dev || f->ino != st->st_ino)
		return 1;
	if ((uint64_t)st->st_size < f->size) {
		errno = EIO;	/* shrank after bytes of it were hashed: not front to back */
		return -1;
	}
	tail_read(t, f, true);
	if (f->failed)
		return -1;
	if (EVP_DigestFinal_ex(f->ctx, md, &mdlen) != 1 || mdlen != 32)
		return -3;
	EVP_MD_CTX_free(f->ctx);
	f->ctx = NULL;		/* taken once */
	store_hex(md, sha256);
	*size = f->size;
	return 0;
}
