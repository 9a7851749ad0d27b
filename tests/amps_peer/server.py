#!/usr/bin/python3
"""A small AMPS *peer* server for tests: it follows 60East's public
documentation of the wire protocol and of why AMPS disconnects clients
(doc/amps.md says what is verified and what is assumed). It is not AMPS.

    /usr/bin/python3 tests/amps_peer/server.py --port 0 --admin-port 0 \
        --log /tmp/amps.log [--users alice:pw,bob:pw] [--entitled alice] \
        [--protocol amps|fix|nvfix] [--offline-bytes N --slow-grace S]

On start it prints one JSON line on stdout: {"port": P, "admin_port": A, "pid": ...}.
Admin port: one text command per line, one reply line each:
    clients | disconnect NAME | disable | enable | entitlement_reset USER | quit

Its log (--log) is written in the shapes of AMPS's own log lines as the
seeds show them (07-0013, 02-0025, 07-0042, 70-0011, 70-0004, 07-0047), plus
PEER-xxxx lines of its own that carry what tests need (address, reason,
who closed): the log is the ground truth of the recorded captures."""
import argparse
import asyncio
import collections
import datetime
import json
import os
import re
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

VERSION = "0.0.0.0-wirewarden-amps-peer"


class Log:
    """Lines shaped like AMPS's: `<ISO time with 7 decimals and offset> [<thread>] <level>: <id> <text>`."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else sys.stderr

    def __call__(self, thread, level, msgid, text):
        now = datetime.datetime.now(datetime.timezone.utc)
        ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%07d" % (now.microsecond * 10) + "+00:00"
        self.f.write("%s [%d] %s: %s %s\n" % (ts, thread, level, msgid, text))


class Conn(asyncio.Protocol):
    def __init__(self, peer):
        self.peer = peer
        self.framer = wire.Framer(peer.args.max_frame)
        self.transport = None
        self.seq = peer.next_conn()
        self.name = "amps-%s-%d" % (peer.transport_name, self.seq)  # AMPS's name for an unnamed client
        self.client_name = None
        self.user_id = None
        self.logged_on = False
        self.addr = "?"
        self.last_rx = self.last_tx = time.monotonic()
        self.hb = 0.0
        self.subs = {}            # sub_id -> topic pattern
        self.reason = None        # why the server closes (None: the client closed)
        self.reason_in_log = True
        self.closing = False
        self.offline = False
        self.offline_since = 0.0
        self.offlined = collections.deque()
        self.offlined_bytes = 0
        self.delivered = 0

    # -- asyncio --

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if self.peer.args.sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.peer.args.sndbuf)
        p = transport.get_extra_info("peername")
        self.addr = "%s:%d" % (p[0], p[1])
        transport.set_write_buffer_limits(high=self.peer.args.offline_bytes, low=self.peer.args.offline_bytes // 4)
        self.peer.conns.add(self)
        self.peer.log(self.seq, "info", "PEER-0001", "client[%s] connected from %s on transport[%s]."
                      % (self.name, self.addr, self.peer.transport_name))

    def data_received(self, data):
        if self.closing:
            return
        self.last_rx = time.monotonic()
        try:
            payloads = self.framer.feed(data)
        except wire.FrameError as e:
            self.unknown("malformed frame: %s" % e)
            return
        for p in payloads:
            if self.closing:
                return
            self.command(p)

    def connection_lost(self, exc):
        self.peer.conns.discard(self)
        if self.client_name and self.peer.names.get(self.client_name) is self:
            del self.peer.names[self.client_name]
        by = "server" if self.reason else "client"
        reason = self.reason or "connection closed"
        shown = self.client_name or self.name
        if self.reason_in_log and self.reason:
            self.peer.log(self.seq, "info", "07-0013", "client[%s] disconnected: %s." % (shown, reason))
        else:
            self.peer.log(self.seq, "info", "07-0013", "client[%s] disconnected." % shown)
        self.peer.log(self.seq, "info", "PEER-0013", "client[%s] from %s closed by %s, reason[%s]%s."
                      % (shown, self.addr, by, reason, " (%s)" % exc if exc else ""))

    def pause_writing(self):
        # the write buffer went over --offline-bytes: the client is not reading
        if not self.closing and not self.offline:
            self.offline = True
            self.offline_since = time.monotonic()
            self.peer.log(self.seq, "warning", "70-0011", "client[%s] slow consumption detected, offline messages."
                          % (self.client_name or self.name))

    def resume_writing(self):
        if self.closing or not self.offline:
            return
        self.offline = False
        self.peer.log(self.seq, "info", "PEER-0012", "client[%s] caught up after %.1fs, %d offlined message(s) sent."
                      % (self.client_name or self.name, time.monotonic() - self.offline_since, len(self.offlined)))
        while self.offlined and not self.offline:
            m = self.offlined.popleft()
            self.offlined_bytes -= len(m)
            self.send_raw(m)

    # -- sending and closing --

    def send_raw(self, data):
        if self.closing:
            return
        self.last_tx = time.monotonic()
        self.transport.write(data)

    def send(self, fields, body=b""):
        self.send_raw(wire.message(fields, body, self.peer.args.protocol))

    def close(self, reason, abort=False, reason_in_log=True):
        """The server ends the connection, for <reason> (AMPS's words)."""
        if self.closing:
            return
        self.closing = True
        self.reason = reason
        self.reason_in_log = reason_in_log
        if abort:
            # a client that does not read cannot be given a graceful end: what
            # is queued for it is dropped and the socket reset (SO_LINGER 0)
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()

    def unknown(self, what):
        self.peer.log(self.seq, "error", "PEER-0004", "client[%s] sent an unknown or malformed command: %s"
                      % (self.client_name or self.name, what))
        self.close("unknown command")

    def ack(self, hdr, status="success", reason=None, kinds=None, **extra):
        """Acks only of the types the command asked for in `a` (documented)."""
        asked = [k.strip() for k in str(hdr.get("a", "")).split(",") if k.strip()]
        for kind in asked if kinds is None else [k for k in asked if k in kinds]:
            f = {"c": "ack", "a": kind}
            if "cid" in hdr:
                f["cid"] = hdr["cid"]
            f["status"] = status
            if reason:
                f["reason"] = reason
            f.update(extra)
            self.send(f)
        return bool(asked)

    # -- commands --

    def command(self, payload):
        try:
            hdr, body = wire.decode(payload, self.peer.args.protocol)
        except wire.HeaderError as e:
            self.unknown("unreadable header (%s): %r" % (e, payload[:60]))
            return
        c = hdr.get("c")
        if not isinstance(c, str) or c not in wire.CLIENT_COMMANDS:
            self.unknown("command[%s]" % c)
            return
        if c == "logon":
            self.logon(hdr)
            return
        if not self.logged_on:
            self.ack(hdr, "failure", "logon required")
            return
        if c == "heartbeat":
            self.heartbeat(hdr)
        elif c in ("publish", "p", "delta_publish"):
            self.peer.publish(self, hdr, body)
            self.ack(hdr, kinds=("received", "processed", "persisted"))
        elif c in ("subscribe", "delta_subscribe", "sow_and_subscribe", "sow_and_delta_subscribe"):
            sid = str(hdr.get("sub_id", hdr.get("cid", "s%d" % len(self.subs))))
            if sid in self.subs:
                self.ack(hdr, "failure", "subid in use")
                return
            self.subs[sid] = str(hdr.get("t", ""))
            self.ack(hdr, kinds=("received", "processed"), sub_id=sid)
        elif c == "unsubscribe":
            sid = str(hdr.get("sub_id", "all"))
            if sid == "all":
                self.subs.clear()
            else:
                self.subs.pop(sid, None)
            self.ack(hdr)
        elif c == "sow":
            qid = hdr.get("query_id", hdr.get("cid", "q"))
            self.send({"c": "group_begin", "query_id": qid})
            self.send({"c": "group_end", "query_id": qid})
            self.ack(hdr, kinds=("received", "processed", "completed"))
        else:  # flush, sow_delete, ack, timers: accepted, nothing else modelled
            self.ack(hdr)

    def logon(self, hdr):
        peer = self.peer
        if self.logged_on:
            self.ack(hdr, "failure", "duplicate logon attempt")
            return
        name = hdr.get("client_name")
        user = hdr.get("user_id")
        name = str(name) if name not in (None, "") else None
        user = str(user) if user is not None else ""
        refuse = None
        if name is None and peer.args.require_client_name:
            refuse = "no client name"
        elif peer.users is not None and (user not in peer.users or peer.users[user] != str(hdr.get("pw", ""))):
            refuse = "auth failure"
        elif peer.entitled is not None and user not in peer.entitled:
            refuse = "not entitled"
        old = peer.names.get(name) if name else None
        if refuse is None and old is not None and old.user_id != user:
            refuse = "name in use"
        if refuse:
            peer.log(self.seq, "error", "PEER-0003", "client[%s] from %s logon failed for user id: %s: %s."
                     % (name or self.name, self.addr, user, refuse))
            self.client_name = name  # for the 07-0013 line
            self.ack(hdr, "failure", refuse)
            if peer.args.close_failed_logon:
                self.close(refuse)
            return
        if old is not None:
            # documented: the new connection wins at once, the old is not told
            peer.log(old.seq, "warning", "02-0025", "A client logon with an 'in use' client name for the same user "
                     "id forced a disconnect of client: client[%s] with user id: %s" % (name, user))
            peer.log(old.seq, "info", "PEER-0025", "client[%s] at %s taken over by %s." % (name, old.addr, self.addr))
            del peer.names[name]
            old.close("name in use")
        self.logged_on = True
        self.client_name = name
        self.user_id = user
        if name:
            peer.names[name] = self
        peer.log(self.seq, "info", "PEER-0002", "client[%s] from %s logged on as client[%s] user id: %s version: %s."
                 % (self.name, self.addr, name or self.name, user, hdr.get("version", "")))
        self.ack(hdr, "success", version=VERSION, client_name=name or self.name)

    def heartbeat(self, hdr):
        opt = str(hdr.get("o", ""))
        m = re.fullmatch(r"start,(\d+(?:\.\d+)?)", opt)
        if m:
            self.hb = float(m.group(1))
            self.peer.log(self.seq, "info", "PEER-0042", "client[%s] heartbeat start, interval %gs."
                          % (self.client_name or self.name, self.hb))
        elif opt == "stop":
            self.hb = 0.0
        self.ack(hdr)

    # -- the peer's clock --

    def tick(self, now):
        if self.closing:
            return
        a = self.peer.args
        if self.hb and now - self.last_rx > a.heartbeat_factor * self.hb:
            self.peer.log(self.seq, "error", "07-0042", "AMPS heartbeat manager is disconnecting an unresponsive "
                          "client: %s" % (self.client_name or self.name))
            self.close("heartbeat")
            return
        if self.offline and now - self.offline_since > a.slow_grace:
            self.peer.log(self.seq, "error", "70-0004", "client[%s] is not consuming messages, disconnecting slow "
                          "client" % (self.client_name or self.name))
            self.close("slow client", abort=True)
            return
        if self.hb and now - self.last_tx >= self.hb:
            self.send({"c": "heartbeat"})  # assumed shape of the server's own heartbeat

    def deliver(self, data):
        a = self.peer.args
        if self.offline:
            self.offlined.append(data)
            self.offlined_bytes += len(data)
            if self.offlined_bytes > a.offline_max_bytes:
                self.peer.log(self.seq, "error", "70-0004", "client[%s] is not consuming messages, disconnecting "
                              "slow client" % (self.client_name or self.name))
                self.close("slow client", abort=True)
            return
        self.delivered += 1
        self.send_raw(data)


class Peer:
    def __init__(self, args):
        self.args = args
        self.log = Log(args.log)
        self.transport_name = {"amps": "json-tcp", "fix": "fix-tcp", "nvfix": "nvfix-tcp"}[args.protocol]
        self.users = dict(u.split(":", 1) for u in args.users.split(",")) if args.users else None
        self.entitled = set(args.entitled.split(",")) if args.entitled is not None else None
        self.conns = set()
        self.names = {}
        self.seqno = 0
        self.pubseq = 0
        self.server = None
        self.port = args.port

    def next_conn(self):
        self.seqno += 1
        return self.seqno

    async def listen(self):
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Conn(self), self.args.host, self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    def publish(self, src, hdr, body):
        topic = str(hdr.get("t", ""))
        self.pubseq += 1
        for c in list(self.conns):
            if c.closing or not c.logged_on:
                continue
            for sid, pat in c.subs.items():
                if pat == topic or (any(ch in pat for ch in ".*[]^$+?()|\\") and _fullmatch(pat, topic)):
                    c.deliver(wire.message({"c": "publish", "t": topic, "sub_id": sid, "s": self.pubseq,
                                            "bm": "%d|%d|" % (src.seq, self.pubseq)}, body, self.args.protocol))
                    break

    async def ticker(self):
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for c in list(self.conns):
                c.tick(now)

    # -- admin --

    async def admin(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                reply = await self.admin_command(line.decode(errors="replace").split())
                writer.write((reply + "\n").encode())
                await writer.drain()
        finally:
            writer.close()

    async def admin_command(self, words):
        if not words:
            return "error empty command"
        cmd, rest = words[0], words[1:]
        if cmd == "clients":
            return "ok " + json.dumps([{"name": c.client_name or c.name, "addr": c.addr, "user_id": c.user_id,
                                        "logged_on": c.logged_on, "offline": c.offline, "hb": c.hb,
                                        "delivered": c.delivered} for c in sorted(self.conns, key=lambda c: c.seq)])
        if cmd == "disconnect" and rest:
            hit = [c for c in self.conns if rest[0] in (c.client_name, c.name, c.addr)]
            for c in hit:
                self.log(c.seq, "info", "PEER-0050", "admin console disconnects client[%s] at %s."
                         % (c.client_name or c.name, c.addr))
                c.close("admin disconnect", reason_in_log=False)  # documented: no further information
            return "ok %d" % len(hit)
        if cmd == "entitlement_reset" and rest:
            hit = [c for c in self.conns if c.user_id == rest[0]]
            for c in hit:
                c.close("entitlement reset")
            return "ok %d" % len(hit)
        if cmd == "disable":
            if self.server is None:
                return "ok 0"
            self.log(10, "info", "07-0047", "Transport[%s] being disabled." % self.transport_name)
            self.server.close()
            self.server = None
            hit = list(self.conns)
            for c in hit:
                c.close("transport disabled", reason_in_log=False)
            return "ok %d" % len(hit)
        if cmd == "enable":
            if self.server is None:
                await self.listen()
                self.log(10, "info", "PEER-0047", "Transport[%s] enabled on port %d." % (self.transport_name, self.port))
            return "ok"
        if cmd == "quit":
            asyncio.get_running_loop().call_soon(self.stop_event.set)
            return "ok"
        return "error unknown admin command %r" % cmd

    async def main(self):
        self.stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, self.stop_event.set)
        await self.listen()
        adm = await asyncio.start_server(self.admin, self.args.host, self.args.admin_port)
        self.log(1, "info", "PEER-0000", "amps peer (not AMPS) listening on %s:%d transport[%s] protocol %s."
                 % (self.args.host, self.port, self.transport_name, self.args.protocol))
        sys.stdout.write(json.dumps({"port": self.port, "admin_port": adm.sockets[0].getsockname()[1],
                                     "pid": os.getpid()}) + "\n")
        sys.stdout.flush()
        tick = asyncio.ensure_future(self.ticker())
        await self.stop_event.wait()
        tick.cancel()
        adm.close()
        if self.server:
            self.server.close()
        for c in list(self.conns):
            c.close("server shutdown")
        await asyncio.sleep(0.05)
        self.log(1, "info", "PEER-0099", "amps peer stopped.")


_re_cache = {}


def _fullmatch(pat, topic):
    r = _re_cache.get(pat)
    if r is None:
        try:
            r = re.compile(pat)
        except re.error:
            r = re.compile(re.escape(pat))
        _re_cache[pat] = r
    return r.fullmatch(topic) is not None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="AMPS peer server for tests (follows the public docs; not AMPS)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--admin-port", type=int, default=0)
    ap.add_argument("--log", default=None, help="log file (default: stderr)")
    ap.add_argument("--protocol", choices=wire.PROTOCOLS, default="amps")
    ap.add_argument("--users", default=None, help="user:password,... (default: anyone may log on)")
    ap.add_argument("--entitled", default=None, help="users allowed to log on, comma-separated (default: all)")
    ap.add_argument("--require-client-name", action="store_true")
    ap.add_argument("--keep-failed-logon", dest="close_failed_logon", action="store_false",
                    help="keep the connection open after a failure ack to logon (default: close it)")
    ap.add_argument("--heartbeat-factor", type=float, default=2.0)
    ap.add_argument("--offline-bytes", type=int, default=256 << 10,
                    help="bytes buffered for a client before it is offlined (70-0011)")
    ap.add_argument("--offline-max-bytes", type=int, default=8 << 20,
                    help="offlined bytes after which the slow client is disconnected (70-0004)")
    ap.add_argument("--slow-grace", type=float, default=5.0,
                    help="seconds offline after which the slow client is disconnected (70-0004)")
    ap.add_argument("--sndbuf", type=int, default=32768, help="SO_SNDBUF per client (0: kernel default)")
    ap.add_argument("--max-frame", type=int, default=wire.MAX_FRAME)
    return ap.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    try:
        asyncio.run(Peer(args).main())
    except KeyboardInterrupt:
        pass
