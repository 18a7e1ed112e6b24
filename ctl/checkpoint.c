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

	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage(&ctl_cmd_checkpoint);
	b.gid = argv[0];
	for (int i = 1; i < argc; i++) {
		/* --wait: the reply always comes after the record is stored; kept for scripts. */
		if (strcmp(argv[i], "--wait") == 0)
			continue;
		if (i + 1 < argc && strcmp(argv[i], "--key") == 0)
			b.idem_key = argv[++i];
		else
			return ctl_usage(&ctl_cmd_checkpoint);
	}
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
	"checkpoint", "GID [--wait] [--key IDEMPOTENCY-KEY]",
	"checkpoint a job now; prints the checkpoint id once it is recorded", checkpoint_run,
};
