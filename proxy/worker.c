/* A worker: one thread, one event base, its own listening socket per
 * listener (SO_REUSEPORT: the kernel spreads new connections over the
 * workers), its connections, a sweep timer for the engine's clocks, and a
 * reaper that frees connections closed inside their own callbacks. */
#include "proxy/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SWEEP_MS 250

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	struct worker *w = arg;
	struct proxy_listener *lst = NULL;
	for (unsigned i = 0; i < w->px->n_listeners; i++)
		if (w->lis[i] == l)
			lst = &w->px->listeners[i];
	if (!lst || w->stopping) {
		evutil_closesocket(fd);
		return;
	}
	conn_accept(w, lst, fd, sa, salen);
}

/* Out of descriptors: stop accepting for a moment instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct worker *w = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		fprintf(stderr, "wirewarden proxy: accept: %s; pausing accepts for 1 s\n", evutil_socket_error_to_string(err));
		evconnlistener_disable(l);
		struct timeval tv = { 1, 0 };
		event_base_once(w->base, -1, EV_TIMEOUT, (event_callback_fn)(void (*)(void))evconnlistener_enable, l, &tv);
	}
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	int64_t now = proxy_now_us();
	for (struct conn *c = w->conns; c; c = c->next)
		conn_sweep(c, now);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	while (w->reap) {
		struct conn *c = w->reap;
		w->reap = c->reap_next;
		conn_free(c);
	}
	if (w->stopping && w->n_conns == 0)
		event_base_loopexit(w->base, NULL);
}

/* Runs in the worker's thread when the proxy stops: every session ends with
 * "server shutting down" (v5 DISCONNECT 0x8B). */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	w->stopping = true;
	for (unsigned i = 0; i < w->px->n_listeners; i++)
		if (w->lis[i])
			evconnlistener_disable(w->lis[i]);
	int64_t now = proxy_now_us();
	for (struct conn *c = w->conns; c; c = c->next) {
		if (c->closing)
			continue;
		struct eng_action act;
		engine_request_close(w->px->eng, &c->s, EVT_R_SERVER_SHUTDOWN, "wirewarden is shutting down", now, &act);
		if (act.flags)
			conn_apply(c, &act);
		else
			conn_close(c, ENG_CLOSE_SHUTDOWN);
	}
	if (w->n_conns == 0)
		event_base_loopexit(w->base, NULL);
	else {
		struct timeval tv = { 3, 0 }; /* a bound on the final flushes */
		event_base_loopexit(w->base, &tv);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	/* Whatever is left after the bound on flushing. */
	while (w->conns) {
		struct conn *c = w->conns;
		if (!c->s.ended)
			engine_session_close(w->px->eng, &c->s, ENG_CLOSE_SHUTDOWN, proxy_now_us());
		c->reaping = true;
		conn_free(c);
	}
	return NULL;
}

int worker_start(struct worker *w)
{
	struct proxy *px = w->px;
	w->base = event_base_new();
	if (!w->base)
		return -1;
	w->lis = calloc(px->n_listeners, sizeof *w->lis);
	if (!w->lis)
		return -1;
	for (unsigned i = 0; i < px->n_listeners; i++) {
		struct proxy_listener *lst = &px->listeners[i];
		w->lis[i] = evconnlistener_new_bind(w->base, accept_cb, w,
						    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT, 1024,
						    (struct sockaddr *)&lst->listen_addr, (int)lst->listen_len);
		if (!w->lis[i]) {
			fprintf(stderr, "wirewarden proxy: cannot listen on %s: %s\n", lst->cfg->listen,
				evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			return -1;
		}
		evconnlistener_set_error_cb(w->lis[i], accept_error_cb);
	}
	w->sweep = event_new(w->base, -1, EV_PERSIST, sweep_cb, w);
	w->reaper = event_new(w->base, -1, 0, reaper_cb, w);
	w->stop = event_new(w->base, -1, 0, stop_cb, w);
	if (!w->sweep || !w->reaper || !w->stop)
		return -1;
	struct timeval tv = { 0, SWEEP_MS * 1000 };
	event_add(w->sweep, &tv);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	return 0;
}

/* From the main thread: asks the worker to finish, then waits for it. */
void worker_stop(struct worker *w)
{
	if (!w->base)
		return;
	if (w->stop) {
		event_active(w->stop, EV_TIMEOUT, 0);
		pthread_join(w->thread, NULL);
	}
	for (unsigned i = 0; i < w->px->n_listeners; i++)
		if (w->lis && w->lis[i])
			evconnlistener_free(w->lis[i]);
	free(w->lis);
	if (w->sweep)
		event_free(w->sweep);
	if (w->reaper)
		event_free(w->reaper);
	if (w->stop)
		event_free(w->stop);
	event_base_free(w->base);
}
