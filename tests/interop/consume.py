#!/usr/bin/env python3
"""Independent read-back consumer (confluent-kafka, i.e. librdkafka) for interop tests.

  consume.py --bootstrap HOST:PORT --topic T [--partitions N] [--idle-ms 3000]
             [--expect N] [--grace-ms 500] [--timeout-ms 120000]
             [--isolation-level read_committed|read_uncommitted]

Assigns every partition of T explicitly from offset 0 (no consumer group, no
commits), consumes until no record arrived for --idle-ms (or, with --expect N,
until N records were seen plus --grace-ms more so that duplicates beyond N still
show up), then prints one JSON object per record on stdout, sorted by
(partition, offset):

  {"partition":0,"offset":5,"key":"6b6579","value":"76616c7565",
   "headers":[["h1","7631"],["h2",null]],"timestamp":1700000000000}

key/value/header values are lowercase hex, or null for a null field; header keys
are strings. timestamp is the record's timestamp in ms (CreateTime or
LogAppendTime, whatever the batch carries). Without --partitions the partition
count comes from the topic's metadata.

--isolation-level is librdkafka's isolation.level, read_committed by default
(librdkafka's default; Java's is read_uncommitted): records of aborted
transactions are skipped and nothing past the last stable offset is returned.
With read_uncommitted every data record is returned, aborted ones too; control
records (commit/abort markers) are never returned.

Exit status 0 when it consumed until idle / expect (also when fewer than
--expect records arrived: that is the caller's assertion; a warning goes to
stderr). Non-zero, with the reason on stderr, for unusable arguments, an
unknown topic, a fatal client error, or --timeout-ms elapsing.

Checked against tansu 0.6.0 and librdkafka's mock cluster 2.0.2. Watermarks are
not used (tansu's are wrong, see the peers README); idleness decides.
"""
import argparse
import json
import sys
import time

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
except ImportError:
    print("consume.py: confluent-kafka missing (pip install confluent-kafka)", file=sys.stderr)
    sys.exit(3)


def hexo(b):
    return None if b is None else bytes(b).hex()


def fail(msg, code=2):
    print("consume.py: %s" % msg, file=sys.stderr)
    sys.exit(code)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--idle-ms", type=int, default=3000)
    ap.add_argument("--expect", type=int, default=None)
    ap.add_argument("--grace-ms", type=int, default=500)
    ap.add_argument("--timeout-ms", type=int, default=120000)
    ap.add_argument("--isolation-level", default="read_committed",
                    choices=["read_committed", "read_uncommitted"])
    ap.add_argument("--debug", default=None, help="librdkafka debug contexts (to stderr)")
    a = ap.parse_args()

    conf = {
        "bootstrap.servers": a.bootstrap,
        # assign() only: no group membership, nothing committed
        "group.id": "kafka-sansio-consume-py",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
        "isolation.level": a.isolation_level,
        "client.id": "kafka-sansio-consume-py",
        "error_cb": lambda e: print("consume.py: client error: %s" % e, file=sys.stderr),
    }
    if a.debug:
        conf["debug"] = a.debug
    c = Consumer(conf)
    start = time.monotonic()
    deadline = start + a.timeout_ms / 1000.0

    nparts = a.partitions
    if nparts is None:
        while True:
            try:
                md = c.list_topics(a.topic, timeout=5)
            except KafkaException as e:
                if time.monotonic() > deadline:
                    fail("metadata: %s" % e)
                time.sleep(0.2)
                continue
            t = md.topics.get(a.topic)
            if t is not None and t.error is None and t.partitions:
                nparts = len(t.partitions)
                break
            if t is not None and t.error is not None and \
                    t.error.code() != KafkaError.LEADER_NOT_AVAILABLE:
                fail("topic %s: %s" % (a.topic, t.error))
            if time.monotonic() > deadline:
                fail("topic %s: no partitions in metadata" % a.topic)
            time.sleep(0.2)
    if nparts <= 0:
        fail("--partitions must be positive")

    c.assign([TopicPartition(a.topic, p, 0) for p in range(nparts)])

    records = []
    last = time.monotonic()
    reached = None  # when --expect was reached
    while True:
        now = time.monotonic()
        if now > deadline:
            c.close()
            fail("timeout after %d ms with %d records" % (a.timeout_ms, len(records)))
        if reached is not None:
            if now - reached >= a.grace_ms / 1000.0:
                break
        elif now - last >= a.idle_ms / 1000.0:
            break
        msg = c.poll(0.05)
        if msg is None:
            continue
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if err.fatal() or err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART,
                                             KafkaError._UNKNOWN_TOPIC,
                                             KafkaError._UNKNOWN_PARTITION,
                                             KafkaError.TOPIC_AUTHORIZATION_FAILED):
                c.close()
                fail("consume error: %s" % err)
            print("consume.py: consume error (continuing): %s" % err, file=sys.stderr)
            continue
        last = time.monotonic()
        ts_type, ts = msg.timestamp()
        hdrs = msg.headers() or []
        records.append({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": hexo(msg.key()),
            "value": hexo(msg.value()),
            "headers": [[k, hexo(v)] for k, v in hdrs],
            "timestamp": ts,
        })
        if a.expect is not None and reached is None and len(records) >= a.expect:
            reached = time.monotonic()
    c.close()

    records.sort(key=lambda r: (r["partition"], r["offset"]))
    out = sys.stdout
    for r in records:
        out.write(json.dumps(r, separators=(",", ":")) + "\n")
    out.flush()
    if a.expect is not None and len(records) != a.expect:
        print("consume.py: warning: expected %d records, got %d" % (a.expect, len(records)),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
