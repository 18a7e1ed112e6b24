/*
 * The change feed: syncrepl refreshAndPersist on its own thread and connection. ldap_sync_poll
 * blocks, so like everything else of libldap it stays off the loop: changes are queued and handed
 * to the loop (dir_handoff.c). The poll wakes every second to notice dir_feed_close.
 */
#include <event2/event.h>
#include <ldap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

struct dir_feed_event {
	struct dir_handoff_item	 item;		/* first: handed to the loop through it */
	enum dir_change		 what;
	struct dir_entry	*entry;
};

struct dir_feed {
	struct event_base	*base;
	struct dir_handoff	*changes;	/* feed thread -> loop */
	char			*search_base, *filter;
	struct dir_config	 link;		/* how to connect and bind (a copy) */
	uint64_t		 last_said_ms;	/* feed thread: last connect failure logged */
	dir_feed_cb		 cb;
	void			*arg;
	pthread_t		 thread;
	atomic_bool		 stop;
	bool			 refreshing;	/* feed thread: before refreshDone */
};

/* A change delivered, or never delivered (the feed closed first). */
static void
dir_feed_drop(struct dir_handoff_item *it, void *arg)
{
	struct dir_feed_event *ev = (struct dir_feed_event *)it;

	(void)arg;
	dir_entry_free(ev->entry);
	free(ev);
}

static void
dir_feed_push(struct dir_feed *f, enum dir_change what, struct dir_entry *e)
{
	struct dir_feed_event *ev = xcalloc(1, sizeof *ev);

	ev->what = what;
	ev->entry = e;
	dir_handoff_push(f->changes, &ev->item);
}

static int
dir_feed_on_entry(ldap_sync_t *ls, LDAPMessage *msg, struct berval *uuid, ldap_sync_refresh_t phase)
{
	struct dir_feed *f = ls->ls_private;
	enum dir_change what;

	(void)uuid;
	switch (phase) {
	case LDAP_SYNC_CAPI_ADD:
		what = f->refreshing ? DIR_CHANGE_PRESENT : DIR_CHANGE_ADD;
		break;
	case LDAP_SYNC_CAPI_MODIFY:
		what = DIR_CHANGE_MODIFY;
		break;
	case LDAP_SYNC_CAPI_DELETE:
		what = DIR_CHANGE_DELETE;
		break;
	case LDAP_SYNC_CAPI_PRESENT:
		what = DIR_CHANGE_PRESENT;
		break;
	default:
		return 0;
	}
	dir_feed_push(f, what, dir_entry_from_ldap(ls->ls_ld, msg));
	return 0;
}

static int
dir_feed_on_intermediate(ldap_sync_t *ls, LDAPMessage *msg, BerVarray uuids,
    ldap_sync_refresh_t phase)
{
	struct dir_feed *f = ls->ls_private;

	(void)msg;
	(void)uuids;
	if (phase == LDAP_SYNC_CAPI_DONE && f->refreshing) {
		f->refreshing = false;
		dir_feed_push(f, DIR_CHANGE_REFRESHED, NULL);
	}
	return 0;
}

static int
dir_feed_on_result(ldap_sync_t *ls, LDAPMessage *msg, int refresh_deletes)
{
	(void)ls;
	(void)msg;
	(void)refresh_deletes;
	return 0;
}

static LDAP *
dir_feed_connect(struct dir_feed *f)
{
	char why[200];
	LDAP *ld;

	if (dir_link_open(&f->link, 2000, &ld, why, sizeof why) != LDAP_SUCCESS) {
		/* A bad certificate or a refused bind is worth saying; said once a minute at most
		 * (the thread retries every 2 s). */
		uint64_t now = time_mono_ms();
		if (f->last_said_ms == 0 || now - f->last_said_ms >= 60000) {
			log_warn("directory feed %s: %s; retrying", f->link.uri, why);
			f->last_said_ms = now;
		}
		return NULL;
	}
	f->last_said_ms = 0;
	return ld;
}

static void *
dir_feed_thread(void *arg)
{
	struct dir_feed *f = arg;
	int backoff_ms = 100, start_failures = 0;
	bool was_up = false;

	dir_link_thread_init();
	while (!atomic_load(&f->stop)) {
		ldap_sync_t ls;
		LDAP *ld;
		int rc, err = 0;
		bool started;

		if ((ld = dir_feed_connect(f)) == NULL) {
			for (int waited = 0; waited < backoff_ms && !atomic_load(&f->stop); waited += 50)
				usleep(50 * 1000);
			backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
			continue;
		}
		backoff_ms = 100;
		ldap_sync_initialize(&ls);
		ls.ls_base = f->search_base;
		ls.ls_scope = LDAP_SCOPE_SUBTREE;
		ls.ls_filter = f->filter;
		ls.ls_timeout = 1;	/* seconds: wake to notice dir_feed_close */
		ls.ls_search_entry = dir_feed_on_entry;
		ls.ls_intermediate = dir_feed_on_intermediate;
		ls.ls_search_result = dir_feed_on_result;
		ls.ls_private = f;
		ls.ls_ld = ld;
		f->refreshing = true;
		rc = ldap_sync_init(&ls, LDAP_SYNC_REFRESH_AND_PERSIST);
		started = rc == LDAP_SUCCESS;
		if (rc == LDAP_SUCCESS) {
			was_up = true;
			start_failures = 0;
			while (!atomic_load(&f->stop)) {
				rc = ldap_sync_poll(&ls);
				if (rc != LDAP_SUCCESS && rc != LDAP_TIMEOUT)
					break;
			}
		}
		ldap_get_option(ls.ls_ld, LDAP_OPT_RESULT_CODE, &err);
		ls.ls_base = NULL;	/* ours, freed at close */
		ls.ls_filter = NULL;
		ldap_sync_destroy(&ls, 0);	/* also unbinds ls_ld */
		if (!atomic_load(&f->stop) && was_up) {
			log_warn("directory feed %s: lost (%d %s / %d %s); reconnecting", f->link.uri, rc,
			    ldap_err2string(rc), err, ldap_err2string(err));
			dir_feed_push(f, DIR_CHANGE_LOST, NULL);
			was_up = false;
		} else if (!atomic_load(&f->stop) && start_failures++ % 30 == 0) {
			/* The sync search itself was refused (a size limit, an ACL): say so, the
			 * first time and then every 30th. */
			log_warn("directory feed %s: the sync search of %s fails (%d %s / %d %s); "
			    "retrying", f->link.uri, f->search_base, rc, ldap_err2string(rc), err,
			    ldap_err2string(err));
		}
		/* Refused at once (a provider busy with its own refresh answers so, or a limit):
		 * wait before asking again, longer each time up to 2 s; never a tight loop. */
		if (!started) {
			for (int waited = 0; waited < backoff_ms && !atomic_load(&f->stop); waited += 50)
				usleep(50 * 1000);
			backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
		}
	}
	return NULL;
}

/* Loop thread: one change, to the feed's callback. */
static void
dir_feed_on_change(struct dir_handoff_item *it, void *arg)
{
	struct dir_feed *f = arg;
	struct dir_feed_event *ev = (struct dir_feed_event *)it;

	f->cb(ev->what, ev->entry, f->arg);
	dir_feed_drop(it, f);
}

static void
dir_feed_free(struct dir_feed *f)
{
	dir_handoff_free(f->changes, dir_feed_drop);
	free(f->search_base);
	free(f->filter);
	dir_config_free(&f->link);
	free(f);
}

struct dir_feed *
dir_feed_open(struct event_base *base, const struct dir_config *c, const char *search_base,
    const char *filter, dir_feed_cb cb, void *arg, char *err, size_t errlen)
{
	struct dir_feed *f = xcalloc(1, sizeof *f);

	f->base = base;
	f->cb = cb;
	f->arg = arg;
	dir_config_copy(&f->link, c);
	f->search_base = xstrdup(search_base);
	f->filter = xstrdup(filter ? filter : "(objectClass=*)");
	if ((f->changes = dir_handoff_new(base, "directory feed", dir_feed_on_change, f, err,
	    errlen)) == NULL) {
		dir_feed_free(f);
		return NULL;
	}
	if (pthread_create(&f->thread, NULL, dir_feed_thread, f) != 0) {
		snprintf(err, errlen, "cannot start the feed's thread");
		dir_feed_free(f);
		return NULL;
	}
	return f;
}

void
dir_feed_close(struct dir_feed *f)
{
	if (f == NULL)
		return;
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	dir_feed_free(f);
}
