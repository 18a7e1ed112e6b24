/*
 * The registry of CTSes and checkpointer classes (paper 3.3, 5.4, 5.5). Registrations go to the
 * directory; heartbeats stay in memory, and the directory is written only when a CTS's state
 * changes: it goes down, comes back, or says in a heartbeat that its core service became
 * unavailable (or available again) (docs/DESIGN.md, "Liveness is not a directory write").
 *
 * Every status write asserts the status this GCS last knew and that the entry still names this GCS
 * (dir_cts_status_if with gcs=<name>), so a change made meanwhile through another GCS (an admin
 * retiring the CTS, the CTS registering at another GCS) is never written over: a lost assertion
 * reads the entry again, and an entry that names another GCS is that GCS's to write. (Without
 * the name, a GCS that timed out a CTS which had moved to another GCS wrote "down" over its new
 * registration, and brokers asking this GCS were told cts_down while it ran.) A retired CTS stays retired: its heartbeats and registrations
 * are refused, at every GCS (each follows ou=cts on the change feed), until an admin deletes its
 * entry; a CTS entry that names this GCS (gcaProperty gcs=<name>) and is still up when this GCS
 * starts is marked down if the CTS does not come back within cts_timeout.
 *
 * Each of these writes carries the CTS's GLUE 2.0 view (glue.c), written right after it on the
 * directory thread: its GLUE2EndpointHealthState changes with its gcaStatus, in the same step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "gcs/gcs.h"

struct registry_op {
	struct gcs		*g;
	struct proto_req	*r;
	struct msg_cts_register	*reg;
	size_t			 class_at;	/* the class being checked */
};

/* A status write in flight: the CTS by name (the registry may be gone when it answers). */
struct registry_write {
	struct gcs		*g;
	char			*name;
	bool			 stale;		/* the deadline of a CTS not heard since the start */
};

static void registry_write(struct gcs *g, struct gcs_cts *c);

struct gcs_cts *
registry_find(struct gcs *g, const char *name)
{
	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

static void
registry_set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

struct gcs_cts *
registry_touch(struct gcs *g, const char *name, const char *endpoint)
{
	struct gcs_cts *c = registry_find(g, name);

	if (c == NULL) {
		c = xcalloc(1, sizeof *c);
		c->name = xstrdup(name);
		c->next = g->cts;
		g->cts = c;
	}
	if (endpoint != NULL && (c->endpoint == NULL || strcmp(c->endpoint, endpoint) != 0)) {
		struct proto_client *old = c->client;

		registry_set_str(&c->endpoint, endpoint);
		c->client = NULL;		/* it moved: connect afresh (after the pending fail) */
		proto_client_free(old);
	}
	c->last_beat_ms = time_mono_ms();
	return c;
}

/* What its GLUE view says of it: core service and classes, as registered or read back. */
static void
registry_set_kind(struct gcs_cts *c, const char *core, const char *const *classes, size_t n)
{
	registry_set_str(&c->core_service, core);
	for (size_t i = 0; i < c->nclasses; i++)
		free(c->classes[i]);
	free(c->classes);
	c->classes = NULL;
	c->nclasses = 0;
	if (n == 0)
		return;
	c->classes = xcalloc(n, sizeof *c->classes);
	for (size_t i = 0; i < n; i++) {
		c->classes[i] = xstrdup(classes[i]);
	}
	c->nclasses = n;
}

static void
registry_cts_free(struct gcs_cts *c)
{
	struct proto_client *client = c->client;

	c->client = NULL;
	proto_client_free(client);
	free(c->name);
	free(c->endpoint);
	free(c->status);
	free(c->written);
	registry_set_kind(c, NULL, NULL, 0);
	free(c);
}

void
registry_free(struct gcs *g)
{
	dir_feed_close(g->cts_feed);
	g->cts_feed = NULL;
	while (g->cts != NULL) {
		struct gcs_cts *c = g->cts;
		g->cts = c->next;
		registry_cts_free(c);
	}
}

/* What the directory should say of c: its own status while up, else down. */
static const char *
registry_wanted(const struct gcs_cts *c)
{
	return c->up ? (c->status ? c->status : "ok") : "down";
}

/* A CTS's status as it may send it: "ok", or "unavailable: <why>" (its core service cannot work). */
static bool
registry_status_valid(const char *s)
{
	return s == NULL || strcmp(s, "ok") == 0 || strncmp(s, "unavailable", 11) == 0;
}

/* An admin retired c (here or through another GCS): no more work, no more heartbeats. Its
 * cts_down is told once: when it was up here, or (tell) by the GCS the admin asked. */
static void
registry_retire(struct gcs *g, struct gcs_cts *c, bool tell)
{
	struct proto_client *client = c->client;

	if (!c->retired) {
		log_info("CTS %s is retired", c->name);
		tell = tell || c->up;
		c->retired = true;
		c->up = false;
		c->stale = false;
		c->dirty = false;
		registry_set_str(&c->written, "retired");
		c->client = NULL;
		proto_client_free(client);
	}
	if (tell && !c->told_retired) {
		c->told_retired = true;
		notify_event(g, "cts_down", NULL, c->name, NULL, 0);
	}
}

/* Its entry was deleted (an admin's way back for a retired CTS): it may register again. */
static void
registry_forget_dn(struct gcs *g, const char *dn)
{
	char want[1024];

	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (dir_dn_cts(g->dir, c->name, want, sizeof want) == 0 && strcasecmp(want, dn) == 0) {
			log_info("CTS %s: its entry was deleted", c->name);
			c->retired = c->told_retired = c->stale = c->dirty = c->up = false;
			registry_set_str(&c->status, NULL);
			registry_set_str(&c->written, NULL);
			return;
		}
	}
}

static void
registry_write_free(struct registry_write *w)
{
	free(w->name);
	free(w);
}

/* Whether a CTS entry names GCS gcs as the one it registered at (gcaProperty gcs=<name>). */
static bool
registry_names(const struct dir_entry *e, const char *gcs)
{
	const struct dir_attr *props = dir_entry_attr(e, "gcaProperty");
	char mark[300];

	snprintf(mark, sizeof mark, "gcs=%s", gcs);
	for (size_t i = 0; props != NULL && i < props->nvals; i++) {
		if (strcmp(props->vals[i], mark) == 0)
			return true;
	}
	return false;
}

/* The entry as the directory has it now, after a lost assertion (or when it was not known). */
static void
registry_on_reread(const struct dir_result *res, void *arg)
{
	struct registry_write *w = arg;
	struct gcs_cts *c = registry_find(w->g, w->name);
	const char *now = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (c == NULL || w->stale) {
		registry_write_free(w);
		return;
	}
	if (res->status != DIR_OK || now == NULL) {
		c->dirty = true;	/* the next tick tries again */
	} else if (strcmp(now, "retired") == 0) {
		registry_retire(w->g, c, false);
	} else if (!registry_names(&res->entries[0], w->g->name)) {
		/* it registered at another GCS since: its status is that GCS's to write (marking it
		 * down here would hide a live CTS from every GCS); a heartbeat here brings it back */
		log_info("CTS %s registered at another GCS: its status there (%s) is left as it is",
		    w->name, now);
		registry_set_str(&c->written, now);
	} else {
		registry_set_str(&c->written, now);
		registry_write(w->g, c);
	}
	registry_write_free(w);
}

static void
registry_reread(struct gcs *g, struct registry_write *w)
{
	char dn[1024];

	if (dir_dn_cts(g->dir, w->name, dn, sizeof dn) != 0) {
		registry_write_free(w);
		return;
	}
	dir_search(g->dir, dn, 0, "(objectClass=gcaTranslationService)", 1, registry_on_reread, w);
}

static void
registry_on_written(const struct dir_result *res, void *arg)
{
	struct registry_write *w = arg;
	struct gcs_cts *c = registry_find(w->g, w->name);

	glue_written(w->g, res);
	if (c == NULL) {
		registry_write_free(w);
	} else if (res->status == DIR_CAS_LOST) {
		if (w->stale) {
			/* it registered at another GCS, or was retired: not this GCS's to mark */
			log_info("CTS %s changed in the directory since this GCS started: left as it is",
			    w->name);
			registry_write_free(w);
		} else {
			registry_reread(w->g, w);
		}
	} else if (res->status != DIR_OK) {
		log_warn("cannot write the status of CTS %s: %s (trying again)", w->name, res->msg);
		c->dirty = !c->retired && !w->stale;
		registry_write_free(w);
	} else {
		if (w->stale) {
			log_info("CTS %s is down: no heartbeat since this GCS started", w->name);
			notify_event(w->g, "cts_down", NULL, w->name, NULL, 0);
		}
		registry_write_free(w);
	}
}

static struct registry_write *
registry_write_new(struct gcs *g, const char *name, bool stale)
{
	struct registry_write *w = xcalloc(1, sizeof *w);

	w->name = xstrdup(name);
	w->g = g;
	w->stale = stale;
	return w;
}

/*
 * Brings c's entry to what it should say, asserting what this GCS last knew it said (set at once:
 * the directory thread runs writes in order, so the next one asserts this one's value).
 */
static void
registry_write(struct gcs *g, struct gcs_cts *c)
{
	const char *want = registry_wanted(c);
	struct registry_write *w;
	char *old;

	if (c->retired || c->status == NULL)
		return;		/* never registered here: its status is another GCS's to write */
	if (c->written != NULL && strcmp(c->written, want) == 0 && !c->dirty)
		return;
	c->dirty = false;
	w = registry_write_new(g, c->name, false);
	if (c->written == NULL) {
		registry_reread(g, w);
		return;
	}
	old = c->written;
	c->written = xstrdup(want);
	/* asserting too that it is still registered here: not at another GCS meanwhile */
	dir_cts_status_if_view(g->dir, c->name, want, old, g->name, glue_cts_view(g, c, want),
	    registry_on_written, w);
	free(old);
}

static void
registry_set_up(struct gcs *g, struct gcs_cts *c, bool up)
{
	if (c->up == up)
		return;
	c->up = up;
	log_info("CTS %s is %s", c->name, up ? "up" : "down (no heartbeat)");
	registry_write(g, c);
	notify_event(g, up ? "cts_up" : "cts_down", NULL, c->name, NULL, 0);
}

/*
 * Once a second: a CTS whose heartbeats stopped is marked down (not removed); a status write that
 * failed is tried again; a CTS left up in the directory by this GCS's previous run that has not
 * come back is marked down, only while its entry still names this GCS and says what it said.
 */
void
registry_tick(struct gcs *g)
{
	uint64_t now = time_mono_ms();

	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (c->up && now - c->last_beat_ms > (uint64_t)g->cts_timeout_ms)
			registry_set_up(g, c, false);
		else if (c->dirty)
			registry_write(g, c);
		if (c->stale && now - c->last_beat_ms > (uint64_t)g->cts_timeout_ms) {
			c->stale = false;
			dir_cts_status_if_view(g->dir, c->name, "down", c->written, g->name,
			    glue_cts_view(g, c, "down"), registry_on_written,
			    registry_write_new(g, c->name, true));
			registry_set_str(&c->written, "down");
		}
	}
}

/* ou=cts on the change feed: a retirement made through any GCS reaches this one; the first
 * refresh names the CTSes this GCS's previous run left up. */
static void
registry_on_change(enum dir_change what, const struct dir_entry *e, void *arg)
{
	struct gcs *g = arg;
	const struct dir_attr *cl;
	const char *name, *status;
	struct gcs_cts *c;

	if (what == DIR_CHANGE_REFRESHED) {
		if (!g->cts_feed_ready)
			log_info("CTS entries read: %d left up by this GCS wait for their CTS",
			    g->stale_cts);
		g->cts_feed_ready = true;
		return;
	}
	if (what == DIR_CHANGE_DELETE && e != NULL)
		registry_forget_dn(g, e->dn);
	if (e == NULL || (what != DIR_CHANGE_PRESENT && what != DIR_CHANGE_ADD &&
	    what != DIR_CHANGE_MODIFY))
		return;
	if ((name = dir_entry_get(e, "cn")) == NULL || (status = dir_entry_get(e, "gcaStatus")) == NULL)
		return;
	c = registry_find(g, name);
	if (strcmp(status, "retired") == 0) {
		if (c != NULL)
			registry_retire(g, c, false);
		return;
	}
	if (what != DIR_CHANGE_PRESENT || g->cts_feed_ready || c != NULL ||
	    strcmp(status, "down") == 0 || !registry_names(e, g->name))
		return;
	cl = dir_entry_attr(e, "gcaClass");
	c = registry_touch(g, name, dir_entry_get(e, "gcaEndpoint"));
	registry_set_kind(c, dir_entry_get(e, "gcaCoreService"),
	    cl ? (const char *const *)cl->vals : NULL, cl ? cl->nvals : 0);
	c->stale = true;
	registry_set_str(&c->written, status);
	g->stale_cts++;
}

int
registry_open(struct gcs *g, char *err, size_t errlen)
{
	char base[512];

	snprintf(base, sizeof base, "ou=cts,%s", g->dircfg.base);
	g->cts_feed = dir_feed_open(g->base, &g->dircfg, base, "(objectClass=gcaTranslationService)",
	    registry_on_change, g, err, errlen);
	return g->cts_feed ? 0 : -1;
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

	glue_written(op->g, res);
	if (res->status != DIR_OK) {
		proto_reply_err(op->r, gcs_dir_code(res->status), "cannot publish CTS %s: %s", b->name,
		    res->msg);
	} else {
		struct gcs_cts *c = registry_touch(op->g, b->name, b->endpoint);

		registry_set_kind(c, b->core_service, (const char *const *)b->classes.v, b->classes.n);
		registry_set_str(&c->status, b->status ? b->status : "ok");
		registry_set_str(&c->written, c->status);
		c->stale = false;
		c->dirty = false;
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
			.any_image = b->any_image,
			.classes = (const char *const *)b->classes.v, .nclasses = b->classes.n,
			.properties = (const char *const *)b->properties.v,
			.nproperties = b->properties.n, .exec_wrapper = b->exec_wrapper,
			.recovery_wrapper = b->recovery_wrapper, .exec_params = b->exec_params,
			.recovery_params = b->recovery_params, .wrapper_params = b->wrapper_params,
			.status = b->status ? b->status : "ok", .gcs = op->g->name,
		};
		struct glue_cts view = {
			.name = b->name, .endpoint = b->endpoint, .core_service = b->core_service,
			.classes = c.classes, .nclasses = c.nclasses,
		};
		dir_cts_publish_view(op->g->dir, &c, glue_cts_entry(op->g, &view, c.status),
		    registry_on_published, op);
	}
}

static const char registry_retired_msg[] = "CTS %s was retired by an admin (gca-ctl cts remove): "
    "it gets no work and its heartbeats and registrations are refused; to bring the resource "
    "back, give it a new name, or delete its entry from ou=cts";

/* A retired entry refuses the registration; any other (or none) goes on to the classes. */
static void
registry_on_entry(const struct dir_result *res, void *arg)
{
	struct registry_op *op = arg;
	const char *status = res->nentries ? dir_entry_get(&res->entries[0], "gcaStatus") : NULL;

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		proto_reply_err(op->r, gcs_dir_code(res->status), "%s", res->msg);
		registry_op_free(op);
	} else if (status != NULL && strcmp(status, "retired") == 0) {
		proto_reply_err(op->r, PROTO_E_FORBIDDEN, registry_retired_msg, op->reg->name);
		registry_op_free(op);
	} else {
		registry_check_next_class(op);
	}
}

void
registry_cts_register(struct proto_req *r, void *ctx)
{
	struct msg_cts_register *b = r->body;
	struct gcs *g = ctx;
	struct gcs_cts *known;
	struct registry_op *op;
	char dn[1024];

	/* A CTS registers itself only: its certificate names it. */
	if (strcmp(r->peer.name, b->name) != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "CTS %s may not register as %s", r->peer.name,
		    b->name);
		return;
	}
	if (!name_valid(b->name) || dir_dn_cts(g->dir, b->name, dn, sizeof dn) != 0) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid CTS name");
		return;
	}
	if (!registry_status_valid(b->status)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "status must be \"ok\" or \"unavailable: <why>\", "
		    "not \"%s\"", b->status);
		return;
	}
	if ((known = registry_find(g, b->name)) != NULL && known->retired) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, registry_retired_msg, b->name);
		return;
	}
	op = xcalloc(1, sizeof *op);
	op->g = g;
	op->r = r;
	op->reg = b;
	/* Retired in the directory (by an earlier run, or through another GCS)? */
	dir_search(g->dir, dn, 0, "(objectClass=gcaTranslationService)", 1, registry_on_entry, op);
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
	if ((c = registry_find(g, b->name)) != NULL && c->retired) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, registry_retired_msg, b->name);
		return;
	}
	if (c == NULL || c->status == NULL) {
		/* This GCS (re)started since the CTS registered, or it registered elsewhere: ask it
		 * to register here. */
		proto_reply_err(r, PROTO_E_NOT_FOUND, "CTS %s is not registered here: register again",
		    b->name);
		return;
	}
	if (!registry_status_valid(b->status)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "status must be \"ok\" or \"unavailable: <why>\", "
		    "not \"%s\"", b->status);
		return;
	}
	registry_touch(g, b->name, NULL);
	if (b->status != NULL && strcmp(b->status, c->status) != 0) {
		/* Its core service became unavailable (or works again): published, as a change. */
		log_info("CTS %s says: %s (was: %s)", c->name, b->status, c->status);
		registry_set_str(&c->status, b->status);
		if (c->up)
			registry_write(g, c);
	}
	registry_set_up(g, c, true);
	proto_reply_ok(r, r->pt->reply, NULL);
}

struct registry_remove {
	struct gcs		*g;
	struct proto_req	*r;
};

static void
registry_on_removed(const struct dir_result *res, void *arg)
{
	struct registry_remove *rm = arg;
	struct msg_name *b = rm->r->body;
	struct gcs_cts *c;

	glue_written(rm->g, res);
	if (res->status == DIR_OK) {
		c = registry_touch(rm->g, b->name, NULL);
		registry_retire(rm->g, c, true);
		proto_reply_ok(rm->r, rm->r->pt->reply, NULL);
	} else if (res->status == DIR_NOT_FOUND) {
		proto_reply_err(rm->r, PROTO_E_NOT_FOUND, "no CTS %s in the directory", b->name);
	} else {
		proto_reply_err(rm->r, gcs_dir_code(res->status), "%s", res->msg);
	}
	free(rm);
}

/* An admin retires a CTS: its entry stays, marked retired, so records still name it. */
void
registry_cts_remove(struct proto_req *r, void *ctx)
{
	struct msg_name *b = r->body;
	struct registry_remove *rm;
	struct glue_cts view = { .name = b->name };

	if (!name_valid(b->name)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid CTS name: %s (%s)", name_why(b->name),
		    NAME_RULE);
		return;
	}
	rm = xcalloc(1, sizeof *rm);
	rm->g = ctx;
	rm->r = r;
	/* Its GLUE endpoint goes: a broker reading GLUE finds only what it may use. */
	dir_cts_status_view(rm->g->dir, b->name, "retired", glue_cts_entry(rm->g, &view, "retired"),
	    registry_on_removed, rm);
}

struct registry_class {
	struct gcs		*g;
	struct proto_req	*r;
	bool			 replaced;
};

static void
registry_on_class_stored(const struct dir_result *res, void *arg)
{
	struct registry_class *rc = arg;
	struct msg_class_register_ok ok = { .replaced = rc->replaced };

	if (res->status == DIR_OK)
		proto_reply_ok(rc->r, rc->r->pt->reply, &ok);
	else
		proto_reply_err(rc->r, gcs_dir_code(res->status), "%s", res->msg);
	free(rc);
}

/* The class the directory holds under that name (cn matches ignoring case): the same spelling is
 * replaced (and the reply says so); another ("MPI" for "mpi") is refused, not folded into it. */
static void
registry_on_class_found(const struct dir_result *res, void *arg)
{
	struct registry_class *rc = arg;
	struct msg_class_register *b = rc->r->body;
	const char *have = NULL;

	if (res->status != DIR_OK && res->status != DIR_NOT_FOUND) {
		proto_reply_err(rc->r, gcs_dir_code(res->status), "%s", res->msg);
		free(rc);
		return;
	}
	for (size_t i = 0; res->status == DIR_OK && i < res->nentries && have == NULL; i++)
		have = dir_entry_get(&res->entries[i], "cn");
	if (have != NULL && strcmp(have, b->name) != 0) {
		proto_reply_err(rc->r, PROTO_E_EXISTS, "class \"%s\" exists, and class names are compared "
		    "ignoring case: give \"%s\" to replace its properties, or another name", have, have);
		free(rc);
		return;
	}
	rc->replaced = have != NULL;
	dir_class_publish(rc->g->dir, b->name, b->description, (const char *const *)b->properties.v,
	    b->properties.n, registry_on_class_stored, rc);
}

void
registry_class_register(struct proto_req *r, void *ctx)
{
	struct msg_class_register *b = r->body;
	struct registry_class *rc;
	char dn[1024];

	if (!name_valid(b->name)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid class name: %s (%s)",
		    name_why(b->name), NAME_RULE);
		return;
	}
	/* mtbf= sets --checkpoint-every auto's intervals (docs/ARCHITECTURE.md): a positive duration */
	for (size_t i = 0; i < b->properties.n; i++) {
		const char *p = b->properties.v[i];
		uint64_t ms;

		if (strncmp(p, "mtbf=", 5) == 0 && daly_mtbf_parse(p + 5, &ms) != 0) {
			proto_reply_err(r, PROTO_E_BAD_FIELD, "class %s: mtbf=%s is not a positive "
			    "duration (e.g. mtbf=12h, mtbf=90m, mtbf=3600)", b->name, p + 5);
			return;
		}
	}
	rc = xcalloc(1, sizeof *rc);
	rc->g = ctx;
	rc->r = r;
	if (dir_dn_class(rc->g->dir, b->name, dn, sizeof dn) != 0) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid class name: too long");
		free(rc);
		return;
	}
	dir_search(rc->g->dir, dn, 0, "(objectClass=gcaCheckpointerClass)", 1,
	    registry_on_class_found, rc);
}
