/* The bounded cursor: reads never pass the end, failures leave the cursor
 * untouched, and the Variable Byte Integer follows spec 1.5.5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cursor.h"

static void test_reads_fail_at_the_end_without_moving(void **state)
{
	(void)state;
	const uint8_t b[3] = { 1, 2, 3 };
	struct cursor c = cursor_make(b, 3);
	uint32_t v32 = 7;
	uint16_t v16 = 0;
	uint8_t v8 = 0;
	assert_false(cursor_be32(&c, &v32));
	assert_int_equal(v32, 7);
	assert_int_equal(cursor_left(&c), 3);
	assert_true(cursor_be16(&c, &v16));
	assert_int_equal(v16, 0x0102);
	assert_false(cursor_be16(&c, &v16));
	assert_true(cursor_u8(&c, &v8));
	assert_int_equal(v8, 3);
	assert_false(cursor_u8(&c, &v8));
	assert_true(cursor_empty(&c));
}

static void test_take_carves_a_bounded_sub_view(void **state)
{
	(void)state;
	const uint8_t b[5] = { 0, 2, 'h', 'i', 9 };
	struct cursor c = cursor_make(b, 5), s, sub;
	assert_true(cursor_str16(&c, &s));
	assert_true(cursor_eq_str(s, "hi"));
	assert_int_equal(cursor_left(&c), 1);
	assert_false(cursor_take(&c, 2, &sub));
	assert_int_equal(cursor_left(&c), 1);
	struct cursor d = cursor_make(b, 3);
	assert_false(cursor_str16(&d, &s)); /* length 2, one byte left */
	assert_int_equal(cursor_left(&d), 3);
}

static void test_varint_examples_of_mqtt_1_5_5(void **state)
{
	(void)state;
	static const struct { uint8_t b[4]; size_t n; uint32_t v; } ok[] = {
		{ { 0x00 }, 1, 0 }, { { 0x7f }, 1, 127 }, { { 0x80, 0x01 }, 2, 128 },
		{ { 0xff, 0x7f }, 2, 16383 }, { { 0x80, 0x80, 0x01 }, 3, 16384 },
		{ { 0xff, 0xff, 0x7f }, 3, 2097151 }, { { 0x80, 0x80, 0x80, 0x01 }, 4, 2097152 },
		{ { 0xff, 0xff, 0xff, 0x7f }, 4, 268435455 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct cursor c = cursor_make(ok[i].b, ok[i].n);
		uint32_t v = 0;
		assert_int_equal(cursor_varint(&c, &v), CURSOR_VARINT_OK);
		assert_int_equal(v, ok[i].v);
		assert_true(cursor_empty(&c));
	}
}

static void test_varint_rejects_fifth_byte_and_overlong_mqtt_1_5_5_1(void **state)
{
	(void)state;
	const uint8_t five[5] = { 0xff, 0xff, 0xff, 0xff, 0x01 };
	const uint8_t overlong[2] = { 0x80, 0x00 };
	const uint8_t shortb[2] = { 0x80, 0x80 };
	uint32_t v;
	struct cursor c = cursor_make(five, 5);
	assert_int_equal(cursor_varint(&c, &v), CURSOR_VARINT_TOO_LONG);
	assert_int_equal(cursor_left(&c), 5);
	c = cursor_make(overlong, 2);
	assert_int_equal(cursor_varint(&c, &v), CURSOR_VARINT_OVERLONG);
	c = cursor_make(shortb, 2);
	assert_int_equal(cursor_varint(&c, &v), CURSOR_VARINT_SHORT);
	c = cursor_make(NULL, 0);
	assert_int_equal(cursor_varint(&c, &v), CURSOR_VARINT_SHORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_fail_at_the_end_without_moving),
		cmocka_unit_test(test_take_carves_a_bounded_sub_view),
		cmocka_unit_test(test_varint_examples_of_mqtt_1_5_5),
		cmocka_unit_test(test_varint_rejects_fifth_byte_and_overlong_mqtt_1_5_5_1),
	};
	return cmocka_run_group_tests_name("cursor", tests, NULL, NULL);
}
