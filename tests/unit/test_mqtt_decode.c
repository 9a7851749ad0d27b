/* Field-by-field decoding of packets that real clients and mosquitto 2.0.11
 * put on the wire (bytes copied from tests/data/recorded/fixtures.tsv, see
 * its SOURCES.md): paho 5.0 CONNECT with Will properties, mosquitto_sub
 * SUBSCRIBE with v5 options, CONNACK refusals, server DISCONNECTs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mqtt.h"
#include "tests/unit/testutil.h"

static uint8_t *bytes;

static void decode_hex(const char *hex, uint8_t level, enum proto_dir dir, struct mqtt_packet *p)
{
	size_t n;
	free(bytes);
	bytes = tu_hex(hex, &n);
	struct mqtt_codec c;
	mqtt_codec_init(&c);
	c.level = level;
	struct proto_diag d = { 0 };
	enum proto_err e = mqtt_decode(&c, dir, cursor_make(bytes, n), p, &d);
	if (e != PROTO_OK)
		fail_msg("%s: %s at %u", d.name, d.field ? d.field : "-", d.offset);
	assert_int_equal(p->len, n);
}

static int teardown(void **state)
{
	(void)state;
	free(bytes);
	bytes = NULL;
	return 0;
}

/* paho 1.6.1, MQTTv5, will with retain and QoS 1, user and password. */
static void test_paho5_connect_with_will_properties(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("10850100044d51545405ee000126110000003c21001422000526000361707000137769726577617264656e2d"
		   "7265636f7264657200077061686f352d611903000a746578742f706c61696e2600046b696e6400036c7774"
		   "0016636c69656e74732f7061686f352d612f73746174757300076f66666c696e650005616c696365000761"
		   "6c6963657077", 0, PROTO_C2S, &p);
	const struct mqtt_connect *c = &p.u.connect;
	assert_int_equal(p.type, MQTT_T_CONNECT);
	assert_int_equal(c->level, 5);
	assert_true(c->clean_start && c->will && c->will_retain && c->has_username && c->has_password);
	assert_int_equal(c->will_qos, 1);
	assert_int_equal(c->keep_alive_s, 1);
	assert_int_equal(c->props.session_expiry, 60);
	assert_int_equal(c->props.receive_maximum, 20);
	assert_int_equal(c->props.topic_alias_maximum, 5);
	assert_true(cursor_eq_str(c->props.user_key, "app"));
	assert_true(cursor_eq_str(c->props.user_value, "wirewarden-recorder"));
	assert_true(cursor_eq_str(c->client_id, "paho5-a"));
	assert_true(cursor_eq_str(c->will_props.content_type, "text/plain"));
	assert_true(cursor_eq_str(c->will_props.user_key, "kind"));
	assert_true(cursor_eq_str(c->will_topic, "clients/paho5-a/status"));
	assert_true(cursor_eq_str(c->will_payload, "offline"));
	assert_true(cursor_eq_str(c->username, "alice"));
	assert_true(cursor_eq_str(c->password, "alicepw"));
	struct proto_facts f;
	mqtt_packet_facts(&p, &f);
	assert_int_equal(f.kind, FACT_LOGON);
	assert_int_equal(f.heartbeat_s, 1);
	assert_int_equal(f.receive_max, 20);
	assert_true(f.will && f.has_credentials);
}

/* paho 5.0 SUBSCRIBE: subscription identifier, user property, options. */
static void test_paho5_subscribe_options_and_identifier(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("824c0001110b072600066f726967696e00047061686f000e73656e736f72732f2b2f74656d7004000668"
		   "6f6d652f2309000b616c657274732f6669726522000d636d642f7061686f352d612f2312", 5, PROTO_C2S, &p);
	const struct mqtt_subscribe *s = &p.u.subscribe;
	assert_int_equal(s->packet_id, 1);
	assert_int_equal(s->props.subscription_id, 7);
	assert_int_equal(s->count, 4);
	struct cursor it = s->entries, filter;
	uint8_t opt;
	assert_true(mqtt_topic_list_next(&it, true, &filter, &opt));
	assert_true(cursor_eq_str(filter, "sensors/+/temp"));
	assert_int_equal(opt, 0x04); /* QoS 0, No Local */
	assert_true(mqtt_topic_list_next(&it, true, &filter, &opt));
	assert_true(cursor_eq_str(filter, "home/#"));
	assert_int_equal(opt, 0x09); /* QoS 1, Retain As Published */
	assert_true(mqtt_topic_list_next(&it, true, &filter, &opt));
	assert_int_equal((opt >> 4) & 3, 2); /* Retain Handling 2 */
	assert_true(mqtt_topic_list_next(&it, true, &filter, &opt));
	assert_false(mqtt_topic_list_next(&it, true, &filter, &opt));
}

/* paho 5.0 PUBLISH with payload format, message expiry, content type and
 * two user properties. */
static void test_paho5_publish_properties(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("303b000f73656e736f72732f62312f74656d70250101020000007803000a746578742f706c61696e260001"
		   "6b000176260004756e697400014332302e35", 5, PROTO_C2S, &p);
	const struct mqtt_publish *pb = &p.u.publish;
	assert_int_equal(pb->qos, 0);
	assert_true(cursor_eq_str(pb->topic, "sensors/b1/temp"));
	assert_int_equal(pb->props.payload_format, 1);
	assert_int_equal(pb->props.message_expiry, 120);
	assert_true(cursor_eq_str(pb->props.content_type, "text/plain"));
	assert_int_equal(pb->props.user_property_count, 2);
	assert_true(cursor_eq_str(pb->payload, "20.5"));
}

/* mosquitto's v5 CONNACK: Topic Alias Maximum 10, Receive Maximum 20. */
static void test_mosquitto_v5_connack_properties(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("200901000622000a210014", 5, PROTO_S2C, &p);
	assert_true(p.u.connack.session_present);
	assert_int_equal(p.u.connack.code, 0);
	assert_int_equal(p.u.connack.props.topic_alias_maximum, 10);
	assert_int_equal(p.u.connack.props.receive_maximum, 20);
	struct proto_facts f;
	mqtt_packet_facts(&p, &f);
	assert_int_equal(f.kind, FACT_LOGON_ACK);
	assert_false(f.refused);
	assert_int_equal(f.receive_max, 20);
}

/* mosquitto refuses a wrong password with "not authorised" at both levels. */
static void test_mosquitto_connack_refusals(void **state)
{
	(void)state;
	struct mqtt_packet p;
	struct proto_facts f;
	decode_hex("20020005", 4, PROTO_S2C, &p);
	assert_int_equal(p.u.connack.code, 5);
	assert_string_equal(mqtt_v3_connack_name(p.u.connack.code), "Connection Refused, not authorized");
	decode_hex("2003008700", 5, PROTO_S2C, &p);
	assert_int_equal(p.u.connack.code, 0x87);
	mqtt_packet_facts(&p, &f);
	assert_true(f.refused);
	decode_hex("2003008c00", 5, PROTO_S2C, &p); /* CONNECT with an Authentication Method */
	assert_string_equal(mqtt_reason_name(p.u.connack.code, MQTT_T_CONNACK), "Bad authentication method");
}

/* mosquitto answers a QoS 3 PUBLISH and a type-0 packet from a v5 client with
 * a DISCONNECT: 0x81 Malformed Packet, 0x82 Protocol Error. */
static void test_mosquitto_server_disconnects(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("e00181", 5, PROTO_S2C, &p);
	assert_true(p.u.disconnect.has_reason);
	assert_int_equal(p.u.disconnect.reason, 0x81);
	decode_hex("e00182", 5, PROTO_S2C, &p);
	assert_int_equal(p.u.disconnect.reason, 0x82);
	struct proto_facts f;
	mqtt_packet_facts(&p, &f);
	assert_int_equal(f.kind, FACT_DISCONNECT);
	assert_true(f.refused);
}

/* MQTT 3.1: "MQIsdp", level 3, from mosquitto_pub -V mqttv31. */
static void test_mqtt31_connect(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("102200064d514973647003c2003c00087633312d707562300003626f620005626f627077", 0, PROTO_C2S, &p);
	assert_int_equal(p.u.connect.level, 3);
	assert_true(cursor_eq_str(p.u.connect.protocol_name, "MQIsdp"));
	assert_true(cursor_eq_str(p.u.connect.client_id, "v31-pub0"));
	assert_true(cursor_eq_str(p.u.connect.username, "bob"));
}

/* A 3.1.1 broker answering a v5 CONNECT with a two-byte CONNACK. */
static void test_v3_connack_to_v5_client(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_hex("20020001", 5, PROTO_S2C, &p);
	assert_true(p.u.connack.v3_form);
	assert_int_equal(p.u.connack.code, 1);
}

/* The decoder learns the level from CONNECT and applies it to the server. */
static void test_level_comes_from_connect(void **state)
{
	(void)state;
	size_t n;
	uint8_t *b = tu_hex("101000044d5154540502003c03210014000000", &n);
	struct mqtt_codec c;
	mqtt_codec_init(&c);
	struct mqtt_packet p;
	struct proto_diag d;
	/* rl says 16 but 17 bytes follow: trailing bytes */
	assert_int_equal(mqtt_decode(&c, PROTO_C2S, cursor_make(b, n), &p, &d), PROTO_E_MALFORMED);
	assert_int_equal(c.level, MQTT_LEVEL_UNKNOWN);
	assert_int_equal(mqtt_decode(&c, PROTO_C2S, cursor_make(b, n - 1), &p, &d), PROTO_OK);
	assert_int_equal(c.level, MQTT_LEVEL_5);
	free(b);
	b = tu_hex("e00181", &n);
	assert_int_equal(mqtt_decode(&c, PROTO_S2C, cursor_make(b, n), &p, &d), PROTO_OK);
	assert_int_equal(p.u.disconnect.reason, 0x81);
	free(b);
}

/* A shell streaming a large PUBLISH decodes its head from a prefix. */
static void test_publish_head_decodes_from_a_prefix(void **state)
{
	(void)state;
	size_t n;
	/* v5 PUBLISH QoS 1, topic "t", packet id 7, no properties, 300-byte payload */
	uint8_t *b = calloc(1, 400);
	b[0] = 0x32, b[1] = 0x80 | (306 & 0x7f), b[2] = 306 >> 7;
	memcpy(b + 3, "\x00\x01t\x00\x07\x00", 6);
	n = 3 + 306;
	struct mqtt_codec c;
	mqtt_codec_init(&c);
	c.level = 5;
	struct mqtt_packet p;
	struct proto_diag d;
	assert_int_equal(mqtt_decode_prefix(&c, PROTO_C2S, cursor_make(b, 5), &p, &d), PROTO_NEED_MORE);
	assert_int_equal(mqtt_decode_prefix(&c, PROTO_C2S, cursor_make(b, 20), &p, &d), PROTO_OK);
	assert_int_equal(p.len, n);
	assert_int_equal(p.u.publish.packet_id, 7);
	assert_true(cursor_eq_str(p.u.publish.topic, "t"));
	assert_int_equal(p.u.publish.payload.left, 11);
	assert_int_equal(mqtt_decode_prefix(&c, PROTO_C2S, cursor_make(b, n), &p, &d), PROTO_OK);
	assert_int_equal(p.u.publish.payload.left, 300);
	/* Only PUBLISH streams: a SUBSCRIBE prefix waits for the whole packet. */
	b[0] = 0x82;
	assert_int_equal(mqtt_decode_prefix(&c, PROTO_C2S, cursor_make(b, 20), &p, &d), PROTO_NEED_MORE);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_paho5_connect_with_will_properties, teardown),
		cmocka_unit_test_teardown(test_paho5_subscribe_options_and_identifier, teardown),
		cmocka_unit_test_teardown(test_paho5_publish_properties, teardown),
		cmocka_unit_test_teardown(test_mosquitto_v5_connack_properties, teardown),
		cmocka_unit_test_teardown(test_mosquitto_connack_refusals, teardown),
		cmocka_unit_test_teardown(test_mosquitto_server_disconnects, teardown),
		cmocka_unit_test_teardown(test_mqtt31_connect, teardown),
		cmocka_unit_test_teardown(test_v3_connack_to_v5_client, teardown),
		cmocka_unit_test(test_level_comes_from_connect),
		cmocka_unit_test(test_publish_head_decodes_from_a_prefix),
	};
	return cmocka_run_group_tests_name("mqtt_decode", tests, NULL, NULL);
}
