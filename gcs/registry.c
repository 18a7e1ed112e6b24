/*
 * The registry of CTSes and checkpointer classes (paper 3.3, 5.4, 5.5). Registrations go to the
 * directory; heartbeats stay in memory, and the directory is written only when a CTS goes down or
 * comes back (DESIGN.md, "Liveness is not a directory write").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct registry_op {
	struct gcs		*g;
	struct proto_req	*r;
	struct msg_cts_register	*reg;
	size_t			 class_at;	/* the class being checked */
};

struct gcs_cts *
registry_find(struct gcs *g, const char *name)
{
	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

struct gcs_cts *
registry_touch(struct gcs *g, const char *name, const char *endpoint)
{
	struct gcs_cts *c = registry_find(g, name);

	if (c == NULL) {
		if ((c = calloc(1, sizeof *c)) == NULL)
			abort();
		c->name = strdup(name);
		c->next = g->cts;
		g->cts = c;
	}
	if (endpoint != NULL && (c->endpoint == NULL || strcmp(c->endpoint, endpoint) != 0)) {
		free(c->endpoint);
		c->endpoint = strdup(endpoint);
		proto_client_free(c->client);	/* it moved: connect afresh */
		c->client = NULL;
	}
	c->last_beat_ms = time_mono_ms();
	return c;
}

void
registry_free(struct gcs *g)
{
	while (g->cts != NULL) {
		struct gcs_cts *c = g->cts;
		g->cts = c->next;
		proto_client_free(c->client);
		free(c->name);
		free(c->endpoint);
		free(c->status);
		free(c);
	}
}

static void
registry_on_status_written(const struct dir_result *r, void *arg)
{
	if (r->status != DIR_OK)
		log_warn("cannot write the status of CTS %s: %s", (const char *)arg, r->msg);
	free(arg);
}

static void
registry_set_up(struct gcs *g, struct gcs_cts *c, bool up)
{
	if (c->up == up)
		return;
	c->up = up;
	log_info("CTS %s is %s", c->name, up ? "up" : "down (no heartbeat)");
	dir_cts_status(g->dir, c->name, up ? (c->status ? c->status : "ok") : "down",
	    registry_on_status_written, strdup(c->name));
	notify_event(g, up ? "cts_up" : "cts_down", NULL, c->name, NULL, 0);
}

/* Once a second: a CTS whose heartbeats stopped is marked down (not removed). */
void
registry_tick(struct gcs *g)
{
	uint64_t now = time_mono_ms();

	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (c->up && now - c->last_beat_ms > (uint64_t)g->cts_timeout_ms)
			registry_set_up(g, c, false);
	}
}

static void
registry_op_free(struct registry_op *op)
{
	free(op);
}

static void
registry_on_published(const struct dir_result *res, void *arg)
{
	struct registry_op *op = arg;
	struct msg_cts_register *b = op->reg;

	if (res->status != DIR_OK) {
		proto_reply_err(op->r, gcs_dir_code(res->status), "cannot publish CTS %s: %s", b->name,
		    res->msg);
	} else {
		struct gcs_cts *c = registry_touch(op->g, b->name, b->endpoint);

		free(c->status);
		c->status = strdup(b->status ? b->status : "ok");
		c->up = false;
		registry_set_up(op->g, c, true);
		log_info("CTS %s registered: %s at %s (%s)", b->name, b->core_service, b->endpoint,
		    c->status);
		proto_reply_ok(op->r, op->r->pt->reply, NULL);
	}
	registry_op_free(op);
}

static void registry_check_next_class(struct registry_op *op);

static void
registry_on_class(const struct dir_result *res, void *arg)
{
	struct registry_op *op = arg;

	if (res->status != DIR_OK || res->nentries == 0) {
		if (res->status == DIR_OK || res->status == DIR_NOT_FOUND)
			proto_reply_err(op->r, PROTO_E_NOT_FOUND, "class \"%s\" does not exist: an admin "
			    "adds it first (gca-ctl class add)", op->reg->classes.v[op->class_at]);
		else
			proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
		registry_op_free(op);
		return;
	}
	op->class_at++;
	registry_check_next_class(op);
}

/* Every class a CTS names must exist; then its entry is published. */
static void
registry_check_next_class(struct registry_op *op)
{
	struct msg_cts_register *b = op->reg;
	char dn[1024];

	if (op->class_at < b->classes.n) {
		if (dir_dn_class(op->g->dir, b->classes.v[op->class_at], dn, sizeof dn) != 0) {
			proto_reply_err(op->r, PROTO_E_BAD_FIELD, "not a valid class name: \"%s\"",
			    b->classes.v[op->class_at]);
			registry_op_free(op);
			return;
		}
		dir_search(op->g->dir, dn, 0, "(objectClass=gcaCheckpointerClass)", 1,
		    registry_on_class, op);
		return;
	}
	{
		struct dir_cts c = {
			.name = b->name, .endpoint = b->endpoint, .exec_manager = b->exec_manager,
			.core_service = b->core_service, .external = b->external,
			.self_checkpoint = b->self_checkpoint, .migrate = b->migrate,
			.any_image = b->any_image, .classes = (const char **)b->classes.v,
			.nclasses = b->classes.n, .properties = (const char **)b->properties.v,
			.nproperties = b->properties.n, .exec_wrapper = b->exec_wrapper,
			.recovery_wrapper = b->recovery_wrapper, .exec_params = b->exec_params,
			.recovery_params = b->recovery_params, .wrapper_params = b->wrapper_params,
			.status = b->status ? b->status : "ok",
		};
		dir_cts_publish(op->g->dir, &c, registry_on_published, op);
	}
}

void
registry_cts_register(struct proto_req *r, void *ctx)
{
	struct msg_cts_register *b = r->body;
	struct registry_op *op;

	/* A CTS registers itself only: its certificate names it. */
	if (strcmp(r->peer.name, b->name) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may not register as %s", r->peer.name,
		    b->name);
		return;
	}
	if (!name_valid(b->name)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid CTS name");
		return;
	}
	if ((op = calloc(1, sizeof *op)) == NULL)
		abort();
	op->g = ctx;
	op->r = r;
	op->reg = b;
	registry_check_next_class(op);
}

void
registry_cts_heartbeat(struct proto_req *r, void *ctx)
{
	struct msg_cts_heartbeat *b = r->body;
	struct gcs *g = ctx;
	struct gcs_cts *c;

	if (strcmp(r->peer.name, b->name) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may not beat for %s", r->peer.name, b->name);
		return;
	}
	if ((c = registry_find(g, b->name)) == NULL) {
		/* This GCS (re)started since the CTS registered: ask it to register again. */
		proto_reply_err(r, PROTO_E_NOT_FOUND, "CTS %s is not registered here: register again",
		    b->name);
		return;
	}
	registry_touch(g, b->name, NULL);
	registry_set_up(g, c, true);
	proto_reply_ok(r, r->pt->reply, NULL);
}

static void
registry_on_replied(const struct dir_result *res, void *arg)
{
	struct proto_req *r = arg;

	if (res->status == DIR_OK)
		proto_reply_ok(r, r->pt->reply, NULL);
	else
		proto_reply_err(r, gcs_dir_code(res->status), "%s", res->msg);
}

/* An admin retires a CTS: its entry stays, marked retired, so records still name it. */
void
registry_cts_remove(struct proto_req *r, void *ctx)
{
	struct msg_name *b = r->body;
	struct gcs *g = ctx;
	struct gcs_cts *c = registry_find(g, b->name);

	if (c != NULL)
		c->up = false;
	dir_cts_status(g->dir, b->name, "retired", registry_on_replied, r);
}

void
registry_class_register(struct proto_req *r, void *ctx)
{
	struct msg_class_register *b = r->body;
	struct gcs *g = ctx;

	dir_class_publish(g->dir, b->name, b->description, (const char **)b->properties.v,
	    b->properties.n, registry_on_replied, r);
}
