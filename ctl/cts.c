/* gca-ctl cts, gca-ctl cts remove: the Checkpoint Translation Services (paper 3.3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int
cts_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "cn", "gcaCoreService", "gcaStatus", "gcaEndpoint",
		"gcaClass", "gcaProperty", NULL };
	static const char *const heads[] = { "CTS", "CORE SERVICE", "STATUS", "ENDPOINT", "CLASSES",
		"PROPERTIES" };
	struct msg_query q = { .what = "cts" };

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--class") == 0)
			q.class_ = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--core-service") == 0)
			q.core_service = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--property") == 0)
			q.property = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--status") == 0)
			q.status = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--limit") == 0 && atoi(argv[i + 1]) > 0)
			q.limit = (uint64_t)atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--cursor") == 0)
			q.cursor = argv[++i];
		else
			return ctl_bad_arg(&ctl_cmd_cts, argc, argv, i);
	}
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_cts = {
	.name = "cts",
	.usage = "[--class C] [--core-service S] [--property k=v] [--status S] [--limit N] "
	    "[--cursor C]",
	.help = "list the CTSes, or those matching",
	.more =
	    "Each CTS (paper 3.3) drives one core service on one resource; what it publishes is its\n"
	    "entry in ou=cts. The options narrow the list (all of them must match):\n"
	    "  --class C          it serves checkpointer class C\n"
	    "  --core-service S   app, criu or vmm\n"
	    "  --property k=v     it publishes the property k=v\n"
	    "  --status S         ok, down, retired, or a core service's \"unavailable: ...\"\n"
	    "  --limit N          at most N (default 500), in the order of their names; when more\n"
	    "                     follow, a line on stderr gives the cursor\n"
	    "  --cursor C         the next page, from that line\n"
	    "example:\n"
	    "  gca-ctl cts --class basic --status ok\n"
	    "  gca-ctl --json cts --core-service criu\n",
	.run = cts_run,
};

static int
cts_remove_run(struct ctl *c, int argc, char **argv)
{
	struct msg_name b = { 0 };

	for (int i = 0; i < argc; i++) {
		if (argv[i][0] != '-' && b.name == NULL)
			b.name = argv[i];
		else
			return ctl_bad_arg(&ctl_cmd_cts_remove, argc, argv, i);
	}
	if (b.name == NULL)
		return ctl_usage_error(&ctl_cmd_cts_remove, "which CTS? give its NAME");
	if (ctl_call(c, "cts remove", "cts_remove", &b, NULL) != 0)
		return CTL_FAILED;
	if (c->json) {
		printf("{\"cts\": ");
		ctl_json_string(stdout, b.name);
		printf(", \"status\": \"retired\"}\n");
	} else {
		printf("CTS %s retired (its entry and records stay)\n", b.name);
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_cts_remove = {
	.name = "cts remove",
	.usage = "NAME",
	.help = "retire a CTS (admin)",
	.more =
	    "Its entry stays, with gcaStatus: retired, and so do the records of its checkpoints; the\n"
	    "GCS sends it no more work. Only the admin may: source DIR/admin.env (or give --admin).\n"
	    "example:\n"
	    "  gca-ctl cts remove cts-app-old\n",
	.run = cts_remove_run,
};
