/* `wirewarden why CLIENT FILE...`: one client's whole story. FILEs may be
 * captures (run through the sniffer), wirewarden event logs (the proxy's or
 * the sniffer's JSON lines) and broker logs (mosquitto, AMPS, HiveMQ, EMQX,
 * RabbitMQ; as written, or wrapped by a log collector: why_unwrap.c),
 * told apart by their content (--format forces one). Every source's sessions
 * of CLIENT (a client id, a glob over client ids, or ip:port) are joined into
 * one entry per connection with each source's evidence side by side
 * (why_join.c). `why --summary FILE...` counts disconnects by reason and by
 * client, per source. The parts are listed in why.h. */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/why.h"

#define WHY_SAMPLE_LINES 64
#define WHY_SAMPLE_BYTES 65536

void cmd_why_usage(FILE *out)
{
	fputs("usage: wirewarden why CLIENT FILE... [options]\n"
	      "       wirewarden why --summary FILE... [--json]\n"
	      "\n"
	      "Every session of CLIENT found in FILEs, when and why each ended, with each\n"
	      "source's evidence side by side. CLIENT is a client id, a glob ('sensor-*'),\n"
	      "or the client's ip:port. A FILE is a capture (pcap, pcapng: run through the\n"
	      "sniffer), a wirewarden event log (JSON lines from `proxy --events` or\n"
	      "`sniff --json`), or a broker log: mosquitto (log_type all, with timestamps),\n"
	      "AMPS, HiveMQ (hivemq.log, event.log), EMQX 5 or RabbitMQ's MQTT plugin, as\n"
	      "written or as `docker compose logs`, `docker logs -t`, docker's JSON file,\n"
	      "syslog or the journal pass it on. The kind is read from the content.\n"
	      "Sessions seen by several sources are joined by client id, address and\n"
	      "time; a broker log's clock offset is measured on the sessions it shares\n"
	      "with the wire (and printed), or set with --clock-skew. Where sources name\n"
	      "different reasons, the entry says so. A run of take-overs of one client id\n"
	      "is one entry. Lines of a broker log that name CLIENT but that wirewarden\n"
	      "does not read are shown as context.\n"
	      "\n"
	      "      --json            one JSON object per session (JSON lines)\n"
	      "      --summary         per source: disconnects by reason, the clients that\n"
	      "                        disconnect most (no CLIENT argument)\n"
	      "      --since TIME      only sessions that end at or after TIME (ISO 8601, UTC\n"
	      "      --until TIME        unless it carries a zone)\n"
	      "      --clock-skew D    add D to every broker log time instead of measuring it:\n"
	      "                        seconds ('-3600', '0.5') or [+-]HH:MM[:SS]\n"
	      "      --format KIND     read every FILE as KIND: capture, events, mosquitto,\n"
	      "                        amps, hivemq, emqx, rabbitmq\n"
	      "      --port N          in captures, also treat TCP port N as MQTT (repeatable)\n"
	      "      --amps-port N     in captures, treat TCP port N as 60East AMPS (repeatable)\n"
	      "  -h, --help\n",
	      out);
}

bool why_matches(const struct why *w, const char *client_id, size_t id_len, const char *addr, size_t addr_len)
{
	if (w->by_addr)
		return addr && addr_len == strlen(w->pattern) && memcmp(addr, w->pattern, addr_len) == 0;
	if (!client_id)
		return false;
	char id[256];
	if (id_len >= sizeof id)
		return false;
	memcpy(id, client_id, id_len);
	id[id_len] = 0;
	return fnmatch(w->pattern, id, 0) == 0;
}

struct why_session *why_add(struct why *w)
{
	if (w->n >= WHY_MAX_SESSIONS) {
		w->dropped++;
		return NULL;
	}
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 64;
		struct why_session *ns = realloc(w->s, ncap * sizeof *ns);
		if (!ns) {
			w->dropped++;
			return NULL;
		}
		w->s = ns;
		w->cap = ncap;
	}
	struct why_session *s = &w->s[w->n++];
	memset(s, 0, sizeof *s);
	s->start_us = s->end_us = s->log_start_us = s->log_end_us = -1;
	s->group = -1;
	s->story = -1;
	s->keepalive = -1;
	s->source = w->source;
	s->kind = w->kind;
	return s;
}

void why_evidence(struct why_session *s, const char *fmt, ...)
{
	if (s->n_evidence >= WHY_EVIDENCE) {
		s->n_more++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->evidence[s->n_evidence++], WHY_TEXT, fmt, ap);
	va_end(ap);
}

static bool is_capture(const unsigned char m[4])
{
	static const unsigned char magic[][4] = {
		{ 0xd4, 0xc3, 0xb2, 0xa1 }, { 0xa1, 0xb2, 0xc3, 0xd4 }, { 0x4d, 0x3c, 0xb2, 0xa1 },
		{ 0xa1, 0xb2, 0x3c, 0x4d }, { 0x0a, 0x0d, 0x0d, 0x0a },
	};
	for (size_t i = 0; i < sizeof magic / sizeof magic[0]; i++)
		if (memcmp(m, magic[i], 4) == 0)
			return true;
	return false;
}

enum file_kind { FK_BAD, FK_CAPTURE, FK_EVENTS, FK_LOG };

struct input {
	const char *path;
	enum file_kind kind;
	const struct why_format *fmt;
	int group;
	int64_t first_ts;
	bool wrapped; /* lines carry a log collector's wrapping (why_unwrap) */
	struct why_unwrap_ref ref;
};

static int group_of(const struct why_format *f)
{
	return f == &why_format_mosquitto ? 0
	       : f == &why_format_amps    ? 1
	       : f == &why_format_hivemq  ? 2
	       : f == &why_format_emqx    ? 3
					  : 4;
}

/* The month a file was last written: what dates a syslog stamp in it. */
static struct why_unwrap_ref unwrap_ref_of(const char *path)
{
	struct stat st;
	struct tm tm;
	time_t t = stat(path, &st) == 0 ? st.st_mtime : time(NULL);
	if (!gmtime_r(&t, &tm))
		return (struct why_unwrap_ref){ 1970, 1 };
	return (struct why_unwrap_ref){ tm.tm_year + 1900, (unsigned)tm.tm_mon + 1 };
}

/* Which broker log <buf,got> (a file's first bytes) is, and whether its lines are wrapped by a log collector. */
static const struct why_format *detect_log(struct input *in, char *buf, size_t got, const struct why_format *forced)
{
	struct why_text lines[WHY_SAMPLE_LINES];
	size_t n = 0, at = 0;
	while (at < got && n < WHY_SAMPLE_LINES) {
		char *nl = memchr(buf + at, '\n', got - at);
		size_t len = nl ? (size_t)(nl - (buf + at)) : got - at;
		if (!nl && got == WHY_SAMPLE_BYTES)
			break; /* a cut line says nothing */
		if (len && buf[at + len - 1] == '\r')
			len--;
		if (len)
			lines[n++] = (struct why_text){ buf + at, len };
		at += (nl ? (size_t)(nl - (buf + at)) + 1 : len);
		if (!nl)
			break;
	}
	char *scratch = malloc(WHY_SAMPLE_BYTES + WHY_UNWRAP_EXTRA);
	if (!scratch)
		return forced;
	in->ref = unwrap_ref_of(in->path);
	const struct why_format *f =
		why_format_detect(lines, n, forced, &in->ref, scratch, WHY_SAMPLE_BYTES + WHY_UNWRAP_EXTRA, &in->wrapped);
	free(scratch);
	return f;
}

/* Whether a file of JSON lines is a broker log a collector wrote (docker's
 * json-file, `journalctl -o json`) rather than wirewarden's events. */
static bool json_log(const char *buf, size_t got)
{
	const char *nl = memchr(buf, '\n', got);
	size_t n = nl ? (size_t)(nl - buf) : got;
	static const char *const keys[] = { "\"log\":", "\"MESSAGE\":" };
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
		for (const char *p = buf; (p = why_find(p, n - (size_t)(p - buf), keys[k])) != NULL; p++)
			if (p > buf && p[-1] != '\\') /* a key, not text inside an event's string */
				return true;
	return false;
}

/* What <path> is, from its first bytes (and first lines, for a broker log). */
static enum file_kind classify(struct input *in, const char *forced, char *err, size_t errlen)
{
	FILE *fp = fopen(in->path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", in->path, strerror(errno));
		return FK_BAD;
	}
	char *buf = malloc(WHY_SAMPLE_BYTES + 1);
	size_t got = buf ? fread(buf, 1, WHY_SAMPLE_BYTES, fp) : 0;
	fclose(fp);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return FK_BAD;
	}
	enum file_kind k = FK_BAD;
	if (forced) {
		const struct why_format *f;
		if (strcmp(forced, "capture") == 0)
			k = FK_CAPTURE;
		else if (strcmp(forced, "events") == 0)
			k = FK_EVENTS;
		else if ((f = why_format_find(forced)) != NULL && (in->fmt = detect_log(in, buf, got, f)) != NULL)
			k = FK_LOG;
	} else if (got >= 4 && is_capture((const unsigned char *)buf)) {
		k = FK_CAPTURE;
	} else if (got >= 1 && buf[0] == '{' && !json_log(buf, got)) {
		k = FK_EVENTS;
	} else if ((in->fmt = detect_log(in, buf, got, NULL)) != NULL) {
		k = FK_LOG;
	}
	free(buf);
	if (k == FK_BAD)
		snprintf(err, errlen,
			 "%s: not a capture (pcap, pcapng), a wirewarden event log (JSON lines) or a broker log wirewarden "
			 "reads (mosquitto, AMPS, HiveMQ, EMQX, RabbitMQ); --format forces one",
			 in->path);
	if (k == FK_LOG) {
		in->group = group_of(in->fmt);
		in->first_ts = why_log_first_ts(in->path, in->fmt, in->wrapped ? &in->ref : NULL);
	}
	return k;
}

static int by_group_time(const void *a, const void *b)
{
	const struct input *x = a, *y = b;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	if (x->kind != FK_LOG)
		return 0;
	if (x->group != y->group)
		return x->group - y->group;
	return (x->first_ts > y->first_ts) - (x->first_ts < y->first_ts);
}

static void set_needle(struct why *w)
{
	const char *p = w->pattern;
	if (w->by_addr || !strpbrk(p, "*?[\\")) {
		why_copy(w->needle, sizeof w->needle, p);
		return;
	}
	/* a glob: its longest literal run, if long enough to mean something */
	size_t best = 0, best_at = 0;
	for (size_t i = 0; p[i];) {
		size_t n = strcspn(p + i, "*?[\\");
		if (n > best)
			best = n, best_at = i;
		i += n ? n : 1;
	}
	if (best >= 3)
		why_copyn(w->needle, sizeof w->needle, p + best_at, best);
}

/* Appends the TCP port <arg> to <ports> (<*n> of <cap> used); false, with a
 * message naming <option>, when it is not a port or there is no room. */
static bool add_port(const char *option, const char *arg, uint16_t *ports, size_t *n, size_t cap)
{
	long v = strtol(arg, NULL, 10);
	if (v < 1 || v > 65535 || *n == cap) {
		fprintf(stderr, "wirewarden why: --%s needs a TCP port from 1 to 65535\n", option);
		return false;
	}
	ports[(*n)++] = (uint16_t)v;
	return true;
}

int cmd_why(int argc, char **argv)
{
	enum { O_SINCE = 256, O_UNTIL, O_SKEW, O_FORMAT, O_SUMMARY, O_AMPS_PORT };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },          { "port", required_argument, NULL, 'p' },
		{ "since", required_argument, NULL, O_SINCE }, { "until", required_argument, NULL, O_UNTIL },
		{ "clock-skew", required_argument, NULL, O_SKEW }, { "format", required_argument, NULL, O_FORMAT },
		{ "summary", no_argument, NULL, O_SUMMARY }, { "amps-port", required_argument, NULL, O_AMPS_PORT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	uint16_t ports[32] = { 1883, 8883 }, amps_ports[16];
	size_t n_ports = 2, n_amps_ports = 0;
	const char *forced = NULL;
	struct why w = { .since_us = INT64_MIN, .until_us = INT64_MAX };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 'p':
			if (!add_port("port", optarg, ports, &n_ports, sizeof ports / sizeof ports[0]))
				return CLI_USAGE;
			break;
		case O_AMPS_PORT:
			if (!add_port("amps-port", optarg, amps_ports, &n_amps_ports, sizeof amps_ports / sizeof amps_ports[0]))
				return CLI_USAGE;
			break;
		case O_SINCE:
		case O_UNTIL:
			if (!why_time_parse_arg(optarg, ch == O_SINCE ? &w.since_us : &w.until_us)) {
				fprintf(stderr, "wirewarden why: --%s needs a time like 2026-11-23T20:12:00 or 2026-11-23T20:12:00+01:00\n",
					ch == O_SINCE ? "since" : "until");
				return CLI_USAGE;
			}
			break;
		case O_SKEW:
			if (!why_duration_parse(optarg, &w.skew_us)) {
				fprintf(stderr, "wirewarden why: --clock-skew needs seconds ('-3600', '0.5') or [+-]HH:MM[:SS]\n");
				return CLI_USAGE;
			}
			w.skew_given = true;
			break;
		case O_FORMAT:
			if (strcmp(optarg, "capture") != 0 && strcmp(optarg, "events") != 0 && !why_format_find(optarg)) {
				fprintf(stderr, "wirewarden why: --format is one of capture, events, mosquitto, amps, hivemq, emqx, rabbitmq\n");
				return CLI_USAGE;
			}
			forced = optarg;
			break;
		case O_SUMMARY: w.summary = true; break;
		case 'h': cmd_why_usage(stdout); return CLI_OK;
		default: cmd_why_usage(stderr); return CLI_USAGE;
		}
	}
	int first_file = optind + (w.summary ? 0 : 1);
	if (argc - first_file < 1) {
		fprintf(stderr, w.summary ? "wirewarden why: give at least one file: wirewarden why --summary FILE...\n"
					  : "wirewarden why: give a client and at least one file: wirewarden why CLIENT FILE...\n");
		return CLI_USAGE;
	}
	if (!w.summary) {
		w.pattern = argv[optind];
		/* ip:port (IPv4, or [v6]:port) selects one connection's client side. */
		const char *colon = strrchr(w.pattern, ':');
		w.by_addr = colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
			    (w.pattern[0] == '[' || strspn(w.pattern, "0123456789.") == (size_t)(colon - w.pattern));
		set_needle(&w);
	} else {
		w.pattern = "all clients";
		w.sum = why_summary_new();
		if (!w.sum) {
			fprintf(stderr, "wirewarden why: out of memory\n");
			return CLI_FAILURE;
		}
	}
	size_t n_in = (size_t)(argc - first_file);
	struct input *in = calloc(n_in, sizeof *in);
	if (!in) {
		fprintf(stderr, "wirewarden why: out of memory\n");
		return CLI_FAILURE;
	}
	int rc = CLI_OK;
	char err[512];
	for (size_t i = 0; i < n_in; i++) {
		in[i].path = argv[first_file + (int)i];
		in[i].kind = classify(&in[i], forced, err, sizeof err);
		if (in[i].kind == FK_BAD) {
			fprintf(stderr, "wirewarden why: %s\n", err);
			if (rc == CLI_OK)
				rc = errno == ENOENT || strstr(err, "not a capture") ? CLI_USAGE : CLI_FAILURE;
		}
	}
	/* the files of one broker in time order: a rotated log continues its predecessor */
	qsort(in, n_in, sizeof *in, by_group_time);
	for (size_t i = 0; i < n_in; i++) {
		w.source = in[i].path;
		switch (in[i].kind) {
		case FK_CAPTURE:
			w.kind = "capture";
			if (why_read_capture(&w, in[i].path, ports, n_ports, amps_ports, n_amps_ports, err, sizeof err) != 0) {
				fprintf(stderr, "wirewarden why: %s\n", err);
				rc = CLI_FAILURE;
			}
			break;
		case FK_EVENTS:
			w.kind = "event log";
			if (why_read_events(&w, in[i].path) != 0) {
				fprintf(stderr, "wirewarden why: %s: %s\n", in[i].path, strerror(errno));
				rc = CLI_FAILURE;
			}
			break;
		case FK_LOG:
			if (why_read_log(&w, in[i].path, in[i].fmt, in[i].group, in[i].wrapped ? &in[i].ref : NULL) != 0) {
				fprintf(stderr, "wirewarden why: %s: %s\n", in[i].path, strerror(errno));
				rc = CLI_FAILURE;
			}
			break;
		default:
			break;
		}
	}
	if (w.summary) {
		why_summary_print(w.sum, json, stdout);
	} else {
		why_logs_finish(&w);
		why_join(&w);
		if (json)
			why_print_json(&w, stdout);
		else
			why_print_text(&w, stdout);
	}
	if (w.long_lines)
		fprintf(stderr, "wirewarden why: %zu over-long lines cut\n", w.long_lines);
	if (w.dropped)
		fprintf(stderr, "wirewarden why: %zu sessions over the limit of %d not shown\n", w.dropped, WHY_MAX_SESSIONS);
	if (w.notes_dropped)
		fprintf(stderr, "wirewarden why: %zu context lines over the limit of %d not kept\n", w.notes_dropped,
			WHY_MAX_NOTES);
	free(in);
	free(w.s);
	free(w.notes);
	free(w.stories);
	free(w.storms);
	why_groups_free(&w);
	why_summary_free(w.sum);
	return rc;
}
