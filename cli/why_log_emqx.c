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
			/* an Erlang term ({...}, [...], #{...}) or a packet ("CONNECT(Q0, R0, ...)") holds ", "
			 * inside its brackets; any other value (a client id with a "(" in it) ends at the first */
			const char *w = s;
			while (w < end && *w >= 'A' && *w <= 'Z')
				w++;
			bool term = s < end && (*s == '{' || *s == '[' || *s == '#' || (w > s && w < end && *w == '('));
			int depth = 0;
			while (e < end && !(depth <= 0 && e + 1 < end && e[0] == ',' && e[1] == ' ')) {
				if (term)
					depth += (*e == '{' || *e == '[' || *e == '(') - (*e == '}' || *e == ']' || *e == ')');
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

/* EMQX exit reasons (the atom inside {shutdown, ...}, from emqx_connection and
 * emqx_channel, v5.0-5.8) and ours. A client's DISCONNECT with an error code
 * gives the same atom as the broker's (emqx_reason_codes:name), so those say
 * what, not always who. */
static const struct {
	const char *atom;
	enum evt_reason reason;
	enum evt_party by;
} emqx_reasons[] = {
	{ "tcp_closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "ssl_closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "einval", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "econnreset", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "epipe", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
	{ "ehostunreach", EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN },
	{ "etimedout", EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN },
	{ "timeout", EVT_R_CLIENT_VANISHED, EVT_BY_UNKNOWN },
	{ "keepalive_timeout", EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER },
	{ "takenover", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER },
	{ "discarded", EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER },
	{ "kicked", EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER },
	{ "normal", EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT },
	{ "normal_disconnection", EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT },
	{ "disconnect_with_will_message", EVT_R_CLIENT_DISCONNECT_WITH_WILL, EVT_BY_CLIENT },
	{ "idle_timeout", EVT_R_CONNECT_TIMEOUT, EVT_BY_BROKER },
	{ "frame_too_large", EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER },
	{ "frame_parse_error", EVT_R_MALFORMED_PACKET, EVT_BY_BROKER },
	{ "bad_username_or_password", EVT_R_AUTH_FAILED, EVT_BY_BROKER },
	{ "bad_authentication_method", EVT_R_BAD_AUTH_METHOD, EVT_BY_BROKER },
	{ "client_identifier_not_valid", EVT_R_CLIENT_ID_REJECTED, EVT_BY_BROKER },
	{ "message_rate_too_high", EVT_R_RATE_LIMITED, EVT_BY_BROKER },
	/* a persistent session's end, hours after its connection: the connection's own end was not logged */
	{ "expired", EVT_R_UNKNOWN, EVT_BY_UNKNOWN },
};

static void map_reason(struct why_text atom, struct why_rec *r)
{
	char name[64];
	for (size_t i = 0; i < sizeof emqx_reasons / sizeof emqx_reasons[0]; i++)
		if (why_text_is(atom, emqx_reasons[i].atom)) {
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
	/* a frame error's cause we have no name for (bad_frame_header, malformed_variable_byte_integer, ...) */
	bool frame = why_find(atom.p, atom.n, "malformed") || why_find(atom.p, atom.n, "frame") ||
		     why_find(atom.p, atom.n, "invalid_");
	r->reason = frame ? EVT_R_MALFORMED_PACKET : EVT_R_UNKNOWN;
	r->closed_by = frame ? EVT_BY_BROKER : EVT_BY_UNKNOWN;
	r->confidence = EVT_CONF_STATED;
}

/* The atom after "<key> => " in an Erlang map printed by ~p, or an empty text. */
static struct why_text map_value(struct why_text v, const char *key)
{
	struct why_text a = { NULL, 0 };
	const char *end = v.p + v.n, *k = v.p;
	/* the key itself, not the end of another ("exit_reason => " is not "reason => ") */
	while ((k = why_find(k, (size_t)(end - k), key)) != NULL && k > v.p && k[-1] != '{' && k[-1] != ',')
		k++;
	if (!k)
		return a;
	const char *s = k + strlen(key), *e;
	while (s < end && *s == '{') /* cause => {invalid_topic,...} */
		s++;
	e = s;
	while (e < end && *e != ',' && *e != '}' && *e != ' ')
		e++;
	a.p = s;
	a.n = (size_t)(e - s);
	return a;
}

/* "{shutdown,{ssl_error,closed}}" -> "closed"; "{shutdown,tcp_closed}" -> "tcp_closed"; "normal" -> "normal";
 * a frame error's map "{shutdown,#{cause => frame_too_large,...}}" -> "frame_too_large" (or its "reason =>"). */
static struct why_text innermost_atom(struct why_text v)
{
	if (why_find(v.p, v.n, "#{")) {
		struct why_text a = map_value(v, "cause => ");
		if (!a.n)
			a = map_value(v, "reason => ");
		if (a.n)
			return a;
		if (why_find(v.p, v.n, "exception => ")) /* the connection process crashed */
			return (struct why_text){ "crash", 5 };
		return (struct why_text){ "frame_parse_error", 17 };
	}
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
	if (why_text_is(msg, "terminate")) {
		if (field(m, "reason", &v))
			map_reason(innermost_atom(v), r);
		return r->kind = WHY_REC_CLOSE;
	}
	/* the node stops: its connection processes are killed and log no terminate of their own */
	if (why_text_is(msg, "received_terminate_signal") || why_text_is(msg, "stopping_emqx_apps")) {
		return why_rec_decide(r, WHY_REC_SHUTDOWN, EVT_R_SERVER_SHUTDOWN, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	/* debug traces: the CONNACK that accepted a connection opens it */
	if (why_text_is(msg, "mqtt_packet_sent") && field(m, "packet", &v) && why_starts(v.p, v.n, "CONNACK(") &&
	    why_find(v.p, v.n, "ReasonCode=0)") && r->id.p)
		return r->kind = WHY_REC_OPEN;
	/* warnings a default (warning level) log has, which explain the terminate that may follow */
	if (why_text_is(msg, "authentication_failure") || why_text_is(msg, "cannot_publish_to_topic_due_to_not_authorized") ||
	    why_text_is(msg, "authorization_permission_denied")) {
		if (field(m, "reason", &v))
			map_reason(innermost_atom(v), r);
		if (r->reason == EVT_R_UNKNOWN || r->reason == EVT_R_NONE)
			r->reason = EVT_R_NOT_AUTHORIZED;
		return r->kind = WHY_REC_NOTE;
	}
	if (why_text_is(msg, "unexpected_connect_packet")) {
		r->reason = EVT_R_PROTOCOL_ERROR_SECOND_CONNECT;
		r->closed_by = EVT_BY_BROKER;
		return r->kind = WHY_REC_NOTE;
	}
	/* context: a dropped outgoing packet ("packet_is_discarded") or the flapping counter's
	 * "client_disconnected" do not end a connection */
	if (why_contains_ci(msg.p, msg.n, "socket_error") || why_contains_ci(msg.p, msg.n, "frame_parse") ||
	    why_contains_ci(msg.p, msg.n, "kick") || why_contains_ci(msg.p, msg.n, "takeover")) {
		if (field(m, "reason", &v))
			map_reason(innermost_atom(v), r);
		if (r->reason == EVT_R_UNKNOWN)
			r->reason = EVT_R_NONE; /* context, not a reason */
		return r->kind = WHY_REC_NOTE;
	}
	return r->kind = r->id.p ? WHY_REC_UNKNOWN : WHY_REC_NONE;
}

const struct why_format why_format_emqx = {
	.name = "emqx",
	.looks_like = emqx_looks_like,
	.state_size = 1,
	/* not_authorized is also a user not found, an ACL deny and expired credentials (emqx_authn_chains,
	 * emqx_channel connection_expire): the wire's credentials tell them apart as for mosquitto */
	.says_auth_apart = false,
	.no_close_hint = "no `terminate` line in it: EMQX writes them at level info and logs at warning by default "
			 "(`emqx ctl log set-level info`)",
	.parse = emqx_parse,
};
