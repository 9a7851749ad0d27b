/* The legacy `fix` and `nvfix` headers (amps.md "legacy protocols"):
 * tag=value fields, each ended by 0x01, the header ended by 0x02, then the
 * body. fix tags are numbers; nvfix uses names, the same short and long keys
 * as the json header. Only the tags we know are read: 20000 command,
 * 20002 client name, 20003 user id, 20018 status, 20039 options,
 * 20062 reason; others are skipped like unknown json keys. */
#include "proto/amps_internal.h"

struct fix_tag { uint32_t tag; enum amps_field field; };

static const struct fix_tag fix_tags[] = {
	{ 20000, AMPS_F_COMMAND }, { 20002, AMPS_F_CLIENT_NAME }, { 20003, AMPS_F_USER_ID },
	{ 20018, AMPS_F_STATUS },  { 20039, AMPS_F_OPTIONS },     { 20062, AMPS_F_REASON },
};

static int fix_field(struct cursor tag, const uint8_t *base, struct proto_diag *d, enum proto_err *err)
{
	uint32_t v = 0;
	*err = PROTO_OK;
	if (tag.left == 0 || tag.left > 9) {
		*err = amps_fail(d, AMPS_E_FIX_TAG, "tag", amps_off(base, &tag));
		return -1;
	}
	for (size_t i = 0; i < tag.left; i++) {
		if (tag.p[i] < '0' || tag.p[i] > '9') {
			*err = amps_fail(d, AMPS_E_FIX_TAG, "tag", amps_off(base, &tag));
			return -1;
		}
		v = v * 10 + (uint32_t)(tag.p[i] - '0');
	}
	for (size_t i = 0; i < sizeof fix_tags / sizeof fix_tags[0]; i++)
		if (fix_tags[i].tag == v)
			return (int)fix_tags[i].field;
	return -1;
}

enum proto_err amps_fix_header(struct cursor payload, bool nvfix, struct amps_header *out, struct proto_diag *d)
{
	const uint8_t *base = payload.p;
	struct cursor c = payload;
	memset(out, 0, sizeof *out);
	out->wire = nvfix ? AMPS_WIRE_NVFIX : AMPS_WIRE_FIX;
	for (;;) {
		if (cursor_empty(&c))
			return amps_fail(d, AMPS_E_FIX_UNTERMINATED, "header", amps_off(base, &c));
		if (c.p[0] == 0x02) { /* end of header */
			if (!cursor_skip(&c, 1))
				return amps_fail(d, AMPS_E_FIX_UNTERMINATED, "header", 0);
			break;
		}
		/* one field: up to 0x01 (or 0x02, which then ends the header) */
		size_t eq = SIZE_MAX, end = 0;
		while (end < c.left && c.p[end] != 0x01 && c.p[end] != 0x02) {
			if (c.p[end] == '=' && eq == SIZE_MAX)
				eq = end;
			end++;
		}
		if (end == c.left)
			return amps_fail(d, AMPS_E_FIX_UNTERMINATED, "field", amps_off(base, &c));
		if (eq == SIZE_MAX)
			return amps_fail(d, AMPS_E_FIX_FIELD, "field", amps_off(base, &c));
		struct cursor tag = cursor_make(c.p, eq);
		struct cursor val = cursor_make(c.p + eq + 1, end - eq - 1);
		int f;
		if (nvfix) {
			if (tag.left == 0)
				return amps_fail(d, AMPS_E_FIX_TAG, "name", amps_off(base, &c));
			f = amps_field_from_key(tag);
		} else {
			enum proto_err r;
			f = fix_field(tag, base, d, &r);
			if (r != PROTO_OK)
				return r;
		}
		if (f >= 0 && !AMPS_HAS(out, f)) {
			out->present |= 1u << f;
			out->f[f] = val;
		}
		/* a 0x01 ends the field; a 0x02 ends it and the header */
		size_t step = c.p[end] == 0x01 ? end + 1 : end;
		if (!cursor_skip(&c, step))
			return amps_fail(d, AMPS_E_FIX_UNTERMINATED, "field", 0);
	}
	out->hdr_len = amps_off(base, &c);
	out->body = c;
	amps_header_finish(out);
	return PROTO_OK;
}
