/* The session engine (engine.h): session watch and the policies, one rule per
 * section below: access, take-over and storms, protocol, receive maximum,
 * limits (packet size, rates, connections, connect timeout), heartbeat, slow
 * client. Each rule observes always and acts only when its policy enforces.
 * The reason a session ended is settled in engine_verdict.c. */
#include "policy/engine_internal.h"

#include "common/hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US 1000000LL

const char *engine_policy_name(enum eng_policy p)
{
	static const char *const names[POL__COUNT] = {
		"heartbeat", "slow_client", "takeover", "protocol", "receive_maximum", "limits", "access",
	};
	return (unsigned)p < POL__COUNT ? names[p] : "?";
}

struct engine *engine_new(const struct engine_config *cfg, const struct evt_sinks *sinks)
{
	struct engine *eng = calloc(1, sizeof *eng);
	if (!eng)
		return NULL;
	eng->cfg = *cfg;
	if (sinks)
		eng->sinks = *sinks;
	if (idt_init(&eng->ids, cfg->max_ids) != 0 || pthread_mutex_init(&eng->lock, NULL) != 0) {
		idt_fini(&eng->ids);
		free(eng);
		return NULL;
	}
	struct pol_version *v = calloc(1, sizeof *v);
	if (!v) {
		engine_free(eng);
		return NULL;
	}
	v->pol = cfg->pol;
	eng->versions = v;
	atomic_init(&eng->pol, &v->pol);
	eng->ip_count_cap = 4096;
	eng->ip_counts = calloc(eng->ip_count_cap, sizeof *eng->ip_counts);
	if (!eng->ip_counts) {
		engine_free(eng);
		return NULL;
	}
	return eng;
}

void engine_free(struct engine *eng)
{
	if (!eng)
		return;
	idt_fini(&eng->ids);
	pthread_mutex_destroy(&eng->lock);
	free(eng->ip_counts);
	while (eng->versions) {
		struct pol_version *prev = eng->versions->prev;
		free(eng->versions);
		eng->versions = prev;
	}
	free(eng);
}

void engine_set_policies(struct engine *eng, const struct ww_policies *pol)
{
	struct pol_version *v = malloc(sizeof *v);
	if (!v)
		return; /* out of memory: the running policies stay */
	v->pol = *pol;
	pthread_mutex_lock(&eng->lock);
	v->prev = eng->versions;
	eng->versions = v;
	atomic_store_explicit(&eng->pol, &v->pol, memory_order_release);
	pthread_mutex_unlock(&eng->lock);
}

void engine_stats(struct engine *eng, struct engine_stats *out)
{
	pthread_mutex_lock(&eng->lock);
	*out = eng->stats;
	pthread_mutex_unlock(&eng->lock);
}

size_t session_client_id(const struct session *s, char *buf, size_t cap)
{
	if (cap == 0)
		return 0;
	size_t n = s->id_len < cap - 1 ? s->id_len : cap - 1;
	if (n)
		memcpy(buf, s->id, n);
	buf[n] = 0;
	return n;
}

/* Replaces *<dst> with a NUL-ended heap copy of <n> bytes at <p> (at most
 * <cap>); NULL for none or when memory is short. Returns the length kept. */
static size_t set_text(void *dst, const void *p, size_t n, size_t cap)
{
	char **d = dst;
	free(*d);
	*d = NULL;
	if (n > cap)
		n = cap;
	if (n == 0 || !(*d = malloc(n + 1)))
		return 0;
	memcpy(*d, p, n);
	(*d)[n] = 0;
	return n;
}

void engine_session_set_identity(struct session *s, const char *identity)
{
	set_text(&s->identity, identity, identity ? strlen(identity) : 0, SESSION_TEXT_MAX);
}

void engine_session_free(struct session *s)
{
	free(s->id);
	free(s->user);
	free(s->identity);
	free(s->refusal);
	free(s->decided_detail);
	s->id = s->user = NULL;
	s->identity = s->refusal = s->decided_detail = NULL;
	s->id_len = s->user_len = 0;
}

struct evt engine_evt(const struct session *s, enum evt_code code, int64_t now_us)
{
	struct evt e = evt_make(code, s->conn_id, now_us);
	if (s->connect_seen) {
		e.client_id = s->id;
		e.client_id_len = s->id_len;
	}
	if (s->credentials && s->user_len) {
		e.username = s->user;
		e.username_len = s->user_len;
	}
	if (s->identity)
		e.identity = s->identity;
	snprintf(e.client, sizeof e.client, "%s", s->client);
	snprintf(e.broker, sizeof e.broker, "%s", s->broker);
	e.protocol = s->protocol == PROTO_ID_AMPS ? "amps" : "mqtt";
	e.protocol_level = s->level;
	e.phase = s->phase;
	return e;
}

/* Unknown stays without AMPS words: AMPS logs one of several reasons for a
 * close the wire does not explain, and naming one would be a guess. */
void engine_amps_words(const struct session *s, struct evt *e)
{
	if (s->protocol == PROTO_ID_AMPS && e->reason != EVT_R_NONE && e->reason != EVT_R_UNKNOWN)
		e->amps_reason = evt_reason_amps(e->reason);
}

/* AMPS closes after about 2 x the heartbeat interval of silence (amps.md);
 * a policy block that never set the factor (sniff's) means that. */
double engine_amps_factor(const struct engine *eng)
{
	double f = engine_pol(eng)->heartbeat.amps_factor;
	return f > 1.0 ? f : 2.0;
}

double engine_silence_factor(const struct engine *eng, const struct session *s)
{
	return s->protocol == PROTO_ID_AMPS ? engine_amps_factor(eng) : engine_pol(eng)->heartbeat.factor;
}

/* Not under the engine lock: every worker's events went through it, and
 * the futex waits of two workers logging at once were 3% of the proxy's
 * time in the connection-setup profile. Each sink locks what it shares
 * (proxy/logfile.c, proxy/admin_ring.c); a session's events keep their
 * order because one thread emits them. */
void engine_emit(struct engine *eng, const struct evt *e)
{
	evt_emit(&eng->sinks, e);
}

void engine_decide(struct engine *eng, struct session *s, enum eng_policy pol, enum ww_mode mode, enum evt_reason why,
		   uint8_t v5, uint8_t v3, unsigned flags, int64_t now_us, struct eng_action *act, const char *fmt, ...)
{
	char detail[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);

	if (mode == WW_MODE_OFF || s->decided != EVT_R_NONE)
		return;
	if (mode == WW_MODE_OBSERVE || eng->cfg.passive) {
		if (s->observed_mask & (1u << pol))
			return;
		s->observed_mask |= (uint16_t)(1u << pol);
		struct evt e = engine_evt(s, EVT_WOULD_DISCONNECT, now_us);
		e.reason = why;
		e.wire_reason = v5;
		e.policy = engine_policy_name(pol);
		e.mode = EVT_MODE_OBSERVE;
		engine_amps_words(s, &e);
		evt_set_detail(&e, "%s", detail);
		pthread_mutex_lock(&eng->lock);
		eng->stats.observed[pol]++;
		pthread_mutex_unlock(&eng->lock);
		engine_emit(eng, &e);
		return;
	}
	s->decided = why;
	s->decided_mode = EVT_MODE_ENFORCE;
	s->decided_policy = engine_policy_name(pol);
	/* What the client is sent: a CONNACK code (its 3.1.1 form below v5), a v5
	 * DISCONNECT code, or nothing (a 3.1.1 client is just closed). */
	if (s->protocol == PROTO_ID_AMPS)
		s->decided_wire = -1; /* AMPS has no codes: a failure ack's reason text, or a close */
	else if (flags & ENG_REFUSE_CONNACK)
		s->decided_wire = s->level >= MQTT_LEVEL_5 ? v5 : (v3 ? v3 : mqtt_reason_to_v3_connack(v5));
	else if ((flags & ENG_DISCONNECT) && s->level >= MQTT_LEVEL_5)
		s->decided_wire = v5;
	else
		s->decided_wire = -1;
	set_text(&s->decided_detail, detail, strlen(detail), SESSION_TEXT_MAX);
	s->phase = EVT_PHASE_CLOSING;
	pthread_mutex_lock(&eng->lock);
	eng->stats.enforced[pol]++;
	pthread_mutex_unlock(&eng->lock);
	act->flags |= flags;
	act->v5_code = v5;
	act->v3_code = v3;
	act->reason = why;
	act->policy = s->decided_policy;
	snprintf(act->text, sizeof act->text, "wirewarden: %.*s", (int)(sizeof act->text - 13), detail);
	/* AMPS refuses a logon with a failure ack in its own words. */
	act->amps_reason = evt_reason_amps(why) ? evt_reason_amps(why) : evt_reason_name(why);
}

/* ---- connection limits (policy: limits) ---------------------------------- */

/* Open addressing over a fixed array; a slot whose count fell to zero is a
 * tombstone ("\1") that a new address may take, so probe runs stay intact. */
#define IP_TOMBSTONE '\1'
static struct ip_count *ip_slot(struct engine *eng, const char *ip, bool create)
{
	uint64_t h = hash_fnv1a(ip, strlen(ip));
	struct ip_count *reuse = NULL;
	for (uint32_t k = 0; k < eng->ip_count_cap; k++) {
		struct ip_count *c = &eng->ip_counts[(h + k) & (eng->ip_count_cap - 1)];
		if (strcmp(c->ip, ip) == 0)
			return c;
		if (c->ip[0] == IP_TOMBSTONE && !reuse)
			reuse = c;
		if (c->ip[0] == 0) {
			if (!create)
				return NULL;
			c = reuse ? reuse : c;
			snprintf(c->ip, sizeof c->ip, "%s", ip);
			c->n = 0;
			return c;
		}
	}
	if (create && reuse) {
		snprintf(reuse->ip, sizeof reuse->ip, "%s", ip);
		reuse->n = 0;
	}
	return create ? reuse : NULL;
}

void engine_ip_release_locked(struct engine *eng, const char *ip)
{
	struct ip_count *c = ip_slot(eng, ip, false);
	if (c && c->n > 0 && --c->n == 0) {
		c->ip[0] = IP_TOMBSTONE;
		c->ip[1] = 0;
	}
}

void engine_session_set_protocol(struct session *s, enum proto_id proto)
{
	s->protocol = proto;
}

void engine_session_open(struct engine *eng, struct session *s, uint64_t conn_id, const char *client,
			 const char *client_ip, const char *broker, int64_t now_us, struct eng_action *act)
{
	engine_session_open_proto(eng, s, PROTO_ID_MQTT, conn_id, client, client_ip, broker, now_us, act);
}

void engine_session_open_proto(struct engine *eng, struct session *s, enum proto_id proto, uint64_t conn_id,
			       const char *client, const char *client_ip, const char *broker, int64_t now_us,
			       struct eng_action *act)
{
	memset(s, 0, sizeof *s);
	memset(act, 0, sizeof *act);
	s->protocol = proto;
	s->conn_id = conn_id;
	snprintf(s->client, sizeof s->client, "%s", client);
	snprintf(s->client_ip, sizeof s->client_ip, "%s", client_ip);
	snprintf(s->broker, sizeof s->broker, "%s", broker);
	s->phase = EVT_PHASE_CONNECTING;
	s->opened_us = s->last_client_us = s->last_broker_us = now_us;
	s->recv_max_broker = s->recv_max_client = 65535;
	s->tokens_at_us = now_us;
	/* Rate buckets start full (one second of the allowed rate). They used
	 * to be filled at the first PUBLISH when packets_c2s <= 1, which never
	 * holds (the CONNECT came first): they started empty, and a client
	 * publishing right after its CONNACK was cut at its first message. */
	s->tokens_msgs = engine_pol(eng)->limits.msgs_per_s;
	s->tokens_bytes = engine_pol(eng)->limits.bytes_per_s;

	const struct ww_policies *pol = engine_pol(eng);
	pthread_mutex_lock(&eng->lock);
	eng->stats.connections++;
	eng->stats.sessions_open++;
	uint64_t open = eng->stats.sessions_open;
	struct ip_count *ic = ip_slot(eng, client_ip, true);
	uint32_t per_ip = 0;
	if (ic) {
		per_ip = ++ic->n;
		s->counted_ip = true;
	}
	pthread_mutex_unlock(&eng->lock);

	struct evt e = engine_evt(s, EVT_CONNECTION_OPENED, now_us);
	engine_emit(eng, &e);
	if ((pol->limits.max_connections && open > pol->limits.max_connections) ||
	    (pol->limits.max_per_ip && per_ip > pol->limits.max_per_ip))
		s->limit_refuse = true; /* refused at CONNECT, so the client hears why */
}

/* ---- CONNECT: access, take-over, storms ------------------------------------ */

static bool pattern_denied(const struct ww_patterns *p, const uint8_t *s, size_t n)
{
	if (p->n_allow == 0 && p->n_deny == 0)
		return false;
	return !ww_patterns_allow(p, (const char *)s, n);
}

static void on_connect(struct engine *eng, struct session *s, const struct proto_facts *f, int64_t now_us,
		       struct eng_action *act)
{
	const struct ww_policies *pol = engine_pol(eng);
	bool amps = s->protocol == PROTO_ID_AMPS;

	if (s->connect_seen) { /* [MQTT-3.1.0-2]; AMPS: "duplicate logon attempt" */
		engine_decide(eng, s, POL_PROTOCOL, pol->protocol.mode, EVT_R_PROTOCOL_ERROR_SECOND_CONNECT, 0x82, 0,
			      ENG_HOLD | ENG_DISCONNECT, now_us, act, amps ? "second logon on one connection"
									 : "second CONNECT on one connection");
		s->last_violation_reason = EVT_R_PROTOCOL_ERROR_SECOND_CONNECT;
		s->last_violation = amps ? "second logon" : "second CONNECT";
		s->violation_frame = s->frame;
		return;
	}
	s->connect_seen = true;
	s->connect_us = now_us;
	s->connect_frame = s->frame;
	s->level = f->level;
	/* AMPS starts heartbeating with a command of its own, after the logon. */
	s->keepalive_s = (uint16_t)(f->heartbeat_s < 65535 ? f->heartbeat_s : 65535);
	s->will = f->will;
	s->credentials = f->has_credentials;
	s->id_true_len = (uint32_t)f->identity.left;
	s->id_len = (uint16_t)set_text(&s->id, f->identity.p, f->identity.left, SESSION_ID_MAX);
	s->user_len = (uint16_t)set_text(&s->user, f->user.p, f->user.left, SESSION_USER_MAX);
	if (f->receive_max)
		s->recv_max_client = (uint16_t)(f->receive_max < 65535 ? f->receive_max : 65535);
	s->max_packet_client = f->max_packet;

	struct evt e = engine_evt(s, EVT_CONNECT, now_us);
	engine_emit(eng, &e);

	if (s->limit_refuse) {
		engine_decide(eng, s, POL_LIMITS, pol->limits.mode, EVT_R_CONNECTION_LIMIT, 0x97, 3,
			      ENG_HOLD | ENG_REFUSE_CONNACK, now_us, act, "connection limit reached");
		if (act->flags & ENG_REFUSE_CONNACK)
			return;
	}
	if (pattern_denied(&pol->access.client_id, s->id ? s->id : (const uint8_t *)"", s->id_len)) {
		engine_decide(eng, s, POL_ACCESS, pol->access.mode, EVT_R_NOT_AUTHORIZED, 0x85, 2,
			      ENG_HOLD | ENG_REFUSE_CONNACK, now_us, act, amps ? "client name not allowed" : "client id not allowed");
		if (act->flags & ENG_REFUSE_CONNACK)
			return;
	}
	if (f->has_user && pattern_denied(&pol->access.username, f->user.p, f->user.left)) {
		engine_decide(eng, s, POL_ACCESS, pol->access.mode, EVT_R_NOT_AUTHORIZED, 0x87, 5,
			      ENG_HOLD | ENG_REFUSE_CONNACK, now_us, act, "user name not allowed");
		if (act->flags & ENG_REFUSE_CONNACK)
			return;
	}
	/* A client without a certificate has the empty identity. */
	const char *identity = s->identity ? s->identity : "";
	if (pattern_denied(&pol->access.identity, (const uint8_t *)identity, strlen(identity))) {
		engine_decide(eng, s, POL_ACCESS, pol->access.mode, EVT_R_NOT_AUTHORIZED, 0x87, 5,
			      ENG_HOLD | ENG_REFUSE_CONNACK, now_us, act, "certificate identity not allowed");
		if (act->flags & ENG_REFUSE_CONNACK)
			return;
	}
	/* An empty id is assigned by the broker: nothing to take over. */
	if (s->id_len == 0)
		return;

	int64_t window = (int64_t)pol->takeover.storm_window_ms * 1000;
	pthread_mutex_lock(&eng->lock);
	struct id_entry *ide = idt_get(&eng->ids, s->id, s->id_len, true);
	bool cooling = ide && ide->cooldown_until_us > now_us && strcmp(ide->cooldown_ip, s->client_ip) == 0;
	bool takeover = ide && ide->live > 0;
	char prev[64] = "";
	unsigned count = 0, sources = 0;
	if (ide) {
		snprintf(prev, sizeof prev, "%s", ide->last_client);
		if (takeover && !cooling)
			count = idt_takeover(ide, s->client_ip, now_us, window, &sources);
		ide->refs++;
	}
	s->ide = ide;
	pthread_mutex_unlock(&eng->lock);
	if (!ide)
		return;

	if (cooling) {
		engine_decide(eng, s, POL_TAKEOVER, pol->takeover.mode, EVT_R_TAKEOVER_STORM_REFUSED, 0x9F, 2,
			      ENG_HOLD | ENG_REFUSE_CONNACK, now_us, act,
			      "take-over storm: %s refused during the cooldown", s->client_ip);
		if (act->flags & ENG_REFUSE_CONNACK)
			return;
	}
	bool storm = takeover && pol->takeover.storm_count >= 2 && count >= pol->takeover.storm_count && sources >= 2;
	if (storm) {
		pthread_mutex_lock(&eng->lock);
		/* One report per window, not one per refused CONNECT. */
		bool report = !ide->storm_reported || ide->storm_reported_us + window <= now_us;
		if (report) {
			ide->storm_reported = true;
			ide->storm_reported_us = now_us;
		}
		/* The storm is dealt with: counting starts afresh, so after the
		 * cooldown the twins get storm_count more take-overs, not one. */
		idt_forget_takeovers(ide);
		if (pol->takeover.mode == WW_MODE_ENFORCE && !eng->cfg.passive) {
			ide->cooldown_until_us = now_us + (int64_t)pol->takeover.cooldown_ms * 1000;
			snprintf(ide->cooldown_ip, sizeof ide->cooldown_ip, "%s", s->client_ip);
		}
		pthread_mutex_unlock(&eng->lock);
		if (report) {
			struct evt se = engine_evt(s, EVT_TAKEOVER_STORM, now_us);
			se.count = count;
			se.policy = "takeover";
			se.mode = pol->takeover.mode == WW_MODE_ENFORCE && !eng->cfg.passive ? EVT_MODE_ENFORCE
											      : EVT_MODE_OBSERVE;
			evt_set_detail(&se, "%u take-overs in %llu s from %u sources, newest %s, previous %s", count,
				       (unsigned long long)(pol->takeover.storm_window_ms / 1000), sources, s->client_ip, prev);
			engine_emit(eng, &se);
		}
		engine_decide(eng, s, POL_TAKEOVER, pol->takeover.mode, EVT_R_TAKEOVER_STORM_REFUSED, 0x9F, 2,
			      ENG_HOLD | ENG_REFUSE_CONNACK, now_us, act,
			      "take-over storm: %u take-overs of this client id from %u sources", count, sources);
		if (act->flags & ENG_REFUSE_CONNACK)
			return;
	}
	pthread_mutex_lock(&eng->lock);
	ide->generation++;
	ide->live++;
	ide->last_connect_us = now_us;
	ide->last_conn_id = s->conn_id;
	ide->last_connect_frame = s->frame;
	snprintf(ide->last_client, sizeof ide->last_client, "%s", s->client);
	s->id_generation = ide->generation;
	pthread_mutex_unlock(&eng->lock);
	if (takeover) {
		struct evt te = engine_evt(s, EVT_SESSION_TAKEN_OVER, now_us);
		evt_set_detail(&te, "new connection %s takes the id from %s", s->client, prev);
		te.count = count;
		engine_emit(eng, &te);
	}
}

/* ---- CONNACK: the broker's answer ------------------------------------------ */

static void on_connack(struct engine *eng, struct session *s, const struct proto_facts *f, int64_t now_us)
{
	bool amps = s->protocol == PROTO_ID_AMPS;
	s->connack_seen = true;
	s->connack_code = f->reason;
	s->connack_frame = s->frame;
	if (f->refused) {
		s->refused = true;
		s->phase = EVT_PHASE_CLOSING;
		/* A refused logon took nothing over: the id stays with the session
		 * that had it, so that session's later end is not blamed on this
		 * one (AMPS refuses "name in use" for another user; a broker
		 * refusing bad credentials keeps the old session too). */
		if (s->ide && s->id_generation) {
			pthread_mutex_lock(&eng->lock);
			if (s->ide->generation == s->id_generation)
				s->ide->generation--;
			if (s->ide->live > 0)
				s->ide->live--;
			s->id_generation = 0;
			pthread_mutex_unlock(&eng->lock);
		}
		enum evt_confidence conf;
		struct evt e = engine_evt(s, EVT_CONNECT_REFUSED, now_us);
		if (amps) {
			set_text(&s->refusal, f->text.p, f->text.left, SESSION_TEXT_MAX);
			e.reason = engine_amps_refusal_reason(s->refusal ? s->refusal : "", &conf);
			evt_set_detail(&e, "logon failure ack: %s", s->refusal ? s->refusal : "(no reason)");
			engine_amps_words(s, &e);
		} else {
			e.reason = engine_connack_reason(s, f->reason, f->v3_form, &conf);
			e.wire_reason = f->reason;
		}
		e.closed_by = EVT_BY_BROKER;
		engine_emit(eng, &e);
		return;
	}
	s->phase = EVT_PHASE_CONNECTED;
	s->connected_us = now_us;
	if (f->receive_max)
		s->recv_max_broker = (uint16_t)(f->receive_max < 65535 ? f->receive_max : 65535);
	if (f->heartbeat_s)
		s->keepalive_s = (uint16_t)(f->heartbeat_s < 65535 ? f->heartbeat_s : 65535);
	s->max_packet_broker = f->max_packet;
	if (s->id_len == 0 && f->identity.left) {
		s->id_len = (uint16_t)set_text(&s->id, f->identity.p, f->identity.left, SESSION_ID_MAX);
	}
	struct evt e = engine_evt(s, EVT_CONNACK, now_us);
	if (!amps)
		e.wire_reason = 0;
	engine_emit(eng, &e);
}

/* AMPS: the client starts (or changes) heartbeating; the server closes after
 * about 2 x that interval of silence. A client heartbeating without our having
 * seen the logon ack (no ack asked for) is logged on. */
static void on_heartbeat_start(struct session *s, const struct proto_facts *f, int64_t now_us)
{
	s->keepalive_s = (uint16_t)(f->heartbeat_s < 65535 ? f->heartbeat_s : 65535);
	if (s->phase == EVT_PHASE_CONNECTING && s->connect_seen && !s->refused) {
		s->phase = EVT_PHASE_CONNECTED;
		s->connected_us = now_us;
	}
}

/* ---- PUBLISH flow: receive maximum and rates ------------------------------ */

static void refill(struct session *s, const struct ww_policies *pol, int64_t now_us)
{
	double dt = (double)(now_us - s->tokens_at_us) / US;
	if (dt <= 0)
		return;
	s->tokens_at_us = now_us;
	/* Buckets hold one second of the allowed rate. */
	if (pol->limits.msgs_per_s > 0) {
		s->tokens_msgs += dt * pol->limits.msgs_per_s;
		if (s->tokens_msgs > pol->limits.msgs_per_s)
			s->tokens_msgs = pol->limits.msgs_per_s;
	}
	if (pol->limits.bytes_per_s > 0) {
		s->tokens_bytes += dt * pol->limits.bytes_per_s;
		if (s->tokens_bytes > pol->limits.bytes_per_s)
			s->tokens_bytes = pol->limits.bytes_per_s;
	}
}

static void on_client_publish(struct engine *eng, struct session *s, const struct proto_facts *f, uint32_t wire_len,
			      int64_t now_us, struct eng_action *act)
{
	const struct ww_policies *pol = engine_pol(eng);
	if (f->qos > 0 && !f->dup) {
		s->inflight_c2s++;
		/* Receive Maximum is an MQTT 5 promise [MQTT-3.3.4-9]. */
		if (s->level >= MQTT_LEVEL_5 && s->inflight_c2s > s->recv_max_broker) {
			struct evt e = engine_evt(s, EVT_RECEIVE_MAXIMUM_EXCEEDED, now_us);
			e.count = s->inflight_c2s;
			evt_set_detail(&e, "%u in flight, broker's Receive Maximum %u", s->inflight_c2s, s->recv_max_broker);
			engine_emit(eng, &e);
			s->last_violation_reason = EVT_R_RECEIVE_MAXIMUM_EXCEEDED;
			s->last_violation = "Receive Maximum exceeded";
			s->violation_frame = s->frame;
			engine_decide(eng, s, POL_RECEIVE_MAX, pol->receive_maximum.mode, EVT_R_RECEIVE_MAXIMUM_EXCEEDED, 0x93,
				      0, ENG_HOLD | ENG_DISCONNECT, now_us, act, "%u unacknowledged QoS 1/2 PUBLISH, Receive Maximum %u",
				      s->inflight_c2s, s->recv_max_broker);
			if (act->flags & ENG_DISCONNECT)
				return;
		}
	}
	if (pol->limits.msgs_per_s > 0 || pol->limits.bytes_per_s > 0) {
		refill(s, pol, now_us);
		bool over = false;
		if (pol->limits.msgs_per_s > 0 && (s->tokens_msgs -= 1) < 0)
			over = true;
		if (pol->limits.bytes_per_s > 0 && (s->tokens_bytes -= wire_len) < 0)
			over = true;
		if (over)
			engine_decide(eng, s, POL_LIMITS, pol->limits.mode, EVT_R_RATE_LIMITED, 0x96, 0,
				      ENG_HOLD | ENG_DISCONNECT, now_us, act, "over %.0f msgs/s or %.0f bytes/s",
				      pol->limits.msgs_per_s, pol->limits.bytes_per_s);
	}
}

static void ack_one(uint32_t *inflight)
{
	if (*inflight > 0)
		(*inflight)--;
}

void engine_on_packet(struct engine *eng, struct session *s, enum proto_dir dir, const struct mqtt_packet *pkt,
		      uint32_t wire_len, int64_t now_us, struct eng_action *act)
{
	struct proto_facts f;
	mqtt_packet_facts(pkt, &f);
	engine_on_facts(eng, s, dir, &f, wire_len, now_us, act);
}

void engine_on_facts(struct engine *eng, struct session *s, enum proto_dir dir, const struct proto_facts *f,
		     uint32_t wire_len, int64_t now_us, struct eng_action *act)
{
	memset(act, 0, sizeof *act);
	bool amps = s->protocol == PROTO_ID_AMPS;
	if (dir == PROTO_C2S) {
		s->last_client_us = now_us;
		s->bytes_c2s += wire_len;
		s->packets_c2s++;
		s->last_client_frame = s->frame;
		/* An AMPS no-op (length 0) is traffic, not a command. */
		if (f->kind == FACT_NOOP)
			return;
		if (!s->connect_seen && f->kind != FACT_LOGON && !s->midstream) {
			s->last_violation_reason = EVT_R_FIRST_PACKET_NOT_CONNECT;
			s->last_violation = amps ? "first command not logon" : "first packet not CONNECT";
			s->violation_frame = s->frame;
			engine_decide(eng, s, POL_PROTOCOL, engine_pol(eng)->protocol.mode, EVT_R_FIRST_PACKET_NOT_CONNECT, 0x82, 0,
				      ENG_HOLD | ENG_CLOSE, now_us, act, amps ? "first command is %s, not logon"
									     : "first packet is %s, not CONNECT",
				      f->type_name ? f->type_name : "?");
			return;
		}
		switch (f->kind) {
		case FACT_LOGON: on_connect(eng, s, f, now_us, act); break;
		case FACT_PUBLISH: on_client_publish(eng, s, f, wire_len, now_us, act); break;
		case FACT_PUB_ACK: ack_one(&s->inflight_s2c); break;
		case FACT_HEARTBEAT:
			if (f->heartbeat_s)
				on_heartbeat_start(s, f, now_us);
			break;
		case FACT_DISCONNECT:
			s->disconnect_frame = s->frame;
			s->client_disconnect_seen = true;
			s->client_disconnect_code = f->reason;
			s->phase = EVT_PHASE_CLOSING;
			break;
		default: break;
		}
		return;
	}
	s->last_broker_us = now_us;
	s->bytes_s2c += wire_len;
	s->packets_s2c++;
	switch (f->kind) {
	case FACT_LOGON_ACK: on_connack(eng, s, f, now_us); break;
	case FACT_PUBLISH:
		if (f->qos > 0 && !f->dup)
			s->inflight_s2c++;
		break;
	case FACT_PUB_ACK: ack_one(&s->inflight_c2s); break;
	case FACT_DISCONNECT:
		s->disconnect_frame = s->frame;
		s->broker_disconnect_seen = true;
		s->broker_disconnect_code = f->reason;
		s->phase = EVT_PHASE_CLOSING;
		break;
	default: break;
	}
}

void engine_on_bad_frame(struct engine *eng, struct session *s, enum proto_dir dir, const struct proto_diag *d,
			 uint8_t type, uint64_t frame_len, int64_t now_us, struct eng_action *act)
{
	memset(act, 0, sizeof *act);
	const struct ww_policies *pol = engine_pol(eng);
	bool amps = s->protocol == PROTO_ID_AMPS;
	bool too_large = d->cls == PROTO_E_TOO_LARGE;
	bool not_proto = d->cls == PROTO_E_NOT_PROTO;
	struct evt e = engine_evt(s, too_large ? EVT_PACKET_TOO_LARGE
				  : not_proto ? EVT_UNRECOGNIZED_PROTOCOL
				  : d->cls == PROTO_E_MALFORMED ? EVT_MALFORMED_PACKET : EVT_PROTOCOL_VIOLATION, now_us);
	if (!amps)
		e.wire_reason = d->reason;
	if (too_large)
		e.count = (int64_t)frame_len;
	/* An AMPS unknown command is named: the operator greps for it. */
	int vlen = d->value.p && d->value.left ? (int)(d->value.left < 64 ? d->value.left : 64) : 0;
	evt_set_detail(&e, "%s %s: %s%s%s at offset %u%s%.*s%s", dir == PROTO_C2S ? "client" : "broker",
		       amps ? "frame" : mqtt_type_name(type), d->name, d->field ? " in " : "", d->field ? d->field : "",
		       d->offset, vlen ? " (\"" : "", vlen, vlen ? (const char *)d->value.p : "", vlen ? "\")" : "");
	engine_emit(eng, &e);
	if (dir != PROTO_C2S)
		return; /* the broker's bytes are the broker's business: we report them */
	s->last_client_us = now_us;
	enum evt_reason why = too_large ? EVT_R_PACKET_TOO_LARGE
			      : amps && d->code == AMPS_E_UNKNOWN_COMMAND ? EVT_R_UNKNOWN_COMMAND
			      : d->cls == PROTO_E_MALFORMED ? EVT_R_MALFORMED_PACKET
			      : d->cls == PROTO_E_VERSION ? EVT_R_UNSUPPORTED_PROTOCOL_VERSION
							   : EVT_R_PROTOCOL_ERROR;
	s->last_violation_reason = why;
	s->last_violation = d->name;
	s->violation_frame = s->frame;
	/* A bad CONNECT is refused with a CONNACK; later packets get a DISCONNECT. */
	unsigned how = (type == MQTT_T_CONNECT && !s->connect_seen) ? ENG_REFUSE_CONNACK : ENG_DISCONNECT;
	uint8_t v3 = d->cls == PROTO_E_VERSION ? 1 : d->reason == 0x85 ? 2 : 0;
	if (how == ENG_REFUSE_CONNACK && d->cls != PROTO_E_VERSION && d->reason != 0x85)
		how = ENG_CLOSE; /* 3.1.1 has no CONNACK code for a malformed CONNECT: close */
	if (amps)
		how = ENG_CLOSE; /* AMPS closes on an unknown or malformed command, without a word */
	engine_decide(eng, s, too_large ? POL_LIMITS : POL_PROTOCOL, too_large ? pol->limits.mode : pol->protocol.mode, why,
		      d->reason, v3, ENG_HOLD | how, now_us, act, "%s%s%s%s%.*s%s", d->name, d->field ? " in " : "",
		      d->field ? d->field : "", vlen ? " \"" : "", vlen, vlen ? (const char *)d->value.p : "", vlen ? "\"" : "");
}

/* ---- slow client ------------------------------------------------------------ */

void engine_on_queue(struct engine *eng, struct session *s, uint64_t queued, int64_t now_us, struct eng_action *act)
{
	memset(act, 0, sizeof *act);
	const struct ww_policies *pol = engine_pol(eng);
	s->queued_to_client = queued;
	if (pol->slow_client.mode == WW_MODE_OFF || pol->slow_client.offline_bytes == 0)
		return;
	bool enforce = pol->slow_client.mode == WW_MODE_ENFORCE && !eng->cfg.passive;
	if (queued > pol->slow_client.offline_bytes && !s->slow_since_us) {
		s->slow_since_us = now_us;
		struct evt e = engine_evt(s, EVT_SLOW_CONSUMPTION_DETECTED, now_us);
		e.count = (int64_t)queued;
		e.policy = "slow_client";
		e.mode = enforce ? EVT_MODE_ENFORCE : EVT_MODE_OBSERVE;
		engine_emit(eng, &e);
		if (enforce) {
			act->flags |= ENG_PAUSE_UPSTREAM;
			s->slow_paused = true;
		}
	} else if (s->slow_since_us && queued <= pol->slow_client.offline_bytes / 2) {
		struct evt e = engine_evt(s, EVT_SLOW_CONSUMPTION_CLEARED, now_us);
		e.count = (int64_t)queued;
		e.duration_us = now_us - s->slow_since_us;
		e.policy = "slow_client";
		engine_emit(eng, &e);
		s->slow_since_us = 0;
		if (s->slow_paused) {
			act->flags |= ENG_RESUME_UPSTREAM;
			s->slow_paused = false;
		}
	}
	/* Cut after the grace: a client still slow (over offline_bytes and not
	 * caught up to half of it) or one whose queue stays over disconnect_bytes.
	 * Pausing the broker side keeps the queue near offline_bytes, so the first
	 * case is the one that ends a slow client in enforce mode, and observe
	 * mode judges by the same rule: its would_disconnect is what enforce
	 * would have done, and the proxy need not buffer up to disconnect_bytes
	 * (hiding the backpressure from the broker) to say so. */
	uint64_t cut = pol->slow_client.disconnect_bytes;
	bool over = s->slow_since_us != 0 || (cut && queued > cut);
	if (over) {
		if (!s->over_cut_since_us)
			s->over_cut_since_us = s->slow_since_us ? s->slow_since_us : now_us;
		double behind = (double)(now_us - s->over_cut_since_us) / US;
		if (now_us - s->over_cut_since_us >= (int64_t)pol->slow_client.grace_ms * 1000)
			engine_decide(eng, s, POL_SLOW, pol->slow_client.mode, EVT_R_SLOW_CONSUMER, 0x97, 0,
				      ENG_CUT_QUEUE | ENG_DISCONNECT, now_us, act,
				      "%llu bytes queued toward the client, behind for %.1f s (offline at %llu, limit %llu)",
				      (unsigned long long)queued, behind,
				      (unsigned long long)pol->slow_client.offline_bytes, (unsigned long long)cut);
	} else {
		s->over_cut_since_us = 0;
	}
}

/* ---- timers: connect timeout, heartbeat ----------------------------------------- */

void engine_tick(struct engine *eng, struct session *s, int64_t now_us, struct eng_action *act)
{
	memset(act, 0, sizeof *act);
	const struct ww_policies *pol = engine_pol(eng);
	if (s->decided != EVT_R_NONE || s->ended)
		return;
	int64_t ct = (int64_t)pol->limits.connect_timeout_ms * 1000;
	if (!s->connect_seen && ct > 0 && now_us - s->opened_us >= ct) {
		bool amps = s->protocol == PROTO_ID_AMPS;
		/* Always enforced (a proxy cannot hold sockets open for nothing),
		 * but still counted under limits. */
		engine_decide(eng, s, POL_LIMITS, eng->cfg.passive ? WW_MODE_OBSERVE : WW_MODE_ENFORCE,
			      EVT_R_CONNECT_TIMEOUT, 0x8D, 0, ENG_CLOSE, now_us, act, "no %s within %.1f s",
			      amps ? "logon" : "CONNECT", (double)ct / US);
		return;
	}
	double factor = engine_silence_factor(eng, s);
	if (s->phase == EVT_PHASE_CONNECTED && s->keepalive_s > 0 && factor > 1.0) {
		double limit = factor * s->keepalive_s * US;
		double silent = (double)(now_us - s->last_client_us);
		if (silent > limit) {
			struct evt e = engine_evt(s, EVT_HEARTBEAT_MISSED, now_us);
			e.duration_us = (int64_t)silent;
			e.policy = "heartbeat";
			if (!(s->observed_mask & (1u << POL_HEARTBEAT)))
				engine_emit(eng, &e);
			engine_decide(eng, s, POL_HEARTBEAT, pol->heartbeat.mode, EVT_R_KEEPALIVE_TIMEOUT, 0x8D, 0,
				      ENG_DISCONNECT, now_us, act, "%s %u s, client silent %.1f s",
				      s->protocol == PROTO_ID_AMPS ? "heartbeat" : "keep-alive", s->keepalive_s, silent / US);
		}
	}
	if (s->over_cut_since_us || s->slow_since_us)
		engine_on_queue(eng, s, s->queued_to_client, now_us, act);
}

void engine_request_close(struct engine *eng, struct session *s, enum evt_reason why, const char *detail,
			  int64_t now_us, struct eng_action *act)
{
	memset(act, 0, sizeof *act);
	if (s->decided != EVT_R_NONE || s->ended)
		return;
	int code = evt_reason_wire_code(why);
	s->decided = why;
	s->decided_mode = EVT_MODE_ENFORCE;
	s->decided_policy = NULL;
	s->decided_wire = s->connect_seen && s->level >= MQTT_LEVEL_5 ? (code > 0 ? code : 0x98) : -1;
	set_text(&s->decided_detail, detail, detail ? strlen(detail) : 0, SESSION_TEXT_MAX);
	s->phase = EVT_PHASE_CLOSING;
	act->flags = s->connect_seen ? ENG_DISCONNECT : ENG_CLOSE;
	act->v5_code = code > 0 ? (uint8_t)code : 0x98;
	act->reason = why;
	act->amps_reason = evt_reason_amps(why) ? evt_reason_amps(why) : evt_reason_name(why);
	snprintf(act->text, sizeof act->text, "wirewarden: %s", detail ? detail : evt_reason_name(why));
	(void)now_us;
	(void)eng;
}
