/*
 * The CTS descriptor (paper 5.5): an LDIF record of what the CTS publishes in the directory (core
 * service, classes, flags, functional properties, wrapper names and parameter patterns). Read with
 * libldap's LDIF reader, then checked against what the core service driver can really do, so the
 * directory never advertises a feature the CTS lacks.
 */
#include <ctype.h>
#include <stdio.h>
#include <ldap.h>
#include <ldif.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cts/cts.h"

struct descriptor_flag {
	const char	*attr;
	size_t		 offset;
};
static const struct descriptor_flag descriptor_flags[] = {
	{ "gcaExternalCheckpoints", offsetof(struct msg_cts_register, external) },
	{ "gcaSelfCheckpointing", offsetof(struct msg_cts_register, self_checkpoint) },
	{ "gcaMigration", offsetof(struct msg_cts_register, migrate) },
	{ "gcaAnyImageRecovery", offsetof(struct msg_cts_register, any_image) },
};

/*
 * The placeholders the wrappers fill (gca-exec.c exec_params, gca-recover.c recover_send_env):
 * a pattern naming another one would make every gca-exec fail at run time, so the CTS refuses it
 * at start. {image_dir} and the others of a checkpoint mean nothing when a job first starts.
 */
static const char *const descriptor_exec_vars[] = { "gid", "cts", "pid", "core_service", NULL };
static const char *const descriptor_recovery_vars[] = { "gid", "cts", "pid", "core_service",
	"checkpoint_id", "image_dir", "seq", NULL };

static bool
descriptor_var_known(const char *const *vars, const char *name, size_t n)
{
	for (; *vars != NULL; vars++) {
		if (strlen(*vars) == n && memcmp(*vars, name, n) == 0)
			return true;
	}
	return false;
}

/*
 * "NAME=pattern", NAME an environment variable name, every {placeholder} one the wrapper fills
 * ("{{" is a literal '{', as wrapper_expand reads it). -1 with why.
 */
static int
descriptor_param_check(const char *p, bool recovery, char *why, size_t len)
{
	const char *eq = strchr(p, '='), *close;
	const char *const *vars = recovery ? descriptor_recovery_vars : descriptor_exec_vars;

	if (eq == NULL || eq == p || !(isalpha((unsigned char)*p) || *p == '_')) {
		snprintf(why, len, "want NAME=pattern, e.g. JOB_STATE=/scratch/{gid}");
		return -1;
	}
	for (const char *s = p; s < eq; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_') {
			snprintf(why, len, "\"%.*s\" is not an environment variable name",
			    (int)(eq - p), p);
			return -1;
		}
	}
	for (const char *s = eq + 1; *s != '\0'; s++) {
		if (*s != '{')
			continue;
		if (s[1] == '{') {
			s++;
			continue;
		}
		if ((close = strchr(s + 1, '}')) == NULL) {
			snprintf(why, len, "'{' without '}'");
			return -1;
		}
		if (!descriptor_var_known(vars, s + 1, (size_t)(close - s - 1))) {
			size_t used = (size_t)snprintf(why, len, "unknown placeholder {%.*s}%s; known: ",
			    (int)(close - s - 1), s + 1, recovery ? "" : " for a job that starts");
			for (const char *const *v = vars; *v != NULL && used < len; v++)
				used += (size_t)snprintf(why + used, len - used, "%s{%s}",
				    v == vars ? "" : " ", *v);
			return -1;
		}
		s = close;
	}
	return 0;
}

/* The published form of a parameter list: the values joined by "; ". */
static char *
descriptor_join(const struct proto_strlist *l)
{
	size_t len = 1;
	char *s;

	if (l->n == 0)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i]) + 2;
	s = xcalloc(1, len);
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			strcat(s, "; ");
		strcat(s, l->v[i]);
	}
	return s;
}

static int
descriptor_attr(struct cts *c, const char *path, unsigned long line, const char *attr,
	const char *val, char *err, size_t errlen)
{
	struct msg_cts_register *reg = &c->reg;

	for (size_t i = 0; i < GCA_NITEMS(descriptor_flags); i++) {
		if (strcasecmp(attr, descriptor_flags[i].attr) != 0)
			continue;
		if (strcmp(val, "TRUE") != 0 && strcmp(val, "FALSE") != 0) {
			snprintf(err, errlen, "%s, record at line %lu: %s must be TRUE or FALSE, not \"%s\"",
			    path, line, attr, val);
			return -1;
		}
		*(bool *)((char *)reg + descriptor_flags[i].offset) = strcmp(val, "TRUE") == 0;
		return 0;
	}
	if (strcasecmp(attr, "dn") == 0 || strcasecmp(attr, "objectClass") == 0 ||
	    strcasecmp(attr, "description") == 0)
		return 0;
	if (strcasecmp(attr, "cn") == 0) {
		if (strcmp(val, c->name) != 0) {
			snprintf(err, errlen, "%s: cn %s is not this CTS's name %s (cts.conf)", path, val,
			    c->name);
			return -1;
		}
		return 0;
	}
	if (strcasecmp(attr, "gcaCoreService") == 0) {
		if (strcmp(val, c->core->name) != 0) {
			snprintf(err, errlen, "%s: gcaCoreService %s, but cts.conf's core_service is %s",
			    path, val, c->core->name);
			return -1;
		}
		return 0;
	}
	if (strcasecmp(attr, "gcaClass") == 0)
		proto_strlist_add(&reg->classes, val);
	else if (strcasecmp(attr, "gcaProperty") == 0)
		proto_strlist_add(&reg->properties, val);
	else if (strcasecmp(attr, "gcaExecuteWrapper") == 0) {
		proto_body_set_str(proto_type_find("cts_register"), reg, "exec_wrapper", val);
	} else if (strcasecmp(attr, "gcaRecoveryWrapper") == 0) {
		proto_body_set_str(proto_type_find("cts_register"), reg, "recovery_wrapper", val);
	} else if (strcasecmp(attr, "gcaWrapperParams") == 0) {
		proto_body_set_str(proto_type_find("cts_register"), reg, "wrapper_params", val);
	} else if (strcasecmp(attr, "gcaExecuteParams") == 0 ||
	    strcasecmp(attr, "gcaRecoveryParams") == 0) {
		bool recovery = strcasecmp(attr, "gcaRecoveryParams") == 0;
		char why[300];

		if (descriptor_param_check(val, recovery, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s, record at line %lu: %s \"%s\": %s", path, line, attr,
			    val, why);
			return -1;
		}
		proto_strlist_add(recovery ? &c->recovery_params : &c->exec_params, val);
	} else {
		snprintf(err, errlen, "%s, record at line %lu: unknown attribute %s", path, line, attr);
		return -1;
	}
	return 0;
}

static int
descriptor_read(struct cts *c, const char *path, char *err, size_t errlen)
{
	LDIFFP *fp = ldif_open(path, "r");
	unsigned long line = 0;
	char *buf = NULL;
	int buflen = 0, rc = 0, records = 0;

	if (fp == NULL) {
		snprintf(err, errlen, "descriptor %s: cannot open it", path);
		return -1;
	}
	while (rc == 0 && ldif_read_record(fp, &line, &buf, &buflen) > 0) {
		char *next = buf, *l;

		if (++records > 1) {
			snprintf(err, errlen, "%s: more than one record (line %lu)", path, line);
			rc = -1;
			break;
		}
		while (rc == 0 && (l = ldif_getline(&next)) != NULL) {
			struct berval type, val;
			int freeval = 0;

			if (ldif_parse_line2(l, &type, &val, &freeval) != 0) {
				snprintf(err, errlen, "%s, record at line %lu: cannot parse \"%.60s\"", path,
				    line, l);
				rc = -1;
				break;
			}
			rc = descriptor_attr(c, path, line, type.bv_val, val.bv_val ? val.bv_val : "",
			    err, errlen);
			if (freeval)
				ber_memfree(val.bv_val);
		}
	}
	ber_memfree(buf);
	ldif_close(fp);
	if (rc == 0 && records == 0) {
		snprintf(err, errlen, "%s: no LDIF record in it", path);
		rc = -1;
	}
	return rc;
}

/*
 * The mean time between failures of this CTS's jobs (--checkpoint-every auto, interval.c): a
 * gcaProperty mtbf= of the descriptor must be a positive duration and is used when cts.conf sets
 * none; cts.conf's wins. The one in use is published as the CTS's property mtbf=<ms>ms.
 */
static int
descriptor_mtbf(struct cts *c, const char *path, char *err, size_t errlen)
{
	struct proto_strlist *props = &c->reg.properties, kept = { 0 };
	char buf[64];
	uint64_t ms;

	for (size_t i = 0; i < props->n; i++) {
		if (strncmp(props->v[i], "mtbf=", 5) != 0) {
			proto_strlist_add(&kept, props->v[i]);
			continue;
		}
		if (daly_mtbf_parse(props->v[i] + 5, &ms) != 0) {
			snprintf(err, errlen, "%s: gcaProperty %s: not a positive duration (e.g. mtbf=12h)",
			    path, props->v[i]);
			proto_strlist_free(&kept);
			return -1;
		}
		if (c->mtbf_ms == 0)
			c->mtbf_ms = ms;
	}
	if (c->mtbf_ms != 0) {
		snprintf(buf, sizeof buf, "mtbf=%llums", (unsigned long long)c->mtbf_ms);
		proto_strlist_add(&kept, buf);
	}
	proto_strlist_free(props);
	*props = kept;
	return 0;
}

int
descriptor_load(struct cts *c, const char *path, char *err, size_t errlen)
{
	struct msg_cts_register *reg = &c->reg;

	/* What the driver can do, unless the descriptor says less. */
	reg->external = c->core->external;
	reg->self_checkpoint = c->core->self_checkpoint;
	reg->migrate = true;
	if (path != NULL && descriptor_read(c, path, err, errlen) != 0)
		return -1;
	if (reg->external && !c->core->external) {
		snprintf(err, errlen, "%s: gcaExternalCheckpoints TRUE, but the %s core service cannot "
		    "take checkpoints asked from outside the job", path, c->core->name);
		return -1;
	}
	if (reg->self_checkpoint && !c->core->self_checkpoint) {
		snprintf(err, errlen, "%s: gcaSelfCheckpointing TRUE, but the %s core service cannot "
		    "take checkpoints a job asks for itself", path, c->core->name);
		return -1;
	}
	if (reg->classes.n == 0)
		proto_strlist_add(&reg->classes, "basic");
	if (reg->exec_wrapper == NULL)
		reg->exec_wrapper = xstrdup("gca-exec");
	if (reg->recovery_wrapper == NULL)
		reg->recovery_wrapper = xstrdup("gca-recover");
	reg->exec_params = descriptor_join(&c->exec_params);
	reg->recovery_params = descriptor_join(&c->recovery_params);
	reg->core_service = xstrdup(c->core->name);
	if (descriptor_mtbf(c, path, err, errlen) != 0)
		return -1;
	c->core->properties(c, &reg->properties);
	return 0;
}
