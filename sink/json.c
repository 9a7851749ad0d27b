/* The JSON-lines rendering of an event: one compact object per event, keys in
 * the order of enum evt_field, unset fields left out. jansson does the JSON
 * escaping; this file only makes sure every string handed to it is valid
 * UTF-8 (escape_utf8), because jansson refuses anything else. A client id that
 * is not valid UTF-8 is also given exactly, as hex, in client_id_hex. */
#include "sink/sink.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"

/* A JSON string for <n> untrusted bytes at <p>: unchanged when they are valid
 * UTF-8, with each bad byte spelled "\xNN" otherwise. NULL on no memory. */
static json_t *bytes_string(const void *p, size_t n)
{
	char *tmp;
	size_t len;
	json_t *s;

	if (n == 0)
		return json_string("");
	if (escape_utf8_valid(p, n))
		return json_stringn(p, n);
	tmp = malloc(4 * n + 1); /* each bad byte grows to four characters */
	if (tmp == NULL)
		return NULL;
	len = escape_utf8(p, n, tmp, 4 * n + 1);
	s = json_stringn(tmp, len);
	free(tmp);
	return s;
}

static json_t *cstr_string(const char *s, size_t max)
{
	return bytes_string(s, strnlen(s, max));
}

static json_t *hex_string(const uint8_t *p, size_t n)
{
	char *tmp = malloc(2 * n + 1);
	json_t *s;

	if (tmp == NULL)
		return NULL;
	s = json_stringn(tmp, escape_hex(p, n, tmp, 2 * n + 1));
	free(tmp);
	return s;
}

static json_t *name_string(const char *s)
{
	return json_string(s != NULL ? s : "?");
}

static json_t *evidence_array(const struct evt *e)
{
	json_t *a = json_array(), *item;

	for (unsigned i = 0; a != NULL && i < e->n_evidence && i < EVT_MAX_EVIDENCE; i++) {
		const struct evt_evidence *ev = &e->evidence[i];

		item = json_object();
		if (item == NULL)
			goto fail;
		if (json_object_set_new(item, "frame", json_integer((json_int_t)ev->frame)) != 0 ||
		    json_object_set_new(item, "text", cstr_string(ev->text, sizeof ev->text)) != 0) {
			json_decref(item);
			goto fail;
		}
		if (json_array_append_new(a, item) != 0) /* takes <item> even when it fails */
			goto fail;
	}
	return a;
fail:
	json_decref(a);
	return NULL;
}

/* The JSON value of set field <f> of <e>; NULL on no memory. */
static json_t *field_value(const struct evt *e, enum evt_field f)
{
	char ts[EVT_TS_MAX];

	switch (f) {
	case EVT_F_TS: return json_stringn(ts, evt_format_ts(e->ts_us, ts, sizeof ts));
	case EVT_F_TS_US: return json_integer((json_int_t)e->ts_us);
	case EVT_F_ID: return json_string(evt_event_id(e));
	case EVT_F_NAME: return name_string(evt_name(e->code));
	case EVT_F_SEVERITY: return name_string(evt_severity_name(evt_event_severity(e)));
	case EVT_F_CONN: return json_integer((json_int_t)e->conn_id);
	case EVT_F_CLIENT_ID: return bytes_string(e->client_id, e->client_id_len);
	case EVT_F_USERNAME: return bytes_string(e->username, e->username_len);
	case EVT_F_IDENTITY: return bytes_string((const uint8_t *)e->identity, strlen(e->identity));
	case EVT_F_CLIENT: return cstr_string(e->client, sizeof e->client);
	case EVT_F_BROKER: return cstr_string(e->broker, sizeof e->broker);
	case EVT_F_PROTOCOL: return cstr_string(e->protocol, 64);
	case EVT_F_LEVEL: return json_integer(e->protocol_level);
	case EVT_F_REASON: return name_string(evt_reason_name(e->reason));
	case EVT_F_AMPS_REASON: return cstr_string(e->amps_reason, 64);
	case EVT_F_WIRE_REASON: return json_integer(e->wire_reason);
	case EVT_F_CLOSED_BY: return name_string(evt_party_name(e->closed_by));
	case EVT_F_PHASE: return name_string(evt_phase_name(e->phase));
	case EVT_F_MODE: return name_string(evt_mode_name(e->mode));
	case EVT_F_POLICY: return cstr_string(e->policy, 64);
	case EVT_F_CONFIDENCE: return name_string(evt_confidence_name(e->confidence));
	case EVT_F_DETAIL: return cstr_string(e->detail, sizeof e->detail);
	case EVT_F_DURATION_S: return json_real((double)e->duration_us / 1e6);
	case EVT_F_BYTES_C2S: return json_integer((json_int_t)e->bytes_c2s);
	case EVT_F_BYTES_S2C: return json_integer((json_int_t)e->bytes_s2c);
	case EVT_F_COUNT: return json_integer((json_int_t)e->count);
	case EVT_F_EVIDENCE: return evidence_array(e);
	case EVT_F__COUNT: break;
	}
	return NULL;
}

json_t *evt_json_object(const struct evt *e, json_t *o)
{
	if (o == NULL)
		return NULL;
	for (int f = 0; f < EVT_F__COUNT; f++) {
		if (!evt_field_is_set(e, (enum evt_field)f))
			continue;
		/* set_new takes the value's reference even when it fails */
		if (json_object_set_new(o, evt_field_name((enum evt_field)f), field_value(e, (enum evt_field)f)) != 0)
			goto out;
		if (f == EVT_F_CLIENT_ID && !escape_utf8_valid(e->client_id, e->client_id_len) &&
		    json_object_set_new(o, "client_id_hex", hex_string(e->client_id, e->client_id_len)) != 0)
			goto out;
	}
	return o;
out:
	json_decref(o);
	return NULL;
}

char *evt_render_json(const struct evt *e)
{
	json_t *o = evt_json_object(e, json_object());
	if (o == NULL)
		return NULL;
	/* 15 significant digits: microseconds of durations up to ~30 years, and
	 * no binary noise (12.345, not 12.345000000000001) */
	char *out = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	return out;
}
