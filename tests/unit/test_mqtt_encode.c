/* Encoders for what the proxy injects: every packet they write must decode
 * back, at its level, to the same reason and text; refusals map to the right
 * 3.1.1 return codes; nothing is written past the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mqtt.h"
#include "tests/unit/testutil.h"

static void decode_one(uint8_t level, enum proto_dir dir, const uint8_t *buf, size_t n, struct mqtt_packet *pkt)
{
	struct mqtt_codec c;
	mqtt_codec_init(&c);
	c.assumed_level = level;
	struct proto_diag d;
	assert_int_equal(mqtt_decode(&c, dir, cursor_make(buf, n), pkt, &d), PROTO_OK);
	assert_int_equal(pkt->len, n);
}

static void test_v5_disconnect_round_trips_with_reason_string(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = mqtt_encode_disconnect(5, 0x8D, "keep-alive 10 s, client silent 15.2 s", buf, sizeof buf);
	assert_true(n > 0);
	struct mqtt_packet p;
	decode_one(5, PROTO_S2C, buf, n, &p);
	assert_int_equal(p.type, MQTT_T_DISCONNECT);
	assert_int_equal(p.u.disconnect.reason, 0x8D);
	assert_true(cursor_eq_str(p.u.disconnect.props.reason_string, "keep-alive 10 s, client silent 15.2 s"));
	assert_string_equal(mqtt_reason_name(p.u.disconnect.reason, p.type), "Keep Alive timeout");
}

static void test_every_disconnect_reason_round_trips(void **state)
{
	(void)state;
	for (unsigned code = 0; code < 256; code++) {
		if (!mqtt_reason_allowed((uint8_t)code, MQTT_T_DISCONNECT))
			continue;
		uint8_t buf[16];
		size_t n = mqtt_encode_disconnect(5, (uint8_t)code, NULL, buf, sizeof buf);
		assert_int_equal(n, 4);
		struct mqtt_packet p;
		decode_one(5, PROTO_S2C, buf, n, &p);
		assert_int_equal(p.u.disconnect.reason, code);
	}
}

static void test_disconnect_before_v5_is_two_bytes(void **state)
{
	(void)state;
	uint8_t buf[8];
	assert_int_equal(mqtt_encode_disconnect(4, 0x8D, "ignored", buf, sizeof buf), 2);
	assert_int_equal(buf[0], 0xe0);
	assert_int_equal(buf[1], 0x00);
}

static void test_v5_connack_refusal_round_trips(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = mqtt_encode_connack(5, true, 0x9F, "take-over storm: cooldown 30 s", buf, sizeof buf);
	struct mqtt_packet p;
	decode_one(5, PROTO_S2C, buf, n, &p);
	assert_int_equal(p.u.connack.code, 0x9F);
	assert_false(p.u.connack.session_present); /* [MQTT-3.2.2-6] */
	assert_true(cursor_eq_str(p.u.connack.props.reason_string, "take-over storm: cooldown 30 s"));
}

static void test_v3_connack_maps_v5_reasons(void **state)
{
	(void)state;
	static const struct { uint8_t v5, v3; } map[] = {
		{ 0x00, 0 }, { 0x84, 1 }, { 0x85, 2 }, { 0x88, 3 }, { 0x86, 4 }, { 0x87, 5 }, { 0x9F, 3 }, { 0x89, 3 },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		for (uint8_t level = 3; level <= 4; level++) {
			uint8_t buf[8];
			size_t n = mqtt_encode_connack(level, false, map[i].v5, "not sent in 3.1.1", buf, sizeof buf);
			assert_int_equal(n, 4);
			struct mqtt_packet p;
			decode_one(level, PROTO_S2C, buf, n, &p);
			assert_int_equal(p.u.connack.code, map[i].v3);
		}
	}
}

static void test_long_reason_string_is_cut_on_a_utf8_boundary(void **state)
{
	(void)state;
	char text[1200];
	size_t len = 0;
	while (len + 3 < sizeof text) { /* "é" is two bytes: a cut can land inside it */
		text[len++] = 'a';
		text[len++] = (char)0xc3;
		text[len++] = (char)0xa9;
	}
	text[len] = 0;
	uint8_t buf[1024];
	size_t n = mqtt_encode_disconnect(5, 0x98, text, buf, sizeof buf);
	assert_true(n > 0 && n < 300);
	struct mqtt_packet p;
	decode_one(5, PROTO_S2C, buf, n, &p);
	assert_int_equal(mqtt_utf8_check(p.u.disconnect.props.reason_string), MQTT_E_NONE);
	assert_true(p.u.disconnect.props.reason_string.left <= 256);
}

static void test_small_buffer_writes_nothing_usable(void **state)
{
	(void)state;
	uint8_t buf[64];
	memset(buf, 0xAA, sizeof buf);
	assert_int_equal(mqtt_encode_disconnect(5, 0x8E, "session taken over", buf, 10), 0);
	assert_int_equal(buf[10], 0xAA);
	assert_int_equal(mqtt_encode_connack(4, false, 0x86, NULL, buf, 3), 0);
	assert_int_equal(mqtt_encode_disconnect(5, 0x8E, NULL, buf, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v5_disconnect_round_trips_with_reason_string),
		cmocka_unit_test(test_every_disconnect_reason_round_trips),
		cmocka_unit_test(test_disconnect_before_v5_is_two_bytes),
		cmocka_unit_test(test_v5_connack_refusal_round_trips),
		cmocka_unit_test(test_v3_connack_maps_v5_reasons),
		cmocka_unit_test(test_long_reason_string_is_cut_on_a_utf8_boundary),
		cmocka_unit_test(test_small_buffer_writes_nothing_usable),
	};
	return cmocka_run_group_tests_name("mqtt_encode", tests, NULL, NULL);
}
