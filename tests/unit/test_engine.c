/* The session engine on a fake clock: each policy in observe and enforce
 * mode, the take-over storm, and the reason settled for every way a session
 * can end. Events are captured from a sink and asserted by name and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/engine_fixture.h"
#include "tests/unit/testutil.h"

static unsigned count_of(enum evt_code code)
{
	unsigned n = 0;
	for (unsigned i = 0; i < n_events; i++)
		n += events[i].code == code;
	return n;
}

/* Feeds one packet given in hex; returns the action. */
static struct eng_action feed(struct session *s, enum proto_dir dir, const char *hex, double t)
{
	size_t n;
	uint8_t *b = tu_hex(hex, &n);
	struct mqtt_codec c;
	mqtt_codec_init(&c);
	c.level = s->level ? s->level : 0;
	struct mqtt_packet p;
	struct proto_diag d;
	struct eng_action act;
	enum proto_err r = mqtt_decode(&c, dir, cursor_make(b, n), &p, &d);
	if (r == PROTO_OK)
		engine_on_packet(eng, s, dir, &p, (uint32_t)n, S(t), &act);
	else
		engine_on_bad_frame(eng, s, dir, &d, b[0] >> 4, n, S(t), &act);
	free(b);
	return act;
}

static void open_session(struct session *s, uint64_t id, const char *ip, double t)
{
	struct eng_action act;
	char client[64];
	snprintf(client, sizeof client, "%s:%u", ip, 40000 + (unsigned)id);
	engine_session_open(eng, s, id, client, ip, "127.0.0.1:1883", S(t), &act);
}

/* CONNECT 3.1.1, client id "sensor-7" (or <id>), keep-alive <ka>, clean. */
static char *connect_hex(const char *id, unsigned ka, bool v5)
{
	static char hex[512];
	size_t idlen = strlen(id);
	unsigned rl = 10 + (v5 ? 1 : 0) + 2 + (unsigned)idlen;
	int k = snprintf(hex, sizeof hex, "10%02x00044d515454%02x02%04x%s%04zx", rl, v5 ? 5 : 4, ka, v5 ? "00" : "", idlen);
	for (size_t i = 0; i < idlen; i++)
		k += snprintf(hex + k, sizeof hex - (size_t)k, "%02x", (unsigned char)id[i]);
	return hex;
}

static void connected(struct session *s, const char *id, unsigned ka, bool v5, double t)
{
	feed(s, PROTO_C2S, connect_hex(id, ka, v5), t);
	feed(s, PROTO_S2C, v5 ? "2003000000" : "20020000", t + 0.001);
	assert_int_equal(s->phase, EVT_PHASE_CONNECTED);
}

/* The usual opening: connection 1 from 10.0.0.1 at t=0, CONNECT and CONNACK. */
static void start(struct session *s, const char *id, unsigned ka, bool v5)
{
	open_session(s, 1, "10.0.0.1", 0);
	connected(s, id, ka, v5, 0);
}

static void test_clean_session_ends_with_client_disconnect(void **state)
{
	(void)state;
	make_engine();
	struct session s;
	open_session(&s, 1, "10.0.0.1", 0);
	connected(&s, "sensor-7", 60, false, 0.1);
	feed(&s, PROTO_C2S, "e000", 5);
	engine_session_close(eng, &s, ENG_CLOSE_BROKER_FIN, S(5.001));
	engine_session_close(eng, &s, ENG_CLOSE_CLIENT_FIN, S(5.002)); /* once only */
	assert_int_equal(count_of(EVT_DISCONNECT), 1);
	const struct seen *d = find(EVT_DISCONNECT, 0);
	assert_int_equal(d->reason, EVT_R_CLIENT_DISCONNECT);
	assert_int_equal(d->closed_by, EVT_BY_CLIENT);
	assert_non_null(find(EVT_CONNECT, 0));
	assert_non_null(find(EVT_CONNACK, 0));
	engine_session_free(&s);
}

static void test_heartbeat_enforce_disconnects_after_factor_times_keepalive_mqtt_3_1_2_24(void **state)
{
	(void)state;
	cfg.policies.heartbeat.mode = WW_MODE_ENFORCE;
	cfg.policies.heartbeat.factor = 1.5;
	make_engine();
	struct session s;
	start(&s, "sensor-7", 10, true);
	struct eng_action act;
	engine_tick(eng, &s, S(14.9), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &s, S(15.1), &act);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_int_equal(act.v5_code, 0x8D);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(15.2));
	const struct seen *d = find(EVT_DISCONNECT, 0);
	assert_int_equal(d->reason, EVT_R_KEEPALIVE_TIMEOUT);
	assert_int_equal(d->closed_by, EVT_BY_PROXY);
	assert_int_equal(d->mode, EVT_MODE_ENFORCE);
	assert_string_equal(d->policy, "heartbeat");
	assert_non_null(find(EVT_HEARTBEAT_MISSED, 0));
	engine_session_free(&s);
}

static void test_heartbeat_observe_reports_would_disconnect_once(void **state)
{
	(void)state;
	cfg.policies.heartbeat.mode = WW_MODE_OBSERVE;
	make_engine();
	struct session s;
	start(&s, "sensor-7", 10, false);
	struct eng_action act;
	engine_tick(eng, &s, S(16), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &s, S(17), &act);
	assert_int_equal(act.flags, 0);
	assert_int_equal(count_of(EVT_WOULD_DISCONNECT), 1);
	assert_int_equal(find(EVT_WOULD_DISCONNECT, 0)->reason, EVT_R_KEEPALIVE_TIMEOUT);
	/* A PINGREQ resets the clock. */
	feed(&s, PROTO_C2S, "c000", 17.5);
	engine_tick(eng, &s, S(18), &act);
	assert_int_equal(count_of(EVT_WOULD_DISCONNECT), 1);
	struct engine_stats st;
	engine_stats(eng, &st);
	assert_int_equal(st.observed[POL_HEARTBEAT], 1);
	assert_int_equal(st.enforced[POL_HEARTBEAT], 0);
	engine_session_free(&s);
}

static void test_broker_close_after_silence_is_inferred_keepalive_timeout(void **state)
{
	(void)state;
	cfg.policies.heartbeat.mode = WW_MODE_OFF;
	make_engine();
	struct session s;
	start(&s, "silent", 2, false);
	engine_session_close(eng, &s, ENG_CLOSE_BROKER_FIN, S(5.1));
	const struct seen *d = find(EVT_DISCONNECT, 0);
	assert_int_equal(d->reason, EVT_R_KEEPALIVE_TIMEOUT);
	assert_int_equal(d->closed_by, EVT_BY_BROKER);
	assert_int_equal(d->conf, EVT_CONF_INFERRED);
	engine_session_free(&s);
}

static void test_broker_close_with_nothing_to_go_on_is_upstream_closed(void **state)
{
	(void)state;
	make_engine();
	struct session s;
	start(&s, "busy", 60, false);
	feed(&s, PROTO_C2S, "c000", 1);
	engine_session_close(eng, &s, ENG_CLOSE_BROKER_FIN, S(2));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_UPSTREAM_CLOSED);
	engine_session_free(&s);
}

static void test_takeover_names_both_and_old_session_ends_taken_over(void **state)
{
	(void)state;
	make_engine();
	struct session a, b;
	open_session(&a, 1, "10.0.0.1", 0);
	connected(&a, "twin", 60, false, 0);
	open_session(&b, 2, "10.0.0.2", 5);
	connected(&b, "twin", 60, false, 5);
	const struct seen *t = find(EVT_SESSION_TAKEN_OVER, 0);
	assert_non_null(t);
	assert_non_null(strstr(t->detail, "10.0.0.2"));
	assert_non_null(strstr(t->detail, "10.0.0.1"));
	engine_session_close(eng, &a, ENG_CLOSE_BROKER_FIN, S(5.01));
	const struct seen *d = find(EVT_DISCONNECT, 0);
	assert_int_equal(d->reason, EVT_R_SESSION_TAKEN_OVER);
	assert_int_equal(d->closed_by, EVT_BY_BROKER);
	engine_session_close(eng, &b, ENG_CLOSE_CLIENT_FIN, S(6));
	assert_int_equal(find(EVT_DISCONNECT, 1)->reason, EVT_R_CLIENT_VANISHED);
	engine_session_free(&a);
	engine_session_free(&b);
}

static void test_takeover_storm_refuses_newest_source_during_cooldown(void **state)
{
	(void)state;
	cfg.policies.takeover.mode = WW_MODE_ENFORCE;
	cfg.policies.takeover.storm_count = 3;
	cfg.policies.takeover.storm_window_ms = 60000;
	cfg.policies.takeover.cooldown_ms = 30000;
	make_engine();
	struct session s[8] = { 0 };
	const char *ip[2] = { "10.0.0.1", "10.0.0.2" };
	open_session(&s[0], 1, ip[0], 0);
	connected(&s[0], "twin", 60, false, 0);
	struct eng_action act = { 0 };
	unsigned i;
	for (i = 1; i < 6; i++) {
		open_session(&s[i], i + 1, ip[i % 2], i);
		act = feed(&s[i], PROTO_C2S, connect_hex("twin", 60, false), i);
		if (act.flags & ENG_REFUSE_CONNACK)
			break;
		feed(&s[i], PROTO_S2C, "20020000", i + 0.001);
		engine_session_close(eng, &s[i - 1], ENG_CLOSE_BROKER_FIN, S(i + 0.002));
	}
	assert_int_equal(i, 3); /* take-overs at 1, 2, 3: the third is the storm */
	assert_int_equal(act.v5_code, 0x9F);
	assert_int_equal(act.v3_code, 2);
	const struct seen *st = find(EVT_TAKEOVER_STORM, 0);
	assert_non_null(st);
	assert_int_equal(st->count, 3);
	/* The same source is refused again during the cooldown ... */
	struct session r;
	open_session(&r, 20, ip[i % 2], 10);
	act = feed(&r, PROTO_C2S, connect_hex("twin", 60, false), 10);
	assert_true(act.flags & ENG_REFUSE_CONNACK);
	engine_session_close(eng, &r, ENG_CLOSE_PROXY, S(10.1));
	const struct seen *d = find(EVT_DISCONNECT, count_of(EVT_DISCONNECT) - 1);
	assert_int_equal(d->reason, EVT_R_TAKEOVER_STORM_REFUSED);
	/* ... and accepted after it. */
	struct session later;
	open_session(&later, 21, ip[i % 2], 45);
	act = feed(&later, PROTO_C2S, connect_hex("twin", 60, false), 45);
	assert_false(act.flags & ENG_REFUSE_CONNACK);
	engine_session_close(eng, &later, ENG_CLOSE_CLIENT_FIN, S(46));
	engine_session_close(eng, &s[i - 1], ENG_CLOSE_CLIENT_FIN, S(46));
	engine_session_close(eng, &s[i], ENG_CLOSE_PROXY, S(46));
	for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
		engine_session_free(&s[k]);
	engine_session_free(&r);
	engine_session_free(&later);
}

static void test_one_source_reconnecting_is_no_storm(void **state)
{
	(void)state;
	cfg.policies.takeover.mode = WW_MODE_ENFORCE;
	cfg.policies.takeover.storm_count = 3;
	cfg.policies.takeover.storm_window_ms = 60000;
	make_engine();
	struct session s[6] = { 0 };
	open_session(&s[0], 1, "10.0.0.1", 0);
	connected(&s[0], "flappy", 60, false, 0);
	for (unsigned i = 1; i < 6; i++) {
		open_session(&s[i], i + 1, "10.0.0.1", i);
		struct eng_action act = feed(&s[i], PROTO_C2S, connect_hex("flappy", 60, false), i);
		assert_false(act.flags & ENG_REFUSE_CONNACK);
		feed(&s[i], PROTO_S2C, "20020000", i + 0.001);
		engine_session_close(eng, &s[i - 1], ENG_CLOSE_BROKER_FIN, S(i + 0.002));
	}
	assert_null(find(EVT_TAKEOVER_STORM, 0));
	engine_session_close(eng, &s[5], ENG_CLOSE_CLIENT_FIN, S(7));
	for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
		engine_session_free(&s[k]);
}

static void test_second_connect_is_protocol_error_mqtt_3_1_0_2(void **state)
{
	(void)state;
	cfg.policies.protocol.mode = WW_MODE_ENFORCE;
	make_engine();
	struct session s;
	start(&s, "c", 60, true);
	struct eng_action act = feed(&s, PROTO_C2S, connect_hex("c", 60, true), 1);
	assert_true(act.flags & ENG_HOLD);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_int_equal(act.v5_code, 0x82);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(1.1));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_PROTOCOL_ERROR_SECOND_CONNECT);
	engine_session_free(&s);
}

static void test_malformed_publish_is_disconnected_with_0x81(void **state)
{
	(void)state;
	cfg.policies.protocol.mode = WW_MODE_ENFORCE;
	make_engine();
	struct session s;
	start(&s, "c", 60, false);
	struct eng_action act = feed(&s, PROTO_C2S, "36050001610001", 1); /* QoS 3 */
	assert_true(act.flags & ENG_DISCONNECT);
	assert_int_equal(act.v5_code, 0x81);
	assert_non_null(find(EVT_MALFORMED_PACKET, 0));
	assert_non_null(strstr(find(EVT_MALFORMED_PACKET, 0)->detail, "publish_qos_3"));
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(1.1));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_MALFORMED_PACKET);
	engine_session_free(&s);
}

static void test_defaults_only_observe_a_malformed_packet(void **state)
{
	(void)state;
	make_engine(); /* every policy starts in shadow mode */
	struct session s;
	start(&s, "c", 60, true);
	struct eng_action act = feed(&s, PROTO_C2S, "36050001610001", 1); /* QoS 3 */
	assert_int_equal(act.flags, 0);
	const struct seen *w = find(EVT_WOULD_DISCONNECT, 0);
	assert_non_null(w);
	assert_int_equal(w->reason, EVT_R_MALFORMED_PACKET);
	assert_string_equal(w->policy, "protocol");
	engine_session_close(eng, &s, ENG_CLOSE_BROKER_FIN, S(1.1));
	/* The broker closed: the client's last packet is why, inferred. */
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_MALFORMED_PACKET);
	assert_int_equal(find(EVT_DISCONNECT, 0)->closed_by, EVT_BY_BROKER);
	engine_session_free(&s);
}

static void test_first_packet_not_connect_is_closed(void **state)
{
	(void)state;
	cfg.policies.protocol.mode = WW_MODE_ENFORCE;
	make_engine();
	struct session s;
	open_session(&s, 1, "10.0.0.1", 0);
	struct eng_action act = feed(&s, PROTO_C2S, "c000", 0.1);
	assert_true(act.flags & ENG_CLOSE);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(0.2));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_FIRST_PACKET_NOT_CONNECT);
	engine_session_free(&s);
}

static void test_receive_maximum_exceeded_mqtt_3_3_4_9(void **state)
{
	(void)state;
	cfg.policies.receive_maximum.mode = WW_MODE_ENFORCE;
	make_engine();
	struct session s;
	open_session(&s, 1, "10.0.0.1", 0);
	feed(&s, PROTO_C2S, connect_hex("eager", 60, true), 0);
	feed(&s, PROTO_S2C, "20060000032100" "02", 0.01); /* Receive Maximum 2 */
	assert_int_equal(s.recv_max_broker, 2);
	struct eng_action act = feed(&s, PROTO_C2S, "3206000161000100", 1);
	assert_int_equal(act.flags, 0);
	act = feed(&s, PROTO_C2S, "3206000161000200", 1);
	assert_int_equal(act.flags, 0);
	feed(&s, PROTO_S2C, "40020001", 1.1); /* PUBACK for 1: one in flight */
	act = feed(&s, PROTO_C2S, "3206000161000300", 1.2);
	assert_int_equal(act.flags, 0);
	act = feed(&s, PROTO_C2S, "3206000161000400", 1.3);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_int_equal(act.v5_code, 0x93);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(1.4));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_RECEIVE_MAXIMUM_EXCEEDED);
	assert_int_equal(find(EVT_DISCONNECT, 0)->wire, 0x93);
	engine_session_free(&s);
}

static void test_slow_client_goes_offline_then_is_cut_after_grace(void **state)
{
	(void)state;
	make_slow_client_engine(WW_MODE_ENFORCE, 5000);
	struct session s;
	start(&s, "slow", 60, true);
	struct eng_action act;
	engine_on_queue(eng, &s, 1500, S(1), &act);
	assert_true(act.flags & ENG_PAUSE_UPSTREAM);
	assert_non_null(find(EVT_SLOW_CONSUMPTION_DETECTED, 0));
	engine_on_queue(eng, &s, 1400, S(2), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &s, S(2.5), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &s, S(3.1), &act); /* still offline after the grace */
	assert_true(act.flags & ENG_CUT_QUEUE);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_int_equal(act.v5_code, 0x97);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(3.2));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_SLOW_CONSUMER);
	engine_session_free(&s);
}

static void test_slow_client_that_catches_up_is_resumed(void **state)
{
	(void)state;
	make_slow_client_engine(WW_MODE_ENFORCE, 5000);
	struct session s;
	start(&s, "slow", 60, true);
	struct eng_action act;
	engine_on_queue(eng, &s, 1500, S(1), &act);
	engine_on_queue(eng, &s, 100, S(1.5), &act);
	assert_true(act.flags & ENG_RESUME_UPSTREAM);
	assert_non_null(find(EVT_SLOW_CONSUMPTION_CLEARED, 0));
	engine_tick(eng, &s, S(10), &act);
	assert_false(act.flags & ENG_DISCONNECT);
	engine_session_close(eng, &s, ENG_CLOSE_CLIENT_FIN, S(11));
	engine_session_free(&s);
}

/* Observe judges by enforce's rule: slow for the grace is a would_disconnect
 * although the queue never reached disconnect_bytes (the proxy does not
 * buffer that far in either mode), and nothing is paused or cut. */
static void test_slow_client_observe_would_disconnect_after_grace_below_disconnect_bytes(void **state)
{
	(void)state;
	make_slow_client_engine(WW_MODE_OBSERVE, 5000);
	struct session s;
	start(&s, "slow", 60, true);
	struct eng_action act;
	engine_on_queue(eng, &s, 1500, S(1), &act);
	assert_int_equal(act.flags, 0);
	assert_non_null(find(EVT_SLOW_CONSUMPTION_DETECTED, 0));
	engine_tick(eng, &s, S(2.9), &act);
	assert_null(find(EVT_WOULD_DISCONNECT, 0));
	engine_tick(eng, &s, S(3.1), &act);
	assert_int_equal(act.flags, 0);
	const struct seen *w = find(EVT_WOULD_DISCONNECT, 0);
	assert_non_null(w);
	assert_int_equal(w->reason, EVT_R_SLOW_CONSUMER);
	engine_session_close(eng, &s, ENG_CLOSE_CLIENT_FIN, S(4));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_CLIENT_VANISHED);
	engine_session_free(&s);
}

/* Caught up within the grace: no would_disconnect. */
static void test_slow_client_observe_caught_up_within_grace_is_not_reported(void **state)
{
	(void)state;
	make_slow_client_engine(WW_MODE_OBSERVE, 5000);
	struct session s;
	start(&s, "slow", 60, true);
	struct eng_action act;
	engine_on_queue(eng, &s, 1500, S(1), &act);
	engine_on_queue(eng, &s, 400, S(2.5), &act);
	assert_non_null(find(EVT_SLOW_CONSUMPTION_CLEARED, 0));
	engine_tick(eng, &s, S(10), &act);
	assert_int_equal(act.flags, 0);
	assert_null(find(EVT_WOULD_DISCONNECT, 0));
	engine_session_close(eng, &s, ENG_CLOSE_CLIENT_FIN, S(11));
	engine_session_free(&s);
}

static void test_access_deny_refuses_with_0x85_or_v3_2(void **state)
{
	(void)state;
	static char *deny[] = { (char *)"test-*" };
	cfg.policies.access.mode = WW_MODE_ENFORCE;
	cfg.policies.access.client_id.deny = deny;
	cfg.policies.access.client_id.n_deny = 1;
	make_engine();
	struct session s;
	open_session(&s, 1, "10.0.0.1", 0);
	struct eng_action act = feed(&s, PROTO_C2S, connect_hex("test-1", 60, false), 0.1);
	assert_true(act.flags & ENG_REFUSE_CONNACK);
	assert_true(act.flags & ENG_HOLD);
	assert_int_equal(act.v5_code, 0x85);
	assert_int_equal(act.v3_code, 2);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(0.2));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_NOT_AUTHORIZED);
	assert_int_equal(find(EVT_DISCONNECT, 0)->wire, 2); /* what the 3.1.1 client was sent */
	cfg.policies.access.client_id.n_deny = 0;
	engine_session_free(&s);
}

static void test_connack_refusal_with_credentials_is_auth_failed(void **state)
{
	(void)state;
	make_engine();
	struct session s;
	open_session(&s, 1, "10.0.0.1", 0);
	/* CONNECT 3.1.1 with user "u" and password "p" (flags 0xc2) */
	feed(&s, PROTO_C2S, "101300044d51545404c2003c000163000175000170", 0);
	feed(&s, PROTO_S2C, "20020005", 0.01);
	assert_non_null(find(EVT_CONNECT_REFUSED, 0));
	engine_session_close(eng, &s, ENG_CLOSE_BROKER_FIN, S(0.02));
	const struct seen *d = find(EVT_DISCONNECT, 0);
	assert_int_equal(d->reason, EVT_R_AUTH_FAILED);
	assert_int_equal(d->conf, EVT_CONF_INFERRED);
	assert_int_equal(d->wire, 5);

	struct session t;
	open_session(&t, 2, "10.0.0.1", 1);
	feed(&t, PROTO_C2S, connect_hex("anon", 60, false), 1);
	feed(&t, PROTO_S2C, "20020005", 1.01);
	engine_session_close(eng, &t, ENG_CLOSE_BROKER_FIN, S(1.02));
	d = find(EVT_DISCONNECT, 1);
	assert_int_equal(d->reason, EVT_R_NOT_AUTHORIZED);
	assert_int_equal(d->conf, EVT_CONF_STATED);
	engine_session_free(&s);
	engine_session_free(&t);
}

static void test_broker_v5_disconnect_reason_is_stated(void **state)
{
	(void)state;
	make_engine();
	struct session s;
	start(&s, "c", 60, true);
	feed(&s, PROTO_S2C, "e0018e", 3);
	engine_session_close(eng, &s, ENG_CLOSE_BROKER_FIN, S(3.01));
	const struct seen *d = find(EVT_DISCONNECT, 0);
	assert_int_equal(d->reason, EVT_R_SESSION_TAKEN_OVER);
	assert_int_equal(d->conf, EVT_CONF_STATED);
	assert_int_equal(d->wire, 0x8E);
	engine_session_free(&s);
}

static void test_connect_timeout_closes_a_silent_socket(void **state)
{
	(void)state;
	cfg.policies.limits.connect_timeout_ms = 10000;
	make_engine();
	struct session s;
	open_session(&s, 1, "10.0.0.1", 0);
	struct eng_action act;
	engine_tick(eng, &s, S(9), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &s, S(10.5), &act);
	assert_true(act.flags & ENG_CLOSE);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(10.6));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_CONNECT_TIMEOUT);
	engine_session_free(&s);
}

static void test_rate_limit_disconnects_with_0x96(void **state)
{
	(void)state;
	cfg.policies.limits.msgs_per_s = 10;
	cfg.policies.limits.mode = WW_MODE_ENFORCE;
	make_engine();
	struct session s;
	start(&s, "chatty", 60, true);
	struct eng_action act = { 0 };
	unsigned i;
	for (i = 0; i < 100 && !(act.flags & ENG_DISCONNECT); i++)
		act = feed(&s, PROTO_C2S, "300400016100", 1 + i * 0.001);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_int_equal(act.v5_code, 0x96);
	assert_true(i > 9 && i < 15);
	engine_session_close(eng, &s, ENG_CLOSE_PROXY, S(2));
	assert_int_equal(find(EVT_DISCONNECT, 0)->reason, EVT_R_RATE_LIMITED);
	cfg.policies.limits.msgs_per_s = 0;
	engine_session_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_session_ends_with_client_disconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_enforce_disconnects_after_factor_times_keepalive_mqtt_3_1_2_24,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_observe_reports_would_disconnect_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broker_close_after_silence_is_inferred_keepalive_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broker_close_with_nothing_to_go_on_is_upstream_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_names_both_and_old_session_ends_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_storm_refuses_newest_source_during_cooldown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_source_reconnecting_is_no_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_connect_is_protocol_error_mqtt_3_1_0_2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_publish_is_disconnected_with_0x81, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_packet_not_connect_is_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults_only_observe_a_malformed_packet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_maximum_exceeded_mqtt_3_3_4_9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_goes_offline_then_is_cut_after_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_that_catches_up_is_resumed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_observe_would_disconnect_after_grace_below_disconnect_bytes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_observe_caught_up_within_grace_is_not_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_deny_refuses_with_0x85_or_v3_2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connack_refusal_with_credentials_is_auth_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broker_v5_disconnect_reason_is_stated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout_closes_a_silent_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_disconnects_with_0x96, setup, teardown),
	};
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
