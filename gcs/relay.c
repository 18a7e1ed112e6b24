/*
 * Events made through another GCS (issue 11). Several gca-gcs serve over one directory (or over
 * providers that replicate each other); a subscriber of any one of them hears of every checkpoint
 * and binding, whichever GCS took it. The events come from the directory's change feed (syncrepl
 * from syncprov), not from GCS-to-GCS messages: the directory already orders and replicates every
 * change, a GCS needs to know no other GCS (none to discover, none to fail over to), and a GCS at
 * another site hears of changes once they are replicated to its own provider (docs/DESIGN.md,
 * "Liveness is not a directory write": cross-GCS notifications follow the change feed).
 *
 * A change this GCS made itself is notified by its own handler at once (record.c, bind.c) and
 * must not be notified again when the feed echoes it: the handler names it here first
 * (relay_expect), and the feed's echo consumes the name instead of notifying. A name the echo never
 * consumes (the write failed, the feed was away) is forgotten after a minute.
 *
 * A binding this GCS made is also remembered for a minute (relay_hold), until this GCS unbinds
 * it: if the feed then shows the GID bound elsewhere by a change not made here (in a change or in
 * a refresh), and that change did not move it from our binding (a move names the binding it
 * replaced: gcaProperty from=<cts>, written in the same compare-and-swap), two providers took the
 * same GID at once and replication kept the other (the later write wins); the loser is told: a
 * "bind_lost" event naming the losing CTS, a warning in the log, and the callback registered with
 * relay_open (gcs.c registers moved.c's job_moved, so the losing CTS stops its copy; relay.c calls
 * no file above it). A move from our binding (a recovery or migration through another GCS) saw it,
 * so it is an ordinary "moved".
 *
 * Checkpoint records come from a feed of their own that starts a minute before the GCS's start (a
 * filter on entryCSN), so a directory of millions of records is not read at start; the job feed is the
 * cache's (cache.c), which calls relay_job. While a feed is reconnecting, events of other GCSes
 * are missed (its refresh is not replayed as events); records and bindings are never lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define RELAY_FORGET_MS	60000

/* A binding this GCS made lately: GID -> the CTS it bound it to. */
struct relay_held {
	char		*gid;
	char		*cts;
	uint64_t	 at_ms;
	UT_hash_handle	 hh;
};

struct relay_key {
	char		*key;
	uint64_t	 at_ms;
	unsigned	 count;		/* the same change expected more than once */
	UT_hash_handle	 hh;
};

static void
relay_key_make(char *out, size_t len, const char *kind, const char *a, const char *b)
{
	snprintf(out, len, "%s|%s|%s", kind, a ? a : "", b ? b : "");
}

void
relay_expect(struct gcs *g, const char *kind, const char *a, const char *b)
{
	char key[1024];
	struct relay_key *k;

	relay_key_make(key, sizeof key, kind, a, b);
	HASH_FIND_STR(g->relay, key, k);
	if (k == NULL) {
		k = xcalloc(1, sizeof *k);
		k->key = xstrdup(key);
		HASH_ADD_KEYPTR(hh, g->relay, k->key, strlen(k->key), k);
	}
	k->count++;
	k->at_ms = time_mono_ms();
}

static void
relay_key_free(struct gcs *g, struct relay_key *k)
{
	HASH_DEL(g->relay, k);
	free(k->key);
	free(k);
}

/* true: this GCS made the change (and notified it already). */
static bool
relay_take(struct gcs *g, const char *kind, const char *a, const char *b)
{
	char key[1024];
	struct relay_key *k;

	relay_key_make(key, sizeof key, kind, a, b);
	HASH_FIND_STR(g->relay, key, k);
	if (k == NULL)
		return false;
	if (--k->count == 0)
		relay_key_free(g, k);
	return true;
}

void
relay_forget(struct gcs *g, const char *kind, const char *a, const char *b)
{
	(void)relay_take(g, kind, a, b);
}

static void
relay_held_free(struct gcs *g, struct relay_held *h)
{
	HASH_DEL(g->held, h);
	free(h->gid);
	free(h->cts);
	free(h);
}

/* gid is being bound to cts here (bind.c, before the write); NULL cts: the bind failed. */
void
relay_hold(struct gcs *g, const char *gid, const char *cts)
{
	struct relay_held *h;

	HASH_FIND_STR(g->held, gid, h);
	if (h != NULL)
		relay_held_free(g, h);
	if (cts == NULL)
		return;
	h = xcalloc(1, sizeof *h);
	h->gid = xstrdup(gid);
	h->cts = xstrdup(cts);
	h->at_ms = time_mono_ms();
	HASH_ADD_KEYPTR(hh, g->held, h->gid, strlen(h->gid), h);
}

/* A job entry changed (from cache.c, with what the cache knew before); news is false in a refresh
 * (at start, or after the feed reconnected), where only a lost binding is told. */
void
relay_job(struct gcs *g, const char *gid, const char *cts, const char *from, bool finished,
    bool known, const char *prev_cts, bool prev_finished, bool news)
{
	const char *event = NULL;
	struct relay_held *h;

	if (cts == NULL)
		return;
	/* Two providers took the same GID at once (multi-provider replication): the directory kept
	 * the later binding and replaced ours. Whoever bound the loser here is told. Either the feed
	 * showed our binding and now another (a state from before our write, still on its way, is
	 * not taken for a loss), or a refresh (the feed was away when we bound) shows another. */
	HASH_FIND_STR(g->held, gid, h);
	if (h != NULL && !finished && strcmp(h->cts, cts) != 0 &&
	    (!news || (known && prev_cts != NULL && strcmp(prev_cts, h->cts) == 0))) {
		if (relay_take(g, "bind", gid, cts)) {
			relay_held_free(g, h);	/* our own move away, notified by bind.c */
			return;
		}
		if (from != NULL && strcmp(from, h->cts) == 0) {
			/* moved from our binding by one who saw it (a recovery or migration through
			 * another GCS): news, not a loss */
			relay_held_free(g, h);
		} else {
			log_warn("GID %s: the binding to CTS %s made here lost to CTS %s (bound at once "
			    "elsewhere; replication kept that one)", gid, h->cts, cts);
			notify_event(g, "bind_lost", gid, h->cts, NULL, 0);
			notify_event(g, "moved", gid, cts, NULL, 0);
			if (g->relay_lost != NULL)
				g->relay_lost(gid, h->cts, cts, g->relay_lost_arg);
			relay_held_free(g, h);
			return;
		}
	}
	if (!news)
		return;
	if (finished && !(known && prev_finished)) {
		if (!relay_take(g, "unbound", gid, cts))
			event = "unbound";
	} else if (!finished && (!known || prev_finished || prev_cts == NULL ||
	    strcmp(prev_cts, cts) != 0)) {
		if (!relay_take(g, "bind", gid, cts))
			event = known && !prev_finished && prev_cts != NULL ? "moved" : "bound";
	}
	if (event != NULL) {
		log_debug("relayed from the directory: %s %s at %s", event, gid, cts);
		notify_event(g, event, gid, cts, NULL, 0);
	}
}

static void
relay_on_record(enum dir_change what, const struct dir_entry *e, void *arg)
{
	struct gcs *g = arg;
	const char *id, *gid, *cts, *seq;

	if (what != DIR_CHANGE_ADD)
		return;		/* the refresh (at start, after a lost feed) is not news */
	if ((id = dir_entry_get(e, "gcaCheckpointId")) == NULL || relay_take(g, "checkpoint", id, NULL))
		return;
	gid = dir_entry_get(e, "gcaGID");
	cts = dir_entry_get(e, "gcaCTSName");
	seq = dir_entry_get(e, "gcaSequenceNumber");
	log_debug("relayed from the directory: checkpoint %s of %s", id, gid ? gid : "?");
	notify_event(g, "checkpoint", gid, cts, id, seq ? strtoull(seq, NULL, 10) : 0);
}

int
relay_open(struct gcs *g, relay_lost_cb on_lost, void *arg, char *err, size_t errlen)
{
	char base[512], filter[256], when[32];
	/* A minute back: the directory's clock (which stamps entryCSN) may be behind this host's; the
	 * refresh then brings at most a minute of records, not news and not notified. */
	time_t now = time(NULL) - 60;
	struct tm tm;

	/* entryCSN of changes from now on: YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod, ordered as text */
	g->relay_lost = on_lost;
	g->relay_lost_arg = arg;
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y%m%d%H%M%S", &tm);
	snprintf(filter, sizeof filter,
	    "(&(objectClass=gcaCheckpoint)(entryCSN>=%s.000000Z#000000#000#000000))", when);
	snprintf(base, sizeof base, "ou=jobs,%s", g->dircfg.base);
	g->relay_feed = dir_feed_open(g->base, &g->dircfg, base, filter, relay_on_record, g, err,
	    errlen);
	return g->relay_feed ? 0 : -1;
}

/* Once a second: names of changes whose echo did not come are forgotten. */
void
relay_tick(struct gcs *g)
{
	struct relay_key *k, *tmp;
	struct relay_held *h, *htmp;
	uint64_t now = time_mono_ms();

	HASH_ITER(hh, g->relay, k, tmp) {
		if (now - k->at_ms > RELAY_FORGET_MS)
			relay_key_free(g, k);
	}
	HASH_ITER(hh, g->held, h, htmp) {
		if (now - h->at_ms > RELAY_FORGET_MS)
			relay_held_free(g, h);
	}
}

void
relay_close(struct gcs *g)
{
	struct relay_key *k, *tmp;

	dir_feed_close(g->relay_feed);
	g->relay_feed = NULL;
	struct relay_held *h, *htmp;

	HASH_ITER(hh, g->relay, k, tmp)
		relay_key_free(g, k);
	HASH_ITER(hh, g->held, h, htmp)
		relay_held_free(g, h);
}
