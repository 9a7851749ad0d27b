"""pytest fixtures over the AMPS peer, imported by tests/integration/test_amps_*.py:

    from fixtures import amps, amps_peer  # noqa: F401  (pytest finds them by name)

amps_peer(**server options) -> started PeerServer (stopped at teardown; must exit 0)
amps(port, bind=, protocol=, rcvbuf=, timeout=) -> connected AmpsClient (closed at teardown)"""
import pytest

from client import AmpsClient
from harness import PeerServer


@pytest.fixture
def amps_peer(tmp_path):
    made = []

    def make(**opts):
        s = PeerServer(tmp_path, name="amps-peer%d" % len(made), **opts)
        made.append(s)
        return s.start()

    yield make
    bad = []
    for s in made:
        rc = s.stop()
        if rc != 0:
            bad.append("%s exit %s: %s" % (s.name, rc, s.stderr_path.read_text(errors="replace")[-1500:]))
    if bad:
        pytest.fail("amps peer teardown: " + "\n".join(bad), pytrace=False)


@pytest.fixture
def amps():
    made = []

    def make(port, **kw):
        c = AmpsClient(port, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
