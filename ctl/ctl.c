/*
 * gca-ctl: talk to the Grid Checkpoint Service as a broker or as the admin.
 *
 * usage: gca-ctl [--gcs HOST:PORT[,HOST:PORT...]] [--ca F] [--cert F] [--key F]
 *                [--admin | --broker] [--json] [--timeout SECONDS] COMMAND [ARGS]
 *        gca-ctl help [COMMAND]
 *
 * Where to find the GCS and which certificate to use: flags first, then GCA_GCS_ENDPOINT,
 * GCA_CA_FILE, GCA_CERT_FILE, GCA_KEY_FILE, then ~/.config/gca/ctl.conf ("gcs", "ca", "cert",
 * "key", "admin_cert", "admin_key"). The identity is the admin's with --admin, or when the operator
 * sourced DIR/admin.env (GCA_ADMIN_CERT_FILE is set: docs/DESIGN.md, "Secrets stay out of site.env"),
 * then from GCA_ADMIN_CERT_FILE, GCA_ADMIN_KEY_FILE or ctl.conf's admin_cert, admin_key; --broker
 * keeps the broker's even then.
 * Several GCS (a comma-separated list, issue 11): the first that answers is used; when it is lost
 * during a request, the request goes through the next (see ctl_call).
 * Exit status: 0 done, 1 failed, 2 usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/common.h"
#include "ctl/ctl.h"

/* "a:1, b:2" -> c->eps; returns the count. */
static size_t
ctl_split_endpoints(struct ctl *c)
{
	char *list, *tok, *save = NULL;

	if (c->neps > 0 || c->endpoints == NULL)
		return c->neps;
	list = xstrdup(c->endpoints);
	for (tok = strtok_r(list, ", ", &save); tok != NULL && c->neps < CTL_MAX_GCS;
	    tok = strtok_r(NULL, ", ", &save))
		c->eps[c->neps++] = xstrdup(tok);
	free(list);
	return c->neps;
}

/* Each TLS file readable, or one line naming it and where it came from (a flag, a variable). */
static int
ctl_check_files(struct ctl *c)
{
	static const char *const what[] = { "CA certificate", "certificate", "key" };
	const char *const files[] = { c->tls.ca, c->tls.cert, c->tls.key };

	for (size_t k = 0; k < GCA_NITEMS(files); k++) {
		if (access(files[k], R_OK) != 0) {
			fprintf(stderr, "gca-ctl: cannot read the %s%s %s (from %s): %s\n",
			    c->admin && k > 0 ? "admin " : "", what[k], files[k], c->tls_from[k],
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The first GCS of the list that answers, starting from the one in use; those lost are skipped. */
int
ctl_connect(struct ctl *c)
{
	char err[512], all[2048] = "";

	if (c->conn != NULL)
		return 0;
	if (ctl_split_endpoints(c) == 0) {
		fprintf(stderr, "gca-ctl: no GCS: give --gcs HOST:PORT[,HOST:PORT...] or source a "
		    "site.env (GCA_GCS_ENDPOINT)\n");
		return -1;
	}
	if (c->tls.ca == NULL || c->tls.cert == NULL || c->tls.key == NULL) {
		fprintf(stderr, "gca-ctl: no %s%s: give --ca, --cert and --key or source a site.env%s\n",
		    c->admin && c->tls.ca != NULL ? "admin " : "", c->tls.ca == NULL ? "CA certificate" :
		    c->tls.cert == NULL ? "certificate" : "key", c->admin ? " and admin.env" : "");
		return -1;
	}
	if (ctl_check_files(c) != 0)
		return -1;
	for (size_t k = 0; k < c->neps; k++) {
		size_t i = (c->at + k) % c->neps;

		if (c->dead[i])
			continue;
		c->conn = proto_sync_connect(c->eps[i], &c->tls, "gcs", c->timeout_ms, err, sizeof err);
		if (c->conn != NULL) {
			c->at = i;
			c->endpoint = c->eps[i];
			return 0;
		}
		c->dead[i] = true;
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", all[0] ? "; " : "", err);
	}
	fprintf(stderr, "gca-ctl: cannot reach the GCS (%s, from %s): %s; is it up? (gca-site status "
	    "DIR, or ask its operator; another GCS: --gcs HOST:PORT)\n", c->endpoints, c->endpoints_from,
	    all[0] ? all : "every one was lost");
	return -1;
}

/* The connection to the GCS in use broke: may the request go again through another? */
static bool
ctl_may_retry(struct ctl *c, const char *type, const void *body, const char *code)
{
	if (strcmp(code, "io") != 0 || c->conn == NULL || c->neps < 2)
		return false;
	if (strcmp(type, "do_checkpoint") == 0 &&
	    ((const struct msg_do_checkpoint *)body)->idem_key == NULL)
		return false;	/* it might be taken twice */
	for (size_t i = 0; i < c->neps; i++) {
		if (i != c->at && !c->dead[i])
			return true;
	}
	return false;
}

void
ctl_free(struct ctl *c)
{
	proto_sync_close(c->conn);
	c->conn = NULL;
	for (size_t i = 0; i < c->neps; i++)
		free(c->eps[i]);
	c->neps = 0;
}

/* Forget the GCS in use (it broke); the next ctl_connect takes another. */
void
ctl_drop(struct ctl *c)
{
	proto_sync_close(c->conn);
	c->conn = NULL;
	if (c->neps > 0) {
		c->dead[c->at] = true;
		c->at = (c->at + 1) % c->neps;
	}
}

int
ctl_call(struct ctl *c, const char *what, const char *type, const void *body, void **reply)
{
	char code[64], msg[1024];
	void *r = NULL;

	c->sent = false;
	snprintf(c->code, sizeof c->code, "io");
	if (ctl_connect(c) != 0)
		return -1;
	c->sent = true;		/* from here on, the GCS may have taken it */
	while (proto_sync_call(c->conn, type, proto_type_find(type), body, &r, code, sizeof code, msg,
	    sizeof msg) != 0) {
		const char *hint = "";

		snprintf(c->code, sizeof c->code, "%s", code);
		if (ctl_may_retry(c, type, body, code)) {
			fprintf(stderr, "gca-ctl: lost the GCS %s (%s): trying the next\n", c->endpoint, msg);
			ctl_drop(c);
			/* A checkpoint may be under way at the CTS, or its record on its way: the retry
			 * carries the same key, which the next GCS finds in the directory or the CTS
			 * among the checkpoints it runs, waits to record or recorded lately (never a
			 * second dump; multi_gcs.sh kills a GCS mid-request). */
			if (ctl_connect(c) != 0)
				return -1;
			continue;
		}
		if (strcmp(code, PROTO_E_FORBIDDEN) == 0)
			hint = c->admin ? "" : " (an admin's command: source DIR/admin.env or give --admin)";
		else if (strcmp(code, "io") == 0)
			hint = " (is the GCS up? gca-site status)";
		fprintf(stderr, "gca-ctl: %s: %s (%s)%s\n", what, msg, code, hint);
		return -1;
	}
	if (reply != NULL)
		*reply = r;
	else
		proto_body_free(proto_type_find(type)->reply, r);
	return 0;
}

bool
ctl_outcome_unknown(const struct ctl *c)
{
	/* Answers that say the request was not taken, and never will be. Any other code (io,
	 * timeout, directory_down, cts_down, unavailable, internal, one this gca-ctl does not know)
	 * may come with a checkpoint taken, or a record still in a CTS's outbox. */
	static const char *const refused[] = { PROTO_E_BAD_FRAME, PROTO_E_TOO_LARGE,
		PROTO_E_BAD_VERSION, PROTO_E_UNKNOWN_TYPE, PROTO_E_BAD_FIELD, PROTO_E_MISSING_FIELD,
		PROTO_E_FORBIDDEN, PROTO_E_NOT_FOUND, PROTO_E_EXISTS, PROTO_E_REFUSED, PROTO_E_BUSY,
		PROTO_E_CONFLICT, PROTO_E_MOVED };

	if (!c->sent)
		return false;
	for (size_t i = 0; i < GCA_NITEMS(refused); i++) {
		if (strcmp(c->code, refused[i]) == 0)
			return false;
	}
	return true;
}

void
ctl_print_command(FILE *f, int argc, char *const *argv)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	    "_-.,:/=@%+";

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		fputs(i ? " " : "", f);
		if (*a != '\0' && strspn(a, plain) == strlen(a)) {
			fputs(a, f);
			continue;
		}
		fputc('\'', f);
		for (; *a != '\0'; a++) {
			if (*a == '\'')
				fputs("'\\''", f);
			else
				fputc(*a, f);
		}
		fputc('\'', f);
	}
}

int
ctl_query(struct ctl *c, struct msg_query *q, const char *const *cols, const char *const *heads)
{
	struct msg_query_ok *ok;
	char what[64];

	snprintf(what, sizeof what, "listing %s", q->what);
	if (ctl_call(c, what, "query", q, (void **)&ok) != 0)
		return CTL_FAILED;
	ctl_print_entries(c, &ok->entries, cols, heads);
	if (ok->cursor != NULL)		/* on stderr: the table (or JSON) on stdout stays whole */
		fprintf(stderr, "more: run it again with --cursor %s\n", ok->cursor);
	else if (ok->more)	/* a list without a cursor (services, classes): say it was cut */
		fprintf(stderr, "more: the GCS sent the first %zu %s; narrow the list (gca-ctl help %s) "
		    "or read it all with ldapsearch -E pr=500/noprompt\n", ok->entries.n, q->what, q->what);
	proto_body_free(proto_type_find("query")->reply, ok);
	return CTL_OK;
}

int
ctl_list_run(struct ctl *c, const struct ctl_args *a)
{
	const struct ctl_list *l = a->cmd->list;
	struct msg_query q = {
		.what = l->what,
		.gid = a->nwords > 0 ? a->words[0] : NULL,
		.cts = ctl_args_get(a, "--cts"),
		.class_ = ctl_args_get(a, "--class"),
		.core_service = ctl_args_get(a, "--core-service"),
		.property = ctl_args_get(a, "--property"),
		.status = ctl_args_get(a, "--status"),
		.limit = ctl_args_num(a, "--limit"),
		.cursor = ctl_args_get(a, "--cursor"),
	};

	return ctl_query(c, &q, l->cols, l->heads);
}

/* ---- settings ---- */

#define CTL_CONF_NAME	"~/.config/gca/ctl.conf"

/* ~/.config/gca/ctl.conf. None is fine; one that cannot be read, or holds a line gca-ctl does not
 * know, stops it (exit 2): a setting silently lost would send the request elsewhere. */
static int
ctl_conf_load(struct config *cf)
{
	static const char *const keys[] = { "gcs", "ca", "cert", "key", "admin_cert", "admin_key" };
	const char *home = getenv("HOME");
	char path[4096], err[512];

	memset(cf, 0, sizeof *cf);
	if (home == NULL || *home == '\0')
		return 0;
	snprintf(path, sizeof path, "%s/.config/gca/ctl.conf", home);
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (config_load(cf, path, err, sizeof err) != 0) {
		fprintf(stderr, "gca-ctl: cannot read %s; fix or remove it\n", err);
		return -1;
	}
	for (size_t i = 0; i < cf->n; i++) {
		const struct config_entry *e = &cf->entries[i];
		size_t k;

		for (k = 0; k < GCA_NITEMS(keys) && strcmp(e->key, keys[k]) != 0; k++)
			;
		if (k == GCA_NITEMS(keys) || e->value[0] == '\0') {
			fprintf(stderr, "gca-ctl: %s, line %d: %s \"%s\" (lines are: gcs, ca, cert, "
			    "key, admin_cert, admin_key, each with a value); fix it\n", path, e->line,
			    k == GCA_NITEMS(keys) ? "unknown setting" : "no value for", e->key);
			config_free(cf);
			return -1;
		}
	}
	return 0;
}

/* A setting: the flag, else the variable, else ctl.conf's key; *from says which. */
static const char *
ctl_pick(const char *flag, const char *flagname, const char *env, const struct config *cf,
    const char *key, const char **from)
{
	const char *v;

	if (flag != NULL) {
		*from = flagname;
		return flag;
	}
	if ((v = getenv(env)) != NULL && *v != '\0') {
		*from = env;
		return v;
	}
	*from = CTL_CONF_NAME;
	return cf->n ? config_get(cf, key) : NULL;
}

int
main(int argc, char **argv)
{
	struct ctl c = { .timeout_ms = 60000 };
	struct ctl_args g, a;
	const struct ctl_cmd *cmd;
	struct config cf;
	bool help = false;
	int i, used = 0, rc;

	log_init(argv[0]);
	log_set_level(LOG_WARN);
	/* A GCS that dies under a request would otherwise kill gca-ctl, silently, at its next write:
	 * ignored, it is an io error, and the request goes to the next GCS of the list. */
	signal(SIGPIPE, SIG_IGN);
	if ((i = ctl_args_globals(&g, argc, argv, &rc)) < 0)
		return rc;
	if (i >= argc) {
		ctl_list_commands(stderr, false);
		return CTL_USAGE;
	}
	if (strcmp(argv[i], "help") == 0)
		return ctl_help(argc - i - 1, argv + i + 1);
	if ((cmd = ctl_find(argc - i, argv + i, &used)) == NULL) {
		if (ctl_family(NULL, argv[i], false) > 0) {
			fprintf(stderr, "gca-ctl: %s: which one?\n", argv[i]);
			ctl_family(stderr, argv[i], false);
		} else {
			fprintf(stderr, "gca-ctl: no command \"%s\"\n", argv[i]);
			ctl_list_commands(stderr, false);
		}
		return CTL_USAGE;
	}
	if (ctl_args_command(&a, cmd, &g, argc - i - used, argv + i + used, &help) != 0)
		return CTL_USAGE;
	if (help) {
		ctl_help_cmd(stdout, cmd);
		return CTL_OK;
	}
	if (ctl_conf_load(&cf) != 0)
		return CTL_USAGE;
	c.json = ctl_args_has(&g, "--json");
	c.admin = ctl_args_has(&g, "--admin");
	if (ctl_args_has(&g, "--timeout"))
		c.timeout_ms = (int)ctl_args_num(&g, "--timeout") * 1000;
	/* The admin identity when asked: --admin, or admin.env sourced on purpose. */
	if (!ctl_args_has(&g, "--broker") && getenv("GCA_ADMIN_CERT_FILE") != NULL &&
	    *getenv("GCA_ADMIN_CERT_FILE") != '\0')
		c.admin = true;
	c.endpoints = ctl_pick(ctl_args_get(&g, "--gcs"), "--gcs", "GCA_GCS_ENDPOINT", &cf, "gcs",
	    &c.endpoints_from);
	c.tls.ca = ctl_pick(ctl_args_get(&g, "--ca"), "--ca", "GCA_CA_FILE", &cf, "ca", &c.tls_from[0]);
	c.tls.cert = ctl_pick(ctl_args_get(&g, "--cert"), "--cert",
	    c.admin ? "GCA_ADMIN_CERT_FILE" : "GCA_CERT_FILE", &cf, c.admin ? "admin_cert" : "cert",
	    &c.tls_from[1]);
	c.tls.key = ctl_pick(ctl_args_get(&g, "--key"), "--key",
	    c.admin ? "GCA_ADMIN_KEY_FILE" : "GCA_KEY_FILE", &cf, c.admin ? "admin_key" : "key",
	    &c.tls_from[2]);
	c.gargc = i;
	c.gargv = argv;
	rc = cmd->run != NULL ? cmd->run(&c, &a) : ctl_list_run(&c, &a);
	ctl_free(&c);
	config_free(&cf);
	return rc;
}
