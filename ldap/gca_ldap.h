/*
 * ldap/: the Information Service as the GCS sees it (docs/ARCHITECTURE.md, "The directory").
 *
 * libldap blocks (connects, binds, reconnects, and its socket after connecting), so every directory
 * operation runs on ONE directory thread fed by a queue; results come back to the libevent loop
 * through an eventfd, and callbacks always run on the loop thread. The loop never blocks on the
 * directory: with slapd stopped, operations fail with DIR_DOWN after the operation timeout.
 * Checkpoint records queued one after another are written as a batch (at most batch_max): one
 * search answers those already recorded, one compare-and-swap per job reserves their sequence
 * numbers, then each record is its own add (its own mdb commit). RFC 5805 transactions are off by
 * default (slapd 2.5.13 crashes under them); with dir_config's transactions on, a batch's adds go
 * in one transaction, and if it aborts each record is added alone with the number it reserved.
 */
#ifndef GCA_LDAP_H
#define GCA_LDAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct dir;

enum dir_status {
	DIR_OK = 0,
	DIR_NOT_FOUND,		/* no such entry */
	DIR_EXISTS,		/* already exists */
	DIR_DOWN,		/* directory unavailable (down, frozen, unreachable) */
	DIR_SCHEMA,		/* rejected by the schema */
	DIR_CAS_LOST,		/* a compare-and-swap lost: someone else changed the value */
	DIR_DENIED,		/* the directory refused our identity */
	DIR_MOVED,		/* a record from a CTS the job is no longer bound to */
	DIR_ERROR,		/* anything else; the message says what */
};
const char *dir_status_name(enum dir_status s);

/* An entry: a DN and attribute -> values, as libldap returns it. */
struct dir_attr {
	char	 *name;
	char	**vals;
	size_t	  nvals;
};
struct dir_entry {
	char		*dn;
	struct dir_attr	*attrs;
	size_t		 nattrs;
};
struct dir_entry *dir_entry_new(const char *dn);
void        dir_entry_add(struct dir_entry *e, const char *attr, const char *value);
void        dir_entry_set(struct dir_entry *e, const char *attr, const char *value);	/* the one */
void        dir_entry_addf(struct dir_entry *e, const char *attr, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
/* attr with no value yet: replacing with e deletes every value the attribute had (an add leaves
 * it out). A builder owns an attribute by naming it, present or not (dir_upsert). */
void        dir_entry_own(struct dir_entry *e, const char *attr);
const struct dir_attr *dir_entry_attr(const struct dir_entry *e, const char *attr);
const char *dir_entry_get(const struct dir_entry *e, const char *attr);	/* first value or NULL */
void        dir_entry_clear(struct dir_entry *e);		/* frees what it holds */
void        dir_entry_free(struct dir_entry *e);

/* Names from outside are escaped, never pasted (dir_escape.c). */
int dir_filter_escape(const char *value, char *out, size_t outlen);	/* RFC 4515 */
int dir_rdn_escape(const char *value, char *out, size_t outlen);	/* RFC 4514 */
int dir_dn_service(const struct dir *d, const char *name, char *out, size_t outlen);
int dir_dn_class(const struct dir *d, const char *name, char *out, size_t outlen);
int dir_dn_cts(const struct dir *d, const char *name, char *out, size_t outlen);
int dir_dn_job(const struct dir *d, const char *gid, char *out, size_t outlen);
int dir_dn_checkpoint(const struct dir *d, const char *gid, const char *id, char *out,
	size_t outlen);
const char *dir_base(const struct dir *d);

/* What every callback gets. entries: a search's results; seq: a checkpoint's sequence number. */
struct dir_result {
	enum dir_status	  status;
	char		  msg[256];
	struct dir_entry *entries;
	size_t		  nentries;
	uint64_t	  seq;
	/* The view written after the operation (the *_view functions): DIR_OK when there was none
	 * or it was written; else why not (the operation's own status stays). */
	enum dir_status	  view_status;
	char		  view_msg[256];
};
typedef void (*dir_cb)(const struct dir_result *r, void *arg);

struct dir_config {
	char	*uri;
	char	*bind_dn;
	char	*password;
	char	*base;
	/* TLS to the directory (docs/DEPLOYMENT.md, "TLS to the directory"): ca checks the
	 * server's certificate; starttls upgrades an ldap:// uri (ldaps:// is TLS from the start);
	 * cert and key, when given, are the client certificate and the bind is SASL EXTERNAL
	 * (slapd maps the certificate to binddn), else a simple bind with password. */
	char	*ca, *cert, *key;
	bool	 starttls;
	int	 op_timeout_ms;		/* an operation older than this fails with DIR_DOWN (10 s) */
	int	 batch_max;		/* records per batch (256) */
	bool	 transactions;		/* a batch's adds in one RFC 5805 transaction (off) */
};
/* The file gca-site writes for the GCS: "uri", "binddn", "password", "base" lines, and the
 * optional "ca", "cert", "key", "starttls yes|no" (password may go when cert and key are given). */
int  dir_config_load(struct dir_config *c, const char *path, char *err, size_t errlen);
int  dir_config_copy(struct dir_config *dst, const struct dir_config *src);
void dir_config_free(struct dir_config *c);

/* Starts the directory thread; connecting happens there (a down directory is not an error here). */
struct dir *dir_open(struct event_base *base, const struct dir_config *c, char *err, size_t errlen);
void        dir_close(struct dir *d);		/* pending callbacks are dropped */
/* For gcs/metrics.c (gca_gcs_directory_queue_depth, gca_gcs_directory_up): read from the loop
 * without a round trip through the directory thread. */
size_t      dir_queued(struct dir *d);		/* operations not yet answered */
bool        dir_connected(struct dir *d);	/* the directory thread's link is up */

/* Generic operations. dir_add takes the entry. scope: 0 base, 1 one level, 2 subtree. */
void dir_search(struct dir *d, const char *base, int scope, const char *filter, int limit,
	dir_cb cb, void *arg);
void dir_add(struct dir *d, struct dir_entry *e, dir_cb cb, void *arg);
/* Add, or replace every attribute of e (those with no value are deleted) but objectClass. */
void dir_upsert(struct dir *d, struct dir_entry *e, dir_cb cb, void *arg);

struct dir_cts;
/*
 * A view that follows a write (gcs/glue.c: the GLUE 2.0 entry of a GCS or a CTS). It lives in
 * another suffix (another slapd database), and one LDAP modify changes one entry, so it cannot be
 * the same modify: it is written right after the operation succeeded, in the same directory-thread
 * operation, so no other write of this GCS comes between them, and never when the operation
 * failed (a lost compare-and-swap changes neither). A view with attributes is added or replaced
 * (dir_upsert); one with none is deleted (gone already is fine). The *_view functions take it.
 */
void dir_service_publish_view(struct dir *d, const char *name, const char *endpoint,
	const char *status, struct dir_entry *view, dir_cb cb, void *arg);
void dir_cts_publish_view(struct dir *d, const struct dir_cts *c, struct dir_entry *view,
	dir_cb cb, void *arg);
void dir_cts_status_view(struct dir *d, const char *name, const char *status,
	struct dir_entry *view, dir_cb cb, void *arg);
void dir_cts_status_if_view(struct dir *d, const char *name, const char *status, const char *old,
	const char *gcs, struct dir_entry *view, dir_cb cb, void *arg);

/* The paper's records (dir_cts.c, dir_job.c, dir_checkpoint.c; records written by dir_record.c). */
struct dir_cts {
	const char  *name, *endpoint, *exec_manager, *core_service;
	bool	     external, self_checkpoint, migrate, any_image;
	const char *const *classes;	size_t nclasses;
	const char *const *properties; size_t nproperties;	/* "key=value" */
	const char  *exec_wrapper, *recovery_wrapper;
	const char  *exec_params, *recovery_params, *wrapper_params;
	const char  *status;
	const char  *gcs;	/* the GCS it registered at: gcaProperty gcs=<name> */
};
struct dir_checkpoint {
	const char  *id, *gid, *cts, *core_service, *image_name, *exec_manager, *parent, *sha256,
		    *kind;
	uint64_t     time_ms, size;
	const char *const *properties; size_t nproperties;
};
/* A GCS in ou=services: its endpoint and status ("ok" at start, "stopped" at a clean stop). */
void dir_service_publish(struct dir *d, const char *name, const char *endpoint, const char *status,
    dir_cb cb, void *arg);
void dir_class_publish(struct dir *d, const char *name, const char *description,
	const char *const *properties, size_t nproperties, dir_cb cb, void *arg);
void dir_cts_publish(struct dir *d, const struct dir_cts *c, dir_cb cb, void *arg);
void dir_cts_status(struct dir *d, const char *name, const char *status, dir_cb cb, void *arg);
/* The same, only while the entry's status is old (NULL: any) and, with gcs, while it names that
 * GCS (gcaProperty gcs=<gcs>); else DIR_CAS_LOST. */
void dir_cts_status_if(struct dir *d, const char *name, const char *status, const char *old,
	const char *gcs, dir_cb cb, void *arg);
/* Binds gid to cts. expect_cts NULL: create the job (DIR_EXISTS if it exists); else move it from
 * expect_cts to cts by compare-and-swap (DIR_CAS_LOST if another won); a moved job's gcaProperty
 * is "from=<expect_cts>". */
void dir_job_bind(struct dir *d, const char *gid, const char *cts, const char *owner,
	const char *local_id, const char *expect_cts, dir_cb cb, void *arg);
/* The job's state; with local_id, only while the job entry still names that process (else
 * DIR_CAS_LOST): a late "finished" never ends a binding made since. */
void dir_job_state(struct dir *d, const char *gid, const char *local_id, const char *state,
	int exit_status, dir_cb cb, void *arg);
void dir_job_get(struct dir *d, const char *gid, dir_cb cb, void *arg);
/* The job entry's gcaProperty "interval=..." (--checkpoint-every auto) replaced by value, while
 * the job is bound to cts (asserted in the same modify). */
void dir_job_interval(struct dir *d, const char *gid, const char *cts, const char *value,
	dir_cb cb, void *arg);
/* Notes on the job entry that cts stopped its old copy local_id (one live copy): the value
 * gcaProperty fenced=<cts>/<local_id> added; DIR_CAS_LOST when it is there already. */
void dir_job_fenced(struct dir *d, const char *gid, const char *cts, const char *local_id,
	dir_cb cb, void *arg);
/* Assigns the job's next sequence number in the directory and adds the record; idempotent by id
 * (a resent record answers DIR_OK with the number it already has). r->seq holds the number. */
void dir_checkpoint_log(struct dir *d, const struct dir_checkpoint *c, dir_cb cb, void *arg);
/* A job's checkpoints newest first, at most limit (0: all), only those with a sequence number below
 * before (0: no bound): the next page starts below the last number of the previous one. */
/* The longest GID the directory stores, in bytes, when it has no LDAP special characters (each
 * of those counts 2.5: see dir_dn_job). */
#define DIR_GID_MAX 220
void dir_checkpoints(struct dir *d, const char *gid, uint64_t before, int limit, dir_cb cb,
	void *arg);
void dir_checkpoint_get(struct dir *d, const char *gid, const char *id, dir_cb cb, void *arg);
/* gcaLocation += cts (removed false) or -= cts; expired also sets gcaStatus: expired, in the same
 * modify. Removing a value that is not there, or adding one that is, answers DIR_CAS_LOST. */
void dir_checkpoint_location(struct dir *d, const char *gid, const char *id, const char *cts,
	bool removed, bool expired, dir_cb cb, void *arg);


/*
 * The change feed (dir_feed.c): RFC 4533 syncrepl in refreshAndPersist mode from slapd's syncprov,
 * on a thread and connection of its own. The GCS follows it to keep its caches true and to hear
 * of changes made through another GCS. Every entry under base matching filter is first delivered
 * as DIR_CHANGE_PRESENT, then DIR_CHANGE_REFRESHED once, then changes as they happen. After a
 * lost connection the feed reconnects by itself (with backoff) and starts again with the refresh.
 */
enum dir_change {
	DIR_CHANGE_PRESENT,	/* part of the initial content */
	DIR_CHANGE_REFRESHED,	/* the initial content is complete (entry is NULL) */
	DIR_CHANGE_ADD,
	DIR_CHANGE_MODIFY,
	DIR_CHANGE_DELETE,	/* only the DN is known */
	DIR_CHANGE_LOST,	/* the feed lost its connection (entry is NULL); a refresh follows */
};
typedef void (*dir_feed_cb)(enum dir_change what, const struct dir_entry *e, void *arg);
struct dir_feed;
struct dir_feed *dir_feed_open(struct event_base *base, const struct dir_config *c,
	const char *search_base, const char *filter, dir_feed_cb cb, void *arg, char *err,
	size_t errlen);
void dir_feed_close(struct dir_feed *f);

/*
 * Inside ldap/ only. An operation is a function run on the directory thread: dir.c owns the
 * handle, its queue and its thread; dir_link.c the connection; dir_do.c the blocking calls
 * (directory thread only) that dir_ops.c, dir_cts.c, dir_job.c, dir_checkpoint.c and
 * dir_record.c build the paper's operations from.
 */
struct ldap;
struct dir_op;
struct dir {
	struct event_base *base;
	struct dir_handoff *answers;	/* thread -> loop */
	char		  *suffix;
	struct dir_config  link;	/* how to connect and bind (a copy) */
	int		   op_timeout_ms, batch_max;
	bool		   transactions;

	pthread_t	   thread;
	pthread_mutex_t	   lock;
	pthread_cond_t	   cond;
	struct dir_op	  *todo, **todo_tail;	/* loop -> thread */
	atomic_size_t	   queued;
	bool		   stop;

	/* Directory thread only. */
	struct ldap	  *ld;
	uint64_t	   last_failure_ms;
	char		   down_reason[200];
	atomic_bool	   connected;
	bool		   resending;	/* dir_run_one: the operation is sent again */
};

#define DN_MAX 4096
#define DIR_GID_RULE "not a valid GID (printable; at most 220 bytes, and fewer with LDAP " \
	"special characters)"

/* dir_link.c. One connected, bound libldap handle as c says (TLS, then a simple or SASL EXTERNAL
 * bind), for the directory thread and the feeds' threads: blocking. why says what failed. */
void dir_link_thread_init(void);	/* first thing in such a thread: SIGPIPE blocked */
int  dir_link_open(const struct dir_config *c, int timeout_ms, struct ldap **out, char *why,
	size_t whylen);
/* The directory thread's connection: made if need be (false: down, and not tried again within
 * 500 ms); ready also sets r to DIR_DOWN when it is not. */
bool dir_link_connect(struct dir *d);
bool dir_link_ready(struct dir *d, struct dir_result *r);
void dir_link_drop(struct dir *d, const char *why);
/* The outcome of one libldap call: sets r, and drops the connection when the server is gone. */
enum dir_status dir_link_outcome(struct dir *d, int rc, const char *what, struct dir_result *r);

/* dir_handoff.c: items handed from a directory thread to the loop (eventfd), given to fn there in
 * order. An item starts with struct dir_handoff_item. free gives items never delivered to drop. */
struct dir_handoff_item {
	struct dir_handoff_item	*next;
};
typedef void (*dir_handoff_fn)(struct dir_handoff_item *it, void *arg);
struct dir_handoff;
struct dir_handoff *dir_handoff_new(struct event_base *base, const char *what, dir_handoff_fn fn,
	void *arg, char *err, size_t errlen);
void dir_handoff_push(struct dir_handoff *h, struct dir_handoff_item *it);	/* any thread */
void dir_handoff_free(struct dir_handoff *h, dir_handoff_fn drop);

/* dir_result.c */
enum dir_status dir_result_status(int rc);		/* of a libldap result code */
void            dir_result_set(struct dir_result *r, enum dir_status s, const char *fmt, ...)
			__attribute__((format(printf, 3, 4)));
void            dir_result_clear(struct dir_result *r);	/* frees the entries; all zero */

/* What the queue (dir.c) runs: it knows no kind of operation, only these callbacks, so that the
 * files of operations call the queue and never the other way. */
typedef void (*dir_op_fn)(struct dir *d, struct dir_op *op);
typedef void (*dir_batch_fn)(struct dir *d, struct dir_op **ops, size_t n);
struct dir_op {
	struct dir_handoff_item answered;	/* first: dir.c hands an answer back through it */
	dir_op_fn	  fn;		/* runs the operation; NULL when batch is set */
	/* Instead of fn: written together with the queued operations next to it that have the
	 * same batch, up to batch_max at once (checkpoint records: dir_record_batch). */
	dir_batch_fn	  batch;
	dir_op_fn	  after;	/* run after fn succeeded (dir_ops_view for view), or NULL */
	dir_cb		  cb;
	void		 *arg;
	struct dir_entry *entry;	/* what to add / replace / write with, or the record */
	struct dir_entry *view;		/* written after a success (dir_ops_view), or NULL */
	/* What each kind of operation carries besides entry; its fn reads its own member. The
	 * strings are the operation's copies (dir_op_strdup), freed with it. */
	union {
		struct { const char *base, *filter; int scope, limit; } search;
		struct { const char *why; } fail;		/* refused before it was sent */
		struct { const char *old_status, *gcs; } cts_status;	/* gcs NULL: any GCS */
		struct { const char *expected_cts; } bind;	/* NULL: a new job */
		struct { const char *local_id; } job_state;	/* NULL: whatever process */
		struct { const char *dn, *value; } fenced;
		struct { const char *dn, *cts, *value; } interval;
		struct { const char *dn, *cts; bool removed; } location;
		struct { const char *dn, *filter; int limit; } checkpoints;
	} u;
	char		 *copies[3];	/* what u's strings point at */
	size_t		  ncopies;
	uint64_t	  queued_ms;
	struct dir_result res;
	struct dir_op	 *next;
};
struct dir_entry *dir_entry_from_ldap(void *ld, void *msg);	/* LDAP *, LDAPMessage * */
/* dir.c: the queue. */
struct dir_op *dir_op_new(dir_op_fn fn, dir_cb cb, void *arg);
/* s (NULL: none) kept by op and freed with it; a copy of s. Both return what op now holds. */
const char    *dir_op_keep(struct dir_op *op, char *s);
const char    *dir_op_strdup(struct dir_op *op, const char *s);
void           dir_op_submit(struct dir *d, struct dir_op *op);
/* dir_do.c: blocking, on the directory thread. txn is NULL or one from dir_do_txn_begin. */
enum dir_status dir_do_search(struct dir *d, const char *base, int scope, const char *filter,
	int limit, struct dir_result *r);
enum dir_status dir_do_add(struct dir *d, const struct dir_entry *e, void *txn, struct dir_result *r);
enum dir_status dir_do_replace(struct dir *d, const struct dir_entry *e, struct dir_result *r);
/* Sent again after the connection dropped (d->resending, set by dir_run_one), a swap that finds
 * its old value gone but the entry exactly as it makes it (the first sending committed) is DIR_OK. */
enum dir_status dir_do_cas(struct dir *d, const char *dn, const char *attr, const char *old,
	const char *new_, const struct dir_entry *also, void *txn, struct dir_result *r);
/* One atomic modify: del's values deleted (each must be there, else DIR_CAS_LOST), add's added,
 * repl's replaced; any may be NULL. */
enum dir_status dir_do_modify(struct dir *d, const char *dn, const struct dir_entry *del,
	const struct dir_entry *add, const struct dir_entry *repl, struct dir_result *r);
enum dir_status dir_do_delete(struct dir *d, const char *dn, struct dir_result *r);
void           *dir_do_txn_begin(struct dir *d, struct dir_result *r);
enum dir_status dir_do_txn_end(struct dir *d, void *txn, bool commit, struct dir_result *r);
/* dir_ops.c: op->view, after op succeeded (op->after, run by dir.c on the directory thread). */
void dir_ops_view(struct dir *d, struct dir_op *op);
/* op->view = view (NULL: none), and dir_ops_view as its after: the one way an op gets a view. */
void dir_ops_set_view(struct dir_op *op, struct dir_entry *view);
/* An operation refused before it is sent (name makes no DN): answered DIR_SCHEMA from the
 * thread like any other, never from inside the caller. */
void dir_ops_reject(struct dir *d, const char *why, const char *name, dir_cb cb, void *arg);
void dir_ops_replace(struct dir *d, struct dir_op *op);		/* op->entry's attributes */
/* Add e, or replace its attributes but objectClass when it exists; then view (may be NULL). */
void dir_ops_upsert_view(struct dir *d, struct dir_entry *e, struct dir_entry *view, dir_cb cb,
	void *arg);
/* dir_record.c: write a batch of checkpoint records (fn == NULL ops), answering each. */
void dir_record_batch(struct dir *d, struct dir_op **ops, size_t n);

#endif
