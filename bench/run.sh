#!/bin/bash
# bench/run.sh: mosquitto direct vs through wirewarden vs through HAProxy (mode tcp), on loopback,
# with bench/mqttload as the load. Prints one table and writes it to bench/results/<date>.md.
# See bench/README.md for what each number means.
#
#   bench/run.sh                 full run, ~12 minutes
#   QUICK=1 bench/run.sh         subset, ~2 minutes (1 repetition, shorter cells, no 50k idle)
#   PERF=0 bench/run.sh          skip the perf profiles of wirewarden
#
# Other knobs (environment): WIREWARDEN=path (default: in-tree ./wirewarden, else a build in
# $BUILD_DIR), REPS, SECS, WARM, LAT_SECS, CONN_SECS, SIZES, QOSES, IDLE_COUNTS, BASE_PORT, KEEP=1
# (keep the work directory: logs, configs, perf data). Everything runs on 127.0.0.1 and every
# step is bounded in time; the whole run is stopped after MAX_RUN_S seconds.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
QUICK=${QUICK:-0}
PERF=${PERF:-1}
if [ "$QUICK" = 1 ]; then
	REPS=${REPS:-1}; SECS=${SECS:-2}; WARM=${WARM:-0.5}; LAT_SECS=${LAT_SECS:-3}; CONN_SECS=${CONN_SECS:-2}
	IDLE_COUNTS=${IDLE_COUNTS:-10000}; IDLE_REPS=${IDLE_REPS:-1}; PERF_SECS=${PERF_SECS:-4}
	MAX_RUN_S=${MAX_RUN_S:-600}
else
	REPS=${REPS:-3}; SECS=${SECS:-4}; WARM=${WARM:-1}; LAT_SECS=${LAT_SECS:-10}; CONN_SECS=${CONN_SECS:-5}
	IDLE_COUNTS=${IDLE_COUNTS:-10000 50000}; IDLE_REPS=${IDLE_REPS:-3}; PERF_SECS=${PERF_SECS:-6}
	MAX_RUN_S=${MAX_RUN_S:-1500}
fi
SIZES=${SIZES:-64 1024 16384}
QOSES=${QOSES:-0 1}
PUBS=${PUBS:-4}; SUBS=${SUBS:-4}; WINDOW=${WINDOW:-32}
LAT_RATE=${LAT_RATE:-2000}; LAT_SIZE=${LAT_SIZE:-64}
CONN_CONC=${CONN_CONC:-32}
# Proxy threads (wirewarden workers = HAProxy nbthread, the same for both): throughput and latency
# run once per count. The first is also used for connection setup, idle clients and perf.
THREADS=${THREADS:-$(nproc) $( [ "$(nproc)" -gt 1 ] && echo 1)}
PX_THREADS=${THREADS%% *}
NPAIRS=4                       # broker ports = proxy listeners: spreads 50k upstream connections
NSRC=8                         # idle clients bind 127.0.0.1 .. 127.0.0.8
TARGETS="direct wirewarden haproxy"

STAMP=$(date +%Y-%m-%dT%H%M%S)
WORK=$(mktemp -d /tmp/wwbench.XXXXXX)
RAW=$WORK/raw.tsv
LOAD=$HERE/mqttload
PIDS_TO_STOP=()

NAME=run.sh
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo NA; }

# ---- the three setups -----------------------------------------------------------------------

pick_ports() {
	local base=${BASE_PORT:-} i ok
	for try in $(seq 50); do
		[ -n "$base" ] || base=$((20000 + RANDOM % 8000))
		ok=1
		for i in $(seq 0 $((3 * NPAIRS - 1))); do listening $((base + i)) && ok=0; done
		[ $ok = 1 ] && break
		[ -n "${BASE_PORT:-}" ] && fail "BASE_PORT=$BASE_PORT: ports $BASE_PORT.. are in use"
		base=
	done
	[ $ok = 1 ] || fail "no free block of ports found"
	BROKER_PORT=$base; WW_PORT=$((base + NPAIRS)); HA_PORT=$((base + 2 * NPAIRS))
}

port_list() { # <first port>: "127.0.0.1:p,127.0.0.1:p+1,..."
	local i out=
	for i in $(seq 0 $((NPAIRS - 1))); do out="$out${out:+,}127.0.0.1:$(($1 + i))"; done
	echo "$out"
}

start_broker() {
	local i
	{
		for i in $(seq 0 $((NPAIRS - 1))); do echo "listener $((BROKER_PORT + i)) 127.0.0.1"; done
		cat <<-EOF
		allow_anonymous true
		persistence false
		log_dest stderr
		log_type error
		log_type warning
		connection_messages false
		# Without it mosquitto's Nagle (plus the client's delayed ACK) puts 20 ms into a 1 KiB
		# message's latency, which would hide what the proxies do. Both proxies set TCP_NODELAY.
		set_tcp_nodelay true
		# QoS 1 towards a subscriber: 20 in flight (the default), then queued; no drops here.
		max_queued_messages 100000
		EOF
	} >"$WORK/mosquitto.conf"
	mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.stderr" 2>&1 &
	BROKER_PID=$!
	PIDS_TO_STOP+=("$BROKER_PID")
	wait_listen "$BROKER_PORT" "$BROKER_PID" mosquitto
}

start_wirewarden() {
	local i
	{
		echo "workers: $PX_THREADS"
		echo "listeners:"
		for i in $(seq 0 $((NPAIRS - 1))); do
			printf '  - name: bench%d\n    listen: 127.0.0.1:%d\n    upstream: 127.0.0.1:%d\n' \
				"$i" $((WW_PORT + i)) $((BROKER_PORT + i))
		done
	} >"$WORK/wirewarden.yaml"
	"$WIREWARDEN" proxy --config "$WORK/wirewarden.yaml" --log "$WORK/wirewarden-events.log" \
		>"$WORK/wirewarden.stderr" 2>&1 &
	WW_PID=$!
	PIDS_TO_STOP+=("$WW_PID")
	wait_listen "$WW_PORT" "$WW_PID" wirewarden
}

start_haproxy() {
	local i
	{
		cat <<-EOF
		global
		    maxconn $HA_MAXCONN
		    nbthread $PX_THREADS
		defaults
		    mode tcp
		    maxconn $HA_MAXCONN
		    timeout connect 5s
		    timeout client 900s
		    timeout server 900s
		EOF
		for i in $(seq 0 $((NPAIRS - 1))); do
			printf 'frontend fe%d\n    bind 127.0.0.1:%d\n    default_backend be%d\n' "$i" $((HA_PORT + i)) "$i"
			printf 'backend be%d\n    server s%d 127.0.0.1:%d\n' "$i" "$i" $((BROKER_PORT + i))
		done
	} >"$WORK/haproxy.cfg"
	haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.stderr" 2>&1 &
	HA_PID=$!
	PIDS_TO_STOP+=("$HA_PID")
	wait_listen "$HA_PORT" "$HA_PID" haproxy
}

addr_of() { case $1 in direct) echo "127.0.0.1:$BROKER_PORT" ;; wirewarden) echo "127.0.0.1:$WW_PORT" ;; haproxy) echo "127.0.0.1:$HA_PORT" ;; esac; }
pid_of() { case $1 in direct) echo "" ;; wirewarden) echo "$WW_PID" ;; haproxy) echo "$HA_PID" ;; esac; }

# ---- results --------------------------------------------------------------------------------

kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }          # <key> < RESULT line
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RAW"; } # section cell target rep:key value
median() { sort -g | awk '{ a[NR] = $1 } END { if (!NR) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
med() { # <section> <cell> <target> <key>: median over repetitions
	awk -F'\t' -v s="$1" -v c="$2" -v t="$3" -v k="$4" '$1 == s && $2 == c && $3 == t && $4 ~ ":" k "$" && $5 != "NA" { print $5 }' "$RAW" | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "–"; else printf "%.2f", a / b }'; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { if (v == "NA" || v == "") print "NA"; else printf "%." d "f", v }'; }

# One load-generator run; <section> <cell> <target> <rep> then mqttload arguments. Records every
# key of its RESULT line; a failed run records NA and its error.
cell() {
	local section=$1 c=$2 t=$3 rep=$4 out line k
	shift 4
	local watch="-C $BROKER_PID" pp
	pp=$(pid_of "$t")
	[ -n "$pp" ] && watch="$watch,$pp"
	out=$(timeout 120 "$LOAD" "$@" -a "$(addr_of "$t")" $watch 2>"$WORK/last.stderr")
	line=$(grep '^RESULT' <<<"$out")
	if [ -z "$line" ]; then
		log "$section $c $t rep $rep failed: $(tail -2 "$WORK/last.stderr")"
		record "$section" "$c" "$t" "$rep:error" NA
		echo "$section $c $t: $(tail -1 "$WORK/last.stderr")" >>"$WORK/errors.txt"
		return 1
	fi
	for k in $(tr ' ' '\n' <<<"$line" | grep = | cut -d= -f1); do
		record "$section" "$c" "$t" "$rep:$k" "$(kv "$k" <<<" $line")"
	done
	log "$section $c $t rep $rep: $(cut -d' ' -f2- <<<"$line")"
}

# ---- preparation ----------------------------------------------------------------------------

command -v mosquitto >/dev/null || fail "mosquitto not installed (apt-get install mosquitto)"
command -v haproxy >/dev/null || fail "haproxy not installed (apt-get install haproxy)"
make -s -C "$HERE" >/dev/null || fail "cannot build bench/mqttload (make -C bench)"
if [ -z "${WIREWARDEN:-}" ]; then
	if [ -x "$REPO/wirewarden" ]; then
		WIREWARDEN=$REPO/wirewarden
	else
		build_wirewarden
	fi
fi
[ -x "$WIREWARDEN" ] || fail "WIREWARDEN=$WIREWARDEN is not executable"

# Descriptors: raise the soft limit to the hard one. A proxy needs two per idle client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
FD_LIMIT=$(ulimit -n)
HA_MAXCONN=$(( (FD_LIMIT - 200) / 2 ))
[ $HA_MAXCONN -gt 120000 ] && HA_MAXCONN=120000

( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$MAX_RUN_S" & sp=$!
  wait "$sp" && { log "MAX_RUN_S=$MAX_RUN_S reached: stopping"; kill -TERM $$; } ) 2>/dev/null &
WATCHDOG=$!

pick_ports
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "work directory $WORK; ports: broker $BROKER_PORT, wirewarden $WW_PORT, haproxy $HA_PORT (x$NPAIRS)"
start_broker
start_wirewarden
start_haproxy
log "mosquitto $BROKER_PID, wirewarden $WW_PID ($WIREWARDEN), haproxy $HA_PID; fd limit $FD_LIMIT"

# ---- throughput, latency, connection setup ---------------------------------------------------
# Repetition-major, target-minor: the three setups take turns, so slow drift on a shared machine
# spreads over all of them.

# Once per thread count; the proxies are restarted with it. Direct runs in every pass too, so
# that each pass compares the three under the same conditions.
restart_proxies() { # <threads>
	[ "$1" = "$PX_THREADS" ] && return 0
	stop_pid "$WW_PID"; stop_pid "$HA_PID"
	PX_THREADS=$1
	start_wirewarden
	start_haproxy
	log "threads $1: wirewarden $WW_PID, haproxy $HA_PID"
}
for th in $THREADS; do
	restart_proxies "$th"
	for size in $SIZES; do
		for q in $QOSES; do
			for rep in $(seq "$REPS"); do
				for t in $TARGETS; do
					cell tput "${size}B-q$q-t$th" "$t" "$rep" throughput -P "$PUBS" -S "$SUBS" -s "$size" -q "$q" \
						-w "$WINDOW" -t "$SECS" -u "$WARM"
				done
			done
		done
	done
	for rep in $(seq "$REPS"); do
		for t in $TARGETS; do
			cell lat "${LAT_RATE}/s-t$th" "$t" "$rep" latency -r "$LAT_RATE" -s "$LAT_SIZE" -q 0 -t "$LAT_SECS" -u "$WARM"
		done
	done
done
restart_proxies "${THREADS%% *}"
for rep in $(seq "$REPS"); do
	for t in $TARGETS; do
		cell conn "c$CONN_CONC" "$t" "$rep" connect -c "$CONN_CONC" -t "$CONN_SECS"
	done
done

# ---- latency breakdown: where the added time goes ------------------------------------------------
# One more latency run per target while tcpdump records loopback; each message is followed through
# the capture (bench/residence.awk): time inside the proxy toward the broker (c2s), inside the broker,
# inside the proxy toward the subscriber (s2c). Capture timestamps are taken by the kernel as a
# segment passes loopback, so a hop includes the wake-up of the process that forwards it.
BREAKDOWN=${BREAKDOWN:-1}
BREAKDOWN_NOTE=
hop_pct() { # <file> <hop>: "p50 p99 p999" in µs, or "NA NA NA"
	grep "^$2 " "$1" | cut -d' ' -f2 | sort -g |
		awk '{ a[NR] = $1 } END { if (!NR) print "NA NA NA"; else printf "%.1f %.1f %.1f\n", a[int((NR - 1) * .5) + 1] * 1e6, a[int((NR - 1) * .99) + 1] * 1e6, a[int((NR - 1) * .999) + 1] * 1e6 }'
}
if [ "$BREAKDOWN" = 1 ]; then
	if ! command -v tcpdump >/dev/null || ! command -v tshark >/dev/null; then
		BREAKDOWN_NOTE="tcpdump or tshark not installed: no breakdown"
	else
		for t in $TARGETS; do
			pport=0
			case $t in wirewarden) pport=$WW_PORT ;; haproxy) pport=$HA_PORT ;; esac
			filter="tcp port $BROKER_PORT"
			[ "$pport" != 0 ] && filter="$filter or tcp port $pport"
			tcpdump -i lo -s 256 -B 16384 -w "$WORK/lat-$t.pcap" "$filter" >/dev/null 2>"$WORK/tcpdump.stderr" &
			tpid=$!
			sleep 1
			out=$(timeout 60 "$LOAD" latency -a "$(addr_of "$t")" -r "$LAT_RATE" -s "$LAT_SIZE" -q 0 -t "$LAT_SECS" \
				-u "$WARM" 2>/dev/null | grep '^RESULT')
			sleep 0.5
			stop_pid "$tpid"
			tshark -r "$WORK/lat-$t.pcap" -d "tcp.port==$BROKER_PORT,mqtt" $( [ "$pport" != 0 ] && echo "-d tcp.port==$pport,mqtt") \
				-Y 'mqtt.msgtype == 3' -T fields -e frame.time_epoch -e tcp.srcport -e tcp.dstport -e mqtt.msg \
				-E occurrence=a 2>/dev/null | awk -v px="$pport" -v bk="$BROKER_PORT" -f "$HERE/residence.awk" >"$WORK/hops-$t.txt"
			for k in p50_us p99_us p999_us; do record brk e2e "$t" "1:$k" "$(kv $k <<<" $out")"; done
			for hop in c2s broker s2c; do
				read -r a b c <<<"$(hop_pct "$WORK/hops-$t.txt" $hop)"
				record brk "$hop" "$t" 1:p50_us "$a"; record brk "$hop" "$t" 1:p99_us "$b"; record brk "$hop" "$t" 1:p999_us "$c"
			done
			rm -f "$WORK/lat-$t.pcap"
			log "breakdown $t: $(cut -d' ' -f6-8 <<<"$out"); hops c2s/broker/s2c p50: $(hop_pct "$WORK/hops-$t.txt" c2s | cut -d' ' -f1)/$(hop_pct "$WORK/hops-$t.txt" broker | cut -d' ' -f1)/$(hop_pct "$WORK/hops-$t.txt" s2c | cut -d' ' -f1)"
		done
	fi
fi

# ---- perf: where wirewarden's CPU goes ----------------------------------------------------------

PERF_NOTE=
SC_EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_ioctl
SC_EVENTS=$SC_EVENTS,syscalls:sys_enter_readv,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom
SC_EVENTS=$SC_EVENTS,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendto,context-switches,task-clock
if [ "$PERF" = 1 ]; then
	if ! command -v perf >/dev/null; then
		PERF_NOTE="perf not installed (apt-get install linux-perf): no profile"
	else
		# Separate runs: system-call counts (perf stat) for wirewarden and HAProxy under the same
		# load, then a DWARF call-graph profile of wirewarden alone (recording slows the proxy,
		# which changes its batching, so the counts are not taken while recording).
		perf_load() { # <target> <kind> <size> <qos> <result file>
			local pp
			pp=$(pid_of "$1")
			if [ "$2" = tput ]; then
				timeout 60 "$LOAD" throughput -a "$(addr_of "$1")" -P "$PUBS" -S "$SUBS" -s "$3" -q "$4" \
					-t "$((PERF_SECS - 1))" -u 0.5 -C "$BROKER_PID,$pp" >"$5" 2>/dev/null
			else
				timeout 60 "$LOAD" connect -a "$(addr_of "$1")" -c "$CONN_CONC" -t "$((PERF_SECS - 1))" -u 0.5 \
					-C "$BROKER_PID,$pp" >"$5" 2>/dev/null
			fi
		}
		for spec in tput:64:0 tput:16384:0 conn; do
			IFS=: read -r kind size q <<<"$spec"
			for t in wirewarden haproxy; do
				stem=$WORK/perf-$t-${kind}${size:+-${size}B-q$q}
				perf stat -x, -e "$SC_EVENTS" -p "$(pid_of "$t")" -o "$stem.stat" -- sleep "$PERF_SECS" 2>/dev/null &
				spid=$!
				sleep 0.3
				perf_load "$t" "$kind" "$size" "$q" "$stem.result"
				wait $spid
				log "perf stat $t $spec: $(cut -d' ' -f2- "$stem.result")"
			done
			stem=$WORK/perf-wirewarden-${kind}${size:+-${size}B-q$q}
			perf record -q -F 499 --call-graph dwarf,8192 -p "$WW_PID" -o "$stem.data" -- sleep "$PERF_SECS" \
				>/dev/null 2>"$WORK/perf.stderr" &
			rpid=$!
			sleep 0.3
			perf_load wirewarden "$kind" "$size" "$q" "$stem.rec.result"
			wait $rpid
			log "perf record wirewarden $spec: $(cut -d' ' -f2- "$stem.rec.result")"
			perf report -i "$stem.data" --no-children --sort dso -g none --stdio 2>/dev/null |
				grep -v '^#' | grep -v '^$' | head -8 >"$stem.dso.txt"
			perf report -i "$stem.data" --no-children --sort dso,sym -g none --percent-limit 0.7 --stdio 2>/dev/null |
				grep -v '^#' | grep -v '^$' | head -30 >"$stem.self.txt"
			# inclusive time of user-space functions (DWARF-unwound), kernel frames left out
			perf report -i "$stem.data" --children --sort sym -g none --stdio 2>/dev/null |
				grep -v '^#' | grep -v '^$' | grep -v '\[k\]' | grep -v ' 0x0000' | head -40 >"$stem.children.txt"
		done
	fi
fi

# System calls per delivered message (per setup for conn) from a perf stat file and its RESULT.
syscalls_row() { # <target> <stem>
	local per
	per=$(sed -n 's/.* \(delivered_per_s\|setups_per_s\)=\([0-9.]*\).*/\2/p' "$2.result")
	awk -F, -v t="$1" -v per="$per" -v secs="$PERF_SECS" '
		$1 ~ /^[0-9.]+$/ { v[$3] = $1 }
		END {
			n = per * (secs - 0.5); if (n <= 0) { print "| " t " | NA | | | | | | | |"; exit }
			rd = v["syscalls:sys_enter_readv"] + v["syscalls:sys_enter_read"] + v["syscalls:sys_enter_recvfrom"]
			wr = v["syscalls:sys_enter_writev"] + v["syscalls:sys_enter_write"] + v["syscalls:sys_enter_sendto"]
			printf "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", t, per, v["raw_syscalls:sys_enter"] / n,
				v["syscalls:sys_enter_epoll_wait"] / n, v["syscalls:sys_enter_epoll_ctl"] / n,
				v["syscalls:sys_enter_ioctl"] / n, rd / n, wr / n, v["context-switches"] / n,
				v["task-clock"] * 1000 / n
		}' "$2.stat"
}

# ---- idle clients: proxy memory per client ----------------------------------------------------
# A fresh proxy for every measurement: memory a previous run freed would otherwise be reused
# and hide the cost. RSS is read after all clients have their CONNACK and 1 s of rest.

stop_pid "$WW_PID"; stop_pid "$HA_PID"
IDLE_NOTE=
idle_cell() { # <target> <count> <rep>
	local t=$1 asked=$2 rep=$3 n=$2 pid port rss0 rss1 b0 b1 per gpid i ok
	# The proxy holds two descriptors per client (the generator one). Past the limit, measure the
	# most that fit (rounded down to 100), unless that is under half of what was asked.
	if [ $((2 * n + 200)) -gt "$FD_LIMIT" ]; then
		n=$(( (FD_LIMIT - 200) / 2 / 100 * 100 ))
		if [ $((2 * n)) -lt "$asked" ]; then
			record idle "$asked" "$t" "$rep:skipped" "fd-limit"
			return 0
		fi
	fi
	record idle "$asked" "$t" "$rep:clients" "$n"
	case $t in
	wirewarden) start_wirewarden; pid=$WW_PID; port=$WW_PORT ;;
	haproxy) start_haproxy; pid=$HA_PID; port=$HA_PORT ;;
	esac
	sleep 0.5
	rss0=$(rss_kb "$pid"); b0=$(rss_kb "$BROKER_PID")
	timeout 300 "$LOAD" idle -a "$(port_list "$port")" -B "$NSRC" -n "$n" -c 256 -t 240 -i "idle-$$" \
		>"$WORK/idle.out" 2>"$WORK/idle.stderr" &
	gpid=$!
	ok=0
	for i in $(seq 1200); do # 120 s
		grep -q '^READY' "$WORK/idle.out" && { ok=1; break; }
		kill -0 "$gpid" 2>/dev/null || break
		sleep 0.1
	done
	if [ $ok = 1 ]; then
		sleep 1
		rss1=$(rss_kb "$pid"); b1=$(rss_kb "$BROKER_PID")
		per=$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
		record idle "$asked" "$t" "$rep:rss_before_kb" "$rss0"
		record idle "$asked" "$t" "$rep:rss_after_kb" "$rss1"
		record idle "$asked" "$t" "$rep:bytes_per_client" "$per"
		record idle "$asked" "$t" "$rep:broker_bytes_per_client" \
			"$(awk -v a="$b0" -v b="$b1" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')"
		log "idle $n $t rep $rep: proxy RSS $rss0 -> $rss1 kB = $per B/client"
	else
		log "idle $n $t rep $rep failed: $(grep mqttload: "$WORK/idle.stderr" | head -2)"
		record idle "$asked" "$t" "$rep:bytes_per_client" NA
		echo "idle $n $t: $(grep mqttload: "$WORK/idle.stderr" | head -1)" >>"$WORK/errors.txt"
	fi
	stop_pid "$gpid"
	rm -f "$WORK/idle.out"
	stop_pid "$pid"
	sleep 1 # the broker lets the sessions go
}
for n in $IDLE_COUNTS; do
	for rep in $(seq "$IDLE_REPS"); do
		for t in wirewarden haproxy; do idle_cell "$t" "$n" "$rep"; done
	done
done

# ---- the table --------------------------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
GIT=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && [ -n "$(git status --porcelain -- . ':!bench' 2>/dev/null)" ] && echo "+uncommitted")
{
	echo "# wirewarden benchmark, $STAMP"
	echo
	echo "- wirewarden $GIT ($WIREWARDEN); $(mosquitto -h 2>&1 | head -1); $(haproxy -v | head -1 | cut -d' ' -f1-3)"
	echo "- $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r);" \
		"load average at start $LOAD_START, at end $LOAD_END"
	echo "- mode: $([ "$QUICK" = 1 ] && echo QUICK || echo full); $REPS repetition(s) per cell, median shown; broker, proxy" \
		"and load generator unpinned on the same $(nproc) CPUs; wirewarden workers = HAProxy nbthread, $THREADS" \
		"(throughput and latency for each; the rest with ${THREADS%% *})"
	echo "- throughput: $PUBS publishers, $SUBS subscribers (1:1 topics), ${WARM} s warm-up + ${SECS} s; QoS 1 window $WINDOW per publisher"
	echo
	echo "## Throughput: messages/s delivered to subscribers"
	echo
	echo "| payload, QoS, threads | direct | wirewarden | haproxy | ww/direct | ha/direct | ww/ha | broker CPU % (d/ww/ha) | proxy CPU % (ww/ha) | proxy CPU µs/msg (ww/ha) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for th in $THREADS; do for size in $SIZES; do
		for q in $QOSES; do
			c="${size}B-q$q-t$th"
			d=$(med tput "$c" direct delivered_per_s); w=$(med tput "$c" wirewarden delivered_per_s); h=$(med tput "$c" haproxy delivered_per_s)
			bd=$(med tput "$c" direct cpu1_pct); bw=$(med tput "$c" wirewarden cpu1_pct); bh=$(med tput "$c" haproxy cpu1_pct)
			pw=$(med tput "$c" wirewarden cpu2_pct); ph=$(med tput "$c" haproxy cpu2_pct)
			uw=$(awk -v p="$pw" -v m="$w" 'BEGIN { if (p == "NA" || m == "NA" || m == 0) print "NA"; else printf "%.2f", p * 1e4 / m }')
			uh=$(awk -v p="$ph" -v m="$h" 'BEGIN { if (p == "NA" || m == "NA" || m == 0) print "NA"; else printf "%.2f", p * 1e4 / m }')
			echo "| $size B, QoS $q, $th | $(fmt "$d") | $(fmt "$w") | $(fmt "$h") | $(ratio "$w" "$d") | $(ratio "$h" "$d") | $(ratio "$w" "$h") | $(fmt "$bd")/$(fmt "$bw")/$(fmt "$bh") | $(fmt "$pw")/$(fmt "$ph") | $uw/$uh |"
		done
	done; done
	echo
	echo "## Latency: publish -> delivery at $LAT_RATE msg/s, $LAT_SIZE B, QoS 0, ${LAT_SECS} s (µs)"
	echo
	echo "| percentile, threads | direct | wirewarden | haproxy | ww/direct | ha/direct | ww/ha |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for th in $THREADS; do for k in p50_us p99_us p999_us; do
		c="${LAT_RATE}/s-t$th"
		d=$(med lat "$c" direct $k); w=$(med lat "$c" wirewarden $k); h=$(med lat "$c" haproxy $k)
		echo "| ${k%_us}, $th | $(fmt "$d" 1) | $(fmt "$w" 1) | $(fmt "$h" 1) | $(ratio "$w" "$d") | $(ratio "$h" "$d") | $(ratio "$w" "$h") |"
	done; done
	echo
	[ "$BREAKDOWN" = 1 ] && echo "## Latency breakdown: time per hop from a loopback capture, ${PX_THREADS} threads (µs; one run each)" && echo
	if [ -n "$BREAKDOWN_NOTE" ]; then
		echo "$BREAKDOWN_NOTE"
	elif [ "$BREAKDOWN" = 1 ]; then
		echo "A hop starts when a segment passes loopback into a process and ends when that process's"
		echo "segment carrying the same message passes loopback out, so it includes the process's wake-up."
		echo "End to end is mqttload's own measure (send to delivery) in the same run."
		echo
		echo "| hop: p50 / p99 / p99.9 | direct | wirewarden | haproxy |"
		echo "|---|---:|---:|---:|"
		for hop in c2s broker s2c e2e; do
			case $hop in c2s) label="in the proxy, toward the broker" ;; broker) label="in the broker" ;;
				s2c) label="in the proxy, toward the subscriber" ;; e2e) label="end to end" ;; esac
			row="| $label"
			for t in $TARGETS; do
				a=$(med brk "$hop" "$t" p50_us); b=$(med brk "$hop" "$t" p99_us); c=$(med brk "$hop" "$t" p999_us)
				if [ "$a" = NA ]; then row="$row | –"; else row="$row | $(fmt "$a" 0) / $(fmt "$b" 0) / $(fmt "$c" 0)"; fi
			done
			echo "$row |"
		done
	fi
	[ "$BREAKDOWN" = 1 ] && echo
	echo "## Connection setup: TCP connect + CONNECT + CONNACK + DISCONNECT, $CONN_CONC concurrent"
	echo
	echo "| | direct | wirewarden | haproxy | ww/direct | ha/direct | ww/ha |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	d=$(med conn "c$CONN_CONC" direct setups_per_s); w=$(med conn "c$CONN_CONC" wirewarden setups_per_s); h=$(med conn "c$CONN_CONC" haproxy setups_per_s)
	echo "| setups/s | $(fmt "$d") | $(fmt "$w") | $(fmt "$h") | $(ratio "$w" "$d") | $(ratio "$h" "$d") | $(ratio "$w" "$h") |"
	pw=$(med conn "c$CONN_CONC" wirewarden cpu2_pct); ph=$(med conn "c$CONN_CONC" haproxy cpu2_pct)
	echo "| proxy CPU % | | $(fmt "$pw") | $(fmt "$ph") | | | |"
	echo
	echo "## Idle clients: proxy RSS per client (VmRSS after - before) / clients"
	echo
	echo "| clients | wirewarden B/client | haproxy B/client | ww/ha | broker B/client (via ww) |"
	echo "|---:|---:|---:|---:|---:|"
	for n in $IDLE_COUNTS; do
		if awk -F'\t' -v n="$n" '$1 == "idle" && $2 == n && $4 ~ /skipped/' "$RAW" | grep -q .; then
			echo "| $n | skipped: needs $((2 * n + 200)) descriptors, the limit here is $FD_LIMIT | | | |"
			continue
		fi
		w=$(med idle "$n" wirewarden bytes_per_client); h=$(med idle "$n" haproxy bytes_per_client)
		b=$(med idle "$n" wirewarden broker_bytes_per_client)
		m=$(med idle "$n" wirewarden clients)
		label=$n; [ "$m" != NA ] && [ "$m" != "$n" ] && label="$n (measured $m: descriptor limit $FD_LIMIT)"
		echo "| $label | $(fmt "$w") | $(fmt "$h") | $(ratio "$w" "$h") | $(fmt "$b") |"
	done
	if [ -s "$WORK/errors.txt" ]; then
		echo; echo "## Failed cells"; echo; sed 's/^/- /' "$WORK/errors.txt"
	fi
	if [ "$PERF" = 1 ]; then
		echo
		echo "## perf (separate runs, not the measured cells; the profiler costs CPU too)"
		[ -n "$PERF_NOTE" ] && echo && echo "$PERF_NOTE"
		for spec in tput-64B-q0 tput-16384B-q0 conn; do
			w=$WORK/perf-wirewarden-$spec
			[ -f "$w.stat" ] || continue
			echo
			echo "### $spec: system calls per delivered message (conn: per setup), from perf stat"
			echo
			echo "| proxy | msg/s (setups/s) | syscalls | epoll_wait | epoll_ctl | ioctl | reads | writes | context switches | CPU µs |"
			echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
			syscalls_row wirewarden "$w"
			syscalls_row haproxy "$WORK/perf-haproxy-$spec"
			if [ -s "$w.self.txt" ]; then
				echo
				echo "wirewarden profile, recorded during: $(cut -d' ' -f2- "$w.rec.result" 2>/dev/null)"
				echo
				echo "self time by DSO and by symbol (kernel included; see README on pvm_irq_enable):"
				echo; echo '```'; cat "$w.dso.txt"; echo; head -22 "$w.self.txt"; echo '```'
				echo
				echo "user-space functions, inclusive (children) time:"
				echo; echo '```'; head -30 "$w.children.txt"; echo '```'
			fi
		done
	fi
	echo
	echo "<details><summary>raw results (section, cell, target, rep:key, value)</summary>"
	echo; echo '```'; cat "$RAW"; echo '```'; echo "</details>"
} >"$WORK/report.md"

mkdir -p "$HERE/results"
cp "$WORK/report.md" "$HERE/results/$STAMP.md"
sed '/^<details>/,$d' "$WORK/report.md"
log "written: bench/results/$STAMP.md"
