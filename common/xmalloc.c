/*
 * common/xmalloc.c: allocations that cannot fail. A daemon that runs out of memory cannot
 * answer, log or roll back anything sensibly, so it stops at once with one clear line, as
 * tmux's xmalloc.c does, instead of every caller testing for NULL and calling abort().
 * Functions that must survive a huge request from a peer check its size before they allocate.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static void GCA_NORETURN
xmalloc_die(const char *what, size_t n)
{
	/* No log_* here: logging may allocate. */
	fprintf(stderr, "gca: out of memory (%s of %zu bytes)\n", what, n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		xmalloc_die("malloc", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if ((p = calloc(nmemb, size)) == NULL)
		xmalloc_die("calloc", nmemb * size);
	return p;
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		xmalloc_die("reallocarray (overflow)", SIZE_MAX);
	if ((p = realloc(ptr, nmemb * size == 0 ? 1 : nmemb * size)) == NULL)
		xmalloc_die("realloc", nmemb * size);
	return p;
}

char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		xmalloc_die("strdup", strlen(s) + 1);
	return d;
}

char *
xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (d == NULL)
		xmalloc_die("strndup", n + 1);
	return d;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		xmalloc_die("asprintf", 0);
	return n;
}

/* A NULL-terminated copy of v (strings and array), for exec*() and posix_spawn(), which take
 * char *const argv[] but never write the strings: copying costs less than a cast that drops a
 * const. Freed with xstrv_free. */
char **
xstrvdup(const char *const *v)
{
	size_t n = 0;
	char **d;

	while (v[n] != NULL)
		n++;
	d = xreallocarray(NULL, n + 1, sizeof *d);
	for (size_t i = 0; i < n; i++)
		d[i] = xstrdup(v[i]);
	d[n] = NULL;
	return d;
}

void
xstrv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}
