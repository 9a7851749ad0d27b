/* Broker logs into sessions. A reader (why_log.h) turns each line into a
 * record; this file keeps, per broker format (a "group": the files of one
 * broker share a clock and a table of open connections, so a log rotated in
 * the middle of a session still joins), the sessions of the clients asked
 * about, plus the notes and context lines that name them. Nothing is kept for
 * other clients: memory follows the matching sessions, not the log's size. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/why.h"
#include "common/escape.h"
#include "common/hash.h"

#define WHY_OPEN_BUCKETS 4096
#define WHY_LOG_LINE_MAX (64 * 1024)
#define WHY_LOG_BUFFER (1 << 20)
#define WHY_MAX_ANONYMOUS 10000

static const char *const group_kind[WHY_GROUPS] = { "mosquitto log", "amps log", "hivemq log", "emqx log",
						     "rabbitmq log" };

static unsigned bucket(const char *id)
{
	return (unsigned)(hash_fnv1a(id, strlen(id)) % WHY_OPEN_BUCKETS);
}

static int group_init(struct why *w, int gi, const struct why_format *fmt)
{
	struct why_group *g = &w->groups[gi];
	if (g->used)
		return 0;
	g->state = calloc(1, fmt->state_size);
	g->open_head = malloc(WHY_OPEN_BUCKETS * sizeof *g->open_head);
	g->hints = calloc(WHY_HINTS, sizeof *g->hints);
	if (!g->state || !g->open_head || !g->hints)
		return -1;
	for (unsigned i = 0; i < WHY_OPEN_BUCKETS; i++)
		g->open_head[i] = -1;
	g->fmt = fmt;
	g->used = true;
	g->last_ts = INT64_MIN;
	return 0;
}

void why_groups_free(struct why *w)
{
	for (int i = 0; i < WHY_GROUPS; i++) {
		free(w->groups[i].state);
		free(w->groups[i].open_head);
		free(w->groups[i].open_next);
		free(w->groups[i].hints);
	}
}

static bool open_reserve(struct why *w, struct why_group *g)
{
	if (g->open_next_cap >= w->cap)
		return true;
	int *nn = realloc(g->open_next, w->cap * sizeof *nn);
	if (!nn)
		return false;
	g->open_next = nn;
	g->open_next_cap = w->cap;
	return true;
}

static void open_add(struct why *w, struct why_group *g, int idx)
{
	if (!open_reserve(w, g))
		return; /* out of memory: the session stays, unjoined with its close */
	unsigned b = bucket(w->s[idx].client_id);
	g->open_next[idx] = g->open_head[b];
	g->open_head[b] = idx;
}

static void open_remove(struct why *w, struct why_group *g, int idx)
{
	int *link = &g->open_head[bucket(w->s[idx].client_id)];
	while (*link >= 0 && *link != idx)
		link = &g->open_next[*link];
	if (*link == idx)
		*link = g->open_next[idx];
}

/* The open session of <id>: the one from <addr> if given and open, else the oldest. */
static int open_find(const struct why *w, const struct why_group *g, const char *id, const char *addr)
{
	int best = -1;
	for (int i = g->open_head[bucket(id)]; i >= 0; i = g->open_next[i]) {
		const struct why_session *s = &w->s[i];
		if (strcmp(s->client_id, id) != 0)
			continue;
		if (addr[0] && strcmp(s->client, addr) == 0)
			return i;
		if (best < 0 || s->log_start_us < w->s[best].log_start_us)
			best = i;
	}
	return best;
}

/* A view into a NUL-terminated copy that is safe to print: a client id may
 * hold anything (escaped as the sinks escape the wire's ids, so that both
 * sides name a client the same way). */
static void text_copy(char *dst, size_t cap, struct why_text t)
{
	if (!t.p) {
		dst[0] = 0;
		return;
	}
	escape_text((const uint8_t *)t.p, t.n, dst, cap);
}

/* Length of the well-formed UTF-8 sequence at <s> (at most <n> bytes), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : 0;
	if (k == 0 || k > n)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

/* A whole log line kept as evidence: as written, but a control byte or a byte
 * that is not UTF-8 becomes '?' (it could end or forge a line of our output). */
static void line_copy(char *dst, size_t cap, struct why_text t)
{
	size_t o = 0;
	const unsigned char *s = (const unsigned char *)t.p;
	for (size_t i = 0; t.p && i < t.n && o + 5 < cap;) {
		size_t k = s[i] < 0x80 ? (s[i] >= 0x20 && s[i] != 0x7f) : utf8_len(s + i, t.n - i);
		if (k == 0) {
			dst[o++] = '?';
			i++;
			continue;
		}
		memcpy(dst + o, s + i, k);
		o += k;
		i += k;
	}
	dst[o] = 0;
}

static void close_session(struct why *w, int gi, int idx, const struct why_rec *r, struct why_text line,
			  const char *path)
{
	struct why_session *s = &w->s[idx];
	s->log_end_us = r->has_ts ? r->ts_us : -1;
	enum evt_reason reason = r->reason != EVT_R_NONE ? r->reason : EVT_R_UNKNOWN;
	why_copy(s->reason, sizeof s->reason, evt_reason_name(reason));
	why_copy(s->id, sizeof s->id, evt_reason_id(reason));
	why_copy(s->closed_by, sizeof s->closed_by,
		 r->closed_by != EVT_BY_NONE ? evt_party_name(r->closed_by) : "unknown");
	why_copy(s->confidence, sizeof s->confidence,
		 r->reason == EVT_R_NONE ? "unknown" : r->confidence != EVT_CONF_NONE ? evt_confidence_name(r->confidence) : "stated");
	char txt[WHY_TEXT];
	line_copy(txt, sizeof txt, line);
	why_evidence(s, "%s", txt);
	if (r->detail.p) {
		line_copy(txt, sizeof txt, r->detail);
		why_evidence(s, "%s", txt);
	}
	if (s->open)
		open_remove(w, &w->groups[gi], idx);
	s->open = false;
	if (path != s->source)
		s->source_end = path;
}

static int new_session(struct why *w, int gi, const struct why_rec *r, const char *id, const char *addr)
{
	struct why_session *s = why_add(w);
	if (!s)
		return -1;
	s->group = gi;
	s->kind = group_kind[gi];
	s->zoned = r->zoned;
	why_copy(s->client_id, sizeof s->client_id, id);
	why_copy(s->client, sizeof s->client, addr);
	text_copy(s->username, sizeof s->username, r->user);
	s->keepalive = r->keepalive;
	return (int)(s - w->s);
}

static void add_note(struct why *w, int gi, const struct why_rec *r, const char *id, const char *addr,
		     struct why_text line)
{
	if (w->n_notes >= WHY_MAX_NOTES) {
		w->notes_dropped++;
		return;
	}
	if (w->n_notes % 256 == 0) {
		struct why_note *nn = realloc(w->notes, (w->n_notes + 256) * sizeof *nn);
		if (!nn) {
			w->notes_dropped++;
			return;
		}
		w->notes = nn;
	}
	struct why_note *n = &w->notes[w->n_notes++];
	memset(n, 0, sizeof *n);
	n->ts_us = r->has_ts ? r->ts_us : -1;
	why_copy(n->client_id, sizeof n->client_id, id);
	why_copy(n->addr, sizeof n->addr, addr);
	line_copy(n->text, sizeof n->text, line);
	n->hint = r->kind == WHY_REC_NOTE ? r->reason : EVT_R_NONE;
	n->by = r->closed_by;
	n->conf = r->confidence;
	n->source = w->source;
	n->kind = group_kind[gi];
	n->group = gi;
}

static void on_record(struct why *w, int gi, const struct why_rec *r, struct why_text line)
{
	struct why_group *g = &w->groups[gi];
	char id[160], addr[64];
	if (r->has_ts) {
		g->last_ts = r->ts_us;
		if (r->zoned)
			g->zoned_seen = true;
		else
			g->zoneless_seen = true;
	}
	if (r->kind == WHY_REC_NONE)
		return;
	g->closes += r->kind == WHY_REC_CLOSE; /* a shutdown line is in the logs that leave closes out too */
	text_copy(id, sizeof id, r->id);
	text_copy(addr, sizeof addr, r->addr);
	if (w->summary) {
		struct why_hint *h = id[0] ? &g->hints[bucket(id) % WHY_HINTS] : NULL;
		if (r->kind == WHY_REC_NOTE && h && r->reason != EVT_R_NONE) {
			h->reason = r->reason;
			h->ts_us = r->ts_us;
			why_copy(h->id, sizeof h->id, id);
		} else if (r->kind == WHY_REC_CLOSE) {
			enum evt_reason reason = r->reason != EVT_R_NONE ? r->reason : EVT_R_UNKNOWN;
			/* the line just before that says why (AMPS 07-0042, HiveMQ "was disconnected. reason:") */
			if (h && h->reason != EVT_R_NONE && strcmp(h->id, id) == 0 && r->ts_us - h->ts_us <= 5000000 &&
			    (reason == EVT_R_UNKNOWN || (reason == EVT_R_CLIENT_VANISHED && r->confidence != EVT_CONF_STATED) ||
			     why_reason_refines(evt_reason_name(h->reason), evt_reason_name(reason))))
				reason = h->reason;
			if (h)
				h->reason = EVT_R_NONE;
			why_summary_count(w->sum, w->source, group_kind[gi], id, strlen(id), reason);
		}
		return;
	}
	switch (r->kind) {
	case WHY_REC_OPEN: {
		if (!why_matches(w, id, strlen(id), addr, strlen(addr)))
			return;
		int idx = new_session(w, gi, r, id, addr);
		if (idx < 0)
			return;
		struct why_session *s = &w->s[idx];
		s->log_start_us = r->has_ts ? r->ts_us : -1;
		s->open = true;
		why_copy(s->reason, sizeof s->reason, "still_open");
		open_add(w, g, idx);
		return;
	}
	case WHY_REC_CLOSE: {
		int idx = id[0] ? open_find(w, g, id, addr) : -1;
		bool anonymous = false;
		if (idx < 0) {
			if (!why_matches(w, id[0] ? id : NULL, strlen(id), addr, strlen(addr))) {
				/* a refused CONNECT the log names by address only: the wire may know whose it was */
				if (id[0] || !strchr(addr, ':') || w->n_anonymous >= WHY_MAX_ANONYMOUS)
					return;
				anonymous = true;
				w->n_anonymous++;
			}
			idx = new_session(w, gi, r, id, addr); /* its start is before this log */
			if (idx < 0)
				return;
			w->s[idx].anonymous = anonymous;
		}
		close_session(w, gi, idx, r, line, w->source);
		return;
	}
	case WHY_REC_SHUTDOWN:
		for (unsigned b = 0; b < WHY_OPEN_BUCKETS; b++)
			while (g->open_head[b] >= 0)
				close_session(w, gi, g->open_head[b], r, line, w->source);
		return;
	case WHY_REC_NOTE:
		if ((id[0] && (why_matches(w, id, strlen(id), addr, strlen(addr)) || open_find(w, g, id, addr) >= 0)) ||
		    (!id[0] && addr[0] && why_matches(w, NULL, 0, addr, strlen(addr))))
			add_note(w, gi, r, id, addr, line);
		return;
	case WHY_REC_UNKNOWN:
		/* an unknown sentence is kept when it names the client */
		if (w->needle[0] && why_find(line.p, line.n, w->needle))
			add_note(w, gi, r, "", "", line);
		return;
	default:
		return;
	}
}

/* The line <t> as <fmt> reads it: unwrapped into <scratch> when <ref> says the file's lines are wrapped. */
static struct why_text as_written(struct why_text t, const struct why_unwrap_ref *ref, char *scratch, size_t cap)
{
	if (t.n > WHY_LOG_LINE_MAX) /* no sentence we read is that long */
		t.n = WHY_LOG_LINE_MAX;
	size_t k = ref ? why_unwrap(t.p, t.n, ref, scratch, cap) : 0;
	return k ? (struct why_text){ scratch, k } : t;
}

int64_t why_log_first_ts(const char *path, const struct why_format *fmt, const struct why_unwrap_ref *ref)
{
	struct why_lines l;
	int64_t ts = INT64_MIN;
	void *st = calloc(1, fmt->state_size);
	char *scratch = ref ? malloc(WHY_LOG_LINE_MAX + WHY_UNWRAP_EXTRA) : NULL;
	if (!st || (ref && !scratch) || why_lines_open(&l, path, WHY_LOG_LINE_MAX) != 0) {
		free(st);
		free(scratch);
		return ts;
	}
	struct why_text t;
	struct why_rec r;
	for (int i = 0; i < 1000 && why_lines_next(&l, &t) == 1; i++) {
		t = as_written(t, ref, scratch, WHY_LOG_LINE_MAX + WHY_UNWRAP_EXTRA);
		fmt->parse(st, t.p, t.n, &r);
		if (r.has_ts) {
			ts = r.ts_us;
			break;
		}
	}
	why_lines_close(&l);
	free(st);
	free(scratch);
	return ts;
}

int why_read_log(struct why *w, const char *path, const struct why_format *fmt, int gi,
		 const struct why_unwrap_ref *ref)
{
	if (group_init(w, gi, fmt) != 0)
		return -1;
	char *scratch = ref ? malloc(WHY_LOG_LINE_MAX + WHY_UNWRAP_EXTRA) : NULL;
	struct why_lines l;
	if ((ref && !scratch) || why_lines_open(&l, path, WHY_LOG_BUFFER) != 0) {
		free(scratch);
		return -1;
	}
	struct why_group *g = &w->groups[gi];
	struct why_text t;
	struct why_rec r;
	int rc;
	while ((rc = why_lines_next(&l, &t)) == 1) {
		t = as_written(t, ref, scratch, WHY_LOG_LINE_MAX + WHY_UNWRAP_EXTRA);
		fmt->parse(g->state, t.p, t.n, &r);
		on_record(w, gi, &r, t);
	}
	w->long_lines += l.long_lines;
	why_lines_close(&l);
	free(scratch);
	return rc < 0 ? -1 : 0;
}

/* ---- after the last file ---------------------------------------------------------- */

struct id_index {
	const char *id;
	int idx;
};

static int by_id(const void *a, const void *b)
{
	const struct id_index *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c ? c : x->idx - y->idx;
}

static bool weak(const struct why_session *s)
{
	return strcmp(s->reason, "unknown") == 0 ||
	       (strcmp(s->reason, "client_vanished") == 0 && strcmp(s->confidence, "stated") != 0);
}

static void attach(struct why *w, struct why_note *n, int idx)
{
	struct why_session *s = &w->s[idx];
	n->used = true;
	if (n->hint != EVT_R_NONE && n->hint == evt_reason_from_name(s->reason) && n->conf == EVT_CONF_STATED &&
	    strcmp(s->confidence, "stated") != 0) {
		/* AMPS: 70-0011 says slow consumption, 70-0004 then says that is why it disconnects */
		why_copy(s->confidence, sizeof s->confidence, "stated");
		why_evidence(s, "%s  <- the reason", n->text);
	} else if (n->hint != EVT_R_NONE && (weak(s) || why_reason_refines(evt_reason_name(n->hint), s->reason))) {
		why_copy(s->reason, sizeof s->reason, evt_reason_name(n->hint));
		why_copy(s->id, sizeof s->id, evt_reason_id(n->hint));
		why_copy(s->closed_by, sizeof s->closed_by, n->by != EVT_BY_NONE ? evt_party_name(n->by) : "broker");
		why_copy(s->confidence, sizeof s->confidence,
			 n->conf != EVT_CONF_NONE ? evt_confidence_name(n->conf) : "inferred");
		why_evidence(s, "%s  <- the reason", n->text);
	} else {
		why_evidence(s, "%s", n->text);
	}
}

/* How well note <n> fits session <s> in time (smaller is better), or -1 if not at all:
 * a note belongs to the session it falls in, up to a second after its close line. */
static int64_t fit(const struct why_note *n, const struct why_session *s)
{
	if (n->group != s->group || n->ts_us < 0)
		return -1;
	int64_t lo = s->log_start_us >= 0 ? s->log_start_us - 1000000 : INT64_MIN;
	int64_t hi = s->log_end_us >= 0 ? s->log_end_us + 1000000 : INT64_MAX;
	if (n->ts_us < lo || n->ts_us > hi)
		return -1;
	return s->log_end_us >= 0 ? llabs(s->log_end_us - n->ts_us) : INT64_MAX / 2;
}

void why_logs_finish(struct why *w)
{
	/* connections the logs never saw close */
	for (size_t i = 0; i < w->n; i++) {
		struct why_session *s = &w->s[i];
		if (s->group < 0 || !s->open)
			continue;
		struct why_group *g = &w->groups[s->group];
		int64_t newer = -1;
		for (size_t j = 0; j < w->n; j++)
			if (w->s[j].group == s->group && w->s[j].log_start_us > s->log_start_us &&
			    strcmp(w->s[j].client_id, s->client_id) == 0 && (newer < 0 || w->s[j].log_start_us < newer))
				newer = w->s[j].log_start_us;
		char when[40];
		s->open = false;
		why_copy(s->closed_by, sizeof s->closed_by, "unknown");
		if (newer >= 0) {
			why_copy(s->reason, sizeof s->reason, "unknown");
			why_copy(s->id, sizeof s->id, "W2999");
			why_copy(s->confidence, sizeof s->confidence, "unknown");
			why_format_time(newer, when, sizeof when);
			why_evidence(s, "no close line; a newer connection of this client id opened at %s (log time)", when);
		} else {
			why_copy(s->reason, sizeof s->reason, "still_open");
			why_copy(s->id, sizeof s->id, "W2990");
			why_copy(s->closed_by, sizeof s->closed_by, "none");
			why_copy(s->confidence, sizeof s->confidence, "stated");
			s->log_end_us = g->last_ts;
			why_format_time(g->last_ts, when, sizeof when);
			why_evidence(s, "the log ends (%s, log time) with this connection open", when);
		}
	}
	if (w->n_notes == 0)
		return;
	/* notes onto the sessions they speak of */
	struct id_index *ix = malloc((w->n ? w->n : 1) * sizeof *ix);
	if (!ix)
		return;
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->s[i].group >= 0)
			ix[k++] = (struct id_index){ w->s[i].client_id, (int)i };
	qsort(ix, k, sizeof *ix, by_id);
	for (size_t i = 0; i < w->n_notes; i++) {
		struct why_note *n = &w->notes[i];
		int best = -1;
		int64_t best_fit = INT64_MAX;
		if (n->client_id[0]) {
			struct id_index key = { n->client_id, -1 };
			size_t lo = 0, hi = k;
			while (lo < hi) { /* first entry with this id */
				size_t mid = (lo + hi) / 2;
				if (by_id(&ix[mid], &key) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (size_t j = lo; j < k && strcmp(ix[j].id, n->client_id) == 0; j++) {
				int64_t f = fit(n, &w->s[ix[j].idx]);
				if (f >= 0 && f < best_fit)
					best_fit = f, best = ix[j].idx;
			}
		} else {
			for (size_t j = 0; j < k; j++) {
				const struct why_session *s = &w->s[ix[j].idx];
				if (n->addr[0] && strcmp(s->client, n->addr) != 0 && strncmp(s->client, n->addr, strlen(n->addr)) != 0)
					continue;
				int64_t f = fit(n, s);
				if (f >= 0 && f < best_fit)
					best_fit = f, best = ix[j].idx;
			}
		}
		if (best >= 0)
			attach(w, n, best);
	}
	free(ix);
}
