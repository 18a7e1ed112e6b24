/*
 * gca-gate: the Virtual Node Gate, the guest side (issue 9). It runs in the VM the VMM core
 * service checkpoints, on the virtio-serial port named gca.gate, and runs one job for the host's
 * wrapper (vmm-ready-job-executor, vmm-ready-job-resumer): it starts the command, streams its
 * output, passes signals to it and reports its exit status.
 *
 *   gca-gate [PORT]        PORT: a /dev/vportNpM; default: the one /sys/class/virtio-ports names
 *                          gca.gate (there is no udev in the guest)
 *
 * It lives here, beside the other guest programs, because it is built for the guest by the suite
 * (no libgca: it only needs libc, so the initramfs stays small) and is not installed on hosts.
 *
 * The protocol is lines of words; words are percent-encoded (%XX) where they hold anything but
 * [A-Za-z0-9._/=:,+@-]. Every request carries an id the host makes (RID) and every answer repeats
 * it, so an answer to a request sent before a checkpoint, delivered to the wrapper that resumed
 * the VM, is never taken for the answer to that wrapper's own request.
 *
 *   host:  hello RID               -> hello RID JOBID running|exited|none CODE
 *          run RID ARG...          -> ok RID JOBID | err RID WHY   (one job per VM)
 *          kill RID SIG            -> ok RID | err RID WHY         (to the job's process group)
 *          clock RID SEC NSEC      -> ok RID | err RID WHY         (CLOCK_REALTIME: a restored
 *                                     guest's clock lags by the time it was stopped)
 *          resumed RID CKPT        -> ok RID  (the VM was resumed from checkpoint CKPT: every job
 *                                     request for a checkpoint still waiting gets "restored CKPT")
 *          ckpt-ok GRID CKPT       the answer to ckpt GRID | ckpt-err GRID WHY
 *   guest: out JOBID HEX           the job's output (stdout and stderr), in order
 *          exit JOBID CODE         its exit status, or 128+N if signal N killed it
 *          ckpt GRID               the job asks for a checkpoint of itself (GRID: the guest's id)
 *
 * A job asks with `gca-gate checkpoint` (GCA_GATE_SOCKET, a unix socket in the guest): it prints
 * "checkpoint ID" once the checkpoint is recorded, or "restored ID" in a VM resumed from it, like
 * a process that forks into the saved copy and the running one.
 *
 * While no host is connected the port polls POLLHUP and reads give EOF: the gate then writes
 * nothing and stops reading the job's output, so the job blocks on a full pipe instead of losing
 * output. A frame in the port's queue at checkpoint time goes with the image.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GATE_OUT_MAX	(64 * 1024)	/* bytes queued for the host before the job is not read */
#define GATE_IN_MAX	(64 * 1024)	/* a longer request line is refused */
#define GATE_CHUNK	2048		/* job output bytes per out frame */
#define GATE_CLIENTS	8		/* jobs waiting for a checkpoint at once */
#define GATE_SOCKET	"/run/gca-gate.sock"

/* A job waiting for its checkpoint. */
struct gate_client {
	int		 fd;		/* -1: free */
	unsigned	 grid;		/* 0 until it asked */
	char		 line[64];
	size_t		 len;
};

static struct {
	int	 port;
	bool	 host;			/* a host is connected */
	char	 in[GATE_IN_MAX];
	size_t	 inlen;
	char	*out;			/* frames to the host */
	size_t	 outlen, outcap;
	pid_t	 job;
	char	 jobid[128];
	int	 pipe;			/* the job's output, -1 when drained */
	bool	 exited;
	int	 code;
	int	 listen;		/* GATE_SOCKET, for jobs' checkpoint requests */
	struct gate_client clients[GATE_CLIENTS];
	unsigned next_grid;
} g = { .port = -1, .pipe = -1, .listen = -1 };

static void
gate_queue(const char *s, size_t n)
{
	if (g.outlen + n > g.outcap) {
		size_t cap = g.outcap ? g.outcap : 4096;
		while (cap < g.outlen + n)
			cap *= 2;
		if ((g.out = realloc(g.out, cap)) == NULL)
			abort();
		g.outcap = cap;
	}
	memcpy(g.out + g.outlen, s, n);
	g.outlen += n;
}

static void
gate_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
gate_printf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof buf)
		n = sizeof buf - 1;
	gate_queue(buf, (size_t)n);
}

/* Decodes %XX in place. */
static void
gate_unescape(char *s)
{
	char *d = s;
	unsigned x;

	for (; *s != '\0'; s++) {
		if (*s == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &x) == 1) {
			*d++ = (char)x;
			s += 2;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

/* A reason for the host, with spaces encoded. */
static void
gate_err(const char *rid, const char *why)
{
	gate_printf("err %s ", rid);
	for (const char *p = why; *p; p++) {
		if (*p == ' ' || *p == '%' || *p == '\n' || (unsigned char)*p < 32)
			gate_printf("%%%02X", (unsigned char)*p);
		else
			gate_queue(p, 1);
	}
	gate_queue("\n", 1);
}

static void
gate_run(const char *rid, char **argv)
{
	int p[2], null;
	pid_t pid;

	if (g.job != 0) {
		gate_err(rid, "a job already runs in this VM");
		return;
	}
	if (argv[0] == NULL) {
		gate_err(rid, "no command");
		return;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		gate_err(rid, strerror(errno));
		return;
	}
	if ((pid = fork()) == 0) {
		setsid();
		null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (chdir("/") != 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		setenv("GCA_GATE_SOCKET", GATE_SOCKET, 1);
		execvp(argv[0], argv);
		dprintf(2, "gca-gate: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		gate_err(rid, strerror(errno));
		return;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	g.job = pid;
	g.pipe = p[0];
	snprintf(g.jobid, sizeof g.jobid, "%s", rid);
	gate_printf("ok %s %s\n", rid, g.jobid);
}

/* Answers the job waiting on grid (0: every one that asked) and lets it go. */
static void
gate_client_answer(unsigned grid, const char *what, const char *id)
{
	for (int i = 0; i < GATE_CLIENTS; i++) {
		struct gate_client *c = &g.clients[i];
		if (c->fd < 0 || c->grid == 0 || (grid != 0 && c->grid != grid))
			continue;
		dprintf(c->fd, "%s %s\n", what, id);
		close(c->fd);
		c->fd = -1;
	}
}

static void
gate_client_accept(void)
{
	int fd = accept4(g.listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (int i = 0; i < GATE_CLIENTS; i++) {
		if (g.clients[i].fd < 0) {
			g.clients[i] = (struct gate_client){ .fd = fd };
			return;
		}
	}
	dprintf(fd, "error too many checkpoint requests at once\n");
	close(fd);
}

/* "checkpoint\n" from a job: passed to the host as ckpt gN. */
static void
gate_client_read(struct gate_client *c)
{
	ssize_t n = read(c->fd, c->line + c->len, sizeof c->line - 1 - c->len);

	if (n <= 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->len += (size_t)n;
	c->line[c->len] = '\0';
	if (c->grid != 0 || strchr(c->line, '\n') == NULL)
		return;
	if (strncmp(c->line, "checkpoint\n", 11) != 0) {
		dprintf(c->fd, "error unknown request\n");
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->grid = ++g.next_grid;
	gate_printf("ckpt g%u\n", c->grid);
}

static void
gate_request(char *line)
{
	char *w[256], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(line, " ", &save); t && n < 255; t = strtok_r(NULL, " ", &save))
		w[n++] = t;
	w[n] = NULL;
	if (n < 2)
		return;		/* nothing to answer to */
	for (int i = 1; i < n; i++)
		gate_unescape(w[i]);
	if (strcmp(w[0], "hello") == 0) {
		gate_printf("hello %s %s %s %d\n", w[1], g.job ? g.jobid : "-",
		    g.job == 0 ? "none" : g.exited && g.pipe < 0 ? "exited" : "running", g.code);
	} else if (strcmp(w[0], "run") == 0) {
		gate_run(w[1], w + 2);
	} else if (strcmp(w[0], "kill") == 0 && n == 3) {
		if (g.job == 0 || g.exited)
			gate_err(w[1], "no job runs");
		else if (kill(-g.job, atoi(w[2])) != 0 && kill(g.job, atoi(w[2])) != 0)
			gate_err(w[1], strerror(errno));
		else
			gate_printf("ok %s\n", w[1]);
	} else if (strcmp(w[0], "clock") == 0 && n == 4) {
		struct timespec ts = { atol(w[2]), atol(w[3]) };
		if (clock_settime(CLOCK_REALTIME, &ts) != 0)
			gate_err(w[1], strerror(errno));
		else
			gate_printf("ok %s\n", w[1]);
	} else if (strcmp(w[0], "ckpt-ok") == 0 || strcmp(w[0], "ckpt-err") == 0) {
		gate_client_answer((unsigned)strtoul(w[1] + (w[1][0] == 'g'), NULL, 10),
		    strcmp(w[0], "ckpt-ok") == 0 ? "checkpoint" : "error", n > 2 ? w[2] : "?");
	} else if (strcmp(w[0], "resumed") == 0 && n == 3) {
		gate_client_answer(0, "restored", w[2]);
		gate_printf("ok %s\n", w[1]);
	} else {
		gate_err(w[1], "unknown request");
	}
}

static void
gate_read_port(void)
{
	ssize_t n = read(g.port, g.in + g.inlen, sizeof g.in - g.inlen - 1);
	char *nl;

	if (n == 0) {
		g.host = false;		/* no host on the other end */
		return;
	}
	if (n < 0)
		return;
	g.inlen += (size_t)n;
	while ((nl = memchr(g.in, '\n', g.inlen)) != NULL) {
		size_t len = (size_t)(nl - g.in) + 1;
		*nl = '\0';
		gate_request(g.in);
		memmove(g.in, g.in + len, g.inlen - len);
		g.inlen -= len;
	}
	if (g.inlen == sizeof g.in - 1)
		g.inlen = 0;	/* a line too long: dropped */
}

static void
gate_read_job(void)
{
	char buf[GATE_CHUNK];
	static const char hex[] = "0123456789abcdef";
	ssize_t n = read(g.pipe, buf, sizeof buf);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(g.pipe);
		g.pipe = -1;
		return;
	}
	if (n < 0)
		return;
	gate_printf("out %s ", g.jobid);
	for (ssize_t i = 0; i < n; i++) {
		char h[2] = { hex[(unsigned char)buf[i] >> 4], hex[buf[i] & 15] };
		gate_queue(h, 2);
	}
	gate_queue("\n", 1);
}

static void
gate_reap(void)
{
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p != g.job || g.exited)
			continue;
		g.exited = true;
		g.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

static int
gate_find_port(char *path, size_t len)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	char name[300], buf[64];
	FILE *f;
	int rc = -1;

	if (d == NULL)
		return -1;
	while (rc != 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(name, sizeof name, "/sys/class/virtio-ports/%s/name", e->d_name);
		if ((f = fopen(name, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof buf, f) && strcmp(buf, "gca.gate\n") == 0) {
			snprintf(path, len, "/dev/%s", e->d_name);
			rc = 0;
		}
		fclose(f);
	}
	closedir(d);
	return rc;
}

/* gca-gate checkpoint: a job's request, answered "checkpoint ID" or "restored ID". */
static int
gate_checkpoint_client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = getenv("GCA_GATE_SOCKET") ? getenv("GCA_GATE_SOCKET") : GATE_SOCKET;
	char line[512];
	ssize_t n;
	size_t len = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "gca-gate: cannot reach the gate at %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (write(fd, "checkpoint\n", 11) != 11)
		return 1;
	while (len < sizeof line - 1 && (n = read(fd, line + len, sizeof line - 1 - len)) > 0)
		len += (size_t)n;
	line[len] = '\0';
	fputs(line, stdout);
	return strncmp(line, "checkpoint ", 11) == 0 || strncmp(line, "restored ", 9) == 0 ? 0 : 1;
}

static void
gate_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	for (int i = 0; i < GATE_CLIENTS; i++)
		g.clients[i].fd = -1;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", GATE_SOCKET);
	unlink(GATE_SOCKET);
	g.listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (g.listen < 0 || bind(g.listen, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(g.listen, 8) != 0) {
		fprintf(stderr, "gca-gate: %s: %s (jobs cannot ask for checkpoints)\n", GATE_SOCKET,
		    strerror(errno));
		if (g.listen >= 0)
			close(g.listen);
		g.listen = -1;
	}
}

int
main(int argc, char **argv)
{
	char path[300];
	bool sent_exit = false;

	if (argc == 2 && strcmp(argv[1], "checkpoint") == 0)
		return gate_checkpoint_client();
	signal(SIGPIPE, SIG_IGN);
	gate_listen();
	if (argc > 1)
		snprintf(path, sizeof path, "%s", argv[1]);
	for (int i = 0; argc <= 1 && gate_find_port(path, sizeof path) != 0; i++) {
		if (i == 100) {
			fprintf(stderr, "gca-gate: no virtio-serial port named gca.gate (is "
			    "virtio_console loaded?)\n");
			return 1;
		}
		usleep(100000);
	}
	/* reads give EOF while no host is connected: open once and keep it */
	if ((g.port = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fprintf(stderr, "gca-gate: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "gca-gate: listening on %s\n", path);
	for (;;) {
		struct pollfd pf[3 + GATE_CLIENTS] = { { g.port, POLLIN, 0 }, { -1, POLLIN, 0 },
			{ g.listen, POLLIN, 0 } };

		gate_reap();
		if (g.exited && g.pipe < 0 && !sent_exit) {
			gate_printf("exit %s %d\n", g.jobid, g.code);
			sent_exit = true;
		}
		if (g.outlen > 0)
			pf[0].events |= POLLOUT;
		if (g.pipe >= 0 && g.outlen < GATE_OUT_MAX)
			pf[1].fd = g.pipe;
		for (int i = 0; i < GATE_CLIENTS; i++)
			pf[3 + i] = (struct pollfd){ g.clients[i].fd, POLLIN, 0 };
		if (poll(pf, 3 + GATE_CLIENTS, 100) < 0 && errno != EINTR)
			return 1;
		if (pf[2].revents & POLLIN)
			gate_client_accept();
		for (int i = 0; i < GATE_CLIENTS; i++)
			if (pf[3 + i].fd >= 0 && (pf[3 + i].revents & (POLLIN | POLLHUP)))
				gate_client_read(&g.clients[i]);
		/* POLLHUP: no host. Level-triggered, so the next look is after the poll timeout. */
		g.host = !(pf[0].revents & POLLHUP);
		if (!g.host) {
			g.inlen = 0;
			if (!(pf[1].revents & POLLIN))
				usleep(100000);
		}
		if (g.host && (pf[0].revents & POLLIN))
			gate_read_port();
		if (g.host && g.outlen > 0 && (pf[0].revents & POLLOUT)) {
			ssize_t n = write(g.port, g.out, g.outlen);
			if (n > 0) {
				memmove(g.out, g.out + n, g.outlen - (size_t)n);
				g.outlen -= (size_t)n;
			}
		}
		if (pf[1].fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP)))
			gate_read_job();
	}
}
