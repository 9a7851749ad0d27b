/* GET /metrics: the Prometheus text exposition (format 0.0.4). Each worker's
 * counters are copied on its own thread (worker_call()) and summed here; the
 * disconnect reasons and policy decisions come from the engine's counters.
 * Names follow the Prometheus conventions: _total for counters, base units
 * (bytes, seconds), one metric family per HELP/TYPE pair. */
#include "proxy/admin.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

const double metric_gap_bounds[METRIC_GAP_BUCKETS] = { 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120 };

void metrics_client_gap(struct worker *w, int64_t gap_us)
{
	double s = (double)gap_us / 1e6;
	unsigned b = 0;
	while (b < METRIC_GAP_BUCKETS && s > metric_gap_bounds[b])
		b++;
	w->m.gap_bucket[b]++;
	w->m.gap_count++;
	w->m.gap_sum += s;
}

struct snapshot {
	struct worker_metrics m;
	unsigned *conns; /* per listener */
	unsigned n_listeners;
	unsigned *worker_conns; /* per worker */
};

static void add_worker(struct worker *w, void *arg)
{
	struct snapshot *s = arg;
	const struct worker_metrics *a = &w->m;
	struct worker_metrics *t = &s->m;
	t->accepted += a->accepted;
	t->refused_disabled += a->refused_disabled;
	t->moved += a->moved;
	t->tls_handshakes += a->tls_handshakes;
	t->tls_failed += a->tls_failed;
	for (int d = 0; d < 2; d++) {
		t->bytes[d] += a->bytes[d];
		for (int k = 0; k < 16; k++)
			t->packets[d][k] += a->packets[d][k];
	}
	for (int b = 0; b <= METRIC_DEPTH_BUCKETS; b++)
		t->depth_bucket[b] += a->depth_bucket[b];
	t->depth_count += a->depth_count;
	t->depth_sum += a->depth_sum;
	for (int b = 0; b <= METRIC_GAP_BUCKETS; b++)
		t->gap_bucket[b] += a->gap_bucket[b];
	t->gap_count += a->gap_count;
	t->gap_sum += a->gap_sum;
	for (struct conn *c = w->conns; c; c = c->next)
		if (!c->closing && c->lst->index < s->n_listeners) {
			s->conns[c->lst->index]++;
			s->worker_conns[w->index]++;
		}
}

static void family(struct evbuffer *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct evbuffer *o, const char *name, const double *bounds, unsigned nb,
		      const uint64_t *buckets, uint64_t count, double sum)
{
	uint64_t cum = 0;
	for (unsigned b = 0; b < nb; b++) {
		cum += buckets[b];
		evbuffer_add_printf(o, "%s_bucket{le=\"%.10g\"} %llu\n", name, bounds[b], (unsigned long long)cum);
	}
	cum += buckets[nb];
	evbuffer_add_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum,
			    name, sum, name, (unsigned long long)count);
}

/* Label values here are our own names (listeners: 1-64 bytes from the
 * config, any bytes): escaped as the format asks. */
static void label_value(struct evbuffer *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(o, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(o, "\\n", 2);
		else
			evbuffer_add(o, s, 1);
	}
}

void metrics_render(struct proxy *px, struct evbuffer *o)
{
	static const char *const types[16] = { "reserved",    "connect",  "connack", "publish", "puback", "pubrec",
					       "pubrel",      "pubcomp",  "subscribe", "suback", "unsubscribe", "unsuback",
					       "pingreq",     "pingresp", "disconnect", "auth" };
	static const char *const dirs[2] = { "client_to_broker", "broker_to_client" };
	struct snapshot s = { .n_listeners = px->n_listeners };
	s.conns = calloc(px->n_listeners ? px->n_listeners : 1, sizeof *s.conns);
	s.worker_conns = calloc(px->n_workers ? px->n_workers : 1, sizeof *s.worker_conns);
	if (!s.conns || !s.worker_conns) {
		free(s.conns);
		free(s.worker_conns);
		return;
	}
	for (unsigned i = 0; i < px->n_workers; i++)
		worker_call(&px->workers[i], add_worker, &s);
	struct engine_stats st;
	engine_stats(px->eng, &st);

	family(o, "wirewarden_connections", "gauge", "Client connections open now, by listener.");
	for (unsigned i = 0; i < px->n_listeners; i++) {
		evbuffer_add_printf(o, "wirewarden_connections{listener=\"");
		label_value(o, px->listeners[i].cfg->name);
		evbuffer_add_printf(o, "\"} %u\n", s.conns[i]);
	}
	family(o, "wirewarden_worker_connections", "gauge", "Client connections open now, by worker thread.");
	for (unsigned i = 0; i < px->n_workers; i++)
		evbuffer_add_printf(o, "wirewarden_worker_connections{worker=\"%u\"} %u\n", i, s.worker_conns[i]);
	family(o, "wirewarden_connections_accepted_total", "counter", "Client connections accepted.");
	evbuffer_add_printf(o, "wirewarden_connections_accepted_total %llu\n", (unsigned long long)s.m.accepted);
	family(o, "wirewarden_connections_moved_total", "counter",
	       "Client connections accepted by one worker and handed to a less loaded one.");
	evbuffer_add_printf(o, "wirewarden_connections_moved_total %llu\n", (unsigned long long)s.m.moved);
	family(o, "wirewarden_connections_refused_total", "counter",
	       "Client connections refused before a session began, by reason.");
	evbuffer_add_printf(o, "wirewarden_connections_refused_total{reason=\"listener_disabled\"} %llu\n",
			    (unsigned long long)s.m.refused_disabled);
	family(o, "wirewarden_disconnects_total", "counter", "Connections ended, by the reason of their disconnect event.");
	for (int r = 1; r < EVT_R__COUNT; r++)
		evbuffer_add_printf(o, "wirewarden_disconnects_total{reason=\"%s\"} %llu\n", evt_reason_name((enum evt_reason)r),
				    (unsigned long long)st.disconnects[r]);
	family(o, "wirewarden_bytes_total", "counter", "Bytes relayed, by direction.");
	for (int d = 0; d < 2; d++)
		evbuffer_add_printf(o, "wirewarden_bytes_total{direction=\"%s\"} %llu\n", dirs[d],
				    (unsigned long long)s.m.bytes[d]);
	family(o, "wirewarden_packets_total", "counter", "MQTT packets decoded, by direction and type.");
	for (int d = 0; d < 2; d++)
		for (int k = 1; k < 16; k++)
			evbuffer_add_printf(o, "wirewarden_packets_total{direction=\"%s\",type=\"%s\"} %llu\n", dirs[d],
					    types[k], (unsigned long long)s.m.packets[d][k]);
	family(o, "wirewarden_client_queue_bytes", "histogram",
	       "Bytes queued by the proxy toward each client, sampled every 250 ms per connection.");
	histogram(o, "wirewarden_client_queue_bytes", metric_depth_bounds, METRIC_DEPTH_BUCKETS, s.m.depth_bucket,
		  s.m.depth_count, s.m.depth_sum);
	family(o, "wirewarden_client_packet_gap_seconds", "histogram",
	       "Time between successive reads of packets from a client (the keep-alive gap).");
	histogram(o, "wirewarden_client_packet_gap_seconds", metric_gap_bounds, METRIC_GAP_BUCKETS, s.m.gap_bucket,
		  s.m.gap_count, s.m.gap_sum);
	family(o, "wirewarden_policy_decisions_total", "counter",
	       "Disconnect decisions by policy and mode: observe (would_disconnect) or enforce.");
	for (int p = 0; p < POL__COUNT; p++) {
		evbuffer_add_printf(o, "wirewarden_policy_decisions_total{policy=\"%s\",mode=\"observe\"} %llu\n",
				    engine_policy_name((enum eng_policy)p), (unsigned long long)st.observed[p]);
		evbuffer_add_printf(o, "wirewarden_policy_decisions_total{policy=\"%s\",mode=\"enforce\"} %llu\n",
				    engine_policy_name((enum eng_policy)p), (unsigned long long)st.enforced[p]);
	}
	family(o, "wirewarden_tls_handshakes_total", "counter", "TLS handshakes, client and broker sides, by result.");
	evbuffer_add_printf(o, "wirewarden_tls_handshakes_total{result=\"ok\"} %llu\n",
			    (unsigned long long)s.m.tls_handshakes);
	evbuffer_add_printf(o, "wirewarden_tls_handshakes_total{result=\"failed\"} %llu\n",
			    (unsigned long long)s.m.tls_failed);
	family(o, "wirewarden_config_reloads_total", "counter", "SIGHUP reloads, by result.");
	evbuffer_add_printf(o, "wirewarden_config_reloads_total{result=\"ok\"} %llu\n",
			    (unsigned long long)__atomic_load_n(&px->reloads, __ATOMIC_RELAXED));
	evbuffer_add_printf(o, "wirewarden_config_reloads_total{result=\"failed\"} %llu\n",
			    (unsigned long long)__atomic_load_n(&px->reload_failures, __ATOMIC_RELAXED));
	free(s.conns);
	free(s.worker_conns);
}
