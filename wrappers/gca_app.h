/*
 * gca_app: the job side of the `app` core service. A job that saves its own state links
 * libgca_app.a (and libgca.a), calls gca_app_init once, then calls gca_app_poll from its main loop
 * (as its sleep) so the CTS's checkpoint requests are served. No threads, no signal handlers: the
 * library only does work inside these calls.
 *
 * How it is started (gca-exec / gca-recover set the environment):
 *   GCA_APP_FD       a connected unix socket to the CTS, already bound to the job's GID
 *   GCA_GID          the job's grid identifier
 *   GCA_CTS_SOCKET   the CTS socket path, to re-attach after the CTS restarted
 *   GCA_RESTORE_DIR  only on recovery: the image folder to restore from
 * When GCA_APP_FD is not set the job runs without checkpointing: gca_app_init returns 0,
 * gca_app_poll only sleeps, gca_app_checkpoint fails with a message saying so.
 * gca_app_init marks the socket close-on-exec and removes GCA_APP_FD and GCA_RESTORE_DIR from the
 * environment, so programs the job starts do not take them for their own.
 *
 * The wake signal ("a signal, then a message"): just before app_save the CTS sends SIGUSR2 to a
 * job that catches it (has a handler installed, seen in /proc), never to one that leaves it at its
 * default or ignores it. A job that computes for long stretches between gca_app_poll calls can
 * install a handler that makes it call gca_app_poll(0) soon; the library installs none itself.
 *
 * On the socket: the CTS sends `app_save {checkpoint_id, image_dir}`; the library calls save_fn
 * with image_dir (a folder the job's user owns), answers `app_saved {checkpoint_id, ok, error}`
 * and reads that answer's reply. The CTS waits app_timeout (10 s by default) for it; a slow save
 * fails that checkpoint, the job keeps running. If the socket is closed (the CTS restarted),
 * gca_app_poll re-attaches at most once a second through GCA_CTS_SOCKET; one line on stderr says
 * when the connection is lost and when it is back.
 */
#ifndef GCA_APP_H
#define GCA_APP_H

#include <stddef.h>
#include <stdint.h>

/* Write (save) or read (restore) the job's state as files in image_dir. 0 ok, -1 failed (errno
 * set, if it is meaningful, is sent to the CTS with the failure). */
typedef int (*gca_app_save_fn)(const char *image_dir, void *arg);
typedef int (*gca_app_restore_fn)(const char *image_dir, void *arg);

/*
 * Reads the environment. When GCA_RESTORE_DIR is set, calls restore(GCA_RESTORE_DIR, arg) before
 * returning and returns its result: -1 means the job should exit non-zero (the reason is on
 * stderr). Returns 0 when not run under gca-exec/gca-recover, -1 if the environment is wrong.
 */
int  gca_app_init(gca_app_save_fn save, gca_app_restore_fn restore, void *arg);

/* The socket to the CTS, for jobs with their own poll loop (call gca_app_poll(0) when it is
 * readable); -1 when there is none (not under gca, or re-attaching). */
int  gca_app_fd(void);

/*
 * Waits up to timeout_ms (0: does not wait) and serves the CTS's requests meanwhile; re-attaches
 * after the CTS restarted. Returns how many checkpoints it served, or -1 with errno EINTR when a
 * signal interrupted the wait (so a job's SIGTERM flag is seen at once). Use it as the job's sleep.
 */
int  gca_app_poll(int timeout_ms);

/*
 * A job-initiated checkpoint: asks the CTS, serves its app_save meanwhile, waits for the record
 * (at most 60 s). Returns 0 with the checkpoint id in id and its sequence number in *seq (either
 * may be NULL), or -1 with a message in err.
 */
int  gca_app_checkpoint(char *id, size_t idlen, uint64_t *seq, char *err, size_t errlen);

/*
 * Incremental saves (the CTS's app_incremental): when the CTS offers the job's previous image,
 * save_incr is called instead of save with parent_id and parent_dir, a copy of that
 * image for the job's user (writes there are lost). The job writes into image_dir only the files
 * that changed since parent_id and returns 1 (the record then names the parent), or writes
 * everything and returns 0 (a full image), or -1 (failed). A file may not be deleted in an
 * incremental image; a top-level "parent" is reserved. parent_dir, like GCA_RESTORE_DIR of an
 * incremental checkpoint, is a chain: its own older layers are in parent_dir/parent,
 * parent_dir/parent/parent, ...: a file's state is in the nearest layer that has it.
 */
typedef int (*gca_app_save_incr_fn)(const char *image_dir, const char *parent_id,
	const char *parent_dir, void *arg);
void gca_app_incremental(gca_app_save_incr_fn save_incr);	/* before or after gca_app_init */

/* The job's GID, or NULL when not run under gca. */
const char *gca_app_gid(void);

#endif
