/* gca-ctl classes, gca-ctl class add: the checkpointer classes (paper 2, 5.4). */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

static const struct ctl_list classes_list = {
	.what = "classes",
	.cols = { "cn", "description", "gcaProperty", NULL },
	.heads = { "CLASS", "DESCRIPTION", "PROPERTIES" },
};

const struct ctl_cmd ctl_cmd_classes = {
	.name = "classes",
	.help = "list the checkpointer classes",
	.more =
	    "A class (paper 2, 5.4) is a name and key=value properties a job may need (basic: one\n"
	    "process, one thread, files only); CTSes name the classes they serve (gca-ctl cts --class).\n",
	.after =
	    "example:\n"
	    "  gca-ctl classes\n"
	    "  gca-ctl --json classes\n",
	.list = &classes_list,
};

static int
class_add_run(struct ctl *c, const struct ctl_args *a)
{
	struct msg_class_register b = { .name = a->words[0],
		.description = ctl_args_get(a, "--description") };
	struct msg_class_register_ok *ok = NULL;
	bool replaced;
	int rc;

	for (int i = 1; i < a->nwords; i++) {
		if (strchr(a->words[i], '=') == NULL || a->words[i][0] == '=') {
			proto_strlist_free(&b.properties);
			return ctl_usage_error(a->cmd, "\"%s\" is not key=value", a->words[i]);
		}
		proto_strlist_add(&b.properties, a->words[i]);
	}
	rc = ctl_call(c, "class add", "class_register", &b, (void **)&ok);
	proto_strlist_free(&b.properties);
	if (rc != 0)
		return CTL_FAILED;
	/* an older GCS replies nothing: then it is not known which, and "added" is what it said */
	replaced = ok != NULL && ok->replaced;
	proto_body_free(proto_type_find("class_register")->reply, ok);
	if (c->json) {
		struct ctl_json j;

		ctl_json_begin(&j, stdout);
		ctl_json_str(&j, "class", b.name);
		ctl_json_bool(&j, "added", !replaced);
		ctl_json_bool(&j, "replaced", replaced);
		ctl_json_end(&j);
	} else {
		printf("class %s %s\n", b.name, replaced ? "replaced" : "added");
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_class_add = {
	.name = "class add",
	.words = "NAME", .rest = "key=value...", .min = 1, .max = -1,
	.missing = "which class? give its NAME",
	.name_check = "class name",
	.opts = {
		{ "--description", NULL, "TEXT", CTL_STRING, false, "what the class is for" },
		{ "key=value", NULL, NULL, CTL_WORDS, false,
		  "a property (as many as needed); mtbf= must be a positive duration\n"
		  "(12h, 90m): the jobs' mean time between failures" },
	},
	.help = "add or update a checkpointer class (admin)",
	.more =
	    "Only the admin may: source DIR/admin.env (or give --admin). A class that exists is\n"
	    "replaced: its description and properties become the ones given (it prints \"replaced\").\n"
	    "Class names are compared ignoring case: a name that differs from an existing class only in\n"
	    "case (MPI for mpi) is refused (exists). A name has no control character and no space at\n"
	    "either end or two in a row.\n",
	.after =
	    "example:\n"
	    "  . DIR/admin.env; gca-ctl class add mpi --description \"MPI jobs\" ranks=many network=yes\n",
	.run = class_add_run,
};
