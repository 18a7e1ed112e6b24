/*
 * bench_job: the trivial self-checkpointing job `make bench` runs by the hundred under gca-exec.
 *
 *   gca-exec --gid G -- bench_job [--size BYTES]
 *
 * It does nothing but wait for the CTS. On save it writes one fixed file, <image_dir>/state, of
 * BYTES bytes (1024), fsynced as a real job would; on restore it checks the file is there. It
 * exits 0 on SIGTERM. Its state never changes, so every checkpoint costs the same: what is
 * measured is gca's path, not the job.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrappers/gca_app.h"

#define BENCH_JOB_MAX (1024 * 1024)

static volatile sig_atomic_t stop;

struct state {
	char	*bytes;
	size_t	 len;
};

static int
save(const char *image_dir, void *arg)
{
	const struct state *s = arg;
	char path[4096];
	int fd, e;

	snprintf(path, sizeof path, "%s/state", image_dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (write(fd, s->bytes, s->len) != (ssize_t)s->len || fsync(fd) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

static int
restore(const char *image_dir, void *arg)
{
	char path[4096];

	(void)arg;
	snprintf(path, sizeof path, "%s/state", image_dir);
	if (access(path, R_OK) != 0) {
		fprintf(stderr, "bench_job: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
on_sigterm(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigterm };	/* no SA_RESTART: wake the poll */
	struct state s = { NULL, 1024 };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end != '\0' || v < 1 || v > BENCH_JOB_MAX) {
				fprintf(stderr, "bench_job: --size needs 1 to %d bytes\n", BENCH_JOB_MAX);
				return 2;
			}
			s.len = (size_t)v;
		} else {
			fprintf(stderr, "usage: bench_job [--size BYTES]\n");
			return 2;
		}
	}
	if ((s.bytes = malloc(s.len)) == NULL)
		return 1;
	for (size_t i = 0; i < s.len; i++)
		s.bytes[i] = (char)('a' + i % 26);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (gca_app_init(save, restore, &s) != 0)
		return 1;
	while (!stop)
		gca_app_poll(1000);
	free(s.bytes);
	return 0;
}
