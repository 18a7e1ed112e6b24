/*
 * vmm-ready-job-executor: starts a job in a virtual machine of its own under a vmm CTS (paper
 * section 4, the execute wrapper for VMs).
 *
 * When the CTS keeps a pool of booted VMs (vmm.pool=N, docs/VMM.md "A pool of booted VMs") and
 * one of them is exactly the VM we would start, it takes that one instead (local_vm_take): not
 * our child, the CTS's to kill once we have exited. Otherwise:
 * It starts QEMU as its child (the guest image: a kernel and an initramfs holding the gate agent,
 * gca-gate, named by flags, the environment or else the CTS's cts.conf, which the CTS publishes
 * as vmm.guest.* and tells us with local_info), binds the GID to QEMU's pid, so a checkpoint of the GID is a checkpoint of the whole
 * VM, waits for the Virtual Node Gate, sets the guest's clock and runs the job in the guest
 * through it. It stays resident: the job's output comes out on our stdout, signals are forwarded
 * to the job, and we exit with its status; then the VM is stopped.
 *
 * Exit status: the job's (128+N if signal N killed it); 1 the job did not run or the VM ended
 * first; 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/vmm_wrap.h"
#include "wrappers/wrapper.h"

static const char vexec_usage_text[] =
    "usage: vmm-ready-job-executor --gid GID [--cts SOCKET] [--kernel FILE] [--initrd FILE]\n"
    "         [--memory MIB] [--qemu PROGRAM] [--accel kvm|tcg] [--gate-timeout SECONDS]\n"
    "         [--disk BASE.qcow2]... [--checkpoint-every DURATION|auto] [--no-pool]\n"
    "         -- JOB [ARGS...]\n";

static const char vexec_help_text[] =
    "  --gid GID                  the job's grid identifier\n"
    "  --cts SOCKET               the CTS's unix socket (default: $GCA_CTS_SOCKET)\n"
    "  --kernel FILE              the guest's kernel (default: $GCA_VMM_KERNEL, else the CTS's)\n"
    "  --initrd FILE              the guest's initramfs, with gca-gate (default: $GCA_VMM_INITRD,\n"
    "                             else the CTS's)\n"
    "  --memory MIB               the guest's memory (default: the CTS's, else 256)\n"
    "  --qemu PROGRAM             default: $GCA_VMM_QEMU, else qemu-system-x86_64\n"
    "  --accel kvm|tcg            default: kvm when /dev/kvm can be opened, else tcg\n"
    "  --gate-timeout SECONDS     how long the guest may take to answer (default 60)\n"
    "  --disk BASE.qcow2          a writable disk on this base image (its own overlay; the base\n"
    "                             is never written); again for more disks (default:\n"
    "                             $GCA_VMM_DISK, else the CTS's vmm_disk)\n"
    "  --checkpoint-every DURATION  ask the CTS for periodic checkpoints (30s, 5m, 2h, auto)\n"
    "  --no-pool                  start a VM of our own even if the CTS keeps a pool (vmm_pool)\n"
    "See vmm-ready-job-executor(1).\n";

#define VEXEC_ARGS	(48 + 2 * VMM_DISKS_MAX)

struct vexec {
	const char	*gid, *cts, *kernel, *initrd, *qemu, *accel, *machine;
	long		 memory, gate_timeout;	/* memory 0: the CTS's */
	bool		 no_pool;
	uint64_t	 every_ms;
	char		**job;
	const char	*disks[VMM_DISKS_MAX];	/* base images, as given */
	int		 ndisks;
	char		 layers[VMM_DISKS_MAX][PATH_MAX + 32];	/* their overlays in the run folder */
	/* the CTS's guest: kernel, initrd, memory, machine, disk; its pool's size (vmm.pool) */
	char		 guest[6][PATH_MAX];
};

static int
vexec_usage(void)
{
	fputs(vexec_usage_text, stderr);
	return 2;
}

/* QEMU's command line: what vm.conf records and the resumer repeats. -1 if it does not fit. */
static int
vexec_argv(const struct vexec *x, const struct vmm_vm *vm, char **argv, char *store, size_t len)
{
	int n = 0, w;
	size_t used = 0;
	bool full = false;
	/* a long TMPDIR or kernel path must not run past store (len - used would wrap) */
#define ARG(...) do { if (full || n + 1 >= VEXEC_ARGS) { full = true; break; } \
	argv[n] = store + used; w = snprintf(store + used, len - used, __VA_ARGS__); \
	if (w < 0 || (size_t)w >= len - used) { full = true; break; } \
	used += (size_t)w + 1; n++; } while (0)

	ARG("%s", x->qemu);
	ARG("-machine"); ARG("%s", x->machine);
	ARG("-accel"); ARG("%s", x->accel);
	ARG("-cpu"); ARG("%s", strcmp(x->accel, "kvm") == 0 ? "host" : "max");
	ARG("-m"); ARG("%ld", x->memory);
	ARG("-smp"); ARG("1");
	ARG("-nodefaults"); ARG("-display"); ARG("none"); ARG("-no-reboot");
	ARG("-serial"); ARG("file:%s", vm->console);
	ARG("-kernel"); ARG("%s", x->kernel);
	ARG("-initrd"); ARG("%s", x->initrd);
	ARG("-append"); ARG("console=ttyS0 quiet panic=-1 rdinit=/init");
	ARG("-qmp"); ARG("unix:%s,server=on,wait=off", vm->qmp);
	ARG("-device"); ARG("virtio-serial");
	ARG("-chardev"); ARG("socket,id=gate,path=%s,server=on,wait=off", vm->gate);
	ARG("-device"); ARG("virtserialport,chardev=gate,name=gca.gate");
	for (int i = 0; i < x->ndisks; i++) {
		ARG("-drive");
		ARG("file=%s,format=qcow2,if=virtio,id=" VMM_DISK_PREFIX "%d", x->layers[i], i);
	}
	argv[n] = NULL;
#undef ARG
	return full ? -1 : 0;
}

/*
 * local_info: the CTS must run the vmm core service (said before a VM is started for nothing),
 * and what no flag or variable named comes from the guest it offers (cts.conf vmm_kernel, ...).
 */
static int
vexec_info(struct vexec *x)
{
	const struct proto_type *pt = proto_type_find("local_info");
	struct msg_empty req = { 0 };
	struct msg_local_info_ok *ok = NULL;
	static const char *keys[] = { "vmm.guest.kernel=", "vmm.guest.initrd=",
		"vmm.guest.memory=", "vmm.guest.machine=", "vmm.guest.disk=", "vmm.pool=" };
	char code[64], msg[512];
	struct proto_sync *s;
	int rc = 0;

	if ((s = wrapper_connect("vmm-ready-job-executor", x->cts)) == NULL)
		return -1;
	if (proto_sync_call(s, "local_info", pt, &req, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, "vmm-ready-job-executor: the CTS at %s does not say what it runs: %s "
		    "(%s)\n", x->cts, msg, code);
		rc = -1;
	} else if (strcmp(ok->core_service, "vmm") != 0) {
		fprintf(stderr, "vmm-ready-job-executor: CTS %s runs core service %s, not vmm: use "
		    "gca-exec there\n", ok->cts, ok->core_service);
		rc = -1;
	} else {
		for (size_t i = 0; i < ok->properties.n; i++)
			for (size_t k = 0; k < GCA_NITEMS(keys); k++)
				if (strncmp(ok->properties.v[i], keys[k], strlen(keys[k])) == 0)
					snprintf(x->guest[k], sizeof x->guest[k], "%s",
					    ok->properties.v[i] + strlen(keys[k]));
	}
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
	if (rc != 0)
		return -1;
	if (x->kernel == NULL && x->guest[0][0] != '\0')
		x->kernel = x->guest[0];
	if (x->initrd == NULL && x->guest[1][0] != '\0')
		x->initrd = x->guest[1];
	if (x->memory == 0)
		x->memory = x->guest[2][0] ? strtol(x->guest[2], NULL, 10) : 256;
	x->machine = x->guest[3][0] ? x->guest[3] : "pc";
	if (x->ndisks == 0 && x->guest[4][0] != '\0')
		x->disks[x->ndisks++] = x->guest[4];	/* cts.conf vmm_disk */
	if (x->kernel == NULL || x->initrd == NULL) {
		fprintf(stderr, "vmm-ready-job-executor: no guest image: give --kernel and --initrd, set "
		    "GCA_VMM_KERNEL and GCA_VMM_INITRD, or have the CTS offer one (cts.conf "
		    "vmm_kernel, vmm_initrd)\n");
		return -1;
	}
	return 0;
}

static int
vexec_bind(const struct vexec *x, pid_t qemu)
{
	const struct proto_type *pt = proto_type_find("local_bind");
	struct msg_local_bind bind = { .gid = x->gid, .pid = (uint64_t)qemu,
		.checkpoint_every_ms = WRAPPER_EVERY_MS(x->every_ms),
		.checkpoint_auto = WRAPPER_EVERY_IS_AUTO(x->every_ms) };
	struct msg_local_bind_ok *ok = NULL;
	char code[64], msg[512];
	struct proto_sync *s;
	int rc = 0;

	if ((s = wrapper_connect("vmm-ready-job-executor", x->cts)) == NULL)
		return -1;
	if (proto_sync_call(s, "local_bind", pt, &bind, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		fprintf(stderr, "vmm-ready-job-executor: GID %s refused: %s (%s)\n", x->gid, msg, code);
		rc = -1;
	}
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
	return rc;
}

/*
 * A booted VM from the CTS's pool (docs/VMM.md, "A pool of booted VMs"), if it keeps one of
 * exactly the VM we would start: the CTS says whether. 0 with vm adopted, else -1 (a CTS
 * without a pool says so quietly; otherwise why not, on stderr).
 */
static int
vexec_take(const struct vexec *x, struct vmm_vm *vm)
{
	const struct proto_type *pt = proto_type_find("local_vm_take");
	struct msg_local_vm_take req = { x->gid, x->qemu, x->machine, x->accel, x->kernel,
		x->initrd, (uint64_t)x->memory };
	struct msg_local_vm_take_ok *ok = NULL;
	char code[64], msg[512];
	struct proto_sync *s;
	int rc = -1;

	if (x->no_pool || x->guest[5][0] == '\0')
		return -1;	/* asked not to, or the CTS keeps no pool (no vmm.pool=N) */
	if (x->ndisks > 0) {
		fprintf(stderr, "vmm-ready-job-executor: no pooled VM (pooled VMs have no disk): "
		    "starting one\n");
		return -1;
	}
	if ((s = wrapper_connect("vmm-ready-job-executor", x->cts)) == NULL)
		return -1;
	if (proto_sync_call(s, "local_vm_take", pt, &req, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		if (strcmp(code, PROTO_E_UNAVAILABLE) != 0 && strcmp(code, PROTO_E_UNKNOWN_TYPE) != 0)
			fprintf(stderr, "vmm-ready-job-executor: no pooled VM (%s): starting one\n",
			    msg);
	} else if (ok->pid == 0 || ok->pid > INT32_MAX) {
		fprintf(stderr, "vmm-ready-job-executor: the CTS named pooled VM pid %llu\n",
		    (unsigned long long)ok->pid);
	} else if (vmm_adopt(vm, "vmm-ready-job-executor", (pid_t)ok->pid, ok->dir, ok->gate,
	    ok->console) == 0) {
		vm->gid = x->gid;
		vm->cts = x->cts;
		rc = 0;
	}
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
	return rc;
}

/* Each disk: its base checked, an overlay of the job's own made on it (before QEMU starts). */
static int
vexec_disks(struct vexec *x, const struct vmm_vm *vm)
{
	char base[PATH_MAX];

	for (int i = 0; i < x->ndisks; i++) {
		if (vmm_qcow2_check("vmm-ready-job-executor", "disk base image", x->disks[i]) != 0)
			return -1;
		/* absolute: the overlay names it, and QEMU opens it from anywhere */
		if (realpath(x->disks[i], base) == NULL || strpbrk(base, ",\"\\") != NULL) {
			fprintf(stderr, "vmm-ready-job-executor: disk base image %s: %s\n", x->disks[i],
			    errno ? strerror(errno) : "its path has a comma, quote or backslash");
			return -1;
		}
		snprintf(x->layers[i], sizeof x->layers[i], "%s/" VMM_DISK_PREFIX "%d.qcow2", vm->dir,
		    i);
		if (vmm_overlay("vmm-ready-job-executor", base, x->layers[i]) != 0)
			return -1;
	}
	return 0;
}

static int
vexec_run(struct vexec *x)
{
	struct vmm_vm vm = { 0 };
	char *argv[VEXEC_ARGS], store[8192], line[512], err[1024], rid[64], *secs[3], s1[32], s2[32];
	struct timespec now;
	int code = 1;

	if (!vmm_have(x->qemu)) {
		fprintf(stderr, "vmm-ready-job-executor: QEMU (%s) is not installed here: install "
		    "qemu-system-x86 or give --qemu\n", x->qemu);
		return 1;
	}
	if (access(x->kernel, R_OK) != 0 || access(x->initrd, R_OK) != 0) {
		fprintf(stderr, "vmm-ready-job-executor: cannot read the guest's %s %s: %s\n",
		    access(x->kernel, R_OK) != 0 ? "kernel" : "initramfs",
		    access(x->kernel, R_OK) != 0 ? x->kernel : x->initrd, strerror(errno));
		return 1;
	}
	vmm_signals_setup();
	wrapper_sigpipe_ignore();
	if (vexec_take(x, &vm) == 0) {
		if (vexec_bind(x, vm.pid) != 0)
			goto out;
		goto ready;
	}
	if (vmm_rundir(&vm, "vmm-ready-job-executor") != 0)
		return 1;
	vm.gid = x->gid;
	vm.cts = x->cts;
	if (vexec_disks(x, &vm) != 0) {
		vmm_cleanup(&vm, false);	/* no VM ran: nothing in the run folder to look at */
		return 1;
	}
	if (vexec_argv(x, &vm, argv, store, sizeof store) != 0) {
		fprintf(stderr, "vmm-ready-job-executor: QEMU's command line would be longer than %zu "
		    "bytes (a long TMPDIR %s, kernel or initramfs path?)\n", sizeof store, vm.dir);
		goto out;
	}
	if (vmm_launch(&vm, argv) != 0 || vexec_bind(x, vm.pid) != 0)
		goto out;
ready:
	if (vmm_gate_open(&vm, (int)x->gate_timeout * 1000, line, sizeof line, err, sizeof err) != 0) {
		fprintf(stderr, "vmm-ready-job-executor: %s\n", err);
		goto out;
	}
	/* the guest has no clock source worth the name before this */
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(s1, sizeof s1, "%lld", (long long)now.tv_sec);
	snprintf(s2, sizeof s2, "%ld", now.tv_nsec);
	secs[0] = s1, secs[1] = s2, secs[2] = NULL;
	if (vmm_gate_send(&vm, "clock", secs, rid, sizeof rid) != 0 ||
	    vmm_gate_wait(&vm, rid, 10000, line, sizeof line) != 0)
		fprintf(stderr, "vmm-ready-job-executor: cannot set the guest's clock: %s\n", line);
	if (vmm_gate_send(&vm, "run", x->job, rid, sizeof rid) != 0 ||
	    vmm_gate_wait(&vm, rid, 10000, line, sizeof line) != 0) {
		fprintf(stderr, "vmm-ready-job-executor: the gate did not start %s: %s\n", x->job[0],
		    line);
		goto out;
	}
	code = vmm_job_loop(&vm, line);
	if (code < 0)
		code = 1;
out:
	vmm_cleanup(&vm, code == 1);
	return code;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "gid", required_argument, NULL, 'g' },
		{ "cts", required_argument, NULL, 'c' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "memory", required_argument, NULL, 'm' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "accel", required_argument, NULL, 'a' },
		{ "gate-timeout", required_argument, NULL, 't' },
		{ "checkpoint-every", required_argument, NULL, 'e' },
		{ "disk", required_argument, NULL, 'd' },
		{ "no-pool", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vexec x = { .memory = 0, .gate_timeout = 60 };
	const char *cts_flag = NULL;
	char *socket, *end;
	int c, rc;

	x.kernel = getenv("GCA_VMM_KERNEL");
	x.initrd = getenv("GCA_VMM_INITRD");
	x.qemu = getenv("GCA_VMM_QEMU") ? getenv("GCA_VMM_QEMU") : "qemu-system-x86_64";
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'g': x.gid = optarg; break;
		case 'c': cts_flag = optarg; break;
		case 'k': x.kernel = optarg; break;
		case 'i': x.initrd = optarg; break;
		case 'q': x.qemu = optarg; break;
		case 'a': x.accel = optarg; break;
		case 'd':
			if (x.ndisks == VMM_DISKS_MAX) {
				fprintf(stderr, "vmm-ready-job-executor: at most %d disks\n",
				    VMM_DISKS_MAX);
				return vexec_usage();
			}
			x.disks[x.ndisks++] = optarg;
			break;
		case 'm':
			x.memory = strtol(optarg, &end, 10);
			if (*end != '\0' || x.memory < 16 || x.memory > 1024 * 1024) {
				fprintf(stderr, "vmm-ready-job-executor: bad --memory \"%s\" (MiB, 16 "
				    "or more)\n", optarg);
				return vexec_usage();
			}
			break;
		case 't':
			x.gate_timeout = strtol(optarg, &end, 10);
			if (*end != '\0' || x.gate_timeout < 1 || x.gate_timeout > 3600)
				return vexec_usage();
			break;
		case 'e':
			if (wrapper_every_parse("vmm-ready-job-executor", optarg, &x.every_ms) != 0)
				return vexec_usage();
			break;
		case 'P': x.no_pool = true; break;
		case 'h':
			fputs(vexec_usage_text, stdout);
			fputs(vexec_help_text, stdout);
			return 0;
		default:
			return vexec_usage();
		}
	}
	if (x.gid == NULL || optind >= argc)
		return vexec_usage();
	if (x.ndisks == 0 && getenv("GCA_VMM_DISK") != NULL && *getenv("GCA_VMM_DISK") != '\0')
		x.disks[x.ndisks++] = getenv("GCA_VMM_DISK");
	if (!name_valid(x.gid)) {
		fprintf(stderr, "vmm-ready-job-executor: bad GID \"%s\": %s (%s)\n", x.gid,
		    name_why(x.gid), NAME_RULE);
		return vexec_usage();
	}
	if (x.accel == NULL) {
		int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		x.accel = fd >= 0 ? "kvm" : "tcg";
		if (fd >= 0)
			close(fd);
	}
	x.job = argv + optind;
	if ((socket = wrapper_socket("vmm-ready-job-executor", cts_flag)) == NULL)
		return 1;
	x.cts = socket;
	rc = vexec_info(&x) == 0 ? vexec_run(&x) : 1;
	free(socket);
	return rc;
}
