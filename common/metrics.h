/*
 * common/metrics.c: the process's metrics (counters, gauges, histograms) and their text in the
 * Prometheus / OpenMetrics exposition format. proto/metrics.c serves them over HTTP; gcs/metrics.c
 * and cts/metrics.c define each daemon's set. docs/METRICS.md lists every name.
 *
 * A metric is defined once (at start, before the loop) and then moved by name, with its labels as
 * NULL-terminated key, value pairs: metrics_add("gca_cts_checkpoints", 1, "core_service", "criu",
 * "outcome", "ok", NULL). Moving a metric that was never defined does nothing (a unit test or a
 * program without metrics links the same code). Thread-safe.
 */
#ifndef GCA_METRICS_H
#define GCA_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* A counter's name is its family's, without _total (the sample is NAME_total). */
void metrics_counter(const char *name, const char *help);
void metrics_gauge(const char *name, const char *help);
/* bounds: the buckets' upper bounds, increasing (+Inf is added) */
void metrics_histogram(const char *name, const char *help, const double *bounds, size_t n);

void metrics_add(const char *name, double v, ...) __attribute__((sentinel));
void metrics_set(const char *name, double v, ...) __attribute__((sentinel));
void metrics_observe(const char *name, double v, ...) __attribute__((sentinel));
/* Forgets every series of a gauge (before a scrape sets the ones that exist now). */
void metrics_clear(const char *name);

/* fn runs before each rendering, on the thread that renders (the daemon's loop): it sets the
 * gauges read at scrape time (queue depths, link states). */
void metrics_on_scrape(void (*fn)(void *arg), void *arg);

/* The text: openmetrics true gives application/openmetrics-text 1.0.0, else text format 0.0.4;
 * both end with "# EOF". A malloc'd string, or NULL without memory. */
char *metrics_render(bool openmetrics, size_t *len);

/* Every metric forgotten (tests; a daemon's end). */
void metrics_reset(void);

#endif
