/* Directory entries as plain data: a DN and attribute -> values. */
#include <ldap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

struct dir_entry *
dir_entry_new(const char *dn)
{
	struct dir_entry *e = xcalloc(1, sizeof *e);

	e->dn = xstrdup(dn ? dn : "");
	return e;
}

/* The attribute to change in place (the entry's attrs array is ours, const entry or not). */
static struct dir_attr *
dir_entry_find(const struct dir_entry *e, const char *attr)
{
	for (size_t i = 0; i < e->nattrs; i++) {
		if (strcasecmp(e->attrs[i].name, attr) == 0)
			return &e->attrs[i];
	}
	return NULL;
}

const struct dir_attr *
dir_entry_attr(const struct dir_entry *e, const char *attr)
{
	return dir_entry_find(e, attr);
}

const char *
dir_entry_get(const struct dir_entry *e, const char *attr)
{
	const struct dir_attr *a = dir_entry_attr(e, attr);

	return a != NULL && a->nvals > 0 ? a->vals[0] : NULL;
}

void
dir_entry_add(struct dir_entry *e, const char *attr, const char *value)
{
	struct dir_attr *a = dir_entry_find(e, attr);

	if (value == NULL)
		return;
	if (a == NULL) {
		e->attrs = xreallocarray(e->attrs, e->nattrs + 1, sizeof *e->attrs);
		a = &e->attrs[e->nattrs++];
		memset(a, 0, sizeof *a);
		a->name = xstrdup(attr);
	}
	a->vals = xreallocarray(a->vals, a->nvals + 1, sizeof *a->vals);
	a->vals[a->nvals++] = xstrdup(value);
}

void
dir_entry_set(struct dir_entry *e, const char *attr, const char *value)
{
	struct dir_attr *a = dir_entry_find(e, attr);

	if (a != NULL) {
		for (size_t i = 0; i < a->nvals; i++)
			free(a->vals[i]);
		a->nvals = 0;
	}
	dir_entry_add(e, attr, value);
}

/* attr is in e with no value (yet): a replace of e then removes whatever values the entry had. */
void
dir_entry_own(struct dir_entry *e, const char *attr)
{
	if (dir_entry_attr(e, attr) != NULL)
		return;
	e->attrs = xreallocarray(e->attrs, e->nattrs + 1, sizeof *e->attrs);
	memset(&e->attrs[e->nattrs], 0, sizeof *e->attrs);
	e->attrs[e->nattrs++].name = xstrdup(attr);
}

void
dir_entry_addf(struct dir_entry *e, const char *attr, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	dir_entry_add(e, attr, buf);
}

void
dir_entry_clear(struct dir_entry *e)
{
	for (size_t i = 0; i < e->nattrs; i++) {
		for (size_t j = 0; j < e->attrs[i].nvals; j++)
			free(e->attrs[i].vals[j]);
		free(e->attrs[i].vals);
		free(e->attrs[i].name);
	}
	free(e->attrs);
	free(e->dn);
	memset(e, 0, sizeof *e);
}

void
dir_entry_free(struct dir_entry *e)
{
	if (e == NULL)
		return;
	dir_entry_clear(e);
	free(e);
}

/* An entry as libldap returned it (a search result or a syncrepl message). */
struct dir_entry *
dir_entry_from_ldap(void *ldp, void *msgp)
{
	LDAP *ld = ldp;
	LDAPMessage *m = msgp;
	BerElement *ber = NULL;
	char *dn = ldap_get_dn(ld, m), *attr;
	struct dir_entry *e = dir_entry_new(dn ? dn : "");

	ldap_memfree(dn);
	for (attr = ldap_first_attribute(ld, m, &ber); attr != NULL;
	    attr = ldap_next_attribute(ld, m, ber)) {
		struct berval **vals = ldap_get_values_len(ld, m, attr);
		for (int i = 0; vals != NULL && vals[i] != NULL; i++) {
			char *v = xstrndup(vals[i]->bv_val, vals[i]->bv_len);
			dir_entry_add(e, attr, v);
			free(v);
		}
		ldap_value_free_len(vals);
		ldap_memfree(attr);
	}
	ber_free(ber, 0);
	return e;
}
