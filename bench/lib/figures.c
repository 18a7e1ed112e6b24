/*
 * The figures of one benchmark program: rows (a rate with its latencies, a time, a size, a
 * count), ratios between them, and the parts that did not run; written whole as one JSON file
 * with what is needed to compare it with another run (where, when, which code, which slapd).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/lib/bench.h"
#include "common/common.h"
#include "tests/lib/testlib.h"

#define FIGURES_ROWS	64
#define FIGURES_RATIOS	24
#define FIGURES_SKIPPED	16

static struct row figures_rows[FIGURES_ROWS];
static int figures_nrows;
static struct { char key[48], what[112]; double v; } figures_ratios[FIGURES_RATIOS];
static int figures_nratios;
static char figures_skips[FIGURES_SKIPPED][80];
static int figures_nskips;

static struct row *
figures_new(const char *key, const char *what)
{
	struct row *r;

	if (figures_nrows == FIGURES_ROWS) {
		fprintf(stderr, "bench: more than %d rows: %s is not kept\n", FIGURES_ROWS, key);
		r = &figures_rows[FIGURES_ROWS - 1];	/* overwritten, never past the array */
	} else {
		r = &figures_rows[figures_nrows++];
	}
	memset(r, 0, sizeof *r);
	snprintf(r->key, sizeof r->key, "%s", key);
	snprintf(r->what, sizeof r->what, "%s", what);
	return r;
}

struct row *
figures_rate(const char *key, const char *what, int n, int inflight, double secs, struct lat *l,
    int errors)
{
	struct row *r = figures_new(key, what);

	r->n = n;
	r->inflight = inflight;
	r->secs = secs;
	r->per_s = secs > 0 ? (double)n / secs : 0;
	r->has_rate = true;
	r->errors = errors;
	if (l != NULL && l->n > 0) {
		r->has_lat = true;
		r->p50 = lat_pct(l, 0.5);
		r->p99 = lat_pct(l, 0.99);
		r->max = l->ms[l->n - 1];
	}
	return r;
}

struct row *
figures_secs(const char *key, const char *what, double secs)
{
	struct row *r = figures_new(key, what);

	r->n = 1;
	r->inflight = 1;
	r->secs = secs;
	return r;
}

struct row *
figures_mib(const char *key, const char *what, double mib)
{
	struct row *r = figures_new(key, what);

	r->mib = mib;
	r->has_mib = true;
	return r;
}

struct row *
figures_count(const char *key, const char *what, int n)
{
	struct row *r = figures_new(key, what);

	r->n = n;
	r->count_only = true;
	return r;
}

void
figures_extra(struct row *r, const char *name, long long v)
{
	if (r->nextra == (int)(sizeof r->extra / sizeof r->extra[0]))
		return;
	snprintf(r->extra[r->nextra].name, sizeof r->extra[0].name, "%s", name);
	r->extra[r->nextra++].v = v;
}

struct row *
figures_find(const char *key)
{
	for (int i = 0; i < figures_nrows; i++)
		if (strcmp(figures_rows[i].key, key) == 0)
			return &figures_rows[i];
	return NULL;
}

struct row *
figures_at(int i)
{
	return i >= 0 && i < figures_nrows ? &figures_rows[i] : NULL;
}

struct row *
figures_best(const char *prefix)
{
	struct row *b = NULL;

	for (int i = 0; i < figures_nrows; i++) {
		struct row *r = &figures_rows[i];
		if (strncmp(r->key, prefix, strlen(prefix)) == 0 && r->has_rate && r->n > 0 &&
		    (b == NULL || r->per_s > b->per_s))
			b = r;
	}
	return b;
}

int
figures_mark(void)
{
	return figures_nrows;
}

void
figures_drop(int mark)
{
	if (mark >= 0 && mark < figures_nrows)
		figures_nrows = mark;
}

void
figures_ratio(const char *key, const char *what, double v)
{
	if (figures_nratios == FIGURES_RATIOS)
		return;
	snprintf(figures_ratios[figures_nratios].key, sizeof figures_ratios[0].key, "%s", key);
	snprintf(figures_ratios[figures_nratios].what, sizeof figures_ratios[0].what, "%s", what);
	figures_ratios[figures_nratios++].v = v;
}

void
figures_skipped(const char *what)
{
	if (figures_nskips == FIGURES_SKIPPED)
		return;
	snprintf(figures_skips[figures_nskips++], sizeof figures_skips[0], "%s", what);
	fprintf(stderr, "bench: not run: %s\n", what);
}

void
figures_path(char *out, size_t len, const char *name)
{
	const char *o = getenv("BENCH_OUT"), *b = getenv("GCA_BUILD");
	char dir[512];

	if (o != NULL && *o != '\0')
		snprintf(dir, sizeof dir, "%s", o);
	else
		snprintf(dir, sizeof dir, "%s/bench", b != NULL && *b != '\0' ? b : "build");
	file_mkdirs(dir, 0755);
	snprintf(out, len, "%s/%s", dir, name);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void
figures_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* One line of a command's output, trailing newline cut; "unknown" if it failed or said nothing. */
static void
figures_sh(char *out, size_t len, const char *cmd)
{
	size_t n;

	if (test_sh(out, len, "%s", cmd) != 0 || out[0] == '\0')
		snprintf(out, len, "unknown");
	n = strcspn(out, "\n");
	out[n] = '\0';
}

static void
figures_meta(FILE *f, const char *program)
{
	char host[256] = "", date[32], commit[96], slapd[128], cmd[1200];
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;

	gethostname(host, sizeof host - 1);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	snprintf(cmd, sizeof cmd, "cd '%s' && c=$(git rev-parse --short=12 HEAD) && "
	    "{ [ -z \"$(git status --porcelain --untracked-files=no)\" ] && echo $c || echo $c-dirty; }",
	    test_top());
	figures_sh(commit, sizeof commit, cmd);
	figures_sh(slapd, sizeof slapd, "\"${SLAPD:-$(command -v slapd || echo /usr/sbin/slapd)}\" -VV "
	    "2>&1 | sed -n 's/.*slapd \\([^ ]*\\).*/\\1/p' | head -1");
	if (uname(&u) != 0)
		memset(&u, 0, sizeof u);
	fprintf(f, "  \"meta\": {\"program\": ");
	figures_str(f, program);
	fprintf(f, ", \"date\": \"%s\", \"commit\": ", date);
	figures_str(f, commit);
	fprintf(f, ", \"host\": ");
	figures_str(f, host);
	fprintf(f, ", \"kernel\": ");
	figures_str(f, u.release);
	fprintf(f, ", \"slapd\": ");
	figures_str(f, slapd);
	fprintf(f, ", \"cores\": %ld, \"quick\": %s, \"stopped\": ", sysconf(_SC_NPROCESSORS_ONLN),
	    deadline_quick() ? "true" : "false");
	figures_str(f, deadline_why());
	fprintf(f, "},\n");
}

static void
figures_row(FILE *f, const struct row *r)
{
	fprintf(f, "    {\"key\": ");
	figures_str(f, r->key);
	fprintf(f, ", \"what\": ");
	figures_str(f, r->what);
	if (r->has_mib)
		fprintf(f, ", \"mib\": %.1f", r->mib);
	else if (r->count_only)
		fprintf(f, ", \"count\": %d", r->n);
	else
		fprintf(f, ", \"count\": %d, \"in_flight\": %d, \"seconds\": %.3f", r->n, r->inflight,
		    r->secs);
	if (r->has_rate)
		fprintf(f, ", \"per_second\": %.1f, \"errors\": %d", r->per_s, r->errors);
	if (r->has_lat)
		fprintf(f, ", \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f", r->p50, r->p99, r->max);
	for (int i = 0; i < r->nextra; i++) {
		fprintf(f, ", ");
		figures_str(f, r->extra[i].name);
		fprintf(f, ": %lld", r->extra[i].v);
	}
	fprintf(f, "}");
}

int
figures_write(const char *path, const char *program)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (f == NULL)
		return -1;
	fprintf(f, "{\n");
	figures_meta(f, program);
	fprintf(f, "  \"figures\": [\n");
	for (int i = 0; i < figures_nrows; i++) {
		figures_row(f, &figures_rows[i]);
		fprintf(f, "%s\n", i + 1 < figures_nrows ? "," : "");
	}
	fprintf(f, "  ],\n  \"ratios\": [\n");
	for (int i = 0; i < figures_nratios; i++) {
		fprintf(f, "    {\"key\": ");
		figures_str(f, figures_ratios[i].key);
		fprintf(f, ", \"what\": ");
		figures_str(f, figures_ratios[i].what);
		fprintf(f, ", \"value\": %.3f}%s\n", figures_ratios[i].v, i + 1 < figures_nratios ? "," : "");
	}
	fprintf(f, "  ],\n  \"skipped\": [");
	for (int i = 0; i < figures_nskips; i++) {
		fprintf(f, "%s", i ? ", " : "");
		figures_str(f, figures_skips[i]);
	}
	fprintf(f, "]\n}\n");
	if (fclose(f) != 0) {
		free(buf);
		return -1;
	}
	if ((rc = file_write_whole(path, buf, len, 0644)) != 0)
		fprintf(stderr, "bench: cannot write %s\n", path);
	else
		fprintf(stderr, "bench: written %s\n", path);
	free(buf);
	return rc;
}
