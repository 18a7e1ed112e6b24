/*
 * The CTS's network process (docs/ARCHITECTURE.md, "The privilege line"). Everything that reads
 * bytes from the network (TLS handshakes, the GCS link's frames, image fetches served and made,
 * replica pushes) runs in `gca-cts-net`: the same binary executed again with --net, as the
 * unprivileged net_user (cts.conf, default gca), without capabilities, with no_new_privs,
 * chrooted into STATE/net (root's, empty but for copies of the site CA and CRL). It never holds
 * the signing key: a fresh exec carries none of the parent's memory.
 *
 * The root parent binds the TLS port (so a restarted network process keeps it) and talks to the
 * network process over a SOCK_SEQPACKET socketpair (proto/relay.c): net_accepted + a descriptor,
 * and net_refused naming one of the reasons the metrics count, are the only messages it takes. Anything else, a malformed or oversized message, or more than
 * one descriptor, and the parent says why, kills the network process and starts another (after
 * 250 ms, doubling to 30 s while it keeps failing). Nothing acknowledged is lost: records wait in
 * the outbox on disk and the GCS link connects again.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>

#include "cts/cts.h"
#include "proto/metrics.h"

#define NET_BACKOFF_MIN_MS	250
#define NET_BACKOFF_MAX_MS	30000

/* One network process per CTS (one CTS per process). */
static struct {
	struct cts	*cts;
	pid_t		 pid;
	int		 ctl, listen_fd, port;
	struct event	*ctl_ev, *restart, *trust;
	int		 backoff_ms;
	uint64_t	 started_ms;
	char		*root, *user;
	struct stat	 ca_seen, crl_seen;
} net = { .pid = -1, .ctl = -1, .listen_fd = -1 };

int
net_port(void)
{
	return net.port;
}

pid_t
net_pid(void)
{
	return net.pid;
}

/* The TLS port, bound by the parent (as root: a port under 1024 works) and kept across restarts
 * of the network process, which only accepts on it. */
static int
net_bind(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t gl = sizeof ss;
	int sslen = sizeof ss, one = 1, fd;
	const char *colon = strrchr(addr, ':');
	char buf[300];
	bool any_port = colon != NULL && strcmp(colon, ":0") == 0;

	/* libevent refuses port 0; "host:0" means "pick a free port", as bind() does */
	snprintf(buf, sizeof buf, "%.*s%s", colon ? (int)(colon - addr) : 0, addr,
	    any_port ? ":1" : colon ? colon : "");
	if (colon == NULL || evutil_parse_sockaddr_port(buf, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "\"%s\" is not an address:port", addr);
		return -1;
	}
	if (any_port) {
		if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = 0;
		else
			((struct sockaddr_in *)&ss)->sin_port = 0;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &gl) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	net.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* One file into the chroot (temp, rename): the CA and CRL the network process checks peers with,
 * as the operator last wrote them; a CRL removed is removed there too. */
static void
net_copy_in(const char *from, const char *name, struct stat *seen)
{
	char to[PATH_MAX], tmp[PATH_MAX + 8], *data = NULL;
	struct stat st;
	size_t len;

	snprintf(to, sizeof to, "%s/%s", net.root, name);
	if (stat(from, &st) != 0)
		memset(&st, 0, sizeof st);
	if (st.st_ino == seen->st_ino && st.st_dev == seen->st_dev && st.st_size == seen->st_size &&
	    st.st_mtim.tv_sec == seen->st_mtim.tv_sec && st.st_mtim.tv_nsec == seen->st_mtim.tv_nsec)
		return;
	*seen = st;
	if (st.st_ino == 0) {
		unlink(to);
		return;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", to);
	if (file_read_all(from, &data, &len, 64 * 1024 * 1024) != 0 ||
	    file_write_whole(tmp, data, len, 0644) != 0 || chmod(tmp, 0644) != 0 ||
	    rename(tmp, to) != 0) {
		log_error("cannot copy %s into %s: %s", from, net.root, strerror(errno));
		unlink(tmp);
		memset(seen, 0, sizeof *seen);	/* tried again at the next second */
	}
	free(data);
}

static void
net_sync_trust(void)
{
	char *crl = tls_crl_path(net.cts->ca_file);

	net_copy_in(net.cts->ca_file, "ca.crt", &net.ca_seen);
	if (crl != NULL)
		net_copy_in(crl, "ca.crl", &net.crl_seen);
	free(crl);
}

static void
net_on_trust(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	net_sync_trust();
}

/* STATE/net: root's, 0755, the network process's root directory. */
static int
net_make_root(struct cts *c, char *err, size_t errlen)
{
	struct stat st;

	xasprintf(&net.root, "%s/net", c->state);
	if ((mkdir(net.root, 0755) != 0 && errno != EEXIST) || lstat(net.root, &st) != 0 ||
	    !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || chmod(net.root, 0755) != 0) {
		snprintf(err, errlen, "%s: cannot make it the network process's root (a folder of "
		    "this CTS's user): %s", net.root, errno ? strerror(errno) : "not ours");
		return -1;
	}
	return 0;
}

static void net_on_ctl(evutil_socket_t fd, short what, void *arg);

static int
net_spawn(void)
{
	struct cts *c = net.cts;
	char frame[32], hs[32], maxhs[32];
	int sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
		log_error("cannot make the network process's socketpair: %s", strerror(errno));
		return -1;
	}
	snprintf(frame, sizeof frame, "%d", PROTO_MAX_FRAME);
	snprintf(hs, sizeof hs, "%d", c->handshake_timeout_ms);
	snprintf(maxhs, sizeof maxhs, "%d", c->max_handshakes);
	if ((pid = fork()) < 0) {
		log_error("cannot start the network process: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0) {
		char ca[PATH_MAX];
		char *argv[] = { "gca-cts-net", "--net", net.root, ca, c->cert_file, c->key_file,
			net.user, frame, hs, maxhs, NULL };
		int a = fcntl(sp[1], F_DUPFD, 10), b = fcntl(net.listen_fd, F_DUPFD, 10);

		snprintf(ca, sizeof ca, "%s/ca.crt", net.root);
		if (a < 0 || b < 0 || dup2(a, 3) != 3 || dup2(b, 4) != 4)
			_exit(127);
		syscall(SYS_close_range, 5, ~0U, 0);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(sp[1]);
	net.pid = pid;
	net.ctl = sp[0];
	net.started_ms = time_mono_ms();
	evutil_make_socket_nonblocking(net.ctl);
	net.ctl_ev = event_new(c->base, net.ctl, EV_READ | EV_PERSIST, net_on_ctl, NULL);
	event_add(net.ctl_ev, NULL);
	proto_relay_via(net.ctl);
	log_info("network process %d started (user %s, root %s)", (int)pid, net.user, net.root);
	return 0;
}

/* Stops the network process (SIGKILL: it holds nothing to save) and reaps it. */
static void
net_stop(void)
{
	int status;

	proto_relay_via(-2);	/* down: connections are refused, never made as root */
	if (net.ctl_ev != NULL)
		event_free(net.ctl_ev);
	net.ctl_ev = NULL;
	if (net.ctl >= 0)
		close(net.ctl);
	net.ctl = -1;
	if (net.pid > 0) {
		kill(net.pid, SIGKILL);
		while (waitpid(net.pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	net.pid = -1;
}

static void
net_on_restart(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv;

	(void)fd;
	(void)what;
	(void)arg;
	net_sync_trust();
	if (net_spawn() == 0)
		return;
	tv = (struct timeval){ net.backoff_ms / 1000, (net.backoff_ms % 1000) * 1000 };
	evtimer_add(net.restart, &tv);
}

/* The network process misbehaved or died: a new one, after the back-off. */
static void
net_restart(const char *why)
{
	struct timeval tv;

	if (time_mono_ms() - net.started_ms > 10000)
		net.backoff_ms = NET_BACKOFF_MIN_MS;
	log_error("network process %d: %s; killing it, a new one in %d ms", (int)net.pid, why,
	    net.backoff_ms);
	net_stop();
	tv = (struct timeval){ net.backoff_ms / 1000, (net.backoff_ms % 1000) * 1000 };
	evtimer_add(net.restart, &tv);
	net.backoff_ms = net.backoff_ms * 2 > NET_BACKOFF_MAX_MS ? NET_BACKOFF_MAX_MS :
	    net.backoff_ms * 2;
}

/* The reasons a handshake is refused for (proto/metrics.h), the only names net_refused carries. */
static bool
net_refusal_known(const char *why)
{
	static const char *const known[] = { "no_role", "certificate", "no_certificate",
		"tls_error", "handshake_timeout", "handshake_budget" };

	for (size_t i = 0; i < GCA_NITEMS(known); i++) {
		if (strcmp(why, known[i]) == 0)
			return true;
	}
	return false;
}

/* The check net_on_ctl makes on each control message (tests/fuzz/fuzz_ctl.c runs it on any bytes):
 * NET_CTL_TAKE for net_accepted {role, name} + a descriptor, a TLS peer for the CTS's handlers;
 * NET_CTL_REFUSED for net_refused {name} without one, a handshake refused there (a known reason);
 * -1 for anything else, with why. It only looks: the caller acts. */
int
net_ctl_check(const struct proto_msg *m, int fd, char *why, size_t len)
{
	const struct msg_net *b = m->body;

	if (strcmp(m->type, "net_refused") == 0 && fd < 0 && b->name != NULL &&
	    net_refusal_known(b->name))
		return NET_CTL_REFUSED;
	if (strcmp(m->type, "net_accepted") != 0) {
		snprintf(why, len, "it sent %s, which is not net_accepted", m->type);
		return -1;
	}
	if (fd < 0 || b->role == NULL || b->name == NULL || proto_role_bit(b->role) == 0 ||
	    strcmp(b->role, "local") == 0) {
		snprintf(why, len, "it sent net_accepted without a descriptor, a role or a name");
		return -1;
	}
	return NET_CTL_TAKE;
}

/* A checked control message acted on: the peer served by the CTS's handlers, or the refusal
 * counted in the CTS's metrics. */
static int
net_accepted(const struct proto_msg *m, int fd, char *why, size_t len)
{
	const struct msg_net *b = m->body;
	struct proto_peer peer = { 0 };
	int rc = net_ctl_check(m, fd, why, len);

	if (rc == NET_CTL_REFUSED) {
		metrics_tls_refused(b->name);
		return 0;
	}
	if (rc != NET_CTL_TAKE)
		return -1;
	snprintf(peer.role, sizeof peer.role, "%s", b->role);
	snprintf(peer.name, sizeof peer.name, "%s", b->name);
	proto_server_take(net.cts->server, fd, &peer);
	return 0;
}

static void
net_on_ctl(evutil_socket_t fd, short what, void *arg)
{
	struct proto_msg m;
	char err[512], why[600];
	int rc, got;

	(void)what;
	(void)arg;
	while ((rc = proto_relay_recv(fd, NET_CTL_MAX, &m, &got, err, sizeof err)) == 0) {
		if (net_accepted(&m, got, why, sizeof why) != 0) {
			proto_msg_free(&m);
			if (got >= 0)
				close(got);
			net_restart(why);
			return;
		}
		proto_msg_free(&m);
	}
	if (rc < 0) {
		if (strcmp(err, "closed") == 0)
			snprintf(why, sizeof why, "it exited (its control socket closed)");
		else
			snprintf(why, sizeof why, "it sent %s on its control socket", err);
		net_restart(why);
	}
}

int
net_open(struct cts *c, const struct config *cf, char *err, size_t errlen)
{
	const char *user = config_get(cf, "net_user") ? config_get(cf, "net_user") : "gca";

	net.cts = c;
	net.backoff_ms = NET_BACKOFF_MIN_MS;
	if (geteuid() != 0) {
		/* a CTS run by an ordinary user (a developer's site): no user to become, no chroot;
		 * the network process is still apart, with no_new_privs and the seccomp filter */
		log_warn("not root: the network process runs as this CTS's user, not chrooted");
		user = "-";
	} else if (getpwnam(user) == NULL) {
		snprintf(err, errlen, "net_user %s: no such user (the CTS's network process runs as "
		    "it; make it with useradd --system %s, or name another in cts.conf)", user, user);
		return -1;
	}
	net.user = xstrdup(user);
	if (net_make_root(c, err, errlen) != 0)
		return -1;
	if ((net.listen_fd = net_bind(c->listen, err, errlen)) < 0)
		return -1;
	net_sync_trust();
	net.restart = evtimer_new(c->base, net_on_restart, NULL);
	net.trust = event_new(c->base, -1, EV_PERSIST, net_on_trust, NULL);
	event_add(net.trust, &(struct timeval){ 1, 0 });
	if (net_spawn() != 0) {
		snprintf(err, errlen, "cannot start the network process");
		return -1;
	}
	return 0;
}

void
net_close(struct cts *c)
{
	(void)c;
	net_stop();
	if (net.restart != NULL)
		event_free(net.restart);
	if (net.trust != NULL)
		event_free(net.trust);
	net.restart = net.trust = NULL;
	if (net.listen_fd >= 0)
		close(net.listen_fd);
	net.listen_fd = -1;
	free(net.root);
	free(net.user);
	net.root = net.user = NULL;
}

/* ---- the network process itself ---- */

/* No way back: the bounding set emptied (while still root), no ambient capabilities, the user's
 * ids (which clears permitted and effective), no_new_privs. */
static int
net_drop(const struct passwd *pw, char *err, size_t errlen)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
			snprintf(err, errlen, "cannot drop capability %d: %s", cap, strerror(errno));
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		snprintf(err, errlen, "cannot clear ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
		snprintf(err, errlen, "cannot become %s: %s", pw->pw_name, strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "could become root again after dropping privileges");
		return -1;
	}
	return 0;
}

/*
 * The system calls the network process makes once it serves (libevent's epoll loop, OpenSSL,
 * sockets it is given or makes, the CRL it re-reads); any other fails with EPERM: no exec, no
 * ptrace, no file written, no new privileges. A sanitizer build goes without it (its runtime
 * makes calls of its own), and so does an architecture not listed.
 */
#if defined(__x86_64__)
#define NET_AUDIT_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NET_AUDIT_ARCH	AUDIT_ARCH_AARCH64
#endif
#define NET_ALLOW(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static int
net_seccomp(char *err, size_t errlen)
{
#if defined(NET_AUDIT_ARCH) && !defined(__SANITIZE_ADDRESS__)
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NET_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		NET_ALLOW(__NR_read), NET_ALLOW(__NR_write), NET_ALLOW(__NR_readv),
		NET_ALLOW(__NR_writev), NET_ALLOW(__NR_close), NET_ALLOW(__NR_fstat),
		NET_ALLOW(__NR_newfstatat), NET_ALLOW(__NR_statx), NET_ALLOW(__NR_openat),
		NET_ALLOW(__NR_lseek), NET_ALLOW(__NR_pread64), NET_ALLOW(__NR_mmap),
		NET_ALLOW(__NR_munmap), NET_ALLOW(__NR_mremap), NET_ALLOW(__NR_mprotect),
		NET_ALLOW(__NR_brk), NET_ALLOW(__NR_madvise), NET_ALLOW(__NR_rt_sigaction),
		NET_ALLOW(__NR_rt_sigprocmask), NET_ALLOW(__NR_rt_sigreturn), NET_ALLOW(__NR_ioctl),
		NET_ALLOW(__NR_sendmsg), NET_ALLOW(__NR_recvmsg), NET_ALLOW(__NR_sendto),
		NET_ALLOW(__NR_recvfrom), NET_ALLOW(__NR_socket), NET_ALLOW(__NR_connect),
		NET_ALLOW(__NR_accept), NET_ALLOW(__NR_accept4), NET_ALLOW(__NR_shutdown),
		NET_ALLOW(__NR_getsockname), NET_ALLOW(__NR_getpeername), NET_ALLOW(__NR_socketpair),
		NET_ALLOW(__NR_setsockopt), NET_ALLOW(__NR_getsockopt), NET_ALLOW(__NR_fcntl),
		NET_ALLOW(__NR_epoll_create1), NET_ALLOW(__NR_epoll_ctl), NET_ALLOW(__NR_epoll_pwait),
		NET_ALLOW(__NR_ppoll), NET_ALLOW(__NR_pselect6), NET_ALLOW(__NR_eventfd2),
		NET_ALLOW(__NR_pipe2), NET_ALLOW(__NR_clock_gettime), NET_ALLOW(__NR_clock_getres),
		NET_ALLOW(__NR_gettimeofday), NET_ALLOW(__NR_nanosleep),
		NET_ALLOW(__NR_clock_nanosleep), NET_ALLOW(__NR_getpid), NET_ALLOW(__NR_gettid),
		NET_ALLOW(__NR_getppid), NET_ALLOW(__NR_futex), NET_ALLOW(__NR_getrandom),
		NET_ALLOW(__NR_exit), NET_ALLOW(__NR_exit_group), NET_ALLOW(__NR_tgkill),
		NET_ALLOW(__NR_sched_yield), NET_ALLOW(__NR_restart_syscall), NET_ALLOW(__NR_uname),
		NET_ALLOW(__NR_sysinfo), NET_ALLOW(__NR_timerfd_create),
		NET_ALLOW(__NR_timerfd_settime), NET_ALLOW(__NR_getuid), NET_ALLOW(__NR_geteuid),
		NET_ALLOW(__NR_getgid), NET_ALLOW(__NR_getegid),
#ifdef __NR_epoll_wait
		NET_ALLOW(__NR_epoll_wait),
#endif
#ifdef __NR_poll
		NET_ALLOW(__NR_poll), NET_ALLOW(__NR_select), NET_ALLOW(__NR_open),
		NET_ALLOW(__NR_stat), NET_ALLOW(__NR_lstat), NET_ALLOW(__NR_pipe),
		NET_ALLOW(__NR_epoll_create), NET_ALLOW(__NR_time),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
		snprintf(err, errlen, "cannot install the seccomp filter: %s", strerror(errno));
		return -1;
	}
#else
	(void)err;
	(void)errlen;
#endif
	return 0;
}

/* gca-cts-net ROOT CA CERT KEY USER MAX_FRAME HANDSHAKE_MS MAX_HANDSHAKES, fds 3 (control) and 4
 * (the TLS port): started by net_spawn only. */
int
net_main(int argc, char **argv)
{
	struct proto_tls_files tls;
	struct proto_relay_config cfg = { .ctl = 3, .listen_fd = 4 };
	struct proto_relay *r;
	struct event_base *base;
	struct passwd *pw = NULL;
	char err[512];
	bool confined;

	log_init("gca-cts-net");
	prctl(PR_SET_NAME, "gca-cts-net", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);	/* never outlives its parent */
	if (argc != 10)
		log_fatal("--net: started by gca-cts only");
	if (getppid() == 1)
		_exit(0);	/* the parent died before PDEATHSIG was set: quietly, its log is its own */
	signal(SIGPIPE, SIG_IGN);
	tls = (struct proto_tls_files){ argv[3], argv[4], argv[5] };
	cfg.max_frame = strtoul(argv[7], NULL, 10);
	cfg.handshake_timeout_ms = atoi(argv[8]);
	cfg.max_handshakes = atoi(argv[9]);
	confined = strcmp(argv[6], "-") != 0;	/* "-": the CTS is not root (net_open) */
	if (confined && (pw = getpwnam(argv[6])) == NULL)
		log_fatal("net_user %s: no such user", argv[6]);
	base = event_base_new();
	if ((r = proto_relay_new(base, &cfg, &tls, err, sizeof err)) == NULL)
		log_fatal("%s", err);
	if (confined && (chroot(argv[2]) != 0 || chdir("/") != 0))
		log_fatal("cannot chroot into %s: %s", argv[2], strerror(errno));
	if (confined && net_drop(pw, err, sizeof err) != 0)
		log_fatal("%s", err);
	if (!confined && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		log_fatal("cannot set no_new_privs: %s", strerror(errno));
	if (confined)
		proto_relay_chroot(r, argv[2]);
	if (proto_relay_start(r, err, sizeof err) != 0 || net_seccomp(err, sizeof err) != 0)
		log_fatal("%s", err);
	event_base_dispatch(base);
	proto_relay_free(r);
	event_base_free(base);
	/* no atexit handlers: chrooted, a leak checker's walk of /proc would only fail */
	_exit(0);
}
