/* gca-ctl checkpoint GID: the broker's doCheckpoint(GID) (paper 5.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "ctl/ctl.h"

static int
checkpoint_run(struct ctl *c, int argc, char **argv)
{
	struct msg_do_checkpoint b = { 0 };
	struct msg_checkpoint_ok *ok;

	for (int i = 0; i < argc; i++) {
		/* --wait: the reply always comes after the record is stored; kept for scripts. */
		if (strcmp(argv[i], "--wait") == 0)
			continue;
		if (i + 1 < argc && strcmp(argv[i], "--key") == 0)
			b.idem_key = argv[++i];
		else if (argv[i][0] != '-' && b.gid == NULL)
			b.gid = argv[i];
		else
			return ctl_bad_arg(&ctl_cmd_checkpoint, argc, argv, i);
	}
	if (b.gid == NULL)
		return ctl_usage_error(&ctl_cmd_checkpoint, "which job? give its GID");
	/* With several GCS a request may be sent again through another: a key makes that safe. */
	if (b.idem_key == NULL && c->endpoints != NULL && strchr(c->endpoints, ',') != NULL) {
		static char key[ID_LEN + 8];
		memcpy(key, "ctl-", 4);
		id_new(key + 4);
		b.idem_key = key;
	}
	if (ctl_call(c, "checkpoint", "do_checkpoint", &b, (void **)&ok) != 0)
		return CTL_FAILED;
	if (c->json) {
		printf("{\"gid\": ");
		ctl_json_string(stdout, b.gid);
		printf(", \"checkpoint\": ");
		ctl_json_string(stdout, ok->checkpoint_id);
		printf(", \"seq\": %llu, \"image\": ", (unsigned long long)ok->seq);
		ctl_json_string(stdout, ok->image_name ? ok->image_name : "");
		printf(", \"cts\": ");
		ctl_json_string(stdout, ok->cts ? ok->cts : "");
		printf("}\n");
	} else {
		printf("checkpoint %s of %s: seq %llu at %s\n", ok->checkpoint_id, b.gid,
		    (unsigned long long)ok->seq, ok->cts ? ok->cts : "?");
	}
	proto_body_free(proto_type_find("do_checkpoint")->reply, ok);
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_checkpoint = {
	.name = "checkpoint",
	.usage = "GID [--wait] [--key IDEMPOTENCY-KEY]",
	.help = "checkpoint a job now; prints the checkpoint id once it is recorded",
	.more =
	    "The GCS sends the request to the CTS that runs GID; the answer comes once the record is\n"
	    "in the directory, so the checkpoint id printed can be recovered from at once.\n"
	    "  --wait             wait for the record (what it always does; for scripts that say so)\n"
	    "  --key KEY          an idempotency key: a retry with the same key returns the first\n"
	    "                     result and takes no second checkpoint\n"
	    "prints: checkpoint ID of GID: seq N at CTS\n"
	    "   or, with --json: {\"gid\": ..., \"checkpoint\": ..., \"seq\": N, \"image\": ..., \"cts\": ...}\n"
	    "example:\n"
	    "  gca-ctl checkpoint job-7\n"
	    "  gca-ctl --json checkpoint job-7 --key nightly-2026-11-25\n",
	.run = checkpoint_run,
};
