#!/bin/sh
# Every wirewarden test, as README.md says: installs missing Debian packages,
# builds, then runs the unit tests (gcc -Werror build), the same unit tests
# under ASan+UBSan (clang), a short libFuzzer run, and the integration tests
# (pytest with Debian's python3, a real mosquitto, real clients, tshark).
# The last line is "N passed, N failed" over every test that ran.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
FUZZ_SECONDS=${FUZZ_SECONDS:-45}
pass=0
fail=0
report() { # stage passed failed
	echo "== $1: $2 passed, $3 failed"
	pass=$((pass + $2))
	fail=$((fail + $3))
}
tap_counts() { # test-suite.log -> "pass fail"
	p=$(sed -n 's/^# PASS: *//p' "$1" | head -1)
	f=$(sed -n 's/^# FAIL: *//p' "$1" | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$1" | head -1)
	echo "${p:-0} $(( ${f:-0} + ${e:-0} ))"
}
junit_counts() { # pytest junit xml -> "passed failed" (skipped count as neither)
	/usr/bin/python3 -c '
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, k = (int(s.get(x, 0)) for x in ("tests", "failures", "errors", "skipped"))
print(t - f - e - k, f + e)' "$1"
}
unit_stage() { # name builddir configure-options...
	name=$1 dir=$2
	shift 2
	if ! scripts/build.sh "$dir" "$@"; then
		report "$name build" 0 1
		return
	fi
	(cd "$dir" && make -j"$(nproc)" check >check.out 2>&1)
	if [ -f "$dir/test-suite.log" ]; then
		set -- $(tap_counts "$dir/test-suite.log")
		[ "$2" -gt 0 ] && grep -h -B2 -A12 '^not ok\|^ERROR' "$dir"/tests/unit/*.log | head -80
		report "$name" "$1" "$2"
	else
		tail -30 "$dir/check.out"
		report "$name" 0 1
	fi
}
fuzz_stage() { # name dict [libFuzzer options...]: FUZZ_SECONDS of fuzz_<name> from its seeds
	name=$1 dict=$2
	shift 2
	mkdir -p "build-fuzz/fuzz-corpus/$name"
	if "build-fuzz/fuzz/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -dict="fuzz/dict/$dict.dict" "$@" \
		"build-fuzz/fuzz-corpus/$name" "fuzz/seeds/$name" >"build-fuzz/fuzz-$name.log" 2>&1; then
		report "fuzz $name ${FUZZ_SECONDS}s" 1 0
	else
		tail -40 "build-fuzz/fuzz-$name.log"
		report "fuzz $name ${FUZZ_SECONDS}s" 0 1
	fi
}

scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

unit_stage "unit tests (gcc)" build
unit_stage "unit tests (clang, ASan+UBSan)" build-asan CC=clang --enable-sanitizers

if scripts/build.sh build-fuzz CC=clang --enable-fuzzing; then
	fuzz_stage mqtt mqtt
	fuzz_stage sniff mqtt -max_len=20000
	fuzz_stage amps amps
	fuzz_stage why why -max_len=8000
else
	report "fuzz build" 0 1
fi

if [ -x build/wirewarden ]; then
	WIREWARDEN="$top/build/wirewarden" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider \
		--junitxml=build/pytest.xml >build/pytest.out 2>&1
	rc=$?
	tail -25 build/pytest.out
	if [ -f build/pytest.xml ]; then
		set -- $(junit_counts build/pytest.xml)
		report "integration tests (pytest)" "$1" "$2"
	elif [ "$rc" -ne 5 ]; then
		report "integration tests (pytest)" 0 1
	fi
else
	report "integration tests (no binary)" 0 1
fi

# The capture-reading tests again, against the ASan+UBSan binary: every
# capture in the corpus through every layer with the sanitizers watching.
if [ -x build-asan/wirewarden ]; then
	WIREWARDEN="$top/build-asan/wirewarden" /usr/bin/python3 -m pytest tests/integration/test_sniff_corpus.py \
		tests/integration/test_sniff_verdicts.py tests/integration/test_why.py -q -p no:cacheprovider \
		--junitxml=build-asan/pytest.xml >build-asan/pytest.out 2>&1
	tail -5 build-asan/pytest.out
	if [ -f build-asan/pytest.xml ]; then
		set -- $(junit_counts build-asan/pytest.xml)
		report "capture tests (ASan+UBSan binary)" "$1" "$2"
	else
		report "capture tests (ASan+UBSan binary)" 0 1
	fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
