/* proto/: every message type round-trips; every malformed frame gets its own error code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static const char *all_types[] = {
	"hello", "ping", "cts_register", "cts_heartbeat", "cts_remove", "class_register", "job_bind",
	"job_unbind", "do_checkpoint", "checkpoint_log", "restore_prepare", "image_grant",
	"image_fetch", "query", "subscribe", "notify", "local_bind", "local_checkpoint", "app_save",
	"app_saved", "local_info",
};

/* Fill every field of a body with a value derived from its name, so a mix-up shows. */
static void
fill(const struct proto_type *pt, void *body)
{
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct proto_field *f = &pt->fields[i];
		char *p = (char *)body + f->offset;
		switch (f->kind) {
		case PK_STR: *(char **)p = strdup(f->name); break;
		case PK_U64: *(uint64_t *)p = 1000 + i; break;
		case PK_I64: *(int64_t *)p = -(int64_t)i - 1; break;
		case PK_BOOL: *(bool *)p = i % 2 == 0; break;
		case PK_STRLIST:
			proto_strlist_add((struct proto_strlist *)p, "k=v");
			proto_strlist_add((struct proto_strlist *)p, f->name);
			break;
		case PK_BIN: {
			struct proto_bin *b = (struct proto_bin *)p;
			b->p = malloc(3); memcpy(b->p, "\0\1\2", 3); b->n = 3;
			break;
		}
		case PK_ENTRIES: {
			struct proto_entries *es = (struct proto_entries *)p;
			es->v = calloc(1, sizeof *es->v); es->n = 1;
			es->v[0].attrs = calloc(1, sizeof *es->v[0].attrs); es->v[0].n = 1;
			es->v[0].attrs[0].name = strdup("gcaGID");
			proto_strlist_add(&es->v[0].attrs[0].vals, "job-1");
			break;
		}
		}
	}
}

static void
check_equal(const struct proto_type *pt, const void *a, const void *b)
{
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct proto_field *f = &pt->fields[i];
		const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
		switch (f->kind) {
		case PK_STR: assert_string_equal(*(char *const *)pa, *(char *const *)pb); break;
		case PK_U64: assert_int_equal(*(const uint64_t *)pa, *(const uint64_t *)pb); break;
		case PK_I64: assert_int_equal(*(const int64_t *)pa, *(const int64_t *)pb); break;
		case PK_BOOL: assert_int_equal(*(const bool *)pa, *(const bool *)pb); break;
		case PK_STRLIST: {
			const struct proto_strlist *x = (const void *)pa, *y = (const void *)pb;
			assert_int_equal(x->n, y->n);
			for (size_t k = 0; k < x->n; k++) assert_string_equal(x->v[k], y->v[k]);
			break;
		}
		case PK_BIN: {
			const struct proto_bin *x = (const void *)pa, *y = (const void *)pb;
			assert_int_equal(x->n, y->n);
			assert_memory_equal(x->p, y->p, x->n);
			break;
		}
		case PK_ENTRIES: {
			const struct proto_entries *x = (const void *)pa, *y = (const void *)pb;
			assert_int_equal(x->n, y->n);
			assert_string_equal(y->v[0].attrs[0].name, "gcaGID");
			assert_string_equal(y->v[0].attrs[0].vals.v[0], "job-1");
			break;
		}
		}
	}
}

static void
roundtrip(const char *type, const struct proto_type *pt, const struct proto_type *as_reply)
{
	void *body = calloc(1, pt->size);
	uint8_t *frame;
	size_t len;
	struct proto_msg m;
	const char *code = NULL;
	char err[256];

	fill(pt, body);
	assert_int_equal(proto_encode(type, 77, pt, body, &frame, &len), 0);
	assert_int_equal(proto_frame_length(frame, PROTO_MAX_FRAME), (long)(len - PROTO_HEADER));
	assert_int_equal(proto_decode(frame + PROTO_HEADER, len - PROTO_HEADER, as_reply, &m, &code,
	    err, sizeof err), 0);
	assert_string_equal(m.type, type);
	assert_int_equal(m.id, 77);
	assert_ptr_equal(m.pt, pt);
	check_equal(pt, body, m.body);
	proto_msg_free(&m);
	proto_body_free(pt, body);
	free(frame);
}

static void
test_every_message_and_reply_round_trips(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof all_types / sizeof all_types[0]; i++) {
		const struct proto_type *pt = proto_type_find(all_types[i]);
		assert_non_null(pt);
		roundtrip(all_types[i], pt, NULL);
		if (pt->reply != NULL)
			roundtrip("ok", pt->reply, pt->reply);
	}
	assert_null(proto_type_find("no_such_type"));
}

/* A hand-made payload: msgpack of the map given as (key, packer-fn) pairs is overkill; raw bytes. */
static int
decode_raw(const void *p, size_t n, const char **code)
{
	struct proto_msg m;
	char err[256];
	int rc;

	*code = NULL;
	rc = proto_decode(p, n, NULL, &m, code, err, sizeof err);
	proto_msg_free(&m);
	return rc;
}

static size_t
pack_frame(uint8_t *out, size_t cap, int v, const char *t, long long id, int body_kind)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t n;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (v >= 0) + (t != NULL) + (id != -2) + 1);
	if (v >= 0) { msgpack_pack_str(&pk, 1); msgpack_pack_str_body(&pk, "v", 1); msgpack_pack_int(&pk, v); }
	if (t != NULL) { msgpack_pack_str(&pk, 1); msgpack_pack_str_body(&pk, "t", 1);
		msgpack_pack_str(&pk, strlen(t)); msgpack_pack_str_body(&pk, t, strlen(t)); }
	if (id != -2) { msgpack_pack_str(&pk, 2); msgpack_pack_str_body(&pk, "id", 2);
		if (id == -1) msgpack_pack_str(&pk, 0), msgpack_pack_str_body(&pk, "", 0);
		else msgpack_pack_int64(&pk, id); }
	msgpack_pack_str(&pk, 1); msgpack_pack_str_body(&pk, "b", 1);
	switch (body_kind) {
	case 0:		/* do_checkpoint, complete */
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "gid", 3);
		msgpack_pack_str(&pk, 2); msgpack_pack_str_body(&pk, "j1", 2);
		break;
	case 1:		/* gid missing, an unknown field instead */
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 5); msgpack_pack_str_body(&pk, "extra", 5);
		msgpack_pack_int(&pk, 5);
		break;
	case 2:		/* gid of the wrong type */
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "gid", 3);
		msgpack_pack_int(&pk, 5);
		break;
	case 3:		/* gid with a NUL inside */
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "gid", 3);
		msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "a\0b", 3);
		break;
	case 4:		/* gid too long */
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "gid", 3);
		{ char big[300]; memset(big, 'x', sizeof big);
		  msgpack_pack_str(&pk, sizeof big); msgpack_pack_str_body(&pk, big, sizeof big); }
		break;
	}
	n = sb.size < cap ? sb.size : cap;
	memcpy(out, sb.data, n);
	msgpack_sbuffer_destroy(&sb);
	return n;
}

static void
test_malformed_frames_get_specific_codes(void **state)
{
	uint8_t buf[1024];
	const char *code;
	size_t n;

	(void)state;
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", 5, 0);
	assert_int_equal(decode_raw(buf, n, &code), 0);
	/* truncated: every shorter prefix is refused, none crashes */
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(decode_raw(buf, k, &code), -1);
		assert_string_equal(code, PROTO_E_BAD_FRAME);
	}
	/* garbage */
	assert_int_equal(decode_raw("\xc1\xc1\xc1", 3, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	/* not a map */
	assert_int_equal(decode_raw("\x93\x01\x02\x03", 4, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	/* trailing bytes */
	buf[n] = 0x01;
	assert_int_equal(decode_raw(buf, n + 1, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	/* an array that says it holds 4 billion items in 6 bytes: refused before any allocation */
	assert_int_equal(decode_raw("\xdd\xff\xff\xff\xff\x01", 6, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	assert_int_equal(decode_raw("\xdf\xff\xff\xff\xff\x01", 6, &code), -1);
	assert_int_equal(decode_raw("\xdb\xff\xff\xff\xff\x01", 6, &code), -1);
	/* wrong version, unknown type, missing and bad fields */
	n = pack_frame(buf, sizeof buf, 2, "do_checkpoint", 5, 0);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_VERSION);
	n = pack_frame(buf, sizeof buf, 1, "make_coffee", 5, 0);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_UNKNOWN_TYPE);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", -2, 0);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_MISSING_FIELD);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", -1, 0);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", 1LL << 33, 0);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", 5, 1);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_MISSING_FIELD);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", 5, 2);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", 5, 3);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
	n = pack_frame(buf, sizeof buf, 1, "do_checkpoint", 5, 4);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FIELD);
}

static void
pack_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* A do_checkpoint frame: top-level keys as given (each "v", "t", "id" or another name: the first
 * "t" is do_checkpoint, a second job_unbind; the others are 1), then b with nkeys of body keys ("gid", "idem_key" or other names). */
static size_t
pack_keys(uint8_t *out, size_t cap, const char *const *top, size_t ntop, const char *const *keys,
    size_t nkeys)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	bool second_t = false;
	size_t n;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, ntop + 1);
	for (size_t i = 0; i < ntop; i++) {
		pack_s(&pk, top[i]);
		if (strcmp(top[i], "t") == 0)
			pack_s(&pk, second_t ? "job_unbind" : "do_checkpoint"), second_t = true;
		else
			msgpack_pack_int(&pk, 1);
	}
	pack_s(&pk, "b");
	msgpack_pack_map(&pk, nkeys);
	for (size_t i = 0; i < nkeys; i++) {
		pack_s(&pk, keys[i]);
		pack_s(&pk, strcmp(keys[i], "gid") == 0 && i > 0 ? "j2" : "j1");
	}
	n = sb.size < cap ? sb.size : cap;
	memcpy(out, sb.data, n);
	msgpack_sbuffer_destroy(&sb);
	return n;
}

/* A key twice in a frame or in its body is a malformed frame: never "the later one wins". */
static void
test_duplicate_keys_are_refused(void **state)
{
	static const char *const vti[] = { "v", "t", "id" }, *const vtit[] = { "t", "v", "id", "t" },
		*const vvti[] = { "v", "t", "v", "id" }, *const vtixx[] = { "v", "t", "id", "x", "x" },
		*const vtix[] = { "v", "t", "id", "x" };
	static const char *const gid[] = { "gid" }, *const gidgid[] = { "gid", "gid" },
		*const gidyy[] = { "gid", "y", "y" };
	const char *many[40], *code;
	char names[40][8];
	uint8_t buf[4096];
	size_t n;

	(void)state;
	n = pack_keys(buf, sizeof buf, vti, 3, gid, 1);
	assert_int_equal(decode_raw(buf, n, &code), 0);
	n = pack_keys(buf, sizeof buf, vtix, 4, gid, 1);		/* an unknown key: ignored */
	assert_int_equal(decode_raw(buf, n, &code), 0);
	n = pack_keys(buf, sizeof buf, vtit, 4, gid, 1);		/* a second t */
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	n = pack_keys(buf, sizeof buf, vvti, 4, gid, 1);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	n = pack_keys(buf, sizeof buf, vtixx, 5, gid, 1);		/* an unknown key twice */
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	n = pack_keys(buf, sizeof buf, vti, 3, gidgid, 2);		/* the body's gid twice */
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	n = pack_keys(buf, sizeof buf, vti, 3, gidyy, 3);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
	/* a large body map (sorted, not compared pair by pair): distinct, then one name twice */
	for (size_t i = 0; i < 40; i++) {
		snprintf(names[i], sizeof names[i], i ? "k%zu" : "gid", i);
		many[i] = names[i];
	}
	n = pack_keys(buf, sizeof buf, vti, 3, many, 40);
	assert_int_equal(decode_raw(buf, n, &code), 0);
	many[39] = "k7";
	n = pack_keys(buf, sizeof buf, vti, 3, many, 40);
	assert_int_equal(decode_raw(buf, n, &code), -1);
	assert_string_equal(code, PROTO_E_BAD_FRAME);
}

static void
test_frame_length_limit(void **state)
{
	uint8_t small[4] = { 0, 0, 0x10, 0 }, big[4] = { 0, 0x10, 0, 1 }, huge[4] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	assert_int_equal(proto_frame_length(small, PROTO_MAX_FRAME), 4096);
	assert_int_equal(proto_frame_length(big, PROTO_MAX_FRAME), -1);	/* 1 MiB + 1 */
	assert_int_equal(proto_frame_length(huge, PROTO_MAX_FRAME), -1);
	assert_int_equal(proto_frame_length(small, 100), -1);		/* configurable */
}

static void
test_corpus_replays(void **state)
{
	/* The fuzz corpus (tests/fuzz/corpus) decodes without crashing; its seeds are valid frames. */
	char cmd[512], path[512];
	FILE *ls;
	const char *top = getenv("GCA_TOP");
	int files = 0;

	(void)state;
	snprintf(cmd, sizeof cmd, "ls %s/tests/fuzz/corpus 2>/dev/null", top ? top : ".");
	ls = popen(cmd, "r");
	assert_non_null(ls);
	while (fgets(path, sizeof path, ls) != NULL) {
		char full[1024];
		FILE *f;
		uint8_t buf[70000];
		size_t n;
		const char *code;

		path[strcspn(path, "\n")] = '\0';
		snprintf(full, sizeof full, "%s/tests/fuzz/corpus/%s", top ? top : ".", path);
		if ((f = fopen(full, "rb")) == NULL)
			continue;
		n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		if (n >= PROTO_HEADER)
			decode_raw(buf + PROTO_HEADER, n - PROTO_HEADER, &code);
		files++;
	}
	pclose(ls);
	assert_true(files >= 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_message_and_reply_round_trips),
		cmocka_unit_test(test_malformed_frames_get_specific_codes),
		cmocka_unit_test(test_duplicate_keys_are_refused),
		cmocka_unit_test(test_frame_length_limit),
		cmocka_unit_test(test_corpus_replays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
