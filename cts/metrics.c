/*
 * The CTS's metrics (docs/METRICS.md): its checkpoints, their phases' times and bytes, restores and
 * fetches, the outbox and the GCS link; served on metrics_listen (proto/metrics.c). Gauges are read
 * at scrape time, on the loop.
 */
#include <stdio.h>

#include "cts/cts.h"
#include "common/metrics.h"
#include "proto/metrics.h"

/* Seconds, from a few milliseconds (an app save) to many minutes (a large VM). */
static const double cts_metrics_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
};

void
cts_metrics_checkpoint(const struct cts_ckpt *ck, const char *error_code)
{
	const char *core = ck->cts->core->name;
	uint64_t now = time_mono_ms(), seal = ck->result.seal_ms, dump;

	metrics_add("gca_cts_checkpoints", 1, "core_service", core, "outcome",
	    error_code != NULL ? error_code : "ok", NULL);
	if (error_code != NULL || ck->start_mono_ms == 0 || ck->dumped_mono_ms == 0)
		return;
	/* dump: the core service's work up to the image written, its seal (hashing, manifest)
	 * apart; record: the outbox's write and the GCS's acknowledgement */
	dump = ck->dumped_mono_ms - ck->start_mono_ms;
	dump = dump > seal ? dump - seal : 0;
	metrics_observe("gca_cts_checkpoint_phase_seconds", dump / 1000.0, "core_service", core,
	    "phase", "dump", NULL);
	metrics_observe("gca_cts_checkpoint_phase_seconds", seal / 1000.0, "core_service", core,
	    "phase", "seal", NULL);
	metrics_observe("gca_cts_checkpoint_phase_seconds", (now - ck->dumped_mono_ms) / 1000.0,
	    "core_service", core, "phase", "record", NULL);
	metrics_add("gca_cts_image_bytes", (double)ck->result.size, "core_service", core, NULL);
}

void
cts_metrics_restore(const char *outcome)
{
	metrics_add("gca_cts_restores", 1, "outcome", outcome, NULL);
}

void
cts_metrics_fetch(const char *outcome)
{
	metrics_add("gca_cts_image_fetches", 1, "outcome", outcome, NULL);
}

static void
cts_metrics_scrape(void *arg)
{
	struct cts *c = arg;
	uint64_t now = time_now_ms(), oldest = 0;
	int depth = 0, gone = 0, jobs = 0;

	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		depth++;
		if (oldest == 0 || (it->rec.time_ms != 0 && it->rec.time_ms < oldest))
			oldest = it->rec.time_ms;
	}
	for (struct outbox_gone *g = c->outbox_gone; g != NULL; g = g->next)
		gone++;
	for (struct cts_job *j = c->jobs; j != NULL; j = j->next)
		jobs++;
	metrics_set("gca_cts_outbox_depth", depth, "kind", "record", NULL);
	metrics_set("gca_cts_outbox_depth", gone, "kind", "removal", NULL);
	metrics_set("gca_cts_outbox_oldest_age_seconds",
	    oldest != 0 && now > oldest ? (now - oldest) / 1000.0 : 0, NULL);
	metrics_set("gca_cts_gcs_link_up", c->gcs != NULL && proto_client_up(c->gcs) &&
	    c->registered ? 1 : 0, NULL);
	metrics_set("gca_cts_jobs", jobs, NULL);
	metrics_set("gca_cts_core_service_available", c->unavailable[0] == '\0' ? 1 : 0,
	    "core_service", c->core->name, NULL);
}

int
cts_metrics_open(struct cts *c, const char *listen, char *err, size_t errlen)
{
	metrics_tls_define();
	metrics_counter("gca_cts_checkpoints", "Checkpoints taken, by core service and outcome (ok: "
	    "recorded by the GCS; else the error code the asker got).");
	metrics_histogram("gca_cts_checkpoint_phase_seconds", "Time of a recorded checkpoint's "
	    "phases: dump (the core service's work), seal (hashing the image, its manifest), record "
	    "(outbox write and the GCS's acknowledgement).", cts_metrics_bounds,
	    GCA_NITEMS(cts_metrics_bounds));
	metrics_counter("gca_cts_image_bytes", "Bytes of the images of recorded checkpoints, by core "
	    "service.");
	metrics_counter("gca_cts_restores", "Restores prepared for gca-recover, by outcome (ok, or "
	    "the error code).");
	metrics_counter("gca_cts_image_fetches", "Images fetched from another CTS for a restore, by "
	    "outcome (ok, failed).");
	metrics_gauge("gca_cts_outbox_depth", "Outbox entries the GCS has not acknowledged: records "
	    "of checkpoints, removals of images.");
	metrics_gauge("gca_cts_outbox_oldest_age_seconds", "Age of the oldest record in the outbox "
	    "(from its checkpoint's time); 0 when empty.");
	metrics_gauge("gca_cts_gcs_link_up", "1 when the link to the GCS is up and registered, "
	    "else 0.");
	metrics_gauge("gca_cts_jobs", "Jobs bound to this CTS.");
	metrics_gauge("gca_cts_core_service_available", "1 when the core service works here, else "
	    "0 (the reason is published on the CTS's entry).");
	return metrics_serve(c->base, listen, cts_metrics_scrape, c, &c->metrics, err, errlen);
}

void
cts_metrics_close(struct cts *c)
{
	metrics_stop(&c->metrics);
}
