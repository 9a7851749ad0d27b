/* EMQX 5 text logs: "2024-01-10T10:11:12.345678+00:00 [info] clientid: c1,
 * msg: terminate, peername: 127.0.0.1:5678, reason: {shutdown,tcp_closed}".
 * Fields are "key: value" pairs joined by ", " in no fixed order (the
 * process's metadata, clientid and peername, comes with every line of a
 * connection). The connection process logs "terminate" with its exit reason
 * when it ends; the reason atoms map onto ours. */
#include <string.h>

#include "cli/why_log.h"

static bool split(const char *line, size_t n, struct why_rec *r)
{
	int64_t us;
	bool zoned;
	size_t k = why_split_level(line, n, &us, &zoned);
	return k && why_rec_stamp(r, us, zoned, line + k, n - k);
}

static bool emqx_looks_like(const char *line, size_t n)
{
	struct why_rec r;
	return split(line, n, &r) && why_find(r.msg.p, r.msg.n, ": ") != NULL;
}

/* The value of "<key>: " in <m> (at the start or after ", "), quotes dropped. */
static bool field(struct why_text m, const char *key, struct why_text *v)
{
	size_t k = strlen(key);
	const char *p = m.p, *end = m.p + m.n;
	while (p < end) {
		const char *hit = why_find(p, (size_t)(end - p), key);
		if (!hit)
			return false;
		bool at_start = hit == m.p || (hit - m.p >= 2 && hit[-2] == ',' && hit[-1] == ' ');
		if (at_start && hit + k + 2 <= end && hit[k] == ':' && hit[k + 1] == ' ') {
			const char *s = hit + k + 2, *e = s;
			int depth = 0;
			while (e < end && !(depth == 0 && e + 1 < end && e[0] == ',' && e[1] == ' ')) {
				depth += (*e == '{' || *e == '[') - (*e == '}' || *e == ']');
				e++;
			}
			if (e - s >= 2 && *s == '"' && e[-1] == '"')
				s++, e--;
			v->p = s;
			v->n = (size_t)(e - s);
			return true;
		}
		p = hit + 1;
	}
	return false;
}

/* EMQX exit reasons (the atom inside {shutdown, ...}) and ours. */
static const struct {
	const char *atom;
	enum evt_reason reason;
	enum evt_party by;
} emqx_reasons[] = {
	{ "tcp_closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "ssl_closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "sock_closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "einval", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "econnreset", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "etimedout", EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN },
	{ "keepalive_timeout", EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER },
	{ "takenover", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER },
	{ "takeovered", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER },
	{ "discarded", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER },
	{ "kicked", EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER },
	{ "normal", EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT },
	{ "normal_disconnection", EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT },
	{ "disconnect_with_will_message", EVT_R_CLIENT_DISCONNECT_WITH_WILL, EVT_BY_CLIENT },
	{ "idle_timeout", EVT_R_CONNECT_TIMEOUT, EVT_BY_BROKER },
	{ "frame_too_large", EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER },
	{ "frame_parse_error", EVT_R_MALFORMED_PACKET, EVT_BY_BROKER },
	{ "bad_username_or_password", EVT_R_AUTH_FAILED, EVT_BY_BROKER },
	{ "authentication_expired", EVT_R_CREDENTIALS_EXPIRED, EVT_BY_BROKER },
	{ "expired", EVT_R_CREDENTIALS_EXPIRED, EVT_BY_BROKER },
};

static void map_reason(struct why_text atom, struct why_rec *r)
{
	char name[64];
	for (size_t i = 0; i < sizeof emqx_reasons / sizeof emqx_reasons[0]; i++)
		if (strlen(emqx_reasons[i].atom) == atom.n && memcmp(emqx_reasons[i].atom, atom.p, atom.n) == 0) {
			r->reason = emqx_reasons[i].reason;
			r->closed_by = emqx_reasons[i].by;
			r->confidence = EVT_CONF_STATED;
			return;
		}
	/* many of EMQX's atoms are the MQTT 5 reason names we use too: not_authorized, quota_exceeded ... */
	if (atom.n < sizeof name) {
		memcpy(name, atom.p, atom.n);
		name[atom.n] = 0;
		enum evt_reason er = evt_reason_from_name(name);
		if (er != EVT_R_NONE) {
			r->reason = er;
			r->closed_by = er == EVT_R_CLIENT_DISCONNECT ? EVT_BY_CLIENT : EVT_BY_BROKER;
			r->confidence = EVT_CONF_STATED;
			return;
		}
	}
	r->reason = EVT_R_UNKNOWN;
	r->closed_by = EVT_BY_UNKNOWN;
	r->confidence = EVT_CONF_STATED;
}

/* "{shutdown,{ssl_error,closed}}" -> "closed"; "{shutdown,tcp_closed}" -> "tcp_closed"; "normal" -> "normal". */
static struct why_text innermost_atom(struct why_text v)
{
	const char *s = v.p, *e = v.p + v.n;
	while (s < e && (*s == '{' || *s == ' '))
		s++;
	while (e > s && (e[-1] == '}' || e[-1] == ' '))
		e--;
	const char *c = s;
	for (const char *p = s; p < e; p++)
		if (*p == ',' || *p == '{')
			c = p + 1;
	struct why_text a = { c, (size_t)(e - c) };
	return a;
}

static enum why_rec_kind emqx_parse(void *state, const char *line, size_t n, struct why_rec *r)
{
	(void)state;
	why_rec_clear(r);
	if (!split(line, n, r))
		return r->kind = WHY_REC_UNKNOWN;
	struct why_text m = r->msg, msg, v;
	if (field(m, "clientid", &v))
		r->id = v;
	if (field(m, "peername", &v))
		r->addr = v;
	if (field(m, "username", &v))
		r->user = v;
	if (!field(m, "msg", &msg))
		return r->kind = WHY_REC_UNKNOWN;
	if (msg.n == 9 && memcmp(msg.p, "terminate", 9) == 0) {
		if (field(m, "reason", &v))
			map_reason(innermost_atom(v), r);
		return r->kind = WHY_REC_CLOSE;
	}
	if (why_contains_ci(msg.p, msg.n, "disconnect") || why_contains_ci(msg.p, msg.n, "kick") ||
	    why_contains_ci(msg.p, msg.n, "takeover") || why_contains_ci(msg.p, msg.n, "discard") ||
	    why_contains_ci(msg.p, msg.n, "socket_error") || why_contains_ci(msg.p, msg.n, "frame_parse")) {
		if (field(m, "reason", &v))
			map_reason(innermost_atom(v), r);
		if (r->reason == EVT_R_UNKNOWN)
			r->reason = EVT_R_NONE; /* context, not a reason */
		return r->kind = WHY_REC_NOTE;
	}
	if (why_contains_ci(msg.p, msg.n, "connected") && r->id.p)
		return r->kind = WHY_REC_OPEN;
	return r->kind = r->id.p ? WHY_REC_UNKNOWN : WHY_REC_NONE;
}

const struct why_format why_format_emqx = {
	.name = "emqx",
	.looks_like = emqx_looks_like,
	.state_size = 1,
	.says_auth_apart = true,
	.parse = emqx_parse,
};
