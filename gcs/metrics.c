/*
 * The GCS's metrics (docs/METRICS.md): what it records, the directory's queue and state, the
 * CTSes it hears, served on metrics_listen (proto/metrics.c). Gauges are read at scrape time, on
 * the loop; the directory queue's depth is the thread's atomic count (ldap/dir.c).
 */
#include <string.h>

#include "common/common.h"
#include "common/metrics.h"
#include "gcs/gcs.h"
#include "proto/metrics.h"

/* A label value from a peer's frame: one of ours, or "other" (a peer never makes new series). */
const char *
gcs_metrics_core(const char *core_service)
{
	static const char *const known[] = { "app", "criu", "vmm" };

	for (size_t i = 0; core_service != NULL && i < GCA_NITEMS(known); i++)
		if (strcmp(core_service, known[i]) == 0)
			return known[i];
	return "other";
}

void
gcs_metrics_record(const char *core_service, const char *outcome)
{
	metrics_add("gca_gcs_checkpoint_records", 1, "core_service",
	    gcs_metrics_core(core_service), "outcome", outcome, NULL);
}

static void
gcs_metrics_scrape(void *arg)
{
	struct gcs *g = arg;
	int up = 0, known = 0, subs = 0;

	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (c->retired)
			continue;
		known++;
		up += c->up;
	}
	for (struct gcs_sub *s = g->subs; s != NULL; s = s->next)
		subs++;
	metrics_set("gca_gcs_cts_up", up, NULL);
	metrics_set("gca_gcs_cts_known", known, NULL);
	metrics_set("gca_gcs_subscribers", subs, NULL);
	metrics_set("gca_gcs_directory_queue_depth", (double)dir_queued(g->dir), NULL);
	metrics_set("gca_gcs_directory_up", dir_connected(g->dir) ? 1 : 0, NULL);
}

/* Defines the set and, if listen is set, serves it. 0, or -1 with err. */
int
gcs_metrics_open(struct gcs *g, const char *listen, char *err, size_t errlen)
{
	metrics_tls_define();
	metrics_counter("gca_gcs_checkpoint_records", "Checkpoint records CTSes sent, by core "
	    "service and outcome (ok, duplicate: a resent record already stored, or the error code).");
	metrics_gauge("gca_gcs_cts_up", "CTSes whose heartbeat is current (up in the directory).");
	metrics_gauge("gca_gcs_cts_known", "CTSes this GCS knows of (registered or from the "
	    "directory), retired ones left out.");
	metrics_gauge("gca_gcs_subscribers", "Open event subscriptions.");
	metrics_gauge("gca_gcs_directory_queue_depth", "Directory operations queued for the "
	    "directory thread or in progress.");
	metrics_gauge("gca_gcs_directory_up", "1 when the directory thread holds a connection to "
	    "the directory, else 0.");
	return metrics_serve(g->base, listen, gcs_metrics_scrape, g, &g->metrics, err, errlen);
}

void
gcs_metrics_close(struct gcs *g)
{
	metrics_stop(&g->metrics);
}
