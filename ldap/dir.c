/*
 * The directory handle and its thread. The libevent loop only queues operations (dir_op_submit)
 * and receives answers through a handoff (dir_handoff.c); every libldap call, blocking as they
 * are, happens on the thread. Operations that waited longer than the operation timeout fail with
 * DIR_DOWN, so a frozen or stopped slapd never hangs a caller; one that failed on an old
 * connection runs once more on a new one (dir_link.c makes it).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

const char *
dir_base(const struct dir *d)
{
	return d->suffix;
}

/* ---- the queue ---- */

struct dir_op *
dir_op_new(dir_op_fn fn, dir_cb cb, void *arg)
{
	struct dir_op *op = xcalloc(1, sizeof *op);

	op->fn = fn;
	op->cb = cb;
	op->arg = arg;
	return op;
}

const char *
dir_op_keep(struct dir_op *op, char *s)
{
	if (s == NULL)
		return NULL;
	if (op->ncopies == GCA_NITEMS(op->copies))
		log_fatal("directory: an operation carries more than %zu strings",
		    GCA_NITEMS(op->copies));
	op->copies[op->ncopies++] = s;
	return s;
}

const char *
dir_op_strdup(struct dir_op *op, const char *s)
{
	return dir_op_keep(op, s != NULL ? xstrdup(s) : NULL);
}

static void
dir_op_free(struct dir_op *op)
{
	for (size_t i = 0; i < op->ncopies; i++)
		free(op->copies[i]);
	dir_entry_free(op->entry);
	dir_entry_free(op->view);
	dir_result_clear(&op->res);
	free(op);
}

void
dir_op_submit(struct dir *d, struct dir_op *op)
{
	op->queued_ms = time_mono_ms();
	op->next = NULL;
	pthread_mutex_lock(&d->lock);
	*d->todo_tail = op;
	d->todo_tail = &op->next;
	atomic_fetch_add(&d->queued, 1);
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* Loop thread: an operation answered; its callback, then it is gone. */
static void
dir_on_answer(struct dir_handoff_item *it, void *arg)
{
	struct dir *d = arg;
	struct dir_op *op = (struct dir_op *)it;

	atomic_fetch_sub(&d->queued, 1);
	if (op->cb != NULL)
		op->cb(&op->res, op->arg);
	dir_op_free(op);
}

/* dir_close: an answer the loop never took. */
static void
dir_drop_answer(struct dir_handoff_item *it, void *arg)
{
	(void)arg;
	dir_op_free((struct dir_op *)it);
}

/*
 * A connection made before a slapd restart only fails when it is next used. So an operation that
 * failed with DIR_DOWN on such an old connection is run once more on a new one; an operation that
 * failed on a fresh connection has its answer. A write may have committed before the connection
 * dropped: sent again, a compare-and-swap reads back whether it is already made
 * (dir_do_cas_in_place).
 */
static void
dir_run_one(struct dir *d, struct dir_op *op)
{
	bool fresh = d->ld == NULL;

	op->fn(d, op);
	if (op->res.status == DIR_DOWN && !fresh && dir_link_connect(d)) {
		dir_result_clear(&op->res);
		/* the first sending may have committed before the drop: a compare-and-swap that then
		 * finds its own change reads it back as done (dir_do_cas), not as lost to someone else */
		d->resending = true;
		op->fn(d, op);
		d->resending = false;
	}
	if (op->after != NULL && op->res.status == DIR_OK)
		op->after(d, op);
}

static void
dir_run_batch(struct dir *d, dir_batch_fn fn, struct dir_op **batch, size_t n)
{
	bool fresh = d->ld == NULL, again = false;

	fn(d, batch, n);
	for (size_t i = 0; i < n; i++)
		again |= batch[i]->res.status == DIR_DOWN;
	if (!again || fresh || !dir_link_connect(d))
		return;
	for (size_t i = 0; i < n; i++)
		dir_result_clear(&batch[i]->res);
	fn(d, batch, n);
}

static void
dir_run(struct dir *d, struct dir_op *list)
{
	struct dir_op **batch = xcalloc((size_t)d->batch_max, sizeof *batch);
	size_t nbatch = 0;
	uint64_t now = time_mono_ms();

	while (list != NULL) {
		struct dir_op *op = list;

		list = op->next;
		/* An operation that waited too long fails now: its caller must not hang. */
		if (now - op->queued_ms > (uint64_t)d->op_timeout_ms) {
			dir_result_set(&op->res, DIR_DOWN,
			    "directory unavailable: no answer from %s within %d ms%s%s", d->link.uri,
			    d->op_timeout_ms, d->down_reason[0] ? ": " : "", d->down_reason);
			dir_handoff_push(d->answers, &op->answered);
			continue;
		}
		if (op->batch != NULL) {
			batch[nbatch++] = op;
			if (nbatch == (size_t)d->batch_max || list == NULL || list->batch != op->batch) {
				dir_run_batch(d, op->batch, batch, nbatch);
				for (size_t i = 0; i < nbatch; i++)
					dir_handoff_push(d->answers, &batch[i]->answered);
				nbatch = 0;
				now = time_mono_ms();
			}
			continue;
		}
		dir_run_one(d, op);
		dir_handoff_push(d->answers, &op->answered);
		now = time_mono_ms();
	}
	free(batch);
}

static void *
dir_thread(void *arg)
{
	struct dir *d = arg;

	dir_link_thread_init();
	for (;;) {
		struct dir_op *list;

		pthread_mutex_lock(&d->lock);
		while (d->todo == NULL && !d->stop)
			pthread_cond_wait(&d->cond, &d->lock);
		if (d->stop) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		list = d->todo;
		d->todo = NULL;
		d->todo_tail = &d->todo;
		pthread_mutex_unlock(&d->lock);
		dir_run(d, list);
	}
	dir_link_drop(d, "closed");
	return NULL;
}

/* The thread is gone (or was never started): what is left, answers never delivered too. */
static void
dir_free(struct dir *d)
{
	dir_handoff_free(d->answers, dir_drop_answer);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->suffix);
	dir_config_free(&d->link);
	free(d);
}

struct dir *
dir_open(struct event_base *base, const struct dir_config *c, char *err, size_t errlen)
{
	struct dir *d = xcalloc(1, sizeof *d);

	d->base = base;
	d->suffix = xstrdup(c->base ? c->base : "o=gca");
	dir_config_copy(&d->link, c);
	d->op_timeout_ms = c->op_timeout_ms > 0 ? c->op_timeout_ms : 10000;
	d->batch_max = c->batch_max > 0 ? c->batch_max : 256;
	d->transactions = c->transactions;
	d->todo_tail = &d->todo;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	if ((d->answers = dir_handoff_new(base, "directory", dir_on_answer, d, err, errlen)) == NULL)
		goto fail;
	if (pthread_create(&d->thread, NULL, dir_thread, d) != 0) {
		snprintf(err, errlen, "cannot start the directory thread");
		goto fail;
	}
	return d;
fail:
	dir_free(d);
	return NULL;
}

void
dir_close(struct dir *d)
{
	struct dir_op *op, *next;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	for (op = d->todo; op != NULL; op = next) {
		next = op->next;
		dir_op_free(op);
	}
	dir_free(d);
}

size_t
dir_queued(struct dir *d)
{
	return atomic_load(&d->queued);
}

bool
dir_connected(struct dir *d)
{
	return atomic_load(&d->connected);
}
