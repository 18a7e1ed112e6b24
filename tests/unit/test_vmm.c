/*
 * cts/core/vmm.c, the driver's QMP sequence, against a scripted QEMU: this program itself,
 * started again as "test_vmm --qemu SCRIPT -qmp unix:PATH ...", so that the bound process has a
 * QEMU's command line and serves its own QMP socket (the driver checks both). It logs every
 * command it gets; the driver runs on a real event loop with the real QMP client, child and image
 * store. What the CTS does with the result (ckpt_dumped) is this test's: it only records it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cts/cts.h"

/* ---- the scripted QEMU ---- */

/* One command line from the client; a descriptor passed with it into *passed. */
static int
qemu_get(int fd, char *line, size_t len, int *passed)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	size_t n = 0;
	char c;

	while (n + 1 < len) {
		struct iovec iov = { &c, 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			.msg_controllen = sizeof u.buf };
		if (recvmsg(fd, &msg, 0) != 1)
			return -1;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		if (cm != NULL && cm->cmsg_type == SCM_RIGHTS)
			memcpy(passed, CMSG_DATA(cm), sizeof(int));
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	return 0;
}

/* The answer to cmd under script: "ok", "paused", "migrate-fails", "no-memory". */
static const char *
qemu_answer(const char *script, const char *cmd, const char *line)
{
	if (strcmp(cmd, "query-version") == 0)
		return "{\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"\"}";
	if (strcmp(cmd, "qom-get") == 0)
		return "\"pc-i440fx-7.2-machine\"";
	if (strcmp(cmd, "query-memory-size-summary") == 0)
		return strcmp(script, "no-memory") == 0 ? "{\"plugged-memory\": 0}" :
		    "{\"base-memory\": 268435456, \"plugged-memory\": 0}";
	if (strcmp(cmd, "qom-list") == 0)
		return strstr(line, "peripheral-anon") == NULL ? "[{\"name\": \"type\", \"type\": "
		    "\"string\"}]" : "[{\"name\": \"type\", \"type\": \"string\"}, {\"name\": "
		    "\"device[1]\", \"type\": \"child<virtserialport>\"}, {\"name\": \"device[0]\", "
		    "\"type\": \"child<virtio-serial-pci>\"}]";
	if (strcmp(cmd, "query-status") == 0)
		return strcmp(script, "paused") == 0 ? "{\"status\": \"paused\", \"running\": false}" :
		    "{\"status\": \"running\", \"singlestep\": false, \"running\": true}";
	if (strcmp(cmd, "query-migrate") == 0)
		return strcmp(script, "migrate-fails") == 0 ? "{\"status\": \"failed\", "
		    "\"error-desc\": \"No space left on device\"}" : "{\"status\": \"completed\"}";
	return "{}";
}

static int
qemu_main(const char *script, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[1024], cmd[64], logp[200], reply[1200];
	int l, fd, image = -1, conts = 0;
	FILE *log;

	if (strlen(path) >= sizeof sa.sun_path)
		return 1;
	snprintf(logp, sizeof logp, "%s.log", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((log = fopen(logp, "w")) == NULL || (l = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
	    (fd = accept(l, NULL, NULL)) < 0)
		return 1;
	setvbuf(log, NULL, _IOLBF, 0);
	dprintf(fd, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}}, "
	    "\"capabilities\": []}}\n");
	while (qemu_get(fd, line, sizeof line, &image) == 0) {
		if (json_str(line, "execute", cmd, sizeof cmd) != 0)
			continue;
		fprintf(log, "%s%s%s\n", cmd, strcmp(cmd, "migrate-set-parameters") ? "" : " ",
		    strcmp(cmd, "migrate-set-parameters") ? "" : line);
		if (strcmp(cmd, "migrate") == 0 && image >= 0) {
			dprintf(image, "QEVM a stopped VM's stream");
			close(image);
			image = -1;
		}
		if (strcmp(script, "cont-early") == 0 && strcmp(cmd, "cont") == 0 && conts++ < 2)
			snprintf(reply, sizeof reply, "{\"error\": {\"class\": \"GenericError\", "
			    "\"desc\": \"Migration is not finalized yet\"}}\n");
		else
			snprintf(reply, sizeof reply, "{\"return\": %s}\n", qemu_answer(script, cmd,
			    line));
		(void)!write(fd, reply, strlen(reply));
	}
	return 0;
}

/* ---- the CTS's side ---- */

static struct {
	bool	 done;
	char	 error[1024];
	struct event_base *base;
} result;

/* What checkpoint.c does with the result is not under test here. */
void
ckpt_dumped(struct cts_ckpt *ck, const char *error)
{
	(void)ck;
	result.done = true;
	snprintf(result.error, sizeof result.error, "%s", error ? error : "");
	event_base_loopbreak(result.base);
}

void
ckpt_result_line(const struct image_result *r, char *out, size_t len)
{
	snprintf(out, len, "%llu %s %u", (unsigned long long)r->size, r->sha256, r->nfiles);
}

int
ckpt_result_read(struct cts_ckpt *ck, const char *out)
{
	unsigned long long size;

	if (sscanf(out, "%llu %64s %u", &size, ck->result.sha256, &ck->result.nfiles) != 3)
		return -1;
	ck->result.size = size;
	return 0;
}

/* The store's layout (cts.c) is not under test: checkpoints of the scripted VM live in STATE. */
int
cts_image_dir(struct cts *c, const char *gid, const char *id, char *out, size_t len)
{
	(void)gid;
	return snprintf(out, len, "%s/%s", c->state, id) >= (int)len ? -1 : 0;
}

struct run {
	char	 dir[64], qmp[128], log[160];
	pid_t	 qemu;
	struct cts c;
	struct cts_job j;
	struct cts_ckpt ck;
	char	*commands;	/* the scripted QEMU's log */
};

/* The scripted QEMU started (bound as the job), one checkpoint of it run to its end. */
static void
run_checkpoint(struct run *r, const char *script)
{
	char self[PATH_MAX], qmparg[160];
	struct timeval limit = { 15, 0 };
	struct stat st;
	size_t len;
	ssize_t n;

	memset(&result, 0, sizeof result);
	snprintf(r->dir, sizeof r->dir, "/tmp/test_vmm.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->qmp, sizeof r->qmp, "%s/qmp", r->dir);
	snprintf(r->log, sizeof r->log, "%s/qmp.log", r->dir);
	snprintf(qmparg, sizeof qmparg, "unix:%s,server=on,wait=off", r->qmp);
	assert_true((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0);
	self[n] = '\0';
	if ((r->qemu = fork()) == 0) {
		execl(self, "test_vmm", "--qemu", script, "-machine", "pc", "-qmp", qmparg,
		    "-device", "virtio-serial", "-drive", strcmp(script, "disk-key") == 0 ?
		    "file=/nonexistent/gca-disk0.qcow2,format=qcow2,if=virtio,id=gca-disk0" :
		    "file=/nonexistent/other.qcow2,id=user-disk", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && stat(r->qmp, &st) != 0; i++)
		usleep(10000);
	assert_int_equal(stat(r->qmp, &st), 0);
	result.base = r->c.base = event_base_new();
	r->c.vmm_timeout_ms = 10000;
	if (strcmp(script, "disk-key") == 0)
		snprintf(r->c.image_key_id, sizeof r->c.image_key_id, "0123456789abcdef");
	r->j = (struct cts_job){ .gid = "vm-job", .pid = r->qemu, .uid = getuid(), .cts = &r->c };
	r->ck = (struct cts_ckpt){ .cts = &r->c, .job = &r->j, .id = "01a00000-0000-7000-8000-000000000001",
		.time_ms = 1 };
	snprintf(r->ck.image_dir, sizeof r->ck.image_dir, "%s/image", r->dir);
	core_vmm.dump(&r->ck);
	event_base_loopexit(r->c.base, &limit);
	if (!result.done)
		event_base_dispatch(r->c.base);
	assert_true(result.done);
	kill(r->qemu, SIGKILL);
	waitpid(r->qemu, NULL, 0);
	assert_int_equal(file_read_all(r->log, &r->commands, &len, 65536), 0);
}

static void
run_end(struct run *r)
{
	free(r->commands);
	proto_strlist_free(&r->ck.properties);
	event_base_free(r->c.base);
	file_remove_tree(r->dir);
}

static bool
has_property(const struct proto_strlist *l, const char *p)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], p) == 0)
			return true;
	return false;
}

/* The whole sequence: max-bandwidth raised before stop, the image through getfd, cont after. */
static void
test_checkpoint_sequence(void **state)
{
	struct run r = { 0 };
	char path[PATH_MAX + 16], *text = NULL;
	size_t len;

	(void)state;
	run_checkpoint(&r, "ok");
	assert_string_equal(result.error, "");
	assert_string_equal(r.commands, "qmp_capabilities\nquery-version\nqom-get\n"
	    "query-memory-size-summary\nqom-list\nqom-list\nquery-status\n"
	    "migrate-set-parameters {\"execute\": \"migrate-set-parameters\", \"arguments\": "
	    "{\"max-bandwidth\": 1099511627776}}\nstop\ngetfd\nmigrate\nquery-migrate\ncont\n");
	snprintf(path, sizeof path, "%s/vm.state", r.ck.image_dir);
	assert_int_equal(file_read_all(path, &text, &len, 4096), 0);
	assert_string_equal(text, "QEVM a stopped VM's stream");
	free(text);
	snprintf(path, sizeof path, "%s/vm.conf", r.ck.image_dir);
	assert_int_equal(file_read_all(path, &text, &len, 65536), 0);
	assert_non_null(strstr(text, "gca-vm 2\nqemu 7.2.22\nmachine pc-i440fx-7.2\n"
	    "memory 268435456\ndevices virtio-serial-pci,virtserialport\n"));
	/* the alias on the command line recorded as the machine it stood for */
	assert_non_null(strstr(text, "arg -machine\narg pc-i440fx-7.2\narg -qmp\n"));
	free(text);
	snprintf(path, sizeof path, "%s/manifest", r.ck.image_dir);
	assert_int_equal(access(path, R_OK), 0);
	assert_true(has_property(&r.ck.properties, "vmm.machine=pc-i440fx-7.2"));
	assert_true(has_property(&r.ck.properties, "vmm.devices=virtio-serial-pci,virtserialport"));
	assert_true(has_property(&r.ck.properties, "vmm.memory=268435456"));
	run_end(&r);
}

/* A failed migration: the VM, stopped for it, is sent cont before the checkpoint fails. */
static void
test_migrate_error_conts(void **state)
{
	struct run r = { 0 };
	size_t n;

	(void)state;
	run_checkpoint(&r, "migrate-fails");
	assert_string_equal(result.error, "the migration to the image failed: No space left on "
	    "device");
	n = strlen(r.commands);
	assert_true(n > 19 && strcmp(r.commands + n - 19, "query-migrate\ncont\n") == 0);
	run_end(&r);
}

/* QEMU refuses cont right after "completed" (its migration thread still finishing): cont is
 * sent again until taken, and the checkpoint succeeds with the VM running. */
static void
test_cont_until_finalized(void **state)
{
	struct run r = { 0 };
	size_t n;

	(void)state;
	run_checkpoint(&r, "cont-early");
	assert_string_equal(result.error, "");
	n = strlen(r.commands);
	assert_true(n > 29 && strcmp(r.commands + n - 29, "query-migrate\ncont\ncont\ncont\n") == 0);
	run_end(&r);
}

/* A VM with a disk under an encrypting CTS: refused before anything is sent, the VM untouched
 * (its layers would be incremental images an encrypted store cannot restore). A -drive that is
 * not the wrappers' (test_checkpoint_sequence) is not snapshotted: no query-block there. */
static void
test_disk_refused_when_encrypting(void **state)
{
	struct run r = { 0 };

	(void)state;
	run_checkpoint(&r, "disk-key");
	assert_non_null(strstr(result.error, "a VM with disks (gca-disk0) is not checkpointed here"));
	assert_null(strstr(r.commands, "stop\n"));
	run_end(&r);
}

/* A paused VM is saved as it is: neither stopped nor continued. */
static void
test_paused_vm_stays_paused(void **state)
{
	struct run r = { 0 };

	(void)state;
	run_checkpoint(&r, "paused");
	assert_string_equal(result.error, "");
	assert_null(strstr(r.commands, "stop\n"));
	assert_null(strstr(r.commands, "cont\n"));
	assert_non_null(strstr(r.commands, "getfd\nmigrate\nquery-migrate\n"));
	run_end(&r);
}

/* No memory size: nothing would bound the image; the checkpoint fails before the VM stops. */
static void
test_no_memory_size(void **state)
{
	struct run r = { 0 };

	(void)state;
	run_checkpoint(&r, "no-memory");
	assert_non_null(strstr(result.error, "QEMU gave no base-memory"));
	assert_null(strstr(r.commands, "stop\n"));
	run_end(&r);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint_sequence),
		cmocka_unit_test(test_migrate_error_conts),
		cmocka_unit_test(test_paused_vm_stays_paused),
		cmocka_unit_test(test_cont_until_finalized),
		cmocka_unit_test(test_disk_refused_when_encrypting),
		cmocka_unit_test(test_no_memory_size),
	};

	if (argc > 5 && strcmp(argv[1], "--qemu") == 0) {
		for (int i = 3; i + 1 < argc; i++) {
			if (strcmp(argv[i], "-qmp") == 0) {
				char path[128];	/* unix:PATH,server=on,... */
				snprintf(path, sizeof path, "%.*s", (int)strcspn(argv[i + 1] + 5, ","),
				    argv[i + 1] + 5);
				return qemu_main(argv[2], path);
			}
		}
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
