//! The mock cluster answering Fetch and ListOffsets from its logs.

use kafka_sansio::mock::MockCluster;
use kafka_sansio::protocol::messages::fetch::*;
use kafka_sansio::protocol::messages::list_offsets::*;
use kafka_sansio::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use kafka_sansio::protocol::{BatchBuilder, Compression, ErrorCode, RecordBatch};

use super::call;

/// Produces `n` records of `size` value bytes as one batch, timestamped
/// `ts0`, `ts0 + 1`, ...
fn produce_at(c: &mut MockCluster, topic: &str, partition: i32, n: usize, size: usize, ts0: i64) {
    let mut bb = BatchBuilder::new(ts0, 1024);
    for i in 0..n {
        let value = vec![b'a' + (i % 26) as u8; size];
        bb.append(ts0 + i as i64, None, Some(&value[..]), &[]);
    }
    let batch = bb.close(Compression::None, None).unwrap();
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(batch.bytes()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let leader = c.leader(topic, partition).unwrap();
    let r: ProduceResponse = call(c, leader, 9, &req);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

fn produce(c: &mut MockCluster, topic: &str, partition: i32, n: usize, size: usize) {
    produce_at(c, topic, partition, n, size, 1_700_000_000_000);
}

fn fetch_req(topic: &str, partition: i32, offset: i64, max: i32, total: i32) -> FetchRequest {
    FetchRequest {
        max_bytes: total,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: max,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn only(r: &FetchResponse) -> &PartitionData {
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].partitions.len(), 1);
    &r.responses[0].partitions[0]
}

fn offsets(p: &PartitionData) -> Vec<i64> {
    let mut out = Vec::new();
    for b in RecordBatch::decode_all(p.records.clone().unwrap_or_default()).unwrap() {
        for r in b.records().unwrap() {
            out.push(b.base_offset + r.offset_delta as i64);
        }
    }
    out
}

#[test]
fn mock_fetch_reads_back_batches_at_every_version() {
    let mut c = MockCluster::new(1);
    c.create_topic("f", 1).unwrap();
    produce(&mut c, "f", 0, 3, 10);
    produce(&mut c, "f", 0, 2, 10);
    for v in 4..=12 {
        let r: FetchResponse = call(&mut c, 0, v, &fetch_req("f", 0, 0, 1 << 20, i32::MAX));
        let p = only(&r);
        assert_eq!(p.error_code, 0, "v{v}");
        assert_eq!(p.high_watermark, 5);
        assert_eq!(p.last_stable_offset, 5);
        assert_eq!(offsets(p), vec![0, 1, 2, 3, 4], "v{v}");
        // The batches come back exactly as stored.
        let stored: Vec<u8> = c
            .batches("f", 0)
            .iter()
            .flat_map(|b| b.bytes.to_vec())
            .collect();
        assert_eq!(p.records.as_deref(), Some(&stored[..]));
        // From the middle of the second batch: that whole batch (the reader skips).
        let r: FetchResponse = call(&mut c, 0, v, &fetch_req("f", 0, 4, 1 << 20, i32::MAX));
        assert_eq!(offsets(only(&r)), vec![3, 4]);
        // At the end: no records, no error.
        let r: FetchResponse = call(&mut c, 0, v, &fetch_req("f", 0, 5, 1 << 20, i32::MAX));
        assert_eq!(only(&r).error_code, 0);
        assert!(only(&r).records.as_ref().is_none_or(|b| b.is_empty()));
    }
}

#[test]
fn mock_fetch_respects_max_bytes() {
    let mut c = MockCluster::new(1);
    c.create_topic("m", 1).unwrap();
    for _ in 0..4 {
        produce(&mut c, "m", 0, 2, 100);
    }
    let one = c.batches("m", 0)[0].bytes.len() as i32;
    // Room for two batches and a bit: two whole batches, nothing partial.
    let r: FetchResponse = call(&mut c, 0, 11, &fetch_req("m", 0, 0, 2 * one + 10, i32::MAX));
    assert_eq!(offsets(only(&r)), vec![0, 1, 2, 3]);
    assert_eq!(only(&r).records.as_ref().unwrap().len() as i32, 2 * one);
    // The request-wide limit counts too.
    let r: FetchResponse = call(&mut c, 0, 11, &fetch_req("m", 0, 0, i32::MAX, one + 1));
    assert_eq!(offsets(only(&r)), vec![0, 1]);
    // KIP-74: a first batch larger than the limit still comes back whole.
    let r: FetchResponse = call(&mut c, 0, 11, &fetch_req("m", 0, 2, 1, 1));
    assert_eq!(offsets(only(&r)), vec![2, 3]);
    // Two partitions in one request share max_bytes, in request order.
    c.create_topic("m2", 1).unwrap();
    produce(&mut c, "m2", 0, 2, 100);
    let mut req = fetch_req("m", 0, 0, i32::MAX, one);
    req.topics
        .push(fetch_req("m2", 0, 0, i32::MAX, 0).topics.remove(0));
    let r: FetchResponse = call(&mut c, 0, 12, &req);
    assert_eq!(offsets(&r.responses[0].partitions[0]), vec![0, 1]);
    assert_eq!(offsets(&r.responses[1].partitions[0]), Vec::<i64>::new());
}

/// One Fetch asking for several partitions, in this order: `(topic,
/// partition, fetch_offset, partition_max_bytes)` each, `max_bytes` for the
/// whole response.
fn fetch_many(parts: &[(&str, i32, i64, i32)], max_bytes: i32) -> FetchRequest {
    FetchRequest {
        max_bytes,
        topics: parts
            .iter()
            .map(
                |&(topic, partition, fetch_offset, partition_max_bytes)| FetchTopic {
                    topic: topic.into(),
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset,
                        partition_max_bytes,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}

/// The answer's partitions in request order (one topic entry per partition,
/// as `fetch_many` asks).
fn parts(r: &FetchResponse) -> Vec<&PartitionData> {
    r.responses.iter().flat_map(|t| &t.partitions).collect()
}

/// `(base_offset, bytes)` of each batch in a partition's answer; the data
/// must be whole batches.
fn batch_spans(p: &PartitionData) -> Vec<(i64, usize)> {
    let data = p.records.clone().unwrap_or_default();
    let batches = RecordBatch::decode_all(data.clone()).expect("whole batches");
    let mut spans: Vec<(i64, usize)> = Vec::new();
    let mut at = 0;
    for b in &batches {
        // Each batch's size from its header: 12 bytes of offset and length, then `length`.
        let len = 12 + i32::from_be_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        spans.push((b.base_offset, len));
        at += len;
    }
    assert_eq!(at, data.len(), "no partial batch at the end");
    spans
}

/// The batches (by base offset) Kafka's broker returns for `req` from the
/// mock's logs, whole batches only. ReplicaManager.readFromLocalLog: the
/// request's `max_bytes` is a budget that each partition's data uses up, in
/// request order, and each partition reads at most min(partition_max_bytes,
/// what is left); while no partition has returned data (minOneMessage),
/// LogSegment.read widens that to the size of the batch holding the fetch
/// offset, so the response's first batch always comes (KIP-74). Kafka may
/// end a partition with part of a batch, which the consumer drops; the mock
/// sends only whole ones, so neither counts it here.
fn kafka_rule(c: &MockCluster, req: &FetchRequest) -> Vec<Vec<i64>> {
    let mut budget = req.max_bytes.max(0) as usize;
    let mut min_one = true;
    let mut out = Vec::new();
    for t in &req.topics {
        for fp in &t.partitions {
            let log = c.batches(&t.topic, fp.partition);
            let from: Vec<_> = log
                .iter()
                .filter(|b| b.base_offset + b.record_count as i64 > fp.fetch_offset)
                .collect();
            let mut max = (fp.partition_max_bytes.max(0) as usize).min(budget);
            if min_one {
                max = max.max(from.first().map_or(0, |b| b.bytes.len()));
            }
            let mut taken = Vec::new();
            let mut size = 0;
            for b in from {
                if size + b.bytes.len() > max {
                    break;
                }
                size += b.bytes.len();
                taken.push(b.base_offset);
            }
            if size > 0 {
                min_one = false;
            }
            budget = budget.saturating_sub(size);
            out.push(taken);
        }
    }
    out
}

/// Produces batches of 1 to 6 records of 20 to 400 value bytes (a fixed
/// pseudo-random sequence) to `partition` until it holds `batches` more.
fn produce_varied(c: &mut MockCluster, topic: &str, partition: i32, batches: usize, seed: u64) {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as usize
    };
    for _ in 0..batches {
        let n = 1 + next() % 6;
        let size = 20 + next() % 381;
        produce(c, topic, partition, n, size);
    }
}

/// A consumer that asks with small limits gets fewer batches per answer,
/// exactly those Kafka's rule gives, and by moving its offsets past what it
/// got it still reads every record once, in order.
#[test]
fn mock_fetch_small_limits_and_a_consumer_loop_reads_everything() {
    let mut c = MockCluster::new(1);
    c.create_topic("loop", 3).unwrap();
    for p in 0..3 {
        produce_varied(&mut c, "loop", p, 25, 7 + p as u64);
    }
    let ends: Vec<i64> = (0..3)
        .map(|p| {
            let b = c.batches("loop", p);
            let last = b.last().unwrap();
            last.base_offset + last.record_count as i64
        })
        .collect();
    let largest = (0..3)
        .flat_map(|p| c.batches("loop", p))
        .map(|b| b.bytes.len())
        .max()
        .unwrap();
    // Some batches are larger than a partition's limit, and the response's
    // limit holds about two batches.
    let (partition_max, max_bytes) = (900, 2000);
    assert!(largest > partition_max as usize);
    let mut next = [0i64; 3];
    let mut read: Vec<Vec<i64>> = vec![Vec::new(); 3];
    let mut rounds = 0;
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        rounds += 1;
        assert!(rounds < 500, "no progress: at {next:?} of {ends:?}");
        // Rotated, as Java's consumer does, so that no partition is always last.
        let order: Vec<i32> = (0..3).map(|i| (i + rounds) % 3).collect();
        let ask: Vec<_> = order
            .iter()
            .map(|&p| ("loop", p, next[p as usize], partition_max))
            .collect();
        let req = fetch_many(&ask, max_bytes);
        let r: FetchResponse = call(&mut c, 0, 12, &req);
        let got = parts(&r);
        let spans: Vec<Vec<(i64, usize)>> = got.iter().map(|p| batch_spans(p)).collect();
        assert_eq!(
            spans
                .iter()
                .map(|s| s.iter().map(|b| b.0).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            kafka_rule(&c, &req),
            "round {rounds}, asked {ask:?}"
        );
        // The limits, stated directly: only the response's first batch may
        // exceed them, and then it comes alone.
        let bytes: Vec<usize> = spans.iter().map(|s| s.iter().map(|b| b.1).sum()).collect();
        let first = bytes.iter().position(|&b| b > 0);
        for (i, s) in spans.iter().enumerate() {
            assert!(
                bytes[i] <= partition_max as usize || (Some(i) == first && s.len() == 1),
                "round {rounds}: partition {} got {:?}",
                order[i],
                s
            );
        }
        let total: usize = bytes.iter().sum();
        assert!(
            total <= max_bytes as usize
                || first.is_some_and(|f| total == bytes[f] && spans[f].len() == 1),
            "round {rounds}: {total} bytes in {spans:?}"
        );
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.error_code, 0);
            let part = order[i] as usize;
            assert_eq!(p.partition_index, order[i]);
            let offs = offsets(p);
            // A batch may start before the fetch offset: the reader skips.
            read[part].extend(offs.iter().filter(|&&o| o >= next[part]));
            if let Some(&last) = offs.last() {
                next[part] = last + 1;
            }
        }
    }
    for p in 0..3 {
        assert_eq!(read[p], (0..ends[p]).collect::<Vec<_>>(), "partition {p}");
    }
    // 75 batches of which about two fit an answer: the limits bit.
    assert!(rounds >= 30, "{rounds} rounds");
}

/// KIP-74: a batch larger than both limits, even limits of 0, comes whole
/// when it is the first of the response, and alone.
#[test]
fn mock_fetch_returns_a_batch_larger_than_the_limits_whole() {
    let mut c = MockCluster::new(1);
    c.create_topic("big", 1).unwrap();
    produce(&mut c, "big", 0, 4, 2000);
    produce(&mut c, "big", 0, 1, 10);
    let stored = c.batches("big", 0);
    let big = stored[0].bytes.len();
    assert!(big > 8000);
    for (partition_max, max_bytes) in [(100, 100), (0, 0), (100, i32::MAX), (i32::MAX, 100)] {
        // From its first record and from its middle.
        for offset in [0, 2] {
            let r: FetchResponse = call(
                &mut c,
                0,
                12,
                &fetch_req("big", 0, offset, partition_max, max_bytes),
            );
            let p = only(&r);
            assert_eq!(p.error_code, 0);
            assert_eq!(
                p.records.as_deref(),
                Some(&stored[0].bytes[..]),
                "limits {partition_max}/{max_bytes} at {offset}"
            );
        }
    }
    // The consumer moves past it and gets the next one.
    let r: FetchResponse = call(&mut c, 0, 12, &fetch_req("big", 0, 4, 100, 100));
    assert_eq!(offsets(only(&r)), vec![4]);
}

/// Several partitions under one response-wide `max_bytes`, in request order.
#[test]
fn mock_fetch_shares_max_bytes_across_partitions() {
    let mut c = MockCluster::new(1);
    c.create_topic("s", 5).unwrap();
    for p in 0..5 {
        for _ in 0..3 {
            produce(&mut c, "s", p, 2, 100);
        }
    }
    let one = c.batches("s", 0)[0].bytes.len() as i32;
    c.create_topic("large", 1).unwrap();
    produce(&mut c, "large", 0, 10, 1000);
    let large = c.batches("large", 0)[0].bytes.len() as i32;
    let check = |c: &mut MockCluster, ask: &[(&str, i32, i64, i32)], max: i32, want: &[&[i64]]| {
        let req = fetch_many(ask, max);
        let r: FetchResponse = call(c, 0, 12, &req);
        let got: Vec<Vec<i64>> = parts(&r)
            .iter()
            .map(|p| batch_spans(p).iter().map(|b| b.0).collect())
            .collect();
        let want: Vec<Vec<i64>> = want.iter().map(|w| w.to_vec()).collect();
        assert_eq!(got, want, "asked {ask:?} under {max}");
        assert_eq!(
            got,
            kafka_rule(c, &req),
            "Kafka's rule for {ask:?} under {max}"
        );
    };
    let all = i32::MAX;
    // Room for five batches: the first partition takes three, the second two.
    check(
        &mut c,
        &[("s", 0, 0, all), ("s", 1, 0, all), ("s", 2, 0, all)],
        5 * one,
        &[&[0, 2, 4], &[0, 2], &[]],
    );
    // Each partition's own limit too: two batches each until the budget ends.
    check(
        &mut c,
        &[
            ("s", 0, 0, 2 * one),
            ("s", 1, 0, 2 * one),
            ("s", 2, 0, 2 * one),
        ],
        5 * one,
        &[&[0, 2], &[0, 2], &[0]],
    );
    // A partition whose batch does not fit what is left gets nothing, but a
    // later one whose batch fits still gets it: Kafka does not stop at the
    // first partition that is full, it only spends the budget.
    check(
        &mut c,
        &[("s", 0, 0, one), ("large", 0, 0, all), ("s", 1, 0, one)],
        2 * one,
        &[&[0], &[], &[0]],
    );
    // Budget spent exactly: nothing more for anyone.
    check(
        &mut c,
        &[("s", 0, 0, all), ("s", 1, 0, all)],
        3 * one,
        &[&[0, 2, 4], &[]],
    );
    // Partitions with nothing to give (at the log end, or unknown) do not use
    // up the first-batch exception: the first partition with data gets its
    // batch whatever the limits, and the ones after it are held to them.
    let r: FetchResponse = call(
        &mut c,
        0,
        12,
        &fetch_many(
            &[
                ("s", 0, 6, 1),
                ("s", 99, 0, 1),
                ("large", 0, 0, 1),
                ("s", 1, 0, all),
            ],
            one,
        ),
    );
    let got = parts(&r);
    assert_eq!(got[0].error_code, 0);
    assert!(got[0].records.as_ref().is_none_or(|b| b.is_empty()));
    assert_eq!(got[1].error_code, ErrorCode::UnknownTopicOrPartition.code());
    assert_eq!(batch_spans(got[2]), vec![(0, large as usize)]);
    assert!(got[3].records.as_ref().is_none_or(|b| b.is_empty()));
    // A budget of 0 still returns the first batch, and only it.
    check(
        &mut c,
        &[("s", 0, 0, all), ("s", 1, 0, all)],
        0,
        &[&[0], &[]],
    );
}

#[test]
fn mock_fetch_errors() {
    let mut c = MockCluster::new(2);
    c.set_auto_create_topics(false);
    c.create_topic("e", 2).unwrap();
    produce(&mut c, "e", 1, 2, 1);
    // Partition 1 is led by broker 1: broker 0 is not its leader.
    let r: FetchResponse = call(&mut c, 0, 12, &fetch_req("e", 1, 0, 1000, 1000));
    assert_eq!(only(&r).error_code, ErrorCode::NotLeaderOrFollower.code());
    assert_eq!(only(&r).current_leader.leader_id, 1, "v12 names the leader");
    let r: FetchResponse = call(&mut c, 1, 12, &fetch_req("e", 1, 0, 1000, 1000));
    assert_eq!(offsets(only(&r)), vec![0, 1]);
    // Past the end, before the start.
    for off in [3, -1] {
        let r: FetchResponse = call(&mut c, 1, 4, &fetch_req("e", 1, off, 1000, 1000));
        assert_eq!(only(&r).error_code, ErrorCode::OffsetOutOfRange.code());
        assert_eq!(only(&r).high_watermark, 2);
    }
    let r: FetchResponse = call(&mut c, 0, 4, &fetch_req("nope", 0, 0, 1000, 1000));
    assert_eq!(
        only(&r).error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    let r: FetchResponse = call(&mut c, 0, 4, &fetch_req("e", 7, 0, 1000, 1000));
    assert_eq!(
        only(&r).error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    // A leader epoch from the future is fenced... from the past too.
    let mut req = fetch_req("e", 0, 0, 1000, 1000);
    req.topics[0].partitions[0].current_leader_epoch = 5;
    let r: FetchResponse = call(&mut c, 0, 12, &req);
    assert_eq!(only(&r).error_code, ErrorCode::UnknownLeaderEpoch.code());
    c.set_leader("e", 0, 1).unwrap();
    c.set_leader("e", 0, 0).unwrap();
    req.topics[0].partitions[0].current_leader_epoch = 0;
    let r: FetchResponse = call(&mut c, 0, 12, &req);
    assert_eq!(only(&r).error_code, ErrorCode::FencedLeaderEpoch.code());
    // A fetch session (KIP-227) is not offered: session id 0 in every answer.
    let mut req = fetch_req("e", 0, 0, 1000, 1000);
    req.session_epoch = 0;
    let r: FetchResponse = call(&mut c, 0, 12, &req);
    assert_eq!((r.error_code, r.session_id), (0, 0));
}

#[test]
fn mock_list_offsets() {
    let mut c = MockCluster::new(2);
    c.create_topic("l", 2).unwrap();
    produce_at(&mut c, "l", 0, 3, 1, 1000); // offsets 0-2 at 1000-1002
    produce_at(&mut c, "l", 0, 4, 1, 2000); // offsets 3-6 at 2000-2003
    let ask = |partition_index: i32, timestamp: i64| ListOffsetsPartition {
        partition_index,
        timestamp,
        ..Default::default()
    };
    for v in 1..=7 {
        let mut partitions = vec![
            ask(0, EARLIEST_TIMESTAMP),
            ask(0, LATEST_TIMESTAMP),
            ask(0, 1001),
            ask(0, 1500),
            ask(0, 5000),
            ask(1, LATEST_TIMESTAMP),
        ];
        if v >= 7 {
            partitions.push(ask(0, MAX_TIMESTAMP));
        }
        let req = ListOffsetsRequest {
            topics: vec![
                ListOffsetsTopic {
                    name: "l".into(),
                    partitions,
                    ..Default::default()
                },
                ListOffsetsTopic {
                    name: "none".into(),
                    partitions: vec![ask(0, LATEST_TIMESTAMP)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r: ListOffsetsResponse = call(&mut c, 0, v, &req);
        let p = &r.topics[0].partitions;
        let got = |i: usize| (p[i].error_code, p[i].offset, p[i].timestamp);
        assert_eq!(got(0), (0, 0, -1), "v{v} earliest");
        assert_eq!(got(1), (0, 7, -1), "v{v} latest");
        assert_eq!(got(2), (0, 1, 1001), "v{v} at a timestamp");
        assert_eq!(got(3), (0, 3, 2000), "v{v} between batches");
        assert_eq!(got(4), (0, -1, -1), "v{v} after the last record");
        assert_eq!(
            p[5].error_code,
            ErrorCode::NotLeaderOrFollower.code(),
            "v{v}: partition 1 is led by broker 1"
        );
        if v >= 7 {
            assert_eq!(got(6), (0, 6, 2003), "v{v} max timestamp");
        }
        if v >= 4 {
            assert_eq!(p[0].leader_epoch, 0);
        }
        assert_eq!(
            r.topics[1].partitions[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "ListOffsets creates no topic"
        );
    }
}
