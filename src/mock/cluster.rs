//! [`MockCluster`]: the sans-IO core of the mock, its state (brokers,
//! topics, partition logs, producer state) and the calls that create and read
//! it. Requests go through [`MockCluster::handle_request`] (`dispatch`); the
//! faults, Metadata, Produce and Fetch answers each have a module.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::batch::{decode_records, MockRecord};
use crate::protocol::error::ProtocolError;
use crate::protocol::error_code::ErrorCode;

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
pub(super) struct Broker {
    pub(super) host: String,
    pub(super) port: i32,
    pub(super) down: bool,
    pub(super) latency: Duration,
    /// Time each request keeps the broker busy (see `MockCluster::set_service_time`).
    pub(super) service_time: Duration,
    /// The broker serves no other request before this.
    pub(super) busy_until: Option<Instant>,
    pub(super) throttle_ms: i32,
    /// `broker.rack`, as Metadata reports it.
    pub(super) rack: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct BatchMeta {
    pub(super) first_seq: i32,
    pub(super) last_seq: i32,
    pub(super) base_offset: i64,
}

#[derive(Debug, Clone)]
pub(super) struct ProducerEntry {
    pub(super) epoch: i16,
    pub(super) batches: VecDeque<BatchMeta>,
}

#[derive(Debug, Clone)]
pub(super) struct Partition {
    pub(super) leader: i32,
    pub(super) leader_epoch: i32,
    pub(super) log: Vec<StoredBatch>,
    pub(super) log_start: i64,
    pub(super) next_offset: i64,
    pub(super) producers: BTreeMap<i64, ProducerEntry>,
}

#[derive(Debug, Clone)]
pub(super) struct Topic {
    pub(super) id: [u8; 16],
    pub(super) partitions: Vec<Partition>,
}

/// An in-memory Kafka cluster answering ApiVersions, Metadata, InitProducerId
/// and Produce frames, with deterministic fault injection.
#[derive(Debug, Clone)]
pub struct MockCluster {
    pub(super) config: MockConfig,
    pub(super) brokers: Vec<Broker>,
    pub(super) topics: BTreeMap<String, Topic>,
    pub(super) topics_created: u64,
    pub(super) next_producer_id: i64,
    pub(super) producer_epochs: BTreeMap<i64, i16>,
    pub(super) pushed_errors: BTreeMap<i16, VecDeque<ErrorCode>>,
    pub(super) metadata_top_level_errors: VecDeque<ErrorCode>,
    pub(super) fail_after_append: usize,
    pub(super) produced_batches: u64,
    pub(super) produced_records: u64,
    pub(super) txn: super::txn::TxnCoordinator,
    #[cfg(feature = "sasl")]
    pub(super) sasl: Option<super::sasl::SaslListener>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<super::tls::MockTls>,
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
                service_time: Duration::ZERO,
                busy_until: None,
                throttle_ms: 0,
                rack: None,
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
            txn: Default::default(),
            #[cfg(feature = "sasl")]
            sasl: None,
            #[cfg(feature = "tls")]
            tls: None,
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

    pub(super) fn broker_mut(&mut self, node: i32) -> &mut Broker {
        let n = self.brokers.len();
        usize::try_from(node)
            .ok()
            .and_then(|i| self.brokers.get_mut(i))
            .unwrap_or_else(|| panic!("mock broker {node} does not exist (0..{n})"))
    }

    pub(super) fn broker(&self, node: i32) -> Option<&Broker> {
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

    pub(super) fn partition(&self, topic: &str, partition: i32) -> Option<&Partition> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
    }

    pub(super) fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        let t = self.topics.get_mut(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get_mut(i))
    }

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
}
