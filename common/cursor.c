/* Out-of-line cursor reads: only the MQTT variable byte integer, which has
 * enough cases to be worth one copy. Spec: MQTT 5.0 section 1.5.5. */
#include "common/cursor.h"

enum cursor_varint_result cursor_varint(struct cursor *c, uint32_t *v)
{
	uint32_t value = 0;
	size_t i;

	for (i = 0; i < 4; i++) {
		if (i >= c->left)
			return CURSOR_VARINT_SHORT;
		uint8_t b = c->p[i];
		value |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			/* A last byte of 0 after the first means a shorter form existed. */
			if (i > 0 && b == 0)
				return CURSOR_VARINT_OVERLONG;
			*v = value;
			c->p += i + 1;
			c->left -= i + 1;
			return CURSOR_VARINT_OK;
		}
	}
	return CURSOR_VARINT_TOO_LONG;
}
