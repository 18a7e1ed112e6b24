/*
 * wrappers/vmm_wrap.c: the host side of the Virtual Node Gate against a scripted guest (a forked
 * child at the other end of a socket): answers told apart by request id, the job's output
 * streamed, and a guest that never ends its line stopped at VMM_LINE_MAX.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "wrappers/vmm_wrap.h"

/* The guest: script(fd) in a child on the other end of a socketpair; vm->gate_fd is ours. */
static pid_t
guest_start(struct vmm_vm *vm, void (*script)(int fd))
{
	int sv[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		script(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	vm->prog = "test_vmm_wrap";
	vm->gate_fd = sv[0];
	return pid;
}

static void
guest_end(struct vmm_vm *vm, pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(vm->gate_fd);
	free(vm->in);
}

static void
put(int fd, const char *s)
{
	(void)!write(fd, s, strlen(s));
}

/* Answers to requests from before a checkpoint (another wrapper's ids, a longer id of ours) come
 * first, with the job's output between them. */
static void
script_stale(int fd)
{
	put(fd, "ok 4711abcd-3 stale\nout job-1 68692c20\n");
	put(fd, "ok n-10 not-mine\nhello n-1x wrong\n");
	put(fd, "out job-1 7468657265\nok n-1 mine too\n");
	sleep(10);
}

static void
test_foreign_ids_dropped(void **state)
{
	struct vmm_vm vm = { 0 };
	char out[128], got[64] = "";
	int p[2], saved = dup(1);
	pid_t pid = guest_start(&vm, script_stale);

	(void)state;
	/* the job's output goes to our fd 1: a pipe here, to see it */
	assert_int_equal(pipe(p), 0);
	dup2(p[1], 1);
	int rc = vmm_gate_wait(&vm, "n-1", 5000, out, sizeof out);
	dup2(saved, 1);
	close(saved);
	close(p[1]);
	assert_int_equal(read(p[0], got, sizeof got - 1), 9);
	close(p[0]);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "mine too");
	assert_string_equal(got, "hi, there");
	guest_end(&vm, pid);
}

/* A guest answering hello with an endless line. */
static void
script_endless(int fd)
{
	static char junk[64 * 1024];

	memset(junk, 'x', sizeof junk);
	for (int i = 0; i < 32; i++)		/* 2 MiB, no newline */
		if (write(fd, junk, sizeof junk) < 0)
			break;
	sleep(10);
}

static void
test_endless_line(void **state)
{
	struct vmm_vm vm = { 0 };
	char out[256];
	pid_t pid = guest_start(&vm, script_endless);
	uint64_t t0 = time_now_ms();

	(void)state;
	assert_int_equal(vmm_gate_wait(&vm, "n-1", 5000, out, sizeof out), -1);
	assert_string_equal(out, "the gate sent a line longer than 256 KiB: is gca-gate at the "
	    "other end?");
	/* for good: asked again, the same answer at once, nothing more read */
	assert_int_equal(vmm_gate_wait(&vm, "n-2", 5000, out, sizeof out), -1);
	assert_non_null(strstr(out, "longer than 256 KiB"));
	assert_true(time_now_ms() - t0 < 4000);
	assert_true(vm.incap <= 2 * 256 * 1024);
	guest_end(&vm, pid);
}

/* vmm_gate_open's hello loop stops at such a gate instead of asking again until its timeout. */
static void
test_open_stops_on_endless_line(void **state)
{
	struct vmm_vm vm = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/test_vmm_wrap.XXXXXX", line[128], err[256];
	int l, ready[2];
	pid_t pid;
	uint64_t t0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(vm.gate, sizeof vm.gate, "%s/gate", dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/gate", dir);
	assert_int_equal(pipe(ready), 0);
	if ((pid = fork()) == 0) {
		l = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0)
			_exit(1);
		(void)!write(ready[1], "r", 1);
		script_endless(accept(l, NULL, NULL));
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], line, 1), 1);
	close(ready[0]);
	vm.prog = "test_vmm_wrap";
	snprintf(vm.nonce, sizeof vm.nonce, "t");
	t0 = time_now_ms();
	assert_int_equal(vmm_gate_open(&vm, 20000, line, sizeof line, err, sizeof err), -1);
	assert_true(time_now_ms() - t0 < 5000);
	assert_non_null(strstr(err, "longer than 256 KiB"));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(vm.gate_fd);
	free(vm.in);
	unlink(vm.gate);
	rmdir(dir);
}

/* A guest that goes away: the reason says so, and stays. */
static void
script_gone(int fd)
{
	put(fd, "out job-1 6869\n");
	close(fd);
}

static void
test_gate_closed(void **state)
{
	struct vmm_vm vm = { 0 };
	char out[256];
	pid_t pid = guest_start(&vm, script_gone);
	int saved = dup(1), null = open("/dev/null", O_WRONLY);

	(void)state;
	dup2(null, 1);
	assert_int_equal(vmm_gate_wait(&vm, "n-1", 5000, out, sizeof out), -1);
	dup2(saved, 1);
	close(saved);
	close(null);
	assert_string_equal(out, "the gate closed (end of file; did the VM end?)");
	guest_end(&vm, pid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_foreign_ids_dropped),
		cmocka_unit_test(test_endless_line),
		cmocka_unit_test(test_open_stops_on_endless_line),
		cmocka_unit_test(test_gate_closed),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
