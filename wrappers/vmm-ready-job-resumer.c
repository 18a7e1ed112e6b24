/*
 * vmm-ready-job-resumer: brings a VM job back from one of its checkpoints (paper section 4, the
 * recovery wrapper for VMs).
 *
 * restore_prepare asks the CTS to find the image and check every file against its manifest
 * (sha256), so QEMU never reads a byte that was not verified; the CTS hands over a verified copy
 * our user owns. vm.conf in it holds QEMU's recorded command line: it is started again the same
 * way, on new sockets in a new run folder, with -S -incoming defer; before the image goes in, the
 * VM that started is asked what it is (QEMU version, machine type, memory, devices) and refused,
 * naming what differs, unless it is the VM the image was taken from; then getfd +
 * migrate-incoming fd:, and cont. The GID is bound to the new QEMU, the gate is
 * re-attached (the job in the guest is found by its id; answers to requests from before the
 * checkpoint are told apart by their ids) and the guest's clock is reset. We stay resident like
 * the executor: output on stdout, signals forwarded, the job's exit status.
 *
 * Exit status: the job's (128+N if signal N killed it); 1 not recovered or the VM ended first;
 * 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/vmm_wrap.h"
#include "wrappers/wrapper.h"

#define VRES_MAX_ARGS	256
#define P		"vmm-ready-job-resumer"

static const char vres_usage_text[] =
    "usage: vmm-ready-job-resumer --gid GID --checkpoint ID|latest [--cts SOCKET]\n"
    "         [--memory MIB] [--qemu PROGRAM] [--gate-timeout SECONDS]\n";

static const char vres_help_text[] =
    "  --gid GID              the job's grid identifier\n"
    "  --checkpoint ID|latest the checkpoint to resume from (latest: highest sequence number)\n"
    "  --cts SOCKET           the CTS's unix socket (default: $GCA_CTS_SOCKET)\n"
    "  --memory MIB           the memory this host gives the VM (default: the recorded size);\n"
    "                         an image of another size is refused before QEMU loads it\n"
    "  --qemu PROGRAM         default: the recorded one\n"
    "  --gate-timeout SECONDS how long the resumed guest may take to answer (default 30)\n"
    "See vmm-ready-job-resumer(1).\n";

/* What vm.conf says. */
struct vres_conf {
	int	 format;		/* gca-vm N: 2 names the devices as QEMU does (qom-list) */
	char	 qemu[64], machine[96], devices[1024];
	uint64_t memory;
	long	 uid;			/* the job's user, who ran this command line; -1 unknown */
	char	*bases[VMM_DISKS_MAX];	/* "disk gca-diskN BASE": the base of disk N */
	char	 layers[VMM_DISKS_MAX][PATH_MAX + 64];	/* our overlays on the image's layers */
	char	*argv[VRES_MAX_ARGS + 8];
	int	 argc;
	char	*text;
};

static int
vres_usage(void)
{
	fputs(vres_usage_text, stderr);
	return 2;
}

static void
vres_unescape(char *s)
{
	char *d = s;
	unsigned x;

	for (; *s; s++) {
		if (*s == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &x) == 1) {
			*d++ = (char)x;
			s += 2;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

static int
vres_conf_read(const char *dir, struct vres_conf *vc)
{
	char path[PATH_MAX], *save = NULL;
	size_t len;
	unsigned long long mem;

	vc->uid = -1;
	snprintf(path, sizeof path, "%s/vm.conf", dir);
	if (file_read_all(path, &vc->text, &len, 1024 * 1024) != 0) {
		fprintf(stderr, P ": cannot read %s: is this a vmm checkpoint?\n", path);
		return -1;
	}
	for (char *l = strtok_r(vc->text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (sscanf(l, "qemu %63s", vc->qemu) == 1 || sscanf(l, "machine %95s", vc->machine) == 1 ||
		    sscanf(l, "gca-vm %d", &vc->format) == 1)
			continue;
		if (sscanf(l, "memory %llu", &mem) == 1)
			vc->memory = mem;
		else if (sscanf(l, "uid %llu", &mem) == 1)
			vc->uid = (long)mem;
		else if (strncmp(l, "disk " VMM_DISK_PREFIX, 5 + strlen(VMM_DISK_PREFIX)) == 0) {
			char *sp = strchr(l + 5, ' ');
			long n = strtol(l + 5 + strlen(VMM_DISK_PREFIX), NULL, 10);
			if (sp != NULL && n >= 0 && n < VMM_DISKS_MAX)
				vc->bases[n] = sp + 1;
		} else if (strncmp(l, "devices ", 8) == 0)
			snprintf(vc->devices, sizeof vc->devices, "%s", l + 8);
		else if (strncmp(l, "arg ", 4) == 0 && vc->argc < VRES_MAX_ARGS) {
			vres_unescape(l + 4);
			vc->argv[vc->argc++] = l + 4;
		}
	}
	if (vc->argc == 0 || vc->memory == 0) {
		fprintf(stderr, P ": %s names no QEMU command line or memory size\n", path);
		return -1;
	}
	return 0;
}

/* N of a -drive argument with id=gca-diskN, or -1. */
static int
vres_disk_of(const char *a)
{
	const char *id = strstr(a, "id=" VMM_DISK_PREFIX);
	long n;

	if (id == NULL || (id != a && id[-1] != ','))
		return -1;
	n = strtol(id + 3 + strlen(VMM_DISK_PREFIX), NULL, 10);
	return n >= 0 && n < VMM_DISKS_MAX ? (int)n : -1;
}

/*
 * Each disk of the image: its base here, and an overlay of ours on the image's layer (in the
 * verified copy; the layers below it in copy/parent/...), so that the VM writes only to its own
 * file and no layer a checkpoint holds ever changes. Named gca-diskN.after-CKPT.qcow2: the CTS's
 * next checkpoint of this VM learns from the name that its layers stand on CKPT's.
 */
static int
vres_disks(struct vres_conf *vc, const struct vmm_vm *vm, const char *copy, const char *ckpt)
{
	char layer[PATH_MAX + 64], what[96];

	for (int i = 0; i < vc->argc; i++) {
		int n = i > 0 && strcmp(vc->argv[i - 1], "-drive") == 0 ? vres_disk_of(vc->argv[i]) : -1;
		if (n < 0)
			continue;
		if (vc->bases[n] != NULL) {
			snprintf(what, sizeof what, "checkpoint %s needs the disk base image", ckpt);
			if (vmm_qcow2_check(P, what, vc->bases[n]) != 0)
				return -1;
		}
		snprintf(layer, sizeof layer, "%s/" VMM_DISK_PREFIX "%d.qcow2", copy, n);
		snprintf(what, sizeof what, "checkpoint %s: the layer of disk " VMM_DISK_PREFIX "%d",
		    ckpt, n);
		if (vmm_qcow2_check(P, what, layer) != 0)
			return -1;
		snprintf(vc->layers[n], sizeof vc->layers[n], "%s/" VMM_DISK_PREFIX "%d.after-%s.qcow2",
		    vm->dir, n, ckpt);
		if (vmm_overlay(P, layer, vc->layers[n]) != 0)
			return -1;
	}
	return 0;
}

/* The recorded command line on this run folder's sockets (memory MiB if > 0), waiting for the
 * image. */
static int
vres_argv(struct vres_conf *vc, const struct vmm_vm *vm, const char *qemu, long memory,
	char **argv, char *store, size_t len)
{
	size_t used = 0;
	int n = 0;

	for (int i = 0; i < vc->argc; i++) {
		const char *a = vc->argv[i], *prev = i > 0 ? vc->argv[i - 1] : "";
		char *s = store + used;
		if (i == 0 && qemu != NULL)
			a = qemu;
		if (strcmp(prev, "-qmp") == 0)
			used += (size_t)snprintf(s, len - used, "unix:%s,server=on,wait=off", vm->qmp);
		else if (strcmp(prev, "-m") == 0 && memory > 0)
			used += (size_t)snprintf(s, len - used, "%ld", memory);
		else if (strcmp(prev, "-serial") == 0 && strncmp(a, "file:", 5) == 0)
			used += (size_t)snprintf(s, len - used, "file:%s", vm->console);
		else if (strcmp(prev, "-chardev") == 0 && strstr(a, "id=gate") != NULL)
			used += (size_t)snprintf(s, len - used, "socket,id=gate,path=%s,server=on,"
			    "wait=off", vm->gate);
		else if (strcmp(prev, "-drive") == 0 && vres_disk_of(a) >= 0 &&
		    strncmp(a, "file=", 5) == 0 && strchr(a, ',') != NULL)
			used += (size_t)snprintf(s, len - used, "file=%s%s",
			    vc->layers[vres_disk_of(a)], strchr(a, ','));
		else
			used += (size_t)snprintf(s, len - used, "%s", a);
		if (++used >= len)
			return -1;
		argv[n++] = s;
	}
	argv[n++] = "-S";
	argv[n++] = "-incoming";
	argv[n++] = "defer";
	argv[n] = NULL;
	return 0;
}

/* The words of list a (comma-separated) that list b lacks, comma-separated into out. */
static void
vres_missing(const char *a, const char *b, char *out, size_t len)
{
	char padded[1100], pat[132];
	size_t used = 0;

	out[0] = '\0';
	snprintf(padded, sizeof padded, ",%s,", b);
	for (const char *p = a; *p != '\0'; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		int n = (int)strcspn(p, ",");
		snprintf(pat, sizeof pat, ",%.*s,", n, p);
		if (n > 0 && strstr(padded, pat) == NULL && used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? "," : "", n, p);
	}
}

/*
 * The VM that started (-S -incoming defer: nothing loaded yet) against the one the image was
 * taken from. QEMU loads a stream only into the same machine type, memory size and devices, and
 * an older QEMU cannot read a newer one's; it would fail with "Unknown savevm section" or "Size
 * mismatch" after reading the image. Here the user learns what differs, by name, before that.
 */
static int
vres_check(int q, const struct vres_conf *vc, const char *ckpt)
{
	static const char *asks[] = { "{\"execute\": \"query-version\"}",
		"{\"execute\": \"qom-get\", \"arguments\": {\"path\": \"/machine\", "
		"\"property\": \"type\"}}",
		"{\"execute\": \"query-memory-size-summary\"}",
		"{\"execute\": \"qom-list\", \"arguments\": {\"path\": \"/machine/peripheral-anon\"}}",
		"{\"execute\": \"qom-list\", \"arguments\": {\"path\": \"/machine/peripheral\"}}" };
	char reply[8192], err[512], version[40] = "?", machine[96] = "?", devices[1024] = "";
	char diff[3000] = "";
	uint64_t v[3] = { 0 }, memory = 0;
	size_t used = 0, n;

	for (size_t i = 0; i < GCA_NITEMS(asks); i++) {
		if (vmm_qmp_call(q, asks[i], -1, reply, sizeof reply, err, sizeof err) != 0) {
			fprintf(stderr, P ": the VM started for checkpoint %s does not say what it is: "
			    "%s\n", ckpt, err);
			return -1;
		}
		if (i == 0 && json_u64(reply, "major", &v[0]) == 0 && json_u64(reply, "minor",
		    &v[1]) == 0 && json_u64(reply, "micro", &v[2]) == 0)
			snprintf(version, sizeof version, "%llu.%llu.%llu", (unsigned long long)v[0],
			    (unsigned long long)v[1], (unsigned long long)v[2]);
		if (i == 1 && json_str(reply, "return", machine, sizeof machine) == 0 &&
		    (n = strlen(machine)) > 8 && strcmp(machine + n - 8, "-machine") == 0)
			machine[n - 8] = '\0';	/* "pc-i440fx-7.2-machine" */
		if (i == 2)
			json_u64(reply, "base-memory", &memory);
		if (i >= 3 && json_qom_children(reply, devices, sizeof devices) != 0)
			snprintf(devices, sizeof devices, "(too many)");
	}
	if (version_cmp(version, vc->qemu) < 0)
		used += (size_t)snprintf(diff + used, sizeof diff - used, "; QEMU %s here is older than "
		    "%s, which took it, and cannot read a newer QEMU's image", version, vc->qemu);
	if (strcmp(machine, vc->machine) != 0 && used < sizeof diff)
		used += (size_t)snprintf(diff + used, sizeof diff - used, "; machine type %s, here %s",
		    vc->machine, machine);
	if (memory != vc->memory && used < sizeof diff)
		used += (size_t)snprintf(diff + used, sizeof diff - used, "; memory %llu MiB, here "
		    "%llu MiB", (unsigned long long)(vc->memory >> 20),
		    (unsigned long long)(memory >> 20));
	if (vc->format >= 2 && strcmp(devices, vc->devices) != 0 && used < sizeof diff) {
		char extra[1024], lacking[1024];
		vres_missing(devices, vc->devices, extra, sizeof extra);
		vres_missing(vc->devices, devices, lacking, sizeof lacking);
		used += (size_t)snprintf(diff + used, sizeof diff - used, "; devices %s, here %s "
		    "(not in the image: %s; missing here: %s)", vc->devices, devices,
		    extra[0] ? extra : "none", lacking[0] ? lacking : "none");
	}
	if (used == 0)
		return 0;
	fprintf(stderr, P ": checkpoint %s was taken from another VM than the one this host starts "
	    "for it, so QEMU would not load it: %s\n", ckpt, diff + 2);
	return -1;
}

/* The VM checked, getfd + migrate-incoming, wait until it is loaded, cont. */
static int
vres_incoming(struct vmm_vm *vm, int fd, const struct vres_conf *vc, const char *ckpt)
{
	char reply[4096], err[1024], status[64] = "";
	int q, rc = -1;

	if ((q = vmm_qmp_open(vm, 10000, err, sizeof err)) < 0) {
		fprintf(stderr, P ": %s\n", err);
		return -1;
	}
	if (vres_check(q, vc, ckpt) != 0)
		goto out;
	if (vmm_qmp_call(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"gca-image\"}}",
	    fd, reply, sizeof reply, err, sizeof err) != 0 ||
	    vmm_qmp_call(q, "{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": "
	    "\"fd:gca-image\"}}", -1, reply, sizeof reply, err, sizeof err) != 0)
		goto fail;
	/* at most 120 s; asked every 5 ms, since the restore waits on the first answer past it */
	for (int i = 0; i < 24000; i++) {
		if (vmm_qmp_call(q, "{\"execute\": \"query-status\"}", -1, reply, sizeof reply, err,
		    sizeof err) != 0)
			goto fail;
		json_str(reply, "status", status, sizeof status);
		if (strcmp(status, "inmigrate") != 0)
			break;
		usleep(5000);
	}
	if (strcmp(status, "paused") != 0 && strcmp(status, "running") != 0 &&
	    strcmp(status, "prelaunch") != 0) {
		snprintf(err, sizeof err, "the VM is %s after loading the image", status);
		goto fail;
	}
	if (strcmp(status, "running") != 0 && vmm_qmp_call(q, "{\"execute\": \"cont\"}", -1, reply,
	    sizeof reply, err, sizeof err) != 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	/* QEMU's own reason (a size mismatch, a bad stream) is in its log when it ends */
	for (int i = 0; i < 20 && !vmm_qemu_ended(vm); i++)
		usleep(50000);
	if (vmm_qemu_ended(vm)) {
		char tail[600];
		vmm_log_tail(vm, tail, sizeof tail);
		fprintf(stderr, P ": QEMU could not load the image: %s\n", tail[0] ? tail : err);
	} else
		fprintf(stderr, P ": QEMU could not load the image: %s\n", err);
out:
	close(q);		/* the CTS connects for the next checkpoint */
	return rc;
}

/*
 * The verified copy restore_prepare made for us (STATE/staging/restore-PID-ID, ours): its big
 * file goes as soon as QEMU has loaded it or we give up; the CTS removes the folder when the job
 * it is bound to ends (we cannot: its parent is the CTS's).
 */
static void
vres_drop_copy(const char *dir, bool all)
{
	char path[PATH_MAX + 16];
	const char *base = strrchr(dir, '/');

	if (base == NULL || strncmp(base + 1, "restore-", 8) != 0)
		return;		/* not a copy: never touch a store */
	snprintf(path, sizeof path, "%s/vm.state", dir);
	unlink(path);
	/* the parents' (an image with disks brings its parents' layers, and their streams) */
	for (size_t n = strlen(dir); n + sizeof "/parent/vm.state" < sizeof path; ) {
		memcpy(path + n, "/parent", sizeof "/parent");
		n += sizeof "/parent" - 1;
		snprintf(path + n, sizeof path - n, "/vm.state");
		if (unlink(path) != 0 && errno == ENOENT && access(path, F_OK) != 0) {
			path[n] = '\0';
			if (access(path, F_OK) != 0)
				break;
		}
		path[n] = '\0';
	}
	if (all) {
		snprintf(path, sizeof path, "%s/vm.conf", dir);
		unlink(path);
	}
}

/*
 * Root resuming a user's VM: the recorded command line is the user's (their QEMU, their -serial
 * file:, their -chardev paths), so it runs as that user, never as root. We become the user before
 * QEMU starts and bind on a new connection, so the CTS sees the user on its socket.
 */
static int
vres_become(const struct vres_conf *vc, const char *ckpt)
{
	struct passwd *pw;

	if (getuid() != 0 || vc->uid == 0)
		return 0;
	if (vc->uid < 0) {
		fprintf(stderr, P ": checkpoint %s does not say whose VM it is; resume it as its owner, "
		    "not as root\n", ckpt);
		return -1;
	}
	if ((pw = getpwuid((uid_t)vc->uid)) == NULL) {
		fprintf(stderr, P ": checkpoint %s is the VM of uid %ld, who has no account here\n",
		    ckpt, vc->uid);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, P ": cannot become %s to run the VM: %s\n", pw->pw_name,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
vres_bind(struct proto_sync *s, const char *gid, const char *ckpt, pid_t qemu)
{
	const struct proto_type *pt = proto_type_find("local_bind");
	struct msg_local_bind bind = { .gid = gid, .checkpoint_id = ckpt,
		.pid = (uint64_t)qemu, .recovery = true };
	struct msg_local_bind_ok *ok = NULL;
	char code[64], msg[512];

	if (proto_sync_call(s, "local_bind", pt, &bind, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, P ": GID %s refused: %s (%s)\n", gid, msg, code);
		return -1;
	}
	proto_body_free(pt->reply, ok);
	return 0;
}

static int
vres_run(const char *gid, const char *ckpt, const char *socket, long memory, const char *qemu,
	long gate_timeout)
{
	const struct proto_type *pt = proto_type_find("restore_prepare");
	struct msg_restore_prepare prep = { .gid = gid, .checkpoint = ckpt };
	struct msg_restore_ok *r = NULL;
	struct vres_conf vc = { 0 };
	struct vmm_vm vm = { 0 };
	struct proto_sync *s;
	char code[64], msg[1024], image[PATH_MAX + 16], *argv[VRES_MAX_ARGS + 8], store[16384];
	char line[512], err[1024], rid[64], s1[32], s2[32], jobid[128] = "", state[32] = "";
	struct timespec now;
	uint64_t t0 = time_now_ms(), t_prep = 0, t_load = 0;
	int rc = 1, jcode = 0, fd = -1;
	bool bound = false;

	wrapper_sigpipe_ignore();
	if ((s = wrapper_connect(P, socket)) == NULL)
		return 1;
	proto_sync_set_timeout(s, WRAPPER_PREPARE_MS);
	if (proto_sync_call(s, "restore_prepare", pt, &prep, (void **)&r, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, P ": cannot prepare checkpoint %s of %s: %s (%s)\n", ckpt, gid, msg,
		    code);
		goto out;
	}
	if (r->core_service == NULL || strcmp(r->core_service, "vmm") != 0) {
		fprintf(stderr, P ": checkpoint %s of %s was made by core service %s, not vmm: use "
		    "gca-recover\n", r->checkpoint_id, gid, r->core_service ? r->core_service : "?");
		goto out;
	}
	t_prep = time_now_ms();
	if (vres_conf_read(r->image_dir, &vc) != 0)
		goto out;
	/* opened (and the CTS left) while we may still be root: the copy is the caller's */
	snprintf(image, sizeof image, "%s/vm.state", r->image_dir);
	if ((fd = open(image, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, P ": cannot open %s: %s\n", image, strerror(errno));
		goto out;
	}
	if (getuid() == 0 && vc.uid > 0) {
		proto_sync_close(s);
		s = NULL;
		if (vres_become(&vc, r->checkpoint_id) != 0 || (s = wrapper_connect(P, socket)) == NULL)
			goto out;
	} else if (vres_become(&vc, r->checkpoint_id) != 0)
		goto out;
	if (!vmm_have(qemu ? qemu : vc.argv[0])) {
		fprintf(stderr, P ": QEMU (%s) is not installed here; checkpoint %s needs QEMU %s, "
		    "machine %s\n", qemu ? qemu : vc.argv[0], r->checkpoint_id, vc.qemu, vc.machine);
		goto out;
	}
	if (vmm_rundir(&vm, P) != 0)
		goto out;
	vm.gid = gid;
	vm.cts = socket;
	if (vres_disks(&vc, &vm, r->image_dir, r->checkpoint_id) != 0)
		goto out;
	if (vres_argv(&vc, &vm, qemu, memory, argv, store, sizeof store) != 0) {
		fprintf(stderr, P ": the recorded command line is too long\n");
		goto out;
	}
	vmm_signals_setup();
	if (vmm_launch(&vm, argv) != 0 || vres_incoming(&vm, fd, &vc, r->checkpoint_id) != 0)
		goto out;
	close(fd);
	fd = -1;
	t_load = time_now_ms();
	vres_drop_copy(r->image_dir, false);
	if (vres_bind(s, gid, r->checkpoint_id, vm.pid) != 0)
		goto out;
	bound = true;
	if (vmm_gate_open(&vm, (int)gate_timeout * 1000, line, sizeof line, err, sizeof err) != 0) {
		fprintf(stderr, P ": %s\n", err);
		goto out;
	}
	/* hello's answer: JOBID running|exited|none CODE */
	if (sscanf(line, "%127s %31s %d", jobid, state, &jcode) != 3 || strcmp(state, "none") == 0) {
		fprintf(stderr, P ": the resumed guest runs no job (gate said: %s)\n", line);
		goto out;
	}
	/* a job that asked for this very checkpoint learns it was resumed from it */
	char ck_id[65], *ck[] = { ck_id, NULL };	/* an id is 64 bytes at most (proto/types.c) */
	snprintf(ck_id, sizeof ck_id, "%s", r->checkpoint_id);
	if (vmm_gate_send(&vm, "resumed", ck, rid, sizeof rid) != 0 ||
	    vmm_gate_wait(&vm, rid, 10000, line, sizeof line) != 0)
		fprintf(stderr, P ": the gate did not take \"resumed\": %s\n", line);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(s1, sizeof s1, "%lld", (long long)now.tv_sec);
	snprintf(s2, sizeof s2, "%ld", now.tv_nsec);
	char *secs[] = { s1, s2, NULL };
	if (vmm_gate_send(&vm, "clock", secs, rid, sizeof rid) != 0 ||
	    vmm_gate_wait(&vm, rid, 10000, line, sizeof line) != 0)
		fprintf(stderr, P ": cannot reset the guest's clock: %s\n", line);
	fprintf(stderr, P ": %s resumed from checkpoint %s (seq %llu) in %.2f s (image checked "
	    "and copied %.2f s, QEMU up and loaded %.2f s, bound and gate %.2f s)\n", gid,
	    r->checkpoint_id, (unsigned long long)r->seq, (double)(time_now_ms() - t0) / 1000.0,
	    (double)(t_prep - t0) / 1000.0, (double)(t_load - t_prep) / 1000.0,
	    (double)(time_now_ms() - t_load) / 1000.0);
	proto_sync_close(s);
	s = NULL;
	if (strcmp(state, "exited") == 0 && !vm.job_exited) {
		vm.job_exited = true;
		vm.job_code = jcode;
	}
	rc = vmm_job_loop(&vm, jobid);
	if (rc < 0)
		rc = 1;
out:
	if (vm.dir[0] != '\0')
		vmm_cleanup(&vm, rc == 1);
	if (!bound && r != NULL && r->image_dir != NULL)
		vres_drop_copy(r->image_dir, true);
	if (fd >= 0)
		close(fd);
	proto_body_free(pt->reply, r);
	proto_sync_close(s);
	free(vc.text);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "gid", required_argument, NULL, 'g' },
		{ "checkpoint", required_argument, NULL, 'k' },
		{ "cts", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "gate-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *gid = NULL, *ckpt = NULL, *cts_flag = NULL, *qemu = NULL;
	long memory = 0, gate_timeout = 30;
	char *socket, *end;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'g': gid = optarg; break;
		case 'k': ckpt = optarg; break;
		case 'c': cts_flag = optarg; break;
		case 'q': qemu = optarg; break;
		case 'm':
			memory = strtol(optarg, &end, 10);
			if (*end != '\0' || memory < 1)
				return vres_usage();
			break;
		case 't':
			gate_timeout = strtol(optarg, &end, 10);
			if (*end != '\0' || gate_timeout < 1 || gate_timeout > 3600)
				return vres_usage();
			break;
		case 'h':
			fputs(vres_usage_text, stdout);
			fputs(vres_help_text, stdout);
			return 0;
		default:
			return vres_usage();
		}
	}
	if (gid == NULL || ckpt == NULL || optind != argc)
		return vres_usage();
	if (!name_valid(gid)) {
		fprintf(stderr, P ": bad GID \"%s\": %s (%s)\n", gid, name_why(gid), NAME_RULE);
		return vres_usage();
	}
	if ((socket = wrapper_socket(P, cts_flag)) == NULL)
		return 1;
	rc = vres_run(gid, ckpt, socket, memory, qemu, gate_timeout);
	free(socket);
	return rc;
}
