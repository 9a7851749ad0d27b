/* MQTT CONNECT (spec 3.1 of 3.1.1 and 5.0; MQIsdp 3.1): the one packet that
 * sets the protocol level of a connection, so it is decoded before anything
 * about the level is known.
 *
 *   protocol name   "MQTT" (4, 5) or "MQIsdp" (3)
 *   protocol level  3 | 4 | 5, bit 7 set by mosquitto bridges
 *   connect flags   user | pass | will retain | will QoS (2) | will | clean | reserved
 *   keep alive      2 bytes, seconds
 *   [v5 properties]
 *   client id, [v5 will properties, will topic, will payload], [user], [password] */
#include "proto/mqtt_internal.h"

static enum proto_err read_utf8(struct cursor *c, const uint8_t *base, struct cursor *s, const char *field,
				struct proto_diag *d)
{
	uint32_t at = mqtt_off(base, c);
	if (!cursor_str16(c, s))
		return mqtt_fail(d, MQTT_E_TRUNCATED, field, at);
	enum mqtt_err e = mqtt_utf8_check(*s);
	if (e != MQTT_E_NONE)
		return mqtt_fail(d, e, field, at);
	return PROTO_OK;
}

static enum proto_err read_binary(struct cursor *c, const uint8_t *base, struct cursor *s, const char *field,
				  struct proto_diag *d)
{
	uint32_t at = mqtt_off(base, c);
	if (!cursor_str16(c, s))
		return mqtt_fail(d, MQTT_E_TRUNCATED, field, at);
	return PROTO_OK;
}

enum proto_err mqtt_decode_connect(struct cursor *c, const uint8_t *base, struct mqtt_packet *out,
				   struct proto_diag *d)
{
	struct mqtt_connect *cn = &out->u.connect;
	enum proto_err r;
	uint8_t lvl;
	uint32_t at = mqtt_off(base, c);

	if (!cursor_str16(c, &cn->protocol_name))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "protocol name", at);
	/* Both names are accepted at any level: bridges and old clients mix
	 * them (MQIsdp with level 4 is common), and the level decides. */
	if (!cursor_eq_str(cn->protocol_name, "MQTT") && !cursor_eq_str(cn->protocol_name, "MQIsdp"))
		return mqtt_fail(d, MQTT_E_PROTOCOL_NAME, "protocol name", at);
	at = mqtt_off(base, c);
	if (!cursor_u8(c, &lvl))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "protocol level", at);
	cn->bridge = (lvl & 0x80) != 0;
	cn->level = lvl & 0x7f;
	if (cn->level < MQTT_LEVEL_31 || cn->level > MQTT_LEVEL_5)
		return mqtt_fail(d, MQTT_E_PROTOCOL_LEVEL, "protocol level", at);
	out->level = cn->level;

	at = mqtt_off(base, c);
	if (!cursor_u8(c, &cn->flags))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "connect flags", at);
	uint8_t f = cn->flags;
	if (f & 0x01)
		return mqtt_fail(d, MQTT_E_CONNECT_RESERVED_FLAG, "connect flags", at);
	cn->clean_start = (f & 0x02) != 0;
	cn->will = (f & 0x04) != 0;
	cn->will_qos = (f >> 3) & 3;
	cn->will_retain = (f & 0x20) != 0;
	cn->has_password = (f & 0x40) != 0;
	cn->has_username = (f & 0x80) != 0;
	if (!cn->will && (cn->will_qos || cn->will_retain))
		return mqtt_fail(d, MQTT_E_WILL_FLAGS, "connect flags", at);
	if (cn->will_qos == 3)
		return mqtt_fail(d, MQTT_E_WILL_QOS, "connect flags", at);
	if (cn->has_password && !cn->has_username && cn->level < MQTT_LEVEL_5)
		return mqtt_fail(d, MQTT_E_PASSWORD_WITHOUT_USER, "connect flags", at);

	at = mqtt_off(base, c);
	if (!cursor_be16(c, &cn->keep_alive_s))
		return mqtt_fail(d, MQTT_E_TRUNCATED, "keep alive", at);
	if (cn->level >= MQTT_LEVEL_5 && (r = mqtt_props_decode(c, MQTT_T_CONNECT, base, &cn->props, d)) != PROTO_OK)
		return r;

	at = mqtt_off(base, c);
	if ((r = read_utf8(c, base, &cn->client_id, "client identifier", d)) != PROTO_OK)
		return r;
	/* 3.1.1 [MQTT-3.1.3-7]: a zero-byte id needs CleanSession=1; v5 lets the
	 * server assign one, 3.1 required 1-23 characters (left to the broker). */
	if (cn->level == MQTT_LEVEL_311 && cn->client_id.left == 0 && !cn->clean_start)
		return mqtt_fail(d, MQTT_E_CLIENT_ID_EMPTY, "client identifier", at);

	if (cn->will) {
		if (cn->level >= MQTT_LEVEL_5 &&
		    (r = mqtt_props_decode(c, MQTT_CTX_WILL, base, &cn->will_props, d)) != PROTO_OK)
			return r;
		if ((r = read_utf8(c, base, &cn->will_topic, "will topic", d)) != PROTO_OK)
			return r;
		if ((r = read_binary(c, base, &cn->will_payload, "will payload", d)) != PROTO_OK)
			return r;
	}
	if (cn->has_username && (r = read_utf8(c, base, &cn->username, "user name", d)) != PROTO_OK)
		return r;
	if (cn->has_password && (r = read_binary(c, base, &cn->password, "password", d)) != PROTO_OK)
		return r;
	if (!cursor_empty(c))
		return mqtt_fail(d, MQTT_E_TRAILING_BYTES, "end of packet", mqtt_off(base, c));
	return PROTO_OK;
}
