/*
 * --checkpoint-every auto (docs/ARCHITECTURE.md, "Adaptive checkpoint intervals"): a job's
 * periodic checkpoints come at Daly's interval (common/daly.c) for
 *
 *   delta  the cost of its checkpoints: each one's dump + seal time as this CTS measures it (from
 *          its start to its sealed image, before the record), a running mean where the newest
 *          counts half, seeded on a recovery from the record restored;
 *   M      the mean time between failures: cts.conf mtbf (from "cts"); else observed: the time
 *          since the GID first started over the number of times it was recovered, when it was
 *          (from "restarts"); else 24 h (from "default").
 *
 * bounded by cts.conf auto_min and auto_max. Computed again after every checkpoint; the timer then
 * runs from that checkpoint's end. Every record carries cost_ms, delta_ms, restarts and since (so a
 * recovery, on any resource, goes on from them); an auto job's record also carries
 * "interval=auto:<T>ms delta=<d>ms mtbf=<M>ms mtbf_from=<source>", which the GCS also writes on
 * the job entry (gca-ctl jobs shows it).
 */
#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cts/cts.h"

/* Records restored lately (restore_prepare), each for the job bound next with its GID. */
#define INTERVAL_SEEDS	16
struct interval_seed {
	char		 gid[NAME_MAX_LEN + 1];
	uint64_t	 delta_ms, since_ms;
	unsigned	 restarts;
};
static struct interval_seed interval_seeds[INTERVAL_SEEDS];
static unsigned interval_seed_next;

/* The number after "name=" among rec's gcaProperty values; 0 if none. */
static uint64_t
interval_prop(const struct proto_entry *rec, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < rec->n; i++) {
		if (strcasecmp(rec->attrs[i].name, "gcaProperty") != 0)
			continue;
		for (size_t v = 0; v < rec->attrs[i].vals.n; v++) {
			const char *p = rec->attrs[i].vals.v[v];
			if (strncmp(p, name, nl) == 0 && p[nl] == '=')
				return strtoull(p + nl + 1, NULL, 10);
		}
	}
	return 0;
}

void
interval_seed(struct cts *c, const char *gid, const struct proto_entry *rec)
{
	struct interval_seed *s = &interval_seeds[interval_seed_next++ % INTERVAL_SEEDS];

	(void)c;
	snprintf(s->gid, sizeof s->gid, "%s", gid);
	s->delta_ms = interval_prop(rec, "delta_ms");
	s->since_ms = interval_prop(rec, "since");
	s->restarts = (unsigned)interval_prop(rec, "restarts");
}

void
interval_bind(struct cts_job *j, bool recovery)
{
	j->since_ms = time_now_ms();
	j->restarts = 0;
	j->delta_ms = 0;
	if (!recovery)
		return;	/* its timer already runs at auto_min: the first checkpoint measures delta */
	/* a recovery of a GID restarts it: once more than its record says (no record: once) */
	j->restarts = 1;
	for (size_t i = 0; i < INTERVAL_SEEDS; i++) {
		struct interval_seed *s = &interval_seeds[i];

		if (s->gid[0] == '\0' || strcmp(s->gid, j->gid) != 0)
			continue;
		j->delta_ms = s->delta_ms;
		j->restarts = s->restarts + 1;
		if (s->since_ms != 0 && s->since_ms < j->since_ms)
			j->since_ms = s->since_ms;
		s->gid[0] = '\0';	/* one job per restore */
		break;
	}
	if (j->timer != NULL && j->every_ms == CTS_EVERY_AUTO) {
		uint64_t ms = interval_ms(j);
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
		event_add(j->timer, &tv);	/* with the seeded cost */
	}
}

/* M, and where it came from. */
static uint64_t
interval_mtbf(const struct cts_job *j, const char **from)
{
	uint64_t now = time_now_ms();

	if (j->cts->mtbf_ms != 0) {
		*from = "cts";
		return j->cts->mtbf_ms;
	}
	if (j->restarts > 0 && now > j->since_ms) {
		*from = "restarts";
		return (now - j->since_ms) / j->restarts > 0 ? (now - j->since_ms) / j->restarts : 1;
	}
	*from = "default";
	return DALY_MTBF_DEFAULT_MS;
}

uint64_t
interval_ms(struct cts_job *j)
{
	const char *from;

	if (j->every_ms != CTS_EVERY_AUTO)
		return j->every_ms;
	j->interval_ms = daly_interval_ms(j->delta_ms, interval_mtbf(j, &from),
	    j->cts->auto_min_ms, j->cts->auto_max_ms);
	return j->interval_ms;
}

static void
interval_add(struct proto_strlist *props, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
interval_add(struct proto_strlist *props, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	proto_strlist_add(props, buf);
}

void
interval_measured(struct cts_ckpt *ck, struct proto_strlist *props)
{
	struct cts_job *j = ck->job;
	uint64_t now = time_now_ms(), cost = now > ck->time_ms ? now - ck->time_ms : 0, mtbf;
	const char *from;

	if (j->since_ms == 0)
		j->since_ms = ck->time_ms;	/* a job read back from STATE/jobs: from now on */

	/* the newest counts half: a job whose checkpoints grow is followed within a few */
	j->delta_ms = j->delta_ms == 0 ? cost : (j->delta_ms + cost + 1) / 2;
	interval_add(props, "cost_ms=%" PRIu64, cost);
	interval_add(props, "delta_ms=%" PRIu64, j->delta_ms);
	interval_add(props, "restarts=%u", j->restarts);
	interval_add(props, "since=%" PRIu64, j->since_ms);
	if (j->every_ms != CTS_EVERY_AUTO)
		return;
	mtbf = interval_mtbf(j, &from);
	j->interval_ms = daly_interval_ms(j->delta_ms, mtbf, j->cts->auto_min_ms,
	    j->cts->auto_max_ms);
	interval_add(props, "interval=auto:%" PRIu64 "ms delta=%" PRIu64 "ms mtbf=%" PRIu64
	    "ms mtbf_from=%s", j->interval_ms, j->delta_ms, mtbf, from);
	log_info("job %s: checkpoint %s cost %" PRIu64 " ms; next in %" PRIu64 " ms (Daly: delta %"
	    PRIu64 " ms, mtbf %" PRIu64 " ms from %s)", j->gid, ck->id, cost, j->interval_ms,
	    j->delta_ms, mtbf, from);
	if (j->timer != NULL) {
		struct timeval tv = { (time_t)(j->interval_ms / 1000),
			(suseconds_t)(j->interval_ms % 1000) * 1000 };
		event_add(j->timer, &tv);	/* from now: the next one comes T after this one */
	}
}
