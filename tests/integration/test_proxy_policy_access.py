"""Policy access: client id and user name allow/deny globs, checked at
CONNECT. Enforce refuses with CONNACK 0x85 (client id) / 0x87 (user name),
3.1.1 return codes 2 / 5, reason not_authorized; the broker never sees the
CONNECT. Observe reports would_disconnect and lets the client in."""
import pytest

from helpers.expect import enforced, would


def access(mode, client_id=None, username=None):
    cfg = {"mode": mode}
    if client_id:
        cfg["client_id"] = client_id
    if username:
        cfg["username"] = username
    return {"policies": {"access": cfg}}


@pytest.mark.parametrize("version,code", [(4, 2), (5, 0x85)], ids=["mqtt311", "mqtt5"])
def test_denied_client_id_is_refused(broker, proxy, client, tap, version, code):
    t = tap(broker.port)
    px = proxy(t.port, config=access("enforce", client_id={"deny": ["test-*"]}))
    bad = client(px.port, version=version, client_id="test-%d" % version)
    assert bad.connect() == code
    d = px.disconnect_of(bad.addr)
    enforced(d, "not_authorized", "access")
    assert d["client_id"] == "test-%d" % version
    assert t.conns == []  # refused before the broker was dialled
    good = client(px.port, version=version, client_id="sensor-%d" % version)
    assert good.connect() == 0


@pytest.mark.parametrize("version,code", [(4, 5), (5, 0x87)], ids=["mqtt311", "mqtt5"])
def test_denied_user_name_is_refused(broker, proxy, client, version, code):
    px = proxy(broker.port, config=access("enforce", username={"deny": ["guest"]}))
    bad = client(px.port, version=version, client_id="u-bad-%d" % version, username="guest", password="x")
    assert bad.connect() == code
    d = px.disconnect_of(bad.addr)
    enforced(d, "not_authorized", "access")
    good = client(px.port, version=version, client_id="u-good-%d" % version, username="alice", password="x")
    assert good.connect() == 0


def test_allow_list_refuses_everything_else(broker, proxy, client):
    px = proxy(broker.port, config=access("enforce", client_id={"allow": ["sensor-*"]}))
    assert client(px.port, version=5, client_id="sensor-1").connect() == 0
    other = client(px.port, version=5, client_id="laptop-1")
    assert other.connect() == 0x85
    enforced(px.disconnect_of(other.addr), "not_authorized", "access")


def test_deny_wins_over_allow(broker, proxy, client):
    px = proxy(broker.port, config=access("enforce", client_id={"allow": ["sensor-*"], "deny": ["sensor-bad*"]}))
    assert client(px.port, version=4, client_id="sensor-ok").connect() == 0
    assert client(px.port, version=4, client_id="sensor-bad1").connect() == 2


def test_access_observe_lets_the_client_in(broker, proxy, client):
    px = proxy(broker.port, config=access("observe", client_id={"deny": ["test-*"]}))
    c = client(px.port, version=5, client_id="test-observed")
    assert c.connect() == 0
    w = would(px, "not_authorized", "access", wire=0x85)
    assert w["client_id"] == "test-observed"
    c.publish("acc/x", b"y", qos=1)
    assert c.still_connected()
