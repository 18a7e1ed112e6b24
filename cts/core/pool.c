/*
 * The vmm core service's pool of booted VMs (docs/VMM.md, "A pool of booted VMs"). cts.conf
 * vmm_pool N keeps N QEMUs of the CTS's own guest booted and gate-ready, each in its own folder
 * STATE/pool/vm-XXXXXX and run as vmm_pool_user (never root, never a job's user: nobody but the
 * CTS talks QMP to them). local_vm_take hands a ready one to the caller, whose pid, start time
 * and uid are recorded here from SO_PEERCRED; local_bind then accepts that QEMU for that caller
 * only (pool_handed). Once the caller has exited the VM is killed and its folder removed: a VM
 * serves one job and is never handed twice. Everything runs on the CTS's loop, on a timer.
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cts/cts.h"

#define POOL_SLOTS	64	/* VMs at once: the pool's and those handed to running jobs */
#define POOL_TICK_MS	250
#define POOL_BOOT_MS	120000	/* a guest that does not answer hello by then is killed */
#define POOL_RETRY_MS	10000	/* after a VM that failed to boot, the next one waits this */
#define POOL_ARGS	48

enum pool_state { POOL_FREE, POOL_BOOTING, POOL_READY, POOL_HANDED, POOL_DYING };

struct pool_vm {
	enum pool_state	 state;
	pid_t		 pid;		/* QEMU, our child */
	uint64_t	 start;		/* its /proc start time */
	char		 dir[PATH_MAX];
	uint64_t	 since_ms, hello_ms;
	int		 gate_fd;	/* booting: our connection to its gate */
	char		 in[512];	/* what the gate said, not yet a whole line */
	size_t		 inlen;
	pid_t		 holder;	/* handed: the caller of local_vm_take */
	uint64_t	 holder_start;
	uid_t		 holder_uid;
};

static struct pool_vm pool_vms[POOL_SLOTS];
static struct event *pool_timer;
static uid_t pool_uid;
static gid_t pool_gid;
static uint64_t pool_retry_ms;
static const char *pool_accel;

/* Kills nothing: closes what we hold of a VM that has ended and removes its folder. */
static void
pool_forget(struct pool_vm *vm)
{
	if (vm->gate_fd >= 0)
		close(vm->gate_fd);
	if (vm->dir[0] != '\0')
		file_remove_tree(vm->dir);
	memset(vm, 0, sizeof *vm);
	vm->gate_fd = -1;
	vm->state = POOL_FREE;
}

static void
pool_kill(struct pool_vm *vm, const char *why)
{
	log_info("pooled VM pid %d goes: %s", (int)vm->pid, why);
	kill(vm->pid, SIGKILL);
	if (vm->gate_fd >= 0)
		close(vm->gate_fd);
	vm->gate_fd = -1;
	vm->state = POOL_DYING;		/* reaped on a later tick, never by a blocking wait */
}

/* QEMU's command line: the executor's (vexec_argv) for the CTS's guest, without disks. */
static int
pool_argv(const struct cts *c, const char *dir, char **argv, char *store, size_t len)
{
	int n = 0, w;
	size_t used = 0;
	bool full = false;
#define ARG(...) do { if (full || n + 1 >= POOL_ARGS) { full = true; break; } \
	argv[n] = store + used; w = snprintf(store + used, len - used, __VA_ARGS__); \
	if (w < 0 || (size_t)w >= len - used) { full = true; break; } \
	used += (size_t)w + 1; n++; } while (0)

	ARG("%s", c->vmm_qemu);
	ARG("-machine"); ARG("%s", c->vmm_machine);
	ARG("-accel"); ARG("%s", pool_accel);
	ARG("-cpu"); ARG("%s", strcmp(pool_accel, "kvm") == 0 ? "host" : "max");
	ARG("-m"); ARG("%u", c->vmm_memory_mib);
	ARG("-smp"); ARG("1");
	ARG("-nodefaults"); ARG("-display"); ARG("none"); ARG("-no-reboot");
	ARG("-serial"); ARG("file:%s/console.log", dir);
	ARG("-kernel"); ARG("%s", c->vmm_kernel);
	ARG("-initrd"); ARG("%s", c->vmm_initrd);
	ARG("-append"); ARG("console=ttyS0 quiet panic=-1 rdinit=/init");
	ARG("-qmp"); ARG("unix:%s/qmp,server=on,wait=off", dir);
	ARG("-device"); ARG("virtio-serial");
	ARG("-chardev"); ARG("socket,id=gate,path=%s/gate,server=on,wait=off", dir);
	ARG("-device"); ARG("virtserialport,chardev=gate,name=gca.gate");
	argv[n] = NULL;
#undef ARG
	return full ? -1 : 0;
}

/* In the child: become the pool's user, die with the CTS, and exec QEMU. */
static void
pool_exec(char **argv, const char *log, pid_t parent)
{
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
	setsid();
	umask(077);
	if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(pool_gid) != 0 ||
	    setuid(pool_uid) != 0))
		_exit(126);
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600)) >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if ((fd = open("/dev/null", O_RDONLY)) >= 0)
		dup2(fd, 0);
	close_range(3, ~0U, 0);		/* nothing of the CTS's: its TLS sockets, its store */
	execvp(argv[0], argv);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void
pool_boot(struct cts *c, struct pool_vm *vm)
{
	char *argv[POOL_ARGS], store[8192], log[PATH_MAX + 16];
	pid_t parent = getpid(), ppid;
	uid_t u;
	gid_t g;

	snprintf(vm->dir, sizeof vm->dir, "%s/pool/vm-XXXXXX", c->state);
	if (mkdtemp(vm->dir) == NULL) {
		log_warn("vmm_pool: cannot make %s: %s", vm->dir, strerror(errno));
		vm->dir[0] = '\0';
		goto fail;
	}
	/* the pool's user makes its sockets and logs in it; others may only pass through (the
	 * holder reaches the gate it is given) */
	if (chown(vm->dir, pool_uid, pool_gid) != 0 || chmod(vm->dir, 0711) != 0) {
		log_warn("vmm_pool: cannot give %s to uid %u: %s", vm->dir, (unsigned)pool_uid,
		    strerror(errno));
		goto fail;
	}
	if (pool_argv(c, vm->dir, argv, store, sizeof store) != 0) {
		log_warn("vmm_pool: QEMU's command line does not fit in %zu bytes", sizeof store);
		goto fail;
	}
	snprintf(log, sizeof log, "%s/qemu.log", vm->dir);
	if ((vm->pid = fork()) < 0) {
		log_warn("vmm_pool: cannot fork: %s", strerror(errno));
		goto fail;
	}
	if (vm->pid == 0)
		pool_exec(argv, log, parent);
	if (proc_stat(vm->pid, &ppid, &u, &g, &vm->start) != 0)
		vm->start = 0;	/* it ended already: reaped on the next tick */
	vm->state = POOL_BOOTING;
	vm->since_ms = time_mono_ms();
	vm->hello_ms = 0;
	log_info("pooled VM pid %d boots in %s", (int)vm->pid, vm->dir);
	return;
fail:
	pool_retry_ms = time_mono_ms() + POOL_RETRY_MS;
	pool_forget(vm);
}

/* Booting: connect to the gate, say hello each second, ready at the first answer. */
static void
pool_gate_poll(struct pool_vm *vm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t now = time_mono_ms();
	char line[64], prefix[32];
	ssize_t n;

	if (vm->gate_fd < 0) {
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s/gate", vm->dir);
		if ((vm->gate_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0)) < 0)
			return;
		if (connect(vm->gate_fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
			close(vm->gate_fd);	/* QEMU has not made it yet */
			vm->gate_fd = -1;
			return;
		}
	}
	if (now >= vm->hello_ms + 1000) {
		n = snprintf(line, sizeof line, "hello pool%d-%llu\n", (int)vm->pid,
		    (unsigned long long)now);
		if (write(vm->gate_fd, line, (size_t)n) != n)
			return;		/* a full buffer: the guest reads nothing yet */
		vm->hello_ms = now;
	}
	snprintf(prefix, sizeof prefix, "hello pool%d-", (int)vm->pid);
	while ((n = read(vm->gate_fd, vm->in + vm->inlen, sizeof vm->in - 1 - vm->inlen)) > 0) {
		char *nl;

		vm->inlen += (size_t)n;
		vm->in[vm->inlen] = '\0';
		while ((nl = strchr(vm->in, '\n')) != NULL) {
			*nl = '\0';
			if (strncmp(vm->in, prefix, strlen(prefix)) == 0) {
				close(vm->gate_fd);
				vm->gate_fd = -1;
				vm->state = POOL_READY;
				log_info("pooled VM pid %d is ready (its gate answered after %.1f s)",
				    (int)vm->pid, (double)(now - vm->since_ms) / 1000);
				return;
			}
			vm->inlen -= (size_t)(nl + 1 - vm->in);
			memmove(vm->in, nl + 1, vm->inlen + 1);
		}
		if (vm->inlen == sizeof vm->in - 1)
			vm->inlen = 0;	/* a line this long is not hello's answer */
	}
}

/* The holder still runs (the same process: its start time too)? */
static bool
pool_holder_alive(const struct pool_vm *vm)
{
	pid_t ppid;
	uid_t u;
	gid_t g;
	uint64_t start;

	return proc_stat(vm->holder, &ppid, &u, &g, &start) == 0 && start == vm->holder_start;
}

static void
pool_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cts *c = arg;
	unsigned kept = 0, handed = 0;
	int status;

	(void)fd;
	(void)what;
	for (struct pool_vm *vm = pool_vms; vm < pool_vms + POOL_SLOTS; vm++) {
		if (vm->state == POOL_FREE)
			continue;
		if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
			if (vm->state == POOL_BOOTING || vm->state == POOL_READY) {
				log_warn("pooled VM pid %d ended by itself (%s %d; see %s/qemu.log "
				    "while it lasts): booting another in %d s", (int)vm->pid,
				    WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ?
				    WTERMSIG(status) : WEXITSTATUS(status), vm->dir,
				    POOL_RETRY_MS / 1000);
				pool_retry_ms = time_mono_ms() + POOL_RETRY_MS;
			}
			pool_forget(vm);
			continue;
		}
		if (vm->state == POOL_BOOTING) {
			pool_gate_poll(vm);
			if (vm->state == POOL_BOOTING &&
			    time_mono_ms() > vm->since_ms + POOL_BOOT_MS) {
				pool_kill(vm, "its gate did not answer within 120 s");
				pool_retry_ms = time_mono_ms() + POOL_RETRY_MS;
			}
		} else if (vm->state == POOL_HANDED && !pool_holder_alive(vm)) {
			char why[96];
			snprintf(why, sizeof why, "its holder, pid %d, has exited", (int)vm->holder);
			pool_kill(vm, why);
		}
		if (vm->state == POOL_BOOTING || vm->state == POOL_READY)
			kept++;
		handed += vm->state == POOL_HANDED;
	}
	/* handed VMs count too: takers that hold VMs and never exit cannot make the CTS boot
	 * VM after VM (the executor boots its own when the pool is empty) */
	if (kept >= c->vmm_pool || kept + handed >= 2 * c->vmm_pool ||
	    time_mono_ms() < pool_retry_ms)
		return;
	for (struct pool_vm *vm = pool_vms; vm < pool_vms + POOL_SLOTS; vm++)
		if (vm->state == POOL_FREE) {
			pool_boot(c, vm);	/* one per tick: boots are spread out */
			return;
		}
}

void
pool_start(struct cts *c)
{
	struct timeval tv = { 0, POOL_TICK_MS * 1000 };
	struct sockaddr_un sa;
	struct passwd *pw;
	char dir[PATH_MAX];
	int fd;

	if (c->vmm_pool == 0)
		return;
	if (c->core != &core_vmm)
		log_fatal("vmm_pool is for core_service vmm, not %s", c->core->name);
	if (geteuid() == 0 && c->vmm_pool_user == NULL)
		log_fatal("vmm_pool: this CTS runs as root: name the user pooled VMs run as "
		    "(vmm_pool_user; a user of their own, never root)");
	if (c->vmm_pool_user != NULL) {
		if ((pw = getpwnam(c->vmm_pool_user)) == NULL)
			log_fatal("vmm_pool_user %s: no such user", c->vmm_pool_user);
		if (pw->pw_uid == 0 || (geteuid() != 0 && pw->pw_uid != geteuid()))
			log_fatal("vmm_pool_user %s: %s", c->vmm_pool_user, pw->pw_uid == 0 ?
			    "pooled VMs never run as root" : "a CTS that is not root runs pooled VMs "
			    "as itself");
		pool_uid = pw->pw_uid;
		pool_gid = pw->pw_gid;
	} else {
		pool_uid = geteuid();
		pool_gid = getegid();
	}
	if (c->vmm_kernel == NULL || c->vmm_initrd == NULL)
		log_fatal("vmm_pool needs the guest it boots: vmm_kernel and vmm_initrd");
	snprintf(dir, sizeof dir, "%s/pool/vm-XXXXXX/gate", c->state);
	if (strlen(dir) >= sizeof sa.sun_path)
		log_fatal("vmm_pool: %s is too long a path for QEMU's sockets (at most %zu bytes): "
		    "a shorter state folder", dir, sizeof sa.sun_path - 1);
	if (c->unavailable[0] != '\0') {
		log_warn("vmm_pool: no VMs are booted while the core service is unavailable");
		return;
	}
	/* a previous run's VMs died with it (PR_SET_PDEATHSIG): their folders go */
	snprintf(dir, sizeof dir, "%s/pool", c->state);
	file_remove_tree(dir);
	if (mkdir(dir, 0711) != 0 || chmod(dir, 0711) != 0)
		log_fatal("vmm_pool: cannot make %s: %s", dir, strerror(errno));
	pool_accel = "tcg";
	if (c->vmm_pool_accel != NULL)
		pool_accel = c->vmm_pool_accel;
	else if ((fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) >= 0) {
		pool_accel = "kvm";
		close(fd);
	}
	for (struct pool_vm *vm = pool_vms; vm < pool_vms + POOL_SLOTS; vm++)
		vm->gate_fd = -1;
	pool_timer = event_new(c->base, -1, EV_PERSIST, pool_on_tick, c);
	event_add(pool_timer, &tv);
	log_info("vmm_pool: %u VMs (%s, %u MiB, %s) kept booted as uid %u", c->vmm_pool,
	    c->vmm_machine, c->vmm_memory_mib, pool_accel, (unsigned)pool_uid);
}

void
pool_stop(struct cts *c)
{
	int status;

	(void)c;
	if (pool_timer == NULL)
		return;
	event_free(pool_timer);
	pool_timer = NULL;
	for (struct pool_vm *vm = pool_vms; vm < pool_vms + POOL_SLOTS; vm++) {
		if (vm->state == POOL_FREE)
			continue;
		kill(vm->pid, SIGKILL);
		while (waitpid(vm->pid, &status, 0) < 0 && errno == EINTR)
			;
		pool_forget(vm);
	}
}

static struct pool_vm *
pool_find_handed(pid_t pid, uint64_t start)
{
	for (struct pool_vm *vm = pool_vms; vm < pool_vms + POOL_SLOTS; vm++)
		if (vm->state == POOL_HANDED && vm->pid == pid && vm->start == start)
			return vm;
	return NULL;
}

bool
pool_handed(pid_t pid, uint64_t start, pid_t caller, uid_t uid)
{
	struct pool_vm *vm = pool_find_handed(pid, start);

	return vm != NULL && vm->holder == caller && vm->holder_uid == uid && pool_holder_alive(vm);
}

uid_t
pool_qemu_uid(pid_t pid, uint64_t start, uid_t job_uid)
{
	struct pool_vm *vm = pool_find_handed(pid, start);

	return vm != NULL && vm->holder_uid == job_uid ? pool_uid : job_uid;
}

/* The VM asked for is the one the pool boots? NULL, or what differs. */
static const char *
pool_differs(const struct cts *c, const struct msg_local_vm_take *b, char *why, size_t len)
{
	const char *names[] = { "qemu", "machine", "accel", "kernel", "initrd" };
	const char *here[] = { c->vmm_qemu, c->vmm_machine, pool_accel, c->vmm_kernel,
	    c->vmm_initrd };
	const char *asked[] = { b->qemu, b->machine, b->accel, b->kernel, b->initrd };

	for (size_t i = 0; i < GCA_NITEMS(names); i++)
		if (strcmp(here[i], asked[i]) != 0) {
			snprintf(why, len, "pooled VMs have %s %s, not %s", names[i], here[i],
			    asked[i]);
			return why;
		}
	if (b->memory_mib != c->vmm_memory_mib) {
		snprintf(why, len, "pooled VMs have %u MiB, not %llu", c->vmm_memory_mib,
		    (unsigned long long)b->memory_mib);
		return why;
	}
	return NULL;
}

void
pool_take(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_local_vm_take *b = r->body;
	struct msg_local_vm_take_ok ok;
	struct pool_vm *ready = NULL;
	char why[600], gate[PATH_MAX + 8], console[PATH_MAX + 16];
	unsigned booting = 0, held = 0;
	pid_t ppid;
	uid_t u;
	gid_t g;

	if (!name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID");
		return;
	}
	if (pool_timer == NULL) {
		proto_reply_err(r, PROTO_E_UNAVAILABLE, "CTS %s keeps no pool of VMs (cts.conf "
		    "vmm_pool)%s", c->name, c->unavailable[0] ? ": its core service is unavailable" :
		    "");
		return;
	}
	if (geteuid() != 0 && r->peer.uid != geteuid()) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "this CTS runs as uid %u and hands pooled VMs "
		    "to that uid only, not to uid %u", (unsigned)geteuid(), (unsigned)r->peer.uid);
		return;
	}
	for (struct pool_vm *vm = pool_vms; vm < pool_vms + POOL_SLOTS; vm++) {
		if (vm->state == POOL_HANDED && vm->holder == r->peer.pid && pool_holder_alive(vm)) {
			proto_reply_err(r, PROTO_E_CONFLICT, "process %d already holds pooled VM "
			    "pid %d (one each)", (int)r->peer.pid, (int)vm->pid);
			return;
		}
		if (vm->state == POOL_READY && ready == NULL)
			ready = vm;
		booting += vm->state == POOL_BOOTING;
		held += vm->state == POOL_HANDED && vm->holder_uid == r->peer.uid &&
		    pool_holder_alive(vm);	/* a holder gone is reaped at the next tick */
	}
	if (held >= c->vmm_pool) {
		proto_reply_err(r, PROTO_E_CONFLICT, "uid %u already holds %u pooled VM(s), the pool's "
		    "size: it boots its own", (unsigned)r->peer.uid, held);
		return;
	}
	if (pool_differs(c, b, why, sizeof why) != NULL) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "%s", why);
		return;
	}
	if (ready == NULL) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "no pooled VM is ready (%u booting)", booting);
		return;
	}
	/* the uid too: a pid reused since the connect is another process */
	if (proc_stat(r->peer.pid, &ppid, &u, &g, &ready->holder_start) != 0 || u != r->peer.uid) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "process %d has gone", (int)r->peer.pid);
		return;
	}
	snprintf(gate, sizeof gate, "%s/gate", ready->dir);
	snprintf(console, sizeof console, "%s/console.log", ready->dir);
	/* the holder's now: only it (and root) may connect to the gate; QMP stays the pool's */
	if (lchown(gate, r->peer.uid, r->peer.gid) != 0) {
		proto_reply_err(r, PROTO_E_INTERNAL, "cannot give %s to uid %u: %s", gate,
		    (unsigned)r->peer.uid, strerror(errno));
		pool_kill(ready, "its gate could not be handed");
		return;
	}
	/* the console too, so that the executor's "guest console: PATH" hint can be read */
	if (lchown(console, r->peer.uid, r->peer.gid) != 0)
		log_warn("pooled VM pid %d: cannot give %s to uid %u: %s", (int)ready->pid, console,
		    (unsigned)r->peer.uid, strerror(errno));
	ready->state = POOL_HANDED;
	ready->holder = r->peer.pid;
	ready->holder_uid = r->peer.uid;
	log_info("pooled VM pid %d handed to pid %d (uid %u) for GID %s", (int)ready->pid,
	    (int)r->peer.pid, (unsigned)r->peer.uid, b->gid);
	ok = (struct msg_local_vm_take_ok){ (uint64_t)ready->pid, ready->dir, gate, console };
	proto_reply_ok(r, r->pt->reply, &ok);
}
