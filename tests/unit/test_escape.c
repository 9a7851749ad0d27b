/* Unit tests for common/escape.c: what survives escape_text() into a text
 * line (nothing that can end, reorder or hide part of a line), how cuts are
 * marked, and the UTF-8 and hex renderings used by the JSON sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/escape.h"

/* escape_text() of a C string literal (which may hold any byte but NUL). */
static const char *esc(const char *in, char *out, size_t cap)
{
	escape_text((const uint8_t *)in, strlen(in), out, cap);
	return out;
}

static void test_escape_text_keeps_printable_ascii(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("sensor-7 a/b:c#+", out, sizeof out), "sensor-7 a/b:c#+");
}

static void test_escape_text_escapes_backslash_and_quote(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\\b\"c", out, sizeof out), "a\\\\b\\\"c");
}

static void test_escape_text_escapes_newline(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\nb", out, sizeof out), "a\\x0ab");
}

static void test_escape_text_escapes_carriage_return(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\rb", out, sizeof out), "a\\x0db");
}

static void test_escape_text_escapes_esc(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("\x1b[31mred", out, sizeof out), "\\x1b[31mred");
}

static void test_escape_text_escapes_nul(void **state)
{
	static const uint8_t in[] = { 'a', 0, 'b' };
	char out[64];

	(void)state;
	assert_int_equal(escape_text(in, sizeof in, out, sizeof out), 6);
	assert_string_equal(out, "a\\x00b");
}

static void test_escape_text_escapes_del(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\x7f", out, sizeof out), "a\\x7f");
}

static void test_escape_text_escapes_tab_and_other_c0_controls(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("\t\x01\x1f", out, sizeof out), "\\x09\\x01\\x1f");
}

static void test_escape_text_escapes_invalid_utf8_byte_by_byte(void **state)
{
	char out[128];

	(void)state;
	assert_string_equal(esc("\xff", out, sizeof out), "\\xff");
	assert_string_equal(esc("\xc0\x80", out, sizeof out), "\\xc0\\x80");         /* overlong NUL */
	assert_string_equal(esc("\xe0\x80\xaf", out, sizeof out), "\\xe0\\x80\\xaf"); /* overlong '/' */
	assert_string_equal(esc("\xed\xa0\x80", out, sizeof out), "\\xed\\xa0\\x80"); /* surrogate */
	assert_string_equal(esc("\xf4\x90\x80\x80", out, sizeof out), "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
	assert_string_equal(esc("\x80x", out, sizeof out), "\\x80x");                 /* lone continuation */
	assert_string_equal(esc("\xe2\x82", out, sizeof out), "\\xe2\\x82");          /* truncated */
	assert_string_equal(esc("\xe2\x82" "A", out, sizeof out), "\\xe2\\x82A");     /* resynchronises */
}

static void test_escape_text_keeps_printable_utf8(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("capteur-\xc3\xa9", out, sizeof out), "capteur-\xc3\xa9");         /* é */
	assert_string_equal(esc("\xe6\x97\xa5\xe6\x9c\xac", out, sizeof out), "\xe6\x97\xa5\xe6\x9c\xac"); /* 日本 */
	assert_string_equal(esc("\xf0\x9f\x9b\xb0", out, sizeof out), "\xf0\x9f\x9b\xb0");         /* 🛰 */
}

static void test_escape_text_escapes_c1_control(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\xc2\x85" "b", out, sizeof out), "a\\xc2\\x85b"); /* NEL */
	assert_string_equal(esc("\xc2\x9b", out, sizeof out), "\\xc2\\x9b");        /* CSI */
}

static void test_escape_text_escapes_line_and_paragraph_separators(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\xe2\x80\xa8" "b", out, sizeof out), "a\\xe2\\x80\\xa8b");
	assert_string_equal(esc("\xe2\x80\xa9", out, sizeof out), "\\xe2\\x80\\xa9");
}

static void test_escape_text_escapes_bidi_override(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("\xe2\x80\xae" "gpj.exe", out, sizeof out), "\\xe2\\x80\\xaegpj.exe"); /* RLO */
	assert_string_equal(esc("\xe2\x81\xa6", out, sizeof out), "\\xe2\\x81\\xa6");                 /* LRI */
	assert_string_equal(esc("\xe2\x80\x8f", out, sizeof out), "\\xe2\\x80\\x8f");                 /* RLM */
	assert_string_equal(esc("\xd8\x9c", out, sizeof out), "\\xd8\\x9c");                          /* ALM */
}

static void test_escape_text_escapes_zero_width_and_bom(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(esc("a\xe2\x80\x8b" "b", out, sizeof out), "a\\xe2\\x80\\x8bb"); /* ZWSP */
	assert_string_equal(esc("\xef\xbb\xbf", out, sizeof out), "\\xef\\xbb\\xbf");       /* BOM */
}

static void test_escape_text_cut_ends_with_marker(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(escape_text((const uint8_t *)"abcdefghij", 10, out, sizeof out), 7);
	assert_string_equal(out, "abcd...");
}

static void test_escape_text_cut_never_splits_an_escape(void **state)
{
	char out[10];

	(void)state;
	/* "ab\x0a" is 6 characters; 9 usable minus 3 for the marker leaves 6 */
	assert_string_equal(esc("ab\ncdefgh", out, sizeof out), "ab\\x0a...");
	/* with one less, the escape does not fit and is dropped whole */
	assert_string_equal(esc("ab\ncdefgh", out, 9), "ab...");
}

static void test_escape_text_cut_never_splits_utf8(void **state)
{
	char out[8];

	(void)state;
	/* "a" and four "é" (2 bytes each): the 4 bytes before the marker hold "a" and one é */
	assert_string_equal(esc("a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", out, sizeof out), "a\xc3\xa9...");
	assert_string_equal(esc("\xe6\x97\xa5\xe6\x9c\xac", out, 6), "..."); /* 2 usable: no whole char */
}

static void test_escape_text_exact_fit_has_no_marker(void **state)
{
	char out[7];

	(void)state;
	assert_int_equal(escape_text((const uint8_t *)"abcdef", 6, out, sizeof out), 6);
	assert_string_equal(out, "abcdef");
	assert_int_equal(escape_text((const uint8_t *)"a\n", 2, out, sizeof out - 1), 5);
	assert_string_equal(out, "a\\x0a");
}

static void test_escape_text_one_byte_short_cuts_with_marker(void **state)
{
	char out[6];

	(void)state;
	assert_int_equal(escape_text((const uint8_t *)"abcdef", 6, out, sizeof out), 5);
	assert_string_equal(out, "ab...");
}

static void test_escape_text_cap_0_writes_nothing(void **state)
{
	char out[4] = "zzz";

	(void)state;
	assert_int_equal(escape_text((const uint8_t *)"abc", 3, out, 0), 0);
	assert_string_equal(out, "zzz");
}

static void test_escape_text_cap_1_writes_empty_string(void **state)
{
	char out[4] = "zzz";

	(void)state;
	assert_int_equal(escape_text((const uint8_t *)"abc", 3, out, 1), 0);
	assert_string_equal(out, "");
}

static void test_escape_text_caps_2_and_3_shorten_the_marker(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(escape_text((const uint8_t *)"abc", 3, out, 2), 1);
	assert_string_equal(out, ".");
	assert_int_equal(escape_text((const uint8_t *)"abc", 3, out, 3), 2);
	assert_string_equal(out, "..");
	assert_int_equal(escape_text((const uint8_t *)"ab", 2, out, 3), 2); /* fits: no marker */
	assert_string_equal(out, "ab");
}

static void test_escape_text_empty_and_null_input_give_empty_string(void **state)
{
	char out[4] = "zzz";

	(void)state;
	assert_int_equal(escape_text(NULL, 0, out, sizeof out), 0);
	assert_string_equal(out, "");
	assert_int_equal(escape_text_len(NULL, 0), 0);
}

static void test_escape_text_len_is_what_escape_text_writes(void **state)
{
	static const char in[] = "a\n\xc3\xa9\xff\"\\\xe2\x80\xa8";
	char out[128];
	size_t n = sizeof in - 1;

	(void)state;
	assert_int_equal(escape_text_len((const uint8_t *)in, n), escape_text((const uint8_t *)in, n, out, sizeof out));
	assert_int_equal(strlen(out), escape_text_len((const uint8_t *)in, n));
}

/* Every byte string of a deterministic pseudo-random sample, at every cap up
 * to its full length: no control byte, DEL or lone high byte survives, and the
 * result is valid UTF-8 and NUL-terminated at the length returned. */
static void test_escape_text_output_never_holds_control_bytes(void **state)
{
	uint32_t seed = 12345;
	uint8_t in[48];
	char out[256];

	(void)state;
	for (int round = 0; round < 400; round++) {
		size_t n = (size_t)(round % (int)sizeof in);

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (uint8_t)(seed >> 16);
		}
		for (size_t cap = 0; cap <= escape_text_len(in, n) + 1; cap += 7) {
			size_t len = escape_text(in, n, out, cap);

			if (cap == 0)
				continue;
			assert_true(len < cap);
			assert_int_equal(strlen(out), len);
			assert_true(escape_utf8_valid((const uint8_t *)out, len));
			for (size_t i = 0; i < len; i++)
				assert_true((uint8_t)out[i] >= 0x20 && (uint8_t)out[i] != 0x7f);
		}
	}
}

static void test_escape_utf8_keeps_valid_utf8_unchanged(void **state)
{
	static const char in[] = "a\n\\\"\xc3\xa9\xe2\x80\xa8";
	char out[64];

	(void)state;
	assert_int_equal(escape_utf8((const uint8_t *)in, sizeof in - 1, out, sizeof out), sizeof in - 1);
	assert_string_equal(out, in);
}

static void test_escape_utf8_spells_bad_bytes_as_hex_text(void **state)
{
	static const uint8_t in[] = { 'i', 'd', 0xff, 0xc0, 0x80, 'x' };
	char out[64];
	size_t len;

	(void)state;
	len = escape_utf8(in, sizeof in, out, sizeof out);
	assert_string_equal(out, "id\\xff\\xc0\\x80x");
	assert_true(escape_utf8_valid((const uint8_t *)out, len));
}

static void test_escape_utf8_valid_follows_rfc3629(void **state)
{
	(void)state;
	assert_true(escape_utf8_valid((const uint8_t *)"", 0));
	assert_true(escape_utf8_valid((const uint8_t *)"\x00", 1));
	assert_true(escape_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	assert_false(escape_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
	assert_false(escape_utf8_valid((const uint8_t *)"\xed\xbf\xbf", 3));    /* surrogate */
	assert_false(escape_utf8_valid((const uint8_t *)"\xf0\x8f\xbf\xbf", 4)); /* overlong */
	assert_false(escape_utf8_valid((const uint8_t *)"\xc1\xbf", 2));         /* overlong */
	assert_false(escape_utf8_valid((const uint8_t *)"\xc3", 1));             /* truncated */
}

static void test_escape_hex_writes_lowercase_pairs_and_cuts_whole_pairs(void **state)
{
	static const uint8_t in[] = { 0x00, 0xab, 0xff, 0x10 };
	char out[16];

	(void)state;
	assert_int_equal(escape_hex(in, sizeof in, out, sizeof out), 8);
	assert_string_equal(out, "00abff10");
	assert_int_equal(escape_hex(in, sizeof in, out, 8), 7);
	assert_string_equal(out, "00ab...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_text_keeps_printable_ascii),
		cmocka_unit_test(test_escape_text_escapes_backslash_and_quote),
		cmocka_unit_test(test_escape_text_escapes_newline),
		cmocka_unit_test(test_escape_text_escapes_carriage_return),
		cmocka_unit_test(test_escape_text_escapes_esc),
		cmocka_unit_test(test_escape_text_escapes_nul),
		cmocka_unit_test(test_escape_text_escapes_del),
		cmocka_unit_test(test_escape_text_escapes_tab_and_other_c0_controls),
		cmocka_unit_test(test_escape_text_escapes_invalid_utf8_byte_by_byte),
		cmocka_unit_test(test_escape_text_keeps_printable_utf8),
		cmocka_unit_test(test_escape_text_escapes_c1_control),
		cmocka_unit_test(test_escape_text_escapes_line_and_paragraph_separators),
		cmocka_unit_test(test_escape_text_escapes_bidi_override),
		cmocka_unit_test(test_escape_text_escapes_zero_width_and_bom),
		cmocka_unit_test(test_escape_text_cut_ends_with_marker),
		cmocka_unit_test(test_escape_text_cut_never_splits_an_escape),
		cmocka_unit_test(test_escape_text_cut_never_splits_utf8),
		cmocka_unit_test(test_escape_text_exact_fit_has_no_marker),
		cmocka_unit_test(test_escape_text_one_byte_short_cuts_with_marker),
		cmocka_unit_test(test_escape_text_cap_0_writes_nothing),
		cmocka_unit_test(test_escape_text_cap_1_writes_empty_string),
		cmocka_unit_test(test_escape_text_caps_2_and_3_shorten_the_marker),
		cmocka_unit_test(test_escape_text_empty_and_null_input_give_empty_string),
		cmocka_unit_test(test_escape_text_len_is_what_escape_text_writes),
		cmocka_unit_test(test_escape_text_output_never_holds_control_bytes),
		cmocka_unit_test(test_escape_utf8_keeps_valid_utf8_unchanged),
		cmocka_unit_test(test_escape_utf8_spells_bad_bytes_as_hex_text),
		cmocka_unit_test(test_escape_utf8_valid_follows_rfc3629),
		cmocka_unit_test(test_escape_hex_writes_lowercase_pairs_and_cuts_whole_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
