//! Interop with Apache Kafka 4.4.0 itself: a three-node KRaft cluster
//! (tests/interop/kafka/kafka-cluster.sh), read back by Kafka's own console
//! consumer and by confluent-kafka, partitions compared with Kafka's Java
//! producer, and what only a real cluster shows: a SIGKILLed broker, ISR below
//! `min.insync.replicas`, `max.message.bytes`, Produce v13 with topic ids and
//! a topic re-created under a new id.
//!
//! Peers come from `KAFKA_SANSIO_KAFKA` (bootstrap list) and
//! `KAFKA_SANSIO_KAFKA_CTL` (the script), exported by `.ci/run`
//! (tests/interop/README.md). When one is unset a test prints `SKIPPED: ...`
//! and passes, except under `CI=true`, where it fails.
//!
//! Tests that kill nodes take the cluster lock for writing, all others for
//! reading: the cluster is shared by the whole binary.

#[path = "interop/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "interop/kafka_peer.rs"]
mod kafka_peer;
#[allow(dead_code)]
#[path = "interop/support.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_peer::{kafka_config, logged_values, Kafka, Killed};
use kafka_sansio::driver::{DeliveryResult, Error};
use kafka_sansio::producer::{DeliveryError, ProducerRecord};
use kafka_sansio::protocol::error_code::ErrorCode;
use support::*;

static CLUSTER: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    CLUSTER.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    CLUSTER.write().unwrap_or_else(|e| e.into_inner())
}

// ---- 1. the record matrix, read back by Kafka's consumer and by confluent-kafka ------------

fn round_trip(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let Some(py) = require(test, &[CONSUMER]) else {
        return;
    };
    let _g = shared();
    for (name, props) in ROUND_TRIP_CASES {
        let topic = fresh_topic(&format!("rt-{name}"));
        k.create_topic(&topic, PARTITIONS, &[]);
        let recs = records(&topic, 300, name);
        let client = Client::start(driver, kafka_config(&k, props));
        let metas = produce(&client, &recs, 6, Duration::from_millis(10), |_| {});
        client.close();
        let java = k.consume(&topic);
        check(&recs, &metas, PARTITIONS, &java, false).assert_exact(&format!(
            "{test} {name} {driver:?} (Kafka console consumer)"
        ));
        let rd = consume(&py[0], &k.bootstrap, &topic, PARTITIONS, recs.len());
        check(&recs, &metas, PARTITIONS, &rd, false)
            .assert_exact(&format!("{test} {name} {driver:?} (confluent-kafka)"));
        eprintln!(
            "{test}: {name}: {} records read back exactly by Kafka's consumer and by confluent-kafka",
            recs.len()
        );
    }
}

// ---- 2. partitions: ours against Kafka's Java producer ------------------------------------

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn partitions_like_java(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = shared();
    let parts = 7;
    let mut keys: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        "ключ-🔑-キー".as_bytes().to_vec(),
        "é".as_bytes().to_vec(),
        (0..300).map(|i| (i * 31 % 251) as u8).collect(),
        vec![0xff; 300],
        vec![0, 1, 2, 3],
    ];
    keys.extend((0..60).map(|i| format!("key-{i}").into_bytes()));
    let java_topic = fresh_topic("part-java");
    k.create_topic(&java_topic, parts, &[]);
    let input: String = keys
        .iter()
        .map(|key| {
            if key.is_empty() {
                "-\n".to_string()
            } else {
                format!("{}\n", hex(key))
            }
        })
        .collect();
    let java: Vec<i32> = k
        .ctl_input(&["partitions", &java_topic], Some(&input))
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        java.len(),
        keys.len(),
        "{test}: the Java producer's answers"
    );
    let topic = fresh_topic("part-ours");
    k.create_topic(&topic, parts, &[]);
    let client = Client::start(driver, kafka_config(&k, &[]));
    let futures: Vec<_> = keys
        .iter()
        .map(|key| {
            client
                .send(ProducerRecord {
                    topic: topic.as_str().into(),
                    partition: None,
                    key: Some(Bytes::from(key.clone())),
                    value: Some(Bytes::from_static(b"v")),
                    headers: Vec::new(),
                    timestamp: None,
                })
                .expect("send accepted")
        })
        .collect();
    let ours: Vec<i32> = futures
        .into_iter()
        .map(|f| {
            outcome(f, Duration::from_secs(60))
                .expect("delivered")
                .partition
        })
        .collect();
    client.close();
    let differ: Vec<_> = keys
        .iter()
        .zip(java.iter().zip(&ours))
        .filter(|(_, (j, o))| j != o)
        .map(|(key, (j, o))| format!("key {} ({} B): Java {j}, ours {o}", hex(key), key.len()))
        .collect();
    assert!(
        differ.is_empty(),
        "{test}: partitions differ from Kafka's Java producer:\n{}",
        differ.join("\n")
    );
    eprintln!(
        "{test}: {} keys (empty, unicode, 300-byte included) on the Java producer's partition of {parts}",
        keys.len()
    );
}

// ---- 3. a broker SIGKILLed mid-run -------------------------------------------------------

/// Outcomes of a run: per record, the result and when the waiter saw it.
struct Outcomes {
    results: Vec<DeliveryResult>,
    /// Longest time from a send to its outcome, in ms.
    max_latency_ms: u128,
}

/// Sends `recs` in `chunks` with `pause` after each, calling `between(chunk)`
/// before each; every outcome is awaited by a second thread, in send order, so
/// the time a record waited is known.
fn produce_observed(
    client: &Client,
    recs: &[ProducerRecord],
    chunks: usize,
    pause: Duration,
    mut between: impl FnMut(usize),
) -> Outcomes {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, kafka_sansio::driver::DeliveryFuture)>();
    let waiter = std::thread::spawn(move || {
        let mut results = Vec::new();
        let mut max = 0u128;
        for (sent, f) in rx {
            results.push(outcome(f, Duration::from_secs(180)));
            max = max.max(sent.elapsed().as_millis());
        }
        (results, max)
    });
    let per = recs.len().div_ceil(chunks);
    for (c, chunk) in recs.chunks(per).enumerate() {
        between(c);
        for r in chunk {
            let f = client.send(r.clone()).expect("send accepted");
            tx.send((Instant::now(), f)).unwrap();
        }
        std::thread::sleep(pause);
    }
    drop(tx);
    let (results, max_latency_ms) = waiter.join().expect("waiter");
    Outcomes {
        results,
        max_latency_ms,
    }
}

/// Kills the leader of partition 0 after a fifth of the records, starts it
/// again after half (in the background: the sends go on). Returns the
/// outcomes, the read-back by Kafka's consumer and the node killed.
fn kill_run(
    k: &Kafka,
    test: &str,
    driver: Driver,
    props: &[(&str, &str)],
) -> (Vec<ProducerRecord>, Outcomes, Vec<Consumed>, i32) {
    let topic = fresh_topic("kill");
    k.create_topic(&topic, PARTITIONS, &["min.insync.replicas=2"]);
    let leader = k
        .leaders(&topic)
        .into_iter()
        .find(|(p, _)| *p == 0)
        .map(|(_, l)| l)
        .expect("partition 0 has a leader");
    let recs = records(&topic, 3000, "kill");
    let client = Client::start(driver, kafka_config(k, props));
    let mut killed = Killed::new(k);
    let mut restart: Option<std::thread::JoinHandle<()>> = None;
    let chunks = 60;
    let o = produce_observed(&client, &recs, chunks, Duration::from_millis(100), |c| {
        if c == chunks / 5 {
            killed.kill(leader);
            eprintln!("{test}: node {leader} (leader of partition 0) SIGKILLed");
        }
        if c == chunks / 2 {
            let ctl = k.ctl.clone();
            restart = Some(std::thread::spawn(move || {
                let st = Command::new(ctl)
                    .args(["start-node", &leader.to_string()])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("start-node");
                assert!(st.success(), "start-node {leader}: {st}");
            }));
        }
    });
    client.close();
    restart.expect("restarted").join().expect("restart thread");
    killed.nodes.clear();
    // Leadership moved off the killed node and stays off after its restart
    // (no preferred-leader election within leader.imbalance.check.interval.seconds).
    let moved = k.leaders(&topic);
    assert!(
        moved.iter().all(|&(_, l)| l != leader),
        "{test}: node {leader} was killed, leaders now {moved:?}"
    );
    eprintln!("{test}: leaders after the restart: {moved:?}");
    let got = k.consume(&topic);
    (recs, o, got, leader)
}

fn broker_killed_idempotent(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = exclusive();
    let (recs, o, got, node) = kill_run(
        &k,
        test,
        driver,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
        ],
    );
    let metas: Vec<_> = o
        .results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("{test}: record {i} failed: {e} ({e:?})")))
        .collect();
    let c = check(&recs, &metas, PARTITIONS, &got, false);
    c.assert_exact(&format!("{test} {driver:?}"));
    eprintln!(
        "{test}: node {node} killed and restarted: {} records sent, {} read back, 0 lost, 0 duplicated, \
         in order; longest wait for an outcome {} ms",
        recs.len(),
        c.read,
        o.max_latency_ms
    );
}

fn broker_killed_acks1(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = exclusive();
    let (recs, o, got, node) = kill_run(
        &k,
        test,
        driver,
        &[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("linger.ms", "5"),
        ],
    );
    // Every outcome arrived (produce_observed panics on a hang); which ones
    // succeeded decides what counts as lost.
    let failed: Vec<usize> = o
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    let metas: Vec<_> = o
        .results
        .iter()
        .map(|r| match r {
            Ok(md) => md.clone(),
            Err(_) => kafka_sansio::producer::RecordMetadata {
                topic: recs[0].topic.clone(),
                partition: -1,
                offset: -1,
                timestamp: -1,
            },
        })
        .collect();
    let c = check(&recs, &metas, PARTITIONS, &got, true);
    let lost: Vec<usize> = c
        .missing
        .iter()
        .copied()
        .filter(|i| !failed.contains(i))
        .collect();
    assert_eq!(
        o.results.len(),
        recs.len(),
        "{test}: every outcome reported"
    );
    eprintln!(
        "{test}: node {node} killed and restarted, acks=1 without idempotence: {} records sent, {} failed \
         with an error, {} acknowledged but lost, {} duplicated, {} read back; longest wait {} ms",
        recs.len(),
        failed.len(),
        lost.len(),
        c.duplicates,
        c.read,
        o.max_latency_ms
    );
}

// ---- 4. ISR below min.insync.replicas ------------------------------------------------------

/// A topic with `min.insync.replicas=3` and one of its three replicas killed:
/// the ISR (2) is below the minimum, as with two of three replicas down under
/// `min.insync.replicas=2`. Killing two of the three combined nodes would take
/// the KRaft quorum with them: the ISR would then never shrink and the leader
/// would answer REQUEST_TIMED_OUT, not NOT_ENOUGH_REPLICAS.
fn not_enough_replicas(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = exclusive();
    let topic = fresh_topic("isr");
    k.create_topic(&topic, 1, &["min.insync.replicas=3"]);
    let leader = k.leaders(&topic)[0].1;
    let victim = (1..=3).find(|n| *n != leader).unwrap();
    let mut killed = Killed::new(&k);
    killed.kill(victim);
    k.wait_isr(&topic, 2);
    let rec = |i: usize| ProducerRecord::new(topic.as_str(), format!("isr-{i}"));
    // retries=0: the broker's own answer, unretried. The leader may not have
    // applied the smaller ISR yet when describe shows it (another broker
    // answered): it then waits for the dead replica and answers
    // REQUEST_TIMED_OUT; ask again until the ISR check itself refuses.
    let once = Client::start(
        driver,
        kafka_config(
            &k,
            &[
                ("acks", "all"),
                ("enable.idempotence", "false"),
                ("retries", "0"),
                ("request.timeout.ms", "2500"),
                ("delivery.timeout.ms", "3000"),
            ],
        ),
    );
    let mut answers = Vec::new();
    loop {
        match outcome(once.send(rec(0)).unwrap(), Duration::from_secs(30)) {
            Err(Error::Delivery(DeliveryError::Broker {
                code: ErrorCode::NotEnoughReplicas,
                ..
            })) => break,
            Err(Error::Delivery(
                DeliveryError::Broker {
                    code: ErrorCode::RequestTimedOut,
                    ..
                }
                | DeliveryError::Timeout { .. },
            )) if answers.len() < 5 => answers.push("REQUEST_TIMED_OUT"),
            other => panic!(
                "{test}: with retries=0 expected NOT_ENOUGH_REPLICAS, got {other:?} after {answers:?}"
            ),
        }
    }
    once.close();
    let client = Client::start(
        driver,
        kafka_config(
            &k,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("request.timeout.ms", "2000"),
                ("delivery.timeout.ms", "6000"),
            ],
        ),
    );
    let start = Instant::now();
    let f = client.send(rec(1)).unwrap();
    let r = outcome(f, Duration::from_secs(60));
    let took = start.elapsed();
    match r {
        Err(Error::Delivery(DeliveryError::Timeout { .. })) => {}
        other => panic!("{test}: expected a delivery timeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(5500) && took < Duration::from_secs(20),
        "{test}: the timeout came after {took:?} for delivery.timeout.ms=6000"
    );
    killed.restart_all();
    k.wait_isr(&topic, 3);
    let after: Vec<_> = (2..12)
        .map(|i| client.send(rec(i)).expect("accepted"))
        .collect();
    for (i, f) in after.into_iter().enumerate() {
        outcome(f, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{test}: record {} after the replica returned: {e}", i + 2));
    }
    client.close();
    eprintln!(
        "{test}: NOT_ENOUGH_REPLICAS from the broker; retried until delivery.timeout.ms, typed Timeout after \
         {took:?}; 10 records after the replica returned delivered"
    );
}

// ---- 5. a record over max.message.bytes ------------------------------------------------------

fn too_large(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = shared();
    let topic = fresh_topic("big");
    k.create_topic(&topic, 1, &["max.message.bytes=4000"]);
    let client = Client::start(
        driver,
        kafka_config(&k, &[("linger.ms", "200"), ("batch.size", "100000")]),
    );
    let mut futures = Vec::new();
    for i in 0..20 {
        let size = if i == 7 { 6000 } else { 50 };
        futures.push(
            client
                .send(ProducerRecord::new(
                    topic.as_str(),
                    vec![b'a' + (i % 26) as u8; size],
                ))
                .expect("accepted"),
        );
    }
    let results: Vec<_> = futures
        .into_iter()
        .map(|f| outcome(f, Duration::from_secs(60)))
        .collect();
    client.close();
    for (i, r) in results.iter().enumerate() {
        if i == 7 {
            match r {
                Err(Error::Delivery(DeliveryError::Broker { code, .. })) => {
                    assert_eq!(*code, ErrorCode::MessageTooLarge, "{test}: record 7")
                }
                other => {
                    panic!("{test}: record 7 (6000 B): expected MESSAGE_TOO_LARGE, got {other:?}")
                }
            }
        } else {
            assert!(
                r.is_ok(),
                "{test}: record {i} (50 B) shares the batch with the big one and must be delivered: {r:?}"
            );
        }
    }
    let got = k.consume(&topic);
    assert_eq!(got.len(), 19, "{test}: read back");
    eprintln!("{test}: the 6000-byte record failed with MESSAGE_TOO_LARGE; the other 19 delivered and read back");
}

// ---- 6. Produce v13, topic ids, a topic re-created --------------------------------------------

/// One Produce request as a broker's request log recorded it.
struct LoggedProduce {
    version: u32,
    /// The topic ids it named (none before v13).
    topic_ids: Vec<String>,
    /// The partition error codes of its answer.
    errors: Vec<i32>,
}

/// The Produce requests from `client_id` in the brokers' request logs
/// (nodeN/produce-requests.log, see tests/interop/kafka/log4j2.xml).
fn logged_produces(k: &Kafka, client_id: &str) -> Vec<LoggedProduce> {
    k.logged_requests("produce-requests.log", client_id)
        .iter()
        .map(|l| {
            let mut ids = logged_values(l, "topicId");
            ids.dedup();
            LoggedProduce {
                version: logged_values(l, "requestApiVersion")[0]
                    .parse()
                    .unwrap_or(0),
                topic_ids: ids,
                errors: logged_values(l, "errorCode")
                    .iter()
                    .filter_map(|e| e.parse().ok())
                    .collect(),
            }
        })
        .collect()
}

fn topic_recreated(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = shared();
    let topic = fresh_topic("recreate");
    k.create_topic(&topic, PARTITIONS, &[]);
    let client_id = fresh_topic("v13");
    let client = Client::start(
        driver,
        kafka_config(&k, &[("client.id", &client_id), ("linger.ms", "2")]),
    );
    let rec = |i: usize| ProducerRecord::new(topic.as_str(), format!("r-{i}"));
    let first: Vec<_> = (0..50).map(|i| client.send(rec(i)).unwrap()).collect();
    for f in first {
        outcome(f, Duration::from_secs(60)).expect("before the re-creation");
    }
    k.ctl(&["delete-topic", &topic]);
    k.create_topic(&topic, PARTITIONS, &[]);
    let start = Instant::now();
    let second: Vec<_> = (50..100).map(|i| client.send(rec(i)).unwrap()).collect();
    let results: Vec<_> = second
        .into_iter()
        .map(|f| outcome(f, Duration::from_secs(90)))
        .collect();
    let took = start.elapsed();
    client.close();
    for (i, r) in results.iter().enumerate() {
        assert!(
            r.is_ok(),
            "{test}: record {} after the re-creation: {r:?}",
            i + 50
        );
    }
    // A broker logs a request once its answer is on the wire, so the last
    // lines may land after the client has the answer: wait for them a little.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let logged = logged_produces(&k, &client_id);
        let ids: std::collections::BTreeSet<&String> =
            logged.iter().flat_map(|p| &p.topic_ids).collect();
        if (ids.len() >= 2 && logged.iter().any(|p| p.errors.contains(&100)))
            || Instant::now() > deadline
        {
            break logged;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        !logged.is_empty(),
        "{test}: no Produce request from {client_id} in the brokers' request logs"
    );
    assert!(
        logged
            .iter()
            .all(|p| p.version == 13 && !p.topic_ids.is_empty()),
        "{test}: Produce versions and topic ids logged: {:?}",
        logged
            .iter()
            .map(|p| (p.version, &p.topic_ids))
            .collect::<Vec<_>>()
    );
    // The old id was answered UNKNOWN_TOPIC_ID (100), the new one used after.
    let mut ids: Vec<&String> = logged.iter().flat_map(|p| &p.topic_ids).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{test}: topic ids used: {ids:?}");
    let unknown = logged.iter().filter(|p| p.errors.contains(&100)).count();
    assert!(
        unknown > 0,
        "{test}: no request was answered UNKNOWN_TOPIC_ID: the re-creation went unnoticed"
    );
    let got = k.consume(&topic);
    let values: Vec<_> = got
        .iter()
        .map(|c| String::from_utf8(c.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(
        got.len(),
        50,
        "{test}: the new topic holds the 50 later records: {values:?}"
    );
    eprintln!(
        "{test}: {} Produce requests, all v13 with topic ids; topic deleted and re-created: {unknown} \
         answered UNKNOWN_TOPIC_ID, the 50 later records delivered under the new id in {took:?}",
        logged.len()
    );
}

// ---- 7. unknown topic, auto-creation off -------------------------------------------------------

fn unknown_topic(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = shared();
    let missing = fresh_topic("never-created");
    let client = Client::start(driver, kafka_config(&k, &[("max.block.ms", "2000")]));
    let start = Instant::now();
    let f = client
        .send(ProducerRecord::new(missing.as_str(), "lost"))
        .expect("accepted while metadata is fetched");
    let r = outcome(f, Duration::from_secs(30));
    let took = start.elapsed();
    match r {
        Err(Error::Delivery(DeliveryError::TopicNotFound(ms))) => {
            assert!(
                ms >= 2000,
                "{test}: TopicNotFound after {ms} ms, before max.block.ms"
            )
        }
        other => panic!("{test}: expected TopicNotFound, got {other:?}"),
    }
    assert!(
        took < Duration::from_millis(2000 + 3000),
        "{test}: the failure took {took:?} for max.block.ms=2000"
    );
    client.close();
    let out = k.ctl(&[
        "java",
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        &k.bootstrap,
        "--list",
    ]);
    assert!(
        !out.lines().any(|l| l.trim() == missing),
        "{test}: the broker created {missing}"
    );
    eprintln!("{test}: TopicNotFound after {took:?}; the topic was not auto-created");
}

// ---- 8. the four codecs, read back by Kafka's consumer --------------------------------------------

fn compression(test: &str, driver: Driver) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let _g = shared();
    let mut codecs = Vec::new();
    for (c, on) in [
        ("gzip", cfg!(feature = "gzip")),
        ("snappy", cfg!(feature = "snappy")),
        ("lz4", cfg!(feature = "lz4")),
        ("zstd", cfg!(feature = "zstd")),
    ] {
        if on {
            codecs.push(c);
        }
    }
    if codecs.len() < 4 {
        eprintln!("SKIPPED: {test}: needs all four codec features (cargo test --all-features)");
        return;
    }
    for codec in codecs {
        let topic = fresh_topic(&format!("z-{codec}"));
        k.create_topic(&topic, PARTITIONS, &[]);
        let recs = records(&topic, 200, codec);
        let client = Client::start(
            driver,
            kafka_config(&k, &[("compression.type", codec), ("linger.ms", "20")]),
        );
        let metas = produce(&client, &recs, 2, Duration::from_millis(30), |_| {});
        client.close();
        let got = k.consume(&topic);
        check(&recs, &metas, PARTITIONS, &got, false).assert_exact(&format!(
            "{test} {codec} {driver:?} (Kafka console consumer)"
        ));
        eprintln!(
            "{test}: {codec}: {} records read back exactly by Kafka's consumer",
            recs.len()
        );
    }
}

// ---- 9. every key of Java's ProducerConfig loads -----------------------------------------------

/// Kafka 4.4's `ProducerConfig` keys with their defaults, from the jar itself:
/// each is a key `ProducerConfig::set` knows, and nearly all take Java's
/// default as Java would (a property file written from those defaults loads).
#[test]
fn every_java_producer_key_loads() {
    let test = "kafka_every_java_producer_key_loads";
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let out = k.ctl(&["java", "kafkasansio.ProducerConfigKeys"]);
    let mut keys = 0;
    let mut refused = Vec::new();
    for line in out.lines() {
        let (key, default) = line.split_once('\t').expect("KEY\tDEFAULT");
        keys += 1;
        let mut c = kafka_sansio::producer::ProducerConfig::new();
        match c.set(key, default) {
            Ok(_) => {}
            Err(kafka_sansio::producer::ConfigError::UnknownKey(_)) => {
                panic!("{test}: Java's key {key} is unknown here")
            }
            Err(e) => refused.push(format!("{key}={default}: {e}")),
        }
    }
    assert!(keys >= 120, "{test}: only {keys} keys from Java");
    // Java's default mechanism is GSSAPI (Kerberos), which is not supported.
    assert_eq!(
        refused
            .iter()
            .filter(|r| !r.starts_with("sasl.mechanism=GSSAPI"))
            .count(),
        0,
        "{test}: Java defaults refused: {refused:?}"
    );
    eprintln!("{test}: {keys} Java keys load; refused defaults: {refused:?}");
}

/// Each case with both drivers: `<case>::blocking` and `<case>::mio`.
macro_rules! on_both_drivers {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::Driver;
            #[test]
            fn blocking() {
                super::$case(concat!("kafka_", stringify!($case), "_blocking"), Driver::Blocking);
            }
            #[test]
            #[cfg(feature = "mio-driver")]
            fn mio() {
                super::$case(concat!("kafka_", stringify!($case), "_mio"), Driver::Mio);
            }
        }
    )*};
}

on_both_drivers!(
    round_trip,
    partitions_like_java,
    broker_killed_idempotent,
    broker_killed_acks1,
    not_enough_replicas,
    too_large,
    topic_recreated,
    unknown_topic,
    compression,
);
