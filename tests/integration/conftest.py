"""Fixtures for the proxy integration tests (test_proxy_*.py): a real
mosquitto on a free loopback port, the real `wirewarden proxy` in front of
it, paho and raw-socket clients, and a recording tap. Everything started
here is stopped here, whatever the test did.

Run: /usr/bin/python3 -m pytest tests/integration -q
The binary is $WIREWARDEN (default <repo>/build/wirewarden).

    def test_x(broker, proxy, client):
        px = proxy(broker.port, config={"policies": {"heartbeat": {"mode": "enforce", "factor": 1.2}}})
        c = client(px.port, version=5, client_id="x", keepalive=2)
        assert c.connect() == 0
        px.wait_event("disconnect", timeout=5, reason="keepalive_timeout")

Every proxy is stopped with SIGTERM at teardown; the teardown fails if it
does not exit 0, or if any connection it saw lacks exactly one `disconnect`
event (its last, with a catalog reason and id).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers.clients import Client  # noqa: E402
from helpers.packets import RawClient  # noqa: E402
from helpers.procs import BINARY, Mosquitto, Proxy, Tap  # noqa: E402


@pytest.fixture(scope="session")
def wirewarden_binary():
    if not os.access(BINARY, os.X_OK):
        pytest.fail("no wirewarden binary at %s (set WIREWARDEN)" % BINARY)
    return BINARY


@pytest.fixture
def mosquitto(tmp_path):
    """Factory: mosquitto(extra=[config lines], passwd=False) -> started Mosquitto."""
    made = []

    def make(extra=(), passwd=False, start=True):
        m = Mosquitto(tmp_path, extra=extra, passwd=passwd, name="mosquitto%d" % len(made))
        made.append(m)
        return m.start() if start else m

    yield make
    for m in made:
        m.kill()


@pytest.fixture
def broker(mosquitto):
    """A default mosquitto (anonymous clients allowed)."""
    return mosquitto()


@pytest.fixture
def proxy(tmp_path, wirewarden_binary):
    """Factory: proxy(upstream_port, config=None|dict, flags=(), workers=2) ->
    started Proxy. Stopped at teardown with SIGTERM (must exit 0); then every
    connection must have exactly one disconnect event."""
    made = []

    def make(upstream_port, config=None, flags=(), workers=2, start=True, port=None):
        px = Proxy(tmp_path, upstream_port, config=config, flags=flags, workers=workers,
                   name="proxy%d" % len(made), port=port)
        made.append(px)
        return px.start() if start else px

    yield make
    problems = []
    for px in made:
        if px.proc is None:
            continue
        try:
            px.stop()
            px.check_one_disconnect_each()
        except AssertionError as e:
            problems.append("%s: %s" % (px.name, e))
    if problems:
        pytest.fail("proxy teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def client():
    """Factory: client(port, version=4|5, client_id=..., keepalive=60, bind="",
    username=, password=, will=(topic, payload, qos, retain)) -> paho Client
    (not yet connected). Closed at teardown."""
    made = []

    def make(port, **kw):
        c = Client(port, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def raw():
    """Factory: raw(port, bind="127.0.0.1", rcvbuf=None) -> connected RawClient."""
    made = []

    def make(port, **kw):
        r = RawClient(port, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def tap():
    """Factory: tap(target_port, hold_fin=False) -> Tap recording every byte."""
    made = []

    def make(target, **kw):
        t = Tap(target, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()
