/* 60East AMPS: framing, headers and the codec API, beside MQTT (proto/mqtt.h).
 * What is known of the wire is in ../shared/protocols/amps.md (public
 * documentation, not a spec): a 4-byte big-endian length, then a payload;
 * the payload is a header (a flat JSON object for the `amps`/json protocol,
 * tag=value fields for the legacy fix and nvfix protocols) and the body up to
 * the end of the frame. The framer finds frame boundaries and recognises
 * streams that are not AMPS framing at all; the decoder turns one payload into
 * views into its bytes (zero-copy: valid while the frame's bytes are); the
 * encoder writes what wirewarden injects. Nothing here allocates. */
#ifndef WW_PROTO_AMPS_H
#define WW_PROTO_AMPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cursor.h"
#include "proto/proto.h"

#define AMPS_LEN_BYTES 4u
#define AMPS_MAX_FRAME_DEFAULT (16u << 20)  /* payload cap when none is configured */
#define AMPS_LEN_CORRUPT 0x40000000u         /* 1 GiB: clients call a stream corrupt at or past it */

/* Violations: AMPS_E_<row> from amps_errors.def. */
enum amps_err {
#define X(id, name, cls, spec) AMPS_E_##id,
#include "proto/amps_errors.def"
#undef X
	AMPS_E__COUNT
};

const char *amps_err_name(enum amps_err e);   /* stable snake_case name; "invalid" out of range */
enum proto_err amps_err_class(enum amps_err e);
const char *amps_err_spec(enum amps_err e);   /* where the rule comes from */
/* Fills <d> for violation <e> in <field> at <offset>; returns the class. */
enum proto_err amps_fail(struct proto_diag *d, enum amps_err e, const char *field, uint32_t offset);

/* ---- Commands ------------------------------------------------------------ */

enum amps_cmd {
	AMPS_CMD_NONE = 0,        /* no command field (a sow record, a header without `c`) */
	AMPS_CMD_NOOP,            /* a frame of length 0 */
	AMPS_CMD_UNKNOWN,         /* a `c` we do not know: AMPS closes ("unknown command") */
	AMPS_CMD_LOGON,
	AMPS_CMD_HEARTBEAT,
	AMPS_CMD_PUBLISH,         /* publish, p */
	AMPS_CMD_DELTA_PUBLISH,
	AMPS_CMD_SUBSCRIBE,
	AMPS_CMD_DELTA_SUBSCRIBE,
	AMPS_CMD_SOW,
	AMPS_CMD_SOW_AND_SUBSCRIBE,
	AMPS_CMD_SOW_AND_DELTA_SUBSCRIBE,
	AMPS_CMD_UNSUBSCRIBE,
	AMPS_CMD_SOW_DELETE,
	AMPS_CMD_FLUSH,
	AMPS_CMD_ACK,
	AMPS_CMD_START_TIMER,
	AMPS_CMD_STOP_TIMER,
	AMPS_CMD_OOF,             /* server: out of focus */
	AMPS_CMD_GROUP_BEGIN,     /* server: a sow result starts */
	AMPS_CMD_GROUP_END,
	AMPS_CMD__COUNT
};

const char *amps_cmd_name(enum amps_cmd c);            /* "logon"; "?" out of range */
enum amps_cmd amps_cmd_from_view(struct cursor v);     /* both spellings ("p", "publish"); UNKNOWN else */

/* Which header syntax a connection speaks; chosen per server port, nothing on
 * the wire announces it, so AUTO looks at each payload's first byte. */
enum amps_wire { AMPS_WIRE_AUTO = 0, AMPS_WIRE_JSON, AMPS_WIRE_FIX, AMPS_WIRE_NVFIX };

/* ---- Framer -------------------------------------------------------------- */

/* Incremental length-prefix reader. It consumes the 4 length bytes and counts
 * payload bytes; it never copies. Fed any slicing of a stream, it reports the
 * same frames. A length of 0 is a frame of its own (hdr_len 4, body_len 0),
 * reported so that shells keep byte accounting simple; decode gives NOOP.
 * On the first frame of a stream it recognises bytes that are not AMPS
 * framing (TLS, HTTP, a zlib stream, text) and fails with PROTO_E_NOT_PROTO. */
struct amps_framer {
	uint32_t max_frame;   /* payload cap; 0 = AMPS_MAX_FRAME_DEFAULT */
	uint64_t offset;      /* stream bytes consumed so far */
	uint64_t frame_start; /* stream offset of the current frame */
	uint32_t body_len, body_left;
	uint8_t len_bytes;    /* length bytes read so far (0..4) */
	uint8_t lenbuf[4];
	uint8_t state;        /* private */
	bool failed;          /* an error was reported; the stream is lost */
	uint64_t frames;      /* frames completed */
};

void amps_framer_init(struct amps_framer *f, uint32_t max_frame);

/* As mqtt_framer_feed(): PROTO_OK with <fr> when a frame ended (fr->type is 0:
 * the command is the decoder's business), PROTO_NEED_MORE when <in> ran dry,
 * PROTO_E_TOO_LARGE (over max_frame), PROTO_E_MALFORMED (length >= 1 GiB) or
 * PROTO_E_NOT_PROTO (first bytes are not AMPS framing), sticky. */
enum proto_err amps_framer_feed(struct amps_framer *f, struct cursor *in, struct proto_frame *fr,
				struct proto_diag *d);

/* True once the length of the current frame is known; <fr> gets it. */
bool amps_framer_header_ready(const struct amps_framer *f, struct proto_frame *fr);

/* Stateless variant for a contiguous buffer holding a stream from frame
 * <first> on (true: apply the first-frame recognition). PROTO_OK: a whole
 * frame is there (<fr>, offset 0); PROTO_NEED_MORE: not yet (<fr> is set once
 * the 4 length bytes are); PROTO_E_*: as the framer. */
enum proto_err amps_frame_peek(struct cursor buf, uint32_t max_frame, bool first, struct proto_frame *fr,
			       struct proto_diag *d);

/* What the first bytes of a stream are. AMPS_SEEN_NEED_MORE until enough has
 * arrived to tell (at most 4 bytes for all but HTTP, whose request line and
 * headers are looked for in <head>). */
enum amps_seen {
	AMPS_SEEN_NEED_MORE = 0,
	AMPS_SEEN_AMPS,           /* a plausible length prefix */
	AMPS_SEEN_TLS,            /* a TLS record (ClientHello): tcps:// on a plain port */
	AMPS_SEEN_HTTP,           /* an HTTP request: http_preflight */
	AMPS_SEEN_WEBSOCKET,      /* an HTTP upgrade to websocket: a WebSocket transport */
	AMPS_SEEN_ZLIB,           /* a zlib/deflate stream: compression=zlib */
	AMPS_SEEN_OTHER,          /* none of these, and not framing either */
};
/* Classifies <head>, the first bytes of a client stream (any amount). With
 * <d>, a verdict other than AMPS fills it (PROTO_E_NOT_PROTO, the error name).
 * For HTTP, <http_len> (may be NULL) gets the length of the request up to and
 * including its blank line once it is in <head> (0 before). */
enum amps_seen amps_detect(struct cursor head, uint32_t max_frame, uint32_t *http_len, struct proto_diag *d);

/* ---- Decoded headers ------------------------------------------------------ */

enum amps_hb_op { AMPS_HB_NONE = 0, AMPS_HB_START, AMPS_HB_BEAT, AMPS_HB_STOP };
enum amps_status { AMPS_STATUS_NONE = 0, AMPS_STATUS_SUCCESS, AMPS_STATUS_FAILURE, AMPS_STATUS_RETRY,
		   AMPS_STATUS_OTHER };

/* Bits of amps_header.present, one per field kept. */
enum amps_field {
	AMPS_F_COMMAND, AMPS_F_CID, AMPS_F_TOPIC, AMPS_F_CLIENT_NAME, AMPS_F_USER_ID, AMPS_F_PASSWORD,
	AMPS_F_ACK_TYPE, AMPS_F_STATUS, AMPS_F_REASON, AMPS_F_VERSION, AMPS_F_OPTIONS, AMPS_F_SUB_ID,
	AMPS_F_SEQ, AMPS_F_BOOKMARK, AMPS_F_FILTER, AMPS_F_LEN, AMPS_F_SOW_KEY, AMPS_F_CORRELATION,
	AMPS_F_BATCH_SIZE, AMPS_F_QUERY_ID,
	AMPS_F__COUNT
};
#define AMPS_HAS(h, f) (((h)->present >> (f)) & 1u)

/* One header. Views point at the value's bytes in the frame: a JSON string
 * without its quotes and still escaped (bit <f> of <escaped> says so; see
 * amps_json_unescape()), a JSON number, true, false or null as written, a fix
 * value between '=' and its separator. */
struct amps_header {
	enum amps_wire wire;      /* how this header was written */
	enum amps_cmd cmd;
	uint32_t present;         /* AMPS_F_* bits */
	uint32_t escaped;         /* AMPS_F_* bits of views that hold backslash escapes */
	struct cursor f[AMPS_F__COUNT];
	enum amps_status status;  /* from f[AMPS_F_STATUS] */
	enum amps_hb_op hb_op;    /* heartbeat: from f[AMPS_F_OPTIONS] ("start,N", "beat", "stop") */
	uint32_t hb_interval_s;   /* heartbeat start: N */
	bool logon_ack;           /* the server's ack to this connection's logon (amps_decode() tells) */
	uint32_t hdr_len;         /* payload bytes of the header (body starts there) */
	struct cursor body;       /* the rest of the payload */
};

/* A record of a `sow` batch: its own header (l body length, k sow key,
 * x correlation id) and l bytes of body. */
struct amps_sow_record {
	struct amps_header hdr;
	struct cursor data;
};

/* ---- Decoder ------------------------------------------------------------- */

/* Per-connection state: the header syntax (fixed by configuration, or learnt
 * from the first payload under AUTO), and the logon, so that the server's ack
 * to it can be told from other acks. */
struct amps_codec {
	enum amps_wire wire;
	bool logon_seen;          /* the client sent logon */
	bool logon_answered;      /* the server's ack to it came */
	uint8_t logon_cid_len;
	char logon_cid[32];       /* the logon's cid (escaped form), cut */
};

void amps_codec_init(struct amps_codec *c, enum amps_wire wire);

/* Decodes one payload <payload> (the frame after its 4 length bytes; empty for
 * a no-op) flowing <dir>. PROTO_OK: <out> holds views into <payload>.
 * PROTO_E_MALFORMED: not a header (bad JSON, a nested value, a truncated
 * string, a fix field without '='); PROTO_E_PROTOCOL: a header with an unknown
 * command (out->cmd is AMPS_CMD_UNKNOWN and f[AMPS_F_COMMAND] holds it). */
enum proto_err amps_decode(struct amps_codec *c, enum proto_dir dir, struct cursor payload, struct amps_header *out,
			   struct proto_diag *d);

/* The two header syntaxes on their own (the decoder picks one). <payload> is
 * the whole payload; on success out->hdr_len and out->body are set. */
enum proto_err amps_json_header(struct cursor payload, struct amps_header *out, struct proto_diag *d);
enum proto_err amps_fix_header(struct cursor payload, bool nvfix, struct amps_header *out, struct proto_diag *d);

/* Walks the records of a `sow` batch: <it> starts as the batch's body.
 * PROTO_OK with <rec>; PROTO_NEED_MORE at the end (nothing left); PROTO_E_* on
 * a record header that is bad or a length past the end. */
enum proto_err amps_sow_next(struct cursor *it, struct amps_sow_record *rec, struct proto_diag *d);

/* Writes the unescaped JSON string <v> into <buf> (<cap> bytes, NUL added);
 * returns its length, or -1 if it does not fit or an escape is bad. \uXXXX is
 * written as UTF-8 (surrogate pairs joined). */
int amps_json_unescape(struct cursor v, char *buf, size_t cap);

/* Parses a decimal unsigned number view (JSON number or fix value). */
bool amps_view_u64(struct cursor v, uint64_t *out);

/* Protocol-neutral facts of a decoded header, for the session engine:
 * logon -> LOGON (identity client_name, user user_id); the server's ack to the
 * logon -> LOGON_ACK (refused on status failure, text = reason); publish ->
 * PUBLISH; heartbeat -> HEARTBEAT (heartbeat_s = N on "start,N"). <c> is the
 * codec that decoded <h> (it knows the logon's cid). */
void amps_header_facts(const struct amps_codec *c, enum proto_dir dir, const struct amps_header *h,
		       struct proto_facts *out);

/* ---- Encoder ------------------------------------------------------------- */

/* Each writes one whole frame (length prefix included, json syntax) into <buf>
 * of <cap> bytes and returns its length, or 0 if it does not fit. Strings are
 * JSON-escaped. */

/* The ack refusing a logon: {"c":"ack","a":"processed","cid":<cid>,
 * "status":"failure","reason":<reason>}; <cid> may be NULL. */
size_t amps_encode_failure_ack(const char *cid, size_t cid_len, const char *reason, uint8_t *buf, size_t cap);

/* A heartbeat from the server side: {"c":"heartbeat"}. */
size_t amps_encode_heartbeat(uint8_t *buf, size_t cap);

#endif
