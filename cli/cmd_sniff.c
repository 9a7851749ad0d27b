/* `wirewarden sniff`: options, then the read loop that wires the sniffer's
 * layers together: capture (frames) -> link (TCP segments) -> tcp_stream
 * (ordered bytes per flow direction) -> packets (MQTT packets and flow lines
 * on stdout). Messages about wirewarden itself go to stderr, one line each,
 * saying what to do; exit status as cli/cli.h describes. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pcap/dlt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "proto/mqtt.h"
#include "sniff/capture.h"
#include "sniff/link.h"
#include "policy/engine.h"
#include "sniff/packets.h"
#include "sniff/pcapng.h"
#include "sniff/tcp_stream.h"
#include "sniff/verdicts.h"

#define MQTT_PORT 1883
#define MQTT_TLS_PORT 8883
#define MAX_PACKET_LIMIT (MQTT_MAX_REMAINING_LEN + 5u) /* largest Remaining Length + fixed header */

struct sniff_opts {
	const char *path;
	const char *json;      /* --json FILE ('-' = stdout) */
	const char *write;     /* -w OUT.pcapng */
	bool packets;
	uint16_t ports[TCP_STREAM_MAX_PORTS];
	size_t n_ports;
	uint32_t max_packet;
};

void cmd_sniff_usage(FILE *out)
{
	fprintf(out,
		"usage: wirewarden sniff -r FILE [--json OUT] [-w OUT.pcapng] [--port N]...\n"
		"       wirewarden sniff -r FILE --packets [--port N]... [--max-packet SIZE]\n"
		"\n"
		"Reads a pcap or pcapng capture (FILE '-' is standard input) and explains the\n"
		"MQTT connections in it: for each one, who closed it, why, how sure, and on\n"
		"which frames. The default output is a timeline and a per-client summary.\n"
		"\n"
		"  -r, --read FILE       capture to read\n"
		"      --json OUT        one JSON line per verdict and event ('-' = stdout)\n"
		"  -w, --write OUT       a pcapng copy of the capture with the verdicts as packet\n"
		"                        comments (tshark -Y frame.comment shows them)\n"
		"      --packets         one JSON line per MQTT packet, then one per flow\n"
		"      --port N          also treat TCP port N as MQTT (repeatable;\n"
		"                        1883 and 8883 always are)\n"
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

/* "65536", "64k", "64KiB", "4M", "4MiB" (binary multiples). */
static bool parse_size(const char *s, uint32_t *size)
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
	if (v > MAX_PACKET_LIMIT / mult || v * mult < 2)
		return false;
	*size = (uint32_t)(v * mult);
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

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct sniff_opts *o)
{
	static const struct option longopts[] = {
		{ "read", required_argument, NULL, 'r' },
		{ "packets", no_argument, NULL, 'P' },
		{ "json", required_argument, NULL, 'J' },
		{ "write", required_argument, NULL, 'w' },
		{ "port", required_argument, NULL, 'p' },
		{ "max-packet", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint16_t port;
	int c;

	memset(o, 0, sizeof(*o));
	o->max_packet = PACKETS_DEFAULT_MAX_PACKET;
	add_port(o, MQTT_PORT);
	add_port(o, MQTT_TLS_PORT);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->path = optarg;
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
		case 'm':
			if (!parse_size(optarg, &o->max_packet))
				return usage_error("--max-packet needs a size from 2 to 256M (e.g. 65536, 64k, 4M), not",
						   optarg);
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
	if (optind < argc)
		return usage_error("the capture goes after -r; unexpected argument", argv[optind]);
	if (o->path == NULL)
		return usage_error("no capture given: use -r FILE (or -r - for standard input)", NULL);
	if (o->write && strcmp(o->path, "-") == 0)
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

/* Second pass for -w: the capture again, as pcapng, with the verdicts'
 * comments on their evidence frames. */
static int write_commented(const struct sniff_opts *o, struct verdicts *v, int dlt)
{
	char err[CAPTURE_ERR_LEN];
	struct capture *cap = capture_open(o->path, err, sizeof(err));
	if (cap == NULL) {
		fprintf(stderr, "wirewarden sniff: %s; cannot read it again for -w\n", err);
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
	verdicts_comments_done(v);
	while (ifid >= 0 && (st = capture_next(cap, &fr, err, sizeof(err))) == CAPTURE_FRAME) {
		const char *c[8];
		unsigned n = verdicts_comments_for(v, fr.num, c, 8);
		if (pcapng_write_packet(w, (uint32_t)ifid, fr.ts_us, fr.data, fr.caplen, fr.wirelen, c, n) != 0)
			break;
	}
	capture_close(cap);
	if (pcapng_close(w) != 0 || ifid < 0) {
		fprintf(stderr, "wirewarden sniff: writing %s failed: %s\n", o->write, strerror(errno));
		return CLI_FAILURE;
	}
	return CLI_OK;
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
	FILE *json = NULL;
	struct capture_frame fr;
	enum capture_status st;
	char err[CAPTURE_ERR_LEN];
	int dlt, rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	cap = capture_open(o.path, err, sizeof(err));
	if (cap == NULL) {
		fprintf(stderr, "wirewarden sniff: %s; check the path and that it is a pcap or pcapng file\n", err);
		return CLI_FAILURE;
	}
	dlt = capture_link_type(cap);
	if (!link_type_supported(dlt)) {
		fprintf(stderr,
			"wirewarden sniff: %s: link type %s (%d) is not supported; capture on Ethernet, 'any' (Linux "
			"SLL/SLL2), raw IP or loopback\n",
			o.path, capture_link_name(cap), dlt);
		capture_close(cap);
		return CLI_FAILURE;
	}

	/* Verdicts: the session engine, observing only, on capture time. */
	if (!o.packets) {
		if (o.json) {
			json = strcmp(o.json, "-") == 0 ? stdout : fopen(o.json, "w");
			if (json == NULL) {
				fprintf(stderr, "wirewarden sniff: --json %s: %s\n", o.json, strerror(errno));
				capture_close(cap);
				return CLI_FAILURE;
			}
		}
		struct verdicts_config vc = { .json = json, .timeline = json == stdout ? NULL : stdout,
					      .comments = o.write != NULL };
		struct evt_sinks sinks = { 0 };
		struct engine_config ec = { .passive = true, .protocol = "mqtt" };
		/* Policies stay off: the sniffer explains what happened, it does not
		 * judge what a proxy would have done. */
		vd = verdicts_new(&vc);
		if (vd && verdicts_attach(vd, &sinks) == 0)
			eng = engine_new(&ec, &sinks);
		if (eng == NULL) {
			fprintf(stderr, "wirewarden sniff: out of memory setting up the engine\n");
			rc = CLI_FAILURE;
			goto out;
		}
	}

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.out = stdout;
	pcfg.json = o.packets;
	pcfg.quiet = !o.packets;
	pcfg.eng = eng;
	pcfg.max_packet = o.max_packet;
	memcpy(pcfg.ports, o.ports, sizeof(o.ports));
	pcfg.n_ports = o.n_ports;
	memset(&tcfg, 0, sizeof(tcfg));
	memcpy(tcfg.ports, o.ports, sizeof(o.ports));
	tcfg.n_ports = o.n_ports;
	pk = packets_new(&pcfg);
	if (pk != NULL) {
		packets_stream_ops(pk, &ops);
		ts = tcp_stream_new(&tcfg, &ops);
	}
	if (ts == NULL) {
		fprintf(stderr, "wirewarden sniff: out of memory setting up the flow table\n");
		rc = CLI_FAILURE;
		goto out;
	}

	while ((st = capture_next(cap, &fr, err, sizeof(err))) == CAPTURE_FRAME) {
		struct link_tcp seg;
		struct tcp_when at = { fr.num, fr.ts_us };
		if (link_decode(dlt, cursor_make(fr.data, fr.caplen), &seg, NULL) == LINK_TCP)
			tcp_stream_segment(ts, &seg, &at);
	}
	/* A read error still reports what came before it. */
	tcp_stream_finish(ts);
	rc = CLI_OK;
	if (st == CAPTURE_ERROR) {
		fprintf(stderr, "wirewarden sniff: %s; the output covers the frames before it\n", err);
		rc = CLI_FAILURE;
	}
	if (vd && json != stdout)
		verdicts_summary(vd, stdout);
	if (vd && o.write && rc == CLI_OK)
		rc = write_commented(&o, vd, dlt);
	if (fflush(stdout) != 0 || ferror(stdout) || packets_stats(pk)->write_errors > 0 ||
	    (vd && verdicts_write_errors(vd) > 0) || (json && json != stdout && fflush(json) != 0)) {
		fprintf(stderr, "wirewarden sniff: writing the output failed: %s\n", strerror(errno));
		rc = CLI_FAILURE;
	}
out:
	tcp_stream_free(ts);
	packets_free(pk);
	engine_free(eng);
	verdicts_free(vd);
	if (json && json != stdout)
		fclose(json);
	capture_close(cap);
	return rc;
}
