/*
 * common/: what every gca program shares and nothing else: logging, config files, ids,
 * names that are safe on disk, and whole-file writes.
 */
#ifndef GCA_COMMON_H
#define GCA_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GCA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define GCA_NORETURN __attribute__((noreturn))
#define GCA_NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* xmalloc.c: allocations that stop the program with one clear line when memory runs out, instead
 * of a NULL test and abort() at every call (tmux's xmalloc.c). Size a peer chose is checked first. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
int   xasprintf(char **ret, const char *fmt, ...) GCA_PRINTF(2, 3);
char **xstrvdup(const char *const *v);	/* for exec*(): freed with xstrv_free */
void  xstrv_free(char **v);

/* log.c: levels, to stderr; "<N>" syslog prefixes when stderr is the journal (JOURNAL_STREAM). */
enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
void log_init(const char *progname);          /* level from GCA_LOG_LEVEL (error|warn|info|debug) */
void log_set_level(enum log_level level);
int  log_parse_level(const char *name);        /* -1 if unknown */
void log_error(const char *fmt, ...) GCA_PRINTF(1, 2);
void log_warn(const char *fmt, ...) GCA_PRINTF(1, 2);
void log_info(const char *fmt, ...) GCA_PRINTF(1, 2);
void log_debug(const char *fmt, ...) GCA_PRINTF(1, 2);
void log_fatal(const char *fmt, ...) GCA_PRINTF(1, 2) GCA_NORETURN;
/* A line that a loop could repeat (accept failing, a peer refused again and again): at most one
 * per second per struct log_limit, the next one saying how many were left out meanwhile. */
struct log_limit {
	uint64_t	last_ms;
	unsigned long	skipped;
};
void log_limited(struct log_limit *l, enum log_level level, const char *fmt, ...) GCA_PRINTF(3, 4);

/* config.c: "key value" lines as in ldap.conf; '#' starts a comment line; later keys win. */
struct config_entry {
	char	*key;
	char	*value;
	int	 line;
};
struct config {
	char			*path;
	struct config_entry	*entries;
	size_t			 n;
};
int         config_load(struct config *c, const char *path, char *err, size_t errlen);
const char *config_get(const struct config *c, const char *key);
int         config_get_int(const struct config *c, const char *key, long min, long max, long *out,
		char *err, size_t errlen);   /* 0 absent-or-ok (out untouched if absent), -1 bad */
int         config_get_bool(const struct config *c, const char *key, bool dflt, bool *out,
		char *err, size_t errlen);   /* yes|no|true|false|on|off|1|0; absent: dflt */
void        config_free(struct config *c);

/* version.c: "7.2.22" against "7.2", numerically: <0, 0, >0. */
int version_cmp(const char *a, const char *b);

/* json.c: a string or a number by its key in one flat JSON line (QMP, the gate); -1 if absent. */
int json_str(const char *json, const char *key, char *out, size_t len);
int json_u64(const char *json, const char *key, uint64_t *out);
/* The TYPEs of a QMP qom-list answer's "child<TYPE>" entries added to out, a comma-separated list
 * kept sorted (QEMU's devices as a set); -1 if out is too small or the list too long. */
int json_qom_children(const char *json, char *out, size_t len);

/* id.c: checkpoint ids are UUIDv7 (time-ordered), canonical lower-case text form. */
#define ID_LEN 36
void id_new(char out[ID_LEN + 1]);
bool id_valid(const char *s);
uint64_t id_time_ms(const char *id);          /* the millisecond time inside a UUIDv7 */

/* name.c: names from outside (GIDs, CTS names). */
#define NAME_MAX_LEN 255
/* The rule, for messages: */
#define NAME_RULE "1 to 255 bytes; no control character, no space at either end, no two in a row"
bool name_valid(const char *s);
const char *name_why(const char *s);           /* what is wrong with s, or NULL: it is valid */
/* A name as one safe path component: [A-Za-z0-9_-] kept, everything else %XX, never "." or "..". */
int  name_to_path(const char *name, char *out, size_t outlen);

/* file.c: every file written whole (temp + fsync + rename + fsync of the folder). */
int  file_write_whole(const char *path, const void *buf, size_t len, mode_t mode);
/* The same without the folder's fsync: the caller fsyncs the folder once for several files. */
int  file_write_whole_batch(const char *path, const void *buf, size_t len, mode_t mode);
int  file_read_all(const char *path, char **buf, size_t *len, size_t max);  /* NUL-terminated */
int  file_fsync_dir(const char *dir);
int  file_mkdirs(const char *path, mode_t mode);	/* mkdir -p; existing folders are fine */
int  file_remove_tree(const char *path);

/* time.c */
uint64_t time_now_ms(void);                    /* CLOCK_REALTIME */
uint64_t time_mono_ms(void);                   /* CLOCK_MONOTONIC */
void     time_generalized(uint64_t ms, char out[32]);  /* LDAP GeneralizedTime, UTC, ms: 20261125101500.123Z */
int      duration_parse(const char *s, uint64_t *ms);  /* "500ms", "30s", "5m", "2h", bare = seconds */

/* daly.c: the checkpoint interval for a cost delta and a mean time between failures (Daly's
 * formula), bounded by [min, max]; an mtbf= value: a positive duration (0, or -1 if it is not). */
#define DALY_MTBF_DEFAULT_MS	(24ull * 3600 * 1000)
uint64_t daly_interval_ms(uint64_t delta_ms, uint64_t mtbf_ms, uint64_t min_ms, uint64_t max_ms);
int      daly_mtbf_parse(const char *s, uint64_t *ms);

#endif
