/* gca-ctl status, gca-ctl services: is the GCS there, and which GCSes the directory knows. */
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "ctl/ctl.h"

static int
status_run(struct ctl *c, int argc, char **argv)
{
	struct msg_ping_ok *ok;
	uint64_t t0 = time_mono_ms();

	(void)argv;
	if (argc != 0)
		return ctl_usage(&ctl_cmd_status);
	if (ctl_call(c, "status", "ping", NULL, (void **)&ok) != 0)
		return CTL_FAILED;
	if (c->json) {
		printf("{\"gcs\": ");
		ctl_json_string(stdout, c->endpoint);
		printf(", \"up\": true, \"round_trip_ms\": %llu}\n",
		    (unsigned long long)(time_mono_ms() - t0));
	} else {
		printf("GCS %s is up (answered in %llu ms)\n", c->endpoint,
		    (unsigned long long)(time_mono_ms() - t0));
	}
	free(ok);
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_status = {
	"status", "", "say whether the GCS answers", status_run,
};

static int
services_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "cn", "gcaEndpoint", "gcaStatus", "gcaHeartbeat", NULL };
	static const char *const heads[] = { "NAME", "ENDPOINT", "STATUS", "PUBLISHED" };
	struct msg_query q = { .what = "services" };

	(void)argv;
	if (argc != 0)
		return ctl_usage(&ctl_cmd_services);
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_services = {
	"services", "", "list the GCSes published in the directory", services_run,
};
