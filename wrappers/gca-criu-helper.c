/*
 * gca-criu-helper: criu for an ordinary user's job, run as that user with the two capabilities
 * criu's --unprivileged mode needs and nothing else (docs/ARCHITECTURE.md, "The privilege line").
 *
 *   gca-criu-helper dump PID [--shell-job] [--tcp-established]
 *	Run by the CTS (root) with fd 3 open on the image folder it made for the job (mode 0700,
 *	owned by the job's user). Reads the job's uids, gids and groups from /proc/PID/status
 *	(never from its caller), drops the bounding set to CAP_CHECKPOINT_RESTORE, becomes that
 *	user with only CAP_CHECKPOINT_RESTORE (ambient) and no_new_privs, and execs
 *	`criu dump --unprivileged --leave-running` into fd 3 with the CTS's usual options.
 *
 *   gca-criu-helper restore DIR WORKDIR [--shell-job] [--inherit-fd fd[N]:pipe:[INODE]]...
 *	Run by gca-recover as the job's user; the binary holds CAP_CHECKPOINT_RESTORE and
 *	CAP_SETPCAP as permitted file capabilities (setcap cap_checkpoint_restore,cap_setpcap=p),
 *	and is executable by one group. DIR must be a copy the CTS verified for this uid: a folder
 *	owned by root that nobody else may write, holding the root-owned marker gca-restore-for
 *	("uid N") that the CTS writes after it checked the signature and the hashes. Every pid the
 *	image restores (pstree.img) must be free: a taken one is refused, naming its holder, before
 *	criu runs. Then the two capabilities become ambient and criu restore --unprivileged -d runs
 *	in our place, so the restored tree is gca-recover's (a subreaper) when criu exits.
 *
 * The options each mode passes to criu are fixed here: a caller chooses none of criu's own (no
 * action scripts, plugins or configuration files: --no-default-config, an empty environment).
 * The request is small and typed so that a privileged process of the CTS can make it later.
 *
 * Exit status: criu's (it replaces us); 1 refused (said why on stderr); 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/common.h"

#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

#define HELPER_DIR_FD	3		/* dump: the image folder, opened by the CTS */
#define HELPER_MAX_GROUPS 256
#define HELPER_MAX_PIDS	4096		/* pids and threads of a restored tree we check */
#define HELPER_MARKER	"gca-restore-for"
#define HELPER_PATH	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char helper_usage_text[] =
    "usage: gca-criu-helper dump PID [--shell-job] [--tcp-established]   (fd 3: the image folder)\n"
    "       gca-criu-helper restore DIR WORKDIR [--shell-job] [--inherit-fd fd[N]:pipe:[INODE]]...\n";

static int
helper_usage(void)
{
	fputs(helper_usage_text, stderr);
	return 2;
}

static int GCA_PRINTF(1, 2)
helper_refuse(const char *fmt, ...)
{
	va_list ap;

	fputs("gca-criu-helper: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* ---- capabilities (raw syscalls: no libcap) ---- */

static int
helper_capset(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};

	return (int)syscall(SYS_capset, &h, d);
}

static int
helper_capget(uint64_t *eff, uint64_t *prm)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	*eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	*prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	return 0;
}

/* caps (a mask) inheritable and ambient, so that criu, exec'd next, has them and nothing more. */
static int
helper_ambient(uint64_t caps)
{
	uint64_t eff, prm;

	if (helper_capget(&eff, &prm) != 0)
		return helper_refuse("capget: %s", strerror(errno));
	if ((prm & caps) != caps)
		return helper_refuse("this helper lacks the capabilities criu needs (permitted %#llx, "
		    "wanted %#llx): it must carry them as file capabilities (setcap "
		    "cap_checkpoint_restore,cap_setpcap=p gca-criu-helper; docs/ARCHITECTURE.md)",
		    (unsigned long long)prm, (unsigned long long)caps);
	if (helper_capset(0, caps, caps) != 0)
		return helper_refuse("capset: %s", strerror(errno));
	for (int cap = 0; cap < 64; cap++) {
		if ((caps >> cap & 1) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)cap, 0UL, 0UL) != 0)
			return helper_refuse("cannot raise capability %d: %s", cap, strerror(errno));
	}
	return 0;
}

static int
helper_cap_last(void)
{
	char *buf = NULL;
	size_t len;
	int last = 40;

	if (file_read_all("/proc/sys/kernel/cap_last_cap", &buf, &len, 64) == 0)
		last = atoi(buf);
	free(buf);
	return last;
}

/* ---- the job's credentials, from /proc ---- */

struct helper_creds {
	uid_t	uid[4];
	gid_t	gid[4];
	gid_t	groups[HELPER_MAX_GROUPS];
	int	ngroups;
};

static int
helper_read_creds(pid_t pid, struct helper_creds *cr)
{
	char path[64], *buf = NULL, *p, *end;
	unsigned long v[4];
	size_t len;
	int rc = -1;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (file_read_all(path, &buf, &len, 65536) != 0)
		return helper_refuse("no process %d", (int)pid);
	if ((p = strstr(buf, "\nUid:")) == NULL ||
	    sscanf(p + 5, "%lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]) != 4)
		goto out;
	for (int i = 0; i < 4; i++)
		cr->uid[i] = (uid_t)v[i];
	if ((p = strstr(buf, "\nGid:")) == NULL ||
	    sscanf(p + 5, "%lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]) != 4)
		goto out;
	for (int i = 0; i < 4; i++)
		cr->gid[i] = (gid_t)v[i];
	cr->ngroups = 0;
	if ((p = strstr(buf, "\nGroups:")) == NULL)
		goto out;
	for (p += 8; cr->ngroups < HELPER_MAX_GROUPS; p = end) {
		unsigned long g = strtoul(p, &end, 10);
		if (end == p || *p == '\n')
			break;
		cr->groups[cr->ngroups++] = (gid_t)g;
	}
	rc = 0;
out:
	free(buf);
	if (rc != 0)
		return helper_refuse("cannot read the credentials of process %d", (int)pid);
	return 0;
}

/* ---- dump ---- */

static int
helper_dump(int argc, char **argv)
{
	struct helper_creds cr;
	char *args[24];
	struct stat st;
	char *end;
	long pid;
	int n = 0, last;

	if (argc < 1)
		return helper_usage();
	pid = strtol(argv[0], &end, 10);
	if (*end != '\0' || pid <= 1 || pid > INT32_MAX)
		return helper_usage();
	if (getuid() != 0 || geteuid() != 0)
		return helper_refuse("dump: only the CTS (root) dumps jobs");
	if (fstat(HELPER_DIR_FD, &st) != 0 || !S_ISDIR(st.st_mode))
		return helper_refuse("dump: fd %d is not the image folder", HELPER_DIR_FD);
	if (helper_read_creds((pid_t)pid, &cr) != 0)
		return 1;
	for (int i = 0; i < 4; i++) {
		if (cr.uid[i] != cr.uid[0] || cr.gid[i] != cr.gid[0])
			return helper_refuse("process %ld runs with mixed uids or gids (set-id): criu "
			    "cannot dump it as its user", pid);
	}
	if (cr.uid[0] == 0)
		return helper_refuse("process %ld is root's: the CTS dumps it with criu itself", pid);
	if (st.st_uid != cr.uid[0] || (st.st_mode & 0077) != 0)
		return helper_refuse("dump: the image folder must be the job's user's alone (0700)");
	if (fchdir(HELPER_DIR_FD) != 0)
		return helper_refuse("dump: cannot enter the image folder: %s", strerror(errno));
	/* while root: nothing criu runs may ever get a capability back */
	last = helper_cap_last();
	for (int cap = 0; cap <= last; cap++) {
		if (cap != CAP_CHECKPOINT_RESTORE && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
		    errno != EINVAL)
			return helper_refuse("cannot drop capability %d: %s", cap, strerror(errno));
	}
	if (setgroups((size_t)cr.ngroups, cr.groups) != 0 ||
	    setresgid(cr.gid[0], cr.gid[0], cr.gid[0]) != 0 ||
	    prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 ||
	    setresuid(cr.uid[0], cr.uid[0], cr.uid[0]) != 0)
		return helper_refuse("cannot become uid %u: %s", (unsigned)cr.uid[0], strerror(errno));
	if (helper_ambient(1ull << CAP_CHECKPOINT_RESTORE) != 0)
		return 1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return helper_refuse("no_new_privs: %s", strerror(errno));
	close(HELPER_DIR_FD);	/* the working folder is the image folder now */
	args[n++] = "criu";
	args[n++] = "dump";
	args[n++] = "--unprivileged";
	args[n++] = "--no-default-config";
	args[n++] = "--leave-running";
	args[n++] = "-t";
	args[n++] = argv[0];
	args[n++] = "-D";
	args[n++] = ".";
	args[n++] = "-o";
	args[n++] = "dump.log";
	args[n++] = "-v4";
	args[n++] = "--display-stats";
	args[n++] = "--cpu-cap=fpu";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--shell-job") == 0 || strcmp(argv[i], "--tcp-established") == 0)
			args[n++] = argv[i];
		else
			return helper_usage();
		if (n > 20)
			return helper_usage();
	}
	args[n] = NULL;
	char *env[] = { HELPER_PATH, NULL };
	execve("/usr/sbin/criu", args, env);
	execvpe("criu", args, env);
	return helper_refuse("cannot run criu: %s", strerror(errno));
}

/* ---- restore ---- */

/* One protobuf varint; -1 if cut short. */
static int
helper_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
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

static uint32_t
helper_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define HELPER_PSTREE_MAGIC 0x50273030u

/*
 * The pids and thread ids criu will give the restored tree: pstree.img's entries (common magic,
 * pstree magic, then a 32-bit size and a protobuf pstree_entry each: pid 1, threads 5).
 */
static int
helper_pstree(int dirfd, long *pids, int *npids)
{
	unsigned char *buf = NULL;
	const unsigned char *p, *end, *e, *eend;
	uint64_t key, v, n;
	size_t len = 0, cap = 0;
	ssize_t got;
	int fd, rc = -1;

	*npids = 0;
	if ((fd = openat(dirfd, "pstree.img", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return helper_refuse("the image has no pstree.img: %s", strerror(errno));
	for (;;) {
		if (len == cap) {
			if (cap >= 16 * 1024 * 1024)
				break;
			cap = cap ? cap * 2 : 65536;
			buf = xreallocarray(buf, cap, 1);
		}
		if ((got = read(fd, buf + len, cap - len)) <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (len < 8 || helper_le32(buf + 4) != HELPER_PSTREE_MAGIC)
		goto out;
	for (p = buf + 8, end = buf + len; p < end;) {
		if (end - p < 4 || helper_le32(p) > (size_t)(end - p - 4))
			goto out;
		e = p + 4;
		eend = e + helper_le32(p);
		p = eend;
		while (e < eend) {
			if (helper_varint(&e, eend, &key) != 0)
				goto out;
			if ((key & 7) == 0) {
				if (helper_varint(&e, eend, &v) != 0)
					goto out;
				if (((key >> 3) == 1 || (key >> 3) == 5) && *npids < HELPER_MAX_PIDS)
					pids[(*npids)++] = (long)v;
			} else if ((key & 7) == 2) {
				const unsigned char *q;
				if (helper_varint(&e, eend, &n) != 0 || n > (uint64_t)(eend - e))
					goto out;
				for (q = e, e += n; (key >> 3) == 5 && q < e;) {	/* packed */
					if (helper_varint(&q, e, &v) != 0)
						goto out;
					if (*npids < HELPER_MAX_PIDS)
						pids[(*npids)++] = (long)v;
				}
			} else if ((key & 7) == 5 && eend - e >= 4) {
				e += 4;
			} else if ((key & 7) == 1 && eend - e >= 8) {
				e += 8;
			} else {
				goto out;
			}
		}
	}
	rc = *npids > 0 ? 0 : -1;
out:
	free(buf);
	if (rc != 0)
		return helper_refuse("the image's pstree.img cannot be read");
	return 0;
}

/* Who holds pid now: "process 123 (job, uid 61001)". */
static void
helper_holder(long pid, char *out, size_t len)
{
	char path[64], *comm = NULL, *status = NULL, *p;
	size_t n;
	unsigned long uid = 0;

	snprintf(path, sizeof path, "/proc/%ld/comm", pid);
	if (file_read_all(path, &comm, &n, 256) == 0)
		comm[strcspn(comm, "\n")] = '\0';
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if (file_read_all(path, &status, &n, 65536) == 0 && (p = strstr(status, "\nUid:")) != NULL)
		sscanf(p + 5, "%lu", &uid);
	snprintf(out, len, "process %ld (%s, uid %lu)", pid, comm ? comm : "?", uid);
	free(comm);
	free(status);
}

/* Every pid the image restores is free; else says which is taken and by whom. */
static int
helper_pids_free(int dirfd)
{
	static long pids[HELPER_MAX_PIDS];
	char path[64], who[320];
	struct stat st;
	int n;

	if (helper_pstree(dirfd, pids, &n) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "/proc/%ld", pids[i]);
		if (pids[i] <= 0 || lstat(path, &st) != 0)
			continue;
		helper_holder(pids[i], who, sizeof who);
		return helper_refuse("the job's pid %ld is taken by %s: a job without a PID namespace "
		    "comes back with the pids it had, so they must be free (is the old copy still "
		    "running?); nothing was restored", pids[i], who);
	}
	return 0;
}

/* DIR is a copy the CTS verified for us: root's, writable by nobody else, marked for our uid. */
static int
helper_check_copy(const char *dir, int *dirfd)
{
	char *marker = NULL, want[32];
	struct stat st;
	int fd, mfd;

	if (dir[0] != '/')
		return helper_refuse("restore: %s is not an absolute path", dir);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return helper_refuse("restore: cannot open %s: %s", dir, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_uid != 0 || (st.st_mode & 0022) != 0) {
		close(fd);
		return helper_refuse("restore: %s is not a copy the CTS verified (a folder of root's "
		    "that nobody else may write); the CTS makes one for gca-recover", dir);
	}
	if ((mfd = openat(fd, HELPER_MARKER, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(mfd, &st) != 0 || st.st_uid != 0 || (st.st_mode & 0022) != 0 ||
	    !S_ISREG(st.st_mode)) {
		if (mfd >= 0)
			close(mfd);
		close(fd);
		return helper_refuse("restore: %s has no %s of root's: not a copy the CTS verified",
		    dir, HELPER_MARKER);
	}
	{
		char text[64];
		ssize_t got = read(mfd, text, sizeof text - 1);

		close(mfd);
		if (got > 0) {
			text[got] = '\0';
			marker = xstrdup(text);
		}
	}
	snprintf(want, sizeof want, "uid %u\n", (unsigned)getuid());
	if (marker == NULL || strcmp(marker, want) != 0) {
		free(marker);
		close(fd);
		return helper_refuse("restore: %s was verified for another user, not uid %u", dir,
		    (unsigned)getuid());
	}
	free(marker);
	*dirfd = fd;
	return 0;
}

static bool
helper_inherit_ok(const char *spec)
{
	int fd;
	unsigned long long inode;
	char end;

	return sscanf(spec, "fd[%d]:pipe:[%llu%c", &fd, &inode, &end) == 3 && end == ']' &&
	    fd >= 0 && fd <= 2 && strlen(spec) < 48;
}

static int
helper_restore(int argc, char **argv)
{
	char dfd[64], pidfile[PATH_MAX], log[PATH_MAX];
	char *args[32];
	int n = 0, dirfd = -1;

	if (argc < 2 || argv[1][0] != '/')
		return helper_usage();
	if (getuid() == 0)
		return helper_refuse("restore: root restores with criu itself (gca-recover does)");
	if (setresuid(getuid(), getuid(), getuid()) != 0 || setresgid(getgid(), getgid(),
	    getgid()) != 0)
		return helper_refuse("cannot drop a set-id: %s", strerror(errno));
	if (helper_check_copy(argv[0], &dirfd) != 0 || helper_pids_free(dirfd) != 0)
		return 1;
	if (fcntl(dirfd, F_SETFD, 0) != 0)
		return helper_refuse("fcntl: %s", strerror(errno));
	snprintf(dfd, sizeof dfd, "/proc/self/fd/%d", dirfd);
	snprintf(pidfile, sizeof pidfile, "%s/restore.pid", argv[1]);
	snprintf(log, sizeof log, "%s/restore.log", argv[1]);
	args[n++] = "criu";
	args[n++] = "restore";
	args[n++] = "--unprivileged";
	args[n++] = "--no-default-config";
	args[n++] = "-D";
	args[n++] = dfd;		/* the folder we checked, not its name again */
	args[n++] = "-W";
	args[n++] = argv[1];
	args[n++] = "-d";
	args[n++] = "--pidfile";
	args[n++] = pidfile;
	args[n++] = "-o";
	args[n++] = log;
	args[n++] = "-v4";
	args[n++] = "--cpu-cap=fpu";
	for (int i = 2; i < argc; i++) {
		if (n > 26)
			return helper_usage();
		if (strcmp(argv[i], "--shell-job") == 0) {
			args[n++] = argv[i];
		} else if (strcmp(argv[i], "--inherit-fd") == 0 && i + 1 < argc &&
		    helper_inherit_ok(argv[i + 1])) {
			args[n++] = argv[i++];
			args[n++] = argv[i];
		} else {
			return helper_usage();
		}
	}
	args[n] = NULL;
	if (helper_ambient(1ull << CAP_CHECKPOINT_RESTORE | 1ull << CAP_SETPCAP) != 0)
		return 1;
	char *env[] = { HELPER_PATH, NULL };
	execve("/usr/sbin/criu", args, env);
	execvpe("criu", args, env);
	return helper_refuse("cannot run criu: %s", strerror(errno));
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return helper_usage();
	if (strcmp(argv[1], "dump") == 0)
		return helper_dump(argc - 2, argv + 2);
	if (strcmp(argv[1], "restore") == 0)
		return helper_restore(argc - 2, argv + 2);
	return helper_usage();
}
