/* AMPS framing: any slicing of a multi-frame stream (every single split point
 * and every pair of split points) gives the same frames as the whole buffer;
 * the stateless peek agrees; a length of 0 is a frame of its own; the
 * configured cap and the 1 GiB stop; and what is not AMPS framing at all
 * (TLS, HTTP preflight, WebSocket upgrade, zlib, text) is named, not misread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/amps.h"

#define MAX_FRAMES 32

struct frames {
	size_t n;
	struct proto_frame f[MAX_FRAMES];
	enum proto_err last;
	struct proto_diag d;
};

/* Feeds <buf> cut at the offsets <cuts> (sorted, <ncuts> of them). */
static void frame_cut(const uint8_t *buf, size_t n, const size_t *cuts, size_t ncuts, uint32_t max, struct frames *out)
{
	struct amps_framer f;
	amps_framer_init(&f, max);
	memset(out, 0, sizeof *out);
	size_t off = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		struct cursor in = cursor_make(buf + off, end - off);
		while (!cursor_empty(&in)) {
			struct proto_frame fr;
			enum proto_err r = amps_framer_feed(&f, &in, &fr, &out->d);
			out->last = r;
			if (r == PROTO_OK && out->n < MAX_FRAMES)
				out->f[out->n++] = fr;
			else if (r != PROTO_OK && r != PROTO_NEED_MORE)
				return;
		}
		off = end;
	}
}

static size_t put_frame(uint8_t *s, size_t at, const char *payload, size_t n)
{
	s[at] = (uint8_t)(n >> 24), s[at + 1] = (uint8_t)(n >> 16), s[at + 2] = (uint8_t)(n >> 8), s[at + 3] = (uint8_t)n;
	if (n)
		memcpy(s + at + 4, payload, n);
	return at + 4 + n;
}

/* logon, a no-op, heartbeat start, a publish with a body, another no-op, a
 * publish of 300 bytes (length bytes beyond the first one in use). */
static uint8_t *sample_stream(size_t *n)
{
	uint8_t *s = calloc(1, 1024);
	size_t at = 0;
	const char *logon = "{\"c\":\"logon\",\"cid\":\"1\",\"client_name\":\"orders-7\",\"user_id\":\"svc\",\"a\":\"processed\"}";
	const char *hb = "{\"c\":\"heartbeat\",\"o\":\"start,5\",\"a\":\"received\"}";
	const char *pub = "{\"c\":\"p\",\"t\":\"orders\"}{\"id\":1}";
	char big[300];
	memset(big, 'x', sizeof big);
	memcpy(big, "{\"c\":\"publish\",\"t\":\"b\"}", 23);
	at = put_frame(s, at, logon, strlen(logon));
	at = put_frame(s, at, NULL, 0);
	at = put_frame(s, at, hb, strlen(hb));
	at = put_frame(s, at, pub, strlen(pub));
	at = put_frame(s, at, NULL, 0);
	at = put_frame(s, at, big, sizeof big);
	*n = at;
	return s;
}

static void assert_same_frames(const struct frames *a, const struct frames *b)
{
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->last, b->last);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->f[i].offset, b->f[i].offset);
		assert_int_equal(a->f[i].hdr_len, b->f[i].hdr_len);
		assert_int_equal(a->f[i].body_len, b->f[i].body_len);
	}
}

static void test_whole_buffer_gives_every_frame(void **state)
{
	(void)state;
	size_t n;
	uint8_t *s = sample_stream(&n);
	struct frames a;
	frame_cut(s, n, NULL, 0, 0, &a);
	assert_int_equal(a.n, 6);
	assert_int_equal(a.last, PROTO_OK);
	assert_int_equal(a.f[1].body_len, 0); /* a no-op is a frame of its own */
	assert_int_equal(a.f[1].hdr_len, 4);
	assert_int_equal(a.f[5].body_len, 300);
	assert_int_equal(a.f[5].offset + 304, n);
	free(s);
}

static void test_every_slicing_gives_the_same_frames(void **state)
{
	(void)state;
	size_t n;
	uint8_t *s = sample_stream(&n);
	struct frames a, b;
	frame_cut(s, n, NULL, 0, 0, &a);
	/* every single cut, then every pair of cuts (two or three reads) */
	for (size_t i = 1; i < n; i++) {
		frame_cut(s, n, &i, 1, 0, &b);
		assert_same_frames(&a, &b);
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i + 1; j < n; j += 1) {
			size_t cuts[2] = { i, j };
			frame_cut(s, n, cuts, 2, 0, &b);
			assert_same_frames(&a, &b);
		}
	/* one byte per read */
	size_t *all = malloc(n * sizeof *all);
	for (size_t i = 0; i + 1 < n; i++)
		all[i] = i + 1;
	frame_cut(s, n, all, n - 1, 0, &b);
	assert_same_frames(&a, &b);
	free(all);
	free(s);
}

static void test_peek_agrees_with_the_framer(void **state)
{
	(void)state;
	size_t n;
	uint8_t *s = sample_stream(&n);
	struct frames a;
	frame_cut(s, n, NULL, 0, 0, &a);
	size_t off = 0;
	for (size_t i = 0; i < a.n; i++) {
		struct proto_frame fr;
		struct proto_diag d;
		for (size_t k = 0; k < proto_frame_len(&a.f[i]); k++)
			assert_int_equal(amps_frame_peek(cursor_make(s + off, k), 0, i == 0, &fr, &d), PROTO_NEED_MORE);
		assert_int_equal(amps_frame_peek(cursor_make(s + off, n - off), 0, i == 0, &fr, &d), PROTO_OK);
		assert_int_equal(fr.body_len, a.f[i].body_len);
		off += (size_t)proto_frame_len(&fr);
	}
	assert_int_equal(off, n);
	free(s);
}

static void test_header_ready_once_the_length_is_in(void **state)
{
	(void)state;
	static const uint8_t s[] = { 0, 0, 0, 10, '{', '"', 'c' };
	struct amps_framer f;
	struct proto_frame fr;
	struct proto_diag d;
	amps_framer_init(&f, 0);
	struct cursor in = cursor_make(s, 3);
	assert_int_equal(amps_framer_feed(&f, &in, &fr, &d), PROTO_NEED_MORE);
	assert_false(amps_framer_header_ready(&f, &fr));
	in = cursor_make(s + 3, sizeof s - 3);
	assert_int_equal(amps_framer_feed(&f, &in, &fr, &d), PROTO_NEED_MORE);
	assert_true(amps_framer_header_ready(&f, &fr));
	assert_int_equal(fr.body_len, 10);
}

static void test_cap_and_corrupt_length(void **state)
{
	(void)state;
	struct frames a;
	uint8_t s[16] = { 0, 0, 0, 2, '{', '}', 0, 0, 0x10, 0x01 }; /* second frame 4097 bytes */
	frame_cut(s, 10, NULL, 0, 4096, &a);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.last, PROTO_E_TOO_LARGE);
	assert_string_equal(a.d.name, "frame_too_large");
	/* default cap 16 MiB: 16 MiB + 1 is too large, exactly 16 MiB is not */
	uint8_t t[14] = { 0, 0, 0, 2, '{', '}', 0x01, 0x00, 0x00, 0x01 };
	frame_cut(t, 10, NULL, 0, 0, &a);
	assert_int_equal(a.last, PROTO_E_TOO_LARGE);
	uint8_t u[14] = { 0, 0, 0, 2, '{', '}', 0x01, 0x00, 0x00, 0x00 };
	frame_cut(u, 10, NULL, 0, 0, &a);
	assert_int_equal(a.last, PROTO_NEED_MORE);
	/* 1 GiB is a corrupt stream whatever the cap */
	uint8_t v[10] = { 0, 0, 0, 2, '{', '}', 0x40, 0x00, 0x00, 0x00 };
	frame_cut(v, 10, NULL, 0, 0xffffffffu, &a);
	assert_int_equal(a.last, PROTO_E_MALFORMED);
	assert_string_equal(a.d.name, "frame_length_over_1gib");
	/* the error sticks */
	struct amps_framer f;
	struct proto_frame fr;
	struct proto_diag d;
	amps_framer_init(&f, 0);
	struct cursor in = cursor_make(v, 10);
	while (amps_framer_feed(&f, &in, &fr, &d) == PROTO_OK)
		;
	in = cursor_make(s, 6);
	assert_int_equal(amps_framer_feed(&f, &in, &fr, &d), PROTO_E_MALFORMED);
}

static void expect_not_amps(const char *bytes, size_t n, const char *name, enum amps_seen seen)
{
	struct frames a;
	frame_cut((const uint8_t *)bytes, n, NULL, 0, 0, &a);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.last, PROTO_E_NOT_PROTO);
	struct proto_diag d;
	assert_int_equal(amps_detect(cursor_make(bytes, n), 0, NULL, &d), seen);
	assert_string_equal(d.name, name);
}

static void test_streams_that_are_not_amps_framing(void **state)
{
	(void)state;
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	expect_not_amps(tls, sizeof tls - 1, "tls_on_plain_port", AMPS_SEEN_TLS);
	static const char http[] = "GET /amps/json HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: amps\r\n\r\n";
	expect_not_amps(http, sizeof http - 1, "http_preflight", AMPS_SEEN_HTTP);
	static const char ws[] = "GET /amps/json HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: abc\r\n\r\n";
	expect_not_amps(ws, sizeof ws - 1, "websocket_upgrade", AMPS_SEEN_WEBSOCKET);
	static const char zlib[] = "\x78\x9c\xab\x56\x4a\xd6\x55\x52";
	expect_not_amps(zlib, sizeof zlib - 1, "compressed_stream", AMPS_SEEN_ZLIB);
	static const char text[] = "hello there, AMPS\n";
	expect_not_amps(text, sizeof text - 1, "not_amps_framing", AMPS_SEEN_OTHER);
	/* HTTP: the length of the request head, for a shell that lets it pass */
	uint32_t hl;
	assert_int_equal(amps_detect(cursor_make(http, sizeof http - 1), 0, &hl, NULL), AMPS_SEEN_HTTP);
	assert_int_equal(hl, sizeof http - 1);
	assert_int_equal(amps_detect(cursor_make(http, 20), 0, &hl, NULL), AMPS_SEEN_NEED_MORE);
	/* a real logon */
	static const char logon[] = "\0\0\0\x0f{\"c\":\"logon\"}";
	assert_int_equal(amps_detect(cursor_make(logon, sizeof logon - 1), 0, NULL, NULL), AMPS_SEEN_AMPS);
	assert_int_equal(amps_detect(cursor_make(logon, 2), 0, NULL, NULL), AMPS_SEEN_NEED_MORE);
	/* a plausible length followed by something that is no header */
	static const char junk[] = "\0\0\0\x05\xff\xfe\x00\x01\x02";
	assert_int_equal(amps_detect(cursor_make(junk, sizeof junk - 1), 0, NULL, NULL), AMPS_SEEN_OTHER);
}

static void test_later_frames_are_not_sniffed(void **state)
{
	(void)state;
	/* After the first frame, a length whose bytes look like "GET " is just
	 * a length: too large, not HTTP. */
	static const char s[] = "\0\0\0\x02{}GET ";
	struct frames a;
	frame_cut((const uint8_t *)s, sizeof s - 1, NULL, 0, 0, &a);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.last, PROTO_E_MALFORMED);
}

static void test_guess_mqtt_or_amps(void **state)
{
	(void)state;
	enum proto_id id;
	struct proto_diag d;
	static const char connect311[] = "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";
	static const char connect31[] = "\x10\x0e\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x00";
	static const char logon[] = "\0\0\0\x0f{\"c\":\"logon\"}";
	id = PROTO_ID_AMPS;
	assert_int_equal(proto_guess(cursor_make(connect311, sizeof connect311 - 1), &id, &d), PROTO_OK);
	assert_int_equal(id, PROTO_ID_MQTT);
	id = PROTO_ID_AMPS;
	assert_int_equal(proto_guess(cursor_make(connect31, sizeof connect31 - 1), &id, &d), PROTO_OK);
	assert_int_equal(id, PROTO_ID_MQTT);
	assert_int_equal(proto_guess(cursor_make(logon, sizeof logon - 1), &id, &d), PROTO_OK);
	assert_int_equal(id, PROTO_ID_AMPS);
	/* every prefix of either is "not yet", never a wrong answer */
	for (size_t k = 0; k < 8; k++)
		assert_int_equal(proto_guess(cursor_make(connect311, k), &id, &d), PROTO_NEED_MORE);
	for (size_t k = 0; k < 4; k++)
		assert_int_equal(proto_guess(cursor_make(logon, k), &id, &d), PROTO_NEED_MORE);
	static const char text[] = "hello there\r\n";
	assert_int_equal(proto_guess(cursor_make(text, sizeof text - 1), &id, &d), PROTO_E_NOT_PROTO);
	assert_string_equal(d.name, "neither_mqtt_connect_nor_amps_frame");
	static const char tls[] = "\x16\x03\x01\x02\x00";
	assert_int_equal(proto_guess(cursor_make(tls, sizeof tls - 1), &id, &d), PROTO_E_NOT_PROTO);
	assert_string_equal(d.name, "tls_on_plain_port");
	/* 0x10 without an MQTT protocol name is not MQTT */
	static const char fake[] = "\x10\x0c\x00\x04HTTP\x04\x02\x00\x3c";
	assert_int_equal(proto_guess(cursor_make(fake, sizeof fake - 1), &id, &d), PROTO_E_NOT_PROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_buffer_gives_every_frame),
		cmocka_unit_test(test_every_slicing_gives_the_same_frames),
		cmocka_unit_test(test_peek_agrees_with_the_framer),
		cmocka_unit_test(test_header_ready_once_the_length_is_in),
		cmocka_unit_test(test_cap_and_corrupt_length),
		cmocka_unit_test(test_streams_that_are_not_amps_framing),
		cmocka_unit_test(test_later_frames_are_not_sniffed),
		cmocka_unit_test(test_guess_mqtt_or_amps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
