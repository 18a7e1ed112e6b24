/* Logging to stderr, one line per message, journald-friendly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

static const char *log_progname = "gca";
static enum log_level log_level = LOG_INFO;
static bool log_journal;

static const char *log_names[] = { "error", "warn", "info", "debug" };
static const int log_syslog[] = { 3, 4, 6, 7 };

int
log_parse_level(const char *name)
{
	for (size_t i = 0; i < GCA_NITEMS(log_names); i++) {
		if (strcasecmp(name, log_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

void
log_init(const char *progname)
{
	const char *env;
	int level;

	if (progname != NULL) {
		const char *slash = strrchr(progname, '/');
		log_progname = slash ? slash + 1 : progname;
	}
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	env = getenv("GCA_LOG_LEVEL");
	if (env != NULL && (level = log_parse_level(env)) >= 0)
		log_level = (enum log_level)level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", log_syslog[level], msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof when, "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s[%d] %s: %s\n", when, ts.tv_nsec / 1000000, log_progname,
		    (int)getpid(), log_names[level], msg);
	}
	errno = saved;
}

#define LOG_FN(name, level)				\
	void name(const char *fmt, ...)			\
	{						\
		va_list ap;				\
		va_start(ap, fmt);			\
		log_vwrite(level, fmt, ap);		\
		va_end(ap);				\
	}
static void GCA_PRINTF(2, 3)
log_write(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

LOG_FN(log_error, LOG_ERROR)
LOG_FN(log_warn, LOG_WARN)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_limited(struct log_limit *l, enum log_level level, const char *fmt, ...)
{
	uint64_t now = time_mono_ms();
	char msg[1800];
	va_list ap;

	if (level > log_level)
		return;
	if (l->last_ms != 0 && now - l->last_ms < 1000) {
		l->skipped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (l->skipped > 0)
		log_write(level, "%s (and %lu more like it in the last %llu ms)", msg, l->skipped,
		    (unsigned long long)(now - l->last_ms));
	else
		log_write(level, "%s", msg);
	l->last_ms = now;
	l->skipped = 0;
}
