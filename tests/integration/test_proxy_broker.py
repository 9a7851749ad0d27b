"""The broker's own decisions, and the broker going away, as the proxy
records them; and the proxy's own shutdown (SIGTERM/SIGINT).

- CONNACK refusals by mosquitto with a password_file: a bad password is
  answered "not authorized" (3.1.1 rc 5, v5 0x87); with credentials given we
  report auth_failed; without credentials, not_authorized. closed_by broker.
- take-over by the broker: the old connection ends session_taken_over,
  closed_by broker (mosquitto 2.0.11 closes it).
- upstream down: a client that sent CONNECT gets CONNACK 0x88 / rc 3,
  reason upstream_unavailable, closed_by proxy.
- broker killed or restarted mid-session: clients are closed, upstream_closed;
  the proxy reaches the broker again when it is back.
- SIGTERM/SIGINT: every v5 client gets DISCONNECT 0x8B, every connection a
  disconnect server_shutdown, exit status 0.
"""
import signal

import pytest

from helpers.procs import free_port


@pytest.fixture
def secured(mosquitto):
    return mosquitto(passwd=True)


@pytest.mark.parametrize("version,code", [(4, 5), (5, 0x87)], ids=["mqtt311", "mqtt5"])
def test_bad_password_is_auth_failed(secured, proxy, client, version, code):
    px = proxy(secured.port)
    c = client(px.port, version=version, client_id="pw-bad-%d" % version, username="alice", password="wrong")
    assert c.connect() == code
    d = px.disconnect_of(c.addr)
    assert (d["reason"], d["closed_by"], d["wire_reason"], d["id"]) == ("auth_failed", "broker", code, "W2301")
    assert d.get("mode") != "enforce"
    ref = px.wait_event("connect_refused", conn=d["conn"])
    assert (ref["reason"], ref["closed_by"], ref["wire_reason"]) == ("auth_failed", "broker", code)
    assert ref["username"] == "alice"


@pytest.mark.parametrize("version,code", [(4, 5), (5, 0x87)], ids=["mqtt311", "mqtt5"])
def test_no_credentials_is_not_authorized(secured, proxy, client, version, code):
    px = proxy(secured.port)
    c = client(px.port, version=version, client_id="pw-none-%d" % version)
    assert c.connect() == code
    d = px.disconnect_of(c.addr)
    assert (d["reason"], d["closed_by"], d["wire_reason"]) == ("not_authorized", "broker", code)


def test_good_password_is_accepted(secured, proxy, client):
    px = proxy(secured.port)
    c = client(px.port, version=5, client_id="pw-good", username="bob", password="builder")
    assert c.connect() == 0
    c.subscribe("pw/t", 1)
    c.publish("pw/t", b"hello", qos=1)
    assert c.message().payload == b"hello"
    c.disconnect()
    assert px.disconnect_of(c.addr)["reason"] == "client_disconnect"


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_broker_takeover_closes_the_old_connection(broker, proxy, raw, version):
    px = proxy(broker.port)  # takeover policy at its default (observe)
    old = raw(px.port, bind="127.0.0.2")
    assert old.mqtt_connect("same-id-%d" % version, level=version)[1] == 0
    new = raw(px.port, bind="127.0.0.3")
    assert new.mqtt_connect("same-id-%d" % version, level=version)[1] == 0
    got = old.wait_closed()
    assert got == []  # mosquitto 2.0.11 just closes the old socket: no DISCONNECT 0x8E, for v5 either
    t = px.wait_event("session_taken_over", client=new.addr)
    assert "127.0.0.2" in t["detail"] and t["client_id"] == "same-id-%d" % version
    d = px.disconnect_of(old.addr)
    assert (d["reason"], d["closed_by"], d["id"]) == ("session_taken_over", "broker", "W2102")
    assert d["confidence"] == "inferred"  # from the newer CONNECT, since the wire says nothing
    assert any("newer connection from 127.0.0.3" in ev["text"] for ev in d["evidence"])
    assert new.is_open_for(0.2)


@pytest.mark.parametrize("version,code", [(4, 3), (5, 0x88)], ids=["mqtt311", "mqtt5"])
def test_upstream_down_refuses_connect_with_server_unavailable(proxy, client, raw, version, code):
    px = proxy(free_port())  # nothing listens there
    c = client(px.port, version=version, client_id="nobroker-%d" % version)
    assert c.connect() == code
    d = px.disconnect_of(c.addr)
    assert (d["reason"], d["closed_by"], d["id"]) == ("upstream_unavailable", "proxy", "W2403")


def test_broker_killed_mid_session_closes_clients_upstream_closed(mosquitto, proxy, client, raw):
    m = mosquitto()
    px = proxy(m.port)
    c = client(px.port, version=5, client_id="victim-v5")
    assert c.connect() == 0
    r = raw(px.port)
    assert r.mqtt_connect("victim-v3")[1] == 0
    m.kill()  # SIGKILL: the kernel closes its sockets, no DISCONNECT
    assert c.wait_disconnect() == 7  # paho: connection lost
    assert r.wait_closed() == []
    for addr in (c.addr, r.addr):
        d = px.disconnect_of(addr)
        assert (d["reason"], d["closed_by"], d["id"]) == ("upstream_closed", "broker", "W2004")


def test_broker_restarted_mid_session_and_reachable_again(mosquitto, proxy, client):
    m = mosquitto()
    px = proxy(m.port)
    c = client(px.port, version=5, client_id="restart-v5")
    assert c.connect() == 0
    m.stop()  # SIGTERM: mosquitto 2.0.11 closes its clients without a DISCONNECT 0x8B
    assert c.wait_disconnect() == 7  # paho: connection lost
    d = px.disconnect_of(c.addr)
    assert (d["reason"], d["closed_by"]) == ("upstream_closed", "broker")
    m.start()  # same port
    again = client(px.port, version=5, client_id="restart-v5-again")
    assert again.connect() == 0
    again.subscribe("rs/t", 1)
    again.publish("rs/t", b"back", qos=1)
    assert again.message().payload == b"back"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_proxy_shutdown_sends_0x8b_and_exits_0(broker, proxy, client, raw, sig):
    px = proxy(broker.port)
    v5 = [client(px.port, version=5, client_id="sd-v5-%d" % i) for i in range(3)]
    for c in v5:
        assert c.connect() == 0
    v3 = raw(px.port)
    assert v3.mqtt_connect("sd-v3")[1] == 0
    silent = raw(px.port)  # connected over TCP, no CONNECT yet
    px.conn_of(silent.addr)
    rc = px.signal_stop(sig, timeout=10)
    assert rc == 0
    for c in v5:
        assert c.wait_disconnect() == 0x8B
    assert v3.wait_closed() == []
    assert silent.wait_closed() == []
    ds = px.check_one_disconnect_each()
    assert len(ds) == 5
    for d in ds.values():
        assert (d["reason"], d["closed_by"], d["id"]) == ("server_shutdown", "proxy", "W2401")
