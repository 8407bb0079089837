//! A whole producer session driven by fuzzer bytes against a [`MockCluster`]:
//! the entry point of the `producer_session` cargo-fuzz target, shared with
//! the stable replay test `tests/fuzz_corpus.rs`.
//!
//! The input is a config header followed by a little op language (see
//! [`fuzz_producer_session`]); the driver in between is deliberately
//! unreliable: a [`Pair`] with its network held, it connects, disconnects,
//! delivers responses in arbitrary pieces, injects garbage and cluster
//! faults whenever the input says so.
//!
//! One file of about 600 lines: the op interpreter and the invariant checks
//! work on one `Session`'s state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::input::{pick, Input};
use crate::mock::{MockCluster, Pair};
use crate::producer::{
    Acks, ConnId, DeliveryError, Event, Producer, ProducerConfig, ProducerRecord,
};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::Compression;

/// Topics a session sends to: one created up front, one auto-created by the
/// mock, one whose name the mock refuses (INVALID_TOPIC_EXCEPTION).
const TOPICS: [&str; 3] = ["a", "b", "bad topic"];
/// Codes injected into the mock's queues.
const CODES: [ErrorCode; 10] = [
    ErrorCode::NotLeaderOrFollower,
    ErrorCode::RequestTimedOut,
    ErrorCode::NotEnoughReplicas,
    ErrorCode::NotEnoughReplicasAfterAppend,
    ErrorCode::CorruptMessage,
    ErrorCode::OutOfOrderSequenceNumber,
    ErrorCode::UnknownProducerId,
    ErrorCode::InvalidProducerEpoch,
    ErrorCode::TopicAuthorizationFailed,
    ErrorCode::UnsupportedVersion,
];
const DELIVERY_TIMEOUT_MS: u64 = 3_000;
const REQUEST_TIMEOUT_MS: u64 = 1_000;
const MAX_BLOCK_MS: u64 = 2_000;

/// The final outcome of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Delivered {
        topic: String,
        partition: i32,
        offset: i64,
    },
    Failed(DeliveryError),
}

struct Session {
    /// The producer, the cluster and the held network between them.
    pair: Pair,
    /// How many of the pair's dialed addresses were checked.
    dials_checked: usize,
    acks: Acks,
    idempotent: bool,
    buffer_memory: usize,
    max_in_flight: usize,
    /// Connections garbage was delivered on: the producer's view of their
    /// stream is its own.
    garbage_conns: BTreeSet<ConnId>,
    /// Accepted record id -> its tag (first 8 bytes of its value).
    ids: BTreeMap<u64, u64>,
    outcomes: BTreeMap<u64, Outcome>,
    next_tag: u64,
    closed_events: usize,
    /// Garbage reached the producer: the mock's log no longer explains acknowledgements.
    garbage: bool,
}

/// Runs one fuzzer-driven session; panics when an invariant breaks.
///
/// Input: 4 config bytes, then ops until the input ends.
/// - byte 0: acks (0, 1, all) and idempotence; byte 1: `linger.ms` and
///   `batch.size`; byte 2: in-flight limit, `buffer.memory` and compression;
///   byte 3: brokers, partitions of topic "a", and of auto-created topics.
/// - op byte % 11: 0 advance time by `b*b/8` ms; 1 advance to the next
///   deadline; 2 send (flags, partition, value-size bytes); 3 flush; 4 close;
///   5 connect (or refuse, if the broker is down) pending connection `k`;
///   6 disconnect open connection `k`; 7 deliver `n` (0: all) pending mock
///   response bytes on connection `k`; 8 deliver `n` raw input bytes on
///   connection `k`; 9 a mock fault (push_errors, fail_after_append,
///   set_leader, broker down/up, throttle); 10 a cooperative round (connect
///   everything, deliver everything).
///
/// Invariants, after every op: at most one final event per record id and
/// none for ids never returned; `pending_records` equals accepted minus
/// outcomes; `buffered_bytes <= buffer.memory`; sends only on open
/// connections and nothing after a close; at most `max.in.flight` requests
/// awaiting an answer per connection; `Closed` at most once and only with
/// nothing pending. At the end the session closes, a cooperative driver runs
/// until `delivery.timeout.ms` + `request.timeout.ms` past the close (every
/// record must have its outcome by then), then `abort` if not closed: after
/// that `Closed` was emitted and memory is returned. Without garbage,
/// acknowledged records are in the mock's log at the reported offset
/// (exactly once with idempotence), and idempotent failures that cannot have
/// been persisted are not in it.
pub fn fuzz_producer_session(data: &[u8]) {
    let mut input = Input(data);
    let Some(mut s) = Session::new(&mut input) else {
        return;
    };
    s.drain();
    let mut ops = 0;
    while !input.is_empty() && ops < 2_000 {
        ops += 1;
        s.op(&mut input);
        s.drain();
    }
    s.finish();
}

impl Session {
    fn new(input: &mut Input) -> Option<Session> {
        let (c0, c1, c2, c3) = (input.byte(), input.byte(), input.byte(), input.byte());
        let acks = [Acks::None, Acks::Leader, Acks::All, Acks::All][c0 as usize % 4];
        let idempotent = acks == Acks::All && c0 & 0x04 == 0;
        let linger_ms = [0, 1, 5, 50][c1 as usize % 4];
        let batch_size = [0, 100, 1000, 16384][(c1 as usize >> 2) % 4];
        let max_in_flight = 1 + (c2 as usize % 5);
        let buffer_memory = [2048, 8192, 65536, 1 << 20][(c2 as usize / 5) % 4];
        let compression = Compression::ALL[(c2 as usize / 20) % Compression::ALL.len()];
        let compression = if compression.is_available() {
            compression
        } else {
            Compression::None
        };
        let brokers = 1 + (c3 as usize % 3);
        let partitions = 1 + ((c3 as i32 / 3) % 4);
        let default_partitions = 1 + ((c3 as i32 / 12) % 3);

        let mut cluster = MockCluster::new(brokers);
        for n in 0..brokers as i32 {
            cluster.set_broker_address(n, format!("b{n}"), 9000 + n as u16);
        }
        cluster.set_default_partitions(default_partitions);
        cluster.create_topic(TOPICS[0], partitions).ok()?;
        let bootstrap: Vec<String> = (0..brokers).map(|n| format!("b{n}:{}", 9000 + n)).collect();
        let mut config = ProducerConfig {
            bootstrap_servers: bootstrap,
            acks,
            enable_idempotence: idempotent,
            idempotence_explicit: idempotent,
            linger: Duration::from_millis(linger_ms),
            batch_size,
            buffer_memory,
            max_in_flight,
            compression,
            delivery_timeout: Duration::from_millis(DELIVERY_TIMEOUT_MS),
            request_timeout: Duration::from_millis(REQUEST_TIMEOUT_MS),
            max_block: Duration::from_millis(MAX_BLOCK_MS),
            connect_timeout: Duration::from_millis(1_500),
            retry_backoff: Duration::from_millis(20),
            retry_backoff_max: Duration::from_millis(200),
            rng_seed: u64::from_be_bytes([c0, c1, c2, c3, 0, 0, 0, 0]),
            ..ProducerConfig::default()
        };
        config.validate().expect("the fuzz configs are valid");
        let now = Instant::now();
        let producer = Producer::new(config, now, 1_700_000_000_000).expect("valid config");
        let mut pair = Pair::new(producer, cluster, now);
        pair.hold_network(true);
        Some(Session {
            pair,
            acks,
            idempotent,
            buffer_memory,
            max_in_flight,
            garbage_conns: BTreeSet::new(),
            dials_checked: 0,
            ids: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            next_tag: 0,
            closed_events: 0,
            garbage: false,
        })
    }

    fn op(&mut self, input: &mut Input) {
        match input.byte() % 11 {
            0 => {
                let b = input.byte() as u64;
                self.advance(Duration::from_millis(b * b / 8));
            }
            1 => {
                if let Some(t) = self.pair.producer.poll_timeout() {
                    self.pair.now = self.pair.now.max(t);
                }
                self.pair.producer.handle_timeout(self.pair.now);
            }
            2 => {
                let (flags, partition, size) = (input.byte(), input.byte(), input.byte());
                self.send(flags, partition, size);
            }
            3 => {
                let _ = self.pair.core(|p, now| p.flush(now));
            }
            4 => self.pair.core(|p, now| p.close(now)),
            5 => {
                let k = input.byte();
                if let Some(conn) = pick(k, self.pair.connecting()) {
                    self.pair.answer_connect(conn);
                }
            }
            6 => {
                let k = input.byte();
                if let Some(conn) = pick(k, self.open()) {
                    self.pair.disconnect(conn);
                }
            }
            7 => {
                let (k, n) = (input.byte(), input.byte());
                if let Some(conn) = pick(k, self.pair.deliverable()) {
                    let n = if n == 0 { usize::MAX } else { n as usize };
                    self.pair.deliver_answers(conn, n);
                }
            }
            8 => {
                let (k, n) = (input.byte(), input.byte());
                let bytes = input.take(n as usize).to_vec();
                if let Some(conn) = pick(k, self.open()) {
                    self.garbage = true;
                    self.garbage_conns.insert(conn);
                    self.pair.deliver(conn, &bytes);
                }
            }
            9 => {
                let (f, a, b) = (input.byte(), input.byte(), input.byte());
                self.fault(f, a, b);
            }
            _ => self.cooperate(),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.pair.advance(by);
    }

    /// The open connections, in id order.
    fn open(&self) -> Vec<ConnId> {
        self.pair.connections().map(|(c, _)| c).collect()
    }

    fn cluster(&mut self) -> &mut MockCluster {
        &mut self.pair.broker
    }

    fn send(&mut self, flags: u8, partition: u8, size: u8) {
        let topic = TOPICS[(flags & 3) as usize % 3];
        let tag = self.next_tag;
        self.next_tag += 1;
        // A unique tag first, so that the log can be matched to record ids.
        let mut value = tag.to_be_bytes().to_vec();
        value.resize(8 + size as usize * size as usize / 4, b'v');
        let mut r = ProducerRecord::new(topic, value);
        if flags & 0x04 != 0 {
            r.key = Some(Bytes::copy_from_slice(&[partition, flags]));
        }
        if flags & 0x08 != 0 {
            // Mostly valid partitions, sometimes not.
            r.partition = Some(partition as i32 % 6 - 1);
        }
        if flags & 0x10 != 0 {
            r = r.header("h", vec![flags]);
        }
        let next = self.ids.keys().next_back().map_or(0, |i| i + 1);
        if let Ok(id) = self.pair.core(|p, now| p.send(r, now)) {
            assert!(id.0 >= next, "record id {} reused", id.0);
            self.ids.insert(id.0, tag);
        }
    }

    fn fault(&mut self, f: u8, a: u8, b: u8) {
        let brokers = self.cluster().broker_count() as i32;
        match f % 6 {
            0 => {
                let api = [
                    ApiKey::Produce,
                    ApiKey::Metadata,
                    ApiKey::InitProducerId,
                    ApiKey::ApiVersions,
                ][a as usize % 4];
                self.cluster()
                    .push_errors(api, vec![CODES[b as usize % CODES.len()]]);
            }
            1 => self.cluster().fail_after_append(1 + a as usize % 2),
            2 => {
                let topic = TOPICS[a as usize % 2];
                let _ = self
                    .cluster()
                    .set_leader(topic, (a / 2) as i32 % 4, b as i32 % brokers);
            }
            3 => {
                let n = a as i32 % brokers;
                let down = self.cluster().is_broker_down(n);
                self.cluster().set_broker_down(n, !down);
            }
            4 => self.cluster().throttle(a as i32 % brokers, b as i32),
            _ => self.cluster().push_errors(
                ApiKey::Produce,
                vec![
                    CODES[a as usize % CODES.len()],
                    CODES[b as usize % CODES.len()],
                ],
            ),
        }
    }

    /// Connects every pending connection and delivers every pending byte.
    fn cooperate(&mut self) {
        for _ in 0..8 {
            let connecting = self.pair.connecting();
            let deliverable = self.pair.deliverable();
            if connecting.is_empty() && deliverable.is_empty() {
                return;
            }
            for conn in connecting {
                self.pair.answer_connect(conn);
            }
            for conn in deliverable {
                self.pair.deliver_answers(conn, usize::MAX);
            }
            self.drain();
        }
    }

    /// Drains every output of the producer (the pair acts on the transmits
    /// and holds the producer to the driver contract), checking events.
    fn drain(&mut self) {
        self.pair.run_until_idle();
        for e in std::mem::take(&mut self.pair.events) {
            self.event(e);
        }
        let _ = self.pair.producer.poll_timeout();
        self.check();
        let cluster = &self.pair.broker;
        for (host, port) in &self.pair.dialed()[self.dials_checked..] {
            assert!(
                (0..cluster.broker_count() as i32)
                    .any(|n| cluster.broker_address(n) == Some((host, *port))),
                "connect to an address nobody advertised: {host}:{port}"
            );
        }
        self.dials_checked = self.pair.dialed().len();
    }

    fn event(&mut self, e: Event) {
        assert_eq!(self.closed_events, 0, "event after Closed: {e:?}");
        let mut outcome = |id: u64, o: Outcome| {
            assert!(
                self.ids.contains_key(&id),
                "outcome for unknown id {id}: {o:?}"
            );
            if let Some(prev) = self.outcomes.insert(id, o) {
                panic!("second outcome for record {id}: first {prev:?}");
            }
        };
        match e {
            Event::Delivered(d) => {
                assert_eq!(d.records.len(), d.timestamps.len());
                for (id, m) in d.metadata() {
                    outcome(
                        id.0,
                        Outcome::Delivered {
                            topic: m.topic.to_string(),
                            partition: m.partition,
                            offset: m.offset,
                        },
                    );
                }
            }
            Event::Failed(f) => {
                for id in f.records.iter() {
                    outcome(id.0, Outcome::Failed(f.error.clone()));
                }
            }
            // The session's producer is not transactional.
            Event::Transaction(o) => panic!("transaction outcome without transactional.id: {o:?}"),
            Event::Closed => {
                self.closed_events += 1;
                assert_eq!(
                    self.pair.producer.pending_records(),
                    0,
                    "Closed with records pending"
                );
                assert_eq!(
                    self.outcomes.len(),
                    self.ids.len(),
                    "Closed before every outcome"
                );
            }
        }
    }

    fn check(&self) {
        let producer = &self.pair.producer;
        assert!(
            producer.buffered_bytes() <= self.buffer_memory,
            "buffer.memory exceeded: {} > {}",
            producer.buffered_bytes(),
            self.buffer_memory
        );
        for (conn, _) in self.pair.connections() {
            let awaiting = self.pair.answers_in_flight(conn);
            assert!(
                self.garbage_conns.contains(&conn) || awaiting <= self.max_in_flight,
                "{awaiting} requests in flight on {conn:?}, max.in.flight {}",
                self.max_in_flight
            );
        }
        assert_eq!(
            producer.pending_records(),
            self.ids.len() - self.outcomes.len(),
            "pending_records disagrees with the events"
        );
        assert!(self.closed_events <= 1, "Closed emitted twice");
        assert_eq!(producer.is_closed(), self.closed_events == 1);
    }

    fn finish(mut self) {
        self.pair.core(|p, now| p.close(now));
        self.drain();
        let closed_at = self.pair.now;
        let deadline =
            closed_at + Duration::from_millis(DELIVERY_TIMEOUT_MS + REQUEST_TIMEOUT_MS + 1);
        for n in 0..self.cluster().broker_count() as i32 {
            self.cluster().set_broker_down(n, false);
        }
        let mut steps = 0;
        while !self.pair.producer.is_closed() && self.pair.now < deadline && steps < 10_000 {
            steps += 1;
            self.cooperate();
            let Some(t) = self.pair.producer.poll_timeout() else {
                break;
            };
            self.pair.now = self.pair.now.max(t).min(deadline);
            self.pair.core(|p, now| p.handle_timeout(now));
            self.drain();
        }
        if steps < 10_000 {
            assert_eq!(
                self.pair.producer.pending_records(),
                0,
                "records without an outcome {} ms after close",
                (self.pair.now - closed_at).as_millis()
            );
        }
        if !self.pair.producer.is_closed() {
            self.pair.core(|p, now| p.abort(now));
            self.drain();
        }
        assert_eq!(self.closed_events, 1, "no Closed after abort");
        assert_eq!(self.outcomes.len(), self.ids.len());
        assert_eq!(
            self.pair.producer.buffered_bytes(),
            0,
            "memory not returned"
        );
        if !self.garbage {
            self.check_log();
        }
    }

    /// Compares the outcomes with the mock's logs (without garbage, every
    /// acknowledgement is the mock's).
    fn check_log(&self) {
        // tag -> where it is in the logs.
        let mut in_log: BTreeMap<u64, Vec<(String, i32, i64)>> = BTreeMap::new();
        let cluster = &self.pair.broker;
        for topic in cluster.topics() {
            for p in 0..cluster.partition_count(&topic).unwrap_or(0) {
                for r in cluster.records(&topic, p).expect("the mock's log decodes") {
                    let v = r.value.expect("values are set");
                    let tag = u64::from_be_bytes(v[..8].try_into().expect("tagged value"));
                    in_log
                        .entry(tag)
                        .or_default()
                        .push((topic.clone(), p, r.offset));
                }
            }
        }
        for (id, o) in &self.outcomes {
            let tag = self.ids[id];
            let copies = in_log.get(&tag).map_or(&[][..], Vec::as_slice);
            if self.idempotent {
                assert!(copies.len() <= 1, "record {id} duplicated: {copies:?}");
            }
            match o {
                Outcome::Delivered {
                    topic,
                    partition,
                    offset,
                } => {
                    if self.acks == Acks::None {
                        continue;
                    }
                    assert!(
                        copies.contains(&(topic.clone(), *partition, *offset)),
                        "record {id} acknowledged at {topic}/{partition}@{offset}, log has {copies:?}"
                    );
                }
                Outcome::Failed(e) => {
                    if self.idempotent && !e.maybe_persisted() {
                        assert!(
                            copies.is_empty(),
                            "record {id} failed with {e} (not persisted) but is in the log at {copies:?}"
                        );
                    }
                }
            }
        }
    }
}
