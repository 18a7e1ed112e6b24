/*
 * The criu core service: system-level checkpoints of a job's whole process tree with CRIU. The CTS
 * dumps (`criu dump --leave-running`, root); restores run inside gca-recover's process tree, never
 * here (DESIGN.md, "The CRIU privilege line"). criu's log stays with the image, and its last error
 * lines go into the error reply. The probe is `criu check`: on a kernel criu does not support, the
 * CTS is published unavailable with criu's own reason.
 */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cts/cts.h"

static char criu_version[64], criu_kernel[128];
static char criu_xfeatures[32], criu_fpu_flags[512];

/*
 * The CPU features a criu restore checks. By default (--cpu-cap=fpu) criu refuses an image whose
 * FPU state was saved with extended features (the XSAVE feature mask, CPUID leaf 0xD) this CPU
 * lacks, so that mask is what a broker must match; the FPU-family flags of /proc/cpuinfo say the
 * same in words a person reads.
 */
static void
criu_cpu_probe(void)
{
	static const char *family[] = { "fpu", "sse", "avx", "fma", "xsave", "amx", "pku", "mpx",
	    "ospke", NULL };
	char line[8192], *save, *f;
	size_t off = 0;
	FILE *fp;

#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, cx, d;

	if (__get_cpuid_count(0xd, 0, &a, &b, &cx, &d))
		snprintf(criu_xfeatures, sizeof criu_xfeatures, "0x%llx",
		    ((unsigned long long)d << 32) | a);
#endif
	if ((fp = fopen("/proc/cpuinfo", "r")) == NULL)
		return;
	while (fgets(line, sizeof line, fp) != NULL) {
		if (strncmp(line, "flags", 5) != 0 || strchr(line, ':') == NULL)
			continue;
		for (f = strtok_r(strchr(line, ':') + 1, " \t\n", &save); f != NULL;
		    f = strtok_r(NULL, " \t\n", &save)) {
			for (int i = 0; family[i] != NULL; i++) {
				if (strncmp(f, family[i], strlen(family[i])) != 0)
					continue;
				if (off + strlen(f) + 2 < sizeof criu_fpu_flags)
					off += (size_t)snprintf(criu_fpu_flags + off,
					    sizeof criu_fpu_flags - off, "%s%s", off ? " " : "", f);
				break;
			}
		}
		break;	/* the first CPU speaks for all */
	}
	fclose(fp);
}

/* Runs a shell command; in line: its first output line holding want, else its last line. */
static int
criu_run(const char *cmd, const char *want, char *line, size_t len)
{
	char buf[1024];
	FILE *p = popen(cmd, "r");
	int status;

	line[0] = '\0';
	if (p == NULL)
		return -1;
	while (fgets(buf, sizeof buf, p) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		/* with want: the first line that has it (the cause, not its consequences); criu's
		 * "exited, status=1" lines only say that a helper it ran failed */
		if (want != NULL && strstr(buf, "exited, status=") != NULL)
			continue;
		if (buf[0] != '\0' && (want == NULL || line[0] == '\0' ||
		    (strstr(buf, want) != NULL && strstr(line, want) == NULL)))
			if (snprintf(line, len, "%s", buf) >= (int)len)
				line[len - 1] = '\0';	/* a long line is cut */
	}
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
criu_probe(struct cts *c, char *why, size_t len)
{
	struct utsname u;
	char line[512];
	int rc;

	(void)c;
	if (uname(&u) == 0)
		snprintf(criu_kernel, sizeof criu_kernel, "%s", u.release);
	criu_cpu_probe();
	if (criu_run("criu --version 2>&1", "Version", line, sizeof line) != 0) {
		snprintf(why, len, "criu is not installed here (criu --version: %s)",
		    line[0] ? line : "not found");
		return -1;
	}
	sscanf(line, "Version: %63s", criu_version);
	if ((rc = criu_run("criu check 2>&1 </dev/null", "Error", line, sizeof line)) != 0) {
		const char *msg = strstr(line, "): ");	/* "Error (criu/vdso.c:381): vdso: ..." */
		snprintf(why, len, "criu check: %s", msg ? msg + 3 : line[0] ? line : "failed");
		return -1;
	}
	return 0;
}

/*
 * What a restore must match (issue 7): criu version, kernel and the CPU's FPU features, on the CTS
 * and on every record, so a broker finds a resource where a checkpoint can come back with
 * `ldapsearch '(&(objectClass=gcaTranslationService)(gcaProperty=cpu.xfeatures=0x2e7))'`.
 */
static void
criu_properties(struct cts *c, struct proto_strlist *out)
{
	char p[200];

	(void)c;
	if (criu_version[0] != '\0') {
		snprintf(p, sizeof p, "criu=%s", criu_version);
		proto_strlist_add(out, p);
	}
	if (criu_kernel[0] != '\0') {
		snprintf(p, sizeof p, "kernel=%s", criu_kernel);
		proto_strlist_add(out, p);
	}
	if (criu_xfeatures[0] != '\0') {
		snprintf(p, sizeof p, "cpu.xfeatures=%s", criu_xfeatures);
		proto_strlist_add(out, p);
	}
	if (criu_fpu_flags[0] != '\0') {
		char q[sizeof criu_fpu_flags + 16];

		snprintf(q, sizeof q, "cpu.fpu=%s", criu_fpu_flags);
		proto_strlist_add(out, q);
	}
}

static bool
criu_has_tty(pid_t pid)
{
	char path[64], target[256];
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/fd/0", (int)pid);
	if ((n = readlink(path, target, sizeof target - 1)) <= 0)
		return false;
	target[n] = '\0';
	return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

static bool
criu_wants(struct cts *c, const char *property)
{
	for (size_t i = 0; i < c->reg.properties.n; i++) {
		if (strcmp(c->reg.properties.v[i], property) == 0)
			return true;
	}
	return false;
}

/* In the child: criu dump into the image folder, then the manifest. */
static int
criu_dump_child(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	struct image_meta m = { 0 };
	struct image_result r = { 0 };
	char pid[32], log[PATH_MAX + 64], line[512], prev[ID_LEN + 8];
	const char *argv[20];
	int n = 0, status;
	pid_t p;

	if (mkdir(ck->image_dir, 0700) != 0) {
		snprintf(out, len, "cannot make %s", ck->image_dir);
		return -1;
	}
	snprintf(pid, sizeof pid, "%d", (int)ck->job->pid);
	argv[n++] = "criu";
	argv[n++] = "dump";
	argv[n++] = "--leave-running";
	argv[n++] = "-t";
	argv[n++] = pid;
	argv[n++] = "-D";
	argv[n++] = ck->image_dir;
	argv[n++] = "-o";
	argv[n++] = "dump.log";
	argv[n++] = "-v4";
	if (ck->cts->criu_incremental > 0) {
		/* the kernel tracks the pages written from now on, for the next dump */
		argv[n++] = "--track-mem";
		if (ck->parent[0] != '\0') {
			snprintf(prev, sizeof prev, "../%s", ck->parent);	/* relative to -D */
			argv[n++] = "--prev-images-dir";
			argv[n++] = prev;
		}
	}
	if (criu_has_tty(ck->job->pid))
		argv[n++] = "--shell-job";
	if (criu_wants(ck->cts, "criu.tcp-established"))
		argv[n++] = "--tcp-established";
	argv[n] = NULL;
	if ((p = fork()) == 0) {
		execvp("criu", (char **)argv);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(log, sizeof log, "grep -a Error '%s/dump.log' | tail -3", ck->image_dir);
		criu_run(log, NULL, line, sizeof line);
		snprintf(out, len, "criu dump failed (log %s/dump.log): %s", ck->image_dir,
		    line[0] ? line : "no error line in its log");
		return -1;
	}
	/* criu's link to the parent folder: the manifest names the parent instead, and restore_prepare
	 * makes the link again once it has verified the chain (the store holds no symlinks) */
	snprintf(log, sizeof log, "%s/parent", ck->image_dir);
	if (unlink(log) != 0 && errno != ENOENT) {
		snprintf(out, len, "cannot remove %s: %s", log, strerror(errno));
		return -1;
	}
	snprintf(m.parent, sizeof m.parent, "%s", ck->parent);
	snprintf(m.checkpoint_id, sizeof m.checkpoint_id, "%s", ck->id);
	snprintf(m.gid, sizeof m.gid, "%s", ck->job->gid);
	snprintf(m.core_service, sizeof m.core_service, "criu");
	m.time_ms = ck->time_ms;
	if (image_store_seal(ck->image_dir, &m, &r, out, len) != 0)
		return -1;
	ckpt_result_line(&r, out, len);
	return 0;
}

static void
criu_on_dumped(bool ok, const char *out, void *arg)
{
	struct cts_ckpt *ck = arg;

	if (ok && ckpt_result_read(ck, out) == 0) {
		/* the next dump's pages are those written since this one */
		snprintf(ck->job->incr_last, sizeof ck->job->incr_last, "%s", ck->id);
		ck->job->incr_n = ck->parent[0] != '\0' ? ck->job->incr_n + 1 : 0;
		ckpt_dumped(ck, NULL);
		return;
	}
	/* a failed dump may have reset the memory tracking: the next one is full */
	ck->job->incr_last[0] = '\0';
	ckpt_dumped(ck, ok ? "the dump gave no result" : out);
}

/*
 * criu_incremental N: every dump tracks memory, and is incremental on the job's previous dump
 * (the one whose tracking it continues) unless N incremental ones followed the last full one,
 * that image is gone, or images are encrypted (the restore would get a plain copy of one link only).
 */
static void
criu_choose_parent(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	char dir[PATH_MAX];
	struct stat st;

	ck->parent[0] = '\0';
	if (ck->cts->criu_incremental == 0 || j->incr_last[0] == '\0' ||
	    j->incr_n >= ck->cts->criu_incremental || ck->cts->image_key_id[0] != '\0')
		return;
	if (cts_image_dir(ck->cts, j->gid, j->incr_last, dir, sizeof dir) != 0 || stat(dir, &st) != 0)
		return;
	snprintf(ck->parent, sizeof ck->parent, "%s", j->incr_last);
}

static void
criu_dump(struct cts_ckpt *ck)
{
	criu_choose_parent(ck);
	if (child_run(ck->cts, criu_dump_child, ck, criu_on_dumped, ck) != 0)
		ckpt_dumped(ck, "cannot start criu");
}

static void
criu_saved(struct cts_ckpt *ck, bool ok, const char *error)
{
	(void)ok;
	(void)error;
	ckpt_dumped(ck, "criu jobs do not answer app_save");
}

const struct core_service core_criu = {
	.name = "criu",
	.external = true,
	.self_checkpoint = true,	/* a job may ask; criu dumps it from outside */
	.probe = criu_probe,
	.properties = criu_properties,
	.dump = criu_dump,
	.saved = criu_saved,
	.keeps_channel = false,
};
