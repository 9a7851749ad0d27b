/* MQTT 3.1, 3.1.1 and 5.0: packet types, decoded views and the codec API.
 * The framer finds packet boundaries in a byte stream; the decoder turns one
 * whole packet into views into its bytes (zero-copy: every struct cursor below
 * points into the frame and stays valid until the caller consumes the frame);
 * the encoder writes what wirewarden injects. Nothing here allocates.
 * Specs: OASIS MQTT 3.1.1 (2014) and MQTT 5.0 (2019); IBM MQTT 3.1 (MQIsdp). */
#ifndef WW_PROTO_MQTT_H
#define WW_PROTO_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cursor.h"
#include "proto/proto.h"

enum mqtt_type {
	MQTT_T_RESERVED = 0,
	MQTT_T_CONNECT = 1,
	MQTT_T_CONNACK = 2,
	MQTT_T_PUBLISH = 3,
	MQTT_T_PUBACK = 4,
	MQTT_T_PUBREC = 5,
	MQTT_T_PUBREL = 6,
	MQTT_T_PUBCOMP = 7,
	MQTT_T_SUBSCRIBE = 8,
	MQTT_T_SUBACK = 9,
	MQTT_T_UNSUBSCRIBE = 10,
	MQTT_T_UNSUBACK = 11,
	MQTT_T_PINGREQ = 12,
	MQTT_T_PINGRESP = 13,
	MQTT_T_DISCONNECT = 14,
	MQTT_T_AUTH = 15,
};

/* Protocol levels as carried in CONNECT. 0 = not known yet (no CONNECT seen). */
enum mqtt_level { MQTT_LEVEL_UNKNOWN = 0, MQTT_LEVEL_31 = 3, MQTT_LEVEL_311 = 4, MQTT_LEVEL_5 = 5 };

#define MQTT_MAX_REMAINING_LEN 268435455u /* largest 4-byte Variable Byte Integer */

const char *mqtt_type_name(uint8_t type); /* "CONNECT", ...; "RESERVED" for 0 */

/* Violations: MQTT_E_<row> from mqtt_errors.def. */
enum mqtt_err {
#define X(id, name, cls, reason, spec) MQTT_E_##id,
#include "proto/mqtt_errors.def"
#undef X
	MQTT_E__COUNT
};

const char *mqtt_err_name(enum mqtt_err e);
enum proto_err mqtt_err_class(enum mqtt_err e);
uint8_t mqtt_err_reason(enum mqtt_err e);
const char *mqtt_err_spec(enum mqtt_err e);
/* Fills <d> for violation <e> in <field> at <offset>; returns the class. */
enum proto_err mqtt_fail(struct proto_diag *d, enum mqtt_err e, const char *field, uint32_t offset);

/* ---- Framer ------------------------------------------------------------ */

/* Incremental fixed-header reader. It consumes header bytes and counts body
 * bytes; it never copies, so the shell keeps the bytes (evbuffer, reassembly
 * buffer). Fed any slicing of a stream, it reports the same frames. */
struct mqtt_framer {
	uint32_t max_packet;  /* whole-packet cap; 0 = spec maximum */
	uint64_t offset;      /* stream bytes consumed so far */
	uint64_t frame_start; /* stream offset of the current frame */
	uint32_t body_len;
	uint32_t body_left;
	uint8_t first;        /* type and flags byte */
	uint8_t len_bytes;    /* Remaining Length bytes read so far */
	uint8_t state;        /* private: where in the frame we are */
	bool failed;          /* a header error was reported; the stream is lost */
};

void mqtt_framer_init(struct mqtt_framer *f, uint32_t max_packet);

/* Consumes bytes from <in>, at most up to the end of the current frame.
 * PROTO_OK: a frame ended; <fr> describes it (offset, header and body length).
 * PROTO_NEED_MORE: <in> is used up; if mqtt_framer_header_ready() the current
 *   frame's header is known (a shell can act on a large packet early).
 * PROTO_E_MALFORMED / PROTO_E_TOO_LARGE: bad fixed header; <d> says why; every
 *   later call returns the same error. */
enum proto_err mqtt_framer_feed(struct mqtt_framer *f, struct cursor *in, struct proto_frame *fr,
				struct proto_diag *d);

/* True once the fixed header of the current frame is known; <fr> gets it. */
bool mqtt_framer_header_ready(const struct mqtt_framer *f, struct proto_frame *fr);

/* Stateless variant for a contiguous buffer: looks at the start of <buf>.
 * PROTO_OK: a whole packet is there, <fr> describes it (offset 0).
 * PROTO_NEED_MORE: not yet (if the header is complete, <fr> has it).
 * PROTO_E_*: bad header. */
enum proto_err mqtt_frame_peek(struct cursor buf, uint32_t max_packet, struct proto_frame *fr,
			       struct proto_diag *d);

/* ---- Decoded packets ------------------------------------------------------ */

/* MQTT 5 property identifiers (spec 2.2.2.2). */
enum mqtt_prop_id {
	MQTT_P_PAYLOAD_FORMAT = 0x01,
	MQTT_P_MESSAGE_EXPIRY = 0x02,
	MQTT_P_CONTENT_TYPE = 0x03,
	MQTT_P_RESPONSE_TOPIC = 0x08,
	MQTT_P_CORRELATION_DATA = 0x09,
	MQTT_P_SUBSCRIPTION_ID = 0x0B,
	MQTT_P_SESSION_EXPIRY = 0x11,
	MQTT_P_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_P_SERVER_KEEP_ALIVE = 0x13,
	MQTT_P_AUTH_METHOD = 0x15,
	MQTT_P_AUTH_DATA = 0x16,
	MQTT_P_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_P_WILL_DELAY = 0x18,
	MQTT_P_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_P_RESPONSE_INFO = 0x1A,
	MQTT_P_SERVER_REFERENCE = 0x1C,
	MQTT_P_REASON_STRING = 0x1F,
	MQTT_P_RECEIVE_MAXIMUM = 0x21,
	MQTT_P_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_P_TOPIC_ALIAS = 0x23,
	MQTT_P_MAXIMUM_QOS = 0x24,
	MQTT_P_RETAIN_AVAILABLE = 0x25,
	MQTT_P_USER_PROPERTY = 0x26,
	MQTT_P_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_P_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_P_SUB_ID_AVAILABLE = 0x29,
	MQTT_P_SHARED_SUB_AVAILABLE = 0x2A,
};

#define MQTT_PROP_BIT(id) (UINT64_C(1) << (id))

const char *mqtt_prop_name(uint8_t id); /* "Receive Maximum"; NULL if unknown */

/* The decoded property block of one packet (or of a Will). <present> has bit
 * MQTT_PROP_BIT(id) for every property seen. Only the first User Property and
 * the first Subscription Identifier are kept as fields; <raw> views the whole
 * block for iteration with mqtt_props_next(). */
struct mqtt_props {
	uint64_t present;
	struct cursor raw;
	uint32_t message_expiry, session_expiry, will_delay, max_packet_size, subscription_id;
	uint16_t server_keep_alive, receive_maximum, topic_alias_maximum, topic_alias;
	uint8_t payload_format, request_problem_info, request_response_info, maximum_qos,
		retain_available, wildcard_sub_available, sub_id_available, shared_sub_available;
	uint16_t user_property_count, subscription_id_count;
	struct cursor content_type, response_topic, correlation_data, assigned_client_id, auth_method,
		auth_data, response_info, server_reference, reason_string;
	struct cursor user_key, user_value; /* the first User Property */
};

static inline bool mqtt_props_has(const struct mqtt_props *p, uint8_t id)
{
	return id < 64 && (p->present & MQTT_PROP_BIT(id)) != 0;
}

/* One property, for iteration. Numeric values are in <num>; strings, binary
 * data and the key of a User Property in <str>; the value of a pair in <str2>. */
struct mqtt_prop {
	uint8_t id;
	uint32_t num;
	struct cursor str, str2;
};

/* Walks <it> (initialised to props->raw, already validated by the decoder).
 * Returns false at the end. */
bool mqtt_props_next(struct cursor *it, struct mqtt_prop *out);

struct mqtt_connect {
	struct cursor protocol_name;
	uint8_t level;       /* 3, 4 or 5 (bridge bit removed) */
	bool bridge;         /* level had 0x80 set (mosquitto bridges) */
	uint8_t flags;
	bool clean_start, will, will_retain, has_username, has_password;
	uint8_t will_qos;
	uint16_t keep_alive_s;
	struct mqtt_props props;
	struct cursor client_id;
	struct mqtt_props will_props;
	struct cursor will_topic, will_payload, username, password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t code;        /* v3 return code or v5 reason code */
	bool v3_form;        /* 3.1.1 layout (also a 3.1.1 broker answering a v5 CONNECT) */
	struct mqtt_props props;
};

struct mqtt_publish {
	uint8_t qos;
	bool dup, retain;
	struct cursor topic;
	uint16_t packet_id;  /* 0 for QoS 0 */
	struct mqtt_props props;
	struct cursor payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct mqtt_ack {
	uint16_t packet_id;
	bool has_reason;     /* v5 reason code on the wire (absent = 0x00) */
	uint8_t reason;
	struct mqtt_props props;
};

/* SUBSCRIBE and UNSUBSCRIBE: <entries> views the payload; walk it with
 * mqtt_topic_list_next(). */
struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	struct cursor entries;
	uint16_t count;
};

/* SUBACK and UNSUBACK: one code per filter (none for a 3.1.1 UNSUBACK). */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	struct cursor codes;
};

struct mqtt_disconnect {
	bool has_reason;
	uint8_t reason;      /* 0x00 when absent */
	struct mqtt_props props;
};

struct mqtt_auth {
	bool has_reason;
	uint8_t reason;
	struct mqtt_props props;
};

struct mqtt_packet {
	uint8_t type;        /* enum mqtt_type */
	uint8_t flags;       /* low nibble of the first byte */
	uint8_t level;       /* protocol level it was decoded with */
	uint32_t remaining_len;
	uint32_t len;        /* whole packet, fixed header included */
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;
		struct mqtt_subscribe subscribe;   /* SUBSCRIBE, UNSUBSCRIBE */
		struct mqtt_suback suback;         /* SUBACK, UNSUBACK */
		struct mqtt_disconnect disconnect;
		struct mqtt_auth auth;
	} u;
};

/* Walks a SUBSCRIBE (<with_options> true) or UNSUBSCRIBE payload, already
 * validated by the decoder. Returns false at the end. */
bool mqtt_topic_list_next(struct cursor *it, bool with_options, struct cursor *filter, uint8_t *options);

/* ---- Decoder ------------------------------------------------------------ */

/* Per-connection codec state: the protocol level comes from the client's
 * CONNECT and is used for both directions. */
struct mqtt_codec {
	uint8_t level;          /* enum mqtt_level; UNKNOWN until CONNECT */
	uint8_t assumed_level;  /* used while level is UNKNOWN (mid-stream pickup) */
};

void mqtt_codec_init(struct mqtt_codec *c);

/* Decodes one whole packet <frame> (fixed header included) flowing <dir>.
 * PROTO_OK: <out> holds views into <frame>, valid while <frame>'s bytes are.
 *   A client CONNECT sets c->level.
 * PROTO_E_*: <d> names the first violation (field, offset within the frame,
 *   the MQTT 5 reason code for it). Never PROTO_NEED_MORE: a frame shorter
 *   than its Remaining Length is malformed here. */
enum proto_err mqtt_decode(struct mqtt_codec *c, enum proto_dir dir, struct cursor frame,
			   struct mqtt_packet *out, struct proto_diag *d);

/* The same for a frame of which only a prefix is at hand (a shell streaming a
 * large PUBLISH): with the whole frame in <prefix>, as mqtt_decode(). Else only
 * a PUBLISH decodes, its payload view cut at the end of the prefix (out->len
 * is still the whole packet); any other type, or a prefix that ends inside the
 * PUBLISH variable header, gives PROTO_NEED_MORE. */
enum proto_err mqtt_decode_prefix(struct mqtt_codec *c, enum proto_dir dir, struct cursor prefix,
				  struct mqtt_packet *out, struct proto_diag *d);

/* Protocol-neutral facts of a decoded packet, for the session engine. */
void mqtt_packet_facts(const struct mqtt_packet *pkt, struct proto_facts *out);

/* UTF-8 as MQTT wants it: well-formed, no surrogates, no U+0000 [MQTT-1.5.4]. */
enum mqtt_err mqtt_utf8_check(struct cursor s);

/* ---- Encoder ------------------------------------------------------------ */

/* Each writes one packet into <buf> of <cap> bytes and returns its length, or
 * 0 if it does not fit. Strings longer than the protocol allows are cut. */

/* DISCONNECT: a v5 one with <reason> and, if <reason_string> is not NULL, a
 * Reason String; at other levels the two-byte 3.1.1 DISCONNECT (a server has
 * no DISCONNECT to send before 5.0: callers close instead). */
size_t mqtt_encode_disconnect(uint8_t level, uint8_t reason, const char *reason_string, uint8_t *buf, size_t cap);

/* CONNACK refusing (or accepting) a connection. <v5_reason> is a v5 reason code;
 * for 3.1 and 3.1.1 it is mapped with mqtt_reason_to_v3_connack(). */
size_t mqtt_encode_connack(uint8_t level, bool session_present, uint8_t v5_reason, const char *reason_string,
			   uint8_t *buf, size_t cap);

/* ---- Reason codes --------------------------------------------------------- */

/* v5 reason code names as the spec words them ("Keep Alive timeout"); the name
 * depends on the packet for 0x00-0x02. NULL if the code is not defined. */
const char *mqtt_reason_name(uint8_t code, uint8_t packet_type);
/* True if <code> may appear in a <packet_type> (spec 2.4 table). */
bool mqtt_reason_allowed(uint8_t code, uint8_t packet_type);
/* 3.1/3.1.1 CONNACK return code names (0-5); NULL above. */
const char *mqtt_v3_connack_name(uint8_t rc);
/* The v3 return code closest to a v5 CONNACK reason (0x86 -> 4, ...). */
uint8_t mqtt_reason_to_v3_connack(uint8_t v5_reason);
/* A snake_case reason name shared with the event catalog ("keep_alive_timeout"). */
const char *mqtt_reason_slug(uint8_t code, uint8_t packet_type);

#endif
