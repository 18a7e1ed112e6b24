/* gca-ctl checkpoint GID: the broker's doCheckpoint(GID) (paper 5.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "ctl/ctl.h"

/* The request may have been taken (its answer was lost, or it may be recorded later): say so,
 * with the key and the command that asks again without taking a second checkpoint. */
static void
checkpoint_unknown(struct ctl *c, const struct msg_do_checkpoint *b)
{
	const char *again[] = { "checkpoint", b->gid, "--idem-key", b->idem_key, NULL };
	char **av = xstrvdup(again);

	fprintf(stderr, "gca-ctl: the checkpoint of %s may still be taken and recorded (idempotency "
	    "key %s); to ask again safely (never a second checkpoint) or to learn its outcome, run:\n"
	    "  gca-ctl", b->gid, b->idem_key);
	if (c->gargc > 1) {
		fputc(' ', stderr);
		ctl_print_command(stderr, c->gargc - 1, c->gargv + 1);
	}
	fputc(' ', stderr);
	ctl_print_command(stderr, (int)GCA_NITEMS(again) - 1, av);
	xstrv_free(av);
	fputc('\n', stderr);
	if (c->json) {
		struct ctl_json j;

		ctl_json_begin(&j, stdout);
		ctl_json_str(&j, "gid", b->gid);
		ctl_json_str(&j, "idem_key", b->idem_key);
		ctl_json_str(&j, "outcome", "unknown");
		ctl_json_str(&j, "code", c->code);
		ctl_json_end(&j);
	}
}

static int
checkpoint_run(struct ctl *c, const struct ctl_args *a)
{
	static char key[ID_LEN + 8] = "ctl-";
	struct msg_do_checkpoint b = { .gid = a->words[0], .idem_key = ctl_args_get(a, "--idem-key") };
	struct msg_checkpoint_ok *ok;

	/* Always a key: a request sent again (through another GCS, or by the user after an unknown
	 * outcome) is then never taken twice. */
	if (b.idem_key == NULL) {
		id_new(key + 4);
		b.idem_key = key;
	}
	if (ctl_call(c, "checkpoint", "do_checkpoint", &b, (void **)&ok) != 0) {
		if (ctl_outcome_unknown(c))
			checkpoint_unknown(c, &b);
		return CTL_FAILED;
	}
	if (c->json) {
		struct ctl_json j;

		ctl_json_begin(&j, stdout);
		ctl_json_str(&j, "gid", b.gid);
		ctl_json_str(&j, "idem_key", b.idem_key);
		ctl_json_str(&j, "checkpoint", ok->checkpoint_id);
		ctl_json_num(&j, "seq", ok->seq);
		ctl_json_str(&j, "image", ok->image_name);
		ctl_json_str(&j, "cts", ok->cts);
		ctl_json_end(&j);
	} else {
		printf("checkpoint %s of %s: seq %llu at %s\n", ok->checkpoint_id, b.gid,
		    (unsigned long long)ok->seq, ok->cts ? ok->cts : "?");
	}
	proto_body_free(proto_type_find("do_checkpoint")->reply, ok);
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_checkpoint = {
	.name = "checkpoint",
	.words = "GID", .min = 1, .max = 1,
	.missing = "which job? give its GID",
	.name_check = "GID",
	.opts = {
		/* the reply always comes after the record is stored; kept for scripts */
		{ "--wait", NULL, NULL, CTL_FLAG, false,
		  "wait for the record (what it always does; for scripts that say so)" },
		/* --key is the older spelling, easily taken for the global --key (a TLS key) */
		{ "--idem-key", "--key", "KEY", CTL_STRING, false,
		  "an idempotency key (--key is the older spelling): a retry with the\n"
		  "same key returns the first result and takes no second checkpoint;\n"
		  "without it gca-ctl makes one (ctl-UUID)" },
	},
	.help = "checkpoint a job now; prints the checkpoint id once it is recorded",
	.more =
	    "The GCS sends the request to the CTS that runs GID; the answer comes once the record is\n"
	    "in the directory, so the checkpoint id printed can be recovered from at once.\n",
	.after =
	    "prints: checkpoint ID of GID: seq N at CTS\n"
	    "   or, with --json: {\"gid\": ..., \"idem_key\": ..., \"checkpoint\": ..., \"seq\": N,\n"
	    "   \"image\": ..., \"cts\": ...}\n"
	    "When the outcome is unknown (exit 1 with io, timeout, directory_down, cts_down, ...: the\n"
	    "checkpoint may still be taken and recorded), stderr gives the key and the command that asks\n"
	    "again safely; with --json stdout has {\"gid\", \"idem_key\", \"outcome\": \"unknown\", \"code\"}.\n"
	    "example:\n"
	    "  gca-ctl checkpoint job-7\n"
	    "  gca-ctl --json checkpoint job-7 --idem-key nightly-2026-11-25\n",
	.run = checkpoint_run,
};
