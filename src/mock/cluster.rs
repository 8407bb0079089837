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
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use crate::protocol::messages::produce::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceData, PartitionProduceResponse, ProduceRequest,
    ProduceResponse, TopicProduceResponse,
};
use crate::protocol::record::{RecordBatch, MAGIC};
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
    /// Extra `(api_key, min, max)` entries advertised in ApiVersions although
    /// the mock does not serve them (requests for them close the connection).
    /// Empty by default. librdkafka needs `(1, 4, 4)` (Fetch v4) to be
    /// advertised before it produces RecordBatch v2 (its MsgVer2 feature);
    /// see [`MockConfig::LIBRDKAFKA_COMPAT`].
    pub extra_api_versions: Vec<(i16, i16, i16)>,
}

impl MockConfig {
    /// The extra ApiVersions entry librdkafka needs to produce RecordBatch v2.
    pub const LIBRDKAFKA_COMPAT: (i16, i16, i16) = (1, 4, 4);
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            brokers: 1,
            auto_create_topics: true,
            default_partitions: 1,
            cluster_id: "kafka-sansio-mock".to_owned(),
            extra_api_versions: Vec::new(),
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
                let mut api_keys: Vec<ApiVersion> =
                    ApiKey::ALL.iter().map(|k| api_version_entry(*k)).collect();
                for &(key, min, max) in &self.config.extra_api_versions {
                    if !api_keys.iter().any(|a| a.api_key == key) {
                        api_keys.push(ApiVersion {
                            api_key: key,
                            min_version: min,
                            max_version: max,
                            ..Default::default()
                        });
                    }
                }
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
                let mut r = self.metadata(&req, version);
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
            let mut parts = Vec::with_capacity(t.partition_data.len());
            for pd in &t.partition_data {
                let mut pr = PartitionProduceResponse {
                    index: pd.index,
                    base_offset: -1,
                    ..Default::default()
                };
                let outcome = match request_error {
                    Some(e) => Err(e),
                    None => self.produce_partition(node_id, &t.name, pd, version),
                };
                match outcome {
                    Ok(Appended::New(off)) | Ok(Appended::Duplicate(off)) => {
                        pr.base_offset = off;
                        pr.log_start_offset = 0;
                    }
                    Err(e) => {
                        pr.error_code = e.code();
                        if e == ErrorCode::NotLeaderOrFollower && version >= 10 {
                            if let Some(p) = self.partition(&t.name, pd.index) {
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
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
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
        if records.get(16).is_some_and(|&m| m as i8 != MAGIC) {
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
