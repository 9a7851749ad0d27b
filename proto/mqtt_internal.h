/* Private to proto/mqtt_*.c: helpers shared by the MQTT decoder files. */
#ifndef WW_PROTO_MQTT_INTERNAL_H
#define WW_PROTO_MQTT_INTERNAL_H

#include "proto/mqtt.h"

/* Pseudo packet type for a Will's property block (type 0 is never decoded). */
#define MQTT_CTX_WILL 0

/* Offset of <c>'s next byte within the frame starting at <base>: for diagnostics. */
static inline uint32_t mqtt_off(const uint8_t *base, const struct cursor *c)
{
	return c->p ? (uint32_t)(c->p - base) : 0;
}

/* Reads a property block (length, then properties) from <c> for packet type
 * <ctx> (or MQTT_CTX_WILL) into <out>. Checks each property is known, allowed
 * in <ctx>, not repeated where the spec forbids it, and has a legal value. */
enum proto_err mqtt_props_decode(struct cursor *c, uint8_t ctx, const uint8_t *base, struct mqtt_props *out,
				 struct proto_diag *d);

/* CONNECT body decoder (mqtt_decode_connect.c); <c> is the body after the
 * fixed header; sets out->level from the packet. */
enum proto_err mqtt_decode_connect(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
				   struct proto_diag *d);

#endif
