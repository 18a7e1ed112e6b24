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
gc_run(struct ctl *c, int argc, char **argv)
{
	struct msg_image_gc b = { 0 };
	struct msg_image_gc_ok *ok;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0)
			b.dry_run = true;
		else if (argv[i][0] != '-' && b.gid == NULL)
			b.gid = argv[i];
		else
			return ctl_bad_arg(&ctl_cmd_gc, argc, argv, i);
	}
	if (ctl_check_name(&ctl_cmd_gc, "GID", b.gid) != 0)
		return CTL_USAGE;
	if (ctl_call(c, "gc", "image_gc", &b, (void **)&ok) != 0)
		return CTL_FAILED;
	if (c->json) {
		printf("{\"dry_run\": %s, \"removed\": [", b.dry_run ? "true" : "false");
		for (size_t i = 0; i < ok->removed.n; i++) {
			printf("%s", i ? ", " : "");
			ctl_json_string(stdout, ok->removed.v[i]);
		}
		printf("], \"errors\": [");
		for (size_t i = 0; i < ok->errors.n; i++) {
			printf("%s", i ? ", " : "");
			ctl_json_string(stdout, ok->errors.v[i]);
		}
		printf("], \"skipped\": [");
		for (size_t i = 0; i < ok->skipped.n; i++) {
			printf("%s", i ? ", " : "");
			ctl_json_string(stdout, ok->skipped.v[i]);
		}
		printf("]}\n");
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
	int rc = ok->errors.n ? CTL_FAILED : CTL_OK;
	proto_body_free(proto_type_find("image_gc")->reply, ok);
	return rc;
}

const struct ctl_cmd ctl_cmd_gc = {
	.name = "gc",
	.usage = "[GID] [--dry-run]",
	.help = "run image retention at every live CTS now (admin); --dry-run shows what it would remove",
	.more =
	    "Each CTS keeps its newest `retention` checkpoints per job (cts.conf(5)) and every image\n"
	    "they build on, and removes the others; the records of images it took are marked expired.\n"
	    "  GID         only this job's images\n"
	    "  --dry-run   say what would be removed, remove nothing\n"
	    "prints one line per image: removed (or would remove) CTS CHECKPOINT-ID GID\n"
	    "example:\n"
	    "  . DIR/admin.env; gca-ctl gc job-7 --dry-run\n",
	.run = gc_run,
};
