/* gca-ctl jobs, gca-ctl checkpoints: jobs and the records of a job's checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int
jobs_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "gcaGID", "gcaCTSName", "gcaJobState", "gcaOwner",
		"gcaLastSequence", "gcaExitStatus", "gcaProperty:interval=", NULL };
	static const char *const heads[] = { "GID", "CTS", "STATE", "OWNER", "CHECKPOINTS", "EXIT",
		"INTERVAL" };
	struct msg_query q = { .what = "jobs" };

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--cts") == 0)
			q.cts = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--limit") == 0 && atoi(argv[i + 1]) > 0)
			q.limit = (uint64_t)atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--cursor") == 0)
			q.cursor = argv[++i];
		else
			return ctl_bad_arg(&ctl_cmd_jobs, argc, argv, i);
	}
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_jobs = {
	.name = "jobs",
	.usage = "[--cts NAME] [--limit N] [--cursor C]",
	.help = "list the jobs and the CTS holding each, a page of N at a time",
	.more =
	    "One line per job entry in ou=jobs: its GID, the CTS it is bound to, its state (running,\n"
	    "finished), the user who owns it, the sequence number of its last checkpoint, once it\n"
	    "ended under gca-exec or gca-recover its exit status (128+N: signal N ended it) and, for a\n"
	    "job under --checkpoint-every auto, its interval and what it was computed from (\"auto:\n"
	    "<T>ms delta=<checkpoint cost>ms mtbf=<M>ms mtbf_from=cts|restarts|default\").\n"
	    "  --cts NAME   only the jobs bound to that CTS\n"
	    "  --limit N    at most N (default 500), in the order of their GIDs; when more follow, a\n"
	    "               line on stderr gives the cursor (\"more: run it again with --cursor ...\")\n"
	    "  --cursor C   the next page, from that line\n"
	    "example:\n"
	    "  gca-ctl jobs --cts cts-app\n"
	    "  gca-ctl --json jobs\n",
	.run = jobs_run,
};

static int
checkpoints_run(struct ctl *c, int argc, char **argv)
{
	static const char *const cols[] = { "gcaSequenceNumber", "gcaCheckpointId", "gcaCheckpointTime",
		"gcaCTSName", "gcaCheckpointKind", "gcaImageSize", NULL };
	static const char *const heads[] = { "SEQ", "CHECKPOINT", "TIME", "CTS", "KIND", "SIZE" };
	struct msg_query q = { .what = "checkpoints" };

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--limit") == 0 && atoi(argv[i + 1]) > 0)
			q.limit = (uint64_t)atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--cursor") == 0)
			q.cursor = argv[++i];
		else if (argv[i][0] != '-' && q.gid == NULL)
			q.gid = argv[i];
		else
			return ctl_bad_arg(&ctl_cmd_checkpoints, argc, argv, i);
	}
	if (q.gid == NULL)
		return ctl_usage_error(&ctl_cmd_checkpoints, "which job? give its GID");
	if (ctl_check_name(&ctl_cmd_checkpoints, "GID", q.gid) != 0)
		return CTL_USAGE;
	return ctl_query(c, &q, cols, heads);
}

const struct ctl_cmd ctl_cmd_checkpoints = {
	.name = "checkpoints",
	.usage = "GID [--limit N] [--cursor C]",
	.help = "list a job's checkpoints, newest first, a page of N at a time",
	.more =
	    "The records (gcaCheckpoint entries) of GID: sequence number, checkpoint id, time, the CTS\n"
	    "that took it, kind (external, periodic, job) and image size.\n"
	    "  --limit N    at most N (default 500); when more follow, a line on stderr gives the cursor\n"
	    "  --cursor C   the next page, from that line\n"
	    "example:\n"
	    "  gca-ctl checkpoints job-7 --limit 10\n"
	    "  gca-ctl --json checkpoints job-7 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])'\n",
	.run = checkpoints_run,
};
