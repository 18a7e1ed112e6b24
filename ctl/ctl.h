/*
 * ctl/: gca-ctl, the broker's and operator's client of gca-gcs. Each command is one
 * `const struct ctl_cmd` beside its code (as tmux's cmd_entry); ctl.c finds and runs it.
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

struct ctl_cmd {
	const char	*name;		/* "class add": words the user types */
	const char	*usage;		/* what follows the name */
	const char	*help;		/* one line */
	const char	*more;		/* its options and an example, for `help NAME` */
	int		(*run)(struct ctl *c, int argc, char **argv);
};

/* ctl.c */
int  ctl_connect(struct ctl *c);
void ctl_drop(struct ctl *c);		/* the GCS in use broke: the next ctl_connect takes another */
void ctl_free(struct ctl *c);
/* One request; on failure prints "gca-ctl: WHAT: message (code)" with a hint and returns -1.
 * With several GCS endpoints, a request whose connection broke is sent again through the next one
 * (a do_checkpoint only with an idempotency key, so it is never taken twice). */
int  ctl_call(struct ctl *c, const char *what, const char *type, const void *body, void **reply);
int  ctl_query(struct ctl *c, struct msg_query *q, const char *const *cols, const char *const *heads);
/* After a failed ctl_call: may the request still have taken effect (sent, and no answer that
 * says it was not taken: io, timeout, directory_down, cts_down, ...)? */
bool ctl_outcome_unknown(const struct ctl *c);
/* A GID, CTS or class name as every daemon and wrapper takes it (name_valid), or a usage error
 * (CTL_USAGE) saying what is wrong with it; 0 if valid or NULL. */
int  ctl_check_name(const struct ctl_cmd *cmd, const char *what, const char *name);
/* argv[0..argc) as a shell would need it typed, each word quoted only if it must be. */
void ctl_print_command(FILE *f, int argc, char *const *argv);

/* help.c: usage lines and help texts. ctl_bad_arg says what is wrong with argv[i] (an unknown
 * option, a missing value, a global option after the command) and prints the usage line. */
extern const struct ctl_cmd *const ctl_cmds[];
extern const size_t ctl_ncmds;
extern const char ctl_usage_text[];
void ctl_usage_line(FILE *f, const struct ctl_cmd *cmd);
int  ctl_usage(const struct ctl_cmd *cmd);
int  ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int  ctl_bad_arg(const struct ctl_cmd *cmd, int argc, char **argv, int i);
bool ctl_global_option(const char *arg, bool *takes_value);
void ctl_list_commands(FILE *f);
int  ctl_help(int argc, char **argv);
void ctl_help_cmd(FILE *f, const struct ctl_cmd *cmd);
const struct ctl_cmd *ctl_find(int argc, char **argv, int *used);
int  ctl_family(FILE *f, const char *word, bool full);

/* print.c: lists. Columns are attribute names; a table for people, one JSON document with --json. */
void ctl_print_entries(struct ctl *c, const struct proto_entries *es, const char *const *cols,
	const char *const *heads);
void ctl_json_string(FILE *f, const char *s);
const char *ctl_entry_get(const struct proto_entry *e, const char *attr);

extern const struct ctl_cmd ctl_cmd_status, ctl_cmd_services, ctl_cmd_classes, ctl_cmd_class_add,
	ctl_cmd_cts, ctl_cmd_cts_remove, ctl_cmd_jobs, ctl_cmd_checkpoint, ctl_cmd_checkpoints,
	ctl_cmd_subscribe, ctl_cmd_gc;

#endif
