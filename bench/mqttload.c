/* mqttload: a load generator for an MQTT 3.1.1 broker, or for a proxy in
 * front of one, written for wirewarden's benchmarks (bench/run.sh). One
 * thread, non-blocking sockets, one epoll loop; no MQTT library: the few
 * packets it needs (CONNECT, SUBSCRIBE, PUBLISH, PUBACK, PINGREQ, DISCONNECT)
 * are built and parsed here. Four modes, each bounded in time:
 *
 *   throughput  N publishers and M subscribers. Subscriber j subscribes to
 *               the topic of publisher j % N, so with M == N every message is
 *               delivered once. Publishers pipeline: at QoS 1 each keeps up to
 *               -w PUBLISH in flight and sends more as PUBACKs come back; at
 *               both QoS an end-to-end window (-W messages published but not
 *               yet seen by the publisher's subscribers) keeps the broker's
 *               queues bounded, so the number is sustained throughput, not the
 *               rate at which a broker can drop. After -u seconds of warm-up,
 *               counts messages published and delivered to subscribers for -t
 *               seconds and reports both per second.
 *   latency     one publisher at a fixed rate (-r msg/s, paced by a timerfd),
 *               one subscriber; the payload carries the CLOCK_MONOTONIC time
 *               of sending, the subscriber takes the difference on arrival.
 *               Reports p50/p99/p99.9/max of publish -> delivery in µs.
 *   connect     -c concurrent loops of: TCP connect, CONNECT, CONNACK,
 *               DISCONNECT, close. Reports completed setups per second.
 *   idle        opens -n connections (CONNECT, keep-alive 600 s, -c at a time),
 *               prints "READY connected=N" on stdout once all have their
 *               CONNACK, then holds them (PINGREQ every keep-alive/2) until
 *               SIGTERM/SIGINT or -t seconds. For memory-per-client numbers.
 *
 * Message size (-s) is the PUBLISH payload; its first 20 bytes are the
 * publisher index, a sequence number and the send time. Targets (-a) and
 * source addresses (-B: 127.0.0.1 .. 127.0.0.N) are used round-robin, so that
 * tens of thousands of connections do not run out of ephemeral ports.
 *
 * Output: a human summary on stderr and one "RESULT key=value ..." line on
 * stdout. Exit status: 0 done, 1 a run-time failure (named on stderr), 2 bad
 * usage. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_TARGETS 64
#define PAYLOAD_HEAD 20              /* u32 publisher, u64 seq, u64 send time (ns) */
#define WRITE_BATCH (64 * 1024)      /* a publisher stops filling past this */
#define READ_CHUNK (64 * 1024)
#define MAX_PACKET (4u * 1024 * 1024) /* larger incoming packets are an error */
#define STEP_TIMEOUT_NS (10 * 1000000000LL) /* connect, CONNACK or SUBACK */
#define E2E_STALL_NS 1000000000LL   /* a QoS 0 window blocked this long was lost */

enum mode { MODE_THROUGHPUT, MODE_LATENCY, MODE_CONNECT, MODE_IDLE };
enum role { ROLE_PUB, ROLE_SUB, ROLE_CONNECTOR, ROLE_IDLE };
enum cstate { ST_FREE, ST_CONNECTING, ST_WAIT_CONNACK, ST_WAIT_SUBACK, ST_READY };

static const char *role_name[] = { "publisher", "subscriber", "connector", "idle client" };
static const char *state_name[] = { "free", "TCP connect", "CONNACK", "SUBACK", "ready" };

struct opts {
	enum mode mode;
	struct sockaddr_in target[MAX_TARGETS];
	unsigned n_target;
	unsigned n_src;          /* 0: let the kernel pick the source address */
	unsigned pubs, subs, size, qos, window, e2e_window, rate, conc, count, keepalive_s;
	double secs, warmup_s;
	const char *id_prefix;
	pid_t watch[4];          /* -C: processes whose CPU use is reported */
	unsigned n_watch;
};

struct conn {
	int fd;
	uint8_t role, state;
	bool out_armed;
	uint32_t idx;            /* within its role */
	uint32_t target, src;
	uint8_t *rbuf;
	uint32_t rlen, rcap;
	uint8_t *wbuf;
	uint32_t woff, wlen, wcap;
	uint64_t sent;           /* publisher: messages written, = next sequence number */
	uint64_t e2e_base;       /* publisher: treated as delivered after a stall */
	int64_t stall_since_ns;
	uint32_t inflight;       /* publisher, QoS 1: not yet PUBACKed */
	uint16_t next_pid;
	uint64_t next_seq;       /* subscriber: highest sequence seen + 1 */
	int64_t step_start_ns;   /* when the current connect/CONNACK/SUBACK wait began */
	uint32_t retries;
};

struct run {
	struct opts o;
	int ep, tfd;
	pid_t pid;
	struct conn *c;
	size_t n_conn;
	struct conn *pub, *sub;  /* throughput/latency: slices of c */
	uint64_t published, delivered, acked;
	uint64_t setups, setup_errors, lost_conns, e2e_stalls;
	uint64_t setup_ns_sum;
	int first_err;
	char first_err_text[400];
	bool measuring, stopping;
	uint64_t *lat_ns;        /* latency samples, in ns */
	size_t n_lat, cap_lat;
	uint64_t next_open;      /* idle: connections started so far */
	uint64_t ready;          /* idle/setup: connections with their CONNACK (and SUBACK) */
};

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mqttload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

static void usage(FILE *out)
{
	fputs("usage: mqttload MODE [options]      MODE: throughput | latency | connect | idle\n"
	      "  -a HOST:PORT[,HOST:PORT...]  broker or proxy addresses, used round-robin (127.0.0.1:1883)\n"
	      "  -B N        bind source addresses 127.0.0.1 .. 127.0.0.N round-robin (0 = kernel's choice)\n"
	      "  -t SECS     measured time (throughput/latency/connect; default 5); idle: max hold (600)\n"
	      "  -u SECS     warm-up before measuring (default 1; connect 0.5)\n"
	      "  -i PREFIX   client id prefix (default \"mqttload-<pid>\")\n"
	      "  -C PID[,PID] report the CPU use of these processes (broker, proxy) over the measured time\n"
	      " throughput: -P N publishers (4)  -S M subscribers (4)  -s BYTES payload (64, >= 20)\n"
	      "             -q 0|1 QoS (0)  -w N QoS 1 PUBACK window per publisher (32)\n"
	      "             -W N end-to-end window per publisher, messages (default: 512 KiB worth, 8..4096)\n"
	      " latency:    -r MSG/S rate (2000)  -s BYTES (64)  -q 0|1 (0)\n"
	      " connect:    -c K concurrent setups (32)\n"
	      " idle:       -n N connections (10000)  -c K connecting at once (256)\n"
	      "Prints a summary on stderr and one line \"RESULT key=value ...\" on stdout.\n",
	      out);
}

static unsigned parse_uint(const char *s, const char *what, unsigned lo, unsigned hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die(2, "%s: '%s' is not a whole number in %u..%u", what, s, lo, hi);
	return (unsigned)v;
}

static double parse_secs(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0) || v > 86400)
		die(2, "%s: '%s' is not a number of seconds in 0..86400", what, s);
	return v;
}

static void parse_targets(struct opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		die(1, "out of memory");
	o->n_target = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(t, ':');
		if (!colon)
			die(2, "-a: '%s' is not HOST:PORT (IPv4 address and port)", t);
		*colon = '\0';
		if (o->n_target == MAX_TARGETS)
			die(2, "-a: at most %d addresses", MAX_TARGETS);
		struct sockaddr_in *sa = &o->target[o->n_target++];
		memset(sa, 0, sizeof *sa);
		sa->sin_family = AF_INET;
		sa->sin_port = htons((uint16_t)parse_uint(colon + 1, "-a port", 1, 65535));
		if (inet_pton(AF_INET, t, &sa->sin_addr) != 1)
			die(2, "-a: '%s' is not an IPv4 address", t);
	}
	free(copy);
	if (!o->n_target)
		die(2, "-a: no address given");
}

static void parse_watch(struct opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		die(1, "out of memory");
	o->n_watch = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->n_watch == 4)
			die(2, "-C: at most 4 processes");
		o->watch[o->n_watch++] = (pid_t)parse_uint(t, "-C pid", 1, INT_MAX);
	}
	free(copy);
}

/* ---- buffers and MQTT 3.1.1 encoding --------------------------------------- */

static void reserve(uint8_t **buf, uint32_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	if (n > UINT32_MAX)
		die(1, "buffer over 4 GiB");
	uint8_t *p = realloc(*buf, n);
	if (!p)
		die(1, "out of memory (buffer of %zu bytes)", n);
	*buf = p;
	*cap = (uint32_t)n;
}

/* Room for <n> more bytes at the end of <c>'s output; returns where to write. */
static uint8_t *out_room(struct conn *c, size_t n)
{
	if (c->woff && c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->woff > c->wcap / 2) { /* compact rather than grow */
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	reserve(&c->wbuf, &c->wcap, (size_t)c->wlen + n);
	uint8_t *p = c->wbuf + c->wlen;
	c->wlen += (uint32_t)n;
	return p;
}

static size_t varint_len(uint32_t v) { return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4; }

static uint8_t *put_varint(uint8_t *p, uint32_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		*p++ = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
	return p;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; return p + 2; }
static uint8_t *put_u32(uint8_t *p, uint32_t v) { for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(v >> (8 * i)); return p; }
static uint8_t *put_u64(uint8_t *p, uint64_t v) { for (int i = 7; i >= 0; i--) *p++ = (uint8_t)(v >> (8 * i)); return p; }
static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) << 32 | get_u32(p + 4); }

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
	p = put_u16(p, (uint16_t)n);
	memcpy(p, s, n);
	return p + n;
}

static void client_id(const struct run *r, const struct conn *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s-%c%" PRIu32 "-%" PRIu32, r->o.id_prefix, role_name[c->role][0], c->idx, c->retries);
}

static void topic_of(const struct run *r, uint32_t pub_idx, char *buf, size_t cap)
{
	snprintf(buf, cap, "mqttload/%d/%" PRIu32, (int)r->pid, pub_idx);
}

/* CONNECT, MQTT 3.1.1 (section 3.1): clean session, no will, no credentials. */
static void put_connect(struct run *r, struct conn *c, unsigned keepalive_s)
{
	char id[96];
	client_id(r, c, id, sizeof id);
	size_t idn = strlen(id), rl = 10 + 2 + idn;
	uint8_t *p = out_room(c, 1 + varint_len((uint32_t)rl) + rl);
	*p++ = 0x10;
	p = put_varint(p, (uint32_t)rl);
	p = put_str(p, "MQTT", 4);
	*p++ = 4;    /* protocol level 3.1.1 */
	*p++ = 0x02; /* clean session */
	p = put_u16(p, (uint16_t)keepalive_s);
	put_str(p, id, idn);
}

static void put_subscribe(struct conn *c, const char *topic, unsigned qos)
{
	size_t tn = strlen(topic), rl = 2 + 2 + tn + 1;
	uint8_t *p = out_room(c, 1 + varint_len((uint32_t)rl) + rl);
	*p++ = 0x82;
	p = put_varint(p, (uint32_t)rl);
	p = put_u16(p, 1);
	p = put_str(p, topic, tn);
	*p = (uint8_t)qos;
}

static void put_publish(struct run *r, struct conn *c, const char *topic, size_t tn, int64_t ts)
{
	unsigned qos = r->o.qos;
	size_t rl = 2 + tn + (qos ? 2 : 0) + r->o.size;
	uint8_t *p = out_room(c, 1 + varint_len((uint32_t)rl) + rl);
	*p++ = (uint8_t)(0x30 | qos << 1);
	p = put_varint(p, (uint32_t)rl);
	p = put_str(p, topic, tn);
	if (qos) {
		if (++c->next_pid == 0)
			c->next_pid = 1;
		p = put_u16(p, c->next_pid);
		c->inflight++;
	}
	p = put_u32(p, c->idx);
	p = put_u64(p, c->sent);
	p = put_u64(p, (uint64_t)ts);
	memset(p, 'x', r->o.size - PAYLOAD_HEAD); /* must not be left uninitialised */
	c->sent++;
	r->published++;
}

static void put_two(struct conn *c, uint8_t b0, uint8_t b1)
{
	uint8_t *p = out_room(c, 2);
	p[0] = b0;
	p[1] = b1;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_release(struct run *r, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = ST_FREE;
	c->rlen = c->woff = c->wlen = 0;
	c->out_armed = false;
}

static void describe(const struct run *r, const struct conn *c, char *buf, size_t cap)
{
	const struct sockaddr_in *t = &r->o.target[c->target];
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &t->sin_addr, ip, sizeof ip);
	int n = snprintf(buf, cap, "%s %" PRIu32 " to %s:%u", role_name[c->role], c->idx, ip, ntohs(t->sin_port));
	if (r->o.n_src && n > 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, " from 127.0.0.%" PRIu32, c->src + 1);
}

/* A connection failed in <c>'s current state because of <what> (errno <err>,
 * 0 when not a system error). Publishers and subscribers cannot be replaced
 * in the middle of a measurement: the run ends. Connectors count the error
 * and start over; idle clients retry a few times. */
static void conn_failed(struct run *r, struct conn *c, const char *what, int err)
{
	char who[160], text[400];
	describe(r, c, who, sizeof who);
	snprintf(text, sizeof text, "%s, waiting for %s: %s%s%s", who, state_name[c->state], what, err ? ": " : "",
		 err ? strerror(err) : "");
	if (c->role == ROLE_PUB || c->role == ROLE_SUB)
		die(1, "%s", text);
	if (!r->first_err) {
		r->first_err = err ? err : -1;
		snprintf(r->first_err_text, sizeof r->first_err_text, "%s", text);
	}
	if (c->role == ROLE_IDLE && c->state == ST_READY && !r->stopping) {
		r->lost_conns++;
		r->ready--;
	}
	r->setup_errors++;
	conn_release(r, c);
}

static void arm_out(struct run *r, struct conn *c, bool on)
{
	if (c->out_armed == on)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die(1, "epoll_ctl: %s", strerror(errno));
	c->out_armed = on;
}

/* Writes what <c> has queued; false when the connection failed (and is gone). */
static bool conn_flush(struct run *r, struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->woff += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm_out(r, c, true);
			return true;
		}
		conn_failed(r, c, "send", n < 0 ? errno : 0);
		return false;
	}
	c->woff = c->wlen = 0;
	arm_out(r, c, false);
	return true;
}

/* Starts a TCP connect for <c>; false (with <c> released) if it failed at once. */
static bool conn_open(struct run *r, struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		int e = errno;
		if (e == EMFILE || e == ENFILE)
			die(1, "socket: %s (raise the limit: ulimit -n)", strerror(e));
		conn_failed(r, c, "socket", e);
		return false;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->state = ST_CONNECTING;
	c->step_start_ns = now_ns();
	if (r->o.n_src) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl(0x7f000001u + c->src);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0) {
			conn_failed(r, c, "bind", errno);
			return false;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&r->o.target[c->target], sizeof r->o.target[0]) != 0 &&
	    errno != EINPROGRESS) {
		conn_failed(r, c, "connect", errno);
		return false;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die(1, "epoll_ctl: %s", strerror(errno));
	c->out_armed = true;
	return true;
}

/* ---- publishing --------------------------------------------------------------- */

/* Messages <p> may still put in flight under both windows. */
static uint64_t pub_allowance(struct run *r, struct conn *p, int64_t now)
{
	uint64_t allow = UINT64_MAX;
	if (r->o.qos)
		allow = p->inflight < r->o.window ? r->o.window - p->inflight : 0;
	if (r->o.e2e_window && p->idx < r->o.subs) {
		uint64_t seen = UINT64_MAX;
		for (uint32_t j = p->idx; j < r->o.subs; j += r->o.pubs)
			if (r->sub[j].next_seq < seen)
				seen = r->sub[j].next_seq;
		if (seen < p->e2e_base)
			seen = p->e2e_base;
		uint64_t out = p->sent - seen;
		if (out >= r->o.e2e_window) {
			/* At QoS 0 a broker may drop; a window that stays shut has
			 * lost its messages, so it is opened again. */
			if (!p->stall_since_ns)
				p->stall_since_ns = now;
			else if (now - p->stall_since_ns > E2E_STALL_NS) {
				p->e2e_base = p->sent;
				p->stall_since_ns = 0;
				r->e2e_stalls++;
			}
			return 0;
		}
		p->stall_since_ns = 0;
		if (r->o.e2e_window - out < allow)
			allow = r->o.e2e_window - out;
	}
	return allow;
}

static void pub_fill(struct run *r, struct conn *p)
{
	if (p->state != ST_READY || r->stopping || p->out_armed)
		return;
	int64_t now = now_ns();
	uint64_t allow = pub_allowance(r, p, now);
	if (!allow)
		return;
	char topic[64];
	topic_of(r, p->idx, topic, sizeof topic);
	size_t tn = strlen(topic);
	while (allow-- && p->wlen - p->woff < WRITE_BATCH)
		put_publish(r, p, topic, tn, now);
	conn_flush(r, p);
}

/* ---- incoming packets ----------------------------------------------------------- */

static void on_ready(struct run *r, struct conn *c)
{
	c->state = ST_READY;
	r->ready++;
}

static void on_connack(struct run *r, struct conn *c, const uint8_t *b, uint32_t n)
{
	if (c->state != ST_WAIT_CONNACK || n != 2) {
		conn_failed(r, c, "unexpected or malformed CONNACK", 0);
		return;
	}
	if (b[1] != 0) {
		char what[64];
		snprintf(what, sizeof what, "CONNACK refused, return code %u", b[1]);
		conn_failed(r, c, what, 0);
		return;
	}
	int64_t now = now_ns();
	switch (c->role) {
	case ROLE_SUB: {
		char topic[64];
		topic_of(r, c->idx % r->o.pubs, topic, sizeof topic);
		put_subscribe(c, topic, r->o.qos);
		c->state = ST_WAIT_SUBACK;
		c->step_start_ns = now;
		conn_flush(r, c);
		break;
	}
	case ROLE_PUB:
	case ROLE_IDLE:
		on_ready(r, c);
		break;
	case ROLE_CONNECTOR:
		put_two(c, 0xe0, 0x00); /* DISCONNECT */
		if (!conn_flush(r, c))
			return;
		if (r->measuring) {
			r->setups++;
			r->setup_ns_sum += (uint64_t)(now - c->step_start_ns);
		}
		conn_release(r, c);
		break;
	}
}

static void on_publish(struct run *r, struct conn *c, uint8_t flags, const uint8_t *b, uint32_t n)
{
	unsigned qos = (flags >> 1) & 3;
	if (c->role != ROLE_SUB || c->state != ST_READY || n < 2 || qos > 1) {
		conn_failed(r, c, "unexpected PUBLISH", 0);
		return;
	}
	uint32_t tn = (uint32_t)b[0] << 8 | b[1];
	uint32_t off = 2 + tn + (qos ? 2 : 0);
	if (off > n) {
		conn_failed(r, c, "malformed PUBLISH", 0);
		return;
	}
	if (qos) { /* PUBACK, queued; conn_read flushes after the batch */
		uint8_t *a = out_room(c, 4);
		a[0] = 0x40;
		a[1] = 0x02;
		a[2] = b[2 + tn];
		a[3] = b[3 + tn];
	}
	if (n - off < PAYLOAD_HEAD)
		return; /* not one of ours */
	const uint8_t *pl = b + off;
	uint64_t seq = get_u64(pl + 4);
	if (seq + 1 > c->next_seq)
		c->next_seq = seq + 1;
	if (!r->measuring)
		return;
	r->delivered++;
	if (r->lat_ns && r->n_lat < r->cap_lat) {
		int64_t d = now_ns() - (int64_t)get_u64(pl + 12);
		r->lat_ns[r->n_lat++] = d > 0 ? (uint64_t)d : 0;
	}
}

static void on_packet(struct run *r, struct conn *c, uint8_t h, const uint8_t *b, uint32_t n)
{
	switch (h >> 4) {
	case 2: on_connack(r, c, b, n); break;
	case 3: on_publish(r, c, h & 0x0f, b, n); break;
	case 4: /* PUBACK */
		if (c->role != ROLE_PUB || !c->inflight || n != 2) {
			conn_failed(r, c, "unexpected PUBACK", 0);
			return;
		}
		c->inflight--;
		if (r->measuring)
			r->acked++;
		break;
	case 9: /* SUBACK */
		if (c->state != ST_WAIT_SUBACK || n != 3 || b[2] == 0x80) {
			conn_failed(r, c, n == 3 && b[2] == 0x80 ? "SUBSCRIBE refused (0x80)" : "unexpected SUBACK", 0);
			return;
		}
		on_ready(r, c);
		break;
	case 13: break; /* PINGRESP */
	default: {
		char what[48];
		snprintf(what, sizeof what, "unexpected packet type %u", h >> 4);
		conn_failed(r, c, what, 0);
	}
	}
}

/* Reads what is there (a bounded amount) and handles each whole packet. */
static void conn_read(struct run *r, struct conn *c)
{
	for (int rounds = 0; rounds < 8 && c->fd >= 0; rounds++) {
		size_t want = c->role == ROLE_SUB ? READ_CHUNK : 256;
		reserve(&c->rbuf, &c->rcap, (size_t)c->rlen + want);
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_failed(r, c, n == 0 ? "closed by the peer" : "recv", n < 0 ? errno : 0);
			return;
		}
		c->rlen += (uint32_t)n;
		uint32_t pos = 0;
		while (c->fd >= 0 && c->rlen - pos >= 2) {
			uint32_t rl = 0, k = 1;
			bool done = false;
			for (unsigned shift = 0; k < 5 && pos + k < c->rlen; k++, shift += 7) {
				rl |= (uint32_t)(c->rbuf[pos + k] & 0x7f) << shift;
				if (!(c->rbuf[pos + k] & 0x80)) {
					done = true;
					k++;
					break;
				}
			}
			if (!done) {
				if (k == 5) {
					conn_failed(r, c, "malformed remaining length", 0);
					return;
				}
				break;
			}
			if (rl > MAX_PACKET) {
				conn_failed(r, c, "packet over 4 MiB", 0);
				return;
			}
			if (c->rlen - pos - k < rl)
				break;
			on_packet(r, c, c->rbuf[pos], c->rbuf + pos + k, rl);
			pos += k + rl;
		}
		if (c->fd < 0)
			return;
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
		if ((size_t)n < want)
			break;
	}
	if (c->fd >= 0 && c->woff < c->wlen && !c->out_armed)
		conn_flush(r, c); /* PUBACKs */
}

static void conn_writable(struct run *r, struct conn *c)
{
	if (c->state == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_failed(r, c, "connect", err);
			return;
		}
		c->state = ST_WAIT_CONNACK;
		c->step_start_ns = now_ns();
		put_connect(r, c, c->role == ROLE_IDLE ? r->o.keepalive_s : 60);
	}
	if (!conn_flush(r, c))
		return;
	if (c->role == ROLE_PUB)
		pub_fill(r, c);
}

/* Fails connections stuck in a setup step for longer than STEP_TIMEOUT_NS. */
static void check_timeouts(struct run *r, int64_t now)
{
	for (size_t i = 0; i < r->n_conn; i++) {
		struct conn *c = &r->c[i];
		if (c->fd >= 0 && c->state != ST_READY && now - c->step_start_ns > STEP_TIMEOUT_NS)
			conn_failed(r, c, "no answer within 10 s", 0);
	}
}

/* One round of the event loop, waiting at most <timeout_ms>. */
static void poll_once(struct run *r, int timeout_ms)
{
	struct epoll_event ev[256];
	int n = epoll_wait(r->ep, ev, 256, timeout_ms);
	if (n < 0 && errno != EINTR)
		die(1, "epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct conn *c = ev[i].data.ptr;
		if (!c) { /* the latency timer */
			uint64_t ticks = 0;
			if (read(r->tfd, &ticks, sizeof ticks) == (ssize_t)sizeof ticks && r->pub[0].state == ST_READY &&
			    !r->stopping) {
				char topic[64];
				topic_of(r, 0, topic, sizeof topic);
				struct conn *p = &r->pub[0];
				for (uint64_t t = 0; t < ticks && (!r->o.qos || p->inflight < r->o.window); t++)
					put_publish(r, p, topic, strlen(topic), now_ns());
				if (!p->out_armed)
					conn_flush(r, p);
			}
			continue;
		}
		if (c->fd < 0)
			continue; /* failed earlier in this round */
		if (c->state == ST_CONNECTING) { /* the connect's outcome, with SO_ERROR */
			conn_writable(r, c);
			continue;
		}
		if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			conn_read(r, c);
		if (c->fd >= 0 && (ev[i].events & EPOLLOUT))
			conn_writable(r, c);
	}
}

/* ---- the modes ------------------------------------------------------------------ */

static void setup_conns(struct run *r, size_t n)
{
	r->c = calloc(n, sizeof *r->c);
	if (!r->c)
		die(1, "out of memory (%zu connections)", n);
	r->n_conn = n;
	for (size_t i = 0; i < n; i++) {
		r->c[i].fd = -1;
		r->c[i].target = (uint32_t)(i % r->o.n_target);
		r->c[i].src = r->o.n_src ? (uint32_t)(i % r->o.n_src) : 0;
	}
}

/* Connects every subscriber (and waits for its SUBACK), then every publisher. */
static void connect_pubsub(struct run *r)
{
	setup_conns(r, r->o.pubs + r->o.subs);
	r->sub = r->c;
	r->pub = r->c + r->o.subs;
	for (unsigned j = 0; j < r->o.subs; j++) {
		r->sub[j].role = ROLE_SUB;
		r->sub[j].idx = j;
		conn_open(r, &r->sub[j]);
	}
	for (unsigned i = 0; i < r->o.pubs; i++) {
		r->pub[i].role = ROLE_PUB;
		r->pub[i].idx = i;
	}
	bool pubs_started = false;
	while (r->ready < r->o.pubs + r->o.subs) {
		if (got_signal)
			die(1, "interrupted while connecting");
		if (!pubs_started && r->ready == r->o.subs) {
			for (unsigned i = 0; i < r->o.pubs; i++)
				conn_open(r, &r->pub[i]);
			pubs_started = true;
		}
		poll_once(r, 100);
		check_timeouts(r, now_ns());
	}
}

/* Sends DISCONNECT on every open connection and closes it. */
static void disconnect_all(struct run *r)
{
	r->stopping = true;
	for (size_t i = 0; i < r->n_conn; i++) {
		struct conn *c = &r->c[i];
		if (c->fd < 0)
			continue;
		if (c->state == ST_READY) {
			static const uint8_t disc[2] = { 0xe0, 0x00 };
			(void)!send(c->fd, disc, 2, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		conn_release(r, c);
	}
}

/* Runs the loop until <until>, calling pub_fill for every publisher each round. */
static void pump(struct run *r, int64_t until)
{
	while (!got_signal) {
		int64_t now = now_ns();
		if (now >= until)
			break;
		for (unsigned i = 0; r->o.mode == MODE_THROUGHPUT && i < r->o.pubs; i++)
			pub_fill(r, &r->pub[i]);
		int64_t left_ms = (until - now) / 1000000;
		poll_once(r, left_ms > 10 ? 10 : (int)left_ms);
	}
}

/* CPU seconds (user + system, all threads) that process <pid> has used; -1
 * if it cannot be read. */
static double proc_cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

struct cpu_mark { double self, watch[4]; int64_t t_ns; };

static struct cpu_mark cpu_mark(const struct run *r);

/* Appends " cpu1_pct=.. cpu2_pct=.." (the -C processes, in order) for the
 * interval since <m0> to <out>. */
static void watch_report(const struct run *r, const struct cpu_mark *m0, char *out, size_t cap)
{
	struct cpu_mark m1 = cpu_mark(r);
	double el = (double)(m1.t_ns - m0->t_ns) / 1e9;
	size_t used = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < r->o.n_watch && used < cap; i++) {
		double pct = m0->watch[i] < 0 || m1.watch[i] < 0 ? -1 : 100 * (m1.watch[i] - m0->watch[i]) / el;
		int k = snprintf(out + used, cap - used, " cpu%u_pct=%.0f", i + 1, pct);
		if (k > 0)
			used += (size_t)k;
	}
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void mode_throughput(struct run *r)
{
	connect_pubsub(r);
	pump(r, now_ns() + (int64_t)(r->o.warmup_s * 1e9));
	uint64_t p0 = r->published;
	struct cpu_mark m0 = cpu_mark(r);
	r->measuring = true;
	int64_t t0 = m0.t_ns;
	pump(r, t0 + (int64_t)(r->o.secs * 1e9));
	char watched[128];
	watch_report(r, &m0, watched, sizeof watched);
	double el = (double)(now_ns() - t0) / 1e9, cpu = cpu_seconds() - m0.self;
	r->measuring = false;
	uint64_t pub = r->published - p0;
	if (got_signal)
		die(1, "interrupted");
	disconnect_all(r);
	fprintf(stderr,
		"throughput: %u pub, %u sub, %u B payload, QoS %u, %.1f s: delivered %.0f msg/s, published %.0f msg/s "
		"(%.1f MB/s payload delivered; load generator CPU %.0f%%; e2e window %u, stalls %" PRIu64 ")\n",
		r->o.pubs, r->o.subs, r->o.size, r->o.qos, el, r->delivered / el, pub / el,
		r->delivered * (double)r->o.size / el / 1e6, 100 * cpu / el, r->o.e2e_window, r->e2e_stalls);
	printf("RESULT mode=throughput pubs=%u subs=%u size=%u qos=%u secs=%.2f delivered_per_s=%.0f published_per_s=%.0f "
	       "acked_per_s=%.0f e2e_stalls=%" PRIu64 " gen_cpu_pct=%.0f%s\n",
	       r->o.pubs, r->o.subs, r->o.size, r->o.qos, el, r->delivered / el, pub / el, r->acked / el, r->e2e_stalls,
	       100 * cpu / el, watched);
}

static struct cpu_mark cpu_mark(const struct run *r)
{
	struct cpu_mark m = { .self = cpu_seconds(), .t_ns = now_ns() };
	for (unsigned i = 0; i < r->o.n_watch; i++)
		m.watch[i] = proc_cpu_seconds(r->o.watch[i]);
	return m;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (double)n); /* nearest rank, 0-based */
	if (i >= n)
		i = n - 1;
	return (double)v[i] / 1000.0;
}

static void mode_latency(struct run *r)
{
	r->o.pubs = r->o.subs = 1;
	r->cap_lat = (size_t)(r->o.rate * (r->o.secs + 1)) + 1024;
	r->lat_ns = malloc(r->cap_lat * sizeof *r->lat_ns);
	if (!r->lat_ns)
		die(1, "out of memory (latency samples)");
	connect_pubsub(r);
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r->tfd < 0)
		die(1, "timerfd_create: %s", strerror(errno));
	long period = 1000000000L / r->o.rate;
	struct itimerspec its = { .it_interval = { period / 1000000000L, period % 1000000000L },
				  .it_value = { 0, 1000000 } };
	if (timerfd_settime(r->tfd, 0, &its, NULL) != 0)
		die(1, "timerfd_settime: %s", strerror(errno));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->tfd, &ev) != 0)
		die(1, "epoll_ctl: %s", strerror(errno));
	pump(r, now_ns() + (int64_t)(r->o.warmup_s * 1e9));
	uint64_t p0 = r->published;
	struct cpu_mark m0 = cpu_mark(r);
	r->measuring = true;
	int64_t t0 = m0.t_ns;
	pump(r, t0 + (int64_t)(r->o.secs * 1e9));
	char watched[128];
	watch_report(r, &m0, watched, sizeof watched);
	double el = (double)(now_ns() - t0) / 1e9;
	/* Let the last ones arrive (bounded), without sending more. */
	uint64_t sent = r->published - p0;
	struct itimerspec off = { 0 };
	timerfd_settime(r->tfd, 0, &off, NULL);
	int64_t drain_until = now_ns() + 500000000LL;
	while (r->delivered < sent && now_ns() < drain_until && !got_signal)
		poll_once(r, 10);
	r->measuring = false;
	if (got_signal)
		die(1, "interrupted");
	disconnect_all(r);
	qsort(r->lat_ns, r->n_lat, sizeof *r->lat_ns, cmp_u64);
	double p50 = pct_us(r->lat_ns, r->n_lat, 0.50), p99 = pct_us(r->lat_ns, r->n_lat, 0.99),
	       p999 = pct_us(r->lat_ns, r->n_lat, 0.999), mx = pct_us(r->lat_ns, r->n_lat, 1.0);
	fprintf(stderr,
		"latency: %u msg/s, %u B, QoS %u, %.1f s: %zu samples, p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f "
		"us (%" PRIu64 " sent, %" PRIu64 " not delivered)\n",
		r->o.rate, r->o.size, r->o.qos, el, r->n_lat, p50, p99, p999, mx, sent,
		sent > r->delivered ? sent - r->delivered : 0);
	printf("RESULT mode=latency rate=%u size=%u qos=%u samples=%zu p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
	       "lost=%" PRIu64 "%s\n",
	       r->o.rate, r->o.size, r->o.qos, r->n_lat, p50, p99, p999, mx, sent > r->delivered ? sent - r->delivered : 0,
	       watched);
}

static void mode_connect(struct run *r)
{
	setup_conns(r, r->o.conc);
	for (size_t i = 0; i < r->n_conn; i++) {
		r->c[i].role = ROLE_CONNECTOR;
		r->c[i].idx = (uint32_t)i;
	}
	int64_t start = now_ns(), t0 = start + (int64_t)(r->o.warmup_s * 1e9), end = t0 + (int64_t)(r->o.secs * 1e9);
	int64_t last_check = start;
	struct cpu_mark m0 = { 0 };
	while (!got_signal) {
		int64_t now = now_ns();
		if (!r->measuring && now >= t0) {
			r->measuring = true;
			r->setup_errors = 0;
			m0 = cpu_mark(r);
			t0 = m0.t_ns;
		}
		if (now >= end)
			break;
		for (size_t i = 0; i < r->n_conn; i++)
			if (r->c[i].fd < 0) {
				r->c[i].retries++; /* a fresh client id each time */
				conn_open(r, &r->c[i]);
			}
		poll_once(r, 10);
		if (now - last_check > 100000000LL) {
			check_timeouts(r, now);
			last_check = now;
		}
		if (r->setup_errors > 1000 && r->setup_errors > 10 * (r->setups + 1))
			die(1, "connect: mostly failing (%" PRIu64 " errors, %" PRIu64 " setups); first: %s", r->setup_errors,
			    r->setups, r->first_err_text);
	}
	char watched[128];
	watch_report(r, &m0, watched, sizeof watched);
	double el = (double)(now_ns() - t0) / 1e9, cpu = cpu_seconds() - m0.self;
	if (got_signal)
		die(1, "interrupted");
	r->measuring = false;
	disconnect_all(r);
	double avg_ms = r->setups ? (double)r->setup_ns_sum / (double)r->setups / 1e6 : 0;
	fprintf(stderr, "connect: %u concurrent, %.1f s: %.0f setups/s, mean %.2f ms each, %" PRIu64
			" errors (load generator CPU %.0f%%)%s%s\n",
		r->o.conc, el, r->setups / el, avg_ms, r->setup_errors, 100 * cpu / el,
		r->setup_errors ? "; first: " : "", r->setup_errors ? r->first_err_text : "");
	printf("RESULT mode=connect conc=%u secs=%.2f setups_per_s=%.0f mean_ms=%.3f errors=%" PRIu64
	       " gen_cpu_pct=%.0f%s\n",
	       r->o.conc, el, r->setups / el, avg_ms, r->setup_errors, 100 * cpu / el, watched);
}

static void mode_idle(struct run *r)
{
	setup_conns(r, r->o.count);
	for (size_t i = 0; i < r->n_conn; i++) {
		r->c[i].role = ROLE_IDLE;
		r->c[i].idx = (uint32_t)i;
	}
	int64_t start = now_ns(), last_check = start;
	size_t pending = 0, next = 0;
	while (r->ready < r->o.count) {
		if (got_signal)
			die(1, "interrupted with %" PRIu64 " of %u connected", r->ready, r->o.count);
		/* pending = started, not yet ready; failed ones are restarted (3 tries) */
		pending = 0;
		for (size_t i = 0; i < next; i++)
			if (r->c[i].fd >= 0 && r->c[i].state != ST_READY)
				pending++;
		for (size_t i = 0; i < next && pending < r->o.conc; i++)
			if (r->c[i].fd < 0 && r->c[i].state == ST_FREE && !r->stopping) {
				if (++r->c[i].retries > 3)
					die(1, "idle: %" PRIu64 " of %u connected; giving up after 3 tries: %s%s", r->ready,
					    r->o.count, r->first_err_text,
					    r->first_err == EADDRNOTAVAIL ? " (out of source ports: use -B or more targets)" : "");
				if (conn_open(r, &r->c[i]))
					pending++;
			}
		while (next < r->n_conn && pending < r->o.conc) {
			if (conn_open(r, &r->c[next]))
				pending++;
			next++;
		}
		poll_once(r, 10);
		int64_t now = now_ns();
		if (now - last_check > 100000000LL) {
			check_timeouts(r, now);
			last_check = now;
		}
	}
	double el = (double)(now_ns() - start) / 1e9;
	fprintf(stderr, "idle: %u connections ready after %.1f s (%" PRIu64 " retried errors)%s%s\n", r->o.count, el,
		r->setup_errors, r->setup_errors ? "; first: " : "", r->setup_errors ? r->first_err_text : "");
	printf("READY connected=%u secs=%.2f\n", r->o.count, el);
	fflush(stdout);
	/* Hold. Keep-alive: PINGREQ every keepalive/2. */
	int64_t hold_end = now_ns() + (int64_t)(r->o.secs * 1e9), next_ping = now_ns() + r->o.keepalive_s * 500000000LL;
	while (!got_signal && now_ns() < hold_end) {
		poll_once(r, 200);
		if (now_ns() >= next_ping) {
			for (size_t i = 0; i < r->n_conn; i++)
				if (r->c[i].fd >= 0 && r->c[i].state == ST_READY) {
					put_two(&r->c[i], 0xc0, 0x00);
					conn_flush(r, &r->c[i]);
				}
			next_ping += r->o.keepalive_s * 500000000LL;
		}
	}
	uint64_t still = r->ready;
	disconnect_all(r);
	fprintf(stderr, "idle: released %" PRIu64 " connections (%" PRIu64 " lost while held)\n", still, r->lost_conns);
	printf("RESULT mode=idle connected=%u connect_secs=%.2f lost=%" PRIu64 "\n", r->o.count, el, r->lost_conns);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	struct run r = { .ep = -1, .tfd = -1, .pid = getpid() };
	struct opts *o = &r.o;
	const char *m = argv[1];
	if (!strcmp(m, "throughput")) o->mode = MODE_THROUGHPUT;
	else if (!strcmp(m, "latency")) o->mode = MODE_LATENCY;
	else if (!strcmp(m, "connect")) o->mode = MODE_CONNECT;
	else if (!strcmp(m, "idle")) o->mode = MODE_IDLE;
	else {
		usage(stderr);
		die(2, "unknown mode '%s'", m);
	}
	parse_targets(o, "127.0.0.1:1883");
	o->pubs = 4; o->subs = 4; o->size = 64; o->window = 32; o->rate = 2000; o->keepalive_s = 600;
	o->conc = o->mode == MODE_IDLE ? 256 : 32;
	o->count = 10000;
	o->secs = o->mode == MODE_IDLE ? 600 : 5;
	o->warmup_s = o->mode == MODE_CONNECT ? 0.5 : 1;
	bool e2e_set = false;
	char idbuf[64];
	snprintf(idbuf, sizeof idbuf, "mqttload-%d", (int)r.pid);
	o->id_prefix = idbuf;
	int ch;
	optind = 2;
	while ((ch = getopt(argc, argv, "a:B:t:u:i:C:P:S:s:q:w:W:r:c:n:h")) != -1) {
		switch (ch) {
		case 'a': parse_targets(o, optarg); break;
		case 'B': o->n_src = parse_uint(optarg, "-B", 0, 254); break;
		case 't': o->secs = parse_secs(optarg, "-t"); break;
		case 'u': o->warmup_s = parse_secs(optarg, "-u"); break;
		case 'i': o->id_prefix = optarg; break;
		case 'C': parse_watch(o, optarg); break;
		case 'P': o->pubs = parse_uint(optarg, "-P", 1, 10000); break;
		case 'S': o->subs = parse_uint(optarg, "-S", 0, 10000); break;
		case 's': o->size = parse_uint(optarg, "-s", PAYLOAD_HEAD, 1024 * 1024); break;
		case 'q': o->qos = parse_uint(optarg, "-q", 0, 1); break;
		case 'w': o->window = parse_uint(optarg, "-w", 1, 65535); break;
		case 'W': o->e2e_window = parse_uint(optarg, "-W", 0, 1000000); e2e_set = true; break;
		case 'r': o->rate = parse_uint(optarg, "-r", 1, 1000000); break;
		case 'c': o->conc = parse_uint(optarg, "-c", 1, 100000); break;
		case 'n': o->count = parse_uint(optarg, "-n", 1, 1000000); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die(2, "unexpected argument '%s'", argv[optind]);
	if (strlen(o->id_prefix) > 40)
		die(2, "-i: at most 40 characters");
	if (o->secs <= 0 && o->mode != MODE_IDLE)
		die(2, "-t must be above 0");
	if (!e2e_set) {
		unsigned w = (512u * 1024) / (o->size + 32);
		o->e2e_window = w < 8 ? 8 : w > 4096 ? 4096 : w;
	}
	if (o->mode == MODE_CONNECT)
		o->keepalive_s = 60;

	/* Enough descriptors for the connections asked for, if the hard limit allows. */
	size_t need = (o->mode == MODE_IDLE ? o->count : o->mode == MODE_CONNECT ? o->conc : o->pubs + o->subs) + 32;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		rl.rlim_cur = need <= rl.rlim_max ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < need)
			die(1, "%zu descriptors needed, the hard limit is %llu: raise it (ulimit -Hn, as root)", need,
			    (unsigned long long)rl.rlim_max);
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	if (r.ep < 0)
		die(1, "epoll_create1: %s", strerror(errno));

	switch (o->mode) {
	case MODE_THROUGHPUT: mode_throughput(&r); break;
	case MODE_LATENCY: mode_latency(&r); break;
	case MODE_CONNECT: mode_connect(&r); break;
	case MODE_IDLE: mode_idle(&r); break;
	}
	for (size_t i = 0; i < r.n_conn; i++) {
		free(r.c[i].rbuf);
		free(r.c[i].wbuf);
	}
	free(r.c);
	free(r.lat_ns);
	close(r.ep);
	if (r.tfd >= 0)
		close(r.tfd);
	return 0;
}
