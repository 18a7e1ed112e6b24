/*
 * The record path's cost, measured in one run on this machine (figures and ratios, never a
 * pass/fail): the directory ceiling (records straight into slapd through ldap/), the transport
 * ceiling (ping over mutual TLS), and checkpoint records through gca-gcs (a CTS's checkpoint_log,
 * acknowledged after the directory stored it). BENCH_QUICK=1 runs a tenth of the work.
 * Results: a table on stdout and build/bench/results.json.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

#define JOBS 100

static struct test_site site;
static struct event_base *base;
static char gcs_ep[64];

struct lat {
	double	*ms;
	size_t	 n;
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(struct lat *l, double p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	qsort(l->ms, l->n, sizeof *l->ms, cmp_double);
	i = (size_t)(p * (double)(l->n - 1));
	return l->ms[i];
}

struct row {
	const char	*what;
	const char	*how;
	double		 per_s, p50, p99, max;
	int		 n, inflight;
	double		 secs;
};
static struct row rows[8];
static int nrows;

static void
row_add(const char *what, const char *how, int n, int inflight, double secs, struct lat *l)
{
	struct row *r = &rows[nrows++];

	r->what = what;
	r->how = how;
	r->n = n;
	r->inflight = inflight;
	r->secs = secs;
	r->per_s = (double)n / secs;
	r->p50 = l ? pct(l, 0.5) : 0;
	r->p99 = l ? pct(l, 0.99) : 0;
	r->max = l && l->n ? l->ms[l->n - 1] : 0;
}

/* ---- 1. the directory ceiling ---- */

static void
count(const struct dir_result *r, void *arg)
{
	int *c = arg;

	c[0]++;
	c[1] += r->status == DIR_OK;
}

static void
bench_directory(int n)
{
	struct dir_config c;
	char err[256];
	struct dir *d;
	int done[2] = { 0 }, sent = 0, bound[2] = { 0 };
	uint64_t t0;

	dir_config_load(&c, site.gcs_conf, err, sizeof err);
	c.op_timeout_ms = 60000;
	d = dir_open(base, &c, err, sizeof err);
	for (int j = 0; j < JOBS; j++) {
		char gid[32];
		snprintf(gid, sizeof gid, "dirjob-%d", j);
		dir_job_bind(d, gid, "cts-b", "bench", "1", NULL, count, bound);
	}
	while (bound[0] < JOBS)
		event_base_loop(base, EVLOOP_ONCE);
	t0 = time_mono_ms();
	while (done[0] < n) {
		while (sent < n && sent - done[0] < 256) {
			char id[ID_LEN + 1], gid[32];
			struct dir_checkpoint r = { .id = id, .gid = gid, .cts = "cts-b",
				.core_service = "app", .image_name = "img", .kind = "external", .size = 1 };
			id_new(id);
			snprintf(gid, sizeof gid, "dirjob-%d", sent % JOBS);
			dir_checkpoint_log(d, &r, count, done);
			sent++;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	row_add("directory ceiling", "ldap/ dir_checkpoint_log", n, 256,
	    (double)(time_mono_ms() - t0) / 1000, NULL);
	if (done[1] != n)
		fprintf(stderr, "bench: %d of %d records failed\n", n - done[1], n);
	dir_close(d);
	dir_config_free(&c);
}

/* ---- 2. the transport ceiling ---- */

static struct proto_tls_files
files(const char *who)
{
	static char ca[400], crt[400], key[400];

	snprintf(ca, sizeof ca, "%s/pki/ca.crt", site.dir);
	snprintf(crt, sizeof crt, "%s/pki/%s.crt", site.dir, who);
	snprintf(key, sizeof key, "%s/pki/%s.key", site.dir, who);
	return (struct proto_tls_files){ ca, crt, key };
}

static void
bench_ping(int n)
{
	struct proto_tls_files t = files("broker-b");
	char err[256], code[32], msg[256];
	struct proto_sync *s = proto_sync_connect(gcs_ep, &t, "gcs", 10000, err, sizeof err);
	const struct proto_type *pt = proto_type_find("ping");
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	struct timespec a, b;
	uint64_t t0;

	t0 = time_mono_ms();
	for (int i = 0; i < n; i++) {
		void *reply;
		clock_gettime(CLOCK_MONOTONIC, &a);
		proto_sync_call(s, "ping", pt, NULL, &reply, code, sizeof code, msg, sizeof msg);
		clock_gettime(CLOCK_MONOTONIC, &b);
		free(reply);
		l.ms[l.n++] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	}
	row_add("transport ceiling", "ping, mTLS, 1 in flight", n, 1, (double)(time_mono_ms() - t0) / 1000, &l);
	t0 = time_mono_ms();
	for (int sent = 0, got = 0; got < n;) {
		struct proto_msg m;
		while (sent < n && sent - got < 256)
			proto_sync_send(s, "ping", (uint32_t)++sent, pt, NULL);
		if (proto_sync_read(s, 10000, pt->reply, &m, err, sizeof err) != 0)
			break;
		proto_msg_free(&m);
		got++;
	}
	row_add("transport ceiling", "ping, mTLS, 256 in flight", n, 256, (double)(time_mono_ms() - t0) / 1000, NULL);
	free(l.ms);
	proto_sync_close(s);
}

/* ---- 3. records through gca-gcs ---- */

struct pending {
	struct timespec	 sent;
	struct lat	*l;
	int		*done;
	char		 id[ID_LEN + 1];
};

static void
on_logged(const char *code, const char *msg, const void *body, void *arg)
{
	struct pending *p = arg;
	struct timespec now;

	(void)body;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (code != NULL)
		fprintf(stderr, "bench: checkpoint_log: %s %s\n", code, msg);
	else
		p->done[1]++;
	p->done[0]++;
	p->l->ms[p->l->n++] = (double)(now.tv_sec - p->sent.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - p->sent.tv_nsec) / 1e6;
	free(p);
}

static void
bench_gcs_records(int n, int inflight)
{
	struct proto_tls_files t = files("cts-cts-b");
	struct proto_client_config cfg = { .endpoint = gcs_ep, .expect_role = "gcs", .timeout_ms = 60000 };
	char err[256];
	struct proto_client *c = proto_client_new(base, &t, &cfg, err, sizeof err);
	const struct proto_type *pt = proto_type_find("checkpoint_log");
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	int done[2] = { 0 }, sent = 0, bound[2] = { 0 };
	uint64_t t0;
	static bool jobs_bound;

	if (!jobs_bound) {
		for (int j = 0; j < JOBS; j++) {
			char gid[32];
			struct msg_job_bind b = { .gid = gid, .cts = "cts-b", .owner = "bench", .local_id = "1" };
			struct pending *p = calloc(1, sizeof *p);
			snprintf(gid, sizeof gid, "gcsjob-%d", j);
			p->l = &l;
			p->done = bound;
			proto_client_request(c, "job_bind", proto_type_find("job_bind"), &b, on_logged, p);
		}
		while (bound[0] < JOBS)
			event_base_loop(base, EVLOOP_ONCE);
		l.n = 0;
		jobs_bound = true;
	}
	t0 = time_mono_ms();
	while (done[0] < n) {
		while (sent < n && sent - done[0] < inflight) {
			char gid[32];
			struct pending *p = calloc(1, sizeof *p);
			struct msg_checkpoint_log r = { .checkpoint_id = p->id, .gid = gid, .cts = "cts-b",
				.core_service = "app", .image_name = "img", .kind = "external", .size = 1 };
			id_new(p->id);
			snprintf(gid, sizeof gid, "gcsjob-%d", sent % JOBS);
			p->l = &l;
			p->done = done;
			clock_gettime(CLOCK_MONOTONIC, &p->sent);
			proto_client_request(c, "checkpoint_log", pt, &r, on_logged, p);
			sent++;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	row_add("records through gca-gcs", inflight == 1 ? "checkpoint_log, 1 in flight" :
	    "checkpoint_log, 256 in flight", n, inflight, (double)(time_mono_ms() - t0) / 1000, &l);
	free(l.ms);
	proto_client_free(c);
}

int
main(void)
{
	bool quick = getenv("BENCH_QUICK") != NULL;
	int n = quick ? 1000 : 10000, pid;
	FILE *json;
	char path[512];

	signal(SIGPIPE, SIG_IGN);
	log_init("bench_record");
	log_set_level(LOG_ERROR);
	if (test_site_up(&site) != 0 || test_pki(&site, "gcs gcs-b cts cts-b broker b") != 0 ||
	    (pid = test_gcs_start(&site, "gcs-b", "127.0.0.1:0", NULL, gcs_ep, sizeof gcs_ep)) < 0) {
		fprintf(stderr, "bench: cannot bring a site up\n");
		return 1;
	}
	base = event_base_new();
	bench_directory(n);
	bench_ping(quick ? 500 : 5000);
	bench_gcs_records(quick ? 200 : 1000, 1);
	bench_gcs_records(n, 256);
	test_gcs_stop(pid);
	test_site_down(&site);
	event_base_free(base);

	printf("\n%-26s %-32s %8s %6s %8s %10s %8s %8s %8s\n", "figure", "what", "count", "inflt",
	    "seconds", "per second", "p50 ms", "p99 ms", "max ms");
	for (int i = 0; i < nrows; i++)
		printf("%-26s %-32s %8d %6d %8.2f %10.0f %8.2f %8.2f %8.2f\n", rows[i].what, rows[i].how,
		    rows[i].n, rows[i].inflight, rows[i].secs, rows[i].per_s, rows[i].p50, rows[i].p99,
		    rows[i].max);
	printf("\nratio: records through gca-gcs / directory ceiling (256 in flight): %.2f\n",
	    rows[4].per_s / rows[0].per_s);
	printf("ratio: record latency at 1 in flight / ping round trip (p50): %.1f\n",
	    rows[3].p50 / rows[1].p50);
	snprintf(path, sizeof path, "%s/bench", getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build");
	file_mkdirs(path, 0755);
	strcat(path, "/results.json");
	if ((json = fopen(path, "w")) != NULL) {
		fprintf(json, "{\n  \"quick\": %s,\n  \"figures\": [\n", quick ? "true" : "false");
		for (int i = 0; i < nrows; i++)
			fprintf(json, "    {\"figure\": \"%s\", \"what\": \"%s\", \"count\": %d, \"in_flight\": %d, "
			    "\"seconds\": %.3f, \"per_second\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
			    "\"max_ms\": %.3f}%s\n", rows[i].what, rows[i].how, rows[i].n, rows[i].inflight,
			    rows[i].secs, rows[i].per_s, rows[i].p50, rows[i].p99, rows[i].max,
			    i + 1 < nrows ? "," : "");
		fprintf(json, "  ],\n  \"ratio_gcs_to_directory\": %.3f,\n  \"ratio_record_to_ping_p50\": %.2f\n}\n",
		    rows[4].per_s / rows[0].per_s, rows[3].p50 / rows[1].p50);
		fclose(json);
		printf("written: %s\n", path);
	}
	return 0;
}
