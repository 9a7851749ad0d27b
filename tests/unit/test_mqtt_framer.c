/* The incremental framer: any slicing of a stream gives the same frames as
 * the whole buffer at once, the stateless peek agrees with it, and a bad or
 * oversized header is reported as soon as the header is known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mqtt.h"
#include "tests/unit/testutil.h"

#define MAX_FRAMES 64

struct frames {
	size_t n;
	struct proto_frame f[MAX_FRAMES];
	enum proto_err last;
};

/* Feeds <buf> in chunks of the sizes <chunk(i)> returns. */
static void frame_chunks(const uint8_t *buf, size_t n, size_t (*chunk)(size_t i, void *), void *arg,
			 uint32_t max, struct frames *out)
{
	struct mqtt_framer f;
	mqtt_framer_init(&f, max);
	memset(out, 0, sizeof *out);
	size_t off = 0;
	for (size_t i = 0; off < n; i++) {
		size_t k = chunk(i, arg);
		if (k > n - off)
			k = n - off;
		struct cursor in = cursor_make(buf + off, k);
		while (!cursor_empty(&in)) {
			struct proto_frame fr;
			struct proto_diag d;
			enum proto_err r = mqtt_framer_feed(&f, &in, &fr, &d);
			out->last = r;
			if (r == PROTO_OK && out->n < MAX_FRAMES)
				out->f[out->n++] = fr;
			else if (r != PROTO_OK)
				break;
		}
		if (out->last != PROTO_OK && out->last != PROTO_NEED_MORE)
			return;
		off += k;
	}
}

static size_t whole(size_t i, void *arg) { (void)i; return *(size_t *)arg; }
static size_t one(size_t i, void *arg) { (void)i; (void)arg; return 1; }
static size_t split_at(size_t i, void *arg) { return i == 0 ? *(size_t *)arg : (size_t)-1; }

static uint8_t *sample_stream(size_t *n)
{
	/* CONNECT, PINGREQ, a PUBLISH with a 2-byte length, a 3-byte-length PUBLISH,
	 * SUBSCRIBE and DISCONNECT, back to back. */
	size_t big = 20000;
	uint8_t *s = calloc(1, 64 + 200 + big + 64);
	size_t len = 0;
	static const uint8_t head[] = { 0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0, 0xc0, 0x00 };
	memcpy(s + len, head, sizeof head), len += sizeof head;
	s[len++] = 0x30, s[len++] = 0x80 | (200 & 0x7f), s[len++] = 200 >> 7; /* remaining 200 */
	s[len++] = 0, s[len++] = 1, s[len++] = 't';
	len += 197;
	uint32_t rl = (uint32_t)big;
	s[len++] = 0x30, s[len++] = (uint8_t)(0x80 | (rl & 0x7f)), s[len++] = (uint8_t)(0x80 | ((rl >> 7) & 0x7f)),
	s[len++] = (uint8_t)(rl >> 14);
	s[len++] = 0, s[len++] = 1, s[len++] = 't';
	len += big - 3;
	static const uint8_t tail[] = { 0x82, 0x06, 0, 1, 0, 1, 'a', 1, 0xe0, 0x00 };
	memcpy(s + len, tail, sizeof tail), len += sizeof tail;
	*n = len;
	return s;
}

static void assert_same_frames(const struct frames *a, const struct frames *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->f[i].offset, b->f[i].offset);
		assert_int_equal(a->f[i].hdr_len, b->f[i].hdr_len);
		assert_int_equal(a->f[i].body_len, b->f[i].body_len);
		assert_int_equal(a->f[i].type, b->f[i].type);
		assert_int_equal(a->f[i].flags, b->f[i].flags);
	}
}

static void test_byte_at_a_time_equals_whole_buffer(void **state)
{
	(void)state;
	size_t n;
	uint8_t *s = sample_stream(&n);
	struct frames a, b;
	frame_chunks(s, n, whole, &n, 0, &a);
	frame_chunks(s, n, one, NULL, 0, &b);
	assert_int_equal(a.n, 6);
	assert_int_equal(a.f[3].hdr_len, 4);
	assert_int_equal(a.f[3].body_len, 20000);
	assert_same_frames(&a, &b);
	free(s);
}

static void test_every_split_point_gives_the_same_frames(void **state)
{
	(void)state;
	size_t n;
	uint8_t *s = sample_stream(&n);
	struct frames a, b;
	frame_chunks(s, n, whole, &n, 0, &a);
	for (size_t cut = 1; cut < n; cut += (cut < 300 || cut > n - 300) ? 1 : 97) {
		frame_chunks(s, n, split_at, &cut, 0, &b);
		assert_same_frames(&a, &b);
	}
	free(s);
}

static void test_peek_agrees_with_the_framer(void **state)
{
	(void)state;
	size_t n;
	uint8_t *s = sample_stream(&n);
	struct frames a;
	frame_chunks(s, n, whole, &n, 0, &a);
	size_t off = 0;
	for (size_t i = 0; i < a.n; i++) {
		struct proto_frame fr;
		struct proto_diag d;
		/* Every prefix short of the whole packet is NEED_MORE. */
		for (size_t k = 0; k < proto_frame_len(&a.f[i]); k += 1 + k / 3)
			assert_int_equal(mqtt_frame_peek(cursor_make(s + off, k), 0, &fr, &d), PROTO_NEED_MORE);
		assert_int_equal(mqtt_frame_peek(cursor_make(s + off, n - off), 0, &fr, &d), PROTO_OK);
		assert_int_equal(fr.hdr_len, a.f[i].hdr_len);
		assert_int_equal(fr.body_len, a.f[i].body_len);
		off += (size_t)proto_frame_len(&fr);
	}
	assert_int_equal(off, n);
	free(s);
}

static void test_header_known_before_body_and_cap_enforced(void **state)
{
	(void)state;
	/* A PUBLISH announcing the maximum length: the framer knows its size
	 * from 5 bytes, and a cap rejects it at once. */
	const uint8_t hdr[5] = { 0x30, 0xff, 0xff, 0xff, 0x7f };
	struct mqtt_framer f;
	struct proto_frame fr;
	struct proto_diag d;
	mqtt_framer_init(&f, 0);
	struct cursor in = cursor_make(hdr, 5);
	assert_int_equal(mqtt_framer_feed(&f, &in, &fr, &d), PROTO_NEED_MORE);
	assert_true(mqtt_framer_header_ready(&f, &fr));
	assert_int_equal(fr.body_len, MQTT_MAX_REMAINING_LEN);

	mqtt_framer_init(&f, 1024);
	in = cursor_make(hdr, 5);
	assert_int_equal(mqtt_framer_feed(&f, &in, &fr, &d), PROTO_E_TOO_LARGE);
	assert_string_equal(d.name, "packet_too_large");
	assert_int_equal(d.reason, 0x95);
	/* The error is sticky: the stream cannot be resynchronised by the framer. */
	const uint8_t ping[2] = { 0xc0, 0 };
	in = cursor_make(ping, 2);
	assert_int_equal(mqtt_framer_feed(&f, &in, &fr, &d), PROTO_E_TOO_LARGE);
}

static void test_cap_counts_the_whole_packet(void **state)
{
	(void)state;
	/* 10 + 2 header bytes = 12: exactly at a cap of 12 is fine, 11 is not. */
	const uint8_t p[12] = { 0x30, 10, 0, 1, 't' };
	struct proto_frame fr;
	struct proto_diag d;
	assert_int_equal(mqtt_frame_peek(cursor_make(p, 12), 12, &fr, &d), PROTO_OK);
	assert_int_equal(mqtt_frame_peek(cursor_make(p, 12), 11, &fr, &d), PROTO_E_TOO_LARGE);
}

static void test_fifth_length_byte_is_malformed(void **state)
{
	(void)state;
	const uint8_t p[6] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x01 };
	struct mqtt_framer f;
	struct proto_frame fr;
	struct proto_diag d;
	mqtt_framer_init(&f, 0);
	enum proto_err r = PROTO_NEED_MORE;
	for (size_t i = 0; i < 6 && r == PROTO_NEED_MORE; i++) {
		struct cursor in = cursor_make(p + i, 1);
		r = mqtt_framer_feed(&f, &in, &fr, &d);
	}
	assert_int_equal(r, PROTO_E_MALFORMED);
	assert_string_equal(d.name, "remaining_length_too_long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_byte_at_a_time_equals_whole_buffer),
		cmocka_unit_test(test_every_split_point_gives_the_same_frames),
		cmocka_unit_test(test_peek_agrees_with_the_framer),
		cmocka_unit_test(test_header_known_before_body_and_cap_enforced),
		cmocka_unit_test(test_cap_counts_the_whole_packet),
		cmocka_unit_test(test_fifth_length_byte_is_malformed),
	};
	return cmocka_run_group_tests_name("mqtt_framer", tests, NULL, NULL);
}
