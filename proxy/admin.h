/* The admin API (admin.c: libevent evhttp on its own thread and listener),
 * the ring of recent events it serves (admin_ring.c) and the Prometheus
 * exposition (metrics.c). Nothing here touches a worker's connections: what
 * needs them is run on the worker's thread by worker_call(). Private to
 * proxy/. */
#ifndef WW_PROXY_ADMIN_H
#define WW_PROXY_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "common/config.h"
#include "policy/evt.h"

struct proxy;
struct admin;
struct ring;
struct worker;

/* Starts the API on px->cfg.admin.listen. NULL after printing why. */
struct admin *admin_start(struct proxy *px);
/* Stops its thread and frees it; NULL is fine. */
void admin_stop(struct admin *a);
/* SIGHUP: the token file is read again. */
void admin_reload(struct admin *a, const struct ww_admin_cfg *cfg);

/* The last <cap> events, rendered as JSON (a sink: ring_sink_fn). */
struct ring *ring_new(uint32_t cap);
void ring_free(struct ring *r);
void ring_sink_fn(void *ctx, const struct evt *e);
/* Appends to <out> a JSON array of the last <limit> events, oldest first,
 * of the client id <client> (NULL: every event). */
void ring_dump_json(struct ring *r, const char *client, unsigned limit, struct evbuffer *out);

/* The Prometheus text exposition (format 0.0.4) of every counter. */
void metrics_render(struct proxy *px, struct evbuffer *out);

#endif
