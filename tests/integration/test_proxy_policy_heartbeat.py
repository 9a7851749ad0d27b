"""Policy heartbeat: nothing from the client for factor x keep-alive.
Factor 1.2 so that the proxy acts before mosquitto's own 1.5 x (which
mosquitto 2.0.11 applies late: a silent 2 s client goes after ~5 s).
Spec: MQTT 3.1.2.10 / 3.1.2.11.8 [MQTT-3.1.2-24]."""
import pytest

from helpers import packets as P
from helpers.expect import enforced, not_by_proxy, would
from helpers.procs import wait_until


def hb(mode):
    return {"policies": {"heartbeat": {"mode": mode, "factor": 1.2}}}


@pytest.mark.parametrize("level", [4, 5], ids=["mqtt311", "mqtt5"])
def test_heartbeat_enforce_disconnects_silent_client_0x8d_and_will_is_published(broker, proxy, raw, client, tap,
                                                                               level):
    t = tap(broker.port)
    px = proxy(t.port, config=hb("enforce"))
    watcher = client(broker.port, version=4, client_id="hb-watch-%d" % level)
    assert watcher.connect() == 0
    watcher.subscribe("hb/will/#", 1)
    r = raw(px.port)
    assert r.mqtt_connect("hb-silent-%d" % level, level=level, keepalive=2,
                          will=("hb/will/%d" % level, b"silent", 1, False))[1] == 0
    got = r.wait_closed(timeout=4.5)  # 2.4 s of silence plus the proxy's 250 ms sweep
    if level == 5:
        assert [p.type for p in got] == [P.DISCONNECT]
        assert got[0].disconnect_code() == 0x8D
    else:
        assert got == []  # 3.1.1 has no server DISCONNECT: just closed
    m = watcher.message(timeout=5)
    assert (m.topic, m.payload) == ("hb/will/%d" % level, b"silent")
    # upstream: v5 ends with DISCONNECT 0x04 (Disconnect with Will Message),
    # 3.1.1 with a bare close; either way the broker publishes the Will
    up = t.wait_conns(1)
    wait_until(up.c2s_eof.is_set, 5, "the proxy to close the upstream")
    connect = P.connect("hb-silent-%d" % level, level=level, keepalive=2,
                        will=("hb/will/%d" % level, b"silent", 1, False))
    assert bytes(up.c2s) == connect + (bytes([0xE0, 0x02, 0x04, 0x00]) if level == 5 else b"")
    missed = px.wait_event("heartbeat_missed", client=r.addr)
    assert missed["policy"] == "heartbeat"
    assert 2.4 <= missed["duration_s"] < 3.5
    d = px.disconnect_of(r.addr)
    enforced(d, "keepalive_timeout", "heartbeat")
    assert 2.4 <= d["duration_s"] < 3.6


def test_heartbeat_enforce_spares_a_client_that_pings(broker, proxy, raw):
    """Keep-alive 1 s (limit 1.2 s): a PINGREQ every 0.5 s keeps the client
    connected through six keep-alive periods."""
    px = proxy(broker.port, config=hb("enforce"))
    r = raw(px.port)
    assert r.mqtt_connect("hb-pinger", level=5, keepalive=1)[1] == 0
    for _ in range(12):
        assert r.is_open_for(0.5)  # pacing: the client's own rhythm
        r.send(P.pingreq())
        r.expect(P.PINGRESP)
    assert not px.settled_events("heartbeat_missed") and not px.events("disconnect")


def test_heartbeat_observe_reports_and_broker_closes_later(broker, proxy, raw):
    px = proxy(broker.port, config=hb("observe"))
    r = raw(px.port)
    assert r.mqtt_connect("hb-observed", level=5, keepalive=2)[1] == 0
    w = would(px, "keepalive_timeout", "heartbeat", wire=0x8D, timeout=4)
    assert w["client"] == r.addr
    # observe changes nothing: the proxy has not closed it, mosquitto does (at ~1.5 x, late)
    assert not px.settled_events("disconnect", client=r.addr)
    got = r.wait_closed(timeout=8)
    assert all(p.type == P.DISCONNECT for p in got)
    d = px.disconnect_of(r.addr)
    not_by_proxy(d)
    assert (d["reason"], d["closed_by"]) == ("keepalive_timeout", "broker")
    assert d["duration_s"] >= 2.9
