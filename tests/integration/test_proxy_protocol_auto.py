"""Listener protocols beyond MQTT: `protocol: auto` tells an MQTT CONNECT from
AMPS framing by the client's first bytes (real mosquitto and paho on one side,
the AMPS peer of tests/amps_peer on the other), and bytes that are neither,
or that are TLS, HTTP, WebSocket or zlib on a plain AMPS listener, are named
in an unrecognized_protocol event instead of being misread. Under the
protocol policy's enforce mode such a connection is closed; observing, its
bytes are relayed unread."""
import os
import socket
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "amps_peer"))

from fixtures import amps, amps_peer  # noqa: E402,F401
from helpers.procs import free_port  # noqa: E402


def listener_config(upstream_port, port, proto, **policies):
    cfg = {"listeners": [{"name": "edge", "listen": "127.0.0.1:%d" % port,
                          "upstream": "127.0.0.1:%d" % upstream_port, "protocol": proto}]}
    if policies:
        cfg["policies"] = policies
    return cfg


@pytest.fixture
def edge(proxy):
    def make(upstream_port, proto, **policies):
        port = free_port()
        return proxy(upstream_port, config=listener_config(upstream_port, port, proto, **policies), port=port)
    return make


def send_and_wait_close(port, data, timeout=5):
    """Sends <data>; True when the proxy closes the connection within <timeout> s."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if s.recv(4096) == b"":
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        return False
    finally:
        s.close()


def test_auto_listener_passes_mqtt(broker, edge, client):
    px = edge(broker.port, "auto")
    c = client(px.port, client_id="auto-mqtt-1")
    c.connect()
    c.disconnect()
    e = px.wait_event("connect", client_id="auto-mqtt-1")
    assert e["protocol"] == "mqtt" and e["level"] == 4
    d = px.disconnect_of(conn=e["conn"])
    assert (d["reason"], d["closed_by"]) == ("client_disconnect", "client")


def test_auto_listener_passes_amps(amps_peer, edge, amps):
    s = amps_peer()
    # amps_factor 1.5: the proxy acts before the peer's own 2 x watchdog
    px = edge(s.port, "auto", heartbeat={"mode": "enforce", "amps_factor": 1.5})
    c = amps(px.port)
    assert c.logon("auto-amps-1", "svc")["status"] == "success"
    e = px.wait_event("connect", client_id="auto-amps-1")
    assert e["protocol"] == "amps" and "level" not in e
    c.heartbeat_start(1)
    c.wait_closed(6)  # silence: the proxy closes at 1.5 x 1 s, both sides
    d = px.disconnect_of(conn=e["conn"])
    assert (d["reason"], d["amps_reason"], d["closed_by"]) == ("keepalive_timeout", "heartbeat", "proxy"), d


TLS_HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
HTTP_PREFLIGHT = b"GET /amps/json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: amps\r\n\r\n"
WEBSOCKET = (b"GET /amps/json HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
ZLIB = b"\x78\x9c\xab\x56\x4a\xd6\x55\xb2\x52\xca\xc9\x4f\xcf\xcf\x53\xaa\x05\x00"


@pytest.mark.parametrize("proto", ["amps", "auto"])
@pytest.mark.parametrize("data,name", [(TLS_HELLO, "tls_on_plain_port"), (HTTP_PREFLIGHT, "http_preflight"),
                                       (WEBSOCKET, "websocket_upgrade"), (ZLIB, "compressed_stream")],
                         ids=["tls", "http-preflight", "websocket", "zlib"])
def test_not_amps_framing_is_named_and_closed_under_enforce(amps_peer, edge, proto, data, name):
    s = amps_peer()
    px = edge(s.port, proto, protocol={"mode": "enforce"})
    assert send_and_wait_close(px.port, data)
    u = px.wait_event("unrecognized_protocol")
    assert name in u["detail"], u
    d = px.disconnect_of(conn=u["conn"])
    assert (d["reason"], d["closed_by"], d["mode"]) == ("protocol_error", "proxy", "enforce"), d


def test_neither_protocol_on_auto_is_named(broker, edge):
    px = edge(broker.port, "auto", protocol={"mode": "enforce"})
    assert send_and_wait_close(px.port, b"hello, who is there?\r\n")
    u = px.wait_event("unrecognized_protocol")
    assert "neither_mqtt_connect_nor_amps_frame" in u["detail"], u


def test_not_amps_observed_is_relayed_unread(amps_peer, edge):
    """Observing, the bytes go on as they came: the peer sees them (and
    refuses them itself); the proxy only reports."""
    s = amps_peer()
    px = edge(s.port, "amps", protocol={"mode": "observe"})
    sock = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    sock.sendall(TLS_HELLO)
    u = px.wait_event("unrecognized_protocol")
    assert "tls_on_plain_port" in u["detail"]
    w = px.wait_event("would_disconnect", reason="protocol_error")
    assert w["mode"] == "observe"
    sock.close()
    px.disconnect_of(conn=u["conn"])


def test_amps_frame_over_the_cap_is_too_large(amps_peer, edge, amps):
    s = amps_peer()
    px = edge(s.port, "amps", limits={"mode": "enforce", "max_packet_size": "4KiB"})
    c = amps(px.port)
    c.logon("big-sender", "svc")
    payload = b'{"c":"p","t":"big"}' + b"x" * 8000
    c.send_raw(struct.pack(">I", len(payload)) + payload)
    c.wait_closed()
    t = px.wait_event("packet_too_large")
    assert t["count"] == len(payload) + 4
    d = px.disconnect_of(conn=t["conn"])
    assert (d["reason"], d["closed_by"]) == ("packet_too_large", "proxy"), d
