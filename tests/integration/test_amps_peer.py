"""The AMPS peer itself (tests/amps_peer), so that the tests built on it can
be trusted: framing under any slicing, header forms, and each documented
server behaviour seen from a client and in the peer's AMPS-shaped log.
No wirewarden involved."""
import os
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "amps_peer"))

import wire  # noqa: E402
from client import AmpsClient, storm  # noqa: E402
from fixtures import amps, amps_peer  # noqa: E402,F401
from harness import LINE_RE  # noqa: E402


# ---- wire ----

def test_framer_any_slicing():
    msgs = [wire.message({"c": "publish", "t": "a"}, b"x" * n) for n in (0, 1, 300)]
    stream = b"".join(msgs[:2]) + struct.pack("!I", 0) + msgs[2]
    for step in (1, 2, 3, 5, 7, 64, len(stream)):
        f = wire.Framer()
        got = []
        for i in range(0, len(stream), step):
            got += f.feed(stream[i:i + step])
        assert [wire.decode_json(p)[1] for p in got] == [b"", b"x", b"x" * 300], step


def test_framer_rejects_over_maximum_and_corrupt_length():
    with pytest.raises(wire.FrameError):
        wire.Framer(max_frame=10).feed(struct.pack("!I", 11))
    with pytest.raises(wire.FrameError):
        wire.Framer().feed(b"GET / HTTP/1.1\r\n")  # 0x47455420 > 1 GiB


def test_json_header_body_split_escapes_and_long_keys():
    p = b'{"cmd":"publish","topic":"a}b","x":"q\\"}"}{"body":1}'
    hdr, body = wire.decode_json(p)
    assert hdr == {"c": "publish", "t": "a}b", "x": 'q"}'}
    assert body == b'{"body":1}'
    for bad in (b'{"c":{"n":1}}', b'{"c":"x"', b'[1]', b'{"c":[1]}'):
        with pytest.raises(wire.HeaderError):
            wire.decode_json(bad)


@pytest.mark.parametrize("proto", ["fix", "nvfix"])
def test_fix_round_trip(proto):
    f = {"c": "logon", "client_name": "n", "user_id": "u", "o": "start,5"}
    p = wire.encode(f, b"body", proto)
    assert p.count(b"\x02") == 1 and p.endswith(b"\x02body")
    if proto == "fix":
        assert p.startswith(b"20000=logon\x0120002=n\x0120003=u\x0120039=start,5\x01")
    assert wire.decode(p, proto) == (f, b"body")


# ---- server behaviour ----

def test_logon_ack_processed_and_log_line_shape(amps_peer, amps):
    s = amps_peer()
    c = amps(s.port)
    ack = c.logon("shape-1", "u1")
    assert (ack["c"], ack["a"], ack["status"], ack["client_name"]) == ("ack", "processed", "success", "shape-1")
    c.close()
    assert s.closed(c.addr) == ("client", "connection closed")
    lines = s.log_text().splitlines()
    assert lines and all(LINE_RE.match(l) for l in lines), lines
    assert s.wait_log("07-0013", "client[shape-1] disconnected.")


def test_no_ack_unless_asked(amps_peer, amps):
    s = amps_peer()
    c = amps(s.port)
    c.logon("quiet", ack=None)
    c.publish("t", b"x")
    assert c.is_open_for(0.3) and c.frames == []


@pytest.mark.parametrize("user,pw,reason", [("alice", "wrong", "auth failure"), ("nobody", "x", "auth failure"),
                                            ("eve", "evepw", "not entitled")])
def test_logon_refused_with_failure_ack_and_closed(amps_peer, amps, user, pw, reason):
    s = amps_peer(users="alice:alicepw,eve:evepw", entitled="alice")
    c = amps(s.port)
    ack = c.logon("refused", user, pw)
    assert (ack["status"], ack["reason"]) == ("failure", reason)
    assert c.wait_closed() == []
    assert s.closed(c.addr) == ("server", reason)


def test_keep_failed_logon_leaves_connection_open(amps_peer, amps):
    s = amps_peer(users="alice:alicepw", keep_failed_logon=True)
    c = amps(s.port)
    assert c.logon("x", "alice", "bad")["reason"] == "auth failure"
    assert c.is_open_for(0.3)
    assert c.logon("x", "alice", "alicepw")["status"] == "success"


def test_second_logon_same_name_same_user_closes_the_old_one(amps_peer, amps):
    s = amps_peer()
    a = amps(s.port)
    assert a.logon("dup", "u")["status"] == "success"
    b = amps(s.port)
    assert b.logon("dup", "u")["status"] == "success"
    assert a.wait_closed() == []  # documented: the old connection is not told
    assert s.closed(a.addr) == ("server", "name in use")
    assert s.wait_log("02-0025", "client[dup] with user id: u")
    assert b.is_open_for(0.2)


def test_same_name_other_user_is_refused_name_in_use(amps_peer, amps):
    s = amps_peer()
    a = amps(s.port)
    a.logon("owned", "u1")
    b = amps(s.port)
    ack = b.logon("owned", "u2")
    assert (ack["status"], ack["reason"]) == ("failure", "name in use")
    b.wait_closed()
    assert a.is_open_for(0.2)


def test_storm_twins_take_each_other_over(amps_peer):
    s = amps_peer()
    cs = storm(s.port, "twins", 4)
    assert len(cs) == 5 and cs[-1].is_open_for(0.1)
    assert {c.addr.split(":")[0] for c in cs} == {"127.0.0.2", "127.0.0.3"}
    assert len(s.wait_log("02-0025", "client[twins]", count=4)) == 4
    for c in cs[:-1]:
        assert s.closed(c.addr) == ("server", "name in use")
    cs[-1].close()


def test_heartbeat_watchdog_closes_after_two_intervals(amps_peer, amps):
    s = amps_peer()
    c = amps(s.port)
    c.logon("hb")
    c.heartbeat_start(0.5)
    t = time.monotonic()
    c.wait_closed(3)
    assert 0.95 <= time.monotonic() - t < 1.6
    assert s.closed(c.addr) == ("server", "heartbeat")
    assert s.wait_log("07-0042", "unresponsive client: hb")


def test_heartbeat_beats_keep_client_and_server_beats_when_idle(amps_peer, amps):
    s = amps_peer()
    c = amps(s.port)
    c.logon("beater")
    c.heartbeat_start(0.4)
    for _ in range(6):  # 1.8 s, over twice 2 x 0.4
        assert c.is_open_for(0.3)
        c.beat()
    assert any(h.get("c") == "heartbeat" for h, _ in c.frames)


@pytest.mark.parametrize("how", ["unknown_command", "garbage", "bad_header"])
def test_unknown_or_malformed_command_closes(amps_peer, amps, how):
    s = amps_peer()
    c = amps(s.port)
    c.logon("bad-" + how)
    getattr(c, how)()
    c.wait_closed()
    assert s.closed(c.addr) == ("server", "unknown command")


def test_publish_delivered_to_subscriber(amps_peer, amps):
    s = amps_peer()
    sub = amps(s.port)
    sub.logon("sub")
    sub.subscribe("orders", "s1")
    pub = amps(s.port)
    pub.logon("pub")
    assert pub.publish("orders", b"hello", ack="processed")["status"] == "success"
    h, b = sub.read()
    assert (h["c"], h["t"], h["sub_id"], b) == ("publish", "orders", "s1", b"hello")


def test_slow_subscriber_offlined_then_disconnected(amps_peer, amps):
    s = amps_peer(offline_bytes=65536, slow_grace=1.0)
    sub = amps(s.port, rcvbuf=4096)
    sub.logon("sleepy-client")
    sub.subscribe("feed")
    pub = amps(s.port)
    pub.logon("firehose")
    for _ in range(300):
        pub.publish("feed", b"x" * 1024)
    pub.publish("feed", b"", ack="processed")
    off = s.wait_log("70-0011", "client[sleepy-client] slow consumption detected, offline messages.")
    gone = s.wait_log("70-0004", "client[sleepy-client] is not consuming messages, disconnecting slow client",
                      timeout=4)
    assert off[0][0] < gone[0][0]
    assert s.closed(sub.addr) == ("server", "slow client")
    assert pub.is_open_for(0.1)


def test_admin_disconnect_and_transport_disable(amps_peer, amps):
    s = amps_peer()
    a = amps(s.port)
    a.logon("sleepy-client")
    b = amps(s.port)
    b.logon("other")
    assert s.admin("disconnect sleepy-client") == "1"
    a.wait_closed()
    assert s.closed(a.addr) == ("server", "admin disconnect")
    assert s.wait_log("07-0013", "client[sleepy-client] disconnected.")
    assert s.admin("disable") == "1"
    b.wait_closed()
    assert s.closed(b.addr) == ("server", "transport disabled")
    assert s.wait_log("07-0047", "Transport[json-tcp] being disabled.")
    with pytest.raises(OSError):
        amps(s.port)
    s.admin("enable")
    assert amps(s.port).logon("back")["status"] == "success"


def test_command_before_logon_refused_logon_required(amps_peer, amps):
    s = amps_peer()
    c = amps(s.port)
    assert c.publish("t", b"x", ack="processed")["reason"] == "logon required"


@pytest.mark.parametrize("proto", ["fix", "nvfix"])
def test_fix_protocols_logon_and_publish(amps_peer, amps, proto):
    s = amps_peer(protocol=proto)
    sub = amps(s.port, protocol=proto)
    assert sub.logon("fsub")["status"] == "success"
    sub.subscribe("q")
    pub = amps(s.port, protocol=proto)
    pub.logon("fpub")
    pub.publish("q", b"fixbody", ack="processed")
    h, b = sub.read()
    assert (h["c"], b) == ("publish", b"fixbody")


def test_client_vanished_is_connection_closed(amps_peer, amps):
    s = amps_peer()
    c = amps(s.port)
    c.logon("ghost")
    c.vanish()
    assert s.closed(c.addr) == ("client", "connection closed")
