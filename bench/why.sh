#!/bin/bash
# bench/why.sh: how fast `wirewarden why` reads a large broker log, and in how much memory.
# Writes a ~1 GB mosquitto-shaped log (the sentences of the recorded fixtures in
# tests/data/recorded, `log_type all`, log_timestamp_format %Y-%m-%dT%H:%M:%S: connects, packet
# traffic, PINGs, every kind of close, take-overs) for 2000 clients, one block per log second,
# with one client of interest (bench-target) connecting and being closed a few times along the
# file. Then times, with /usr/bin/time -v: `cat` to /dev/null (the read alone), `grep -c` of the
# target (what an operator does by hand), `why bench-target FILE`, `why 'sensor-1?' FILE` (a glob
# matching 10 of the clients) and `why --summary FILE`. Prints MB/s and max RSS per run and
# writes the table to bench/results/why-<date>.md. See bench/README.md, "why.sh".
#
#   bench/why.sh                 ~1 GB log (SIZE_MB=1000)
#   SIZE_MB=N bench/why.sh       any size (MB = 10^6 bytes)
#   KEEP=1                       keep the work directory with the log
# WIREWARDEN=path (default: ./build/wirewarden, else /tmp/bld-why/wirewarden). Each run is bounded
# by RUN_TIMEOUT_S (600); the page cache is warm for every reader alike (the log was just written).
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
NAME=why
SIZE_MB=${SIZE_MB:-1000}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-600}
WORK=$(mktemp -d /tmp/ww-bench-why.XXXXXX)
PIDS_TO_STOP=()
. "$HERE/lib.sh"

WW=${WIREWARDEN:-}
[ -z "$WW" ] && [ -x "$REPO/build/wirewarden" ] && WW=$REPO/build/wirewarden
[ -z "$WW" ] && WW=/tmp/bld-why/wirewarden
[ -x "$WW" ] || fail "no wirewarden binary (set WIREWARDEN)"
[ -x /usr/bin/time ] || fail "needs /usr/bin/time (apt-get install time)"
LOG=$WORK/mosquitto.log

log "writing a ${SIZE_MB} MB mosquitto-shaped log to $LOG"
/usr/bin/python3 - "$LOG" "$SIZE_MB" <<'PY' || fail "log generation failed"
import sys, time
path, size = sys.argv[1], int(sys.argv[2]) * 1000 * 1000
CLIENTS = 2000
def block(sec):
    """One log second: a slice of the clients reconnect and end in every way mosquitto logs; the rest
    publish and ping. Same sentences as the recorded fixtures."""
    out = []
    for i in range(sec % 20, CLIENTS, 20):
        c = "sensor-%d" % i
        port = 10000 + (sec * 7 + i) % 50000
        out.append("New connection from 10.1.%d.%d:%d on port 1883.\n" % (i // 250, i % 250, port))
        out.append("New client connected from 10.1.%d.%d:%d as %s (p2, c1, k30, u'sensor').\n" % (i // 250, i % 250, port, c))
        out.append("No will message specified.\n")
        out.append("Sending CONNACK to %s (0, 0)\n" % c)
        for m in range(1, 40):
            out.append("Received PUBLISH from %s (d0, q1, r0, m%d, 'plant/%s/temp', ... (5 bytes))\n" % (c, m, c))
            out.append("Sending PUBACK to %s (m%d, rc0)\n" % (c, m))
            out.append("Sending PUBLISH to dashboard (d0, q0, r0, m0, 'plant/%s/temp', ... (5 bytes))\n" % c)
        out.append("Received PINGREQ from %s\nSending PINGRESP to %s\n" % (c, c))
        end = (sec + i) % 6
        out.append(["Received DISCONNECT from %s\nClient %s disconnected.\n" % (c, c),
                    "Client %s has exceeded timeout, disconnecting.\n" % c,
                    "Client %s closed its connection.\n" % c,
                    "Client %s already connected, closing old connection.\n" % c,
                    "Client %s disconnected due to protocol error.\n" % c,
                    "Outgoing messages are being dropped for client %s.\nClient %s disconnected: Connection reset by peer.\n" % (c, c)][end])
    if sec % 500 == 0:
        out.append("New connection from 10.9.9.9:%d on port 1883.\n" % (20000 + sec % 40000))
        out.append("New client connected from 10.9.9.9:%d as bench-target (p5, c1, k20).\n" % (20000 + sec % 40000))
    if sec % 500 == 31:
        out.append("Client bench-target has exceeded timeout, disconnecting.\n")
    return out
t0 = 1795000000
written = 0
with open(path, "w", buffering=1 << 20) as f:
    sec = 0
    while written < size:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S: ", time.gmtime(t0 + sec))
        chunk = "".join(ts + l for l in block(sec))
        f.write(chunk)
        written += len(chunk)
        sec += 1
print(sec, file=sys.stderr)
PY
BYTES=$(stat -c %s "$LOG")
LINES=$(wc -l < "$LOG")
log "$BYTES bytes, $LINES lines"

RESULTS=()
measure() { # <label> <command...>: wall time, max RSS, MB/s
	local label=$1 t0 t1 rss rc
	shift
	t0=$(date +%s.%N)
	timeout "$RUN_TIMEOUT_S" /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/out.txt" 2> "$WORK/err.txt"
	rc=$?
	t1=$(date +%s.%N)
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
	local secs mbs
	secs=$(echo "$t1 - $t0" | bc -l)
	mbs=$(echo "$BYTES / 1000000 / $secs" | bc -l)
	RESULTS+=("$(printf '| %-34s | %7.2f | %8.0f | %8.1f | %s |' "$label" "$secs" "$mbs" "$(echo "$rss / 1024" | bc -l)" "$rc")")
	log "$label: $(printf '%.2f s, %.0f MB/s, %.1f MB max RSS, rc %s' "$secs" "$mbs" "$(echo "$rss / 1024" | bc -l)" "$rc")"
	head -c 600 "$WORK/out.txt" >&2
}

cat "$LOG" > /dev/null # warm the page cache for all alike
measure "cat > /dev/null" cat "$LOG"
measure "grep -c bench-target" grep -c bench-target "$LOG"
measure "why bench-target" "$WW" why bench-target "$LOG"
SESSIONS=$(head -1 "$WORK/out.txt")
measure "why 'sensor-1?' --json" "$WW" why 'sensor-1?' "$LOG" --json
GLOB_LINES=$(wc -l < "$WORK/out.txt")
measure "why --summary" "$WW" why --summary "$LOG"

mkdir -p "$HERE/results"
OUT=$HERE/results/why-$(date -u +%Y-%m-%dT%H%M%S).md
{
	echo "# bench/why.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Log: $BYTES bytes, $LINES lines, mosquitto 2.0 sentences, 2000 clients. Machine: $(nproc) CPUs, $(uname -r)."
	echo "why bench-target: $SESSIONS; why 'sensor-1?' --json (10 clients): $GLOB_LINES lines out."
	echo
	echo "| run | seconds | MB/s | max RSS MB | rc |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${RESULTS[@]}"
} | tee "$OUT"
log "written to $OUT"
