/*
 * Items handed from a thread that talks to the directory to the libevent loop: the directory
 * thread's answers (dir.c), a feed's changes (dir_feed.c). The thread appends under a mutex and
 * wakes the loop through an eventfd; the loop takes the whole list at once and gives each item,
 * in order, to the function the handoff was made with. Callbacks so always run on the loop.
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

struct dir_handoff {
	const char		*what;		/* for log lines: "directory", "directory feed" */
	int			 efd;
	struct event		*ev;
	pthread_mutex_t		 lock;
	struct dir_handoff_item	*head, **tail;
	dir_handoff_fn		 fn;
	void			*arg;
};

/* Loop thread: everything handed over so far, to fn. */
static void
dir_handoff_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dir_handoff *h = arg;
	struct dir_handoff_item *it, *next;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_error("%s: eventfd read: %s", h->what, strerror(errno));
	pthread_mutex_lock(&h->lock);
	it = h->head;
	h->head = NULL;
	h->tail = &h->head;
	pthread_mutex_unlock(&h->lock);
	for (; it != NULL; it = next) {
		next = it->next;
		h->fn(it, h->arg);
	}
}

struct dir_handoff *
dir_handoff_new(struct event_base *base, const char *what, dir_handoff_fn fn, void *arg,
    char *err, size_t errlen)
{
	struct dir_handoff *h = xcalloc(1, sizeof *h);

	h->what = what;
	h->fn = fn;
	h->arg = arg;
	h->tail = &h->head;
	pthread_mutex_init(&h->lock, NULL);
	if ((h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", what, strerror(errno));
		dir_handoff_free(h, NULL);
		return NULL;
	}
	h->ev = event_new(base, h->efd, EV_READ | EV_PERSIST, dir_handoff_on_ready, h);
	if (h->ev == NULL || event_add(h->ev, NULL) != 0) {
		snprintf(err, errlen, "cannot watch the %s's eventfd", what);
		dir_handoff_free(h, NULL);
		return NULL;
	}
	return h;
}

void
dir_handoff_push(struct dir_handoff *h, struct dir_handoff_item *it)
{
	uint64_t one = 1;

	it->next = NULL;
	pthread_mutex_lock(&h->lock);
	*h->tail = it;
	h->tail = &it->next;
	pthread_mutex_unlock(&h->lock);
	if (write(h->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_error("%s: eventfd write: %s", h->what, strerror(errno));
}

void
dir_handoff_free(struct dir_handoff *h, dir_handoff_fn drop)
{
	struct dir_handoff_item *it, *next;

	if (h == NULL)
		return;
	for (it = h->head; it != NULL; it = next) {
		next = it->next;
		if (drop != NULL)
			drop(it, h->arg);
	}
	if (h->ev != NULL)
		event_free(h->ev);
	if (h->efd >= 0)
		close(h->efd);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
