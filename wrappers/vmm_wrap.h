/*
 * wrappers/vmm_wrap.c: what vmm-ready-job-executor and vmm-ready-job-resumer share: a run folder
 * for one VM (QMP socket, gate socket, console and QEMU logs), launching QEMU, a small blocking
 * QMP client (wrappers may block; the CTS's client is cts/core/qmp.c), the host side of the
 * Virtual Node Gate (tests/vm/guest/gca-gate.c says the protocol) and the resident loop that
 * streams the job's output, forwards signals and ends with the job's exit status.
 */
#ifndef GCA_VMM_WRAP_H
#define GCA_VMM_WRAP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vmm_vm {
	const char	*prog;			/* for messages */
	char		 dir[PATH_MAX];		/* the run folder, made with mkdtemp */
	char		 qmp[PATH_MAX + 8], gate[PATH_MAX + 8], console[PATH_MAX + 16];
	char		 log[PATH_MAX + 16];
	pid_t		 pid;			/* QEMU */
	int		 status;		/* QEMU's wait status once it ended */
	bool		 ended;
	int		 gate_fd;
	char		 nonce[16];		/* request ids are NONCE-N: unique to this wrapper */
	unsigned	 rid;
	char		*in;			/* what the gate sent, not yet a whole line */
	size_t		 inlen, incap, inused;	/* inused: the line handed out last */
	char		 gate_error[160];	/* why the gate cannot be read any more */
	const char	*gid, *cts;		/* for a job's own checkpoint requests (ckpt) */
	bool		 job_exited;		/* the gate said "exit JOBID CODE" */
	int		 job_code;
	bool		 pooled;		/* the CTS's (its pool): not our child, not ours to kill */
	int		 pidfd;			/* pooled: how we see it end */
};

/* The run folder ($TMPDIR or /tmp, gca-vmm-XXXXXX) and the paths in it. */
int  vmm_rundir(struct vmm_vm *vm, const char *prog);

/* The named program in PATH (or the path itself if it has a '/'); false if it cannot be run. */
bool vmm_have(const char *prog);

/*
 * Disks (docs/VMM.md, "Disks"): the wrappers give QEMU a qcow2 overlay of their own in the run
 * folder, id gca-diskN, on the base image (executor) or on a checkpoint's layer (resumer).
 */
#define VMM_DISKS_MAX	8
#define VMM_DISK_PREFIX	"gca-disk"
/* path is a readable qcow2 image; else says why on stderr (prog: ...) and returns -1. */
int  vmm_qcow2_check(const char *prog, const char *what, const char *path);
/* qemu-img create -f qcow2 -F qcow2 -b BACKING PATH ($GCA_VMM_QEMU_IMG, else qemu-img); -1 with
 * qemu-img's own words on stderr. */
int  vmm_overlay(const char *prog, const char *backing, const char *path);

/* A VM of the CTS's pool (local_vm_take's answer) instead of a run folder and a launch: the CTS
 * kills it and removes its folder once we have exited (docs/VMM.md, "A pool"). */
int  vmm_adopt(struct vmm_vm *vm, const char *prog, pid_t pid, const char *dir, const char *gate,
	const char *console);

/* Starts argv (QEMU) as our child in its own process group, output to vm->log. */
int  vmm_launch(struct vmm_vm *vm, char **argv);

/* QEMU ended? (reaps it, sets vm->status). */
bool vmm_qemu_ended(struct vmm_vm *vm);

/* The last lines of QEMU's log, for an error message ("" if none). */
void vmm_log_tail(const struct vmm_vm *vm, char *out, size_t len);

/* Blocking QMP: connect (waits for the socket, up to timeout_ms) and negotiate; -1 with err. */
int  vmm_qmp_open(struct vmm_vm *vm, int timeout_ms, char *err, size_t errlen);
/* One command, fd attached if >= 0; reply is the answer's line; -1 with err (QEMU's desc). */
int  vmm_qmp_call(int fd, const char *json, int pass_fd, char *reply, size_t len, char *err,
	size_t errlen);

/* The gate: connects to its socket; waits until the guest agent answers hello (up to
 * timeout_ms). hello's answer is left in line (JOBID STATE CODE). -1 with err. */
int  vmm_gate_open(struct vmm_vm *vm, int timeout_ms, char *line, size_t len, char *err,
	size_t errlen);
/* Sends "VERB RID ARGS" (args percent-encoded); the rid made is put in rid. */
int  vmm_gate_send(struct vmm_vm *vm, const char *verb, char *const *args, char *rid,
	size_t ridlen);
/* The same with the id given (answers to the guest's own requests carry its id). */
int  vmm_gate_send_id(struct vmm_vm *vm, const char *verb, const char *id, char *const *args);
/* Waits up to timeout_ms for the answer to rid (out/exit lines meanwhile are handled: output
 * written to fd 1, exit remembered, a job's ckpt passed to the CTS); the answer's words after the rid in out. -1 if it is an
 * err (out holds why), if the gate closed or on timeout. */
int  vmm_gate_wait(struct vmm_vm *vm, const char *rid, int timeout_ms, char *out, size_t len);

/* Signals forwarded to the job through the gate while vmm_job_loop runs. */
void vmm_signals_setup(void);
/* Streams the job's output to fd 1 until its exit line; returns its exit status (128+N for a
 * signal), or -1 if the VM or the gate went away first (said on stderr). */
int  vmm_job_loop(struct vmm_vm *vm, const char *jobid);

/* Stops QEMU (SIGTERM, then SIGKILL after 5 s) and removes the run folder unless keep. */
void vmm_cleanup(struct vmm_vm *vm, bool keep);

#endif
