//! What goes in and comes out of the core: records, their ids, outcomes and errors.

use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::error::ProtocolError;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::record::Header;

/// The builder methods that do not depend on the key and value types, for
/// the record types with `partition`, `headers` and `timestamp` fields:
/// [`ProducerRecord`] and [`TypedRecord`](crate::driver::TypedRecord) (one
/// generic record type cannot serve both: bytes records take
/// `impl Into<Bytes>` for key and value, and typed records must take `K` and
/// `V` themselves, or a literal such as `5` would no longer take the record's
/// value type).
macro_rules! record_builders {
    () => {
        /// Sets an explicit partition.
        pub fn partition(mut self, partition: i32) -> Self {
            self.partition = Some(partition);
            self
        }

        /// Appends a header.
        pub fn header(mut self, key: impl Into<String>, value: impl Into<::bytes::Bytes>) -> Self {
            self.headers.push($crate::protocol::record::Header {
                key: key.into(),
                value: Some(value.into()),
            });
            self
        }

        /// Sets the create timestamp (Unix ms).
        pub fn timestamp(mut self, ms: i64) -> Self {
            self.timestamp = Some(ms);
            self
        }
    };
}
pub(crate) use record_builders;

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic name.
    pub topic: Arc<str>,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key; `None` is a null key (sticky partitioning), an empty key is hashed.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order; duplicate keys allowed.
    pub headers: Vec<Header>,
    /// Create time in Unix milliseconds; `None` takes the driver's clock.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    record_builders!();
}

/// Identifies one accepted record until its outcome; ids grow by one per `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub u64);

/// The ids of the records of one batch, in batch (offset) order, kept as runs
/// of consecutive ids so that a batch of one partition costs one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordIds {
    runs: Vec<(u64, u32)>,
    len: usize,
}

impl RecordIds {
    /// Appends the next id of the batch.
    #[inline]
    pub fn push(&mut self, id: RecordId) {
        self.len += 1;
        if let Some((start, n)) = self.runs.last_mut() {
            if *start + *n as u64 == id.0 {
                *n += 1;
                return;
            }
        }
        self.runs.push((id.0, 1));
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first id, if any.
    pub fn first(&self) -> Option<RecordId> {
        self.runs.first().map(|r| RecordId(r.0))
    }

    /// The ids in batch order; the n-th has offset `base_offset + n`.
    pub fn iter(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.runs
            .iter()
            .flat_map(|&(s, n)| (s..s + n as u64).map(RecordId))
    }

    /// Runs of consecutive ids `(first, count)`.
    pub fn runs(&self) -> &[(u64, u32)] {
        &self.runs
    }
}

/// The create timestamps of the records of one batch, in batch order, kept
/// as runs of equal values: records sent within the same millisecond (a
/// thousand and more at full rate) share one entry, so a 1 MiB batch of small
/// records keeps a few entries instead of writing and reading back 8 bytes
/// per record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timestamps {
    runs: Vec<(i64, u32)>,
    len: usize,
}

impl Timestamps {
    /// Appends the next record's timestamp.
    #[inline]
    pub fn push(&mut self, ts: i64) {
        self.len += 1;
        if let Some((last, n)) = self.runs.last_mut() {
            if *last == ts {
                *n += 1;
                return;
            }
        }
        self.runs.push((ts, 1));
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The timestamps in batch order, one per record.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.runs
            .iter()
            .flat_map(|&(ts, n)| std::iter::repeat_n(ts, n as usize))
    }
}

impl FromIterator<i64> for Timestamps {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut t = Timestamps::default();
        for ts in iter {
            t.push(ts);
        }
        t
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition; -1 when unknown: with acks=0, and when the
    /// broker acknowledged a re-sent idempotent batch with
    /// DUPLICATE_SEQUENCE_NUMBER without the original offset (tansu always
    /// does; Java's client reports -1 there too).
    pub offset: i64,
    /// The record's timestamp: create time, or the broker's log-append time.
    pub timestamp: i64,
}

/// The records of one batch were acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset of the first record (-1 when unknown: acks=0, or a
    /// DUPLICATE_SEQUENCE_NUMBER answer without the original offset).
    pub base_offset: i64,
    /// Log-append time from the broker, -1 when the topic uses create time.
    pub log_append_time: i64,
    /// The records, in offset order.
    pub records: RecordIds,
    /// Create timestamps of the records, in the same order.
    pub timestamps: Timestamps,
}

impl Delivery {
    /// Metadata of each record, in offset order.
    pub fn metadata(&self) -> impl Iterator<Item = (RecordId, RecordMetadata)> + '_ {
        self.offsets().map(|(id, offset, timestamp)| {
            (
                id,
                RecordMetadata {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    offset,
                    timestamp,
                },
            )
        })
    }

    /// Offset and timestamp of each record, in offset order: what
    /// [`Delivery::metadata`] gives, for a caller that fills in one
    /// `RecordMetadata` per batch rather than one per record.
    pub fn offsets(&self) -> impl Iterator<Item = (RecordId, i64, i64)> + '_ {
        self.records
            .iter()
            .zip(self.timestamps.iter())
            .enumerate()
            .map(|(i, (id, ts))| {
                let offset = if self.base_offset < 0 {
                    -1
                } else {
                    self.base_offset + i as i64
                };
                let timestamp = if self.log_append_time >= 0 {
                    self.log_append_time
                } else {
                    ts
                };
                (id, offset, timestamp)
            })
    }
}

/// The records of one batch (or one record) failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition, -1 when the records were never assigned one.
    pub partition: i32,
    /// The records.
    pub records: RecordIds,
    /// Why.
    pub error: DeliveryError,
}

/// Why a record was not delivered.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The broker answered with a non-retriable error (or retries ran out).
    #[error("broker error {code}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The Kafka error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
        /// True when an earlier attempt may have been appended.
        maybe_persisted: bool,
    },
    /// `delivery.timeout.ms` passed before an acknowledgement.
    #[error("delivery timed out after {elapsed_ms} ms{}", if *maybe_persisted { " (the record may have been persisted)" } else { "" })]
    Timeout {
        /// How long the record waited.
        elapsed_ms: u64,
        /// True when a request with the record was sent without a definite answer.
        maybe_persisted: bool,
    },
    /// Metadata for the topic did not arrive within `max.block.ms`.
    #[error("topic not present in metadata after {0} ms")]
    TopicNotFound(u64),
    /// No broker gave a usable answer within `max.block.ms`: the topic's
    /// metadata never came, and `cause` is the last connection's failure.
    #[error("no broker answered usably within {waited_ms} ms: {cause}")]
    BrokerUnavailable {
        /// How long the record waited (`max.block.ms`).
        waited_ms: u64,
        /// What went wrong on the last connection that failed.
        cause: ConnectionError,
    },
    /// The explicit partition does not exist.
    #[error("partition {partition} does not exist (topic has {partitions})")]
    InvalidPartition {
        /// Requested partition.
        partition: i32,
        /// Partitions the topic has.
        partitions: i32,
    },
    /// A fatal producer error (fenced, authorization, unsupported version): the producer stopped.
    #[error("producer failed fatally: {code}{}", if *maybe_persisted { " (the record may have been persisted)" } else { "" })]
    Fatal {
        /// The Kafka error code.
        code: ErrorCode,
        /// True when the record was in flight, or an earlier attempt was
        /// sent, when the producer stopped.
        maybe_persisted: bool,
    },
    /// The producer was closed before the record could be sent.
    #[error("producer closed before the record was delivered")]
    Aborted,
    /// Under idempotence, an earlier attempt of the record has an unknown
    /// outcome and cannot be resent safely under a new producer epoch.
    #[error("delivery outcome unknown: an earlier attempt may have been persisted and the producer epoch had to change")]
    UnknownOutcome,
    /// The batch could not be encoded (e.g. compression failed or unsupported).
    #[error("encoding failed: {0}")]
    Encode(String),
    /// Dropped unsent by [`Producer::purge`](super::Producer::purge).
    #[error("purged before it was sent")]
    Purged,
    /// Dropped unsent because its transaction is being aborted, or must be
    /// (an earlier record of it failed).
    #[error("dropped unsent: its transaction is aborted")]
    TransactionAborted,
}

impl DeliveryError {
    /// True when the record may be in the log despite the error.
    pub fn maybe_persisted(&self) -> bool {
        match self {
            DeliveryError::Broker {
                maybe_persisted, ..
            }
            | DeliveryError::Timeout {
                maybe_persisted, ..
            }
            | DeliveryError::Fatal {
                maybe_persisted, ..
            } => *maybe_persisted,
            DeliveryError::UnknownOutcome => true,
            _ => false,
        }
    }
}

/// Why a connection to a broker ended before it gave the answers the
/// producer needed; the address is `host:port` as dialed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The driver could not establish the connection.
    #[error("could not connect to {addr}")]
    ConnectFailed {
        /// The broker's address.
        addr: String,
    },
    /// The connection was not established within `socket.connection.setup.timeout.ms`.
    #[error("connecting to {addr} timed out after {ms} ms")]
    ConnectTimeout {
        /// The broker's address.
        addr: String,
        /// The setup timeout.
        ms: u64,
    },
    /// The peer closed the connection before ApiVersions was answered.
    #[error("connection closed by {addr} before ApiVersions was answered")]
    ClosedBeforeReady {
        /// The broker's address.
        addr: String,
    },
    /// The peer closed a usable connection.
    #[error("connection closed by {addr}")]
    Closed {
        /// The broker's address.
        addr: String,
    },
    /// A response could not be decoded as the version asked for.
    #[error("could not decode {api:?} v{version} from {addr}: {error}")]
    Decode {
        /// The broker's address.
        addr: String,
        /// The API of the request answered.
        api: ApiKey,
        /// The version of the request answered.
        version: i16,
        /// What was wrong with the bytes.
        error: ProtocolError,
    },
    /// The byte stream did not frame (a size over the limit, or negative).
    #[error("bad frame from {addr}: {error}")]
    Frame {
        /// The broker's address.
        addr: String,
        /// What was wrong with the frame.
        error: ProtocolError,
    },
    /// A response answered another request than the oldest in flight.
    #[error("{addr} answered correlation id {got}, expected {expected}")]
    CorrelationMismatch {
        /// The broker's address.
        addr: String,
        /// The oldest request's correlation id.
        expected: i32,
        /// The id in the response (-1 when the frame was too short for one).
        got: i32,
    },
    /// A response arrived while no request was in flight.
    #[error("{addr} sent a response with no request in flight")]
    Unsolicited {
        /// The broker's address.
        addr: String,
    },
    /// ApiVersions was answered with an error.
    #[error("{addr} refused ApiVersions: {code}")]
    Handshake {
        /// The broker's address.
        addr: String,
        /// The error the broker gave.
        code: ErrorCode,
    },
    /// A request was not answered within `request.timeout.ms`.
    #[error("{api:?} request to {addr} timed out after {ms} ms")]
    RequestTimeout {
        /// The broker's address.
        addr: String,
        /// The API of the request.
        api: ApiKey,
        /// `request.timeout.ms`.
        ms: u64,
    },
}

impl ConnectionError {
    /// True when the broker's bytes were unusable (as opposed to a
    /// connection that failed or closed): such a failure keeps the
    /// reconnect backoff growing even on a connection that was usable.
    pub fn is_protocol_error(&self) -> bool {
        matches!(
            self,
            ConnectionError::Decode { .. }
                | ConnectionError::Frame { .. }
                | ConnectionError::CorrelationMismatch { .. }
                | ConnectionError::Unsolicited { .. }
                | ConnectionError::Handshake { .. }
        )
    }
}

/// Why `send` refused a record; the record is handed back where it can be retried.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum SendError {
    /// `buffer.memory` is used up; try again after some deliveries.
    #[error("buffer.memory exhausted ({buffered} of {limit} bytes buffered)")]
    BufferFull {
        /// The record, unchanged.
        record: Box<ProducerRecord>,
        /// Bytes buffered now.
        buffered: usize,
        /// `buffer.memory`.
        limit: usize,
    },
    /// The record is larger than `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The record, unchanged.
        record: Box<ProducerRecord>,
        /// Its serialized size in a batch.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The producer is closing or closed.
    #[error("producer is closed")]
    Closed(Box<ProducerRecord>),
    /// The producer failed fatally earlier.
    #[error("producer failed fatally: {code}")]
    Fatal {
        /// The record, unchanged.
        record: Box<ProducerRecord>,
        /// The fatal error.
        code: ErrorCode,
    },
    /// The explicit partition is negative or beyond the topic's partitions.
    #[error("partition {partition} does not exist (topic has {partitions})")]
    InvalidPartition {
        /// The record, unchanged.
        record: Box<ProducerRecord>,
        /// Requested partition.
        partition: i32,
        /// Partitions the topic has.
        partitions: i32,
    },
    /// A transactional producer takes records only inside a transaction
    /// (and not once it must be aborted or failed fatally).
    #[error("record refused: {error}")]
    Transaction {
        /// The record, unchanged.
        record: Box<ProducerRecord>,
        /// Why the transaction refuses it.
        error: crate::producer::txn::TxnError,
    },
}

impl SendError {
    /// The refused record.
    pub fn into_record(self) -> ProducerRecord {
        match self {
            SendError::BufferFull { record, .. }
            | SendError::RecordTooLarge { record, .. }
            | SendError::Closed(record)
            | SendError::Fatal { record, .. }
            | SendError::InvalidPartition { record, .. }
            | SendError::Transaction { record, .. } => *record,
        }
    }
}

/// An output of the core for the application or driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Records were acknowledged.
    Delivered(Delivery),
    /// Records failed for good.
    Failed(Failure),
    /// `close` finished: every record has its outcome, all connections are closed.
    Closed,
    /// A transaction call (`init_transactions`, `send_offsets_to_transaction`,
    /// `commit_transaction`, `abort_transaction`) finished.
    Transaction(crate::producer::txn::TxnOutcome),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_order_and_count_in_runs() {
        let given = [5, 5, 5, 7, 7, 5, -1, -1, 9];
        let t: Timestamps = given.iter().copied().collect();
        assert_eq!(t.len(), given.len());
        assert!(!t.is_empty());
        assert_eq!(t.iter().collect::<Vec<_>>(), given);
        // Equal neighbours share an entry; a value seen again later does not merge back.
        assert_eq!(t.runs, [(5, 3), (7, 2), (5, 1), (-1, 2), (9, 1)]);
        assert!(Timestamps::default().is_empty());
        assert_eq!(Timestamps::default().iter().count(), 0);
    }

    #[test]
    fn delivery_metadata_pairs_each_record_with_its_timestamp() {
        let mut records = RecordIds::default();
        for id in [3, 4, 9] {
            records.push(RecordId(id));
        }
        let mut d = Delivery {
            topic: "t".into(),
            partition: 2,
            base_offset: 100,
            log_append_time: -1,
            records,
            timestamps: [10, 10, 12].into_iter().collect(),
        };
        let got: Vec<_> = d
            .metadata()
            .map(|(id, m)| (id.0, m.offset, m.timestamp))
            .collect();
        assert_eq!(got, [(3, 100, 10), (4, 101, 10), (9, 102, 12)]);
        d.log_append_time = 77;
        assert!(d.metadata().all(|(_, m)| m.timestamp == 77));
    }
}
