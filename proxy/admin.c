/* The admin API: libevent's evhttp on a thread and event base of its own,
 * listening where admin.listen says (loopback unless a token is set, which
 * the config loader enforces). Every request but /healthz carries
 * "Authorization: Bearer <token>" when admin.token_file is set.
 *
 *   GET  /healthz                     200 while the process runs
 *   GET  /readyz                      200 when every upstream accepts a connection (TLS: verified), else 503;
 *                                     all probed at once within READYZ_MS
 *   GET  /metrics                     Prometheus text (metrics.c)
 *   GET  /clients                     every connection's session watch, JSON
 *   GET  /clients/{client_id}         the connections of one client id (404: none)
 *   POST /clients/{client_id}/disconnect        ends them: admin_disconnect (v5 0x98)
 *   POST /listeners/{name}/disable | /enable    listener_disabled: its clients are
 *                                     disconnected, its sockets closed until enabled
 *   GET  /events?client=ID&limit=N    the last N events (of one client id), JSON
 *
 * What touches connections runs on their worker's thread (worker_call()). */
#include "proxy/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "proxy/proxy.h"
#include "proxy/tls.h"
#include "sink/sink.h"

struct admin {
	struct proxy *px;
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* token */
	char token[512];
	size_t token_len;     /* 0: no token asked */
};

/* The first line of <path>, without surrounding white space. */
static int read_token(const char *path, char *out, size_t cap, size_t *len)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	if (!fgets(out, (int)cap, fp))
		out[0] = 0;
	fclose(fp);
	size_t n = strcspn(out, "\r\n");
	while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = 0;
	size_t skip = strspn(out, " \t");
	memmove(out, out + skip, n - skip + 1);
	*len = n - skip;
	return *len ? 0 : -1;
}

void admin_reload(struct admin *a, const struct ww_admin_cfg *cfg)
{
	char tok[512];
	size_t n = 0;
	if (cfg->token_file && read_token(cfg->token_file, tok, sizeof tok, &n) != 0) {
		fprintf(stderr, "wirewarden proxy: admin: cannot read a token from %s: the old token stays\n", cfg->token_file);
		return;
	}
	pthread_mutex_lock(&a->lock);
	memcpy(a->token, tok, n);
	a->token[n] = 0;
	a->token_len = n;
	pthread_mutex_unlock(&a->lock);
}

static void reply(struct evhttp_request *req, int code, const char *why, const char *type, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, why, body);
}

static void reply_json(struct evhttp_request *req, int code, const char *why, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (b) {
		evbuffer_add_printf(b, "%s\n", s ? s : "null");
		reply(req, code, why, "application/json", b);
		evbuffer_free(b);
	}
	free(s);
	json_decref(j);
}

static void reply_error(struct evhttp_request *req, int code, const char *why, const char *msg)
{
	reply_json(req, code, why, json_pack("{s:s}", "error", msg));
}

static bool authorized(struct admin *a, struct evhttp_request *req)
{
	pthread_mutex_lock(&a->lock);
	bool ok = a->token_len == 0;
	if (!ok) {
		const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
		ok = h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == a->token_len &&
		     CRYPTO_memcmp(h + 7, a->token, a->token_len) == 0;
	}
	pthread_mutex_unlock(&a->lock);
	return ok;
}

/* ---- the session watch as JSON (on the worker's thread) ---- */

/* A string from bytes that may not be UTF-8: as is when valid, else hex. */
static json_t *bytes_json(const void *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	if (j)
		return j;
	char hex[2 * 256 + 1];
	size_t k = 0;
	for (size_t i = 0; i < n && k + 2 < sizeof hex; i++)
		k += (size_t)snprintf(hex + k, sizeof hex - k, "%02x", ((const unsigned char *)p)[i]);
	return json_pack("{s:s}", "hex", hex);
}

static json_t *ts_json(int64_t us)
{
	char ts[EVT_TS_MAX];
	return us ? json_stringn(ts, evt_format_ts(us, ts, sizeof ts)) : json_null();
}

static json_t *conn_json(struct conn *c, int64_t now)
{
	const struct session *s = &c->s;
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "conn", json_integer((json_int_t)s->conn_id));
	json_object_set_new(o, "listener", json_string(c->lst->cfg->name));
	json_object_set_new(o, "client_id", s->connect_seen ? bytes_json(s->id, s->id_len) : json_null());
	json_object_set_new(o, "username", s->credentials && s->user_len ? bytes_json(s->user, s->user_len) : json_null());
	json_object_set_new(o, "identity", s->identity ? json_string(s->identity) : json_null());
	json_object_set_new(o, "client", json_string(s->client));
	json_object_set_new(o, "broker", json_string(s->broker));
	json_object_set_new(o, "protocol", json_string(s->protocol == PROTO_ID_AMPS ? "amps" : "mqtt"));
	json_object_set_new(o, "level", s->level ? json_integer(s->level) : json_null());
	json_object_set_new(o, "tls", json_boolean(c->tls_side[PROTO_C2S]));
	json_object_set_new(o, "state", json_string(c->closing ? "closing" : evt_phase_name(s->phase) ? evt_phase_name(s->phase) : "connecting"));
	json_object_set_new(o, "keepalive_s", json_integer(s->keepalive_s));
	json_object_set_new(o, "last_heartbeat_age_s",
			    s->last_client_us ? json_real((double)(now - s->last_client_us) / 1e6) : json_null());
	json_object_set_new(o, "inflight", json_pack("{s:i,s:i}", "client_to_broker", (int)s->inflight_c2s,
						     "broker_to_client", (int)s->inflight_s2c));
	json_object_set_new(o, "receive_maximum", json_pack("{s:i,s:i}", "client", (int)s->recv_max_client, "broker",
							    (int)s->recv_max_broker));
	json_object_set_new(o, "buffer_depth", json_integer((json_int_t)relay_client_depth(c)));
	json_object_set_new(o, "bytes", json_pack("{s:I,s:I}", "client_to_broker", (json_int_t)s->bytes_c2s,
						  "broker_to_client", (json_int_t)s->bytes_s2c));
	json_object_set_new(o, "opened", ts_json(s->opened_us));
	json_object_set_new(o, "connected_since", ts_json(s->connected_us));
	if (c->cert_not_after_us)
		json_object_set_new(o, "certificate_not_after", ts_json(c->cert_not_after_us));
	return o;
}

static bool id_is(const struct conn *c, const char *id)
{
	return c->s.connect_seen && c->s.id_len == strlen(id) && (c->s.id_len == 0 || memcmp(c->s.id, id, c->s.id_len) == 0);
}

struct list_call { const char *id; json_t *arr; unsigned n; char who[64]; };

static void list_clients(struct worker *w, void *arg)
{
	struct list_call *lc = arg;
	int64_t now = proxy_now_us();
	for (struct conn *c = w->conns; c; c = c->next)
		if (!c->reaping && (!lc->id || id_is(c, lc->id)))
			json_array_append_new(lc->arr, conn_json(c, now));
}

static void disconnect_clients(struct worker *w, void *arg)
{
	struct list_call *lc = arg;
	for (struct conn *c = w->conns; c; c = c->next) {
		if (c->closing || !id_is(c, lc->id))
			continue;
		struct evt e = engine_evt(&c->s, EVT_ADMIN_DISCONNECT_REQUESTED, proxy_now_us());
		evt_set_detail(&e, "POST /clients/%s/disconnect from %s", lc->id, lc->who);
		engine_emit(w->px->eng, &e);
		worker_end_conn(c, EVT_R_ADMIN_DISCONNECT, "disconnected by the admin API");
		lc->n++;
	}
}

struct listener_call { unsigned idx; bool open; unsigned n; bool failed; };

static void set_listener(struct worker *w, void *arg)
{
	struct listener_call *lc = arg;
	if (worker_listener_set(w, lc->idx, lc->open) != 0)
		lc->failed = true;
	if (lc->open)
		return;
	char why[96];
	snprintf(why, sizeof why, "listener %s disabled by the admin API", w->px->listeners[lc->idx].cfg->name);
	for (struct conn *c = w->conns; c; c = c->next)
		if (!c->closing && c->lst->index == lc->idx) {
			worker_end_conn(c, EVT_R_LISTENER_DISABLED, why);
			lc->n++;
		}
}

/* ---- routes ---- */

static void get_clients(struct admin *a, struct evhttp_request *req, const char *id)
{
	struct list_call lc = { .id = id, .arr = json_array() };
	for (unsigned i = 0; i < a->px->n_workers; i++)
		worker_call(&a->px->workers[i], list_clients, &lc);
	if (id && json_array_size(lc.arr) == 0) {
		json_decref(lc.arr);
		reply_error(req, 404, "Not Found", "no connection with this client id");
		return;
	}
	if (id)
		reply_json(req, 200, "OK", json_pack("{s:s,s:o}", "client_id", id, "connections", lc.arr));
	else
		reply_json(req, 200, "OK", lc.arr);
}

static void post_disconnect(struct admin *a, struct evhttp_request *req, const char *id)
{
	struct list_call lc = { .id = id };
	char *host = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
	snprintf(lc.who, sizeof lc.who, "%s:%u", host ? host : "?", port);
	for (unsigned i = 0; i < a->px->n_workers; i++)
		worker_call(&a->px->workers[i], disconnect_clients, &lc);
	if (lc.n == 0)
		reply_error(req, 404, "Not Found", "no connection with this client id");
	else
		reply_json(req, 200, "OK", json_pack("{s:s,s:i}", "client_id", id, "disconnected", (int)lc.n));
}

static void post_listener(struct admin *a, struct evhttp_request *req, const char *name, bool enable)
{
	struct proxy *px = a->px;
	struct proxy_listener *l = NULL;
	for (unsigned i = 0; i < px->n_listeners; i++)
		if (strcmp(px->listeners[i].cfg->name, name) == 0)
			l = &px->listeners[i];
	if (!l) {
		reply_error(req, 404, "Not Found", "no listener with this name");
		return;
	}
	if (enable && __atomic_load_n(&px->draining, __ATOMIC_ACQUIRE)) {
		reply_error(req, 409, "Conflict", "shutting down: listeners stay closed");
		return;
	}
	if (enable)
		__atomic_store_n(&l->disabled, false, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&l->disabled, true, __ATOMIC_RELEASE);
	struct listener_call lc = { .idx = l->index, .open = enable };
	for (unsigned i = 0; i < px->n_workers; i++)
		worker_call(&px->workers[i], set_listener, &lc);
	struct evt e = evt_make(enable ? EVT_LISTENER_ENABLED : EVT_LISTENER_DISABLED, 0, proxy_now_us());
	evt_set_detail(&e, "%s", name);
	if (!enable)
		e.count = lc.n;
	engine_emit(px->eng, &e);
	if (lc.failed) {
		reply_error(req, 500, "Internal Server Error", "could not open the listening socket again (see the log)");
		return;
	}
	reply_json(req, 200, "OK", json_pack("{s:s,s:s,s:i}", "listener", name, "state", enable ? "enabled" : "disabled",
					     "disconnected", (int)lc.n));
}

static void get_events(struct admin *a, struct evhttp_request *req, const struct evhttp_uri *uri)
{
	struct evkeyvalq q = { 0 };
	const char *query = evhttp_uri_get_query(uri);
	if (query && evhttp_parse_query_str(query, &q) != 0) {
		reply_error(req, 400, "Bad Request", "bad query string");
		return;
	}
	const char *client = evhttp_find_header(&q, "client"), *lim = evhttp_find_header(&q, "limit");
	unsigned long limit = 100;
	if (lim) {
		char *end;
		errno = 0;
		limit = strtoul(lim, &end, 10);
		if (errno || end == lim || *end || limit == 0 || limit > a->px->cfg.admin.events_ring) {
			evhttp_clear_headers(&q);
			reply_error(req, 400, "Bad Request", "limit: a whole number from 1 to admin.events_ring");
			return;
		}
	}
	struct evbuffer *b = evbuffer_new();
	if (b) {
		ring_dump_json(a->px->ring, client, (unsigned)limit, b);
		reply(req, 200, "OK", "application/json", b);
		evbuffer_free(b);
	}
	evhttp_clear_headers(&q);
}

/* Probes every listener's upstream at once, within one budget of
 * READYZ_MS: connects all, waits for them together, then does the TLS
 * handshakes that are due on what is left of it. One after another, a
 * proxy with several unreachable brokers held its admin thread (and every
 * /metrics scrape behind it) for a second per broker, longer than a
 * Kubernetes probe waits by default. <why[i]> is "" when listener i's is
 * reachable. */
#define READYZ_MS 1000
#define READYZ_WHY 128

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe_upstreams(const struct proxy *px, char (*why)[READYZ_WHY])
{
	unsigned n = px->n_listeners;
	int *fds = calloc(n ? n : 1, sizeof *fds);
	struct pollfd *pf = calloc(n ? n : 1, sizeof *pf);
	if (!fds || !pf) {
		for (unsigned i = 0; i < n; i++)
			snprintf(why[i], READYZ_WHY, "out of memory");
		free(fds);
		free(pf);
		return;
	}
	int64_t deadline = mono_ms() + READYZ_MS;
	for (unsigned i = 0; i < n; i++) {
		const struct proxy_listener *l = &px->listeners[i];
		const struct sockaddr *sa = (const struct sockaddr *)&l->upstream_addr;
		why[i][0] = '\0';
		fds[i] = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		pf[i] = (struct pollfd){ .fd = -1 };
		if (fds[i] < 0)
			snprintf(why[i], READYZ_WHY, "%s", strerror(errno));
		else if (connect(fds[i], sa, l->upstream_len) != 0) {
			if (errno == EINPROGRESS)
				pf[i] = (struct pollfd){ .fd = fds[i], .events = POLLOUT };
			else
				snprintf(why[i], READYZ_WHY, "%s", strerror(errno));
		}
	}
	for (;;) { /* until every connect has an answer or the budget is spent */
		unsigned waiting = 0;
		for (unsigned i = 0; i < n; i++)
			waiting += pf[i].fd >= 0;
		int64_t left = deadline - mono_ms();
		if (!waiting || left <= 0)
			break;
		if (poll(pf, n, (int)left) < 0 && errno != EINTR)
			break;
		for (unsigned i = 0; i < n; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			int err = 0;
			socklen_t el = sizeof err;
			if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el) != 0)
				err = errno;
			if (err)
				snprintf(why[i], READYZ_WHY, "%s", strerror(err));
			pf[i].fd = -1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (pf[i].fd >= 0)
			snprintf(why[i], READYZ_WHY, "%s", strerror(ETIMEDOUT));
		struct proxy_tls *tls = px->listeners[i].upstream_tls;
		if (fds[i] >= 0 && !why[i][0] && tls) {
			int64_t left = deadline - mono_ms();
			int fl = fcntl(fds[i], F_GETFL);
			fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
			if (left <= 0 || !tls_probe(tls, fds[i], (int)left, why[i], READYZ_WHY)) {
				if (!why[i][0])
					snprintf(why[i], READYZ_WHY, "TLS handshake: %s", strerror(ETIMEDOUT));
			}
		}
		if (fds[i] >= 0)
			close(fds[i]);
	}
	free(fds);
	free(pf);
}

static void get_readyz(struct admin *a, struct evhttp_request *req)
{
	struct proxy *px = a->px;
	bool ready = !__atomic_load_n(&px->draining, __ATOMIC_ACQUIRE);
	char (*why)[READYZ_WHY] = calloc(px->n_listeners ? px->n_listeners : 1, sizeof *why);
	if (!why) {
		reply_error(req, 500, "Internal Server Error", "out of memory");
		return;
	}
	probe_upstreams(px, why);
	json_t *ups = json_object();
	for (unsigned i = 0; i < px->n_listeners; i++) {
		bool ok = !why[i][0];
		json_object_set_new(ups, px->listeners[i].cfg->name, json_string(ok ? "reachable" : why[i]));
		ready = ready && ok;
	}
	free(why);
	json_t *j = json_pack("{s:b,s:b,s:o}", "ready", ready, "draining", px->draining, "upstreams", ups);
	reply_json(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", j);
}

/* The path's segments after the first '/', URL-decoded; at most 4. */
static int split_path(const char *path, char *seg[4])
{
	int n = 0;
	const char *p = path;
	while (*p == '/' && n < 4) {
		p++;
		size_t len = strcspn(p, "/");
		char raw[1024];
		if (len >= sizeof raw)
			return -1;
		memcpy(raw, p, len);
		raw[len] = 0;
		seg[n] = evhttp_uridecode(raw, 0, NULL);
		if (!seg[n])
			return -1;
		n++;
		p += len;
	}
	if (*p)
		return -1; /* more than 4 segments */
	if (n && !seg[n - 1][0]) /* a trailing '/' */
		free(seg[--n]);
	return n;
}

static void route(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	char *seg[4] = { 0 };
	int n = path ? split_path(path, seg) : -1;
	bool get = cmd == EVHTTP_REQ_GET, post = cmd == EVHTTP_REQ_POST;
	if (n == 1 && strcmp(seg[0], "healthz") == 0 && get) {
		struct evbuffer *b = evbuffer_new();
		if (b) {
			evbuffer_add_printf(b, "ok\n");
			reply(req, 200, "OK", "text/plain", b);
			evbuffer_free(b);
		}
	} else if (!authorized(a, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
		reply_error(req, 401, "Unauthorized", "a bearer token is required");
	} else if (n == 1 && strcmp(seg[0], "readyz") == 0 && get) {
		get_readyz(a, req);
	} else if (n == 1 && strcmp(seg[0], "metrics") == 0 && get) {
		struct evbuffer *b = evbuffer_new();
		if (b) {
			metrics_render(a->px, b);
			reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
			evbuffer_free(b);
		}
	} else if (n == 1 && strcmp(seg[0], "events") == 0 && get) {
		get_events(a, req, uri);
	} else if (n >= 1 && n <= 2 && strcmp(seg[0], "clients") == 0 && get) {
		get_clients(a, req, n == 2 ? seg[1] : NULL);
	} else if (n == 3 && strcmp(seg[0], "clients") == 0 && strcmp(seg[2], "disconnect") == 0 && post) {
		post_disconnect(a, req, seg[1]);
	} else if (n == 3 && strcmp(seg[0], "listeners") == 0 &&
		   (strcmp(seg[2], "disable") == 0 || strcmp(seg[2], "enable") == 0) && post) {
		post_listener(a, req, seg[1], strcmp(seg[2], "enable") == 0);
	} else if (n >= 1 && (strcmp(seg[0], "clients") == 0 || strcmp(seg[0], "listeners") == 0 ||
			      strcmp(seg[0], "metrics") == 0 || strcmp(seg[0], "events") == 0 ||
			      strcmp(seg[0], "healthz") == 0 || strcmp(seg[0], "readyz") == 0) &&
		   !get && !post) {
		reply_error(req, 405, "Method Not Allowed", "use GET or POST as documented");
	} else {
		reply_error(req, 404, "Not Found", "no such resource (see wirewarden(8))");
	}
	for (int i = 0; i < 4; i++)
		free(seg[i]);
}

static void *admin_main(void *arg)
{
	struct admin *a = arg;
	event_base_dispatch(a->base);
	return NULL;
}

struct admin *admin_start(struct proxy *px)
{
	const struct ww_admin_cfg *cfg = &px->cfg.admin;
	char host[256];
	uint16_t port;
	struct admin *a = calloc(1, sizeof *a);
	if (!a || ww_parse_hostport(cfg->listen, host, sizeof host, &port) != 0) {
		free(a);
		return NULL;
	}
	a->px = px;
	pthread_mutex_init(&a->lock, NULL);
	if (cfg->token_file && read_token(cfg->token_file, a->token, sizeof a->token, &a->token_len) != 0) {
		fprintf(stderr, "wirewarden proxy: admin: no token in %s\n", cfg->token_file);
		goto fail;
	}
	if (!(a->base = event_base_new()) || !(a->http = evhttp_new(a->base)))
		goto fail;
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(a->http, 4096);
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_timeout(a->http, 10);
	evhttp_set_gencb(a->http, route, a);
	if (!evhttp_bind_socket_with_handle(a->http, host, port)) {
		fprintf(stderr, "wirewarden proxy: admin: cannot listen on %s: %s\n", cfg->listen, strerror(errno));
		goto fail;
	}
	if (pthread_create(&a->thread, NULL, admin_main, a) != 0)
		goto fail;
	a->running = true;
	fprintf(stderr, "wirewarden proxy: admin API on http://%s%s\n", cfg->listen,
		a->token_len ? " (bearer token required)" : "");
	return a;
fail:
	if (a->http)
		evhttp_free(a->http);
	if (a->base)
		event_base_free(a->base);
	pthread_mutex_destroy(&a->lock);
	free(a);
	return NULL;
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	if (a->running) {
		event_base_loopexit(a->base, NULL);
		pthread_join(a->thread, NULL);
	}
	evhttp_free(a->http);
	event_base_free(a->base);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
