/* `why --summary`: per source, disconnects counted by reason and the clients
 * that disconnect most. The per-client table is bounded (open addressing over
 * a fixed number of slots); clients beyond it are counted together. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/why.h"
#include "common/hash.h"

#define SUM_SOURCES 64
#define SUM_SLOTS 65536 /* power of two */
#define SUM_TOP 10

struct sum_client {
	uint64_t h;
	long long n;
	char id[96];
};

struct sum_source {
	const char *source, *kind;
	long long by_reason[EVT_R__COUNT];
	long long total, other_clients;
	struct sum_client *slots;
	size_t used;
};

struct why_summary {
	struct sum_source src[SUM_SOURCES];
	size_t n;
};

struct why_summary *why_summary_new(void)
{
	return calloc(1, sizeof(struct why_summary));
}

void why_summary_free(struct why_summary *sum)
{
	if (!sum)
		return;
	for (size_t i = 0; i < sum->n; i++)
		free(sum->src[i].slots);
	free(sum);
}

static struct sum_source *source_of(struct why_summary *sum, const char *source, const char *kind)
{
	for (size_t i = 0; i < sum->n; i++)
		if (sum->src[i].source == source)
			return &sum->src[i];
	if (sum->n == SUM_SOURCES)
		return NULL;
	struct sum_source *s = &sum->src[sum->n];
	s->slots = calloc(SUM_SLOTS, sizeof *s->slots);
	if (!s->slots)
		return NULL;
	sum->n++;
	s->source = source;
	s->kind = kind;
	return s;
}

void why_summary_count(struct why_summary *sum, const char *source, const char *kind, const char *client_id,
		       size_t id_len, enum evt_reason reason)
{
	struct sum_source *s = sum ? source_of(sum, source, kind) : NULL;
	if (!s)
		return;
	if (reason <= EVT_R_NONE || reason >= EVT_R__COUNT)
		reason = EVT_R_UNKNOWN;
	s->by_reason[reason]++;
	s->total++;
	if (id_len >= sizeof s->slots[0].id)
		id_len = sizeof s->slots[0].id - 1;
	uint64_t h = hash_fnv1a(client_id, id_len) | 1; /* 0 marks an empty slot */
	if (s->used >= SUM_SLOTS / 2) { /* keep probes short: the rest count as one */
		for (size_t i = h & (SUM_SLOTS - 1), k = 0; k < 16; i = (i + 1) & (SUM_SLOTS - 1), k++)
			if (s->slots[i].h == h && strncmp(s->slots[i].id, client_id, id_len) == 0 && !s->slots[i].id[id_len]) {
				s->slots[i].n++;
				return;
			}
		s->other_clients++;
		return;
	}
	for (size_t i = h & (SUM_SLOTS - 1);; i = (i + 1) & (SUM_SLOTS - 1)) {
		struct sum_client *c = &s->slots[i];
		if (c->h == 0) {
			c->h = h;
			memcpy(c->id, client_id, id_len);
			c->id[id_len] = 0;
			c->n = 1;
			s->used++;
			return;
		}
		if (c->h == h && strncmp(c->id, client_id, id_len) == 0 && !c->id[id_len]) {
			c->n++;
			return;
		}
	}
}

/* The <SUM_TOP> clients with the most disconnects, most first. */
static size_t top(const struct sum_source *s, const struct sum_client **out)
{
	size_t n = 0;
	for (size_t i = 0; i < SUM_SLOTS; i++) {
		const struct sum_client *c = &s->slots[i];
		if (!c->h)
			continue;
		size_t at = n < SUM_TOP ? n++ : SUM_TOP;
		if (at == SUM_TOP && c->n <= out[SUM_TOP - 1]->n)
			continue;
		if (at == SUM_TOP)
			at = SUM_TOP - 1;
		while (at > 0 && (out[at - 1]->n < c->n || (out[at - 1]->n == c->n && strcmp(out[at - 1]->id, c->id) > 0))) {
			out[at] = out[at - 1];
			at--;
		}
		out[at] = c;
	}
	return n;
}

void why_summary_print(const struct why_summary *sum, bool json, FILE *out)
{
	for (size_t i = 0; sum && i < sum->n; i++) {
		const struct sum_source *s = &sum->src[i];
		const struct sum_client *best[SUM_TOP];
		size_t nb = top(s, best);
		/* reasons, most first */
		enum evt_reason order[EVT_R__COUNT];
		size_t nr = 0;
		for (int r = 1; r < EVT_R__COUNT; r++)
			if (s->by_reason[r]) {
				size_t at = nr++;
				while (at > 0 && s->by_reason[order[at - 1]] < s->by_reason[r]) {
					order[at] = order[at - 1];
					at--;
				}
				order[at] = (enum evt_reason)r;
			}
		if (json) {
			json_t *o = json_object(), *reasons = json_object(), *clients = json_array();
			json_object_set_new(o, "type", json_string("summary"));
			json_object_set_new(o, "source", json_string(s->source));
			json_object_set_new(o, "kind", json_string(s->kind));
			json_object_set_new(o, "disconnects", json_integer(s->total));
			for (size_t k = 0; k < nr; k++)
				json_object_set_new(reasons, evt_reason_name(order[k]), json_integer(s->by_reason[order[k]]));
			for (size_t k = 0; k < nb; k++) {
				json_t *c = json_object();
				json_object_set_new(c, "client_id", json_string(best[k]->id));
				json_object_set_new(c, "disconnects", json_integer(best[k]->n));
				json_array_append_new(clients, c);
			}
			json_object_set_new(o, "reasons", reasons);
			json_object_set_new(o, "top_clients", clients);
			char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (line)
				fprintf(out, "%s\n", line);
			free(line);
			json_decref(o);
			continue;
		}
		fprintf(out, "%s%s (%s): %lld disconnect%s\n", i ? "\n" : "", s->source, s->kind, s->total,
			s->total == 1 ? "" : "s");
		for (size_t k = 0; k < nr; k++)
			fprintf(out, "  %8lld  %-30s %s\n", s->by_reason[order[k]], evt_reason_name(order[k]),
				evt_reason_id(order[k]));
		if (nb)
			fprintf(out, "  clients that disconnect most:\n");
		for (size_t k = 0; k < nb; k++)
			fprintf(out, "  %8lld  %s\n", best[k]->n, best[k]->id[0] ? best[k]->id : "(no client id)");
		if (s->other_clients)
			fprintf(out, "  %8lld  (clients beyond the table, counted together)\n", s->other_clients);
	}
}
