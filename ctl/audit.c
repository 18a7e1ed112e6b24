/* gca-ctl audit [GID]: the site's consistency checked by the GCS against the directory and every
 * CTS (gcs/audit.c): records whose image is missing or fails its checks at every holder, images
 * no record names, jobs bound to a CTS that does not hold them, sequence numbers repeated or
 * missing. Admin only. Exit status: 0 clean, 1 something is wrong, 2 the audit could not be made
 * or is incomplete (the GCS unreachable or refusing, a CTS not checked: named), whatever it found.
 * A fault campaign reads --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

#define AUDIT_EXIT_INCOMPLETE	2

/* A finding's five fields, "kind\tgid\tcheckpoint\tcts\tdetail", split into f (a copy in buf). */
static void
audit_split(const char *line, char *buf, size_t len, const char *f[5])
{
	char *p = buf;

	snprintf(buf, len, "%s", line);
	for (int i = 0; i < 5; i++)
		f[i] = p != NULL ? strsep(&p, i < 4 ? "\t" : "") : "";
}

static uint64_t
audit_total(const struct msg_audit_ok *ok)
{
	uint64_t n = 0;

	for (size_t i = 0; i < ok->counts.n; i++) {
		const char *sp = strrchr(ok->counts.v[i], ' ');
		n += sp != NULL ? strtoull(sp + 1, NULL, 10) : 0;
	}
	return n;
}

static void
audit_json(const struct msg_audit_ok *ok, uint64_t total)
{
	struct ctl_json j, o;
	char buf[8192];
	const char *f[5];

	ctl_json_begin(&j, stdout);
	ctl_json_bool(&j, "clean", total == 0);
	ctl_json_bool(&j, "complete", ok->unchecked.n == 0);
	ctl_json_num(&j, "records", ok->records);
	ctl_json_num(&j, "jobs", ok->jobs);
	ctl_json_num(&j, "images", ok->images);
	ctl_json_num(&j, "cts", ok->cts);
	ctl_json_num(&j, "findings_total", total);
	ctl_json_key(&j, "counts");
	ctl_json_begin(&o, stdout);
	for (size_t i = 0; i < ok->counts.n; i++) {
		char *sp;

		snprintf(buf, sizeof buf, "%s", ok->counts.v[i]);
		if ((sp = strrchr(buf, ' ')) == NULL)
			continue;
		*sp = '\0';
		ctl_json_num(&o, buf, strtoull(sp + 1, NULL, 10));
	}
	fputs(o.n ? "}" : "{}", stdout);
	ctl_json_key(&j, "findings");
	fputc('[', stdout);
	for (size_t i = 0; i < ok->findings.n; i++) {
		audit_split(ok->findings.v[i], buf, sizeof buf, f);
		fputs(i ? ",\n  " : "\n  ", stdout);
		ctl_json_begin(&o, stdout);
		ctl_json_str(&o, "kind", f[0]);
		ctl_json_str(&o, "gid", strcmp(f[1], "-") ? f[1] : "");
		ctl_json_str(&o, "checkpoint", strcmp(f[2], "-") ? f[2] : "");
		ctl_json_str(&o, "cts", strcmp(f[3], "-") ? f[3] : "");
		ctl_json_str(&o, "detail", f[4]);
		fputc('}', stdout);
	}
	fputs(ok->findings.n ? "\n]" : "]", stdout);
	ctl_json_bool(&j, "cut", ok->cut);
	ctl_json_list(&j, "unchecked", &ok->unchecked);
	ctl_json_end(&j);
}

static void
audit_table(const struct msg_audit_ok *ok, uint64_t total)
{
	static const char *const heads[] = { "KIND", "GID", "CHECKPOINT", "CTS", "DETAIL" };
	size_t width[5];
	char buf[8192];
	const char *f[5];

	for (int k = 0; k < 5; k++)
		width[k] = strlen(heads[k]);
	for (size_t i = 0; i < ok->findings.n; i++) {
		audit_split(ok->findings.v[i], buf, sizeof buf, f);
		for (int k = 0; k < 4; k++) {
			if (strlen(f[k]) > width[k])
				width[k] = strlen(f[k]) > 40 ? 40 : strlen(f[k]);
		}
	}
	if (ok->findings.n > 0) {
		printf("%-*s  %-*s  %-*s  %-*s  %s\n", (int)width[0], heads[0], (int)width[1],
		    heads[1], (int)width[2], heads[2], (int)width[3], heads[3], heads[4]);
		for (size_t i = 0; i < ok->findings.n; i++) {
			audit_split(ok->findings.v[i], buf, sizeof buf, f);
			printf("%-*.*s  %-*.*s  %-*.*s  %-*.*s  %s\n", (int)width[0], (int)width[0],
			    f[0], (int)width[1], (int)width[1], f[1], (int)width[2], (int)width[2],
			    f[2], (int)width[3], (int)width[3], f[3], f[4]);
		}
		if (ok->cut)
			printf("(the list is cut: the counts below are whole; audit one GID at a "
			    "time to see every finding)\n");
		printf("\n");
	}
	printf("checked: %llu records, %llu jobs, %llu images at %llu CTSes\n",
	    (unsigned long long)ok->records, (unsigned long long)ok->jobs,
	    (unsigned long long)ok->images, (unsigned long long)ok->cts);
	printf("found:  ");
	for (size_t i = 0; i < ok->counts.n; i++)
		printf(" %s%s", ok->counts.v[i], i + 1 < ok->counts.n ? "," : "\n");
	for (size_t i = 0; i < ok->unchecked.n; i++)
		printf("not checked: %s\n", ok->unchecked.v[i]);
	if (ok->unchecked.n > 0)
		printf("incomplete: %zu CTS%s not checked; what only %s could tell was not judged\n",
		    ok->unchecked.n, ok->unchecked.n > 1 ? "es" : "", ok->unchecked.n > 1 ? "they" :
		    "it");
	else if (total == 0)
		printf("clean: nothing wrong\n");
	else
		printf("%llu finding%s\n", (unsigned long long)total, total > 1 ? "s" : "");
}

static int
audit_run(struct ctl *c, const struct ctl_args *a)
{
	struct msg_audit b = { .gid = a->nwords > 0 ? a->words[0] : NULL };
	struct msg_audit_ok *ok;
	uint64_t total;
	int rc;

	if (ctl_call(c, "audit", "audit", &b, (void **)&ok) != 0)
		return AUDIT_EXIT_INCOMPLETE;
	total = audit_total(ok);
	if (c->json)
		audit_json(ok, total);
	else
		audit_table(ok, total);
	rc = ok->unchecked.n > 0 ? AUDIT_EXIT_INCOMPLETE : total > 0 ? CTL_FAILED : CTL_OK;
	proto_body_free(proto_type_find("audit")->reply, ok);
	return rc;
}

const struct ctl_cmd ctl_cmd_audit = {
	.name = "audit",
	.words = "[GID]", .min = 0, .max = 1,
	.name_check = "GID",
	.opts = {
		{ "GID", NULL, NULL, CTL_WORDS, false, "only this job's records, images and jobs" },
	},
	.help = "check the site: records against images at every CTS, jobs, sequence numbers (admin)",
	.more =
	    "The GCS reads every record and job entry from the directory and asks each CTS that is\n"
	    "not retired to check the copies the records place there, as a restore would (the\n"
	    "manifest's sha256 is the record's, its signature the taker's, every file matches), and\n"
	    "to name the images and jobs it holds. Each finding is one of:\n"
	    "  image_missing     a record (not expired) with no copy at any holder\n"
	    "  image_bad         a record whose copies all fail their checks\n"
	    "  copy_bad          one holder's copy missing or bad, another holder's good\n"
	    "  image_unrecorded  an image a CTS holds that no record names (or not at that CTS)\n"
	    "  job_unknown       a job bound to a CTS that does not hold it\n"
	    "  seq_repeat        one sequence number on two records of a job, or the job's\n"
	    "                    gcaLastSequence below a recorded number\n"
	    "  seq_gap           numbers of a job with no record (one reserved for a record that\n"
	    "                    then failed leaves one: look at that time's logs)\n"
	    "Checkpoints being written, or whose records are on their way, are not findings; on a\n"
	    "busy site run it again before acting on an image_unrecorded.\n",
	.after =
	    "prints one row per finding, then the counts of each kind; --json prints one object\n"
	    "(clean, complete, counts, findings, unchecked).\n"
	    "exit status: 0 clean, 1 findings, 2 the audit could not be made or a CTS was not checked\n"
	    "(down, no answer within the GCS's request_timeout: named under \"not checked\").\n"
	    "example:\n"
	    "  . DIR/admin.env; gca-ctl audit; gca-ctl --json audit job-7\n",
	.run = audit_run,
};
