#!/usr/bin/python3
"""Builds the seed corpus of fuzz/fuzz_amps.c: AMPS streams written from the
public documentation (amps.md), each as one file: a control byte (header
syntax, chunk size; see fuzz_amps.c), then the framed stream. Run from the
top of the repository; rewrites fuzz/seeds/amps."""
import hashlib
import os
import struct

OUT = "fuzz/seeds/amps"


def frame(payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return struct.pack(">I", len(payload)) + payload


def streams():
    logon = '{"c":"logon","cid":"1","client_name":"orders-7","user_id":"svc","pw":"x","version":"5.3.5.1:python","a":"processed"}'
    ack_ok = '{"c":"ack","cid":"1","a":"processed","status":"success","version":"5.3.5.1","client_name":"orders-7"}'
    hb_start = '{"c":"heartbeat","o":"start,5","a":"received"}'
    beat = '{"c":"heartbeat","o":"beat"}'
    pub = '{"c":"p","t":"orders","s":12}{"id":1,"qty":10}'
    sub = '{"c":"subscribe","cid":"2","t":"orders","sub_id":"s1","a":"processed,completed","filter":"/qty > 5"}'
    sow = ('{"c":"sow","t":"orders","query_id":"q1","bs":2}'
           '{"k":"1","l":7,"x":"c1"}{"a":1}{"k":"2","l":3}abc')
    yield 0, [logon, hb_start, beat, pub, sub]
    yield 1, [ack_ok, '{"c":"ack","cid":"2","a":"completed","status":"success"}', sow, '{"c":"group_end"}']
    for reason in ["auth failure", "authentication failure", "not entitled", "name in use", "logon required"]:
        yield 1, [logon, '{"c":"ack","cid":"1","a":"processed","status":"failure","reason":"%s"}' % reason]
    yield 1, [logon, "", "", beat, ""]
    yield 1, ['{"cmd":"logon","cmd_id":"9","client_name":"a\\"b\\u00e9","user_id":"\\/u"}']
    yield 1, ['{"c":"dance"}', '{"c":"logon","o":{"x":1}}']
    yield 1, ['{"c":"delta_publish","topic":"t","seq":1e3,"flag":true,"n":null,"f":false}x']
    yield 2, ["20000=logon\x0120002=orders-7\x0120003=svc\x01\x02",
              "20000=ack\x0120018=failure\x0120062=not entitled\x01\x02",
              "20000=heartbeat\x0120039=start,10\x01\x02body"]
    yield 3, ["c=logon\x01client_name=n1\x01user_id=u\x01\x02", "c=publish\x01t=x\x01\x02payload"]
    yield 0, ['{"c":"publish","t":"big"}' + "x" * 3000]
    for c in ["unsubscribe", "sow_delete", "flush", "start_timer", "stop_timer", "sow_and_subscribe",
              "sow_and_delta_subscribe", "delta_subscribe", "oof", "group_begin"]:
        yield 0, ['{"c":"%s","cid":"3"}' % c]


def raw_streams():
    yield b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40)
    yield b"GET /amps/json HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc\r\n\r\n"
    yield b"GET /amps/json HTTP/1.1\r\nHost: x\r\n\r\n" + frame('{"c":"logon"}')
    yield b"\x78\x9c\xab\x56\x4a\xd6\x55\x52\x00\x00"
    yield b"hello, is this AMPS?\n"
    yield frame('{"c":"logon"}') + b"\x40\x00\x00\x00"


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    blobs = []
    for wire, payloads in streams():
        body = b"".join(frame(p) for p in payloads)
        for chunk in (0, 1, 7):
            blobs.append(bytes([wire | chunk << 2]) + body)
    for raw in raw_streams():
        blobs.append(b"\x00" + raw)
    for b in blobs:
        name = hashlib.sha1(b).hexdigest()[:16]
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b)
    print(len(blobs), "seeds in", OUT)


if __name__ == "__main__":
    main()
