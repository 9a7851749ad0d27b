/* Replays every file under fuzz/regress/ (inputs that once crashed or hung a
 * fuzz target, each committed with its fix) and fuzz/seeds/ through the fuzz
 * target's entry point, without libFuzzer, so `make check` keeps them fixed.
 * Built once per target: FUZZ_REGRESS_TARGET names the directories under
 * fuzz/regress and fuzz/seeds ("mqtt" by default, "sniff" for
 * tests/unit/test_fuzz_regress_sniff, linked with fuzz/fuzz_sniff.c). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/testutil.h"

#ifndef FUZZ_REGRESS_TARGET
#define FUZZ_REGRESS_TARGET "mqtt"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t replay_dir(const char *dir)
{
	char path[4096];
	const char *top = getenv("WW_TOP_SRCDIR");
	snprintf(path, sizeof path, "%s/%s", top ? top : ".", dir);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char file[8192];
		snprintf(file, sizeof file, "%s/%s", path, e->d_name);
		size_t len;
		char *buf = tu_read_file(file, &len);
		if (!buf)
			continue;
		LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
		free(buf);
		n++;
	}
	closedir(d);
	return n;
}

static void test_regress_inputs_run_clean(void **state)
{
	(void)state;
	replay_dir("fuzz/regress/" FUZZ_REGRESS_TARGET);
}

static void test_seed_corpus_runs_clean(void **state)
{
	(void)state;
	assert_true(replay_dir("fuzz/seeds/" FUZZ_REGRESS_TARGET) >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regress_inputs_run_clean),
		cmocka_unit_test(test_seed_corpus_runs_clean),
	};
	return cmocka_run_group_tests_name("fuzz_regress_" FUZZ_REGRESS_TARGET, tests, NULL, NULL);
}
