/* TCP flows and in-order byte delivery for the sniffer. A table keyed by the
 * 4-tuple (IPv4 or IPv6) numbers flows in order of first appearance (like
 * tshark's tcp.stream), decides which side is the client, and per direction
 * delivers payload bytes in sequence order: exact retransmissions and the
 * already-delivered part of overlaps are dropped, out-of-order segments are
 * held (bounded per flow and overall) until the hole fills, and a hole that
 * cannot fill any more is reported as a gap of N bytes, after which delivery
 * continues. FIN and RST are recorded per side; a FIN the capture missed is
 * recognised when the other side's FIN or RST acknowledges it. Per side the
 * advertised receive window is followed (scaled per RFC 7323 when both SYNs
 * were seen): zero-window periods, the peer's window probes during them, and
 * the bytes sent toward that side it has not acknowledged yet, which is the
 * network's view of how far a reader is behind. Memory is bounded: a cap on
 * live flows (the least recently active one is ended to make room), idle
 * expiry, and caps on held bytes. A connection that closed (a RST, or FINs
 * both ways) ends settle_us of capture time after that, so that a capture
 * of any length holds only the flows that are open: the wait lets a
 * retransmitted FIN or the final ACK land in the flow they belong to, and
 * for tomb_us after that the ended flow's 4-tuple is still known, so a
 * later stray segment is counted as late (stats.late) instead of starting a
 * flow of its own (a new SYN on the 4-tuple does start one). What the bytes mean is the consumer's job
 * (sniff/packets.c). Specs: RFC 9293 (sequence space 3.4, window 3.8.6 and
 * zero-window probing 3.8.6.1), RFC 7323 (window scale). */
#ifndef WW_SNIFF_TCP_STREAM_H
#define WW_SNIFF_TCP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cursor.h"
#include "proto/proto.h"
#include "sniff/link.h"

#define TCP_STREAM_MAX_PORTS 32

struct tcp_stream_config {
	uint32_t max_flows;         /* live flows at once; 0 = 65536 */
	uint32_t max_held_per_flow; /* out-of-order bytes held per flow; 0 = 1 MiB */
	uint64_t max_held_total;    /* out-of-order bytes held over all flows; 0 = 64 MiB */
	int64_t idle_timeout_us;    /* a flow silent this long (capture time) ends; 0 = 1 hour */
	int64_t settle_us;          /* a closed flow ends this long after its close (see below); 0 = 2 s */
	int64_t tomb_us;            /* an ended flow's 4-tuple is remembered this long; 0 = 30 s */
	uint16_t ports[TCP_STREAM_MAX_PORTS]; /* server ports for the client/server rule */
	size_t n_ports;
};

/* How the server side of a flow was decided, strongest first. */
enum tcp_server_by {
	TCP_BY_SYN = 0, /* receiver of a bare SYN */
	TCP_BY_SYNACK,  /* sender of a SYN+ACK */
	TCP_BY_PORT,    /* the endpoint on a configured port */
	TCP_BY_FIRST,   /* none of those: receiver of the first segment seen */
};

const char *tcp_server_by_name(enum tcp_server_by b); /* "syn", "synack", "port", "first" */

struct tcp_endpoint {
	struct link_addr addr;
	uint16_t port;
};

/* Where in the capture something happened. */
struct tcp_when {
	uint64_t frame;
	int64_t ts_us;
};

/* One held out-of-order segment; private to tcp_stream.c. */
struct tcp_seg;

/* One direction's reassembly state. Read-only for consumers. */
struct tcp_half {
	bool started;          /* next_seq is known (SYN seen, or first payload byte) */
	bool syn;              /* this side's SYN was seen */
	bool fin;              /* this side's FIN was seen; fin_seq is its sequence number */
	uint32_t isn, next_seq, fin_seq;
	uint64_t delivered;    /* payload bytes handed to the consumer */
	uint64_t fin_frame, rst_frame; /* first FIN / RST sent by this side; 0 = none */
	struct tcp_seg *held;  /* out-of-order segments, sorted by sequence */
	uint32_t held_segs;
	bool fin_inferred;     /* the FIN was not captured: the peer's FIN or RST acknowledged it */
	/* The peer acknowledged bytes of this side that the capture has not
	 * shown: lost, or reordered behind the ACK by the capture. Given up as a
	 * gap after a grace (in segments of the flow and capture time), or at
	 * once when the connection closes. */
	bool ack_hole;
	uint32_t ack_hole_lim, ack_hole_segs;
	int64_t ack_hole_us;
	/* What this side sent and acknowledged. */
	bool sent_seen;        /* <snd_max> is valid */
	uint32_t snd_max;      /* one past the highest sequence number this side sent (a FIN counts) */
	bool ack_seen;         /* <acked> is valid */
	uint32_t acked;        /* the latest acknowledgment number this side sent */
	uint32_t wl1;          /* sequence number of the segment that carried it */
	/* The receive window this side advertises (RFC 9293 3.8.6). */
	int8_t wscale;         /* from this side's SYN, -1 = none */
	uint64_t window;       /* latest advertisement in bytes: scaled when both SYNs agreed on scaling */
	bool zero_window;      /* the latest advertisement was 0: this side's receive buffer is full */
	struct tcp_when zero_since; /* when the current zero-window period began */
	uint32_t zero_periods; /* zero-window periods begun */
	uint32_t probes;       /* the peer's window probes in the current (or last) zero-window period */
	int64_t zero_total_us; /* time at zero window in periods that have ended */
};

/* A flow. The table owns it and frees it after tcp_stream_ops.on_end; the
 * consumer owns <user> and must release it in on_end. Indexed by enum
 * proto_dir: half[PROTO_C2S] is what the client sends. */
struct tcp_flow {
	uint64_t index;          /* 0-based, in order of first appearance */
	struct tcp_endpoint client, server;
	enum tcp_server_by server_by;
	bool syn_seen;           /* the handshake's SYN or SYN+ACK is in the capture */
	bool deliver;            /* the consumer wants this flow's bytes */
	struct tcp_when first, last;
	struct tcp_half half[2];
	/* The first FIN or RST of the connection, either side. */
	bool closed;
	bool closed_rst;         /* it was a RST (else a FIN) */
	enum proto_dir closed_side;
	uint64_t closed_frame;
	/* The close waits while a hole the peer acknowledged may still be
	 * filled by a late segment, so that on_close sees every byte (or every
	 * loss) before the FIN or RST. */
	bool close_pending;
	struct tcp_when close_at;
	uint32_t gaps;           /* holes reported, both directions */
	uint64_t gap_bytes;
	uint32_t held_bytes;     /* out-of-order bytes held now, both directions */
	void *user;              /* the consumer's per-flow state */
	/* private: table links */
	struct tcp_flow *hnext, *lru_prev, *lru_next, *all_prev, *all_next;
	uint64_t hash;
	/* private: ending while the capture goes on (see tcp_stream_segment) */
	int64_t end_at;          /* capture time at which it ends (settling) or is forgotten (tomb); 0 = neither */
	bool tomb;               /* ended: only its 4-tuple is kept, so that late segments are known as such */
	struct tcp_flow *q_prev, *q_next; /* the settling queue or the tombstone queue */
};

/* Called once per new flow: return true to have its payload reassembled and
 * delivered (false: only the flow record and FIN/RST are kept). */
typedef bool (*tcp_want_fn)(void *ctx, struct tcp_flow *f);
/* In-order payload bytes of direction <dir>; <data> is valid during the call
 * only. <at> is the frame that made them deliverable. */
typedef void (*tcp_data_fn)(void *ctx, struct tcp_flow *f, enum proto_dir dir, struct cursor data,
			    const struct tcp_when *at);
/* <bytes> bytes of direction <dir> will never be delivered (capture loss, a
 * hole past the caps, snap-length cut); delivery goes on after them. */
typedef void (*tcp_gap_fn)(void *ctx, struct tcp_flow *f, enum proto_dir dir, uint64_t bytes,
			   const struct tcp_when *at);
/* The flow ends (end of capture, idle expiry, eviction, or its 4-tuple is
 * reused by a new connection); free f->user here. <f> is freed afterwards. */
typedef void (*tcp_end_fn)(void *ctx, struct tcp_flow *f);

/* The connection's first FIN or RST (either side; f->closed_side says
 * which; <at> is the segment that carried it), once the bytes before it were
 * delivered or reported lost: when the peer had acknowledged bytes the
 * capture has not shown yet, this waits until they arrive or their grace
 * ends. */
typedef void (*tcp_close_fn)(void *ctx, struct tcp_flow *f, const struct tcp_when *at);

/* A segment of a delivered flow carried an acknowledgment or a window:
 * f->half[].window, zero_window, probes and tcp_flow_unacked() may have
 * changed. Called after on_data and before on_close for the same segment. */
typedef void (*tcp_window_fn)(void *ctx, struct tcp_flow *f, const struct tcp_when *at);

struct tcp_stream_ops {
	tcp_want_fn want;      /* NULL: deliver every flow */
	tcp_data_fn on_data;
	tcp_gap_fn on_gap;     /* may be NULL */
	tcp_close_fn on_close; /* may be NULL */
	tcp_end_fn on_end;     /* may be NULL */
	tcp_window_fn on_window; /* may be NULL */
	void *ctx;
};

struct tcp_stream_stats {
	uint64_t segments;       /* fed to tcp_stream_segment() */
	uint64_t flows;          /* created */
	uint64_t evicted;        /* ended early because the table was full */
	uint64_t expired;        /* ended by idle expiry */
	uint64_t retransmitted;  /* segments with nothing new */
	uint64_t forced_gaps;    /* holes given up because a held-bytes cap was reached */
	uint64_t held_peak;      /* most out-of-order bytes held at once, all flows */
	uint64_t fins_inferred;  /* FINs missing from the capture, recognised by the peer's acknowledgment */
	uint64_t zero_windows;   /* zero-window periods begun, all flows and sides */
	uint64_t window_probes;  /* segments probing a zero window */
	uint64_t settled;        /* ended once their close had settled (before the capture's end) */
	uint64_t late;           /* segments of a flow that had ended so, ignored */
	uint64_t tombs_peak;     /* most ended flows remembered at once */
};

struct tcp_stream; /* the table: owned by the caller of tcp_stream_new() */

/* Creates a flow table with <cfg> (copied; NULL for defaults) that reports
 * through <ops> (copied). Returns NULL when out of memory. */
struct tcp_stream *tcp_stream_new(const struct tcp_stream_config *cfg, const struct tcp_stream_ops *ops);

/* Feeds one TCP segment seen in frame <at>. Callbacks run from inside this
 * call; they must not call back into the table. Out-of-memory while holding a
 * segment is handled as a hole (reported through on_gap), never a failure. */
void tcp_stream_segment(struct tcp_stream *ts, const struct link_tcp *seg, const struct tcp_when *at);

/* End of capture: every hole still open is reported as a gap, then on_end runs
 * for every live flow in index order and the flows are freed. */
void tcp_stream_finish(struct tcp_stream *ts);

const struct tcp_stream_stats *tcp_stream_stats(const struct tcp_stream *ts);

/* Bytes flowing <dir> that the sender has sent and the receiver has not
 * acknowledged yet, as the capture shows them (0 until both are known, or
 * when the numbers are more than 2^30 apart: not one connection's view). */
uint64_t tcp_flow_unacked(const struct tcp_flow *f, enum proto_dir dir);

/* Frees the table. Flows still live (tcp_stream_finish() was not called) are
 * ended through on_end first, without their holes being reported.
 * tcp_stream_free(NULL) does nothing. */
void tcp_stream_free(struct tcp_stream *ts);

#endif
