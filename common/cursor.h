/* Bounded, forward-only read views over bytes: every parser in wirewarden reads
 * through these. A failed read returns false and leaves the cursor and the output
 * untouched; no function forms a pointer past the end of the view (lengths are
 * compared, never pointers). A cursor never owns its bytes. */
#ifndef WW_COMMON_CURSOR_H
#define WW_COMMON_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WW_CHECK __attribute__((warn_unused_result))

struct cursor {
	const uint8_t *p; /* next unread byte; may be NULL when left == 0 */
	size_t left;      /* bytes still readable from p */
};

static inline struct cursor cursor_make(const void *p, size_t n)
{
	struct cursor c = { (const uint8_t *)p, n };
	return c;
}

static inline size_t cursor_left(const struct cursor *c) { return c->left; }

static inline bool cursor_empty(const struct cursor *c) { return c->left == 0; }

/* Equality of a view and a NUL-terminated string (for protocol names, tests). */
static inline bool cursor_eq_str(struct cursor c, const char *s)
{
	size_t n = strlen(s);
	return c.left == n && (n == 0 || memcmp(c.p, s, n) == 0);
}

WW_CHECK static inline bool cursor_skip(struct cursor *c, size_t n)
{
	if (c->left < n)
		return false;
	c->p += n;
	c->left -= n;
	return true;
}

WW_CHECK static inline bool cursor_u8(struct cursor *c, uint8_t *v)
{
	if (c->left < 1)
		return false;
	*v = c->p[0];
	c->p++;
	c->left--;
	return true;
}

WW_CHECK static inline bool cursor_be16(struct cursor *c, uint16_t *v)
{
	if (c->left < 2)
		return false;
	*v = (uint16_t)((c->p[0] << 8) | c->p[1]);
	c->p += 2;
	c->left -= 2;
	return true;
}

WW_CHECK static inline bool cursor_be32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return false;
	*v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) |
	     ((uint32_t)c->p[2] << 8) | (uint32_t)c->p[3];
	c->p += 4;
	c->left -= 4;
	return true;
}

/* Carves the next <n> bytes into <sub> so that an inner field cannot read past
 * itself; <c> moves past them. */
WW_CHECK static inline bool cursor_take(struct cursor *c, size_t n, struct cursor *sub)
{
	if (c->left < n)
		return false;
	sub->p = c->p;
	sub->left = n;
	c->p += n;
	c->left -= n;
	return true;
}

/* A two-byte big-endian length followed by that many bytes (MQTT strings and
 * binary data, spec 1.5.4 and 1.5.6); <s> views the bytes. */
WW_CHECK static inline bool cursor_str16(struct cursor *c, struct cursor *s)
{
	struct cursor t = *c;
	uint16_t n;
	if (!cursor_be16(&t, &n) || !cursor_take(&t, n, s))
		return false;
	*c = t;
	return true;
}

enum cursor_varint_result {
	CURSOR_VARINT_OK,
	CURSOR_VARINT_SHORT,   /* the view ended inside the integer */
	CURSOR_VARINT_TOO_LONG, /* a fifth byte would be needed [MQTT-1.5.5] */
	CURSOR_VARINT_OVERLONG, /* not the minimal encoding [MQTT-1.5.5-1] */
};

/* MQTT Variable Byte Integer: 1 to 4 bytes, 7 bits each, least significant
 * first, at most 268,435,455. On anything but OK the cursor is unmoved. */
WW_CHECK enum cursor_varint_result cursor_varint(struct cursor *c, uint32_t *v);

#endif
