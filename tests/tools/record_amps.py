#!/usr/bin/python3
"""Record AMPS traffic on loopback against the AMPS peer (tests/amps_peer:
written from the public documentation, it is NOT AMPS) and keep it as test
fixtures, one capture per AMPS disconnect reason.

Usage:  /usr/bin/python3 tests/tools/record_amps.py [OUTDIR]
        (default OUTDIR: tests/data/recorded-amps, relative to the repository root)

For every scenario a fresh peer server starts on a free 127.0.0.1 port,
`tcpdump -i lo` captures that port while the peer's clients act the
scenario out, and the peer's log (AMPS-shaped lines plus PEER-xxxx lines
naming each connection's address, who closed it and why) is kept next to
the capture. Afterwards each pcap is read back with tshark (no wirewarden
code involved), the TCP payloads are split into AMPS frames, and:

  <scenario>.pcap, <scenario>.amps-peer.log
  frames.tsv        scenario stream dir index length command hex(first 96 bytes)
  connections.tsv   scenario stream client closed_by amps_reason first_close   (ground truth)
  SOURCES.md        how it was recorded, versions, per-scenario notes

Needs root (tcpdump on lo), tcpdump, tshark, Debian's /usr/bin/python3.
Only 127.0.0.0/8. Every wait is bounded. Exit 0 ok, 1 setup error,
2 recorded but an expectation about the traffic did not hold."""
import argparse
import collections
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "amps_peer"))

import wire  # noqa: E402
from client import AmpsClient, Closed, storm  # noqa: E402
from harness import PeerServer  # noqa: E402

USERS = "svc:svcpw,ops:opspw,guest:guestpw"
ENTITLED = "svc,ops"


def die(msg):
    sys.stderr.write("record_amps: error: %s\n" % msg)
    sys.exit(1)


def tool(name):
    p = shutil.which(name) or next((os.path.join(d, name) for d in ("/usr/sbin", "/usr/bin", "/sbin")
                                    if os.access(os.path.join(d, name), os.X_OK)), None)
    if not p:
        die("%s not found (apt-get install tcpdump tshark)" % name)
    return p


class Capture:
    """tcpdump on lo for one port, for the duration of a with-block."""

    def __init__(self, pcap, port):
        self.pcap, self.port = pcap, port

    def __enter__(self):
        self.proc = subprocess.Popen([tool("tcpdump"), "-i", "lo", "-U", "-s", "0", "-Z", "root", "--immediate-mode",
                                      "-B", "32768", "-w", self.pcap, "tcp port %d" % self.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err = []
        ready = threading.Event()

        def reader():
            for line in iter(self.proc.stderr.readline, b""):
                self.err.append(line.decode(errors="replace"))
                if b"listening on" in line:
                    ready.set()
            ready.set()
        self.t = threading.Thread(target=reader, daemon=True)
        self.t.start()
        if not ready.wait(5) or self.proc.poll() is not None:
            self.proc.kill()
            die("tcpdump did not start: %s" % "".join(self.err))
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        time.sleep(0.4)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.t.join(2)
        m = re.search(r"(\d+) packets? dropped by kernel", "".join(self.err))
        self.dropped = int(m.group(1)) if m else 0


# ---- scenarios: each gets a started peer and returns a note --------------------------
# Each is (name, peer options, function(peer) -> note, expected {(closed_by, reason): min count}).

def sc_clean_close(s):
    sub = AmpsClient(s.port)
    sub.logon("clean-sub", "svc", "svcpw")
    sub.heartbeat_start(5)
    sub.subscribe("orders")
    pub = AmpsClient(s.port)
    pub.logon("clean-pub", "svc", "svcpw")
    for i in range(3):
        pub.publish("orders", b'{"id":%d}' % i)
    pub.publish("orders", b'{"id":3}', ack="processed")
    for _ in range(4):
        sub.read()
    pub.close()
    sub.beat()
    time.sleep(0.2)
    sub.close()
    return "two clients (svc) log on, heartbeat start,5, 4 publishes delivered; both close their sockets (FIN)"


def sc_name_in_use(s):
    a = AmpsClient(s.port, bind="127.0.0.2")
    a.logon("orders-7", "svc", "svcpw")
    time.sleep(0.3)
    b = AmpsClient(s.port, bind="127.0.0.2")
    b.logon("orders-7", "svc", "svcpw")
    a.wait_closed()
    time.sleep(0.2)
    b.close()
    return "orders-7 logs on from 127.0.0.2, a second connection with the same name and user logs on: " \
           "the peer closes the first at once (02-0025), the second closes later itself"


def sc_name_in_use_other_user(s):
    a = AmpsClient(s.port)
    a.logon("shared-name", "svc", "svcpw")
    b = AmpsClient(s.port)
    b.logon("shared-name", "ops", "opspw")
    b.wait_closed()
    a.close()
    return "a second logon with a client name held by another user gets a failure ack 'name in use' and is closed"


def sc_takeover_storm(s):
    cs = storm(s.port, "twin-7", 6, user_id="svc", pw="svcpw")
    time.sleep(0.2)
    cs[-1].close()
    return "two instances (127.0.0.2, 127.0.0.3) share client name twin-7 and take each other over 6 times"


def sc_heartbeat_timeout(s):
    c = AmpsClient(s.port)
    c.logon("no-heartbeat-client", "svc", "svcpw")
    c.heartbeat_start(1)
    c.wait_closed(4)
    return "heartbeat start,1 then silence: the peer closes after 2 x 1 s (07-0042); the peer sends its own " \
           "heartbeat frames while idle"


def sc_slow_client(s):
    sub = AmpsClient(s.port, rcvbuf=4096)
    sub.logon("sleepy-client", "svc", "svcpw")
    sub.subscribe("feed")
    pub = AmpsClient(s.port)
    pub.logon("firehose", "svc", "svcpw")
    for _ in range(200):
        pub.publish("feed", b"x" * 1024)
    pub.publish("feed", b"", ack="processed")
    s.wait_log("70-0004", timeout=6)
    try:
        sub.wait_closed(3)
    except TimeoutError:
        pass
    pub.close()
    return "sleepy-client subscribes with a 4 KiB receive buffer and never reads; 200 x 1 KiB publishes: " \
           "offlined at 64 KiB buffered (70-0011), disconnected 1.5 s later (70-0004, abortive close: RST)"


def sc_unknown_command(s):
    c = AmpsClient(s.port)
    c.logon("confused", "svc", "svcpw")
    c.unknown_command("frobnicate")
    c.wait_closed()
    return "after logon the client sends {\"c\":\"frobnicate\"}: closed (unknown command)"


def sc_malformed_header(s):
    c = AmpsClient(s.port)
    c.logon("garbled", "svc", "svcpw")
    c.bad_header()
    c.wait_closed()
    return "after logon a frame whose header is cut JSON: closed (unknown command: 'unknown or malformed')"


def sc_auth_failure(s):
    c = AmpsClient(s.port)
    ack = c.logon("intruder", "svc", "wrong")
    c.wait_closed()
    return "logon with a wrong password: failure ack reason %r, then closed" % ack.get("reason")


def sc_not_entitled(s):
    c = AmpsClient(s.port)
    ack = c.logon("visitor", "guest", "guestpw")
    c.wait_closed()
    return "guest authenticates but is not entitled: failure ack reason %r, then closed" % ack.get("reason")


def sc_transport_disabled(s):
    cs = []
    for n in ("desk-1", "desk-2"):
        c = AmpsClient(s.port)
        c.logon(n, "ops", "opspw")
        cs.append(c)
    time.sleep(0.2)
    s.admin("disable")
    for c in cs:
        c.wait_closed()
    return "two clients logged on; the admin disables the transport (07-0047): both closed"


def sc_admin_disconnect(s):
    c = AmpsClient(s.port)
    c.logon("sleepy-client", "ops", "opspw")
    c.heartbeat_start(10)
    time.sleep(0.3)
    s.admin("disconnect sleepy-client")
    c.wait_closed()
    return "the admin console disconnects sleepy-client (07-0013 with no further information)"


def sc_entitlement_reset(s):
    c = AmpsClient(s.port)
    c.logon("entitled-once", "ops", "opspw")
    time.sleep(0.2)
    s.admin("entitlement_reset ops")
    c.wait_closed()
    return "the entitlements of user ops are reset: its connection is closed (entitlement reset)"


def sc_client_vanished(s):
    c = AmpsClient(s.port)
    c.logon("ghost", "svc", "svcpw")
    c.heartbeat_start(30)
    c.publish("orders", b"last words")
    time.sleep(0.2)
    c.vanish()
    return "the client process dies: its socket ends with a RST, no goodbye (peer: connection closed)"


def sc_fix_auth_failure(s):
    c = AmpsClient(s.port, protocol="fix")
    ack = c.logon("fix-intruder", "svc", "wrong")
    c.wait_closed()
    return "legacy fix header protocol: logon with a wrong password, failure ack reason %r, then closed" \
           % ack.get("reason")


def sc_fix_clean(s):
    c = AmpsClient(s.port, protocol="fix")
    c.logon("fix-client", "svc", "svcpw")
    c.heartbeat_start(5)
    c.publish("orders", b"8=FIX.4.2", ack="processed")
    c.close()
    return "legacy fix header protocol: logon, heartbeat start,5, publish with ack, client closes"


BASE = {"users": USERS, "entitled": ENTITLED}
SCENARIOS = [
    ("clean-close", BASE, sc_clean_close, {("client", "connection closed"): 2}),
    ("name-in-use", BASE, sc_name_in_use, {("server", "name in use"): 1, ("client", "connection closed"): 1}),
    ("name-in-use-other-user", BASE, sc_name_in_use_other_user, {("server", "name in use"): 1}),
    ("takeover-storm", BASE, sc_takeover_storm, {("server", "name in use"): 6}),
    ("heartbeat-timeout", BASE, sc_heartbeat_timeout, {("server", "heartbeat"): 1}),
    ("slow-client", dict(BASE, offline_bytes=65536, slow_grace=1.5), sc_slow_client, {("server", "slow client"): 1}),
    ("unknown-command", BASE, sc_unknown_command, {("server", "unknown command"): 1}),
    ("malformed-header", BASE, sc_malformed_header, {("server", "unknown command"): 1}),
    ("auth-failure", BASE, sc_auth_failure, {("server", "auth failure"): 1}),
    ("not-entitled", BASE, sc_not_entitled, {("server", "not entitled"): 1}),
    ("transport-disabled", BASE, sc_transport_disabled, {("server", "transport disabled"): 2}),
    ("admin-disconnect", BASE, sc_admin_disconnect, {("server", "admin disconnect"): 1}),
    ("entitlement-reset", BASE, sc_entitlement_reset, {("server", "entitlement reset"): 1}),
    ("client-vanished", BASE, sc_client_vanished, {("client", "connection closed"): 1}),
    ("fix-auth-failure", dict(BASE, protocol="fix"), sc_fix_auth_failure, {("server", "auth failure"): 1}),
    ("fix-clean-close", dict(BASE, protocol="fix"), sc_fix_clean, {("client", "connection closed"): 1}),
]


# ---- reading the captures back (tshark only) -----------------------------------------

def tshark(pcap, *args):
    r = subprocess.run([tool("tshark"), "-r", pcap] + list(args), capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        die("tshark failed on %s: %s" % (pcap, r.stderr.strip()))
    return r.stdout


def streams(pcap, port):
    """{stream: {"client": "ip:port", "c2s": bytes, "s2c": bytes, "first_close": text}}"""
    out = collections.OrderedDict()
    nextseq = {}
    for line in tshark(pcap, "-T", "fields", "-e", "tcp.stream", "-e", "ip.src", "-e", "tcp.srcport",
                       "-e", "tcp.dstport", "-e", "tcp.seq", "-e", "tcp.len", "-e", "tcp.flags.fin",
                       "-e", "tcp.flags.reset", "-e", "tcp.payload").splitlines():
        f = line.split("\t")
        if len(f) < 9:
            continue
        st, src, sport, dport = int(f[0]), f[1], int(f[2]), int(f[3])
        seq, ln = int(f[4]), int(f[5])
        d = "c2s" if dport == port else "s2c"
        e = out.setdefault(st, {"client": None, "c2s": bytearray(), "s2c": bytearray(), "first_close": None})
        if d == "c2s" and e["client"] is None:
            e["client"] = "%s:%d" % (src, sport)
        if e["first_close"] is None and (f[6] in ("1", "True") or f[7] in ("1", "True")):
            e["first_close"] = "%s %s" % ("server" if d == "s2c" else "client",
                                          "RST" if f[7] in ("1", "True") else "FIN")
        if ln and f[8]:
            payload = bytes.fromhex(f[8].replace(":", ""))
            exp = nextseq.get((st, d))
            if exp is not None and seq < exp:
                payload = payload[exp - seq:]
            elif exp is not None and seq > exp:
                e.setdefault("gaps", []).append(seq - exp)
            e[d].extend(payload)
            nextseq[(st, d)] = max(exp or 0, seq + ln)
    return out


def split_frames(data, protocol):
    f = wire.Framer(wire.CORRUPT_FRAME - 1)
    try:
        payloads = f.feed(bytes(data))
    except wire.FrameError as e:
        return [], len(f.buf), str(e)
    return payloads, len(f.buf), None


def command_of(p, protocol):
    try:
        return str(wire.decode(p, protocol)[0].get("c", "-"))
    except wire.HeaderError:
        return "(malformed)"


def ground_truth(log_text):
    """{client addr: (closed_by, reason)} from the PEER-0013 lines."""
    out = {}
    for m in re.finditer(r"PEER-0013 client\[[^\]]*\] from (\S+) closed by (\w+), reason\[([^\]]*)\]", log_text):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?", default=os.path.join(TOP, "tests", "data", "recorded-amps"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        die("must run as root (tcpdump -i lo)")
    tool("tcpdump")
    tool("tshark")
    os.makedirs(a.outdir, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    frames_rows, conn_rows, notes, problems = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="record-amps-") as tmp:
        for name, opts, fn, expect in SCENARIOS:
            s = PeerServer(tmp, name=name, **opts).start()
            pcap = os.path.join(a.outdir, name + ".pcap")
            try:
                with Capture(pcap, s.port) as cap:
                    try:
                        note = fn(s)
                    except (Closed, TimeoutError, OSError, RuntimeError) as e:
                        note = "scenario raised %s: %s" % (type(e).__name__, e)
                        problems.append("%s: %s" % (name, note))
            finally:
                s.stop()
            shutil.copy(s.log_path, os.path.join(a.outdir, name + ".amps-peer.log"))
            dropped = cap.dropped  # counts all of lo's traffic (other users too): only gaps below matter
            truth = ground_truth(s.log_text())
            protocol = opts.get("protocol", "amps")
            got = collections.Counter()
            for st, e in streams(pcap, s.port).items():
                if e.get("gaps"):
                    problems.append("%s stream %d: %d byte(s) missing from the capture" % (name, st, sum(e["gaps"])))
                for d in ("c2s", "s2c"):
                    payloads, left, err = split_frames(e[d], protocol)
                    if err:
                        problems.append("%s stream %d %s: %s" % (name, st, d, err))
                    elif left and not (name == "slow-client" and d == "s2c"):
                        problems.append("%s stream %d %s: %d bytes not a whole frame" % (name, st, d, left))
                    for i, p in enumerate(payloads):
                        frames_rows.append((name, st, d, i, len(p), command_of(p, protocol), p[:96].hex()))
                by, reason = truth.get(e["client"], ("?", "?"))
                got[(by, reason)] += 1
                conn_rows.append((name, st, e["client"], by, reason, e["first_close"] or "none"))
            for k, n in expect.items():
                if got[k] < n:
                    problems.append("%s: expected %d connection(s) %s, the peer log has %d" % (name, n, k, got[k]))
            if dropped:
                note += " (tcpdump reported %d packet(s) dropped on lo, no gap in this port's streams)" % dropped
            notes.append((name, protocol, note))
            print("recorded %-24s %s" % (name, dict(got)), flush=True)
    with open(os.path.join(a.outdir, "frames.tsv"), "w") as f:
        f.write("scenario\tstream\tdir\tindex\tlength\tcommand\thex96\n")
        for r in frames_rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    with open(os.path.join(a.outdir, "connections.tsv"), "w") as f:
        f.write("scenario\tstream\tclient\tclosed_by\tamps_reason\tfirst_close\n")
        for r in conn_rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    write_sources(a.outdir, started, time.monotonic() - t0, notes, problems)
    for p in problems:
        print("PROBLEM: " + p)
    return 2 if problems else 0


def write_sources(outdir, started, secs, notes, problems):
    def first_line(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return ((r.stdout + r.stderr).strip().splitlines() or ["unknown"])[0]
    L = ["# Recorded AMPS traffic (the AMPS *peer*, not AMPS)", "",
         "Generated by `tests/tools/record_amps.py` on %s (UTC), run time %.0f s. Do not edit by hand: re-run "
         "the script (it overwrites this directory's files)." % (started.strftime("%Y-%m-%d %H:%M:%S"), secs), "",
         "```", "/usr/bin/python3 tests/tools/record_amps.py [OUTDIR]   # needs root", "```", "",
         "**The server in these captures is `tests/amps_peer/server.py`, a peer written from 60East's public "
         "documentation (see doc/amps.md for what is verified and what is assumed). No AMPS server was "
         "involved.** The frames are what the documentation describes; the closing behaviour is the peer's "
         "reading of it.", "",
         "## Versions", "",
         "- python: %s" % sys.version.split()[0],
         "- tcpdump: %s" % first_line([tool("tcpdump"), "--version"]),
         "- tshark: %s" % first_line([tool("tshark"), "-v"]),
         "- kernel: %s" % os.uname().release, "",
         "## How", "",
         "Each scenario starts `server.py --users %s --entitled %s` on a free 127.0.0.1 port "
         "(the slow-client one adds `--offline-bytes 65536 --slow-grace 1.5`; fix-* add `--protocol fix`), "
         "captured by `tcpdump -i lo -U -s 0 --immediate-mode -w <scenario>.pcap tcp port $PORT`. The admin "
         "port is not captured. Clients are `tests/amps_peer/client.py` (AmpsClient); twins bind 127.0.0.2 "
         "and 127.0.0.3." % (USERS, ENTITLED), "",
         "Ground truth is the peer's log (`<scenario>.amps-peer.log`): AMPS-shaped lines (07-0013, 02-0025, "
         "07-0042, 70-0011, 70-0004, 07-0047) and the peer's own `PEER-0013 client[..] from ADDR closed by "
         "client|server, reason[..]` lines, one per connection, summarised in `connections.tsv` with tshark's "
         "view of which side sent the first FIN or RST. `frames.tsv` has every AMPS frame tshark's payloads "
         "split into (no wirewarden code).", "",
         "## Scenarios", "", "| scenario | header protocol | what happens |", "|---|---|---|"]
    for name, proto, note in notes:
        L.append("| %s | %s | %s |" % (name, proto, note.replace("|", "/")))
    L += ["", "## Problems at recording time", ""]
    L += ["- " + p for p in problems] or ["none"]
    with open(os.path.join(outdir, "SOURCES.md"), "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
