/*
 * The app core service: application-level checkpointing, the paper's basic class. The job saves
 * its own state (wrappers/gca_app.h): the CTS sends `app_save` on the socket the job kept from
 * gca-exec, naming a staging folder the job's user owns; the job writes its files there and answers
 * `app_saved`. The CTS then copies the files into its own store, opened beneath the staging folder
 * without following links, and hashes them while copying (DESIGN.md, "Image store safety").
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cts/cts.h"

static int
app_probe(struct cts *c, char *why, size_t len)
{
	(void)c;
	(void)why;
	(void)len;
	return 0;	/* it needs nothing but the job's cooperation */
}

static void
app_properties(struct cts *c, struct proto_strlist *out)
{
	(void)c;
	(void)out;
}

static void
app_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cts_ckpt *ck = arg;
	char why[200];

	(void)fd;
	(void)what;
	snprintf(why, sizeof why, "the job did not answer within %d ms (app_timeout); it keeps "
	    "running", ck->cts->app_timeout_ms);
	ckpt_dumped(ck, why);
}

static void
app_dump(struct cts_ckpt *ck)
{
	struct cts_job *j = ck->job;
	struct msg_app_save b;
	struct timeval tv = { ck->cts->app_timeout_ms / 1000, (ck->cts->app_timeout_ms % 1000) * 1000 };
	static uint32_t frame_id;

	if (j->channel == NULL || !proto_conn_open(j->channel)) {
		ckpt_dumped(ck, "the job has no open channel to the CTS (started without gca-exec, or "
		    "it closed GCA_APP_FD)");
		return;
	}
	snprintf(ck->staging, sizeof ck->staging, "%s/staging/%s", ck->cts->state, ck->id);
	if (mkdir(ck->staging, 0700) != 0 || chown(ck->staging, j->uid, j->gidn) != 0) {
		ckpt_dumped(ck, "cannot make the staging folder");
		return;
	}
	b = (struct msg_app_save){ ck->id, ck->staging };
	if (proto_conn_send(j->channel, "app_save", ++frame_id, proto_type_find("app_save"), &b) != 0) {
		ckpt_dumped(ck, "cannot write to the job's channel");
		return;
	}
	ck->timeout = event_new(ck->cts->base, -1, 0, app_on_timeout, ck);
	event_add(ck->timeout, &tv);
}

/* In the child: staging -> image folder, hashed, with its manifest. */
static int
app_store(void *arg, char *out, size_t len)
{
	struct cts_ckpt *ck = arg;
	struct image_meta m = { 0 };
	struct image_result r = { 0 };

	snprintf(m.checkpoint_id, sizeof m.checkpoint_id, "%s", ck->id);
	snprintf(m.gid, sizeof m.gid, "%s", ck->job->gid);
	snprintf(m.core_service, sizeof m.core_service, "app");
	m.time_ms = ck->time_ms;
	if (image_store_copy(ck->staging, ck->image_dir, &m, &r, out, len) != 0)
		return -1;
	ckpt_result_line(&r, out, len);
	return 0;
}

static void
app_on_stored(bool ok, const char *out, void *arg)
{
	struct cts_ckpt *ck = arg;

	if (ok && ckpt_result_read(ck, out) == 0) {
		ckpt_dumped(ck, NULL);
		return;
	}
	ckpt_dumped(ck, ok ? "the image store gave no result" : out);
}

static void
app_saved(struct cts_ckpt *ck, bool ok, const char *error)
{
	char why[1200];

	if (!ok) {
		snprintf(why, sizeof why, "the job could not save its state: %s",
		    error ? error : "no reason given");
		ckpt_dumped(ck, why);
		return;
	}
	if (child_run(ck->cts, app_store, ck, app_on_stored, ck) != 0)
		ckpt_dumped(ck, "cannot start the image copy");
}

const struct core_service core_app = {
	.name = "app",
	.external = true,
	.self_checkpoint = true,
	.probe = app_probe,
	.properties = app_properties,
	.dump = app_dump,
	.saved = app_saved,
	.keeps_channel = true,
};
