/*
 * libFuzzer target: hostile holders answering an image fetch (cts/transfer.c,
 * transfer_fetch_run: the CTS fetching a checkpoint's image from the CTSes that hold it, for a
 * restore or a replica copy).
 *
 * The fetch is run as restore.c runs it, only in this process rather than in a child: with the
 * record's sha256 and taker, the holders the GCS named, and a grant signed at start by this run's
 * own GCS (scripts/gca-pki: a site made in a state folder, its keys no input has). Its blocking
 * client (proto/sync.c) connects the way a privilege-separated CTS does, through its network
 * process (proto_relay_dial, a socketpair carried to it): the harness links with
 * -Wl,--wrap=proto_relay_on,--wrap=proto_relay_dial (tests/fuzz/Makefile) and plays that network
 * process, answering net_up as the holder and then writing the input's bytes as they are, with no
 * relay filtering them (fuzz_relay.c fuzzes the relay): the same proto_sync reader and the same
 * reply checks as over TLS, without a TLS handshake per input.
 *
 * Input: byte 0, bits 0-1: how many holders the grant names (1 to 3); bit 2: the first holder's
 * network process says another CTS answered. The rest is split on "HOLD": the i-th connection
 * the fetch makes (a resume, the next holder) is answered the i-th part, then closed. At exit it
 * prints the executions, connections, requests the fetch sent, and the fetches by outcome.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "cts/cts.h"
#include "proto/proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FETCH_ID	"0123abcd-0000-4000-8000-00000000000a"
#define FETCH_SEP	"HOLD"
/* the record's sha256: that of seeds.py's FETCH_MANIFEST, so that a holder sending it reaches
 * the signature check (no input can sign: the keys are made at start) */
#define FETCH_SHA	"36e117b6d47378b22a3fe2c567f84f1afc95d221bd162ee7e01e3baff9f357a3"
#define FETCH_MAX_DIALS	32

static char fetch_state[PATH_MAX];	/* the site and the CTS's state, made once */
static char *fetch_grant;		/* signed at start by the site's GCS */
static unsigned long fetch_execs, fetch_dials, fetch_asked;
static const char *const fetch_outcome_names[] = { "fetched", "refused", "not_fetched",
	"local_error" };
static unsigned long fetch_outcomes[4];

/* The one running input: what each connection is answered. */
static struct {
	const uint8_t	*parts[FETCH_MAX_DIALS];
	size_t		 lens[FETCH_MAX_DIALS], nparts;
	bool		 wrong_name;
	int		 ends[FETCH_MAX_DIALS];	/* the network process's ends, closed after */
	size_t		 ndials;
} fetch_now;

bool __wrap_proto_relay_on(void);
int  __wrap_proto_relay_dial(const char *endpoint, const char *role, const char *name, char *err,
    size_t errlen);

/* Every connection is relayed, as in a privilege-separated CTS. */
bool
__wrap_proto_relay_on(void)
{
	return true;
}

/* The network process: net_up as the holder dialled (or another CTS), then the input's part. */
int
__wrap_proto_relay_dial(const char *endpoint, const char *role, const char *name, char *err,
    size_t errlen)
{
	/* the holder dialled (LLVMFuzzerTestOneInput names the first at port 7391) */
	const char *colon = strrchr(endpoint, ':');
	struct msg_net up = { endpoint, role,
		colon && strcmp(colon, ":7391") == 0 ? "fuzz-holder" : "fuzz-replica" };
	size_t i = fetch_now.ndials;
	uint8_t *frame;
	size_t len;
	int sp[2];

	(void)name;
	if (i == FETCH_MAX_DIALS ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		snprintf(err, errlen, "cannot connect to %s: too many connections", endpoint);
		return -1;
	}
	fetch_dials++;
	if (i == 0 && fetch_now.wrong_name)
		up.name = "fuzz-other";
	if (proto_encode("net_up", 0, proto_type_find("net_up"), &up, &frame, &len) != 0)
		log_fatal("fuzz_fetch: cannot encode net_up");	/* the daemon's frame, not the input */
	/* all of it fits the socket's buffer: the input is at most a few KiB */
	if (write(sp[1], frame, len) != (ssize_t)len ||
	    (i < fetch_now.nparts && fetch_now.lens[i] > 0 &&
	    write(sp[1], fetch_now.parts[i], fetch_now.lens[i]) != (ssize_t)fetch_now.lens[i]))
		log_fatal("fuzz_fetch: a short write to the socketpair");
	free(frame);
	shutdown(sp[1], SHUT_WR);	/* the holder says no more: the fetch reads an end */
	fetch_now.ends[fetch_now.ndials++] = sp[1];
	return sp[0];
}

/* Frames the fetch wrote to a holder (its image_fetch requests). */
static void
fetch_count_asked(int fd)
{
	uint8_t buf[65536];
	size_t have = 0, at = 0;
	ssize_t n;

	while ((n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT)) > 0)
		have += (size_t)n;
	while (have - at >= PROTO_HEADER) {
		long len = proto_frame_length(buf + at, PROTO_MAX_FRAME);
		if (len < 0 || have - at < PROTO_HEADER + (size_t)len)
			break;
		at += PROTO_HEADER + (size_t)len;
		fetch_asked++;
	}
}

/* Whether fd is open on path. */
static bool
fetch_fd_is(int fd, const char *path)
{
	char link[64], to[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	if ((n = readlink(link, to, sizeof to - 1)) <= 0)
		return false;
	to[n] = '\0';
	return strcmp(to, path) == 0;
}

/* transfer_fetch_run's lock goes with its child's exit; here, with the input (else the next
 * input's flock on a new descriptor of the same file would wait for ever). It is the fetch's
 * first descriptor, so first looked for at first_fd (the lowest free before it ran). */
static void
fetch_close_lock(int first_fd)
{
	char lock[PATH_MAX + 64];
	DIR *d;
	struct dirent *e;

	snprintf(lock, sizeof lock, "%s/incoming/%s.lock", fetch_state, FETCH_ID);
	if (first_fd >= 0 && fetch_fd_is(first_fd, lock)) {
		close(first_fd);
		return;
	}
	if ((d = opendir("/proc/self/fd")) == NULL)
		log_fatal("fuzz_fetch: /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd != dirfd(d) && fetch_fd_is(fd, lock))
			close(fd);
	}
	closedir(d);
}

static void
fetch_print(void)
{
	fprintf(stderr, "\nfuzz_fetch: %lu executions\nfuzz_fetch: connections to hostile holders "
	    "%lu, image_fetch requests sent them %lu\nfuzz_fetch: fetches:", fetch_execs,
	    fetch_dials, fetch_asked);
	for (size_t i = 0; i < GCA_NITEMS(fetch_outcomes); i++)
		fprintf(stderr, " %s %lu", fetch_outcome_names[i], fetch_outcomes[i]);
	fprintf(stderr, "\n");
}

static void
fetch_cleanup(void)
{
	free(fetch_grant);
	file_remove_tree(fetch_state);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct proto_grant g = { .checkpoint_id = FETCH_ID, .target = "fuzz-cts",
		.gcs = "fuzz-gcs", .gid = "job1", .taker = "fuzz-holder" };
	struct proto_tls_files gcs = { 0 };
	char *cmd, ca[PATH_MAX + 16], crt[PATH_MAX + 32], key[PATH_MAX + 32], err[512];
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");

	(void)argc;
	(void)argv;
	log_init("fuzz_fetch");
	log_set_level(getenv("FUZZ_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	/* in memory where there is some: the fetch fsyncs each file it writes */
	snprintf(fetch_state, sizeof fetch_state, "%s/gca-fuzz-state.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(fetch_state) == NULL)
		log_fatal("mkdtemp: %s", strerror(errno));
	xasprintf(&cmd, "%s/scripts/gca-pki init %s >/dev/null && "
	    "%s/scripts/gca-pki issue %s gcs fuzz-gcs >/dev/null", GCA_TOP_DIR, fetch_state,
	    GCA_TOP_DIR, fetch_state);
	if (system(cmd) != 0)
		log_fatal("fuzz_fetch: scripts/gca-pki cannot make a site in %s", fetch_state);
	free(cmd);
	snprintf(ca, sizeof ca, "%s/ca.crt", fetch_state);
	snprintf(crt, sizeof crt, "%s/gcs-fuzz-gcs.crt", fetch_state);
	snprintf(key, sizeof key, "%s/gcs-fuzz-gcs.key", fetch_state);
	gcs.ca = ca;
	gcs.cert = crt;
	gcs.key = key;
	snprintf(g.sha256, sizeof g.sha256, "%s", FETCH_SHA);
	g.expires_ms = time_now_ms() + 365ULL * 24 * 3600 * 1000;
	if (proto_grant_sign(&gcs, &g, &fetch_grant, err, sizeof err) != 0)
		log_fatal("fuzz_fetch: cannot sign a grant: %s", err);
	snprintf(ca, sizeof ca, "%s/incoming", fetch_state);
	if (file_mkdirs(ca, 0700) != 0)
		log_fatal("fuzz_fetch: cannot make %s", ca);
	atexit(fetch_cleanup);
	atexit(fetch_print);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transfer_fetch f = { 0 };
	char out[4096] = "", ca[PATH_MAX + 16], path[PATH_MAX + 64];
	const uint8_t *p, *end;
	size_t o;
	int rc, first_fd;

	if (size < 1)
		return 0;
	fetch_execs++;
	memset(&fetch_now, 0, sizeof fetch_now);
	fetch_now.wrong_name = data[0] & 4;
	/* the parts, split on FETCH_SEP */
	for (p = data + 1, end = data + size; fetch_now.nparts < FETCH_MAX_DIALS;) {
		const uint8_t *sep = memmem(p, (size_t)(end - p), FETCH_SEP, strlen(FETCH_SEP));
		fetch_now.parts[fetch_now.nparts] = p;
		fetch_now.lens[fetch_now.nparts++] = (size_t)((sep ? sep : end) - p);
		if (sep == NULL)
			break;
		p = sep + strlen(FETCH_SEP);
	}

	/* what restore.c fills from the record and the GCS's image_grant answer */
	snprintf(f.id, sizeof f.id, "%s", FETCH_ID);
	snprintf(f.gid, sizeof f.gid, "job1");
	snprintf(f.sha256, sizeof f.sha256, "%s", FETCH_SHA);
	snprintf(f.signer, sizeof f.signer, "fuzz-holder");
	f.grant = fetch_grant;
	f.nholders = 1 + (data[0] & 3) % 3;
	for (size_t i = 0; i < f.nholders; i++)
		snprintf(f.holders[i], sizeof f.holders[i], "%s@127.0.0.1:%zu",
		    i == 0 ? "fuzz-holder" : "fuzz-replica", 7391 + i);
	snprintf(f.state, sizeof f.state, "%s", fetch_state);
	snprintf(f.image_dir, sizeof f.image_dir, "%s/images/job1/%s", fetch_state, FETCH_ID);
	snprintf(ca, sizeof ca, "%s/ca.crt", fetch_state);
	f.tls.ca = ca;

	if ((first_fd = dup(0)) >= 0)	/* the lowest free descriptor */
		close(first_fd);
	rc = transfer_fetch_run(&f, out, sizeof out);
	if (rc == 0)
		o = 0;
	else if (strstr(out, "refused from every holder") != NULL)
		o = 1;
	else if (strncmp(out, "cannot fetch", 12) == 0)
		o = 2;
	else
		o = 3;
	fetch_outcomes[o]++;
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "fuzz_fetch: %d %s\n", rc, out);
	for (size_t i = 0; i < fetch_now.ndials; i++) {
		fetch_count_asked(fetch_now.ends[i]);
		close(fetch_now.ends[i]);
	}
	fetch_close_lock(first_fd);
	/* the next input starts from nothing: no bytes of this one to resume */
	snprintf(path, sizeof path, "%s/incoming/%s", fetch_state, FETCH_ID);
	file_remove_tree(path);
	snprintf(path, sizeof path, "%s/incoming/%s.holder", fetch_state, FETCH_ID);
	unlink(path);
	snprintf(path, sizeof path, "%s/images", fetch_state);
	file_remove_tree(path);
	return 0;
}
