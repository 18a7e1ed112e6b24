/*
 * The criu core service: system-level checkpoints of a job's whole process tree with CRIU. The CTS
 * dumps (`criu dump --leave-running`): root's jobs as root, an ordinary user's job through
 * gca-criu-helper, which runs criu as the job's user with CAP_CHECKPOINT_RESTORE only
 * (--unprivileged); restores run inside gca-recover's process tree, never here
 * (docs/ARCHITECTURE.md, "The privilege line"). criu's log stays with the image, and its last error
 * lines go into the error reply. The probe is `criu check`: on a kernel criu does not support, the
 * CTS is published unavailable with criu's own reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cts/cts.h"

static char criu_version[64], criu_kernel[128];
static char criu_xfeatures[32], criu_xsave[48], criu_fpu_flags[512];
/* ordinary users' jobs: "" when they can be dumped here, else why not (criu_user_job) */
static char criu_user_why[300];
static char criu_helper[PATH_MAX];	/* gca-criu-helper, next to gca-cts or on PATH */

static int criu_run(const char *cmd, const char *want, char *line, size_t len);

/*
 * The FPU-family flags of /proc/cpuinfo: what criu's own figures below mean, in words a person
 * reads (a broker matches the figures).
 */
static void
criu_cpu_flags(void)
{
	static const char *family[] = { "fpu", "sse", "avx", "fma", "xsave", "amx", "pku", "mpx",
	    "ospke", NULL };
	char line[8192], *save, *f;
	size_t off = 0;
	FILE *fp;

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

/* One protobuf varint at *p, not past end; -1 if it is cut short. */
static int
criu_pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		unsigned char b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* Steps over one field's value of wire type wt; -1 if it is cut short or of an unknown type. */
static int
criu_pb_skip(const unsigned char **p, const unsigned char *end, unsigned wt)
{
	uint64_t n;

	switch (wt) {
	case 0:
		return criu_pb_varint(p, end, &n);
	case 1:
		n = 8;
		break;
	case 2:
		if (criu_pb_varint(p, end, &n) != 0)
			return -1;
		break;
	case 5:
		n = 4;
		break;
	default:
		return -1;
	}
	if (n > (uint64_t)(end - *p))
		return -1;
	*p += n;
	return 0;
}

static uint32_t
criu_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define CRIU_IMG_COMMON_MAGIC	0x54564319u
#define CRIU_CPUINFO_MAGIC	0x61404013u

/*
 * criu's cpuinfo.img (written by `criu cpuinfo dump` and by every dump): the common and the cpuinfo
 * magic, a 32-bit size, then the protobuf cpuinfo_entry, whose x86_entry (field 1) holds
 * xfeatures_mask (8), xsave_size (9) and xsave_size_max (10). fig[] gets those three (0 where the
 * image has none: a CPU without XSAVE). -1 if the file is not such an image.
 */
static int
criu_cpuinfo_read(const char *path, uint64_t fig[3])
{
	const unsigned char *p, *end, *in_end;
	unsigned char *buf = NULL;
	uint64_t key, n, v;
	size_t len;
	int rc = -1;

	fig[0] = fig[1] = fig[2] = 0;
	if (file_read_all(path, (char **)&buf, &len, 65536) != 0)
		return -1;
	if (len < 12 || criu_le32(buf) != CRIU_IMG_COMMON_MAGIC ||
	    criu_le32(buf + 4) != CRIU_CPUINFO_MAGIC || criu_le32(buf + 8) > len - 12)
		goto out;
	p = buf + 12;
	end = p + criu_le32(buf + 8);
	while (p < end) {
		if (criu_pb_varint(&p, end, &key) != 0)
			goto out;
		if (key != (1 << 3 | 2)) {		/* not x86_entry */
			if (criu_pb_skip(&p, end, key & 7) != 0)
				goto out;
			continue;
		}
		if (criu_pb_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
			goto out;
		for (in_end = p + n; p < in_end;) {
			if (criu_pb_varint(&p, in_end, &key) != 0)
				goto out;
			if ((key >> 3) >= 8 && (key >> 3) <= 10 && (key & 7) == 0) {
				if (criu_pb_varint(&p, in_end, &v) != 0)
					goto out;
				fig[(key >> 3) - 8] = v;
			} else if (criu_pb_skip(&p, in_end, key & 7) != 0) {
				goto out;
			}
		}
		rc = 0;
		break;	/* the first CPU speaks for all */
	}
out:
	free(buf);
	return rc;
}

/*
 * What a restore compares (criu/arch/x86/cpu.c, cpu_validate_features). criu checks the CPU only
 * when the dump wrote cpuinfo.img and the restore asks (any --cpu-cap; by default neither does),
 * so the CTS dumps and gca-recover restores with --cpu-cap=fpu: an image then needs the FPU,
 * FXSR and OSXSAVE flags it was saved with, every bit of its XSAVE feature mask on the restoring
 * CPU and the same XSAVE frame sizes. criu computes the mask itself (CPUID leaf 0xD less what
 * CPUID says is off, user states only), so the figures come from criu: `criu cpuinfo dump`, read
 * back, the same cpuinfo.img every dump holds.
 */
static void
criu_cpu_probe(void)
{
	char dir[] = "/tmp/gca-criu-cpuinfo.XXXXXX", cmd[128], img[64], line[256];
	uint64_t fig[3];

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(cmd, sizeof cmd, "criu cpuinfo dump -D %s -o /dev/null 2>&1", dir);
	snprintf(img, sizeof img, "%s/cpuinfo.img", dir);
	if (criu_run(cmd, NULL, line, sizeof line) == 0 && criu_cpuinfo_read(img, fig) == 0) {
		snprintf(criu_xfeatures, sizeof criu_xfeatures, "0x%llx", (unsigned long long)fig[0]);
		snprintf(criu_xsave, sizeof criu_xsave, "%llu/%llu", (unsigned long long)fig[1],
		    (unsigned long long)fig[2]);
	} else {
		log_warn("criu cpuinfo dump: %s; the CPU's XSAVE figures are not published",
		    line[0] ? line : "no cpuinfo.img");
	}
	file_remove_tree(dir);
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

/*
 * Can ordinary users' jobs be dumped here? criu needs --unprivileged (CRIU 3.17 has none: it
 * came later; Debian 13's 4.1 has it) and the CTS its helper, found next to gca-cts first.
 */
static void
criu_user_probe(void)
{
	char exe[PATH_MAX], line[512], *slash;
	ssize_t n;

	criu_helper[0] = '\0';
	if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			if (snprintf(criu_helper, sizeof criu_helper, "%.*s/gca-criu-helper",
			    (int)(sizeof criu_helper - 32), exe) >= (int)sizeof criu_helper ||
			    access(criu_helper, X_OK) != 0)
				criu_helper[0] = '\0';
		}
	}
	if (criu_helper[0] == '\0' && criu_run("command -v gca-criu-helper 2>/dev/null", NULL,
	    line, sizeof line) == 0 && line[0] == '/')
		snprintf(criu_helper, sizeof criu_helper, "%s", line);
	if (criu_run("criu --help 2>&1", "--unprivileged", line, sizeof line) != 0 ||
	    strstr(line, "--unprivileged") == NULL)
		snprintf(criu_user_why, sizeof criu_user_why, "criu %s has no --unprivileged mode, "
		    "so only root's jobs can be checkpointed here (ordinary users' jobs need a newer "
		    "criu, e.g. Debian 13's 4.1)", criu_version);
	else if (criu_helper[0] == '\0')
		snprintf(criu_user_why, sizeof criu_user_why, "gca-criu-helper is neither next to "
		    "gca-cts nor on its PATH, so only root's jobs can be checkpointed here");
	else
		criu_user_why[0] = '\0';
}

/* local_bind of an ordinary user's job: 0, or -1 with why it cannot be checkpointed here. */
static int
criu_user_job(struct cts *c, uid_t uid, char *why, size_t len)
{
	(void)c;
	(void)uid;
	if (criu_user_why[0] == '\0')
		return 0;
	snprintf(why, len, "%s", criu_user_why);
	return -1;
}

static int
criu_probe(struct cts *c, char *why, size_t len)
{
	struct utsname u;
	char line[512];
	int rc;

	if (uname(&u) == 0)
		snprintf(criu_kernel, sizeof criu_kernel, "%s", u.release);
	criu_cpu_flags();
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
	criu_cpu_probe();	/* criu's figures need a criu that works here */
	criu_user_probe();
	/* Incremental dumps and pre-dumps need the kernel to track written pages (soft-dirty bits,
	 * CONFIG_MEM_SOFT_DIRTY); without it every such dump would fail ("Tracking memory is not
	 * available"), so the settings are refused here and the CTS is published with the reason. */
	if ((c->criu_incremental > 0 || c->criu_predump) &&
	    criu_run("criu check --feature mem_dirty_track 2>&1 </dev/null", "Error", line,
	    sizeof line) != 0) {
		const char *msg = strstr(line, "): ");
		snprintf(why, len, "%s: this kernel cannot track memory (criu check --feature "
		    "mem_dirty_track: %s)", c->criu_predump ? "criu_predump" : "criu_incremental",
		    msg ? msg + 3 : line[0] ? line : "failed");
		return -1;
	}
	return 0;
}

/*
 * What a restore must match (issue 7): criu version, kernel and the CPU's FPU features, on the CTS
 * and on every record, so a broker finds a resource where a checkpoint can come back with
 * `ldapsearch '(&(objectClass=gcaTranslationService)(gcaProperty=cpu.xfeatures=0x215)
 * (gcaProperty=cpu.xsave=2696/2696))'`. Where criu does not work, only it could say the XSAVE
 * figures: they are left out (the CTS is unavailable anyway).
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
	if (criu_xsave[0] != '\0') {
		snprintf(p, sizeof p, "cpu.xsave=%s", criu_xsave);
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

#define CRIU_INHERIT_FILE "gca-inherit-fd"

/*
 * Which of fds 0-2 of the tree's first two levels (the init and the job) are pipes: criu dumps a
 * pipe whose other end is outside the tree, but restores it as a new pipe nobody reads. The image
 * says so in CRIU_INHERIT_FILE, "fd N pipe:[INODE]" a line, and gca-recover gives criu its own fd N
 * for it (--inherit-fd), so the restored job writes where gca-recover's output goes.
 */
static int
criu_inherit_note(pid_t root, const char *image_dir, char *err, size_t errlen)
{
	char text[512], path[80], target[64], file[PATH_MAX + 32], *buf = NULL, *p, *end;
	pid_t procs[9] = { root };
	int nprocs = 1, used = 0;
	size_t len;
	long child;

	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)root, (int)root);
	if (file_read_all(path, &buf, &len, 65536) == 0) {
		for (p = buf; nprocs < (int)GCA_NITEMS(procs) &&
		    (child = strtol(p, &end, 10)) > 0 && end != p; p = end)
			procs[nprocs++] = (pid_t)child;
		free(buf);
	}
	text[0] = '\0';
	for (int i = 0; i < nprocs; i++) {
		for (int fd = 0; fd <= 2; fd++) {
			ssize_t n;

			snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)procs[i], fd);
			if ((n = readlink(path, target, sizeof target - 1)) <= 0)
				continue;
			target[n] = '\0';
			if (strncmp(target, "pipe:[", 6) != 0 || strstr(text, target) != NULL)
				continue;	/* one line per pipe: stdout and stderr may be one */
			used += snprintf(text + used, sizeof text - used, "fd %d %s\n", fd, target);
			if (used >= (int)sizeof text) {
				snprintf(err, errlen, "too many inherited pipes to note");
				return -1;
			}
		}
	}
	if (used == 0)
		return 0;
	snprintf(file, sizeof file, "%s/%s", image_dir, CRIU_INHERIT_FILE);
	if (file_write_whole(file, text, (size_t)used, 0600) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", file, strerror(errno));
		return -1;
	}
	return 0;
}

/* What criu --display-stats said of one dump or pre-dump. */
struct criu_stats {
	bool			seen;
	unsigned long long	frozen_us;
	unsigned long long	written, in_parent;	/* memory pages */
};

/*
 * Runs criu with argv and waits for it; its standard output (the --display-stats lines, criu's
 * only output there) is read into st. Returns criu's exit status, -1 if it did not run.
 */
static int
criu_exec(const char *const *argv, struct criu_stats *st, int dirfd)
{
	char line[256], **av;
	int p[2], status;
	pid_t pid;
	FILE *f;

	memset(st, 0, sizeof *st);
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	av = xstrvdup(argv);	/* copied before fork: the child only execs */
	if ((pid = fork()) == 0) {
		if (p[1] == STDOUT_FILENO ? fcntl(p[1], F_SETFD, 0) != 0 :
		    dup2(p[1], STDOUT_FILENO) < 0)
			_exit(127);
		if (dirfd >= 0) {
			/* gca-criu-helper: the image folder as its fd 3 */
			if (dirfd == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(dirfd, 3) != 3)
				_exit(127);
			execv(av[0], av);
			_exit(127);
		}
		execvp("criu", av);
		_exit(127);
	}
	xstrv_free(av);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	if ((f = fdopen(p[0], "r")) == NULL) {
		close(p[0]);
	} else {
		while (fgets(line, sizeof line, f) != NULL) {
			if (sscanf(line, "Frozen time: %llu us", &st->frozen_us) == 1)
				st->seen = true;
			sscanf(line, "Memory pages written: %llu", &st->written);
			sscanf(line, "Memory pages skipped from parent: %llu", &st->in_parent);
		}
		fclose(f);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A failed criu run: its log's last error lines into out. Returns -1. */
static int
criu_failed(const char *what, const char *dir, const char *logname, char *out, size_t len)
{
	char cmd[PATH_MAX + 96], line[512];

	snprintf(cmd, sizeof cmd, "grep -a Error '%s/%s' | tail -3", dir, logname);
	criu_run(cmd, NULL, line, sizeof line);
	snprintf(out, len, "criu %s failed (log %s/%s): %s", what, dir, logname,
	    line[0] ? line : "no error line in its log");
	return -1;
}

/* The options of a job's tree that criu dump and pre-dump both need; returns the new argc. */
static int
criu_job_args(struct cts_ckpt *ck, pid_t root, const char **argv, int n)
{
	if (criu_has_tty(root))
		argv[n++] = "--shell-job";
	if (criu_wants(ck->cts, "criu.tcp-established"))
		argv[n++] = "--tcp-established";
	return n;
}

/*
 * criu_predump: the job's memory copied while it runs on (criu pre-dump freezes it only to grab
 * its pages, and writes them after), into the checkpoint's own folder predump/, incremental on the
 * parent checkpoint when there is one. The dump proper is then incremental on the pre-dump and
 * writes only the pages written since, so the job stays frozen for less time.
 */
static int
criu_predump(struct cts_ckpt *ck, pid_t root, const char *pid, struct criu_stats *st, char *out,
	size_t len)
{
	char dir[PATH_MAX], prev[ID_LEN + 16];
	const char *argv[20];
	int n = 0;

	if (snprintf(dir, sizeof dir, "%s/%s", ck->image_dir, CRIU_PREDUMP_DIR) >= (int)sizeof dir ||
	    mkdir(dir, 0700) != 0) {
		snprintf(out, len, "cannot make %s/%s: %s", ck->image_dir, CRIU_PREDUMP_DIR,
		    strerror(errno));
		return -1;
	}
	argv[n++] = "criu";
	argv[n++] = "pre-dump";
	argv[n++] = "-t";
	argv[n++] = pid;
	argv[n++] = "-D";
	argv[n++] = dir;
	argv[n++] = "-o";
	argv[n++] = "pre-dump.log";
	argv[n++] = "-v4";
	argv[n++] = "--track-mem";
	argv[n++] = "--display-stats";
	if (ck->parent[0] != '\0') {
		snprintf(prev, sizeof prev, "../../%s", ck->parent);	/* relative to -D */
		argv[n++] = "--prev-images-dir";
		argv[n++] = prev;
	}
	n = criu_job_args(ck, root, argv, n);
	argv[n] = NULL;
	if (criu_exec(argv, st, -1) != 0)
		return criu_failed("pre-dump", dir, "pre-dump.log", out, len);
	return 0;
}

/* criu's links to parent folders: the manifest names the parent instead, and restore_prepare
 * makes the links again once it has verified the chain (the store holds no symlinks). */
static int
criu_unlink_parents(const struct cts_ckpt *ck, char *out, size_t len)
{
	static const char *const links[] = { "parent", CRIU_PREDUMP_DIR "/parent" };
	char path[PATH_MAX + 32];

	for (size_t i = 0; i < GCA_NITEMS(links); i++) {
		snprintf(path, sizeof path, "%s/%s", ck->image_dir, links[i]);
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(out, len, "cannot remove %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The job's frozen time, which pre-dumps are there to cut, for the operator. */
static void
criu_log_stats(const struct cts_ckpt *ck, const struct criu_stats *dump,
	const struct criu_stats *pre)
{
	char more[160] = "";

	if (!dump->seen)
		return;
	if (pre->seen)
		snprintf(more, sizeof more, "; its pre-dump froze it %.1f ms and wrote %llu pages",
		    (double)pre->frozen_us / 1000.0, pre->written);
	log_info("checkpoint %s of %s: criu froze the job %.1f ms in its dump (%llu pages written, "
	    "%llu in the parent)%s", ck->id, ck->job->gid, (double)dump->frozen_us / 1000.0,
	    dump->written, dump->in_parent, more);
}

static int
criu_chown_root(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return lchown(path, 0, 0);
}

/*
 * An ordinary user's job: gca-criu-helper dumps it as its user (criu --unprivileged) into the
 * image folder, lent to that user for the dump only and reached through the fd it gets (every
 * folder above it is the CTS's, 0700: no other process of the user can reach it); then the folder
 * and everything criu wrote are the CTS's again before a byte of it is hashed. Full dumps only:
 * the user's criu cannot read an earlier image of the store (criu_choose_parent).
 */
static int
criu_dump_user(struct cts_ckpt *ck, pid_t root, const char *pid, struct criu_stats *st,
	char *out, size_t len)
{
	const char *argv[8];
	int n = 0, dirfd, rc;

	if (criu_user_why[0] != '\0') {
		snprintf(out, len, "%s", criu_user_why);
		return -1;
	}
	if (chown(ck->image_dir, ck->job->uid, ck->job->gidn) != 0 ||
	    (dirfd = open(ck->image_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(out, len, "cannot lend %s to uid %u: %s", ck->image_dir,
		    (unsigned)ck->job->uid, strerror(errno));
		return -1;
	}
	argv[n++] = criu_helper;
	argv[n++] = "dump";
	argv[n++] = pid;
	n = criu_job_args(ck, root, argv, n);
	argv[n] = NULL;
	rc = criu_exec(argv, st, dirfd);
	close(dirfd);
	if (nftw(ck->image_dir, criu_chown_root, 16, FTW_PHYS) != 0) {
		snprintf(out, len, "cannot take %s back from uid %u: %s", ck->image_dir,
		    (unsigned)ck->job->uid, strerror(errno));
		return -1;
	}
	if (rc != 0)
		return criu_failed("dump (as the job's user, gca-criu-helper)", ck->image_dir,
		    "dump.log", out, len);
	return 0;
}

/* In the child: criu dump into the image folder (after a pre-dump, with criu_predump), then the
 * manifest. */
static int
criu_dump_child(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	struct image_meta m = { 0 };
	struct image_result r = { 0 };
	struct criu_stats pre = { 0 }, dump;
	char pid[32], prev[ID_LEN + 8];
	const char *argv[24];
	struct image_tail *tail = NULL;
	int n = 0, rc;
	uint64_t t0, t1;
	pid_t root;

	if (mkdir(ck->image_dir, 0700) != 0) {
		snprintf(out, len, "cannot make %s", ck->image_dir);
		return -1;
	}
	root = proc_job_root(ck->job->pid);	/* the tree to dump */
	snprintf(pid, sizeof pid, "%d", (int)root);
	if (criu_inherit_note(root, ck->image_dir, out, len) != 0)
		return -1;
	t0 = time_mono_ms();
	if (ck->job->uid != 0) {
		if (criu_dump_user(ck, root, pid, &dump, out, len) != 0)
			return -1;
		goto dumped;
	}
	if (ck->cts->criu_predump && criu_predump(ck, root, pid, &pre, out, len) != 0)
		return -1;
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
	argv[n++] = "--display-stats";
	argv[n++] = "--cpu-cap=fpu";	/* writes cpuinfo.img, which gca-recover's restore checks */
	if (ck->cts->criu_incremental > 0 || ck->cts->criu_predump) {
		/* the kernel tracks the pages written from now on, for the next dump */
		argv[n++] = "--track-mem";
		if (ck->cts->criu_predump) {
			/* the pre-dump is this dump's parent; the checkpoint's is the pre-dump's */
			argv[n++] = "--prev-images-dir";
			argv[n++] = CRIU_PREDUMP_DIR;
		} else if (ck->parent[0] != '\0') {
			snprintf(prev, sizeof prev, "../%s", ck->parent);	/* relative to -D */
			argv[n++] = "--prev-images-dir";
			argv[n++] = prev;
		}
	}
	n = criu_job_args(ck, root, argv, n);
	argv[n] = NULL;
	/* root's criu writes each file front to back: hash them as they grow (cts/tail.c); not
	 * when compressing, where the files are read once, after the dump, to compress them */
	if (ck->cts->compress_level == 0)
		tail = image_tail_start(ck->image_dir);
	if (criu_exec(argv, &dump, -1) != 0) {
		image_tail_free(tail);
		return criu_failed("dump", ck->image_dir, "dump.log", out, len);
	}
dumped:
	criu_log_stats(ck, &dump, &pre);
	if (criu_unlink_parents(ck, out, len) != 0) {
		image_tail_free(tail);
		return -1;
	}
	snprintf(m.parent, sizeof m.parent, "%s", ck->parent);
	snprintf(m.checkpoint_id, sizeof m.checkpoint_id, "%s", ck->id);
	snprintf(m.gid, sizeof m.gid, "%s", ck->job->gid);
	snprintf(m.core_service, sizeof m.core_service, "criu");
	m.time_ms = ck->time_ms;
	t1 = time_mono_ms();
	if (ck->cts->compress_level != 0) {
		/* compressed (then encrypted with a key) and sealed in one pass (cts/image.c) */
		snprintf(m.key_id, sizeof m.key_id, "%s", ck->cts->image_key_id);
		rc = image_store_seal_packed(ck->image_dir, &m, ck->cts->compress_level,
		    m.key_id[0] != '\0' ? ck->cts->image_key : NULL, &r, out, len);
	} else {
		rc = image_store_seal_tailed(ck->image_dir, &m, tail, &r, out, len);
	}
	image_tail_free(tail);
	if (rc != 0)
		return -1;
	/* where a checkpoint's time goes, for whoever tunes it (docs/BENCHMARKS.md) */
	log_info("checkpoint %s of %s: criu %s of pid %d %.2f s, %llu bytes %shashed and sealed "
	    "%.2f s", ck->id, ck->job->gid, ck->cts->criu_predump ? "pre-dump and dump" : "dump",
	    (int)root, (t1 - t0) / 1000.0, (unsigned long long)r.size,
	    ck->cts->compress_level != 0 ? "compressed, " : "", (time_mono_ms() - t1) / 1000.0);
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
		/* compress: packed (and encrypted with a key) by the dump's child already */
		ck->compressed = ck->cts->compress_level != 0;
		ck->encrypted = ck->compressed && ck->cts->image_key_id[0] != '\0';
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
 * that image is gone, or images are encrypted or compressed (the restore would get a plain copy of
 * one link only).
 * With criu_predump it is the pre-dump that is incremental on that parent.
 */
static void
criu_choose_parent(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	char dir[PATH_MAX];
	struct stat st;

	ck->parent[0] = '\0';
	if (ck->cts->criu_incremental == 0 || j->uid != 0 || j->incr_last[0] == '\0' ||
	    j->incr_n >= ck->cts->criu_incremental || ck->cts->image_key_id[0] != '\0' ||
	    ck->cts->compress_level != 0)
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
	.user_job = criu_user_job,
};
