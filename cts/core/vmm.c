/*
 * The vmm core service (paper section 4): the job runs inside a QEMU virtual machine and a
 * checkpoint freezes the whole VM, its operating system included. The bound process is QEMU
 * itself (vmm-ready-job-executor starts it as its child and binds it); the CTS finds its QMP
 * socket on QEMU's command line and drives it from the event loop (qmp.c), never blocking:
 *
 *   query-version, qom-get /machine type, query-memory-size-summary, qom-list of
 *   /machine/peripheral-anon and /machine/peripheral (the devices), query-status,
 *   migrate-set-parameters max-bandwidth (the 128 MiB/s default throttles even a stopped VM),
 *   stop, getfd (the image file, opened here, passed with SCM_RIGHTS: no shell, and QEMU never
 *   opens a path in the store), migrate fd:, query-migrate until completed, cont.
 *
 * The image folder holds vm.state (the migration stream) and vm.conf, what a restore must match
 * and repeat: QEMU's version, the machine type, the memory size, the devices (as QEMU names them)
 * and QEMU's whole command line, its machine alias ("pc") replaced by the type it stood for
 * ("pc-i440fx-7.2"), so that a newer QEMU restores the same machine. Both are sealed with the
 * manifest like any image; the facts also go on the record (gcaProperty vmm.*) so a broker can
 * find a resource that can take the image: the CTS entry names every machine type its QEMU offers
 * (vmm.machine=...) and the guest the operator offers (vmm.guest.*, cts.conf vmm_kernel...).
 *
 * Restores run in vmm-ready-job-resumer as the job's user, from the verified copy restore_prepare
 * makes (user_restore).
 *
 * Trust: the QMP socket's path comes from a user's process; it is used only if it is a socket
 * owned by the job's user and, once connected, the socket's server is the bound QEMU itself
 * (SO_PEERCRED, qmp_open): the path is resolved twice, and the user may swap it in between, so
 * the CTS never talks QMP to anybody else's socket.
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cts/core/qmp.h"
#include "cts/cts.h"

#define VMM_POLL_MS	5		/* between query-migrate: the VM stays stopped until one says completed */
#define VMM_CALL_MS	15000		/* an answer to one command; the migration has vmm_timeout */
#define VMM_MAX_BANDWIDTH "1099511627776"	/* bytes/s: no throttle */

#define VMM_MACHINES_MAX	128	/* machine types published; QEMU 7.2 has about 60 */
#define VMM_DISKS_MAX		8	/* -drive ...,id=gca-diskN the wrappers made */
#define VMM_LAYERS_MAX		16	/* frozen layers one image may take (failed checkpoints') */
#define VMM_DISK_PREFIX		"gca-disk"
#define QCOW2_MAGIC		"QFI\xfb"

static char vmm_version[64];
static bool vmm_kvm;
static char *vmm_machines[VMM_MACHINES_MAX];	/* what QEMU's -machine help lists, aliases not */
static size_t vmm_nmachines;

enum vmm_step {
	VMM_CAPS, VMM_VERSION, VMM_MACHINE, VMM_MEMORY, VMM_DEVICES, VMM_DEVICES_ID, VMM_STATUS,
	VMM_BLOCK, VMM_BANDWIDTH, VMM_STOP, VMM_GETFD, VMM_MIGRATE, VMM_POLL, VMM_CANCEL,
	VMM_SNAPSHOT, VMM_CONT, VMM_CONT_AFTER_ERROR,
};

static const char *vmm_step_names[] = {
	"qmp_capabilities", "query-version", "qom-get /machine type", "query-memory-size-summary",
	"qom-list /machine/peripheral-anon", "qom-list /machine/peripheral", "query-status",
	"query-block", "migrate-set-parameters", "stop", "getfd", "migrate", "query-migrate",
	"migrate_cancel", "transaction blockdev-snapshot-sync", "cont", "cont",
};

/*
 * A writable disk of the VM: a qcow2 chain base <- layer <- ... <- active. The active layer is
 * named by the wrapper that made it: gca-diskN.qcow2 (the executor's, on the base) or
 * gca-diskN.after-ID.qcow2 (on checkpoint ID's layer: made by the checkpoint itself or by the
 * resumer of ID). At a checkpoint, with the VM stopped, blockdev-snapshot-sync freezes the active
 * layer and puts gca-diskN.after-CKPT.qcow2 on it; the frozen layers not yet in the store are
 * copied into the image (their backing names made relative: parent/gca-diskN.qcow2).
 */
struct vmm_disk {
	char	 id[32];			/* gca-diskN: QEMU's device id */
	char	 file[PATH_MAX];		/* its active layer when the VM stopped */
	char	 layers[VMM_LAYERS_MAX][PATH_MAX];	/* frozen, newest first */
	int	 nlayers;
	char	 base[PATH_MAX];		/* what the oldest layer stands on, if no parent */
};

struct vmm_op {
	struct cts_ckpt	*ck;
	struct qmp	*q;
	enum vmm_step	 step;
	int		 fd;		/* vm.state, until QEMU has written it */
	bool		 was_running, stopped;
	char		 version[32], machine[96], devices[1024];
	uint64_t	 memory, t0, t_stop, t_done;
	char		*cmdline;	/* QEMU's argv, NUL-separated */
	size_t		 cmdlen;
	struct vmm_disk	 disks[VMM_DISKS_MAX];
	int		 ndisks;
	bool		 cont_again;	/* the timer sends cont again instead of query-migrate */
	int		 cont_tries;
	struct event	*timer;
	char		 error[700];
};

static void vmm_on_answer(struct qmp *q, const char *error, const char *reply, void *arg);

/*
 * QEMU run with one argument (--version, -machine help), its output (stdout and stderr) in out;
 * its exit status, or -1 if it could not be run. Exec'd directly: the path comes from cts.conf and
 * goes through no shell.
 */
static int
vmm_qemu_says(const char *qemu, const char *arg1, const char *arg2, char *out, size_t len)
{
	const char *args[] = { qemu, arg1, arg2, NULL };
	char **argv;
	posix_spawn_file_actions_t fa;
	extern char **environ;
	size_t n = 0;
	ssize_t r;
	pid_t pid;
	int p[2], status, rc;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	argv = xstrvdup(args);	/* posix_spawnp's argv is not const */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	rc = posix_spawnp(&pid, qemu, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	xstrv_free(argv);
	close(p[1]);
	if (rc != 0) {
		snprintf(out, len, "%s", strerror(rc));
		close(p[0]);
		return -1;
	}
	/* all of it is read (QEMU must not block on a full pipe), what fits is kept */
	for (;;) {
		char rest[512];
		bool room = n + 1 < len;
		if ((r = read(p[0], room ? out + n : rest, room ? len - n - 1 : sizeof rest)) < 0 &&
		    errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (room)
			n += (size_t)r;
	}
	out[n] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The machine types of -machine help; the guest's machine, an alias, resolved ("pc" stands for
 * "pc-i440fx-7.2"). -1 with why if the guest's machine is not among them. */
static int
vmm_probe_machines(struct cts *c, char *why, size_t len)
{
	char *out = xmalloc(65536), *save = NULL, name[96], *alias;
	bool found = false;

	if (vmm_qemu_says(c->vmm_qemu, "-machine", "help", out, 65536) != 0) {
		snprintf(why, len, "%s -machine help failed: %.200s", c->vmm_qemu, out);
		free(out);
		return -1;
	}
	for (char *l = strtok_r(out, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		if (sscanf(l, "%95s", name) != 1 || strcmp(name, "Supported") == 0)
			continue;
		if ((alias = strstr(l, "(alias of ")) != NULL) {
			if (strcmp(name, c->vmm_machine) == 0) {
				char target[96];
				if (sscanf(alias, "(alias of %95[^)])", target) == 1) {
					free(c->vmm_machine);
					c->vmm_machine = xstrdup(target);
				}
			}
			continue;
		}
		if (vmm_nmachines < VMM_MACHINES_MAX)
			vmm_machines[vmm_nmachines++] = xstrdup(name);
	}
	free(out);
	for (size_t i = 0; i < vmm_nmachines; i++)
		found = found || strcmp(vmm_machines[i], c->vmm_machine) == 0;
	if (!found) {
		snprintf(why, len, "cts.conf's vmm_machine %s is not a machine type of %s (see %s "
		    "-machine help)", c->vmm_machine, c->vmm_qemu, c->vmm_qemu);
		return -1;
	}
	return 0;
}

/* cts.conf's vmm_disk: an absolute path to a readable qcow2 image (the executor puts each job's
 * overlay on it; the CTS never opens it for writing). */
static int
vmm_base_check(const char *path, char *why, size_t len)
{
	char magic[4];
	int fd;

	if (path[0] != '/' || strpbrk(path, ",\"\\") != NULL) {
		snprintf(why, len, "cts.conf's vmm_disk %.300s must be an absolute path without commas, "
		    "quotes or backslashes", path);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, len, "cts.conf's vmm_disk %.300s cannot be read: %s", path,
		    strerror(errno));
		return -1;
	}
	if (read(fd, magic, sizeof magic) != (ssize_t)sizeof magic ||
	    memcmp(magic, QCOW2_MAGIC, 4) != 0) {
		snprintf(why, len, "cts.conf's vmm_disk %.300s is not a qcow2 image", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
vmm_probe(struct cts *c, char *why, size_t len)
{
	char line[256];
	int fd;

	if (vmm_qemu_says(c->vmm_qemu, "--version", NULL, line, sizeof line) != 0 ||
	    sscanf(line, "QEMU emulator version %63[0-9.]", vmm_version) != 1) {
		vmm_version[0] = '\0';
		snprintf(why, len, "QEMU is not installed here (%s --version: %s); set vmm_qemu in "
		    "cts.conf or install qemu-system-x86", c->vmm_qemu,
		    line[0] ? strtok(line, "\n") : "not found");
		return -1;
	}
	if ((fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) >= 0) {
		vmm_kvm = true;
		close(fd);
	}
	if (vmm_probe_machines(c, why, len) != 0)
		return -1;
	/* the guest is the users' to run: the CTS (maybe root) only says it is there */
	const char *files[][2] = { { "vmm_kernel", c->vmm_kernel }, { "vmm_initrd", c->vmm_initrd } };
	for (size_t i = 0; i < GCA_NITEMS(files); i++) {
		if (files[i][1] != NULL && access(files[i][1], R_OK) != 0) {
			snprintf(why, len, "cts.conf's %s %s cannot be read: %s", files[i][0],
			    files[i][1], strerror(errno));
			return -1;
		}
	}
	if (c->vmm_disk != NULL && vmm_base_check(c->vmm_disk, why, len) != 0)
		return -1;
	if ((c->vmm_kernel == NULL) != (c->vmm_initrd == NULL)) {
		snprintf(why, len, "cts.conf names a guest %s but no %s: give both", c->vmm_kernel ?
		    "kernel" : "initramfs", c->vmm_kernel ? "vmm_initrd" : "vmm_kernel");
		return -1;
	}
	return 0;
}

static void
vmm_properties(struct cts *c, struct proto_strlist *out)
{
	char p[PATH_MAX + 32];

	if (vmm_version[0] != '\0') {
		snprintf(p, sizeof p, "qemu=%s", vmm_version);
		proto_strlist_add(out, p);
	}
	proto_strlist_add(out, vmm_kvm ? "kvm=yes" : "kvm=no");
	/*
	 * What this resource offers goes on the CTS entry only (descriptor_load asks for
	 * c->reg.properties), not on every record, whose vmm.* say what its image needs: a broker
	 * matches the record's vmm.machine=T to an entry with the same value.
	 */
	if (out != &c->reg.properties)
		return;
	for (size_t i = 0; i < vmm_nmachines; i++) {
		snprintf(p, sizeof p, "vmm.machine=%s", vmm_machines[i]);
		proto_strlist_add(out, p);
	}
	if (c->vmm_kernel != NULL) {
		snprintf(p, sizeof p, "vmm.guest.kernel=%s", c->vmm_kernel);
		proto_strlist_add(out, p);
		snprintf(p, sizeof p, "vmm.guest.initrd=%s", c->vmm_initrd);
		proto_strlist_add(out, p);
	}
	if (c->vmm_disk != NULL) {
		snprintf(p, sizeof p, "vmm.guest.disk=%s", c->vmm_disk);
		proto_strlist_add(out, p);
	}
	if (c->vmm_pool > 0) {	/* the executor asks for a pooled VM only here (core/pool.c) */
		snprintf(p, sizeof p, "vmm.pool=%u", c->vmm_pool);
		proto_strlist_add(out, p);
	}
	snprintf(p, sizeof p, "vmm.guest.memory=%u", c->vmm_memory_mib);
	proto_strlist_add(out, p);
	snprintf(p, sizeof p, "vmm.guest.machine=%s", c->vmm_machine);
	proto_strlist_add(out, p);
}

/* The value after "-flag" in QEMU's argv, or NULL. */
static const char *
vmm_arg(const char *cmdline, size_t len, const char *flag)
{
	for (const char *a = cmdline; a < cmdline + len; a += strlen(a) + 1) {
		const char *next = a + strlen(a) + 1;
		if (strcmp(a, flag) == 0 && next < cmdline + len)
			return next;
	}
	return NULL;
}

/* QEMU's command line and its QMP socket, checked to belong to the job's user. */
static int
vmm_find_qmp(struct vmm_op *op, char *path, size_t plen)
{
	struct cts_job *j = op->ck->job;
	char proc[64];
	const char *v;
	struct stat st;

	snprintf(proc, sizeof proc, "/proc/%d/cmdline", (int)j->pid);
	if (file_read_all(proc, &op->cmdline, &op->cmdlen, 1024 * 1024) != 0) {
		snprintf(op->error, sizeof op->error, "cannot read %s", proc);
		return -1;
	}
	if ((v = vmm_arg(op->cmdline, op->cmdlen, "-qmp")) == NULL || strncmp(v, "unix:", 5) != 0) {
		snprintf(op->error, sizeof op->error, "process %d has no -qmp unix:PATH on its command "
		    "line: is it a QEMU started by vmm-ready-job-executor?", (int)j->pid);
		return -1;
	}
	snprintf(path, plen, "%.*s", (int)strcspn(v + 5, ","), v + 5);
	if (lstat(path, &st) != 0) {
		snprintf(op->error, sizeof op->error, "QMP socket %.400s of process %d: %s (is QEMU "
		    "still starting?)", path, (int)j->pid, strerror(errno));
		return -1;
	}
	/* a pooled VM's QEMU runs as the pool's user (core/pool.c), any other as the job's */
	if (!S_ISSOCK(st.st_mode) || st.st_uid != pool_qemu_uid(j->pid, j->start, j->uid)) {
		snprintf(op->error, sizeof op->error, "QMP socket %.400s of process %d is not a socket "
		    "owned by the job's QEMU's user (uid %u)", path, (int)j->pid,
		    (unsigned)pool_qemu_uid(j->pid, j->start, j->uid));
		return -1;
	}
	return 0;
}

/* The disks the wrappers made: -drive ...,id=gca-diskN (other drives are the user's own affair
 * and are not snapshotted; docs/VMM.md). */
static int
vmm_find_disks(struct vmm_op *op)
{
	const char *prev = "";

	for (const char *a = op->cmdline; a < op->cmdline + op->cmdlen; a += strlen(a) + 1) {
		const char *id = strstr(a, "id=" VMM_DISK_PREFIX);
		if (strcmp(prev, "-drive") == 0 && id != NULL && (id == a || id[-1] == ',')) {
			struct vmm_disk *d;
			if (op->ndisks == VMM_DISKS_MAX) {
				snprintf(op->error, sizeof op->error, "the VM has more than %d disks",
				    VMM_DISKS_MAX);
				return -1;
			}
			size_t n = strcspn(id + 3, ","), k = strlen(VMM_DISK_PREFIX);

			/* the id comes from the job's command line and goes into QMP, vm.conf and
			 * file names: gca-disk<digits> only */
			if (n <= k || n > 16 || strspn(id + 3 + k, "0123456789") != n - k) {
				snprintf(op->error, sizeof op->error, "the VM's drive id %.*s is not "
				    VMM_DISK_PREFIX "<number>", (int)(n > 64 ? 64 : n), id + 3);
				return -1;
			}
			d = &op->disks[op->ndisks++];
			snprintf(d->id, sizeof d->id, "%.*s", (int)n, id + 3);
		}
		prev = a;
	}
	return 0;
}

static uint64_t
vmm_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * The backing file name a qcow2 layer's header holds ("" if none), where it is (off) and the
 * cluster size: QEMU writes the name into the first cluster, after the header's extensions, so a
 * name may be rewritten in place up to that cluster's end (as qemu-img rebase -u does).
 */
static int
vmm_qcow2_backing(int fd, char *name, size_t len, uint64_t *off, uint64_t *cluster)
{
	unsigned char h[104];
	uint64_t size, version, bits;

	if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, QCOW2_MAGIC, 4) != 0)
		return -1;
	version = vmm_be(h + 4, 4);
	bits = vmm_be(h + 20, 4);
	*off = vmm_be(h + 8, 8);
	size = vmm_be(h + 16, 4);
	if ((version != 2 && version != 3) || bits < 9 || bits > 21)
		return -1;
	*cluster = 1ULL << bits;
	if (*off == 0) {
		name[0] = '\0';
		return 0;
	}
	if (size >= len || *off < 72 || *off + size > *cluster ||
	    pread(fd, name, size, (off_t)*off) != (ssize_t)size)
		return -1;
	name[size] = '\0';
	return memchr(name, '\0', size) == NULL ? 0 : -1;
}

/* The layer's backing name replaced by name (in the same place, the rest of it zeroed). */
static int
vmm_qcow2_rebase(int fd, const char *name)
{
	char old[PATH_MAX];
	unsigned char be[4];
	uint64_t off, cluster;
	size_t n = strlen(name), oldn;
	char zero[PATH_MAX] = { 0 };

	if (vmm_qcow2_backing(fd, old, sizeof old, &off, &cluster) != 0 || off == 0 ||
	    off + n > cluster)
		return -1;
	oldn = strlen(old);
	be[0] = (unsigned char)(n >> 24), be[1] = (unsigned char)(n >> 16);
	be[2] = (unsigned char)(n >> 8), be[3] = (unsigned char)n;
	if (pwrite(fd, name, n, (off_t)off) != (ssize_t)n ||
	    (oldn > n && pwrite(fd, zero, oldn - n, (off_t)(off + n)) != (ssize_t)(oldn - n)) ||
	    pwrite(fd, be, 4, 16) != 4)
		return -1;
	return 0;
}

/* A layer of the job's user, opened read-only without following a link at its end. */
static int
vmm_layer_open(const struct vmm_op *op, const char *path, char *why, size_t len)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: a FIFO the job's user put there must not stop the loop (fstat refuses it) */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		snprintf(why, len, "disk layer %.400s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != op->ck->job->uid) {
		snprintf(why, len, "disk layer %.400s is not a file of the job's user (uid %u)", path,
		    (unsigned)op->ck->job->uid);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * What a layer's file name says it stands on: 0 the base (gca-diskN.qcow2), 1 checkpoint id
 * (gca-diskN.after-ID.qcow2), -1 a name no wrapper gives.
 */
static int
vmm_layer_parent(const char *path, const char *disk, char *id, size_t len)
{
	const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(disk), blen = strlen(b);

	if (strncmp(b, disk, n) != 0)
		return -1;
	if (strcmp(b + n, ".qcow2") == 0)
		return 0;
	if (strncmp(b + n, ".after-", 7) != 0 || blen < n + 7 + 6 ||
	    strcmp(b + blen - 6, ".qcow2") != 0)
		return -1;
	snprintf(id, len, "%.*s", (int)(blen - n - 7 - 6), b + n + 7);
	return id_valid(id) ? 1 : -1;
}

/*
 * The layers of one disk this checkpoint must store: the active one (frozen at the checkpoint)
 * and, behind it, any frozen by a checkpoint that failed after its snapshot, down to the layer of
 * a checkpoint in the store (the image's parent) or to the base. parent gets that checkpoint.
 */
static int
vmm_disk_chain(struct vmm_op *op, struct vmm_disk *d, char *parent, size_t plen)
{
	char cur[PATH_MAX], id[ID_LEN + 8], dir[PATH_MAX], back[PATH_MAX], joined[2 * PATH_MAX + 2];
	uint64_t off, cluster;
	struct stat st;
	int kind, fd;

	snprintf(cur, sizeof cur, "%s", d->file);
	parent[0] = '\0';
	for (d->nlayers = 0; d->nlayers < VMM_LAYERS_MAX; ) {
		if ((kind = vmm_layer_parent(cur, d->id, id, sizeof id)) < 0) {
			snprintf(op->error, sizeof op->error, "disk %s: layer %.400s was not made by "
			    "gca's wrappers (gca-diskN.qcow2 or gca-diskN.after-ID.qcow2)", d->id, cur);
			return -1;
		}
		snprintf(d->layers[d->nlayers++], sizeof d->layers[0], "%s", cur);
		if (kind == 1 && cts_image_dir(op->ck->cts, op->ck->job->gid, id, dir,
		    sizeof dir) == 0 && stat(dir, &st) == 0) {
			snprintf(parent, plen, "%.*s", ID_LEN, id);
			return 0;
		}
		/* the base, or a layer a failed checkpoint froze: its backing name says which */
		if ((fd = vmm_layer_open(op, cur, op->error, sizeof op->error)) < 0)
			return -1;
		kind = kind == 0 ? 0 : 1;
		if (vmm_qcow2_backing(fd, back, sizeof back, &off, &cluster) != 0 || back[0] == '\0') {
			snprintf(op->error, sizeof op->error, "disk %s: layer %.400s is not a qcow2 "
			    "overlay", d->id, cur);
			close(fd);
			return -1;
		}
		close(fd);
		if (kind == 0) {
			snprintf(d->base, sizeof d->base, "%s", back);
			return 0;
		}
		if (back[0] != '/') {	/* relative to the layer's folder */
			char *slash = strrchr(cur, '/');
			snprintf(joined, sizeof joined, "%.*s/%s", slash ? (int)(slash - cur) : 1,
			    slash ? cur : ".", back);
			if (strlen(joined) >= sizeof back) {
				snprintf(op->error, sizeof op->error, "disk %s: a layer's path is too "
				    "long", d->id);
				return -1;
			}
			memcpy(back, joined, strlen(joined) + 1);
		}
		snprintf(cur, sizeof cur, "%s", back);
	}
	snprintf(op->error, sizeof op->error, "disk %s: more than %d layers since the last checkpoint "
	    "in the store", d->id, VMM_LAYERS_MAX);
	return -1;
}

/* query-block's answer: each disk's active layer, and the checkpoint its chain stands on. */
static int
vmm_disks_found(struct vmm_op *op, const char *reply)
{
	char pat[64], parent[ID_LEN + 1];
	const char *p;

	for (int i = 0; i < op->ndisks; i++) {
		struct vmm_disk *d = &op->disks[i];
		snprintf(pat, sizeof pat, "\"device\": \"%s\"", d->id);
		if ((p = strstr(reply, pat)) == NULL || json_str(p, "file", d->file,
		    sizeof d->file) != 0 || d->file[0] != '/') {
			snprintf(op->error, sizeof op->error, "QMP query-block: no file for disk %s",
			    d->id);
			return -1;
		}
		/* the path goes back into a JSON command (blockdev-snapshot-sync) */
		if (strpbrk(d->file, "\"\\") != NULL || strlen(d->file) > PATH_MAX - 64) {
			snprintf(op->error, sizeof op->error, "disk %s: its path %.300s cannot be "
			    "snapshotted (quotes, backslashes, length)", d->id, d->file);
			return -1;
		}
		if (vmm_disk_chain(op, d, parent, sizeof parent) != 0)
			return -1;
		if (i > 0 && strcmp(parent, op->ck->parent) != 0) {
			snprintf(op->error, sizeof op->error, "disks %s and %s stand on different "
			    "checkpoints (%s, %s)", op->disks[0].id, d->id, op->ck->parent[0] ?
			    op->ck->parent : "none", parent[0] ? parent : "none");
			return -1;
		}
		snprintf(op->ck->parent, sizeof op->ck->parent, "%s", parent);
	}
	return 0;
}

/* One transaction: every disk's active layer frozen at once, gca-diskN.after-CKPT on each. */
static char *
vmm_snapshot_json(const struct vmm_op *op)
{
	size_t cap = 256 + (size_t)op->ndisks * (PATH_MAX + 256), used;
	char *j = xmalloc(cap);

	used = (size_t)snprintf(j, cap, "{\"execute\": \"transaction\", \"arguments\": "
	    "{\"actions\": [");
	for (int i = 0; i < op->ndisks; i++) {
		const struct vmm_disk *d = &op->disks[i];
		const char *slash = strrchr(d->file, '/');
		used += (size_t)snprintf(j + used, cap - used, "%s{\"type\": "
		    "\"blockdev-snapshot-sync\", \"data\": {\"device\": \"%s\", \"snapshot-file\": "
		    "\"%.*s/%s.after-%s.qcow2\", \"format\": \"qcow2\"}}", i ? ", " : "", d->id,
		    (int)(slash - d->file), d->file, d->id, op->ck->id);
	}
	snprintf(j + used, cap - used, "]}}");
	return j;
}

/*
 * All of buf to fd. A disk that fills takes part of a write first and says ENOSPC only on the
 * next one: a short write taken for the error would report whatever errno held before.
 */
static int
vmm_write_all(int fd, const char *buf, size_t len)
{
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, buf, len)) < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* In the child: one frozen layer into the image, its backing name made relative. */
static int
vmm_store_layer(const struct vmm_op *op, const struct vmm_disk *d, int k, char *out, size_t len)
{
	char dst[PATH_MAX + 64], back[PATH_MAX + 64], buf[1 << 16];
	int in, fd;
	ssize_t r;

	if (k == 0)
		snprintf(dst, sizeof dst, "%s/%s.qcow2", op->ck->image_dir, d->id);
	else
		snprintf(dst, sizeof dst, "%s/%s.%d.qcow2", op->ck->image_dir, d->id, k);
	if (k + 1 < d->nlayers)
		snprintf(back, sizeof back, "%s.%d.qcow2", d->id, k + 1);
	else if (op->ck->parent[0] != '\0')
		snprintf(back, sizeof back, "parent/%s.qcow2", d->id);	/* restore_chain_copy */
	else
		back[0] = '\0';	/* the base, by the name the executor gave */
	if ((in = vmm_layer_open(op, d->layers[k], out, len)) < 0)
		return -1;
	if ((fd = open(dst, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		snprintf(out, len, "cannot make %.400s: %s", dst, strerror(errno));
		close(in);
		return -1;
	}
	while ((r = read(in, buf, sizeof buf)) > 0)
		if (vmm_write_all(fd, buf, (size_t)r) != 0) {
			r = -1;
			break;
		}
	close(in);
	if (r < 0) {
		snprintf(out, len, "disk %s: copying layer %.300s into the image: %s", d->id,
		    d->layers[k], strerror(errno));
		close(fd);
		return -1;
	}
	if (back[0] != '\0' && vmm_qcow2_rebase(fd, back) != 0) {
		snprintf(out, len, "disk %s: layer %.300s: cannot name its backing file %s in its "
		    "header", d->id, d->layers[k], back);
		close(fd);
		return -1;
	}
	if (close(fd) != 0) {
		snprintf(out, len, "cannot write %.400s: %s", dst, strerror(errno));
		return -1;
	}
	return 0;
}

/* The base a disk stands on: the parent's vm.conf says it when the chain goes through it. */
static void
vmm_parent_base(const struct vmm_op *op, const struct vmm_disk *d, char *out, size_t len)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], *text = NULL, *save = NULL, pat[64];
	size_t n;

	snprintf(out, len, "%s", d->base);
	if (op->ck->parent[0] == '\0' || cts_image_dir(op->ck->cts, op->ck->job->gid,
	    op->ck->parent, dir, sizeof dir) != 0)
		return;
	snprintf(path, sizeof path, "%s/vm.conf", dir);
	if (file_read_all(path, &text, &n, 1024 * 1024) != 0)
		return;
	snprintf(pat, sizeof pat, "disk %s ", d->id);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, pat, strlen(pat)) == 0)
			snprintf(out, len, "%s", l + strlen(pat));
	free(text);
}

static void
vmm_op_free(struct vmm_op *op)
{
	qmp_close(op->q);
	if (op->fd >= 0)
		close(op->fd);
	if (op->timer != NULL)
		event_free(op->timer);
	free(op->cmdline);
	free(op);
}

static void
vmm_fail(struct vmm_op *op)
{
	struct cts_ckpt *ck = op->ck;
	char why[sizeof op->error];

	snprintf(why, sizeof why, "%s", op->error);
	vmm_op_free(op);
	ckpt_dumped(ck, why);
}

/* In vm.conf: percent-encoded so that an argument is one line. */
static void
vmm_conf_escaped(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '%' || (unsigned char)*s < 32)
			fprintf(f, "%%%02X", (unsigned char)*s);
		else
			fputc(*s, f);
	}
}

/*
 * One argument of QEMU's command line into vm.conf. The value of -machine/-M gets the type QEMU
 * really runs (op->machine): "pc" is an alias that a newer QEMU resolves to its own newer type,
 * whose devices' state differs. True if it named the machine type.
 */
static bool
vmm_conf_arg(FILE *f, const struct vmm_op *op, const char *prev, const char *a)
{
	size_t first = strcspn(a, ",");

	fputs("arg ", f);
	if (op->machine[0] == '\0' || (strcmp(prev, "-machine") != 0 && strcmp(prev, "-M") != 0)) {
		vmm_conf_escaped(f, a);
		fputc('\n', f);
		return false;
	}
	if (strncmp(a, "type=", 5) == 0)
		fprintf(f, "type=%s", op->machine);
	else if (memchr(a, '=', first) == NULL)
		fprintf(f, "%s", op->machine);		/* "pc" or "pc,accel=tcg" */
	else {
		fprintf(f, "%s,", op->machine);		/* only properties: "accel=tcg" */
		first = 0;
	}
	vmm_conf_escaped(f, a + first);
	fputc('\n', f);
	return true;
}

/* In the child: vm.conf, then the seal (hashing vm.state). */
static int
vmm_seal(void *arg, char *out, size_t len)
{
	struct vmm_op *op = arg;
	struct cts_ckpt *ck = op->ck;
	struct image_meta m = { 0 };
	struct image_result r = { 0 };
	char path[PATH_MAX];
	const char *prev = "";
	bool typed = false;
	FILE *f;

	if (snprintf(path, sizeof path, "%s/vm.conf", ck->image_dir) >= (int)sizeof path) {
		snprintf(out, len, "image folder path too long");
		return -1;
	}
	if ((f = fopen(path, "wx")) == NULL) {
		snprintf(out, len, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	/* uid: whose command line this is; a resume by root runs it as that user, never as root */
	fprintf(f, "gca-vm 2\nqemu %s\nmachine %s\nmemory %llu\ndevices %s\nuid %u\n", op->version,
	    op->machine, (unsigned long long)op->memory, op->devices, (unsigned)ck->job->uid);
	for (const char *a = op->cmdline; a < op->cmdline + op->cmdlen; a += strlen(a) + 1) {
		typed = vmm_conf_arg(f, op, prev, a) || typed;
		prev = a;
	}
	if (!typed && op->machine[0] != '\0')
		fprintf(f, "arg -machine\narg %s\n", op->machine);	/* QEMU's default, by name */
	for (int i = 0; i < op->ndisks; i++) {
		char base[PATH_MAX];
		vmm_parent_base(op, &op->disks[i], base, sizeof base);
		fprintf(f, "disk %s %s\n", op->disks[i].id, base);
	}
	if (ck->parent[0] != '\0')
		fprintf(f, "parent %s\n", ck->parent);
	if (fclose(f) != 0) {
		snprintf(out, len, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < op->ndisks; i++)
		for (int k = 0; k < op->disks[i].nlayers; k++)
			if (vmm_store_layer(op, &op->disks[i], k, out, len) != 0)
				return -1;
	snprintf(m.parent, sizeof m.parent, "%s", ck->parent);
	snprintf(m.checkpoint_id, sizeof m.checkpoint_id, "%s", ck->id);
	snprintf(m.gid, sizeof m.gid, "%s", ck->job->gid);
	snprintf(m.core_service, sizeof m.core_service, "vmm");
	m.time_ms = ck->time_ms;
	if (image_store_seal(ck->image_dir, &m, &r, out, len) != 0)
		return -1;
	ckpt_result_line(&r, out, len);
	return 0;
}

static void
vmm_on_sealed(bool ok, const char *out, void *arg)
{
	struct vmm_op *op = arg;
	struct cts_ckpt *ck = op->ck;
	char p[1200];

	if (!ok || ckpt_result_read(ck, out) != 0) {
		snprintf(op->error, sizeof op->error, "%s", ok ? "the seal gave no result" : out);
		vmm_fail(op);
		return;
	}
	/* what a resource must match to take this image, on the record */
	snprintf(p, sizeof p, "vmm.qemu=%s", op->version);
	proto_strlist_add(&ck->properties, p);
	snprintf(p, sizeof p, "vmm.machine=%s", op->machine);
	proto_strlist_add(&ck->properties, p);
	snprintf(p, sizeof p, "vmm.memory=%llu", (unsigned long long)op->memory);
	proto_strlist_add(&ck->properties, p);
	snprintf(p, sizeof p, "vmm.devices=%s", op->devices);
	proto_strlist_add(&ck->properties, p);
	log_info("checkpoint %s of %s: VM stopped %llu ms, %llu bytes, sealed after %llu ms",
	    ck->id, ck->job->gid, (unsigned long long)(op->t_done - op->t_stop), (unsigned long long)ck->result.size,
	    (unsigned long long)(time_now_ms() - op->t0));
	vmm_op_free(op);
	ckpt_dumped(ck, NULL);
}

/* QEMU has written the image and the VM runs again (or never ran). */
static void
vmm_written(struct vmm_op *op)
{
	op->t_done = time_now_ms();
	qmp_close(op->q);		/* the next checkpoint, or the job's wrapper, may connect */
	op->q = NULL;
	close(op->fd);			/* QEMU closed its own copy when the migration ended */
	op->fd = -1;
	if (child_run(op->ck->cts, vmm_seal, op, vmm_on_sealed, op) != 0) {
		snprintf(op->error, sizeof op->error, "cannot start the image seal");
		vmm_fail(op);
	}
}

static void
vmm_send(struct vmm_op *op, enum vmm_step step, const char *json, int fd)
{
	op->step = step;
	qmp_call(op->q, json, fd, vmm_on_answer, op);
}

static void
vmm_on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct vmm_op *op = arg;

	struct stat st;

	(void)fd;
	(void)what;
	if (op->cont_again) {
		op->cont_again = false;
		vmm_send(op, op->step, "{\"execute\": \"cont\"}", -1);
		return;
	}
	/*
	 * A stopped VM's stream holds each page at most once (4 KiB + 8 bytes) plus device state:
	 * more than that is not a QEMU saving this VM, and the store's disk is not for filling.
	 */
	if (fstat(op->fd, &st) == 0 && (uint64_t)st.st_size > op->memory + op->memory / 256 +
	    (64ULL << 20)) {
		snprintf(op->error, sizeof op->error, "the image grew past %llu bytes for a VM of %llu "
		    "bytes of memory; cancelled", (unsigned long long)st.st_size,
		    (unsigned long long)op->memory);
		vmm_send(op, VMM_CANCEL, "{\"execute\": \"migrate_cancel\"}", -1);
		return;
	}
	if (time_now_ms() - op->t_stop > (uint64_t)op->ck->cts->vmm_timeout_ms) {
		snprintf(op->error, sizeof op->error, "the migration did not complete within %d ms "
		    "(vmm_timeout); cancelled", op->ck->cts->vmm_timeout_ms);
		vmm_send(op, VMM_CANCEL, "{\"execute\": \"migrate_cancel\"}", -1);
		return;
	}
	vmm_send(op, VMM_POLL, "{\"execute\": \"query-migrate\"}", -1);
}

static void
vmm_poll_later(struct vmm_op *op)
{
	struct timeval tv = { 0, VMM_POLL_MS * 1000 };

	if (op->timer == NULL)
		op->timer = evtimer_new(op->ck->cts->base, vmm_on_poll, op);
	evtimer_add(op->timer, &tv);
}

/* An error once the VM is stopped: it runs again before the checkpoint fails. */
static void
vmm_error(struct vmm_op *op, const char *what, const char *error)
{
	if (op->error[0] == '\0')
		snprintf(op->error, sizeof op->error, "QMP %s: %s", what, error);
	if (op->stopped && op->was_running && op->q != NULL && op->step != VMM_CONT_AFTER_ERROR) {
		vmm_send(op, VMM_CONT_AFTER_ERROR, "{\"execute\": \"cont\"}", -1);
		return;
	}
	vmm_fail(op);
}

static void
vmm_on_answer(struct qmp *q, const char *error, const char *reply, void *arg)
{
	struct vmm_op *op = arg;
	char buf[200], status[64] = "";
	uint64_t a = 0, b = 0, c = 0;

	(void)q;
	/*
	 * query-migrate says "completed" before the migration thread has finished its cleanup; a
	 * cont in between is refused ("Migration is not finalized yet", seen under load): it is
	 * sent again, every 20 ms for up to 5 s, so the VM is not left stopped.
	 */
	if (error != NULL && (op->step == VMM_CONT || op->step == VMM_CONT_AFTER_ERROR) &&
	    strstr(error, "not finalized") != NULL && op->cont_tries++ < 250) {
		op->cont_again = true;
		vmm_poll_later(op);
		return;
	}
	if (error != NULL && op->step != VMM_CONT_AFTER_ERROR && op->step != VMM_CANCEL) {
		vmm_error(op, vmm_step_names[op->step], error);
		return;
	}
	switch (op->step) {
	case VMM_CAPS:
		vmm_send(op, VMM_VERSION, "{\"execute\": \"query-version\"}", -1);
		break;
	case VMM_VERSION:
		json_u64(reply, "major", &a);
		json_u64(reply, "minor", &b);
		json_u64(reply, "micro", &c);
		snprintf(op->version, sizeof op->version, "%llu.%llu.%llu", (unsigned long long)a,
		    (unsigned long long)b, (unsigned long long)c);
		vmm_send(op, VMM_MACHINE, "{\"execute\": \"qom-get\", \"arguments\": {\"path\": "
		    "\"/machine\", \"property\": \"type\"}}", -1);
		break;
	case VMM_MACHINE:
		if (json_str(reply, "return", op->machine, sizeof op->machine) == 0) {
			size_t n = strlen(op->machine);	/* "pc-i440fx-7.2-machine" */
			if (n > 8 && strcmp(op->machine + n - 8, "-machine") == 0)
				op->machine[n - 8] = '\0';
		}
		vmm_send(op, VMM_MEMORY, "{\"execute\": \"query-memory-size-summary\"}", -1);
		break;
	case VMM_MEMORY:
		/* it bounds the stream (vmm_on_poll): without it every checkpoint would be cut short */
		if (json_u64(reply, "base-memory", &op->memory) != 0 || op->memory == 0) {
			vmm_error(op, "query-memory-size-summary", "QEMU gave no base-memory; "
			    "cannot bound the image, no checkpoint taken");
			return;
		}
		vmm_send(op, VMM_DEVICES, "{\"execute\": \"qom-list\", \"arguments\": {\"path\": "
		    "\"/machine/peripheral-anon\"}}", -1);
		break;
	case VMM_DEVICES:
	case VMM_DEVICES_ID:
		if (json_qom_children(reply, op->devices, sizeof op->devices) != 0) {
			vmm_error(op, vmm_step_names[op->step], "more devices than a record holds");
			return;
		}
		if (op->step == VMM_DEVICES)
			vmm_send(op, VMM_DEVICES_ID, "{\"execute\": \"qom-list\", \"arguments\": "
			    "{\"path\": \"/machine/peripheral\"}}", -1);
		else
			vmm_send(op, VMM_STATUS, "{\"execute\": \"query-status\"}", -1);
		break;
	case VMM_STATUS:
		json_str(reply, "status", status, sizeof status);
		if (strcmp(status, "inmigrate") == 0 || strcmp(status, "finish-migrate") == 0) {
			vmm_error(op, "query-status", "the VM is being migrated or restored");
			return;
		}
		op->was_running = strstr(reply, "\"running\": true") != NULL;
		if (op->ndisks > 0) {
			vmm_send(op, VMM_BLOCK, "{\"execute\": \"query-block\"}", -1);
			break;
		}
		__attribute__((fallthrough));
	case VMM_BLOCK:
		if (op->step == VMM_BLOCK && vmm_disks_found(op, reply) != 0) {
			vmm_fail(op);
			return;
		}
		vmm_send(op, VMM_BANDWIDTH, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		    "{\"max-bandwidth\": " VMM_MAX_BANDWIDTH "}}", -1);
		break;
	case VMM_BANDWIDTH:
		op->t_stop = time_now_ms();
		if (op->was_running) {
			vmm_send(op, VMM_STOP, "{\"execute\": \"stop\"}", -1);
			break;
		}
		/* a paused VM is saved as it is */
		__attribute__((fallthrough));
	case VMM_STOP:
		op->stopped = true;
		if (op->ndisks > 0) {
			/* memory and every disk of the same instant: the VM stays stopped until cont */
			char *json = vmm_snapshot_json(op);
			vmm_send(op, VMM_SNAPSHOT, json, -1);
			free(json);
			break;
		}
		__attribute__((fallthrough));
	case VMM_SNAPSHOT:
		vmm_send(op, VMM_GETFD, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": "
		    "\"gca-image\"}}", op->fd);
		break;
	case VMM_GETFD:
		vmm_send(op, VMM_MIGRATE, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": "
		    "\"fd:gca-image\"}}", -1);
		break;
	case VMM_MIGRATE:
		vmm_poll_later(op);
		break;
	case VMM_POLL:
		json_str(reply, "status", status, sizeof status);
		if (strcmp(status, "completed") == 0) {
			if (op->was_running)
				vmm_send(op, VMM_CONT, "{\"execute\": \"cont\"}", -1);
			else
				vmm_written(op);
		} else if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
			if (json_str(reply, "error-desc", buf, sizeof buf) != 0)
				snprintf(buf, sizeof buf, "no reason given");
			snprintf(op->error, sizeof op->error, "the migration to the image %s: %s",
			    status, buf);
			vmm_error(op, "query-migrate", buf);
		} else
			vmm_poll_later(op);
		break;
	case VMM_CANCEL:
		vmm_error(op, "migrate", "cancelled");
		break;
	case VMM_CONT:
		vmm_written(op);
		break;
	case VMM_CONT_AFTER_ERROR:
		if (error != NULL)
			log_warn("checkpoint %s: the VM of %s may stay stopped: cont: %s", op->ck->id,
			    op->ck->job->gid, error);
		vmm_fail(op);
		break;
	}
}

static void
vmm_dump(struct cts_ckpt *ck)
{
	struct vmm_op *op;
	char path[PATH_MAX], img[PATH_MAX + 16];

	op = xcalloc(1, sizeof *op);
	op->ck = ck;
	op->fd = -1;
	op->t0 = time_now_ms();
	if (vmm_find_qmp(op, path, sizeof path) != 0 || vmm_find_disks(op) != 0) {
		vmm_fail(op);
		return;
	}
	if (op->ndisks > 0 && ck->cts->image_key_id[0] != '\0') {
		/* its layers chain as incremental images, which an encrypted store cannot restore */
		snprintf(op->error, sizeof op->error, "this CTS encrypts its images (cts.conf image_key) "
		    "and a VM's disk layers are incremental images, which an encrypted store does not "
		    "restore: a VM with disks (%s) is not checkpointed here", op->disks[0].id);
		vmm_fail(op);
		return;
	}
	snprintf(img, sizeof img, "%s/vm.state", ck->image_dir);
	if (mkdir(ck->image_dir, 0700) != 0 ||
	    (op->fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		snprintf(op->error, sizeof op->error, "cannot make %.400s: %s", img, strerror(errno));
		vmm_fail(op);
		return;
	}
	op->step = VMM_CAPS;
	op->q = qmp_open(ck->cts->base, path, ck->job->pid,
	    pool_qemu_uid(ck->job->pid, ck->job->start, ck->job->uid), VMM_CALL_MS,
	    vmm_on_answer, op, op->error, sizeof op->error);
	if (op->q == NULL)
		vmm_fail(op);
}

/*
 * An image moved to this resource (restore_prepare, before the fetch): its record's vmm.machine
 * must be a machine type this QEMU offers, and this QEMU no older than vmm.qemu (an older one
 * cannot read a newer stream). Memory and devices are the resumer's to compare, on the VM it
 * starts (docs/VMM.md, "A resume").
 */
static int
vmm_restore_check(struct cts *c, const struct proto_strlist *props, char *why, size_t len)
{
	const char *machine = NULL, *qemu = NULL;
	bool offered = false;

	for (size_t i = 0; i < props->n; i++) {
		if (strncmp(props->v[i], "vmm.machine=", 12) == 0)
			machine = props->v[i] + 12;
		else if (strncmp(props->v[i], "vmm.qemu=", 9) == 0)
			qemu = props->v[i] + 9;
	}
	if (machine == NULL)
		return 0;	/* not a VM's image: the wrapper says so, with what made it */
	for (size_t i = 0; i < vmm_nmachines; i++)
		offered = offered || strcmp(vmm_machines[i], machine) == 0;
	if (!offered) {
		snprintf(why, len, "it needs machine type %.96s (vmm.machine), which %.200s here does "
		    "not offer (QEMU %s)", machine, c->vmm_qemu, vmm_version);
		return -1;
	}
	if (qemu != NULL && version_cmp(vmm_version, qemu) < 0) {
		snprintf(why, len, "it was taken by QEMU %.32s and QEMU %s here is older (vmm.qemu)",
		    qemu, vmm_version);
		return -1;
	}
	return 0;
}

static void
vmm_saved(struct cts_ckpt *ck, bool ok, const char *error)
{
	(void)ok;
	(void)error;
	ckpt_dumped(ck, "vmm jobs do not answer app_save");
}

const struct core_service core_vmm = {
	.name = "vmm",
	.external = true,
	.self_checkpoint = true,	/* the job may ask; the VM is saved from outside */
	.probe = vmm_probe,
	.properties = vmm_properties,
	.dump = vmm_dump,
	.saved = vmm_saved,
	.keeps_channel = false,
	.user_restore = true,
	.restore_check = vmm_restore_check,
};
