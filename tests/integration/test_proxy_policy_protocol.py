"""Policies protocol and receive_maximum, with raw clients that misbehave.

protocol: a second CONNECT [MQTT-3.1.0-2] -> protocol_error_second_connect
(0x82); a malformed packet (PUBLISH with QoS 3 [MQTT-3.3.1-4]) ->
malformed_packet (0x81); a first packet that is not CONNECT [MQTT-3.1.0-1]
-> first_packet_not_connect (closed, the broker is never dialled).
receive_maximum: a v5 client with more unacknowledged QoS 1 PUBLISH than the
broker's Receive Maximum [MQTT-3.3.4-9] -> receive_maximum_exceeded (0x93).
"""
import pytest

from helpers import packets as P
from helpers.expect import enforced, not_by_proxy, would
from helpers.procs import wait_until


def proto(mode):
    return {"policies": {"protocol": {"mode": mode}}}


@pytest.mark.parametrize("level", [4, 5], ids=["mqtt311", "mqtt5"])
def test_second_connect_enforce(broker, proxy, raw, client, tap, level):
    t = tap(broker.port)
    px = proxy(t.port, config=proto("enforce"))
    watcher = client(broker.port, version=4, client_id="sc-watch-%d" % level)
    assert watcher.connect() == 0
    watcher.subscribe("sc/will", 0)
    r = raw(px.port)
    first = P.connect("sc-%d" % level, level=level, will=("sc/will", b"second", 0, False))
    r.send(first)
    assert r.expect(P.CONNACK).connack(level)[1] == 0
    r.send(P.connect("sc-%d" % level, level=level))
    got = r.wait_closed()
    if level == 5:
        assert [(p.type, p.disconnect_code()) for p in got] == [(P.DISCONNECT, 0x82)]
    else:
        assert got == []
    d = px.disconnect_of(r.addr)
    enforced(d, "protocol_error_second_connect", "protocol")
    # the second CONNECT was held: the broker saw one CONNECT, then the Will-keeping end
    up = t.wait_conns(1)
    wait_until(up.c2s_eof.is_set, 5, "the upstream to close")
    assert bytes(up.c2s) == first + (bytes([0xE0, 0x02, 0x04, 0x00]) if level == 5 else b"")
    assert watcher.message().payload == b"second"


def test_second_connect_observe_is_forwarded_and_broker_closes(broker, proxy, raw):
    px = proxy(broker.port, config=proto("observe"))
    r = raw(px.port)
    assert r.mqtt_connect("sc-observed", level=5)[1] == 0
    r.send(P.connect("sc-observed", level=5))
    w = would(px, "protocol_error_second_connect", "protocol", wire=0x82)
    assert w["client"] == r.addr
    r.wait_closed()  # mosquitto closes on the second CONNECT itself
    d = px.disconnect_of(r.addr)
    not_by_proxy(d)
    assert d["closed_by"] == "broker"
    assert d["reason"] == "protocol_error_second_connect"  # inferred from what the client did


@pytest.mark.parametrize("level", [4, 5], ids=["mqtt311", "mqtt5"])
def test_malformed_publish_qos3_enforce(broker, proxy, raw, client, level):
    px = proxy(broker.port, config=proto("enforce"))
    watcher = client(broker.port, version=4, client_id="mf-watch-%d" % level)
    assert watcher.connect() == 0
    watcher.subscribe("mf/#", 0)
    r = raw(px.port)
    assert r.mqtt_connect("mf-%d" % level, level=level)[1] == 0
    r.send(P.publish("mf/ok", b"fine", level=level))
    r.send(P.publish("mf/bad", b"qos three", qos=0, qos_bits=3, pid=9, level=level))
    got = r.wait_closed()
    if level == 5:
        assert [(p.type, p.disconnect_code()) for p in got] == [(P.DISCONNECT, 0x81)]
    else:
        assert got == []
    bad = px.wait_event("malformed_packet", client=r.addr)
    assert bad["wire_reason"] == 0x81 and bad["detail"]
    d = px.disconnect_of(r.addr)
    enforced(d, "malformed_packet", "protocol")
    assert watcher.message().payload == b"fine"
    watcher.no_message(0.3)  # the malformed one never reached the broker


def test_malformed_publish_observe_is_forwarded(broker, proxy, raw):
    px = proxy(broker.port, config=proto("observe"))
    r = raw(px.port)
    assert r.mqtt_connect("mf-observed", level=5)[1] == 0
    r.send(P.publish("mf/bad", b"qos three", qos_bits=3, pid=9, level=5))
    would(px, "malformed_packet", "protocol", wire=0x81)
    r.wait_closed()  # mosquitto refuses it itself
    d = px.disconnect_of(r.addr)
    not_by_proxy(d)
    assert (d["closed_by"], d["reason"]) == ("broker", "malformed_packet")


def test_first_packet_not_connect_is_closed_before_dialling_the_broker(broker, proxy, raw, tap):
    t = tap(broker.port)
    px = proxy(t.port, proto("enforce"))  # every policy defaults to observe
    r = raw(px.port)
    r.send(P.pingreq())
    assert r.wait_closed() == []
    d = px.disconnect_of(r.addr)
    enforced(d, "first_packet_not_connect", "protocol")
    assert d["bytes_s2c"] == 0
    assert t.conns == []  # the broker was never dialled


def test_first_packet_not_connect_observe_is_forwarded(broker, proxy, raw):
    px = proxy(broker.port, config=proto("observe"))
    r = raw(px.port)
    r.send(P.pingreq())
    would(px, "first_packet_not_connect", "protocol", wire=0x82)
    assert r.wait_closed() == []  # mosquitto closes it itself
    d = px.disconnect_of(r.addr)
    not_by_proxy(d)
    assert (d["closed_by"], d["reason"]) == ("broker", "first_packet_not_connect")


# ---- receive_maximum -----------------------------------------------------------

def flood(px_port, raw, n, cid):
    """A v5 client that sends <n> QoS 1 PUBLISH in one write without reading."""
    r = raw(px_port)
    _, code, props = r.mqtt_connect(cid, level=5)
    assert code == 0
    assert props.get(P.P_RECEIVE_MAXIMUM) == 3, "mosquitto announced %r" % props
    r.send(b"".join(P.publish("rm/t", b"m%d" % i, qos=1, pid=i + 1, level=5) for i in range(n)))
    return r


def test_receive_maximum_enforce(mosquitto, proxy, raw, client):
    m = mosquitto(extra=["max_inflight_messages 3"])
    px = proxy(m.port, config={"policies": {"receive_maximum": {"mode": "enforce"}}})
    watcher = client(m.port, version=4, client_id="rm-watch")
    assert watcher.connect() == 0
    watcher.subscribe("rm/t", 1)
    r = flood(px.port, raw, 4, "rm-flood")
    got = r.wait_closed()
    assert [(p.type, p.disconnect_code()) for p in got if p.type == P.DISCONNECT] == [(P.DISCONNECT, 0x93)]
    assert got[-1].type == P.DISCONNECT
    ev = px.wait_event("receive_maximum_exceeded", client=r.addr)
    assert ev["count"] == 4
    d = px.disconnect_of(r.addr)
    enforced(d, "receive_maximum_exceeded", "receive_maximum")
    # the fourth PUBLISH was held back: the broker published three
    assert [x.payload for x in watcher.messages_n(3)] == [b"m0", b"m1", b"m2"]
    watcher.no_message(0.3)


def test_receive_maximum_observe(mosquitto, proxy, raw, client):
    m = mosquitto(extra=["max_inflight_messages 3"])
    px = proxy(m.port, config={"policies": {"receive_maximum": {"mode": "observe"}}})
    watcher = client(m.port, version=4, client_id="rm-watch-o")
    assert watcher.connect() == 0
    watcher.subscribe("rm/t", 1)
    r = flood(px.port, raw, 4, "rm-observed")
    w = would(px, "receive_maximum_exceeded", "receive_maximum", wire=0x93)
    assert w["client"] == r.addr
    acks = sorted(r.expect(P.PUBACK).pid() for _ in range(4))
    assert acks == [1, 2, 3, 4]  # mosquitto 2.0.11 acknowledges all four
    assert [x.payload for x in watcher.messages_n(4)] == [b"m0", b"m1", b"m2", b"m3"]
    r.send(P.disconnect(5))
    r.wait_closed()
    d = px.disconnect_of(r.addr)
    assert (d["reason"], d["closed_by"]) == ("client_disconnect", "client")
