/*
 * The two values QMP and the Virtual Node Gate send that gca reads: a string or a number by its
 * key, in one JSON line. Not a JSON parser: the first "key" found wins, which is enough for the
 * flat replies of QEMU's QMP and the gate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* Where the value of "key" starts, past the colon and blanks. */
static const char *
json_find(const char *json, const char *key)
{
	char pat[80];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\"", key);
	if ((p = strstr(json, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	return p;
}

int
json_str(const char *json, const char *key, char *out, size_t len)
{
	const char *p = json_find(json, key);
	size_t n = 0;

	if (p == NULL || *p != '"' || len == 0)
		return -1;
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;		/* \" \\ \/ kept as the character; \n as 'n' is good enough */
		if (n + 1 < len)
			out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"' ? 0 : -1;
}

int
json_u64(const char *json, const char *key, uint64_t *out)
{
	const char *p = json_find(json, key);

	if (p == NULL || *p < '0' || *p > '9')
		return -1;
	*out = strtoull(p, NULL, 10);
	return 0;
}

static int
json_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
json_qom_children(const char *json, char *out, size_t len)
{
	char *names[256], *all, *save = NULL;
	const char *p = json;
	size_t n = 0, used = 0, cap = strlen(out) + strlen(json) + 2;
	int rc = 0;

	/* the list so far and every child<TYPE> of this answer, then sorted: a set, not an order */
	if ((all = malloc(cap)) == NULL)
		return -1;
	snprintf(all, cap, "%s", out);
	used = strlen(all);
	while ((p = strstr(p, "\"child<")) != NULL) {
		const char *end = strchr(p += 7, '>');
		if (end == NULL)
			break;
		used += (size_t)snprintf(all + used, cap - used, "%s%.*s", used ? "," : "",
		    (int)(end - p), p);
		p = end;
	}
	for (char *t = strtok_r(all, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (n == sizeof names / sizeof names[0]) {
			rc = -1;
			break;
		}
		names[n++] = t;
	}
	qsort(names, n, sizeof names[0], json_cmp);
	used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && rc == 0; i++) {
		int w = snprintf(out + used, len - used, "%s%s", i ? "," : "", names[i]);
		if (w < 0 || (size_t)w >= len - used)
			rc = -1;
		else
			used += (size_t)w;
	}
	free(all);
	return rc;
}
