"""Every AMPS disconnect reason through `wirewarden proxy` with a
`protocol: amps` listener, in observe and in enforce mode, against the AMPS
peer (tests/amps_peer: written from the public documentation, not AMPS;
see doc/amps.md). Each test checks the JSON event (id from the catalog,
reason, amps_reason, closed_by, evidence) and what the client saw (a
failure ack and its reason, the socket closed or not), and the peer's log
says what the server did.

Twins connect from 127.0.0.2 and 127.0.0.3, as in the MQTT take-over tests."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "amps_peer"))

from client import Closed  # noqa: E402
from fixtures import amps, amps_peer  # noqa: E402,F401
from helpers.expect import reason_id  # noqa: E402
from helpers.procs import free_port  # noqa: E402

A, B = "127.0.0.2", "127.0.0.3"
USERS = "svc:svcpw,ops:opspw,guest:guestpw"


def amps_config(upstream_port, port, **policies):
    """A proxy config with one `protocol: amps` listener and <policies>."""
    cfg = {"listeners": [{"name": "amps", "listen": "127.0.0.1:%d" % port, "upstream": "127.0.0.1:%d" % upstream_port,
                          "protocol": "amps"}]}
    if policies:
        cfg["policies"] = policies
    return cfg


@pytest.fixture
def amps_proxy(proxy):
    """amps_proxy(peer, **policies) -> a started proxy with an amps listener in front of <peer>."""
    def make(peer, **policies):
        port = free_port()
        return proxy(peer.port, config=amps_config(peer.port, port, **policies), port=port)
    return make


def ident(e):
    return e.get("client_id", e.get("client_name"))


def amps_disconnect(px, addr, reason, closed_by, amps_reason, timeout=5, **more):
    """The disconnect event of <addr>; asserts the catalog id, reason, AMPS
    reason, closer, evidence, and any <more> fields."""
    d = px.disconnect_of(addr, timeout=timeout)
    got = {k: d.get(k) for k in ("reason", "closed_by", "amps_reason", "id")}
    want = {"reason": reason, "closed_by": closed_by, "amps_reason": amps_reason, "id": reason_id(reason)}
    assert got == want, "disconnect %s, expected %s\n%s" % (got, want, d)
    assert d.get("evidence"), "disconnect without evidence: %s" % d
    for k, v in more.items():
        assert d.get(k) == v, "%s=%r, expected %r: %s" % (k, d.get(k), v, d)
    return d


def enforced_by(d, policy):
    assert (d.get("policy"), d.get("mode"), d.get("closed_by")) == (policy, "enforce", "proxy"), d


def would(px, reason, policy, amps_reason, timeout=5, **fields):
    w = px.wait_event("would_disconnect", timeout=timeout, reason=reason, policy=policy, **fields)
    assert (w["mode"], w.get("amps_reason")) == ("observe", amps_reason), w
    return w


MODES = ["observe", "enforce"]


# ---- ends the client or the server chose ----------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_clean_close_is_connection_closed_by_client(amps_peer, amps_proxy, amps, mode):
    s = amps_peer()
    px = amps_proxy(s, protocol={"mode": mode}, heartbeat={"mode": mode})
    c = amps(px.port)
    assert c.logon("clean-1", "svc")["status"] == "success"
    c.heartbeat_start(5)
    c.publish("orders", b"{}", ack="processed")
    c.close()
    d = amps_disconnect(px, c.addr, "client_vanished", "client", "connection closed")
    assert ident(d) == "clean-1"
    assert s.wait_log("07-0013", "client[clean-1] disconnected.")


@pytest.mark.parametrize("mode", MODES)
def test_client_vanished_rst(amps_peer, amps_proxy, amps, mode):
    s = amps_peer()
    px = amps_proxy(s, heartbeat={"mode": mode})
    c = amps(px.port)
    c.logon("ghost", "svc")
    c.vanish()
    amps_disconnect(px, c.addr, "client_vanished", "client", "connection closed")
    s.wait_log("07-0013", "client[ghost] disconnected.")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("user,pw,reason,amps_reason", [("svc", "wrong", "auth_failed", "auth failure"),
                                                        ("guest", "guestpw", "not_authorized", "not entitled")],
                         ids=["auth-failure", "not-entitled"])
def test_logon_refused_by_the_server(amps_peer, amps_proxy, amps, mode, user, pw, reason, amps_reason):
    s = amps_peer(users=USERS, entitled="svc,ops")
    px = amps_proxy(s, access={"mode": mode})
    c = amps(px.port)
    ack = c.logon("refused-" + user, user, pw)
    assert (ack["status"], ack["reason"]) == ("failure", amps_reason)  # passed through untouched
    assert c.wait_closed() == []
    d = amps_disconnect(px, c.addr, reason, "broker", amps_reason)
    assert ident(d) == "refused-" + user
    s.wait_log("PEER-0003", amps_reason)


@pytest.mark.parametrize("mode", MODES)
def test_name_in_use_takeover_closed_by_broker(amps_peer, amps_proxy, amps, mode):
    s = amps_peer()
    px = amps_proxy(s, takeover={"mode": mode, "storm_count": 5, "storm_window": "20s", "cooldown": "5s"})
    a = amps(px.port, bind=A)
    assert a.logon("orders-7", "svc")["status"] == "success"
    b = amps(px.port, bind=A)
    assert b.logon("orders-7", "svc")["status"] == "success"
    assert a.wait_closed() == []  # AMPS does not tell the old connection
    d = amps_disconnect(px, a.addr, "session_taken_over", "broker", "name in use")
    assert ident(d) == "orders-7"
    t = px.wait_event("session_taken_over", client_id="orders-7")
    assert A in t.get("detail", ""), t
    assert b.is_open_for(0.3)
    assert s.wait_log("02-0025", "client[orders-7]")


def test_name_in_use_by_another_user_refused_by_broker(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s)
    a = amps(px.port)
    a.logon("shared", "svc")
    b = amps(px.port)
    ack = b.logon("shared", "ops")
    assert (ack["status"], ack["reason"]) == ("failure", "name in use")
    b.wait_closed()
    amps_disconnect(px, b.addr, "name_in_use", "broker", "name in use")
    assert a.is_open_for(0.2)


# ---- policies: heartbeat ------------------------------------------------------------------

def test_heartbeat_enforce_closes_both_sides_before_the_server(amps_peer, amps_proxy, amps):
    """start,1 then silence: the proxy (amps_factor 1.5) closes at 1.5 s, before the
    peer's 2 x 1 s; AMPS has no disconnect message, so both sides are closed."""
    s = amps_peer()
    px = amps_proxy(s, heartbeat={"mode": "enforce", "amps_factor": 1.5})
    c = amps(px.port)
    c.logon("no-heartbeat-client", "svc")
    c.heartbeat_start(1)
    t = time.monotonic()
    c.wait_closed(4)
    assert 1.4 <= time.monotonic() - t < 1.95
    d = amps_disconnect(px, c.addr, "keepalive_timeout", "proxy", "heartbeat")
    enforced_by(d, "heartbeat")
    # the upstream was closed by the proxy, so the peer saw its client go, not a heartbeat miss
    assert s.closed(_upstream_addr(s, "no-heartbeat-client")) == ("client", "connection closed")
    assert not [l for l in s.log_lines() if l[3] == "07-0042"]


def test_heartbeat_observe_reports_and_the_server_closes_at_twice(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, heartbeat={"mode": "observe", "amps_factor": 1.5})
    c = amps(px.port)
    c.logon("no-heartbeat-client", "svc")
    c.heartbeat_start(1)
    w = would(px, "keepalive_timeout", "heartbeat", "heartbeat", timeout=3)
    assert w["client"] == c.addr
    c.wait_closed(4)
    d = amps_disconnect(px, c.addr, "keepalive_timeout", "broker", "heartbeat")
    assert d.get("mode") != "enforce"
    assert d["duration_s"] >= 1.9
    s.wait_log("07-0042", "no-heartbeat-client")


def test_heartbeat_beats_keep_the_client(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, heartbeat={"mode": "enforce", "amps_factor": 1.5})
    c = amps(px.port)
    c.logon("beater", "svc")
    c.heartbeat_start(1)
    for _ in range(8):  # 3.2 s of beats every 0.4 s
        assert c.is_open_for(0.4)
        c.beat()
    assert not px.settled_events("heartbeat_missed") and not px.events("disconnect")


# ---- policies: takeover storm -------------------------------------------------------------

def storm_cfg(mode):
    return {"mode": mode, "storm_count": 3, "storm_window": "20s", "cooldown": "5s"}


def take_over_twice(px, amps, name):
    a1 = amps(px.port, bind=A)
    assert a1.logon(name, "svc")["status"] == "success"
    b1 = amps(px.port, bind=B)
    assert b1.logon(name, "svc")["status"] == "success"
    a1.wait_closed()
    a2 = amps(px.port, bind=A)
    assert a2.logon(name, "svc")["status"] == "success"
    b1.wait_closed()
    for old in (a1, b1):
        amps_disconnect(px, old.addr, "session_taken_over", "broker", "name in use")
    return a2


def test_takeover_storm_enforce_refuses_the_newest_source_with_a_failure_ack(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, takeover=storm_cfg("enforce"))
    a2 = take_over_twice(px, amps, "twin-enf")
    b2 = amps(px.port, bind=B)
    ack = b2.logon("twin-enf", "svc")
    assert (ack["c"], ack["status"], ack["reason"]) == ("ack", "failure", "name in use")
    assert str(ack.get("cid")) == "1"
    assert b2.wait_closed() == []
    st = px.wait_event("takeover_storm")
    assert (st["count"], st["policy"], st["mode"]) == (3, "takeover", "enforce")
    assert A in st["detail"] and B in st["detail"]
    d = amps_disconnect(px, b2.addr, "takeover_storm_refused", "proxy", "name in use")
    enforced_by(d, "takeover")
    assert a2.is_open_for(0.3)  # the twin connected keeps its session
    # the refused logon never reached the server: 2 take-overs in its log, not 3
    assert len([l for l in s.log_lines() if l[3] == "02-0025"]) == 2


def test_takeover_storm_observe_reports_and_lets_it_happen(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, takeover=storm_cfg("observe"))
    a2 = take_over_twice(px, amps, "twin-obs")
    b2 = amps(px.port, bind=B)
    assert b2.logon("twin-obs", "svc")["status"] == "success"
    st = px.wait_event("takeover_storm")
    assert (st["count"], st["mode"]) == (3, "observe")
    w = would(px, "takeover_storm_refused", "takeover", "name in use")
    assert w["client"] == b2.addr
    a2.wait_closed()
    amps_disconnect(px, a2.addr, "session_taken_over", "broker", "name in use")
    assert len(s.wait_log("02-0025", "client[twin-obs]", count=3)) == 3


# ---- policies: protocol (unknown command, malformed, not AMPS) -----------------------------------

def test_unknown_command_enforce_closed_by_proxy_before_the_server_sees_it(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, protocol={"mode": "enforce"})
    c = amps(px.port)
    c.logon("confused", "svc")
    c.unknown_command("frobnicate")
    assert c.wait_closed() == []
    d = amps_disconnect(px, c.addr, "unknown_command", "proxy", "unknown command")
    enforced_by(d, "protocol")
    assert "frobnicate" in (d.get("detail") or "") + str(d.get("evidence"))
    assert not [l for l in s.log_lines() if l[3] == "PEER-0004"]  # the server never saw it


def test_unknown_command_observe_the_server_closes(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, protocol={"mode": "observe"})
    c = amps(px.port)
    c.logon("confused", "svc")
    c.unknown_command("frobnicate")
    would(px, "unknown_command", "protocol", "unknown command")
    c.wait_closed()
    d = amps_disconnect(px, c.addr, "unknown_command", "broker", "unknown command")
    assert d.get("mode") != "enforce"
    s.wait_log("PEER-0004", "command[frobnicate]")


@pytest.mark.parametrize("mode", MODES)
def test_malformed_header_is_unknown_command_in_amps_words(amps_peer, amps_proxy, amps, mode):
    s = amps_peer()
    px = amps_proxy(s, protocol={"mode": mode})
    c = amps(px.port)
    c.logon("garbled", "svc")
    c.bad_header()
    c.wait_closed()
    d = amps_disconnect(px, c.addr, "malformed_packet", "proxy" if mode == "enforce" else "broker",
                        "unknown command")
    if mode == "enforce":
        enforced_by(d, "protocol")


def test_not_amps_bytes_on_an_amps_listener(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, protocol={"mode": "enforce"})
    c = amps(px.port)
    c.garbage(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    c.wait_closed()
    d = px.disconnect_of(c.addr)
    assert d["closed_by"] == "proxy", d
    assert px.events("unrecognized_protocol", client=c.addr), px.events()


# ---- policies: slow client ----------------------------------------------------------------

def flood(amps, port, topic, n=400, size=1024):
    pub = amps(port)
    pub.logon("firehose-%s" % topic, "svc")
    for _ in range(n):
        pub.publish(topic, b"x" * size)
    pub.publish(topic, b"", ack="processed")
    return pub


SLOW = {"offline_bytes": "64KiB", "disconnect_bytes": "1MiB", "grace": "1s"}


def test_slow_client_enforce_offlined_then_disconnected_by_proxy(amps_peer, amps_proxy, amps):
    # the peer's own thresholds are far off, so that the proxy acts first
    s = amps_peer(offline_bytes=8 << 20, slow_grace=30)
    px = amps_proxy(s, slow_client=dict(SLOW, mode="enforce"))
    sub = amps(px.port, rcvbuf=4096)
    sub.logon("sleepy-client", "svc")
    sub.subscribe("feed")
    flood(amps, s.port, "feed")
    det = px.wait_event("slow_consumption_detected", timeout=10, client=sub.addr)
    assert (det["policy"], det["mode"]) == ("slow_client", "enforce")
    time.sleep(max(0.0, det["ts_us"] / 1e6 + 1.6 - time.time()))
    sub.wait_closed(6)
    d = amps_disconnect(px, sub.addr, "slow_consumer", "proxy", "slow client")
    enforced_by(d, "slow_client")


def test_slow_client_observe_the_server_offlines_then_disconnects(amps_peer, amps_proxy, amps):
    """Observe changes nothing: the proxy's buffer toward the stuck client fills,
    it stops reading from the server, the server offlines the client (70-0011)
    and resets it after its grace (70-0004). The proxy must notice that close
    while its reading from the server is paused, and say the server closed."""
    # the server's grace (3 s) well past the proxy's (1 s): the proxy's would_disconnect comes first
    # the peer's byte cap far above the flood: it must end the client by its grace (as asserted),
    # not by the cap, which an 8 MiB flood could reach in 0.1 s, before any would_disconnect
    s = amps_peer(offline_bytes=65536, slow_grace=3, offline_max_bytes=64 << 20)
    px = amps_proxy(s, slow_client=dict(SLOW, mode="observe"))
    sub = amps(px.port, rcvbuf=4096)
    sub.logon("sleepy-client", "svc")
    sub.subscribe("feed")
    # 8 MiB: more than the proxy's own buffer (1 MiB) and the kernel's queues hold, so the
    # backpressure reaches the server
    flood(amps, s.port, "feed", n=8192)
    px.wait_event("slow_consumption_detected", timeout=10, client=sub.addr)
    would(px, "slow_consumer", "slow_client", "slow client", timeout=10)
    s.wait_log("70-0011", "client[sleepy-client]", timeout=10)
    s.wait_log("70-0004", "client[sleepy-client]", timeout=15)
    d = px.disconnect_of(sub.addr, timeout=5)
    assert d["closed_by"] == "broker" and d.get("mode") != "enforce", d


# ---- the server's admin -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["disconnect sleepy-client", "disable", "entitlement_reset ops"],
                         ids=["admin-disconnect", "transport-disabled", "entitlement-reset"])
def test_server_admin_close_is_closed_by_broker_and_the_wire_cannot_say_why(amps_peer, amps_proxy, amps, mode,
                                                                           action):
    """AMPS says nothing on the wire for these: the honest verdict is a bare
    server close (its reason only in the server's log)."""
    s = amps_peer()
    px = amps_proxy(s, heartbeat={"mode": mode}, protocol={"mode": mode})
    c = amps(px.port)
    c.logon("sleepy-client", "ops")
    time.sleep(0.2)
    s.admin(action)
    c.wait_closed()
    d = px.disconnect_of(c.addr)
    assert d["closed_by"] == "broker", d
    assert d["reason"] in ("upstream_closed", "unknown"), d
    assert d["id"] == reason_id(d["reason"])


def _upstream_addr(s, name):
    """The address the proxy used upstream for client <name> (from the peer's logon line)."""
    for l in s.log_lines():
        if l[3] == "PEER-0002" and "as client[%s]" % name in l[4]:
            return l[4].split(" from ")[1].split(" ")[0]
    raise AssertionError("no logon of %s in the peer's log" % name)


# ---- policies: access (client name / user globs) ---------------------------------------------

def test_access_enforce_refuses_the_logon_with_not_entitled(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, access={"mode": "enforce", "client_id": {"deny": ["test-*"]}})
    c = amps(px.port)
    ack = c.logon("test-1", "svc")
    assert (ack["c"], ack["status"], ack["reason"], str(ack.get("cid"))) == ("ack", "failure", "not entitled", "1")
    assert c.wait_closed() == []
    d = amps_disconnect(px, c.addr, "not_authorized", "proxy", "not entitled")
    enforced_by(d, "access")
    assert not [l for l in s.log_lines() if l[3] == "PEER-0002"]  # the server never saw the logon
    assert amps(px.port).logon("prod-1", "svc")["status"] == "success"


def test_access_observe_lets_the_logon_through(amps_peer, amps_proxy, amps):
    s = amps_peer()
    px = amps_proxy(s, access={"mode": "observe", "client_id": {"deny": ["test-*"]}})
    c = amps(px.port)
    assert c.logon("test-2", "svc")["status"] == "success"
    would(px, "not_authorized", "access", "not entitled")
    assert c.is_open_for(0.3)
    s.wait_log("PEER-0002", "as client[test-2]")


# ---- the legacy fix header form, and protocol: auto ----------------------------------------------

def test_fix_header_logon_refused_is_auth_failed(amps_peer, amps_proxy, amps):
    s = amps_peer(protocol="fix", users=USERS)
    px = amps_proxy(s)
    c = amps(px.port, protocol="fix")
    ack = c.logon("fix-intruder", "svc", "wrong")
    assert (ack["status"], ack["reason"]) == ("failure", "auth failure")
    c.wait_closed()
    d = amps_disconnect(px, c.addr, "auth_failed", "broker", "auth failure")
    assert ident(d) == "fix-intruder"


def test_fix_header_takeover_is_name_in_use(amps_peer, amps_proxy, amps):
    s = amps_peer(protocol="fix")
    px = amps_proxy(s)
    a = amps(px.port, protocol="fix")
    a.logon("fix-7", "svc")
    b = amps(px.port, protocol="fix")
    assert b.logon("fix-7", "svc")["status"] == "success"
    a.wait_closed()
    amps_disconnect(px, a.addr, "session_taken_over", "broker", "name in use")


def auto_proxy(proxy, peer, **policies):
    port = free_port()
    cfg = amps_config(peer.port, port, **policies)
    cfg["listeners"][0]["protocol"] = "auto"
    return proxy(peer.port, config=cfg, port=port)


def test_auto_listener_tells_amps_from_its_first_bytes(amps_peer, proxy, amps):
    s = amps_peer()
    px = auto_proxy(proxy, s)
    c = amps(px.port)
    assert c.logon("auto-1", "svc")["status"] == "success"
    ev = px.wait_event("connect", client=c.addr)
    assert ev.get("protocol") == "amps", ev
    assert ident(ev) == "auto-1"
    c.close()
    amps_disconnect(px, c.addr, "client_vanished", "client", "connection closed")


@pytest.mark.parametrize("mode", MODES)
def test_auto_listener_names_bytes_that_are_neither(amps_peer, proxy, amps, mode):
    s = amps_peer()
    px = auto_proxy(proxy, s, protocol={"mode": mode})
    c = amps(px.port)
    c.garbage(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40)  # a TLS ClientHello
    c.wait_closed()
    ev = px.wait_event("unrecognized_protocol", client=c.addr)
    assert "tls" in ev.get("detail", "").lower(), ev
    d = px.disconnect_of(c.addr)
    if mode == "enforce":
        assert d["closed_by"] == "proxy", d
    else:  # observe passes the bytes on; the server closes
        assert d["closed_by"] == "broker", d
        s.wait_log("PEER-0004", "malformed frame")


# ---- framing through the proxy ---------------------------------------------------------------

def test_frames_sliced_byte_by_byte_and_batched_pass_whole(amps_peer, amps_proxy, amps):
    """A logon sent one byte at a time, then four frames (and a no-op length 0)
    in one write: the proxy reads the same facts and the server gets the same
    bytes."""
    import wire
    s = amps_peer()
    px = amps_proxy(s, protocol={"mode": "enforce"}, heartbeat={"mode": "enforce"})
    sub = amps(s.port)
    sub.logon("slice-watch", "svc")
    sub.subscribe("sliced")
    c = amps(px.port)
    logon = wire.message({"c": "logon", "cid": "1", "client_name": "slicer", "user_id": "svc", "a": "processed"})
    for i in range(len(logon)):
        c.send_raw(logon[i:i + 1])
        if i % 16 == 0:
            time.sleep(0.002)
    assert c.expect_ack("1")["status"] == "success"
    batch = (wire.message({"c": "heartbeat", "o": "start,5", "cid": "2", "a": "received"}) + wire.frame(b"")
             + wire.message({"c": "publish", "t": "sliced"}, b"one")
             + wire.message({"c": "publish", "t": "sliced"}, b"two" * 1000)
             + wire.message({"c": "flush", "cid": "3", "a": "completed"}))
    c.send_raw(batch)
    assert c.expect_ack("2")["status"] == "success" and c.expect_ack("3")["status"] == "success"
    assert [sub.read()[1], sub.read()[1]] == [b"one", b"two" * 1000]
    ev = px.wait_event("connect", client=c.addr)
    assert (ev.get("protocol"), ident(ev)) == ("amps", "slicer")
    assert c.is_open_for(0.3)
    assert not px.events("malformed_packet") and not px.events("protocol_violation")
    c.close()
    amps_disconnect(px, c.addr, "client_vanished", "client", "connection closed")


# ---- the proxy's own admin (admin API): admin disconnect, transport (listener) disabled ----------

TOKEN = "amps-admin-token"


@pytest.fixture
def amps_admin_proxy(proxy, tmp_path):
    """amps_admin_proxy(peer) -> a proxy with an amps listener named `amps` and its admin API (px.admin)."""
    from helpers.ops import curl
    from helpers.procs import wait_until

    def make(peer):
        tok = tmp_path / "admin.token"
        tok.write_text(TOKEN + "\n")
        aport, port = free_port(), free_port()
        cfg = amps_config(peer.port, port)
        cfg["admin"] = {"listen": "127.0.0.1:%d" % aport, "token_file": str(tok)}
        px = proxy(peer.port, config=cfg, port=port)
        px.admin = "http://127.0.0.1:%d" % aport
        wait_until(lambda: curl(px.admin + "/healthz")[0] == 200, 5, "the admin API")
        return px
    return make


def admin_post(px, path):
    import json as _json
    from helpers.ops import curl
    code, body = curl(px.admin + path, method="POST", token=TOKEN)
    assert code == 200, (path, code, body)
    return _json.loads(body)


def test_proxy_admin_disconnect_of_an_amps_client(amps_peer, amps_admin_proxy, amps):
    s = amps_peer()
    px = amps_admin_proxy(s)
    c = amps(px.port)
    c.logon("kick-amps", "svc")
    other = amps(px.port)
    other.logon("stays", "svc")
    assert admin_post(px, "/clients/kick-amps/disconnect") == {"client_id": "kick-amps", "disconnected": 1}
    assert c.wait_closed() == []  # AMPS has no disconnect message: the socket just closes
    d = px.disconnect_of(c.addr)
    assert (d["reason"], d["closed_by"], d["id"]) == ("admin_disconnect", "proxy", reason_id("admin_disconnect")), d
    assert d.get("evidence"), d
    # both sides closed: the server saw its client go
    assert s.closed(_upstream_addr(s, "kick-amps")) == ("client", "connection closed")
    assert other.is_open_for(0.3)


def test_proxy_listener_disabled_is_transport_disabled(amps_peer, amps_admin_proxy, amps):
    s = amps_peer()
    px = amps_admin_proxy(s)
    cs = [amps(px.port) for _ in range(2)]
    for i, c in enumerate(cs):
        c.logon("desk-%d" % i, "ops")
    r = admin_post(px, "/listeners/amps/disable")
    assert (r["state"], r["disconnected"]) == ("disabled", 2), r
    for c in cs:
        c.wait_closed()
        amps_disconnect(px, c.addr, "listener_disabled", "proxy", "transport disabled")
    assert px.wait_event("listener_disabled", detail="amps")["count"] == 2
    with pytest.raises(OSError):
        amps(px.port)
