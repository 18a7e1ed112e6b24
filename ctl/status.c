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

	if (argc != 0)
		return ctl_bad_arg(&ctl_cmd_status, argc, argv, 0);
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
	.name = "status",
	.usage = "",
	.help = "say whether the GCS answers",
	.more =
	    "A ping over mutual TLS: it checks the endpoint, the CA and the certificate at once. With\n"
	    "several GCS (--gcs A,B) the first that answers is named.\n"
	    "example:\n"
	    "  gca-ctl status\n"
	    "  gca-ctl --json status      {\"gcs\": \"127.0.0.1:4711\", \"up\": true, \"round_trip_ms\": 1}\n",
	.run = status_run,
};

static int
services_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "cn", "gcaEndpoint", "gcaStatus", "gcaHeartbeat", NULL };
	static const char *const heads[] = { "NAME", "ENDPOINT", "STATUS", "PUBLISHED" };
	struct msg_query q = { .what = "services" };

	if (argc != 0)
		return ctl_bad_arg(&ctl_cmd_services, argc, argv, 0);
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_services = {
	.name = "services",
	.usage = "",
	.help = "list the GCSes published in the directory",
	.more =
	    "The gcaService entries of ou=services: each GCS's name, endpoint, status and when it\n"
	    "published itself. A broker without gca-ctl finds the same with\n"
	    "  ldapsearch -x -H \"$GCA_LDAP_URI\" -b ou=services,o=gca gcaEndpoint\n"
	    "example:\n"
	    "  gca-ctl services\n",
	.run = services_run,
};
