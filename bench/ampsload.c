/* ampsload: AMPS frame load for bench/amps.sh (not part of wirewarden, not
 * built by `make` or `make check`: make -C bench ampsload).
 *
 *   ampsload sink -l 127.0.0.1:PORT
 *       a minimal AMPS stand-in: answers logon with a success ack and every
 *       frame that asks for an ack ("a" in its header) with a processed ack;
 *       counts frames. Written from the documented wire format (doc/amps.md):
 *       it is not AMPS and models nothing but framing and acks.
 *   ampsload throughput -a HOST:PORT [-P pubs] [-s body bytes] [-t secs] [-u warm-up secs] [-C pid,pid]
 *       P publishers log on, then send `{"c":"p","t":..}` frames with a body of
 *       -s bytes as fast as the path takes them; one frame in K asks for a
 *       processed ack (K so that about 64 KiB go between two), with at most W
 *       acks outstanding per publisher, so nothing piles up in the proxies and
 *       only frames the sink has read are counted.
 *       Prints: RESULT frames_per_s=.. mib_per_s=.. frames=.. cpu1_pct=.. cpu2_pct=..
 *       (cpuN_pct: CPU of the Nth -C process during the measured seconds).
 *
 * Single-threaded, epoll, non-blocking sockets; every wait bounded. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (16u << 20) + 4096u
#define MAX_PUBS 64
#define MAX_WATCH 4
#define ACK_WINDOW 16           /* outstanding ack requests per publisher */
#define BYTES_PER_ACK (64u << 10)

struct conn {
	int fd;
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	bool logged_on;
	unsigned outstanding;   /* publisher: ack requests not yet answered */
	uint64_t sent;          /* publisher: frames written */
	uint64_t cid;
};

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ampsload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q)
		die("out of memory (%zu bytes)", n);
	return q;
}

static void parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		die("bad address '%s' (want IPv4:PORT)", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		die("bad IPv4 address '%s'", host);
}

static void set_nonblock(int fd)
{
	int one = 1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- buffers and frames ------------------------------------------------------- */

static uint8_t *out_room(struct conn *c, size_t n)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + n > c->out_cap) {
			c->out_cap = (c->out_len + n) * 2;
			c->out = xrealloc(c->out, c->out_cap);
		}
	}
	return c->out + c->out_len;
}

/* Appends one frame: 4-byte big-endian length, <hdr>, <body_len> bytes of 'x'. */
static void put_frame(struct conn *c, const char *hdr, size_t hlen, size_t body_len)
{
	uint32_t n = (uint32_t)(hlen + body_len);
	uint8_t *p = out_room(c, 4 + n);
	p[0] = (uint8_t)(n >> 24); p[1] = (uint8_t)(n >> 16); p[2] = (uint8_t)(n >> 8); p[3] = (uint8_t)n;
	memcpy(p + 4, hdr, hlen);
	memset(p + 4 + hlen, 'x', body_len);
	c->out_len += 4 + n;
}

/* 1: all written, 0: the socket is full, -1: error */
static int flush_out(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->out_off += (size_t)w;
	}
	return 1;
}

/* The value of string key <key> in the JSON header <h> (length <n>), unquoted
 * and unescaped-free (the bench's own cids and commands need no escapes). */
static bool header_str(const uint8_t *h, size_t n, const char *key, const uint8_t **v, size_t *vlen)
{
	char pat[32];
	int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const uint8_t *p = memmem(h, n, pat, (size_t)pl);
	if (!p)
		return false;
	p += pl;
	const uint8_t *e = memchr(p, '"', n - (size_t)(p - h));
	if (!e)
		return false;
	*v = p;
	*vlen = (size_t)(e - p);
	return true;
}

/* End of the header object (just past '}'), honouring strings; 0 if none. */
static size_t header_end(const uint8_t *p, size_t n)
{
	bool str = false, esc = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];
		if (str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				str = false;
		} else if (ch == '"') {
			str = true;
		} else if (ch == '}') {
			return i + 1;
		}
	}
	return 0;
}

/* Reads what is there; calls <on_frame> per whole frame. -1 on EOF/error. */
static int read_frames(struct conn *c, void (*on_frame)(struct conn *, const uint8_t *, size_t, void *), void *arg)
{
	for (;;) {
		if (c->in_cap - c->in_len < 65536) {
			c->in_cap = c->in_cap ? c->in_cap * 2 : 262144;
			c->in = xrealloc(c->in, c->in_cap);
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (r == 0)
			return -1;
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->in_len += (size_t)r;
		size_t off = 0;
		while (c->in_len - off >= 4) {
			const uint8_t *p = c->in + off;
			uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
			if (n > MAX_FRAME)
				die("frame of %u bytes: not the bench's framing", n);
			if (c->in_len - off < 4 + (size_t)n)
				break;
			if (n)
				on_frame(c, p + 4, n, arg);
			off += 4 + n;
		}
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
		if ((size_t)r < 65536)
			break;
	}
	return 0;
}

/* ---- sink ------------------------------------------------------------------------ */

static uint64_t sink_frames;

static void sink_frame(struct conn *c, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	size_t he = header_end(p, n);
	const uint8_t *cid = NULL, *cmd = NULL, *a = NULL;
	size_t cidl = 0, cmdl = 0, al = 0;
	sink_frames++;
	if (!he)
		return;
	header_str(p, he, "c", &cmd, &cmdl);
	bool logon = cmd && cmdl == 5 && !memcmp(cmd, "logon", 5);
	if (!header_str(p, he, "a", &a, &al))
		return;
	header_str(p, he, "cid", &cid, &cidl);
	char buf[256];
	int len = snprintf(buf, sizeof buf, "{\"c\":\"ack\",\"a\":\"processed\",\"cid\":\"%.*s\",\"status\":\"success\"%s}",
			   (int)(cidl < 64 ? cidl : 64), cid ? (const char *)cid : "",
			   logon ? ",\"version\":\"0.0.0.0-ampsload-sink\"" : "");
	put_frame(c, buf, (size_t)len, 0);
}

static int run_sink(const char *listen_addr)
{
	struct sockaddr_in sa;
	parse_addr(listen_addr, &sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 256))
		die("cannot listen on %s: %s", listen_addr, strerror(errno));
	set_nonblock(lfd);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	fprintf(stderr, "ampsload sink listening on %s\n", listen_addr);
	while (!got_signal) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 200);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept(lfd, NULL, NULL)) >= 0) {
					set_nonblock(fd);
					c = calloc(1, sizeof *c);
					if (!c)
						die("out of memory");
					c->fd = fd;
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			int r = (evs[i].events & EPOLLIN) ? read_frames(c, sink_frame, NULL) : 0;
			int f = r < 0 ? -1 : flush_out(c);
			if (r < 0 || f < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c->in);
				free(c->out);
				free(c);
				continue;
			}
			struct epoll_event e = { .events = EPOLLIN | (f == 0 ? EPOLLOUT : 0), .data.ptr = c };
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		}
	}
	fprintf(stderr, "ampsload sink: %llu frames\n", (unsigned long long)sink_frames);
	return 0;
}

/* ---- throughput ------------------------------------------------------------------- */

struct tput {
	size_t body;
	unsigned per_ack;
	bool measuring;
	uint64_t acked_frames;   /* frames confirmed by acks while measuring */
	uint64_t acked_total;
};

static void pub_frame(struct conn *c, const uint8_t *p, size_t n, void *arg)
{
	struct tput *t = arg;
	size_t he = header_end(p, n);
	const uint8_t *v;
	size_t vl;
	if (!he || !header_str(p, he, "c", &v, &vl) || vl != 3 || memcmp(v, "ack", 3))
		return;
	if (!c->logged_on) {
		if (!header_str(p, he, "status", &v, &vl) || vl != 7 || memcmp(v, "success", 7))
			die("logon refused: %.*s", (int)he, (const char *)p);
		c->logged_on = true;
		return;
	}
	if (c->outstanding)
		c->outstanding--;
	t->acked_total += t->per_ack;
	if (t->measuring)
		t->acked_frames += t->per_ack;
}

static void pub_fill(struct conn *c, struct tput *t, unsigned idx)
{
	char hdr[128];
	while (c->outstanding < ACK_WINDOW && c->out_len - c->out_off < (256u << 10)) {
		int hl;
		if ((c->sent + 1) % t->per_ack == 0) {
			hl = snprintf(hdr, sizeof hdr, "{\"c\":\"p\",\"t\":\"bench/%u\",\"cid\":\"%llu\",\"a\":\"processed\"}", idx,
				      (unsigned long long)++c->cid);
			c->outstanding++;
		} else {
			hl = snprintf(hdr, sizeof hdr, "{\"c\":\"p\",\"t\":\"bench/%u\"}", idx);
		}
		put_frame(c, hdr, (size_t)hl, t->body);
		c->sent++;
	}
}

static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int run_throughput(const char *addr, unsigned npub, size_t body, double secs, double warm,
			  const pid_t *watch, unsigned nwatch)
{
	struct sockaddr_in sa;
	parse_addr(addr, &sa);
	struct tput t = { .body = body };
	t.per_ack = (unsigned)(BYTES_PER_ACK / (body + 40));
	if (t.per_ack < 1)
		t.per_ack = 1;
	if (t.per_ack > 256)
		t.per_ack = 256;
	int ep = epoll_create1(0);
	struct conn pubs[MAX_PUBS];
	memset(pubs, 0, sizeof pubs);
	for (unsigned i = 0; i < npub; i++) {
		struct conn *c = &pubs[i];
		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa))
			die("connect %s: %s", addr, strerror(errno));
		set_nonblock(c->fd);
		char hdr[160];
		int hl = snprintf(hdr, sizeof hdr, "{\"c\":\"logon\",\"cid\":\"L\",\"client_name\":\"ampsload-%d-%u\","
				  "\"user_id\":\"bench\",\"version\":\"ampsload\",\"a\":\"processed\"}", (int)getpid(), i);
		put_frame(c, hdr, (size_t)hl, 0);
		struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
	}
	int64_t start = now_ns(), t_warm = 0, t_end = 0;
	unsigned ready = 0;
	double cpu0[MAX_WATCH] = { 0 }, cpu1[MAX_WATCH] = { 0 };
	for (;;) {
		int64_t now = now_ns();
		if (got_signal)
			die("interrupted");
		if (!t_warm && ready == npub) {
			t_warm = now + (int64_t)(warm * 1e9);
			t_end = t_warm + (int64_t)(secs * 1e9);
		}
		if (!t_warm && now - start > 10000000000LL)
			die("only %u of %u publishers logged on within 10 s", ready, npub);
		if (t_warm && !t.measuring && now >= t_warm && now < t_end) {
			t.measuring = true;
			for (unsigned w = 0; w < nwatch; w++)
				cpu0[w] = proc_cpu_s(watch[w]);
		}
		if (t_end && now >= t_end) {
			for (unsigned w = 0; w < nwatch; w++)
				cpu1[w] = proc_cpu_s(watch[w]);
			break;
		}
		struct epoll_event evs[MAX_PUBS];
		int n = epoll_wait(ep, evs, MAX_PUBS, 50);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			unsigned idx = (unsigned)(c - pubs);
			bool was = c->logged_on;
			if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && read_frames(c, pub_frame, &t) < 0)
				die("publisher %u: connection closed by the other side", idx);
			if (!was && c->logged_on)
				ready++;
			if (c->logged_on)
				pub_fill(c, &t, idx);
			int f = flush_out(c);
			if (f < 0)
				die("publisher %u: send: %s", idx, strerror(errno));
			struct epoll_event e = { .events = EPOLLIN | (f == 0 ? EPOLLOUT : 0), .data.ptr = c };
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		}
	}
	double fps = (double)t.acked_frames / secs;
	printf("RESULT frames_per_s=%.0f mib_per_s=%.2f frames=%llu body=%zu pubs=%u per_ack=%u", fps,
	       fps * (double)(body + 40) / 1048576.0, (unsigned long long)t.acked_frames, body, npub, t.per_ack);
	for (unsigned w = 0; w < nwatch; w++)
		printf(" cpu%u_pct=%.1f", w + 1, cpu0[w] < 0 || cpu1[w] < 0 ? -1.0 : (cpu1[w] - cpu0[w]) * 100.0 / secs);
	printf("\n");
	for (unsigned i = 0; i < npub; i++)
		close(pubs[i].fd);
	return 0;
}

static void usage(void)
{
	fputs("usage: ampsload sink -l IP:PORT\n"
	      "       ampsload throughput -a IP:PORT [-P pubs] [-s body] [-t secs] [-u warm-up] [-C pid,pid]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1], *addr = NULL;
	unsigned npub = 4, nwatch = 0;
	size_t body = 64;
	double secs = 3, warm = 0.5;
	pid_t watch[MAX_WATCH];
	int opt;
	optind = 2;
	while ((opt = getopt(argc, argv, "l:a:P:s:t:u:C:")) != -1) {
		switch (opt) {
		case 'l': case 'a': addr = optarg; break;
		case 'P': npub = (unsigned)atoi(optarg); break;
		case 's': body = (size_t)strtoul(optarg, NULL, 10); break;
		case 't': secs = atof(optarg); break;
		case 'u': warm = atof(optarg); break;
		case 'C':
			for (char *s = strtok(optarg, ","); s && nwatch < MAX_WATCH; s = strtok(NULL, ","))
				watch[nwatch++] = (pid_t)atoi(s);
			break;
		default: usage();
		}
	}
	if (!addr || npub < 1 || npub > MAX_PUBS || secs <= 0 || secs > 600 || warm < 0 || body > (16u << 20))
		usage();
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "sink"))
		return run_sink(addr);
	if (!strcmp(mode, "throughput"))
		return run_throughput(addr, npub, body, secs, warm, watch, nwatch);
	usage();
}
