/* UTF-8 Encoded Strings as MQTT requires them (spec 1.5.4): well-formed UTF-8
 * (RFC 3629: no overlong forms, nothing above U+10FFFF), no UTF-16 surrogates
 * U+D800..U+DFFF [MQTT-1.5.4-1] and no U+0000 [MQTT-1.5.4-2]. Other control
 * characters and non-characters are allowed on the wire [MQTT-1.5.4-3]; the
 * sinks escape them when they print. */
#include "proto/mqtt.h"

enum mqtt_err mqtt_utf8_check(struct cursor s)
{
	const uint8_t *p = s.p;
	size_t n = s.left, i = 0;

	while (i < n) {
		uint8_t b = p[i];
		if (b == 0)
			return MQTT_E_UTF8_NULL;
		if (b < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp, min;
		if ((b & 0xe0) == 0xc0) {
			need = 1, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			need = 2, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			need = 3, cp = b & 0x07, min = 0x10000;
		} else {
			return MQTT_E_UTF8_INVALID; /* continuation byte or 0xf8.. lead */
		}
		if (n - i - 1 < need)
			return MQTT_E_UTF8_INVALID;
		for (size_t k = 1; k <= need; k++) {
			uint8_t c = p[i + k];
			if ((c & 0xc0) != 0x80)
				return MQTT_E_UTF8_INVALID;
			cp = (cp << 6) | (c & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return MQTT_E_UTF8_INVALID;
		i += need + 1;
	}
	return MQTT_E_NONE;
}
