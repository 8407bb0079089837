//! The sender: everything `drive` decides when it runs — expiring what timed
//! out, keeping metadata and the producer id fresh, opening connections,
//! draining ready batches into Produce requests, handling Produce answers
//! (retries, idempotence rules, KIP-360 epoch bumps) — and the next deadline.

use std::time::Instant;

use crate::protocol::compression::Compression;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData, FIRST_TOPIC_ID_VERSION,
};
use crate::protocol::record::increment_sequence;

use super::accumulator::{Batch, PartitionState};
use super::config::MetadataRecoveryStrategy;
use super::network::{ConnState, DeliveryErrorKind, RequestKind};
use super::record::{Delivery, DeliveryError, Event};
use super::{error_of, Acks, ConnId, ConnectionError, PidState, Producer, Transmit};

/// Is this error one that says our metadata is stale? (Java's
/// `InvalidMetadataException` subclasses, UNKNOWN_TOPIC_ID among them: the
/// topic id we sent at Produce v13 is gone, e.g. the topic was recreated.)
fn invalidates_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::UnknownTopicId
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::KafkaStorageError
            | ErrorCode::NotCoordinator
    )
}

/// Errors after which the producer cannot go on.
fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ProducerFenced
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::ClusterAuthorizationFailed
            | ErrorCode::TransactionalIdAuthorizationFailed
            | ErrorCode::UnsupportedVersion
            | ErrorCode::UnsupportedForMessageFormat
            | ErrorCode::InvalidProducerIdMapping
            | ErrorCode::InvalidTxnState
    )
}

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
        self.maybe_bump_epoch(now);
        self.drain(now);
        self.maybe_finish_close();
        self.next_timeout = self.compute_timeout(now);
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
                self.recycle(o.builder.into_buffer());
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
                let why = match (t.error, &self.last_conn_error) {
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
        for (id, c) in &self.conns {
            if let Some(f) = c.in_flight.front().filter(|f| f.deadline <= now) {
                let api = f.kind.api_key();
                let ms = self.config.request_timeout.as_millis() as u64;
                let addr = c.addr_string();
                reset.push((*id, ConnectionError::RequestTimeout { addr, api, ms }));
            } else if c.state == ConnState::Connecting
                && now.saturating_duration_since(c.started) >= self.config.connect_timeout
            {
                let ms = self.config.connect_timeout.as_millis() as u64;
                let addr = c.addr_string();
                reset.push((*id, ConnectionError::ConnectTimeout { addr, ms }));
            }
        }
        for (id, error) in reset {
            self.reset(id, now, error);
        }
    }

    /// Places records that waited for metadata or for memory, once both are there.
    fn place_waiting(&mut self, now: Instant) {
        for i in 0..self.topics.len() {
            let t = self.topics.at(i);
            if !t.pending.is_empty() && !t.parts.is_empty() {
                self.place_pending(i, now);
            }
        }
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
            || self.buffered_bytes + self.config.batch_size > self.config.buffer_memory
    }

    // ---- cluster: metadata, producer id, connections ---------------------------

    fn maintain_cluster(&mut self, now: Instant) {
        // Metadata is due when asked for, when records wait for it, or by age.
        // Records wait for a topic whose partitions are not known yet.
        let any_pending_topic = self
            .topics
            .values()
            .any(|t| !t.pending.is_empty() && t.parts.is_empty());
        let leaderless = self
            .active_parts()
            .any(|p| p.leader.is_none() && p.has_batches());
        let aged = self
            .metadata_last
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.metadata_max_age)
            && !self.topics.is_empty();
        let due = self.metadata_needed || any_pending_topic || leaderless || aged;
        if due {
            self.rebootstrap_if_stuck(now);
        } else {
            self.metadata_wanted_since = None;
        }
        // A fatal error ends the producer: it asks the cluster for nothing more.
        let want_metadata = due
            && !self.metadata_in_flight
            && self.metadata_retry_at.is_none_or(|t| t <= now)
            && self.fatal.is_none();
        let want_pid = matches!(
            self.pid,
            PidState::Unknown { in_flight: false, retry_at } if retry_at.is_none_or(|t| t <= now)
        ) && self.fatal.is_none();
        if want_metadata || want_pid {
            match self.any_ready_connection(now) {
                Some(conn) => {
                    if want_metadata {
                        self.send_metadata(conn, now);
                    }
                    if want_pid {
                        // Only where there is room: the in-flight limit holds for every request.
                        if let Some(conn) = self.any_ready_connection(now) {
                            self.send_init_producer_id(conn, now);
                        }
                    }
                }
                None => self.ensure_some_connection(now),
            }
        }
        // Connections to the leaders we have batches for.
        let mut leaders = std::mem::take(&mut self.scratch_nodes);
        leaders.extend(
            self.active_parts()
                .filter(|p| p.has_batches())
                .filter_map(|p| p.leader),
        );
        leaders.sort_unstable();
        leaders.dedup();
        for &node in &leaders {
            if self.conns.values().any(|c| c.node == Some(node)) {
                continue;
            }
            if let Some(addr) = self.brokers.get(&node).cloned() {
                if self.reconnect.get(&addr).is_none_or(|r| r.0 <= now) {
                    self.open_connection(Some(node), addr, now);
                }
            }
        }
        leaders.clear();
        self.scratch_nodes = leaders;
    }

    /// A ready connection with room for one more request, fewest in flight first.
    fn any_ready_connection(&self, now: Instant) -> Option<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.can_send(self.config.max_in_flight.max(1), now))
            .min_by_key(|(id, c)| (c.in_flight.len(), c.node.is_none(), **id))
            .map(|(id, _)| *id)
    }

    /// KIP-1102: metadata wanted for `metadata.recovery.rebootstrap.trigger.ms`
    /// without a usable answer means the cluster view is lost: rebootstrap.
    fn rebootstrap_if_stuck(&mut self, now: Instant) {
        let since = *self.metadata_wanted_since.get_or_insert(now);
        if self.rebootstrap_trigger(since).is_some_and(|t| t <= now) {
            log::info!(
                "no metadata for {:?}: rebootstrapping",
                now.saturating_duration_since(since)
            );
            self.rebootstrap(now);
        }
    }

    /// When metadata wanted since `since` triggers a rebootstrap, if it can.
    fn rebootstrap_trigger(&self, since: Instant) -> Option<Instant> {
        (self.config.metadata_recovery_strategy == MetadataRecoveryStrategy::Rebootstrap)
            .then(|| since.checked_add(self.config.metadata_recovery_rebootstrap_trigger))
            .flatten()
    }

    /// Opens a connection for cluster requests when none is open or opening:
    /// to a known broker, else to a bootstrap address (while no broker is
    /// known, or with `metadata.recovery.strategy=rebootstrap`).
    fn ensure_some_connection(&mut self, now: Instant) {
        if self
            .conns
            .values()
            .any(|c| !c.retired && (c.state != ConnState::Ready || c.in_flight.is_empty()))
        {
            return;
        }
        // Known brokers first (round robin by backoff), else bootstrap servers.
        let known: Vec<(Option<i32>, (String, u16))> = self
            .brokers
            .iter()
            .map(|(id, a)| (Some(*id), a.clone()))
            .collect();
        let mut pick = self.first_connectable(known, now);
        let rebootstrap =
            self.config.metadata_recovery_strategy == MetadataRecoveryStrategy::Rebootstrap;
        if pick.is_none()
            && rebootstrap
            && !self.brokers.is_empty()
            && self.conns.values().all(|c| c.retired)
        {
            // KIP-899: no broker of the known cluster can be reached.
            self.rebootstrap(now);
        }
        let n = self.bootstrap.len();
        if pick.is_none() && (rebootstrap || self.brokers.is_empty()) {
            let bootstrap = (0..n)
                .map(|k| (None, self.bootstrap[(self.bootstrap_next + k) % n].clone()))
                .collect();
            pick = self.first_connectable(bootstrap, now);
        }
        if let Some((node, addr)) = pick {
            if node.is_none() {
                self.bootstrap_next = (self.bootstrap_next + 1) % n.max(1);
            }
            self.open_connection(node, addr, now);
        }
    }

    /// The first of `candidates` that may be dialed now.
    fn first_connectable(
        &self,
        candidates: Vec<(Option<i32>, (String, u16))>,
        now: Instant,
    ) -> Option<(Option<i32>, (String, u16))> {
        // Never a second connection to a broker already connected (or being
        // connected): two connections to one leader would let batches of a
        // partition overtake each other. A retired connection's address may
        // be dialed again for cluster requests, which carry no batch.
        candidates
            .into_iter()
            .filter(|(node, a)| {
                !self
                    .conns
                    .values()
                    .any(|c| (!c.retired && c.addr == *a) || (node.is_some() && c.node == *node))
            })
            .find(|(_, a)| self.reconnect.get(a).is_none_or(|r| r.0 <= now))
    }

    // ---- idempotence: epoch bumps ---------------------------------------------

    /// KIP-360: once nothing is in flight, bump the epoch locally and restart
    /// sequences at 0. Batches that may already be in the log cannot be sent
    /// again under the new epoch without risking a duplicate: they fail with
    /// `UnknownOutcome` instead.
    fn maybe_bump_epoch(&mut self, _now: Instant) {
        let PidState::NeedsBump { id, epoch } = self.pid else {
            return;
        };
        if self.in_flight_batches > 0 {
            return;
        }
        self.metrics.epoch_bumps += 1;
        if epoch == i16::MAX {
            self.pid = PidState::Unknown {
                in_flight: false,
                retry_at: None,
            };
        } else {
            self.pid = PidState::Ready {
                id,
                epoch: epoch + 1,
            };
        }
        log::info!("bumping producer epoch of {id} from {epoch}");
        for i in 0..self.parts.len() {
            self.parts[i].next_seq = 0;
            self.parts[i].acked_in_epoch = false;
            let queue = std::mem::take(&mut self.parts[i].queue);
            for mut b in queue {
                if b.maybe_persisted {
                    self.parts[i].queued_records -= b.count();
                    self.fail_batch(b, DeliveryError::UnknownOutcome);
                } else {
                    b.sequenced = false;
                    self.parts[i].queue.push_back(b);
                }
            }
        }
    }

    // ---- draining ------------------------------------------------------------

    fn drain(&mut self, now: Instant) {
        if self.fatal.is_some() {
            return;
        }
        let (pid, epoch) = match self.pid {
            PidState::Disabled => (-1, -1),
            PidState::Ready { id, epoch } => (id, epoch),
            _ => return,
        };
        let mut conns = std::mem::take(&mut self.scratch_conns);
        conns.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.node.is_some() && c.state == ConnState::Ready)
                .map(|(id, _)| *id),
        );
        for &conn in &conns {
            while let Some(c) = self.conns.get(&conn) {
                // Also bounded by what the driver has yet to write: at most
                // one request's worth waits in its buffers.
                if !c.can_send(self.config.max_in_flight, now)
                    || c.unwritten_bytes() >= self.config.max_request_size as u64
                {
                    break;
                }
                let node = c.node.expect("leader connection");
                let version = c.version(ApiKey::Produce).expect("ready");
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
                self.parts[i].close_open(self.config.compression, self.config.compression_level);
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
        let mut out = Vec::new();
        let mut size = 0usize;
        // Closing and taking batches adds no partition to the list.
        for k in 0..self.active.len() {
            let i = self.active[k];
            let p = &self.parts[i];
            if p.leader != Some(node) {
                continue;
            }
            if p.queue.is_empty() {
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
                    .close_open(self.config.compression, self.config.compression_level);
                self.after_close(i, res);
            }
            let p = &self.parts[i];
            let Some(head) = p.queue.front() else {
                continue;
            };
            if head.retry_at.is_some_and(|t| t > now) {
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
                b.closed.stamp(pid, epoch, p.next_seq, false);
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
            transactional_id: None,
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
        for b in &batches {
            self.metrics.batches_sent += 1;
            self.metrics.bytes_sent += b.closed.len() as u64;
            if b.attempts > 0 {
                self.metrics.records_retried += b.count() as u64;
            }
        }
        for b in &mut batches {
            b.attempts += 1;
        }
        if self.config.acks == Acks::None {
            // Kafka sends no answer (one that comes anyway is dropped, see
            // `on_data`): the records are complete once written.
            match self.transmit_request(conn, version, &req) {
                Some(correlation_id) => {
                    let c = self.conns.get_mut(&conn).expect("connection");
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
        let c = self.conns.get_mut(&conn).expect("connection");
        let f = c.in_flight.back_mut().expect("just queued");
        f.kind = RequestKind::Produce(batches);
    }

    // ---- outcomes ------------------------------------------------------------

    pub(crate) fn deliver(&mut self, b: Batch, base_offset: i64, log_append_time: i64) {
        let p = &mut self.parts[b.part];
        p.acked_in_epoch |= b.sequenced;
        self.buffered_bytes -= b.memory;
        self.pending_records -= b.count();
        self.metrics.records_delivered += b.count() as u64;
        self.events.push_back(Event::Delivered(Delivery {
            topic: p.topic.clone(),
            partition: p.partition,
            base_offset,
            log_append_time,
            records: b.ids,
            timestamps: b.timestamps,
        }));
        // Unshared once the driver dropped what it wrote (the usual case by
        // the time an answer arrives); a buffer still shared is left alone.
        if let Some(buf) = b.closed.into_buffer() {
            self.recycle(buf);
        }
    }

    /// Bookkeeping for a batch that leaves the wire (answered, lost, or failed).
    pub(crate) fn off_the_wire(&mut self, b: &Batch) {
        self.parts[b.part].in_flight -= 1;
        self.in_flight_batches -= 1;
    }

    pub(crate) fn fail_batch(&mut self, b: Batch, error: DeliveryError) {
        let (t, p) = (
            self.parts[b.part].topic.clone(),
            self.parts[b.part].partition,
        );
        self.complete_failed(t, p, b.ids, b.memory, error);
        if let Some(buf) = b.closed.into_buffer() {
            self.recycle(buf);
        }
    }

    /// Batches whose request got no answer: they may be in the log. Retried
    /// (same sequence under idempotence, so the broker deduplicates).
    pub(crate) fn retry_unknown(&mut self, batches: Vec<Batch>, now: Instant) {
        for mut b in batches {
            self.off_the_wire(&b);
            b.maybe_persisted = true;
            self.retry_or_fail(b, ErrorCode::RequestTimedOut, None, now);
        }
    }

    /// Puts a batch back with backoff, or fails it when retries or delivery time ran out.
    fn retry_or_fail(
        &mut self,
        mut b: Batch,
        code: ErrorCode,
        message: Option<String>,
        now: Instant,
    ) {
        let elapsed = now.saturating_duration_since(b.created);
        if elapsed >= self.config.delivery_timeout {
            let e = DeliveryError::Timeout {
                elapsed_ms: elapsed.as_millis() as u64,
                maybe_persisted: b.maybe_persisted,
            };
            self.fail_batch(b, e);
            return;
        }
        if b.attempts > self.config.retries {
            let e = DeliveryError::Broker {
                code,
                message,
                maybe_persisted: b.maybe_persisted,
            };
            self.fail_batch(b, e);
            return;
        }
        let wait = self.backoff(b.attempts);
        b.retry_at = Some(now + wait);
        let part = b.part;
        self.list_active(part);
        self.parts[part].requeue(b);
    }

    pub(crate) fn on_produce_response(
        &mut self,
        conn: ConnId,
        version: i16,
        batches: Vec<Batch>,
        resp: ProduceResponse,
        now: Instant,
    ) {
        if resp.throttle_time_ms > 0 {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.throttled_until =
                    Some(now + std::time::Duration::from_millis(resp.throttle_time_ms as u64));
            }
        }
        // A retired connection answers for the cluster view given up: its
        // hints about brokers and leaders are not taken.
        let current = self.conns.get(&conn).is_some_and(|c| !c.retired);
        for n in resp.node_endpoints.iter().filter(|_| current) {
            if let Ok(port) = u16::try_from(n.port) {
                self.brokers.insert(n.node_id, (n.host.clone(), port));
            }
        }
        for b in batches {
            self.off_the_wire(&b);
            let (topic, partition) = (
                self.parts[b.part].topic.clone(),
                self.parts[b.part].partition,
            );
            // From v13 the answer names topics by the ids the request used.
            let answer = resp
                .responses
                .iter()
                .filter(|t| {
                    if version >= FIRST_TOPIC_ID_VERSION {
                        t.topic_id == b.topic_id
                    } else {
                        *t.name == *topic
                    }
                })
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == partition);
            let Some(answer) = answer else {
                log::warn!("Produce response lacks {topic}-{partition}; retrying");
                self.retry_or_fail(b, ErrorCode::UnknownServerError, None, now);
                continue;
            };
            let code = error_of(answer.error_code);
            let (base_offset, log_append_time) = (answer.base_offset, answer.log_append_time_ms);
            let message = answer.error_message.clone();
            match code {
                None => self.deliver(b, base_offset, log_append_time),
                // The broker had this batch already: an earlier attempt was appended.
                Some(ErrorCode::DuplicateSequenceNumber) => {
                    self.deliver(b, base_offset, log_append_time)
                }
                Some(c @ (ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId))
                    if self.pid != PidState::Disabled =>
                {
                    self.on_sequence_error(b, c, now)
                }
                // Java splits such a batch and retries the parts: the
                // record over the limit then fails alone.
                Some(ErrorCode::MessageTooLarge) if b.count() > 1 => {
                    self.split_and_requeue(b, message)
                }
                Some(c) if is_fatal(c) => {
                    let maybe_persisted = b.maybe_persisted;
                    self.fail_batch(
                        b,
                        DeliveryError::Fatal {
                            code: c,
                            maybe_persisted,
                        },
                    );
                    self.set_fatal(c);
                }
                Some(c) if c.is_retriable() => {
                    // KIP-951: a v10+ answer may name the new leader; use it at
                    // once instead of waiting for a metadata round trip.
                    let new_leader = answer.current_leader.leader_id;
                    if c == ErrorCode::NotLeaderOrFollower
                        && current
                        && new_leader >= 0
                        && self.brokers.contains_key(&new_leader)
                    {
                        self.parts[b.part].leader = Some(new_leader);
                    } else if invalidates_metadata(c) {
                        self.metadata_needed = true;
                    }
                    self.retry_or_fail(b, c, message, now);
                }
                Some(c) => {
                    let maybe_persisted = b.maybe_persisted;
                    self.fail_batch(
                        b,
                        DeliveryError::Broker {
                            code: c,
                            message,
                            maybe_persisted,
                        },
                    );
                }
            }
        }
    }

    /// MESSAGE_TOO_LARGE on a batch of several records: the broker appended
    /// nothing; both halves go back, in order, ahead of later batches, and
    /// are sent again at once (a smaller batch is not a retry of the same
    /// request, so no backoff). A batch that cannot be split fails as answered.
    fn split_and_requeue(&mut self, b: Batch, message: Option<String>) {
        let part = b.part;
        match b.split_in_two(self.config.compression_level) {
            Ok((first, second)) => {
                self.metrics.records_retried += b.count() as u64;
                self.list_active(part);
                let p = &mut self.parts[part];
                p.requeue(first);
                p.requeue(second);
                if let Some(buf) = b.closed.into_buffer() {
                    self.recycle(buf);
                }
            }
            Err(why) => {
                log::warn!("MESSAGE_TOO_LARGE batch not split: {why}");
                let maybe_persisted = b.maybe_persisted;
                self.fail_batch(
                    b,
                    DeliveryError::Broker {
                        code: ErrorCode::MessageTooLarge,
                        message,
                        maybe_persisted,
                    },
                );
            }
        }
    }

    /// OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID: the broker did not
    /// append the batch. If an older batch of the partition is still
    /// unresolved, that one explains the gap: retry in order. Otherwise the
    /// broker's idea of our sequence is gone for good: bump the epoch (KIP-360).
    fn on_sequence_error(&mut self, b: Batch, code: ErrorCode, now: Instant) {
        let part = b.part;
        let older_pending = self.older_in_flight(part, b.order)
            || self.parts[part]
                .queue
                .iter()
                .any(|h| h.attempts > 0 && h.order < b.order);
        if !older_pending {
            if let PidState::Ready { id, epoch } = self.pid {
                let p = &self.parts[part];
                log::warn!(
                    "{code} on {}-{}: producer epoch bump needed",
                    p.topic,
                    p.partition
                );
                self.pid = PidState::NeedsBump { id, epoch };
            }
        }
        self.retry_or_fail(b, code, None, now);
    }

    /// True when a batch of partition `part` older than `order` is in flight.
    fn older_in_flight(&self, part: usize, order: u64) -> bool {
        self.in_flight_batches_iter()
            .any(|x| x.part == part && x.order < order)
    }

    /// Every batch on the wire: in requests awaiting answers, or acks=0
    /// requests not written yet.
    pub(crate) fn in_flight_batches_iter(&self) -> impl Iterator<Item = &Batch> {
        self.conns.values().flat_map(|c| {
            let answered = c.in_flight.iter().flat_map(|f| match &f.kind {
                RequestKind::Produce(bs) => bs.as_slice(),
                _ => &[],
            });
            answered.chain(c.unwritten.iter().flat_map(|(_, bs)| bs.iter()))
        })
    }

    // ---- close and timeouts ------------------------------------------------------

    fn maybe_finish_close(&mut self) {
        if self.closing && !self.closed && self.pending_records == 0 {
            let conns: Vec<ConnId> = self.conns.keys().copied().collect();
            for c in conns {
                self.transmits.push_back(Transmit::Close { conn: c });
            }
            self.conns.clear();
            self.closed = true;
            // No batch comes after this: give the idle buffers back.
            self.pool.shrink_to(0);
            self.events.push_back(Event::Closed);
        }
    }

    fn compute_timeout(&self, now: Instant) -> Option<Instant> {
        // Only future deadlines: what is due now was handled by this drive, or
        // waits for an input (an answer, a connection) that drives again.
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        let dt = self.config.delivery_timeout;
        for p in self.active_parts() {
            if let Some(o) = &p.open {
                at(o.created + self.config.linger);
                at(o.created + dt);
            }
            if let Some(b) = p.queue.front() {
                at(b.created + dt);
                if let Some(r) = b.retry_at {
                    at(r);
                }
            }
            // Only batches that went out carry a retry time, and they lead
            // the queue: stop at the first fresh one, not at the queue's end.
            for b in p.queue.iter().skip(1).take_while(|b| b.attempts > 0) {
                if let Some(r) = b.retry_at {
                    at(r);
                }
            }
        }
        for c in self.conns.values() {
            if let Some(f) = c.in_flight.front() {
                at(f.deadline);
            }
            if c.state == ConnState::Connecting {
                at(c.started + self.config.connect_timeout);
            }
            if let Some(t) = c.throttled_until {
                if t > now {
                    at(t);
                }
            }
        }
        for t in self.topics.values() {
            if let Some(r) = t.pending.front() {
                at(r.since + self.config.max_block);
            }
        }
        let has_work = self.pending_records > 0;
        if let Some(t) = self.metadata_retry_at {
            at(t);
        }
        if let Some(t) = self
            .metadata_wanted_since
            .and_then(|s| self.rebootstrap_trigger(s))
        {
            at(t);
        }
        if let Some(t) = self.metadata_last {
            if !self.topics.is_empty() {
                at(t + self.config.metadata_max_age);
            }
        }
        if let PidState::Unknown {
            retry_at: Some(t), ..
        } = self.pid
        {
            at(t);
        }
        if has_work {
            for (t, _) in self.reconnect.values() {
                if *t > now {
                    at(*t);
                }
            }
        }
        next
    }
}
