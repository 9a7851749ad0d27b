/* mosquitto 1.6, 2.0 and 2.1 logs (`log_type all` or notice, with timestamps
 * in either form: `log_timestamp` epoch seconds or a `log_timestamp_format`;
 * or through syslog/the journal with an ISO timestamp), read line by line. The
 * sentences are the ones mosquitto writes (src/loop.c do_disconnect,
 * handle_connect.c, read_handle.c, net.c, database.c): 2.0.x's, the 1.x
 * "Socket error on client" form, and 2.1's. 2.1.0 names a client without an
 * id by its address instead of "<unknown>", words the new reasons ", session
 * taken over." and so on, and no longer writes "already connected, closing
 * old connection"; 2.1.1 writes every close as "Client ID [A:P]
 * disconnected[: reason]." and numbers protocol levels as MQTT does (p4 for
 * 3.1.1).
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

/* A line that names a connection by its address (2.1: "Bad client A:P sending
 * multiple CONNECT messages.") and explains the close of that address that follows. */
struct mosq_addr_hint {
	char addr[64];
	enum evt_reason reason;
	int64_t ts_us;
};
#define MOSQ_ADDR_HINTS 8

struct mosq_state {
	struct mosq_pending p[MOSQ_PENDING];
	unsigned next;
	struct mosq_addr_hint h[MOSQ_ADDR_HINTS];
	unsigned next_hint;
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
		return why_rec_stamp(r, us, zoned, p, (size_t)(end - p));
	}
	if (k == 0 || k + 2 > n || line[k] != ':' || line[k + 1] != ' ')
		return false;
	return why_rec_stamp(r, us, zoned, line + k + 2, n - k - 2);
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

/* Whether <t> is an address as mosquitto writes one, "ip:port" (IPv6 unbracketed). */
static bool is_addr_port(struct why_text t)
{
	size_t i = t.n, digits = 0;
	while (i > 0 && t.p[i - 1] >= '0' && t.p[i - 1] <= '9')
		i--, digits++;
	if (digits == 0 || digits > 5 || i < 2 || t.p[i - 1] != ':')
		return false;
	for (size_t k = 0; k + 1 < i; k++)
		if (t.p[k] == ' ' || t.p[k] == '[' || t.p[k] == ']')
			return false;
	return true;
}

/* Whether <p,n> is an IP literal (2.1 names a client that has no id by it). */
static bool is_ip(const char *p, size_t n)
{
	bool sep = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':'))
			return false;
		sep |= c == '.' || c == ':';
	}
	return n > 0 && sep;
}

static void addr_hint_add(struct mosq_state *st, struct why_text addr, enum evt_reason reason, int64_t ts)
{
	struct mosq_addr_hint *h = &st->h[st->next_hint++ % MOSQ_ADDR_HINTS];
	why_copyn(h->addr, sizeof h->addr, addr.p, addr.n);
	h->reason = reason;
	h->ts_us = ts;
}

/* The newest line about <addr> in the 5 s before <ts>, or NULL. */
static struct mosq_addr_hint *addr_hint_find(struct mosq_state *st, struct why_text addr, int64_t ts)
{
	struct mosq_addr_hint *best = NULL;
	for (unsigned i = 0; i < MOSQ_ADDR_HINTS; i++) {
		struct mosq_addr_hint *h = &st->h[i];
		if (h->reason != EVT_R_NONE && why_text_is(addr, h->addr) &&
		    ts >= h->ts_us && ts - h->ts_us <= 5000000 && (!best || h->ts_us >= best->ts_us))
			best = h;
	}
	return best;
}

/* A close of a connection that never had a client id: the socket <q> it was
 * (NULL: unknown) lends its address, the id a CONNACK named, and the refusal
 * code it was sent, which is the exact reason. */
static void borrow_pending(struct mosq_state *st, struct mosq_pending *q, struct why_rec *r)
{
	r->id.p = NULL;
	r->id.n = 0;
	if (!q)
		return;
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
		r->reason = cr;
		r->confidence = EVT_CONF_STATED;
	}
	q->used = false;
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
	/* 2.0.11 and 2.0.12+ word the MOSQ_ERR_NOT_SUPPORTED case differently; the CONNACK code, when the
	 * refusal came with one, says which feature it was */
	{ " disconnected due to QoS too high or retain not supported.", EVT_R_QOS_NOT_SUPPORTED, EVT_BY_BROKER, EVT_CONF_GUESS },
	{ " disconnected due to using not allowed feature (QoS too high, retain not supported, or bad AUTH method).",
	  EVT_R_QOS_NOT_SUPPORTED, EVT_BY_BROKER, EVT_CONF_GUESS },
	{ " been disconnected by administrative action.", EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER, EVT_CONF_STATED },
	/* 2.1.0's new reason codes: " disconnected, <reason_words>." */
	{ " disconnected due to exceeding the receive maximum.", EVT_R_RECEIVE_MAXIMUM_EXCEEDED, EVT_BY_BROKER, EVT_CONF_STATED },
	/* 1.x: connection lost or any other socket error; the broker cannot tell which side ended it */
	{ ", disconnecting.", EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN, EVT_CONF_GUESS },
};

/* 2.1.1+: what follows "Client ID [A:P] disconnected" (src/loop.c do_disconnect). Case
 * matters: ": protocol error." is mosquitto's own, ": Protocol error." strerror(EPROTO). */
static const struct close_form close21[] = {
	{ ".", EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT, EVT_CONF_STATED },
	{ ": connection closed by client.", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT, EVT_CONF_STATED },
	{ ": exceeded timeout.", EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": malformed packet.", EVT_R_MALFORMED_PACKET, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": protocol error.", EVT_R_PROTOCOL_ERROR, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": not authorised.", EVT_R_NOT_AUTHORIZED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": oversize packet.", EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": oversize payload.", EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": out of memory.", EVT_R_IMPLEMENTATION_SPECIFIC_ERROR, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": used disallowed feature (QoS too high, retain not supported, or bad AUTH method).", EVT_R_QOS_NOT_SUPPORTED,
	  EVT_BY_BROKER, EVT_CONF_GUESS },
	{ ": administrative action.", EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER, EVT_CONF_STATED },
	{ ": receive maximum exceeded.", EVT_R_RECEIVE_MAXIMUM_EXCEEDED, EVT_BY_BROKER, EVT_CONF_STATED },
};

/* 2.1's words for the MQTT 5 reason codes 2.0 had no sentence for, after
 * "Client ID disconnected, " (2.1.0) and "Client ID [A:P] disconnected: " (2.1.1+), then ".". */
static const struct close_form reason_words[] = {
	{ "session taken over", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "implementation specific error", EVT_R_IMPLEMENTATION_SPECIFIC_ERROR, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "client identifier not valid", EVT_R_CLIENT_ID_REJECTED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "bad username or password", EVT_R_AUTH_FAILED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "server unavailable", EVT_R_SERVER_UNAVAILABLE, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "server busy", EVT_R_SERVER_BUSY, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "client banned", EVT_R_BANNED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "bad authentication method", EVT_R_BAD_AUTH_METHOD, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "quota exceeded", EVT_R_QUOTA_EXCEEDED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "connection rate exceeded", EVT_R_CONNECTION_RATE_EXCEEDED, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "topic alias invalid", EVT_R_TOPIC_ALIAS_INVALID, EVT_BY_BROKER, EVT_CONF_STATED },
	{ "non-matching http origin", EVT_R_NOT_AUTHORIZED, EVT_BY_BROKER, EVT_CONF_GUESS },
};

/* The close form whose tail <p,n> is, from <forms> (<n_forms> of them); with <words>, <p,n> is
 * "<sep>WORDS." for one of reason_words. NULL if none. */
static const struct close_form *form_of(const char *p, size_t n, const struct close_form *forms, size_t n_forms,
					 const char *sep)
{
	for (size_t i = 0; i < n_forms; i++)
		if (why_text_is((struct why_text){ p, n }, forms[i].tail))
			return &forms[i];
	size_t k = strlen(sep);
	if (n < k + 2 || memcmp(p, sep, k) != 0 || p[n - 1] != '.')
		return NULL;
	struct why_text words = { p + k, n - k - 1 };
	for (size_t i = 0; i < sizeof reason_words / sizeof reason_words[0]; i++)
		if (why_text_is(words, reason_words[i].tail))
			return &reason_words[i];
	return NULL;
}

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
	{ "Empty unsubscription string from ", ", disconnecting.", EVT_R_TOPIC_FILTER_INVALID },
	{ "Invalid unsubscription string from ", ", disconnecting.", EVT_R_TOPIC_FILTER_INVALID },
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
		/* 1.6/2.0 number 3.1 and 3.1.1 p1 and p2, 2.1 as MQTT does, p3 and p4 */
		r->level = p == 1 || p == 3 ? 3 : p == 2 || p == 4 ? 4 : p == 5 ? 5 : 0;
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

/* 2.1.1+: "Client ID [A:P] disconnected[: reason]." The address is the last
 * " [" before the last "] disconnected": the id may hold anything. */
static bool parse_close21(struct mosq_state *st, struct why_text m, struct why_rec *r)
{
	const char *d = NULL;
	for (const char *q = m.p; (q = why_find(q, m.n - (size_t)(q - m.p), "] disconnected")) != NULL; q++)
		d = q;
	if (!d)
		return false;
	const char *o = d; /* the '[' after " [", at least one byte past "Client " */
	while (o > m.p + 8 && !(o[0] == '[' && o[-1] == ' '))
		o--;
	if (o < m.p + 8 || o[0] != '[' || o[-1] != ' ')
		return false;
	struct why_text addr = { o + 1, (size_t)(d - o - 1) };
	if (!is_addr_port(addr))
		return false;
	r->id.p = m.p + 7;
	r->id.n = (size_t)(o - 1 - r->id.p);
	r->addr = addr;
	struct why_text tail = { d + 14, m.n - (size_t)(d + 14 - m.p) };
	r->reason = EVT_R_CLIENT_VANISHED; /* "...: strerror." or "bad socket read/write: ...": the broker cannot tell */
	r->closed_by = EVT_BY_UNKNOWN;
	r->confidence = EVT_CONF_GUESS;
	const struct close_form *f = form_of(tail.p, tail.n, close21, sizeof close21 / sizeof close21[0], ": ");
	if (f) {
		r->reason = f->reason;
		r->closed_by = f->by;
		r->confidence = f->conf;
	}
	/* no client id: 2.1 writes the ip in its place */
	size_t ip_n = addr.n;
	while (ip_n > 0 && addr.p[ip_n - 1] != ':')
		ip_n--;
	if (ip_n && r->id.n == ip_n - 1 && memcmp(r->id.p, addr.p, r->id.n) == 0) {
		borrow_pending(st, pending_find(st, addr.p, addr.n, false), r);
		r->addr = addr;
	}
	struct mosq_addr_hint *hint = addr_hint_find(st, addr, r->ts_us);
	if (hint && (r->reason == EVT_R_PROTOCOL_ERROR || r->reason == EVT_R_MALFORMED_PACKET ||
		     r->confidence != EVT_CONF_STATED)) {
		r->reason = hint->reason; /* finer: "Bad client A:P sending multiple CONNECT messages." */
		hint->reason = EVT_R_NONE;
		r->closed_by = EVT_BY_BROKER;
		r->confidence = EVT_CONF_STATED;
	}
	r->kind = WHY_REC_CLOSE;
	return true;
}

/* "Protocol error from A:P: ..." (2.1, before the connection has a client id)
 * or "Protocol error from ID: ...": a note of what the close that follows means. */
static bool parse_protocol_error(struct mosq_state *st, struct why_text m, struct why_rec *r)
{
	if (!why_starts(m.p, m.n, "Protocol error from "))
		return false;
	const char *s = m.p + 20, *end = m.p + m.n, *e = s;
	while (e < end && *e != ' ')
		e++;
	struct why_text who = { s, (size_t)(e - s) };
	if (who.n && who.p[who.n - 1] == ':')
		who.n--;
	const char *c = is_addr_port(who) ? NULL : why_find(s, (size_t)(end - s), ": ");
	if (!is_addr_port(who) && !c)
		return false;
	r->reason = EVT_R_PROTOCOL_ERROR;
	r->closed_by = EVT_BY_BROKER;
	if (!c) {
		r->addr = who;
		if (why_find(e, (size_t)(end - e), "invalid protocol")) {
			r->reason = EVT_R_UNSUPPORTED_PROTOCOL_VERSION;
			struct mosq_pending *q = pending_find(st, who.p, who.n, false);
			if (q && q->rc < 0)
				q->rc = 0x84;
		} else if (why_find(e, (size_t)(end - e), "clientid")) {
			r->reason = EVT_R_CLIENT_ID_REJECTED;
		} else if (why_find(e, (size_t)(end - e), "First packet not CONNECT")) {
			r->reason = EVT_R_FIRST_PACKET_NOT_CONNECT;
		}
		addr_hint_add(st, who, r->reason, r->ts_us);
	} else {
		r->id.p = s;
		r->id.n = (size_t)(c - s);
	}
	r->kind = WHY_REC_NOTE;
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
		return why_rec_decide(r, WHY_REC_SHUTDOWN, EVT_R_SERVER_SHUTDOWN, EVT_BY_BROKER, EVT_CONF_STATED);
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
	if (parse_protocol_error(st, m, r))
		return r->kind;
	if (why_starts(m.p, m.n, "Bad client ")) {
		struct why_text who;
		if (between(m, "Bad client ", " sending multiple CONNECT messages.", &who) && is_addr_port(who)) {
			r->addr = who; /* 2.1 */
			r->reason = EVT_R_PROTOCOL_ERROR_SECOND_CONNECT;
			r->closed_by = EVT_BY_BROKER;
			addr_hint_add(st, who, r->reason, r->ts_us);
			return r->kind = WHY_REC_NOTE;
		}
	}
	if (why_starts(m.p, m.n, "Connection from ")) { /* 2.1 PROXY protocol listeners */
		struct why_text a;
		if (between(m, "Connection from ", " rejected, ", &a)) {
			r->addr = a;
			enum evt_reason why = why_find(m.p, m.n, "certificate") ? EVT_R_NOT_AUTHORIZED : EVT_R_PROTOCOL_ERROR;
			return why_rec_decide(r, WHY_REC_CLOSE, why, EVT_BY_BROKER, EVT_CONF_STATED);
		}
		return r->kind = WHY_REC_NONE; /* "... negotiated TLSv1.3 cipher ..." */
	}
	if (why_starts(m.p, m.n, "Client from ")) { /* 2.1: "Client from A:P appears to be using TLS to ..." */
		struct why_text a;
		if (between(m, "Client from ", " appears", &a))
			r->addr = a;
		return r->kind = WHY_REC_NOTE;
	}
	if (why_starts(m.p, m.n, "Client ") && why_find(m.p, m.n, " negotiated ") && why_find(m.p, m.n, " cipher "))
		return r->kind = WHY_REC_NONE;
	if (between(m, "Client ", " has exceeded its receive-maximum quota", &r->id))
		return r->kind = WHY_REC_NOTE; /* 2.1.1+ does not close for it: context */
	if (why_starts(m.p, m.n, "Client ") && ends_with(m, ", disconnecting.") &&
	    between(m, "Client ", " sent too large packet ", &r->id)) { /* 1.6: then "Socket error on client" */
		r->reason = EVT_R_PACKET_TOO_LARGE;
		r->closed_by = EVT_BY_BROKER;
		return r->kind = WHY_REC_NOTE;
	}
	if (between(m, "Client ", " sent topic with invalid UTF-8, disconnecting.", &r->id)) { /* 1.6 */
		r->reason = EVT_R_TOPIC_NAME_INVALID;
		r->closed_by = EVT_BY_BROKER;
		return r->kind = WHY_REC_NOTE;
	}
	static const char *const by_ip[] = { "Empty subscription string from ", "Invalid subscription string from ",
					     "Invalid QoS in subscription command from " };
	for (size_t i = 0; i < sizeof by_ip / sizeof by_ip[0]; i++)
		if (between(m, by_ip[i], ", disconnecting.", &r->addr)) { /* these name the ip, not the id */
			r->reason = i < 2 ? EVT_R_TOPIC_FILTER_INVALID : EVT_R_MALFORMED_PACKET;
			r->closed_by = EVT_BY_BROKER;
			return r->kind = WHY_REC_NOTE;
		}
	if (why_starts(m.p, m.n, "Bad socket read/write on client ")) {
		const char *e = why_find(m.p + 32, m.n - 32, ": ");
		r->id.p = m.p + 32;
		r->id.n = e ? (size_t)(e - r->id.p) : m.n - 32;
		return why_rec_decide(r, WHY_REC_CLOSE, EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN, EVT_CONF_GUESS);
	}
	if (why_starts(m.p, m.n, "Client ") && parse_close21(st, m, r))
		return r->kind;
	if (why_starts(m.p, m.n, "Client ") || why_starts(m.p, m.n, "Socket error on client ")) {
		size_t pre = why_starts(m.p, m.n, "Client ") ? 7 : 23;
		const struct close_form *f = NULL;
		size_t tail = 0;
		for (size_t i = 0; i < sizeof close_forms / sizeof close_forms[0] && !f; i++) {
			tail = strlen(close_forms[i].tail);
			if (ends_with(m, close_forms[i].tail) && m.n > pre + tail &&
			    (pre == 7 || close_forms[i].reason == EVT_R_CLIENT_VANISHED))
				f = &close_forms[i];
		}
		/* 2.1.0: "Client ID disconnected, <reason_words>." */
		const char *comma = NULL; /* the last one: the id may hold the words */
		for (const char *c = m.p + pre; pre == 7 && !f && (c = why_find(c, m.n - (size_t)(c - m.p), " disconnected, "));
		     c++)
			comma = c;
		if (comma && (f = form_of(comma + 13, m.n - (size_t)(comma + 13 - m.p), NULL, 0, ", ")) != NULL)
			tail = m.n - (size_t)(comma - m.p);
		if (f) {
			r->id.p = m.p + pre;
			r->id.n = m.n - pre - tail;
			r->reason = f->reason;
			r->closed_by = f->by;
			r->confidence = f->conf;
		}
		/* MOSQ_ERR_ERRNO: "...: strerror.", after the id (a search from the start would find the
		 * space "Client" ends with when the id is empty) */
		const char *e = r->id.p ? NULL : why_find(m.p + pre, m.n - pre, " disconnected: ");
		if (e) {
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
				borrow_pending(st, q, r);
			} else if (is_ip(r->id.p, r->id.n)) {
				/* 2.1.0 names a client without an id by its ip: a socket from there that never
				 * got one says so (an accepted client's is no longer pending) */
				struct mosq_pending *q = pending_find(st, r->id.p, r->id.n, true);
				if (q)
					borrow_pending(st, q, r);
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
	.no_close_hint = "no close line in it: mosquitto writes them at log_type notice (`log_type all`, or "
			 "`notice` with `error` and `warning`)",
	.parse = mosq_parse,
};
