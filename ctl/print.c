/* gca-ctl's lists: aligned tables for people, one JSON document for scripts. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ctl/ctl.h"

/* A column other than the last is at most this wide; a longer cell ends in "..." so the columns
 * after it stay aligned. The last column is printed whole. */
#define PRINT_MAX_WIDTH	60
#define PRINT_MAX_COLS	16

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

static void
print_json_key(struct ctl_json *j, const char *key)
{
	fputs(j->n++ ? ", " : "{", j->f);
	ctl_json_string(j->f, key);
	fputs(": ", j->f);
}

void
ctl_json_key(struct ctl_json *j, const char *key)
{
	print_json_key(j, key);
}

void
ctl_json_begin(struct ctl_json *j, FILE *f)
{
	j->f = f;
	j->n = 0;
}

void
ctl_json_str(struct ctl_json *j, const char *key, const char *value)
{
	print_json_key(j, key);
	ctl_json_string(j->f, value != NULL ? value : "");
}

void
ctl_json_num(struct ctl_json *j, const char *key, unsigned long long value)
{
	print_json_key(j, key);
	fprintf(j->f, "%llu", value);
}

void
ctl_json_bool(struct ctl_json *j, const char *key, bool value)
{
	print_json_key(j, key);
	fputs(value ? "true" : "false", j->f);
}

void
ctl_json_list(struct ctl_json *j, const char *key, const struct proto_strlist *l)
{
	print_json_key(j, key);
	fputc('[', j->f);
	for (size_t i = 0; i < l->n; i++) {
		fputs(i ? ", " : "", j->f);
		ctl_json_string(j->f, l->v[i]);
	}
	fputc(']', j->f);
}

void
ctl_json_end(struct ctl_json *j)
{
	fputs(j->n ? "}\n" : "{}\n", j->f);
}

/* The cell of a column: every value of the attribute, joined with commas. A column
 * "attr:prefix" has the values of attr that start with prefix, without it (gcaProperty:interval=). */
static void
print_cell(const struct proto_entry *e, const char *col, char *out, size_t len)
{
	const char *colon = strchr(col, ':'), *prefix = colon ? colon + 1 : "";
	size_t o = 0, al = colon ? (size_t)(colon - col) : strlen(col), pl = strlen(prefix);

	out[0] = '\0';
	for (size_t i = 0; i < e->n; i++) {
		if (strlen(e->attrs[i].name) != al || strncasecmp(e->attrs[i].name, col, al) != 0)
			continue;
		for (size_t v = 0; v < e->attrs[i].vals.n && o < len; v++) {
			if (strncmp(e->attrs[i].vals.v[v], prefix, pl) != 0)
				continue;
			o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "",
			    e->attrs[i].vals.v[v] + pl);
		}
	}
	if (out[0] == '\0')
		snprintf(out, len, "-");
}

static void
print_json(const struct proto_entries *es)
{
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
}

/* One row: each cell padded to its column's width, the last one whole and unpadded. */
static void
print_row(const char *const *cells, const size_t *width, size_t ncols)
{
	for (size_t k = 0; k < ncols; k++) {
		if (k + 1 == ncols) {
			printf("%s\n", cells[k]);
		} else if (strlen(cells[k]) > width[k]) {
			printf("%.*s...  ", (int)width[k] - 3, cells[k]);
		} else {
			printf("%-*s  ", (int)width[k], cells[k]);
		}
	}
}

void
ctl_print_entries(struct ctl *c, const struct proto_entries *es, const char *const *cols,
    const char *const *heads)
{
	size_t ncols = 0, width[PRINT_MAX_COLS] = { 0 };
	char cell[PRINT_MAX_COLS][1024];
	const char *cells[PRINT_MAX_COLS];

	if (c->json) {
		print_json(es);
		return;
	}
	while (cols[ncols] != NULL && ncols < PRINT_MAX_COLS)
		ncols++;
	for (size_t k = 0; k < ncols; k++)
		width[k] = strlen(heads[k]);
	for (size_t i = 0; i < es->n; i++) {
		for (size_t k = 0; k < ncols; k++) {
			print_cell(&es->v[i], cols[k], cell[0], sizeof cell[0]);
			if (strlen(cell[0]) > width[k])
				width[k] = strlen(cell[0]);
		}
	}
	for (size_t k = 0; k < ncols; k++) {
		if (width[k] > PRINT_MAX_WIDTH)
			width[k] = PRINT_MAX_WIDTH;
	}
	print_row(heads, width, ncols);
	for (size_t i = 0; i < es->n; i++) {
		for (size_t k = 0; k < ncols; k++) {
			print_cell(&es->v[i], cols[k], cell[k], sizeof cell[k]);
			cells[k] = cell[k];
		}
		print_row(cells, width, ncols);
	}
}
