/* One proxied connection: the client's socket, the broker's socket, the
 * session, and what happens at either end. The broker is dialled when the
 * client's first packet is to be forwarded, so a refused or silent client
 * never reaches it. Closes are half-closes where TCP allows: a side that sent
 * FIN gets its pending data delivered and a FIN passed on; a reset is passed
 * on as a reset. Every connection ends in engine_session_close(), which logs
 * its one disconnect event. */
#include "proxy/proxy.h"
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#define LINGER_S 2 /* how long a final DISCONNECT or CONNACK may take to flush */
#define DEPTH_CHECK_BYTES (64 * 1024)

int64_t proxy_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void addr_str(const struct sockaddr *sa, char *full, size_t fcap, char *ip, size_t icap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
		snprintf(full, fcap, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
		snprintf(full, fcap, "[%s]:%u", host, port);
	} else {
		snprintf(full, fcap, "?");
	}
	snprintf(ip, icap, "%s", host);
}

static void reaper_queue(struct conn *c)
{
	if (c->reaping)
		return;
	c->reaping = true;
	c->reap_next = c->w->reap;
	c->w->reap = c;
	event_active(c->w->reaper, EV_TIMEOUT, 0);
}

/* Reading is ours, not the bufferevents'. libevent 2.1 reads a socket 4 KiB
 * at a time, with an ioctl(FIONREAD) before each read and one read per
 * wake-up: a 16 KiB packet cost four wake-ups on each side (bench/). We
 * readv() up to READ_CHUNK at a time into the bufferevent's own input
 * buffer until the socket is empty, then relay once. Writing, with its
 * watermarks, stays with the bufferevents. */
#define READ_CHUNK (64 * 1024)
#define READ_MIN (4 * 1024)
/* The space reserved per read follows the traffic: a read that fills it
 * doubles it up to READ_CHUNK, a wake-up that reads under a quarter of it
 * halves it. A 64 KiB chain malloc'd and freed for every 14-byte CONNECT or
 * PINGREQ showed as heap growth and trimming (sysmalloc, madvise) in the
 * connection-setup profile. */
#define READ_BUDGET (256 * 1024) /* per wake-up, so one busy side cannot starve the rest */

static void reading(struct conn *c, enum proto_dir d, bool on)
{
	if (c->tls_side[d]) { /* a TLS side is read by its bufferevent (tls.c) */
		(on ? bufferevent_enable : bufferevent_disable)(d == PROTO_C2S ? c->cbev : c->ubev, EV_READ);
		c->rd_on[d] = on;
		return;
	}
	if (!c->rev[d] || c->rd_on[d] == on)
		return;
	c->rd_on[d] = on;
	if (on)
		event_add(c->rev[d], NULL);
	else
		event_del(c->rev[d]);
}

/* 0: read what there was (<*got> bytes); 1: end of stream; -1: error. */
static int read_socket(struct conn *c, enum proto_dir d, size_t *got)
{
	struct bufferevent *bev = d == PROTO_C2S ? c->cbev : c->ubev;
	evutil_socket_t fd = c->fd[d];
	struct evbuffer *in = bufferevent_get_input(bev);
	struct conn_dir *st = &c->dir[d];
	*got = 0;
	while (*got < READ_BUDGET && evbuffer_get_length(in) < c->w->px->in_cap) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		size_t chunk = (size_t)READ_MIN << st->rd_shift;
		int n = evbuffer_reserve_space(in, (ev_ssize_t)chunk, v, 2);
		if (n <= 0)
			return -1;
		size_t want = 0;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			want += v[i].iov_len;
		}
		ssize_t r = readv(fd, iov, n);
		if (r <= 0) {
			evbuffer_commit_space(in, v, 0);
			if (r == 0)
				return 1;
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		size_t left = (size_t)r;
		int used = 0;
		for (; used < n && left > 0; used++) {
			if (v[used].iov_len > left)
				v[used].iov_len = left;
			left -= v[used].iov_len;
		}
		evbuffer_commit_space(in, v, used);
		*got += (size_t)r;
		if ((size_t)r < want)
			break; /* the socket is empty */
		if (((size_t)READ_MIN << st->rd_shift) < READ_CHUNK)
			st->rd_shift++;
	}
	if (st->rd_shift && *got < ((size_t)READ_MIN << st->rd_shift) / 4)
		st->rd_shift--;
	return 0;
}

static void client_read_cb(struct bufferevent *bev, void *arg);
static void upstream_read_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void upstream_event_cb(struct bufferevent *bev, short what, void *arg);

/* A bufferevent's writing is switched on when the first bytes are queued
 * in it, not at accept: enabled on an empty output, libevent adds its write
 * event at once, wakes up on the writable socket, finds nothing to write and
 * removes it again; two epoll_ctl and a loop pass per side per connection.
 * Once on, it stays on, and libevent adds and removes the event itself. */
void conn_queued(struct bufferevent *bev)
{
	if (!(bufferevent_get_enabled(bev) & EV_WRITE))
		bufferevent_enable(bev, EV_WRITE);
}

static void queue_out(struct bufferevent *bev, const uint8_t *pkt, size_t n)
{
	bufferevent_write(bev, pkt, n);
	conn_queued(bev);
}

static void readable(struct conn *c, enum proto_dir d)
{
	size_t got;
	int st = read_socket(c, d, &got);
	if (got)
		(d == PROTO_C2S ? client_read_cb : upstream_read_cb)(d == PROTO_C2S ? c->cbev : c->ubev, c);
	if (c->reaping)
		return;
	if (st != 0) {
		reading(c, d, false);
		short what = BEV_EVENT_READING | (st > 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR);
		if (d == PROTO_C2S)
			client_event_cb(c->cbev, what, c);
		else
			upstream_event_cb(c->ubev, what, c);
	} else if (evbuffer_get_length(bufferevent_get_input(d == PROTO_C2S ? c->cbev : c->ubev)) >= c->w->px->in_cap) {
		/* Full and the relay could not take any: wait to be drained
		 * rather than spin on a readable socket. */
		reading(c, d, false);
		c->in_full[d] = true;
	}
}

static void client_readable_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	readable(arg, PROTO_C2S);
}

static void upstream_readable_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	readable(arg, PROTO_S2C);
}

/* Ends the connection now: the engine logs why, both sockets go. */
void conn_close(struct conn *c, enum eng_close how)
{
	if (c->reaping)
		return;
	c->closing = true;
	engine_session_close(c->w->px->eng, &c->s, how, proxy_now_us());
	reading(c, PROTO_C2S, false);
	reading(c, PROTO_S2C, false);
	if (c->cbev)
		bufferevent_disable(c->cbev, EV_READ | EV_WRITE);
	if (c->ubev)
		bufferevent_disable(c->ubev, EV_READ | EV_WRITE);
	reaper_queue(c);
}

void conn_rst_on_close(evutil_socket_t fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void set_rst(struct bufferevent *bev)
{
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd >= 0)
		conn_rst_on_close(fd);
}

void conn_free(struct conn *c)
{
	struct worker *w = c->w;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
	__atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
	tls_conn_free(c);
	if (c->linger)
		event_free(c->linger);

	for (int d = 0; d < 2; d++)
		if (c->rev[d])
			event_free(c->rev[d]);
	if (c->cbev)
		bufferevent_free(c->cbev);
	if (c->ubev)
		bufferevent_free(c->ubev);
	engine_session_free(&c->s);
	free(c);
}

/* After a final packet to the client: close once it is flushed, or after
 * LINGER_S if the client does not read. */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	set_rst(c->cbev);
	conn_close(c, c->close_how);
}

/* Closing, the broker side is done when it was never reached or has closed
 * after our FIN. Until then the bytes already relayed toward it (the
 * client's last packets, the DISCONNECT 0x04 of end_upstream_keeping_will())
 * may still be on their way: conn_free() would discard a bufferevent's
 * pending output, and a close() with the broker's answers unread sends a
 * RST, on which mosquitto drops the packets it has read but not handled. */
static bool upstream_flushed(const struct conn *c)
{
	return !c->ubev || !c->upstream_up || c->upstream_eof;
}

/* Closing: once our last bytes to the broker are written, sends FIN and reads
 * (and drops) what the broker still sends until it closes too. */
static void upstream_finish(struct conn *c)
{
	if (upstream_flushed(c) || evbuffer_get_length(bufferevent_get_output(c->ubev)) > 0)
		return;
	evutil_socket_t fd = bufferevent_getfd(c->ubev);
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
	reading(c, PROTO_S2C, true);
}

static void close_after_flush(struct conn *c, enum eng_close how)
{
	c->closing = true;
	c->close_how = how;
	reading(c, PROTO_S2C, false);
	reading(c, PROTO_C2S, false);
	upstream_finish(c);
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 && upstream_flushed(c)) {
		conn_close(c, how);
		return;
	}
	bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
	bufferevent_enable(c->cbev, EV_WRITE);
	if (!upstream_flushed(c)) { /* upstream_write_cb sends FIN once it is all out */
		bufferevent_setwatermark(c->ubev, EV_WRITE, 0, 0);
		bufferevent_enable(c->ubev, EV_WRITE);
	}
	if (!c->linger)
		c->linger = evtimer_new(c->w->base, linger_cb, c);
	struct timeval tv = { LINGER_S, 0 };
	if (c->linger)
		evtimer_add(c->linger, &tv);
}

/* While reading the broker's socket is paused (the client does not keep
 * up), a close from the broker would go unseen until the client drained: a
 * broker dropping a slow client was logged as the client leaving, later. So
 * the sweep asks the kernel (TCP_INFO) how a paused broker socket stands. A
 * reset ends it all now, as it would have ended a direct connection. After a
 * FIN, what the broker sent before it (maybe a DISCONNECT with its reason)
 * still goes to the client as it drains, and the end-of-stream path closes
 * then; a client that does not drain within LINGER_S is closed as the broker
 * closed it.
 * (EV_CLOSED cannot do this: libevent reports a reset's EPOLLHUP as
 * EV_READ|EV_WRITE only, and epoll would then wake the loop without end.) */
static void check_paused_broker(struct conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->ubev);
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return;
	if (ti.tcpi_state == TCP_CLOSE) { /* reset */
		set_rst(c->cbev);
		conn_close(c, ENG_CLOSE_BROKER_RST);
		return;
	}
	if (ti.tcpi_state != TCP_CLOSE_WAIT || c->linger_armed) /* no FIN from the broker, or seen */
		return;
	c->close_how = ENG_CLOSE_BROKER_FIN;
	if (!c->linger)
		c->linger = evtimer_new(c->w->base, linger_cb, c);
	struct timeval tv = { LINGER_S, 0 };
	if (c->linger && evtimer_add(c->linger, &tv) == 0)
		c->linger_armed = true;
}

/* Ends the client's session at the broker so that it behaves as if the client
 * had vanished: a 3.1.1 broker publishes the Will when the TCP connection
 * drops without DISCONNECT; a v5 broker is told 0x04, Disconnect with Will. */
static void end_upstream_keeping_will(struct conn *c)
{
	if (!c->ubev || !c->upstream_started || !c->ops)
		return;
	uint8_t pkt[8];
	size_t n = c->upstream_up ? c->ops->upstream_goodbye(c, pkt, sizeof pkt) : 0;
	if (n) {
		/* Queued after what is already on its way to the broker. This used
		 * to be followed by bufferevent_flush() and shutdown(SHUT_WR), but
		 * the flush does nothing on a socket bufferevent: the FIN went out
		 * first, the DISCONNECT hit EPIPE and the broker saw a bare close
		 * (and the client's last PUBLISHes were lost with it). Now the FIN
		 * follows once this is written (upstream_finish()), and the
		 * connection is freed when the broker has closed too, or after
		 * LINGER_S. */
		queue_out(c->ubev, pkt, n);
	}
}

void conn_apply(struct conn *c, const struct eng_action *act)
{
	if (act->flags & ENG_PAUSE_UPSTREAM) {
		c->paused_slow = true;
		reading(c, PROTO_S2C, false);
	}
	if (act->flags & ENG_RESUME_UPSTREAM) {
		c->paused_slow = false;
		if (!c->paused_s2c_bp && !c->closing && c->upstream_up && !c->upstream_eof)
			reading(c, PROTO_S2C, true);
	}
	if (act->flags & ENG_CUT_QUEUE)
		relay_cut_client_queue(c);
	uint8_t pkt[256];
	size_t n = 0;
	const struct wire_ops *ops = c->ops ? c->ops : &wire_mqtt;
	if (act->flags & ENG_REFUSE_CONNACK)
		n = ops->refuse(c, act, pkt, sizeof pkt);
	else if (act->flags & ENG_DISCONNECT)
		n = ops->goodbye(c, act, pkt, sizeof pkt);
	if (act->flags & (ENG_REFUSE_CONNACK | ENG_DISCONNECT | ENG_CLOSE)) {
		end_upstream_keeping_will(c);
		if (n)
			queue_out(c->cbev, pkt, n);
		close_after_flush(c, ENG_CLOSE_PROXY);
	}
}

/* ---- callbacks ------------------------------------------------------------- */

static void update_backpressure(struct conn *c);

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	int64_t last = c->s.last_client_us;
	relay(c, PROTO_C2S);
	if (last && c->s.last_client_us != last)
		metrics_client_gap(c->w, c->s.last_client_us - last);
	if (!c->closing)
		update_backpressure(c);
}

static void upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->closing) { /* after our FIN (upstream_finish): only waiting for the broker's close */
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	relay(c, PROTO_S2C);
	if (c->closing)
		return;
	update_backpressure(c);
	/* The queue toward the client is our buffer plus the kernel's send queue
	 * (SIOCOUTQ, one syscall). Asking on every read was a tenth of the
	 * proxy's CPU at 64 B; asking every DEPTH_CHECK_BYTES forwarded bounds
	 * how far a queue can run past a threshold unseen to that much. */
	struct eng_action act;
	uint64_t moved = c->s2c_added - c->s2c_at_depth_check;
	if (moved >= DEPTH_CHECK_BYTES || evbuffer_get_length(bufferevent_get_output(c->cbev)) > DEPTH_CHECK_BYTES ||
	    c->s.slow_since_us) {
		c->s2c_at_depth_check = c->s2c_added;
		engine_on_queue(c->w->px->eng, &c->s, relay_client_depth(c), proxy_now_us(), &act);
		if (act.flags)
			conn_apply(c, &act);
	}
}

/* Reading from one side stops while the other side's output is over its cap,
 * and starts again when it has drained to half (write low watermark). */
static void update_backpressure(struct conn *c)
{
	struct proxy *px = c->w->px;
	if (c->ubev) {
		bool full = evbuffer_get_length(bufferevent_get_output(c->ubev)) > px->out_cap_c2s;
		if (full != c->paused_c2s_bp || c->in_full[PROTO_C2S]) {
			c->paused_c2s_bp = full;
			c->in_full[PROTO_C2S] = false;
			if (full)
				reading(c, PROTO_C2S, false);
			else if (!c->closing && !c->client_eof)
				reading(c, PROTO_C2S, true);
		}
		full = evbuffer_get_length(bufferevent_get_output(c->cbev)) > px->out_cap_s2c;
		if (full != c->paused_s2c_bp || c->in_full[PROTO_S2C]) {
			c->paused_s2c_bp = full;
			c->in_full[PROTO_S2C] = false;
			if (full)
				reading(c, PROTO_S2C, false);
			else if (!c->closing && !c->paused_slow && !c->upstream_eof && c->upstream_up)
				reading(c, PROTO_S2C, true);
		}
	}
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && upstream_flushed(c))
			conn_close(c, c->close_how);
		return;
	}
	if (c->upstream_eof && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		evutil_socket_t fd = bufferevent_getfd(bev);
		if (fd >= 0)
			shutdown(fd, SHUT_WR); /* the broker's FIN, passed on */
	}
	update_backpressure(c);
	/* The upstream may have more for us now that there is room. */
	if (c->ubev && evbuffer_get_length(bufferevent_get_input(c->ubev)))
		upstream_read_cb(c->ubev, c);
}

static void upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->closing) { /* our last bytes to the broker are out: FIN, then wait for its close */
		upstream_finish(c);
		return;
	}
	if (c->client_eof && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		evutil_socket_t fd = bufferevent_getfd(bev);
		if (fd >= 0)
			shutdown(fd, SHUT_WR); /* the client's FIN, passed on */
	}
	update_backpressure(c);
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)))
		client_read_cb(c->cbev, c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) { /* a TLS client's handshake is done */
		if (!c->closing)
			tls_client_ready(c);
		return;
	}
	if (c->tls_side[PROTO_C2S] && !c->tls_done && !c->closing) {
		tls_client_failed(c, what);
		return;
	}
	if (c->closing) {
		/* The client went while we were closing: what is still queued for
		 * it can no longer arrive, but what is queued for the broker (the
		 * DISCONNECT 0x04, the client's last packets) still goes out. */
		reading(c, PROTO_C2S, false);
		bufferevent_disable(c->cbev, EV_READ | EV_WRITE);
		evbuffer_drain(bufferevent_get_output(c->cbev), evbuffer_get_length(bufferevent_get_output(c->cbev)));
		if (upstream_flushed(c))
			conn_close(c, c->close_how);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		/* A reset (or error) from the client is passed on as a reset. */
		set_rst(c->ubev);
		conn_close(c, ENG_CLOSE_CLIENT_RST);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		relay(c, PROTO_C2S);
		if (c->closing)
			return;
		c->client_eof = true;
		if (c->upstream_eof || !c->upstream_started) {
			conn_close(c, ENG_CLOSE_CLIENT_FIN);
			return;
		}
		if (evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0) {
			evutil_socket_t fd = bufferevent_getfd(c->ubev);
			if (fd >= 0)
				shutdown(fd, SHUT_WR);
		}
		/* Half-closed: keep relaying the broker's side until it closes. The
		 * engine is told now, since the client has gone. */
		engine_session_close(c->w->px->eng, &c->s, ENG_CLOSE_CLIENT_FIN, proxy_now_us());
	}
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		c->upstream_up = true;
		evutil_socket_t fd = c->fd[PROTO_S2C] = bufferevent_getfd(bev);
		if (c->tls_side[PROTO_S2C]) { /* a plain socket got it in dial_plain() */
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		} else {
			c->rev[PROTO_S2C] = event_new(c->w->base, fd, EV_READ | EV_PERSIST, upstream_readable_cb, c);
			if (!c->rev[PROTO_S2C]) {
				conn_close(c, ENG_CLOSE_PROXY);
				return;
			}
		}
		if (!c->paused_slow && !c->paused_s2c_bp && !c->closing)
			reading(c, PROTO_S2C, true);
		return;
	}
	if (c->closing) {
		/* Our own ending (DISCONNECT 0x04 upstream) answered by the broker:
		 * the client's final packet may still be flushing, so only the
		 * upstream side stops here; the linger timer bounds the rest. */
		c->upstream_eof = true;
		reading(c, PROTO_S2C, false);
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
			conn_close(c, c->close_how);
		return;
	}
	if (!c->upstream_up) {
		/* The broker could not be reached. A client that sent CONNECT is told
		 * "Server unavailable" (v5 0x88, 3.1.1 return code 3). */
		c->upstream_failed = true;
		if (c->tls_side[PROTO_S2C])
			tls_upstream_failed(c);
		uint8_t pkt[64];
		size_t n = c->ops ? c->ops->unavailable(c, pkt, sizeof pkt) : 0;
		if (n)
			queue_out(c->cbev, pkt, n);
		c->s.phase = EVT_PHASE_CONNECTING;
		close_after_flush(c, ENG_CLOSE_UPSTREAM_FAILED);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		relay(c, PROTO_S2C);
		set_rst(c->cbev);
		conn_close(c, ENG_CLOSE_BROKER_RST);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		relay(c, PROTO_S2C);
		if (c->closing)
			return;
		c->upstream_eof = true;
		engine_session_close(c->w->px->eng, &c->s, ENG_CLOSE_BROKER_FIN, proxy_now_us());
		if (c->client_eof) {
			conn_close(c, ENG_CLOSE_BROKER_FIN);
			return;
		}
		/* The broker closed: deliver what it sent, then close the client. */
		close_after_flush(c, ENG_CLOSE_BROKER_FIN);
	}
}

/* Dials the broker on a plain socket. A broker on the same host (a
 * sidecar, the usual deployment) has completed the handshake by the time
 * connect() returns EINPROGRESS: one TCP_INFO then saves waiting for
 * writability, which cost an epoll_ctl to add the write event, a loop pass
 * and another epoll_ctl to take it off again, per connection (bench/).
 * -1: no socket or an immediate failure (errno). */
static evutil_socket_t dial_plain(struct conn *c, bool *up)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->lst->upstream_addr;
	evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*up = false;
	if (connect(fd, sa, (socklen_t)c->lst->upstream_len) == 0)
		*up = true;
	else if (errno == EINPROGRESS) {
		struct tcp_info ti;
		socklen_t tl = sizeof ti;
		*up = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_ESTABLISHED;
	} else {
		int err = errno;
		evutil_closesocket(fd);
		errno = err;
		return -1;
	}
	return fd;
}

bool conn_start_upstream(struct conn *c)
{
	if (c->upstream_started)
		return !c->closing;
	c->upstream_started = true;
	if (c->tls_side[PROTO_S2C]) {
		if (bufferevent_socket_connect(c->ubev, (struct sockaddr *)&c->lst->upstream_addr,
					       (int)c->lst->upstream_len) != 0) {
			upstream_event_cb(c->ubev, BEV_EVENT_ERROR, c);
			return false;
		}
		return true;
	}
	bool up;
	evutil_socket_t fd = dial_plain(c, &up);
	if (fd < 0) {
		upstream_event_cb(c->ubev, BEV_EVENT_ERROR, c);
		return false;
	}
	/* Writing is switched on when bytes are queued (conn_queued); set
	 * on a new descriptor it would add the write event at once. */
	bufferevent_disable(c->ubev, EV_WRITE);
	bufferevent_setfd(c->ubev, fd);
	if (up) {
		upstream_event_cb(c->ubev, BEV_EVENT_CONNECTED, c);
		return !c->closing;
	}
	/* Still connecting: libevent waits for writability and reports. */
	if (bufferevent_socket_connect(c->ubev, NULL, 0) != 0) {
		upstream_event_cb(c->ubev, BEV_EVENT_ERROR, c);
		return false;
	}
	return true;
}

void conn_accept(struct worker *w, struct proxy_listener *lst, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	(void)salen;
	struct proxy *px = w->px;
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->w = w;
	c->lst = lst;
	c->fd[PROTO_C2S] = fd;
	c->fd[PROTO_S2C] = -1;
	c->tls_side[PROTO_C2S] = lst->tls != NULL;
	c->tls_side[PROTO_S2C] = lst->upstream_tls != NULL;
	c->cbev = c->tls_side[PROTO_C2S] ? tls_accept_bev(c, fd) : bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->ubev = c->tls_side[PROTO_S2C] ? tls_upstream_bev(c) : bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->cbev || !c->ubev) {
		if (c->cbev)
			bufferevent_free(c->cbev);
		else if (!c->tls_side[PROTO_C2S]) /* tls_accept_bev() closed it */
			evutil_closesocket(fd);
		if (c->ubev)
			bufferevent_free(c->ubev);
		tls_conn_free(c);
		free(c);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	c->ops = wire_for_listener(lst->cfg->protocol);
	if (c->ops)
		c->ops->init(c);

	char client[64], ip[48];
	addr_str(sa, client, sizeof client, ip, sizeof ip);
	uint64_t id = __atomic_add_fetch(&px->next_conn_id, 1, __ATOMIC_RELAXED);
	struct eng_action act;
	engine_session_open_proto(px->eng, &c->s, c->ops ? c->ops->id : PROTO_ID_MQTT, id, client, ip, lst->upstream_str,
				  proxy_now_us(), &act);

	bufferevent_setcb(c->cbev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setcb(c->ubev, upstream_read_cb, upstream_write_cb, upstream_event_cb, c);
	/* A socket bufferevent keeps the end of its input frozen except inside
	 * its own reads; ours fill it instead (read_socket), so it is thawed. */
	for (int d = 0; d < 2; d++) {
		struct bufferevent *bev = d == PROTO_C2S ? c->cbev : c->ubev;
		if (c->tls_side[d]) /* read by the bufferevent itself: capped by its watermark */
			bufferevent_setwatermark(bev, EV_READ, 0, px->in_cap);
		else
			evbuffer_unfreeze(bufferevent_get_input(bev), 0);
	}
	/* And writes as large as the reads (libevent's default is 16 KiB). */
	bufferevent_set_max_single_write(c->cbev, READ_BUDGET);
	bufferevent_set_max_single_write(c->ubev, READ_BUDGET);
	/* Inputs are capped by read_socket(); outputs report when they drain to
	 * half their cap. */
	bufferevent_setwatermark(c->cbev, EV_WRITE, px->out_cap_s2c / 2, 0);
	bufferevent_setwatermark(c->ubev, EV_WRITE, px->out_cap_c2s / 2, 0);
	if (!c->tls_side[PROTO_C2S])
		c->rev[PROTO_C2S] = event_new(w->base, fd, EV_READ | EV_PERSIST, client_readable_cb, c);
	if (!c->rev[PROTO_C2S] && !c->tls_side[PROTO_C2S]) {
		conn_close(c, ENG_CLOSE_PROXY);
		return;
	}
	reading(c, PROTO_C2S, true);
	if (act.flags)
		conn_apply(c, &act);
}

/* Called by the worker's sweep: timers and the slow-client depth. */
void conn_sweep(struct conn *c, int64_t now_us)
{
	if (c->closing || c->s.ended)
		return;
	struct eng_action act;
	engine_tick(c->w->px->eng, &c->s, now_us, &act);
	if (act.flags) {
		conn_apply(c, &act);
		return;
	}
	if (!c->rd_on[PROTO_S2C] && c->upstream_up && !c->upstream_eof) {
		check_paused_broker(c);
		if (c->closing || c->s.ended)
			return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > 0 || c->s.slow_since_us) {
		engine_on_queue(c->w->px->eng, &c->s, relay_client_depth(c), now_us, &act);
		if (act.flags)
			conn_apply(c, &act);
	}
}
