/* The text rendering of an event: one line in the shape AMPS operators grep
 * (timestamp, severity, id, client[name]), then the catalog message and the
 * remaining fields as key=value. Anything that may hold bytes from the wire or
 * from a client (client id, user name, detail, evidence, addresses, policy
 * names) goes through escape_text(), so no input can end or forge a line.
 * Also the ISO-8601 timestamp shared with json.c. */
#include "sink/sink.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/escape.h"

/* An output line being built; once <cut>, further appends are dropped and
 * line_finish() ends the line with the cut marker. <cap> >= 1. */
struct line {
	char *buf;
	size_t cap, len;
	bool cut;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room;

	if (l->cut)
		return;
	room = l->cap - 1 - l->len;
	if (n > room) {
		n = room;
		l->cut = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_str(struct line *l, const char *s) { put(l, s, strlen(s)); }

static void put_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_fmt(struct line *l, const char *fmt, ...)
{
	char tmp[64]; /* only numbers come through here */
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Escapes <n> bytes at <p> straight into the line. */
static void put_escaped(struct line *l, const void *p, size_t n)
{
	size_t room, need;

	if (l->cut || n == 0)
		return;
	room = l->cap - l->len;
	need = escape_text_len(p, n);
	l->len += escape_text(p, n, l->buf + l->len, room);
	if (need >= room)
		l->cut = true;
}

/* A value needs quotes when it would otherwise read as several tokens. Only
 * bytes kept by escape_text() matter: the rest become \xNN. */
static bool needs_quotes(const uint8_t *p, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (p[i] == ' ' || p[i] == '=' || p[i] == '(' || p[i] == ')' || p[i] == '[' || p[i] == ']')
			return true;
	return false;
}

static void put_value_bytes(struct line *l, const void *p, size_t n, bool quote)
{
	quote = quote && needs_quotes(p, n);
	if (quote)
		put(l, "\"", 1);
	put_escaped(l, p, n);
	if (quote)
		put(l, "\"", 1);
}

static void line_finish(struct line *l)
{
	static const char mark[] = ESCAPE_CUT_MARK;
	size_t at, k = sizeof mark - 1;

	if (l->cut) {
		if (k > l->cap - 1)
			k = l->cap - 1;
		at = l->len >= k ? l->len - k : 0;
		/* step back to a character boundary so no UTF-8 sequence is left torn */
		while (at > 0 && ((unsigned char)l->buf[at] & 0xc0) == 0x80)
			at--;
		memcpy(l->buf + at, mark, k);
		l->len = at + k;
	}
	l->buf[l->len] = '\0';
}

size_t evt_format_ts(int64_t ts_us, char *buf, size_t cap)
{
	/* floor division, so times before 1970 still get 0..999999 microseconds */
	int64_t sec = ts_us / 1000000, us = ts_us % 1000000;
	struct tm tm;
	time_t t;
	int n;

	if (us < 0) {
		us += 1000000;
		sec -= 1;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL)
		return 0;
	n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRId64 "Z", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Seconds with up to six decimals and no trailing zeros: "12.345", "5". */
static void put_duration(struct line *l, int64_t us)
{
	char tmp[40];
	int n = snprintf(tmp, sizeof tmp, "%" PRId64 ".%06" PRId64, us / 1000000, us % 1000000);

	if (n <= 0 || (size_t)n >= sizeof tmp)
		return;
	while (n > 0 && tmp[n - 1] == '0')
		n--;
	if (n > 0 && tmp[n - 1] == '.')
		n--;
	put(l, tmp, (size_t)n);
}

static void put_cstr_value(struct line *l, const char *s, size_t max, bool quote)
{
	put_value_bytes(l, s, strnlen(s, max), quote);
}

/* The value of field <f> of <e> (set or not: unset prints "-"). <quote>: in a
 * key=value pair, where free text needs quotes; inside the message it does not. */
static void put_field(struct line *l, const struct evt *e, enum evt_field f, bool quote)
{
	char ts[EVT_TS_MAX];

	if (!evt_field_is_set(e, f)) {
		put(l, "-", 1);
		return;
	}
	switch (f) {
	case EVT_F_TS: put(l, ts, evt_format_ts(e->ts_us, ts, sizeof ts)); break;
	case EVT_F_TS_US: put_fmt(l, "%" PRId64, e->ts_us); break;
	case EVT_F_ID: put_str(l, evt_event_id(e)); break;
	case EVT_F_NAME: put_str(l, evt_name(e->code) ? evt_name(e->code) : "?"); break;
	case EVT_F_SEVERITY: put_str(l, evt_severity_name(evt_event_severity(e))); break;
	case EVT_F_CONN: put_fmt(l, "%" PRIu64, e->conn_id); break;
	case EVT_F_CLIENT_ID: put_value_bytes(l, e->client_id, e->client_id_len, quote); break;
	case EVT_F_USERNAME: put_value_bytes(l, e->username, e->username_len, quote); break;
	case EVT_F_IDENTITY: put_value_bytes(l, (const uint8_t *)e->identity, strlen(e->identity), quote); break;
	case EVT_F_CLIENT: put_cstr_value(l, e->client, sizeof e->client, quote); break;
	case EVT_F_BROKER: put_cstr_value(l, e->broker, sizeof e->broker, quote); break;
	case EVT_F_PROTOCOL: put_cstr_value(l, e->protocol, 64, quote); break;
	case EVT_F_LEVEL: put_fmt(l, "%u", (unsigned)e->protocol_level); break;
	case EVT_F_REASON: put_str(l, evt_reason_name(e->reason)); break;
	case EVT_F_AMPS_REASON: put_cstr_value(l, e->amps_reason, 64, quote); break;
	case EVT_F_WIRE_REASON: put_fmt(l, "0x%02X", (unsigned)e->wire_reason); break;
	case EVT_F_CLOSED_BY: put_str(l, evt_party_name(e->closed_by)); break;
	case EVT_F_PHASE: put_str(l, evt_phase_name(e->phase)); break;
	case EVT_F_MODE: put_str(l, evt_mode_name(e->mode)); break;
	case EVT_F_POLICY: put_cstr_value(l, e->policy, 64, quote); break;
	case EVT_F_CONFIDENCE: put_str(l, evt_confidence_name(e->confidence)); break;
	case EVT_F_DETAIL: put_cstr_value(l, e->detail, sizeof e->detail, quote); break;
	case EVT_F_DURATION_S: put_duration(l, e->duration_us); break;
	case EVT_F_BYTES_C2S: put_fmt(l, "%" PRId64, e->bytes_c2s); break;
	case EVT_F_BYTES_S2C: put_fmt(l, "%" PRId64, e->bytes_s2c); break;
	case EVT_F_COUNT: put_fmt(l, "%" PRId64, e->count); break;
	case EVT_F_EVIDENCE:
		if (quote)
			put(l, "\"", 1);
		for (unsigned i = 0; i < e->n_evidence && i < EVT_MAX_EVIDENCE; i++) {
			const struct evt_evidence *ev = &e->evidence[i];
			/* Frame 0 is "no frame" (the proxy has no capture to point into). */
			if (ev->frame)
				put_fmt(l, "%s#%" PRIu64 " ", i ? "; " : "", ev->frame);
			else if (i)
				put(l, "; ", 2);
			put_escaped(l, ev->text, strnlen(ev->text, sizeof ev->text));
		}
		if (quote)
			put(l, "\"", 1);
		break;
	case EVT_F__COUNT: break;
	}
}

/* Writes the template of <e>, filling "{field}" placeholders; sets the bit of
 * each field used in <*used> so the key=value list does not repeat it. A brace
 * that does not name a field is copied as it is (the catalog test forbids it). */
static void put_message(struct line *l, const struct evt *e, uint32_t *used)
{
	const char *t = evt_template(e->code);
	const char *open, *close;
	int f;

	if (t == NULL)
		return;
	while ((open = strchr(t, '{')) != NULL) {
		put(l, t, (size_t)(open - t));
		close = strchr(open, '}');
		f = close ? evt_field_from_name(open + 1, (size_t)(close - open - 1)) : -1;
		if (f < 0) {
			put(l, "{", 1);
			t = open + 1;
			continue;
		}
		put_field(l, e, (enum evt_field)f, false);
		*used |= UINT32_C(1) << f;
		t = close + 1;
	}
	put_str(l, t);
}

size_t evt_render_text(const struct evt *e, char *buf, size_t cap)
{
	struct line l = { buf, cap, 0, false };
	/* the prefix already shows these */
	uint32_t used = UINT32_C(1) << EVT_F_TS | UINT32_C(1) << EVT_F_TS_US | UINT32_C(1) << EVT_F_ID |
			UINT32_C(1) << EVT_F_NAME | UINT32_C(1) << EVT_F_SEVERITY | UINT32_C(1) << EVT_F_CLIENT_ID;
	bool first = true;

	if (cap == 0)
		return 0;
	put_field(&l, e, EVT_F_TS, false);
	put(&l, " ", 1);
	put_field(&l, e, EVT_F_SEVERITY, false);
	put(&l, " ", 1);
	put_field(&l, e, EVT_F_ID, false);
	put_str(&l, " client[");
	if (e->client_id != NULL)
		put_escaped(&l, e->client_id, e->client_id_len);
	put_str(&l, "] ");
	put_field(&l, e, EVT_F_NAME, false);
	put_str(&l, ": ");
	put_message(&l, e, &used);
	for (int f = 0; f < EVT_F__COUNT; f++) {
		if ((used & (UINT32_C(1) << f)) || !evt_field_is_set(e, (enum evt_field)f))
			continue;
		put_str(&l, first ? " (" : " ");
		first = false;
		put_str(&l, evt_field_name((enum evt_field)f));
		put(&l, "=", 1);
		put_field(&l, e, (enum evt_field)f, true);
	}
	if (!first)
		put(&l, ")", 1);
	line_finish(&l);
	return l.len;
}
