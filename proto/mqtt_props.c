/* MQTT 5 properties (spec 2.2.2): the property table (identifier, value type,
 * the packets each may appear in, whether it may repeat) and the reader that
 * checks a block against it. A property block is read in full, with its length
 * carved out of the packet so no property can read past it. */
#include "proto/mqtt_internal.h"

enum prop_type { PT_BYTE = 1, PT_U16, PT_U32, PT_VARINT, PT_UTF8, PT_BINARY, PT_PAIR };

#define B(t) (1u << MQTT_T_##t)
#define WILL (1u << MQTT_CTX_WILL)
#define ALL_ACKS (B(PUBACK) | B(PUBREC) | B(PUBREL) | B(PUBCOMP))

struct prop_row {
	const char *name;
	uint8_t type;
	bool repeatable;
	uint16_t allowed; /* bits: 1 << packet type, bit 0 = Will properties */
};

static const struct prop_row props[0x2B] = {
	[MQTT_P_PAYLOAD_FORMAT] = { "Payload Format Indicator", PT_BYTE, false, B(PUBLISH) | WILL },
	[MQTT_P_MESSAGE_EXPIRY] = { "Message Expiry Interval", PT_U32, false, B(PUBLISH) | WILL },
	[MQTT_P_CONTENT_TYPE] = { "Content Type", PT_UTF8, false, B(PUBLISH) | WILL },
	[MQTT_P_RESPONSE_TOPIC] = { "Response Topic", PT_UTF8, false, B(PUBLISH) | WILL },
	[MQTT_P_CORRELATION_DATA] = { "Correlation Data", PT_BINARY, false, B(PUBLISH) | WILL },
	/* Repeatable in PUBLISH (one per matching subscription), once in SUBSCRIBE;
	 * the SUBSCRIBE case is checked below. */
	[MQTT_P_SUBSCRIPTION_ID] = { "Subscription Identifier", PT_VARINT, true, B(PUBLISH) | B(SUBSCRIBE) },
	[MQTT_P_SESSION_EXPIRY] = { "Session Expiry Interval", PT_U32, false, B(CONNECT) | B(CONNACK) | B(DISCONNECT) },
	[MQTT_P_ASSIGNED_CLIENT_ID] = { "Assigned Client Identifier", PT_UTF8, false, B(CONNACK) },
	[MQTT_P_SERVER_KEEP_ALIVE] = { "Server Keep Alive", PT_U16, false, B(CONNACK) },
	[MQTT_P_AUTH_METHOD] = { "Authentication Method", PT_UTF8, false, B(CONNECT) | B(CONNACK) | B(AUTH) },
	[MQTT_P_AUTH_DATA] = { "Authentication Data", PT_BINARY, false, B(CONNECT) | B(CONNACK) | B(AUTH) },
	[MQTT_P_REQUEST_PROBLEM_INFO] = { "Request Problem Information", PT_BYTE, false, B(CONNECT) },
	[MQTT_P_WILL_DELAY] = { "Will Delay Interval", PT_U32, false, WILL },
	[MQTT_P_REQUEST_RESPONSE_INFO] = { "Request Response Information", PT_BYTE, false, B(CONNECT) },
	[MQTT_P_RESPONSE_INFO] = { "Response Information", PT_UTF8, false, B(CONNACK) },
	[MQTT_P_SERVER_REFERENCE] = { "Server Reference", PT_UTF8, false, B(CONNACK) | B(DISCONNECT) },
	[MQTT_P_REASON_STRING] = { "Reason String", PT_UTF8, false,
				   B(CONNACK) | ALL_ACKS | B(SUBACK) | B(UNSUBACK) | B(DISCONNECT) | B(AUTH) },
	[MQTT_P_RECEIVE_MAXIMUM] = { "Receive Maximum", PT_U16, false, B(CONNECT) | B(CONNACK) },
	[MQTT_P_TOPIC_ALIAS_MAXIMUM] = { "Topic Alias Maximum", PT_U16, false, B(CONNECT) | B(CONNACK) },
	[MQTT_P_TOPIC_ALIAS] = { "Topic Alias", PT_U16, false, B(PUBLISH) },
	[MQTT_P_MAXIMUM_QOS] = { "Maximum QoS", PT_BYTE, false, B(CONNACK) },
	[MQTT_P_RETAIN_AVAILABLE] = { "Retain Available", PT_BYTE, false, B(CONNACK) },
	[MQTT_P_USER_PROPERTY] = { "User Property", PT_PAIR, true, 0xfffe | WILL },
	[MQTT_P_MAXIMUM_PACKET_SIZE] = { "Maximum Packet Size", PT_U32, false, B(CONNECT) | B(CONNACK) },
	[MQTT_P_WILDCARD_SUB_AVAILABLE] = { "Wildcard Subscription Available", PT_BYTE, false, B(CONNACK) },
	[MQTT_P_SUB_ID_AVAILABLE] = { "Subscription Identifier Available", PT_BYTE, false, B(CONNACK) },
	[MQTT_P_SHARED_SUB_AVAILABLE] = { "Shared Subscription Available", PT_BYTE, false, B(CONNACK) },
};
#undef B
#undef WILL
#undef ALL_ACKS

const char *mqtt_prop_name(uint8_t id)
{
	return id < sizeof props / sizeof props[0] ? props[id].name : NULL;
}

/* Reads one property value of <type> into <out>. False when it runs short. */
static bool read_value(struct cursor *c, uint8_t type, struct mqtt_prop *out, enum mqtt_err *err)
{
	uint8_t b;
	uint16_t w;
	*err = MQTT_E_TRUNCATED;
	switch (type) {
	case PT_BYTE:
		if (!cursor_u8(c, &b))
			return false;
		out->num = b;
		return true;
	case PT_U16:
		if (!cursor_be16(c, &w))
			return false;
		out->num = w;
		return true;
	case PT_U32:
		return cursor_be32(c, &out->num);
	case PT_VARINT:
		switch (cursor_varint(c, &out->num)) {
		case CURSOR_VARINT_OK: return true;
		case CURSOR_VARINT_OVERLONG: *err = MQTT_E_VARINT_OVERLONG; return false;
		case CURSOR_VARINT_TOO_LONG: *err = MQTT_E_VARINT_TOO_LONG; return false;
		default: return false;
		}
	case PT_UTF8:
	case PT_BINARY:
		if (!cursor_str16(c, &out->str))
			return false;
		if (type == PT_UTF8 && (*err = mqtt_utf8_check(out->str)) != MQTT_E_NONE)
			return false;
		return true;
	case PT_PAIR:
		if (!cursor_str16(c, &out->str) || !cursor_str16(c, &out->str2))
			return false;
		if ((*err = mqtt_utf8_check(out->str)) != MQTT_E_NONE || (*err = mqtt_utf8_check(out->str2)) != MQTT_E_NONE)
			return false;
		return true;
	}
	return false;
}

bool mqtt_props_next(struct cursor *it, struct mqtt_prop *out)
{
	uint8_t id;
	enum mqtt_err err;
	struct cursor t = *it;

	memset(out, 0, sizeof *out);
	if (!cursor_u8(&t, &id) || id >= sizeof props / sizeof props[0] || !props[id].name)
		return false;
	out->id = id;
	if (!read_value(&t, props[id].type, out, &err))
		return false;
	*it = t;
	return true;
}

/* Range rules of spec 3.1.2.11, 3.2.2.3 and 3.3.2.3: which values are a
 * Protocol Error. */
static bool value_ok(uint8_t id, uint32_t v)
{
	switch (id) {
	case MQTT_P_PAYLOAD_FORMAT:
	case MQTT_P_REQUEST_PROBLEM_INFO:
	case MQTT_P_REQUEST_RESPONSE_INFO:
	case MQTT_P_MAXIMUM_QOS:
	case MQTT_P_RETAIN_AVAILABLE:
	case MQTT_P_WILDCARD_SUB_AVAILABLE:
	case MQTT_P_SUB_ID_AVAILABLE:
	case MQTT_P_SHARED_SUB_AVAILABLE:
		return v <= 1;
	case MQTT_P_RECEIVE_MAXIMUM:
	case MQTT_P_MAXIMUM_PACKET_SIZE:
	case MQTT_P_TOPIC_ALIAS:
	case MQTT_P_SUBSCRIPTION_ID:
		return v != 0;
	default:
		return true;
	}
}

static void store(struct mqtt_props *out, const struct mqtt_prop *p)
{
	switch (p->id) {
	case MQTT_P_PAYLOAD_FORMAT: out->payload_format = (uint8_t)p->num; break;
	case MQTT_P_MESSAGE_EXPIRY: out->message_expiry = p->num; break;
	case MQTT_P_CONTENT_TYPE: out->content_type = p->str; break;
	case MQTT_P_RESPONSE_TOPIC: out->response_topic = p->str; break;
	case MQTT_P_CORRELATION_DATA: out->correlation_data = p->str; break;
	case MQTT_P_SUBSCRIPTION_ID:
		if (out->subscription_id_count++ == 0)
			out->subscription_id = p->num;
		break;
	case MQTT_P_SESSION_EXPIRY: out->session_expiry = p->num; break;
	case MQTT_P_ASSIGNED_CLIENT_ID: out->assigned_client_id = p->str; break;
	case MQTT_P_SERVER_KEEP_ALIVE: out->server_keep_alive = (uint16_t)p->num; break;
	case MQTT_P_AUTH_METHOD: out->auth_method = p->str; break;
	case MQTT_P_AUTH_DATA: out->auth_data = p->str; break;
	case MQTT_P_REQUEST_PROBLEM_INFO: out->request_problem_info = (uint8_t)p->num; break;
	case MQTT_P_WILL_DELAY: out->will_delay = p->num; break;
	case MQTT_P_REQUEST_RESPONSE_INFO: out->request_response_info = (uint8_t)p->num; break;
	case MQTT_P_RESPONSE_INFO: out->response_info = p->str; break;
	case MQTT_P_SERVER_REFERENCE: out->server_reference = p->str; break;
	case MQTT_P_REASON_STRING: out->reason_string = p->str; break;
	case MQTT_P_RECEIVE_MAXIMUM: out->receive_maximum = (uint16_t)p->num; break;
	case MQTT_P_TOPIC_ALIAS_MAXIMUM: out->topic_alias_maximum = (uint16_t)p->num; break;
	case MQTT_P_TOPIC_ALIAS: out->topic_alias = (uint16_t)p->num; break;
	case MQTT_P_MAXIMUM_QOS: out->maximum_qos = (uint8_t)p->num; break;
	case MQTT_P_RETAIN_AVAILABLE: out->retain_available = (uint8_t)p->num; break;
	case MQTT_P_USER_PROPERTY:
		if (out->user_property_count++ == 0) {
			out->user_key = p->str;
			out->user_value = p->str2;
		}
		break;
	case MQTT_P_MAXIMUM_PACKET_SIZE: out->max_packet_size = p->num; break;
	case MQTT_P_WILDCARD_SUB_AVAILABLE: out->wildcard_sub_available = (uint8_t)p->num; break;
	case MQTT_P_SUB_ID_AVAILABLE: out->sub_id_available = (uint8_t)p->num; break;
	case MQTT_P_SHARED_SUB_AVAILABLE: out->shared_sub_available = (uint8_t)p->num; break;
	}
}

enum proto_err mqtt_props_decode(struct cursor *c, uint8_t ctx, const uint8_t *base, struct mqtt_props *out,
				 struct proto_diag *d)
{
	uint32_t len;
	struct cursor block;

	memset(out, 0, sizeof *out);
	uint32_t at = mqtt_off(base, c);
	switch (cursor_varint(c, &len)) {
	case CURSOR_VARINT_OK: break;
	case CURSOR_VARINT_OVERLONG: return mqtt_fail(d, MQTT_E_VARINT_OVERLONG, "property length", at);
	case CURSOR_VARINT_TOO_LONG: return mqtt_fail(d, MQTT_E_VARINT_TOO_LONG, "property length", at);
	default: return mqtt_fail(d, MQTT_E_TRUNCATED, "property length", at);
	}
	if (!cursor_take(c, len, &block))
		return mqtt_fail(d, MQTT_E_PROPERTY_LENGTH, "property length", at);
	out->raw = block;

	while (!cursor_empty(&block)) {
		uint32_t pat = mqtt_off(base, &block);
		uint8_t id;
		if (!cursor_u8(&block, &id))
			return mqtt_fail(d, MQTT_E_TRUNCATED, "property", pat);
		/* Identifiers are Variable Byte Integers that are all one byte today;
		 * a set high bit can only be an unknown identifier. */
		if (id >= sizeof props / sizeof props[0] || !props[id].name)
			return mqtt_fail(d, MQTT_E_PROPERTY_UNKNOWN, "property identifier", pat);
		const struct prop_row *row = &props[id];
		if (!(row->allowed & (1u << ctx)))
			return mqtt_fail(d, ctx == MQTT_CTX_WILL ? MQTT_E_WILL_PROPS_NOT_ALLOWED : MQTT_E_PROPERTY_NOT_ALLOWED,
					 row->name, pat);
		bool repeat_ok = row->repeatable && !(id == MQTT_P_SUBSCRIPTION_ID && ctx == MQTT_T_SUBSCRIBE);
		if ((out->present & MQTT_PROP_BIT(id)) && !repeat_ok)
			return mqtt_fail(d, MQTT_E_PROPERTY_DUPLICATE, row->name, pat);
		struct mqtt_prop p = { .id = id };
		enum mqtt_err err;
		if (!read_value(&block, row->type, &p, &err))
			return mqtt_fail(d, err == MQTT_E_TRUNCATED ? MQTT_E_PROPERTY_LENGTH : err, row->name, pat);
		if (!value_ok(id, p.num))
			return mqtt_fail(d, id == MQTT_P_TOPIC_ALIAS ? MQTT_E_TOPIC_ALIAS_ZERO
					 : id == MQTT_P_SUBSCRIPTION_ID ? MQTT_E_SUBSCRIPTION_ID_ZERO
					 : MQTT_E_PROPERTY_VALUE, row->name, pat);
		out->present |= MQTT_PROP_BIT(id);
		store(out, &p);
	}
	return PROTO_OK;
}
