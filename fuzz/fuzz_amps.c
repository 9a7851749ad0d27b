/* libFuzzer target over the AMPS framer, first-bytes detection and header
 * decoders, both directions. Byte 0 steers: bits 0-1 the header syntax the
 * codec is set to (auto, json, fix, nvfix), bits 2-5 the chunk size the
 * stream is fed in, bit 6 a 4 KiB frame cap. The rest is the byte stream.
 * Invariants: framer and peek agree, every view lies inside its payload and
 * the body ends where the frame does, every escaped string unescapes, sow
 * records walk to the end or stop with an error, and a failure ack written
 * with any reason decodes back to that reason. Also linked into
 * tests/unit/test_fuzz_regress_amps to replay fuzz/regress/amps and fuzz/seeds/amps. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/amps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static bool inside(struct cursor v, struct cursor outer)
{
	if (v.left == 0)
		return true;
	return v.p >= outer.p && (size_t)(v.p - outer.p) <= outer.left && v.left <= outer.left - (size_t)(v.p - outer.p);
}

static void check_header(const struct amps_header *h, struct cursor payload)
{
	char buf[512];
	for (int f = 0; f < AMPS_F__COUNT; f++) {
		if (!AMPS_HAS(h, f))
			continue;
		CHECK(inside(h->f[f], payload));
		if (h->escaped & (1u << f)) {
			/* a checked escape always unescapes, given room */
			if (h->f[f].left * 2 < sizeof buf)
				CHECK(amps_json_unescape(h->f[f], buf, sizeof buf) >= 0);
		}
	}
	CHECK(inside(h->body, payload));
	CHECK(h->hdr_len + h->body.left == payload.left);
}

static void run_direction(const uint8_t *data, size_t size, enum amps_wire wire, size_t chunk, uint32_t cap,
			  enum proto_dir dir)
{
	struct amps_framer fr;
	struct amps_codec codec;
	amps_framer_init(&fr, cap);
	amps_codec_init(&codec, wire);
	size_t off = 0;
	while (off < size) {
		size_t k = size - off < chunk ? size - off : chunk;
		struct cursor in = cursor_make(data + off, k);
		while (!cursor_empty(&in)) {
			struct proto_frame f;
			struct proto_diag d;
			enum proto_err r = amps_framer_feed(&fr, &in, &f, &d);
			if (r == PROTO_NEED_MORE)
				break;
			if (r != PROTO_OK) {
				CHECK(d.name != NULL);
				return;
			}
			CHECK(f.offset + proto_frame_len(&f) <= size);
			struct cursor frame = cursor_make(data + f.offset, (size_t)proto_frame_len(&f));
			struct proto_frame pf;
			CHECK(amps_frame_peek(frame, cap, f.offset == 0, &pf, &d) == PROTO_OK);
			CHECK(pf.body_len == f.body_len && pf.hdr_len == AMPS_LEN_BYTES);
			struct cursor payload = cursor_make(frame.p + AMPS_LEN_BYTES, f.body_len);
			struct amps_header h;
			r = amps_decode(&codec, dir, payload, &h, &d);
			if (r == PROTO_OK || (r == PROTO_E_PROTOCOL && h.hdr_len)) {
				check_header(&h, payload);
				struct proto_facts facts;
				amps_header_facts(&codec, dir, &h, &facts);
				CHECK(facts.type_name != NULL);
				if (r == PROTO_OK && h.cmd == AMPS_CMD_SOW && h.wire == AMPS_WIRE_JSON) {
					struct cursor it = h.body;
					struct amps_sow_record rec;
					unsigned n = 0;
					while (n++ < 100000 && amps_sow_next(&it, &rec, &d) == PROTO_OK)
						CHECK(inside(rec.data, h.body));
				}
			} else {
				CHECK(d.name != NULL && d.offset <= payload.left);
			}
		}
		off += k;
	}
}

static void run_encoder(const uint8_t *data, size_t size)
{
	char text[200];
	size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
	memcpy(text, data, n);
	text[n] = 0;
	uint8_t out[4096]; /* room for every byte escaped as \u00XX, twice */
	size_t len = amps_encode_failure_ack(text, strlen(text), text, out, sizeof out);
	CHECK(len > AMPS_LEN_BYTES);
	struct amps_codec c;
	struct amps_header h;
	struct proto_diag d;
	amps_codec_init(&c, AMPS_WIRE_JSON);
	CHECK(amps_decode(&c, PROTO_S2C, cursor_make(out + AMPS_LEN_BYTES, len - AMPS_LEN_BYTES), &h, &d) == PROTO_OK);
	CHECK(h.status == AMPS_STATUS_FAILURE);
	char back[200];
	int m = amps_json_unescape(h.f[AMPS_F_REASON], back, sizeof back);
	CHECK(m == (int)strlen(text) && memcmp(back, text, (size_t)m) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	enum amps_wire wire = (enum amps_wire)(ctl & 3);
	size_t chunk = 1 + (size_t)((ctl >> 2) & 15) * 97;
	uint32_t cap = (ctl & 0x40) ? 4096 : 0;
	data++, size--;
	struct proto_diag d;
	uint32_t hl;
	enum amps_seen s = amps_detect(cursor_make(data, size), cap, &hl, &d);
	CHECK(hl <= size);
	if (s != AMPS_SEEN_AMPS && s != AMPS_SEEN_NEED_MORE)
		CHECK(d.cls == PROTO_E_NOT_PROTO && d.name != NULL);
	run_direction(data, size, wire, chunk, cap, PROTO_C2S);
	run_direction(data, size, wire, chunk, cap, PROTO_S2C);
	run_encoder(data, size);
	return 0;
}
