/* MQTT fixed header (spec 2.1): finds packet boundaries in a byte stream.
 *
 *   byte 1      type (4 bits) | flags (4 bits)
 *   bytes 2..5  Remaining Length, Variable Byte Integer (1-4 bytes)
 *   then        Remaining Length bytes of variable header and payload
 *
 * The incremental framer keeps its place between feeds, so any slicing of the
 * stream gives the same frames; it only counts body bytes and never copies.
 * Packet-type and flag rules are the decoder's job: the framer only rejects
 * what makes the stream unreadable (a Remaining Length that is too long or
 * not minimal) or too large for the configured cap. */
#include "proto/mqtt.h"

enum { FR_TYPE = 0, FR_LEN, FR_BODY };

void mqtt_framer_init(struct mqtt_framer *f, uint32_t max_packet)
{
	memset(f, 0, sizeof *f);
	f->max_packet = max_packet;
	f->state = FR_TYPE;
}

static void frame_describe(const struct mqtt_framer *f, struct proto_frame *fr)
{
	fr->offset = f->frame_start;
	fr->hdr_len = 1u + f->len_bytes;
	fr->body_len = f->body_len;
	fr->type = f->first >> 4;
	fr->flags = f->first & 0x0f;
}

bool mqtt_framer_header_ready(const struct mqtt_framer *f, struct proto_frame *fr)
{
	if (f->state != FR_BODY)
		return false;
	frame_describe(f, fr);
	return true;
}

/* Applies one Remaining Length byte; returns PROTO_OK when the length is
 * complete, PROTO_NEED_MORE when another byte follows, or an error. */
static enum proto_err length_step(uint8_t *len_bytes, uint32_t *len, uint8_t b, uint32_t max_packet,
				  struct proto_diag *d, uint32_t at)
{
	if (*len_bytes == 4)
		return mqtt_fail(d, MQTT_E_VARINT_TOO_LONG, "remaining length", at);
	*len |= (uint32_t)(b & 0x7f) << (7 * *len_bytes);
	(*len_bytes)++;
	if (b & 0x80) {
		if (*len_bytes == 4)
			return mqtt_fail(d, MQTT_E_VARINT_TOO_LONG, "remaining length", at);
		return PROTO_NEED_MORE;
	}
	if (*len_bytes > 1 && b == 0)
		return mqtt_fail(d, MQTT_E_VARINT_OVERLONG, "remaining length", at);
	uint64_t total = 1u + (uint64_t)*len_bytes + *len;
	if (max_packet && total > max_packet)
		return mqtt_fail(d, MQTT_E_PACKET_TOO_LARGE, "remaining length", at);
	return PROTO_OK;
}

enum proto_err mqtt_framer_feed(struct mqtt_framer *f, struct cursor *in, struct proto_frame *fr,
				struct proto_diag *d)
{
	if (f->failed)
		return d->cls;
	while (!cursor_empty(in)) {
		uint8_t b;
		switch (f->state) {
		case FR_TYPE:
			if (!cursor_u8(in, &b))
				return PROTO_NEED_MORE;
			f->frame_start = f->offset++;
			f->first = b;
			f->len_bytes = 0;
			f->body_len = 0;
			f->state = FR_LEN;
			break;
		case FR_LEN: {
			if (!cursor_u8(in, &b))
				return PROTO_NEED_MORE;
			f->offset++;
			enum proto_err r = length_step(&f->len_bytes, &f->body_len, b, f->max_packet, d,
						       (uint32_t)(f->offset - 1 - f->frame_start));
			if (r == PROTO_NEED_MORE)
				break;
			if (r != PROTO_OK) {
				f->failed = true;
				return r;
			}
			f->body_left = f->body_len;
			f->state = FR_BODY;
			if (f->body_left == 0)
				goto done;
			break;
		}
		case FR_BODY:
			if (proto_frame_body_step(in, &f->offset, &f->body_left))
				goto done;
			break;
		}
	}
	/* A zero-length body completes as soon as its header does. */
	if (f->state == FR_BODY && f->body_left == 0)
		goto done;
	return PROTO_NEED_MORE;
done:
	frame_describe(f, fr);
	f->state = FR_TYPE;
	return PROTO_OK;
}

enum proto_err mqtt_frame_peek(struct cursor buf, uint32_t max_packet, struct proto_frame *fr, struct proto_diag *d)
{
	uint8_t first, b, len_bytes = 0;
	uint32_t len = 0;

	if (!cursor_u8(&buf, &first))
		return PROTO_NEED_MORE;
	for (;;) {
		if (!cursor_u8(&buf, &b))
			return PROTO_NEED_MORE;
		enum proto_err r = length_step(&len_bytes, &len, b, max_packet, d, len_bytes + 1u);
		if (r == PROTO_NEED_MORE)
			continue;
		if (r != PROTO_OK)
			return r;
		break;
	}
	fr->offset = 0;
	fr->hdr_len = 1u + len_bytes;
	fr->body_len = len;
	fr->type = first >> 4;
	fr->flags = first & 0x0f;
	return cursor_left(&buf) >= len ? PROTO_OK : PROTO_NEED_MORE;
}
