/* gca-ctl's commands, their usage lines and help, and what a usage error says. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "ctl/ctl.h"

const struct ctl_cmd *const ctl_cmds[] = {
	&ctl_cmd_status, &ctl_cmd_services, &ctl_cmd_classes, &ctl_cmd_class_add, &ctl_cmd_cts,
	&ctl_cmd_cts_remove, &ctl_cmd_jobs, &ctl_cmd_checkpoint, &ctl_cmd_checkpoints,
	&ctl_cmd_subscribe, &ctl_cmd_gc,
};
const size_t ctl_ncmds = GCA_NITEMS(ctl_cmds);

const char ctl_usage_text[] =
    "usage: gca-ctl [--gcs HOST:PORT[,HOST:PORT...]] [--ca F] [--cert F] [--key F]\n"
    "               [--admin | --broker] [--json] [--timeout SECONDS] COMMAND [ARGS]\n";

/* The options before the command; those without a value may also follow it. */
static const struct {
	const char	*name;
	bool		 value;
} help_globals[] = {
	{ "--gcs", true }, { "--ca", true }, { "--cert", true }, { "--key", true },
	{ "--timeout", true }, { "--admin", false }, { "--broker", false }, { "--json", false },
};

bool
ctl_global_option(const char *arg, bool *takes_value)
{
	for (size_t i = 0; i < GCA_NITEMS(help_globals); i++) {
		if (strcmp(arg, help_globals[i].name) == 0) {
			if (takes_value != NULL)
				*takes_value = help_globals[i].value;
			return true;
		}
	}
	return false;
}

void
ctl_usage_line(FILE *f, const struct ctl_cmd *cmd)
{
	fprintf(f, "usage: gca-ctl %s%s%s\n", cmd->name, cmd->usage[0] ? " " : "", cmd->usage);
}

int
ctl_usage(const struct ctl_cmd *cmd)
{
	ctl_usage_line(stderr, cmd);
	return CTL_USAGE;
}

int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gca-ctl: %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ctl_usage(cmd);
}

/* Does the command's usage line name OPT as an option that takes a value ("[--limit N]")? */
static bool
help_takes_value(const struct ctl_cmd *cmd, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = strstr(cmd->usage, opt); p != NULL; p = strstr(p + 1, opt)) {
		if ((p == cmd->usage || p[-1] == '[' || p[-1] == ' ') && p[n] == ' ')
			return true;
	}
	return false;
}

int
ctl_bad_arg(const struct ctl_cmd *cmd, int argc, char **argv, int i)
{
	const char *a = argv[i];
	bool value;

	if (a[0] != '-')
		return ctl_usage_error(cmd, "unexpected argument \"%s\"", a);
	if (help_takes_value(cmd, a))
		return i + 1 < argc ? ctl_usage_error(cmd, "%s: bad value \"%s\"", a, argv[i + 1]) :
		    ctl_usage_error(cmd, "%s needs a value", a);
	if (ctl_global_option(a, &value) && value)
		return ctl_usage_error(cmd, "%s is a global option: put it before the command "
		    "(gca-ctl %s VALUE %s ...)", a, a, cmd->name);
	return ctl_usage_error(cmd, "unknown option %s", a);
}

void
ctl_list_commands(FILE *f)
{
	fputs(ctl_usage_text, f);
	fputs("commands:\n", f);
	for (size_t i = 0; i < ctl_ncmds; i++)
		fprintf(f, "  %s%s%s\n      %s\n", ctl_cmds[i]->name, ctl_cmds[i]->usage[0] ? " " : "",
		    ctl_cmds[i]->usage, ctl_cmds[i]->help);
	fputs("gca-ctl help COMMAND (or COMMAND --help) says more: its options and an example;\n"
	    "see gca-ctl(1).\n", f);
}

void
ctl_help_cmd(FILE *f, const struct ctl_cmd *cmd)
{
	ctl_usage_line(f, cmd);
	fprintf(f, "%s.\n", cmd->help);
	if (cmd->more != NULL && cmd->more[0] != '\0')
		fprintf(f, "\n%s", cmd->more);
}

/* The command named by the first words of argv: two-word commands first ("class add"). */
const struct ctl_cmd *
ctl_find(int argc, char **argv, int *used)
{
	for (int words = 2; words >= 1; words--) {
		char name[64];

		if (argc < words)
			continue;
		snprintf(name, sizeof name, "%s%s%s", argv[0], words == 2 ? " " : "",
		    words == 2 ? argv[1] : "");
		for (size_t i = 0; i < ctl_ncmds; i++) {
			if (strcmp(ctl_cmds[i]->name, name) == 0) {
				*used = words;
				return ctl_cmds[i];
			}
		}
	}
	return NULL;
}

/* The commands of a family ("class" -> "class add"): with F, a usage line each (or, FULL, the
 * whole help of each); how many there are. */
int
ctl_family(FILE *f, const char *word, bool full)
{
	size_t n = strlen(word);
	int found = 0;

	for (size_t i = 0; i < ctl_ncmds; i++) {
		if (strncmp(ctl_cmds[i]->name, word, n) != 0 || ctl_cmds[i]->name[n] != ' ')
			continue;
		if (f != NULL && full) {
			fprintf(f, "%s", found ? "\n" : "");
			ctl_help_cmd(f, ctl_cmds[i]);
		} else if (f != NULL) {
			ctl_usage_line(f, ctl_cmds[i]);
		}
		found++;
	}
	return found;
}

/* gca-ctl help [COMMAND]: a command's help, or that of each command of a family. */
int
ctl_help(int argc, char **argv)
{
	const struct ctl_cmd *cmd;
	int used;

	if (argc == 0) {
		ctl_list_commands(stdout);
		return CTL_OK;
	}
	if ((cmd = ctl_find(argc, argv, &used)) != NULL) {
		ctl_help_cmd(stdout, cmd);
		if (used == 1 && ctl_family(NULL, cmd->name, false) > 0) {
			printf("\nalso:\n");
			ctl_family(stdout, cmd->name, false);
		}
		return CTL_OK;
	}
	if (ctl_family(stdout, argv[0], true) > 0)
		return CTL_OK;
	fprintf(stderr, "gca-ctl: help: no command \"%s\" (gca-ctl help lists them)\n", argv[0]);
	return CTL_USAGE;
}
