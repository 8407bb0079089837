//! Interop: the producer (both drivers) against peers nobody here wrote —
//! tansu 0.6.0 and librdkafka's mock cluster (3 brokers), both Debian's 2.0.2
//! and the current librdkafka's (2.12 or later) — with everything read
//! back by an independent consumer (confluent-kafka, i.e. librdkafka 2.16).
//!
//! Peers come from the `KAFKA_SANSIO_*` variables that `.ci/run` exports
//! (tests/interop/README.md). When one is unset a test prints `SKIPPED: ...` and
//! passes, except under `CI=true`, where it fails.

#[path = "interop/json.rs"]
mod json;
#[path = "interop/proxy.rs"]
mod proxy;
#[path = "interop/support.rs"]
mod support;

use std::time::Duration;

use support::*;

/// The broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// The shared tansu of the run.
    Tansu,
    /// A private mock cluster of Debian's librdkafka 2.0.2.
    Mock,
    /// A private mock cluster of the current librdkafka (2.12 or later).
    MockCurrent,
}

impl Peer {
    /// The peer a test module is named after.
    fn named(name: &str) -> Peer {
        match name {
            "tansu" => Peer::Tansu,
            "mock" => Peer::Mock,
            "mock_current" => Peer::MockCurrent,
            other => panic!("no peer named {other}"),
        }
    }

    /// The variable naming the mock binary (`None` for tansu).
    fn mock_var(self) -> Option<&'static str> {
        match self {
            Peer::Tansu => None,
            Peer::Mock => Some(MOCK_BIN),
            Peer::MockCurrent => Some(MOCK_CURRENT_BIN),
        }
    }
}

/// Where a test produces to.
enum Broker {
    /// The shared tansu of the run.
    Tansu { addr: String },
    /// A private librdkafka mock cluster.
    Mock(Mock),
}

impl Broker {
    fn bootstrap(&self) -> String {
        match self {
            Broker::Tansu { addr } => addr.clone(),
            Broker::Mock(m) => m.bootstrap.clone(),
        }
    }
}

/// The peers a test on `peer` needs, or `None` (skipped).
fn setup(test: &str, peer: Peer) -> Option<(Broker, String, Option<String>)> {
    match peer.mock_var() {
        None => {
            let v = require(test, &[TANSU, TANSU_BIN, CONSUMER])?;
            Some((
                Broker::Tansu { addr: v[0].clone() },
                v[2].clone(),
                Some(v[1].clone()),
            ))
        }
        Some(bin) => {
            let v = require(test, &[bin, CONSUMER])?;
            Some((Broker::Mock(start_mock(peer, &v[0])), v[1].clone(), None))
        }
    }
}

/// A 3-broker mock cluster of `peer` from `bin`; for [`Peer::MockCurrent`] it
/// checks that the binary really runs librdkafka 2.12 or later, so that a
/// variable pointing at the old mock cannot pass for the current one.
fn start_mock(peer: Peer, bin: &str) -> Mock {
    let mut mock = Mock::start(bin, 3, &[]);
    if peer == Peer::MockCurrent {
        let answer = mock.cmd("version");
        let version = answer.trim_start_matches("OK").trim();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        assert!(
            (major, minor) >= (2, 12),
            "{MOCK_CURRENT_BIN}={bin} runs librdkafka {version}, not 2.12 or later"
        );
    }
    mock
}

/// Creates `topic` with `partitions` on the broker.
fn create_topic(broker: &mut Broker, tansu_bin: &Option<String>, topic: &str, partitions: i32) {
    match broker {
        Broker::Tansu { addr } => {
            tansu_create_topic(tansu_bin.as_ref().unwrap(), addr, topic, partitions)
        }
        Broker::Mock(m) => {
            m.cmd(&format!("create_topic {topic} {partitions} 3"));
        }
    }
}

/// Round trip of the record matrix through several acks/idempotence settings.
fn round_trip(test: &str, peer: Peer, driver: Driver) {
    let Some((mut broker, consumer, bin)) = setup(test, peer) else {
        return;
    };
    for (name, props) in ROUND_TRIP_CASES {
        let topic = fresh_topic(&format!("rt-{name}"));
        create_topic(&mut broker, &bin, &topic, PARTITIONS);
        let c = RoundTrip {
            driver,
            config: config(&broker.bootstrap(), props),
            records: &records(&topic, 300, name),
            chunks: 6,
            pause: Duration::from_millis(10),
            consumer: &consumer,
            broker: &broker.bootstrap(),
            duplicates_allowed: false,
        }
        .run();
        c.assert_exact(&format!("{test} {name} {driver:?}"));
        eprintln!("{test}: {name}: {} records read back exactly", c.read);
    }
}

/// acks=0 (without idempotence, which needs acks=all): Kafka sends no Produce
/// response, so each outcome is Ok with offset -1 once the request is written;
/// after `flush` every record must still be in the log exactly once, in order
/// per partition, keyed ones on their murmur2 partition. Nothing else checks
/// that real brokers take our acks=0 requests and that the connection stays in
/// step with no answers, or with the answers tansu sends anyway (before they
/// were dropped, the reset they caused lost a batch in half the runs).
fn acks_zero(test: &str, peer: Peer, driver: Driver) {
    let Some((mut broker, consumer, bin)) = setup(test, peer) else {
        return;
    };
    let topic = fresh_topic("acks0");
    create_topic(&mut broker, &bin, &topic, PARTITIONS);
    let recs = records(&topic, 2000, "acks0");
    let client = Client::start(
        driver,
        config(
            &broker.bootstrap(),
            &[
                ("acks", "0"),
                ("enable.idempotence", "false"),
                ("linger.ms", "2"),
            ],
        ),
    );
    // In chunks with pauses, so that several Produce requests go out on each
    // connection with no response between them.
    let mut futures = Vec::with_capacity(recs.len());
    for chunk in recs.chunks(250) {
        for r in chunk {
            futures.push(client.send(r.clone()).expect("send accepted"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    client.flush().expect("flush");
    // After flush every outcome is there: waiting must not be needed.
    let metas: Vec<_> = futures
        .into_iter()
        .enumerate()
        .map(|(i, f)| match outcome(f, Duration::from_millis(100)) {
            Ok(md) => {
                assert_eq!(md.offset, -1, "{test}: record {i}: acks=0 has no offset");
                md
            }
            Err(e) => panic!("{test}: record {i} failed: {e} ({e:?})"),
        })
        .collect();
    client.close();
    let got = consume(
        &consumer,
        &broker.bootstrap(),
        &topic,
        PARTITIONS,
        recs.len(),
    );
    let c = check(&recs, &metas, PARTITIONS, &got, false);
    c.assert_exact_offsets_may_be_unknown(&format!("{test} {driver:?}"));
    // Offset -1 on the partition the record was read back from: the
    // outcome named the right partition even without an offset.
    assert_eq!(
        c.unknown_offsets,
        recs.len(),
        "{test}: every outcome must name the partition read back, with offset -1"
    );
    eprintln!("{test}: {} records read back exactly", got.len());
}

// ---- 2. compression ----------------------------------------------------------------------

/// The codecs compiled in (all of them under `--all-features`).
fn codecs() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "gzip") {
        v.push("gzip");
    }
    if cfg!(feature = "snappy") {
        v.push("snappy");
    }
    if cfg!(feature = "lz4") {
        v.push("lz4");
    }
    if cfg!(feature = "zstd") {
        v.push("zstd");
    }
    v
}

/// Each codec: the record matrix compressed, read back intact.
fn compression(test: &str, peer: Peer, driver: Driver) {
    let Some((mut broker, consumer, bin)) = setup(test, peer) else {
        return;
    };
    let codecs = codecs();
    if codecs.is_empty() {
        eprintln!("SKIPPED: {test}: no codec features (cargo test --all-features)");
        return;
    }
    for codec in codecs {
        let topic = fresh_topic(&format!("z-{codec}"));
        create_topic(&mut broker, &bin, &topic, PARTITIONS);
        let c = RoundTrip {
            driver,
            config: config(
                &broker.bootstrap(),
                &[("compression.type", codec), ("linger.ms", "20")],
            ),
            records: &records(&topic, 200, codec),
            chunks: 2,
            pause: Duration::from_millis(30),
            consumer: &consumer,
            broker: &broker.bootstrap(),
            duplicates_allowed: false,
        }
        .run();
        c.assert_exact(&format!("{test} {codec} {driver:?}"));
        eprintln!("{test}: {codec}: {} records read back exactly", c.read);
    }
}

/// For each case, one module per peer with one test per driver
/// (`round_trip::tansu::blocking`, `fault_transport::mock_current::mio`, ...):
/// `on_peers_and_drivers!([PEER, ...] CASE, ...)`, PEER one of `tansu`, `mock`,
/// `mock_current` ([`Peer::named`]). The case function takes the test's name
/// (which names its topics), the peer and the driver.
macro_rules! on_peers_and_drivers {
    (@case $case:ident [$($peer:ident),+]) => {
        mod $case {
            $(mod $peer {
                use crate::{Driver, Peer};
                const PEER: &str = stringify!($peer);
                #[test]
                fn blocking() {
                    crate::$case(concat!(stringify!($case), "_", stringify!($peer), "_blocking"), Peer::named(PEER), Driver::Blocking);
                }
                #[test]
                #[cfg(feature = "mio-driver")]
                fn mio() {
                    crate::$case(concat!(stringify!($case), "_", stringify!($peer), "_mio"), Peer::named(PEER), Driver::Mio);
                }
            })+
        }
    };
    ($peers:tt $($case:ident),+ $(,)?) => {
        $(on_peers_and_drivers!(@case $case $peers);)+
    };
}

on_peers_and_drivers!([tansu, mock, mock_current] round_trip, acks_zero, compression);

/// The codec really is on the wire: a private tansu behind a (loss-free)
/// proxy that decodes every Produce request; each codec's batches carry its
/// id in their attributes and are read back intact by the consumer.
#[test]
fn compression_on_the_wire_tansu() {
    let test = "compression_on_the_wire_tansu";
    let Some(v) = require(test, &[TANSU_BIN, CONSUMER]) else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let broker_addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let tansu = Tansu::start(&v[0], broker_addr, proxy_addr);
    let proxy = proxy::LossyProxy::start(listener, tansu.addr, usize::MAX, 0);
    let mut drivers = vec![Driver::Blocking];
    if cfg!(feature = "mio-driver") {
        drivers.push(Driver::Mio);
    }
    for codec in codecs() {
        let want: i16 = match codec {
            "gzip" => 1,
            "snappy" => 2,
            "lz4" => 3,
            "zstd" => 4,
            _ => unreachable!(),
        };
        for &driver in &drivers {
            let topic = fresh_topic(&format!("wire-{codec}"));
            tansu_create_topic(&v[0], &tansu.addr.to_string(), &topic, PARTITIONS);
            proxy.stats().codecs.lock().unwrap().clear();
            let c = RoundTrip {
                driver,
                config: config(
                    &proxy_addr.to_string(),
                    &[("compression.type", codec), ("linger.ms", "20")],
                ),
                records: &records(&topic, 200, codec),
                chunks: 2,
                pause: Duration::from_millis(30),
                consumer: &v[1],
                broker: &tansu.addr.to_string(),
                duplicates_allowed: false,
            }
            .run();
            // Only Produce requests are counted: the consumer's reads add nothing.
            let seen = proxy.stats().codecs.lock().unwrap().clone();
            assert!(
                seen.len() == 1 && seen.contains_key(&want),
                "{test}: {codec} ({driver:?}): batches by codec id on the wire: {seen:?}"
            );
            c.assert_exact(&format!("{test} {codec} {driver:?}"));
            eprintln!(
                "{test}: {codec} ({driver:?}): {seen:?} batches; {} records read back exactly",
                c.read
            );
        }
    }
}

// ---- 3. faults from the librdkafka mock cluster ------------------------------------------------

/// Produces the record matrix (idempotent, acks=all) in 10 chunks, calling
/// `fault(mock, topic, chunk)` before each, and checks the read-back exactly.
///
/// Neither librdkafka mock (2.0.2 nor 2.12) checks the sequences of an
/// idempotent producer without a transactional id
/// (`rd_kafka_mock_validate_records` returns at once), so a retry is
/// appended again where Kafka answers it as a duplicate. Such a retry follows
/// whenever a response is lost after the append, as it can be here: the mock
/// reads every request the socket holds before it writes any response, and
/// an injected -195 shuts the connection down in that loop, dropping the
/// responses it has not written. The test therefore reads the stored batches
/// and drops the earlier copies of a batch stored again under the same
/// (producer id, epoch, base sequence) with the same records, and replays
/// Kafka's sequence check over them in the mock's place. The mock also
/// handles the requests the socket still holds after the one it fails (Linux
/// returns buffered bytes after `shutdown`), so a batch can be stored ahead
/// of the older one that failed before it, its answer lost: Kafka rejects
/// that copy as out of order, and it passes only when its identical retry
/// follows in sequence. A batch re-sent under a new sequence stays a
/// duplicate and fails the test, as do gaps, a batch stored ahead and never
/// re-sent in order, and lost records.
fn fault(test: &str, peer: Peer, driver: Driver, fault: impl Fn(&mut Mock, &str, usize)) {
    let bin = peer.mock_var().expect("faults come from a mock cluster");
    let Some(v) = require(test, &[bin, CONSUMER]) else {
        return;
    };
    let mut mock = start_mock(peer, &v[0]);
    let topic = fresh_topic("fault");
    mock.cmd(&format!("create_topic {topic} {PARTITIONS} 3"));
    // One partition per broker, whatever the mock chose.
    for p in 0..PARTITIONS {
        mock.cmd(&format!("set_leader {topic} {p} {}", p + 1));
    }
    let bootstrap = mock.bootstrap.clone();
    let records = records(&topic, 300, "fault");
    let (metas, got) = RoundTrip {
        driver,
        config: config(
            &bootstrap,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "2"),
                ("retry.backoff.ms", "20"),
                ("retry.backoff.max.ms", "200"),
                ("reconnect.backoff.ms", "20"),
                ("reconnect.backoff.max.ms", "200"),
            ],
        ),
        records: &records,
        chunks: 10,
        pause: Duration::from_millis(60),
        consumer: &v[1],
        broker: &bootstrap,
        duplicates_allowed: false,
    }
    .produce_and_read(|c| fault(&mut mock, &topic, c));
    let batches = stored_batches(&bootstrap, &topic, PARTITIONS);
    let resent = drop_resent_batches(&got, &batches);
    if resent.resent > 0 {
        // The headers of every stored batch: the evidence that the copies are retries.
        for b in &batches {
            eprintln!("{test}: stored {b:?}");
        }
    }
    let mut c = check(&records, &metas, PARTITIONS, &resent.kept, false);
    c.problems.extend(resent.problems);
    c.assert_exact(&format!("{test} {driver:?}"));
    eprintln!(
        "{test}: {} records read back exactly ({} batches the mock stored twice)",
        c.read, resent.resent
    );
}

fn push_errors(code: i32) -> impl Fn(&mut Mock, &str, usize) {
    move |m, _, c| {
        if c == 1 {
            m.cmd(&format!("push_produce_errors {code} {code} {code}"));
        }
        if c == 5 {
            m.cmd(&format!("push_produce_errors {code} {code}"));
        }
    }
}

/// Fault cases with the signature [`on_peers_and_drivers`] calls: `NAME: FAULT;`
/// defines `fn NAME(test, peer, driver)` running [`fault`] with FAULT.
macro_rules! fault_cases {
    ($($name:ident: $fault:expr;)*) => {$(
        fn $name(test: &str, peer: Peer, driver: Driver) {
            fault(test, peer, driver, $fault);
        }
    )*};
}

fn broker_down_up(m: &mut Mock, _: &str, c: usize) {
    match c {
        2 => {
            m.cmd("broker_down 2");
        }
        6 => {
            m.cmd("broker_up 2");
        }
        _ => {}
    }
}

fn leader_moves(m: &mut Mock, t: &str, c: usize) {
    match c {
        2 => {
            m.cmd(&format!("set_leader {t} 0 2"));
        }
        4 => {
            m.cmd(&format!("set_leader {t} 1 3"));
        }
        7 => {
            m.cmd(&format!("set_leader {t} 0 1"));
            m.cmd(&format!("set_leader {t} 2 1"));
        }
        _ => {}
    }
}

fault_cases! {
    fault_not_leader: push_errors(6);
    fault_request_timed_out: push_errors(7);
    fault_not_enough_replicas: push_errors(19);
    fault_transport: push_errors(-195);
    fault_broker_down_up: broker_down_up;
    fault_leader_move: leader_moves;
}

on_peers_and_drivers!(
    [mock, mock_current]
    fault_not_leader,
    fault_request_timed_out,
    fault_not_enough_replicas,
    fault_transport,
    fault_broker_down_up,
    fault_leader_move,
);

/// The premise of [`fault`]'s forgiveness, on both mocks: the same
/// idempotent batch (one producer id, epoch 0, sequence 0) produced twice
/// is stored twice. Kafka stores it once and answers the second as a duplicate.
fn mock_stores_idempotent_retries(test: &str, peer: Peer) {
    use kafka_sansio::protocol::messages::init_producer_id::*;
    use kafka_sansio::protocol::messages::produce::*;
    use kafka_sansio::protocol::{BatchBuilder, Compression, Header};
    let bin = peer.mock_var().unwrap();
    let Some(v) = require(test, &[bin]) else {
        return;
    };
    let mut mock = start_mock(peer, &v[0]);
    let topic = fresh_topic("retry");
    mock.cmd(&format!("create_topic {topic} 1 1"));
    mock.cmd(&format!("set_leader {topic} 0 1"));
    // Broker 1 leads and, as every mock broker, answers InitProducerId.
    let leader = mock.bootstrap.split(',').next().unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(&leader).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let pid: InitProducerIdResponse = call(
        &mut conn,
        1,
        &InitProducerIdRequest {
            transaction_timeout_ms: 60_000,
            ..Default::default()
        },
    );
    assert_eq!(pid.error_code, 0, "{test}: InitProducerId");
    let mut b = BatchBuilder::new(0, 256);
    for id in 0..3 {
        let header = Header {
            key: "id".into(),
            value: Some(bytes::Bytes::from(id.to_string())),
        };
        b.append(0, None, Some(b"v"), &[header]);
    }
    let mut batch = b.close(Compression::None, None).unwrap();
    batch.stamp(pid.producer_id, pid.producer_epoch, 0, false);
    let produce = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.clone(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.bytes()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    for attempt in 0..2 {
        let r: ProduceResponse = call(&mut conn, 3, &produce);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{test}: attempt {attempt}: {p:?}");
    }
    let stored = stored_batches(&leader, &topic, 1);
    eprintln!("{test}: {stored:?}");
    assert_eq!(stored.len(), 2, "{test}: {stored:?}");
    let header = |b: &StoredBatch| {
        (
            b.producer_id,
            b.producer_epoch,
            b.base_sequence,
            b.ids.clone(),
        )
    };
    assert_eq!(header(&stored[0]), header(&stored[1]));
    assert_eq!((stored[0].base_offset, stored[1].base_offset), (0, 3));
}

#[test]
fn mock_stores_idempotent_retries_2_0_2() {
    mock_stores_idempotent_retries("mock_stores_idempotent_retries_2_0_2", Peer::Mock);
}

#[test]
fn mock_stores_idempotent_retries_current() {
    mock_stores_idempotent_retries("mock_stores_idempotent_retries_current", Peer::MockCurrent);
}

/// [`drop_resent_batches`] forgives only what Kafka would store once:
/// partition 0 holds batches of sequences 0 (records 0, 1) and 2 (record 2),
/// then both again, as when both responses were lost with the connection.
#[test]
fn resent_batches_only_identical_retries_are_dropped() {
    let batch = |base_offset, base_sequence, ids: &[usize]| StoredBatch {
        partition: 0,
        base_offset,
        producer_id: 7,
        producer_epoch: 0,
        base_sequence,
        ids: ids.to_vec(),
    };
    let read = |batches: &[StoredBatch]| -> Vec<Consumed> {
        batches
            .iter()
            .flat_map(|b| {
                b.ids.iter().enumerate().map(|(i, id)| Consumed {
                    partition: 0,
                    offset: b.base_offset + i as i64,
                    key: None,
                    value: None,
                    headers: vec![("id".into(), Some(id.to_string().into_bytes()))],
                    timestamp: 0,
                })
            })
            .collect()
    };
    let offsets = |r: &Resent| r.kept.iter().map(|c| c.offset).collect::<Vec<_>>();

    // The earlier copies go.
    let retried = [
        batch(0, 0, &[0, 1]),
        batch(2, 2, &[2]),
        batch(3, 0, &[0, 1]),
        batch(5, 2, &[2]),
    ];
    let r = drop_resent_batches(&read(&retried), &retried);
    assert_eq!((r.resent, r.problems.len()), (2, 0), "{:?}", r.problems);
    assert_eq!(offsets(&r), [3, 4, 5]);

    // Sequence 3 stored ahead of 2 (it followed 2, which failed, on one
    // connection), then both re-sent in order: Kafka would have rejected
    // the first copy of 3 and stored the retries.
    let overtaken = [
        batch(0, 0, &[0, 1]),
        batch(2, 3, &[3]),
        batch(3, 2, &[2]),
        batch(4, 3, &[3]),
    ];
    let r = drop_resent_batches(&read(&overtaken), &overtaken);
    assert_eq!((r.resent, r.problems.len()), (1, 0), "{:?}", r.problems);
    assert_eq!(offsets(&r), [0, 1, 3, 4]);

    // Sequence 3 sent ahead of 2 and never again: Kafka stores no copy of it.
    let ahead = [batch(0, 0, &[0, 1]), batch(2, 3, &[3]), batch(3, 2, &[2])];
    let r = drop_resent_batches(&read(&ahead), &ahead);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);

    // Records 0, 1 re-sent under a new sequence: both copies stay, for
    // the read-back check to report as duplicates.
    let resequenced = [
        batch(0, 0, &[0, 1]),
        batch(2, 2, &[2]),
        batch(3, 3, &[0, 1]),
    ];
    let r = drop_resent_batches(&read(&resequenced), &resequenced);
    assert_eq!((r.resent, r.kept.len()), (0, 5), "{:?}", r.problems);

    // Sequence 0 stored again with other records.
    let changed = [
        batch(0, 0, &[0, 1]),
        batch(2, 2, &[2]),
        batch(3, 0, &[0, 3]),
    ];
    let r = drop_resent_batches(&read(&changed), &changed);
    assert!(
        r.problems.iter().any(|p| p.contains("other records")),
        "{:?}",
        r.problems
    );

    // A gap: sequence 2 missing, sequence 3 follows 0 (two records).
    let gap = [batch(0, 0, &[0, 1]), batch(2, 3, &[2])];
    assert_eq!(drop_resent_batches(&read(&gap), &gap).problems.len(), 1);
}

// ---- 4. de-duplication: Produce responses lost after tansu appended -----------------------------

/// A private tansu behind a [`proxy::LossyProxy`] (tansu advertises the proxy,
/// so every connection goes through it) that swallows every 3rd Produce
/// response after the append and cuts the connection. Returns (extra copies read, responses lost).
fn lost_responses(test: &str, driver: Driver, idempotent: bool) -> Option<(usize, usize)> {
    let v = require(test, &[TANSU_BIN, CONSUMER])?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let broker_addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let tansu = Tansu::start(&v[0], broker_addr, proxy_addr);
    let proxy = proxy::LossyProxy::start(listener, tansu.addr, 3, 8);
    let topic = fresh_topic(if idempotent {
        "dedup-idem"
    } else {
        "dedup-plain"
    });
    tansu_create_topic(&v[0], &tansu.addr.to_string(), &topic, PARTITIONS);
    let recs = records(&topic, 300, "dedup");
    let props: &[(&str, &str)] = if idempotent {
        &[("acks", "all"), ("enable.idempotence", "true")]
    } else {
        &[("acks", "all"), ("enable.idempotence", "false")]
    };
    let mut props = props.to_vec();
    props.extend([
        ("linger.ms", "1"),
        ("retry.backoff.ms", "20"),
        ("reconnect.backoff.ms", "20"),
    ]);
    let c = RoundTrip {
        driver,
        config: config(&proxy_addr.to_string(), &props),
        records: &recs,
        chunks: 30,
        pause: Duration::from_millis(15),
        consumer: &v[1],
        broker: &tansu.addr.to_string(),
        duplicates_allowed: !idempotent,
    }
    .run();
    let dropped = proxy
        .stats()
        .dropped
        .load(std::sync::atomic::Ordering::Acquire);
    assert!(
        dropped > 0,
        "{test}: the proxy lost no Produce response ({} forwarded): the test would not bite",
        proxy
            .stats()
            .produces
            .load(std::sync::atomic::Ordering::Acquire)
    );
    if idempotent {
        // tansu answers a re-sent batch with DUPLICATE_SEQUENCE_NUMBER and
        // base offset -1 (it keeps no batch metadata); the producer then
        // reports success with offset -1, as Java's does.
        c.assert_exact_offsets_may_be_unknown(&format!("{test} {driver:?}"));
        // Proof that appended batches were re-sent and de-duplicated by sequence.
        assert!(
            c.unknown_offsets > 0,
            "{test}: no batch was acknowledged as a duplicate"
        );
    } else {
        assert!(
            c.missing.is_empty() && c.problems.is_empty(),
            "{test}: missing {:?}, problems:\n{}",
            c.missing,
            c.problems.join("\n")
        );
    }
    eprintln!(
        "{test}: {} Produce responses lost after append; read {} records for {} sent: \
         {} duplicates; {} acknowledged as duplicates with offset -1",
        dropped,
        c.read,
        recs.len(),
        c.duplicates,
        c.unknown_offsets
    );
    drop(proxy);
    drop(tansu);
    Some((c.duplicates, dropped))
}

#[test]
fn dedup_lost_responses_idempotent_blocking() {
    lost_responses(
        "dedup_lost_responses_idempotent_blocking",
        Driver::Blocking,
        true,
    );
}

#[test]
#[cfg(feature = "mio-driver")]
fn dedup_lost_responses_idempotent_mio() {
    lost_responses("dedup_lost_responses_idempotent_mio", Driver::Mio, true);
}

#[test]
fn dedup_lost_responses_without_idempotence_duplicates_blocking() {
    if let Some((dups, _)) = lost_responses(
        "dedup_lost_responses_without_idempotence_duplicates_blocking",
        Driver::Blocking,
        false,
    ) {
        assert!(
            dups > 0,
            "without idempotence lost responses must duplicate"
        );
    }
}

#[test]
#[cfg(feature = "mio-driver")]
fn dedup_lost_responses_without_idempotence_duplicates_mio() {
    if let Some((dups, _)) = lost_responses(
        "dedup_lost_responses_without_idempotence_duplicates_mio",
        Driver::Mio,
        false,
    ) {
        assert!(
            dups > 0,
            "without idempotence lost responses must duplicate"
        );
    }
}

// ---- 5. unknown topic on tansu ----------------------------------------------------------------

fn unknown_topic(test: &str, driver: Driver) {
    let Some(v) = require(test, &[TANSU, TANSU_BIN]) else {
        return;
    };
    let good = fresh_topic("known");
    tansu_create_topic(&v[1], &v[0], &good, 1);
    let missing = fresh_topic("never-created");
    let client = Client::start(driver, config(&v[0], &[("max.block.ms", "2000")]));
    let start = std::time::Instant::now();
    let f = client
        .send(kafka_sansio::producer::ProducerRecord::new(
            missing.as_str(),
            "lost",
        ))
        .expect("accepted while metadata is fetched");
    let ok = client
        .send(kafka_sansio::producer::ProducerRecord::new(
            good.as_str(),
            "kept",
        ))
        .expect("accepted");
    let r = outcome(f, Duration::from_secs(30));
    let took = start.elapsed();
    match r {
        Err(kafka_sansio::driver::Error::Delivery(
            kafka_sansio::producer::DeliveryError::TopicNotFound(ms),
        )) => assert!(
            ms >= 2000,
            "TopicNotFound after {ms} ms, before max.block.ms"
        ),
        other => panic!("{test}: expected TopicNotFound, got {other:?}"),
    }
    assert!(
        took < Duration::from_millis(2000 + 3000),
        "{test}: the failure took {took:?} for max.block.ms=2000"
    );
    let md = outcome(ok, Duration::from_secs(30)).expect("the known topic is delivered");
    assert_eq!(md.offset, 0);
    client.close();
    eprintln!("{test}: unknown topic failed with TopicNotFound after {took:?}");
}

#[test]
fn unknown_topic_tansu_blocking() {
    unknown_topic("unknown_topic_tansu_blocking", Driver::Blocking);
}

#[test]
#[cfg(feature = "mio-driver")]
fn unknown_topic_tansu_mio() {
    unknown_topic("unknown_topic_tansu_mio", Driver::Mio);
}
