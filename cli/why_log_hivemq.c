/* HiveMQ logs, both files: hivemq.log ("%d %level - %msg", e.g.
 * "2020-09-14 11:26:08,118 INFO  - Disconnecting client with clientId x and ip
 * y forcibly via extension system.") and event.log ("%d - %msg": "Client ID:
 * x, IP: y, Clean Start: true, Session Expiry: 0 connected.", "... disconnected
 * gracefully.", "... disconnected ungracefully.", "... was disconnected.
 * reason: R."). A broker-initiated close is two lines: "was disconnected.
 * reason: R" then "disconnected ungracefully"; alone, the second means the
 * TCP connection was lost without the broker acting. Timestamps are the
 * broker's local time, without a zone. */
#include <string.h>

#include "cli/why_log.h"

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

/* HiveMQ's reason strings (event.log "reason: ...") and ours. */
static const struct {
	const char *words;
	enum evt_reason reason;
} hive_reasons[] = {
	{ "idle for too long", EVT_R_KEEPALIVE_TIMEOUT },
	{ "keep alive", EVT_R_KEEPALIVE_TIMEOUT },
	{ "same clientid", EVT_R_SESSION_TAKEN_OVER },
	{ "same client id", EVT_R_SESSION_TAKEN_OVER },
	{ "too many concurrent publish", EVT_R_RECEIVE_MAXIMUM_EXCEEDED },
	{ "second connect", EVT_R_PROTOCOL_ERROR_SECOND_CONNECT },
	{ "topic alias", EVT_R_TOPIC_ALIAS_INVALID },
	{ "too large", EVT_R_PACKET_TOO_LARGE },
	{ "maximum permissible size", EVT_R_PACKET_TOO_LARGE },
	{ "malformed", EVT_R_MALFORMED_PACKET },
	{ "fixed header", EVT_R_MALFORMED_PACKET },
	{ "remaining length", EVT_R_MALFORMED_PACKET },
	{ "authentication failed", EVT_R_AUTH_FAILED },
	{ "not authorized", EVT_R_NOT_AUTHORIZED },
	{ "shut down", EVT_R_SERVER_SHUTDOWN },
	{ "shutting down", EVT_R_SERVER_SHUTDOWN },
	{ "connect timed out", EVT_R_CONNECT_TIMEOUT },
	{ "administrative", EVT_R_ADMIN_DISCONNECT },
	{ "extension", EVT_R_ADMIN_DISCONNECT },
	{ "quota", EVT_R_QUOTA_EXCEEDED },
	{ "not allowed", EVT_R_PROTOCOL_ERROR },
	{ "invalid", EVT_R_PROTOCOL_ERROR },
};

static enum evt_reason hive_reason(struct why_text t)
{
	for (size_t i = 0; i < sizeof hive_reasons / sizeof hive_reasons[0]; i++)
		if (why_contains_ci(t.p, t.n, hive_reasons[i].words))
			return hive_reasons[i].reason;
	return EVT_R_UNKNOWN;
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

static enum why_rec_kind hive_parse(void *state, const char *line, size_t n, struct why_rec *r)
{
	(void)state;
	why_rec_clear(r);
	if (!split(line, n, r))
		return r->kind = WHY_REC_UNKNOWN;
	struct why_text m = r->msg, rest;
	if (client_prefix(m, r, &rest)) {
		if (why_find(rest.p, rest.n, " was disconnected. reason: ")) {
			const char *w = why_find(rest.p, rest.n, "reason: ") + 8;
			struct why_text why = { w, rest.n - (size_t)(w - rest.p) };
			r->reason = hive_reason(why);
			r->closed_by = EVT_BY_BROKER;
			r->confidence = EVT_CONF_STATED;
			return r->kind = WHY_REC_NOTE;
		}
		if (why_find(rest.p, rest.n, " disconnected gracefully")) {
			r->reason = EVT_R_CLIENT_DISCONNECT;
			r->closed_by = EVT_BY_CLIENT;
			r->confidence = EVT_CONF_STATED;
			return r->kind = WHY_REC_CLOSE;
		}
		if (why_find(rest.p, rest.n, " disconnected ungracefully")) {
			/* alone: the connection was lost and the broker did not act (HiveMQ's knowledge base) */
			r->reason = EVT_R_CLIENT_VANISHED;
			r->closed_by = EVT_BY_CLIENT;
			r->confidence = EVT_CONF_INFERRED;
			return r->kind = WHY_REC_CLOSE;
		}
		if (why_find(rest.p, rest.n, " connected.") && !why_find(rest.p, rest.n, "disconnected"))
			return r->kind = WHY_REC_OPEN;
		return r->kind = WHY_REC_UNKNOWN;
	}
	struct why_text id;
	if (why_starts(m.p, m.n, "Disconnecting client with clientId ")) {
		id.p = m.p + 35;
		const char *e = why_find(id.p, m.n - 35, " and ip ");
		if (e) {
			id.n = (size_t)(e - id.p);
			r->id = id;
			const char *a = e + 8, *ae = why_find(a, m.n - (size_t)(a - m.p), " ");
			r->addr.p = a;
			r->addr.n = ae ? (size_t)(ae - a) : 0;
			/* the Enterprise Security Extension ends sessions whose authentication expired */
			r->reason = why_find(m.p, m.n, "forcibly via extension system") ? EVT_R_CREDENTIALS_EXPIRED
										      : EVT_R_ADMIN_DISCONNECT;
			r->closed_by = EVT_BY_BROKER;
			r->confidence = EVT_CONF_STATED;
			return r->kind = WHY_REC_NOTE;
		}
	}
	if (why_starts(m.p, m.n, "Shutting down HiveMQ")) {
		r->reason = EVT_R_SERVER_SHUTDOWN;
		r->closed_by = EVT_BY_BROKER;
		r->confidence = EVT_CONF_STATED;
		return r->kind = WHY_REC_SHUTDOWN;
	}
	return r->kind = WHY_REC_UNKNOWN;
}

const struct why_format why_format_hivemq = {
	.name = "hivemq",
	.looks_like = hive_looks_like,
	.state_size = 1,
	.says_auth_apart = true,
	.parse = hive_parse,
};
