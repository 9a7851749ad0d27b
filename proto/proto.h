/* The protocol interface: what a shell (proxy, sniff) and the engine need from
 * any broker protocol, MQTT today and AMPS beside it. A protocol provides an
 * incremental framer (packet boundaries in a byte stream), a decoder (one whole
 * frame into typed views) and protocol-neutral facts for the session engine.
 * Nothing here allocates or performs I/O. */
#ifndef WW_PROTO_PROTO_H
#define WW_PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cursor.h"

/* Results of every proto/ function. NEED_MORE is only ever returned by
 * framers; a decoder works on a frame the framer has already counted. */
enum proto_err {
	PROTO_OK = 0,
	PROTO_NEED_MORE,
	PROTO_E_MALFORMED, /* cannot be parsed as the spec says (MQTT 5: 0x81) */
	PROTO_E_PROTOCOL,  /* parsed, but not allowed here (MQTT 5: 0x82) */
	PROTO_E_TOO_LARGE, /* over the configured or announced maximum (0x95) */
	PROTO_E_VERSION,   /* protocol name or level we cannot speak (0x84) */
	PROTO_E_NOT_PROTO, /* these bytes are not this protocol at all */
	PROTO_E__COUNT
};

const char *proto_err_class_name(enum proto_err e);

/* Which protocol a connection speaks. */
enum proto_id { PROTO_ID_MQTT = 0, PROTO_ID_AMPS = 1 };

/* Which way a byte stream flows. */
enum proto_dir { PROTO_C2S = 0, PROTO_S2C = 1 };

/* The first failure a framer or decoder met. <name> is the stable violation
 * name from the protocol's error table ("connect_reserved_flag"), <field> the
 * field being read, <offset> its byte offset within the frame, <reason> the
 * wire reason code the protocol assigns to it (0 where none). */
struct proto_diag {
	enum proto_err cls;
	uint16_t code;       /* protocol-specific violation number (index in its table) */
	uint8_t reason;      /* e.g. the MQTT 5 reason code to disconnect with */
	const char *name;    /* static string */
	const char *field;   /* static string, may be NULL */
	uint32_t offset;
	struct cursor value; /* the offending bytes when a decoder names them (AMPS: an unknown
			      * command); a view into the frame, empty otherwise */
};

/* What a framer reports about one frame. */
struct proto_frame {
	uint64_t offset;   /* stream offset of the frame's first byte */
	uint32_t hdr_len;  /* bytes of header before the body */
	uint32_t body_len; /* bytes of body */
	uint8_t type;      /* protocol's packet type, for quick dispatch */
	uint8_t flags;     /* protocol's header flags */
};

static inline uint64_t proto_frame_len(const struct proto_frame *f)
{
	return (uint64_t)f->hdr_len + f->body_len;
}

/* Protocol-neutral facts about one decoded frame: all the session engine reads. */
enum proto_fact_kind {
	FACT_OTHER = 0,
	FACT_LOGON,        /* client asks to open a session (MQTT CONNECT, AMPS logon) */
	FACT_LOGON_ACK,    /* server answers it; <refused> says whether it said no */
	FACT_PUBLISH,      /* application message; <qos>, <packet_id> */
	FACT_PUB_ACK,      /* acknowledgement that ends an in-flight message */
	FACT_PUB_ACK_MID,  /* QoS 2 step that keeps the message in flight (PUBREC, PUBREL) */
	FACT_SUBSCRIBE,
	FACT_HEARTBEAT,    /* keep-alive request or answer */
	FACT_DISCONNECT,   /* an orderly goodbye, with <reason> */
	FACT_AUTH,
	FACT_NOOP,         /* carries nothing (an AMPS frame of length 0) */
};

struct proto_facts {
	enum proto_fact_kind kind;
	enum proto_id protocol;
	const char *type_name;   /* "CONNECT", "logon": the packet or command, static */
	uint8_t level;           /* LOGON: MQTT protocol level (3, 4, 5); 0 for AMPS */
	bool v3_form;            /* LOGON_ACK: an MQTT 3.1/3.1.1 return code */
	bool dup;                /* PUBLISH: a redelivery (MQTT DUP) */
	bool has_user;           /* LOGON: a user name field was present (may be empty) */
	bool refused;            /* LOGON_ACK: the server refused; DISCONNECT: reason is an error */
	bool has_reason;         /* <reason> was on the wire */
	uint8_t reason;          /* wire reason/return code */
	uint8_t qos;
	uint16_t packet_id;
	uint32_t heartbeat_s;    /* LOGON: the interval the client asks for; LOGON_ACK: server override (0 = none);
				  * HEARTBEAT: an interval the client starts here (AMPS "start,N"), 0 = a beat */
	uint32_t receive_max;    /* LOGON / LOGON_ACK: announced in-flight window (0 = not announced) */
	uint32_t max_packet;     /* LOGON / LOGON_ACK: announced maximum packet size (0 = not announced) */
	bool will;               /* LOGON: a Will message is registered; DISCONNECT: the Will is to be sent */
	struct cursor identity;  /* LOGON: client id; LOGON_ACK: assigned id if any */
	struct cursor user;      /* LOGON: user name */
	bool has_credentials;    /* LOGON: user name or password given */
	struct cursor text;      /* reason string, if any (AMPS: the ack's reason) */
	struct cursor cid;       /* AMPS: command id, for an ack that refuses this command */
};

/* For a listener that accepts either protocol: which one the first bytes of
 * a client stream <head> open. PROTO_OK with <id>; PROTO_NEED_MORE; or
 * PROTO_E_NOT_PROTO with <d> naming what they are instead (TLS, HTTP,
 * WebSocket, zlib: the AMPS table's names; else
 * "neither_mqtt_connect_nor_amps_frame"). proto_guess.c */
enum proto_err proto_guess(struct cursor head, enum proto_id *id, struct proto_diag *d);

#endif
