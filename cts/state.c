/*
 * Paths in the CTS's state folder (STATE/images/<gid>/<id>), which nearly every part names. Kept
 * out of cts.c (the program's main, which calls every part) so that the parts below it do not
 * call back into it.
 */
#include <stdio.h>

#include "cts/cts.h"

int
cts_job_dir(struct cts *c, const char *gid, char *out, size_t len)
{
	char p[3 * NAME_MAX_LEN + 1];

	if (name_to_path(gid, p, sizeof p) != 0)
		return -1;
	return snprintf(out, len, "%s/images/%s", c->state, p) >= (int)len ? -1 : 0;
}

int
cts_image_dir(struct cts *c, const char *gid, const char *id, char *out, size_t len)
{
	char jd[PATH_MAX];

	if (cts_job_dir(c, gid, jd, sizeof jd) != 0 || !id_valid(id))
		return -1;
	return snprintf(out, len, "%s/%s", jd, id) >= (int)len ? -1 : 0;
}
