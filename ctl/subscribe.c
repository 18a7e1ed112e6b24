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

static int
subscribe_run(struct ctl *c, int argc, char **argv)
{
	struct msg_subscribe b = { .gid = argc == 1 ? argv[0] : NULL };
	struct sigaction sa = { .sa_handler = subscribe_on_signal };
	char err[256];

	if (argc > 1)
		return ctl_usage(&ctl_cmd_subscribe);
	if (ctl_call(c, "subscribe", "subscribe", &b, NULL) != 0)
		return CTL_FAILED;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!c->json)
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
				char when[32];
				time_generalized(n->time_ms, when);
				printf("%s %-10s %-20s %-12s %s%s%llu\n", when, n->event, n->gid ? n->gid : "-",
				    n->cts ? n->cts : "-", n->checkpoint_id ? n->checkpoint_id : "",
				    n->seq ? " seq " : "", (unsigned long long)n->seq);
			}
			fflush(stdout);
		}
		proto_msg_free(&m);
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_subscribe = {
	"subscribe", "[GID]", "print events (checkpoints, bindings, CTS up/down) until interrupted",
	subscribe_run,
};
