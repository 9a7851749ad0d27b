/* Broker log readers for `wirewarden why`: one per broker (mosquitto, AMPS,
 * HiveMQ, EMQX, RabbitMQ), each a pure parser of one log line at a time. A reader turns
 * a line into at most one record (a connection opened, a connection closed
 * and why, or a note that hints at the reason of a close to come) with views
 * into the line or into the reader's own fixed-size state: no allocation per
 * line, no I/O. The broker's sentence is mapped onto our reason names
 * (doc/events.md); a line the reader does not know is reported as such, so
 * that the caller can keep it as context when it names the client. */
#ifndef WW_CLI_WHY_LOG_H
#define WW_CLI_WHY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/evt.h"

/* A borrowed byte range; p == NULL means absent. */
struct why_text {
	const char *p;
	size_t n;
};

enum why_rec_kind {
	WHY_REC_NONE,    /* recognised and of no interest (a PUBLISH, a SUBACK, a start-up line) */
	WHY_REC_UNKNOWN, /* not a shape this reader knows: context if it names the client */
	WHY_REC_OPEN,    /* a client connection was accepted */
	WHY_REC_CLOSE,   /* a client connection ended (reason EVT_R_NONE: the line does not say why) */
	WHY_REC_NOTE,    /* a line about one client that hints at the reason of its next close */
	WHY_REC_SHUTDOWN /* the broker stops: every connection still open ends here */
};

struct why_rec {
	enum why_rec_kind kind;
	int64_t ts_us;          /* as written; UTC when <zoned>, else the broker's local clock read as UTC */
	bool zoned;             /* the timestamp carried its UTC offset */
	bool has_ts;
	struct why_text id;     /* client id, absent when the line does not name one */
	struct why_text addr;   /* "ip:port" or "ip" */
	struct why_text user;
	struct why_text msg;    /* the sentence, without the timestamp */
	struct why_text detail; /* what an earlier line adds (AMPS: the transport disabled just before) */
	int keepalive;          /* seconds, -1 unknown */
	int level;              /* protocol level (3, 4, 5), 0 unknown */
	enum evt_reason reason; /* CLOSE: why; NOTE: the reason it hints at, or EVT_R_NONE */
	enum evt_party closed_by;
	enum evt_confidence confidence;
};

struct why_format {
	const char *name; /* "mosquitto", "amps", "hivemq", "emqx": --format and output */
	/* Whether <line> has this broker's shape (detection from content). */
	bool (*looks_like)(const char *line, size_t n);
	size_t state_size; /* bytes of zeroed state the caller provides to parse() */
	/* Its not_authorized means exactly that: the broker logs a failed
	 * authentication in other words. (mosquitto's "not authorised" covers
	 * both, and the wire's credentials then tell them apart.) */
	bool says_auth_apart;
	/* What to tell an operator whose log of this broker has no close line at all
	 * (the broker's default settings leave them out), or NULL. */
	const char *no_close_hint;
	/* Reads one line (no newline) into <r>; returns r->kind. */
	enum why_rec_kind (*parse)(void *state, const char *line, size_t n, struct why_rec *r);
};

extern const struct why_format why_format_mosquitto, why_format_amps, why_format_hivemq, why_format_emqx,
	why_format_rabbitmq;

/* The reader named <name>, or NULL. */
const struct why_format *why_format_find(const char *name);

/* What dates a syslog stamp, which has no year: the year and month (1-12)
 * the log was last written (its file's modification time). */
struct why_unwrap_ref {
	int year;
	unsigned month;
};

/* What why_unwrap() may add to a line: an ISO timestamp and ": ". */
#define WHY_UNWRAP_EXTRA 48

/* The line a broker wrote, from <line,n> as a log collector passed it on:
 * without ANSI colours, a `docker compose logs` "service  | " prefix, a
 * `docker logs -t` / `kubectl logs --timestamps` time before the broker's
 * own, or a syslog "TIME host tag[pid]: " header (a traditional "Mmm dd
 * HH:MM:SS" stamp dated by <ref>). A line with no time of the broker's own
 * gets the collector's as "TIME: line", mosquitto's shape. Writes into <out>
 * (<cap> at least n + WHY_UNWRAP_EXTRA) and returns the length; 0 when the
 * line carries none of these. (cli/why_unwrap.c) */
size_t why_unwrap(const char *line, size_t n, const struct why_unwrap_ref *ref, char *out, size_t cap);

/* The reader whose shape most of <n> sample lines have (at least one), or
 * NULL; <forced>, when not NULL, is the only one tried. <*wrapped> says
 * whether the lines have it only once why_unwrap() has taken a collector's
 * wrapping off (then every line is to be unwrapped before it is parsed).
 * <scratch> holds the longest line + WHY_UNWRAP_EXTRA bytes. */
const struct why_format *why_format_detect(const struct why_text *lines, size_t n, const struct why_format *forced,
					   const struct why_unwrap_ref *ref, char *scratch, size_t cap, bool *wrapped);

/* Sets <r> to an empty record of <kind> (no views, unknown numbers). */
void why_rec_clear(struct why_rec *r);

/* What every reader's split() records once a line has its broker's shape:
 * the timestamp read (<us>, <zoned>) and the message <msg,n> after it.
 * Returns true, for split() to return. */
bool why_rec_stamp(struct why_rec *r, int64_t us, bool zoned, const char *msg, size_t n);

/* ---- small helpers the readers share (cli/why_log.c) ---- */

/* A line that decides: sets <r>'s kind, reason, who closed and how sure, and
 * returns the kind, for a reader's parse() to return. */
enum why_rec_kind why_rec_decide(struct why_rec *r, enum why_rec_kind kind, enum evt_reason why, enum evt_party by,
				 enum evt_confidence conf);

/* "TIMESTAMP [level] rest" (EMQX, RabbitMQ: a lower-case level of at most 10
 * letters): the time read into <us>/<zoned>; returns the offset of <rest>,
 * 0 when the line does not start that way. */
size_t why_split_level(const char *line, size_t n, int64_t *us, bool *zoned);

/* Bounded copies into <dst> of <cap> bytes, NUL-terminated; a longer text is
 * cut (these are display fields). */
void why_copy(char *dst, size_t cap, const char *src);
void why_copyn(char *dst, size_t cap, const char *src, size_t n);

/* Whether <t> is exactly the NUL-terminated <s> (an absent text is ""). */
bool why_text_is(struct why_text t, const char *s);

/* Whether <s,n> starts with the NUL-terminated <prefix>. */
bool why_starts(const char *s, size_t n, const char *prefix);

/* The first occurrence of <needle> in <s,n>, or NULL. */
const char *why_find(const char *s, size_t n, const char *needle);

/* Case-insensitive: whether <s,n> contains <needle> (ASCII). */
bool why_contains_ci(const char *s, size_t n, const char *needle);

/* ---- timestamps (cli/why_time.c) ---- */

/* Parses a timestamp at the start of <s>: ISO 8601 "YYYY-MM-DD[T ]HH:MM:SS"
 * with an optional fraction ('.' or ',', any number of digits) and optional
 * zone ("Z", "+HH:MM", "+HHMM", "+HH"), or epoch seconds (9 to 11 digits), milliseconds (13) or microseconds (16).
 * Returns the bytes used (0: no timestamp); <*us> is microseconds since the
 * epoch, reading a zoneless time as UTC; <*zoned> says whether a zone was given. */
size_t why_time_parse(const char *s, size_t n, int64_t *us, bool *zoned);

/* Parses a --since/--until/--clock-skew style value: a timestamp (zoneless =
 * UTC) into <*us>. Returns false when it is not one. */
bool why_time_parse_arg(const char *s, int64_t *us);

/* Parses a duration "[+-]SECONDS[.frac]" or "[+-]HH:MM[:SS]" into <*us>. */
bool why_duration_parse(const char *s, int64_t *us);

#endif
