/* Which protocol a client speaks, from its first bytes, for a listener with
 * `protocol: auto`. An MQTT client opens with CONNECT: 0x10, a Remaining
 * Length, then the protocol name "MQTT" (3.1.1, 5.0) or "MQIsdp" (3.1). An
 * AMPS client opens with a 4-byte big-endian length whose first byte is 0 for
 * any frame under 16 MiB, then a header. Neither starts like the other. */
#include "proto/amps.h"
#include "proto/proto.h"

#include <string.h>

/* 2: <name> is at <i> in <head>; 1: what is there matches so far; 0: no. */
static int name_at(struct cursor head, size_t i, const uint8_t *name, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (i + k >= head.left)
			return 1;
		if (head.p[i + k] != name[k])
			return 0;
	}
	return 2;
}

enum proto_err proto_guess(struct cursor head, enum proto_id *id, struct proto_diag *d)
{
	static const uint8_t mqtt[] = { 0, 4, 'M', 'Q', 'T', 'T' }, mqisdp[] = { 0, 6, 'M', 'Q', 'I', 's', 'd', 'p' };
	if (head.left == 0)
		return PROTO_NEED_MORE;
	if (head.p[0] == 0x10) {
		size_t i = 1; /* past the Remaining Length, 1 to 4 bytes */
		while (i < head.left && i < 4 && (head.p[i] & 0x80))
			i++;
		if (i >= head.left)
			return PROTO_NEED_MORE;
		i++;
		int a = name_at(head, i, mqtt, sizeof mqtt), b = name_at(head, i, mqisdp, sizeof mqisdp);
		if (a == 2 || b == 2) {
			*id = PROTO_ID_MQTT;
			return PROTO_OK;
		}
		if (a == 1 || b == 1)
			return PROTO_NEED_MORE;
	}
	enum amps_seen s = amps_detect(head, 0, NULL, d);
	if (s == AMPS_SEEN_NEED_MORE)
		return PROTO_NEED_MORE;
	if (s == AMPS_SEEN_AMPS) {
		*id = PROTO_ID_AMPS;
		return PROTO_OK;
	}
	if (s == AMPS_SEEN_OTHER) {
		/* Not "not AMPS": on an auto listener it is neither. */
		d->cls = PROTO_E_NOT_PROTO;
		d->code = 0;
		d->reason = 0;
		d->name = "neither_mqtt_connect_nor_amps_frame";
		d->field = "first bytes";
		d->offset = 0;
		d->value = cursor_make(NULL, 0);
	}
	return PROTO_E_NOT_PROTO;
}
