/* Shared helpers for the cmocka unit tests: hex decoding, test data paths,
 * and feeding a byte stream through the framer and decoder. */
#ifndef WW_TESTS_TESTUTIL_H
#define WW_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/mqtt.h"

/* Decodes <hex> into a malloc'd buffer; *<n> gets its length. Aborts on bad hex. */
uint8_t *tu_hex(const char *hex, size_t *n);

/* Path of a file under tests/data (env WW_TEST_DATA, else ../tests/data
 * relative to the build dir); static buffer. */
const char *tu_data_path(const char *rel);

/* Reads a whole file; NULL if it cannot. Caller frees. */
char *tu_read_file(const char *path, size_t *n);

/* Frames and decodes <buf> as one direction of a connection, the way the
 * shells do: returns the number of packets decoded into <pkts> (up to <max>),
 * and stops at the first error, stored in <err> (PROTO_OK if none; a partial
 * packet at the end gives PROTO_NEED_MORE). */
size_t tu_decode_stream(struct mqtt_codec *codec, enum proto_dir dir, const uint8_t *buf, size_t n,
			struct mqtt_packet *pkts, size_t max, enum proto_err *err, struct proto_diag *d);

#endif
