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
	char bytes[1 << 20];
	max_align_t align;
} state;
static size_t state_used; /* the largest state_size parsed with since reset() */

static void *state_for(const struct why_format *fmt)
{
	assert_true(fmt->state_size <= sizeof state.bytes);
	if (fmt->state_size > state_used)
		state_used = fmt->state_size;
	return state.bytes;
}

/* Parses <line> with <fmt> using the shared state (zeroed by reset()). */
static enum why_rec_kind parse(const struct why_format *fmt, const char *line)
{
	return fmt->parse(state_for(fmt), line, strlen(line), &rec);
}

/* Zeroes what the readers used of the state (RabbitMQ's is most of a MiB). */
static void reset(void)
{
	memset(state.bytes, 0, state_used);
	state_used = 0;
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

/* One line and what its reader makes of it; a NULL id, addr or reason is
 * not checked. */
struct line_case {
	const char *line;
	enum why_rec_kind kind;
	const char *id, *addr, *reason;
};

/* Parses <cases> in order with <fmt>, keeping the reader's state between
 * lines as a log does (reset() is the caller's), and checks each record. */
static void expect_lines(const struct why_format *fmt, const struct line_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct line_case *c = &cases[i];
		enum why_rec_kind got = parse(fmt, c->line);
		if (got != c->kind)
			fail_msg("kind %d, want %d: %s", (int)got, (int)c->kind, c->line);
		if (c->id)
			assert_text(rec.id, c->id);
		if (c->addr)
			assert_text(rec.addr, c->addr);
		if (c->reason)
			assert_reason(rec.reason, c->reason);
	}
}

#define N_CASES(a) (sizeof(a) / sizeof((a)[0]))

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

/* mosquitto 2.1: lines recorded from 2.1.2 (tests/data/recorded-mosquitto21), 2.1.0's forms from its source */
static void test_mosquitto_21(void **st)
{
	(void)st;
	static const struct line_case closes[] = {
		{ "2026-11-24T05:42:34: New client connected from 127.0.0.1:40000 as stuck-v311 (p4, c1, k2).", WHY_REC_OPEN,
		  "stuck-v311", "127.0.0.1:40000", NULL },
		{ "2026-11-24T05:42:38: Client stuck-v311 [127.0.0.1:40000] disconnected: exceeded timeout.", WHY_REC_CLOSE,
		  "stuck-v311", "127.0.0.1:40000", "keepalive_timeout" },
		{ "2026-11-24T05:42:24: Client twin-v311 [127.0.0.1:40002] disconnected: session taken over.", WHY_REC_CLOSE,
		  "twin-v311", "127.0.0.1:40002", "session_taken_over" },
		{ "2026-11-24T05:42:52: Client flooder-v5 [127.0.0.1:40003] disconnected.", WHY_REC_CLOSE, "flooder-v5", NULL,
		  "client_disconnect" },
		{ "2026-11-24T05:42:04: Client killed-v311 [127.0.0.1:58078] disconnected: connection closed by client.",
		  WHY_REC_CLOSE, "killed-v311", NULL, "client_vanished" },
		{ "2026-11-24T05:42:15: Client big-v311 [127.0.0.1:1] disconnected: oversize packet.", WHY_REC_CLOSE, NULL, NULL,
		  "packet_too_large" },
		{ "2026-11-24T05:42:15: Client k [::1:5000] disconnected: administrative action.", WHY_REC_CLOSE, "k", "::1:5000",
		  "admin_disconnect" },
		/* an id with brackets of its own */
		{ "2026-11-24T05:42:15: Client a [b] c [127.0.0.1:7] disconnected: not authorised.", WHY_REC_CLOSE, "a [b] c",
		  "127.0.0.1:7", "not_authorized" },
		{ "2026-11-24T05:42:15: Client x [127.0.0.1:8] disconnected: Connection reset by peer.", WHY_REC_CLOSE, "x", NULL,
		  "client_vanished" },
		/* 2.1.0 */
		{ "2026-11-24T05:42:15: Client twin disconnected, session taken over.", WHY_REC_CLOSE, "twin", NULL,
		  "session_taken_over" },
		{ "2026-11-24T05:42:15: Client c disconnected, bad username or password.", WHY_REC_CLOSE, "c", NULL, "auth_failed" },
		{ "2026-11-24T05:42:15: Client a disconnected, b disconnected, session taken over.", WHY_REC_CLOSE,
		  "a disconnected, b", NULL, "session_taken_over" },
	};
	reset();
	expect_lines(&why_format_mosquitto, closes, N_CASES(closes));
	parse(&why_format_mosquitto, closes[0].line);
	assert_int_equal(rec.level, 4); /* 2.1 numbers levels as MQTT does */
	parse(&why_format_mosquitto, "2026-11-24T05:42:34: New client connected from 127.0.0.1:1 as old (p2, c1, k2).");
	assert_int_equal(rec.level, 4);

	/* a refused CONNECT: 2.1 names the client by its ip; the CONNACK code says why */
	reset();
	parse(&why_format_mosquitto, "2026-11-24T05:41:37: New connection from 127.0.0.1:37922 on port 39049.");
	parse(&why_format_mosquitto, "2026-11-24T05:41:37: Sending CONNACK to raw-auth-method (0, 140)");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:41:37: Client 127.0.0.1 [127.0.0.1:37922] disconnected: used disallowed feature (QoS too high, retain not supported, or bad AUTH method)."),
			 WHY_REC_CLOSE);
	assert_text(rec.addr, "127.0.0.1:37922");
	assert_reason(rec.reason, "bad_auth_method");
	reset();
	parse(&why_format_mosquitto, "2026-11-24T05:41:37: New connection from 10.0.0.3:1000 on port 1883.");
	parse(&why_format_mosquitto, "2026-11-24T05:41:37: Sending CONNACK to 10.0.0.3 (0, 5)");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:41:37: Client 10.0.0.3 disconnected, not authorised."),
			 WHY_REC_CLOSE); /* 2.1.0 */
	assert_null(rec.id.p);
	assert_text(rec.addr, "10.0.0.3:1000");
	assert_reason(rec.reason, "not_authorized");

	/* lines naming the address explain the close of that address that follows */
	reset();
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:41:31: Bad client 127.0.0.1:39340 sending multiple CONNECT messages."),
			 WHY_REC_NOTE);
	assert_null(rec.id.p);
	assert_text(rec.addr, "127.0.0.1:39340");
	parse(&why_format_mosquitto, "2026-11-24T05:41:31: Client bad [127.0.0.1:39340] disconnected: protocol error.");
	assert_text(rec.id, "bad");
	assert_reason(rec.reason, "protocol_error_second_connect");
	parse(&why_format_mosquitto, "2026-11-24T05:41:36: New connection from 127.0.0.1:33646 on port 54849.");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:41:36: Protocol error from 127.0.0.1:33646: First packet not CONNECT (30)."),
			 WHY_REC_NOTE);
	parse(&why_format_mosquitto, "2026-11-24T05:41:36: Client 127.0.0.1 [127.0.0.1:33646] disconnected: protocol error.");
	assert_null(rec.id.p);
	assert_reason(rec.reason, "first_packet_not_connect");
	/* another address's note does not explain this close */
	parse(&why_format_mosquitto, "2026-11-24T05:41:36: Protocol error from 127.0.0.1:1: First packet not CONNECT (30).");
	parse(&why_format_mosquitto, "2026-11-24T05:41:36: Client c [127.0.0.1:2] disconnected: protocol error.");
	assert_reason(rec.reason, "protocol_error");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:41:36: Protocol error from c1: RESERVED packet."), WHY_REC_NOTE);
	assert_text(rec.id, "c1");

	/* context, not closes */
	reset();
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:42:20: Client rm-v5 has exceeded its receive-maximum quota. This behaviour must be fixed on the client."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "rm-v5");
	assert_int_equal(rec.reason, EVT_R_NONE);
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:42:20: Client c negotiated TLSv1.3 cipher TLS_AES_256_GCM_SHA384"),
			 WHY_REC_NONE);
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:42:20: Connection from 127.0.0.1:5 rejected, client did not provide a certificate."),
			 WHY_REC_CLOSE);
	assert_text(rec.addr, "127.0.0.1:5");
	/* the ip-named subscription notes (every version) */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:42:20: Empty subscription string from 127.0.0.1, disconnecting."),
			 WHY_REC_NOTE);
	assert_null(rec.id.p);
	assert_text(rec.addr, "127.0.0.1");
	/* 1.6 */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T05:42:20: Client c sent topic with invalid UTF-8, disconnecting."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "c");
	/* an empty id before an errno close: the id is empty, not of length -1 (fuzz_why) */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T06:08:04: Client disconnected: onnec]ed."), WHY_REC_UNKNOWN);
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T06:08:04: Client  disconnected: Connection reset by peer."),
			 WHY_REC_CLOSE);
	assert_int_equal(rec.id.n, 0);
	/* 1.6, recorded (tests/data/recorded-mosquitto16): the note, then the close that says nothing */
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T06:08:40: Client big-v5 sent too large packet 315, disconnecting."),
			 WHY_REC_NOTE);
	assert_text(rec.id, "big-v5");
	assert_reason(rec.reason, "packet_too_large");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T06:08:40: Socket error on client big-v5, disconnecting."),
			 WHY_REC_CLOSE);
	assert_text(rec.id, "big-v5");
	assert_int_equal(parse(&why_format_mosquitto, "2026-11-24T06:08:19: New client connected from 127.0.0.1 as c (p2, c1, k30)."),
			 WHY_REC_OPEN);
	assert_text(rec.addr, "127.0.0.1");
}

static void test_mosquitto_notes_shutdown_and_noise(void **st)
{
	(void)st;
	static const struct line_case notes[] = {
		{ "2026-11-23T20:12:34: Bad client bad-double-connect-v311 sending multiple CONNECT messages.", WHY_REC_NOTE,
		  "bad-double-connect-v311", NULL, "protocol_error_second_connect" },
		{ "2026-11-23T20:12:37: Invalid QoS in PUBLISH from bad-publish-qos3-v5, disconnecting.", WHY_REC_NOTE,
		  "bad-publish-qos3-v5", NULL, NULL },
		{ "1700000000: Outgoing messages are being dropped for client stuck-v311.", WHY_REC_NOTE, "stuck-v311", NULL, NULL },
	};
	reset();
	expect_lines(&why_format_mosquitto, notes, N_CASES(notes));
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
	static const struct line_case taken_over[] = {
		{ "2019-11-20T16:26:59.6408410-08:00 [5] warning: 02-0025 A client logon with an 'in use' client name for the same user id forced a disconnect of client: client[my-name] with user id:",
		  WHY_REC_NOTE, "my-name", NULL, "session_taken_over" },
	};
	static const struct line_case notes[] = {
		{ "2019-11-20T16:35:23.9185690-08:00 [6] error: 07-0042 AMPS heartbeat manager is disconnecting an unresponsive client: no-heartbeat-client",
		  WHY_REC_NOTE, "no-heartbeat-client", NULL, "keepalive_timeout" },
		{ "2019-11-20T15:33:06.8496430-08:00 [7] warning: 70-0011 client[sleepy-client] slow consumption detected, offline messages.",
		  WHY_REC_NOTE, "sleepy-client", NULL, "slow_consumer" },
		{ "2019-11-20T15:33:06.8498130-08:00 [7] error: 70-0004 client[sleepy-client] is not consuming messages, disconnecting slow client",
		  WHY_REC_NOTE, NULL, NULL, "slow_consumer" },
	};
	/* a bare 07-0013: AMPS logs no reason when it did not act */
	static const struct line_case bare_close[] = {
		{ "2019-11-20T15:33:06.8502350-08:00 [4] info: 07-0013 client[sleepy-client] disconnected.", WHY_REC_CLOSE,
		  "sleepy-client", NULL, NULL },
	};
	/* 07-0047 then the closes of that transport's clients */
	static const struct line_case disabled[] = {
		{ "2019-11-20T16:04:00.9548130-08:00 [10] info: 07-0047 Transport[json-tcp] being disabled.", WHY_REC_NONE, NULL, NULL, NULL },
		{ "2019-11-20T16:04:00.9550150-08:00 [4] info: 07-0013 client[amps-json-tcp-18] disconnected.", WHY_REC_CLOSE,
		  "amps-json-tcp-18", NULL, "listener_disabled" },
	};
	reset();
	expect_lines(&why_format_amps, taken_over, N_CASES(taken_over));
	assert_true(rec.zoned);
	assert_int_equal(rec.ts_us, utc("2019-11-21T00:26:59") + 640841);
	expect_lines(&why_format_amps, notes, N_CASES(notes));
	assert_int_equal(rec.confidence, EVT_CONF_STATED);
	expect_lines(&why_format_amps, bare_close, N_CASES(bare_close));
	assert_int_equal(rec.reason, EVT_R_NONE);
	expect_lines(&why_format_amps, disabled, N_CASES(disabled));
	assert_non_null(rec.detail.p);
	/* well after it, a close is no longer the transport's */
	assert_int_equal(parse(&why_format_amps, "2019-11-20T16:09:00.0000000-08:00 [4] info: 07-0013 client[late] disconnected."),
			 WHY_REC_CLOSE);
	assert_int_equal(rec.reason, EVT_R_NONE);
}

static void test_amps_reason_words(void **st)
{
	(void)st;
	static const struct line_case cases[] = {
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: name in use.", WHY_REC_CLOSE, "a", NULL, "name_in_use" },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected (heartbeat).", WHY_REC_CLOSE, "a", NULL, "keepalive_timeout" },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: slow client", WHY_REC_CLOSE, "a", NULL, "slow_consumer" },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: entitlement reset", WHY_REC_CLOSE, "a", NULL, "credentials_expired" },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: unknown command", WHY_REC_CLOSE, "a", NULL, "unknown_command" },
		{ "2019-11-20T16:26:59.6408410-08:00 [4] info: 07-0013 client[a] disconnected: connection closed", WHY_REC_CLOSE, "a", NULL, "client_vanished" },
		{ "2019-11-20T16:26:59.6408410-08:00 [3] warning: 08-0001 client[a] auth failure for user id: bob", WHY_REC_NOTE, "a", NULL, "auth_failed" },
		{ "2019-11-20T16:26:59.6408410-08:00 [3] warning: 08-0002 client[a] not entitled to logon", WHY_REC_NOTE, "a", NULL, "not_authorized" },
	};
	for (size_t i = 0; i < N_CASES(cases); i++) {
		reset();
		expect_lines(&why_format_amps, &cases[i], 1);
	}
	static const struct line_case others[] = {
		{ "2019-11-20T16:26:59.6408410-08:00 [3] info: 07-0001 client[a] connected from 10.1.1.1", WHY_REC_OPEN, NULL, NULL, NULL },
		{ "2019-11-20T16:26:59.6408410-08:00 [3] info: 12-0034 client[a] published a thing.", WHY_REC_UNKNOWN, NULL, NULL, NULL },
	};
	reset();
	expect_lines(&why_format_amps, others, N_CASES(others));
}

/* ---- HiveMQ: the seed's statements and the event.log shapes ---- */

static void test_hivemq_seed_lines(void **st)
{
	(void)st;
	static const struct line_case stated[] = {
		{ "2020-09-14 11:26:08,118 - Client ID: abc, IP:10.0.0.7 was disconnected. reason: Sent too many concurrent PUBLISH messages.",
		  WHY_REC_CLOSE, "abc", "10.0.0.7", "receive_maximum_exceeded" },
		/* the knowledge base's second line: the same close */
		{ "2020-09-14 11:26:08,120 - Client ID: abc, IP:10.0.0.7 disconnected ungracefully.", WHY_REC_NONE, "abc", NULL,
		  NULL },
		/* alone: the connection was lost */
		{ "2020-09-14 11:26:09,120 - Client ID: abc, IP:10.0.0.7 disconnected ungracefully.", WHY_REC_CLOSE, "abc", NULL,
		  "client_vanished" },
	};
	static const struct line_case reasons[] = {
		{ "2020-09-14 11:26:08,118 - Client ID: abc, IP:10.0.0.7 was disconnected. reason: Sent second CONNECT message.",
		  WHY_REC_CLOSE, NULL, NULL, "protocol_error_second_connect" },
		{ "2020-09-14 11:26:08,118 - Client ID: abc, IP: 10.0.0.7 was disconnected. reason: Client was idle for too long.",
		  WHY_REC_CLOSE, NULL, "10.0.0.7", "keepalive_timeout" },
		{ "2020-09-14 11:26:08,118 - Client ID: abc, IP: 10.0.0.7 was disconnected. reason: Another client connected with the same clientId.",
		  WHY_REC_CLOSE, NULL, NULL, "session_taken_over" },
		{ "2020-09-14 11:26:08,118 INFO  - Disconnecting client with clientId xxxx and ip 10.0.0.8 forcibly via extension system.",
		  WHY_REC_NOTE, "xxxx", "10.0.0.8", "credentials_expired" },
		{ "2020-09-14 11:26:08,118 - Client ID: UNKNOWN, IP:10.0.0.9 disconnected ungracefully.", WHY_REC_CLOSE, NULL,
		  "10.0.0.9", NULL },
	};
	reset();
	expect_lines(&why_format_hivemq, stated, N_CASES(stated));
	assert_int_equal(rec.confidence, EVT_CONF_INFERRED);
	reset();
	expect_lines(&why_format_hivemq, reasons, N_CASES(reasons));
	assert_null(rec.id.p);
}

#define LONG_ID "client-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"

/* HiveMQ CE's own event-log reasons (EventLog.clientWasDisconnected callers) */
static void test_hivemq_ce_reasons(void **st)
{
	(void)st;
#define HIVE_CLOSE(reason_text, want) \
	{ "2026-11-24 05:00:00,000 - Client ID: c, IP: 10.0.0.7 was disconnected. reason: " reason_text ".", WHY_REC_CLOSE, \
	  "c", "10.0.0.7", want }
	static const struct line_case cases[] = {
		HIVE_CLOSE("Another client connected with the same client id.", "session_taken_over"),
		HIVE_CLOSE("No CONNECT sent in time", "connect_timeout"),
		HIVE_CLOSE("The configured maximum amount of connections is reached", "quota_exceeded"),
		HIVE_CLOSE("Sent PUBLISH with QoS (2) higher than the allowed maximum (1)", "qos_not_supported"),
		HIVE_CLOSE("Sent a message that was bigger than the maximum size", "packet_too_large"),
		HIVE_CLOSE("Sent CONNECT exceeded the maximum permissible size", "packet_too_large"),
		HIVE_CLOSE("Authentication failed, no authenticator registered", "auth_failed"),
		HIVE_CLOSE("Sent a CONNECT with invalid authentication method", "auth_failed"),
		HIVE_CLOSE("Not authorized to publish on topic 'a/b' with QoS '1' and retain 'false'", "not_authorized"),
		HIVE_CLOSE("Sent a PUBLISH to an unauthorized topic 'x', extension requested disconnect", "not_authorized"),
		HIVE_CLOSE("Disconnected via extension system", "admin_disconnect"),
		HIVE_CLOSE("Sent a PUBLISH with 'topic alias' included more than once", "protocol_error"),
		HIVE_CLOSE("Sent a PUBLISH with a Topic Alias that exceeds the global memory hard limit", "quota_exceeded"),
		HIVE_CLOSE("Sent a PUBLISH with an unmapped topic alias", "topic_alias_invalid"),
		HIVE_CLOSE("Sent a PUBLISH with invalid property identifier", "malformed_packet"),
		HIVE_CLOSE("Sent a message with invalid remaining length", "malformed_packet"),
		HIVE_CLOSE("Sent a PUBLISH with QoS 0 and DUP set to 1", "protocol_error"),
		HIVE_CLOSE("SSL handshake failed for TCP Listener with TLS on port: 8883", "tls_handshake_failed"),
		/* a topic is the client's words: they do not decide */
		HIVE_CLOSE("Not authorized to subscribe to topic 'fleet/idle for too long', QoS 'AT_MOST_ONCE'", "not_authorized"),
		HIVE_CLOSE("Sent a PUBLISH with wildcard character (#/+) in topic: a/idle for too long/#", "protocol_error"),
		HIVE_CLOSE("Something HiveMQ may write one day", "unknown"),
	};
#undef HIVE_CLOSE
	for (size_t i = 0; i < N_CASES(cases); i++) {
		reset();
		expect_lines(&why_format_hivemq, &cases[i], 1);
		assert_int_equal(rec.closed_by, EVT_BY_BROKER);
		assert_int_equal(rec.confidence, EVT_CONF_STATED);
	}
	/* the knowledge base's follower lines of a sweep, interleaved; an id longer than any copy */
	static const struct line_case sweep[] = {
		{ "2026-11-24 05:00:00,000 - Client ID: a, IP: 10.0.0.1 was disconnected. reason: Client was idle for too long.",
		  WHY_REC_CLOSE, "a", NULL, "keepalive_timeout" },
		{ "2026-11-24 05:00:00,001 - Client ID: b, IP: 10.0.0.2 was disconnected. reason: Client was idle for too long.",
		  WHY_REC_CLOSE, "b", NULL, "keepalive_timeout" },
		{ "2026-11-24 05:00:00,002 - Client ID: a, IP: 10.0.0.1 disconnected ungracefully.", WHY_REC_NONE, NULL, NULL, NULL },
		{ "2026-11-24 05:00:00,003 - Client ID: b, IP: 10.0.0.2 disconnected ungracefully.", WHY_REC_NONE, NULL, NULL, NULL },
		{ "2026-11-24 05:00:01,000 - Client ID: " LONG_ID ", IP: 10.0.0.3 was disconnected. reason: Client was idle for too long.",
		  WHY_REC_CLOSE, LONG_ID, NULL, "keepalive_timeout" },
		{ "2026-11-24 05:00:01,001 - Client ID: " LONG_ID ", IP: 10.0.0.3 disconnected ungracefully.", WHY_REC_NONE, NULL,
		  NULL, NULL },
		/* the same id from elsewhere is another connection */
		{ "2026-11-24 05:00:01,002 - Client ID: a, IP: 10.0.0.9 disconnected ungracefully.", WHY_REC_CLOSE, "a", NULL,
		  "client_vanished" },
	};
	reset();
	expect_lines(&why_format_hivemq, sweep, N_CASES(sweep));
	/* CE's extension disconnect in hivemq.log (DEBUG): the id quoted, no ip */
	static const struct line_case ext[] = {
		{ "2026-11-24 05:00:00,000 DEBUG - Disconnecting client with clientId 'c' forcibly via extension system.",
		  WHY_REC_NOTE, "c", NULL, "admin_disconnect" },
	};
	reset();
	expect_lines(&why_format_hivemq, ext, 1);
	/* 2023.4+ names the listener; a client's reason string is its words, not a broker close */
	static const struct line_case more[] = {
		{ "2026-11-24 05:00:00,000 - Client ID: c, IP: 10.0.0.7 disconnected ungracefully from TCP Listener on port: 1883.",
		  WHY_REC_CLOSE, "c", "10.0.0.7", "client_vanished" },
		{ "2026-11-24 05:00:00,000 - Client ID: c, IP: 10.0.0.7 disconnected gracefully. Reason given by client: I was disconnected. reason: x",
		  WHY_REC_CLOSE, "c", "10.0.0.7", "client_disconnect" },
		/* the shutdown closes every connection without a word to each */
		{ "2026-11-24 05:01:00,000 INFO  - Shutting down HiveMQ. Please wait, this could take a while...", WHY_REC_SHUTDOWN,
		  NULL, NULL, "server_shutdown" },
		{ "2026-11-24 05:01:00,300 - Client ID: d, IP: 10.0.0.8 disconnected ungracefully from TCP Listener on port: 1883.",
		  WHY_REC_CLOSE, "d", "10.0.0.8", "server_shutdown" },
		{ "2026-11-24 05:03:00,300 - Client ID: d, IP: 10.0.0.8 disconnected ungracefully from TCP Listener on port: 1883.",
		  WHY_REC_CLOSE, "d", "10.0.0.8", "client_vanished" },
	};
	reset();
	expect_lines(&why_format_hivemq, more, N_CASES(more));
}

static void test_hivemq_event_log(void **st)
{
	(void)st;
	static const struct line_case open[] = {
		{ "2020-09-14 11:26:00,001 - Client ID: abc, IP: 10.0.0.7, Clean Start: true, Session Expiry: 0 connected.", WHY_REC_OPEN,
		  "abc", "10.0.0.7", NULL },
	};
	static const struct line_case rest[] = {
		{ "2020-09-14 11:27:00,001 - Client ID: abc, IP: 10.0.0.7 disconnected gracefully.", WHY_REC_CLOSE, NULL, NULL,
		  "client_disconnect" },
		{ "2020-09-14 11:27:00,001 - Client ID: abc, IP: 10.0.0.7 disconnected gracefully. Reason given by client: bye",
		  WHY_REC_CLOSE, NULL, NULL, NULL },
		{ "2020-09-14 11:27:00,001 INFO  - Started HiveMQ in 1234ms", WHY_REC_UNKNOWN, NULL, NULL, NULL },
	};
	reset();
	expect_lines(&why_format_hivemq, open, N_CASES(open));
	assert_int_equal(rec.ts_us, utc("2020-09-14T11:26:00") + 1000);
	expect_lines(&why_format_hivemq, rest, N_CASES(rest));
}

/* ---- EMQX 5: documented text log shape ---- */

static void test_emqx_lines(void **st)
{
	(void)st;
	static const struct line_case lines[] = {
		{ "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,keepalive_timeout}",
		  WHY_REC_CLOSE, "c1", "127.0.0.1:5678", "keepalive_timeout" },
		{ "2024-01-10T10:11:12.345678+00:00 [info] msg: terminate, clientid: c1, peername: 127.0.0.1:5678, reason: {shutdown,takenover}",
		  WHY_REC_CLOSE, NULL, NULL, "session_taken_over" },
		{ "2024-01-10T10:11:12.345678+00:00 [info] tag: MQTT, clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,tcp_closed}",
		  WHY_REC_CLOSE, NULL, NULL, "client_vanished" },
		{ "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,not_authorized}",
		  WHY_REC_CLOSE, NULL, NULL, "not_authorized" },
		{ "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,kicked}",
		  WHY_REC_CLOSE, NULL, NULL, "admin_disconnect" },
		{ "2024-01-10T10:11:12.345678+00:00 [warning] clientid: c1, msg: socket_error, peername: 127.0.0.1:5678, reason: econnreset",
		  WHY_REC_NOTE, NULL, NULL, NULL },
		{ "2024-01-10T10:11:12.345678+00:00 [info] msg: listener_started, bind: 0.0.0.0:1883", WHY_REC_NONE, NULL, NULL, NULL },
	};
	reset();
	expect_lines(&why_format_emqx, lines, N_CASES(lines));
	/* lines as v5.8.9's own formatter (emqx_logger_textfmt) prints EMQX's logger calls */
	static const struct line_case v58[] = {
		{ "2026-11-24T13:34:10.446717+08:00 [info] msg: terminate, peername: 127.0.0.1:51234, reason: {shutdown,idle_timeout}",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:51234", "connect_timeout" },
		{ "2026-11-24T13:34:10.462225+08:00 [warning] tag: AUTHN, clientid: c1, msg: authentication_failure, peername: 127.0.0.1:51234, username: alice, reason: bad_username_or_password",
		  WHY_REC_NOTE, "c1", NULL, "auth_failed" },
		{ "2026-11-24T13:34:10.462387+08:00 [warning] tag: AUTHZ, clientid: c1, msg: cannot_publish_to_topic_due_to_not_authorized, peername: 127.0.0.1:51234, username: alice, topic: t/1, reason: not_authorized",
		  WHY_REC_NOTE, "c1", NULL, "not_authorized" },
		{ "2026-11-24T13:34:10.461907+08:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:51234, username: alice, reason: {shutdown,#{cause => frame_too_large,clientid => <<\"c1\">>,limit => 1024,peername => {{127,0,0,1},51234},proto_name => <<\"MQTT\">>,proto_ver => 4,received => 2048,shutdown_count => frame_too_large,sockname => {{127,0,0,1},1883},username => <<\"alice\">>}}",
		  WHY_REC_CLOSE, "c1", "127.0.0.1:51234", "packet_too_large" },
		{ "2026-11-24T13:36:13.332559+08:00 [info] clientid: dev-42, msg: terminate, peername: 192.168.1.20:53211, reason: {shutdown,#{clientid => <<\"dev-42\">>,peername => {{192,168,1,20},53211},proto_name => <<\"MQTT\">>,proto_ver => 4,reason => bad_frame_header,shutdown_count => frame_error,sockname => {{10,0,0,1},1883}}}",
		  WHY_REC_CLOSE, "dev-42", NULL, "malformed_packet" },
		{ "2026-11-24T13:36:13.331276+08:00 [debug] tag: MQTT, clientid: dev-42, msg: mqtt_packet_sent, peername: 192.168.1.20:53211, packet: CONNACK(Q0, R0, D0, AckFlags=0, ReasonCode=0)",
		  WHY_REC_OPEN, "dev-42", "192.168.1.20:53211", NULL },
		{ "2026-11-24T13:36:13.331276+08:00 [debug] tag: MQTT, clientid: dev-42, msg: mqtt_packet_sent, peername: 192.168.1.20:53211, packet: CONNACK(Q0, R0, D0, AckFlags=0, ReasonCode=134)",
		  WHY_REC_UNKNOWN, "dev-42", NULL, NULL },
		{ "2026-11-24T13:36:13.331329+08:00 [debug] tag: MQTT, clientid: dev-42, msg: mqtt_packet_received, peername: 192.168.1.20:53211, packet: DISCONNECT(Q0, R0, D0, ReasonCode=4)",
		  WHY_REC_UNKNOWN, "dev-42", NULL, NULL },
		{ "2026-11-24T13:36:13.330743+08:00 [warning] clientid: c1, msg: packet_is_discarded, peername: 127.0.0.1:1, reason: frame_is_too_large",
		  WHY_REC_UNKNOWN, "c1", NULL, NULL },
		{ "2026-11-24T13:36:13.331096+08:00 [critical] msg: received_terminate_signal", WHY_REC_SHUTDOWN, NULL, NULL,
		  "server_shutdown" },
		{ "2026-11-24T05:34:10.671852+00:00 [info] clientid: c1, msg: terminate, mfa: emqx_connection:terminate/2(666), peername: ::1:51234, username: alice, reason: {shutdown,discarded}",
		  WHY_REC_CLOSE, "c1", "::1:51234", "session_taken_over" },
		{ "2026-11-24T05:34:10.671852+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:1, reason: {shutdown,expired}",
		  WHY_REC_CLOSE, "c1", NULL, "unknown" },
	};
	reset();
	expect_lines(&why_format_emqx, v58, N_CASES(v58));
	/* a client id with a "(" in it is not a term: it ends at the next ", " */
	parse(&why_format_emqx, "2026-11-24T13:36:13.331276+08:00 [info] clientid: dev(1, msg: terminate, peername: 1.2.3.4:5, reason: {shutdown,tcp_closed}");
	assert_text(rec.id, "dev(1");
	assert_reason(rec.reason, "client_vanished");
	/* a key that ends another is not that key */
	parse(&why_format_emqx, "2026-11-24T13:36:13.331276+08:00 [info] clientid: c, msg: terminate, reason: {shutdown,#{exit_reason => x,cause => frame_too_large}}");
	assert_reason(rec.reason, "packet_too_large");
	/* a value holding ", " inside parentheses is one value */
	parse(&why_format_emqx, "2026-11-24T13:36:13.331276+08:00 [debug] tag: MQTT, clientid: c, msg: mqtt_packet_received, peername: 1.2.3.4:5, packet: CONNECT(Q0, R0, D0, ClientId=c, KeepAlive=60), reason: x");
	assert_text(rec.addr, "1.2.3.4:5");
	/* timestamp_format = epoch: microseconds */
	assert_int_equal(parse(&why_format_emqx, "1795498450671654 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:51234, username: alice, reason: {shutdown,kicked}"),
			 WHY_REC_CLOSE);
	assert_int_equal(rec.ts_us, 1795498450671654);
	assert_reason(rec.reason, "admin_disconnect");
}

/* ---- RabbitMQ: 3.10 lines recorded (tests/data/recorded-rabbitmq), 3.12+ from the source ---- */

static void test_rabbitmq_lines(void **st)
{
	(void)st;
	static const struct line_case v310[] = {
		{ "2026-11-24 04:17:00.048219+00:00 [info] <0.880.0> accepting MQTT connection <0.880.0> (127.0.0.1:35766 -> 127.0.0.1:49585, client id: rmq-twin)",
		  WHY_REC_OPEN, "rmq-twin", "127.0.0.1:35766", NULL },
		{ "2026-11-24 04:17:00.554082+00:00 [info] <0.908.0> accepting MQTT connection <0.908.0> (127.0.0.1:35772 -> 127.0.0.1:49585, client id: rmq-twin)",
		  WHY_REC_OPEN, "rmq-twin", "127.0.0.1:35772", NULL },
		{ "2026-11-24 04:17:00.554463+00:00 [warning] <0.880.0> MQTT disconnecting client \"127.0.0.1:35766 -> 127.0.0.1:49585\" with duplicate id 'rmq-twin'",
		  WHY_REC_CLOSE, "rmq-twin", "127.0.0.1:35766", "session_taken_over" },
		{ "2026-11-24 04:17:00.856891+00:00 [info] <0.908.0> closing MQTT connection <0.908.0> (127.0.0.1:35772 -> 127.0.0.1:49585)",
		  WHY_REC_CLOSE, "rmq-twin", "127.0.0.1:35772", "client_disconnect" },
		{ "2026-11-24 04:16:53.009861+00:00 [info] <0.846.0> accepting MQTT connection <0.846.0> (127.0.0.1:55324 -> 127.0.0.1:49585, client id: rmq-keepalive)",
		  WHY_REC_OPEN, "rmq-keepalive", NULL, NULL },
		{ "2026-11-24 04:16:59.014784+00:00 [error] <0.846.0> closing MQTT connection \"127.0.0.1:55324 -> 127.0.0.1:49585\" (keepalive timeout)",
		  WHY_REC_CLOSE, "rmq-keepalive", "127.0.0.1:55324", "keepalive_timeout" },
		{ "2026-11-24 04:17:12.936673+00:00 [error] <0.970.0> closing MQTT connection \"127.0.0.1:35824 -> 127.0.0.1:49585\" (login timeout)",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:35824", "connect_timeout" },
		{ "2026-11-24 04:17:01.889464+00:00 [error] <0.949.0> MQTT login failed for user 'guest', authentication failed: Refused",
		  WHY_REC_NOTE, NULL, NULL, "auth_failed" },
		{ "2026-11-24 04:17:01.890552+00:00 [error] <0.949.0> MQTT connection 127.0.0.1:35784 -> 127.0.0.1:49585 is closing due to an authentication failure",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:35784", "auth_failed" },
		{ "2026-11-24 04:17:01.912675+00:00 [warning] <0.963.0> MQTT login failed for user 'limited': virtual host access not allowed",
		  WHY_REC_NOTE, NULL, NULL, "not_authorized" },
		{ "2026-11-24 04:17:01.912933+00:00 [error] <0.963.0> MQTT connection 127.0.0.1:35816 -> 127.0.0.1:49585 is closing due to an authorization failure",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:35816", "not_authorized" },
		{ "2026-11-24 04:17:20.006308+00:00 [info] <0.1017.0> accepting MQTT connection <0.1017.0> (127.0.0.1:49540 -> 127.0.0.1:49585, client id: rmq-reserved)",
		  WHY_REC_OPEN, "rmq-reserved", NULL, NULL },
		{ "2026-11-24 04:17:25.009125+00:00 [info] <0.1017.0> MQTT connection \"127.0.0.1:49540 -> 127.0.0.1:49585\" will terminate because peer closed TCP connection",
		  WHY_REC_CLOSE, "rmq-reserved", "127.0.0.1:49540", "client_vanished" },
		{ "2026-11-24 04:17:26.040216+00:00 [error] <0.1051.0> MQTT cannot parse a frame on connection '127.0.0.1:59634 -> 127.0.0.1:49585', unparseable payload: <<16,33,0,",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:59634", "malformed_packet" },
		{ "2026-11-24 04:17:26.040216+00:00 [error] <0.1051.0>                                   4,77,81,", WHY_REC_UNKNOWN, NULL, NULL,
		  NULL },
		{ "2026-11-24 04:19:40.415427+00:00 [info] <0.1054.0> accepting MQTT connection <0.1054.0> (127.0.0.1:35586 -> 127.0.0.1:50243, client id: rmq-kicked)",
		  WHY_REC_OPEN, "rmq-kicked", NULL, NULL },
		{ "2026-11-24 04:19:41.762723+00:00 [error] <0.1060.0> ** Generic server <0.1060.0> terminating", WHY_REC_UNKNOWN, NULL,
		  NULL, NULL }, /* not a connection's process */
		{ "2026-11-24 04:19:41.762723+00:00 [error] <0.1054.0> ** Generic server <0.1054.0> terminating", WHY_REC_CLOSE,
		  "rmq-kicked", "127.0.0.1:35586", "unknown" },
		{ "2026-11-24 04:17:36.326473+00:00 [info] <0.1150.0> RabbitMQ is asked to stop...", WHY_REC_SHUTDOWN, NULL, NULL,
		  "server_shutdown" },
	};
	static const struct line_case v312[] = {
		{ "2024-01-15 10:00:00.123456+00:00 [info] <0.1234.0> Accepted MQTT connection 127.0.0.1:52534 -> 127.0.0.1:1883 for client ID c1",
		  WHY_REC_OPEN, "c1", "127.0.0.1:52534", NULL },
		{ "2024-01-15 10:00:09.000000+00:00 [error] <0.1234.0> closing MQTT connection <<\"127.0.0.1:52534 -> 127.0.0.1:1883\">> (keepalive timeout)",
		  WHY_REC_CLOSE, "c1", "127.0.0.1:52534", "keepalive_timeout" },
		{ "2024-01-15 10:00:10.000000+00:00 [error] <0.1240.0> Rejected MQTT connection 127.0.0.1:52540 -> 127.0.0.1:1883 with Connect Reason Code 134",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:52540", "auth_failed" },
		{ "2024-01-15 10:00:10.000000+00:00 [error] <0.1241.0> Rejected MQTT connection 127.0.0.1:52541 -> 127.0.0.1:1883 with Connect Reason Code 5",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:52541", "not_authorized" },
		{ "2024-01-15 10:00:11.000000+00:00 [info] <0.1250.0> Accepted MQTT connection [::1]:52600 -> [::1]:1883 for client ID c2",
		  WHY_REC_OPEN, "c2", "[::1]:52600", NULL },
		{ "2024-01-15 10:00:12.000000+00:00 [warning] <0.1250.0> Received a PUBLISH with QoS2. Disconnecting MQTT client c2",
		  WHY_REC_NOTE, "c2", NULL, "qos_not_supported" },
		{ "2024-01-15 10:00:12.000100+00:00 [error] <0.1250.0> MQTT protocol error on connection [::1]:52600 -> [::1]:1883: subscribe_qos2_not_supported",
		  WHY_REC_CLOSE, "c2", "[::1]:52600", "protocol_error" },
		{ "2024-01-15 10:00:13.000000+00:00 [info] <0.1260.0> Accepted MQTT connection 10.0.0.9:4000 -> 10.0.0.1:1883 for client ID c3",
		  WHY_REC_OPEN, "c3", NULL, NULL },
		{ "2024-01-15 10:00:14.000000+00:00 [warning] <0.1260.0> MQTT disconnecting client <<\"10.0.0.9:4000 -> 10.0.0.1:1883\">> with client ID 'c3', reason: Closed via management plugin",
		  WHY_REC_CLOSE, "c3", "10.0.0.9:4000", "admin_disconnect" },
		{ "2024-01-15 10:00:15.000000+00:00 [warning] <0.1261.0> MQTT disconnecting client <<\"10.0.0.9:4001 -> 10.0.0.1:1883\">> with client ID 'c4' because credential expired",
		  WHY_REC_CLOSE, "c4", "10.0.0.9:4001", "credentials_expired" },
		{ "2024-01-15 10:00:16.000000+00:00 [warning] <0.1262.0> MQTT disconnecting client <<\"10.0.0.9:4002 -> 10.0.0.1:1883\">> with client ID 'c5', reason: maintenance",
		  WHY_REC_CLOSE, "c5", NULL, "server_shutdown" },
		{ "2024-01-15 10:00:17.000000+00:00 [info] <0.1263.0> MQTT detected network error for <<\"10.0.0.9:4003 -> 10.0.0.1:1883\">>: etimedout",
		  WHY_REC_CLOSE, NULL, "10.0.0.9:4003", "client_vanished" },
		{ "2024-01-15 10:00:18.000000+00:00 [error] <0.1264.0> MQTT detected a packet error on connection 10.0.0.9:4004 -> 10.0.0.1:1883: {packet_too_large,300,256}",
		  WHY_REC_CLOSE, NULL, "10.0.0.9:4004", "packet_too_large" },
		{ "2024-01-15 10:00:19.000000+00:00 [info] <0.1265.0> MQTT closing connection <<\"10.0.0.9:4005 -> 10.0.0.1:1883\">>: \"Closed via management plugin\"",
		  WHY_REC_CLOSE, NULL, "10.0.0.9:4005", "admin_disconnect" },
		{ "2024-01-15 10:00:20.000000+00:00 [info] <0.1266.0> MQTT vhost picked using plugin configuration or default", WHY_REC_UNKNOWN,
		  NULL, NULL, NULL },
	};
	reset();
	expect_lines(&why_format_rabbitmq, v310, N_CASES(v310));
	reset();
	expect_lines(&why_format_rabbitmq, v312, N_CASES(v312));
	/* 3.12's refusal wording, and 3.13-4.3 lines from the source (deps/rabbitmq_mqtt) */
	static const struct line_case v4[] = {
		{ "2024-01-15 10:00:10.000000+00:00 [error] <0.1240.0> Rejected MQTT connection 127.0.0.1:52540 -> 127.0.0.1:1883 with CONNACK return code 4",
		  WHY_REC_CLOSE, NULL, "127.0.0.1:52540", "auth_failed" },
		{ "2024-01-15 10:00:11.000000+00:00 [info] <0.1250.0> Accepted MQTT connection 10.0.0.9:5000 -> 10.0.0.1:1883 for client ID big",
		  WHY_REC_OPEN, "big", NULL, NULL },
		{ "2024-01-15 10:00:12.000000+00:00 [error] <0.1250.0> MQTT packet size (300000 bytes, type 3) exceeds mqtt.max_packet_size_authenticated (262144 bytes)",
		  WHY_REC_CLOSE, "big", "10.0.0.9:5000", "packet_too_large" },
		{ "2024-01-15 10:00:13.000000+00:00 [info] <0.1251.0> Accepted MQTT connection 10.0.0.9:5001 -> 10.0.0.1:1883 for client ID lazy",
		  WHY_REC_OPEN, "lazy", NULL, NULL },
		{ "2024-01-15 10:00:14.000000+00:00 [info] <0.1251.0> Terminating MQTT connection because consumer on queue 'mqtt-subscription-lazyqos1' in vhost '/' timed out",
		  WHY_REC_CLOSE, "lazy", NULL, "slow_consumer" },
		{ "2024-01-15 10:00:15.000000+00:00 [info] <0.1252.0> Accepted MQTT connection 10.0.0.9:5002 -> 10.0.0.1:1883 for client ID a2",
		  WHY_REC_OPEN, "a2", NULL, NULL },
		{ "2024-01-15 10:00:16.000000+00:00 [warning] <0.1252.0> Unknown Topic Alias: 7. Disconnecting MQTT client a2",
		  WHY_REC_NOTE, "a2", NULL, "protocol_error" },
		{ "2024-01-15 10:00:16.000100+00:00 [error] <0.1252.0> MQTT protocol error on connection 10.0.0.9:5002 -> 10.0.0.1:1883: {disconnect,server_initiated}",
		  WHY_REC_CLOSE, "a2", NULL, NULL },
		{ "2024-01-15 10:00:17.000000+00:00 [error] <0.1253.0> MQTT connection failed: access refused for user 'bob':user 'bob' - invalid credentials",
		  WHY_REC_NOTE, NULL, NULL, "auth_failed" },
		{ "2024-01-15 10:00:17.000000+00:00 [error] <0.1253.0> MQTT connection failed: access refused for user 'bob' to vhost 'v'",
		  WHY_REC_NOTE, NULL, NULL, "not_authorized" },
		{ "2024-01-15 10:00:18.000000+00:00 [info] <0.1254.0> Acme MQ is asked to stop...", WHY_REC_SHUTDOWN, NULL, NULL,
		  "server_shutdown" },
	};
	reset();
	expect_lines(&why_format_rabbitmq, v4, N_CASES(v4));
	/* a quoted name without what follows it is not that sentence */
	assert_int_equal(parse(&why_format_rabbitmq, "2024-01-15 10:00:11.000000+00:00 [info] <0.1250.0> Accepted MQTT connection <<\"10.0.0.9:5000 -> 10.0.0.1:1883\">>"),
			 WHY_REC_UNKNOWN);
	assert_int_equal(parse(&why_format_rabbitmq, "2024-01-15 10:00:11.000000+00:00 [info] <0.1250.0> Rejected MQTT connection <<\"a -> b\">> junk"),
			 WHY_REC_UNKNOWN);
	assert_int_equal(parse(&why_format_rabbitmq, v4[7].line), WHY_REC_CLOSE);
	assert_int_equal(rec.reason, EVT_R_NONE); /* the warning before it says why */
	/* a RabbitMQ line is not EMQX's, nor the other way round */
	const char *emqx = "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,tcp_closed}";
	assert_false(why_format_rabbitmq.looks_like(emqx, strlen(emqx)));
}

/* ---- detection ---- */

static const struct why_unwrap_ref nov2026 = { 2026, 11 };

/* The reader one line is detected as; <*wrapped> whether it read it only unwrapped. */
static const struct why_format *detect1(const char *line, bool *wrapped)
{
	static char scratch[1024];
	struct why_text l = { line, strlen(line) };
	return why_format_detect(&l, 1, NULL, &nov2026, scratch, sizeof scratch, wrapped);
}

static void test_detection(void **st)
{
	(void)st;
	bool wrapped;
	const char *mosq = "2026-11-23T20:12:16: New connection from 127.0.0.1:33396 on port 42599.";
	const char *amps = "2019-11-20T15:33:06.8502350-08:00 [4] info: 07-0013 client[sleepy-client] disconnected.";
	const char *hive = "2020-09-14 11:26:08,118 INFO  - Starting HiveMQ Community Edition Server";
	const char *emqx = "2024-01-10T10:11:12.345678+00:00 [info] msg: listener_started, bind: 0.0.0.0:1883";
	const char *epoch = "1700000000: mosquitto version 2.0.11 starting";
	const char *rmq = "2026-11-24 04:16:50.329850+00:00 [info] <0.699.0> accepting MQTT connection <0.699.0> (127.0.0.1:55292 -> 127.0.0.1:49585, client id: rmq-clean)";
	assert_ptr_equal(detect1(mosq, &wrapped), &why_format_mosquitto);
	assert_false(wrapped);
	assert_ptr_equal(detect1(epoch, &wrapped), &why_format_mosquitto);
	assert_ptr_equal(detect1(amps, &wrapped), &why_format_amps);
	assert_false(wrapped);
	assert_ptr_equal(detect1(hive, &wrapped), &why_format_hivemq);
	assert_ptr_equal(detect1(emqx, &wrapped), &why_format_emqx);
	assert_false(wrapped);
	const char *emqx_z = "2024-01-10T10:11:12.345678Z [info] clientid: c1, msg: terminate, reason: normal";
	assert_ptr_equal(detect1(emqx_z, &wrapped), &why_format_emqx);
	assert_false(wrapped);
	assert_ptr_equal(detect1(rmq, &wrapped), &why_format_rabbitmq);
	assert_false(wrapped);
	assert_ptr_equal(why_format_find("rabbitmq"), &why_format_rabbitmq);
	assert_null(detect1("hello world", &wrapped));
	assert_ptr_equal(why_format_find("hivemq"), &why_format_hivemq);
	assert_null(why_format_find("nats"));

	/* the same lines as collectors pass them on */
	assert_ptr_equal(detect1("mqtt-1  | 1700000000: mosquitto version 2.0.11 starting", &wrapped),
			 &why_format_mosquitto);
	assert_true(wrapped);
	assert_ptr_equal(detect1("2024-01-10T10:11:12.123456789Z 2024-01-10T10:11:12.345678+00:00 [info] msg: "
				 "listener_started, bind: 0.0.0.0:1883",
				 &wrapped),
			 &why_format_emqx);
	assert_true(wrapped);
	assert_ptr_equal(detect1("rabbit-1  | 2026-11-24 04:16:50.329850+00:00 [info] <0.699.0> closing MQTT "
				 "connection <0.699.0> (127.0.0.1:55292 -> 127.0.0.1:49585)",
				 &wrapped),
			 &why_format_rabbitmq);
	assert_true(wrapped);
	assert_ptr_equal(detect1("Nov 23 20:12:16 host mosquitto[812]: New connection from 127.0.0.1:33396 on "
				 "port 1883.",
				 &wrapped),
			 &why_format_mosquitto);
	assert_true(wrapped);
	/* a forced reader is the only one tried */
	struct why_text l = { hive, strlen(hive) };
	char scratch[256];
	assert_ptr_equal(why_format_detect(&l, 1, &why_format_amps, &nov2026, scratch, sizeof scratch, &wrapped),
			 &why_format_amps);
}

/* unwrap(<in>) is <want> ("" : nothing to take off). */
static void check_unwrap(const char *in, const struct why_unwrap_ref *ref, const char *want)
{
	char out[512];
	size_t k = why_unwrap(in, strlen(in), ref, out, sizeof out);
	out[k] = 0;
	assert_string_equal(out, want);
}

static void test_unwrap(void **st)
{
	(void)st;
	/* docker compose, with and without colours; compose v1's underscore names */
	check_unwrap("mosquitto-1  | 1700000000: New client connected from 10.0.0.2:5 as a (p2, c1, k60).", &nov2026,
		     "1700000000: New client connected from 10.0.0.2:5 as a (p2, c1, k60).");
	check_unwrap("\x1b[36mmosquitto-1  | \x1b[0m1700000000: Client a disconnected.", &nov2026,
		     "1700000000: Client a disconnected.");
	check_unwrap("broker_1 | 2024-01-10 10:11:12,118 - Client ID: a, IP: 10.0.0.2 disconnected gracefully.",
		     &nov2026, "2024-01-10 10:11:12,118 - Client ID: a, IP: 10.0.0.2 disconnected gracefully.");
	check_unwrap("emqx-1  | 2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate", &nov2026,
		     "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1, msg: terminate");
	/* docker logs -t: the broker's own time is kept; without one, the collector's in mosquitto's shape */
	check_unwrap("2026-11-23T20:12:16.123456789Z 1700000000: Client a disconnected.", &nov2026,
		     "1700000000: Client a disconnected.");
	check_unwrap("2026-11-23T20:12:16.123456789Z Client a disconnected.", &nov2026,
		     "2026-11-23T20:12:16.123456789Z: Client a disconnected.");
	check_unwrap("mqtt-1  | 2026-11-23T20:12:16.123456789Z Client a disconnected.", &nov2026,
		     "2026-11-23T20:12:16.123456789Z: Client a disconnected.");
	/* syslog: the traditional stamp is dated by the file; a month after the file's is last year's */
	check_unwrap("Nov 23 20:12:16 host mosquitto[812]: Client a disconnected.", &nov2026,
		     "2026-11-23T20:12:16: Client a disconnected.");
	check_unwrap("Nov  3 20:12:16 host mosquitto[812]: Client a disconnected.", &nov2026,
		     "2026-11-03T20:12:16: Client a disconnected.");
	const struct why_unwrap_ref jan2027 = { 2027, 1 };
	check_unwrap("Dec 31 23:59:59.250 host mosquitto: Client a disconnected.", &jan2027,
		     "2026-12-31T23:59:59.250: Client a disconnected.");
	check_unwrap("2026-11-23T20:12:16+01:00 host mosquitto[812]: Client a disconnected.", &nov2026,
		     "2026-11-23T20:12:16+01:00: Client a disconnected.");
	check_unwrap("Nov 23 20:12:16 host rabbitmq-server[9]: 2026-11-23 20:12:16.5+00:00 [info] <0.1.0> x", &nov2026,
		     "2026-11-23 20:12:16.5+00:00 [info] <0.1.0> x");
	/* EMQX's own "Z" stamp (time_offset utc) then its level: the broker's line, not a collector's */
	check_unwrap("emqx-1  | 2026-11-24T05:34:10.671852Z [info] clientid: c1, msg: terminate", &nov2026,
		     "2026-11-24T05:34:10.671852Z [info] clientid: c1, msg: terminate");
	/* JSON lines: docker's json-file log, the journal's export */
	check_unwrap("{\"log\":\"1700000000: Client a disconnected.\\n\",\"stream\":\"stderr\",\"time\":\"2023-11-14T22:13:20.1Z\"}",
		     &nov2026, "1700000000: Client a disconnected.");
	check_unwrap("{\"log\":\"Client \\\"a\\\" \\u00e9 disconnected.\\n\",\"time\":\"2023-11-14T22:13:20.1Z\"}", &nov2026,
		     "2023-11-14T22:13:20.1Z: Client \"a\" \xc3\xa9 disconnected.");
	check_unwrap("{\"MESSAGE\":\"Client a disconnected.\",\"__REALTIME_TIMESTAMP\":\"1700000000123456\"}", &nov2026,
		     "2023-11-14T22:13:20.123456Z: Client a disconnected.");
	check_unwrap("{\"note\":\"x \\\"log\\\": y\",\"ts\":1}", &nov2026, ""); /* a key inside a value is not one */
	check_unwrap("{\"log\":\"unterminated", &nov2026, "");
	/* nothing a collector adds */
	check_unwrap("1700000000: Client a disconnected.", &nov2026, "");
	check_unwrap("2026-11-23T20:12:16: Client a disconnected.", &nov2026, "");
	check_unwrap("Nov 99 20:12:16 host x: y", &nov2026, "");
	check_unwrap("", &nov2026, "");
	/* too small an output buffer: nothing, never a write past it */
	char small[8];
	assert_int_equal(why_unwrap("a | b", 5, &nov2026, small, sizeof small), 0);
	/* every prefix of a wrapped line, and random bytes, stay inside their buffers (ASan) */
	const char *json = "{\"log\":\"a\\u00e9\\\"\\n\",\"time\":\"2023-11-14T22:13:20.1Z\",\"MESSAGE\":\"\\u12\"}";
	for (size_t n = 0; n <= strlen(json); n++) {
		char *in = malloc(n ? n : 1), out[256];
		memcpy(in, json, n);
		(void)why_unwrap(in, n, &nov2026, out, sizeof out);
		free(in);
	}
	/* a long fraction is not a stamp that fits: no write past the stamp's buffer */
	check_unwrap("2026-11-23T20:12:16.12345678901234567890123456789012345678901234567890Z x", &nov2026, "");
	const char *full = "\x1b[36mmqtt-1  | \x1b[0mNov 23 20:12:16.123 host mosquitto[812]: 2026-11-23T20:12:16Z x";
	for (size_t n = 0; n <= strlen(full); n++) {
		char *in = malloc(n ? n : 1), out[256];
		memcpy(in, full, n);
		(void)why_unwrap(in, n, &nov2026, out, sizeof out);
		free(in);
	}
	unsigned seed = 7;
	for (int i = 0; i < 20000; i++) {
		char in[40], out[40 + WHY_UNWRAP_EXTRA];
		size_t n = (size_t)(i % 40);
		for (size_t j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			static const char alphabet[] = " |:[]0123456789NovDec-T.Zhost\x1b";
			in[j] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		size_t k = why_unwrap(in, n, &nov2026, out, sizeof out);
		assert_true(k <= sizeof out);
	}
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
		"2026-11-24 04:19:40.415427+00:00 [info] <0.1054.0> accepting MQTT connection <0.1054.0> (127.0.0.1:35586 -> 127.0.0.1:50243, client id: rmq-kicked)",
		"2026-11-24 04:16:59.014784+00:00 [error] <0.846.0> closing MQTT connection \"127.0.0.1:55324 -> 127.0.0.1:49585\" (keepalive timeout)",
		"2026-11-24 04:17:00.554463+00:00 [warning] <0.880.0> MQTT disconnecting client <<\"127.0.0.1:35766 -> 127.0.0.1:49585\">> with duplicate id 'rmq-twin'",
		"2026-11-24 04:17:26.040216+00:00 [error] <0.1051.0> MQTT cannot parse a frame on connection '127.0.0.1:59634 -> 127.0.0.1:49585', unparseable payload",
		"2026-11-24 04:17:00.554463+00:00 [error] <0.880.0> Rejected MQTT connection 127.0.0.1:35766 -> 127.0.0.1:1883 with Connect Reason Code 134",
		/* quoted names cut before what follows them: the id is not read past the line */
		"2024-01-15 10:00:11.000000+00:00 [info] <0.1250.0> Accepted MQTT connection <<\"10.0.0.9:5000 -> 10.0.0.1:1883\">> for client ID c9",
		"2026-11-24 04:19:40.415427+00:00 [info] <0.778.0> accepting MQTT connection <0.778.0> (<<\"127.0.0.1:42016 -> 127.0.0.1:50243\">>, client id: x)",
		"2026-11-24T05:42:15: Client a disconnected, b disconnected, session taken over.",
		"2026-11-24T05:42:15: Client a [b] c [127.0.0.1:7] disconnected: not authorised.",
		"{\"log\":\"1700000000: Client a disconnected.\\n\",\"time\":\"2023-11-14T22:13:20.1Z\"}",
	};
	const struct why_format *f[] = { &why_format_mosquitto, &why_format_amps, &why_format_hivemq, &why_format_emqx,
					 &why_format_rabbitmq };
	for (size_t i = 0; i < N_CASES(lines); i++)
		for (size_t k = 0; k < N_CASES(f); k++)
			for (size_t n = 0; n <= strlen(lines[i]); n++) {
				char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
				memcpy(copy, lines[i], n);
				reset();
				f[k]->parse(state_for(f[k]), copy, n, &rec);
				f[k]->looks_like(copy, n);
				free(copy);
			}
}

/* Random bytes through every reader: no crash, no read past the line (ASan build). */
static void test_random_bytes(void **st)
{
	(void)st;
	const struct why_format *f[] = { &why_format_mosquitto, &why_format_amps, &why_format_hivemq, &why_format_emqx,
					 &why_format_rabbitmq };
	/* each reader keeps its own state across the lines, as over a log */
	void *states[N_CASES(f)];
	for (size_t k = 0; k < N_CASES(f); k++)
		assert_non_null(states[k] = calloc(1, f[k]->state_size));
	uint32_t x = 12345;
	static const char alphabet[] = "0123456789-T:., []{}()'client[Client ID: IP:msg: reason: (p5, c1, k2)\t\xff<>\" -> ";
	for (int round = 0; round < 20000; round++) {
		size_t n = round % 200;
		char *line = malloc(n ? n : 1);
		/* half of them start with a valid timestamp, so the readers get past it */
		size_t at = 0;
		static const char rmq[] = "2026-11-24 04:16:59.014784+00:00 [info] <0.846.0> ";
		if (round % 3 == 1 && n >= 21) {
			memcpy(line, "2026-11-23T20:12:16: ", 21);
			at = 21;
		} else if (round % 3 == 2 && n >= sizeof rmq - 1) {
			memcpy(line, rmq, sizeof rmq - 1);
			at = sizeof rmq - 1;
		}
		for (size_t i = at; i < n; i++) {
			x = x * 1103515245u + 12345u;
			line[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
		}
		for (size_t k = 0; k < N_CASES(f); k++) {
			f[k]->parse(states[k], line, n, &rec);
			const char *st0 = states[k], *st1 = st0 + f[k]->state_size;
			if (rec.id.p) /* in the line, or in what the reader kept of earlier lines */
				assert_true((rec.id.p >= line && rec.id.p + rec.id.n <= line + n) ||
					    (rec.id.p >= st0 && rec.id.p + rec.id.n <= st1));
		}
		free(line);
	}
	for (size_t k = 0; k < N_CASES(f); k++)
		free(states[k]);
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
		cmocka_unit_test(test_mosquitto_21),
		cmocka_unit_test(test_mosquitto_notes_shutdown_and_noise),
		cmocka_unit_test(test_amps_seed_lines),
		cmocka_unit_test(test_amps_reason_words),
		cmocka_unit_test(test_hivemq_seed_lines),
		cmocka_unit_test(test_hivemq_ce_reasons),
		cmocka_unit_test(test_hivemq_event_log),
		cmocka_unit_test(test_emqx_lines),
		cmocka_unit_test(test_rabbitmq_lines),
		cmocka_unit_test(test_detection),
		cmocka_unit_test(test_unwrap),
		cmocka_unit_test(test_truncated_lines),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_line_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
