/*
 * Escaping: a GID or name from outside goes into a filter or a DN only through here.
 * Filters use libldap's own RFC 4515 escaper; RDN values are escaped per RFC 4514 and checked by
 * parsing them back with ldap_str2dn, so a value like ",ou=x" stays one value of one RDN.
 */
#include <ldap.h>
#include <stdio.h>
#include <string.h>

#include "ldap/gca_ldap.h"

int
dir_filter_escape(const char *value, char *out, size_t outlen)
{
	struct berval in, esc = { 0, NULL };
	int rc = -1;

	ber_str2bv(value, 0, 0, &in);	/* borrowed, not copied */
	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		return -1;
	if (esc.bv_len < outlen) {
		memcpy(out, esc.bv_val, esc.bv_len);
		out[esc.bv_len] = '\0';
		rc = 0;
	}
	ber_memfree(esc.bv_val);
	return rc;
}

int
dir_rdn_escape(const char *value, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(value), o = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		int special = strchr(",+\"\\<>;=", c) != NULL ||
		    (i == 0 && (c == ' ' || c == '#')) || (i == len - 1 && c == ' ');

		if (o + 4 >= outlen)
			return -1;
		if (c < 0x20 || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else if (special) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return 0;
}

/* "attr=<escaped value>,<parent>", checked to parse back as exactly one more RDN than parent. */
static int
dir_escape_dn(const char *attr, const char *value, const char *parent, char *out, size_t outlen)
{
	char esc[1024 * 3 + 1];
	LDAPDN dn = NULL, pdn = NULL;
	int n = 0, pn = 0, rc = -1;

	if (value == NULL || dir_rdn_escape(value, esc, sizeof esc) != 0)
		return -1;
	if (snprintf(out, outlen, "%s=%s,%s", attr, esc, parent) >= (int)outlen)
		return -1;
	if (ldap_str2dn(out, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
	    ldap_str2dn(parent, &pdn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		goto out;
	while (dn[n] != NULL)
		n++;
	while (pdn[pn] != NULL)
		pn++;
	/* One RDN with one attribute-value pair, whose value is exactly what we were given. */
	if (n == pn + 1 && dn[0][0] != NULL && dn[0][1] == NULL &&
	    dn[0][0]->la_value.bv_len == strlen(value) &&
	    memcmp(dn[0][0]->la_value.bv_val, value, strlen(value)) == 0)
		rc = 0;
out:
	ldap_dnfree(dn);
	ldap_dnfree(pdn);
	return rc;
}

int
dir_dn_service(const struct dir *d, const char *name, char *out, size_t outlen)
{
	char parent[512];

	snprintf(parent, sizeof parent, "ou=services,%s", dir_base(d));
	return dir_escape_dn("cn", name, parent, out, outlen);
}

int
dir_dn_class(const struct dir *d, const char *name, char *out, size_t outlen)
{
	char parent[512];

	snprintf(parent, sizeof parent, "ou=classes,%s", dir_base(d));
	return dir_escape_dn("cn", name, parent, out, outlen);
}

int
dir_dn_cts(const struct dir *d, const char *name, char *out, size_t outlen)
{
	char parent[512];

	snprintf(parent, sizeof parent, "ou=cts,%s", dir_base(d));
	return dir_escape_dn("cn", name, parent, out, outlen);
}

int
dir_dn_job(const struct dir *d, const char *gid, char *out, size_t outlen)
{
	char parent[512], esc[1024 * 3 + 1];

	/* back-mdb keeps an entry's RDN as given and normalized (where special characters take 3
	 * bytes, "\\2C") in one LMDB value of at most 511 bytes: seen here, plain GIDs of 240 bytes
	 * fail, 235 pass. Both forms together stay within 2 * DIR_GID_MAX. */
	size_t norm = 0;

	if (gid == NULL || dir_rdn_escape(gid, esc, sizeof esc) != 0)
		return -1;
	for (const char *p = esc; *p != '\0'; p++)
		norm += *p == '\\' ? 0 : 1;
	norm += 2 * (strlen(esc) - norm);	/* every escape is 3 bytes normalized */
	if (strlen(esc) + norm > 2 * DIR_GID_MAX)
		return -1;
	snprintf(parent, sizeof parent, "ou=jobs,%s", dir_base(d));
	return dir_escape_dn("gcaGID", gid, parent, out, outlen);
}

int
dir_dn_checkpoint(const struct dir *d, const char *gid, const char *id, char *out, size_t outlen)
{
	char job[4096];

	if (dir_dn_job(d, gid, job, sizeof job) != 0)
		return -1;
	return dir_escape_dn("gcaCheckpointId", id, job, out, outlen);
}
