/* gca-ctl gc [GID] [--dry-run]: retention at every live CTS now (keep each CTS's newest
 * `retention` checkpoints per job and what they build on; the records of removed images taken
 * there are marked expired), or with --dry-run what it would remove. Admin only. CTSes that are
 * down are not asked and are named ("skipped"); the exit status stays 0 for them, as gc did
 * what could be done, but no line says "nothing to remove" without saying who was not asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int
gc_run(struct ctl *c, const struct ctl_args *a)
{
	struct msg_image_gc b = { .gid = a->nwords > 0 ? a->words[0] : NULL,
		.dry_run = ctl_args_has(a, "--dry-run") };
	struct msg_image_gc_ok *ok;
	int rc;

	if (ctl_call(c, "gc", "image_gc", &b, (void **)&ok) != 0)
		return CTL_FAILED;
	if (c->json) {
		struct ctl_json j;

		ctl_json_begin(&j, stdout);
		ctl_json_bool(&j, "dry_run", b.dry_run);
		ctl_json_list(&j, "removed", &ok->removed);
		ctl_json_list(&j, "errors", &ok->errors);
		ctl_json_list(&j, "skipped", &ok->skipped);
		ctl_json_end(&j);
	} else {
		/* each line: CTS checkpoint-id GID */
		for (size_t i = 0; i < ok->removed.n; i++)
			printf("%s %s\n", b.dry_run ? "would remove" : "removed", ok->removed.v[i]);
		/* CTS: why; a CTS that is down keeps its images until it runs retention itself */
		for (size_t i = 0; i < ok->skipped.n; i++)
			printf("skipped %s (not asked: its images stay until it is up)\n",
			    ok->skipped.v[i]);
		for (size_t i = 0; i < ok->errors.n; i++)
			fprintf(stderr, "gca-ctl: gc: %s\n", ok->errors.v[i]);
		if (ok->removed.n == 0)
			printf("nothing to remove%s\n", ok->skipped.n ? " at the CTSes asked" : "");
	}
	rc = ok->errors.n ? CTL_FAILED : CTL_OK;
	proto_body_free(proto_type_find("image_gc")->reply, ok);
	return rc;
}

const struct ctl_cmd ctl_cmd_gc = {
	.name = "gc",
	.words = "[GID]", .min = 0, .max = 1,
	.name_check = "GID",
	.opts = {
		{ "GID", NULL, NULL, CTL_WORDS, false, "only this job's images" },
		{ "--dry-run", NULL, NULL, CTL_FLAG, false, "say what would be removed, remove nothing" },
	},
	.help = "run image retention at every live CTS now (admin); --dry-run shows what it would remove",
	.more =
	    "Each CTS keeps its newest `retention` checkpoints per job (cts.conf(5)) and every image\n"
	    "they build on, and removes the others; the records of images it took are marked expired.\n",
	.after =
	    "prints one line per image: removed (or would remove) CTS CHECKPOINT-ID GID\n"
	    "example:\n"
	    "  . DIR/admin.env; gca-ctl gc job-7 --dry-run\n",
	.run = gc_run,
};
