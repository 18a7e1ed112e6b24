/*
 * The unix socket of wrappers and jobs (role local; who calls is SO_PEERCRED's uid and pid).
 * docs/DESIGN.md, "Who may bind a GID": a wrapper binds a GID only to its own process or a child of it,
 * only as the user that runs that process; the GCS then checks that this user owns the GID.
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cts/cts.h"

struct local_bind_op {
	struct cts		*cts;
	struct proto_req	*r;
	pid_t			 pid;
	uint64_t		 start;
	uid_t			 uid;
	gid_t			 gidn;
};

static void local_fence_older(struct cts_job *newer);

static void
local_bind_reply(struct cts *c, struct proto_req *r, bool recovery)
{
	struct msg_local_bind_ok ok = { c->name, c->core->name,
		recovery ? c->recovery_params : c->exec_params };

	proto_reply_ok(r, r->pt->reply, &ok);
}

static void
local_on_bound(const char *code, const char *msg, const void *body, void *arg)
{
	struct local_bind_op *op = arg;
	struct msg_local_bind *b = op->r->body;
	struct cts *c = op->cts;
	struct cts_job *j;

	(void)body;
	if (code != NULL) {
		proto_reply_err(op->r, code, "the GCS refused GID %s: %s", b->gid, msg);
		free(op);
		return;
	}
	/* An ended entry of this GID stays until its unbind is acknowledged; the new one goes first. */
	j = jobs_add(c, b->gid, op->pid, op->start, op->uid, op->gidn,
	    b->checkpoint_auto ? CTS_EVERY_AUTO : b->checkpoint_every_ms);
	if (j->ended) {
		proto_reply_err(op->r, PROTO_E_NOT_FOUND, "process %d ended while GID %s was bound",
		    (int)op->pid, b->gid);
		jobs_ended(j);
		free(op);
		return;
	}
	interval_bind(j, b->recovery);
	if (c->core->keeps_channel)
		jobs_set_channel(j, op->r->conn);
	ending_set_wrapper(j, op->r->peer.pid);	/* a resident wrapper binding its child */
	if (b->recovery && b->checkpoint_id != NULL && id_valid(b->checkpoint_id)) {
		/* the copy restore_prepare made for this caller goes when the job ends */
		char copy[PATH_MAX];
		snprintf(copy, sizeof copy, "%s/staging/restore-%d-%s", c->state, (int)op->r->peer.pid,
		    b->checkpoint_id);
		if (access(copy, F_OK) == 0)
			j->restore_dir = xstrdup(copy);
	}
	jobs_save(c);
	log_info("GID %s bound to pid %d (user %s)%s", b->gid, (int)op->pid, j->owner,
	    b->recovery ? ", recovered" : "");
	local_fence_older(j);
	local_bind_reply(c, op->r, b->recovery);
	free(op);
}

/* A recovery on this CTS while an older copy of the GID runs here: the binding is the new
 * one's now, so the old copy goes as if it had moved away (fence.c). */
static void
local_fence_older(struct cts_job *newer)
{
	char why[300];

	for (struct cts_job *o = newer->next; o != NULL; o = o->next) {
		if (strcmp(o->gid, newer->gid) != 0 || o->ended || o->moved)
			continue;
		snprintf(why, sizeof why, "GID %s was recovered on this CTS as pid %d", o->gid,
		    (int)newer->pid);
		jobs_moved(o, why);
		return;
	}
}

/* The process to bind: the caller itself or its child, running as the caller's user. */
static int
local_check_process(struct proto_req *r, pid_t pid, uint64_t *start, uid_t *uid,
	gid_t *gidn)
{
	pid_t ppid;

	if (proc_stat(pid, &ppid, uid, gidn, start) != 0) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "no process %d", (int)pid);
		return -1;
	}
	/* a VM of the pool: its QEMU runs as the pool's user, and this CTS handed it to this very
	 * caller (pid, start time, uid: recorded by local_vm_take, docs/VMM.md "A pool") */
	if (pid != r->peer.pid && ppid != r->peer.pid &&
	    pool_handed(pid, *start, r->peer.pid, r->peer.uid)) {
		*uid = r->peer.uid;
		*gidn = r->peer.gid;
		return 0;
	}
	if (pid != r->peer.pid && ppid != r->peer.pid) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "process %d is neither the "
		    "caller (pid %d) nor its child", (int)pid, (int)r->peer.pid);
		return -1;
	}
	if (*uid != r->peer.uid) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "process %d runs as uid %u, "
		    "not as the caller (uid %u)", (int)pid, (unsigned)*uid, (unsigned)r->peer.uid);
		return -1;
	}
	return 0;
}

static void
local_bind(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_local_bind *b = r->body;
	struct local_bind_op *op;
	struct cts_job *j;
	uint64_t start;
	uid_t uid;
	gid_t gidn;
	char local_id[64], owner[64];

	if (!name_valid(b->gid)) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "not a valid GID");
		return;
	}
	if (c->unavailable[0] != '\0') {
		proto_reply_err(r, PROTO_E_UNAVAILABLE, "core service %s: %s", c->core->name,
		    c->unavailable);
		return;
	}
	/* answered, as every refusal (a pid out of range was once left unanswered: the caller hung
	 * and the request was never freed; tests/fuzz found it) */
	if (b->pid == 0 || b->pid > INT32_MAX) {
		proto_reply_err(r, PROTO_E_BAD_FIELD, "pid %llu is not a process id",
		    (unsigned long long)b->pid);
		return;
	}
	if (local_check_process(r, (pid_t)b->pid, &start, &uid, &gidn) != 0)
		return;
	if (geteuid() != 0 && uid != geteuid() && c->core->keeps_channel) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "this CTS runs as uid %u and cannot give image "
		    "folders to uid %u; run it as root for a multi-user site", (unsigned)geteuid(),
		    (unsigned)uid);
		return;
	}
	if (uid != 0 && c->core->user_job != NULL) {
		char why[400];

		if (c->core->user_job(c, uid, why, sizeof why) != 0) {
			proto_reply_err(r, PROTO_E_FORBIDDEN, "uid %u is not root: %s", (unsigned)uid,
			    why);
			return;
		}
	}
	if ((j = jobs_find(c, b->gid)) != NULL && !j->ended) {
		if (j->pid == (pid_t)b->pid && j->start == start && !b->recovery) {
			/* The job's library came back after a CTS restart: same process, new socket. */
			if (c->core->keeps_channel)
				jobs_set_channel(j, r->conn);
			j->reloaded = false;
			log_info("GID %s: pid %d re-attached", b->gid, (int)j->pid);
			local_bind_reply(c, r, false);
			return;
		}
		/* A recovery here while the old copy runs: it is fenced once the new one is bound. */
		if (jobs_alive(j) && !b->recovery) {
			proto_reply_err(r, PROTO_E_CONFLICT, "GID %s already runs here as pid %d", b->gid,
			    (int)j->pid);
			return;
		}
	}
	if (!c->registered) {
		/* busy: the wrappers ask again for a while (a CTS just started registers soon) */
		proto_reply_err(r, PROTO_E_BUSY, "not registered at the GCS %s yet; try again",
		    c->gcs_endpoint);
		return;
	}
	user_name(uid, owner, sizeof owner);
	jobs_local_id((pid_t)b->pid, start, local_id, sizeof local_id);
	op = xcalloc(1, sizeof *op);
	*op = (struct local_bind_op){ c, r, (pid_t)b->pid, start, uid, gidn };
	struct msg_job_bind jb = { b->gid, c->name, local_id, owner, b->checkpoint_id, b->recovery };
	gcslink_request(c, "job_bind", &jb, local_on_bound, op);
}

/* A job asks for its own checkpoint (paper 5.1 step 8). */
static void
local_checkpoint(struct proto_req *r, void *ctx)
{
	struct msg_local_checkpoint *b = r->body;
	struct cts_job *j = jobs_find(ctx, b->gid);

	if (j == NULL || j->ended) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "GID %s is not running at this CTS", b->gid);
		return;
	}
	if (r->peer.uid != j->uid && r->peer.uid != 0) {
		proto_reply_err(r, PROTO_E_FORBIDDEN, "GID %s belongs to uid %u", b->gid,
		    (unsigned)j->uid);
		return;
	}
	ckpt_request(j, "job", r, NULL);
}

static void
local_app_saved(struct proto_req *r, void *ctx)
{
	struct cts_job *j = jobs_by_channel(ctx, r->conn);

	if (j == NULL) {
		proto_reply_err(r, PROTO_E_NOT_FOUND, "no job is bound on this connection");
		return;
	}
	ckpt_saved(j, r->body);
	proto_reply_ok(r, r->pt->reply, NULL);
}

/* What the CTS publishes: vmm-ready-job-executor takes the operator's guest from it. */
static void
local_info(struct proto_req *r, void *ctx)
{
	struct cts *c = ctx;
	struct msg_local_info_ok ok = { c->name, c->core->name, c->reg.properties };

	proto_reply_ok(r, r->pt->reply, &ok);
}

const struct proto_handler local_handlers[] = {
	{ "ping", PROTO_ROLE_LOCAL, proto_server_ping },
	{ "local_bind", PROTO_ROLE_LOCAL, local_bind },
	{ "local_checkpoint", PROTO_ROLE_LOCAL, local_checkpoint },
	{ "local_info", PROTO_ROLE_LOCAL, local_info },
	{ "local_vm_take", PROTO_ROLE_LOCAL, pool_take },
	{ "local_exit", PROTO_ROLE_LOCAL, ending_local_exit },
	{ "app_saved", PROTO_ROLE_LOCAL, local_app_saved },
	{ "restore_prepare", PROTO_ROLE_LOCAL, restore_prepare },
};
const size_t local_nhandlers = GCA_NITEMS(local_handlers);

void
local_on_close(struct proto_conn *conn, void *ctx)
{
	struct cts_job *j;

	while ((j = jobs_by_channel(ctx, conn)) != NULL) {
		log_debug("job %s: its channel closed", j->gid);
		jobs_set_channel(j, NULL);
		if (j->running != NULL && j->running->timeout != NULL)
			ckpt_dumped(j->running, "the job closed its channel to the CTS before it saved");
	}
}

int
local_open(struct cts *c, const char *group, char *err, size_t errlen)
{
	/* the cap counts per uid, without the channels of bound jobs (jobs_set_channel keeps them) */
	struct proto_server_config cfg = { .handlers = local_handlers,
		.nhandlers = local_nhandlers, .ctx = c, .on_close = local_on_close,
		.idle_timeout_ms = c->idle_timeout_ms, .max_per_peer = c->max_peer_connections };
	mode_t mode = 0666;	/* every user binds their own jobs; SO_PEERCRED says who they are */
	struct group *gr = NULL;

	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errlen, "socket_group %s: no such group", group);
			return -1;
		}
		mode = 0660;
	}
	if ((c->local = proto_server_unix(c->base, c->socket, mode, &cfg, err, errlen)) == NULL)
		return -1;
	if (gr != NULL && chown(c->socket, (uid_t)-1, gr->gr_gid) != 0) {
		snprintf(err, errlen, "socket %s: cannot give it to group %s", c->socket, group);
		return -1;
	}
	return 0;
}
