/*
 * Frames and messages: one generic encoder and decoder that walk the field tables of types.c.
 * The decoder never trusts a count: before msgpack-c sees a payload, proto_msg_sane checks that
 * every declared length and element count fits in the bytes that are there, so a 20-byte frame
 * cannot make the unpacker allocate gigabytes.
 */
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "common/common.h"

#define PROTO_STR_MAX		4096
#define PROTO_LIST_MAX		4096
#define PROTO_ENTRIES_MAX	100000

long
proto_frame_length(const uint8_t h[PROTO_HEADER], size_t max)
{
	uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];

	return n > max ? -1 : (long)n;
}

/* ---- encoding ---- */

static void
proto_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static bool
proto_field_present(const struct proto_field *f, const void *body)
{
	const char *p = (const char *)body + f->offset;

	switch (f->kind) {
	case PK_STR:
		return *(char *const *)p != NULL;
	case PK_STRLIST:
		return ((const struct proto_strlist *)p)->n > 0;
	case PK_BIN:
		return ((const struct proto_bin *)p)->p != NULL;
	case PK_ENTRIES:
		return true;
	default:
		return true;
	}
}

static void
proto_pack_field(msgpack_packer *pk, const struct proto_field *f, const void *body)
{
	const char *p = (const char *)body + f->offset;

	proto_pack_str(pk, f->name);
	switch (f->kind) {
	case PK_STR:
		proto_pack_str(pk, *(char *const *)p);
		break;
	case PK_U64:
		msgpack_pack_uint64(pk, *(const uint64_t *)p);
		break;
	case PK_I64:
		msgpack_pack_int64(pk, *(const int64_t *)p);
		break;
	case PK_BOOL:
		if (*(const bool *)p)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case PK_STRLIST: {
		const struct proto_strlist *l = (const void *)p;
		msgpack_pack_array(pk, l->n);
		for (size_t i = 0; i < l->n; i++)
			proto_pack_str(pk, l->v[i]);
		break;
	}
	case PK_BIN: {
		const struct proto_bin *b = (const void *)p;
		msgpack_pack_bin(pk, b->n);
		msgpack_pack_bin_body(pk, b->p, b->n);
		break;
	}
	case PK_ENTRIES: {
		const struct proto_entries *es = (const void *)p;
		msgpack_pack_array(pk, es->n);
		for (size_t i = 0; i < es->n; i++) {
			msgpack_pack_map(pk, es->v[i].n);
			for (size_t a = 0; a < es->v[i].n; a++) {
				const struct proto_attr *at = &es->v[i].attrs[a];
				proto_pack_str(pk, at->name);
				msgpack_pack_array(pk, at->vals.n);
				for (size_t k = 0; k < at->vals.n; k++)
					proto_pack_str(pk, at->vals.v[k]);
			}
		}
		break;
	}
	}
}

int
proto_encode(const char *type, uint32_t id, const struct proto_type *pt, const void *body,
    uint8_t **out, size_t *outlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t nfields = 0;
	uint8_t *frame;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	proto_pack_str(&pk, "v");
	msgpack_pack_uint64(&pk, PROTO_VERSION);
	proto_pack_str(&pk, "t");
	proto_pack_str(&pk, type);
	proto_pack_str(&pk, "id");
	msgpack_pack_uint32(&pk, id);
	proto_pack_str(&pk, "b");
	for (size_t i = 0; pt != NULL && body != NULL && i < pt->nfields; i++)
		nfields += proto_field_present(&pt->fields[i], body);
	msgpack_pack_map(&pk, nfields);
	for (size_t i = 0; pt != NULL && body != NULL && i < pt->nfields; i++)
		if (proto_field_present(&pt->fields[i], body))
			proto_pack_field(&pk, &pt->fields[i], body);
	if (sb.size > UINT32_MAX || (frame = malloc(PROTO_HEADER + sb.size)) == NULL) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	frame[0] = (uint8_t)(sb.size >> 24);
	frame[1] = (uint8_t)(sb.size >> 16);
	frame[2] = (uint8_t)(sb.size >> 8);
	frame[3] = (uint8_t)sb.size;
	memcpy(frame + PROTO_HEADER, sb.data, sb.size);
	*out = frame;
	*outlen = PROTO_HEADER + sb.size;
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

int
proto_encode_err(uint32_t id, const char *code, const char *msg, uint8_t **out, size_t *outlen)
{
	struct msg_err e = { code, msg };

	return proto_encode("err", id, &proto_t_err, &e, out, outlen);
}

/* ---- a cheap walk that bounds every count by the bytes left ---- */

static int
proto_msg_sane(const uint8_t *p, size_t len)
{
	size_t i = 0;
	uint64_t pending = 1;	/* objects still to read: the top-level one */

	while (pending > 0) {
		uint64_t n = 0, skip = 0, items = 0;
		uint8_t b;

		if (i >= len)
			return -1;
		b = p[i++];
		pending--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			continue;
		if ((b & 0xf0) == 0x80) {
			items = 2u * (b & 0x0f);
		} else if ((b & 0xf0) == 0x90) {
			items = b & 0x0f;
		} else if ((b & 0xe0) == 0xa0) {
			skip = b & 0x1f;
		} else {
			static const uint8_t width[] = {
				/* c4 bin8 */ 1, 2, 4, /* c7 ext8 */ 1, 2, 4, /* ca float */ 0, 0,
				/* cc uint */ 0, 0, 0, 0, /* d0 int */ 0, 0, 0, 0,
				/* d4 fixext */ 0, 0, 0, 0, 0, /* d9 str8 */ 1, 2, 4,
				/* dc array16 */ 2, 4, /* de map16 */ 2, 4,
			};
			static const uint8_t fixed[] = {
				0, 0, 0, 1, 1, 1, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 2, 3, 5, 9, 17, 0, 0, 0,
				0, 0, 0, 0,
			};
			size_t w;

			if (b == 0xc1 || b < 0xc4)
				return -1;
			w = width[b - 0xc4];
			if (len - i < w)
				return -1;
			for (size_t k = 0; k < w; k++)
				n = n << 8 | p[i + k];
			i += w;
			skip = fixed[b - 0xc4];
			if (b >= 0xdc && b <= 0xdd)
				items = n;
			else if (b >= 0xde)
				items = 2 * n;
			else if (w > 0)
				skip += n;
		}
		if (skip > len - i)
			return -1;
		i += skip;
		pending += items;
		if (pending > len - i)	/* each object takes at least one byte */
			return -1;
	}
	return i == len ? 0 : -1;
}

/* ---- decoding ---- */

struct proto_dec {
	const char	**code;
	char		 *err;
	size_t		  errlen;
};

static int
proto_dec_fail(struct proto_dec *d, const char *code, const char *fmt, ...)
{
	va_list ap;

	*d->code = code;
	va_start(ap, fmt);
	vsnprintf(d->err, d->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Map keys in order: strings by length then bytes; other keys (never read) stay distinct. */
static int
proto_key_cmp(const void *a, const void *b)
{
	const msgpack_object *x = *(const msgpack_object *const *)a;
	const msgpack_object *y = *(const msgpack_object *const *)b;
	bool xs = x->type == MSGPACK_OBJECT_STR, ys = y->type == MSGPACK_OBJECT_STR;

	if (xs && ys) {
		if (x->via.str.size != y->via.str.size)
			return x->via.str.size < y->via.str.size ? -1 : 1;
		/* two empty keys: msgpack gives them no pointer, which memcmp may not be given even
		 * for 0 bytes (found by tests/fuzz, seed fuzz_fetch/regress-empty-keys) */
		if (x->via.str.size == 0)
			return 0;
		return memcmp(x->via.str.ptr, y->via.str.ptr, x->via.str.size);
	}
	if (xs != ys)
		return xs ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* A key twice in one map: which value counts would be each reader's choice (a proxy and a server
 * could read one frame two ways), so such a frame is refused, never "the later one wins". Small
 * maps are compared pair by pair; large ones sorted, so a frame of many keys costs n log n. */
static bool
proto_map_keys_unique(const msgpack_object *m)
{
	uint32_t n = m->via.map.size;
	const msgpack_object **k;
	bool unique = true;

	if (n <= 16) {
		for (uint32_t i = 0; i < n; i++) {
			for (uint32_t j = i + 1; j < n; j++) {
				const msgpack_object *a = &m->via.map.ptr[i].key, *b = &m->via.map.ptr[j].key;
				if (proto_key_cmp(&a, &b) == 0)
					return false;
			}
		}
		return true;
	}
	if ((k = malloc(n * sizeof *k)) == NULL)
		return false;
	for (uint32_t i = 0; i < n; i++)
		k[i] = &m->via.map.ptr[i].key;
	qsort(k, n, sizeof *k, proto_key_cmp);
	for (uint32_t i = 1; i < n && unique; i++)
		unique = proto_key_cmp(&k[i - 1], &k[i]) != 0;
	free(k);
	return unique;
}

static bool
proto_obj_is(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

static char *
proto_obj_str(const msgpack_object *o, size_t max)
{
	char *s;

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return NULL;
	if ((s = malloc(o->via.str.size + 1)) == NULL)
		return NULL;
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

static int
proto_dec_strlist(const msgpack_object *o, size_t max, struct proto_strlist *l)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max)
		return -1;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		char *s = proto_obj_str(&o->via.array.ptr[i], PROTO_STR_MAX);
		if (s == NULL)
			return -1;
		proto_strlist_add(l, s);
		free(s);
	}
	return 0;
}

void
proto_entries_free(struct proto_entries *es)
{
	for (size_t i = 0; i < es->n; i++) {
		for (size_t a = 0; a < es->v[i].n; a++) {
			free(es->v[i].attrs[a].name);
			proto_strlist_free(&es->v[i].attrs[a].vals);
		}
		free(es->v[i].attrs);
	}
	free(es->v);
	memset(es, 0, sizeof *es);
}

static int
proto_dec_entries(const msgpack_object *o, struct proto_entries *es)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > PROTO_ENTRIES_MAX)
		return -1;
	es->v = calloc(o->via.array.size ? o->via.array.size : 1, sizeof *es->v);
	if (es->v == NULL)
		return -1;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *m = &o->via.array.ptr[i];
		struct proto_entry *e = &es->v[es->n++];

		if (m->type != MSGPACK_OBJECT_MAP || !proto_map_keys_unique(m))
			return -1;
		e->attrs = calloc(m->via.map.size ? m->via.map.size : 1, sizeof *e->attrs);
		if (e->attrs == NULL)
			return -1;
		for (uint32_t a = 0; a < m->via.map.size; a++) {
			struct proto_attr *at = &e->attrs[e->n];
			if ((at->name = proto_obj_str(&m->via.map.ptr[a].key, 256)) == NULL)
				return -1;
			e->n++;
			if (proto_dec_strlist(&m->via.map.ptr[a].val, PROTO_LIST_MAX, &at->vals) != 0)
				return -1;
		}
	}
	return 0;
}

static void
proto_field_free(const struct proto_field *f, void *body)
{
	char *p = (char *)body + f->offset;

	switch (f->kind) {
	case PK_STR:
		free(*(char **)p);
		*(char **)p = NULL;
		break;
	case PK_STRLIST:
		proto_strlist_free((struct proto_strlist *)p);
		break;
	case PK_BIN:
		free(((struct proto_bin *)p)->p);
		memset(p, 0, sizeof(struct proto_bin));
		break;
	case PK_ENTRIES:
		proto_entries_free((struct proto_entries *)p);
		break;
	default:
		break;
	}
}

static int
proto_dec_field(const struct proto_field *f, const msgpack_object *o, void *body)
{
	char *p = (char *)body + f->offset;

	switch (f->kind) {
	case PK_STR:
		return (*(char **)p = proto_obj_str(o, f->max ? f->max : PROTO_STR_MAX)) ? 0 : -1;
	case PK_U64:
		if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return -1;
		*(uint64_t *)p = o->via.u64;
		return 0;
	case PK_I64:
		if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
			*(int64_t *)p = (int64_t)o->via.u64;
		else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			*(int64_t *)p = o->via.i64;
		else
			return -1;
		return 0;
	case PK_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return -1;
		*(bool *)p = o->via.boolean;
		return 0;
	case PK_STRLIST:
		return proto_dec_strlist(o, f->max ? f->max : PROTO_LIST_MAX, (struct proto_strlist *)p);
	case PK_BIN: {
		struct proto_bin *b = (struct proto_bin *)p;
		if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > (f->max ? f->max : PROTO_MAX_FRAME))
			return -1;
		if ((b->p = malloc(o->via.bin.size ? o->via.bin.size : 1)) == NULL)
			return -1;
		memcpy(b->p, o->via.bin.ptr, o->via.bin.size);
		b->n = o->via.bin.size;
		return 0;
	}
	case PK_ENTRIES:
		return proto_dec_entries(o, (struct proto_entries *)p);
	}
	return -1;
}

static void *
proto_dec_body(const struct proto_type *pt, const msgpack_object *b, struct proto_dec *d)
{
	void *body = calloc(1, pt->size);
	bool *seen = calloc(pt->nfields ? pt->nfields : 1, sizeof *seen);

	if (body == NULL || seen == NULL)
		goto fail_oom;
	if (b != NULL && b->type != MSGPACK_OBJECT_MAP) {
		proto_dec_fail(d, PROTO_E_BAD_FRAME, "%s: b is not a map", pt->name);
		goto fail;
	}
	if (b != NULL && !proto_map_keys_unique(b)) {
		proto_dec_fail(d, PROTO_E_BAD_FRAME, "%s: a key appears twice in b", pt->name);
		goto fail;
	}
	for (uint32_t i = 0; b != NULL && i < b->via.map.size; i++) {
		const msgpack_object *k = &b->via.map.ptr[i].key;
		for (size_t f = 0; f < pt->nfields; f++) {
			if (!proto_obj_is(k, pt->fields[f].name))
				continue;
			if (proto_dec_field(&pt->fields[f], &b->via.map.ptr[i].val, body) != 0) {
				proto_dec_fail(d, PROTO_E_BAD_FIELD, "%s: field %s has the wrong type or "
				    "is too long", pt->name, pt->fields[f].name);
				goto fail;
			}
			seen[f] = true;
		}
		/* unknown fields are ignored: newer peers may send more */
	}
	for (size_t f = 0; f < pt->nfields; f++) {
		if (pt->fields[f].required && !seen[f]) {
			proto_dec_fail(d, PROTO_E_MISSING_FIELD, "%s: field %s is missing", pt->name,
			    pt->fields[f].name);
			goto fail;
		}
	}
	free(seen);
	return body;
fail_oom:
	proto_dec_fail(d, PROTO_E_INTERNAL, "out of memory");
fail:
	if (body != NULL)
		proto_body_free(pt, body);
	free(seen);
	return NULL;
}

int
proto_decode(const uint8_t *payload, size_t len, const struct proto_type *reply_pt,
    struct proto_msg *m, const char **code, char *err, size_t errlen)
{
	struct proto_dec d = { code, err, errlen };
	msgpack_unpacked u;
	const msgpack_object *top, *v = NULL, *t = NULL, *id = NULL, *b = NULL;
	size_t off = 0;
	int rc = -1;

	memset(m, 0, sizeof *m);
	if (proto_msg_sane(payload, len) != 0)
		return proto_dec_fail(&d, PROTO_E_BAD_FRAME, "not one well-formed msgpack object");
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)payload, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		proto_dec_fail(&d, PROTO_E_BAD_FRAME, "not one well-formed msgpack object");
		goto out;
	}
	top = &u.data;
	if (top->type != MSGPACK_OBJECT_MAP) {
		proto_dec_fail(&d, PROTO_E_BAD_FRAME, "a frame is a map {v, t, id, b}");
		goto out;
	}
	if (!proto_map_keys_unique(top)) {
		proto_dec_fail(&d, PROTO_E_BAD_FRAME, "a key appears twice in the frame");
		goto out;
	}
	for (uint32_t i = 0; i < top->via.map.size; i++) {
		const msgpack_object *k = &top->via.map.ptr[i].key, *val = &top->via.map.ptr[i].val;
		if (proto_obj_is(k, "v"))
			v = val;
		else if (proto_obj_is(k, "t"))
			t = val;
		else if (proto_obj_is(k, "id"))
			id = val;
		else if (proto_obj_is(k, "b"))
			b = val;
	}
	if (id != NULL && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && id->via.u64 <= UINT32_MAX)
		m->id = (uint32_t)id->via.u64;
	else if (id != NULL || v == NULL || t == NULL) {
		proto_dec_fail(&d, id ? PROTO_E_BAD_FIELD : PROTO_E_MISSING_FIELD,
		    id ? "id must be an unsigned 32-bit number" : "a frame needs v, t and id");
		goto out;
	}
	if (v == NULL || t == NULL || id == NULL) {
		proto_dec_fail(&d, PROTO_E_MISSING_FIELD, "a frame needs v, t and id");
		goto out;
	}
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != PROTO_VERSION) {
		proto_dec_fail(&d, PROTO_E_BAD_VERSION, "this peer speaks version %d", PROTO_VERSION);
		goto out;
	}
	if (t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0 ||
	    t->via.str.size >= sizeof m->type || memchr(t->via.str.ptr, '\0', t->via.str.size)) {
		proto_dec_fail(&d, PROTO_E_BAD_FIELD, "t must be a short string");
		goto out;
	}
	memcpy(m->type, t->via.str.ptr, t->via.str.size);
	m->type[t->via.str.size] = '\0';
	if (strcmp(m->type, "ok") == 0)
		m->pt = reply_pt;
	else if (strcmp(m->type, "err") == 0)
		m->pt = &proto_t_err;
	else if ((m->pt = proto_type_find(m->type)) == NULL) {
		proto_dec_fail(&d, PROTO_E_UNKNOWN_TYPE, "unknown message type \"%s\"", m->type);
		goto out;
	}
	if (m->pt != NULL && (m->body = proto_dec_body(m->pt, b, &d)) == NULL)
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	return rc;
}

void
proto_body_clear(const struct proto_type *pt, void *body)
{
	for (size_t f = 0; body != NULL && pt != NULL && f < pt->nfields; f++)
		proto_field_free(&pt->fields[f], body);
}

/* The string field named field of an owned body (one the caller fills to send again and again,
 * as the CTS's registration) replaced by a copy of value (NULL: none). Through the table, as
 * proto_body_clear frees it, since the struct's field is a borrowing const char *. */
void
proto_body_set_str(const struct proto_type *pt, void *body, const char *field, const char *value)
{
	for (size_t f = 0; f < pt->nfields; f++) {
		if (pt->fields[f].kind != PK_STR || strcmp(pt->fields[f].name, field) != 0)
			continue;
		proto_field_free(&pt->fields[f], body);
		*(char **)((char *)body + pt->fields[f].offset) = value ? xstrdup(value) : NULL;
		return;
	}
	log_fatal("proto_body_set_str: %s has no string field %s", pt->name, field);
}

void
proto_body_free(const struct proto_type *pt, void *body)
{
	if (body == NULL)
		return;
	proto_body_clear(pt, body);
	free(body);
}

void
proto_msg_free(struct proto_msg *m)
{
	proto_body_free(m->pt, m->body);
	m->body = NULL;
}

void
proto_strlist_add(struct proto_strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n] = xstrdup(s);
	l->n++;
}

void
proto_strlist_free(struct proto_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
