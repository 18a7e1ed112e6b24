/*
 * The record path's cost, measured in one run on this machine: figures and ratios, never a
 * pass/fail (issue 8, docs/BENCHMARKS.md). BENCH_QUICK=1 runs a short version.
 * Longer than 800 lines on purpose: every figure and its baseline come from one process and one
 * pair of sites, so that the ratios compare runs under the same load (docs/BENCHMARKS.md).
 *
 * Site A, a whole `gca-site up` (slapd, gca-gcs, gca-cts app and criu) in a temp folder:
 *   (6) startup      gca-site up, one job under gca-exec, until its first routed checkpoint
 *   (1) directory    the ceiling: records written straight into the same slapd with libldap's
 *                    async calls (each the entry the GCS writes, after the compare-and-swap of its
 *                    job's gcaLastSequence; and the adds alone), 1 to 256 in flight on one or four
 *                    connections, the best rate being the ceiling; then the same through the
 *                    GCS's own directory library (ldap/ dir_checkpoint_log), without and with
 *                    RFC 5805 transactions
 *   (3) transport    ping round trips to gca-gcs over mutual TLS, 1 and 256 in flight
 *       records      a CTS's checkpoint_log through gca-gcs alone (no CTS, no job)
 *   (2) end to end   do_checkpoint from a broker through gca-gcs to the real gca-cts (app core
 *                    service) and its jobs (examples/bench_job under gca-exec), record stored,
 *                    1, 16 and 256 in flight over many GIDs
 *   (5) memory       VmHWM of gca-gcs and gca-cts during (2)
 *   (7) gca-ctl      `gca-ctl status` and `gca-ctl checkpoint` of an idle app job, a new process
 *                    each time, against a fresh TLS connection and one directory add (issue 22)
 * Site B, a directory filled offline with slapadd (jobs and their records):
 *   (4) reads        a job's checkpoints by GID through libldap and through the GCS's query
 *   (5) memory       VmHWM of a gca-gcs whose job cache followed the directory's change feed
 * BENCH_ONLY=a or BENCH_ONLY=b runs one site (to look at one part), BENCH_ONLY=ctl only (7) and its
 * baseline (site A's startup, one raw add at a time, ping), BENCH_ONLY=cpu only site A's end to
 * end at 1 in flight (200 checkpoints over 4 jobs) and the CTS's CPU per checkpoint (issue 22,
 * target 4); GCA_KEEP=1 keeps the folders.
 *
 * Every phase is bounded by a count, its own time and the program's deadline (bench/lib); on
 * SIGTERM or at the deadline the phases stop, the sites are stopped and the rows gathered so far
 * are written to build/bench/results.json (bench/table prints them).
 */
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ldap.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/lib/bench.h"
#include "common/common.h"
#include "ldap/gca_ldap.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

#define DIR_JOBS	100		/* GIDs the GCS library's records spread over */
#define RAW_JOBS	256		/* GIDs of the raw ceiling: one record in flight per job */
#define RAW_CONNS	4
#define QUIET_MS	90000		/* no reply for this long: the phase gives up */

static bool quick;
static struct event_base *base;
static char build[512];		/* absolute $GCA_BUILD */
static bool ctl_only;		/* BENCH_ONLY=ctl: site A's gca-ctl figures and their baseline only */
static bool cpu_only;		/* BENCH_ONLY=cpu: site A's end to end at 1 in flight and the CTS's CPU */
static uint32_t next_req;	/* request ids, unique across phases (late replies never count) */

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

/*
 * CPU time of pid and of its reaped children (utime + stime + cutime + cstime of /proc/PID/stat)
 * in ms; -1 if unknown. The children count: a CTS that forks per checkpoint spends its CPU there.
 */
static double
proc_cpu_ms(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v[4];
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command's ")": state is field 3, utime 14, stime 15, cutime 16, cstime 17 */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4)
		return -1;
	return (double)(v[0] + v[1] + v[2] + v[3]) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
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

/*
 * The next frame on s, waiting in slices of at most a second so the deadline and a stop signal
 * are seen; gives up after quiet_ms without one. 0, -1 (broken: err says why) or -2 (no answer,
 * or stopped). A slice can only end inside a frame if its second half is more than a second
 * late; the stream is then out of step, the next read fails and the phase ends, said on stderr.
 */
static int
read_reply(struct proto_sync *s, int quiet_ms, const struct proto_type *reply, struct proto_msg *m,
    char *err, size_t len)
{
	uint64_t until = time_mono_ms() + (uint64_t)quiet_ms;
	int slice, rc;

	while ((slice = deadline_slice(until)) > 0)
		if ((rc = proto_sync_read(s, slice, reply, m, err, len)) != -2)
			return rc;
	if (deadline_passed())
		snprintf(err, len, "stopped (%s)", deadline_why());
	else
		snprintf(err, len, "no answer in %d ms", quiet_ms);
	return -2;
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
static struct timespec prog_t0;
static void phase_log(const char *name);

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
	/* run as root, gca-site starts gca-gcs as an unprivileged user, who must reach its files */
	chmod(s->dir, 0755);
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

/* Is pid bench_job itself? */
static bool
job_is_bench_job(int pid)
{
	char path[64], exe[600];
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	if ((n = readlink(path, exe, sizeof exe - 1)) <= 0)
		return false;
	exe[n] = '\0';
	return strstr(exe, "bench_job") != NULL;
}

/* Is gca-exec pid running the job: become it, or its parent now (it stays to report the job's
 * exit status)? Its children are in /proc/PID/task/PID/children. */
static bool
job_running(int pid)
{
	char path[80], kids[256];
	FILE *f;
	bool found = false;

	if (job_is_bench_job(pid))
		return true;
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(kids, sizeof kids, f) != NULL)
		for (char *t = strtok(kids, " \n"); t != NULL && !found; t = strtok(NULL, " \n"))
			found = job_is_bench_job(atoi(t));
	fclose(f);
	return found;
}

/* gca-exec starts the job only after the CTS bound the GID: the job runs = bound. */
static int
job_wait_bound(struct site *s, int i, int timeout_ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)timeout_ms;

	while (time_mono_ms() < end && !deadline_passed()) {
		int status;

		if (job_running(s->job_pid[i]))
			return 0;
		if (waitpid(s->job_pid[i], &status, WNOHANG) == s->job_pid[i]) {
			fprintf(stderr, "bench: gca-exec for %s ended (status %d): see %s/log/jobs.log\n",
			    s->gid[i], status, s->dir);
			s->job_pid[i] = 0;
			return -1;
		}
		usleep(2000);
	}
	if (!deadline_passed())
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

/*
 * Each daemon takes 1.5-4 s to stop after SIGTERM, and `gca-site down` stops them one after the
 * other: they are all sent SIGTERM at once first (the site's data is thrown away), waited for
 * (10 s at most), and `gca-site down` then stops whatever is left and cleans up.
 */
static void
site_down(struct site *s)
{
	if (s->dir[0] == '\0')
		return;
	jobs_stop(s);
	test_sh(NULL, 0, "cd %s && p=$(cat cts-*.pid gcs*.pid ldap/slapd.pid 2>/dev/null); "
	    "[ -n \"$p\" ] && kill $p 2>/dev/null; for i in $(seq 100); do a=; for q in $p; do "
	    "kill -0 $q 2>/dev/null && a=1; done; [ -z \"$a\" ] && break; sleep 0.1; done", s->dir);
	test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), s->dir);
	if (getenv("GCA_KEEP") == NULL)
		file_remove_tree(s->dir);
	else
		fprintf(stderr, "bench: kept %s\n", s->dir);
	s->dir[0] = '\0';
}

/* One do_checkpoint, blocking (at most the connection's 10 s); 0 ok. */
static int
do_checkpoint_once(struct proto_sync *b, const char *gid, char *why, size_t len)
{
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	struct msg_do_checkpoint req = { .gid = gid };
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

static bool
slapd_dead(void)
{
	return !pid_alive(pidfile(A.dir, "ldap/slapd.pid"));
}

/* true if slapd died during phase (it runs again when this returns, or the bench stops) */
static bool
slapd_crashed(struct site *s, const char *phase)
{
	char log[4096], why[256] = "";
	struct proto_sync *b;
	uint64_t end;
	size_t len;

	if (s->dir[0] == '\0' || !slapd_dead())	/* site B: no restart to do */
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
	for (end = deadline_end(30); time_mono_ms() < end; usleep(100000))
		if (do_checkpoint_once(b, s->gid[0], why, sizeof why) == 0)
			break;
	if (time_mono_ms() >= end)
		fprintf(stderr, "bench: no checkpoint went through after the restart: %s\n", why);
	proto_sync_close(b);
	return true;
}

/*
 * A rate phase in flight: when its operations start failing and slapd is dead, it sends no more;
 * its rate is then the successes over the time to the last of them (the row says so). Stopped by
 * the deadline or a signal, its rate is what it did until then, and the row says so too.
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
	run_last_ok_s = lat_since(&run_t0) / 1000;
}

static bool
run_slapd_died(int errors)
{
	return errors > 0 && slapd_dead();
}

static struct row *
run_row(const char *key, const char *what, int ok, int inflight, struct lat *l, int errors,
    bool died, int unanswered)
{
	char w[112];
	struct row *r;

	snprintf(w, sizeof w, "%s%s%s", what, died ? " (until slapd died)" : "",
	    unanswered > 0 ? " (cut short)" : "");
	r = figures_rate(key, w, ok, inflight, died ? run_last_ok_s : lat_since(&run_t0) / 1000, l,
	    errors);
	if (unanswered > 0)
		figures_extra(r, "unanswered", unanswered);
	return r;
}

/* Each phase's start on stderr, in seconds since the program started: where the time went. */

static void
phase_log(const char *name)
{
	fprintf(stderr, "bench: %6.1f s  %s\n", lat_since(&prog_t0) / 1000, name);
}

/*
 * Runs a phase that adds rows, unless there is no time left for it (then it is named as not
 * run); if slapd died meanwhile, its rows are dropped and it runs again.
 */
#define PHASE(name, call) do {						\
	int mark_ = figures_mark();					\
	if (deadline_passed()) {					\
		figures_skipped(name);					\
		break;							\
	}								\
	phase_log(name);						\
	call;								\
	if (slapd_crashed(&A, name)) {					\
		figures_drop(mark_);					\
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
	up_ms = lat_since(&t0);
	if (job_spawn(&A, 0) < 0 || job_wait_bound(&A, 0, 20000) != 0)
		return -1;
	bound_ms = lat_since(&t0);
	if ((b = connect_as(A.dir, "broker-broker", A.gcs_ep)) == NULL)
		return -1;
	/* retried: the CTS may still be registering when the broker first asks */
	for (end = deadline_end(20); time_mono_ms() < end; usleep(20000))
		if (do_checkpoint_once(b, A.gid[0], why, sizeof why) == 0)
			break;
	if (time_mono_ms() >= end) {
		fprintf(stderr, "bench: the first checkpoint did not succeed: %s\n", why);
		proto_sync_close(b);
		return -1;
	}
	figures_secs("startup_site_up", "startup: gca-site up returned", up_ms / 1000);
	figures_secs("startup_job_bound", "startup: + first job bound (gca-exec)", bound_ms / 1000);
	figures_secs("startup_first_checkpoint", "startup: + first routed checkpoint",
	    lat_since(&t0) / 1000);
	proto_sync_close(b);
	return 0;
}

/* ---- (1) the directory ceiling: raw libldap, as many in flight as helps ---- */

/*
 * A record as the GCS writes it, straight into slapd with libldap's async calls: with cas, the
 * compare-and-swap of the job's gcaLastSequence (modify: delete the old value, add the new) and,
 * once slapd took it, the record's add with that number; without, the add alone. At most one
 * record per job is in flight, so each compare-and-swap moves the number this bench last saw.
 */
struct raw_op {
	int		 job;		/* -1: a free slot */
	int		 conn, msgid;
	bool		 adding;
	struct timespec	 t;
};

struct raw {
	LDAP		*ld[RAW_CONNS];
	int		 nconn;
	const char	*base;
	uint64_t	 last[RAW_JOBS];	/* each job's gcaLastSequence in the directory */
	bool		 busy[RAW_JOBS];
	struct raw_op	*ops;
	int		 nops, active, ok, errors, shown;
	bool		 cas;
	struct lat	 l;
};

static void
raw_close(struct raw *r)
{
	for (int c = 0; c < r->nconn; c++)
		if (r->ld[c] != NULL)
			ldap_unbind_ext_s(r->ld[c], NULL, NULL);
	r->nconn = 0;
}

/* Each job's last number as the directory has it now (a phase may follow one cut short). */
static int
raw_read_last(struct raw *r)
{
	char sbase[300], *attrs[] = { "gcaGID", "gcaLastSequence", NULL };
	LDAPMessage *res = NULL;
	int found = 0;

	snprintf(sbase, sizeof sbase, "ou=jobs,%s", r->base);
	if (ldap_search_ext_s(r->ld[0], sbase, LDAP_SCOPE_ONELEVEL, "(gcaGID=rawjob-*)", attrs, 0,
	    NULL, NULL, NULL, 0, &res) != LDAP_SUCCESS) {
		ldap_msgfree(res);
		return -1;
	}
	for (LDAPMessage *e = ldap_first_entry(r->ld[0], res); e != NULL;
	    e = ldap_next_entry(r->ld[0], e)) {
		struct berval **g = ldap_get_values_len(r->ld[0], e, "gcaGID");
		struct berval **s = ldap_get_values_len(r->ld[0], e, "gcaLastSequence");
		int j;

		if (g != NULL && s != NULL && sscanf(g[0]->bv_val, "rawjob-%d", &j) == 1 && j >= 0 &&
		    j < RAW_JOBS) {
			r->last[j] = strtoull(s[0]->bv_val, NULL, 10);
			found++;
		}
		ldap_value_free_len(g);
		ldap_value_free_len(s);
	}
	ldap_msgfree(res);
	return found == RAW_JOBS ? 0 : -1;
}

/* nconn connections bound as the GCS's identity, as the GCS's own is. */
static int
raw_open(struct raw *r, const struct dir_config *c, int nconn)
{
	char why[512];

	memset(r->ld, 0, sizeof r->ld);
	r->base = c->base;
	for (r->nconn = 0; r->nconn < nconn; r->nconn++) {
		LDAP **ld = &r->ld[r->nconn];
		/* the GCS's own way in (StartTLS, its certificate or password): the same link cost */
		if (dir_link_open(c, 30000, ld, why, sizeof why) != LDAP_SUCCESS) {
			fprintf(stderr, "bench: cannot bind to %s: %s\n", c->uri, why);
			r->nconn++;	/* closed with the others */
			raw_close(r);
			return -1;
		}
	}
	if (raw_read_last(r) != 0) {
		fprintf(stderr, "bench: the raw ceiling's %d jobs are not all in the directory\n", RAW_JOBS);
		raw_close(r);
		return -1;
	}
	return 0;
}

static int
raw_send_cas(struct raw *r, struct raw_op *op)
{
	char dn[300], old[24], new_[24], attr[] = "gcaLastSequence";
	char *delv[] = { old, NULL }, *addv[] = { new_, NULL };
	LDAPMod del = { LDAP_MOD_DELETE, attr, { delv } }, add = { LDAP_MOD_ADD, attr, { addv } };
	LDAPMod *mods[] = { &del, &add, NULL };

	snprintf(dn, sizeof dn, "gcaGID=rawjob-%d,ou=jobs,%s", op->job, r->base);
	snprintf(old, sizeof old, "%" PRIu64, r->last[op->job]);
	snprintf(new_, sizeof new_, "%" PRIu64, r->last[op->job] + 1);
	return ldap_modify_ext(r->ld[op->conn], dn, mods, NULL, NULL, &op->msgid);
}

/* The record entry dir_checkpoint_log builds for a CTS's checkpoint_log of an app image. */
static int
raw_send_add(struct raw *r, struct raw_op *op, uint64_t seq)
{
	char dn[400], id[ID_LEN + 1], gid[32], sq[24], when[32], image[200], sha[65];
	char *oc[] = { "gcaCheckpoint", NULL }, *ids[] = { id, NULL }, *gids[] = { gid, NULL };
	char *sqs[] = { sq, NULL }, *whens[] = { when, NULL }, *cts[] = { "cts-raw", NULL };
	char *cores[] = { "app", NULL }, *images[] = { image, NULL }, *ems[] = { "local", NULL };
	char *sizes[] = { "1024", NULL }, *shas[] = { sha, NULL }, *kinds[] = { "external", NULL };
	LDAPMod m[] = {
		{ LDAP_MOD_ADD, "objectClass", { oc } }, { LDAP_MOD_ADD, "gcaCheckpointId", { ids } },
		{ LDAP_MOD_ADD, "gcaGID", { gids } }, { LDAP_MOD_ADD, "gcaSequenceNumber", { sqs } },
		{ LDAP_MOD_ADD, "gcaCheckpointTime", { whens } }, { LDAP_MOD_ADD, "gcaCTSName", { cts } },
		{ LDAP_MOD_ADD, "gcaCoreService", { cores } }, { LDAP_MOD_ADD, "gcaImageName", { images } },
		{ LDAP_MOD_ADD, "gcaExecutionManager", { ems } }, { LDAP_MOD_ADD, "gcaImageSize", { sizes } },
		{ LDAP_MOD_ADD, "gcaImageSha256", { shas } }, { LDAP_MOD_ADD, "gcaCheckpointKind", { kinds } },
		{ LDAP_MOD_ADD, "gcaLocation", { cts } },
	};
	LDAPMod *mods[sizeof m / sizeof m[0] + 1];

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		mods[i] = &m[i];
	mods[sizeof m / sizeof m[0]] = NULL;
	id_new(id);
	snprintf(gid, sizeof gid, "rawjob-%d", op->job);
	snprintf(sq, sizeof sq, "%" PRIu64, seq);
	time_generalized(time_now_ms(), when);
	snprintf(image, sizeof image, "cts-raw:images/%s/%s", gid, id);
	for (int i = 0; i < 64; i++)
		sha[i] = "0123456789abcdef"[(i * 7 + seq) % 16];
	sha[64] = '\0';
	snprintf(dn, sizeof dn, "gcaCheckpointId=%s,gcaGID=%s,ou=jobs,%s", id, gid, r->base);
	op->adding = true;
	return ldap_add_ext(r->ld[op->conn], dn, mods, NULL, NULL, &op->msgid);
}

static void
raw_free_op(struct raw *r, struct raw_op *op)
{
	r->busy[op->job] = false;
	op->job = -1;
	r->active--;
}

static void
raw_fail(struct raw *r, struct raw_op *op, int err, const char *msg)
{
	if (r->shown++ < 3)
		fprintf(stderr, "bench: raw %s of rawjob-%d: %s%s%s\n", op->adding ? "add" : "compare-and-swap",
		    op->job, ldap_err2string(err), msg ? ": " : "", msg ? msg : "");
	r->errors++;
	raw_free_op(r, op);
}

/* One reply: a compare-and-swap taken sends the add, an add done counts the record. */
static void
raw_reply(struct raw *r, int conn, LDAPMessage *res)
{
	int msgid = ldap_msgid(res), err = LDAP_OTHER;
	char *msg = NULL;
	struct raw_op *op = NULL;

	for (int i = 0; i < r->nops && op == NULL; i++)
		if (r->ops[i].job >= 0 && r->ops[i].conn == conn && r->ops[i].msgid == msgid)
			op = &r->ops[i];
	if (op == NULL) {
		ldap_msgfree(res);
		return;
	}
	if (ldap_parse_result(r->ld[conn], res, &err, NULL, &msg, NULL, NULL, 1) != LDAP_SUCCESS)
		err = LDAP_OTHER;
	if (err != LDAP_SUCCESS) {
		raw_fail(r, op, err, msg);
	} else if (!op->adding) {
		r->last[op->job]++;
		if ((err = raw_send_add(r, op, r->last[op->job])) != LDAP_SUCCESS)
			raw_fail(r, op, err, NULL);
	} else {
		r->ok++;
		lat_add(&r->l, lat_since(&op->t));
		run_ok();
		raw_free_op(r, op);
	}
	ldap_memfree(msg);
}

/* Every reply libldap has or can read now; if none, waits (bounded) for any connection. */
static int
raw_collect(struct raw *r)
{
	struct pollfd pfd[RAW_CONNS];
	bool any = false;

	for (int c = 0; c < r->nconn; c++) {
		struct timeval zero = { 0, 0 };
		LDAPMessage *res;
		int rc;

		/* a zero timeout polls: replies already buffered inside libldap come out too */
		while ((rc = ldap_result(r->ld[c], LDAP_RES_ANY, LDAP_MSG_ALL, &zero, &res)) > 0) {
			raw_reply(r, c, res);
			any = true;
		}
		if (rc < 0) {
			fprintf(stderr, "bench: raw ceiling: the connection to slapd broke\n");
			return -1;
		}
		pfd[c].events = POLLIN;
		if (ldap_get_option(r->ld[c], LDAP_OPT_DESC, &pfd[c].fd) != LDAP_OPT_SUCCESS)
			return -1;
	}
	if (!any)
		poll(pfd, (nfds_t)r->nconn, deadline_slice(time_mono_ms() + 1000));
	return 0;
}

static void
bench_raw(const struct dir_config *c, int n, int inflight, int nconn, bool cas, double max_s)
{
	struct raw r = { .cas = cas };
	uint64_t end, quiet_until;
	int sent = 0, next = 0;
	bool died = false;
	char key[40], what[112];

	if (raw_open(&r, c, nconn) != 0)
		return;
	lat_init(&r.l, (size_t)n);
	r.nops = inflight;
	r.ops = xcalloc((size_t)inflight, sizeof *r.ops);
	for (int i = 0; i < inflight; i++)
		r.ops[i].job = -1;
	run_start();
	end = deadline_end(max_s);
	quiet_until = time_mono_ms() + QUIET_MS;
	for (;;) {
		for (int i = 0; i < inflight && sent < n && time_mono_ms() < end && !deadline_passed();
		    i++) {
			struct raw_op *op = &r.ops[i];
			int rc;

			if (op->job >= 0)
				continue;
			while (r.busy[next])
				next = (next + 1) % RAW_JOBS;
			*op = (struct raw_op){ .job = next, .conn = i % r.nconn };
			r.busy[next] = true;
			r.active++;
			sent++;
			next = (next + 1) % RAW_JOBS;
			clock_gettime(CLOCK_MONOTONIC, &op->t);
			rc = cas ? raw_send_cas(&r, op) : raw_send_add(&r, op, ++r.last[op->job]);
			if (rc != LDAP_SUCCESS)
				raw_fail(&r, op, rc, NULL);
		}
		if (r.active == 0 || deadline_passed() || time_mono_ms() > quiet_until)
			break;
		int before = r.ok + r.errors;
		if (raw_collect(&r) != 0)
			break;
		if (r.ok + r.errors != before)
			quiet_until = time_mono_ms() + QUIET_MS;
		if (!died && (died = run_slapd_died(r.errors)))
			end = 0;
	}
	snprintf(key, sizeof key, "ceiling_%s_%d%s", cas ? "cas" : "add", inflight, nconn > 1 ? "x4" : "");
	snprintf(what, sizeof what, "directory ceiling: libldap async, %s%s",
	    cas ? "CAS of gcaLastSequence + add" : "adds alone", nconn > 1 ? ", 4 connections" : "");
	run_row(key, what, r.ok, inflight, &r.l, r.errors, died, r.active);
	raw_close(&r);
	lat_free(&r.l);
	free(r.ops);
}

/* ---- (1') the same records through the GCS's directory library (ldap/) ---- */

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
		lat_add(p->l, lat_since(&p->t));
		run_ok();
	}
	count(r, p->done);
	free(p);
}

/*
 * When the phase is stopped with records still queued, dir_close drops their callbacks; they are
 * counted as unanswered, and their dir_pending is lost with them (a few bytes, once, at a stop).
 */
static void
bench_dir_records(struct dir *d, int n, int inflight, double max_s, const char *key, const char *what)
{
	struct lat l;
	int done[2] = { 0 }, sent = 0;
	uint64_t end = deadline_end(max_s);
	bool died = false;

	lat_init(&l, (size_t)n);
	run_start();
	while (done[0] < sent || (sent < n && time_mono_ms() < end)) {
		while (sent < n && sent - done[0] < inflight && time_mono_ms() < end) {
			char id[ID_LEN + 1], gid[32];
			struct dir_checkpoint r = { .id = id, .gid = gid, .cts = "cts-b",
				.core_service = "app", .image_name = "img", .kind = "external", .size = 1,
				.sha256 = TEST_IMAGE_SHA256 };
			struct dir_pending *p = xcalloc(1, sizeof *p);
			id_new(id);
			snprintf(gid, sizeof gid, "dirjob-%d", sent % DIR_JOBS);
			p->l = &l;
			p->done = done;
			clock_gettime(CLOCK_MONOTONIC, &p->t);
			dir_checkpoint_log(d, &r, count_lat, p);
			sent++;
		}
		if (deadline_passed())
			break;
		event_base_loop(base, EVLOOP_ONCE);	/* the tick wakes it for the deadline */
		if (!died && (died = run_slapd_died(done[0] - done[1])))
			end = 0;
	}
	run_row(key, what, done[1], inflight, &l, done[0] - done[1], died, sent - done[0]);
	lat_free(&l);
}

/* The raw ceiling's levels: in flight and connections (a quick run leaves 64 and 4 out). */
static const struct { int inflight, conns; bool full_only; } raw_levels[] = {
	{ 1, 1, false }, { 16, 1, false }, { 64, 1, true }, { 256, 1, false }, { 256, RAW_CONNS, true },
};

static void
bench_directory(void)
{
	/* quick: enough to see every path work, not figures to keep */
	int n_raw = quick ? 150 : 2000, n_lib = quick ? 400 : 5000;
	double s_raw = quick ? 0.5 : 4, s_lib = quick ? 1 : 10;
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
	/* the jobs, bound as the GCS binds them (gcaLastSequence 0) */
	for (int j = 0; j < DIR_JOBS + RAW_JOBS; j++) {
		char gid[32];
		if (j < DIR_JOBS)
			snprintf(gid, sizeof gid, "dirjob-%d", j);
		else
			snprintf(gid, sizeof gid, "rawjob-%d", j - DIR_JOBS);
		dir_job_bind(d, gid, "cts-b", "bench", "1", NULL, count, bound);
	}
	while (bound[0] < DIR_JOBS + RAW_JOBS && !deadline_passed())
		event_base_loop(base, EVLOOP_ONCE);
	if (bound[1] < DIR_JOBS + RAW_JOBS) {
		fprintf(stderr, "bench: only %d of %d jobs were bound\n", bound[1], DIR_JOBS + RAW_JOBS);
		figures_skipped("directory ceiling and library (jobs not bound)");
		goto out;
	}
	if (ctl_only) {		/* the baseline of the gca-ctl figures: one raw add at a time */
		PHASE("directory ceiling (adds)", bench_raw(&c, n_raw / 3, 1, 1, false, s_raw));
		goto out;
	}
	/* the ceiling: the records' compare-and-swap and add, then the adds alone */
	for (int cas = 1; cas >= 0; cas--)
		for (size_t i = 0; i < sizeof raw_levels / sizeof raw_levels[0]; i++)
			if (!quick || !raw_levels[i].full_only)
				PHASE(cas ? "directory ceiling (CAS + add)" : "directory ceiling (adds)",
				    bench_raw(&c, raw_levels[i].inflight == 1 ? n_raw / 3 : n_raw,
				    raw_levels[i].inflight, raw_levels[i].conns, cas, s_raw));
	PHASE("GCS directory library 256", bench_dir_records(d, n_lib, 256, s_lib, "directory_256",
	    "GCS directory library: dir_checkpoint_log"));
	PHASE("GCS directory library 16", bench_dir_records(d, n_lib / 2, 16, s_lib / 2,
	    "directory_16", "GCS directory library: dir_checkpoint_log"));
	PHASE("GCS directory library 1", bench_dir_records(d, quick ? 30 : 300, 1, s_lib / 3,
	    "directory_1", "GCS directory library: dir_checkpoint_log"));
	dir_close(d);
	/* The same with RFC 5805 transactions (gcs.conf directory_transactions yes; off by default
	 * since slapd 2.5.13 crashes under them): what they would bring. */
	c.transactions = true;
	if ((d = dir_open(base, &c, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		goto done;
	}
	PHASE("GCS directory library with transactions", bench_dir_records(d, n_lib, 256, s_lib,
	    "directory_txn_256", "GCS directory library, with transactions"));
out:
	dir_close(d);
done:
	dir_config_free(&c);
}

/* ---- (3) the transport ceiling ---- */

static void
bench_ping(int n)
{
	struct proto_sync *s = connect_as(A.dir, "broker-broker", A.gcs_ep);
	const struct proto_type *pt = proto_type_find("ping");
	struct timespec t0, *t = xcalloc((size_t)n + 1, sizeof *t);
	char err[256], code[32], msg[256];
	uint32_t first;
	struct lat l;
	int got = 0, sent = 0, bad = 0;

	if (s == NULL || t == NULL) {
		proto_sync_close(s);
		free(t);
		return;
	}
	lat_init(&l, (size_t)n);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n && !deadline_passed(); i++) {
		struct timespec a;
		void *reply = NULL;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (proto_sync_call(s, "ping", pt, NULL, &reply, code, sizeof code, msg, sizeof msg) != 0) {
			fprintf(stderr, "bench: ping: %s %s\n", code, msg);
			break;
		}
		proto_body_free(pt->reply, reply);
		lat_add(&l, lat_since(&a));
	}
	figures_rate("ping_1", "transport: ping, mTLS", (int)l.n, 1, lat_since(&t0) / 1000, &l, 0);
	/* 256 in flight: ids of their own (proto_sync_call numbers from 1), each reply timed */
	lat_free(&l);
	lat_init(&l, (size_t)n);
	first = next_req;
	next_req += (uint32_t)n + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && !deadline_passed())) {
		struct proto_msg m;
		uint32_t k;

		while (sent < n && sent - got < 256 && !deadline_passed()) {
			clock_gettime(CLOCK_MONOTONIC, &t[++sent]);
			if (proto_sync_send(s, "ping", first + (uint32_t)sent, pt, NULL) != 0)
				goto out;
		}
		if (read_reply(s, QUIET_MS, pt->reply, &m, err, sizeof err) != 0) {
			fprintf(stderr, "bench: ping: %s\n", err);
			break;
		}
		k = m.id - first;
		if (k >= 1 && k <= (uint32_t)sent) {
			got++;
			if (strcmp(m.type, "ok") == 0)
				lat_add(&l, lat_since(&t[k]));
			else
				bad++;
		}
		proto_msg_free(&m);
	}
out:
	figures_rate("ping_256", "transport: ping, mTLS", got - bad, 256, lat_since(&t0) / 1000, &l,
	    bad);
	lat_free(&l);
	free(t);
	proto_sync_close(s);
}

/* ---- (7) gca-ctl as a user runs it: a new process, connection and TLS handshake each time ---- */

/* What `. site.env` gives gca-ctl (the broker's certificate), read once from site A's site.env. */
static const char *const ctl_vars[] = { "GCA_GCS_ENDPOINT", "GCA_CA_FILE", "GCA_CERT_FILE", "GCA_KEY_FILE" };

/* The bench's environment without those (nor GCA_ADMIN_CERT_FILE), then those from site.env; made
 * before forking (the bench has had threads: the child only execs). NULL if site.env lacks one. */
static char **
ctl_envp_new(void)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **envp, v[400];

	while (environ[n] != NULL)
		n++;
	envp = xcalloc(n + GCA_NITEMS(ctl_vars) + 1, sizeof *envp);
	for (size_t i = 0; i < n; i++) {
		bool ours = strncmp(environ[i], "GCA_ADMIN_CERT_FILE=", 20) == 0;
		for (size_t j = 0; j < GCA_NITEMS(ctl_vars) && !ours; j++)
			ours = strncmp(environ[i], ctl_vars[j], strlen(ctl_vars[j])) == 0 &&
			    environ[i][strlen(ctl_vars[j])] == '=';
		if (!ours)
			envp[k++] = xstrdup(environ[i]);
	}
	for (size_t j = 0; j < GCA_NITEMS(ctl_vars); j++) {
		if (site_env(&A, ctl_vars[j], v, sizeof v) != 0) {
			fprintf(stderr, "bench: %s/site.env lacks %s\n", A.dir, ctl_vars[j]);
			for (size_t i = 0; i < k; i++)
				free(envp[i]);
			free(envp);
			return NULL;
		}
		xasprintf(&envp[k++], "%s=%s", ctl_vars[j], v);
	}
	return envp;
}

static void
ctl_envp_free(char **envp)
{
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

/* build/gca-ctl CMD [GID], its output to /dev/null (errors to the bench's log); 0 if it exited 0. */
static int
ctl_run(char **envp, const char *cmd, const char *gid)
{
	char ctl[600], c[64], g[300];
	char *argv[] = { "gca-ctl", c, gid ? g : NULL, NULL };
	int pid, status, null;

	snprintf(c, sizeof c, "%s", cmd);
	snprintf(g, sizeof g, "%s", gid ? gid : "");
	snprintf(ctl, sizeof ctl, "%s/gca-ctl", build);
	if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(null, 1);
		execve(ctl, argv, envp);
		_exit(127);
	}
	close(null);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* One gca-ctl CMD [GID] timed from fork to exit into l; 0 if it succeeded. */
static int
ctl_timed(char **envp, const char *cmd, const char *gid, struct lat *l)
{
	struct timespec a;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (ctl_run(envp, cmd, gid) != 0)
		return -1;
	lat_add(l, lat_since(&a));
	return 0;
}

static double
ctl_sum_s(const struct lat *l)
{
	double ms = 0;

	for (size_t i = 0; i < l->n; i++)
		ms += l->ms[i];
	return ms / 1000;
}

/*
 * Issue 22, target 1: `gca-ctl status` and `gca-ctl checkpoint` of an idle app job (site A's
 * first job, nothing else running), each a fresh gca-ctl, against their baseline: a broker's
 * TLS connection to gca-gcs (loading its certificate files, TCP connect, the mutual TLS 1.3
 * handshake: what every gca-ctl pays before its first frame) and one directory add (the raw add
 * at 1 in flight, measured in bench_directory); and `gca-ctl --help`, the process alone (where the
 * time goes). The four are taken in turn, n times, so a change of the machine's load weighs on
 * each alike. ratios() divides them.
 */
static void
bench_ctl(int n)
{
	char **envp = ctl_envp_new();
	uint64_t end = deadline_end(quick ? 5 : 20);
	struct lat tls, status, ckpt, help;
	int bad[3] = { 0 };

	if (envp == NULL) {
		figures_skipped("gca-ctl status and checkpoint (site.env)");
		return;
	}
	lat_init(&tls, (size_t)n);
	lat_init(&status, (size_t)n);
	lat_init(&ckpt, (size_t)n);
	lat_init(&help, (size_t)n);
	for (int i = 0; i < n && time_mono_ms() < end && !deadline_passed(); i++) {
		struct timespec a;
		struct proto_sync *s;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if ((s = connect_as(A.dir, "broker-broker", A.gcs_ep)) == NULL)
			break;
		lat_add(&tls, lat_since(&a));
		proto_sync_close(s);
		bad[0] += ctl_timed(envp, "status", NULL, &status) != 0;
		bad[1] += ctl_timed(envp, "checkpoint", A.gid[0], &ckpt) != 0;
		bad[2] += ctl_timed(envp, "--help", NULL, &help) != 0;
	}
	/* each row's seconds: the sum of its own runs (they were taken in turn with the others) */
	figures_rate("tls_connect", "TLS connect to gca-gcs (certificate files, TCP, mTLS 1.3 handshake)",
	    (int)tls.n, 1, ctl_sum_s(&tls), &tls, 0);
	figures_rate("ctl_status", "gca-ctl status (a new process each time)", (int)status.n, 1,
	    ctl_sum_s(&status), &status, bad[0]);
	figures_rate("ctl_checkpoint", "gca-ctl checkpoint of an idle app job (a new process each time)",
	    (int)ckpt.n, 1, ctl_sum_s(&ckpt), &ckpt, bad[1]);
	figures_rate("ctl_help", "gca-ctl --help (the process alone: exec, libraries, exit)", (int)help.n, 1,
	    ctl_sum_s(&help), &help, bad[2]);
	lat_free(&tls);
	lat_free(&status);
	lat_free(&ckpt);
	lat_free(&help);
	ctl_envp_free(envp);
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
			lat_add(p->l, lat_since(&p->sent));
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
	struct lat l;
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
		return;
	}
	if ((c = proto_client_new(base, &t, &cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		return;
	}
	if (!jobs_bound) {
		for (int j = 0; j < DIR_JOBS; j++) {
			char gid[32];
			struct msg_job_bind b = { .gid = gid, .cts = "bench-cts", .owner = "bench", .local_id = "1" };
			struct pending *p = xcalloc(1, sizeof *p);
			snprintf(gid, sizeof gid, "gcsjob-%d", j);
			p->done = bound;
			proto_client_request(c, "job_bind", proto_type_find("job_bind"), &b, on_logged, p);
		}
		while (bound[0] < DIR_JOBS && !deadline_passed())
			event_base_loop(base, EVLOOP_ONCE);
		jobs_bound = bound[0] == DIR_JOBS;
	}
	lat_init(&l, (size_t)n);
	run_start();
	end = deadline_end(max_s);
	while (done[0] < sent || (sent < n && time_mono_ms() < end)) {
		while (sent < n && sent - done[0] < inflight && time_mono_ms() < end) {
			char gid[32];
			struct pending *p = xcalloc(1, sizeof *p);
			struct msg_checkpoint_log r = { .checkpoint_id = p->id, .gid = gid, .cts = "bench-cts",
				.core_service = "app", .image_name = "img", .kind = "external", .size = 1,
				.sha256 = TEST_IMAGE_SHA256 };
			id_new(p->id);
			snprintf(gid, sizeof gid, "gcsjob-%d", sent % DIR_JOBS);
			p->l = &l;
			p->done = done;
			clock_gettime(CLOCK_MONOTONIC, &p->sent);
			proto_client_request(c, "checkpoint_log", pt, &r, on_logged, p);
			sent++;
		}
		if (deadline_passed())
			break;
		event_base_loop(base, EVLOOP_ONCE);
		if (!died && (died = run_slapd_died(done[0] - done[1])))
			end = 0;
	}
	/* unanswered requests are answered with an error as the client is freed: counted apart */
	run_row(inflight == 1 ? "gcs_records_1" : "gcs_records_256",
	    "records via gca-gcs: checkpoint_log", done[1], inflight, &l, done[0] - done[1], died,
	    sent - done[0]);
	lat_free(&l);
	proto_client_free(c);
}

/* ---- (2) end to end: do_checkpoint through gca-gcs to gca-cts and the job, record stored ---- */

/*
 * One broker connection per phase, and request ids unique across phases: a phase stopped with
 * checkpoints still running never has their late replies counted by the next one.
 */
static void
bench_e2e(int n, int inflight, double max_s)
{
	const struct proto_type *pt = proto_type_find("do_checkpoint");
	struct proto_sync *b = connect_as(A.dir, "broker-broker", A.gcs_ep);
	struct timespec *t = xcalloc((size_t)n + 1, sizeof *t), t0;
	int *job_of = xcalloc((size_t)n + 1, sizeof *job_of), sent = 0, got = 0, ok = 0, shown = 0;
	bool *busy = xcalloc((size_t)A.njobs, sizeof *busy), died = false;
	uint64_t end = deadline_end(max_s);
	uint32_t first = next_req;
	char err[256], key[32];
	double last_ok_s = 0;
	struct row *r;
	struct lat l;
	int next = 0;

	if (b == NULL || t == NULL || job_of == NULL || busy == NULL)
		goto out;
	next_req += (uint32_t)n + 1;
	if (inflight > A.njobs)
		inflight = A.njobs;	/* one checkpoint per job at a time: more would only queue */
	lat_init(&l, (size_t)n);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && time_mono_ms() < end)) {
		struct proto_msg m;
		uint32_t k;

		while (sent < n && sent - got < inflight && time_mono_ms() < end) {
			struct msg_do_checkpoint req;
			while (busy[next])
				next = (next + 1) % A.njobs;
			busy[next] = true;
			req = (struct msg_do_checkpoint){ .gid = A.gid[next] };
			job_of[++sent] = next;
			clock_gettime(CLOCK_MONOTONIC, &t[sent]);
			if (proto_sync_send(b, "do_checkpoint", first + (uint32_t)sent, pt, &req) != 0) {
				fprintf(stderr, "bench: do_checkpoint: the connection to the GCS broke\n");
				goto done;
			}
			next = (next + 1) % A.njobs;
		}
		if (read_reply(b, QUIET_MS, pt->reply, &m, err, sizeof err) != 0) {
			fprintf(stderr, "bench: do_checkpoint: %s\n", err);
			break;
		}
		k = m.id - first;
		if (k >= 1 && k <= (uint32_t)sent) {
			busy[job_of[k]] = false;
			got++;
			if (strcmp(m.type, "ok") == 0) {
				lat_add(&l, lat_since(&t[k]));	/* latencies of checkpoints done */
				ok++;
				last_ok_s = lat_since(&t0) / 1000;
			} else if (!died && slapd_dead()) {
				/* what follows would measure a dead directory: send no more */
				died = true;
				end = 0;
			}
			if (strcmp(m.type, "ok") != 0 && shown++ < 3) {
				const struct msg_err *e = m.body;
				fprintf(stderr, "bench: do_checkpoint %s: %s %s\n", A.gid[job_of[k]],
				    e ? e->code : "?", e ? e->msg : "?");
			}
		}
		proto_msg_free(&m);
	}
done:
	snprintf(key, sizeof key, "e2e_%d", inflight);
	/* after a crash, the rate is the checkpoints done before it over the time until the last */
	r = figures_rate(key, died ? "end to end: do_checkpoint, app CTS (until slapd died)" :
	    sent > got ? "end to end: do_checkpoint, app CTS (cut short)" :
	    "end to end: do_checkpoint, app CTS", ok, inflight, died ? last_ok_s : lat_since(&t0) / 1000,
	    &l, got - ok);
	if (sent > got)
		figures_extra(r, "unanswered", sent - got);
	lat_free(&l);
out:
	proto_sync_close(b);
	free(t);
	free(job_of);
	free(busy);
}

/*
 * BENCH_PROFILE="cmd": cmd runs (sh -c, its own process group) around the end-to-end phase at
 * BENCH_PROFILE_INFLIGHT (1, 16 or 256; 1 if unset) in flight, with {gcs}, {cts} and {slapd}
 * replaced by those pids, and gets SIGINT after it, e.g.
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

/*
 * Issue 22, target 4: the CTS's CPU (its own and its reaped children's) over the end-to-end phase
 * at 1 in flight that has just run (since cpu0), per checkpoint answered. Nothing else asks the
 * CTS for work then, so its idle loop's share is in the figure, and small (heartbeats).
 */
static void
bench_cts_cpu(double cpu0)
{
	struct row *e = figures_find("e2e_1"), *r;
	double cpu1 = proc_cpu_ms(A.cts_pid);
	int n;

	if (e == NULL || cpu0 < 0 || cpu1 < 0 || (n = e->n + e->errors) <= 0)
		return;
	r = figures_secs("cts_cpu_e2e_1", "CPU of gca-cts (app) and its children during end to end (1)",
	    (cpu1 - cpu0) / 1000);
	figures_extra(r, "checkpoints", n);
	figures_ratio("cts_cpu_per_ckpt_to_target", "CTS CPU per small checkpoint (ms) / 1 ms",
	    (cpu1 - cpu0) / n / 1.0);
}

static int
bench_site_a(void)
{
	int n_e2e = quick ? 150 : 3000, prof;
	double cpu0;

	if (bench_startup() != 0)
		return -1;
	if (cpu_only)
		goto jobs;
	/* The directory and the transport first, while only one job runs. */
	bench_directory();	/* each of its measurements a phase */
	PHASE("ping", bench_ping(quick ? 500 : 5000));
	PHASE("gca-ctl", bench_ctl(quick ? 10 : 50));
	if (ctl_only)
		return 0;
	PHASE("records 1", bench_gcs_records(quick ? 50 : 500, 1, quick ? 1 : 5));
	PHASE("records 256", bench_gcs_records(quick ? 500 : 5000, 256, quick ? 1 : 8));

	/* Every other job, each bound before the next starts (as a site would see them arrive). */
jobs:
	phase_log("starting the other jobs");
	for (int i = 1; i < A.njobs; i++) {
		if (deadline_passed()) {
			figures_skipped("end to end (the jobs were still being started)");
			return 0;
		}
		if (job_spawn(&A, i) < 0 || job_wait_bound(&A, i, 20000) != 0)
			return deadline_passed() ? 0 : -1;
	}
	proc_hwm_reset(A.gcs_pid);
	proc_hwm_reset(A.cts_pid);
	prof = profile_start(1);
	cpu0 = proc_cpu_ms(A.cts_pid);
	PHASE("end to end 1", bench_e2e(quick ? 50 : cpu_only ? 200 : 500, 1, quick ? 2 : cpu_only ? 30 : 8));
	bench_cts_cpu(cpu0);
	profile_stop(prof);
	if (cpu_only)
		return 0;
	prof = profile_start(16);
	PHASE("end to end 16", bench_e2e(n_e2e, 16, quick ? 2 : 20));
	profile_stop(prof);
	prof = profile_start(256);
	PHASE("end to end, one per job", bench_e2e(n_e2e, A.njobs, quick ? 2 : 20));
	profile_stop(prof);
	if (figures_find("e2e_1") != NULL) {
		figures_mib("rss_gcs_e2e", "peak RSS (VmHWM) of gca-gcs during (2)", proc_hwm_mib(A.gcs_pid));
		figures_mib("rss_cts_e2e", "peak RSS (VmHWM) of gca-cts (app) during (2)",
		    proc_hwm_mib(A.cts_pid));
	}
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
	int rc, j;

	if (test_sh(NULL, 0, "%s/scripts/gca-site down %s >/dev/null 2>&1", test_top(), B.dir) != 0)
		return -1;
	snprintf(cmd, sizeof cmd, "slapadd -q -f %s/ldap/slapd.conf > %s/log/slapadd.log 2>&1", B.dir, B.dir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((p = popen(cmd, "w")) == NULL)
		return -1;
	for (j = 0; j < jobs && (j % 1000 != 0 || !deadline_passed()); j++) {
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
	if (j < jobs)
		return -1;	/* stopped: the fill is not what the reads are about */
	if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
		fprintf(stderr, "bench: slapadd failed: see %s/log/slapadd.log\n", B.dir);
		return -1;
	}
	return lat_since(&t0) / 1000;
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

/* A broker's lookup of one job's checkpoints by GID, as ldapsearch does it (anonymous). A read
 * counts, and is timed, when it returned the job's records. */
static void
bench_ldap_reads(int jobs, int per_job, int n, int inflight, double max_s)
{
	struct timespec *t = xcalloc((size_t)n + 1, sizeof *t), t0 = { 0 };
	int *msgid = xcalloc((size_t)n + 1, sizeof *msgid);
	int v3 = LDAP_VERSION3, sent = 0, got = 0, ok = 0;
	uint64_t end = deadline_end(max_s), quiet_until = time_mono_ms() + QUIET_MS;
	unsigned seed = 42;
	char key[32];
	LDAP *ld = NULL;
	struct lat l;

	lat_init(&l, (size_t)n);
	if (t == NULL || msgid == NULL || ldap_initialize(&ld, B.ldap_uri) != LDAP_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS) {
		fprintf(stderr, "bench: cannot open %s\n", B.ldap_uri);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && time_mono_ms() < end)) {
		struct timeval slice = { 0, 0 };
		LDAPMessage *res = NULL;
		int id, i, rc, ms;

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
		if ((ms = deadline_slice(quiet_until)) == 0)
			break;
		slice.tv_sec = ms / 1000;
		slice.tv_usec = (ms % 1000) * 1000;
		if ((rc = ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ALL, &slice, &res)) == 0)
			continue;
		if (rc < 0) {
			fprintf(stderr, "bench: ldap_result failed\n");
			break;
		}
		quiet_until = time_mono_ms() + QUIET_MS;
		id = ldap_msgid(res);
		for (i = sent; i >= 1 && msgid[i] != id; i--)
			;
		if (i >= 1) {
			got++;
			if (ldap_count_entries(ld, res) == per_job) {
				lat_add(&l, lat_since(&t[i]));
				ok++;
			}
		}
		ldap_msgfree(res);
	}
done:
	snprintf(key, sizeof key, "reads_ldap_%d", inflight);
	figures_rate(key, sent > got ? "reads: a job's checkpoints by GID, libldap (cut short)" :
	    "reads: a job's checkpoints by GID, libldap", ok, inflight, lat_since(&t0) / 1000, &l,
	    got - ok);
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	lat_free(&l);
	free(t);
	free(msgid);
}

static void
bench_query_reads(const char *ep, int jobs, int per_job, int n, int inflight, double max_s)
{
	struct proto_sync *s = connect_as(B.dir, "broker-r", ep);
	const struct proto_type *pt = proto_type_find("query");
	struct timespec *t = xcalloc((size_t)n + 1, sizeof *t), t0;
	int sent = 0, got = 0, ok = 0, shown = 0;
	uint64_t end = deadline_end(max_s);
	uint32_t first = next_req;
	unsigned seed = 42;
	char err[256], key[32];
	struct lat l;

	lat_init(&l, (size_t)n);
	if (s == NULL || t == NULL)
		goto out;
	next_req += (uint32_t)n + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sent || (sent < n && time_mono_ms() < end)) {
		struct proto_msg m;
		uint32_t k;

		while (sent < n && sent - got < inflight && time_mono_ms() < end) {
			char gid[32];
			struct msg_query q = { .what = "checkpoints", .gid = gid };
			snprintf(gid, sizeof gid, "readjob-%u", rnd(&seed) % (unsigned)jobs);
			clock_gettime(CLOCK_MONOTONIC, &t[++sent]);
			if (proto_sync_send(s, "query", first + (uint32_t)sent, pt, &q) != 0)
				goto done;
		}
		if (read_reply(s, QUIET_MS, pt->reply, &m, err, sizeof err) != 0) {
			fprintf(stderr, "bench: query: %s\n", err);
			break;
		}
		k = m.id - first;
		if (k >= 1 && k <= (uint32_t)sent) {
			got++;
			if (strcmp(m.type, "ok") == 0 &&
			    ((struct msg_query_ok *)m.body)->entries.n == (size_t)per_job) {
				lat_add(&l, lat_since(&t[k]));
				ok++;
			} else if (shown++ < 3) {
				fprintf(stderr, "bench: query answered %s\n", m.type);
			}
		}
		proto_msg_free(&m);
	}
done:
	snprintf(key, sizeof key, "reads_query_%d", inflight);
	figures_rate(key, sent > got ? "reads: the same through gca-gcs query (cut short)" :
	    "reads: the same through gca-gcs query", ok, inflight, lat_since(&t0) / 1000, &l, got - ok);
out:
	proto_sync_close(s);
	lat_free(&l);
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
	for (uint64_t end = deadline_end(120); time_mono_ms() < end; usleep(20000)) {
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
				*ready_s = lat_since(&t0) / 1000;
				return pid;
			}
		}
	}
	if (!deadline_passed())
		fprintf(stderr, "bench: gca-gcs's job cache was not in step within 120 s: see %s\n", logp);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static int
bench_site_b(void)
{
	int jobs = quick ? 2000 : 100000, per_job = 10, pid, n1 = quick ? 500 : 3000;
	int n16 = quick ? 1000 : 10000;
	double secs, ready_s = 0, cap = quick ? 1 : 8;
	char ep[64], what[80];

	phase_log("site B up");
	if (test_site_up(&B) != 0 || test_pki(&B, "gcs gcs-r broker r") != 0)
		return -1;
	phase_log("site B: slapadd");
	if ((secs = fill_directory(jobs, per_job)) < 0) {
		if (!deadline_passed())
			return -1;
		figures_skipped("reads (the offline fill was stopped)");
		return 0;
	}
	snprintf(what, sizeof what, "slapadd: %d jobs + %d records (offline)", jobs, jobs * per_job);
	figures_rate("slapadd", what, jobs * (per_job + 1), 1, secs, NULL, 0);
	if (slapd_up_filled() != 0)
		return -1;
	PHASE("reads libldap 1", bench_ldap_reads(jobs, per_job, n1, 1, cap));
	PHASE("reads libldap 16", bench_ldap_reads(jobs, per_job, n16, 16, cap));
	if (deadline_passed()) {
		figures_skipped("gca-gcs with the jobs cached, and reads through it");
		return 0;
	}
	phase_log("site B: gca-gcs and its job cache");
	if ((pid = gcs_start_logged(ep, sizeof ep, &ready_s)) < 0)
		return deadline_passed() ? 0 : -1;
	snprintf(what, sizeof what, "gca-gcs start until its cache holds %d jobs", jobs);
	figures_secs("gcs_cache_ready", what, ready_s);
	snprintf(what, sizeof what, "peak RSS (VmHWM) of gca-gcs, %d jobs cached", jobs);
	figures_mib("rss_gcs_cache", what, proc_hwm_mib(pid));
	PHASE("reads query 1", bench_query_reads(ep, jobs, per_job, n1, 1, cap));
	PHASE("reads query 16", bench_query_reads(ep, jobs, per_job, n16, 16, cap));
	test_gcs_stop(pid);
	return 0;
}

/* ====================================================================================
 * Ratios and the report
 * ==================================================================================== */

static double
val(const char *key, char what)
{
	struct row *r = figures_find(key);

	if (r == NULL)
		return 0;
	switch (what) {
	case 'r': return r->per_s;
	case '5': return r->p50;
	default: return r->mib;
	}
}

/* Issue 22, target 1: each gca-ctl's p50 / 2 x (TLS connect p50 + one raw add p50); <= 1 meets it. */
static void
ctl_ratios(double add)
{
	double floor_ms = 2 * (val("tls_connect", '5') + add);

	if (val("tls_connect", '5') <= 0 || add <= 0)
		return;
	if (val("ctl_status", '5') > 0)
		figures_ratio("ctl_status_to_target", "gca-ctl status p50 / 2 x (TLS connect p50 + 1 raw add p50)",
		    val("ctl_status", '5') / floor_ms);
	if (val("ctl_checkpoint", '5') > 0)
		figures_ratio("ctl_checkpoint_to_target",
		    "gca-ctl checkpoint p50 / 2 x (TLS connect p50 + 1 raw add p50)",
		    val("ctl_checkpoint", '5') / floor_ms);
}

static void
ratios(void)
{
	struct row *ceil = figures_best("ceiling_cas_"), *adds = figures_best("ceiling_add_");
	struct row *e2e = figures_best("e2e_");
	double ping = val("ping_1", '5'), add = val("ceiling_add_1", '5'), rec = val("ceiling_cas_1", '5');
	char what[112], key[40];

	if (ceil != NULL) {
		double c = ceil->per_s;
		if (e2e != NULL) {
			snprintf(what, sizeof what, "headline: best end to end (%.12s) / directory ceiling (%.20s)",
			    e2e->key, ceil->key);
			figures_ratio("e2e_to_ceiling", what, e2e->per_s / c);
		}
		for (int i = 0; i < figures_mark(); i++) {
			struct row *r = figures_at(i);
			if (strncmp(r->key, "e2e_", 4) != 0 || r->per_s <= 0)
				continue;
			snprintf(what, sizeof what, "end to end (%d in flight) / directory ceiling",
			    r->inflight);
			snprintf(key, sizeof key, "%.24s_to_ceiling", r->key);
			figures_ratio(key, what, r->per_s / c);
		}
		if (val("e2e_16", 'r') > 0 && val("ceiling_cas_16", 'r') > 0)
			figures_ratio("e2e_16_to_ceiling_16", "end to end (16) / directory, CAS + add (16)",
			    val("e2e_16", 'r') / val("ceiling_cas_16", 'r'));
		if (val("gcs_records_256", 'r') > 0)
			figures_ratio("gcs_records_to_ceiling", "records via gca-gcs (256) / directory ceiling",
			    val("gcs_records_256", 'r') / c);
		if (val("directory_256", 'r') > 0)
			figures_ratio("library_to_ceiling", "GCS directory library (256) / directory ceiling",
			    val("directory_256", 'r') / c);
		if (adds != NULL)
			figures_ratio("ceiling_to_adds", "directory ceiling (CAS + add) / best adds alone",
			    c / adds->per_s);
	}
	if (val("directory_txn_256", 'r') > 0 && val("directory_256", 'r') > 0)
		figures_ratio("library_txn_to_library", "GCS library with transactions / without (256)",
		    val("directory_txn_256", 'r') / val("directory_256", 'r'));
	if (val("e2e_1", '5') > 0 && ping > 0 && add > 0) {
		figures_ratio("e2e_1_to_target", "e2e p50 (1) / (3 x ping p50 + 1 raw add p50)",
		    val("e2e_1", '5') / (3 * ping + add));
		figures_ratio("e2e_1_to_ping", "e2e p50 (1) / ping p50", val("e2e_1", '5') / ping);
	}
	if (val("e2e_1", '5') > 0 && rec > 0)
		figures_ratio("e2e_1_to_record", "e2e p50 (1) / one raw record (CAS + add) p50",
		    val("e2e_1", '5') / rec);
	ctl_ratios(add);
	if (val("rss_gcs_cache", 'm') > 0)
		figures_ratio("rss_gcs_cache_to_64mib", "gca-gcs peak RSS, jobs cached (site B) / 64 MiB",
		    val("rss_gcs_cache", 'm') / 64);
}

/* build/bench/results.json; run alone (not from bench/run), the table too. */
static void
report(void)
{
	char path[700];

	ratios();
	figures_path(path, sizeof path, "results.json");
	if (figures_write(path, "bench_record") == 0 && getenv("BENCH_DEADLINE") == NULL)
		test_sh(NULL, 0, "%s/bench/table '%s' >&2", test_top(), path);
}

int
main(void)
{
	const char *b = getenv("GCA_BUILD") ? getenv("GCA_BUILD") : "build", *only;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &prog_t0);
	quick = deadline_quick();
	/* stopping site B and writing the figures take a few seconds */
	deadline_init(quick ? 5 : 8);
	if (realpath(b, build) == NULL) {
		fprintf(stderr, "bench: no build folder %s\n", b);
		return 1;
	}
	log_init("bench_record");
	log_set_level(LOG_ERROR);
	base = event_base_new();
	deadline_tick(base);
	next_req = 1u << 20;	/* clear of proto_sync_call's own ids */
	A.njobs = quick ? 32 : 256;	/* end to end at 1, 16 and one checkpoint per job in flight */
	A.job_pid = xcalloc((size_t)A.njobs, sizeof *A.job_pid);
	A.gid = xcalloc((size_t)A.njobs, sizeof *A.gid);

	only = getenv("BENCH_ONLY") ? getenv("BENCH_ONLY") : "";
	if ((ctl_only = strcmp(only, "ctl") == 0))
		only = "a";
	if ((cpu_only = strcmp(only, "cpu") == 0)) {
		only = "a";
		A.njobs = 4;	/* one checkpoint at a time: a few jobs are enough */
	}
	if (strchr(only, 'b') == NULL) {
		/* kept from site A: its own stop (jobs, daemons, images: 4-10 s) and site B's share */
		deadline_reserve((quick ? 5 : 10) + (strchr(only, 'a') != NULL ? 0 : quick ? 10 : 60));
		if (bench_site_a() != 0) {
			fprintf(stderr, "bench: site A (end to end) stopped early; its folder is kept: %s\n",
			    A.dir);
			setenv("GCA_KEEP", "1", 1);
			rc = 1;
		}
		deadline_reserve(0);
	}
	if (slapd_crashes > 0) {
		char what[112];
		snprintf(what, sizeof what, "slapd segfaults in: %.80s", crashed_in);
		figures_count("slapd_crashes", what, slapd_crashes);
	}
	phase_log("site A down");
	site_down(&A);
	if (strchr(only, 'a') == NULL) {
		if (deadline_passed())
			figures_skipped("site B (reads, the GCS with 100,000 jobs)");
		else if (bench_site_b() != 0) {
			fprintf(stderr, "bench: site B (reads) stopped early; its folder is kept: %s\n", B.dir);
			setenv("GCA_KEEP", "1", 1);	/* test_site_down keeps the logs to look at */
			rc = 1;
		}
	}
	phase_log("site B down");
	test_site_down(&B);
	phase_log("done");
	deadline_tick_free();
	event_base_free(base);
	report();
	free(A.job_pid);
	free(A.gid);
	return deadline_signalled() ? 128 + deadline_signalled() : rc;
}
