/*
 * Routing (paper 5.3 step 11): a broker's do_checkpoint goes to the CTS that holds the GID (the
 * binding, bind.c) over its pooled mTLS connection (pool.c), and its answer comes back after
 * the CTS's record was stored (the one record path).
 *
 * A checkpoint request is a route: the holder looked up (cache, then directory), a retry's record
 * looked for by its key, the request forwarded to the CTS, its answer relayed. Every route has a
 * deadline, the broker's timeout_ms capped by request_timeout: then the broker is answered
 * `timeout` (or the CTS's failure it was waiting on) whatever is still under way, and the route
 * is freed when that step comes back (busy: a directory or CTS callback is outstanding). A reply
 * frees the request: after one, only router_back may look at the route.
 *
 * A keyed checkpoint that the CTS may have taken without saying so (its GCS died before storing
 * the record, the connection broke after the request went out, no answer) looks for its record by
 * key for up to ROUTER_LATE_MS, within the deadline, before telling the broker it failed: the CTS
 * keeps the record in its outbox and sends it through its next GCS, so a checkpoint taken is
 * reported taken (several GCS, issue 11). A request that never reached the CTS (no connection
 * came up) was not taken: cts_down at once.
 */
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define ROUTER_LATE_MS		5000
#define ROUTER_LATE_EVERY_MS	200

struct router_route {
	struct gcs		*g;
	struct proto_req	*r;
	char			 holder[256];
	char			 holder_status[256];	/* as this GCS or the directory says */
	struct event		*deadline, *late;
	uint64_t		 late_until_ms;
	int			 timeout_ms;
	bool			 busy, replied;
	bool			 was_up;		/* the connection was up when sent */
	unsigned		 ups;			/* the CTS's conn_ups then */
	char			 code[32], msg[512];	/* told if no late record comes */
};

static void router_find_record(struct router_route *rt);
static void router_to_holder(struct router_route *rt);

static void
router_free(struct router_route *rt)
{
	if (rt->deadline != NULL)
		event_free(rt->deadline);
	if (rt->late != NULL)
		event_free(rt->late);
	free(rt);
}

/* A step came back: true if the route goes on; false if it was answered meanwhile (freed). */
static bool
router_back(struct router_route *rt)
{
	rt->busy = false;
	if (!rt->replied)
		return true;
	router_free(rt);
	return false;
}

static void
router_err(struct router_route *rt, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
router_err(struct router_route *rt, const char *code, const char *fmt, ...)
{
	char msg[800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	proto_reply_err(rt->r, code, "%s", msg);
	rt->replied = true;
	if (!rt->busy)
		router_free(rt);
}

static void
router_ok(struct router_route *rt, const struct msg_checkpoint_ok *ok)
{
	proto_reply_ok(rt->r, rt->r->pt->reply, ok);
	rt->replied = true;
	if (!rt->busy)
		router_free(rt);
}

static void
router_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct router_route *rt = arg;
	struct msg_do_checkpoint *b = rt->r->body;

	(void)fd;
	(void)what;
	if (rt->code[0] != '\0')	/* a late record did not come in time */
		router_err(rt, rt->code, "CTS %s: %s", rt->holder, rt->msg);
	else
		router_err(rt, PROTO_E_TIMEOUT, "checkpoint of %s: no answer within %d ms%s%s%s", b->gid,
		    rt->timeout_ms, rt->holder[0] ? " (CTS " : "", rt->holder, rt->holder[0] ? ")" : "");
}

static void
router_late_look(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	router_find_record(arg);
}

/* The CTS may have taken it: look for its record by key a while before telling code. */
static void
router_wait_record(struct router_route *rt, const char *code, const char *msg)
{
	struct timeval every = { 0, ROUTER_LATE_EVERY_MS * 1000 };

	snprintf(rt->code, sizeof rt->code, "%s", code);
	snprintf(rt->msg, sizeof rt->msg, "%s", msg);
	rt->late_until_ms = time_mono_ms() + ROUTER_LATE_MS;
	if ((rt->late = evtimer_new(rt->g->base, router_late_look, rt)) == NULL)
		abort();
	evtimer_add(rt->late, &every);
}

static void
router_on_record(const struct dir_result *res, void *arg)
{
	struct router_route *rt = arg;
	struct timeval every = { 0, ROUTER_LATE_EVERY_MS * 1000 };

	if (!router_back(rt))
		return;
	if (res->status == DIR_OK && res->nentries > 0) {
		const struct dir_entry *e = &res->entries[0];
		const char *seq = dir_entry_get(e, "gcaSequenceNumber");
		struct msg_checkpoint_ok ok = {
			.checkpoint_id = dir_entry_get(e, "gcaCheckpointId"),
			.image_name = dir_entry_get(e, "gcaImageName"),
			.cts = dir_entry_get(e, "gcaCTSName"),
			.seq = seq ? strtoull(seq, NULL, 10) : 0,
		};
		if (rt->code[0] != '\0')
			log_info("checkpoint of %s: its record arrived after the CTS's error (%s)",
			    ((struct msg_do_checkpoint *)rt->r->body)->gid, rt->msg);
		router_ok(rt, &ok);	/* a retry or a late record: the first result */
	} else if (rt->code[0] == '\0') {
		router_to_holder(rt);	/* no checkpoint with this key yet */
	} else if (time_mono_ms() + ROUTER_LATE_EVERY_MS < rt->late_until_ms) {
		evtimer_add(rt->late, &every);
	} else {
		router_err(rt, rt->code, "CTS %s: %s", rt->holder, rt->msg);
	}
}

/* The job's record with the request's idempotency key, if there is one yet. */
static void
router_find_record(struct router_route *rt)
{
	struct msg_do_checkpoint *b = rt->r->body;
	char dn[1024], esc[512], filter[700];

	if (dir_dn_job(rt->g->dir, b->gid, dn, sizeof dn) != 0 ||
	    dir_filter_escape(b->idem_key, esc, sizeof esc) != 0) {
		struct dir_result none = { .status = DIR_NOT_FOUND };
		rt->busy = true;
		router_on_record(&none, rt);
		return;
	}
	snprintf(filter, sizeof filter, "(&(objectClass=gcaCheckpoint)(gcaProperty=idem=%s))", esc);
	rt->busy = true;
	dir_search(rt->g->dir, dn, 1, filter, 1, router_on_record, rt);
}

static void
router_on_cts_reply(const char *code, const char *msg, const void *body, void *arg)
{
	struct router_route *rt = arg;
	struct msg_do_checkpoint *b;
	struct gcs_cts *c;
	bool answered, reached;

	if (!router_back(rt))
		return;		/* answered at the deadline: the request is gone */
	b = rt->r->body;
	if (code == NULL) {
		const struct msg_checkpoint_ok *ok = body;
		log_info("checkpoint of %s at %s: %s seq %llu", b->gid, rt->holder, ok->checkpoint_id,
		    (unsigned long long)ok->seq);
		router_ok(rt, ok);
		return;
	}
	/* An error frame comes over a live connection: the CTS itself answered (its code says
	 * what); a failure of the connection (none could be made, or it broke) means it is down. */
	c = registry_find(rt->g, rt->holder);
	answered = c != NULL && c->client != NULL && proto_client_up(c->client);
	reached = rt->was_up || (c != NULL && c->conn_ups != rt->ups);
	if (strcmp(code, PROTO_E_TIMEOUT) == 0) {
		if (b->idem_key != NULL)
			router_wait_record(rt, PROTO_E_TIMEOUT, msg);
		else
			router_err(rt, PROTO_E_TIMEOUT, "CTS %s: %s", rt->holder, msg);
	} else if (!answered && strcmp(code, PROTO_E_UNAVAILABLE) == 0) {
		if (b->idem_key != NULL && reached)
			router_wait_record(rt, PROTO_E_CTS_DOWN, msg);
		else
			router_err(rt, PROTO_E_CTS_DOWN, "CTS %s holding %s does not answer: %s",
			    rt->holder, b->gid, msg);
	} else if (b->idem_key != NULL && strncmp(rt->holder_status, "unavailable", 11) != 0 &&
	    (strcmp(code, PROTO_E_UNAVAILABLE) == 0 || strcmp(code, PROTO_E_DIRECTORY_DOWN) == 0)) {
		/* a CTS whose core service works took it, but its GCS did not store the record */
		router_wait_record(rt, code, msg);
	} else {
		router_err(rt, code, "CTS %s: %s", rt->holder, msg);
	}
}

static void
router_forward(struct router_route *rt, const char *endpoint)
{
	struct msg_do_checkpoint *b = rt->r->body;
	struct gcs_cts *c = registry_find(rt->g, rt->holder);
	struct msg_do_checkpoint fwd = *b;
	char err[256];

	if (c == NULL) {
		/* known from the directory only: not marked up, so no heartbeat is expected here */
		c = registry_touch(rt->g, rt->holder, endpoint);
	}
	if (pool_client(rt->g, c, err, sizeof err) != 0) {
		router_err(rt, PROTO_E_INTERNAL, "%s", err);
		return;
	}
	rt->was_up = proto_client_up(c->client);
	rt->ups = c->conn_ups;
	fwd.timeout_ms = (uint64_t)rt->timeout_ms;	/* the CTS may use what is left */
	rt->busy = true;
	proto_client_request(c->client, "do_checkpoint", rt->r->pt, &fwd, router_on_cts_reply, rt);
}

static void
router_on_cts_entry(const struct dir_result *res, void *arg)
{
	struct router_route *rt = arg;
	const char *ep = res->nentries ? dir_entry_get(&res->entries[0], "gcaEndpoint") : NULL;
	const char *status = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (!router_back(rt))
		return;
	if (res->status != DIR_OK || ep == NULL) {
		router_err(rt, res->status == DIR_OK || res->status == DIR_NOT_FOUND ? PROTO_E_CTS_DOWN :
		    gcs_dir_code(res->status), "CTS %s holding the GID is not known: %s", rt->holder,
		    res->msg);
		return;
	}
	if (status != NULL && (strcmp(status, "retired") == 0 || strcmp(status, "down") == 0)) {
		router_err(rt, PROTO_E_CTS_DOWN, "CTS %s holding the GID is %s", rt->holder, status);
		return;
	}
	snprintf(rt->holder_status, sizeof rt->holder_status, "%s", status ? status : "");
	router_forward(rt, ep);
}

static void
router_to_holder(struct router_route *rt)
{
	struct gcs_cts *c = registry_find(rt->g, rt->holder);
	char dn[1024];

	if (c != NULL && c->endpoint != NULL && c->up && !c->retired) {
		snprintf(rt->holder_status, sizeof rt->holder_status, "%s", c->status ? c->status : "");
		router_forward(rt, c->endpoint);
		return;
	}
	/* Not beating here: down, retired, or beating to another GCS (which keeps its status). */
	if (dir_dn_cts(rt->g->dir, rt->holder, dn, sizeof dn) != 0) {
		router_err(rt, PROTO_E_INTERNAL, "bad CTS name %s", rt->holder);
		return;
	}
	rt->busy = true;
	dir_search(rt->g->dir, dn, 0, "(objectClass=gcaTranslationService)", 1, router_on_cts_entry, rt);
}

static void
router_on_job(const struct dir_result *res, void *arg)
{
	struct router_route *rt = arg;
	struct msg_do_checkpoint *b;
	const char *holder, *state;

	if (!router_back(rt))
		return;
	b = rt->r->body;
	if (res->status != DIR_OK || res->nentries == 0) {
		if (res->status == DIR_OK || res->status == DIR_NOT_FOUND)
			router_err(rt, PROTO_E_NOT_FOUND, "unknown GID %s: no job was started with it "
			    "(gca-exec --gid)", b->gid);
		else
			router_err(rt, gcs_dir_code(res->status), "%s", res->msg);
		return;
	}
	holder = dir_entry_get(&res->entries[0], "gcaCTSName");
	state = dir_entry_get(&res->entries[0], "gcaJobState");
	if (state != NULL && strcmp(state, "finished") == 0) {
		router_err(rt, PROTO_E_NOT_FOUND, "job %s has finished", b->gid);
		return;
	}
	snprintf(rt->holder, sizeof rt->holder, "%s", holder ? holder : "");
	if (b->idem_key != NULL)
		router_find_record(rt);
	else
		router_to_holder(rt);
}

void
router_do_checkpoint(struct proto_req *r, void *ctx)
{
	struct msg_do_checkpoint *b = r->body;
	struct gcs *g = ctx;
	struct router_route *rt;
	struct timeval tv;
	const char *holder;
	bool finished = false;

	if (!name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID: %s (%s)", name_why(b->gid),
		    NAME_RULE);
		return;
	}
	rt = xcalloc(1, sizeof *rt);
	rt->g = g;
	rt->r = r;
	rt->timeout_ms = g->request_timeout_ms;
	if (b->timeout_ms > 0 && b->timeout_ms < (uint64_t)rt->timeout_ms)
		rt->timeout_ms = (int)b->timeout_ms;
	tv = (struct timeval){ rt->timeout_ms / 1000, (rt->timeout_ms % 1000) * 1000 };
	if ((rt->deadline = evtimer_new(g->base, router_on_deadline, rt)) == NULL)
		abort();
	evtimer_add(rt->deadline, &tv);
	rt->busy = true;
	/* The cache, in step with the directory's change feed, saves a directory round trip. */
	if ((holder = cache_holder(g, b->gid, &finished)) != NULL && !finished) {
		struct dir_entry e = { 0 };
		struct dir_result res = { .status = DIR_OK, .entries = &e, .nentries = 1 };

		dir_entry_add(&e, "gcaCTSName", holder);
		router_on_job(&res, rt);
		dir_entry_clear(&e);
		return;
	}
	dir_job_get(g->dir, b->gid, router_on_job, rt);
}
