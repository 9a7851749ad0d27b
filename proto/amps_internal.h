/* Private to proto/amps_*.c: what the header decoders share. */
#ifndef WW_PROTO_AMPS_INTERNAL_H
#define WW_PROTO_AMPS_INTERNAL_H

#include "proto/amps.h"

/* The field a header key names, in either spelling; -1 for a key we ignore. */
int amps_field_from_key(struct cursor key);

/* Offset of <c>'s next byte within the payload starting at <base>. */
static inline uint32_t amps_off(const uint8_t *base, const struct cursor *c)
{
	return c->p ? (uint32_t)(c->p - base) : 0;
}

/* After a header decoder filled the views: the command, status and heartbeat
 * option as enums. */
void amps_header_finish(struct amps_header *h);

#endif
