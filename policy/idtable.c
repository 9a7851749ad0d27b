/* The client-id table (see idtable.h). Linear probing over a power-of-two
 * array of pointers; deletion uses backward-shift so probes stay short. The
 * hash is FNV-1a (common/hash.h): ids are short and the table is capped. */
#include "policy/idtable.h"

#include "common/hash.h"

#include <stdlib.h>
#include <string.h>

int idt_init(struct id_table *t, size_t max_entries)
{
	memset(t, 0, sizeof *t);
	t->max = max_entries ? max_entries : 1000000;
	t->cap = 1024;
	t->slots = calloc(t->cap, sizeof *t->slots);
	return t->slots ? 0 : -1;
}

static void entry_free(struct id_entry *e)
{
	if (e)
		free(e->hist);
	free(e);
}

void idt_fini(struct id_table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		entry_free(t->slots[i]);
	free(t->slots);
	t->slots = NULL;
}

static int grow(struct id_table *t)
{
	size_t ncap = t->cap * 2;
	struct id_entry **ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		struct id_entry *e = t->slots[i];
		if (!e)
			continue;
		size_t j = hash_fnv1a(e->key, e->key_len) & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = e;
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

struct id_entry *idt_get(struct id_table *t, const uint8_t *key, size_t len, bool create)
{
	if (len > IDT_KEY_MAX)
		len = IDT_KEY_MAX;
	size_t i = hash_fnv1a(key, len) & (t->cap - 1);
	for (struct id_entry *e; (e = t->slots[i]) != NULL; i = (i + 1) & (t->cap - 1))
		if (e->key_len == len && memcmp(e->key, key, len) == 0)
			return e;
	if (!create || t->used >= t->max)
		return NULL;
	if ((t->used + 1) * 2 > t->cap) {
		if (grow(t) != 0)
			return NULL;
		return idt_get(t, key, len, create);
	}
	struct id_entry *e = calloc(1, sizeof *e + len);
	if (!e)
		return NULL;
	e->key_len = (uint16_t)len;
	memcpy(e->key, key, len);
	t->slots[i] = e;
	t->used++;
	return e;
}

static void remove_at(struct id_table *t, size_t i)
{
	entry_free(t->slots[i]);
	t->slots[i] = NULL;
	t->used--;
	/* Backward-shift: move later members of the probe run into the hole. */
	for (size_t j = (i + 1) & (t->cap - 1); t->slots[j]; j = (j + 1) & (t->cap - 1)) {
		size_t home = hash_fnv1a(t->slots[j]->key, t->slots[j]->key_len) & (t->cap - 1);
		bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
		if (movable) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
}

void idt_release(struct id_table *t, struct id_entry *e, int64_t now_us, int64_t keep_us)
{
	if (e->refs > 0)
		e->refs--;
	if (e->refs > 0)
		return;
	/* Keep an idle entry while its take-over history or cooldown matters. */
	if (e->cooldown_until_us > now_us || (e->hist && e->hist->n > 0 && e->last_connect_us + keep_us > now_us))
		return;
	size_t i = hash_fnv1a(e->key, e->key_len) & (t->cap - 1);
	for (; t->slots[i]; i = (i + 1) & (t->cap - 1))
		if (t->slots[i] == e) {
			remove_at(t, i);
			return;
		}
}

unsigned idt_takeover(struct id_entry *e, const char *ip, int64_t now_us, int64_t window_us, unsigned *sources)
{
	*sources = 0;
	if (!e->hist && !(e->hist = calloc(1, sizeof *e->hist)))
		return 0; /* out of memory: this take-over goes uncounted */
	struct id_history *hs = e->hist;
	struct id_takeover *h = &hs->at[hs->head];
	h->ts_us = now_us;
	strncpy(h->ip, ip, sizeof h->ip - 1);
	h->ip[sizeof h->ip - 1] = 0;
	hs->head = (hs->head + 1) % IDT_HISTORY;
	if (hs->n < IDT_HISTORY)
		hs->n++;
	unsigned count = 0, distinct = 0;
	const char *seen[IDT_HISTORY];
	for (unsigned k = 0; k < hs->n; k++) {
		const struct id_takeover *x = &hs->at[k];
		if (now_us - x->ts_us > window_us)
			continue;
		count++;
		bool dup = false;
		for (unsigned m = 0; m < distinct; m++)
			dup = dup || strcmp(seen[m], x->ip) == 0;
		if (!dup)
			seen[distinct++] = x->ip;
	}
	*sources = distinct;
	return count;
}

void idt_forget_takeovers(struct id_entry *e)
{
	free(e->hist);
	e->hist = NULL;
}
