/* Private to common/config.c and common/config_yaml.c: what the loader
 * (config.c: the schema, the values and their checks) and the YAML side
 * (config_yaml.c: libyaml's events, positions, libcyaml's log) share. It
 * names libcyaml types, so nothing outside common/config*.c includes it. */
#ifndef WW_COMMON_CONFIG_YAML_H
#define WW_COMMON_CONFIG_YAML_H

#include <stdarg.h>
#include <stddef.h>

#include <cyaml/cyaml.h>

#include "common/config.h"

#define CFG_MAX_DEPTH 32 /* YAML nesting; the schema is 5 deep */

/* One load in progress: the file, to find positions in, and its error. */
struct loadctx {
	const char *buf; /* the file, NUL-terminated */
	size_t len;
	struct cfg_err *err;
};

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

/* Pass 1 over <buf> (<len> bytes, NUL-terminated): the whole libyaml event
 * stream is walked for syntax errors, aliases, NUL bytes in values, keys that
 * are not plain values, a second document and nesting deeper than
 * CFG_MAX_DEPTH. 0, or -1 with <err>'s msg, line and column set. */
int config_yaml_check(const char *buf, size_t len, struct cfg_err *err);

/* libcyaml's log_fn: its <ctx> is a zeroed struct cy_log, which collects the
 * first error-level message and the backtrace that follows it. */
void config_cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
	__attribute__((format(printf, 3, 0)));

/* Sets lc->err from libcyaml's result <e> and log <cl>, <root> being the
 * schema given to libcyaml: a message in our words, at the key or value it is
 * about. Returns -1. */
int config_cyaml_fail(struct loadctx *lc, cyaml_err_t e, const struct cy_log *cl, const cyaml_schema_value_t *root);

/* Sets lc->err to "<path>: <fmt>" at the line and column of the value that
 * the dotted <path> ("listeners[1].name") names, or 1:1 if it is not in the
 * file. Returns -1. */
int config_fail(struct loadctx *lc, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets lc->err to "out of memory" at 1:1. Returns -1. */
int config_oom(struct loadctx *lc);

/* <s> made safe for one line of text and cut to fit in <out>; returns <out>. */
const char *config_quote(const char *s, char out[72]);

#endif
