/* cts/core/qmp.c: the CTS's QMP client against a scripted QMP server in a forked child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/core/qmp.h"

struct t {
	char		 dir[32], path[64];
	pid_t		 server;
	struct event_base *base;
	struct qmp	*q;
	int		 step, pipe[2];
	char		 got[512];
	bool		 done;
};

/*
 * The server's side: one connection, script(fd) then exit. The child listens itself: the client
 * checks who serves the socket (SO_PEERCRED names the process that called listen).
 */
static void
t_serve(struct t *t, void (*script)(int fd))
{
	int ready[2];
	char c;

	assert_int_equal(pipe(ready), 0);
	if ((t->server = fork()) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int l = socket(AF_UNIX, SOCK_STREAM, 0), fd;
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", t->path);
		if (bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 4) != 0)
			_exit(1);
		(void)!write(ready[1], "r", 1);
		fd = accept(l, NULL, NULL);
		script(fd);
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
}

static void
srv_put(int fd, const char *s)
{
	(void)!write(fd, s, strlen(s));
}

/* Reads one line (the next command); the fd passed with it, if any, in *passed. */
static void
srv_get(int fd, char *line, size_t len, int *passed)
{
	size_t n = 0;
	char c;
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;

	while (n + 1 < len) {
		struct iovec iov = { &c, 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			.msg_controllen = sizeof u.buf };
		if (recvmsg(fd, &msg, 0) != 1)
			break;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		if (passed != NULL && cm != NULL && cm->cmsg_type == SCM_RIGHTS)
			memcpy(passed, CMSG_DATA(cm), sizeof(int));
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
}

static const char greeting[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
    "\"major\": 7}}, \"capabilities\": []}}\n";

static void
script_full(int fd)
{
	char line[512];
	int passed = -1;

	srv_put(fd, greeting);
	srv_get(fd, line, sizeof line, NULL);		/* qmp_capabilities */
	srv_put(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\n");
	srv_put(fd, strstr(line, "qmp_capabilities") ? "{\"return\": {}}\n" : "{\"return\": 1}\n");
	srv_get(fd, line, sizeof line, NULL);		/* query-version */
	srv_put(fd, "{\"return\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
	    "\"package\": \"Debian\"}}\n");
	srv_get(fd, line, sizeof line, &passed);	/* getfd, with a pipe's end */
	if (passed >= 0 && strstr(line, "getfd"))
		srv_put(passed, "through");
	srv_put(fd, "{\"return\": {}}\n");
	srv_get(fd, line, sizeof line, NULL);
	srv_put(fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Size mismatch: "
	    "\\\"pc.ram\\\"\"}}\n");
	srv_get(fd, line, sizeof line, NULL);		/* until the client closes */
}

static void
on_full(struct qmp *q, const char *error, const char *reply, void *arg)
{
	struct t *t = arg;
	uint64_t major = 0;
	char buf[32] = "";

	switch (t->step++) {
	case 0:
		assert_null(error);
		qmp_call(q, "{\"execute\": \"query-version\"}", -1, on_full, t);
		break;
	case 1:
		assert_null(error);
		assert_int_equal(json_u64(reply, "major", &major), 0);
		assert_int_equal(major, 7);
		assert_int_equal(pipe(t->pipe), 0);
		qmp_call(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"x\"}}", t->pipe[1],
		    on_full, t);
		close(t->pipe[1]);
		break;
	case 2:
		assert_null(error);
		assert_int_equal(read(t->pipe[0], buf, sizeof buf - 1), 7);
		assert_string_equal(buf, "through");
		close(t->pipe[0]);
		qmp_call(q, "{\"execute\": \"migrate-incoming\"}", -1, on_full, t);
		break;
	case 3:
		assert_non_null(error);
		snprintf(t->got, sizeof t->got, "%s", error);
		qmp_close(q);		/* inside its own callback */
		t->q = NULL;
		t->done = true;
		event_base_loopbreak(t->base);
		break;
	}
}

static void
on_error(struct qmp *q, const char *error, const char *reply, void *arg)
{
	struct t *t = arg;

	(void)reply;
	if (error == NULL && t->step++ == 0) {	/* negotiated: one command never answered */
		qmp_call(q, "{\"execute\": \"stop\"}", -1, on_error, t);
		return;
	}
	snprintf(t->got, sizeof t->got, "%s", error ? error : "(no error)");
	t->done = true;
	event_base_loopbreak(t->base);
}

/* The server started, the client connected to it and the loop run until the test is done. */
static void
t_start(struct t *t, void (*script)(int fd), qmp_cb cb, int timeout_ms)
{
	char err[256];
	struct timeval limit = { 10, 0 };

	snprintf(t->dir, sizeof t->dir, "/tmp/test_qmp.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof t->path, "%s/qmp", t->dir);
	t_serve(t, script);
	t->base = event_base_new();
	t->q = qmp_open(t->base, t->path, t->server, getuid(), timeout_ms, cb, t, err, sizeof err);
	if (t->q == NULL)
		fail_msg("qmp_open: %s", err);
	event_base_loopexit(t->base, &limit);
	event_base_dispatch(t->base);
	assert_true(t->done);
}

static void
t_finish(struct t *t)
{
	if (t->q != NULL)
		qmp_close(t->q);
	event_base_free(t->base);
	kill(t->server, SIGKILL);
	waitpid(t->server, NULL, 0);
	unlink(t->path);
	rmdir(t->dir);
}

static void
t_run(struct t *t, void (*script)(int fd), qmp_cb cb, int timeout_ms)
{
	t_start(t, script, cb, timeout_ms);
	t_finish(t);
}

static void
test_conversation_events_fd_and_error(void **state)
{
	struct t t = { 0 };

	(void)state;
	t_run(&t, script_full, on_full, 5000);
	assert_string_equal(t.got, "Size mismatch: \"pc.ram\"");
}

static void
script_mute(int fd)
{
	char line[512];

	srv_put(fd, greeting);
	srv_get(fd, line, sizeof line, NULL);
	srv_put(fd, "{\"return\": {}}\n");
	srv_get(fd, line, sizeof line, NULL);
	sleep(10);
}

static void
test_timeout(void **state)
{
	struct t t = { 0 };

	(void)state;
	t_run(&t, script_mute, on_error, 300);
	assert_string_equal(t.got, "QEMU did not answer on QMP within 300 ms");
}

static void
script_close(int fd)
{
	srv_put(fd, greeting);
	close(fd);
}

static void
test_closed(void **state)
{
	struct t t = { 0 };

	(void)state;
	t_run(&t, script_close, on_error, 5000);
	assert_non_null(strstr(t.got, "closed the QMP socket"));
}

static void
script_not_qmp(int fd)
{
	char line[64];

	srv_put(fd, "SSH-2.0-OpenSSH\n");
	srv_get(fd, line, sizeof line, NULL);
}

static void
test_not_qmp(void **state)
{
	struct t t = { 0 };

	(void)state;
	t_run(&t, script_not_qmp, on_error, 5000);
	assert_string_equal(t.got, "the socket does not speak QMP");
}

static void
test_no_socket(void **state)
{
	char err[256];

	(void)state;
	assert_null(qmp_open(NULL, "/nonexistent/qmp", 1, 0, 100, on_error, NULL, err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent/qmp"));
}

/* A peer that never ends its line: a clear error at 1 MiB, the connection given up, no
 * buffer grown past 2 MiB (ASan sees an overflow), and a later command gets the same reason. */
static void
script_endless(int fd)
{
	static char junk[64 * 1024];

	memset(junk, 'x', sizeof junk);
	srv_put(fd, greeting);
	for (int i = 0; i < 3 * 16; i++)	/* 3 MiB, no newline */
		if (write(fd, junk, sizeof junk) < 0)
			break;
	sleep(10);
}

static void
on_late(struct qmp *q, const char *error, const char *reply, void *arg)
{
	struct t *t = arg;

	(void)q;
	(void)reply;
	snprintf(t->got, sizeof t->got, "%s", error ? error : "(no error)");
	t->step = 99;
}

static void
test_endless_line(void **state)
{
	struct t t = { 0 };
	char first[sizeof t.got];

	(void)state;
	t_start(&t, script_endless, on_error, 5000);
	assert_string_equal(t.got, "QEMU's answer is longer than 1024 KiB without an end of line; "
	    "connection closed");
	snprintf(first, sizeof first, "%s", t.got);
	/* the rest keeps coming: the loop runs on a while, and the client must not read it */
	struct timeval more = { 0, 300 * 1000 };
	event_base_loopexit(t.base, &more);
	event_base_dispatch(t.base);
	qmp_call(t.q, "{\"execute\": \"stop\"}", -1, on_late, &t);
	assert_int_equal(t.step, 99);		/* answered at once: nothing is read any more */
	assert_string_equal(t.got, first);
	t_finish(&t);
}

/* A socket another process serves (a user swapped the path after the CTS checked it): refused
 * before a byte is sent, naming who serves it. */
static void
test_peer_refused(void **state)
{
	struct t t = { 0 };
	char err[256], want[128];

	(void)state;
	snprintf(t.dir, sizeof t.dir, "/tmp/test_qmp.XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	snprintf(t.path, sizeof t.path, "%s/qmp", t.dir);
	t_serve(&t, script_not_qmp);
	t.base = event_base_new();
	/* the bound "QEMU" is this process, but the socket is the child's */
	assert_null(qmp_open(t.base, t.path, getpid(), getuid(), 5000, on_error, &t, err,
	    sizeof err));
	snprintf(want, sizeof want, "is served by process %d (uid %u), not by the bound QEMU, "
	    "process %d", (int)t.server, (unsigned)getuid(), (int)getpid());
	if (strstr(err, want) == NULL)
		fail_msg("%s", err);
	t_finish(&t);
}

static void
test_json(void **state)
{
	char s[32];
	uint64_t n = 0;

	(void)state;
	assert_int_equal(json_str("{\"return\": {\"status\": \"completed\"}}", "status", s,
	    sizeof s), 0);
	assert_string_equal(s, "completed");
	assert_int_equal(json_str("{\"desc\": \"a \\\"b\\\" c\"}", "desc", s, sizeof s), 0);
	assert_string_equal(s, "a \"b\" c");
	assert_int_equal(json_str("{\"desc\": 5}", "desc", s, sizeof s), -1);
	assert_int_equal(json_str("{\"desc\": \"unterminated", "desc", s, sizeof s), -1);
	assert_int_equal(json_u64("{\"base-memory\": 268435456}", "base-memory", &n), 0);
	assert_int_equal(n, 268435456);
	assert_int_equal(json_u64("{}", "base-memory", &n), -1);
	assert_int_equal(json_str("{\"status\": \"a-very-long-status-value-that-is-cut\"}",
	    "status", s, 8), 0);
	assert_string_equal(s, "a-very-");
	/* qom-list answers into one sorted set of device types */
	char dev[64] = "";
	assert_int_equal(json_qom_children("{\"return\": [{\"name\": \"type\", \"type\": "
	    "\"string\"}, {\"name\": \"device[1]\", \"type\": \"child<virtserialport>\"}, "
	    "{\"name\": \"device[0]\", \"type\": \"child<virtio-serial-pci>\"}]}", dev,
	    sizeof dev), 0);
	assert_string_equal(dev, "virtio-serial-pci,virtserialport");
	assert_int_equal(json_qom_children("{\"return\": [{\"name\": \"rng0\", \"type\": "
	    "\"child<virtio-rng-pci>\"}]}", dev, sizeof dev), 0);
	assert_string_equal(dev, "virtio-rng-pci,virtio-serial-pci,virtserialport");
	assert_int_equal(json_qom_children("{\"return\": []}", dev, sizeof dev), 0);
	assert_string_equal(dev, "virtio-rng-pci,virtio-serial-pci,virtserialport");
	assert_int_equal(json_qom_children("{\"return\": [{\"type\": \"child<a-long-one>\"}]}",
	    dev, 20), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation_events_fd_and_error),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_closed),
		cmocka_unit_test(test_not_qmp),
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_endless_line),
		cmocka_unit_test(test_peer_refused),
		cmocka_unit_test(test_json),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
