"""Start and drive the AMPS peer server as a separate process (as a broker
would be): used by the peer's own tests, the integration tests and the
capture recorder. Every wait is bounded; stop() always ends the process."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.py"
PYTHON = "/usr/bin/python3"

LINE_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}[+-]\d\d:\d\d) \[(\d+)\] (\w+): (\S+) (.*)$")


class PeerServer:
    """`server.py` with the given options (keyword -> --option; True -> flag)."""

    def __init__(self, workdir, name="amps-peer", **opts):
        self.dir = Path(workdir)
        self.name = name
        self.log_path = self.dir / (name + ".log")
        self.stderr_path = self.dir / (name + ".stderr")
        self.opts = opts
        self.proc = None
        self.port = self.admin_port = None

    def start(self, timeout=10):
        args = [PYTHON, str(SERVER), "--log", str(self.log_path)]
        for k, v in self.opts.items():
            if v is False or v is None:
                continue
            args.append("--" + k.replace("_", "-"))
            if v is not True:
                args.append(str(v))
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line:
            self.stop()
            raise RuntimeError("amps peer did not start: %s" % self.stderr_path.read_text(errors="replace")[-2000:])
        info = json.loads(line)
        self.port, self.admin_port = info["port"], info["admin_port"]
        return self

    def admin(self, command, timeout=5):
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=timeout) as s:
            s.sendall(command.encode() + b"\n")
            buf = b""
            deadline = time.monotonic() + timeout
            while not buf.endswith(b"\n") and time.monotonic() < deadline:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        reply = buf.decode().strip()
        if not reply.startswith("ok"):
            raise RuntimeError("admin %r: %s" % (command, reply))
        return reply[2:].strip()

    def clients(self):
        return json.loads(self.admin("clients"))

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        """[(timestamp, thread, level, id, text)] of the log so far."""
        out = []
        for line in self.log_text().splitlines():
            m = LINE_RE.match(line)
            if m:
                out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4), m.group(5)))
        return out

    def wait_log(self, msgid, contains="", timeout=5, count=1):
        """The first <count> log lines with <msgid> whose text contains <contains>."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [l for l in self.log_lines() if l[3] == msgid and contains in l[4]]
            if len(hits) >= count:
                return hits
            if time.monotonic() > deadline:
                raise AssertionError("no %d %s line(s) with %r within %.1f s; log:\n%s"
                                     % (count, msgid, contains, timeout, self.log_text()[-3000:]))
            time.sleep(0.02)

    def closed(self, addr, timeout=5):
        """(by, reason) of the connection from <addr>, from its PEER-0013 line."""
        line = self.wait_log("PEER-0013", " from %s closed" % addr, timeout)[0]
        m = re.search(r"closed by (\w+), reason\[([^\]]*)\]", line[4])
        return m.group(1), m.group(2)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.stderr.close()
        return self.proc.returncode
