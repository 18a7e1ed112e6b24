/*
 * What gca-exec and gca-recover share (wrapper.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"
#include "wrappers/wrapper.h"

char *
wrapper_socket(const char *prog, const char *flag)
{
	const char *path = flag != NULL ? flag : getenv("GCA_CTS_SOCKET");
	char cwd[4096], *abs;

	if (path == NULL || *path == '\0') {
		fprintf(stderr, "%s: no CTS socket: give --cts or set GCA_CTS_SOCKET (gca-site writes "
		    "it in site.env)\n", prog);
		return NULL;
	}
	if (path[0] == '/')
		return xstrdup(path);
	/* Relative to where we were started, not to where the job may chdir. */
	if (getcwd(cwd, sizeof cwd) == NULL) {
		fprintf(stderr, "%s: cannot make the CTS socket %s absolute: %s\n", prog, path,
		    strerror(errno));
		return NULL;
	}
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return NULL;
	return abs;
}

struct proto_sync *
wrapper_connect(const char *prog, const char *socket)
{
	char endpoint[4200], err[512];
	struct proto_sync *s;

	snprintf(endpoint, sizeof endpoint, "unix:%s", socket);
	s = proto_sync_connect(endpoint, NULL, NULL, 10000, err, sizeof err);
	if (s == NULL)
		fprintf(stderr, "%s: cannot reach the CTS at %s: %s (is gca-cts running?)\n", prog,
		    socket, err);
	return s;
}

static bool
wrapper_env_name_valid(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static const char *
wrapper_var_find(const struct wrapper_var *vars, size_t nvars, const char *name, size_t n)
{
	for (size_t i = 0; i < nvars; i++)
		if (strlen(vars[i].name) == n && memcmp(vars[i].name, name, n) == 0)
			return vars[i].value != NULL ? vars[i].value : "";
	return NULL;
}

char *
wrapper_expand(const char *param, const struct wrapper_var *vars, size_t nvars, char *err,
    size_t errlen)
{
	const char *eq = strchr(param, '='), *p, *close, *val;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (eq == NULL) {
		snprintf(err, errlen, "parameter \"%s\" is not NAME=pattern", param);
		return NULL;
	}
	if (!wrapper_env_name_valid(param, eq - param)) {
		snprintf(err, errlen, "parameter \"%s\": \"%.*s\" is not an environment variable name",
		    param, (int)(eq - param), param);
		return NULL;
	}
	if ((f = open_memstream(&out, &len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fwrite(param, 1, eq - param + 1, f);
	for (p = eq + 1; *p != '\0'; p++) {
		if (*p != '{') {
			fputc(*p, f);
			continue;
		}
		if (p[1] == '{') {		/* "{{" is a literal '{' */
			fputc('{', f);
			p++;
			continue;
		}
		if ((close = strchr(p + 1, '}')) == NULL) {
			snprintf(err, errlen, "parameter \"%s\": '{' without '}'", param);
			goto fail;
		}
		if ((val = wrapper_var_find(vars, nvars, p + 1, close - p - 1)) == NULL) {
			snprintf(err, errlen, "parameter \"%s\": unknown placeholder {%.*s}", param,
			    (int)(close - p - 1), p + 1);
			goto fail;
		}
		fputs(val, f);
		p = close;
	}
	if (fclose(f) != 0) {
		snprintf(err, errlen, "out of memory");
		free(out);
		return NULL;
	}
	return out;
fail:
	fclose(f);
	free(out);
	return NULL;
}

int
wrapper_setenv(const char *assignment)
{
	const char *eq = strchr(assignment, '=');
	char *name;
	int rc;

	if (eq == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((name = strndup(assignment, eq - assignment)) == NULL)
		return -1;
	rc = setenv(name, eq + 1, 1);
	free(name);
	return rc;
}

int
wrapper_keep_fd(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -1;
	return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

int
wrapper_app_env(int fd, const char *gid, const char *socket)
{
	char buf[16];

	if (wrapper_keep_fd(fd) != 0)
		return -1;
	snprintf(buf, sizeof buf, "%d", fd);
	if (setenv("GCA_APP_FD", buf, 1) != 0 || setenv("GCA_GID", gid, 1) != 0 ||
	    setenv("GCA_CTS_SOCKET", socket, 1) != 0)
		return -1;
	return 0;
}

static struct sigaction wrapper_old_sigpipe;
static bool wrapper_sigpipe_saved;

void
wrapper_sigpipe_ignore(void)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };

	sigemptyset(&sa.sa_mask);
	if (!wrapper_sigpipe_saved && sigaction(SIGPIPE, &sa, &wrapper_old_sigpipe) == 0)
		wrapper_sigpipe_saved = true;
}

void
wrapper_sigpipe_restore(void)
{
	if (wrapper_sigpipe_saved)
		sigaction(SIGPIPE, &wrapper_old_sigpipe, NULL);
}

int
wrapper_bind(const char *prog, struct proto_sync *s, void *bind, void **ok, char *code,
    size_t codelen, char *msg, size_t msglen)
{
	const struct proto_type *pt = proto_type_find("local_bind");
	const char *env = getenv("GCA_BIND_WAIT");
	long wait_s = env != NULL ? strtol(env, NULL, 10) : 15;
	uint64_t until = time_mono_ms() + (uint64_t)(wait_s > 0 ? wait_s : 0) * 1000;
	bool said = false;

	for (;;) {
		if (proto_sync_call(s, "local_bind", pt, bind, ok, code, codelen, msg, msglen) == 0)
			return 0;
		/* busy: the CTS is not registered yet; but a connection refused over the per-uid cap
		 * is refused for good (its message says why) */
		if (strcmp(code, PROTO_E_BUSY) != 0 || proto_sync_refused(s) ||
		    time_mono_ms() >= until)
			return -1;
		if (!said) {
			fprintf(stderr, "%s: the CTS is not ready (%s); waiting up to %ld s\n", prog, msg,
			    wait_s);
			said = true;
		}
		usleep(200 * 1000);
	}
}

int
wrapper_every_parse(const char *prog, const char *s, uint64_t *ms)
{
	if (strcmp(s, "auto") == 0) {
		*ms = WRAPPER_EVERY_AUTO;
		return 0;
	}
	if (duration_parse(s, ms) != 0 || *ms == 0 || *ms == WRAPPER_EVERY_AUTO) {
		fprintf(stderr, "%s: bad --checkpoint-every \"%s\" (say 30s, 5m, 2h or auto)\n", prog,
		    s);
		return -1;
	}
	return 0;
}

/* ---- how the job ended ---- */

void
wrapper_report_exit(const char *prog, const char *socket, const char *gid, pid_t job, int status)
{
	const struct proto_type *pt = proto_type_find("local_exit");
	struct msg_local_exit m = { gid, (uint64_t)job, status };
	char endpoint[4200], err[512], code[64], msg[512];
	struct proto_sync *s;
	void *ok = NULL;

	snprintf(endpoint, sizeof endpoint, "unix:%s", socket);
	if ((s = proto_sync_connect(endpoint, NULL, NULL, 5000, err, sizeof err)) == NULL) {
		fprintf(stderr, "%s: cannot tell the CTS at %s that GID %s ended with status %d: %s\n",
		    prog, socket, gid, status, err);
		return;
	}
	if (proto_sync_call(s, "local_exit", pt, &m, &ok, code, sizeof code, msg, sizeof msg) != 0 &&
	    strcmp(code, PROTO_E_NOT_FOUND) != 0)	/* not found: it was unbound already */
		fprintf(stderr, "%s: the CTS did not take GID %s's exit status %d: %s (%s)\n", prog,
		    gid, status, msg, code);
	proto_body_free(pt->reply, ok);
	proto_sync_close(s);
}

int
wrapper_args_parse(const char *prog, int argc, char **argv, bool recovery,
    const char *const help[2], struct wrapper_args *a)
{
	/* two tables, not one with --checkpoint refused: getopt_long takes a prefix, and
	 * gca-exec's --checkpoint has always been --checkpoint-every's */
	static const struct option exec_opts[] = {
		{ "gid", required_argument, NULL, 'g' },
		{ "cts", required_argument, NULL, 'c' },
		{ "checkpoint-every", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option recover_opts[] = {
		{ "gid", required_argument, NULL, 'g' },
		{ "checkpoint", required_argument, NULL, 'k' },
		{ "cts", required_argument, NULL, 'c' },
		{ "checkpoint-every", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof *a);
	/* '+': the first non-option is the job; its own options are not ours. */
	while ((c = getopt_long(argc, argv, "+h", recovery ? recover_opts : exec_opts,
	    NULL)) != -1) {
		switch (c) {
		case 'g':
			a->gid = optarg;
			break;
		case 'k':
			a->checkpoint = optarg;
			break;
		case 'c':
			a->cts = optarg;
			break;
		case 'e':
			if (wrapper_every_parse(prog, optarg, &a->every_ms) != 0)
				return -1;
			break;
		case 'h':
			fputs(help[0], stdout);
			fputs(help[1], stdout);
			return 1;
		default:
			return -1;
		}
	}
	if (a->gid == NULL || (recovery && a->checkpoint == NULL) || optind >= argc)
		return -1;
	if (!name_valid(a->gid)) {
		fprintf(stderr, "%s: bad GID \"%s\": %s (%s)\n", prog, a->gid, name_why(a->gid),
		    NAME_RULE);
		return -1;
	}
	a->job = argv + optind;
	return 0;
}
