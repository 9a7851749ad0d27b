/* MQTT framing, resynchronisation and decoding over reassembled TCP bytes;
 * packets_json.c writes the lines that come of them.
 *
 * Per flow direction: bytes arrive in order from tcp_stream; whole packets
 * found in a delivered chunk are decoded in place, and only the tail of a
 * packet that continues in a later segment is copied into a buffer capped by
 * the largest packet we accept. A packet over that cap is reported and its
 * body skipped by count, which keeps the stream in sync. When sync is lost
 * (a gap we cannot count through, a flow picked up mid-stream, a Remaining
 * Length the framer rejects), incoming bytes are scanned for a plausible fixed
 * header: a type/flags byte the spec allows in this direction, a minimal
 * Remaining Length within the cap, and an end that lands on the end of the
 * data or on further plausible headers; the first such packet must also
 * decode. Mid-stream flows have no CONNECT to give the protocol level, so the
 * codec assumes 3.1.1 and switches to 5.0 when the first packets decode only
 * that way. Specs: MQTT 5.0 and 3.1.1, section 2.1 (fixed header). */
#include "sniff/packets.h"
#include "sniff/packets_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proto/mqtt.h"

#define DEFAULT_MAX_BUFFERED (UINT64_C(256) << 20)
#define MAX_CHUNK (256u << 10)  /* largest delivered chunk: libpcap's maximum snap length */
#define PROBE_PACKETS 8         /* packets during which an assumed level may still change */
#define CHAIN_FRAMES 3          /* plausible packets in a row that settle a resync */

/* How well the bytes at a resync candidate read as MQTT packets. */
enum plausible {
	PL_NO,     /* cannot start a packet */
	PL_MAYBE,  /* its first packet is not complete yet */
	PL_WEAK,   /* one complete packet, ending where the data ends or followed by a plausible header */
	PL_STRONG, /* two or more complete packets in a row */
};

/* ---- decoding ------------------------------------------------------------- */

/* Decodes <frame>. A mid-stream flow has no CONNECT: while the level is
 * unknown and the flow young, a packet that fails at the assumed 3.1.1 is
 * tried at 5.0, and a success there makes 5.0 the assumption. A CONNECT that
 * fails to decode still fixes the level its client asked for. */
static enum proto_err decode(struct mqtt_codec *codec, uint32_t decoded, enum proto_dir dir, struct cursor frame,
			     struct mqtt_packet *pkt, struct proto_diag *d)
{
	enum proto_err r = mqtt_decode(codec, dir, frame, pkt, d);
	struct mqtt_codec alt;
	struct mqtt_packet pkt2;
	struct proto_diag d2;

	if (r == PROTO_OK || codec->level != MQTT_LEVEL_UNKNOWN)
		return r;
	if (pkt->type == MQTT_T_CONNECT && dir == PROTO_C2S) {
		struct cursor c = frame, name;
		uint8_t b, lvl;
		uint32_t rl;
		if (cursor_u8(&c, &b) && cursor_varint(&c, &rl) == CURSOR_VARINT_OK && cursor_str16(&c, &name) &&
		    cursor_u8(&c, &lvl) && (lvl & 0x7f) >= MQTT_LEVEL_31 && (lvl & 0x7f) <= MQTT_LEVEL_5)
			codec->level = lvl & 0x7f;
		return r;
	}
	if (decoded >= PROBE_PACKETS || codec->assumed_level == MQTT_LEVEL_5)
		return r;
	alt = *codec;
	alt.assumed_level = MQTT_LEVEL_5;
	if (mqtt_decode(&alt, dir, frame, &pkt2, &d2) != PROTO_OK)
		return r;
	*codec = alt;
	*pkt = pkt2;
	*d = d2;
	return PROTO_OK;
}

static uint8_t level_of(const struct pkt_flow *pf)
{
	return pf->codec.level ? pf->codec.level : pf->codec.assumed_level;
}

/* Counts one packet line in the flow and in the totals. */
static void count(struct packets *p, struct pkt_flow *pf, enum proto_dir dir, uint8_t first, bool ok)
{
	pf->packets++;
	p->stats.packets++;
	pf->counts[dir][first >> 4]++;
	if (ok) {
		pf->decoded++;
	} else {
		pf->errors++;
		p->stats.errors++;
	}
}

/* The engine's session of a flow, opened at its first packet: by then the
 * capture has said whether the handshake was seen. */
static struct session *session_of(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf)
{
	if (!p->cfg.eng)
		return NULL;
	if (!pf->has_session) {
		char client[64], broker[64], ip[64];
		struct eng_action act;
		link_endpoint_str(&f->client.addr, f->client.port, client, sizeof client);
		link_endpoint_str(&f->server.addr, f->server.port, broker, sizeof broker);
		link_endpoint_str(&f->client.addr, 0, ip, sizeof ip);
		char *colon = strrchr(ip, ':'); /* the address without its port */
		if (colon && ip[0] != '[')
			*colon = 0;
		engine_session_open_proto(p->cfg.eng, &pf->sess, pf->amps ? PROTO_ID_AMPS : PROTO_ID_MQTT, f->index + 1,
					  client, ip, broker, f->first.ts_us, &act);
		pf->sess.midstream = !f->syn_seen;
		pf->sess.frame = f->first.frame;
		pf->has_session = true;
	}
	return &pf->sess;
}

static void handle_frame(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			 struct cursor frame, const struct tcp_when *at)
{
	struct mqtt_packet pkt;
	struct proto_diag d;
	enum proto_err r = decode(&pf->codec, pf->decoded, dir, frame, &pkt, &d);

	count(p, pf, dir, frame.p[0], r == PROTO_OK);
	packets_emit_packet(p, f, dir, frame.p[0], pkt.remaining_len, pkt.level ? pkt.level : level_of(pf),
		    r == PROTO_OK ? &pkt : NULL, &d, at);
	struct session *s = session_of(p, f, pf);
	if (s) {
		struct eng_action act;
		s->frame = at->frame;
		if (r == PROTO_OK)
			engine_on_packet(p->cfg.eng, s, dir, &pkt, (uint32_t)frame.left, at->ts_us, &act);
		else
			engine_on_bad_frame(p->cfg.eng, s, dir, &d, frame.p[0] >> 4, frame.left, at->ts_us, &act);
	}
}

/* A packet over the cap, reported once its last byte has gone by. */
static void emit_too_large(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			   const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];
	struct proto_diag d;

	pd->big_owed = false;
	mqtt_fail(&d, MQTT_E_PACKET_TOO_LARGE, "remaining length", 1);
	count(p, pf, dir, pd->big_first, false);
	p->stats.too_large++;
	packets_emit_packet(p, f, dir, pd->big_first, pd->big_remlen, level_of(pf), NULL, &d, at);
}

/* ---- buffering -------------------------------------------------------------- */

static void buf_drop(struct packets *p, struct pkt_dir *pd)
{
	p->buffered -= pd->cap;
	free(pd->buf);
	pd->buf = NULL;
	pd->len = pd->cap = 0;
}

/* Appends <n> bytes; false when a cap (per direction or overall) says no. */
static bool buf_append(struct packets *p, struct pkt_dir *pd, const uint8_t *src, size_t n)
{
	uint64_t limit = (uint64_t)p->cfg.max_packet + MAX_CHUNK + 16;

	if (n == 0)
		return true;
	if ((uint64_t)pd->len + n > limit)
		return false;
	if (pd->len + n > pd->cap) {
		uint64_t want = pd->cap ? pd->cap : 512;
		uint8_t *nb;
		while (want < pd->len + n)
			want *= 2;
		if (want > limit)
			want = limit;
		if (p->buffered - pd->cap + want > p->cfg.max_buffered || (nb = realloc(pd->buf, (size_t)want)) == NULL)
			return false;
		p->buffered = p->buffered - pd->cap + want;
		pd->buf = nb;
		pd->cap = (uint32_t)want;
	}
	memcpy(pd->buf + pd->len, src, n);
	pd->len += (uint32_t)n;
	return true;
}

static void buf_consume(struct packets *p, struct pkt_dir *pd, uint32_t n)
{
	if (n >= pd->len) {
		pd->len = 0;
		if (pd->cap > (64u << 10)) /* give a big buffer back once it is empty */
			buf_drop(p, pd);
		return;
	}
	memmove(pd->buf, pd->buf + n, pd->len - n);
	pd->len -= n;
}

/* From now on the buffer is scanned for a packet boundary. */
static void lose_sync(struct packets *p, struct pkt_dir *pd)
{
	if (pd->synced)
		p->stats.resyncs++;
	pd->synced = false;
	pd->scan_pos = 0;
	pd->n_pending = 0;
}

/* ---- resynchronisation ------------------------------------------------------ */

/* Could <b> start a packet flowing <dir> (spec 2.1.2 direction, 2.1.3 flags)? */
static bool first_byte_ok(uint8_t b, enum proto_dir dir, uint8_t level)
{
	uint8_t type = b >> 4, fl = b & 0x0f;
	bool c2s = dir == PROTO_C2S;

	switch (type) {
	case MQTT_T_CONNECT: case MQTT_T_SUBSCRIBE: case MQTT_T_UNSUBSCRIBE: case MQTT_T_PINGREQ:
		if (!c2s)
			return false;
		return fl == ((type == MQTT_T_SUBSCRIBE || type == MQTT_T_UNSUBSCRIBE) ? 2 : 0);
	case MQTT_T_CONNACK: case MQTT_T_SUBACK: case MQTT_T_UNSUBACK: case MQTT_T_PINGRESP:
		return !c2s && fl == 0;
	case MQTT_T_PUBLISH:
		return ((fl >> 1) & 3) != 3 && !(((fl >> 1) & 3) == 0 && (fl & 8));
	case MQTT_T_PUBREL:
		return fl == 2;
	case MQTT_T_PUBACK: case MQTT_T_PUBREC: case MQTT_T_PUBCOMP: case MQTT_T_DISCONNECT:
		return fl == 0;
	case MQTT_T_AUTH:
		return fl == 0 && level != MQTT_LEVEL_31 && level != MQTT_LEVEL_311;
	default:
		return false;
	}
}

/* Judges the bytes at the start of <c> as the start of a packet: up to
 * CHAIN_FRAMES packets are walked, each needing a plausible first byte, a
 * minimal Remaining Length and a size within <max_packet>. <flen> gets the
 * first packet's length. */
static enum plausible plausible_at(struct cursor c, enum proto_dir dir, uint8_t level, uint32_t max_packet,
				   uint32_t *flen)
{
	int n;

	for (n = 0; n < CHAIN_FRAMES; n++) {
		struct cursor h = c;
		uint8_t b;
		uint32_t rl;
		size_t hdr;
		if (!cursor_u8(&h, &b)) /* the data ends exactly after packet n */
			return n >= 2 ? PL_STRONG : PL_WEAK;
		if (!first_byte_ok(b, dir, level))
			return n >= 2 ? PL_STRONG : PL_NO;
		switch (cursor_varint(&h, &rl)) {
		case CURSOR_VARINT_OK: break;
		case CURSOR_VARINT_SHORT: return n == 0 ? PL_MAYBE : n >= 2 ? PL_STRONG : PL_WEAK;
		default: return n >= 2 ? PL_STRONG : PL_NO;
		}
		hdr = cursor_left(&c) - cursor_left(&h);
		if ((uint64_t)hdr + rl > max_packet)
			return n >= 2 ? PL_STRONG : PL_NO;
		if (n == 0)
			*flen = (uint32_t)(hdr + rl);
		if (!cursor_skip(&c, hdr + rl))
			return n == 0 ? PL_MAYBE : n >= 2 ? PL_STRONG : PL_WEAK;
	}
	return PL_STRONG;
}

/* Judges offset <at> of the buffer: the plausibility verdict, confirmed by a
 * trial decode (on a copy of the codec) for the weak and strong ones. */
static enum plausible judge(struct packets *p, struct pkt_flow *pf, enum proto_dir dir, uint32_t at)
{
	struct pkt_dir *pd = &pf->d[dir];
	struct mqtt_codec probe = pf->codec;
	struct mqtt_packet pkt;
	struct proto_diag d;
	uint32_t flen = 0;
	enum plausible pl = plausible_at(cursor_make(pd->buf + at, pd->len - at), dir, pf->codec.level,
					 p->cfg.max_packet, &flen);

	if (pl == PL_NO || pl == PL_MAYBE)
		return pl;
	return decode(&probe, pf->decoded, dir, cursor_make(pd->buf + at, flen), &pkt, &d) == PROTO_OK ? pl : PL_NO;
}

static void pending_add(struct pkt_dir *pd, uint32_t at)
{
	if (pd->n_pending == RESYNC_PENDING) { /* full: forget the second oldest, keep the oldest */
		memmove(&pd->pending[1], &pd->pending[2], (RESYNC_PENDING - 2) * sizeof(pd->pending[0]));
		pd->n_pending--;
	}
	pd->pending[pd->n_pending++] = at;
}

/* Looks for a packet boundary in the buffer of <dir>; the buffer then starts
 * at it and the direction is synced. The earliest candidate wins once its
 * first packet is whole, decodes, and ends where the data ends or where
 * another plausible header starts; while it is incomplete, later candidates
 * wait behind it (a large packet's body is full of false ones). With <final>
 * (no more data will come) incomplete candidates are given up. */
static void resync(struct packets *p, struct pkt_flow *pf, enum proto_dir dir, bool final)
{
	struct pkt_dir *pd = &pf->d[dir];
	uint32_t keep[RESYNC_PENDING], i, at, found = UINT32_MAX, drop;
	uint8_t n_keep = 0, k;
	enum plausible pl;

	/* Candidates left undecided last time first, then the new bytes. */
	for (i = 0; i < (uint32_t)pd->n_pending + (pd->len - pd->scan_pos) && found == UINT32_MAX; i++) {
		at = i < pd->n_pending ? pd->pending[i] : pd->scan_pos + (i - pd->n_pending);
		pl = judge(p, pf, dir, at);
		if ((pl == PL_STRONG || pl == PL_WEAK) && (n_keep == 0 || final))
			found = at;
		else if (pl != PL_NO)
			keep[n_keep < RESYNC_PENDING ? n_keep++ : RESYNC_PENDING - 1] = at;
	}
	if (found != UINT32_MAX) {
		pd->synced = true;
		pd->n_pending = 0;
		pd->scan_pos = 0;
		drop = found;
	} else {
		drop = final || n_keep == 0 ? pd->len : keep[0];
		pd->n_pending = 0;
		for (k = 0; k < n_keep && !final; k++)
			pending_add(pd, keep[k] - drop);
		pd->scan_pos = pd->len - drop;
	}
	p->stats.dropped += drop;
	buf_consume(p, pd, drop);
}

/* ---- the byte path -------------------------------------------------------- */

/* A TLS record header (RFC 8446 5.1): content type 20-23, version 3.0-3.4,
 * a length up to 2^14 + 2048. No MQTT stream can start with these bytes:
 * 0x14-0x17 are CONNECT with reserved flags set. */
static bool looks_like_tls(struct cursor c)
{
	uint8_t type, major, minor;
	uint16_t len;

	return cursor_u8(&c, &type) && cursor_u8(&c, &major) && cursor_u8(&c, &minor) && cursor_be16(&c, &len) &&
	       type >= 0x14 && type <= 0x17 && major == 3 && minor <= 4 && len > 0 && len <= 18432;
}

/* An MQTT CONNECT at the start of a client's stream, whatever the port:
 * type 1, a Remaining Length, then the protocol name "MQTT" or "MQIsdp". */
static bool looks_like_connect(struct cursor c)
{
	uint8_t first;
	uint32_t rl;
	struct cursor name;
	if (!cursor_u8(&c, &first) || first != 0x10 || cursor_varint(&c, &rl) != CURSOR_VARINT_OK)
		return false;
	return cursor_str16(&c, &name) && (cursor_eq_str(name, "MQTT") || cursor_eq_str(name, "MQIsdp"));
}

/* Starts a packet that is over the cap: skip it by count, report it later. */
static void start_skip(struct pkt_dir *pd, const struct proto_frame *fr, uint64_t have)
{
	pd->big_owed = true;
	pd->big_first = (uint8_t)(fr->type << 4 | fr->flags);
	pd->big_remlen = fr->body_len;
	pd->skip = proto_frame_len(fr) - have;
}

/* Decodes whole packets at the start of the buffer; returns how many more
 * bytes the packet left at its start needs (1 while its header is
 * incomplete), or 0 when the buffer is used up, a skip began or sync was lost. */
static uint64_t drain_buffer(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			     const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];
	struct cursor rest = cursor_make(pd->buf, pd->len), frame;
	uint64_t need = 0;

	while (pd->skip == 0) {
		struct proto_frame fr = { 0 };
		struct proto_diag d;
		struct cursor after_first = rest;
		uint8_t first;
		enum proto_err r = mqtt_frame_peek(rest, 0, &fr, &d);
		uint64_t flen = proto_frame_len(&fr);
		if (!cursor_u8(&after_first, &first))
			break;
		if (r != PROTO_OK && r != PROTO_NEED_MORE) { /* a Remaining Length no stream can carry */
			count(p, pf, dir, first, false);
			packets_emit_packet(p, f, dir, first, 0, level_of(pf), NULL, &d, at);
			rest = after_first; /* look for the next packet from the byte after */
			lose_sync(p, pd);
			break;
		}
		if (fr.hdr_len != 0 && flen > p->cfg.max_packet) {
			size_t have = cursor_left(&rest) < flen ? cursor_left(&rest) : (size_t)flen;
			start_skip(pd, &fr, have);
			if (!cursor_skip(&rest, have))
				break;
			if (pd->skip == 0)
				emit_too_large(p, f, pf, dir, at);
			continue;
		}
		if (r == PROTO_NEED_MORE || !cursor_take(&rest, (size_t)flen, &frame)) {
			need = fr.hdr_len != 0 ? flen - cursor_left(&rest) : 1;
			break;
		}
		handle_frame(p, f, pf, dir, frame, at);
	}
	buf_consume(p, pd, pd->len - (uint32_t)cursor_left(&rest));
	return need;
}

static void on_data(void *ctx, struct tcp_flow *f, enum proto_dir dir, struct cursor data, const struct tcp_when *at)
{
	struct packets *p = ctx;
	struct pkt_flow *pf = f->user;
	struct pkt_dir *pd;

	if (pf == NULL || pf->tls || pf->ignored)
		return;
	if (pf->amps) {
		packets_amps_data(p, f, pf, dir, data, at);
		return;
	}
	/* A flow off the MQTT ports is MQTT if its client opens with CONNECT. */
	if (pf->probing) {
		if (dir == PROTO_S2C)
			return;
		if (!looks_like_connect(data)) {
			pf->ignored = true;
			return;
		}
		pf->probing = false;
		p->stats.flows++;
	}
	pd = &pf->d[dir];
	if (!pd->started) {
		pd->started = true;
		pd->synced = f->half[dir].syn; /* from the first byte of the stream */
		if (looks_like_tls(data)) {
			pf->tls = true;
			buf_drop(p, &pf->d[0]);
			buf_drop(p, &pf->d[1]);
			return;
		}
	}
	for (;;) {
		uint64_t need;
		struct cursor part;
		size_t n;

		if (pd->skip > 0) {
			n = cursor_left(&data) < pd->skip ? cursor_left(&data) : (size_t)pd->skip;
			if (n == 0 || !cursor_skip(&data, n))
				break;
			pd->skip -= n;
			if (pd->skip == 0 && pd->big_owed)
				emit_too_large(p, f, pf, dir, at);
			continue;
		}
		if (!pd->synced) {
			if (cursor_empty(&data))
				break;
			if (!buf_append(p, pd, data.p, cursor_left(&data))) {
				p->stats.dropped += pd->len; /* cannot hold more: start over on this chunk */
				pd->len = 0;
				lose_sync(p, pd);
				if (!buf_append(p, pd, data.p, cursor_left(&data)))
					break;
			}
			data.left = 0;
			resync(p, pf, dir, false);
			if (!pd->synced)
				break; /* the rest waits for more data */
			continue;
		}
		need = drain_buffer(p, f, pf, dir, at);
		if (!pd->synced || pd->skip > 0)
			continue;
		if (cursor_empty(&data))
			break;
		if (pd->len > 0) { /* complete the buffered packet from <data> */
			n = cursor_left(&data) < need ? cursor_left(&data) : (size_t)need;
			if (!cursor_take(&data, n, &part) || !buf_append(p, pd, part.p, n)) {
				buf_consume(p, pd, pd->len);
				lose_sync(p, pd);
			}
			continue;
		}
		/* Nothing buffered: decode whole packets straight from <data>... */
		for (;;) {
			struct proto_frame fr = { 0 };
			struct proto_diag d;
			enum proto_err r = mqtt_frame_peek(data, 0, &fr, &d);
			if (r != PROTO_OK || proto_frame_len(&fr) > p->cfg.max_packet ||
			    !cursor_take(&data, (size_t)proto_frame_len(&fr), &part))
				break;
			handle_frame(p, f, pf, dir, part, at);
		}
		/* ...and hand the start of anything else to the buffered path, which
		 * waits for the rest, starts a skip or reports a bad header. */
		n = cursor_left(&data) < 5 ? cursor_left(&data) : 5;
		if (n > 0 && (!cursor_take(&data, n, &part) || !buf_append(p, pd, part.p, n)))
			lose_sync(p, pd);
	}
}

/* No byte will follow what <dir> has buffered (a gap, or the flow's end):
 * an unsynced buffer takes the best boundary it has, whole packets are
 * decoded, and what stays buffered is the start of a packet that was cut. */
static void settle(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
		   const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];

	if (!pd->synced && pd->len > 0)
		resync(p, pf, dir, true);
	while (pd->synced && pd->len > 0 && pd->skip == 0) {
		if (drain_buffer(p, f, pf, dir, at) == 0 && !pd->synced && pd->len > 0)
			resync(p, pf, dir, true); /* a bad header in the buffer: scan the rest too */
		else
			break;
	}
}

/* Bytes of <dir> were lost. Inside a packet whose length is known (one being
 * skipped or buffered) the count keeps sync; otherwise look for it again. */
static void on_gap(void *ctx, struct tcp_flow *f, enum proto_dir dir, uint64_t bytes, const struct tcp_when *at)
{
	struct packets *p = ctx;
	struct pkt_flow *pf = f->user;
	struct pkt_dir *pd;
	struct proto_frame fr = { 0 };
	struct proto_diag d;

	if (pf == NULL || pf->tls)
		return;
	pd = &pf->d[dir];
	if (!pf->amps)
		settle(p, f, pf, dir, at);
	/* The engine hears of the loss: the verdict of this flow is less sure,
	 * and a client stream whose start is missing has no CONNECT to expect
	 * (else a PUBLISH after a lost CONNECT reads as a protocol error). */
	struct session *s = pf->probing || pf->ignored ? NULL : session_of(p, f, pf);
	if (s) {
		if (dir == PROTO_C2S)
			s->lost_c2s += bytes;
		else
			s->lost_s2c += bytes;
		if (!s->lost_frame)
			s->lost_frame = at->frame;
		if (dir == PROTO_C2S && !pd->started && !s->connect_seen)
			s->midstream = true;
	}
	if (pf->amps) {
		packets_amps_gap(p, f, pf, dir, bytes, at);
		return;
	}
	if (!pd->started) { /* the stream's first bytes are missing */
		pd->started = true;
		pd->synced = false;
		return;
	}
	if (pd->skip > 0) {
		if (bytes <= pd->skip) {
			pd->skip -= bytes;
			if (pd->skip == 0 && pd->big_owed)
				emit_too_large(p, f, pf, dir, at);
			return;
		}
		bytes -= pd->skip;
		pd->skip = 0;
		if (pd->big_owed)
			emit_too_large(p, f, pf, dir, at);
	} else if (pd->synced && pd->len > 0 &&
		   mqtt_frame_peek(cursor_make(pd->buf, pd->len), 0, &fr, &d) == PROTO_NEED_MORE && fr.hdr_len != 0) {
		uint64_t need = proto_frame_len(&fr) - pd->len;
		buf_consume(p, pd, pd->len);
		pf->lost++; /* this packet cannot be decoded: lost with the gap */
		if (bytes <= need) {
			pd->skip = need - bytes;
			pd->big_owed = false;
			return;
		}
	}
	buf_consume(p, pd, pd->len);
	lose_sync(p, pd);
}

static bool is_port(const struct packets *p, uint16_t port)
{
	size_t i;

	for (i = 0; i < p->cfg.n_ports; i++)
		if (p->cfg.ports[i] == port)
			return true;
	return false;
}

static bool is_amps_port(const struct packets *p, uint16_t port)
{
	for (size_t i = 0; i < p->cfg.n_amps_ports; i++)
		if (p->cfg.amps_ports[i] == port)
			return true;
	return false;
}

/* Decode a flow when either endpoint is on an MQTT port (or an AMPS one). */
static bool want(void *ctx, struct tcp_flow *f)
{
	struct packets *p = ctx;
	struct pkt_flow *pf;

	bool on_port = is_port(p, f->server.port) || is_port(p, f->client.port);
	/* Off the MQTT ports only flows whose handshake we saw can be probed:
	 * their first client bytes are the start of the stream. */
	if (!on_port && !f->syn_seen)
		return false;
	pf = calloc(1, sizeof(*pf));
	if (pf == NULL)
		return false;
	mqtt_codec_init(&pf->codec);
	pf->codec.assumed_level = MQTT_LEVEL_311;
	pf->amps = is_amps_port(p, f->server.port) || is_amps_port(p, f->client.port);
	amps_codec_init(&pf->acodec, AMPS_WIRE_AUTO);
	pf->probing = !on_port;
	f->user = pf;
	if (on_port)
		p->stats.flows++;
	return true;
}

static enum eng_close close_how(const struct tcp_flow *f)
{
	return f->closed_side == PROTO_C2S ? (f->closed_rst ? ENG_CLOSE_CLIENT_RST : ENG_CLOSE_CLIENT_FIN)
					   : (f->closed_rst ? ENG_CLOSE_BROKER_RST : ENG_CLOSE_BROKER_FIN);
}

/* The first FIN or RST: the moment the session ended, for the engine. */
static void on_close(void *ctx, struct tcp_flow *f, const struct tcp_when *at)
{
	struct packets *p = ctx;
	struct pkt_flow *pf = f->user;

	if (pf == NULL || !pf->has_session || pf->sess.ended)
		return;
	pf->sess.frame = at->frame;
	engine_session_close(p->cfg.eng, &pf->sess, close_how(f), at->ts_us);
}

/* What TCP shows of the client's reading, for the engine: its zero-window
 * state and the bytes the broker sent that it has not acknowledged, given as
 * the queue depth toward the client at capture time. */
static void on_window(void *ctx, struct tcp_flow *f, const struct tcp_when *at)
{
	struct packets *p = ctx;
	struct pkt_flow *pf = f->user;
	const struct tcp_half *c = &f->half[PROTO_C2S];
	struct eng_action act;

	if (pf == NULL || !pf->has_session || pf->sess.ended)
		return;
	pf->sess.client_window_zero = c->zero_window;
	pf->sess.client_window_zero_us = c->zero_window ? c->zero_since.ts_us : 0;
	pf->sess.client_window_zero_frame = c->zero_window ? c->zero_since.frame : 0;
	pf->sess.client_window_probes = c->zero_window ? c->probes : 0;
	/* Most segments leave the depth as it was: the engine hears of changes
	 * (its slow-client timers, off in the sniffer, would want every call). */
	uint64_t queued = tcp_flow_unacked(f, PROTO_S2C);
	if (pf->queue_told && queued == pf->queue_told_bytes)
		return;
	pf->queue_told = true;
	pf->queue_told_bytes = queued;
	engine_on_queue(p->cfg.eng, &pf->sess, queued, at->ts_us, &act);
}

static void on_end(void *ctx, struct tcp_flow *f)
{
	struct packets *p = ctx;
	struct pkt_flow *pf = f->user;

	if (pf == NULL)
		return;
	if (pf->probing || pf->ignored) { /* never MQTT: nothing to say */
		engine_session_free(&pf->sess);
		free(pf);
		f->user = NULL;
		return;
	}
	if (!pf->tls && pf->amps) {
		packets_amps_settle(p, f, pf, PROTO_C2S, &f->last);
		packets_amps_settle(p, f, pf, PROTO_S2C, &f->last);
	} else if (!pf->tls) {
		settle(p, f, pf, PROTO_C2S, &f->last);
		settle(p, f, pf, PROTO_S2C, &f->last);
	}
	if (pf->d[0].big_owed)
		emit_too_large(p, f, pf, PROTO_C2S, &f->last);
	if (pf->d[1].big_owed)
		emit_too_large(p, f, pf, PROTO_S2C, &f->last);
	packets_emit_flow(p, f, pf);
	if (pf->has_session && !pf->sess.ended) {
		/* Packets after the close opened the session: it is closed all the same. */
		pf->sess.frame = f->closed ? f->closed_frame : f->last.frame;
		engine_session_close(p->cfg.eng, &pf->sess, f->closed ? close_how(f) : ENG_CLOSE_CAPTURE_END,
				     f->last.ts_us);
	}
	buf_drop(p, &pf->d[0]);
	buf_drop(p, &pf->d[1]);
	engine_session_free(&pf->sess);
	free(pf);
	f->user = NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

struct packets *packets_new(const struct packets_config *cfg)
{
	struct packets *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->cfg = *cfg;
	if (p->cfg.out == NULL)
		p->cfg.out = stdout;
	if (p->cfg.max_packet == 0)
		p->cfg.max_packet = PACKETS_DEFAULT_MAX_PACKET;
	if (p->cfg.max_packet < 2)
		p->cfg.max_packet = 2; /* the smallest packet: PINGREQ */
	if (p->cfg.max_buffered == 0)
		p->cfg.max_buffered = DEFAULT_MAX_BUFFERED;
	if (p->cfg.n_ports > TCP_STREAM_MAX_PORTS)
		p->cfg.n_ports = TCP_STREAM_MAX_PORTS;
	if (p->cfg.n_amps_ports > TCP_STREAM_MAX_PORTS)
		p->cfg.n_amps_ports = TCP_STREAM_MAX_PORTS;
	return p;
}

void packets_stream_ops(struct packets *p, struct tcp_stream_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->want = want;
	ops->on_data = on_data;
	ops->on_gap = on_gap;
	ops->on_end = on_end;
	ops->on_close = on_close;
	ops->on_window = on_window;
	ops->ctx = p;
}

const struct packets_stats *packets_stats(const struct packets *p)
{
	return &p->stats;
}

void packets_free(struct packets *p)
{
	free(p);
}

/* ---- for packets_amps.c ------------------------------------------------------ */

void packets_count(struct packets *p, struct pkt_flow *pf, enum proto_dir dir, uint8_t first, bool ok)
{
	count(p, pf, dir, first, ok);
}

struct session *packets_session(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf)
{
	return session_of(p, f, pf);
}

bool packets_buf_append(struct packets *p, struct pkt_dir *pd, const uint8_t *src, size_t n)
{
	return buf_append(p, pd, src, n);
}

void packets_buf_consume(struct packets *p, struct pkt_dir *pd, uint32_t n)
{
	buf_consume(p, pd, n);
}
