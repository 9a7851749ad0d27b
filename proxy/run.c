/* `wirewarden proxy`: reads the configuration (file, then command-line flags
 * on top), opens the event sinks, starts one worker per core (or as
 * configured) and runs until SIGINT or SIGTERM, when every session is ended
 * with "server shutting down" and the process exits 0. */
#include "config.h"

#include <errno.h>
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
#include "proxy/proxy.h"

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

static FILE *open_sink_file(const char *path, FILE *dash)
{
	if (!path || strcmp(path, "-") == 0)
		return dash;
	return fopen(path, "a");
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

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

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
	/* Flags on top of the file: --listen/--upstream make or replace the first listener. */
	static struct ww_listener_cfg flag_listener;
	if (listen || upstream) {
		if (px->cfg.n_listeners == 0) {
			if (!listen || !upstream) {
				fprintf(stderr, "wirewarden proxy: give both --listen and --upstream (or a --config with listeners)\n");
				ww_config_fini(&px->cfg);
				free(px);
				return CLI_USAGE;
			}
			flag_listener = (struct ww_listener_cfg){ "cli", (char *)listen, (char *)upstream, (char *)"mqtt" };
			px->cfg.listeners = &flag_listener;
			px->cfg.n_listeners = 1;
		} else {
			if (listen)
				px->cfg.listeners[0].listen = (char *)listen;
			if (upstream)
				px->cfg.listeners[0].upstream = (char *)upstream;
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
	px->n_listeners = px->cfg.n_listeners;
	px->listeners = calloc(px->n_listeners, sizeof *px->listeners);
	for (unsigned i = 0; px->listeners && i < px->n_listeners; i++) {
		struct proxy_listener *l = &px->listeners[i];
		l->cfg = &px->cfg.listeners[i];
		if (resolve(l->cfg->listen, &l->listen_addr, &l->listen_len, true) != 0 ||
		    resolve(l->cfg->upstream, &l->upstream_addr, &l->upstream_len, false) != 0) {
			fprintf(stderr, "wirewarden proxy: listener %s: cannot resolve '%s' or '%s' (use HOST:PORT)\n",
				l->cfg->name, l->cfg->listen, l->cfg->upstream);
			rc = CLI_USAGE;
			goto out;
		}
		snprintf(l->upstream_str, sizeof l->upstream_str, "%s", l->cfg->upstream);
	}

	/* Sinks: the text log always, JSON lines when asked. */
	px->text_fp = open_sink_file(logfile ? logfile : px->cfg.events_log, stderr);
	px->json_fp = (events || px->cfg.events_json) ? open_sink_file(events ? events : px->cfg.events_json, stdout) : NULL;
	if (!px->text_fp || ((events || px->cfg.events_json) && !px->json_fp)) {
		fprintf(stderr, "wirewarden proxy: cannot open an event file: %s\n", strerror(errno));
		goto out;
	}
	/* Not flushed per event (a connection is 4+ events): the main thread
	 * flushes every FLUSH_MS, so a log lags by at most that. */
	px->text_sink = evt_file_sink_make(px->text_fp, false);
	evt_sinks_add_text(&px->sinks, &px->text_sink);
	if (px->json_fp) {
		px->json_sink = evt_file_sink_make(px->json_fp, false);
		evt_sinks_add_json(&px->sinks, &px->json_sink);
	}

	struct engine_config ec = { .pol = px->cfg.policies, .protocol = "mqtt" };
	px->eng = engine_new(&ec, &px->sinks);
	if (!px->eng)
		goto out;
	uint64_t buf = px->cfg.client_buffer_bytes ? px->cfg.client_buffer_bytes : 1024 * 1024;
	px->in_cap = buf < PROXY_STREAM_HEAD * 2 ? PROXY_STREAM_HEAD * 2 : buf;
	px->out_cap_c2s = buf;
	px->out_cap_s2c = buf;
	/* Slow-client thresholds are measured against the queue toward the
	 * client, so it must be able to reach them. */
	const struct ww_policies *pol = &px->cfg.policies;
	if (pol->slow_client.mode != WW_MODE_OFF) {
		uint64_t need = pol->slow_client.mode == WW_MODE_ENFORCE ? pol->slow_client.offline_bytes
									  : pol->slow_client.disconnect_bytes;
		if (need + 65536 > px->out_cap_s2c)
			px->out_cap_s2c = need + 65536;
	}

	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	px->n_workers = px->cfg.workers ? px->cfg.workers : (unsigned)(cores > 0 ? cores : 1);
	px->workers = calloc(px->n_workers, sizeof *px->workers);
	if (!px->workers)
		goto out;
	for (unsigned i = 0; i < px->n_workers; i++) {
		px->workers[i].px = px;
		px->workers[i].index = i;
		if (worker_start(&px->workers[i]) != 0)
			goto stop;
	}
	for (unsigned i = 0; i < px->n_listeners; i++)
		fprintf(stderr, "wirewarden proxy: listener %s on %s -> %s (%u workers)\n", px->listeners[i].cfg->name,
			px->listeners[i].cfg->listen, px->listeners[i].cfg->upstream, px->n_workers);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop_signal) {
		struct timespec tick = { 0, FLUSH_MS * 1000000L };
		nanosleep(&tick, NULL); /* a signal cuts it short */
		fflush(px->text_fp);
		if (px->json_fp)
			fflush(px->json_fp);
	}
	fprintf(stderr, "wirewarden proxy: %s: ending every session\n", strsignal(stop_signal));
	rc = CLI_OK;
stop:
	for (unsigned i = 0; i < px->n_workers; i++)
		worker_stop(&px->workers[i]);
	if (px->eng && rc == CLI_OK)
		report_policies(px->eng);
out:
	free(px->workers);
	engine_free(px->eng);
	if (px->text_fp && px->text_fp != stderr && px->text_fp != stdout)
		fclose(px->text_fp);
	if (px->json_fp && px->json_fp != stdout && px->json_fp != stderr)
		fclose(px->json_fp);
	free(px->listeners);
	if (!own_listeners) {
		px->cfg.listeners = NULL;
		px->cfg.n_listeners = 0;
	}
	ww_config_fini(&px->cfg);
	free(px);
	return rc;
}
