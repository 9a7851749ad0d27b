#!/usr/bin/python3
"""Adds AMPS seeds to the corpus of fuzz/fuzz_sniff.c: the captures recorded
against the AMPS peer (tests/data/recorded-amps), their server port rewritten
to 1883, with control bit 7 set (ports 1883 and 8883 are AMPS). Files are
named amps-*; fuzz/make_sniff_seeds.py rewrites the directory, so run this
after it. Run from the top of the repository."""
import hashlib
import importlib.util
import os
import struct

spec = importlib.util.spec_from_file_location("mss", os.path.join(os.path.dirname(__file__), "make_sniff_seeds.py"))
mss = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mss)

SRC = "tests/data/recorded-amps"
OUT = "fuzz/seeds/sniff"
AMPS_CTL = 0x80


def server_port(frames):
    for lt, _, fr in frames:
        if lt != 1 or len(fr) < 54 or fr[12:14] != b"\x08\x00":
            continue
        ihl = (fr[14] & 15) * 4
        tcp = 14 + ihl
        flags = fr[tcp + 13]
        if flags & 0x02 and not flags & 0x10:  # SYN without ACK: the client's
            return struct.unpack(">H", fr[tcp + 2:tcp + 4])[0]
    return None


def rewrite(fr, port):
    """The frame with <port> replaced by 1883 on either side (Ethernet, IPv4)."""
    if len(fr) < 54 or fr[12:14] != b"\x08\x00" or fr[23] != 6:
        return fr
    b = bytearray(fr)
    tcp = 14 + (b[14] & 15) * 4
    for off in (tcp, tcp + 2):
        if struct.unpack(">H", b[off:off + 2])[0] == port:
            b[off:off + 2] = struct.pack(">H", 1883)
    return bytes(b)


def main():
    n = 0
    for name in sorted(os.listdir(SRC)):
        if not name.endswith(".pcap"):
            continue
        data = open(os.path.join(SRC, name), "rb").read()
        frames = mss.read_pcap(data) or mss.read_pcapng(data)
        port = server_port(frames or [])
        if not frames or port is None:
            continue
        frames = [(lt, ts, rewrite(fr, port)) for lt, ts, fr in frames]
        ctl = AMPS_CTL | mss.LINK.get(frames[0][0], 0)
        for blob in (mss.encode(frames, ctl), mss.encode(mss.tail(frames), ctl), mss.encode(frames, ctl | 0x10)):
            h = hashlib.sha1(blob).hexdigest()[:16]
            with open(os.path.join(OUT, "amps-" + h), "wb") as f:
                f.write(blob)
            n += 1
    print(n, "AMPS seeds in", OUT)


if __name__ == "__main__":
    main()
