#!/bin/sh
# Runs the Eclipse Paho MQTT interoperability suite (github.com/eclipse/paho.mqtt.testing,
# interoperability/client_test.py for 3.1.1 and client_test5.py for 5.0) twice: straight to a
# local mosquitto, and through `wirewarden proxy` with its default policies in front of the same
# mosquitto. Each test runs alone (90 s cap: one of them waits forever on mosquitto 2.0) and the
# two results are printed side by side; a test whose result differs is the proxy's doing.
#
#   tests/interop/run.sh /path/to/paho.mqtt.testing [WIREWARDEN]
#
# Not part of .ci/run: the suite is not ours to copy into the repository, and CI has no network.
# Uses only loopback (a free port pair picked here) and Debian's /usr/bin/python3.
set -u
SUITE=${1:?usage: tests/interop/run.sh /path/to/paho.mqtt.testing [wirewarden binary]}
WW=${2:-$(cd "$(dirname "$0")/../.." && pwd)/wirewarden}
DIR=$SUITE/interoperability
[ -f "$DIR/client_test5.py" ] || { echo "run.sh: no interoperability/client_test5.py under $SUITE" >&2; exit 2; }
[ -x "$WW" ] || { echo "run.sh: $WW is not executable (build first, or pass the binary)" >&2; exit 2; }
command -v mosquitto >/dev/null || { echo "run.sh: mosquitto not installed" >&2; exit 2; }
PY=/usr/bin/python3

WORK=$(mktemp -d /tmp/wwinterop.XXXXXX)
cp -r "$DIR" "$WORK/suite" && DIR=$WORK/suite # client_test.py is edited per port below: on a copy
ONLY=${ONLY:-} # space-separated test names: run only these
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
BP=$(free_port); WP=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file %s/mosquitto.log\nlog_type all\n' \
	"$BP" "$WORK" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.stderr" 2>&1 &
MP=$!
# CONFIG=file: its policies instead of the defaults (its listeners are replaced by the flags)
"$WW" proxy ${CONFIG:+--config "$CONFIG"} --listen "127.0.0.1:$WP" --upstream "127.0.0.1:$BP" --events "$WORK/events.jsonl" --log "$WORK/events.log" \
	>"$WORK/wirewarden.stderr" 2>&1 &
XP=$!
trap 'kill $MP $XP 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
sleep 1
kill -0 $MP 2>/dev/null && kill -0 $XP 2>/dev/null || { echo "run.sh: mosquitto or wirewarden did not start ($WORK)" >&2; exit 1; }

# client_test.py takes its port from a line of its own (unittest.main() rereads argv), so each
# target gets a copy of it with that line changed; client_test5.py takes -p.
for p in "$BP" "$WP"; do sed "s/^  port = 1883/  port = $p/" "$DIR/client_test.py" >"$DIR/client_test_$p.py"; done
one() { # <suite 3.1.1|5.0> <port> <test>: "OK", "FAILED (...)" or "none (rc N)"
	out=$WORK/$1-$2-$3.txt
	case $1 in
	3.1.1) (cd "$DIR" && timeout 90 $PY "client_test_$2.py" "Test.$3") >"$out" 2>&1 ;;
	*) (cd "$DIR" && timeout 90 $PY client_test5.py -p "$2" "Test.$3") >"$out" 2>&1 ;;
	esac
	rc=$?
	r=$(grep -E '^(OK|FAILED)' "$out" | tail -1)
	echo "${r:-none (rc $rc)}"
}
wanted() { [ -z "$ONLY" ] || case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
same=0; differ=0
side_by_side() { # <suite 3.1.1|5.0> <the suite's script>
	for t in $(grep -o 'def test[a-z_0-9]*' "$DIR/$2" | sed 's/def //'); do
		wanted "$t" || continue
		d=$(one "$1" "$BP" "$t"); w=$(one "$1" "$WP" "$t")
		[ "$d" = "$w" ] && same=$((same + 1)) || differ=$((differ + 1))
		printf '| %s | %s | %s | %s%s |\n' "$1" "$t" "$d" "$w" "$([ "$d" = "$w" ] || echo ' **differs**')"
	done
}
printf '| suite | test | direct | through wirewarden |\n|---|---|---|---|\n'
side_by_side 3.1.1 client_test.py
side_by_side 5.0 client_test5.py
echo
echo "$same same, $differ different; logs and events in $WORK"
[ "$differ" = 0 ]
