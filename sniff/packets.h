/* MQTT packets out of reassembled TCP bytes, for `wirewarden sniff`. It is a
 * consumer of sniff/tcp_stream.c: per flow direction it frames the delivered
 * bytes (a bounded buffer holds a packet spread over segments), decodes each
 * packet with the proto/ codec, and writes one JSON line per packet (decoded
 * or not) and one per flow; or, in summary mode, one text line per flow. After
 * a gap, or on a flow picked up mid-stream, it resynchronises on a plausible
 * fixed header before decoding. It knows nothing of capture files or links. */
#ifndef WW_SNIFF_PACKETS_H
#define WW_SNIFF_PACKETS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sniff/tcp_stream.h"

#define PACKETS_DEFAULT_MAX_PACKET (1u << 20)

struct engine;

struct packets_config {
	FILE *out;                 /* where lines go; not closed */
	bool quiet;                /* no packet or flow lines at all (verdicts only) */
	struct engine *eng;        /* when set, every flow is a session of this engine (verdicts) */
	bool json;                 /* true: a JSON line per packet and per flow; false: a text line per flow */
	uint32_t max_packet;       /* whole-packet cap; bigger ones are reported and skipped; 0 = 1 MiB */
	uint64_t max_buffered;     /* partial-packet bytes buffered over all flows; 0 = 256 MiB */
	uint16_t ports[TCP_STREAM_MAX_PORTS]; /* flows with an endpoint on one of these are decoded */
	size_t n_ports;
	uint16_t amps_ports[TCP_STREAM_MAX_PORTS]; /* ... as AMPS on these (also listed in <ports>) */
	size_t n_amps_ports;
};

struct packets_stats {
	uint64_t flows;       /* flows decoded as MQTT */
	uint64_t packets;     /* lines written for packets, errors included */
	uint64_t errors;      /* packets the decoder refused */
	uint64_t too_large;   /* packets over max_packet, skipped */
	uint64_t resyncs;     /* times a direction had to look for a packet boundary */
	uint64_t dropped;     /* bytes skipped while resynchronising */
	uint64_t write_errors;
};

struct packets; /* owned by the caller of packets_new() */

/* Creates the consumer; <cfg> is copied. NULL when out of memory. */
struct packets *packets_new(const struct packets_config *cfg);

/* Fills <ops> with the callbacks that connect a tcp_stream table to <p>. The
 * table must be finished or freed before packets_free(<p>). */
void packets_stream_ops(struct packets *p, struct tcp_stream_ops *ops);

const struct packets_stats *packets_stats(const struct packets *p);

/* Frees <p>; packets_free(NULL) does nothing. */
void packets_free(struct packets *p);

#endif
