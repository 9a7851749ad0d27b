/* mosquitto 1.6/2.0 logs (`log_type all` or notice, with timestamps in either
 * form: `log_timestamp` epoch seconds or a `log_timestamp_format`; or through
 * syslog/the journal with an ISO timestamp), read line by line. The sentences are the ones mosquitto 2.0.x writes (src/loop.c
 * do_disconnect, handle_connect.c, read_handle.c, net.c, database.c) plus the
 * 1.x "Socket error on client" form.
 *
 * A refused CONNECT never gets a "New client connected" line: mosquitto logs
 * "New connection from A:P", "Sending CONNACK to ID-or-IP (0, rc)" and then
 * "Client <unknown> disconnected...". The reader keeps the last few accepted
 * sockets that have no client yet (a fixed ring) so that such a close gets
 * its address and the CONNACK code that explains it. */
#include <stdio.h>
#include <string.h>

#include "cli/why_log.h"

#define MOSQ_PENDING 32

struct mosq_pending {
	char addr[64];      /* "ip:port" */
	char id[128];       /* from "Sending CONNACK to ID", "" if it named the address */
	int64_t ts_us;
	int rc;             /* CONNACK code sent, -1 none */
	bool used;
};

struct mosq_state {
	struct mosq_pending p[MOSQ_PENDING];
	unsigned next;
	char addr_out[64], id_out[128]; /* what a <unknown> close borrows */
	/* the last timestamp read: lines of one second share it, and parsing it was a third of the time */
	char last_ts[40];
	size_t last_len;
	int64_t last_us;
	bool last_zoned;
};

/* Splits "TS: message"; false if the line does not start that way. <st>
 * (may be NULL) remembers the last timestamp's text and value. */
static bool split(struct mosq_state *st, const char *line, size_t n, struct why_rec *r)
{
	int64_t us;
	bool zoned;
	size_t k;
	if (st && st->last_len && n > st->last_len && memcmp(line, st->last_ts, st->last_len) == 0 &&
	    line[st->last_len] == ':') {
		k = st->last_len;
		us = st->last_us;
		zoned = st->last_zoned;
	} else {
		k = why_time_parse(line, n, &us, &zoned);
		if (st && k && k < sizeof st->last_ts) {
			memcpy(st->last_ts, line, k);
			st->last_len = k;
			st->last_us = us;
			st->last_zoned = zoned;
		}
	}
	if (k > 0 && k < n && line[k] == ' ') {
		/* syslog or journal: "TS host mosquitto[PID]: [TS: ]message" (log_dest syslog, or stdout
		 * under systemd, read back with journalctl -o short-iso) */
		const char *end = line + n, *p = line + k + 1;
		const char *lim = end - p > 160 ? p + 160 : end;
		const char *tag = why_find(p, (size_t)(lim - p), " mosquitto");
		const char *colon = tag ? why_find(tag, (size_t)(lim - tag), ": ") : NULL;
		if (!colon)
			return false;
		p = colon + 2;
		int64_t us2;
		bool zoned2;
		size_t k2 = why_time_parse(p, (size_t)(end - p), &us2, &zoned2);
		if (k2 && p + k2 + 2 <= end && p[k2] == ':' && p[k2 + 1] == ' ') {
			p += k2 + 2; /* mosquitto's own timestamp too: the journal's is the one with a zone */
			if (!zoned) {
				us = us2;
				zoned = zoned2;
			}
		}
		r->has_ts = true;
		r->ts_us = us;
		r->zoned = zoned;
		r->msg.p = p;
		r->msg.n = (size_t)(end - p);
		return true;
	}
	if (k == 0 || k + 2 > n || line[k] != ':' || line[k + 1] != ' ')
		return false;
	r->has_ts = true;
	r->ts_us = us;
	r->zoned = zoned;
	r->msg.p = line + k + 2;
	r->msg.n = n - k - 2;
	return true;
}

static bool mosq_looks_like(const char *line, size_t n)
{
	struct why_rec r;
	why_rec_clear(&r);
	return split(NULL, line, n, &r);
}

/* The text between <prefix> at the start of <m> and the first <stop> after it. */
static bool between(struct why_text m, const char *prefix, const char *stop, struct why_text *out)
{
	if (!why_starts(m.p, m.n, prefix))
		return false;
	size_t k = strlen(prefix);
	const char *e = why_find(m.p + k, m.n - k, stop);
	if (!e)
		return false;
	out->p = m.p + k;
	out->n = (size_t)(e - out->p);
	return true;
}

static bool ends_with(struct why_text m, const char *suffix)
{
	size_t k = strlen(suffix);
	return m.n >= k && memcmp(m.p + m.n - k, suffix, k) == 0;
}

static struct mosq_pending *pending_find(struct mosq_state *st, const char *addr, size_t n, bool ip_only)
{
	struct mosq_pending *best = NULL;
	for (unsigned i = 0; i < MOSQ_PENDING; i++) {
		struct mosq_pending *q = &st->p[i];
		if (!q->used)
			continue;
		size_t al = strlen(q->addr);
		bool hit = ip_only ? (al > n && memcmp(q->addr, addr, n) == 0 && q->addr[n] == ':')
				   : (al == n && memcmp(q->addr, addr, n) == 0);
		if (hit && (!best || q->ts_us > best->ts_us))
			best = q;
	}
	return best;
}

static void pending_add(struct mosq_state *st, struct why_text addr, int64_t ts)
{
	struct mosq_pending *q = &st->p[st->next++ % MOSQ_PENDING]; /* the oldest gives way */
	memset(q, 0, sizeof *q);
	snprintf(q->addr, sizeof q->addr, "%.*s", (int)addr.n, addr.p);
	q->ts_us = ts;
	q->rc = -1;
	q->used = true;
}

/* "Sending CONNACK to X (ack, rc)" with rc != 0: a refusal, kept for the close. */
static void note_connack(struct mosq_state *st, struct why_text to, int rc, int64_t ts)
{
	bool is_ip = to.n > 0;
	for (size_t i = 0; i < to.n && is_ip; i++)
		is_ip = strchr("0123456789.:abcdef", to.p[i]) != NULL && to.p[i] != 0;
	struct mosq_pending *q = is_ip ? pending_find(st, to.p, to.n, true) : NULL;
	if (!q) /* the newest pending socket still without a verdict */
		for (unsigned i = 0; i < MOSQ_PENDING; i++) {
			struct mosq_pending *c = &st->p[i];
			if (c->used && c->rc < 0 && c->ts_us <= ts && (!q || c->ts_us > q->ts_us))
				q = c;
		}
	if (!q)
		return;
	q->rc = rc;
	if (!is_ip)
		snprintf(q->id, sizeof q->id, "%.*s", (int)to.n, to.p);
}

static enum evt_reason reason_from_connack(int rc)
{
	if (rc > 0 && rc < 0x80)
		return evt_reason_from_v3_connack((uint8_t)rc);
	if (rc >= 0x80 && rc <= 0xff)
		return evt_reason_from_v5((uint8_t)rc);
	return EVT_R_NONE;
}

struct close_form {
	const char *tail;        /* what follows "Client ID" */
	enum evt_reason reason;
	enum evt_party by;
	enum evt_confidence conf;
};

/* do_disconnect() in src/loop.c, one sentence per reason code. */
static const struct close_form close_forms[] = {
	{ " disconnected.", EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT, EVT_CONF_STATED },
	{ " already connected, closing old connection.", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " closed its connection.", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT, EVT_CONF_STATED },
	{ " has exceeded timeout, disconnecting.", EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected due to malformed packet.", EVT_R_MALFORMED_PACKET, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected due to protocol error.", EVT_R_PROTOCOL_ERROR, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected, not authorised.", EVT_R_NOT_AUTHORIZED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected, no longer authorised.", EVT_R_NOT_AUTHORIZED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected due to oversize packet.", EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected due to oversize payload.", EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER, EVT_CONF_STATED },
	{ " disconnected due to out of memory.", EVT_R_IMPLEMENTATION_SPECIFIC_ERROR, EVT_BY_BROKER, EVT_CONF_STATED },
	/* 2.0.11 and 2.0.20 word the MOSQ_ERR_NOT_SUPPORTED case differently; the CONNACK code, when the
	 * refusal came with one, says which feature it was */
	{ " disconnected due to QoS too high or retain not supported.", EVT_R_QOS_NOT_SUPPORTED, EVT_BY_BROKER, EVT_CONF_GUESS },
	{ " disconnected due to using not allowed feature (QoS too high, retain not supported, or bad AUTH method).",
	  EVT_R_QOS_NOT_SUPPORTED, EVT_BY_BROKER, EVT_CONF_GUESS },
	{ " been disconnected by administrative action.", EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER, EVT_CONF_STATED },
	/* 1.x: connection lost or any other socket error; the broker cannot tell which side ended it */
	{ ", disconnecting.", EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN, EVT_CONF_GUESS },
};

/* Lines naming one client that explain the close that follows them. */
struct note_form {
	const char *prefix, *stop; /* the client id lies between them */
	enum evt_reason hint;
};
static const struct note_form note_forms[] = {
	{ "Bad client ", " sending multiple CONNECT messages.", EVT_R_PROTOCOL_ERROR_SECOND_CONNECT },
	{ "Invalid QoS in PUBLISH from ", ", disconnecting.", EVT_R_MALFORMED_PACKET },
	{ "Invalid PUBLISH (QoS=0 and DUP=1) from ", ", disconnecting.", EVT_R_MALFORMED_PACKET },
	{ "Too high QoS in PUBLISH from ", ", disconnecting.", EVT_R_QOS_NOT_SUPPORTED },
	{ "Empty subscription string from ", ", disconnecting.", EVT_R_TOPIC_FILTER_INVALID },
	{ "Invalid subscription string from ", ", disconnecting.", EVT_R_TOPIC_FILTER_INVALID },
	{ "Invalid QoS in subscription command from ", ", disconnecting.", EVT_R_MALFORMED_PACKET },
	{ "Empty unsubscription string from ", ", disconnecting.", EVT_R_TOPIC_FILTER_INVALID },
	{ "Invalid unsubscription string from ", ", disconnecting.", EVT_R_TOPIC_FILTER_INVALID },
	{ "Protocol error from ", ": password without username", EVT_R_PROTOCOL_ERROR },
	{ "Outgoing messages are being dropped for client ", ".", EVT_R_NONE }, /* context: mosquitto does not close */
	{ "Expiring client ", " due to timeout.", EVT_R_NONE },
};

/* A decimal number at <*p> (before <end>), then past it; false if none. The
 * line is not NUL-terminated: no sscanf. */
static bool read_int(const char **p, const char *end, int *v)
{
	const char *s = *p;
	int x = 0;
	if (s >= end || *s < '0' || *s > '9')
		return false;
	while (s < end && *s >= '0' && *s <= '9' && x < 100000000)
		x = x * 10 + (*s++ - '0');
	*v = x;
	*p = s;
	return true;
}

/* <lit> at <*p>, then past it. */
static bool read_lit(const char **p, const char *end, const char *lit)
{
	size_t k = strlen(lit);
	if ((size_t)(end - *p) < k || memcmp(*p, lit, k) != 0)
		return false;
	*p += k;
	return true;
}

/* "New client connected from A:P as ID (p2, c1, k60, u'user')." */
static bool parse_open(struct why_text m, struct why_rec *r)
{
	struct why_text rest;
	if (!between(m, "New client connected from ", " as ", &r->addr) &&
	    !between(m, "New bridge connected from ", " as ", &r->addr))
		return false;
	rest.p = r->addr.p + r->addr.n + 4;
	rest.n = m.n - (size_t)(rest.p - m.p);
	/* the id may hold spaces or " (p": the parameters are the last " (p" group */
	const char *par = NULL;
	for (const char *q = rest.p; (q = why_find(q, rest.n - (size_t)(q - rest.p), " (p")); q++)
		par = q;
	if (!par)
		return false;
	r->id.p = rest.p;
	r->id.n = (size_t)(par - rest.p);
	int p = 0, c = 0, k = -1;
	const char *s = par + 2, *end = m.p + m.n, *q = s;
	if (read_lit(&q, end, "p") && read_int(&q, end, &p) && read_lit(&q, end, ", c") && read_int(&q, end, &c) &&
	    read_lit(&q, end, ", k") && read_int(&q, end, &k)) {
		r->level = p == 1 ? 3 : p == 2 ? 4 : p == 5 ? 5 : 0;
		r->keepalive = k;
	}
	const char *u = why_find(s, (size_t)(end - s), ", u'");
	if (u) {
		u += 4;
		const char *ue = end;
		while (ue > u && *(ue - 1) != '\'')
			ue--;
		if (ue > u) {
			r->user.p = u;
			r->user.n = (size_t)(ue - 1 - u);
		}
	}
	r->kind = WHY_REC_OPEN;
	return true;
}

static enum why_rec_kind mosq_parse(void *state, const char *line, size_t n, struct why_rec *r)
{
	struct mosq_state *st = state;
	why_rec_clear(r);
	if (!split(st, line, n, r)) {
		/* no timestamp (log_timestamp false): the sentence alone */
		r->msg.p = line;
		r->msg.n = n;
	}
	struct why_text m = r->msg;
	if (m.n == 0)
		return r->kind = WHY_REC_NONE;
	/* the bulk of a busy log: packet traffic, will details, subscription echoes */
	if (why_starts(m.p, m.n, "Received ") || why_starts(m.p, m.n, "Sending P") || why_starts(m.p, m.n, "Sending S") ||
	    why_starts(m.p, m.n, "Sending U") || why_starts(m.p, m.n, "No will message") ||
	    why_starts(m.p, m.n, "Will message specified") || m.p[0] == '\t')
		return r->kind = WHY_REC_NONE;
	if (why_starts(m.p, m.n, "New connection from ")) {
		struct why_text a;
		if (between(m, "New connection from ", " on port ", &a))
			pending_add(st, a, r->ts_us);
		return r->kind = WHY_REC_NONE;
	}
	if (parse_open(m, r)) {
		struct mosq_pending *q = pending_find(st, r->addr.p, r->addr.n, false);
		if (q)
			q->used = false;
		return r->kind;
	}
	struct why_text to;
	if (between(m, "Sending CONNACK to ", " (", &to)) {
		int ack = 0, rc = 0;
		const char *q = to.p + to.n + 2, *end = m.p + m.n;
		if (read_int(&q, end, &ack) && read_lit(&q, end, ", ") && read_int(&q, end, &rc) && rc != 0)
			note_connack(st, to, rc, r->ts_us);
		return r->kind = WHY_REC_NONE;
	}
	if (why_starts(m.p, m.n, "mosquitto version ") && ends_with(m, " terminating")) {
		r->reason = EVT_R_SERVER_SHUTDOWN;
		r->closed_by = EVT_BY_BROKER;
		r->confidence = EVT_CONF_STATED;
		return r->kind = WHY_REC_SHUTDOWN;
	}
	if (why_starts(m.p, m.n, "Client connection from ")) {
		struct why_text a;
		if (between(m, "Client connection from ", " denied", &a) ||
		    between(m, "Client connection from ", " failed", &a)) {
			r->addr = a;
			bool denied = why_find(m.p, m.n, " denied") != NULL;
			r->reason = denied ? EVT_R_CONNECTION_LIMIT : EVT_R_TLS_HANDSHAKE_FAILED;
			if (denied && !why_find(m.p, m.n, "max_connections"))
				r->reason = EVT_R_NOT_AUTHORIZED; /* tcpd */
			r->closed_by = EVT_BY_BROKER;
			r->confidence = denied ? EVT_CONF_STATED : EVT_CONF_GUESS;
			return r->kind = WHY_REC_CLOSE;
		}
	}
	if (why_starts(m.p, m.n, "Invalid protocol ")) { /* "... in CONNECT from IP." */
		const char *f = why_find(m.p, m.n, " in CONNECT from ");
		if (f) {
			struct why_text ip = { f + 17, m.n - (size_t)(f + 17 - m.p) };
			if (ip.n && ip.p[ip.n - 1] == '.')
				ip.n--;
			struct mosq_pending *q = pending_find(st, ip.p, ip.n, true);
			if (q && q->rc < 0)
				q->rc = 0x84; /* the refusal that follows, whichever level */
			r->addr = ip;
			r->reason = EVT_R_UNSUPPORTED_PROTOCOL_VERSION;
			return r->kind = WHY_REC_NOTE;
		}
	}
	if (why_starts(m.p, m.n, "Bad socket read/write on client ")) {
		const char *e = why_find(m.p + 32, m.n - 32, ": ");
		r->id.p = m.p + 32;
		r->id.n = e ? (size_t)(e - r->id.p) : m.n - 32;
		r->reason = EVT_R_CLIENT_VANISHED;
		r->closed_by = EVT_BY_UNKNOWN;
		r->confidence = EVT_CONF_GUESS;
		return r->kind = WHY_REC_CLOSE;
	}
	if (why_starts(m.p, m.n, "Client ") || why_starts(m.p, m.n, "Socket error on client ")) {
		size_t pre = why_starts(m.p, m.n, "Client ") ? 7 : 23;
		for (size_t i = 0; i < sizeof close_forms / sizeof close_forms[0]; i++) {
			const struct close_form *f = &close_forms[i];
			if (!ends_with(m, f->tail) || m.n <= pre + strlen(f->tail))
				continue;
			if (pre == 23 && f->reason != EVT_R_CLIENT_VANISHED)
				continue;
			r->id.p = m.p + pre;
			r->id.n = m.n - pre - strlen(f->tail);
			r->reason = f->reason;
			r->closed_by = f->by;
			r->confidence = f->conf;
			break;
		}
		if (!r->id.p && why_find(m.p, m.n, " disconnected: ")) { /* MOSQ_ERR_ERRNO: "...: strerror." */
			const char *e = why_find(m.p, m.n, " disconnected: ");
			r->id.p = m.p + pre;
			r->id.n = (size_t)(e - r->id.p);
			r->reason = EVT_R_CLIENT_VANISHED;
			r->closed_by = EVT_BY_UNKNOWN;
			r->confidence = EVT_CONF_GUESS;
		}
		if (r->id.p) {
			if (r->id.n == 9 && memcmp(r->id.p, "<unknown>", 9) == 0) {
				/* never got as far as a client id: the oldest socket still pending, refused first */
				struct mosq_pending *q = NULL;
				for (unsigned i = 0; i < MOSQ_PENDING; i++) {
					struct mosq_pending *c = &st->p[i];
					if (c->used && (!q || (c->rc >= 0) > (q->rc >= 0) ||
							((c->rc >= 0) == (q->rc >= 0) && c->ts_us < q->ts_us)))
						q = c;
				}
				r->id.p = NULL;
				r->id.n = 0;
				if (q) {
					snprintf(st->addr_out, sizeof st->addr_out, "%s", q->addr);
					r->addr.p = st->addr_out;
					r->addr.n = strlen(st->addr_out);
					if (q->id[0]) {
						snprintf(st->id_out, sizeof st->id_out, "%s", q->id);
						r->id.p = st->id_out;
						r->id.n = strlen(st->id_out);
					}
					enum evt_reason cr = reason_from_connack(q->rc);
					if (cr != EVT_R_NONE && cr != EVT_R_UNKNOWN) {
						r->reason = cr; /* the CONNACK code it was sent is the exact reason */
						r->confidence = EVT_CONF_STATED;
					}
					q->used = false;
				}
			}
			return r->kind = WHY_REC_CLOSE;
		}
	}
	for (size_t i = 0; i < sizeof note_forms / sizeof note_forms[0]; i++) {
		if (between(m, note_forms[i].prefix, note_forms[i].stop, &r->id)) {
			r->reason = note_forms[i].hint;
			r->closed_by = note_forms[i].hint != EVT_R_NONE ? EVT_BY_BROKER : EVT_BY_NONE;
			return r->kind = WHY_REC_NOTE;
		}
	}
	/* subscription echoes "ID QOS TOPIC" / "ID TOPIC": short, no sentence */
	size_t spaces = 0;
	for (size_t i = 0; i < m.n && spaces < 3; i++)
		spaces += m.p[i] == ' ';
	if (spaces <= 2 && m.p[m.n - 1] != '.')
		return r->kind = WHY_REC_NONE;
	return r->kind = WHY_REC_UNKNOWN;
}

const struct why_format why_format_mosquitto = {
	.name = "mosquitto",
	.looks_like = mosq_looks_like,
	.state_size = sizeof(struct mosq_state),
	.parse = mosq_parse,
};
