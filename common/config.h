/* The YAML configuration of `wirewarden proxy`: the file read into plain
 * structs (no libcyaml or libyaml type leaves config.c and config_yaml.c), with every default
 * filled in and every value checked, plus the value parsers (sizes, durations,
 * host:port) and the client id / user name glob check that the access policy
 * uses. A bad file gives one error, the first, with file:line:column. What the
 * values mean at run time is the business of proxy/ and policy/; the keys are
 * documented in doc/config.md. */
#ifndef WW_COMMON_CONFIG_H
#define WW_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ww_mode { WW_MODE_OFF = 0, WW_MODE_OBSERVE, WW_MODE_ENFORCE };

/* The first error of a load. <msg> is "dotted.path: what is wrong", without
 * the file and position: print it as "%s:%u:%u: %s" (file, line, column, msg).
 * <line>/<column> are 1-based; 0 = unknown (only when the file can't be read). */
struct cfg_err { char file[256]; unsigned line, column; char msg[256]; };   /* line/column 1-based, 0 = unknown */

/* Globs, fnmatch syntax ('*', '?', '[a-z]', '[!x]', '\' escapes), matched
 * byte by byte by ww_patterns_allow(). */
struct ww_patterns { char **allow; unsigned n_allow; char **deny; unsigned n_deny; };

/* TLS toward clients on one listener (server side). <cert> is a PEM chain
 * (leaf first), <key> its private key. <client_ca> set: clients may present a
 * certificate, verified against it; <client_cert> says whether one is
 * required. Versions are TLS 1.2 or 1.3 (ww_tls_version). <ciphers> is the
 * OpenSSL list for TLS 1.2, <ciphersuites> for TLS 1.3; NULL = OpenSSL's
 * defaults. <alpn> is the comma-separated protocol list offered ("mqtt"). */
enum ww_tls_version { WW_TLS_1_2 = 12, WW_TLS_1_3 = 13 };
enum ww_client_cert { WW_CLIENT_CERT_NONE = 0, WW_CLIENT_CERT_OPTIONAL, WW_CLIENT_CERT_REQUIRE };
struct ww_tls_server_cfg {
	char *cert, *key, *client_ca, *ciphers, *ciphersuites, *alpn;
	enum ww_client_cert client_cert;
	enum ww_mode expiry;               /* a client certificate expiring while connected */
	enum ww_tls_version min_version, max_version;
	uint64_t handshake_timeout_ms;
};
/* TLS toward the broker. <ca> NULL = the system's trust store; <verify>
 * false turns verification off (logged at start); <sni> NULL = the
 * upstream's host name when it is a name. <cert>/<key>: a client
 * certificate for the broker, both or neither. */
struct ww_tls_client_cfg { char *ca, *sni, *cert, *key; bool verify; };

/* <protocol> is "mqtt", "amps" or "auto", never NULL after a load. <listen>
 * and <upstream> passed ww_parse_hostport(). <tls> / <upstream_tls> NULL:
 * plain TCP on that side. */
struct ww_listener_cfg {
	char *name, *listen, *upstream; char *protocol;
	struct ww_tls_server_cfg *tls;
	struct ww_tls_client_cfg *upstream_tls;
};

/* The admin HTTP API and metrics: <listen> NULL = off. <token_file> holds the
 * bearer token (first line); NULL = no token asked (allowed only on a
 * loopback address). <events_ring>: recent events kept for GET /events. */
struct ww_admin_cfg { char *listen, *token_file; uint32_t events_ring; };

/* Times are milliseconds, sizes bytes, rates per second; 0 in a limit means
 * unlimited (max_packet_size 0: the MQTT maximum, 268435455). */
struct ww_policies {
	struct { enum ww_mode mode; double factor, amps_factor; } heartbeat;   /* amps_factor: AMPS closes at 2 x */
	struct { enum ww_mode mode; uint64_t offline_bytes, disconnect_bytes; uint64_t grace_ms; } slow_client;
	struct { enum ww_mode mode; uint32_t storm_count; uint64_t storm_window_ms, cooldown_ms; } takeover;
	struct { enum ww_mode mode; } protocol;
	struct { enum ww_mode mode; } receive_maximum;
	struct { enum ww_mode mode; uint64_t max_packet_size; double msgs_per_s, bytes_per_s; uint32_t max_connections, max_per_ip; uint64_t connect_timeout_ms; } limits;
	/* identity: the subject of a verified client certificate (mTLS) */
	struct { enum ww_mode mode; struct ww_patterns client_id, username, identity; } access;
};

/* Owns every string and array in it; release with ww_config_fini().
 * events_log not set means "-" (stderr); events_json not set means no JSON sink. */
struct ww_config {
	struct ww_listener_cfg *listeners; unsigned n_listeners;
	unsigned workers;
	char *events_log, *events_json;     /* NULL = not set */
	uint64_t client_buffer_bytes;
	uint64_t drain_ms;                  /* SIGTERM: how long clients may leave on their own */
	struct ww_admin_cfg admin;
	struct ww_policies policies;
};

/* Fills <c> with the defaults of doc/config.md: no listeners, workers 0 (one per
 * core), no event paths, client_buffer 1 MiB, every policy at its default mode
 * and values. Allocates nothing. */
void ww_config_defaults(struct ww_config *c);

/* Reads the YAML file <path> (at most 1 MiB, one document) into <out>, starting
 * from ww_config_defaults(). 0: <out> is filled and owns its strings. -1: <err>
 * holds the first error (file, line, column, message), nothing is allocated and
 * <out> is untouched. Never prints. */
int ww_config_load(const char *path, struct ww_config *out, struct cfg_err *err);

/* Frees what ww_config_load() allocated and resets <c> to the defaults. Safe on
 * a config from ww_config_defaults() and on one already finished. */
void ww_config_fini(struct ww_config *c);

/* "off", "observe", "enforce"; "?" for a value outside the enum. Static. */
const char *ww_mode_name(enum ww_mode m);

/* A byte count: digits, then optionally spaces and a unit: B; k/K/kB/KB, M/MB,
 * G/GB, T/TB (powers of 1000); KiB, MiB, GiB, TiB (powers of 1024).
 * "512", "64KiB", "10 MB". 0 with *<out> set; -1 on anything else, a sign, a
 * fraction or a value above UINT64_MAX (<out> untouched). */
int ww_parse_size(const char *s, uint64_t *out);

/* A duration in milliseconds: a decimal number, then optionally spaces and a
 * unit: ms, s, m, h; no unit means seconds. "500ms", "30s", "1.5s", "5m", "2".
 * 0 with *<out> set; -1 on anything else, a sign, a result that is not a whole
 * number of milliseconds ("1.5ms") or above UINT64_MAX (<out> untouched). */
int ww_parse_duration_ms(const char *s, uint64_t *out);

/* Splits "host:port" or "[v6addr]:port" (zone allowed: "[fe80::1%eth0]:1883").
 * The host is a name or IPv4 address without ':', or a valid IPv6 address in
 * brackets (copied without them); the port is decimal 1..65535. 0 with <host>
 * NUL-terminated (it must fit in <hostcap>) and *<port> set; -1 otherwise, with
 * <host> and <port> untouched. */
int ww_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port);

/* Whether the id or name <s> (<n> bytes, any bytes: NUL and non-UTF-8 are
 * matched as themselves) passes <p>: false if any deny glob matches; else true
 * if allow is empty or any allow glob matches. '*' and '?' match any byte,
 * '/' and a leading '.' included. Time is O(n * pattern length) per glob. */
bool ww_patterns_allow(const struct ww_patterns *p, const char *s, size_t n);

#endif
