/* AMPS framing (amps.md "Framing"): finds frame boundaries in a byte stream.
 *
 *   bytes 1..4  payload length, unsigned, big-endian (the length bytes excluded)
 *   then        that many bytes of payload: header, then body
 *
 * The incremental framer keeps its place between feeds, so any slicing of the
 * stream gives the same frames; it only counts payload bytes and never copies.
 * Nothing on the wire announces AMPS, so the first frame's length bytes are
 * checked for what else a client may have sent to an AMPS port (TLS, HTTP, a
 * deflated stream): misreading those as a length would give one enormous
 * frame, and the operator would learn nothing. */
#include "proto/amps.h"

#include <string.h>

enum { FR_LEN = 0, FR_BODY };

void amps_framer_init(struct amps_framer *f, uint32_t max_frame)
{
	memset(f, 0, sizeof *f);
	f->max_frame = max_frame ? max_frame : AMPS_MAX_FRAME_DEFAULT;
	f->state = FR_LEN;
}

static uint32_t be32(const uint8_t b[4])
{
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static const char *const http_methods[] = { "GET ", "POST ", "PUT ", "HEAD ", "OPTIONS ", "CONNECT ",
					    "DELETE ", "PATCH ", "TRACE " };

/* 0: <h> cannot start a method; 1: it may (too short to say); 2: it does. */
static int http_method(struct cursor h)
{
	int best = 0;
	for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++) {
		size_t m = strlen(http_methods[i]);
		size_t n = h.left < m ? h.left : m;
		if (n && memcmp(h.p, http_methods[i], n) == 0)
			best = n == m ? 2 : (best < 1 ? 1 : best);
	}
	return best;
}

/* A zlib header (RFC 1950): CM 8, CINFO <= 7, and the two bytes a multiple of 31. */
static bool zlib_header(uint8_t cmf, uint8_t flg)
{
	return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
}

/* A raw deflate block header (RFC 1951 3.2.3): BTYPE 01 or 10 in bits 1-2.
 * Only asked about bytes that are already an implausible length, so that a
 * real frame is never taken for one. */
static bool deflate_block(uint8_t b0)
{
	unsigned btype = (b0 >> 1) & 3u;
	return btype == 1 || btype == 2;
}

static bool printable(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] < 0x20 || b[i] > 0x7e)
			return false;
	return true;
}

static bool ieq_at(const uint8_t *p, size_t n, const char *s)
{
	size_t m = strlen(s);
	if (n < m)
		return false;
	for (size_t i = 0; i < m; i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + 32);
		if (c != (uint8_t)s[i])
			return false;
	}
	return true;
}

#define HTTP_HEAD_MAX 8192u

enum amps_seen amps_detect(struct cursor head, uint32_t max_frame, uint32_t *http_len, struct proto_diag *d)
{
	const uint8_t *p = head.p;
	size_t n = head.left;
	if (http_len)
		*http_len = 0;
	if (!max_frame)
		max_frame = AMPS_MAX_FRAME_DEFAULT;
	if (n == 0)
		return AMPS_SEEN_NEED_MORE;
	if (p[0] == 0x16) { /* TLS handshake record, version 3.x */
		if (n < 3)
			return AMPS_SEEN_NEED_MORE;
		if (p[1] == 3 && p[2] <= 4) {
			if (d)
				amps_fail(d, AMPS_E_TLS_ON_PLAIN, "first bytes", 0);
			return AMPS_SEEN_TLS;
		}
	}
	int m = http_method(head);
	if (m == 1 && n < 8)
		return AMPS_SEEN_NEED_MORE;
	if (m == 2) {
		/* Read the request head to its blank line to tell a WebSocket
		 * upgrade from AMPS's own preflight. */
		size_t end = 0;
		size_t lim = n < HTTP_HEAD_MAX ? n : HTTP_HEAD_MAX;
		for (size_t i = 0; i + 4 <= lim; i++)
			if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
				end = i + 4;
				break;
			}
		if (!end && n < HTTP_HEAD_MAX)
			return AMPS_SEEN_NEED_MORE;
		size_t scan = end ? end : lim;
		bool ws = false;
		for (size_t i = 0; i + 1 < scan; i++)
			if ((p[i] == '\n') && ieq_at(p + i + 1, scan - i - 1, "upgrade:")) {
				size_t j = i + 1 + 8;
				while (j < scan && (p[j] == ' ' || p[j] == '\t'))
					j++;
				if (ieq_at(p + j, scan - j, "websocket"))
					ws = true;
			}
		if (http_len)
			*http_len = (uint32_t)end;
		if (d)
			amps_fail(d, ws ? AMPS_E_WEBSOCKET : AMPS_E_HTTP_PREFLIGHT, "first bytes", 0);
		return ws ? AMPS_SEEN_WEBSOCKET : AMPS_SEEN_HTTP;
	}
	/* The smallest length the bytes at hand can still make: a zlib header
	 * only counts where no plausible length starts with it. */
	bool implausible = ((uint64_t)p[0] << 24) > max_frame || ((uint32_t)p[0] << 24) >= AMPS_LEN_CORRUPT;
	if (n >= 2 && implausible && zlib_header(p[0], p[1])) {
		if (d)
			amps_fail(d, AMPS_E_COMPRESSED, "first bytes", 0);
		return AMPS_SEEN_ZLIB;
	}
	if (n < 4)
		return AMPS_SEEN_NEED_MORE;
	uint32_t len = be32(p);
	if (len <= max_frame && len < AMPS_LEN_CORRUPT) {
		if (len == 0 || n == 4)
			return AMPS_SEEN_AMPS;
		uint8_t c = p[4];
		/* json '{' (after blanks), fix digits, nvfix names */
		if (c == '{' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || (c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
			return AMPS_SEEN_AMPS;
		if (d)
			amps_fail(d, AMPS_E_NOT_AMPS, "first header byte", 4);
		return AMPS_SEEN_OTHER;
	}
	if (!printable(p, 4) && deflate_block(p[0])) {
		if (d)
			amps_fail(d, AMPS_E_COMPRESSED, "first bytes", 0);
		return AMPS_SEEN_ZLIB;
	}
	if (d)
		amps_fail(d, AMPS_E_NOT_AMPS, "frame length", 0);
	return AMPS_SEEN_OTHER;
}

/* Checks a complete length. <first>: these are the stream's first bytes. */
static enum proto_err length_check(const uint8_t lb[4], uint32_t max_frame, bool first, struct proto_diag *d)
{
	uint32_t len = be32(lb);
	if (first) {
		struct cursor h = cursor_make(lb, 4);
		enum amps_seen s = amps_detect(h, max_frame, NULL, NULL);
		/* HTTP needs more than 4 bytes to tell preflight from WebSocket:
		 * the framer says preflight, amps_detect() on more bytes refines. */
		if (s == AMPS_SEEN_TLS)
			return amps_fail(d, AMPS_E_TLS_ON_PLAIN, "first bytes", 0);
		if (s == AMPS_SEEN_ZLIB)
			return amps_fail(d, AMPS_E_COMPRESSED, "first bytes", 0);
		if (http_method(h) == 2 || (s == AMPS_SEEN_NEED_MORE && http_method(h) == 1))
			return amps_fail(d, AMPS_E_HTTP_PREFLIGHT, "first bytes", 0);
		if (s == AMPS_SEEN_OTHER)
			return amps_fail(d, AMPS_E_NOT_AMPS, "frame length", 0);
	}
	if (len >= AMPS_LEN_CORRUPT)
		return amps_fail(d, AMPS_E_LENGTH_CORRUPT, "frame length", 0);
	if (len > max_frame)
		return amps_fail(d, AMPS_E_FRAME_TOO_LARGE, "frame length", 0);
	return PROTO_OK;
}

static void frame_describe(const struct amps_framer *f, struct proto_frame *fr)
{
	fr->offset = f->frame_start;
	fr->hdr_len = AMPS_LEN_BYTES;
	fr->body_len = f->body_len;
	fr->type = 0;
	fr->flags = 0;
}

bool amps_framer_header_ready(const struct amps_framer *f, struct proto_frame *fr)
{
	if (f->failed || f->state != FR_BODY)
		return false;
	frame_describe(f, fr);
	return true;
}

enum proto_err amps_framer_feed(struct amps_framer *f, struct cursor *in, struct proto_frame *fr,
				struct proto_diag *d)
{
	if (f->failed)
		return d->cls;
	while (!cursor_empty(in)) {
		if (f->state == FR_LEN) {
			uint8_t b;
			if (!cursor_u8(in, &b))
				return PROTO_NEED_MORE;
			if (f->len_bytes == 0)
				f->frame_start = f->offset;
			f->offset++;
			f->lenbuf[f->len_bytes++] = b;
			if (f->len_bytes < AMPS_LEN_BYTES)
				continue;
			enum proto_err r = length_check(f->lenbuf, f->max_frame, f->frame_start == 0, d);
			if (r != PROTO_OK) {
				f->failed = true;
				return r;
			}
			f->body_len = f->body_left = be32(f->lenbuf);
			f->len_bytes = 0;
			f->state = FR_BODY;
			if (f->body_left == 0)
				goto done;
			continue;
		}
		size_t n = cursor_left(in) < f->body_left ? cursor_left(in) : f->body_left;
		if (!cursor_skip(in, n))
			return PROTO_NEED_MORE;
		f->offset += n;
		f->body_left -= (uint32_t)n;
		if (f->body_left == 0)
			goto done;
	}
	return PROTO_NEED_MORE;
done:
	frame_describe(f, fr);
	f->state = FR_LEN;
	f->frames++;
	return PROTO_OK;
}

enum proto_err amps_frame_peek(struct cursor buf, uint32_t max_frame, bool first, struct proto_frame *fr,
			       struct proto_diag *d)
{
	if (!max_frame)
		max_frame = AMPS_MAX_FRAME_DEFAULT;
	if (cursor_left(&buf) < AMPS_LEN_BYTES) {
		/* The first bytes may already say TLS or HTTP. */
		if (first && cursor_left(&buf) > 0) {
			enum amps_seen s = amps_detect(buf, max_frame, NULL, NULL);
			if (s == AMPS_SEEN_TLS)
				return amps_fail(d, AMPS_E_TLS_ON_PLAIN, "first bytes", 0);
			if (s == AMPS_SEEN_ZLIB)
				return amps_fail(d, AMPS_E_COMPRESSED, "first bytes", 0);
		}
		return PROTO_NEED_MORE;
	}
	uint8_t lb[4];
	memcpy(lb, buf.p, 4);
	enum proto_err r = length_check(lb, max_frame, first, d);
	if (r != PROTO_OK)
		return r;
	fr->offset = 0;
	fr->hdr_len = AMPS_LEN_BYTES;
	fr->body_len = be32(lb);
	fr->type = 0;
	fr->flags = 0;
	return cursor_left(&buf) - AMPS_LEN_BYTES >= fr->body_len ? PROTO_OK : PROTO_NEED_MORE;
}
