/* Reason-code and violation tables: spec names, where each code may appear,
 * 3.1.1 return codes, and a violation table with unique, stable names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mqtt.h"

static void test_spec_names_of_disconnect_codes(void **state)
{
	(void)state;
	assert_string_equal(mqtt_reason_name(0x8D, MQTT_T_DISCONNECT), "Keep Alive timeout");
	assert_string_equal(mqtt_reason_name(0x8E, MQTT_T_DISCONNECT), "Session taken over");
	assert_string_equal(mqtt_reason_name(0x93, MQTT_T_DISCONNECT), "Receive Maximum exceeded");
	assert_string_equal(mqtt_reason_name(0x00, MQTT_T_DISCONNECT), "Normal disconnection");
	assert_string_equal(mqtt_reason_name(0x00, MQTT_T_SUBACK), "Granted QoS 0");
	assert_string_equal(mqtt_reason_name(0x00, MQTT_T_CONNACK), "Success");
	assert_null(mqtt_reason_name(0x03, MQTT_T_DISCONNECT));
	assert_string_equal(mqtt_reason_slug(0x97, MQTT_T_DISCONNECT), "quota_exceeded");
}

static void test_where_codes_may_appear_mqtt_2_4(void **state)
{
	(void)state;
	assert_true(mqtt_reason_allowed(0x8D, MQTT_T_DISCONNECT));
	assert_false(mqtt_reason_allowed(0x8D, MQTT_T_CONNACK));
	assert_true(mqtt_reason_allowed(0x86, MQTT_T_CONNACK));
	assert_false(mqtt_reason_allowed(0x86, MQTT_T_DISCONNECT));
	assert_true(mqtt_reason_allowed(0x92, MQTT_T_PUBREL));
	assert_false(mqtt_reason_allowed(0x10, MQTT_T_PUBREL));
	assert_true(mqtt_reason_allowed(0x04, MQTT_T_DISCONNECT));
	assert_true(mqtt_reason_allowed(0x18, MQTT_T_AUTH));
	assert_false(mqtt_reason_allowed(0x18, MQTT_T_DISCONNECT));
	assert_true(mqtt_reason_allowed(0x02, MQTT_T_SUBACK));
}

static void test_every_defined_code_has_a_unique_slug(void **state)
{
	(void)state;
	const char *seen[256] = { 0 };
	for (unsigned c = 1; c < 256; c++) {
		const char *s = mqtt_reason_slug((uint8_t)c, MQTT_T_DISCONNECT);
		if (!s) {
			assert_null(mqtt_reason_name((uint8_t)c, MQTT_T_DISCONNECT));
			continue;
		}
		for (unsigned k = 0; k < c; k++)
			if (seen[k])
				assert_string_not_equal(seen[k], s);
		seen[c] = s;
	}
}

static void test_v3_connack_names(void **state)
{
	(void)state;
	assert_string_equal(mqtt_v3_connack_name(4), "Connection Refused, bad user name or password");
	assert_string_equal(mqtt_v3_connack_name(5), "Connection Refused, not authorized");
	assert_null(mqtt_v3_connack_name(6));
}

static void test_violation_table_is_consistent(void **state)
{
	(void)state;
	for (int e = 1; e < MQTT_E__COUNT; e++) {
		const char *n = mqtt_err_name((enum mqtt_err)e);
		assert_true(n && *n);
		for (int k = 1; k < e; k++)
			assert_string_not_equal(n, mqtt_err_name((enum mqtt_err)k));
		uint8_t r = mqtt_err_reason((enum mqtt_err)e);
		/* Every violation maps to an error reason a CONNACK or DISCONNECT may carry. */
		assert_true(r >= 0x80);
		assert_true(mqtt_reason_allowed(r, MQTT_T_CONNACK) || mqtt_reason_allowed(r, MQTT_T_DISCONNECT));
		enum proto_err c = mqtt_err_class((enum mqtt_err)e);
		assert_true(c >= PROTO_E_MALFORMED && c < PROTO_E__COUNT);
		assert_true(strlen(mqtt_err_spec((enum mqtt_err)e)) > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_names_of_disconnect_codes),
		cmocka_unit_test(test_where_codes_may_appear_mqtt_2_4),
		cmocka_unit_test(test_every_defined_code_has_a_unique_slug),
		cmocka_unit_test(test_v3_connack_names),
		cmocka_unit_test(test_violation_table_is_consistent),
	};
	return cmocka_run_group_tests_name("mqtt_reason", tests, NULL, NULL);
}
