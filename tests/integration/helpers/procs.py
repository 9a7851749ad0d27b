"""The real processes of the proxy tests: a mosquitto broker, the wirewarden
proxy in front of it, and a byte-recording TCP tap. Each starts on a free
127.0.0.1 port, waits (bounded) until its socket listens, and is always
stopped by the fixture that made it (kill after a bounded wait)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]
DATA = TOP / "tests" / "data" / "proxy"
BINARY = os.environ.get("WIREWARDEN", str(TOP / "build" / "wirewarden"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port, ip="127.0.0.1"):
    """How many sockets listen on <ip>:<port> (from /proc/net/tcp, so that
    checking does not open a connection the proxy would log)."""
    want = "%02X%02X%02X%02X:%04X" % tuple(list(reversed([int(x) for x in ip.split(".")])) + [port])
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                n += 1
    return n


def wait_until(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Sends <sig> and waits; SIGKILL after <timeout> s. Returns the exit code
    (None if it had to be killed)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return None


def yaml_dump(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (plain where safe)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(yaml_dump(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, yaml_scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                body = yaml_dump(v, indent + 1).split("\n")
                out.append("%s- %s" % (pad, body[0].lstrip()))
                out.extend(body[1:])
            else:
                out.append("%s- %s" % (pad, yaml_scalar(v)))
    else:
        out.append(pad + yaml_scalar(obj))
    return "\n".join(out)


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, dict)):
        return "[]" if isinstance(v, list) else "{}"
    s = str(v)
    if re.fullmatch(r"[A-Za-z0-9_./:\-]+( ?[A-Za-z]+)?", s) and s not in ("true", "false", "null", "yes", "no"):
        return s
    return json.dumps(s)


# ---- the event catalog (doc/events.md), for checking reason names and ids ----

def catalog():
    """({event name: id}, {reason name: id}) from doc/events.md."""
    events, reasons = {}, {}
    section = None
    for line in (TOP / "doc" / "events.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        m = re.match(r"\| (W\d{4}) \| `([a-z0-9_]+)` \|", line)
        if m:
            (events if section == "Events" else reasons)[m.group(2)] = m.group(1)
    return events, reasons


# ---- mosquitto -------------------------------------------------------------

class Mosquitto:
    """A real mosquitto on a free loopback port with a config written here.
    <extra> lines are appended to the config; <passwd> True installs
    tests/data/proxy/mosquitto.passwd and refuses anonymous clients."""

    def __init__(self, workdir, extra=(), passwd=False, name="mosquitto"):
        self.dir = Path(workdir)
        self.name = name
        self.port = free_port()
        self.extra = list(extra)
        self.passwd = passwd
        self.conf = self.dir / (name + ".conf")
        self.log = self.dir / (name + ".log")
        self.proc = None
        self.write_config()

    def write_config(self):
        lines = ["listener %d 127.0.0.1" % self.port, "persistence false",
                 "log_dest file %s" % self.log, "log_type all", "connection_messages true"]
        if os.geteuid() == 0:
            lines.append("user root")  # keep access to the files written here
        if self.passwd:
            pw = self.dir / (self.name + ".passwd")
            shutil.copy(DATA / "mosquitto.passwd", pw)
            os.chmod(pw, 0o600)
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines.append("allow_anonymous true")
        lines += self.extra
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        self.stderr = open(self.dir / (self.name + ".stderr"), "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=self.stderr, stderr=self.stderr)
        try:
            wait_until(lambda: listening(self.port) or self.proc.poll() is not None, timeout,
                       "mosquitto to listen on %d" % self.port)
        finally:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s: %s" % (self.proc.returncode, self.log_text()[-2000:]))
        return self

    def stop(self, timeout=10):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, timeout)
            self.stderr.close()

    def kill(self):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL, 5)
            self.stderr.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# ---- the proxy ----------------------------------------------------------------

def matches(e, name, fields):
    if name is not None and e.get("name") != name:
        return False
    for k, v in fields.items():
        if callable(v):
            if not v(e.get(k)):
                return False
        elif e.get(k) != v:
            return False
    return True


class Proxy:
    """`wirewarden proxy` in front of <upstream_port>. With <config> (a dict:
    the YAML keys of doc/config.md; `listeners` and `workers` are added) it
    runs with --config; without, with --listen/--upstream. Always --events
    (JSON lines, read by events()/wait_event()) and --log."""

    def __init__(self, workdir, upstream_port, config=None, flags=(), workers=2, name="proxy", port=None):
        self.dir = Path(workdir)
        self.name = name
        self.port = port or free_port()
        self.upstream_port = upstream_port
        self.events_path = self.dir / (name + "-events.jsonl")
        self.log_path = self.dir / (name + "-events.log")
        self.stderr_path = self.dir / (name + ".stderr")
        self.workers = workers
        self.config_path = None
        self.stopped_rc = None
        args = [BINARY, "proxy"]
        if config is not None:
            cfg = {"listeners": [{"name": "main", "listen": "127.0.0.1:%d" % self.port,
                                  "upstream": "127.0.0.1:%d" % upstream_port}],
                   "workers": workers}
            cfg.update(config)
            self.config_path = self.dir / (name + ".yaml")
            self.config_path.write_text(yaml_dump(cfg) + "\n")
            args += ["--config", str(self.config_path)]
        else:
            args += ["--listen", "127.0.0.1:%d" % self.port, "--upstream", "127.0.0.1:%d" % upstream_port,
                     "--workers", str(workers)]
        args += ["--events", str(self.events_path), "--log", str(self.log_path)] + list(flags)
        self.args = args
        self._lines = []
        self._offset = 0
        self._partial = b""
        self.proc = None

    def start(self, timeout=10):
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.stderr, stderr=self.stderr)
        try:
            wait_until(lambda: listening(self.port) >= self.workers or self.proc.poll() is not None, timeout,
                       "the proxy to listen on %d" % self.port)
        finally:
            if self.proc.poll() is not None:
                raise RuntimeError("wirewarden proxy exited with %s: %s" % (self.proc.returncode, self.stderr_text()))
        return self

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal_stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends <sig>, waits, returns the exit status (None: had to be killed)."""
        rc = stop_process(self.proc, sig, timeout)
        self.stopped_rc = rc
        self.stderr.close()
        return rc

    def stop(self, timeout=10):
        """SIGTERM; asserts that the proxy exits 0 within <timeout> s."""
        if self.stopped_rc is None and self.proc is not None and self.proc.poll() is None:
            rc = self.signal_stop(signal.SIGTERM, timeout)
        else:
            rc = self.proc.returncode if self.stopped_rc is None else self.stopped_rc
        assert rc == 0, "wirewarden proxy exit status %s after SIGTERM (stderr: %s)" % (rc, self.stderr_text()[-1500:])

    # -- events --

    def events(self, name=None, **fields):
        """Every complete JSON line of the events file so far, in order,
        filtered by <name> and <fields> (a value or a predicate)."""
        try:
            with open(self.events_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            if line.strip():
                self._lines.append(json.loads(line))
        return [e for e in self._lines if matches(e, name, fields)]

    def settled_events(self, name=None, **fields):
        """events(), after the proxy's log flush interval (250 ms) has passed
        twice: for asserting that something did NOT happen."""
        time.sleep(0.6)
        return self.events(name, **fields)

    def wait_event(self, name, timeout=5, **fields):
        """The first event named <name> whose fields match; AssertionError
        (with the events seen) after <timeout> s."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(name, **fields)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError("no %s event with %r within %.1f s; events:\n%s" % (
                    name, {k: v for k, v in fields.items() if not callable(v)}, timeout,
                    "\n".join(json.dumps(e) for e in self._lines[-40:])))
            time.sleep(0.02)

    def wait_events(self, name, count, timeout=5, **fields):
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(name, **fields)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError("%d of %d %s events with %r within %.1f s; events:\n%s" % (
                    len(found), count, name, {k: v for k, v in fields.items() if not callable(v)}, timeout,
                    "\n".join(json.dumps(e) for e in self._lines[-40:])))
            time.sleep(0.02)

    def conn_of(self, addr, timeout=5):
        """The `conn` id of the connection from <addr> ("ip:port")."""
        return self.wait_event("connection_opened", timeout, client=addr)["conn"]

    def disconnect_of(self, addr=None, conn=None, timeout=5):
        """The disconnect event of a connection, found by client address or id."""
        if conn is None:
            conn = self.conn_of(addr, timeout)
        return self.wait_event("disconnect", timeout, conn=conn)

    def check_one_disconnect_each(self):
        """Every connection that opened ended with exactly one disconnect, its
        last event, whose reason and id are the catalog's. Returns the
        disconnect events by conn."""
        _, reasons = catalog()
        evs = self.events()
        opened = [e["conn"] for e in evs if e["name"] == "connection_opened"]
        assert len(opened) == len(set(opened)), "a conn id opened twice"
        byconn = {}
        for e in evs:
            if "conn" in e:
                byconn.setdefault(e["conn"], []).append(e)
        out = {}
        for conn in opened:
            mine = byconn[conn]
            ds = [e for e in mine if e["name"] == "disconnect"]
            assert len(ds) == 1, "conn %d has %d disconnect events: %s" % (conn, len(ds), ds)
            d = ds[0]
            assert mine[-1] is d, "conn %d: disconnect is not its last event: %s" % (conn, mine[-1])
            assert d["reason"] in reasons, "conn %d: reason %r not in the catalog" % (conn, d["reason"])
            assert d["id"] == reasons[d["reason"]], "conn %d: id %s for reason %s" % (conn, d["id"], d["reason"])
            assert d["closed_by"] in ("client", "broker", "proxy", "none"), d
            for k in ("duration_s", "bytes_c2s", "bytes_s2c", "phase", "client", "broker"):
                assert k in d, "conn %d: disconnect without %s: %s" % (conn, k, d)
            out[conn] = d
        stray = set(byconn) - set(opened) - {0}  # conn 0: events about no connection (listener_disabled)
        assert not stray, "events for connections never opened: %s" % sorted(stray)
        return out


# ---- a recording tap between the proxy and the broker ---------------------------

class Tap:
    """Listens on a free port and relays each connection to 127.0.0.1:<target>,
    keeping every byte each way (conns[i].c2s / .s2c) and noting when each
    side closed. With hold_fin, a FIN from the proxy side is not passed on to
    the broker until release_fin() (to hold a half-closed connection open)."""

    class Conn:
        def __init__(self):
            self.c2s = bytearray()
            self.s2c = bytearray()
            self.c2s_eof = threading.Event()
            self.s2c_eof = threading.Event()
            self.release = threading.Event()
            self.sent_after_c2s_eof = 0

    def __init__(self, target_port, hold_fin=False):
        self.target = target_port
        self.hold_fin = hold_fin
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.threads = []
        self.closed = False
        self.socks = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.closed:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            c = Tap.Conn()
            self.conns.append(c)
            self.socks += [a, b]
            for src, dst, buf, eof, up in ((a, b, c.c2s, c.c2s_eof, True), (b, a, c.s2c, c.s2c_eof, False)):
                t = threading.Thread(target=self._pump, args=(c, src, dst, buf, eof, up), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, c, src, dst, buf, eof, up):
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            if not up and c.c2s_eof.is_set():
                c.sent_after_c2s_eof += len(data)
            try:
                dst.sendall(data)
            except OSError:
                break
        eof.set()
        if up and self.hold_fin:
            c.release.wait(30)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def wait_conns(self, n, timeout=5):
        wait_until(lambda: len(self.conns) >= n, timeout, "%d tapped connections" % n)
        return self.conns[n - 1]

    def close(self):
        self.closed = True
        for c in self.conns:
            c.release.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
