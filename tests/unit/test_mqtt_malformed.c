/* Malformed and forbidden MQTT input: each row is one packet that breaks a
 * normative rule of the spec, with the stable violation name the decoder
 * must give it. One cmocka test per row, named after the rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mqtt.h"
#include "tests/unit/testutil.h"

struct bad_case {
	const char *name;   /* the rule, as the test's name */
	int level;          /* protocol level of the connection (CONNECT sets its own) */
	enum proto_dir dir;
	const char *hex;
	const char *error;  /* expected violation name */
	uint8_t reason;     /* expected MQTT 5 reason code for it */
};

#define C2S PROTO_C2S
#define S2C PROTO_S2C
static const struct bad_case cases[] = {
	{ "remaining_length_fifth_byte_mqtt_1_5_5", 4, C2S, "10ffffffff01", "remaining_length_too_long", 0x81 },
	{ "remaining_length_overlong_mqtt_1_5_5_1", 4, C2S, "10800000", "varint_not_minimal", 0x81 },
	{ "reserved_type_0_mqtt_2_1_2", 4, C2S, "0000", "reserved_packet_type", 0x82 },
	{ "auth_in_3_1_1_mqtt_2_1_2", 4, C2S, "f000", "auth_packet_before_mqtt5", 0x81 },
	{ "connect_flags_nibble_mqtt_2_1_3_1", 4, C2S, "120c00044d5154540402003c0000", "fixed_header_flags_invalid", 0x81 },
	{ "pubrel_flags_must_be_2_mqtt_2_1_3_1", 4, C2S, "60020001", "fixed_header_flags_invalid", 0x81 },
	{ "subscribe_flags_must_be_2_mqtt_3_8_1_1", 4, C2S, "800600010001" "6100", "fixed_header_flags_invalid", 0x81 },
	{ "pingreq_flags_must_be_0", 4, C2S, "c100", "fixed_header_flags_invalid", 0x81 },
	{ "publish_qos_3_mqtt_3_3_1_4", 4, C2S, "36050001610001", "publish_qos_3", 0x81 },
	{ "publish_dup_on_qos0_mqtt_3_3_1_2", 4, C2S, "3803000161", "publish_dup_on_qos0", 0x81 },
	{ "publish_topic_runs_past_packet", 4, C2S, "3003000561", "field_truncated", 0x81 },
	{ "pingreq_with_body", 4, C2S, "c00100", "trailing_bytes", 0x81 },
	{ "connect_protocol_name_mqtt_3_1_2_1", 4, C2S, "100c00044d5154580402003c0000", "protocol_name_invalid", 0x84 },
	{ "connect_level_6_mqtt_3_1_2_2", 4, C2S, "100c00044d5154540602003c0000", "protocol_level_unsupported", 0x84 },
	{ "connect_level_2", 4, C2S, "100e00064d51497364700202003c0000", "protocol_level_unsupported", 0x84 },
	{ "connect_reserved_flag_mqtt_3_1_2_3", 4, C2S, "100c00044d5154540403003c0000", "connect_reserved_flag", 0x81 },
	{ "will_qos_without_will_mqtt_3_1_2_13", 4, C2S, "100c00044d515454040a003c0000", "will_flags_inconsistent", 0x81 },
	{ "will_retain_without_will_mqtt_3_1_2_15", 4, C2S, "100c00044d5154540422003c0000", "will_flags_inconsistent", 0x81 },
	{ "will_qos_3_mqtt_3_1_2_12", 4, C2S, "100c00044d515454041e003c0000", "will_qos_3", 0x81 },
	{ "password_without_username_mqtt_3_1_2_22", 4, C2S, "100c00044d5154540442003c0000", "password_without_username", 0x81 },
	{ "client_id_invalid_utf8_mqtt_1_5_4_1", 4, C2S, "100e00044d5154540402003c0002c328", "utf8_invalid", 0x81 },
	{ "client_id_null_char_mqtt_1_5_4_2", 4, C2S, "100e00044d5154540402003c00026100", "utf8_null_character", 0x81 },
	{ "client_id_surrogate_mqtt_1_5_4_1", 4, C2S, "100f00044d5154540402003c0003eda080", "utf8_invalid", 0x81 },
	{ "client_id_overlong_utf8_mqtt_1_5_4_1", 4, C2S, "100e00044d5154540402003c0002c080", "utf8_invalid", 0x81 },
	{ "empty_client_id_without_clean_session_mqtt_3_1_3_7", 4, C2S, "100c00044d5154540400003c0000",
	  "client_id_empty_without_clean_session", 0x85 },
	{ "connect_longer_than_fields", 4, C2S, "100d00044d5154540402003c000000", "trailing_bytes", 0x81 },
	{ "connect_from_server", 4, S2C, "100c00044d5154540402003c0000", "packet_wrong_direction", 0x82 },
	{ "connack_from_client", 4, C2S, "20020000", "packet_wrong_direction", 0x82 },
	{ "connack_reserved_flags_mqtt_3_2_2_1", 4, S2C, "20020200", "connack_reserved_flags", 0x81 },
	{ "connack_return_code_6", 4, S2C, "20020006", "connack_return_code_invalid", 0x82 },
	{ "connack_v5_keep_alive_timeout_not_allowed", 5, S2C, "2003008d00", "reason_code_not_allowed", 0x81 },
	{ "property_unknown_identifier", 5, S2C, "20050000020500", "property_unknown", 0x81 },
	{ "topic_alias_in_connack", 5, S2C, "2006000003230001", "property_not_allowed_here", 0x81 },
	{ "receive_maximum_twice", 5, S2C, "200900000621000a21000a", "property_duplicate", 0x82 },
	{ "receive_maximum_zero_mqtt_3_2_2_3_3", 5, S2C, "2006000003210000", "property_value_invalid", 0x82 },
	{ "property_length_past_packet", 5, S2C, "200400000521", "property_length_overrun", 0x81 },
	{ "property_length_overlong_varint", 5, S2C, "2004000080 00", "varint_not_minimal", 0x81 },
	{ "puback_packet_id_zero_mqtt_2_2_1_3", 4, C2S, "40020000", "packet_id_zero", 0x82 },
	{ "publish_qos1_packet_id_zero_mqtt_2_2_1_3", 4, C2S, "32050001610000", "packet_id_zero", 0x82 },
	{ "subscribe_without_filters_mqtt_3_8_3_2", 4, C2S, "82020001", "subscribe_no_topic_filter", 0x82 },
	{ "unsubscribe_without_filters_mqtt_3_10_3_2", 4, C2S, "a2020001", "unsubscribe_no_topic_filter", 0x82 },
	{ "subscribe_qos_3_mqtt_3_8_3_4", 4, C2S, "82060001000161" "03", "subscription_options_invalid", 0x81 },
	{ "subscribe_reserved_bits_3_1_1_mqtt_3_8_3_4", 4, C2S, "82060001000161" "04", "subscription_options_invalid", 0x81 },
	{ "subscribe_retain_handling_3_mqtt_3_8_3_5", 5, C2S, "8207000100000161" "30", "subscription_options_invalid", 0x81 },
	{ "subscribe_empty_filter_mqtt_4_7_3_1", 4, C2S, "820500010000" "00", "topic_filter_empty", 0x82 },
	{ "publish_topic_wildcard_mqtt_3_3_2_2", 4, C2S, "300400026123", "publish_topic_has_wildcard", 0x81 },
	{ "publish_topic_empty_3_1_1_mqtt_4_7_3_1", 4, C2S, "30020000", "publish_topic_empty", 0x82 },
	{ "publish_topic_empty_without_alias_v5", 5, C2S, "3003000000", "publish_topic_empty", 0x82 },
	{ "publish_topic_alias_zero_mqtt_3_3_2_3_4", 5, C2S, "3006000003230000", "topic_alias_zero", 0x82 },
	{ "client_publish_with_subscription_id_mqtt_3_3_4_6", 5, C2S, "300600016102" "0b01", "property_not_allowed_here", 0x81 },
	{ "subscribe_subscription_id_zero", 5, C2S, "8209000102" "0b00" "00016100", "subscription_identifier_zero", 0x82 },
	{ "suback_code_3_in_3_1_1", 4, S2C, "9003000103", "suback_return_code_invalid", 0x82 },
	{ "suback_without_codes", 4, S2C, "90020001", "ack_no_return_code", 0x82 },
	{ "unsuback_3_1_1_with_payload", 4, S2C, "b003000100", "unsuback_length_not_2", 0x81 },
	{ "puback_reason_keep_alive_timeout", 5, C2S, "400300018d", "reason_code_not_allowed", 0x81 },
	{ "server_disconnect_in_3_1_1", 4, S2C, "e000", "packet_wrong_direction", 0x82 },
	{ "disconnect_3_1_1_with_body", 4, C2S, "e00100", "trailing_bytes", 0x81 },
	{ "disconnect_reason_continue_authentication", 5, C2S, "e00118", "reason_code_not_allowed", 0x81 },
	{ "auth_reason_disconnect_with_will", 5, C2S, "f00104", "reason_code_not_allowed", 0x81 },
	{ "will_properties_with_session_expiry", 5, C2S, "101800044d5154540506003c00000005110000000100017400" "00",
	  "will_property_not_allowed", 0x81 },
	{ "payload_format_indicator_2", 5, C2S, "3006000161020102", "property_value_invalid", 0x82 },
	{ "connack_v5_truncated_props", 5, S2C, "2003000003", "property_length_overrun", 0x81 },
	{ "pubrel_reason_no_matching_subscribers", 5, C2S, "620300011" "0", "reason_code_not_allowed", 0x81 },
	{ "user_property_value_invalid_utf8", 5, S2C, "200a000007260001610001ff", "utf8_invalid", 0x81 },
};

static void strip_spaces(char *s)
{
	char *w = s;
	for (; *s; s++)
		if (*s != ' ')
			*w++ = *s;
	*w = 0;
}

static void test_malformed_case(void **state)
{
	const struct bad_case *bc = *state;
	char hex[512];
	snprintf(hex, sizeof hex, "%s", bc->hex);
	strip_spaces(hex);
	size_t n;
	uint8_t *buf = tu_hex(hex, &n);
	struct mqtt_codec codec;
	mqtt_codec_init(&codec);
	codec.assumed_level = (uint8_t)bc->level;
	struct mqtt_packet pkt;
	struct proto_diag d;
	enum proto_err err;
	size_t got = tu_decode_stream(&codec, bc->dir, buf, n, &pkt, 1, &err, &d);
	free(buf);
	assert_int_equal(got, 0);
	assert_true(err != PROTO_OK && err != PROTO_NEED_MORE);
	assert_string_equal(d.name, bc->error);
	assert_int_equal(d.reason, bc->reason);
	assert_int_equal(d.cls, err);
	assert_true(d.offset <= n);
}

int main(void)
{
	enum { N = sizeof cases / sizeof cases[0] };
	struct CMUnitTest tests[N];
	for (size_t i = 0; i < N; i++) {
		struct CMUnitTest t = cmocka_unit_test_prestate(test_malformed_case, (void *)&cases[i]);
		t.name = cases[i].name;
		tests[i] = t;
	}
	return cmocka_run_group_tests_name("mqtt_malformed", tests, NULL, NULL);
}
