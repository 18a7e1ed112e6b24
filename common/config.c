/* Config files of "key value" lines, as ldap.conf: the value is the rest of the line, trimmed. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define CONFIG_MAX_SIZE (1024 * 1024)

static char *
config_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	char *buf, *line, *next;
	size_t len;
	int lineno = 0;

	memset(c, 0, sizeof *c);
	if (file_read_all(path, &buf, &len, CONFIG_MAX_SIZE) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	c->path = xstrdup(path);
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		char *key, *value, *sp;
		struct config_entry *grown;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		key = config_trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		for (sp = key; *sp != '\0' && !isspace((unsigned char)*sp); sp++)
			;
		value = "";
		if (*sp != '\0') {
			*sp = '\0';
			value = config_trim(sp + 1);
		}
		grown = realloc(c->entries, (c->n + 1) * sizeof *c->entries);
		if (grown == NULL) {
			snprintf(err, errlen, "%s: out of memory", path);
			free(buf);
			config_free(c);
			return -1;
		}
		c->entries = grown;
		c->entries[c->n].key = xstrdup(key);
		c->entries[c->n].value = xstrdup(value);
		c->entries[c->n].line = lineno;
		c->n++;
	}
	free(buf);
	return 0;
}

const char *
config_get(const struct config *c, const char *key)
{
	/* Later lines win, so search from the end. */
	for (size_t i = c->n; i > 0; i--) {
		if (strcmp(c->entries[i - 1].key, key) == 0)
			return c->entries[i - 1].value;
	}
	return NULL;
}

int
config_get_int(const struct config *c, const char *key, long min, long max, long *out, char *err,
    size_t errlen)
{
	const char *v = config_get(c, key);
	char *end;
	long n;

	if (v == NULL)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
		snprintf(err, errlen, "%s: %s must be a number from %ld to %ld, not \"%s\"",
		    c->path ? c->path : "config", key, min, max, v);
		return -1;
	}
	*out = n;
	return 0;
}

int
config_get_bool(const struct config *c, const char *key, bool dflt, bool *out, char *err,
    size_t errlen)
{
	static const char *yes[] = { "yes", "true", "on", "1" }, *no[] = { "no", "false", "off", "0" };
	const char *v = config_get(c, key);

	*out = dflt;
	if (v == NULL)
		return 0;
	for (size_t i = 0; i < GCA_NITEMS(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return (*out = true), 0;
		if (strcasecmp(v, no[i]) == 0)
			return (*out = false), 0;
	}
	snprintf(err, errlen, "%s: %s must be yes or no, not \"%s\"", c->path ? c->path : "config",
	    key, v);
	return -1;
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->entries);
	free(c->path);
	memset(c, 0, sizeof *c);
}
