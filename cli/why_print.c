/* What `why` prints: a compact timeline for a terminal, or one JSON object
 * per session (--json). Stories in time order; a take-over storm is one entry;
 * lines that name the client outside any session come last, as context. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/why.h"
#include "sink/sink.h"

void why_format_time(int64_t us, char *buf, size_t cap)
{
	if (us < 0 || evt_format_ts(us, buf, cap) == 0)
		snprintf(buf, cap, "?");
}

/* Items in time order: stories (not folded into a storm), storms, lone engine storm entries. */
struct item {
	int64_t t;
	int kind; /* 0 story, 1 storm group, 2 engine storm entry */
	size_t i;
};

static int by_t(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	return (x->t > y->t) - (x->t < y->t);
}

static bool in_range(const struct why *w, int64_t start, int64_t end)
{
	if (end >= 0 && end < w->since_us)
		return false;
	if (start >= 0 && start > w->until_us)
		return false;
	if (start < 0 && end >= 0 && end > w->until_us && w->until_us != INT64_MAX)
		return false;
	return true;
}

static struct item *items(const struct why *w, size_t *n)
{
	struct item *it = malloc((w->n_stories + w->n_storms + w->n + 1) * sizeof *it);
	*n = 0;
	if (!it)
		return NULL;
	for (size_t i = 0; i < w->n_stories; i++) {
		const struct why_story *st = &w->stories[i];
		bool named = false; /* a refused CONNECT only a broker log saw, by address: not this client's */
		for (unsigned m = 0; m < st->n; m++)
			named |= !w->s[st->member[m]].anonymous;
		if (named && st->group_of < 0 && in_range(w, st->start_us, st->end_us))
			it[(*n)++] = (struct item){ st->end_us >= 0 ? st->end_us : st->start_us, 0, i };
	}
	for (size_t i = 0; i < w->n_storms; i++)
		if (in_range(w, w->storms[i].start_us, w->storms[i].end_us))
			it[(*n)++] = (struct item){ w->storms[i].end_us, 1, i };
	for (size_t i = 0; i < w->n; i++)
		if (w->s[i].storm && w->s[i].story == -1 && in_range(w, w->s[i].end_us, w->s[i].end_us))
			it[(*n)++] = (struct item){ w->s[i].end_us, 2, i };
	qsort(it, *n, sizeof *it, by_t);
	return it;
}

static size_t count_sessions(const struct why *w, const struct item *it, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += it[i].kind == 0 ? 1 : it[i].kind == 1 ? (size_t)w->storms[it[i].i].count : 0;
	return c;
}

/* The client id of a story: a broker log's refused CONNECT may not know it. */
static const char *story_id(const struct why *w, const struct why_story *st)
{
	for (unsigned m = 0; m < st->n; m++)
		if (w->s[st->member[m]].client_id[0])
			return w->s[st->member[m]].client_id;
	return "";
}

static void source_name(const struct why_session *s, char *buf, size_t cap)
{
	if (s->source_end)
		snprintf(buf, cap, "%s + %s (%s, rotated)", s->source, s->source_end, s->kind);
	else
		snprintf(buf, cap, "%s (%s)", s->source, s->kind);
}

static void print_storm_text(const struct why *w, const struct why_storm *g, FILE *out)
{
	char a[40], b[40];
	why_format_time(g->start_us, a, sizeof a);
	why_format_time(g->end_us, b, sizeof b);
	fprintf(out, "\n%s .. %s  client[%s]  TAKE-OVER STORM (%lld take-overs)\n", a, b, g->client_id, g->count);
	if (g->n_addrs) {
		fprintf(out, "    from");
		for (unsigned i = 0; i < g->n_addrs; i++)
			fprintf(out, " %s", g->addrs[i]);
		if (g->n_addrs_more)
			fprintf(out, " and %u more", g->n_addrs_more);
		fprintf(out, ": more than one client uses this client id\n");
	}
	fprintf(out, "    sources:");
	for (unsigned i = 0; i < g->n_sources; i++)
		fprintf(out, "%s %s (%s)", i ? "," : "", g->sources[i], g->kinds[i]);
	fprintf(out, "\n");
	(void)w;
}

static void print_story_text(const struct why *w, const struct why_story *st, FILE *out)
{
	const struct why_session *p = &w->s[st->primary];
	char a[40], b[40];
	why_format_time(st->start_us, a, sizeof a);
	why_format_time(st->end_us, b, sizeof b);
	double dur = st->start_us >= 0 && st->end_us >= 0 ? (double)(st->end_us - st->start_us) / 1e6 : 0;
	const char *client = p->client, *broker = p->broker;
	for (unsigned m = 0; m < st->n; m++) { /* the fullest addresses any source has */
		const struct why_session *s = &w->s[st->member[m]];
		if (strlen(s->client) > strlen(client))
			client = s->client;
		if (!broker[0])
			broker = s->broker;
	}
	char dtxt[32] = "";
	if (st->start_us >= 0 && st->end_us >= 0)
		snprintf(dtxt, sizeof dtxt, " (%.1f s)", dur);
	fprintf(out, "\n%s .. %s%s  client[%s]  %s -> %s\n", a, b, dtxt, story_id(w, st), client[0] ? client : "?",
		broker[0] ? broker : "?");
	fprintf(out, "    %s, closed by %s [%s]  %s\n", p->reason, p->closed_by[0] ? p->closed_by : "unknown",
		p->confidence[0] ? p->confidence : "unknown", p->id);
	char src[400];
	if (st->n == 1) {
		for (unsigned k = 0; k < p->n_evidence; k++)
			fprintf(out, "    - %s\n", p->evidence[k]);
		if (p->n_more)
			fprintf(out, "    - (%u more lines)\n", p->n_more);
		source_name(p, src, sizeof src);
		fprintf(out, "    source: %s\n", p->group >= 0 ? src : p->source);
	} else {
		for (unsigned m = 0; m < st->n; m++) {
			const struct why_session *s = &w->s[st->member[m]];
			source_name(s, src, sizeof src);
			fprintf(out, "    %s: %s, closed by %s [%s]\n", src, s->reason, s->closed_by[0] ? s->closed_by : "unknown",
				s->confidence[0] ? s->confidence : "unknown");
			for (unsigned k = 0; k < s->n_evidence; k++)
				fprintf(out, "      - %s\n", s->evidence[k]);
			if (s->n_more)
				fprintf(out, "      - (%u more lines)\n", s->n_more);
		}
	}
	if (st->by_id_only)
		fprintf(out, "    joined by client id and time only: the sources saw different addresses (a proxy or NAT between?)\n");
	for (unsigned d = 0; d < st->n_disagree; d++)
		fprintf(out, "    ! sources disagree: %s\n", st->disagree[d]);
}

void why_print_text(const struct why *w, FILE *out)
{
	size_t n;
	struct item *it = items(w, &n);
	size_t c = count_sessions(w, it, n);
	fprintf(out, "%zu session%s of %s\n", c, c == 1 ? "" : "s", w->pattern);
	for (int gi = 0; gi < WHY_GROUPS; gi++)
		if (w->groups[gi].used) {
			fprintf(out, "  %s: %s\n", w->groups[gi].fmt->name, w->groups[gi].offset_how);
			if (!w->groups[gi].closes && w->groups[gi].fmt->no_close_hint)
				fprintf(out, "  %s: %s\n", w->groups[gi].fmt->name, w->groups[gi].fmt->no_close_hint);
		}
	for (size_t i = 0; it && i < n; i++) {
		if (it[i].kind == 0)
			print_story_text(w, &w->stories[it[i].i], out);
		else if (it[i].kind == 1)
			print_storm_text(w, &w->storms[it[i].i], out);
		else {
			const struct why_session *s = &w->s[it[i].i];
			char b[40];
			why_format_time(s->end_us, b, sizeof b);
			fprintf(out, "\n%s  client[%s]  TAKE-OVER STORM (%lld take-overs)  %s\n    %s\n    source: %s\n", b,
				s->client_id, s->count, s->id, s->n_evidence ? s->evidence[0] : "", s->source);
		}
	}
	size_t ctx = 0;
	for (size_t i = 0; i < w->n_notes; i++)
		if (!w->notes[i].used) {
			if (ctx++ == 0)
				fprintf(out, "\nother lines naming %s (outside any session):\n", w->pattern);
			if (ctx <= 50)
				fprintf(out, "    %s: %s\n", w->notes[i].source, w->notes[i].text);
		}
	if (ctx > 50)
		fprintf(out, "    (%zu more)\n", ctx - 50);
	free(it);
}

static json_t *evidence_json(const struct why_session *s)
{
	json_t *ev = json_array();
	for (unsigned k = 0; k < s->n_evidence; k++)
		json_array_append_new(ev, json_string(s->evidence[k]));
	return ev;
}

static json_t *jtime(int64_t us)
{
	char b[40];
	why_format_time(us, b, sizeof b);
	return json_string(b);
}

static void emit(json_t *o, FILE *out)
{
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (line)
		fprintf(out, "%s\n", line);
	free(line);
	json_decref(o);
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v ? v : ""));
}

static void print_story_json(const struct why *w, const struct why_story *st, FILE *out)
{
	const struct why_session *p = &w->s[st->primary];
	json_t *o = json_object();
	set_str(o, "type", "session");
	json_object_set_new(o, "start", jtime(st->start_us));
	json_object_set_new(o, "end", jtime(st->end_us));
	json_object_set_new(o, "duration_s", st->start_us >= 0 && st->end_us >= 0 ?
						     json_real((double)(st->end_us - st->start_us) / 1e6) : json_null());
	set_str(o, "client_id", story_id(w, st));
	const char *client = p->client, *broker = p->broker;
	for (unsigned m = 0; m < st->n; m++) {
		const struct why_session *s = &w->s[st->member[m]];
		if (strlen(s->client) > strlen(client))
			client = s->client;
		if (!broker[0])
			broker = s->broker;
	}
	set_str(o, "client", client);
	set_str(o, "broker", broker);
	set_str(o, "reason", p->reason);
	set_str(o, "closed_by", p->closed_by);
	set_str(o, "confidence", p->confidence);
	set_str(o, "id", p->id);
	json_object_set_new(o, "evidence", evidence_json(p));
	set_str(o, "source", p->source);
	json_t *srcs = json_array();
	for (unsigned m = 0; m < st->n; m++) {
		const struct why_session *s = &w->s[st->member[m]];
		json_t *so = json_object();
		set_str(so, "source", s->source);
		if (s->source_end)
			set_str(so, "source_end", s->source_end);
		set_str(so, "kind", s->kind);
		json_object_set_new(so, "start", jtime(s->start_us));
		json_object_set_new(so, "end", jtime(s->end_us));
		set_str(so, "client", s->client);
		set_str(so, "reason", s->reason);
		set_str(so, "closed_by", s->closed_by);
		set_str(so, "confidence", s->confidence);
		json_object_set_new(so, "evidence", evidence_json(s));
		if (s->group >= 0) {
			json_object_set_new(so, "clock_offset_s", json_real((double)w->groups[s->group].offset_us / 1e6));
			set_str(so, "clock", w->groups[s->group].offset_how);
		}
		json_array_append_new(srcs, so);
	}
	json_object_set_new(o, "sources", srcs);
	json_t *dis = json_array();
	for (unsigned d = 0; d < st->n_disagree; d++)
		json_array_append_new(dis, json_string(st->disagree[d]));
	json_object_set_new(o, "disagreements", dis);
	bool one_socket = strchr(client, ':') != NULL;
	for (unsigned m = 0; m < st->n; m++)
		one_socket &= strcmp(w->s[st->member[m]].client, client) == 0;
	set_str(o, "joined_by", st->n < 2 ? "" : one_socket ? "address, client id and time" : "client id and time");
	emit(o, out);
}

static void print_storm_json(const struct why_storm *g, FILE *out)
{
	json_t *o = json_object();
	set_str(o, "type", "takeover_storm");
	json_object_set_new(o, "start", jtime(g->start_us));
	json_object_set_new(o, "end", jtime(g->end_us));
	set_str(o, "client_id", g->client_id);
	set_str(o, "reason", "takeover_storm");
	json_object_set_new(o, "count", json_integer(g->count));
	json_t *a = json_array(), *s = json_array();
	for (unsigned i = 0; i < g->n_addrs; i++)
		json_array_append_new(a, json_string(g->addrs[i]));
	for (unsigned i = 0; i < g->n_sources; i++) {
		json_t *so = json_object();
		set_str(so, "source", g->sources[i]);
		set_str(so, "kind", g->kinds[i]);
		json_array_append_new(s, so);
	}
	json_object_set_new(o, "clients", a);
	json_object_set_new(o, "sources", s);
	set_str(o, "source", g->n_sources ? g->sources[0] : "");
	emit(o, out);
}

void why_print_json(const struct why *w, FILE *out)
{
	size_t n;
	struct item *it = items(w, &n);
	for (size_t i = 0; it && i < n; i++) {
		if (it[i].kind == 0)
			print_story_json(w, &w->stories[it[i].i], out);
		else if (it[i].kind == 1)
			print_storm_json(&w->storms[it[i].i], out);
		else {
			const struct why_session *s = &w->s[it[i].i];
			json_t *o = json_object();
			set_str(o, "type", "takeover_storm");
			json_object_set_new(o, "start", jtime(s->end_us));
			json_object_set_new(o, "end", jtime(s->end_us));
			set_str(o, "client_id", s->client_id);
			set_str(o, "client", s->client);
			set_str(o, "broker", s->broker);
			set_str(o, "reason", "takeover_storm");
			json_object_set_new(o, "count", json_integer(s->count));
			set_str(o, "id", s->id);
			json_object_set_new(o, "evidence", evidence_json(s));
			set_str(o, "source", s->source);
			emit(o, out);
		}
	}
	for (size_t i = 0; i < w->n_notes; i++)
		if (!w->notes[i].used) {
			json_t *o = json_object();
			set_str(o, "type", "context");
			json_object_set_new(o, "ts", jtime(w->notes[i].ts_us));
			set_str(o, "source", w->notes[i].source);
			set_str(o, "kind", w->notes[i].kind);
			set_str(o, "text", w->notes[i].text);
			emit(o, out);
		}
	free(it);
}
