/* AMPS headers: the json header in both key spellings, escapes, numbers and
 * literals, nested values refused, unknown keys ignored, the body after the
 * brace; sow batches; fix and nvfix; unknown commands; the codec telling the
 * server's logon ack from other acks; facts for the engine; the encoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/amps.h"

static struct cursor S(const char *s) { return cursor_make(s, strlen(s)); }

static enum proto_err dec(enum proto_dir dir, const char *payload, struct amps_header *h, struct proto_diag *d)
{
	struct amps_codec c;
	amps_codec_init(&c, AMPS_WIRE_AUTO);
	return amps_decode(&c, dir, S(payload), h, d);
}

static void test_logon_short_keys(void **state)
{
	(void)state;
	struct amps_header h;
	struct proto_diag d;
	const char *p = "{\"c\":\"logon\",\"cid\":\"1\",\"client_name\":\"orders-7\",\"user_id\":\"svc\",\"pw\":\"x\","
			"\"version\":\"5.3.5.1:python\",\"a\":\"processed\",\"zz_unknown\":42}";
	assert_int_equal(dec(PROTO_C2S, p, &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_LOGON);
	assert_true(cursor_eq_str(h.f[AMPS_F_CLIENT_NAME], "orders-7"));
	assert_true(cursor_eq_str(h.f[AMPS_F_USER_ID], "svc"));
	assert_true(cursor_eq_str(h.f[AMPS_F_ACK_TYPE], "processed"));
	assert_true(cursor_eq_str(h.f[AMPS_F_CID], "1"));
	assert_true(AMPS_HAS(&h, AMPS_F_PASSWORD));
	assert_int_equal(h.hdr_len, strlen(p));
	assert_int_equal(h.body.left, 0);
}

static void test_long_keys_whitespace_and_body(void **state)
{
	(void)state;
	struct amps_header h;
	struct proto_diag d;
	const char *p = " { \"cmd\" : \"publish\" , \"topic\":\"orders\", \"cmd_id\": 17, \"opts\":null ,"
			"\"seq\":123, \"ack_type\":\"persisted\", \"sub_ids\":\"a,b\" }{\"id\":1,\"x\":[1,2]}";
	assert_int_equal(dec(PROTO_C2S, p, &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_PUBLISH);
	assert_true(cursor_eq_str(h.f[AMPS_F_TOPIC], "orders"));
	assert_true(cursor_eq_str(h.f[AMPS_F_CID], "17"));
	assert_false(AMPS_HAS(&h, AMPS_F_OPTIONS)); /* null is absent */
	assert_true(cursor_eq_str(h.f[AMPS_F_SEQ], "123"));
	assert_true(cursor_eq_str(h.f[AMPS_F_SUB_ID], "a,b"));
	assert_true(cursor_eq_str(h.body, "{\"id\":1,\"x\":[1,2]}")); /* the body is not parsed */
	/* "p" is publish too */
	assert_int_equal(dec(PROTO_C2S, "{\"c\":\"p\",\"t\":\"x\"}", &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_PUBLISH);
}

static void test_escapes(void **state)
{
	(void)state;
	struct amps_header h;
	struct proto_diag d;
	const char *p = "{\"c\":\"logon\",\"client_name\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\",\"user_id\":\"\\/u\"}";
	assert_int_equal(dec(PROTO_C2S, p, &h, &d), PROTO_OK);
	assert_true(h.escaped & (1u << AMPS_F_CLIENT_NAME));
	char buf[64];
	int n = amps_json_unescape(h.f[AMPS_F_CLIENT_NAME], buf, sizeof buf);
	assert_int_equal(n, 11);
	assert_string_equal(buf, "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(amps_json_unescape(h.f[AMPS_F_CLIENT_NAME], buf, 5), -1); /* does not fit */
	/* an escaped command is still a command */
	assert_int_equal(dec(PROTO_C2S, "{\"c\":\"log\\u006fn\"}", &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_LOGON);
}

static void expect_bad(const char *p, enum proto_err cls, const char *name)
{
	struct amps_header h;
	struct proto_diag d;
	assert_int_equal(dec(PROTO_C2S, p, &h, &d), cls);
	assert_string_equal(d.name, name);
}

static void test_bad_json(void **state)
{
	(void)state;
	expect_bad("{\"c\":\"logon\",\"o\":{\"x\":1}}", PROTO_E_MALFORMED, "json_nested_value");
	expect_bad("{\"c\":[\"logon\"]}", PROTO_E_MALFORMED, "json_nested_value");
	expect_bad("{\"c\":\"logon", PROTO_E_MALFORMED, "json_string_unterminated");
	expect_bad("{\"c\":\"log\\qon\"}", PROTO_E_MALFORMED, "json_bad_escape");
	expect_bad("{\"c\":\"x\\u12\"}", PROTO_E_MALFORMED, "json_bad_escape");
	expect_bad("{\"c\":\"logon\",", PROTO_E_MALFORMED, "json_header_unterminated");
	expect_bad("{\"c\":\"logon\" \"t\":1}", PROTO_E_MALFORMED, "json_syntax");
	expect_bad("{\"c\" \"logon\"}", PROTO_E_MALFORMED, "json_syntax");
	expect_bad("{\"s\":-}", PROTO_E_MALFORMED, "json_syntax");
	expect_bad("{\"s\":1.}", PROTO_E_MALFORMED, "json_syntax");
	expect_bad("{\"s\":tru}", PROTO_E_MALFORMED, "json_syntax");
	expect_bad("{c:1}", PROTO_E_MALFORMED, "json_syntax");
	expect_bad("{\"c\":\"a\x01\"}", PROTO_E_MALFORMED, "json_string_unterminated");
	expect_bad("{\"c\":\"dance\"}", PROTO_E_PROTOCOL, "unknown_command");
	expect_bad("{\"t\":\"x\"}", PROTO_E_PROTOCOL, "command_missing");
	/* every prefix of a good header fails cleanly, never reads past it */
	const char *good = "{\"c\":\"heartbeat\",\"o\":\"start,5\",\"s\":1e3,\"b\":true,\"n\":false}";
	for (size_t k = 0; k < strlen(good); k++) {
		char *cut = malloc(k ? k : 1);
		memcpy(cut, good, k);
		struct amps_header h;
		struct proto_diag d;
		struct amps_codec c;
		amps_codec_init(&c, AMPS_WIRE_JSON);
		assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(cut, k), &h, &d), k ? PROTO_E_MALFORMED : PROTO_OK);
		free(cut);
	}
}

static void test_heartbeat_options(void **state)
{
	(void)state;
	struct amps_header h;
	struct proto_diag d;
	assert_int_equal(dec(PROTO_C2S, "{\"c\":\"heartbeat\",\"o\":\"start,30\",\"a\":\"received\"}", &h, &d), PROTO_OK);
	assert_int_equal(h.hb_op, AMPS_HB_START);
	assert_int_equal(h.hb_interval_s, 30);
	struct proto_facts f;
	struct amps_codec c;
	amps_codec_init(&c, AMPS_WIRE_JSON);
	amps_header_facts(&c, PROTO_C2S, &h, &f);
	assert_int_equal(f.kind, FACT_HEARTBEAT);
	assert_int_equal(f.heartbeat_s, 30);
	assert_int_equal(f.protocol, PROTO_ID_AMPS);
	assert_int_equal(dec(PROTO_C2S, "{\"c\":\"heartbeat\",\"options\":\"beat\"}", &h, &d), PROTO_OK);
	assert_int_equal(h.hb_op, AMPS_HB_BEAT);
	amps_header_facts(&c, PROTO_C2S, &h, &f);
	assert_int_equal(f.heartbeat_s, 0);
	assert_int_equal(dec(PROTO_S2C, "{\"c\":\"heartbeat\"}", &h, &d), PROTO_OK);
	assert_int_equal(h.hb_op, AMPS_HB_BEAT);
}

static void test_codec_finds_the_logon_ack(void **state)
{
	(void)state;
	struct amps_codec c;
	struct amps_header h;
	struct proto_diag d;
	struct proto_facts f;
	amps_codec_init(&c, AMPS_WIRE_AUTO);
	assert_int_equal(amps_decode(&c, PROTO_C2S, S("{\"c\":\"logon\",\"cid\":\"7\",\"client_name\":\"n\",\"user_id\":\"u\"}"), &h, &d),
			 PROTO_OK);
	amps_header_facts(&c, PROTO_C2S, &h, &f);
	assert_int_equal(f.kind, FACT_LOGON);
	assert_true(cursor_eq_str(f.identity, "n"));
	assert_true(cursor_eq_str(f.user, "u"));
	assert_true(f.has_credentials);
	assert_string_equal(f.type_name, "logon");
	assert_int_equal(c.wire, AMPS_WIRE_JSON);
	/* an ack for another command is not the logon's */
	assert_int_equal(amps_decode(&c, PROTO_S2C, S("{\"c\":\"ack\",\"cid\":\"8\",\"status\":\"success\"}"), &h, &d), PROTO_OK);
	assert_false(h.logon_ack);
	assert_int_equal(amps_decode(&c, PROTO_S2C,
				     S("{\"c\":\"ack\",\"cid\":\"7\",\"a\":\"processed\",\"status\":\"failure\",\"reason\":\"auth failure\"}"),
				     &h, &d), PROTO_OK);
	assert_true(h.logon_ack);
	amps_header_facts(&c, PROTO_S2C, &h, &f);
	assert_int_equal(f.kind, FACT_LOGON_ACK);
	assert_true(f.refused);
	assert_true(cursor_eq_str(f.text, "auth failure"));
	/* only once */
	assert_int_equal(amps_decode(&c, PROTO_S2C, S("{\"c\":\"ack\",\"cid\":\"7\",\"status\":\"success\"}"), &h, &d), PROTO_OK);
	assert_false(h.logon_ack);
}

static void test_sow_batch(void **state)
{
	(void)state;
	const char *p = "{\"c\":\"sow\",\"t\":\"orders\",\"sub_id\":\"q1\",\"bs\":2}"
			"{\"k\":\"1\",\"l\":7,\"x\":\"c1\"}{\"a\":1}"
			"{\"k\":\"2\",\"l\":0}"
			"{\"k\":\"3\",\"l\":3}abc";
	struct amps_header h;
	struct proto_diag d;
	assert_int_equal(dec(PROTO_S2C, p, &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_SOW);
	struct cursor it = h.body;
	struct amps_sow_record r;
	assert_int_equal(amps_sow_next(&it, &r, &d), PROTO_OK);
	assert_true(cursor_eq_str(r.hdr.f[AMPS_F_SOW_KEY], "1"));
	assert_true(cursor_eq_str(r.hdr.f[AMPS_F_CORRELATION], "c1"));
	assert_true(cursor_eq_str(r.data, "{\"a\":1}"));
	assert_int_equal(amps_sow_next(&it, &r, &d), PROTO_OK);
	assert_int_equal(r.data.left, 0);
	assert_int_equal(amps_sow_next(&it, &r, &d), PROTO_OK);
	assert_true(cursor_eq_str(r.data, "abc"));
	assert_int_equal(amps_sow_next(&it, &r, &d), PROTO_NEED_MORE);
	/* a record that claims more than is there */
	struct cursor bad = S("{\"k\":\"1\",\"l\":9}abc");
	assert_int_equal(amps_sow_next(&bad, &r, &d), PROTO_E_MALFORMED);
	assert_string_equal(d.name, "sow_record_length");
	bad = S("{\"k\":\"1\"}abc");
	assert_int_equal(amps_sow_next(&bad, &r, &d), PROTO_E_MALFORMED);
	assert_string_equal(d.name, "sow_record_header");
}

static void test_fix_and_nvfix(void **state)
{
	(void)state;
	struct amps_codec c;
	struct amps_header h;
	struct proto_diag d;
	amps_codec_init(&c, AMPS_WIRE_AUTO);
	const char fix[] = "20000=logon\x01" "20002=orders-7\x01" "20003=svc\x01" "99999=x\x01\x02" "body";
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(fix, sizeof fix - 1), &h, &d), PROTO_OK);
	assert_int_equal(c.wire, AMPS_WIRE_FIX);
	assert_int_equal(h.cmd, AMPS_CMD_LOGON);
	assert_true(cursor_eq_str(h.f[AMPS_F_CLIENT_NAME], "orders-7"));
	assert_true(cursor_eq_str(h.f[AMPS_F_USER_ID], "svc"));
	assert_true(cursor_eq_str(h.body, "body"));
	const char ack[] = "20000=ack\x01" "20018=failure\x01" "20062=not entitled\x01\x02";
	assert_int_equal(amps_decode(&c, PROTO_S2C, cursor_make(ack, sizeof ack - 1), &h, &d), PROTO_OK);
	assert_int_equal(h.status, AMPS_STATUS_FAILURE);
	assert_true(cursor_eq_str(h.f[AMPS_F_REASON], "not entitled"));
	assert_true(h.logon_ack);
	const char hb[] = "20000=heartbeat\x01" "20039=start,10\x02";
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(hb, sizeof hb - 1), &h, &d), PROTO_OK);
	assert_int_equal(h.hb_interval_s, 10);

	amps_codec_init(&c, AMPS_WIRE_NVFIX);
	const char nv[] = "c=logon\x01" "client_name=n1\x01" "user_id=u\x01\x02";
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(nv, sizeof nv - 1), &h, &d), PROTO_OK);
	assert_true(cursor_eq_str(h.f[AMPS_F_CLIENT_NAME], "n1"));

	amps_codec_init(&c, AMPS_WIRE_FIX);
	const char noeq[] = "20000logon\x01\x02";
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(noeq, sizeof noeq - 1), &h, &d), PROTO_E_MALFORMED);
	assert_string_equal(d.name, "fix_field_without_equals");
	const char notag[] = "2x=logon\x01\x02";
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(notag, sizeof notag - 1), &h, &d), PROTO_E_MALFORMED);
	assert_string_equal(d.name, "fix_tag_invalid");
	const char open[] = "20000=logon\x01";
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(open, sizeof open - 1), &h, &d), PROTO_E_MALFORMED);
	assert_string_equal(d.name, "fix_header_unterminated");
}

static void test_noop_frame(void **state)
{
	(void)state;
	struct amps_codec c;
	struct amps_header h;
	struct proto_diag d;
	amps_codec_init(&c, AMPS_WIRE_AUTO);
	assert_int_equal(amps_decode(&c, PROTO_C2S, cursor_make(NULL, 0), &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_NOOP);
	struct proto_facts f;
	amps_header_facts(&c, PROTO_C2S, &h, &f);
	assert_int_equal(f.kind, FACT_NOOP);
}

static void test_encoders_round_trip(void **state)
{
	(void)state;
	uint8_t buf[256];
	size_t n = amps_encode_failure_ack("4\"2", 3, "name in use", buf, sizeof buf);
	assert_true(n > 4);
	struct proto_frame fr;
	struct proto_diag d;
	assert_int_equal(amps_frame_peek(cursor_make(buf, n), 0, true, &fr, &d), PROTO_OK);
	assert_int_equal(fr.body_len + 4, n);
	struct amps_codec c;
	struct amps_header h;
	amps_codec_init(&c, AMPS_WIRE_AUTO);
	assert_int_equal(amps_decode(&c, PROTO_C2S, S("{\"c\":\"logon\",\"cid\":\"4\\\"2\"}"), &h, &d), PROTO_OK);
	assert_int_equal(amps_decode(&c, PROTO_S2C, cursor_make(buf + 4, n - 4), &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_ACK);
	assert_int_equal(h.status, AMPS_STATUS_FAILURE);
	assert_true(cursor_eq_str(h.f[AMPS_F_REASON], "name in use"));
	assert_true(h.logon_ack);
	assert_int_equal(amps_encode_failure_ack(NULL, 0, "name in use", buf, 40), 0); /* does not fit */
	n = amps_encode_heartbeat(buf, sizeof buf);
	assert_int_equal(amps_decode(&c, PROTO_S2C, cursor_make(buf + 4, n - 4), &h, &d), PROTO_OK);
	assert_int_equal(h.cmd, AMPS_CMD_HEARTBEAT);
	assert_int_equal(amps_encode_heartbeat(buf, 8), 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(amps_cmd_name(AMPS_CMD_SOW_AND_DELTA_SUBSCRIBE), "sow_and_delta_subscribe");
	assert_int_equal(amps_cmd_from_view(S("sow_delete")), AMPS_CMD_SOW_DELETE);
	assert_int_equal(amps_cmd_from_view(S("none")), AMPS_CMD_UNKNOWN); /* internal names are not commands */
	assert_int_equal(amps_cmd_from_view(S("noop")), AMPS_CMD_UNKNOWN);
	for (int e = 0; e < AMPS_E__COUNT; e++)
		for (int g = e + 1; g < AMPS_E__COUNT; g++)
			assert_string_not_equal(amps_err_name((enum amps_err)e), amps_err_name((enum amps_err)g));
	assert_string_equal(amps_err_name(AMPS_E__COUNT), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logon_short_keys),
		cmocka_unit_test(test_long_keys_whitespace_and_body),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_heartbeat_options),
		cmocka_unit_test(test_codec_finds_the_logon_ack),
		cmocka_unit_test(test_sow_batch),
		cmocka_unit_test(test_fix_and_nvfix),
		cmocka_unit_test(test_noop_frame),
		cmocka_unit_test(test_encoders_round_trip),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
