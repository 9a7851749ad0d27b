/* MQTT names and tables: packet type names, the violation table
 * (mqtt_errors.def) with the MQTT 5 reason code of each, the MQTT 5 reason
 * codes with the packets they may appear in (spec 2.4, table 2-6), and the
 * 3.1/3.1.1 CONNACK return codes (3.1.1 spec 3.2.2.3). This is the one place
 * where a decoder violation becomes a wire reason. */
#include "proto/mqtt.h"

const char *mqtt_type_name(uint8_t type)
{
	static const char *const names[16] = {
		"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
	};
	return names[type & 0x0f];
}

struct mqtt_err_row {
	const char *name;
	enum proto_err cls;
	uint8_t reason;
	const char *spec;
};

static const struct mqtt_err_row err_rows[MQTT_E__COUNT] = {
#define X(id, nm, c, r, s) [MQTT_E_##id] = { nm, c, r, s },
#include "proto/mqtt_errors.def"
#undef X
};

const char *mqtt_err_name(enum mqtt_err e)
{
	return (unsigned)e < MQTT_E__COUNT ? err_rows[e].name : "invalid";
}

enum proto_err mqtt_err_class(enum mqtt_err e)
{
	return (unsigned)e < MQTT_E__COUNT ? err_rows[e].cls : PROTO_E_MALFORMED;
}

uint8_t mqtt_err_reason(enum mqtt_err e)
{
	return (unsigned)e < MQTT_E__COUNT ? err_rows[e].reason : 0x81;
}

const char *mqtt_err_spec(enum mqtt_err e)
{
	return (unsigned)e < MQTT_E__COUNT ? err_rows[e].spec : "";
}

enum proto_err mqtt_fail(struct proto_diag *d, enum mqtt_err e, const char *field, uint32_t offset)
{
	d->cls = mqtt_err_class(e);
	d->code = (uint16_t)e;
	d->reason = mqtt_err_reason(e);
	d->name = mqtt_err_name(e);
	d->field = field;
	d->offset = offset;
	d->value = cursor_make(NULL, 0);
	return d->cls;
}

/* Packets a reason code may appear in, as bits (1 << packet type). */
#define B(t) (1u << MQTT_T_##t)
#define ACKS (B(PUBACK) | B(PUBREC))
struct mqtt_reason_row {
	const char *name;
	const char *slug;
	uint16_t packets;
};

static const struct mqtt_reason_row reason_rows[256] = {
	[0x00] = { "Success", "success", B(CONNACK) | ACKS | B(PUBREL) | B(PUBCOMP) | B(UNSUBACK) | B(AUTH) | B(DISCONNECT) | B(SUBACK) },
	[0x01] = { "Granted QoS 1", "granted_qos_1", B(SUBACK) },
	[0x02] = { "Granted QoS 2", "granted_qos_2", B(SUBACK) },
	[0x04] = { "Disconnect with Will Message", "disconnect_with_will_message", B(DISCONNECT) },
	[0x10] = { "No matching subscribers", "no_matching_subscribers", ACKS },
	[0x11] = { "No subscription existed", "no_subscription_existed", B(UNSUBACK) },
	[0x18] = { "Continue authentication", "continue_authentication", B(AUTH) },
	[0x19] = { "Re-authenticate", "re_authenticate", B(AUTH) },
	[0x80] = { "Unspecified error", "unspecified_error", B(CONNACK) | ACKS | B(SUBACK) | B(UNSUBACK) | B(DISCONNECT) },
	[0x81] = { "Malformed Packet", "malformed_packet", B(CONNACK) | B(DISCONNECT) },
	[0x82] = { "Protocol Error", "protocol_error", B(CONNACK) | B(DISCONNECT) },
	[0x83] = { "Implementation specific error", "implementation_specific_error", B(CONNACK) | ACKS | B(SUBACK) | B(UNSUBACK) | B(DISCONNECT) },
	[0x84] = { "Unsupported Protocol Version", "unsupported_protocol_version", B(CONNACK) },
	[0x85] = { "Client Identifier not valid", "client_identifier_not_valid", B(CONNACK) },
	[0x86] = { "Bad User Name or Password", "bad_user_name_or_password", B(CONNACK) },
	[0x87] = { "Not authorized", "not_authorized", B(CONNACK) | ACKS | B(SUBACK) | B(UNSUBACK) | B(DISCONNECT) },
	[0x88] = { "Server unavailable", "server_unavailable", B(CONNACK) },
	[0x89] = { "Server busy", "server_busy", B(CONNACK) | B(DISCONNECT) },
	[0x8A] = { "Banned", "banned", B(CONNACK) },
	[0x8B] = { "Server shutting down", "server_shutting_down", B(DISCONNECT) },
	[0x8C] = { "Bad authentication method", "bad_authentication_method", B(CONNACK) | B(DISCONNECT) },
	[0x8D] = { "Keep Alive timeout", "keep_alive_timeout", B(DISCONNECT) },
	[0x8E] = { "Session taken over", "session_taken_over", B(DISCONNECT) },
	[0x8F] = { "Topic Filter invalid", "topic_filter_invalid", B(SUBACK) | B(UNSUBACK) | B(DISCONNECT) },
	[0x90] = { "Topic Name invalid", "topic_name_invalid", B(CONNACK) | ACKS | B(DISCONNECT) },
	[0x91] = { "Packet Identifier in use", "packet_identifier_in_use", ACKS | B(SUBACK) | B(UNSUBACK) },
	[0x92] = { "Packet Identifier not found", "packet_identifier_not_found", B(PUBREL) | B(PUBCOMP) },
	[0x93] = { "Receive Maximum exceeded", "receive_maximum_exceeded", B(DISCONNECT) },
	[0x94] = { "Topic Alias invalid", "topic_alias_invalid", B(DISCONNECT) },
	[0x95] = { "Packet too large", "packet_too_large", B(CONNACK) | B(DISCONNECT) },
	[0x96] = { "Message rate too high", "message_rate_too_high", B(DISCONNECT) },
	[0x97] = { "Quota exceeded", "quota_exceeded", B(CONNACK) | ACKS | B(SUBACK) | B(DISCONNECT) },
	[0x98] = { "Administrative action", "administrative_action", B(DISCONNECT) },
	[0x99] = { "Payload format invalid", "payload_format_invalid", B(CONNACK) | ACKS | B(DISCONNECT) },
	[0x9A] = { "Retain not supported", "retain_not_supported", B(CONNACK) | B(DISCONNECT) },
	[0x9B] = { "QoS not supported", "qos_not_supported", B(CONNACK) | B(DISCONNECT) },
	[0x9C] = { "Use another server", "use_another_server", B(CONNACK) | B(DISCONNECT) },
	[0x9D] = { "Server moved", "server_moved", B(CONNACK) | B(DISCONNECT) },
	[0x9E] = { "Shared Subscriptions not supported", "shared_subscriptions_not_supported", B(SUBACK) | B(DISCONNECT) },
	[0x9F] = { "Connection rate exceeded", "connection_rate_exceeded", B(CONNACK) | B(DISCONNECT) },
	[0xA0] = { "Maximum connect time", "maximum_connect_time", B(DISCONNECT) },
	[0xA1] = { "Subscription Identifiers not supported", "subscription_identifiers_not_supported", B(SUBACK) | B(DISCONNECT) },
	[0xA2] = { "Wildcard Subscriptions not supported", "wildcard_subscriptions_not_supported", B(SUBACK) | B(DISCONNECT) },
};
#undef B
#undef ACKS

/* 0x00 is spelled per packet in the spec's table. */
static const char *zero_name(uint8_t packet_type, bool slug)
{
	switch (packet_type) {
	case MQTT_T_DISCONNECT: return slug ? "normal_disconnection" : "Normal disconnection";
	case MQTT_T_SUBACK: return slug ? "granted_qos_0" : "Granted QoS 0";
	default: return slug ? "success" : "Success";
	}
}

const char *mqtt_reason_name(uint8_t code, uint8_t packet_type)
{
	if (code == 0)
		return zero_name(packet_type, false);
	return reason_rows[code].name;
}

const char *mqtt_reason_slug(uint8_t code, uint8_t packet_type)
{
	if (code == 0)
		return zero_name(packet_type, true);
	return reason_rows[code].slug;
}

bool mqtt_reason_allowed(uint8_t code, uint8_t packet_type)
{
	return reason_rows[code].name != NULL && (reason_rows[code].packets & (1u << (packet_type & 0x0f))) != 0;
}

const char *mqtt_v3_connack_name(uint8_t rc)
{
	static const char *const names[6] = {
		"Connection Accepted",
		"Connection Refused, unacceptable protocol version",
		"Connection Refused, identifier rejected",
		"Connection Refused, Server unavailable",
		"Connection Refused, bad user name or password",
		"Connection Refused, not authorized",
	};
	return rc < 6 ? names[rc] : NULL;
}

uint8_t mqtt_reason_to_v3_connack(uint8_t v5_reason)
{
	switch (v5_reason) {
	case 0x00: return 0;
	case 0x84: return 1;
	case 0x85: return 2;
	case 0x86: return 4;
	case 0x87: case 0x8A: case 0x8C: return 5;
	/* Everything else that refuses a connection reads to a 3.1.1 client as
	 * "Server unavailable": busy, rate exceeded, moved, malformed, ... */
	default: return 3;
	}
}
