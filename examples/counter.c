/*
 * counter: the smallest self-checkpointing job, to copy.
 *
 *   counter [--log FILE] [--tick MS] [--stop-at N] [--checkpoint-every-ticks K] [--pad BYTES]
 *           [--incremental] [--slow-saves MS] [--pad-text]
 *
 * Counts from 0 (or from the value restored from <image_dir>/counter), one tick every MS
 * milliseconds (100), appending "counter <n>" to FILE (or stdout). Its state is one number: save
 * writes it to <image_dir>/counter, restore reads it back. Run it with
 *   gca-exec --gid G -- counter --log /tmp/c.log
 * and recover it with
 *   gca-recover --gid G --checkpoint latest -- counter --log /tmp/c.log
 * --pad adds a file of BYTES pseudo-random bytes to each image (to test large images); with
 * --pad-text its second half is text instead (a line repeated: state that compresses).
 * --incremental: when the CTS offers the previous image (app_incremental), only the counter is
 * written (the pad, which never changes what the counter means, stays in the parent).
 * --slow-saves MS: save number k sleeps k * MS milliseconds first, a job whose checkpoints get
 * slower (to watch --checkpoint-every auto follow it).
 * Exits 0 after "counter N" with --stop-at N, or on SIGTERM after "stopped at <n>".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wrappers/gca_app.h"

static int log_fd = STDOUT_FILENO;
static volatile sig_atomic_t stop;
static long pad_bytes;
static int pad_text;
static long slow_ms, nsaves;

/* <image_dir>/pad: pad_bytes of xorshift output, different for each count. */
static int
save_pad(const char *image_dir, unsigned long long n)
{
	char path[4096];
	uint64_t x = n * 2654435761ULL + 88172645463325252ULL, buf[8192];
	long left = pad_bytes;
	int fd;

	snprintf(path, sizeof path, "%s/pad", image_dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	while (left > 0) {
		size_t k = left < (long)sizeof buf ? (size_t)left : sizeof buf;
		for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = x;
		}
		if (pad_text && left <= pad_bytes / 2)
			for (size_t i = 0; i < sizeof buf; i++)
				((char *)buf)[i] = "counter state, a line of text\n"[i % 30];
		if (write(fd, buf, k) != (ssize_t)k) {
			close(fd);
			return -1;
		}
		left -= (long)k;
	}
	if (fsync(fd) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* One write() per line, on a file opened O_APPEND: lines never interleave or tear (and CRIU
 * restores files open for appending without checking their size). */
static void
say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) < 0)
		perror("counter: write");
}

/* Called by gca_app_poll when the CTS checkpoints us: write the state, durably. */
static int
save(const char *image_dir, void *arg)
{
	unsigned long long n = *(unsigned long long *)arg;
	char path[4096], text[32];
	int fd, len = snprintf(text, sizeof text, "%llu\n", n);

	if (slow_ms > 0) {
		long ms = ++nsaves * slow_ms;
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	if (pad_bytes > 0 && save_pad(image_dir, n) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/counter", image_dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* An incremental save on the offered parent: the counter only. */
static int
save_incr(const char *image_dir, const char *parent_id, const char *parent_dir, void *arg)
{
	long pad = pad_bytes;
	int rc;

	(void)parent_id;
	(void)parent_dir;
	pad_bytes = 0;
	rc = save(image_dir, arg);
	pad_bytes = pad;
	return rc == 0 ? 1 : -1;
}

/* Called by gca_app_init when gca-recover restarts us from a checkpoint. */
static int
restore(const char *image_dir, void *arg)
{
	unsigned long long *n = arg;
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof path, "%s/counter", image_dir);
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "counter: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	ok = fscanf(f, "%llu", n) == 1;
	fclose(f);
	if (!ok) {
		fprintf(stderr, "counter: %s does not hold a number\n", path);
		return -1;
	}
	say("restored %llu", *n);
	return 0;
}

static void
on_sigterm(int sig)
{
	(void)sig;
	stop = 1;
}

static long
number(const char *opt, const char *s)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : -1;

	if (s == NULL || *end != '\0' || v < 0) {
		fprintf(stderr, "counter: %s needs a number >= 0\n", opt);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigterm };	/* no SA_RESTART: wake the poll */
	unsigned long long n = 0;
	long tick = 100, stop_at = -1, every = 0;
	const char *log_path = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			log_path = argv[++i];
		else if (strcmp(argv[i], "--tick") == 0)
			tick = number(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--stop-at") == 0)
			stop_at = number(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--checkpoint-every-ticks") == 0)
			every = number(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--pad-text") == 0)
			pad_text = 1;
		else if (strcmp(argv[i], "--pad") == 0)
			pad_bytes = number(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--slow-saves") == 0)
			slow_ms = number(argv[i], argv[i + 1]), i++;
		else if (strcmp(argv[i], "--incremental") == 0)
			gca_app_incremental(save_incr);
		else {
			fprintf(stderr, "usage: counter [--log FILE] [--tick MS] [--stop-at N] "
			    "[--checkpoint-every-ticks K] [--pad BYTES] [--pad-text] [--incremental] "
			    "[--slow-saves MS]\n");
			return 2;
		}
	}
	if (log_path != NULL && (log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "counter: cannot open %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	if (gca_app_init(save, restore, &n) != 0)
		return 1;

	while (!stop) {
		gca_app_poll((int)tick);	/* the sleep; serves checkpoints meanwhile */
		if (stop)
			break;
		say("counter %llu", ++n);
		if (stop_at >= 0 && n >= (unsigned long long)stop_at)
			return 0;
		if (every > 0 && n % (unsigned long long)every == 0) {
			char id[64], err[512];
			uint64_t seq;

			if (gca_app_checkpoint(id, sizeof id, &seq, err, sizeof err) == 0)
				say("checkpoint %s seq %" PRIu64, id, seq);
			else
				say("checkpoint failed: %s", err);
		}
	}
	say("stopped at %llu", n);
	return 0;
}
