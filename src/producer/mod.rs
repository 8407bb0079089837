//! The sans-IO producer: a deterministic state machine that takes records,
//! broker bytes and `now`, and emits transmits, a timeout and events.
//!
//! Call order (see the crate docs for a whole run loop):
//! 1. inputs ([`Producer::handle_connected`], [`Producer::handle_data`],
//!    [`Producer::handle_disconnected`], [`Producer::handle_timeout`]) and
//!    commands ([`Producer::send`], [`Producer::flush`], [`Producer::close`]);
//! 2. after each, drain the outputs until empty: [`Producer::poll_transmit`],
//!    [`Producer::poll_event`], then [`Producer::poll_timeout`] for the next
//!    deadline at which to call `handle_timeout`.

mod accumulator;
pub mod config;
mod network;
pub mod partitioner;
mod pool;
pub mod record;
pub mod rng;
pub mod security;
mod sender;
mod topics;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::protocol::compression::Compression;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::record::BatchBuilder;

use accumulator::{OpenBatch, PartitionState};
pub use config::{Acks, ConfigError, MetadataRecoveryStrategy, ProducerConfig};
use network::Connection;
pub use partitioner::{murmur2, partition_for_key, Partitioner};
use pool::BufferPool;
pub use record::{
    ConnectionError, Delivery, DeliveryError, Event, Failure, ProducerRecord, RecordId, RecordIds,
    RecordMetadata, SendError, Timestamps,
};
use rng::Rng;
use topics::Topics;

/// Identifies one connection the core asked the driver to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Something the driver must do on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Open a TCP connection; answer with `handle_connected` or `handle_disconnected`.
    Connect {
        /// Connection id to use in later calls.
        conn: ConnId,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// Write these bytes, in order after earlier sends on the connection.
    ///
    /// One request may span several sends (a Produce request's batches are
    /// sends of their own, not copied into it): the bytes are a stream, not
    /// one frame per send. Drivers gain from writing queued sends together
    /// (`write_vectored`).
    Send {
        /// Connection.
        conn: ConnId,
        /// Bytes to write.
        data: Bytes,
    },
    /// Close the connection; no further calls about it are expected.
    Close {
        /// Connection.
        conn: ConnId,
    },
}

/// A token from [`Producer::flush`], checked with [`Producer::is_flushed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlushToken(u64);

/// Counters kept by the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Records acknowledged.
    pub records_delivered: u64,
    /// Records failed for good.
    pub records_failed: u64,
    /// Record attempts retried.
    pub records_retried: u64,
    /// Batches sent (attempts).
    pub batches_sent: u64,
    /// Batch bytes sent.
    pub bytes_sent: u64,
    /// Produce requests sent.
    pub produce_requests: u64,
    /// Produce responses received.
    pub produce_responses: u64,
    /// Sum of Produce request latencies in microseconds.
    pub request_latency_us_sum: u64,
    /// Largest Produce request latency in microseconds.
    pub request_latency_us_max: u64,
    /// Metadata requests sent.
    pub metadata_requests: u64,
    /// Connections opened.
    pub connects: u64,
    /// Connections lost or reset.
    pub disconnects: u64,
    /// Producer epoch bumps (KIP-360).
    pub epoch_bumps: u64,
    /// Rebootstraps: the cluster view given up for `bootstrap.servers`
    /// (`metadata.recovery.strategy`).
    pub rebootstraps: u64,
    /// Bytes of responses after the last field of their version, skipped as
    /// Java skips them (a broker newer than its version, or a buggy one).
    pub response_bytes_skipped: u64,
}

/// A record waiting for its topic's metadata.
#[derive(Debug)]
struct PendingRecord {
    id: u64,
    record: ProducerRecord,
    size: usize,
    since: Instant,
}

/// What the core knows of a topic.
#[derive(Debug)]
struct TopicState {
    /// Partition indices into `Producer::parts`, by partition number; empty while unknown.
    parts: Vec<usize>,
    /// Partitions that have a leader now.
    available: Vec<i32>,
    /// Records sent before the topic's metadata was known.
    pending: VecDeque<PendingRecord>,
    /// Bytes of `buffer.memory` the `pending` records hold together: the sum
    /// of their sizes, or less when memory was short as they went back to
    /// waiting (see `place_pending`).
    pending_held: usize,
    sticky: partitioner::Sticky,
    /// Estimated compressed/uncompressed size of this topic's batches, so that
    /// compressed batches fill up to about `batch.size` on the wire.
    compression_ratio: f64,
    /// A topic-level error from the last metadata answer.
    error: Option<ErrorCode>,
    /// The topic id from the last metadata answer (Metadata v10+); zero while
    /// unknown, and then Produce names the topic (v12 at most) instead.
    id: [u8; 16],
}

impl Default for TopicState {
    fn default() -> Self {
        TopicState {
            parts: Vec::new(),
            available: Vec::new(),
            pending: VecDeque::new(),
            pending_held: 0,
            sticky: partitioner::Sticky::default(),
            error: None,
            compression_ratio: 1.0,
            id: [0; 16],
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

/// Producer id and epoch state (idempotence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PidState {
    /// Idempotence is off.
    Disabled,
    /// InitProducerId must be sent (or is in flight).
    Unknown {
        in_flight: bool,
        retry_at: Option<Instant>,
    },
    /// Known and in use.
    Ready { id: i64, epoch: i16 },
    /// An epoch bump is needed once nothing is in flight (KIP-360).
    NeedsBump { id: i64, epoch: i16 },
}

/// The sans-IO Kafka producer.
pub struct Producer {
    config: ProducerConfig,
    rng: Rng,
    partitioner: Option<Box<dyn Partitioner>>,
    base_instant: Instant,
    base_wall_ms: i64,
    last_now: Instant,

    next_record_id: u64,
    next_conn_id: u64,
    next_correlation: i32,

    topics: Topics,
    parts: Vec<PartitionState>,

    /// Broker id → (host, port) from metadata.
    brokers: BTreeMap<i32, (String, u16)>,
    bootstrap: Vec<(String, u16)>,
    bootstrap_next: usize,
    conns: BTreeMap<ConnId, Connection>,
    /// Reconnect backoff per address: (not before, failures in a row).
    reconnect: BTreeMap<(String, u16), (Instant, u32)>,
    /// The last connection failure since a broker last answered Metadata
    /// usably: what records that time out waiting for metadata name.
    last_conn_error: Option<ConnectionError>,

    metadata_in_flight: bool,
    metadata_needed: bool,
    metadata_last: Option<Instant>,
    metadata_retry_at: Option<Instant>,
    /// Indices of the partitions that may hold batches, ascending: every
    /// partition with an open or queued batch is in it (a turn prunes the
    /// ones left empty), so that a turn's walks over batches cost the
    /// partitions in use, not all the producer knows.
    active: Vec<usize>,
    /// Scratch lists a turn fills and empties (leader nodes, connections),
    /// kept so that a turn allocates nothing.
    scratch_nodes: Vec<i32>,
    scratch_conns: Vec<ConnId>,
    metadata_attempts: u32,
    /// Since when metadata is wanted without a usable answer (the clock of
    /// `metadata.recovery.rebootstrap.trigger.ms`).
    metadata_wanted_since: Option<Instant>,

    pid: PidState,
    pid_attempts: u32,

    buffered_bytes: usize,
    /// Freed batch buffers for new batches; free memory for accounting.
    pool: BufferPool,
    pending_records: usize,
    in_flight_batches: usize,

    transmits: VecDeque<Transmit>,
    /// Scratch for the pieces of one request (see `transmit_request`).
    segments: Vec<Bytes>,
    events: VecDeque<Event>,
    next_timeout: Option<Instant>,
    dirty: bool,

    flush_below: u64,
    /// Expedite requests for records not in an open batch yet (waiting for
    /// metadata): batches whose first id is below this skip linger.
    expedite_below: u64,
    closing: bool,
    closed: bool,
    fatal: Option<ErrorCode>,
    metrics: Metrics,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("pending_records", &self.pending_records)
            .field("buffered_bytes", &self.buffered_bytes)
            .field("in_flight_batches", &self.in_flight_batches)
            .field("connections", &self.conns.len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// Bytes a batch's header takes ahead of its records.
const BATCH_OVERHEAD: usize = crate::protocol::record::RECORD_BATCH_OVERHEAD;
/// Bytes of `buffer.memory` each accepted record holds besides its bytes in
/// the batch: its timestamp kept for its outcome, and a driver's waiter slot.
/// Counting them keeps a producer's memory within `buffer.memory` plus a
/// constant however small the records (Java counts batch buffers only).
pub const RECORD_OVERHEAD: usize = 32;
/// Generous bound on a Produce request's bytes besides its batches.
const REQUEST_OVERHEAD: usize = 256;

impl Producer {
    /// A producer for `config` (validated). `now` and `wall_clock_ms` (Unix
    /// ms at `now`) anchor timestamps: the core never reads a clock.
    pub fn new(
        mut config: ProducerConfig,
        now: Instant,
        wall_clock_ms: i64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut bootstrap = Vec::new();
        for s in &config.bootstrap_servers {
            bootstrap.push(parse_host_port(s)?);
        }
        if bootstrap.is_empty() {
            return Err(ConfigError::invalid(
                "bootstrap.servers",
                "",
                "at least one host:port is required",
            ));
        }
        let pid = if config.enable_idempotence {
            PidState::Unknown {
                in_flight: false,
                retry_at: None,
            }
        } else {
            PidState::Disabled
        };
        // The capacity of a full-size uncompressed batch (`append`'s
        // `batch_size` at a compression ratio of 1), the one size pooled.
        let poolable = config
            .batch_size
            .min(config.max_request_size)
            .min(config.buffer_memory);
        Ok(Producer {
            rng: Rng::new(config.rng_seed),
            config,
            partitioner: None,
            base_instant: now,
            base_wall_ms: wall_clock_ms,
            last_now: now,
            next_record_id: 0,
            next_conn_id: 0,
            next_correlation: 0,
            topics: Topics::default(),
            parts: Vec::new(),
            brokers: BTreeMap::new(),
            bootstrap,
            bootstrap_next: 0,
            conns: BTreeMap::new(),
            reconnect: BTreeMap::new(),
            last_conn_error: None,
            metadata_in_flight: false,
            metadata_needed: false,
            metadata_last: None,
            metadata_retry_at: None,
            active: Vec::new(),
            scratch_nodes: Vec::new(),
            scratch_conns: Vec::new(),
            metadata_attempts: 0,
            metadata_wanted_since: None,
            pid,
            pid_attempts: 0,
            buffered_bytes: 0,
            pool: BufferPool::new(poolable),
            pending_records: 0,
            in_flight_batches: 0,
            transmits: VecDeque::new(),
            segments: Vec::new(),
            events: VecDeque::new(),
            next_timeout: None,
            dirty: true,
            flush_below: 0,
            expedite_below: 0,
            closing: false,
            closed: false,
            fatal: None,
            metrics: Metrics::default(),
        })
    }

    /// Installs a user partitioner for records without an explicit partition.
    pub fn set_partitioner(&mut self, partitioner: Box<dyn Partitioner>) {
        self.partitioner = Some(partitioner);
    }

    // ---- A. getters -------------------------------------------------------

    /// The configuration in force.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Bytes of `buffer.memory` in use.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Records accepted and without a final event yet.
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Batches in flight (sent, answer awaited).
    pub fn in_flight_batches(&self) -> usize {
        self.in_flight_batches
    }

    /// Requests in flight on all connections.
    pub fn in_flight_requests(&self) -> usize {
        self.conns.values().map(|c| c.in_flight.len()).sum()
    }

    /// Records and batches queued for one partition (open batch included), if known.
    pub fn queue_depth(&self, topic: &str, partition: i32) -> Option<(usize, usize)> {
        let t = self.topics.get(topic)?;
        let p = &self.parts[*t.parts.get(partition as usize)?];
        Some((
            p.queued_records,
            p.queue.len() + usize::from(p.open.is_some()),
        ))
    }

    /// True when no record is pending and no request is in flight.
    pub fn is_idle(&self) -> bool {
        self.pending_records == 0 && self.in_flight_requests() == 0
    }

    /// True when inputs or commands since the last `poll_*` call may have
    /// made output due (a new batch and its linger deadline, a full batch, a
    /// flush). Appending to a lingering batch leaves it false, so a driver
    /// whose application threads call [`Producer::send`] wakes its loop only
    /// when this is true.
    pub fn needs_poll(&self) -> bool {
        self.dirty
    }

    /// True once `close` finished (the `Closed` event was emitted).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The fatal error that stopped the producer, if any.
    pub fn fatal_error(&self) -> Option<ErrorCode> {
        self.fatal
    }

    /// Counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Producer id and epoch in use (idempotence), if known.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        match self.pid {
            PidState::Ready { id, epoch } | PidState::NeedsBump { id, epoch } => Some((id, epoch)),
            _ => None,
        }
    }

    /// True when every record sent before `token` has its final event.
    pub fn is_flushed(&self, token: FlushToken) -> bool {
        self.min_pending_id().is_none_or(|m| m >= token.0)
    }

    /// Unix milliseconds at `now`, from the anchor given to `new`.
    pub fn wall_clock_ms(&self, now: Instant) -> i64 {
        self.base_wall_ms + now.saturating_duration_since(self.base_instant).as_millis() as i64
    }

    // ---- B. inputs from the driver ----------------------------------------

    /// Re-anchors the wall clock that timestamps records sent without one:
    /// `unix_ms` is the wall-clock time at `now`. Drivers call it now and then
    /// (once per loop turn) so that clock steps and suspends show in timestamps.
    pub fn handle_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        self.base_instant = now;
        self.base_wall_ms = unix_ms;
    }

    /// The driver's connection `conn` is established.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.last_now = now;
        self.on_connected(conn, now);
        self.dirty = true;
    }

    /// Bytes arrived on `conn` (any split; the core deframes).
    pub fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.last_now = now;
        self.on_data(conn, data, now);
        self.dirty = true;
    }

    /// `conn` failed to connect, was closed by the peer, or broke.
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        self.last_now = now;
        self.on_disconnected(conn, now, network::End::Peer);
        self.dirty = true;
    }

    /// The driver wrote `n` more bytes of `conn`'s `Transmit::Send` data to
    /// the socket. Drivers report every write: acks=0 records complete here,
    /// and the core hands a connection at most one request's worth of bytes
    /// beyond what was written.
    pub fn handle_written(&mut self, conn: ConnId, n: usize, now: Instant) {
        self.last_now = now;
        // Most reports change nothing (the request is answered later):
        // then the next poll has nothing to redo.
        if self.on_written(conn, n) {
            self.dirty = true;
        }
    }

    /// A deadline from `poll_timeout` passed (early or spurious calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.dirty = true;
        self.drive(now);
    }

    // ---- C. commands ------------------------------------------------------

    /// Accepts a record. Its outcome arrives later as an event naming the returned id.
    pub fn send(
        &mut self,
        mut record: ProducerRecord,
        now: Instant,
    ) -> Result<RecordId, SendError> {
        self.last_now = now;
        if let Some(code) = self.fatal {
            return Err(SendError::Fatal {
                record: Box::new(record),
                code,
            });
        }
        if self.closing {
            return Err(SendError::Closed(Box::new(record)));
        }
        // The record is only changed once accepted: refused records go back as given.
        let ts = record.timestamp.unwrap_or_else(|| self.wall_clock_ms(now));
        let size = BatchBuilder::record_size(
            0,
            0,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        ) + 16; // varint growth of deltas in a real batch
        let max = self
            .config
            .max_request_size
            .saturating_sub(BATCH_OVERHEAD + REQUEST_OVERHEAD)
            .min(
                self.config
                    .buffer_memory
                    .saturating_sub(BATCH_OVERHEAD + RECORD_OVERHEAD),
            );
        if size > max {
            return Err(SendError::RecordTooLarge {
                record: Box::new(record),
                size: size + BATCH_OVERHEAD,
                max: self.config.max_request_size.min(self.config.buffer_memory),
            });
        }
        let known = self
            .topics
            .position_for_send(&record.topic)
            .map(|i| self.topics.at_mut(i))
            .filter(|t| !t.parts.is_empty() && t.pending.is_empty());
        let Some(t) = known else {
            // Held unpartitioned until the topic's metadata arrives.
            // Held with a batch header's worth, so that placing it later always fits.
            let size = size + BATCH_OVERHEAD;
            if self.buffered_bytes + size > self.config.buffer_memory {
                return Err(self.buffer_full(record));
            }
            let id = self.next_record_id;
            self.next_record_id += 1;
            self.hold(size);
            self.pending_records += 1;
            record.timestamp = Some(ts);
            let t = self.topics.entry(&record.topic);
            t.pending_held += size;
            t.pending.push_back(PendingRecord {
                id,
                record,
                size,
                since: now,
            });
            self.metadata_needed = true;
            self.dirty = true;
            return Ok(RecordId(id));
        };
        let partition = match choose_partition(
            t,
            &record,
            size,
            &mut self.partitioner,
            &self.config,
            &mut self.rng,
        ) {
            Ok(p) => p,
            Err(partitions) => {
                let partition = record.partition.unwrap_or(-1);
                return Err(SendError::InvalidPartition {
                    record: Box::new(record),
                    partition,
                    partitions,
                });
            }
        };
        let part = t.parts[partition as usize];
        let id = self.next_record_id;
        self.append(part, id, &record, ts, size, now)
            .map_err(|()| self.buffer_full(record))?;
        self.next_record_id += 1;
        self.pending_records += 1;
        Ok(RecordId(id))
    }

    /// Makes every batch ready now, lingering or not; returns a token to
    /// check with [`Producer::is_flushed`].
    pub fn flush(&mut self, now: Instant) -> FlushToken {
        self.last_now = now;
        self.flush_below = self.next_record_id;
        self.dirty = true;
        FlushToken(self.next_record_id)
    }

    /// Sends the batch holding `id` without waiting for `linger.ms` (a
    /// synchronous send waits on it).
    pub fn expedite(&mut self, id: RecordId, now: Instant) {
        self.last_now = now;
        // A partition with an open batch is in the active list.
        for &i in &self.active {
            let p = &mut self.parts[i];
            if p.open_contains(id) {
                p.expedite_below = p.expedite_below.max(id.0 + 1);
                self.dirty = true;
                return;
            }
        }
        // Not in an open batch: still waiting for its topic's metadata (or
        // already closed, where this is harmless). Remember it for later.
        if id.0 < self.next_record_id {
            self.expedite_below = self.expedite_below.max(id.0 + 1);
            self.dirty = true;
        }
    }

    /// Stops accepting records, sends what is buffered, and emits `Closed`
    /// once every record has its outcome and connections are closed.
    pub fn close(&mut self, now: Instant) {
        self.last_now = now;
        self.closing = true;
        self.flush_below = self.next_record_id;
        self.dirty = true;
    }

    /// Closes at once: fails every pending record with `Aborted` (or
    /// `UnknownOutcome` when in flight) and emits `Closed`.
    pub fn abort(&mut self, now: Instant) {
        self.last_now = now;
        self.closing = true;
        self.fail_everything(|in_flight| {
            if in_flight {
                DeliveryError::UnknownOutcome
            } else {
                DeliveryError::Aborted
            }
        });
        self.dirty = true;
    }

    // ---- D. outputs -------------------------------------------------------

    /// The next network action, `None` when there is none now.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.dirty {
            self.drive(now);
        }
        self.transmits.pop_front()
    }

    /// The next application event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.dirty {
            self.drive(self.last_now);
        }
        self.events.pop_front()
    }

    /// When to call `handle_timeout` next, `None` when nothing waits on time.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.dirty {
            self.drive(self.last_now);
        }
        self.next_timeout
    }

    // ---- internals: records --------------------------------------------------

    fn buffer_full(&self, record: ProducerRecord) -> SendError {
        SendError::BufferFull {
            record: Box::new(record),
            buffered: self.buffered_bytes,
            limit: self.config.buffer_memory,
        }
    }

    /// The partition for a record of the known topic at position `topic`;
    /// `Err(partitions)` for an invalid explicit one.
    fn choose_partition(
        &mut self,
        topic: usize,
        record: &ProducerRecord,
        size: usize,
    ) -> Result<i32, i32> {
        let t = self.topics.at_mut(topic);
        choose_partition(
            t,
            record,
            size,
            &mut self.partitioner,
            &self.config,
            &mut self.rng,
        )
    }

    /// Appends a record to partition `part`; `Err` when memory is exhausted.
    fn append(
        &mut self,
        part: usize,
        id: u64,
        record: &ProducerRecord,
        ts: i64,
        size: usize,
        now: Instant,
    ) -> Result<(), ()> {
        if self.buffered_bytes + RECORD_OVERHEAD > self.config.buffer_memory {
            return Err(());
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
            let res = p.close_open(self.config.compression, self.config.compression_level);
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
            .saturating_sub(self.buffered_bytes + RECORD_OVERHEAD);
        let need = size + BATCH_OVERHEAD;
        if need > room {
            return Err(());
        }
        let cap = batch_size.min(room).max(need);
        // A freed buffer when one fits: already paged in, unlike a new one.
        let reused = if cap == self.pool.size() {
            self.pool.take()
        } else {
            None
        };
        self.hold(cap);
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
        self.appended(part, id, ts);
        Ok(())
    }

    /// Bookkeeping after a record went into `part`'s open batch; closes the
    /// batch once it reached its target size.
    #[inline]
    fn appended(&mut self, part: usize, id: u64, ts: i64) {
        self.hold(RECORD_OVERHEAD);
        let p = &mut self.parts[part];
        let open = p.open.as_mut().expect("open batch");
        open.memory += RECORD_OVERHEAD;
        open.ids.push(RecordId(id));
        open.timestamps.push(ts);
        open.last_id = id;
        p.queued_records += 1;
        if open.builder.len() >= open.target {
            let res = p.close_open(self.config.compression, self.config.compression_level);
            self.after_close(part, res);
            self.dirty = true;
        }
    }

    /// Records a closed batch's partition, or fails its records when it could not be encoded.
    fn after_close(&mut self, part: usize, res: Result<usize, accumulator::EncodeFailure>) {
        match res {
            Ok(0) => {}
            Ok(uncompressed) => {
                let p = &mut self.parts[part];
                let b = p.queue.back_mut().expect("just closed");
                b.part = part;
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

    /// Smallest id of a record without outcome.
    fn min_pending_id(&self) -> Option<u64> {
        let mut m: Option<u64> = None;
        let mut see = |v: u64| m = Some(m.map_or(v, |x| x.min(v)));
        // Only partitions with batches hold records: the active list has them all.
        for p in self.active_parts() {
            if let Some(v) = p.min_queued_id() {
                see(v);
            }
        }
        for t in self.topics.values() {
            if let Some(r) = t.pending.front() {
                see(r.id);
            }
        }
        for b in self.in_flight_batches_iter() {
            if let Some(id) = b.ids.first() {
                see(id.0);
            }
        }
        m
    }

    // ---- internals: memory ---------------------------------------------------

    /// Takes `n` more bytes of `buffer.memory` into use. Pooled buffers are
    /// free memory: as many are dropped as needed for in-use and pooled bytes
    /// to stay within `buffer.memory` together (Java's `BufferPool` frees
    /// pooled buffers the same way when non-pooled memory runs short).
    fn hold(&mut self, n: usize) {
        self.buffered_bytes += n;
        self.pool.shrink_to(
            self.config
                .buffer_memory
                .saturating_sub(self.buffered_bytes),
        );
        self.check_memory();
    }

    /// Takes the records waiting for the metadata of the topic at position
    /// `i`, and gives back the memory they held; returns them and that memory.
    fn take_pending(&mut self, i: usize) -> (VecDeque<PendingRecord>, usize) {
        let t = self.topics.at_mut(i);
        let held = std::mem::take(&mut t.pending_held);
        self.buffered_bytes -= held;
        (std::mem::take(&mut t.pending), held)
    }

    /// In-use and pooled bytes stay within `buffer.memory` together.
    fn check_memory(&self) {
        debug_assert!(
            self.pool.pooled_bytes()
                <= self
                    .config
                    .buffer_memory
                    .saturating_sub(self.buffered_bytes),
            "pooled {} + in use {} > buffer.memory {}",
            self.pool.pooled_bytes(),
            self.buffered_bytes,
            self.config.buffer_memory
        );
    }

    /// Keeps the buffer of a finished batch (its memory already released)
    /// for a new batch, when it has the pooled size and memory allows.
    fn recycle(&mut self, buf: BytesMut) {
        let room = self
            .config
            .buffer_memory
            .saturating_sub(self.buffered_bytes);
        self.pool.put(buf, room);
        self.check_memory();
    }

    // ---- internals: outcomes -------------------------------------------------

    fn complete_failed(
        &mut self,
        topic: Arc<str>,
        partition: i32,
        ids: RecordIds,
        memory: usize,
        error: DeliveryError,
    ) {
        self.buffered_bytes -= memory;
        self.pending_records -= ids.len();
        self.metrics.records_failed += ids.len() as u64;
        self.events.push_back(Event::Failed(Failure {
            topic,
            partition,
            records: ids,
            error,
        }));
    }

    /// Fails every record without outcome; `in_flight` tells the error maker
    /// whether the batch was on the wire.
    fn fail_everything(&mut self, err: impl Fn(bool) -> DeliveryError) {
        // In-flight batches first: they are the oldest.
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            let conn = self.conns.get_mut(&c).expect("listed");
            let in_flight = std::mem::take(&mut conn.in_flight);
            let unwritten = std::mem::take(&mut conn.unwritten);
            let mut on_wire: Vec<accumulator::Batch> =
                unwritten.into_iter().flat_map(|(_, bs)| bs).collect();
            for f in in_flight {
                match f.kind {
                    network::RequestKind::Produce(batches) => on_wire.extend(batches),
                    other => self.unmark_request(&other),
                }
            }
            for b in on_wire {
                self.off_the_wire(&b);
                self.fail_batch(b, err(true));
            }
            self.transmits.push_back(Transmit::Close { conn: c });
            self.conns.remove(&c);
        }
        for i in 0..self.parts.len() {
            let queue = std::mem::take(&mut self.parts[i].queue);
            let open = self.parts[i].open.take();
            let (t, p) = (self.parts[i].topic.clone(), self.parts[i].partition);
            self.parts[i].queued_records = 0;
            for b in queue {
                let e = if b.maybe_persisted {
                    err(true)
                } else {
                    err(false)
                };
                self.fail_batch(b, e);
            }
            if let Some(o) = open {
                self.complete_failed(t.clone(), p, o.ids, o.memory, err(false));
                self.recycle(o.builder.into_buffer());
            }
        }
        for i in 0..self.topics.len() {
            let name = self.topics.names()[i].clone();
            for r in self.take_pending(i).0 {
                let mut ids = RecordIds::default();
                ids.push(RecordId(r.id));
                self.complete_failed(name.clone(), -1, ids, 0, err(false));
            }
        }
    }

    /// Sets a fatal error: every pending record fails with it, and so do later sends.
    fn set_fatal(&mut self, code: ErrorCode) {
        if self.fatal.is_some() {
            return;
        }
        log::error!("producer failed fatally: {code}");
        self.fatal = Some(code);
        self.fail_everything(|maybe_persisted| DeliveryError::Fatal {
            code,
            maybe_persisted,
        });
    }

    fn backoff(&mut self, attempts: u32) -> Duration {
        let base = self.config.retry_backoff.as_secs_f64() * 1000.0;
        let max = self.config.retry_backoff_max.as_secs_f64() * 1000.0;
        let exp = base * 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
        let capped = exp.min(max);
        // Java's jitter: +/- 20 %.
        let jitter = 0.8 + 0.4 * self.rng.unit();
        Duration::from_micros(((capped * jitter).min(max) * 1000.0) as u64)
    }
}

/// The partition for a record of a known topic `t`; `Err(partitions)` for an
/// invalid explicit one. (A free function so that `send` looks its topic up once.)
#[inline]
fn choose_partition(
    t: &mut TopicState,
    record: &ProducerRecord,
    size: usize,
    partitioner: &mut Option<Box<dyn Partitioner>>,
    config: &ProducerConfig,
    rng: &mut Rng,
) -> Result<i32, i32> {
    let n = t.parts.len() as i32;
    if let Some(p) = record.partition {
        return if (0..n).contains(&p) { Ok(p) } else { Err(n) };
    }
    if let Some(user) = partitioner.as_mut() {
        if let Some(p) = user.partition(
            &record.topic,
            record.key.as_deref(),
            record.value.as_deref(),
            n,
        ) {
            return if (0..n).contains(&p) { Ok(p) } else { Err(n) };
        }
    }
    match &record.key {
        Some(k) if !config.partitioner_ignore_keys => Ok(partition_for_key(k, n)),
        _ => Ok(t
            .sticky
            .choose(size, config.batch_size, n, &t.available, rng)),
    }
}

/// Splits `host:port` (IPv6 in brackets allowed).
fn parse_host_port(s: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::invalid("bootstrap.servers", s, "expected host:port");
    let s = s.trim();
    let s = s.strip_prefix("PLAINTEXT://").unwrap_or(s);
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
}

/// The error a response code stands for, `None` for success.
pub(crate) fn error_of(code: i16) -> Option<ErrorCode> {
    let c = ErrorCode::from_code(code);
    (!c.is_ok()).then_some(c)
}
