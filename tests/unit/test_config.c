/* Unit tests for common/config.c: the files in tests/data/config (good ones
 * load with every value and default in place; each bad one is refused with
 * its exact line, column and message, and the output left untouched), the
 * example deploy/wirewarden.yaml, and the value parsers and globs. Run under
 * ASan, these also show that no error path leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "tests/unit/testutil.h"

/* Loads tests/data/config/<file> and checks the error: -1, <line>:<column>,
 * a message holding <part>, the file name in err.file, <out> untouched. */
static void expect_error(const char *file, unsigned line, unsigned column, const char *part)
{
	struct ww_config c, before;
	struct cfg_err e;
	char rel[128];

	snprintf(rel, sizeof rel, "config/%s", file);
	ww_config_defaults(&c);
	c.workers = 77; /* a value no default has */
	before = c;
	assert_int_equal(ww_config_load(tu_data_path(rel), &c, &e), -1);
	if (e.line != line || e.column != column || !strstr(e.msg, part))
		print_message("got %s:%u:%u: %s\n", e.file, e.line, e.column, e.msg);
	assert_int_equal(e.line, line);
	assert_int_equal(e.column, column);
	assert_non_null(strstr(e.msg, part));
	assert_non_null(strstr(e.file, file));
	assert_memory_equal(&c, &before, sizeof c);
}

static void load_ok(const char *rel, struct ww_config *c)
{
	struct cfg_err e;
	int rc = ww_config_load(tu_data_path(rel), c, &e);

	if (rc != 0)
		print_message("%s:%u:%u: %s\n", e.file, e.line, e.column, e.msg);
	assert_int_equal(rc, 0);
}

static void test_defaults_are_the_documented_ones(void **state)
{
	struct ww_config c;
	const struct ww_policies *p = &c.policies;

	(void)state;
	ww_config_defaults(&c);
	assert_int_equal(c.n_listeners, 0);
	assert_null(c.listeners);
	assert_int_equal(c.workers, 0);
	assert_null(c.events_log);
	assert_null(c.events_json);
	assert_int_equal(c.client_buffer_bytes, 1 << 20);
	assert_int_equal(p->heartbeat.mode, WW_MODE_OBSERVE);
	assert_true(p->heartbeat.factor == 1.5);
	assert_int_equal(p->slow_client.mode, WW_MODE_OBSERVE);
	assert_int_equal(p->slow_client.offline_bytes, 8 << 20);
	assert_int_equal(p->slow_client.disconnect_bytes, 32 << 20);
	assert_int_equal(p->slow_client.grace_ms, 30000);
	assert_int_equal(p->takeover.mode, WW_MODE_OBSERVE);
	assert_int_equal(p->takeover.storm_count, 5);
	assert_int_equal(p->takeover.storm_window_ms, 60000);
	assert_int_equal(p->takeover.cooldown_ms, 30000);
	assert_int_equal(p->protocol.mode, WW_MODE_OBSERVE);
	assert_int_equal(p->receive_maximum.mode, WW_MODE_OBSERVE);
	assert_int_equal(p->limits.mode, WW_MODE_OBSERVE);
	assert_int_equal(p->limits.max_packet_size, 0);
	assert_true(p->limits.msgs_per_s == 0 && p->limits.bytes_per_s == 0);
	assert_int_equal(p->limits.max_connections, 0);
	assert_int_equal(p->limits.max_per_ip, 0);
	assert_int_equal(p->limits.connect_timeout_ms, 10000);
	assert_int_equal(p->access.mode, WW_MODE_OFF);
	assert_int_equal(p->access.client_id.n_allow + p->access.client_id.n_deny, 0);
	ww_config_fini(&c); /* safe on defaults */
	ww_config_fini(&c); /* and twice */
}

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(ww_mode_name(WW_MODE_OFF), "off");
	assert_string_equal(ww_mode_name(WW_MODE_OBSERVE), "observe");
	assert_string_equal(ww_mode_name(WW_MODE_ENFORCE), "enforce");
	assert_string_equal(ww_mode_name((enum ww_mode)9), "?");
}

static void test_full_file_sets_every_key(void **state)
{
	struct ww_config c;
	const struct ww_policies *p = &c.policies;

	(void)state;
	load_ok("config/good-full.yaml", &c);
	assert_int_equal(c.n_listeners, 1);
	assert_string_equal(c.listeners[0].name, "main");
	assert_string_equal(c.listeners[0].listen, "0.0.0.0:1883");
	assert_string_equal(c.listeners[0].upstream, "127.0.0.1:1884");
	assert_string_equal(c.listeners[0].protocol, "mqtt");
	assert_int_equal(c.workers, 2);
	assert_string_equal(c.events_log, "/var/log/wirewarden/events.log");
	assert_string_equal(c.events_json, "/var/log/wirewarden/events.jsonl");
	assert_int_equal(c.client_buffer_bytes, 1 << 20);
	assert_true(p->heartbeat.factor == 1.5);
	assert_int_equal(p->slow_client.disconnect_bytes, 32 << 20);
	assert_int_equal(p->slow_client.grace_ms, 30000);
	assert_int_equal(p->takeover.storm_count, 5);
	assert_int_equal(p->takeover.storm_window_ms, 60000);
	assert_int_equal(p->protocol.mode, WW_MODE_ENFORCE);
	assert_int_equal(p->limits.max_packet_size, 1 << 20);
	assert_true(p->limits.msgs_per_s == 1000.0);
	assert_true(p->limits.bytes_per_s == 10.0 * (1 << 20));
	assert_int_equal(p->limits.max_connections, 100000);
	assert_int_equal(p->limits.max_per_ip, 1000);
	assert_int_equal(p->limits.connect_timeout_ms, 10000);
	assert_int_equal(p->access.mode, WW_MODE_ENFORCE);
	assert_int_equal(p->access.client_id.n_allow, 1);
	assert_string_equal(p->access.client_id.allow[0], "sensor-*");
	assert_string_equal(p->access.client_id.deny[0], "test-*");
	assert_int_equal(p->access.username.n_allow, 0);
	assert_string_equal(p->access.username.deny[0], "guest");
	ww_config_fini(&c);
	assert_null(c.listeners); /* fini resets to the defaults */
}

static void test_minimal_file_gets_every_default(void **state)
{
	struct ww_config c, d;

	(void)state;
	load_ok("config/good-minimal.yaml", &c);
	ww_config_defaults(&d);
	assert_int_equal(c.n_listeners, 1);
	assert_string_equal(c.listeners[0].protocol, "mqtt");
	assert_null(c.events_log);
	assert_null(c.events_json);
	assert_int_equal(c.client_buffer_bytes, d.client_buffer_bytes);
	assert_memory_equal(&c.policies, &d.policies, sizeof d.policies);
	ww_config_fini(&c);
}

static void test_deploy_example_loads_cleanly(void **state)
{
	struct ww_config c;

	(void)state;
	load_ok("../../deploy/wirewarden.yaml", &c);
	assert_int_equal(c.n_listeners, 2);
	assert_string_equal(c.listeners[1].listen, "[::]:1883");
	assert_string_equal(c.listeners[1].protocol, "auto");
	assert_string_equal(c.events_log, "-");
	assert_int_equal(c.policies.access.mode, WW_MODE_ENFORCE);
	assert_false(ww_patterns_allow(&c.policies.access.client_id, "test-1", 6));
	assert_true(ww_patterns_allow(&c.policies.access.client_id, "gw-7", 4));
	ww_config_fini(&c);
}

static void test_missing_file_names_the_system_error(void **state)
{
	struct ww_config c;
	struct cfg_err e;

	(void)state;
	ww_config_defaults(&c);
	assert_int_equal(ww_config_load(tu_data_path("config/no-such-file.yaml"), &c, &e), -1);
	assert_int_equal(e.line, 0);
	assert_int_equal(e.column, 0);
	assert_non_null(strstr(e.msg, "No such file"));
}

static void test_yaml_syntax_error_at_libyaml_mark(void **state)
{
	(void)state;
	expect_error("bad-syntax.yaml", 7, 11, "YAML syntax: did not find expected ',' or '}'");
}

static void test_invalid_utf8_at_its_byte(void **state)
{
	(void)state;
	expect_error("bad-utf8.yaml", 6, 17, "YAML syntax: invalid trailing UTF-8 octet");
}

static void test_nul_byte_in_value_refused(void **state)
{
	(void)state;
	expect_error("bad-nul-byte.yaml", 6, 8, "value holds a NUL byte");
}

static void test_alias_refused(void **state)
{
	(void)state;
	expect_error("bad-alias.yaml", 5, 11, "aliases (*n) are not supported");
}

static void test_second_document_refused(void **state)
{
	(void)state;
	expect_error("bad-two-documents.yaml", 5, 1, "only one YAML document is allowed");
}

static void test_unknown_key_lists_valid_keys(void **state)
{
	(void)state;
	expect_error("bad-unknown-key.yaml", 8, 5, "policies.heartbeat.facter: unknown key (valid: mode, factor, amps_factor)");
}

static void test_unknown_top_level_key_at_the_key(void **state)
{
	(void)state;
	expect_error("bad-unknown-top-key.yaml", 5, 1,
		     "listners: unknown key (valid: listeners, workers, events, limits_memory, admin, shutdown, policies)");
}

static void test_duplicate_key_at_second_occurrence(void **state)
{
	(void)state;
	expect_error("bad-duplicate-key.yaml", 7, 3, "events.log: key given twice");
}

static void test_scalar_where_mapping_expected(void **state)
{
	(void)state;
	expect_error("bad-type-mapping.yaml", 6, 14, "policies.heartbeat: expected a mapping (key: value), got a single value");
}

static void test_scalar_where_list_expected(void **state)
{
	(void)state;
	expect_error("bad-type-list.yaml", 1, 12, "listeners: expected a list, got a single value");
}

static void test_top_level_must_be_a_mapping(void **state)
{
	(void)state;
	expect_error("bad-top-level-list.yaml", 1, 1, "top level: expected a mapping (key: value), got a list");
}

static void test_bad_size_names_the_units(void **state)
{
	(void)state;
	expect_error("bad-size.yaml", 7, 20,
		     "policies.slow_client.offline_bytes: \"8 MiBs\" is not a size (use 512, 64KiB, 8MiB, 10MB)");
}

static void test_bad_duration_reads_like_the_documented_example(void **state)
{
	(void)state;
	expect_error("bad-duration.yaml", 14, 15,
		     "policies.slow_client.grace: \"30x\" is not a duration (use 500ms, 30s, 5m)");
}

static void test_bad_mode_lists_the_modes(void **state)
{
	(void)state;
	expect_error("bad-mode.yaml", 6, 21, "policies.protocol.mode: \"enforcing\" is not one of off, observe, enforce");
}

static void test_bad_protocol_lists_the_protocols(void **state)
{
	(void)state;
	expect_error("bad-protocol.yaml", 5, 15, "listeners[0].protocol: \"http\" is not one of mqtt, amps, auto");
}

static void test_bare_ipv6_listen_is_not_host_port(void **state)
{
	(void)state;
	expect_error("bad-hostport.yaml", 6, 13, "listeners[1].listen: \"::1:1883\" is not host:port");
}

static void test_workers_must_be_a_plain_whole_number(void **state)
{
	(void)state;
	expect_error("bad-workers.yaml", 5, 10, "workers: \"010x\" is not a whole number from 0 to 1024");
}

static void test_rate_must_be_a_number(void **state)
{
	(void)state;
	expect_error("bad-rate.yaml", 6, 25, "policies.limits.msgs_per_s: \"fast\" is not a number");
}

static void test_empty_string_refused(void **state)
{
	(void)state;
	expect_error("bad-empty-value.yaml", 6, 9, "events.json: must not be empty");
}

static void test_listener_without_upstream_at_the_listener(void **state)
{
	(void)state;
	expect_error("bad-missing-upstream.yaml", 5, 5,
		     "listeners[1]: missing required key \"upstream\" (required: name, listen, upstream)");
}

static void test_duplicate_listener_name_at_second_name(void **state)
{
	(void)state;
	expect_error("bad-duplicate-name.yaml", 5, 11, "listeners[1].name: \"main\" is already the name of listeners[0]");
}

static void test_empty_listener_list_refused(void **state)
{
	(void)state;
	expect_error("bad-no-listeners.yaml", 2, 12, "listeners: at least one listener is required");
}

static void test_empty_file_has_no_listeners(void **state)
{
	(void)state;
	expect_error("bad-empty.yaml", 1, 1, "listeners: at least one listener is required");
}

static void test_heartbeat_factor_must_be_above_one(void **state)
{
	(void)state;
	expect_error("bad-factor.yaml", 6, 39, "policies.heartbeat.factor: must be above 1");
}

static void test_offline_bytes_above_disconnect_bytes_refused(void **state)
{
	(void)state;
	expect_error("bad-offline-above-disconnect.yaml", 7, 20,
		     "policies.slow_client.offline_bytes: offline_bytes (67108864) must not be above disconnect_bytes (33554432)");
}

static void test_storm_count_below_two_refused(void **state)
{
	(void)state;
	expect_error("bad-storm-count.yaml", 7, 18, "policies.takeover.storm_count: must be at least 2");
}

static void test_max_packet_size_above_mqtt_maximum_refused(void **state)
{
	(void)state;
	expect_error("bad-max-packet-size.yaml", 6, 30, "above the MQTT maximum of 268435455 bytes");
}

static void test_parse_size_table(void **state)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "512", 512 }, { "512B", 512 }, { "64KiB", 65536 }, { "8MiB", 8u << 20 },
		{ "1GiB", 1u << 30 }, { "2TiB", 2ull << 40 }, { "10MB", 10000000 }, { "10 MB", 10000000 },
		{ "3k", 3000 }, { "3KB", 3000 }, { "5G", 5000000000ull }, { "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "MiB", "-1", "+1", "1.5MiB", "10 ", " 10", "10mib", "10 MiBs", "0x10", "1e3",
		"18446744073709551616", "16777216TiB", "8\nMiB",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		v = 1;
		assert_int_equal(ww_parse_size(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = 7;
		if (ww_parse_size(bad[i], &v) != -1)
			print_message("accepted \"%s\"\n", bad[i]);
		assert_int_equal(ww_parse_size(bad[i], &v), -1);
		assert_int_equal(v, 7); /* untouched */
	}
}

static void test_parse_duration_table(void **state)
{
	static const struct { const char *s; uint64_t ms; } good[] = {
		{ "0", 0 }, { "500ms", 500 }, { "30s", 30000 }, { "1.5s", 1500 }, { "5m", 300000 },
		{ "1h", 3600000 }, { "2", 2000 }, { "0.25", 250 }, { "1.001s", 1001 }, { "30 s", 30000 },
		{ "0.5m", 30000 }, { "1.000000000s", 1000 },
	};
	static const char *const bad[] = {
		"", "s", "30x", "-1s", "1.5ms", "1.", ".5s", "1.0001s", "1d", "30S", "1e3", "1.0000000001s",
		"5124095576030432h", "18446744073709551615s",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		v = 1;
		assert_int_equal(ww_parse_duration_ms(good[i].s, &v), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = 7;
		if (ww_parse_duration_ms(bad[i], &v) != -1)
			print_message("accepted \"%s\"\n", bad[i]);
		assert_int_equal(ww_parse_duration_ms(bad[i], &v), -1);
		assert_int_equal(v, 7);
	}
}

static void test_parse_hostport_table(void **state)
{
	static const struct { const char *s, *host; uint16_t port; } good[] = {
		{ "0.0.0.0:1883", "0.0.0.0", 1883 }, { "127.0.0.1:1", "127.0.0.1", 1 },
		{ "broker.example.com:65535", "broker.example.com", 65535 }, { "[::]:1883", "::", 1883 },
		{ "[::1]:8883", "::1", 8883 }, { "[fe80::1%eth0]:1883", "fe80::1%eth0", 1883 },
		{ "[2001:db8::42]:443", "2001:db8::42", 443 },
	};
	static const char *const bad[] = {
		"", "host", ":1883", "host:", "host:0", "host:65536", "host:-1", "host:+1", "host:1883x",
		"::1:1883", "[::1]1883", "[::1:1883", "[]:1883", "[not-v6]:1883", "[::1%]:1883", "ho st:1",
		"host:18 83", "[1.2.3.4]:80",
	};
	char host[64];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		assert_int_equal(ww_parse_hostport(good[i].s, host, sizeof host, &port), 0);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (ww_parse_hostport(bad[i], host, sizeof host, &port) != -1)
			print_message("accepted \"%s\"\n", bad[i]);
		assert_int_equal(ww_parse_hostport(bad[i], host, sizeof host, &port), -1);
	}
	assert_int_equal(ww_parse_hostport("abcdefgh:1", host, 9, &port), 0);  /* 8 bytes + NUL fit */
	assert_int_equal(ww_parse_hostport("abcdefghi:1", host, 9, &port), -1); /* 9 do not */
}

static void test_patterns_deny_wins_over_allow(void **state)
{
	char *allow[] = { "sensor-*" }, *deny[] = { "sensor-test*" };
	struct ww_patterns p = { allow, 1, deny, 1 };

	(void)state;
	assert_true(ww_patterns_allow(&p, "sensor-1", 8));
	assert_false(ww_patterns_allow(&p, "sensor-test1", 12));
	assert_false(ww_patterns_allow(&p, "gateway", 7));
}

static void test_patterns_empty_allow_allows_all_but_deny(void **state)
{
	char *deny[] = { "guest" };
	struct ww_patterns none = { NULL, 0, NULL, 0 }, p = { NULL, 0, deny, 1 };

	(void)state;
	assert_true(ww_patterns_allow(&none, "anything", 8));
	assert_true(ww_patterns_allow(&none, "", 0));
	assert_true(ww_patterns_allow(&p, "guests", 6));
	assert_false(ww_patterns_allow(&p, "guest", 5));
}

static void test_patterns_match_nul_bytes_as_bytes(void **state)
{
	char *allow[] = { "sensor-*" }, *deny[] = { "*evil*" };
	struct ww_patterns p = { allow, 1, deny, 1 };

	(void)state;
	/* a NUL must not end the id early: "sensor-1" then "\0evil" is still denied */
	assert_false(ww_patterns_allow(&p, "sensor-1\0evil", 13));
	assert_true(ww_patterns_allow(&p, "sensor-1\0ok", 11));
	/* and an allow glob must cover the bytes after it */
	char *exact[] = { "sensor-1" };
	struct ww_patterns q = { exact, 1, NULL, 0 };
	assert_false(ww_patterns_allow(&q, "sensor-1\0x", 10));
	assert_true(ww_patterns_allow(&q, "sensor-1", 8));
}

static void test_patterns_match_non_utf8_bytes(void **state)
{
	char *allow[] = { "id-?", "raw-[\x80-\xff]*" }, *deny[] = { "*\xff\xfe*" };
	struct ww_patterns p = { allow, 2, deny, 1 };

	(void)state;
	assert_true(ww_patterns_allow(&p, "id-\xc3", 4));      /* '?' is one byte, not one character */
	assert_false(ww_patterns_allow(&p, "id-\xc3\xa9", 5)); /* two bytes */
	assert_true(ww_patterns_allow(&p, "raw-\x80z", 6));
	assert_false(ww_patterns_allow(&p, "raw-a", 5));
	assert_false(ww_patterns_allow(&p, "raw-\x90\xff\xfe", 7));
}

static void test_patterns_glob_syntax(void **state)
{
	static const struct { const char *pat, *s; bool match; } t[] = {
		{ "a*b", "ab", true }, { "a*b", "axxb", true }, { "a*b", "axxbc", false }, { "*", "", true },
		{ "?", "", false }, { "a?c", "abc", true }, { "[abc]x", "bx", true }, { "[!abc]x", "bx", false },
		{ "[^abc]x", "dx", true }, { "[a-c]", "d", false }, { "[]]", "]", true }, { "[a-]", "-", true },
		{ "\\*", "*", true }, { "\\*", "a", false }, { "[", "[", true }, { "[ab", "[ab", true },
		{ "a/*", "a/b/c", true }, { "*.x", ".x", true }, { "**a", "a", true }, { "a\\", "a\\", true },
		{ "*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		char *allow[] = { (char *)t[i].pat };
		struct ww_patterns p = { allow, 1, NULL, 0 };
		if (ww_patterns_allow(&p, t[i].s, strlen(t[i].s)) != t[i].match)
			print_message("glob \"%s\" on \"%s\"\n", t[i].pat, t[i].s);
		assert_true(ww_patterns_allow(&p, t[i].s, strlen(t[i].s)) == t[i].match);
	}
}

static void test_patterns_long_id_is_fast(void **state)
{
	static char id[65535];
	char *allow[] = { "*a*a*a*a*a*a*a*a*b" };
	struct ww_patterns p = { allow, 1, NULL, 0 };

	(void)state;
	memset(id, 'a', sizeof id); /* O(n * m) with one backtrack point; exponential otherwise */
	assert_false(ww_patterns_allow(&p, id, sizeof id));
}

/* ---- operations: TLS, admin, shutdown (issue 6) ---- */

static void test_ops_keys_load(void **state)
{
	(void)state;
	struct ww_config c;
	load_ok("config/good-ops.yaml", &c);
	const struct ww_listener_cfg *l = &c.listeners[0];
	assert_non_null(l->tls);
	assert_string_equal(l->tls->cert, "/dev/null");
	assert_string_equal(l->tls->client_ca, "/dev/null");
	assert_int_equal(l->tls->client_cert, WW_CLIENT_CERT_OPTIONAL);
	assert_int_equal(l->tls->min_version, WW_TLS_1_3);
	assert_int_equal(l->tls->max_version, WW_TLS_1_3);
	assert_string_equal(l->tls->alpn, "mqtt,x-mqtt");
	assert_int_equal(l->tls->handshake_timeout_ms, 2500);
	assert_int_equal(l->tls->expiry, WW_MODE_OBSERVE);
	assert_null(l->tls->ciphers);
	assert_non_null(l->upstream_tls);
	assert_false(l->upstream_tls->verify);
	assert_string_equal(l->upstream_tls->sni, "broker.example");
	assert_null(l->upstream_tls->cert);
	assert_string_equal(c.admin.listen, "0.0.0.0:9883");
	assert_string_equal(c.admin.token_file, "/dev/null");
	assert_int_equal(c.admin.events_ring, 50);
	assert_int_equal(c.drain_ms, 45000);
	assert_int_equal(c.policies.access.identity.n_allow, 1);
	assert_string_equal(c.policies.access.identity.deny[0], "sensor-revoked");
	ww_config_fini(&c);
}

static void test_ops_defaults(void **state)
{
	(void)state;
	struct ww_config c;
	load_ok("config/good-minimal.yaml", &c);
	assert_null(c.listeners[0].tls);
	assert_null(c.listeners[0].upstream_tls);
	assert_null(c.admin.listen);
	assert_int_equal(c.admin.events_ring, 1000);
	assert_int_equal(c.drain_ms, 0);
	ww_config_fini(&c);
}

static void test_ops_errors(void **state)
{
	(void)state;
	expect_error("bad-tls-no-key.yaml", 6, 7, "listeners[0].tls: missing required key \"key\"");
	expect_error("bad-tls-missing-file.yaml", 6, 13,
		     "listeners[0].tls.cert: cannot read \"/nonexistent/wirewarden/server.crt\": No such file");
	expect_error("bad-tls-client-cert-without-ca.yaml", 5, 58, "listeners[0].tls.client_cert: needs client_ca");
	expect_error("bad-tls-version.yaml", 5, 58, "listeners[0].tls.min_version: \"1.1\" is not one of 1.2, 1.3");
	expect_error("bad-admin-public-without-token.yaml", 4, 11, "admin.listen: \"0.0.0.0:9883\" is not a loopback");
	expect_error("bad-drain.yaml", 4, 10, "shutdown.drain: \"soon\" is not a duration");
	expect_error("bad-upstream-tls-cert-without-key.yaml", 6, 13,
		     "listeners[0].upstream_tls.cert: cert and key go together");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_documented_ones),
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_full_file_sets_every_key),
		cmocka_unit_test(test_minimal_file_gets_every_default),
		cmocka_unit_test(test_deploy_example_loads_cleanly),
		cmocka_unit_test(test_missing_file_names_the_system_error),
		cmocka_unit_test(test_yaml_syntax_error_at_libyaml_mark),
		cmocka_unit_test(test_invalid_utf8_at_its_byte),
		cmocka_unit_test(test_nul_byte_in_value_refused),
		cmocka_unit_test(test_alias_refused),
		cmocka_unit_test(test_second_document_refused),
		cmocka_unit_test(test_unknown_key_lists_valid_keys),
		cmocka_unit_test(test_unknown_top_level_key_at_the_key),
		cmocka_unit_test(test_duplicate_key_at_second_occurrence),
		cmocka_unit_test(test_scalar_where_mapping_expected),
		cmocka_unit_test(test_scalar_where_list_expected),
		cmocka_unit_test(test_top_level_must_be_a_mapping),
		cmocka_unit_test(test_bad_size_names_the_units),
		cmocka_unit_test(test_bad_duration_reads_like_the_documented_example),
		cmocka_unit_test(test_bad_mode_lists_the_modes),
		cmocka_unit_test(test_bad_protocol_lists_the_protocols),
		cmocka_unit_test(test_bare_ipv6_listen_is_not_host_port),
		cmocka_unit_test(test_workers_must_be_a_plain_whole_number),
		cmocka_unit_test(test_rate_must_be_a_number),
		cmocka_unit_test(test_empty_string_refused),
		cmocka_unit_test(test_listener_without_upstream_at_the_listener),
		cmocka_unit_test(test_duplicate_listener_name_at_second_name),
		cmocka_unit_test(test_empty_listener_list_refused),
		cmocka_unit_test(test_empty_file_has_no_listeners),
		cmocka_unit_test(test_heartbeat_factor_must_be_above_one),
		cmocka_unit_test(test_offline_bytes_above_disconnect_bytes_refused),
		cmocka_unit_test(test_storm_count_below_two_refused),
		cmocka_unit_test(test_max_packet_size_above_mqtt_maximum_refused),
		cmocka_unit_test(test_parse_size_table),
		cmocka_unit_test(test_parse_duration_table),
		cmocka_unit_test(test_parse_hostport_table),
		cmocka_unit_test(test_patterns_deny_wins_over_allow),
		cmocka_unit_test(test_patterns_empty_allow_allows_all_but_deny),
		cmocka_unit_test(test_patterns_match_nul_bytes_as_bytes),
		cmocka_unit_test(test_patterns_match_non_utf8_bytes),
		cmocka_unit_test(test_patterns_glob_syntax),
		cmocka_unit_test(test_patterns_long_id_is_fast),
		cmocka_unit_test(test_ops_keys_load),
		cmocka_unit_test(test_ops_defaults),
		cmocka_unit_test(test_ops_errors),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
