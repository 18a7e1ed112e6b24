/*
 * cts/: gca-cts, the Checkpoint Translation Service (paper 3.3, 3.4, 5.1-5.3, 5.5). It runs jobs'
 * checkpoints through one core service (cts/core/), keeps their images, and sends every record to
 * the GCS, which writes it to the directory (docs/DESIGN.md, "One record path").
 *
 * One event loop. Slow work (copying and hashing images, running criu) happens in forked children
 * watched from the loop (child.c), so the loop always answers.
 */
#ifndef GCA_CTS_H
#define GCA_CTS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "proto/proto.h"
#include "cts/image.h"

struct event_base;
struct event;
struct cts;
struct cts_job;
struct cts_ckpt;
struct cts_orphans;
struct retention_removal;
struct metrics_http;

/* ---- a core service: one file each in cts/core/ ---- */
struct core_service {
	const char	*name;
	/* What it can do, checked against the descriptor's flags. */
	bool		 external, self_checkpoint;
	/* Can it work here? 0, or -1 with why ("criu check: ..."). */
	int		(*probe)(struct cts *c, char *why, size_t len);
	/* gcaProperty values it adds to the CTS entry and to every record (versions, kernel). */
	void		(*properties)(struct cts *c, struct proto_strlist *out);
	/* Starts ck's dump; ends with ckpt_dumped(ck, NULL) or ckpt_dumped(ck, "why"). */
	void		(*dump)(struct cts_ckpt *ck);
	/* app: the job answered app_save. */
	void		(*saved)(struct cts_ckpt *ck, bool ok, const char *error);
	/* app: the job keeps the wrapper's socket (GCA_APP_FD); criu: it must not. */
	bool		 keeps_channel;
	/* vmm: restores run as the job's user, from a verified copy restore_prepare makes */
	bool		 user_restore;
	/* criu: can a job of uid (not root) be checkpointed here? 0, or -1 with why not; NULL:
	 * every user's can */
	int		(*user_job)(struct cts *c, uid_t uid, char *why, size_t len);
	/* vmm: can this resource resume an image whose record says props (gcaProperty)? 0, or -1
	 * with why not, before anything is fetched or copied; NULL: any */
	int		(*restore_check)(struct cts *c, const struct proto_strlist *props, char *why,
			    size_t len);
};
extern const struct core_service core_app, core_criu, core_vmm;
/* criu_predump: the folder, inside a checkpoint's image folder, that holds its pre-dump; the dump
 * proper is incremental on it (criu's "parent" link in the image folder points there). */
#define CRIU_PREDUMP_DIR "predump"
const struct core_service *core_find(const char *name);
/* core/pool.c: the vmm pool of booted VMs (docs/VMM.md, "A pool of booted VMs"). pool_handed:
 * the CTS handed QEMU pid (start time start) to process caller of uid, which still runs;
 * pool_qemu_uid: the uid a bound QEMU runs as (the pool's for a pooled VM, else the job's). */
void  pool_start(struct cts *c);
void  pool_stop(struct cts *c);
void  pool_take(struct proto_req *r, void *ctx);
bool  pool_handed(pid_t pid, uint64_t start, pid_t caller, uid_t uid);
uid_t pool_qemu_uid(pid_t pid, uint64_t start, uid_t job_uid);

/* ---- a bound job (jobs.c) ---- */
struct cts_job {
	char		*gid;
	pid_t		 pid;
	uint64_t	 start;		/* /proc/PID/stat starttime: tells a reused PID apart */
	uid_t		 uid;
	gid_t		 gidn;
	char		 owner[64];	/* the user name the directory records */
	uint64_t	 every_ms;	/* periodic checkpoints, 0 none, CTS_EVERY_AUTO */
	/* interval.c: the cost of its checkpoints (a running mean, 0 none yet), the interval they
	 * are taken at, and what the mean time between failures is observed from: the GID's
	 * recoveries so far and when it first started */
	uint64_t	 delta_ms, interval_ms, since_ms;
	unsigned	 restarts;
	bool		 ended;		/* the process is gone; job_unbind not yet acknowledged */
	bool		 moved;		/* the GID is bound to another CTS now: not unbound from here */
	bool		 unbinding;
	/* read back from the job table at start: its library has not re-attached since (app) */
	bool		 reloaded;
	char		*restore_dir;	/* a copy of an image handed to a recovering job */
	/* criu_incremental, app_incremental: the job's last image (criu: its memory tracked
	 * since), and how many incremental ones followed the last full one */
	char		 incr_last[ID_LEN + 1];
	unsigned	 incr_n;
	int		 pidfd;
	struct event	*exit_ev, *timer;
	struct proto_conn *channel;	/* app: the job's socket */
	/* how it ended (ending.c): the resident wrapper that bound it as its child, which says the
	 * job's exit status with local_exit; the unbind waits a little for that word */
	pid_t		 wrapper;
	uint64_t	 wrapper_start;
	int		 wrapper_pidfd;		/* only while wrapper > 0 */
	bool		 exit_known;
	int64_t		 exit_status;
	struct event	*exit_wait_ev, *exit_wait_timer;
	struct cts_ckpt	*running, *queue;
	unsigned	 nqueued;
	struct cts	*cts;
	struct cts_job	*next;
};

/* ---- a checkpoint in progress (checkpoint.c) ---- */
struct cts_ckpt {
	struct cts		*cts;
	struct cts_job		*job;
	char			 id[ID_LEN + 1];
	const char		*kind;		/* external, periodic, job */
	char			*idem_key;
	struct proto_req	*req;		/* who waits: the GCS's do_checkpoint, a local_checkpoint */
	/* the same do_checkpoint again (its idempotency key), e.g. retried through another GCS
	 * after the first one died: answered with this checkpoint's result, never a second dump */
	struct proto_req	*again[4];
	int			 nagain;
	char			 image_dir[PATH_MAX], staging[PATH_MAX];
	uint64_t		 time_ms;
	uint64_t		 start_mono_ms, dumped_mono_ms;	/* metrics: its phases */
	struct image_result	 result;	/* of the sealed image */
	struct event		*timeout;	/* app: waiting for the job's answer */
	struct event		*dump_timer;	/* dump_timeout: the core service's work, at most */
	bool			 expired;	/* dump_timeout passed: its children were killed */
	bool			 recorded;	/* the GCS stored the record: retention applies */
	struct proto_strlist	 properties;	/* the core service's, for this record only */
	bool			 encrypted;	/* the image's files are encrypted (image_key) */
	bool			 compressed;	/* the image was compressed (compress zstd) */
	char			 parent[ID_LEN + 1];	/* an incremental image's parent, "" = full */
	char			 offered[ID_LEN + 1];	/* app: the parent offered in app_save */
	struct cts_ckpt		*next;
};

/* ---- an outbox entry, a line of STATE/outbox/log (outbox.c) ---- */
struct outbox_file {
	char		 name[ID_LEN + 6];	/* "<checkpoint id>" or "<checkpoint id>.gone" */
	uint8_t		*frame;			/* to write at the next commit, then NULL */
	size_t		 len;
	bool		 durable;		/* in the log, synced */
	int		 error;			/* errno of a write that failed, else 0 */
};

/* ---- a record waiting for the GCS's acknowledgement (outbox.c) ---- */
/* How an outbox record ended, for its completion callback (outbox_cb). */
enum outbox_outcome {
	OUTBOX_STORED,		/* the GCS stored it (seq): dropped from the outbox */
	OUTBOX_NOT_STORED,	/* not acknowledged (code, msg): kept, sent again later */
	OUTBOX_REFUSED,		/* refused for good (code moved, msg): dropped */
	OUTBOX_NOT_KEPT,	/* its file could not be written (error, an errno): dropped */
	OUTBOX_STOPPING,	/* the CTS stops: kept on disk, sent after the restart */
};
struct outbox_result {
	enum outbox_outcome	 outcome;
	uint64_t		 seq;		/* OUTBOX_STORED */
	const char		*code, *msg;	/* OUTBOX_NOT_STORED, OUTBOX_REFUSED, OUTBOX_STOPPING */
	int			 error;		/* OUTBOX_NOT_KEPT */
};
/* A record's completion callback: rec (the outbox's copy, valid during the call) of c's outbox
 * ended as r says. arg is the one given to outbox_add for the record's first outcome, NULL for
 * every later one (outbox_load). */
typedef void (*outbox_cb)(struct cts *c, const struct msg_checkpoint_log *rec,
	const struct outbox_result *r, void *arg);
struct outbox_item {
	struct msg_checkpoint_log	 rec;
	bool				 sending;
	outbox_cb			 cb;		/* who hears its next outcome */
	void				*arg;
	struct cts			*cts;
	struct outbox_file		 file;
	struct outbox_item		*next;
};

/* ---- a copy removed by retention, until the GCS heard it (outbox.c) ---- */
struct outbox_gone {
	struct msg_image_location	 loc;
	bool				 sending;
	bool				 ahead;	/* retention's child wrote STATE/outbox/<id>.gone */
	struct outbox_file		 file;
	struct cts			*cts;
	struct outbox_gone		*next;
};

struct cts {
	struct event_base	*base;
	char			*name, *listen, *endpoint, *socket, *state, *exec_manager;
	char			*gcs_endpoint;
	char			*ca_file, *cert_file, *key_file;	/* tls borrows them */
	struct proto_tls_files	 tls;
	/* The manifests' signing key, never the TLS one (docs/DESIGN.md, "Keys"): apart so that
	 * the privileged part alone can keep it once the network part is split off. */
	char			*sign_cert_file, *sign_key_file;	/* sign borrows them */
	/* cts.conf tls_signed_before: images signed with a CTS's TLS key (made before CTSes had
	 * signing keys) verify only if taken before it; 0: never (docs/DESIGN.md, "Keys") */
	uint64_t		 tls_signed_before_ms;
	struct proto_signer	 sign;
	const struct core_service *core;
	char			 unavailable[512];	/* "" when the core service works */
	struct msg_cts_register	 reg;			/* what is published (descriptor + probe) */
	struct proto_strlist	 exec_params, recovery_params;
	unsigned		 retention;
	int			 app_timeout_ms, heartbeat_ms;
	int			 dump_timeout_ms;	/* cts.conf dump_timeout */
	/* limits a peer cannot break (cts.conf idle_timeout, handshake_timeout,
	 * max_peer_connections, max_handshakes; docs/ARCHITECTURE.md, "Limits") */
	int			 idle_timeout_ms, handshake_timeout_ms;
	int			 max_peer_connections, max_handshakes;
	char			*vmm_qemu;		/* vmm: the QEMU the probe asks */
	int			 vmm_timeout_ms;	/* vmm: a whole migration, at most */
	char			*vmm_kernel, *vmm_initrd;	/* vmm: the operator's guest, or NULL */
	char			*vmm_disk;	/* vmm: the base of a job's disk, or NULL */
	char			*vmm_machine;		/* vmm: its machine type (an alias resolved) */
	unsigned		 vmm_memory_mib;	/* vmm: its memory */
	unsigned		 vmm_pool;	/* vmm: booted VMs kept for executors (core/pool.c) */
	char			*vmm_pool_user;	/* vmm: who they run as, or NULL */
	char			*vmm_pool_accel;	/* vmm: kvm, tcg, or NULL: kvm if /dev/kvm opens */
	unsigned		 max_queue;
	unsigned		 criu_incremental;	/* cts.conf: full criu dump every N, 0 = always */
	bool			 criu_predump;		/* cts.conf: criu pre-dump before each dump */
	unsigned		 app_incremental;	/* cts.conf: the same for app saves */
	/* cts.conf mtbf (0: not set), auto_min, auto_max: --checkpoint-every auto (interval.c) */
	uint64_t		 mtbf_ms, auto_min_ms, auto_max_ms;
	bool			 fence_none;		/* cts.conf fence none: a moved job is left */
	int			 fence_grace_ms;	/* cts.conf fence_grace: SIGTERM, then SIGKILL */
	struct proto_server	*server, *local;
	struct proto_client	*gcs;
	bool			 registered, registering;
	uint64_t		 beat_ok_ms;	/* the last heartbeat the GCS took (time_mono_ms) */
	uint64_t		 gcs_heard_ms;	/* the GCS's last answer of any kind to a beat or
						 * registration, or the move to it */
	bool			 beat_lost;	/* one failed since: ask about our jobs (fence.c) */
	uint64_t		 refused_until_ms;	/* a GCS refused us (retired): ask again then */
	uint64_t		 started_ms;		/* time_mono_ms at start */
	struct event		*tick;
	struct cts_job		*jobs;
	struct outbox_item	*outbox;
	struct outbox_gone	*outbox_gone;
	struct event		*outbox_commit;	/* outbox.c: the next group commit */
	outbox_cb		 outbox_done;	/* outbox.c: outcomes with no caller (outbox_load) */
	struct proto_strlist	 retain_wanted;	/* retention.c: jobs for its next run */
	bool			 retaining;	/* its child runs */
	uint64_t		 retain_last_ms;	/* when the last one started (time_mono_ms) */
	struct event		*retain_timer;	/* the next one, when it must wait */
	struct retention_removal *removals;	/* retention_remove: children under way */
	unsigned char		 image_key[IMAGE_KEY_LEN];	/* cts.conf image_key */
	char			 image_key_id[33];		/* "" = images not encrypted */
	int			 compress_level;	/* cts.conf compress zstd LEVEL; 0 = not */
	struct cts_orphans	*orphans;	/* orphans.c: folders to check against records */
	struct proto_strlist	 replicas;	/* replica CTS names (replica.c) */
	struct proto_client	**replica_conn;	/* one client each */
	struct metrics_http	*metrics;	/* metrics.c: GET /metrics, or NULL */
};

/* net.c: the network process (docs/ARCHITECTURE.md, "The privilege line"). */
struct config;
int   net_open(struct cts *c, const struct config *cf, char *err, size_t errlen);
void  net_close(struct cts *c);
int   net_port(void);		/* the TLS port */
pid_t net_pid(void);
int   net_main(int argc, char **argv);	/* gca-cts --net: the network process */
#define NET_CTL_MAX	4096	/* a control message: a frame of two short strings */
enum { NET_CTL_TAKE = 0, NET_CTL_REFUSED = 1 };
int   net_ctl_check(const struct proto_msg *m, int fd, char *why, size_t len);

/* descriptor.c: the LDIF descriptor (paper 5.5) into c->reg, checked against the core service. */
int  descriptor_load(struct cts *c, const char *path, char *err, size_t errlen);

/* gcslink.c: the connection to the GCS: register, heartbeat, records, bindings. */
int  gcslink_open(struct cts *c, char *err, size_t errlen);
void gcslink_tick(struct cts *c);
void gcslink_close(struct cts *c);
void gcslink_request(struct cts *c, const char *type, const void *body, proto_reply_cb cb,
	void *arg);
/* What the layers above do on the link's events, registered once at start (cts.c) in the order
 * they run; gcslink.c calls none of them by name. */
#define GCSLINK_REGISTERED	0x1	/* registered (again) at a GCS */
#define GCSLINK_BEAT		0x2	/* a heartbeat was just sent (every heartbeat_ms) */
#define GCSLINK_BACK		0x4	/* the GCS answers a heartbeat again after a silence */
void gcslink_on(int events, void (*fn)(struct cts *c));

/* outbox.c: a durable queue of records for the GCS, STATE/outbox/log, a line appended and synced per
 * record and kept until the GCS acknowledges it. It knows nothing of checkpoints: whoever adds a record hands it a
 * completion callback and its argument. outbox_load reads the records left from before a restart
 * and sets done, the queue's own callback: they, and every record after its first outcome, report
 * there with arg NULL (their callers are gone, or were told already). */
int  outbox_load(struct cts *c, outbox_cb done, char *err, size_t errlen);
/* rec into the outbox: written with the others of this loop turn on the next one (one fdatasync
 * of the log for all), then sent; cb(arg) hears its first outcome, OUTBOX_NOT_KEPT included. NULL if
 * it cannot even be encoded (no callback then). */
struct outbox_item *outbox_add(struct cts *c, const struct msg_checkpoint_log *rec, outbox_cb cb,
	void *arg);
/* Sends it now: nothing until it is durable, nor while it is in flight. */
void outbox_send(struct cts *c, struct outbox_item *it);
void outbox_flush(struct cts *c);		/* sends every item not in flight */
/* The record of gid's checkpoint asked with this idempotency key ("idem=" property), if any. */
struct outbox_item *outbox_find_idem(struct cts *c, const char *gid, const char *idem_key);
/* "<id>.gone": retention removed this CTS's copy of id (expired: it took it); written (group
 * commit, as outbox_add) and sent as image_location until the GCS acknowledges it. */
int  outbox_gone(struct cts *c, const char *gid, const char *id, bool expired);
bool outbox_holds(struct cts *c, const char *id);	/* the record of checkpoint id is held */
/* The same entry written at once, whole and fsynced, by a child about to remove the copy
 * (retention.c): read back by outbox_load if this CTS dies before it heard the child. */
int  outbox_gone_ahead(struct cts *c, const char *gid, const char *id, bool expired);
/* The loop's side of it: the entry outbox_gone_ahead wrote, linked and sent (not written again). */
int  outbox_gone_written(struct cts *c, const char *gid, const char *id, bool expired);
void outbox_free(struct cts *c);

/* jobs.c: the job table. A job's events go to one callback, set once at start (cts.c), so that
 * jobs.c calls none of the files above it (checkpoint.c, ending.c, fence.c) by name. */
enum jobs_event {
	JOBS_DUE,		/* its periodic checkpoint is due (none running or waiting) */
	JOBS_EXITED,		/* its process is gone (the pidfd fired) */
	JOBS_MOVED,		/* its GID is bound to another process (why); its own still runs */
	JOBS_GONE,		/* ended or moved: what waits for it fails */
	JOBS_UNWATCHED,		/* no longer watched (its pidfd closed) */
	JOBS_FREED,		/* about to be freed: the CTS stops, or it was unbound */
};
typedef void (*jobs_cb)(struct cts_job *j, enum jobs_event ev, const char *why);
void jobs_set_cb(jobs_cb cb);
int  jobs_load(struct cts *c, char *err, size_t errlen);
int  jobs_save(struct cts *c);
struct cts_job *jobs_find(struct cts *c, const char *gid);
struct cts_job *jobs_by_channel(struct cts *c, struct proto_conn *conn);
struct cts_job *jobs_add(struct cts *c, const char *gid, pid_t pid, uint64_t start, uid_t uid,
	gid_t gidn, uint64_t every_ms);
bool jobs_alive(const struct cts_job *j);	/* same process as at bind time */
bool jobs_catches(const struct cts_job *j, int sig);	/* it has a handler for sig */
int  jobs_signal(const struct cts_job *j, int sig);	/* through its pidfd: never a reused PID */
void jobs_set_channel(struct cts_job *j, struct proto_conn *conn);
void jobs_ended(struct cts_job *j);		/* the process is gone: unbind at the GCS */
/* The directory's gcaLocalId of a process, "pid:starttime": a reused PID never matches it. */
void jobs_local_id(pid_t pid, uint64_t start, char *out, size_t len);
void jobs_moved(struct cts_job *j, const char *why);	/* bound elsewhere now: forget it */
void jobs_on_moved(struct proto_req *r, void *ctx);	/* job_moved from the GCS */
void jobs_retry_unbind(struct cts *c);
void jobs_free(struct cts *c);

/* ending.c: how a job ended. ending_set_wrapper: the bind came from pid, the job's parent, which
 * stays resident and reports the job's status (local_exit). ending_on_exit: the job's process is
 * gone: unbind now if its status is known or nobody will say it, else wait for the wrapper's word
 * (at most ENDING_WAIT_MS, or until the wrapper is gone too). ending_unwatch frees what waits. */
#define ENDING_WAIT_MS	5000
void ending_set_wrapper(struct cts_job *j, pid_t pid);
void ending_on_exit(struct cts_job *j);
void ending_unwatch(struct cts_job *j);
void ending_local_exit(struct proto_req *r, void *ctx);

/* fence.c: one live copy per job (docs/DESIGN.md, "One live copy"). fence_stop: j's GID is bound to
 * another process now (why): its copy here is stopped (cts.conf fence kill, the default), logged
 * and reported to the GCS (job_unbind, state fenced), or left (fence none). fence_check: after
 * (re)registering, asks the GCS about each job held here and fences those bound elsewhere
 * meanwhile (a move made while this CTS was away). fence_free: at exit. */
void fence_stop(struct cts_job *j, const char *why);
void fence_check(struct cts *c);
void fence_free(void);
int  user_name(uid_t uid, char *out, size_t len);
/* proc.c: /proc facts about a process: its parent, real uid and start time; -1 if it does not
 * exist. */
int  proc_stat(pid_t pid, pid_t *ppid, uid_t *uid, gid_t *gidn, uint64_t *start);
/* The root of the tree of the job bound as pid bound (a criu job's: its namespace's init). */
pid_t proc_job_root(pid_t bound);

/* interval.c: --checkpoint-every auto, Daly's interval (docs/ARCHITECTURE.md, "Adaptive
 * checkpoint intervals"). j->every_ms is CTS_EVERY_AUTO for such a job. */
#define CTS_EVERY_AUTO	UINT64_MAX
/* j was just bound (recovery: from the record restore_prepare found for its GID, if any). */
void interval_bind(struct cts_job *j, bool recovery);
/* The record a recovery restores: its cost and restarts seed the job bound next for its GID. */
void interval_seed(struct cts *c, const char *gid, const struct proto_entry *rec);
uint64_t interval_ms(struct cts_job *j);	/* its periodic timer's interval now */
/* ck is dumped and sealed: its cost updates the job's, its periodic timer is set again, and
 * the record gets cost_ms=, delta_ms=, restarts=, since= and, for an auto job, interval=. */
void interval_measured(struct cts_ckpt *ck, struct proto_strlist *props);

/* local.c: the unix socket for wrappers and jobs (role local). */
int  local_open(struct cts *c, const char *group, char *err, size_t errlen);
void local_on_close(struct proto_conn *conn, void *ctx);
/* The dispatch tables: the unix socket's (local.c) and the TLS endpoint's (cts.c), named here so
 * that the fuzz harnesses (tests/fuzz) drive the very tables the daemon serves. */
extern const struct proto_handler local_handlers[], cts_handlers[];
extern const size_t local_nhandlers, cts_nhandlers;

/* checkpoint.c: one checkpoint at a time per job; the rest wait, bounded. */
void ckpt_request(struct cts_job *j, const char *kind, struct proto_req *req, const char *idem_key);
void ckpt_dumped(struct cts_ckpt *ck, const char *error);
/* The same for a dump that cannot start, with the code its asker gets (ckpt_dumped: refused). */
void ckpt_dump_failed(struct cts_ckpt *ck, const char *code, const char *error);
/* A child that stored an image answers one line, "size sha256 nfiles signed": written by the first,
 * read into ck->result by the second (-1 if out is not such a line). */
void ckpt_result_line(const struct image_result *r, char *out, size_t len);
int  ckpt_result_read(struct cts_ckpt *ck, const char *out);
/* Sets m's sign so that the child sealing an image writes manifest.sig with the manifest, in one
 * folder fsync; an image sealed without it is signed on the loop, after the child. */
void ckpt_signer(struct cts *c, struct image_meta *m);
/* The outbox's completion callback for records (outbox_cb): arg is the checkpoint that waits for
 * the record's first outcome, or NULL (a record from before a restart, or one whose checkpoint
 * heard already); the same do_checkpoint asked again (its idempotency key) is answered here. */
void ckpt_recorded(struct cts *c, const struct msg_checkpoint_log *rec,
	const struct outbox_result *r, void *arg);
void ckpt_saved(struct cts_job *j, const struct msg_app_saved *b);
void ckpt_job_gone(struct cts_job *j);		/* fails what waits for a job that ended */
void ckpt_job_free(struct cts_job *j);		/* the CTS stops: its checkpoints answered, freed */
/* A failed checkpoint's image folder is removed, but the file in it its error names (criu's
 * dump.log) is kept as STATE/failed/<id>.log, the newest CKPT_FAILED_LOGS of them. */
#define CKPT_FAILED_LOGS 10
void ckpt_do_checkpoint(struct proto_req *r, void *ctx);	/* from the GCS */

/* idem.c: a do_checkpoint asked again with the key of a checkpoint already taken or under way
 * gets that checkpoint's result: true when req was taken (answered now or when the checkpoint or
 * its record is done), false when no checkpoint of j has that key. idem_acked: the outbox's
 * record rec was stored (seq) or not (code, why): its waiting retries are answered, a keyed
 * one remembered for a moment. */
bool idem_retry(struct cts_job *j, const char *idem_key, struct proto_req *req);
void idem_acked(const struct msg_checkpoint_log *rec, uint64_t seq, const char *code,
	const char *why);

/* retention.c: gid's job has a checkpoint recorded: if it holds more images than retention keeps,
 * a child removes those it no longer needs (one child at a time for every job that asks), and
 * each removal goes to the GCS (retention_removed). */
void retention_want(struct cts *c, const char *gid);
/* A copy here was removed (by retention or image_gc): gcaLocation -= this CTS, the record expired
 * when expired (this CTS took it), through the outbox so that it outlasts a GCS away right now. */
void retention_removed(struct cts *c, const char *gid, const char *id, bool expired);
/* Every other removal from the state folder (a restore copy, the image of a refused record) the
 * same way: in a child, off the loop (a multi-GB folder takes a while); one under way for the
 * same path is not started again. */
void retention_remove(struct cts *c, const char *path);
/* The bound of gid's job (retention.c): folders from this id on may still be written. */
void retention_bound(struct cts *c, const char *gid, char before[ID_LEN + 1]);
void retention_free(struct cts *c);

/* orphans.c: image folders of the previous run with neither an outbox entry nor a record (the
 * CTS stopped between an image and its record) are removed. orphans_scan lists the candidates at
 * start, before the loop; orphans_check (every tick, once registered) asks the GCS for their
 * records and removes, in a child, those no record names. */
void orphans_scan(struct cts *c);
void orphans_check(struct cts *c);
void orphans_free(struct cts *c);
/* The GID whose image folder (STATE/images/<name>) is name, malloc'd, or NULL (not one). */
char *orphans_gid(const char *name);

/* audit.c: image_audit from the GCS (gca-ctl audit): the copies the directory places here
 * checked, the images no record names, the jobs held. */
void audit_image(struct proto_req *r, void *ctx);

/* restore.c: restore_prepare from gca-recover. */
void restore_prepare(struct proto_req *r, void *ctx);
/* Removes the copies whose caller ended without binding a job to them (on every tick). */
void restore_sweep(struct cts *c);
/*
 * In a child: the image in dir and every parent its manifest names, verified and copied, each
 * link into the previous one's copy as "parent" (copy/, copy/parent/, ...); then, when
 * uid != -1, the whole tree chowned to uid:gid, copy itself last. "missing <id>" in out when a
 * link is not in the store. On failure copy is removed.
 */
int  restore_chain_copy(struct cts *c, const char *dir, const char *copy, uid_t uid, gid_t gid,
	char *out, size_t len);

/* transfer.c: images between CTSes. transfer_serve is image_fetch (from a CTS with a grant);
 * transfer_fetch_run runs in a child (child_run) and fetches, verifies and renames into image_dir. */
#define TRANSFER_HOLDERS 16
struct transfer_fetch {
	char			 id[ID_LEN + 1], gid[256], sha256[65];
	char			 signer[256];	/* the CTS that took it ("": any CTS of the site) */
	uint64_t		 tls_signed_before_ms;	/* struct cts's */
	char			*grant;
	char			 holders[TRANSFER_HOLDERS][600];	/* name@host:port */
	size_t			 nholders;
	char			 state[PATH_MAX], image_dir[PATH_MAX];
	struct proto_tls_files	 tls;
};
void transfer_serve(struct proto_req *r, void *ctx);
int  transfer_fetch_run(void *arg, char *out, size_t outlen);
/* dir/manifest has the record's sha256 (NULL: not checked, for a parent link whose record is not
 * at hand) and dir/manifest.sig is its signature by the CTS signer (the record's taker), whether
 * the image was fetched or taken here. 0, or -1 with err. */
int  transfer_manifest_check(const char *dir, const char *ca, const char *id, const char *sha256,
	const char *signer, uint64_t tls_signed_before_ms, char *err, size_t errlen);

/* replica.c: copies of each image on the replicas named in cts.conf, and gcaLocation. */
int  replica_configure(struct cts *c, const char *list, char *err, size_t errlen);
void replica_free(struct cts *c);
void replica_start(struct cts *c, const char *gid, const char *id, const char *sha256);
void replica_located(struct cts *c, const char *gid, const char *id);	/* a verified copy here */
void replica_receive(struct proto_req *r, void *ctx);			/* image_replicate */
void replica_gc(struct proto_req *r, void *ctx);			/* image_gc */

/* child.c: runs fn in a forked child; done(result, arg) on the loop with what it returned:
 * "ok ..." or an error text, under CHILD_OUT bytes. */
#define CHILD_OUT 4096
typedef int (*child_fn)(void *arg, char *out, size_t outlen);
int  child_run(struct cts *c, child_fn fn, void *fn_arg, void (*done)(bool ok, const char *out,
	void *arg), void *arg);
/* Kills (SIGKILL, with what they started) the children whose done callback gets arg; they end
 * as usual, done(false, "the worker process died (signal 9)"). Returns how many. */
int  child_kill(const void *arg);
bool child_any(void);		/* a child is running (copying, dumping, removing) */
/* The children whose done callback gets arg only remove files (retention): they write no image
 * whose flush a copy on the loop would wait for (child_any_writing leaves them out). */
void child_mark_remover(const void *arg);
bool child_any_writing(void);	/* a child is running that may write an image */

/* metrics.c (docs/METRICS.md): the set defined, served on listen (NULL: not served). */
int  cts_metrics_open(struct cts *c, const char *listen, char *err, size_t errlen);
void cts_metrics_close(struct cts *c);
void cts_metrics_checkpoint(const struct cts_ckpt *ck, const char *error_code);	/* NULL: ok */
void cts_metrics_restore(const char *outcome);
void cts_metrics_fetch(const char *outcome);

/* state.c: paths in the state folder. */
int  cts_image_dir(struct cts *c, const char *gid, const char *id, char *out, size_t len);
int  cts_job_dir(struct cts *c, const char *gid, char *out, size_t len);

#endif
