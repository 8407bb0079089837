//! [`MockCluster`]: the sans-IO core of the mock. Request frames in, response
//! frames out; no sockets, no threads, no clock (`now` is passed in).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::batch::{decode_records, last_sequence, MockRecord};
use crate::protocol::error::ProtocolError;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{encode_response, ApiKey, ApiMessage, RequestHeader};
use crate::protocol::messages::api_versions::{
    ApiVersion, ApiVersionsRequest, ApiVersionsResponse,
};
use crate::protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchResponse, FetchableTopicResponse, PartitionData,
};
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
use crate::protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use crate::protocol::messages::produce::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceData, PartitionProduceResponse, ProduceRequest,
    ProduceResponse, TopicProduceResponse, FIRST_TOPIC_ID_VERSION,
};
use crate::protocol::record::{attributes, RecordBatch, MAGIC, OFF_MAGIC};
use crate::protocol::Compression;

/// How many batches per producer and partition a broker remembers for
/// duplicate detection (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const RETAINED_BATCHES: usize = 5;

/// First producer id handed out by InitProducerId.
pub const FIRST_PRODUCER_ID: i64 = 1000;

/// Settings of a [`MockCluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// Number of brokers (node ids `0..brokers`).
    pub brokers: usize,
    /// Create unknown topics on Metadata (when the request allows it) and on Produce.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    pub default_partitions: i32,
    /// Cluster id reported in Metadata v2+.
    pub cluster_id: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            brokers: 1,
            auto_create_topics: true,
            default_partitions: 1,
            cluster_id: "kafka-sansio-mock".to_owned(),
        }
    }
}

/// What to do with one request frame, as returned by [`MockCluster::handle_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct HandleResult {
    /// The whole response frame, size prefix included; `None` for acks=0
    /// Produce and whenever the connection is closed instead of answering.
    pub response: Option<Bytes>,
    /// Close the connection (after writing `response`, if any).
    pub close: bool,
    /// When the response (or the close) is due: `now` plus the broker's latency.
    pub due: Instant,
}

/// One batch stored in a partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Number of records.
    pub record_count: i32,
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch (-1 when not idempotent).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 when not idempotent).
    pub base_sequence: i32,
    /// The batch as received, with `baseOffset` (bytes 0..8) rewritten.
    pub bytes: Bytes,
}

#[derive(Debug, Clone)]
struct Broker {
    host: String,
    port: i32,
    down: bool,
    latency: Duration,
    throttle_ms: i32,
}

#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

#[derive(Debug, Clone)]
struct Partition {
    leader: i32,
    leader_epoch: i32,
    log: Vec<StoredBatch>,
    log_start: i64,
    next_offset: i64,
    producers: BTreeMap<i64, ProducerEntry>,
}

#[derive(Debug, Clone)]
struct Topic {
    id: [u8; 16],
    partitions: Vec<Partition>,
}

/// An in-memory Kafka cluster answering ApiVersions, Metadata, InitProducerId
/// and Produce frames, with deterministic fault injection.
#[derive(Debug, Clone)]
pub struct MockCluster {
    config: MockConfig,
    brokers: Vec<Broker>,
    topics: BTreeMap<String, Topic>,
    topics_created: u64,
    next_producer_id: i64,
    producer_epochs: BTreeMap<i64, i16>,
    pushed_errors: BTreeMap<i16, VecDeque<ErrorCode>>,
    metadata_top_level_errors: VecDeque<ErrorCode>,
    fail_after_append: usize,
    produced_batches: u64,
    produced_records: u64,
}

fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Why a Produce for one partition was refused (or a duplicate).
enum Appended {
    New(i64),
    Duplicate(i64),
}

impl MockCluster {
    /// A cluster of `brokers` brokers (hosts "localhost", port 9092 + id until set) with defaults.
    pub fn new(brokers: usize) -> MockCluster {
        MockCluster::with_config(MockConfig {
            brokers,
            ..MockConfig::default()
        })
    }

    /// A cluster with the given settings.
    ///
    /// # Panics
    /// When `config.brokers` is 0.
    pub fn with_config(config: MockConfig) -> MockCluster {
        assert!(
            config.brokers > 0,
            "a mock cluster needs at least one broker"
        );
        let brokers = (0..config.brokers)
            .map(|i| Broker {
                host: "localhost".to_owned(),
                port: 9092 + i as i32,
                down: false,
                latency: Duration::ZERO,
                throttle_ms: 0,
            })
            .collect();
        MockCluster {
            config,
            brokers,
            topics: BTreeMap::new(),
            topics_created: 0,
            next_producer_id: FIRST_PRODUCER_ID,
            producer_epochs: BTreeMap::new(),
            pushed_errors: BTreeMap::new(),
            metadata_top_level_errors: VecDeque::new(),
            fail_after_append: 0,
            produced_batches: 0,
            produced_records: 0,
        }
    }

    /// The settings in effect.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// Number of brokers.
    pub fn broker_count(&self) -> usize {
        self.brokers.len()
    }

    fn broker_mut(&mut self, node: i32) -> &mut Broker {
        let n = self.brokers.len();
        usize::try_from(node)
            .ok()
            .and_then(|i| self.brokers.get_mut(i))
            .unwrap_or_else(|| panic!("mock broker {node} does not exist (0..{n})"))
    }

    fn broker(&self, node: i32) -> Option<&Broker> {
        usize::try_from(node).ok().and_then(|i| self.brokers.get(i))
    }

    /// Sets the host and port that Metadata advertises for `node`.
    ///
    /// # Panics
    /// When `node` is not a broker of this cluster (as do the other per-node setters).
    pub fn set_broker_address(&mut self, node: i32, host: impl Into<String>, port: u16) {
        let b = self.broker_mut(node);
        b.host = host.into();
        b.port = port as i32;
    }

    /// The advertised host and port of `node`.
    pub fn broker_address(&self, node: i32) -> Option<(&str, u16)> {
        self.broker(node).map(|b| (b.host.as_str(), b.port as u16))
    }

    /// Turns topic auto-creation on Metadata and Produce on or off.
    pub fn set_auto_create_topics(&mut self, on: bool) {
        self.config.auto_create_topics = on;
    }

    /// Sets the partition count of auto-created topics.
    pub fn set_default_partitions(&mut self, partitions: i32) {
        self.config.default_partitions = partitions.max(1);
    }

    /// Creates a topic whose partition `p` is led by broker `p % brokers`.
    ///
    /// Errors: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION (Kafka's naming
    /// rules), INVALID_PARTITIONS (fewer than 1).
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Result<(), ErrorCode> {
        if !valid_topic_name(name) {
            return Err(ErrorCode::InvalidTopicException);
        }
        if partitions < 1 {
            return Err(ErrorCode::InvalidPartitions);
        }
        if self.topics.contains_key(name) {
            return Err(ErrorCode::TopicAlreadyExists);
        }
        self.topics_created += 1;
        // A deterministic, non-zero topic id.
        let mut id = [0u8; 16];
        id[0..8].copy_from_slice(&0x6d6f_636b_0000_0000u64.to_be_bytes());
        id[8..16].copy_from_slice(&self.topics_created.to_be_bytes());
        let n = self.brokers.len() as i32;
        let partitions = (0..partitions)
            .map(|p| Partition {
                leader: p % n,
                leader_epoch: 0,
                log: Vec::new(),
                log_start: 0,
                next_offset: 0,
                producers: BTreeMap::new(),
            })
            .collect();
        self.topics
            .insert(name.to_owned(), Topic { id, partitions });
        Ok(())
    }

    /// Deletes a topic and its log. Its id is never reused: a topic created
    /// again under the name gets a new one, so Produce v13 with the old id is
    /// answered UNKNOWN_TOPIC_ID, as by Kafka.
    ///
    /// Errors: UNKNOWN_TOPIC_OR_PARTITION.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), ErrorCode> {
        self.topics
            .remove(name)
            .map(|_| ())
            .ok_or(ErrorCode::UnknownTopicOrPartition)
    }

    /// The id of `topic` (Metadata v10+ reports it; Produce v13+ names topics by it).
    pub fn topic_id(&self, topic: &str) -> Option<[u8; 16]> {
        self.topics.get(topic).map(|t| t.id)
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    /// Partition count of `topic`.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.topics.get(topic).map(|t| t.partitions.len() as i32)
    }

    /// Current leader of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.partition(topic, partition).map(|p| p.leader)
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<&Partition> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
    }

    // ---- faults -------------------------------------------------------------

    /// The next requests of `api` answer with these error codes, one request
    /// per code, in order (for Produce every partition of the request gets the
    /// code and nothing is appended; for Metadata every topic returned does).
    pub fn push_errors(&mut self, api: ApiKey, errors: Vec<ErrorCode>) {
        self.pushed_errors
            .entry(api.code())
            .or_default()
            .extend(errors);
    }

    /// The next Metadata requests answer with these top-level error codes
    /// (KIP-1102, e.g. REBOOTSTRAP_REQUIRED), one request per code, and list
    /// no broker or topic, as a proxy refusing the request would. Below
    /// Metadata v13, which has no such field, the answer only lists nothing.
    pub fn push_metadata_top_level_errors(&mut self, errors: Vec<ErrorCode>) {
        self.metadata_top_level_errors.extend(errors);
    }

    /// Pushed errors not yet consumed for `api`.
    pub fn pending_errors(&self, api: ApiKey) -> usize {
        self.pushed_errors.get(&api.code()).map_or(0, |q| q.len())
    }

    /// The next `n` Produce requests are processed (appended) but answered by
    /// closing the connection: the response is lost after the append.
    pub fn fail_after_append(&mut self, n: usize) {
        self.fail_after_append = n;
    }

    /// Moves the leadership of a partition to `node`, bumping its leader epoch.
    ///
    /// Errors: UNKNOWN_TOPIC_OR_PARTITION, BROKER_NOT_AVAILABLE (no such node).
    pub fn set_leader(&mut self, topic: &str, partition: i32, node: i32) -> Result<(), ErrorCode> {
        if self.broker(node).is_none() {
            return Err(ErrorCode::BrokerNotAvailable);
        }
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| {
                usize::try_from(partition)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
            })
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != node {
            p.leader = node;
            p.leader_epoch += 1;
        }
        Ok(())
    }

    /// Takes a broker down or up. A down broker closes the connection on every
    /// request; it stays listed in Metadata and keeps its leaderships (as in
    /// Kafka before the controller notices; move them with [`Self::set_leader`]).
    pub fn set_broker_down(&mut self, node: i32, down: bool) {
        self.broker_mut(node).down = down;
    }

    /// True when `node` is down.
    pub fn is_broker_down(&self, node: i32) -> bool {
        self.broker(node).is_some_and(|b| b.down)
    }

    /// Delays every response of `node` by `latency` (see [`HandleResult::due`]).
    pub fn set_latency(&mut self, node: i32, latency: Duration) {
        self.broker_mut(node).latency = latency;
    }

    /// Makes every response of `node` carry `throttle_time_ms = ms` (0 to stop).
    /// The mock does not mute the connection itself.
    pub fn throttle(&mut self, node: i32, ms: i32) {
        self.broker_mut(node).throttle_ms = ms.max(0);
    }

    // ---- reads --------------------------------------------------------------

    /// The stored batches of a partition (cheap clones of `Bytes`), in offset order.
    pub fn batches(&self, topic: &str, partition: i32) -> Vec<StoredBatch> {
        self.partition(topic, partition)
            .map(|p| p.log.clone())
            .unwrap_or_default()
    }

    /// The records of a partition, decoded (compressed batches decompressed).
    pub fn records(&self, topic: &str, partition: i32) -> Result<Vec<MockRecord>, ProtocolError> {
        let mut out = Vec::new();
        if let Some(p) = self.partition(topic, partition) {
            for b in &p.log {
                out.extend(decode_records(&b.bytes)?);
            }
        }
        Ok(out)
    }

    /// The offset the next appended record gets (`None` for an unknown partition).
    pub fn log_end_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partition(topic, partition).map(|p| p.next_offset)
    }

    /// The first offset of a partition log (always 0: the mock never deletes).
    pub fn log_start_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partition(topic, partition).map(|p| p.log_start)
    }

    /// The epoch and last sequence a partition remembers for a producer id.
    pub fn producer_state(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
    ) -> Option<(i16, i32)> {
        let e = self
            .partition(topic, partition)?
            .producers
            .get(&producer_id)?;
        Some((e.epoch, e.batches.back().map_or(-1, |b| b.last_seq)))
    }

    /// Batches appended since the cluster was created (duplicates not counted).
    pub fn produced_batches(&self) -> u64 {
        self.produced_batches
    }

    /// Records appended since the cluster was created.
    pub fn produced_records(&self) -> u64 {
        self.produced_records
    }

    // ---- requests -----------------------------------------------------------

    /// Handles one request frame (header and body, without the size prefix)
    /// received by broker `node_id`.
    ///
    /// Closes the connection (no response) when the broker is down, the API
    /// key is unknown, the version is outside the codec's range (except for
    /// ApiVersions, which answers UNSUPPORTED_VERSION in v0), the frame does
    /// not decode, or a [`Self::fail_after_append`] fault fires.
    ///
    /// # Panics
    /// When `node_id` is not a broker of this cluster.
    pub fn handle_request(&mut self, node_id: i32, frame: Bytes, now: Instant) -> HandleResult {
        let broker = self
            .broker(node_id)
            .unwrap_or_else(|| panic!("mock broker {node_id} does not exist"));
        let due = now + broker.latency;
        let close = HandleResult {
            response: None,
            close: true,
            due,
        };
        if broker.down {
            return close;
        }
        let throttle = broker.throttle_ms;
        let mut body = frame;
        let Ok(header) = RequestHeader::decode(&mut body) else {
            return close;
        };
        let Some(api) = ApiKey::from_code(header.api_key) else {
            log::debug!("mock broker {node_id}: unknown API key {}", header.api_key);
            return close;
        };
        let version = header.api_version;
        let cid = header.correlation_id;
        let (lo, hi) = api.versions();
        if version < lo || version > hi {
            if api == ApiKey::ApiVersions && version > hi {
                // KIP-511: answer in v0 so that the client can read it, listing
                // the ApiVersions range so it can retry with a version we speak.
                let r = ApiVersionsResponse {
                    error_code: ErrorCode::UnsupportedVersion.code(),
                    api_keys: vec![api_version_entry(ApiKey::ApiVersions)],
                    ..Default::default()
                };
                return respond(cid, 0, &r, due);
            }
            return close;
        }
        let pushed = self
            .pushed_errors
            .get_mut(&api.code())
            .and_then(VecDeque::pop_front);
        match api {
            ApiKey::ApiVersions => {
                let Ok(_req) = decode_all::<ApiVersionsRequest>(body, version) else {
                    return close;
                };
                // Exactly the codec's ranges. (librdkafka produces RecordBatch
                // v2 only when Fetch v4+ is advertised; Fetch is served.)
                let mut api_keys: Vec<ApiVersion> =
                    ApiKey::ALL.iter().map(|k| api_version_entry(*k)).collect();
                api_keys.sort_by_key(|a| a.api_key);
                let r = ApiVersionsResponse {
                    error_code: pushed.map_or(0, ErrorCode::code),
                    api_keys,
                    throttle_time_ms: throttle,
                    ..Default::default()
                };
                respond(cid, version, &r, due)
            }
            ApiKey::Metadata => {
                let Ok(req) = decode_all::<MetadataRequest>(body, version) else {
                    return close;
                };
                let mut r = match self.metadata_top_level_errors.pop_front() {
                    Some(e) => MetadataResponse {
                        error_code: if version >= 13 { e.code() } else { 0 },
                        ..Default::default()
                    },
                    None => self.metadata(&req, version),
                };
                r.throttle_time_ms = throttle;
                if let Some(e) = pushed {
                    for t in &mut r.topics {
                        t.error_code = e.code();
                        t.partitions.clear();
                    }
                }
                respond(cid, version, &r, due)
            }
            ApiKey::InitProducerId => {
                let Ok(req) = decode_all::<InitProducerIdRequest>(body, version) else {
                    return close;
                };
                let mut r = match pushed {
                    Some(e) => InitProducerIdResponse {
                        error_code: e.code(),
                        producer_id: -1,
                        producer_epoch: -1,
                        ..Default::default()
                    },
                    None => self.init_producer_id(&req),
                };
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            ApiKey::Produce => {
                let Ok(req) = decode_all::<ProduceRequest>(body, version) else {
                    return close;
                };
                let mut r = self.produce(node_id, &req, version, pushed);
                r.throttle_time_ms = throttle;
                if self.fail_after_append > 0 {
                    self.fail_after_append -= 1;
                    return close;
                }
                if req.acks == 0 {
                    return HandleResult {
                        response: None,
                        close: false,
                        due,
                    };
                }
                respond(cid, version, &r, due)
            }
            ApiKey::Fetch => {
                let Ok(req) = decode_all::<FetchRequest>(body, version) else {
                    return close;
                };
                let mut r = self.fetch(node_id, &req, version, pushed);
                r.throttle_time_ms = throttle;
                // No data and the client is willing to wait: answer after
                // max_wait_ms, as a broker's long poll would when nothing arrives.
                let empty = r.responses.iter().all(|t| {
                    t.partitions
                        .iter()
                        .all(|p| p.records.as_ref().is_none_or(|b| b.is_empty()))
                });
                let wait = if empty && req.min_bytes > 0 {
                    Duration::from_millis(req.max_wait_ms.clamp(0, MAX_FETCH_WAIT_MS) as u64)
                } else {
                    Duration::ZERO
                };
                let mut res = respond(cid, version, &r, due);
                res.due += wait;
                res
            }
            ApiKey::ListOffsets => {
                let Ok(req) = decode_all::<ListOffsetsRequest>(body, version) else {
                    return close;
                };
                let mut r = self.list_offsets(node_id, &req, version, pushed);
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            // Keys the codec learns later (FindCoordinator, ...) are not served yet.
            #[allow(unreachable_patterns)]
            _ => close,
        }
    }

    fn metadata(&mut self, req: &MetadataRequest, version: i16) -> MetadataResponse {
        let brokers = self
            .brokers
            .iter()
            .enumerate()
            .map(|(i, b)| MetadataResponseBroker {
                node_id: i as i32,
                host: b.host.clone(),
                port: b.port,
                rack: None,
                ..Default::default()
            })
            .collect();
        let mut topics = Vec::new();
        match &req.topics {
            None => {
                for name in self.topics.keys() {
                    topics.push(self.topic_metadata(name, version));
                }
            }
            Some(requested) => {
                for t in requested {
                    let name = match &t.name {
                        Some(n) => n.clone(),
                        None => match self.topics.iter().find(|(_, v)| v.id == t.topic_id) {
                            Some((n, _)) => n.clone(),
                            None => {
                                topics.push(MetadataResponseTopic {
                                    error_code: ErrorCode::UnknownTopicId.code(),
                                    name: None,
                                    topic_id: t.topic_id,
                                    ..Default::default()
                                });
                                continue;
                            }
                        },
                    };
                    if !self.topics.contains_key(&name)
                        && self.config.auto_create_topics
                        && req.allow_auto_topic_creation
                    {
                        let n = self.config.default_partitions;
                        if let Err(e) = self.create_topic(&name, n) {
                            topics.push(MetadataResponseTopic {
                                error_code: e.code(),
                                name: Some(name),
                                ..Default::default()
                            });
                            continue;
                        }
                    }
                    if self.topics.contains_key(&name) {
                        topics.push(self.topic_metadata(&name, version));
                    } else {
                        topics.push(MetadataResponseTopic {
                            error_code: ErrorCode::UnknownTopicOrPartition.code(),
                            name: Some(name),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        MetadataResponse {
            throttle_time_ms: 0,
            brokers,
            cluster_id: Some(self.config.cluster_id.clone()),
            controller_id: 0,
            topics,
            ..Default::default()
        }
    }

    fn topic_metadata(&self, name: &str, version: i16) -> MetadataResponseTopic {
        let t = &self.topics[name];
        MetadataResponseTopic {
            error_code: 0,
            name: Some(name.to_owned()),
            topic_id: if version >= 10 { t.id } else { [0; 16] },
            is_internal: false,
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| MetadataResponsePartition {
                    error_code: 0,
                    partition_index: i as i32,
                    leader_id: p.leader,
                    leader_epoch: if version >= 7 { p.leader_epoch } else { -1 },
                    replica_nodes: vec![p.leader],
                    isr_nodes: vec![p.leader],
                    offline_replicas: Vec::new(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn init_producer_id(&mut self, req: &InitProducerIdRequest) -> InitProducerIdResponse {
        let fail = |e: ErrorCode| InitProducerIdResponse {
            error_code: e.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        if req.transactional_id.is_some() {
            // No transaction coordinator in the mock.
            return fail(ErrorCode::TransactionalIdAuthorizationFailed);
        }
        if req.producer_id >= 0 {
            // Bump the epoch of a known id whose current epoch the client names.
            match self.producer_epochs.get(&req.producer_id) {
                Some(&epoch) if epoch == req.producer_epoch => {
                    if epoch < i16::MAX - 1 {
                        self.producer_epochs.insert(req.producer_id, epoch + 1);
                        return InitProducerIdResponse {
                            producer_id: req.producer_id,
                            producer_epoch: epoch + 1,
                            ..Default::default()
                        };
                    }
                    // Epoch exhausted: a fresh id, as Kafka does.
                }
                _ => return fail(ErrorCode::InvalidProducerEpoch),
            }
        }
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        self.producer_epochs.insert(id, 0);
        InitProducerIdResponse {
            producer_id: id,
            producer_epoch: 0,
            ..Default::default()
        }
    }

    fn produce(
        &mut self,
        node_id: i32,
        req: &ProduceRequest,
        version: i16,
        pushed: Option<ErrorCode>,
    ) -> ProduceResponse {
        let request_error = if let Some(e) = pushed {
            Some(e)
        } else if !matches!(req.acks, -1..=1) {
            Some(ErrorCode::InvalidRequiredAcks)
        } else if req.transactional_id.is_some() {
            Some(ErrorCode::TransactionalIdAuthorizationFailed)
        } else {
            None
        };
        let mut endpoints: Vec<NodeEndpoint> = Vec::new();
        let mut responses = Vec::with_capacity(req.topic_data.len());
        for t in &req.topic_data {
            // From v13 a topic is named by its id (KIP-516), which must be one
            // of a topic that exists: no topic is created from an id.
            let name = if version >= FIRST_TOPIC_ID_VERSION {
                self.topics
                    .iter()
                    .find(|(_, v)| v.id == t.topic_id)
                    .map(|(n, _)| n.clone())
            } else {
                Some(t.name.clone())
            };
            let mut parts = Vec::with_capacity(t.partition_data.len());
            for pd in &t.partition_data {
                let mut pr = PartitionProduceResponse {
                    index: pd.index,
                    base_offset: -1,
                    ..Default::default()
                };
                let outcome = match (request_error, &name) {
                    (Some(e), _) => Err(e),
                    (None, None) => Err(ErrorCode::UnknownTopicId),
                    (None, Some(n)) => self.produce_partition(node_id, n, pd, version),
                };
                match outcome {
                    Ok(Appended::New(off)) | Ok(Appended::Duplicate(off)) => {
                        pr.base_offset = off;
                        pr.log_start_offset = 0;
                    }
                    Err(e) => {
                        pr.error_code = e.code();
                        if e == ErrorCode::NotLeaderOrFollower && version >= 10 {
                            let known = name.as_deref().and_then(|n| self.partition(n, pd.index));
                            if let Some(p) = known {
                                pr.current_leader = LeaderIdAndEpoch {
                                    leader_id: p.leader,
                                    leader_epoch: p.leader_epoch,
                                    ..Default::default()
                                };
                                let b = &self.brokers[p.leader as usize];
                                if !endpoints.iter().any(|n| n.node_id == p.leader) {
                                    endpoints.push(NodeEndpoint {
                                        node_id: p.leader,
                                        host: b.host.clone(),
                                        port: b.port,
                                        rack: None,
                                        ..Default::default()
                                    });
                                }
                            }
                        }
                    }
                }
                parts.push(pr);
            }
            // Named as the request named it: by id from v13, else by name.
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
                topic_id: t.topic_id,
                partition_responses: parts,
                ..Default::default()
            });
        }
        ProduceResponse {
            responses,
            throttle_time_ms: 0,
            node_endpoints: endpoints,
            ..Default::default()
        }
    }

    fn produce_partition(
        &mut self,
        node_id: i32,
        topic: &str,
        pd: &PartitionProduceData,
        version: i16,
    ) -> Result<Appended, ErrorCode> {
        if !self.topics.contains_key(topic) {
            if !self.config.auto_create_topics {
                return Err(ErrorCode::UnknownTopicOrPartition);
            }
            let n = self.config.default_partitions;
            self.create_topic(topic, n)?;
        }
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| {
                usize::try_from(pd.index)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
            })
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != node_id {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        let records = match &pd.records {
            Some(r) if !r.is_empty() => r,
            _ => return Err(ErrorCode::InvalidRecord),
        };
        // Kafka (ProduceRequest.validateRecords): v3+ requires magic 2. The
        // magic is checked first: older message formats have another layout
        // (and may be shorter than a v2 batch header).
        if records.get(OFF_MAGIC).is_some_and(|&m| m as i8 != MAGIC) {
            return Err(ErrorCode::InvalidRecord);
        }
        let mut rest = records.clone();
        let h = RecordBatch::decode(&mut rest).map_err(|_| ErrorCode::CorruptMessage)?;
        // Kafka: a v3+ Produce carries exactly one batch per partition.
        if !rest.is_empty() {
            return Err(ErrorCode::InvalidRecord);
        }
        if h.record_count <= 0 || h.last_offset_delta != h.record_count - 1 {
            return Err(ErrorCode::InvalidRecord);
        }
        if h.is_control() {
            return Err(ErrorCode::InvalidRecord);
        }
        if h.compression() == Compression::Zstd && version < 7 {
            return Err(ErrorCode::UnsupportedCompressionType);
        }
        if h.producer_id >= 0 {
            if h.base_sequence < 0 || h.producer_epoch < 0 {
                return Err(ErrorCode::InvalidRecord);
            }
            if let Some(off) = check_producer(p.producers.get(&h.producer_id), &h)? {
                return Ok(Appended::Duplicate(off));
            }
        }
        let base = p.next_offset;
        let mut bytes = BytesMut::from(&records[..]);
        bytes[0..8].copy_from_slice(&base.to_be_bytes());
        p.log.push(StoredBatch {
            base_offset: base,
            record_count: h.record_count,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            bytes: bytes.freeze(),
        });
        p.next_offset += h.record_count as i64;
        if h.producer_id >= 0 {
            let e = p.producers.entry(h.producer_id).or_insert(ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            });
            if e.epoch != h.producer_epoch {
                e.epoch = h.producer_epoch;
                e.batches.clear();
            }
            if e.batches.len() == RETAINED_BATCHES {
                e.batches.pop_front();
            }
            e.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: last_sequence(&h),
                base_offset: base,
            });
        }
        self.produced_batches += 1;
        self.produced_records += h.record_count as u64;
        Ok(Appended::New(base))
    }
}

// ---- reading back: Fetch and ListOffsets ------------------------------------------

/// The longest a Fetch with no data waits before its empty answer (the
/// request's `max_wait_ms`, capped so that a mock never stalls a test).
const MAX_FETCH_WAIT_MS: i32 = 500;

impl MockCluster {
    /// Finds a partition for a read on `node_id`: the partition, or the error
    /// to answer (unknown, not the leader, a stale or future leader epoch).
    fn readable(
        &self,
        node_id: i32,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<&Partition, ErrorCode> {
        let p = self
            .partition(topic, partition)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != node_id {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if current_leader_epoch >= 0 {
            if current_leader_epoch > p.leader_epoch {
                return Err(ErrorCode::UnknownLeaderEpoch);
            }
            if current_leader_epoch < p.leader_epoch {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
        }
        Ok(p)
    }

    /// Answers a Fetch from the partition logs: whole stored batches from the
    /// one holding `fetch_offset` on, each partition within its
    /// `partition_max_bytes` and what is left of the request's `max_bytes`
    /// (spent in request order; a later partition still gets batches that
    /// fit), except that until some partition has returned data the first
    /// batch comes whole even when larger (KIP-74), so that a consumer always
    /// moves on. That is Kafka's ReplicaManager.readFromLocalLog, but Kafka
    /// may end a partition with part of a batch; the mock never cuts one.
    /// Fetch sessions (KIP-227) are not offered: every answer is a full one
    /// with session id 0.
    fn fetch(
        &self,
        node_id: i32,
        req: &FetchRequest,
        version: i16,
        pushed: Option<ErrorCode>,
    ) -> FetchResponse {
        let mut budget = req.max_bytes.max(0) as usize;
        let mut first = true;
        let mut responses = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for fp in &t.partitions {
                let read = match pushed {
                    Some(e) => Err((e, -1, -1)),
                    None => self.fetch_partition(node_id, &t.topic, fp, &mut budget, &mut first),
                };
                partitions.push(match read {
                    Ok(data) => data,
                    Err((e, hw, log_start)) => {
                        let mut data = PartitionData {
                            partition_index: fp.partition,
                            error_code: e.code(),
                            high_watermark: hw,
                            last_stable_offset: hw,
                            log_start_offset: log_start,
                            aborted_transactions: None,
                            records: Some(Bytes::new()),
                            ..Default::default()
                        };
                        if e == ErrorCode::NotLeaderOrFollower && version >= 12 {
                            if let Some(p) = self.partition(&t.topic, fp.partition) {
                                data.current_leader.leader_id = p.leader;
                                data.current_leader.leader_epoch = p.leader_epoch;
                            }
                        }
                        data
                    }
                });
            }
            responses.push(FetchableTopicResponse {
                topic: t.topic.clone(),
                partitions,
                ..Default::default()
            });
        }
        FetchResponse {
            responses,
            ..Default::default()
        }
    }

    /// One partition of a Fetch; errors carry the high watermark and log
    /// start to report (-1 when the partition is unknown).
    fn fetch_partition(
        &self,
        node_id: i32,
        topic: &str,
        fp: &FetchPartition,
        budget: &mut usize,
        first: &mut bool,
    ) -> Result<PartitionData, (ErrorCode, i64, i64)> {
        let p = self
            .readable(node_id, topic, fp.partition, fp.current_leader_epoch)
            .map_err(|e| match self.partition(topic, fp.partition) {
                Some(p) if e != ErrorCode::NotLeaderOrFollower => (e, p.next_offset, p.log_start),
                _ => (e, -1, -1),
            })?;
        if fp.fetch_offset < p.log_start || fp.fetch_offset > p.next_offset {
            return Err((ErrorCode::OffsetOutOfRange, p.next_offset, p.log_start));
        }
        // The batch holding fetch_offset: the last one starting at or before it.
        let start = p
            .log
            .partition_point(|b| b.base_offset <= fp.fetch_offset)
            .saturating_sub(1);
        let limit = (fp.partition_max_bytes.max(0) as usize).min(*budget);
        let mut out = BytesMut::new();
        for b in p.log.iter().skip(start) {
            if b.base_offset + b.record_count as i64 <= fp.fetch_offset {
                continue;
            }
            if out.len() + b.bytes.len() > limit && !(*first && out.is_empty()) {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        if !out.is_empty() {
            *first = false;
            *budget = budget.saturating_sub(out.len());
        }
        Ok(PartitionData {
            partition_index: fp.partition,
            error_code: 0,
            high_watermark: p.next_offset,
            last_stable_offset: p.next_offset,
            log_start_offset: p.log_start,
            aborted_transactions: None,
            records: Some(out.freeze()),
            ..Default::default()
        })
    }

    /// Answers a ListOffsets: the log start, the log end, the offset with the
    /// largest timestamp (v7+), or the first offset whose record timestamp is
    /// at or after the one asked for (-1 when there is none). Creates no topic.
    fn list_offsets(
        &self,
        node_id: i32,
        req: &ListOffsetsRequest,
        version: i16,
        pushed: Option<ErrorCode>,
    ) -> ListOffsetsResponse {
        let topics = req
            .topics
            .iter()
            .map(|t| ListOffsetsTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|lp| {
                        let found = match pushed {
                            Some(e) => Err(e),
                            None => self.list_partition(node_id, &t.name, lp, version),
                        };
                        let mut r = ListOffsetsPartitionResponse {
                            partition_index: lp.partition_index,
                            ..Default::default()
                        };
                        match found {
                            Ok((offset, timestamp, epoch)) => {
                                r.offset = offset;
                                r.timestamp = timestamp;
                                if version >= 4 {
                                    r.leader_epoch = epoch;
                                }
                            }
                            Err(e) => r.error_code = e.code(),
                        }
                        r
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ListOffsetsResponse {
            topics,
            ..Default::default()
        }
    }

    /// `(offset, timestamp, leader epoch)` for one ListOffsets partition.
    fn list_partition(
        &self,
        node_id: i32,
        topic: &str,
        lp: &ListOffsetsPartition,
        version: i16,
    ) -> Result<(i64, i64, i32), ErrorCode> {
        let p = self.readable(node_id, topic, lp.partition_index, lp.current_leader_epoch)?;
        let epoch = p.leader_epoch;
        match lp.timestamp {
            EARLIEST_TIMESTAMP => Ok((p.log_start, -1, epoch)),
            LATEST_TIMESTAMP => Ok((p.next_offset, -1, epoch)),
            MAX_TIMESTAMP if version >= 7 => {
                let mut best: Option<(i64, i64)> = None;
                for (offset, ts) in record_times(&p.log)? {
                    if best.is_none_or(|(_, t)| ts > t) {
                        best = Some((offset, ts));
                    }
                }
                Ok(best.map_or((-1, -1, -1), |(o, t)| (o, t, epoch)))
            }
            MAX_TIMESTAMP => Err(ErrorCode::UnsupportedVersion),
            ts if ts < 0 => Err(ErrorCode::InvalidRequest),
            ts => {
                let hit = record_times(&p.log)?.find(|&(_, t)| t >= ts);
                Ok(hit.map_or((-1, -1, -1), |(o, t)| (o, t, epoch)))
            }
        }
    }
}

/// `(offset, timestamp)` of every record of a log, in offset order (the
/// batches' create times; LogAppendTime batches carry their max timestamp).
fn record_times(log: &[StoredBatch]) -> Result<impl Iterator<Item = (i64, i64)>, ErrorCode> {
    let mut out = Vec::new();
    for b in log {
        let batch =
            RecordBatch::decode(&mut b.bytes.clone()).map_err(|_| ErrorCode::CorruptMessage)?;
        let log_append = batch.attributes & attributes::TIMESTAMP_TYPE_LOG_APPEND != 0;
        for r in batch.records().map_err(|_| ErrorCode::CorruptMessage)? {
            let ts = if log_append {
                batch.max_timestamp
            } else {
                batch.base_timestamp + r.timestamp_delta
            };
            out.push((batch.base_offset + r.offset_delta as i64, ts));
        }
    }
    Ok(out.into_iter())
}

/// Kafka 4's idempotence checks for one batch against what the partition
/// remembers of its producer: `Ok(Some(offset))` for a duplicate of a
/// retained batch, `Ok(None)` to append, or the error to answer.
fn check_producer(
    entry: Option<&ProducerEntry>,
    h: &RecordBatch,
) -> Result<Option<i64>, ErrorCode> {
    let Some(e) = entry else {
        // Unknown producer (never seen, or its state expired): Kafka 2.5+
        // (KIP-360) accepts any sequence instead of UNKNOWN_PRODUCER_ID.
        return Ok(None);
    };
    let last_seq = last_sequence(h);
    if h.producer_epoch == e.epoch {
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(Some(b.base_offset));
        }
    }
    if h.producer_epoch < e.epoch {
        return Err(ErrorCode::InvalidProducerEpoch);
    }
    if h.producer_epoch > e.epoch {
        return if h.base_sequence == 0 {
            Ok(None)
        } else {
            Err(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    let current = e.batches.back().map_or(-1, |b| b.last_seq);
    let in_sequence = h.base_sequence as i64 == current as i64 + 1
        || (h.base_sequence == 0 && current == i32::MAX);
    if in_sequence {
        Ok(None)
    } else {
        Err(ErrorCode::OutOfOrderSequenceNumber)
    }
}

fn api_version_entry(k: ApiKey) -> ApiVersion {
    let (min, max) = k.versions();
    ApiVersion {
        api_key: k.code(),
        min_version: min,
        max_version: max,
        ..Default::default()
    }
}

fn decode_all<M: ApiMessage>(mut body: Bytes, version: i16) -> Result<M, ProtocolError> {
    let m = M::decode(&mut body, version)?;
    if !body.is_empty() {
        return Err(ProtocolError::TrailingBytes(body.len()));
    }
    Ok(m)
}

fn respond<M: ApiMessage>(cid: i32, version: i16, m: &M, due: Instant) -> HandleResult {
    let mut buf = BytesMut::new();
    match encode_response(&mut buf, cid, version, m) {
        Ok(()) => HandleResult {
            response: Some(buf.freeze()),
            close: false,
            due,
        },
        Err(e) => {
            log::warn!("mock broker could not encode a response: {e}");
            HandleResult {
                response: None,
                close: true,
                due,
            }
        }
    }
}
