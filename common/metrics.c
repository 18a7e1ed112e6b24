/*
 * The process's metrics and their exposition text (common/metrics.h, docs/METRICS.md).
 *
 * Few families (tens) with few series each (labels are core services, outcomes, reasons: never a
 * GID or a peer's name), so lists searched by name are enough. One lock for all: the GCS's
 * directory thread may move a metric while its loop renders them.
 */
#include <dirent.h>
#include <math.h>	/* isnan, isinf: macros, no -lm */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "common/metrics.h"

#define METRICS_LABELS	256	/* a series' rendered labels, at most */

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics_series {
	char			 labels[METRICS_LABELS];	/* k="v",k="v" */
	double			 value;				/* counter, gauge */
	double			 sum;				/* histogram */
	unsigned long long	*buckets;			/* histogram: per bound, +Inf last */
	unsigned long long	 count;
	struct metrics_series	*next;
};

struct metrics_family {
	char			*name, *help;
	enum metrics_type	 type;
	double			*bounds;
	size_t			 nbounds;
	struct metrics_series	*series, **tail;	/* in the order they appeared */
	struct metrics_family	*next;
};

struct metrics_hook {
	void			(*fn)(void *);
	void			*arg;
	struct metrics_hook	*next;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_family *metrics_families, **metrics_tail = &metrics_families;
static struct metrics_hook *metrics_hooks;

static struct metrics_family *
metrics_find(const char *name)
{
	for (struct metrics_family *f = metrics_families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static void
metrics_define(const char *name, enum metrics_type type, const char *help, const double *bounds,
    size_t n)
{
	struct metrics_family *f;

	pthread_mutex_lock(&metrics_lock);
	if (metrics_find(name) != NULL)
		goto out;
	f = xcalloc(1, sizeof *f);
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->type = type;
	f->tail = &f->series;
	if (n > 0 && (f->bounds = malloc(n * sizeof *bounds)) != NULL) {
		memcpy(f->bounds, bounds, n * sizeof *bounds);
		f->nbounds = n;
	}
	if (f->name == NULL || f->help == NULL) {
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
		goto out;
	}
	*metrics_tail = f;
	metrics_tail = &f->next;
out:
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_counter(const char *name, const char *help)
{
	metrics_define(name, METRICS_COUNTER, help, NULL, 0);
}

void
metrics_gauge(const char *name, const char *help)
{
	metrics_define(name, METRICS_GAUGE, help, NULL, 0);
}

void
metrics_histogram(const char *name, const char *help, const double *bounds, size_t n)
{
	metrics_define(name, METRICS_HISTOGRAM, help, bounds, n);
}

/* k="v",... with v escaped as the format says (backslash, quote, newline). */
static void
metrics_labels(char *out, size_t len, va_list ap)
{
	const char *k, *v;
	size_t o = 0;

	out[0] = '\0';
	while ((k = va_arg(ap, const char *)) != NULL && (v = va_arg(ap, const char *)) != NULL) {
		int w = snprintf(out + o, len - o, "%s%s=\"", o > 0 ? "," : "", k);

		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
		for (; *v != '\0' && o + 3 < len; v++) {
			if (*v == '\\' || *v == '"' || *v == '\n') {
				out[o++] = '\\';
				out[o++] = *v == '\n' ? 'n' : *v;
			} else
				out[o++] = *v;
		}
		if (o + 2 >= len)
			break;
		out[o++] = '"';
		out[o] = '\0';
	}
}

/* f's series with these labels, made when new. Under the lock. */
static struct metrics_series *
metrics_series(struct metrics_family *f, const char *labels)
{
	struct metrics_series *s;

	for (s = f->series; s != NULL; s = s->next)
		if (strcmp(s->labels, labels) == 0)
			return s;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	snprintf(s->labels, sizeof s->labels, "%s", labels);
	if (f->type == METRICS_HISTOGRAM &&
	    (s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets)) == NULL) {
		free(s);
		return NULL;
	}
	*f->tail = s;
	f->tail = &s->next;
	return s;
}

/* what: 0 add, 1 set, 2 observe */
static void
metrics_move(const char *name, enum metrics_type type, int what, double v, va_list ap)
{
	char labels[METRICS_LABELS];
	struct metrics_family *f;
	struct metrics_series *s;

	metrics_labels(labels, sizeof labels, ap);
	pthread_mutex_lock(&metrics_lock);
	/* a gauge may be added to as well (a count of what is open) */
	if ((f = metrics_find(name)) == NULL ||
	    (f->type != type && !(what == 0 && f->type == METRICS_GAUGE)) ||
	    (s = metrics_series(f, labels)) == NULL)
		goto out;
	if (what == 0)
		s->value += v;
	else if (what == 1)
		s->value = v;
	else {
		size_t i = 0;

		while (i < f->nbounds && v > f->bounds[i])
			i++;
		s->buckets[i]++;
		s->sum += v;
		s->count++;
	}
out:
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_add(const char *name, double v, ...)
{
	va_list ap;

	va_start(ap, v);
	metrics_move(name, METRICS_COUNTER, 0, v, ap);
	va_end(ap);
}

void
metrics_set(const char *name, double v, ...)
{
	va_list ap;

	va_start(ap, v);
	metrics_move(name, METRICS_GAUGE, 1, v, ap);
	va_end(ap);
}

void
metrics_observe(const char *name, double v, ...)
{
	va_list ap;

	va_start(ap, v);
	metrics_move(name, METRICS_HISTOGRAM, 2, v, ap);
	va_end(ap);
}

static void
metrics_series_free(struct metrics_series *s)
{
	while (s != NULL) {
		struct metrics_series *next = s->next;

		free(s->buckets);
		free(s);
		s = next;
	}
}

void
metrics_clear(const char *name)
{
	struct metrics_family *f;

	pthread_mutex_lock(&metrics_lock);
	if ((f = metrics_find(name)) != NULL) {
		metrics_series_free(f->series);
		f->series = NULL;
		f->tail = &f->series;
	}
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_on_scrape(void (*fn)(void *arg), void *arg)
{
	struct metrics_hook *h = calloc(1, sizeof *h);

	if (h == NULL)
		return;
	h->fn = fn;
	h->arg = arg;
	pthread_mutex_lock(&metrics_lock);
	h->next = metrics_hooks;
	metrics_hooks = h;
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_reset(void)
{
	pthread_mutex_lock(&metrics_lock);
	while (metrics_families != NULL) {
		struct metrics_family *f = metrics_families;

		metrics_families = f->next;
		metrics_series_free(f->series);
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	metrics_tail = &metrics_families;
	while (metrics_hooks != NULL) {
		struct metrics_hook *h = metrics_hooks;

		metrics_hooks = h->next;
		free(h);
	}
	pthread_mutex_unlock(&metrics_lock);
}

/* ---- rendering ---- */

struct metrics_buf {
	char	*p;
	size_t	 len, cap;
	bool	 failed;
};

static void __attribute__((format(printf, 2, 3)))
metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 2 && !b->failed; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* A number as the format has it: integers without a fraction, +Inf, NaN. */
static const char *
metrics_number(double v, char *buf, size_t len)
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.9g", v);
	return buf;
}

/* One sample line: name{labels,extra} value */
static void
metrics_sample(struct metrics_buf *b, const char *name, const char *suffix, const char *labels,
    const char *extra, double v)
{
	char num[64];
	bool any = labels[0] != '\0' || extra[0] != '\0';

	metrics_printf(b, "%s%s%s%s%s%s%s %s\n", name, suffix, any ? "{" : "", labels,
	    labels[0] != '\0' && extra[0] != '\0' ? "," : "", extra, any ? "}" : "",
	    metrics_number(v, num, sizeof num));
}

static void
metrics_render_family(struct metrics_buf *b, const struct metrics_family *f, bool om)
{
	static const char *types[] = { "counter", "gauge", "histogram" };
	/* the text format 0.0.4 names a counter by its sample (NAME_total), OpenMetrics by its
	 * family (NAME) */
	const char *suffix = f->type == METRICS_COUNTER && !om ? "_total" : "";
	char le[80], num[64];

	metrics_printf(b, "# HELP %s%s %s\n", f->name, suffix, f->help);
	metrics_printf(b, "# TYPE %s%s %s\n", f->name, suffix, types[f->type]);
	for (const struct metrics_series *s = f->series; s != NULL; s = s->next) {
		if (f->type == METRICS_COUNTER) {
			metrics_sample(b, f->name, "_total", s->labels, "", s->value);
			continue;
		}
		if (f->type == METRICS_GAUGE) {
			metrics_sample(b, f->name, "", s->labels, "", s->value);
			continue;
		}
		unsigned long long cum = 0;
		for (size_t i = 0; i <= f->nbounds; i++) {
			cum += s->buckets[i];
			snprintf(le, sizeof le, "le=\"%s\"", i < f->nbounds ?
			    metrics_number(f->bounds[i], num, sizeof num) : "+Inf");
			metrics_sample(b, f->name, "_bucket", s->labels, le, (double)cum);
		}
		metrics_sample(b, f->name, "_sum", s->labels, "", s->sum);
		metrics_sample(b, f->name, "_count", s->labels, "", (double)s->count);
	}
}

/* RSS and open descriptors, from /proc/self, at every scrape. */
static void
metrics_process(struct metrics_buf *b)
{
	unsigned long long size, rss;
	long page = sysconf(_SC_PAGESIZE);
	FILE *fp = fopen("/proc/self/statm", "r");
	DIR *d;
	struct dirent *e;
	long nfd = 0;

	if (fp != NULL) {
		if (fscanf(fp, "%llu %llu", &size, &rss) == 2) {
			metrics_printf(b, "# HELP gca_process_resident_memory_bytes Resident memory "
			    "of this process (/proc/self/statm).\n"
			    "# TYPE gca_process_resident_memory_bytes gauge\n"
			    "gca_process_resident_memory_bytes %llu\n", rss * (unsigned long long)page);
		}
		fclose(fp);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((e = readdir(d)) != NULL)
			nfd += e->d_name[0] != '.';
		closedir(d);
		metrics_printf(b, "# HELP gca_process_open_fds Open file descriptors of this process "
		    "(/proc/self/fd).\n# TYPE gca_process_open_fds gauge\ngca_process_open_fds %ld\n",
		    nfd - 1);	/* not the one reading /proc/self/fd */
	}
}

char *
metrics_render(bool openmetrics, size_t *len)
{
	struct metrics_buf b = { .cap = 8192 };
	struct metrics_hook *hooks;

	/* the hooks set gauges, which takes the lock: run them without it */
	pthread_mutex_lock(&metrics_lock);
	hooks = metrics_hooks;
	pthread_mutex_unlock(&metrics_lock);
	for (struct metrics_hook *h = hooks; h != NULL; h = h->next)
		h->fn(h->arg);
	if ((b.p = malloc(b.cap)) == NULL)
		return NULL;
	b.p[0] = '\0';
	pthread_mutex_lock(&metrics_lock);
	for (struct metrics_family *f = metrics_families; f != NULL; f = f->next)
		metrics_render_family(&b, f, openmetrics);
	pthread_mutex_unlock(&metrics_lock);
	metrics_process(&b);
	metrics_printf(&b, "# EOF\n");
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
