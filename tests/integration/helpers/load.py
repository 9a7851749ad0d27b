"""A load client for the transparency test: one publisher per QoS (0, 1, 2)
and one subscriber, all raw MQTT over non-blocking sockets driven by one
selector loop (no threads, no GIL contention), through the proxy.

Each publisher sends its share of the messages to its own topic, payloads of
log-uniform random sizes (0 B .. max_size) cut from a random pool at random
offsets. It keeps the SHA-256 of every payload in order; the subscriber
hashes what it receives and compares, in order, message by message. Flow is
bounded end to end (bytes and messages not yet received per publisher, and
QoS 1/2 packets in flight), so neither the proxy nor the broker is asked to
queue without bound and a slow stage slows the publishers instead of making
the broker drop QoS 0 messages.
"""
import hashlib
import math
import random
import selectors
import socket
import struct
import time

from . import packets as P


class Mismatch(AssertionError):
    pass


def sizes(rng, n, max_size):
    top = math.log(max_size + 1)
    return [int(math.exp(rng.uniform(0.0, top))) - 1 for _ in range(n)]


class _Conn:
    def __init__(self, port, client_id, level):
        self.level = level
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = bytearray()
        self.inbuf = bytearray()
        self.sock.sendall(P.connect(client_id, level=level, keepalive=0))
        self.raw = P.RawClient.__new__(P.RawClient)  # reuse the blocking reader for the handshake
        self.raw.sock, self.raw.buf, self.raw.eof, self.raw.level = self.sock, bytearray(), False, level
        _, code, props = self.raw.expect(P.CONNACK).connack(level)
        assert code == 0, "CONNACK %d for %s" % (code, client_id)
        self.receive_max = props.get(P.P_RECEIVE_MAXIMUM, 65535)

    def go_async(self):
        self.inbuf += self.raw.buf
        self.sock.setblocking(False)

    def process(self, handler):
        """Calls handler(first byte, body view) for each whole packet in the
        input buffer, then drops them. <handler> must not keep the view."""
        buf = self.inbuf
        pos, n = 0, len(buf)
        mv = memoryview(buf)
        try:
            while n - pos >= 2:
                i, rl, mult, ok = pos + 1, 0, 1, False
                while i < n and i < pos + 5:
                    b = buf[i]
                    rl += (b & 0x7F) * mult
                    mult <<= 7
                    i += 1
                    if not b & 0x80:
                        ok = True
                        break
                if not ok or i + rl > n:
                    break
                body = mv[i:i + rl]
                try:
                    handler(buf[pos], body)
                finally:
                    body.release()
                pos = i + rl
        finally:
            mv.release()
        del buf[:pos]


def run(port, total=100_000, max_size=256 * 1024, seed=1, deadline_s=120.0, levels=(4, 5, 4), sub_level=4,
        window_bytes=4 << 20, window_msgs=2000, inflight=16, record=None):
    """Pushes <total> messages through <port>; returns a summary dict.
    Raises Mismatch on the first payload that differs, TimeoutError past the deadline."""
    rng = random.Random(seed)
    pool = rng.randbytes(2 * max_size + 1)
    per = [total // 3 + (1 if i < total % 3 else 0) for i in range(3)]
    plan = [sizes(rng, per[q], max_size) for q in range(3)]
    offsets = [[rng.randrange(0, max_size + 1) for _ in range(per[q])] for q in range(3)]
    topics = ["load/q%d" % q for q in range(3)]
    tbytes = [t.encode() for t in topics]

    sub = _Conn(port, "load-sub", sub_level)
    sub.sock.sendall(P.subscribe(1, [("load/#", 2)], level=sub_level))
    suback = sub.raw.expect(P.SUBACK)
    assert suback.body[-1] == 2, "SUBACK %r" % bytes(suback.body)
    pubs = [_Conn(port, "load-pub-q%d" % q, levels[q]) for q in range(3)]
    for c in (sub, *pubs):
        c.go_async()

    digests = [[] for _ in range(3)]      # sent, in order
    sent = [0] * 3                         # messages sent
    sent_bytes = [0] * 3
    got = [0] * 3                          # messages received
    got_bytes = [0] * 3
    inflight_ids = [dict() for _ in range(3)]   # pid -> state (q1: 1 wait PUBACK; q2: 1 wait PUBREC, 2 wait PUBCOMP)
    next_pid = [1] * 3
    limit_inflight = [0, min(inflight, pubs[1].receive_max), min(inflight, pubs[2].receive_max)]

    sel = selectors.DefaultSelector()
    conns = [sub] + pubs
    for i, c in enumerate(conns):
        sel.register(c.sock, selectors.EVENT_READ, i)
    t0 = time.monotonic()

    def build(q):
        i = sent[q]
        n = plan[q][i]
        off = offsets[q][i]
        payload = memoryview(pool)[off:off + n]
        digests[q].append((n, hashlib.sha256(payload).digest()))
        c = pubs[q]
        vh = struct.pack("!H", len(tbytes[q])) + tbytes[q]
        if q:
            pid = next_pid[q]
            next_pid[q] = pid % 65535 + 1
            vh += struct.pack("!H", pid)
            inflight_ids[q][pid] = 1
        if c.level == 5:
            vh += b"\x00"
        c.out += bytes([(P.PUBLISH << 4) | (q << 1)]) + P.varint(len(vh) + n) + vh
        c.out += payload
        sent[q] += 1
        sent_bytes[q] += n

    def on_sub(first, body):
        t = first >> 4
        if t == P.PUBLISH:
            qos = (first >> 1) & 3
            tl = (body[0] << 8) | body[1]
            q = tbytes.index(bytes(body[2:2 + tl]))
            pos = 2 + tl
            pid = None
            if qos:
                pid = (body[pos] << 8) | body[pos + 1]
                pos += 2
            if sub.level == 5:
                plen, pos = P.read_varint_from(body, pos)
                pos += plen
            payload = body[pos:]
            idx = got[q]
            if idx >= sent[q]:
                raise Mismatch("q%d: message %d received but only %d sent" % (q, idx, sent[q]))
            n, dg = digests[q][idx]
            if len(payload) != n or hashlib.sha256(payload).digest() != dg:
                h = hashlib.sha256(payload).digest()
                same = [(qq, i) for qq in range(3) for i, (_, d) in enumerate(digests[qq]) if d == h]
                raise Mismatch("(it is message %s) " % same + "q%d message %d: sent %d bytes sha256 %s, received %d bytes sha256 %s"
                               % (q, idx, n, dg.hex(), len(payload), hashlib.sha256(payload).hexdigest()))
            if qos != q:
                raise Mismatch("q%d message %d arrived with QoS %d" % (q, idx, qos))
            payload.release()
            got[q] += 1
            got_bytes[q] += n
            if qos == 1:
                sub.out += P.ack(P.PUBACK, pid)
            elif qos == 2:
                sub.out += P.ack(P.PUBREC, pid)
        elif t == P.PUBREL:
            sub.out += P.ack(P.PUBCOMP, (body[0] << 8) | body[1])
        elif t != P.PINGRESP:
            raise AssertionError("subscriber got packet type %d" % t)

    def make_on_pub(q):
        c = pubs[q]

        def on_pub(first, body):
            t = first >> 4
            pid = (body[0] << 8) | body[1]
            if len(body) > 2 and body[2] >= 0x80:
                raise AssertionError("q%d: ack type %d for %d with reason %#x" % (q, t, pid, body[2]))
            if t == P.PUBACK and q == 1:
                inflight_ids[q].pop(pid)
            elif t == P.PUBREC and q == 2:
                inflight_ids[q][pid] = 2
                c.out += P.ack(P.PUBREL, pid)
            elif t == P.PUBCOMP and q == 2:
                inflight_ids[q].pop(pid)
            else:
                raise AssertionError("publisher q%d got packet type %d" % (q, t))
        return on_pub

    on_pub = [make_on_pub(q) for q in range(3)]

    while True:
        done = all(got[q] == per[q] for q in range(3)) and not any(inflight_ids[q] for q in (1, 2))
        if done:
            break
        elapsed = time.monotonic() - t0
        if elapsed > deadline_s:
            raise TimeoutError("transparency load not done after %.0f s: sent %s received %s of %s" % (
                elapsed, sent, got, per))
        for q in range(3):
            c = pubs[q]
            while (sent[q] < per[q] and len(c.out) < (1 << 20) and sent_bytes[q] - got_bytes[q] < window_bytes
                   and sent[q] - got[q] < window_msgs and len(inflight_ids[q]) < (limit_inflight[q] or 1 << 30)):
                build(q)
        for i, c in enumerate(conns):
            sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), i)
        for key, ev in sel.select(1.0):
            c = conns[key.data]
            if ev & selectors.EVENT_WRITE and c.out:
                try:
                    k = c.sock.send(c.out)
                    if record is not None:
                        record.setdefault(("tx", key.data), bytearray()).extend(c.out[:k])
                    del c.out[:k]
                except BlockingIOError:
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise AssertionError("connection %d closed by the proxy during the load (sent %s, received %s)"
                                         % (key.data, sent, got))
                c.inbuf += data
                if record is not None:
                    record.setdefault(("rx", key.data), bytearray()).extend(data)
                c.process(on_sub if key.data == 0 else on_pub[key.data - 1])
    elapsed = time.monotonic() - t0
    for c in conns:
        c.sock.setblocking(True)
        c.sock.settimeout(5)
        c.sock.sendall(P.disconnect(c.level))
    addrs = ["%s:%d" % c.sock.getsockname()[:2] for c in conns]
    for c in conns:
        c.sock.close()
    return {"elapsed_s": elapsed, "messages": sum(got), "bytes": sum(got_bytes), "per_qos": got,
            "stream_sha256": [hashlib.sha256(b"".join(d for _, d in digests[q])).hexdigest() for q in range(3)],
            "addrs": addrs, "max_size_sent": max(max(p) for p in plan), "min_size_sent": min(min(p) for p in plan)}
