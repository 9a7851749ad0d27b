"""`wirewarden sniff -r FILE` reads classic pcap files itself (sniff/capture.c:
records handed out in place, no stdio copies) and leaves everything else to
libpcap, which also reads standard input. The two readers must agree: the
same frames, numbers, times and verdicts for every byte order and timestamp
resolution, with and without a BPF filter, and the same error (libpcap's
words) for a file cut mid-record or a record longer than any snap length.

Run: WIREWARDEN=build/wirewarden /usr/bin/python3 -m pytest tests/integration/test_sniff_read.py
"""
import os
import struct
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(TOP, "tests", "data", "recorded")
WW = os.environ.get("WIREWARDEN", os.path.join(TOP, "build", "wirewarden"))


def records(path):
    data = open(path, "rb").read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    hdr = struct.unpack("<HHiIII", data[4:24])
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        out.append((sec, usec, orig, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return hdr, out


def rewrite(path, out, endian, nano, snaplen=None):
    (major, minor, zone, sigfigs, snap, link), recs = records(path)
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    blob = bytearray(struct.pack(endian + "IHHiIII", magic, major, minor, zone, sigfigs,
                                 snaplen if snaplen is not None else snap, link))
    for sec, usec, orig, frame in recs:
        blob += struct.pack(endian + "IIII", sec, usec * 1000 if nano else usec, len(frame), orig) + frame
    out.write_bytes(bytes(blob))
    return out


def run(args, stdin=None):
    r = subprocess.run([WW, "sniff", *args], capture_output=True, timeout=60,
                       stdin=open(stdin, "rb") if stdin else None)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def both(path, *extra):
    """(direct read of <path>, libpcap reading it from standard input)."""
    direct = run(["-r", str(path), *extra])
    piped = run(["-r", "-", *extra], stdin=path)
    return direct, piped


@pytest.mark.parametrize("scenario", ["demo", "v5-pubsub", "v311-slow-consumer"])
@pytest.mark.parametrize("endian,nano", [("<", False), (">", False), ("<", True), (">", True)],
                         ids=["le-us", "be-us", "le-ns", "be-ns"])
@pytest.mark.parametrize("mode", [["--packets"], ["--json", "-"]])
def test_direct_read_and_libpcap_agree(tmp_path, scenario, endian, nano, mode):
    path = rewrite(os.path.join(REC, scenario + ".pcap"), tmp_path / "x.pcap", endian, nano)
    direct, piped = both(path, *mode)
    assert direct[0] == 0 and direct == piped
    assert direct[1]


def test_filter_and_snap_length_agree(tmp_path):
    # A file snap length of 60: libpcap cuts every longer record to it.
    path = rewrite(os.path.join(REC, "demo.pcap"), tmp_path / "s.pcap", "<", False, snaplen=60)
    direct, piped = both(path, "--packets")
    assert direct[0] == 0 and direct == piped
    src = os.path.join(REC, "demo.pcap")
    # SYN or PSH segments only: every handshake and every data segment, no pure ACK or FIN.
    direct, piped = both(src, "--packets", "tcp[13] & 10 != 0")
    assert direct[0] == 0 and direct == piped and direct[1]
    whole = run(["-r", src, "--packets"])[1]
    assert direct[1] != whole  # frame numbers count only what the filter passed
    strip = lambda out: [l.split(",", 2)[2] for l in out.splitlines() if l.startswith('{"frame"')]
    assert strip(direct[1]) == strip(whole)


@pytest.mark.parametrize("cut", [24 + 7, 24 + 16 + 5, -3])
def test_cut_files_fail_with_libpcaps_words(tmp_path, cut):
    data = open(os.path.join(REC, "demo.pcap"), "rb").read()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:cut])
    direct, piped = both(path, "--json", "/dev/null")
    assert direct[0] == piped[0] == 1
    assert "truncated dump file" in direct[2] and "truncated dump file" in piped[2]
    assert direct[2].replace(str(path), "(stdin)") == piped[2]


def test_record_longer_than_any_snap_length_is_an_error(tmp_path):
    data = bytearray(open(os.path.join(REC, "demo.pcap"), "rb").read())
    struct.pack_into("<I", data, 24 + 8, 300000)  # the first record's captured length
    path = tmp_path / "big.pcap"
    path.write_bytes(bytes(data))
    direct, piped = both(path, "--json", "/dev/null")
    assert direct[0] == piped[0] == 1
    assert "bigger than snaplen of 262144" in direct[2]
    assert direct[2].replace(str(path), "(stdin)") == piped[2]
