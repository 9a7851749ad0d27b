/* The `amps` (json) header: a flat JSON object at the start of the payload,
 * the body right after its closing brace (amps.md "Payload"). Values are
 * strings, numbers, true, false or null; an object or array as a value is
 * rejected, since AMPS never sends one and a decoder that skipped it would
 * have to guess where the header ends. Strings are kept as views of their
 * escaped bytes; escapes are checked here so a view is always unescapable. */
#include "proto/amps_internal.h"

static void skip_ws(struct cursor *c)
{
	while (c->left && (c->p[0] == ' ' || c->p[0] == '\t' || c->p[0] == '\r' || c->p[0] == '\n')) {
		c->p++;
		c->left--;
	}
}

static bool hex4(const uint8_t *p)
{
	for (int i = 0; i < 4; i++) {
		uint8_t h = p[i];
		if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
			return false;
	}
	return true;
}

/* <c> is just past an opening quote: views the string's bytes into <v>, moves
 * past the closing quote, and says whether it held escapes. */
static enum proto_err json_string(struct cursor *c, const uint8_t *base, struct cursor *v, bool *escaped,
				  struct proto_diag *d)
{
	size_t i = 0;
	*escaped = false;
	while (i < c->left) {
		uint8_t b = c->p[i];
		if (b == '"') {
			*v = cursor_make(c->p, i);
			c->p += i + 1;
			c->left -= i + 1;
			return PROTO_OK;
		}
		if (b < 0x20)
			return amps_fail(d, AMPS_E_JSON_STRING, "control character in string", amps_off(base, c) + (uint32_t)i);
		if (b == '\\') {
			*escaped = true;
			if (i + 1 >= c->left)
				break;
			uint8_t e = c->p[i + 1];
			if (e == 'u') {
				if (i + 6 > c->left || !hex4(c->p + i + 2))
					return amps_fail(d, AMPS_E_JSON_ESCAPE, "\\u escape", amps_off(base, c) + (uint32_t)i);
				i += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", e) || e == 0)
				return amps_fail(d, AMPS_E_JSON_ESCAPE, "escape", amps_off(base, c) + (uint32_t)i);
			i += 2;
			continue;
		}
		i++;
	}
	return amps_fail(d, AMPS_E_JSON_STRING, "string", amps_off(base, c));
}

/* A number as RFC 8259 writes it, or true, false, null: views it. */
static enum proto_err json_scalar(struct cursor *c, const uint8_t *base, struct cursor *v, bool *is_null,
				  struct proto_diag *d)
{
	static const char *const lits[] = { "true", "false", "null" };
	*is_null = false;
	for (int k = 0; k < 3; k++) {
		size_t m = strlen(lits[k]);
		if (c->left >= m && memcmp(c->p, lits[k], m) == 0) {
			*v = cursor_make(c->p, m);
			*is_null = k == 2;
			c->p += m;
			c->left -= m;
			return PROTO_OK;
		}
	}
	size_t i = 0;
	if (i < c->left && c->p[i] == '-')
		i++;
	size_t int_start = i;
	while (i < c->left && c->p[i] >= '0' && c->p[i] <= '9')
		i++;
	if (i == int_start)
		return amps_fail(d, AMPS_E_JSON_SYNTAX, "value", amps_off(base, c));
	if (i < c->left && c->p[i] == '.') {
		size_t f = ++i;
		while (i < c->left && c->p[i] >= '0' && c->p[i] <= '9')
			i++;
		if (i == f)
			return amps_fail(d, AMPS_E_JSON_SYNTAX, "number fraction", amps_off(base, c) + (uint32_t)i);
	}
	if (i < c->left && (c->p[i] == 'e' || c->p[i] == 'E')) {
		i++;
		if (i < c->left && (c->p[i] == '+' || c->p[i] == '-'))
			i++;
		size_t x = i;
		while (i < c->left && c->p[i] >= '0' && c->p[i] <= '9')
			i++;
		if (i == x)
			return amps_fail(d, AMPS_E_JSON_SYNTAX, "number exponent", amps_off(base, c) + (uint32_t)i);
	}
	*v = cursor_make(c->p, i);
	c->p += i;
	c->left -= i;
	return PROTO_OK;
}

enum proto_err amps_json_header(struct cursor payload, struct amps_header *out, struct proto_diag *d)
{
	const uint8_t *base = payload.p;
	struct cursor c = payload;
	memset(out, 0, sizeof *out);
	out->wire = AMPS_WIRE_JSON;
	skip_ws(&c);
	if (cursor_empty(&c) || c.p[0] != '{')
		return amps_fail(d, AMPS_E_JSON_NOT_OBJECT, "header", amps_off(base, &c));
	if (!cursor_skip(&c, 1))
		return amps_fail(d, AMPS_E_JSON_NOT_OBJECT, "header", 0);
	skip_ws(&c);
	bool first = true;
	for (;;) {
		skip_ws(&c);
		if (cursor_empty(&c))
			return amps_fail(d, AMPS_E_JSON_UNTERMINATED, "header", amps_off(base, &c));
		if (first && c.p[0] == '}')
			break;
		if (c.p[0] != '"')
			return amps_fail(d, AMPS_E_JSON_SYNTAX, "key", amps_off(base, &c));
		if (!cursor_skip(&c, 1))
			return amps_fail(d, AMPS_E_JSON_SYNTAX, "key", 0);
		struct cursor key, val;
		bool kesc, vesc = false, is_null = false;
		enum proto_err r = json_string(&c, base, &key, &kesc, d);
		if (r != PROTO_OK)
			return r;
		skip_ws(&c);
		if (cursor_empty(&c))
			return amps_fail(d, AMPS_E_JSON_UNTERMINATED, "header", amps_off(base, &c));
		if (c.p[0] != ':')
			return amps_fail(d, AMPS_E_JSON_SYNTAX, "colon", amps_off(base, &c));
		if (!cursor_skip(&c, 1))
			return amps_fail(d, AMPS_E_JSON_SYNTAX, "colon", 0);
		skip_ws(&c);
		if (cursor_empty(&c))
			return amps_fail(d, AMPS_E_JSON_UNTERMINATED, "header", amps_off(base, &c));
		if (c.p[0] == '{' || c.p[0] == '[')
			return amps_fail(d, AMPS_E_JSON_NESTED, "value", amps_off(base, &c));
		if (c.p[0] == '"') {
			if (!cursor_skip(&c, 1))
				return amps_fail(d, AMPS_E_JSON_SYNTAX, "value", 0);
			r = json_string(&c, base, &val, &vesc, d);
		} else {
			r = json_scalar(&c, base, &val, &is_null, d);
		}
		if (r != PROTO_OK)
			return r;
		int f = kesc ? -1 : amps_field_from_key(key);
		/* The first spelling of a field wins; null means absent. */
		if (f >= 0 && !is_null && !AMPS_HAS(out, f)) {
			out->present |= 1u << f;
			if (vesc)
				out->escaped |= 1u << f;
			out->f[f] = val;
		}
		first = false;
		skip_ws(&c);
		if (cursor_empty(&c))
			return amps_fail(d, AMPS_E_JSON_UNTERMINATED, "header", amps_off(base, &c));
		if (c.p[0] == ',') {
			if (!cursor_skip(&c, 1))
				return amps_fail(d, AMPS_E_JSON_SYNTAX, "comma", 0);
			continue;
		}
		if (c.p[0] == '}')
			break;
		return amps_fail(d, AMPS_E_JSON_SYNTAX, "comma or closing brace", amps_off(base, &c));
	}
	if (!cursor_skip(&c, 1)) /* the closing brace */
		return amps_fail(d, AMPS_E_JSON_UNTERMINATED, "header", amps_off(base, &c));
	out->hdr_len = amps_off(base, &c);
	out->body = c;
	amps_header_finish(out);
	return PROTO_OK;
}

static int utf8_put(uint32_t cp, char *buf, size_t cap, size_t at)
{
	uint8_t tmp[4];
	int n;
	if (cp < 0x80) {
		tmp[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (uint8_t)(0xC0 | (cp >> 6));
		tmp[1] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (uint8_t)(0xE0 | (cp >> 12));
		tmp[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		tmp[2] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		tmp[0] = (uint8_t)(0xF0 | (cp >> 18));
		tmp[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
		tmp[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		tmp[3] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (at + (size_t)n >= cap)
		return -1;
	memcpy(buf + at, tmp, (size_t)n);
	return n;
}

static uint32_t hexval(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t h = p[i];
		v = v * 16 + (uint32_t)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
	}
	return v;
}

int amps_json_unescape(struct cursor v, char *buf, size_t cap)
{
	size_t o = 0;
	if (cap == 0)
		return -1;
	for (size_t i = 0; i < v.left;) {
		uint8_t b = v.p[i];
		if (b != '\\') {
			if (o + 1 >= cap)
				return -1;
			buf[o++] = (char)b;
			i++;
			continue;
		}
		if (i + 1 >= v.left)
			return -1;
		uint8_t e = v.p[i + 1];
		static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
		const char *k = e ? strchr(from, e) : NULL;
		if (k) {
			if (o + 1 >= cap)
				return -1;
			buf[o++] = to[k - from];
			i += 2;
			continue;
		}
		if (e != 'u' || i + 6 > v.left || !hex4(v.p + i + 2))
			return -1;
		uint32_t cp = hexval(v.p + i + 2);
		i += 6;
		if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= v.left && v.p[i] == '\\' && v.p[i + 1] == 'u' &&
		    hex4(v.p + i + 2)) {
			uint32_t lo = hexval(v.p + i + 2);
			if (lo >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
		}
		int n = utf8_put(cp, buf, cap, o);
		if (n < 0)
			return -1;
		o += (size_t)n;
	}
	buf[o] = 0;
	return (int)o;
}
