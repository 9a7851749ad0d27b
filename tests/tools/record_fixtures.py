#!/usr/bin/python3
"""Record real MQTT traffic on loopback and turn it into test fixtures.

Usage:  /usr/bin/python3 tests/tools/record_fixtures.py [OUTDIR]
        (default OUTDIR: tests/data/recorded, relative to the repository root)
        ... --add NAME[,NAME]   records only those scenarios and merges them
        into OUTDIR's files, leaving every other recording as it was

For every scenario a fresh mosquitto broker is started on a free 127.0.0.1
port, `tcpdump -i lo` captures that port while real clients (mosquitto_pub,
mosquitto_sub, paho-mqtt, or hand-made packets on a raw socket) talk to it,
and the broker's log lines for the scenario are kept next to the capture.

Afterwards every pcap is read back with tshark (no wirewarden code is
involved): the TCP payload of each segment is concatenated per stream and
direction and split into MQTT control packets with a small Python
remaining-length reader.  Outputs, in OUTDIR:

  <scenario>.pcap, <scenario>.mosquitto.log
  fixtures.tsv          scenario stream dir level index hex
  fixtures-summary.tsv  packet type counts per scenario and direction
  SOURCES.md            how it was recorded + ground truth from the broker log

Needs: mosquitto, mosquitto_pub, mosquitto_sub, mosquitto_passwd, tcpdump,
tshark and python3-paho-mqtt (Debian's /usr/bin/python3).  Must run as root
(tcpdump on lo).  Only 127.0.0.1 is used.  Every wait is bounded.
Exit status: 0 ok, 1 missing tool / setup error, 2 recorded but some
expectation about the captured traffic did not hold (see the printed list).
"""

import argparse
import collections
import concurrent.futures
import datetime
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
SCRIPT_REL = "tests/tools/record_fixtures.py"

TYPE_NAMES = {
    0: "RESERVED0", 1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK",
    5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
    10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT", 15: "AUTH",
}

# users of the brokers that have a password_file
USERS = [("alice", "alicepw"), ("bob", "bobpw"), ("dashboard", "dashpw"),
         ("sensor", "sensorpw")]


# mosquitto's words for the same events: 2.0.x, then 2.1.0 / 2.1.1+ (src/loop.c do_disconnect)
TAKEOVER_RE = r"already connected, closing old connection|disconnected[:,] session taken over"
TIMEOUT_RE = r"(has exceeded timeout|\] disconnected: exceeded timeout)"
CLOSED_RE = (r"closed its connection|disconnected: connection closed by client|"
             r"Socket error on client [^<]")  # 1.6


def die(msg):
    sys.stderr.write("record_fixtures: error: %s\n" % msg)
    sys.exit(1)


def find_tool(name):
    p = shutil.which(name)
    if p:
        return p
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"):
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


TOOLS = {}


def check_tools():
    missing = []
    for t in ("mosquitto", "mosquitto_pub", "mosquitto_sub",
              "mosquitto_passwd", "tcpdump", "tshark"):
        p = find_tool(t)
        if p is None:
            missing.append(t)
        TOOLS[t] = p
    if missing:
        die("required program(s) not found: %s (Debian: apt-get install "
            "mosquitto mosquitto-clients tcpdump tshark)" % ", ".join(missing))
    try:
        __import__("paho.mqtt.client")
    except ImportError:
        die("python module paho.mqtt not importable by %s; run this script "
            "with Debian's /usr/bin/python3 (apt-get install "
            "python3-paho-mqtt)" % sys.executable)
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        die("must run as root (tcpdump -i lo)")


def mosquitto_version():
    """The broker's version, "2.0.11" ("" if it does not say)."""
    if "mosquitto_version" not in TOOLS:
        r = subprocess.run([TOOLS["mosquitto"], "-h"], capture_output=True, text=True, timeout=20)
        m = re.search(r"mosquitto version (\S+)", r.stdout + r.stderr)
        TOOLS["mosquitto_version"] = m.group(1) if m else ""
    return TOOLS["mosquitto_version"]


def tool_versions():
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            txt = (r.stdout + r.stderr).strip().splitlines()
            for line in txt:
                if line.strip():
                    return line.strip()
        except Exception as e:  # pragma: no cover
            return "unknown (%s)" % e
        return "unknown"
    import paho.mqtt
    v = collections.OrderedDict()
    mos = subprocess.run([TOOLS["mosquitto"], "-h"], capture_output=True,
                         text=True, timeout=20)
    m = re.search(r"mosquitto version \S+", mos.stdout + mos.stderr)
    v["mosquitto"] = m.group(0) if m else "unknown"
    v["mosquitto_pub"] = _pub_version()
    v["paho-mqtt"] = paho.mqtt.__version__
    v["python"] = "%s (%s)" % (sys.version.split()[0], sys.executable)
    v["tcpdump"] = first_line([TOOLS["tcpdump"], "--version"])
    v["tshark"] = first_line([TOOLS["tshark"], "-v"])
    try:
        with open("/etc/debian_version") as f:
            v["debian"] = f.read().strip()
    except OSError:
        v["debian"] = "n/a"
    v["kernel"] = os.uname().release
    return v


def _pub_version():
    r = subprocess.run([TOOLS["mosquitto_pub"], "--help"], capture_output=True,
                       text=True, timeout=20)
    m = re.search(r"mosquitto_pub version .*", r.stdout + r.stderr)
    return m.group(0).strip() if m else "unknown"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# MQTT encoding helpers (raw-socket clients) and the packet splitter
# ---------------------------------------------------------------------------

def enc_varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def enc_str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!H", len(s)) + s


def packet(first_byte, body):
    return bytes([first_byte]) + enc_varint(len(body)) + body


def props(*items):
    """items: (identifier, encoded value bytes)"""
    body = b"".join(bytes([i]) + v for i, v in items)
    return enc_varint(len(body)) + body


def build_connect(level, client_id, keepalive=60, clean=True, user=None,
                  password=None, will=None, conn_props=b""):
    name = b"MQIsdp" if level == 3 else b"MQTT"
    flags = 0x02 if clean else 0
    payload = enc_str(client_id)
    if will:
        wtopic, wmsg, wqos, wretain = will
        flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        if level == 5:
            payload += props()
        payload += enc_str(wtopic) + enc_str(wmsg)
    if user is not None:
        flags |= 0x80
        payload += enc_str(user)
    if password is not None:
        flags |= 0x40
        payload += enc_str(password)
    vh = enc_str(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if level == 5:
        vh += conn_props if conn_props else props()
    return packet(0x10, vh + payload)


def build_publish(level, topic, payload, qos=0, pid=1, retain=False,
                  first_byte=None):
    fb = first_byte if first_byte is not None else \
        0x30 | (qos << 1) | (1 if retain else 0)
    body = enc_str(topic)
    if ((fb >> 1) & 3) > 0:
        body += struct.pack("!H", pid)
    if level == 5:
        body += props()
    return packet(fb, body + payload)


def build_subscribe(level, pid, filters):
    body = struct.pack("!H", pid)
    if level == 5:
        body += props()
    for f, opts in filters:
        body += enc_str(f) + bytes([opts])
    return packet(0x82, body)


def build_disconnect(level, reason=None):
    if level == 5 and reason is not None:
        return packet(0xE0, bytes([reason]) + props())
    return packet(0xE0, b"")


def read_varint(buf, pos):
    """Return (value, new_pos), None if incomplete, raise ValueError if
    malformed (more than 4 bytes)."""
    mult = 1
    val = 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        b = buf[pos + i]
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, pos + i + 1
        mult *= 128
    raise ValueError("remaining length longer than 4 bytes")


def split_packets(buf):
    """Split a byte stream into whole MQTT packets.
    Returns (packets, leftover_bytes, error_or_None)."""
    pkts = []
    pos = 0
    while pos < len(buf):
        try:
            r = read_varint(buf, pos + 1)
        except ValueError as e:
            return pkts, len(buf) - pos, str(e)
        if r is None:
            return pkts, len(buf) - pos, None
        rl, body = r
        end = body + rl
        if end > len(buf):
            return pkts, len(buf) - pos, None
        pkts.append(bytes(buf[pos:end]))
        pos = end
    return pkts, 0, None


def body_offset(pkt):
    return read_varint(pkt, 1)[1]


def connect_level(pkt):
    if not pkt or pkt[0] >> 4 != 1:
        return 0
    try:
        o = body_offset(pkt)
        nlen = struct.unpack("!H", pkt[o:o + 2])[0]
        return pkt[o + 2 + nlen]
    except Exception:
        return 0


def reason_code(pkt, level):
    """CONNACK return/reason code or v5 DISCONNECT reason code, else None."""
    t = pkt[0] >> 4
    o = body_offset(pkt)
    body = pkt[o:]
    if t == 2 and len(body) >= 2:
        return body[1]
    if t == 14:
        if level == 5:
            return body[0] if body else 0
        return None
    return None


# ---------------------------------------------------------------------------
# Raw socket client
# ---------------------------------------------------------------------------

class RawClient:
    def __init__(self, port, timeout=3.0, bind=None):
        self.sock = socket.create_connection(
            (HOST, port), timeout=timeout,
            source_address=(bind, 0) if bind else None)
        self.buf = b""
        self.eof = False
        self.packets = []
        self.eof_at = None

    def send(self, data):
        self.sock.sendall(data)

    def poll(self):
        """Non-blocking read of whatever is available."""
        if self.eof:
            return
        self.sock.settimeout(0.0)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    self._eof()
                    break
                self.buf += d
        except (BlockingIOError, socket.timeout):
            pass
        except (ConnectionResetError, BrokenPipeError):
            self._eof()
        self._split()

    def _eof(self):
        self.eof = True
        self.eof_at = time.monotonic()

    def _split(self):
        pk, left, _ = split_packets(self.buf)
        self.packets.extend(pk)
        self.buf = self.buf[len(self.buf) - left:] if left else b""

    def read(self, seconds, npackets=None):
        """Read until EOF, `npackets` packets in total, or `seconds`."""
        end = time.monotonic() + seconds
        while not self.eof and time.monotonic() < end:
            if npackets is not None and len(self.packets) >= npackets:
                break
            self.sock.settimeout(max(0.01, min(0.2, end - time.monotonic())))
            try:
                d = self.sock.recv(65536)
                if not d:
                    self._eof()
                else:
                    self.buf += d
            except socket.timeout:
                pass
            except (ConnectionResetError, BrokenPipeError):
                self._eof()
            self._split()
        return self.packets

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Close with RST instead of FIN (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


# ---------------------------------------------------------------------------
# Broker and capture management
# ---------------------------------------------------------------------------

class Broker:
    def __init__(self, rec, auth=False, extra=()):
        self.rec = rec
        self.auth = auth
        self.extra = list(extra)
        self.dir = tempfile.mkdtemp(prefix="broker-", dir=rec.tmp)
        self.port = free_port()
        self.log = os.path.join(self.dir, "mosquitto.log")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        lines = [
            "listener %d %s" % (self.port, HOST),
            "log_type all",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "log_dest file %s" % self.log,
            "persistence false",
            "user root",
        ]
        if auth:
            pw = os.path.join(self.dir, "passwd")
            first = True
            for u, p in USERS:
                # -c before -b: 1.6's mosquitto_passwd takes them in that order only
                cmd = [TOOLS["mosquitto_passwd"]] + (["-c"] if first else []) + \
                    ["-b", pw, u, p]
                first = False
                r = subprocess.run(cmd, capture_output=True, text=True,
                                   timeout=20)
                if r.returncode != 0:
                    die("mosquitto_passwd failed: %s" % r.stderr.strip())
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines += ["allow_anonymous true"]
        lines += self.extra
        self.conf_text = "\n".join(lines) + "\n"
        with open(self.conf, "w") as f:
            f.write(self.conf_text)
        self.stderr = open(os.path.join(self.dir, "stderr.txt"), "w")
        self.proc = subprocess.Popen([TOOLS["mosquitto"], "-c", self.conf],
                                     stdout=self.stderr, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL)
        rec.brokers.append(self)
        self._wait_ready()

    def _wait_ready(self):
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                s = socket.create_connection((HOST, self.port), timeout=0.5)
                s.close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            die("mosquitto did not accept connections on %s:%d within 5 s"
                % (HOST, self.port))
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "stderr.txt")) as f:
                err = f.read()
            die("mosquitto exited at start-up: %s" % err.strip())
        # the readiness probe is logged as "New connection ..." followed by
        # "Client <unknown> closed its connection."; wait for it (bounded) so
        # that it stays out of the scenario's log slice.
        self.wait_log(0, r"closed its connection|disconnected", 2)

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def read_log(self, off, end=None):
        try:
            with open(self.log, "rb") as f:
                f.seek(off)
                data = f.read() if end is None else f.read(end - off)
            return data.decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, off, pattern, timeout=5.0, count=1):
        """Wait until regex `pattern` occurs `count` times in the log after
        offset `off`.  Returns True/False (bounded by timeout)."""
        rx = re.compile(pattern, re.M)
        end = time.monotonic() + timeout
        while True:
            if len(rx.findall(self.read_log(off))) >= count:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()


class Scenario:
    def __init__(self, rec, name, broker, description):
        self.rec = rec
        self.name = name
        self.broker = broker
        self.port = broker.port
        self.description = description
        self.actions = []   # human-readable list of commands / actions
        self.notes = []     # observations recorded while running
        self.procs = []
        self.log_text = ""
        self.pcap = os.path.join(rec.outdir, name + ".pcap")

    # -- helpers available to scenario bodies --------------------------------
    def note(self, text):
        self.notes.append(text)

    def act(self, text):
        self.actions.append(text)

    def _fmt(self, cmd):
        out = [os.path.basename(cmd[0])]
        for a in cmd[1:]:
            a = str(a)
            out.append("$PORT" if a == str(self.port) else shlex.quote(a))
        return " ".join(out)

    def run(self, cmd, timeout=10):
        self.act("`%s`" % self._fmt(cmd))
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
            return r.returncode
        except subprocess.TimeoutExpired:
            self.note("command timed out: %s" % self._fmt(cmd))
            return None

    def spawn(self, cmd):
        self.act("`%s &`" % self._fmt(cmd))
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def interrupt(self, p, desc, timeout=5):
        self.act("SIGINT to `%s`" % desc)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            self.note("%s did not exit after SIGINT; killed" % desc)
            return None

    def mqtt_args(self, version=None, user=None, password=None):
        a = ["-h", HOST, "-p", str(self.port)]
        if version:
            a += ["-V", version]
        if user:
            a += ["-u", user]
        if password:
            a += ["-P", password]
        return a

    def log_off(self):
        return self.broker.log_size()

    # -- capture ---------------------------------------------------------------
    def __enter__(self):
        self.tmp_pcap = os.path.join(self.rec.tmp, self.name + ".pcap")
        cmd = [TOOLS["tcpdump"], "-i", "lo", "-U", "-s", "0", "-Z", "root",
               "--immediate-mode", "-B", "32768",
               "-w", self.tmp_pcap, "tcp port %d" % self.port]
        self.tcpdump_cmd = cmd
        self.tcpdump = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL)
        ready = threading.Event()
        self.tcpdump_err = []

        def reader():
            for line in iter(self.tcpdump.stderr.readline, b""):
                line = line.decode("utf-8", "replace")
                self.tcpdump_err.append(line)
                if "listening on" in line:
                    ready.set()
            ready.set()
        self.reader = threading.Thread(target=reader, daemon=True)
        self.reader.start()
        if not ready.wait(5) or self.tcpdump.poll() is not None:
            self.tcpdump.kill()
            die("tcpdump did not start: %s" % "".join(self.tcpdump_err))
        time.sleep(0.2)
        self.log_start = self.broker.log_size()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, exc_type, exc, tb):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        time.sleep(0.4)
        self.duration = time.monotonic() - self.t0
        self.tcpdump.send_signal(signal.SIGINT)
        try:
            self.tcpdump.wait(5)
        except subprocess.TimeoutExpired:
            self.tcpdump.kill()
            self.tcpdump.wait(5)
        self.reader.join(2)
        m = re.search(r"(\d+) packets? dropped by kernel",
                      "".join(self.tcpdump_err))
        self.dropped = int(m.group(1)) if m else None
        time.sleep(0.1)
        self.log_text = self.broker.read_log(self.log_start)
        with open(os.path.join(self.rec.outdir, self.name + ".mosquitto.log"),
                  "w") as f:
            f.write(self.log_text)
        shutil.copyfile(self.tmp_pcap, self.pcap)
        self.rec.scenarios.append(self)
        # analyse in the background while the next scenarios record
        ex = self.rec.executor
        self.futures = (ex.submit(extract, self.pcap, self.port),
                        ex.submit(tshark_mqtt_counts, self.pcap, self.port),
                        ex.submit(tshark_closers, self.pcap, self.port))
        print("  %-26s port %5d  %5.1f s" % (self.name, self.port,
                                               self.duration), flush=True)
        return False


# ---------------------------------------------------------------------------
# paho helpers
# ---------------------------------------------------------------------------

def paho():
    import paho.mqtt.client as mqtt
    return mqtt


def paho_version():
    import paho.mqtt
    return paho.mqtt.__version__


class PahoState:
    """Attach simple flags to a paho client via callbacks."""

    def __init__(self, client, v5):
        self.connected = False
        self.connack_rc = None
        self.disconnected = False
        self.disconnect_rc = None
        self.subacks = 0
        self.unsubacks = 0
        self.published = set()
        self.messages = []
        self.v5 = v5
        c = client
        if v5:
            c.on_connect = lambda cl, u, f, rc, p=None: self._conn(rc)
            c.on_subscribe = lambda cl, u, mid, rcs, p=None: self._sub()
            c.on_unsubscribe = lambda cl, u, mid, p=None, rcs=None: \
                self._unsub()
        else:
            c.on_connect = lambda cl, u, f, rc: self._conn(rc)
            c.on_subscribe = lambda cl, u, mid, qos: self._sub()
            c.on_unsubscribe = lambda cl, u, mid: self._unsub()
        c.on_disconnect = lambda cl, u, rc, *a: self._disc(rc)
        c.on_publish = lambda cl, u, mid: self.published.add(mid)
        c.on_message = lambda cl, u, m: self.messages.append(
            (m.topic, m.qos, m.retain))

    def _conn(self, rc):
        self.connack_rc = rc
        self.connected = True

    def _disc(self, rc):
        self.disconnected = True
        self.disconnect_rc = rc

    def _sub(self):
        self.subacks += 1

    def _unsub(self):
        self.unsubacks += 1


def pump(clients, seconds, until=None, raws=()):
    """Drive paho clients (and poll raw clients) for at most `seconds`."""
    end = time.monotonic() + seconds
    while True:
        for c in clients:
            c.loop(timeout=0.01)
        for r in raws:
            r.poll()
        if until is not None and until():
            return True
        if time.monotonic() >= end:
            return until() if until is not None else True


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

def sc_pubsub_mosquitto(rec, ver):
    v5 = ver == "v5"
    V = "mqttv5" if v5 else "mqttv311"
    b = Broker(rec, auth=True)
    desc = ("mosquitto_sub/mosquitto_pub (MQTT %s) against a broker with a "
            "password_file: three subscribers with several filters (`+`, `#`) "
            "at QoS 0/1/2 (one with keepalive 5 s and a retained will, so it "
            "sends PINGREQ), one persistent-session client that subscribes "
            "and unsubscribes (-U), publishers at QoS 0/1/2, a retained "
            "publish with a will, a --repeat QoS 2 publisher, a zero-length "
            "retained publish that clears the retained message; finally the "
            "subscribers are stopped with SIGINT (mosquitto_sub then sends "
            "DISCONNECT%s)." % ("5.0" if v5 else "3.1.1",
                                " with reason 0x04 'disconnect with will "
                                "message', so the broker publishes sub-a's "
                                "will" if v5 else ""))
    with Scenario(rec, "%s-pubsub" % ver, b, desc) as s:
        p = ver + "-"
        off = s.log_off()
        suba = [TOOLS["mosquitto_sub"]] + s.mqtt_args(V, "alice", "alicepw") + [
            "-i", p + "sub-a", "-q", "2", "-k", "5", "-v",
            "-t", "sensors/+/temp", "-t", "alerts/#", "-t", "home/+/status",
            "--will-topic", "clients/%ssub-a/status" % p,
            "--will-payload", "offline", "--will-qos", "1", "--will-retain"]
        if v5:
            suba += ["-D", "connect", "session-expiry-interval", "60",
                     "-D", "connect", "user-property", "role", "dashboard",
                     "-D", "connect", "receive-maximum", "20",
                     "-D", "subscribe", "user-property", "origin", "wirewarden",
                     "-D", "will", "content-type", "text/plain",
                     "-D", "will", "user-property", "kind", "lwt",
                     "-D", "disconnect", "user-property", "why", "sigint"]
        subb = [TOOLS["mosquitto_sub"]] + s.mqtt_args(V, "bob", "bobpw") + [
            "-i", p + "sub-b", "-q", "1", "-t", "#"]
        subc = [TOOLS["mosquitto_sub"]] + s.mqtt_args(V, "bob", "bobpw") + [
            "-i", p + "sub-c", "-q", "0", "-t", "sensors/#", "-t",
            "home/+/status", "-t", "clients/+/status"]
        pa = s.spawn(suba)
        pb = s.spawn(subb)
        pc = s.spawn(subc)
        if not b.wait_log(off, r"Sending SUBACK to %ssub-[abc]\b" % p, 5, 3):
            s.note("not all subscribers got SUBACK within 5 s")
        uns = [TOOLS["mosquitto_sub"]] + s.mqtt_args(V, "bob", "bobpw") + [
            "-i", p + "unsub", "-c", "-q", "1", "-t", "home/#", "-t",
            "alerts/+", "-U", "home/#", "-U", "alerts/+", "-W", "1"]
        if v5:
            uns += ["-D", "unsubscribe", "user-property", "k", "v"]
        s.run(uns)
        pub = [TOOLS["mosquitto_pub"]] + s.mqtt_args(V, "alice", "alicepw")
        s.run(pub + ["-i", p + "pub-q0", "-q", "0", "-t", "sensors/s1/temp",
                     "-m", "21.5"])
        extra = []
        if v5:
            extra = ["-D", "publish", "user-property", "k", "v",
                     "-D", "publish", "content-type", "text/plain",
                     "-D", "publish", "message-expiry-interval", "120",
                     "-D", "publish", "payload-format-indicator", "1"]
        s.run(pub + ["-i", p + "pub-q1", "-q", "1", "-t", "sensors/s2/temp",
                     "-m", "19.0"] + extra)
        if v5:
            extra = ["-D", "publish", "response-topic", "replies/alerts",
                     "-D", "publish", "correlation-data", "req-42",
                     "-D", "publish", "user-property", "severity", "high"]
        s.run(pub + ["-i", p + "pub-q2", "-q", "2", "-t", "alerts/fire",
                     "-m", "smoke detected"] + extra)
        if v5:
            extra = ["-D", "connect", "session-expiry-interval", "60",
                     "-D", "connect", "user-property", "site", "lab",
                     "-D", "will", "will-delay-interval", "0",
                     "-D", "will", "message-expiry-interval", "300"]
        s.run(pub + ["-i", p + "pub-retain", "-q", "1", "-r",
                     "-t", "home/livingroom/status", "-m", "online",
                     "--will-topic", "clients/%spub-retain/status" % p,
                     "--will-payload", "gone", "--will-qos", "2",
                     "--will-retain"] + extra)
        if v5:
            extra = ["-D", "publish", "topic-alias", "1"]
        s.run(pub + ["-i", p + "pub-repeat", "-q", "2", "--repeat", "3",
                     "--repeat-delay", "0.1", "-t", "sensors/s3/temp",
                     "-m", "22.25"] + extra)
        s.run(pub + ["-i", p + "pub-clear", "-q", "1", "-r", "-n",
                     "-t", "home/livingroom/status"])
        # sub-a has keepalive 5 s: wait (bounded) for its PINGREQ
        if not b.wait_log(off, r"Received PINGREQ from %ssub-a" % p, 8):
            s.note("no PINGREQ from sub-a within 8 s")
        b.wait_log(off, r"Sending PINGRESP to %ssub-a" % p, 1)
        s.interrupt(pa, "mosquitto_sub -i %ssub-a ..." % p)
        b.wait_log(off, r"Client %ssub-a (\[[^]]*\] )?disconnected" % p, 2)
        time.sleep(0.2)
        s.interrupt(pb, "mosquitto_sub -i %ssub-b ..." % p)
        s.interrupt(pc, "mosquitto_sub -i %ssub-c ..." % p)


def sc_pubsub_paho(rec, ver):
    mqtt = paho()
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCodes
    from paho.mqtt.subscribeoptions import SubscribeOptions
    v5 = ver == "v5"
    b = Broker(rec, auth=True)
    desc = ("paho-mqtt %s clients (MQTT %s): client A (keepalive 1 s, will, "
            "username) subscribes to several filters%s; client B subscribes "
            "too; both publish at QoS 0/1/2 to each other (so QoS 1/2 flows "
            "go client->broker and broker->client); a retained publish; A "
            "stays idle ~2.5 s with its loop running (PINGREQ/PINGRESP); A "
            "unsubscribes; %s"
            % (paho_version(), "5.0" if v5 else "3.1.1",
               " with v5 subscription options (noLocal, retainAsPublished, "
               "retainHandling 0/1/2) and a subscription identifier"
               if v5 else "",
               "A disconnects with reason 0x04 (disconnect with will message, "
               "so the broker publishes A's will to B) and B disconnects with "
               "reason 0x00 plus Reason String and Session Expiry Interval "
               "properties." if v5 else "both disconnect normally."))
    with Scenario(rec, "%s-paho" % ver, b, desc) as s:
        p = "paho5-" if v5 else "paho311-"
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        if v5:
            A = mqtt.Client(p + "a", protocol=proto)
            B = mqtt.Client(p + "b", protocol=proto)
        else:
            A = mqtt.Client(p + "a", clean_session=True, protocol=proto)
            B = mqtt.Client(p + "b", clean_session=True, protocol=proto)
        sa, sb = PahoState(A, v5), PahoState(B, v5)
        A.username_pw_set("alice", "alicepw")
        B.username_pw_set("bob", "bobpw")
        wprops = None
        if v5:
            wprops = Properties(PacketTypes.WILLMESSAGE)
            wprops.ContentType = "text/plain"
            wprops.UserProperty = ("kind", "lwt")
        A.will_set("clients/%sa/status" % p, "offline", qos=1, retain=True,
                   properties=wprops)
        s.act("paho A: Client(%r, protocol=%s), username alice, will "
              "clients/%sa/status qos1 retain, connect keepalive=1"
              % (p + "a", "MQTTv5" if v5 else "MQTTv311", p))
        if v5:
            cp = Properties(PacketTypes.CONNECT)
            cp.SessionExpiryInterval = 60
            cp.ReceiveMaximum = 20
            cp.TopicAliasMaximum = 5
            cp.UserProperty = ("app", "wirewarden-recorder")
            A.connect(HOST, s.port, keepalive=1, clean_start=True,
                      properties=cp)
            cpb = Properties(PacketTypes.CONNECT)
            cpb.SessionExpiryInterval = 30
            B.connect(HOST, s.port, keepalive=30, clean_start=True,
                      properties=cpb)
        else:
            A.connect(HOST, s.port, keepalive=1)
            B.connect(HOST, s.port, keepalive=30)
        s.act("paho B: Client(%r), username bob, connect keepalive=30%s"
              % (p + "b", ", SessionExpiryInterval=30" if v5 else ""))
        both = [A, B]
        if not pump(both, 3, lambda: sa.connected and sb.connected):
            s.note("paho clients did not both get CONNACK")
        if v5:
            sp = Properties(PacketTypes.SUBSCRIBE)
            sp.SubscriptionIdentifier = 7
            sp.UserProperty = ("origin", "paho")
            A.subscribe([
                ("sensors/+/temp", SubscribeOptions(qos=0, noLocal=True)),
                ("home/#", SubscribeOptions(qos=1, retainAsPublished=True,
                                            retainHandling=0)),
                ("alerts/fire", SubscribeOptions(qos=2, retainHandling=2)),
                ("cmd/%sa/#" % p, SubscribeOptions(qos=2, retainHandling=1)),
            ], properties=sp)
            s.act("A subscribe: sensors/+/temp qos0 noLocal; home/# qos1 "
                  "retainAsPublished rh0; alerts/fire qos2 rh2; cmd/%sa/# qos2 "
                  "rh1; SubscriptionIdentifier 7, user property" % p)
        else:
            A.subscribe([("sensors/+/temp", 0), ("home/#", 1),
                         ("alerts/fire", 2), ("cmd/%sa/#" % p, 2)])
            s.act("A subscribe: sensors/+/temp 0, home/# 1, alerts/fire 2, "
                  "cmd/%sa/# 2" % p)
        B.subscribe([("cmd/%sb/#" % p, 2), ("clients/+/status", 1)])
        s.act("B subscribe: cmd/%sb/# 2, clients/+/status 1" % p)
        if not pump(both, 3, lambda: sa.subacks >= 1 and sb.subacks >= 1):
            s.note("missing SUBACK")
        # B -> A, at QoS 0/1/2 (and retained)
        pprops = None
        if v5:
            pprops = Properties(PacketTypes.PUBLISH)
            pprops.UserProperty = [("k", "v"), ("unit", "C")]
            pprops.ContentType = "text/plain"
            pprops.MessageExpiryInterval = 120
            pprops.PayloadFormatIndicator = 1
        B.publish("sensors/b1/temp", "20.5", qos=0, properties=pprops)
        B.publish("home/kitchen/light", "on", qos=1, properties=pprops)
        B.publish("alerts/fire", "smoke", qos=2, properties=pprops)
        B.publish("home/door", "closed", qos=1, retain=True)
        s.act("B publish: sensors/b1/temp q0, home/kitchen/light q1, "
              "alerts/fire q2%s, home/door q1 retained"
              % (" (user properties, content type, message expiry, payload "
                 "format)" if v5 else ""))
        # A -> B
        A.publish("cmd/%sb/set" % p, "1", qos=0)
        A.publish("cmd/%sb/set" % p, "2", qos=1)
        A.publish("cmd/%sb/set" % p, "3", qos=2)
        A.publish("sensors/a1/temp", "18.0", qos=1)  # A's own filter (noLocal)
        s.act("A publish: cmd/%sb/set q0, q1, q2; sensors/a1/temp q1 (matches "
              "A's own subscription%s)" % (p, ", noLocal" if v5 else ""))
        # B -> A on cmd
        B.publish("cmd/%sa/ack" % p, "ok", qos=2)
        s.act("B publish: cmd/%sa/ack q2" % p)
        pump(both, 1.0, lambda: len(sa.messages) >= 4 and
             len(sb.messages) >= 3)
        s.note("A received %d message(s), B received %d"
               % (len(sa.messages), len(sb.messages)))
        # idle with keepalive 1 -> PINGREQ/PINGRESP
        s.act("idle 2.5 s with both loops running (A keepalive 1 s)")
        pump(both, 2.5)
        if v5:
            up = Properties(PacketTypes.UNSUBSCRIBE)
            up.UserProperty = ("why", "done")
            A.unsubscribe(["home/#", "sensors/+/temp"], properties=up)
        else:
            A.unsubscribe(["home/#", "sensors/+/temp"])
        s.act("A unsubscribe: home/#, sensors/+/temp")
        if not pump(both, 3, lambda: sa.unsubacks >= 1):
            s.note("missing UNSUBACK")
        if v5:
            rc = ReasonCodes(PacketTypes.DISCONNECT,
                             "Disconnect with will message")
            A.disconnect(reasoncode=rc)
            s.act("A disconnect(reasoncode=0x04 'Disconnect with will "
                  "message')")
            pump(both, 2, lambda: sa.disconnected and len(
                [m for m in sb.messages if m[0].startswith("clients/")]) >= 1)
            dp = Properties(PacketTypes.DISCONNECT)
            dp.ReasonString = "recorder finished"
            dp.SessionExpiryInterval = 0
            dp.UserProperty = ("bye", "now")
            B.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT,
                                                "Normal disconnection"),
                         properties=dp)
            s.act("B disconnect(reasoncode=0x00, ReasonString, "
                  "SessionExpiryInterval=0, user property)")
        else:
            A.disconnect()
            B.disconnect()
            s.act("A.disconnect(); B.disconnect()")
        pump(both, 2, lambda: sa.disconnected and sb.disconnected)


def sc_v31(rec):
    b = Broker(rec, auth=True)
    desc = ("MQTT 3.1 (protocol name 'MQIsdp', level 3) with the mosquitto "
            "clients (-V mqttv31): a QoS 2 subscriber on two filters (keepalive "
            "5 s, it stays long enough to send PINGREQ), "
            "publishers at QoS 0/1/2 (one retained with a will), a persistent "
            "client that subscribes and unsubscribes, one refused login "
            "(wrong password), then the subscriber is stopped with SIGINT.")
    with Scenario(rec, "v31-pubsub", b, desc) as s:
        off = s.log_off()
        V = "mqttv31"
        sub = s.spawn([TOOLS["mosquitto_sub"]] + s.mqtt_args(V, "alice",
                                                             "alicepw") +
                      ["-i", "v31-sub", "-q", "2", "-k", "5", "-v",
                       "-t", "legacy/#", "-t", "legacy/+/x"])
        if not b.wait_log(off, r"Sending SUBACK to v31-sub", 5):
            s.note("v31 subscriber got no SUBACK")
        pub = [TOOLS["mosquitto_pub"]] + s.mqtt_args(V, "bob", "bobpw")
        s.run(pub + ["-i", "v31-pub0", "-q", "0", "-t", "legacy/a", "-m", "0"])
        s.run(pub + ["-i", "v31-pub1", "-q", "1", "-t", "legacy/b/x",
                     "-m", "1"])
        s.run(pub + ["-i", "v31-pub2", "-q", "2", "-r", "-t", "legacy/c",
                     "-m", "2", "--will-topic", "legacy/will",
                     "--will-payload", "v31 gone", "--will-qos", "1"])
        s.run([TOOLS["mosquitto_sub"]] + s.mqtt_args(V, "bob", "bobpw") +
              ["-i", "v31-unsub", "-c", "-q", "1", "-t", "legacy/#",
               "-U", "legacy/#", "-W", "1"])
        s.run([TOOLS["mosquitto_pub"]] + s.mqtt_args(V, "alice", "wrong") +
              ["-i", "v31-badpw", "-t", "legacy/a", "-m", "x"])
        s.run(pub + ["-i", "v31-clear", "-q", "1", "-r", "-n",
                     "-t", "legacy/c"])
        b.wait_log(off, r"Sending PUBLISH to v31-sub.*legacy/c", 2)
        if not b.wait_log(off, r"Received PINGREQ from v31-sub", 8):
            s.note("no PINGREQ from v31-sub within 8 s")
        b.wait_log(off, r"Sending PINGRESP to v31-sub", 1)
        time.sleep(0.2)
        s.interrupt(sub, "mosquitto_sub -V mqttv31 -i v31-sub ...")


def sc_takeover(rec, ver):
    mqtt = paho()
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    v5 = ver == "v5"
    b = Broker(rec, auth=False)
    cid = "takeover-%s" % ver
    desc = ("Session take-over (MQTT %s): paho client #1 connects as %r "
            "(persistent session%s), subscribes, then paho client #2 connects "
            "with the same client id while #1 is still connected. mosquitto "
            "closes the old connection%s; #2 resumes the session, publishes "
            "QoS 1 and disconnects."
            % ("5.0" if v5 else "3.1.1", cid,
               ", Session Expiry Interval 300" if v5 else
               ", clean_session=False",
               " after sending it DISCONNECT with reason 0x8E (session taken "
               "over)" if v5 else " (v3.1.1 has no server DISCONNECT)"))
    with Scenario(rec, "%s-takeover" % ver, b, desc) as s:
        off = s.log_off()
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311

        def mk():
            if v5:
                c = mqtt.Client(cid, protocol=proto)
            else:
                c = mqtt.Client(cid, clean_session=False, protocol=proto)
            return c, PahoState(c, v5)

        def conn(c, clean):
            if v5:
                cp = Properties(PacketTypes.CONNECT)
                cp.SessionExpiryInterval = 300
                c.connect(HOST, s.port, keepalive=30, clean_start=clean,
                          properties=cp)
            else:
                c.connect(HOST, s.port, keepalive=30)
        c1, s1 = mk()
        conn(c1, True)
        s.act("paho #1: Client(%r%s) connect keepalive=30%s"
              % (cid, ", clean_session=False" if not v5 else "",
                 ", clean_start=True, SessionExpiryInterval=300" if v5 else ""))
        pump([c1], 3, lambda: s1.connected)
        c1.subscribe("takeover/#", 1)
        s.act("paho #1: subscribe takeover/# qos1")
        pump([c1], 3, lambda: s1.subacks >= 1)
        c2, s2 = mk()
        t_conn = time.monotonic()
        conn(c2, False)
        s.act("paho #2: same client id, connect keepalive=30%s (while #1 is "
              "connected)" % (", clean_start=False, SessionExpiryInterval=300"
                              if v5 else ""))
        pump([c1, c2], 3, lambda: s2.connected and s1.disconnected)
        s.note("client #1 saw on_disconnect rc=%r after %.2f s"
               % (s1.disconnect_rc, time.monotonic() - t_conn))
        c2.publish("takeover/state", "resumed", qos=1)
        s.act("paho #2: publish takeover/state qos1")
        pump([c2], 2, lambda: len(s2.published) >= 1)
        # #2 receives its own publish (subscription from the resumed session)
        pump([c2], 0.5, lambda: len(s2.messages) >= 1)
        s.note("client #2 received %d message(s) via the taken-over session"
               % len(s2.messages))
        c2.disconnect()
        s.act("paho #2: disconnect()")
        pump([c2], 2, lambda: s2.disconnected)
        b.wait_log(off, r"Client %s (\[[^]]*\] )?disconnected" % cid, 1)


def sc_keepalive(rec, ver):
    v5 = ver == "v5"
    level = 5 if v5 else 4
    b = Broker(rec, auth=False)
    cid = "silent-%s" % ver
    desc = ("Keep-alive timeout (MQTT %s): a raw-socket client sends a "
            "hand-made CONNECT (client id %r, keepalive 2 s, clean session) "
            "and then stays silent until mosquitto drops it (MQTT says after "
            "1.5 x keepalive = 3 s; the client waits at most 9 s)." % ("5.0" if v5 else "3.1.1", cid))
    with Scenario(rec, "%s-keepalive" % ver, b, desc) as s:
        r = RawClient(s.port)
        r.send(build_connect(level, cid, keepalive=2))
        s.act("raw: CONNECT %s id=%s keepalive=2; then silent, read until "
              "EOF (max 9 s)" % ("v5" if v5 else "v3.1.1", cid))
        t0 = time.monotonic()
        r.read(9)
        if r.eof:
            s.note("broker closed the connection %.1f s after CONNECT; client "
                   "received %s" % (r.eof_at - t0, ", ".join(
                       describe(pk, level) for pk in r.packets)))
        else:
            s.note("connection still open after 9 s")
        r.close()


def sc_auth_refused(rec, ver):
    v5 = ver == "v5"
    V = "mqttv5" if v5 else "mqttv311"
    b = Broker(rec, auth=True)
    desc = ("Authentication refused (MQTT %s), broker with password_file and "
            "allow_anonymous false; mosquitto_pub tries: (stream 0) known user, "
            "wrong password; (1) unknown user; (2) no credentials at all; "
            "(3) username without password; (4) correct credentials (accepted, "
            "for contrast)." % ("5.0" if v5 else "3.1.1"))
    with Scenario(rec, "%s-auth-refused" % ver, b, desc) as s:
        base = [TOOLS["mosquitto_pub"], "-h", HOST, "-p", str(s.port),
                "-V", V, "-t", "secure/topic", "-m", "x", "-q", "1"]
        for i, (cid, cred) in enumerate([
                ("badpw-" + ver, ["-u", "alice", "-P", "wrong"]),
                ("nouser-" + ver, ["-u", "mallory", "-P", "x"]),
                ("anon-" + ver, []),
                ("nopw-" + ver, ["-u", "alice"]),
                ("good-" + ver, ["-u", "alice", "-P", "alicepw"])]):
            rc = s.run(base + ["-i", cid] + cred)
            s.note("stream %d (%s): mosquitto_pub exit status %s"
                   % (i, cid, rc))


def sc_proto_error(rec, ver, kind):
    level = {"v311": 4, "v5": 5, None: 4}[ver]
    b = Broker(rec, auth=False)
    label = {"v311": "MQTT 3.1.1", "v5": "MQTT 5.0", None: "no version"}[ver]
    name = "%s-err-%s" % (ver, kind) if ver else "err-%s" % kind
    cid = "bad-%s-%s" % (kind, ver)
    if kind == "double-connect":
        desc = ("Protocol error (%s): a raw-socket client sends CONNECT, gets "
                "CONNACK, subscribes, then sends a second CONNECT on the same "
                "connection." % label)
    elif kind == "publish-qos3":
        desc = ("Protocol error (%s): after CONNECT/CONNACK a raw-socket "
                "client sends a PUBLISH whose QoS bits are 3 (first byte "
                "0x36)." % label)
    elif kind == "reserved-type0":
        desc = ("Protocol error (%s): after CONNECT/CONNACK a raw-socket "
                "client sends a packet of the reserved type 0 (bytes 00 00)."
                % label)
    else:
        desc = ("Protocol error: the first packet on a connection is not "
                "CONNECT. Stream 0 starts with a QoS 0 PUBLISH, stream 1 with "
                "a SUBSCRIBE, stream 2 with a PINGREQ (no CONNECT, so level "
                "is 0 in fixtures.tsv).")
    with Scenario(rec, name, b, desc) as s:
        if kind == "first-not-connect":
            for first, txt in [
                    (build_publish(4, "no/connect", b"hello"),
                     "PUBLISH qos0 topic no/connect"),
                    (build_subscribe(4, 1, [("no/connect/#", 0)]),
                     "SUBSCRIBE no/connect/#"),
                    (bytes([0xC0, 0x00]), "PINGREQ")]:
                r = RawClient(s.port)
                r.send(first)
                s.act("raw: first packet %s, read until EOF (max 3 s)" % txt)
                t0 = time.monotonic()
                r.read(3)
                s.note("%s first: %s; %s" % (
                    txt, "received " + (", ".join(describe(p, 0) for p in
                                                  r.packets) or "nothing"),
                    "broker closed after %.2f s" % (r.eof_at - t0)
                    if r.eof else "still open after 3 s"))
                r.close()
            return
        r = RawClient(s.port)
        r.send(build_connect(level, cid, keepalive=30))
        s.act("raw: CONNECT level %d id=%s keepalive=30" % (level, cid))
        r.read(2, npackets=1)
        if kind == "double-connect":
            r.send(build_subscribe(level, 1, [("err/#", 1)]))
            s.act("raw: SUBSCRIBE err/# qos1")
            r.read(2, npackets=2)
            bad = build_connect(level, cid, keepalive=30)
            what = "second CONNECT (identical)"
        elif kind == "publish-qos3":
            bad = build_publish(level, "err/qos3", b"qos three", pid=7,
                                first_byte=0x36)
            what = "PUBLISH with QoS 3 (0x36, packet id 7)"
        else:
            bad = bytes([0x00, 0x00])
            what = "reserved packet type 0 (00 00)"
        n0 = len(r.packets)
        r.send(bad)
        s.act("raw: %s, read until EOF (max 3 s)" % what)
        t0 = time.monotonic()
        r.read(3)
        s.note("after the %s the client received %s; %s" % (
            what, ", ".join(describe(p, level) for p in r.packets[n0:])
            or "nothing",
            "broker closed after %.2f s" % (r.eof_at - t0) if r.eof
            else "connection still open after 3 s"))
        r.close()


def sc_auth_method(rec):
    b = Broker(rec, auth=False)
    desc = ("MQTT 5.0 enhanced authentication: CONNECT carrying an "
            "Authentication Method property (and Authentication Data); "
            "mosquitto has no auth plugin for it. Stream 0 is mosquitto_pub "
            "(-D connect authentication-method SCRAM-SHA-1 -D connect "
            "authentication-data ...), stream 1 a raw-socket client sending "
            "only the method property.")
    with Scenario(rec, "v5-auth-method", b, desc) as s:
        rc = s.run([TOOLS["mosquitto_pub"]] + s.mqtt_args("mqttv5") +
                   ["-i", "scram-client", "-t", "auth/test", "-m", "x",
                    "-D", "connect", "authentication-method", "SCRAM-SHA-1",
                    "-D", "connect", "authentication-data",
                    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"])
        s.note("mosquitto_pub exit status %s" % rc)
        r = RawClient(s.port)
        r.send(build_connect(5, "raw-auth-method", keepalive=30,
                             conn_props=props((0x15, enc_str("PLAIN")))))
        s.act("raw: CONNECT v5 id=raw-auth-method with property 0x15 "
              "Authentication Method 'PLAIN', read until EOF (max 3 s)")
        r.read(3)
        s.note("raw client received %s; %s" % (
            ", ".join(describe(p, 5) for p in r.packets) or "nothing",
            "then EOF" if r.eof else "connection still open"))
        r.close()


def sc_demo(rec):
    mqtt = paho()
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    b = Broker(rec, auth=True)
    desc = ("Demo (~25 s, one broker with password_file): a v5 dashboard "
            "(mosquitto_sub, QoS 1, `plant/#`) and a v3.1.1 alarm monitor "
            "(mosquitto_sub QoS 2, `plant/+/alarm`) listen; three paho sensors "
            "(sensor-1 v3.1.1 QoS 0 every 1 s, sensor-2 v5 QoS 1 every 2 s, "
            "sensor-3 v3.1.1 QoS 2 every 3 s, keepalive 5 s) publish; a "
            "retained config message at start; at ~4 s a raw v3.1.1 gateway "
            "'flaky-gw' connects with keepalive 2 s and goes silent (keep-alive "
            "timeout); at ~8 s a second sensor-2 (v5) takes over the session "
            "of the first (DISCONNECT 0x8E to the old one); at ~12 s an "
            "intruder tries a wrong password (CONNACK refused); at ~15 s "
            "sensor-3 raises an alarm; at the end everything disconnects.")
    with Scenario(rec, "demo", b, desc) as s:
        off = s.log_off()
        dash = s.spawn([TOOLS["mosquitto_sub"]] + s.mqtt_args(
            "mqttv5", "dashboard", "dashpw") + ["-i", "dashboard", "-q", "1",
                                                "-k", "10", "-v",
                                                "-t", "plant/#"])
        alarm = s.spawn([TOOLS["mosquitto_sub"]] + s.mqtt_args(
            "mqttv311", "dashboard", "dashpw") + ["-i", "alarm-monitor",
                                                  "-q", "2",
                                                  "-t", "plant/+/alarm"])
        b.wait_log(off, r"Sending SUBACK to (dashboard|alarm-monitor)", 5, 2)
        s.run([TOOLS["mosquitto_pub"]] + s.mqtt_args("mqttv311", "alice",
                                                     "alicepw") +
              ["-i", "config-tool", "-q", "1", "-r", "-t",
               "plant/config/interval", "-m", "1s"])

        def sensor(cid, v5, qos, will=True):
            if v5:
                c = mqtt.Client(cid, protocol=mqtt.MQTTv5)
            else:
                c = mqtt.Client(cid, clean_session=True,
                                protocol=mqtt.MQTTv311)
            st = PahoState(c, v5)
            c.username_pw_set("sensor", "sensorpw")
            if will:
                c.will_set("plant/%s/status" % cid, "offline", qos=1,
                           retain=True)
            if v5:
                cp = Properties(PacketTypes.CONNECT)
                cp.SessionExpiryInterval = 120
                c.connect(HOST, s.port, keepalive=5, clean_start=False,
                          properties=cp)
            else:
                c.connect(HOST, s.port, keepalive=5)
            return c, st
        s1 = sensor("sensor-1", False, 0)
        s2 = sensor("sensor-2", True, 1)
        s3 = sensor("sensor-3", False, 2)
        s.act("paho sensor-1 (v3.1.1, qos0/1 s), sensor-2 (v5, qos1/2 s, "
              "SessionExpiryInterval 120), sensor-3 (v3.1.1, qos2/3 s), "
              "user sensor, keepalive 5, retained will plant/<id>/status")
        sensors = {"sensor-1": [s1, 0, 1.0], "sensor-2": [s2, 1, 2.0],
                   "sensor-3": [s3, 2, 3.0]}
        clients = lambda: [v[0][0] for v in sensors.values()]  # noqa: E731
        pump(clients(), 3, lambda: all(v[0][1].connected
                                       for v in sensors.values()))
        for name, v in sensors.items():
            v[0][0].publish("plant/%s/status" % name, "online", qos=1,
                            retain=True)
        t0 = time.monotonic()
        nxt = {k: t0 for k in sensors}
        raws = []
        events = {"gw": 4.0, "takeover": 8.0, "intruder": 12.0,
                  "alarm": 15.0}
        done = set()
        old_s2 = None
        seq = 0
        while time.monotonic() - t0 < 24.0:
            now = time.monotonic()
            el = now - t0
            for name, v in sensors.items():
                if now >= nxt[name]:
                    seq += 1
                    val = "%.1f" % (20 + (seq * 7 % 50) / 10.0)
                    v[0][0].publish("plant/%s/temp" % name, val, qos=v[1])
                    nxt[name] = now + v[2]
            if el >= events["gw"] and "gw" not in done:
                done.add("gw")
                gw = RawClient(s.port)
                gw.send(build_connect(4, "flaky-gw", keepalive=2,
                                      user="sensor", password="sensorpw"))
                raws.append(gw)
                s.act("t=%.0fs raw: CONNECT v3.1.1 id=flaky-gw keepalive=2 "
                      "(user sensor), then silent" % el)
            if el >= events["takeover"] and "takeover" not in done:
                done.add("takeover")
                old_s2 = sensors["sensor-2"][0]
                sensors["sensor-2"] = [sensor("sensor-2", True, 1), 1, 2.0]
                s.act("t=%.0fs paho: a second sensor-2 (v5, clean_start=False) "
                      "connects -> session take-over" % el)
            if el >= events["intruder"] and "intruder" not in done:
                done.add("intruder")
                # run in background so the pump keeps going
                s.spawn([TOOLS["mosquitto_pub"]] + s.mqtt_args(
                    "mqttv311", "alice", "letmein") +
                    ["-i", "intruder", "-t", "plant/sensor-1/temp", "-m",
                     "99.9"])
            if el >= events["alarm"] and "alarm" not in done:
                done.add("alarm")
                sensors["sensor-3"][0][0].publish(
                    "plant/sensor-3/alarm", "overheat", qos=2)
                s.act("t=%.0fs sensor-3 publish plant/sensor-3/alarm qos2"
                      % el)
            extra = [old_s2[0]] if old_s2 and not old_s2[1].disconnected \
                else []
            pump(clients() + extra, 0.05, raws=raws)
        if old_s2:
            s.note("old sensor-2 on_disconnect rc=%r" % old_s2[1].disconnect_rc)
        for r in raws:
            if r.eof:
                s.note("flaky-gw: broker closed the connection %.1f s after "
                       "it connected" % (r.eof_at - t0 - events["gw"]))
            r.close()
        for name, v in sensors.items():
            v[0][0].publish("plant/%s/status" % name, "offline", qos=1,
                            retain=True)
        pump(clients(), 1)
        for name, v in sensors.items():
            v[0][0].disconnect()
        pump(clients(), 2, lambda: all(v[0][1].disconnected
                                       for v in sensors.values()))
        s.act("all sensors publish retained 'offline' status and disconnect; "
              "SIGINT to both mosquitto_sub")
        s.interrupt(alarm, "mosquitto_sub -i alarm-monitor")
        s.interrupt(dash, "mosquitto_sub -i dashboard")


def _ver(ver):
    v5 = ver == "v5"
    return v5, (5 if v5 else 4), ("mqttv5" if v5 else "mqttv311"), \
        ("5.0" if v5 else "3.1.1")


def _wait_eof(r, seconds):
    r.read(seconds)
    return r.eof


def sc_client_vanished(rec, ver):
    v5, level, V, label = _ver(ver)
    b = Broker(rec, auth=False)
    desc = ("Clients that go away without DISCONNECT (MQTT %s). Stream 0: "
            "mosquitto_sub (QoS 1 subscriber, keepalive 30 s) killed with "
            "SIGKILL: its kernel closes the socket with FIN. Stream 1: a "
            "raw-socket client sends CONNECT, gets CONNACK, subscribes, then "
            "closes with RST (SO_LINGER 0)." % label)
    with Scenario(rec, "%s-client-vanished" % ver, b, desc) as s:
        off = s.log_off()
        cid = "killed-" + ver
        p = s.spawn([TOOLS["mosquitto_sub"]] + s.mqtt_args(V) +
                    ["-i", cid, "-q", "1", "-k", "30", "-t", "vanish/#"])
        if not b.wait_log(off, r"Sending SUBACK to %s" % cid, 5):
            s.note("%s got no SUBACK within 5 s" % cid)
        s.act("SIGKILL to `mosquitto_sub -i %s ...`" % cid)
        p.kill()
        p.wait(5)
        if not b.wait_log(off, r"Client %s (\[[^]]*\] )?(%s)" % (cid, CLOSED_RE), 3):
            s.note("mosquitto did not log %s closing within 3 s" % cid)
        cid = "reset-" + ver
        r = RawClient(s.port)
        r.send(build_connect(level, cid, keepalive=30))
        r.read(2, npackets=1)
        r.send(build_subscribe(level, 1, [("vanish/#", 1)]))
        r.read(2, npackets=2)
        s.act("raw: CONNECT level %d id=%s, SUBSCRIBE vanish/# qos1, then "
              "close with RST (SO_LINGER 0)" % (level, cid))
        r.reset()
        if not b.wait_log(off, r"%s" % cid + r".*(closed its connection|"
                          r"disconnect|[Ss]ocket error)", 3):
            s.note("mosquitto did not log %s going away within 3 s" % cid)


def sc_server_shutdown(rec, ver):
    v5, level, V, label = _ver(ver)
    b = Broker(rec, auth=False)
    desc = ("Broker shutdown (MQTT %s): two raw-socket clients (shut-a, "
            "shut-b) connect and subscribe, then mosquitto is stopped with "
            "SIGTERM while they are connected; the clients read until EOF "
            "(max 3 s) and close. Does mosquitto send DISCONNECT 0x8B (server "
            "shutting down) to the %s clients?" % (label, label))
    with Scenario(rec, "%s-server-shutdown" % ver, b, desc) as s:
        rs = []
        for name in ("shut-a-" + ver, "shut-b-" + ver):
            r = RawClient(s.port)
            r.send(build_connect(level, name, keepalive=30))
            r.read(2, npackets=1)
            r.send(build_subscribe(level, 1, [("shutdown/#", 1)]))
            r.read(2, npackets=2)
            s.act("raw: CONNECT level %d id=%s, SUBSCRIBE shutdown/# qos1"
                  % (level, name))
            rs.append((name, r))
        s.act("SIGTERM to mosquitto")
        b.proc.terminate()
        try:
            b.proc.wait(5)
        except subprocess.TimeoutExpired:
            s.note("mosquitto did not exit within 5 s of SIGTERM")
        for name, r in rs:
            n0 = len(r.packets)
            eof = _wait_eof(r, 3)
            s.note("%s received %s after the SIGTERM; %s" % (
                name, ", ".join(describe(p, level) for p in r.packets[n0:])
                or "nothing", "then EOF" if eof else "still open after 3 s"))
            r.close()


def sc_server_shutdown_many(rec):
    b = Broker(rec, auth=False)
    names = [("shut-many-v311-%s" % x, 4) for x in "abc"] + \
        [("shut-many-v5-%s" % x, 5) for x in "abc"]
    desc = ("Broker shutdown with several clients (MQTT 3.1.1 and 5.0): six "
            "raw-socket clients (three of each level) connect and subscribe, "
            "a seventh (left-early, 3.1.1) connects and leaves with "
            "DISCONNECT; then mosquitto is stopped with SIGTERM while the six "
            "are connected; they read until EOF (max 3 s) and close. The "
            "broker closes all six at once, without DISCONNECT: 6 of 6.")
    with Scenario(rec, "server-shutdown-many", b, desc) as s:
        rs = []
        for name, level in names:
            r = RawClient(s.port)
            r.send(build_connect(level, name, keepalive=30))
            r.read(2, npackets=1)
            r.send(build_subscribe(level, 1, [("shutdown/#", 1)]))
            r.read(2, npackets=2)
            s.act("raw: CONNECT level %d id=%s, SUBSCRIBE shutdown/# qos1"
                  % (level, name))
            rs.append((name, level, r))
        e = RawClient(s.port)
        e.send(build_connect(4, "left-early", keepalive=30))
        e.read(2, npackets=1)
        e.send(build_disconnect(4))
        _wait_eof(e, 2)
        e.close()
        s.act("raw: CONNECT level 4 id=left-early, DISCONNECT, close")
        time.sleep(0.3)
        s.act("SIGTERM to mosquitto")
        b.proc.terminate()
        try:
            b.proc.wait(5)
        except subprocess.TimeoutExpired:
            s.note("mosquitto did not exit within 5 s of SIGTERM")
        for name, level, r in rs:
            n0 = len(r.packets)
            eof = _wait_eof(r, 3)
            s.note("%s received %s after the SIGTERM; %s" % (
                name, ", ".join(describe(p, level) for p in r.packets[n0:])
                or "nothing", "then EOF" if eof else "still open after 3 s"))
            r.close()


def sc_packet_too_large(rec, ver):
    v5, level, V, label = _ver(ver)
    b = Broker(rec, auth=False, extra=["max_packet_size 100"])
    cid = "big-" + ver
    desc = ("Packet too large (MQTT %s): mosquitto with `max_packet_size "
            "100`; a raw-socket client connects (id %s) and publishes a QoS 0 "
            "message of 300 bytes, then reads until EOF (max 3 s)."
            % (label, cid))
    with Scenario(rec, "%s-packet-too-large" % ver, b, desc) as s:
        r = RawClient(s.port)
        r.send(build_connect(level, cid, keepalive=30))
        r.read(2, npackets=1)
        s.note("CONNACK: %s" % (r.packets[0].hex() if r.packets else "none"))
        r.send(build_publish(level, "big/payload", b"x" * 300))
        s.act("raw: CONNECT level %d id=%s; PUBLISH qos0 big/payload with "
              "300 bytes of payload; read until EOF (max 3 s)" % (level, cid))
        n0 = len(r.packets)
        eof = _wait_eof(r, 3)
        s.note("after the PUBLISH the client received %s; %s" % (
            ", ".join(describe(p, level) for p in r.packets[n0:]) or "nothing",
            "then EOF" if eof else "still open after 3 s"))
        r.close()


def sc_receive_maximum(rec, ver):
    v5, level, V, label = _ver(ver)
    b = Broker(rec, auth=False, extra=["max_inflight_messages 2"])
    cid = "rm-" + ver
    desc = ("Receive Maximum overrun (MQTT %s): mosquitto with "
            "`max_inflight_messages 2` (announced as Receive Maximum 2 in a v5 "
            "CONNACK); a raw-socket client sends five QoS 2 PUBLISH (packet "
            "ids 1-5) in one write without waiting for PUBREC, then completes "
            "the flows mosquitto accepted (PUBREL for each PUBREC without an "
            "error code), and disconnects cleanly." % label)
    with Scenario(rec, "%s-receive-maximum" % ver, b, desc) as s:
        off = s.log_off()
        r = RawClient(s.port)
        r.send(build_connect(level, cid, keepalive=30))
        r.read(2, npackets=1)
        s.note("CONNACK: %s" % (r.packets[0].hex() if r.packets else "none"))
        burst = b"".join(build_publish(level, "rm/t", b"m%d" % i, qos=2, pid=i)
                         for i in range(1, 6))
        r.send(burst)
        s.act("raw: CONNECT level %d id=%s; five PUBLISH qos2 rm/t (ids 1-5) "
              "in one write" % (level, cid))
        r.read(3, npackets=6)
        recs = [p for p in r.packets[1:] if p[0] >> 4 == 5]
        codes = []
        for p in recs:
            o = body_offset(p)
            pid = struct.unpack("!H", p[o:o + 2])[0]
            rc = p[o + 2] if len(p) > o + 2 else 0
            codes.append((pid, rc))
        s.note("PUBREC (packet id, reason code on the wire): %s" % codes)
        rel = [pid for pid, rc in codes if rc < 0x80]
        for pid in rel:
            r.send(packet(0x62, struct.pack("!H", pid)))
        s.act("raw: PUBREL for packet ids %s; read the PUBCOMPs; DISCONNECT"
              % rel)
        r.read(3, npackets=1 + len(recs) + len(rel))
        r.send(build_disconnect(level, 0))
        _wait_eof(r, 3)
        r.close()
        b.wait_log(off, r"Client %s (\[[^]]*\] )?disconnected" % cid, 2)


def sc_takeover_storm(rec, ver):
    v5, level, V, label = _ver(ver)
    b = Broker(rec, auth=False)
    cid = "twin-" + ver
    n = 8
    desc = ("Take-over storm (MQTT %s): two raw-socket clients share the "
            "client id %r, one from 127.0.0.2 and one from 127.0.0.3, and "
            "connect alternately, %d CONNECTs ~0.2 s apart: each CONNECT makes "
            "mosquitto close the other's connection; the kicked client reads "
            "until EOF and closes. The last one disconnects cleanly."
            % (label, cid, n))
    with Scenario(rec, "%s-takeover-storm" % ver, b, desc) as s:
        off = s.log_off()
        prev = None
        for k in range(n):
            src = "127.0.0.2" if k % 2 == 0 else "127.0.0.3"
            r = RawClient(s.port, bind=src)
            r.send(build_connect(level, cid, keepalive=30))
            r.read(2, npackets=1)
            if prev is not None:
                _wait_eof(prev, 2)
                prev.close()
            prev = r
            time.sleep(0.2)
        s.act("raw: %d x CONNECT level %d id=%s, alternately from 127.0.0.2 "
              "and 127.0.0.3; each previous connection read until EOF, then "
              "closed" % (n, level, cid))
        prev.send(build_disconnect(level, 0))
        _wait_eof(prev, 2)
        prev.close()
        s.act("the last connection: DISCONNECT")
        if not b.wait_log(off, TAKEOVER_RE, 3, n - 1):
            s.note("fewer than %d take-overs logged" % (n - 1))


def sc_slow_consumer(rec, ver):
    v5, level, V, label = _ver(ver)
    b = Broker(rec, auth=False)
    ping, stuck, flood = "slow-ping-" + ver, "stuck-" + ver, "flooder-" + ver
    desc = ("Clients that stop reading (MQTT %s). Two raw-socket subscribers "
            "with a 4 KiB receive buffer and keepalive 2 s subscribe to "
            "flood/#, then stop reading: %s keeps sending PINGREQ every "
            "second, %s sends nothing at all. A third client (%s) publishes "
            "150 QoS 0 messages of 1000 bytes to flood/x, so both windows "
            "close. After ~6 s %s sends DISCONNECT, %s closes with RST, the "
            "publisher disconnects. mosquitto 2.0.11 has no slow-consumer "
            "disconnect: the pinging client stays connected; the silent one "
            "times out in mosquitto's log, but no FIN can pass its zero window, "
            "so the wire never shows the broker's close."
            % (label, ping, stuck, flood, ping, stuck))
    with Scenario(rec, "%s-slow-consumer" % ver, b, desc) as s:
        off = s.log_off()
        subs = {}
        for name in (ping, stuck):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(3)
            sock.connect((HOST, s.port))
            sock.sendall(build_connect(level, name, keepalive=2))
            sock.sendall(build_subscribe(level, 1, [("flood/#", 0)]))
            subs[name] = sock
        if not b.wait_log(off, r"Sending SUBACK to (%s|%s)" % (ping, stuck),
                          5, 2):
            s.note("the subscribers got no SUBACK within 5 s")
        s.act("raw: %s and %s (SO_RCVBUF 4096): CONNECT level %d keepalive "
              "2, SUBSCRIBE flood/# qos0; from then on they never read"
              % (ping, stuck, level))
        pub = RawClient(s.port)
        pub.send(build_connect(level, flood, keepalive=60))
        pub.read(2, npackets=1)
        msg = build_publish(level, "flood/x", b"y" * 1000)
        pub.sock.settimeout(5)
        sent = 0
        try:
            for _ in range(150):
                pub.send(msg)
                sent += 1
        except OSError as e:
            s.note("publisher stopped after %d messages: %s" % (sent, e))
        s.act("raw: %s publishes %d x 1000-byte QoS 0 messages to flood/x"
              % (flood, sent))
        for _ in range(6):
            time.sleep(1)
            subs[ping].sendall(bytes([0xC0, 0x00]))
        s.act("6 s: %s sends PINGREQ every second, %s nothing" % (ping, stuck))
        if not b.wait_log(off, r"%s (\[[^]]*)?%s" % (stuck, TIMEOUT_RE), 1):
            s.note("mosquitto did not time %s out" % stuck)
        if b.wait_log(off, r"%s (\[[^]]*\] )?(has exceeded timeout|closed its|disconnect)"
                      % ping, 0.1):
            s.note("mosquitto disconnected %s before its DISCONNECT" % ping)
        subs[ping].sendall(build_disconnect(level, 0))
        time.sleep(0.3)
        subs[ping].close()
        subs[stuck].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack("ii", 1, 0))
        subs[stuck].close()
        s.act("%s: DISCONNECT, close; %s: close with RST (SO_LINGER 0)"
              % (ping, stuck))
        pub.send(build_disconnect(level, 0))
        _wait_eof(pub, 3)
        pub.close()
        b.wait_log(off, r"Client %s (\[[^]]*\] )?disconnected" % flood, 2)


def describe(pkt, level):
    t = pkt[0] >> 4
    n = TYPE_NAMES[t]
    rc = reason_code(pkt, level) if t in (2, 14) else None
    if rc is not None:
        n += " 0x%02X" % rc
    return n


# ---------------------------------------------------------------------------
# Extraction with tshark
# ---------------------------------------------------------------------------

def tshark_segments(pcap):
    cmd = [TOOLS["tshark"], "-r", pcap, "-Y", "tcp.len>0", "-T", "fields",
           "-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.srcport",
           "-e", "tcp.dstport", "-e", "tcp.seq", "-e", "tcp.len",
           "-e", "tcp.payload"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        die("tshark failed on %s: %s" % (pcap, r.stderr.strip()))
    segs = []
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if len(f) < 7 or not f[6]:
            continue
        segs.append((int(f[0]), int(f[1]), int(f[2]), int(f[3]), int(f[4]),
                     int(f[5]), bytes.fromhex(f[6].replace(":", ""))))
    return segs


def extract(pcap, port):
    """Return (rows, problems): rows = (stream, dir, level, index, bytes)."""
    segs = tshark_segments(pcap)
    data = collections.OrderedDict()   # (stream, dir) -> bytearray
    nextseq = {}
    problems = []
    for frame, stream, sport, dport, seq, ln, payload in sorted(segs):
        if dport == port:
            d = "c2s"
        elif sport == port:
            d = "s2c"
        else:
            continue
        key = (stream, d)
        buf = data.setdefault(key, bytearray())
        exp = nextseq.get(key)
        if exp is not None and seq != exp:
            if seq < exp:   # retransmission / overlap: keep only new bytes
                skip = exp - seq
                payload = payload[skip:]
                if not payload:
                    continue
            else:
                problems.append("frame %d: gap of %d bytes in stream %d %s"
                                % (frame, seq - exp, stream, d))
        buf.extend(payload)
        nextseq[key] = max(exp or 0, seq + ln)
    streams = sorted({k[0] for k in data})
    rows = []
    for st in streams:
        c2s, lc, ec = split_packets(bytes(data.get((st, "c2s"), b"")))
        s2c, ls, es = split_packets(bytes(data.get((st, "s2c"), b"")))
        level = connect_level(c2s[0]) if c2s else 0
        for d, pk, left, err in (("c2s", c2s, lc, ec), ("s2c", s2c, ls, es)):
            if left or err:
                problems.append("stream %d %s: %d trailing byte(s) not a "
                                "whole packet%s" % (st, d, left,
                                                    " (%s)" % err if err
                                                    else ""))
            for i, p in enumerate(pk):
                rows.append((st, d, level, i, p))
    return rows, problems


def tshark_closers(pcap, port):
    """stream -> text saying which side sent the first FIN/RST."""
    cmd = [TOOLS["tshark"], "-r", pcap, "-Y",
           "tcp.flags.fin==1 || tcp.flags.reset==1", "-T", "fields",
           "-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.srcport",
           "-e", "tcp.flags.fin", "-e", "tcp.flags.reset"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if len(f) < 5:
            continue
        st = int(f[1])
        if st in out:
            continue
        who = "server" if int(f[2]) == port else "client"
        what = "RST" if f[4] in ("1", "True") else "FIN"
        out[st] = "%s closed first (%s)" % (who, what)
    return out


def tshark_mqtt_counts(pcap, port):
    cmd = [TOOLS["tshark"], "-r", pcap, "-d", "tcp.port==%d,mqtt" % port,
           "-Y", "mqtt", "-T", "fields", "-e", "tcp.srcport",
           "-e", "mqtt.hdrflags"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    cnt = collections.Counter()
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if len(f) < 2 or not f[1]:
            continue
        d = "s2c" if int(f[0]) == port else "c2s"
        for h in f[1].split(","):
            cnt[(d, int(h, 16) >> 4)] += 1
    return cnt


# ---------------------------------------------------------------------------
# Expectations about what each scenario must contain
# ---------------------------------------------------------------------------

ALL_TYPES = list(range(1, 15))


def check(rec, sc, rows, closers, problems):
    fails = []
    cnt = collections.Counter((d, p[0] >> 4) for _, d, _, _, p in rows)
    levels = {st: lv for st, _, lv, _, _ in rows}

    def has(d, t, n=1):
        return cnt[(d, t)] >= n

    def codes(d, t):
        return [reason_code(p, lv) for _, dd, lv, _, p in rows
                if dd == d and p[0] >> 4 == t]

    def need(cond, msg):
        if not cond:
            fails.append("%s: %s" % (sc.name, msg))
    n = sc.name
    # tcpdump's "dropped by kernel" also counts what lo carried for other
    # programs before the filter was in place (libpcap on Linux, immediate
    # mode): a loss only matters when it left a gap in a stream (below).
    if sc.dropped:
        sc.note("tcpdump counted %d packet(s) dropped by kernel (libpcap also "
                "counts traffic seen before its filter was set); every stream "
                "is checked for gaps below" % sc.dropped)
    # A client that stops reading leaves the broker's last PUBLISH to it cut
    # by its zero window: trailing s2c bytes are what that scenario shows.
    need(not [p for p in problems if p.startswith(n + ":") and not (
        n.endswith("-slow-consumer") and "s2c" in p and "trailing" in p)],
         "TCP stream gaps / trailing bytes (see reassembly notes)")
    if n.endswith("-pubsub") or n.endswith("-paho"):
        for t in ALL_TYPES:
            need(cnt[("c2s", t)] + cnt[("s2c", t)] > 0,
                 "no %s packet" % TYPE_NAMES[t])
        for t in (3, 4, 5, 6, 7):
            need(has("c2s", t) and has("s2c", t),
                 "%s not seen in both directions" % TYPE_NAMES[t])
        want = {"v311": 4, "v5": 5, "v31": 3}[n.split("-")[0]]
        need(set(levels.values()) == {want},
             "levels %s, want %d" % (sorted(set(levels.values())), want))
    if n == "v5-paho":
        need(0x04 in codes("c2s", 14), "no client DISCONNECT 0x04")
    if n == "v5-pubsub":
        need(0x04 in codes("c2s", 14), "no mosquitto_sub DISCONNECT 0x04")
    if n.endswith("-takeover"):
        need(cnt[("s2c", 2)] == 2, "want 2 CONNACKs")
        need(re.search(TAKEOVER_RE, sc.log_text),
             "no take-over log line")
        need(closers.get(0, "").startswith("server"),
             "old connection (stream 0) not closed by the server first")
    if n.endswith("-keepalive"):
        need(re.search(TIMEOUT_RE, sc.log_text),
             "no 'exceeded timeout' log line")
        need(not has("c2s", 12), "client must not ping")
    if n == "v311-auth-refused":
        need(sorted(codes("s2c", 2)) == [0, 5, 5, 5, 5] or
             set(codes("s2c", 2)) - {0} <= {4, 5},
             "unexpected CONNACK codes %s" % codes("s2c", 2))
        need(any(c in (4, 5) for c in codes("s2c", 2)), "no refusal")
    if n == "v5-auth-refused":
        need(any(c in (0x86, 0x87) for c in codes("s2c", 2)),
             "no CONNACK 0x86/0x87 (got %s)" % codes("s2c", 2))
    if n == "v5-auth-method":
        need(any(c is not None and c >= 0x80 for c in codes("s2c", 2)),
             "auth method CONNECT not refused (%s)" % codes("s2c", 2))
    if n == "demo":
        need(re.search(TAKEOVER_RE, sc.log_text),
             "demo: no take-over")
        need(any(c in (4, 5) for c in codes("s2c", 2)),
             "demo: no refused CONNACK")
        need(re.search(TIMEOUT_RE, sc.log_text),
             "demo: no keep-alive timeout")
        need(os.path.getsize(sc.pcap) < 200 * 1024, "demo.pcap >= 200 KB")
    if n.endswith("-client-vanished"):
        need(len(re.findall(CLOSED_RE, sc.log_text)) >= 2,
             "mosquitto did not log both clients closing")
        need(not has("c2s", 14), "a client sent DISCONNECT")
    if n.endswith("-server-shutdown"):
        need("terminating" in sc.log_text, "mosquitto did not log terminating")
        need(all(c.startswith("server") for c in closers.values()),
             "not every connection was closed by the server first")
    if n == "server-shutdown-many":
        need("terminating" in sc.log_text, "mosquitto did not log terminating")
        # six by the shutdown, and left-early's after its DISCONNECT
        need(sum(c.startswith("server") for c in closers.values()) == 7,
             "the server did not close all seven connections first")
        need(re.search(r"Client left-early (\[[^]]*\] )?disconnected\.", sc.log_text),
             "mosquitto did not log left-early's DISCONNECT")
    if n.endswith("-packet-too-large"):
        need(re.search(r"oversize packet|sent too large packet", sc.log_text),
             "no 'oversize packet' log line")
    if n == "v5-packet-too-large":
        need(0x95 in codes("s2c", 14), "no DISCONNECT 0x95 from the broker")
    if n.endswith("-receive-maximum"):
        need(cnt[("s2c", 5)] == 5, "want 5 PUBREC")
        # 1.6 does not hold clients to its Receive Maximum
        need("rc151" in sc.log_text or mosquitto_version().startswith("1."),
             "mosquitto refused no PUBLISH (rc151)")
    if n.endswith("-takeover-storm"):
        need(len(re.findall(TAKEOVER_RE, sc.log_text)) >= 7,
             "fewer than 7 take-overs")
    if n.endswith("-slow-consumer"):
        need(re.search(r"stuck-%s (\[[^]]*)?%s" % (n.split("-")[0], TIMEOUT_RE),
                       sc.log_text),
             "the silent client did not time out")
        need(not re.search(r"slow-ping-\S+ (\[[^]]*)?%s" % TIMEOUT_RE, sc.log_text),
             "the pinging client timed out")
    if n == "err-first-not-connect":
        need(set(levels.values()) == {0}, "levels should be 0")
        need(not has("s2c", 2), "broker must not CONNACK")
    return fails


# ---------------------------------------------------------------------------
# Notable log lines / report
# ---------------------------------------------------------------------------

NOTABLE = re.compile(
    r"New client connected|already connected|exceeded timeout|disconnected|"
    r"Bad client|"
    r"closed its connection|Sending CONNACK|Sending DISCONNECT|[Pp]rotocol "
    r"error|not authori|[Ee]rror|Received DISCONNECT|Bad |malformed|Denied|"
    r"Will message specified|Socket")


def notable_lines(text):
    return [l for l in text.splitlines() if NOTABLE.search(l)]


def write_outputs(rec, versions, started, all_rows, xcheck, problems, fails,
                  closers):
    out = rec.outdir
    with open(os.path.join(out, "fixtures.tsv"), "w") as f:
        f.write("scenario\tstream\tdir\tlevel\tindex\thex\n")
        for sc in rec.scenarios:
            for st, d, lv, i, p in all_rows[sc.name]:
                f.write("%s\t%d\t%s\t%d\t%d\t%s\n"
                        % (sc.name, st, d, lv, i, p.hex()))
    counts = {}
    with open(os.path.join(out, "fixtures-summary.tsv"), "w") as f:
        f.write("scenario\tdir\tstreams\ttotal\t%s\n"
                % "\t".join(TYPE_NAMES[t] for t in range(16)))
        for sc in rec.scenarios:
            rows = all_rows[sc.name]
            for d in ("c2s", "s2c"):
                c = collections.Counter(p[0] >> 4 for _, dd, _, _, p in rows
                                        if dd == d)
                counts[(sc.name, d)] = c
                f.write("%s\t%s\t%d\t%d\t%s\n" % (
                    sc.name, d, len({r[0] for r in rows}), sum(c.values()),
                    "\t".join(str(c[t]) for t in range(16))))

    def fmt_counts(c):
        return ", ".join("%s %d" % (TYPE_NAMES[t], c[t]) for t in range(16)
                         if c[t]) or "none"

    L = []
    L.append("# Recorded MQTT traffic (real clients, real mosquitto)\n")
    L.append("Generated by `%s` on %s (UTC), run time %.0f s. Do not edit by "
             "hand: re-run the script instead (it overwrites this directory's "
             "files).\n" % (SCRIPT_REL, started.strftime("%Y-%m-%d %H:%M:%S"),
                            time.monotonic() - rec.t0))
    L.append("```\n/usr/bin/python3 %s [OUTDIR]   # default tests/data/"
             "recorded, needs root\n```\n" % SCRIPT_REL)
    L.append("## Versions\n")
    for k, v in versions.items():
        L.append("- %s: %s" % (k, v))
    L.append("")
    L.append("## How it was recorded\n")
    L.append("Everything runs on 127.0.0.1. Each scenario gets a fresh "
             "mosquitto on a free port (`$PORT`), started as "
             "`mosquitto -c mosquitto.conf`. Configuration (paths are in a "
             "temporary directory):\n")
    L.append("```\nlistener $PORT 127.0.0.1\nlog_type all\nlog_timestamp true\n"
             "log_timestamp_format %Y-%m-%dT%H:%M:%S\nlog_dest file "
             "<tmp>/mosquitto.log\npersistence false\nuser root\n"
             "# open brokers:\nallow_anonymous true\n# brokers marked "
             "'password_file':\nallow_anonymous false\npassword_file "
             "<tmp>/passwd\n```\n")
    L.append("The password file is made with `mosquitto_passwd -c -b <tmp>/"
             "passwd alice alicepw` then `mosquitto_passwd -b <tmp>/passwd "
             "USER PASS` for bob/bobpw, dashboard/dashpw, sensor/sensorpw.\n")
    L.append("Capture per scenario: `tcpdump -i lo -U -s 0 -Z root "
             "--immediate-mode -B 32768 -w "
             "<scenario>.pcap 'tcp port $PORT'` (started before the clients, "
             "ready when it prints 'listening on'; stopped with SIGINT ~0.4 s "
             "after the scenario). `<scenario>.mosquitto.log` holds the broker "
             "log lines written between capture start and stop (the broker's "
             "own readiness probe connection is excluded).\n")
    L.append("Extraction (no wirewarden code): `tshark -r <scenario>.pcap -Y "
             "'tcp.len>0' -T fields -e frame.number -e tcp.stream -e "
             "tcp.srcport -e tcp.dstport -e tcp.seq -e tcp.len -e "
             "tcp.payload`; the payloads of each direction of each TCP "
             "stream are concatenated in order (overlaps from retransmissions "
             "trimmed by sequence number) and split with a Python "
             "remaining-length reader. Cross-check: `tshark -r <scenario>.pcap "
             "-d tcp.port==$PORT,mqtt -Y mqtt -T fields -e tcp.srcport -e "
             "mqtt.hdrflags`, packet types counted per direction.\n")
    L.append("## Files\n")
    L.append("- `fixtures.tsv`: one row per MQTT control packet: `scenario "
             "stream dir level index hex`. `stream` = tshark tcp.stream; "
             "`dir` = c2s (from the side that connected to the broker port) or "
             "s2c; `level` = protocol level byte of the stream's first c2s "
             "packet if it is a CONNECT (3 = MQTT 3.1 'MQIsdp', 4 = 3.1.1, "
             "5 = 5.0), else 0; `index` = 0-based position in that direction "
             "of that stream; `hex` = whole packet incl. fixed header, "
             "lower-case.")
    L.append("- `fixtures-summary.tsv`: packet type counts per scenario and "
             "direction.")
    L.append("- `<scenario>.pcap`, `<scenario>.mosquitto.log`.\n")
    L.append("## Cross-check with tshark's MQTT dissector\n")
    if xcheck:
        for x in xcheck:
            L.append("- " + x)
    else:
        L.append("- All scenarios: per-direction packet type counts from the "
                 "Python splitter equal tshark's mqtt.hdrflags counts.")
    if problems:
        L.append("\nStream reassembly notes:\n")
        for p in problems:
            L.append("- " + p)
    if fails:
        L.append("\n**Expectations that did not hold in this run:**\n")
        for p in fails:
            L.append("- " + p)
    L.append("\n## Server behaviour at a glance\n")
    L.append("| scenario | CONNACK codes (s2c) | DISCONNECT reason codes "
             "(c2s / s2c) | who closed each TCP stream first |")
    L.append("|---|---|---|---|")
    for sc in rec.scenarios:
        rows = all_rows[sc.name]

        def rc_list(d, t):
            v = [reason_code(p, lv) for _, dd, lv, _, p in rows
                 if dd == d and p[0] >> 4 == t]
            return ",".join("-" if c is None else "0x%02X" % c for c in v)
        cl = collections.Counter(closers[sc.name].get(st, "open")
                                 .replace(" closed first", "")
                                 for st in sorted({r[0] for r in rows}))
        L.append("| %s | %s | %s / %s | %s |" % (
            sc.name, rc_list("s2c", 2) or "none",
            rc_list("c2s", 14) or "none", rc_list("s2c", 14) or "none",
            ", ".join("%s x%d" % kv for kv in sorted(cl.items()))))
    L.append("\n(v3.1.1/3.1 DISCONNECT has no reason code: shown as '-'.)")
    L.append("\n## Scenarios\n")
    for sc in rec.scenarios:
        L.append("### %s\n" % sc.name)
        L.append("%s Broker: %s, capture %.1f s, pcap %d bytes.\n" % (
            sc.description, "password_file" if sc.broker.auth else "anonymous",
            sc.duration, os.path.getsize(sc.pcap)))
        L.append("Actions:\n")
        for a in sc.actions:
            L.append("- " + a)
        L.append("\nPackets: c2s: %s. s2c: %s.\n" % (
            fmt_counts(counts[(sc.name, "c2s")]),
            fmt_counts(counts[(sc.name, "s2c")])))
        rows = all_rows[sc.name]
        per_stream = collections.OrderedDict()
        for st, d, lv, i, p in rows:
            per_stream.setdefault(st, {"c2s": [], "s2c": [], "lv": lv})
            per_stream[st][d].append(describe(p, lv))
        if len(per_stream) <= 8:
            L.append("Per stream (packet sequence):\n")
            for st, v in per_stream.items():
                L.append("- stream %d (level %d): c2s [%s]; s2c [%s]; %s" % (
                    st, v["lv"], ", ".join(v["c2s"]), ", ".join(v["s2c"]),
                    closers[sc.name].get(st, "connection not closed in "
                                         "capture")))
            L.append("")
        if sc.notes:
            L.append("Observed by the recorder:\n")
            for x in sc.notes:
                L.append("- " + x)
            L.append("")
        L.append("Ground truth from mosquitto's log (selected lines; full log "
                 "in `%s.mosquitto.log`):\n" % sc.name)
        L.append("```")
        L.extend(notable_lines(sc.log_text))
        L.append("```\n")
    with open(os.path.join(out, "SOURCES.md"), "w") as f:
        f.write("\n".join(L) + "\n")


# ---------------------------------------------------------------------------

class Recorder:
    def __init__(self, outdir):
        self.outdir = outdir
        self.tmp = tempfile.mkdtemp(prefix="wirewarden-rec-")
        self.brokers = []
        self.scenarios = []
        self.t0 = time.monotonic()
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=2)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?",
                    default=os.path.join(repo, "tests", "data", "recorded"))
    ap.add_argument("--only", help="comma-separated scenario name substrings "
                    "(for debugging; outputs then cover only those)")
    ap.add_argument("--add", help="comma-separated scenario names: record only "
                    "these and merge them into OUTDIR's existing files; the other "
                    "scenarios' captures, logs, rows and SOURCES.md sections stay "
                    "as they were (tests and tools rely on their bytes)")
    args = ap.parse_args()
    check_tools()
    versions = tool_versions()
    outdir = os.path.abspath(args.outdir)
    os.makedirs(outdir, exist_ok=True)
    kept = {}
    if args.add:
        for fn in MERGED_FILES:
            with open(os.path.join(outdir, fn)) as f:
                kept[fn] = f.read()
    for fn in os.listdir(outdir):
        added = args.add and any(fn in (n + ".pcap", n + ".mosquitto.log")
                                 for n in args.add.split(","))
        if (not args.add or added) and (
                fn.endswith(".pcap") or fn.endswith(".mosquitto.log") or
                fn in MERGED_FILES):
            os.unlink(os.path.join(outdir, fn))
    rec = Recorder(outdir)
    started = datetime.datetime.now(datetime.timezone.utc)
    plan = [
        ("v311-pubsub", lambda: sc_pubsub_mosquitto(rec, "v311")),
        ("v5-pubsub", lambda: sc_pubsub_mosquitto(rec, "v5")),
        ("v311-paho", lambda: sc_pubsub_paho(rec, "v311")),
        ("v5-paho", lambda: sc_pubsub_paho(rec, "v5")),
        ("v31-pubsub", lambda: sc_v31(rec)),
        ("v311-takeover", lambda: sc_takeover(rec, "v311")),
        ("v5-takeover", lambda: sc_takeover(rec, "v5")),
        ("v311-keepalive", lambda: sc_keepalive(rec, "v311")),
        ("v5-keepalive", lambda: sc_keepalive(rec, "v5")),
        ("v311-auth-refused", lambda: sc_auth_refused(rec, "v311")),
        ("v5-auth-refused", lambda: sc_auth_refused(rec, "v5")),
        ("v311-err-double-connect",
         lambda: sc_proto_error(rec, "v311", "double-connect")),
        ("v5-err-double-connect",
         lambda: sc_proto_error(rec, "v5", "double-connect")),
        ("v311-err-publish-qos3",
         lambda: sc_proto_error(rec, "v311", "publish-qos3")),
        ("v5-err-publish-qos3",
         lambda: sc_proto_error(rec, "v5", "publish-qos3")),
        ("v311-err-reserved-type0",
         lambda: sc_proto_error(rec, "v311", "reserved-type0")),
        ("v5-err-reserved-type0",
         lambda: sc_proto_error(rec, "v5", "reserved-type0")),
        ("err-first-not-connect",
         lambda: sc_proto_error(rec, None, "first-not-connect")),
        ("v5-auth-method", lambda: sc_auth_method(rec)),
        ("demo", lambda: sc_demo(rec)),
        ("v311-client-vanished", lambda: sc_client_vanished(rec, "v311")),
        ("v5-client-vanished", lambda: sc_client_vanished(rec, "v5")),
        ("v311-server-shutdown", lambda: sc_server_shutdown(rec, "v311")),
        ("v5-server-shutdown", lambda: sc_server_shutdown(rec, "v5")),
        ("server-shutdown-many", lambda: sc_server_shutdown_many(rec)),
        ("v311-packet-too-large", lambda: sc_packet_too_large(rec, "v311")),
        ("v5-packet-too-large", lambda: sc_packet_too_large(rec, "v5")),
        ("v311-receive-maximum", lambda: sc_receive_maximum(rec, "v311")),
        ("v5-receive-maximum", lambda: sc_receive_maximum(rec, "v5")),
        ("v311-takeover-storm", lambda: sc_takeover_storm(rec, "v311")),
        ("v5-takeover-storm", lambda: sc_takeover_storm(rec, "v5")),
        ("v311-slow-consumer", lambda: sc_slow_consumer(rec, "v311")),
        ("v5-slow-consumer", lambda: sc_slow_consumer(rec, "v5")),
    ]
    if args.only:
        keys = args.only.split(",")
        plan = [p for p in plan if any(k in p[0] for k in keys)]
    if args.add:
        names = args.add.split(",")
        missing = [n for n in names if n not in dict(plan)]
        if missing:
            sys.exit("--add: no scenario named %s" % ", ".join(missing))
        plan = [p for p in plan if p[0] in names]
    print("recording into %s" % outdir, flush=True)
    try:
        try:
            for name, fn in plan:
                fn()
        finally:
            for b in rec.brokers:
                b.stop()
        rc = postprocess(rec, versions, started, outdir)
        if args.add:
            merge_added(outdir, kept, [p[0] for p in plan], started)
        return rc
    finally:
        rec.executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(rec.tmp, ignore_errors=True)


MERGED_FILES = ("fixtures.tsv", "fixtures-summary.tsv", "SOURCES.md")


def merge_added(outdir, kept, names, started):
    """--add: the files just written cover only <names>; put the rows and
    sections of the earlier recording back around them (<kept>: the files'
    text before this run), replacing any earlier rows of the same names."""
    def read(fn):
        with open(os.path.join(outdir, fn)) as f:
            return f.read()

    def write(fn, text):
        with open(os.path.join(outdir, fn), "w") as f:
            f.write(text)

    for fn in ("fixtures.tsv", "fixtures-summary.tsv"):
        old = kept[fn].splitlines(True)
        new = read(fn).splitlines(True)
        write(fn, "".join([old[0]] + [l for l in old[1:] if l.split("\t", 1)[0] not in names] + new[1:]))
    old = kept["SOURCES.md"].split("\n")
    new = read("SOURCES.md").split("\n")
    rows = [l for l in new if any(l.startswith("| %s |" % n) for n in names)]
    sections, cur = [], None
    for l in new:
        if l.startswith("### "):
            cur = l[4:].strip() in names
        if cur:
            sections.append(l)
    out, in_table, note = [], False, None
    for i, l in enumerate(old):
        if any(l.startswith("| %s |" % n) for n in names):
            continue
        out.append(l)
        if l.startswith("## Server behaviour at a glance"):
            in_table = True
        elif in_table and l.startswith("| ") and not old[i + 1].startswith("|"):
            out.extend(rows)  # after the table's last row
            in_table = False
        if l.startswith("Generated by `tests/tools/record_fixtures.py`"):
            note = len(out)
    # Drop earlier sections of the same names, then append the new ones.
    merged, skip = [], False
    for l in out:
        if l.startswith("### "):
            skip = l[4:].strip() in names
        if not skip:
            merged.append(l)
    while merged and merged[-1] == "":
        merged.pop()
    merged += [""] + sections
    if note is not None:
        merged.insert(note, "\nAdded later with `--add` on %s (UTC), same tools and versions as below: %s." % (
            started.strftime("%Y-%m-%d %H:%M:%S"), ", ".join(names)))
    write("SOURCES.md", "\n".join(merged).rstrip("\n") + "\n")


def postprocess(rec, versions, started, outdir):
    all_rows = {}
    problems = []
    xcheck = []
    fails = []
    closers = {}
    fut = {sc.name: sc.futures for sc in rec.scenarios}
    for sc in rec.scenarios:
        rows, probs = fut[sc.name][0].result()
        all_rows[sc.name] = rows
        problems += ["%s: %s" % (sc.name, p) for p in probs]
        mine = collections.Counter((d, p[0] >> 4) for _, d, _, _, p in rows)
        theirs = fut[sc.name][1].result()
        if mine != theirs:
            diffs = []
            for k in sorted(set(mine) | set(theirs)):
                if mine[k] != theirs[k]:
                    diffs.append("%s %s: splitter %d, tshark %d" % (
                        k[0], TYPE_NAMES[k[1]], mine[k], theirs[k]))
            xcheck.append("%s: %s" % (sc.name, "; ".join(diffs)))
        closers[sc.name] = fut[sc.name][2].result()
        fails += check(rec, sc, rows, closers[sc.name],
                       ["%s: %s" % (sc.name, p) for p in probs])
    write_outputs(rec, versions, started, all_rows, xcheck, problems, fails,
                  closers)
    total = sum(os.path.getsize(os.path.join(outdir, f))
                for f in os.listdir(outdir))
    print("wrote %d scenarios, %d packets, %d bytes total in %s (%.0f s)" % (
        len(rec.scenarios), sum(len(r) for r in all_rows.values()), total,
        outdir, time.monotonic() - rec.t0))
    for x in xcheck:
        print("tshark cross-check difference: " + x)
    for p in problems:
        print("reassembly note: " + p)
    if fails:
        print("EXPECTATION FAILURES:")
        for f in fails:
            print("  " + f)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
