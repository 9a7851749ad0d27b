"""The proxy is transparent: every byte passes unchanged both ways, for paho
(MQTT 3.1.1 and 5.0), mosquitto_pub/sub and raw clients, at every QoS, with
retained and Will messages; half-closed connections stay open the other way;
and every connection ends with one `disconnect` event naming who closed it.
Real mosquitto, real `wirewarden proxy`, 127.0.0.1 only."""
import hashlib
import socket
import subprocess
import time

import pytest

from helpers import load
from helpers import packets as P
from helpers.procs import wait_until


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_publish_subscribe_through_proxy(broker, proxy, client, version, qos):
    px = proxy(broker.port)
    sub = client(px.port, version=version, client_id="sub-%d-%d" % (version, qos))
    pub = client(px.port, version=version, client_id="pub-%d-%d" % (version, qos))
    assert sub.connect() == 0
    assert sub.subscribe("t/pass/%d" % qos, qos) == [qos]
    assert pub.connect() == 0
    sent = [("m%03d-" % i).encode() + bytes(range(256)) * (i % 7) for i in range(30)]
    for m in sent:
        pub.publish("t/pass/%d" % qos, m, qos=qos)
    got = sub.messages_n(len(sent), timeout=10)
    assert [m.payload for m in got] == sent
    assert {m.qos for m in got} == {qos}
    assert {m.topic for m in got} == {"t/pass/%d" % qos}
    pub.disconnect()
    sub.disconnect()
    for c in (pub, sub):
        d = px.disconnect_of(c.addr)
        assert (d["reason"], d["closed_by"], d["id"]) == ("client_disconnect", "client", "W2001")
        assert d["level"] == version
    d_pub = px.disconnect_of(pub.addr)
    assert d_pub["bytes_c2s"] > sum(len(m) for m in sent)


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_pub_and_sub_through_proxy(broker, proxy, version):
    px = proxy(broker.port)
    lines = ["line %d %s" % (i, "x" * i) for i in range(25)]
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(px.port), "-V", version, "-q", "2",
                            "-t", "ms/#", "-C", str(len(lines)), "-W", "20", "-i", "msub-" + version, "-v"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        px.wait_event("connack", client_id="msub-" + version)
        # the broker's own log is the only witness of the SUBACK here
        wait_until(lambda: "Sending SUBACK to msub-" + version in broker.log_text(), 5, "mosquitto_sub to subscribe")
        pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(px.port), "-V", version, "-q", "1",
                              "-t", "ms/lines", "-l", "-i", "mpub-" + version],
                             input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=20)
        assert pub.returncode == 0, pub.stderr
        out, err = sub.communicate(timeout=20)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)
    assert sub.returncode == 0, err
    assert out.splitlines() == ["ms/lines " + l for l in lines]
    for cid in ("msub-" + version, "mpub-" + version):
        conn = px.wait_event("connect", client_id=cid)["conn"]
        d = px.disconnect_of(conn=conn)
        assert (d["reason"], d["closed_by"]) == ("client_disconnect", "client")


def test_retained_message_through_proxy(broker, proxy, client):
    px = proxy(broker.port)
    pub = client(px.port, version=4, client_id="ret-pub")
    assert pub.connect() == 0
    pub.publish("t/retained", b"kept", qos=1, retain=True)
    late = client(px.port, version=5, client_id="ret-late")
    assert late.connect() == 0
    late.subscribe("t/retained", 1)
    m = late.message()
    assert (m.payload, m.retain, m.qos) == (b"kept", True, 1)
    late.no_message(0.3)


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_will_published_when_client_vanishes(broker, proxy, client, version):
    px = proxy(broker.port)
    watcher = client(px.port, version=4, client_id="will-watch-%d" % version)
    assert watcher.connect() == 0
    watcher.subscribe("t/will/#", 1)
    dying = client(px.port, version=version, client_id="will-dying-%d" % version,
                   will=("t/will/%d" % version, b"gone", 1, False))
    assert dying.connect() == 0
    dying.vanish()
    m = watcher.message(timeout=5)
    assert (m.topic, m.payload) == ("t/will/%d" % version, b"gone")
    d = px.disconnect_of(dying.addr)
    assert (d["reason"], d["closed_by"], d["id"]) == ("client_vanished", "client", "W2003")


def test_will_published_on_disconnect_with_will_v5(broker, proxy, client):
    px = proxy(broker.port)
    watcher = client(px.port, version=5, client_id="dww-watch")
    assert watcher.connect() == 0
    watcher.subscribe("t/dww", 1)
    leaving = client(px.port, version=5, client_id="dww-leaving", will=("t/dww", b"as asked", 1, False))
    assert leaving.connect() == 0
    leaving.disconnect(reason=0x04)
    m = watcher.message()
    assert m.payload == b"as asked"
    d = px.disconnect_of(leaving.addr)
    assert (d["reason"], d["closed_by"], d["wire_reason"], d["id"]) == ("client_disconnect_with_will", "client", 4,
                                                                         "W2002")


def test_clean_disconnect_suppresses_will(broker, proxy, client):
    px = proxy(broker.port)
    watcher = client(px.port, version=4, client_id="nowill-watch")
    assert watcher.connect() == 0
    watcher.subscribe("t/nowill", 1)
    leaving = client(px.port, version=4, client_id="nowill-leaving", will=("t/nowill", b"must not", 1, False))
    assert leaving.connect() == 0
    leaving.disconnect()
    d = px.disconnect_of(leaving.addr)
    assert (d["reason"], d["closed_by"]) == ("client_disconnect", "client")
    watcher.no_message(0.5)


def test_client_reset_is_client_vanished_and_will_is_published(broker, proxy, client, raw):
    px = proxy(broker.port)
    watcher = client(px.port, version=4, client_id="rst-watch")
    assert watcher.connect() == 0
    watcher.subscribe("t/rst", 0)
    r = raw(px.port)
    assert r.mqtt_connect("rst-client", will=("t/rst", b"reset", 0, False))[1] == 0
    addr = r.addr
    r.reset()
    assert watcher.message().payload == b"reset"
    d = px.disconnect_of(addr)
    assert (d["reason"], d["closed_by"]) == ("client_vanished", "client")


def test_events_carry_the_real_client_and_broker_addresses(broker, proxy, client):
    px = proxy(broker.port)
    c = client(px.port, version=4, client_id="addr-check", bind="127.0.0.2")
    assert c.connect() == 0
    assert c.addr.startswith("127.0.0.2:")
    conn = px.conn_of(c.addr)
    for name in ("connection_opened", "connect", "connack"):
        e = px.wait_event(name, conn=conn)
        assert e["client"] == c.addr
        assert e["broker"] == "127.0.0.1:%d" % broker.port
    c.disconnect()
    d = px.disconnect_of(conn=conn)
    assert d["client"] == c.addr and d["broker"] == "127.0.0.1:%d" % broker.port
    assert d["client_id"] == "addr-check"


def _chunks(data, seed):
    """Splits <data> at pseudo-random points, 1..700 bytes apart."""
    import random
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 700)
        out.append(data[i:i + n])
        i += n
    return out


def test_byte_stream_reaches_the_broker_unchanged_both_ways(broker, proxy, raw, tap):
    """What a raw client writes is exactly what arrives at the broker (recorded
    by a tap in front of mosquitto), and what mosquitto writes is exactly what
    the client reads, even when the client's packets arrive in odd slices and
    a PUBLISH is larger than the proxy's 64 KiB decode window."""
    t = tap(broker.port)
    px = proxy(t.port)
    r = raw(px.port)
    sent = bytearray()
    received = bytearray()

    def send(data, seed=0):
        sent.extend(data)
        for piece in _chunks(data, seed):
            r.send(piece)
            time.sleep(0.0005)  # pacing: make the proxy see partial packets

    def read(ptype):
        p = r.expect(ptype)
        received.extend(p.raw)
        return p

    connect = P.connect("exact-v5", level=5, keepalive=30, properties=[(P.P_SESSION_EXPIRY, 0),
                                                                       (P.P_RECEIVE_MAXIMUM, 10)],
                        will=("exact/will", b"\x00\xff" * 100, 1, True), username="u", password=b"\x00\x01")
    send(connect, 1)
    read(P.CONNACK)
    r.level = 5
    send(P.subscribe(7, [("exact/#", 2)], level=5), 2)
    read(P.SUBACK)
    big = bytes((i * 7 + 3) % 256 for i in range(200_000))
    payloads = [b"", b"a", bytes(range(256)) * 40, big]
    for i, pl in enumerate(payloads):
        qos, pid = i % 3, 100 + i
        send(P.publish("exact/%d" % i, pl, qos=qos, pid=pid, level=5), 10 + i)
        # both flows as the spec wants them, in whatever order the broker
        # interleaves them: our PUBLISH, and its echo to our subscription
        mine_done, echo_done = qos == 0, False
        while not (mine_done and echo_done):
            p = r.read_packet()
            received.extend(p.raw)
            if p.type == P.PUBLISH:
                topic, q, _, epid, body = p.publish(5)
                assert (topic, q, body) == ("exact/%d" % i, qos, pl)
                if q == 1:
                    send(P.ack(P.PUBACK, epid))
                elif q == 2:
                    send(P.ack(P.PUBREC, epid))
                echo_done = q < 2
            elif p.type == P.PUBREL:
                send(P.ack(P.PUBCOMP, p.pid()))
                echo_done = True
            elif p.type == P.PUBREC:
                assert p.pid() == pid
                send(P.ack(P.PUBREL, pid))
            elif p.type in (P.PUBACK, P.PUBCOMP):
                assert p.pid() == pid
                mine_done = True
            else:
                raise AssertionError("unexpected %r" % p)
    send(P.pingreq())
    read(P.PINGRESP)
    send(P.disconnect(5, 0))
    rest = r.wait_closed(timeout=5)
    for p in rest:
        received.extend(p.raw)
    conn = t.wait_conns(1)
    wait_until(lambda: conn.c2s_eof.is_set() and conn.s2c_eof.is_set(), 5, "the tapped connection to close")
    assert hashlib.sha256(conn.c2s).hexdigest() == hashlib.sha256(sent).hexdigest()
    assert bytes(conn.c2s) == bytes(sent)
    assert bytes(conn.s2c) == bytes(received)
    d = px.disconnect_of(r.addr)
    assert (d["reason"], d["closed_by"]) == ("client_disconnect", "client")
    assert (d["bytes_c2s"], d["bytes_s2c"]) == (len(sent), len(received))


def test_half_close_keeps_the_other_direction_open(broker, proxy, raw, client, tap):
    """The client shuts down its sending side: the proxy passes the FIN on and
    keeps delivering what the broker sends until the broker closes too."""
    t = tap(broker.port, hold_fin=True)
    px = proxy(t.port)
    watcher = client(broker.port, version=4, client_id="hc-watch")
    assert watcher.connect() == 0
    watcher.subscribe("hc/from-client", 1)
    r = raw(px.port)
    assert r.mqtt_connect("hc-client", will=("hc/from-client", b"will", 0, False))[1] == 0
    r.send(P.subscribe(1, [("hc/to-client", 0)]))
    r.expect(P.SUBACK)
    r.send(P.publish("hc/from-client", b"before fin", qos=0))
    r.sock.shutdown(socket.SHUT_WR)
    conn = t.wait_conns(1)
    wait_until(conn.c2s_eof.is_set, 5, "the proxy to pass the client's FIN on")
    assert watcher.message().payload == b"before fin"
    # the broker side is still open (the tap holds the FIN): it can still reach the client
    other = client(broker.port, version=4, client_id="hc-other")
    assert other.connect() == 0
    other.publish("hc/to-client", b"after fin", qos=0)
    p = r.expect(P.PUBLISH)
    assert p.publish(4)[4] == b"after fin"
    assert conn.sent_after_c2s_eof > 0
    conn.release.set()  # now mosquitto sees the FIN and closes
    r.wait_closed(timeout=5)
    assert watcher.message().payload == b"will"  # no DISCONNECT was sent
    d = px.disconnect_of(r.addr)
    assert (d["reason"], d["closed_by"]) == ("client_vanished", "client")


def test_no_generic_idle_timeout(broker, proxy, raw):
    """A client with keep-alive 0, and a quiet one within its keep-alive,
    stay connected even with the heartbeat policy enforcing."""
    px = proxy(broker.port, config={"policies": {"heartbeat": {"mode": "enforce", "factor": 1.2}}})
    zero = raw(px.port)
    assert zero.mqtt_connect("idle-ka0", keepalive=0)[1] == 0
    ten = raw(px.port)
    assert ten.mqtt_connect("idle-ka10", level=5, keepalive=10)[1] == 0
    assert zero.is_open_for(3.0)
    assert ten.is_open_for(0.1)
    for r in (zero, ten):
        r.send(P.pingreq())
        r.expect(P.PINGRESP)
    assert not px.settled_events("disconnect") and not px.events("would_disconnect")
    assert not px.settled_events("heartbeat_missed")


def test_transparency_100k_messages_of_random_sizes(mosquitto, proxy):
    """100,000 messages, 0 B to 256 KiB (log-uniform), a third at each QoS,
    through the proxy: every payload arrives, in order per publisher, with
    the SHA-256 it was sent with; within 120 s."""
    # No inflight limit at the broker: mosquitto 2.0.11 can reorder QoS 1/2
    # messages that it had to queue behind a full inflight window (seen
    # without the proxy too), which would fail the order check for a reason
    # that is not ours. The load bounds what is outstanding end to end.
    m = mosquitto(extra=["max_inflight_messages 0", "max_queued_messages 0"])
    px = proxy(m.port)
    t0 = time.monotonic()
    r = load.run(px.port, total=100_000, max_size=256 * 1024, seed=20240611, deadline_s=115)
    elapsed = time.monotonic() - t0
    assert r["messages"] == 100_000
    assert r["max_size_sent"] > 200 * 1024 and r["min_size_sent"] == 0
    assert elapsed < 120, "took %.1f s" % elapsed
    print("transparency: %d messages, %.0f MiB in %.1f s; per-QoS stream sha256 %s" % (
        r["messages"], r["bytes"] / 2 ** 20, r["elapsed_s"], r["stream_sha256"]))
    ds = [px.wait_event("disconnect", client=a, timeout=10) for a in r["addrs"]]
    assert {(d["reason"], d["closed_by"]) for d in ds} == {("client_disconnect", "client")}
    assert not px.settled_events("would_disconnect")
    assert not px.settled_events("malformed_packet") and not px.events("protocol_violation")
