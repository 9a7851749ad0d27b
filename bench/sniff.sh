#!/bin/bash
# bench/sniff.sh: how fast `wirewarden sniff -r` reads a large capture, against the raw libpcap
# read (bench/pcapcount) and tshark, and whether its memory stays flat as the file grows.
# Records a capture of mixed MQTT traffic on loopback (tcpdump while bench/mqttload runs a mix
# against a local mosquitto), then times the three readers on it. Prints one table and writes it
# to bench/results/sniff-<date>.md. See bench/README.md, "sniff.sh".
#
#   bench/sniff.sh               500 MB capture, 3 repetitions
#   QUICK=1 bench/sniff.sh       100 MB capture
#   SIZE_MB=N bench/sniff.sh     any size (MB = 10^6 bytes)
#
# Other knobs (environment): REPS (3), PERF=0 (no perf profile), KEEP=1 (keep the work directory
# with the capture), WIREWARDEN=path, BUILD_DIR, CAP_MAX_S (longest capture, 600), CHURN
# (concurrent connect/disconnect loops for 0.1 s every second, 2), IDLE_CLIENTS (long-lived idle
# connections, 500), TCPDUMP_OPTS (-s 0 -B 131072: see bench/README.md on drops),
# RUN_TIMEOUT_S (longest single reader run, 900), MAX_RUN_S (hard stop of the whole run, 5400),
# BASELINE=path (an older wirewarden binary, timed alongside on the same capture: before and after
# in one run, without the capture's own variation between runs).
# Everything runs on 127.0.0.1; every step is bounded in time.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then SIZE_MB=${SIZE_MB:-100}; else SIZE_MB=${SIZE_MB:-500}; fi
REPS=${REPS:-3}
PERF=${PERF:-1}
CAP_MAX_S=${CAP_MAX_S:-600}
CHURN=${CHURN:-2}
IDLE_CLIENTS=${IDLE_CLIENTS:-500}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-900}
MAX_RUN_S=${MAX_RUN_S:-5400}
TCPDUMP_OPTS=${TCPDUMP_OPTS:--s 0 -B 131072}
PREFIX_MB=$(( SIZE_MB / 5 ))   # the smaller capture of the memory check: the first fifth
[ "$PREFIX_MB" -ge 1 ] || PREFIX_MB=1

STAMP=$(date +%Y-%m-%dT%H%M%S)
WORK=$(mktemp -d /tmp/wwsniff.XXXXXX)
RAW=$WORK/raw.tsv
LOAD=$HERE/mqttload
PCAPCOUNT=$HERE/pcapcount
CAP=$WORK/capture.pcap
PART=$WORK/prefix.pcap
PIDS_TO_STOP=()

NAME=sniff.sh
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

# ---- preparation ----------------------------------------------------------------------------

for c in mosquitto tcpdump tshark ss /usr/bin/time; do
	command -v "$c" >/dev/null || fail "$c not installed (apt-get install mosquitto tcpdump tshark iproute2 time)"
done
make -s -C "$HERE" mqttload pcapcount >/dev/null || fail "cannot build bench/mqttload and bench/pcapcount (make -C bench mqttload pcapcount; needs libpcap-dev)"
if [ -z "${WIREWARDEN:-}" ]; then
	if [ -x "$REPO/wirewarden" ]; then
		WIREWARDEN=$REPO/wirewarden
	else
		build_wirewarden
	fi
fi
[ -x "$WIREWARDEN" ] || fail "WIREWARDEN=$WIREWARDEN is not executable"

# Room for the capture, its prefix copy and tshark's temporary files.
AVAIL_MB=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
[ "$AVAIL_MB" -gt $(( SIZE_MB * 2 + 500 )) ] ||
	fail "only $AVAIL_MB MB free in $(dirname "$WORK"); need $(( SIZE_MB * 2 + 500 )) MB (try QUICK=1 or a smaller SIZE_MB)"

# Descriptors: the broker holds one per client (IDLE_CLIENTS and more).
ulimit -n "$(ulimit -Hn)" 2>/dev/null

( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$MAX_RUN_S" & sp=$!
  wait "$sp" && { log "MAX_RUN_S=$MAX_RUN_S reached: stopping"; kill -TERM $$; } ) 2>/dev/null &
WATCHDOG=$!

PORT=
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 8000))
	listening "$p" || { PORT=$p; break; }
done
[ -n "$PORT" ] || fail "no free port found in 20000-27999"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "work directory $WORK; broker port $PORT; target capture $SIZE_MB MB"

# ---- the capture ----------------------------------------------------------------------------
# mosquitto on a port that is not 1883 (so wirewarden needs --port and tshark a decode-as),
# tcpdump on lo with a port filter, and a mix of loads running at once until the file reaches
# SIZE_MB: small messages unpaced (most of the packets), larger ones paced (most of the bytes),
# connection churn, and idle clients that stay connected to the end.

cat >"$WORK/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
connection_messages false
set_tcp_nodelay true
max_queued_messages 100000
EOF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.stderr" 2>&1 &
BROKER_PID=$!
PIDS_TO_STOP+=("$BROKER_PID")
for _ in $(seq 100); do listening "$PORT" && break; sleep 0.1; done
listening "$PORT" || fail "mosquitto is not listening on 127.0.0.1:$PORT: $(tail -2 "$WORK/mosquitto.stderr")"

# shellcheck disable=SC2086
tcpdump -i lo -n $TCPDUMP_OPTS -Z root -w "$CAP" "tcp port $PORT" 2>"$WORK/tcpdump.stderr" &
TCPDUMP_PID=$!
PIDS_TO_STOP+=("$TCPDUMP_PID")
for _ in $(seq 100); do grep -q 'listening on' "$WORK/tcpdump.stderr" 2>/dev/null && break; sleep 0.1; done
grep -q 'listening on' "$WORK/tcpdump.stderr" || fail "tcpdump did not start: $(tail -2 "$WORK/tcpdump.stderr")"

# name | mqttload arguments (payload sizes: mqttload's smallest is 20 B, its 20-byte header).
# throughput: unpaced, as fast as the broker goes; latency: one publisher at a fixed rate.
MIX=(
	"q0-20B|throughput -P 8 -S 8 -s 20 -q 0"
	"q1-20B|throughput -P 2 -S 2 -s 20 -q 1"
	"q1-256B|throughput -P 4 -S 4 -s 256 -q 1"
	"q0-1KiB-at500|latency -s 1024 -r 500 -q 0"
	"q1-4KiB-at200|latency -s 4096 -r 200 -q 1"
	"q0-16KiB-at100|latency -s 16384 -r 100 -q 0"
	"q1-16KiB-at50|latency -s 16384 -r 50 -q 1"
	"idle|idle -n $IDLE_CLIENTS -c 64"
)
LOAD_PIDS=()
SECS_ARG=$((CAP_MAX_S + 30))
for m in "${MIX[@]}"; do
	name=${m%%|*}; args=${m#*|}
	# shellcheck disable=SC2086
	timeout $((SECS_ARG + 60)) "$LOAD" $args -a "127.0.0.1:$PORT" -t "$SECS_ARG" -u 0 -i "ww-$name" \
		>"$WORK/load-$name.out" 2>"$WORK/load-$name.stderr" &
	LOAD_PIDS+=("$!")
	PIDS_TO_STOP+=("$!")
done
# Churn: every second, CHURN loops of connect, CONNECT, CONNACK, DISCONNECT, close for 0.1 s.
( trap 'exit 0' TERM
  while :; do
	timeout 10 "$LOAD" connect -a "127.0.0.1:$PORT" -c "$CHURN" -t 0.1 -u 0 -i ww-churn >>"$WORK/load-churn.out" \
		2>>"$WORK/load-churn.stderr"
	sleep 1
  done ) &
LOAD_PIDS+=("$!")
PIDS_TO_STOP+=("$!")
MIX+=("churn|connect -c $CHURN -t 0.1, every second")
T0=$(date +%s.%N)
TARGET=$((SIZE_MB * 1000000))
while :; do
	sz=$(stat -c %s "$CAP" 2>/dev/null || echo 0)
	[ "$sz" -ge "$TARGET" ] && break
	el=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a }')
	if [ "$el" -ge "$CAP_MAX_S" ]; then log "CAP_MAX_S=$CAP_MAX_S reached at $((sz / 1000000)) MB"; break; fi
	alive=0
	for p in "${LOAD_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
	[ "$alive" -gt 0 ] || { log "every load ended at $((sz / 1000000)) MB"; break; }
	sleep 0.2
done
CAP_SECS=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
# The loads end (SIGTERM: mqttload closes its sockets as it exits), their FINs are captured.
for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${LOAD_PIDS[@]}"; do stop_pid "$p"; done
sleep 1
stop_pid "$TCPDUMP_PID" INT
stop_pid "$BROKER_PID"
for m in "${MIX[@]}"; do
	name=${m%%|*}
	e=$(grep -v interrupted "$WORK/load-$name.stderr" | grep 'mqttload:' | head -1)
	[ -n "$e" ] && log "load $name: $e"
done
DROPPED=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$WORK/tcpdump.stderr")
CAPTURED=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$WORK/tcpdump.stderr")
[ -n "$DROPPED" ] || fail "tcpdump gave no drop count: $(cat "$WORK/tcpdump.stderr")"
[ -s "$CAP" ] || fail "no capture written"
FILE_BYTES=$(stat -c %s "$CAP")
FILE_MB=$(awk -v b="$FILE_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
log "capture: $FILE_MB MB, $CAPTURED frames in $CAP_SECS s; dropped by kernel: $DROPPED"
[ "$DROPPED" = 0 ] || log "WARNING: tcpdump dropped $DROPPED packets: reassembly sees gaps (reported in the results)"

# The first fifth of the capture, whole records only: tcpdump rotates its output every
# PREFIX_MB (10^6 bytes) and the first file is kept.
tcpdump -r "$CAP" -Z root -C "$PREFIX_MB" -w "$PART" 2>/dev/null
rm -f "$PART"[0-9]*
[ -s "$PART" ] || fail "could not cut the first $PREFIX_MB MB of the capture"
PART_BYTES=$(stat -c %s "$PART")
FRAMES=$("$PCAPCOUNT" "$CAP" | sed -n 's/.* packets=\([0-9]*\).*/\1/p')
PART_FRAMES=$("$PCAPCOUNT" "$PART" | sed -n 's/.* packets=\([0-9]*\).*/\1/p')

# ---- the readers ----------------------------------------------------------------------------

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; } # file reader rep:key value
median() { sort -g | awk '{ a[NR] = $1 } END { if (!NR) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
med() { # <file> <reader> <key>
	awk -F'\t' -v f="$1" -v r="$2" -v k="$3" '$1 == f && $2 == r && $3 ~ ":" k "$" && $4 != "NA" { print $4 }' "$RAW" | median
}

# One timed run: <file label> <reader> <rep> <stdout file> then the command. Wall time, user and
# system CPU time and peak RSS from GNU time; a run that fails records NA.
timed() {
	local fl=$1 rd=$2 rep=$3 out=$4 rc
	shift 4
	/usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" timeout "$RUN_TIMEOUT_S" "$@" >"$out" 2>"$WORK/$rd.stderr"
	rc=$?
	if [ $rc != 0 ]; then
		log "$rd on $fl (rep $rep) failed with status $rc: $(grep -v '^Command' "$WORK/$rd.stderr" | tail -2)"
		record "$fl" "$rd" "$rep:wall_s" NA
		echo "$rd on $fl, rep $rep: exit status $rc: $(grep -v '^Command' "$WORK/$rd.stderr" | tail -1)" >>"$WORK/errors.txt"
		return 1
	fi
	read -r wall user sys rss <"$WORK/time.txt"
	record "$fl" "$rd" "$rep:wall_s" "$wall"
	record "$fl" "$rd" "$rep:cpu_s" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
	record "$fl" "$rd" "$rep:rss_kb" "$rss"
	log "$rd on $fl rep $rep: ${wall} s wall, ${user} s user, ${sys} s sys, peak RSS $((rss / 1024)) MB"
}

READERS="raw tshark wirewarden"
BASELINE=${BASELINE:-}
if [ -n "$BASELINE" ]; then
	[ -x "$BASELINE" ] || fail "BASELINE=$BASELINE is not executable"
	READERS="$READERS baseline"
fi
run_reader() { # <file label> <file> <reader> <rep>
	local out=/dev/null
	case $3 in
	raw) timed "$1" raw "$4" /dev/null "$PCAPCOUNT" "$2" ;;
	tshark) timed "$1" tshark "$4" /dev/null tshark -n -r "$2" -d "tcp.port==$PORT,mqtt" -Y mqtt ;;
	wirewarden)
		[ "$4" = 1 ] && out=$WORK/wirewarden-$1.stdout # the summary, for the capture description
		timed "$1" wirewarden "$4" "$out" "$WIREWARDEN" sniff -r "$2" --json /dev/null --port "$PORT" ;;
	baseline) timed "$1" baseline "$4" /dev/null "$BASELINE" sniff -r "$2" --json /dev/null --port "$PORT" ;;
	esac
}

# Repetition-major, reader-minor: drift on a shared machine hits all three alike. The file is in
# the page cache for all of them (read once above by pcapcount).
for rep in $(seq "$REPS"); do
	for r in $READERS; do run_reader full "$CAP" "$r" "$rep"; done
done
# The memory check: wirewarden on the first fifth, same repetitions.
for rep in $(seq "$REPS"); do
	run_reader prefix "$PART" wirewarden "$rep"
	[ -z "$BASELINE" ] || run_reader prefix "$PART" baseline "$rep"
done

# ---- perf: where wirewarden's CPU goes ----------------------------------------------------------

PERF_NOTE=
if [ "$PERF" = 1 ]; then
	if ! command -v perf >/dev/null; then
		PERF_NOTE="perf not installed (apt-get install linux-perf): no profile"
	else
		log "perf record of wirewarden on the capture"
		if timeout "$RUN_TIMEOUT_S" perf record -q -F 2999 --call-graph dwarf,8192 -o "$WORK/perf.data" -- \
			"$WIREWARDEN" sniff -r "$CAP" --json /dev/null --port "$PORT" >/dev/null 2>"$WORK/perf.stderr"; then
			perf report -i "$WORK/perf.data" --no-children --sort dso -g none --stdio 2>/dev/null |
				grep -v '^#' | grep -v '^$' | head -8 >"$WORK/perf.dso.txt"
			perf report -i "$WORK/perf.data" --no-children --sort dso,sym -g none --percent-limit 0.7 --stdio \
				2>/dev/null | grep -v '^#' | grep -v '^$' | head -30 >"$WORK/perf.self.txt"
			perf report -i "$WORK/perf.data" --children --sort sym -g none --stdio 2>/dev/null |
				grep -v '^#' | grep -v '^$' | grep -v '\[k\]' | grep -v ' 0x0000' >"$WORK/perf.children.all"
			head -40 "$WORK/perf.children.all" >"$WORK/perf.children.txt"
			# The stages of the read loop (cli/cmd_sniff.c), inclusive: where a frame's time goes.
			for fn in capture_next link_decode tcp_stream_segment flow_hash flow_find flow_new handle_frame mqtt_decode \
				engine_on_packet engine_on_queue engine_session_close sink_fn json_out timeline_out tally; do
				awk -v f="$fn" '$NF == f || $(NF - 1) == f { printf "%-22s %s\n", f, $1; exit }' "$WORK/perf.children.all"
			done >"$WORK/perf.stages.txt"
		else
			PERF_NOTE="perf record failed: $(tail -2 "$WORK/perf.stderr")"
		fi
	fi
fi

# ---- the table --------------------------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
GIT=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && [ -n "$(git status --porcelain -- . ':!bench' 2>/dev/null)" ] && echo "+uncommitted")
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s == "NA" || s + 0 == 0) print "NA"; else printf "%.1f", b / 1e6 / s }'; }
pps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s == "NA" || s + 0 == 0) print "NA"; else printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "NA"; else printf "%.2f", a / b }'; }
nspf() { awk -v s="$1" -v n="$2" 'BEGIN { if (s == "NA" || n + 0 == 0) print "NA"; else printf "%.0f", s * 1e9 / n }'; }
mb_of_kb() { awk -v k="$1" 'BEGIN { if (k == "NA") print "NA"; else printf "%.1f", k / 1024 }'; }
verdict() { [ "$1" = NA ] && { echo "not measured"; return; }; awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "met" : "**not met**" }'; }

RAW_W=$(med full raw wall_s); TS_W=$(med full tshark wall_s); WW_W=$(med full wirewarden wall_s)
RAW_C=$(med full raw cpu_s); TS_C=$(med full tshark cpu_s); WW_C=$(med full wirewarden cpu_s)
WW_P_W=$(med prefix wirewarden wall_s)
RSS_FULL=$(med full wirewarden rss_kb); RSS_PART=$(med prefix wirewarden rss_kb)
R_TS=$(ratio "$TS_W" "$WW_W"); R_RAW=$(ratio "$RAW_W" "$WW_W")      # speed ratios = inverse time ratios
R_TS_C=$(ratio "$TS_C" "$WW_C"); R_RAW_C=$(ratio "$RAW_C" "$WW_C")
RSS_GROWTH=$(awk -v a="$RSS_PART" -v b="$RSS_FULL" 'BEGIN { if (a == "NA" || b == "NA" || a + 0 == 0) print "NA"; else printf "%.2f", b / a }')
FLAT=$(awk -v g="$RSS_GROWTH" -v a="$RSS_PART" -v b="$RSS_FULL" 'BEGIN { if (g == "NA") print "not measured"; else if (g <= 1.10 || b - a <= 2048) print "met"; else print "**not met**" }')
SUMMARY_LINE=$(grep -m1 -E '^[0-9]+ connections?, ' "$WORK/wirewarden-full.stdout" 2>/dev/null)
LOSSY=$(grep -c 'the capture lost' "$WORK/wirewarden-full.stdout" 2>/dev/null)
PART_SUMMARY=$(grep -m1 -E '^[0-9]+ connections?, ' "$WORK/wirewarden-prefix.stdout" 2>/dev/null)
row() { # <label> <wall> <cpu> <rss kb> <bytes> <frames>
	echo "| $1 | $2 | $(mbps "$5" "$2") | $(pps "$6" "$2") | $3 | $(mbps "$5" "$3") | $(nspf "$3" "$6") | $(mb_of_kb "$4") |"
}
{
	echo "# wirewarden sniff read speed, $STAMP"
	echo
	echo "- wirewarden $GIT ($WIREWARDEN); $(tshark -v 2>/dev/null | head -1 | cut -d' ' -f1-3); $(tcpdump --version 2>&1 | sed -n 2p)"
	echo "- $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GB RAM", $2 / 1048576 }' /proc/meminfo);" \
		"load average at start $LOAD_START, at end $LOAD_END. **The machine is shared with other work**: wall times" \
		"carry that noise; the CPU-time columns are less sensitive to it."
	echo "- capture: $FILE_MB MB, $FRAMES frames, $CAP_SECS s of traffic on lo (tcpdump $TCPDUMP_OPTS," \
		"filter 'tcp port $PORT'); **dropped by kernel: $DROPPED**. Mix, all at once against one mosquitto $(mosquitto -h 2>&1 | head -1 | awk '{ print $3 }'):" \
		"$(for m in "${MIX[@]}"; do printf '%s; ' "${m%%|*}"; done | sed 's/; $//') (mqttload; payload sizes, q = QoS)."
	echo "- wirewarden's summary of it: ${SUMMARY_LINE:-NA}; verdicts that say the capture lost bytes: ${LOSSY:-NA}"
	echo "- $REPS repetition(s) per reader, median shown; repetitions outer, readers inner; the file is in the page cache."
	echo "  MB = 10^6 bytes of the capture file; packets = frames in it. Every reader's time is the whole process"
	echo "  (GNU time), start-up included."
	echo
	echo "## Read speed on the $FILE_MB MB capture"
	echo
	echo "| reader | wall s | MB/s | packets/s | CPU s (user+sys) | MB per CPU s | CPU ns/packet | peak RSS MB |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	row "raw libpcap read (\`pcapcount\`)" "$RAW_W" "$RAW_C" "$(med full raw rss_kb)" "$FILE_BYTES" "$FRAMES"
	row "\`tshark -n -r FILE -d tcp.port==$PORT,mqtt -Y mqtt\`" "$TS_W" "$TS_C" "$(med full tshark rss_kb)" "$FILE_BYTES" "$FRAMES"
	row "\`wirewarden sniff -r FILE --json /dev/null --port $PORT\`" "$WW_W" "$WW_C" "$RSS_FULL" "$FILE_BYTES" "$FRAMES"
	[ -z "$BASELINE" ] || row "baseline: \`$BASELINE sniff ...\` (the same arguments)" "$(med full baseline wall_s)" \
		"$(med full baseline cpu_s)" "$(med full baseline rss_kb)" "$FILE_BYTES" "$FRAMES"
	echo
	echo "| ratio (speed) | wall time | CPU time | target | |"
	echo "|---|---:|---:|---:|---|"
	echo "| wirewarden / tshark | $R_TS | $R_TS_C | ≥ 20 | $(verdict "$R_TS" 20) |"
	echo "| wirewarden / raw read | $R_RAW | $R_RAW_C | ≥ 0.5 | $(verdict "$R_RAW" 0.5) |"
	if [ -n "$BASELINE" ]; then
		echo "| baseline / tshark | $(ratio "$TS_W" "$(med full baseline wall_s)") | $(ratio "$TS_C" "$(med full baseline cpu_s)") | | |"
		echo "| baseline / raw read | $(ratio "$RAW_W" "$(med full baseline wall_s)") | $(ratio "$RAW_C" "$(med full baseline cpu_s)") | | |"
		echo "| wirewarden / baseline | $(ratio "$(med full baseline wall_s)" "$WW_W") | $(ratio "$(med full baseline cpu_s)" "$WW_C") | | |"
	fi
	echo
	echo "## wirewarden memory as the file grows"
	echo
	echo "| capture | MB | frames | wall s | MB/s | peak RSS MB | summary |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	echo "| first fifth | $(awk -v b="$PART_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') | $PART_FRAMES | $WW_P_W | $(mbps "$PART_BYTES" "$WW_P_W") | $(mb_of_kb "$RSS_PART") | ${PART_SUMMARY:-NA} |"
	echo "| whole | $FILE_MB | $FRAMES | $WW_W | $(mbps "$FILE_BYTES" "$WW_W") | $(mb_of_kb "$RSS_FULL") | ${SUMMARY_LINE:-NA} |"
	if [ -n "$BASELINE" ]; then
		echo "| baseline, first fifth | | | $(med prefix baseline wall_s) | | $(mb_of_kb "$(med prefix baseline rss_kb)") | |"
		echo "| baseline, whole | | | $(med full baseline wall_s) | | $(mb_of_kb "$(med full baseline rss_kb)") | |"
	fi
	echo
	echo "Peak RSS whole / first fifth: $RSS_GROWTH (flat = at most 1.10, or under 2 MB more): $FLAT."
	if [ -s "$WORK/errors.txt" ]; then
		echo; echo "## Failed runs"; echo; sed 's/^/- /' "$WORK/errors.txt"
	fi
	if [ "$PERF" = 1 ]; then
		echo
		echo "## perf: where wirewarden's CPU goes (separate run on the whole capture, perf record -F 2999 --call-graph dwarf)"
		[ -n "$PERF_NOTE" ] && echo && echo "$PERF_NOTE"
		if [ -s "$WORK/perf.self.txt" ]; then
			echo
			echo "self time by DSO and by symbol:"
			echo; echo '```'; cat "$WORK/perf.dso.txt"; echo; head -24 "$WORK/perf.self.txt"; echo '```'
			echo
			echo "stages of the read loop, inclusive time (a stage includes the ones it calls; sink_fn = the"
			echo "verdict/event output, json_out its JSON part):"
			echo; echo '```'; cat "$WORK/perf.stages.txt"; echo '```'
			echo
			echo "user-space functions, inclusive (children) time:"
			echo; echo '```'; head -30 "$WORK/perf.children.txt"; echo '```'
		fi
	fi
	echo
	echo "<details><summary>raw results (file, reader, rep:key, value) and the loads' own reports</summary>"
	echo; echo '```'; cat "$RAW"
	for m in "${MIX[@]}"; do
		name=${m%%|*}
		echo "load $name: $(grep -h '^RESULT\|^READY' "$WORK/load-$name.out" 2>/dev/null | tr '\n' ' ')$(grep -h 'mqttload:' "$WORK/load-$name.stderr" 2>/dev/null | head -1)"
	done
	echo "tcpdump: $(tr '\n' ' ' <"$WORK/tcpdump.stderr")"
	echo '```'; echo "</details>"
} >"$WORK/report.md"

mkdir -p "$HERE/results"
cp "$WORK/report.md" "$HERE/results/sniff-$STAMP.md"
sed '/^<details>/,$d' "$WORK/report.md"
log "written: bench/results/sniff-$STAMP.md"
