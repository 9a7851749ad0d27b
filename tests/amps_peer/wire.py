"""AMPS wire format as the public documentation describes it (see
doc/amps.md and /work/shared/protocols/amps.md): 4-byte big-endian length
frames; an `amps` (json) header object followed by the body; legacy fix and
nvfix headers. Pure functions, no I/O: shared by the peer server, its
clients, the recorder and the tests.

This is not 60East code and not derived from it."""
import json
import struct

MAX_FRAME = 16 << 20          # the peer's own cap on one frame
CORRUPT_FRAME = 0x40000000    # documented: clients treat > 1 GiB as corrupt

# Commands the documentation lists (client -> server, server -> client).
CLIENT_COMMANDS = frozenset((
    "logon", "heartbeat", "publish", "p", "delta_publish", "subscribe", "delta_subscribe", "sow",
    "sow_and_subscribe", "sow_and_delta_subscribe", "unsubscribe", "sow_delete", "flush", "ack",
    "start_timer", "stop_timer"))
SERVER_COMMANDS = frozenset(("ack", "publish", "p", "sow", "oof", "group_begin", "group_end", "heartbeat"))

# Long spellings the peer folds onto the short ones it works with.
LONG_TO_SHORT = {"cmd": "c", "cmd_id": "cid", "topic": "t", "auth_key": "pw", "ack": "a", "ack_type": "a",
                 "opts": "o", "sub_ids": "sids", "seq": "s", "bookmark": "bm", "expiration": "e",
                 "batch_size": "bs"}

# fix: numeric tags. 20000, 20002, 20003, 20018, 20062 and 20039 are named
# in the issue/protocol notes; the others are the peer's assumption and the
# peer only needs them to round-trip its own frames.
FIX_TAGS = {"c": "20000", "client_name": "20002", "user_id": "20003", "status": "20018",
            "reason": "20062", "o": "20039",
            # assumed (not in the notes we have):
            "cid": "20001", "t": "20005", "pw": "20004", "a": "20006", "sub_id": "20007",
            "version": "20008", "s": "20009", "bm": "20010", "query_id": "20011", "sids": "20012"}
FIX_TAG_TO_KEY = {v: k for k, v in FIX_TAGS.items()}
FIX_SOH, FIX_STX = b"\x01", b"\x02"


class FrameError(ValueError):
    """The byte stream is not AMPS frames (bad length)."""


class HeaderError(ValueError):
    """A frame whose header cannot be read (what AMPS closes as 'unknown command')."""


def frame(payload):
    """One frame: 4-byte big-endian length of the payload, then the payload."""
    return struct.pack("!I", len(payload)) + payload


class Framer:
    """Splits a byte stream into frame payloads, whatever the slicing."""

    def __init__(self, max_frame=MAX_FRAME):
        self.buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data):
        """Appends <data>; returns the list of whole payloads now available
        (length-0 frames are dropped: a no-op). Raises FrameError on a length
        over the maximum."""
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from("!I", self.buf, 0)
            if n >= CORRUPT_FRAME or n > self.max_frame:
                raise FrameError("frame length %d over the maximum %d" % (n, self.max_frame))
            if len(self.buf) < 4 + n:
                break
            if n:
                out.append(bytes(self.buf[4:4 + n]))
            del self.buf[:4 + n]
        return out


# ---- amps / json ---------------------------------------------------------------

def json_header(fields):
    return json.dumps(fields, separators=(",", ":")).encode()


def encode_json(fields, body=b""):
    """The payload of an `amps` protocol message: header object, then body."""
    if isinstance(body, str):
        body = body.encode()
    return json_header(fields) + body


def header_end(payload):
    """Index just past the header object's closing brace (quotes and
    backslash escapes honoured). HeaderError when there is none."""
    if not payload[:1] == b"{":
        raise HeaderError("payload does not start with '{'")
    in_str = esc = False
    depth = 0
    for i, ch in enumerate(payload):
        if in_str:
            if esc:
                esc = False
            elif ch == 0x5C:
                esc = True
            elif ch == 0x22:
                in_str = False
        elif ch == 0x22:
            in_str = True
        elif ch == 0x7B:
            depth += 1
            if depth > 1:
                raise HeaderError("nested object in the header")
        elif ch == 0x7D:
            return i + 1
        elif ch == 0x5B:
            raise HeaderError("array in the header")
    raise HeaderError("header object not closed")


def normalise(hdr):
    """Long key spellings folded onto the short ones; values as given."""
    out = {}
    for k, v in hdr.items():
        out[LONG_TO_SHORT.get(k, k)] = v
    return out


def decode_json(payload):
    """(header dict with short keys, body bytes). HeaderError if unreadable."""
    end = header_end(payload)
    try:
        hdr = json.loads(payload[:end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HeaderError("header is not JSON: %s" % e)
    if not isinstance(hdr, dict) or any(isinstance(v, (dict, list)) for v in hdr.values()):
        raise HeaderError("header is not a flat object")
    return normalise(hdr), payload[end:]


# ---- fix / nvfix -----------------------------------------------------------------

def _fix_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def encode_fix(fields, body=b"", nv=False):
    """fix: tag=value fields each ended by 0x01, header ended by 0x02, body.
    nvfix: the same with key names instead of numeric tags (names assumed:
    the json short keys)."""
    if isinstance(body, str):
        body = body.encode()
    parts = []
    for k, v in fields.items():
        k = LONG_TO_SHORT.get(k, k)
        tag = k if nv else FIX_TAGS.get(k)
        if tag is None:
            raise KeyError("no fix tag for %r" % k)
        parts.append(("%s=%s" % (tag, _fix_value(v))).encode() + FIX_SOH)
    return b"".join(parts) + FIX_STX + body


def decode_fix(payload, nv=False):
    end = payload.find(FIX_STX)
    if end < 0:
        raise HeaderError("fix header not ended by 0x02")
    hdr = {}
    for field in payload[:end].split(FIX_SOH):
        if not field:
            continue
        tag, eq, val = field.partition(b"=")
        if not eq:
            raise HeaderError("fix field without '=': %r" % field[:40])
        try:
            tag, val = tag.decode(), val.decode()
        except UnicodeDecodeError:
            raise HeaderError("fix field not UTF-8")
        key = LONG_TO_SHORT.get(tag, tag) if nv else FIX_TAG_TO_KEY.get(tag, "tag" + tag)
        hdr[key] = val
    return hdr, payload[end + 1:]


# ---- one interface over the three header forms ------------------------------------

PROTOCOLS = ("amps", "fix", "nvfix")


def encode(fields, body=b"", protocol="amps"):
    if protocol == "amps":
        return encode_json(fields, body)
    return encode_fix(fields, body, nv=(protocol == "nvfix"))


def decode(payload, protocol="amps"):
    if protocol == "amps":
        return decode_json(payload)
    return decode_fix(payload, nv=(protocol == "nvfix"))


def message(fields, body=b"", protocol="amps"):
    """A whole framed message."""
    return frame(encode(fields, body, protocol))
