//! The sans-IO producer: a deterministic state machine that takes records,
//! broker bytes and `now`, and emits transmits, a timeout and events.
//!
//! [`Producer`] documents its methods and the order of calls. Its state is
//! kept by concern, one module each: `connection` (connections, deframing,
//! requests in flight, reconnect backoff), `dispatch` (each answer to the
//! concern of its request), `handshake` (ApiVersions),
//! `metadata` (the cluster view, rebootstrap, records waiting for a topic),
//! `idempotence` (producer id, epoch bumps), `append` and `accumulator`
//! (records into batches), `sender` (the turn: expiry, draining batches
//! into Produce requests), `produce_response`, `outcome` (events), `memory`
//! (`buffer.memory`), and `timers` (the deadlines).
//!
//! This file is the public surface, past 600 lines for its documentation:
//! the types a driver sees and `Producer`'s methods, each a thin entry
//! into those modules.

mod accumulator;
mod append;
#[cfg(feature = "sasl")]
mod authenticate;
pub mod config;
pub mod config_keys;
mod connection;
mod dispatch;
mod handshake;
mod idempotence;
mod memory;
mod metadata;
mod metrics;
mod outcome;
pub mod partitioner;
mod pool;
mod produce_response;
pub mod record;
// Public for the simulation and fuzz replays, which draw from the same
// generator as the core; not part of the documented API.
#[doc(hidden)]
pub mod rng;
mod secure;
pub mod security;
mod sender;
mod statistics;
mod timers;
mod topics;
mod transactions;
pub mod txn;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::error_code::ErrorCode;
use crate::protocol::record::BatchBuilder;

use accumulator::PartitionState;
use append::choose_partition;
pub use config::{
    Acks, ClientDnsLookup, ConfigError, MetadataRecoveryStrategy, ProducerConfig, DEFAULT_RNG_SEED,
};
use connection::Network;
use idempotence::{Idempotence, PidState};
use memory::Memory;
pub use memory::RECORD_OVERHEAD;
use metadata::{parse_host_port, Cluster};
use metrics::Sensors;
pub use metrics::{Metric, Metrics};
pub use partitioner::{murmur2, partition_for_key, Partitioner};
pub use record::{
    ConnectionError, Delivery, DeliveryError, Event, Failure, ProducerRecord, RecordId, RecordIds,
    RecordMetadata, SendError, Timestamps,
};
use rng::Rng;
use timers::TimerTable;
use topics::PendingRecord;
use topics::Topics;
use transactions::Txn;
use txn::{GroupOffsets, TxnCall, TxnError, TxnManager, TxnState};

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
    /// Write these bytes, in order after earlier sends on the connection
    /// (under TLS, ciphertext).
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

/// The sans-IO Kafka producer.
///
/// It does no IO and reads no clock: a driver gives it what happened, with
/// `now`, and carries out what it asks. Its methods come in four groups:
///
/// - **getters** (`&self`), state and never a change to it:
///   [`buffered_bytes`](Self::buffered_bytes), [`pending_records`](Self::pending_records),
///   [`in_flight_batches`](Self::in_flight_batches), [`is_idle`](Self::is_idle),
///   [`is_flushed`](Self::is_flushed), [`needs_poll`](Self::needs_poll),
///   [`metrics`](Self::metrics), ...;
/// - **inputs from the driver**, what happened on the network or the clock:
///   [`handle_connected`](Self::handle_connected), [`handle_data`](Self::handle_data),
///   [`handle_written`](Self::handle_written), [`handle_disconnected`](Self::handle_disconnected),
///   [`handle_timeout`](Self::handle_timeout), [`handle_wall_clock`](Self::handle_wall_clock);
/// - **commands**, what the application asks: [`send`](Self::send),
///   [`flush`](Self::flush), [`expedite`](Self::expedite), [`close`](Self::close),
///   [`abort`](Self::abort), [`set_partitioner`](Self::set_partitioner);
/// - **outputs**, `#[must_use]`: [`poll_transmit`](Self::poll_transmit) (a [`Transmit`]),
///   [`poll_event`](Self::poll_event) (an [`Event`]), and
///   [`poll_timeout`](Self::poll_timeout), the deadline for the next `handle_timeout`.
///
/// The order of calls: [`new`](Self::new), then commands at any time; after
/// inputs and commands, drain the outputs until each returns `None`; wait for
/// IO or the deadline, give the core what happened, and drain again.
///
/// Work happens when output is polled. Inputs and commands only record what
/// happened (a `send` appends to a batch, a `handle_data` settles the batches
/// its answers name); closing ready batches, building requests, opening
/// connections, asking for metadata, failing what timed out and computing the
/// next deadline are one turn, run by the first `poll_*` after an input or
/// command that could change its outcome ([`needs_poll`](Self::needs_poll)
/// tells whether one did). So several inputs may be applied and then polled
/// once, and nothing goes out until the driver polls.
/// [`docs::architecture`](crate::docs::architecture) has the whole contract
/// and how to write a driver.
///
/// TLS and SASL (`security.protocol`, features `tls` and `sasl`) live here,
/// not in the driver: under TLS `Transmit::Send` carries ciphertext,
/// `handle_data` takes it and `handle_written` counts it, and the
/// certificate must name the host of `Transmit::Connect`; SASL is a step of
/// each connection's handshake (ApiVersions, SaslHandshake, SaslAuthenticate
/// rounds, then ready) and is redone on the live connection before the
/// broker's session lifetime ends (KIP-368). Time for certificate checks is
/// the core's wall clock (`new`, [`handle_wall_clock`](Self::handle_wall_clock)).
/// Randomness: TLS takes it from ring's `SystemRandom` (the OS); the SCRAM
/// nonce is hashed from the core's seeded generator
/// ([`ProducerConfig::rng_seed`], which the drivers seed from the OS), so a
/// core given the same seed and inputs still gives the same outputs.
pub struct Producer {
    config: ProducerConfig,
    rng: Rng,
    partitioner: Option<Box<dyn Partitioner>>,
    base_instant: Instant,
    base_wall_ms: i64,
    last_now: Instant,

    next_record_id: u64,

    topics: Topics,
    parts: Vec<PartitionState>,

    /// Brokers, bootstrap addresses, Metadata requests (`metadata`).
    cluster: Cluster,
    /// Connections and reconnect backoff (`connection`).
    net: Network,
    /// Producer id and epoch (`idempotence`).
    idempotence: Idempotence,
    /// TLS configuration and clock, SASL mechanism and credentials (`secure`).
    #[cfg_attr(not(any(feature = "tls", feature = "sasl")), allow(dead_code))]
    security: secure::SecurityState,
    /// `buffer.memory` in use and the buffer pool (`memory`).
    memory: Memory,

    /// Indices of the partitions that may hold batches, ascending: every
    /// partition with an open or queued batch is in it (a turn prunes the
    /// ones left empty), so that a turn's walks over batches cost the
    /// partitions in use, not all the producer knows.
    active: Vec<usize>,
    /// Scratch lists a turn fills and empties (leader nodes, connections),
    /// kept so that a turn allocates nothing.
    scratch_nodes: Vec<i32>,
    scratch_conns: Vec<ConnId>,
    pending_records: usize,
    in_flight_batches: usize,

    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// The deadlines of every concern, and the next of them.
    timers: TimerTable,
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
    sensors: Sensors,
    /// The transaction state of a transactional producer (`transactions`).
    txn: Option<Txn>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("pending_records", &self.pending_records)
            .field("buffered_bytes", &self.memory.buffered)
            .field("in_flight_batches", &self.in_flight_batches)
            .field("connections", &self.net.conns.len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// Bytes a batch's header takes ahead of its records.
const BATCH_OVERHEAD: usize = crate::protocol::record::RECORD_BATCH_OVERHEAD;
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
        let security =
            secure::SecurityState::new(&config.security, config.rng_seed, wall_clock_ms)?;
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
        // The capacity of a full-size uncompressed batch (`append`'s
        // `batch_size` at a compression ratio of 1), the one size pooled.
        let poolable = config
            .batch_size
            .min(config.max_request_size)
            .min(config.buffer_memory);
        let txn = config.transactional_id.clone().map(|id| {
            let timeout_ms = config.transaction_timeout.as_millis().min(i32::MAX as u128) as i32;
            Txn::new(TxnManager::new(id, timeout_ms, config.retry_backoff))
        });
        let idempotence = Idempotence::new(config.enable_idempotence, txn.is_some());
        let memory = Memory::new(config.buffer_memory, poolable);
        Ok(Producer {
            rng: Rng::new(config.rng_seed),
            config,
            partitioner: None,
            base_instant: now,
            base_wall_ms: wall_clock_ms,
            last_now: now,
            next_record_id: 0,
            topics: Topics::default(),
            parts: Vec::new(),
            cluster: Cluster::new(bootstrap),
            net: Network::default(),
            active: Vec::new(),
            scratch_nodes: Vec::new(),
            scratch_conns: Vec::new(),
            idempotence,
            security,
            memory,
            pending_records: 0,
            in_flight_batches: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            next_timeout: None,
            dirty: true,
            flush_below: 0,
            expedite_below: 0,
            closing: false,
            closed: false,
            fatal: None,
            metrics: Metrics::default(),
            sensors: Sensors {
                started: Some(now),
                ..Sensors::default()
            },
            txn,
        })
    }

    // ---- getters ------------------------------------------------------------

    /// The configuration in force.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Bytes of `buffer.memory` in use.
    pub fn buffered_bytes(&self) -> usize {
        self.memory.buffered
    }

    /// True when senders refused with `BufferFull` are worth waking to try
    /// again: an eighth of `buffer.memory` (at least a batch) is free, or
    /// nothing is buffered. Waking them per freed batch would cost, against
    /// a slow broker, a wake-up, a failed append and a wait per batch; a
    /// record that needs more is woken again by each later turn that frees
    /// memory, until all of it is free.
    pub fn has_room_for_blocked_senders(&self) -> bool {
        let c = &self.config;
        let enough = c.batch_size.max(c.buffer_memory / 8).min(c.buffer_memory);
        self.memory.room() >= enough || self.memory.buffered == 0
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
        self.net.conns.values().map(|c| c.in_flight.len()).sum()
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

    /// True when events wait for `poll_event`.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
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

    /// Java's producer metrics at `now`, by Java's group, name and tags,
    /// windowed by `metrics.sample.window.ms` and `metrics.num.samples`.
    /// Built from statistics kept per batch and request, it costs a few
    /// dozen small allocations: cheap enough to read every second.
    pub fn metrics_snapshot(&self, now: Instant) -> Vec<Metric> {
        self.snapshot(now)
    }

    /// librdkafka's statistics JSON at `now` (the fields of its
    /// STATISTICS.md this producer fills, with their names and meanings);
    /// the window statistics (`rtt`) start over, as at each of librdkafka's
    /// emissions. Drivers call it every `statistics.interval.ms`.
    #[cfg(feature = "json")]
    pub fn statistics_json(&mut self, now: Instant) -> String {
        self.build_statistics(now)
    }

    /// A driver reports that a sender waited `waited` for `buffer.memory`
    /// (`bufferpool-wait-time-ns-total`).
    pub fn record_buffer_wait(&mut self, waited: Duration) {
        self.sensors.buffer_wait_ns_total += waited.as_nanos() as u64;
    }

    /// A driver reports how many senders wait for `buffer.memory` now (`waiting-threads`).
    pub fn set_waiting_threads(&mut self, n: usize) {
        self.sensors.waiting_threads = n;
    }

    /// Producer id and epoch in use (idempotence), if known.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        match self.idempotence.pid {
            PidState::Ready { id, epoch } | PidState::NeedsBump { id, epoch } => Some((id, epoch)),
            _ => None,
        }
    }

    /// The transaction state, `None` without `transactional.id`.
    pub fn transaction_state(&self) -> Option<TxnState> {
        self.txn.as_ref().map(|t| t.mgr.state())
    }

    /// True when every record sent before `token` has its final event.
    pub fn is_flushed(&self, token: FlushToken) -> bool {
        self.min_pending_id().is_none_or(|m| m >= token.0)
    }

    /// Unix milliseconds at `now`, from the anchor given to `new`.
    pub fn wall_clock_ms(&self, now: Instant) -> i64 {
        self.base_wall_ms + now.saturating_duration_since(self.base_instant).as_millis() as i64
    }

    // ---- inputs from the driver ---------------------------------------------

    /// Re-anchors the wall clock that timestamps records sent without one:
    /// `unix_ms` is the wall-clock time at `now`. Drivers call it now and then
    /// (once per loop turn) so that clock steps and suspends show in timestamps.
    pub fn handle_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        self.base_instant = now;
        self.base_wall_ms = unix_ms;
        // TLS checks certificates at this time (the sessions also read it
        // when bytes arrive: `tls_in`).
        #[cfg(feature = "tls")]
        if let Some((_, clock)) = &self.security.tls {
            clock.set_unix_ms(unix_ms.max(0) as u64);
        }
    }

    /// The driver's connection `conn` is established.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.last_now = now;
        self.on_connected(conn, now);
        self.dirty = true;
    }

    /// Bytes arrived on `conn` (any split; the core deframes, and decrypts
    /// under TLS: these are the bytes read from the socket).
    pub fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.last_now = now;
        self.on_data(conn, data, now);
        self.dirty = true;
    }

    /// `conn` failed to connect, was closed by the peer, or broke.
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        self.last_now = now;
        self.on_disconnected(conn, now, connection::End::Peer);
        self.dirty = true;
    }

    /// The driver wrote `n` more bytes of `conn`'s `Transmit::Send` data to
    /// the socket (under TLS, ciphertext: the bytes of the sends). Drivers
    /// report every write: acks=0 records complete here,
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

    // ---- commands -----------------------------------------------------------

    /// Installs a user partitioner for records without an explicit partition.
    pub fn set_partitioner(&mut self, partitioner: Box<dyn Partitioner>) {
        self.partitioner = Some(partitioner);
    }

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
        if let Err(error) = self.txn_check_send() {
            return Err(SendError::Transaction {
                record: Box::new(record),
                error,
            });
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
            if self.memory.buffered + size > self.config.buffer_memory {
                return Err(self.buffer_full(record));
            }
            let id = self.next_record_id;
            self.next_record_id += 1;
            self.memory.hold(size);
            self.pending_records += 1;
            record.timestamp = Some(ts);
            let t = self.topics.entry(&record.topic);
            t.pending_held += size;
            t.last_used = Some(now);
            t.forgotten = false;
            t.pending.push_back(PendingRecord {
                id,
                record,
                size,
                since: now,
            });
            self.cluster.metadata_needed = true;
            self.dirty = true;
            if let Some(t) = &mut self.txn {
                t.mgr.record_accepted();
            }
            return Ok(RecordId(id));
        };
        let (partition, sticky) = match choose_partition(
            t,
            &record,
            &mut self.partitioner,
            &self.config,
            &mut self.rng,
            &self.parts,
            &self.cluster.drains,
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
        if sticky {
            self.sticky_appended(part, size);
        }
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

    /// Fails every record not sent yet with [`DeliveryError::Purged`]
    /// (librdkafka's `purge`, franz-go's `AbortBufferedRecords`), leaving
    /// the producer open; records already sent keep their course. Returns
    /// how many were purged. Inside a transaction, the transaction then
    /// cannot commit.
    pub fn purge(&mut self, now: Instant) -> usize {
        self.last_now = now;
        self.purge_unsent(DeliveryError::Purged)
    }

    // ---- transactions (with `transactional.id`) ------------------------------
    //
    // Each call is accepted or refused at once; an accepted call (but
    // `begin_transaction`) finishes later with an `Event::Transaction`
    // carrying its outcome. Java's rules say which call is allowed when.

    /// Obtains the producer id and epoch for `transactional.id`, fencing
    /// any earlier producer with the same id, and finishes an earlier
    /// instance's open transaction.
    pub fn init_transactions(&mut self, now: Instant) -> Result<(), TxnError> {
        self.txn_command(TxnCall::InitTransactions, now, |m| m.init_transactions())
    }

    /// Opens a transaction: records may be sent until it is committed or
    /// aborted. No request is sent and no event follows.
    pub fn begin_transaction(&mut self, now: Instant) -> Result<(), TxnError> {
        self.txn_command(TxnCall::BeginTransaction, now, |m| m.begin_transaction())
    }

    /// Commits a consumer group's offsets with the open transaction (the
    /// producer side of consume-transform-produce).
    pub fn send_offsets_to_transaction(
        &mut self,
        offsets: GroupOffsets,
        now: Instant,
    ) -> Result<(), TxnError> {
        self.txn_send_offsets(offsets, now)
    }

    /// Commits the open transaction: flushes, waits for every record, then
    /// ends it. It fails (abortable) if any record of it failed.
    pub fn commit_transaction(&mut self, now: Instant) -> Result<(), TxnError> {
        self.txn_command(TxnCall::Commit, now, |m| m.commit_transaction())
    }

    /// Aborts the open transaction: its unsent records fail with
    /// [`DeliveryError::TransactionAborted`], the ones in flight are
    /// awaited, then it is ended. Allowed after an abortable error.
    pub fn abort_transaction(&mut self, now: Instant) -> Result<(), TxnError> {
        self.txn_command(TxnCall::Abort, now, |m| m.abort_transaction())
    }

    // ---- outputs ------------------------------------------------------------

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

    // ---- internals ----------------------------------------------------------

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

    /// The retry backoff after `attempts` failed attempts: exponential up to
    /// `retry.backoff.max.ms`, with jitter.
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

/// The error a response code stands for, `None` for success.
pub(crate) fn error_of(code: i16) -> Option<ErrorCode> {
    let c = ErrorCode::from_code(code);
    (!c.is_ok()).then_some(c)
}
