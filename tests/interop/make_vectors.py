#!/usr/bin/env python3
"""Capture real librdkafka wire traffic as byte-exact test vectors.

Scenarios (each writes {out}/{prefix}_*.bin and {out}/{prefix}_index.jsonl):

  mock        confluent-kafka (bundled librdkafka) producer -> librdkafka mock
              cluster (target/interop/rdkafka_mock, Debian librdkafka 2.0.2),
              captured with the passive sniffer on lo (the mock advertises its own
              port, so a proxy would miss the Produce connection).
  mock-lz4    the same with compression.type=lz4
  mock-gzip, mock-snappy, mock-zstd
              the same with that compression.type (compressed scenarios repeat
              each value 40 times so that compression pays off; librdkafka
              sends a batch uncompressed otherwise)
  kcat        Debian kcat 1.7.1 (librdkafka 2.0.2) `kcat -P` -> mock cluster
  tansu       confluent-kafka producer -> capture proxy -> tansu, with tansu
              advertising the proxy's port (started here on free ports)
  tansu-gzip  the same with compression.type=gzip (values repeated 40 times)
  mock-3p-murmur2 / tansu-3p-murmur2
              12 keyed records, no explicit partition, 3 partitions,
              partitioner=murmur2_random (Java-compatible); librdkafka sends
              one Produce request per partition; {prefix}_deliveries.json says
              where each key landed (a murmur2 partitioning vector)

Usage: make_vectors.py [--out /work/vectors] [SCENARIO...]   (default: all that
can run; tansu scenarios need `tansu` on PATH)

The records are fixed (keys, values, headers, timestamps) so that re-running
yields the same record batches; producer ids, CRCs of batches that contain them,
ports and client ids in the requests are what may differ between runs.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import capture  # noqa: E402

TOPIC = "vectors"
BASE_TS = 1700000000000
# (key, value, headers); None = null
RECORDS = [
    (b"key-0", b"value-0", [("h1", b"v1"), ("h2", b"")]),
    (b"key-1", b"value-1", [("h1", b"v1"), ("h-null", None)]),
    (None, b"value-without-key", []),
    (b"key-3", None, [("only", b"header")]),
    (b"", b"empty key", [("h1", b"\x00\x01\x02\xff")]),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rdkafka_version():
    import confluent_kafka
    return confluent_kafka.libversion()[0]


def produce_confluent(bootstrap, extra, verbose=False, keyed_partitioning=False):
    import confluent_kafka
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "none",
        "linger.ms": 100,
        "client.id": "kafka-sansio-vectors",
    }
    conf.update(extra)
    if verbose:
        conf["debug"] = "protocol,msg"
    p = confluent_kafka.Producer(conf)
    results = []

    def dr(err, msg):
        results.append((err, msg.key(), msg.partition(), msg.offset()))

    if keyed_partitioning:
        # No explicit partition: librdkafka's murmur2_random partitioner is the
        # Java client's (murmur2(key) & 0x7fffffff) % n; the delivery reports
        # (in the index README) give the partition each key went to.
        for i in range(12):
            k = b"key-%d" % i
            p.produce(TOPIC, key=k, value=b"value-%d" % i, timestamp=BASE_TS + i, on_delivery=dr)
    else:
        # Compressed scenarios get longer, repetitive values: librdkafka sends a
        # batch uncompressed when compressing does not make it smaller.
        rep = 40 if extra.get("compression.type", "none") != "none" else 1
        for i, (k, v, h) in enumerate(RECORDS):
            v = None if v is None else v * rep
            p.produce(TOPIC, key=k, value=v, headers=h, partition=0,
                      timestamp=BASE_TS + i, on_delivery=dr)
    n = 12 if keyed_partitioning else len(RECORDS)
    left = p.flush(30)
    if left or len(results) != n or any(r[0] is not None for r in results):
        raise SystemExit("producer failed: left=%d results=%r" % (left, results))
    # Let librdkafka finish its in-flight metadata before we close.
    time.sleep(0.2)
    return results


def start_mock(brokers=1, partitions=1):
    exe = os.path.join(ROOT, "target", "interop", "rdkafka_mock")
    p = subprocess.Popen([exe, "--brokers", str(brokers), "--topic", "%s:%d" % (TOPIC, partitions)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("BOOTSTRAP "):
        raise SystemExit("rdkafka_mock said %r" % line)
    return p, line.split(" ", 1)[1]


def stop_mock(p):
    try:
        p.stdin.write("quit\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass
    p.wait(10)


def write_deliveries(out, prefix, results):
    with open(os.path.join(out, "%s_deliveries.json" % prefix), "w") as f:
        json.dump([{"key": k.decode() if k is not None else None, "partition": p, "offset": o}
                   for _, k, p, o in results], f, indent=1)
        f.write("\n")


def scenario_mock(out, prefix, extra, partitions=1, keyed=False):
    mock, bootstrap = start_mock(partitions=partitions)
    ports = [int(x.rsplit(":", 1)[1]) for x in bootstrap.split(",")]
    log = capture.FrameLog(out, prefix)
    sn = capture.Sniffer(log, ports).start()
    time.sleep(0.2)
    try:
        res = produce_confluent(bootstrap, extra, keyed_partitioning=keyed)
    finally:
        sn.stop()
        stop_mock(mock)
    log.write_index()
    write_deliveries(out, prefix, res)
    return log


def scenario_kcat(out, prefix):
    mock, bootstrap = start_mock()
    ports = [int(x.rsplit(":", 1)[1]) for x in bootstrap.split(",")]
    log = capture.FrameLog(out, prefix)
    sn = capture.Sniffer(log, ports).start()
    time.sleep(0.2)
    try:
        # kcat -P: one record per line, key and value split by -K; headers by -H
        # apply to every record. -T none; timestamps are wall clock (kcat 1.7.1
        # has no per-record timestamp on -P), so the batch differs per run.
        data = "key-0:value-0\nkey-1:value-1\nkey-2:value-2\n"
        r = subprocess.run(
            ["kcat", "-P", "-b", bootstrap, "-t", TOPIC, "-p", "0", "-K:",
             "-H", "h1=v1", "-H", "h2=",
             "-X", "enable.idempotence=true", "-X", "acks=all",
             "-X", "linger.ms=100", "-X", "client.id=kafka-sansio-vectors-kcat"],
            input=data, text=True, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit("kcat failed: %s" % r.stderr)
    finally:
        sn.stop()
        stop_mock(mock)
    log.write_index()
    return log


def tansu_version():
    r = subprocess.run(["tansu", "--version"], capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip()


def scenario_tansu(out, prefix, extra, partitions=1, keyed=False):
    """tansu advertises the proxy port; all client traffic passes the proxy."""
    bport, pport = free_port(), free_port()
    work = tempfile.mkdtemp(prefix="tansu-vectors-")
    logf = open(os.path.join(work, "tansu.log"), "w")
    broker = subprocess.Popen(
        ["tansu", "broker",
         "--listener-url", "tcp://127.0.0.1:%d" % bport,
         "--advertised-listener-url", "tcp://127.0.0.1:%d" % pport,
         "--storage-engine", "memory://tansu/"],
        cwd=work, stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", bport), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or broker.poll() is not None:
                    raise SystemExit("tansu did not start; see %s/tansu.log" % work)
                time.sleep(0.2)
        r = subprocess.run(["tansu", "topic", "create", TOPIC, "--partitions", str(partitions),
                            "--broker", "tcp://127.0.0.1:%d" % bport],
                           cwd=work, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit("tansu topic create failed: %s %s" % (r.stdout, r.stderr))
        log = capture.FrameLog(out, prefix)
        px = capture.Proxy(log, ("127.0.0.1", pport), ("127.0.0.1", bport)).start()
        try:
            res = produce_confluent("127.0.0.1:%d" % pport, extra, keyed_partitioning=keyed)
        finally:
            time.sleep(0.3)
            px.stop()
        log.write_index()
        write_deliveries(out, prefix, res)
        return log
    finally:
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
        logf.close()
        shutil.rmtree(work, ignore_errors=True)


README_HEAD = """# Kafka wire captures: byte-exact test vectors from real clients and brokers

Generated by `tests/interop/make_vectors.py` (kafka-sansio); re-run it to refresh.
Each `.bin` file is ONE Kafka frame exactly as it crossed the wire, WITHOUT the
4-byte big-endian size prefix: a request starts with its header (api_key i16,
api_version i16, correlation_id i32, client_id ...), a response with its
correlation id. Responses were paired with requests by correlation id on the same
connection, which is how a response file knows its API and version.

Name: `{client}_to_{broker}_{req|resp}_{Api}_v{version}_corr{correlation_id}[_c{conn}].bin`
(`_c{conn}`: the same name already came up on an earlier connection of that run,
e.g. librdkafka's second connection also starts at correlation id 1).
`{prefix}_index.jsonl` lists every frame of a run in wire order (conn, dir,
api, version, corr, len, sha256, file); `{prefix}_deliveries.json` is the
producer's delivery reports (key -> partition, offset).

## How they were made

- Date: {date}
- Clients: confluent-kafka {ck} (Python) with its bundled librdkafka {rk};
  kcat 1.7.1 with Debian librdkafka 2.0.2.
- Brokers: librdkafka's mock cluster (Debian librdkafka-dev 2.0.2, 1 broker, via
  `tests/interop/rdkafka_mock`), captured with a passive AF_PACKET sniffer on lo
  (`capture.py sniff`; the mock advertises its own port, so nothing was proxied
  or rewritten); and {tansu} (`--storage-engine memory://`), captured with a
  TCP proxy that tansu advertised (`--advertised-listener-url`), so all traffic
  went through it (`capture.py proxy`).
- Producer settings (librdkafka names): enable.idempotence=true, acks=all
  (-1), linger.ms=100, client.id=kafka-sansio-vectors, compression.type as
  named in the file prefix (none otherwise). Topic `vectors`, 1 partition
  (3 for `-3p-murmur2`).
- Records (partition 0, CreateTime timestamps 1700000000000 + i):
  0 key "key-0" value "value-0" headers h1="v1", h2="" (empty)
  1 key "key-1" value "value-1" headers h1="v1", h-null=null
  2 key null    value "value-without-key" no headers
  3 key "key-3" value null (tombstone) header only="header"
  4 key ""      value "empty key" header h1=00 01 02 ff
  In compressed runs every value is repeated 40 times (otherwise librdkafka
  sends the batch uncompressed because compression does not pay off).
- `-3p-murmur2`: 12 records key "key-i" value "value-i" (i = 0..11), no headers,
  no explicit partition, partitioner=murmur2_random (the Java client's
  murmur2); librdkafka sends one Produce request per partition. Where each key
  went is in the `_deliveries.json` file: a partitioner vector.
- kcat: `kcat -P -K: -p 0 -H h1=v1 -H h2=` with enable.idempotence=true,
  acks=all, records key-0:value-0, key-1:value-1, key-2:value-2; wall-clock
  timestamps.

What differs between runs: producer ids (and so the batch CRCs), broker ports
in Metadata responses, the timestamps of kcat's records, tansu's cluster id.

## Things these captures show

- Debian's mock cluster 2.0.2 supports ApiVersions only up to v2. librdkafka
  2.16 sends ApiVersions v3 first; the mock answers error 35
  (UNSUPPORTED_VERSION) with a malformed flexible body (compact array length
  byte 0x01, i.e. zero entries, followed by one entry ApiVersions 0..2 and a
  throttle time); the client then retries with ApiVersions v0. A decoder must
  act on error 35 without trusting the rest of that body.
- The mock negotiates Metadata v2, InitProducerId v4 and Produce v7.
- tansu 0.6.0 answers ApiVersions v3 directly; librdkafka 2.16 then uses
  Metadata v12, InitProducerId v4 and Produce v10 (flexible: compact strings and
  arrays, tagged fields, request header v2 whose client_id stays a classic
  nullable string), and asks for GetTelemetrySubscriptions v0 (KIP-714,
  ApiKey 71) on the bootstrap connection. The mock's 2.0.2 ApiVersions list
  does not offer key 71, so the mock runs don't have it.
- `tests/interop/check_vectors.py DIR` re-checks every Produce batch (magic 2,
  CRC-32C) independently of our codec.

## Files
"""


def write_readme(out):
    import datetime
    import glob
    import confluent_kafka
    have_tansu = shutil.which("tansu") is not None
    lines = [README_HEAD.replace("{date}", datetime.date.today().isoformat())
             .replace("{ck}", confluent_kafka.__version__)
             .replace("{rk}", confluent_kafka.libversion()[0])
             .replace("{tansu}", tansu_version() if have_tansu else "tansu 0.6.0")]
    for idx in sorted(glob.glob(os.path.join(out, "*_index.jsonl"))):
        prefix = os.path.basename(idx)[:-len("_index.jsonl")]
        lines.append("\n### %s\n" % prefix)
        lines.append("| # | conn | dir | api | ver | corr | bytes | file |")
        lines.append("|---|------|-----|-----|-----|------|-------|------|")
        for line in open(idx):
            e = json.loads(line)
            lines.append("| %d | %d | %s | %s | %s | %d | %d | `%s` |" % (
                e["seq"], e["conn"], "request" if e["dir"] == "c2s" else "response",
                e["api"], e["version"], e["corr"], e["len"], e["file"]))
        dl = os.path.join(out, "%s_deliveries.json" % prefix)
        if os.path.exists(dl):
            d = json.load(open(dl))
            lines.append("\nDeliveries: " + ", ".join(
                "%s -> p%d@%d" % (x["key"], x["partition"], x["offset"]) for x in d))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/work/vectors")
    ap.add_argument("--readme-only", action="store_true", help="only regenerate DIR/README.md")
    ap.add_argument("scenarios", nargs="*")
    a = ap.parse_args()
    if a.readme_only:
        write_readme(a.out)
        return
    v = rdkafka_version()
    major_minor = ".".join(v.split(".")[:2])
    rk = "rdkafka-%s" % v
    have_tansu = shutil.which("tansu") is not None
    all_ = ["mock", "mock-lz4", "mock-gzip", "mock-snappy", "mock-zstd", "mock-3p-murmur2", "kcat"] + \
        (["tansu", "tansu-gzip", "tansu-3p-murmur2"] if have_tansu else [])
    todo = a.scenarios or all_
    summary = {}
    for s in todo:
        if s == "mock":
            log = scenario_mock(a.out, "%s_to_rdkafka-mock-2.0.2" % rk, {})
        elif s == "mock-lz4":
            log = scenario_mock(a.out, "%s-lz4_to_rdkafka-mock-2.0.2" % rk, {"compression.type": "lz4"})
        elif s in ("mock-gzip", "mock-snappy", "mock-zstd"):
            c = s.split("-")[1]
            log = scenario_mock(a.out, "%s-%s_to_rdkafka-mock-2.0.2" % (rk, c), {"compression.type": c})
        elif s == "mock-3p-murmur2":
            log = scenario_mock(a.out, "%s-3p-murmur2_to_rdkafka-mock-2.0.2" % rk,
                                {"partitioner": "murmur2_random"}, partitions=3, keyed=True)
        elif s == "tansu-3p-murmur2":
            log = scenario_tansu(a.out, "%s-3p-murmur2_to_tansu-0.6.0" % rk,
                                 {"partitioner": "murmur2_random"}, partitions=3, keyed=True)
        elif s == "kcat":
            log = scenario_kcat(a.out, "kcat-1.7.1-rdkafka-2.0.2_to_rdkafka-mock-2.0.2")
        elif s == "tansu":
            log = scenario_tansu(a.out, "%s_to_tansu-0.6.0" % rk, {})
        elif s == "tansu-gzip":
            log = scenario_tansu(a.out, "%s-gzip_to_tansu-0.6.0" % rk, {"compression.type": "gzip"})
        else:
            raise SystemExit("unknown scenario %s" % s)
        summary[s] = {"prefix": log.prefix, "frames": len(log.index)}
        print("make_vectors: %s: %d frames" % (s, len(log.index)), file=sys.stderr)
    write_readme(a.out)
    print(json.dumps({"librdkafka": v, "major_minor": major_minor,
                      "tansu": tansu_version() if have_tansu else None,
                      "scenarios": summary}, indent=1))


if __name__ == "__main__":
    main()
