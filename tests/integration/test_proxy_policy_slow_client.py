"""Policy slow_client: a client that does not read what the broker sends it.
Queue toward the client (proxy buffer + kernel send queue) over
offline_bytes -> slow_consumption_detected and, in enforce, the broker side
paused; still behind after the grace -> slow_consumer, DISCONNECT 0x97, and
the broker publishes the client's Will. Observe reports and changes nothing."""
import time

from helpers import packets as P
from helpers.expect import enforced, not_by_proxy, would

MSG = 32 * 1024


def slow(mode):
    return {"policies": {"slow_client": {"mode": mode, "offline_bytes": "256KiB", "disconnect_bytes": "1MiB",
                                         "grace": "1s"}}}


def stuck_subscriber(raw, port, cid, level=5, will=None):
    """A v5 subscriber to slow/# with a tiny receive buffer that then stops reading."""
    r = raw(port, rcvbuf=4096)
    kw = {"will": will} if will else {}
    assert r.mqtt_connect(cid, level=level, **kw)[1] == 0
    r.send(P.subscribe(1, [("slow/#", 0)], level=level))
    r.expect(P.SUBACK)
    return r


def read_publishes(r, level, timeout=10):
    """Reads until the peer closes: (payloads of the PUBLISHes, the other packets)."""
    got, other = [], []
    for p in r.wait_closed(timeout=timeout):
        if p.type == P.PUBLISH:
            got.append(p.publish(level)[4])
        else:
            other.append(p)
    return got, other


def test_slow_client_enforce_pauses_then_disconnects_0x97(broker, proxy, raw, client):
    px = proxy(broker.port, config=slow("enforce"))
    watcher = client(broker.port, version=4, client_id="slow-watch")
    assert watcher.connect() == 0
    watcher.subscribe("slowwill/#", 0)
    r = stuck_subscriber(raw, px.port, "slow-enf", will=("slowwill/enf", b"too slow", 0, False))
    pub = client(broker.port, version=4, client_id="slow-pub")
    assert pub.connect() == 0
    payloads = [bytes([i]) * MSG for i in range(96)]  # 3 MiB
    for pl in payloads:
        pub.publish("slow/t", pl, qos=0, wait=False)
    det = px.wait_event("slow_consumption_detected", timeout=10, client=r.addr)
    assert (det["policy"], det["mode"]) == ("slow_client", "enforce")
    assert det["count"] > 256 * 1024
    # The client stays behind for the grace (1 s; the proxy sweeps every
    # 250 ms), then reads within the proxy's 2 s linger for the final flush.
    time.sleep(max(0.0, det["ts_us"] / 1e6 + 1.6 - time.time()))
    got, other = read_publishes(r, 5)
    assert [(p.type, p.disconnect_code()) for p in other] == [(P.DISCONNECT, 0x97)]
    assert got == payloads[:len(got)]  # what arrived is whole and in order, cut at a packet boundary
    assert len(got) < len(payloads)
    d = px.disconnect_of(r.addr)
    enforced(d, "slow_consumer", "slow_client")
    assert d["bytes_s2c"] < 1024 * 1024  # the broker side was paused near offline_bytes
    assert watcher.message().payload == b"too slow"


def test_slow_client_observe_reports_and_delivers_everything(broker, proxy, raw, client):
    px = proxy(broker.port, config=slow("observe"))
    r = stuck_subscriber(raw, px.port, "slow-obs")
    pub = client(broker.port, version=4, client_id="slow-pub-o")
    assert pub.connect() == 0
    payloads = [bytes([i]) * MSG for i in range(96)]
    for pl in payloads:
        pub.publish("slow/t", pl, qos=0, wait=False)
    det = px.wait_event("slow_consumption_detected", timeout=10, client=r.addr)
    assert det["mode"] == "observe"
    w = would(px, "slow_consumer", "slow_client", wire=0x97, timeout=10)
    assert w["client"] == r.addr
    # nothing changed for the client: it catches up and gets every message
    got = [r.expect(P.PUBLISH, timeout=10).publish(5)[4] for _ in payloads]
    assert got == payloads
    px.wait_event("slow_consumption_cleared", client=r.addr)
    r.send(P.disconnect(5))
    r.wait_closed()
    d = px.disconnect_of(r.addr)
    not_by_proxy(d)
    assert d["reason"] == "client_disconnect"
