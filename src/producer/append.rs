//! Records into batches: appending to a partition's open batch, opening a
//! new one sized to memory and the topic's compression ratio, closing full ones.

use std::time::Instant;

use crate::protocol::compression::Compression;
use crate::protocol::record::BatchBuilder;

use super::accumulator::{self, OpenBatch, PartitionState};
use super::memory::RECORD_OVERHEAD;
use super::partition_for_key;
use super::partitioner::NodeDrains;
use super::record::{DeliveryError, ProducerRecord, RecordId, RecordIds, Timestamps};
use super::rng::Rng;
use super::topics::TopicState;
use super::{Partitioner, Producer, ProducerConfig, BATCH_OVERHEAD, REQUEST_OVERHEAD};

impl Producer {
    /// The partition for a record of the known topic at position `topic`,
    /// and whether the sticky partitioner chose it; `Err(partitions)` for an
    /// invalid explicit one.
    pub(super) fn choose_partition(
        &mut self,
        topic: usize,
        record: &ProducerRecord,
    ) -> Result<(i32, bool), i32> {
        let t = self.topics.at_mut(topic);
        choose_partition(
            t,
            record,
            &mut self.partitioner,
            &self.config,
            &mut self.rng,
            &self.parts,
            &self.cluster.drains,
        )
    }

    /// After a sticky-partitioned record of `size` bytes went into `part`:
    /// counts it towards the partition switch.
    pub(super) fn sticky_appended(&mut self, part: usize, size: usize) {
        let p = &self.parts[part];
        let complete = p.open.is_none();
        let batch_size = self.config.batch_size;
        self.topics
            .at_mut(p.topic_pos)
            .sticky
            .appended(size, batch_size, complete);
    }

    /// Appends a record to partition `part`; `Err` when memory is exhausted.
    pub(super) fn append(
        &mut self,
        part: usize,
        id: u64,
        record: &ProducerRecord,
        ts: i64,
        size: usize,
        now: Instant,
    ) -> Result<(), ()> {
        if self.memory.buffered + RECORD_OVERHEAD > self.config.buffer_memory {
            return Err(());
        }
        if self.txn.is_some() {
            self.txn_join(part);
        }
        // Into the open batch when the record fits: the common case, with
        // nothing looked up and the record's size computed once.
        let p = &mut self.parts[part];
        if let Some(open) = &mut p.open {
            let appended = open.builder.try_append(
                ts,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
                open.capacity,
            );
            if appended.is_ok() {
                self.appended(part, id, ts);
                return Ok(());
            }
            // Full: close it; a new batch takes the record.
            let res = p.close_open(self.config.compression, self.config.compression_level());
            self.after_close(part, res);
            self.dirty = true;
        }
        // A batch never reserves more than buffer.memory (a record larger than
        // batch.size still gets a batch of its own size).
        let ratio = self.topics.at(self.parts[part].topic_pos).compression_ratio;
        let batch_size = ((self.config.batch_size as f64 / ratio) as usize)
            .min(
                self.config
                    .max_request_size
                    .saturating_sub(REQUEST_OVERHEAD),
            )
            .max(self.config.batch_size.min(self.config.max_request_size))
            .min(self.config.buffer_memory);
        // Reserve batch.size, or what memory is left when that is less:
        // a smaller batch just fills sooner, and progress never needs more
        // than room for one record.
        let room = self
            .config
            .buffer_memory
            .saturating_sub(self.memory.buffered + RECORD_OVERHEAD);
        let need = size + BATCH_OVERHEAD;
        if need > room {
            return Err(());
        }
        let cap = batch_size.min(room).max(need);
        // A freed buffer when one fits: already paged in, unlike a new one.
        let reused = if cap == self.memory.pool.size() {
            self.memory.pool.take()
        } else {
            None
        };
        self.memory.hold(cap);
        let mut builder = match reused {
            Some(buf) => BatchBuilder::with_buffer(buf, ts),
            None => BatchBuilder::new(ts, cap),
        };
        if self.config.compression != Compression::None {
            builder = builder.hash_at_close();
        }
        let appended = builder.try_append(
            ts,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            cap,
        );
        debug_assert!(appended.is_ok(), "a new batch holds its first record");
        self.list_active(part);
        self.parts[part].had_batch = true;
        self.parts[part].open = Some(OpenBatch {
            builder,
            ids: RecordIds::default(),
            timestamps: Timestamps::default(),
            created: now,
            memory: cap,
            capacity: cap,
            target: batch_size.min(cap),
            last_id: id,
        });
        // A new batch brings a linger deadline.
        self.dirty = true;
        let topic = self.topics.at_mut(self.parts[part].topic_pos);
        topic.last_used = Some(now);
        if topic.forgotten {
            // Java forgets an idle topic's metadata, and its next use
            // fetches it: here the view is kept, and refreshed.
            topic.forgotten = false;
            self.cluster.metadata_needed = true;
        }
        self.appended(part, id, ts);
        Ok(())
    }

    /// Bookkeeping after a record went into `part`'s open batch; closes the
    /// batch once it reached its target size.
    #[inline]
    fn appended(&mut self, part: usize, id: u64, ts: i64) {
        self.memory.hold(RECORD_OVERHEAD);
        let p = &mut self.parts[part];
        let open = p.open.as_mut().expect("open batch");
        open.memory += RECORD_OVERHEAD;
        open.ids.push(RecordId(id));
        open.timestamps.push(ts);
        open.last_id = id;
        p.queued_records += 1;
        if open.builder.len() >= open.target {
            let res = p.close_open(self.config.compression, self.config.compression_level());
            self.after_close(part, res);
            self.dirty = true;
        }
    }

    /// Records a closed batch's partition, or fails its records when it could not be encoded.
    pub(super) fn after_close(
        &mut self,
        part: usize,
        res: Result<usize, accumulator::EncodeFailure>,
    ) {
        match res {
            Ok(0) => {}
            Ok(uncompressed) => {
                let w = self.window();
                let now = self.last_now;
                let p = &mut self.parts[part];
                let b = p.queue.back_mut().expect("just closed");
                b.part = part;
                let s = &mut self.sensors;
                s.batch_size.record(b.closed.len() as f64, now, &w);
                s.compression_rate
                    .record(b.closed.len() as f64 / uncompressed as f64, now, &w);
                s.record_size
                    .record(uncompressed as f64 / b.count().max(1) as f64, now, &w);
                if self.config.compression != Compression::None {
                    let observed = b.closed.len() as f64 / uncompressed as f64;
                    let t = self.topics.at_mut(p.topic_pos);
                    t.compression_ratio = next_ratio_estimate(t.compression_ratio, observed);
                }
            }
            Err(f) => {
                let p = &mut self.parts[part];
                p.queued_records -= f.ids.len();
                let (topic, partition) = (p.topic.clone(), p.partition);
                self.complete_failed(
                    topic,
                    partition,
                    f.ids,
                    f.memory,
                    DeliveryError::Encode(f.message),
                );
            }
        }
    }
}

/// The next compression ratio estimate after observing one batch: up at once
/// when batches compress worse than thought (an under-estimate overfills
/// requests), down slowly when better (as the Java client's estimator).
fn next_ratio_estimate(current: f64, observed: f64) -> f64 {
    if observed > current {
        (current + 0.05).max(observed).min(1.0)
    } else {
        (current - 0.005).max(observed).max(0.05)
    }
}

/// The partition for a record of a known topic `t`, and whether the sticky
/// partitioner chose it; `Err(partitions)` for an invalid explicit one. (A
/// free function so that `send` looks its topic up once.)
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn choose_partition(
    t: &mut TopicState,
    record: &ProducerRecord,
    partitioner: &mut Option<Box<dyn Partitioner>>,
    config: &ProducerConfig,
    rng: &mut Rng,
    parts: &[PartitionState],
    drains: &NodeDrains,
) -> Result<(i32, bool), i32> {
    let n = t.parts.len() as i32;
    if let Some(p) = record.partition {
        return if (0..n).contains(&p) {
            Ok((p, false))
        } else {
            Err(n)
        };
    }
    if let Some(user) = partitioner.as_mut() {
        if let Some(p) = user.partition(
            &record.topic,
            record.key.as_deref(),
            record.value.as_deref(),
            n,
        ) {
            return if (0..n).contains(&p) {
                Ok((p, false))
            } else {
                Err(n)
            };
        }
    }
    match &record.key {
        Some(k) if !config.partitioner_ignore_keys => Ok((partition_for_key(k, n), false)),
        _ => {
            let complete = |p: i32| parts[t.parts[p as usize]].open.is_none();
            if let Some(p) = t.sticky.current(n, config.batch_size, complete) {
                return Ok((p, true));
            }
            // As Java, adaptive only without a user partitioner, and once
            // every partition has had a batch (a partition never used has no
            // queue to weigh). A partition is left out while it has no
            // leader, or while it has batches waiting and its leader had
            // batches ready but could take none for longer than
            // partitioner.availability.timeout.ms (an empty one stays in, as
            // in Java's RecordAccumulator.partitionReady).
            let adaptive = config.partitioner_adaptive
                && partitioner.is_none()
                && t.parts.iter().all(|&i| parts[i].had_batch);
            let timeout = config.partitioner_availability_timeout;
            // Rack-aware: only partitions led in this client's rack while
            // there are any, the others when there are none.
            let rack_only = !t.in_rack.is_empty();
            let candidates = if rack_only { &t.in_rack } else { &t.available };
            let mut loads = t.parts.iter().enumerate().map(|(n, &i)| {
                let p = &parts[i];
                let leader = p.leader?;
                if rack_only && t.in_rack.binary_search(&(n as i32)).is_err() {
                    return None;
                }
                let queued = p.queue.len() + usize::from(p.open.is_some());
                if queued > 0 && !timeout.is_zero() && drains.unavailable(leader, timeout) {
                    return None;
                }
                Some(queued.min(u32::MAX as usize) as u32)
            });
            let loads = adaptive.then_some(&mut loads as &mut dyn Iterator<Item = Option<u32>>);
            Ok((t.sticky.switch(n, candidates, loads, rng), true))
        }
    }
}
