/*
 * Checkpoint records written in batches on the directory thread: each job's sequence numbers
 * reserved by compare-and-swap of gcaLastSequence, while the job is bound to the logging CTS (so
 * two GCS instances over one directory never hand out a number twice), then the adds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

/* The job entry's DN is the record's parent: everything after the first unescaped comma. */
static const char *
dir_record_parent(const char *dn)
{
	for (const char *p = dn; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == ',')
			return p + 1;
	}
	return dn;
}

/* The job's last sequence number as the directory has it now, and the CTS it is bound to (its
 * gcaCTSName, into holder); -1 with r set if none. */
static int64_t
dir_record_last_seq(struct dir *d, const char *jobdn, char *holder, size_t holderlen,
    struct dir_result *r)
{
	struct dir_result q = { 0 };
	const char *v, *h;
	int64_t seq = -1;

	if (dir_do_search(d, jobdn, 0, "(objectClass=gcaJob)", 1, &q) == DIR_OK && q.nentries == 1 &&
	    (v = dir_entry_get(&q.entries[0], "gcaLastSequence")) != NULL) {
		seq = strtoll(v, NULL, 10);
		h = dir_entry_get(&q.entries[0], "gcaCTSName");
		snprintf(holder, holderlen, "%s", h ? h : "");
	} else if (q.status == DIR_OK || q.status == DIR_NOT_FOUND)
		dir_result_set(r, DIR_NOT_FOUND, "unknown GID: no job entry %s", jobdn);
	else
		*r = q, q.entries = NULL, q.nentries = 0;
	dir_result_clear(&q);
	return seq;
}

/* A record from a CTS the job is no longer bound to (it lost the GID to a recovery elsewhere) is
 * refused: its checkpoints would take numbers and "latest" from the job's new home. */
static bool
dir_record_bound_elsewhere(const struct dir_entry *rec, const char *holder, struct dir_result *r)
{
	const char *cts = dir_entry_get(rec, "gcaCTSName");

	if (cts != NULL && strcasecmp(holder, cts) == 0)
		return false;
	dir_result_set(r, DIR_MOVED, "GID %s is bound to CTS %s, not %s: only the CTS a job is "
	    "bound to records its checkpoints", dir_entry_get(rec, "gcaGID"),
	    holder[0] ? holder : "(none)", cts ? cts : "(none)");
	return true;
}

/* Another writer moved the number: wait a little, longer each time, so writers fall out of step. */
static void
dir_record_backoff(int attempt)
{
	unsigned r;

	if (getrandom(&r, sizeof r, 0) != sizeof r)
		r = (unsigned)attempt;
	usleep(200 + r % (500u * (unsigned)(attempt < 8 ? attempt + 1 : 8)));
}

/* gcaLastSequence old -> new in one modify that also asserts the job is still bound to holder
 * (its gcaCTSName deleted and added back): a move between the read and the swap, even one that
 * came back, makes it fail (DIR_CAS_LOST) like a number that moved. */
static enum dir_status
dir_record_swap_seq(struct dir *d, const char *jobdn, const char *old, const char *new_,
    const char *holder, struct dir_result *r)
{
	struct dir_entry del = { 0 }, add = { 0 };
	enum dir_status s;

	dir_entry_add(&del, "gcaLastSequence", old);
	dir_entry_add(&del, "gcaCTSName", holder);
	dir_entry_add(&add, "gcaLastSequence", new_);
	dir_entry_add(&add, "gcaCTSName", holder);
	s = dir_do_modify(d, jobdn, &del, &add, NULL, r);
	dir_entry_clear(&del);
	dir_entry_clear(&add);
	return s;
}

/*
 * Reserves k numbers of a job for records from the CTS of rec: one compare-and-swap of
 * gcaLastSequence from last to last + k that holds only while the job is bound to that CTS
 * (dir_record_swap_seq). Returns the first reserved number, or 0 with r set (DIR_MOVED: bound to
 * another CTS). A number reserved for a record that is then not written stays unused (numbers
 * never repeat, gaps are allowed), unless slapd refused it for good (dir_record_give_back).
 */
static uint64_t
dir_record_reserve(struct dir *d, const char *jobdn, uint64_t k, const struct dir_entry *rec,
    struct dir_result *r)
{
	char holder[256];

	for (int attempt = 0; attempt < 64; attempt++) {
		char old[24], new_[24];
		int64_t last;

		if ((last = dir_record_last_seq(d, jobdn, holder, sizeof holder, r)) < 0 ||
		    dir_record_bound_elsewhere(rec, holder, r))
			return 0;
		snprintf(old, sizeof old, "%" PRId64, last);
		snprintf(new_, sizeof new_, "%" PRIu64, (uint64_t)last + k);
		memset(r, 0, sizeof *r);
		if (dir_record_swap_seq(d, jobdn, old, new_, holder, r) == DIR_OK)
			return (uint64_t)last + 1;
		if (r->status != DIR_CAS_LOST)
			return 0;
		dir_record_backoff(attempt);
	}
	dir_result_set(r, DIR_CAS_LOST, "gave up: the sequence number of %s kept moving", jobdn);
	return 0;
}

static void
dir_record_set_seq(struct dir_entry *e, uint64_t seq)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%" PRIu64, seq);
	dir_entry_set(e, "gcaSequenceNumber", buf);
}

/* Records of this batch already in the directory (resent from a CTS's outbox) are answered with
 * the number they have, found with one search. Returns how many are left to write; a down
 * directory answers them all. */
static size_t
dir_record_answer_resent(struct dir *d, struct dir_op **ops, size_t n, bool *todo)
{
	char *filter = xmalloc(64 + n * (ID_LEN + 20));
	struct dir_result q = { 0 };
	size_t left = n;

	strcpy(filter, "(&(objectClass=gcaCheckpoint)(|");
	for (size_t i = 0; i < n; i++) {
		todo[i] = true;
		strcat(filter, "(gcaCheckpointId=");
		strcat(filter, dir_entry_get(ops[i]->entry, "gcaCheckpointId"));	/* id_valid */
		strcat(filter, ")");
	}
	strcat(filter, "))");
	if (dir_do_search(d, dir_base(d), 2, filter, 0, &q) != DIR_OK) {
		for (size_t i = 0; i < n; i++) {
			ops[i]->res.status = q.status;
			snprintf(ops[i]->res.msg, sizeof ops[i]->res.msg, "%s", q.msg);
			todo[i] = false;
		}
		left = 0;
	}
	for (size_t e = 0; e < q.nentries; e++) {
		const char *id = dir_entry_get(&q.entries[e], "gcaCheckpointId");
		const char *seq = dir_entry_get(&q.entries[e], "gcaSequenceNumber");

		for (size_t i = 0; id != NULL && i < n; i++) {
			if (!todo[i] || strcasecmp(id, dir_entry_get(ops[i]->entry, "gcaCheckpointId")) != 0)
				continue;
			todo[i] = false;
			left--;
			ops[i]->res.status = DIR_OK;
			ops[i]->res.seq = seq ? strtoull(seq, NULL, 10) : 0;
			snprintf(ops[i]->res.msg, sizeof ops[i]->res.msg, "already recorded");
		}
	}
	dir_result_clear(&q);
	free(filter);
	return left;
}

/*
 * The number of a record the directory refused for good (an error slapd answered: a full disk,
 * the schema), given back while it is still the job's last: a record a CTS resends from its
 * outbox every second while slapd's disk is full no longer uses up a number each time (the fault
 * campaign saw 1,889 so, docs/FAULTS.md). Never after a lost connection or a timeout, where the
 * add may have been made; and the swap asserts the number is still the last, so one given out
 * since is never taken back.
 */
static void
dir_record_give_back(struct dir *d, const struct dir_op *op)
{
	const char *v = dir_entry_get(op->entry, "gcaSequenceNumber");
	const char *holder = dir_entry_get(op->entry, "gcaCTSName");
	struct dir_result r = { 0 };
	char old[24], new_[24];
	uint64_t seq;

	if (op->res.status != DIR_ERROR && op->res.status != DIR_SCHEMA &&
	    op->res.status != DIR_DENIED)
		return;
	if (v == NULL || holder == NULL || (seq = strtoull(v, NULL, 10)) == 0)
		return;
	snprintf(old, sizeof old, "%" PRIu64, seq);
	snprintf(new_, sizeof new_, "%" PRIu64, seq - 1);
	if (dir_record_swap_seq(d, dir_record_parent(op->entry->dn), old, new_, holder, &r) == DIR_OK)
		log_debug("record %s: its number %s given back (%s)",
		    dir_entry_get(op->entry, "gcaCheckpointId"), old, dir_status_name(op->res.status));
	dir_result_clear(&r);
}

/* One record alone, after its batch failed: an add; if it exists, the number it has. */
static void
dir_record_single(struct dir *d, struct dir_op *op)
{
	uint64_t seq = op->res.seq;

	memset(&op->res, 0, sizeof op->res);
	if (seq == 0) {
		if ((seq = dir_record_reserve(d, dir_record_parent(op->entry->dn), 1, op->entry,
		    &op->res)) == 0)
			return;
		dir_record_set_seq(op->entry, seq);
	}
	if (dir_do_add(d, op->entry, NULL, &op->res) == DIR_OK) {
		op->res.seq = seq;
		return;
	}
	if (op->res.status == DIR_EXISTS) {
		struct dir_result q = { 0 };
		const char *v;

		if (dir_do_search(d, op->entry->dn, 0, "(objectClass=gcaCheckpoint)", 1, &q) == DIR_OK &&
		    q.nentries == 1 && (v = dir_entry_get(&q.entries[0], "gcaSequenceNumber")) != NULL) {
			memset(&op->res, 0, sizeof op->res);
			op->res.seq = strtoull(v, NULL, 10);
			snprintf(op->res.msg, sizeof op->res.msg, "already recorded");
		}
		dir_result_clear(&q);
	}
}

/* Reserve the numbers of every record of one job from one CTS in this batch, in one
 * compare-and-swap. */
static bool
dir_record_same_job(struct dir_op *a, struct dir_op *b)
{
	return strcmp(dir_record_parent(a->entry->dn), dir_record_parent(b->entry->dn)) == 0 &&
	    strcasecmp(dir_entry_get(a->entry, "gcaCTSName"), dir_entry_get(b->entry,
	    "gcaCTSName")) == 0;
}

static void
dir_record_number_job(struct dir *d, struct dir_op **ops, size_t n, bool *todo, size_t i,
    size_t *left)
{
	const char *jobdn = dir_record_parent(ops[i]->entry->dn);
	struct dir_result r = { 0 };
	uint64_t k = 0, first;

	for (size_t j = i; j < n; j++)
		if (todo[j] && dir_record_same_job(ops[i], ops[j]))
			k++;
	first = dir_record_reserve(d, jobdn, k, ops[i]->entry, &r);
	for (size_t j = i; j < n; j++) {
		if (!todo[j] || !dir_record_same_job(ops[i], ops[j]))
			continue;
		if (first == 0) {
			ops[j]->res = r;
			todo[j] = false;
			(*left)--;
		} else {
			ops[j]->res.seq = first++;
			dir_record_set_seq(ops[j]->entry, ops[j]->res.seq);
		}
	}
}

/*
 * A batch of records: resent ones are answered from the directory; each job's numbers are reserved
 * with one compare-and-swap, outside any transaction; then the adds, one by one. With
 * transactions on (dir_config), all adds go in one RFC 5805 transaction instead: one mdb commit;
 * if it aborts (a record added meanwhile by someone else), every record is added alone, keeping
 * its reserved number. Transactions are off by default: Debian 12's slapd 2.5.13 segfaults under
 * them (in do_add and syncprov, with one writing connection and a sync search open, or with
 * several writers: docs/BENCHMARKS.md, bench/slapd-txn-crash.sh), and a dead directory costs
 * more than the mdb commits they save.
 */
void
dir_record_batch(struct dir *d, struct dir_op **ops, size_t n)
{
	bool *todo = xcalloc(n, sizeof *todo);
	struct dir_result r = { 0 };
	size_t left;
	void *txn = NULL;
	bool ok = true;

	left = dir_record_answer_resent(d, ops, n, todo);
	for (size_t i = 0; i < n; i++) {
		if (todo[i] && ops[i]->res.seq == 0)
			dir_record_number_job(d, ops, n, todo, i, &left);
	}
	if (left > 1 && d->transactions && (txn = dir_do_txn_begin(d, &r)) == NULL)
		ok = false;
	for (size_t i = 0; ok && txn != NULL && i < n; i++) {
		if (todo[i] && dir_do_add(d, ops[i]->entry, txn, &r) != DIR_OK)
			ok = false;
	}
	if (txn != NULL) {
		if (ok)
			ok = dir_do_txn_end(d, txn, true, &r) == DIR_OK;
		else
			dir_do_txn_end(d, txn, false, &r);
	}
	for (size_t i = 0; i < n; i++) {
		if (!todo[i])
			continue;
		if (ok && txn != NULL)
			ops[i]->res.status = DIR_OK;
		else
			dir_record_single(d, ops[i]);
	}
	/* from the last: a job's numbers refused at the top of a batch all go back */
	for (size_t i = n; i-- > 0;) {
		if (todo[i] && ops[i]->res.status != DIR_OK)
			dir_record_give_back(d, ops[i]);
	}
	free(todo);
}
