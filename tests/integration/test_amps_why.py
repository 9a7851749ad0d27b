"""`wirewarden why` on the AMPS peer's logs (tests/data/recorded-amps/*.amps-peer.log,
written in the line shapes of AMPS's own log as 60East's troubleshooting guide shows
them; the peer is not AMPS, see doc/amps.md): each session's end, read from the log
alone, is the reason the log states, and `unknown` where the log states none
(07-0013 'disconnected.' without a reason: the client closed, or the admin console)."""
import json
import os
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(TOP, "tests", "data", "recorded-amps")
WW = os.environ.get("WIREWARDEN", os.path.join(TOP, "build", "wirewarden"))

# scenario, client name -> the reasons of its sessions, in order: (reasons accepted, closed_by)
EXPECTED = {
    ("name-in-use", "orders-7"): [({"session_taken_over"}, "broker"), ({"unknown"}, "unknown")],
    ("heartbeat-timeout", "no-heartbeat-client"): [({"keepalive_timeout"}, "broker")],
    # AMPS's 'unknown command' is 'an unknown or malformed command': the catalog gives it three reasons
    ("unknown-command", "confused"): [({"unknown_command", "protocol_error", "malformed_packet"}, "broker")],
    ("auth-failure", "intruder"): [({"auth_failed"}, "broker")],
    ("not-entitled", "visitor"): [({"not_authorized"}, "broker")],
    ("entitlement-reset", "entitled-once"): [({"credentials_expired"}, "broker")],
    ("slow-client", "sleepy-client"): [({"slow_consumer"}, "broker")],
    ("admin-disconnect", "sleepy-client"): [({"unknown", "admin_disconnect"}, None)],
    ("client-vanished", "ghost"): [({"unknown", "client_vanished"}, None)],
}


def why_json(client, *files):
    r = subprocess.run([WW, "why", client, *files, "--json"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]


@pytest.mark.parametrize("scenario,name", sorted(EXPECTED), ids=["%s-%s" % k for k in sorted(EXPECTED)])
def test_why_reads_the_amps_log(scenario, name):
    log = os.path.join(REC, scenario + ".amps-peer.log")
    sessions = [o for o in why_json(name, log) if "closed_by" in o]
    want = EXPECTED[(scenario, name)]
    assert len(sessions) == len(want), sessions
    for s, (reasons, by) in zip(sessions, want):
        assert s["reason"] in reasons, s
        if by is not None:
            assert s["closed_by"] == by, s


def test_why_sees_the_storm_in_the_amps_log():
    out = why_json("twin-7", os.path.join(REC, "takeover-storm.amps-peer.log"))
    storms = [o for o in out if o.get("reason") == "takeover_storm"]
    assert len(storms) == 1, out
    r = subprocess.run([WW, "why", "twin-7", os.path.join(REC, "takeover-storm.amps-peer.log")], capture_output=True,
                       timeout=60)
    assert "TAKE-OVER STORM (6 take-overs)" in r.stdout.decode()
