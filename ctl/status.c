/* gca-ctl status, gca-ctl services: is the GCS there, and which GCSes the directory knows. */
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "ctl/ctl.h"

static int
status_run(struct ctl *c, const struct ctl_args *a)
{
	struct msg_ping_ok *ok;
	uint64_t t0 = time_mono_ms();

	(void)a;
	if (ctl_call(c, "status", "ping", NULL, (void **)&ok) != 0)
		return CTL_FAILED;
	if (c->json) {
		struct ctl_json j;

		ctl_json_begin(&j, stdout);
		ctl_json_str(&j, "gcs", c->endpoint);
		ctl_json_bool(&j, "up", true);
		ctl_json_num(&j, "round_trip_ms", time_mono_ms() - t0);
		ctl_json_end(&j);
	} else {
		printf("GCS %s is up (answered in %llu ms)\n", c->endpoint,
		    (unsigned long long)(time_mono_ms() - t0));
	}
	free(ok);
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_status = {
	.name = "status",
	.help = "say whether the GCS answers",
	.more =
	    "A ping over mutual TLS: it checks the endpoint, the CA and the certificate at once. With\n"
	    "several GCS (--gcs A,B) the first that answers is named.\n",
	.after =
	    "example:\n"
	    "  gca-ctl status\n"
	    "  gca-ctl --json status      {\"gcs\": \"127.0.0.1:4711\", \"up\": true, \"round_trip_ms\": 1}\n",
	.run = status_run,
};

static const struct ctl_list services_list = {
	.what = "services",
	.cols = { "cn", "gcaEndpoint", "gcaStatus", "gcaHeartbeat", NULL },
	.heads = { "NAME", "ENDPOINT", "STATUS", "PUBLISHED" },
};

const struct ctl_cmd ctl_cmd_services = {
	.name = "services",
	.help = "list the GCSes published in the directory",
	.more =
	    "The gcaService entries of ou=services: each GCS's name, endpoint, status and when it\n"
	    "published itself. A broker without gca-ctl finds the same with\n"
	    "  ldapsearch -x -H \"$GCA_LDAP_URI\" -b ou=services,o=gca gcaEndpoint\n",
	.after =
	    "example:\n"
	    "  gca-ctl services\n",
	.list = &services_list,
};
