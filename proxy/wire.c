/* What the relay and the connection need from a protocol, one table each:
 * framing a byte stream, decoding a frame into the engine's facts, and the
 * few frames the proxy writes itself (a refused logon, a server's goodbye,
 * the broker's unavailability, ending a session upstream). MQTT has a
 * message for each; AMPS has only the failure ack, and is closed otherwise. */
#include "proxy/proxy.h"

#include <stdio.h>
#include <string.h>

/* ---- MQTT ----------------------------------------------------------------- */

static void mqtt_init(struct conn *c) { mqtt_codec_init(&c->codec.mqtt); }

static enum proto_err mqtt_peek(struct conn *c, enum proto_dir d, struct cursor head, uint32_t cap,
				struct proto_frame *fr, struct proto_diag *diag)
{
	(void)c;
	(void)d;
	return mqtt_frame_peek(head, cap == UINT32_MAX ? 0 : cap, fr, diag);
}

static enum proto_err mqtt_facts(struct conn *c, enum proto_dir d, struct cursor bytes, uint64_t total,
				 struct proto_facts *f, struct proto_diag *diag)
{
	struct mqtt_packet pkt;
	enum proto_err r = bytes.left >= total ? mqtt_decode(&c->codec.mqtt, d, cursor_make(bytes.p, (size_t)total), &pkt, diag)
					       : mqtt_decode_prefix(&c->codec.mqtt, d, bytes, &pkt, diag);
	if (r == PROTO_OK)
		mqtt_packet_facts(&pkt, f);
	return r;
}

static bool mqtt_streams(const struct proto_frame *fr) { return fr->type == MQTT_T_PUBLISH; }

static size_t mqtt_refuse(struct conn *c, const struct eng_action *act, uint8_t *buf, size_t cap)
{
	uint8_t level = c->s.level ? c->s.level : MQTT_LEVEL_311;
	size_t n = mqtt_encode_connack(level, false, act->v5_code, act->text, buf, cap);
	if (n && level < MQTT_LEVEL_5 && act->v3_code)
		buf[3] = act->v3_code; /* the policy's own 3.1.1 choice */
	return n;
}

static size_t mqtt_goodbye(struct conn *c, const struct eng_action *act, uint8_t *buf, size_t cap)
{
	if (c->s.level < MQTT_LEVEL_5)
		return 0; /* a 3.1.1 server has no DISCONNECT to send: close */
	return mqtt_encode_disconnect(MQTT_LEVEL_5, act->v5_code, act->text, buf, cap);
}

static size_t mqtt_unavailable(struct conn *c, uint8_t *buf, size_t cap)
{
	if (!c->s.connect_seen)
		return 0;
	return mqtt_encode_connack(c->s.level, false, 0x88, "wirewarden: broker unreachable", buf, cap);
}

/* A v5 broker is told 0x04, Disconnect with Will, so the Will still goes out;
 * a 3.1.1 broker publishes it when the connection drops without DISCONNECT. */
static size_t mqtt_upstream_goodbye(struct conn *c, uint8_t *buf, size_t cap)
{
	if (c->s.level < MQTT_LEVEL_5 || !c->s.connack_seen || c->s.refused)
		return 0;
	return mqtt_encode_disconnect(MQTT_LEVEL_5, 0x04, NULL, buf, cap);
}

const struct wire_ops wire_mqtt = {
	.name = "mqtt", .id = PROTO_ID_MQTT, .head_len = 5,
	.init = mqtt_init, .peek = mqtt_peek, .facts = mqtt_facts, .streams = mqtt_streams,
	.refuse = mqtt_refuse, .goodbye = mqtt_goodbye, .unavailable = mqtt_unavailable,
	.upstream_goodbye = mqtt_upstream_goodbye,
};

/* ---- AMPS ----------------------------------------------------------------- */

static void amps_init(struct conn *c) { amps_codec_init(&c->codec.amps, AMPS_WIRE_AUTO); }

/* The client's frames are held to the configured cap, else AMPS's 16 MiB
 * default; the server's are read up to the 1 GiB stop. Only the client's
 * first bytes are checked for TLS, HTTP and the like. */
static enum proto_err amps_peek(struct conn *c, enum proto_dir d, struct cursor head, uint32_t cap,
				struct proto_frame *fr, struct proto_diag *diag)
{
	uint32_t max = cap;
	if (cap == UINT32_MAX || (cap == 0 && d == PROTO_S2C))
		max = AMPS_LEN_CORRUPT - 1;
	else if (cap == 0)
		max = AMPS_MAX_FRAME_DEFAULT;
	bool first = d == PROTO_C2S && c->s.packets_c2s == 0;
	return amps_frame_peek(head, max, first, fr, diag);
}

/* A whole frame, or the head of a large one: a header that is all there
 * decodes (the body view is cut); else PROTO_NEED_MORE, and the whole frame
 * will say what is wrong with it. */
static enum proto_err amps_facts(struct conn *c, enum proto_dir d, struct cursor bytes, uint64_t total,
				 struct proto_facts *f, struct proto_diag *diag)
{
	bool whole = bytes.left >= total;
	if (bytes.left < AMPS_LEN_BYTES || total < AMPS_LEN_BYTES)
		return PROTO_NEED_MORE; /* the relay hands a whole frame or a head of 64 KiB: never here */
	struct cursor payload = cursor_make(bytes.p + AMPS_LEN_BYTES, (whole ? (size_t)total : bytes.left) - AMPS_LEN_BYTES);
	struct amps_codec before = c->codec.amps;
	struct amps_header h;
	enum proto_err r = amps_decode(&c->codec.amps, d, payload, &h, diag);
	if (!whole && r != PROTO_OK && r != PROTO_E_PROTOCOL) {
		c->codec.amps = before;
		return PROTO_NEED_MORE;
	}
	if (r == PROTO_OK)
		amps_header_facts(&c->codec.amps, d, &h, f);
	return r;
}

static bool amps_streams(const struct proto_frame *fr)
{
	(void)fr;
	return true; /* the header comes first: any large frame decodes from its head */
}

static bool amps_explain(struct cursor head, struct proto_diag *diag)
{
	struct proto_diag d2;
	enum amps_seen s = amps_detect(head, 0, NULL, &d2);
	if (s == AMPS_SEEN_NEED_MORE)
		return false;
	if (s != AMPS_SEEN_AMPS)
		*diag = d2;
	return true;
}

static size_t amps_refuse(struct conn *c, const struct eng_action *act, uint8_t *buf, size_t cap)
{
	char cid[40];
	int n = -1;
	if (c->codec.amps.logon_cid_len)
		n = amps_json_unescape(cursor_make(c->codec.amps.logon_cid, c->codec.amps.logon_cid_len), cid, sizeof cid);
	return amps_encode_failure_ack(n >= 0 ? cid : NULL, n >= 0 ? (size_t)n : 0,
				       act->amps_reason ? act->amps_reason : "not entitled", buf, cap);
}

static size_t amps_nothing(struct conn *c, const struct eng_action *act, uint8_t *buf, size_t cap)
{
	(void)c, (void)act, (void)buf, (void)cap;
	return 0; /* AMPS has no goodbye: the connection is closed */
}

static size_t amps_nothing_upstream(struct conn *c, uint8_t *buf, size_t cap)
{
	(void)c, (void)buf, (void)cap;
	return 0;
}

const struct wire_ops wire_amps = {
	.name = "amps", .id = PROTO_ID_AMPS, .head_len = AMPS_LEN_BYTES,
	.init = amps_init, .peek = amps_peek, .facts = amps_facts, .streams = amps_streams, .explain = amps_explain,
	.refuse = amps_refuse, .goodbye = amps_nothing, .unavailable = amps_nothing_upstream,
	.upstream_goodbye = amps_nothing_upstream,
};

const struct wire_ops *wire_for_listener(const char *protocol)
{
	if (protocol && !strcmp(protocol, "amps"))
		return &wire_amps;
	if (protocol && !strcmp(protocol, "auto"))
		return NULL;
	return &wire_mqtt;
}

const struct wire_ops *wire_for_id(enum proto_id id) { return id == PROTO_ID_AMPS ? &wire_amps : &wire_mqtt; }
