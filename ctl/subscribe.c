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

static int
subscribe_run(struct ctl *c, int argc, char **argv)
{
	struct msg_subscribe b = { .gid = argc == 1 ? argv[0] : NULL };
	struct sigaction sa = { .sa_handler = subscribe_on_signal };
	char err[256];

	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' || i > 0)
			return ctl_bad_arg(&ctl_cmd_subscribe, argc, argv, i);
	}
	if (ctl_check_name(&ctl_cmd_subscribe, "GID", b.gid) != 0)
		return CTL_USAGE;
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
			const struct msg_notify *n = m.body;
			if (c->json) {
				printf("{\"event\": ");
				ctl_json_string(stdout, n->event);
				printf(", \"gid\": ");
				ctl_json_string(stdout, n->gid ? n->gid : "");
				printf(", \"cts\": ");
				ctl_json_string(stdout, n->cts ? n->cts : "");
				printf(", \"checkpoint\": ");
				ctl_json_string(stdout, n->checkpoint_id ? n->checkpoint_id : "");
				printf(", \"seq\": %llu, \"time_ms\": %llu}\n", (unsigned long long)n->seq,
				    (unsigned long long)n->time_ms);
			} else {
				subscribe_print(n);
			}
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
	.usage = "[GID]",
	.help = "print events (checkpoints, bindings, CTS up/down) until interrupted",
	.more =
	    "Streams the GCS's events, of every job or of GID alone, until Ctrl-C (or SIGTERM): one\n"
	    "line each (time, event, GID, CTS, checkpoint id and seq), or with --json one JSON object\n"
	    "per line. Events: checkpoint, bound, moved, unbound, bind_lost, fenced, cts_up, cts_down.\n"
	    "example:\n"
	    "  gca-ctl subscribe job-7\n"
	    "  gca-ctl --json subscribe | while read -r ev; do ...; done\n",
	.run = subscribe_run,
};
