/* Broker shutdowns that the broker does not announce. mosquitto 2.0.11, on
 * SIGTERM, closes every client connection at once and sends no DISCONNECT
 * 0x8B, not even to MQTT 5 clients: each connection alone reads as "the broker
 * closed it, reason unknown". Seen together they say more: when a broker
 * closes every connection it had open (two or more) within a short time, the
 * verdicts that were unknown become server_shutdown, inferred, with the count
 * and the time span as evidence. A single connection closed by the broker is
 * never called a shutdown, and a verdict with a reason of its own keeps it.
 * What the wire cannot tell apart: a listener or an AMPS transport that an
 * operator stops under every client closes the same way; the verdict says
 * "inferred", not "stated", and its evidence says what was seen.
 *
 * This is an event sink that sits between the engine and the sniffer's
 * outputs: it follows connection_opened and disconnect events per broker
 * address, holds back the unknown broker-closed verdicts of a burst of
 * closes until the burst is over (on capture time), then passes them on,
 * relabelled or not. Memory: the brokers followed and the verdicts held are
 * capped; past the caps verdicts pass on unchanged. */
#ifndef WW_SNIFF_SHUTDOWN_H
#define WW_SNIFF_SHUTDOWN_H

#include <stdint.h>

#include "sink/sink.h"

/* Closes by the same broker further apart than this end a burst. */
#define SHUTDOWN_GAP_US INT64_C(200000)
/* A burst longer than this is not one shutdown: it ends there. */
#define SHUTDOWN_SPAN_US INT64_C(2000000)

struct shutdown_watch;

/* A watch that passes every event on to <out> (borrowed: must outlive it).
 * NULL when out of memory. */
struct shutdown_watch *shutdown_watch_new(const struct evt_sinks *out);

/* The sink callback; <ctx> is the watch. */
void shutdown_watch_sink(void *ctx, const struct evt *e);

/* Capture time has reached <now_us>: bursts that ended before it are
 * decided and their verdicts passed on. Cheap enough to call per frame. */
void shutdown_watch_tick(struct shutdown_watch *w, int64_t now_us);

/* The capture ended: every burst is decided and passed on. */
void shutdown_watch_flush(struct shutdown_watch *w);

/* Flushes, then frees <w>; NULL does nothing. */
void shutdown_watch_free(struct shutdown_watch *w);

#endif
