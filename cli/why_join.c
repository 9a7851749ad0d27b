/* Joining: which sessions, from which sources, are one connection.
 *
 * A broker log has its own clock, often local time without a zone. Its offset
 * to the wire is measured on the sessions both saw (same client id and, when
 * the log names it, the same ip:port), as the median difference of their
 * start times; a zoneless log's offset is rounded to the time zone it almost
 * is (a multiple of 15 minutes) when the rest is under the log's resolution.
 * --clock-skew replaces the measurement. Then sessions join when their client
 * id (or ip:port) is the same and their ends (and starts, when known) lie
 * within a few seconds of each other. One session per source per story.
 *
 * A story's headline comes from its most telling source: a broker log that
 * names a specific reason, then a reason code on the wire, then the wire's
 * inference, then the rest. Where sources name different reasons, the story
 * says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/why.h"

#define JOIN_TOL_US 2500000      /* log resolution (1 s) plus scheduling */
#define WIRE_TOL_US 500000       /* two wire sources of one connection end together */
#define STORM_GAP_US 10000000    /* take-overs closer than this are one storm */
#define STORM_MIN 3
#define WHY_OFFSET_SAMPLE 2000
#define SAME_SOCKET_TOL_US 30000000 /* same id from the same ip:port: the close may reach the wire late */

bool why_reason_refines(const char *finer, const char *general)
{
	enum evt_reason f = evt_reason_from_name(finer), g = evt_reason_from_name(general);
	if (f == EVT_R_NONE || g == EVT_R_NONE || f == g)
		return false;
	if (g == EVT_R_CLIENT_DISCONNECT && f == EVT_R_CLIENT_DISCONNECT_WITH_WILL)
		return true; /* mosquitto logs both as "disconnected." */
	if (g == EVT_R_NOT_AUTHORIZED && f == EVT_R_AUTH_FAILED)
		return true; /* MQTT 3.1.1 CONNACK 5 covers both; the wire tells them apart by the credentials sent */
	if (g == EVT_R_NAME_IN_USE && f == EVT_R_SESSION_TAKEN_OVER)
		return true; /* AMPS's "name in use" closes both the refused logon and the one a 02-0025 replaced */
	if (g == EVT_R_UNKNOWN_COMMAND && (f == EVT_R_MALFORMED_PACKET || f == EVT_R_PROTOCOL_ERROR))
		return true; /* "unknown or malformed command" */
	int fc = evt_reason_wire_code(f), gc = evt_reason_wire_code(g);
	/* the general reason is the first row of its code (reasons.def keeps it first) */
	return fc >= 0x80 && fc == gc && evt_reason_from_v5((uint8_t)gc) == g;
}

bool why_reasons_agree(const char *a, const char *b)
{
	return strcmp(a, b) == 0 || why_reason_refines(a, b) || why_reason_refines(b, a);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void fmt_offset(int64_t us, char *buf, size_t cap)
{
	int64_t a = us < 0 ? -us : us;
	if (a % 60000000 == 0 && a >= 60000000)
		snprintf(buf, cap, "%c%02lld:%02lld", us < 0 ? '-' : '+', (long long)(a / 3600000000),
			 (long long)(a / 60000000 % 60));
	else
		snprintf(buf, cap, "%+.3f s", (double)us / 1e6);
}

static void measure_offset(struct why *w, int gi)
{
	struct why_group *g = &w->groups[gi];
	char off[40];
	if (w->skew_given) {
		g->offset_us = w->skew_us;
		fmt_offset(g->offset_us, off, sizeof off);
		snprintf(g->offset_how, sizeof g->offset_how, "clock offset %s applied (--clock-skew)", off);
		return;
	}
	size_t cap = 0, nd = 0, wire = 0;
	for (size_t i = 0; i < w->n; i++) {
		cap += w->s[i].group == gi;
		wire += w->s[i].group < 0 && !w->s[i].storm;
	}
	/* a median needs no more: keeps the pairing below from growing with the square of a big log */
	if (cap > WHY_OFFSET_SAMPLE)
		cap = WHY_OFFSET_SAMPLE;
	if (wire == 0)
		cap = 0;
	int64_t *d = malloc((cap ? cap : 1) * sizeof *d);
	if (!d)
		return;
	const char *how = "client address";
	/* sessions of the same client id from the same ip:port: one connection on both sides */
	for (size_t i = 0; i < w->n; i++) {
		const struct why_session *b = &w->s[i];
		if (nd >= cap)
			break;
		if (b->group != gi || b->log_start_us < 0 || !strchr(b->client, ':'))
			continue;
		for (size_t j = 0; j < w->n; j++) {
			const struct why_session *c = &w->s[j];
			if (c->group >= 0 || c->storm || c->start_us < 0 || strcmp(c->client, b->client) != 0 ||
			    strcmp(c->client_id, b->client_id) != 0)
				continue;
			d[nd++] = c->start_us - b->log_start_us;
			break;
		}
	}
	if (nd == 0) { /* the logs name no ports (AMPS, HiveMQ): the k-th session of an id on each side */
		how = "client id, in order";
		for (size_t i = 0; i < w->n && nd < cap; i++) {
			const struct why_session *b = &w->s[i];
			if (b->group != gi || b->log_start_us < 0)
				continue;
			size_t k = 0;
			for (size_t j = 0; j < i; j++)
				k += w->s[j].group == gi && strcmp(w->s[j].client_id, b->client_id) == 0;
			for (size_t j = 0; j < w->n; j++) {
				const struct why_session *c = &w->s[j];
				if (c->group >= 0 || c->storm || c->start_us < 0 || strcmp(c->client_id, b->client_id) != 0)
					continue;
				if (k-- == 0) {
					d[nd++] = c->start_us - b->log_start_us;
					break;
				}
			}
		}
	}
	if (nd == 0) {
		g->offset_us = 0;
		snprintf(g->offset_how, sizeof g->offset_how, "no session seen by both this log and the wire: %s",
			 g->zoneless_seen ? "its zoneless times are read as UTC" : "its times are taken as they are");
		free(d);
		return;
	}
	qsort(d, nd, sizeof *d, cmp_i64);
	int64_t med = d[nd / 2];
	free(d);
	int64_t zone = (med >= 0 ? med + 450000000 : med - 450000000) / 900000000 * 900000000;
	int64_t rest = med - zone;
	bool whole_zone = g->zoneless_seen && rest > -2000000 && rest < 2000000;
	if (!g->zoneless_seen && med > -2000000 && med < 2000000)
		g->offset_us = 0; /* a zoned log within its resolution of the wire: no skew worth a claim */
	else
		g->offset_us = whole_zone ? zone : med;
	fmt_offset(g->offset_us, off, sizeof off);
	snprintf(g->offset_how, sizeof g->offset_how, "clock offset %s applied (%s%s; median of %zu session%s matched by %s)",
		 off, g->zoneless_seen ? "times without a zone" : "times with a zone",
		 g->zoneless_seen && !whole_zone && g->offset_us ? ", not a whole time zone: the clocks differ" :
		 !g->zoneless_seen && g->offset_us ? ": the clocks differ" : "",
		 nd, nd == 1 ? "" : "s", how);
}

static int rank(const struct why_session *s)
{
	bool weak = strcmp(s->reason, "unknown") == 0 || strcmp(s->reason, "client_vanished") == 0 ||
		    strcmp(s->reason, "still_open") == 0 || s->reason[0] == 0;
	if (s->group >= 0)
		return weak ? 1 : 4;
	if (strcmp(s->confidence, "stated") == 0)
		return 3;
	if (strcmp(s->confidence, "inferred") == 0)
		return 2;
	return 0;
}

/* Whether <p>, a broker log's session, named its reason in words no finer
 * source can improve on: a not_authorized from a log that says a failed
 * authentication apart (RabbitMQ: "authorization failure" against
 * "authentication failure") stays, where the wire only guesses auth_failed
 * from the credentials a CONNACK 5 answered. */
static bool log_said_it(const struct why *w, const struct why_session *p)
{
	return p->group >= 0 && w->groups[p->group].fmt && w->groups[p->group].fmt->says_auth_apart &&
	       strcmp(p->reason, "not_authorized") == 0;
}

/* Whether one of <a>, <b> is a bare ip and the other that ip with a port.
 * (IPv4 only: a bare IPv6 address holds ':' itself, and is not told apart.) */
static bool same_host_portless(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na == 0 || nb == 0 || na == nb)
		return false;
	const char *bare = na < nb ? a : b, *full = na < nb ? b : a;
	size_t n = na < nb ? na : nb;
	return !strchr(bare, ':') && strncmp(bare, full, n) == 0 && full[n] == ':';
}

static bool joinable(const struct why *w, const struct why_story *st, const struct why_session *s)
{
	for (unsigned m = 0; m < st->n; m++) {
		const struct why_session *o = &w->s[st->member[m]];
		if (o->source == s->source || (o->group >= 0 && o->group == s->group))
			return false; /* one session per source (per broker, for rotated logs) */
	}
	const struct why_session *h = &w->s[st->member[0]];
	bool same_addr = h->client[0] && strcmp(h->client, s->client) == 0 && strchr(h->client, ':');
	bool same_id = h->client_id[0] && strcmp(h->client_id, s->client_id) == 0;
	if (!same_id && !same_addr)
		return false;
	if ((h->anonymous || s->anonymous) && !same_addr)
		return false;
	if (h->client[0] && s->client[0] && strchr(h->client, ':') && strchr(s->client, ':') && !same_addr)
		return false; /* both name the connection's port and they differ */
	int64_t tol = h->group < 0 && s->group < 0 ? WIRE_TOL_US : JOIN_TOL_US, end_tol = tol;
	if (same_addr && same_id)
		tol = end_tol = SAME_SOCKET_TOL_US; /* one socket: only the times of its close may differ */
	else if (same_id && same_host_portless(h->client, s->client))
		end_tol = SAME_SOCKET_TOL_US; /* a log that names no ports (mosquitto 1.6): its start still has to agree */
	if (h->end_us >= 0 && s->end_us >= 0 && llabs(h->end_us - s->end_us) > end_tol &&
	    strcmp(h->reason, "still_open") != 0 && strcmp(s->reason, "still_open") != 0)
		return false;
	if (h->start_us >= 0 && s->start_us >= 0 && llabs(h->start_us - s->start_us) > tol)
		return false;
	return true;
}

/* What qsort orders: the key travels with the index (no global for the comparator). */
struct sort_key {
	const char *id; /* NULL: order by time alone */
	int64_t t;
	int idx;
};

static int by_key(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;
	int c = x->id && y->id ? strcmp(x->id, y->id) : 0;
	if (c)
		return c;
	if (x->t != y->t)
		return (x->t > y->t) - (x->t < y->t);
	return x->idx - y->idx;
}

/* Sorts <keys> and writes their indexes, in order, to <ix>. */
static void sort_indexes(struct sort_key *keys, size_t n, int *ix)
{
	qsort(keys, n, sizeof *keys, by_key);
	for (size_t i = 0; i < n; i++)
		ix[i] = keys[i].idx;
}

static const char *who(const struct why_session *s)
{
	return s->group >= 0 ? "broker log" : strcmp(s->kind, "capture") == 0 ? "wire" : "event log";
}

static void disagreements(struct why *w, struct why_story *st)
{
	const struct why_session *p = &w->s[st->primary];
	for (unsigned m = 0; m < st->n && st->n_disagree < 2; m++) {
		const struct why_session *o = &w->s[st->member[m]];
		if (st->member[m] == st->primary || strcmp(o->reason, "still_open") == 0 ||
		    strcmp(p->reason, "still_open") == 0)
			continue;
		bool reason_differs = !why_reasons_agree(o->reason, p->reason) && strcmp(o->reason, "unknown") != 0 &&
				      strcmp(p->reason, "unknown") != 0;
		bool closer_differs = strcmp(o->closed_by, "unknown") != 0 && strcmp(p->closed_by, "unknown") != 0 &&
				      o->closed_by[0] && p->closed_by[0] && strcmp(o->closed_by, p->closed_by) != 0;
		if (!reason_differs && !closer_differs)
			continue;
		const struct why_session *a = p->group >= 0 ? p : o, *b = p->group >= 0 ? o : p;
		/* each side in its own words: the log's sentence, the wire's first two pieces of evidence */
		const char *said = a->n_evidence ? a->evidence[0] : "";
		const char *colon = a->group >= 0 ? strstr(said, ": ") : NULL;
		if (colon && colon - said < 60)
			said = colon + 2; /* the sentence without the log's timestamp */
		char line[WHY_DISAGREE * 2];
		snprintf(line, sizeof line, "%s: %s (\"%.100s\"); %s: %s, closed by %s%s%.110s%s%.110s%s", who(a), a->reason, said,
			 who(b), b->reason, b->closed_by[0] ? b->closed_by : "unknown", b->n_evidence ? " (" : "",
			 b->n_evidence ? b->evidence[0] : "", b->n_evidence > 1 ? "; " : "", b->n_evidence > 1 ? b->evidence[1] : "",
			 b->n_evidence ? ")" : "");
		why_copy(st->disagree[st->n_disagree++], WHY_DISAGREE, line);
	}
}

/* A broker log's close and the wire's end far apart: worth a line. */
static void timing(struct why *w, struct why_story *st)
{
	for (unsigned m = 0; m < st->n && st->n_disagree < 2; m++) {
		const struct why_session *b = &w->s[st->member[m]];
		if (b->group < 0 || b->end_us < 0 || strcmp(b->reason, "still_open") == 0)
			continue;
		for (unsigned k = 0; k < st->n; k++) {
			const struct why_session *c = &w->s[st->member[k]];
			if (c->group >= 0 || c->end_us < 0 || strcmp(c->reason, "still_open") == 0)
				continue;
			int64_t d = c->end_us - b->end_us;
			if (d > 1500000 || d < -1500000) {
				snprintf(st->disagree[st->n_disagree++], WHY_DISAGREE,
					 "timing: the broker log closes it %.1f s %s the connection ends on the wire",
					 (double)(d < 0 ? -d : d) / 1e6, d > 0 ? "before" : "after");
				return;
			}
		}
	}
}

static void add_source(struct why_storm *g, const char *source, const char *kind)
{
	for (unsigned i = 0; i < g->n_sources; i++)
		if (g->sources[i] == source)
			return;
	if (g->n_sources < 6) {
		g->sources[g->n_sources] = source;
		g->kinds[g->n_sources++] = kind;
	}
}

static void add_addr(struct why_storm *g, const char *client)
{
	char addr[64];
	why_copy(addr, sizeof addr, client);
	char *colon = strrchr(addr, ':');
	if (colon && addr[0] != '[')
		*colon = 0; /* the hosts that share the id, not each reconnect's port */
	if (!addr[0])
		return;
	for (unsigned i = 0; i < g->n_addrs; i++)
		if (strcmp(g->addrs[i], addr) == 0)
			return;
	if (g->n_addrs < 4)
		why_copy(g->addrs[g->n_addrs++], sizeof g->addrs[0], addr);
	else
		g->n_addrs_more++;
}

/* Runs of take-overs of one client id become one storm entry. */
static void find_storms(struct why *w)
{
	if (w->n_stories == 0)
		return;
	int *ix = malloc(w->n_stories * sizeof *ix);
	struct sort_key *keys = malloc(w->n_stories * sizeof *keys);
	w->storms = calloc(w->n_stories, sizeof *w->storms);
	if (!ix || !keys || !w->storms) {
		free(ix);
		free(keys);
		return;
	}
	for (size_t i = 0; i < w->n_stories; i++)
		keys[i] = (struct sort_key){ w->s[w->stories[i].primary].client_id, w->stories[i].end_us, (int)i };
	sort_indexes(keys, w->n_stories, ix);
	free(keys);
	for (size_t i = 0; i < w->n_stories;) {
		size_t j = i;
		const struct why_story *a = &w->stories[ix[i]];
		if (strcmp(w->s[a->primary].reason, "session_taken_over") != 0) {
			i++;
			continue;
		}
		while (j + 1 < w->n_stories) {
			const struct why_story *p = &w->stories[ix[j]], *q = &w->stories[ix[j + 1]];
			if (strcmp(w->s[q->primary].client_id, w->s[p->primary].client_id) != 0 ||
			    strcmp(w->s[q->primary].reason, "session_taken_over") != 0 || q->end_us - p->end_us > STORM_GAP_US)
				break;
			j++;
		}
		if (j - i + 1 >= STORM_MIN) {
			struct why_storm *g = &w->storms[w->n_storms];
			why_copy(g->client_id, sizeof g->client_id, w->s[a->primary].client_id);
			g->start_us = INT64_MAX;
			g->end_us = INT64_MIN;
			for (size_t k = i; k <= j; k++) {
				struct why_story *st = &w->stories[ix[k]];
				st->group_of = (int)w->n_storms;
				int64_t t0 = st->start_us >= 0 ? st->start_us : st->end_us;
				g->start_us = t0 < g->start_us ? t0 : g->start_us;
				g->end_us = st->end_us > g->end_us ? st->end_us : g->end_us;
				for (unsigned m = 0; m < st->n; m++) {
					const struct why_session *s = &w->s[st->member[m]];
					add_source(g, s->source, s->kind);
					add_addr(g, s->client);
				}
			}
			g->count = (long long)(j - i + 1);
			/* the engine's own storm events of this id fold in */
			for (size_t s = 0; s < w->n; s++) {
				struct why_session *e = &w->s[s];
				if (e->storm && strcmp(e->client_id, g->client_id) == 0 && e->end_us >= g->start_us - STORM_GAP_US &&
				    e->end_us <= g->end_us + STORM_GAP_US) {
					e->story = -2; /* shown within the group */
					add_source(g, e->source, e->kind);
				}
			}
			w->n_storms++;
		}
		i = j + 1;
	}
	free(ix);
}

/* Whether lone story <a> may take lone story <b>: other source, same client id, same times. */
static bool same_by_id(const struct why *w, const struct why_story *a, const struct why_story *b)
{
	const struct why_session *x = &w->s[a->member[0]], *y = &w->s[b->member[0]];
	if (x->source == y->source || (x->group >= 0 && x->group == y->group) || x->anonymous || y->anonymous)
		return false;
	if (x->end_us < 0 || y->end_us < 0 || llabs(x->end_us - y->end_us) > JOIN_TOL_US)
		return false;
	return x->start_us < 0 || y->start_us < 0 || llabs(x->start_us - y->start_us) <= JOIN_TOL_US;
}

/* Second pass. A proxy (or NAT) between the client and the broker gives the
 * two sides of one connection different addresses: a capture or a proxy's
 * event log on the client side, the broker's log on the other. Stories still
 * of one source join by client id and time alone, and say so. */
static void join_across_addresses(struct why *w)
{
	size_t n = 0;
	for (size_t i = 0; i < w->n_stories; i++)
		n += w->stories[i].n == 1 && w->s[w->stories[i].member[0]].client_id[0];
	if (n < 2)
		return;
	struct sort_key *keys = malloc(n * sizeof *keys);
	int *ix = malloc(n * sizeof *ix);
	if (!keys || !ix) {
		free(keys);
		free(ix);
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < w->n_stories; i++) {
		const struct why_story *st = &w->stories[i];
		if (st->n == 1 && w->s[st->member[0]].client_id[0])
			keys[k++] = (struct sort_key){ w->s[st->member[0]].client_id, w->s[st->member[0]].end_us, (int)i };
	}
	sort_indexes(keys, k, ix);
	for (size_t i = 0; i + 1 < k; i++) {
		struct why_story *a = &w->stories[ix[i]], *b = &w->stories[ix[i + 1]];
		if (a->n != 1 || b->n != 1 || strcmp(w->s[a->member[0]].client_id, w->s[b->member[0]].client_id) != 0 ||
		    !same_by_id(w, a, b))
			continue;
		a->member[a->n++] = b->member[0];
		w->s[b->member[0]].story = ix[i];
		a->by_id_only = true;
		b->n = 0;
		i++;
	}
	free(keys);
	free(ix);
	/* drop the emptied stories */
	size_t out = 0;
	for (size_t i = 0; i < w->n_stories; i++) {
		if (w->stories[i].n == 0)
			continue;
		w->stories[out] = w->stories[i];
		for (unsigned m = 0; m < w->stories[out].n; m++)
			w->s[w->stories[out].member[m]].story = (int)out;
		out++;
	}
	w->n_stories = out;
}

void why_join(struct why *w)
{
	for (int gi = 0; gi < WHY_GROUPS; gi++)
		if (w->groups[gi].used)
			measure_offset(w, gi);
	for (size_t i = 0; i < w->n; i++) {
		struct why_session *s = &w->s[i];
		s->story = -1;
		if (s->group < 0)
			continue;
		int64_t off = w->groups[s->group].offset_us;
		s->start_us = s->log_start_us >= 0 ? s->log_start_us + off : -1;
		s->end_us = s->log_end_us >= 0 ? s->log_end_us + off : -1;
	}
	int *ix = malloc((w->n ? w->n : 1) * sizeof *ix);
	struct sort_key *keys = malloc((w->n ? w->n : 1) * sizeof *keys);
	w->stories = calloc(w->n ? w->n : 1, sizeof *w->stories);
	if (!ix || !keys || !w->stories) {
		free(ix);
		free(keys);
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++)
		if (!w->s[i].storm)
			keys[k++] = (struct sort_key){ NULL, w->s[i].end_us >= 0 ? w->s[i].end_us : w->s[i].start_us, (int)i };
	sort_indexes(keys, k, ix);
	free(keys);
	for (size_t a = 0; a < k; a++) {
		struct why_session *s = &w->s[ix[a]];
		int best = -1;
		int64_t best_d = INT64_MAX;
		/* stories whose sessions ended shortly before this one (the list is in end order) */
		for (size_t b = a; b-- > 0;) {
			const struct why_session *o = &w->s[ix[b]];
			int64_t to = o->end_us >= 0 ? o->end_us : o->start_us, ts = s->end_us >= 0 ? s->end_us : s->start_us;
			if (ts - to > SAME_SOCKET_TOL_US && strcmp(o->reason, "still_open") != 0)
				break;
			struct why_story *st = &w->stories[o->story];
			if (!joinable(w, st, s))
				continue;
			int64_t d = llabs(ts - to) - (strcmp(o->client, s->client) == 0 ? 1000000 : 0);
			/* a tie (a log's whole seconds) goes to the story that ended first: sessions of one id
			 * follow each other, the first to end on one side is the first on the other (the
			 * loop walks back in end order, so <= keeps the earliest) */
			if (d <= best_d)
				best_d = d, best = o->story;
		}
		if (best < 0) {
			best = (int)w->n_stories++;
			w->stories[best].group_of = -1;
		}
		struct why_story *st = &w->stories[best];
		if (st->n < 8)
			st->member[st->n++] = ix[a];
		s->story = best;
	}
	free(ix);
	join_across_addresses(w);
	for (size_t i = 0; i < w->n_stories; i++) {
		struct why_story *st = &w->stories[i];
		st->primary = st->member[0];
		st->start_us = -1;
		st->end_us = -1;
		for (unsigned m = 0; m < st->n; m++) {
			const struct why_session *s = &w->s[st->member[m]];
			const struct why_session *p = &w->s[st->primary];
			if (rank(s) > rank(p) || (rank(s) == rank(p) && p->group >= 0 && s->group < 0))
				st->primary = st->member[m];
			/* the wire's times when it has them: the log's are a second coarse */
			if (s->group < 0 || st->start_us < 0)
				if (s->start_us >= 0 && (st->start_us < 0 || s->group < 0))
					st->start_us = s->start_us;
			if (s->group < 0 || st->end_us < 0)
				if (s->end_us >= 0 && (st->end_us < 0 || s->group < 0))
					st->end_us = s->end_us;
		}
		/* a source that agrees in finer words makes the headline (0x04 over "disconnected.") */
		for (unsigned m = 0; m < st->n; m++) {
			const struct why_session *s = &w->s[st->member[m]];
			if (why_reason_refines(s->reason, w->s[st->primary].reason) && !log_said_it(w, &w->s[st->primary]))
				st->primary = st->member[m];
		}
		disagreements(w, st);
		timing(w, st);
	}
	find_storms(w);
}
