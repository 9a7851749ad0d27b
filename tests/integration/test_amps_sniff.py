"""`wirewarden sniff --amps-port N` verdicts on the AMPS captures recorded
against the AMPS peer (tests/data/recorded-amps, made by
tests/tools/record_amps.py; the peer follows the public documentation and
is not AMPS: doc/amps.md). Ground truth is the peer's own log of each
scenario, summarised in connections.tsv: the test checks that the log says
what the table claims, then that wirewarden's verdict for each connection
is the one the wire can support.

Where the server closed for a reason the wire does not carry (admin
disconnect, transport disabled, entitlement reset) the verdict must be a
server close with reason `unknown`, never a confident guess: in
admin-disconnect the client started a 10 s heartbeat 0.3 s before the
server closed, which is no heartbeat timeout."""
import csv
import json
import os
import re
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(TOP, "tests", "data", "recorded-amps")
WW = os.environ.get("WIREWARDEN", os.path.join(TOP, "build", "wirewarden"))


def connections():
    with open(os.path.join(REC, "connections.tsv")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


CONNS = connections()
SCENARIOS = sorted({r["scenario"] for r in CONNS})

# (closed_by, AMPS reason) in the peer's log -> what the wire supports:
# (reason, closed_by, amps_reason, confidences accepted)
BY_TRUTH = {
    ("client", "connection closed"): ("client_vanished", "client", "connection closed", {"stated"}),
    ("server", "name in use"): ("session_taken_over", "broker", "name in use", {"inferred"}),
    ("server", "heartbeat"): ("keepalive_timeout", "broker", "heartbeat", {"inferred"}),
    ("server", "unknown command"): ("unknown_command", "broker", "unknown command", {"inferred", "stated"}),
    ("server", "auth failure"): ("auth_failed", "broker", "auth failure", {"stated", "inferred"}),
    ("server", "not entitled"): ("not_authorized", "broker", "not entitled", {"stated", "inferred"}),
    # the server says nothing on the wire for these: unknown, and no AMPS words (naming one would be a guess)
    ("server", "admin disconnect"): ("unknown", "broker", None, {"unknown"}),
    ("server", "transport disabled"): ("unknown", "broker", None, {"unknown"}),
    ("server", "entitlement reset"): ("unknown", "broker", None, {"unknown"}),
}
# scenario-specific: a refusal the wire states, a malformed header, the slow client
BY_SCENARIO = {
    ("name-in-use-other-user", "server", "name in use"): ("name_in_use", "broker", "name in use", {"stated"}),
    ("malformed-header", "server", "unknown command"): ("malformed_packet", "broker", "unknown command",
                                                        {"inferred", "stated"}),
    # every connection of the server closed within milliseconds: from the wire a transport being
    # disabled looks like a server shutting down; inferred, and no AMPS words claimed
    ("transport-disabled", "server", "transport disabled"): ("server_shutdown", "broker", None, {"inferred"}),
    # zero window from the client, then the server's reset while it still had data queued
    ("slow-client", "server", "slow client"): ("slow_consumer", "broker", "slow client", {"inferred"}),
}


def expected(row):
    key = (row["scenario"], row["closed_by"], row["amps_reason"])
    return BY_SCENARIO.get(key) or BY_TRUTH[(row["closed_by"], row["amps_reason"])]


def server_port(pcap):
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields",
                          "-e", "tcp.dstport"], capture_output=True, timeout=60, check=True)
    return int(out.stdout.decode().split()[0])


def sniff_json(pcap, *extra):
    r = subprocess.run([WW, "sniff", "-r", pcap, "--json", "-", *extra], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def test_ground_truth_tables_match_the_peer_logs():
    """connections.tsv says what each scenario's peer log says."""
    for sc in SCENARIOS:
        log = open(os.path.join(REC, sc + ".amps-peer.log")).read()
        for row in (r for r in CONNS if r["scenario"] == sc):
            line = "from %s closed by %s, reason[%s]" % (row["client"], row["closed_by"], row["amps_reason"])
            assert line in log, "%s: %s not in the peer log" % (sc, line)
        assert "PEER-0000 amps peer (not AMPS)" in log


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_amps_verdicts_match_the_peer_log(scenario):
    pcap = os.path.join(REC, scenario + ".pcap")
    port = server_port(pcap)
    lines = sniff_json(pcap, "--amps-port", str(port))
    verdicts = {v["client"]: v for v in lines if v.get("type") == "verdict"}
    rows = [r for r in CONNS if r["scenario"] == scenario]
    assert len(verdicts) == len(rows), "one verdict per AMPS connection: %s" % sorted(verdicts)
    for row in rows:
        v = verdicts.get(row["client"])
        assert v is not None, "no verdict for %s (%s)" % (row["client"], row["amps_reason"])
        reason, by, amps_reason, confs = expected(row)
        got = (v["reason"], v["closed_by"], v.get("amps_reason"))
        assert got == (reason, by, amps_reason), "%s %s: got %s, want %s\n%s" % (
            scenario, row["client"], got, (reason, by, amps_reason), json.dumps(v))
        assert v["confidence"] in confs, v
        assert v.get("protocol") == "amps", v
        assert v["evidence"] and all(e["frame"] > 0 for e in v["evidence"]), v


def test_takeover_verdict_names_the_new_connection():
    """'closed by server after a logon from another connection with the same client name'"""
    pcap = os.path.join(REC, "name-in-use.pcap")
    rows = [r for r in CONNS if r["scenario"] == "name-in-use"]
    old, new = rows[0]["client"], rows[1]["client"]
    vs = {v["client"]: v for v in sniff_json(pcap, "--amps-port", str(server_port(pcap))) if v.get("type") == "verdict"}
    v = vs[old]
    assert v.get("client_id", v.get("client_name")) == "orders-7"
    text = json.dumps(v)
    assert new.split(":")[1] in text or new in text, "the evidence should point at the new connection: %s" % text


def test_heartbeat_verdict_says_two_intervals():
    """'server closed after 2 x heartbeat of client silence' (start,1; silent ~2 s)."""
    pcap = os.path.join(REC, "heartbeat-timeout.pcap")
    vs = [v for v in sniff_json(pcap, "--amps-port", str(server_port(pcap))) if v.get("type") == "verdict"]
    assert len(vs) == 1
    v = vs[0]
    assert (v["reason"], v["closed_by"]) == ("keepalive_timeout", "broker"), v
    text = " ".join(e["text"] for e in v["evidence"])
    assert re.search(r"\b1 s\b", text), "the evidence should name the 1 s interval: %s" % text
    m = re.search(r"silent ([\d.]+) s", text)
    assert m and 1.9 <= float(m.group(1)) <= 2.6, "the evidence should say ~2 s of silence: %s" % text


def test_takeover_storm_is_reported():
    pcap = os.path.join(REC, "takeover-storm.pcap")
    lines = sniff_json(pcap, "--amps-port", str(server_port(pcap)))
    assert [e for e in lines if e.get("name") == "takeover_storm"], "no takeover_storm event"
    taken = [v for v in lines if v.get("type") == "verdict" and v["reason"] == "session_taken_over"]
    assert len(taken) == 6


def test_without_amps_port_the_captures_are_not_misread_as_mqtt():
    pcap = os.path.join(REC, "clean-close.pcap")
    r = subprocess.run([WW, "sniff", "-r", pcap, "--json", "-", "--port", str(server_port(pcap))],
                       capture_output=True, timeout=60)
    lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert not [v for v in lines if v.get("type") == "verdict" and v["reason"] == "client_disconnect"]


def frames_table():
    with open(os.path.join(REC, "frames.tsv")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


FRAMES = frames_table()
KNOWN = {"logon", "heartbeat", "publish", "p", "delta_publish", "subscribe", "delta_subscribe", "sow",
         "sow_and_subscribe", "sow_and_delta_subscribe", "unsubscribe", "sow_delete", "flush", "ack", "start_timer",
         "stop_timer", "oof", "group_begin", "group_end"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_packets_frame_like_tshark_and_the_documented_framing(scenario):
    """--packets lists, per stream and direction, the same AMPS frames in the same
    order (command and payload length) as frames.tsv, which was split from
    tshark's payloads by the peer's own framer (no wirewarden code)."""
    pcap = os.path.join(REC, scenario + ".pcap")
    r = subprocess.run([WW, "sniff", "-r", pcap, "--packets", "--amps-port", str(server_port(pcap))],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    got, flows = {}, []
    for line in r.stdout.decode().splitlines():
        o = json.loads(line)
        if o.get("type") == "flow":
            flows.append(o)
            continue
        # an unknown command is typed "unknown" and named in "command"; an unreadable header has an error
        name = o.get("command") if o["type"] == "unknown" else "(malformed)" if o.get("error") and \
            o["type"] == "?" else o["type"]
        got.setdefault((o["stream"], o["dir"]), []).append((name, o.get("len")))
    want = {}
    for row in (f for f in FRAMES if f["scenario"] == scenario):
        want.setdefault((int(row["stream"]), row["dir"]), []).append(row["command"])
    assert {k: [t for t, _ in v] for k, v in got.items()} == want
    bad = sum(1 for v in got.values() for name, _ in v if name == "(malformed)" or name not in KNOWN)
    assert all(f["protocol"] == "amps" and f["gaps"] == 0 for f in flows), flows
    assert sum(f["errors"] for f in flows) == bad, flows
