/*
 * The CTS's QMP client (qmp.h).
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/core/qmp.h"

#define QMP_LINE_MAX	(1024 * 1024)	/* a longer answer is an error */

struct qmp {
	int		 fd;
	struct event	*rd, *timer;
	int		 timeout_ms;
	char		*buf;
	size_t		 len, cap;
	bool		 greeted, dead;
	char		 broken[160];	/* why nothing more can be read; "" while it can */
	int		 depth;		/* callbacks running: q is freed when it is back to 0 */
	qmp_cb		 cb;		/* who waits for the next answer */
	void		*arg;
};

static void
qmp_free(struct qmp *q)
{
	if (q->rd != NULL)
		event_free(q->rd);
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q);
}

void
qmp_close(struct qmp *q)
{
	if (q == NULL)
		return;
	if (q->depth > 0)
		q->dead = true;
	else
		qmp_free(q);
}

/* Hands the answer (or the error) to whoever waits; true if q is closed afterwards. */
static bool
qmp_deliver(struct qmp *q, const char *error, const char *reply)
{
	qmp_cb cb = q->cb;
	void *arg = q->arg;

	q->cb = NULL;
	evtimer_del(q->timer);
	if (cb == NULL)
		return false;
	q->depth++;
	cb(q, error, reply, arg);
	q->depth--;
	if (q->dead && q->depth == 0) {
		qmp_free(q);
		return true;
	}
	return q->dead;
}

static void
qmp_arm(struct qmp *q, qmp_cb cb, void *arg)
{
	struct timeval tv = { q->timeout_ms / 1000, (q->timeout_ms % 1000) * 1000 };

	q->cb = cb;
	q->arg = arg;
	evtimer_add(q->timer, &tv);
}

static void
qmp_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct qmp *q = arg;
	char why[100];

	(void)fd;
	(void)what;
	snprintf(why, sizeof why, "QEMU did not answer on QMP within %d ms", q->timeout_ms);
	qmp_deliver(q, why, NULL);
}

/* One line from QEMU; true if q is gone. */
static bool
qmp_line(struct qmp *q, char *line)
{
	char desc[512];

	if (strstr(line, "\"event\"") != NULL && strstr(line, "\"return\"") == NULL &&
	    strstr(line, "\"error\"") == NULL)
		return false;	/* STOP, RESUME, MIGRATION...: we ask for states instead */
	if (!q->greeted) {
		if (strstr(line, "\"QMP\"") == NULL)
			return qmp_deliver(q, "the socket does not speak QMP", NULL);
		q->greeted = true;
		return false;	/* qmp_capabilities was sent with the connect; its answer follows */
	}
	if (strstr(line, "\"error\"") != NULL && strstr(line, "\"return\"") == NULL) {
		if (json_str(line, "desc", desc, sizeof desc) != 0)
			snprintf(desc, sizeof desc, "%.400s", line);
		return qmp_deliver(q, desc, NULL);
	}
	return qmp_deliver(q, NULL, line);
}

/*
 * The connection cannot go on (a line too long, the socket closed): nothing more is read, and
 * whoever waits now or asks later gets why. A peer that keeps sending must not make us grow a
 * buffer or spin on a readable socket.
 */
static void
qmp_broken(struct qmp *q, const char *why)
{
	snprintf(q->broken, sizeof q->broken, "%s", why);
	event_del(q->rd);
	qmp_deliver(q, q->broken, NULL);
}

/* Room for one more recv; -1 if the line in the buffer is already longer than QMP_LINE_MAX. */
static int
qmp_room(struct qmp *q)
{
	size_t cap;
	char *buf;

	if (q->cap - q->len >= 4096)
		return 0;
	if (q->len > QMP_LINE_MAX)
		return -1;
	cap = q->cap ? q->cap * 2 : 8192;	/* at most 2 * QMP_LINE_MAX: len <= QMP_LINE_MAX here */
	if ((buf = realloc(q->buf, cap)) == NULL)
		return -1;
	q->buf = buf;
	q->cap = cap;
	return 0;
}

static void
qmp_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct qmp *q = arg;
	char *nl, why[160];
	ssize_t n;

	(void)what;
	if (qmp_room(q) != 0) {
		snprintf(why, sizeof why, "QEMU's answer is longer than %d KiB without an end of line; "
		    "connection closed", QMP_LINE_MAX / 1024);
		qmp_broken(q, why);
		return;
	}
	n = recv(fd, q->buf + q->len, q->cap - q->len - 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		snprintf(why, sizeof why, "QEMU closed the QMP socket (%s; did the VM end?)",
		    n == 0 ? "end of file" : strerror(errno));
		qmp_broken(q, why);
		return;
	}
	q->len += (size_t)n;
	q->buf[q->len] = '\0';
	while ((nl = memchr(q->buf, '\n', q->len)) != NULL) {
		size_t used = (size_t)(nl - q->buf) + 1;
		*nl = '\0';
		if (nl > q->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		if (q->buf[0] != '\0' && qmp_line(q, q->buf))
			return;		/* q was closed by a callback */
		memmove(q->buf, q->buf + used, q->len - used);
		q->len -= used;
	}
}

/*
 * The whole command in one sendmsg: answers come only after a command, so the socket's send
 * buffer is empty and a short command never blocks.
 */
static int
qmp_send(struct qmp *q, const char *json, int pass_fd)
{
	char line[4096];
	int n = snprintf(line, sizeof line, "%s\n", json);
	struct iovec iov = { line, (size_t)n };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n >= (int)sizeof line)
		return -1;
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
	return sendmsg(q->fd, &msg, MSG_NOSIGNAL) == n ? 0 : -1;
}

/*
 * The path was checked before (vmm.c), but connect resolves it again: whoever can rename in its
 * folder may have put another socket there since. The kernel says who listens on the socket we
 * are connected to (SO_PEERCRED: the process that called listen), and only QEMU itself will do.
 */
static int
qmp_check_peer(struct qmp *q, const char *path, pid_t pid, uid_t uid, char *err, size_t errlen)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		snprintf(err, errlen, "QMP socket %s: cannot tell who serves it: %s", path,
		    strerror(errno));
		return -1;
	}
	if (cred.pid != pid || cred.uid != uid) {
		snprintf(err, errlen, "QMP socket %s is served by process %d (uid %u), not by the bound "
		    "QEMU, process %d (uid %u): refused", path, (int)cred.pid, (unsigned)cred.uid,
		    (int)pid, (unsigned)uid);
		return -1;
	}
	return 0;
}

struct qmp *
qmp_open(struct event_base *base, const char *path, pid_t pid, uid_t uid, int timeout_ms,
	qmp_cb ready, void *arg, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct qmp *q;

	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "QMP socket path %s is too long", path);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	q = xcalloc(1, sizeof *q);
	q->timeout_ms = timeout_ms;
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* a unix connect does not wait for the peer's accept: it succeeds or fails at once */
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		/* refused: QEMU has bound its socket but listens only a moment later */
		snprintf(err, errlen, "cannot connect to QEMU's QMP socket %s: %s%s", path,
		    strerror(errno), errno == ECONNREFUSED ? " (is QEMU still starting?)" : "");
		qmp_free(q);
		return NULL;
	}
	if (qmp_check_peer(q, path, pid, uid, err, errlen) != 0) {
		qmp_free(q);
		return NULL;
	}
	q->rd = event_new(base, q->fd, EV_READ | EV_PERSIST, qmp_on_read, q);
	q->timer = evtimer_new(base, qmp_on_timeout, q);
	event_add(q->rd, NULL);
	/* QEMU reads this after its greeting; the one answer that follows is ready's. A QEMU that
	 * closed already (EPIPE, ECONNRESET) is told by the read side, as any close: ready hears it */
	if (qmp_send(q, "{\"execute\": \"qmp_capabilities\"}", -1) != 0 && errno != EPIPE &&
	    errno != ECONNRESET) {
		snprintf(err, errlen, "cannot write to QEMU's QMP socket %s: %s", path,
		    strerror(errno));
		qmp_free(q);
		return NULL;
	}
	qmp_arm(q, ready, arg);
	return q;
}

void
qmp_call(struct qmp *q, const char *json, int fd, qmp_cb cb, void *arg)
{
	qmp_arm(q, cb, arg);
	if (q->broken[0] != '\0')
		qmp_deliver(q, q->broken, NULL);
	else if (qmp_send(q, json, fd) != 0) {
		char why[200];
		snprintf(why, sizeof why, "cannot write to QEMU's QMP socket: %s", strerror(errno));
		qmp_deliver(q, why, NULL);
	}
}
