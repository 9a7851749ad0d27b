"""`wirewarden sniff` on IPv4 fragments: recorded sessions (real mosquitto,
real clients; tests/data/recorded) rewritten here so that every IP datagram
that carries TCP data goes as fragments of 16 bytes of IP payload (written by
hand: scapy is not needed). Put back together, the capture must give the same
MQTT packets and the same verdicts as the original, whatever the order of the
fragments and with fragments sent twice. A datagram that cannot be rebuilt
(a fragment lost, a fragment whose overlapping bytes disagree, a fragment
cut by the snap length) is a gap: the verdicts stay honest (the intact
capture's, or unknown, or a guess), and stderr says how many datagrams were
given up and why.

Run: WIREWARDEN=build/wirewarden /usr/bin/python3 -m pytest tests/integration/test_sniff_fragments.py
"""
import json
import os
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sniff_edge import REC, WW, Frame, assert_honest, broker_port, pcap_bytes, read_pcap  # noqa: E402

SCENARIOS = ["v311-pubsub", "v5-pubsub", "demo", "v311-keepalive", "v5-takeover"]
PIECE = 16  # bytes of IP payload per fragment (a multiple of 8)


def fragments(f, piece=PIECE, ident=0):
    """<f> (Ethernet, IPv4) as fragments of <piece> bytes of IP payload."""
    ihl = f.ihl
    ip_payload = bytes(f.data[14 + ihl:14 + struct.unpack_from("!H", f.data, 16)[0]])
    out = []
    for off in range(0, len(ip_payload), piece):
        chunk = ip_payload[off:off + piece]
        more = off + piece < len(ip_payload)
        hdr = bytearray(f.data[14:14 + ihl])
        struct.pack_into("!H", hdr, 2, ihl + len(chunk))
        struct.pack_into("!H", hdr, 4, ident & 0xFFFF)
        struct.pack_into("!H", hdr, 6, (0x2000 if more else 0) | (off // 8))
        struct.pack_into("!H", hdr, 10, 0)
        csum = sum(struct.unpack("!%dH" % (ihl // 2), bytes(hdr)))
        while csum >> 16:
            csum = (csum & 0xFFFF) + (csum >> 16)
        struct.pack_into("!H", hdr, 10, ~csum & 0xFFFF)
        data = bytes(f.data[:14]) + bytes(hdr) + chunk
        out.append(Frame(f.ts_us, data, len(data)))
    return out


def fragmented(frames, arrange=lambda fr: fr):
    """Every frame with TCP payload as fragments, arranged by <arrange>."""
    out = []
    for i, f in enumerate(frames):
        if f.payload_len > 0 and len(f.data) > 14 + f.ihl + PIECE:
            out.extend(arrange(fragments(f, ident=0x4000 + i)))
        else:
            out.append(f)
    return out


def run(tmp_path, name, header, frames, port, *extra):
    path = tmp_path / (name + ".pcap")
    path.write_bytes(pcap_bytes(header, frames))
    r = subprocess.run([WW, "sniff", "-r", str(path), "--port", str(port), *extra], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return [json.loads(l) for l in r.stdout.decode().splitlines()], r.stderr.decode()


def verdicts(tmp_path, name, header, frames, port):
    lines, err = run(tmp_path, name, header, frames, port, "--json", "-")
    return [v for v in lines if v["type"] == "verdict"], err


def packets(tmp_path, name, header, frames, port):
    lines, err = run(tmp_path, name, header, frames, port, "--packets")
    assert err == ""
    # Frame numbers change with the fragments; everything else must not.
    return [{k: v for k, v in p.items() if k not in ("frame", "ts")} for p in lines if p.get("type") != "flow"]


def vkey(v):
    return (v["client"], v.get("client_id"), v["reason"], v["closed_by"], v["confidence"])


def reverse(fr):
    return fr[::-1]


def duplicated(fr):
    return fr + fr[:1]


def middle_first(fr):
    return fr[1:2] + fr[:1] + fr[2:] if len(fr) > 2 else fr


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("arrange", [lambda fr: fr, reverse, duplicated, middle_first],
                         ids=["in-order", "reversed", "duplicated", "shuffled"])
def test_fragments_reassemble_to_the_same_packets_and_verdicts(tmp_path, scenario, arrange):
    header, frames = read_pcap(os.path.join(REC, scenario + ".pcap"))
    port = broker_port(frames)
    frag = fragmented(frames, arrange)
    assert len(frag) > len(frames)
    want_v, err0 = verdicts(tmp_path, "intact", header, frames, port)
    got_v, err = verdicts(tmp_path, "frag", header, frag, port)
    assert err == err0 == ""
    assert sorted(map(vkey, got_v)) == sorted(map(vkey, want_v))
    assert packets(tmp_path, "frag", header, frag, port) == packets(tmp_path, "intact", header, frames, port)


def conflicting(fr):
    """A second copy of the first fragment whose bytes differ, before the
    datagram is whole."""
    bad = fr[0].copy()
    bad.data[-1] ^= 0xFF
    return fr[:1] + [bad] + fr[1:]


def lose_one(fr):
    return fr[:1] + fr[2:] if len(fr) > 2 else fr[1:]


def cut(fr):
    short = fr[0].copy()
    short.data = short.data[:-4]  # caplen < the length the IP header gives
    return [short] + fr[1:]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("damage,why", [(conflicting, "conflicting"), (lose_one, "incomplete"),
                                        (cut, "cut by the snap length")],
                         ids=["conflicting-overlap", "lost-fragment", "cut-fragment"])
def test_datagrams_that_cannot_be_rebuilt_are_gaps(tmp_path, scenario, damage, why):
    header, frames = read_pcap(os.path.join(REC, scenario + ".pcap"))
    port = broker_port(frames)
    truth, _ = verdicts(tmp_path, "intact", header, frames, port)
    got, err = verdicts(tmp_path, "damaged", header, fragmented(frames, damage), port)
    # Every datagram with data was damaged: stderr counts them, by cause.
    assert err.count("\n") == 1 and "could not be put back together" in err, err
    n_why = int(err.split(" " + why)[0].rsplit("(", 1)[-1].rsplit(",", 1)[-1].split()[0])
    assert n_why > 0, err
    assert_honest(truth, got, "%s/%s" % (scenario, why))
    # One verdict per connection still (each flow's handshake is whole).
    assert len(got) == len(truth)


def test_a_contradicting_copy_after_the_datagram_was_rebuilt_is_ignored(tmp_path):
    header, frames = read_pcap(os.path.join(REC, "v311-pubsub.pcap"))
    port = broker_port(frames)

    def late_bad_copy(fr):
        bad = fr[0].copy()
        bad.data[-1] ^= 0xFF
        return fr + [bad]
    truth, _ = verdicts(tmp_path, "intact", header, frames, port)
    got, err = verdicts(tmp_path, "late", header, fragmented(frames, late_bad_copy), port)
    assert "contradicted a datagram already put back together; the first copy was used" in err, err
    assert "could not be put back together" not in err, err
    assert sorted(map(vkey, got)) == sorted(map(vkey, truth))


def test_fragment_timeout_and_caps_are_bounded(tmp_path):
    """Thousands of datagrams that never complete: the reassembler gives them
    up (memory cap, count cap, capture-time timeout) without growing, and the
    run stays fast."""
    header, frames = read_pcap(os.path.join(REC, "v311-pubsub.pcap"))
    port = broker_port(frames)
    first = next(f for f in frames if f.payload_len > 0)
    junk = []
    for i in range(20000):
        pieces = fragments(first, ident=i)
        g = pieces[0]
        g.ts_us = first.ts_us + i * 1000  # 20 s of capture time
        junk.append(g)  # only the first fragment of each: never whole
    path = tmp_path / "junk.pcap"
    path.write_bytes(pcap_bytes(header, frames + junk))
    r = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kib=%M", WW, "sniff", "-r", str(path), "--json", "/dev/null",
                        "--port", str(port)], capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "20000 fragmented IPv4 datagrams could not be put back together" in err, err
    if b"__asan_init" not in open(WW, "rb").read():  # AddressSanitizer's quarantine keeps freed memory
        assert int(err.rsplit("peak_rss_kib=", 1)[1].split()[0]) < 64 * 1024
