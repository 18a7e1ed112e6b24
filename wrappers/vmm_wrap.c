/*
 * What the two VMM wrappers share (vmm_wrap.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/vmm_wrap.h"
#include "wrappers/wrapper.h"

#define VMM_LINE_MAX	(256 * 1024)

/* Signals for the job; TERM, INT and HUP before the job runs end the wrapper instead. */
static const int vmm_forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };
static volatile sig_atomic_t vmm_pending[GCA_NITEMS(vmm_forwarded)];

static bool
vmm_interrupted(void)
{
	return vmm_pending[0] || vmm_pending[1] || vmm_pending[2];
}

int
vmm_rundir(struct vmm_vm *vm, const char *prog)
{
	const char *tmp = getenv("TMPDIR");

	vm->prog = prog;
	vm->gate_fd = -1;
	/* absolute: the CTS reads the QMP socket's path from QEMU's command line */
	snprintf(vm->dir, sizeof vm->dir, "%s/gca-vmm-XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp");
	if (mkdtemp(vm->dir) == NULL) {
		fprintf(stderr, "%s: cannot make a run folder %s: %s\n", prog, vm->dir, strerror(errno));
		return -1;
	}
	snprintf(vm->qmp, sizeof vm->qmp, "%s/qmp", vm->dir);
	snprintf(vm->gate, sizeof vm->gate, "%s/gate", vm->dir);
	if (strlen(vm->gate) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
		fprintf(stderr, "%s: the run folder %s is too long a path for QEMU's sockets (at most "
		    "%zu bytes): set a shorter TMPDIR\n", prog, vm->dir,
		    sizeof ((struct sockaddr_un *)0)->sun_path - 6);
		rmdir(vm->dir);
		vm->dir[0] = '\0';
		return -1;
	}
	snprintf(vm->console, sizeof vm->console, "%s/console.log", vm->dir);
	snprintf(vm->log, sizeof vm->log, "%s/qemu.log", vm->dir);
	snprintf(vm->nonce, sizeof vm->nonce, "%x%04x", (unsigned)getpid(),
	    (unsigned)(time_now_ms() & 0xffff));
	return 0;
}

bool
vmm_have(const char *prog)
{
	char *path, *save = NULL, buf[PATH_MAX];
	bool found = false;

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	for (char *d = strtok_r(path, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof buf, "%s/%s", *d ? d : ".", prog);
		found = access(buf, X_OK) == 0;
	}
	free(path);
	return found;
}

int
vmm_qcow2_check(const char *prog, const char *what, const char *path)
{
	unsigned char magic[4];
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(errno));
		return -1;
	}
	if (read(fd, magic, sizeof magic) != (ssize_t)sizeof magic ||
	    memcmp(magic, "QFI\xfb", 4) != 0) {
		fprintf(stderr, "%s: %s %s is not a qcow2 image (qemu-img convert -O qcow2 makes "
		    "one)\n", prog, what, path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
vmm_overlay(const char *prog, const char *backing, const char *path)
{
	const char *img = getenv("GCA_VMM_QEMU_IMG") ? getenv("GCA_VMM_QEMU_IMG") : "qemu-img";
	const char *const args[] = { img, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
		backing, path, NULL };
	char out[1024];
	size_t n = 0;
	ssize_t r;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, img, strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, img, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(img, xstrvdup(args));	/* the copy lives until exec, in the child only */
		fprintf(stderr, "%s is not installed here (qemu-utils)", img);
		_exit(127);
	}
	close(p[1]);
	while (n + 1 < sizeof out && ((r = read(p[0], out + n, sizeof out - n - 1)) > 0 ||
	    (r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	out[n] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	fprintf(stderr, "%s: cannot make the disk layer %s on %s: %s\n", prog, path, backing,
	    out[0] ? out : "qemu-img failed");
	return -1;
}

int
vmm_launch(struct vmm_vm *vm, char **argv)
{
	int fd;

	if ((vm->pid = fork()) < 0) {
		fprintf(stderr, "%s: cannot fork: %s\n", vm->prog, strerror(errno));
		return -1;
	}
	if (vm->pid == 0) {
		/* its own group: a ^C on the terminal reaches the job through us, not QEMU */
		setpgid(0, 0);
		if ((fd = open(vm->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

int
vmm_adopt(struct vmm_vm *vm, const char *prog, pid_t pid, const char *dir, const char *gate,
	const char *console)
{
	vm->prog = prog;
	vm->gate_fd = -1;
	vm->pid = pid;
	vm->pooled = true;
	snprintf(vm->dir, sizeof vm->dir, "%s", dir);
	snprintf(vm->gate, sizeof vm->gate, "%s", gate);
	snprintf(vm->console, sizeof vm->console, "%s", console);
	snprintf(vm->log, sizeof vm->log, "%s/qemu.log", dir);	/* the pool's: unreadable, "" */
	snprintf(vm->nonce, sizeof vm->nonce, "%x%04x", (unsigned)getpid(),
	    (unsigned)(time_now_ms() & 0xffff));
	if ((vm->pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
		fprintf(stderr, "%s: pooled VM pid %d: %s\n", prog, (int)pid, strerror(errno));
		return -1;
	}
	return 0;
}

bool
vmm_qemu_ended(struct vmm_vm *vm)
{
	if (vm->pooled) {
		struct pollfd pf = { vm->pidfd, POLLIN, 0 };
		if (!vm->ended && vm->pidfd >= 0 && poll(&pf, 1, 0) == 1) {
			vm->ended = true;
			vm->status = SIGKILL;	/* the CTS's to reap: its status is not ours to see */
		}
		return vm->ended;
	}
	if (!vm->ended && vm->pid > 0 && waitpid(vm->pid, &vm->status, WNOHANG) == vm->pid)
		vm->ended = true;
	return vm->ended;
}

void
vmm_log_tail(const struct vmm_vm *vm, char *out, size_t len)
{
	char *buf = NULL, *p;
	size_t n = 0;
	int lines = 0;

	out[0] = '\0';
	if (file_read_all(vm->log, &buf, &n, 1024 * 1024) != 0)
		return;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (p = buf + n; p > buf && lines < 2; p--)
		if (p[-1] == '\n' && ++lines == 2)
			break;
	snprintf(out, len, "%s", p);
	for (char *q = out; *q; q++)
		if (*q == '\n')
			*q = ' ';
	free(buf);
}

/* Connects to a unix socket, retrying while it does not exist yet (QEMU is starting). */
static int
vmm_connect(struct vmm_vm *vm, const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t until = time_now_ms() + (uint64_t)timeout_ms;
	int fd;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	for (;;) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		close(fd);
		if (vmm_qemu_ended(vm)) {
			char tail[400];
			vmm_log_tail(vm, tail, sizeof tail);
			snprintf(err, errlen, "QEMU ended before it opened %s: %s", path,
			    tail[0] ? tail : "no message (see its log)");
			return -1;
		}
		if (time_now_ms() > until || vmm_interrupted())
			break;
		usleep(5000);	/* QEMU opens it ~0.1 s after its start: a restore waits on this */
	}
	snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
	return -1;
}

/* One line from fd into buf (without '\n'); -1 on EOF, error or timeout. */
static int
vmm_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	struct pollfd pf = { fd, POLLIN, 0 };

	while (n + 1 < len) {
		if (poll(&pf, 1, timeout_ms) <= 0)
			return -1;
		if (read(fd, buf + n, 1) != 1)	/* QMP answers are short: bytewise is fine */
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

int
vmm_qmp_call(int fd, const char *json, int pass_fd, char *reply, size_t len, char *err,
	size_t errlen)
{
	char line[4096];
	int n = snprintf(line, sizeof line, "%s\n", json);
	struct iovec iov = { line, (size_t)n };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (pass_fd >= 0) {
		memset(&u, 0, sizeof u);
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) != n) {
		snprintf(err, errlen, "cannot write to QMP: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		if (vmm_read_line(fd, reply, len, 30000) != 0) {
			snprintf(err, errlen, "QEMU did not answer %s on QMP (did it end?)", json);
			return -1;
		}
		if (strstr(reply, "\"return\"") != NULL)
			return 0;
		if (strstr(reply, "\"error\"") != NULL) {
			if (json_str(reply, "desc", err, errlen) != 0)
				snprintf(err, errlen, "%s", reply);
			return -1;
		}
		/* an event: skipped */
	}
}

int
vmm_qmp_open(struct vmm_vm *vm, int timeout_ms, char *err, size_t errlen)
{
	char line[4096];
	int fd = vmm_connect(vm, vm->qmp, timeout_ms, err, errlen);

	if (fd < 0)
		return -1;
	if (vmm_read_line(fd, line, sizeof line, 10000) != 0 || strstr(line, "\"QMP\"") == NULL) {
		snprintf(err, errlen, "%s does not greet in QMP", vm->qmp);
		close(fd);
		return -1;
	}
	if (vmm_qmp_call(fd, "{\"execute\": \"qmp_capabilities\"}", -1, line, sizeof line, err,
	    errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the gate ---- */

static int
vmm_gate_write(struct vmm_vm *vm, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(vm->gate_fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
vmm_gate_send(struct vmm_vm *vm, const char *verb, char *const *args, char *rid, size_t ridlen)
{
	snprintf(rid, ridlen, "%s-%u", vm->nonce, ++vm->rid);
	return vmm_gate_send_id(vm, verb, rid, args);
}

int
vmm_gate_send_id(struct vmm_vm *vm, const char *verb, const char *id, char *const *args)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (f == NULL)
		return -1;
	fprintf(f, "%s %s", verb, id);
	for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
		fputc(' ', f);
		if (args[i][0] == '\0')
			fputs("%00", f);	/* an empty word would vanish */
		for (const unsigned char *p = (const unsigned char *)args[i]; *p; p++) {
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || strchr("._/=:,+@-", *p))
				fputc(*p, f);
			else
				fprintf(f, "%%%02X", *p);
		}
	}
	fputc('\n', f);
	if (fclose(f) != 0)
		return -1;
	rc = vmm_gate_write(vm, buf, len);
	free(buf);
	return rc;
}

static int
vmm_unhex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The job asked for a checkpoint of itself (gca-gate checkpoint in the guest): local_checkpoint
 * at the CTS, as the job's user, the answer back with the guest's id. The VM is saved meanwhile;
 * a VM resumed from that checkpoint hears "resumed" from its resumer instead.
 */
static void
vmm_gate_ckpt(struct vmm_vm *vm, const char *grid)
{
	const struct proto_type *pt = proto_type_find("local_checkpoint");
	struct msg_local_checkpoint req = { vm->gid };
	struct msg_checkpoint_ok *ok = NULL;
	char code[64], msg[512];
	struct proto_sync *s;

	if (vm->gid == NULL || (s = wrapper_connect(vm->prog, vm->cts)) == NULL) {
		char *why[] = { "the CTS is not reachable", NULL };
		vmm_gate_send_id(vm, "ckpt-err", grid, why);
		return;
	}
	if (proto_sync_call(s, "local_checkpoint", pt, &req, (void **)&ok, code, sizeof code, msg,
	    sizeof msg) != 0) {
		char *why[] = { msg, NULL };
		vmm_gate_send_id(vm, "ckpt-err", grid, why);
	} else {
		char ck_id[65], *id[] = { ck_id, NULL };	/* 64 bytes at most (proto/types.c) */
		snprintf(ck_id, sizeof ck_id, "%s", ok->checkpoint_id);
		vmm_gate_send_id(vm, "ckpt-ok", grid, id);
	}
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
}

/* An out, exit or ckpt line; the others are answers. */
static bool
vmm_gate_async(struct vmm_vm *vm, char *line)
{
	char *hex;

	if (strncmp(line, "ckpt ", 5) == 0) {
		vmm_gate_ckpt(vm, line + 5);
		return true;
	}

	if (strncmp(line, "out ", 4) == 0 && (hex = strchr(line + 4, ' ')) != NULL) {
		char buf[4096];
		size_t n = 0;
		for (hex++; hex[0] && hex[1]; hex += 2) {
			int a = vmm_unhex(hex[0]), b = vmm_unhex(hex[1]);
			if (a < 0 || b < 0)
				break;
			buf[n++] = (char)(a << 4 | b);
			if (n == sizeof buf) {
				(void)!write(1, buf, n);
				n = 0;
			}
		}
		if (n > 0)
			(void)!write(1, buf, n);
		return true;
	}
	if (strncmp(line, "exit ", 5) == 0) {
		char *code = strrchr(line, ' ');
		vm->job_exited = true;
		vm->job_code = atoi(code + 1);
		return true;
	}
	return false;
}

/* Room for one more read; -1 (and why, for good) if the line is already past VMM_LINE_MAX. */
static int
vmm_gate_room(struct vmm_vm *vm)
{
	size_t cap;
	char *in;

	if (vm->incap - vm->inlen >= 8192)
		return 0;
	if (vm->inlen > VMM_LINE_MAX) {
		snprintf(vm->gate_error, sizeof vm->gate_error, "the gate sent a line longer than "
		    "%d KiB: is gca-gate at the other end?", VMM_LINE_MAX / 1024);
		return -1;
	}
	cap = vm->incap ? vm->incap * 2 : 16384;	/* at most 2 * VMM_LINE_MAX */
	if ((in = realloc(vm->in, cap)) == NULL) {
		snprintf(vm->gate_error, sizeof vm->gate_error, "out of memory reading the gate");
		return -1;
	}
	vm->in = in;
	vm->incap = cap;
	return 0;
}

/*
 * The next line from the gate into *line (points into vm->in until the next call): 1 a line,
 * 0 timeout or a signal, -1 the gate cannot be read any more (vm->gate_error says why; it stays).
 */
static int
vmm_gate_line(struct vmm_vm *vm, int timeout_ms, char **line)
{
	char *nl;
	struct pollfd pf = { vm->gate_fd, POLLIN, 0 };
	ssize_t n;

	if (vm->gate_error[0] != '\0')
		return -1;
	if (vm->inused > 0) {
		memmove(vm->in, vm->in + vm->inused, vm->inlen - vm->inused);
		vm->inlen -= vm->inused;
		vm->inused = 0;
	}
	for (;;) {
		if (vm->inlen > 0 && (nl = memchr(vm->in, '\n', vm->inlen)) != NULL) {
			*nl = '\0';
			vm->inused = (size_t)(nl - vm->in) + 1;
			*line = vm->in;
			return 1;
		}
		if (vmm_gate_room(vm) != 0)
			return -1;
		n = poll(&pf, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			return 0;	/* a signal: the caller looks at it */
		if (n == 0)
			return 0;
		if ((n = read(vm->gate_fd, vm->in + vm->inlen, vm->incap - vm->inlen)) < 0 &&
		    errno == EINTR)
			return 0;
		if (n <= 0) {
			snprintf(vm->gate_error, sizeof vm->gate_error, "the gate closed (%s; did the "
			    "VM end?)", n == 0 ? "end of file" : strerror(errno));
			return -1;
		}
		vm->inlen += (size_t)n;
	}
}

int
vmm_gate_wait(struct vmm_vm *vm, const char *rid, int timeout_ms, char *out, size_t len)
{
	uint64_t until = time_now_ms() + (uint64_t)timeout_ms;
	size_t rl = strlen(rid);
	char *line, *sp;
	int rc;

	out[0] = '\0';
	while (time_now_ms() < until) {
		if ((rc = vmm_gate_line(vm, 100, &line)) < 0) {
			snprintf(out, len, "%s", vm->gate_error);
			return -1;
		}
		if (rc == 0 || vmm_gate_async(vm, line))
			continue;
		/* "VERB RID REST": an answer to a request not ours (from before a checkpoint) is
		 * dropped */
		if ((sp = strchr(line, ' ')) == NULL || strncmp(sp + 1, rid, rl) != 0 ||
		    (sp[1 + rl] != ' ' && sp[1 + rl] != '\0'))
			continue;
		snprintf(out, len, "%s", sp[1 + rl] ? sp + 2 + rl : "");
		if (strncmp(line, "err ", 4) == 0) {
			char *d = out;	/* the guest's reason is percent-encoded */
			for (char *s = out; *s; s++) {
				unsigned x;
				if (*s == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &x) == 1) {
					*d++ = (char)x;
					s += 2;
				} else
					*d++ = *s;
			}
			*d = '\0';
			return -1;
		}
		return 0;
	}
	snprintf(out, len, "no answer within %d ms", timeout_ms);
	return -1;
}

int
vmm_gate_open(struct vmm_vm *vm, int timeout_ms, char *line, size_t len, char *err, size_t errlen)
{
	uint64_t until = time_now_ms() + (uint64_t)timeout_ms;
	char rid[64];

	if ((vm->gate_fd = vmm_connect(vm, vm->gate, 10000, err, errlen)) < 0)
		return -1;
	/* the guest may still boot: hello again every second until it answers */
	while (time_now_ms() < until) {
		if (vmm_gate_send(vm, "hello", NULL, rid, sizeof rid) != 0)
			break;
		if (vmm_gate_wait(vm, rid, 1000, line, len) == 0)
			return 0;
		if (vmm_qemu_ended(vm) || vmm_interrupted() || vm->gate_error[0] != '\0')
			break;
	}
	if (vmm_interrupted()) {
		snprintf(err, errlen, "interrupted by a signal while waiting for the gate");
	} else if (vmm_qemu_ended(vm)) {
		char tail[400];
		vmm_log_tail(vm, tail, sizeof tail);
		snprintf(err, errlen, "the VM ended before its gate answered: %s",
		    tail[0] ? tail : "no message from QEMU");
	} else if (vm->gate_error[0] != '\0')
		snprintf(err, errlen, "%s", vm->gate_error);
	else
		snprintf(err, errlen, "the gate in the VM did not answer within %d s (is gca-gate "
		    "in the guest image? guest console: %s)", timeout_ms / 1000, vm->console);
	return -1;
}

/* ---- the resident loop ---- */


static void
vmm_on_signal(int sig)
{
	for (size_t i = 0; i < GCA_NITEMS(vmm_forwarded); i++)
		if (vmm_forwarded[i] == sig)
			vmm_pending[i] = 1;
}

void
vmm_signals_setup(void)
{
	struct sigaction sa = { .sa_handler = vmm_on_signal };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < GCA_NITEMS(vmm_forwarded); i++)
		sigaction(vmm_forwarded[i], &sa, NULL);
}

int
vmm_job_loop(struct vmm_vm *vm, const char *jobid)
{
	char *line, rid[64], num[16];
	int rc;

	(void)jobid;
	while (!vm->job_exited) {
		for (size_t i = 0; i < GCA_NITEMS(vmm_forwarded); i++) {
			if (!vmm_pending[i])
				continue;
			vmm_pending[i] = 0;
			snprintf(num, sizeof num, "%d", vmm_forwarded[i]);
			char *args[] = { num, NULL };
			if (vmm_gate_send(vm, "kill", args, rid, sizeof rid) != 0)
				fprintf(stderr, "%s: cannot pass signal %d to the job\n", vm->prog,
				    vmm_forwarded[i]);
		}
		if ((rc = vmm_gate_line(vm, 100, &line)) < 0) {
			/* the socket closes as QEMU dies: give it a moment to be reaped */
			for (int i = 0; i < 20 && !vmm_qemu_ended(vm); i++)
				usleep(100000);
			if (vmm_qemu_ended(vm))
				fprintf(stderr, "%s: the VM ended (QEMU %s %d) before the job\n",
				    vm->prog, WIFSIGNALED(vm->status) ? "killed by signal" :
				    "exited with status", WIFSIGNALED(vm->status) ?
				    WTERMSIG(vm->status) : WEXITSTATUS(vm->status));
			else
				fprintf(stderr, "%s: before the job ended, %s\n", vm->prog,
				    vm->gate_error);
			return -1;
		}
		if (rc == 1 && !vmm_gate_async(vm, line) && strncmp(line, "err ", 4) == 0)
			fprintf(stderr, "%s: the gate: %s\n", vm->prog, line);
	}
	return vm->job_code;
}

void
vmm_cleanup(struct vmm_vm *vm, bool keep)
{
	if (vm->gate_fd >= 0)
		close(vm->gate_fd);
	vm->gate_fd = -1;
	if (vm->pooled) {
		/* the CTS kills it and removes its folder when it sees us gone */
		if (vm->pidfd >= 0)
			close(vm->pidfd);
		vm->pidfd = -1;
		free(vm->in);
		vm->in = NULL;
		return;
	}
	if (vm->pid > 0 && !vmm_qemu_ended(vm)) {
		kill(vm->pid, SIGTERM);
		for (int i = 0; i < 50 && !vmm_qemu_ended(vm); i++)
			usleep(100000);
		if (!vm->ended) {
			kill(vm->pid, SIGKILL);
			waitpid(vm->pid, &vm->status, 0);
			vm->ended = true;
		}
	}
	if (keep)
		fprintf(stderr, "%s: the VM's logs are kept in %s\n", vm->prog, vm->dir);
	else if (vm->dir[0] != '\0')
		file_remove_tree(vm->dir);
	free(vm->in);
	vm->in = NULL;
}
