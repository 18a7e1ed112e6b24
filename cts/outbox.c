/*
 * The outbox (DESIGN.md, "One record path"): a record is written to STATE/outbox/<checkpoint id>
 * (whole-file, fsynced) before it is sent, and removed only when the GCS acknowledged that the
 * directory stored it. After a crash or a lost GCS, what is left is sent again; the GCS is
 * idempotent by checkpoint id, so the directory holds each record once.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cts/cts.h"

static int
outbox_path(struct cts *c, const char *id, char *out, size_t len)
{
	return snprintf(out, len, "%s/outbox/%s", c->state, id) >= (int)len ? -1 : 0;
}

/* A record from its frame (as written in the outbox), or NULL. */
static struct outbox_item *
outbox_item_from_frame(const uint8_t *frame, size_t len, char *err, size_t errlen)
{
	struct proto_msg m = { 0 };
	struct outbox_item *it;
	const char *code;

	if (len < PROTO_HEADER || proto_decode(frame + PROTO_HEADER, len - PROTO_HEADER, NULL, &m,
	    &code, err, errlen) != 0)
		return NULL;
	if (strcmp(m.type, "checkpoint_log") != 0) {
		snprintf(err, errlen, "not a checkpoint_log frame");
		proto_msg_free(&m);
		return NULL;
	}
	if ((it = calloc(1, sizeof *it)) == NULL)
		abort();
	memcpy(&it->rec, m.body, sizeof it->rec);	/* takes the fields */
	free(m.body);
	return it;
}

static void
outbox_link(struct cts *c, struct outbox_item *it)
{
	struct outbox_item **p = &c->outbox;

	while (*p != NULL)
		p = &(*p)->next;
	*p = it;
}

static void
outbox_unlink(struct cts *c, struct outbox_item *it)
{
	for (struct outbox_item **p = &c->outbox; *p != NULL; p = &(*p)->next) {
		if (*p == it) {
			*p = it->next;
			return;
		}
	}
}

static void
outbox_item_free(struct outbox_item *it)
{
	proto_body_clear(proto_type_find("checkpoint_log"), &it->rec);
	free(it);
}

int
outbox_load(struct cts *c, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *d;
	DIR *dp;
	unsigned n = 0;

	snprintf(dir, sizeof dir, "%s/outbox", c->state);
	if ((dp = opendir(dir)) == NULL) {
		snprintf(err, errlen, "outbox %s: cannot open it", dir);
		return -1;
	}
	while ((d = readdir(dp)) != NULL) {
		struct outbox_item *it;
		char *buf, why[256];
		size_t len;

		if (!id_valid(d->d_name))
			continue;	/* temp files of an interrupted write */
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		if (file_read_all(path, &buf, &len, PROTO_MAX_FRAME + PROTO_HEADER) != 0)
			continue;
		it = outbox_item_from_frame((uint8_t *)buf, len, why, sizeof why);
		free(buf);
		if (it == NULL) {
			log_error("outbox %s: %s; left in place", path, why);
			continue;
		}
		outbox_link(c, it);
		n++;
	}
	closedir(dp);
	if (n > 0)
		log_info("outbox: %u record(s) from before the restart, to send again", n);
	return 0;
}

struct outbox_item *
outbox_add(struct cts *c, const struct msg_checkpoint_log *rec)
{
	struct outbox_item *it;
	char path[PATH_MAX], why[256];
	uint8_t *frame;
	size_t len;

	if (proto_encode("checkpoint_log", 0, proto_type_find("checkpoint_log"), rec, &frame,
	    &len) != 0 || outbox_path(c, rec->checkpoint_id, path, sizeof path) != 0)
		return NULL;
	if (file_write_whole(path, frame, len, 0600) != 0) {
		log_error("outbox: cannot write %s", path);
		free(frame);
		return NULL;
	}
	/* Decoding what was written makes the item's own copy of every field. */
	it = outbox_item_from_frame(frame, len, why, sizeof why);
	free(frame);
	if (it != NULL)
		outbox_link(c, it);
	return it;
}

static void
outbox_on_ack(const char *code, const char *msg, const void *body, void *arg)
{
	struct outbox_item *it = arg;
	struct cts *c = it->cts;
	struct cts_ckpt *ck = it->ck;
	uint64_t seq = body ? ((const struct msg_seq_ok *)body)->seq : 0;
	char path[PATH_MAX], why[600];

	it->sending = false;
	it->ck = NULL;
	if (code != NULL) {
		log_warn("record %s of %s not acknowledged: %s: %s (kept in the outbox)",
		    it->rec.checkpoint_id, it->rec.gid, code, msg);
		snprintf(why, sizeof why, "the image is kept, but the GCS has not stored its record "
		    "yet (%s: %s); the CTS sends it again", code, msg);
		if (ck != NULL)
			ckpt_logged(ck, 0, code, why);
		ckpt_acked(it, 0, code, why);
		return;
	}
	log_info("record %s of %s stored: seq %llu", it->rec.checkpoint_id, it->rec.gid,
	    (unsigned long long)seq);
	if (outbox_path(c, it->rec.checkpoint_id, path, sizeof path) == 0 && unlink(path) == 0) {
		snprintf(path, sizeof path, "%s/outbox", c->state);
		file_fsync_dir(path);
	}
	outbox_unlink(c, it);
	if (ck != NULL)
		ckpt_logged(ck, seq, NULL, NULL);
	ckpt_acked(it, seq, NULL, NULL);
	outbox_item_free(it);
}

void
outbox_send(struct cts *c, struct outbox_item *it)
{
	it->sending = true;
	it->cts = c;
	gcslink_request(c, "checkpoint_log", &it->rec, outbox_on_ack, it);
}

void
outbox_flush(struct cts *c)
{
	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (!it->sending)
			outbox_send(c, it);
	}
}

struct outbox_item *
outbox_find_idem(struct cts *c, const char *gid, const char *idem_key)
{
	size_t klen = strlen(idem_key);

	for (struct outbox_item *it = c->outbox; it != NULL; it = it->next) {
		if (it->rec.gid == NULL || strcmp(it->rec.gid, gid) != 0)
			continue;
		for (size_t i = 0; i < it->rec.properties.n; i++) {
			const char *p = it->rec.properties.v[i];
			if (strncmp(p, "idem=", 5) == 0 && strlen(p + 5) == klen &&
			    memcmp(p + 5, idem_key, klen) == 0)
				return it;
		}
	}
	return NULL;
}

void
outbox_free(struct cts *c)
{
	while (c->outbox != NULL) {
		struct outbox_item *it = c->outbox;
		c->outbox = it->next;
		ckpt_acked(it, 0, PROTO_E_UNAVAILABLE, "the CTS is stopping; its record stays in the "
		    "outbox and is sent after the restart");
		outbox_item_free(it);
	}
}
