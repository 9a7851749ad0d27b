/* Unit tests for the event catalog (policy/evt.c and its two .def tables) and
 * its renderings (sink/text.c, sink/json.c, sink/events_md.c): ids and names
 * well formed and unique, every shared reason name present, templates that
 * only name known fields, doc/events.md identical to what the tables render,
 * exact text lines that stay one line whatever the client id holds, JSON that
 * parses back, and the wire-code lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/escape.h"
#include "policy/evt.h"
#include "sink/sink.h"

/* 2026-11-23T18:41:50.123456Z */
#define TS_SAMPLE (INT64_C(1795459310) * 1000000 + 123456)

/* The reason names proxy and sniffer share, each with the MQTT 5 code it must
 * carry (-1: none on the wire). Every name must exist, exactly so. */
static const struct {
	const char *name;
	int v5;
} shared_reasons[] = {
	{ "client_disconnect", 0x00 }, { "client_disconnect_with_will", 0x04 }, { "client_vanished", -1 },
	{ "keepalive_timeout", 0x8D }, { "session_taken_over", 0x8E }, { "takeover_storm_refused", 0x9F },
	{ "protocol_error_second_connect", 0x82 }, { "first_packet_not_connect", 0x82 },
	{ "malformed_packet", 0x81 }, { "protocol_error", 0x82 }, { "auth_failed", 0x86 },
	{ "not_authorized", 0x87 }, { "client_id_rejected", 0x85 }, { "unsupported_protocol_version", 0x84 },
	{ "bad_auth_method", 0x8C }, { "packet_too_large", 0x95 }, { "receive_maximum_exceeded", 0x93 },
	{ "topic_alias_invalid", 0x94 }, { "topic_name_invalid", 0x90 }, { "topic_filter_invalid", 0x8F },
	{ "quota_exceeded", 0x97 }, { "slow_consumer", 0x97 }, { "rate_limited", 0x96 },
	{ "connection_rate_exceeded", 0x9F }, { "server_shutdown", 0x8B }, { "server_unavailable", 0x88 },
	{ "server_busy", 0x89 }, { "banned", 0x8A }, { "use_another_server", 0x9C }, { "server_moved", 0x9D },
	{ "maximum_connect_time", 0xA0 }, { "payload_format_invalid", 0x99 }, { "retain_not_supported", 0x9A },
	{ "qos_not_supported", 0x9B }, { "shared_subscriptions_not_supported", 0x9E },
	{ "subscription_identifiers_not_supported", 0xA1 }, { "wildcard_subscriptions_not_supported", 0xA2 },
	{ "unspecified_error", 0x80 }, { "implementation_specific_error", 0x83 }, { "admin_disconnect", 0x98 },
	{ "listener_disabled", 0x98 }, { "credentials_expired", 0x87 }, { "connect_timeout", -1 },
	{ "connection_limit", -1 }, { "upstream_unavailable", 0x88 }, { "upstream_closed", -1 },
	{ "tls_handshake_failed", -1 }, { "still_open", -1 }, { "unknown", -1 },
	{ "name_in_use", -1 }, { "unknown_command", -1 },
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool id_well_formed(const char *id)
{
	return id != NULL && strlen(id) == 5 && id[0] == 'W' && strspn(id + 1, "0123456789") == 4;
}

static bool snake_case(const char *s)
{
	return s != NULL && s[0] >= 'a' && s[0] <= 'z' && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/* A disconnect the way the proxy reports a broker's keep-alive verdict. */
static struct evt sample_disconnect(void)
{
	static const uint8_t id[] = "sensor-7";
	struct evt e = evt_make(EVT_DISCONNECT, 42, TS_SAMPLE);

	e.reason = EVT_R_KEEPALIVE_TIMEOUT;
	e.client_id = id;
	e.client_id_len = sizeof id - 1;
	strcpy(e.client, "10.0.0.7:51234");
	strcpy(e.broker, "127.0.0.1:1883");
	e.protocol = "mqtt";
	e.protocol_level = 5;
	e.wire_reason = 0x8D;
	e.closed_by = EVT_BY_BROKER;
	e.phase = EVT_PHASE_CONNECTED;
	e.confidence = EVT_CONF_STATED;
	e.duration_us = 12345000;
	e.bytes_c2s = 1200;
	e.bytes_s2c = 340;
	return e;
}

static void test_event_ids_and_names_are_well_formed_and_unique(void **state)
{
	(void)state;
	for (int a = 0; a < EVT__COUNT; a++) {
		const char *id = evt_id((enum evt_code)a), *name = evt_name((enum evt_code)a);

		assert_true(id_well_formed(id));
		assert_true(id[1] >= '1' && id[1] <= '7'); /* the seven groups */
		assert_true(snake_case(name));
		for (int b = a + 1; b < EVT__COUNT; b++) {
			assert_string_not_equal(id, evt_id((enum evt_code)b));
			assert_string_not_equal(name, evt_name((enum evt_code)b));
		}
	}
	assert_string_equal(evt_id(EVT_DISCONNECT), "W2000");
	assert_null(evt_id(EVT__COUNT));
}

static void test_named_events_exist_with_their_names(void **state)
{
	static const struct {
		enum evt_code code;
		const char *name;
	} named[] = {
		{ EVT_CONNECT, "connect" }, { EVT_CONNACK, "connack" }, { EVT_DISCONNECT, "disconnect" },
		{ EVT_SESSION_TAKEN_OVER, "session_taken_over" }, { EVT_TAKEOVER_STORM, "takeover_storm" },
		{ EVT_SLOW_CONSUMPTION_DETECTED, "slow_consumption_detected" },
		{ EVT_WOULD_DISCONNECT, "would_disconnect" }, { EVT_CONNECT_REFUSED, "connect_refused" },
		{ EVT_MALFORMED_PACKET, "malformed_packet" }, { EVT_PROTOCOL_VIOLATION, "protocol_violation" },
		{ EVT_RECEIVE_MAXIMUM_EXCEEDED, "receive_maximum_exceeded" }, { EVT_CAPTURE_GAP, "capture_gap" },
		{ EVT_CAPTURE_TRUNCATED, "capture_truncated" }, { EVT_TLS_HANDSHAKE_FAILED, "tls_handshake_failed" },
		{ EVT_LISTENER_DISABLED, "listener_disabled" },
		{ EVT_ADMIN_DISCONNECT_REQUESTED, "admin_disconnect_requested" },
		{ EVT_POLICY_DECISION, "policy_decision" },
	};

	(void)state;
	for (size_t i = 0; i < COUNT_OF(named); i++)
		assert_string_equal(evt_name(named[i].code), named[i].name);
}

static void test_every_reason_has_a_distinct_sorted_w2_id_no_event_uses(void **state)
{
	(void)state;
	for (int a = EVT_R_NONE + 1; a < EVT_R__COUNT; a++) {
		const char *id = evt_reason_id((enum evt_reason)a);

		assert_true(id_well_formed(id));
		assert_int_equal(id[1], '2');
		assert_string_not_equal(id, "W2000");
		for (int b = a + 1; b < EVT_R__COUNT; b++)
			assert_string_not_equal(id, evt_reason_id((enum evt_reason)b));
		for (int c = 0; c < EVT__COUNT; c++)
			assert_string_not_equal(id, evt_id((enum evt_code)c));
		/* sorted: evt_reason_from_v5() takes the first row with a code, which
		 * reasons.def promises is the lowest id */
		if (a > EVT_R_NONE + 1)
			assert_true(strcmp(evt_reason_id((enum evt_reason)(a - 1)), id) < 0);
	}
	assert_null(evt_reason_id(EVT_R_NONE));
}

static void test_every_shared_reason_exists_with_its_wire_code(void **state)
{
	(void)state;
	for (size_t i = 0; i < COUNT_OF(shared_reasons); i++) {
		enum evt_reason r = evt_reason_from_name(shared_reasons[i].name);

		if (r == EVT_R_NONE)
			fail_msg("reason %s missing", shared_reasons[i].name);
		assert_string_equal(evt_reason_name(r), shared_reasons[i].name);
		if (evt_reason_wire_code(r) != shared_reasons[i].v5)
			fail_msg("%s: wire code %d, want %d", shared_reasons[i].name, evt_reason_wire_code(r),
				 shared_reasons[i].v5);
	}
	assert_int_equal(EVT_R__COUNT - 1, COUNT_OF(shared_reasons));
	assert_int_equal(evt_reason_from_name("no_such_reason"), EVT_R_NONE);
	assert_int_equal(evt_reason_from_name(NULL), EVT_R_NONE);
}

static void test_reason_columns_are_well_formed(void **state)
{
	static const char *const closers[] = { "client", "broker", "proxy", "any", "none" };
	static const char *const amps_words[] = { "connection closed", "name in use", "heartbeat",
						  "slow client", "unknown command", "auth failure",
						  "not entitled", "entitlement reset", "transport disabled" };

	(void)state;
	for (int r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++) {
		const char *closer = evt_reason_closer((enum evt_reason)r), *amps = evt_reason_amps((enum evt_reason)r);
		bool ok = false;

		assert_true(snake_case(evt_reason_name((enum evt_reason)r)));
		assert_non_null(evt_reason_meaning((enum evt_reason)r));
		for (size_t i = 0; i < COUNT_OF(closers); i++)
			ok = ok || strcmp(closer, closers[i]) == 0;
		assert_true(ok);
		ok = amps == NULL;
		for (size_t i = 0; amps != NULL && i < COUNT_OF(amps_words); i++)
			ok = ok || strcmp(amps, amps_words[i]) == 0;
		assert_true(ok);
	}
}

static void test_template_placeholders_are_fields_the_event_carries(void **state)
{
	static const char *const common = " conn client_id username client broker protocol level ";

	(void)state;
	for (int c = 0; c < EVT__COUNT; c++) {
		const char *t = evt_template((enum evt_code)c), *fields = evt_fields((enum evt_code)c);
		const char *open;

		while ((open = strchr(t, '{')) != NULL) {
			const char *close = strchr(open, '}');
			char word[40], padded[300];
			size_t n;

			assert_non_null(close);
			n = (size_t)(close - open - 1);
			assert_true(n > 0 && n < sizeof word - 2);
			if (evt_field_from_name(open + 1, n) < 0)
				fail_msg("%s: unknown placeholder {%.*s}", evt_name((enum evt_code)c), (int)n, open + 1);
			snprintf(word, sizeof word, " %.*s ", (int)n, open + 1);
			snprintf(padded, sizeof padded, " %s ", fields);
			if (strstr(padded, word) == NULL && strstr(common, word) == NULL)
				fail_msg("%s: {%.*s} not in its fields", evt_name((enum evt_code)c), (int)n, open + 1);
			t = close + 1;
		}
		assert_null(strchr(t, '}'));
	}
}

static void test_fields_columns_name_known_fields_and_text_is_printable_ascii(void **state)
{
	(void)state;
	for (int c = 0; c < EVT__COUNT; c++) {
		for (const char *w = evt_fields((enum evt_code)c); *w; w += strspn(w, " ")) {
			size_t n = strcspn(w, " ");

			if (evt_field_from_name(w, n) < 0)
				fail_msg("%s: unknown field \"%.*s\"", evt_name((enum evt_code)c), (int)n, w);
			w += n;
		}
		for (const char *t = evt_template((enum evt_code)c); *t; t++)
			assert_true(*t >= 0x20 && *t < 0x7f);
	}
	for (int r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++)
		for (const char *t = evt_reason_meaning((enum evt_reason)r); *t; t++)
			assert_true(*t >= 0x20 && *t < 0x7f);
}

/* The test that fails when someone edits a .def table and forgets
 * tools/gen_events_md > doc/events.md. */
static void test_doc_events_md_matches_the_catalog(void **state)
{
	const char *top = getenv("WW_TOP_SRCDIR");
	char path[4096], *want = NULL, *have = NULL;
	size_t want_len = 0, have_len;
	FILE *mem, *fp;
	bool same;

	(void)state;
	snprintf(path, sizeof path, "%s/doc/events.md", top ? top : ".");
	mem = open_memstream(&want, &want_len);
	assert_non_null(mem);
	assert_int_equal(evt_catalog_markdown(mem), 0);
	assert_int_equal(fclose(mem), 0);
	fp = fopen(path, "rb");
	if (fp == NULL)
		fail_msg("cannot open %s (set WW_TOP_SRCDIR)", path);
	have = malloc(want_len + 2);
	assert_non_null(have);
	have_len = fread(have, 1, want_len + 1, fp);
	fclose(fp);
	same = have_len == want_len && memcmp(have, want, want_len) == 0;
	free(have);
	free(want);
	if (!same)
		fail_msg("%s is out of date: run tools/gen_events_md > doc/events.md", path);
}

static void test_text_render_matches_expected_line(void **state)
{
	struct evt e = sample_disconnect();
	char line[EVT_TEXT_MAX];

	(void)state;
	evt_render_text(&e, line, sizeof line);
	assert_string_equal(line, "2026-11-23T18:41:50.123456Z warning W2101 client[sensor-7] disconnect: "
				  "keepalive_timeout, closed by broker (conn=42 client=10.0.0.7:51234 "
				  "broker=127.0.0.1:1883 protocol=mqtt level=5 wire_reason=0x8D phase=connected "
				  "confidence=stated duration_s=12.345 bytes_c2s=1200 bytes_s2c=340)");
}

static void test_text_render_quotes_free_text_and_lists_evidence(void **state)
{
	struct evt e = evt_make(EVT_MALFORMED_PACKET, 7, 0);
	char line[EVT_TEXT_MAX];

	(void)state;
	e.client_id = (const uint8_t *)"";
	evt_set_detail(&e, "connect_reserved_flag: connect flags at offset %d", 9);
	evt_add_evidence(&e, 12, "CONNECT flags=0x%02x", 0x03);
	evt_add_evidence(&e, 13, "say \"hi\"");
	e.policy = "protocol check";
	evt_render_text(&e, line, sizeof line);
	assert_string_equal(line, "1970-01-01T00:00:00.000000Z warning W4001 client[] malformed_packet: "
				  "malformed packet: connect_reserved_flag: connect flags at offset 9 (conn=7 "
				  "policy=\"protocol check\" evidence=\"#12 CONNECT flags=0x03; #13 say \\\"hi\\\"\")");
}

static void test_text_render_escapes_newline_in_client_id(void **state)
{
	static const char forged[] = "x\n2026-01-01T00:00:00Z error W2000 client[x] disconnect: forged\r\x1b[2K";
	struct evt e = sample_disconnect();
	char line[EVT_TEXT_MAX];

	(void)state;
	e.client_id = (const uint8_t *)forged;
	e.client_id_len = sizeof forged - 1;
	evt_render_text(&e, line, sizeof line);
	assert_null(strchr(line, '\n'));
	assert_null(strchr(line, '\r'));
	assert_null(strchr(line, '\x1b'));
	/* ']' is escaped too, so the forged "client[x]" cannot close the field. */
	assert_non_null(strstr(line, " client[x\\x0a2026-01-01T00:00:00Z error W2000 client[x\\x5d disconnect: "
				     "forged\\x0d\\x1b[2K] disconnect: keepalive_timeout"));
}

/* Random bytes in every free-text field, at every line cap: one line, no
 * control byte, valid UTF-8, NUL at the length returned. */
static void test_text_render_stays_one_line_for_any_bytes(void **state)
{
	uint32_t seed = 99;
	uint8_t id[64], user[16];
	char line[600];

	(void)state;
	for (int round = 0; round < 200; round++) {
		struct evt e = sample_disconnect();

		for (size_t i = 0; i < sizeof id; i++) {
			seed = seed * 1103515245u + 12345u;
			id[i] = (uint8_t)(seed >> 16);
			user[i % sizeof user] = (uint8_t)(seed >> 8);
			e.detail[i] = (char)(seed >> 24);
		}
		e.client_id = id;
		e.client_id_len = (size_t)round % sizeof id;
		e.username = user;
		e.username_len = sizeof user;
		e.detail[sizeof id] = '\0';
		evt_add_evidence(&e, 1, "%.*s", (int)(sizeof id - 1), (const char *)id + 1);
		for (size_t cap = 1; cap <= sizeof line; cap += 37) {
			size_t len = evt_render_text(&e, line, cap);

			assert_true(len < cap);
			assert_int_equal(strlen(line), len);
			assert_true(escape_utf8_valid((const uint8_t *)line, len));
			for (size_t i = 0; i < len; i++)
				assert_true((uint8_t)line[i] >= 0x20 && (uint8_t)line[i] != 0x7f);
		}
	}
}

static void test_text_render_cut_line_ends_with_marker(void **state)
{
	struct evt e = sample_disconnect();
	char line[64];
	size_t len;

	(void)state;
	len = evt_render_text(&e, line, sizeof line);
	assert_int_equal(len, sizeof line - 1);
	assert_string_equal(line + len - 3, "...");
	assert_int_equal(evt_render_text(&e, line, 0), 0);
	assert_int_equal(evt_render_text(&e, line, 1), 0);
	assert_string_equal(line, "");
}

static void test_json_render_parses_back_with_expected_fields(void **state)
{
	struct evt e = sample_disconnect();
	json_error_t err;
	json_t *o, *want;
	char *s;

	(void)state;
	evt_add_evidence(&e, 17, "no packet for %d s", 90);
	s = evt_render_json(&e);
	assert_non_null(s);
	assert_null(strchr(s, '\n'));
	o = json_loads(s, 0, &err);
	assert_non_null(o);
	/* every set field, nothing else (unset username, mode, policy, detail, count omitted) */
	want = json_pack("{s:s, s:I, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:s, s:s,"
			 " s:f, s:i, s:i, s:[{s:i, s:s}]}",
			 "ts", "2026-11-23T18:41:50.123456Z", "ts_us", (json_int_t)TS_SAMPLE, "id", "W2101",
			 "name", "disconnect", "severity", "warning", "conn", 42, "client_id", "sensor-7",
			 "client", "10.0.0.7:51234", "broker", "127.0.0.1:1883", "protocol", "mqtt", "level", 5,
			 "reason", "keepalive_timeout", "wire_reason", 0x8D, "closed_by", "broker",
			 "phase", "connected", "confidence", "stated", "duration_s", 12.345, "bytes_c2s", 1200,
			 "bytes_s2c", 340, "evidence", "frame", 17, "text", "no packet for 90 s");
	assert_non_null(want);
	assert_true(json_equal(o, want));
	assert_non_null(strstr(s, "\"duration_s\":12.345,")); /* no binary noise in the float */
	json_decref(want);
	json_decref(o);
	free(s);
}

static void test_json_render_keeps_utf8_and_hexes_invalid_client_id(void **state)
{
	static const uint8_t bad[] = { 'i', 'd', '\n', 0xff, 0xc3, 0xa9 };
	struct evt e = evt_make(EVT_CONNECT, 1, 0);
	json_t *o;
	char *s;

	(void)state;
	e.client_id = bad;
	e.client_id_len = sizeof bad;
	evt_set_detail(&e, "bad \xfe byte");
	s = evt_render_json(&e);
	assert_non_null(s);
	assert_null(strchr(s, '\n'));
	o = json_loads(s, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "client_id")), "id\n\\xff\xc3\xa9");
	assert_string_equal(json_string_value(json_object_get(o, "client_id_hex")), "69640affc3a9");
	assert_string_equal(json_string_value(json_object_get(o, "detail")), "bad \\xfe byte");
	json_decref(o);
	free(s);
}

static void test_json_render_omits_unset_fields(void **state)
{
	struct evt e = evt_make(EVT_LISTENER_ENABLED, 0, 0);
	json_t *o;
	char *s;

	(void)state;
	s = evt_render_json(&e);
	assert_string_equal(s, "{\"ts\":\"1970-01-01T00:00:00.000000Z\",\"ts_us\":0,\"id\":\"W6003\","
			       "\"name\":\"listener_enabled\",\"severity\":\"info\",\"conn\":0}");
	o = json_loads(s, 0, NULL);
	assert_int_equal(json_object_size(o), 6);
	json_decref(o);
	free(s);
}

static void test_disconnect_events_use_the_reasons_id(void **state)
{
	struct evt e = sample_disconnect();
	char line[EVT_TEXT_MAX], *s;

	(void)state;
	for (int r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++) {
		e.reason = (enum evt_reason)r;
		assert_string_equal(evt_event_id(&e), evt_reason_id((enum evt_reason)r));
	}
	e.reason = EVT_R_SESSION_TAKEN_OVER;
	evt_render_text(&e, line, sizeof line);
	assert_non_null(strstr(line, " warning W2102 client[sensor-7] disconnect: session_taken_over,"));
	s = evt_render_json(&e);
	assert_non_null(strstr(s, "\"id\":\"W2102\""));
	free(s);
	/* other events keep their own id even with a reason set */
	e.code = EVT_WOULD_DISCONNECT;
	assert_string_equal(evt_event_id(&e), "W3006");
	e.code = EVT_DISCONNECT;
	e.reason = EVT_R_NONE;
	assert_string_equal(evt_event_id(&e), "W2000");
}

static void test_disconnect_severity_is_info_only_when_orderly(void **state)
{
	static const struct {
		enum evt_reason r;
		enum evt_severity sev;
	} want[] = {
		{ EVT_R_CLIENT_DISCONNECT, EVT_SEV_INFO }, { EVT_R_CLIENT_DISCONNECT_WITH_WILL, EVT_SEV_INFO },
		{ EVT_R_STILL_OPEN, EVT_SEV_INFO }, { EVT_R_CLIENT_VANISHED, EVT_SEV_WARNING },
		{ EVT_R_SLOW_CONSUMER, EVT_SEV_WARNING }, { EVT_R_NONE, EVT_SEV_WARNING },
	};
	struct evt e = evt_make(EVT_DISCONNECT, 1, 0);

	(void)state;
	for (size_t i = 0; i < COUNT_OF(want); i++) {
		e.reason = want[i].r;
		assert_int_equal(evt_event_severity(&e), want[i].sev);
	}
	e.code = EVT_TAKEOVER_STORM; /* other events: the catalog's severity */
	assert_int_equal(evt_event_severity(&e), EVT_SEV_ERROR);
}

static void test_v5_code_from_broker_maps_to_one_reason(void **state)
{
	static const struct {
		uint8_t code;
		enum evt_reason r;
	} map[] = {
		{ 0x98, EVT_R_ADMIN_DISCONNECT }, { 0x87, EVT_R_NOT_AUTHORIZED }, { 0x97, EVT_R_QUOTA_EXCEEDED },
		{ 0x8E, EVT_R_SESSION_TAKEN_OVER }, { 0x8D, EVT_R_KEEPALIVE_TIMEOUT },
		{ 0x9F, EVT_R_CONNECTION_RATE_EXCEEDED }, { 0x88, EVT_R_SERVER_UNAVAILABLE },
		{ 0x82, EVT_R_PROTOCOL_ERROR }, { 0x8B, EVT_R_SERVER_SHUTDOWN }, { 0x00, EVT_R_NONE },
		{ 0x04, EVT_R_NONE }, { 0x91, EVT_R_UNKNOWN }, /* Packet Identifier in use: no DISCONNECT */
		{ 0xFF, EVT_R_UNKNOWN },
	};

	(void)state;
	for (size_t i = 0; i < COUNT_OF(map); i++)
		assert_int_equal(evt_reason_from_v5(map[i].code), map[i].r);
	/* every error code maps to a reason carrying that very code, and every
	 * reason's error code maps to some reason */
	for (int code = 0x80; code <= 0xFF; code++)
		if (evt_reason_from_v5((uint8_t)code) != EVT_R_UNKNOWN)
			assert_int_equal(evt_reason_wire_code(evt_reason_from_v5((uint8_t)code)), code);
	for (int r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++)
		if (evt_reason_wire_code((enum evt_reason)r) >= 0x80)
			assert_int_not_equal(evt_reason_from_v5((uint8_t)evt_reason_wire_code((enum evt_reason)r)),
					     EVT_R_UNKNOWN);
}

static void test_v3_connack_code_maps_to_reason(void **state)
{
	static const enum evt_reason want[] = {
		EVT_R_NONE, EVT_R_UNSUPPORTED_PROTOCOL_VERSION, EVT_R_CLIENT_ID_REJECTED,
		EVT_R_SERVER_UNAVAILABLE, EVT_R_AUTH_FAILED, EVT_R_NOT_AUTHORIZED, EVT_R_UNKNOWN,
	};

	(void)state;
	for (size_t rc = 0; rc < COUNT_OF(want); rc++)
		assert_int_equal(evt_reason_from_v3_connack((uint8_t)rc), want[rc]);
}

static void test_evt_make_sets_every_optional_field_to_omit(void **state)
{
	struct evt e = evt_make(EVT_CONNECT, 5, 77);

	(void)state;
	assert_int_equal(e.code, EVT_CONNECT);
	assert_int_equal(e.conn_id, 5);
	assert_int_equal(e.ts_us, 77);
	for (int f = EVT_F_CONN + 1; f < EVT_F__COUNT; f++)
		if (evt_field_is_set(&e, (enum evt_field)f))
			fail_msg("field %s set by evt_make", evt_field_name((enum evt_field)f));
}

static void test_add_evidence_cuts_text_and_ignores_past_the_maximum(void **state)
{
	struct evt e = evt_make(EVT_CAPTURE_GAP, 1, 0);
	char longtext[400];

	(void)state;
	memset(longtext, 'a', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = '\0';
	for (unsigned i = 0; i < EVT_MAX_EVIDENCE + 3; i++)
		evt_add_evidence(&e, i, "%s", longtext);
	assert_int_equal(e.n_evidence, EVT_MAX_EVIDENCE);
	assert_int_equal(strlen(e.evidence[0].text), sizeof e.evidence[0].text - 1);
	assert_int_equal(e.evidence[EVT_MAX_EVIDENCE - 1].frame, EVT_MAX_EVIDENCE - 1);
}

struct order_probe {
	int *calls; /* shared by all probes: the number of sink calls so far */
	int seen;   /* the call number this sink got */
};

static void order_sink(void *ctx, const struct evt *e)
{
	struct order_probe *p = ctx;

	(void)e;
	p->seen = (*p->calls)++;
}

static void test_sinks_get_each_event_in_order_and_refuse_a_ninth(void **state)
{
	struct evt_sinks ss = { 0 };
	struct order_probe probes[EVT_SINKS_MAX];
	int calls = 0;
	struct evt e = evt_make(EVT_CONNECT, 1, 0);

	(void)state;
	for (int i = 0; i < EVT_SINKS_MAX; i++) {
		probes[i].calls = &calls;
		probes[i].seen = -1;
		assert_int_equal(evt_sinks_add(&ss, order_sink, &probes[i]), 0);
	}
	assert_int_equal(evt_sinks_add(&ss, order_sink, &probes[0]), -1);
	evt_emit(&ss, &e);
	assert_int_equal(calls, EVT_SINKS_MAX);
	for (int i = 0; i < EVT_SINKS_MAX; i++)
		assert_int_equal(probes[i].seen, i);
}

static void test_file_sinks_write_one_line_per_event(void **state)
{
	struct evt e = sample_disconnect();
	struct evt_sinks ss = { 0 };
	struct evt_file_sink text, json;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(mem);
	text = evt_file_sink_make(mem, true);
	json = evt_file_sink_make(mem, false);
	assert_int_equal(evt_sinks_add_text(&ss, &text), 0);
	assert_int_equal(evt_sinks_add_json(&ss, &json), 0);
	evt_emit(&ss, &e);
	assert_int_equal(fclose(mem), 0);
	assert_int_equal(text.failed + json.failed, 0);
	assert_non_null(strstr(buf, "W2101 client[sensor-7] disconnect:"));
	assert_non_null(strstr(buf, ")\n{\"ts\":"));
	assert_true(len > 2 && buf[len - 2] == '}' && buf[len - 1] == '\n');
	assert_ptr_equal(strchr(buf, '\n'), strstr(buf, ")\n{") + 1); /* two lines, no more */
	assert_ptr_equal(strchr(strchr(buf, '\n') + 1, '\n'), buf + len - 1);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_ids_and_names_are_well_formed_and_unique),
		cmocka_unit_test(test_named_events_exist_with_their_names),
		cmocka_unit_test(test_every_reason_has_a_distinct_sorted_w2_id_no_event_uses),
		cmocka_unit_test(test_every_shared_reason_exists_with_its_wire_code),
		cmocka_unit_test(test_reason_columns_are_well_formed),
		cmocka_unit_test(test_template_placeholders_are_fields_the_event_carries),
		cmocka_unit_test(test_fields_columns_name_known_fields_and_text_is_printable_ascii),
		cmocka_unit_test(test_doc_events_md_matches_the_catalog),
		cmocka_unit_test(test_text_render_matches_expected_line),
		cmocka_unit_test(test_text_render_quotes_free_text_and_lists_evidence),
		cmocka_unit_test(test_text_render_escapes_newline_in_client_id),
		cmocka_unit_test(test_text_render_stays_one_line_for_any_bytes),
		cmocka_unit_test(test_text_render_cut_line_ends_with_marker),
		cmocka_unit_test(test_json_render_parses_back_with_expected_fields),
		cmocka_unit_test(test_json_render_keeps_utf8_and_hexes_invalid_client_id),
		cmocka_unit_test(test_json_render_omits_unset_fields),
		cmocka_unit_test(test_disconnect_events_use_the_reasons_id),
		cmocka_unit_test(test_disconnect_severity_is_info_only_when_orderly),
		cmocka_unit_test(test_v5_code_from_broker_maps_to_one_reason),
		cmocka_unit_test(test_v3_connack_code_maps_to_reason),
		cmocka_unit_test(test_evt_make_sets_every_optional_field_to_omit),
		cmocka_unit_test(test_add_evidence_cuts_text_and_ignores_past_the_maximum),
		cmocka_unit_test(test_sinks_get_each_event_in_order_and_refuse_a_ninth),
		cmocka_unit_test(test_file_sinks_write_one_line_per_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
