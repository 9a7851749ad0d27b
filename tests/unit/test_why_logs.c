/* Unit tests for the broker log readers of `wirewarden why` (cli/why_log*.c,
 * cli/why_time.c): each broker's sentence, exactly as the seeds and the
 * brokers' sources write it, read into the record and reason name it means;
 * detection of the format from content; timestamps in every form; and lines
 * no reader knows reported as such (so that `why` keeps them as context). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/why.h"
#include "cli/why_log.h"

static struct why_rec rec;
static union {
	char bytes[8192];
	max_align_t align;
} state;

/* Parses <line> with <fmt> using the shared state (zeroed by reset()). */
static enum why_rec_kind parse(const struct why_format *fmt, const char *line)
{
	assert_true(fmt->state_size <= sizeof state.bytes);
	return fmt->parse(state.bytes, line, strlen(line), &rec);
}

static void reset(void)
{
	memset(&state, 0, sizeof state);
}

static void assert_text(struct why_text t, const char *want)
{
	assert_non_null(t.p);
	assert_int_equal(t.n, strlen(want));
	assert_memory_equal(t.p, want, t.n);
}

static void assert_reason(enum evt_reason r, const char *name)
{
	assert_string_equal(evt_reason_name(r), name);
}

static int64_t utc(const char *iso)
{
	int64_t us;
	assert_true(why_time_parse_arg(iso, &us));
	return us;
}

/* ---- timestamps ---- */

static void test_time_forms(void **st)
{
	(void)st;
	int64_t us;
	bool zoned;
	const char *amps = "2019-11-20T16:26:59.6408410-08:00 [5]";
	assert_int_equal(why_time_parse(amps, strlen(amps), &us, &zoned), 33);
	assert_true(zoned);
	assert_int_equal(us, utc("2019-11-21T00:26:59") + 640841);
	const char *hive = "2020-09-14 11:26:08,118 - x";
	assert_int_equal(why_time_parse(hive, strlen(hive), &us, &zoned), 23);
	assert_false(zoned);
	assert_int_equal(us, utc("2020-09-14T11:26:08") + 118000);
	const char *epoch = "1700000000: mosquitto version 2.0.11 starting";
	assert_int_equal(why_time_parse(epoch, strlen(epoch), &us, &zoned), 10);
	assert_true(zoned);
	assert_int_equal(us, INT64_C(1700000000) * 1000000);
	const char *emqx = "2024-01-10T10:11:12.345678+0530 [info]";
	assert_int_equal(why_time_parse(emqx, strlen(emqx), &us, &zoned), 31);
	assert_int_equal(us, utc("2024-01-10T04:41:12") + 345678);
	assert_int_equal(why_time_parse("20:12:16: x", 11, &us, &zoned), 0);
	assert_int_equal(why_time_parse("2026-13-01T00:00:00", 19, &us, &zoned), 0);
	assert_int_equal(why_time_parse("2026-11-2", 9, &us, &zoned), 0); /* never reads past its input */
	int64_t d;
	assert_true(why_duration_parse("-3600", &d));
	assert_int_equal(d, INT64_C(-3600000000));
	assert_true(why_duration_parse("+01:30", &d));
	assert_int_equal(d, INT64_C(5400000000));
	assert_false(why_duration_parse("soon", &d));
	assert_true(why_time_parse_arg("2026-11-23", &d));
	assert_int_equal(d, utc("2026-11-23T00:00:00"));
}

/* ---- mosquitto: lines from the recorded fixtures (tests/data/recorded) and src/loop.c ---- */

static void test_mosquitto_open(void **st)
{
	(void)st;
	reset();
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:31: New client connected from 127.0.0.1:54198 as good-v311 (p2, c1, k60, u'alice')."),
			 WHY_REC_OPEN);
	assert_text(rec.id, "good-v311");
	assert_text(rec.addr, "127.0.0.1:54198");
	assert_text(rec.user, "alice");
	assert_int_equal(rec.keepalive, 60);
	assert_int_equal(rec.level, 4);
	assert_false(rec.zoned);
	assert_int_equal(rec.ts_us, utc("2026-11-23T20:12:31"));
	assert_int_equal(parse(&why_format_mosquitto, "1700000000: New client connected from 127.0.0.1:46840 as silent-v5 (p5, c1, k2)."),
			 WHY_REC_OPEN);
	assert_text(rec.id, "silent-v5");
	assert_int_equal(rec.level, 5);
	assert_int_equal(rec.keepalive, 2);
	assert_true(rec.zoned);
	/* through the journal (journalctl -o short-iso), with and without mosquitto's own timestamp */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T21:12:16+0100 edge-1 mosquitto[812]: New client connected from 127.0.0.1:33396 as silent-v311 (p2, c1, k2)."),
			 WHY_REC_OPEN);
	assert_text(rec.id, "silent-v311");
	assert_true(rec.zoned);
	assert_int_equal(rec.ts_us, utc("2026-11-23T20:12:16"));
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T21:12:21+0100 edge-1 mosquitto[812]: 1795000000: Client silent-v311 has exceeded timeout, disconnecting."),
			 WHY_REC_CLOSE);
	assert_reason(rec.reason, "keepalive_timeout");
	assert_int_equal(rec.ts_us, utc("2026-11-23T20:12:21"));
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T21:12:21+0100 edge-1 sshd[99]: Accepted publickey for root"), WHY_REC_UNKNOWN);
	/* an id with spaces and a " (p" of its own */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:31: New client connected from 10.0.0.1:1 as a (p b (p5, c1, k2)."),
			 WHY_REC_OPEN);
	assert_text(rec.id, "a (p b");
}

struct close_case {
	const char *line, *id, *reason, *closer;
};

static void test_mosquitto_closes(void **st)
{
	(void)st;
	static const struct close_case cases[] = {
		{ "2026-11-23T20:12:21: Client silent-v311 has exceeded timeout, disconnecting.", "silent-v311", "keepalive_timeout", "broker" },
		{ "2026-11-23T20:12:12: Client takeover-v311 already connected, closing old connection.", "takeover-v311", "session_taken_over", "broker" },
		{ "2026-11-23T20:12:12: Client takeover-v311 disconnected.", "takeover-v311", "client_disconnect", "client" },
		{ "2026-11-23T20:13:09: Client killed-v311 closed its connection.", "killed-v311", "client_vanished", "client" },
		{ "2026-11-23T20:12:34: Client bad-double-connect-v311 disconnected due to protocol error.", "bad-double-connect-v311", "protocol_error", "broker" },
		{ "2026-11-23T20:12:37: Client bad-publish-qos3-v5 disconnected due to malformed packet.", "bad-publish-qos3-v5", "malformed_packet", "broker" },
		{ "2026-11-23T20:13:13: Client big-v311 disconnected due to oversize packet.", "big-v311", "packet_too_large", "broker" },
		{ "2026-11-23T20:13:13: Client x disconnected, not authorised.", "x", "not_authorized", "broker" },
		{ "2026-11-23T20:13:13: Client x been disconnected by administrative action.", "x", "admin_disconnect", "broker" },
		{ "2026-11-23T20:13:13: Client x disconnected: Connection reset by peer.", "x", "client_vanished", "unknown" },
		{ "2026-11-23T20:13:13: Bad socket read/write on client x: Unknown error.", "x", "client_vanished", "unknown" },
		{ "1700000000: Socket error on client sensor-9, disconnecting.", "sensor-9", "client_vanished", "unknown" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		reset();
		assert_int_equal(parse(&why_format_mosquitto, cases[i].line), WHY_REC_CLOSE);
		assert_text(rec.id, cases[i].id);
		assert_reason(rec.reason, cases[i].reason);
		assert_string_equal(evt_party_name(rec.closed_by), cases[i].closer);
	}
}

static void test_mosquitto_refused_connect_gets_address_and_code(void **st)
{
	(void)st;
	reset();
	/* v311-auth-refused: no client line, the close names <unknown>; the CONNACK code says why */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:31: New connection from 127.0.0.1:54154 on port 38905."), WHY_REC_NONE);
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:31: Sending CONNACK to 127.0.0.1 (0, 5)"), WHY_REC_NONE);
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:31: Client <unknown> disconnected, not authorised."), WHY_REC_CLOSE);
	assert_null(rec.id.p);
	assert_text(rec.addr, "127.0.0.1:54154");
	assert_reason(rec.reason, "not_authorized");
	/* v5-auth-method: CONNACK 0x8C names the client; 2.0.11's sentence is the not-supported one */
	reset();
	parse(&why_format_mosquitto, "2026-11-23T20:12:41: New connection from 127.0.0.1:57102 on port 55153.");
	parse(&why_format_mosquitto, "2026-11-23T20:12:41: Sending CONNACK to scram-client (0, 140)");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:41: Client <unknown> disconnected due to QoS too high or retain not supported."),
			 WHY_REC_CLOSE);
	assert_text(rec.id, "scram-client");
	assert_text(rec.addr, "127.0.0.1:57102");
	assert_reason(rec.reason, "bad_auth_method");
	assert_int_equal(rec.confidence, EVT_CONF_STATED);
	/* a bad password: CONNACK 4 */
	reset();
	parse(&why_format_mosquitto, "2026-11-23T20:12:31: New connection from 127.0.0.1:1000 on port 1883.");
	parse(&why_format_mosquitto, "2026-11-23T20:12:31: Sending CONNACK to 127.0.0.1 (0, 4)");
	parse(&why_format_mosquitto, "2026-11-23T20:12:31: Client <unknown> disconnected, not authorised.");
	assert_reason(rec.reason, "auth_failed");
	/* accepted sockets leave the pending ring */
	reset();
	parse(&why_format_mosquitto, "2026-11-23T20:12:31: New connection from 127.0.0.1:1 on port 1883.");
	parse(&why_format_mosquitto, "2026-11-23T20:12:31: New client connected from 127.0.0.1:1 as c (p2, c1, k60).");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:31: Client <unknown> disconnected due to protocol error."), WHY_REC_CLOSE);
	assert_null(rec.addr.p);
}

static void test_mosquitto_notes_shutdown_and_noise(void **st)
{
	(void)st;
	reset();
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:34: Bad client bad-double-connect-v311 sending multiple CONNECT messages."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "bad-double-connect-v311");
	assert_reason(rec.reason, "protocol_error_second_connect");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:37: Invalid QoS in PUBLISH from bad-publish-qos3-v5, disconnecting."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "bad-publish-qos3-v5");
	assert_int_equal(parse(&why_format_mosquitto, "1700000000: Outgoing messages are being dropped for client stuck-v311."), WHY_REC_NOTE);
	assert_text(rec.id, "stuck-v311");
	assert_int_equal(rec.reason, EVT_R_NONE); /* mosquitto does not close for it */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:13:12: mosquitto version 2.0.11 terminating"), WHY_REC_SHUTDOWN);
	assert_reason(rec.reason, "server_shutdown");
	static const char *const noise[] = {
		"2026-11-23T20:13:23: Received PUBLISH from flooder-v311 (d0, q0, r0, m0, 'flood/x', ... (1000 bytes))",
		"2026-11-23T20:13:23: Sending PUBLISH to slow-ping-v311 (d0, q0, r0, m0, 'flood/x', ... (1000 bytes))",
		"2026-11-23T20:12:12: No will message specified.",
		"2026-11-23T20:12:12: \ttakeover/# (QoS 1)",
		"2026-11-23T20:12:12: takeover-v311 1 takeover/#",
		"2026-11-23T20:12:12: Sending CONNACK to takeover-v311 (1, 0)",
	};
	for (size_t i = 0; i < sizeof noise / sizeof noise[0]; i++)
		assert_int_equal(parse(&why_format_mosquitto, noise[i]), WHY_REC_NONE);
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-23T20:12:12: Something new about client takeover-v311 happened."),
			 WHY_REC_UNKNOWN);
}

/* ---- AMPS: the seed lines, verbatim ---- */

static void test_amps_seed_lines(void **st)
{
	(void)st;
	reset();
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:26:59.6408410-08:00 [5] warning: 02-0025 A client logon with an 'in use' client name for the same user id forced a disconnect of client: client[my-name] with user id:"),
			 WHY_REC_NOTE);
	assert_text(rec.id, "my-name");
	assert_reason(rec.reason, "session_taken_over");
	assert_true(rec.zoned);
	assert_int_equal(rec.ts_us, utc("2019-11-21T00:26:59") + 640841);
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:35:23.9185690-08:00 [6] error: 07-0042 AMPS heartbeat manager is disconnecting an unresponsive client: no-heartbeat-client"),
			 WHY_REC_NOTE);
	assert_text(rec.id, "no-heartbeat-client");
	assert_reason(rec.reason, "keepalive_timeout");
	assert_int_equal(parse(&why_format_amps, "2019-11-20T15:33:06.8496430-08:00 [7] warning: 70-0011 client[sleepy-client] slow consumption detected, offline messages."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "sleepy-client");
	assert_reason(rec.reason, "slow_consumer");
	assert_int_equal(parse(&why_format_amps, "2019-11-20T15:33:06.8498130-08:00 [7] error: 70-0004 client[sleepy-client] is not consuming messages, disconnecting slow client"),
			 WHY_REC_NOTE);
	assert_reason(rec.reason, "slow_consumer");
	assert_int_equal(rec.confidence, EVT_CONF_STATED);
	/* a bare 07-0013: AMPS logs no reason when it did not act */
	assert_int_equal(parse(&why_format_amps, "2019-11-20T15:33:06.8502350-08:00 [4] info: 07-0013 client[sleepy-client] disconnected."),
			 WHY_REC_CLOSE);
	assert_text(rec.id, "sleepy-client");
	assert_int_equal(rec.reason, EVT_R_NONE);
	/* 07-0047 then the closes of that transport's clients */
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:04:00.9548130-08:00 [10] info: 07-0047 Transport[json-tcp] being disabled."),
			 WHY_REC_NONE);
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:04:00.9550150-08:00 [4] info: 07-0013 client[amps-json-tcp-18] disconnected."),
			 WHY_REC_CLOSE);
	assert_text(rec.id, "amps-json-tcp-18");
	assert_reason(rec.reason, "listener_disabled");
	assert_non_null(rec.detail.p);
	/* well after it, a close is no longer the transport's */
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:09:00.0000000-08:00 [4] info: 07-0013 client[late] disconnected."),
			 WHY_REC_CLOSE);
	assert_int_equal(rec.reason, EVT_R_NONE);
}

static void test_amps_reason_words(void **st)
{
	(void)st;
	static const struct {
		const char *line, *reason;
		enum why_rec_kind kind;
	} cases[] = {
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: name in use.", "name_in_use", WHY_REC_CLOSE },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected (heartbeat).", "keepalive_timeout", WHY_REC_CLOSE },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: slow client", "slow_consumer", WHY_REC_CLOSE },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: entitlement reset", "credentials_expired", WHY_REC_CLOSE },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: unknown command", "unknown_command", WHY_REC_CLOSE },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: connection closed", "client_vanished", WHY_REC_CLOSE },
		{ "2019-11-20T16:26:59.6408410-08:00 [3] warning: 08-0001 client[a] auth failure for user id: bob", "auth_failed", WHY_REC_NOTE },
		{ "2019-11-20T16:26:59.6408410-08:00 [3] warning: 08-0002 client[a] not entitled to logon", "not_authorized", WHY_REC_NOTE },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		reset();
		assert_int_equal(parse(&why_format_amps, cases[i].line), cases[i].kind);
		assert_text(rec.id, "a");
		assert_reason(rec.reason, cases[i].reason);
	}
	reset();
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:26:59.6408410-08:00 [3] info: 07-0001 client[a] connected from 10.1.1.1"),
			 WHY_REC_OPEN);
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:26:59.6408410-08:00 [3] info: 12-0034 client[a] published a thing."),
			 WHY_REC_UNKNOWN);
}

/* ---- HiveMQ: the seed's statements and the event.log shapes ---- */

static void test_hivemq_seed_lines(void **st)
{
	(void)st;
	reset();
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,118 - Client ID: abc, IP:10.0.0.7 was disconnected. reason: Sent too many concurrent PUBLISH messages."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "abc");
	assert_text(rec.addr, "10.0.0.7");
	assert_reason(rec.reason, "receive_maximum_exceeded");
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,120 - Client ID: abc, IP:10.0.0.7 disconnected ungracefully."),
			 WHY_REC_CLOSE);
	assert_text(rec.id, "abc");
	assert_reason(rec.reason, "client_vanished"); /* alone: the connection was lost */
	assert_int_equal(rec.confidence, EVT_CONF_INFERRED);
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,118 - Client ID: abc, IP:10.0.0.7 was disconnected. reason: Sent second CONNECT message."),
			 WHY_REC_NOTE);
	assert_reason(rec.reason, "protocol_error_second_connect");
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,118 - Client ID: abc, IP: 10.0.0.7 was disconnected. reason: Client was idle for too long."),
			 WHY_REC_NOTE);
	assert_text(rec.addr, "10.0.0.7");
	assert_reason(rec.reason, "keepalive_timeout");
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,118 - Client ID: abc, IP: 10.0.0.7 was disconnected. reason: Another client connected with the same clientId."),
			 WHY_REC_NOTE);
	assert_reason(rec.reason, "session_taken_over");
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,118 INFO  - Disconnecting client with clientId xxxx and ip 10.0.0.8 forcibly via extension system."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "xxxx");
	assert_text(rec.addr, "10.0.0.8");
	assert_reason(rec.reason, "credentials_expired");
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:08,118 - Client ID: UNKNOWN, IP:10.0.0.9 disconnected ungracefully."),
			 WHY_REC_CLOSE);
	assert_null(rec.id.p);
	assert_text(rec.addr, "10.0.0.9");
}

static void test_hivemq_event_log(void **st)
{
	(void)st;
	reset();
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:26:00,001 - Client ID: abc, IP: 10.0.0.7, Clean Start: true, Session Expiry: 0 connected."),
			 WHY_REC_OPEN);
	assert_text(rec.id, "abc");
	assert_text(rec.addr, "10.0.0.7");
	assert_int_equal(rec.ts_us, utc("2020-09-14T11:26:00") + 1000);
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:27:00,001 - Client ID: abc, IP: 10.0.0.7 disconnected gracefully."),
			 WHY_REC_CLOSE);
	assert_reason(rec.reason, "client_disconnect");
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:27:00,001 - Client ID: abc, IP: 10.0.0.7 disconnected gracefully. Reason given by client: bye"),
			 WHY_REC_CLOSE);
	assert_int_equal(parse(&why_format_hivemq, "2020-09-14 11:27:00,001 INFO  - Started HiveMQ in 1234ms"), WHY_REC_UNKNOWN);
}

/* ---- EMQX 5: documented text log shape ---- */

static void test_emqx_lines(void **st)
{
	(void)st;
	reset();
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,keepalive_timeout}"),
			 WHY_REC_CLOSE);
	assert_text(rec.id, "c1");
	assert_text(rec.addr, "127.0.0.1:5678");
	assert_reason(rec.reason, "keepalive_timeout");
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [info] msg: terminate, clientid: c1, peername: 127.0.0.1:5678, reason: {shutdown,takenover}"),
			 WHY_REC_CLOSE);
	assert_reason(rec.reason, "session_taken_over");
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [info] tag: MQTT, clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,tcp_closed}"),
			 WHY_REC_CLOSE);
	assert_reason(rec.reason, "client_vanished");
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,not_authorized}"),
			 WHY_REC_CLOSE);
	assert_reason(rec.reason, "not_authorized");
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,kicked}"),
			 WHY_REC_CLOSE);
	assert_reason(rec.reason, "admin_disconnect");
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [warning] clientid: c1, msg: socket_error, peername: 127.0.0.1:5678, reason: econnreset"),
			 WHY_REC_NOTE);
	assert_int_equal(parse(&why_format_emqx, "2024-01-10T10:11:12.345678+00:00 [info] msg: listener_started, bind: 0.0.0.0:1883"),
			 WHY_REC_NONE);
}

/* ---- detection ---- */

static void test_detection(void **st)
{
	(void)st;
	struct why_text l[2];
	const char *mosq = "2026-11-23T20:12:16: New connection from 127.0.0.1:33396 on port 42599.";
	const char *amps = "2019-11-20T15:33:06.8502350-08:00 [4] info: 07-0013 client[sleepy-client] disconnected.";
	const char *hive = "2020-09-14 11:26:08,118 INFO  - Starting HiveMQ Community Edition Server";
	const char *emqx = "2024-01-10T10:11:12.345678+00:00 [info] msg: listener_started, bind: 0.0.0.0:1883";
	const char *epoch = "1700000000: mosquitto version 2.0.11 starting";
	l[0] = (struct why_text){ mosq, strlen(mosq) };
	assert_ptr_equal(why_format_detect(l, 1), &why_format_mosquitto);
	l[0] = (struct why_text){ epoch, strlen(epoch) };
	assert_ptr_equal(why_format_detect(l, 1), &why_format_mosquitto);
	l[0] = (struct why_text){ amps, strlen(amps) };
	assert_ptr_equal(why_format_detect(l, 1), &why_format_amps);
	l[0] = (struct why_text){ hive, strlen(hive) };
	assert_ptr_equal(why_format_detect(l, 1), &why_format_hivemq);
	l[0] = (struct why_text){ emqx, strlen(emqx) };
	assert_ptr_equal(why_format_detect(l, 1), &why_format_emqx);
	const char *junk = "hello world";
	l[0] = (struct why_text){ junk, strlen(junk) };
	assert_null(why_format_detect(l, 1));
	assert_ptr_equal(why_format_find("hivemq"), &why_format_hivemq);
	assert_null(why_format_find("nats"));
}

/* Every reader survives every prefix of every line it knows (no read past the end). */
static void test_truncated_lines(void **st)
{
	(void)st;
	static const char *const lines[] = {
		"2026-11-23T20:12:31: New client connected from 127.0.0.1:54198 as good-v311 (p2, c1, k60, u'alice').",
		"2019-11-20T16:26:59.6408410-08:00 [5] warning: 02-0025 A client logon with an 'in use' client name for the same user id forced a disconnect of client: client[my-name] with user id:",
		"2020-09-14 11:26:08,118 - Client ID: abc, IP:10.0.0.7 was disconnected. reason: Sent too many concurrent PUBLISH messages.",
		"2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,keepalive_timeout}",
	};
	const struct why_format *f[] = { &why_format_mosquitto, &why_format_amps, &why_format_hivemq, &why_format_emqx };
	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 4; k++)
			for (size_t n = 0; n <= strlen(lines[i]); n++) {
				char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
				memcpy(copy, lines[i], n);
				reset();
				f[k]->parse(state.bytes, copy, n, &rec);
				f[k]->looks_like(copy, n);
				free(copy);
			}
}

/* Random bytes through every reader: no crash, no read past the line (ASan build). */
static void test_random_bytes(void **st)
{
	(void)st;
	const struct why_format *f[] = { &why_format_mosquitto, &why_format_amps, &why_format_hivemq, &why_format_emqx };
	uint32_t x = 12345;
	static const char alphabet[] = "0123456789-T:., []{}()'client[Client ID: IP:msg: reason: (p5, c1, k2)\t\xff";
	for (int round = 0; round < 20000; round++) {
		size_t n = round % 200;
		char *line = malloc(n ? n : 1);
		/* half of them start with a valid timestamp, so the readers get past it */
		size_t at = 0;
		if (round % 2 && n >= 21) {
			memcpy(line, "2026-11-23T20:12:16: ", 21);
			at = 21;
		}
		for (size_t i = at; i < n; i++) {
			x = x * 1103515245u + 12345u;
			line[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
		}
		for (size_t k = 0; k < 4; k++) {
			reset();
			f[k]->parse(state.bytes, line, n, &rec);
			if (rec.id.p)
				assert_true(rec.id.p >= line && rec.id.p + rec.id.n <= line + n);
		}
		free(line);
	}
}

/* The line reader: CRLF, a last line without its newline, empty lines, and a
 * line longer than the buffer (its start given once, the rest skipped). */
static void test_line_reader(void **st)
{
	(void)st;
	char path[] = "/tmp/ww-test-why-lines-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "one\r\n\ntwo\n0123456789abcdefghijXYZ\nthree";
	assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);
	struct why_lines l;
	assert_int_equal(why_lines_open(&l, path, 16), 0);
	struct why_text t;
	const char *want[] = { "one", "", "two", "0123456789abcdef", "three" };
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(why_lines_next(&l, &t), 1);
		assert_int_equal(t.n, strlen(want[i]));
		assert_memory_equal(t.p, want[i], t.n);
	}
	assert_int_equal(why_lines_next(&l, &t), 0);
	assert_int_equal(l.long_lines, 1);
	why_lines_close(&l);
	unlink(path);
	assert_int_equal(why_lines_open(&l, path, 16), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_forms),
		cmocka_unit_test(test_mosquitto_open),
		cmocka_unit_test(test_mosquitto_closes),
		cmocka_unit_test(test_mosquitto_refused_connect_gets_address_and_code),
		cmocka_unit_test(test_mosquitto_notes_shutdown_and_noise),
		cmocka_unit_test(test_amps_seed_lines),
		cmocka_unit_test(test_amps_reason_words),
		cmocka_unit_test(test_hivemq_seed_lines),
		cmocka_unit_test(test_hivemq_event_log),
		cmocka_unit_test(test_emqx_lines),
		cmocka_unit_test(test_detection),
		cmocka_unit_test(test_truncated_lines),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_line_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
