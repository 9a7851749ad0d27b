/* The broker log readers as a set: lookup by name, detection from a sample of
 * lines, and the string helpers they share. */
#include <string.h>

#include "cli/why_log.h"

static const struct why_format *const formats[] = {
	/* most specific shapes first: an AMPS or EMQX line would also pass a loose test,
	 * and a RabbitMQ line (a pid after the level) EMQX's */
	&why_format_amps, &why_format_rabbitmq, &why_format_emqx, &why_format_hivemq, &why_format_mosquitto,
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

const struct why_format *why_format_find(const char *name)
{
	for (size_t i = 0; i < N_FORMATS; i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

const struct why_format *why_format_detect(const struct why_text *lines, size_t n, const struct why_format *forced,
					   const struct why_unwrap_ref *ref, char *scratch, size_t cap, bool *wrapped)
{
	size_t raw[N_FORMATS] = { 0 }, unwrapped[N_FORMATS] = { 0 };
	for (size_t i = 0; i < n; i++) {
		size_t k = why_unwrap(lines[i].p, lines[i].n, ref, scratch, cap);
		for (size_t f = 0; f < N_FORMATS; f++) {
			if (forced && formats[f] != forced)
				continue;
			size_t as_written = formats[f]->looks_like(lines[i].p, lines[i].n);
			raw[f] += as_written;
			unwrapped[f] += k ? formats[f]->looks_like(scratch, k) : as_written;
		}
	}
	size_t best = 0;
	const struct why_format *pick = NULL;
	*wrapped = false;
	/* as written first: a wrapping is taken off only when more lines read that way */
	for (size_t f = 0; f < N_FORMATS; f++)
		if (raw[f] > best)
			best = raw[f], pick = formats[f];
	for (size_t f = 0; f < N_FORMATS; f++)
		if (unwrapped[f] > best)
			best = unwrapped[f], pick = formats[f], *wrapped = true;
	return pick ? pick : forced;
}

void why_rec_clear(struct why_rec *r)
{
	memset(r, 0, sizeof *r);
	r->keepalive = -1;
	r->reason = EVT_R_NONE;
	r->closed_by = EVT_BY_NONE;
	r->confidence = EVT_CONF_NONE;
}

bool why_rec_stamp(struct why_rec *r, int64_t us, bool zoned, const char *msg, size_t n)
{
	r->has_ts = true;
	r->ts_us = us;
	r->zoned = zoned;
	r->msg.p = msg;
	r->msg.n = n;
	return true;
}

enum why_rec_kind why_rec_decide(struct why_rec *r, enum why_rec_kind kind, enum evt_reason why, enum evt_party by,
				 enum evt_confidence conf)
{
	r->reason = why;
	r->closed_by = by;
	r->confidence = conf;
	return r->kind = kind;
}

size_t why_split_level(const char *line, size_t n, int64_t *us, bool *zoned)
{
	size_t k = why_time_parse(line, n, us, zoned);
	if (k == 0 || k + 4 > n || line[k] != ' ' || line[k + 1] != '[')
		return 0;
	const char *e = memchr(line + k + 2, ']', n - k - 2);
	if (!e || e - (line + k) > 12 || (size_t)(e - line) + 2 > n || e[1] != ' ')
		return 0;
	for (const char *c = line + k + 2; c < e; c++)
		if (*c < 'a' || *c > 'z')
			return 0;
	return (size_t)(e + 2 - line);
}

void why_copy(char *dst, size_t cap, const char *src)
{
	why_copyn(dst, cap, src, src ? strlen(src) : 0);
}

void why_copyn(char *dst, size_t cap, const char *src, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = 0;
}

bool why_text_is(struct why_text t, const char *s)
{
	return t.n == strlen(s) && (t.n == 0 || memcmp(t.p, s, t.n) == 0);
}

bool why_starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && memcmp(s, prefix, k) == 0;
}

const char *why_find(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	if (k == 0)
		return s;
	while (n >= k) {
		const char *p = memchr(s, needle[0], n - k + 1);
		if (!p)
			return NULL;
		if (memcmp(p, needle, k) == 0)
			return p;
		n -= (size_t)(p - s) + 1;
		s = p + 1;
	}
	return NULL;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool why_contains_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++) {
		size_t j = 0;
		while (j < k && lower(s[i + j]) == lower(needle[j]))
			j++;
		if (j == k)
			return true;
	}
	return false;
}
