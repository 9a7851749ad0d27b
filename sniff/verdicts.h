/* What `wirewarden sniff` says about a capture, from the engine's events:
 * one verdict per connection (who closed it, why, how sure, on which frames)
 * as JSON lines, a human timeline and per-client summary, and the packet
 * comments that go into a pcapng copy of the capture. */
#ifndef WW_SNIFF_VERDICTS_H
#define WW_SNIFF_VERDICTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sink/sink.h"

struct verdicts_config {
	FILE *json;          /* JSON lines (verdicts and events), or NULL */
	FILE *timeline;      /* human timeline, or NULL */
	bool comments;       /* keep pcapng comments for -w */
	uint32_t max_clients; /* client ids kept for the summary; 0 = 100,000 */
};

struct verdicts;

/* NULL when out of memory. */
struct verdicts *verdicts_new(const struct verdicts_config *cfg);
void verdicts_free(struct verdicts *v);

/* Adds <v>'s sink to <sinks> (the engine's). */
int verdicts_attach(struct verdicts *v, struct evt_sinks *sinks);

/* Prints the per-client summary: sessions and reasons, most troubled first. */
void verdicts_summary(struct verdicts *v, FILE *out);

/* Sorts the collected comments by frame; call once, before lookups. */
void verdicts_comments_done(struct verdicts *v);
/* The comments for <frame> (up to <max>); returns how many. Views stay valid
 * until verdicts_free(). */
unsigned verdicts_comments_for(struct verdicts *v, uint64_t frame, const char **out, unsigned max);

/* Counts for the caller: verdicts written, write failures. */
uint64_t verdicts_count(const struct verdicts *v);
uint64_t verdicts_write_errors(const struct verdicts *v);

#endif
