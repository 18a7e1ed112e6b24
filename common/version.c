/*
 * common/version.c: release numbers compared as numbers (QEMU's "7.2.22" against a record's
 * vmm.qemu), for the CTS's check of a moved VM image and the resumer's own.
 */
#include <stdio.h>

#include "common/common.h"

/* a.b.c against x.y.z, numerically (missing parts are 0): <0, 0, >0 */
int
version_cmp(const char *a, const char *b)
{
	unsigned va[3] = { 0 }, vb[3] = { 0 };

	sscanf(a, "%u.%u.%u", &va[0], &va[1], &va[2]);
	sscanf(b, "%u.%u.%u", &vb[0], &vb[1], &vb[2]);
	for (int i = 0; i < 3; i++)
		if (va[i] != vb[i])
			return va[i] < vb[i] ? -1 : 1;
	return 0;
}
