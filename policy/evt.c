/* The event catalog built from policy/events.def and policy/reasons.def with
 * X-macros, and the lookups over it (see evt.h). All tables are const; the
 * only writes are into the struct evt a caller passes in. */
#include "policy/evt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct evt_row {
	const char *id, *name, *tmpl, *fields;
	enum evt_severity sev;
	bool retired;
};

static const struct evt_row evt_rows[EVT__COUNT] = {
#define X(c, id, name, sev, tmpl, fields) [EVT_##c] = { id, name, tmpl, fields, EVT_SEV_##sev, false },
#define XR(c, id, name, sev, tmpl, fields) [EVT_##c] = { id, name, tmpl, fields, EVT_SEV_##sev, true },
#include "policy/events.def"
#undef XR
#undef X
};

struct reason_row {
	const char *name, *id, *closer, *amps, *meaning;
	int v5;
};

static const struct reason_row reason_rows[EVT_R__COUNT] = {
#define X(c, name, id, v5, closer, amps, meaning) [EVT_R_##c] = { name, id, closer, amps, meaning, v5 },
#include "policy/reasons.def"
#undef X
};

static const char *const severity_names[] = { "debug", "info", "notice", "warning", "error" };
static const char *const party_names[] = { NULL, "client", "broker", "proxy", "unknown" };
static const char *const phase_names[] = { NULL, "connecting", "connected", "closing" };
static const char *const mode_names[] = { NULL, "observe", "enforce" };
static const char *const confidence_names[] = { NULL, "stated", "inferred", "guess", "unknown" };

static const char *const field_names[EVT_F__COUNT] = {
	[EVT_F_TS] = "ts", [EVT_F_TS_US] = "ts_us", [EVT_F_ID] = "id", [EVT_F_NAME] = "name",
	[EVT_F_SEVERITY] = "severity", [EVT_F_CONN] = "conn", [EVT_F_CLIENT_ID] = "client_id",
	[EVT_F_USERNAME] = "username", [EVT_F_IDENTITY] = "identity", [EVT_F_CLIENT] = "client", [EVT_F_BROKER] = "broker",
	[EVT_F_PROTOCOL] = "protocol", [EVT_F_LEVEL] = "level", [EVT_F_REASON] = "reason", [EVT_F_AMPS_REASON] = "amps_reason",
	[EVT_F_WIRE_REASON] = "wire_reason", [EVT_F_CLOSED_BY] = "closed_by", [EVT_F_PHASE] = "phase",
	[EVT_F_MODE] = "mode", [EVT_F_POLICY] = "policy", [EVT_F_CONFIDENCE] = "confidence",
	[EVT_F_DETAIL] = "detail", [EVT_F_DURATION_S] = "duration_s", [EVT_F_BYTES_C2S] = "bytes_c2s",
	[EVT_F_BYTES_S2C] = "bytes_s2c", [EVT_F_COUNT] = "count", [EVT_F_EVIDENCE] = "evidence",
};

#define NAME_AT(tab, i) ((size_t)(i) < sizeof(tab) / sizeof((tab)[0]) ? (tab)[(i)] : NULL)

static bool code_ok(enum evt_code code) { return (unsigned)code < EVT__COUNT; }

/* EVT_R_NONE has no row: its slot in reason_rows is all zero. */
static bool reason_ok(enum evt_reason r) { return r > EVT_R_NONE && (unsigned)r < EVT_R__COUNT; }

struct evt evt_make(enum evt_code code, uint64_t conn_id, int64_t ts_us)
{
	struct evt e;

	memset(&e, 0, sizeof e);
	e.code = code;
	e.conn_id = conn_id;
	e.ts_us = ts_us;
	e.reason = EVT_R_NONE;
	e.wire_reason = -1;
	e.closed_by = EVT_BY_NONE;
	e.phase = EVT_PHASE_NONE;
	e.mode = EVT_MODE_NONE;
	e.confidence = EVT_CONF_NONE;
	e.duration_us = -1;
	e.bytes_c2s = -1;
	e.bytes_s2c = -1;
	e.count = -1;
	return e;
}

const char *evt_id(enum evt_code code) { return code_ok(code) ? evt_rows[code].id : NULL; }
const char *evt_name(enum evt_code code) { return code_ok(code) ? evt_rows[code].name : NULL; }
const char *evt_template(enum evt_code code) { return code_ok(code) ? evt_rows[code].tmpl : NULL; }
const char *evt_fields(enum evt_code code) { return code_ok(code) ? evt_rows[code].fields : NULL; }
bool evt_is_retired(enum evt_code code) { return code_ok(code) && evt_rows[code].retired; }

enum evt_severity evt_severity(enum evt_code code)
{
	return code_ok(code) ? evt_rows[code].sev : EVT_SEV_ERROR;
}

const char *evt_event_id(const struct evt *e)
{
	if (e->code == EVT_DISCONNECT && reason_ok(e->reason))
		return reason_rows[e->reason].id;
	return code_ok(e->code) ? evt_rows[e->code].id : "W0000";
}

enum evt_severity evt_event_severity(const struct evt *e)
{
	if (e->code == EVT_DISCONNECT && reason_ok(e->reason)) {
		int v5 = reason_rows[e->reason].v5;
		/* An orderly goodbye is routine; everything else is what operators look for. */
		if ((v5 >= 0 && v5 < 0x80) || e->reason == EVT_R_STILL_OPEN)
			return EVT_SEV_INFO;
		return EVT_SEV_WARNING;
	}
	return evt_severity(e->code);
}

const char *evt_severity_name(enum evt_severity sev) { return NAME_AT(severity_names, sev); }

const char *evt_reason_name(enum evt_reason r) { return reason_ok(r) ? reason_rows[r].name : NULL; }
const char *evt_reason_id(enum evt_reason r) { return reason_ok(r) ? reason_rows[r].id : NULL; }
int evt_reason_wire_code(enum evt_reason r) { return reason_ok(r) ? reason_rows[r].v5 : -1; }
const char *evt_reason_closer(enum evt_reason r) { return reason_ok(r) ? reason_rows[r].closer : NULL; }
const char *evt_reason_amps(enum evt_reason r) { return reason_ok(r) ? reason_rows[r].amps : NULL; }
const char *evt_reason_meaning(enum evt_reason r) { return reason_ok(r) ? reason_rows[r].meaning : NULL; }

enum evt_reason evt_reason_from_name(const char *name)
{
	if (name == NULL)
		return EVT_R_NONE;
	for (unsigned r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++)
		if (strcmp(reason_rows[r].name, name) == 0)
			return (enum evt_reason)r;
	return EVT_R_NONE;
}

enum evt_reason evt_reason_from_v5(uint8_t code)
{
	if (code < 0x80)
		return EVT_R_NONE;
	for (unsigned r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++)
		if (reason_rows[r].v5 == code)
			return (enum evt_reason)r;
	return EVT_R_UNKNOWN;
}

enum evt_reason evt_reason_from_v3_connack(uint8_t rc)
{
	switch (rc) {
	case 0: return EVT_R_NONE;
	case 1: return EVT_R_UNSUPPORTED_PROTOCOL_VERSION;
	case 2: return EVT_R_CLIENT_ID_REJECTED;
	case 3: return EVT_R_SERVER_UNAVAILABLE;
	case 4: return EVT_R_AUTH_FAILED;
	case 5: return EVT_R_NOT_AUTHORIZED;
	default: return EVT_R_UNKNOWN;
	}
}

const char *evt_party_name(enum evt_party p) { return NAME_AT(party_names, p); }
const char *evt_phase_name(enum evt_phase p) { return NAME_AT(phase_names, p); }
const char *evt_mode_name(enum evt_mode m) { return NAME_AT(mode_names, m); }
const char *evt_confidence_name(enum evt_confidence c) { return NAME_AT(confidence_names, c); }

const char *evt_field_name(enum evt_field f) { return NAME_AT(field_names, f); }

int evt_field_from_name(const char *s, size_t len)
{
	for (int f = 0; f < EVT_F__COUNT; f++)
		if (strlen(field_names[f]) == len && memcmp(field_names[f], s, len) == 0)
			return f;
	return -1;
}

bool evt_field_is_set(const struct evt *e, enum evt_field f)
{
	switch (f) {
	case EVT_F_TS:
	case EVT_F_TS_US:
	case EVT_F_ID:
	case EVT_F_NAME:
	case EVT_F_SEVERITY:
	case EVT_F_CONN: return true;
	case EVT_F_CLIENT_ID: return e->client_id != NULL;
	case EVT_F_USERNAME: return e->username != NULL;
	case EVT_F_IDENTITY: return e->identity != NULL;
	case EVT_F_CLIENT: return e->client[0] != '\0';
	case EVT_F_BROKER: return e->broker[0] != '\0';
	case EVT_F_PROTOCOL: return e->protocol != NULL;
	case EVT_F_LEVEL: return e->protocol_level != 0;
	case EVT_F_REASON: return reason_ok(e->reason);
	case EVT_F_AMPS_REASON: return e->amps_reason != NULL;
	case EVT_F_WIRE_REASON: return e->wire_reason >= 0;
	case EVT_F_CLOSED_BY: return evt_party_name(e->closed_by) != NULL;
	case EVT_F_PHASE: return evt_phase_name(e->phase) != NULL;
	case EVT_F_MODE: return evt_mode_name(e->mode) != NULL;
	case EVT_F_POLICY: return e->policy != NULL;
	case EVT_F_CONFIDENCE: return evt_confidence_name(e->confidence) != NULL;
	case EVT_F_DETAIL: return e->detail[0] != '\0';
	case EVT_F_DURATION_S: return e->duration_us >= 0;
	case EVT_F_BYTES_C2S: return e->bytes_c2s >= 0;
	case EVT_F_BYTES_S2C: return e->bytes_s2c >= 0;
	case EVT_F_COUNT: return e->count >= 0;
	case EVT_F_EVIDENCE: return e->n_evidence > 0;
	case EVT_F__COUNT: break;
	}
	return false;
}

void evt_add_evidence(struct evt *e, uint64_t frame, const char *fmt, ...)
{
	struct evt_evidence *ev;
	va_list ap;

	if (e->n_evidence >= EVT_MAX_EVIDENCE)
		return;
	ev = &e->evidence[e->n_evidence++];
	ev->frame = frame;
	va_start(ap, fmt);
	vsnprintf(ev->text, sizeof ev->text, fmt, ap); /* cuts; always NUL-terminates */
	va_end(ap);
}

void evt_set_detail(struct evt *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof e->detail, fmt, ap);
	va_end(ap);
}
