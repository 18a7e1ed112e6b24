/*
 * job: the VM suites' test job for the criu core service (built by tests/vm/criu.sh, run in the
 * guest under gca-exec and brought back by gca-recover).
 *
 *   job --log FILE [--tick MS] [--mib N] [--text-mib N] [--stdout 1] [--creds 1]
 *
 * Fills N MiB (4) of heap with a pattern and touches every page (so it is resident), writes
 * "ready mib=N pid=P" to FILE, then every tick (100 ms) adds one to its counter, keeps the counter
 * in the heap too, checks a sample of the pattern and appends "counter N heap ok|bad" to FILE.
 * FILE is opened O_WRONLY|O_APPEND: one write() per line, and CRIU does not check the size of a
 * file open that way on restore. A restored copy goes on from the dumped counter, which is how the
 * suite sees where it resumed. On SIGTERM it writes "stopped at N" and exits 3; on SIGUSR1 it exits
 * 4 at once: the suite checks these come back through gca-recover. With --stdout 1 each counter
 * line also goes to stdout (a pipe, in the suite: a write to a pipe nobody reads kills the job).
 * With --creds 1, SIGHUP makes it append its credentials as it sees them, "cred NAME: VALUE" lines
 * from /proc/self/status (Uid, Gid, Groups, CapEff, CapPrm, CapBnd, CapAmb, NoNewPrivs) and
 * /proc/self/limits (open files, processes), then "cred end": tests/native/criu_user.sh compares
 * them before a dump and after a restore. --text-mib N adds N MiB of heap holding a line of text
 * over and over (the pattern does not compress, text does: tests/native/criu.sh's compression).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static volatile sig_atomic_t creds;

static void
on_hup(int sig)
{
	(void)sig;
	creds = 1;
}

/* The credentials lines of one /proc file whose names start with one of keys. */
static void
say_creds(int fd, const char *path, const char *const *keys)
{
	char line[512], out[600];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		for (int k = 0; keys[k] != NULL; k++) {
			if (strncmp(line, keys[k], strlen(keys[k])) != 0)
				continue;
			snprintf(out, sizeof out, "cred %s", line);
			if (write(fd, out, strlen(out)) < 0)
				_exit(2);
		}
	}
	fclose(f);
}

static void
on_usr1(int sig)
{
	(void)sig;
	_exit(4);
}

static uint64_t
pattern(size_t i)
{
	return (uint64_t)i * 0x9e3779b97f4a7c15ull ^ 0x5a5a5a5a5a5a5a5aull;
}

static void
say(int fd, const char *line)
{
	if (write(fd, line, strlen(line)) < 0)
		_exit(2);
}

char *text_heap;	/* --text-mib: global, so the compiler keeps its stores */

int
main(int argc, char **argv)
{
	const char *log = NULL;
	long tick = 100, mib = 4, out = 0, want_creds = 0, text_mib = 0;
	uint64_t *heap, counter = 0;
	size_t words, i;
	char line[128];
	int fd;

	for (int a = 1; a + 1 < argc; a += 2) {
		if (strcmp(argv[a], "--log") == 0)
			log = argv[a + 1];
		else if (strcmp(argv[a], "--tick") == 0)
			tick = atol(argv[a + 1]);
		else if (strcmp(argv[a], "--mib") == 0)
			mib = atol(argv[a + 1]);
		else if (strcmp(argv[a], "--stdout") == 0)
			out = atol(argv[a + 1]);
		else if (strcmp(argv[a], "--creds") == 0)
			want_creds = atol(argv[a + 1]);
		else if (strcmp(argv[a], "--text-mib") == 0)
			text_mib = atol(argv[a + 1]);
	}
	if (log == NULL || tick <= 0 || mib <= 0) {
		fprintf(stderr, "usage: job --log FILE [--tick MS] [--mib N] [--stdout 1]\n");
		return 2;
	}
	if ((fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		perror(log);
		return 2;
	}
	words = (size_t)mib * 1024 * 1024 / sizeof *heap;
	if ((heap = malloc(words * sizeof *heap)) == NULL)
		return 2;
	for (i = 0; i < words; i++)
		heap[i] = pattern(i);
	if (text_mib > 0) {
		static const char text[] = "counter state: a line of text, as a job's tables hold\n";
		size_t n = (size_t)text_mib * 1024 * 1024;

		if ((text_heap = malloc(n)) == NULL)
			return 2;
		for (i = 0; i < n; i++)
			text_heap[i] = text[i % (sizeof text - 1)];
	}
	signal(SIGTERM, on_term);
	signal(SIGUSR1, on_usr1);
	if (want_creds)
		signal(SIGHUP, on_hup);
	snprintf(line, sizeof line, "ready mib=%ld pid=%d\n", mib, (int)getpid());
	say(fd, line);
	while (!stop) {
		struct timespec ts = { tick / 1000, (tick % 1000) * 1000000 };
		int ok = 1;

		nanosleep(&ts, NULL);
		counter++;
		heap[0] = counter;	/* the heap holds the counter too: a restore brings both back */
		for (i = 1 + counter % 4099; i < words; i += 4099)
			ok &= heap[i] == pattern(i);
		snprintf(line, sizeof line, "counter %llu heap %s\n", (unsigned long long)heap[0],
		    ok ? "ok" : "bad");
		say(fd, line);
		if (out)
			say(STDOUT_FILENO, line);
		if (creds) {
			static const char *const status[] = { "Uid:", "Gid:", "Groups:", "CapEff:",
				"CapPrm:", "CapBnd:", "CapAmb:", "NoNewPrivs:", NULL };
			static const char *const limits[] = { "Max open files", "Max processes",
				NULL };

			creds = 0;
			say_creds(fd, "/proc/self/status", status);
			say_creds(fd, "/proc/self/limits", limits);
			say(fd, "cred end\n");
		}
	}
	snprintf(line, sizeof line, "stopped at %llu\n", (unsigned long long)counter);
	say(fd, line);
	return 3;
}
