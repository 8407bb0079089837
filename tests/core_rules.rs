//! The producer core's rules, one by one, against a scripted broker: the test
//! decides every answer, so each rule (linger, retries, idempotence, timeouts)
//! is checked exactly.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_sansio::mock::{Pair, Scripted};
use kafka_sansio::producer::{
    ConnId, DeliveryError, Event, Producer, ProducerConfig, ProducerRecord, SendError,
    RECORD_OVERHEAD,
};
use kafka_sansio::protocol::frame::{
    encode_request, encode_response, ApiKey, ApiMessage, RequestHeader,
};
use kafka_sansio::protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
use kafka_sansio::protocol::messages::init_producer_id::InitProducerIdResponse;
use kafka_sansio::protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use kafka_sansio::protocol::messages::produce::{
    PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
};
use kafka_sansio::protocol::record::RecordBatch;
use kafka_sansio::protocol::ErrorCode;

/// A request the producer sent.
struct Req {
    conn: ConnId,
    header: RequestHeader,
    body: Bytes,
}

struct Harness {
    /// The core, its network and clock; the broker's answers are this harness's.
    pair: Pair<Scripted>,
    partitions: i32,
    topic_error: Option<ErrorCode>,
    producer_epoch: i16,
    /// Highest Produce version the scripted broker advertises.
    produce_max: i16,
    /// An API the scripted broker leaves out of its ApiVersions answer.
    omit_api: Option<ApiKey>,
    /// Topics whose Metadata answer has no id (as from a broker before Kafka 2.8).
    no_topic_id: Vec<&'static str>,
    /// Bumped to give every topic a new id (a topic deleted and created again).
    id_generation: u8,
    /// Top-level errors of the next Metadata answers (v13, KIP-1102), one each.
    metadata_errors: Vec<ErrorCode>,
    /// Whether an answer with a top-level error still lists brokers and
    /// topics (by default it lists none, as a proxy failing the request would).
    metadata_error_body: bool,
    /// Metadata requests answered.
    metadata_requests: usize,
    /// Port of the connection each Metadata request came on, in order.
    metadata_ports: Vec<u16>,
    /// Port Metadata gives the broker (bootstrap.servers is b0:9000).
    broker_port: i32,
    /// Node id Metadata gives the broker, leader of every partition.
    broker_id: i32,
    /// The topics each Metadata request named, in order.
    metadata_topics: Vec<Vec<String>>,
    /// Requests read, of every API.
    requests: usize,
    /// Bytes of answers handed to the core.
    received: usize,
}

const TOPIC: &str = "t";
/// A second topic the scripted broker knows, led by the same broker.
const OTHER_TOPIC: &str = "u";

impl Harness {
    fn new(props: &[(&str, &str)]) -> Self {
        Self::with_partitions(props, 1)
    }

    fn with_partitions(props: &[(&str, &str)], partitions: i32) -> Self {
        let mut all = vec![("bootstrap.servers", "b0:9000")];
        all.extend_from_slice(props);
        let config = ProducerConfig::from_properties(all).unwrap();
        let now = Instant::now();
        let producer = Producer::new(config, now, 1_700_000_000_000).unwrap();
        Harness {
            pair: Pair::new(producer, Scripted::new(), now),
            partitions,
            topic_error: None,
            producer_epoch: 0,
            produce_max: ApiKey::Produce.versions().1,
            omit_api: None,
            no_topic_id: Vec::new(),
            id_generation: 0,
            metadata_errors: Vec::new(),
            metadata_error_body: false,
            metadata_requests: 0,
            metadata_ports: Vec::new(),
            broker_port: 9000,
            broker_id: 0,
            metadata_topics: Vec::new(),
            requests: 0,
            received: 0,
        }
    }

    /// The id the scripted broker gives `topic` now (zero when it gives none).
    fn topic_id(&self, topic: &str) -> [u8; 16] {
        if self.no_topic_id.contains(&topic) {
            return [0; 16];
        }
        let mut id = [0u8; 16];
        id[0] = self.id_generation + 1;
        id[1..1 + topic.len()].copy_from_slice(topic.as_bytes());
        id
    }

    /// Drains the producer's outputs: connects succeed at once, requests wait for the script.
    fn pump(&mut self) {
        self.pair.run_until_idle();
    }

    fn next_request(&mut self) -> Option<Req> {
        self.pump();
        let (conn, mut frame) = self.pair.broker.next_request()?;
        let header = RequestHeader::decode(&mut frame).unwrap();
        self.requests += 1;
        Some(Req {
            conn,
            header,
            body: frame,
        })
    }

    fn respond<M: ApiMessage>(&mut self, req: &Req, msg: &M) {
        let mut buf = BytesMut::new();
        encode_response(
            &mut buf,
            req.header.correlation_id,
            req.header.api_version,
            msg,
        )
        .unwrap();
        // Deliver in two pieces to exercise deframing across reads.
        let mid = buf.len() / 2;
        self.received += buf.len();
        self.pair.core(|p, now| {
            p.handle_data(req.conn, &buf[..mid], now);
            p.handle_data(req.conn, &buf[mid..], now);
        });
        self.pump();
    }

    /// Answers cluster requests (ApiVersions, Metadata, InitProducerId) until a
    /// Produce request comes, which is returned; `None` when nothing is asked.
    fn next_produce(&mut self) -> Option<(Req, ProduceRequest)> {
        while let Some(req) = self.next_request() {
            match ApiKey::from_code(req.header.api_key).unwrap() {
                ApiKey::ApiVersions => {
                    let resp = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .filter(|k| Some(**k) != self.omit_api)
                            .map(|k| ApiVersion {
                                api_key: k.code(),
                                min_version: k.versions().0,
                                max_version: if *k == ApiKey::Produce {
                                    self.produce_max
                                } else {
                                    k.versions().1
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    self.respond(&req, &resp);
                }
                ApiKey::Metadata => {
                    self.metadata_requests += 1;
                    self.metadata_ports.push(self.pair.port(req.conn).unwrap());
                    let mut body = req.body.clone();
                    let mr = MetadataRequest::decode(&mut body, req.header.api_version).unwrap();
                    self.metadata_topics.push(
                        mr.topics
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(|t| t.name)
                            .collect(),
                    );
                    let error_code = if self.metadata_errors.is_empty() {
                        0
                    } else {
                        self.metadata_errors.remove(0).code()
                    };
                    let mut resp = MetadataResponse {
                        error_code,
                        brokers: vec![MetadataResponseBroker {
                            node_id: self.broker_id,
                            host: "b0".into(),
                            port: self.broker_port,
                            ..Default::default()
                        }],
                        // Both topics alike (the producer ignores one it did not ask for).
                        topics: [TOPIC, OTHER_TOPIC]
                            .iter()
                            .map(|name| MetadataResponseTopic {
                                error_code: self.topic_error.map_or(0, |c| c.code()),
                                name: Some((*name).into()),
                                topic_id: self.topic_id(name),
                                partitions: if self.topic_error.is_some() {
                                    vec![]
                                } else {
                                    (0..self.partitions)
                                        .map(|i| MetadataResponsePartition {
                                            partition_index: i,
                                            leader_id: self.broker_id,
                                            ..Default::default()
                                        })
                                        .collect()
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    if error_code != 0 && !self.metadata_error_body {
                        resp.brokers.clear();
                        resp.topics.clear();
                    }
                    self.respond(&req, &resp);
                }
                ApiKey::InitProducerId => {
                    let resp = InitProducerIdResponse {
                        producer_id: 42,
                        producer_epoch: self.producer_epoch,
                        ..Default::default()
                    };
                    self.respond(&req, &resp);
                }
                ApiKey::Produce => {
                    let mut body = req.body.clone();
                    let pr = ProduceRequest::decode(&mut body, req.header.api_version).unwrap();
                    return Some((req, pr));
                }
                other => panic!("unexpected request {other:?}"),
            }
        }
        None
    }

    /// Answers a Produce request: each partition gets `code` and base offsets from `offsets`.
    fn answer_produce(
        &mut self,
        req: &Req,
        pr: &ProduceRequest,
        code: ErrorCode,
        base_offset: i64,
    ) {
        let resp = ProduceResponse {
            responses: pr
                .topic_data
                .iter()
                .map(|t| TopicProduceResponse {
                    // Named as the request named it (the version picks which).
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| PartitionProduceResponse {
                            index: p.index,
                            error_code: code.code(),
                            base_offset: if code.is_ok() { base_offset } else { -1 },
                            log_append_time_ms: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        self.respond(req, &resp);
    }

    fn advance(&mut self, d: Duration) {
        self.pair.advance(d);
    }

    fn send(&mut self, r: ProducerRecord) -> u64 {
        let id = self.pair.core(|p, now| p.send(r, now)).unwrap().0;
        self.pump();
        id
    }

    /// Sends records of `len` bytes to partition 0 until `buffer.memory` is
    /// full (nothing is pumped meanwhile); returns how many were accepted.
    fn fill_memory(&mut self, len: usize) -> usize {
        let mut accepted = 0usize;
        loop {
            let r = ProducerRecord::new(TOPIC, vec![7u8; len]).partition(0);
            match self.pair.core(|p, now| p.send(r, now)) {
                Ok(_) => accepted += 1,
                Err(SendError::BufferFull { .. }) => return accepted,
                Err(e) => panic!("{e}"),
            }
            assert!(accepted < 1_000_000, "buffer.memory never filled");
        }
    }

    fn delivered_offsets(&self) -> Vec<(u64, i64)> {
        let mut v = Vec::new();
        for e in &self.pair.events {
            if let Event::Delivered(d) = e {
                for (id, m) in d.metadata() {
                    v.push((id.0, m.offset));
                }
            }
        }
        v
    }

    fn failures(&self) -> Vec<(u64, DeliveryError)> {
        let mut v = Vec::new();
        for e in &self.pair.events {
            if let Event::Failed(f) = e {
                for id in f.records.iter() {
                    v.push((id.0, f.error.clone()));
                }
            }
        }
        v
    }
}

fn batches(pr: &ProduceRequest) -> Vec<RecordBatch> {
    pr.topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .flat_map(|p| RecordBatch::decode_all(p.records.clone().unwrap()).unwrap())
        .collect()
}

fn rec(v: &str) -> ProducerRecord {
    ProducerRecord::new(TOPIC, v.to_owned())
}

#[test]
fn lingers_then_sends_one_batch_and_reports_offsets() {
    let mut h = Harness::new(&[("linger.ms", "5")]);
    for i in 0..3 {
        h.send(rec(&format!("v{i}")).key("k"));
    }
    // Metadata and producer id come first; the batch waits for linger.
    assert!(h.next_produce().is_none());
    let deadline = h.pair.producer.poll_timeout().expect("linger deadline");
    assert!(deadline <= h.pair.now + Duration::from_millis(5));
    h.advance(Duration::from_millis(5));
    let (req, pr) = h.next_produce().expect("produce after linger");
    assert_eq!(pr.acks, -1);
    let b = batches(&pr);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].record_count, 3);
    assert_eq!(
        (b[0].producer_id, b[0].producer_epoch, b[0].base_sequence),
        (42, 0, 0)
    );
    let values: Vec<_> = b[0]
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(values, vec!["v0", "v1", "v2"]);
    h.answer_produce(&req, &pr, ErrorCode::None, 100);
    assert_eq!(h.delivered_offsets(), vec![(0, 100), (1, 101), (2, 102)]);
    assert!(h.pair.producer.is_idle());
    assert_eq!(h.pair.producer.buffered_bytes(), 0);
}

#[test]
fn produce_requests_go_out_in_pieces_that_concatenate_to_the_one_buffer_encoding() {
    let (lo, hi) = ApiKey::Produce.versions();
    for version in lo..=hi {
        for (acks, idempotence) in [("0", "false"), ("1", "false"), ("all", "true")] {
            let mut h = Harness::with_partitions(
                &[
                    ("acks", acks),
                    ("enable.idempotence", idempotence),
                    ("linger.ms", "5"),
                ],
                3,
            );
            h.produce_max = version;
            let mut n = 0;
            for topic in [TOPIC, OTHER_TOPIC] {
                for partition in 0..3 {
                    for _ in 0..=partition {
                        let v = format!("{topic}-{partition}-{n}");
                        h.send(ProducerRecord::new(topic, v).partition(partition));
                        n += 1;
                    }
                }
            }
            // Cluster requests answered; the batches linger.
            assert!(h.next_produce().is_none());
            h.pair.record_sends();
            h.advance(Duration::from_millis(5));
            let (req, pr) = h.next_produce().expect("produce");
            let ctx = format!("Produce v{version} acks={acks}");
            assert_eq!(req.header.api_version, version, "{ctx}");
            assert_eq!(batches(&pr).len(), 6, "{ctx}");
            // The sends are exactly this request, in pieces around each batch...
            assert!(h.pair.sent().iter().all(|(c, _)| *c == req.conn), "{ctx}");
            assert!(
                h.pair.sent().len() >= 12,
                "{ctx}: {} pieces",
                h.pair.sent().len()
            );
            let pieces: Vec<u8> = h.pair.sent().iter().flat_map(|(_, d)| d.to_vec()).collect();
            // ...whose bytes are the one-buffer encoding of the same request.
            let mut whole = BytesMut::new();
            encode_request(
                &mut whole,
                req.header.correlation_id,
                req.header.client_id.as_deref(),
                version,
                &pr,
            )
            .unwrap();
            assert_eq!(pieces, whole.to_vec(), "{ctx}");
            if acks == "0" {
                // Written whole: complete.
                assert_eq!(h.delivered_offsets().len(), n, "{ctx}");
            } else {
                h.answer_produce(&req, &pr, ErrorCode::None, 0);
                assert_eq!(h.delivered_offsets().len(), n, "{ctx}");
            }
            assert!(h.pair.producer.is_idle(), "{ctx}");
            assert_eq!(h.pair.producer.buffered_bytes(), 0, "{ctx}");
        }
    }
}

#[test]
fn acks_zero_completes_on_write_with_unknown_offset() {
    let mut h = Harness::new(&[("acks", "0"), ("linger.ms", "0")]);
    h.send(rec("a"));
    let (_req, pr) = h.next_produce().expect("produce");
    assert_eq!(pr.acks, 0);
    h.pump();
    assert_eq!(h.delivered_offsets(), vec![(0, -1)]);
    assert!(h.pair.producer.is_idle());
}

/// A broker that answers acks=0 Produce requests anyway (tansu 0.6.0 does;
/// Kafka never does): the answers are dropped and the connection carries on.
/// Resetting it would lose the requests the broker has not read yet, whose
/// records were already reported delivered.
#[test]
fn acks_zero_answers_are_dropped_without_resetting_the_connection() {
    let mut h = Harness::new(&[("acks", "0"), ("linger.ms", "0")]);
    h.send(rec("a"));
    let (r1, p1) = h.next_produce().expect("produce");
    h.send(rec("b"));
    let (r2, p2) = h.next_produce().expect("produce");
    assert_eq!(h.delivered_offsets(), vec![(0, -1), (1, -1)]);
    // Answered late and in order, the second after a third request went out.
    h.answer_produce(&r1, &p1, ErrorCode::None, 0);
    h.send(rec("c"));
    let (r3, _) = h.next_produce().expect("produce");
    h.answer_produce(&r2, &p2, ErrorCode::None, 1);
    assert!(h.pair.closed().is_empty(), "reset by an acks=0 answer");
    assert!(r2.conn == r1.conn && r3.conn == r1.conn);
    // Each record completed once, on write, with no offset.
    assert_eq!(h.delivered_offsets(), vec![(0, -1), (1, -1), (2, -1)]);
    assert!(h.failures().is_empty());
    // A second answer to the same request answers nothing sent: still a reset.
    h.answer_produce(&r2, &p2, ErrorCode::None, 1);
    assert_eq!(h.pair.closed(), vec![r1.conn]);
}

#[test]
fn acks_zero_completes_only_once_written_and_a_stalled_socket_stops_at_buffer_memory() {
    let mut h = Harness::new(&[
        ("acks", "0"),
        ("linger.ms", "0"),
        ("batch.size", "1000"),
        ("buffer.memory", "20000"),
        ("max.request.size", "2000"),
    ]);
    // Connection set up normally, then the socket stalls.
    h.send(rec("first"));
    h.next_produce().expect("produce");
    assert_eq!(h.delivered_offsets().len(), 1);
    h.pair.stall_writes(true);
    let mut accepted = 0;
    let mut refused = false;
    for i in 0..1000 {
        match h.pair.producer.send(rec(&format!("{i:0100}")), h.pair.now) {
            Ok(_) => accepted += 1,
            Err(SendError::BufferFull { .. }) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        h.pump();
    }
    assert!(refused, "a stalled socket must bring backpressure");
    assert!(h.pair.producer.buffered_bytes() <= 20000);
    // Nothing completes while unwritten.
    assert_eq!(h.delivered_offsets().len(), 1);
    // The socket drains: everything completes, offset unknown.
    h.pair.stall_writes(false);
    h.pair.release_writes();
    for _ in 0..100 {
        h.pump();
        // Report whatever was sent meanwhile.
        if h.pair.producer.pending_records() == 0 {
            break;
        }
    }
    assert_eq!(h.delivered_offsets().len(), accepted + 1);
    assert!(h.delivered_offsets().iter().all(|(_, o)| *o == -1));
}

#[test]
fn buffer_full_and_too_large_hand_the_record_back() {
    let mut h = Harness::new(&[
        ("buffer.memory", "20000"),
        ("batch.size", "16384"),
        ("max.request.size", "10000"),
    ]);
    let big = ProducerRecord::new(TOPIC, vec![0u8; 20_000]);
    match h.pair.producer.send(big.clone(), h.pair.now) {
        Err(SendError::RecordTooLarge { record, .. }) => assert_eq!(*record, big),
        other => panic!("{other:?}"),
    }
    // Make the topic known so records go into batches.
    h.send(rec("first"));
    if let Some((req, pr)) = h.next_produce() {
        h.answer_produce(&req, &pr, ErrorCode::None, 0);
    }
    // One open batch reserves batch.size; the next new batch does not fit.
    let r = ProducerRecord::new(TOPIC, vec![1u8; 5000]).partition(0);
    let mut full = None;
    for _ in 0..10 {
        match h.pair.producer.send(r.clone(), h.pair.now) {
            Ok(_) => {}
            Err(SendError::BufferFull { record, .. }) => {
                full = Some(record);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(*full.expect("buffer fills up"), r);
}

/// Tiny records cannot pile up beyond buffer.memory by their count: each
/// holds RECORD_OVERHEAD bytes besides its bytes in the batch, so memory per
/// record is bounded and the producer's footprint follows buffer.memory.
#[test]
fn buffer_memory_bounds_the_number_of_tiny_records() {
    let mut h = Harness::new(&[("buffer.memory", "200000"), ("batch.size", "16384")]);
    h.send(rec("first"));
    if let Some((req, pr)) = h.next_produce() {
        h.answer_produce(&req, &pr, ErrorCode::None, 0);
    }
    // The broker now answers nothing: records stay buffered.
    let accepted = h.fill_memory(1);
    assert!(
        h.pair.producer.buffered_bytes() <= 200_000,
        "{}",
        h.pair.producer.buffered_bytes()
    );
    // A 1-byte record is 8 bytes in the batch, and 32 besides it.
    assert!(
        accepted * (8 + RECORD_OVERHEAD) <= 200_000,
        "{accepted} records in 200000 bytes"
    );
    assert!(accepted * (8 + RECORD_OVERHEAD) > 150_000, "{accepted}");
}

/// Records that waited for metadata while filling buffer.memory go into
/// batches of batch.size when it comes, as records sent later would: the
/// memory they held is theirs to fill batches with. (Were it given back
/// record by record, each batch would be sized to what the others left free,
/// one record each: a request per record, and buffers the pool cannot reuse.)
#[test]
fn records_waiting_for_metadata_fill_whole_batches() {
    let mut h = Harness::new(&[
        ("buffer.memory", "200000"),
        ("batch.size", "16384"),
        ("linger.ms", "0"),
    ]);
    let waiting = h.fill_memory(1000);
    assert!(waiting > 150, "{waiting}");
    let mut counts = Vec::new();
    while counts.iter().sum::<usize>() < waiting {
        let (req, pr) = h.next_produce().expect("the waiting records go out");
        for b in batches(&pr) {
            counts.push(b.record_count as usize);
        }
        h.answer_produce(&req, &pr, ErrorCode::None, 0);
    }
    assert_eq!(counts.iter().sum::<usize>(), waiting);
    // A 1000-byte record takes 1010 bytes of a batch: 16 fit in 16384.
    let full = counts.iter().filter(|&&n| n >= 15).count();
    assert!(full * 16 >= waiting - 16, "records per batch: {counts:?}");
}

#[test]
fn retriable_error_retries_with_backoff_and_same_sequence() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.send(rec("a"));
    let (req, pr) = h.next_produce().unwrap();
    let first = batches(&pr);
    h.answer_produce(&req, &pr, ErrorCode::NotLeaderOrFollower, 0);
    assert!(h.delivered_offsets().is_empty());
    // A metadata refresh is asked for; the retry waits for the backoff (100 ms +-20 %).
    assert!(h.next_produce().is_none());
    h.advance(Duration::from_millis(79));
    assert!(h.next_produce().is_none());
    h.advance(Duration::from_millis(50));
    let (req, pr) = h.next_produce().expect("retry after backoff");
    let again = batches(&pr);
    assert_eq!(again[0].base_sequence, first[0].base_sequence);
    assert_eq!(again[0].producer_epoch, first[0].producer_epoch);
    h.answer_produce(&req, &pr, ErrorCode::None, 7);
    assert_eq!(h.delivered_offsets(), vec![(0, 7)]);
    assert_eq!(h.pair.producer.metrics().records_retried, 1);
}

#[test]
fn duplicate_sequence_is_success() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.send(rec("a"));
    let (req, pr) = h.next_produce().unwrap();
    h.answer_produce(&req, &pr, ErrorCode::DuplicateSequenceNumber, 0);
    assert_eq!(h.delivered_offsets().len(), 1);
    assert!(h.failures().is_empty());
}

#[test]
fn out_of_order_sequence_bumps_epoch_and_restarts_at_zero() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.send(rec("a"));
    let (req, pr) = h.next_produce().unwrap();
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    h.send(rec("b"));
    let (req, pr) = h.next_produce().unwrap();
    assert_eq!(batches(&pr)[0].base_sequence, 1);
    h.answer_produce(&req, &pr, ErrorCode::OutOfOrderSequenceNumber, 0);
    h.advance(Duration::from_millis(200));
    let (req, pr) = h.next_produce().expect("resent under a new epoch");
    let b = batches(&pr);
    assert_eq!(
        (b[0].producer_id, b[0].producer_epoch, b[0].base_sequence),
        (42, 1, 0)
    );
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 1)]);
    assert_eq!(h.pair.producer.metrics().epoch_bumps, 1);
}

#[test]
fn lost_answer_then_epoch_bump_fails_the_unknown_batch_instead_of_duplicating() {
    // Batch 0's answer is lost (connection drops): it may be in the log. When an
    // epoch bump becomes necessary, resending it under the new epoch could
    // duplicate it, so it fails with UnknownOutcome; later batches go on.
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("delivery.timeout.ms", "60000"),
        ("request.timeout.ms", "30000"),
    ]);
    h.send(rec("a").partition(0));
    let (req, _pr) = h.next_produce().unwrap();
    h.pair.disconnect(req.conn);
    h.advance(Duration::from_millis(200));
    let (req, pr) = h.next_produce().expect("retried after reconnect");
    assert_eq!(batches(&pr)[0].base_sequence, 0);
    h.answer_produce(&req, &pr, ErrorCode::UnknownProducerId, 0);
    h.advance(Duration::from_millis(200));
    h.pump();
    let f = h.failures();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].1, DeliveryError::UnknownOutcome);
    assert!(f[0].1.maybe_persisted());
}

#[test]
fn delivery_timeout_fails_a_batch_that_never_gets_an_answer() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "3000"),
    ]);
    h.send(rec("a"));
    for _ in 0..100 {
        // Never answer Produce; answer everything else.
        let _ = h.next_produce();
        h.advance(Duration::from_millis(100));
        if !h.failures().is_empty() {
            break;
        }
    }
    let f = h.failures();
    assert_eq!(f.len(), 1);
    match &f[0].1 {
        DeliveryError::Timeout {
            maybe_persisted, ..
        } => assert!(*maybe_persisted),
        other => panic!("{other:?}"),
    }
    assert!(h.pair.producer.is_idle() || h.pair.producer.pending_records() == 0);
}

#[test]
fn unknown_topic_fails_after_max_block() {
    let mut h = Harness::new(&[("max.block.ms", "500")]);
    h.topic_error = Some(ErrorCode::UnknownTopicOrPartition);
    h.send(rec("a"));
    for _ in 0..10 {
        let _ = h.next_produce();
        h.advance(Duration::from_millis(100));
    }
    let f = h.failures();
    assert_eq!(f.len(), 1);
    assert!(matches!(f[0].1, DeliveryError::TopicNotFound(500)));
}

#[test]
fn fatal_error_fails_everything_and_later_sends() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.send(rec("a"));
    let (req, pr) = h.next_produce().unwrap();
    h.send(rec("b"));
    h.answer_produce(&req, &pr, ErrorCode::ProducerFenced, 0);
    let f = h.failures();
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f.iter().all(|(_, e)| matches!(
        e,
        DeliveryError::Fatal {
            code: ErrorCode::ProducerFenced,
            ..
        }
    )));
    assert!(matches!(
        h.pair.producer.send(rec("c"), h.pair.now),
        Err(SendError::Fatal { .. })
    ));
}

/// A broker whose ApiVersions answer lacks Produce or Metadata (in our
/// range) cannot be used: the producer fails with UnsupportedVersion, asks
/// it nothing, and takes no more records. (The fuzzer found the Metadata
/// case panicking: the connection was ready, with no version to ask with.)
#[test]
fn broker_without_produce_or_metadata_fails_fatally() {
    for api in [ApiKey::Metadata, ApiKey::Produce] {
        let mut h = Harness::new(&[("linger.ms", "0")]);
        h.omit_api = Some(api);
        h.send(rec("a"));
        assert!(h.next_produce().is_none(), "{api:?}");
        h.advance(Duration::from_millis(500));
        assert!(h.next_produce().is_none(), "{api:?}");
        let f = h.failures();
        assert_eq!(f.len(), 1, "{api:?}: {f:?}");
        assert!(
            matches!(
                f[0].1,
                DeliveryError::Fatal {
                    code: ErrorCode::UnsupportedVersion,
                    ..
                }
            ),
            "{api:?}: {f:?}"
        );
        assert!(matches!(
            h.pair.producer.send(rec("b"), h.pair.now),
            Err(SendError::Fatal { .. })
        ));
    }
}

#[test]
fn keyed_records_follow_java_murmur2() {
    let mut h = Harness::with_partitions(&[("linger.ms", "0")], 7);
    h.send(rec("warmup").partition(0));
    let (req, pr) = h.next_produce().unwrap();
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    h.send(rec("x").key("foobar"));
    let (_req, pr) = h.next_produce().unwrap();
    let part = pr.topic_data[0].partition_data[0].index;
    assert_eq!(
        part,
        kafka_sansio::producer::partition_for_key(b"foobar", 7)
    );
    assert_eq!(part, ((-790332482i32) & 0x7fff_ffff) % 7);
}

#[test]
fn at_most_five_batches_in_flight_per_partition_with_idempotence() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("batch.size", "100"),
        ("max.in.flight.requests.per.connection", "5"),
    ]);
    h.send(rec("warm"));
    let (req, pr) = h.next_produce().unwrap();
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    for i in 0..20 {
        h.send(rec(&format!("value-{i:04}-{}", "x".repeat(80))));
    }
    let mut reqs = Vec::new();
    while let Some(r) = h.next_produce() {
        reqs.push(r);
    }
    assert_eq!(reqs.len(), 5, "in-flight limit");
    // Sequences are contiguous across the in-flight batches.
    let mut next = 1;
    for (_, pr) in &reqs {
        for b in batches(pr) {
            assert_eq!(b.base_sequence, next);
            next += b.record_count;
        }
    }
    let mut off = 1;
    for (req, pr) in reqs {
        h.answer_produce(&req, &pr, ErrorCode::None, off);
        off += 4;
    }
    while let Some((req, pr)) = h.next_produce() {
        h.answer_produce(&req, &pr, ErrorCode::None, off);
        off += 4;
    }
    assert_eq!(h.delivered_offsets().len(), 21);
}

#[test]
fn close_drains_then_emits_closed() {
    let mut h = Harness::new(&[("linger.ms", "1000")]);
    h.send(rec("a"));
    h.pair.producer.close(h.pair.now);
    let (req, pr) = h.next_produce().expect("close flushes the lingering batch");
    assert!(matches!(
        h.pair.producer.send(rec("late"), h.pair.now),
        Err(SendError::Closed(_))
    ));
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert!(matches!(h.pair.events.last(), Some(Event::Closed)));
    assert!(h.pair.producer.is_closed());
}

#[test]
fn flush_token_completes_when_prior_records_are_done() {
    let mut h = Harness::new(&[("linger.ms", "10000")]);
    h.send(rec("a"));
    let token = h.pair.producer.flush(h.pair.now);
    assert!(!h.pair.producer.is_flushed(token));
    let (req, pr) = h.next_produce().expect("flush readies the batch");
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert!(h.pair.producer.is_flushed(token));
}

#[cfg(feature = "lz4")]
#[test]
fn compressed_batches_fill_by_estimated_compressed_size() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("batch.size", "2000"),
        ("compression.type", "lz4"),
        ("max.in.flight.requests.per.connection", "1"),
        ("enable.idempotence", "false"),
        ("acks", "1"),
    ]);
    let value = "abcdefgh".repeat(25); // 200 compressible bytes
    h.send(rec(&value));
    let mut counts = Vec::new();
    let mut off = 0;
    for round in 0..40 {
        for _ in 0..60 {
            h.pair.producer.send(rec(&value), h.pair.now).unwrap();
        }
        h.pump();
        while let Some((req, pr)) = h.next_produce() {
            for b in batches(&pr) {
                assert_eq!(b.compression(), kafka_sansio::protocol::Compression::Lz4);
                // On the wire a batch stays near batch.size.
                assert!(
                    b.records.len() + 61 <= 2000 * 11 / 10,
                    "round {round}: {} bytes",
                    b.records.len()
                );
                counts.push(b.record_count);
            }
            h.answer_produce(&req, &pr, ErrorCode::None, off);
            off += 1000;
        }
    }
    // The first batches are cut at 2000 uncompressed bytes (~9 records); once
    // the ratio is learnt, batches carry many more records.
    assert!(counts.iter().take(3).all(|c| *c <= 10), "{counts:?}");
    // The estimate comes down slowly (as Java's), so look at the last rounds.
    assert!(
        counts.iter().rev().take(10).max().unwrap() > &30,
        "{counts:?}"
    );
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_with_a_broker_below_produce_v7_fails_clearly() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("compression.type", "zstd")]);
    h.produce_max = 6;
    h.send(rec("a"));
    assert!(h.next_produce().is_none(), "nothing is sent");
    h.advance(Duration::from_millis(10));
    let f = h.failures();
    assert_eq!(f.len(), 1);
    match &f[0].1 {
        DeliveryError::Broker { code, message, .. } => {
            assert_eq!(*code, ErrorCode::UnsupportedCompressionType);
            assert!(message.as_deref().unwrap().contains("Produce v7"));
        }
        other => panic!("{other:?}"),
    }
}

// ---- Kafka 4: Produce v13 topic ids (KIP-516), Metadata v13 errors (KIP-1102)

#[test]
fn produce_v13_names_topics_by_id_and_matches_the_answer_by_id() {
    let mut h = Harness::new(&[("linger.ms", "5")]);
    h.send(rec("a"));
    h.send(ProducerRecord::new(OTHER_TOPIC, "b".to_owned()));
    assert!(h.next_produce().is_none());
    h.advance(Duration::from_millis(5));
    let (req, pr) = h.next_produce().expect("produce");
    assert_eq!(req.header.api_version, 13);
    let mut ids: Vec<[u8; 16]> = pr.topic_data.iter().map(|t| t.topic_id).collect();
    ids.sort();
    let mut want = vec![h.topic_id(TOPIC), h.topic_id(OTHER_TOPIC)];
    want.sort();
    assert_eq!(ids, want);
    // v13 carries no name.
    assert!(pr.topic_data.iter().all(|t| t.name.is_empty()));
    let first = batches(&pr);

    // An answer naming other ids answers none of the batches: they are retried.
    let mut wrong = pr.clone();
    for t in &mut wrong.topic_data {
        t.topic_id = [9; 16];
    }
    h.answer_produce(&req, &wrong, ErrorCode::None, 0);
    assert!(h.delivered_offsets().is_empty());
    assert!(h.failures().is_empty());
    h.advance(Duration::from_millis(130));
    let (req, pr) = h.next_produce().expect("retry");
    assert_eq!(req.header.api_version, 13);
    let again = batches(&pr);
    assert_eq!(again.len(), 2);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.base_sequence, b.base_sequence);
    }
    h.answer_produce(&req, &pr, ErrorCode::None, 3);
    assert_eq!(h.delivered_offsets(), vec![(0, 3), (1, 3)]);
    assert!(h.pair.producer.is_idle());
}

#[test]
fn a_topic_without_a_known_id_is_sent_at_produce_v12() {
    let mut h = Harness::new(&[("linger.ms", "5")]);
    h.no_topic_id = vec![OTHER_TOPIC];
    h.send(rec("a"));
    h.send(ProducerRecord::new(OTHER_TOPIC, "b".to_owned()));
    assert!(h.next_produce().is_none());
    h.advance(Duration::from_millis(5));
    // One topic of the request has no id: the whole request names topics, at v12.
    let (req, pr) = h.next_produce().expect("produce");
    assert_eq!(req.header.api_version, 12);
    let mut names: Vec<&str> = pr.topic_data.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec![TOPIC, OTHER_TOPIC]);
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.delivered_offsets().len(), 2);

    // A request with only the topic whose id is known goes at v13.
    h.send(rec("c"));
    h.advance(Duration::from_millis(5));
    let (req, pr) = h.next_produce().expect("produce");
    assert_eq!(req.header.api_version, 13);
    assert_eq!(pr.topic_data.len(), 1);
    assert_eq!(pr.topic_data[0].topic_id, h.topic_id(TOPIC));
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.delivered_offsets().len(), 3);
    assert!(h.failures().is_empty());
}

#[test]
fn unknown_topic_id_refreshes_metadata_and_the_retry_delivers_once() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.send(rec("a"));
    let (req, pr) = h.next_produce().expect("produce");
    assert_eq!(req.header.api_version, 13);
    let old = h.topic_id(TOPIC);
    assert_eq!(pr.topic_data[0].topic_id, old);
    let first = batches(&pr);
    // The topic was deleted and created again: it has a new id.
    h.id_generation += 1;
    assert_ne!(h.topic_id(TOPIC), old);
    let asked = h.metadata_requests;
    h.answer_produce(&req, &pr, ErrorCode::UnknownTopicId, 0);
    assert!(h.delivered_offsets().is_empty());
    assert!(h.failures().is_empty());
    // Retriable: metadata is refreshed at once, the batch waits for its backoff.
    assert!(h.next_produce().is_none());
    assert_eq!(h.metadata_requests, asked + 1);
    h.advance(Duration::from_millis(130));
    let (req, pr) = h.next_produce().expect("retry");
    assert_eq!(req.header.api_version, 13);
    assert_eq!(pr.topic_data[0].topic_id, h.topic_id(TOPIC));
    let again = batches(&pr);
    assert_eq!(again[0].base_sequence, first[0].base_sequence);
    assert_eq!(again[0].producer_epoch, first[0].producer_epoch);
    h.answer_produce(&req, &pr, ErrorCode::None, 7);
    // Exactly once: one delivery, nothing failed, nothing sent again.
    assert_eq!(h.delivered_offsets(), vec![(0, 7)]);
    assert!(h.failures().is_empty());
    h.advance(Duration::from_secs(1));
    assert!(h.next_produce().is_none());
    assert_eq!(h.pair.producer.metrics().records_retried, 1);
    assert!(h.pair.producer.is_idle());
}

#[test]
fn metadata_top_level_error_without_brokers_is_a_failed_refresh_retried_with_backoff() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.metadata_errors = vec![ErrorCode::RequestTimedOut];
    h.send(rec("a"));
    // The answer lists no broker: nothing is placed or sent.
    assert!(h.next_produce().is_none());
    assert_eq!(h.metadata_requests, 1);
    assert!(h.failures().is_empty());
    // Retried after the backoff (100 ms +-20 %), not before.
    h.advance(Duration::from_millis(79));
    assert!(h.next_produce().is_none());
    assert_eq!(h.metadata_requests, 1);
    h.advance(Duration::from_millis(50));
    delivers_the_first_record_after(&mut h, 2);
}

/// The next Produce request comes once `metadata_requests` Metadata requests
/// were answered, and delivers record 0, the only record sent.
fn delivers_the_first_record_after(h: &mut Harness, metadata_requests: usize) {
    let (req, pr) = h.next_produce().expect("produce");
    assert_eq!(h.metadata_requests, metadata_requests);
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.delivered_offsets(), vec![(0, 0)]);
    assert!(h.failures().is_empty());
}

#[test]
fn metadata_top_level_error_not_retriable_leaves_the_records_waiting() {
    // Java fails no record for a top-level error: the refresh failed, the
    // records wait for their topic up to max.block.ms.
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.metadata_errors = vec![ErrorCode::UnknownServerError];
    h.send(rec("a"));
    assert!(h.next_produce().is_none());
    assert!(h.failures().is_empty(), "{:?}", h.failures());
    h.advance(Duration::from_millis(130));
    delivers_the_first_record_after(&mut h, 2);
}

#[test]
fn metadata_top_level_error_with_brokers_is_used_as_any_answer() {
    // Java only logs a top-level error other than REBOOTSTRAP_REQUIRED: an
    // answer that lists brokers updates the metadata all the same.
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.metadata_error_body = true;
    h.metadata_errors = vec![ErrorCode::UnknownServerError];
    h.send(rec("a"));
    delivers_the_first_record_after(&mut h, 1);
}

#[test]
fn rebootstrap_required_goes_back_to_the_bootstrap_servers() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    // The broker's advertised port differs from bootstrap.servers' (9000).
    h.broker_port = 9001;
    h.send(rec("a"));
    let (req, pr) = h.next_produce().expect("produce");
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.pair.connects(), vec![9000, 9001]);
    // A refresh (for a new topic) is answered REBOOTSTRAP_REQUIRED.
    h.metadata_errors = vec![ErrorCode::RebootstrapRequired];
    h.send(ProducerRecord::new(OTHER_TOPIC, "b".to_owned()));
    assert!(h.next_produce().is_none());
    assert_eq!(h.metadata_requests, 2);
    // The learned brokers are forgotten and the idle connections closed...
    assert!(h.pair.connections().next().is_none());
    assert!(h.failures().is_empty());
    assert_eq!(h.pair.producer.metrics().rebootstraps, 1);
    // ...so the producer starts over from bootstrap.servers once the
    // reconnect backoff (50 ms +/- 20 %) has passed: as in Java, the answer
    // that asked for the rebootstrap is not a failed refresh, and adds no
    // retry backoff (100 ms +/- 20 %).
    h.advance(Duration::from_millis(61));
    let (req, pr) = h.next_produce().expect("produce after rebootstrap");
    assert_eq!(h.pair.connects(), vec![9000, 9001, 9000, 9001]);
    assert_eq!(h.metadata_requests, 3);
    // The refresh answered REBOOTSTRAP_REQUIRED went to the broker; the next
    // one to bootstrap.servers.
    assert_eq!(h.metadata_ports, vec![9000, 9001, 9000]);
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 0)]);
    assert!(h.failures().is_empty());
}

#[test]
fn rebootstrap_required_keeps_the_answer_of_a_produce_in_flight_and_resends_nothing() {
    // No idempotence and acks=1: a resend of the batch would be a duplicate.
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("acks", "1"),
        ("enable.idempotence", "false"),
    ]);
    h.broker_port = 9001;
    h.send(rec("a"));
    // The Produce request is out on the broker's connection, not answered yet.
    let (req, pr) = h.next_produce().expect("produce");
    assert_eq!(h.pair.connects(), vec![9000, 9001]);
    let broker_conn = req.conn;
    // A refresh (for a new topic) goes on the idle bootstrap connection and
    // is answered REBOOTSTRAP_REQUIRED.
    h.metadata_errors = vec![ErrorCode::RebootstrapRequired];
    h.send(ProducerRecord::new(OTHER_TOPIC, "b".to_owned()));
    assert!(h.next_produce().is_none());
    assert_eq!(h.metadata_ports, vec![9000, 9000]);
    assert_eq!(h.pair.producer.metrics().rebootstraps, 1);
    // The connection carrying the batch stays open for its answer.
    assert!(h.pair.port(broker_conn).is_some());
    assert!(!h.pair.closed().contains(&broker_conn));
    h.answer_produce(&req, &pr, ErrorCode::None, 5);
    assert_eq!(h.delivered_offsets(), vec![(0, 5)]);
    // Answered, it is closed: it belongs to the cluster view given up.
    assert!(h.pair.closed().contains(&broker_conn));
    // The next Metadata request goes to a new connection to bootstrap.servers.
    h.advance(Duration::from_millis(200));
    let (req, pr) = h.next_produce().expect("produce of b after rebootstrap");
    assert_eq!(h.pair.connects(), vec![9000, 9001, 9000, 9001]);
    assert_eq!(h.metadata_ports, vec![9000, 9000, 9000]);
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    // Each record delivered once, and "a" was never sent again.
    assert_eq!(h.delivered_offsets(), vec![(0, 5), (1, 0)]);
    assert!(h.failures().is_empty());
    assert_eq!(h.pair.producer.metrics().produce_requests, 2);
    assert_eq!(h.pair.producer.metrics().records_retried, 0);
    h.advance(Duration::from_secs(1));
    assert!(h.next_produce().is_none());
    assert!(h.pair.producer.is_idle());
}

#[test]
fn rebootstrap_required_with_recovery_strategy_none_is_a_failed_refresh() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("metadata.recovery.strategy", "none")]);
    h.broker_port = 9001;
    h.send(rec("a"));
    let (req, pr) = h.next_produce().expect("produce");
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    h.metadata_errors = vec![ErrorCode::RebootstrapRequired];
    h.send(ProducerRecord::new(OTHER_TOPIC, "b".to_owned()));
    assert!(h.next_produce().is_none());
    // Nothing closed, nothing forgotten: the refresh is retried after the backoff.
    assert_eq!(h.pair.connections().count(), 2);
    assert_eq!(h.pair.producer.metrics().rebootstraps, 0);
    h.advance(Duration::from_millis(130));
    let (req, pr) = h.next_produce().expect("produce of b");
    assert_eq!(h.pair.connects(), vec![9000, 9001]);
    assert_eq!(h.metadata_requests, 3);
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 0)]);
}

/// A harness whose record "a" went to broker 0 at port 9001 (bootstrap.servers
/// is port 9000), both connections still open.
fn delivered_through_the_broker(props: &[(&str, &str)]) -> Harness {
    let mut h = Harness::new(props);
    h.broker_port = 9001;
    h.send(rec("a"));
    let (req, pr) = h.next_produce().expect("produce");
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.pair.connects(), vec![9000, 9001]);
    h
}

/// The connection the harness opened to `port`.
fn conn_to(h: &Harness, port: u16) -> ConnId {
    h.pair
        .connections()
        .find(|(_, p)| *p == port)
        .expect("connection to port")
        .0
}

#[test]
fn a_broker_left_out_of_metadata_is_forgotten() {
    // As Java's cluster view, the broker list is the last Metadata answer's:
    // a broker that left is not dialed for cluster requests any more.
    // (Strategy none: the producer only ever dials known brokers.)
    let mut h = Harness::new(&[("linger.ms", "0"), ("metadata.recovery.strategy", "none")]);
    h.broker_port = 9001;
    h.send(rec("a"));
    let (req, pr) = h.next_produce().expect("produce of a");
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    // Node 0 leaves; node 1, at another address, leads now.
    h.broker_id = 1;
    h.broker_port = 9002;
    h.send(rec("b"));
    let (req, pr) = h.next_produce().expect("produce of b");
    // The old leader refuses it until the refreshed metadata names node 1
    // (a retry may go out before the refresh is answered, as in Java).
    let (mut req, mut pr) = (req, pr);
    for _ in 0..5 {
        if h.pair.port(req.conn).unwrap() == 9002 {
            break;
        }
        h.answer_produce(&req, &pr, ErrorCode::NotLeaderOrFollower, 0);
        h.advance(Duration::from_secs(1));
        (req, pr) = h.next_produce().expect("b, retried");
    }
    assert_eq!(h.pair.port(req.conn).unwrap(), 9002);
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 1)]);
    // Every connection lost: the refresh for a new topic dials the broker
    // the last answer listed, never the one that left.
    let dialed = h.pair.connects().len();
    let conns: Vec<ConnId> = h.pair.connections().map(|(c, _)| c).collect();
    for conn in conns {
        h.pair.disconnect(conn);
    }
    h.advance(Duration::from_secs(2));
    h.send(ProducerRecord::new(OTHER_TOPIC, "c".to_owned()));
    let (req, pr) = h.next_produce().expect("produce of c");
    assert_eq!(h.pair.port(req.conn).unwrap(), 9002);
    assert!(
        !h.pair.connects()[dialed..].contains(&9001),
        "dialed the broker that left: {:?}",
        &h.pair.connects()[dialed..]
    );
    assert_eq!(h.metadata_ports.last(), Some(&9002));
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert!(h.failures().is_empty());
}

#[test]
fn no_reachable_known_broker_rebootstraps() {
    // KIP-899: once no connection is left and the known broker is in its
    // reconnect backoff, the producer forgets it for bootstrap.servers.
    let mut h = delivered_through_the_broker(&[("linger.ms", "0")]);
    for port in [9000, 9001] {
        let conn = conn_to(&h, port);
        h.pair.disconnect(conn);
    }
    assert_eq!(h.pair.producer.metrics().rebootstraps, 1);
    // Both backoffs over: bootstrap.servers is dialed, not the broker.
    h.advance(Duration::from_millis(200));
    h.send(rec("b"));
    let (req, pr) = h.next_produce().expect("produce of b");
    assert_eq!(h.pair.connects(), vec![9000, 9001, 9000, 9001]);
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 1)]);
}

#[test]
fn recovery_strategy_none_never_falls_back_to_bootstrap_servers() {
    let mut h =
        delivered_through_the_broker(&[("linger.ms", "0"), ("metadata.recovery.strategy", "none")]);
    // The bootstrap connection goes first; its backoff passes.
    let conn = conn_to(&h, 9000);
    h.pair.disconnect(conn);
    h.advance(Duration::from_millis(200));
    // Then the broker's: the producer waits for the broker, the only one it knows.
    let conn = conn_to(&h, 9001);
    h.pair.disconnect(conn);
    h.send(rec("b"));
    assert!(h.next_produce().is_none());
    assert_eq!(h.pair.connects(), vec![9000, 9001]);
    h.advance(Duration::from_millis(200));
    let (req, pr) = h.next_produce().expect("produce of b");
    assert_eq!(h.pair.connects(), vec![9000, 9001, 9001]);
    assert_eq!(h.pair.producer.metrics().rebootstraps, 0);
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 1)]);
}

#[test]
fn metadata_missing_past_the_rebootstrap_trigger_rebootstraps() {
    // KIP-1102: metadata wanted for metadata.recovery.rebootstrap.trigger.ms
    // without a usable answer sends the producer back to bootstrap.servers.
    let mut h = delivered_through_the_broker(&[
        ("linger.ms", "0"),
        ("metadata.recovery.rebootstrap.trigger.ms", "1000"),
    ]);
    h.metadata_errors = vec![ErrorCode::RequestTimedOut; 100];
    h.send(ProducerRecord::new(OTHER_TOPIC, "b".to_owned()));
    let mut waited = Duration::ZERO;
    while waited < Duration::from_millis(990) {
        assert!(h.next_produce().is_none());
        h.advance(Duration::from_millis(10));
        waited += Duration::from_millis(10);
    }
    // Still the first connections, the refresh failing on the bootstrap one.
    assert_eq!(h.pair.connects(), vec![9000, 9001]);
    assert_eq!(h.pair.producer.metrics().rebootstraps, 0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.pair.producer.metrics().rebootstraps, 1);
    assert!(h.pair.connections().next().is_none());
    h.metadata_errors.clear();
    h.advance(Duration::from_millis(1100));
    let (req, pr) = h.next_produce().expect("produce of b after rebootstrap");
    assert_eq!(h.pair.connects(), vec![9000, 9001, 9000, 9001]);
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 0)]);
    assert!(h.failures().is_empty());
}

#[test]
fn message_too_large_splits_the_batch_and_fails_only_the_record_over_the_limit() {
    // A broker whose topic takes batches of at most 1000 bytes (max.message.bytes):
    // the batch of four records is refused as a whole; Java splits it and
    // retries, so the small records are delivered and only the big one fails.
    let mut h = Harness::new(&[("linger.ms", "5"), ("compression.type", "none")]);
    h.send(rec("a").partition(0));
    h.send(rec("b").partition(0));
    h.send(ProducerRecord::new(TOPIC, vec![b'c'; 3000]).partition(0));
    h.send(rec("d").partition(0));
    h.advance(Duration::from_millis(5));
    let mut sizes = Vec::new();
    let mut offset = 0;
    for _ in 0..20 {
        let Some((req, pr)) = h.next_produce() else {
            if h.pair.producer.is_idle() {
                break;
            }
            h.advance(Duration::from_millis(200));
            continue;
        };
        let b = batches(&pr);
        assert_eq!(b.len(), 1, "one batch per partition per request");
        let values: Vec<_> = b[0]
            .records()
            .unwrap()
            .into_iter()
            .map(|r| r.value.unwrap().len())
            .collect();
        sizes.push((values.clone(), b[0].base_sequence));
        if b[0].records.len() + 61 > 1000 {
            h.answer_produce(&req, &pr, ErrorCode::MessageTooLarge, 0);
        } else {
            h.answer_produce(&req, &pr, ErrorCode::None, offset);
            offset += values.len() as i64;
        }
    }
    // The four, then the halves in order, the refused half split again; each
    // half keeps its part of the original sequence range.
    assert_eq!(sizes[0], (vec![1, 1, 3000, 1], 0));
    assert_eq!(sizes[1], (vec![1, 1], 0));
    assert_eq!(sizes[2], (vec![3000, 1], 2));
    assert_eq!(sizes[3], (vec![3000], 2));
    let delivered: Vec<u64> = h.delivered_offsets().iter().map(|(id, _)| *id).collect();
    let failed = h.failures();
    assert_eq!(failed.len(), 1, "only the big record fails: {failed:?}");
    assert!(
        matches!(
            failed[0].1,
            DeliveryError::Broker {
                code: ErrorCode::MessageTooLarge,
                ..
            }
        ),
        "{failed:?}"
    );
    let big = failed[0].0;
    let mut all: Vec<u64> = delivered.clone();
    all.push(big);
    all.sort();
    assert_eq!(
        all.len(),
        4,
        "every record has one outcome: {delivered:?} + {big}"
    );
    assert!(!delivered.contains(&big));
    assert!(h.pair.producer.is_idle());
    assert_eq!(h.pair.producer.buffered_bytes(), 0);
}

/// A producer configured for a secured cluster never sends a request in the
/// clear: under TLS its first bytes are a TLS ClientHello, under SASL its
/// first request after ApiVersions is SaslHandshake (no Metadata before it).
#[test]
fn secured_protocols_never_send_requests_in_the_clear() {
    for protocol in ["SSL", "SASL_PLAINTEXT", "SASL_SSL"] {
        let mut c = ProducerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .set("security.protocol", protocol)
            .unwrap();
        if protocol.starts_with("SASL") {
            c = c
                .set("sasl.mechanism", "PLAIN")
                .unwrap()
                .set("sasl.username", "u")
                .unwrap()
                .set("sasl.password", "p")
                .unwrap();
        }
        let config = match c.build() {
            Ok(c) => c,
            // A build without the feature refuses the setting by name.
            Err(e) => {
                assert!(e.to_string().contains("feature"), "{protocol}: {e}");
                continue;
            }
        };
        let now = Instant::now();
        let mut p = Producer::new(config, now, 1_800_000_000_000).unwrap();
        p.send(rec("x"), now).unwrap();
        let Some(kafka_sansio::producer::Transmit::Connect { conn, .. }) = p.poll_transmit(now)
        else {
            panic!("{protocol}: a connect first");
        };
        p.handle_connected(conn, now);
        let Some(kafka_sansio::producer::Transmit::Send { data, .. }) = p.poll_transmit(now) else {
            panic!("{protocol}: bytes after the connect");
        };
        if protocol.ends_with("SSL") {
            assert_eq!(
                &data[..2],
                &[0x16, 0x03],
                "{protocol}: a TLS handshake record"
            );
            assert!(
                !data.windows(8).any(|w| w == b"kafka-sa"),
                "{protocol}: no client id in the clear"
            );
            continue;
        }
        // SASL_PLAINTEXT: ApiVersions, then (answered) SaslHandshake.
        let header = RequestHeader::decode(&mut data.slice(4..)).unwrap();
        assert_eq!(header.api_key, ApiKey::ApiVersions.code());
        let resp = ApiVersionsResponse {
            api_keys: ApiKey::ALL
                .iter()
                .map(|k| ApiVersion {
                    api_key: k.code(),
                    min_version: k.versions().0,
                    max_version: k.versions().1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_response(&mut buf, header.correlation_id, header.api_version, &resp).unwrap();
        p.handle_data(conn, &buf, now);
        let Some(kafka_sansio::producer::Transmit::Send { data, .. }) = p.poll_transmit(now) else {
            panic!("{protocol}: SaslHandshake after ApiVersions");
        };
        let header = RequestHeader::decode(&mut data.slice(4..)).unwrap();
        assert_eq!(header.api_key, ApiKey::SaslHandshake.code(), "{protocol}");
        assert!(
            p.poll_transmit(now).is_none(),
            "{protocol}: nothing else before authentication"
        );
    }
}

#[test]
fn a_connection_idle_past_connections_max_idle_ms_is_closed_and_reopened_on_demand() {
    let mut h =
        delivered_through_the_broker(&[("linger.ms", "0"), ("connections.max.idle.ms", "10000")]);
    assert!(h.pair.closed().is_empty());
    // The idle close is a deadline of its own: the driver is woken for it.
    let wake = h.pair.core(|p, _| p.poll_timeout()).expect("a deadline");
    assert_eq!(wake, h.pair.now + Duration::from_secs(10));
    h.advance(Duration::from_millis(9_999));
    assert!(h.pair.closed().is_empty(), "closed before its idle time");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.pair.closed().len(), 2, "bootstrap and broker connections");
    assert_eq!(h.pair.connections().count(), 0);
    // The next record opens a connection again, with no backoff to wait.
    h.send(rec("b"));
    let (req, pr) = h.next_produce().expect("produce after reopening");
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.delivered_offsets(), vec![(0, 0), (1, 1)]);
    assert!(h.pair.connects().len() > 2 && h.pair.connects().ends_with(&[9001]));
}

#[test]
fn a_busy_connection_or_a_negative_idle_time_is_never_closed_for_idleness() {
    let mut h =
        delivered_through_the_broker(&[("linger.ms", "0"), ("connections.max.idle.ms", "-1")]);
    h.advance(Duration::from_secs(3_600));
    assert!(h.pair.closed().is_empty());
    // A request in flight keeps its connection however long it takes.
    let mut h = delivered_through_the_broker(&[
        ("linger.ms", "0"),
        ("connections.max.idle.ms", "1000"),
        ("request.timeout.ms", "30000"),
    ]);
    h.send(rec("b"));
    let (req, pr) = h.next_produce().expect("produce");
    let produce_conn = req.conn;
    h.advance(Duration::from_secs(5));
    assert!(!h.pair.closed().contains(&produce_conn));
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    h.advance(Duration::from_millis(999));
    assert!(!h.pair.closed().contains(&produce_conn));
    h.advance(Duration::from_millis(1));
    assert!(h.pair.closed().contains(&produce_conn));
}

#[test]
fn connect_timeouts_double_per_failed_connect_up_to_the_max() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("socket.connection.setup.timeout.ms", "1000"),
        ("socket.connection.setup.timeout.max.ms", "4000"),
        ("reconnect.backoff.ms", "0"),
        ("reconnect.backoff.max.ms", "0"),
    ]);
    // No connect is answered: each one times out.
    h.pair.hold_network(true);
    h.send(rec("a"));
    let mut dials = vec![h.pair.now];
    let next_deadline = |h: &mut Harness, dials: &mut Vec<Instant>| {
        let t = h
            .pair
            .core(|p, _| p.poll_timeout())
            .expect("a connect deadline");
        h.pair.now = h.pair.now.max(t);
        h.pair.core(|p, now| p.handle_timeout(now));
        h.pump();
        while dials.len() < h.pair.dialed().len() {
            dials.push(h.pair.now);
        }
    };
    while dials.len() < 6 {
        next_deadline(&mut h, &mut dials);
    }
    let timeouts: Vec<u128> = dials
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // Each within 20% of 1 s, 2 s, 4 s, 4 s, 4 s.
    for (t, nominal) in timeouts.iter().zip([1000u128, 2000, 4000, 4000, 4000]) {
        assert!(
            *t >= nominal * 8 / 10 && *t <= nominal * 12 / 10,
            "{timeouts:?}"
        );
    }
    // A connect that succeeds starts the timeout over.
    let conn = *h.pair.connecting().last().expect("a connect waiting");
    h.pair.answer_connect(conn);
    h.pair.disconnect(conn);
    let opened = *dials.last().unwrap();
    let before = h.pair.dialed().len();
    assert!(before > dials.len() - 1, "redialed at once");
    let redial = h.pair.now;
    next_deadline(&mut h, &mut dials);
    let after = (h.pair.now - redial).as_millis();
    assert!(
        (800..=1200).contains(&after),
        "{after} ms after {:?}",
        redial - opened
    );
}

#[test]
fn a_topic_idle_past_metadata_max_idle_ms_is_left_out_of_metadata_until_used_again() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("metadata.max.idle.ms", "5000"),
        ("metadata.max.age.ms", "6000"),
    ]);
    h.send(rec("a"));
    let (req, pr) = h.next_produce().expect("produce");
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.metadata_topics, vec![vec![TOPIC.to_string()]]);
    // Refreshed by age after 6 s: the topic has been idle 6 s, past 5 s.
    h.advance(Duration::from_secs(6));
    assert!(h.next_produce().is_none());
    assert_eq!(h.metadata_topics.len(), 2, "{:?}", h.metadata_topics);
    assert!(h.metadata_topics[1].is_empty(), "{:?}", h.metadata_topics);
    // Used again: its metadata is asked for again at once.
    h.send(rec("b"));
    let (req, pr) = h.next_produce().expect("produce");
    h.answer_produce(&req, &pr, ErrorCode::None, 1);
    assert_eq!(h.metadata_topics.len(), 3);
    assert_eq!(h.metadata_topics[2], vec![TOPIC.to_string()]);
}

/// The value of Java's metric `name` in `group` (the one tagged `tag`, when given).
fn metric(h: &Harness, group: &str, name: &str, tag: Option<(&str, &str)>) -> f64 {
    let all = h.pair.producer.metrics_snapshot(h.pair.now);
    let m = all
        .iter()
        .find(|m| {
            m.group == group
                && m.name == name
                && tag.is_none_or(|(k, v)| m.tags.iter().any(|(tk, tv)| *tk == k && tv == v))
        })
        .unwrap_or_else(|| panic!("no {group}/{name} {tag:?}"));
    assert!(m
        .tags
        .iter()
        .any(|(k, v)| *k == "client-id" && v == "kafka-sansio"));
    m.value
}

fn pm(h: &Harness, name: &str) -> f64 {
    metric(h, "producer-metrics", name, None)
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn producer_metrics_follow_the_scripted_timings() {
    let mut h = Harness::new(&[
        ("linger.ms", "100"),
        ("metrics.sample.window.ms", "1000"),
        ("metrics.num.samples", "2"),
    ]);
    h.pair.record_sends();
    let t0 = h.pair.now;
    for v in ["aaaa", "bbbb", "cccc"] {
        h.pair
            .core(|p, now| p.send(rec(v).partition(0), now))
            .unwrap();
    }
    h.pump();
    assert!(h.next_produce().is_none(), "lingering");
    h.advance(Duration::from_millis(100));
    let (req, pr) = h.next_produce().expect("produce");
    let batch_len = pr.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .unwrap()
        .len() as f64;
    h.advance(Duration::from_millis(40));
    h.answer_produce(&req, &pr, ErrorCode::None, 0);
    assert_eq!(h.delivered_offsets().len(), 3);
    assert_eq!(h.pair.now - t0, Duration::from_millis(140));

    // Rates divide by Java's window: the time since the oldest sample, at
    // least all windows but one (here 1 s).
    let since = |start_ms: f64| (140.0 - start_ms) / 1000.0 + 1.0;
    assert_eq!(pm(&h, "record-send-total"), 3.0);
    assert!(close_to(pm(&h, "record-send-rate"), 3.0 / since(100.0)));
    let topic = metric(
        &h,
        "producer-topic-metrics",
        "record-send-rate",
        Some(("topic", TOPIC)),
    );
    assert!(close_to(topic, 3.0 / since(100.0)));
    assert_eq!(pm(&h, "record-queue-time-avg"), 100.0);
    assert_eq!(pm(&h, "record-queue-time-max"), 100.0);
    assert!(close_to(pm(&h, "request-latency-avg"), 40.0));
    assert!(close_to(pm(&h, "request-latency-max"), 40.0));
    let node = metric(
        &h,
        "producer-node-metrics",
        "request-latency-avg",
        Some(("node-id", "node-0")),
    );
    assert!(close_to(node, 40.0));
    assert_eq!(pm(&h, "records-per-request-avg"), 3.0);
    assert_eq!(pm(&h, "batch-size-avg"), batch_len);
    assert_eq!(pm(&h, "batch-size-max"), batch_len);
    assert_eq!(pm(&h, "compression-rate-avg"), 1.0);
    assert!(close_to(pm(&h, "record-size-avg"), batch_len / 3.0));
    assert_eq!(pm(&h, "produce-throttle-time-avg"), 0.0);
    assert_eq!(pm(&h, "record-error-rate"), 0.0);
    assert_eq!(pm(&h, "record-retry-rate"), 0.0);
    // Every request of every API went out at t0 or later, the first at t0.
    let sent: usize = h.pair.sent().iter().map(|(_, d)| d.len()).sum();
    assert!(close_to(
        pm(&h, "outgoing-byte-rate"),
        sent as f64 / since(0.0)
    ));
    assert!(close_to(
        pm(&h, "request-rate"),
        h.requests as f64 / since(0.0)
    ));
    assert!(close_to(
        pm(&h, "request-size-avg"),
        sent as f64 / h.requests as f64
    ));
    assert!(close_to(
        pm(&h, "incoming-byte-rate"),
        h.received as f64 / since(0.0)
    ));
    assert_eq!(
        pm(&h, "connection-count"),
        h.pair.connections().count() as f64
    );
    assert!(close_to(
        pm(&h, "connection-creation-rate"),
        h.pair.connects().len() as f64 / since(0.0)
    ));
    assert_eq!(pm(&h, "buffer-total-bytes"), 33_554_432.0);
    assert_eq!(pm(&h, "buffer-available-bytes"), 33_554_432.0);
    assert!(close_to(pm(&h, "metadata-age"), 0.14));
    // Drivers report the waits for buffer.memory.
    assert_eq!(pm(&h, "bufferpool-wait-time-ns-total"), 0.0);
    h.pair.producer.record_buffer_wait(Duration::from_millis(5));
    h.pair.producer.set_waiting_threads(2);
    assert_eq!(pm(&h, "bufferpool-wait-time-ns-total"), 5e6);
    assert_eq!(pm(&h, "bufferpool-wait-time-total"), 5e6);
    assert_eq!(pm(&h, "waiting-threads"), 2.0);

    // Two windows later every sample has aged out; totals stay.
    h.advance(Duration::from_millis(2_000));
    assert_eq!(pm(&h, "record-send-rate"), 0.0);
    assert!(pm(&h, "request-latency-avg").is_nan());
    assert!(pm(&h, "record-queue-time-max").is_nan());
    assert_eq!(pm(&h, "record-send-total"), 3.0);
}

#[test]
fn retry_and_error_rates_count_records_per_batch() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("enable.idempotence", "false"),
        ("retries", "1"),
        ("retry.backoff.ms", "10"),
        ("retry.backoff.max.ms", "10"),
        ("metrics.sample.window.ms", "1000"),
    ]);
    h.pair
        .core(|p, now| p.send(rec("a").partition(0), now))
        .unwrap();
    h.pair
        .core(|p, now| p.send(rec("b").partition(0), now))
        .unwrap();
    let (req, pr) = h.next_produce().expect("produce");
    h.answer_produce(&req, &pr, ErrorCode::NotLeaderOrFollower, -1);
    h.advance(Duration::from_millis(10));
    let (req, pr) = h.next_produce().expect("retry");
    h.answer_produce(&req, &pr, ErrorCode::NotLeaderOrFollower, -1);
    assert_eq!(h.failures().len(), 2);
    // Both at most 10 ms after the first sample: the window is 1 s plus that.
    let rate = pm(&h, "record-retry-rate");
    assert!((2.0 / 1.011..=2.0 / 1.0).contains(&rate), "{rate}");
    let rate = pm(&h, "record-error-rate");
    assert!((2.0 / 1.011..=2.0 / 1.0).contains(&rate), "{rate}");
    // Two batches' worth of records went out: the first attempt and the retry.
    assert_eq!(pm(&h, "record-send-total"), 4.0);
}
