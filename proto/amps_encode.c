/* What wirewarden writes to an AMPS client: the ack that refuses a logon at
 * the edge, and a heartbeat. json syntax, each frame whole with its length. */
#include "proto/amps.h"

#include <stdio.h>

/* Appends <s> (<n> bytes) JSON-escaped at <at>; false if <cap> is too small. */
static bool put_json_string(uint8_t *buf, size_t cap, size_t *at, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (*at + 1 > cap)
		return false;
	buf[(*at)++] = '"';
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)s[i];
		char esc[7];
		size_t m = 0;
		if (b == '"' || b == '\\') {
			esc[m++] = '\\';
			esc[m++] = (char)b;
		} else if (b < 0x20) {
			esc[m++] = '\\';
			esc[m++] = 'u';
			esc[m++] = '0';
			esc[m++] = '0';
			esc[m++] = hex[b >> 4];
			esc[m++] = hex[b & 15];
		} else {
			esc[m++] = (char)b;
		}
		if (*at + m > cap)
			return false;
		memcpy(buf + *at, esc, m);
		*at += m;
	}
	if (*at + 1 > cap)
		return false;
	buf[(*at)++] = '"';
	return true;
}

static bool put_raw(uint8_t *buf, size_t cap, size_t *at, const char *s)
{
	size_t n = strlen(s);
	if (*at + n > cap)
		return false;
	memcpy(buf + *at, s, n);
	*at += n;
	return true;
}

static size_t seal(uint8_t *buf, size_t at)
{
	uint32_t len = (uint32_t)(at - AMPS_LEN_BYTES);
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	return at;
}

size_t amps_encode_failure_ack(const char *cid, size_t cid_len, const char *reason, uint8_t *buf, size_t cap)
{
	size_t at = AMPS_LEN_BYTES;
	if (cap < AMPS_LEN_BYTES)
		return 0;
	if (!put_raw(buf, cap, &at, "{\"c\":\"ack\",\"a\":\"processed\""))
		return 0;
	if (cid && (!put_raw(buf, cap, &at, ",\"cid\":") || !put_json_string(buf, cap, &at, cid, cid_len)))
		return 0;
	if (!put_raw(buf, cap, &at, ",\"status\":\"failure\",\"reason\":"))
		return 0;
	if (!reason)
		reason = "";
	if (!put_json_string(buf, cap, &at, reason, strlen(reason)) || !put_raw(buf, cap, &at, "}"))
		return 0;
	return seal(buf, at);
}

size_t amps_encode_heartbeat(uint8_t *buf, size_t cap)
{
	size_t at = AMPS_LEN_BYTES;
	if (cap < AMPS_LEN_BYTES || !put_raw(buf, cap, &at, "{\"c\":\"heartbeat\"}"))
		return 0;
	return seal(buf, at);
}
