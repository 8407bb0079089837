//! A whole producer session driven by fuzzer bytes against a [`MockCluster`]:
//! the entry point of the `producer_session` cargo-fuzz target, shared with
//! the stable replay test `tests/fuzz_corpus.rs`.
//!
//! The input is a config header followed by a little op language (see
//! [`fuzz_producer_session`]); the driver in between is deliberately
//! unreliable: it connects, disconnects, delivers responses in arbitrary
//! pieces, injects garbage and cluster faults whenever the input says so.
//!
//! One file of about 700 lines: the op interpreter, the unreliable network
//! and the invariant checks all work on one `Session`'s state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::mock::MockCluster;
use crate::producer::{
    Acks, ConnId, DeliveryError, Event, Producer, ProducerConfig, ProducerRecord, Transmit,
};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{ApiKey, Deframer};
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

/// Reads the input front to back; past the end every read is 0.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// The producer asked for it; the driver has not answered yet.
    Connecting,
    Open,
}

struct Conn {
    node: i32,
    state: ConnState,
    /// Request bytes from the producer, deframed for the mock.
    to_broker: Deframer,
    /// Response bytes from the mock not yet handed to the producer.
    to_client: BytesMut,
    /// The mock closes the connection once `to_client` is delivered.
    close_after: bool,
    /// Requests sent and awaiting a mock response on this connection.
    awaiting: usize,
    /// Mirrors the mock bytes delivered, to count whole responses.
    delivered: Deframer,
    /// Garbage was delivered: the producer's view of the stream is its own.
    garbage: bool,
}

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
    now: Instant,
    producer: Producer,
    cluster: MockCluster,
    acks: Acks,
    idempotent: bool,
    buffer_memory: usize,
    max_in_flight: usize,
    conns: BTreeMap<ConnId, Conn>,
    /// Connections the producer closed: it may name them no more.
    closed: BTreeSet<ConnId>,
    /// Connections the driver reported lost. Outputs queued before that may
    /// still name them (a `Send`, a `Close`); a driver ignores those.
    dropped: BTreeSet<ConnId>,
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
        Some(Session {
            now,
            producer,
            cluster,
            acks,
            idempotent,
            buffer_memory,
            max_in_flight,
            conns: BTreeMap::new(),
            closed: BTreeSet::new(),
            dropped: BTreeSet::new(),
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
                if let Some(t) = self.producer.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.producer.handle_timeout(self.now);
            }
            2 => {
                let (flags, partition, size) = (input.byte(), input.byte(), input.byte());
                self.send(flags, partition, size);
            }
            3 => {
                let _ = self.producer.flush(self.now);
            }
            4 => self.producer.close(self.now),
            5 => {
                let k = input.byte();
                if let Some(conn) = self.pick(k, |c| c.state == ConnState::Connecting) {
                    self.connect(conn);
                }
            }
            6 => {
                let k = input.byte();
                if let Some(conn) = self.pick(k, |c| c.state == ConnState::Open) {
                    self.conns.remove(&conn);
                    self.dropped.insert(conn);
                    self.producer.handle_disconnected(conn, self.now);
                }
            }
            7 => {
                let (k, n) = (input.byte(), input.byte());
                if let Some(conn) = self.pick(k, |c| {
                    c.state == ConnState::Open && (!c.to_client.is_empty() || c.close_after)
                }) {
                    self.deliver(conn, if n == 0 { usize::MAX } else { n as usize });
                }
            }
            8 => {
                let (k, n) = (input.byte(), input.byte());
                let bytes = input.take(n as usize).to_vec();
                if let Some(conn) = self.pick(k, |c| c.state == ConnState::Open) {
                    self.garbage = true;
                    self.conns.get_mut(&conn).expect("picked").garbage = true;
                    self.producer.handle_data(conn, &bytes, self.now);
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
        self.now += by;
        self.producer.handle_timeout(self.now);
    }

    /// The `k`-th (mod count) connection matching `f`, in id order.
    fn pick(&self, k: u8, f: impl Fn(&Conn) -> bool) -> Option<ConnId> {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| f(c))
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[k as usize % ids.len()])
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
        if let Ok(id) = self.producer.send(r, self.now) {
            assert!(id.0 >= next, "record id {} reused", id.0);
            self.ids.insert(id.0, tag);
        }
    }

    fn connect(&mut self, conn: ConnId) {
        let c = self.conns.get_mut(&conn).expect("known connection");
        if self.cluster.is_broker_down(c.node) {
            self.conns.remove(&conn);
            self.dropped.insert(conn);
            self.producer.handle_disconnected(conn, self.now);
        } else {
            c.state = ConnState::Open;
            self.producer.handle_connected(conn, self.now);
        }
    }

    /// Hands up to `n` pending mock bytes of `conn` to the producer; closes
    /// the connection when the mock asked for it and everything is delivered.
    fn deliver(&mut self, conn: ConnId, n: usize) {
        let c = self.conns.get_mut(&conn).expect("known connection");
        let piece = c.to_client.split_to(n.min(c.to_client.len())).freeze();
        if !piece.is_empty() {
            c.delivered.push(&piece);
            while let Some(_frame) = c.delivered.next_frame().expect("mock frames are framed") {
                c.awaiting -= 1;
            }
            self.producer.handle_data(conn, &piece, self.now);
        }
        // The producer may have closed it while reading.
        if let Some(c) = self.conns.get(&conn) {
            if c.to_client.is_empty() && c.close_after {
                self.conns.remove(&conn);
                self.dropped.insert(conn);
                self.producer.handle_disconnected(conn, self.now);
            }
        }
    }

    fn fault(&mut self, f: u8, a: u8, b: u8) {
        let brokers = self.cluster.broker_count() as i32;
        match f % 6 {
            0 => {
                let api = [
                    ApiKey::Produce,
                    ApiKey::Metadata,
                    ApiKey::InitProducerId,
                    ApiKey::ApiVersions,
                ][a as usize % 4];
                self.cluster
                    .push_errors(api, vec![CODES[b as usize % CODES.len()]]);
            }
            1 => self.cluster.fail_after_append(1 + a as usize % 2),
            2 => {
                let topic = TOPICS[a as usize % 2];
                let _ = self
                    .cluster
                    .set_leader(topic, (a / 2) as i32 % 4, b as i32 % brokers);
            }
            3 => {
                let n = a as i32 % brokers;
                let down = self.cluster.is_broker_down(n);
                self.cluster.set_broker_down(n, !down);
            }
            4 => self.cluster.throttle(a as i32 % brokers, b as i32),
            _ => self.cluster.push_errors(
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
            let connecting: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.state == ConnState::Connecting)
                .map(|(id, _)| *id)
                .collect();
            let deliverable: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.state == ConnState::Open && (!c.to_client.is_empty() || c.close_after)
                })
                .map(|(id, _)| *id)
                .collect();
            if connecting.is_empty() && deliverable.is_empty() {
                return;
            }
            for conn in connecting {
                if self.conns.contains_key(&conn) {
                    self.connect(conn);
                }
            }
            for conn in deliverable {
                if self.conns.contains_key(&conn) {
                    self.deliver(conn, usize::MAX);
                }
            }
            self.drain();
        }
    }

    /// Drains every output of the producer, acting on transmits and checking events.
    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.producer.poll_transmit(self.now) {
                any = true;
                self.transmit(t);
            }
            while let Some(e) = self.producer.poll_event() {
                any = true;
                self.event(e);
            }
            if !any {
                break;
            }
        }
        let _ = self.producer.poll_timeout();
        self.check();
    }

    fn transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Connect { conn, host, port } => {
                assert!(
                    !self.conns.contains_key(&conn)
                        && !self.closed.contains(&conn)
                        && !self.dropped.contains(&conn),
                    "connection id {conn:?} reused"
                );
                let node = i32::from(port) - 9000;
                assert!(
                    (0..self.cluster.broker_count() as i32).contains(&node)
                        && host == format!("b{node}"),
                    "connect to an address nobody advertised: {host}:{port}"
                );
                self.conns.insert(
                    conn,
                    Conn {
                        node,
                        state: ConnState::Connecting,
                        to_broker: Deframer::new(64 << 20),
                        to_client: BytesMut::new(),
                        close_after: false,
                        awaiting: 0,
                        delivered: Deframer::new(64 << 20),
                        garbage: false,
                    },
                );
            }
            Transmit::Send { conn, data } => {
                assert!(!self.closed.contains(&conn), "send on closed {conn:?}");
                if self.dropped.contains(&conn) {
                    return;
                }
                // Written to the socket at once (acks=0 completes on this).
                self.producer.handle_written(conn, data.len(), self.now);
                let c = self
                    .conns
                    .get_mut(&conn)
                    .expect("send on an unknown connection");
                assert_eq!(c.state, ConnState::Open, "send before {conn:?} connected");
                if c.close_after {
                    // The mock hung up; the bytes go nowhere.
                    return;
                }
                c.to_broker.push(&data);
                while let Some(frame) = c
                    .to_broker
                    .next_frame()
                    .expect("the producer's frames are well formed")
                {
                    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
                    let res = self.cluster.handle_request(c.node, frame, self.now);
                    let answered = self.acks != Acks::None || api_key != ApiKey::Produce.code();
                    if answered && !res.close {
                        c.awaiting += 1;
                        assert!(
                            c.garbage || c.awaiting <= self.max_in_flight,
                            "{} requests in flight on {conn:?}, max.in.flight {}",
                            c.awaiting,
                            self.max_in_flight
                        );
                    }
                    if let Some(r) = res.response {
                        // The mock's frame includes its size prefix.
                        c.to_client.extend_from_slice(&r);
                    }
                    if res.close {
                        c.close_after = true;
                        break;
                    }
                }
            }
            Transmit::Close { conn } => {
                assert!(
                    self.closed.insert(conn),
                    "close of {conn:?}, already closed"
                );
                assert!(
                    self.conns.remove(&conn).is_some() || self.dropped.contains(&conn),
                    "close of unknown {conn:?}"
                );
            }
        }
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
            Event::Closed => {
                self.closed_events += 1;
                assert_eq!(
                    self.producer.pending_records(),
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
        assert!(
            self.producer.buffered_bytes() <= self.buffer_memory,
            "buffer.memory exceeded: {} > {}",
            self.producer.buffered_bytes(),
            self.buffer_memory
        );
        assert_eq!(
            self.producer.pending_records(),
            self.ids.len() - self.outcomes.len(),
            "pending_records disagrees with the events"
        );
        assert!(self.closed_events <= 1, "Closed emitted twice");
        assert_eq!(self.producer.is_closed(), self.closed_events == 1);
    }

    fn finish(mut self) {
        self.producer.close(self.now);
        self.drain();
        let closed_at = self.now;
        let deadline =
            closed_at + Duration::from_millis(DELIVERY_TIMEOUT_MS + REQUEST_TIMEOUT_MS + 1);
        for n in 0..self.cluster.broker_count() as i32 {
            self.cluster.set_broker_down(n, false);
        }
        let mut steps = 0;
        while !self.producer.is_closed() && self.now < deadline && steps < 10_000 {
            steps += 1;
            self.cooperate();
            let Some(t) = self.producer.poll_timeout() else {
                break;
            };
            self.now = self.now.max(t).min(deadline);
            self.producer.handle_timeout(self.now);
            self.drain();
        }
        if steps < 10_000 {
            assert_eq!(
                self.producer.pending_records(),
                0,
                "records without an outcome {} ms after close",
                (self.now - closed_at).as_millis()
            );
        }
        if !self.producer.is_closed() {
            self.producer.abort(self.now);
            self.drain();
        }
        assert_eq!(self.closed_events, 1, "no Closed after abort");
        assert_eq!(self.outcomes.len(), self.ids.len());
        assert_eq!(self.producer.buffered_bytes(), 0, "memory not returned");
        if !self.garbage {
            self.check_log();
        }
    }

    /// Compares the outcomes with the mock's logs (without garbage, every
    /// acknowledgement is the mock's).
    fn check_log(&self) {
        // tag -> where it is in the logs.
        let mut in_log: BTreeMap<u64, Vec<(String, i32, i64)>> = BTreeMap::new();
        for topic in self.cluster.topics() {
            for p in 0..self.cluster.partition_count(&topic).unwrap_or(0) {
                for r in self
                    .cluster
                    .records(&topic, p)
                    .expect("the mock's log decodes")
                {
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
