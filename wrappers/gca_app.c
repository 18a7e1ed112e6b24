/*
 * The job side of the `app` core service (gca_app.h). Everything happens inside the job's own calls
 * (gca_app_poll, gca_app_checkpoint): no threads, no signal handlers, so save_fn runs where the
 * job's state is consistent.
 *
 * Frames are read and written here with read()/send() on the descriptor rather than through
 * proto_sync_read/send: replies of different types arrive interleaved (an app_saved's empty "ok"
 * while waiting for local_checkpoint's checkpoint_ok), so a frame is decoded once to learn its id
 * and again with the right reply type; and send(MSG_NOSIGNAL) keeps a closed CTS socket from
 * killing the job with SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/gca_app.h"

#define APP_SAVED_TIMEOUT_MS	10000	/* the CTS's reply to app_saved */
#define APP_CHECKPOINT_TIMEOUT_MS 60000	/* the whole job-initiated checkpoint */
#define APP_ATTACH_TIMEOUT_MS	2000
#define APP_ATTACH_EVERY_MS	1000
#define APP_FRAME_TIMEOUT_MS	5000	/* the rest of a frame once its first byte is here */

static struct {
	bool			 enabled;	/* run under gca: GCA_APP_FD was set */
	struct proto_sync	*sync;		/* NULL while detached */
	char			 gid[256];
	char			 socket_path[4096];	/* GCA_CTS_SOCKET, "" if unknown */
	gca_app_save_fn		 save;
	gca_app_save_incr_fn	 save_incr;	/* gca_app_incremental, or NULL */
	void			*arg;
	uint32_t		 next_id;
	uint32_t		 saved_id;	/* our last app_saved, its reply not read yet (0: none) */
	uint64_t		 last_attach_ms;
	bool			 attach_failed;	/* said once on stderr, until it works again */
} app;

static void
app_say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gca_app: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
app_fd(void)
{
	return app.sync ? proto_sync_fd(app.sync) : -1;
}

static void
app_detach(const char *why)
{
	if (app.sync == NULL)
		return;
	app_say("lost the connection to the CTS (%s); re-attaching through %s", why,
	    app.socket_path[0] ? app.socket_path : "(GCA_CTS_SOCKET not set: cannot)");
	proto_sync_close(app.sync);
	app.sync = NULL;
	app.saved_id = 0;
	app.last_attach_ms = time_mono_ms();	/* the CTS is restarting: give it a second */
}

static int
app_send(const char *type, uint32_t id, const struct proto_type *pt, const void *body)
{
	uint8_t *frame;
	size_t len, off = 0;

	if (proto_encode(type, id, pt, body, &frame, &len) != 0)
		return -1;
	while (off < len) {
		ssize_t n = send(app_fd(), frame + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(frame);
			return -1;
		}
		off += (size_t)n;
	}
	free(frame);
	return 0;
}

/* Waits for the descriptor until deadline (monotonic ms): 1 readable, 0 timed out, -1 a signal. */
static int
app_wait_readable(uint64_t deadline)
{
	struct pollfd pfd = { .fd = app_fd(), .events = POLLIN };
	uint64_t now = time_mono_ms();
	int rc = poll(&pfd, 1, now >= deadline ? 0 : (int)(deadline - now));

	if (rc < 0)
		return errno == EINTR ? -1 : 0;
	return rc > 0;
}

static int
app_read_exact(void *buf, size_t len, uint64_t deadline)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n;
		int rc = app_wait_readable(deadline);

		if (rc == 0)
			return -1;
		if (rc < 0)
			continue;	/* a signal in the middle of a frame: finish the frame */
		if ((n = read(app_fd(), p, len)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one frame whose first byte is available. 0 with *payload (malloc'd), or -1 after having
 * detached (closed, cut short, too large: the stream cannot be trusted any more). */
static int
app_read_frame(uint8_t **payload, size_t *len)
{
	uint64_t deadline = time_mono_ms() + APP_FRAME_TIMEOUT_MS;
	uint8_t hdr[PROTO_HEADER];
	long n;

	if (app_read_exact(hdr, sizeof hdr, deadline) != 0) {
		app_detach("closed");
		return -1;
	}
	if ((n = proto_frame_length(hdr, PROTO_MAX_FRAME)) < 0) {
		app_detach("the CTS sent a frame too large");
		return -1;
	}
	if ((*payload = malloc(n ? (size_t)n : 1)) == NULL) {
		app_detach("out of memory");
		return -1;
	}
	if (app_read_exact(*payload, (size_t)n, deadline) != 0) {
		free(*payload);
		app_detach("closed in the middle of a frame");
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

void
gca_app_incremental(gca_app_save_incr_fn save_incr)
{
	app.save_incr = save_incr;
}

/*
 * Why save_fn failed, for the CTS: its errno, or when it left none (a write() cut short by a full
 * disk returns a count, not -1), the state of image_dir's filesystem if that explains it.
 */
static char *
app_save_why(const char *image_dir, int err, char *why, size_t len)
{
	struct statvfs st;

	if (err != 0)
		snprintf(why, len, "save function failed: %s", strerror(err));
	else if (statvfs(image_dir, &st) == 0 && (st.f_bavail == 0 || st.f_favail == 0))
		snprintf(why, len, "save function failed: %s (its folder's filesystem is full)",
		    strerror(ENOSPC));
	else
		snprintf(why, len, "save function failed");
	return why;
}

/* The CTS asks for the job's state: call save_fn, answer app_saved (its reply is read later). */
static void
app_serve_save(const struct msg_app_save *req)
{
	struct msg_app_saved res = { .checkpoint_id = req->checkpoint_id, .ok = true };
	char why[512];
	uint32_t id = ++app.next_id;

	errno = 0;
	if (app.save == NULL) {
		res.ok = false;
		res.error = "this job has no save function (gca_app_init was given NULL)";
	} else if (app.save_incr != NULL && req->parent_id != NULL && req->parent_dir != NULL) {
		int rc = app.save_incr(req->image_dir, req->parent_id, req->parent_dir, app.arg);
		if (rc == 1)
			res.parent = req->parent_id;	/* only what changed: an incremental image */
		else if (rc != 0)
			res.ok = false;
	} else if (app.save(req->image_dir, app.arg) != 0) {
		res.ok = false;
	}
	if (!res.ok && res.error == NULL)
		res.error = app_save_why(req->image_dir, errno, why, sizeof why);
	if (!res.ok)
		app_say("checkpoint %s: %s", req->checkpoint_id, res.error);
	if (app_send("app_saved", id, proto_type_find("app_saved"), &res) != 0) {
		app_detach("cannot send app_saved");
		return;
	}
	app.saved_id = id;
}

/*
 * Handles one frame. Returns 1 when it is the reply to want (then *reply holds it, decoded with
 * want_pt), else 0: an app_save served (*served counted), our app_saved's reply, or ignored.
 */
static int
app_handle(const uint8_t *payload, size_t len, uint32_t want, const struct proto_type *want_pt,
    struct proto_msg *reply, int *served)
{
	struct proto_msg m;
	const char *code;
	char err[256];

	if (proto_decode(payload, len, NULL, &m, &code, err, sizeof err) != 0) {
		app_say("ignored a frame from the CTS: %s", err);
		proto_msg_free(&m);
		return 0;
	}
	if (want != 0 && m.id == want && (strcmp(m.type, "ok") == 0 || strcmp(m.type, "err") == 0)) {
		proto_msg_free(&m);
		if (proto_decode(payload, len, want_pt, reply, &code, err, sizeof err) != 0) {
			/* a reply we cannot read: report it as an error reply */
			proto_msg_free(reply);
			snprintf(reply->type, sizeof reply->type, "bad");
			app_say("the CTS's reply is not readable: %s", err);
		}
		return 1;
	}
	if (strcmp(m.type, "app_save") == 0) {
		app_serve_save(m.body);
		(*served)++;
	} else if (app.saved_id != 0 && m.id == app.saved_id) {
		if (strcmp(m.type, "err") == 0) {
			const struct msg_err *e = m.body;
			app_say("the CTS refused our saved state: %s", e->msg ? e->msg : e->code);
		}
		app.saved_id = 0;
	} else {
		app_say("ignored an unexpected \"%s\" frame (id %u) from the CTS", m.type, m.id);
	}
	proto_msg_free(&m);
	return 0;
}

/*
 * Reads frames until the reply to want arrives (0, *reply filled) or deadline passes (-2), serving
 * app_save meanwhile. want 0: just serves until deadline. -1: detached, or a signal (errno EINTR,
 * only when stop_on_signal).
 */
static int
app_wait(uint32_t want, const struct proto_type *want_pt, uint64_t deadline,
    bool stop_on_signal, struct proto_msg *reply, int *served)
{
	for (;;) {
		uint8_t *payload;
		size_t len;
		int rc;

		if (app.sync == NULL)
			return -1;
		if ((rc = app_wait_readable(deadline)) == 0)
			return -2;
		if (rc < 0) {
			if (stop_on_signal) {
				errno = EINTR;
				return -1;
			}
			continue;
		}
		if (app_read_frame(&payload, &len) != 0)
			return -1;
		rc = app_handle(payload, len, want, want_pt, reply, served);
		free(payload);
		if (rc == 1)
			return 0;
		if (app.saved_id != 0 && want != app.saved_id) {
			/* we just answered an app_save: read the CTS's reply to it before going on */
			uint64_t d = time_mono_ms() + APP_SAVED_TIMEOUT_MS;
			struct proto_msg r;

			if (app_wait(app.saved_id, &proto_t_ok_empty, d, false, &r, served) == 0) {
				if (strcmp(r.type, "err") == 0) {
					const struct msg_err *e = r.body;
					app_say("the CTS refused our saved state: %s", e->msg ? e->msg : e->code);
				}
				proto_msg_free(&r);
			}
			app.saved_id = 0;
		}
	}
}

/* One request and its reply within timeout_ms, serving app_save meanwhile. 0 ok (*body owned by
 * the caller, may be NULL), -1 with err. */
static int
app_call(const char *type, const void *req, int timeout_ms, void **body, char *err, size_t errlen)
{
	const struct proto_type *pt = proto_type_find(type);
	uint32_t id = ++app.next_id;
	struct proto_msg r;
	int served = 0, rc;

	*body = NULL;
	if (app_send(type, id, pt, req) != 0) {
		app_detach("cannot send");
		snprintf(err, errlen, "the connection to the CTS was closed");
		return -1;
	}
	rc = app_wait(id, pt->reply, time_mono_ms() + (uint64_t)timeout_ms, false, &r, &served);
	if (rc != 0) {
		snprintf(err, errlen, rc == -2 ? "no answer from the CTS in %d s" :
		    "the connection to the CTS was closed", timeout_ms / 1000);
		return -1;
	}
	if (strcmp(r.type, "ok") == 0) {
		*body = r.body;
		r.body = NULL;
		proto_msg_free(&r);
		return 0;
	}
	if (strcmp(r.type, "err") == 0) {
		const struct msg_err *e = r.body;
		snprintf(err, errlen, "%s: %s", e->code ? e->code : "error", e->msg ? e->msg : "");
	} else {
		snprintf(err, errlen, "the CTS's reply to %s is not readable", type);
	}
	proto_msg_free(&r);
	return -1;
}

/* After the CTS restarted: connect to its socket again and bind the same GID and pid. */
static void
app_attach(void)
{
	struct msg_local_bind req = { .gid = app.gid, .pid = (uint64_t)getpid(), .recovery = false };
	char err[512], endpoint[sizeof app.socket_path + 8];
	void *body;

	if (app.sync != NULL || !app.enabled || app.socket_path[0] == '\0' ||
	    time_mono_ms() - app.last_attach_ms < APP_ATTACH_EVERY_MS)
		return;
	app.last_attach_ms = time_mono_ms();
	snprintf(endpoint, sizeof endpoint, "unix:%s", app.socket_path);
	if ((app.sync = proto_sync_connect(endpoint, NULL, NULL, APP_ATTACH_TIMEOUT_MS, err,
	    sizeof err)) != NULL &&
	    app_call("local_bind", &req, APP_ATTACH_TIMEOUT_MS, &body, err, sizeof err) == 0) {
		proto_body_free(proto_type_find("local_bind")->reply, body);
		app_say("re-attached to the CTS at %s", app.socket_path);
		app.attach_failed = false;
		return;
	}
	if (app.sync != NULL) {		/* connected but refused: do not print "lost" again */
		proto_sync_close(app.sync);
		app.sync = NULL;
	}
	if (!app.attach_failed)
		app_say("cannot re-attach to the CTS yet: %s (retrying every second)", err);
	app.attach_failed = true;
}

int
gca_app_init(gca_app_save_fn save, gca_app_restore_fn restore, void *arg)
{
	const char *fdenv = getenv("GCA_APP_FD"), *gid = getenv("GCA_GID");
	const char *sock = getenv("GCA_CTS_SOCKET"), *restore_dir = getenv("GCA_RESTORE_DIR");
	gca_app_save_incr_fn save_incr;
	char *end;
	long fd;
	int rc = 0;

	proto_sync_close(app.sync);	/* a second init starts over */
	save_incr = app.save_incr;	/* gca_app_incremental may come first */
	memset(&app, 0, sizeof app);
	app.save_incr = save_incr;
	app.save = save;
	app.arg = arg;
	if (fdenv == NULL || *fdenv == '\0')
		goto restore;
	fd = strtol(fdenv, &end, 10);
	if (*end != '\0' || fd < 0 || fd > 1 << 20 || fcntl((int)fd, F_GETFD) < 0) {
		app_say("GCA_APP_FD=%s is not an open descriptor", fdenv);
		return -1;
	}
	if (gid == NULL || *gid == '\0' || strlen(gid) >= sizeof app.gid) {
		app_say("GCA_APP_FD is set but GCA_GID is %s", gid ? "too long or empty" : "not set");
		return -1;
	}
	/* Programs the job starts must not hold the CTS's socket nor think they are this job. */
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	unsetenv("GCA_APP_FD");
	app.enabled = true;
	snprintf(app.gid, sizeof app.gid, "%s", gid);
	if (sock != NULL && strlen(sock) < sizeof app.socket_path)
		snprintf(app.socket_path, sizeof app.socket_path, "%s", sock);
	if ((app.sync = proto_sync_from_fd((int)fd)) == NULL) {
		app_say("out of memory");
		return -1;
	}
restore:
	if (restore_dir == NULL || *restore_dir == '\0')
		return 0;
	if (restore == NULL) {
		app_say("GCA_RESTORE_DIR is set but this job has no restore function");
		rc = -1;
	} else if ((rc = restore(restore_dir, arg)) != 0) {
		app_say("restoring from %s failed", restore_dir);
		rc = -1;
	}
	unsetenv("GCA_RESTORE_DIR");
	return rc;
}

int
gca_app_fd(void)
{
	return app_fd();
}

const char *
gca_app_gid(void)
{
	return app.enabled ? app.gid : NULL;
}

int
gca_app_poll(int timeout_ms)
{
	uint64_t deadline = time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	struct proto_msg unused;
	int served = 0;

	for (;;) {
		uint64_t now = time_mono_ms();
		int rc;

		app_attach();
		if (app.sync == NULL) {
			/* not under gca, or detached: sleep, trying to re-attach once a second */
			uint64_t until = deadline;
			if (app.enabled && app.socket_path[0] && until > now + APP_ATTACH_EVERY_MS)
				until = now + APP_ATTACH_EVERY_MS;
			if (until > now && poll(NULL, 0, (int)(until - now)) < 0 && served == 0) {
				errno = EINTR;
				return -1;
			}
		} else {
			rc = app_wait(0, NULL, deadline, true, &unused, &served);
			if (rc == -1 && app.sync != NULL)
				return served > 0 ? served : -1;	/* a signal */
		}
		if (time_mono_ms() >= deadline)
			return served;
	}
}

int
gca_app_checkpoint(char *id, size_t idlen, uint64_t *seq, char *err, size_t errlen)
{
	struct msg_local_checkpoint req = { .gid = app.gid };
	struct msg_checkpoint_ok *ok;
	void *body;

	if (!app.enabled) {
		snprintf(err, errlen, "no checkpoint service: this job was not started by gca-exec or "
		    "gca-recover (GCA_APP_FD is not set)");
		return -1;
	}
	app.last_attach_ms = 0;		/* try now rather than in a second */
	app_attach();
	if (app.sync == NULL) {
		snprintf(err, errlen, "not connected to the CTS (it may be restarting; re-attaching)");
		return -1;
	}
	if (app_call("local_checkpoint", &req, APP_CHECKPOINT_TIMEOUT_MS, &body, err, errlen) != 0)
		return -1;
	ok = body;
	if (id != NULL && idlen > 0)
		snprintf(id, idlen, "%s", ok->checkpoint_id ? ok->checkpoint_id : "");
	if (seq != NULL)
		*seq = ok->seq;
	proto_body_free(proto_type_find("local_checkpoint")->reply, body);
	return 0;
}
