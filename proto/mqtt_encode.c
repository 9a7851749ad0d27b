/* Encoders for the packets wirewarden itself sends: a DISCONNECT (MQTT 5,
 * spec 3.14) when a policy ends a session, and a CONNACK (3.2) when a policy
 * refuses a connection at the edge. Bounded writes into a caller's buffer. */
#include "proto/mqtt.h"

struct wbuf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

static void put_u8(struct wbuf *w, uint8_t v)
{
	if (w->len >= w->cap) {
		w->overflow = true;
		return;
	}
	w->p[w->len++] = v;
}

static void put_bytes(struct wbuf *w, const void *src, size_t n)
{
	if (w->cap - w->len < n || w->len > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static size_t varint_len(uint32_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void put_varint(struct wbuf *w, uint32_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		put_u8(w, v ? (uint8_t)(b | 0x80) : b);
	} while (v);
}

/* A Reason String property, cut at a UTF-8 boundary so that it stays valid
 * and the packet stays small (we never need more than a sentence). */
#define REASON_STRING_MAX 256u
static size_t reason_string_len(const char *s)
{
	if (!s)
		return 0;
	size_t n = strnlen(s, REASON_STRING_MAX + 1);
	if (n > REASON_STRING_MAX) {
		n = REASON_STRING_MAX;
		while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

static void put_props_reason_string(struct wbuf *w, const char *s, size_t n)
{
	if (!s) {
		put_varint(w, 0);
		return;
	}
	put_varint(w, (uint32_t)(3 + n));
	put_u8(w, MQTT_P_REASON_STRING);
	put_u8(w, (uint8_t)(n >> 8));
	put_u8(w, (uint8_t)n);
	put_bytes(w, s, n);
}

size_t mqtt_encode_disconnect(uint8_t level, uint8_t reason, const char *reason_string, uint8_t *buf, size_t cap)
{
	struct wbuf w = { buf, cap, 0, false };
	put_u8(&w, MQTT_T_DISCONNECT << 4);
	if (level < MQTT_LEVEL_5) {
		put_u8(&w, 0);
		return w.overflow ? 0 : w.len;
	}
	size_t sn = reason_string_len(reason_string);
	size_t props = reason_string ? 3 + sn : 0;
	uint32_t rl = (uint32_t)(1 + varint_len((uint32_t)props) + props);
	put_varint(&w, rl);
	put_u8(&w, reason);
	put_props_reason_string(&w, reason_string, sn);
	return w.overflow ? 0 : w.len;
}

size_t mqtt_encode_connack(uint8_t level, bool session_present, uint8_t v5_reason, const char *reason_string,
			   uint8_t *buf, size_t cap)
{
	struct wbuf w = { buf, cap, 0, false };
	put_u8(&w, MQTT_T_CONNACK << 4);
	/* [MQTT-3.2.2-6]: a refusal never claims a session. */
	uint8_t flags = (session_present && v5_reason == 0 && level != MQTT_LEVEL_31) ? 1 : 0;
	if (level < MQTT_LEVEL_5) {
		put_u8(&w, 2);
		put_u8(&w, flags);
		put_u8(&w, mqtt_reason_to_v3_connack(v5_reason));
		return w.overflow ? 0 : w.len;
	}
	size_t sn = reason_string_len(reason_string);
	size_t props = reason_string ? 3 + sn : 0;
	uint32_t rl = (uint32_t)(2 + varint_len((uint32_t)props) + props);
	put_varint(&w, rl);
	put_u8(&w, flags);
	put_u8(&w, v5_reason);
	put_props_reason_string(&w, reason_string, sn);
	return w.overflow ? 0 : w.len;
}
