/* HiveMQ logs, both files: hivemq.log ("%d %level - %msg", logback's
 * "%-30(%d %level)- %msg") and event.log ("%d - %msg"), their sentences as
 * HiveMQ CE writes them (logging/EventLog.java): "Client ID: x, IP: y, Clean
 * Start: true, Session Expiry: 0 connected.", "... disconnected gracefully."
 * (with ". Reason given by client: ..." when the DISCONNECT had a reason
 * string), "... disconnected ungracefully[ from LISTENER on port: N]." and
 * "... was disconnected. reason: R.".
 *
 * A close the broker made is the "was disconnected" line: CE writes no other
 * line for that connection (its ClientState keeps the "ungracefully" one from
 * following). HiveMQ's knowledge base shows both lines, the second a moment
 * after: such a follower is read as nothing. "ungracefully" alone means the
 * connection was lost without the broker acting; within a minute after
 * "Shutting down HiveMQ" (hivemq.log, read first: it starts earlier) it is
 * the shutdown closing every connection. Timestamps are the broker's local
 * time, without a zone. */
#include <string.h>

#include "cli/why_log.h"
#include "common/hash.h"

static bool split(const char *line, size_t n, struct why_rec *r)
{
	int64_t us;
	bool zoned;
	size_t k = why_time_parse(line, n, &us, &zoned);
	if (k == 0)
		return false;
	size_t i = k;
	while (i < n && line[i] == ' ')
		i++;
	static const char *const levels[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR" };
	for (size_t l = 0; l < 5; l++)
		if (why_starts(line + i, n - i, levels[l])) {
			i += strlen(levels[l]);
			while (i < n && line[i] == ' ')
				i++;
			break;
		}
	if (i == k || i + 2 > n || line[i] != '-' || line[i + 1] != ' ')
		return false;
	return why_rec_stamp(r, us, zoned, line + i + 2, n - i - 2);
}

static bool hive_looks_like(const char *line, size_t n)
{
	struct why_rec r;
	return split(line, n, &r);
}

/* The reasons HiveMQ CE writes after "was disconnected. reason: " (its
 * event-log messages, not the reason strings it sends the client), first
 * match wins, matched once quoted parts ('topic', 'property') are blanked: a
 * topic must not decide. Sentences that carry unquoted client text come
 * first, decided on their fixed words; "same clientid" and "connect timed
 * out" are older wordings. */
static const struct {
	const char *words;
	enum evt_reason reason;
} hive_reasons[] = {
	{ "invalid subscription topic", EVT_R_PROTOCOL_ERROR },
	{ "wildcard character", EVT_R_PROTOCOL_ERROR },
	{ "illegal websocket data", EVT_R_MALFORMED_PACKET },
	{ "channel exception", EVT_R_UNKNOWN },
	{ "idle for too long", EVT_R_KEEPALIVE_TIMEOUT },
	{ "same client id", EVT_R_SESSION_TAKEN_OVER },
	{ "same clientid", EVT_R_SESSION_TAKEN_OVER },
	{ "too many concurrent publish", EVT_R_RECEIVE_MAXIMUM_EXCEEDED },
	{ "second connect", EVT_R_PROTOCOL_ERROR_SECOND_CONNECT },
	{ "no connect sent in time", EVT_R_CONNECT_TIMEOUT },
	{ "handshake not finished in time", EVT_R_CONNECT_TIMEOUT },
	{ "connect timed out", EVT_R_CONNECT_TIMEOUT },
	{ "maximum amount of connections", EVT_R_QUOTA_EXCEEDED },
	{ "global memory hard limit", EVT_R_QUOTA_EXCEEDED },
	{ "quota", EVT_R_QUOTA_EXCEEDED },
	{ "higher than the allowed maximum", EVT_R_QOS_NOT_SUPPORTED },
	{ "not authorized", EVT_R_NOT_AUTHORIZED },
	{ "unauthorized", EVT_R_NOT_AUTHORIZED },
	{ "failure code (0x80)", EVT_R_NOT_AUTHORIZED },
	{ "authentication failed", EVT_R_AUTH_FAILED },
	{ "authentication method", EVT_R_AUTH_FAILED },
	{ "different auth method", EVT_R_AUTH_FAILED },
	{ "no client certificate", EVT_R_AUTH_FAILED },
	{ "via extension system", EVT_R_ADMIN_DISCONNECT },
	{ "prevented by extension", EVT_R_ADMIN_DISCONNECT },
	{ "prevented by a publish inbound interceptor", EVT_R_ADMIN_DISCONNECT },
	{ "negative subscribe acknowledgement", EVT_R_ADMIN_DISCONNECT },
	{ "administrative", EVT_R_ADMIN_DISCONNECT },
	{ "included more than once", EVT_R_PROTOCOL_ERROR },
	{ "topic alias", EVT_R_TOPIC_ALIAS_INVALID },
	{ "too large", EVT_R_PACKET_TOO_LARGE },
	{ "bigger than the", EVT_R_PACKET_TOO_LARGE },
	{ "maximum permissible size", EVT_R_PACKET_TOO_LARGE },
	{ "malformed", EVT_R_MALFORMED_PACKET },
	{ "fixed header", EVT_R_MALFORMED_PACKET },
	{ "remaining length", EVT_R_MALFORMED_PACKET },
	{ "utf-8", EVT_R_MALFORMED_PACKET },
	{ "property identifier", EVT_R_MALFORMED_PACKET },
	{ "payload format indicator", EVT_R_MALFORMED_PACKET },
	{ "incorrect", EVT_R_MALFORMED_PACKET },
	{ "will-topic", EVT_R_MALFORMED_PACKET },
	{ "invalid connect flags", EVT_R_MALFORMED_PACKET },
	{ "publish with an invalid qos", EVT_R_MALFORMED_PACKET },
	{ "invalid topic filter", EVT_R_MALFORMED_PACKET },
	{ "with payload", EVT_R_MALFORMED_PACKET },
	{ "ssl ", EVT_R_TLS_HANDSHAKE_FAILED },
	{ "tried to write", EVT_R_UNKNOWN },
	{ "sent ", EVT_R_PROTOCOL_ERROR },
	{ "invalid", EVT_R_PROTOCOL_ERROR },
	{ "not allowed", EVT_R_PROTOCOL_ERROR },
	{ " in auth", EVT_R_PROTOCOL_ERROR },
	{ "enhanced authentication", EVT_R_PROTOCOL_ERROR },
	{ "session expiry interval", EVT_R_PROTOCOL_ERROR },
};

static enum evt_reason hive_reason(struct why_text t)
{
	char plain[512];
	size_t n = 0;
	bool quoted = false;
	for (size_t i = 0; i < t.n && n < sizeof plain; i++) {
		if (t.p[i] == '\'')
			quoted = !quoted;
		else if (!quoted)
			plain[n++] = t.p[i];
	}
	for (size_t i = 0; i < sizeof hive_reasons / sizeof hive_reasons[0]; i++)
		if (why_contains_ci(plain, n, hive_reasons[i].words))
			return hive_reasons[i].reason;
	return EVT_R_UNKNOWN;
}

/* A "was disconnected" whose "ungracefully" follower is the same close:
 * client id and ip hashed (an id may be longer than any copy we keep). */
struct hive_closed {
	uint64_t who;
	int64_t ts_us; /* 0: free */
};

#define HIVE_CLOSED 16 /* a keep-alive sweep closes many clients within the same second */

/* What a line leaves for the next ones to read. */
struct hive_state {
	struct hive_closed closed[HIVE_CLOSED];
	unsigned next;
	int64_t shutdown_us; /* "Shutting down HiveMQ"; 0: not seen */
};

#define HIVE_FOLLOWER_US 5000000
#define HIVE_SHUTDOWN_US 60000000

static uint64_t who_of(const struct why_rec *r)
{
	uint64_t a = r->id.n ? hash_fnv1a(r->id.p, r->id.n) : 0, b = r->addr.n ? hash_fnv1a(r->addr.p, r->addr.n) : 0;
	return a ^ (b * 0x9e3779b97f4a7c15ULL);
}

/* Takes the close of <r>'s client in the few seconds before <r>, if there was one. */
static bool closed_take(struct hive_state *st, const struct why_rec *r)
{
	uint64_t who = who_of(r);
	for (unsigned i = 0; i < HIVE_CLOSED; i++) {
		struct hive_closed *c = &st->closed[i];
		if (c->ts_us && c->who == who && r->ts_us >= c->ts_us && r->ts_us - c->ts_us <= HIVE_FOLLOWER_US) {
			c->ts_us = 0;
			return true;
		}
	}
	return false;
}

/* "Client ID: X, IP: Y<rest>": fills id (absent for UNKNOWN) and addr, returns <rest>. */
static bool client_prefix(struct why_text m, struct why_rec *r, struct why_text *rest)
{
	if (!why_starts(m.p, m.n, "Client ID: "))
		return false;
	const char *ip = why_find(m.p + 11, m.n - 11, ", IP:");
	if (!ip)
		return false;
	r->id.p = m.p + 11;
	r->id.n = (size_t)(ip - r->id.p);
	if (r->id.n == 7 && memcmp(r->id.p, "UNKNOWN", 7) == 0)
		r->id.p = NULL, r->id.n = 0;
	const char *a = ip + 5, *end = m.p + m.n;
	while (a < end && *a == ' ')
		a++;
	const char *ae = a;
	while (ae < end && *ae != ' ' && *ae != ',')
		ae++;
	r->addr.p = a;
	r->addr.n = (size_t)(ae - a);
	if (r->addr.n == 7 && memcmp(a, "UNKNOWN", 7) == 0)
		r->addr.p = NULL, r->addr.n = 0;
	rest->p = ae;
	rest->n = (size_t)(end - ae);
	return true;
}

static enum why_rec_kind hive_client_line(struct hive_state *st, struct why_text rest, struct why_rec *r)
{
	if (why_starts(rest.p, rest.n, " was disconnected. reason: ")) {
		struct why_text why = { rest.p + 27, rest.n - 27 };
		r->reason = hive_reason(why);
		r->closed_by = EVT_BY_BROKER;
		r->confidence = EVT_CONF_STATED;
		st->closed[st->next++ % HIVE_CLOSED] = (struct hive_closed){ who_of(r), r->ts_us ? r->ts_us : 1 };
		return r->kind = WHY_REC_CLOSE;
	}
	if (why_starts(rest.p, rest.n, " disconnected gracefully")) {
		return why_rec_decide(r, WHY_REC_CLOSE, EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT, EVT_CONF_STATED);
	}
	if (why_starts(rest.p, rest.n, " disconnected ungracefully")) {
		if (closed_take(st, r))
			return r->kind = WHY_REC_NONE; /* the broker's close, already read */
		if (st->shutdown_us && r->ts_us >= st->shutdown_us && r->ts_us - st->shutdown_us <= HIVE_SHUTDOWN_US) {
			r->reason = EVT_R_SERVER_SHUTDOWN;
			r->closed_by = EVT_BY_BROKER;
		} else {
			/* alone: the connection was lost and the broker did not act (HiveMQ's knowledge base) */
			r->reason = EVT_R_CLIENT_VANISHED;
			r->closed_by = EVT_BY_CLIENT;
		}
		r->confidence = EVT_CONF_INFERRED;
		return r->kind = WHY_REC_CLOSE;
	}
	if (rest.n >= 11 && memcmp(rest.p + rest.n - 11, " connected.", 11) == 0)
		return r->kind = WHY_REC_OPEN;
	return r->kind = WHY_REC_UNKNOWN;
}

static enum why_rec_kind hive_parse(void *state, const char *line, size_t n, struct why_rec *r)
{
	struct hive_state *st = state;
	why_rec_clear(r);
	if (!split(line, n, r))
		return r->kind = WHY_REC_UNKNOWN;
	struct why_text m = r->msg, rest;
	if (client_prefix(m, r, &rest))
		return hive_client_line(st, rest, r);
	if (why_starts(m.p, m.n, "Disconnecting client with clientId ")) {
		/* an extension's disconnectClient() (CE, at DEBUG: "clientId 'X' forcibly via extension
		 * system."); the Enterprise Security Extension's own wording names the ip too, and ends
		 * sessions whose authentication expired */
		const char *a = m.p + 35, *end = m.p + m.n;
		const char *e = why_find(a, (size_t)(end - a), " and ip ");
		bool ese = e != NULL;
		if (!e)
			e = why_find(a, (size_t)(end - a), " forcibly");
		if (!e)
			return r->kind = WHY_REC_UNKNOWN;
		r->id.p = a;
		r->id.n = (size_t)(e - a);
		if (r->id.n >= 2 && a[0] == '\'' && e[-1] == '\'')
			r->id.p++, r->id.n -= 2;
		if (ese) {
			const char *ip = e + 8, *ie = why_find(ip, (size_t)(end - ip), " ");
			r->addr.p = ip;
			r->addr.n = (size_t)((ie ? ie : end) - ip);
		}
		return why_rec_decide(r, WHY_REC_NOTE, ese ? EVT_R_CREDENTIALS_EXPIRED : EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER,
				      EVT_CONF_STATED);
	}
	if (why_starts(m.p, m.n, "Shutting down HiveMQ")) {
		st->shutdown_us = r->ts_us;
		return why_rec_decide(r, WHY_REC_SHUTDOWN, EVT_R_SERVER_SHUTDOWN, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	return r->kind = WHY_REC_UNKNOWN;
}

const struct why_format why_format_hivemq = {
	.name = "hivemq",
	.looks_like = hive_looks_like,
	.state_size = sizeof(struct hive_state),
	.says_auth_apart = true,
	.no_close_hint = "no client line in it: HiveMQ writes sessions to event.log only (not hivemq.log or the "
			 "console): pass event.log",
	.parse = hive_parse,
};
