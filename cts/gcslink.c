/*
 * The CTS's one connection to its GCS (paper 5.5): it registers with everything the descriptor and
 * the probe say, beats, and re-registers whenever the GCS lost it (restart: the heartbeat comes back
 * not_found, or the connection came back up). Records and bindings travel on the same connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cts/cts.h"

static void gcslink_register(struct cts *c);

void
gcslink_request(struct cts *c, const char *type, const void *body, proto_reply_cb cb, void *arg)
{
	proto_client_request(c->gcs, type, proto_type_find(type), body, cb, arg);
}

static void
gcslink_on_registered(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts *c = arg;

	(void)body;
	c->registering = false;
	if (code != NULL) {
		log_warn("cannot register at the GCS %s: %s: %s (retrying)", c->gcs_endpoint, code, msg);
		return;
	}
	log_info("registered at the GCS %s as %s (%s%s%s)", c->gcs_endpoint, c->name, c->core->name,
	    c->unavailable[0] ? ", unavailable: " : "", c->unavailable);
	c->registered = true;
	outbox_flush(c);
	jobs_retry_unbind(c);
}

static void
gcslink_register(struct cts *c)
{
	char status[600];

	if (c->registering)
		return;
	snprintf(status, sizeof status, "%s%s", c->unavailable[0] ? "unavailable: " : "ok",
	    c->unavailable);
	free(c->reg.name);
	free(c->reg.endpoint);
	free(c->reg.exec_manager);
	free(c->reg.status);
	c->reg.name = strdup(c->name);
	c->reg.endpoint = strdup(c->endpoint);
	c->reg.exec_manager = strdup(c->exec_manager);
	c->reg.status = strdup(status);
	c->registering = true;
	gcslink_request(c, "cts_register", &c->reg, gcslink_on_registered, c);
}

static void
gcslink_on_beat(const char *code, const char *msg, const void *body, void *arg)
{
	struct cts *c = arg;

	(void)body;
	if (code == NULL)
		return;
	if (strcmp(code, PROTO_E_NOT_FOUND) == 0) {
		/* The GCS restarted (or lost us): heartbeats live in its memory only. */
		log_info("the GCS does not know this CTS: registering again");
		c->registered = false;
		gcslink_register(c);
	} else {
		log_debug("heartbeat: %s: %s", code, msg);
	}
}

void
gcslink_tick(struct cts *c)
{
	if (!c->registered) {
		gcslink_register(c);
		return;
	}
	struct msg_cts_heartbeat b = { c->name, c->reg.status };
	gcslink_request(c, "cts_heartbeat", &b, gcslink_on_beat, c);
	outbox_flush(c);
	jobs_retry_unbind(c);
}

static void
gcslink_on_state(bool up, const char *why, void *arg)
{
	struct cts *c = arg;

	if (up) {
		log_info("connected to the GCS %s", c->gcs_endpoint);
		return;
	}
	if (c->registered)
		log_warn("lost the GCS %s: %s", c->gcs_endpoint, why ? why : "closed");
	c->registered = false;
}

int
gcslink_open(struct cts *c, char *err, size_t errlen)
{
	struct proto_client_config cfg = { .endpoint = c->gcs_endpoint, .expect_role = "gcs",
		.timeout_ms = 30000, .on_state = gcslink_on_state, .arg = c };

	c->gcs = proto_client_new(c->base, &c->tls, &cfg, err, errlen);
	return c->gcs ? 0 : -1;
}

void
gcslink_close(struct cts *c)
{
	proto_client_free(c->gcs);
	c->gcs = NULL;
}
