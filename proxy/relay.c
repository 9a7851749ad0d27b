/* The relay: moves bytes from one side's input to the other side's output,
 * one frame at a time (MQTT packet or AMPS frame: the connection's wire_ops
 * frames and decodes), and lets the engine see each frame first.
 * Packets are moved between evbuffers without copying (evbuffer_remove_buffer
 * hands over the chains); a packet is only made contiguous when it spans
 * chains, and a PUBLISH larger than PROXY_STREAM_HEAD is decoded from its
 * first bytes and streamed through while the rest arrives, so memory per
 * connection stays bounded by the configured buffer whatever the packet size.
 * Nothing is dropped or altered unless the engine said so. */
#include "proxy/proxy.h"

#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>

#include <event2/buffer.h>

static struct bufferevent *src_of(struct conn *c, enum proto_dir d) { return d == PROTO_C2S ? c->cbev : c->ubev; }
static struct bufferevent *dst_of(struct conn *c, enum proto_dir d) { return d == PROTO_C2S ? c->ubev : c->cbev; }

/* Remembers where a packet toward the client starts, so that a slow client's
 * queue can later be cut at a packet boundary (see relay_cut_client_queue). */
void relay_note_s2c_boundary(struct conn *c, uint64_t at)
{
	uint64_t drained = c->s2c_added - evbuffer_get_length(bufferevent_get_output(c->cbev));
	unsigned k = 0;
	while (k < c->n_boundary && c->boundary[k] < drained)
		k++;
	if (k) { /* forget boundaries already sent */
		memmove(c->boundary, c->boundary + k, (c->n_boundary - k) * sizeof c->boundary[0]);
		c->n_boundary -= k;
	}
	/* Keeping the oldest boundaries is what a cut needs: when full, skip. */
	if (c->n_boundary < PROXY_BOUNDARIES)
		c->boundary[c->n_boundary++] = at;
}

void relay_cut_client_queue(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t len = evbuffer_get_length(out);
	uint64_t drained = c->s2c_added - len;
	uint64_t cut = c->s2c_added;
	for (unsigned k = 0; k < c->n_boundary; k++)
		if (c->boundary[k] >= drained) {
			cut = c->boundary[k];
			break;
		}
	size_t keep = (size_t)(cut - drained);
	if (keep >= len)
		return;
	struct evbuffer *tmp = evbuffer_new();
	if (!tmp)
		return;
	evbuffer_remove_buffer(out, tmp, keep);
	evbuffer_drain(out, evbuffer_get_length(out));
	evbuffer_add_buffer(out, tmp);
	evbuffer_free(tmp);
	c->s2c_added = drained + keep;
	c->n_boundary = 0;
}

uint64_t relay_client_depth(struct conn *c)
{
	uint64_t depth = evbuffer_get_length(bufferevent_get_output(c->cbev));
	int unsent = 0;
	evutil_socket_t fd = bufferevent_getfd(c->cbev);
	if (fd >= 0 && ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0)
		depth += (uint64_t)unsent;
	return depth;
}

/* Moves <n> bytes on, or drops them when the engine held the packet. */
static void pass(struct conn *c, enum proto_dir d, size_t n, bool drop)
{
	struct evbuffer *in = bufferevent_get_input(src_of(c, d));
	if (drop) {
		evbuffer_drain(in, n);
		return;
	}
	/* The broker is dialled when the first byte is to reach it. */
	if (d == PROTO_C2S && !c->upstream_started && !conn_start_upstream(c))
		return;
	c->w->m.bytes[d] += n;
	if (d == PROTO_S2C)
		c->s2c_added += n;
	struct bufferevent *dst = dst_of(c, d);
	struct evbuffer *out = bufferevent_get_output(dst);
	/* Nothing queued ahead of them: the bytes go straight from this side's
	 * input to the other side's socket. Queued in the bufferevent instead,
	 * they would cost an epoll_ctl to add its write event and another to
	 * remove it once written, and a loop pass in between (bench/: 1.5
	 * epoll_ctl per message). Only what the socket does not take is queued,
	 * behind which later bytes then wait, so the order holds.
	 * A TLS side is written by its bufferevent only (tls.c). */
	if (evbuffer_get_length(out) == 0 && (d == PROTO_S2C || c->upstream_up) &&
	    !c->tls_side[d == PROTO_C2S ? PROTO_S2C : PROTO_C2S]) {
		evutil_socket_t fd = c->fd[d == PROTO_C2S ? PROTO_S2C : PROTO_C2S];
		int w = fd >= 0 ? evbuffer_write_atmost(in, fd, (ev_ssize_t)n) : -1;
		if (w > 0)
			n -= (size_t)w;
	}
	if (n) {
		evbuffer_remove_buffer(in, out, n);
		conn_queued(dst);
	}
}

/* Points <out> at <n> contiguous bytes at the start of <in>: in place when
 * the first chain holds them, else pulled up (bounded by the input cap). */
static const uint8_t *contiguous(struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, (ev_ssize_t)n, NULL, &v, 1) == 1 && v.iov_len >= n)
		return v.iov_base;
	return evbuffer_pullup(in, (ev_ssize_t)n);
}

/* Shows the engine the frame at <p>, of which <have> of <total> bytes are at
 * hand: decoded whole, or a large PUBLISH by its head. PROTO_NEED_MORE: the
 * head is not enough yet and nothing was shown; else <act> says what to do. */
static enum proto_err show_engine(struct conn *c, enum proto_dir d, const uint8_t *p, size_t have, uint64_t total,
				  struct eng_action *act)
{
	struct proto_facts facts;
	struct proto_diag diag;
	enum proto_err r = c->ops->facts(c, d, cursor_make(p, have < total ? have : (size_t)total), total, &facts, &diag);
	if (r == PROTO_NEED_MORE)
		return r;
	int64_t now = c->relay_now_us;
	if (r == PROTO_OK) {
		/* Packet counts by type are MQTT's (the metric's label set). */
		if (facts.protocol == PROTO_ID_MQTT)
			c->w->m.packets[d][p[0] >> 4]++;
		engine_on_facts(c->w->px->eng, &c->s, d, &facts, (uint32_t)total, now, act);
	} else
		engine_on_bad_frame(c->w->px->eng, &c->s, d, &diag, p[0] >> 4, total, now, act);
	return r;
}

/* Carries out <act> on the frame at the head of the input, of which <have>
 * of <total> bytes are there: passed on or dropped, the rest of it streamed
 * the same way as it arrives, then the engine's other orders. */
static void act_on_frame(struct conn *c, enum proto_dir d, size_t have, uint64_t total, const struct eng_action *act)
{
	bool hold = (act->flags & ENG_HOLD) != 0;
	if (d == PROTO_S2C && !hold)
		relay_note_s2c_boundary(c, c->s2c_added);
	size_t now_n = have >= total ? (size_t)total : have;
	pass(c, d, now_n, hold);
	if (now_n < total) {
		c->dir[d].skip_left = total - now_n;
		c->dir[d].skip_drop = hold;
	}
	if (act->flags & ~(unsigned)ENG_HOLD)
		conn_apply(c, act);
}

/* Handles one frame whose first <have> bytes (all of it when <have> ==
 * <total>) are at the start of the input. Returns false when the connection
 * is closing and relaying must stop. */
static bool one_frame(struct conn *c, enum proto_dir d, const uint8_t *p, size_t have, uint64_t total)
{
	struct eng_action act;
	if (show_engine(c, d, p, have, total, &act) == PROTO_NEED_MORE)
		return true; /* caller waits */
	act_on_frame(c, d, have, total, &act);
	return !c->closing;
}

/* The fast path: walks the whole packets at the head of the input in place,
 * shows each to the engine, and moves the run on with one call. Returns the
 * bytes it moved (0: the head packet needs the careful path below), or
 * (size_t)-1 when it stopped at a packet the engine acted on. */
#define RELAY_WINDOW (128 * 1024)
static size_t relay_run(struct conn *c, enum proto_dir d, struct evbuffer *in, size_t len, uint32_t cap)
{
	uint8_t hdr[5];
	struct proto_frame fr = { 0 };
	struct proto_diag diag;
	evbuffer_copyout(in, hdr, len < sizeof hdr ? len : sizeof hdr);
	enum proto_err r = c->ops->peek(c, d, cursor_make(hdr, len < sizeof hdr ? len : sizeof hdr), cap, &fr, &diag);
	if ((r != PROTO_OK && r != PROTO_NEED_MORE) || fr.hdr_len == 0 || proto_frame_len(&fr) > RELAY_WINDOW ||
	    proto_frame_len(&fr) > len)
		return 0;
	/* The walk covers the first chain only: pulling a whole window up would
	 * copy (and often allocate) up to RELAY_WINDOW bytes per call; a packet
	 * across chains is left to the careful path, which pulls up just it. */
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len < proto_frame_len(&fr))
		return 0;
	size_t window = v.iov_len < RELAY_WINDOW ? v.iov_len : RELAY_WINDOW;
	const uint8_t *p = v.iov_base;
	size_t off = 0;
	while (off < window) {
		memset(&fr, 0, sizeof fr);
		if (c->ops->peek(c, d, cursor_make(p + off, window - off), cap, &fr, &diag) != PROTO_OK)
			break; /* partial or bad: the careful path takes it from here */
		size_t total = (size_t)proto_frame_len(&fr);
		struct eng_action act;
		show_engine(c, d, p + off, total, total, &act);
		if (act.flags) {
			/* Everything before it goes on as it is; then this packet as the
			 * engine says. The input moves, so the walk stops here. */
			if (off)
				pass(c, d, off, false);
			act_on_frame(c, d, total, total, &act);
			return (size_t)-1;
		}
		if (d == PROTO_S2C)
			relay_note_s2c_boundary(c, c->s2c_added + off);
		off += total;
	}
	if (off)
		pass(c, d, off, false);
	return off;
}

/* An auto listener: the client's first bytes say which protocol it speaks.
 * False while they do not yet (or the connection closed over them). */
#define GUESS_HEAD 8192
static bool choose_protocol(struct conn *c, enum proto_dir d, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	if (d == PROTO_S2C)
		return false; /* neither protocol's server speaks first: it waits for the client's bytes */
	size_t k = len < GUESS_HEAD ? len : GUESS_HEAD;
	const uint8_t *p = contiguous(in, k);
	enum proto_id id = PROTO_ID_MQTT;
	struct proto_diag diag;
	enum proto_err r = p ? proto_guess(cursor_make(p, k), &id, &diag) : PROTO_NEED_MORE;
	if (r == PROTO_NEED_MORE && len < GUESS_HEAD)
		return false;
	c->ops = r == PROTO_OK ? wire_for_id(id) : &wire_mqtt;
	c->ops->init(c);
	engine_session_set_protocol(&c->s, c->ops->id);
	if (r == PROTO_OK)
		return true;
	if (r == PROTO_NEED_MORE) { /* 8 KiB and still undecided */
		diag = (struct proto_diag){ .cls = PROTO_E_NOT_PROTO, .name = "neither_mqtt_connect_nor_amps_frame",
					    .field = "first bytes" };
	}
	struct eng_action act;
	engine_on_bad_frame(c->w->px->eng, &c->s, d, &diag, 0, 0, proxy_now_us(), &act);
	if (act.flags & ~(unsigned)ENG_HOLD)
		conn_apply(c, &act);
	c->dir[PROTO_C2S].blind = c->dir[PROTO_S2C].blind = true; /* observing: relayed unread */
	return !c->closing;
}

void relay(struct conn *c, enum proto_dir d)
{
	struct bufferevent *src = src_of(c, d);
	struct evbuffer *in = bufferevent_get_input(src);
	struct conn_dir *st = &c->dir[d];
	/* Stored atomically by a reload (run.c), so loaded the same way. */
	uint32_t cap = (uint32_t)__atomic_load_n(&c->w->px->cfg.policies.limits.max_packet_size, __ATOMIC_RELAXED);
	/* One clock reading for every frame this call walks: with small frames
	 * clock_gettime was a tenth of the relay's time under a hypervisor. */
	c->relay_now_us = proxy_now_us();
	c->w->relays++; /* the worker loop's sign of work (worker.c) */

	if (!c->ops && evbuffer_get_length(in) && !choose_protocol(c, d, in))
		return;
	while (!c->closing) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			break;
		if (st->skip_left) {
			size_t n = len < st->skip_left ? len : (size_t)st->skip_left;
			pass(c, d, n, st->skip_drop);
			st->skip_left -= n;
			continue;
		}
		if (st->blind) {
			pass(c, d, len, false);
			break;
		}
		if (relay_run(c, d, in, len, d == PROTO_C2S ? cap : 0) != 0)
			continue;
		uint8_t hdr[5];
		size_t k = len < sizeof hdr ? len : sizeof hdr;
		evbuffer_copyout(in, hdr, k);
		struct proto_frame fr = { 0 };
		struct proto_diag diag;
		/* The client's frames are held to the configured cap; the broker's
		 * are only read. */
		enum proto_err r = c->ops->peek(c, d, cursor_make(hdr, k), d == PROTO_C2S ? cap : 0, &fr, &diag);
		if (r == PROTO_E_NOT_PROTO && c->ops->explain) {
			/* What the bytes are instead may take more than a header to tell
			 * (an HTTP request: preflight or WebSocket upgrade). */
			size_t m = len < GUESS_HEAD ? len : GUESS_HEAD;
			const uint8_t *p = contiguous(in, m);
			if (p && !c->ops->explain(cursor_make(p, m), &diag) && len < GUESS_HEAD)
				break;
		}
		if (r != PROTO_OK && r != PROTO_NEED_MORE) {
			struct eng_action act;
			/* Over the configured cap, but a readable header: reported, and
			 * unless enforced streamed through unread, framing intact. */
			struct proto_frame whole = { 0 };
			struct proto_diag ignore;
			bool readable = r == PROTO_E_TOO_LARGE &&
					c->ops->peek(c, d, cursor_make(hdr, k), UINT32_MAX, &whole, &ignore) != PROTO_E_MALFORMED &&
					whole.hdr_len != 0;
			engine_on_bad_frame(c->w->px->eng, &c->s, d, &diag, hdr[0] >> 4, readable ? proto_frame_len(&whole) : 0,
					    proxy_now_us(), &act);
			if (act.flags & ~(unsigned)ENG_HOLD) {
				conn_apply(c, &act);
				if (c->closing)
					break;
			}
			if (readable) {
				st->skip_left = proto_frame_len(&whole);
				st->skip_drop = false;
				continue;
			}
			/* Observing only: the stream cannot be framed any more, so it is
			 * relayed as it comes (the engine has logged why). */
			st->blind = true;
			continue;
		}
		if (fr.hdr_len == 0)
			break; /* header not complete yet */
		uint64_t total = proto_frame_len(&fr);
		if (len >= total) {
			if (!one_frame(c, d, contiguous(in, (size_t)total), (size_t)total, total))
				break;
			continue;
		}
		/* Not all here. A large PUBLISH streams once its head decodes; any
		 * other frame waits to be whole, up to the input cap. */
		if (total > PROXY_STREAM_HEAD && c->ops->streams(&fr)) {
			size_t head = len < PROXY_STREAM_HEAD ? len : PROXY_STREAM_HEAD;
			size_t before = evbuffer_get_length(in);
			if (!one_frame(c, d, contiguous(in, head), head, total))
				break;
			if (evbuffer_get_length(in) != before)
				continue; /* decoded and passed: now streaming */
			if (len < PROXY_STREAM_HEAD)
				break;    /* the head needs more bytes */
		}
		if (total > c->w->px->in_cap) {
			/* Too big to inspect whole: stream it through unread. The engine
			 * hears of it as a packet it could not look at. */
			struct eng_action act;
			struct proto_diag big = { .cls = PROTO_E_TOO_LARGE, .reason = 0x95,
						  .name = "packet_not_inspected", .field = "remaining length" };
			engine_on_bad_frame(c->w->px->eng, &c->s, d, &big, fr.type, total, proxy_now_us(), &act);
			act_on_frame(c, d, 0, total, &act);
			continue;
		}
		break; /* wait for the rest of the frame */
	}
}
