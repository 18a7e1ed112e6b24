/*
 * libFuzzer target: the CTS's network process relaying a peer's bytes to the daemon
 * (proto/relay.c, relay_from_net: each frame decoded against its type, or its request's reply
 * type, and encoded again). Byte 0: bit 0 set, a peer the relay accepted (the daemon serves it),
 * clear, a connection the daemon made; byte 1: how many of the next bytes the daemon writes first
 * (its requests, whose ids the relay notes for their replies); the rest is what the peer sends.
 * A relay without TLS (proto_relay_test_new) links two bufferevent pairs, read by the relay's own
 * callbacks. Every frame that reaches the daemon must be whole and decode. At exit it prints the
 * executions, frames to the daemon, errors answered to the peer, and links the relay closed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long relay_execs, relay_to_own, relay_errs, relay_closed;

static void
relay_print(void)
{
	fprintf(stderr, "\nfuzz_relay: %lu executions\nfuzz_relay: frames to the daemon %lu, errors "
	    "to the peer %lu, links closed %lu\n", relay_execs, relay_to_own, relay_errs, relay_closed);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atexit(relay_print);
	return 0;
}

static void
relay_turns(struct event_base *base)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Frames in b, each whole; if must_decode, each decodes (what the daemon is given). Returns the
 * count, and how many were err frames in *errs. */
static unsigned long
relay_frames(struct evbuffer *b, bool must_decode, unsigned long *errs)
{
	unsigned long n = 0;
	uint8_t hdr[PROTO_HEADER];

	while (evbuffer_copyout(b, hdr, PROTO_HEADER) == PROTO_HEADER) {
		long len = proto_frame_length(hdr, PROTO_MAX_FRAME);
		uint8_t *f;
		struct proto_msg m;
		const char *code = NULL;
		char err[256];

		if (len < 0 || evbuffer_get_length(b) < PROTO_HEADER + (size_t)len) {
			if (must_decode) {
				fprintf(stderr, "fuzz_relay: a part of a frame reached the daemon\n");
				abort();
			}
			break;
		}
		f = malloc(PROTO_HEADER + (size_t)len);
		evbuffer_remove(b, f, PROTO_HEADER + (size_t)len);
		if (proto_decode(f + PROTO_HEADER, (size_t)len, NULL, &m, &code, err, sizeof err) == 0) {
			if (errs != NULL && strcmp(m.type, "err") == 0)
				(*errs)++;
			proto_msg_free(&m);
		} else if (must_decode) {
			fprintf(stderr, "fuzz_relay: the daemon was given a frame that does not decode: "
			    "%s\n", err);
			abort();
		}
		free(f);
		n++;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_base *base;
	struct bufferevent *net[2], *own[2];
	struct proto_relay *r;
	size_t first;
	bool accepted;

	if (size < 2)
		return 0;
	accepted = data[0] & 1;
	first = data[1] < size - 2 ? data[1] : size - 2;
	data += 2;
	size -= 2;
	base = event_base_new();
	if (base == NULL || bufferevent_pair_new(base, 0, net) != 0 ||
	    bufferevent_pair_new(base, 0, own) != 0)
		abort();
	r = proto_relay_test_new(base, 65536);
	proto_relay_test_link(r, accepted, accepted ? "broker" : "gcs", net[0], own[0]);
	bufferevent_enable(net[1], EV_READ | EV_WRITE);
	bufferevent_enable(own[1], EV_READ | EV_WRITE);
	relay_execs++;
	bufferevent_write(own[1], data, first);
	relay_turns(base);
	bufferevent_write(net[1], data + first, size - first);
	relay_turns(base);
	relay_to_own += relay_frames(bufferevent_get_input(own[1]), true, NULL);
	relay_frames(bufferevent_get_input(net[1]), false, &relay_errs);
	relay_closed += !proto_relay_test_linked(r);
	proto_relay_free(r);
	bufferevent_free(net[1]);
	bufferevent_free(own[1]);
	event_base_free(base);
	return 0;
}
