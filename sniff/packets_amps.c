/* AMPS framing and decoding over reassembled TCP bytes, for flows on an
 * --amps-port (packets.c dispatches here). Per direction: whole frames found
 * in a delivered chunk are decoded in place; the start of a frame that
 * continues in a later segment is copied into the direction's buffer, capped
 * by the largest frame we accept; a bigger frame is reported and skipped by
 * count. The client's first bytes are checked for what is not AMPS framing
 * (TLS, HTTP, a zlib stream). After a gap, or on a flow picked up mid-stream,
 * the bytes are scanned for a frame boundary: a length within the cap
 * followed by '{', whose header decodes, ending where the data ends or where
 * another such frame starts. Spec: ../shared/protocols/amps.md (framing). */
#include "sniff/packets_internal.h"

#include <string.h>

static uint32_t be32(const uint8_t *b)
{
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static void amps_handle_frame(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			      struct cursor frame, const struct tcp_when *at)
{
	struct amps_header h;
	struct proto_diag d = { 0 };
	struct cursor payload = cursor_make(frame.p + AMPS_LEN_BYTES, frame.left - AMPS_LEN_BYTES);
	enum proto_err r = amps_decode(&pf->acodec, dir, payload, &h, &d);
	packets_count(p, pf, dir, 0, r == PROTO_OK);
	packets_emit_amps(p, f, dir, (uint32_t)payload.left, r == PROTO_OK || h.hdr_len ? &h : NULL, &d, at);
	struct session *s = packets_session(p, f, pf);
	if (!s)
		return;
	struct eng_action act;
	s->frame = at->frame;
	if (r == PROTO_OK) {
		struct proto_facts facts;
		amps_header_facts(&pf->acodec, dir, &h, &facts);
		engine_on_facts(p->cfg.eng, s, dir, &facts, (uint32_t)frame.left, at->ts_us, &act);
	} else {
		engine_on_bad_frame(p->cfg.eng, s, dir, &d, 0, frame.left, at->ts_us, &act);
	}
}

/* A frame over the cap (or a length no stream carries): one line, and the
 * engine hears of it. */
static void amps_bad_header(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			    const struct proto_diag *d, uint64_t len, const struct tcp_when *at)
{
	packets_count(p, pf, dir, 0, false);
	packets_emit_amps(p, f, dir, (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len), NULL, d, at);
	struct session *s = packets_session(p, f, pf);
	if (s) {
		struct eng_action act;
		s->frame = at->frame;
		engine_on_bad_frame(p->cfg.eng, s, dir, d, 0, len, at->ts_us, &act);
	}
}

/* Could a frame start at <i> of <buf>? 2: yes, and it is whole and decodes
 * and is followed by the end of the data or another plausible length; 1: it
 * may, once more bytes come; 0: no. */
static int amps_candidate(const uint8_t *buf, uint32_t len, uint32_t i, uint32_t max)
{
	if (len - i < AMPS_LEN_BYTES + 1)
		return 1;
	uint32_t n = be32(buf + i);
	if (n == 0 || n > max || buf[i + AMPS_LEN_BYTES] != '{')
		return 0;
	if ((uint64_t)i + AMPS_LEN_BYTES + n > len)
		return 1;
	struct amps_header h;
	struct proto_diag d;
	if (amps_json_header(cursor_make(buf + i + AMPS_LEN_BYTES, n), &h, &d) != PROTO_OK)
		return 0;
	uint32_t next = i + AMPS_LEN_BYTES + n;
	if (next == len)
		return 2;
	if (len - next < AMPS_LEN_BYTES)
		return 2;
	uint32_t m = be32(buf + next);
	return m <= max ? 2 : 0;
}

/* Looks for a frame boundary in the buffer of <dir>. With <final> (no more
 * bytes will come) a candidate that may still be cut is given up. */
static void amps_resync(struct packets *p, struct pkt_flow *pf, enum proto_dir dir, bool final)
{
	struct pkt_dir *pd = &pf->d[dir];
	uint32_t i, wait = UINT32_MAX;
	for (i = 0; i < pd->len; i++) {
		int c = amps_candidate(pd->buf, pd->len, i, p->cfg.max_packet);
		if (c == 2 && wait == UINT32_MAX) {
			pd->synced = true;
			break;
		}
		if (c == 1 && wait == UINT32_MAX && !final)
			wait = i; /* keep from here: the earliest that may start a frame */
	}
	uint32_t drop = pd->synced ? i : wait != UINT32_MAX ? wait : pd->len;
	p->stats.dropped += drop;
	packets_buf_consume(p, pd, drop);
}

/* Frames at the start of the buffer; returns the bytes the frame left at its
 * start still needs (0: buffer used up, a skip began, or sync was lost). */
static uint64_t amps_drain(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			   const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];
	struct cursor rest = cursor_make(pd->buf, pd->len), frame;
	uint64_t need = 0;
	while (pd->skip == 0 && !cursor_empty(&rest)) {
		struct proto_frame fr = { 0 };
		struct proto_diag d;
		bool first = dir == PROTO_C2S && f->half[dir].syn && pf->packets == 0;
		enum proto_err r = amps_frame_peek(rest, AMPS_LEN_CORRUPT - 1, first, &fr, &d);
		if (r != PROTO_OK && r != PROTO_NEED_MORE) {
			amps_bad_header(p, f, pf, dir, &d, 0, at);
			if (r == PROTO_E_NOT_PROTO) {
				pf->unframed = true; /* not AMPS framing: nothing more to read here */
				packets_buf_consume(p, pd, pd->len);
				return 0;
			}
			if (!cursor_skip(&rest, 1))
				break;
			pd->synced = false; /* look for the next frame from the byte after */
			break;
		}
		uint64_t flen = proto_frame_len(&fr);
		if (fr.hdr_len != 0 && flen > p->cfg.max_packet) {
			struct proto_diag big;
			amps_fail(&big, AMPS_E_FRAME_TOO_LARGE, "frame length", 0);
			amps_bad_header(p, f, pf, dir, &big, flen, at);
			size_t have = cursor_left(&rest) < flen ? cursor_left(&rest) : (size_t)flen;
			pd->skip = flen - have;
			pd->big_owed = false;
			if (!cursor_skip(&rest, have))
				break;
			continue;
		}
		if (r == PROTO_NEED_MORE || !cursor_take(&rest, (size_t)flen, &frame)) {
			need = fr.hdr_len != 0 ? flen - cursor_left(&rest) : AMPS_LEN_BYTES - cursor_left(&rest);
			break;
		}
		amps_handle_frame(p, f, pf, dir, frame, at);
	}
	packets_buf_consume(p, pd, pd->len - (uint32_t)cursor_left(&rest));
	return need;
}

void packets_amps_data(struct packets *p, struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
		       struct cursor data, const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];
	if (pf->unframed)
		return;
	if (!pd->started) {
		pd->started = true;
		pd->synced = f->half[dir].syn;
	}
	while (!pf->unframed) {
		if (pd->skip > 0) {
			size_t n = cursor_left(&data) < pd->skip ? cursor_left(&data) : (size_t)pd->skip;
			if (n == 0 || !cursor_skip(&data, n))
				break;
			pd->skip -= n;
			continue;
		}
		if (!pd->synced) {
			if (cursor_empty(&data))
				break;
			if (!packets_buf_append(p, pd, data.p, cursor_left(&data))) {
				p->stats.dropped += pd->len;
				packets_buf_consume(p, pd, pd->len);
				if (!packets_buf_append(p, pd, data.p, cursor_left(&data)))
					break;
			}
			data.left = 0;
			amps_resync(p, pf, dir, false);
			if (!pd->synced)
				break;
			continue;
		}
		if (pd->len > 0) {
			uint64_t need = amps_drain(p, f, pf, dir, at);
			if (!pd->synced || pd->skip > 0 || pf->unframed)
				continue;
			if (cursor_empty(&data))
				break;
			if (pd->len > 0) { /* complete the buffered frame from <data> */
				struct cursor part;
				size_t n = cursor_left(&data) < need ? cursor_left(&data) : (size_t)need;
				if (!cursor_take(&data, n, &part) || !packets_buf_append(p, pd, part.p, n)) {
					packets_buf_consume(p, pd, pd->len);
					pd->synced = false;
				}
				continue;
			}
		}
		if (cursor_empty(&data))
			break;
		/* Nothing buffered: whole frames straight from <data>, the rest to the buffer. */
		for (;;) {
			struct proto_frame fr = { 0 };
			struct proto_diag d;
			struct cursor part;
			bool first = dir == PROTO_C2S && f->half[dir].syn && pf->packets == 0;
			enum proto_err r = amps_frame_peek(data, AMPS_LEN_CORRUPT - 1, first, &fr, &d);
			if (r != PROTO_OK || proto_frame_len(&fr) > p->cfg.max_packet ||
			    !cursor_take(&data, (size_t)proto_frame_len(&fr), &part))
				break;
			amps_handle_frame(p, f, pf, dir, part, at);
		}
		size_t n = cursor_left(&data) < AMPS_LEN_BYTES ? cursor_left(&data) : AMPS_LEN_BYTES;
		struct cursor part;
		if (n > 0 && (!cursor_take(&data, n, &part) || !packets_buf_append(p, pd, part.p, n)))
			pd->synced = false;
		if (n == 0)
			break;
	}
}

void packets_amps_gap(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
		      uint64_t bytes, const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];
	packets_amps_settle(p, f, pf, dir, at);
	if (!pd->started) {
		pd->started = true;
		pd->synced = false;
		return;
	}
	if (pd->skip > 0) {
		if (bytes <= pd->skip) {
			pd->skip -= bytes;
			return;
		}
		pd->skip = 0;
	} else if (pd->synced && pd->len >= AMPS_LEN_BYTES) {
		/* inside a frame whose length is known: count through the gap */
		uint64_t need = (uint64_t)AMPS_LEN_BYTES + be32(pd->buf) - pd->len;
		packets_buf_consume(p, pd, pd->len);
		pf->lost++;
		if (bytes <= need) {
			pd->skip = need - bytes;
			return;
		}
	}
	packets_buf_consume(p, pd, pd->len);
	pd->synced = false;
}

void packets_amps_settle(struct packets *p, const struct tcp_flow *f, struct pkt_flow *pf, enum proto_dir dir,
			 const struct tcp_when *at)
{
	struct pkt_dir *pd = &pf->d[dir];
	if (pf->unframed)
		return;
	for (int round = 0; round < 4 && pd->len > 0 && pd->skip == 0; round++) {
		if (!pd->synced)
			amps_resync(p, pf, dir, true);
		if (!pd->synced)
			break;
		amps_drain(p, f, pf, dir, at);
	}
}
