/* libFuzzer target: any bytes as a frame (header + payload), decoded as every kind of reply too. */
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *types[] = { "do_checkpoint", "query", "checkpoint_log", "image_fetch",
		"local_bind", "restore_prepare" };
	struct proto_msg m;
	const char *code;
	char err[256];
	long n;

	if (size < PROTO_HEADER)
		return 0;
	n = proto_frame_length(data, PROTO_MAX_FRAME);
	if (n < 0 || (size_t)n > size - PROTO_HEADER)
		return 0;
	if (proto_decode(data + PROTO_HEADER, (size_t)n, NULL, &m, &code, err, sizeof err) == 0)
		proto_msg_free(&m);
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		if (proto_decode(data + PROTO_HEADER, (size_t)n, proto_type_find(types[i])->reply, &m,
		    &code, err, sizeof err) == 0)
			proto_msg_free(&m);
	}
	return 0;
}
