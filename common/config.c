/* The configuration file of `wirewarden proxy` (see config.h, doc/config.md).
 * A load reads the file once into memory and makes three passes over it:
 *   1. libyaml events: syntax, aliases, NUL bytes, one document, nesting depth;
 *      errors carry libyaml's own mark.
 *   2. libcyaml with the schema below: unknown and duplicate keys, required
 *      keys, mapping / list / value shapes, enums. libcyaml has no position in
 *      its result, so its log callback is captured: the first error line and
 *      the backtrace give the dotted path, and the position comes from pass 3.
 *   3. On demand, per error: libyaml events again, walked to the node that a
 *      path such as "policies.slow_client.grace" names (yaml_locate()).
 * Numbers, sizes and durations are loaded as strings and converted here:
 * libcyaml's integers go through strtoull() base 0 and ignore trailing bytes
 * ("010" is 8, "5x" is 5, "-1" wraps), too loose for a configuration. */
#include "common/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "common/escape.h"

#define CFG_MAX_FILE     (1u << 20) /* bytes; a configuration is a few KiB */
#define CFG_MAX_DEPTH    32         /* YAML nesting; ours is 4 deep */
#define CFG_MAX_WORKERS  1024u
#define MQTT_MAX_PACKET  268435455u /* MQTT 5.0 section 3.2.2.3.6: 2^28 - 1 */
#define PRINTF(f, a)     __attribute__((format(printf, f, a)))

/* ---- value parsers ---- */

struct unit { const char *name; uint64_t mul; };

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "k", 1000 }, { "K", 1000 }, { "kB", 1000 }, { "KB", 1000 }, { "KiB", 1ull << 10 },
	{ "M", 1000000 }, { "MB", 1000000 }, { "MiB", 1ull << 20 },
	{ "G", 1000000000 }, { "GB", 1000000000 }, { "GiB", 1ull << 30 },
	{ "T", 1000000000000 }, { "TB", 1000000000000 }, { "TiB", 1ull << 40 },
};

static const struct unit duration_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
};

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads the decimal digits at *<s> into <v>, moving *<s> past them; false when
 * there are none or they exceed UINT64_MAX. <ndig> counts them if not NULL. */
static bool read_u64(const char **s, uint64_t *v, unsigned *ndig)
{
	const char *p = *s;
	uint64_t x = 0;

	if (!is_digit(*p))
		return false;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	if (ndig)
		*ndig = (unsigned)(p - *s);
	*s = p;
	*v = x;
	return true;
}

/* The unit that <s> (after the number) names: spaces, then a name from <u>; no
 * spaces before the empty unit, so "10 " is refused. NULL when none fits. */
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
	uint64_t v;
	const struct unit *u;

	if (!read_u64(&s, &v, NULL) || !(u = find_unit(size_units, sizeof size_units / sizeof *size_units, s)))
		return -1;
	if (v > UINT64_MAX / u->mul)
		return -1;
	*out = v * u->mul;
	return 0;
}

int ww_parse_duration_ms(const char *s, uint64_t *out)
{
	uint64_t whole, frac = 0, scale = 1, ms;
	unsigned nfrac = 0;
	const struct unit *u;

	if (!read_u64(&s, &whole, NULL))
		return -1;
	if (*s == '.') {
		s++;
		if (!read_u64(&s, &frac, &nfrac) || nfrac > 9)
			return -1;
		for (unsigned i = 0; i < nfrac; i++)
			scale *= 10;
	}
	if (!(u = find_unit(duration_units, sizeof duration_units / sizeof *duration_units, s)))
		return -1;
	/* frac < 10^9 and mul <= 3.6e6, so frac * mul fits */
	if (whole > UINT64_MAX / u->mul || (frac * u->mul) % scale != 0)
		return -1;
	ms = whole * u->mul;
	if (ms > UINT64_MAX - frac * u->mul / scale)
		return -1;
	*out = ms + frac * u->mul / scale;
	return 0;
}

/* A host name or IPv4 address: letters, digits, '-', '.', '_'; 1..253 bytes. */
static bool valid_hostname(const char *h, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._", h[i]) || !h[i])
			return false;
	return true;
}

/* An IPv6 address as inet_pton() reads it, with an optional "%zone". */
static bool valid_ipv6(const char *h, size_t n)
{
	char addr[64];
	const char *zone = memchr(h, '%', n);
	size_t alen = zone ? (size_t)(zone - h) : n;
	struct in6_addr a6;

	if (alen >= sizeof addr || (zone && !valid_hostname(zone + 1, n - alen - 1)))
		return false;
	memcpy(addr, h, alen);
	addr[alen] = '\0';
	return inet_pton(AF_INET6, addr, &a6) == 1;
}

int ww_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *h = s, *p;
	size_t hl;
	uint64_t v;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		p = close + 2;
		if (!valid_ipv6(h, hl))
			return -1;
	} else {
		const char *colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return -1; /* an IPv6 address needs its brackets */
		hl = (size_t)(colon - s);
		p = colon + 1;
		if (!valid_hostname(h, hl))
			return -1;
	}
	if (!read_u64(&p, &v, NULL) || *p != '\0' || v == 0 || v > 65535 || hl >= hostcap)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)v;
	return 0;
}

/* ---- globs over bytes ---- */

/* Matches the one-byte token at <p> ('[' class, '\' escape or a literal byte;
 * not '*' or '?') against <c>. Returns the token's length in <p>; *<hit> says
 * whether <c> matched. An unclosed '[' is a literal '[', as in fnmatch(). */
static size_t glob_token(const char *p, unsigned char c, bool *hit)
{
	if (p[0] == '\\' && p[1] != '\0') {
		*hit = (unsigned char)p[1] == c;
		return 2;
	}
	if (p[0] == '[') {
		size_t i = 1;
		bool neg = false, in = false;
		if (p[i] == '!' || p[i] == '^') {
			neg = true;
			i++;
		}
		for (bool first = true; p[i] != '\0' && (p[i] != ']' || first); first = false) {
			unsigned char lo, hi;
			if (p[i] == '\\' && p[i + 1] != '\0')
				i++;
			lo = hi = (unsigned char)p[i++];
			if (p[i] == '-' && p[i + 1] != ']' && p[i + 1] != '\0') {
				i++;
				if (p[i] == '\\' && p[i + 1] != '\0')
					i++;
				hi = (unsigned char)p[i++];
			}
			if (c >= lo && c <= hi)
				in = true;
		}
		if (p[i] == ']') {
			*hit = in != neg;
			return i + 1;
		}
	}
	*hit = (unsigned char)p[0] == c;
	return 1;
}

/* Whether the glob <pat> matches all of <s> (<n> bytes). One backtrack point
 * (the last '*') is enough for globs, so this is O(n * strlen(pat)). */
static bool glob_match(const char *pat, const unsigned char *s, size_t n)
{
	const char *p = pat, *star = NULL;
	size_t i = 0, star_i = 0;

	while (i < n) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			star = p;
			star_i = i;
			continue;
		}
		if (*p != '\0') {
			bool hit = true;
			size_t tl = *p == '?' ? 1 : glob_token(p, s[i], &hit);
			if (hit) {
				p += tl;
				i++;
				continue;
			}
		}
		if (!star)
			return false;
		p = star;
		i = ++star_i;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

bool ww_patterns_allow(const struct ww_patterns *p, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (unsigned i = 0; i < p->n_deny; i++)
		if (glob_match(p->deny[i], u, n))
			return false;
	for (unsigned i = 0; i < p->n_allow; i++)
		if (glob_match(p->allow[i], u, n))
			return true;
	return p->n_allow == 0;
}

/* ---- defaults ---- */

const char *ww_mode_name(enum ww_mode m)
{
	switch (m) {
	case WW_MODE_OFF: return "off";
	case WW_MODE_OBSERVE: return "observe";
	case WW_MODE_ENFORCE: return "enforce";
	}
	return "?";
}

void ww_config_defaults(struct ww_config *c)
{
	struct ww_policies *p = &c->policies;

	memset(c, 0, sizeof *c);
	c->client_buffer_bytes = 1u << 20;
	p->heartbeat.mode = WW_MODE_OBSERVE;
	p->heartbeat.factor = 1.5;
	p->slow_client.mode = WW_MODE_OBSERVE;
	p->slow_client.offline_bytes = 8u << 20;
	p->slow_client.disconnect_bytes = 32u << 20;
	p->slow_client.grace_ms = 30000;
	p->takeover.mode = WW_MODE_OBSERVE;
	p->takeover.storm_count = 5;
	p->takeover.storm_window_ms = 60000;
	p->takeover.cooldown_ms = 30000;
	p->protocol.mode = WW_MODE_ENFORCE;
	p->receive_maximum.mode = WW_MODE_OBSERVE;
	p->limits.mode = WW_MODE_ENFORCE;
	p->limits.connect_timeout_ms = 10000;
	p->access.mode = WW_MODE_OFF;
}

static void patterns_fini(struct ww_patterns *p)
{
	for (unsigned i = 0; i < p->n_allow; i++)
		free(p->allow[i]);
	for (unsigned i = 0; i < p->n_deny; i++)
		free(p->deny[i]);
	free(p->allow);
	free(p->deny);
}

void ww_config_fini(struct ww_config *c)
{
	for (unsigned i = 0; i < c->n_listeners; i++) {
		struct ww_listener_cfg *l = &c->listeners[i];
		free(l->name);
		free(l->listen);
		free(l->upstream);
		free(l->protocol);
	}
	free(c->listeners);
	free(c->events_log);
	free(c->events_json);
	patterns_fini(&c->policies.access.client_id);
	patterns_fini(&c->policies.access.username);
	ww_config_defaults(c);
}

/* ---- pass 2 schema: what libcyaml loads (all optional scalars are strings) ---- */

enum raw_mode { RAW_MODE_UNSET = 0, RAW_MODE_OFF, RAW_MODE_OBSERVE, RAW_MODE_ENFORCE };
enum raw_proto { RAW_PROTO_UNSET = 0, RAW_PROTO_MQTT, RAW_PROTO_AMPS, RAW_PROTO_AUTO };

struct raw_listener { char *name, *listen, *upstream; enum raw_proto protocol; };
struct raw_patterns { char **allow; unsigned n_allow; char **deny; unsigned n_deny; };
struct raw_events { char *log, *json; };
struct raw_memory { char *client_buffer; };
struct raw_heartbeat { enum raw_mode mode; char *factor; };
struct raw_slow { enum raw_mode mode; char *offline_bytes, *disconnect_bytes, *grace; };
struct raw_takeover { enum raw_mode mode; char *storm_count, *storm_window, *cooldown; };
struct raw_mode_only { enum raw_mode mode; };
struct raw_limits {
	enum raw_mode mode;
	char *max_packet_size, *msgs_per_s, *bytes_per_s, *max_connections, *max_per_ip, *connect_timeout;
};
struct raw_access { enum raw_mode mode; struct raw_patterns client_id, username; };
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
	struct raw_policies policies;
};

static const cyaml_strval_t mode_names[] = {
	{ "off", RAW_MODE_OFF }, { "observe", RAW_MODE_OBSERVE }, { "enforce", RAW_MODE_ENFORCE },
};
static const cyaml_strval_t proto_names[] = {
	{ "mqtt", RAW_PROTO_MQTT }, { "amps", RAW_PROTO_AMPS }, { "auto", RAW_PROTO_AUTO },
};

/* Every key is optional but a listener's name, listen and upstream; strings
 * are never empty; numbers stay text (see the top of the file). */
#define OPT CYAML_FLAG_OPTIONAL
#define STR(key, st, m, max)     CYAML_FIELD_STRING_PTR(key, OPT, struct st, m, 1, max)
#define NEED(key, st, m, max)    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER, struct st, m, 1, max)
#define MODE(st)                 CYAML_FIELD_ENUM("mode", OPT | CYAML_FLAG_STRICT, struct st, mode, mode_names, 3)
#define MAP(key, st, m, fields)  CYAML_FIELD_MAPPING(key, OPT, struct st, m, fields)
#define SEQ(key, st, m, n, entry, max) \
	CYAML_FIELD_SEQUENCE_COUNT(key, CYAML_FLAG_POINTER | OPT, struct st, m, n, entry, 0, max)

static const cyaml_schema_field_t listener_fields[] = {
	NEED("name", raw_listener, name, 64),
	NEED("listen", raw_listener, listen, 300),
	NEED("upstream", raw_listener, upstream, 300),
	CYAML_FIELD_ENUM("protocol", OPT | CYAML_FLAG_STRICT, struct raw_listener, protocol, proto_names, 3),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t listener_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_listener, listener_fields),
};
static const cyaml_schema_value_t glob_entry = { CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 1024) };
static const cyaml_schema_field_t patterns_fields[] = {
	SEQ("allow", raw_patterns, allow, n_allow, &glob_entry, 4096),
	SEQ("deny", raw_patterns, deny, n_deny, &glob_entry, 4096),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t events_fields[] = {
	STR("log", raw_events, log, 4095), STR("json", raw_events, json, 4095), CYAML_FIELD_END
};
static const cyaml_schema_field_t memory_fields[] = {
	STR("client_buffer", raw_memory, client_buffer, 64), CYAML_FIELD_END
};
static const cyaml_schema_field_t heartbeat_fields[] = {
	MODE(raw_heartbeat), STR("factor", raw_heartbeat, factor, 64), CYAML_FIELD_END
};
static const cyaml_schema_field_t slow_client_fields[] = {
	MODE(raw_slow),
	STR("offline_bytes", raw_slow, offline_bytes, 64),
	STR("disconnect_bytes", raw_slow, disconnect_bytes, 64),
	STR("grace", raw_slow, grace, 64),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t takeover_fields[] = {
	MODE(raw_takeover),
	STR("storm_count", raw_takeover, storm_count, 64),
	STR("storm_window", raw_takeover, storm_window, 64),
	STR("cooldown", raw_takeover, cooldown, 64),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t mode_only_fields[] = { MODE(raw_mode_only), CYAML_FIELD_END };
static const cyaml_schema_field_t limits_fields[] = {
	MODE(raw_limits),
	STR("max_packet_size", raw_limits, max_packet_size, 64),
	STR("msgs_per_s", raw_limits, msgs_per_s, 64),
	STR("bytes_per_s", raw_limits, bytes_per_s, 64),
	STR("max_connections", raw_limits, max_connections, 64),
	STR("max_per_ip", raw_limits, max_per_ip, 64),
	STR("connect_timeout", raw_limits, connect_timeout, 64),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t access_fields[] = {
	MODE(raw_access),
	MAP("client_id", raw_access, client_id, patterns_fields),
	MAP("username", raw_access, username, patterns_fields),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t policies_fields[] = {
	MAP("heartbeat", raw_policies, heartbeat, heartbeat_fields),
	MAP("slow_client", raw_policies, slow_client, slow_client_fields),
	MAP("takeover", raw_policies, takeover, takeover_fields),
	MAP("protocol", raw_policies, protocol, mode_only_fields),
	MAP("receive_maximum", raw_policies, receive_maximum, mode_only_fields),
	MAP("limits", raw_policies, limits, limits_fields),
	MAP("access", raw_policies, access, access_fields),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t root_fields[] = {
	SEQ("listeners", raw_root, listeners, n_listeners, &listener_entry, 1024),
	STR("workers", raw_root, workers, 64),
	MAP("events", raw_root, events, events_fields),
	MAP("limits_memory", raw_root, limits_memory, memory_fields),
	MAP("policies", raw_root, policies, policies_fields),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t root_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_root, root_fields),
};

/* ---- passes 1 and 3: libyaml events ---- */

/* A dotted path: "listeners[1].name" is { "listeners", [1], "name" }. Keys
 * point into a string owned by the caller. */
struct ypath {
	unsigned n;
	struct { const char *key; size_t len; long idx; } s[CFG_MAX_DEPTH]; /* idx >= 0: list item */
};

enum yfind { YF_CHECK, YF_KEY, YF_VALUE };

struct yframe {
	bool map, on_path;   /* a mapping (else a list); the path runs through it */
	bool want_value;     /* map: the next node is a value */
	bool value_on_path;  /* map: the key just read is the path's next step */
	long items;          /* list: items seen */
};

/* Byte <off> of <buf> as a 1-based line and column. */
static void offset_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			++*line;
			*col = 1;
		} else {
			++*col;
		}
	}
}

static PRINTF(4, 5) int mark_err(struct cfg_err *err, const yaml_mark_t *m, unsigned pos[2], const char *fmt, ...)
{
	va_list ap;

	pos[0] = (unsigned)m->line + 1;
	pos[1] = (unsigned)m->column + 1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* Walks the events of <buf>. YF_CHECK: checks the whole stream, what libcyaml
 * would report without a position or not at all: syntax (libyaml's message),
 * aliases, NUL bytes in values, keys that are not plain values, more than one
 * document, nesting deeper than CFG_MAX_DEPTH. YF_KEY / YF_VALUE: stops at the
 * key (its <occ>-th occurrence, from 0) or the value that <p> names.
 * 1: found, <pos> = { line, column } of its first character; 0: not found;
 * -1: <err>->msg and <pos> describe the first problem. */
static int yaml_walk(const char *buf, size_t len, const struct ypath *p, enum yfind find, unsigned occ,
		     unsigned pos[2], struct cfg_err *err)
{
	yaml_parser_t ps;
	yaml_event_t ev;
	struct yframe fr[CFG_MAX_DEPTH];
	unsigned depth = 0, docs = 0, seen = 0;
	int rc = 0;

	if (!yaml_parser_initialize(&ps)) {
		pos[0] = pos[1] = 1;
		snprintf(err->msg, sizeof err->msg, "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&ps, (const unsigned char *)buf, len);
	for (bool done = false; !done && rc == 0;) {
		if (!yaml_parser_parse(&ps, &ev)) {
			if (ps.error == YAML_READER_ERROR)
				offset_pos(buf, len, ps.problem_offset, &pos[0], &pos[1]);
			else
				pos[0] = (unsigned)ps.problem_mark.line + 1, pos[1] = (unsigned)ps.problem_mark.column + 1;
			if (ps.context)
				snprintf(err->msg, sizeof err->msg, "YAML syntax: %s (%s at line %u)",
					 ps.problem ? ps.problem : "error", ps.context, (unsigned)ps.context_mark.line + 1);
			else
				snprintf(err->msg, sizeof err->msg, "YAML syntax: %s", ps.problem ? ps.problem : "error");
			rc = -1;
			break;
		}
		bool node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_MAPPING_START_EVENT ||
			    ev.type == YAML_SEQUENCE_START_EVENT;
		struct yframe *up = depth ? &fr[depth - 1] : NULL;

		if (ev.type == YAML_STREAM_END_EVENT) {
			done = true;
		} else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
			rc = mark_err(err, &ev.start_mark, pos, "only one YAML document is allowed");
		} else if (ev.type == YAML_ALIAS_EVENT) {
			rc = mark_err(err, &ev.start_mark, pos, "aliases (*%.40s) are not supported",
				      (const char *)ev.data.alias.anchor);
		} else if (ev.type == YAML_SCALAR_EVENT && memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
			rc = mark_err(err, &ev.start_mark, pos, "value holds a NUL byte");
		} else if (node && up && up->map && !up->want_value && ev.type != YAML_SCALAR_EVENT) {
			rc = mark_err(err, &ev.start_mark, pos, "a key must be a plain value, not a mapping or list");
		} else if (node) {
			bool on = true, is_key = up && up->map && !up->want_value;
			unsigned step = depth - 1; /* the path step that a child of <up> matches */
			if (up && up->map && is_key) {
				on = up->on_path && step < p->n && p->s[step].idx < 0 &&
				     ev.data.scalar.length == p->s[step].len &&
				     memcmp(ev.data.scalar.value, p->s[step].key, p->s[step].len) == 0;
				up->value_on_path = on;
			} else if (up && up->map) {
				on = up->value_on_path;
			} else if (up) {
				long item = up->items++;
				on = up->on_path && step < p->n && p->s[step].idx == item;
			}
			if (on && find != YF_CHECK && depth == p->n &&
			    (find == YF_KEY ? is_key && seen++ == occ : !is_key)) {
				pos[0] = (unsigned)ev.start_mark.line + 1;
				pos[1] = (unsigned)ev.start_mark.column + 1;
				rc = 1;
			} else if (ev.type == YAML_SCALAR_EVENT) {
				if (up && up->map)
					up->want_value = !up->want_value;
			} else if (depth == CFG_MAX_DEPTH) {
				rc = mark_err(err, &ev.start_mark, pos, "nested deeper than %d levels", CFG_MAX_DEPTH);
			} else {
				fr[depth++] = (struct yframe){ .map = ev.type == YAML_MAPPING_START_EVENT, .on_path = on };
			}
		} else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
			if (--depth && fr[depth - 1].map)
				fr[depth - 1].want_value = !fr[depth - 1].want_value;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&ps);
	return rc;
}

/* ---- errors with a position ---- */

struct loadctx {
	const char *buf; /* the whole file */
	size_t len;
	struct cfg_err *err;
};

/* Parses "a.b[1].c" into <p>; the keys point into <s>. */
static void path_parse(const char *s, struct ypath *p)
{
	for (p->n = 0; *s && p->n < CFG_MAX_DEPTH; p->n++) {
		if (*s == '[') {
			char *end;
			p->s[p->n].key = NULL;
			p->s[p->n].len = 0;
			p->s[p->n].idx = strtol(s + 1, &end, 10);
			s = end + (*end == ']');
		} else {
			p->s[p->n].key = s;
			p->s[p->n].len = strcspn(s, ".[");
			p->s[p->n].idx = -1;
			s += p->s[p->n].len;
		}
		s += *s == '.';
	}
}

/* <p> as "a.b[1].c" in <out> (keys escaped), or "top level" for the root. */
static const char *path_str(const struct ypath *p, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < p->n && n + 1 < cap; i++) {
		if (p->s[i].idx >= 0) {
			n += (size_t)snprintf(out + n, cap - n, "[%ld]", p->s[i].idx);
		} else {
			if (i)
				out[n++] = '.';
			n += escape_text((const uint8_t *)p->s[i].key, p->s[i].len, out + n, cap - n);
		}
	}
	return p->n ? out : "top level";
}

/* <s> escaped for one line of text and cut to fit in <out>. */
static const char *quote(const char *s, char out[72])
{
	escape_text((const uint8_t *)s, strlen(s), out, 72);
	return out;
}

/* Fills lc->err with "<path>: <fmt>" at the key or value that <p> names (the
 * <occ>-th time for a key), else at <fb> (line, column) if set, else 1:1. */
static PRINTF(6, 0) int vfail(struct loadctx *lc, const struct ypath *p, enum yfind find, unsigned occ,
			      const unsigned *fb, const char *fmt, va_list ap)
{
	struct cfg_err scratch;
	unsigned pos[2];
	char ps[100];
	int n;

	if (yaml_walk(lc->buf, lc->len, p, find, occ, pos, &scratch) != 1) {
		pos[0] = fb && fb[0] ? fb[0] : 1;
		pos[1] = fb && fb[0] ? fb[1] : 1;
	}
	lc->err->line = pos[0];
	lc->err->column = pos[1];
	n = snprintf(lc->err->msg, sizeof lc->err->msg, "%s: ", path_str(p, ps, sizeof ps));
	if (n > 0 && (size_t)n < sizeof lc->err->msg)
		vsnprintf(lc->err->msg + n, sizeof lc->err->msg - (size_t)n, fmt, ap);
	return -1;
}

static PRINTF(6, 7) int fail_node(struct loadctx *lc, const struct ypath *p, enum yfind find, unsigned occ,
				  const unsigned *fb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(lc, p, find, occ, fb, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error about the value at the dotted <path>. Returns -1. */
static PRINTF(3, 4) int fail(struct loadctx *lc, const char *path, const char *fmt, ...)
{
	struct ypath p;
	va_list ap;

	path_parse(path, &p);
	va_start(ap, fmt);
	vfail(lc, &p, YF_VALUE, 0, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- pass 2: libcyaml, its log turned into one error ---- */

/* What libcyaml logged at error level: its first message, then a backtrace,
 * one line per level, innermost first:
 *   "  in mapping field 'grace' (line: 14, column: 15)"   (the value's mark)
 *   "  in mapping (line: 3, column: 5)"                    (no field: unknown key)
 *   "  in sequence entry '2' (line: 6, column: 5)"         (1-based) */
struct cy_log {
	char first[256];
	unsigned n_bt;
	struct { char key[64]; long idx; unsigned pos[2]; } bt[CFG_MAX_DEPTH];
};

static PRINTF(3, 0) void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cy_log *cl = ctx;
	char line[256];
	unsigned long a, l, c;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(line, sizeof line, fmt, args);
	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, "  in ", 5) == 0) {
		if (cl->n_bt == CFG_MAX_DEPTH)
			return;
		__typeof__(cl->bt[0]) *f = &cl->bt[cl->n_bt];
		f->key[0] = '\0';
		f->idx = -1;
		if (sscanf(line, "  in mapping field '%63[^']' (line: %lu, column: %lu)", f->key, &l, &c) == 3 ||
		    sscanf(line, "  in mapping (line: %lu, column: %lu)", &l, &c) == 2) {
			cl->n_bt++;
		} else if (sscanf(line, "  in sequence entry '%lu' (line: %lu, column: %lu)", &a, &l, &c) == 3 && a > 0) {
			f->idx = (long)a - 1;
			cl->n_bt++;
		} else {
			return;
		}
		f->pos[0] = (unsigned)l;
		f->pos[1] = (unsigned)c;
	} else if (!cl->first[0] && strncmp(line, "Load: Backtrace", 15) != 0) {
		snprintf(cl->first, sizeof cl->first, "%s", strncmp(line, "Load: ", 6) == 0 ? line + 6 : line);
	}
}

/* The schema of the node that the first <n> steps of <p> name; NULL off-schema. */
static const cyaml_schema_value_t *schema_at(const struct ypath *p, unsigned n)
{
	const cyaml_schema_value_t *v = &root_schema;

	for (unsigned i = 0; i < n && v; i++) {
		const cyaml_schema_field_t *f;
		if (p->s[i].idx >= 0) {
			v = v->type == CYAML_SEQUENCE ? v->sequence.entry : NULL;
			continue;
		}
		if (v->type != CYAML_MAPPING)
			return NULL;
		for (f = v->mapping.fields; f->key; f++)
			if (strlen(f->key) == p->s[i].len && memcmp(f->key, p->s[i].key, p->s[i].len) == 0)
				break;
		v = f->key ? &f->value : NULL;
	}
	return v;
}

/* The keys (only the required ones if <required>) of a mapping schema, or the
 * names of an enum schema, as "a, b, c" in <out>. */
static const char *schema_names(const cyaml_schema_value_t *v, bool required, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	if (v && v->type == CYAML_MAPPING) {
		for (const cyaml_schema_field_t *f = v->mapping.fields; f->key && n < cap; f++)
			if (!required || !(f->value.flags & CYAML_FLAG_OPTIONAL))
				n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", f->key);
	} else if (v && v->type == CYAML_ENUM) {
		for (uint32_t i = 0; i < v->enumeration.count && n < cap; i++)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", v->enumeration.strings[i].str);
	}
	return out;
}

static const char *kind_name(const char *event_or_type)
{
	if (strncmp(event_or_type, "MAPPING", 7) == 0)
		return "a mapping (key: value lines)";
	if (strncmp(event_or_type, "SEQUENCE", 8) == 0)
		return "a list";
	return "a single value";
}

/* Turns libcyaml's result <e> and its log <cl> into lc->err. Returns -1. */
static int cyaml_fail(struct loadctx *lc, cyaml_err_t e, const struct cy_log *cl)
{
	struct ypath p = { 0 };
	const unsigned *fb = cl->n_bt ? cl->bt[0].pos : NULL;
	const char *arg = strstr(cl->first, ": ");
	bool inner_is_field = cl->n_bt && cl->bt[0].key[0];
	char names[160], q[72];

	arg = arg ? arg + 2 : "";
	for (unsigned i = cl->n_bt; i-- > 0;) {
		if (cl->bt[i].idx >= 0)
			p.s[p.n++].idx = cl->bt[i].idx;
		else if (cl->bt[i].key[0])
			p.s[p.n].key = cl->bt[i].key, p.s[p.n].len = strlen(cl->bt[i].key), p.s[p.n++].idx = -1;
	}
	switch (e) {
	case CYAML_ERR_INVALID_KEY:
		schema_names(schema_at(&p, p.n), false, names, sizeof names);
		p.s[p.n].key = arg, p.s[p.n].len = strlen(arg), p.s[p.n++].idx = -1;
		return fail_node(lc, &p, YF_KEY, 0, fb, "unknown key (valid: %s)", names);
	case CYAML_ERR_MAPPING_FIELD_MISSING:
		p.n -= inner_is_field; /* libcyaml names the last key it read, or the first */
		return fail_node(lc, &p, YF_VALUE, 0, fb, "missing required key \"%s\" (required: %s)", quote(arg, q),
				 schema_names(schema_at(&p, p.n), true, names, sizeof names));
	case CYAML_ERR_UNEXPECTED_EVENT:
		if (strncmp(cl->first, "Mapping field already seen", 26) == 0)
			return fail_node(lc, &p, YF_KEY, 1, fb, "key given twice");
		break;
	case CYAML_ERR_INVALID_VALUE:
		if (strncmp(cl->first, "Expecting ", 10) == 0) {
			const cyaml_schema_value_t *v = schema_at(&p, p.n);
			const char *got = strstr(cl->first, "got event: ");
			return fail_node(lc, &p, YF_VALUE, 0, fb, "expected %s, got %s",
					 kind_name(v && v->type == CYAML_MAPPING ? "MAPPING" : v && v->type == CYAML_SEQUENCE ? "SEQUENCE" : ""),
					 kind_name(got ? got + 11 : ""));
		}
		if (strncmp(cl->first, "Invalid ENUM value", 18) == 0)
			return fail_node(lc, &p, YF_VALUE, 0, fb, "\"%s\" is not one of %s", quote(arg, q),
					 schema_names(schema_at(&p, p.n), false, names, sizeof names));
		break;
	case CYAML_ERR_STRING_LENGTH_MIN:
		return fail_node(lc, &p, YF_VALUE, 0, fb, "must not be empty");
	case CYAML_ERR_STRING_LENGTH_MAX: {
		const cyaml_schema_value_t *v = schema_at(&p, p.n);
		return fail_node(lc, &p, YF_VALUE, 0, fb, "longer than %u bytes", v ? (unsigned)v->string.max : 0u);
	}
	case CYAML_ERR_SEQUENCE_ENTRIES_MAX:
		p.n -= cl->n_bt && cl->bt[0].idx >= 0;
		return fail_node(lc, &p, YF_VALUE, 0, fb, "too many entries");
	default:
		break;
	}
	return fail_node(lc, &p, YF_VALUE, 0, fb, "%s", cl->first[0] ? cl->first : cyaml_strerror(e));
}

/* ---- pass 2 results: strings to values, cross-checks, copies ---- */

static int oom(struct loadctx *lc)
{
	lc->err->line = lc->err->column = 1;
	snprintf(lc->err->msg, sizeof lc->err->msg, "out of memory");
	return -1;
}

static int get_size(struct loadctx *lc, const char *path, const char *s, uint64_t *out)
{
	char q[72];

	if (s && ww_parse_size(s, out) < 0)
		return fail(lc, path, "\"%s\" is not a size (use 512, 64KiB, 8MiB, 10MB)", quote(s, q));
	return 0;
}

static int get_duration(struct loadctx *lc, const char *path, const char *s, uint64_t *out)
{
	char q[72];

	if (s && ww_parse_duration_ms(s, out) < 0)
		return fail(lc, path, "\"%s\" is not a duration (use 500ms, 30s, 5m)", quote(s, q));
	return 0;
}

static int get_u32(struct loadctx *lc, const char *path, const char *s, uint32_t max, uint32_t *out)
{
	const char *p = s;
	uint64_t v;
	char q[72];

	if (!s)
		return 0;
	if (!read_u64(&p, &v, NULL) || *p != '\0' || v > max)
		return fail(lc, path, "\"%s\" is not a whole number from 0 to %lu", quote(s, q), (unsigned long)max);
	*out = (uint32_t)v;
	return 0;
}

/* A plain decimal number >= 0 ("1000", "2.5", "1e6"); with <sizes>, also a size. */
static int get_real(struct loadctx *lc, const char *path, const char *s, bool sizes, double *out)
{
	uint64_t u;
	char *end, q[72];
	double v;

	if (!s)
		return 0;
	if (sizes && ww_parse_size(s, &u) == 0) {
		*out = (double)u;
		return 0;
	}
	v = is_digit(s[0]) && !strpbrk(s, "xX") ? strtod(s, &end) : -1;
	if (v < 0 || *end != '\0' || !isfinite(v))
		return fail(lc, path, "\"%s\" is not a number%s", quote(s, q), sizes ? " or a size (10MiB)" : "");
	*out = v;
	return 0;
}

static int dup(struct loadctx *lc, const char *s, char **out)
{
	if (s && !(*out = strdup(s)))
		return oom(lc);
	return 0;
}

static enum ww_mode mode_of(enum raw_mode m, enum ww_mode def)
{
	return m == RAW_MODE_UNSET ? def : (enum ww_mode)(m - RAW_MODE_OFF + WW_MODE_OFF);
}

static int copy_globs(struct loadctx *lc, char *const *in, unsigned n, char ***out, unsigned *nout)
{
	if (n == 0)
		return 0;
	if (!(*out = calloc(n, sizeof **out)))
		return oom(lc);
	*nout = n;
	for (unsigned i = 0; i < n; i++)
		if (dup(lc, in[i], &(*out)[i]) < 0)
			return -1;
	return 0;
}

static int convert_listeners(struct loadctx *lc, const struct raw_root *r, struct ww_config *c)
{
	static const char *const proto[] = { "mqtt", "mqtt", "amps", "auto" }; /* by enum raw_proto */
	char path[48], host[256], q[72];
	uint16_t port;

	if (r->n_listeners == 0)
		return fail(lc, "listeners", "at least one listener is required");
	if (!(c->listeners = calloc(r->n_listeners, sizeof *c->listeners)))
		return oom(lc);
	c->n_listeners = r->n_listeners;
	for (unsigned i = 0; i < r->n_listeners; i++) {
		const struct raw_listener *rl = &r->listeners[i];
		struct ww_listener_cfg *l = &c->listeners[i];
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(r->listeners[j].name, rl->name) == 0) {
				snprintf(path, sizeof path, "listeners[%u].name", i);
				return fail(lc, path, "\"%s\" is already the name of listeners[%u]", quote(rl->name, q), j);
			}
		}
		for (int k = 0; k < 2; k++) {
			const char *hp = k ? rl->upstream : rl->listen;
			snprintf(path, sizeof path, "listeners[%u].%s", i, k ? "upstream" : "listen");
			if (ww_parse_hostport(hp, host, sizeof host, &port) < 0)
				return fail(lc, path, "\"%s\" is not host:port (use 127.0.0.1:1883 or [::1]:1883)",
					    quote(hp, q));
		}
		if (dup(lc, rl->name, &l->name) < 0 || dup(lc, rl->listen, &l->listen) < 0 ||
		    dup(lc, rl->upstream, &l->upstream) < 0 || dup(lc, proto[rl->protocol], &l->protocol) < 0)
			return -1;
	}
	return 0;
}

static int convert_policies(struct loadctx *lc, const struct raw_policies *r, struct ww_policies *p)
{
	const char *where;

	p->heartbeat.mode = mode_of(r->heartbeat.mode, p->heartbeat.mode);
	if (get_real(lc, "policies.heartbeat.factor", r->heartbeat.factor, false, &p->heartbeat.factor) < 0)
		return -1;
	if (p->heartbeat.factor <= 1.0 || p->heartbeat.factor > 100.0)
		return fail(lc, "policies.heartbeat.factor", "must be above 1 and at most 100 (1.5 is the MQTT rule)");

	p->slow_client.mode = mode_of(r->slow_client.mode, p->slow_client.mode);
	if (get_size(lc, "policies.slow_client.offline_bytes", r->slow_client.offline_bytes, &p->slow_client.offline_bytes) < 0 ||
	    get_size(lc, "policies.slow_client.disconnect_bytes", r->slow_client.disconnect_bytes, &p->slow_client.disconnect_bytes) < 0 ||
	    get_duration(lc, "policies.slow_client.grace", r->slow_client.grace, &p->slow_client.grace_ms) < 0)
		return -1;
	where = r->slow_client.offline_bytes ? "policies.slow_client.offline_bytes" : "policies.slow_client.disconnect_bytes";
	if (p->slow_client.offline_bytes > p->slow_client.disconnect_bytes)
		return fail(lc, where, "offline_bytes (%llu) must not be above disconnect_bytes (%llu)",
			    (unsigned long long)p->slow_client.offline_bytes, (unsigned long long)p->slow_client.disconnect_bytes);

	p->takeover.mode = mode_of(r->takeover.mode, p->takeover.mode);
	if (get_u32(lc, "policies.takeover.storm_count", r->takeover.storm_count, UINT32_MAX, &p->takeover.storm_count) < 0 ||
	    get_duration(lc, "policies.takeover.storm_window", r->takeover.storm_window, &p->takeover.storm_window_ms) < 0 ||
	    get_duration(lc, "policies.takeover.cooldown", r->takeover.cooldown, &p->takeover.cooldown_ms) < 0)
		return -1;
	if (p->takeover.storm_count < 2)
		return fail(lc, "policies.takeover.storm_count", "must be at least 2 (one take-over is not a storm)");
	if (p->takeover.storm_window_ms == 0)
		return fail(lc, "policies.takeover.storm_window", "must be above 0");

	p->protocol.mode = mode_of(r->protocol.mode, p->protocol.mode);
	p->receive_maximum.mode = mode_of(r->receive_maximum.mode, p->receive_maximum.mode);

	p->limits.mode = mode_of(r->limits.mode, p->limits.mode);
	if (get_size(lc, "policies.limits.max_packet_size", r->limits.max_packet_size, &p->limits.max_packet_size) < 0)
		return -1;
	if (p->limits.max_packet_size > MQTT_MAX_PACKET)
		return fail(lc, "policies.limits.max_packet_size", "above the MQTT maximum of %u bytes", MQTT_MAX_PACKET);
	if (get_real(lc, "policies.limits.msgs_per_s", r->limits.msgs_per_s, false, &p->limits.msgs_per_s) < 0 ||
	    get_real(lc, "policies.limits.bytes_per_s", r->limits.bytes_per_s, true, &p->limits.bytes_per_s) < 0 ||
	    get_u32(lc, "policies.limits.max_connections", r->limits.max_connections, UINT32_MAX, &p->limits.max_connections) < 0 ||
	    get_u32(lc, "policies.limits.max_per_ip", r->limits.max_per_ip, UINT32_MAX, &p->limits.max_per_ip) < 0 ||
	    get_duration(lc, "policies.limits.connect_timeout", r->limits.connect_timeout, &p->limits.connect_timeout_ms) < 0)
		return -1;

	p->access.mode = mode_of(r->access.mode, p->access.mode);
	if (copy_globs(lc, r->access.client_id.allow, r->access.client_id.n_allow, &p->access.client_id.allow, &p->access.client_id.n_allow) < 0 ||
	    copy_globs(lc, r->access.client_id.deny, r->access.client_id.n_deny, &p->access.client_id.deny, &p->access.client_id.n_deny) < 0 ||
	    copy_globs(lc, r->access.username.allow, r->access.username.n_allow, &p->access.username.allow, &p->access.username.n_allow) < 0 ||
	    copy_globs(lc, r->access.username.deny, r->access.username.n_deny, &p->access.username.deny, &p->access.username.n_deny) < 0)
		return -1;
	return 0;
}

static int convert(struct loadctx *lc, const struct raw_root *r, struct ww_config *c)
{
	uint32_t workers = 0;

	if (convert_listeners(lc, r, c) < 0 || get_u32(lc, "workers", r->workers, CFG_MAX_WORKERS, &workers) < 0 ||
	    dup(lc, r->events.log, &c->events_log) < 0 || dup(lc, r->events.json, &c->events_json) < 0 ||
	    get_size(lc, "limits_memory.client_buffer", r->limits_memory.client_buffer, &c->client_buffer_bytes) < 0)
		return -1;
	c->workers = workers;
	if (c->client_buffer_bytes == 0)
		return fail(lc, "limits_memory.client_buffer", "must be above 0");
	return convert_policies(lc, &r->policies, &c->policies);
}

/* Reads <path> into a NUL-terminated buffer of at most CFG_MAX_FILE bytes. */
static int read_file(const char *path, char **out, size_t *len, struct cfg_err *err)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
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
		snprintf(err->msg, sizeof err->msg, !buf ? "out of memory" : e ? "cannot read: %s" : "larger than 1 MiB",
			 strerror(e));
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
	static const struct ypath whole;
	cyaml_config_t cy = { .log_fn = cy_log_fn, .mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR,
			      .flags = CYAML_CFG_NO_ALIAS };
	struct loadctx lc = { .err = err };
	struct raw_root *raw = NULL;
	struct cy_log cl;
	struct ww_config c;
	unsigned pos[2];
	cyaml_err_t e;
	char *buf;
	int rc = -1;

	memset(err, 0, sizeof *err);
	snprintf(err->file, sizeof err->file, "%s", path);
	if (read_file(path, &buf, &lc.len, err) < 0)
		return -1;
	lc.buf = buf;
	ww_config_defaults(&c);
	if (yaml_walk(buf, lc.len, &whole, YF_CHECK, 0, pos, err) < 0) {
		err->line = pos[0];
		err->column = pos[1];
		goto out;
	}
	memset(&cl, 0, sizeof cl);
	cy.log_ctx = &cl;
	e = cyaml_load_data((const uint8_t *)buf, lc.len, &cy, &root_schema, (cyaml_data_t **)&raw, NULL);
	if (e != CYAML_OK) {
		cyaml_fail(&lc, e, &cl);
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
