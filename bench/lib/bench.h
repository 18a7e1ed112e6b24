/*
 * What every benchmark program shares (docs/BENCHMARKS.md): one deadline for the whole of
 * bench/run and the stop signals (deadline.c), latency samples (lat.c), and the figures each
 * program gathers and writes as JSON under build/bench/ (figures.c). bench/table prints them.
 */
#ifndef GCA_BENCH_H
#define GCA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;

/* ---- deadline.c ---- */
/* BENCH_QUICK set and not "0" */
bool	 deadline_quick(void);
/*
 * Reads BENCH_DEADLINE (epoch seconds, set by bench/run for this program) or takes the program's
 * own budget (300 s, 60 s quick); measuring stops margin_s before it, to leave time to stop the
 * sites and write the figures. SIGINT and SIGTERM only set a flag (deadline_passed).
 */
void	 deadline_init(double margin_s);
/* Part of the time kept for what comes later: deadline_end and deadline_passed stop that much
 * earlier until deadline_reserve(0). */
void	 deadline_reserve(double s);
bool	 deadline_passed(void);		/* a signal came, or the (reserved) deadline is here */
int	 deadline_signalled(void);		/* the stop signal's number, or 0 */
uint64_t deadline_end(double max_s);	/* monotonic ms: now + max_s, never past the deadline */
/* A bounded wait slice in ms: at most 1 s, never past until (monotonic ms) nor the deadline;
 * 0 when there is no time left. */
int	 deadline_slice(uint64_t until);
/* A timer every 200 ms on base, so a loop blocked in event_base_loop(EVLOOP_ONCE) looks at the
 * deadline and the stop flag. */
void	 deadline_tick(struct event_base *base);
void	 deadline_tick_free(void);
/* Why measuring stopped early: "", "deadline", "SIGTERM" or "SIGINT" */
const char *deadline_why(void);

/* ---- lat.c ---- */
struct lat {
	double	*ms;
	size_t	 n, cap;
};
void	 lat_init(struct lat *l, size_t cap);
void	 lat_add(struct lat *l, double ms);	/* beyond cap: dropped */
void	 lat_free(struct lat *l);
double	 lat_pct(struct lat *l, double p);	/* sorts; 0 if empty */
double	 lat_since(const struct timespec *a);	/* ms from a to now (monotonic) */

/* ---- figures.c ---- */
/* A row is a rate (count in seconds, latencies), a time, a size in MiB or a count. */
struct row {
	char	 key[40], what[112];
	int	 n, inflight, errors;
	double	 secs, per_s, p50, p99, max, mib;
	bool	 has_lat, has_rate, has_mib, count_only;
	struct { char name[32]; long long v; } extra[4];
	int	 nextra;
};
struct row *figures_rate(const char *key, const char *what, int n, int inflight, double secs,
	struct lat *l, int errors);
struct row *figures_secs(const char *key, const char *what, double secs);
struct row *figures_mib(const char *key, const char *what, double mib);
struct row *figures_count(const char *key, const char *what, int n);
void	 figures_extra(struct row *r, const char *name, long long v);	/* a named number more */
struct row *figures_find(const char *key);
struct row *figures_at(int i);		/* 0 <= i < figures_mark() */
/* The row of highest rate among those whose key starts with prefix and that counted any; NULL */
struct row *figures_best(const char *prefix);
int	 figures_mark(void);		/* rows so far; figures_drop(mark) drops the rows after */
void	 figures_drop(int mark);
void	 figures_ratio(const char *key, const char *what, double v);
/* A part that did not run (the deadline, a failure): named in the JSON. */
void	 figures_skipped(const char *what);
/* Writes {meta, figures, ratios, skipped} whole to path (the meta: program, date, git commit,
 * host, kernel, slapd version, cores, quick, stopped); 0 or -1 with a message. */
int	 figures_write(const char *path, const char *program);
/* $BENCH_OUT, or $GCA_BUILD/bench (made if missing), + "/" + name */
void	 figures_path(char *out, size_t len, const char *name);

#endif
