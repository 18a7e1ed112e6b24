/*
 * The GID -> CTS cache. It follows the directory's change feed (dir_feed: syncrepl from syncprov),
 * so a binding moved by another GCS is seen here too; it is used only while the feed is in step
 * (after its refresh, until it reports a lost connection). The directory stays the truth: a miss
 * asks it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uthash.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct cache_job {
	char		*gid;
	char		*cts;
	bool		 finished;
	UT_hash_handle	 hh;
};

static void
cache_forget(struct gcs *g, struct cache_job *j)
{
	HASH_DEL(g->cache, j);
	free(j->gid);
	free(j->cts);
	free(j);
}

/* The binding a move replaced ("from=<cts>" on the job entry), or NULL. */
static const char *
cache_from(const struct dir_entry *e)
{
	const struct dir_attr *a = dir_entry_attr(e, "gcaProperty");

	for (size_t i = 0; a != NULL && i < a->nvals; i++) {
		if (strncmp(a->vals[i], "from=", 5) == 0)
			return a->vals[i] + 5;
	}
	return NULL;
}

static void
cache_put(struct gcs *g, const struct dir_entry *e)
{
	const char *gid = dir_entry_get(e, "gcaGID"), *cts = dir_entry_get(e, "gcaCTSName");
	const char *state = dir_entry_get(e, "gcaJobState");
	struct cache_job *j;
	bool known, prev_finished;
	char *prev_cts;

	if (gid == NULL)
		return;
	HASH_FIND_STR(g->cache, gid, j);
	known = j != NULL;
	prev_finished = j != NULL && j->finished;
	prev_cts = j != NULL ? j->cts : NULL;
	if (j == NULL) {
		j = xcalloc(1, sizeof *j);
		j->gid = xstrdup(gid);
		HASH_ADD_KEYPTR(hh, g->cache, j->gid, strlen(j->gid), j);
	}
	j->cts = cts ? xstrdup(cts) : NULL;
	j->finished = state != NULL && strcmp(state, "finished") == 0;
	/* After the refresh, a change is news for subscribers unless this GCS made it; a binding made
	 * here and replaced is told even when it shows up in a refresh (relay.c). */
	relay_job(g, gid, cts, cache_from(e), j->finished, known, prev_cts, prev_finished,
	    g->cache_ready);
	free(prev_cts);
}

/* The DN of a deleted entry is all the feed gives: gcaGID=<value>,ou=jobs,... */
static void
cache_delete_dn(struct gcs *g, const char *dn)
{
	struct cache_job *j, *tmp;
	char want[1024];

	HASH_ITER(hh, g->cache, j, tmp) {
		if (dir_dn_job(g->dir, j->gid, want, sizeof want) == 0 && strcasecmp(want, dn) == 0) {
			cache_forget(g, j);
			return;
		}
	}
}

static void
cache_on_change(enum dir_change what, const struct dir_entry *e, void *arg)
{
	struct gcs *g = arg;

	switch (what) {
	case DIR_CHANGE_PRESENT:
	case DIR_CHANGE_ADD:
	case DIR_CHANGE_MODIFY:
		cache_put(g, e);
		break;
	case DIR_CHANGE_DELETE:
		cache_delete_dn(g, e->dn);
		break;
	case DIR_CHANGE_REFRESHED:
		g->cache_ready = true;
		log_info("job cache in step with the directory (%u jobs)", HASH_COUNT(g->cache));
		break;
	case DIR_CHANGE_LOST:
		g->cache_ready = false;		/* until the next refresh: ask the directory */
		break;
	}
}

int
cache_open(struct gcs *g, char *err, size_t errlen)
{
	char base[512];

	snprintf(base, sizeof base, "ou=jobs,%s", g->dircfg.base);
	g->feed = dir_feed_open(g->base, &g->dircfg, base, "(objectClass=gcaJob)", cache_on_change, g,
	    err, errlen);
	return g->feed ? 0 : -1;
}

/* The CTS holding gid, or NULL when the cache cannot say (not in step, or not there). */
const char *
cache_holder(struct gcs *g, const char *gid, bool *finished)
{
	struct cache_job *j;

	if (!g->cache_ready)
		return NULL;
	HASH_FIND_STR(g->cache, gid, j);
	if (j == NULL || j->cts == NULL)
		return NULL;
	*finished = j->finished;
	return j->cts;
}

void
cache_close(struct gcs *g)
{
	struct cache_job *j, *tmp;

	dir_feed_close(g->feed);
	HASH_ITER(hh, g->cache, j, tmp)
		cache_forget(g, j);
}
