"""Policy limits: packet size (0x95), message and byte rates (0x96),
connections in total and per source address (CONNACK refusal, reason
connection_limit), and the connect timeout (a TCP client that never sends
CONNECT is closed). Enforce acts; observe reports would_disconnect only."""
import pytest

from helpers import packets as P
from helpers.expect import enforced, would


def limits(mode, **kw):
    return {"policies": {"limits": dict(mode=mode, **kw)}}


@pytest.fixture
def watcher(broker, client):
    w = client(broker.port, version=4, client_id="limits-watch")
    assert w.connect() == 0
    w.subscribe("lim/#", 1)
    return w


def test_packet_too_large_enforce_paho_v5(broker, proxy, client, watcher):
    px = proxy(broker.port, config=limits("enforce", max_packet_size="1KiB"))
    c = client(px.port, version=5, client_id="big-v5")
    assert c.connect() == 0
    c.publish("lim/small", b"s" * 100, qos=1)
    c.publish("lim/big", b"b" * 2000, qos=0, wait=False)
    assert c.wait_disconnect() == 0x95  # paho's on_disconnect: the server's DISCONNECT reason
    big = px.wait_event("packet_too_large", client=c.addr)
    assert big["wire_reason"] == 0x95
    d = px.disconnect_of(c.addr)
    enforced(d, "packet_too_large", "limits")
    assert watcher.message().payload == b"s" * 100
    watcher.no_message(0.3)  # the big one never reached the broker


def test_packet_too_large_enforce_v3_is_closed(broker, proxy, raw, watcher):
    px = proxy(broker.port, config=limits("enforce", max_packet_size="1KiB"))
    r = raw(px.port)
    assert r.mqtt_connect("big-v3")[1] == 0
    r.send(P.publish("lim/big", b"b" * 2000))
    assert r.wait_closed() == []
    enforced(px.disconnect_of(r.addr), "packet_too_large", "limits")
    watcher.no_message(0.3)


def test_packet_too_large_observe_passes_it(broker, proxy, client, watcher):
    px = proxy(broker.port, config=limits("observe", max_packet_size="1KiB"))
    c = client(px.port, version=5, client_id="big-observed")
    assert c.connect() == 0
    c.publish("lim/big", b"b" * 2000, qos=1)
    would(px, "packet_too_large", "limits", wire=0x95)
    assert watcher.message().payload == b"b" * 2000
    c.publish("lim/after", b"still here", qos=1)
    assert watcher.message().payload == b"still here"
    assert c.still_connected()
    # the proxy still reads the stream after the big packet: the DISCONNECT is seen
    c.disconnect()
    d = px.disconnect_of(c.addr)
    assert (d["reason"], d["closed_by"]) == ("client_disconnect", "client")


def test_message_rate_enforce(broker, proxy, client, watcher):
    px = proxy(broker.port, config=limits("enforce", msgs_per_s=5))
    c = client(px.port, version=5, client_id="fast-v5")
    assert c.connect() == 0
    for i in range(20):
        c.publish("lim/rate", b"%d" % i, qos=0, wait=False)
    assert c.wait_disconnect() == 0x96
    d = px.disconnect_of(c.addr)
    enforced(d, "rate_limited", "limits")
    got = []
    while True:
        try:
            got.append(watcher.message(timeout=0.5).payload)
        except AssertionError:
            break
    assert 4 <= len(got) < 20  # a one-second bucket of 5, then cut
    assert got == [b"%d" % i for i in range(len(got))]


def test_byte_rate_enforce(broker, proxy, client):
    px = proxy(broker.port, config=limits("enforce", bytes_per_s="10000"))
    c = client(px.port, version=5, client_id="bulky-v5")
    assert c.connect() == 0
    for i in range(5):
        c.publish("lim/bytes", b"x" * 4000, qos=0, wait=False)
    assert c.wait_disconnect() == 0x96
    enforced(px.disconnect_of(c.addr), "rate_limited", "limits")


def test_message_rate_observe_changes_nothing(broker, proxy, client, watcher):
    px = proxy(broker.port, config=limits("observe", msgs_per_s=5))
    c = client(px.port, version=5, client_id="fast-observed")
    assert c.connect() == 0
    for i in range(20):
        c.publish("lim/rate", b"%d" % i, qos=1)
    would(px, "rate_limited", "limits", wire=0x96)
    assert [m.payload for m in watcher.messages_n(20)] == [b"%d" % i for i in range(20)]
    assert c.still_connected()


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_max_connections_refuses_at_connack(broker, proxy, client, version):
    px = proxy(broker.port, config=limits("enforce", max_connections=2))
    a = client(px.port, version=version, client_id="mc-a")
    b = client(px.port, version=version, client_id="mc-b")
    assert a.connect() == 0 and b.connect() == 0
    third = client(px.port, version=version, client_id="mc-c")
    code = third.connect()
    assert code == (0x97 if version == 5 else 3)
    d = px.disconnect_of(third.addr)
    enforced(d, "connection_limit", "limits")
    a.disconnect()
    px.disconnect_of(a.addr)
    fourth = client(px.port, version=version, client_id="mc-d")
    assert fourth.connect() == 0  # room again


def test_max_per_ip_counts_each_source_address(broker, proxy, client):
    px = proxy(broker.port, config=limits("enforce", max_per_ip=1))
    a = client(px.port, version=5, client_id="ip-a", bind="127.0.0.1")
    assert a.connect() == 0
    same = client(px.port, version=5, client_id="ip-b", bind="127.0.0.1")
    assert same.connect() == 0x97
    enforced(px.disconnect_of(same.addr), "connection_limit", "limits")
    other = client(px.port, version=5, client_id="ip-c", bind="127.0.0.2")
    assert other.connect() == 0


def test_max_connections_observe_accepts(broker, proxy, client):
    px = proxy(broker.port, config=limits("observe", max_connections=1))
    a = client(px.port, version=4, client_id="mco-a")
    b = client(px.port, version=4, client_id="mco-b")
    assert a.connect() == 0 and b.connect() == 0
    would(px, "connection_limit", "limits", client=b.addr)


def test_connect_timeout_enforce_closes_a_silent_tcp_client(broker, proxy, raw, tap):
    t = tap(broker.port)
    px = proxy(t.port, config=limits("enforce", connect_timeout="1s"))
    r = raw(px.port)
    assert r.wait_closed(timeout=3) == []
    d = px.disconnect_of(r.addr)
    enforced(d, "connect_timeout", "limits")
    assert 1.0 <= d["duration_s"] < 2.0
    assert t.conns == []  # the broker never saw it


def test_connect_timeout_is_enforced_even_in_observe_mode(broker, proxy, raw):
    """doc/config.md: a client without CONNECT by the timeout is closed
    whatever the mode (part of being a proxy, not a policy to roll out)."""
    px = proxy(broker.port, config=limits("observe", connect_timeout="1s"))
    r = raw(px.port)
    assert r.wait_closed(timeout=3) == []
    d = px.disconnect_of(r.addr)
    enforced(d, "connect_timeout", "limits")
    assert not px.settled_events("would_disconnect")


def test_connect_in_time_is_not_affected_by_the_connect_timeout(broker, proxy, raw):
    px = proxy(broker.port, config=limits("enforce", connect_timeout="1s"))
    r = raw(px.port)
    assert r.mqtt_connect("in-time")[1] == 0
    assert r.is_open_for(1.5)
    assert not px.settled_events("disconnect")
