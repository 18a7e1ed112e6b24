/*
 * Checkpoint ids: UUIDv7 (RFC 9562), so ids sort by the time they were made and a broker's
 * `ldapsearch` output reads in order. 48 bits of milliseconds, then random bits from getrandom.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/common.h"

void
id_new(char out[ID_LEN + 1])
{
	unsigned char b[16];
	uint64_t ms = time_now_ms();
	size_t got = 0;

	while (got < sizeof b) {
		ssize_t n = getrandom(b + got, sizeof b - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));	/* version 7 */
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));	/* variant 10 */
	snprintf(out, ID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	    b[14], b[15]);
}

/* The canonical lower-case form only: an id is used as a folder name and a DN value. */
bool
id_valid(const char *s)
{
	if (s == NULL || strlen(s) != ID_LEN)
		return false;
	for (int i = 0; i < ID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* The UUIDv7's first 48 bits: when the checkpoint was taken (transfer.c's cutoff for images
 * signed with a TLS key reads it). */
uint64_t
id_time_ms(const char *id)
{
	uint64_t ms = 0;
	int digits = 0;

	for (const char *p = id; *p != '\0' && digits < 12; p++) {
		if (*p == '-')
			continue;
		ms = ms * 16 + (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' : (*p | 0x20) - 'a' + 10);
		digits++;
	}
	return ms;
}
