/* The ring of recent events behind GET /events: a sink that keeps the last N
 * events as JSON text with the client id each is about. Bounded: N entries,
 * each one rendered event (a few hundred bytes). Written by every worker
 * (under the engine lock, which the sinks run under) and read by the admin
 * thread, so it has its own lock. */
#include "proxy/admin.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/engine.h"
#include "sink/sink.h"

struct ring_entry {
	char *json;
	char client_id[SESSION_ID_MAX + 1];
	bool has_id;
};

struct ring {
	pthread_mutex_t lock;
	uint32_t cap, next, n;
	struct ring_entry *e;
};

struct ring *ring_new(uint32_t cap)
{
	struct ring *r = calloc(1, sizeof *r);
	if (!r || !(r->e = calloc(cap, sizeof *r->e))) {
		free(r);
		return NULL;
	}
	r->cap = cap;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->cap; i++)
		free(r->e[i].json);
	free(r->e);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void ring_sink_fn(void *ctx, const struct evt *e)
{
	struct ring *r = ctx;
	char *json = evt_render_json(e);
	if (!json)
		return;
	pthread_mutex_lock(&r->lock);
	struct ring_entry *x = &r->e[r->next];
	free(x->json);
	x->json = json;
	x->has_id = e->client_id != NULL;
	size_t n = x->has_id ? e->client_id_len : 0;
	if (n >= sizeof x->client_id)
		n = sizeof x->client_id - 1;
	if (n)
		memcpy(x->client_id, e->client_id, n);
	x->client_id[n] = 0;
	r->next = (r->next + 1) % r->cap;
	if (r->n < r->cap)
		r->n++;
	pthread_mutex_unlock(&r->lock);
}

void ring_dump_json(struct ring *r, const char *client, unsigned limit, struct evbuffer *out)
{
	evbuffer_add(out, "[", 1);
	pthread_mutex_lock(&r->lock);
	/* Newest first to find the last <limit>, then written oldest first. */
	uint32_t *pick = malloc(sizeof *pick * (r->n ? r->n : 1)), k = 0;
	if (!pick)
		limit = 0;
	for (uint32_t i = 0; i < r->n && k < limit; i++) {
		uint32_t at = (r->next + r->cap - 1 - i) % r->cap;
		if (!client || (r->e[at].has_id && strcmp(r->e[at].client_id, client) == 0))
			pick[k++] = at;
	}
	for (uint32_t j = k; j-- > 0;)
		evbuffer_add_printf(out, "%s%s", j == k - 1 ? "" : ",", r->e[pick[j]].json);
	pthread_mutex_unlock(&r->lock);
	free(pick);
	evbuffer_add(out, "]\n", 2);
}
