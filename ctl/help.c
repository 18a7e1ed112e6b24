/* gca-ctl's commands, their usage lines and help, and what a usage error says. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "ctl/ctl.h"

const struct ctl_cmd *const ctl_cmds[] = {
	&ctl_cmd_status, &ctl_cmd_services, &ctl_cmd_classes, &ctl_cmd_class_add, &ctl_cmd_cts,
	&ctl_cmd_cts_remove, &ctl_cmd_jobs, &ctl_cmd_checkpoint, &ctl_cmd_checkpoints,
	&ctl_cmd_subscribe, &ctl_cmd_gc, &ctl_cmd_audit,
};
const size_t ctl_ncmds = GCA_NITEMS(ctl_cmds);

/* Words on a usage line; the global one wrapped at 80 columns under its first option. */
struct help_line {
	FILE	*f;
	size_t	 col, indent, width;	/* width 0: one line, however long */
};

static void
help_word(struct help_line *l, const char *w)
{
	if (l->width > 0 && l->col > l->indent && l->col + 1 + strlen(w) > l->width) {
		fprintf(l->f, "\n%*s", (int)l->indent, "");
		l->col = l->indent;
	} else if (l->col > l->indent) {
		fputc(' ', l->f);
		l->col++;
	}
	fputs(w, l->f);
	l->col += strlen(w);
}

/* "[--limit N]" each, "[--admin | --broker]" for two of which one may be given. */
static void
help_opt_words(struct help_line *l, const struct ctl_opt *opts)
{
	char label[128], word[512];

	for (size_t k = 0; k < CTL_MAX_OPTS && opts[k].name != NULL; k++) {
		if (opts[k].value == CTL_WORDS)
			continue;
		ctl_opt_label(&opts[k], label, sizeof label);
		if (opts[k].either && k + 1 < CTL_MAX_OPTS && opts[k + 1].name != NULL) {
			snprintf(word, sizeof word, "[%s | %s]", label, opts[k + 1].name);
			k++;
		} else {
			snprintf(word, sizeof word, "[%s]", label);
		}
		help_word(l, word);
	}
}

void
ctl_usage_globals(FILE *f)
{
	struct help_line l = { f, 15, 15, 80 };

	fputs("usage: gca-ctl ", f);
	help_opt_words(&l, ctl_globals);
	help_word(&l, "COMMAND [ARGS]");
	fputc('\n', f);
}

/* "checkpoint GID [--wait] [--idem-key KEY]": the command's name, words and options. */
static void
help_cmd_words(FILE *f, const struct ctl_cmd *cmd)
{
	struct help_line l = { f, 0, 0, 0 };

	help_word(&l, cmd->name);
	if (cmd->words != NULL)
		help_word(&l, cmd->words);
	help_opt_words(&l, cmd->opts);
	if (cmd->rest != NULL)
		help_word(&l, cmd->rest);
	fputc('\n', f);
}

void
ctl_usage_line(FILE *f, const struct ctl_cmd *cmd)
{
	fputs("usage: gca-ctl ", f);
	help_cmd_words(f, cmd);
}

/* A label longer than this has its help on the next line ("--gcs HOST:PORT[,HOST:PORT...]"). */
#define HELP_LABEL_MAX	20

/* The options' help, a line each ("  --limit N    at most N"), in one column; a help of several
 * lines goes on under it. */
static void
help_opts(FILE *f, const struct ctl_opt *opts)
{
	char label[128];
	int width = 0;

	for (size_t k = 0; k < CTL_MAX_OPTS && opts[k].name != NULL; k++) {
		ctl_opt_label(&opts[k], label, sizeof label);
		if ((int)strlen(label) > width && strlen(label) <= HELP_LABEL_MAX)
			width = (int)strlen(label);
	}
	for (size_t k = 0; k < CTL_MAX_OPTS && opts[k].name != NULL; k++) {
		const char *h = opts[k].help, *nl;

		ctl_opt_label(&opts[k], label, sizeof label);
		if (strlen(label) > HELP_LABEL_MAX)
			fprintf(f, "  %s\n%*s", label, width + 5, "");
		else
			fprintf(f, "  %-*s", width + 3, label);
		while ((nl = strchr(h, '\n')) != NULL) {
			fprintf(f, "%.*s\n%*s", (int)(nl - h), h, width + 5, "");
			h = nl + 1;
		}
		fprintf(f, "%s\n", h);
	}
}

static int
help_usage(const struct ctl_cmd *cmd)
{
	if (cmd == NULL)
		ctl_usage_globals(stderr);
	else
		ctl_usage_line(stderr, cmd);
	return CTL_USAGE;
}

/* "--limit N" or "--json", as the usage and help show an option (args.c reports with it too). */
void
ctl_opt_label(const struct ctl_opt *o, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s", o->name, o->arg != NULL ? " " : "", o->arg != NULL ? o->arg : "");
}

int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gca-ctl: %s%s", cmd != NULL ? cmd->name : "", cmd != NULL ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return help_usage(cmd);
}

/* The commands, a usage line and a line of help each; FULL (asked for help): the global options. */
void
ctl_list_commands(FILE *f, bool full)
{
	ctl_usage_globals(f);
	fputs("commands:\n", f);
	for (size_t i = 0; i < ctl_ncmds; i++) {
		fputs("  ", f);
		help_cmd_words(f, ctl_cmds[i]);
		fprintf(f, "      %s\n", ctl_cmds[i]->help);
	}
	if (full) {
		fputs("global options (--admin, --broker and --json may also follow the command):\n", f);
		help_opts(f, ctl_globals);
	}
	fputs("gca-ctl help COMMAND (or COMMAND --help) says more: its options and an example;\n"
	    "see gca-ctl(1).\n", f);
}

void
ctl_help_cmd(FILE *f, const struct ctl_cmd *cmd)
{
	ctl_usage_line(f, cmd);
	fprintf(f, "%s.\n", cmd->help);
	if (cmd->more != NULL || cmd->opts[0].name != NULL || cmd->after != NULL)
		fputc('\n', f);
	if (cmd->more != NULL)
		fputs(cmd->more, f);
	help_opts(f, cmd->opts);
	if (cmd->after != NULL)
		fputs(cmd->after, f);
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
		ctl_list_commands(stdout, true);
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
