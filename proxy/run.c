/* `wirewarden proxy`: reads the configuration (file, then command-line flags
 * on top), opens the event sinks, starts one worker per core (or as
 * configured) and the admin API, and runs until SIGINT or SIGTERM.
 * SIGHUP reloads the file (policies, TLS certificates, the admin token, the
 * drain period); a file that does not load is refused and the running
 * configuration stays. SIGTERM stops accepting, lets clients leave on their
 * own for shutdown.drain, then ends every remaining session with "server
 * shutting down" (v5 DISCONNECT 0x8B) and exits 0. A second SIGTERM, or
 * SIGINT, skips what is left of the drain. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

#include "cli/cli.h"
#include "proxy/admin.h"
#include "proxy/proxy.h"
#include "proxy/tls.h"

void cmd_proxy_usage(FILE *out)
{
	fputs("usage: wirewarden proxy --listen HOST:PORT --upstream HOST:PORT [options]\n"
	      "       wirewarden proxy --config FILE [options]\n"
	      "       wirewarden proxy --check-config FILE\n"
	      "\n"
	      "Sits between MQTT clients and the broker: every packet passes unchanged while\n"
	      "the policies of the configuration observe (log \"would disconnect\") or enforce.\n"
	      "Every disconnect is logged once, with its reason.\n"
	      "\n"
	      "  -l, --listen HOST:PORT    where clients connect (overrides the first listener)\n"
	      "  -u, --upstream HOST:PORT  the broker\n"
	      "  -c, --config FILE         YAML configuration (doc/config.md)\n"
	      "      --check-config FILE   validate FILE and exit (0 valid, 2 invalid)\n"
	      "      --log FILE            text event log (default: stderr)\n"
	      "      --events FILE         JSON-lines events ('-' = stdout)\n"
	      "  -w, --workers N           worker threads (default: one per core)\n"
	      "  -h, --help\n",
	      out);
}

static int resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len, bool passive)
{
	char host[256];
	uint16_t port;
	if (ww_parse_hostport(hostport, host, sizeof host, &port) != 0)
		return -1;
	char portstr[8];
	snprintf(portstr, sizeof portstr, "%u", port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *res = NULL;
	if (getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res) != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

#define FLUSH_MS 250

/* What each policy did over the run, observed apart from enforced, so an
 * operator can compare shadow mode with what enforcing would have done. */
static void report_policies(struct engine *eng)
{
	static const char *const names[POL__COUNT] = {
		"heartbeat", "slow_client", "takeover", "protocol", "receive_maximum", "limits", "access",
	};
	struct engine_stats st;
	engine_stats(eng, &st);
	fprintf(stderr, "wirewarden proxy: %llu connections;", (unsigned long long)st.connections);
	for (int p = 0; p < POL__COUNT; p++)
		if (st.observed[p] || st.enforced[p])
			fprintf(stderr, " %s: %llu observed, %llu enforced;", names[p], (unsigned long long)st.observed[p],
				(unsigned long long)st.enforced[p]);
	fputc('\n', stderr);
}

static volatile sig_atomic_t stop_signal, stop_count, reload_asked;
static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		reload_asked = 1;
		return;
	}
	stop_signal = sig;
	stop_count++;
}

static void flush_logs(struct proxy *px)
{
	log_file_flush(&px->text_log);
	if (px->has_json)
		log_file_flush(&px->json_log);
}

/* SIGHUP also reopens the event files, for logrotate. */
static void reopen_logs(struct proxy *px)
{
	log_file_reopen(&px->text_log);
	if (px->has_json)
		log_file_reopen(&px->json_log);
}

static void count_conns(struct worker *w, void *arg) { *(unsigned *)arg += w->n_conns; }

unsigned proxy_open_conns(struct proxy *px)
{
	unsigned n = 0;
	for (unsigned i = 0; i < px->n_workers; i++)
		worker_call(&px->workers[i], count_conns, &n);
	return n;
}

static const struct ww_listener_cfg *listener_named(const struct ww_config *c, const char *name)
{
	for (unsigned i = 0; i < c->n_listeners; i++)
		if (strcmp(c->listeners[i].name, name) == 0)
			return &c->listeners[i];
	return NULL;
}

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/* --listen / --upstream over the first listener of a loaded file. */
static int apply_flags(struct proxy *px, struct ww_config *c)
{
	if (c->n_listeners == 0)
		return 0;
	const char *v[2] = { px->flag_listen, px->flag_upstream };
	char **to[2] = { &c->listeners[0].listen, &c->listeners[0].upstream };
	for (int k = 0; k < 2; k++) {
		if (!v[k])
			continue;
		char *d = strdup(v[k]);
		if (!d)
			return -1;
		free(*to[k]);
		*to[k] = d;
	}
	return 0;
}

/* SIGTERM: the listening sockets close at once (new clients are refused, not
 * left in a backlog), and the clients already in have shutdown.drain to
 * leave on their own; cmd_proxy() then ends whoever is left. */
static void close_listeners(struct worker *w, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < w->px->n_listeners; i++)
		worker_listener_set(w, i, false);
}

static void reload(struct proxy *px);

static void drain(struct proxy *px)
{
	uint64_t ms = px->cfg.drain_ms;
	__atomic_store_n(&px->draining, true, __ATOMIC_RELEASE);
	if (ms == 0 || stop_signal == SIGINT)
		return;
	for (unsigned i = 0; i < px->n_workers; i++)
		worker_call(&px->workers[i], close_listeners, NULL);
	unsigned open = proxy_open_conns(px);
	fprintf(stderr, "wirewarden proxy: %s: not accepting; draining %u connections for up to %.1f s\n",
		strsignal(stop_signal), open, (double)ms / 1000);
	int start_count = stop_count;
	int64_t until = proxy_now_us() + (int64_t)ms * 1000;
	while (open > 0 && proxy_now_us() < until && stop_count == start_count) {
		struct timespec tick = { 0, 100 * 1000000L };
		nanosleep(&tick, NULL);
		flush_logs(px);
		if (reload_asked) {
			reload_asked = 0;
			reopen_logs(px);
			reload(px);
		}
		open = proxy_open_conns(px);
	}
	fprintf(stderr, "wirewarden proxy: drain over: %u connections left%s\n", open,
		stop_count != start_count ? " (signalled again)" : "");
}

/* SIGHUP: the file again. Whatever it says is checked whole (the config
 * loader, then the TLS certificates) before anything changes, so a bad file
 * changes nothing. Open connections are not touched: new policies apply to
 * what they do from now on, new certificates to new connections. Listeners
 * are sockets bound at start: a listener added, removed or moved to another
 * address or upstream takes a restart, and says so. */
static void reload(struct proxy *px)
{
	struct ww_config nc;
	struct cfg_err err;
	if (!px->cfgfile) {
		fprintf(stderr, "wirewarden proxy: SIGHUP: no --config file to reload\n");
		return;
	}
	if (ww_config_load(px->cfgfile, &nc, &err) != 0) {
		px->reload_failures++;
		fprintf(stderr, "wirewarden proxy: reload refused, running configuration kept: %s:%u:%u: %s\n", err.file,
			err.line, err.column, err.msg);
		return;
	}
	if (apply_flags(px, &nc) != 0) {
		ww_config_fini(&nc);
		return;
	}
	const struct ww_listener_cfg **use = calloc(px->n_listeners, sizeof *use);
	struct proxy_tls **tls = calloc(px->n_listeners, sizeof *tls), **utls = calloc(px->n_listeners, sizeof *utls);
	if (!use || !tls || !utls) {
		free(use);
		free(tls);
		free(utls);
		ww_config_fini(&nc);
		return;
	}
	for (unsigned i = 0; i < px->n_listeners; i++) {
		const struct ww_listener_cfg *old = px->listeners[i].cfg, *n = listener_named(&nc, old->name);
		use[i] = old;
		if (!n)
			fprintf(stderr, "wirewarden proxy: reload: listener %s is gone from the file; it stays until a restart\n",
				old->name);
		else if (!same(n->listen, old->listen) || !same(n->upstream, old->upstream) ||
			 !same(n->protocol, old->protocol) || !n->tls != !old->tls || !n->upstream_tls != !old->upstream_tls)
			fprintf(stderr, "wirewarden proxy: reload: listener %s: a new address, upstream, protocol or TLS on/off "
					"takes a restart; its old settings stay\n",
				old->name);
		else
			use[i] = n;
	}
	for (unsigned i = 0; i < nc.n_listeners; i++) {
		bool known = false;
		for (unsigned j = 0; j < px->n_listeners; j++)
			known = known || strcmp(px->listeners[j].cfg->name, nc.listeners[i].name) == 0;
		if (!known)
			fprintf(stderr, "wirewarden proxy: reload: new listener %s starts at the next restart\n",
				nc.listeners[i].name);
	}
	/* Certificates first: the only step that can still fail. */
	for (unsigned i = 0; i < px->n_listeners; i++) {
		char why[256];
		tls[i] = utls[i] = NULL;
		if ((use[i]->tls && !(tls[i] = tls_server_new(use[i]->tls, why, sizeof why))) ||
		    (use[i]->upstream_tls && !(utls[i] = tls_client_new(use[i]->upstream_tls, use[i]->upstream, why, sizeof why)))) {
			fprintf(stderr, "wirewarden proxy: reload refused, running configuration kept: listener %s: %s\n",
				use[i]->name, why);
			for (unsigned j = 0; j <= i; j++) {
				tls_free(tls[j]);
				tls_free(utls[j]);
			}
			ww_config_fini(&nc);
			px->reload_failures++;
			goto done;
		}
	}
	struct retired_cfg *old = calloc(1, sizeof *old);
	if (!old) {
		for (unsigned j = 0; j < px->n_listeners; j++) {
			tls_free(tls[j]);
			tls_free(utls[j]);
		}
		ww_config_fini(&nc);
		goto done;
	}
	/* Flags given on the command line still win over the file. */
	if (px->cli_workers >= 0)
		nc.workers = (unsigned)px->cli_workers;
	old->cfg = px->cfg;
	old->next = px->retired;
	px->retired = old;
	engine_set_policies(px->eng, &nc.policies);
	/* The relay reads max_packet_size on every packet, unlocked: the struct
	 * copy (which may be byte-wise) rewrites its old value, and the new one
	 * goes in with one atomic store, so no torn size is ever seen. */
	uint64_t max_packet = nc.policies.limits.max_packet_size;
	nc.policies.limits.max_packet_size = px->cfg.policies.limits.max_packet_size;
	px->cfg = nc;
	__atomic_store_n(&px->cfg.policies.limits.max_packet_size, max_packet, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < px->n_listeners; i++) {
		__atomic_store_n(&px->listeners[i].cfg, use[i], __ATOMIC_RELEASE);
		if (tls[i])
			tls_replace(px->listeners[i].tls, tls[i]);
		if (utls[i])
			tls_replace(px->listeners[i].upstream_tls, utls[i]);
	}
	if (px->admin)
		admin_reload(px->admin, &px->cfg.admin);
	px->reloads++;
	fprintf(stderr, "wirewarden proxy: reloaded %s\n", px->cfgfile);
done:
	free(use);
	free(tls);
	free(utls);
}

int cmd_proxy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' }, { "upstream", required_argument, NULL, 'u' },
		{ "config", required_argument, NULL, 'c' }, { "check-config", required_argument, NULL, 'C' },
		{ "log", required_argument, NULL, 'L' },    { "events", required_argument, NULL, 'E' },
		{ "workers", required_argument, NULL, 'w' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = NULL, *upstream = NULL, *cfgfile = NULL, *logfile = NULL, *events = NULL;
	long workers = -1;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "l:u:c:w:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen = optarg; break;
		case 'u': upstream = optarg; break;
		case 'c': cfgfile = optarg; break;
		case 'L': logfile = optarg; break;
		case 'E': events = optarg; break;
		case 'w': {
			/* Was strtol(optarg, NULL, 10) unchecked: "--workers abc" ran with
			 * one worker per core instead of being a usage error. Same range
			 * as the config file's `workers`. */
			char *end;
			errno = 0;
			workers = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || workers < 0 || workers > 1024) {
				fprintf(stderr, "wirewarden proxy: --workers: \"%s\" is not a whole number from 0 to 1024\n",
					optarg);
				return CLI_USAGE;
			}
			break;
		}
		case 'C': {
			struct ww_config cfg;
			struct cfg_err err;
			if (ww_config_load(optarg, &cfg, &err) != 0) {
				fprintf(stderr, "%s:%u:%u: %s\n", err.file, err.line, err.column, err.msg);
				return CLI_USAGE;
			}
			printf("%s: valid (%u listener%s)\n", optarg, cfg.n_listeners, cfg.n_listeners == 1 ? "" : "s");
			ww_config_fini(&cfg);
			return CLI_OK;
		}
		case 'h': cmd_proxy_usage(stdout); return CLI_OK;
		default: cmd_proxy_usage(stderr); return CLI_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wirewarden proxy: unexpected argument '%s' (see wirewarden proxy --help)\n", argv[optind]);
		return CLI_USAGE;
	}

	struct proxy *px = calloc(1, sizeof *px);
	if (!px)
		return CLI_FAILURE;
	ww_config_defaults(&px->cfg);
	if (cfgfile) {
		struct cfg_err err;
		if (ww_config_load(cfgfile, &px->cfg, &err) != 0) {
			fprintf(stderr, "%s:%u:%u: %s\n", err.file, err.line, err.column, err.msg);
			free(px);
			return CLI_USAGE;
		}
	}
	/* Flags on top of the file: --listen/--upstream make or replace the first
	 * listener (and do again on every reload). */
	px->flag_listen = listen;
	px->flag_upstream = upstream;
	px->cli_workers = workers;
	px->cfgfile = cfgfile;
	static struct ww_listener_cfg flag_listener;
	if (listen || upstream) {
		if (px->cfg.n_listeners == 0) {
			if (!listen || !upstream) {
				fprintf(stderr, "wirewarden proxy: give both --listen and --upstream (or a --config with listeners)\n");
				ww_config_fini(&px->cfg);
				free(px);
				return CLI_USAGE;
			}
			flag_listener = (struct ww_listener_cfg){
				.name = (char *)"cli", .listen = (char *)listen, .upstream = (char *)upstream, .protocol = (char *)"mqtt"
			};
			px->cfg.listeners = &flag_listener;
			px->cfg.n_listeners = 1;
			px->cfgfile = NULL;
		} else if (apply_flags(px, &px->cfg) != 0) {
			ww_config_fini(&px->cfg);
			free(px);
			return CLI_FAILURE;
		}
	}
	if (px->cfg.n_listeners == 0) {
		fprintf(stderr, "wirewarden proxy: nothing to listen on: give --listen and --upstream, or --config FILE\n");
		free(px);
		return CLI_USAGE;
	}
	if (workers >= 0)
		px->cfg.workers = (unsigned)workers;
	bool own_listeners = px->cfg.listeners != &flag_listener;

	int rc = CLI_FAILURE;
	bool logs_open = false;
	px->n_listeners = px->cfg.n_listeners;
	px->listeners = calloc(px->n_listeners, sizeof *px->listeners);
	for (unsigned i = 0; px->listeners && i < px->n_listeners; i++) {
		struct proxy_listener *l = &px->listeners[i];
		l->cfg = &px->cfg.listeners[i];
		l->index = i;
		if (resolve(l->cfg->listen, &l->listen_addr, &l->listen_len, true) != 0 ||
		    resolve(l->cfg->upstream, &l->upstream_addr, &l->upstream_len, false) != 0) {
			fprintf(stderr, "wirewarden proxy: listener %s: cannot resolve '%s' or '%s' (use HOST:PORT)\n",
				l->cfg->name, l->cfg->listen, l->cfg->upstream);
			rc = CLI_USAGE;
			goto out;
		}
		snprintf(l->upstream_str, sizeof l->upstream_str, "%s", l->cfg->upstream);
		char why[256];
		if ((l->cfg->tls && !(l->tls = tls_server_new(l->cfg->tls, why, sizeof why))) ||
		    (l->cfg->upstream_tls &&
		     !(l->upstream_tls = tls_client_new(l->cfg->upstream_tls, l->cfg->upstream, why, sizeof why)))) {
			fprintf(stderr, "wirewarden proxy: listener %s: %s\n", l->cfg->name, why);
			rc = CLI_USAGE;
			goto out;
		}
	}

	/* Sinks: the text log always, JSON lines when asked, and the ring of
	 * recent events that the admin API serves. */
	/* Not flushed per event (a connection is 4+ events): the main thread
	 * flushes every FLUSH_MS, so a log lags by at most that. */
	px->has_json = events || px->cfg.events_json;
	logs_open = true;
	if (log_file_open(&px->text_log, logfile ? logfile : px->cfg.events_log, stderr, false) != 0 ||
	    (px->has_json && log_file_open(&px->json_log, events ? events : px->cfg.events_json, stdout, true) != 0)) {
		fprintf(stderr, "wirewarden proxy: cannot open an event file: %s\n", strerror(errno));
		goto out;
	}
	evt_sinks_add(&px->sinks, log_file_sink_fn, &px->text_log);
	if (px->has_json)
		evt_sinks_add(&px->sinks, log_file_sink_fn, &px->json_log);
	if (px->cfg.admin.listen) {
		if (!(px->ring = ring_new(px->cfg.admin.events_ring)))
			goto out;
		evt_sinks_add(&px->sinks, ring_sink_fn, px->ring);
	}

	struct engine_config ec = { .pol = px->cfg.policies, .protocol = "mqtt" };
	px->eng = engine_new(&ec, &px->sinks);
	if (!px->eng)
		goto out;
	uint64_t buf = px->cfg.client_buffer_bytes ? px->cfg.client_buffer_bytes : 1024 * 1024;
	px->in_cap = buf < PROXY_STREAM_HEAD * 2 ? PROXY_STREAM_HEAD * 2 : buf;
	px->out_cap_c2s = buf;
	px->out_cap_s2c = buf;
	/* The queue toward the client must be able to pass offline_bytes for the
	 * slow-client policy to see a slow client, in either mode: observe judges
	 * by the same rule as enforce (engine_on_queue), so it needs no more. */
	const struct ww_policies *pol = &px->cfg.policies;
	if (pol->slow_client.mode != WW_MODE_OFF && pol->slow_client.offline_bytes + 65536 > px->out_cap_s2c)
		px->out_cap_s2c = pol->slow_client.offline_bytes + 65536;

	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	/* Signals are handled by this thread only: blocked before the workers
	 * start (they inherit the mask), unblocked here after. */
	sigset_t sigs, oldsigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pthread_sigmask(SIG_BLOCK, &sigs, &oldsigs);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	px->n_workers = px->cfg.workers ? px->cfg.workers : (unsigned)(cores > 0 ? cores : 1);
	px->workers = calloc(px->n_workers, sizeof *px->workers);
	if (!px->workers) {
		pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
		goto out;
	}
	for (unsigned i = 0; i < px->n_workers; i++) {
		px->workers[i].px = px;
		px->workers[i].index = i;
		if (worker_start(&px->workers[i]) != 0) {
			pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
			goto stop;
		}
	}
	if (px->cfg.admin.listen && !(px->admin = admin_start(px))) {
		pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
		goto stop;
	}
	pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
	for (unsigned i = 0; i < px->n_listeners; i++)
		fprintf(stderr, "wirewarden proxy: listener %s on %s%s -> %s%s (%u workers)\n", px->listeners[i].cfg->name,
			px->listeners[i].cfg->listen, px->listeners[i].tls ? " (TLS)" : "", px->listeners[i].cfg->upstream,
			px->listeners[i].upstream_tls ? " (TLS)" : "", px->n_workers);

	while (!stop_signal) {
		struct timespec tick = { 0, FLUSH_MS * 1000000L };
		nanosleep(&tick, NULL); /* a signal cuts it short */
		flush_logs(px);
		if (reload_asked) {
			reload_asked = 0;
			reopen_logs(px);
			reload(px);
		}
	}
	rc = CLI_OK;
	drain(px);
	fprintf(stderr, "wirewarden proxy: %s: ending every session\n", strsignal(stop_signal));
stop:
	admin_stop(px->admin);
	px->admin = NULL;
	for (unsigned i = 0; i < px->n_workers; i++)
		worker_stop(&px->workers[i]);
	if (px->eng && rc == CLI_OK)
		report_policies(px->eng);
out:
	free(px->workers);
	engine_free(px->eng);
	if (logs_open) {
		log_file_close(&px->text_log);
		if (px->has_json)
			log_file_close(&px->json_log);
	}
	for (unsigned i = 0; px->listeners && i < px->n_listeners; i++) {
		tls_free(px->listeners[i].tls);
		tls_free(px->listeners[i].upstream_tls);
	}
	free(px->listeners);
	ring_free(px->ring);
	if (!own_listeners) {
		px->cfg.listeners = NULL;
		px->cfg.n_listeners = 0;
	}
	ww_config_fini(&px->cfg);
	while (px->retired) {
		struct retired_cfg *r = px->retired;
		px->retired = r->next;
		ww_config_fini(&r->cfg);
		free(r);
	}
	free(px);
	return rc;
}
