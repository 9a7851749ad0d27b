/* Event sinks: where a struct evt goes once the engine has filled it. A set of
 * up to EVT_SINKS_MAX callbacks receives every event in order; the two file
 * sinks here write one text line (text.c) or one JSON object (json.c) per
 * event. Renderers are pure functions of the event, so tests and other sinks
 * (metrics, pcapng comments) can call them directly. doc/events.md is rendered
 * from the same catalog by evt_catalog_markdown() (events_md.c). */
#ifndef WW_SINK_SINK_H
#define WW_SINK_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/evt.h"

/* Receives event <e>, which (and everything it points to) is valid only for
 * the duration of the call. */
typedef void (*evt_sink_fn)(void *ctx, const struct evt *e);

#define EVT_SINKS_MAX 8

/* An all-zero struct evt_sinks is an empty, valid set. */
struct evt_sinks {
	unsigned n;
	struct {
		evt_sink_fn fn;
		void *ctx;
	} s[EVT_SINKS_MAX];
};

/* Adds <fn> with <ctx> (borrowed: must outlive <ss>) at the end of <ss>.
 * Returns 0, or -1 when <ss> already holds EVT_SINKS_MAX sinks. */
int evt_sinks_add(struct evt_sinks *ss, evt_sink_fn fn, void *ctx);

/* Hands <e> to every sink of <ss> in the order they were added. */
void evt_emit(const struct evt_sinks *ss, const struct evt *e);

/* ---- renderers ---- */

/* "2026-11-23T18:41:50.123456Z" plus NUL fits in this. */
#define EVT_TS_MAX 40
/* A text line longer than this is cut (ending "..."). */
#define EVT_TEXT_MAX 4096

/* Writes <ts_us> (microseconds since the epoch) as ISO-8601 UTC with
 * microseconds into <buf> of <cap> bytes. Returns the length, 0 if it did not fit. */
size_t evt_format_ts(int64_t ts_us, char *buf, size_t cap);

/* Renders <e> as one text line, without a trailing newline, into <buf> of
 * <cap> bytes:
 *   <ts> <severity> <id> client[<client id>] <name>: <message> (<key>=<value> ...)
 * The message is the event's template with its fields filled in; the fields
 * it did not use follow as key=value (values with spaces in quotes). Every
 * byte that came from the wire is passed through escape_text(), so the result
 * is a single line whatever <e> holds; a line that does not fit ends "...".
 * Returns the length written; <buf> is NUL-terminated when <cap> >= 1. */
size_t evt_render_text(const struct evt *e, char *buf, size_t cap);

/* Renders <e> as one compact JSON object (no newline): ts, ts_us, id, name,
 * severity, conn, then each set field (client_id_hex beside client_id when the
 * id is not valid UTF-8; duration_s as seconds; evidence as [{frame, text}]).
 * Returns a NUL-terminated string from malloc() that the caller free()s, or
 * NULL when memory ran out. */
char *evt_render_json(const struct evt *e);

/* The same fields added to the JSON object <o> (which may already hold keys
 * that should come first). Returns <o>, or NULL (and <o> released) when
 * memory ran out. For callers that add keys of their own (sniff's verdicts). */
struct json_t;
struct json_t *evt_json_object(const struct evt *e, struct json_t *o);

/* Writes doc/events.md, the catalog rendered as Markdown, to <fp>.
 * Returns 0, or -1 on a write error (errno as set by stdio). */
int evt_catalog_markdown(FILE *fp);

/* ---- file sinks ---- */

/* A sink writing to a stdio stream it does not own. <failed> counts events
 * that could not be written (write error, memory): the shell reports it. */
struct evt_file_sink {
	FILE *fp;
	bool flush_each; /* fflush after each event: for tail -f and pipes */
	uint64_t failed;
};

/* Returns a file sink writing to <fp> (borrowed), flushing after every event
 * when <flush_each>. */
struct evt_file_sink evt_file_sink_make(FILE *fp, bool flush_each);

/* Writes an already rendered event: <len> bytes of <line>, then a newline.
 * For a sink that renders outside its own lock and writes under it. */
void evt_file_sink_write_line(struct evt_file_sink *fs, const char *line, size_t len);

/* Sink callbacks; <ctx> is a struct evt_file_sink *. Each writes one line. */
void evt_text_sink_fn(void *ctx, const struct evt *e);
void evt_json_sink_fn(void *ctx, const struct evt *e);

/* Shorthands for evt_sinks_add(<ss>, evt_text_sink_fn / evt_json_sink_fn, <fs>). */
int evt_sinks_add_text(struct evt_sinks *ss, struct evt_file_sink *fs);
int evt_sinks_add_json(struct evt_sinks *ss, struct evt_file_sink *fs);

#endif
