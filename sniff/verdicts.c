/* Sniff's view of the engine's events (verdicts.h). The engine decides; this
 * file only renders: a verdict JSON line per disconnect event (the sniffer's
 * one-verdict-per-connection output), other events as JSON lines, a timeline
 * of the events that matter to an operator, a per-client summary, and pcapng
 * comments on every evidence frame. Memory: the summary keeps at most
 * max_clients client ids; comments are one per evidence frame. */
#include "sniff/verdicts.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/hash.h"
#include "policy/evt.h"

struct client_row {
	char id[128];
	uint64_t sessions;
	uint32_t reasons[EVT_R__COUNT];
};

struct comment {
	uint64_t frame;
	char *text;
};

struct verdicts {
	struct verdicts_config cfg;
	struct client_row *rows;
	uint32_t n_rows, cap_rows;
	uint32_t *index, cap_index;  /* row + 1 by client id hash; 0 = empty */
	uint64_t untracked;         /* sessions of clients past max_clients */
	struct comment *comments;
	size_t n_comments, cap_comments;
	uint64_t n_verdicts, write_errors;
};

struct verdicts *verdicts_new(const struct verdicts_config *cfg)
{
	struct verdicts *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->cfg = *cfg;
	if (!v->cfg.max_clients)
		v->cfg.max_clients = 100000;
	return v;
}

void verdicts_free(struct verdicts *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n_comments; i++)
		free(v->comments[i].text);
	free(v->comments);
	free(v->rows);
	free(v->index);
	free(v);
}

static void client_text(const struct evt *e, char *buf, size_t cap)
{
	if (!e->client_id) {
		snprintf(buf, cap, "(no CONNECT seen)");
		return;
	}
	escape_text(e->client_id, e->client_id_len, buf, cap);
}

/* Rebuilds the open-addressing index over the rows at twice their number:
 * a capture with a hundred thousand client ids must not cost a scan per
 * verdict. */
static bool index_grow(struct verdicts *v)
{
	uint32_t ncap = v->cap_index ? v->cap_index * 2 : 256;
	uint32_t *ni = calloc(ncap, sizeof *ni);
	if (!ni)
		return false;
	for (uint32_t r = 0; r < v->n_rows; r++) {
		uint32_t k = (uint32_t)hash_fnv1a(v->rows[r].id, strlen(v->rows[r].id)) & (ncap - 1);
		while (ni[k])
			k = (k + 1) & (ncap - 1);
		ni[k] = r + 1;
	}
	free(v->index);
	v->index = ni;
	v->cap_index = ncap;
	return true;
}

static void tally(struct verdicts *v, const struct evt *e)
{
	char id[128];
	client_text(e, id, sizeof id);
	if ((v->n_rows + 1) * 2 > v->cap_index && !index_grow(v)) {
		v->untracked++;
		return;
	}
	uint32_t k = (uint32_t)hash_fnv1a(id, strlen(id)) & (v->cap_index - 1);
	while (v->index[k] && strcmp(v->rows[v->index[k] - 1].id, id) != 0)
		k = (k + 1) & (v->cap_index - 1);
	uint32_t i = v->index[k] ? v->index[k] - 1 : v->n_rows;
	if (i == v->n_rows) {
		if (v->n_rows >= v->cfg.max_clients) {
			v->untracked++;
			return;
		}
		if (v->n_rows == v->cap_rows) {
			uint32_t ncap = v->cap_rows ? v->cap_rows * 2 : 64;
			struct client_row *nr = realloc(v->rows, ncap * sizeof *nr);
			if (!nr) {
				v->untracked++;
				return;
			}
			v->rows = nr;
			v->cap_rows = ncap;
		}
		memset(&v->rows[i], 0, sizeof v->rows[i]);
		snprintf(v->rows[i].id, sizeof v->rows[i].id, "%s", id);
		v->n_rows++;
		v->index[k] = i + 1;
	}
	v->rows[i].sessions++;
	if ((unsigned)e->reason < EVT_R__COUNT)
		v->rows[i].reasons[e->reason]++;
}

static void add_comment(struct verdicts *v, uint64_t frame, const char *text)
{
	if (frame == 0)
		return;
	if (v->n_comments == v->cap_comments) {
		size_t ncap = v->cap_comments ? v->cap_comments * 2 : 256;
		struct comment *nc = realloc(v->comments, ncap * sizeof *nc);
		if (!nc)
			return;
		v->comments = nc;
		v->cap_comments = ncap;
	}
	char *t = strdup(text);
	if (!t)
		return;
	v->comments[v->n_comments].frame = frame;
	v->comments[v->n_comments].text = t;
	v->n_comments++;
}

static void write_json(struct verdicts *v, json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (!line || fprintf(v->cfg.json, "%s\n", line) < 0)
		v->write_errors++;
	free(line);
}

/* The engine's JSON rendering, retyped: "verdict" for a disconnect, with the
 * start and end of the session; "event" for everything else. */
static void json_out(struct verdicts *v, const struct evt *e)
{
	json_t *typed = json_object();
	bool verdict = e->code == EVT_DISCONNECT;
	json_object_set_new(typed, "type", json_string(verdict ? "verdict" : "event"));
	if (verdict) {
		char ts[40];
		evt_format_ts(e->ts_us - (e->duration_us > 0 ? e->duration_us : 0), ts, sizeof ts);
		json_object_set_new(typed, "start", json_string(ts));
		evt_format_ts(e->ts_us, ts, sizeof ts);
		json_object_set_new(typed, "end", json_string(ts));
	}
	typed = evt_json_object(e, typed);
	if (!typed) {
		v->write_errors++;
		return;
	}
	/* One vocabulary for who closed: a verdict always says. */
	if (verdict && !json_object_get(typed, "closed_by"))
		json_object_set_new(typed, "closed_by", json_string("unknown"));
	write_json(v, typed);
	json_decref(typed);
}

static void timeline_out(struct verdicts *v, const struct evt *e)
{
	if (evt_event_severity(e) < EVT_SEV_INFO && e->code != EVT_DISCONNECT)
		return;
	char line[EVT_TEXT_MAX];
	evt_render_text(e, line, sizeof line);
	if (fprintf(v->cfg.timeline, "%s\n", line) < 0)
		v->write_errors++;
}

static void sink_fn(void *ctx, const struct evt *e)
{
	struct verdicts *v = ctx;
	if (e->code == EVT_CONNECTION_OPENED)
		return; /* every flow has one; the verdict carries its start */
	if (v->cfg.json)
		json_out(v, e);
	if (v->cfg.timeline)
		timeline_out(v, e);
	if (e->code != EVT_DISCONNECT)
		return;
	v->n_verdicts++;
	tally(v, e);
	if (!v->cfg.comments)
		return;
	char id[128], text[512];
	client_text(e, id, sizeof id);
	const char *by = evt_party_name(e->closed_by);
	const char *conf = evt_confidence_name(e->confidence);
	for (unsigned i = 0; i < e->n_evidence; i++) {
		if (e->closed_by == EVT_BY_NONE)
			snprintf(text, sizeof text, "wirewarden: client[%s] still open when the capture ended", id);
		else
			snprintf(text, sizeof text, "wirewarden: client[%s] disconnected by %s: %s [%s] (%s)", id,
				 by ? by : "unknown", evt_reason_name(e->reason), conf ? conf : "unknown", e->evidence[i].text);
		add_comment(v, e->evidence[i].frame, text);
	}
}

int verdicts_attach(struct verdicts *v, struct evt_sinks *sinks)
{
	return evt_sinks_add(sinks, sink_fn, v);
}

static uint64_t troubles(const struct client_row *r)
{
	uint64_t n = 0;
	for (int k = 0; k < EVT_R__COUNT; k++)
		if (k != EVT_R_CLIENT_DISCONNECT && k != EVT_R_CLIENT_DISCONNECT_WITH_WILL && k != EVT_R_STILL_OPEN)
			n += r->reasons[k];
	return n;
}

static int by_trouble(const void *a, const void *b)
{
	const struct client_row *x = a, *y = b;
	uint64_t tx = troubles(x), ty = troubles(y);
	if (tx != ty)
		return tx > ty ? -1 : 1;
	if (x->sessions != y->sessions)
		return x->sessions > y->sessions ? -1 : 1;
	return strcmp(x->id, y->id);
}

void verdicts_summary(struct verdicts *v, FILE *out)
{
	if (v->n_rows)
		qsort(v->rows, v->n_rows, sizeof *v->rows, by_trouble);
	free(v->index); /* rows moved: the index is rebuilt if a verdict comes later */
	v->index = NULL;
	v->cap_index = 0;
	fprintf(out, "\n%llu connection%s, %u client id%s\n", (unsigned long long)v->n_verdicts,
		v->n_verdicts == 1 ? "" : "s", v->n_rows, v->n_rows == 1 ? "" : "s");
	for (uint32_t i = 0; i < v->n_rows; i++) {
		const struct client_row *r = &v->rows[i];
		fprintf(out, "  client[%s]  %llu session%s:", r->id, (unsigned long long)r->sessions,
			r->sessions == 1 ? "" : "s");
		for (int k = 0; k < EVT_R__COUNT; k++)
			if (r->reasons[k])
				fprintf(out, " %s x%u", evt_reason_name(k), r->reasons[k]);
		fputc('\n', out);
	}
	if (v->untracked)
		fprintf(out, "  (%llu more sessions of other clients not listed)\n", (unsigned long long)v->untracked);
}

static int by_frame(const void *a, const void *b)
{
	const struct comment *x = a, *y = b;
	return x->frame < y->frame ? -1 : x->frame > y->frame;
}

void verdicts_comments_done(struct verdicts *v)
{
	if (v->n_comments)
		qsort(v->comments, v->n_comments, sizeof *v->comments, by_frame);
}

unsigned verdicts_comments_for(struct verdicts *v, uint64_t frame, const char **out, unsigned max)
{
	size_t lo = 0, hi = v->n_comments;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->comments[mid].frame < frame)
			lo = mid + 1;
		else
			hi = mid;
	}
	unsigned n = 0;
	for (size_t i = lo; i < v->n_comments && v->comments[i].frame == frame && n < max; i++)
		out[n++] = v->comments[i].text;
	return n;
}

uint64_t verdicts_count(const struct verdicts *v) { return v->n_verdicts; }
uint64_t verdicts_write_errors(const struct verdicts *v) { return v->write_errors; }
