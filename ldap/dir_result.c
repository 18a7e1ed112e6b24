/* What an operation answers: its status from libldap's result code, and the message. */
#include <ldap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

static const char *dir_status_names[] = {
	"ok", "not found", "already exists", "directory unavailable", "rejected by schema",
	"lost a compare-and-swap", "denied", "bound to another CTS", "error",
};

const char *
dir_status_name(enum dir_status s)
{
	return (unsigned)s < GCA_NITEMS(dir_status_names) ? dir_status_names[s] : "?";
}

void
dir_result_set(struct dir_result *r, enum dir_status s, const char *fmt, ...)
{
	va_list ap;

	r->status = s;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

enum dir_status
dir_result_status(int rc)
{
	switch (rc) {
	case LDAP_SUCCESS:
	case LDAP_TXN_SPECIFY_OKAY:
	case LDAP_COMPARE_TRUE:
		return DIR_OK;
	case LDAP_NO_SUCH_OBJECT:
		return DIR_NOT_FOUND;
	case LDAP_ALREADY_EXISTS:
		return DIR_EXISTS;
	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_CONNECT_ERROR:
	case LDAP_UNAVAILABLE:
	case LDAP_BUSY:
	case LDAP_LOCAL_ERROR:
		return DIR_DOWN;
	case LDAP_OBJECT_CLASS_VIOLATION:
	case LDAP_UNDEFINED_TYPE:
	case LDAP_INVALID_SYNTAX:
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_NAMING_VIOLATION:
	case LDAP_INVALID_DN_SYNTAX:
		return DIR_SCHEMA;
	case LDAP_NO_SUCH_ATTRIBUTE:
	case LDAP_ASSERTION_FAILED:
	case LDAP_TYPE_OR_VALUE_EXISTS:
		return DIR_CAS_LOST;
	case LDAP_INSUFFICIENT_ACCESS:
	case LDAP_STRONG_AUTH_REQUIRED:
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
		return DIR_DENIED;
	default:
		return DIR_ERROR;
	}
}

void
dir_result_clear(struct dir_result *r)
{
	for (size_t i = 0; i < r->nentries; i++)
		dir_entry_clear(&r->entries[i]);
	free(r->entries);
	memset(r, 0, sizeof *r);
}
