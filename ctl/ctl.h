/*
 * ctl/: gca-ctl, the broker's and operator's client of gca-gcs. Each command is one
 * `const struct ctl_cmd` beside its code (as tmux's cmd_entry): what it takes, which args.c
 * parses and help.c prints, and how it runs, which ctl.c calls.
 */
#ifndef GCA_CTL_H
#define GCA_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "proto/proto.h"

#define CTL_OK		0
#define CTL_FAILED	1
#define CTL_USAGE	2

#define CTL_MAX_GCS	16

struct ctl;
struct ctl_args;

struct ctl {
	const char		*endpoint;		/* the GCS in use (one of endpoints) */
	const char		*endpoints;		/* as given: "host:port[,host:port]..." */
	const char		*endpoints_from;	/* where they came from: "--gcs", ... */
	char			*eps[CTL_MAX_GCS];	/* endpoints, split */
	bool			 dead[CTL_MAX_GCS];	/* lost or unreachable in this run */
	size_t			 neps, at;
	struct proto_tls_files	 tls;
	const char		*tls_from[3];		/* where ca, cert, key came from */
	bool			 json, admin;
	int			 timeout_ms;
	struct proto_sync	*conn;
	int			 gargc;			/* the global options as given, to */
	char			**gargv;		/* print a command that asks again */
	bool			 sent;			/* the last ctl_call sent its request */
	char			 code[64];		/* and the code of its failure */
};

/*
 * What a command takes, as tmux's cmd_entry has its args template: its words (positionals) and
 * options are data that one parser (args.c) applies and the help (help.c) prints from. A command
 * sees only arguments that fit: an unknown option, a missing or bad value, a word too many or too
 * few, a GID that is not a valid name never reach its run function.
 */
enum ctl_value {
	CTL_FLAG,		/* no value */
	CTL_STRING,		/* any word */
	CTL_COUNT,		/* a whole number, 1 or more */
	CTL_SECONDS,		/* a whole number of seconds, 1 to a day */
	CTL_WORDS,		/* not an option: a help line for the command's words (GID, key=value) */
};

#define CTL_MAX_OPTS	8

struct ctl_opt {
	const char	*name;		/* "--limit" (or, for CTL_WORDS, "GID") */
	const char	*alias;		/* an older spelling the parser also takes, or NULL */
	const char	*arg;		/* its value as the usage shows it: "N" */
	enum ctl_value	 value;
	bool		 either;	/* with the next one: one or the other, not both */
	const char	*help;		/* for help: one line, or lines joined by "\n" */
};

struct ctl_list;

struct ctl_cmd {
	const char	*name;		/* "class add": words the user types */
	const char	*words;		/* its words before the options in the usage: "GID", "[GID]" */
	const char	*rest;		/* and after them: "key=value..." */
	int		 min, max;	/* how many words (max -1: any number) */
	const char	*missing;	/* the error when fewer than min: "which job? give its GID" */
	const char	*name_check;	/* the first word must be a valid name: "GID", "class name" */
	struct ctl_opt	 opts[CTL_MAX_OPTS];
	const char	*help;		/* one line */
	const char	*more;		/* for `help NAME`: what it does (before the options) */
	const char	*after;		/* and what it prints, an example (after them) */
	const struct ctl_list *list;	/* a list of the directory (ctl_list_run), or NULL */
	int		(*run)(struct ctl *c, const struct ctl_args *a);
};

/* A parsed command line: the value of each option given ("" for a flag), and the words. */
struct ctl_args {
	const struct ctl_cmd	*cmd;		/* NULL: the global options */
	const struct ctl_opt	*opts;
	char			*val[CTL_MAX_OPTS];	/* into argv: the messages take them */
	char			**words;
	int			 nwords;
};

/* A command that lists part of the directory: the query's "what", its columns and their heads;
 * ctl_list_run fills the query from the options of the same names (--cts, --limit, ...). */
struct ctl_list {
	char		*what;		/* msg_query's (not const there) */
	const char	*cols[8];
	const char	*heads[8];
};

/* args.c: the global options and the one parser. ctl_args_globals takes the options before the
 * command and returns the index of the command, or -1 (exit with *rc: CTL_OK after --help);
 * ctl_args_command takes a command's arguments, and the global flags that may follow the command
 * (--json, --admin, --broker, into G) and --help; it returns 0 or CTL_USAGE. Both print what is
 * wrong with the line, and the usage. */
extern const struct ctl_opt ctl_globals[];
int  ctl_args_globals(struct ctl_args *a, int argc, char **argv, int *rc);
int  ctl_args_command(struct ctl_args *a, const struct ctl_cmd *cmd, struct ctl_args *g,
	int argc, char **argv, bool *help);
char *ctl_args_get(const struct ctl_args *a, const char *name);
bool ctl_args_has(const struct ctl_args *a, const char *name);
uint64_t ctl_args_num(const struct ctl_args *a, const char *name);

/* ctl.c */
int  ctl_connect(struct ctl *c);
void ctl_drop(struct ctl *c);		/* the GCS in use broke: the next ctl_connect takes another */
void ctl_free(struct ctl *c);
/* One request; on failure prints "gca-ctl: WHAT: message (code)" with a hint and returns -1.
 * With several GCS endpoints, a request whose connection broke is sent again through the next one
 * (a do_checkpoint only with an idempotency key, so it is never taken twice). */
int  ctl_call(struct ctl *c, const char *what, const char *type, const void *body, void **reply);
int  ctl_query(struct ctl *c, struct msg_query *q, const char *const *cols, const char *const *heads);
/* The run of a command with a list: its query from the options given, then ctl_query. */
int  ctl_list_run(struct ctl *c, const struct ctl_args *a);
/* After a failed ctl_call: may the request still have taken effect (sent, and no answer that
 * says it was not taken: io, timeout, directory_down, cts_down, ...)? */
bool ctl_outcome_unknown(const struct ctl *c);
/* argv[0..argc) as a shell would need it typed, each word quoted only if it must be. */
void ctl_print_command(FILE *f, int argc, char *const *argv);

/* help.c: the table of commands, usage lines (from each command's spec) and help texts.
 * ctl_usage_error prints "gca-ctl: CMD: what is wrong" and the usage line (CMD NULL: the global
 * usage) and returns CTL_USAGE. */
extern const struct ctl_cmd *const ctl_cmds[];
extern const size_t ctl_ncmds;
void ctl_usage_globals(FILE *f);
void ctl_usage_line(FILE *f, const struct ctl_cmd *cmd);
/* "--limit N" or "--json", as the usage and help show an option. */
void ctl_opt_label(const struct ctl_opt *o, char *out, size_t len);
int  ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ctl_list_commands(FILE *f, bool full);
int  ctl_help(int argc, char **argv);
void ctl_help_cmd(FILE *f, const struct ctl_cmd *cmd);
const struct ctl_cmd *ctl_find(int argc, char **argv, int *used);
int  ctl_family(FILE *f, const char *word, bool full);

/* print.c: lists, and JSON objects. Columns are attribute names; a table for people, one JSON
 * document with --json. A JSON object is written field by field: {"gid": "job-7", "seq": 3}. */
struct ctl_json {
	FILE	*f;
	int	 n;		/* fields written so far */
};
void ctl_print_entries(struct ctl *c, const struct proto_entries *es, const char *const *cols,
	const char *const *heads);
void ctl_json_string(FILE *f, const char *s);
void ctl_json_begin(struct ctl_json *j, FILE *f);
void ctl_json_str(struct ctl_json *j, const char *key, const char *value);	/* NULL: "" */
void ctl_json_num(struct ctl_json *j, const char *key, unsigned long long value);
void ctl_json_bool(struct ctl_json *j, const char *key, bool value);
void ctl_json_list(struct ctl_json *j, const char *key, const struct proto_strlist *l);
void ctl_json_end(struct ctl_json *j);
/* The key of a value the caller writes itself (a nested object or list). */
void ctl_json_key(struct ctl_json *j, const char *key);

extern const struct ctl_cmd ctl_cmd_status, ctl_cmd_services, ctl_cmd_classes, ctl_cmd_class_add,
	ctl_cmd_cts, ctl_cmd_cts_remove, ctl_cmd_jobs, ctl_cmd_checkpoint, ctl_cmd_checkpoints,
	ctl_cmd_subscribe, ctl_cmd_gc, ctl_cmd_audit;

#endif
