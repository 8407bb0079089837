//! Per-partition state: the open batch records are written into, the queue of
//! closed batches, and the idempotence sequence of the partition.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::compression::Compression;
use crate::protocol::record::{BatchBuilder, ClosedBatch, RecordBatch, RECORD_BATCH_OVERHEAD};

use super::record::{RecordId, RecordIds, Timestamps};

/// The batch records are being appended to.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub builder: BatchBuilder,
    pub ids: RecordIds,
    pub timestamps: Timestamps,
    pub created: Instant,
    /// Bytes of `buffer.memory` this batch holds: its buffer's capacity plus
    /// [`RECORD_OVERHEAD`](super::RECORD_OVERHEAD) per record.
    pub memory: usize,
    /// Its buffer's capacity: records go in while the batch stays within it.
    pub capacity: usize,
    /// Size at which the batch is closed as full (batch.size, scaled by the
    /// topic's compression ratio, within `memory`), fixed when it opens so
    /// that appending looks nothing up per record.
    pub target: usize,
    /// Id of the last record appended.
    pub last_id: u64,
}

/// The records of a batch that could not be encoded.
#[derive(Debug)]
pub(crate) struct EncodeFailure {
    pub ids: RecordIds,
    pub memory: usize,
    pub message: String,
}

/// A closed batch, queued or in flight.
#[derive(Debug)]
pub(crate) struct Batch {
    pub part: usize,
    pub closed: ClosedBatch,
    pub ids: RecordIds,
    pub timestamps: Timestamps,
    pub created: Instant,
    pub memory: usize,
    /// Attempts made (requests sent with this batch).
    pub attempts: u32,
    /// Not to be sent before this instant (retry backoff).
    pub retry_at: Option<Instant>,
    /// Holds a sequence number under the current producer epoch.
    pub sequenced: bool,
    /// Drain order within the partition, kept across retries (orders requeues).
    pub order: u64,
    /// A request carrying this batch got no definite answer: it may be in the log.
    pub maybe_persisted: bool,
    /// The topic id the last request carrying this batch named its topic by
    /// (Produce v13+; zero when by name): its answer names the topic the same way.
    pub topic_id: [u8; 16],
}

impl Batch {
    /// Number of records.
    pub fn count(&self) -> usize {
        self.ids.len()
    }

    /// Whether a request carried this batch before (retries keep their `order`).
    fn went_out(&self) -> bool {
        self.attempts > 0
    }

    /// Splits a batch of two or more records into two halves, re-encoded with
    /// the batch's codec, for a broker that refused it as over the topic's
    /// `max.message.bytes` (MESSAGE_TOO_LARGE): smaller batches may pass, and
    /// a record too large alone then fails by itself. Both halves keep the
    /// batch's drain order, attempts and creation time (so requeued they stay
    /// ahead of later batches, in record order, under the same delivery
    /// timeout); a sequenced batch's range is kept, the second half starting
    /// where the first ends, so later in-flight batches stay in sequence.
    /// `Err` says why it cannot be split.
    pub fn split_in_two(&self, level: Option<i32>) -> Result<(Batch, Batch), String> {
        let n = self.count();
        if n < 2 {
            return Err("a single record cannot be split".into());
        }
        let records = match RecordBatch::decode(&mut self.closed.bytes()).and_then(|b| b.records())
        {
            Ok(r) if r.len() == n => r,
            Ok(r) => return Err(format!("batch decodes to {} records, holds {n}", r.len())),
            Err(e) => return Err(e.to_string()),
        };
        let first = n / 2;
        let base_ts = self.closed.base_timestamp();
        let compression = self.closed.compression();
        let encode = |recs: &[crate::protocol::record::Record]| {
            let size: usize = recs
                .iter()
                .map(|r| {
                    BatchBuilder::record_size(
                        r.timestamp_delta,
                        r.offset_delta,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &r.headers,
                    )
                })
                .sum();
            let mut b = BatchBuilder::new(base_ts, size + RECORD_BATCH_OVERHEAD);
            for r in recs {
                b.append(
                    base_ts.wrapping_add(r.timestamp_delta),
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &r.headers,
                );
            }
            b.close(compression, level)
        };
        let (a, b) = match (encode(&records[..first]), encode(&records[first..])) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
        };
        let ids: Vec<RecordId> = self.ids.iter().collect();
        let ts: Vec<i64> = self.timestamps.iter().collect();
        let half = |closed: ClosedBatch, range: std::ops::Range<usize>, memory: usize| {
            let mut ids_half = RecordIds::default();
            for id in &ids[range.clone()] {
                ids_half.push(*id);
            }
            Batch {
                part: self.part,
                closed,
                ids: ids_half,
                timestamps: ts[range].iter().copied().collect(),
                created: self.created,
                memory,
                attempts: self.attempts,
                retry_at: None,
                sequenced: self.sequenced,
                order: self.order,
                maybe_persisted: self.maybe_persisted,
                topic_id: self.topic_id,
            }
        };
        let mem_a = self.memory / 2;
        let mut a = half(a, 0..first, mem_a);
        let mut b = half(b, first..n, self.memory - mem_a);
        if self.sequenced {
            let c = &self.closed;
            let (pid, epoch, seq, txn) = (
                c.producer_id(),
                c.producer_epoch(),
                c.base_sequence(),
                c.is_transactional(),
            );
            a.closed.stamp(pid, epoch, seq, txn);
            b.closed
                .stamp(pid, epoch, seq.wrapping_add(first as i32), txn);
        }
        Ok((a, b))
    }
}

/// State of one topic-partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub topic: Arc<str>,
    /// The topic's position in `Producer::topics`.
    pub topic_pos: usize,
    pub partition: i32,
    /// Leader node id, `None` when unknown or unavailable.
    pub leader: Option<i32>,
    pub open: Option<OpenBatch>,
    /// Closed batches not in flight, in send order (retries first, by `order`).
    pub queue: VecDeque<Batch>,
    /// Batches of this partition in flight.
    pub in_flight: usize,
    /// Next sequence number to assign (idempotence).
    pub next_seq: i32,
    /// Next drain order number.
    pub next_order: u64,
    /// Records in the open batch and queue (for getters).
    pub queued_records: usize,
    /// Ready the open batch early: sync send waits on it (ids below this).
    pub expedite_below: u64,
    /// A batch was acknowledged under the current producer epoch. Until then
    /// the broker may hold no state for us on this partition and would accept
    /// any sequence, so only one batch may be in flight: a later batch must
    /// not land before a lost first one.
    pub acked_in_epoch: bool,
    /// A batch was opened here once: adaptive partitioning weighs a topic's
    /// partitions only once each has had one (as Java's batches map).
    pub had_batch: bool,
    /// Records and batch bytes sent in Produce requests, retries included
    /// (librdkafka's `txmsgs` and `txbytes` per partition).
    pub tx_msgs: u64,
    pub tx_bytes: u64,
}

impl PartitionState {
    pub fn new(topic: Arc<str>, topic_pos: usize, partition: i32) -> Self {
        PartitionState {
            topic,
            topic_pos,
            partition,
            leader: None,
            open: None,
            queue: VecDeque::new(),
            in_flight: 0,
            next_seq: 0,
            next_order: 0,
            queued_records: 0,
            expedite_below: 0,
            acked_in_epoch: false,
            had_batch: false,
            tx_msgs: 0,
            tx_bytes: 0,
        }
    }

    /// True while it holds an open or a queued batch.
    pub fn has_batches(&self) -> bool {
        self.open.is_some() || !self.queue.is_empty()
    }

    /// Puts a batch back for another attempt, in its original order.
    pub fn requeue(&mut self, batch: Batch) {
        let pos = self
            .queue
            .iter()
            // Retried batches go back in their original order, ahead of fresh ones.
            .position(|b| !b.went_out() || b.order > batch.order)
            .unwrap_or(self.queue.len());
        self.queued_records += batch.count();
        self.queue.insert(pos, batch);
    }

    /// Closes the open batch into the queue, returning its uncompressed size
    /// (0 when there was none); `Err` gives back the records
    /// when the batch cannot be encoded (e.g. its codec is not compiled in).
    pub fn close_open(
        &mut self,
        compression: Compression,
        level: Option<i32>,
    ) -> Result<usize, EncodeFailure> {
        let Some(open) = self.open.take() else {
            return Ok(0);
        };
        if open.builder.is_empty() {
            return Ok(0);
        }
        let uncompressed = open.builder.len();
        let OpenBatch {
            builder,
            ids,
            timestamps,
            created,
            memory,
            ..
        } = open;
        match builder.close(compression, level) {
            Ok(closed) => {
                let order = self.next_order;
                self.next_order += 1;
                self.queue.push_back(Batch {
                    part: usize::MAX,
                    closed,
                    ids,
                    timestamps,
                    created,
                    memory,
                    attempts: 0,
                    retry_at: None,
                    sequenced: false,
                    order,
                    maybe_persisted: false,
                    topic_id: [0; 16],
                });
                Ok(uncompressed)
            }
            Err(e) => Err(EncodeFailure {
                ids,
                memory,
                message: e.to_string(),
            }),
        }
    }

    /// Smallest record id still waiting in this partition (open or queued).
    pub fn min_queued_id(&self) -> Option<u64> {
        // The queue is in drain order (retries back in their original order,
        // ahead of fresh batches), and a partition's ids grow with that order,
        // so the front holds the smallest: no walk over a queue that may hold
        // thousands of batches when the broker is slow.
        let q = self.queue.front().and_then(|b| b.ids.first()).map(|r| r.0);
        debug_assert_eq!(
            q,
            self.queue
                .iter()
                .filter_map(|b| b.ids.first())
                .map(|r| r.0)
                .min()
        );
        let o = self.open.as_ref().and_then(|o| o.ids.first()).map(|r| r.0);
        match (q, o) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the open batch contains record `id`.
    pub fn open_contains(&self, id: RecordId) -> bool {
        self.open
            .as_ref()
            .and_then(|o| o.ids.first().map(|f| f.0 <= id.0 && id.0 <= o.last_id))
            .unwrap_or(false)
    }
}
