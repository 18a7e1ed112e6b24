/*
 * The CTS's one connection to its GCS (paper 5.5): it registers with everything the descriptor and
 * the probe say, beats, and re-registers whenever the GCS lost it (restart: the heartbeat comes back
 * not_found, or the connection came back up). Records and bindings travel on the same connection.
 *
 * The "gcs" setting may list several GCS ("host:port,host:port", issue 11): the CTS talks to one at a
 * time and moves to the next when it loses it (or cannot reach it); it registers again there and
 * resends its outbox, and since checkpoint_log is idempotent by checkpoint id no record is lost or
 * doubled. It stays with the GCS it reached until that one fails.
 *
 * The lowest layer of the CTS's own files: what the link's events mean above it (the outbox
 * resent, unbinds retried, fencing checked) is registered once at start (cts.c, gcslink_on), so
 * this file calls none of them by name and none of them calls back into a file that calls it.
 */
#include <event2/event.h>
#include <event2/util.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cts/cts.h"

#define GCSLINK_REFUSED_RETRY_MS 60000
/* A GCS that keeps the connection open but answers nothing (stopped, hung) for this many
 * heartbeats and two seconds more is left for the next of the list, as one that closed it. */
#define GCSLINK_SILENT_BEATS	3

static void gcslink_register(struct cts *c);
static int  gcslink_connect(struct cts *c, char *err, size_t errlen);
static void gcslink_on_move(evutil_socket_t fd, short what, void *arg);

/* What the layers above do on the link's events (gcslink_on), in the order registered. */
static struct {
	int	  events;
	void	(*fn)(struct cts *c);
} gcslink_hooks[8];
static size_t gcslink_nhooks;

/* The GCS endpoints from the "gcs" setting; one CTS per process, so one list. */
static struct {
	char	**v;
	size_t	  n, at;
	size_t	  tried;		/* moves since a GCS was last reached */
	bool	  moving;		/* a move to the next is scheduled */
} gcslink_eps;

static const char *
gcslink_current(void)
{
	return gcslink_eps.n ? gcslink_eps.v[gcslink_eps.at] : "";
}

void
gcslink_on(int events, void (*fn)(struct cts *c))
{
	if (gcslink_nhooks == GCA_NITEMS(gcslink_hooks))
		log_fatal("gcslink: more than %zu hooks", GCA_NITEMS(gcslink_hooks));
	gcslink_hooks[gcslink_nhooks].events = events;
	gcslink_hooks[gcslink_nhooks++].fn = fn;
}

static void
gcslink_event(struct cts *c, int event)
{
	for (size_t i = 0; i < gcslink_nhooks; i++)
		if (gcslink_hooks[i].events & event)
			gcslink_hooks[i].fn(c);
}

void
gcslink_request(struct cts *c, const char *type, const void *body, proto_reply_cb cb, void *arg)
{
	proto_client_request(c->gcs, type, proto_type_find(type), body, cb, arg);
}

/* The GCS itself answered (ok or its error), not the client for it (no link, no answer in time). */
static bool
gcslink_answered(const char *code)
{
	return code == NULL ||
	    (strcmp(code, PROTO_E_UNAVAILABLE) != 0 && strcmp(code, PROTO_E_TIMEOUT) != 0);
}

static void
gcslink_on_registered(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts *c = arg;

	(void)body;
	c->registering = false;
	if (gcslink_answered(code))
		c->gcs_heard_ms = time_mono_ms();
	if (code != NULL && strcmp(code, PROTO_E_FORBIDDEN) == 0) {
		/* retired by an admin (or a name this certificate may not take): no heartbeat will
		 * change that, so ask only once a minute (an admin may delete the entry), and say so
		 * once */
		if (c->refused_until_ms == 0)
			log_error("the GCS %s refuses this CTS: %s; it takes no work until an admin "
			    "deletes its entry (or it runs under another name); asking once a minute",
			    gcslink_current(), msg);
		c->refused_until_ms = time_mono_ms() + GCSLINK_REFUSED_RETRY_MS;
		return;
	}
	if (code != NULL) {
		log_warn("cannot register at the GCS %s: %s: %s (retrying)", gcslink_current(), code, msg);
		return;
	}
	if (c->refused_until_ms != 0)
		log_info("the GCS %s takes this CTS again", gcslink_current());
	c->refused_until_ms = 0;
	log_info("registered at the GCS %s as %s (%s%s%s)", gcslink_current(), c->name, c->core->name,
	    c->unavailable[0] ? ", unavailable: " : "", c->unavailable);
	c->registered = true;
	c->beat_lost = false;
	c->beat_ok_ms = time_mono_ms();
	/* the outbox resent, unbinds retried, then what moved while we could not be told */
	gcslink_event(c, GCSLINK_REGISTERED);
}

static void
gcslink_register(struct cts *c)
{
	char status[600];

	if (c->registering)
		return;
	snprintf(status, sizeof status, "%s%s", c->unavailable[0] ? "unavailable: " : "ok",
	    c->unavailable);
	const struct proto_type *pt = proto_type_find("cts_register");

	proto_body_set_str(pt, &c->reg, "name", c->name);
	proto_body_set_str(pt, &c->reg, "endpoint", c->endpoint);
	proto_body_set_str(pt, &c->reg, "exec_manager", c->exec_manager);
	proto_body_set_str(pt, &c->reg, "status", status);
	c->registering = true;
	gcslink_request(c, "cts_register", &c->reg, gcslink_on_registered, c);
}

static void
gcslink_on_beat(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts *c = arg;

	(void)body;
	if (gcslink_answered(code))
		c->gcs_heard_ms = time_mono_ms();
	if (code == NULL) {
		/* A beat lost, or none for a while (the link cut, this CTS stopped): a move made
		 * meanwhile could not be told here. */
		if (c->beat_lost || (c->beat_ok_ms != 0 &&
		    time_mono_ms() - c->beat_ok_ms > 2 * (uint64_t)c->heartbeat_ms + 1000)) {
			log_info("the GCS %s answers again: asking it about this CTS's jobs",
			    gcslink_current());
			gcslink_event(c, GCSLINK_BACK);
		}
		c->beat_lost = false;
		c->beat_ok_ms = time_mono_ms();
		return;
	}
	c->beat_lost = true;
	if (strcmp(code, PROTO_E_FORBIDDEN) == 0) {
		/* retired while it ran: registering again is refused too (gcslink_on_registered) */
		c->registered = false;
		gcslink_on_registered(code, msg, NULL, c);
	} else if (strcmp(code, PROTO_E_NOT_FOUND) == 0) {
		/* The GCS restarted (or lost us): heartbeats live in its memory only. */
		log_info("the GCS does not know this CTS: registering again");
		c->registered = false;
		gcslink_register(c);
	} else {
		log_debug("heartbeat: %s: %s", code, msg);
	}
}

/* Nothing answered from this GCS (a heartbeat, a registration) for GCSLINK_SILENT_BEATS beats,
 * while another GCS is listed (and this one did not refuse the CTS: it asks again in a minute). */
static bool
gcslink_silent(struct cts *c)
{
	return gcslink_eps.n > 1 && !gcslink_eps.moving && c->refused_until_ms == 0 &&
	    c->gcs_heard_ms != 0 &&
	    time_mono_ms() - c->gcs_heard_ms >
	    GCSLINK_SILENT_BEATS * (uint64_t)c->heartbeat_ms + 2000;
}

void
gcslink_tick(struct cts *c)
{
	if (gcslink_silent(c)) {
		log_warn("the GCS %s has answered nothing for %llu ms: trying the next",
		    gcslink_current(), (unsigned long long)(time_mono_ms() - c->gcs_heard_ms));
		c->registered = false;
		gcslink_eps.moving = true;
		event_base_once(c->base, -1, EV_TIMEOUT, gcslink_on_move, c, NULL);
		return;
	}
	if (!c->registered) {
		if (c->refused_until_ms == 0 || time_mono_ms() >= c->refused_until_ms)
			gcslink_register(c);
		return;
	}
	struct msg_cts_heartbeat b = { c->name, c->reg.status };
	gcslink_request(c, "cts_heartbeat", &b, gcslink_on_beat, c);
	gcslink_event(c, GCSLINK_BEAT);
}

/* Off the client's own callback (it cannot be freed inside it): on to the next GCS of the list. */
static void
gcslink_on_move(evutil_socket_t fd, short what, void *arg)
{
	struct cts *c = arg;
	char err[256];
	const char *from = gcslink_current();

	struct proto_client *old = c->gcs;

	(void)fd;
	(void)what;
	gcslink_eps.moving = false;
	gcslink_eps.at = (gcslink_eps.at + 1) % gcslink_eps.n;
	if (gcslink_connect(c, err, sizeof err) != 0) {
		/* keep the old one (and try again when it fails again) */
		log_error("GCS %s: %s", gcslink_current(), err);
		c->gcs = old;
		return;
	}
	log_info("GCS %s is away: trying %s", from, gcslink_current());
	c->gcs_heard_ms = time_mono_ms();	/* the next GCS's time to answer starts now */
	proto_client_free(old);
	c->registered = false;
	c->registering = false;
	if (++gcslink_eps.tried < gcslink_eps.n)
		gcslink_register(c);	/* at once; once all were tried, at the next tick */
}

static void
gcslink_on_state(bool up, const char *why, void *arg)
{
	struct cts *c = arg;

	if (up) {
		log_info("connected to the GCS %s", gcslink_current());
		gcslink_eps.tried = 0;
		return;
	}
	if (c->registered)
		log_warn("lost the GCS %s: %s", gcslink_current(), why ? why : "closed");
	c->registered = false;
	if (gcslink_eps.n > 1 && !gcslink_eps.moving) {
		gcslink_eps.moving = true;
		event_base_once(c->base, -1, EV_TIMEOUT, gcslink_on_move, c, NULL);
	}
}

static int
gcslink_connect(struct cts *c, char *err, size_t errlen)
{
	struct proto_client_config cfg = { .endpoint = gcslink_current(), .expect_role = "gcs",
		.timeout_ms = 30000, .on_state = gcslink_on_state, .arg = c };

	c->gcs = proto_client_new(c->base, &c->tls, &cfg, err, errlen);
	return c->gcs ? 0 : -1;
}

int
gcslink_open(struct cts *c, char *err, size_t errlen)
{
	char *list, *tok, *save = NULL;

	list = xstrdup(c->gcs_endpoint);
	for (tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		struct sockaddr_storage ss;
		int sslen = sizeof ss;
		char **v;

		if (evutil_parse_sockaddr_port(tok, (struct sockaddr *)&ss, &sslen) != 0) {
			snprintf(err, errlen, "gcs: \"%s\" is not address:port", tok);
			free(list);
			return -1;
		}
		v = xreallocarray(gcslink_eps.v, gcslink_eps.n + 1, sizeof *v);
		v[gcslink_eps.n] = xstrdup(tok);
		gcslink_eps.v = v;
		gcslink_eps.n++;
	}
	free(list);
	if (gcslink_eps.n == 0) {
		snprintf(err, errlen, "gcs: no endpoint in \"%s\"", c->gcs_endpoint);
		return -1;
	}
	gcslink_eps.at = 0;
	c->gcs_heard_ms = time_mono_ms();	/* the first GCS's time to answer starts now */
	return gcslink_connect(c, err, errlen);
}

void
gcslink_close(struct cts *c)
{
	proto_client_free(c->gcs);
	c->gcs = NULL;
	for (size_t i = 0; i < gcslink_eps.n; i++)
		free(gcslink_eps.v[i]);
	free(gcslink_eps.v);
	gcslink_eps.v = NULL;
	gcslink_eps.n = 0;
	gcslink_nhooks = 0;
}
