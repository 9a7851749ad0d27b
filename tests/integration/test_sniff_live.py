"""`wirewarden sniff -i IFACE`: live capture on the loopback interface while
real clients talk to a real mosquitto on a free 127.0.0.1 port. The verdicts
are the ones a file of the same traffic gives: a take-over (the old connection
closed by the broker, inferred), then a clean DISCONNECT. Also: the capture
ends by itself on --count and --duration, and cleanly (exit 0, summary) on
SIGINT and SIGTERM; SIGUSR1 prints libpcap's counters; -w keeps a commented
pcapng of a live capture.

Needs root (capture on lo), which CI has; skipped otherwise.
Run: WIREWARDEN=build/wirewarden /usr/bin/python3 -m pytest tests/integration/test_sniff_live.py
"""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from helpers.clients import Client
from helpers.packets import RawClient, connect as mk_connect
from helpers.procs import BINARY, stop_process, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="live capture on lo needs root")


class Sniffer:
    """A running `wirewarden sniff -i lo ...`, its stderr read by a thread so
    that the test can wait (bounded) for the "capturing on" line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([BINARY, "sniff", "-i", "lo", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.err = []
        self.reader = threading.Thread(target=self._read_err, daemon=True)
        self.reader.start()
        try:
            wait_until(lambda: any("capturing on lo" in l for l in self.err) or self.proc.poll() is not None, 10,
                       "wirewarden sniff to start capturing")
        except TimeoutError:
            self.proc.kill()
            raise
        assert self.proc.poll() is None, "sniff exited at start: %s" % "".join(self.err)

    def _read_err(self):
        for line in iter(self.proc.stderr.readline, b""):
            self.err.append(line.decode(errors="replace"))

    def stderr_text(self):
        return "".join(self.err)

    def stop(self, sig=signal.SIGINT, timeout=15):
        """Sends <sig>; returns (exit status, stdout)."""
        rc = stop_process(self.proc, sig, timeout)
        out = self.proc.stdout.read().decode()
        self.reader.join(5)
        return rc, out

    def wait(self, timeout=20):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("sniff did not end by itself within %d s" % timeout) from None
        out = self.proc.stdout.read().decode()
        self.reader.join(5)
        return rc, out


@pytest.fixture
def sniffer():
    made = []

    def make(*args):
        s = Sniffer(*args)
        made.append(s)
        return s

    yield make
    for s in made:
        if s.proc.poll() is None:
            stop_process(s.proc, signal.SIGKILL, 5)


def json_lines(out):
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def verdicts_of(lines):
    return [(v.get("client_id"), v["reason"], v["closed_by"], v["confidence"]) for v in lines
            if v["type"] == "verdict"]


def test_live_takeover_and_clean_disconnect(broker, sniffer):
    """One client connects and publishes, a second with the same id takes it
    over, the second disconnects: the same verdicts as the recorded
    v311-takeover capture, from live frames with capture timestamps."""
    sn = sniffer("--json", "-", "--duration", "30", "--port", str(broker.port), "tcp port %d" % broker.port)
    first = Client(broker.port, client_id="live-twin", keepalive=30)
    second = Client(broker.port, client_id="live-twin", keepalive=30)
    try:
        assert first.connect() == 0
        first.publish("live/t", b"hello", qos=1)
        assert second.connect() == 0
        first.wait_disconnect(5)  # mosquitto closed the old connection
        second.publish("live/t", b"again", qos=1)
        second.disconnect()
        second.wait_disconnect(5)
        wait_until(lambda: "Client live-twin disconnected" in broker.log_text(), 5, "mosquitto to log the DISCONNECT")
        time.sleep(0.3)  # the last FIN/ACK reaches the capture
        os.kill(sn.proc.pid, signal.SIGUSR1)
        wait_until(lambda: "received" in sn.stderr_text(), 5, "the SIGUSR1 counters line")
        rc, out = sn.stop(signal.SIGINT)
    finally:
        first.close()
        second.close()
    assert rc == 0, sn.stderr_text()
    got = verdicts_of(json_lines(out))
    assert ("live-twin", "session_taken_over", "broker", "inferred") in got, got
    assert ("live-twin", "client_disconnect", "client", "stated") in got, got
    assert len(got) == 2, got
    log = broker.log_text()
    assert "already connected, closing old connection" in log
    # Counters on SIGUSR1 and at the end: received, dropped, if-dropped.
    counts = [l for l in sn.stderr_text().splitlines() if " received, " in l]
    assert len(counts) == 2 and "so far" in counts[0] and "if-dropped" in counts[1], counts
    # Timestamps are the capture's: the verdicts fall within the test's run.
    for v in json_lines(out):
        if v["type"] == "verdict":
            assert v["start"] <= v["end"]


def test_live_count_ends_the_capture_with_a_summary(broker, sniffer):
    sn = sniffer("--count", "3", "tcp port %d" % broker.port)
    r = RawClient(broker.port)
    try:
        r.send(mk_connect("counted", level=4))
        rc, out = sn.wait(20)  # SYN, SYN+ACK, ACK: three frames
    finally:
        r.close()
    assert rc == 0, sn.stderr_text()
    assert "connection" in out and "client id" in out  # the summary


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_live_stop_signal_keeps_open_sessions_as_still_open(broker, sniffer, sig):
    sn = sniffer("--json", "-", "tcp port %d" % broker.port)
    c = Client(broker.port, client_id="stays-open", keepalive=30)
    try:
        assert c.connect() == 0
        time.sleep(0.3)
        rc, out = sn.stop(sig)
    finally:
        c.close()
    assert rc == 0, sn.stderr_text()
    assert verdicts_of(json_lines(out)) == [("stays-open", "still_open", "unknown", "stated")]


def test_live_duration_and_commented_pcapng(broker, sniffer, tmp_path):
    out_pcapng = tmp_path / "live.pcapng"
    sn = sniffer("--duration", "3", "-w", str(out_pcapng), "tcp port %d" % broker.port)
    c = Client(broker.port, client_id="live-bye", keepalive=30)
    try:
        assert c.connect() == 0
        c.disconnect()
        c.wait_disconnect(5)
    finally:
        c.close()
    rc, out = sn.wait(20)
    assert rc == 0, sn.stderr_text()
    assert "client[live-bye] disconnect: client_disconnect, closed by client" in out
    comments = subprocess.run(["tshark", "-r", str(out_pcapng), "-Y", "frame.comment", "-T", "fields", "-e",
                               "frame.comment"], capture_output=True, timeout=60, check=True).stdout.decode()
    assert "client[live-bye] disconnected by client: client_disconnect" in comments


def test_live_bad_interface_and_filter_are_one_line_each():
    r = subprocess.run([BINARY, "sniff", "-i", "no-such-if0", "--count", "1"], capture_output=True, timeout=20)
    assert r.returncode == 1 and r.stderr.decode().count("\n") == 1 and b"no-such-if0" in r.stderr
    r = subprocess.run([BINARY, "sniff", "-i", "lo", "tcp", "port"], capture_output=True, timeout=20)
    assert r.returncode == 2 and r.stderr.decode().count("\n") == 1 and b"filter" in r.stderr
    r = subprocess.run([BINARY, "sniff", "-r", "x.pcap", "--duration", "1"], capture_output=True, timeout=20)
    assert r.returncode == 2 and b"live capture" in r.stderr
