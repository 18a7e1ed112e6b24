/*
 * wrappers/gca_app: the job side of the app core service, against a "CTS" played by a thread on
 * the other end of a socketpair (the library blocks, so both sides cannot share one thread). The
 * thread only records what it saw; the assertions run in the test's own thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/gca_app.h"

/* ---- the job's side: save and restore functions that record their calls ---- */

struct job {
	int	 saves, restores;
	char	 dir[256];
	int	 result;	/* what save/restore return */
	int	 err;		/* errno they set when failing */
};

static int
job_save(const char *dir, void *arg)
{
	struct job *j = arg;

	j->saves++;
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	errno = j->err;
	return j->result;
}

static int
job_restore(const char *dir, void *arg)
{
	struct job *j = arg;

	j->restores++;
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	return j->result;
}

/* ---- the CTS's side ---- */

struct cts {
	struct proto_sync *s;
	int	 listen_fd;		/* test_reattach: the CTS socket after its "restart" */
	const char *fail;		/* what went wrong in the thread, or NULL */
	/* what it saw */
	bool	 saved_ok;
	char	 saved_id[64], saved_error[256], saved_parent[64];
	char	 bind_gid[64];
	uint64_t bind_pid;
	bool	 bind_recovery;
	char	 checkpoint_gid[64];
};

static struct msg_empty empty;

/* Sends app_save, reads the app_saved that answers it, replies ok. */
static void
cts_save_on(struct cts *c, const char *checkpoint_id, const char *dir, const char *parent_id,
	const char *parent_dir)
{
	struct msg_app_save req = { .checkpoint_id = checkpoint_id, .image_dir = dir,
		.parent_id = parent_id, .parent_dir = parent_dir };
	struct proto_msg m;
	char err[256];

	if (proto_sync_send(c->s, "app_save", 900, proto_type_find("app_save"), &req) != 0) {
		c->fail = "cannot send app_save";
		return;
	}
	if (proto_sync_read(c->s, 5000, NULL, &m, err, sizeof err) != 0 ||
	    strcmp(m.type, "app_saved") != 0) {
		c->fail = "no app_saved after app_save";
		proto_msg_free(&m);
		return;
	}
	const struct msg_app_saved *b = m.body;
	c->saved_ok = b->ok;
	snprintf(c->saved_id, sizeof c->saved_id, "%s", b->checkpoint_id);
	snprintf(c->saved_error, sizeof c->saved_error, "%s", b->error ? b->error : "");
	snprintf(c->saved_parent, sizeof c->saved_parent, "%s", b->parent ? b->parent : "");
	proto_sync_send(c->s, "ok", m.id, &proto_t_ok_empty, &empty);
	proto_msg_free(&m);
}

static void
cts_save(struct cts *c, const char *checkpoint_id, const char *dir)
{
	cts_save_on(c, checkpoint_id, dir, NULL, NULL);
}

static void *
cts_save_incr_thread(void *arg)
{
	cts_save_on(arg, "cp-3", "/images/g1/cp-3", "cp-1", "/staging/cp-3.parent");
	return NULL;
}

static void *
cts_save_thread(void *arg)
{
	cts_save(arg, "cp-1", "/images/g1/cp-1");
	return NULL;
}

/* The CTS of a job-initiated checkpoint: local_checkpoint, then a stray frame, then app_save, and
 * only then the checkpoint's reply. */
static void *
cts_checkpoint_thread(void *arg)
{
	struct cts *c = arg;
	struct msg_checkpoint_ok ok = { .checkpoint_id = "cp-2", .seq = 5 };
	struct proto_msg m;
	char err[256];
	uint32_t id;

	if (proto_sync_read(c->s, 5000, NULL, &m, err, sizeof err) != 0 ||
	    strcmp(m.type, "local_checkpoint") != 0) {
		c->fail = "no local_checkpoint";
		proto_msg_free(&m);
		return NULL;
	}
	id = m.id;
	snprintf(c->checkpoint_gid, sizeof c->checkpoint_gid, "%s",
	    ((struct msg_local_checkpoint *)m.body)->gid);
	proto_msg_free(&m);
	proto_sync_send(c->s, "ok", 12345, &proto_t_ok_empty, &empty);	/* not for anyone: ignored */
	cts_save(c, "cp-2", "/images/g1/cp-2");
	proto_sync_send(c->s, "ok", id, proto_type_find("local_checkpoint")->reply, &ok);
	return NULL;
}

static void *
cts_refuse_thread(void *arg)
{
	struct cts *c = arg;
	struct proto_msg m;
	char err[256];
	uint8_t *frame;
	size_t len;

	if (proto_sync_read(c->s, 5000, NULL, &m, err, sizeof err) != 0) {
		c->fail = "no local_checkpoint";
		return NULL;
	}
	if (proto_encode_err(m.id, PROTO_E_BUSY, "a checkpoint of g1 is running", &frame, &len) == 0) {
		proto_sync_write_raw(c->s, frame, len);
		free(frame);
	}
	proto_msg_free(&m);
	return NULL;
}

/* The CTS after a restart: accepts the job's new connection, checks its local_bind, then asks
 * for a save on it. */
static void *
cts_reattach_thread(void *arg)
{
	struct cts *c = arg;
	struct msg_local_bind_ok ok = { .cts = "cts-1", .core_service = "app" };
	struct proto_msg m;
	char err[256];
	int fd = accept(c->listen_fd, NULL, NULL);

	if (fd < 0 || (c->s = proto_sync_from_fd(fd)) == NULL) {
		c->fail = "accept failed";
		return NULL;
	}
	if (proto_sync_read(c->s, 5000, NULL, &m, err, sizeof err) != 0 ||
	    strcmp(m.type, "local_bind") != 0) {
		c->fail = "no local_bind after re-connecting";
		proto_msg_free(&m);
		return NULL;
	}
	const struct msg_local_bind *b = m.body;
	snprintf(c->bind_gid, sizeof c->bind_gid, "%s", b->gid);
	c->bind_pid = b->pid;
	c->bind_recovery = b->recovery;
	proto_sync_send(c->s, "ok", m.id, proto_type_find("local_bind")->reply, &ok);
	proto_msg_free(&m);
	cts_save(c, "cp-3", "/images/g1/cp-3");
	return NULL;
}

/* A socketpair: one end is GCA_APP_FD, the other the CTS's. */
static void
setup_pair(struct cts *c)
{
	int sv[2];
	char fd[16];

	memset(c, 0, sizeof *c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(fd, sizeof fd, "%d", sv[0]);
	setenv("GCA_APP_FD", fd, 1);
	setenv("GCA_GID", "g1", 1);
	unsetenv("GCA_RESTORE_DIR");
	unsetenv("GCA_CTS_SOCKET");
	c->s = proto_sync_from_fd(sv[1]);
}

static void
test_app_save_is_served(void **state)
{
	struct job j = { 0 };
	struct cts c;
	pthread_t t;

	(void)state;
	setup_pair(&c);
	signal(SIGUSR2, SIG_DFL);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);
	/* dispositions are the job's: the CTS signals only a job that catches SIGUSR2, and an
	 * ignored signal would stay ignored in the programs the job runs */
	{
		struct sigaction sa;
		assert_int_equal(sigaction(SIGUSR2, NULL, &sa), 0);
		assert_true(sa.sa_handler == SIG_DFL);
	}
	assert_string_equal(gca_app_gid(), "g1");
	assert_true(gca_app_fd() >= 0);
	assert_null(getenv("GCA_APP_FD"));	/* not passed on to the job's children */
	pthread_create(&t, NULL, cts_save_thread, &c);
	assert_int_equal(gca_app_poll(500), 1);
	pthread_join(t, NULL);
	assert_null(c.fail);
	assert_int_equal(j.saves, 1);
	assert_string_equal(j.dir, "/images/g1/cp-1");
	assert_true(c.saved_ok);
	assert_string_equal(c.saved_id, "cp-1");
	assert_int_equal(gca_app_poll(0), 0);	/* nothing more */
	proto_sync_close(c.s);
}

static char incr_parent[64], incr_parent_dir[64];

static int
job_save_incr(const char *dir, const char *parent_id, const char *parent_dir, void *arg)
{
	struct job *j = arg;

	j->saves++;
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	snprintf(incr_parent, sizeof incr_parent, "%s", parent_id);
	snprintf(incr_parent_dir, sizeof incr_parent_dir, "%s", parent_dir);
	return 1;	/* only what changed */
}

/* An offered parent goes to save_incr when there is one, and its answer names the parent. */
static void
test_incremental_save_names_its_parent(void **state)
{
	struct job j = { 0 };
	struct cts c;
	pthread_t t;

	(void)state;
	setup_pair(&c);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);
	/* without save_incr: a full save, no parent */
	pthread_create(&t, NULL, cts_save_incr_thread, &c);
	assert_int_equal(gca_app_poll(500), 1);
	pthread_join(t, NULL);
	assert_null(c.fail);
	assert_true(c.saved_ok);
	assert_string_equal(c.saved_parent, "");
	gca_app_incremental(job_save_incr);
	pthread_create(&t, NULL, cts_save_incr_thread, &c);
	assert_int_equal(gca_app_poll(500), 1);
	pthread_join(t, NULL);
	gca_app_incremental(NULL);
	assert_null(c.fail);
	assert_true(c.saved_ok);
	assert_int_equal(j.saves, 2);
	assert_string_equal(incr_parent, "cp-1");
	assert_string_equal(incr_parent_dir, "/staging/cp-3.parent");
	assert_string_equal(c.saved_parent, "cp-1");
	proto_sync_close(c.s);
}

static void
test_failing_save_says_why(void **state)
{
	struct job j = { .result = -1, .err = ENOSPC };
	struct cts c;
	pthread_t t;

	(void)state;
	setup_pair(&c);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);
	pthread_create(&t, NULL, cts_save_thread, &c);
	assert_int_equal(gca_app_poll(300), 1);
	pthread_join(t, NULL);
	assert_null(c.fail);
	assert_false(c.saved_ok);
	assert_string_equal(c.saved_id, "cp-1");
	assert_non_null(strstr(c.saved_error, "save function failed"));
	assert_non_null(strstr(c.saved_error, strerror(ENOSPC)));
	proto_sync_close(c.s);
}

static void
test_job_checkpoint_serves_the_save_meanwhile(void **state)
{
	struct job j = { 0 };
	struct cts c;
	pthread_t t;
	char id[64], err[256];
	uint64_t seq = 0;

	(void)state;
	setup_pair(&c);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);
	pthread_create(&t, NULL, cts_checkpoint_thread, &c);
	assert_int_equal(gca_app_checkpoint(id, sizeof id, &seq, err, sizeof err), 0);
	pthread_join(t, NULL);
	assert_null(c.fail);
	assert_string_equal(c.checkpoint_gid, "g1");
	assert_int_equal(j.saves, 1);
	assert_string_equal(j.dir, "/images/g1/cp-2");
	assert_true(c.saved_ok);
	assert_string_equal(id, "cp-2");
	assert_int_equal(seq, 5);

	/* a refusal comes back as the CTS's words */
	pthread_create(&t, NULL, cts_refuse_thread, &c);
	assert_int_equal(gca_app_checkpoint(id, sizeof id, &seq, err, sizeof err), -1);
	pthread_join(t, NULL);
	assert_non_null(strstr(err, "busy"));
	assert_non_null(strstr(err, "a checkpoint of g1 is running"));
	proto_sync_close(c.s);
}

static void
test_restore_runs_before_init_returns(void **state)
{
	struct job j = { 0 };
	struct cts c;

	(void)state;
	setup_pair(&c);
	setenv("GCA_RESTORE_DIR", "/images/g1/cp-1", 1);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);
	assert_int_equal(j.restores, 1);
	assert_string_equal(j.dir, "/images/g1/cp-1");
	assert_null(getenv("GCA_RESTORE_DIR"));

	/* a failing restore: init says so, the job should exit non-zero */
	proto_sync_close(c.s);
	setup_pair(&c);
	setenv("GCA_RESTORE_DIR", "/images/g1/cp-1", 1);
	j.result = -1;
	assert_int_equal(gca_app_init(job_save, job_restore, &j), -1);
	assert_int_equal(j.restores, 2);
	setenv("GCA_RESTORE_DIR", "/images/g1/cp-1", 1);
	assert_int_equal(gca_app_init(job_save, NULL, &j), -1);	/* no restore function */
	proto_sync_close(c.s);
	unsetenv("GCA_RESTORE_DIR");
}

static void
test_without_gca_the_job_just_runs(void **state)
{
	struct job j = { 0 };
	char id[64], err[256];
	uint64_t seq;
	uint64_t t0;

	(void)state;
	unsetenv("GCA_APP_FD");
	unsetenv("GCA_GID");
	unsetenv("GCA_RESTORE_DIR");
	unsetenv("GCA_CTS_SOCKET");
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);
	assert_int_equal(gca_app_fd(), -1);
	assert_null(gca_app_gid());
	t0 = time_mono_ms();
	assert_int_equal(gca_app_poll(50), 0);		/* still a sleep */
	assert_true(time_mono_ms() - t0 >= 45);
	assert_int_equal(gca_app_checkpoint(id, sizeof id, &seq, err, sizeof err), -1);
	assert_non_null(strstr(err, "GCA_APP_FD is not set"));
	assert_int_equal(j.saves + j.restores, 0);

	setenv("GCA_APP_FD", "987", 1);		/* a descriptor that is not open */
	setenv("GCA_GID", "g1", 1);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), -1);
	unsetenv("GCA_APP_FD");
}

static void
test_reattach_after_the_cts_restarted(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/gca-app.XXXXXX";
	struct job j = { 0 };
	struct cts c, c2;
	pthread_t t;

	(void)state;
	setup_pair(&c);
	assert_non_null(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/cts.sock", dir);
	setenv("GCA_CTS_SOCKET", sun.sun_path, 1);
	assert_int_equal(gca_app_init(job_save, job_restore, &j), 0);

	memset(&c2, 0, sizeof c2);
	c2.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(c2.listen_fd, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(listen(c2.listen_fd, 4), 0);
	proto_sync_close(c.s);		/* the CTS went away */
	pthread_create(&t, NULL, cts_reattach_thread, &c2);
	assert_int_equal(gca_app_poll(3000), 1);	/* EOF, a second, re-attach, serve */
	pthread_join(t, NULL);
	assert_null(c2.fail);
	assert_string_equal(c2.bind_gid, "g1");
	assert_int_equal(c2.bind_pid, (uint64_t)getpid());
	assert_false(c2.bind_recovery);
	assert_true(c2.saved_ok);
	assert_string_equal(c2.saved_id, "cp-3");
	assert_string_equal(j.dir, "/images/g1/cp-3");
	proto_sync_close(c2.s);
	close(c2.listen_fd);
	unlink(sun.sun_path);
	rmdir(dir);
	unsetenv("GCA_CTS_SOCKET");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_app_save_is_served),
		cmocka_unit_test(test_failing_save_says_why),
		cmocka_unit_test(test_incremental_save_names_its_parent),
		cmocka_unit_test(test_job_checkpoint_serves_the_save_meanwhile),
		cmocka_unit_test(test_restore_runs_before_init_returns),
		cmocka_unit_test(test_without_gca_the_job_just_runs),
		cmocka_unit_test(test_reattach_after_the_cts_restarted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
