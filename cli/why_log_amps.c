/* AMPS logs: "2019-11-20T16:26:59.6408410-08:00 [5] warning: 02-0025 text".
 * The 07-0013 line records every close ("client[X] disconnected.") and may
 * carry one of the AMPS reason words; the lines before it say why when AMPS
 * itself acted: 02-0025 (a logon with the same name), 07-0042 (heartbeat),
 * 70-0011 then 70-0004 (slow client), 07-0047 (transport disabled: the
 * closes right after it are its clients). A bare 07-0013 with nothing before
 * it is a close AMPS did not cause and cannot explain: unknown. */
#include <stdio.h>
#include <string.h>

#include "cli/why_log.h"

/* The closes of a disabled transport follow its 07-0047 within this time. */
#define AMPS_TRANSPORT_WINDOW_US 2000000

struct amps_state {
	int64_t transport_off_us; /* when the last 07-0047 was logged, 0 none */
	char transport[96];       /* "Transport[json-tcp] disabled <s> s before" */
};

struct amps_line {
	struct why_text code, text;
};

static bool split(const char *line, size_t n, struct why_rec *r, struct amps_line *a)
{
	int64_t us;
	bool zoned;
	size_t k = why_time_parse(line, n, &us, &zoned);
	if (k == 0 || k + 4 > n || line[k] != ' ' || line[k + 1] != '[')
		return false;
	size_t i = k + 2;
	while (i < n && line[i] >= '0' && line[i] <= '9')
		i++;
	if (i == k + 2 || i + 2 > n || line[i] != ']' || line[i + 1] != ' ')
		return false;
	i += 2;
	const char *colon = why_find(line + i, n - i, ": ");
	if (!colon || colon - (line + i) > 12)
		return false;
	i = (size_t)(colon - line) + 2;
	/* "NN-NNNN " */
	if (i + 8 > n || line[i + 2] != '-' || line[i + 7] != ' ')
		return false;
	for (size_t j = 0; j < 7; j++)
		if (j != 2 && (line[i + j] < '0' || line[i + j] > '9'))
			return false;
	a->code.p = line + i;
	a->code.n = 7;
	a->text.p = line + i + 8;
	a->text.n = n - i - 8;
	return why_rec_stamp(r, us, zoned, line + i, n - i);
}

static bool amps_looks_like(const char *line, size_t n)
{
	struct why_rec r;
	struct amps_line a;
	return split(line, n, &r, &a);
}

/* The name in the first "client[NAME]" of <t>. */
static bool client_name(struct why_text t, struct why_text *id)
{
	const char *c = why_find(t.p, t.n, "client[");
	if (!c)
		return false;
	c += 7;
	const char *e = memchr(c, ']', t.n - (size_t)(c - t.p));
	if (!e)
		return false;
	id->p = c;
	id->n = (size_t)(e - c);
	return true;
}

static bool code_is(const struct amps_line *a, const char *code)
{
	return memcmp(a->code.p, code, 7) == 0;
}

/* The AMPS reason words of 07-0013 (their troubleshooting guide) and ours. */
static const struct {
	const char *words;
	enum evt_reason reason;
	enum evt_party by;
} amps_words[] = {
	/* a logon refused for a name another user holds; after a 02-0025 the old connection, taken over */
	{ "name in use", EVT_R_NAME_IN_USE, EVT_BY_BROKER },
	{ "heartbeat", EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER },
	{ "slow client", EVT_R_SLOW_CONSUMER, EVT_BY_BROKER },
	{ "entitlement reset", EVT_R_CREDENTIALS_EXPIRED, EVT_BY_BROKER },
	{ "unknown command", EVT_R_UNKNOWN_COMMAND, EVT_BY_BROKER },
	{ "auth failure", EVT_R_AUTH_FAILED, EVT_BY_BROKER },
	{ "authentication fail", EVT_R_AUTH_FAILED, EVT_BY_BROKER },
	{ "failed to authenticate", EVT_R_AUTH_FAILED, EVT_BY_BROKER },
	{ "not entitled", EVT_R_NOT_AUTHORIZED, EVT_BY_BROKER },
	{ "transport disabled", EVT_R_LISTENER_DISABLED, EVT_BY_BROKER },
	{ "admin", EVT_R_ADMIN_DISCONNECT, EVT_BY_BROKER },
	{ "connection closed", EVT_R_CLIENT_VANISHED, EVT_BY_CLIENT },
};

static bool words_reason(struct why_text t, struct why_rec *r)
{
	for (size_t i = 0; i < sizeof amps_words / sizeof amps_words[0]; i++)
		if (why_contains_ci(t.p, t.n, amps_words[i].words)) {
			r->reason = amps_words[i].reason;
			r->closed_by = amps_words[i].by;
			r->confidence = EVT_CONF_STATED;
			return true;
		}
	return false;
}

static enum why_rec_kind amps_parse(void *state, const char *line, size_t n, struct why_rec *r)
{
	struct amps_state *st = state;
	struct amps_line a;
	why_rec_clear(r);
	if (!split(line, n, r, &a))
		return r->kind = WHY_REC_UNKNOWN;
	struct why_text t = a.text;
	if (code_is(&a, "07-0013")) {
		if (!client_name(t, &r->id))
			return r->kind = WHY_REC_UNKNOWN;
		struct why_text rest = { r->id.p + r->id.n, t.n - (size_t)(r->id.p + r->id.n - t.p) };
		if (!words_reason(rest, r)) {
			if (st->transport_off_us && r->ts_us - st->transport_off_us <= AMPS_TRANSPORT_WINDOW_US &&
			    r->ts_us >= st->transport_off_us) {
				r->reason = EVT_R_LISTENER_DISABLED;
				r->closed_by = EVT_BY_BROKER;
				r->confidence = EVT_CONF_INFERRED;
				r->detail.p = st->transport;
				r->detail.n = strlen(st->transport);
			}
			/* else: AMPS logs no reason when it did not act (client left, network) */
		}
		return r->kind = WHY_REC_CLOSE;
	}
	if (code_is(&a, "02-0025") && client_name(t, &r->id)) {
		return why_rec_decide(r, WHY_REC_NOTE, EVT_R_SESSION_TAKEN_OVER, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if (code_is(&a, "07-0042")) {
		const char *c = why_find(t.p, t.n, "client: ");
		if (c) {
			r->id.p = c + 8;
			r->id.n = t.n - (size_t)(c + 8 - t.p);
			while (r->id.n && (r->id.p[r->id.n - 1] == '.' || r->id.p[r->id.n - 1] == ' '))
				r->id.n--;
		} else if (!client_name(t, &r->id))
			return r->kind = WHY_REC_UNKNOWN;
		return why_rec_decide(r, WHY_REC_NOTE, EVT_R_KEEPALIVE_TIMEOUT, EVT_BY_BROKER, EVT_CONF_STATED);
	}
	if ((code_is(&a, "70-0011") || code_is(&a, "70-0004")) && client_name(t, &r->id)) {
		return why_rec_decide(r, WHY_REC_NOTE, EVT_R_SLOW_CONSUMER, EVT_BY_BROKER,
				      code_is(&a, "70-0004") ? EVT_CONF_STATED : EVT_CONF_INFERRED);
	}
	if (code_is(&a, "07-0047")) {
		const char *e = why_find(t.p, t.n, " being disabled");
		if (e) {
			st->transport_off_us = r->ts_us;
			snprintf(st->transport, sizeof st->transport, "%.*s disabled just before (07-0047)",
				 (int)(e - t.p) > 60 ? 60 : (int)(e - t.p), t.p);
		}
		return r->kind = WHY_REC_NONE;
	}
	if (client_name(t, &r->id)) {
		if (words_reason(t, r) && r->reason != EVT_R_CLIENT_VANISHED)
			return r->kind = WHY_REC_NOTE; /* auth failure, not entitled, entitlement reset ... */
		r->reason = EVT_R_NONE;
		r->closed_by = EVT_BY_NONE;
		r->confidence = EVT_CONF_NONE;
		bool dis = why_find(t.p, t.n, "disconnect") != NULL;
		if (!dis && (why_find(t.p, t.n, " connected") || why_contains_ci(t.p, t.n, "logon") ||
			     why_contains_ci(t.p, t.n, "logged on")))
			return r->kind = WHY_REC_OPEN;
		return r->kind = WHY_REC_UNKNOWN;
	}
	return r->kind = WHY_REC_UNKNOWN;
}

const struct why_format why_format_amps = {
	.name = "amps",
	.looks_like = amps_looks_like,
	.state_size = sizeof(struct amps_state),
	.says_auth_apart = true,
	.parse = amps_parse,
};
