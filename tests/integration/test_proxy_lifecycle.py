"""Every connection ends with exactly one `disconnect` event, its last, whose
reason is a catalog reason with the catalog's id; counted over a mix of every
way a connection can end, including connections still open when the proxy is
stopped. (The proxy fixture checks the same invariant after every test.)"""
import socket

from helpers import packets as P



def test_every_connection_has_exactly_one_disconnect(broker, proxy, raw, client):
    px = proxy(broker.port, config={"policies": {
        "protocol": {"mode": "enforce"},
        "heartbeat": {"mode": "enforce", "factor": 1.2},
        "limits": {"mode": "enforce", "connect_timeout": "1s"},
        "access": {"mode": "enforce", "client_id": {"deny": ["test-*"]}},
    }})
    expect = {}

    def ends(addr, reason, closed_by):
        expect[addr] = (reason, closed_by)

    # orderly ends
    c = client(px.port, version=4, client_id="lc-clean")
    assert c.connect() == 0
    c.disconnect()
    ends(c.addr, "client_disconnect", "client")
    c = client(px.port, version=5, client_id="lc-will", will=("lc/w", b"w", 0, False))
    assert c.connect() == 0
    c.disconnect(reason=4)
    ends(c.addr, "client_disconnect_with_will", "client")
    # the client just goes
    c = client(px.port, version=4, client_id="lc-vanish")
    assert c.connect() == 0
    c.vanish()
    ends(c.addr, "client_vanished", "client")
    r = raw(px.port)
    assert r.mqtt_connect("lc-reset")[1] == 0
    ends(r.addr, "client_vanished", "client")
    r.reset()
    r = raw(px.port)  # TCP only, closed before any byte
    px.conn_of(r.addr)
    ends(r.addr, "client_vanished", "client")
    r.close()
    r = raw(px.port)  # half-close after CONNECT
    assert r.mqtt_connect("lc-half")[1] == 0
    r.sock.shutdown(socket.SHUT_WR)
    ends(r.addr, "client_vanished", "client")
    # the proxy ends it
    r = raw(px.port)  # no CONNECT at all
    ends(r.addr, "connect_timeout", "proxy")
    r2 = raw(px.port)
    r2.send(P.pingreq())
    ends(r2.addr, "first_packet_not_connect", "proxy")
    r3 = raw(px.port)
    assert r3.mqtt_connect("lc-twice", level=5)[1] == 0
    r3.send(P.connect("lc-twice", level=5))
    ends(r3.addr, "protocol_error_second_connect", "proxy")
    r4 = raw(px.port)
    assert r4.mqtt_connect("lc-malformed")[1] == 0
    r4.send(P.publish("x", b"y", qos_bits=3, pid=1))
    ends(r4.addr, "malformed_packet", "proxy")
    c = client(px.port, version=5, client_id="test-refused")
    assert c.connect() == 0x85
    ends(c.addr, "not_authorized", "proxy")
    r5 = raw(px.port)
    assert r5.mqtt_connect("lc-silent", keepalive=1)[1] == 0
    ends(r5.addr, "keepalive_timeout", "proxy")
    # the broker ends it
    old = raw(px.port)
    assert old.mqtt_connect("lc-twin")[1] == 0
    new = raw(px.port)
    assert new.mqtt_connect("lc-twin")[1] == 0
    ends(old.addr, "session_taken_over", "broker")
    # still open at shutdown
    ends(new.addr, "server_shutdown", "proxy")
    keep = client(px.port, version=5, client_id="lc-open")
    assert keep.connect() == 0
    ends(keep.addr, "server_shutdown", "proxy")

    for r in (old, r, r2, r3, r4, r5):
        r.wait_closed(timeout=5)
    for addr in list(expect)[:-2]:
        px.disconnect_of(addr, timeout=5)
    px.stop()
    ds = px.check_one_disconnect_each()
    opened = px.events("connection_opened")
    assert len(opened) == len(ds) == len(expect)
    got = {d["client"]: (d["reason"], d["closed_by"]) for d in ds.values()}
    assert got == expect
