/* `wirewarden sniff`: options, then the read loop that wires the sniffer's
 * layers together: capture (frames from a file or a live interface) -> link
 * (TCP segments) -> tcp_stream (ordered bytes per flow direction) -> packets
 * (MQTT packets, and sessions of the passive engine whose events become
 * verdicts). A live capture ends on --count, --duration, SIGINT or SIGTERM,
 * always with the summary; SIGUSR1 prints libpcap's counters. Messages about
 * wirewarden itself go to stderr, one line each, saying what to do; exit
 * status as cli/cli.h describes. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <pcap/dlt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"
#include "proto/mqtt.h"
#include "sniff/capture.h"
#include "sniff/ipfrag.h"
#include "sniff/link.h"
#include "policy/engine.h"
#include "sniff/packets.h"
#include "sniff/pcapng.h"
#include "sniff/shutdown.h"
#include "sniff/tcp_stream.h"
#include "sniff/verdicts.h"
#include "sink/sink.h"

#define MQTT_PORT 1883
#define MQTT_TLS_PORT 8883
#define MAX_PACKET_LIMIT (MQTT_MAX_REMAINING_LEN + 5u) /* largest Remaining Length + fixed header */

struct sniff_opts {
	const char *path;      /* -r FILE */
	const char *iface;     /* -i IFACE */
	const char *filter;    /* -f FILTER or the remaining arguments (owned by <filter_buf>) */
	char *filter_buf;
	const char *json;      /* --json FILE ('-' = stdout) */
	const char *write;     /* -w OUT.pcapng */
	bool packets;
	uint16_t ports[TCP_STREAM_MAX_PORTS];
	size_t n_ports;
	uint16_t amps_ports[TCP_STREAM_MAX_PORTS]; /* --amps-port: also in <ports> */
	size_t n_amps_ports;
	uint32_t max_packet;
	uint32_t snaplen;      /* live: 0 = the largest */
	uint32_t buffer_bytes; /* live: 0 = libpcap's default */
	uint64_t count;        /* stop after this many frames; 0 = no limit */
	int64_t duration_us;   /* live: stop after this long; 0 = no limit */
};

void cmd_sniff_usage(FILE *out)
{
	fprintf(out,
		"usage: wirewarden sniff -r FILE [--json OUT] [-w OUT.pcapng] [--port N]... [--amps-port N]... [FILTER]\n"
		"       wirewarden sniff -i IFACE [--count N] [--duration S] [--snaplen N] [--buffer-size SIZE]\n"
		"                        [--json OUT] [-w OUT.pcapng] [--port N]... [-f FILTER | FILTER...]\n"
		"       wirewarden sniff -r FILE --packets [--port N]... [--max-packet SIZE]\n"
		"\n"
		"Reads a pcap or pcapng capture (FILE '-' is standard input), or captures live\n"
		"on an interface, and explains the MQTT (and AMPS) connections in it: who\n"
		"closed it, why, how sure, and on which frames. The default output is a\n"
		"timeline and a per-client summary.\n"
		"\n"
		"  -r, --read FILE       capture to read\n"
		"  -i, --interface IFACE capture live on IFACE ('lo', 'eth0', 'any'); needs root or\n"
		"                        CAP_NET_RAW. Ends after --count or --duration, or on\n"
		"                        SIGINT/SIGTERM, with the summary; SIGUSR1 prints the\n"
		"                        capture counters (received, dropped, if-dropped) to stderr\n"
		"  -f, --filter FILTER   BPF filter, tcpdump syntax (also: the arguments left over)\n"
		"      --count N         stop after N frames\n"
		"      --duration S      live: stop after S seconds (decimals allowed)\n"
		"      --snaplen N       live: bytes kept per frame (default and 0: 262144)\n"
		"      --buffer-size SIZE live: capture buffer, e.g. 4M (default: libpcap's, 2M)\n"
		"      --json OUT        one JSON line per verdict and event ('-' = stdout)\n"
		"  -w, --write OUT       a pcapng copy of the capture with the verdicts as packet\n"
		"                        comments (tshark -Y frame.comment shows them)\n"
		"      --packets         one JSON line per MQTT packet, then one per flow\n"
		"      --port N          also treat TCP port N as MQTT (repeatable;\n"
		"                        1883 and 8883 always are)\n"
		"      --amps-port N     treat TCP port N as 60East AMPS (4-byte length framing,\n"
		"                        json, fix or nvfix headers; repeatable)\n"
		"      --max-packet SIZE largest MQTT packet decoded, e.g. 65536, 64k, 4M\n"
		"                        (default 1M); bigger ones are reported and skipped\n"
		"  -h, --help            this text\n");
}

/* <what> names the problem, <arg> the offending text (may be NULL). */
static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "wirewarden sniff: %s%s%s%s; run 'wirewarden sniff --help' for usage\n", what,
		arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
	return CLI_USAGE;
}

static bool parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* "65536", "64k", "64KiB", "4M", "4MiB" (binary multiples), from <min> to <max>. */
static bool parse_size(const char *s, uint64_t min, uint64_t max, uint32_t *size)
{
	char *end;
	unsigned long long v, mult = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || s[0] == '-')
		return false;
	if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0)
		mult = 1024;
	else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0)
		mult = 1024 * 1024;
	else if (*end != '\0')
		return false;
	if (v > max / mult || v * mult < min)
		return false;
	*size = (uint32_t)(v * mult);
	return true;
}

/* A whole number from <min> to <max>. */
static bool parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Seconds, decimals allowed: "10", "2.5"; above 0 and at most a year. */
static bool parse_seconds(const char *s, int64_t *us)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 366.0 * 86400)
		return false;
	*us = (int64_t)(v * 1e6);
	if (*us < 1)
		*us = 1;
	return true;
}

static bool add_port(struct sniff_opts *o, uint16_t port)
{
	size_t i;

	for (i = 0; i < o->n_ports; i++)
		if (o->ports[i] == port)
			return true;
	if (o->n_ports == TCP_STREAM_MAX_PORTS)
		return false;
	o->ports[o->n_ports++] = port;
	return true;
}

/* The arguments after the options, joined by spaces as tcpdump does. */
static char *join_args(int argc, char **argv, int from)
{
	size_t n = 1;
	int i;

	for (i = from; i < argc; i++)
		n += strlen(argv[i]) + 1;
	char *s = malloc(n);
	if (s == NULL)
		return NULL;
	s[0] = '\0';
	for (i = from; i < argc; i++) {
		if (i > from)
			strcat(s, " ");
		strcat(s, argv[i]);
	}
	return s;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct sniff_opts *o)
{
	enum { OPT_SNAPLEN = 256, OPT_BUFFER, OPT_COUNT, OPT_DURATION, OPT_AMPS_PORT };
	static const struct option longopts[] = {
		{ "read", required_argument, NULL, 'r' },
		{ "interface", required_argument, NULL, 'i' },
		{ "filter", required_argument, NULL, 'f' },
		{ "packets", no_argument, NULL, 'P' },
		{ "json", required_argument, NULL, 'J' },
		{ "write", required_argument, NULL, 'w' },
		{ "port", required_argument, NULL, 'p' },
		{ "amps-port", required_argument, NULL, OPT_AMPS_PORT },
		{ "max-packet", required_argument, NULL, 'm' },
		{ "snaplen", required_argument, NULL, OPT_SNAPLEN },
		{ "buffer-size", required_argument, NULL, OPT_BUFFER },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint16_t port;
	uint64_t v;
	int c;
	bool live_only = false;
	const char *live_opt = NULL;

	memset(o, 0, sizeof(*o));
	o->max_packet = PACKETS_DEFAULT_MAX_PACKET;
	add_port(o, MQTT_PORT);
	add_port(o, MQTT_TLS_PORT);
	optind = 1;
	opterr = 0;
	/* '+': stop at the first non-option, so a filter such as "not port 22"
	 * or "tcp and (port 1883 or port 8883)" is never read as options. */
	while ((c = getopt_long(argc, argv, "+:r:i:f:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->path = optarg;
			break;
		case 'i':
			o->iface = optarg;
			break;
		case 'f':
			o->filter = optarg;
			break;
		case 'P':
			o->packets = true;
			break;
		case 'J':
			o->json = optarg;
			break;
		case 'w':
			o->write = optarg;
			break;
		case 'p':
			if (!parse_port(optarg, &port))
				return usage_error("--port needs a TCP port from 1 to 65535, not", optarg);
			if (!add_port(o, port))
				return usage_error("too many ports (at most 32 with 1883 and 8883), cannot add", optarg);
			break;
		case OPT_AMPS_PORT:
			if (!parse_port(optarg, &port))
				return usage_error("--amps-port needs a TCP port from 1 to 65535, not", optarg);
			if (port == MQTT_PORT || port == MQTT_TLS_PORT)
				return usage_error("--amps-port cannot take an MQTT port", optarg);
			if (!add_port(o, port) || o->n_amps_ports == TCP_STREAM_MAX_PORTS)
				return usage_error("too many ports (at most 32 with 1883 and 8883), cannot add", optarg);
			o->amps_ports[o->n_amps_ports++] = port;
			break;
		case 'm':
			if (!parse_size(optarg, 2, MAX_PACKET_LIMIT, &o->max_packet))
				return usage_error("--max-packet needs a size from 2 to 256M (e.g. 65536, 64k, 4M), not",
						   optarg);
			break;
		case OPT_SNAPLEN:
			if (!parse_count(optarg, 0, CAPTURE_MAX_SNAPLEN, &v))
				return usage_error("--snaplen needs a byte count from 0 (the largest) to 262144, not", optarg);
			o->snaplen = (uint32_t)v;
			live_only = true, live_opt = "--snaplen";
			break;
		case OPT_BUFFER:
			if (!parse_size(optarg, 64 * 1024, UINT32_C(1) << 31, &o->buffer_bytes))
				return usage_error("--buffer-size needs a size from 64k to 2048M (e.g. 4M), not", optarg);
			live_only = true, live_opt = "--buffer-size";
			break;
		case OPT_COUNT:
			if (!parse_count(optarg, 1, UINT64_MAX, &o->count))
				return usage_error("--count needs a number of frames, 1 or more, not", optarg);
			break;
		case OPT_DURATION:
			if (!parse_seconds(optarg, &o->duration_us))
				return usage_error("--duration needs seconds above 0 (e.g. 10 or 2.5), not", optarg);
			live_only = true, live_opt = "--duration";
			break;
		case 'h':
			cmd_sniff_usage(stdout);
			return CLI_OK;
		case ':':
			return usage_error("this option needs a value:", argv[optind - 1]);
		default:
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (o->filter != NULL)
			return usage_error("give the filter once, with -f or as the last arguments; unexpected",
					   argv[optind]);
		if ((o->filter_buf = join_args(argc, argv, optind)) == NULL)
			return usage_error("out of memory reading the filter", NULL);
		o->filter = o->filter_buf;
	}
	if (o->filter) {
		char err[CAPTURE_ERR_LEN];
		if (capture_check_filter(o->filter, err, sizeof(err)) != 0)
			return usage_error(err, NULL);
	}
	if (o->path == NULL && o->iface == NULL)
		return usage_error("no capture given: use -r FILE (or -r - for standard input) or -i IFACE", NULL);
	if (o->path != NULL && o->iface != NULL)
		return usage_error("read a file (-r) or capture live (-i), not both; drop one of", "-i");
	if (live_only && o->iface == NULL)
		return usage_error("this option applies to live capture (-i IFACE) only:", live_opt);
	if (o->write && o->path && strcmp(o->path, "-") == 0)
		return usage_error("-w reads the capture twice: give a file, not standard input, to", "-r");
	if (o->packets && (o->json || o->write))
		return usage_error("--packets is a debugging view of its own; leave out", o->json ? "--json" : "-w");
	return -1;
}

/* pcapng records LINKTYPE_ values; libpcap hands out DLT_ values, which are
 * the same numbers except for raw IP on some systems. */
static int linktype_of(int dlt)
{
	if (dlt == DLT_RAW)
		return 101; /* LINKTYPE_RAW */
	return dlt;
}

/* Second pass for -w: the first <frames> frames of the capture again (the
 * file read, through the same filter, or the copy a live capture kept in
 * <src>: already filtered), as pcapng, with the verdicts' comments on their
 * evidence frames. Frame numbers match the first pass's. */
static int write_commented(const struct sniff_opts *o, const char *src, bool filtered, uint64_t frames,
			   struct verdicts *v, int dlt)
{
	char err[CAPTURE_ERR_LEN];
	struct capture *cap = capture_open(src, err, sizeof(err));
	if (cap == NULL) {
		fprintf(stderr, "wirewarden sniff: %s; cannot read it again for -w\n", err);
		return CLI_FAILURE;
	}
	if (!filtered && o->filter && capture_set_filter(cap, o->filter, err, sizeof(err)) != 0) {
		fprintf(stderr, "wirewarden sniff: %s; cannot read the capture again for -w\n", err);
		capture_close(cap);
		return CLI_FAILURE;
	}
	struct pcapng_writer *w = pcapng_open(o->write, "wirewarden " PACKAGE_VERSION, err, sizeof(err));
	if (w == NULL) {
		fprintf(stderr, "wirewarden sniff: -w %s; check the directory exists and is writable\n", err);
		capture_close(cap);
		return CLI_FAILURE;
	}
	int ifid = pcapng_add_interface(w, linktype_of(dlt), 262144);
	struct capture_frame fr;
	enum capture_status st;
	uint64_t n = 0;
	verdicts_comments_done(v);
	/* --count or a signal cut the first pass short: the copy covers the same frames. */
	while (ifid >= 0 && n < frames &&
	       (st = capture_next(cap, &fr, err, sizeof(err))) == CAPTURE_FRAME) {
		const char *c[8];
		unsigned nc = verdicts_comments_for(v, fr.num, c, 8);
		n++;
		if (pcapng_write_packet(w, (uint32_t)ifid, fr.ts_us, fr.data, fr.caplen, fr.wirelen, c, nc) != 0)
			break;
	}
	capture_close(cap);
	if (pcapng_close(w) != 0 || ifid < 0) {
		fprintf(stderr, "wirewarden sniff: writing %s failed: %s\n", o->write, strerror(errno));
		return CLI_FAILURE;
	}
	return CLI_OK;
}

/* ---- signals: SIGINT/SIGTERM end the capture, SIGUSR1 asks for counters ---- */

static volatile sig_atomic_t stop_signal, counts_wanted;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static void on_counts_signal(int sig)
{
	(void)sig;
	counts_wanted = 1;
}

struct saved_signals {
	struct sigaction intr, term, usr1;
};

/* No SA_RESTART: a signal wakes the capture's poll(). SA_RESETHAND on the
 * stop signals: a second Ctrl-C kills a run that does not end by itself. */
static void signals_install(struct saved_signals *old)
{
	struct sigaction sa;

	stop_signal = 0;
	counts_wanted = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGINT, &sa, &old->intr);
	sigaction(SIGTERM, &sa, &old->term);
	sa.sa_handler = on_counts_signal;
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, &old->usr1);
}

static void signals_restore(const struct saved_signals *old)
{
	sigaction(SIGINT, &old->intr, NULL);
	sigaction(SIGTERM, &old->term, NULL);
	sigaction(SIGUSR1, &old->usr1, NULL);
}

static int64_t wall_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int64_t mono_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* One stderr line with libpcap's counters for a live capture. */
static void report_counts(struct capture *cap, const char *when)
{
	struct capture_counts n;
	char err[CAPTURE_ERR_LEN];

	if (!capture_is_live(cap))
		return;
	if (capture_counts(cap, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "wirewarden sniff: %s; no capture counters %s\n", err, when);
		return;
	}
	fprintf(stderr, "wirewarden sniff: %s: %" PRIu64 " received, %" PRIu64 " dropped, %" PRIu64 " if-dropped%s%s\n",
		capture_name(cap), n.received, n.dropped, n.if_dropped, when[0] ? " " : "", when);
	if (n.dropped + n.if_dropped > 0 && strcmp(when, "so far") != 0)
		fprintf(stderr, "wirewarden sniff: frames were dropped: verdicts of the flows that lost them are less "
				"sure; raise --buffer-size or narrow the filter\n");
}

/* One stderr line when fragmented IPv4 datagrams could not be put back
 * together: their bytes are missing from the flows (the verdicts say so). */
static void report_fragments(struct ipfrag *r)
{
	const struct ipfrag_stats *st = ipfrag_stats(r);

	if (st->contradicted > 0)
		fprintf(stderr, "wirewarden sniff: %" PRIu64 " IPv4 fragment%s contradicted a datagram already put back "
				"together; the first copy was used\n", st->contradicted, st->contradicted == 1 ? "" : "s");
	if (st->given_up == 0)
		return;
	fprintf(stderr, "wirewarden sniff: %" PRIu64 " fragmented IPv4 datagram%s could not be put back together (%" PRIu64
			" incomplete, %" PRIu64 " with conflicting fragments, %" PRIu64 " cut by the snap length, %" PRIu64
			" over the memory caps); their bytes count as capture gaps\n",
		st->given_up, st->given_up == 1 ? "" : "s", st->timeouts, st->conflicts, st->cut, st->evicted);
}

/* Opens the capture <o> names, with its filter, and for a live -w a copy of
 * the frames in a temporary file (its path in <tee_path>, "" when none).
 * NULL after printing why, with the exit status in <rc>. */
static struct capture *open_capture(const struct sniff_opts *o, char *tee_path, size_t tee_cap, int *rc)
{
	char err[CAPTURE_ERR_LEN];
	struct capture *cap;

	tee_path[0] = '\0';
	*rc = CLI_FAILURE;
	if (o->iface) {
		struct capture_live_config lc = { .iface = o->iface, .snaplen = o->snaplen,
						  .buffer_bytes = o->buffer_bytes };
		cap = capture_open_live(&lc, err, sizeof(err));
		if (cap == NULL) {
			fprintf(stderr, "wirewarden sniff: %s; check the interface name ('ip link' lists them) and run as "
					"root or with CAP_NET_RAW\n", err);
			return NULL;
		}
	} else {
		cap = capture_open(o->path, err, sizeof(err));
		if (cap == NULL) {
			fprintf(stderr, "wirewarden sniff: %s; check the path and that it is a pcap or pcapng file\n", err);
			return NULL;
		}
	}
	if (o->filter && capture_set_filter(cap, o->filter, err, sizeof(err)) != 0) {
		fprintf(stderr, "wirewarden sniff: %s; use tcpdump's filter syntax, e.g. 'tcp port 1883'\n", err);
		capture_close(cap);
		*rc = CLI_USAGE;
		return NULL;
	}
	if (o->iface && o->write) {
		const char *dir = getenv("TMPDIR");
		int fd;
		snprintf(tee_path, tee_cap, "%s/wirewarden-sniff-XXXXXX", dir && dir[0] ? dir : "/tmp");
		fd = mkstemp(tee_path);
		if (fd < 0) {
			fprintf(stderr, "wirewarden sniff: -w needs a temporary copy of the live capture: %s: %s; set "
					"TMPDIR to a writable directory\n", tee_path, strerror(errno));
			tee_path[0] = '\0';
			capture_close(cap);
			return NULL;
		}
		if (capture_tee_fd(cap, fd, err, sizeof(err)) != 0) {
			fprintf(stderr, "wirewarden sniff: %s\n", err);
			unlink(tee_path);
			tee_path[0] = '\0';
			capture_close(cap);
			return NULL;
		}
	}
	*rc = CLI_OK;
	return cap;
}

/* Only the events of what happened reach the sniffer's outputs: the engine
 * runs the take-over policy in observe mode so that storms are reported, and
 * its would_disconnect (what a proxy would have done) is not the sniffer's
 * business. */
static void facts_only_sink(void *ctx, const struct evt *e)
{
	if (e->code != EVT_WOULD_DISCONNECT)
		evt_emit(ctx, e);
}

int cmd_sniff(int argc, char **argv)
{
	struct sniff_opts o;
	struct packets_config pcfg;
	struct tcp_stream_config tcfg;
	struct tcp_stream_ops ops;
	struct capture *cap;
	struct packets *pk = NULL;
	struct tcp_stream *ts = NULL;
	struct engine *eng = NULL;
	struct verdicts *vd = NULL;
	struct evt_sinks outputs = { 0 }, facts = { 0 }, sinks = { 0 };
	struct shutdown_watch *sw = NULL;
	struct ipfrag *frags = NULL;
	struct saved_signals saved;
	FILE *json = NULL;
	struct capture_frame fr;
	enum capture_status st = CAPTURE_END;
	char err[CAPTURE_ERR_LEN], tee_path[512];
	uint64_t frames = 0;
	int64_t deadline = 0;
	bool live;
	int dlt, rc = parse_args(argc, argv, &o);

	if (rc >= 0) {
		free(o.filter_buf);
		return rc;
	}
	cap = open_capture(&o, tee_path, sizeof(tee_path), &rc);
	if (cap == NULL) {
		free(o.filter_buf);
		return rc;
	}
	live = capture_is_live(cap);
	dlt = capture_link_type(cap);
	if (!link_type_supported(dlt)) {
		fprintf(stderr,
			"wirewarden sniff: %s: link type %s (%d) is not supported; capture on Ethernet, 'any' (Linux "
			"SLL/SLL2), raw IP or loopback\n",
			capture_name(cap), capture_link_name(cap), dlt);
		rc = CLI_FAILURE;
		goto out;
	}

	/* Verdicts: the session engine, observing only, on capture time. */
	if (!o.packets) {
		if (o.json) {
			json = strcmp(o.json, "-") == 0 ? stdout : fopen(o.json, "w");
			if (json == NULL) {
				fprintf(stderr, "wirewarden sniff: --json %s: %s\n", o.json, strerror(errno));
				rc = CLI_FAILURE;
				goto out;
			}
			if (live && json != stdout)
				setvbuf(json, NULL, _IOLBF, 0);
		}
		struct verdicts_config vc = { .json = json, .timeline = json == stdout ? NULL : stdout,
					      .comments = o.write != NULL };
		struct ww_config defaults;
		struct engine_config ec = { .passive = true, .protocol = "mqtt" };
		/* Policies stay off: the sniffer explains what happened, it does not
		 * judge what a proxy would have done. The one exception is the
		 * take-over watch, whose storm report is a fact about the clients
		 * (its would_disconnect is filtered out above). */
		ww_config_defaults(&defaults);
		ec.pol.takeover = defaults.policies.takeover;
		ec.pol.takeover.mode = WW_MODE_OBSERVE;
		vd = verdicts_new(&vc);
		/* engine -> shutdown watch -> facts only -> verdicts */
		if (vd && verdicts_attach(vd, &outputs) == 0 && evt_sinks_add(&facts, facts_only_sink, &outputs) == 0 &&
		    (sw = shutdown_watch_new(&facts)) != NULL && evt_sinks_add(&sinks, shutdown_watch_sink, sw) == 0)
			eng = engine_new(&ec, &sinks);
		if (eng == NULL) {
			fprintf(stderr, "wirewarden sniff: out of memory setting up the engine\n");
			rc = CLI_FAILURE;
			goto out;
		}
	}
	if (live) /* a verdict shows up when its connection ends, not at exit */
		setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.out = stdout;
	pcfg.json = o.packets;
	pcfg.quiet = !o.packets;
	pcfg.eng = eng;
	pcfg.max_packet = o.max_packet;
	memcpy(pcfg.ports, o.ports, sizeof(o.ports));
	pcfg.n_ports = o.n_ports;
	memcpy(pcfg.amps_ports, o.amps_ports, sizeof(o.amps_ports));
	pcfg.n_amps_ports = o.n_amps_ports;
	memset(&tcfg, 0, sizeof(tcfg));
	memcpy(tcfg.ports, o.ports, sizeof(o.ports));
	tcfg.n_ports = o.n_ports;
	pk = packets_new(&pcfg);
	if (pk != NULL) {
		packets_stream_ops(pk, &ops);
		ts = tcp_stream_new(&tcfg, &ops);
	}
	frags = ipfrag_new(NULL);
	if (ts == NULL || frags == NULL) {
		fprintf(stderr, "wirewarden sniff: out of memory setting up the flow table\n");
		rc = CLI_FAILURE;
		goto out;
	}

	signals_install(&saved);
	if (live) /* like tcpdump's "listening on": the capture runs from here */
		fprintf(stderr, "wirewarden sniff: capturing on %s, link type %s%s%s%s\n", capture_name(cap),
			capture_link_name(cap), o.filter ? ", filter '" : "", o.filter ? o.filter : "", o.filter ? "'" : "");
	if (live && o.duration_us)
		deadline = mono_us() + o.duration_us;
	for (;;) {
		if (stop_signal)
			break;
		if (counts_wanted) {
			counts_wanted = 0;
			report_counts(cap, "so far");
		}
		if (o.count && frames >= o.count)
			break;
		if (deadline && mono_us() >= deadline)
			break;
		st = capture_next(cap, &fr, err, sizeof(err));
		if (st == CAPTURE_AGAIN) {
			/* Live frames carry the wall clock: a held verdict (a burst
			 * of broker closes) comes out on time even when nothing
			 * more is captured, as after a broker shut down. */
			if (sw)
				shutdown_watch_tick(sw, wall_us());
			continue;
		}
		if (st != CAPTURE_FRAME)
			break;
		frames++;
		struct link_tcp seg;
		struct tcp_when at = { fr.num, fr.ts_us };
		if (ipfrag_link_decode(frags, dlt, cursor_make(fr.data, fr.caplen), fr.ts_us, &seg, NULL) == LINK_TCP)
			tcp_stream_segment(ts, &seg, &at);
		if (sw)
			shutdown_watch_tick(sw, fr.ts_us);
	}
	signals_restore(&saved);
	/* A read error or a stop still reports what came before it. */
	ipfrag_finish(frags);
	tcp_stream_finish(ts);
	if (sw)
		shutdown_watch_flush(sw);
	rc = CLI_OK;
	if (st == CAPTURE_ERROR) {
		fprintf(stderr, "wirewarden sniff: %s; the output covers the frames before it\n", err);
		rc = CLI_FAILURE;
	} else if (stop_signal && !live) {
		fprintf(stderr, "wirewarden sniff: stopped by signal %d after frame %" PRIu64
				"; the output covers the frames before it\n", (int)stop_signal, frames);
	}
	report_counts(cap, "");
	report_fragments(frags);
	if (vd && json != stdout)
		verdicts_summary(vd, stdout);
	if (live) { /* flush the copy for the second pass */
		capture_close(cap);
		cap = NULL;
	}
	if (vd && o.write && rc == CLI_OK)
		rc = write_commented(&o, live ? tee_path : o.path, live, frames, vd, dlt);
	if (fflush(stdout) != 0 || ferror(stdout) || packets_stats(pk)->write_errors > 0 ||
	    (vd && verdicts_write_errors(vd) > 0) || (json && json != stdout && fflush(json) != 0)) {
		fprintf(stderr, "wirewarden sniff: writing the output failed: %s\n", strerror(errno));
		rc = CLI_FAILURE;
	}
out:
	tcp_stream_free(ts);
	ipfrag_free(frags);
	packets_free(pk);
	engine_free(eng);
	shutdown_watch_free(sw);
	verdicts_free(vd);
	if (json && json != stdout)
		fclose(json);
	capture_close(cap);
	if (tee_path[0])
		unlink(tee_path);
	free(o.filter_buf);
	return rc;
}
