//! Deterministic simulation: the sans-IO producer against the sans-IO mock
//! cluster over a simulated network (latency, arbitrary read splits,
//! disconnects, responses lost after the append, leader moves, brokers going
//! down, throttling, retriable and fatal errors, rebootstraps), with time
//! jumping to the next deadline. With the `sasl` feature a share of the
//! scenarios authenticate (SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 or
//! SCRAM-SHA-512), some with session lifetimes short enough that
//! re-authentication (KIP-368) runs mid-stream, and SASL faults (a refused
//! exchange, a connection broken mid-handshake) join the others. (TLS is not
//! simulated: rustls draws key shares and signatures from the OS, so a seed
//! would no longer replay byte for byte; the driver suite covers it.) Every scenario is a seed: a failure prints it, and
//! `SIM_SEED=<seed> cargo test --test simulation replay -- --nocapture` replays it.
//!
//! `SIM_SCENARIOS=N` sets how many random scenarios run (default 2000).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::mock::MockCluster;
use kafka_sansio::producer::security::SaslMechanism;
use kafka_sansio::producer::{
    Acks, ConnId, DeliveryError, Event, Producer, ProducerConfig, ProducerRecord, SendError,
    Transmit,
};
use kafka_sansio::protocol::frame::{ApiKey, Deframer};
use kafka_sansio::protocol::ErrorCode;

/// The simulation's own randomness (the crate's SplitMix64, seeded apart from
/// the producer's).
struct Rng(kafka_sansio::producer::rng::Rng);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(kafka_sansio::producer::rng::Rng::new(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.0.below(n)
        }
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

const TOPIC: &str = "sim";

/// The knobs of one scenario, all drawn from its seed.
#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    brokers: usize,
    partitions: i32,
    records: usize,
    acks: Acks,
    idempotent: bool,
    linger_ms: u64,
    batch_size: usize,
    max_in_flight: usize,
    buffer_memory: usize,
    delivery_timeout_ms: u64,
    latency_ms: u64,
    /// Per-mille chance, at each simulation step, of each kind of fault.
    fault_rate: u64,
    fatal: bool,
    keyed: bool,
    /// `compression.type` (codecs compiled in under `--all-features`).
    compression: &'static str,
    /// SASL_PLAINTEXT with this mechanism (feature `sasl`), and the session
    /// lifetime the brokers give, if any.
    sasl: Option<(SaslMechanism, Option<Duration>)>,
}

impl Scenario {
    fn from_seed(seed: u64) -> Scenario {
        let mut r = Rng::new(seed);
        let acks = match r.below(10) {
            0 => Acks::None,
            1 | 2 => Acks::Leader,
            _ => Acks::All,
        };
        let idempotent = acks == Acks::All && r.below(5) != 0;
        let mut sc = Scenario {
            seed,
            brokers: 1 + r.below(3) as usize,
            partitions: 1 + r.below(5) as i32,
            records: 1 + r.below(300) as usize,
            acks,
            idempotent,
            linger_ms: [0, 0, 1, 5, 20][r.below(5) as usize],
            batch_size: [120, 300, 1000, 16384][r.below(4) as usize],
            max_in_flight: 1 + r.below(5) as usize,
            buffer_memory: [4096, 40_000, 1 << 20][r.below(3) as usize],
            delivery_timeout_ms: [3_000, 10_000, 120_000][r.below(3) as usize],
            latency_ms: r.below(20),
            fault_rate: [0, 2, 10, 40][r.below(4) as usize],
            fatal: r.below(40) == 0,
            keyed: r.below(2) == 0,
            compression: {
                let available: Vec<&'static str> = ["gzip", "snappy", "lz4", "zstd"]
                    .into_iter()
                    .filter(|c| {
                        kafka_sansio::protocol::Compression::from_name(c)
                            .is_some_and(|c| c.is_available())
                    })
                    .collect();
                if available.is_empty() || r.below(4) != 0 {
                    "none"
                } else {
                    available[r.below(available.len() as u64) as usize]
                }
            },
            sasl: None,
        };
        // Drawn last, so that the knobs above keep their values per seed.
        sc.sasl = (cfg!(feature = "sasl") && r.below(3) == 0).then(|| {
            let mechanism = [
                SaslMechanism::Plain,
                SaslMechanism::ScramSha256,
                SaslMechanism::ScramSha512,
            ][r.below(3) as usize];
            // At least 1.2 s: the broker lets a connection re-authenticate
            // at most once a second, and the client starts at 85% of it.
            let lifetime = (r.below(2) == 0).then(|| Duration::from_millis(1200 + r.below(1800)));
            (mechanism, lifetime)
        });
        // A fault-free run must deliver everything, so its delivery timeout
        // must outlast the slowest drain a scenario can ask for: 300 records
        // two to a batch, one request in flight, a 40 ms round trip is 6 s.
        // (With 3 s, the last records of such a run time out as they should.)
        if sc.fault_rate == 0 {
            sc.delivery_timeout_ms = sc.delivery_timeout_ms.max(10_000);
        }
        sc
    }
}

#[derive(Debug)]
enum SimEvent {
    /// The application sends record number `n`.
    Send(usize),
    Connected(ConnId),
    ConnectFailed(ConnId),
    ToBroker(ConnId, u64, Bytes),
    ToClient(ConnId, u64, Bytes),
    /// The connection (of that generation) breaks.
    Break(ConnId, u64),
    BrokerUp(i32),
    Flush,
    Close,
}

struct SimConn {
    node: i32,
    generation: u64,
    alive: bool,
    broker_rx: Deframer,
    /// Mirrors what the producer received, to count whole responses.
    client_rx: Deframer,
    /// Mirrors what the producer sent, to check whole requests.
    sent_rx: Deframer,
    /// Last delivery time per direction, to keep each direction in order.
    last_to_broker: Instant,
    /// When the producer last wrote: the pieces of one request, written at
    /// the same instant, travel together (as one `writev` does).
    last_write: Option<Instant>,
    last_to_client: Instant,
    /// The answered requests in flight, oldest first, as their API keys
    /// (a broker answers a connection's requests in order).
    requests_in_flight: VecDeque<i16>,
    /// Carried a Produce request.
    produced: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Delivered { partition: i32, offset: i64 },
    Failed(DeliveryError),
}

struct Sim {
    sc: Scenario,
    rng: Rng,
    now: Instant,
    start: Instant,
    producer: Producer,
    cluster: MockCluster,
    conns: BTreeMap<ConnId, SimConn>,
    generation: u64,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    payloads: HashMap<usize, SimEvent>,
    next_event: u64,
    /// Sim record number -> producer RecordId.
    ids: BTreeMap<usize, u64>,
    /// RecordId -> sim record number.
    numbers: BTreeMap<u64, usize>,
    outcomes: BTreeMap<u64, Outcome>,
    refused: usize,
    closed: bool,
    steps: u64,
}

impl Sim {
    fn new(sc: Scenario) -> Sim {
        let start = Instant::now();
        let mut cluster = MockCluster::new(sc.brokers);
        for n in 0..sc.brokers as i32 {
            cluster.set_broker_address(n, format!("b{n}"), 9000 + n as u16);
        }
        cluster.create_topic(TOPIC, sc.partitions).unwrap();
        #[cfg(feature = "sasl")]
        if let Some((mechanism, lifetime)) = sc.sasl {
            cluster.enable_sasl(&[mechanism]).unwrap();
            cluster
                .add_sasl_user(mechanism, "sim", "sim-secret")
                .unwrap();
            cluster.set_session_lifetime(lifetime);
        }
        let bootstrap: Vec<String> = (0..sc.brokers)
            .map(|n| format!("b{n}:{}", 9000 + n))
            .collect();
        let acks = match sc.acks {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        };
        let mut props = vec![
            ("bootstrap.servers", bootstrap.join(",")),
            ("acks", acks.to_owned()),
            ("enable.idempotence", sc.idempotent.to_string()),
            ("linger.ms", sc.linger_ms.to_string()),
            ("batch.size", sc.batch_size.to_string()),
            (
                "max.in.flight.requests.per.connection",
                sc.max_in_flight.to_string(),
            ),
            ("buffer.memory", sc.buffer_memory.to_string()),
            ("delivery.timeout.ms", sc.delivery_timeout_ms.to_string()),
            ("request.timeout.ms", "1500".to_owned()),
            ("max.block.ms", "2000".to_owned()),
            ("kafka_sansio.rng.seed", sc.seed.to_string()),
            ("compression.type", sc.compression.to_owned()),
        ];
        if let Some((mechanism, _)) = sc.sasl {
            props.extend([
                ("security.protocol", "SASL_PLAINTEXT".to_owned()),
                ("sasl.mechanism", mechanism.name().to_owned()),
                ("sasl.username", "sim".to_owned()),
                ("sasl.password", "sim-secret".to_owned()),
            ]);
        }
        let config =
            ProducerConfig::from_properties(props.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        let producer = Producer::new(config, start, 1_700_000_000_000).unwrap();
        let mut sim = Sim {
            rng: Rng::new(sc.seed ^ 0xabcdef),
            sc,
            now: start,
            start,
            producer,
            cluster,
            conns: BTreeMap::new(),
            generation: 0,
            queue: BinaryHeap::new(),
            payloads: HashMap::new(),
            next_event: 0,
            ids: BTreeMap::new(),
            numbers: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            refused: 0,
            closed: false,
            steps: 0,
        };
        // Sends spread over time, in bursts; over several session lifetimes
        // when sessions expire, so that re-authentication runs mid-stream.
        let stretch = match sim.sc.sasl {
            Some((_, Some(_))) => 8,
            _ => 1,
        };
        let mut t = start;
        for n in 0..sim.sc.records {
            if sim.rng.chance(300) {
                t += Duration::from_micros(sim.rng.below(20_000) * stretch);
            }
            sim.schedule(t, SimEvent::Send(n));
        }
        let end = t + Duration::from_millis(1);
        sim.schedule(end, SimEvent::Flush);
        let close_at = end + Duration::from_millis(sim.rng.below(50));
        sim.schedule(close_at, SimEvent::Close);
        sim
    }

    fn schedule(&mut self, at: Instant, e: SimEvent) {
        let k = self.next_event as usize;
        self.next_event += 1;
        self.payloads.insert(k, e);
        self.queue.push(Reverse((at, k as u64, k)));
    }

    fn latency(&mut self) -> Duration {
        Duration::from_micros(
            self.sc.latency_ms * 1000 / 2 + self.rng.below(self.sc.latency_ms * 500 + 1),
        )
    }

    /// Delivers `data` over `conn` in one direction, in order, split into random pieces.
    fn transfer(&mut self, conn: ConnId, to_broker: bool, data: Bytes) {
        let lat = self.latency();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let gen = c.generation;
        let together = to_broker && c.last_write == Some(self.now);
        if to_broker {
            c.last_write = Some(self.now);
        }
        let last = if to_broker {
            &mut c.last_to_broker
        } else {
            &mut c.last_to_client
        };
        let at = if together {
            *last
        } else {
            (self.now + lat).max(*last)
        };
        *last = at;
        let mut rest = data;
        while !rest.is_empty() {
            let n = if self.rng.chance(500) {
                rest.len()
            } else {
                1 + self.rng.below(rest.len() as u64) as usize
            };
            let piece = rest.split_to(n);
            let e = if to_broker {
                SimEvent::ToBroker(conn, gen, piece)
            } else {
                SimEvent::ToClient(conn, gen, piece)
            };
            self.schedule(at, e);
        }
    }

    /// Drains the producer's outputs after every input.
    fn pump(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.producer.poll_transmit(self.now) {
                any = true;
                match t {
                    Transmit::Connect { conn, port, .. } => {
                        let node = (port - 9000) as i32;
                        self.generation += 1;
                        let lat = self.latency();
                        self.conns.insert(
                            conn,
                            SimConn {
                                node,
                                generation: self.generation,
                                alive: true,
                                broker_rx: Deframer::new(64 << 20),
                                client_rx: Deframer::new(64 << 20),
                                sent_rx: Deframer::new(64 << 20),
                                last_to_broker: self.now,
                                last_write: None,
                                last_to_client: self.now,
                                requests_in_flight: VecDeque::new(),
                                produced: false,
                            },
                        );
                        let e = if self.cluster.is_broker_down(node)
                            || self.rng.chance(self.sc.fault_rate)
                        {
                            SimEvent::ConnectFailed(conn)
                        } else {
                            SimEvent::Connected(conn)
                        };
                        self.schedule(self.now + lat, e);
                    }
                    Transmit::Send { conn, data } => {
                        let c = self
                            .conns
                            .get_mut(&conn)
                            .expect("send on a known connection");
                        assert!(
                            c.alive,
                            "send on a connection the producer was told is closed"
                        );
                        // A request may take several sends (Produce batches go
                        // out as their own buffers): check whole requests.
                        c.sent_rx.push(&data);
                        let mut api_keys = Vec::new();
                        while let Some(frame) = c
                            .sent_rx
                            .next_frame()
                            .expect("producer frames are well formed")
                        {
                            api_keys.push(i16::from_be_bytes([frame[0], frame[1]]));
                        }
                        for api_key in api_keys {
                            if api_key == ApiKey::Produce.code() {
                                // One producing connection per broker: a second
                                // would let a partition's batches overtake.
                                let node = self.conns[&conn].node;
                                assert!(
                                    !self.conns.iter().any(|(id, o)| *id != conn
                                        && o.alive
                                        && o.produced
                                        && o.node == node),
                                    "two live producing connections to broker {node}"
                                );
                            }
                            let c = self.conns.get_mut(&conn).expect("known");
                            c.produced |= api_key == ApiKey::Produce.code();
                            // Every request is answered but acks=0 Produce.
                            if self.sc.acks != Acks::None || api_key != ApiKey::Produce.code() {
                                c.requests_in_flight.push_back(api_key);
                                // Re-authentication's SaslHandshake and
                                // SaslAuthenticate go beside the requests in
                                // flight (KIP-368), one at a time, outside
                                // max.in.flight as in Java, where the
                                // authenticator sends them.
                                let is_sasl = |k: &i16| {
                                    *k == ApiKey::SaslHandshake.code()
                                        || *k == ApiKey::SaslAuthenticate.code()
                                };
                                let sasl =
                                    c.requests_in_flight.iter().filter(|k| is_sasl(k)).count();
                                let others = c.requests_in_flight.len() - sasl;
                                assert!(
                                    others <= self.sc.max_in_flight && sasl <= 1,
                                    "requests in flight on {conn:?}: {:?}",
                                    c.requests_in_flight
                                );
                            }
                        }
                        // Written to the socket at once; the network delays it.
                        self.producer.handle_written(conn, data.len(), self.now);
                        self.transfer(conn, true, data);
                    }
                    Transmit::Close { conn } => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.alive = false;
                            self.cluster.connection_closed(c.generation);
                        }
                    }
                    other => panic!("a transmit this simulation does not know: {other:?}"),
                }
            }
            while let Some(e) = self.producer.poll_event() {
                any = true;
                self.record_event(e);
            }
            if !any {
                break;
            }
        }
        assert!(
            self.producer.buffered_bytes() <= self.sc.buffer_memory,
            "buffer.memory exceeded: {}",
            self.producer.buffered_bytes()
        );
    }

    fn record_event(&mut self, e: Event) {
        match e {
            Event::Delivered(d) => {
                for (id, m) in d.metadata() {
                    let prev = self.outcomes.insert(
                        id.0,
                        Outcome::Delivered {
                            partition: m.partition,
                            offset: m.offset,
                        },
                    );
                    assert!(prev.is_none(), "second outcome for record {id:?}: {prev:?}");
                }
            }
            Event::Failed(f) => {
                for id in f.records.iter() {
                    let prev = self.outcomes.insert(id.0, Outcome::Failed(f.error.clone()));
                    assert!(prev.is_none(), "second outcome for record {id:?}: {prev:?}");
                }
            }
            Event::Closed => self.closed = true,
            other => panic!("an event this simulation does not know: {other:?}"),
        }
    }

    fn inject_faults(&mut self) {
        let rate = self.sc.fault_rate;
        if rate == 0 {
            return;
        }
        if self.rng.chance(rate) {
            // Break a random live connection.
            let live: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.alive)
                .map(|(k, _)| *k)
                .collect();
            if !live.is_empty() {
                let conn = live[self.rng.below(live.len() as u64) as usize];
                let gen = self.conns[&conn].generation;
                let d = self.latency();
                self.schedule(self.now + d, SimEvent::Break(conn, gen));
            }
        }
        if self.rng.chance(rate) {
            self.cluster.fail_after_append(1);
        }
        if self.rng.chance(rate) {
            let codes = [
                ErrorCode::NotLeaderOrFollower,
                ErrorCode::RequestTimedOut,
                ErrorCode::NotEnoughReplicas,
                ErrorCode::NotEnoughReplicasAfterAppend,
                ErrorCode::CorruptMessage,
            ];
            let c = codes[self.rng.below(codes.len() as u64) as usize];
            self.cluster.push_errors(ApiKey::Produce, vec![c]);
        }
        if self.rng.chance(rate) {
            let p = self.rng.below(self.sc.partitions as u64) as i32;
            let n = self.rng.below(self.sc.brokers as u64) as i32;
            let _ = self.cluster.set_leader(TOPIC, p, n);
        }
        if self.rng.chance(rate / 4) {
            let n = self.rng.below(self.sc.brokers as u64) as i32;
            if !self.cluster.is_broker_down(n) {
                self.cluster.set_broker_down(n, true);
                let d = Duration::from_millis(10 + self.rng.below(500));
                self.schedule(self.now + d, SimEvent::BrokerUp(n));
            }
        }
        if self.rng.chance(rate / 2) {
            let n = self.rng.below(self.sc.brokers as u64) as i32;
            self.cluster.throttle(n, self.rng.below(30) as i32);
        }
        if self.rng.chance(rate) {
            self.cluster
                .push_errors(ApiKey::Metadata, vec![ErrorCode::UnknownServerError]);
        }
        if self.rng.chance(rate / 4) {
            // KIP-1102: the producer gives up its view of the cluster, keeping
            // the connections that carry batches until they are answered.
            self.cluster
                .push_metadata_top_level_errors(vec![ErrorCode::RebootstrapRequired]);
        }
        if self.sc.sasl.is_some() && self.rng.chance(rate / 4) {
            // The broker refuses the next exchange: that connection closes
            // and what waits on it fails with the authentication error.
            let api = if self.rng.chance(500) {
                ApiKey::SaslHandshake
            } else {
                ApiKey::SaslAuthenticate
            };
            let code = if api == ApiKey::SaslHandshake {
                ErrorCode::UnsupportedSaslMechanism
            } else {
                ErrorCode::SaslAuthenticationFailed
            };
            self.cluster.push_errors(api, vec![code]);
        }
        if self.sc.fatal && self.rng.chance(rate.max(5)) {
            self.cluster
                .push_errors(ApiKey::Produce, vec![ErrorCode::TopicAuthorizationFailed]);
            self.sc.fatal = false;
        }
    }

    fn handle(&mut self, e: SimEvent) {
        match e {
            SimEvent::Send(n) => {
                let key = if self.sc.keyed {
                    Some(Bytes::from(format!("k{}", n % 17)))
                } else {
                    None
                };
                let mut r = ProducerRecord::new(TOPIC, format!("{n:08}"));
                r.key = key;
                r.headers.push(kafka_sansio::protocol::Header {
                    key: "n".into(),
                    value: Some(Bytes::from(n.to_string())),
                });
                match self.producer.send(r, self.now) {
                    Ok(id) => {
                        self.ids.insert(n, id.0);
                        self.numbers.insert(id.0, n);
                    }
                    Err(SendError::BufferFull { .. }) | Err(SendError::Fatal { .. }) => {
                        self.refused += 1
                    }
                    Err(e) => panic!("unexpected send error {e}"),
                }
            }
            SimEvent::Connected(conn) => {
                if self.conns.get(&conn).is_some_and(|c| c.alive) {
                    self.producer.handle_connected(conn, self.now);
                }
            }
            SimEvent::ConnectFailed(conn) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if c.alive {
                        c.alive = false;
                        self.cluster.connection_closed(c.generation);
                        self.producer.handle_disconnected(conn, self.now);
                    }
                }
            }
            SimEvent::ToBroker(conn, gen, data) => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if c.generation != gen || !c.alive {
                    return;
                }
                c.broker_rx.push(&data);
                let node = c.node;
                loop {
                    let c = self.conns.get_mut(&conn).expect("conn");
                    let Some(frame) = c
                        .broker_rx
                        .next_frame()
                        .expect("producer frames are well formed")
                    else {
                        break;
                    };
                    let res = self
                        .cluster
                        .handle_connection_request(gen, node, frame, self.now);
                    if let Some(resp) = res.response {
                        self.transfer(conn, false, resp);
                    }
                    if res.close {
                        let d = self.latency();
                        self.schedule(res.due.max(self.now) + d, SimEvent::Break(conn, gen));
                        break;
                    }
                }
            }
            SimEvent::ToClient(conn, gen, data) => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if c.generation != gen || !c.alive {
                    return;
                }
                // Count whole responses delivered, for the in-flight check.
                c.client_rx.push(&data);
                while let Some(_frame) = c
                    .client_rx
                    .next_frame()
                    .expect("mock frames are well formed")
                {
                    c.requests_in_flight.pop_front();
                }
                self.producer.handle_data(conn, &data, self.now);
            }
            SimEvent::Break(conn, gen) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if c.generation == gen && c.alive {
                        c.alive = false;
                        self.cluster.connection_closed(gen);
                        self.producer.handle_disconnected(conn, self.now);
                    }
                }
            }
            SimEvent::BrokerUp(n) => self.cluster.set_broker_down(n, false),
            SimEvent::Flush => {
                let _ = self.producer.flush(self.now);
            }
            SimEvent::Close => self.producer.close(self.now),
        }
    }

    fn run(&mut self) {
        let limit = self.start + Duration::from_secs(600);
        loop {
            self.pump();
            if self.closed {
                break;
            }
            let next_event = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self.producer.poll_timeout();
            let next = match (next_event, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or_else(|| {
                    panic!("stuck: nothing scheduled and not closed\n{}", self.state())
                }),
            };
            assert!(
                next <= limit,
                "simulated time ran past 10 minutes\n{}",
                self.state()
            );
            self.now = self.now.max(next);
            self.steps += 1;
            assert!(
                self.steps < 2_000_000,
                "livelock: too many steps\n{}",
                self.state()
            );
            if self
                .queue
                .peek()
                .is_some_and(|Reverse((t, _, _))| *t <= self.now)
            {
                let Reverse((_, _, k)) = self.queue.pop().expect("peeked");
                let e = self.payloads.remove(&k).expect("payload");
                self.inject_faults();
                self.handle(e);
            } else {
                self.producer.handle_timeout(self.now);
            }
        }
    }

    fn state(&self) -> String {
        format!(
            "scenario {:?}\nnow +{:?}, pending {}, in flight {}, outcomes {}/{}, metrics {:?}",
            self.sc,
            self.now - self.start,
            self.producer.pending_records(),
            self.producer.in_flight_batches(),
            self.outcomes.len(),
            self.ids.len(),
            self.producer.metrics()
        ) + &format!(
            "\nqueues {:?}, producer id {:?}, buffered {}",
            (0..self.sc.partitions)
                .map(|p| self.producer.queue_depth(TOPIC, p))
                .collect::<Vec<_>>(),
            self.producer.producer_id(),
            self.producer.buffered_bytes()
        )
    }

    /// The invariants, checked once the producer has closed.
    fn check(&self) {
        let ctx = self.state();
        assert!(self.producer.is_closed(), "not closed\n{ctx}");
        assert_eq!(self.producer.pending_records(), 0, "{ctx}");
        assert_eq!(
            self.producer.buffered_bytes(),
            0,
            "memory not returned\n{ctx}"
        );
        // One final event per accepted record.
        for (n, id) in &self.ids {
            assert!(
                self.outcomes.contains_key(id),
                "record {n} (id {id}) has no outcome\n{ctx}"
            );
        }
        assert_eq!(self.outcomes.len(), self.ids.len(), "{ctx}");
        // What is in the log, by record number.
        let mut in_log: BTreeMap<usize, Vec<(i32, i64)>> = BTreeMap::new();
        for p in 0..self.sc.partitions {
            let records = self.cluster.records(TOPIC, p).expect("log decodes");
            let mut last: Option<usize> = None;
            for r in &records {
                let n: usize = std::str::from_utf8(r.value.as_ref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(
                    r.headers,
                    vec![("n".to_owned(), Some(Bytes::from(n.to_string())))]
                );
                in_log.entry(n).or_default().push((p, r.offset));
                if self.sc.idempotent {
                    if let Some(l) = last {
                        assert!(
                            n > l,
                            "partition {p}: record {n} after {l}: out of send order\n{ctx}"
                        );
                    }
                }
                last = Some(n);
            }
            // Sequences contiguous per producer epoch.
            if self.sc.idempotent {
                let batches = self.cluster.batches(TOPIC, p);
                let mut prev: Option<(i64, i16, i32)> = None;
                for b in batches {
                    if let Some((pid, epoch, next)) = prev {
                        if pid == b.producer_id && epoch == b.producer_epoch {
                            assert_eq!(b.base_sequence, next, "partition {p}: sequence gap\n{ctx}");
                        } else {
                            assert_eq!(b.base_sequence, 0, "new epoch must start at 0\n{ctx}");
                        }
                    }
                    let next = (b.base_sequence as i64 + b.record_count as i64) as i32;
                    prev = Some((b.producer_id, b.producer_epoch, next));
                }
            }
        }
        for (id, outcome) in &self.outcomes {
            let n = self.numbers[id];
            let copies = in_log.get(&n).map(Vec::len).unwrap_or(0);
            match outcome {
                Outcome::Delivered { partition, offset } => {
                    if self.sc.acks == Acks::None {
                        assert!(copies <= 1 || !self.sc.idempotent, "{ctx}");
                        continue;
                    }
                    assert!(
                        copies >= 1,
                        "acknowledged record {n} is not in the log\n{ctx}"
                    );
                    if self.sc.idempotent {
                        assert_eq!(copies, 1, "record {n} duplicated: {:?}\n{ctx}", in_log[&n]);
                    }
                    assert!(
                        in_log[&n].contains(&(*partition, *offset)),
                        "record {n} reported at {partition}/{offset}, log has {:?}\n{ctx}",
                        in_log[&n]
                    );
                }
                Outcome::Failed(e) => {
                    if self.sc.idempotent {
                        assert!(copies <= 1, "failed record {n} duplicated\n{ctx}");
                    }
                    if !e.maybe_persisted() && self.sc.idempotent {
                        assert_eq!(
                            copies, 0,
                            "record {n} failed with {e} (not persisted) but is in the log\n{ctx}"
                        );
                    }
                }
            }
        }
        // Without faults, every connection authenticates at once and
        // re-authenticates before its session ends.
        #[cfg(feature = "sasl")]
        if self.sc.fault_rate == 0 && self.sc.sasl.is_some() {
            let st = self.cluster.sasl_stats();
            assert!(st.authentications > 0, "{st:?}\n{ctx}");
            assert_eq!(
                (st.failures, st.expired_closes, st.unauthenticated_closes),
                (0, 0, 0),
                "{st:?}\n{ctx}"
            );
        }
        // Without faults, everything is delivered.
        if self.sc.fault_rate == 0 && !self.sc.fatal {
            for (id, o) in &self.outcomes {
                assert!(
                    matches!(o, Outcome::Delivered { .. }),
                    "record {} failed without faults: {o:?}\n{ctx}",
                    self.numbers[id]
                );
            }
        }
    }
}

/// Totals over scenarios, to show the faults really happened.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    delivered: u64,
    failed: u64,
    retried: u64,
    epoch_bumps: u64,
    disconnects: u64,
    rebootstraps: u64,
    /// SASL exchanges completed, and of those re-authentications.
    authentications: u64,
    reauthentications: u64,
}

fn run_seed(seed: u64) -> Totals {
    let sc = Scenario::from_seed(seed);
    let mut sim = Sim::new(sc);
    sim.run();
    sim.check();
    let m = sim.producer.metrics();
    #[cfg(feature = "sasl")]
    let st = sim.cluster.sasl_stats();
    #[cfg(feature = "sasl")]
    let (authentications, reauthentications) = (st.authentications, st.reauthentications);
    #[cfg(not(feature = "sasl"))]
    let (authentications, reauthentications) = (0, 0);
    Totals {
        authentications,
        reauthentications,
        delivered: m.records_delivered,
        failed: m.records_failed,
        retried: m.records_retried,
        epoch_bumps: m.epoch_bumps,
        disconnects: m.disconnects,
        rebootstraps: m.rebootstraps,
    }
}

#[test]
fn replay() {
    if let Ok(s) = std::env::var("SIM_SEED") {
        let seed: u64 = s.parse().expect("SIM_SEED is a u64");
        eprintln!("{:?}", Scenario::from_seed(seed));
        eprintln!("{:?}", run_seed(seed));
    }
}

#[test]
fn fault_free_scenarios_deliver_everything() {
    for seed in 0..50u64 {
        let mut sc = Scenario::from_seed(seed);
        sc.fault_rate = 0;
        sc.fatal = false;
        let mut sim = Sim::new(sc);
        sim.run();
        sim.check();
    }
}

/// SASL scenarios of every mechanism with sessions of 1.2-1.6 s over several
/// seconds of sends, with and without faults: the connections re-authenticate
/// mid-stream and the invariants hold (nothing lost, duplicated, reordered).
#[cfg(feature = "sasl")]
#[test]
fn sasl_sessions_renewed_mid_stream() {
    let mechanisms = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ];
    let mut renewed = 0;
    for seed in 0..60u64 {
        let mut sc = Scenario::from_seed(seed);
        let lifetime = Duration::from_millis(1200 + 100 * (seed % 5));
        sc.sasl = Some((mechanisms[seed as usize % 3], Some(lifetime)));
        sc.records = sc.records.max(150);
        if seed % 2 == 0 {
            sc.fault_rate = 0;
            sc.fatal = false;
        }
        let faulty = sc.fault_rate > 0;
        let mut sim = Sim::new(sc);
        sim.run();
        sim.check();
        let st = sim.cluster.sasl_stats();
        if !faulty {
            // 150 records or more stretched over about 3.6 s or more.
            assert!(
                st.reauthentications > 0,
                "seed {seed}: no re-authentication: {st:?}\n{}",
                sim.state()
            );
        }
        renewed += st.reauthentications;
    }
    eprintln!("60 SASL scenarios: {renewed} re-authentications");
}

#[test]
fn random_scenarios() {
    let n: u64 = std::env::var("SIM_SCENARIOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let base: u64 = std::env::var("SIM_BASE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x51_3d);
    let mut t = Totals::default();
    for i in 0..n {
        let seed = base.wrapping_mul(6364136223846793005).wrapping_add(i);
        match std::panic::catch_unwind(|| run_seed(seed)) {
            Ok(s) => {
                t.delivered += s.delivered;
                t.failed += s.failed;
                t.retried += s.retried;
                t.epoch_bumps += s.epoch_bumps;
                t.disconnects += s.disconnects;
                t.rebootstraps += s.rebootstraps;
                t.authentications += s.authentications;
                t.reauthentications += s.reauthentications;
            }
            Err(_) => panic!(
                "scenario failed; replay with SIM_SEED={seed} cargo test --test simulation replay -- --nocapture"
            ),
        }
    }
    eprintln!("{n} scenarios: {t:?}");
    // The faults must have happened for the scenarios to prove anything.
    if n >= 200 {
        assert!(
            t.delivered > 0 && t.failed > 0 && t.retried > 0 && t.disconnects > 0,
            "{t:?}"
        );
        assert!(t.epoch_bumps > 0, "no epoch bump in {n} scenarios: {t:?}");
        assert!(t.rebootstraps > 0, "no rebootstrap in {n} scenarios: {t:?}");
        if cfg!(feature = "sasl") {
            assert!(
                t.authentications > 0 && t.reauthentications > 0,
                "no SASL re-authentication in {n} scenarios: {t:?}"
            );
        }
    }
}
