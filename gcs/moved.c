/*
 * job_moved, the GCS telling a CTS that a GID it held is bound elsewhere now, so it stops
 * checkpointing its old copy (docs/ARCHITECTURE.md, "Records only from the CTS a job is bound to"):
 * sent over the CTS's pooled connection (pool.c), asked again while the CTS does not hold the GID
 * yet. A CTS that is not told learns it from its next record, refused.
 * Called by bind.c (a move) and, through the callback gcs.c registers, by relay.c (a binding lost
 * to a concurrent one).
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

/* A job_moved on its way: asked again, a second apart, while the CTS does not hold the GID yet
 * (its own bind's answer may still be on its way to it when a concurrent binding is seen). */
struct moved {
	struct gcs	*g;
	char		 holder[256], gid[256], cts[256], local_id[64];
	int		 tries;
};

static void moved_send(struct moved *mv);

static void
moved_again(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	moved_send(arg);
}

static void
moved_on_told(const char *code, const char *msg, const void *body, void *arg)
{
	struct moved *mv = arg;
	struct timeval second = { 1, 0 };

	(void)body;
	if (code != NULL && strcmp(code, PROTO_E_NOT_FOUND) == 0 && ++mv->tries < 5 &&
	    event_base_once(mv->g->base, -1, EV_TIMEOUT, moved_again, mv, &second) == 0)
		return;
	if (code != NULL)
		log_info("GID %s: its previous CTS %s was not told of the move (%s: %s); it learns it "
		    "from its next record", mv->gid, mv->holder, code, msg);
	free(mv);
}

static void
moved_send(struct moved *mv)
{
	struct gcs_cts *c = registry_find(mv->g, mv->holder);
	struct msg_job_moved m = { mv->gid, mv->cts, mv->local_id[0] ? mv->local_id : NULL };
	char err[256];

	if (c == NULL || !c->up || c->retired || c->endpoint == NULL) {
		free(mv);
		return;
	}
	if (pool_client(mv->g, c, err, sizeof err) != 0) {
		log_info("GID %s: cannot tell CTS %s of the move: %s", mv->gid, mv->holder, err);
		free(mv);
		return;
	}
	proto_client_request(c->client, "job_moved", proto_type_find("job_moved"), &m,
	    moved_on_told, mv);
}

/*
 * The CTS that held gid before this move (or lost its binding to a concurrent one: relay.c, through the callback gcs.c registers) is
 * told at once, when this GCS knows it up, so it stops checkpointing its process (local_id, or
 * NULL: whichever it has). One that is down, or beats to another GCS, learns it when its next
 * record is refused (outbox.c).
 */
void
moved_tell(struct gcs *g, const char *holder, const char *gid, const char *cts,
    const char *local_id)
{
	struct moved *mv = xcalloc(1, sizeof *mv);

	mv->g = g;
	snprintf(mv->holder, sizeof mv->holder, "%s", holder);
	snprintf(mv->gid, sizeof mv->gid, "%s", gid);
	snprintf(mv->cts, sizeof mv->cts, "%s", cts);
	snprintf(mv->local_id, sizeof mv->local_id, "%s", local_id ? local_id : "");
	moved_send(mv);
}
