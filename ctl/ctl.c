/*
 * gca-ctl: talk to the Grid Checkpoint Service as a broker (or, with --admin, as the admin).
 *
 * usage: gca-ctl [--gcs HOST:PORT[,HOST:PORT...]] [--ca F] [--cert F] [--key F] [--admin] [--json]
 *                [--timeout SECONDS] COMMAND [ARGS]
 *        gca-ctl help [COMMAND]
 *
 * Where to find the GCS and which certificate to use: flags first, then GCA_GCS_ENDPOINT,
 * GCA_CA_FILE, GCA_CERT_FILE, GCA_KEY_FILE (GCA_ADMIN_CERT_FILE and GCA_ADMIN_KEY_FILE with
 * --admin), then ~/.config/gca/ctl.conf ("gcs", "ca", "cert", "key", "admin_cert", "admin_key").
 * Several GCS (a comma-separated list, issue 11): the first that answers is used; when it is lost
 * during a request, the request goes through the next (see ctl_call).
 * Exit status: 0 done, 1 failed, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "ctl/ctl.h"

static const struct ctl_cmd *const ctl_cmds[] = {
	&ctl_cmd_status, &ctl_cmd_services, &ctl_cmd_classes, &ctl_cmd_class_add, &ctl_cmd_cts,
	&ctl_cmd_cts_remove, &ctl_cmd_jobs, &ctl_cmd_checkpoint, &ctl_cmd_checkpoints,
	&ctl_cmd_subscribe, &ctl_cmd_gc,
};

static const char ctl_usage_text[] =
    "usage: gca-ctl [--gcs HOST:PORT[,HOST:PORT...]] [--ca F] [--cert F] [--key F] [--admin] [--json]\n"
    "               [--timeout SECONDS] COMMAND [ARGS]\n";

static void
ctl_list_commands(FILE *f)
{
	fputs(ctl_usage_text, f);
	fputs("commands:\n", f);
	for (size_t i = 0; i < GCA_NITEMS(ctl_cmds); i++)
		fprintf(f, "  %s %s\n      %s\n", ctl_cmds[i]->name, ctl_cmds[i]->usage, ctl_cmds[i]->help);
	fputs("gca-ctl help COMMAND says more; see gca-ctl(1).\n", f);
}

int
ctl_usage(const struct ctl_cmd *cmd)
{
	fprintf(stderr, "usage: gca-ctl %s %s\n", cmd->name, cmd->usage);
	return CTL_USAGE;
}

/* "a:1, b:2" -> c->eps; returns the count. */
static size_t
ctl_split_endpoints(struct ctl *c)
{
	char *list, *tok, *save = NULL;

	if (c->neps > 0 || c->endpoints == NULL || (list = strdup(c->endpoints)) == NULL)
		return c->neps;
	for (tok = strtok_r(list, ", ", &save); tok != NULL && c->neps < CTL_MAX_GCS;
	    tok = strtok_r(NULL, ", ", &save))
		c->eps[c->neps++] = strdup(tok);
	free(list);
	return c->neps;
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
		fprintf(stderr, "gca-ctl: no %scertificate: give --ca, --cert and --key or source a "
		    "site.env%s\n", c->admin ? "admin " : "", c->admin ? " and admin.env" : "");
		return -1;
	}
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
	fprintf(stderr, "gca-ctl: cannot reach the GCS: %s\n", all[0] ? all : "every one was lost");
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

	if (ctl_connect(c) != 0)
		return -1;
	while (proto_sync_call(c->conn, type, proto_type_find(type), body, &r, code, sizeof code, msg,
	    sizeof msg) != 0) {
		const char *hint = "";

		if (ctl_may_retry(c, type, body, code)) {
			fprintf(stderr, "gca-ctl: lost the GCS %s (%s): trying the next\n", c->endpoint, msg);
			ctl_drop(c);
			/* A checkpoint may be under way at the CTS: give its record a moment to reach
			 * the directory through the CTS's next GCS, where the retry's key finds it. */
			if (strcmp(type, "do_checkpoint") == 0)
				sleep(1);
			if (ctl_connect(c) != 0)
				return -1;
			continue;
		}
		if (strcmp(code, PROTO_E_FORBIDDEN) == 0)
			hint = c->admin ? "" : " (an admin's command? try --admin)";
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

void
ctl_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

const char *
ctl_entry_get(const struct proto_entry *e, const char *attr)
{
	for (size_t i = 0; i < e->n; i++) {
		if (strcasecmp(e->attrs[i].name, attr) == 0 && e->attrs[i].vals.n > 0)
			return e->attrs[i].vals.v[0];
	}
	return NULL;
}

/* The cell of a column: every value of the attribute, joined with commas. */
static void
ctl_cell(const struct proto_entry *e, const char *attr, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < e->n; i++) {
		if (strcasecmp(e->attrs[i].name, attr) != 0)
			continue;
		for (size_t v = 0; v < e->attrs[i].vals.n && o < len; v++)
			o += (size_t)snprintf(out + o, len - o, "%s%s", v ? "," : "", e->attrs[i].vals.v[v]);
	}
	if (out[0] == '\0')
		snprintf(out, len, "-");
}

void
ctl_print_entries(struct ctl *c, const struct proto_entries *es, const char *const *cols,
    const char *const *heads)
{
	size_t ncols = 0, width[16] = { 0 };
	char cell[1024];

	if (c->json) {
		printf("[");
		for (size_t i = 0; i < es->n; i++) {
			printf("%s\n  {", i ? "," : "");
			for (size_t a = 0; a < es->v[i].n; a++) {
				const struct proto_attr *at = &es->v[i].attrs[a];
				printf("%s", a ? ", " : "");
				ctl_json_string(stdout, at->name);
				printf(": [");
				for (size_t v = 0; v < at->vals.n; v++) {
					printf("%s", v ? ", " : "");
					ctl_json_string(stdout, at->vals.v[v]);
				}
				printf("]");
			}
			printf("}");
		}
		printf("%s]\n", es->n ? "\n" : "");
		return;
	}
	while (cols[ncols] != NULL && ncols < 16)
		ncols++;
	for (size_t k = 0; k < ncols; k++)
		width[k] = strlen(heads[k]);
	for (size_t i = 0; i < es->n; i++) {
		for (size_t k = 0; k < ncols; k++) {
			ctl_cell(&es->v[i], cols[k], cell, sizeof cell);
			if (strlen(cell) > width[k])
				width[k] = strlen(cell) > 60 ? 60 : strlen(cell);
		}
	}
	for (size_t k = 0; k < ncols; k++)
		printf("%-*s%s", (int)width[k], heads[k], k + 1 < ncols ? "  " : "\n");
	for (size_t i = 0; i < es->n; i++) {
		for (size_t k = 0; k < ncols; k++) {
			ctl_cell(&es->v[i], cols[k], cell, sizeof cell);
			printf("%-*s%s", (int)width[k], cell, k + 1 < ncols ? "  " : "\n");
		}
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
	proto_body_free(proto_type_find("query")->reply, ok);
	return CTL_OK;
}

/* ---- settings ---- */

static char *
ctl_home_setting(const char *key)
{
	static struct config cf;
	static bool loaded;
	const char *home = getenv("HOME"), *v;

	if (!loaded && home != NULL) {
		char path[512], err[256];
		snprintf(path, sizeof path, "%s/.config/gca/ctl.conf", home);
		if (config_load(&cf, path, err, sizeof err) != 0)
			memset(&cf, 0, sizeof cf);
		loaded = true;
	}
	v = cf.n ? config_get(&cf, key) : NULL;
	return v ? (char *)v : NULL;
}

static const char *
ctl_pick(const char *flag, const char *env, const char *key)
{
	if (flag != NULL)
		return flag;
	if (env != NULL && getenv(env) != NULL && *getenv(env) != '\0')
		return getenv(env);
	return ctl_home_setting(key);
}

static const struct ctl_cmd *
ctl_find(int argc, char **argv, int *used)
{
	/* two-word commands first ("class add", "cts remove") */
	for (int words = 2; words >= 1; words--) {
		char name[64];
		if (argc < words)
			continue;
		snprintf(name, sizeof name, "%s%s%s", argv[0], words == 2 ? " " : "",
		    words == 2 ? argv[1] : "");
		for (size_t i = 0; i < GCA_NITEMS(ctl_cmds); i++) {
			if (strcmp(ctl_cmds[i]->name, name) == 0) {
				*used = words;
				return ctl_cmds[i];
			}
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct ctl c = { .timeout_ms = 60000 };
	const char *gcs = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	const struct ctl_cmd *cmd;
	int i, used = 0, rc;

	log_init(argv[0]);
	log_set_level(LOG_WARN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char **dst = NULL;

		if (strcmp(argv[i], "--json") == 0) { c.json = true; continue; }
		if (strcmp(argv[i], "--admin") == 0) { c.admin = true; continue; }
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			ctl_list_commands(stdout);
			return CTL_OK;
		}
		if (strcmp(argv[i], "--gcs") == 0) dst = &gcs;
		else if (strcmp(argv[i], "--ca") == 0) dst = &ca;
		else if (strcmp(argv[i], "--cert") == 0) dst = &cert;
		else if (strcmp(argv[i], "--key") == 0) dst = &key;
		else if (strcmp(argv[i], "--timeout") == 0) {
			if (i + 1 >= argc || atoi(argv[i + 1]) <= 0) {
				fprintf(stderr, "gca-ctl: --timeout needs a number of seconds\n");
				return CTL_USAGE;
			}
			c.timeout_ms = atoi(argv[++i]) * 1000;
			continue;
		}
		if (dst == NULL || i + 1 >= argc) {
			fprintf(stderr, "gca-ctl: %s: %s\n%s", argv[i], dst ? "needs a value" :
			    "unknown option", ctl_usage_text);
			return CTL_USAGE;
		}
		*dst = argv[++i];
	}
	if (i >= argc) {
		ctl_list_commands(stderr);
		return CTL_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			ctl_list_commands(stdout);
			return CTL_OK;
		}
		if ((cmd = ctl_find(argc - i - 1, argv + i + 1, &used)) == NULL) {
			fprintf(stderr, "gca-ctl: no command \"%s\"\n", argv[i + 1]);
			return CTL_USAGE;
		}
		printf("usage: gca-ctl %s %s\n  %s\n", cmd->name, cmd->usage, cmd->help);
		return CTL_OK;
	}
	if ((cmd = ctl_find(argc - i, argv + i, &used)) == NULL) {
		fprintf(stderr, "gca-ctl: no command \"%s\"\n", argv[i]);
		ctl_list_commands(stderr);
		return CTL_USAGE;
	}
	for (int k = i + used; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			printf("usage: gca-ctl %s %s\n  %s\n", cmd->name, cmd->usage, cmd->help);
			return CTL_OK;
		}
	}
	c.endpoints = ctl_pick(gcs, "GCA_GCS_ENDPOINT", "gcs");
	c.tls.ca = ctl_pick(ca, "GCA_CA_FILE", "ca");
	c.tls.cert = ctl_pick(cert, c.admin ? "GCA_ADMIN_CERT_FILE" : "GCA_CERT_FILE",
	    c.admin ? "admin_cert" : "cert");
	c.tls.key = ctl_pick(key, c.admin ? "GCA_ADMIN_KEY_FILE" : "GCA_KEY_FILE",
	    c.admin ? "admin_key" : "key");
	rc = cmd->run(&c, argc - i - used, argv + i + used);
	ctl_free(&c);
	return rc;
}
