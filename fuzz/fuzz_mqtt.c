/* libFuzzer target over the MQTT framer and decoder, both directions, every
 * protocol level. Byte 0 steers: bits 0-1 the level the codec assumes
 * (unknown, 3.1, 3.1.1, 5.0), bits 2-5 the chunk size the stream is fed in,
 * bit 6 a packet-size cap. The rest is the byte stream. Invariants checked:
 * framer and peek agree, a decoded packet spans exactly its frame, every
 * validated property block and topic list can be walked to its end, and
 * whatever the encoders write decodes back. Also linked into
 * tests/unit/test_fuzz_regress to replay fuzz/regress and fuzz/seeds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static void walk_props(const struct mqtt_props *p)
{
	struct cursor it = p->raw;
	struct mqtt_prop pr;
	while (mqtt_props_next(&it, &pr))
		;
	CHECK(cursor_empty(&it)); /* the decoder validated the whole block */
}

static void check_packet(const struct mqtt_packet *pkt)
{
	struct proto_facts f;
	mqtt_packet_facts(pkt, &f);
	switch (pkt->type) {
	case MQTT_T_CONNECT:
		walk_props(&pkt->u.connect.props);
		walk_props(&pkt->u.connect.will_props);
		break;
	case MQTT_T_CONNACK: walk_props(&pkt->u.connack.props); break;
	case MQTT_T_PUBLISH: walk_props(&pkt->u.publish.props); break;
	case MQTT_T_PUBACK: case MQTT_T_PUBREC: case MQTT_T_PUBREL: case MQTT_T_PUBCOMP:
		walk_props(&pkt->u.ack.props);
		break;
	case MQTT_T_SUBSCRIBE: case MQTT_T_UNSUBSCRIBE: {
		struct cursor it = pkt->u.subscribe.entries, filter;
		uint8_t opt;
		unsigned n = 0;
		while (mqtt_topic_list_next(&it, pkt->type == MQTT_T_SUBSCRIBE, &filter, &opt))
			n++;
		CHECK(n == pkt->u.subscribe.count && cursor_empty(&it));
		walk_props(&pkt->u.subscribe.props);
		break;
	}
	case MQTT_T_SUBACK: case MQTT_T_UNSUBACK: walk_props(&pkt->u.suback.props); break;
	case MQTT_T_DISCONNECT: walk_props(&pkt->u.disconnect.props); break;
	case MQTT_T_AUTH: walk_props(&pkt->u.auth.props); break;
	}
}

static void run_direction(const uint8_t *data, size_t size, uint8_t level, size_t chunk, uint32_t cap,
			  enum proto_dir dir)
{
	struct mqtt_framer fr;
	struct mqtt_codec codec;
	mqtt_framer_init(&fr, cap);
	mqtt_codec_init(&codec);
	codec.assumed_level = level;
	size_t off = 0;
	while (off < size) {
		size_t k = size - off < chunk ? size - off : chunk;
		struct cursor in = cursor_make(data + off, k);
		while (!cursor_empty(&in)) {
			struct proto_frame f;
			struct proto_diag d;
			enum proto_err r = mqtt_framer_feed(&fr, &in, &f, &d);
			if (r == PROTO_NEED_MORE)
				break;
			if (r != PROTO_OK)
				return;
			CHECK(f.offset + proto_frame_len(&f) <= size);
			struct cursor frame = cursor_make(data + f.offset, (size_t)proto_frame_len(&f));
			struct proto_frame pf;
			CHECK(mqtt_frame_peek(frame, cap, &pf, &d) == PROTO_OK);
			CHECK(pf.hdr_len == f.hdr_len && pf.body_len == f.body_len);
			struct mqtt_packet pkt;
			r = mqtt_decode(&codec, dir, frame, &pkt, &d);
			/* A prefix decode (as a streaming shell does it) agrees with
			 * the whole-frame decode on everything before the payload. */
			struct mqtt_codec pc = codec;
			struct mqtt_packet pre;
			struct proto_diag pd;
			struct cursor prefix = cursor_make(frame.p, f.hdr_len + f.body_len / 2);
			enum proto_err pr = mqtt_decode_prefix(&pc, dir, prefix, &pre, &pd);
			if (pr == PROTO_OK && r == PROTO_OK && pkt.type == MQTT_T_PUBLISH) {
				CHECK(pre.len == pkt.len && pre.u.publish.packet_id == pkt.u.publish.packet_id);
				CHECK(pre.u.publish.topic.left == pkt.u.publish.topic.left);
			}
			if (r == PROTO_OK) {
				CHECK(pkt.len == frame.left);
				check_packet(&pkt);
			} else {
				CHECK(d.name != NULL && d.offset <= frame.left && d.reason >= 0x80);
			}
		}
		off += k;
	}
}

static void run_encoders(const uint8_t *data, size_t size, uint8_t level)
{
	char text[300];
	size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
	memcpy(text, data, n);
	text[n] = 0;
	/* Encoders take C strings of UTF-8; only feed them valid text. */
	if (mqtt_utf8_check(cursor_make(text, strlen(text))) != MQTT_E_NONE)
		text[0] = 0;
	uint8_t reason = size ? data[0] : 0;
	uint8_t out[600];
	struct mqtt_codec c;
	struct mqtt_packet pkt;
	struct proto_diag d;
	size_t len;
	if (level >= MQTT_LEVEL_5 && mqtt_reason_allowed(reason, MQTT_T_DISCONNECT)) {
		len = mqtt_encode_disconnect(level, reason, text, out, sizeof out);
		mqtt_codec_init(&c);
		c.assumed_level = level;
		CHECK(len > 0 && mqtt_decode(&c, PROTO_S2C, cursor_make(out, len), &pkt, &d) == PROTO_OK);
		CHECK(pkt.u.disconnect.reason == reason);
	}
	if (level && mqtt_reason_allowed(reason, MQTT_T_CONNACK)) {
		len = mqtt_encode_connack(level, true, reason, text, out, sizeof out);
		mqtt_codec_init(&c);
		c.assumed_level = level;
		CHECK(len > 0 && mqtt_decode(&c, PROTO_S2C, cursor_make(out, len), &pkt, &d) == PROTO_OK);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t levels[4] = { MQTT_LEVEL_UNKNOWN, MQTT_LEVEL_31, MQTT_LEVEL_311, MQTT_LEVEL_5 };
	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	uint8_t level = levels[ctl & 3];
	size_t chunk = 1 + (size_t)((ctl >> 2) & 15) * 97;
	uint32_t cap = (ctl & 0x40) ? 4096 : 0;
	data++, size--;
	run_direction(data, size, level, chunk, cap, PROTO_C2S);
	run_direction(data, size, level, chunk, cap, PROTO_S2C);
	run_encoders(data, size, level);
	return 0;
}
