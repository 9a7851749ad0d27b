"""`wirewarden proxy` configuration and command line: --check-config on good
and bad files (exit 0 / 2, errors as FILE:LINE:COLUMN: message), bad flags
(exit 2), a port already taken (exit 1), and a config file's own event
sinks used at run time."""
import json
import re
import socket
import subprocess

import pytest

from helpers.procs import BINARY, TOP, free_port, listening, wait_until, yaml_dump

CONFIG_DATA = TOP / "tests" / "data" / "config"
PROXY_DATA = TOP / "tests" / "data" / "proxy"


def run(*args, timeout=10):
    return subprocess.run([BINARY, "proxy", *map(str, args)], capture_output=True, text=True, timeout=timeout)


GOOD = sorted(CONFIG_DATA.glob("good-*.yaml")) + [PROXY_DATA / "policies-enforce.yaml",
                                                   TOP / "deploy" / "wirewarden.yaml"]
BAD = sorted(CONFIG_DATA.glob("bad-*.yaml")) + sorted(PROXY_DATA.glob("bad-*.yaml"))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_check_config_accepts_good_files(path):
    if not path.exists():
        pytest.fail("missing %s" % path)
    r = run("--check-config", path)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout and r.stderr == ""


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_check_config_refuses_bad_files_with_position(path):
    r = run("--check-config", path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    first = r.stderr.splitlines()[0]
    m = re.match(r"^(.+):(\d+):(\d+): (\S.*)$", first)
    assert m, first
    assert m.group(1) == str(path)
    line, col = int(m.group(2)), int(m.group(3))
    nlines = max(1, len(path.read_bytes().splitlines()))
    assert 1 <= line <= nlines + 1 and col >= 1, first


@pytest.mark.parametrize("name,where,what", [
    ("bad-duration.yaml", "14:15", 'policies.slow_client.grace: "30x" is not a duration'),
    ("bad-policy-factor.yaml", "8:13", "policies.heartbeat.factor: must be above 1"),
    ("bad-listen-port.yaml", "3:13", 'listeners[0].listen: "127.0.0.1:70000" is not host:port'),
])
def test_check_config_points_at_the_offending_value(name, where, what):
    path = (CONFIG_DATA if (CONFIG_DATA / name).exists() else PROXY_DATA) / name
    r = run("--check-config", path)
    assert r.returncode == 2
    assert r.stderr.startswith("%s:%s: %s" % (path, where, what)), r.stderr


def test_check_config_missing_file():
    r = run("--check-config", "/nonexistent/wirewarden.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith("/nonexistent/wirewarden.yaml:0:0: ")


def test_running_with_a_bad_config_is_a_usage_error(tmp_path):
    bad = PROXY_DATA / "bad-policy-factor.yaml"
    r = run("--config", bad, "--events", tmp_path / "ev.jsonl")
    assert r.returncode == 2
    assert r.stderr.startswith("%s:8:13: " % bad)


@pytest.mark.parametrize("args", [
    ["--bogus"],
    [],
    ["--listen", "127.0.0.1:18830"],
    ["--upstream", "127.0.0.1:18831"],
    ["--listen", "nonsense", "--upstream", "127.0.0.1:18831"],
    ["--listen", "127.0.0.1:18830", "--upstream", "127.0.0.1:99999"],
    ["--listen", "127.0.0.1:18830", "--upstream", "127.0.0.1:18831", "extra"],
    ["--listen", "127.0.0.1:18830", "--upstream", "127.0.0.1:18831", "--workers", "abc"],
    ["--listen", "127.0.0.1:18830", "--upstream", "127.0.0.1:18831", "--workers", "-1"],
    ["--check-config"],
], ids=["unknown-flag", "nothing", "no-upstream", "no-listen", "bad-listen", "bad-port", "extra-argument",
        "workers-not-a-number", "workers-negative", "check-config-without-file"])
def test_bad_flags_exit_2(args):
    r = run(*args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr.strip()


def test_help_exits_0():
    r = run("--help")
    assert r.returncode == 0 and "--check-config" in r.stdout


def test_port_in_use_is_a_runtime_failure(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run("--listen", "127.0.0.1:%d" % port, "--upstream", "127.0.0.1:1", "--events", tmp_path / "e.jsonl")
    assert r.returncode == 1, r.stderr


def test_config_file_sinks_and_policies_are_used(tmp_path, broker, raw):
    """events.json from the file (no --events flag), and its policies."""
    port = free_port()
    events = tmp_path / "from-config.jsonl"
    cfg = {"listeners": [{"name": "main", "listen": "127.0.0.1:%d" % port,
                          "upstream": "127.0.0.1:%d" % broker.port}],
           "workers": 1, "events": {"json": str(events), "log": str(tmp_path / "text.log")},
           "policies": {"protocol": {"mode": "enforce"}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml_dump(cfg) + "\n")
    assert run("--check-config", path).returncode == 0
    proc = subprocess.Popen([BINARY, "proxy", "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_until(lambda: listening(port) or proc.poll() is not None, 5, "the proxy to listen")
        assert proc.poll() is None
        r = raw(port)
        r.send(bytes([0xC0, 0]))  # PINGREQ first: first_packet_not_connect, enforced
        assert r.wait_closed() == []

        def disconnect():
            if not events.exists():
                return None
            for line in events.read_text().splitlines():
                e = json.loads(line)
                if e["name"] == "disconnect":
                    return e
        d = wait_until(disconnect, 5, "the disconnect event in the configured JSON file")
        assert (d["reason"], d["policy"], d["mode"]) == ("first_packet_not_connect", "protocol", "enforce")
        assert (tmp_path / "text.log").read_text().count("first_packet_not_connect") >= 1
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_generated_configs_are_valid(tmp_path):
    """The YAML the tests write from dicts (helpers.procs.yaml_dump) is what
    the loader reads: every policy block the proxy tests use."""
    cfg = {"listeners": [{"name": "main", "listen": "127.0.0.1:18830", "upstream": "127.0.0.1:18831"}],
           "workers": 2,
           "policies": {"heartbeat": {"mode": "enforce", "factor": 1.2},
                        "slow_client": {"mode": "observe", "offline_bytes": "256KiB", "disconnect_bytes": "1MiB",
                                        "grace": "1s"},
                        "takeover": {"mode": "enforce", "storm_count": 3, "storm_window": "20s", "cooldown": "5s"},
                        "protocol": {"mode": "observe"},
                        "receive_maximum": {"mode": "enforce"},
                        "limits": {"mode": "enforce", "max_packet_size": "1KiB", "msgs_per_s": 5,
                                   "bytes_per_s": "10000", "max_connections": 2, "max_per_ip": 1,
                                   "connect_timeout": "1s"},
                        "access": {"mode": "enforce", "client_id": {"allow": ["sensor-*"], "deny": ["test-*"]},
                                   "username": {"deny": ["guest"]}}}}
    path = tmp_path / "gen.yaml"
    path.write_text(yaml_dump(cfg) + "\n")
    r = run("--check-config", path)
    assert r.returncode == 0, path.read_text() + r.stderr
