/* Names from outside: GIDs and CTS names are any printable text, so never paste one into a path. */
#include <stdio.h>
#include <string.h>

#include "common/common.h"

bool
name_valid(const char *s)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strlen(s);
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
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
