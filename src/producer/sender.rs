//! The sender: `drive`, the turn that runs every decision due (expiring what
//! timed out, the cluster's upkeep in `metadata`, epoch bumps in
//! `idempotence`), draining ready batches into Produce requests, and the
//! next deadline.

use std::time::Instant;

use crate::protocol::compression::Compression;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData, FIRST_TOPIC_ID_VERSION,
};
use crate::protocol::record::increment_sequence;

use super::accumulator::{Batch, PartitionState};
use super::connection::{ConnState, RequestKind};
use super::idempotence::PidState;
use super::metadata::DeliveryErrorKind;
use super::record::{DeliveryError, Event};
use super::timers::earliest;
use super::{Acks, ConnId, ConnectionError, Producer, Transmit};

impl Producer {
    /// Runs every decision that may be due at `now`, then computes the next deadline.
    pub(crate) fn drive(&mut self, now: Instant) {
        self.dirty = false;
        if self.closed {
            self.next_timeout = None;
            return;
        }
        self.prune_active();
        self.expire(now);
        self.place_waiting(now);
        self.maintain_cluster(now);
        self.txn_turn(now);
        self.maybe_bump_epoch(now);
        self.drain(now);
        self.maybe_finish_close();
        self.arm_timers(now);
        self.next_timeout = self.timers.next_after(now);
    }

    // ---- the partitions in use -------------------------------------------------

    /// Adds partition `part` to the list of those that may hold batches
    /// (before it gets one: an open batch, or a batch back for a retry).
    pub(crate) fn list_active(&mut self, part: usize) {
        if let Err(at) = self.active.binary_search(&part) {
            self.active.insert(at, part);
        }
    }

    /// The partitions in the list: every one with batches, and maybe a few
    /// emptied since the last prune.
    pub(crate) fn active_parts(&self) -> impl Iterator<Item = &PartitionState> + '_ {
        self.active.iter().map(|&i| &self.parts[i])
    }

    /// Drops the partitions left without batches from the list.
    fn prune_active(&mut self) {
        let parts = &self.parts;
        self.active.retain(|&i| parts[i].has_batches());
        debug_assert!(
            self.parts
                .iter()
                .enumerate()
                .all(|(i, p)| !p.has_batches() || self.active.binary_search(&i).is_ok()),
            "a partition with batches is missing from the active list"
        );
    }

    // ---- expiry --------------------------------------------------------------

    fn expire(&mut self, now: Instant) {
        let dt = self.config.delivery_timeout;
        // Batches waiting in partitions past delivery.timeout.ms. (The loop
        // adds no partition to the list it walks.)
        for k in 0..self.active.len() {
            let i = self.active[k];
            while let Some(b) = self.parts[i].queue.front() {
                if now.saturating_duration_since(b.created) < dt {
                    break;
                }
                let b = self.parts[i].queue.pop_front().expect("front");
                self.parts[i].queued_records -= b.count();
                let elapsed = now.saturating_duration_since(b.created).as_millis() as u64;
                let e = DeliveryError::Timeout {
                    elapsed_ms: elapsed,
                    maybe_persisted: b.maybe_persisted,
                };
                self.fail_batch(b, e);
            }
            let expired = self.parts[i]
                .open
                .as_ref()
                .is_some_and(|o| now.saturating_duration_since(o.created) >= dt);
            if expired {
                let o = self.parts[i].open.take().expect("open");
                self.parts[i].queued_records -= o.ids.len();
                let (t, p) = (self.parts[i].topic.clone(), self.parts[i].partition);
                let elapsed = now.saturating_duration_since(o.created).as_millis() as u64;
                self.complete_failed(
                    t,
                    p,
                    o.ids,
                    o.memory,
                    DeliveryError::Timeout {
                        elapsed_ms: elapsed,
                        maybe_persisted: false,
                    },
                );
                self.memory.recycle(o.builder.into_buffer());
            }
        }
        // Records waiting for metadata past max.block.ms.
        for i in 0..self.topics.len() {
            let t = self.topics.at(i);
            let expired = t
                .pending
                .front()
                .is_some_and(|r| now.saturating_duration_since(r.since) >= self.config.max_block);
            if expired {
                let ms = self.config.max_block.as_millis() as u64;
                let why = match (t.error, &self.net.last_error) {
                    (Some(c), _) if c != ErrorCode::UnknownTopicOrPartition => {
                        DeliveryErrorKind::Broker(c)
                    }
                    // No answer named the topic, and a connection failed
                    // since the last usable one: that failure is the cause.
                    (None, Some(cause)) => DeliveryErrorKind::Unavailable(ms, cause.clone()),
                    _ => DeliveryErrorKind::NotFound(ms),
                };
                self.fail_topic(i, why);
            }
        }
        // Requests past request.timeout.ms, and connects past the setup timeout.
        let mut reset = Vec::new();
        for (id, c) in &self.net.conns {
            if let Some(f) = c.in_flight.front().filter(|f| f.deadline <= now) {
                let api = f.kind.api_key();
                let ms = self.config.request_timeout.as_millis() as u64;
                let addr = c.addr_string();
                reset.push((*id, ConnectionError::RequestTimeout { addr, api, ms }));
            } else if c.state == ConnState::Connecting
                && now.saturating_duration_since(c.started) >= c.setup_timeout
            {
                let ms = c.setup_timeout.as_millis() as u64;
                let addr = c.addr_string();
                reset.push((*id, ConnectionError::ConnectTimeout { addr, ms }));
            }
        }
        for (id, error) in reset {
            self.reset(id, now, error);
        }
        self.close_idle(now);
    }

    /// Whether partition `i`'s open batch may be closed and sent: lingered,
    /// flushed, expedited (sync send), closing, or memory is short.
    fn open_ready(&self, i: usize, now: Instant) -> bool {
        let p = &self.parts[i];
        let Some(o) = &p.open else { return false };
        let first = o.ids.first().map_or(u64::MAX, |r| r.0);
        now.saturating_duration_since(o.created) >= self.config.linger
            || first < self.flush_below
            || first < p.expedite_below
            || first < self.expedite_below
            || self.memory.buffered + self.config.batch_size > self.config.buffer_memory
    }

    // ---- draining ------------------------------------------------------------

    fn drain(&mut self, now: Instant) {
        if self.fatal.is_some() {
            return;
        }
        let (pid, epoch) = match self.idempotence.pid {
            PidState::Disabled => (-1, -1),
            PidState::Ready { id, epoch } => (id, epoch),
            _ => return,
        };
        let mut conns = std::mem::take(&mut self.scratch_conns);
        conns.extend(
            self.net
                .conns
                .iter()
                .filter(|(_, c)| c.node.is_some() && c.state == ConnState::Ready)
                .map(|(id, _)| *id),
        );
        for &conn in &conns {
            while let Some(c) = self.net.conns.get(&conn) {
                // Also bounded by what the driver has yet to write: at most
                // one request's worth waits in its buffers.
                if !c.can_send(self.config.max_in_flight, now)
                    || c.unwritten_bytes() >= self.config.max_request_size as u64
                {
                    break;
                }
                let node = c.node.expect("leader connection");
                let version = self.txn_produce_version(c.version(ApiKey::Produce).expect("ready"));
                if self.config.compression == Compression::Zstd && version < 7 {
                    // zstd needs Produce v7 (Kafka 2.1): fail what would go
                    // to this broker with a clear error instead of sending.
                    self.fail_unsendable(node, version);
                    break;
                }
                let batches = self.collect_batches(node, now, pid, epoch);
                if batches.is_empty() {
                    break;
                }
                self.send_produce(conn, version, batches, now);
            }
        }
        conns.clear();
        self.scratch_conns = conns;
    }

    /// Takes at most one sendable batch per partition led by `node`, within `max.request.size`.
    /// Fails every batch led by `node` that this broker cannot accept (zstd
    /// below Produce v7), open batches included.
    fn fail_unsendable(&mut self, node: i32, version: i16) {
        for i in 0..self.parts.len() {
            if self.parts[i].leader != Some(node) {
                continue;
            }
            let res =
                self.parts[i].close_open(self.config.compression, self.config.compression_level());
            self.after_close(i, res);
            let queue = std::mem::take(&mut self.parts[i].queue);
            for b in queue {
                self.parts[i].queued_records -= b.count();
                let maybe_persisted = b.maybe_persisted;
                let message = Some(format!(
                    "compression.type=zstd needs Produce v7 or later; this broker speaks Produce up to v{version}"
                ));
                self.fail_batch(
                    b,
                    DeliveryError::Broker {
                        code: ErrorCode::UnsupportedCompressionType,
                        message,
                        maybe_persisted,
                    },
                );
            }
        }
    }

    fn collect_batches(&mut self, node: i32, now: Instant, pid: i64, epoch: i16) -> Vec<Batch> {
        let idempotent = pid >= 0;
        let transactional = self.txn.is_some();
        let mut out = Vec::new();
        let mut size = 0usize;
        // Closing and taking batches adds no partition to the list.
        for k in 0..self.active.len() {
            let i = self.active[k];
            let p = &self.parts[i];
            if p.leader != Some(node) {
                continue;
            }
            // Under transactions v1 a partition's first Produce waits for
            // AddPartitionsToTxn; a batch that went out already goes on.
            let joined = self.txn_may_produce(i);
            let p = &self.parts[i];
            if p.queue.is_empty() {
                if !joined {
                    continue;
                }
                // The open batch is closed only when it can go now: until then
                // it keeps filling (as Java's accumulator drains on send).
                if !self.open_ready(i, now) {
                    continue;
                }
                if idempotent && (p.in_flight >= 5 || (!p.acked_in_epoch && p.in_flight > 0)) {
                    continue;
                }
                let estimate = p.open.as_ref().map_or(0, |o| o.builder.len());
                if !out.is_empty() && size + estimate + 64 > self.config.max_request_size {
                    continue;
                }
                let res = self.parts[i]
                    .close_open(self.config.compression, self.config.compression_level());
                self.after_close(i, res);
            }
            let p = &self.parts[i];
            let Some(head) = p.queue.front() else {
                continue;
            };
            if head.retry_at.is_some_and(|t| t > now) || !(joined || head.sequenced) {
                continue;
            }
            if idempotent {
                if p.in_flight >= 5 {
                    continue;
                }
                // While a batch is retried, only the head of the partition may
                // be in flight; so too before the first acknowledgement.
                if (head.sequenced || !p.acked_in_epoch) && p.in_flight > 0 {
                    continue;
                }
            }
            let len = head.closed.len();
            if !out.is_empty() && size + len + 64 > self.config.max_request_size {
                continue;
            }
            let p = &mut self.parts[i];
            let mut b = p.queue.pop_front().expect("head");
            p.queued_records -= b.count();
            if idempotent && !b.sequenced {
                b.closed.stamp(pid, epoch, p.next_seq, transactional);
                p.next_seq = increment_sequence(p.next_seq, b.count() as i32);
                b.sequenced = true;
            }
            p.in_flight += 1;
            self.in_flight_batches += 1;
            size += len;
            out.push(b);
        }
        out
    }

    fn send_produce(&mut self, conn: ConnId, version: i16, batches: Vec<Batch>, now: Instant) {
        // Group by topic in partition order (deterministic).
        let mut topic_data: Vec<TopicProduceData> = Vec::new();
        for b in &batches {
            let p = &self.parts[b.part];
            let pd = PartitionProduceData {
                index: p.partition,
                records: Some(b.closed.bytes()),
                ..Default::default()
            };
            match topic_data.iter_mut().find(|t| *t.name == *p.topic) {
                Some(t) => t.partition_data.push(pd),
                None => topic_data.push(TopicProduceData {
                    name: p.topic.to_string(),
                    topic_id: self.topics.at(p.topic_pos).id,
                    partition_data: vec![pd],
                    ..Default::default()
                }),
            }
        }
        // v13 names topics only by id: when one topic's id is unknown (Metadata
        // below v10, or an answer without ids) the whole request names its
        // topics at v12, the last version with names (the rule the Java client
        // applies to Fetch v13).
        let version = if version >= FIRST_TOPIC_ID_VERSION
            && topic_data.iter().any(|t| t.topic_id == [0; 16])
        {
            FIRST_TOPIC_ID_VERSION - 1
        } else {
            version
        };
        let mut batches = batches;
        if version >= FIRST_TOPIC_ID_VERSION {
            // The answer names each topic by the id sent (see on_produce_response),
            // which a metadata refresh may change while the request is out.
            for b in &mut batches {
                let topic = &self.parts[b.part].topic;
                if let Some(t) = topic_data.iter().find(|t| *t.name == **topic) {
                    b.topic_id = t.topic_id;
                }
            }
        }
        let req = ProduceRequest {
            transactional_id: self.txn_id(),
            acks: self.config.acks.code(),
            timeout_ms: self
                .config
                .request_timeout
                .as_millis()
                .min(i32::MAX as u128) as i32,
            topic_data,
            ..Default::default()
        };
        self.metrics.produce_requests += 1;
        let w = self.window();
        let mut records = 0;
        for b in &batches {
            self.metrics.batches_sent += 1;
            self.metrics.bytes_sent += b.closed.len() as u64;
            let n = b.count() as f64;
            records += b.count();
            if b.attempts > 0 {
                self.metrics.records_retried += b.count() as u64;
                self.sensors.record_retry.record(n, now, &w);
            }
            let s = &mut self.sensors;
            s.record_send.record(n, now, &w);
            s.record_send_total += b.count() as u64;
            let queued = now.saturating_duration_since(b.created).as_secs_f64() * 1000.0;
            s.queue_time.record(queued, now, &w);
            let t = self.parts[b.part].topic_pos;
            if s.topic_send.len() <= t {
                s.topic_send.resize_with(t + 1, Default::default);
            }
            s.topic_send[t].record(n, now, &w);
        }
        self.sensors
            .records_per_request
            .record(records as f64, now, &w);
        for b in &mut batches {
            b.attempts += 1;
        }
        if self.config.acks == Acks::None {
            // Kafka sends no answer (one that comes anyway is dropped, see
            // `on_data`): the records are complete once written.
            match self.transmit_request(conn, version, &req) {
                Some(correlation_id) => {
                    let c = self.net.conns.get_mut(&conn).expect("connection");
                    c.sent_acks0(correlation_id);
                    // Complete once written (`handle_written`), as Java does:
                    // until then the batches hold their memory, so a stalled
                    // broker stops the producer at buffer.memory.
                    c.unwritten.push_back((c.sent_bytes, batches));
                }
                None => self.retry_unknown(batches, now),
            }
            return;
        }
        if !self.send_request(conn, version, &req, RequestKind::Produce(Vec::new()), now) {
            self.retry_unknown(batches, now);
            return;
        }
        let c = self.net.conns.get_mut(&conn).expect("connection");
        let f = c.in_flight.back_mut().expect("just queued");
        f.kind = RequestKind::Produce(batches);
    }

    /// The earliest deadline after `now` among the batches: a lingering
    /// batch's linger and delivery timeout, a queued one's delivery timeout
    /// and retry backoff.
    pub(super) fn batches_deadline(&self, now: Instant) -> Option<Instant> {
        let dt = self.config.delivery_timeout;
        let linger = self.config.linger;
        earliest(
            now,
            self.active_parts().flat_map(|p| {
                let open = p
                    .open
                    .iter()
                    .flat_map(move |o| [o.created + linger, o.created + dt]);
                let head = p.queue.front().map(|b| b.created + dt);
                // Only batches that went out carry a retry time, and they lead
                // the queue: stop at the first fresh one, not at the queue's end.
                let retries = p
                    .queue
                    .front()
                    .into_iter()
                    .chain(p.queue.iter().skip(1).take_while(|b| b.attempts > 0))
                    .filter_map(|b| b.retry_at);
                open.chain(head).chain(retries)
            }),
        )
    }

    // ---- close ------------------------------------------------------

    fn maybe_finish_close(&mut self) {
        if self.closing && !self.closed && self.pending_records == 0 {
            let conns: Vec<ConnId> = self.net.conns.keys().copied().collect();
            for c in conns {
                self.transmits.push_back(Transmit::Close { conn: c });
            }
            self.net.conns.clear();
            self.closed = true;
            // No batch comes after this: give the idle buffers back.
            self.memory.pool.shrink_to(0);
            self.events.push_back(Event::Closed);
        }
    }
}
