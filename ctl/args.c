/*
 * gca-ctl's one argument parser. The global options are listed here once; each command's
 * words and options are in its struct ctl_cmd (ctl.h). Everything a command line can get wrong
 * is said here, in one form: "gca-ctl: [CMD: ]what is wrong" and the usage line, exit 2.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "ctl/ctl.h"

static char args_given[] = "";	/* the value of a flag given */

/* Before the command; those without a value may also follow it. The order is the usage's. */
const struct ctl_opt ctl_globals[CTL_MAX_OPTS] = {
	{ "--gcs", NULL, "HOST:PORT[,HOST:PORT...]", CTL_STRING, false,
	  "the GCS (else GCA_GCS_ENDPOINT, ctl.conf's gcs);\nthe first that answers is used" },
	{ "--ca", NULL, "F", CTL_STRING, false, "the CA certificate (else GCA_CA_FILE, ctl.conf's ca)" },
	{ "--cert", NULL, "F", CTL_STRING, false,
	  "the certificate (else GCA_CERT_FILE, or as the admin\nGCA_ADMIN_CERT_FILE; else ctl.conf)" },
	{ "--key", NULL, "F", CTL_STRING, false,
	  "its key (else GCA_KEY_FILE, or as the admin\nGCA_ADMIN_KEY_FILE; else ctl.conf)" },
	{ "--admin", NULL, NULL, CTL_FLAG, true,
	  "the admin's identity (also with GCA_ADMIN_CERT_FILE set:\nadmin.env sourced)" },
	{ "--broker", NULL, NULL, CTL_FLAG, false, "the broker's identity, even with admin.env sourced" },
	{ "--json", NULL, NULL, CTL_FLAG, false, "JSON on stdout instead of a table or a line" },
	{ "--timeout", NULL, "SECONDS", CTL_SECONDS, false, "wait this long for each answer (60)" },
};

static bool
args_is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* The option of OPTS named ARG (or by its older spelling), or NULL. */
static const struct ctl_opt *
args_find(const struct ctl_opt *opts, const char *arg)
{
	for (size_t k = 0; k < CTL_MAX_OPTS && opts[k].name != NULL; k++) {
		if (opts[k].value == CTL_WORDS)
			continue;
		if (strcmp(arg, opts[k].name) == 0 ||
		    (opts[k].alias != NULL && strcmp(arg, opts[k].alias) == 0))
			return &opts[k];
	}
	return NULL;
}

/* A whole number from MIN to MAX, or -1. */
static long long
args_number(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

/* Does VALUE fit the option? If not, what it needs (for the error). A count is read as atoi
 * reads it ("5x" is 5), as gca-ctl always has: scripts may rely on it. */
static const char *
args_check_value(const struct ctl_opt *o, const char *value)
{
	if (o->value == CTL_COUNT && atoi(value) <= 0)
		return "a whole number, 1 or more";
	if (o->value == CTL_SECONDS && args_number(value, 1, 86400) < 0)
		return "a number of seconds (1-86400)";
	return NULL;
}

/* argv[*i] is option O: take it, and its value if it has one. */
static int
args_take(struct ctl_args *a, const struct ctl_opt *o, int argc, char **argv, int *i)
{
	const char *need;

	if (o->value == CTL_FLAG) {
		a->val[o - a->opts] = args_given;
		return 0;
	}
	if (*i + 1 >= argc)
		return ctl_usage_error(a->cmd, "%s needs a value (%s)", argv[*i], o->arg);
	if ((need = args_check_value(o, argv[*i + 1])) != NULL)
		return ctl_usage_error(a->cmd, "%s: bad value \"%s\": it needs %s", argv[*i],
		    argv[*i + 1], need);
	a->val[o - a->opts] = argv[++*i];
	return 0;
}

/* Two options of which one may be given, not both (--admin, --broker). */
static int
args_check_either(const struct ctl_args *a)
{
	for (size_t k = 0; k + 1 < CTL_MAX_OPTS && a->opts[k].name != NULL; k++) {
		if (a->opts[k].either && a->val[k] != NULL && a->val[k + 1] != NULL)
			return ctl_usage_error(a->cmd, "%s or %s, not both", a->opts[k].name,
			    a->opts[k + 1].name);
	}
	return 0;
}

int
ctl_args_globals(struct ctl_args *a, int argc, char **argv, int *rc)
{
	const struct ctl_opt *o;
	int i;

	memset(a, 0, sizeof *a);
	a->opts = ctl_globals;
	*rc = CTL_USAGE;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (args_is_help(argv[i])) {
			ctl_list_commands(stdout, true);
			*rc = CTL_OK;
			return -1;
		}
		if ((o = args_find(ctl_globals, argv[i])) == NULL) {
			ctl_usage_error(NULL, "%s: unknown option", argv[i]);
			return -1;
		}
		if (args_take(a, o, argc, argv, &i) != 0)
			return -1;
	}
	if (args_check_either(a) != 0)
		return -1;
	return i;
}

/* The global flags that follow the command (and --help), taken out of argv; the count left. */
static int
args_strip_globals(struct ctl_args *g, int argc, char **argv, bool *help)
{
	const struct ctl_opt *o;
	int n = 0;

	for (int k = 0; k < argc; k++) {
		if (args_is_help(argv[k]))
			*help = true;
		else if ((o = args_find(ctl_globals, argv[k])) != NULL && o->value == CTL_FLAG)
			g->val[o - ctl_globals] = args_given;
		else
			argv[n++] = argv[k];
	}
	return n;
}

/* argv[i] is not one of the command's: say what it is. */
static int
args_unknown(const struct ctl_cmd *cmd, const char *arg)
{
	const struct ctl_opt *o;

	if (arg[0] != '-')
		return ctl_usage_error(cmd, "unexpected argument \"%s\"", arg);
	if ((o = args_find(ctl_globals, arg)) != NULL)
		return ctl_usage_error(cmd, "%s is a global option: put it before the command "
		    "(gca-ctl %s %s %s ...)", arg, arg, o->arg, cmd->name);
	return ctl_usage_error(cmd, "unknown option %s", arg);
}

int
ctl_args_command(struct ctl_args *a, const struct ctl_cmd *cmd, struct ctl_args *g, int argc,
    char **argv, bool *help)
{
	const struct ctl_opt *o;

	memset(a, 0, sizeof *a);
	a->cmd = cmd;
	a->opts = cmd->opts;
	a->words = argv;
	argc = args_strip_globals(g, argc, argv, help);
	if (*help)
		return 0;
	g->cmd = cmd;		/* "status --admin --broker": the command's usage line */
	if (args_check_either(g) != 0)
		return CTL_USAGE;
	g->cmd = NULL;
	for (int i = 0; i < argc; i++) {
		if ((o = args_find(cmd->opts, argv[i])) != NULL) {
			if (args_take(a, o, argc, argv, &i) != 0)
				return CTL_USAGE;
		} else if (argv[i][0] != '-' && (cmd->max < 0 || a->nwords < cmd->max)) {
			a->words[a->nwords++] = argv[i];	/* never ahead of i: in place */
		} else {
			return args_unknown(cmd, argv[i]);
		}
	}
	if (a->nwords < cmd->min)
		return ctl_usage_error(cmd, "%s", cmd->missing);
	if (args_check_either(a) != 0)
		return CTL_USAGE;
	if (cmd->name_check != NULL && a->nwords > 0 && !name_valid(a->words[0]))
		return ctl_usage_error(cmd, "\"%s\" is not a valid %s: it has %s (%s)", a->words[0],
		    cmd->name_check, name_why(a->words[0]), NAME_RULE);
	return 0;
}

char *
ctl_args_get(const struct ctl_args *a, const char *name)
{
	for (size_t k = 0; k < CTL_MAX_OPTS && a->opts[k].name != NULL; k++) {
		if (strcmp(a->opts[k].name, name) == 0)
			return a->val[k];
	}
	return NULL;
}

bool
ctl_args_has(const struct ctl_args *a, const char *name)
{
	return ctl_args_get(a, name) != NULL;
}

/* A CTL_COUNT or CTL_SECONDS option's value (checked by the parser), or 0 if not given. */
uint64_t
ctl_args_num(const struct ctl_args *a, const char *name)
{
	const char *v = ctl_args_get(a, name);

	return v != NULL ? (uint64_t)atoi(v) : 0;
}
