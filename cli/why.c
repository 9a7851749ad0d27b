/* `wirewarden why CLIENT FILE...`: every session of one client and why it
 * ended, from captures (run through the sniffer) and from wirewarden's own
 * JSON-lines event logs (the proxy's --events, the sniffer's --json). CLIENT
 * is a client id, a glob over client ids, or the client's ip:port. Sessions
 * are listed in time order with their source; a take-over storm shows as one
 * grouped entry. Broker logs are not read yet (exit 2 with a message). */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/escape.h"
#include "policy/evt.h"
#include "sniff/pipeline.h"

#define WHY_MAX_SESSIONS 100000
#define WHY_LINE_MAX (1 << 20)

struct why_session {
	char start[40], end[40];
	double duration_s;
	char client[64], broker[64], client_id[160];
	char reason[48], closed_by[16], confidence[16], id[8];
	char evidence[3][220];
	unsigned n_evidence;
	const char *source;
	bool storm;       /* a take-over storm entry, not a session */
	long long count;
};

struct why {
	const char *pattern;
	bool by_addr;     /* pattern is ip:port */
	struct why_session *s;
	size_t n, cap;
	size_t dropped;
	const char *source;
};

void cmd_why_usage(FILE *out)
{
	fputs("usage: wirewarden why CLIENT FILE... [--json] [--port N]...\n"
	      "\n"
	      "Every session of CLIENT found in FILEs, and why each ended. CLIENT is a\n"
	      "client id, a glob ('sensor-*'), or the client's ip:port. A FILE is a capture\n"
	      "(pcap or pcapng: it is run through `wirewarden sniff`) or a wirewarden event\n"
	      "log (JSON lines from `proxy --events` or `sniff --json`).\n"
	      "\n"
	      "      --json      one JSON object per session\n"
	      "      --port N    in captures, also treat TCP port N as MQTT (repeatable)\n"
	      "  -h, --help\n",
	      out);
}

static bool matches(const struct why *w, const char *client_id, const char *client)
{
	if (w->by_addr)
		return client && strcmp(client, w->pattern) == 0;
	return client_id && fnmatch(w->pattern, client_id, 0) == 0;
}

static struct why_session *add(struct why *w)
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
	s->source = w->source;
	return s;
}

/* Bounded copy; a longer text is cut (these are display fields). */
static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = 0;
}

/* ---- from the engine (captures) ------------------------------------------- */

static void capture_sink(void *ctx, const struct evt *e)
{
	struct why *w = ctx;
	if (e->code != EVT_DISCONNECT && e->code != EVT_TAKEOVER_STORM)
		return;
	char id[160] = "";
	if (e->client_id)
		escape_text(e->client_id, e->client_id_len, id, sizeof id);
	if (!matches(w, e->client_id ? id : NULL, e->client))
		return;
	struct why_session *s = add(w);
	if (!s)
		return;
	evt_format_ts(e->ts_us - (e->duration_us > 0 ? e->duration_us : 0), s->start, sizeof s->start);
	evt_format_ts(e->ts_us, s->end, sizeof s->end);
	s->duration_s = e->duration_us > 0 ? (double)e->duration_us / 1e6 : 0;
	copy(s->client, sizeof s->client, e->client);
	copy(s->broker, sizeof s->broker, e->broker);
	copy(s->client_id, sizeof s->client_id, id);
	copy(s->id, sizeof s->id, evt_event_id(e));
	s->storm = e->code == EVT_TAKEOVER_STORM;
	s->count = e->count;
	if (s->storm) {
		copy(s->reason, sizeof s->reason, "takeover_storm");
		copy(s->evidence[0], sizeof s->evidence[0], e->detail);
		s->n_evidence = 1;
		return;
	}
	copy(s->reason, sizeof s->reason, evt_reason_name(e->reason));
	copy(s->closed_by, sizeof s->closed_by, evt_party_name(e->closed_by));
	copy(s->confidence, sizeof s->confidence, evt_confidence_name(e->confidence));
	for (unsigned i = 0; i < e->n_evidence && i < 3; i++)
		snprintf(s->evidence[i], sizeof s->evidence[i], "%.190s (frame %llu)", e->evidence[i].text,
			 (unsigned long long)e->evidence[i].frame);
	s->n_evidence = e->n_evidence < 3 ? e->n_evidence : 3;
}

/* ---- from wirewarden's JSON lines ------------------------------------------------ */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void json_line(struct why *w, const char *line)
{
	json_t *o = json_loads(line, 0, NULL);
	if (!o)
		return;
	const char *name = jstr(o, "name");
	bool storm = name && strcmp(name, "takeover_storm") == 0;
	if ((!name || (strcmp(name, "disconnect") != 0 && !storm)) || !matches(w, jstr(o, "client_id"), jstr(o, "client"))) {
		json_decref(o);
		return;
	}
	struct why_session *s = add(w);
	if (s) {
		double dur = json_number_value(json_object_get(o, "duration_s"));
		copy(s->end, sizeof s->end, jstr(o, "ts"));
		copy(s->start, sizeof s->start, jstr(o, "start") ? jstr(o, "start") : "");
		s->duration_s = dur;
		copy(s->client, sizeof s->client, jstr(o, "client"));
		copy(s->broker, sizeof s->broker, jstr(o, "broker"));
		copy(s->client_id, sizeof s->client_id, jstr(o, "client_id"));
		copy(s->id, sizeof s->id, jstr(o, "id"));
		copy(s->reason, sizeof s->reason, storm ? "takeover_storm" : jstr(o, "reason"));
		copy(s->closed_by, sizeof s->closed_by, jstr(o, "closed_by"));
		copy(s->confidence, sizeof s->confidence, jstr(o, "confidence"));
		s->storm = storm;
		s->count = json_integer_value(json_object_get(o, "count"));
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(o, "evidence"), i, ev) {
			if (i >= 3)
				break;
			long long fr = json_integer_value(json_object_get(ev, "frame"));
			if (fr > 0)
				snprintf(s->evidence[i], sizeof s->evidence[i], "%.190s (frame %lld)",
					 jstr(ev, "text") ? jstr(ev, "text") : "", fr);
			else
				copy(s->evidence[i], sizeof s->evidence[i], jstr(ev, "text"));
			s->n_evidence = (unsigned)i + 1;
		}
		if (storm && s->n_evidence == 0) {
			copy(s->evidence[0], sizeof s->evidence[0], jstr(o, "detail"));
			s->n_evidence = 1;
		}
	}
	json_decref(o);
}

static int read_json_lines(struct why *w, FILE *fp, const char *path)
{
	char *line = malloc(WHY_LINE_MAX);
	if (!line)
		return -1;
	size_t bad = 0;
	while (fgets(line, WHY_LINE_MAX, fp)) {
		size_t n = strlen(line);
		if (n && line[n - 1] != '\n' && !feof(fp)) { /* longer than any event: skip the rest */
			int c;
			while ((c = fgetc(fp)) != EOF && c != '\n')
				;
			bad++;
			continue;
		}
		json_line(w, line);
	}
	free(line);
	if (bad)
		fprintf(stderr, "wirewarden why: %s: %zu over-long lines skipped\n", path, bad);
	return ferror(fp) ? -1 : 0;
}

/* ---- output -------------------------------------------------------------------- */

static int by_end(const void *a, const void *b)
{
	const struct why_session *x = a, *y = b;
	return strcmp(x->end, y->end);
}

static void print_text(const struct why *w)
{
	printf("%zu session%s of %s\n", w->n, w->n == 1 ? "" : "s", w->pattern);
	for (size_t i = 0; i < w->n; i++) {
		const struct why_session *s = &w->s[i];
		if (s->storm) {
			printf("\n%s  client[%s]  TAKE-OVER STORM (%lld take-overs)  %s\n    %s\n    source: %s\n", s->end,
			       s->client_id, s->count, s->id, s->n_evidence ? s->evidence[0] : "", s->source);
			continue;
		}
		printf("\n%s .. %s (%.1f s)  client[%s]  %s -> %s\n", s->start[0] ? s->start : "?", s->end, s->duration_s,
		       s->client_id, s->client, s->broker);
		printf("    %s, closed by %s [%s]  %s\n", s->reason, s->closed_by[0] ? s->closed_by : "unknown",
		       s->confidence[0] ? s->confidence : "unknown", s->id);
		for (unsigned k = 0; k < s->n_evidence; k++)
			printf("    - %s\n", s->evidence[k]);
		printf("    source: %s\n", s->source);
	}
}

static void print_json(const struct why *w)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct why_session *s = &w->s[i];
		json_t *ev = json_array();
		for (unsigned k = 0; k < s->n_evidence; k++)
			json_array_append_new(ev, json_string(s->evidence[k]));
		json_t *o = json_pack("{ss ss ss sf ss ss ss ss ss ss ss so ss}", "type", s->storm ? "takeover_storm" : "session",
				      "start", s->start, "end", s->end, "duration_s", s->duration_s, "client_id", s->client_id,
				      "client", s->client, "broker", s->broker, "reason", s->reason, "closed_by", s->closed_by,
				      "confidence", s->confidence, "id", s->id, "evidence", ev, "source", s->source);
		char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (line)
			puts(line);
		free(line);
		json_decref(o);
	}
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

int cmd_why(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "port", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	bool json = false;
	uint16_t ports[32] = { 1883, 8883 };
	size_t n_ports = 2;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 'p': {
			long v = strtol(optarg, NULL, 10);
			if (v < 1 || v > 65535 || n_ports == 32) {
				fprintf(stderr, "wirewarden why: --port needs a TCP port from 1 to 65535\n");
				return CLI_USAGE;
			}
			ports[n_ports++] = (uint16_t)v;
			break;
		}
		case 'h': cmd_why_usage(stdout); return CLI_OK;
		default: cmd_why_usage(stderr); return CLI_USAGE;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "wirewarden why: give a client and at least one file: wirewarden why CLIENT FILE...\n");
		return CLI_USAGE;
	}
	struct why w = { .pattern = argv[optind] };
	/* ip:port (IPv4, or [v6]:port) selects one connection's client side. */
	const char *colon = strrchr(w.pattern, ':');
	w.by_addr = colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
		    (w.pattern[0] == '[' || strspn(w.pattern, "0123456789.") == (size_t)(colon - w.pattern));
	int rc = CLI_OK;
	for (int i = optind + 1; i < argc; i++) {
		const char *path = argv[i];
		w.source = path;
		FILE *fp = fopen(path, "rb");
		unsigned char m[4] = { 0 };
		if (!fp || fread(m, 1, 4, fp) != 4) {
			fprintf(stderr, "wirewarden why: %s: %s\n", path, fp ? "too short to be a capture or a log" : strerror(errno));
			if (fp)
				fclose(fp);
			rc = CLI_FAILURE;
			continue;
		}
		if (is_capture(m)) {
			fclose(fp);
			struct evt_sinks sinks = { 0 };
			evt_sinks_add(&sinks, capture_sink, &w);
			char err[256];
			if (sniff_pipeline_file(path, ports, n_ports, &sinks, err, sizeof err) != 0) {
				fprintf(stderr, "wirewarden why: %s\n", err);
				rc = CLI_FAILURE;
			}
		} else if (m[0] == '{') {
			rewind(fp);
			if (read_json_lines(&w, fp, path) != 0) {
				fprintf(stderr, "wirewarden why: %s: read error\n", path);
				rc = CLI_FAILURE;
			}
			fclose(fp);
		} else {
			fclose(fp);
			fprintf(stderr,
				"wirewarden why: %s: not a capture (pcap, pcapng) or a wirewarden event log (JSON lines); broker logs "
				"are not read yet\n",
				path);
			rc = CLI_USAGE;
		}
	}
	if (w.n)
		qsort(w.s, w.n, sizeof *w.s, by_end);
	if (json)
		print_json(&w);
	else
		print_text(&w);
	if (w.dropped)
		fprintf(stderr, "wirewarden why: %zu sessions over the limit of %d not shown\n", w.dropped, WHY_MAX_SESSIONS);
	free(w.s);
	return rc;
}
