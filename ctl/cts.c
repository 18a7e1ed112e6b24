/* gca-ctl cts, gca-ctl cts remove: the Checkpoint Translation Services (paper 3.3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static const struct ctl_list cts_list = {
	.what = "cts",
	.cols = { "cn", "gcaCoreService", "gcaStatus", "gcaEndpoint", "gcaClass", "gcaProperty", NULL },
	.heads = { "CTS", "CORE SERVICE", "STATUS", "ENDPOINT", "CLASSES", "PROPERTIES" },
};

const struct ctl_cmd ctl_cmd_cts = {
	.name = "cts",
	.opts = {
		{ "--class", NULL, "C", CTL_STRING, false, "it serves checkpointer class C" },
		{ "--core-service", NULL, "S", CTL_STRING, false, "app, criu or vmm" },
		{ "--property", NULL, "k=v", CTL_STRING, false, "it publishes the property k=v" },
		{ "--status", NULL, "S", CTL_STRING, false,
		  "ok, down, retired, or a core service's \"unavailable: ...\"" },
		{ "--limit", NULL, "N", CTL_COUNT, false,
		  "at most N (default 500), in the order of their names; when more\n"
		  "follow, a line on stderr gives the cursor" },
		{ "--cursor", NULL, "C", CTL_STRING, false, "the next page, from that line" },
	},
	.help = "list the CTSes, or those matching",
	.more =
	    "Each CTS (paper 3.3) drives one core service on one resource; what it publishes is its\n"
	    "entry in ou=cts. The options narrow the list (all of them must match):\n",
	.after =
	    "example:\n"
	    "  gca-ctl cts --class basic --status ok\n"
	    "  gca-ctl --json cts --core-service criu\n",
	.list = &cts_list,
};

static int
cts_remove_run(struct ctl *c, const struct ctl_args *a)
{
	struct msg_name b = { .name = a->words[0] };

	if (ctl_call(c, "cts remove", "cts_remove", &b, NULL) != 0)
		return CTL_FAILED;
	if (c->json) {
		struct ctl_json j;

		ctl_json_begin(&j, stdout);
		ctl_json_str(&j, "cts", b.name);
		ctl_json_str(&j, "status", "retired");
		ctl_json_end(&j);
	} else {
		printf("CTS %s retired (its entry and records stay)\n", b.name);
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_cts_remove = {
	.name = "cts remove",
	.words = "NAME", .min = 1, .max = 1,
	.missing = "which CTS? give its NAME",
	.help = "retire a CTS (admin)",
	.more =
	    "Its entry stays, with gcaStatus: retired, and so do the records of its checkpoints; the\n"
	    "GCS sends it no more work. Only the admin may: source DIR/admin.env (or give --admin).\n",
	.after =
	    "example:\n"
	    "  gca-ctl cts remove cts-app-old\n",
	.run = cts_remove_run,
};
