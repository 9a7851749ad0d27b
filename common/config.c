/* The configuration file of `wirewarden proxy` (see config.h, doc/config.md).
 * A load reads the file into memory once, then:
 *   1. walks its libyaml events: syntax errors, aliases, NUL bytes, complex
 *      keys, a second document, deep nesting; each error at libyaml's mark;
 *   2. loads it with libcyaml and the schema below: unknown, duplicate and
 *      missing keys, the shape of each node (mapping, list, value), enums.
 *      libcyaml's result has no position, so its log callback is captured:
 *      the first error line and the backtrace give a dotted path
 *      ("policies.slow_client.grace", "listeners[1]");
 *   3. converts the strings and checks the values and their relations.
 * Step 1, libcyaml's log and the positions are config_yaml.c's: for the
 * errors of 2 and 3 it walks the events again to the node the path names and
 * reports its line and column. Numbers, sizes and durations are loaded as
 * strings and parsed here: libcyaml reads integers with strtoull() in base 0
 * and ignores trailing bytes ("010" is 8, "5x" is 5, "-1" wraps), which is
 * too loose for a configuration. */
#include "common/config.h"
#include "common/config_yaml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#define CFG_MAX_FILE    (1u << 20) /* bytes; a configuration is a few KiB */
#define CFG_MAX_WORKERS 1024u
#define MQTT_MAX_PACKET 268435455u /* MQTT 5.0, 3.1.2.11.4: 2^28 - 1 */
#define COUNT(a)        (sizeof(a) / sizeof((a)[0]))

/* ---- value parsers ---- */

struct unit { const char *name; uint64_t mul; };

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 }, { "k", 1000 }, { "K", 1000 }, { "kB", 1000 }, { "KB", 1000 },
	{ "M", 1000000 }, { "MB", 1000000 }, { "G", 1000000000 }, { "GB", 1000000000 },
	{ "T", 1000000000000 }, { "TB", 1000000000000 },
	{ "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
};
static const struct unit duration_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
};

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads the decimal digits at *<s> into <v> and moves *<s> past them; false
 * when there are none or they exceed UINT64_MAX. *<ndig> gets their count. */
static bool read_u64(const char **s, uint64_t *v, unsigned *ndig)
{
	const char *p = *s;
	uint64_t x = 0;

	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*ndig = (unsigned)(p - *s);
	*s = p;
	*v = x;
	return *ndig > 0;
}

/* The unit named by <s>, the rest of a value: spaces, then a name in <u>.
 * The empty unit takes no spaces ("10 " is refused). NULL if none fits. */
static const struct unit *find_unit(const struct unit *u, size_t n, const char *s)
{
	const char *name = s + strspn(s, " ");

	for (size_t i = 0; i < n; i++)
		if (strcmp(name, u[i].name) == 0 && (u[i].name[0] || name == s))
			return &u[i];
	return NULL;
}

int ww_parse_size(const char *s, uint64_t *out)
{
	const struct unit *u;
	unsigned nd;
	uint64_t v;

	if (!read_u64(&s, &v, &nd) || !(u = find_unit(size_units, COUNT(size_units), s)) || v > UINT64_MAX / u->mul)
		return -1;
	*out = v * u->mul;
	return 0;
}

int ww_parse_duration_ms(const char *s, uint64_t *out)
{
	uint64_t whole, frac = 0, scale = 1, part;
	unsigned nd, nfrac = 0;
	const struct unit *u;

	if (!read_u64(&s, &whole, &nd))
		return -1;
	if (*s == '.' && (++s, !read_u64(&s, &frac, &nfrac) || nfrac > 9))
		return -1;
	while (nfrac--)
		scale *= 10;
	if (!(u = find_unit(duration_units, COUNT(duration_units), s)))
		return -1;
	part = frac * u->mul; /* < 10^9 * 3.6e6: no overflow */
	if (part % scale != 0 || whole > (UINT64_MAX - part / scale) / u->mul)
		return -1; /* not a whole number of ms ("1.5ms"), or too large */
	*out = whole * u->mul + part / scale;
	return 0;
}

static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._";

/* A host name or IPv4 address: 1..253 bytes of letters, digits, '-', '.', '_'. */
static bool valid_hostname(const char *h, size_t n)
{
	size_t ok = 0;

	while (ok < n && h[ok] && strchr(name_chars, h[ok]))
		ok++;
	return n > 0 && n <= 253 && ok == n;
}

/* An IPv6 address that inet_pton() accepts, with an optional "%zone". */
static bool valid_ipv6(const char *h, size_t n)
{
	const char *zone = memchr(h, '%', n);
	size_t alen = zone ? (size_t)(zone - h) : n;
	struct in6_addr a6;
	char addr[64];

	if (alen >= sizeof addr || (zone && !valid_hostname(zone + 1, n - alen - 1)))
		return false;
	memcpy(addr, h, alen);
	addr[alen] = '\0';
	return inet_pton(AF_INET6, addr, &a6) == 1;
}

int ww_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *h = s, *p = strchr(s, ':');
	size_t hl = p ? (size_t)(p - s) : 0;
	unsigned nd;
	uint64_t v;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || !valid_ipv6(s + 1, (size_t)(close - s - 1)))
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		p = close + 1;
	} else if (!p || strchr(p + 1, ':') || !valid_hostname(s, hl)) {
		return -1; /* no port, or an IPv6 address without its brackets */
	}
	p++;
	if (!read_u64(&p, &v, &nd) || *p != '\0' || v == 0 || v > 65535 || hl >= hostcap)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)v;
	return 0;
}

/* ---- globs over bytes ---- */

/* Matches the pattern token at <p> (a "[...]" class, a '\' escape or one
 * literal byte; not '*' or '?') against the byte <c>: *<hit> says whether it
 * matched; returns the token's length. An unclosed '[' is a literal '['. */
static size_t glob_token(const char *p, unsigned char c, bool *hit)
{
	size_t i = 1;
	bool neg, in = false;

	if (p[0] == '\\' && p[1] != '\0')
		return *hit = (unsigned char)p[1] == c, 2;
	if (p[0] == '[') {
		neg = p[1] == '!' || p[1] == '^';
		i += neg;
		for (bool first = true; p[i] != '\0' && (p[i] != ']' || first); first = false) {
			i += p[i] == '\\' && p[i + 1] != '\0';
			unsigned char lo = (unsigned char)p[i++], hi = lo;
			if (p[i] == '-' && p[i + 1] != ']' && p[i + 1] != '\0') {
				i += 1 + (p[i + 1] == '\\' && p[i + 2] != '\0');
				hi = (unsigned char)p[i++];
			}
			in = in || (c >= lo && c <= hi);
		}
		if (p[i] == ']')
			return *hit = in != neg, i + 1;
	}
	return *hit = (unsigned char)p[0] == c, 1;
}

/* Whether the glob <pat> matches all of <s> (<n> bytes). Going back to the
 * last '*' is enough for globs: O(n * strlen(pat)), no recursion. */
static bool glob_match(const char *pat, const unsigned char *s, size_t n)
{
	const char *p = pat, *star = NULL;
	size_t i = 0, star_i = 0, len;
	bool hit = true;

	while (i < n) {
		if (*p == '*') {
			star = ++p;
			star_i = i;
			continue;
		}
		len = *p == '?' ? 1 : *p ? glob_token(p, s[i], &hit) : 0;
		if (len && (*p == '?' || hit)) {
			p += len;
			i++;
		} else if (star) {
			p = star;
			i = ++star_i;
		} else {
			return false;
		}
	}
	p += strspn(p, "*");
	return *p == '\0';
}

bool ww_patterns_allow(const struct ww_patterns *p, const char *s, size_t n)
{
	for (unsigned i = 0; i < p->n_deny; i++)
		if (glob_match(p->deny[i], (const unsigned char *)s, n))
			return false;
	for (unsigned i = 0; i < p->n_allow; i++)
		if (glob_match(p->allow[i], (const unsigned char *)s, n))
			return true;
	return p->n_allow == 0;
}

/* ---- the config itself ---- */

const char *ww_mode_name(enum ww_mode m)
{
	switch (m) {
	case WW_MODE_OFF: return "off";
	case WW_MODE_OBSERVE: return "observe";
	case WW_MODE_ENFORCE: return "enforce";
	}
	return "?";
}

/* The defaults of doc/config.md; 0 in a limit is "unlimited". */
static const struct ww_config defaults = {
	.client_buffer_bytes = 1u << 20,
	.admin = { .events_ring = 1000 },
	.policies = {
		.heartbeat = { WW_MODE_OBSERVE, 1.5, 2.0 },
		.slow_client = { WW_MODE_OBSERVE, 8u << 20, 32u << 20, 30000 },
		.takeover = { WW_MODE_OBSERVE, 5, 60000, 30000 },
		/* Every policy starts in shadow mode: out of the box the proxy only
		 * watches, and nothing changes for a client until an operator has
		 * compared would_disconnect counts and switched a policy on. */
		.protocol = { WW_MODE_OBSERVE },
		.receive_maximum = { WW_MODE_OBSERVE },
		.limits = { .mode = WW_MODE_OBSERVE, .connect_timeout_ms = 10000 },
		.access = { .mode = WW_MODE_OFF },
	},
};

void ww_config_defaults(struct ww_config *c)
{
	*c = defaults;
}

static void free_strings(char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void ww_config_fini(struct ww_config *c)
{
	struct ww_patterns *pat[] = { &c->policies.access.client_id, &c->policies.access.username,
				      &c->policies.access.identity };

	for (unsigned i = 0; i < c->n_listeners; i++) {
		struct ww_listener_cfg *l = &c->listeners[i];
		free(l->name);
		free(l->listen);
		free(l->upstream);
		free(l->protocol);
		if (l->tls) {
			free(l->tls->cert);
			free(l->tls->key);
			free(l->tls->client_ca);
			free(l->tls->ciphers);
			free(l->tls->ciphersuites);
			free(l->tls->alpn);
			free(l->tls);
		}
		if (l->upstream_tls) {
			free(l->upstream_tls->ca);
			free(l->upstream_tls->sni);
			free(l->upstream_tls->cert);
			free(l->upstream_tls->key);
			free(l->upstream_tls);
		}
	}
	free(c->listeners);
	free(c->events_log);
	free(c->events_json);
	free(c->admin.listen);
	free(c->admin.token_file);
	for (unsigned i = 0; i < 3; i++) {
		free_strings(pat[i]->allow, pat[i]->n_allow);
		free_strings(pat[i]->deny, pat[i]->n_deny);
	}
	ww_config_defaults(c);
}

/* ---- the schema that libcyaml loads: every scalar is a string ---- */

enum raw_mode { RAW_MODE_UNSET = 0, RAW_MODE_OFF, RAW_MODE_OBSERVE, RAW_MODE_ENFORCE };
enum raw_proto { RAW_PROTO_UNSET = 0, RAW_PROTO_MQTT, RAW_PROTO_AMPS, RAW_PROTO_AUTO };

enum raw_client_cert { RAW_CC_UNSET = 0, RAW_CC_NONE, RAW_CC_OPTIONAL, RAW_CC_REQUIRE };
enum raw_tls_version { RAW_TLSV_UNSET = 0, RAW_TLSV_1_2, RAW_TLSV_1_3 };
enum raw_bool { RAW_BOOL_UNSET = 0, RAW_BOOL_TRUE, RAW_BOOL_FALSE };
struct raw_tls {
	char *cert, *key, *client_ca, *ciphers, *ciphersuites, *handshake_timeout;
	char **alpn; unsigned n_alpn;
	enum raw_client_cert client_cert;
	enum raw_tls_version min_version, max_version;
	enum raw_mode expiry;
};
struct raw_upstream_tls { char *ca, *sni, *cert, *key; enum raw_bool verify; };
struct raw_listener {
	char *name, *listen, *upstream; enum raw_proto protocol;
	struct raw_tls *tls;
	struct raw_upstream_tls *upstream_tls;
};
struct raw_admin { char *listen, *token_file, *events_ring; };
struct raw_shutdown { char *drain; };
struct raw_patterns { char **allow; unsigned n_allow; char **deny; unsigned n_deny; };
struct raw_events { char *log, *json; };
struct raw_memory { char *client_buffer; };
struct raw_heartbeat { enum raw_mode mode; char *factor, *amps_factor; };
struct raw_slow { enum raw_mode mode; char *offline_bytes, *disconnect_bytes, *grace; };
struct raw_takeover { enum raw_mode mode; char *storm_count, *storm_window, *cooldown; };
struct raw_mode_only { enum raw_mode mode; };
struct raw_limits {
	enum raw_mode mode;
	char *max_packet_size, *msgs_per_s, *bytes_per_s, *max_connections, *max_per_ip, *connect_timeout;
};
struct raw_access { enum raw_mode mode; struct raw_patterns client_id, username, identity; };
struct raw_policies {
	struct raw_heartbeat heartbeat;
	struct raw_slow slow_client;
	struct raw_takeover takeover;
	struct raw_mode_only protocol, receive_maximum;
	struct raw_limits limits;
	struct raw_access access;
};
struct raw_root {
	struct raw_listener *listeners; unsigned n_listeners;
	char *workers;
	struct raw_events events;
	struct raw_memory limits_memory;
	struct raw_admin admin;
	struct raw_shutdown shutdown;
	struct raw_policies policies;
};

static const cyaml_strval_t mode_names[] = {
	{ "off", RAW_MODE_OFF }, { "observe", RAW_MODE_OBSERVE }, { "enforce", RAW_MODE_ENFORCE },
};
static const cyaml_strval_t proto_names[] = {
	{ "mqtt", RAW_PROTO_MQTT }, { "amps", RAW_PROTO_AMPS }, { "auto", RAW_PROTO_AUTO },
};
static const cyaml_strval_t client_cert_names[] = {
	{ "none", RAW_CC_NONE }, { "optional", RAW_CC_OPTIONAL }, { "require", RAW_CC_REQUIRE },
};
static const cyaml_strval_t tls_version_names[] = { { "1.2", RAW_TLSV_1_2 }, { "1.3", RAW_TLSV_1_3 } };
static const cyaml_strval_t bool_names[] = { { "true", RAW_BOOL_TRUE }, { "false", RAW_BOOL_FALSE } };

/* All keys are optional but a listener's name, listen and upstream; no string
 * may be empty. An absent mapping loads as zeroes: NULL strings, *_UNSET. */
#define OPT                   CYAML_FLAG_OPTIONAL
#define STR(k, st, max)       CYAML_FIELD_STRING_PTR(#k, OPT, struct st, k, 1, max)
#define NEED(k, st, max)      CYAML_FIELD_STRING_PTR(#k, CYAML_FLAG_POINTER, struct st, k, 1, max)
#define ENUM(k, st, names)    CYAML_FIELD_ENUM(#k, OPT | CYAML_FLAG_STRICT, struct st, k, names, COUNT(names))
#define MAP(k, st, fields)    CYAML_FIELD_MAPPING(#k, OPT, struct st, k, fields)
#define SEQ(k, st, entry, max) \
	CYAML_FIELD_SEQUENCE_COUNT(#k, CYAML_FLAG_POINTER | OPT, struct st, k, n_##k, entry, 0, max)

static const cyaml_schema_value_t alpn_entry = { CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 255) };
static const cyaml_schema_field_t tls_fields[] = {
	STR(cert, raw_tls, 4095), STR(key, raw_tls, 4095), STR(client_ca, raw_tls, 4095),
	ENUM(client_cert, raw_tls, client_cert_names), ENUM(min_version, raw_tls, tls_version_names),
	ENUM(max_version, raw_tls, tls_version_names), STR(ciphers, raw_tls, 4095), STR(ciphersuites, raw_tls, 4095),
	SEQ(alpn, raw_tls, &alpn_entry, 16), STR(handshake_timeout, raw_tls, 64), ENUM(expiry, raw_tls, mode_names),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t upstream_tls_fields[] = {
	STR(ca, raw_upstream_tls, 4095), ENUM(verify, raw_upstream_tls, bool_names), STR(sni, raw_upstream_tls, 253),
	STR(cert, raw_upstream_tls, 4095), STR(key, raw_upstream_tls, 4095), CYAML_FIELD_END
};
static const cyaml_schema_field_t listener_fields[] = {
	NEED(name, raw_listener, 64), NEED(listen, raw_listener, 300), NEED(upstream, raw_listener, 300),
	ENUM(protocol, raw_listener, proto_names),
	CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_POINTER | OPT, struct raw_listener, tls, tls_fields),
	CYAML_FIELD_MAPPING_PTR("upstream_tls", CYAML_FLAG_POINTER | OPT, struct raw_listener, upstream_tls,
				upstream_tls_fields),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t listener_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_listener, listener_fields),
};
static const cyaml_schema_value_t glob_entry = { CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 1024) };
static const cyaml_schema_field_t patterns_fields[] = {
	SEQ(allow, raw_patterns, &glob_entry, 4096), SEQ(deny, raw_patterns, &glob_entry, 4096), CYAML_FIELD_END
};
static const cyaml_schema_field_t events_fields[] = {
	STR(log, raw_events, 4095), STR(json, raw_events, 4095), CYAML_FIELD_END
};
static const cyaml_schema_field_t memory_fields[] = { STR(client_buffer, raw_memory, 64), CYAML_FIELD_END };
static const cyaml_schema_field_t admin_fields[] = {
	STR(listen, raw_admin, 300), STR(token_file, raw_admin, 4095), STR(events_ring, raw_admin, 64), CYAML_FIELD_END
};
static const cyaml_schema_field_t shutdown_fields[] = { STR(drain, raw_shutdown, 64), CYAML_FIELD_END };
static const cyaml_schema_field_t heartbeat_fields[] = {
	ENUM(mode, raw_heartbeat, mode_names), STR(factor, raw_heartbeat, 64), STR(amps_factor, raw_heartbeat, 64),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t slow_client_fields[] = {
	ENUM(mode, raw_slow, mode_names), STR(offline_bytes, raw_slow, 64), STR(disconnect_bytes, raw_slow, 64),
	STR(grace, raw_slow, 64), CYAML_FIELD_END
};
static const cyaml_schema_field_t takeover_fields[] = {
	ENUM(mode, raw_takeover, mode_names), STR(storm_count, raw_takeover, 64), STR(storm_window, raw_takeover, 64),
	STR(cooldown, raw_takeover, 64), CYAML_FIELD_END
};
static const cyaml_schema_field_t mode_only_fields[] = { ENUM(mode, raw_mode_only, mode_names), CYAML_FIELD_END };
static const cyaml_schema_field_t limits_fields[] = {
	ENUM(mode, raw_limits, mode_names), STR(max_packet_size, raw_limits, 64), STR(msgs_per_s, raw_limits, 64),
	STR(bytes_per_s, raw_limits, 64), STR(max_connections, raw_limits, 64), STR(max_per_ip, raw_limits, 64),
	STR(connect_timeout, raw_limits, 64), CYAML_FIELD_END
};
static const cyaml_schema_field_t access_fields[] = {
	ENUM(mode, raw_access, mode_names), MAP(client_id, raw_access, patterns_fields),
	MAP(username, raw_access, patterns_fields), MAP(identity, raw_access, patterns_fields), CYAML_FIELD_END
};
static const cyaml_schema_field_t policies_fields[] = {
	MAP(heartbeat, raw_policies, heartbeat_fields), MAP(slow_client, raw_policies, slow_client_fields),
	MAP(takeover, raw_policies, takeover_fields), MAP(protocol, raw_policies, mode_only_fields),
	MAP(receive_maximum, raw_policies, mode_only_fields), MAP(limits, raw_policies, limits_fields),
	MAP(access, raw_policies, access_fields), CYAML_FIELD_END
};
static const cyaml_schema_field_t root_fields[] = {
	SEQ(listeners, raw_root, &listener_entry, 1024), STR(workers, raw_root, 64),
	MAP(events, raw_root, events_fields), MAP(limits_memory, raw_root, memory_fields),
	MAP(admin, raw_root, admin_fields), MAP(shutdown, raw_root, shutdown_fields),
	MAP(policies, raw_root, policies_fields), CYAML_FIELD_END
};
static const cyaml_schema_value_t root_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_root, root_fields),
};
/* ---- strings to values, checks, copies ---- */

enum vkind { V_SIZE, V_DURATION, V_COUNT, V_NUMBER, V_RATE };

/* One scalar: its path (also its place in struct raw_root), its kind, where
 * it goes in struct ww_config (uint64_t, uint32_t or double by kind), and
 * for a count its maximum. */
struct vrow { const char *path; enum vkind kind; size_t from, to; uint32_t max; };
#define VAL(kind, from, to, max) \
	{ #from, kind, offsetof(struct raw_root, from), offsetof(struct ww_config, to), max }

static const struct vrow values[] = {
	VAL(V_COUNT, workers, workers, CFG_MAX_WORKERS),
	VAL(V_SIZE, limits_memory.client_buffer, client_buffer_bytes, 0),
	VAL(V_NUMBER, policies.heartbeat.factor, policies.heartbeat.factor, 0),
	VAL(V_NUMBER, policies.heartbeat.amps_factor, policies.heartbeat.amps_factor, 0),
	VAL(V_SIZE, policies.slow_client.offline_bytes, policies.slow_client.offline_bytes, 0),
	VAL(V_SIZE, policies.slow_client.disconnect_bytes, policies.slow_client.disconnect_bytes, 0),
	VAL(V_DURATION, policies.slow_client.grace, policies.slow_client.grace_ms, 0),
	VAL(V_COUNT, policies.takeover.storm_count, policies.takeover.storm_count, UINT32_MAX),
	VAL(V_DURATION, policies.takeover.storm_window, policies.takeover.storm_window_ms, 0),
	VAL(V_DURATION, policies.takeover.cooldown, policies.takeover.cooldown_ms, 0),
	VAL(V_SIZE, policies.limits.max_packet_size, policies.limits.max_packet_size, 0),
	VAL(V_NUMBER, policies.limits.msgs_per_s, policies.limits.msgs_per_s, 0),
	VAL(V_RATE, policies.limits.bytes_per_s, policies.limits.bytes_per_s, 0),
	VAL(V_COUNT, policies.limits.max_connections, policies.limits.max_connections, UINT32_MAX),
	VAL(V_COUNT, policies.limits.max_per_ip, policies.limits.max_per_ip, UINT32_MAX),
	VAL(V_DURATION, policies.limits.connect_timeout, policies.limits.connect_timeout_ms, 0),
	VAL(V_DURATION, shutdown.drain, drain_ms, 0),
	VAL(V_COUNT, admin.events_ring, admin.events_ring, 1000000),
};

#define MODE_AT(m) { offsetof(struct raw_root, policies.m.mode), offsetof(struct ww_config, policies.m.mode) }
static const size_t modes[][2] = {
	MODE_AT(heartbeat), MODE_AT(slow_client), MODE_AT(takeover), MODE_AT(protocol),
	MODE_AT(receive_maximum), MODE_AT(limits), MODE_AT(access),
};

_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "workers is written as a uint32_t");

/* Parses <s> as <r> says into <to>. 0, or -1 with lc->err set. */
static int convert_value(struct loadctx *lc, const struct vrow *r, const char *s, void *to)
{
	static const char *const what[] = {
		[V_SIZE] = "a size (use 512, 64KiB, 8MiB, 10MB)", [V_DURATION] = "a duration (use 500ms, 30s, 5m)",
		[V_NUMBER] = "a number (use 1000 or 2.5)", [V_RATE] = "a number or a size (use 1000 or 10MiB)",
	};
	const char *p = s;
	char *end = (char *)"", q[72];
	unsigned nd;
	uint64_t u;
	double d;

	if (r->kind == V_SIZE)
		return ww_parse_size(s, to) == 0 ? 0
		       : config_fail(lc, r->path, "\"%s\" is not %s", config_quote(s, q), what[r->kind]);
	if (r->kind == V_DURATION)
		return ww_parse_duration_ms(s, to) == 0 ? 0
		       : config_fail(lc, r->path, "\"%s\" is not %s", config_quote(s, q), what[r->kind]);
	if (r->kind == V_COUNT) {
		if (!read_u64(&p, &u, &nd) || *p != '\0' || u > r->max)
			return config_fail(lc, r->path, "\"%s\" is not a whole number from 0 to %lu", config_quote(s, q),
					   (unsigned long)r->max);
		*(uint32_t *)to = (uint32_t)u;
		return 0;
	}
	if (r->kind == V_RATE && ww_parse_size(s, &u) == 0)
		d = (double)u;
	else if (!is_digit(s[0]) || strpbrk(s, "xX") || (d = strtod(s, &end), *end != '\0') || !isfinite(d))
		return config_fail(lc, r->path, "\"%s\" is not %s", config_quote(s, q), what[r->kind]);
	memcpy(to, &d, sizeof d);
	return 0;
}

/* *<out> = a copy of <s>, or nothing if <s> is NULL. */
static int dup(struct loadctx *lc, const char *s, char **out)
{
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : config_oom(lc);
}

static int copy_globs(struct loadctx *lc, char *const *in, unsigned n, char ***out, unsigned *nout)
{
	if (n && !(*out = calloc(n, sizeof **out)))
		return config_oom(lc);
	for (*nout = 0; *nout < n; ++*nout)
		if (dup(lc, in[*nout], &(*out)[*nout]) < 0)
			return -1;
	return 0;
}

/* A file the proxy will read at start and on every reload: checked now, so
 * that a reload with a missing key file is refused with its position. */
static int readable_file(struct loadctx *lc, const char *path, const char *file)
{
	char q[72];
	FILE *fp = fopen(file, "rb");
	if (!fp)
		return config_fail(lc, path, "cannot read \"%s\": %s", config_quote(file, q), strerror(errno));
	fclose(fp);
	return 0;
}

static int convert_tls(struct loadctx *lc, unsigned i, const struct raw_tls *rt, struct ww_listener_cfg *l)
{
	char path[64], q[72];
	struct ww_tls_server_cfg *t = calloc(1, sizeof *t);
	if (!t)
		return config_oom(lc);
	l->tls = t;
	t->min_version = rt->min_version == RAW_TLSV_1_3 ? WW_TLS_1_3 : WW_TLS_1_2;
	t->max_version = rt->max_version == RAW_TLSV_1_2 ? WW_TLS_1_2 : WW_TLS_1_3;
	t->client_cert = rt->client_cert == RAW_CC_OPTIONAL  ? WW_CLIENT_CERT_OPTIONAL
			 : rt->client_cert == RAW_CC_REQUIRE ? WW_CLIENT_CERT_REQUIRE
							     : WW_CLIENT_CERT_NONE;
	t->handshake_timeout_ms = 10000;
	t->expiry = rt->expiry == RAW_MODE_UNSET ? WW_MODE_ENFORCE : (enum ww_mode)(rt->expiry - RAW_MODE_OFF + WW_MODE_OFF);
	const char *need[2] = { rt->cert, rt->key };
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "listeners[%u].tls%s", i, need[k] ? (k ? ".key" : ".cert") : "");
		if (!need[k])
			return config_fail(lc, path, "missing required key \"%s\" (required: cert, key)", k ? "key" : "cert");
		if (readable_file(lc, path, need[k]) < 0)
			return -1;
	}
	if (rt->client_ca) {
		snprintf(path, sizeof path, "listeners[%u].tls.client_ca", i);
		if (readable_file(lc, path, rt->client_ca) < 0)
			return -1;
	} else if (t->client_cert != WW_CLIENT_CERT_NONE) {
		snprintf(path, sizeof path, "listeners[%u].tls.client_cert", i);
		return config_fail(lc, path, "needs client_ca, the CA that client certificates are verified against");
	}
	if (t->min_version > t->max_version) {
		snprintf(path, sizeof path, "listeners[%u].tls.min_version", i);
		return config_fail(lc, path, "above max_version");
	}
	if (rt->handshake_timeout) {
		snprintf(path, sizeof path, "listeners[%u].tls.handshake_timeout", i);
		if (ww_parse_duration_ms(rt->handshake_timeout, &t->handshake_timeout_ms) < 0 || !t->handshake_timeout_ms)
			return config_fail(lc, path, "\"%s\" is not a duration above 0 (use 500ms, 10s)",
					   config_quote(rt->handshake_timeout, q));
	}
	/* ALPN: "mqtt" unless the file lists others; kept comma-separated. */
	size_t n = 0;
	for (unsigned k = 0; k < rt->n_alpn; k++)
		n += strlen(rt->alpn[k]) + 1;
	if (!(t->alpn = malloc(n ? n : 5)))
		return config_oom(lc);
	strcpy(t->alpn, rt->n_alpn ? "" : "mqtt");
	for (unsigned k = 0; k < rt->n_alpn; k++) {
		if (strchr(rt->alpn[k], ',')) {
			snprintf(path, sizeof path, "listeners[%u].tls.alpn[%u]", i, k);
			return config_fail(lc, path, "a protocol name may not contain ','");
		}
		if (k)
			strcat(t->alpn, ",");
		strcat(t->alpn, rt->alpn[k]);
	}
	return dup(lc, rt->cert, &t->cert) < 0 || dup(lc, rt->key, &t->key) < 0 ||
			       dup(lc, rt->client_ca, &t->client_ca) < 0 || dup(lc, rt->ciphers, &t->ciphers) < 0 ||
			       dup(lc, rt->ciphersuites, &t->ciphersuites) < 0
		       ? -1
		       : 0;
}

static int convert_upstream_tls(struct loadctx *lc, unsigned i, const struct raw_upstream_tls *ru,
				struct ww_listener_cfg *l)
{
	char path[64];
	struct ww_tls_client_cfg *t = calloc(1, sizeof *t);
	if (!t)
		return config_oom(lc);
	l->upstream_tls = t;
	t->verify = ru->verify != RAW_BOOL_FALSE;
	if (!ru->cert != !ru->key) {
		snprintf(path, sizeof path, "listeners[%u].upstream_tls.%s", i, ru->cert ? "cert" : "key");
		return config_fail(lc, path, "cert and key go together: give both or neither");
	}
	const char *files[3] = { ru->ca, ru->cert, ru->key };
	static const char *const names[3] = { "ca", "cert", "key" };
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof path, "listeners[%u].upstream_tls.%s", i, names[k]);
		if (files[k] && readable_file(lc, path, files[k]) < 0)
			return -1;
	}
	return dup(lc, ru->ca, &t->ca) < 0 || dup(lc, ru->sni, &t->sni) < 0 || dup(lc, ru->cert, &t->cert) < 0 ||
			       dup(lc, ru->key, &t->key) < 0
		       ? -1
		       : 0;
}

/* The admin API: a host:port; without a token only on a loopback address. */
static int convert_admin(struct loadctx *lc, const struct raw_admin *ra, struct ww_config *c)
{
	char host[256], q[72];
	uint16_t port;
	if (ra->token_file && readable_file(lc, "admin.token_file", ra->token_file) < 0)
		return -1;
	if (ra->listen) {
		if (ww_parse_hostport(ra->listen, host, sizeof host, &port) < 0)
			return config_fail(lc, "admin.listen", "\"%s\" is not host:port (use 127.0.0.1:9883)",
					   config_quote(ra->listen, q));
		bool loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
		if (!loopback && !ra->token_file)
			return config_fail(lc, "admin.listen",
					   "\"%s\" is not a loopback address: set admin.token_file too",
					   config_quote(ra->listen, q));
	}
	if (c->admin.events_ring == 0)
		return config_fail(lc, "admin.events_ring", "must be above 0");
	return dup(lc, ra->listen, &c->admin.listen) < 0 || dup(lc, ra->token_file, &c->admin.token_file) < 0 ? -1 : 0;
}

static int convert_listeners(struct loadctx *lc, const struct raw_root *r, struct ww_config *c)
{
	static const char *const proto[] = { "mqtt", "mqtt", "amps", "auto" }; /* by enum raw_proto */
	char path[48], host[256], q[72];
	uint16_t port;

	if (r->n_listeners == 0)
		return config_fail(lc, "listeners", "at least one listener is required");
	if (!(c->listeners = calloc(r->n_listeners, sizeof *c->listeners)))
		return config_oom(lc);
	for (unsigned i = 0; i < r->n_listeners; i++) {
		const struct raw_listener *rl = &r->listeners[i];
		struct ww_listener_cfg *l = &c->listeners[c->n_listeners++];
		for (unsigned j = 0; j < i; j++) {
			snprintf(path, sizeof path, "listeners[%u].name", i);
			if (strcmp(r->listeners[j].name, rl->name) == 0)
				return config_fail(lc, path, "\"%s\" is already the name of listeners[%u]",
						   config_quote(rl->name, q), j);
		}
		for (int k = 0; k < 2; k++) {
			const char *hp = k ? rl->upstream : rl->listen;
			snprintf(path, sizeof path, "listeners[%u].%s", i, k ? "upstream" : "listen");
			if (ww_parse_hostport(hp, host, sizeof host, &port) < 0)
				return config_fail(lc, path, "\"%s\" is not host:port (use 127.0.0.1:1883 or [::1]:1883)",
						   config_quote(hp, q));
		}
		if (dup(lc, rl->name, &l->name) < 0 || dup(lc, rl->listen, &l->listen) < 0 ||
		    dup(lc, rl->upstream, &l->upstream) < 0 || dup(lc, proto[rl->protocol], &l->protocol) < 0)
			return -1;
		if (rl->tls && convert_tls(lc, i, rl->tls, l) < 0)
			return -1;
		if (rl->upstream_tls && convert_upstream_tls(lc, i, rl->upstream_tls, l) < 0)
			return -1;
	}
	return 0;
}

/* Fills <c> (defaults on entry) from <r>; 0, or -1 with lc->err set and
 * <c> holding what was copied so far, for ww_config_fini(). */
static int convert(struct loadctx *lc, const struct raw_root *r, struct ww_config *c)
{
	struct ww_policies *p = &c->policies;
	const struct raw_patterns *rp[3] = { &r->policies.access.client_id, &r->policies.access.username,
					     &r->policies.access.identity };
	struct ww_patterns *cp[3] = { &p->access.client_id, &p->access.username, &p->access.identity };

	if (convert_listeners(lc, r, c) < 0)
		return -1;
	for (size_t i = 0; i < COUNT(values); i++) {
		const char *s = *(char *const *)(const void *)((const char *)r + values[i].from);
		if (s && convert_value(lc, &values[i], s, (char *)c + values[i].to) < 0)
			return -1;
	}
	for (size_t i = 0; i < COUNT(modes); i++) {
		enum raw_mode m = *(const enum raw_mode *)(const void *)((const char *)r + modes[i][0]);
		if (m != RAW_MODE_UNSET)
			*(enum ww_mode *)(void *)((char *)c + modes[i][1]) = (enum ww_mode)(m - RAW_MODE_OFF + WW_MODE_OFF);
	}
	if (c->client_buffer_bytes == 0)
		return config_fail(lc, "limits_memory.client_buffer", "must be above 0");
	if (!(p->heartbeat.factor > 1.0 && p->heartbeat.factor <= 100.0))
		return config_fail(lc, "policies.heartbeat.factor",
				   "must be above 1 and at most 100 (1.5 is the MQTT rule)");
	if (!(p->heartbeat.amps_factor > 1.0 && p->heartbeat.amps_factor <= 100.0))
		return config_fail(lc, "policies.heartbeat.amps_factor",
				   "must be above 1 and at most 100 (AMPS closes after 2 x the heartbeat)");
	if (p->slow_client.offline_bytes > p->slow_client.disconnect_bytes)
		return config_fail(lc, r->policies.slow_client.offline_bytes ? "policies.slow_client.offline_bytes"
									      : "policies.slow_client.disconnect_bytes",
				   "offline_bytes (%llu) must not be above disconnect_bytes (%llu)",
				   (unsigned long long)p->slow_client.offline_bytes,
				   (unsigned long long)p->slow_client.disconnect_bytes);
	if (p->takeover.storm_count < 2)
		return config_fail(lc, "policies.takeover.storm_count",
				   "must be at least 2 (one take-over is not a storm)");
	if (p->takeover.storm_window_ms == 0)
		return config_fail(lc, "policies.takeover.storm_window", "must be above 0");
	if (p->limits.max_packet_size > MQTT_MAX_PACKET)
		return config_fail(lc, "policies.limits.max_packet_size", "above the MQTT maximum of %u bytes",
				   MQTT_MAX_PACKET);
	if (convert_admin(lc, &r->admin, c) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (copy_globs(lc, rp[i]->allow, rp[i]->n_allow, &cp[i]->allow, &cp[i]->n_allow) < 0 ||
		    copy_globs(lc, rp[i]->deny, rp[i]->n_deny, &cp[i]->deny, &cp[i]->n_deny) < 0)
			return -1;
	return dup(lc, r->events.log, &c->events_log) < 0 || dup(lc, r->events.json, &c->events_json) < 0 ? -1 : 0;
}

/* ---- loading ---- */

/* Reads <path> into a NUL-terminated buffer of at most CFG_MAX_FILE bytes. */
static int read_file(const char *path, char **out, size_t *len, struct cfg_err *err)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	int e;

	if (!fp) {
		snprintf(err->msg, sizeof err->msg, "cannot open: %s", strerror(errno));
		return -1;
	}
	if ((buf = malloc(CFG_MAX_FILE + 1)))
		n = fread(buf, 1, CFG_MAX_FILE + 1, fp);
	e = ferror(fp) ? errno : 0;
	fclose(fp);
	if (!buf || e || n > CFG_MAX_FILE) {
		snprintf(err->msg, sizeof err->msg, "%s%s", !buf ? "out of memory" : e ? "cannot read: " : "larger than 1 MiB",
			 e ? strerror(e) : "");
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int ww_config_load(const char *path, struct ww_config *out, struct cfg_err *err)
{
	static const struct raw_root empty;
	cyaml_config_t cy = { .log_fn = config_cy_log_fn, .mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR,
			      .flags = CYAML_CFG_NO_ALIAS };
	struct loadctx lc = { .err = err };
	struct raw_root *raw = NULL;
	struct ww_config c;
	struct cy_log cl;
	cyaml_err_t e;
	char *buf;
	int rc = -1;

	memset(err, 0, sizeof *err);
	snprintf(err->file, sizeof err->file, "%s", path);
	if (read_file(path, &buf, &lc.len, err) < 0)
		return -1;
	lc.buf = buf;
	ww_config_defaults(&c);
	if (config_yaml_check(buf, lc.len, err) < 0)
		goto out;
	memset(&cl, 0, sizeof cl);
	cy.log_ctx = &cl;
	e = cyaml_load_data((const uint8_t *)buf, lc.len, &cy, &root_schema, (cyaml_data_t **)&raw, NULL);
	if (e != CYAML_OK) {
		config_cyaml_fail(&lc, e, &cl, &root_schema);
		goto out;
	}
	if (convert(&lc, raw ? raw : &empty, &c) < 0)
		goto out;
	*out = c;
	rc = 0;
out:
	if (rc < 0)
		ww_config_fini(&c);
	if (raw)
		cyaml_free(&cy, &root_schema, raw, 0);
	free(buf);
	return rc;
}
