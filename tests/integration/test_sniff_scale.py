"""`wirewarden sniff` on long captures: memory follows the connections that
are open, not the length of the file. A recorded connection (real mosquitto,
mosquitto_pub: CONNECT, PUBLISH QoS 2 x3, DISCONNECT, FINs both ways) is
replayed thousands of times one after the other, each copy from a client
port of its own; a capture four times longer must not need more memory.

Run: WIREWARDEN=build/wirewarden /usr/bin/python3 -m pytest tests/integration/test_sniff_scale.py
"""
import json
import os
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sniff_edge import REC, WW, pcap_bytes, read_pcap  # noqa: E402

SOURCE = "v311-pubsub"
CLIENT_ID = b"v311-pub-repeat"  # a whole connection, closed by the client after DISCONNECT


def replayed(copies, gap_us=20000):
    """The pcap bytes of <copies> copies of the source connection, <gap_us>
    apart, copy i from client port 10000 + i."""
    header, frames = read_pcap(os.path.join(REC, SOURCE + ".pcap"))
    client_port = next(f.sport for f in frames if CLIENT_ID in f.payload)
    conn = [f for f in frames if client_port in (f.sport, f.dport)]
    t0 = conn[0].ts_us
    out = []
    for i in range(copies):
        port = 10000 + i
        for f in conn:
            g = f.copy()
            g.ts_us = f.ts_us - t0 + 1700000000000000 + i * gap_us
            at = g.tcp_off + (0 if f.sport == client_port else 2)
            struct.pack_into("!H", g.data, at, port)
            out.append(g)
    out.sort(key=lambda f: f.ts_us)
    return header, out, conn[0].dport


def run(path, port):
    """Runs sniff with --json on <path> under GNU time; returns (peak RSS in
    KiB, verdicts). (Not os.wait4 on a fork of this process: the child's peak
    would count the memory Python had before the exec.)"""
    r = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kib=%M", WW, "sniff", "-r", str(path), "--json", "-",
                        "--port", str(port)], capture_output=True, timeout=120)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    rss = int(err.rsplit("peak_rss_kib=", 1)[1].split()[0])
    return rss, [json.loads(l) for l in r.stdout.decode().splitlines() if '"verdict"' in l]


@pytest.mark.skipif(b"__asan_init" in open(WW, "rb").read(),
                    reason="AddressSanitizer's quarantine keeps freed memory: peak RSS says nothing")
def test_memory_stays_flat_as_the_capture_grows(tmp_path):
    sizes = {}
    for copies in (3000, 12000):
        header, frames, port = replayed(copies)
        path = tmp_path / ("replay-%d.pcap" % copies)
        path.write_bytes(pcap_bytes(header, frames))
        sizes[copies], verdicts = run(path, port)
        assert len(verdicts) == copies
        assert all(v["reason"] == "client_disconnect" and v["closed_by"] == "client" for v in verdicts)
    small, large = sizes[3000], sizes[12000]
    print("peak RSS: 3000 connections %d KiB, 12000 connections %d KiB" % (small, large))
    # Flat: at most 10 % or 2 MiB more for four times the connections.
    assert large <= max(small * 1.10, small + 2048), sizes
