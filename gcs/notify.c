/*
 * subscribe/notify (paper 3.5): a broker hears of checkpoints, bindings and CTSes going up or
 * down. A subscriber that does not read is dropped once 1 MiB of events waits for it, so it never
 * slows anyone else.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define NOTIFY_MAX_BACKLOG (1024 * 1024)

void
notify_subscribe(struct proto_req *r, void *ctx)
{
	struct msg_subscribe *b = r->body;
	struct gcs *g = ctx;
	struct gcs_sub *s = calloc(1, sizeof *s);

	if (s == NULL)
		abort();
	s->conn = r->conn;
	proto_conn_ref(s->conn);
	s->gid = b->gid ? strdup(b->gid) : NULL;
	s->next = g->subs;
	g->subs = s;
	log_info("%s %s subscribed%s%s", r->peer.role, r->peer.name, s->gid ? " to " : "",
	    s->gid ? s->gid : "");
	proto_reply_ok(r, r->pt->reply, NULL);
}

static void
notify_free(struct gcs_sub *s)
{
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
	struct msg_notify n = { (char *)event, (char *)gid, (char *)cts, (char *)checkpoint_id, seq,
		time_now_ms() };
	static uint32_t next_id;

	for (struct gcs_sub **sp = &g->subs; *sp != NULL;) {
		struct gcs_sub *s = *sp;

		if (!proto_conn_open(s->conn) || proto_conn_output(s->conn) > NOTIFY_MAX_BACKLOG) {
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
