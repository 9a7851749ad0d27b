#!/usr/bin/python3
"""Builds the seed corpus of fuzz/fuzz_mqtt.c from the test data: every
recorded vector and every direction of every recorded connection, each as
one file: a control byte (the level the codec assumes; see fuzz_mqtt.c),
then the bytes. Run from the top of the repository; rewrites fuzz/seeds/mqtt."""
import csv
import hashlib
import json
import os
import sys

OUT = "fuzz/seeds/mqtt"
LEVEL_BITS = {0: 0, 3: 1, 4: 2, 5: 3}


def write(blob, seen):
    name = hashlib.sha1(blob).hexdigest()[:16]
    if name in seen:
        return
    seen.add(name)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    seen = set()
    with open("tests/data/vectors/mqtt-packet-vectors.jsonl") as f:
        for line in f:
            v = json.loads(line)
            ctl = LEVEL_BITS.get(v["protocolVersion"], 2)
            write(bytes([ctl]) + bytes.fromhex(v["hex"]), seen)
    fixtures = "tests/data/recorded/fixtures.tsv"
    if os.path.exists(fixtures):
        streams = {}
        with open(fixtures) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                key = (row["scenario"], row["stream"], row["dir"])
                lvl, chunks = streams.get(key, (int(row["level"]), []))
                chunks.append(bytes.fromhex(row["hex"]))
                streams[key] = (lvl, chunks)
        for (_, _, _), (lvl, chunks) in sorted(streams.items()):
            blob = b"".join(chunks)[:16384]
            # A small chunk size (bits 2-5) so the framer sees split headers.
            write(bytes([LEVEL_BITS.get(lvl, 2) | (1 << 2)]) + blob, seen)
    print(f"{len(seen)} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
