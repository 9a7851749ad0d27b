/* A worker: one thread, one event base, its own listening socket per
 * listener (SO_REUSEPORT: the kernel spreads new connections over the
 * workers), its connections, a sweep timer for the engine's clocks, a
 * reaper that frees connections closed inside their own callbacks, and a
 * queue of calls from other threads (worker_call(): the admin API and the
 * main thread never touch a worker's connections themselves).
 * The kernel's spread is a hash of the client's address and port, blind to
 * load: a few busy connections can land on one worker while another idles.
 * So a worker that accepts while it carries more connections than the
 * least loaded one hands the socket over (as HAProxy's accept queues do),
 * which keeps the counts within one of each other. */
#include "proxy/proxy.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#define SWEEP_MS 250

/* A socket accepted by one worker for another to run. */
struct worker_handoff {
	struct worker_handoff *next;
	struct proxy_listener *lst;
	evutil_socket_t fd;
	int salen;
	struct sockaddr_storage sa;
};

static void refuse(evutil_socket_t fd)
{
	conn_rst_on_close(fd);
	evutil_closesocket(fd);
}

/* Starts the session of a socket placed on <w> (its <load> already counts
 * it), unless the listener or the worker closed meanwhile. */
static void take_conn(struct worker *w, struct proxy_listener *lst, evutil_socket_t fd, const struct sockaddr *sa,
		      int salen)
{
	unsigned before = w->n_conns;
	if (w->stopping || __atomic_load_n(&lst->disabled, __ATOMIC_ACQUIRE)) {
		/* A connection that raced the listener being closed: refused. */
		if (!w->stopping)
			w->m.refused_disabled++;
		refuse(fd);
	} else {
		w->m.accepted++;
		conn_accept(w, lst, fd, sa, salen);
	}
	if (w->n_conns == before) /* no session: not counted as one */
		__atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
}

static void handoff_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	pthread_mutex_lock(&w->cmd_lock);
	struct worker_handoff *list = w->handoffs;
	w->handoffs = NULL;
	pthread_mutex_unlock(&w->cmd_lock);
	while (list) {
		struct worker_handoff *h = list;
		list = h->next;
		take_conn(w, h->lst, h->fd, (struct sockaddr *)&h->sa, h->salen);
		free(h);
	}
}

/* The worker with the fewest connections, or <w> itself when none has
 * fewer than it. Counts read without a lock: two workers placing at once
 * may both pick the same one, which the next placements even out. */
static struct worker *least_loaded(struct worker *w)
{
	struct proxy *px = w->px;
	struct worker *best = w;
	unsigned best_load = __atomic_load_n(&w->load, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < px->n_workers; i++) {
		unsigned l = __atomic_load_n(&px->workers[i].load, __ATOMIC_RELAXED);
		if (l < best_load) {
			best = &px->workers[i];
			best_load = l;
		}
	}
	return best;
}

/* Queues the socket for <to>'s thread. False when <to> no longer runs. */
static bool hand_off(struct worker *to, struct proxy_listener *lst, evutil_socket_t fd, const struct sockaddr *sa,
		     int salen)
{
	struct worker_handoff *h = malloc(sizeof *h);
	if (!h || salen < 0 || (size_t)salen > sizeof h->sa) {
		free(h);
		return false;
	}
	*h = (struct worker_handoff){ .lst = lst, .fd = fd, .salen = salen };
	memcpy(&h->sa, sa, (size_t)salen);
	pthread_mutex_lock(&to->cmd_lock);
	bool ok = !to->gone && to->handoff_ev;
	if (ok) {
		h->next = to->handoffs;
		to->handoffs = h;
		event_active(to->handoff_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&to->cmd_lock);
	if (!ok)
		free(h);
	return ok;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct worker *w = arg;
	struct proxy_listener *lst = NULL;
	for (unsigned i = 0; i < w->px->n_listeners; i++)
		if (w->lis[i] == l)
			lst = &w->px->listeners[i];
	if (!lst) {
		refuse(fd);
		return;
	}
	struct worker *to = w->stopping ? w : least_loaded(w);
	__atomic_add_fetch(&to->load, 1, __ATOMIC_RELAXED);
	if (to != w) {
		if (hand_off(to, lst, fd, sa, salen)) {
			w->m.moved++;
			return;
		}
		__atomic_sub_fetch(&to->load, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&w->load, 1, __ATOMIC_RELAXED);
	}
	take_conn(w, lst, fd, sa, salen);
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

const double metric_depth_bounds[METRIC_DEPTH_BUCKETS] = { 0,	  1024,	   4096,     16384,    65536,
							    262144, 1048576, 4194304, 16777216, 67108864 };

/* Each sweep samples every connection's queue toward its client: the
 * histogram says how often clients sit at each depth. */
static void observe_depth(struct worker *w, uint64_t depth)
{
	unsigned b = 0;
	while (b < METRIC_DEPTH_BUCKETS && (double)depth > metric_depth_bounds[b])
		b++;
	w->m.depth_bucket[b]++;
	w->m.depth_count++;
	w->m.depth_sum += (double)depth;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	int64_t now = proxy_now_us();
	for (struct conn *c = w->conns; c; c = c->next) {
		conn_sweep(c, now);
		if (!c->closing && c->s.connack_seen)
			observe_depth(w, evbuffer_get_length(bufferevent_get_output(c->cbev)));
	}
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

void worker_end_conn(struct conn *c, enum evt_reason why, const char *detail)
{
	if (c->closing)
		return;
	struct eng_action act;
	engine_request_close(c->w->px->eng, &c->s, why, detail, proxy_now_us(), &act);
	if (act.flags)
		conn_apply(c, &act);
	else
		conn_close(c, ENG_CLOSE_SHUTDOWN);
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
		worker_listener_set(w, i, false);
	for (struct conn *c = w->conns; c; c = c->next)
		worker_end_conn(c, EVT_R_SERVER_SHUTDOWN, "wirewarden is shutting down");
	if (w->n_conns == 0)
		event_base_loopexit(w->base, NULL);
	else {
		struct timeval tv = { 3, 0 }; /* a bound on the final flushes */
		event_base_loopexit(w->base, &tv);
	}
}

/* Runs what other threads queued, then wakes them. */
static void run_cmds(struct worker *w)
{
	pthread_mutex_lock(&w->cmd_lock);
	struct worker_cmd *list = w->cmds;
	w->cmds = NULL;
	pthread_mutex_unlock(&w->cmd_lock);
	for (struct worker_cmd *k = list; k; k = k->next)
		k->fn(w, k->arg);
	pthread_mutex_lock(&w->cmd_lock);
	while (list) {
		struct worker_cmd *next = list->next;
		list->done = true; /* <list> is the caller's: not touched after this */
		list = next;
	}
	pthread_cond_broadcast(&w->cmd_cond);
	pthread_mutex_unlock(&w->cmd_lock);
}

static void cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_cmds(arg);
}

int worker_call(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg)
{
	struct worker_cmd k = { .fn = fn, .arg = arg };
	pthread_mutex_lock(&w->cmd_lock);
	if (w->gone || !w->cmd_ev) {
		pthread_mutex_unlock(&w->cmd_lock);
		return -1;
	}
	k.next = w->cmds;
	w->cmds = &k;
	event_active(w->cmd_ev, EV_READ, 0);
	while (!k.done)
		pthread_cond_wait(&w->cmd_cond, &w->cmd_lock);
	pthread_mutex_unlock(&w->cmd_lock);
	return 0;
}

static struct evconnlistener *open_listener(struct worker *w, struct proxy_listener *lst);

int worker_listener_set(struct worker *w, unsigned i, bool open)
{
	if (!open) {
		if (w->lis[i])
			evconnlistener_free(w->lis[i]); /* closes the socket: new clients are refused */
		w->lis[i] = NULL;
		return 0;
	}
	if (!w->lis[i])
		w->lis[i] = open_listener(w, &w->px->listeners[i]);
	return w->lis[i] ? 0 : -1;
}

/* One pass of the event loop: runs the callbacks of what is ready, after
 * waiting for something unless <flags> has EVLOOP_NONBLOCK. True when the
 * loop is to end. */
static bool loop_pass(struct worker *w, int flags)
{
	return event_base_loop(w->base, flags) != 0 || event_base_got_exit(w->base) || event_base_got_break(w->base);
}

/* libevent's loop with one change: a worker that runs out of work yields
 * its CPU once, then looks again, before it sleeps in epoll_wait. The
 * broker and its clients usually share the host's CPUs with the proxy; a
 * worker that slept after every burst was woken for each next one (0.5
 * sleeps per relayed 16 KiB message, HAProxy 0.1), and on a VM every
 * wake-up costs an interrupt. Yielding lets the broker run on, and the
 * worker comes back to a batch instead (bench/results/2026-11-24T034746.md:
 * 1.08-1.32 of HAProxy's throughput with 2 workers on 2 CPUs, 0.80-1.05
 * before; latency and the 1-worker figures unchanged). A worker that finds work at once never
 * yields; on an idle host sched_yield returns at once, and the cost is
 * two system calls per sleep. */
static void worker_loop(struct worker *w)
{
	while (!loop_pass(w, EVLOOP_ONCE)) {
		bool yielded = false;
		for (;;) {
			uint64_t seen = w->relays;
			if (loop_pass(w, EVLOOP_ONCE | EVLOOP_NONBLOCK))
				return;
			if (w->relays != seen)
				yielded = false;
			else if (yielded)
				break; /* yielded, and still nothing came: sleep */
			else {
				sched_yield();
				yielded = true;
			}
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	worker_loop(w);
	/* Calls queued from now on fail; those already queued still run. */
	pthread_mutex_lock(&w->cmd_lock);
	w->gone = true;
	struct worker_handoff *late = w->handoffs;
	w->handoffs = NULL;
	pthread_mutex_unlock(&w->cmd_lock);
	run_cmds(w);
	while (late) { /* placed here as the loop ended: refused */
		struct worker_handoff *h = late;
		late = h->next;
		refuse(h->fd);
		free(h);
	}
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

static struct evconnlistener *open_listener(struct worker *w, struct proxy_listener *lst)
{
	struct evconnlistener *l = evconnlistener_new_bind(
		w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT, 1024,
		(struct sockaddr *)&lst->listen_addr, (int)lst->listen_len);
	if (!l) {
		fprintf(stderr, "wirewarden proxy: cannot listen on %s: %s\n", lst->cfg->listen,
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return NULL;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	return l;
}

int worker_start(struct worker *w)
{
	struct proxy *px = w->px;
	pthread_mutex_init(&w->cmd_lock, NULL);
	pthread_cond_init(&w->cmd_cond, NULL);
	w->base = event_base_new();
	if (!w->base)
		return -1;
	w->lis = calloc(px->n_listeners, sizeof *w->lis);
	if (!w->lis)
		return -1;
	for (unsigned i = 0; i < px->n_listeners; i++)
		if (!(w->lis[i] = open_listener(w, &px->listeners[i])))
			return -1;
	w->sweep = event_new(w->base, -1, EV_PERSIST, sweep_cb, w);
	w->reaper = event_new(w->base, -1, 0, reaper_cb, w);
	w->stop = event_new(w->base, -1, 0, stop_cb, w);
	w->cmd_ev = event_new(w->base, -1, 0, cmd_cb, w);
	w->handoff_ev = event_new(w->base, -1, 0, handoff_cb, w);
	if (!w->sweep || !w->reaper || !w->stop || !w->cmd_ev || !w->handoff_ev)
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
	pthread_mutex_lock(&w->cmd_lock);
	if (w->cmd_ev)
		event_free(w->cmd_ev);
	w->cmd_ev = NULL;
	if (w->handoff_ev)
		event_free(w->handoff_ev);
	w->handoff_ev = NULL;
	pthread_mutex_unlock(&w->cmd_lock);
	event_base_free(w->base);
}
