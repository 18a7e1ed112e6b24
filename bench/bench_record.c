/*
 * The record path's cost, measured in one run on this machine: figures and ratios, never a
 * pass/fail (issue 8, docs/BENCHMARKS.md). BENCH_QUICK=1 runs a short version.
 *
 * Site A, a whole `gca-site up` (slapd, gca-gcs, gca-cts app and criu) in a temp folder:
 *   (6) startup      gca-site up, one job under gca-exec, until its first routed checkpoint
 *   (1) directory    records straight into slapd through ldap/ (dir_checkpoint_log), and one
 *                    plain libldap add at a time (the "one directory add" of the latency target)
 *   (3) transport    ping round trips to gca-gcs over mutual TLS, 1 and 256 in flight
 *       records      a CTS's checkpoint_log through gca-gcs alone (no CTS, no job)
 *   (2) end to end   do_checkpoint from a broker through gca-gcs to the real gca-cts (app core
 *                    service) and its jobs (examples/bench_job under gca-exec), record stored,
 *                    1, 16 and 256 in flight over many GIDs
 *   (5) memory       VmHWM of gca-gcs and gca-cts during (2)
 * Site B, a directory filled offline with slapadd (jobs and their records):
 *   (4) reads        a job's checkpoints by GID through libldap and through the GCS's query
 *   (5) memory       VmHWM of a gca-gcs whose job cache followed the directory's change feed
 * BENCH_ONLY=a or BENCH_ONLY=b runs one site (to look at one part); GCA_KEEP=1 keeps the folders.
 * Results: one table on stdout, build/bench/results.json, and (full runs) bench/results.json.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <ldap.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

#define DIR_JOBS	100		/* GIDs the directory ceiling and records spread over */
#define MAX_ROWS	40

static bool quick;
static struct event_base *base;
static char build[512];		/* absolute $GCA_BUILD */

/* ---- figures ---- */

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
	if (l->n == 0)
		return 0;
	qsort(l->ms, l->n, sizeof *l->ms, cmp_double);
	return l->ms[(size_t)(p * (double)(l->n - 1))];
}

static double
ms_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* A row is a rate (count in seconds, latencies) or one value (seconds, or MiB). */
struct row {
	char	 key[32], what[80];
	int	 n, inflight, errors;
	double	 secs, per_s, p50, p99, max, mib;
	bool	 has_lat, has_rate, has_mib, count_only;
};
static struct row rows[MAX_ROWS];
static int nrows;

static struct row *
row_find(const char *key)
{
	for (int i = 0; i < nrows; i++)
		if (strcmp(rows[i].key, key) == 0)
			return &rows[i];
	return NULL;
}

static struct row *
row_new(const char *key, const char *fmt, ...)
{
	struct row *r = &rows[nrows < MAX_ROWS - 1 ? nrows++ : nrows];
	va_list ap;

	memset(r, 0, sizeof *r);
	snprintf(r->key, sizeof r->key, "%s", key);
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof r->what, fmt, ap);
	va_end(ap);
	return r;
}

static void
row_rate(const char *key, const char *what, int n, int inflight, double secs, struct lat *l, int errors)
{
	struct row *r = row_new(key, "%s", what);

	r->n = n;
	r->inflight = inflight;
	r->secs = secs;
	r->per_s = secs > 0 ? (double)n / secs : 0;
	r->has_rate = true;
	r->errors = errors;
	if (l != NULL && l->n > 0) {
		r->has_lat = true;
		r->p50 = pct(l, 0.5);
		r->p99 = pct(l, 0.99);
		r->max = l->ms[l->n - 1];
	}
}

static struct row *
row_secs(const char *key, const char *what, double secs)
{
	struct row *r = row_new(key, "%s", what);

	r->n = 1;
	r->inflight = 1;
	r->secs = secs;
	return r;
}

static void
row_mib(const char *key, const char *what, double mib)
{
	struct row *r = row_new(key, "%s", what);

	r->mib = mib;
	r->has_mib = true;
}

/* ---- processes ---- */

/* VmHWM (peak resident set) of pid in MiB; -1 if unknown. */
static double
proc_hwm_mib(int pid)
{
	char path[64], line[256];
	FILE *f;
	double kb = -1;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmHWM: %lf kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

/* Resets VmHWM to the current RSS (clear_refs 5), so the next reading is this phase's peak. */
static void
proc_hwm_reset(int pid)
{
	char path[64];
	bool ok = false;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/clear_refs", pid);
	/* written in place: file_write_whole's temp file and rename cannot work in /proc */
	if ((f = fopen(path, "w")) != NULL) {
		ok = fputs("5", f) != EOF;
		ok = fclose(f) == 0 && ok;
	}
	if (!ok)
		fprintf(stderr, "bench: cannot reset the peak RSS of %d (%s): it covers the whole run\n",
		    pid, path);
}

static int
pidfile(const char *dir, const char *name)
{
	char path[512], out[32];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (test_sh(out, sizeof out, "cat %s 2>/dev/null", path) != 0)
		return -1;
	return atoi(out);
}

static struct proto_sync *
connect_as(const char *dir, const char *who, const char *endpoint)
{
	char ca[400], crt[400], key[400], err[256];
	struct proto_tls_files t = { ca, crt, key };
	struct proto_sync *s;

	snprintf(ca, sizeof ca, "%s/pki/ca.crt", dir);
	snprintf(crt, sizeof crt, "%s/pki/%s.crt", dir, who);
	snprintf(key, sizeof key, "%s/pki/%s.key", dir, who);
	if ((s = proto_sync_connect(endpoint, &t, "gcs", 10000, err, sizeof err)) == NULL)
		fprintf(stderr, "bench: cannot connect to %s as %s: %s\n", endpoint, who, err);
	return s;
}

/* ====================================================================================
 * Site A: the whole site
 * ==================================================================================== */

struct site {
	char	 dir[256];
	char	 gcs_ep[64], cts_sock[400], dirconf[400];
	int	 gcs_pid, cts_pid;
	int	 njobs;
	int	*job_pid;
	char	(*gid)[32];
};
static struct site A;

static int
site_env(struct site *s, const char *var, char *out, size_t len)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, ". %s/site.env && printf %%s \"$%s\"", s->dir, var);
	return test_sh(out, len, "%s", cmd) == 0 && out[0] != '\0' ? 0 : -1;
}

static int
site_up(struct site *s)
{
	char log[8192];

	snprintf(s->dir, sizeof s->dir, "%s/gca-bench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	if (test_sh(log, sizeof log, "%s/scripts/gca-site up %s 2>&1", test_top(), s->dir) != 0) {
		fprintf(stderr, "bench: gca-site up %s failed:\n%s\n", s->dir, log);
		return -1;
	}
	if (site_env(s, "GCA_GCS_ENDPOINT", s->gcs_ep, sizeof s->gcs_ep) != 0 ||
	    site_env(s, "GCA_CTS_SOCKET", s->cts_sock, sizeof s->cts_sock) != 0) {
		fprintf(stderr, "bench: %s/site.env lacks the GCS endpoint or the CTS socket\n", s->dir);
		return -1;
	}
	snprintf(s->dirconf, sizeof s->dirconf, "%s/gcs-directory.conf", s->dir);
	s->gcs_pid = pidfile(s->dir, "gcs.pid");
	s->cts_pid = pidfile(s->dir, "cts-app.pid");
	return 0;
}

/* gca-exec --gid GID --cts SOCK -- bench_job; its output goes to the site's log/jobs.log. */
static int
job_spawn(struct site *s, int i)
{
	char exec[600], job[600], log[400];
	int pid;

	snprintf(s->gid[i], sizeof s->gid[i], "bench-%d", i);
	snprintf(exec, sizeof exec, "%s/gca-exec", build);
	snprintf(job, sizeof job, "%s/examples/bench_job", build);
	snprintf(log, sizeof log, "%s/log/jobs.log", s->dir);
	if ((pid = fork()) == 0) {
		FILE *f = fopen(log, "a");
		if (f != NULL) {
			dup2(fileno(f), 1);
			dup2(fileno(f), 2);
		}
		setpgid(0, 0);	/* a terminal's ^C reaches the bench, which stops them itself */
		execl(exec, "gca-exec", "--gid", s->gid[i], "--cts", s->cts_sock, "--", job, (char *)NULL);
		_exit(127);
	}
	s->job_pid[i] = pid;
	return pid;
}

/* gca-exec replaces itself with the job only after the CTS bound the GID: the job runs = bound. */
static int
job_wait_bound(struct site *s, int i, int timeout_ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)timeout_ms;
	char path[64], exe[600];

	snprintf(path, sizeof path, "/proc/%d/exe", s->job_pid[i]);
	while (time_mono_ms() < end) {
		ssize_t n = readlink(path, exe, sizeof exe - 1);
		int status;

		if (n > 0) {
			exe[n] = '\0';
			if (strstr(exe, "bench_job") != NULL)
				return 0;
		}
		if (waitpid(s->job_pid[i], &status, WNOHANG) == s->job_pid[i]) {
			fprintf(stderr, "bench: gca-exec for %s ended (status %d): see %s/log/jobs.log\n",
			    s->gid[i], status, s->dir);
			s->job_pid[i] = 0;
			return -1;
		}
		usleep(2000);
	}
	fprintf(stderr, "bench: %s was not bound within %d ms\n", s->gid[i], timeout_ms);
	return -1;
}

static void
jobs_stop(struct site *s)
{
	for (int i = 0; i < s->njobs; i++)
		if (s->job_pid[i] > 0)
			kill(s->job_pid[i], SIGTERM);
	for (int i = 0; i < s->njobs; i++)
		if (s->job_pid[i] > 0)
			waitpid(s->job_pid[i], NULL, 0);
}

static void
site_down(struct site *s)
{
	if (s->dir[0] == '\0')
		return;
	jobs_stop(s);
	test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), s->dir);
	if (getenv("GCA_KEEP") == NULL)
		file_remove_tree(s->dir);
	else
		fprintf(stderr, "bench: kept %s\n", s->dir);
	s->dir[0] = '\0';
}

/* One do_checkpoint, blocking; 0 ok. */
static int
do_checkpoint_once(struct proto_sync *b, const char *gid, char *why, size_t len)
{
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	struct msg_do_checkpoint req = { .gid = (char *)gid };
	char code[64];
	void *reply = NULL;

	if (proto_sync_call(b, "do_checkpoint", pt, &req, &reply, code, sizeof code, why, len) != 0)
		return -1;
	proto_body_free(pt->reply, reply);
	return 0;
}

/*
 * slapd 2.5.13 (Debian 12) was seen to segfault in syncprov under the record path (small RFC 5805
 * transactions while the GCS's job feed is open; see docs/BENCHMARKS.md). A benchmark that only
 * measured a dead directory would say nothing, so each phase of site A is checked: a crash is
 * counted and named in the table, slapd is started again (`gca-site up`), and the phase is run
 * once more.
 */
static int slapd_crashes;
static char crashed_in[160];

static bool
pid_alive(int pid)
{
	char path[64], stat[512], *p;
	FILE *f;
	bool alive = false;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (pid <= 0 || (f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(stat, sizeof stat, f) != NULL && (p = strrchr(stat, ')')) != NULL)
		alive = p[1] == ' ' && p[2] != 'Z';	/* a zombie is not alive */
	fclose(f);
	return alive;
}

/* true if slapd died during phase (it runs again when this returns, or the bench stops) */
static bool
slapd_crashed(struct site *s, const char *phase)
{
	char log[4096], why[256] = "";
	struct proto_sync *b;
	uint64_t end;
	size_t len;

	if (pid_alive(pidfile(s->dir, "ldap/slapd.pid")))
		return false;
	slapd_crashes++;
	len = strlen(crashed_in);
	snprintf(crashed_in + len, sizeof crashed_in - len, "%s%s", len ? ", " : "", phase);
	fprintf(stderr, "bench: slapd died during %s (see dmesg); starting it again\n", phase);
	if (test_sh(log, sizeof log, "%s/scripts/gca-site up %s 2>&1", test_top(), s->dir) != 0) {
		fprintf(stderr, "bench: gca-site up %s failed:\n%s\n", s->dir, log);
		return true;
	}
	/* the GCS reconnects on its own (backoff up to 2 s): wait for a routed checkpoint */
	if ((b = connect_as(s->dir, "broker-broker", s->gcs_ep)) == NULL)
		return true;
	for (end = time_mono_ms() + 30000; time_mono_ms() < end; usleep(100000))
		if (do_checkpoint_once(b, s->gid[0], why, sizeof why) == 0)
			break;
	if (time_mono_ms() >= end)
		fprintf(stderr, "bench: no checkpoint went through 30 s after the restart: %s\n", why);
	proto_sync_close(b);
	return true;
}

/*
 * A rate phase in flight: when its operations start failing and slapd is dead, it sends no more;
 * its rate is then the successes over the time to the last of them (the row says so).
 */
static struct timespec run_t0;
static double run_last_ok_s;

static void
run_start(void)
{
	clock_gettime(CLOCK_MONOTONIC, &run_t0);
	run_last_ok_s = 0;
}

static void
run_ok(void)
{
	run_last_ok_s = ms_since(&run_t0) / 1000;
}

static bool
run_slapd_died(int errors)
{
	return errors > 0 && !pid_alive(pidfile(A.dir, "ldap/slapd.pid"));
}

static void
run_row(const char *key, const char *what, int ok, int inflight, struct lat *l, int errors, bool died)
{
	char w[80];

	snprintf(w, sizeof w, "%s%s", what, died ? " (until slapd died)" : "");
	row_rate(key, w, ok, inflight, died ? run_last_ok_s : ms_since(&run_t0) / 1000, l, errors);
}

/* Runs a phase that adds rows; if slapd died meanwhile, its rows are dropped and it runs again. */
#define PHASE(name, call) do {						\
	int rows_before_ = nrows;					\
	call;								\
	if (slapd_crashed(&A, name)) {					\
		nrows = rows_before_;					\
		call;							\
		(void)slapd_crashed(&A, name " (again)");		\
	}								\
} while (0)

/* ---- (6) startup: gca-site up to the first routed checkpoint ---- */

static int
bench_startup(void)
{
	struct timespec t0;
	double up_ms, bound_ms;
	struct proto_sync *b;
	char why[512] = "";
	uint64_t end;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (site_up(&A) != 0)
		return -1;
	up_ms = ms_since(&t0);
	if (job_spawn(&A, 0) < 0 || job_wait_bound(&A, 0, 20000) != 0)
		return -1;
	bound_ms = ms_since(&t0);
	if ((b = connect_as(A.dir, "broker-broker", A.gcs_ep)) == NULL)
		return -1;
	/* retried: the CTS may still be registering when the broker first asks */
	for (end = time_mono_ms() + 20000; time_mono_ms() < end; usleep(20000))
		if (do_checkpoint_once(b, A.gid[0], why, sizeof why) == 0)
			break;
	if (time_mono_ms() >= end) {
		fprintf(stderr, "bench: the first checkpoint did not succeed: %s\n", why);
		proto_sync_close(b);
		return -1;
	}
	row_secs("startup_site_up", "startup: gca-site up returned", up_ms / 1000);
	row_secs("startup_job_bound", "startup: + first job bound (gca-exec)", bound_ms / 1000);
	row_secs("startup_first_checkpoint", "startup: + first routed checkpoint", ms_since(&t0) / 1000);
	proto_sync_close(b);
	return 0;
}

/* ---- (1) the directory ceiling ---- */

static void
count(const struct dir_result *r, void *arg)
{
	int *c = arg;

	c[0]++;
	c[1] += r->status == DIR_OK;
}

struct dir_pending {
	struct timespec	 t;
	struct lat	*l;
	int		*done;
};

static void
count_lat(const struct dir_result *r, void *arg)
{
	struct dir_pending *p = arg;

	if (r->status == DIR_OK) {
		p->l->ms[p->l->n++] = ms_since(&p->t);
		run_ok();
	}
	count(r, p->done);
	free(p);
}

static void
bench_dir_records(struct dir *d, int n, int inflight, double max_s, const char *key, const char *what)
{
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	int done[2] = { 0 }, sent = 0;
	uint64_t end = time_mono_ms() + (uint64_t)(max_s * 1000);
	bool died = false;

	run_start();
	while (done[0] < sent || (sent < n && time_mono_ms() < end)) {
		while (sent < n && sent - done[0] < inflight && time_mono_ms() < end) {
			char id[ID_LEN + 1], gid[32];
			struct dir_checkpoint r = { .id = id, .gid = gid, .cts = "cts-b",
				.core_service = "app", .image_name = "img", .kind = "external", .size = 1 };
			struct dir_pending *p = calloc(1, sizeof *p);
			id_new(id);
			snprintf(gid, sizeof gid, "dirjob-%d", sent % DIR_JOBS);
			p->l = &l;
			p->done = done;
			clock_gettime(CLOCK_MONOTONIC, &p->t);
			dir_checkpoint_log(d, &r, count_lat, p);
			sent++;
		}
		event_base_loop(base, EVLOOP_ONCE);
		if (!died && (died = run_slapd_died(done[0] - done[1])))
			end = 0;
	}
	run_row(key, what, done[1], inflight, &l, done[0] - done[1], died);
	free(l.ms);
}

/* One plain libldap add at a time, as the GCS's identity: what "one directory add" costs. */
static void
bench_ldap_add(const struct dir_config *c, int n, double max_s)
{
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	struct berval cred = { c->password ? strlen(c->password) : 0, c->password };
	int v3 = LDAP_VERSION3, ok = 0, errors = 0;
	uint64_t end = time_mono_ms() + (uint64_t)(max_s * 1000);
	struct timespec t0;
	LDAP *ld = NULL;

	if (ldap_initialize(&ld, c->uri) != LDAP_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
	    ldap_sasl_bind_s(ld, c->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL) != LDAP_SUCCESS) {
		fprintf(stderr, "bench: cannot bind to %s as %s\n", c->uri, c->bind_dn);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n && time_mono_ms() < end; i++) {
		char id[ID_LEN + 1], dn[512], sz[] = "1";
		char *oc[] = { "gcaCheckpoint", NULL }, *ids[] = { id, NULL }, *gids[] = { "dirjob-0", NULL };
		char *sizes[] = { sz, NULL };
		LDAPMod m0 = { LDAP_MOD_ADD, "objectClass", { oc } }, m1 = { LDAP_MOD_ADD, "gcaCheckpointId", { ids } };
		LDAPMod m2 = { LDAP_MOD_ADD, "gcaGID", { gids } }, m3 = { LDAP_MOD_ADD, "gcaImageSize", { sizes } };
		LDAPMod *mods[] = { &m0, &m1, &m2, &m3, NULL };
		struct timespec a;

		id_new(id);
		snprintf(dn, sizeof dn, "gcaCheckpointId=%s,gcaGID=dirjob-0,ou=jobs,%s", id, c->base);
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (ldap_add_ext_s(ld, dn, mods, NULL, NULL) == LDAP_SUCCESS)
			ok++;
		else
			errors++;
		l.ms[l.n++] = ms_since(&a);
	}
	row_rate("ldap_add_1", "one libldap add at a time (durable mdb)", ok, 1, ms_since(&t0) / 1000,
	    &l, errors);
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(l.ms);
}

static void
bench_directory(int n)
{
	struct dir_config c;
	char err[256];
	struct dir *d;
	int bound[2] = { 0 };

	if (dir_config_load(&c, A.dirconf, err, sizeof err) != 0) {
		fprintf(stderr, "bench: %s\n", err);
		return;
	}
	c.op_timeout_ms = 60000;
	if ((d = dir_open(base, &c, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		dir_config_free(&c);
		return;
	}
	for (int j = 0; j < DIR_JOBS; j++) {
		char gid[32];
		snprintf(gid, sizeof gid, "dirjob-%d", j);
		dir_job_bind(d, gid, "cts-b", "bench", "1", NULL, count, bound);
	}
	while (bound[0] < DIR_JOBS)
		event_base_loop(base, EVLOOP_ONCE);
	PHASE("directory 256", bench_dir_records(d, n, 256, quick ? 5 : 20, "directory_256",
	    "directory ceiling: ldap/ dir_checkpoint_log"));
	PHASE("directory 16", bench_dir_records(d, quick ? 300 : 3000, 16, quick ? 3 : 10,
	    "directory_16", "directory: ldap/ dir_checkpoint_log"));
	PHASE("directory 1", bench_dir_records(d, quick ? 100 : 500, 1, quick ? 3 : 10, "directory_1",
	    "one record at a time: dir_checkpoint_log"));
	dir_close(d);
	/* The same with RFC 5805 transactions (gcs.conf directory_transactions yes; off by default
	 * since slapd 2.5.13 crashes under them): what they would bring. */
	c.transactions = true;
	if ((d = dir_open(base, &c, err, sizeof err)) != NULL) {
		PHASE("directory with transactions", bench_dir_records(d, n, 256, quick ? 5 : 20,
		    "directory_txn_256", "directory, with transactions: dir_checkpoint_log"));
		dir_close(d);
	} else
		fprintf(stderr, "bench: %s\n", err);
	PHASE("libldap add", bench_ldap_add(&c, quick ? 100 : 500, quick ? 3 : 10));
	dir_config_free(&c);
}

/* ---- (3) the transport ceiling ---- */

static void
bench_ping(int n)
{
	struct proto_sync *s = connect_as(A.dir, "broker-broker", A.gcs_ep);
	const struct proto_type *pt = proto_type_find("ping");
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	char err[256], code[32], msg[256];
	struct timespec t0;
	int got = 0;

	if (s == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		struct timespec a;
		void *reply = NULL;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (proto_sync_call(s, "ping", pt, NULL, &reply, code, sizeof code, msg, sizeof msg) != 0)
			break;
		proto_body_free(pt->reply, reply);
		l.ms[l.n++] = ms_since(&a);
	}
	row_rate("ping_1", "transport: ping, mTLS", (int)l.n, 1, ms_since(&t0) / 1000, &l, n - (int)l.n);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int sent = 0; got < n;) {
		struct proto_msg m;
		while (sent < n && sent - got < 256)
			proto_sync_send(s, "ping", (uint32_t)++sent, pt, NULL);
		if (proto_sync_read(s, 10000, pt->reply, &m, err, sizeof err) != 0)
			break;
		proto_msg_free(&m);
		got++;
	}
	row_rate("ping_256", "transport: ping, mTLS", got, 256, ms_since(&t0) / 1000, NULL, n - got);
	free(l.ms);
	proto_sync_close(s);
}

/* ---- records through gca-gcs alone (a CTS's checkpoint_log, no CTS work) ---- */

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

	static int shown;

	(void)body;
	if (code != NULL && shown++ < 3)	/* a dead directory fails them all alike */
		fprintf(stderr, "bench: %s %s\n", code, msg);
	if (code == NULL) {
		p->done[1]++;
		if (p->l != NULL) {
			p->l->ms[p->l->n++] = ms_since(&p->sent);
			run_ok();
		}
	}
	p->done[0]++;
	free(p);
}

static void
bench_gcs_records(int n, int inflight, double max_s)
{
	char ca[400], crt[400], key[400], err[256];
	struct proto_tls_files t = { ca, crt, key };
	struct proto_client_config cfg = { .endpoint = A.gcs_ep, .expect_role = "gcs", .timeout_ms = 60000 };
	const struct proto_type *pt = proto_type_find("checkpoint_log");
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	int done[2] = { 0 }, sent = 0, bound[2] = { 0 };
	uint64_t end;
	bool died = false;
	struct proto_client *c;
	static bool jobs_bound;

	snprintf(ca, sizeof ca, "%s/pki/ca.crt", A.dir);
	snprintf(crt, sizeof crt, "%s/pki/cts-bench-cts.crt", A.dir);
	snprintf(key, sizeof key, "%s/pki/cts-bench-cts.key", A.dir);
	if (access(crt, R_OK) != 0 &&
	    test_sh(NULL, 0, "%s/scripts/gca-pki issue %s/pki cts bench-cts >/dev/null 2>&1", test_top(),
	    A.dir) != 0) {
		fprintf(stderr, "bench: cannot issue the bench-cts certificate\n");
		free(l.ms);
		return;
	}
	if ((c = proto_client_new(base, &t, &cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		free(l.ms);
		return;
	}
	if (!jobs_bound) {
		for (int j = 0; j < DIR_JOBS; j++) {
			char gid[32];
			struct msg_job_bind b = { .gid = gid, .cts = "bench-cts", .owner = "bench", .local_id = "1" };
			struct pending *p = calloc(1, sizeof *p);
			snprintf(gid, sizeof gid, "gcsjob-%d", j);
			p->done = bound;
			proto_client_request(c, "job_bind", proto_type_find("job_bind"), &b, on_logged, p);
		}
		while (bound[0] < DIR_JOBS)
			event_base_loop(base, EVLOOP_ONCE);
		jobs_bound = true;
	}
	run_start();
	end = time_mono_ms() + (uint64_t)(max_s * 1000);
	while (done[0] < sent || (sent < n && time_mono_ms() < end)) {
		while (sent < n && sent - done[0] < inflight && time_mono_ms() < end) {
			char gid[32];
			struct pending *p = calloc(1, sizeof *p);
			struct msg_checkpoint_log r = { .checkpoint_id = p->id, .gid = gid, .cts = "bench-cts",
				.core_service = "app", .image_name = "img", .kind = "external", .size = 1 };
			id_new(p->id);
			snprintf(gid, sizeof gid, "gcsjob-%d", sent % DIR_JOBS);
			p->l = &l;
			p->done = done;
			clock_gettime(CLOCK_MONOTONIC, &p->sent);
			proto_client_request(c, "checkpoint_log", pt, &r, on_logged, p);
			sent++;
		}
		event_base_loop(base, EVLOOP_ONCE);
		if (!died && (died = run_slapd_died(done[0] - done[1])))
			end = 0;
	}
	run_row(inflight == 1 ? "gcs_records_1" : "gcs_records_256",
	    "records via gca-gcs: checkpoint_log", done[1], inflight, &l, done[0] - done[1], died);
	free(l.ms);
	proto_client_free(c);
}

/* ---- (2) end to end: do_checkpoint through gca-gcs to gca-cts and the job, record stored ---- */

static void
bench_e2e(struct proto_sync *b, int n, int inflight, double max_s)
{
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	struct timespec *t = calloc((size_t)n + 1, sizeof *t), t0;
	int *job_of = calloc((size_t)n + 1, sizeof *job_of), sent = 0, got = 0, ok = 0, shown = 0;
	bool *busy = calloc((size_t)A.njobs, sizeof *busy);
	uint64_t end = time_mono_ms() + (uint64_t)(max_s * 1000);
	char err[256], key[32];
	int next = 0;
	double last_ok_s = 0;
	bool died = false;

	if (inflight > A.njobs)
		inflight = A.njobs;	/* one checkpoint per job at a time: more would only queue */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && time_mono_ms() < end)) {
		struct proto_msg m;
		uint32_t id;

		while (sent < n && sent - got < inflight && time_mono_ms() < end) {
			struct msg_do_checkpoint req;
			while (busy[next])
				next = (next + 1) % A.njobs;
			busy[next] = true;
			req = (struct msg_do_checkpoint){ .gid = A.gid[next] };
			job_of[++sent] = next;
			clock_gettime(CLOCK_MONOTONIC, &t[sent]);
			if (proto_sync_send(b, "do_checkpoint", (uint32_t)sent, pt, &req) != 0) {
				fprintf(stderr, "bench: do_checkpoint: the connection to the GCS broke\n");
				goto out;
			}
			next = (next + 1) % A.njobs;
		}
		if (proto_sync_read(b, 90000, pt->reply, &m, err, sizeof err) != 0) {
			fprintf(stderr, "bench: do_checkpoint: %s\n", err);
			break;
		}
		id = m.id;
		if (id >= 1 && id <= (uint32_t)sent) {
			busy[job_of[id]] = false;
			got++;
			if (strcmp(m.type, "ok") == 0) {
				l.ms[l.n++] = ms_since(&t[id]);	/* latencies of checkpoints done */
				ok++;
				last_ok_s = ms_since(&t0) / 1000;
			} else if (!died && !pid_alive(pidfile(A.dir, "ldap/slapd.pid"))) {
				/* what follows would measure a dead directory: send no more */
				died = true;
				end = 0;
			}
			if (strcmp(m.type, "ok") != 0 && shown++ < 3) {
				const struct msg_err *e = m.body;
				fprintf(stderr, "bench: do_checkpoint %s: %s %s\n", A.gid[job_of[id]],
				    e ? e->code : "?", e ? e->msg : "?");
			}
		}
		proto_msg_free(&m);
	}
out:
	snprintf(key, sizeof key, "e2e_%d", inflight);
	/* after a crash, the rate is the checkpoints done before it over the time until the last */
	row_rate(key, died ? "end to end: do_checkpoint, app CTS (until slapd died)" :
	    "end to end: do_checkpoint, app CTS", ok, inflight, died ? last_ok_s : ms_since(&t0) / 1000,
	    &l, got - ok);
	free(l.ms);
	free(t);
	free(job_of);
	free(busy);
}

/*
 * BENCH_PROFILE="cmd": cmd runs (sh -c, its own process group) around the end-to-end phase at
 * BENCH_PROFILE_INFLIGHT (1, 16 or 256; 1 if unset) in flight, with {gcs}, {cts} and {slapd} replaced by those pids, and gets SIGINT after it, e.g.
 *   BENCH_PROFILE='perf record -g -o /tmp/e2e.data -p {gcs},{cts},{slapd}'
 *   BENCH_PROFILE='strace -f -T -o /tmp/e2e.strace -p {cts}'
 * (docs/BENCHMARKS.md, "Where the time goes").
 */
static int
profile_start(int inflight)
{
	const char *tmpl = getenv("BENCH_PROFILE"), *at = getenv("BENCH_PROFILE_INFLIGHT");
	char cmd[2048] = "", num[16];
	size_t n = 0;
	int pid;

	if (tmpl == NULL || tmpl[0] == '\0' || (at ? atoi(at) : 1) != inflight)
		return 0;
	for (const char *t = tmpl; *t != '\0' && n + 16 < sizeof cmd;) {
		int v = strncmp(t, "{gcs}", 5) == 0 ? A.gcs_pid : strncmp(t, "{cts}", 5) == 0 ? A.cts_pid :
		    strncmp(t, "{slapd}", 7) == 0 ? pidfile(A.dir, "ldap/slapd.pid") : -1;
		if (v < 0) {
			cmd[n++] = *t++;
			continue;
		}
		t += t[1] == 's' ? 7 : 5;
		snprintf(num, sizeof num, "%d", v);
		n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s", num);
	}
	cmd[n] = '\0';
	fprintf(stderr, "bench: profiling end to end (%d in flight): %s\n", inflight, cmd);
	if ((pid = fork()) == 0) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	sleep(1);	/* perf and strace attach before the phase starts */
	return pid;
}

static void
profile_stop(int pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGINT);
	waitpid(pid, NULL, 0);
}

static int
bench_site_a(void)
{
	struct proto_sync *b;
	int n_e2e = quick ? 300 : 3000, prof;

	if (bench_startup() != 0)
		return -1;
	/* The directory and the transport first, while only one job runs. */
	bench_directory(quick ? 2000 : 10000);	/* each of its measurements a phase */
	bench_ping(quick ? 1000 : 5000);
	PHASE("records 1", bench_gcs_records(quick ? 100 : 500, 1, quick ? 3 : 10));
	PHASE("records 256", bench_gcs_records(quick ? 2000 : 10000, 256, quick ? 5 : 20));

	/* Every other job, each bound before the next starts (as a site would see them arrive). */
	for (int i = 1; i < A.njobs; i++)
		if (job_spawn(&A, i) < 0 || job_wait_bound(&A, i, 20000) != 0)
			return -1;
	if ((b = connect_as(A.dir, "broker-broker", A.gcs_ep)) == NULL)
		return -1;
	proc_hwm_reset(A.gcs_pid);
	proc_hwm_reset(A.cts_pid);
	prof = profile_start(1);
	PHASE("end to end 1", bench_e2e(b, quick ? 100 : 500, 1, quick ? 5 : 20));
	profile_stop(prof);
	prof = profile_start(16);
	PHASE("end to end 16", bench_e2e(b, n_e2e, 16, quick ? 8 : 40));
	profile_stop(prof);
	prof = profile_start(256);
	PHASE("end to end 256", bench_e2e(b, n_e2e, 256, quick ? 8 : 40));
	profile_stop(prof);
	row_mib("rss_gcs_e2e", "peak RSS (VmHWM) of gca-gcs during (2)", proc_hwm_mib(A.gcs_pid));
	row_mib("rss_cts_e2e", "peak RSS (VmHWM) of gca-cts (app) during (2)", proc_hwm_mib(A.cts_pid));
	proto_sync_close(b);
	return 0;
}

/* ====================================================================================
 * Site B: a directory filled offline (slapadd), then broker reads and a GCS's job cache
 * ==================================================================================== */

static struct test_site B;

/* The jobs and records as LDIF into slapadd (slapd stopped), in the layout gca-site made:
 * gcaGID=<gid>,ou=jobs,<suffix> and gcaCheckpointId=<id>,<job>. Returns its seconds, or -1. */
static double
fill_directory(int jobs, int per_job)
{
	char cmd[1200];
	struct timespec t0;
	FILE *p;
	int rc;

	if (test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), B.dir) != 0)
		return -1;
	snprintf(cmd, sizeof cmd, "slapadd -q -f %s/ldap/slapd.conf > %s/log/slapadd.log 2>&1", B.dir, B.dir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((p = popen(cmd, "w")) == NULL)
		return -1;
	for (int j = 0; j < jobs; j++) {
		fprintf(p, "dn: gcaGID=readjob-%d,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: readjob-%d\n"
		    "gcaCTSName: cts-app\ngcaJobState: running\ngcaOwner: bench\ngcaLocalId: %d\n"
		    "gcaLastSequence: %d\n\n", j, j, j, per_job);
		for (int r = 1; r <= per_job; r++) {
			char id[ID_LEN + 1];
			snprintf(id, sizeof id, "%08x-0000-7000-8000-%012x", (unsigned)j, (unsigned)r);
			fprintf(p, "dn: gcaCheckpointId=%s,gcaGID=readjob-%d,ou=jobs,o=gca\n"
			    "objectClass: gcaCheckpoint\ngcaCheckpointId: %s\ngcaGID: readjob-%d\n"
			    "gcaSequenceNumber: %d\ngcaCheckpointTime: 20261125090000Z\n"
			    "gcaCTSName: cts-app\ngcaCoreService: app\ngcaImageName: cts-app:images/readjob-%d/%s\n"
			    "gcaImageSize: 1024\ngcaCheckpointKind: external\n\n", id, j, id, j, r, j, id);
		}
	}
	rc = pclose(p);
	if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
		fprintf(stderr, "bench: slapadd failed: see %s/log/slapadd.log\n", B.dir);
		return -1;
	}
	return ms_since(&t0) / 1000;
}

/* slapd again after the offline fill (gca-site up on the same folder and port); the fill must be
 * there. gca-site lifts the 500-entry size limit for the GCS's identity (its job feed). */
static int
slapd_up_filled(void)
{
	char out[64] = "";

	if (test_site_restart_slapd(&B) != 0)
		return -1;
	test_sh(out, sizeof out, "ldapsearch -x -LLL -H %s -b gcaGID=readjob-0,ou=jobs,o=gca "
	    "'(objectClass=gcaCheckpoint)' dn 2>&1 | grep -c '^dn:'", B.ldap_uri);
	if (atoi(out) > 0)
		return 0;
	fprintf(stderr, "bench: slapd in %s answers but readjob-0 has no records: see its "
	    "log/slapd.log and log/slapadd.log\n", B.dir);
	return -1;
}

static unsigned
rnd(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) % 0x7fffffu;
}

/* A broker's lookup of one job's checkpoints by GID, as ldapsearch does it (anonymous). */
static void
bench_ldap_reads(int jobs, int per_job, int n, int inflight, double max_s)
{
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	struct timespec *t = calloc((size_t)n + 1, sizeof *t), t0;
	int *msgid = calloc((size_t)n + 1, sizeof *msgid);
	int v3 = LDAP_VERSION3, sent = 0, got = 0, ok = 0;
	uint64_t end = time_mono_ms() + (uint64_t)(max_s * 1000);
	unsigned seed = 42;
	char key[32];
	LDAP *ld = NULL;

	if (ldap_initialize(&ld, B.ldap_uri) != LDAP_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS) {
		fprintf(stderr, "bench: cannot open %s\n", B.ldap_uri);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && time_mono_ms() < end)) {
		LDAPMessage *res = NULL;
		int id, i;

		while (sent < n && sent - got < inflight && time_mono_ms() < end) {
			char filter[128];
			snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaGID=readjob-%u))",
			    rnd(&seed) % (unsigned)jobs);
			clock_gettime(CLOCK_MONOTONIC, &t[++sent]);
			if (ldap_search_ext(ld, "ou=jobs,o=gca", LDAP_SCOPE_SUBTREE, filter, NULL, 0, NULL,
			    NULL, NULL, 0, &id) != LDAP_SUCCESS) {
				fprintf(stderr, "bench: ldap_search_ext failed\n");
				goto done;
			}
			msgid[sent] = id;
		}
		if (ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ALL, NULL, &res) <= 0) {
			fprintf(stderr, "bench: ldap_result failed\n");
			break;
		}
		id = ldap_msgid(res);
		for (i = sent; i >= 1 && msgid[i] != id; i--)
			;
		if (i >= 1) {
			l.ms[l.n++] = ms_since(&t[i]);
			got++;
			ok += ldap_count_entries(ld, res) == per_job;
		}
		ldap_msgfree(res);
	}
done:
	snprintf(key, sizeof key, "reads_ldap_%d", inflight);
	row_rate(key, "reads: a job's checkpoints by GID, libldap", ok, inflight, ms_since(&t0) / 1000,
	    &l, got - ok);
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(l.ms);
	free(t);
	free(msgid);
}

static void
bench_query_reads(const char *ep, int jobs, int per_job, int n, int inflight, double max_s)
{
	struct proto_sync *s = connect_as(B.dir, "broker-r", ep);
	const struct proto_type *pt = proto_type_find("query");
	struct lat l = { calloc((size_t)n, sizeof(double)), 0 };
	struct timespec *t = calloc((size_t)n + 1, sizeof *t), t0;
	int sent = 0, got = 0, ok = 0, shown = 0;
	uint64_t end = time_mono_ms() + (uint64_t)(max_s * 1000);
	unsigned seed = 42;
	char err[256], key[32];

	if (s == NULL)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && time_mono_ms() < end)) {
		struct proto_msg m;

		while (sent < n && sent - got < inflight && time_mono_ms() < end) {
			char gid[32];
			struct msg_query q = { .what = "checkpoints", .gid = gid };
			snprintf(gid, sizeof gid, "readjob-%u", rnd(&seed) % (unsigned)jobs);
			clock_gettime(CLOCK_MONOTONIC, &t[++sent]);
			if (proto_sync_send(s, "query", (uint32_t)sent, pt, &q) != 0)
				goto done;
		}
		if (proto_sync_read(s, 30000, pt->reply, &m, err, sizeof err) != 0) {
			fprintf(stderr, "bench: query: %s\n", err);
			break;
		}
		if (m.id >= 1 && m.id <= (uint32_t)sent) {
			l.ms[l.n++] = ms_since(&t[m.id]);
			got++;
			if (strcmp(m.type, "ok") == 0 &&
			    ((struct msg_query_ok *)m.body)->entries.n == (size_t)per_job)
				ok++;
			else if (shown++ < 3)
				fprintf(stderr, "bench: query answered %s\n", m.type);
		}
		proto_msg_free(&m);
	}
done:
	snprintf(key, sizeof key, "reads_query_%d", inflight);
	row_rate(key, "reads: the same through gca-gcs query", ok, inflight, ms_since(&t0) / 1000, &l,
	    got - ok);
	proto_sync_close(s);
out:
	free(l.ms);
	free(t);
}

/* gca-gcs on site B, its log in a file (to see when its job cache is in step); returns its pid. */
static int
gcs_start_logged(char *ep, size_t eplen, double *ready_s)
{
	char conf[400], port[400], logp[400], body[2048], line[512], bin[600];
	struct timespec t0;
	int pid, n;

	snprintf(conf, sizeof conf, "%s/gcs-r.conf", B.dir);
	snprintf(port, sizeof port, "%s/gcs-r.port", B.dir);
	snprintf(logp, sizeof logp, "%s/log/gcs-r.log", B.dir);
	n = snprintf(body, sizeof body, "name gcs-r\nlisten 127.0.0.1:0\nca %s/pki/ca.crt\n"
	    "cert %s/pki/gcs-gcs-r.crt\nkey %s/pki/gcs-gcs-r.key\ndirectory %s\n", B.dir, B.dir, B.dir,
	    B.gcs_conf);
	if (file_write_whole(conf, body, (size_t)n, 0600) != 0)
		return -1;
	unlink(port);
	snprintf(bin, sizeof bin, "%s/gca-gcs", build);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((pid = fork()) == 0) {
		FILE *f = fopen(logp, "a");
		if (f != NULL)
			dup2(fileno(f), 2);
		execl(bin, "gca-gcs", "-f", conf, "--port-file", port, (char *)NULL);
		_exit(127);
	}
	for (uint64_t end = time_mono_ms() + 120000; time_mono_ms() < end; usleep(20000)) {
		FILE *f;
		bool ready = false;

		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "bench: gca-gcs ended: see %s\n", logp);
			return -1;
		}
		if ((f = fopen(logp, "r")) != NULL) {
			while (fgets(line, sizeof line, f) != NULL)
				ready |= strstr(line, "job cache in step") != NULL;
			fclose(f);
		}
		if (ready && (f = fopen(port, "r")) != NULL) {
			int p = 0;
			if (fscanf(f, "%d", &p) != 1)
				p = 0;
			fclose(f);
			if (p > 0) {
				snprintf(ep, eplen, "127.0.0.1:%d", p);
				*ready_s = ms_since(&t0) / 1000;
				return pid;
			}
		}
	}
	fprintf(stderr, "bench: gca-gcs's job cache was not in step within 120 s: see %s\n", logp);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static int
bench_site_b(void)
{
	int jobs = quick ? 10000 : 100000, per_job = 10, pid;
	double secs, ready_s = 0;
	char ep[64], what[72];

	if (test_site_up(&B) != 0 || test_pki(&B, "gcs gcs-r broker r") != 0)
		return -1;
	if ((secs = fill_directory(jobs, per_job)) < 0)
		return -1;
	snprintf(what, sizeof what, "slapadd: %d jobs + %d records (offline)", jobs, jobs * per_job);
	row_rate("slapadd", what, jobs * (per_job + 1), 1, secs, NULL, 0);
	if (slapd_up_filled() != 0)
		return -1;
	bench_ldap_reads(jobs, per_job, quick ? 500 : 3000, 1, quick ? 4 : 15);
	bench_ldap_reads(jobs, per_job, quick ? 1000 : 10000, 16, quick ? 4 : 15);
	if ((pid = gcs_start_logged(ep, sizeof ep, &ready_s)) < 0)
		return -1;
	snprintf(what, sizeof what, "gca-gcs start until its cache holds %d jobs", jobs);
	row_secs("gcs_cache_ready", what, ready_s);
	snprintf(what, sizeof what, "peak RSS (VmHWM) of gca-gcs, %d jobs cached", jobs);
	row_mib("rss_gcs_cache", what, proc_hwm_mib(pid));
	bench_query_reads(ep, jobs, per_job, quick ? 500 : 3000, 1, quick ? 4 : 15);
	bench_query_reads(ep, jobs, per_job, quick ? 1000 : 10000, 16, quick ? 4 : 15);
	test_gcs_stop(pid);
	return 0;
}

/* ====================================================================================
 * The table
 * ==================================================================================== */

static double
val(const char *key, char what)
{
	struct row *r = row_find(key);

	if (r == NULL)
		return 0;
	switch (what) {
	case 'r': return r->per_s;
	case '5': return r->p50;
	case 's': return r->secs;
	default: return r->mib;
	}
}

struct ratio {
	const char	*key, *what;
	double		 v;
};

static int
ratios(struct ratio *out)
{
	int n = 0;
	double ping = val("ping_1", '5'), add = val("ldap_add_1", '5'), rec = val("directory_1", '5');

	if (val("directory_256", 'r') > 0) {
		out[n++] = (struct ratio){ "e2e_256_to_directory", "headline: end to end (256) / directory ceiling",
			val("e2e_256", 'r') / val("directory_256", 'r') };
		out[n++] = (struct ratio){ "e2e_16_to_directory", "end to end (16) / directory ceiling",
			val("e2e_16", 'r') / val("directory_256", 'r') };
		if (val("directory_16", 'r') > 0)
			out[n++] = (struct ratio){ "e2e_16_to_directory_16", "end to end (16) / directory (16)",
				val("e2e_16", 'r') / val("directory_16", 'r') };
		out[n++] = (struct ratio){ "gcs_records_to_directory", "records via gca-gcs (256) / directory ceiling",
			val("gcs_records_256", 'r') / val("directory_256", 'r') };
		out[n++] = (struct ratio){ "directory_txn_to_directory",
			"directory with transactions (256) / directory ceiling (without, the default)",
			val("directory_txn_256", 'r') / val("directory_256", 'r') };
	}
	if (ping > 0 && add > 0) {
		out[n++] = (struct ratio){ "e2e_1_to_target", "e2e p50 (1) / (3 x ping p50 + 1 ldap add p50)",
			val("e2e_1", '5') / (3 * ping + add) };
		out[n++] = (struct ratio){ "e2e_1_to_ping", "e2e p50 (1) / ping p50", val("e2e_1", '5') / ping };
	}
	if (rec > 0)
		out[n++] = (struct ratio){ "e2e_1_to_record", "e2e p50 (1) / one record stored p50",
			val("e2e_1", '5') / rec };
	if (val("rss_gcs_cache", 'm') > 0)
		out[n++] = (struct ratio){ "rss_gcs_cache_to_64mib", "gca-gcs peak RSS, jobs cached (site B) / 64 MiB",
			val("rss_gcs_cache", 'm') / 64 };
	return n;
}

static void
write_json(const char *path, struct ratio *rt, int nr)
{
	FILE *f = fopen(path, "w");
	char host[256] = "";

	if (f == NULL) {
		fprintf(stderr, "bench: cannot write %s\n", path);
		return;
	}
	gethostname(host, sizeof host - 1);
	fprintf(f, "{\n  \"quick\": %s,\n  \"time\": %" PRIu64 ",\n  \"cpus\": %ld,\n  \"figures\": [\n",
	    quick ? "true" : "false", time_now_ms() / 1000, sysconf(_SC_NPROCESSORS_ONLN));
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		fprintf(f, "    {\"key\": \"%s\", \"what\": \"%s\"", r->key, r->what);
		if (r->has_mib)
			fprintf(f, ", \"mib\": %.1f", r->mib);
		else if (r->count_only)
			fprintf(f, ", \"count\": %d", r->n);
		else
			fprintf(f, ", \"count\": %d, \"in_flight\": %d, \"seconds\": %.3f", r->n, r->inflight,
			    r->secs);
		if (r->has_rate)
			fprintf(f, ", \"per_second\": %.1f, \"errors\": %d", r->per_s, r->errors);
		if (r->has_lat)
			fprintf(f, ", \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f", r->p50, r->p99,
			    r->max);
		fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
	}
	fprintf(f, "  ],\n  \"ratios\": {\n");
	for (int i = 0; i < nr; i++)
		fprintf(f, "    \"%s\": %.3f%s\n", rt[i].key, rt[i].v, i + 1 < nr ? "," : "");
	fprintf(f, "  }\n}\n");
	fclose(f);
	printf("written: %s\n", path);
}

static void
report(void)
{
	struct ratio rt[16];
	int nr = ratios(rt);
	char path[700];

	printf("\n%-56s %8s %5s %8s %9s %8s %8s %8s %7s %5s\n", "figure", "count", "infl", "seconds",
	    "per sec", "p50 ms", "p99 ms", "max ms", "MiB", "err");
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		char cnt[16] = "", inf[16] = "", sec[16] = "", ps[16] = "", p50[16] = "", p99[16] = "",
		    mx[16] = "", mib[16] = "", er[16] = "";
		if (r->has_mib) {
			snprintf(mib, sizeof mib, "%.1f", r->mib);
		} else if (r->count_only) {
			snprintf(cnt, sizeof cnt, "%d", r->n);
		} else {
			snprintf(cnt, sizeof cnt, "%d", r->n);
			snprintf(inf, sizeof inf, "%d", r->inflight);
			snprintf(sec, sizeof sec, "%.2f", r->secs);
		}
		if (r->has_rate) {
			snprintf(ps, sizeof ps, "%.0f", r->per_s);
			if (r->errors)
				snprintf(er, sizeof er, "%d", r->errors);
		}
		if (r->has_lat) {
			snprintf(p50, sizeof p50, "%.2f", r->p50);
			snprintf(p99, sizeof p99, "%.2f", r->p99);
			snprintf(mx, sizeof mx, "%.2f", r->max);
		}
		printf("%-56.56s %8s %5s %8s %9s %8s %8s %8s %7s %5s\n", r->what, cnt, inf, sec, ps, p50,
		    p99, mx, mib, er);
	}
	printf("\n");
	for (int i = 0; i < nr; i++)
		printf("ratio: %-56s %8.2f\n", rt[i].what, rt[i].v);
	snprintf(path, sizeof path, "%s/bench", build);
	file_mkdirs(path, 0755);
	strcat(path, "/results.json");
	write_json(path, rt, nr);
	if (!quick) {
		snprintf(path, sizeof path, "%s/bench/results.json", test_top());
		write_json(path, rt, nr);
	}
}

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
	site_down(&A);
	test_site_down(&B);
	_exit(130);
}

int
main(void)
{
	const char *b = getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build", *only;
	int rc = 0;

	quick = getenv("BENCH_QUICK") != NULL && strcmp(getenv("BENCH_QUICK"), "0") != 0;
	if (realpath(b, build) == NULL) {
		fprintf(stderr, "bench: no build folder %s\n", b);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	log_init("bench_record");
	log_set_level(LOG_ERROR);
	base = event_base_new();
	A.njobs = 256;
	A.job_pid = calloc((size_t)A.njobs, sizeof *A.job_pid);
	A.gid = calloc((size_t)A.njobs, sizeof *A.gid);

	only = getenv("BENCH_ONLY") ? getenv("BENCH_ONLY") : "";
	if (strchr(only, 'b') == NULL && bench_site_a() != 0) {
		fprintf(stderr, "bench: site A (end to end) stopped early; its folder is kept: %s\n", A.dir);
		setenv("GCA_KEEP", "1", 1);
		rc = 1;
	}
	if (slapd_crashes > 0) {
		char what[80];
		snprintf(what, sizeof what, "slapd segfaults in: %.59s", crashed_in);
		struct row *r = row_new("slapd_crashes", "%s", what);
		r->n = slapd_crashes;
		r->count_only = true;
	}
	site_down(&A);
	if (strchr(only, 'a') == NULL && bench_site_b() != 0) {
		fprintf(stderr, "bench: site B (reads) stopped early; its folder is kept: %s\n", B.dir);
		setenv("GCA_KEEP", "1", 1);	/* test_site_down keeps the logs to look at */
		rc = 1;
	}
	test_site_down(&B);
	event_base_free(base);
	report();
	free(A.job_pid);
	free(A.gid);
	return rc;
}
