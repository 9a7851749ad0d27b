#!/usr/bin/python3
"""AMPS peer clients for tests: a small blocking library (AmpsClient) and a
CLI over it. They speak the documented wire format (wire.py) and can
misbehave on purpose: unknown command, garbage bytes, stop reading, go
silent, log on twice with one client name, take each other over in a loop.

    /usr/bin/python3 tests/amps_peer/client.py --port P logon NAME [--user U --pw PW] [--hold S]
    ... publish NAME TOPIC [--count N --size B]
    ... subscribe NAME TOPIC [--count N]
    ... misbehave {unknown,garbage,stop-reading,silent,vanish,twin,storm} NAME [...]

Every wait is bounded (--timeout). Not 60East code."""
import argparse
import errno
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402


class Closed(Exception):
    pass


class AmpsClient:
    """One connection. Received frames are kept in .frames (hdr, body)."""

    def __init__(self, port, host="127.0.0.1", bind=None, protocol="amps", rcvbuf=None, timeout=3.0):
        self.protocol = protocol
        self.timeout = timeout
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if bind:
            self.sock.bind((bind, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        ip, p = self.sock.getsockname()[:2]
        self.addr = "%s:%d" % (ip, p)
        self.framer = wire.Framer(wire.CORRUPT_FRAME - 1)
        self.pending = []
        self.frames = []
        self.eof = False
        self.reset = False
        self.cid = 0

    # -- sending --

    def next_cid(self):
        self.cid += 1
        return str(self.cid)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, fields, body=b""):
        self.send_raw(wire.message(fields, body, self.protocol))

    def logon(self, client_name, user_id=None, pw=None, ack="processed", version="5.3.5.1:wirewarden-peer",
              wait=True):
        f = {"c": "logon", "cid": self.next_cid()}
        if client_name is not None:
            f["client_name"] = client_name
        if user_id is not None:
            f["user_id"] = user_id
        if pw is not None:
            f["pw"] = pw
        if self.protocol == "amps":
            f["version"] = version
        if ack:
            f["a"] = ack
        self.send(f)
        return self.expect_ack(f["cid"]) if (ack and wait) else None

    def heartbeat_start(self, seconds, ack=True):
        f = {"c": "heartbeat", "o": "start,%g" % seconds}
        if ack:
            f["cid"] = self.next_cid()
            f["a"] = "received"
        self.send(f)
        return self.expect_ack(f["cid"]) if ack else None

    def beat(self):
        self.send({"c": "heartbeat", "o": "beat"})

    def publish(self, topic, body=b"", ack=None):
        f = {"c": "publish", "t": topic}
        if ack:
            f["cid"] = self.next_cid()
            f["a"] = ack
        self.send(f, body)
        return self.expect_ack(f["cid"]) if ack else None

    def subscribe(self, topic, sub_id=None, ack="processed"):
        cid = self.next_cid()
        f = {"c": "subscribe", "cid": cid, "t": topic, "sub_id": sub_id or cid}
        if ack:
            f["a"] = ack
        self.send(f)
        return self.expect_ack(cid) if ack else None

    def unknown_command(self, name="frobnicate"):
        self.send({"c": name, "cid": self.next_cid()})

    def garbage(self, data=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        self.send_raw(data)

    def bad_header(self):
        """A well framed payload whose header is not JSON."""
        self.send_raw(wire.frame(b"{\"c\":\"publish\",\"t\":"))

    # -- receiving --

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return None
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                self.reset = True
                data = b""
            else:
                raise
        if not data:
            self.eof = True
            return b""
        for p in self.framer.feed(data):
            m = wire.decode(p, self.protocol)
            self.pending.append(m)
            self.frames.append(m)
        return data

    def read(self, timeout=None):
        """The next frame (hdr, body); Closed at EOF; TimeoutError after <timeout>."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.pending:
            if self.eof:
                raise Closed("connection closed by the server")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame within the timeout")
            self._recv(left)
        return self.pending.pop(0)

    def expect_ack(self, cid, timeout=None):
        """The ack with <cid> (other frames kept in .pending order skipped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, (h, b) in enumerate(self.pending):
                if h.get("c") == "ack" and str(h.get("cid")) == str(cid):
                    del self.pending[i]
                    return h
            if self.eof:
                raise Closed("closed before the ack of cid %s" % cid)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no ack for cid %s" % cid)
            self._recv(left)

    def wait_closed(self, timeout=5.0):
        """Reads until the server closes; returns the frames received meanwhile.
        TimeoutError if still open after <timeout>."""
        deadline = time.monotonic() + timeout
        start = len(self.frames)
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s still open after %.1f s" % (self.addr, timeout))
            self._recv(left)
        self.pending.clear()
        return self.frames[start:]

    def is_open_for(self, seconds):
        """True if nothing closed the connection within <seconds> (frames read meanwhile are kept)."""
        deadline = time.monotonic() + seconds
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self._recv(left)
        return False

    # -- ending --

    def vanish(self):
        """Ends with a RST and no goodbye (SO_LINGER 0): a client that died."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def storm(port, name, rounds, ips=("127.0.0.2", "127.0.0.3"), user_id=None, pw=None, protocol="amps",
          timeout=3.0):
    """Two instances sharing one client name from two addresses take each
    other over <rounds> times (each logon closes the previous twin). Returns
    the list of clients in logon order; the last is still connected."""
    out = []
    for i in range(rounds + 1):
        c = AmpsClient(port, bind=ips[i % 2], protocol=protocol, timeout=timeout)
        ack = c.logon(name, user_id, pw)
        if ack.get("status") != "success":
            raise RuntimeError("twin logon %d refused: %s" % (i, ack))
        if out:
            out[-1].wait_closed(timeout)
        out.append(c)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="AMPS peer client (documented wire format; not an AMPS client)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default=None)
    ap.add_argument("--protocol", choices=wire.PROTOCOLS, default="amps")
    ap.add_argument("--user", default=None)
    ap.add_argument("--pw", default=None)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--heartbeat", type=float, default=0, help="heartbeat start,N after logon")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logon")
    p.add_argument("name")
    p.add_argument("--hold", type=float, default=0.0, help="seconds to stay connected (beating if --heartbeat)")
    p = sub.add_parser("publish")
    p.add_argument("name")
    p.add_argument("topic")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--size", type=int, default=16)
    p = sub.add_parser("subscribe")
    p.add_argument("name")
    p.add_argument("topic")
    p.add_argument("--count", type=int, default=1)
    p = sub.add_parser("misbehave")
    p.add_argument("how", choices=("unknown", "garbage", "bad-header", "stop-reading", "silent", "vanish", "twin",
                                   "storm"))
    p.add_argument("name")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args(argv)

    def connect(bind=None):
        return AmpsClient(a.port, a.host, bind=bind or a.bind, protocol=a.protocol, timeout=a.timeout,
                          rcvbuf=4096 if getattr(a, "how", "") == "stop-reading" else None)

    def say(*x):
        print(*x, flush=True)

    if a.cmd == "misbehave" and a.how == "storm":
        cs = storm(a.port, a.name, a.rounds, user_id=a.user, pw=a.pw, protocol=a.protocol, timeout=a.timeout)
        say("storm: %d logons, %d taken over" % (len(cs), len(cs) - 1))
        cs[-1].close()
        return 0
    c = connect()
    ack = c.logon(a.name, a.user, a.pw)
    say("logon %s: %s" % (c.addr, ack))
    if ack.get("status") != "success":
        try:
            c.wait_closed(a.timeout)
            say("closed by the server")
        except TimeoutError:
            say("still open")
        return 2
    if a.heartbeat:
        c.heartbeat_start(a.heartbeat)
    if a.cmd == "logon":
        deadline = time.monotonic() + a.hold
        while time.monotonic() < deadline:
            if not c.is_open_for(min(a.heartbeat / 2 if a.heartbeat else 0.5, deadline - time.monotonic())):
                say("closed by the server")
                return 3
            if a.heartbeat:
                c.beat()
        c.close()
    elif a.cmd == "publish":
        body = b"x" * a.size
        for _ in range(a.count - 1):
            c.publish(a.topic, body)
        c.publish(a.topic, body, ack="processed")  # the last asks for an ack: all were processed
        c.close()
    elif a.cmd == "subscribe":
        c.subscribe(a.topic)
        for i in range(a.count):
            h, b = c.read()
            say("%s %s %d bytes" % (h.get("c"), h.get("t"), len(b)))
        c.close()
    else:
        how = a.how
        if how == "unknown":
            c.unknown_command()
        elif how == "garbage":
            c.garbage()
        elif how == "bad-header":
            c.bad_header()
        elif how == "vanish":
            c.vanish()
            return 0
        elif how == "stop-reading":
            c.subscribe(a.name + "/#")
            say("subscribed; not reading any more")
            time.sleep(a.seconds)
            return 0
        elif how == "silent":
            say("silent for %.1f s" % a.seconds)
        elif how == "twin":
            d = connect()
            say("twin logon %s: %s" % (d.addr, d.logon(a.name, a.user, a.pw)))
        try:
            c.wait_closed(a.seconds)
            say("closed by the server")
        except TimeoutError:
            say("still open after %.1f s" % a.seconds)
            return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
