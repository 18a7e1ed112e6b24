/*
 * How fresh a replica is (issue 11), measured, never asserted: a site's slapd (the provider), a
 * replica made by `gca-site up --replica-of`, and gca-gcs writing to the provider.
 *
 * 1. freshness: one checkpoint_log at a time through gca-gcs; the time from the GCS's
 *    acknowledgement to the record being delivered by the replica to a client that follows it
 *    (syncrepl refreshAndPersist from the replica's own syncprov, ldap/dir_feed.c), p50 and p99.
 * 2. catch-up: the replica's slapd is stopped, records are written through the GCS (256 in
 *    flight), the replica is started again; the time until its contextCSN equals the provider's
 *    (and the record count is checked).
 *
 * BENCH_QUICK=1 runs 200 and 1,000 instead of 1,000 and 10,000. Results: a table on stdout and
 * $GCA_BUILD/bench/replica.json (or $BENCH_OUT/replica.json).
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
		if ((s = calloc(1, sizeof *s)) == NULL)
			abort();
		snprintf(s->id, sizeof s->id, "%s", id);
		HASH_ADD_STR(seen, id, s);
	}
	return s;
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
static int acked, failed;

static void
on_reply(const char *code, const char *msg, const void *body, void *arg)
{
	char *id = arg;

	(void)body;
	if (code != NULL) {
		fprintf(stderr, "bench: %s: %s\n", code, msg);
		failed++;
	} else if (id != NULL) {
		seen_get(id)->acked_ms = now_ms();
	}
	acked++;
	free(id);
}

static void
send_record(int k)
{
	char gid[32], *id = malloc(ID_LEN + 1);
	struct msg_checkpoint_log r = { .checkpoint_id = id, .gid = gid, .cts = "cts-r",
		.core_service = "app", .image_name = "img", .kind = "external", .size = 1 };

	id_new(id);
	snprintf(gid, sizeof gid, "repjob-%d", k % JOBS);
	proto_client_request(cts, "checkpoint_log", proto_type_find("checkpoint_log"), &r, on_reply, id);
}

static void
loop_until(int *counter, int want, double limit_ms)
{
	double end = now_ms() + limit_ms;

	while (*counter < want && now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(200);
}

/* ---- figures ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
	return n ? v[(size_t)(p * (double)(n - 1))] : 0;
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

int
main(void)
{
	bool quick = getenv("BENCH_QUICK") != NULL;
	int n = quick ? 200 : 1000, m = quick ? 1000 : 10000, pid, early = 0, lost = 0;
	struct proto_tls_files t;
	struct proto_client_config cfg = { .expect_role = "gcs", .timeout_ms = 60000 };
	struct dir_config fc = { 0 };
	struct dir_config pc = { 0 };
	struct dir_feed *feed, *pfeed;
	double *plat, pp50 = 0, pp99 = 0;
	size_t npl = 0;
	char err[256], ca[400], crt[400], key[400], csn_p[512], csn_r[512], path[512];
	double *lat, p50, p99, max, t0, catchup_ms = -1, start_ms;
	size_t nl = 0;
	int got_r = -1, got_p = -1;
	FILE *json;

	signal(SIGPIPE, SIG_IGN);
	log_init("bench_replica");
	log_set_level(LOG_ERROR);
	if (test_site_up(&site) != 0 || test_pki(&site, "gcs gcs-r cts cts-r") != 0 ||
	    (pid = test_gcs_start(&site, "gcs-r", "127.0.0.1:0", NULL, gcs_ep, sizeof gcs_ep)) < 0) {
		fprintf(stderr, "bench: cannot bring a site up (is $GCA_BUILD/gca-gcs built?)\n");
		test_site_down(&site);	/* what did start stops */
		return 1;
	}
	snprintf(replica_dir, sizeof replica_dir, "%s/replica", site.dir);
	if (test_sh(NULL, 0, "%s/scripts/gca-site up %s --replica-of %s --replicator %s/replicator.conf "
	    ">/dev/null 2>&1", test_top(), replica_dir, site.ldap_uri, site.dir) != 0 ||
	    test_sh(replica_uri, sizeof replica_uri, ". %s/site.env && printf %%s \"$GCA_LDAP_URI\"",
	    replica_dir) != 0) {
		fprintf(stderr, "bench: cannot start the replica\n");
		test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), replica_dir);
		test_gcs_stop(pid);
		test_site_down(&site);
		return 1;
	}
	base = event_base_new();
	snprintf(ca, sizeof ca, "%s/pki/ca.crt", site.dir);
	snprintf(crt, sizeof crt, "%s/pki/cts-cts-r.crt", site.dir);
	snprintf(key, sizeof key, "%s/pki/cts-cts-r.key", site.dir);
	t = (struct proto_tls_files){ ca, crt, key };
	cfg.endpoint = gcs_ep;
	cts = proto_client_new(base, &t, &cfg, err, sizeof err);
	for (int j = 0; j < JOBS; j++) {
		char gid[32];
		struct msg_job_bind b = { .gid = gid, .cts = "cts-r", .owner = "bench", .local_id = "1" };
		snprintf(gid, sizeof gid, "repjob-%d", j);
		proto_client_request(cts, "job_bind", proto_type_find("job_bind"), &b, on_reply, NULL);
	}
	loop_until(&acked, JOBS, 30000);

	/* 1. freshness: a client following the replica (anonymous, as a broker would). */
	fc.uri = replica_uri;
	fc.base = "o=gca";
	feed = dir_feed_open(base, &fc, "ou=jobs,o=gca", "(objectClass=gcaCheckpoint)",
	    on_replica_change, NULL, err, sizeof err);
	for (double end = now_ms() + 20000; !feed_ready && now_ms() < end; usleep(1000))
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	/* The same client on the provider: what the replica adds to the provider's own delay. */
	feed_ready = false;
	pc.uri = site.ldap_uri;
	pc.base = "o=gca";
	pfeed = dir_feed_open(base, &pc, "ou=jobs,o=gca", "(objectClass=gcaCheckpoint)",
	    on_replica_change, &pc, err, sizeof err);
	for (double end = now_ms() + 20000; !feed_ready && now_ms() < end; usleep(1000))
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	acked = 0;
	for (int k = 0; k < n; k++) {
		send_record(k);
		loop_until(&acked, k + 1, 30000);
	}
	/* the last ones may still be on their way */
	{
		double end = now_ms() + 10000;
		while (now_ms() < end) {
			int missing = 0;
			for (struct seen *s = seen; s != NULL; s = s->hh.next)
				missing += s->visible_ms == 0;
			if (missing == 0)
				break;
			event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
			usleep(1000);
		}
	}
	lat = calloc((size_t)n, sizeof *lat);
	for (struct seen *s = seen; s != NULL; s = s->hh.next) {
		if (s->visible_ms == 0 || s->acked_ms == 0) {
			lost++;
			continue;
		}
		if (s->visible_ms < s->acked_ms)
			early++;	/* the replica had it before the GCS's reply reached us */
		lat[nl++] = s->visible_ms > s->acked_ms ? s->visible_ms - s->acked_ms : 0;
	}
	qsort(lat, nl, sizeof *lat, cmp_double);
	plat = calloc((size_t)n, sizeof *plat);
	for (struct seen *s = seen; s != NULL; s = s->hh.next) {
		if (s->provider_ms != 0 && s->acked_ms != 0)
			plat[npl++] = s->provider_ms > s->acked_ms ? s->provider_ms - s->acked_ms : 0;
	}
	qsort(plat, npl, sizeof *plat, cmp_double);
	pp50 = pct(plat, npl, 0.5);
	pp99 = pct(plat, npl, 0.99);
	free(plat);
	dir_feed_close(pfeed);
	p50 = pct(lat, nl, 0.5);
	p99 = pct(lat, nl, 0.99);
	max = nl ? lat[nl - 1] : 0;
	dir_feed_close(feed);

	/* 2. catch-up: the replica down while m records are written. */
	test_sh(NULL, 0, "kill $(cat %s/ldap/slapd.pid); for i in $(seq 100); do kill -0 $(cat "
	    "%s/ldap/slapd.pid 2>/dev/null) 2>/dev/null || break; sleep 0.1; done", replica_dir,
	    replica_dir);
	acked = 0;
	t0 = now_ms();
	for (int sent = 0; acked < m && now_ms() - t0 < 300000;) {
		while (sent < m && sent - acked < 256)
			send_record(sent++);
		event_base_loop(base, EVLOOP_ONCE);
	}
	printf("wrote %d records through gca-gcs in %.2f s with the replica down\n", acked,
	    (now_ms() - t0) / 1000);
	context_csn(site.ldap_uri, csn_p, sizeof csn_p);
	start_ms = now_ms();
	test_sh(NULL, 0, "%s/scripts/gca-site up %s >/dev/null 2>&1", test_top(), replica_dir);
	while (now_ms() - start_ms < 120000) {
		context_csn(replica_uri, csn_r, sizeof csn_r);
		if (csn_r[0] != '\0' && strcmp(csn_r, csn_p) == 0) {
			catchup_ms = now_ms() - start_ms;
			break;
		}
		usleep(20 * 1000);
	}
	got_r = record_count(replica_uri);
	got_p = record_count(site.ldap_uri);

	proto_client_free(cts);
	test_gcs_stop(pid);
	test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), replica_dir);
	test_site_down(&site);
	event_base_free(base);

	printf("\nfreshness: GCS ack -> record delivered by the replica, %zu records, 1 in flight\n", nl);
	printf("  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d seen on the replica before the ack "
	    "arrived, counted as 0; %d never seen)\n", p50, p99, max, early, lost);
	printf("  the same client on the provider itself: p50 %.2f ms  p99 %.2f ms (%zu records)\n",
	    pp50, pp99, npl);
	printf("catch-up: replica down while %d records were written; from `gca-site up` to the "
	    "replica's contextCSN equal to the provider's: %.0f ms (%.2f s)\n", m, catchup_ms,
	    catchup_ms / 1000);
	printf("  records on the provider %d, on the replica %d\n", got_p, got_r);
	if (getenv("BENCH_OUT") != NULL)	/* a test's own folder */
		snprintf(path, sizeof path, "%s", getenv("BENCH_OUT"));
	else
		snprintf(path, sizeof path, "%s/bench", getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build");
	file_mkdirs(path, 0755);
	strcat(path, "/replica.json");
	if ((json = fopen(path, "w")) != NULL) {
		fprintf(json, "{\n  \"quick\": %s,\n  \"freshness\": {\"records\": %zu, \"p50_ms\": %.3f, "
		    "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"before_ack\": %d, \"never_seen\": %d,\n"
		    "    \"provider_p50_ms\": %.3f, \"provider_p99_ms\": %.3f},\n"
		    "  \"catch_up\": {\"records_written_while_down\": %d, \"ms\": %.0f, "
		    "\"records_provider\": %d, \"records_replica\": %d}\n}\n", quick ? "true" : "false",
		    nl, p50, p99, max, early, lost, pp50, pp99, m, catchup_ms, got_p, got_r);
		fclose(json);
		printf("written: %s\n", path);
	}
	free(lat);
	{
		struct seen *s, *tmp;
		HASH_ITER(hh, seen, s, tmp) {
			HASH_DEL(seen, s);
			free(s);
		}
	}
	return 0;
}
