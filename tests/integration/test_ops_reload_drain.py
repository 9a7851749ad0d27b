"""SIGHUP reload and SIGTERM drain (issue 6), through real mosquitto and
paho clients: a reload changes policies for what comes next without
dropping a connection; a bad file is refused with its position and changes
nothing; SIGTERM closes the listening sockets, lets clients leave during
shutdown.drain, then ends the rest with server_shutdown (v5 0x8B)."""
import signal
import socket
import time

import pytest

from helpers.procs import wait_until, yaml_dump


def listeners(px, broker):
    return [{"name": "main", "listen": "127.0.0.1:%d" % px.port, "upstream": "127.0.0.1:%d" % broker.port}]


def rewrite(px, broker, cfg):
    full = {"listeners": listeners(px, broker), "workers": px.workers}
    full.update(cfg)
    px.config_path.write_text(yaml_dump(full) + "\n")


def refused(port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return True
    finally:
        s.close()
    return False


def test_reload_applies_new_policy_and_keeps_connections(broker, proxy, client):
    px = proxy(broker.port, config={"policies": {"access": {"mode": "enforce", "client_id": {"deny": ["old-*"]}}}})
    sub = client(px.port, version=5, client_id="keep-sub")
    assert sub.connect() == 0
    sub.subscribe("r/#", qos=1)
    pub = client(px.port, version=4, client_id="keep-pub")
    assert pub.connect() == 0
    assert client(px.port, version=5, client_id="new-1").connect() == 0

    rewrite(px, broker, {"policies": {"access": {"mode": "enforce", "client_id": {"deny": ["new-*"]}}}})
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded" in px.stderr_text(), 5, "the reload to be logged")

    # Nothing dropped: both old connections still carry messages both ways.
    pub.publish("r/1", b"after reload", qos=1)
    assert sub.message().payload == b"after reload"
    assert sub.still_connected() and pub.still_connected()
    # The new policy applies to new CONNECTs, the old one no longer does.
    c = client(px.port, version=5, client_id="new-3")
    assert c.connect() == 0x85
    assert client(px.port, version=5, client_id="old-1").connect() == 0
    d = px.wait_event("disconnect", reason="not_authorized", client_id="new-3")
    assert d["closed_by"] == "proxy"
    assert not px.events("disconnect", client_id="keep-sub")


def test_reload_refuses_bad_file_and_keeps_running_config(broker, proxy, client):
    px = proxy(broker.port, config={"policies": {"access": {"mode": "enforce", "client_id": {"deny": ["bad-*"]}}}})
    keep = client(px.port, version=4, client_id="keep")
    assert keep.connect() == 0
    good = px.config_path.read_text()
    px.config_path.write_text(good + "policies:\n  heartbeat: {mode: enforce, factor: 0.5}\n")
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in px.stderr_text(), 5, "the refusal to be logged")
    line = [x for x in px.stderr_text().splitlines() if "reload refused" in x][-1]
    # file:line:column of the problem (a repeated key, here)
    assert "%s:" % px.config_path in line
    assert __import__("re").search(r"\.yaml:\d+:\d+: ", line), line
    # Old policy still enforced, the connection still up, the proxy still runs.
    assert client(px.port, version=5, client_id="bad-1").connect() == 0x85
    assert keep.still_connected() and px.running()
    # A value error also gives its position.
    rewrite(px, broker, {"policies": {"heartbeat": {"mode": "enforce", "factor": "lots"}}})
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: px.stderr_text().count("reload refused") >= 2, 5, "the second refusal")
    line = [x for x in px.stderr_text().splitlines() if "reload refused" in x][-1]
    assert "policies.heartbeat.factor" in line and __import__("re").search(r"\.yaml:\d+:\d+: ", line), line
    assert client(px.port, version=5, client_id="bad-2").connect() == 0x85


def test_reload_of_a_missing_tls_file_is_refused(broker, proxy, client, tmp_path):
    px = proxy(broker.port, config={})
    rewrite(px, broker, {})
    cfg = px.config_path.read_text()
    px.config_path.write_text(cfg.replace("    upstream:", "    tls: {cert: %s/none.crt, key: %s/none.key}\n    upstream:"
                                          % (tmp_path, tmp_path), 1))
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in px.stderr_text(), 5, "the refusal")
    assert "listeners[0].tls.cert" in px.stderr_text()
    assert client(px.port, version=4, client_id="still-plain").connect() == 0


def test_sigterm_drains_then_ends_the_rest_with_server_shutdown(broker, proxy, client):
    px = proxy(broker.port, config={"shutdown": {"drain": "3s"}})
    leaver = client(px.port, version=5, client_id="leaver")
    assert leaver.connect() == 0
    stayer = client(px.port, version=5, client_id="stayer")
    assert stayer.connect() == 0
    v3 = client(px.port, version=4, client_id="stayer-v3")
    assert v3.connect() == 0
    t0 = time.monotonic()
    px.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "draining" in px.stderr_text(), 5, "the drain to start")
    # Not accepting: the listening sockets are closed, not just paused.
    assert refused(px.port)
    # Clients may still work and leave on their own during the drain.
    assert stayer.still_connected()
    leaver.disconnect()
    assert stayer.wait_disconnect(timeout=8) == 0x8B  # server shutting down
    assert time.monotonic() - t0 >= 2.5, "ended before the drain period"
    assert v3.wait_disconnect(timeout=3) != 0
    assert px.proc.wait(10) == 0
    px.stopped_rc = 0
    ds = px.check_one_disconnect_each()
    reasons = {d.get("client_id"): d["reason"] for d in ds.values()}
    assert reasons == {"leaver": "client_disconnect", "stayer": "server_shutdown", "stayer-v3": "server_shutdown"}
    assert [d for d in ds.values() if d.get("client_id") == "stayer"][0]["wire_reason"] == 0x8B


def test_drain_ends_early_when_everyone_has_left(broker, proxy, client):
    px = proxy(broker.port, config={"shutdown": {"drain": "30s"}})
    c = client(px.port, version=4, client_id="quick")
    assert c.connect() == 0
    px.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "draining" in px.stderr_text(), 5, "the drain to start")
    t0 = time.monotonic()
    c.disconnect()
    assert px.proc.wait(10) == 0
    px.stopped_rc = 0
    assert time.monotonic() - t0 < 5


def test_second_sigterm_cuts_the_drain_short(broker, proxy, client):
    px = proxy(broker.port, config={"shutdown": {"drain": "60s"}})
    c = client(px.port, version=5, client_id="cut")
    assert c.connect() == 0
    px.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "draining" in px.stderr_text(), 5, "the drain to start")
    px.proc.send_signal(signal.SIGTERM)
    assert c.wait_disconnect(timeout=5) == 0x8B
    assert px.proc.wait(10) == 0
    px.stopped_rc = 0


def test_sighup_reopens_the_event_files_for_logrotate(broker, proxy, client):
    import json

    px = proxy(broker.port, config={})
    a = client(px.port, version=4, client_id="before-rotate")
    assert a.connect() == 0
    a.disconnect()
    px.wait_event("disconnect", client_id="before-rotate")
    rotated_json = px.events_path.with_name(px.events_path.name + ".1")
    rotated_text = px.log_path.with_name(px.log_path.name + ".1")
    px.events_path.rename(rotated_json)  # what logrotate does, then it signals
    px.log_path.rename(rotated_text)
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: px.events_path.exists() and px.log_path.exists(), 5, "the event files to be reopened")
    b = client(px.port, version=5, client_id="after-rotate")
    assert b.connect() == 0
    b.disconnect()

    def lines(p):
        return [json.loads(x) for x in p.read_text().splitlines()]

    wait_until(lambda: any(e.get("name") == "disconnect" for e in lines(px.events_path)), 5,
               "the new file to get the new connection's events")
    old, new = lines(rotated_json), lines(px.events_path)
    assert {e.get("client_id") for e in old if "client_id" in e} == {"before-rotate"}
    assert {e.get("client_id") for e in new if "client_id" in e} == {"after-rotate"}
    assert "after-rotate" in px.log_path.read_text() and "after-rotate" not in rotated_text.read_text()
    # Every connection still ends with one disconnect, across the two files.
    px.stop()
    px.events_path.write_text(rotated_json.read_text() + px.events_path.read_text())
    px._offset, px._lines, px._partial = 0, [], b""
    assert len(px.check_one_disconnect_each()) == 2
