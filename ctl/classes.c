/* gca-ctl classes, gca-ctl class add: the checkpointer classes (paper 2, 5.4). */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

static int
classes_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "cn", "description", "gcaProperty", NULL };
	static const char *const heads[] = { "CLASS", "DESCRIPTION", "PROPERTIES" };
	struct msg_query q = { .what = "classes" };

	if (argc != 0)
		return ctl_bad_arg(&ctl_cmd_classes, argc, argv, 0);
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_classes = {
	.name = "classes",
	.usage = "",
	.help = "list the checkpointer classes",
	.more =
	    "A class (paper 2, 5.4) is a name and key=value properties a job may need (basic: one\n"
	    "process, one thread, files only); CTSes name the classes they serve (gca-ctl cts --class).\n"
	    "example:\n"
	    "  gca-ctl classes\n"
	    "  gca-ctl --json classes\n",
	.run = classes_run,
};

static int
class_add_run(struct ctl *c, int argc, char **argv)
{
	struct msg_class_register b = { 0 };
	struct msg_class_register_ok *ok = NULL;
	bool replaced;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--description") == 0 && i + 1 < argc) {
			b.description = argv[++i];
		} else if (argv[i][0] != '-' && b.name == NULL) {
			b.name = argv[i];
		} else if (strchr(argv[i], '=') != NULL && argv[i][0] != '=' && argv[i][0] != '-') {
			proto_strlist_add(&b.properties, argv[i]);
		} else {
			proto_strlist_free(&b.properties);
			if (argv[i][0] != '-')
				return ctl_usage_error(&ctl_cmd_class_add, "\"%s\" is not key=value", argv[i]);
			return ctl_bad_arg(&ctl_cmd_class_add, argc, argv, i);
		}
	}
	if (b.name == NULL)
		return ctl_usage_error(&ctl_cmd_class_add, "which class? give its NAME");
	if (ctl_check_name(&ctl_cmd_class_add, "class name", b.name) != 0) {
		proto_strlist_free(&b.properties);
		return CTL_USAGE;
	}
	rc = ctl_call(c, "class add", "class_register", &b, (void **)&ok);
	proto_strlist_free(&b.properties);
	if (rc != 0)
		return CTL_FAILED;
	/* an older GCS replies nothing: then it is not known which, and "added" is what it said */
	replaced = ok != NULL && ok->replaced;
	proto_body_free(proto_type_find("class_register")->reply, ok);
	if (c->json) {
		printf("{\"class\": ");
		ctl_json_string(stdout, b.name);
		printf(", \"added\": %s, \"replaced\": %s}\n", replaced ? "false" : "true",
		    replaced ? "true" : "false");
	} else {
		printf("class %s %s\n", b.name, replaced ? "replaced" : "added");
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_class_add = {
	.name = "class add",
	.usage = "NAME [--description TEXT] key=value...",
	.help = "add or update a checkpointer class (admin)",
	.more =
	    "Only the admin may: source DIR/admin.env (or give --admin). A class that exists is\n"
	    "replaced: its description and properties become the ones given (it prints \"replaced\").\n"
	    "Class names are compared ignoring case: a name that differs from an existing class only in\n"
	    "case (MPI for mpi) is refused (exists). A name has no control character and no space at\n"
	    "either end or two in a row.\n"
	    "  --description TEXT  what the class is for\n"
	    "  key=value           a property (as many as needed); mtbf= must be a positive duration\n"
	    "                      (12h, 90m): the jobs' mean time between failures\n"
	    "example:\n"
	    "  . DIR/admin.env; gca-ctl class add mpi --description \"MPI jobs\" ranks=many network=yes\n",
	.run = class_add_run,
};
