/* Latency samples of one phase, in milliseconds, and their percentiles. */
#include <stdlib.h>

#include "bench/lib/bench.h"
#include "common/common.h"

void
lat_init(struct lat *l, size_t cap)
{
	l->n = 0;
	l->cap = cap;
	l->ms = xcalloc(cap ? cap : 1, sizeof *l->ms);
}

void
lat_add(struct lat *l, double ms)
{
	if (l->n < l->cap)
		l->ms[l->n++] = ms;
}

void
lat_free(struct lat *l)
{
	free(l->ms);
	l->ms = NULL;
	l->n = l->cap = 0;
}

static int
lat_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p (0..1) of the samples. */
double
lat_pct(struct lat *l, double p)
{
	if (l->n == 0)
		return 0;
	qsort(l->ms, l->n, sizeof *l->ms, lat_cmp);
	return l->ms[(size_t)(p * (double)(l->n - 1))];
}

double
lat_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}
