/*
 * A checkpoint asked again with its idempotency key (a broker retrying, perhaps through another
 * GCS, or after its answer was lost; docs/PROTOCOL.md): it gets the first checkpoint's result,
 * never a second dump. checkpoint.c asks idem_retry before it queues a keyed request, and tells
 * idem_acked every outcome of a record the outbox had; this file keeps what those need (the
 * retries waiting for a record, the keyed records acknowledged lately) and calls checkpoint.c
 * for nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cts/cts.h"

/* The running or waiting checkpoint of j asked with this idempotency key, if any. */
static struct cts_ckpt *
idem_find(struct cts_job *j, const char *idem_key)
{
	if (j->running != NULL && j->running->idem_key != NULL &&
	    strcmp(j->running->idem_key, idem_key) == 0)
		return j->running;
	for (struct cts_ckpt *ck = j->queue; ck != NULL; ck = ck->next)
		if (ck->idem_key != NULL && strcmp(ck->idem_key, idem_key) == 0)
			return ck;
	return NULL;
}

/*
 * Keyed records the GCS acknowledged lately. A retry the GCS forwarded because its directory
 * lookup missed the record by a moment (the record was being stored) still gets the first result.
 */
#define IDEM_ACKED_KEPT 32
struct idem_acked_rec {
	char		*gid, *idem_key, *image_name, *cts;
	char		 id[ID_LEN + 1];
	uint64_t	 seq;
};
static struct idem_acked_rec idem_acked_recs[IDEM_ACKED_KEPT];
static unsigned idem_acked_next;

static const char *
idem_rec_key(const struct msg_checkpoint_log *rec)
{
	for (size_t i = 0; i < rec->properties.n; i++)
		if (strncmp(rec->properties.v[i], "idem=", 5) == 0)
			return rec->properties.v[i] + 5;
	return NULL;
}

static void
idem_remember(const struct msg_checkpoint_log *rec, const char *idem_key, uint64_t seq)
{
	struct idem_acked_rec *a = &idem_acked_recs[idem_acked_next++ % IDEM_ACKED_KEPT];

	free(a->gid);
	free(a->idem_key);
	free(a->image_name);
	free(a->cts);
	a->gid = xstrdup(rec->gid);
	a->idem_key = xstrdup(idem_key);
	a->image_name = xstrdup(rec->image_name ? rec->image_name : "");
	a->cts = xstrdup(rec->cts ? rec->cts : "");
	snprintf(a->id, sizeof a->id, "%s", rec->checkpoint_id);
	a->seq = seq;
}

static const struct idem_acked_rec *
idem_acked_find(const char *gid, const char *idem_key)
{
	for (size_t i = 0; i < IDEM_ACKED_KEPT; i++) {
		const struct idem_acked_rec *a = &idem_acked_recs[i];
		if (a->gid != NULL && strcmp(a->gid, gid) == 0 && strcmp(a->idem_key, idem_key) == 0)
			return a;
	}
	return NULL;
}

/*
 * A do_checkpoint asked again after its checkpoint failed only for want of an acknowledgement:
 * it waits for the record in the outbox, answered with that record's next outcome (idem_acked).
 * Kept here, by checkpoint id, since the outbox knows nothing of who asks.
 */
struct idem_retries {
	char			 id[ID_LEN + 1];
	struct proto_req	*req[4];
	int			 n;
	struct idem_retries	*next;
};
static struct idem_retries *idem_retries;

static struct idem_retries *
idem_retries_find(const char *id, bool add)
{
	struct idem_retries *w;

	for (w = idem_retries; w != NULL; w = w->next)
		if (strcmp(w->id, id) == 0)
			return w;
	if (!add)
		return NULL;
	w = xcalloc(1, sizeof *w);
	snprintf(w->id, sizeof w->id, "%s", id);
	w->next = idem_retries;
	idem_retries = w;
	return w;
}

static void
idem_retries_free(struct idem_retries *w)
{
	for (struct idem_retries **p = &idem_retries; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	free(w);
}

/* The outbox's record rec (of a checkpoint or not) was stored (seq) or not (code, why): its
 * retries are answered, a keyed one remembered. */
void
idem_acked(const struct msg_checkpoint_log *rec, uint64_t seq, const char *code, const char *why)
{
	const char *key = idem_rec_key(rec);
	struct msg_checkpoint_ok ok = { rec->checkpoint_id, rec->image_name, rec->cts, seq };
	struct idem_retries *w = idem_retries_find(rec->checkpoint_id, false);

	if (code == NULL && key != NULL)
		idem_remember(rec, key, seq);
	if (w == NULL)
		return;
	for (int i = 0; i < w->n; i++) {
		if (code == NULL)
			proto_reply_ok(w->req[i], w->req[i]->pt->reply, &ok);
		else
			proto_reply_err(w->req[i], code, "checkpoint %s of %s: %s",
			    rec->checkpoint_id, rec->gid, why);
	}
	idem_retries_free(w);
}

/*
 * A do_checkpoint asked again with the key of a checkpoint already taken or under way (a broker
 * retrying, perhaps through another GCS): it gets that checkpoint's result, never a second dump.
 * Running or waiting: answered with it. Failed only because its record is not acknowledged yet
 * (the GCS link was lost; the record waits in the outbox): answered once the GCS stored it.
 * Acknowledged a moment ago: answered at once. false: no such checkpoint.
 */
bool
idem_retry(struct cts_job *j, const char *idem_key, struct proto_req *req)
{
	struct cts *c = j->cts;
	struct cts_ckpt *ck;
	struct outbox_item *it;
	struct idem_retries *w;
	const struct idem_acked_rec *a;

	if ((ck = idem_find(j, idem_key)) != NULL) {
		if (ck->nagain == (int)GCA_NITEMS(ck->again)) {
			proto_reply_err(req, PROTO_E_BUSY, "checkpoint %s of %s is already asked %d times",
			    ck->id, j->gid, ck->nagain + 1);
			return true;
		}
		log_info("checkpoint %s of %s: asked again with its key; answered when it is done",
		    ck->id, j->gid);
		ck->again[ck->nagain++] = req;
		return true;
	}
	if ((it = outbox_find_idem(c, j->gid, idem_key)) != NULL) {
		w = idem_retries_find(it->rec.checkpoint_id, true);
		if (w->n == (int)GCA_NITEMS(w->req)) {
			proto_reply_err(req, PROTO_E_BUSY, "checkpoint %s of %s is already asked %d times",
			    it->rec.checkpoint_id, j->gid, w->n + 1);
			return true;
		}
		log_info("checkpoint %s of %s: asked again with its key; its record waits in the "
		    "outbox: answered when the GCS stored it", it->rec.checkpoint_id, j->gid);
		w->req[w->n++] = req;
		if (c->registered)
			outbox_send(c, it);	/* unless in flight */
		return true;
	}
	if ((a = idem_acked_find(j->gid, idem_key)) != NULL) {
		struct msg_checkpoint_ok ok = { a->id, a->image_name, a->cts, a->seq };
		log_info("checkpoint %s of %s: asked again with its key; stored already", a->id,
		    j->gid);
		proto_reply_ok(req, req->pt->reply, &ok);
		return true;
	}
	return false;
}
