/* gca-ctl subscribe [GID]: events from the GCS until interrupted (paper 3.5). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "ctl/ctl.h"

static volatile sig_atomic_t subscribe_stop;

static void
subscribe_on_signal(int sig)
{
	(void)sig;
	subscribe_stop = 1;
}

/* One event for people: time, event, GID, CTS, then the checkpoint and its number for those
 * that have one (a binding or a CTS going up has neither); no padding at the end of a line. */
static void
subscribe_print(const struct msg_notify *n)
{
	char when[32], line[2048];
	size_t len;

	time_generalized(n->time_ms, when);
	len = (size_t)snprintf(line, sizeof line, "%s %-10s %-20s %-12s", when, n->event,
	    n->gid ? n->gid : "-", n->cts ? n->cts : "-");
	if (len < sizeof line && n->checkpoint_id != NULL && n->checkpoint_id[0] != '\0')
		len += (size_t)snprintf(line + len, sizeof line - len, " %s", n->checkpoint_id);
	if (len < sizeof line && n->seq != 0)
		len += (size_t)snprintf(line + len, sizeof line - len, " seq %llu",
		    (unsigned long long)n->seq);
	len = strlen(line);
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	printf("%s\n", line);
}

/* One event for scripts: a JSON object on a line. */
static void
subscribe_print_json(const struct msg_notify *n)
{
	struct ctl_json j;

	ctl_json_begin(&j, stdout);
	ctl_json_str(&j, "event", n->event);
	ctl_json_str(&j, "gid", n->gid);
	ctl_json_str(&j, "cts", n->cts);
	ctl_json_str(&j, "checkpoint", n->checkpoint_id);
	ctl_json_num(&j, "seq", n->seq);
	ctl_json_num(&j, "time_ms", n->time_ms);
	ctl_json_end(&j);
}

static int
subscribe_run(struct ctl *c, const struct ctl_args *a)
{
	struct msg_subscribe b = { .gid = a->nwords > 0 ? a->words[0] : NULL };
	struct sigaction sa = { .sa_handler = subscribe_on_signal };
	char err[256];

	if (ctl_call(c, "subscribe", "subscribe", &b, NULL) != 0)
		return CTL_FAILED;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* on stderr in both modes, so a script knows when it may start what it wants to hear */
	fprintf(stderr, "listening for events%s%s (Ctrl-C stops)\n", b.gid ? " of " : "",
	    b.gid ? b.gid : "");
	while (!subscribe_stop) {
		struct proto_msg m;
		int rc = proto_sync_read(c->conn, 1000, NULL, &m, err, sizeof err);

		if (rc == -2)
			continue;	/* a second without events: check for Ctrl-C */
		if (rc != 0) {
			if (subscribe_stop)
				break;
			fprintf(stderr, "gca-ctl: subscribe: %s\n", err);
			if (c->neps > 1) {
				/* Another GCS of the list: every GCS relays every event (gcs/relay.c);
				 * those of the moments in between are missed. */
				fprintf(stderr, "gca-ctl: subscribing through the next GCS\n");
				ctl_drop(c);
				if (ctl_call(c, "subscribe", "subscribe", &b, NULL) == 0)
					continue;
			}
			return CTL_FAILED;
		}
		if (strcmp(m.type, "notify") == 0) {
			if (c->json)
				subscribe_print_json(m.body);
			else
				subscribe_print(m.body);
			fflush(stdout);
		}
		proto_msg_free(&m);
		if (ferror(stdout))
			break;		/* its reader went away (SIGPIPE is ignored: main) */
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_subscribe = {
	.name = "subscribe",
	.words = "[GID]", .min = 0, .max = 1,
	.name_check = "GID",
	.help = "print events (checkpoints, bindings, CTS up/down) until interrupted",
	.more =
	    "Streams the GCS's events, of every job or of GID alone, until Ctrl-C (or SIGTERM): one\n"
	    "line each (time, event, GID, CTS, checkpoint id and seq), or with --json one JSON object\n"
	    "per line. Events: checkpoint, bound, moved, unbound, bind_lost, fenced, cts_up, cts_down.\n",
	.after =
	    "example:\n"
	    "  gca-ctl subscribe job-7\n"
	    "  gca-ctl --json subscribe | while read -r ev; do ...; done\n",
	.run = subscribe_run,
};
