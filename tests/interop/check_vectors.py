#!/usr/bin/env python3
"""Sanity-check captured vectors: every request/response pairs up, and every
Produce request's record batches are magic 2 with a correct CRC-32C.

  check_vectors.py [DIR]     (default /work/vectors)

Prints one line per Produce batch (partition, compression, producer id/epoch,
base sequence, record count, CRC status) and exits non-zero on a bad CRC or an
unparseable Produce request. Independent of the Rust codec on purpose.
"""
import glob
import json
import os
import struct
import sys

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


TABLE = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class R:
    def __init__(self, d, o=0):
        self.d, self.o = d, o

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)
        self.o += struct.calcsize(fmt)
        return v if len(v) > 1 else v[0]

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.d[self.o]
            self.o += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def skip(self, n):
        self.o += n

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.skip(self.uvarint())


def produce_batches(frame):
    r = R(frame)
    key, ver, corr = r.take(">hhi")
    cl = r.take(">h")           # client_id: always a classic nullable string
    r.skip(max(cl, 0))
    flex = ver >= 9
    if flex:
        r.tags()                # request header v2 tagged fields
        n = r.uvarint() - 1     # transactional_id, compact nullable string
        r.skip(max(n, 0))
    else:
        r.skip(max(r.take(">h"), 0))
    acks, _timeout = r.take(">hi")
    nt = r.uvarint() - 1 if flex else r.take(">i")
    for _ in range(nt):
        if flex:
            ln = r.uvarint() - 1
            name = r.d[r.o:r.o + ln].decode()
            r.skip(ln)
            np_ = r.uvarint() - 1
        else:
            ln = r.take(">h")
            name = r.d[r.o:r.o + ln].decode()
            r.skip(ln)
            np_ = r.take(">i")
        for _ in range(np_):
            part = r.take(">i")
            rl = (r.uvarint() - 1) if flex else r.take(">i")
            recs = r.d[r.o:r.o + rl]
            r.skip(rl)
            if flex:
                r.tags()
            p = 0
            while p < len(recs):
                (_base, blen, _ple, magic, crc, attr, _lod, _fts, _mts, pid, pep, bseq,
                 cnt) = struct.unpack_from(">qiibIhiqqqhii", recs, p)
                body = recs[p + 21:p + 12 + blen]
                yield {"version": ver, "acks": acks, "topic": name, "partition": part,
                       "magic": magic, "compression": CODECS.get(attr & 7, attr & 7),
                       "attributes": attr, "producer_id": pid, "producer_epoch": pep,
                       "base_sequence": bseq, "records": cnt,
                       "crc_ok": crc32c(body) == crc, "batch_bytes": 12 + blen}
                p += 12 + blen
        if flex:
            r.tags()


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/work/vectors"
    bad = 0
    for idx in sorted(glob.glob(os.path.join(d, "*_index.jsonl"))):
        entries = [json.loads(x) for x in open(idx)]
        reqs = {(e["conn"], e["corr"]) for e in entries if e["dir"] == "c2s"}
        resps = {(e["conn"], e["corr"]) for e in entries if e["dir"] == "s2c"}
        unpaired = [e["file"] for e in entries if e["api"] is None]
        print("%s: %d frames, %d requests without response, %d unpaired responses"
              % (os.path.basename(idx), len(entries), len(reqs - resps), len(unpaired)))
        for e in entries:
            if e["dir"] == "c2s" and e["api"] == "Produce":
                frame = open(os.path.join(d, e["file"]), "rb").read()
                try:
                    for b in produce_batches(frame):
                        print("   %s: %s" % (e["file"], json.dumps(b, sort_keys=True)))
                        if not b["crc_ok"] or b["magic"] != 2:
                            bad += 1
                except (struct.error, IndexError, UnicodeDecodeError) as ex:
                    print("   %s: cannot parse: %s" % (e["file"], ex))
                    bad += 1
    if bad:
        print("check_vectors: %d bad Produce batches" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
