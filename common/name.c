/* Names from outside: GIDs and CTS names are any printable text, so never paste one into a path. */
#include <stdio.h>
#include <string.h>

#include "common/common.h"

/*
 * The one rule for names that enter from outside (GIDs, CTS and class names), checked by every
 * daemon and command that takes one so they all agree. The directory compares these names with
 * insignificant spaces (RFC 4518: spaces at either end do not count and a run of spaces counts as
 * one), and class names ignoring case too: " job-1" would find the entry of "job-1", so such names
 * are refused rather than served as another's.
 */
const char *
name_why(const char *s)
{
	size_t len;

	if (s == NULL || (len = strlen(s)) == 0)
		return "empty";
	if (len > NAME_MAX_LEN)
		return "longer than 255 bytes";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return "a control character (a newline, a tab, ...)";
		if (*p == ' ' && p[1] == ' ')
			return "two spaces in a row";
	}
	if (s[0] == ' ' || s[len - 1] == ' ')
		return "a space at its start or end";
	return NULL;
}

bool
name_valid(const char *s)
{
	return name_why(s) == NULL;
}

int
name_to_path(const char *name, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (!name_valid(name))
		return -1;
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
		if (o + (keep ? 1 : 3) >= outlen)
			return -1;
		if (keep) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}
