/* Private to sniff/packets.c and sniff/packets_json.c: the consumer's state
 * (overall, per flow and per flow direction) and the output calls that the
 * decoding side (packets.c) makes into the output side (packets_json.c). */
#ifndef WW_SNIFF_PACKETS_INTERNAL_H
#define WW_SNIFF_PACKETS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/engine.h"
#include "proto/amps.h"
#include "proto/mqtt.h"
#include "sniff/packets.h"
#include "sniff/tcp_stream.h"

#define RESYNC_PENDING 32 /* undecided resync candidates kept per direction */

struct pkt_dir {
	uint8_t *buf;          /* a partial packet, or bytes being scanned for sync */
	uint32_t len, cap;
	uint64_t skip;         /* body bytes of an oversized packet still to pass over */
	bool big_owed;         /* a packet_too_large line is due when the skip ends */
	uint8_t big_first;
	uint32_t big_remlen;
	bool started;          /* bytes (or a gap) have been seen */
	bool synced;           /* buf, if not empty, starts at a packet boundary */
	/* While not synced: buf offsets up to <scan_pos> have been judged; those
	 * in <pending> (ascending) could still start a packet. */
	uint32_t scan_pos;
	uint32_t pending[RESYNC_PENDING];
	uint8_t n_pending;
};

struct pkt_flow {
	struct mqtt_codec codec;
	struct pkt_dir d[2];
	uint32_t decoded;      /* packets decoded without error */
	bool tls;              /* the bytes are TLS records: not decoded */
	bool probing;          /* off the MQTT ports: MQTT only if the client opens with CONNECT */
	bool ignored;          /* probed and not MQTT */
	uint64_t packets, errors, lost;
	uint32_t counts[2][16];
	bool has_session;      /* <sess> was opened with the engine */
	bool queue_told;       /* the engine was told <queue_told_bytes> toward the client */
	uint64_t queue_told_bytes;
	bool amps;             /* on an --amps-port: AMPS framing (packets_amps.c), not MQTT */
	bool unframed;         /* AMPS: the bytes are not AMPS framing (TLS, HTTP, zlib): not read further */
	struct amps_codec acodec;  /* AMPS flows: the header syntax and the logon */
	struct session sess;
};

struct packets {
	struct packets_config cfg;
	uint64_t buffered;     /* buffer capacity held over all flows */
	struct packets_stats stats;
};

/* Writes the JSON line of one packet of <f> flowing <dir>, seen at <at>, at
 * protocol level <level>; nothing unless cfg.json. <d>'s error if it has one,
 * else the fields of <pkt>; <pkt> is NULL for a packet whose body was never
 * decoded, described by <first> and <remlen>. Failed writes are counted in
 * p->stats.write_errors. */
void packets_emit_packet(struct packets *p, const struct tcp_flow *f, enum proto_dir dir, uint8_t first,
			 uint32_t remlen, uint8_t level, const struct mqtt_packet *pkt, const struct proto_diag *d,
			 const struct tcp_when *at);

/* The line of one AMPS frame: <payload_len>, the header <h> (NULL if it did
 * not decode), <d>'s error if it has one. Nothing unless cfg.json. */
void packets_emit_amps(struct packets *p, const struct tcp_flow *f, enum proto_dir dir, uint32_t payload_len,
		       const struct amps_header *h, const struct proto_diag *d, const struct tcp_when *at);

/* packets.c's counting, session and buffer helpers, for packets_amps.c. */
void packets_count(struct packets *p, struct pkt_flow *pf, enum proto_dir dir, uint8_t first, bool ok);
struct session *packets_session(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf);
bool packets_buf_append(struct packets *p, struct pkt_dir *pd, const uint8_t *src, size_t n);
void packets_buf_consume(struct packets *p, struct pkt_dir *pd, uint32_t n);

/* packets_amps.c: the AMPS byte path of a flow (on_data, on_gap, and the
 * flow's end). */
void packets_amps_data(struct packets *p, struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
		       struct cursor data, const struct tcp_when *at);
void packets_amps_gap(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
		      uint64_t bytes, const struct tcp_when *at);
void packets_amps_settle(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			 const struct tcp_when *at);

/* Writes the line that ends flow <f>, from the counts in <pf>: a JSON flow
 * line with cfg.json, else the text summary line. */
void packets_emit_flow(struct packets *p, const struct tcp_flow *f, const struct pkt_flow *pf);

#endif
