/* Why a session ended: the one disconnect event of each connection. The
 * order of evidence, strongest first: a decision wirewarden enforced; a
 * DISCONNECT either side sent (its reason code is stated on the wire); a
 * CONNACK refusal; then, when the broker closed without a word, inference
 * from what the session watch saw (a newer connection with the same client
 * id, the client's last violation, its silence against its keep-alive, a
 * client that stopped reading: its TCP window closed, or the proxy paused
 * for it); a client that closed without DISCONNECT vanished. When the wire
 * cannot tell, the answer is `unknown`, never a confident guess; when the
 * capture lost bytes of the connection, an inferred answer is a `guess`. */
#include "policy/engine_internal.h"

#include <stdio.h>
#include <string.h>

#define US 1000000LL

/* CONNACK code to reason. mosquitto, among others, answers a wrong password
 * with "not authorized" (5 / 0x87): when the client did give credentials,
 * that is an authentication failure we infer rather than read. */
enum evt_reason engine_connack_reason(const struct session *s, uint8_t code, bool v3_form, enum evt_confidence *conf)
{
	*conf = EVT_CONF_STATED;
	if (v3_form) {
		if (code == 5 && s->credentials) {
			*conf = EVT_CONF_INFERRED;
			return EVT_R_AUTH_FAILED;
		}
		enum evt_reason r = evt_reason_from_v3_connack(code);
		return r != EVT_R_NONE ? r : EVT_R_UNKNOWN;
	}
	if (code == 0x87 && s->credentials) {
		*conf = EVT_CONF_INFERRED;
		return EVT_R_AUTH_FAILED;
	}
	enum evt_reason r = evt_reason_from_v5(code);
	return r != EVT_R_NONE ? r : EVT_R_UNKNOWN;
}

/* A logon failure ack's reason text (amps.md "Logon, heartbeat, acks"). Some
 * clients spell auth failure "authentication failure": the "auth" prefix
 * decides. Anything else the server refused for is not guessed at. */
enum evt_reason engine_amps_refusal_reason(const char *text, enum evt_confidence *conf)
{
	*conf = EVT_CONF_STATED;
	if (!strncmp(text, "auth", 4))
		return EVT_R_AUTH_FAILED;
	if (!strcmp(text, "not entitled"))
		return EVT_R_NOT_AUTHORIZED;
	if (!strcmp(text, "name in use"))
		return EVT_R_NAME_IN_USE;
	*conf = EVT_CONF_UNKNOWN;
	return EVT_R_UNKNOWN;
}

/* The broker closed without a DISCONNECT: what the session watch suggests. */
static enum evt_reason infer_broker_close(struct engine *eng, const struct session *s, int64_t now_us,
					  enum evt_confidence *conf, struct evt *e)
{
	*conf = EVT_CONF_INFERRED;
	if (s->ide) {
		pthread_mutex_lock(&eng->lock);
		bool taken = s->ide->generation != s->id_generation && s->ide->last_connect_us <= now_us;
		char by[64];
		snprintf(by, sizeof by, "%s", s->ide->last_client);
		int64_t at = s->ide->last_connect_us;
		uint64_t at_frame = s->ide->last_connect_frame;
		pthread_mutex_unlock(&eng->lock);
		if (taken) {
			if (s->protocol == PROTO_ID_AMPS)
				evt_add_evidence(e, at_frame,
						 "closed by server after a logon from another connection with the same client "
						 "name (%s, %.3f s before)", by, (double)(now_us - at) / US);
			else
				evt_add_evidence(e, at_frame,
						 "a newer connection from %s sent CONNECT with this client id %.3f s before", by,
						 (double)(now_us - at) / US);
			return EVT_R_SESSION_TAKEN_OVER;
		}
	}
	if (s->last_violation_reason != EVT_R_NONE) {
		evt_add_evidence(e, s->violation_frame, "the client's last packet broke the protocol: %s",
				 s->last_violation);
		return s->last_violation_reason;
	}
	if (s->phase == EVT_PHASE_CONNECTED && s->keepalive_s > 0 && s->protocol == PROTO_ID_AMPS) {
		double silent = (double)(now_us - s->last_client_us) / US;
		double factor = engine_amps_factor(eng);
		/* AMPS closes after about 2 x the heartbeat interval of silence;
		 * its timer runs at a granularity we allow for below that. */
		if (silent >= factor * s->keepalive_s - 0.5) {
			evt_add_evidence(e, s->last_client_frame,
					 "server closed after %g x heartbeat of client silence (heartbeat %u s, silent %.1f s)",
					 factor, s->keepalive_s, silent);
			if (s->client_window_zero)
				evt_add_evidence(e, s->client_window_zero_frame, "the client's receive window had been closed for %.1f s",
						 (double)(now_us - s->client_window_zero_us) / US);
			return EVT_R_KEEPALIVE_TIMEOUT;
		}
	}
	if (s->phase == EVT_PHASE_CONNECTED && s->keepalive_s > 0 && s->protocol != PROTO_ID_AMPS) {
		double silent = (double)(now_us - s->last_client_us) / US;
		/* [MQTT-3.1.2-24]: the server closes after 1.5 x keep-alive of silence;
		 * allow for the server's timer granularity below that. */
		if (silent >= 1.5 * s->keepalive_s - 0.25) {
			evt_add_evidence(e, s->last_client_frame, "keep-alive %u s, client silent %.1f s since its last packet",
					 s->keepalive_s, silent);
			if (s->client_window_zero) /* a stuck client: not reading either */
				evt_add_evidence(e, s->client_window_zero_frame, "the client's receive window had been closed for %.1f s",
						 (double)(now_us - s->client_window_zero_us) / US);
			return EVT_R_KEEPALIVE_TIMEOUT;
		}
	}
	/* The client stopped reading: its receive window closed and stayed
	 * closed until the broker gave up (sniff), or the proxy had paused
	 * reading from the broker for this slow client. */
	if (s->client_window_zero) {
		evt_add_evidence(e, s->client_window_zero_frame,
				 "client window closed for %.1f s, %llu bytes unacknowledged, %u window probes",
				 (double)(now_us - s->client_window_zero_us) / US, (unsigned long long)s->queued_to_client,
				 s->client_window_probes);
		return EVT_R_SLOW_CONSUMER;
	}
	if (s->slow_paused) {
		evt_add_evidence(e, 0, "reading from the broker paused for this slow client for %.1f s, %llu bytes queued",
				 (double)(now_us - s->slow_since_us) / US, (unsigned long long)s->queued_to_client);
		return EVT_R_SLOW_CONSUMER;
	}
	if (s->level >= MQTT_LEVEL_5 && s->recv_max_broker < 65535 && s->inflight_c2s > s->recv_max_broker) {
		evt_add_evidence(e, s->last_client_frame, "%u QoS 1/2 PUBLISH unacknowledged, Receive Maximum %u", s->inflight_c2s,
				 s->recv_max_broker);
		return EVT_R_RECEIVE_MAXIMUM_EXCEEDED;
	}
	*conf = eng->cfg.passive ? EVT_CONF_UNKNOWN : EVT_CONF_STATED;
	return eng->cfg.passive ? EVT_R_UNKNOWN : EVT_R_UPSTREAM_CLOSED;
}

/* sniff: a client that stopped reading (zero receive window) and fell
 * silent past 1.5 x its keep-alive before it closed. */
static bool stuck_past_keepalive(const struct engine *eng, const struct session *s, int64_t now_us)
{
	double limit = s->protocol == PROTO_ID_AMPS ? engine_amps_factor(eng) * s->keepalive_s - 0.5
						    : 1.5 * s->keepalive_s - 0.25;
	return s->client_window_zero && s->phase == EVT_PHASE_CONNECTED && s->keepalive_s > 0 &&
	       (double)(now_us - s->last_client_us) / US >= limit;
}

void engine_session_close(struct engine *eng, struct session *s, enum eng_close how, int64_t now_us)
{
	if (s->ended)
		return;
	s->ended = true;
	struct evt e = engine_evt(s, EVT_DISCONNECT, now_us);
	enum evt_reason why = EVT_R_UNKNOWN;
	enum evt_party by = EVT_BY_UNKNOWN;
	enum evt_confidence conf = EVT_CONF_STATED;
	bool broker_closed = how == ENG_CLOSE_BROKER_FIN || how == ENG_CLOSE_BROKER_RST;
	bool client_closed = how == ENG_CLOSE_CLIENT_FIN || how == ENG_CLOSE_CLIENT_RST;

	if (s->decided != EVT_R_NONE) {
		why = s->decided;
		by = EVT_BY_PROXY;
		e.mode = s->decided_mode;
		e.policy = s->decided_policy;
		e.wire_reason = s->decided_wire;
		if (s->decided_detail)
			evt_add_evidence(&e, 0, "%s", s->decided_detail);
	} else if (s->client_disconnect_seen) {
		why = s->client_disconnect_code == 0x04 ? EVT_R_CLIENT_DISCONNECT_WITH_WILL : EVT_R_CLIENT_DISCONNECT;
		by = EVT_BY_CLIENT;
		e.wire_reason = s->client_disconnect_code;
		evt_add_evidence(&e, s->disconnect_frame, "client DISCONNECT (0x%02X)", s->client_disconnect_code);
		if (s->client_disconnect_code >= 0x80) { /* a client ending on an error */
			enum evt_reason r = evt_reason_from_v5(s->client_disconnect_code);
			why = r != EVT_R_NONE ? r : EVT_R_UNKNOWN;
		}
	} else if (s->broker_disconnect_seen) {
		by = EVT_BY_BROKER;
		e.wire_reason = s->broker_disconnect_code;
		why = evt_reason_from_v5(s->broker_disconnect_code);
		if (why == EVT_R_NONE)
			why = EVT_R_UPSTREAM_CLOSED; /* 0x00 from a server: closed, no reason given */
		evt_add_evidence(&e, s->disconnect_frame, "broker DISCONNECT %s (0x%02X)",
				 mqtt_reason_name(s->broker_disconnect_code, MQTT_T_DISCONNECT) ? mqtt_reason_name(
					 s->broker_disconnect_code, MQTT_T_DISCONNECT) : "?",
				 s->broker_disconnect_code);
	} else if (s->refused && s->protocol == PROTO_ID_AMPS) {
		by = EVT_BY_BROKER;
		why = engine_amps_refusal_reason(s->refusal ? s->refusal : "", &conf);
		evt_add_evidence(&e, s->connack_frame, "logon refused by the server with a failure ack: \"%s\"%s",
				 s->refusal ? s->refusal : "(no reason)", s->credentials ? " (credentials were given)" : "");
	} else if (s->refused) {
		by = EVT_BY_BROKER;
		e.wire_reason = s->connack_code;
		/* Without a CONNECT (a capture picked up mid-stream) the level is
		 * unknown: a code of 0x80 or more can only be MQTT 5's. */
		bool v3 = s->level ? s->level < MQTT_LEVEL_5 : s->connack_code < 0x80;
		why = engine_connack_reason(s, s->connack_code, v3, &conf);
		evt_add_evidence(&e, s->connack_frame, "CONNACK refused with %s%u%s", v3 ? "return code " : "reason ",
				 s->connack_code, s->credentials ? " (credentials were given)" : "");
	} else if (how == ENG_CLOSE_CAPTURE_END) {
		why = EVT_R_STILL_OPEN;
		by = EVT_BY_NONE;
	} else if (how == ENG_CLOSE_UPSTREAM_FAILED) {
		why = EVT_R_UPSTREAM_UNAVAILABLE;
		by = EVT_BY_PROXY;
	} else if (how == ENG_CLOSE_SHUTDOWN || how == ENG_CLOSE_PROXY) {
		why = EVT_R_SERVER_SHUTDOWN;
		by = EVT_BY_PROXY;
	} else if (client_closed && stuck_past_keepalive(eng, s, now_us)) {
		/* The broker's close was due [MQTT-3.1.2-24] but no FIN passes a
		 * zero window: what the wire shows last is the client giving up
		 * (mosquitto logs "exceeded timeout" for such a client). */
		why = EVT_R_KEEPALIVE_TIMEOUT;
		by = EVT_BY_BROKER;
		conf = EVT_CONF_INFERRED;
		evt_add_evidence(&e, s->last_client_frame, "keep-alive %u s, client silent %.1f s since its last packet",
				 s->keepalive_s, (double)(now_us - s->last_client_us) / US);
		evt_add_evidence(&e, s->client_window_zero_frame,
				 "its receive window closed %.1f s before: the broker's close could not reach it",
				 (double)(now_us - s->client_window_zero_us) / US);
		evt_add_evidence(&e, s->frame, "then the client %s", how == ENG_CLOSE_CLIENT_RST ? "reset" : "closed");
	} else if (client_closed) {
		why = EVT_R_CLIENT_VANISHED;
		by = EVT_BY_CLIENT;
		if (s->protocol == PROTO_ID_AMPS) /* AMPS has no goodbye command: closing is how a client leaves */
			evt_add_evidence(&e, s->frame, "client %s the connection",
					 how == ENG_CLOSE_CLIENT_RST ? "reset" : "closed");
		else
			evt_add_evidence(&e, s->frame, "client %s without DISCONNECT",
					 how == ENG_CLOSE_CLIENT_RST ? "reset" : "closed");
	} else if (broker_closed) {
		by = EVT_BY_BROKER;
		if (s->protocol == PROTO_ID_AMPS)
			evt_add_evidence(&e, s->frame, "server %s first",
					 how == ENG_CLOSE_BROKER_RST ? "reset the connection" : "closed (FIN)");
		else
			evt_add_evidence(&e, s->frame, "broker %s first, without DISCONNECT",
					 how == ENG_CLOSE_BROKER_RST ? "reset the connection" : "closed (FIN)");
		why = infer_broker_close(eng, s, now_us, &conf, &e);
	}
	/* sniff: the capture lost bytes of this connection. A reason the wire
	 * stated stands; one inferred (or a client that seemed to vanish) may
	 * hang on a packet among the lost bytes, so it becomes a guess. */
	if (s->lost_c2s + s->lost_s2c > 0) {
		bool from_wire = s->decided != EVT_R_NONE || s->client_disconnect_seen || s->broker_disconnect_seen ||
				 s->refused || how == ENG_CLOSE_CAPTURE_END;
		evt_add_evidence(&e, s->lost_frame, "the capture lost %llu bytes from the client and %llu from the broker",
				 (unsigned long long)s->lost_c2s, (unsigned long long)s->lost_s2c);
		if (!from_wire && (conf == EVT_CONF_STATED || conf == EVT_CONF_INFERRED))
			conf = EVT_CONF_GUESS;
	}
	e.reason = why;
	engine_amps_words(s, &e);
	e.closed_by = by;
	e.confidence = conf;
	e.duration_us = now_us - s->opened_us;
	e.bytes_c2s = (int64_t)s->bytes_c2s;
	e.bytes_s2c = (int64_t)s->bytes_s2c;

	pthread_mutex_lock(&eng->lock);
	if (s->ide) {
		if (s->id_generation && s->ide->live > 0)
			s->ide->live--;
		idt_release(&eng->ids, s->ide, now_us,
			    (int64_t)engine_pol(eng)->takeover.storm_window_ms * 1000 + 60 * US);
		s->ide = NULL;
	}
	if (s->counted_ip)
		engine_ip_release_locked(eng, s->client_ip);
	eng->stats.sessions_open--;
	eng->stats.disconnects[why]++;
	pthread_mutex_unlock(&eng->lock);
	engine_emit(eng, &e);
}
