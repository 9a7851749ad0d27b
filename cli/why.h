/* `wirewarden why`: the state shared by its parts. Each source gives sessions
 * (one connection as that source saw it); the join groups the sessions that
 * are one connection into a story; the output prints stories.
 *   why.c          options, file kinds, the run
 *   why_wire.c     captures (through the sniffer) and wirewarden event logs
 *   why_broker.c   broker logs: records -> sessions, notes and context lines
 *   why_lines.c    bounded streaming line reader
 *   why_join.c     clock offsets, the join, take-over storm groups
 *   why_print.c    terminal timeline and JSON
 *   why_summary.c  --summary counts
 *   why_log*.c     one parser per broker log format (why_log.h) */
#ifndef WW_CLI_WHY_H
#define WW_CLI_WHY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/why_log.h"

#define WHY_MAX_SESSIONS 100000
#define WHY_MAX_NOTES 20000
#define WHY_EVIDENCE 8
#define WHY_TEXT 232
#define WHY_DISAGREE 512
#define WHY_GROUPS 5 /* one per broker log format: its files share one clock and one session table */

struct why_session {
	int64_t start_us, end_us;         /* -1 unknown; on the wire's clock (broker logs: offset applied) */
	int64_t log_start_us, log_end_us; /* broker logs: as written */
	char client[64], broker[64], client_id[160], username[64];
	char reason[48], closed_by[16], confidence[16], id[8];
	char evidence[WHY_EVIDENCE][WHY_TEXT];
	unsigned n_evidence, n_more;
	const char *source, *source_end; /* file it began in, and where it ended when another (rotated log) */
	const char *kind;                /* "capture", "event log", "mosquitto log", ... */
	int group;                       /* broker log format index, -1 for the wire */
	bool zoned;                      /* broker log times carried their zone */
	bool open;                       /* broker log: no close line (yet) */
	bool storm;                      /* an engine take-over storm entry, not a session */
	bool anonymous;                  /* broker log: a close naming only an address (a refused CONNECT);
	                                    shown only when a source that knows the client joins it */
	long long count;
	int keepalive;
	int story;
};

struct why_note {
	int64_t ts_us; /* as written */
	char client_id[160], addr[64];
	char text[WHY_TEXT];
	enum evt_reason hint;
	enum evt_party by;
	enum evt_confidence conf;
	const char *source, *kind;
	int group;
	bool used;
};

/* --summary reads without keeping sessions: the latest hint per client id
 * (a fixed table, newest wins a slot) stands in for the notes. */
#define WHY_HINTS 4096
struct why_hint {
	char id[96];
	int64_t ts_us;
	enum evt_reason reason;
};

struct why_group {
	const struct why_format *fmt;
	void *state;
	bool used, zoned_seen, zoneless_seen;
	int64_t offset_us;
	char offset_how[200];
	int64_t last_ts;
	size_t closes; /* close lines read, of any client: none at all says the log leaves them out */
	/* open sessions by client id: a small chained hash over indexes into why.s */
	int *open_head;      /* WHY_OPEN_BUCKETS heads, -1 empty */
	int *open_next;      /* per session index, grows with why.s */
	size_t open_next_cap;
	struct why_hint *hints;
};

struct why_story {
	int member[8]; /* indexes into why.s; member[0] gives the headline */
	unsigned n;
	int64_t start_us, end_us;
	int primary;
	char disagree[2][WHY_DISAGREE];
	unsigned n_disagree;
	int group_of; /* -1, or the storm group it was folded into */
	bool by_id_only; /* joined although the sources saw different ip:ports (a proxy or NAT between them) */
};

/* A take-over storm: several sessions of one client id taken over in a row,
 * shown as one entry. */
struct why_storm {
	char client_id[160];
	int64_t start_us, end_us;
	long long count;
	const char *sources[6];
	const char *kinds[6];
	unsigned n_sources;
	char addrs[4][64];
	unsigned n_addrs, n_addrs_more;
};

struct why_summary;

struct why {
	const char *pattern;
	bool by_addr;
	char needle[160]; /* literal text an unknown line must contain to be kept as context */
	bool summary;
	int64_t since_us, until_us; /* INT64_MIN / INT64_MAX: no bound */
	bool skew_given;
	int64_t skew_us;
	struct why_session *s;
	size_t n, cap, dropped;
	struct why_note *notes;
	size_t n_notes, notes_dropped;
	struct why_group groups[WHY_GROUPS];
	struct why_story *stories;
	size_t n_stories;
	struct why_storm *storms;
	size_t n_storms;
	struct why_summary *sum;
	const char *source, *kind;
	size_t long_lines;
	size_t n_anonymous;
};

/* ---- why.c ---- */
bool why_matches(const struct why *w, const char *client_id, size_t id_len, const char *addr, size_t addr_len);
struct why_session *why_add(struct why *w);
void why_evidence(struct why_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- why_wire.c ---- */
int why_read_capture(struct why *w, const char *path, const uint16_t *ports, size_t n_ports, const uint16_t *amps_ports,
		     size_t n_amps_ports, char *err, size_t errlen);
int why_read_events(struct why *w, const char *path);

/* ---- why_lines.c ---- */
struct why_lines {
	int fd;
	char *buf;
	size_t cap, len, off;
	bool eof, skipping;
	size_t long_lines;
};
int why_lines_open(struct why_lines *l, const char *path, size_t cap);
int why_lines_next(struct why_lines *l, struct why_text *line); /* 1 a line, 0 end, -1 read error */
void why_lines_close(struct why_lines *l);

/* ---- why_broker.c ---- */
/* The first timestamp of <path> read by <fmt> (to order rotated files), INT64_MIN if none.
 * <ref> not NULL: the file's lines are wrapped by a log collector (why_unwrap()). */
int64_t why_log_first_ts(const char *path, const struct why_format *fmt, const struct why_unwrap_ref *ref);
int why_read_log(struct why *w, const char *path, const struct why_format *fmt, int group,
		 const struct why_unwrap_ref *ref);
void why_logs_finish(struct why *w); /* sessions still open, notes onto sessions */
void why_groups_free(struct why *w);

/* ---- why_join.c ---- */
void why_join(struct why *w);
/* Whether reasons <a> and <b> tell the same story: equal, one a finer name
 * for the other (protocol_error and protocol_error_second_connect share 0x82),
 * or a client DISCONNECT with and without its Will. */
bool why_reasons_agree(const char *a, const char *b);
/* Whether <finer> is a finer name than <general> for the same thing. */
bool why_reason_refines(const char *finer, const char *general);

/* ---- why_print.c ---- */
void why_print_text(const struct why *w, FILE *out);
void why_print_json(const struct why *w, FILE *out);
void why_format_time(int64_t us, char *buf, size_t cap);

/* ---- why_summary.c ---- */
struct why_summary *why_summary_new(void);
void why_summary_count(struct why_summary *sum, const char *source, const char *kind, const char *client_id,
		       size_t id_len, enum evt_reason reason);
void why_summary_print(const struct why_summary *sum, bool json, FILE *out);
void why_summary_free(struct why_summary *sum);

#endif
