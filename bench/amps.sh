#!/bin/bash
# bench/amps.sh: AMPS frames/s to a sink, direct vs through wirewarden (a `protocol: amps` listener)
# vs through HAProxy (mode tcp), at 64 B, 1 KiB and 16 KiB bodies, on loopback. The AMPS side is
# bench/ampsload.c: `ampsload sink` (a minimal stand-in written from the documented wire format,
# not AMPS: it answers logon and the acks asked for) and `ampsload throughput` (publishers).
# Prints one table and writes it to bench/results/amps-<date>.md.
#
#   bench/amps.sh            3 repetitions x 4 s per cell (~2 minutes)
#   QUICK=1 bench/amps.sh    1 repetition x 2 s (~30 s)
#
# Knobs (environment): WIREWARDEN=path (default: a build in $BUILD_DIR), REPS, SECS, WARM, SIZES,
# PUBS, BASE_PORT, KEEP=1. Everything on 127.0.0.1, every step bounded; stopped after MAX_RUN_S.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then REPS=${REPS:-1}; SECS=${SECS:-2}; WARM=${WARM:-0.5}; MAX_RUN_S=${MAX_RUN_S:-300}
else REPS=${REPS:-3}; SECS=${SECS:-4}; WARM=${WARM:-1}; MAX_RUN_S=${MAX_RUN_S:-900}; fi
SIZES=${SIZES:-64 1024 16384}
PUBS=${PUBS:-4}
TARGETS="direct wirewarden haproxy"
STAMP=$(date +%Y-%m-%dT%H%M%S)
WORK=$(mktemp -d /tmp/wwbench-amps.XXXXXX)
RAW=$WORK/raw.tsv
LOAD=$WORK/ampsload
PIDS_TO_STOP=()

NAME=amps.sh
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

command -v haproxy >/dev/null || fail "haproxy not installed (apt-get install haproxy)"
${CC:-cc} -O2 -std=c11 -Wall -Wextra -o "$LOAD" "$HERE/ampsload.c" || fail "cannot build bench/ampsload.c"
[ -n "${WIREWARDEN:-}" ] || build_wirewarden
[ -x "$WIREWARDEN" ] || fail "WIREWARDEN=$WIREWARDEN is not executable"

( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$MAX_RUN_S" & sp=$!
  wait "$sp" && { log "MAX_RUN_S=$MAX_RUN_S reached: stopping"; kill -TERM $$; } ) 2>/dev/null &
WATCHDOG=$!

base=${BASE_PORT:-}
for try in $(seq 50); do
	[ -n "$base" ] || base=$((28000 + RANDOM % 1900))
	listening "$base" || listening $((base + 1)) || listening $((base + 2)) || break
	[ -n "${BASE_PORT:-}" ] && fail "BASE_PORT=$BASE_PORT: in use"
	base=
done
SINK_PORT=$base; WW_PORT=$((base + 1)); HA_PORT=$((base + 2))

"$LOAD" sink -l "127.0.0.1:$SINK_PORT" >"$WORK/sink.stderr" 2>&1 &
SINK_PID=$!; PIDS_TO_STOP+=("$SINK_PID")
wait_listen "$SINK_PORT" "$SINK_PID" sink

cat >"$WORK/wirewarden.yaml" <<-EOF2
listeners:
  - name: amps
    listen: 127.0.0.1:$WW_PORT
    upstream: 127.0.0.1:$SINK_PORT
    protocol: amps
EOF2
"$WIREWARDEN" proxy --config "$WORK/wirewarden.yaml" --log "$WORK/wirewarden-events.log" >"$WORK/wirewarden.stderr" 2>&1 &
WW_PID=$!; PIDS_TO_STOP+=("$WW_PID")
wait_listen "$WW_PORT" "$WW_PID" wirewarden

cat >"$WORK/haproxy.cfg" <<-EOF2
global
    maxconn 1000
    nbthread $(nproc)
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$HA_PORT
    default_backend be
backend be
    server s 127.0.0.1:$SINK_PORT
EOF2
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.stderr" 2>&1 &
HA_PID=$!; PIDS_TO_STOP+=("$HA_PID")
wait_listen "$HA_PORT" "$HA_PID" haproxy
log "work $WORK; sink $SINK_PORT (pid $SINK_PID), wirewarden $WW_PORT (pid $WW_PID), haproxy $HA_PORT (pid $HA_PID)"

port_of() { case $1 in direct) echo "$SINK_PORT" ;; wirewarden) echo "$WW_PORT" ;; haproxy) echo "$HA_PORT" ;; esac; }
pid_of() { case $1 in direct) echo "" ;; wirewarden) echo "$WW_PID" ;; haproxy) echo "$HA_PID" ;; esac; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (!NR) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
med() { awk -F'\t' -v c="$1" -v t="$2" -v k="$3" '$1 == c && $2 == t && $3 == k && $4 != "NA" { print $4 }' "$RAW" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "–"; else printf "%.2f", a / b }'; }

for size in $SIZES; do
	for rep in $(seq "$REPS"); do
		for t in $TARGETS; do
			watch="$SINK_PID"; pp=$(pid_of "$t"); [ -n "$pp" ] && watch="$watch,$pp"
			line=$(timeout 60 "$LOAD" throughput -a "127.0.0.1:$(port_of "$t")" -P "$PUBS" -s "$size" -t "$SECS" \
				-u "$WARM" -C "$watch" 2>"$WORK/last.stderr" | grep '^RESULT')
			if [ -z "$line" ]; then
				log "${size}B $t rep $rep failed: $(tail -2 "$WORK/last.stderr")"
				printf '%s\t%s\t%s\t%s\n' "$size" "$t" fps NA >>"$RAW"
				continue
			fi
			for k in frames_per_s cpu1_pct cpu2_pct; do
				printf '%s\t%s\t%s\t%s\n' "$size" "$t" "$k" "$(kv "$k" <<<" $line")" >>"$RAW"
			done
			log "${size}B $t rep $rep: $(cut -d' ' -f2- <<<"$line")"
		done
	done
done

mkdir -p "$HERE/results"
OUT=$HERE/results/amps-$STAMP.md
GIT=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)
{
	echo "# wirewarden AMPS throughput, $STAMP"
	echo
	echo "- wirewarden $GIT ($WIREWARDEN), amps listener, default policies; $(haproxy -v | head -1 | cut -d' ' -f1-3) mode tcp"
	echo "- sink and load: bench/ampsload.c (a stand-in written from the documented AMPS framing, not AMPS)"
	echo "- $(nproc) CPUs, kernel $(uname -r), unpinned; $([ "$QUICK" = 1 ] && echo QUICK || echo full): $REPS repetition(s), median;" \
		"$PUBS publishers, ${WARM} s warm-up + ${SECS} s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- frames/s: publish frames the sink read and acknowledged (one ack per ~64 KiB, at most 16 outstanding per publisher)"
	echo
	echo "| body | direct | wirewarden | haproxy | ww/direct | ha/direct | ww/ha | sink CPU % (d/ww/ha) | proxy CPU % (ww/ha) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for size in $SIZES; do
		d=$(med "$size" direct frames_per_s); w=$(med "$size" wirewarden frames_per_s); h=$(med "$size" haproxy frames_per_s)
		printf '| %s B | %s | %s | %s | %s | %s | %s | %s/%s/%s | %s/%s |\n' "$size" "$d" "$w" "$h" "$(ratio "$w" "$d")" \
			"$(ratio "$h" "$d")" "$(ratio "$w" "$h")" "$(med "$size" direct cpu1_pct)" "$(med "$size" wirewarden cpu1_pct)" \
			"$(med "$size" haproxy cpu1_pct)" "$(med "$size" wirewarden cpu2_pct)" "$(med "$size" haproxy cpu2_pct)"
	done
	echo
	ev=$(grep -c . "$WORK/wirewarden-events.log" 2>/dev/null || echo 0)
	echo "wirewarden event log lines during the run: $ev (protocol of the connections: $(grep -o 'protocol[=:" ]*[a-z]*' "$WORK/wirewarden-events.log" 2>/dev/null | sort | uniq -c | tr '\n' ' '))"
} | tee "$OUT"
log "written $OUT"
