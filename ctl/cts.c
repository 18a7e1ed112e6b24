/* gca-ctl cts, gca-ctl cts remove: the Checkpoint Translation Services (paper 3.3). */
#include <stdio.h>
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
		else
			return ctl_usage(&ctl_cmd_cts);
	}
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_cts = {
	"cts", "[--class C] [--core-service S] [--property k=v] [--status S]",
	"list the CTSes, or those matching", cts_run,
};

static int
cts_remove_run(struct ctl *c, int argc, char **argv)
{
	struct msg_name b;

	if (argc != 1)
		return ctl_usage(&ctl_cmd_cts_remove);
	b.name = argv[0];
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
	"cts remove", "NAME", "retire a CTS (admin)", cts_remove_run,
};
