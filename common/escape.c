/* Escaping of untrusted bytes for text lines and JSON strings (see escape.h).
 * Every rendering walks the input as a sequence of tokens: a token is either
 * a kept character (1-4 bytes copied) or its escape ("\xNN" per byte). Output
 * is measured first, then written; a cut stops at a token boundary so that an
 * escape or a UTF-8 character is never split. UTF-8 is judged by RFC 3629
 * table 3.7 (the well-formed byte sequences). */
#include "common/escape.h"

#include <string.h>

enum esc_mode { ESC_TEXT, ESC_UTF8, ESC_HEX };

/* The longest token: a 4-byte character escaped is 16 characters. */
struct esc_tok {
	char s[16];
	size_t len;  /* characters in s */
	size_t used; /* input bytes it stands for */
};

static const char hexdig[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 character at <p> (<n> bytes available) and
 * its code point in <cp>; 0 when the bytes there are not well-formed. */
static size_t utf8_char(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t b = p[0];
	size_t len;
	uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		*cp = b & 0x1fu;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		*cp = b & 0x0fu;
		if (b == 0xe0)
			lo = 0xa0; /* overlong */
		if (b == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		*cp = b & 0x07u;
		if (b == 0xf0)
			lo = 0x90; /* overlong */
		if (b == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0; /* continuation byte, C0/C1 overlong leads, F5..FF */
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[k] & 0x3fu);
	}
	return len;
}

/* Characters that would end, reorder or hide part of a line: controls, line and
 * paragraph separators, bidi embeddings/overrides/isolates, zero-width and other
 * invisible format characters, variation selectors, tags, noncharacters. */
static bool cp_unsafe_in_text(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad || cp == 0x34f || cp == 0x61c ||
	       cp == 0x115f || cp == 0x1160 || cp == 0x17b4 || cp == 0x17b5 || (cp >= 0x180b && cp <= 0x180f) ||
	       (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x206f) || cp == 0x3164 || (cp >= 0xfdd0 && cp <= 0xfdef) ||
	       (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff || cp == 0xffa0 || (cp >= 0xfff0 && cp <= 0xfffb) ||
	       (cp & 0xfffeu) == 0xfffeu || (cp >= 0x1bca0 && cp <= 0x1bca3) ||
	       (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0000 && cp <= 0xe0fff);
}

static void tok_escape_bytes(struct esc_tok *t, const uint8_t *p, size_t k)
{
	t->len = 0;
	for (size_t j = 0; j < k; j++) {
		t->s[t->len++] = '\\';
		t->s[t->len++] = 'x';
		t->s[t->len++] = hexdig[p[j] >> 4];
		t->s[t->len++] = hexdig[p[j] & 0x0f];
	}
	t->used = k;
}

static void tok_copy(struct esc_tok *t, const uint8_t *p, size_t k)
{
	memcpy(t->s, p, k);
	t->len = k;
	t->used = k;
}

/* The token for the input at <p> (<n> > 0 bytes left) in mode <m>. */
static void next_tok(enum esc_mode m, const uint8_t *p, size_t n, struct esc_tok *t)
{
	uint32_t cp;
	size_t k;

	if (m == ESC_HEX) {
		t->s[0] = hexdig[p[0] >> 4];
		t->s[1] = hexdig[p[0] & 0x0f];
		t->len = 2;
		t->used = 1;
		return;
	}
	k = utf8_char(p, n, &cp);
	if (k == 0) {
		tok_escape_bytes(t, p, 1); /* resynchronise on the next byte */
		return;
	}
	if (m == ESC_UTF8) {
		tok_copy(t, p, k);
		return;
	}
	if (cp == '\\' || cp == '"') {
		t->s[0] = '\\';
		t->s[1] = (char)cp;
		t->len = 2;
		t->used = 1;
	} else if (cp == ']' || cp_unsafe_in_text(cp)) {
		/* ']' too, so that "client[...]" in a log line always ends where
		 * the id ends, whatever the id holds. */
		tok_escape_bytes(t, p, k);
	} else {
		tok_copy(t, p, k);
	}
}

/* How many bytes from <p> stand for themselves in mode <m>: printable ASCII
 * other than the characters a text escape rewrites. Client ids, user names
 * and addresses are nearly always all of it, and an event line escapes
 * several of them (next_tok(), one byte at a time, was 7% of the proxy's
 * user-space time in the connection-setup profile). */
static size_t plain_run(enum esc_mode m, const uint8_t *p, size_t n)
{
	size_t k = 0;
	if (m == ESC_HEX)
		return 0;
	while (k < n && p[k] >= 0x20 && p[k] < 0x7f &&
	       (m == ESC_UTF8 || (p[k] != '\\' && p[k] != '"' && p[k] != ']')))
		k++;
	return k;
}

static size_t measure(enum esc_mode m, const uint8_t *in, size_t n)
{
	struct esc_tok t;
	size_t len = 0;

	for (size_t i = 0; i < n; i += t.used) {
		size_t k = plain_run(m, in + i, n - i);
		len += k;
		if ((i += k) >= n)
			break;
		next_tok(m, in + i, n - i, &t);
		len += t.len;
	}
	return len;
}

static size_t render(enum esc_mode m, const uint8_t *in, size_t n, char *out, size_t cap)
{
	struct esc_tok t;
	size_t need, room, mark, len = 0;

	if (cap == 0)
		return 0;
	if (n == 0 || in == NULL) {
		out[0] = '\0';
		return 0;
	}
	need = measure(m, in, n);
	mark = 0;
	room = need;
	if (need > cap - 1) { /* a cut: keep room for the marker */
		mark = strlen(ESCAPE_CUT_MARK);
		if (mark > cap - 1)
			mark = cap - 1;
		room = cap - 1 - mark;
	}
	for (size_t i = 0; i < n; i += t.used) {
		size_t k = plain_run(m, in + i, n - i);
		if (k > room - len)
			k = room - len;
		memcpy(out + len, in + i, k);
		len += k;
		if ((i += k) >= n || len == room)
			break;
		next_tok(m, in + i, n - i, &t);
		if (len + t.len > room)
			break;
		memcpy(out + len, t.s, t.len);
		len += t.len;
	}
	memcpy(out + len, ESCAPE_CUT_MARK, mark);
	len += mark;
	out[len] = '\0';
	return len;
}

size_t escape_text(const uint8_t *in, size_t n, char *out, size_t cap)
{
	return render(ESC_TEXT, in, n, out, cap);
}

size_t escape_text_len(const uint8_t *in, size_t n)
{
	return in == NULL ? 0 : measure(ESC_TEXT, in, n);
}

size_t escape_utf8(const uint8_t *in, size_t n, char *out, size_t cap)
{
	return render(ESC_UTF8, in, n, out, cap);
}

size_t escape_hex(const uint8_t *in, size_t n, char *out, size_t cap)
{
	return render(ESC_HEX, in, n, out, cap);
}

bool escape_utf8_valid(const uint8_t *in, size_t n)
{
	uint32_t cp;
	size_t k;

	for (size_t i = 0; i < n; i += k) {
		k = utf8_char(in + i, n - i, &cp);
		if (k == 0)
			return false;
	}
	return true;
}
