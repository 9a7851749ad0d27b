"""`wirewarden why CLIENT FILE...` over captures and wirewarden's own event logs:
every session of the client, in time order, with its reason and evidence.
Broker logs and the join across sources: test_why_logs.py."""
import json
import os
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(TOP, "tests", "data", "recorded")
WW = os.environ.get("WIREWARDEN", os.path.join(TOP, "build", "wirewarden"))
DEMO = os.path.join(REC, "demo.pcap")


def why(*args, check=True):
    r = subprocess.run([WW, "why", *args], capture_output=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def sessions(*args):
    return [json.loads(l) for l in why(*args, "--json").stdout.decode().splitlines()]


def test_sessions_of_one_client_from_a_capture():
    s = sessions("sensor-2", DEMO)
    assert [x["reason"] for x in s] == ["session_taken_over", "client_disconnect"]
    assert s[0]["closed_by"] == "broker" and s[0]["confidence"] == "inferred"
    assert any("newer connection" in e for e in s[0]["evidence"])
    assert s[0]["end"] < s[1]["end"]


def test_glob_and_address_select_sessions():
    assert {x["client_id"] for x in sessions("sensor-*", DEMO)} == {"sensor-1", "sensor-2", "sensor-3"}
    one = sessions("flaky-gw", DEMO)[0]
    by_addr = sessions(one["client"], DEMO)
    assert len(by_addr) == 1 and by_addr[0]["reason"] == "keepalive_timeout"


def test_event_log_gives_the_same_story_as_the_capture(tmp_path):
    log = tmp_path / "demo.jsonl"
    subprocess.run([WW, "sniff", "-r", DEMO, "--json", str(log)], check=True, capture_output=True, timeout=60)
    from_log = sessions("sensor-2", str(log))
    from_cap = sessions("sensor-2", DEMO)
    assert [(x["reason"], x["closed_by"], x["end"]) for x in from_log] == \
           [(x["reason"], x["closed_by"], x["end"]) for x in from_cap]
    # the capture and its own event log saw the same two connections: each is one entry with both sources
    both = sessions("sensor-2", DEMO, str(log))
    assert len(both) == 2
    for x in both:
        assert sorted(s["source"] for s in x["sources"]) == sorted([DEMO, str(log)])
        assert x["disagreements"] == []


def test_text_output_reads_at_a_glance():
    out = why("flaky-gw", DEMO).stdout.decode()
    assert out.startswith("1 session of flaky-gw")
    assert "keepalive_timeout, closed by broker [inferred]  W2101" in out
    assert "keep-alive 2 s, client silent" in out


def test_unknown_file_kind_is_a_usage_error(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("shopping list: milk, eggs\n")
    r = why("x", str(f), check=False)
    assert r.returncode == 2 and b"not a capture" in r.stderr
    r = why("x", check=False)
    assert r.returncode == 2
