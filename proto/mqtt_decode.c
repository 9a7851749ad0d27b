/* MQTT packet decoder: one whole frame in, typed views out (spec 3.1 - 3.15
 * of MQTT 5.0 and 3.1.1; MQIsdp 3.1). Every read goes through the cursor,
 * each variable-length field is carved out before it is read, and every packet
 * must end exactly at its Remaining Length. The first violation wins and is
 * reported with its stable name, field and offset (mqtt_errors.def). The
 * CONNECT decoder lives in mqtt_decode_connect.c. */
#include "proto/mqtt_internal.h"


void mqtt_codec_init(struct mqtt_codec *c)
{
	c->level = MQTT_LEVEL_UNKNOWN;
	c->assumed_level = MQTT_LEVEL_311;
}

static uint8_t effective_level(const struct mqtt_codec *c)
{
	if (c->level)
		return c->level;
	return c->assumed_level ? c->assumed_level : MQTT_LEVEL_311;
}

/* Which side may send each type (spec 2.1.2): bit 0 client, bit 1 server. */
static bool direction_ok(uint8_t type, uint8_t level, enum proto_dir dir)
{
	static const uint8_t senders[16] = {
		[MQTT_T_CONNECT] = 1, [MQTT_T_CONNACK] = 2, [MQTT_T_PUBLISH] = 3, [MQTT_T_PUBACK] = 3,
		[MQTT_T_PUBREC] = 3, [MQTT_T_PUBREL] = 3, [MQTT_T_PUBCOMP] = 3, [MQTT_T_SUBSCRIBE] = 1,
		[MQTT_T_SUBACK] = 2, [MQTT_T_UNSUBSCRIBE] = 1, [MQTT_T_UNSUBACK] = 2, [MQTT_T_PINGREQ] = 1,
		[MQTT_T_PINGRESP] = 2, [MQTT_T_DISCONNECT] = 3, [MQTT_T_AUTH] = 3,
	};
	uint8_t who = dir == PROTO_C2S ? 1 : 2;
	/* Before 5.0 only the client sends DISCONNECT. */
	if (type == MQTT_T_DISCONNECT && level < MQTT_LEVEL_5)
		return dir == PROTO_C2S;
	return (senders[type] & who) != 0;
}

/* Fixed-header flags each type must carry (spec 2.1.3, table 2-2). */
static bool flags_ok(uint8_t type, uint8_t flags, uint8_t level)
{
	switch (type) {
	case MQTT_T_PUBLISH:
		return true; /* QoS 3 and DUP are checked with their own names */
	case MQTT_T_PUBREL:
	case MQTT_T_SUBSCRIBE:
	case MQTT_T_UNSUBSCRIBE:
		/* MQTT 3.1 let a resent PUBREL/SUBSCRIBE/UNSUBSCRIBE carry DUP. */
		return flags == 0x2 || (level == MQTT_LEVEL_31 && flags == 0xA);
	default:
		return flags == 0;
	}
}

static enum proto_err need_u16_id(struct cursor *c, const uint8_t *base, uint16_t *id, struct proto_diag *d)
{
	uint32_t at = mqtt_off(base, c);
	if (!cursor_be16(c, id))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "packet identifier", at);
	if (*id == 0)
		return mqtt_fail(d, MQTT_E_PACKET_ID_ZERO, "packet identifier", at);
	return PROTO_OK;
}

static enum proto_err end_exactly(const struct cursor *c, const uint8_t *base, struct proto_diag *d)
{
	if (!cursor_empty(c))
		return mqtt_fail(d, MQTT_E_TRAILING_BYTES, "end of packet", mqtt_off(base, c));
	return PROTO_OK;
}

static bool topic_has_wildcard(struct cursor t)
{
	for (size_t i = 0; i < t.left; i++)
		if (t.p[i] == '+' || t.p[i] == '#')
			return true;
	return false;
}

static enum proto_err decode_connack(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
				     struct proto_diag *d)
{
	struct mqtt_connack *ca = &out->u.connack;
	uint8_t ackf;
	uint32_t at = mqtt_off(base, c);

	if (!cursor_u8(c, &ackf))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "connack flags", at);
	/* 3.1 called this byte reserved and set no rule for it. */
	if (out->level != MQTT_LEVEL_31 && (ackf & 0xfe))
		return mqtt_fail(d, MQTT_E_CONNACK_FLAGS, "connack flags", at);
	ca->session_present = out->level != MQTT_LEVEL_31 && (ackf & 1);
	at = mqtt_off(base, c);
	if (!cursor_u8(c, &ca->code))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "return code", at);
	/* A v5 client talking to a 3.1.1-only broker gets a two-byte CONNACK,
	 * usually return code 1 (unacceptable protocol version): decode it as
	 * the broker wrote it. */
	ca->v3_form = out->level < MQTT_LEVEL_5 || out->remaining_len == 2;
	if (ca->v3_form) {
		if (ca->code > 5)
			return mqtt_fail(d, MQTT_E_CONNACK_CODE, "return code", at);
	} else {
		if (!mqtt_reason_allowed(ca->code, MQTT_T_CONNACK))
			return mqtt_fail(d, MQTT_E_REASON_CODE, "reason code", at);
		enum proto_err r = mqtt_props_decode(c, MQTT_T_CONNACK, base, &ca->props, d);
		if (r != PROTO_OK)
			return r;
	}
	return end_exactly(c, base, d);
}

static enum proto_err decode_publish(struct cursor *c, const uint8_t *base, enum proto_dir dir,
				     struct mqtt_packet *out, struct proto_diag *d)
{
	struct mqtt_publish *pb = &out->u.publish;
	uint32_t at;

	pb->qos = (out->flags >> 1) & 3;
	pb->dup = (out->flags & 0x8) != 0;
	pb->retain = (out->flags & 0x1) != 0;
	if (pb->qos == 3)
		return mqtt_fail(d, MQTT_E_QOS_INVALID, "qos", 0);
	if (pb->qos == 0 && pb->dup)
		return mqtt_fail(d, MQTT_E_DUP_ON_QOS0, "dup", 0);
	at = mqtt_off(base, c);
	if (!cursor_str16(c, &pb->topic))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "topic name", at);
	enum mqtt_err ue = mqtt_utf8_check(pb->topic);
	if (ue != MQTT_E_NONE)
		return mqtt_fail(d, ue, "topic name", at);
	if (topic_has_wildcard(pb->topic))
		return mqtt_fail(d, MQTT_E_TOPIC_WILDCARD, "topic name", at);
	if (pb->qos > 0) {
		enum proto_err r = need_u16_id(c, base, &pb->packet_id, d);
		if (r != PROTO_OK)
			return r;
	}
	if (out->level >= MQTT_LEVEL_5) {
		uint32_t pat = mqtt_off(base, c);
		enum proto_err r = mqtt_props_decode(c, MQTT_T_PUBLISH, base, &pb->props, d);
		if (r != PROTO_OK)
			return r;
		/* [MQTT-3.3.4-6]: only the server adds Subscription Identifiers. */
		if (dir == PROTO_C2S && mqtt_props_has(&pb->props, MQTT_P_SUBSCRIPTION_ID))
			return mqtt_fail(d, MQTT_E_PROPERTY_NOT_ALLOWED, "Subscription Identifier", pat);
	}
	if (pb->topic.left == 0 && !mqtt_props_has(&pb->props, MQTT_P_TOPIC_ALIAS))
		return mqtt_fail(d, MQTT_E_TOPIC_EMPTY, "topic name", at);
	pb->payload = *c;
	c->p = NULL;
	c->left = 0;
	return PROTO_OK;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP (spec 3.4 - 3.7). A v5 ack may stop after the
 * packet identifier (reason 0x00) or after the reason code (no properties). */
static enum proto_err decode_ack(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
				 struct proto_diag *d)
{
	struct mqtt_ack *ak = &out->u.ack;
	enum proto_err r = need_u16_id(c, base, &ak->packet_id, d);
	if (r != PROTO_OK)
		return r;
	if (out->level >= MQTT_LEVEL_5 && !cursor_empty(c)) {
		uint32_t at = mqtt_off(base, c);
		if (!cursor_u8(c, &ak->reason))
			return mqtt_fail(d, MQTT_E_TRUNCATED, "reason code", at);
		ak->has_reason = true;
		if (!mqtt_reason_allowed(ak->reason, out->type))
			return mqtt_fail(d, MQTT_E_REASON_CODE, "reason code", at);
		if (!cursor_empty(c)) {
			r = mqtt_props_decode(c, out->type, base, &ak->props, d);
			if (r != PROTO_OK)
				return r;
		}
	}
	return end_exactly(c, base, d);
}

/* SUBSCRIBE (3.8) and UNSUBSCRIBE (3.10): a non-empty list of topic filters,
 * each followed by an options byte in SUBSCRIBE. */
static enum proto_err decode_subscribe(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
				       struct proto_diag *d)
{
	struct mqtt_subscribe *sb = &out->u.subscribe;
	bool with_options = out->type == MQTT_T_SUBSCRIBE;
	enum proto_err r = need_u16_id(c, base, &sb->packet_id, d);
	if (r != PROTO_OK)
		return r;
	if (out->level >= MQTT_LEVEL_5) {
		r = mqtt_props_decode(c, out->type, base, &sb->props, d);
		if (r != PROTO_OK)
			return r;
	}
	sb->entries = *c;
	while (!cursor_empty(c)) {
		struct cursor filter;
		uint32_t at = mqtt_off(base, c);
		if (!cursor_str16(c, &filter))
			return mqtt_fail(d, MQTT_E_TRUNCATED, "topic filter", at);
		enum mqtt_err ue = mqtt_utf8_check(filter);
		if (ue != MQTT_E_NONE)
			return mqtt_fail(d, ue, "topic filter", at);
		if (filter.left == 0)
			return mqtt_fail(d, MQTT_E_TOPIC_FILTER_EMPTY, "topic filter", at);
		if (with_options) {
			uint8_t opt;
			at = mqtt_off(base, c);
			if (!cursor_u8(c, &opt))
				return mqtt_fail(d, MQTT_E_TRUNCATED, "subscription options", at);
			/* v5 (3.8.3.1): bits 7-6 reserved, retain handling 3 reserved;
			 * before v5 (3.8.3): bits 7-2 reserved. QoS 3 is never valid. */
			bool bad = (opt & 3) == 3;
			if (out->level >= MQTT_LEVEL_5)
				bad = bad || (opt & 0xc0) || ((opt >> 4) & 3) == 3;
			else
				bad = bad || (opt & 0xfc);
			if (bad)
				return mqtt_fail(d, MQTT_E_SUB_OPTIONS, "subscription options", at);
		}
		sb->count++;
	}
	if (sb->count == 0)
		return mqtt_fail(d, with_options ? MQTT_E_SUBSCRIBE_EMPTY : MQTT_E_UNSUBSCRIBE_EMPTY, "payload",
				 mqtt_off(base, c));
	return PROTO_OK;
}

/* SUBACK (3.9) and UNSUBACK (3.11). A 3.1.1 UNSUBACK is only a packet id. */
static enum proto_err decode_suback(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
				    struct proto_diag *d)
{
	struct mqtt_suback *sa = &out->u.suback;
	bool v5 = out->level >= MQTT_LEVEL_5;

	if (out->type == MQTT_T_UNSUBACK && !v5 && out->remaining_len != 2)
		return mqtt_fail(d, MQTT_E_V3_UNSUBACK_LENGTH, "remaining length", 1);
	enum proto_err r = need_u16_id(c, base, &sa->packet_id, d);
	if (r != PROTO_OK)
		return r;
	if (v5) {
		r = mqtt_props_decode(c, out->type, base, &sa->props, d);
		if (r != PROTO_OK)
			return r;
	}
	sa->codes = *c;
	if (out->type == MQTT_T_UNSUBACK && !v5)
		return PROTO_OK;
	if (cursor_empty(c))
		return mqtt_fail(d, MQTT_E_ACK_EMPTY, "return codes", mqtt_off(base, c));
	for (size_t i = 0; i < sa->codes.left; i++) {
		uint8_t code = sa->codes.p[i];
		uint32_t at = mqtt_off(base, c) + (uint32_t)i;
		if (!v5 && !(code <= 2 || code == 0x80))
			return mqtt_fail(d, MQTT_E_SUBACK_CODE, "return code", at);
		if (v5 && !mqtt_reason_allowed(code, out->type))
			return mqtt_fail(d, MQTT_E_REASON_CODE, "reason code", at);
	}
	c->p = NULL;
	c->left = 0;
	return PROTO_OK;
}

/* DISCONNECT (3.14) and AUTH (3.15): before v5 a DISCONNECT is empty; in v5 a
 * missing reason code means 0x00 and missing properties mean none. */
static enum proto_err decode_reason_only(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
					 bool *has_reason, uint8_t *reason, struct mqtt_props *props,
					 struct proto_diag *d)
{
	if (out->level >= MQTT_LEVEL_5 && !cursor_empty(c)) {
		uint32_t at = mqtt_off(base, c);
		if (!cursor_u8(c, reason))
			return mqtt_fail(d, MQTT_E_TRUNCATED, "reason code", at);
		*has_reason = true;
		if (!mqtt_reason_allowed(*reason, out->type))
			return mqtt_fail(d, MQTT_E_REASON_CODE, "reason code", at);
		if (!cursor_empty(c)) {
			enum proto_err r = mqtt_props_decode(c, out->type, base, props, d);
			if (r != PROTO_OK)
				return r;
		}
	}
	return end_exactly(c, base, d);
}

/* <frame> is the whole packet, or (when <short_ok>) a prefix of a PUBLISH. */
static enum proto_err decode_frame(struct mqtt_codec *codec, enum proto_dir dir, struct cursor frame, bool short_ok,
				   struct mqtt_packet *out, struct proto_diag *d)
{
	const uint8_t *base = frame.p;
	struct cursor c = frame;
	uint8_t first;
	uint32_t rl;

	memset(out, 0, sizeof *out);
	memset(d, 0, sizeof *d);
	if (!cursor_u8(&c, &first))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "fixed header", 0);
	switch (cursor_varint(&c, &rl)) {
	case CURSOR_VARINT_OK: break;
	case CURSOR_VARINT_OVERLONG: return mqtt_fail(d, MQTT_E_VARINT_OVERLONG, "remaining length", 1);
	case CURSOR_VARINT_TOO_LONG: return mqtt_fail(d, MQTT_E_VARINT_TOO_LONG, "remaining length", 1);
	default: return mqtt_fail(d, MQTT_E_TRUNCATED, "remaining length", 1);
	}
	out->type = first >> 4;
	out->flags = first & 0x0f;
	out->remaining_len = rl;
	out->level = effective_level(codec);
	if (out->type == MQTT_T_CONNECT && dir == PROTO_C2S)
		out->level = MQTT_LEVEL_UNKNOWN; /* set from the packet itself */

	struct cursor body;
	out->len = (uint32_t)(frame.left - c.left + rl);
	if (short_ok && c.left < rl) {
		if (out->type != MQTT_T_PUBLISH)
			return PROTO_NEED_MORE;
		body = c;
	} else {
		if (!cursor_take(&c, rl, &body))
			return mqtt_fail(d, MQTT_E_TRUNCATED, "remaining length", mqtt_off(base, &c));
		if (!cursor_empty(&c))
			return mqtt_fail(d, MQTT_E_TRAILING_BYTES, "end of packet", mqtt_off(base, &c));
		short_ok = false;
	}

	if (out->type == MQTT_T_RESERVED)
		return mqtt_fail(d, MQTT_E_RESERVED_TYPE, "packet type", 0);
	if (out->type == MQTT_T_AUTH && out->level != MQTT_LEVEL_UNKNOWN && out->level < MQTT_LEVEL_5)
		return mqtt_fail(d, MQTT_E_AUTH_BEFORE_V5, "packet type", 0);
	if (!flags_ok(out->type, out->flags, out->level))
		return mqtt_fail(d, MQTT_E_HEADER_FLAGS, "fixed header flags", 0);
	if (out->type != MQTT_T_CONNECT && !direction_ok(out->type, out->level, dir))
		return mqtt_fail(d, MQTT_E_WRONG_DIRECTION, "packet type", 0);

	enum proto_err r;
	switch (out->type) {
	case MQTT_T_CONNECT:
		if (dir != PROTO_C2S)
			return mqtt_fail(d, MQTT_E_WRONG_DIRECTION, "packet type", 0);
		r = mqtt_decode_connect(&body, base, out, d);
		if (r == PROTO_OK)
			codec->level = out->level;
		return r;
	case MQTT_T_CONNACK:
		return decode_connack(&body, base, out, d);
	case MQTT_T_PUBLISH:
		r = decode_publish(&body, base, dir, out, d);
		/* A prefix that ends inside the variable header says nothing yet. */
		if (short_ok && r != PROTO_OK && (d->code == MQTT_E_TRUNCATED || d->code == MQTT_E_PROPERTY_LENGTH))
			return PROTO_NEED_MORE;
		return r;
	case MQTT_T_PUBACK:
	case MQTT_T_PUBREC:
	case MQTT_T_PUBREL:
	case MQTT_T_PUBCOMP:
		return decode_ack(&body, base, out, d);
	case MQTT_T_SUBSCRIBE:
	case MQTT_T_UNSUBSCRIBE:
		return decode_subscribe(&body, base, out, d);
	case MQTT_T_SUBACK:
	case MQTT_T_UNSUBACK:
		return decode_suback(&body, base, out, d);
	case MQTT_T_PINGREQ:
	case MQTT_T_PINGRESP:
		return end_exactly(&body, base, d);
	case MQTT_T_DISCONNECT:
		return decode_reason_only(&body, base, out, &out->u.disconnect.has_reason, &out->u.disconnect.reason,
					  &out->u.disconnect.props, d);
	case MQTT_T_AUTH:
		return decode_reason_only(&body, base, out, &out->u.auth.has_reason, &out->u.auth.reason,
					  &out->u.auth.props, d);
	}
	return mqtt_fail(d, MQTT_E_RESERVED_TYPE, "packet type", 0);
}

enum proto_err mqtt_decode(struct mqtt_codec *codec, enum proto_dir dir, struct cursor frame,
			   struct mqtt_packet *out, struct proto_diag *d)
{
	return decode_frame(codec, dir, frame, false, out, d);
}

enum proto_err mqtt_decode_prefix(struct mqtt_codec *codec, enum proto_dir dir, struct cursor prefix,
				  struct mqtt_packet *out, struct proto_diag *d)
{
	return decode_frame(codec, dir, prefix, true, out, d);
}

bool mqtt_topic_list_next(struct cursor *it, bool with_options, struct cursor *filter, uint8_t *options)
{
	struct cursor t = *it;
	uint8_t opt = 0;
	if (!cursor_str16(&t, filter))
		return false;
	if (with_options && !cursor_u8(&t, &opt))
		return false;
	if (options)
		*options = opt;
	*it = t;
	return true;
}
