/* See shutdown.h. Per broker address: the connections open now (opened
 * minus ended), and the burst of closes under way, if any: when it began and
 * last grew, how many connections were open when it began, how many the
 * broker closed and how many ended otherwise since. The held verdicts of all
 * bursts share one array; a burst's are passed on in the order they came. */
#include "sniff/shutdown.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BROKERS 256
#define MAX_HELD 1024
#define HELD_ID_MAX 256 /* the engine keeps no more of a client id or user name */

struct held {
	struct evt e;
	unsigned broker;
	uint8_t id[HELD_ID_MAX], user[HELD_ID_MAX];
};

struct broker {
	char addr[64];
	uint32_t open;
	bool burst;
	int64_t first_us, last_us;
	uint32_t open_at_start, closed_by_broker, ended_otherwise;
};

struct shutdown_watch {
	const struct evt_sinks *out;
	struct broker brokers[MAX_BROKERS];
	unsigned n_brokers;
	struct held *held;
	unsigned n_held, cap_held; /* grown on demand up to MAX_HELD */
	unsigned bursts;      /* brokers with a burst under way */
	int64_t next_due_us;  /* earliest end of a burst under way */
};

struct shutdown_watch *shutdown_watch_new(const struct evt_sinks *out)
{
	struct shutdown_watch *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->out = out;
	w->next_due_us = INT64_MAX;
	return w;
}

static struct broker *broker_of(struct shutdown_watch *w, const char *addr, bool create)
{
	for (unsigned i = 0; i < w->n_brokers; i++)
		if (strcmp(w->brokers[i].addr, addr) == 0)
			return &w->brokers[i];
	if (!create || addr[0] == '\0' || w->n_brokers == MAX_BROKERS)
		return NULL;
	struct broker *b = &w->brokers[w->n_brokers++];
	memset(b, 0, sizeof *b);
	snprintf(b->addr, sizeof b->addr, "%s", addr);
	return b;
}

static int64_t burst_due(const struct broker *b)
{
	int64_t gap_end = b->last_us + SHUTDOWN_GAP_US, span_end = b->first_us + SHUTDOWN_SPAN_US;
	return gap_end < span_end ? gap_end : span_end;
}

static void recompute_due(struct shutdown_watch *w)
{
	w->next_due_us = INT64_MAX;
	for (unsigned i = 0; i < w->n_brokers; i++)
		if (w->brokers[i].burst && burst_due(&w->brokers[i]) < w->next_due_us)
			w->next_due_us = burst_due(&w->brokers[i]);
}

/* The burst of <b> is over: its held verdicts go on, as server_shutdown when
 * the broker closed every connection it had open, and at least two. */
static void decide(struct shutdown_watch *w, struct broker *b)
{
	unsigned idx = (unsigned)(b - w->brokers), keep = 0;
	bool shutdown = b->closed_by_broker >= 2 && b->closed_by_broker == b->open_at_start && b->ended_otherwise == 0;
	double span_ms = (double)(b->last_us - b->first_us) / 1000.0;

	b->burst = false;
	w->bursts--;
	for (unsigned i = 0; i < w->n_held; i++) {
		struct held *h = &w->held[i];
		if (h->broker != idx) {
			if (keep != i)
				memmove(&w->held[keep], h, sizeof *h);
			keep++;
			continue;
		}
		if (h->e.client_id)
			h->e.client_id = h->id;
		if (h->e.username)
			h->e.username = h->user;
		if (shutdown) {
			/* A connection whose capture lost bytes may have carried the
			 * reason among them (the engine says so in its evidence). */
			bool lost = false;
			for (unsigned k = 0; k < h->e.n_evidence; k++)
				lost |= strncmp(h->e.evidence[k].text, "the capture lost", 16) == 0;
			uint64_t frame = h->e.n_evidence ? h->e.evidence[0].frame : 0;
			if (h->e.n_evidence == EVT_MAX_EVIDENCE)
				h->e.n_evidence--;
			/* A listener (AMPS: a transport) stopped by an operator closes
			 * its connections the same way: said, not guessed at. */
			evt_add_evidence(&h->e, frame,
					 "broker closed %u of %u connections within %.3f ms: a shutdown or restart, "
					 "or its listener stopped (the wire cannot tell which)",
					 b->closed_by_broker, b->open_at_start, span_ms);
			h->e.reason = EVT_R_SERVER_SHUTDOWN;
			h->e.confidence = lost ? EVT_CONF_GUESS : EVT_CONF_INFERRED;
		}
		evt_emit(w->out, &h->e);
	}
	w->n_held = keep;
}

void shutdown_watch_tick(struct shutdown_watch *w, int64_t now_us)
{
	if (now_us <= w->next_due_us)
		return;
	for (unsigned i = 0; i < w->n_brokers; i++)
		if (w->brokers[i].burst && burst_due(&w->brokers[i]) < now_us)
			decide(w, &w->brokers[i]);
	recompute_due(w);
}

static bool hold(struct shutdown_watch *w, const struct broker *b, const struct evt *e)
{
	if (w->n_held == w->cap_held) {
		unsigned ncap = w->cap_held ? w->cap_held * 2 : 8;
		struct held *nh;
		if (w->cap_held == MAX_HELD || (nh = realloc(w->held, ncap * sizeof *nh)) == NULL)
			return false;
		w->held = nh;
		w->cap_held = ncap;
	}
	struct held *h = &w->held[w->n_held++];
	h->e = *e;
	h->broker = (unsigned)(b - w->brokers);
	if (e->client_id) {
		h->e.client_id_len = e->client_id_len < HELD_ID_MAX ? e->client_id_len : HELD_ID_MAX;
		memcpy(h->id, e->client_id, h->e.client_id_len);
	}
	if (e->username) {
		h->e.username_len = e->username_len < HELD_ID_MAX ? e->username_len : HELD_ID_MAX;
		memcpy(h->user, e->username, h->e.username_len);
	}
	return true;
}

void shutdown_watch_sink(void *ctx, const struct evt *e)
{
	struct shutdown_watch *w = ctx;
	struct broker *b;

	shutdown_watch_tick(w, e->ts_us);
	if (e->code == EVT_CONNECTION_OPENED) {
		if ((b = broker_of(w, e->broker, true)) != NULL)
			b->open++;
		evt_emit(w->out, e);
		return;
	}
	if (e->code != EVT_DISCONNECT || (b = broker_of(w, e->broker, false)) == NULL) {
		evt_emit(w->out, e);
		return;
	}
	uint32_t open_before = b->open;
	if (b->open > 0)
		b->open--;
	if (e->closed_by != EVT_BY_BROKER) {
		if (b->burst)
			b->ended_otherwise++;
		evt_emit(w->out, e);
		return;
	}
	if (!b->burst) {
		b->burst = true;
		w->bursts++;
		b->first_us = e->ts_us;
		b->open_at_start = open_before;
		b->closed_by_broker = b->ended_otherwise = 0;
	}
	b->closed_by_broker++;
	if (e->ts_us > b->last_us || b->closed_by_broker == 1)
		b->last_us = e->ts_us;
	recompute_due(w);
	if (e->reason == EVT_R_UNKNOWN && hold(w, b, e))
		return;
	evt_emit(w->out, e);
}

void shutdown_watch_flush(struct shutdown_watch *w)
{
	for (unsigned i = 0; i < w->n_brokers; i++)
		if (w->brokers[i].burst)
			decide(w, &w->brokers[i]);
	w->next_due_us = INT64_MAX;
}

void shutdown_watch_free(struct shutdown_watch *w)
{
	if (w == NULL)
		return;
	shutdown_watch_flush(w);
	free(w->held);
	free(w);
}
