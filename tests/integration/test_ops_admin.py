"""The admin API and metrics (issue 6) with curl against the running proxy,
real mosquitto and paho clients: bearer token, the session watch, admin
disconnects (admin_disconnect, v5 0x98), listener disable/enable
(listener_disabled, new connections refused), the event ring, /healthz,
/readyz, and /metrics checked by promtool and by a strict parser."""
import json
import shutil
import socket
import subprocess
import time

import pytest

from helpers import packets
from helpers.ops import curl, metric, parse_prometheus
from helpers.packets import RawClient
from helpers.procs import free_port, wait_until

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def admin_proxy(broker, proxy, tmp_path):
    tok = tmp_path / "admin.token"
    tok.write_text(TOKEN + "\n")
    port = free_port()
    px = proxy(broker.port, config={"admin": {"listen": "127.0.0.1:%d" % port, "token_file": str(tok)},
                                    "policies": {"heartbeat": {"mode": "observe"}}})
    px.admin = "http://127.0.0.1:%d" % port
    wait_until(lambda: curl(px.admin + "/healthz")[0] == 200, 5, "the admin API")
    return px


def get_json(px, path, method="GET", token=TOKEN, want=200):
    code, body = curl(px.admin + path, method=method, token=token)
    assert code == want, (path, code, body)
    return json.loads(body)


def test_token_is_required_except_for_healthz(admin_proxy):
    px = admin_proxy
    assert curl(px.admin + "/healthz") == (200, "ok\n")
    for path in ("/clients", "/metrics", "/events", "/readyz"):
        assert curl(px.admin + path)[0] == 401
        assert curl(px.admin + path, token="wrong")[0] == 401
        assert curl(px.admin + path, token=TOKEN)[0] == 200
    assert curl(px.admin + "/nothing", token=TOKEN)[0] == 404
    assert curl(px.admin + "/clients", method="DELETE", token=TOKEN)[0] == 405


def test_clients_shows_the_session_watch(admin_proxy, client):
    px = admin_proxy
    a = client(px.port, version=5, client_id="watch-a", keepalive=30)
    assert a.connect() == 0
    b = client(px.port, version=4, client_id="watch-b", username="u1", password="p")
    assert b.connect() == 0
    a.subscribe("w/#", qos=1)
    b.publish("w/1", b"x" * 100, qos=1)
    a.message()
    got = {c["client_id"]: c for c in get_json(px, "/clients")}
    assert set(got) == {"watch-a", "watch-b"}
    ca = got["watch-a"]
    assert ca["level"] == 5 and ca["keepalive_s"] == 30 and ca["state"] == "connected"
    assert ca["client"] == a.addr and ca["broker"] and ca["listener"] == "main" and ca["tls"] is False
    assert 0 <= ca["last_heartbeat_age_s"] < 10 and ca["connected_since"].endswith("Z")
    assert ca["bytes"]["broker_to_client"] > 100 and "inflight" in ca and "buffer_depth" in ca
    assert got["watch-b"]["username"] == "u1" and got["watch-b"]["level"] == 4
    one = get_json(px, "/clients/watch-b")
    assert one["client_id"] == "watch-b" and len(one["connections"]) == 1
    get_json(px, "/clients/nobody", want=404)


def test_admin_disconnect_v5_and_v3(admin_proxy, client):
    px = admin_proxy
    v5 = client(px.port, version=5, client_id="kick-5")
    assert v5.connect() == 0
    v3 = client(px.port, version=4, client_id="kick-3")
    assert v3.connect() == 0
    assert get_json(px, "/clients/kick-5/disconnect", method="POST") == {"client_id": "kick-5", "disconnected": 1}
    assert v5.wait_disconnect() == 0x98  # Administrative action
    d = px.wait_event("disconnect", reason="admin_disconnect", client_id="kick-5")
    assert d["closed_by"] == "proxy" and d["wire_reason"] == 0x98 and d["id"] == "W2501"
    assert px.wait_event("admin_disconnect_requested", client_id="kick-5")["detail"].startswith("POST /clients/kick-5")
    get_json(px, "/clients/kick-3/disconnect", method="POST")
    assert v3.wait_disconnect() != 0
    assert px.wait_event("disconnect", client_id="kick-3")["reason"] == "admin_disconnect"
    get_json(px, "/clients/kick-3/disconnect", method="POST", want=404)
    assert get_json(px, "/clients") == []


def test_listener_disable_and_enable(admin_proxy, client):
    px = admin_proxy
    c = client(px.port, version=5, client_id="lst-1")
    assert c.connect() == 0
    r = get_json(px, "/listeners/main/disable", method="POST")
    assert r == {"listener": "main", "state": "disabled", "disconnected": 1}
    assert c.wait_disconnect() == 0x98
    assert px.wait_event("disconnect", client_id="lst-1")["reason"] == "listener_disabled"
    assert px.wait_event("listener_disabled", detail="main")["count"] == 1
    s = socket.socket()
    s.settimeout(2)
    with pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", px.port))
    s.close()
    get_json(px, "/listeners/nope/disable", method="POST", want=404)
    assert get_json(px, "/listeners/main/enable", method="POST")["state"] == "enabled"
    wait_until(lambda: __import__("helpers.procs", fromlist=["listening"]).listening(px.port) >= px.workers, 5,
               "the listener to be back")
    c2 = client(px.port, version=5, client_id="lst-2")
    assert c2.connect() == 0
    px.wait_event("listener_enabled", detail="main")


def test_events_ring(admin_proxy, client):
    px = admin_proxy
    for i in range(3):
        c = client(px.port, version=4, client_id="ring-%d" % i)
        assert c.connect() == 0
        c.disconnect()
        px.wait_event("disconnect", client_id="ring-%d" % i)
    evs = get_json(px, "/events?client=ring-1&limit=50")
    assert evs and all(e["client_id"] == "ring-1" for e in evs)
    assert [e["name"] for e in evs][-1] == "disconnect"
    assert [e["name"] for e in evs][0] == "connect"
    last2 = get_json(px, "/events?limit=2")
    assert len(last2) == 2 and last2[-1]["name"] == "disconnect" and last2[-1]["client_id"] == "ring-2"
    assert curl(px.admin + "/events?limit=0", token=TOKEN)[0] == 400
    assert curl(px.admin + "/events?limit=x", token=TOKEN)[0] == 400


def test_events_ring_is_bounded(broker, proxy, client, tmp_path):
    port = free_port()
    px = proxy(broker.port, config={"admin": {"listen": "127.0.0.1:%d" % port, "events_ring": 5}})
    url = "http://127.0.0.1:%d" % port
    wait_until(lambda: curl(url + "/healthz")[0] == 200, 5, "the admin API")
    for i in range(4):
        c = client(px.port, version=4, client_id="b-%d" % i)
        assert c.connect() == 0
        c.disconnect()
        px.wait_event("disconnect", client_id="b-%d" % i)
    code, body = curl(url + "/events?limit=5")  # loopback, no token configured
    assert code == 200
    evs = json.loads(body)
    assert len(evs) == 5 and evs[-1]["client_id"] == "b-3"


def test_metrics_parse_and_count(admin_proxy, client, tmp_path):
    px = admin_proxy
    sub = client(px.port, version=5, client_id="m-sub")
    assert sub.connect() == 0
    sub.subscribe("m/#", qos=1)
    pub = client(px.port, version=4, client_id="m-pub")
    assert pub.connect() == 0
    for i in range(10):
        pub.publish("m/x", b"p" * 1000, qos=1)
    sub.messages_n(10)
    get_json(px, "/clients/m-pub/disconnect", method="POST")
    px.wait_event("disconnect", client_id="m-pub")
    time.sleep(0.6)  # a 250 ms sweep samples the queue depths
    code, text = curl(px.admin + "/metrics", token=TOKEN)
    assert code == 200
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    s = parse_prometheus(text)
    assert metric(s, "wirewarden_connections", listener="main") == 1
    assert metric(s, "wirewarden_connections_accepted_total") == 2
    assert metric(s, "wirewarden_disconnects_total", reason="admin_disconnect") == 1
    assert metric(s, "wirewarden_disconnects_total", reason="keepalive_timeout") == 0
    assert metric(s, "wirewarden_bytes_total", direction="client_to_broker") >= 10 * 1000
    assert metric(s, "wirewarden_bytes_total", direction="broker_to_client") >= 10 * 1000
    assert metric(s, "wirewarden_packets_total", direction="client_to_broker", type="publish") == 10
    assert metric(s, "wirewarden_packets_total", direction="broker_to_client", type="publish") == 10
    assert metric(s, "wirewarden_packets_total", direction="client_to_broker", type="connect") == 2
    assert metric(s, "wirewarden_client_queue_bytes_count") >= 1
    assert metric(s, "wirewarden_client_packet_gap_seconds_count") >= 10
    assert metric(s, "wirewarden_policy_decisions_total", policy="heartbeat", mode="observe") == 0
    assert metric(s, "wirewarden_tls_handshakes_total", result="failed") == 0


def test_connections_spread_evenly_over_workers(broker, proxy, tmp_path):
    """The kernel's SO_REUSEPORT hash places connections blind to load;
    a worker that accepts while busier than another hands the socket over,
    so the per-worker counts stay within one of each other (by chance alone,
    100 connections over 4 workers land that even about once in 1,000 runs)."""
    port = free_port()
    px = proxy(broker.port, workers=4, config={"admin": {"listen": "127.0.0.1:%d" % port}})
    px.admin = "http://127.0.0.1:%d" % port
    wait_until(lambda: curl(px.admin + "/healthz")[0] == 200, 5, "the admin API")
    socks = []
    try:
        for _ in range(100):
            socks.append(RawClient(px.port))

        def per_worker():
            s = parse_prometheus(curl(px.admin + "/metrics")[1])
            return [metric(s, "wirewarden_worker_connections", worker=str(i)) for i in range(4)], s

        wait_until(lambda: sum(per_worker()[0]) == 100, 10, "100 connections open")
        counts, s = per_worker()
        assert max(counts) - min(counts) <= 1, counts
        assert metric(s, "wirewarden_connections_accepted_total") == 100
        assert metric(s, "wirewarden_connections_moved_total") > 0
        # A moved connection relays like any other: every one of them reaches
        # the broker and gets its CONNACK.
        for i, c in enumerate(socks):
            c.send(packets.connect("spread-%d" % i, keepalive=60))
        for c in socks:
            assert c.read_packet().raw == b"\x20\x02\x00\x00"
    finally:
        for c in socks:
            c.close()


def test_policy_decisions_by_mode(broker, proxy, raw, tmp_path):
    port = free_port()
    px = proxy(broker.port, config={"admin": {"listen": "127.0.0.1:%d" % port},
                                    "policies": {"access": {"mode": "observe", "client_id": {"deny": ["x-*"]}},
                                                 "protocol": {"mode": "enforce"}}})
    url = "http://127.0.0.1:%d" % port
    wait_until(lambda: curl(url + "/healthz")[0] == 200, 5, "the admin API")
    r = raw(px.port)
    assert r.mqtt_connect("x-observed")[1] == 0
    r2 = raw(px.port)
    assert r2.mqtt_connect("ok-1")[1] == 0
    r2.send(__import__("helpers.packets", fromlist=["connect"]).connect("ok-1"))
    r2.wait_closed(timeout=5)
    px.wait_event("disconnect", reason="protocol_error_second_connect")
    code, text = curl(url + "/metrics")
    s = parse_prometheus(text)
    assert metric(s, "wirewarden_policy_decisions_total", policy="access", mode="observe") == 1
    assert metric(s, "wirewarden_policy_decisions_total", policy="access", mode="enforce") == 0
    assert metric(s, "wirewarden_policy_decisions_total", policy="protocol", mode="enforce") == 1


def test_readyz_follows_the_upstream(mosquitto, proxy, tmp_path):
    b = mosquitto()
    port = free_port()
    px = proxy(b.port, config={"admin": {"listen": "127.0.0.1:%d" % port}})
    url = "http://127.0.0.1:%d" % port
    wait_until(lambda: curl(url + "/healthz")[0] == 200, 5, "the admin API")
    code, body = curl(url + "/readyz")
    assert code == 200 and json.loads(body)["upstreams"] == {"main": "reachable"}
    b.kill()
    code, body = curl(url + "/readyz")
    assert code == 503 and "refused" in json.loads(body)["upstreams"]["main"].lower()
    b.start()
    assert curl(url + "/readyz")[0] == 200


def black_hole():
    """A loopback listener whose accept queue is full and never drained: the
    kernel drops further SYNs, so a connect to it neither completes nor fails."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):  # what the queue takes completes; after that SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(lst.getsockname())
        fillers.append(c)
    time.sleep(0.2)
    return lst, fillers


def test_readyz_probes_every_upstream_within_one_budget(mosquitto, proxy, tmp_path):
    """Four listeners whose brokers never answer: /readyz says so for each
    within its one-second budget, not a second per broker, and the admin API
    answers the next request at once."""
    b = mosquitto()
    hole, fillers = black_hole()
    port = free_port()
    main = free_port()
    listeners = [{"name": "main", "listen": "127.0.0.1:%d" % main, "upstream": "127.0.0.1:%d" % b.port}]
    listeners += [{"name": "dark%d" % i, "listen": "127.0.0.1:%d" % free_port(),
                   "upstream": "127.0.0.1:%d" % hole.getsockname()[1]} for i in range(4)]
    try:
        proxy(b.port, config={"admin": {"listen": "127.0.0.1:%d" % port}, "listeners": listeners}, port=main)
        url = "http://127.0.0.1:%d" % port
        wait_until(lambda: curl(url + "/healthz")[0] == 200, 5, "the admin API")
        t0 = time.monotonic()
        code, body = curl(url + "/readyz")
        took = time.monotonic() - t0
        ups = json.loads(body)["upstreams"]
        assert code == 503 and ups["main"] == "reachable", body
        assert all("timed out" in ups["dark%d" % i].lower() for i in range(4)), body
        # one budget (1 s) for all of them; one after another it took four
        assert took < 2.5, took
    finally:
        for c in fillers:
            c.close()
        hole.close()


def test_admin_off_loopback_needs_a_token(tmp_path, wirewarden_binary):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listeners:\n  - {name: m, listen: 127.0.0.1:1883, upstream: 127.0.0.1:1884}\n"
                   "admin:\n  listen: 0.0.0.0:9883\n")
    p = subprocess.run([wirewarden_binary, "proxy", "--check-config", str(cfg)], capture_output=True, timeout=10)
    assert p.returncode == 2
    assert b"c.yaml:4:11: admin.listen" in p.stderr and b"token_file" in p.stderr, p.stderr
