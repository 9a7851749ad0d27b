/* Test helpers (see testutil.h). */
#include "tests/unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

uint8_t *tu_hex(const char *hex, size_t *n)
{
	size_t len = strlen(hex);
	uint8_t *out = malloc(len / 2 + 1);
	if (!out || len % 2) {
		fprintf(stderr, "bad hex: %s\n", hex);
		abort();
	}
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fprintf(stderr, "bad hex: %s\n", hex);
			abort();
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = len / 2;
	return out;
}

const char *tu_data_path(const char *rel)
{
	static char path[4096];
	const char *dir = getenv("WW_TEST_DATA");
	snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", rel);
	return path;
}

char *tu_read_file(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	size_t got;
	while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
		len += got;
		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(fp);
	if (buf)
		buf[len] = 0;
	if (n)
		*n = len;
	return buf;
}

size_t tu_decode_stream(struct mqtt_codec *codec, enum proto_dir dir, const uint8_t *buf, size_t n,
			struct mqtt_packet *pkts, size_t max, enum proto_err *err, struct proto_diag *d)
{
	size_t count = 0, off = 0;
	*err = PROTO_OK;
	while (off < n) {
		struct proto_frame fr;
		enum proto_err r = mqtt_frame_peek(cursor_make(buf + off, n - off), 0, &fr, d);
		if (r != PROTO_OK) {
			*err = r;
			return count;
		}
		struct mqtt_packet tmp;
		struct mqtt_packet *p = count < max ? &pkts[count] : &tmp;
		r = mqtt_decode(codec, dir, cursor_make(buf + off, (size_t)proto_frame_len(&fr)), p, d);
		if (r != PROTO_OK) {
			*err = r;
			return count;
		}
		count++;
		off += (size_t)proto_frame_len(&fr);
	}
	return count;
}
