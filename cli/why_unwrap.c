/* What log collectors wrap around a broker's lines, taken off so that the
 * broker's reader sees the line the broker wrote. An operator rarely hands us
 * the broker's own file: more often it is `docker compose logs` ("mqtt-1  | "
 * before every line, colours when it ran on a terminal), `docker logs -t` or
 * `kubectl logs --timestamps` (an RFC 3339 time before the broker's own), or
 * syslog / the journal in the traditional "Nov 24 05:27:46 host tag[pid]: "
 * form, whose stamp has no year, or one JSON object per line: docker's
 * json-file log ({"log":"...\n","stream":...,"time":"...Z"}) and
 * `journalctl -o json` ({"MESSAGE":"...","__REALTIME_TIMESTAMP":"<us>",...}). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/why_log.h"

/* Copies <line> into <out> without ANSI escape sequences (CSI: ESC [ params
 * final); returns the length written. <out> holds at least <n> bytes. */
static size_t drop_escapes(const char *line, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		if (line[i] == '\x1b' && i + 1 < n && line[i + 1] == '[') {
			i += 2;
			while (i < n && (unsigned char)line[i] >= 0x20 && (unsigned char)line[i] <= 0x3f)
				i++;
			if (i < n)
				i++; /* the final byte */
			continue;
		}
		out[o++] = line[i++];
	}
	return o;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.';
}

/* The length of a compose prefix "service-1   | " at <s>, 0 if none. */
static size_t compose_prefix(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && i < 128 && name_char(s[i]))
		i++;
	if (i == 0)
		return 0;
	while (i < n && s[i] == ' ')
		i++;
	if (i >= n || s[i] != '|')
		return 0;
	i++;
	return i < n && s[i] == ' ' ? i + 1 : i;
}

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* "Mmm dd HH:MM:SS[.frac]" (dd may be " d") at <s>: written into <iso> as
 * "YYYY-MM-DDTHH:MM:SS[.frac]", the year the latest one not after <ref>'s
 * month (a log is read after it was written). Returns the bytes read, 0 if
 * <s> does not start so; <*iso_n> the bytes written (<iso> holds 40). */
static size_t syslog_stamp(const char *s, size_t n, const struct why_unwrap_ref *ref, char *iso, size_t *iso_n)
{
	if (n < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':')
		return 0;
	unsigned mo = 0;
	while (mo < 12 && memcmp(s, months[mo], 3) != 0)
		mo++;
	if (mo == 12)
		return 0;
	char d1 = s[4] == ' ' ? '0' : s[4];
	const char *t = s + 7;
	if (d1 < '0' || d1 > '3' || s[5] < '0' || s[5] > '9' || t[0] < '0' || t[0] > '2' || t[1] < '0' ||
	    t[1] > '9' || t[3] < '0' || t[3] > '5' || t[4] < '0' || t[4] > '9' || t[6] < '0' || t[6] > '6' ||
	    t[7] < '0' || t[7] > '9')
		return 0;
	size_t i = 15;
	if (i + 1 < n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9')
		for (i++; i < n && i < 24 && s[i] >= '0' && s[i] <= '9'; i++)
			;
	int year = ref->year - (mo + 1 > ref->month);
	if (year < 1000 || year > 9999)
		return 0;
	char *o = iso;
	o[0] = (char)('0' + year / 1000), o[1] = (char)('0' + year / 100 % 10);
	o[2] = (char)('0' + year / 10 % 10), o[3] = (char)('0' + year % 10);
	o[4] = '-', o[5] = (char)('0' + (mo + 1) / 10), o[6] = (char)('0' + (mo + 1) % 10), o[7] = '-';
	o[8] = d1, o[9] = s[5], o[10] = 'T';
	memcpy(o + 11, t, 8);
	memcpy(o + 19, s + 15, i - 15);
	*iso_n = 19 + (i - 15);
	return i;
}

/* The length of a syslog header "host tag[pid]: " at <s>, 0 if none. (The
 * names' letters keep EMQX's "[info] clientid: " from passing for one.) */
static size_t syslog_header(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && i < 256 && name_char(s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		return 0;
	size_t tag = ++i;
	while (i < n && i - tag < 64 && (name_char(s[i]) || s[i] == '/'))
		i++;
	if (i == tag || i >= n)
		return 0;
	if (s[i] == '[') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d || i >= n || s[i] != ']')
			return 0;
		i++;
	}
	return i + 1 < n && s[i] == ':' && s[i + 1] == ' ' ? i + 2 : 0;
}

/* The string value of <key> ("\"key\":") in the JSON object <s,n>, where the
 * key first stands outside a string: its bytes, still escaped, between the
 * quotes. (Nesting is not told apart: the collectors' objects are flat.) */
static bool json_string(const char *s, size_t n, const char *key, struct why_text *v)
{
	const char *end = s + n;
	for (const char *p = s; (p = why_find(p, (size_t)(end - p), key)) != NULL; p++) {
		if (p == s || p[-1] == '\\')
			continue; /* inside a string value, escaped */
		const char *q = p + strlen(key);
		while (q < end && *q == ' ')
			q++;
		if (q >= end || *q != '"')
			continue;
		const char *e = ++q;
		while (e < end && *e != '"')
			e += *e == '\\' && e + 1 < end ? 2 : 1;
		if (e >= end)
			return false;
		v->p = q;
		v->n = (size_t)(e - q);
		return true;
	}
	return false;
}

static unsigned hex4(const char *p)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
					: c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0);
	}
	return v;
}

/* JSON-unescapes <v> into <out> (at least v.n bytes: unescaping never grows);
 * returns the length, without a trailing newline. */
static size_t json_unescape(struct why_text v, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < v.n; i++) {
		char c = v.p[i];
		if (c != '\\' || i + 1 >= v.n) {
			out[o++] = c;
			continue;
		}
		c = v.p[++i];
		if (c == 'u' && i + 4 < v.n) {
			unsigned u = hex4(v.p + i + 1);
			i += 4;
			if (u < 0x80) {
				out[o++] = (char)u;
			} else if (u < 0x800) { /* 6 escaped bytes become at most 3 */
				out[o++] = (char)(0xc0 | u >> 6);
				out[o++] = (char)(0x80 | (u & 0x3f));
			} else {
				out[o++] = (char)(0xe0 | u >> 12);
				out[o++] = (char)(0x80 | (u >> 6 & 0x3f));
				out[o++] = (char)(0x80 | (u & 0x3f));
			}
			continue;
		}
		out[o++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c;
	}
	while (o > 0 && (out[o - 1] == '\n' || out[o - 1] == '\r'))
		o--;
	return o;
}

/* Writes "<iso>: <m,mn>" (mosquitto's log_timestamp_format shape) to <out>, where <m> lies
 * WHY_UNWRAP_EXTRA bytes into <out>, beyond what the stamp takes; returns the length. */
static size_t stamped(char *out, const char *iso, size_t iso_n, const char *m, size_t mn)
{
	memcpy(out, iso, iso_n);
	out[iso_n] = ':';
	out[iso_n + 1] = ' ';
	memmove(out + iso_n + 2, m, mn);
	return iso_n + 2 + mn;
}

/* A docker json-file or journal JSON line: its message, with the collector's
 * time before it when the broker wrote none, into <out>; 0 if it is neither. */
static size_t unwrap_json(const char *line, size_t n, char *out)
{
	struct why_text msg, t;
	char iso[40];
	size_t iso_n = 0;
	int64_t us;
	bool zoned;
	if (json_string(line, n, "\"log\":", &msg)) {
		if (json_string(line, n, "\"time\":", &t) && t.n < sizeof iso && why_time_parse(t.p, t.n, &us, &zoned) == t.n)
			memcpy(iso, t.p, iso_n = t.n);
	} else if (json_string(line, n, "\"MESSAGE\":", &msg)) {
		if (json_string(line, n, "\"__REALTIME_TIMESTAMP\":", &t) && t.n == 16 &&
		    why_time_parse(t.p, t.n, &us, &zoned) == t.n) {
			time_t secs = (time_t)(us / 1000000);
			struct tm tm;
			if (gmtime_r(&secs, &tm))
				iso_n = strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
			if (iso_n && iso_n + 9 < sizeof iso)
				iso_n += (size_t)snprintf(iso + iso_n, sizeof iso - iso_n, ".%06dZ", (int)(us % 1000000));
		}
	} else {
		return 0;
	}
	char *m = out + WHY_UNWRAP_EXTRA;
	size_t mn = json_unescape(msg, m);
	if (!iso_n || why_time_parse(m, mn, &us, &zoned) > 0) {
		memmove(out, m, mn);
		return mn;
	}
	return stamped(out, iso, iso_n, m, mn);
}

size_t why_unwrap(const char *line, size_t n, const struct why_unwrap_ref *ref, char *out, size_t cap)
{
	if (cap < n + WHY_UNWRAP_EXTRA)
		return 0;
	if (n > 0 && line[0] == '{')
		return unwrap_json(line, n, out);
	/* the unwrapped line is built WHY_UNWRAP_EXTRA bytes into <out>, room for a stamp before it, then
	 * moved to its start */
	char *work = out + WHY_UNWRAP_EXTRA;
	size_t len = drop_escapes(line, n, work);
	bool changed = len != n;
	const char *s = work;
	size_t k = compose_prefix(s, len);
	changed |= k > 0;
	s += k, len -= k;

	char iso[40];
	size_t iso_n = 0;
	int64_t us;
	bool zoned;
	/* A time then a space may be the broker's own (EMQX, RabbitMQ, HiveMQ write
	 * theirs so): it is a collector's when the broker's time or a syslog header
	 * follows it, or when it has docker's and kubectl's RFC 3339 UTC shape
	 * ("...T...Z"), or syslog's traditional one. */
	size_t stamp = 0;
	bool collectors = false;
	if (len >= 20 && s[4] == '-' && (stamp = why_time_parse(s, len, &us, &zoned)) > 0 && stamp < sizeof iso) {
		memcpy(iso, s, stamp);
		iso_n = stamp;
		/* EMQX with time_offset "utc" writes the shape too, then its "[level]" */
		collectors = s[10] == 'T' && s[stamp - 1] == 'Z' && !why_split_level(s, len, &us, &zoned);
	} else if ((stamp = syslog_stamp(s, len, ref, iso, &iso_n)) > 0) {
		collectors = true;
	}
	if (stamp && stamp < len && s[stamp] == ' ') {
		const char *rest = s + stamp + 1;
		size_t rn = len - stamp - 1;
		size_t h = syslog_header(rest, rn);
		if (why_time_parse(rest, rn, &us, &zoned) > 0) {
			/* the broker's own time follows the collector's: the line as the broker wrote it */
			s = rest, len = rn, changed = true;
		} else if (h && why_time_parse(rest + h, rn - h, &us, &zoned) > 0) {
			s = rest + h, len = rn - h, changed = true;
		} else if (h || collectors) {
			/* no time of the broker's own: the collector's, in mosquitto's "TIME: message"
			 * (log_timestamp_format) shape */
			return stamped(out, iso, iso_n, rest + h, rn - h);
		}
	}
	if (!changed)
		return 0;
	memmove(out, s, len);
	return len;
}
