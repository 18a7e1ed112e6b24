/*
 * subscribe/notify (paper 3.5): a broker hears of checkpoints, bindings and CTSes going up or
 * down. A subscriber that does not read is dropped when more than subscriber_backlog bytes of
 * events (1 MiB by default) have waited for it for a second, or eight times that at any moment; so
 * it never slows anyone else nor grows the GCS without bound, while a reader that keeps up survives
 * a burst (a transaction of records makes many events in one turn of the loop).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define NOTIFY_GRACE_MS 1000

void
notify_subscribe(struct proto_req *r, void *ctx)
{
	struct msg_subscribe *b = r->body;
	struct gcs *g = ctx;
	struct gcs_sub *s = xcalloc(1, sizeof *s);

	if (b->gid != NULL && !name_valid(b->gid)) {	/* it would never match: say so */
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID: %s (%s)", name_why(b->gid),
		    NAME_RULE);
		free(s);
		return;
	}
	s->conn = r->conn;
	proto_conn_ref(s->conn);
	proto_conn_keep(s->conn, true);		/* a stream a broker relies on while quiet */
	/* A fixed kernel send buffer (no autotuning up to megabytes) keeps what a subscriber leaves
	 * unread visible to the bound below. */
	{
		int fd = proto_conn_fd(s->conn);
		int size = g->subscriber_backlog < 1024 * 1024 ? (int)g->subscriber_backlog : 1024 * 1024;
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	}
	s->gid = b->gid ? xstrdup(b->gid) : NULL;
	s->next = g->subs;
	g->subs = s;
	{
		static struct log_limit said;	/* a broker may subscribe and leave in a loop */

		log_limited(&said, LOG_INFO, "%s %s subscribed%s%s", r->peer.role, r->peer.name,
		    s->gid ? " to " : "", s->gid ? s->gid : "");
	}
	proto_reply_ok(r, r->pt->reply, NULL);
}

static void
notify_free(struct gcs_sub *s)
{
	proto_conn_keep(s->conn, false);
	proto_conn_unref(s->conn);
	free(s->gid);
	free(s);
}

void
notify_drop(struct gcs *g, struct proto_conn *c)
{
	for (struct gcs_sub **sp = &g->subs; *sp != NULL;) {
		struct gcs_sub *s = *sp;
		if (s->conn == c) {
			*sp = s->next;
			notify_free(s);
		} else {
			sp = &s->next;
		}
	}
}

void
notify_event(struct gcs *g, const char *event, const char *gid, const char *cts,
    const char *checkpoint_id, uint64_t seq)
{
	struct msg_notify n = { event, gid, cts, checkpoint_id, seq,
		time_now_ms() };
	static uint32_t next_id;

	for (struct gcs_sub **sp = &g->subs; *sp != NULL;) {
		struct gcs_sub *s = *sp;
		size_t waiting = proto_conn_output(s->conn);
		bool slow = false;

		if (waiting <= g->subscriber_backlog)
			s->over_since_ms = 0;
		else if (s->over_since_ms == 0)
			s->over_since_ms = time_mono_ms();
		else
			slow = time_mono_ms() - s->over_since_ms > NOTIFY_GRACE_MS;
		if (!proto_conn_open(s->conn) || slow || waiting > 8 * g->subscriber_backlog) {
			if (proto_conn_open(s->conn)) {
				log_warn("dropping subscriber %s: it does not read its events",
				    proto_conn_peer(s->conn)->name);
				proto_conn_close(s->conn);
			}
			*sp = s->next;
			notify_free(s);
			continue;
		}
		if (s->gid == NULL || (gid != NULL && strcmp(s->gid, gid) == 0))
			proto_conn_send(s->conn, "notify", ++next_id, proto_type_find("notify"), &n);
		sp = &s->next;
	}
}
