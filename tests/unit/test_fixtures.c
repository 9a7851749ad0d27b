/* Every MQTT packet recorded from real clients (mosquitto_pub/sub, paho 3.1.1
 * and 5.0) talking to a real mosquitto, and every answer of the broker, as
 * kept in tests/data/recorded/fixtures.tsv (see its SOURCES.md): each decodes,
 * byte-at-a-time framing finds the same packets, and the packets that the
 * misbehaviour scenarios sent on purpose fail with the right violation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mqtt.h"
#include "tests/unit/testutil.h"

struct row {
	char scenario[64];
	int stream, level, index;
	enum proto_dir dir;
	uint8_t *bytes;
	size_t n;
};

static struct row *rows;
static size_t nrows;

static int load(void **state)
{
	(void)state;
	char *text = tu_read_file(tu_data_path("recorded/fixtures.tsv"), NULL);
	if (!text)
		return -1;
	size_t cap = 1024;
	rows = calloc(cap, sizeof *rows);
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char dir[8], hex[1 << 16];
		struct row r = { 0 };
		if (sscanf(line, "%63s %d %7s %d %d %65535s", r.scenario, &r.stream, dir, &r.level, &r.index, hex) != 6 ||
		    strcmp(r.scenario, "scenario") == 0)
			continue;
		r.dir = strcmp(dir, "s2c") == 0 ? PROTO_S2C : PROTO_C2S;
		r.bytes = tu_hex(hex, &r.n);
		if (nrows == cap)
			rows = realloc(rows, (cap *= 2) * sizeof *rows);
		rows[nrows++] = r;
	}
	free(text);
	return nrows > 0 ? 0 : -1;
}

static int unload(void **state)
{
	(void)state;
	for (size_t i = 0; i < nrows; i++)
		free(rows[i].bytes);
	free(rows);
	return 0;
}

/* Packets the scenarios sent on purpose to break the spec. */
static const char *expected_error(const struct row *r)
{
	uint8_t type = r->bytes[0] >> 4;
	if (strstr(r->scenario, "err-publish-qos3") && r->dir == PROTO_C2S && type == MQTT_T_PUBLISH)
		return "publish_qos_3";
	if (strstr(r->scenario, "err-reserved-type0") && r->dir == PROTO_C2S && type == 0)
		return "reserved_packet_type";
	return NULL;
}

static void test_every_recorded_packet_decodes(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		struct mqtt_codec c;
		mqtt_codec_init(&c);
		c.level = (uint8_t)r->level; /* the stream's CONNECT said so */
		if (r->level == 0)
			c.assumed_level = MQTT_LEVEL_311;
		struct mqtt_packet p;
		struct proto_diag d;
		enum proto_err e = mqtt_decode(&c, r->dir, cursor_make(r->bytes, r->n), &p, &d);
		const char *want = expected_error(r);
		if (want ? (e == PROTO_OK || strcmp(d.name, want) != 0) : e != PROTO_OK) {
			fprintf(stderr, "%s stream %d %s #%d: %s (want %s)\n", r->scenario, r->stream,
				r->dir == PROTO_C2S ? "c2s" : "s2c", r->index, e == PROTO_OK ? "ok" : d.name,
				want ? want : "ok");
			failures++;
		}
	}
	assert_true(nrows > 500);
	assert_int_equal(failures, 0);
}

/* Which packet types decoded cleanly at each level, from each side. */
static void test_recordings_cover_every_packet_type(void **state)
{
	(void)state;
	unsigned seen[6] = { 0 };
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		struct mqtt_codec c;
		mqtt_codec_init(&c);
		c.level = (uint8_t)r->level;
		struct mqtt_packet p;
		struct proto_diag d;
		if (r->level >= 3 && mqtt_decode(&c, r->dir, cursor_make(r->bytes, r->n), &p, &d) == PROTO_OK)
			seen[r->level] |= 1u << p.type;
	}
	/* CONNECT .. DISCONNECT (types 1-14); AUTH needs a broker auth plugin
	 * and is covered by the vectors. */
	unsigned all = 0x7ffe;
	assert_int_equal(seen[MQTT_LEVEL_311] & all, all);
	assert_int_equal(seen[MQTT_LEVEL_5] & all, all);
	/* 3.1 (MQIsdp) with mosquitto_pub/sub: no keep-alive traffic recorded. */
	unsigned v31 = all & ~(1u << MQTT_T_PINGREQ | 1u << MQTT_T_PINGRESP);
	assert_int_equal(seen[MQTT_LEVEL_31] & v31, v31);
}

/* Each direction of each stream, framed one byte at a time, yields the same
 * packet boundaries as the recorder's own splitter. */
static void test_streams_frame_byte_at_a_time(void **state)
{
	(void)state;
	for (size_t i = 0; i < nrows;) {
		size_t j = i, total = 0;
		while (j < nrows && rows[j].stream == rows[i].stream && rows[j].dir == rows[i].dir &&
		       strcmp(rows[j].scenario, rows[i].scenario) == 0)
			total += rows[j++].n;
		uint8_t *s = malloc(total), *w = s;
		for (size_t k = i; k < j; k++)
			memcpy(w, rows[k].bytes, rows[k].n), w += rows[k].n;
		struct mqtt_framer f;
		mqtt_framer_init(&f, 0);
		size_t k = i;
		for (size_t b = 0; b < total; b++) {
			struct cursor in = cursor_make(s + b, 1);
			struct proto_frame fr;
			struct proto_diag d;
			enum proto_err e = mqtt_framer_feed(&f, &in, &fr, &d);
			if (e == PROTO_OK) {
				assert_true(k < j);
				assert_int_equal(proto_frame_len(&fr), rows[k].n);
				k++;
			} else {
				assert_int_equal(e, PROTO_NEED_MORE);
			}
		}
		assert_int_equal(k, j);
		free(s);
		i = j;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_recorded_packet_decodes),
		cmocka_unit_test(test_recordings_cover_every_packet_type),
		cmocka_unit_test(test_streams_frame_byte_at_a_time),
	};
	return cmocka_run_group_tests_name("fixtures", tests, load, unload);
}
