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

#define VMM_POLL_MS	20		/* between query-migrate */
#define VMM_CALL_MS	15000		/* an answer to one command; the migration has vmm_timeout */
#define VMM_MAX_BANDWIDTH "1099511627776"	/* bytes/s: no throttle */

#define VMM_MACHINES_MAX	128	/* machine types published; QEMU 7.2 has about 60 */

static char vmm_version[64];
static bool vmm_kvm;
static char *vmm_machines[VMM_MACHINES_MAX];	/* what QEMU's -machine help lists, aliases not */
static size_t vmm_nmachines;

enum vmm_step {
	VMM_CAPS, VMM_VERSION, VMM_MACHINE, VMM_MEMORY, VMM_DEVICES, VMM_DEVICES_ID, VMM_STATUS,
	VMM_BANDWIDTH, VMM_STOP, VMM_GETFD, VMM_MIGRATE, VMM_POLL, VMM_CANCEL, VMM_CONT,
	VMM_CONT_AFTER_ERROR,
};

static const char *vmm_step_names[] = {
	"qmp_capabilities", "query-version", "qom-get /machine type", "query-memory-size-summary",
	"qom-list /machine/peripheral-anon", "qom-list /machine/peripheral", "query-status",
	"migrate-set-parameters", "stop", "getfd", "migrate", "query-migrate", "migrate_cancel",
	"cont", "cont",
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
	char *argv[] = { (char *)qemu, (char *)arg1, (char *)arg2, NULL };
	posix_spawn_file_actions_t fa;
	extern char **environ;
	size_t n = 0;
	ssize_t r;
	pid_t pid;
	int p[2], status, rc;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	rc = posix_spawnp(&pid, qemu, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
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
	if (!S_ISSOCK(st.st_mode) || st.st_uid != j->uid) {
		snprintf(op->error, sizeof op->error, "QMP socket %.400s of process %d is not a socket "
		    "owned by the job's user (uid %u)", path, (int)j->pid, (unsigned)j->uid);
		return -1;
	}
	return 0;
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
	if (fclose(f) != 0) {
		snprintf(out, len, "cannot write %s", path);
		return -1;
	}
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
	if (vmm_find_qmp(op, path, sizeof path) != 0) {
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
	op->q = qmp_open(ck->cts->base, path, ck->job->pid, ck->job->uid, VMM_CALL_MS,
	    vmm_on_answer, op, op->error, sizeof op->error);
	if (op->q == NULL)
		vmm_fail(op);
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
};
