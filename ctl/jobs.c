/* gca-ctl jobs, gca-ctl checkpoints: jobs and the records of a job's checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int
jobs_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "gcaGID", "gcaCTSName", "gcaJobState", "gcaOwner",
		"gcaLastSequence", NULL };
	static const char *const heads[] = { "GID", "CTS", "STATE", "OWNER", "CHECKPOINTS" };
	struct msg_query q = { .what = "jobs" };

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--cts") == 0)
			q.cts = argv[++i];
		else
			return ctl_usage(&ctl_cmd_jobs);
	}
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_jobs = {
	"jobs", "[--cts NAME]", "list the jobs and the CTS holding each", jobs_run,
};

static int
checkpoints_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "gcaSequenceNumber", "gcaCheckpointId", "gcaCheckpointTime",
		"gcaCTSName", "gcaCheckpointKind", "gcaImageSize", NULL };
	static const char *const heads[] = { "SEQ", "CHECKPOINT", "TIME", "CTS", "KIND", "SIZE" };
	struct msg_query q = { .what = "checkpoints" };

	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage(&ctl_cmd_checkpoints);
	q.gid = argv[0];
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--limit") == 0 && atoi(argv[i + 1]) > 0)
			q.limit = (uint64_t)atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--cursor") == 0)
			q.cursor = argv[++i];
		else
			return ctl_usage(&ctl_cmd_checkpoints);
	}
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_checkpoints = {
	"checkpoints", "GID [--limit N] [--cursor C]",
	"list a job's checkpoints, newest first, a page of N at a time", checkpoints_run,
};
