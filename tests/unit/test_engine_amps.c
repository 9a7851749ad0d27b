/* The session engine on AMPS facts, fake clock: the same policies as MQTT
 * (heartbeat at 2 x the started interval, name in use take-overs and storms,
 * unknown command, access, slow client) and the reasons settled when the
 * server closes without a word, each with its AMPS words (amps_reason). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/engine_fixture.h"

/* One session's codec, so the server's logon ack is recognised. */
struct conn {
	struct session s;
	struct amps_codec codec;
};

static struct eng_action feed(struct conn *c, enum proto_dir dir, const char *payload, double t)
{
	struct amps_header h;
	struct proto_diag d;
	struct eng_action act;
	struct cursor p = cursor_make(payload, strlen(payload));
	enum proto_err r = amps_decode(&c->codec, dir, p, &h, &d);
	if (r == PROTO_OK) {
		struct proto_facts f;
		amps_header_facts(&c->codec, dir, &h, &f);
		engine_on_facts(eng, &c->s, dir, &f, (uint32_t)p.left + 4, S(t), &act);
	} else {
		engine_on_bad_frame(eng, &c->s, dir, &d, 0, p.left + 4, S(t), &act);
	}
	return act;
}

static void open_conn(struct conn *c, uint64_t id, const char *ip, double t)
{
	struct eng_action act;
	char client[64];
	snprintf(client, sizeof client, "%s:%u", ip, 40000 + (unsigned)id);
	amps_codec_init(&c->codec, AMPS_WIRE_AUTO);
	engine_session_open_proto(eng, &c->s, PROTO_ID_AMPS, id, client, ip, "127.0.0.1:9007", S(t), &act);
}

static struct eng_action logon(struct conn *c, const char *name, double t)
{
	char buf[256];
	snprintf(buf, sizeof buf, "{\"c\":\"logon\",\"cid\":\"1\",\"client_name\":\"%s\",\"user_id\":\"svc\",\"a\":\"processed\"}",
		 name);
	return feed(c, PROTO_C2S, buf, t);
}

static void logged_on(struct conn *c, uint64_t id, const char *name, double t)
{
	open_conn(c, id, "127.0.0.1", t);
	struct eng_action act = logon(c, name, t);
	assert_int_equal(act.flags, 0);
	feed(c, PROTO_S2C, "{\"c\":\"ack\",\"cid\":\"1\",\"a\":\"processed\",\"status\":\"success\"}", t + 0.01);
}

static void test_events_say_amps(void **state)
{
	(void)state;
	make_engine();
	struct conn c;
	logged_on(&c, 1, "orders-7", 0);
	const struct seen *e = find(EVT_CONNECT, 0);
	assert_non_null(e);
	assert_string_equal(e->protocol, "amps");
	assert_non_null(find(EVT_CONNACK, 0));
	engine_session_close(eng, &c.s, ENG_CLOSE_CLIENT_FIN, S(3));
	e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_CLIENT_VANISHED);
	assert_string_equal(e->amps, "connection closed");
	assert_int_equal(e->closed_by, EVT_BY_CLIENT);
	engine_session_free(&c.s);
}

static void test_heartbeat_at_twice_the_started_interval(void **state)
{
	(void)state;
	cfg.policies.heartbeat.mode = WW_MODE_ENFORCE;
	make_engine();
	struct conn c;
	struct eng_action act;
	logged_on(&c, 1, "hb", 0);
	feed(&c, PROTO_C2S, "{\"c\":\"heartbeat\",\"o\":\"start,5\",\"a\":\"received\"}", 1);
	assert_int_equal(c.s.keepalive_s, 5);
	engine_tick(eng, &c.s, S(1 + 9.5), &act); /* 1.9 x: still fine (MQTT would have cut at 1.5 x) */
	assert_int_equal(act.flags, 0);
	feed(&c, PROTO_C2S, "{\"c\":\"heartbeat\",\"o\":\"beat\"}", 10.6);
	engine_tick(eng, &c.s, S(10.6 + 9.9), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &c.s, S(10.6 + 10.1), &act);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_string_equal(act.amps_reason, "heartbeat");
	assert_non_null(find(EVT_HEARTBEAT_MISSED, 0));
	engine_session_close(eng, &c.s, ENG_CLOSE_PROXY, S(21));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_KEEPALIVE_TIMEOUT);
	assert_string_equal(e->amps, "heartbeat");
	assert_int_equal(e->closed_by, EVT_BY_PROXY);
	engine_session_free(&c.s);
}

static void test_heartbeat_factor_is_configurable(void **state)
{
	(void)state;
	cfg.policies.heartbeat.mode = WW_MODE_ENFORCE;
	cfg.policies.heartbeat.amps_factor = 3.0;
	make_engine();
	struct conn c;
	struct eng_action act;
	logged_on(&c, 1, "hb", 0);
	feed(&c, PROTO_C2S, "{\"c\":\"heartbeat\",\"o\":\"start,2\"}", 0);
	engine_tick(eng, &c.s, S(5.9), &act);
	assert_int_equal(act.flags, 0);
	engine_tick(eng, &c.s, S(6.1), &act);
	assert_true(act.flags & ENG_DISCONNECT);
	engine_session_free(&c.s);
}

static void test_server_close_after_silence_is_heartbeat(void **state)
{
	(void)state;
	make_engine();
	struct conn c;
	logged_on(&c, 1, "quiet", 0);
	feed(&c, PROTO_C2S, "{\"c\":\"heartbeat\",\"o\":\"start,3\"}", 0.1);
	engine_session_close(eng, &c.s, ENG_CLOSE_BROKER_FIN, S(6.2));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_KEEPALIVE_TIMEOUT);
	assert_int_equal(e->closed_by, EVT_BY_BROKER);
	assert_int_equal(e->conf, EVT_CONF_INFERRED);
	assert_string_equal(e->amps, "heartbeat");
	assert_non_null(strstr(e->evidence, "server closed after 2 x heartbeat of client silence"));
	engine_session_free(&c.s);
}

static void test_server_close_before_twice_the_interval_is_not_heartbeat(void **state)
{
	(void)state;
	make_engine();
	struct conn c;
	logged_on(&c, 1, "quiet", 0);
	feed(&c, PROTO_C2S, "{\"c\":\"heartbeat\",\"o\":\"start,3\"}", 0.1);
	engine_session_close(eng, &c.s, ENG_CLOSE_BROKER_FIN, S(4.6)); /* 1.5 x: an MQTT broker's rule, not AMPS's */
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_not_equal(e->reason, EVT_R_KEEPALIVE_TIMEOUT);
	engine_session_free(&c.s);
}

static void test_name_in_use_takeover(void **state)
{
	(void)state;
	make_engine();
	struct conn a, b;
	logged_on(&a, 1, "twin", 0);
	logged_on(&b, 2, "twin", 1);
	assert_non_null(find(EVT_SESSION_TAKEN_OVER, 0));
	engine_session_close(eng, &a.s, ENG_CLOSE_BROKER_FIN, S(1.01));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_SESSION_TAKEN_OVER);
	assert_string_equal(e->amps, "name in use");
	assert_int_equal(e->closed_by, EVT_BY_BROKER);
	assert_non_null(strstr(e->evidence, "closed by server after a logon from another connection with the same client name"));
	engine_session_free(&a.s);
	engine_session_free(&b.s);
}

static void test_refused_second_logon_takes_nothing_over(void **state)
{
	(void)state;
	make_engine();
	struct conn a, b;
	logged_on(&a, 1, "shared", 0);
	open_conn(&b, 2, "127.0.0.1", 1);
	logon(&b, "shared", 1);
	feed(&b, PROTO_S2C, "{\"c\":\"ack\",\"cid\":\"1\",\"status\":\"failure\",\"reason\":\"name in use\"}", 1.01);
	engine_session_close(eng, &b.s, ENG_CLOSE_BROKER_FIN, S(1.02));
	/* later the server closes the first one: not a take-over */
	engine_session_close(eng, &a.s, ENG_CLOSE_BROKER_FIN, S(5));
	const struct seen *e = find(EVT_DISCONNECT, 1);
	assert_int_not_equal(e->reason, EVT_R_SESSION_TAKEN_OVER);
	assert_int_equal(e->reason, EVT_R_UPSTREAM_CLOSED); /* the proxy's engine: the server closed, no more known */
	/* and a third logon later is a take-over of the first again */
	struct conn c, d;
	logged_on(&c, 3, "shared", 6);
	logged_on(&d, 4, "shared", 7);
	engine_session_close(eng, &c.s, ENG_CLOSE_BROKER_FIN, S(7.01));
	assert_int_equal(find(EVT_DISCONNECT, 2)->reason, EVT_R_SESSION_TAKEN_OVER);
	engine_session_close(eng, &d.s, ENG_CLOSE_CLIENT_FIN, S(8));
	engine_session_free(&a.s);
	engine_session_free(&b.s);
	engine_session_free(&c.s);
	engine_session_free(&d.s);
}

static void test_storm_refused_with_name_in_use(void **state)
{
	(void)state;
	cfg.policies.takeover.mode = WW_MODE_ENFORCE;
	cfg.policies.takeover.storm_count = 3;
	make_engine();
	struct conn c[8] = { 0 };
	const char *ips[2] = { "127.0.0.1", "127.0.0.2" };
	struct eng_action act = { 0 };
	unsigned i;
	for (i = 0; i < 8; i++) {
		open_conn(&c[i], i + 1, ips[i % 2], i * 0.5);
		act = logon(&c[i], "storm", i * 0.5);
		if (act.flags & ENG_REFUSE_CONNACK)
			break;
		feed(&c[i], PROTO_S2C, "{\"c\":\"ack\",\"cid\":\"1\",\"status\":\"success\"}", i * 0.5 + 0.01);
	}
	assert_true(i < 8);
	assert_true(act.flags & ENG_REFUSE_CONNACK);
	assert_string_equal(act.amps_reason, "name in use");
	assert_non_null(find(EVT_TAKEOVER_STORM, 0));
	for (size_t k = 0; k < sizeof c / sizeof c[0]; k++)
		engine_session_free(&c[k].s);
}

static void test_unknown_command_closes(void **state)
{
	(void)state;
	cfg.policies.protocol.mode = WW_MODE_ENFORCE;
	make_engine();
	struct conn c;
	logged_on(&c, 1, "odd", 0);
	struct eng_action act = feed(&c, PROTO_C2S, "{\"c\":\"dance\",\"cid\":\"2\"}", 1);
	assert_true(act.flags & ENG_CLOSE);
	assert_false(act.flags & ENG_REFUSE_CONNACK);
	engine_session_close(eng, &c.s, ENG_CLOSE_PROXY, S(1));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_UNKNOWN_COMMAND);
	assert_string_equal(e->amps, "unknown command");
	assert_non_null(find(EVT_PROTOCOL_VIOLATION, 0));
	engine_session_free(&c.s);
}

static void test_unknown_command_observed_then_server_closes(void **state)
{
	(void)state;
	make_engine(); /* protocol observes by default */
	struct conn c;
	logged_on(&c, 1, "odd", 0);
	struct eng_action act = feed(&c, PROTO_C2S, "{\"c\":\"dance\"}", 1);
	assert_int_equal(act.flags, 0);
	const struct seen *w = find(EVT_WOULD_DISCONNECT, 0);
	assert_non_null(w);
	assert_string_equal(w->amps, "unknown command");
	engine_session_close(eng, &c.s, ENG_CLOSE_BROKER_FIN, S(1.01));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_UNKNOWN_COMMAND);
	assert_int_equal(e->closed_by, EVT_BY_BROKER);
	engine_session_free(&c.s);
}

static void test_first_command_not_logon(void **state)
{
	(void)state;
	cfg.policies.protocol.mode = WW_MODE_ENFORCE;
	make_engine();
	struct conn c;
	open_conn(&c, 1, "127.0.0.1", 0);
	/* a no-op first is fine */
	struct eng_action act;
	struct amps_header h;
	struct proto_diag d;
	struct proto_facts f;
	assert_int_equal(amps_decode(&c.codec, PROTO_C2S, cursor_make(NULL, 0), &h, &d), PROTO_OK);
	amps_header_facts(&c.codec, PROTO_C2S, &h, &f);
	engine_on_facts(eng, &c.s, PROTO_C2S, &f, 4, S(0.1), &act);
	assert_int_equal(act.flags, 0);
	act = feed(&c, PROTO_C2S, "{\"c\":\"publish\",\"t\":\"x\"}", 0.2);
	assert_true(act.flags & ENG_CLOSE);
	assert_int_equal(c.s.decided, EVT_R_FIRST_PACKET_NOT_CONNECT);
	engine_session_free(&c.s);
}

static void expect_refusal(const char *reason, enum evt_reason want, const char *words)
{
	make_engine();
	struct conn c;
	open_conn(&c, 1, "127.0.0.1", 0);
	logon(&c, "r", 0);
	char ack[200];
	snprintf(ack, sizeof ack, "{\"c\":\"ack\",\"cid\":\"1\",\"a\":\"processed\",\"status\":\"failure\",\"reason\":\"%s\"}", reason);
	feed(&c, PROTO_S2C, ack, 0.01);
	const struct seen *r = find(EVT_CONNECT_REFUSED, 0);
	assert_non_null(r);
	assert_int_equal(r->reason, want);
	engine_session_close(eng, &c.s, ENG_CLOSE_BROKER_FIN, S(0.02));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, want);
	assert_int_equal(e->closed_by, EVT_BY_BROKER);
	assert_string_equal(e->amps, words);
	engine_session_free(&c.s);
	engine_free(eng);
	eng = NULL;
}

static void test_logon_failure_acks_are_classified(void **state)
{
	(void)state;
	expect_refusal("auth failure", EVT_R_AUTH_FAILED, "auth failure");
	expect_refusal("authentication failure", EVT_R_AUTH_FAILED, "auth failure");
	expect_refusal("not entitled", EVT_R_NOT_AUTHORIZED, "not entitled");
	expect_refusal("name in use", EVT_R_NAME_IN_USE, "name in use");
	expect_refusal("logon required", EVT_R_UNKNOWN, ""); /* no AMPS words for what the wire cannot tell */
}

static void test_access_deny_refuses_with_not_entitled(void **state)
{
	(void)state;
	cfg.policies.access.mode = WW_MODE_ENFORCE;
	static char deny0[] = "bad-*";
	static char *deny[] = { deny0 };
	cfg.policies.access.client_id.deny = deny;
	cfg.policies.access.client_id.n_deny = 1;
	make_engine();
	struct conn c;
	open_conn(&c, 1, "127.0.0.1", 0);
	struct eng_action act = logon(&c, "bad-client", 0);
	assert_true(act.flags & ENG_REFUSE_CONNACK);
	assert_string_equal(act.amps_reason, "not entitled");
	engine_session_close(eng, &c.s, ENG_CLOSE_PROXY, S(0.1));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_NOT_AUTHORIZED);
	cfg.policies.access.client_id.n_deny = 0;
	cfg.policies.access.client_id.deny = NULL;
	engine_session_free(&c.s);
}

static void test_slow_client_on_amps(void **state)
{
	(void)state;
	make_slow_client_engine(WW_MODE_ENFORCE, 4000);
	struct conn c;
	struct eng_action act;
	logged_on(&c, 1, "sleepy-client", 0);
	engine_on_queue(eng, &c.s, 2000, S(1), &act);
	assert_true(act.flags & ENG_PAUSE_UPSTREAM);
	engine_tick(eng, &c.s, S(3.1), &act);
	assert_true(act.flags & ENG_DISCONNECT);
	assert_string_equal(act.amps_reason, "slow client");
	engine_session_close(eng, &c.s, ENG_CLOSE_PROXY, S(3.2));
	const struct seen *e = find(EVT_DISCONNECT, 0);
	assert_int_equal(e->reason, EVT_R_SLOW_CONSUMER);
	assert_string_equal(e->amps, "slow client");
	engine_session_free(&c.s);
}

static void test_listener_disabled_is_transport_disabled(void **state)
{
	(void)state;
	make_engine();
	struct conn c;
	struct eng_action act;
	logged_on(&c, 1, "x", 0);
	engine_request_close(eng, &c.s, EVT_R_LISTENER_DISABLED, "listener amps disabled", S(1), &act);
	assert_true(act.flags & (ENG_DISCONNECT | ENG_CLOSE));
	assert_string_equal(act.amps_reason, "transport disabled");
	engine_session_close(eng, &c.s, ENG_CLOSE_PROXY, S(1));
	assert_string_equal(find(EVT_DISCONNECT, 0)->amps, "transport disabled");
	engine_session_free(&c.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_events_say_amps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_at_twice_the_started_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_factor_is_configurable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_close_after_silence_is_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_close_before_twice_the_interval_is_not_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_in_use_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_second_logon_takes_nothing_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storm_refused_with_name_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command_observed_then_server_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_command_not_logon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logon_failure_acks_are_classified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_deny_refuses_with_not_entitled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_on_amps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_disabled_is_transport_disabled, setup, teardown),
	};
	return cmocka_run_group_tests_name("engine_amps", tests, NULL, NULL);
}
