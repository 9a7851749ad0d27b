/* The event catalog's types and lookups. An event is a fact about a client or
 * a connection, drawn from policy/events.def; a disconnect carries a reason
 * from policy/reasons.def and takes that reason's W2nnn id. The engine fills a
 * struct evt and hands it to the sinks (sink/sink.h), which do all formatting:
 * nothing here formats text, allocates, or performs I/O, and every table is
 * const. The rendered catalog is doc/events.md. */
#ifndef WW_POLICY_EVT_H
#define WW_POLICY_EVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum evt_code {
#define X(c, id, name, sev, tmpl, fields) EVT_##c,
#include "policy/events.def"
#undef X
	EVT__COUNT
};

/* EVT_R_NONE: no reason set (an event that is not about an end). */
enum evt_reason {
	EVT_R_NONE = 0,
#define X(c, name, id, v5, closer, amps, meaning) EVT_R_##c,
#include "policy/reasons.def"
#undef X
	EVT_R__COUNT
};

enum evt_severity { EVT_SEV_DEBUG, EVT_SEV_INFO, EVT_SEV_NOTICE, EVT_SEV_WARNING, EVT_SEV_ERROR };

/* Who acted: JSON "client", "broker", "proxy", "unknown"; NONE = omit. */
enum evt_party { EVT_BY_NONE, EVT_BY_CLIENT, EVT_BY_BROKER, EVT_BY_PROXY, EVT_BY_UNKNOWN };

/* Where in its life the connection was: before the CONNACK, after it, or
 * after a DISCONNECT was sent but before the socket closed. NONE = omit. */
enum evt_phase { EVT_PHASE_NONE, EVT_PHASE_CONNECTING, EVT_PHASE_CONNECTED, EVT_PHASE_CLOSING };

/* How the policy that raised the event acts: observe (shadow mode: events
 * only) or enforce. Shadow mode changes this field, never which events fire. */
enum evt_mode { EVT_MODE_NONE, EVT_MODE_OBSERVE, EVT_MODE_ENFORCE };

/* How sure a verdict is: STATED (the wire says it: a reason code), INFERRED
 * (from timing and direction), GUESS (a gap or a pickup mid-stream weakens it),
 * UNKNOWN. NONE = omit. */
enum evt_confidence { EVT_CONF_NONE, EVT_CONF_STATED, EVT_CONF_INFERRED, EVT_CONF_GUESS, EVT_CONF_UNKNOWN };

/* One piece of evidence: a frame number (capture frame in sniff, packet count
 * on the connection in the proxy) and what it shows. */
struct evt_evidence {
	uint64_t frame;
	char text[200];
};
#define EVT_MAX_EVIDENCE 6

/* One event. Strings and byte views are borrowed: they must stay valid until
 * evt_emit() returns; sinks never keep them. Every optional field has an
 * "omit" value, which evt_make() sets. */
struct evt {
	enum evt_code code;
	enum evt_reason reason;                /* EVT_R_NONE = omit */
	const char *amps_reason;               /* AMPS connections: the reason in AMPS's own words; NULL = omit */
	int64_t ts_us;                         /* microseconds since the epoch (capture time in sniff) */
	uint64_t conn_id;
	const uint8_t *client_id;              /* raw bytes from the wire, may be anything: sinks escape; */
	size_t client_id_len;                  /*   NULL = unknown, non-NULL with length 0 = empty id */
	const uint8_t *username;               /* raw bytes; NULL = omit */
	size_t username_len;
	const char *identity;                  /* TLS client certificate subject; NULL = omit */
	char client[64], broker[64];           /* "ip:port" or "[v6]:port"; "" = omit */
	const char *protocol;                  /* "mqtt", "amps"; NULL = omit */
	uint8_t protocol_level;                /* 3, 4, 5; 0 = omit */
	int wire_reason;                       /* reason/return code on the wire, -1 = none */
	enum evt_party closed_by;
	enum evt_phase phase;
	enum evt_mode mode;
	enum evt_confidence confidence;
	const char *policy;                    /* "heartbeat", ...; NULL = omit */
	char detail[256];                      /* free text, may hold client bytes: sinks escape; "" = omit */
	int64_t duration_us;                   /* -1 = omit */
	int64_t bytes_c2s, bytes_s2c;          /* -1 = omit */
	int64_t count;                         /* storm count, bytes queued, ...; -1 = omit */
	unsigned n_evidence;
	struct evt_evidence evidence[EVT_MAX_EVIDENCE];
};

/* The fields of an event as the sinks name them (JSON keys, text keys, the
 * "{field}" placeholders of templates), in output order. */
enum evt_field {
	EVT_F_TS, EVT_F_TS_US, EVT_F_ID, EVT_F_NAME, EVT_F_SEVERITY, EVT_F_CONN,
	EVT_F_CLIENT_ID, EVT_F_USERNAME, EVT_F_IDENTITY, EVT_F_CLIENT, EVT_F_BROKER, EVT_F_PROTOCOL, EVT_F_LEVEL,
	EVT_F_REASON, EVT_F_AMPS_REASON, EVT_F_WIRE_REASON, EVT_F_CLOSED_BY, EVT_F_PHASE, EVT_F_MODE, EVT_F_POLICY,
	EVT_F_CONFIDENCE, EVT_F_DETAIL, EVT_F_DURATION_S, EVT_F_BYTES_C2S, EVT_F_BYTES_S2C,
	EVT_F_COUNT, EVT_F_EVIDENCE,
	EVT_F__COUNT
};

/* Returns an event <code> with every optional field set to "omit". */
struct evt evt_make(enum evt_code code, uint64_t conn_id, int64_t ts_us);

/* Catalog lookups for <code>; each returns a static string, or NULL (EVT_SEV_ERROR
 * for evt_severity) when <code> is out of range. */
const char *evt_id(enum evt_code code);         /* "W1002"; W2000 for EVT_DISCONNECT */
const char *evt_name(enum evt_code code);       /* "connect" */
enum evt_severity evt_severity(enum evt_code code);
const char *evt_template(enum evt_code code);   /* "CONNECT {protocol} level {level} ..." */
const char *evt_fields(enum evt_code code);     /* "reason wire_reason ...", space-separated */
bool evt_is_retired(enum evt_code code);        /* true: an XR row, never emitted */

/* The id an emitted event <e> carries: its reason's W2nnn id for a disconnect
 * with a reason set, the catalog id otherwise. Static string; never NULL
 * ("W0000" for an out-of-range code). Both sinks print this one. */
const char *evt_event_id(const struct evt *e);

/* The severity an emitted event <e> carries: a disconnect is INFO when it was
 * orderly (a reason whose v5 code is below 0x80, or still_open), WARNING
 * otherwise; other events have their catalog severity. */
enum evt_severity evt_event_severity(const struct evt *e);

const char *evt_severity_name(enum evt_severity sev); /* "warning"; NULL out of range */

/* Reason lookups for <r>; static strings, NULL for EVT_R_NONE or out of range. */
const char *evt_reason_name(enum evt_reason r);    /* "keepalive_timeout" */
const char *evt_reason_id(enum evt_reason r);      /* "W2101" */
int evt_reason_wire_code(enum evt_reason r);       /* 0x8D; -1 when none (or <r> invalid) */
const char *evt_reason_closer(enum evt_reason r);  /* "client", "broker", "proxy", "any", "none" */
const char *evt_reason_amps(enum evt_reason r);    /* "heartbeat"; NULL when AMPS has no word */
const char *evt_reason_meaning(enum evt_reason r); /* one line */

/* The reason named <name> (NUL-terminated, may be NULL); EVT_R_NONE if none. */
enum evt_reason evt_reason_from_name(const char *name);

/* The reason meant by v5 DISCONNECT or CONNACK reason <code> sent by a broker:
 * the first row of reasons.def with that code (0x98 -> admin_disconnect,
 * 0x87 -> not_authorized, 0x97 -> quota_exceeded). EVT_R_NONE for codes below
 * 0x80, which are not errors (Success, Normal disconnection: the caller knows
 * which side ended it); EVT_R_UNKNOWN for an error code no row carries. */
enum evt_reason evt_reason_from_v5(uint8_t code);

/* The reason meant by 3.1/3.1.1 CONNACK return code <rc>: 1 unsupported_protocol_version,
 * 2 client_id_rejected, 3 server_unavailable, 4 auth_failed, 5 not_authorized;
 * EVT_R_NONE for 0 (accepted), EVT_R_UNKNOWN above 5. */
enum evt_reason evt_reason_from_v3_connack(uint8_t rc);

/* Value names as the sinks print them; NULL for the NONE value (omit) or out of range. */
const char *evt_party_name(enum evt_party p);          /* "client", "broker", "proxy", "unknown" */
const char *evt_phase_name(enum evt_phase p);          /* "connecting", "connected", "closing" */
const char *evt_mode_name(enum evt_mode m);            /* "observe", "enforce" */
const char *evt_confidence_name(enum evt_confidence c); /* "stated", "inferred", "guess", "unknown" */

/* Field names: evt_field_name() gives "client_id" (NULL out of range);
 * evt_field_from_name() looks up the <len> bytes at <s>, -1 when unknown.
 * evt_field_is_set() says whether <e> has a value for <f> (ts, id, name,
 * severity and conn always do). */
const char *evt_field_name(enum evt_field f);
int evt_field_from_name(const char *s, size_t len);
bool evt_field_is_set(const struct evt *e, enum evt_field f);

/* Appends evidence to <e>: <frame> and the printf-style text, cut to fit
 * evt_evidence.text. Ignored once <e> holds EVT_MAX_EVIDENCE items (the first
 * ones are the ones that decided). */
void evt_add_evidence(struct evt *e, uint64_t frame, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets <e>'s detail from the printf-style text, cut to fit. */
void evt_set_detail(struct evt *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
