/* The wire's side of `why`: captures run through the sniffer's engine, and
 * wirewarden's own JSON-lines event logs (the proxy's --events, the
 * sniffer's --json). Each disconnect event of a matching client becomes one
 * session; a takeover_storm event becomes a storm entry. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/why.h"
#include "common/escape.h"
#include "sink/sink.h"
#include "sniff/pipeline.h"

#define WHY_JSON_LINE_MAX (1 << 20)

struct capture_ctx {
	struct why *w;
};

static void capture_sink(void *ctx, const struct evt *e)
{
	struct why *w = ((struct capture_ctx *)ctx)->w;
	if (e->code != EVT_DISCONNECT && e->code != EVT_TAKEOVER_STORM)
		return;
	char id[160] = "";
	if (e->client_id)
		escape_text(e->client_id, e->client_id_len, id, sizeof id);
	if (w->summary) {
		if (e->code == EVT_DISCONNECT)
			why_summary_count(w->sum, w->source, w->kind, id, strlen(id), e->reason);
		return;
	}
	if (!why_matches(w, e->client_id ? id : NULL, strlen(id), e->client, strlen(e->client)))
		return;
	struct why_session *s = why_add(w);
	if (!s)
		return;
	s->end_us = e->ts_us;
	s->start_us = e->duration_us > 0 ? e->ts_us - e->duration_us : -1;
	why_copy(s->client, sizeof s->client, e->client);
	why_copy(s->broker, sizeof s->broker, e->broker);
	why_copy(s->client_id, sizeof s->client_id, id);
	why_copy(s->id, sizeof s->id, evt_event_id(e));
	if (e->username)
		escape_text(e->username, e->username_len, s->username, sizeof s->username);
	s->storm = e->code == EVT_TAKEOVER_STORM;
	s->count = e->count;
	if (s->storm) {
		why_copy(s->reason, sizeof s->reason, "takeover_storm");
		why_evidence(s, "%s", e->detail);
		return;
	}
	why_copy(s->reason, sizeof s->reason, evt_reason_name(e->reason));
	why_copy(s->closed_by, sizeof s->closed_by, evt_party_name(e->closed_by));
	why_copy(s->confidence, sizeof s->confidence, evt_confidence_name(e->confidence));
	for (unsigned i = 0; i < e->n_evidence; i++)
		why_evidence(s, "%.190s (frame %llu)", e->evidence[i].text, (unsigned long long)e->evidence[i].frame);
}

int why_read_capture(struct why *w, const char *path, const uint16_t *ports, size_t n_ports, const uint16_t *amps_ports,
		     size_t n_amps_ports, char *err, size_t errlen)
{
	struct capture_ctx ctx = { w };
	struct evt_sinks sinks = { 0 };
	evt_sinks_add(&sinks, capture_sink, &ctx);
	return sniff_pipeline_file_amps(path, ports, n_ports, amps_ports, n_amps_ports, &sinks, err, errlen);
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int64_t jtime(json_t *o, const char *k)
{
	const char *t = jstr(o, k);
	int64_t us;
	bool zoned;
	if (t && why_time_parse(t, strlen(t), &us, &zoned))
		return us;
	return -1;
}

static void json_line(struct why *w, const char *line)
{
	json_t *o = json_loads(line, 0, NULL);
	if (!o)
		return;
	const char *name = jstr(o, "name");
	bool storm = name && strcmp(name, "takeover_storm") == 0;
	const char *cid = jstr(o, "client_id"), *client = jstr(o, "client");
	if (!name || (strcmp(name, "disconnect") != 0 && !storm)) {
		json_decref(o);
		return;
	}
	if (w->summary) {
		if (!storm)
			why_summary_count(w->sum, w->source, w->kind, cid ? cid : "", cid ? strlen(cid) : 0,
					  evt_reason_from_name(jstr(o, "reason")));
		json_decref(o);
		return;
	}
	if (!why_matches(w, cid, cid ? strlen(cid) : 0, client, client ? strlen(client) : 0)) {
		json_decref(o);
		return;
	}
	struct why_session *s = why_add(w);
	if (s) {
		double dur = json_number_value(json_object_get(o, "duration_s"));
		s->end_us = jtime(o, "ts");
		s->start_us = jtime(o, "start");
		if (s->start_us < 0 && s->end_us >= 0 && dur > 0)
			s->start_us = s->end_us - (int64_t)(dur * 1e6 + 0.5);
		why_copy(s->client, sizeof s->client, client);
		why_copy(s->broker, sizeof s->broker, jstr(o, "broker"));
		why_copy(s->client_id, sizeof s->client_id, cid);
		why_copy(s->username, sizeof s->username, jstr(o, "username"));
		why_copy(s->id, sizeof s->id, jstr(o, "id"));
		why_copy(s->reason, sizeof s->reason, storm ? "takeover_storm" : jstr(o, "reason"));
		why_copy(s->closed_by, sizeof s->closed_by, jstr(o, "closed_by"));
		why_copy(s->confidence, sizeof s->confidence, jstr(o, "confidence"));
		s->storm = storm;
		s->count = json_integer_value(json_object_get(o, "count"));
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(o, "evidence"), i, ev) {
			long long fr = json_integer_value(json_object_get(ev, "frame"));
			const char *text = jstr(ev, "text") ? jstr(ev, "text") : "";
			if (fr > 0)
				why_evidence(s, "%.190s (frame %lld)", text, fr);
			else
				why_evidence(s, "%s", text);
		}
		if (storm && s->n_evidence == 0)
			why_evidence(s, "%s", jstr(o, "detail") ? jstr(o, "detail") : "");
	}
	json_decref(o);
}

int why_read_events(struct why *w, const char *path)
{
	struct why_lines l;
	if (why_lines_open(&l, path, WHY_JSON_LINE_MAX) != 0)
		return -1;
	struct why_text t;
	int r;
	char *line = malloc(WHY_JSON_LINE_MAX + 1);
	if (!line) {
		why_lines_close(&l);
		return -1;
	}
	while ((r = why_lines_next(&l, &t)) == 1) {
		memcpy(line, t.p, t.n);
		line[t.n] = 0;
		json_line(w, line);
	}
	w->long_lines += l.long_lines;
	why_lines_close(&l);
	free(line);
	return r < 0 ? -1 : 0;
}
