"""Hand-written MQTT 3.1.1 and 5.0 packets for raw-socket clients, and a
small blocking client that reads whole packets with bounded waits.

Only what the proxy tests need: CONNECT, PUBLISH, the four PUBLISH acks,
SUBSCRIBE, PINGREQ and DISCONNECT out; any packet in, with CONNACK, SUBACK,
PUBLISH and DISCONNECT parsed. Level 4 is 3.1.1, level 5 is 5.0.
Specs: OASIS MQTT 3.1.1 section 2-3, MQTT 5.0 sections 2-3.
"""
import socket
import struct
import time

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

# MQTT 5 property ids used here
P_SESSION_EXPIRY = 0x11
P_RECEIVE_MAXIMUM = 0x21
P_MAX_PACKET_SIZE = 0x27
P_REASON_STRING = 0x1F


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("!H", len(b)) + b


def frame(first, body):
    return bytes([first]) + varint(len(body)) + body


def props(items=()):
    """MQTT 5 property block from (id, value) pairs; values: int for the
    numeric properties used here, bytes/str for strings."""
    out = bytearray()
    for pid, val in items:
        out += varint(pid)
        if pid == P_RECEIVE_MAXIMUM:
            out += struct.pack("!H", val)
        elif pid in (P_SESSION_EXPIRY, P_MAX_PACKET_SIZE):
            out += struct.pack("!I", val)
        elif pid == P_REASON_STRING:
            out += s16(val)
        else:
            raise ValueError("property %#x not supported here" % pid)
    return varint(len(out)) + bytes(out)


def connect(client_id, level=4, keepalive=60, clean=True, will=None, username=None, password=None,
            properties=()):
    """CONNECT. <will> is (topic, payload, qos, retain)."""
    flags = 0x02 if clean else 0
    payload = s16(client_id)
    if will:
        topic, wpayload, wqos, wretain = will
        flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        if level == 5:
            payload += props()
        payload += s16(topic) + s16(wpayload)
    if username is not None:
        flags |= 0x80
        payload += s16(username)
    if password is not None:
        flags |= 0x40
        payload += s16(password)
    vh = s16("MQTT") + bytes([level, flags]) + struct.pack("!H", keepalive)
    if level == 5:
        vh += props(properties)
    return frame(CONNECT << 4, vh + payload)


def publish(topic, payload=b"", qos=0, pid=None, retain=False, dup=False, level=4, qos_bits=None):
    """PUBLISH. <qos_bits> overrides the header's QoS bits (3 makes it malformed)."""
    if isinstance(payload, str):
        payload = payload.encode()
    bits = qos if qos_bits is None else qos_bits
    first = (PUBLISH << 4) | (0x08 if dup else 0) | (bits << 1) | (0x01 if retain else 0)
    vh = s16(topic)
    if qos > 0 or (qos_bits or 0) > 0:
        vh += struct.pack("!H", pid or 1)
    if level == 5:
        vh += props()
    return frame(first, vh + payload)


def ack(kind, pid, level=4):
    """PUBACK, PUBREC, PUBREL or PUBCOMP (PUBREL carries flags 0b0010)."""
    first = (kind << 4) | (0x02 if kind == PUBREL else 0)
    return frame(first, struct.pack("!H", pid))


def subscribe(pid, topics, level=4):
    """SUBSCRIBE for [(filter, qos)]."""
    body = struct.pack("!H", pid)
    if level == 5:
        body += props()
    for t, q in topics:
        body += s16(t) + bytes([q])
    return frame((SUBSCRIBE << 4) | 0x02, body)


def pingreq():
    return bytes([PINGREQ << 4, 0])


def disconnect(level=4, reason=0):
    if level < 5:
        return bytes([DISCONNECT << 4, 0])
    return frame(DISCONNECT << 4, bytes([reason]) + props())


def read_varint_from(buf, pos):
    """(value, next position) of the Variable Byte Integer at buf[pos], or
    None when buf ends first."""
    mult, val = 1, 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        b = buf[pos + i]
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, pos + i + 1
        mult *= 128
    raise ValueError("varint longer than 4 bytes")


def parse_props(body, pos):
    """Parses a v5 property block at body[pos]: ({id: value}, next pos)."""
    plen, pos = read_varint_from(body, pos)
    end = pos + plen
    out = {}
    while pos < end:
        pid, pos = read_varint_from(body, pos)
        if pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):
            out[pid] = body[pos]
            pos += 1
        elif pid in (0x13, 0x21, 0x22, 0x23):
            out[pid] = struct.unpack_from("!H", body, pos)[0]
            pos += 2
        elif pid in (0x02, 0x11, 0x18, 0x27):
            out[pid] = struct.unpack_from("!I", body, pos)[0]
            pos += 4
        elif pid == 0x0B:
            out[pid], pos = read_varint_from(body, pos)
        elif pid == 0x26:  # user property: a string pair
            k = body[pos + 2:pos + 2 + struct.unpack_from("!H", body, pos)[0]]
            pos += 2 + len(k)
            v = body[pos + 2:pos + 2 + struct.unpack_from("!H", body, pos)[0]]
            pos += 2 + len(v)
            out.setdefault(pid, []).append((bytes(k), bytes(v)))
        else:  # strings and binary data
            n = struct.unpack_from("!H", body, pos)[0]
            out[pid] = bytes(body[pos + 2:pos + 2 + n])
            pos += 2 + n
    return out, end


class Packet:
    """One packet read from the wire: type, flags, body (after the fixed
    header) and raw (the whole packet)."""

    def __init__(self, first, body, raw):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        self.raw = raw

    def connack(self, level):
        """(session_present, code, properties) of a CONNACK."""
        assert self.type == CONNACK, "expected CONNACK, got type %d" % self.type
        p = {}
        if level == 5 and len(self.body) > 2:
            p, _ = parse_props(self.body, 2)
        return bool(self.body[0] & 1), self.body[1], p

    def disconnect_code(self):
        assert self.type == DISCONNECT, "expected DISCONNECT, got type %d" % self.type
        return self.body[0] if self.body else 0

    def publish(self, level):
        """(topic, qos, retain, pid, payload) of a PUBLISH."""
        assert self.type == PUBLISH
        qos = (self.flags >> 1) & 3
        n = struct.unpack_from("!H", self.body, 0)[0]
        topic = bytes(self.body[2:2 + n]).decode()
        pos = 2 + n
        pid = None
        if qos:
            pid = struct.unpack_from("!H", self.body, pos)[0]
            pos += 2
        if level == 5:
            _, pos = parse_props(self.body, pos)
        return topic, qos, bool(self.flags & 1), pid, bytes(self.body[pos:])

    def pid(self):
        return struct.unpack_from("!H", self.body, 0)[0]

    def __repr__(self):
        return "Packet(type=%d flags=%#x len=%d)" % (self.type, self.flags, len(self.body))


class RawClient:
    """A blocking TCP client that speaks MQTT by hand. Every read is bounded."""

    def __init__(self, port, bind="127.0.0.1", host="127.0.0.1", rcvbuf=None, timeout=5):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((bind, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.level = 4

    @property
    def addr(self):
        """"ip:port" of this end, as the proxy's events write `client`."""
        ip, port = self.sock.getsockname()[:2]
        return "%s:%d" % (ip, port)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the peer in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError("no data from the peer in time") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed by the peer")
        self.buf += chunk

    def read_packet(self, timeout=5):
        """The next whole packet. TimeoutError after <timeout> s; EOFError if
        the peer closes first."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                r = read_varint_from(self.buf, 1)
                if r is not None:
                    n, pos = r
                    if len(self.buf) >= pos + n:
                        raw = bytes(self.buf[:pos + n])
                        del self.buf[:pos + n]
                        return Packet(raw[0], raw[pos:], raw)
            self._fill(deadline)

    def expect(self, ptype, timeout=5):
        """Reads packets until one of type <ptype> (skipping PINGRESP)."""
        while True:
            p = self.read_packet(timeout)
            if p.type == ptype:
                return p
            if p.type != PINGRESP:
                raise AssertionError("expected packet type %d, got %r" % (ptype, p))

    def wait_closed(self, timeout=5):
        """Reads (and returns) packets until the peer closes; TimeoutError if
        it is still open after <timeout> s."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self.read_packet(max(0.001, deadline - time.monotonic())))
            except EOFError:
                return got

    def is_open_for(self, seconds):
        """True if the peer neither sends anything nor closes for <seconds>;
        False if it closes; AssertionError if it sends a packet."""
        try:
            p = self.read_packet(seconds)
        except TimeoutError:
            return True
        except EOFError:
            return False
        raise AssertionError("unexpected %r while waiting for silence" % p)

    def mqtt_connect(self, client_id, level=4, timeout=5, **kw):
        """Sends CONNECT and returns the CONNACK's (session_present, code, props)."""
        self.level = level
        self.send(connect(client_id, level=level, **kw))
        return self.expect(CONNACK, timeout).connack(level)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()
