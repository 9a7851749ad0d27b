/* libFuzzer target over `why`'s broker log readers: the input is a log, split
 * into lines, read as the CLI reads one (detection, then each line unwrapped
 * from a collector's wrapping and parsed by the detected reader), and also
 * through every reader directly, each with its own state across the lines.
 * Byte 0 steers: bits 0-2 a reader forced as --format does (0-4) or none
 * (5-7). Invariants: every view a record holds lies inside the line it came
 * from or inside the reader's state; the unwrapped line fits its buffer. Also
 * linked into tests/unit/test_fuzz_regress_why to replay fuzz/regress/why and
 * fuzz/seeds/why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/why_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)
#define MAX_LINES 64

static const struct why_format *const readers[] = { &why_format_mosquitto, &why_format_amps, &why_format_hivemq,
						    &why_format_emqx, &why_format_rabbitmq };
#define N_READERS (sizeof readers / sizeof readers[0])

static bool within(struct why_text v, const char *p, size_t n)
{
	return v.p == NULL || (v.p >= p && v.n <= n && (size_t)(v.p - p) <= n - v.n);
}

static void check_record(const struct why_rec *r, struct why_text line, const void *state, size_t state_size)
{
	const struct why_text views[] = { r->id, r->addr, r->user, r->msg, r->detail };
	for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
		CHECK(within(views[i], line.p, line.n) || within(views[i], state, state_size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned steer = data[0] & 7;
	const char *text = (const char *)data + 1;
	size_t n = size - 1;
	struct why_text lines[MAX_LINES];
	size_t n_lines = 0;
	for (size_t at = 0; at < n && n_lines < MAX_LINES;) {
		const char *nl = memchr(text + at, '\n', n - at);
		size_t len = nl ? (size_t)(nl - (text + at)) : n - at;
		lines[n_lines++] = (struct why_text){ text + at, len };
		at += len + 1;
	}
	size_t cap = n + WHY_UNWRAP_EXTRA;
	char *scratch = malloc(cap);
	void *states[N_READERS];
	for (size_t f = 0; f < N_READERS; f++)
		states[f] = calloc(1, readers[f]->state_size);
	const struct why_unwrap_ref ref = { 2026, 11 };
	bool wrapped = false;
	const struct why_format *forced = steer < N_READERS ? readers[steer] : NULL;
	const struct why_format *fmt = why_format_detect(lines, n_lines, forced, &ref, scratch, cap, &wrapped);
	CHECK(!forced || fmt == forced);
	for (size_t i = 0; i < n_lines; i++) {
		struct why_rec r;
		/* each line in a block of its own size: a read past it is ASan's, not the next line's */
		char *own = malloc(lines[i].n ? lines[i].n : 1);
		memcpy(own, lines[i].p, lines[i].n);
		lines[i].p = own;
		for (size_t f = 0; f < N_READERS; f++) {
			/* every reader, each with its own state across the lines */
			readers[f]->parse(states[f], lines[i].p, lines[i].n, &r);
			check_record(&r, lines[i], states[f], readers[f]->state_size);
			if (readers[f] != fmt)
				continue;
			size_t k = why_unwrap(lines[i].p, lines[i].n, &ref, scratch, cap);
			CHECK(k <= cap);
			if (!k)
				continue;
			struct why_text u = { scratch, k };
			readers[f]->parse(states[f], u.p, u.n, &r);
			check_record(&r, u, states[f], readers[f]->state_size);
		}
		free(own);
	}
	for (size_t f = 0; f < N_READERS; f++)
		free(states[f]);
	free(scratch);
	return 0;
}
