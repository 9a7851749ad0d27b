/* Untrusted bytes (client ids, user names, topics, decoder details) made safe
 * to print. Two renderings: escape_text() for one-line text logs, where nothing
 * may break or disguise the line (no newline, CR, ESC, bidi override survives),
 * and escape_utf8() for JSON strings, where valid UTF-8 is kept exactly and only
 * the bytes JSON cannot carry are spelled out. Both write into a bounded buffer,
 * never allocate, and mark a cut with "...". The JSON encoder itself (jansson)
 * escapes quotes and controls; this file only has to produce valid UTF-8. */
#ifndef WW_COMMON_ESCAPE_H
#define WW_COMMON_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The marker written in place of the tail of an output that did not fit. */
#define ESCAPE_CUT_MARK "..."

/* Writes <in> (<n> bytes, may be NULL when <n> is 0) into <out> of <cap> bytes
 * as one line of text:
 *   - printable ASCII is kept, except '\' -> "\\" and '"' -> "\"";
 *   - well-formed UTF-8 for a visible character is kept as is;
 *   - every other byte becomes "\xNN" (lowercase hex): C0 controls (newline,
 *     CR, ESC, NUL...), DEL, C1 controls, U+2028/U+2029, bidi and other
 *     invisible format characters, noncharacters, and any byte that is not
 *     part of well-formed UTF-8 (overlong, surrogate, truncated, > U+10FFFF).
 * The escapes are never split. When the whole result does not fit, the output
 * ends with ESCAPE_CUT_MARK (shortened to what fits when <cap> < 4).
 * Returns the length written, NUL not counted; <out> is NUL-terminated
 * whenever <cap> >= 1 and untouched when <cap> is 0. */
size_t escape_text(const uint8_t *in, size_t n, char *out, size_t cap);

/* The length escape_text() would write for <in> given unlimited room (NUL not
 * counted): a buffer of this plus one bytes never cuts. */
size_t escape_text_len(const uint8_t *in, size_t n);

/* Writes <in> into <out> of <cap> bytes as valid UTF-8, for a JSON string:
 * well-formed UTF-8 is copied unchanged (controls included: the JSON encoder
 * escapes them), each byte that is not part of well-formed UTF-8 becomes the
 * four characters "\xNN". Same cut and NUL rules as escape_text(); a cut never
 * splits a character. Returns the length written, NUL not counted. */
size_t escape_utf8(const uint8_t *in, size_t n, char *out, size_t cap);

/* True when <in> is entirely well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). NUL is a valid character here. */
bool escape_utf8_valid(const uint8_t *in, size_t n);

/* Writes <in> as lowercase hex pairs into <out> of <cap> bytes; a cut keeps
 * whole pairs and ends with ESCAPE_CUT_MARK. Returns the length written. */
size_t escape_hex(const uint8_t *in, size_t n, char *out, size_t cap);

#endif
