"""TLS (issue 6) with certificates made here by the openssl CLI, a real
mosquitto, mosquitto_pub/sub, paho and openssl s_client: TLS toward clients
with mTLS and the certificate identity (events, /clients, access rules),
handshake failures logged with OpenSSL's reason and counted (wrong CA,
expired, no certificate, plain MQTT on the TLS port, silence past the
handshake timeout, ALPN), credentials_expired while connected (enforce and
observe), TLS toward the broker with verification and SNI, and certificates
reloaded on SIGHUP."""
import datetime
import json
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import packets as P
from helpers.ops import CA, curl, metric, parse_prometheus, server_tls
from helpers.procs import free_port, wait_until, yaml_dump

SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA(d / "ca")
    other = CA(d / "other", name="some other CA")
    now = datetime.datetime.now(datetime.timezone.utc)
    p = {"ca": ca, "server": server_tls(ca)}
    p["good"] = ca.issue("good", "sensor-1")
    p["intruder"] = ca.issue("intruder", "intruder-9")
    p["san_only"] = ca.issue("san", "sensor-san", san="DNS:gw-7.example")
    p["wrong_ca"] = other.issue("wrong", "sensor-1")
    p["expired"] = ca.issue("expired", "sensor-old", not_before=now - datetime.timedelta(days=10),
                            not_after=now - datetime.timedelta(days=1))
    return p


def tls_listener(pki, client_cert="require", **extra):
    t = dict(server_tls_of(pki), client_ca=str(pki["ca"].cert), client_cert=client_cert)
    t.update(extra)
    return t


def server_tls_of(pki):
    return dict(pki["server"])


def tls_proxy(proxy, broker, pki, tls=None, admin=False, **cfg):
    config = dict(cfg)
    if admin:
        config["admin"] = {"listen": "127.0.0.1:%d" % free_port()}
    px = proxy(broker.port, config=config, start=False)
    full = {"listeners": [{"name": "tls", "listen": "127.0.0.1:%d" % px.port,
                           "upstream": "127.0.0.1:%d" % broker.port, "tls": tls or tls_listener(pki)}],
            "workers": px.workers}
    full.update(config)
    px.config_path.write_text(yaml_dump(full) + "\n")
    px.start()
    if admin:
        px.admin = "http://%s" % config["admin"]["listen"]
        wait_until(lambda: curl(px.admin + "/healthz")[0] == 200, 5, "the admin API")
    return px


def paho_tls(pki, cert=None):
    t = {"ca_certs": str(pki["ca"].cert)}
    if cert:
        t["certfile"], t["keyfile"] = str(pki[cert][0]), str(pki[cert][1])
    return t


def mosq_tls(pki, cert="good"):
    args = ["--cafile", str(pki["ca"].cert)]
    if cert:
        args += ["--cert", str(pki[cert][0]), "--key", str(pki[cert][1])]
    return args


def test_mtls_mosquitto_clients_and_paho_through_the_proxy(broker, proxy, client, pki):
    px = tls_proxy(proxy, broker, pki, admin=True)
    sub = subprocess.Popen([SUB, "-h", "127.0.0.1", "-p", str(px.port), "-i", "tls-sub", "-t", "t/tls", "-C", "2",
                            "-W", "10", "-V", "mqttv5"] + mosq_tls(pki), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        px.wait_event("connack", client_id="tls-sub", timeout=8)
        subprocess.run([PUB, "-h", "127.0.0.1", "-p", str(px.port), "-i", "tls-pub", "-t", "t/tls", "-m", "hello",
                        "-q", "1"] + mosq_tls(pki), check=True, timeout=10, capture_output=True)
        c = client(px.port, version=5, client_id="paho-tls", tls=paho_tls(pki, "good"))
        assert c.connect() == 0
        c.publish("t/tls", b"from paho", qos=1)
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.decode().split() == ["hello", "from", "paho"], err
    ev = px.wait_event("connect", client_id="paho-tls")
    assert ev["identity"] == "sensor-1"
    clients = json.loads(curl(px.admin + "/clients/paho-tls")[1])["connections"]
    assert clients[0]["tls"] is True and clients[0]["identity"] == "sensor-1"
    assert clients[0]["certificate_not_after"].endswith("Z")
    d = px.wait_event("disconnect", client_id="tls-pub")
    assert d["reason"] == "client_disconnect" and d["identity"] == "sensor-1"


def test_identity_from_san_when_no_cn_and_access_rules(broker, proxy, client, pki):
    px = tls_proxy(proxy, broker, pki, policies={"access": {"mode": "enforce",
                                                             "identity": {"allow": ["sensor-*"]}}})
    ok = client(px.port, version=5, client_id="a-ok", tls=paho_tls(pki, "good"))
    assert ok.connect() == 0
    bad = client(px.port, version=5, client_id="a-bad", tls=paho_tls(pki, "intruder"))
    assert bad.connect() == 0x87
    d = px.wait_event("disconnect", client_id="a-bad")
    assert d["reason"] == "not_authorized" and d["identity"] == "intruder-9"
    assert d["evidence"][0]["text"] == "certificate identity not allowed"
    san = client(px.port, version=4, client_id="a-san", tls=paho_tls(pki, "san_only"))
    assert san.connect() == 0
    assert px.wait_event("connect", client_id="a-san")["identity"] == "sensor-san"


def handshake_fails(px, pki, cert, want_detail):
    seen = {e["conn"] for e in px.events("tls_handshake_failed")}
    args = [SUB, "-h", "127.0.0.1", "-p", str(px.port), "-t", "x", "-C", "1", "-W", "3"] + mosq_tls(pki, cert)
    p = subprocess.run(args, capture_output=True, timeout=15)
    assert p.returncode != 0
    ev = px.wait_event("tls_handshake_failed", timeout=5, conn=lambda c: c not in seen)
    assert want_detail in ev["detail"], ev
    d = px.wait_event("disconnect", conn=ev["conn"])
    assert d["reason"] == "tls_handshake_failed" and d["id"] == "W2006"
    return ev


def test_handshake_failures_are_logged_with_openssl_reason_and_counted(broker, proxy, pki):
    px = tls_proxy(proxy, broker, pki, admin=True)
    e = handshake_fails(px, pki, "wrong_ca", "certificate verify failed")
    assert "alert sent: unknown CA (48)" in e["detail"]
    e = handshake_fails(px, pki, "expired", "certificate verify failed")
    assert "certificate has expired" in e["detail"] and "alert sent: certificate expired" in e["detail"]
    handshake_fails(px, pki, None, "peer did not return a certificate")
    # plain MQTT on the TLS port
    r = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    r.sendall(P.connect("plain-on-tls"))
    r.settimeout(5)
    try:
        while r.recv(4096):
            pass
    except ConnectionResetError:
        pass
    r.close()
    ev = px.wait_event("tls_handshake_failed", detail=lambda d: d and ("wrong version" in d or "record" in d
                                                                        or "http" in d))
    assert px.wait_event("disconnect", conn=ev["conn"])["reason"] == "tls_handshake_failed"
    s = parse_prometheus(curl(px.admin + "/metrics")[1])
    assert metric(s, "wirewarden_tls_handshakes_total", result="failed") == 4
    assert metric(s, "wirewarden_disconnects_total", reason="tls_handshake_failed") == 4


def test_handshake_timeout(broker, proxy, pki):
    px = tls_proxy(proxy, broker, pki, tls=tls_listener(pki, handshake_timeout="700ms"))
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(10) == b""  # closed by the proxy
    assert 0.5 < time.monotonic() - t0 < 3
    s.close()
    ev = px.wait_event("tls_handshake_failed", detail=lambda d: d and "no handshake within 0.7 s" in d)
    assert px.wait_event("disconnect", conn=ev["conn"])["reason"] == "tls_handshake_failed"


def test_alpn_mqtt_and_refused_protocol(broker, proxy, pki):
    px = tls_proxy(proxy, broker, pki, tls=tls_listener(pki, client_cert="none"))
    base = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % px.port, "-CAfile", str(pki["ca"].cert)]
    p = subprocess.run(base + ["-alpn", "mqtt"], input=b"", capture_output=True, timeout=15)
    assert b"ALPN protocol: mqtt" in p.stdout, p.stdout[-800:]
    assert b"Verify return code: 0 (ok)" in p.stdout
    p = subprocess.run(base + ["-alpn", "h2"], input=b"", capture_output=True, timeout=15)
    assert b"ALPN protocol: mqtt" not in p.stdout
    px.wait_event("tls_handshake_failed", detail=lambda d: d and "no application protocol" in d)


def short_lived(pki, stem, seconds):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return pki["ca"].issue(stem, "sensor-brief", not_before=now - datetime.timedelta(hours=1),
                           not_after=now + datetime.timedelta(seconds=seconds))


def test_credentials_expired_while_connected_enforced(broker, proxy, client, pki):
    px = tls_proxy(proxy, broker, pki)
    pki["brief"] = short_lived(pki, "brief", 4)
    c5 = client(px.port, version=5, client_id="brief-5", tls=paho_tls(pki, "brief"))
    assert c5.connect() == 0
    c3 = client(px.port, version=4, client_id="brief-3", tls=paho_tls(pki, "brief"))
    assert c3.connect() == 0
    assert c5.wait_disconnect(timeout=10) == 0x87
    assert c3.wait_disconnect(timeout=5) != 0
    for cid in ("brief-5", "brief-3"):
        d = px.wait_event("disconnect", client_id=cid)
        assert d["reason"] == "credentials_expired" and d["closed_by"] == "proxy" and d["id"] == "W2303"
        assert "expired at" in d["evidence"][0]["text"], d


def test_credentials_expired_observed(broker, proxy, client, pki):
    px = tls_proxy(proxy, broker, pki, tls=tls_listener(pki, expiry="observe"))
    pki["brief2"] = short_lived(pki, "brief2", 3)
    c = client(px.port, version=5, client_id="brief-obs", tls=paho_tls(pki, "brief2"))
    assert c.connect() == 0
    w = px.wait_event("would_disconnect", timeout=10, client_id="brief-obs")
    assert w["reason"] == "credentials_expired" and w["mode"] == "observe" and w["wire_reason"] == 0x87
    assert c.still_connected()


def tls_broker(mosquitto, pki):
    return mosquitto(extra=["cafile %s" % pki["ca"].cert, "certfile %s" % pki["server"]["cert"],
                            "keyfile %s" % pki["server"]["key"]])


def upstream_proxy(proxy, broker, utls):
    px = proxy(broker.port, config={}, start=False)
    full = {"listeners": [{"name": "main", "listen": "127.0.0.1:%d" % px.port,
                           "upstream": "127.0.0.1:%d" % broker.port, "upstream_tls": utls}],
            "workers": px.workers}
    px.config_path.write_text(yaml_dump(full) + "\n")
    return px.start()


def test_upstream_tls_verified_by_ip_and_by_sni_name(mosquitto, proxy, client, pki):
    b = tls_broker(mosquitto, pki)
    px = upstream_proxy(proxy, b, {"ca": str(pki["ca"].cert)})
    sub = client(px.port, version=5, client_id="up-sub")
    assert sub.connect() == 0
    sub.subscribe("u/#", qos=1)
    pub = client(px.port, version=4, client_id="up-pub")
    assert pub.connect() == 0
    pub.publish("u/1", b"over tls to the broker", qos=1)
    assert sub.message().payload == b"over tls to the broker"
    px2 = upstream_proxy(proxy, b, {"ca": str(pki["ca"].cert), "sni": "localhost"})
    c = client(px2.port, version=5, client_id="up-sni")
    assert c.connect() == 0


def test_upstream_tls_refuses_an_unverified_broker(mosquitto, proxy, client, pki, tmp_path):
    b = tls_broker(mosquitto, pki)
    other = CA(tmp_path / "other2", name="not the broker's CA")
    px = upstream_proxy(proxy, b, {"ca": str(other.cert)})
    c = client(px.port, version=5, client_id="up-bad")
    assert c.connect() == 0x88  # Server unavailable
    ev = px.wait_event("tls_handshake_failed", detail=lambda d: d and d.startswith("broker: certificate verify failed"))
    assert px.wait_event("disconnect", conn=ev["conn"])["reason"] == "upstream_unavailable"
    px2 = upstream_proxy(proxy, b, {"ca": str(pki["ca"].cert), "sni": "wrong.example"})
    c2 = client(px2.port, version=4, client_id="up-wrong-name")
    assert c2.connect() == 3  # 3.1.1: server unavailable
    px2.wait_event("tls_handshake_failed", detail=lambda d: d and "certificate verify failed" in d)
    px3 = upstream_proxy(proxy, b, {"ca": str(other.cert), "verify": "false"})
    c3 = client(px3.port, version=4, client_id="up-noverify")
    assert c3.connect() == 0


def test_certificates_reloaded_on_sighup(broker, proxy, client, pki, tmp_path):
    crt, key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(pki["server"]["cert"], crt)
    shutil.copy(pki["server"]["key"], key)
    px = tls_proxy(proxy, broker, pki, tls=dict(tls_listener(pki), cert=str(crt), key=str(key)))
    old = client(px.port, version=5, client_id="before-reload", tls=paho_tls(pki, "good"))
    assert old.connect() == 0

    def subject():
        p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % px.port, "-CAfile",
                            str(pki["ca"].cert), "-cert", str(pki["good"][0]), "-key", str(pki["good"][1])],
                           input=b"", capture_output=True, timeout=15)
        return [l for l in p.stdout.decode().splitlines() if l.startswith("subject=")]

    assert subject() == ["subject=CN = localhost"]
    new_crt, new_key = pki["ca"].issue("rotated", "proxy-rotated", san="DNS:localhost,IP:127.0.0.1")
    shutil.copy(new_crt, crt)
    shutil.copy(new_key, key)
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded" in px.stderr_text(), 5, "the reload")
    assert subject() == ["subject=CN = proxy-rotated"]
    assert old.still_connected()
    old.publish("still/here", b"x", qos=1)
    # A broken key is refused and the running certificate stays.
    key.write_text("not a key\n")
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in px.stderr_text(), 5, "the refusal")
    assert subject() == ["subject=CN = proxy-rotated"]


def test_tls_both_ways_is_transparent_under_load(mosquitto, proxy, client, pki):
    """Random payloads (0 B to 256 KiB, log-uniform) at QoS 0, 1 and 2 through
    TLS from the clients and TLS to the broker: every payload arrives, in
    order, byte for byte (SHA-256)."""
    import hashlib
    import math
    import random

    b = tls_broker(mosquitto, pki)
    px = proxy(b.port, config={}, start=False)
    full = {"listeners": [{"name": "tls", "listen": "127.0.0.1:%d" % px.port,
                           "upstream": "127.0.0.1:%d" % b.port, "tls": server_tls_of(pki),
                           "upstream_tls": {"ca": str(pki["ca"].cert)}}],
            "workers": px.workers}
    px.config_path.write_text(yaml_dump(full) + "\n")
    px.start()
    rng = random.Random(7)
    pool = rng.randbytes(512 * 1024 + 1)
    sub = client(px.port, version=4, client_id="tl-sub", tls=paho_tls(pki))
    assert sub.connect() == 0
    sub.subscribe("tl/#", qos=2)
    pubs = []
    for q in range(3):
        p = client(px.port, version=5 if q == 1 else 4, client_id="tl-pub-%d" % q, tls=paho_tls(pki))
        assert p.connect() == 0
        pubs.append(p)
    sent = {q: [] for q in range(3)}
    total, window, nbytes = 1200, 30, 0
    got = {q: [] for q in range(3)}
    t0 = time.monotonic()
    for start in range(0, total, window):
        infos = []
        for i in range(start, min(total, start + window)):
            q = i % 3
            size = int(math.exp(rng.uniform(0, math.log(256 * 1024 + 1)))) - 1
            off = rng.randrange(0, 256 * 1024)
            payload = pool[off:off + size]
            sent[q].append(hashlib.sha256(payload).hexdigest())
            nbytes += size
            infos.append(pubs[q].publish("tl/q%d" % q, payload, qos=q, wait=False))
        for info in infos:
            info.wait_for_publish(20)
            assert info.is_published()
        for m in sub.messages_n(len(infos), timeout=30):
            got[int(m.topic[-1])].append(hashlib.sha256(m.payload).hexdigest())
    assert time.monotonic() - t0 < 120
    for q in range(3):
        assert got[q] == sent[q], "QoS %d: %d sent, %d received, first difference at %s" % (
            q, len(sent[q]), len(got[q]), next((i for i, (a, b) in enumerate(zip(got[q], sent[q])) if a != b), None))
    assert nbytes > 10 * 1024 * 1024
    assert not px.events("disconnect")


def test_tls_versions_and_ciphers(broker, proxy, pki):
    px = tls_proxy(proxy, broker, pki, tls=dict(server_tls_of(pki), min_version="1.3"))
    base = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % px.port, "-CAfile", str(pki["ca"].cert)]
    p = subprocess.run(base + ["-tls1_2"], input=b"", capture_output=True, timeout=15)
    assert b"Cipher is (NONE)" in p.stdout or p.returncode != 0
    ev = px.wait_event("tls_handshake_failed", detail=lambda d: d and "unsupported protocol" in d)
    assert "alert sent: protocol version" in ev["detail"]
    p = subprocess.run(base + ["-tls1_3"], input=b"", capture_output=True, timeout=15)
    assert b"TLSv1.3" in p.stdout and b"Verify return code: 0 (ok)" in p.stdout
    px2 = tls_proxy(proxy, broker, pki, tls=dict(server_tls_of(pki), max_version="1.2",
                                                 ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    base2 = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % px2.port, "-CAfile", str(pki["ca"].cert)]
    p = subprocess.run(base2, input=b"", capture_output=True, timeout=15)
    assert b"Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in p.stdout and b"TLSv1.2" in p.stdout, p.stdout[-600:]
    p = subprocess.run(base2 + ["-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"], input=b"", capture_output=True,
                       timeout=15)
    assert b"Cipher is (NONE)" in p.stdout or p.returncode != 0
    px2.wait_event("tls_handshake_failed", detail=lambda d: d and "no shared cipher" in d)


def test_upstream_sni_is_sent(proxy, client, pki, tmp_path):
    """A TLS 'broker' made with Python's ssl module records the server name
    the proxy sends, then closes: the name configured, or none for an IP
    upstream without one."""
    import ssl
    import threading

    names = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"]["cert"], pki["server"]["key"])
    ctx.sni_callback = lambda sock, name, c: names.append(name)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10)
    port = srv.getsockname()[1]

    def serve(n):
        for _ in range(n):
            try:
                s, _ = srv.accept()
                with ctx.wrap_socket(s, server_side=True) as t:
                    t.settimeout(2)
                    try:
                        t.recv(10)
                    except (OSError, ssl.SSLError):
                        pass
            except (OSError, ssl.SSLError):
                pass

    th = threading.Thread(target=serve, args=(2,), daemon=True)
    th.start()

    class Up:
        pass

    up = Up()
    up.port = port
    for utls in ({"ca": str(pki["ca"].cert), "sni": "localhost"}, {"ca": str(pki["ca"].cert)}):
        px = upstream_proxy(proxy, up, utls)
        r = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        r.sendall(P.connect("sni-check"))
        r.settimeout(5)
        try:
            r.recv(10)
        except OSError:
            pass
        r.close()
        px.wait_event("disconnect", client_id="sni-check")
    th.join(10)
    srv.close()
    assert names == ["localhost", None]


def test_readyz_checks_the_brokers_certificate(mosquitto, proxy, pki, tmp_path):
    b = tls_broker(mosquitto, pki)
    other = CA(tmp_path / "other3", name="not the broker's CA either")
    urls = []
    for ca in (pki["ca"].cert, other.cert):
        port = free_port()
        px = proxy(b.port, config={}, start=False)
        full = {"listeners": [{"name": "up", "listen": "127.0.0.1:%d" % px.port,
                               "upstream": "127.0.0.1:%d" % b.port, "upstream_tls": {"ca": str(ca)}}],
                "workers": px.workers, "admin": {"listen": "127.0.0.1:%d" % port}}
        px.config_path.write_text(yaml_dump(full) + "\n")
        px.start()
        urls.append("http://127.0.0.1:%d/readyz" % port)
        wait_until(lambda: curl(urls[-1].replace("readyz", "healthz"))[0] == 200, 5, "the admin API")
    code, body = curl(urls[0])
    assert code == 200 and json.loads(body)["upstreams"] == {"up": "reachable"}
    code, body = curl(urls[1])
    assert code == 503
    assert "certificate verify failed" in json.loads(body)["upstreams"]["up"], body
