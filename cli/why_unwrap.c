/* What log collectors wrap around a broker's lines, taken off so that the
 * broker's reader sees the line the broker wrote. An operator rarely hands us
 * the broker's own file: more often it is `docker compose logs` ("mqtt-1  | "
 * before every line, colours when it ran on a terminal), `docker logs -t` or
 * `kubectl logs --timestamps` (an RFC 3339 time before the broker's own), or
 * syslog / the journal in the traditional "Nov 24 05:27:46 host tag[pid]: "
 * form, whose stamp has no year. */
#include <string.h>

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

size_t why_unwrap(const char *line, size_t n, const struct why_unwrap_ref *ref, char *out, size_t cap)
{
	if (cap < n + WHY_UNWRAP_EXTRA)
		return 0;
	/* the unwrapped line is built at the end of <out>, then moved to its start */
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
	if (len >= 20 && s[4] == '-' && (stamp = why_time_parse(s, len, &us, &zoned)) > 0) {
		memcpy(iso, s, stamp);
		iso_n = stamp;
		collectors = s[10] == 'T' && s[stamp - 1] == 'Z';
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
			rest += h, rn -= h;
			memcpy(out, iso, iso_n);
			out[iso_n] = ':';
			out[iso_n + 1] = ' ';
			memmove(out + iso_n + 2, rest, rn);
			return iso_n + 2 + rn;
		}
	}
	if (!changed)
		return 0;
	memmove(out, s, len);
	return len;
}
