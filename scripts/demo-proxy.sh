#!/bin/sh
# A short live demonstration of `wirewarden proxy`: a local mosquitto on a
# free loopback port, wirewarden in front of it with the policies of
# deploy/demo.yaml, real clients (mosquitto_pub/sub), one client that stops
# sending keep-alives, and one that sends a second CONNECT. Prints the event
# log. Usage: scripts/demo-proxy.sh BUILD_DIR
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build}/wirewarden
work=$(mktemp -d)
trap 'kill $px $mq 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bport=$(free_port)
pport=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$bport" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mq=$!
sed "s/@LISTEN@/127.0.0.1:$pport/; s/@UPSTREAM@/127.0.0.1:$bport/" "$top/deploy/demo.yaml" >"$work/wirewarden.yaml"
"$bin" proxy --config "$work/wirewarden.yaml" --log "$work/events.log" --events "$work/events.jsonl" 2>"$work/proxy.err" &
px=$!
for _ in $(seq 50); do
	mosquitto_pub -p "$pport" -t probe -m x -q 0 -i probe 2>/dev/null && break
	sleep 0.1
done

echo "== clients through wirewarden on 127.0.0.1:$pport (broker on $bport)"
timeout 8 mosquitto_sub -p "$pport" -t 'sensors/#' -i dashboard -q 1 -V mqttv5 >/dev/null &
sleep 0.3
for i in 1 2 3; do
	mosquitto_pub -p "$pport" -t "sensors/$i/temp" -m "2$i.5" -q 1 -i "sensor-$i" -V mqttv5
done
# A client that goes silent: keep-alive 2 s, then nothing (heartbeat policy enforces at 1.2 x).
/usr/bin/python3 - "$pport" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
cid = b"silent-sensor"
body = b"\x00\x04MQTT\x05\x02\x00\x02\x00" + len(cid).to_bytes(2, "big") + cid
s.sendall(bytes([0x10, len(body)]) + body)
s.settimeout(6)
data = b""
try:
    while True:
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
print("silent-sensor got:", data.hex(" "), "(CONNACK, then DISCONNECT 0x8D Keep Alive timeout)")
PY
# A client that sends CONNECT twice (protocol policy).
/usr/bin/python3 - "$pport" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
cid = b"twice"
body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(cid).to_bytes(2, "big") + cid
s.sendall(bytes([0x10, len(body)]) + body)
s.recv(100)
s.sendall(bytes([0x10, len(body)]) + body)
s.settimeout(3)
print("twice got:", s.recv(100).hex(" "), "(DISCONNECT 0x82 Protocol Error)")
PY
wait_for=$(( $(date +%s) + 9 ))
while kill -0 "$(pgrep -f "mosquitto_sub -p $pport" | head -1)" 2>/dev/null && [ "$(date +%s)" -lt "$wait_for" ]; do sleep 0.2; done
kill -TERM "$px"
wait "$px" || true
echo "== wirewarden's event log"
cat "$work/events.log"
echo "== disconnects by reason"
/usr/bin/python3 -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["reason"] for l in open(sys.argv[1]) if "\"name\":\"disconnect\"" in l)
for r, n in c.most_common(): print(f"{n:4d}  {r}")' "$work/events.jsonl"
