/* IPv4 reassembly (see ipfrag.h). Pending datagrams sit on one list, oldest
 * first (timeouts and eviction take the head); lookups walk it, which the cap
 * on pending datagrams bounds (and only fragments pay for it). Each datagram
 * keeps its data in a buffer grown to the highest byte seen, and the ranges
 * it has received, sorted and merged. A datagram given up stays on the list,
 * without its data, until its timeout, so that its later fragments are not
 * taken for a new datagram; one rebuilt stays, with its data, for a second,
 * so that a fragment sent again can be told from one that contradicts it. */
#include "sniff/ipfrag.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_DATAGRAMS 1024u
#define DEFAULT_MAX_BYTES (UINT64_C(16) << 20)
#define DEFAULT_TIMEOUT_US (INT64_C(30) * 1000000) /* Linux's ipfrag_time */
#define MAX_DATA 65515u   /* 65535 minus the smallest IPv4 header */
#define MAX_RANGES 64     /* separate pieces of one datagram */
/* A rebuilt datagram is kept this long (capture time) so that a fragment
 * sent again is known as such, not taken for the start of a new datagram. */
#define DONE_LINGER_US INT64_C(1000000)

struct range {
	uint32_t lo, hi; /* [lo, hi) */
};

struct dgram {
	struct dgram *prev, *next; /* oldest first */
	uint8_t src[4], dst[4];
	uint16_t id;
	uint8_t proto;
	bool dead;                 /* given up: swallow its fragments until the timeout */
	bool done;                 /* rebuilt and handed out at <done_us>; its data is kept a while */
	int64_t done_us;
	int64_t first_us;
	uint8_t hdr[60];
	uint8_t hdr_len;           /* 0 until the first fragment (offset 0) came */
	bool have_last;
	uint32_t total;            /* data length, once the last fragment came */
	uint8_t *data;
	uint32_t cap;
	struct range r[MAX_RANGES];
	unsigned nr;
};

struct ipfrag {
	struct ipfrag_config cfg;
	struct dgram *head, *tail;
	uint32_t n;
	uint64_t bytes;           /* data capacity held */
	uint8_t *out;             /* the last datagram handed out */
	struct ipfrag_stats stats;
};

struct ipfrag *ipfrag_new(const struct ipfrag_config *cfg)
{
	struct ipfrag *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	if (cfg != NULL)
		r->cfg = *cfg;
	if (r->cfg.max_datagrams == 0)
		r->cfg.max_datagrams = DEFAULT_MAX_DATAGRAMS;
	if (r->cfg.max_bytes == 0)
		r->cfg.max_bytes = DEFAULT_MAX_BYTES;
	if (r->cfg.timeout_us <= 0)
		r->cfg.timeout_us = DEFAULT_TIMEOUT_US;
	return r;
}

static void drop_data(struct ipfrag *r, struct dgram *d)
{
	r->bytes -= d->cap;
	free(d->data);
	d->data = NULL;
	d->cap = 0;
}

static void unlink_free(struct ipfrag *r, struct dgram *d)
{
	if (d->prev != NULL) d->prev->next = d->next; else r->head = d->next;
	if (d->next != NULL) d->next->prev = d->prev; else r->tail = d->prev;
	drop_data(r, d);
	r->n--;
	free(d);
}

/* Gives <d> up; <counter> says why. */
static void give_up(struct ipfrag *r, struct dgram *d, uint64_t *counter)
{
	if (d->dead || d->done)
		return;
	d->dead = true;
	r->stats.given_up++;
	(*counter)++;
	drop_data(r, d);
}

static void expire(struct ipfrag *r, int64_t now_us)
{
	while (r->head != NULL && now_us - r->head->first_us > r->cfg.timeout_us) {
		if (!r->head->dead)
			give_up(r, r->head, &r->stats.timeouts);
		unlink_free(r, r->head);
	}
}

static struct dgram *find(struct ipfrag *r, const struct link_tcp *seg)
{
	const struct link_frag *f = &seg->frag;

	for (struct dgram *d = r->head; d != NULL; d = d->next)
		if (d->id == f->id && d->proto == f->proto && memcmp(d->src, seg->src.b, 4) == 0 &&
		    memcmp(d->dst, seg->dst.b, 4) == 0)
			return d;
	return NULL;
}

static struct dgram *create(struct ipfrag *r, const struct link_tcp *seg, int64_t now_us)
{
	struct dgram *d;

	if (r->n >= r->cfg.max_datagrams) { /* make room: the oldest goes */
		give_up(r, r->head, &r->stats.evicted);
		unlink_free(r, r->head);
	}
	if ((d = calloc(1, sizeof *d)) == NULL)
		return NULL;
	memcpy(d->src, seg->src.b, 4);
	memcpy(d->dst, seg->dst.b, 4);
	d->id = seg->frag.id;
	d->proto = seg->frag.proto;
	d->first_us = now_us;
	d->prev = r->tail;
	if (r->tail != NULL) r->tail->next = d; else r->head = d;
	r->tail = d;
	r->n++;
	return d;
}

/* Room for data up to byte <end> in <d>, within the overall cap (older
 * datagrams are given up to make it). */
static bool reserve(struct ipfrag *r, struct dgram *d, uint32_t end)
{
	uint32_t want = d->cap ? d->cap : 2048;
	uint8_t *nd;

	if (end <= d->cap)
		return true;
	while (want < end)
		want *= 2;
	if (want > MAX_DATA)
		want = MAX_DATA;
	while (r->bytes - d->cap + want > r->cfg.max_bytes && r->head != d) {
		give_up(r, r->head, &r->stats.evicted);
		unlink_free(r, r->head);
	}
	if (r->bytes - d->cap + want > r->cfg.max_bytes || (nd = realloc(d->data, want)) == NULL)
		return false;
	r->bytes = r->bytes - d->cap + want;
	d->data = nd;
	d->cap = want;
	return true;
}

/* Adds [lo, hi) with bytes <src> to <d>. false: the bytes disagree with
 * ones already held for the same offsets, or there are too many pieces. */
static bool add_range(struct dgram *d, uint32_t lo, uint32_t hi, const uint8_t *src)
{
	unsigned i, j;

	for (i = 0; i < d->nr; i++) {
		uint32_t a = d->r[i].lo > lo ? d->r[i].lo : lo, b = d->r[i].hi < hi ? d->r[i].hi : hi;
		if (a < b && memcmp(d->data + a, src + (a - lo), b - a) != 0)
			return false;
	}
	memcpy(d->data + lo, src, hi - lo);
	/* Insert in order, then merge what touches or overlaps. */
	for (i = 0; i < d->nr && d->r[i].lo < lo; i++)
		;
	if (d->nr == MAX_RANGES)
		return false;
	memmove(&d->r[i + 1], &d->r[i], (d->nr - i) * sizeof d->r[0]);
	d->r[i] = (struct range){ lo, hi };
	d->nr++;
	for (i = 0, j = 1; j < d->nr; j++) {
		if (d->r[j].lo <= d->r[i].hi) {
			if (d->r[j].hi > d->r[i].hi)
				d->r[i].hi = d->r[j].hi;
		} else {
			d->r[++i] = d->r[j];
		}
	}
	d->nr = i + 1;
	return true;
}

/* Feeds the fragment in <seg>; returns the whole datagram, or an empty cursor. */
static struct cursor feed(struct ipfrag *r, const struct link_tcp *seg, int64_t now_us)
{
	const struct link_frag *f = &seg->frag;
	struct cursor none = cursor_make(NULL, 0);
	struct dgram *d;
	uint32_t end = f->offset + f->data_len;

	r->stats.fragments++;
	expire(r, now_us);
	if ((d = find(r, seg)) != NULL && d->done && now_us - d->done_us > DONE_LINGER_US) {
		unlink_free(r, d); /* the identification is used again */
		d = NULL;
	}
	if (d == NULL && (d = create(r, seg, now_us)) == NULL)
		return none;
	if (d->dead)
		return none;
	if (d->done) { /* a copy of a fragment of a datagram already rebuilt */
		if (cursor_left(&f->data) == f->data_len && end <= d->total &&
		    memcmp(d->data + f->offset, f->data.p, f->data_len) == 0)
			r->stats.duplicates++;
		else
			r->stats.contradicted++; /* the rebuilt datagram stands: it was handed out */
		return none;
	}
	if (cursor_left(&f->data) < f->data_len) {
		give_up(r, d, &r->stats.cut);
		return none;
	}
	/* RFC 791: every fragment but the last carries a multiple of 8 bytes. */
	if (end > MAX_DATA || (f->more && f->data_len % 8 != 0) || (!f->more && d->have_last && d->total != end) ||
	    (d->have_last && end > d->total) || (!f->more && end < (d->nr ? d->r[d->nr - 1].hi : 0))) {
		give_up(r, d, &r->stats.conflicts);
		return none;
	}
	if (!f->more) {
		d->have_last = true;
		d->total = end;
	}
	if (f->offset == 0 && d->hdr_len == 0 && cursor_left(&f->header) <= sizeof d->hdr) {
		d->hdr_len = (uint8_t)cursor_left(&f->header);
		memcpy(d->hdr, f->header.p, d->hdr_len);
	}
	if (end > f->offset) {
		if (!reserve(r, d, end)) {
			give_up(r, d, &r->stats.evicted);
			return none;
		}
		if (!add_range(d, f->offset, end, f->data.p)) {
			give_up(r, d, &r->stats.conflicts);
			return none;
		}
	}
	if (!d->have_last || d->hdr_len == 0 || d->nr != 1 || d->r[0].lo != 0 || d->r[0].hi != d->total ||
	    d->hdr_len + d->total > 65535)
		return none;
	/* Whole: the first fragment's header, with the datagram's length and no
	 * fragment fields (Don't Fragment kept). */
	uint32_t len = d->hdr_len + d->total;
	uint8_t *o = realloc(r->out, len);
	if (o == NULL) {
		give_up(r, d, &r->stats.evicted);
		return none;
	}
	r->out = o;
	memcpy(o, d->hdr, d->hdr_len);
	memcpy(o + d->hdr_len, d->data, d->total);
	o[2] = (uint8_t)(len >> 8);
	o[3] = (uint8_t)len;
	o[6] &= 0x40;
	o[7] = 0;
	r->stats.reassembled++;
	d->done = true;
	d->done_us = now_us;
	return cursor_make(o, len);
}

enum link_status ipfrag_link_decode(struct ipfrag *r, int dlt, struct cursor frame, int64_t ts_us,
				    struct link_tcp *out, const char **why)
{
	enum link_status st = link_decode(dlt, frame, out, why);
	struct cursor whole;

	if (st != LINK_FRAGMENT || r == NULL || out->frag.family != 4)
		return st;
	whole = feed(r, out, ts_us);
	if (cursor_empty(&whole))
		return LINK_FRAGMENT;
	return link_decode_ip(whole, out, why);
}

void ipfrag_finish(struct ipfrag *r)
{
	while (r->head != NULL) { /* done ones are not counted */
		give_up(r, r->head, &r->stats.timeouts);
		unlink_free(r, r->head);
	}
}

const struct ipfrag_stats *ipfrag_stats(const struct ipfrag *r)
{
	return &r->stats;
}

void ipfrag_free(struct ipfrag *r)
{
	if (r == NULL)
		return;
	while (r->head != NULL)
		unlink_free(r, r->head);
	free(r->out);
	free(r);
}
