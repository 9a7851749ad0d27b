#!/usr/bin/python3
"""Builds the seed corpus of fuzz/fuzz_sniff.c from the test captures
(tests/data/pcap and tests/data/recorded, classic pcap and pcapng): each
capture becomes one seed in the target's input form (see fuzz_sniff.c): a
control byte whose low 3 bits name the link type, then per frame a time step
byte, a big-endian 16-bit length and the frame. Captures longer than
MAX_SEED bytes are cut at a frame boundary; a second seed starts from the
capture's last frames so that connection ends are in the corpus too.
A few variants of the recorded captures set the control bits (tiny caps,
JSON output, a 64-byte packet cap, the take-over watch), and two send every
Ethernet/IPv4 frame with TCP data as IPv4 fragments of 16 bytes (in order;
reversed with one fragment sent twice) for sniff/ipfrag.c.
Run from the top of the repository; rewrites fuzz/seeds/sniff."""
import hashlib
import os
import struct
import sys

OUT = "fuzz/seeds/sniff"
DIRS = ["tests/data/pcap", "tests/data/recorded"]
MAX_SEED = 16384
# LINKTYPE_ -> the target's selector (fuzz_sniff.c link_types[]).
LINK = {1: 0, 113: 1, 276: 2, 101: 3, 228: 4, 229: 5, 0: 6, 108: 7}


def read_pcap(data):
    """[(linktype, ts_us, frame)] from a classic pcap (either byte order, us or ns)."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(e + "IIII", data[pos:pos + 16])
        pos += 16
        frame = data[pos:pos + incl]
        pos += incl
        out.append((linktype, sec * 1000000 + (frac // 1000 if nano else frac), frame))
    return out


def read_pcapng(data):
    """[(linktype, ts_us, frame)] from a pcapng file (EPB and SPB, first section's byte order)."""
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        return None
    e = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    ifaces, out, pos = [], [], 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack(e + "II", data[pos:pos + 8])
        if blen < 12 or pos + blen > len(data):
            break
        body = data[pos + 8:pos + blen - 4]
        if btype == 1:  # Interface Description Block (microsecond resolution assumed)
            ifaces.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            ifid, hi, lo, cap, _ = struct.unpack(e + "IIIII", body[:20])
            lt = ifaces[ifid] if ifid < len(ifaces) else 1
            out.append((lt, (hi << 32) | lo, body[20:20 + cap]))
        elif btype == 3 and len(body) >= 4 and ifaces:  # Simple Packet Block
            out.append((ifaces[0], 0, body[4:]))
        pos += blen
    return out


def time_byte(delta_us):
    if delta_us < 0:
        return 254
    if delta_us == 0:
        return 255
    if delta_us < 2500000:
        return min(249, delta_us // 10000)
    if delta_us < 10000000:
        return 250
    if delta_us < 100000000:
        return 251
    return 252


def encode(frames, ctl):
    blob = bytearray([ctl])
    last = frames[0][1] if frames else 0
    for _, ts, fr in frames:
        rec = bytes([time_byte(ts - last)]) + struct.pack(">H", min(len(fr), 65535)) + fr[:65535]
        if len(blob) + len(rec) > MAX_SEED:
            break
        blob += rec
        last = ts
    return bytes(blob)


def tail(frames):
    """The last frames that fit in one seed."""
    n, size = 0, 1
    for _, _, fr in reversed(frames):
        size += 3 + len(fr)
        if size > MAX_SEED:
            break
        n += 1
    return frames[len(frames) - n:]


def fragmented(frames, reverse=False):
    """Ethernet/IPv4 frames with more than 16 bytes of IP payload as fragments
    of 16 bytes (the checksum is not checked by the target)."""
    out = []
    for i, (lt, ts, fr) in enumerate(frames):
        if lt != 1 or len(fr) < 34 or fr[12:14] != b"\x08\x00" or fr[14] >> 4 != 4:
            out.append((lt, ts, fr))
            continue
        ihl = (fr[14] & 15) * 4
        total = struct.unpack(">H", fr[16:18])[0]
        payload = fr[14 + ihl:14 + total]
        if len(payload) <= 16:
            out.append((lt, ts, fr))
            continue
        pieces = []
        for off in range(0, len(payload), 16):
            chunk = payload[off:off + 16]
            hdr = bytearray(fr[14:14 + ihl])
            struct.pack_into(">HHH", hdr, 2, ihl + len(chunk), i & 0xFFFF,
                             (0x2000 if off + 16 < len(payload) else 0) | off // 8)
            pieces.append((lt, ts, fr[:14] + bytes(hdr) + chunk))
        if reverse:
            pieces = pieces[::-1] + pieces[:1]
        out.extend(pieces)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    seen = set()

    def write(blob):
        name = hashlib.sha1(blob).hexdigest()[:16]
        if name in seen or len(blob) < 2:
            return
        seen.add(name)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)

    for d in DIRS:
        for fn in sorted(os.listdir(d)):
            if not fn.endswith((".pcap", ".pcapng")):
                continue
            data = open(os.path.join(d, fn), "rb").read()
            frames = read_pcap(data) or read_pcapng(data) or []
            frames = [f for f in frames if f[0] in LINK]
            if not frames:
                print("skipped %s: no frames of a supported link type" % fn, file=sys.stderr)
                continue
            ctl = LINK[frames[0][0]]
            write(encode(frames, ctl))
            if sum(3 + len(f[2]) for f in frames) + 1 > MAX_SEED:
                write(encode(tail(frames), ctl))
            if d.endswith("recorded"):
                # bit 3 tiny caps, bit 4 JSON lines, bit 5 64-byte packets, bit 6 take-over watch
                write(encode(frames, ctl | 0x08 | 0x40))
                write(encode(frames, ctl | 0x10 | 0x20))
                if frames[0][0] == 1:
                    write(encode(fragmented(frames), ctl))
                    write(encode(fragmented(frames, reverse=True), ctl | 0x08))
    print("%d seeds in %s" % (len(seen), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
