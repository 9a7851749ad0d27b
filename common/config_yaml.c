/* The YAML side of a configuration load (see config.c): what is read from
 * libyaml's events and from libcyaml's log rather than from the loaded
 * structs.
 *   - pass 1 of a load, a walk over the whole event stream for what libcyaml
 *     reports without a position or not at all (config_yaml_check());
 *   - the walk that finds the line and column of the key or value a dotted
 *     path names, so that every error carries a position (config_fail());
 *   - libcyaml's log, captured during pass 2 and turned into one error with
 *     a dotted path and a position (config_cy_log_fn(), config_cyaml_fail()).
 * The schema, reading the file, and converting and checking the values are
 * config.c's; the shared declarations are in config_yaml.h. */
#include "common/config_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/escape.h"

#define PRINTF(f, a) __attribute__((format(printf, f, a)))

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

/* Pass 1 of a load: the whole stream, with YF_CHECK. */
int config_yaml_check(const char *buf, size_t len, struct cfg_err *err)
{
	static const struct ypath whole;
	unsigned pos[2];

	if (yaml_walk(buf, len, &whole, YF_CHECK, 0, pos, err) >= 0)
		return 0;
	err->line = pos[0];
	err->column = pos[1];
	return -1;
}

/* ---- errors with a position ---- */

int config_oom(struct loadctx *lc)
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
const char *config_quote(const char *s, char out[72])
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
PRINTF(3, 4) int config_fail(struct loadctx *lc, const char *path, const char *fmt, ...)
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

PRINTF(3, 0) void config_cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
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

/* The schema of the node that <p> names under <root>; NULL when <p> leaves
 * the schema. */
static const cyaml_schema_value_t *schema_at(const cyaml_schema_value_t *root, const struct ypath *p)
{
	const cyaml_schema_value_t *v = root;
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

/* Turns libcyaml's result <e> and its log <cl> into lc->err; <root> is the
 * schema of the load. Returns -1. */
int config_cyaml_fail(struct loadctx *lc, cyaml_err_t e, const struct cy_log *cl, const cyaml_schema_value_t *root)
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
		schema_names(schema_at(root, &p), false, names);
		if (yaml_walk(lc->buf, lc->len, &p, YF_VALUE, 0, map_pos, &(struct cfg_err){ 0 }) == 1)
			fb = map_pos; /* if the key can't be found (cut in the log), the mapping */
		p.s[p.n].key = arg;
		p.s[p.n].len = strlen(arg);
		p.s[p.n++].idx = -1;
		return fail_at(lc, &p, YF_KEY, 0, fb, "unknown key (valid: %s)", names);
	case CYAML_ERR_MAPPING_FIELD_MISSING: /* it ends at the last key read, or the first of the schema */
		p.n -= cl->n_bt && cl->bt[0].key[0];
		return fail_at(lc, &p, YF_VALUE, 0, fb, "missing required key \"%s\" (required: %s)", config_quote(arg, q),
			       schema_names(schema_at(root, &p), true, names));
	case CYAML_ERR_UNEXPECTED_EVENT:
		if (strncmp(cl->first, "Mapping field already seen", 26) == 0)
			return fail_at(lc, &p, YF_KEY, 1, fb, "key given twice");
		break;
	case CYAML_ERR_INVALID_VALUE:
		v = schema_at(root, &p);
		if (got && v)
			return fail_at(lc, &p, YF_VALUE, 0, fb, "expected %s, got %s",
				       kind_name(v->type == CYAML_MAPPING, v->type == CYAML_SEQUENCE),
				       kind_name(strncmp(got + 11, "MAPPING", 7) == 0, strncmp(got + 11, "SEQUENCE", 8) == 0));
		if (strncmp(cl->first, "Invalid ENUM value", 18) == 0)
			return fail_at(lc, &p, YF_VALUE, 0, fb, "\"%s\" is not one of %s", config_quote(arg, q),
				       schema_names(v, false, names));
		break;
	case CYAML_ERR_STRING_LENGTH_MIN:
		return fail_at(lc, &p, YF_VALUE, 0, fb, "must not be empty");
	case CYAML_ERR_STRING_LENGTH_MAX:
		v = schema_at(root, &p);
		return fail_at(lc, &p, YF_VALUE, 0, fb, "longer than %u bytes", v ? (unsigned)v->string.max : 0u);
	case CYAML_ERR_OOM:
	case CYAML_ERR_LIBYAML_PARSER_INIT:
	case CYAML_ERR_LIBYAML_EVENT_INIT:
	case CYAML_ERR_LIBYAML_PARSER: /* pass 1 parsed the same bytes: out of memory */
		return config_oom(lc);
	case CYAML_ERR_SEQUENCE_ENTRIES_MAX: /* it ends at the entry past the last */
		p.n -= cl->n_bt && cl->bt[0].idx >= 0;
		v = schema_at(root, &p);
		return fail_at(lc, &p, YF_VALUE, 0, fb, "more than %u entries", v ? (unsigned)v->sequence.max : 0u);
	default:
		break;
	}
	return fail_at(lc, &p, YF_VALUE, 0, fb, "%s", cl->first[0] ? cl->first : cyaml_strerror(e));
}
