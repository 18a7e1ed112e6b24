/*
 * How fresh a replica is (issue 11), measured, never asserted: a site's slapd (the provider), a
 * replica made by `gca-site up --replica-of`, and gca-gcs writing to the provider.
 *
 * 1. freshness: one checkpoint_log at a time through gca-gcs; the time from the GCS's
 *    acknowledgement to the record being delivered by the replica to a client that follows it
 *    (syncrepl refreshAndPersist from the replica's own syncprov, ldap/dir_feed.c), p50 and p99;
 *    the same client on the provider says what the replica adds.
 * 2. catch-up: the replica's slapd is stopped, records are written through the GCS (256 in
 *    flight), the replica is started again; the time until its contextCSN equals the provider's,
 *    and the records each holds against those the GCS acknowledged.
 *
 * BENCH_QUICK=1 runs 200 and 1,000 instead of 1,000 and 10,000. Bounded by the deadline of
 * bench/lib (a phase cut short says so). Results: $GCA_BUILD/bench/replica.json (or
 * $BENCH_OUT/replica.json), printed by bench/table.
 */
#include <event2/event.h>
#include <ldap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "bench/lib/bench.h"
#include "common/common.h"
#include "ldap/gca_ldap.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

#define JOBS 20

static struct test_site site;
static struct event_base *base;
static char gcs_ep[64], replica_dir[300], replica_uri[256];

/* ---- when each record was acknowledged and when the replica showed it ---- */

struct seen {
	char		 id[ID_LEN + 1];
	double		 acked_ms, visible_ms;	/* monotonic; 0 = not yet */
	double		 provider_ms;		/* the same, on the provider's own feed */
	UT_hash_handle	 hh;
};
static struct seen *seen;

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct seen *
seen_get(const char *id)
{
	struct seen *s;

	HASH_FIND_STR(seen, id, s);
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		snprintf(s->id, sizeof s->id, "%s", id);
		HASH_ADD_STR(seen, id, s);
	}
	return s;
}

static void
seen_free(void)
{
	struct seen *s, *tmp;

	HASH_ITER(hh, seen, s, tmp) {
		HASH_DEL(seen, s);
		free(s);
	}
}

static bool feed_ready;

static void
on_replica_change(enum dir_change what, const struct dir_entry *e, void *arg)
{
	const char *id;

	if (what == DIR_CHANGE_REFRESHED)
		feed_ready = true;
	if (what != DIR_CHANGE_ADD || (id = dir_entry_get(e, "gcaCheckpointId")) == NULL)
		return;
	struct seen *s = seen_get(id);
	double *at = arg ? &s->provider_ms : &s->visible_ms;
	if (*at == 0)
		*at = now_ms();
}

/* ---- the GCS, as a CTS ---- */

static struct proto_client *cts;
static int answered, stored, failed;	/* replies; records acknowledged; records refused */

static void
on_reply(const char *code, const char *msg, const void *body, void *arg)
{
	char *id = arg;
	static int shown;

	(void)body;
	answered++;
	if (code != NULL) {
		if (shown++ < 3)
			fprintf(stderr, "bench: %s: %s\n", code, msg);
		failed += id != NULL;
	} else if (id != NULL) {
		seen_get(id)->acked_ms = now_ms();
		stored++;
	}
	free(id);
}

static void
send_record(int k)
{
	char gid[32], *id = xmalloc(ID_LEN + 1);
	struct msg_checkpoint_log r = { .checkpoint_id = id, .gid = gid, .cts = "cts-r",
		.core_service = "app", .image_name = "img", .kind = "external", .size = 1,
		.sha256 = TEST_IMAGE_SHA256 };

	id_new(id);
	snprintf(gid, sizeof gid, "repjob-%d", k % JOBS);
	proto_client_request(cts, "checkpoint_log", proto_type_find("checkpoint_log"), &r, on_reply, id);
}

/* Runs the loop until *counter reaches want, limit_s passes or the deadline; false if it did not. */
static bool
loop_until(int *counter, int want, double limit_s)
{
	uint64_t end = deadline_end(limit_s);

	while (*counter < want && time_mono_ms() < end && !deadline_passed())
		event_base_loop(base, EVLOOP_ONCE);	/* deadline_tick wakes it */
	return *counter >= want;
}

static bool
loop_until_flag(bool *flag, double limit_s)
{
	uint64_t end = deadline_end(limit_s);

	while (!*flag && time_mono_ms() < end && !deadline_passed())
		event_base_loop(base, EVLOOP_ONCE);
	return *flag;
}

/* contextCSN of the suffix on a server: "" when it does not answer. */
static void
context_csn(const char *uri, char *out, size_t len)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "ldapsearch -x -LLL -o ldif-wrap=no -H '%s' -s base -b '%s' "
	    "contextCSN 2>/dev/null | awk '$1==\"contextCSN:\"{print $2}' | sort | tr -d '\\n'", uri,
	    "o=gca");
	out[0] = '\0';
	test_sh(out, len, "%s", cmd);
}

static int
record_count(const char *uri)
{
	char out[64];

	test_sh(out, sizeof out, "ldapsearch -x -LLL -H '%s' -b ou=jobs,o=gca -E pr=1000/noprompt "
	    "'(objectClass=gcaCheckpoint)' 1.1 2>/dev/null | grep -c '^dn:'", uri);
	return atoi(out);
}

/* ---- the parts ---- */

/* The provider's site, gca-gcs on it, the replica, and the GCS's connection as CTS cts-r. */
static int
replica_up(int *gcs_pid)
{
	char err[256], ca[400], crt[400], key[400];
	struct proto_tls_files t = { ca, crt, key };
	struct proto_client_config cfg = { .expect_role = "gcs", .timeout_ms = 60000 };

	if (test_site_up(&site) != 0 || test_pki(&site, "gcs gcs-r cts cts-r") != 0 ||
	    (*gcs_pid = test_gcs_start(&site, "gcs-r", "127.0.0.1:0", NULL, gcs_ep, sizeof gcs_ep)) < 0) {
		fprintf(stderr, "bench: cannot bring a site up (is $GCA_BUILD/gca-gcs built?)\n");
		return -1;
	}
	snprintf(replica_dir, sizeof replica_dir, "%s/replica", site.dir);
	if (test_sh(NULL, 0, "%s/scripts/gca-site up %s --replica-of %s --replicator %s/replicator.conf "
	    ">/dev/null 2>&1", test_top(), replica_dir, site.ldap_uri, site.dir) != 0 ||
	    test_sh(replica_uri, sizeof replica_uri, ". %s/site.env && printf %%s \"$GCA_LDAP_URI\"",
	    replica_dir) != 0) {
		fprintf(stderr, "bench: cannot start the replica\n");
		return -1;
	}
	snprintf(ca, sizeof ca, "%s/pki/ca.crt", site.dir);
	snprintf(crt, sizeof crt, "%s/pki/cts-cts-r.crt", site.dir);
	snprintf(key, sizeof key, "%s/pki/cts-cts-r.key", site.dir);
	cfg.endpoint = gcs_ep;
	if ((cts = proto_client_new(base, &t, &cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	for (int j = 0; j < JOBS; j++) {
		char gid[32];
		struct msg_job_bind b = { .gid = gid, .cts = "cts-r", .owner = "bench", .local_id = "1" };
		snprintf(gid, sizeof gid, "repjob-%d", j);
		proto_client_request(cts, "job_bind", proto_type_find("job_bind"), &b, on_reply, NULL);
	}
	if (!loop_until(&answered, JOBS, 30)) {
		fprintf(stderr, "bench: the jobs were not bound\n");
		return -1;
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ack -> visible on one feed (replica or provider), of the records seen there; sorted */
static void
freshness_lat(struct lat *l, bool provider, int *early, int *lost)
{
	for (struct seen *s = seen; s != NULL; s = s->hh.next) {
		double at = provider ? s->provider_ms : s->visible_ms;

		if (at == 0 || s->acked_ms == 0) {
			*lost += !provider && s->acked_ms != 0;
			continue;
		}
		if (at < s->acked_ms)
			*early += 1;	/* the feed had it before the GCS's reply reached us */
		lat_add(l, at > s->acked_ms ? at - s->acked_ms : 0);
	}
	qsort(l->ms, l->n, sizeof *l->ms, cmp_double);
}

/* 1. freshness: n records one at a time; a client following the replica and one the provider
 * (anonymous, as a broker would). */
static void
freshness(int n)
{
	struct dir_config fc = { .uri = replica_uri, .base = "o=gca" };
	struct dir_config pc = { .uri = site.ldap_uri, .base = "o=gca" };
	struct dir_feed *feed, *pfeed;
	int sent = 0, early = 0, lost = 0, pearly = 0, plost = 0, missing = 1;
	struct lat l, pl;
	struct timespec t0;
	char err[256];
	struct row *r;

	feed = dir_feed_open(base, &fc, "ou=jobs,o=gca", "(objectClass=gcaCheckpoint)",
	    on_replica_change, NULL, err, sizeof err);
	loop_until_flag(&feed_ready, 20);
	feed_ready = false;
	pfeed = dir_feed_open(base, &pc, "ou=jobs,o=gca", "(objectClass=gcaCheckpoint)",
	    on_replica_change, &pc, err, sizeof err);
	loop_until_flag(&feed_ready, 20);
	answered = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; sent < n && !deadline_passed(); sent++) {
		send_record(sent);
		if (!loop_until(&answered, sent + 1, 30))
			break;
	}
	/* the last ones may still be on their way */
	for (uint64_t end = deadline_end(10); missing > 0 && time_mono_ms() < end;) {
		missing = 0;
		for (struct seen *s = seen; s != NULL; s = s->hh.next)
			missing += s->acked_ms != 0 && s->visible_ms == 0;
		if (missing > 0)
			event_base_loop(base, EVLOOP_ONCE);
	}
	lat_init(&l, (size_t)n);
	lat_init(&pl, (size_t)n);
	freshness_lat(&l, false, &early, &lost);
	freshness_lat(&pl, true, &pearly, &plost);
	r = figures_rate("replica_freshness", sent < n ?
	    "replica: GCS ack -> record delivered by the replica (cut short)" :
	    "replica: GCS ack -> record delivered by the replica", (int)l.n, 1, lat_since(&t0) / 1000,
	    &l, lost);
	figures_extra(r, "seen_before_ack", early);
	figures_extra(r, "never_seen", lost);
	r = figures_rate("provider_freshness", "the same client on the provider itself", (int)pl.n, 1,
	    lat_since(&t0) / 1000, &pl, 0);
	figures_extra(r, "seen_before_ack", pearly);
	lat_free(&l);
	lat_free(&pl);
	dir_feed_close(pfeed);
	dir_feed_close(feed);
}

/* 2. catch-up: the replica down while m records are written, then started again. */
static void
catch_up(int m)
{
	char csn_p[512], csn_r[512] = "";
	int sent = 0, stored_before = stored, failed_before = failed;
	double t0 = now_ms(), start_ms, catchup_s = -1;
	uint64_t end;
	struct row *r;

	test_sh(NULL, 0, "kill $(cat %s/ldap/slapd.pid); for i in $(seq 100); do kill -0 $(cat "
	    "%s/ldap/slapd.pid 2>/dev/null) 2>/dev/null || break; sleep 0.1; done", replica_dir,
	    replica_dir);
	answered = 0;
	for (end = deadline_end(300); answered < sent || (sent < m && time_mono_ms() < end);) {
		while (sent < m && sent - answered < 256 && time_mono_ms() < end)
			send_record(sent++);
		if (deadline_passed())
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	r = figures_rate("replica_down_writes", answered < m ?
	    "replica down: records through gca-gcs (cut short)" : "replica down: records through gca-gcs",
	    stored - stored_before, 256, (now_ms() - t0) / 1000, NULL, failed - failed_before);
	if (answered < sent)
		figures_extra(r, "unanswered", sent - answered);
	context_csn(site.ldap_uri, csn_p, sizeof csn_p);
	start_ms = now_ms();
	test_sh(NULL, 0, "%s/scripts/gca-site up %s >/dev/null 2>&1", test_top(), replica_dir);
	for (end = deadline_end(120); time_mono_ms() < end; usleep(20 * 1000)) {
		context_csn(replica_uri, csn_r, sizeof csn_r);
		if (csn_r[0] != '\0' && strcmp(csn_r, csn_p) == 0) {
			catchup_s = (now_ms() - start_ms) / 1000;
			break;
		}
	}
	r = figures_secs("replica_catch_up", catchup_s < 0 ?
	    "replica: gca-site up until its contextCSN equals the provider's (never did)" :
	    "replica: gca-site up until its contextCSN equals the provider's", catchup_s);
	figures_extra(r, "records_acked", stored);
	figures_extra(r, "records_provider", record_count(site.ldap_uri));
	figures_extra(r, "records_replica", record_count(replica_uri));
}

int
main(void)
{
	bool quick = deadline_quick();
	int n = quick ? 200 : 1000, m = quick ? 1000 : 10000, pid = -1, rc = 0;
	char path[512];

	deadline_init(quick ? 4 : 6);	/* the site and the replica stop in a few seconds */
	log_init("bench_replica");
	log_set_level(LOG_ERROR);
	base = event_base_new();
	deadline_tick(base);
	if (replica_up(&pid) != 0) {
		rc = 1;
	} else {
		freshness(n);
		if (deadline_passed())
			figures_skipped("catch-up (no time left)");
		else
			catch_up(m);
	}
	proto_client_free(cts);
	if (pid > 0)
		test_gcs_stop(pid);
	if (replica_dir[0] != '\0')
		test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), replica_dir);
	test_site_down(&site);
	deadline_tick_free();
	event_base_free(base);
	seen_free();
	figures_path(path, sizeof path, "replica.json");
	if (figures_write(path, "bench_replica") == 0 && getenv("BENCH_DEADLINE") == NULL)
		test_sh(NULL, 0, "%s/bench/table '%s' >&2", test_top(), path);
	return deadline_signalled() ? 128 + deadline_signalled() : rc;
}
