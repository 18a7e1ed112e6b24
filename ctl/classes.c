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

	(void)argv;
	if (argc != 0)
		return ctl_usage(&ctl_cmd_classes);
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_classes = {
	"classes", "", "list the checkpointer classes", classes_run,
};

static int
class_add_run(struct ctl *c, int argc, char **argv)
{
	struct msg_class_register b = { 0 };
	int rc;

	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage(&ctl_cmd_class_add);
	b.name = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--description") == 0 && i + 1 < argc) {
			b.description = argv[++i];
		} else if (strchr(argv[i], '=') != NULL && argv[i][0] != '=') {
			proto_strlist_add(&b.properties, argv[i]);
		} else {
			proto_strlist_free(&b.properties);
			fprintf(stderr, "gca-ctl: \"%s\" is not key=value\n", argv[i]);
			return ctl_usage(&ctl_cmd_class_add);
		}
	}
	rc = ctl_call(c, "class add", "class_register", &b, NULL);
	proto_strlist_free(&b.properties);
	if (rc != 0)
		return CTL_FAILED;
	if (c->json) {
		printf("{\"class\": ");
		ctl_json_string(stdout, b.name);
		printf(", \"added\": true}\n");
	} else {
		printf("class %s added\n", b.name);
	}
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_class_add = {
	"class add", "NAME [--description TEXT] key=value...",
	"add or update a checkpointer class (admin)", class_add_run,
};
