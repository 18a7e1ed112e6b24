/* Clocks and the two time formats gca shows: GeneralizedTime for LDAP, durations for flags. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

uint64_t
time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
time_generalized(uint64_t ms, char out[32])
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char base[20];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof base, "%Y%m%d%H%M%S", &tm);
	snprintf(out, 32, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

int
duration_parse(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long n;
	uint64_t mult;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else
		return -1;
	if (n > UINT64_MAX / mult)
		return -1;
	*ms = n * mult;
	return 0;
}
