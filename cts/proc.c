/*
 * What /proc says of a process: its parent, real uid and start time (proc_stat: a binding's
 * checks, and a job told from a process that took its pid), and the root of a job's process
 * tree, for the two that act on the whole tree: the criu dump (cts/core/criu.c) and the fence
 * that stops an old copy (cts/fence.c). gca-exec runs a criu job in a PID namespace of its own
 * under a small init and stays resident (wrappers/pidns.c): it is the bound process, and the tree
 * is its child that is PID 1 of a namespace one level below its own. A restored job is bound as
 * that init itself (gca-recover binds the root criu restored). Anything else is its own root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cts/cts.h"

int
proc_stat(pid_t pid, pid_t *ppid, uid_t *uid, gid_t *gidn, uint64_t *start)
{
	char path[64], *buf = NULL, *p;
	size_t len;
	unsigned long long st = 0;
	int pp = 0, rc = -1;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (pid <= 0 || file_read_all(path, &buf, &len, 4096) != 0)
		return -1;
	/* "pid (comm) state ppid ..." where comm may hold anything: fields start after the last ')' */
	if ((p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	    &pp, &st) == 2)
		rc = 0;
	free(buf);
	if (rc != 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (file_read_all(path, &buf, &len, 65536) != 0)
		return -1;
	rc = -1;
	{
		unsigned u, g;
		char *ul = strstr(buf, "\nUid:"), *gl = strstr(buf, "\nGid:");
		if (ul && gl && sscanf(ul, "\nUid: %u", &u) == 1 && sscanf(gl, "\nGid: %u", &g) == 1) {
			if (uid) *uid = u;
			if (gidn) *gidn = g;
			rc = 0;
		}
	}
	free(buf);
	if (ppid) *ppid = pp;
	if (start) *start = st;
	return rc;
}

/* "NSpid:" of pid: how many levels below the outermost and its pid in the innermost. */
static int
proc_nspid(pid_t pid, int *levels, long *inner)
{
	char path[64], *buf = NULL, *l, *p, *end;
	size_t len;
	long v;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (file_read_all(path, &buf, &len, 65536) != 0)
		return -1;
	*levels = 0;
	if ((l = strstr(buf, "\nNSpid:")) != NULL) {
		for (p = l + 7; (v = strtol(p, &end, 10)) > 0 && end != p && *p != '\n'; p = end) {
			(*levels)++;
			*inner = v;
		}
	}
	free(buf);
	return *levels > 0 ? 0 : -1;
}

pid_t
proc_job_root(pid_t bound)
{
	char path[80], *buf = NULL, *p, *end;
	int lv, clv;
	long in, cin, child;
	size_t len;
	pid_t root = bound;

	if (proc_nspid(bound, &lv, &in) != 0 || (lv > 1 && in == 1))
		return bound;
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)bound, (int)bound);
	if (file_read_all(path, &buf, &len, 65536) != 0)
		return bound;
	for (p = buf; (child = strtol(p, &end, 10)) > 0 && end != p; p = end) {
		if (proc_nspid((pid_t)child, &clv, &cin) == 0 && clv == lv + 1 && cin == 1) {
			root = (pid_t)child;
			break;
		}
	}
	free(buf);
	return root;
}
