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
 * For the errors of 2 and 3, yaml_walk() walks the events again to the node
 * the path names and reports its line and column. Numbers, sizes and
 * durations are loaded as strings and parsed here: libcyaml reads integers
 * with strtoull() in base 0 and ignores trailing bytes ("010" is 8, "5x" is
 * 5, "-1" wraps), which is too loose for a configuration. */
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

#define CFG_MAX_FILE    (1u << 20) /* bytes; a configuration is a few KiB */
#define CFG_MAX_DEPTH   32         /* YAML nesting; the schema is 5 deep */
#define CFG_MAX_WORKERS 1024u
#define MQTT_MAX_PACKET 268435455u /* MQTT 5.0, 3.1.2.11.4: 2^28 - 1 */
#define PRINTF(f, a)    __attribute__((format(printf, f, a)))
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
	.policies = {
		.heartbeat = { WW_MODE_OBSERVE, 1.5 },
		.slow_client = { WW_MODE_OBSERVE, 8u << 20, 32u << 20, 30000 },
		.takeover = { WW_MODE_OBSERVE, 5, 60000, 30000 },
		.protocol = { WW_MODE_ENFORCE },
		.receive_maximum = { WW_MODE_OBSERVE },
		.limits = { .mode = WW_MODE_ENFORCE, .connect_timeout_ms = 10000 },
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
	struct ww_patterns *pat[] = { &c->policies.access.client_id, &c->policies.access.username };

	for (unsigned i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].listen);
		free(c->listeners[i].upstream);
		free(c->listeners[i].protocol);
	}
	free(c->listeners);
	free(c->events_log);
	free(c->events_json);
	for (unsigned i = 0; i < 2; i++) {
		free_strings(pat[i]->allow, pat[i]->n_allow);
		free_strings(pat[i]->deny, pat[i]->n_deny);
	}
	ww_config_defaults(c);
}

/* ---- the schema that libcyaml loads: every scalar is a string ---- */

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

/* All keys are optional but a listener's name, listen and upstream; no string
 * may be empty. An absent mapping loads as zeroes: NULL strings, *_UNSET. */
#define OPT                   CYAML_FLAG_OPTIONAL
#define STR(k, st, max)       CYAML_FIELD_STRING_PTR(#k, OPT, struct st, k, 1, max)
#define NEED(k, st, max)      CYAML_FIELD_STRING_PTR(#k, CYAML_FLAG_POINTER, struct st, k, 1, max)
#define ENUM(k, st, names)    CYAML_FIELD_ENUM(#k, OPT | CYAML_FLAG_STRICT, struct st, k, names, 3)
#define MAP(k, st, fields)    CYAML_FIELD_MAPPING(#k, OPT, struct st, k, fields)
#define SEQ(k, st, entry, max) \
	CYAML_FIELD_SEQUENCE_COUNT(#k, CYAML_FLAG_POINTER | OPT, struct st, k, n_##k, entry, 0, max)

static const cyaml_schema_field_t listener_fields[] = {
	NEED(name, raw_listener, 64), NEED(listen, raw_listener, 300), NEED(upstream, raw_listener, 300),
	ENUM(protocol, raw_listener, proto_names), CYAML_FIELD_END
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
static const cyaml_schema_field_t heartbeat_fields[] = {
	ENUM(mode, raw_heartbeat, mode_names), STR(factor, raw_heartbeat, 64), CYAML_FIELD_END
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
	MAP(username, raw_access, patterns_fields), CYAML_FIELD_END
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
	MAP(policies, raw_root, policies_fields), CYAML_FIELD_END
};
static const cyaml_schema_value_t root_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_root, root_fields),
};

/* ---- libyaml events: checks, and positions ---- */

/* A dotted path, "listeners[1].name" = { "listeners", [1], "name" }; the keys
 * point into memory the caller owns. */
struct ypath {
	unsigned n;
	struct { const char *key; size_t len; long idx; } s[CFG_MAX_DEPTH]; /* idx >= 0: a list item */
};

enum yfind { YF_CHECK, YF_KEY, YF_VALUE };

struct yframe {
	bool map, on_path;  /* a mapping (else a list); the path runs through it */
	bool want_value;    /* map: the next node is a value */
	bool value_on_path; /* map: the key just read is the path's next step */
	long items;         /* list: items so far */
};

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

/* libyaml's error in <err>->msg and <pos>; <buf> is the input, <len> bytes. */
static int syntax_err(const yaml_parser_t *ps, const char *buf, size_t len, unsigned pos[2], struct cfg_err *err)
{
	yaml_mark_t m = ps->problem_mark;

	if (ps->error == YAML_READER_ERROR) { /* bad UTF-8, say: only a byte offset */
		m.line = m.column = 0;
		for (size_t i = 0; i < ps->problem_offset && i < len; i++) {
			m.column = buf[i] == '\n' ? 0 : m.column + 1;
			m.line += buf[i] == '\n';
		}
	}
	if (ps->error == YAML_MEMORY_ERROR)
		return mark_err(err, &m, pos, "out of memory");
	if (ps->context)
		return mark_err(err, &m, pos, "YAML syntax: %s (%s at line %u)", ps->problem ? ps->problem : "error",
				ps->context, (unsigned)ps->context_mark.line + 1);
	return mark_err(err, &m, pos, "YAML syntax: %s", ps->problem ? ps->problem : "error");
}

/* Walks the events of <buf> (<len> bytes, NUL-terminated).
 * YF_CHECK: the whole stream, for what libcyaml reports without a position or
 * not at all: syntax, aliases, NUL bytes in values, keys that are not plain
 * values, a second document, nesting deeper than CFG_MAX_DEPTH.
 * YF_KEY / YF_VALUE: up to the key (its <occ>-th occurrence, from 0) or the
 * value that <p> names. Returns 1 when found, with <pos> = { line, column }
 * (1-based) of its first character; 0 when not found; -1 on the first
 * problem, described by <err>->msg and <pos>. */
static int yaml_walk(const char *buf, size_t len, const struct ypath *p, enum yfind find, unsigned occ,
		     unsigned pos[2], struct cfg_err *err)
{
	struct yframe fr[CFG_MAX_DEPTH];
	unsigned depth = 0, docs = 0, seen = 0;
	yaml_parser_t ps;
	yaml_event_t ev;
	int rc = 0;

	if (!yaml_parser_initialize(&ps))
		return mark_err(err, &(yaml_mark_t){ 0 }, pos, "out of memory");
	yaml_parser_set_input_string(&ps, (const unsigned char *)buf, len);
	while (rc == 0) {
		if (!yaml_parser_parse(&ps, &ev)) {
			rc = syntax_err(&ps, buf, len, pos, err);
			break;
		}
		struct yframe *up = depth ? &fr[depth - 1] : NULL;
		bool is_key = up && up->map && !up->want_value, on = true;
		unsigned step = depth - 1; /* the path step that a child of <up> stands for */

		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			rc = 2;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				rc = mark_err(err, &ev.start_mark, pos, "only one YAML document is allowed");
			break;
		case YAML_ALIAS_EVENT:
			rc = mark_err(err, &ev.start_mark, pos, "aliases (*%.40s) are not supported",
				      (const char *)ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (ev.type == YAML_SCALAR_EVENT && memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
				rc = mark_err(err, &ev.start_mark, pos, "value holds a NUL byte");
				break;
			}
			if (is_key && ev.type != YAML_SCALAR_EVENT) {
				rc = mark_err(err, &ev.start_mark, pos, "a key must be a plain value");
				break;
			}
			if (is_key) {
				on = up->value_on_path = up->on_path && step < p->n && p->s[step].idx < 0 &&
							 ev.data.scalar.length == p->s[step].len &&
							 memcmp(ev.data.scalar.value, p->s[step].key, p->s[step].len) == 0;
			} else if (up && up->map) {
				on = up->value_on_path;
			} else if (up) {
				long item = up->items++;
				on = up->on_path && step < p->n && p->s[step].idx == item;
			}
			if (on && find != YF_CHECK && depth == p->n && (find == YF_KEY ? is_key && seen++ == occ : !is_key)) {
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
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth > 0 && --depth > 0 && fr[depth - 1].map) /* a key or a value is complete */
				fr[depth - 1].want_value = !fr[depth - 1].want_value;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&ps);
	return rc == 2 ? 0 : rc;
}

/* ---- errors with a position ---- */

struct loadctx {
	const char *buf; /* the file, NUL-terminated */
	size_t len;
	struct cfg_err *err;
};

static int oom(struct loadctx *lc)
{
	lc->err->line = lc->err->column = 1;
	snprintf(lc->err->msg, sizeof lc->err->msg, "out of memory");
	return -1;
}

/* Parses "a.b[1].c" into <p>; the keys point into <s>. */
static void path_parse(const char *s, struct ypath *p)
{
	for (p->n = 0; *s && p->n < CFG_MAX_DEPTH; p->n++) {
		char *end = (char *)s;
		bool item = *s == '[';
		p->s[p->n].key = item ? NULL : s;
		p->s[p->n].len = item ? 0 : strcspn(s, ".[");
		p->s[p->n].idx = item ? strtol(s + 1, &end, 10) : -1;
		s = item ? end + (*end == ']') : s + p->s[p->n].len;
		s += *s == '.';
	}
}

/* <p> as "a.b[1].c" in <out>, keys escaped; "top level" for the root. */
static const char *path_str(const struct ypath *p, char *out, size_t cap)
{
	size_t n = 0;

	for (unsigned i = 0; i < p->n && n + 1 < cap; i++) {
		if (p->s[i].idx >= 0) {
			n += (size_t)snprintf(out + n, cap - n, "[%ld]", p->s[i].idx);
			continue;
		}
		if (i > 0)
			out[n++] = '.';
		n += escape_text((const uint8_t *)p->s[i].key, p->s[i].len, out + n, cap - n);
	}
	return p->n ? out : "top level";
}

/* <s> made safe for one line of text and cut to fit in <out>. */
static const char *quote(const char *s, char out[72])
{
	escape_text((const uint8_t *)s, strlen(s), out, 72);
	return out;
}

/* Sets lc->err to "<path>: <fmt>" at the key or value that <p> names (the
 * <occ>-th time for a key), else at <fb> (line, column) when given, else at
 * 1:1. Returns -1. */
static PRINTF(6, 7) int fail_at(struct loadctx *lc, const struct ypath *p, enum yfind find, unsigned occ,
				const unsigned *fb, const char *fmt, ...)
{
	struct cfg_err *e = lc->err, scratch;
	unsigned pos[2];
	char ps[100];
	va_list ap;
	int n;

	if (yaml_walk(lc->buf, lc->len, p, find, occ, pos, &scratch) != 1) {
		pos[0] = fb && fb[0] ? fb[0] : 1;
		pos[1] = fb && fb[0] ? fb[1] : 1;
	}
	e->line = pos[0];
	e->column = pos[1];
	n = snprintf(e->msg, sizeof e->msg, "%s: ", path_str(p, ps, sizeof ps));
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof e->msg)
		vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error about the value at the dotted <path>. Returns -1. */
static PRINTF(3, 4) int fail(struct loadctx *lc, const char *path, const char *fmt, ...)
{
	struct ypath p;
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	path_parse(path, &p);
	return fail_at(lc, &p, YF_VALUE, 0, NULL, "%s", text);
}

/* ---- libcyaml's log, turned into one error ---- */

/* What libcyaml logs at error level: a message, then a backtrace of one line
 * per level, innermost first, with the mark of the value being read:
 *   "  in mapping field 'grace' (line: 14, column: 15)"
 *   "  in mapping (line: 3, column: 5)"              no field yet: unknown key
 *   "  in sequence entry '2' (line: 6, column: 5)"   1-based */
struct cy_log {
	char first[1024]; /* the message, without "Load: " */
	unsigned n_bt;
	struct { char key[64]; long idx; unsigned pos[2]; } bt[CFG_MAX_DEPTH];
};

static PRINTF(3, 0) void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cy_log *cl = ctx;
	unsigned long item = 0, l, c;
	char line[1024];
	size_t n;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(line, sizeof line, fmt, args);
	for (n = strlen(line); n > 0 && line[n - 1] == '\n';) /* a key may hold a newline */
		line[--n] = '\0';
	if (strncmp(line, "  in ", 5) == 0 && cl->n_bt < CFG_MAX_DEPTH - 1) { /* room for one more step */
		char *key = cl->bt[cl->n_bt].key;
		key[0] = '\0';
		if (sscanf(line, "  in mapping field '%63[^']' (line: %lu, column: %lu)", key, &l, &c) == 3 ||
		    sscanf(line, "  in mapping (line: %lu, column: %lu)", &l, &c) == 2 ||
		    (sscanf(line, "  in sequence entry '%lu' (line: %lu, column: %lu)", &item, &l, &c) == 3 && item)) {
			cl->bt[cl->n_bt].idx = (long)item - 1;
			cl->bt[cl->n_bt].pos[0] = (unsigned)l;
			cl->bt[cl->n_bt++].pos[1] = (unsigned)c;
		}
	} else if (!cl->first[0] && strncmp(line, "Load: Backtrace", 15) != 0) {
		snprintf(cl->first, sizeof cl->first, "%s", line + (strncmp(line, "Load: ", 6) == 0 ? 6 : 0));
	}
}

/* The schema of the node that <p> names; NULL when <p> leaves the schema. */
static const cyaml_schema_value_t *schema_at(const struct ypath *p)
{
	const cyaml_schema_value_t *v = &root_schema;
	const cyaml_schema_field_t *f;

	for (unsigned i = 0; i < p->n && v; i++) {
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

/* The keys of mapping schema <v> (only the required ones with <required>), or
 * the names of enum schema <v>, as "a, b, c". */
static const char *schema_names(const cyaml_schema_value_t *v, bool required, char out[160])
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned i = 0; v && v->type == CYAML_MAPPING && v->mapping.fields[i].key && n < 160; i++)
		if (!required || !(v->mapping.fields[i].value.flags & CYAML_FLAG_OPTIONAL))
			n += (size_t)snprintf(out + n, 160 - n, "%s%s", n ? ", " : "", v->mapping.fields[i].key);
	for (unsigned i = 0; v && v->type == CYAML_ENUM && i < v->enumeration.count && n < 160; i++)
		n += (size_t)snprintf(out + n, 160 - n, "%s%s", n ? ", " : "", v->enumeration.strings[i].str);
	return out;
}

static const char *kind_name(bool map, bool list)
{
	return map ? "a mapping (key: value)" : list ? "a list" : "a single value";
}

/* Turns libcyaml's result <e> and its log <cl> into lc->err. Returns -1. */
static int cyaml_fail(struct loadctx *lc, cyaml_err_t e, const struct cy_log *cl)
{
	const unsigned *fb = cl->n_bt ? cl->bt[0].pos : NULL;
	unsigned map_pos[2];
	const char *arg = strstr(cl->first, ": "), *got = strstr(cl->first, "got event: ");
	const cyaml_schema_value_t *v;
	struct ypath p = { 0 };
	char names[160], q[72];

	arg = arg ? arg + 2 : "";
	for (unsigned i = cl->n_bt; i-- > 0;) { /* outermost first */
		if (cl->bt[i].idx < 0 && !cl->bt[i].key[0])
			continue;
		p.s[p.n].key = cl->bt[i].key;
		p.s[p.n].len = strlen(cl->bt[i].key);
		p.s[p.n++].idx = cl->bt[i].idx;
	}
	switch (e) {
	case CYAML_ERR_INVALID_KEY: /* the backtrace ends at the mapping */
		schema_names(schema_at(&p), false, names);
		if (yaml_walk(lc->buf, lc->len, &p, YF_VALUE, 0, map_pos, &(struct cfg_err){ 0 }) == 1)
			fb = map_pos; /* if the key can't be found (cut in the log), the mapping */
		p.s[p.n].key = arg;
		p.s[p.n].len = strlen(arg);
		p.s[p.n++].idx = -1;
		return fail_at(lc, &p, YF_KEY, 0, fb, "unknown key (valid: %s)", names);
	case CYAML_ERR_MAPPING_FIELD_MISSING: /* it ends at the last key read, or the first of the schema */
		p.n -= cl->n_bt && cl->bt[0].key[0];
		return fail_at(lc, &p, YF_VALUE, 0, fb, "missing required key \"%s\" (required: %s)", quote(arg, q),
			       schema_names(schema_at(&p), true, names));
	case CYAML_ERR_UNEXPECTED_EVENT:
		if (strncmp(cl->first, "Mapping field already seen", 26) == 0)
			return fail_at(lc, &p, YF_KEY, 1, fb, "key given twice");
		break;
	case CYAML_ERR_INVALID_VALUE:
		v = schema_at(&p);
		if (got && v)
			return fail_at(lc, &p, YF_VALUE, 0, fb, "expected %s, got %s",
				       kind_name(v->type == CYAML_MAPPING, v->type == CYAML_SEQUENCE),
				       kind_name(strncmp(got + 11, "MAPPING", 7) == 0, strncmp(got + 11, "SEQUENCE", 8) == 0));
		if (strncmp(cl->first, "Invalid ENUM value", 18) == 0)
			return fail_at(lc, &p, YF_VALUE, 0, fb, "\"%s\" is not one of %s", quote(arg, q),
				       schema_names(v, false, names));
		break;
	case CYAML_ERR_STRING_LENGTH_MIN:
		return fail_at(lc, &p, YF_VALUE, 0, fb, "must not be empty");
	case CYAML_ERR_STRING_LENGTH_MAX:
		v = schema_at(&p);
		return fail_at(lc, &p, YF_VALUE, 0, fb, "longer than %u bytes", v ? (unsigned)v->string.max : 0u);
	case CYAML_ERR_OOM:
	case CYAML_ERR_LIBYAML_PARSER_INIT:
	case CYAML_ERR_LIBYAML_EVENT_INIT:
	case CYAML_ERR_LIBYAML_PARSER: /* pass 1 parsed the same bytes: out of memory */
		return oom(lc);
	case CYAML_ERR_SEQUENCE_ENTRIES_MAX: /* it ends at the entry past the last */
		p.n -= cl->n_bt && cl->bt[0].idx >= 0;
		v = schema_at(&p);
		return fail_at(lc, &p, YF_VALUE, 0, fb, "more than %u entries", v ? (unsigned)v->sequence.max : 0u);
	default:
		break;
	}
	return fail_at(lc, &p, YF_VALUE, 0, fb, "%s", cl->first[0] ? cl->first : cyaml_strerror(e));
}

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
		return ww_parse_size(s, to) == 0 ? 0 : fail(lc, r->path, "\"%s\" is not %s", quote(s, q), what[r->kind]);
	if (r->kind == V_DURATION)
		return ww_parse_duration_ms(s, to) == 0 ? 0 : fail(lc, r->path, "\"%s\" is not %s", quote(s, q), what[r->kind]);
	if (r->kind == V_COUNT) {
		if (!read_u64(&p, &u, &nd) || *p != '\0' || u > r->max)
			return fail(lc, r->path, "\"%s\" is not a whole number from 0 to %lu", quote(s, q), (unsigned long)r->max);
		*(uint32_t *)to = (uint32_t)u;
		return 0;
	}
	if (r->kind == V_RATE && ww_parse_size(s, &u) == 0)
		d = (double)u;
	else if (!is_digit(s[0]) || strpbrk(s, "xX") || (d = strtod(s, &end), *end != '\0') || !isfinite(d))
		return fail(lc, r->path, "\"%s\" is not %s", quote(s, q), what[r->kind]);
	memcpy(to, &d, sizeof d);
	return 0;
}

/* *<out> = a copy of <s>, or nothing if <s> is NULL. */
static int dup(struct loadctx *lc, const char *s, char **out)
{
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : oom(lc);
}

static int copy_globs(struct loadctx *lc, char *const *in, unsigned n, char ***out, unsigned *nout)
{
	if (n && !(*out = calloc(n, sizeof **out)))
		return oom(lc);
	for (*nout = 0; *nout < n; ++*nout)
		if (dup(lc, in[*nout], &(*out)[*nout]) < 0)
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
	for (unsigned i = 0; i < r->n_listeners; i++) {
		const struct raw_listener *rl = &r->listeners[i];
		struct ww_listener_cfg *l = &c->listeners[c->n_listeners++];
		for (unsigned j = 0; j < i; j++) {
			snprintf(path, sizeof path, "listeners[%u].name", i);
			if (strcmp(r->listeners[j].name, rl->name) == 0)
				return fail(lc, path, "\"%s\" is already the name of listeners[%u]", quote(rl->name, q), j);
		}
		for (int k = 0; k < 2; k++) {
			const char *hp = k ? rl->upstream : rl->listen;
			snprintf(path, sizeof path, "listeners[%u].%s", i, k ? "upstream" : "listen");
			if (ww_parse_hostport(hp, host, sizeof host, &port) < 0)
				return fail(lc, path, "\"%s\" is not host:port (use 127.0.0.1:1883 or [::1]:1883)", quote(hp, q));
		}
		if (dup(lc, rl->name, &l->name) < 0 || dup(lc, rl->listen, &l->listen) < 0 ||
		    dup(lc, rl->upstream, &l->upstream) < 0 || dup(lc, proto[rl->protocol], &l->protocol) < 0)
			return -1;
	}
	return 0;
}

/* Fills <c> (defaults on entry) from <r>; 0, or -1 with lc->err set and
 * <c> holding what was copied so far, for ww_config_fini(). */
static int convert(struct loadctx *lc, const struct raw_root *r, struct ww_config *c)
{
	struct ww_policies *p = &c->policies;
	const struct raw_patterns *rp[2] = { &r->policies.access.client_id, &r->policies.access.username };
	struct ww_patterns *cp[2] = { &p->access.client_id, &p->access.username };

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
		return fail(lc, "limits_memory.client_buffer", "must be above 0");
	if (!(p->heartbeat.factor > 1.0 && p->heartbeat.factor <= 100.0))
		return fail(lc, "policies.heartbeat.factor", "must be above 1 and at most 100 (1.5 is the MQTT rule)");
	if (p->slow_client.offline_bytes > p->slow_client.disconnect_bytes)
		return fail(lc, r->policies.slow_client.offline_bytes ? "policies.slow_client.offline_bytes"
								       : "policies.slow_client.disconnect_bytes",
			    "offline_bytes (%llu) must not be above disconnect_bytes (%llu)",
			    (unsigned long long)p->slow_client.offline_bytes, (unsigned long long)p->slow_client.disconnect_bytes);
	if (p->takeover.storm_count < 2)
		return fail(lc, "policies.takeover.storm_count", "must be at least 2 (one take-over is not a storm)");
	if (p->takeover.storm_window_ms == 0)
		return fail(lc, "policies.takeover.storm_window", "must be above 0");
	if (p->limits.max_packet_size > MQTT_MAX_PACKET)
		return fail(lc, "policies.limits.max_packet_size", "above the MQTT maximum of %u bytes", MQTT_MAX_PACKET);
	for (int i = 0; i < 2; i++)
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
	static const struct ypath whole;
	cyaml_config_t cy = { .log_fn = cy_log_fn, .mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR,
			      .flags = CYAML_CFG_NO_ALIAS };
	struct loadctx lc = { .err = err };
	struct raw_root *raw = NULL;
	struct ww_config c;
	struct cy_log cl;
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
