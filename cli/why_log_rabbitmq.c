/* RabbitMQ logs of its MQTT plugin: "2024-01-15 10:00:00.123456+00:00
 * [info] <0.1234.0> Accepted MQTT connection 127.0.0.1:5678 -> 127.0.0.1:1883
 * for client ID c1". The sentences are those of deps/rabbitmq_mqtt's reader
 * and processor in both generations: 3.8-3.11 ("accepting MQTT connection
 * <pid> (A -> B, client id: X)", recorded from Debian's 3.10 with real
 * clients in tests/data/recorded-rabbitmq/) and the native MQTT of 3.12 and
 * later ("Accepted MQTT connection A -> B for client ID X", from the source
 * only). A connection's lines all carry the pid of its Erlang process, but
 * only the accept line names the client: the reader keeps pid -> client id
 * and address for open connections (a fixed table; a slot taken by another
 * pid forgets the older one, whose close then names its address only). */
#include <string.h>

#include "cli/why_log.h"
#include "common/hash.h"

#define RMQ_SLOTS 4096

struct rmq_conn {
	char pid[24];
	char addr[64];
	char id[128];
};

struct rmq_state {
	struct rmq_conn c[RMQ_SLOTS];
};

/* "<0.1234.0>" at <p>: its length, or 0. */
static size_t pid_len(const char *p, size_t n)
{
	if (n < 7 || p[0] != '<')
		return 0;
	size_t i = 1;
	int dots = 0;
	while (i < n && i < 23 && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.')) {
		dots += p[i] == '.';
		i++;
	}
	return i < n && p[i] == '>' && dots == 2 ? i + 1 : 0;
}

/* "TS [level] <pid> message": the pid into <pid>, the message into r->msg. */
static bool split(const char *line, size_t n, struct why_rec *r, struct why_text *pid)
{
	int64_t us;
	bool zoned;
	size_t k = why_split_level(line, n, &us, &zoned);
	if (k == 0)
		return false;
	const char *p = line + k, *end = line + n;
	size_t pl = pid_len(p, (size_t)(end - p));
	if (!pl || p + pl >= end || p[pl] != ' ')
		return false;
	pid->p = p;
	pid->n = pl;
	p += pl + 1;
	return why_rec_stamp(r, us, zoned, p, (size_t)(end - p));
}

static bool rmq_looks_like(const char *line, size_t n)
{
	struct why_rec r;
	struct why_text pid;
	return split(line, n, &r, &pid);
}

static struct rmq_conn *slot_of(struct rmq_state *st, struct why_text pid)
{
	return &st->c[hash_fnv1a(pid.p, pid.n) % RMQ_SLOTS];
}

/* A connection's name, at <p>: <<"A -> B">> (3.12+ ~p of a binary), "A -> B"
 * (3.10 ~p of a string) or bare up to <stop> (NULL: the end). Sets r->addr to
 * A and returns the byte after the name, or NULL. */
static const char *conn_name(const char *p, const char *end, const char *stop, struct why_rec *r)
{
	const char *s = p, *e;
	if (end - p >= 3 && memcmp(p, "<<\"", 3) == 0) {
		s = p + 3;
		e = why_find(s, (size_t)(end - s), "\">>");
		if (!e)
			return NULL;
		p = e + 3;
	} else if (p < end && *p == '"') {
		s = p + 1;
		e = memchr(s, '"', (size_t)(end - s));
		if (!e)
			return NULL;
		p = e + 1;
	} else {
		e = stop ? why_find(s, (size_t)(end - s), stop) : end;
		if (!e)
			return NULL;
		p = e;
	}
	/* a quoted name is followed by its stop too, or the line is not this shape (cut short, say):
	 * the callers read past the stop */
	if (stop && !why_starts(p, (size_t)(end - p), stop))
		return NULL;
	const char *arrow = why_find(s, (size_t)(e - s), " -> ");
	if (!arrow)
		return NULL;
	r->addr.p = s;
	r->addr.n = (size_t)(arrow - s);
	return p;
}

/* The text after the first <a> in <s..end> and before the next <b>, into <out>. */
static bool quoted_after(const char *s, const char *end, const char *a, const char *b, struct why_text *out)
{
	const char *p = why_find(s, (size_t)(end - s), a);
	if (!p)
		return false;
	p += strlen(a);
	const char *e = why_find(p, (size_t)(end - p), b);
	if (!e)
		return false;
	out->p = p;
	out->n = (size_t)(e - p);
	return true;
}

static enum why_rec_kind closed(struct why_rec *r, enum evt_reason why, enum evt_party by, enum evt_confidence conf)
{
	return why_rec_decide(r, WHY_REC_CLOSE, why, by, conf);
}

/* Starts "<prefix><conn name><stop>..." with the name read into r->addr. */
static bool named(struct why_text m, const char *prefix, const char *stop, struct why_rec *r, const char **after)
{
	if (!why_starts(m.p, m.n, prefix))
		return false;
	const char *q = conn_name(m.p + strlen(prefix), m.p + m.n, stop, r);
	if (q && after)
		*after = q;
	return q != NULL;
}

/* The reason a Connect Reason Code stands for: v5 codes, or 3.1.1 return codes. */
static enum evt_reason connack_reason(const char *p, const char *end)
{
	unsigned v = 0;
	const char *q = p;
	while (q < end && *q >= '0' && *q <= '9' && v < 1000)
		v = v * 10 + (unsigned)(*q++ - '0');
	if (q == p || v > 255)
		return EVT_R_UNKNOWN;
	enum evt_reason why = v >= 0x80 ? evt_reason_from_v5((uint8_t)v) : evt_reason_from_v3_connack((uint8_t)v);
	return why == EVT_R_NONE ? EVT_R_UNKNOWN : why;
}

static enum why_rec_kind parse_msg(struct why_rec *r)
{
	struct why_text m = r->msg, t;
	const char *end = m.p + m.n, *q;
	/* opens */
	static const char for_id[] = " for client ID ", with_id[] = ", client id: ";
	if (named(m, "Accepted MQTT connection ", for_id, r, &q)) {
		r->id.p = q + sizeof for_id - 1;
		r->id.n = (size_t)(end - r->id.p);
		return r->kind = WHY_REC_OPEN;
	}
	if (why_starts(m.p, m.n, "accepting MQTT connection <")) {
		const char *o = why_find(m.p, m.n, " (");
		if (o && named((struct why_text){ o + 2, (size_t)(end - o - 2) }, "", with_id, r, &q)) {
			r->id.p = q + sizeof with_id - 1;
			r->id.n = end > r->id.p && end[-1] == ')' ? (size_t)(end - 1 - r->id.p) : (size_t)(end - r->id.p);
			return r->kind = WHY_REC_OPEN;
		}
	}
	/* closes the broker explains */
	if (named(m, "closing MQTT connection ", " (", r, &q)) {
		if (why_starts(q, (size_t)(end - q), " (keepalive timeout)"))
			return closed(r, EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER, EVT_CONF_STATED);
		if (why_starts(q, (size_t)(end - q), " (login timeout)"))
			return closed(r, EVT_R_CONNECT_TIMEOUT, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if (why_starts(m.p, m.n, "closing MQTT connection <") && (q = why_find(m.p, m.n, " ("))) {
		/* a process that ended normally: the client sent DISCONNECT (with a Will or not, the log does not say) */
		if (named((struct why_text){ q + 2, (size_t)(end - q - 2) }, "", ")", r, NULL))
			return closed(r, EVT_R_CLIENT_DISCONNECT, EVT_BY_CLIENT, EVT_CONF_INFERRED);
	}
	if (named(m, "MQTT connection ", " will terminate", r, &q) &&
	    why_starts(q, (size_t)(end - q), " will terminate because peer closed TCP connection"))
		return closed(r, EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT, EVT_CONF_STATED);
	if (named(m, "MQTT detected network error for ", ": ", r, NULL) ||
	    named(m, "MQTT detected network error on ", ": ", r, NULL)) {
		bool timeout = why_find(m.p, m.n, "timeout") || why_find(m.p, m.n, "etimedout");
		return closed(r, EVT_R_CLIENT_VANISHED, timeout ? EVT_BY_UNKNOWN : EVT_BY_CLIENT, EVT_CONF_STATED);
	}
	if (named(m, "MQTT disconnecting client ", " with ", r, &q)) {
		if (quoted_after(q, end, " with duplicate id '", "'", &t)) {
			r->id = t;
			return closed(r, EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER, EVT_CONF_STATED);
		}
		if (quoted_after(q, end, " with client ID '", "'", &t)) {
			r->id = t;
			enum evt_reason why = EVT_R_ADMIN_DISCONNECT;
			if (why_find(q, (size_t)(end - q), "credential expired"))
				why = EVT_R_CREDENTIALS_EXPIRED;
			else if (why_find(q, (size_t)(end - q), "decommissioned") ||
				 why_find(q, (size_t)(end - q), "reason: maintenance"))
				why = EVT_R_SERVER_SHUTDOWN;
			return closed(r, why, EVT_BY_BROKER, EVT_CONF_STATED);
		}
	}
	if (named(m, "MQTT closing connection ", ": ", r, NULL)) /* the management API or rabbitmqctl */
		return closed(r, EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER, EVT_CONF_STATED);
	/* 3.13+ writes the v5 code (decimal, for 3.1.1 clients too), 3.12 the 3.1.1 return code */
	static const char code_is[] = " with Connect Reason Code ", rc3_is[] = " with CONNACK return code ";
	if (named(m, "Rejected MQTT connection ", code_is, r, &q))
		return closed(r, connack_reason(q + sizeof code_is - 1, end), EVT_BY_BROKER, EVT_CONF_STATED);
	if (named(m, "Rejected MQTT connection ", rc3_is, r, &q))
		return closed(r, connack_reason(q + sizeof rc3_is - 1, end), EVT_BY_BROKER, EVT_CONF_STATED);
	/* lines without the connection's name: its pid's slot names it (3.13+, 4.3+) */
	if (why_starts(m.p, m.n, "MQTT packet size (") && why_find(m.p, m.n, " exceeds mqtt.max_packet_size_authenticated"))
		return closed(r, EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER, EVT_CONF_STATED);
	if (why_starts(m.p, m.n, "CONNECT packet size (") && why_find(m.p, m.n, "max_packet_size_unauthenticated"))
		return why_rec_decide(r, WHY_REC_NOTE, EVT_R_PACKET_TOO_LARGE, EVT_BY_BROKER, EVT_CONF_STATED);
	if (why_starts(m.p, m.n, "Terminating MQTT connection because consuming ")) /* "queue '...' ... is down." */
		return closed(r, EVT_R_SERVER_UNAVAILABLE, EVT_BY_BROKER, EVT_CONF_STATED);
	if (why_starts(m.p, m.n, "Terminating MQTT connection because consumer on ") && why_find(m.p, m.n, " timed out"))
		return closed(r, EVT_R_SLOW_CONSUMER, EVT_BY_BROKER, EVT_CONF_STATED); /* deliveries unacked past consumer_timeout */
	if (named(m, "MQTT connection ", " is closing due to ", r, &q)) {
		if (why_starts(q, (size_t)(end - q), " is closing due to an authentication failure"))
			return closed(r, EVT_R_AUTH_FAILED, EVT_BY_BROKER, EVT_CONF_STATED);
		return closed(r, EVT_R_NOT_AUTHORIZED, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if (why_starts(m.p, m.n, "MQTT cannot accept connection ")) {
		/* "... A -> B: client uses an invalid ID", ": incompatible protocol version", " due to an internal error ..." */
		const char *s = m.p + 30;
		bool due = why_find(s, (size_t)(end - s), " due to ") != NULL;
		if (conn_name(s, end, due ? " due to " : ": ", r)) {
			enum evt_reason why = why_find(m.p, m.n, "invalid ID")		? EVT_R_CLIENT_ID_REJECTED
					      : why_find(m.p, m.n, "protocol version") ? EVT_R_UNSUPPORTED_PROTOCOL_VERSION
					      : due					? EVT_R_SERVER_UNAVAILABLE
											: EVT_R_UNKNOWN;
			return closed(r, why, EVT_BY_BROKER, EVT_CONF_STATED);
		}
	}
	if (named(m, "MQTT protocol error on connection ", ": ", r, &q)) {
		/* 3.13+: after its QoS 2 / Topic Alias warning the close says only that the server chose to:
		 * the warning, a note, names the reason */
		bool server = why_starts(q, (size_t)(end - q), ": {disconnect,server_initiated}");
		return closed(r, server ? EVT_R_NONE : EVT_R_PROTOCOL_ERROR, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if (named(m, "MQTT detected a framing error on connection ", ": ", r, NULL) ||
	    named(m, "MQTT detected a packet error on connection ", ": ", r, NULL) ||
	    named(m, "Unparseable MQTT packet received from connection ", NULL, r, NULL) ||
	    (why_starts(m.p, m.n, "MQTT cannot parse a frame on connection '") &&
	     conn_name(m.p + 41, end, "'", r))) {
		bool big = why_contains_ci(m.p, m.n, "too_large") || why_contains_ci(m.p, m.n, "too large");
		return closed(r, big ? EVT_R_PACKET_TOO_LARGE : EVT_R_MALFORMED_PACKET, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if (named(m, "MQTT detected TLS upgrade error on ", ": ", r, NULL) ||
	    named(m, "MQTT detected TLS certificate verification error on ", ": ", r, NULL))
		return closed(r, EVT_R_TLS_HANDSHAKE_FAILED, EVT_BY_BROKER, EVT_CONF_STATED);
	/* notes: what the close of the same process will be about */
	if (why_starts(m.p, m.n, "MQTT login failed") || why_starts(m.p, m.n, "MQTT connection failed: access refused")) {
		/* "... authentication failed: R", "... no password provided"; "... virtual host access not
		 * allowed", "can only connect via localhost"; 3.12+: "access refused for user 'U':<why>" is the
		 * authentication (CONNACK 134), "... for user 'U' to vhost 'V'" the authorization */
		bool authz = why_find(m.p, m.n, "access not allowed") || why_find(m.p, m.n, "can only connect via localhost") ||
			     (why_find(m.p, m.n, "access refused") && (why_find(m.p, m.n, "' to vhost '") ||
								      !why_find(m.p, m.n, "access refused for user '")));
		enum evt_reason why = authz ? EVT_R_NOT_AUTHORIZED : EVT_R_AUTH_FAILED;
		if (why_find(m.p, m.n, "token has expired"))
			why = EVT_R_CREDENTIALS_EXPIRED;
		else if (why_starts(m.p, m.n, "MQTT login failed: client_id in the certificate"))
			why = EVT_R_CLIENT_ID_REJECTED;
		return why_rec_decide(r, WHY_REC_NOTE, why, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if ((q = why_find(m.p, m.n, ". Disconnecting MQTT client "))) {
		r->id.p = q + 28;
		r->id.n = (size_t)(end - r->id.p);
		/* an unknown alias is sent as 0x82 (protocol error), an invalid one as 0x94 */
		enum evt_reason why = why_starts(m.p, m.n, "Received a PUBLISH with QoS2") ? EVT_R_QOS_NOT_SUPPORTED
				      : why_starts(m.p, m.n, "Unknown Topic Alias")	    ? EVT_R_PROTOCOL_ERROR
										    : EVT_R_TOPIC_ALIAS_INVALID;
		return why_rec_decide(r, WHY_REC_NOTE, why, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if (why_starts(m.p, m.n, "RabbitMQ is asked to stop") || (m.n < 80 && why_find(m.p, m.n, " is asked to stop...")))
		return why_rec_decide(r, WHY_REC_SHUTDOWN, EVT_R_SERVER_SHUTDOWN, EVT_BY_BROKER, EVT_CONF_STATED);
	return r->kind = WHY_REC_UNKNOWN;
}

static enum why_rec_kind rmq_parse(void *state, const char *line, size_t n, struct why_rec *r)
{
	struct rmq_state *st = state;
	struct why_text pid;
	why_rec_clear(r);
	if (!split(line, n, r, &pid))
		return r->kind = WHY_REC_UNKNOWN;
	enum why_rec_kind k = parse_msg(r);
	struct rmq_conn *c = slot_of(st, pid);
	if (k == WHY_REC_UNKNOWN && why_text_is(pid, c->pid) && why_starts(r->msg.p, r->msg.n, "** Generic server <") &&
	    why_find(r->msg.p, r->msg.n, "> terminating")) {
		/* An open connection's process crashed. 3.10 ends an MQTT client this way when its internal
		 * AMQP connection is closed (rabbitmqctl close_all_connections, a vhost or user deleted):
		 * the broker ended it, the crash report does not say why. */
		r->addr.p = NULL;
		k = closed(r, EVT_R_UNKNOWN, EVT_BY_BROKER, EVT_CONF_INFERRED);
	}
	if (k == WHY_REC_OPEN && pid.n < sizeof c->pid) {
		why_copyn(c->pid, sizeof c->pid, pid.p, pid.n);
		why_copyn(c->addr, sizeof c->addr, r->addr.p, r->addr.n);
		why_copyn(c->id, sizeof c->id, r->id.p, r->id.n);
	} else if ((k == WHY_REC_CLOSE || k == WHY_REC_NOTE) && why_text_is(pid, c->pid)) {
		/* the connection's own process: its client, whatever the line names */
		if (!r->id.p) {
			r->id.p = c->id;
			r->id.n = strlen(c->id);
		}
		if (!r->addr.p) {
			r->addr.p = c->addr;
			r->addr.n = strlen(c->addr);
		}
		if (k == WHY_REC_CLOSE)
			c->pid[0] = 0; /* the views stay valid until the next line reuses the slot */
	}
	return k;
}

const struct why_format why_format_rabbitmq = {
	.name = "rabbitmq",
	.looks_like = rmq_looks_like,
	.state_size = sizeof(struct rmq_state),
	.says_auth_apart = true,
	.parse = rmq_parse,
};
