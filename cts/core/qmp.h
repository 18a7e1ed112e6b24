/*
 * cts/core/qmp.c: a QMP client on the CTS's event loop (the vmm core service). QMP is one JSON
 * object per line on a unix socket: a greeting, then `qmp_capabilities`, then commands, each
 * answered by {"return": ...} or {"error": {"class", "desc"}}; events ({"event": ...}) come in
 * between and are skipped. One command at a time; a descriptor can go with it (SCM_RIGHTS, for
 * `getfd`). Nothing blocks: every step is a callback, every wait has a timeout.
 */
#ifndef GCA_CTS_QMP_H
#define GCA_CTS_QMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct qmp;

/* error: NULL, or why (QEMU's "desc", a timeout, the socket closed); reply: the answer's line. */
typedef void (*qmp_cb)(struct qmp *q, const char *error, const char *reply, void *arg);

/*
 * Connects to path and negotiates; ready(q, NULL, greeting, arg) once commands may be sent, or
 * ready(q, why, NULL, arg) (q is then still to be closed). NULL if the socket cannot even be
 * made or is not served by process pid of user uid, the QEMU expected (why in err).
 */
struct qmp *qmp_open(struct event_base *base, const char *path, pid_t pid, uid_t uid,
	int timeout_ms, qmp_cb ready, void *arg, char *err, size_t errlen);

/* Sends one command ({"execute": ...}), with fd (>= 0) attached; cb gets its answer. */
void qmp_call(struct qmp *q, const char *json, int fd, qmp_cb cb, void *arg);

/* Closes the connection; safe inside a callback (the memory goes after it returns). */
void qmp_close(struct qmp *q);

#endif
