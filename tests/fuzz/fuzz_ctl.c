/*
 * libFuzzer target: the CTS's control socketpair, as the root parent reads it from its network
 * process (docs/ARCHITECTURE.md, "The privilege line"). Byte 0 picks the descriptors sent with
 * the message (none, one, two, one with an empty message); the rest is one SOCK_SEQPACKET
 * message, read by the parent's own proto_relay_recv and checked by net_ctl_check, as
 * net_on_ctl does. A descriptor the parent would take (proto_server_take) is closed here; one it
 * refuses is closed as net_on_ctl closes it. No descriptor may leak: /proc/self/fd must hold none
 * of those sent once each input is done. At exit it prints the executions and the messages by outcome.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cts/cts.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Outcomes: proto_relay_recv's refusals (by its err), then net_ctl_check's answers. */
enum { CTL_CLOSED, CTL_TOO_LONG, CTL_FDS, CTL_LENGTH, CTL_DECODE, CTL_NOT_ACCEPTED,
	CTL_INCOMPLETE, CTL_REFUSED, CTL_TAKE, CTL_N };
static const char *const ctl_names[CTL_N] = { "closed", "too_long", "two_fds", "bad_length",
	"undecodable", "not_net_accepted", "incomplete", "net_refused_counted", "taken" };
static unsigned long ctl_counts[CTL_N], ctl_execs;
static int ctl_sp[2] = { -1, -1 };

/* The descriptors this harness sent that are still open: each is a memfd named fuzz_ctl, so
 * that libFuzzer's own (its symbolizer's pipes, opened as it reports new code) are not counted. */
static int
ctl_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[64], target[64];
	int n = 0;

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		ssize_t len;

		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof target - 1);
		if (len > 0) {
			target[len] = '\0';
			n += strncmp(target, "/memfd:fuzz_ctl", 15) == 0;
		}
	}
	closedir(d);
	return n;
}

static int
ctl_recv_outcome(const char *err)
{
	if (strcmp(err, "closed") == 0)
		return CTL_CLOSED;
	if (strncmp(err, "a message over", 14) == 0)
		return CTL_TOO_LONG;
	if (strstr(err, "descriptors in one message") != NULL)
		return CTL_FDS;
	if (strstr(err, "length is not its frame") != NULL)
		return CTL_LENGTH;
	return CTL_DECODE;
}

/* Sends one message with n descriptors (each a fresh memfd, closed here once sent). */
static void
ctl_send(const uint8_t *data, size_t size, int n)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(2 * sizeof(int))]; } u;
	struct iovec iov = { (void *)data, size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[2] = { -1, -1 };

	for (int i = 0; i < n; i++) {
		if ((fds[i] = memfd_create("fuzz_ctl", MFD_CLOEXEC)) < 0)
			abort();
	}
	if (n > 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, n * sizeof(int));
	}
	if (sendmsg(ctl_sp[1], &mh, MSG_NOSIGNAL) != (ssize_t)size) {
		perror("fuzz_ctl: sendmsg");
		abort();
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void
ctl_print(void)
{
	fprintf(stderr, "\nfuzz_ctl: %lu executions\nfuzz_ctl: messages by outcome:", ctl_execs);
	for (int i = 0; i < CTL_N; i++)
		fprintf(stderr, " %s %lu", ctl_names[i], ctl_counts[i]);
	fprintf(stderr, "\n");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl_sp) != 0)
		abort();
	atexit(ctl_print);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int nfds[4] = { 0, 1, 2, 1 };
	struct proto_msg m;
	char err[512], why[600];
	int rc, got, k;

	if (size < 1)
		return 0;
	k = data[0] & 3;
	/* 3: the descriptor with an empty message, read as the network process gone */
	ctl_send(data + 1, k == 3 ? 0 : size - 1, nfds[k]);
	ctl_execs++;
	rc = proto_relay_recv(ctl_sp[0], NET_CTL_MAX, &m, &got, err, sizeof err);
	if (rc > 0) {
		fprintf(stderr, "fuzz_ctl: a message sent was not there to read\n");
		abort();
	}
	if (rc < 0) {
		ctl_counts[ctl_recv_outcome(err)]++;
	} else {
		rc = net_ctl_check(&m, got, why, sizeof why);
		if (rc == NET_CTL_TAKE)
			ctl_counts[CTL_TAKE]++;
		else if (rc == NET_CTL_REFUSED)
			ctl_counts[CTL_REFUSED]++;
		else
			ctl_counts[strstr(why, "which is not") ? CTL_NOT_ACCEPTED : CTL_INCOMPLETE]++;
		proto_msg_free(&m);
		if (got >= 0)
			close(got);	/* taken: proto_server_take owns it; refused: net_on_ctl closes it */
	}
	if (proto_relay_recv(ctl_sp[0], NET_CTL_MAX, &m, &got, err, sizeof err) != 1) {
		fprintf(stderr, "fuzz_ctl: more than one message read from one sent\n");
		abort();
	}
	if ((k = ctl_count_fds()) != 0) {
		fprintf(stderr, "fuzz_ctl: %d descriptors sent leaked\n", k);
		abort();
	}
	return 0;
}
