"""`wirewarden sniff` on damaged captures: the recorded sessions of
tests/data/recorded (real mosquitto, real clients) rewritten here the way real
captures go wrong: segments reordered or duplicated (retransmissions), a
segment lost, the capture started mid-stream, the file cut mid-record, a short
snap length. The rule: a verdict stays what the intact capture says, or becomes
honestly `unknown` or a `guess`; never a different confident (stated or
inferred) answer; never a crash; exit 0, or 1 with a one-line message.

Also the TCP receive window: a client that stops reading while the broker
keeps publishing, until the broker closes the connection. mosquitto 2.0.11 has
no slow-consumer disconnect (a client that stops reading but keeps sending
PINGREQ stays connected; see SOURCES.md), so that capture is built here from a
recorded session: the client's ACKs advertise a zero window, the broker sends
window probes, then FIN. The verdict must be slow_consumer, inferred, with the
window as evidence.

Run: WIREWARDEN=build/wirewarden /usr/bin/python3 -m pytest tests/integration/test_sniff_edge.py
"""
import json
import os
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sniff_verdicts import EXPECTED  # noqa: E402  (the scenarios labelled from mosquitto's log)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(TOP, "tests", "data", "recorded")
WW = os.environ.get("WIREWARDEN", os.path.join(TOP, "build", "wirewarden"))
CONFIDENT = ("stated", "inferred")
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


# ---- a classic pcap of Ethernet/IPv4/TCP frames, read and rewritten ---------

class Frame:
    def __init__(self, ts_us, data, orig_len):
        self.ts_us, self.data, self.orig_len = ts_us, bytearray(data), orig_len

    def copy(self):
        return Frame(self.ts_us, bytes(self.data), self.orig_len)

    # IPv4 and TCP fields (the recorded captures are EN10MB on lo).
    @property
    def ihl(self):
        return (self.data[14] & 15) * 4

    @property
    def tcp_off(self):
        return 14 + self.ihl

    @property
    def thl(self):
        return (self.data[self.tcp_off + 12] >> 4) * 4

    @property
    def sport(self):
        return struct.unpack_from("!H", self.data, self.tcp_off)[0]

    @property
    def dport(self):
        return struct.unpack_from("!H", self.data, self.tcp_off + 2)[0]

    @property
    def seq(self):
        return struct.unpack_from("!I", self.data, self.tcp_off + 4)[0]

    @property
    def ack(self):
        return struct.unpack_from("!I", self.data, self.tcp_off + 8)[0]

    @property
    def flags(self):
        return self.data[self.tcp_off + 13]

    @property
    def window(self):
        return struct.unpack_from("!H", self.data, self.tcp_off + 14)[0]

    @property
    def payload_len(self):
        return struct.unpack_from("!H", self.data, 16)[0] - self.ihl - self.thl

    @property
    def payload(self):
        start = self.tcp_off + self.thl
        return bytes(self.data[start:start + self.payload_len])

    def flow(self):
        return tuple(sorted([self.sport, self.dport]))

    def set_tcp(self, seq=None, ack=None, flags=None, window=None, payload=None):
        o = self.tcp_off
        if seq is not None:
            struct.pack_into("!I", self.data, o + 4, seq & 0xFFFFFFFF)
        if ack is not None:
            struct.pack_into("!I", self.data, o + 8, ack & 0xFFFFFFFF)
        if flags is not None:
            self.data[o + 13] = flags
        if window is not None:
            struct.pack_into("!H", self.data, o + 14, window)
        if payload is not None:
            head = self.data[:o + self.thl]
            self.data = bytearray(head + payload)
            struct.pack_into("!H", self.data, 16, self.ihl + self.thl + len(payload))
            self.orig_len = len(self.data)
        return self


def read_pcap(path):
    data = open(path, "rb").read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "a little-endian microsecond pcap"
    frames, pos = [], 24
    while pos + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        frames.append(Frame(sec * 1000000 + usec, data[pos + 16:pos + 16 + incl], orig))
        pos += 16 + incl
    return data[:24], frames


def pcap_bytes(header, frames):
    out = bytearray(header)
    for f in frames:
        out += struct.pack("<IIII", f.ts_us // 1000000, f.ts_us % 1000000, len(f.data), f.orig_len) + f.data
    return bytes(out)


def broker_port(frames):
    return next(f.dport for f in frames if f.flags & (TCP_SYN | TCP_ACK) == TCP_SYN)


def sniff(tmp_path, name, header, frames, raw=None, port=None):
    """Runs sniff on the rewritten capture, with the broker's port (from
    <frames>' first SYN unless given) as an MQTT port; returns (exit status,
    stderr, verdicts)."""
    path = tmp_path / (name + ".pcap")
    path.write_bytes(raw if raw is not None else pcap_bytes(header, frames))
    port = port or broker_port(frames)
    r = subprocess.run([WW, "sniff", "-r", str(path), "--json", "-", "--port", str(port)], capture_output=True,
                       timeout=60)
    assert r.returncode in (0, 1), "exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace"))
    err = r.stderr.decode()
    if r.returncode == 1:
        assert err.count("\n") == 1 and str(path) in err, err
    else:
        assert err == "", err
    lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
    return r.returncode, err, [v for v in lines if v["type"] == "verdict"]


def key(v):
    return (v["client"], v["reason"], v["closed_by"])


# Coarser answers the wire states when the packet that refined them is lost:
# a CONNACK "not authorized" is auth_failed only when the CONNECT (lost here)
# carried credentials.
COARSER = {"auth_failed": {"not_authorized"}}


def assert_honest(truth, got, what):
    """Every confident verdict of the damaged capture is one the intact capture
    gave for the same connection (client address and port), or the wire's
    coarser word for it."""
    truth_keys = {key(v) for v in truth}
    allowed = truth_keys | {(c, coarse, by) for c, r, by in truth_keys for coarse in COARSER.get(r, ())}
    for v in got:
        if v["confidence"] in CONFIDENT:
            assert key(v) in allowed, "%s: confident %s not in the intact verdicts %s" % (
                what, key(v), sorted(truth_keys))


def load(scenario):
    return read_pcap(os.path.join(REC, scenario + ".pcap"))


@pytest.fixture(scope="module")
def truths(tmp_path_factory):
    """The verdicts of each intact capture, run with --port like the others."""
    tmp = tmp_path_factory.mktemp("intact")
    out = {}
    for sc in sorted(EXPECTED):
        header, frames = load(sc)
        rc, _, verdicts = sniff(tmp, sc, header, frames)
        assert rc == 0
        out[sc] = verdicts
    return out


# ---- transformations ---------------------------------------------------------

def data_frames(frames):
    return [i for i, f in enumerate(frames) if f.payload_len > 0]


def seq_after(a, b):
    """a > b in TCP sequence space."""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def reorder(frames):
    """Each pair of consecutive data segments of one flow and direction less
    than 20 ms apart arrives swapped (as a NIC with several queues reorders);
    the timestamps stay in their slots, so the file is still in time order.
    Causality holds: nothing of another connection lies between them (a
    reordered CONNECT must not land after the close it caused elsewhere), and
    no segment between them acknowledges the first one, except pure ACKs,
    which are dropped (a lost ACK changes nothing)."""
    out = [f.copy() for f in frames]
    last, drop = {}, set()
    reorder.swaps = 0
    for i in data_frames(frames):
        k = (frames[i].sport, frames[i].dport)
        j = last.pop(k, None)
        if j is not None and frames[i].ts_us - frames[j].ts_us < 20000 and \
                all(f.flow() == frames[i].flow() for f in frames[j:i]):
            acking = [m for m in range(j + 1, i) if frames[m].sport == frames[i].dport and
                      frames[m].flags & TCP_ACK and seq_after(frames[m].ack, frames[j].seq)]
            if all(frames[m].payload_len == 0 and frames[m].flags == TCP_ACK for m in acking):
                tj, ti = out[j].ts_us, out[i].ts_us
                out[j], out[i] = out[i], out[j]
                out[j].ts_us, out[i].ts_us = tj, ti
                drop.update(acking)
                reorder.swaps += 1
                continue
        last[k] = i
    return [f for n, f in enumerate(out) if n not in drop]


def late_data(frames):
    """Each data segment reaches the capture just after the ACK for it (two
    capture queues, one per direction, drained in the wrong order): the
    reassembly must wait for it rather than call it lost."""
    out = [f.copy() for f in frames]
    late_data.swaps = 0
    i = 0
    while i + 1 < len(out):
        a, b = out[i], out[i + 1]
        if a.payload_len > 0 and b.flow() == a.flow() and b.sport == a.dport and b.flags & TCP_ACK and \
                seq_after(b.ack, a.seq) and b.ts_us - a.ts_us < 1000:
            out[i], out[i + 1] = b, a
            out[i].ts_us, out[i + 1].ts_us = a.ts_us, b.ts_us
            late_data.swaps += 1
            i += 2
        else:
            i += 1
    return out


def duplicate(frames):
    """Every segment twice, the copy 100 us later (a retransmission)."""
    out = []
    for f in frames:
        out.append(f.copy())
        d = f.copy()
        d.ts_us += 100
        out.append(d)
    return sorted(out, key=lambda f: f.ts_us)


def drop_last_client_data(frames):
    """Each flow loses its client's last data segment (often its DISCONNECT)."""
    port = broker_port(frames)
    last = {}
    for i in data_frames(frames):
        if frames[i].dport == port:
            last[frames[i].flow()] = i
    gone = set(last.values())
    return [f.copy() for i, f in enumerate(frames) if i not in gone]


def drop_first_broker_data(frames):
    """Each flow loses the broker's first data segment (its CONNACK)."""
    port = broker_port(frames)
    first = {}
    for i in data_frames(frames):
        if frames[i].sport == port:
            first.setdefault(frames[i].flow(), i)
    gone = set(first.values())
    return [f.copy() for i, f in enumerate(frames) if i not in gone]


def start_after_first_connect(frames):
    """The capture starts right after the first client data segment."""
    first = data_frames(frames)[0]
    return [f.copy() for f in frames[first + 1:]]


def snaplen(n):
    def cut(frames):
        out = []
        for f in frames:
            c = f.copy()
            c.data = c.data[:n]
            out.append(c)
        return out
    cut.__name__ = "snaplen_%d" % n
    return cut


def drop_broker_fins(frames):
    """Every FIN the broker sent is lost."""
    port = broker_port(frames)
    return [f.copy() for f in frames if not (f.sport == port and f.flags & TCP_FIN)]


def broker_fins_last(frames):
    """Every broker FIN reaches the capture after the client's answer to it
    (moved behind the next frame of its flow)."""
    port = broker_port(frames)
    out = [f.copy() for f in frames]
    i = 0
    while i < len(out):
        f = out[i]
        if f.sport == port and f.flags & TCP_FIN:
            j = next((j for j in range(i + 1, len(out)) if out[j].flow() == f.flow()), None)
            if j is not None:
                ti, tj = out[i].ts_us, out[j].ts_us
                out.insert(j, out.pop(i))
                out[j].ts_us, out[j - 1].ts_us = tj, ti
                i = j
        i += 1
    return out


LOSSLESS = [reorder, late_data, duplicate]
LOSSY = [drop_last_client_data, drop_first_broker_data, start_after_first_connect, snaplen(54), snaplen(60),
         snaplen(68), snaplen(96), drop_broker_fins, broker_fins_last]


@pytest.mark.parametrize("transform", LOSSLESS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_reordered_and_retransmitted_segments_change_nothing(tmp_path, truths, scenario, transform):
    header, frames = load(scenario)
    rc, _, got = sniff(tmp_path, transform.__name__, header, transform(frames))
    assert rc == 0
    want = sorted((key(v), v["confidence"]) for v in truths[scenario])
    assert sorted((key(v), v["confidence"]) for v in got) == want


@pytest.mark.parametrize("transform", LOSSY, ids=lambda t: t.__name__)
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_lost_bytes_never_give_a_wrong_confident_verdict(tmp_path, truths, scenario, transform):
    header, frames = load(scenario)
    rc, _, got = sniff(tmp_path, transform.__name__, header, transform(frames), port=broker_port(frames))
    assert rc == 0
    assert_honest(truths[scenario], got, "%s/%s" % (scenario, transform.__name__))


@pytest.mark.parametrize("scenario", ["v311-keepalive", "v5-keepalive"])
def test_capture_started_after_connect_claims_no_keepalive_timeout(tmp_path, scenario):
    """No CONNECT in the capture: the keep-alive is not known, so the broker's
    close is unknown, not keepalive_timeout."""
    header, frames = load(scenario)
    rc, _, got = sniff(tmp_path, "mid", header, start_after_first_connect(frames), port=broker_port(frames))
    assert rc == 0
    assert [(v["reason"], v["closed_by"], v["confidence"]) for v in got] == [("unknown", "broker", "unknown")]


@pytest.mark.parametrize("scenario,reason", [("v311-keepalive", "keepalive_timeout"),
                                             ("v5-keepalive", "keepalive_timeout"),
                                             ("v311-takeover", "session_taken_over")])
@pytest.mark.parametrize("transform", [drop_broker_fins, broker_fins_last], ids=lambda t: t.__name__)
def test_missing_or_late_broker_fin_is_read_from_the_client_ack(tmp_path, scenario, reason, transform):
    """The client's FIN acknowledges the broker's FIN: the broker closed first,
    even when its FIN is not in the capture or comes after; no reason is
    invented for the client (not client_vanished)."""
    header, frames = load(scenario)
    rc, _, got = sniff(tmp_path, transform.__name__, header, transform(frames))
    assert rc == 0
    closes = [(v["reason"], v["closed_by"], v["confidence"]) for v in got]
    assert (reason, "broker", "inferred") in closes, closes
    assert all(c[0] != "client_vanished" for c in closes), closes


@pytest.mark.parametrize("scenario", ["v311-takeover", "v5-takeover"])
@pytest.mark.parametrize("delay_us", [None, 0, 1500000], ids=["as-recorded", "after-connack", "1.5s-after"])
def test_takeover_whether_the_old_close_comes_before_or_after_the_new_connack(tmp_path, scenario, delay_us):
    """mosquitto closes the old connection between the new CONNECT and its
    CONNACK. The verdict needs the next connection of the same client id,
    which the engine's id table keeps (not the old flow): it stays
    session_taken_over when the capture shows the old close after the new
    CONNACK, at once or 1.5 s later (the old flow itself ends 2 s after its
    close, so later frames of it do not reopen it)."""
    header, frames = load(scenario)
    port = broker_port(frames)
    connects = [i for i, f in enumerate(frames) if f.dport == port and f.payload[:1] == b"\x10"]
    old, new = frames[connects[0]].sport, frames[connects[1]].sport
    connack = next(i for i, f in enumerate(frames) if f.dport == new and f.payload[:1] == b"\x20")
    fin = next(i for i, f in enumerate(frames) if f.sport == port and f.dport == old and f.flags & (TCP_FIN | TCP_RST))
    out = [f.copy() for f in frames]
    if delay_us is None:
        assert connects[1] < fin < connack  # as mosquitto does it
    else:
        moved = [f for i, f in enumerate(out) if i >= fin and old in (f.sport, f.dport)]
        rest = [f for i, f in enumerate(out) if not (i >= fin and old in (f.sport, f.dport))]
        at = rest.index(out[connack]) + 1
        base = out[connack].ts_us + delay_us
        for k, f in enumerate(moved):
            f.ts_us = base + k
        out = rest[:at] + moved + rest[at:]
        out.sort(key=lambda f: f.ts_us)
    rc, _, got = sniff(tmp_path, "takeover", header, out)
    assert rc == 0
    kicked = [(v["reason"], v["closed_by"], v["confidence"]) for v in got if v["client"].endswith(":%d" % old)]
    assert kicked == [("session_taken_over", "broker", "inferred")], got


def test_lost_disconnect_is_a_guess_not_a_vanished_client(tmp_path, truths):
    """demo: each client's last segment is lost (for the clients that ended
    cleanly, their DISCONNECT). A FIN alone would say client_vanished,
    stated; with bytes missing before it the verdict is a guess that says
    what was lost."""
    header, frames = load("demo")
    rc, _, got = sniff(tmp_path, "lostdisc", header, drop_last_client_data(frames))
    assert rc == 0
    clean = {v["client"] for v in truths["demo"] if v["reason"].startswith("client_disconnect")}
    after = [v for v in got if v["client"] in clean]
    assert len(after) == len(clean) >= 4
    assert all(v["confidence"] not in CONFIDENT for v in after), [(key(v), v["confidence"]) for v in after]
    vanished = [v for v in after if v["reason"] == "client_vanished"]
    assert vanished and all(v["confidence"] == "guess" for v in vanished)
    assert all(any("the capture lost" in e["text"] for e in v["evidence"]) for v in after)


def test_publish_after_a_lost_connect_is_not_a_protocol_error(tmp_path):
    """v5-takeover: the second client's CONNECT is lost, its PUBLISH is seen:
    that is not first_packet_not_connect; the flow counts as picked up
    mid-stream."""
    header, frames = load("v5-takeover")
    port = broker_port(frames)
    flows = []
    for f in frames:
        if f.flags & (TCP_SYN | TCP_ACK) == TCP_SYN:
            flows.append(f.flow())
    second_connect = next(i for i in data_frames(frames) if frames[i].dport == port and frames[i].flow() == flows[1])
    rc, _, got = sniff(tmp_path, "lostconnect", header, [f for i, f in enumerate(frames) if i != second_connect])
    assert rc == 0
    assert all(v["reason"] != "first_packet_not_connect" for v in got), got


@pytest.mark.parametrize("cut_at", [0.3, 0.5, 0.9])
def test_file_cut_mid_record_reports_what_came_before(tmp_path, cut_at):
    header, frames = load("demo")
    raw = pcap_bytes(header, frames)
    n = int(len(raw) * cut_at)
    # Land inside a record's data, not on a record boundary.
    bounds, pos = set(), 24
    for f in frames:
        bounds.add(pos)
        pos += 16 + len(f.data)
    while n in bounds or n - 1 in bounds:
        n += 1
    rc, err, got = sniff(tmp_path, "cut", header, frames, raw=raw[:n])
    assert rc == 1 and "truncated" in err
    assert got, "the verdicts of the frames before the cut"


# ---- zero window: a client that stops reading ---------------------------------

def slow_consumer_capture(scenario="v311-slow-consumer"):
    """The recorded <scenario> (a subscriber that stops reading while it keeps
    sending PINGREQ, mosquitto keeping it connected) cut before that client's
    DISCONNECT, and ended the way a broker with a slow-consumer limit ends it:
    a reset (no FIN can pass a zero window). Returns (header, frames, broker
    port, seconds from the window closing to the reset)."""
    header, frames = load(scenario)
    port = broker_port(frames)
    syns = [f for f in frames if f.flags & (TCP_SYN | TCP_ACK) == TCP_SYN]
    # The pinging subscriber: the flow whose client sends PINGREQ (c0 00).
    flow = next(f.flow() for f in frames if f.dport == port and f.payload[:2] == b"\xc0\x00")
    assert any(s.flow() == flow for s in syns)
    disc = next(i for i, f in enumerate(frames) if f.flow() == flow and f.dport == port and
                f.payload[:1] == b"\xe0")
    mine = [f.copy() for f in frames[:disc] if f.flow() == flow]
    zero_at = next(f.ts_us for f in mine if f.dport == port and f.window == 0 and f.flags == TCP_ACK)
    last_s2c = max((f for f in mine if f.sport == port), key=lambda f: (f.seq + f.payload_len) & 0xFFFFFFFF)
    last_c2s = max((f for f in mine if f.dport == port), key=lambda f: (f.seq + f.payload_len) & 0xFFFFFFFF)
    rst = last_s2c.copy().set_tcp(seq=last_s2c.seq + last_s2c.payload_len,
                                  ack=last_c2s.seq + last_c2s.payload_len, flags=TCP_RST | TCP_ACK, payload=b"")
    rst.ts_us = mine[-1].ts_us + 200000
    return header, mine + [rst], port, (rst.ts_us - zero_at) / 1e6


@pytest.mark.parametrize("scenario", ["v311-slow-consumer", "v5-slow-consumer"])
def test_broker_close_after_the_client_window_stayed_closed_is_slow_consumer(tmp_path, scenario):
    header, frames, port, closed_s = slow_consumer_capture(scenario)
    rc, _, got = sniff(tmp_path, "slow", header, frames, port=port)
    assert rc == 0
    assert [(v["reason"], v["closed_by"], v["confidence"]) for v in got] == [("slow_consumer", "broker", "inferred")]
    ev = " | ".join(e["text"] for e in got[0]["evidence"])
    assert "client window closed for" in ev and "bytes unacknowledged" in ev and "window probes" in ev, ev
    secs = float(ev.split("client window closed for ")[1].split(" s")[0])
    assert abs(secs - closed_s) < 0.2, (secs, closed_s)
    probes = int(ev.split(" window probes")[0].rsplit(" ", 1)[1])
    assert probes >= 1, ev  # Linux probes a zero window (empty segment, one below SND.NXT)


def test_window_that_opens_again_is_not_slow_consumer(tmp_path):
    """The same capture with one window update from the client (it read
    again) before the reset: nothing says slow consumer any more."""
    header, frames, port, _ = slow_consumer_capture()
    last = [f for f in frames if f.dport == port][-1]
    upd = last.copy().set_tcp(seq=last.seq + last.payload_len, flags=TCP_ACK, window=512, payload=b"")
    upd.ts_us = frames[-1].ts_us - 1000
    frames.insert(len(frames) - 1, upd)
    rc, _, got = sniff(tmp_path, "slow-reopened", header, frames, port=port)
    assert rc == 0
    assert [(v["reason"], v["closed_by"]) for v in got] == [("unknown", "broker")]


@pytest.mark.parametrize("ver", ["v311", "v5"])
def test_stuck_client_times_out_behind_its_closed_window(tmp_path, ver):
    """Recorded: a client that neither reads nor pings. mosquitto times it out
    ("exceeded timeout" in its log) but its FIN cannot pass the zero window;
    the wire's last word is the client's reset. The verdict says why."""
    header, frames = load(ver + "-slow-consumer")
    rc, _, got = sniff(tmp_path, "stuck", header, frames)
    assert rc == 0
    stuck = [v for v in got if v.get("client_id") == "stuck-" + ver]
    assert [(v["reason"], v["closed_by"], v["confidence"]) for v in stuck] == [
        ("keepalive_timeout", "broker", "inferred")]
    assert any("receive window closed" in e["text"] for e in stuck[0]["evidence"])


# ---- recorded scenarios: what the JSON shows beyond the verdicts -------------

def sniff_lines(scenario, *extra):
    r = subprocess.run([WW, "sniff", "-r", os.path.join(REC, scenario + ".pcap"), *extra], capture_output=True,
                       timeout=60, check=True)
    return [json.loads(l) for l in r.stdout.decode().splitlines()]


@pytest.mark.parametrize("ver", ["v311", "v5"])
def test_takeover_storm_is_reported(ver):
    """Two clients sharing one id from 127.0.0.2 and 127.0.0.3: the engine's
    take-over watch reports the storm (5 take-overs within 60 s from 2
    sources), and each kicked connection is session_taken_over."""
    lines = sniff_lines(ver + "-takeover-storm", "--json", "-")
    storms = [o for o in lines if o["type"] == "event" and o["name"] == "takeover_storm"]
    assert len(storms) == 1 and storms[0]["count"] >= 5 and storms[0]["client_id"] == "twin-" + ver
    assert "from 2 sources" in storms[0]["detail"]
    assert not [o for o in lines if o.get("name") == "would_disconnect"]  # the sniffer does not judge
    taken = [o for o in lines if o["type"] == "verdict" and o["reason"] == "session_taken_over"]
    log = open(os.path.join(REC, ver + "-takeover-storm.mosquitto.log")).read()
    assert len(taken) == log.count("already connected, closing old connection") == 7


def test_receive_maximum_overrun_is_seen_and_mosquitto_refuses_with_pubrec_0x97():
    lines = sniff_lines("v5-receive-maximum", "--json", "-")
    over = [o for o in lines if o["type"] == "event" and o["name"] == "receive_maximum_exceeded"]
    assert over and over[0]["count"] == 3
    packets = sniff_lines("v5-receive-maximum", "--packets")
    assert [p.get("rc") for p in packets if p.get("type") == "PUBREC"].count(0x97) >= 1


@pytest.mark.parametrize("ver", ["v311", "v5"])
def test_server_shutdown_sends_no_disconnect(ver):
    """mosquitto 2.0.11 on SIGTERM: FIN on every connection, no DISCONNECT 0x8B."""
    packets = sniff_lines(ver + "-server-shutdown", "--packets")
    assert not [p for p in packets if p.get("type") == "DISCONNECT"]


def shutdown_flows():
    """server-shutdown-many: its frames, and the client ports of the six
    connections the SIGTERM closed (left-early's excluded)."""
    header, frames = load("server-shutdown-many")
    ports = [f.sport for f in frames if f.payload[:1] == b"\x10" and b"shut-many-" in f.payload]
    assert len(ports) == 6
    return header, frames, ports


def test_broker_closing_every_connection_at_once_is_a_shutdown(tmp_path):
    header, frames, ports = shutdown_flows()
    _, _, verdicts = sniff(tmp_path, "all", header, frames)
    shut = [v for v in verdicts if v["reason"] == "server_shutdown"]
    assert len(shut) == 6 and all(v["closed_by"] == "broker" and v["confidence"] == "inferred" for v in shut)
    assert all(any("broker closed 6 of 6 connections within" in e["text"] for e in v["evidence"]) for v in shut)


def test_one_connection_closed_by_the_broker_is_not_a_shutdown(tmp_path):
    header, frames, ports = shutdown_flows()
    one = [f for f in frames if ports[0] in (f.sport, f.dport)]
    _, _, verdicts = sniff(tmp_path, "one", header, one)
    assert [(v["reason"], v["closed_by"], v["confidence"]) for v in verdicts] == [("unknown", "broker", "unknown")]


def test_a_connection_left_open_means_no_shutdown(tmp_path):
    """Five of the six closed at once, the sixth's close cut from the capture:
    the broker did not close every connection it had, so nothing is called a
    shutdown (five unknown, one still open)."""
    header, frames, ports = shutdown_flows()
    kept = ports[-1]
    fin_at = next(i for i, f in enumerate(frames) if kept in (f.sport, f.dport) and f.flags & (TCP_FIN | TCP_RST))
    cut = [f for i, f in enumerate(frames) if i < fin_at or kept not in (f.sport, f.dport)]
    _, _, verdicts = sniff(tmp_path, "five", header, cut)
    reasons = sorted(v["reason"] for v in verdicts if v.get("client_id", "").startswith("shut-many-"))
    assert reasons == ["still_open"] + ["unknown"] * 5


def test_filter_applies_to_both_passes_of_write(tmp_path):
    """-w reads the capture twice: with a BPF filter both passes see the same
    frames, so each comment lands on a frame of its own connection."""
    header, frames = load("demo")
    gw = next(v for v in sniff_lines("demo", "--json", "-") if v.get("client_id") == "flaky-gw"
              and v["type"] == "verdict")
    other_port = next(f.sport for f in frames if f.flags & (TCP_SYN | TCP_ACK) == TCP_SYN and
                      "%d" % f.sport not in gw["client"])
    out = tmp_path / "f.pcapng"
    subprocess.run([WW, "sniff", "-r", os.path.join(REC, "demo.pcap"), "-w", str(out), "not tcp port %d" % other_port],
                   capture_output=True, timeout=60, check=True)
    rows = subprocess.run(["tshark", "-r", str(out), "-Y", "frame.comment", "-T", "fields", "-e", "tcp.srcport",
                           "-e", "tcp.dstport", "-e", "frame.comment"], capture_output=True, timeout=60,
                          check=True).stdout.decode().splitlines()
    gw_port = gw["client"].rsplit(":", 1)[1]
    mine = [r for r in rows if "client[flaky-gw]" in r]
    assert mine and all(gw_port in r.split("\t")[:2] for r in mine), mine
    assert not [r for r in rows if str(other_port) in r.split("\t")[:2]]
