/* Private to policy/: the engine's state and the helpers its files share. */
#ifndef WW_POLICY_ENGINE_INTERNAL_H
#define WW_POLICY_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "policy/engine.h"
#include "policy/idtable.h"
#include "sink/sink.h"

/* One set of policies: a reload adds one and never changes or frees an
 * older one while the engine lives, since a worker may still be reading it. */
struct pol_version {
	struct pol_version *prev;
	struct ww_policies pol;
};

struct engine {
	struct engine_config cfg;                  /* cfg.pol: as created; policies come from <pol> */
	_Atomic(const struct ww_policies *) pol;   /* the newest set (engine_pol()) */
	struct pol_version *versions;              /* every set, newest first (under <lock>) */
	struct evt_sinks sinks;
	pthread_mutex_t lock;     /* the id table, per-address counts, stats */
	struct id_table ids;
	struct engine_stats stats;
	uint32_t ip_count_cap;
	struct ip_count { char ip[48]; uint32_t n; } *ip_counts;
};

/* The policies in force. Read once per call and used throughout it, so a
 * reload (engine_set_policies) never shows a call half old, half new. */
static inline const struct ww_policies *engine_pol(const struct engine *eng)
{
	return atomic_load_explicit(&eng->pol, memory_order_acquire);
}

/* An event about <s>, with the session's common fields filled. */
struct evt engine_evt(const struct session *s, enum evt_code code, int64_t now_us);
/* Emits <e> to every sink (not under the engine lock: see engine.h). */
void engine_emit(struct engine *eng, const struct evt *e);
/* Decides, for policy <pol> in <mode>, to end <s> for <why> with wire code
 * <v5>: in enforce mode records the decision and sets <flags> in <act>; in
 * observe mode emits would_disconnect once per session and policy. */
void engine_decide(struct engine *eng, struct session *s, enum eng_policy pol, enum ww_mode mode, enum evt_reason why,
		   uint8_t v5, uint8_t v3, unsigned flags, int64_t now_us, struct eng_action *act, const char *fmt, ...)
	__attribute__((format(printf, 11, 12)));
const char *engine_policy_name(enum eng_policy p);
/* One connection fewer from <ip>; the caller holds the engine lock. */
void engine_ip_release_locked(struct engine *eng, const char *ip);
/* The reason a CONNACK refusal code means for this session (engine_verdict.c). */
enum evt_reason engine_connack_reason(const struct session *s, uint8_t code, bool v3_form, enum evt_confidence *conf);

/* AMPS: fills e->amps_reason from e->reason for an AMPS session. */
void engine_amps_words(const struct session *s, struct evt *e);
/* The reason a logon failure ack's text means ("auth failure" -> auth_failed,
 * "not entitled" -> not_authorized, "name in use" -> name_in_use). */
enum evt_reason engine_amps_refusal_reason(const char *text, enum evt_confidence *conf);
/* The silence after which the server closes, in keep-alive/heartbeat
 * intervals: the heartbeat policy's factor (MQTT) or amps_factor (AMPS). */
double engine_silence_factor(const struct engine *eng, const struct session *s);
double engine_amps_factor(const struct engine *eng);

#endif
