"""`wirewarden sniff --packets` against tshark's reading of the capture corpus.

For every capture in tests/data/pcap/ that has expected/NAME.packets.tsv
(TShark 4.0.17's reading, format in tests/data/pcap/expected/README.md), run
`wirewarden sniff -r FILE --packets` and compare, packet by packet in order per
TCP stream: frame, stream, dir, type, client id, return/reason code(s), packet
id and (for PUBLISH) QoS. Then compare the flows that carried MQTT with
expected/NAME.tsv: client, server, closed_by. One test per capture.

Where wirewarden and tshark legitimately differ, EXCEPTIONS below names the
capture, frame, packet type and field, with the reason; a listed difference
must actually occur (a stale exception fails the test too).

Run: /usr/bin/python3 -m pytest tests/integration/test_sniff_corpus.py
The binary is $WIREWARDEN (default ./wirewarden).
"""
import ipaddress
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
PCAP_DIR = TOP / "tests" / "data" / "pcap"
EXPECTED = PCAP_DIR / "expected"
BINARY = os.environ.get("WIREWARDEN", "./wirewarden")
TIMEOUT_S = 60

# (capture, frame, tshark type, field) -> why we differ from tshark there.
EXCEPTIONS = {
    ("suricata-verify-mqtt-events-invalid-qos", 8, "PUBLISH", "msgid"):
        "PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4]; we report error publish_qos_3 and decode no "
        "further, tshark decodes it as if QoS were valid and shows packet id 1",
    ("arkime-mqtt_test-5b0b0b9", 44, "SUBSCRIBE", "msgid"):
        "MQTT 5 SUBSCRIBE written without its property length (tshark: Malformed Packet); our decoder "
        "stops at the bad property block, so no packet id is reported",
    ("arkime-mqtt_test-5b0b0b9", 46, "PUBLISH", "msgid"):
        "MQTT 5 PUBLISH written without its property length (tshark: Malformed Packet); our decoder "
        "stops at the bad property block, so no packet id is reported",
    ("suricata-verify-mqtt5-pub-mosquittoprops", 4, "CONNECT", "clientid"):
        "its Will Properties carry Payload Format Indicator 144, which must be 0 or 1 (MQTT 5.0 "
        "3.1.3.2.3): we report property_value_invalid and no fields, tshark shows the client id",
    ("suricata-verify-mqtt5-pub-mosquittoprops", 8, "PUBLISH", "msgid"):
        "Payload Format Indicator 88, which must be 0 or 1 (MQTT 5.0 3.3.2.3.2): we report "
        "property_value_invalid and no fields, tshark shows packet id 1",
    ("suricata-verify-mqtt5-sub-mosquittoprops", 4, "CONNECT", "clientid"):
        "same CONNECT as in mqtt5-pub-mosquittoprops: Will Payload Format Indicator 144 is invalid",
}


def captures():
    found = []
    for path in sorted(PCAP_DIR.iterdir()):
        if path.suffix not in (".pcap", ".pcapng"):
            continue
        if (EXPECTED / (path.stem + ".packets.tsv")).exists():
            found.append(path)
    return found


def read_tsv(path):
    rows = []
    header = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#") or not line:
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
                continue
            cells += [""] * (len(header) - len(cells))
            rows.append(dict(zip(header, cells)))
    return rows


def run_sniff(path):
    proc = subprocess.run([BINARY, "sniff", "-r", str(path), "--packets"], capture_output=True,
                          timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')}"
    packets, flows = [], []
    for line in proc.stdout.decode("utf-8").splitlines():
        obj = json.loads(line)
        (flows if obj.get("type") == "flow" else packets).append(obj)
    return packets, flows


def endpoint(text):
    """Our "[::1]:1883" is tshark's "::1:1883"."""
    if text.startswith("["):
        addr, port = text[1:].split("]:")
        return f"{addr}:{port}"
    return text


def ours_row(p):
    rc = p.get("rc")
    if isinstance(rc, list):
        rc = ",".join(str(c) for c in rc)
    return {
        "frame": str(p["frame"]),
        "stream": str(p["stream"]),
        "dir": p["dir"],
        "type": p["type"],
        "clientid": p.get("client_id", "") if p["type"] == "CONNECT" else "",
        "rc": "" if rc is None else str(rc),
        "msgid": str(p["packet_id"]) if "packet_id" in p else "",
        "qos": str(p["qos"]) if p["type"] == "PUBLISH" and "qos" in p else "",
    }


def tshark_row(r):
    return {
        "frame": r["frame"],
        "stream": r["stream"],
        "dir": r["dir"],
        "type": "RESERVED" if r["type"] == "RESERVED0" else r["type"],
        "clientid": r["clientid"] if r["type"] == "CONNECT" else "",
        "rc": r["rc"],
        "msgid": r["msgid"],
        # tshark fills qos from the header bits of 3.1 SUBSCRIBE/UNSUBSCRIBE/PUBREL too; those
        # bits are fixed flags (0b0010), not a QoS, so QoS is compared for PUBLISH only.
        "qos": r["qos"] if r["type"] == "PUBLISH" else "",
    }


def by_stream(rows):
    out = {}
    for r in rows:
        out.setdefault(r["stream"], []).append(r)
    return out


@pytest.mark.parametrize("capture", captures(), ids=lambda p: p.stem)
def test_sniff_matches_tshark(capture):
    name = capture.stem
    packets, flows = run_sniff(capture)
    ours = by_stream([ours_row(p) for p in packets])
    theirs = by_stream([tshark_row(r) for r in read_tsv(EXPECTED / (name + ".packets.tsv"))])

    problems, used = [], set()
    assert sorted(ours) == sorted(theirs), f"streams with MQTT: ours {sorted(ours)}, tshark {sorted(theirs)}"
    for stream in sorted(theirs, key=int):
        a, b = ours[stream], theirs[stream]
        if [r["frame"] for r in a] != [r["frame"] for r in b] or [r["type"] for r in a] != [r["type"] for r in b]:
            problems.append(f"stream {stream}: ours {[(r['frame'], r['type']) for r in a]}\n"
                            f"          tshark {[(r['frame'], r['type']) for r in b]}")
            continue
        for mine, ref in zip(a, b):
            for field in ("dir", "clientid", "rc", "msgid", "qos"):
                if mine[field] == ref[field]:
                    continue
                key = (name, int(ref["frame"]), ref["type"], field)
                if key in EXCEPTIONS:
                    used.add(key)
                    continue
                problems.append(f"frame {ref['frame']} {ref['type']} {field}: ours {mine[field]!r}, "
                                f"tshark {ref[field]!r}")
    stale = [k for k in EXCEPTIONS if k[0] == name and k not in used]
    assert not stale, f"exceptions that no longer apply: {stale}"

    mine_flows = {str(f["stream"]): f for f in flows if f["packets"] > 0}
    for row in read_tsv(EXPECTED / (name + ".tsv")):
        f = mine_flows.pop(row["stream"], None)
        if f is None:
            problems.append(f"flow {row['stream']}: missing")
            continue
        for ours_key, ref_key in (("client", "client"), ("server", "server"), ("closed_by", "closed_by")):
            got = endpoint(f[ours_key]) if ours_key != "closed_by" else f[ours_key]
            if got != row[ref_key]:
                problems.append(f"flow {row['stream']} {ref_key}: ours {got!r}, tshark {row[ref_key]!r}")
    if mine_flows:
        problems.append(f"flows tshark does not list: {sorted(mine_flows)}")
    assert not problems, "\n".join(problems)


# ---- synthetic captures: link types, reassembly, gaps, caps -----------------
#
# The corpus has Ethernet, SLL, raw IPv4 and IPv6 captures with well-behaved
# TCP. These build small captures by hand for what it lacks: VLAN tags, SLL2,
# BSD loopback, IPv6 extension headers, Ethernet padding, out-of-order and
# overlapping segments, lost segments, snap-length cuts and oversized packets.

DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LOOP, DLT_SLL, DLT_IPV4, DLT_IPV6, DLT_SLL2 = 0, 1, 101, 108, 113, 228, 229, 276
CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 1883)
CLIENT6, SERVER6 = ("2001:db8::1", 40000), ("2001:db8::2", 1883)
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08

CONNECT = bytes.fromhex("101000044d5154540402003c000464657631")        # 3.1.1, client id "dev1"
CONNACK = bytes.fromhex("20020000")
PUBLISH = bytes([0x32, 8]) + b"\x00\x01t\x00\x01" + b"abc"                # QoS 1, topic "t", id 1, payload "abc"
PUBACK = bytes.fromhex("40020001")
DISCONNECT = bytes.fromhex("e000")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_bytes(addr):
    return ipaddress.ip_address(addr).packed


def tcp(src, dst, seq, ack, flags, payload=b""):
    hdr = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    return hdr + payload


def ipv4(src, dst, seg, frag=0):
    total = 20 + len(seg)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, frag, 64, 6, 0, ip_bytes(src[0]), ip_bytes(dst[0]))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + seg


def ipv6(src, dst, seg, ext=True):
    body, nxt = seg, 6
    if ext:  # destination options (8 bytes of PadN) inside hop-by-hop options
        body = struct.pack("!BB", nxt, 0) + bytes([1, 4, 0, 0, 0, 0]) + body
        nxt = 60
        body = struct.pack("!BB", nxt, 0) + bytes([1, 4, 0, 0, 0, 0]) + body
        nxt = 0
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), nxt, 64, ip_bytes(src[0]), ip_bytes(dst[0])) + body


def link(dlt, ip, v6=False, pad=0):
    etype = 0x86DD if v6 else 0x0800
    if dlt == DLT_EN10MB:
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", etype) + ip + b"\xee" * pad
    if dlt == "vlan":
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!HHH", 0x8100, 7, etype) + ip
    if dlt == "qinq":
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!HHHHH", 0x88A8, 5, 0x8100, 7, etype) + ip
    if dlt == DLT_SLL:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, etype) + ip
    if dlt == DLT_SLL2:
        return struct.pack("!HHIHBB8s", etype, 0, 2, 1, 0, 6, b"\x02" * 8) + ip
    if dlt == DLT_NULL:
        return struct.pack("<I", 30 if v6 else 2) + ip
    if dlt == DLT_LOOP:
        return struct.pack("!I", 30 if v6 else 2) + ip
    return ip


def write_pcap(path, dlt, frames, snaplen=65535):
    """<frames>: bytes, or (bytes, original length) for a snap-length cut."""
    wire_dlt = DLT_EN10MB if dlt in ("vlan", "qinq") else dlt
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, wire_dlt))
        for i, fr in enumerate(frames):
            data, orig = (fr, len(fr)) if isinstance(fr, bytes) else fr
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(data), orig) + data)


class Conv:
    """A client/server conversation as frames, with sequence numbers kept."""

    def __init__(self, dlt=DLT_EN10MB, v6=False, syn=True):
        self.dlt, self.v6 = dlt, v6
        self.ep = (CLIENT6, SERVER6) if v6 else (CLIENT, SERVER)
        self.seq = [1000, 5000]  # next sequence number per side (0 client, 1 server)
        self.frames = []
        if syn:
            self.seg(0, SYN, b"", seq=999)
            self.seg(1, SYN | ACK, b"", seq=4999)
            self.seg(0, ACK, b"")

    def frame(self, side, flags, payload, seq):
        src, dst = self.ep if side == 0 else self.ep[::-1]
        seg = tcp(src, dst, seq, self.seq[1 - side], flags, payload)
        ip = ipv6(src, dst, seg) if self.v6 else ipv4(src, dst, seg)
        return link(self.dlt, ip, self.v6)

    def seg(self, side, flags, payload, seq=None):
        """Appends a segment; returns its frame (not yet numbered)."""
        s = self.seq[side] if seq is None else seq
        fr = self.frame(side, flags, payload, s)
        self.frames.append(fr)
        if seq is None:
            self.seq[side] += len(payload)
        return fr

    def data(self, side, payload):
        return self.seg(side, ACK | PSH, payload)


def sniff(tmp_path, dlt, frames, *args, snaplen=65535):
    path = tmp_path / "syn.pcap"
    write_pcap(path, dlt, frames, snaplen)
    proc = subprocess.run([BINARY, "sniff", "-r", str(path), "--packets", *args], capture_output=True,
                          timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return [x for x in lines if x["type"] != "flow"], [x for x in lines if x["type"] == "flow"]


def summary(packets):
    return [(p["frame"], p["dir"], p["type"], p.get("error")) for p in packets]


def basic_conversation(dlt, v6=False):
    c = Conv(dlt, v6)
    c.data(0, CONNECT)
    c.data(1, CONNACK)
    c.data(0, PUBLISH)
    c.data(1, PUBACK)
    c.data(0, DISCONNECT)
    c.seg(0, FIN | ACK, b"")
    return c.frames


BASIC = [(4, "c2s", "CONNECT", None), (5, "s2c", "CONNACK", None), (6, "c2s", "PUBLISH", None),
         (7, "s2c", "PUBACK", None), (8, "c2s", "DISCONNECT", None)]


@pytest.mark.parametrize("dlt,v6", [
    (DLT_EN10MB, False), ("vlan", False), ("qinq", False), (DLT_SLL, False), (DLT_SLL2, False),
    (DLT_RAW, False), (DLT_IPV4, False), (DLT_NULL, False), (DLT_LOOP, False),
    (DLT_EN10MB, True), (DLT_SLL2, True), (DLT_RAW, True), (DLT_IPV6, True), (DLT_NULL, True),
], ids=lambda v: str(v))
def test_link_types_and_ipv6_extension_headers(tmp_path, dlt, v6):
    packets, flows = sniff(tmp_path, dlt, basic_conversation(dlt, v6))
    assert summary(packets) == BASIC
    assert packets[0]["client_id"] == "dev1"
    assert flows[0]["server_by"] == "syn" and flows[0]["closed_by"] == "client-FIN@9"
    assert flows[0]["server"] == ("[2001:db8::2]:1883" if v6 else "10.0.0.2:1883")


def test_ethernet_padding_is_trimmed_by_ipv4_total_length(tmp_path):
    c = Conv(DLT_EN10MB)
    c.data(0, CONNECT)
    c.data(0, DISCONNECT)
    c.frames[-1] += b"\xe0\x00\xe0\x00"  # padding that would read as two more DISCONNECTs
    packets, _ = sniff(tmp_path, DLT_EN10MB, c.frames)
    assert [p["type"] for p in packets] == ["CONNECT", "DISCONNECT"]


def test_out_of_order_retransmitted_and_overlapping_segments(tmp_path):
    c = Conv()
    base = c.seq[0]
    stream = CONNECT + PUBLISH + DISCONNECT
    a, b = len(CONNECT), len(CONNECT) + 5
    c.seg(0, ACK, stream[b:], seq=base + b)          # 4: the tail arrives first (held)
    c.seg(0, ACK, stream[:a], seq=base)              # 5: CONNECT
    c.seg(0, ACK, stream[:a], seq=base)              # 6: exact retransmission
    c.seg(0, ACK, stream[a - 3:b], seq=base + a - 3)  # 7: overlaps CONNECT, fills the hole
    packets, flows = sniff(tmp_path, DLT_EN10MB, c.frames)
    assert summary(packets) == [(5, "c2s", "CONNECT", None), (7, "c2s", "PUBLISH", None),
                                (7, "c2s", "DISCONNECT", None)]
    assert flows[0]["gaps"] == 0


def test_packet_split_over_segments_reports_its_last_frame(tmp_path):
    c = Conv()
    for i in range(0, len(CONNECT), 5):
        c.data(0, CONNECT[i:i + 5])
    packets, _ = sniff(tmp_path, DLT_EN10MB, c.frames)
    assert summary(packets) == [(3 + (len(CONNECT) + 4) // 5, "c2s", "CONNECT", None)]


def test_lost_segment_is_a_gap_and_decoding_resynchronises(tmp_path):
    c = Conv()
    c.data(0, CONNECT)
    lost = PUBLISH + PUBLISH[:3]
    c.seq[0] += len(lost)                             # never captured
    c.data(0, PUBLISH[3:] + PUBLISH)
    c.seg(1, ACK, b"")                                # the server acknowledges past the hole
    c.data(0, DISCONNECT)
    packets, flows = sniff(tmp_path, DLT_EN10MB, c.frames)
    # The hole is given up when the server's ACK shows it was received (frame 6); the bytes
    # after it start mid-packet, and the PUBLISH that follows is trusted once the DISCONNECT
    # confirms where packets start.
    assert summary(packets) == [(4, "c2s", "CONNECT", None), (7, "c2s", "PUBLISH", None),
                                (7, "c2s", "DISCONNECT", None)]
    assert flows[0]["gaps"] == 1 and flows[0]["gap_bytes"] == len(lost)


def test_mid_stream_mqtt5_flow_is_picked_up(tmp_path):
    c = Conv(syn=False)
    c.data(1, b"\x20\x03\x00\x00\x00")                # v5 CONNACK (no level known yet)
    c.data(0, b"\x30\x05\x00\x01t\x00x")                # v5 PUBLISH QoS 0 with empty properties
    packets, flows = sniff(tmp_path, DLT_EN10MB, c.frames)
    assert summary(packets) == [(1, "s2c", "CONNACK", None), (2, "c2s", "PUBLISH", None)]
    assert packets[1]["level"] == 5 and flows[0]["server_by"] == "port" and not flows[0]["syn_seen"]


def test_snap_length_cut_counts_as_gap(tmp_path):
    c = Conv()
    c.data(0, CONNECT)
    big = bytes([0x30, 100, 0, 1]) + b"t" + bytes(97)  # PUBLISH, 102 bytes, cut at 60 below
    fr = c.data(0, big)
    c.frames[-1] = (fr[:60], len(fr))
    c.data(0, DISCONNECT)
    packets, flows = sniff(tmp_path, DLT_EN10MB, c.frames)
    assert summary(packets) == [(4, "c2s", "CONNECT", None), (6, "c2s", "DISCONNECT", None)]
    assert flows[0]["gaps"] == 1 and flows[0].get("lost_packets") == 1


def test_packet_over_max_packet_is_reported_and_skipped(tmp_path):
    c = Conv()
    c.data(0, CONNECT)
    big = bytes([0x30, 0x80 | (300 - 128 * 2), 2, 0, 1]) + b"t" + bytes(297)
    assert len(big) == 303
    c.data(0, big[:100])
    c.data(0, big[100:] + DISCONNECT)
    packets, _ = sniff(tmp_path, DLT_EN10MB, c.frames, "--max-packet", "100")
    assert summary(packets) == [(4, "c2s", "CONNECT", None), (6, "c2s", "PUBLISH", "packet_too_large"),
                                (6, "c2s", "DISCONNECT", None)]


def test_ip_fragments_are_skipped(tmp_path):
    c = Conv(DLT_RAW)
    c.data(0, CONNECT)
    src, dst = c.ep
    c.frames.append(ipv4(src, dst, tcp(src, dst, c.seq[0], 0, ACK, DISCONNECT), frag=0x2000))  # MF set
    packets, _ = sniff(tmp_path, DLT_RAW, c.frames)
    assert [p["type"] for p in packets] == ["CONNECT"]


def test_port_reuse_after_close_starts_a_new_stream(tmp_path):
    c = Conv()
    c.data(0, CONNECT)
    c.seg(0, RST, b"")
    c.seg(0, SYN, b"", seq=90000)
    c.seq[0] = 90001
    c.data(0, CONNECT)
    packets, flows = sniff(tmp_path, DLT_EN10MB, c.frames)
    assert [(p["stream"], p["frame"]) for p in packets] == [(0, 4), (1, 7)]
    assert [f["closed_by"] for f in flows] == ["client-RST@5", "open-at-end"]


def test_port_option_decodes_a_broker_on_another_port(tmp_path):
    c = Conv(DLT_RAW)
    c.ep = (CLIENT, ("10.0.0.2", 17501))
    c.frames = []
    c.data(0, CONNECT)
    c.data(1, CONNACK)
    assert sniff(tmp_path, DLT_RAW, c.frames)[0] == []
    packets, flows = sniff(tmp_path, DLT_RAW, c.frames, "--port", "17501")
    assert [p["type"] for p in packets] == ["CONNECT", "CONNACK"] and flows[0]["server_by"] == "port"


def test_tls_on_8883_is_recognised_and_not_decoded(tmp_path):
    c = Conv(DLT_RAW)
    c.ep = (CLIENT, ("10.0.0.2", 8883))
    c.frames = []
    c.data(0, bytes.fromhex("1603010200") + bytes(64))   # ClientHello record header
    c.data(1, bytes.fromhex("160303004a") + bytes(64))
    c.data(0, bytes.fromhex("c000c000"))                   # would read as PINGREQs
    packets, flows = sniff(tmp_path, DLT_RAW, c.frames)
    assert packets == [] and flows[0]["tls"] is True


def test_truncated_capture_keeps_output_and_fails_with_the_file_name(tmp_path):
    path = tmp_path / "cut.pcap"
    path.write_bytes((PCAP_DIR / "zeek-mqtt.pcap").read_bytes()[:1000])
    proc = subprocess.run([BINARY, "sniff", "-r", str(path), "--packets"], capture_output=True,
                          timeout=TIMEOUT_S, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and str(path) in err and "truncated" in err and err.count("\n") == 1
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [x["frame"] for x in lines if x["type"] == "CONNECT"] == [1, 8]


@pytest.mark.parametrize("content", [b"", b"not a capture at all", b"\xd4\xc3\xb2\xa1" + bytes(10)])
def test_unreadable_capture_is_one_clear_line(tmp_path, content):
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    proc = subprocess.run([BINARY, "sniff", "-r", str(path)], capture_output=True, timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 1 and proc.stdout == b""
    assert str(path) in proc.stderr.decode() and proc.stderr.decode().count("\n") == 1


@pytest.mark.parametrize("args", [[], ["-r"], ["-r", "x", "--port", "0"], ["-r", "x", "--max-packet", "1G"],
                                  ["--bogus"], ["-r", "x", "extra"]])
def test_usage_errors_exit_2(args):
    proc = subprocess.run([BINARY, "sniff", *args], capture_output=True, timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 2 and proc.stderr.decode().count("\n") == 1 and b"--help" in proc.stderr
