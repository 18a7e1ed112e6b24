/*
 * checkpoint_log: a CTS's record of a checkpoint (paper 5.1 step 8, 5.2 step 8). Acknowledged only
 * after the directory stored it; idempotent by checkpoint id, so a CTS resending from its outbox
 * after a failure makes no second record. Only the CTS the job entry names may record: the
 * directory thread checks it with the number's reservation (ldap/dir_record.c), and a record from a
 * CTS that lost the GID (recovered elsewhere meanwhile) is answered `moved`, naming the holder.
 * A record must carry its image's sha256: without it no fetch elsewhere could be granted.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct record_op {
	struct gcs		*g;
	struct proto_req	*r;
};

static void
record_on_interval(const struct dir_result *res, void *arg)
{
	(void)arg;
	if (res->status != DIR_OK)
		log_warn("cannot write a job's checkpoint interval on its entry: %s", res->msg);
}

/* An auto interval (--checkpoint-every auto) the record carries goes on the job entry too: that is
 * where gca-ctl jobs and a broker read it (docs/ARCHITECTURE.md, "Adaptive checkpoint intervals"). */
static void
record_interval(struct gcs *g, const struct msg_checkpoint_log *b)
{
	for (size_t i = 0; i < b->properties.n; i++) {
		if (strncmp(b->properties.v[i], "interval=", 9) == 0) {
			dir_job_interval(g->dir, b->gid, b->cts, b->properties.v[i], record_on_interval,
			    NULL);
			return;
		}
	}
}

static void
record_on_stored(const struct dir_result *res, void *arg)
{
	struct record_op *op = arg;
	struct msg_checkpoint_log *b = op->r->body;
	struct msg_seq_ok ok = { res->seq };

	if (res->status != DIR_OK || res->msg[0] != '\0')
		relay_forget(op->g, "checkpoint", b->checkpoint_id, NULL);	/* no echo will come */
	if (res->status == DIR_OK) {
		log_debug("record %s of %s: seq %llu%s", b->checkpoint_id, b->gid,
		    (unsigned long long)res->seq, res->msg[0] ? " (already recorded)" : "");
		if (res->msg[0] == '\0') {
			notify_event(op->g, "checkpoint", b->gid, b->cts, b->checkpoint_id, res->seq);
			record_interval(op->g, b);
		}
		gcs_metrics_record(b->core_service, res->msg[0] ? "duplicate" : "ok");
		proto_reply_ok(op->r, op->r->pt->reply, &ok);
	} else if (res->status == DIR_NOT_FOUND) {
		gcs_metrics_record(b->core_service, PROTO_E_NOT_FOUND);
		proto_reply_err(op->r, PROTO_E_NOT_FOUND, "unknown GID %s: bind it first", b->gid);
	} else {
		gcs_metrics_record(b->core_service, gcs_dir_code(res->status));
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
	}
	free(op);
}

/* The image manifest's sha256 as the CTSes write it: 64 lower-case hex digits. */
static bool
record_sha256_valid(const char *s)
{
	return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

void
record_checkpoint_log(struct proto_req *r, void *ctx)
{
	struct msg_checkpoint_log *b = r->body;
	struct record_op *op;
	struct dir_checkpoint c;

	if (strcmp(r->peer.name, b->cts) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may not log for %s", r->peer.name, b->cts);
		return;
	}
	if (!id_valid(b->checkpoint_id) || !name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "checkpoint_id must be a lower-case UUID and gid "
		    "printable text");
		return;
	}
	if (!record_sha256_valid(b->sha256)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "sha256 must be the image manifest's sha256, "
		    "64 lower-case hex digits");
		return;
	}
	op = xcalloc(1, sizeof *op);
	op->g = ctx;
	op->r = r;
	c = (struct dir_checkpoint){
		.id = b->checkpoint_id, .gid = b->gid, .cts = b->cts, .core_service = b->core_service,
		.image_name = b->image_name, .exec_manager = b->exec_manager, .parent = b->parent,
		.sha256 = b->sha256, .kind = b->kind, .time_ms = b->time_ms, .size = b->size,
		.properties = (const char *const *)b->properties.v, .nproperties = b->properties.n,
	};
	relay_expect(op->g, "checkpoint", b->checkpoint_id, NULL);
	dir_checkpoint_log(op->g->dir, &c, record_on_stored, op);
}
