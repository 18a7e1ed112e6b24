/* gca-ctl jobs, gca-ctl checkpoints: jobs and the records of a job's checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static const struct ctl_list jobs_list = {
	.what = "jobs",
	.cols = { "gcaGID", "gcaCTSName", "gcaJobState", "gcaOwner", "gcaLastSequence", "gcaExitStatus",
		"gcaProperty:interval=", NULL },
	.heads = { "GID", "CTS", "STATE", "OWNER", "CHECKPOINTS", "EXIT", "INTERVAL" },
};

const struct ctl_cmd ctl_cmd_jobs = {
	.name = "jobs",
	.opts = {
		{ "--cts", NULL, "NAME", CTL_STRING, false, "only the jobs bound to that CTS" },
		{ "--limit", NULL, "N", CTL_COUNT, false,
		  "at most N (default 500), in the order of their GIDs; when more follow, a\n"
		  "line on stderr gives the cursor (\"more: run it again with --cursor ...\")" },
		{ "--cursor", NULL, "C", CTL_STRING, false, "the next page, from that line" },
	},
	.help = "list the jobs and the CTS holding each, a page of N at a time",
	.more =
	    "One line per job entry in ou=jobs: its GID, the CTS it is bound to, its state (running,\n"
	    "finished), the user who owns it, the sequence number of its last checkpoint, once it\n"
	    "ended under gca-exec or gca-recover its exit status (128+N: signal N ended it) and, for a\n"
	    "job under --checkpoint-every auto, its interval and what it was computed from (\"auto:\n"
	    "<T>ms delta=<checkpoint cost>ms mtbf=<M>ms mtbf_from=cts|restarts|default\").\n",
	.after =
	    "example:\n"
	    "  gca-ctl jobs --cts cts-app\n"
	    "  gca-ctl --json jobs\n",
	.list = &jobs_list,
};

static const struct ctl_list checkpoints_list = {
	.what = "checkpoints",
	.cols = { "gcaSequenceNumber", "gcaCheckpointId", "gcaCheckpointTime", "gcaCTSName",
		"gcaCheckpointKind", "gcaImageSize", NULL },
	.heads = { "SEQ", "CHECKPOINT", "TIME", "CTS", "KIND", "SIZE" },
};

const struct ctl_cmd ctl_cmd_checkpoints = {
	.name = "checkpoints",
	.words = "GID", .min = 1, .max = 1,
	.missing = "which job? give its GID",
	.name_check = "GID",
	.opts = {
		{ "--limit", NULL, "N", CTL_COUNT, false,
		  "at most N (default 500); when more follow, a line on stderr gives the cursor" },
		{ "--cursor", NULL, "C", CTL_STRING, false, "the next page, from that line" },
	},
	.help = "list a job's checkpoints, newest first, a page of N at a time",
	.more =
	    "The records (gcaCheckpoint entries) of GID: sequence number, checkpoint id, time, the CTS\n"
	    "that took it, kind (external, periodic, job) and image size.\n",
	.after =
	    "example:\n"
	    "  gca-ctl checkpoints job-7 --limit 10\n"
	    "  gca-ctl --json checkpoints job-7 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])'\n",
	.list = &checkpoints_list,
};
