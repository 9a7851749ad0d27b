/* Timestamps as broker logs write them (see why_log.h). Civil dates are
 * converted by arithmetic rather than timegm()/mktime() so that the result
 * never depends on the TZ of the machine reading the log. */
#include <stdlib.h>
#include <string.h>

#include "cli/why_log.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* <k> decimal digits at <s> into <*v>; false if any is not a digit. */
static bool digits(const char *s, size_t k, unsigned *v)
{
	unsigned x = 0;
	for (size_t i = 0; i < k; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	*v = x;
	return true;
}

static size_t parse_zone(const char *s, size_t n, int64_t *off_s)
{
	if (n >= 1 && s[0] == 'Z') {
		*off_s = 0;
		return 1;
	}
	if (n < 3 || (s[0] != '+' && s[0] != '-'))
		return 0;
	unsigned hh, mm = 0;
	size_t used;
	if (!digits(s + 1, 2, &hh))
		return 0;
	used = 3;
	if (n >= 6 && s[3] == ':' && digits(s + 4, 2, &mm))
		used = 6;
	else if (n >= 5 && digits(s + 3, 2, &mm))
		used = 5;
	if (hh > 23 || mm > 59)
		return 0;
	*off_s = (int64_t)(hh * 3600 + mm * 60) * (s[0] == '-' ? -1 : 1);
	return used;
}

size_t why_time_parse(const char *s, size_t n, int64_t *us, bool *zoned)
{
	unsigned y, mo, d, h, mi, se;
	*zoned = false;
	if (n >= 19 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == ' ') && s[13] == ':' && s[16] == ':' &&
	    digits(s, 4, &y) && digits(s + 5, 2, &mo) && digits(s + 8, 2, &d) && digits(s + 11, 2, &h) &&
	    digits(s + 14, 2, &mi) && digits(s + 17, 2, &se)) {
		if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
			return 0;
		size_t i = 19;
		int64_t frac = 0;
		if (i < n && (s[i] == '.' || s[i] == ',') && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
			int64_t scale = 100000;
			for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
				frac += (s[i] - '0') * scale;
				scale /= 10;
			}
		}
		int64_t off = 0;
		size_t z = parse_zone(s + i, n - i, &off);
		if (z) {
			*zoned = true;
			i += z;
		}
		int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
		*us = secs * 1000000 + frac;
		return i;
	}
	/* epoch seconds (mosquitto's log_timestamp without a format), milliseconds, or microseconds
	 * (EMQX's timestamp_format = epoch) */
	size_t k = 0;
	while (k < n && k < 17 && s[k] >= '0' && s[k] <= '9')
		k++;
	if (((k >= 9 && k <= 11) || k == 13 || k == 16) && (k == n || s[k] < '0' || s[k] > '9')) {
		int64_t v = 0;
		for (size_t i = 0; i < k; i++)
			v = v * 10 + (s[i] - '0');
		*us = k == 16 ? v : k == 13 ? v * 1000 : v * 1000000;
		*zoned = true;
		return k;
	}
	return 0;
}

bool why_time_parse_arg(const char *s, int64_t *us)
{
	bool zoned;
	size_t n = strlen(s);
	char tmp[40];
	if (n == 10 && s[4] == '-' && s[7] == '-' && n + 9 < sizeof tmp) { /* a date alone: its midnight */
		memcpy(tmp, s, n);
		memcpy(tmp + n, "T00:00:00", 10);
		s = tmp;
		n += 9;
	}
	return why_time_parse(s, n, us, &zoned) == n;
}

bool why_duration_parse(const char *s, int64_t *us)
{
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (!*s)
		return false;
	if (strchr(s, ':')) {
		unsigned hh = 0, mm = 0, ss = 0;
		size_t n = strlen(s);
		if (!((n == 5 && digits(s, 2, &hh) && s[2] == ':' && digits(s + 3, 2, &mm)) ||
		      (n == 8 && digits(s, 2, &hh) && s[2] == ':' && digits(s + 3, 2, &mm) && s[5] == ':' &&
		       digits(s + 6, 2, &ss))))
			return false;
		*us = sign * (int64_t)(hh * 3600 + mm * 60 + ss) * 1000000;
		return true;
	}
	char *end;
	double v = strtod(s, &end);
	if (*end || v != v || v > 1e9)
		return false;
	*us = (int64_t)(sign * v * 1e6);
	return true;
}
