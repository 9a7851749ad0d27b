/* TCP flow table and per-direction reassembly (see tcp_stream.h for the
 * contract). Flows live in a chained hash table keyed by the unordered
 * 4-tuple, on an LRU list (idle expiry and eviction take the head) and on a
 * creation-order list (end-of-capture reporting in index order). Each
 * direction keeps <next_seq>, the next byte owed to the consumer, and a sorted
 * list of held out-of-order segments. A hole is given up when a held-bytes cap
 * is reached, when the peer acknowledges bytes past it (the sender will never
 * retransmit what was received: the capture lost it), on RST, and at the end.
 * Each side also keeps the highest sequence number it sent, the latest
 * acknowledgment and window it advertised (updated in RFC 9293's WL1/WL2
 * order, so a reordered old segment does not undo a newer window), and its
 * zero-window periods. Sequence numbers compare modulo 2^32 (RFC 9293 3.4). */
#include "sniff/tcp_stream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_MAX_FLOWS 65536u
#define DEFAULT_HELD_PER_FLOW (1u << 20)
#define DEFAULT_HELD_TOTAL (UINT64_C(64) << 20)
#define DEFAULT_IDLE_US (INT64_C(3600) * 1000000)
#define DEFAULT_SETTLE_US (INT64_C(2) * 1000000)
#define DEFAULT_TOMB_US (INT64_C(30) * 1000000)
#define MAX_HELD_SEGS 4096u /* per flow: bounds list walks and per-segment overhead */
/* How long a hole the peer has acknowledged waits for a segment the capture
 * reordered behind that ACK (several capture queues do): this many more
 * segments of the flow, or this much capture time. */
#define ACK_HOLE_GRACE_SEGS 16u
#define ACK_HOLE_GRACE_US INT64_C(50000)

struct tcp_seg {
	struct tcp_seg *next;
	uint32_t seq;  /* sequence number of data[0] */
	uint32_t len;  /* captured bytes in data */
	uint32_t lost; /* bytes after data that the snap length cut off */
	uint8_t data[];
};

struct tcp_stream {
	struct tcp_stream_config cfg;
	struct tcp_stream_ops ops;
	struct tcp_flow **buckets;
	size_t nbuckets; /* a power of two */
	uint64_t seed;
	struct tcp_flow *lru_head, *lru_tail; /* head: least recently active */
	struct tcp_flow *all_head, *all_tail; /* creation (= index) order */
	struct tcp_flow *settle_head, *settle_tail; /* closed flows waiting to end, by end_at */
	struct tcp_flow *tomb_head, *tomb_tail;     /* ended flows still remembered, by end_at */
	uint32_t live, tombs;
	uint64_t next_index;
	uint64_t held_total;
	int64_t now_us; /* latest capture time seen */
	struct tcp_flow *last_flow; /* the flow of the latest segment, or NULL */
	struct tcp_stream_stats stats;
};

static bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

const char *tcp_server_by_name(enum tcp_server_by b)
{
	switch (b) {
	case TCP_BY_SYN: return "syn";
	case TCP_BY_SYNACK: return "synack";
	case TCP_BY_PORT: return "port";
	case TCP_BY_FIRST: return "first";
	}
	return "?";
}

/* ---- table ------------------------------------------------------------- */

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* Addresses compare as two words: link.c zeroes the unused tail of an IPv4
 * address, so the whole 16 bytes are always defined. */
static bool endpoint_eq(const struct tcp_endpoint *e, const struct link_addr *a, uint16_t port)
{
	return e->port == port && e->addr.family == a->family && load64(e->addr.b) == load64(a->b) &&
	       load64(e->addr.b + 8) == load64(a->b + 8);
}

static bool flow_matches(const struct tcp_flow *f, const struct link_tcp *seg)
{
	return (endpoint_eq(&f->client, &seg->src, seg->sport) && endpoint_eq(&f->server, &seg->dst, seg->dport)) ||
	       (endpoint_eq(&f->client, &seg->dst, seg->dport) && endpoint_eq(&f->server, &seg->src, seg->sport));
}

/* A 64-bit finaliser (the one of MurmurHash3's fmix64): every input bit
 * reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* One endpoint, a word at a time, under the table's random seed. */
static uint64_t endpoint_hash(uint64_t seed, const struct link_addr *a, uint16_t port)
{
	uint64_t x = mix64(load64(a->b) ^ seed);
	return mix64(x ^ load64(a->b + 8) ^ ((uint64_t)port << 8 | a->family) * UINT64_C(0x9e3779b97f4a7c15));
}

/* The same hash for both directions: the endpoints' hashes are added, which
 * does not depend on their order (no compare-and-swap per segment). */
static uint64_t flow_hash(const struct tcp_stream *ts, const struct link_tcp *seg)
{
	return mix64(endpoint_hash(ts->seed, &seg->src, seg->sport) + endpoint_hash(ts->seed, &seg->dst, seg->dport));
}

/* Consecutive segments mostly belong to one flow (a burst of one
 * connection): the last flow found is tried before hashing. */
static struct tcp_flow *flow_find(struct tcp_stream *ts, const struct link_tcp *seg)
{
	struct tcp_flow *f = ts->last_flow;
	uint64_t h;

	if (f != NULL && flow_matches(f, seg))
		return f;
	h = flow_hash(ts, seg);
	for (f = ts->buckets[h & (ts->nbuckets - 1)]; f != NULL; f = f->hnext) {
		if (f->hash == h && flow_matches(f, seg)) {
			ts->last_flow = f;
			return f;
		}
	}
	return NULL;
}

static void lru_unlink(struct tcp_stream *ts, struct tcp_flow *f)
{
	if (f->lru_prev != NULL) f->lru_prev->lru_next = f->lru_next; else ts->lru_head = f->lru_next;
	if (f->lru_next != NULL) f->lru_next->lru_prev = f->lru_prev; else ts->lru_tail = f->lru_prev;
	f->lru_prev = f->lru_next = NULL;
}

static void lru_append(struct tcp_stream *ts, struct tcp_flow *f)
{
	f->lru_prev = ts->lru_tail;
	f->lru_next = NULL;
	if (ts->lru_tail != NULL) ts->lru_tail->lru_next = f; else ts->lru_head = f;
	ts->lru_tail = f;
}

static void q_append(struct tcp_flow **head, struct tcp_flow **tail, struct tcp_flow *f)
{
	f->q_prev = *tail;
	f->q_next = NULL;
	if (*tail != NULL) (*tail)->q_next = f; else *head = f;
	*tail = f;
}

static void q_unlink(struct tcp_flow **head, struct tcp_flow **tail, struct tcp_flow *f)
{
	if (f->q_prev != NULL) f->q_prev->q_next = f->q_next; else *head = f->q_next;
	if (f->q_next != NULL) f->q_next->q_prev = f->q_prev; else *tail = f->q_prev;
	f->q_prev = f->q_next = NULL;
}

static void hash_unlink(struct tcp_stream *ts, struct tcp_flow *f)
{
	struct tcp_flow **pp = &ts->buckets[f->hash & (ts->nbuckets - 1)];

	if (ts->last_flow == f)
		ts->last_flow = NULL;
	while (*pp != NULL && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp == f)
		*pp = f->hnext;
}

/* Off the lists of live flows (it stays in the hash table). */
static void live_unlink(struct tcp_stream *ts, struct tcp_flow *f)
{
	lru_unlink(ts, f);
	if (f->all_prev != NULL) f->all_prev->all_next = f->all_next; else ts->all_head = f->all_next;
	if (f->all_next != NULL) f->all_next->all_prev = f->all_prev; else ts->all_tail = f->all_prev;
	if (f->end_at != 0)
		q_unlink(&ts->settle_head, &ts->settle_tail, f);
	ts->live--;
}

static void table_unlink(struct tcp_stream *ts, struct tcp_flow *f)
{
	hash_unlink(ts, f);
	live_unlink(ts, f);
}

static void tomb_free(struct tcp_stream *ts, struct tcp_flow *f)
{
	q_unlink(&ts->tomb_head, &ts->tomb_tail, f);
	hash_unlink(ts, f);
	ts->tombs--;
	free(f);
}

/* ---- reassembly --------------------------------------------------------- */

static void report_gap(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, uint32_t bytes,
		       const struct tcp_when *at)
{
	if (bytes == 0)
		return;
	f->gaps++;
	f->gap_bytes += bytes;
	if (ts->ops.on_gap != NULL)
		ts->ops.on_gap(ts->ops.ctx, f, d, bytes, at);
}

static void seg_free(struct tcp_stream *ts, struct tcp_flow *f, struct tcp_seg *s)
{
	uint32_t cost = (uint32_t)sizeof(*s) + s->len;

	f->held_bytes -= cost;
	ts->held_total -= cost;
	free(s);
}

/* Delivers the part of [seq, seq+len) in <data> at or after next_seq (seq is
 * at or before next_seq), then turns a snap-length-cut tail of <lost> bytes
 * into a gap. */
static void deliver_piece(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, uint32_t seq,
			  struct cursor data, uint32_t lost, const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];
	uint32_t skip = h->next_seq - seq;
	uint32_t n = (uint32_t)cursor_left(&data);
	uint32_t end = seq + n + lost;

	if (skip < n && cursor_skip(&data, skip)) {
		h->next_seq += n - skip;
		h->delivered += n - skip;
		ts->ops.on_data(ts->ops.ctx, f, d, data, at);
	}
	if (lost > 0 && seq_lt(h->next_seq, end)) {
		uint32_t missing = end - h->next_seq;
		h->next_seq = end;
		report_gap(ts, f, d, missing, at);
	}
}

/* Delivers every held segment that now starts at or before next_seq. */
static void drain(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];

	while (h->held != NULL && seq_le(h->held->seq, h->next_seq)) {
		struct tcp_seg *s = h->held;
		h->held = s->next;
		h->held_segs--;
		if (seq_lt(h->next_seq, s->seq + s->len + s->lost))
			deliver_piece(ts, f, d, s->seq, cursor_make(s->data, s->len), s->lost, at);
		else
			ts->stats.retransmitted++;
		seg_free(ts, f, s);
	}
}

/* Gives up the hole before the first held segment, or before <upto> if that
 * comes first, reporting it as a gap, and delivers what follows. */
static void skip_hole(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, uint32_t upto,
		      const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];
	uint32_t target = upto;

	if (h->held != NULL && seq_lt(h->held->seq, target))
		target = h->held->seq;
	if (seq_lt(h->next_seq, target)) {
		uint32_t missing = target - h->next_seq;
		h->next_seq = target;
		report_gap(ts, f, d, missing, at);
	}
	drain(ts, f, d, at);
}

/* Copies an out-of-order segment into the held list. False if a cap leaves no
 * room (or memory is short): the caller must make room by giving up a hole. */
static bool hold(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, uint32_t seq, struct cursor data,
		 uint32_t lost)
{
	struct tcp_half *h = &f->half[d];
	uint32_t n = (uint32_t)cursor_left(&data);
	uint32_t cost = (uint32_t)sizeof(struct tcp_seg) + n;
	struct tcp_seg *s, **pp;

	for (pp = &h->held; *pp != NULL && seq_le((*pp)->seq, seq); pp = &(*pp)->next) {
		if ((*pp)->seq == seq && (*pp)->len == n && (*pp)->lost == lost) {
			ts->stats.retransmitted++; /* the same segment is already held */
			return true;
		}
	}
	if ((uint64_t)f->held_bytes + cost > ts->cfg.max_held_per_flow || ts->held_total + cost > ts->cfg.max_held_total ||
	    f->half[0].held_segs + f->half[1].held_segs >= MAX_HELD_SEGS)
		return false;
	s = malloc(cost);
	if (s == NULL)
		return false;
	s->seq = seq;
	s->len = n;
	s->lost = lost;
	if (n > 0)
		memcpy(s->data, data.p, n);
	s->next = *pp;
	*pp = s;
	h->held_segs++;
	f->held_bytes += cost;
	ts->held_total += cost;
	if (ts->held_total > ts->stats.held_peak)
		ts->stats.held_peak = ts->held_total;
	return true;
}

/* Payload [seq, seq + captured + lost) of direction <d>. */
static void half_push(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, uint32_t seq, struct cursor data,
		      uint32_t lost, const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];
	uint32_t end = seq + (uint32_t)cursor_left(&data) + lost;

	for (;;) {
		if (seq_le(end, h->next_seq)) {
			ts->stats.retransmitted++;
			return;
		}
		if (seq_le(seq, h->next_seq)) {
			deliver_piece(ts, f, d, seq, data, lost, at);
			drain(ts, f, d, at);
			return;
		}
		if (hold(ts, f, d, seq, data, lost))
			return;
		/* No room: each pass moves next_seq forward, so this ends. */
		ts->stats.forced_gaps++;
		skip_hole(ts, f, d, seq, at);
	}
}

/* Gives up the hole the peer acknowledged (see ack_advance) when <force>,
 * or once its grace is over; forgets it once it has filled. */
static void settle_ack_hole(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, bool force,
			    const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];

	if (!h->ack_hole)
		return;
	if (seq_le(h->ack_hole_lim, h->next_seq)) {
		h->ack_hole = false; /* the missing bytes came after all */
		return;
	}
	if (!force && h->ack_hole_segs < ACK_HOLE_GRACE_SEGS && at->ts_us - h->ack_hole_us <= ACK_HOLE_GRACE_US)
		return;
	h->ack_hole = false;
	while (seq_lt(h->next_seq, h->ack_hole_lim))
		skip_hole(ts, f, d, h->ack_hole_lim, at);
}

/* Every hole of direction <d> is final: report them, deliver what is held,
 * and account for bytes missing before a FIN. */
static void flush_half(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];

	settle_ack_hole(ts, f, d, true, at);
	while (h->held != NULL)
		skip_hole(ts, f, d, h->held->seq, at);
	if (h->started && h->fin && seq_lt(h->next_seq, h->fin_seq))
		skip_hole(ts, f, d, h->fin_seq, at);
}

/* The peer acknowledged <ack>: bytes of direction <d> before it were received,
 * so a hole there will not be retransmitted: the capture lost those bytes, or
 * shows them late. The hole is noted, and given up by settle_ack_hole(). */
static void ack_advance(struct tcp_flow *f, enum proto_dir d, uint32_t ack, const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d];
	uint32_t lim = ack;

	if (!h->started)
		return;
	if (h->fin && seq_lt(h->fin_seq, lim)) /* the FIN takes one sequence number */
		lim = h->fin_seq;
	/* An ACK more than 2^30 ahead is noise (or another connection), not a hole. */
	if ((uint32_t)(lim - h->next_seq) > (UINT32_C(1) << 30) || !seq_lt(h->next_seq, lim))
		return;
	if (!h->ack_hole) {
		h->ack_hole = true;
		h->ack_hole_segs = 0;
		h->ack_hole_us = at->ts_us;
		h->ack_hole_lim = lim;
	} else if (seq_lt(h->ack_hole_lim, lim)) {
		h->ack_hole_lim = lim;
	}
}

/* ---- flows -------------------------------------------------------------- */

/* Reports a close that waited for acknowledged holes, once none is left
 * (or at once with <force>: the flow ends). */
static void close_if_settled(struct tcp_stream *ts, struct tcp_flow *f, bool force)
{
	if (!f->close_pending || (!force && (f->half[0].ack_hole || f->half[1].ack_hole)))
		return;
	f->close_pending = false;
	if (ts->ops.on_close != NULL)
		ts->ops.on_close(ts->ops.ctx, f, &f->close_at);
}

/* Reports the end of <f> to the consumer and drops what it holds; with
 * <tomb> its record stays as a tombstone, else it is freed. */
static void flow_finish_one(struct tcp_stream *ts, struct tcp_flow *f, bool flush, bool tomb)
{
	int d;

	if (flush && f->deliver) {
		flush_half(ts, f, PROTO_C2S, &f->last);
		flush_half(ts, f, PROTO_S2C, &f->last);
	}
	close_if_settled(ts, f, true);
	if (ts->ops.on_end != NULL)
		ts->ops.on_end(ts->ops.ctx, f);
	for (d = 0; d < 2; d++) {
		while (f->half[d].held != NULL) {
			struct tcp_seg *s = f->half[d].held;
			f->half[d].held = s->next;
			seg_free(ts, f, s);
		}
	}
	if (!tomb) {
		table_unlink(ts, f);
		free(f);
		return;
	}
	live_unlink(ts, f);
	f->tomb = true;
	f->end_at = ts->now_us + ts->cfg.tomb_us;
	q_append(&ts->tomb_head, &ts->tomb_tail, f);
	if (++ts->tombs > ts->stats.tombs_peak)
		ts->stats.tombs_peak = ts->tombs;
	if (ts->tombs > ts->cfg.max_flows)
		tomb_free(ts, ts->tomb_head);
}

static void flow_end(struct tcp_stream *ts, struct tcp_flow *f, bool flush)
{
	flow_finish_one(ts, f, flush, false);
}

/* A closed connection is over for good once a RST was seen, or FINs both
 * ways; it ends <settle_us> later (capture time). */
static void maybe_settle(struct tcp_stream *ts, struct tcp_flow *f)
{
	if (f->end_at != 0 || !f->closed)
		return;
	if (!(f->half[0].rst_frame || f->half[1].rst_frame || (f->half[0].fin && f->half[1].fin)))
		return;
	f->end_at = ts->now_us + ts->cfg.settle_us;
	q_append(&ts->settle_head, &ts->settle_tail, f);
}

/* Ends the settled flows and forgets the old tombstones, as capture time
 * passes. */
static void expire_closed(struct tcp_stream *ts)
{
	while (ts->settle_head != NULL && ts->settle_head->end_at <= ts->now_us) {
		ts->stats.settled++;
		flow_finish_one(ts, ts->settle_head, true, true);
	}
	while (ts->tomb_head != NULL && ts->tomb_head->end_at <= ts->now_us)
		tomb_free(ts, ts->tomb_head);
}

static bool is_server_port(const struct tcp_stream *ts, uint16_t port)
{
	size_t i;

	for (i = 0; i < ts->cfg.n_ports; i++)
		if (ts->cfg.ports[i] == port)
			return true;
	return false;
}

static struct tcp_flow *flow_new(struct tcp_stream *ts, const struct link_tcp *seg, uint64_t h, const struct tcp_when *at)
{
	struct tcp_flow *f;
	bool src_is_client;

	if (ts->live >= ts->cfg.max_flows && ts->lru_head != NULL) {
		ts->stats.evicted++;
		flow_end(ts, ts->lru_head, true);
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	if ((seg->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN) {
		f->server_by = TCP_BY_SYN;
		src_is_client = true;
	} else if ((seg->flags & (TCPF_SYN | TCPF_ACK)) == (TCPF_SYN | TCPF_ACK)) {
		f->server_by = TCP_BY_SYNACK;
		src_is_client = false;
	} else if (is_server_port(ts, seg->dport)) {
		f->server_by = TCP_BY_PORT;
		src_is_client = true;
	} else if (is_server_port(ts, seg->sport)) {
		f->server_by = TCP_BY_PORT;
		src_is_client = false;
	} else {
		f->server_by = TCP_BY_FIRST;
		src_is_client = true;
	}
	f->client.addr = src_is_client ? seg->src : seg->dst;
	f->client.port = src_is_client ? seg->sport : seg->dport;
	f->server.addr = src_is_client ? seg->dst : seg->src;
	f->server.port = src_is_client ? seg->dport : seg->sport;
	f->index = ts->next_index++;
	f->first = f->last = *at;
	f->hash = h;
	f->hnext = ts->buckets[h & (ts->nbuckets - 1)];
	ts->buckets[h & (ts->nbuckets - 1)] = f;
	lru_append(ts, f);
	f->all_prev = ts->all_tail;
	if (ts->all_tail != NULL) ts->all_tail->all_next = f; else ts->all_head = f;
	ts->all_tail = f;
	ts->live++;
	ts->stats.flows++;
	f->half[0].wscale = f->half[1].wscale = -1;
	f->syn_seen = (seg->flags & TCPF_SYN) != 0; /* known to want() already */
	f->deliver = ts->ops.want != NULL ? ts->ops.want(ts->ops.ctx, f) : true;
	return f;
}

/* A bare SYN on a known 4-tuple starts a new connection unless it is a
 * retransmission of this flow's own SYN. */
static bool flow_reused(const struct tcp_flow *f, enum proto_dir d, const struct link_tcp *seg)
{
	const struct tcp_half *h = &f->half[d];

	if (f->closed || d != PROTO_C2S)
		return true;
	if (h->syn)
		return h->isn != seg->seq;
	return h->started; /* data flowed before this SYN: the old connection is gone */
}

static void note_close(struct tcp_flow *f, enum proto_dir d, bool rst, const struct tcp_when *at)
{
	uint64_t *slot = rst ? &f->half[d].rst_frame : &f->half[d].fin_frame;

	if (*slot == 0)
		*slot = at->frame;
	if (!f->closed) {
		f->closed = true;
		f->closed_rst = rst;
		f->closed_side = d;
		f->closed_frame = at->frame;
	}
}

/* ---- windows and acknowledgments ------------------------------------------ */

/* Side <d> sent <seg> (not a RST) whose sequence space ends at <end>. */
static void note_sent(struct tcp_half *h, uint32_t end)
{
	if (!h->sent_seen || seq_lt(h->snd_max, end)) {
		h->snd_max = end;
		h->sent_seen = true;
	}
}

/* The acknowledgment and window that side <d> advertised in <seg>, and
 * whether <seg> probes the peer's zero window (RFC 9293 3.8.6.1): a segment
 * of one byte, or an empty one one below the sender's next sequence number
 * (how Linux probes). */
static void window_update(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, const struct link_tcp *seg,
			  uint32_t wire_len, const struct tcp_when *at)
{
	struct tcp_half *h = &f->half[d], *peer = &f->half[d == PROTO_C2S ? PROTO_S2C : PROTO_C2S];
	bool zero;

	if (peer->zero_window && !(seg->flags & (TCPF_SYN | TCPF_FIN | TCPF_RST)) &&
	    (wire_len == 1 || (wire_len == 0 && h->sent_seen && seg->seq == h->snd_max - 1))) {
		peer->probes++;
		ts->stats.window_probes++;
	}
	if (!(seg->flags & TCPF_ACK))
		return;
	/* RFC 9293 3.10.7.4: take the window of a newer segment (SND.WL1) or,
	 * for the same one, of a newer acknowledgment (SND.WL2). */
	if (h->ack_seen && (seq_lt(seg->seq, h->wl1) || (seg->seq == h->wl1 && seq_lt(seg->ack, h->acked))))
		return;
	h->ack_seen = true;
	h->acked = seg->ack;
	h->wl1 = seg->seq;
	/* RFC 7323 2.2: scaling applies once both SYNs carried the option, and
	 * never to a SYN's own window. */
	h->window = seg->window;
	if (!(seg->flags & TCPF_SYN) && h->wscale >= 0 && peer->wscale >= 0)
		h->window <<= h->wscale;
	zero = seg->window == 0 && !(seg->flags & TCPF_SYN);
	if (zero && !h->zero_window) {
		h->zero_window = true;
		h->zero_since = *at;
		h->zero_periods++;
		h->probes = 0;
		ts->stats.zero_windows++;
	} else if (!zero && h->zero_window) {
		h->zero_window = false;
		if (at->ts_us > h->zero_since.ts_us)
			h->zero_total_us += at->ts_us - h->zero_since.ts_us;
	}
}

/* <seg> from side <d> carries FIN or RST and acknowledges one sequence
 * number past everything the peer was seen sending: the peer's FIN, which
 * the capture lost (or which comes later in it). A sequence number cannot be
 * acknowledged before it was sent, so the peer closed first. The one other
 * thing that fits is a lost 1-byte data segment right before this close,
 * which no MQTT packet is. */
static void infer_peer_fin(struct tcp_stream *ts, struct tcp_flow *f, enum proto_dir d, const struct link_tcp *seg,
			   const struct tcp_when *at)
{
	enum proto_dir pd = d == PROTO_C2S ? PROTO_S2C : PROTO_C2S;
	struct tcp_half *peer = &f->half[pd];

	if (!(seg->flags & TCPF_ACK) || !(seg->flags & (TCPF_FIN | TCPF_RST)) || peer->fin || !peer->sent_seen ||
	    peer->held != NULL || seg->ack != peer->snd_max + 1)
		return;
	peer->fin = true;
	peer->fin_inferred = true;
	peer->fin_seq = peer->snd_max;
	peer->snd_max++;
	ts->stats.fins_inferred++;
	note_close(f, pd, false, at);
}

uint64_t tcp_flow_unacked(const struct tcp_flow *f, enum proto_dir dir)
{
	const struct tcp_half *snd = &f->half[dir], *rcv = &f->half[dir == PROTO_C2S ? PROTO_S2C : PROTO_C2S];
	uint32_t n;

	if (!snd->sent_seen || !rcv->ack_seen)
		return 0;
	n = snd->snd_max - rcv->acked;
	return n > (UINT32_C(1) << 30) ? 0 : n;
}

void tcp_stream_segment(struct tcp_stream *ts, const struct link_tcp *seg, const struct tcp_when *at)
{
	struct tcp_flow *f;
	struct tcp_half *half;
	enum proto_dir d;
	uint32_t data_seq, wire_len, lost;

	ts->stats.segments++;
	if (at->ts_us > ts->now_us)
		ts->now_us = at->ts_us;
	while (ts->lru_head != NULL && ts->now_us - ts->lru_head->last.ts_us > ts->cfg.idle_timeout_us) {
		ts->stats.expired++;
		flow_end(ts, ts->lru_head, true);
	}
	expire_closed(ts);

	f = flow_find(ts, seg);
	if (f != NULL && f->tomb) {
		if ((seg->flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN) {
			ts->stats.late++;
			return;
		}
		tomb_free(ts, f); /* a new connection on the 4-tuple */
		f = NULL;
	}
	if (f != NULL && (seg->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN &&
	    flow_reused(f, endpoint_eq(&f->client, &seg->src, seg->sport) ? PROTO_C2S : PROTO_S2C, seg)) {
		flow_end(ts, f, true);
		f = NULL;
	}
	if (f == NULL && (f = flow_new(ts, seg, flow_hash(ts, seg), at)) == NULL)
		return; /* out of memory: the segment is not tracked */
	ts->last_flow = f;
	f->last = *at;
	if (ts->lru_tail != f) {
		lru_unlink(ts, f);
		lru_append(ts, f);
	}

	d = endpoint_eq(&f->client, &seg->src, seg->sport) ? PROTO_C2S : PROTO_S2C;
	half = &f->half[d];
	if (f->deliver) {
		f->half[0].ack_hole_segs++;
		f->half[1].ack_hole_segs++;
		/* A segment from the side with the hole that starts past it: the
		 * sender has moved on, the missing bytes are not coming late. */
		settle_ack_hole(ts, f, d, half->ack_hole && !(seg->flags & TCPF_SYN) &&
					   seq_le(half->ack_hole_lim, seg->seq), at);
		settle_ack_hole(ts, f, d == PROTO_C2S ? PROTO_S2C : PROTO_C2S, false, at);
		close_if_settled(ts, f, false);
	}
	data_seq = seg->seq;
	if (seg->flags & TCPF_SYN) {
		f->syn_seen = true;
		if (!half->syn) {
			half->syn = true;
			half->isn = seg->seq;
			half->wscale = seg->wscale;
			if (!half->started) {
				half->started = true;
				half->next_seq = seg->seq + 1;
			}
		}
		data_seq = seg->seq + 1; /* the SYN takes one sequence number */
	}
	wire_len = seg->payload_len;
	lost = wire_len - (uint32_t)cursor_left(&seg->payload);
	if (!half->started && wire_len > 0) { /* mid-stream: start at the first byte seen */
		half->started = true;
		half->next_seq = data_seq;
	}
	if ((seg->flags & TCPF_FIN) && !half->fin) {
		half->fin = true;
		half->fin_seq = data_seq + wire_len;
	}
	if (!(seg->flags & TCPF_RST))
		note_sent(half, data_seq + wire_len + ((seg->flags & TCPF_FIN) ? 1 : 0));
	if (!(seg->flags & TCPF_RST)) /* a RST's window field means nothing */
		window_update(ts, f, d, seg, wire_len, at);
	bool was_closed = f->closed;
	infer_peer_fin(ts, f, d, seg, at);
	if (seg->flags & (TCPF_FIN | TCPF_RST))
		note_close(f, d, (seg->flags & TCPF_RST) != 0, at);

	if (f->deliver) {
		if (wire_len > 0)
			half_push(ts, f, d, data_seq, seg->payload, lost, at);
		if (seg->flags & TCPF_ACK)
			ack_advance(f, d == PROTO_C2S ? PROTO_S2C : PROTO_C2S, seg->ack, at);
		if (seg->flags & TCPF_RST) { /* nothing more will be sent: holes are final */
			flush_half(ts, f, PROTO_C2S, at);
			flush_half(ts, f, PROTO_S2C, at);
		} else if (seg->flags & TCPF_FIN) {
			/* This side sent everything before its FIN: what is
			 * missing is lost. */
			flush_half(ts, f, d, at);
		}
	}
	if (f->deliver && ts->ops.on_window != NULL)
		ts->ops.on_window(ts->ops.ctx, f, at);
	/* After the bytes the closing segment carried were delivered, and once
	 * the holes the peers acknowledged are settled. */
	if (!was_closed && f->closed) {
		f->close_pending = true;
		f->close_at = *at;
	}
	if (f->deliver)
		settle_ack_hole(ts, f, d, false, at); /* filled by this segment? */
	close_if_settled(ts, f, !f->deliver);
	maybe_settle(ts, f);
}

/* ---- lifecycle -------------------------------------------------------------- */

struct tcp_stream *tcp_stream_new(const struct tcp_stream_config *cfg, const struct tcp_stream_ops *ops)
{
	struct tcp_stream *ts = calloc(1, sizeof(*ts));

	if (ts == NULL)
		return NULL;
	if (cfg != NULL)
		ts->cfg = *cfg;
	if (ts->cfg.max_flows == 0)
		ts->cfg.max_flows = DEFAULT_MAX_FLOWS;
	if (ts->cfg.max_held_per_flow == 0)
		ts->cfg.max_held_per_flow = DEFAULT_HELD_PER_FLOW;
	if (ts->cfg.max_held_total == 0)
		ts->cfg.max_held_total = DEFAULT_HELD_TOTAL;
	if (ts->cfg.idle_timeout_us <= 0)
		ts->cfg.idle_timeout_us = DEFAULT_IDLE_US;
	if (ts->cfg.settle_us <= 0)
		ts->cfg.settle_us = DEFAULT_SETTLE_US;
	if (ts->cfg.tomb_us <= 0)
		ts->cfg.tomb_us = DEFAULT_TOMB_US;
	if (ts->cfg.n_ports > TCP_STREAM_MAX_PORTS)
		ts->cfg.n_ports = TCP_STREAM_MAX_PORTS;
	ts->ops = *ops;
	ts->nbuckets = 1024;
	while (ts->nbuckets < ts->cfg.max_flows && ts->nbuckets < (1u << 24))
		ts->nbuckets <<= 1;
	ts->buckets = calloc(ts->nbuckets, sizeof(*ts->buckets));
	if (ts->buckets == NULL) {
		free(ts);
		return NULL;
	}
	/* A random seed keeps crafted captures from chaining every flow into one
	 * bucket; output never depends on bucket order. */
	if (getrandom(&ts->seed, sizeof(ts->seed), GRND_NONBLOCK) != (ssize_t)sizeof(ts->seed))
		ts->seed = UINT64_C(0xcbf29ce484222325);
	ts->seed |= 1;
	return ts;
}

void tcp_stream_finish(struct tcp_stream *ts)
{
	struct tcp_flow *f;

	for (f = ts->all_head; f != NULL; f = f->all_next) {
		if (f->deliver) {
			flush_half(ts, f, PROTO_C2S, &f->last);
			flush_half(ts, f, PROTO_S2C, &f->last);
		}
		close_if_settled(ts, f, true);
	}
	while (ts->all_head != NULL)
		flow_end(ts, ts->all_head, false);
	while (ts->tomb_head != NULL)
		tomb_free(ts, ts->tomb_head);
}

const struct tcp_stream_stats *tcp_stream_stats(const struct tcp_stream *ts)
{
	return &ts->stats;
}

void tcp_stream_free(struct tcp_stream *ts)
{
	if (ts == NULL)
		return;
	while (ts->all_head != NULL)
		flow_end(ts, ts->all_head, false);
	while (ts->tomb_head != NULL)
		tomb_free(ts, ts->tomb_head);
	free(ts->buckets);
	free(ts);
}
