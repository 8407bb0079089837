//! The cluster view: when Metadata is asked and of whom, what its answer
//! changes, rebootstrap (KIP-899, KIP-1102), and the records that wait for
//! their topic's metadata.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::metadata::{
    MetadataRequest, MetadataRequestTopic, MetadataResponse,
};

use super::accumulator::PartitionState;
use super::config::{ConfigError, MetadataRecoveryStrategy};
use super::connection::{ConnState, End, RequestKind};
use super::idempotence::PidState;
use super::timers::{earliest, Timer};
use super::{error_of, ConnId, ConnectionError, Producer};

/// What the producer knows of the cluster, and where its Metadata requests stand.
#[derive(Debug)]
pub(super) struct Cluster {
    /// Broker id → (host, port) from metadata.
    pub brokers: BTreeMap<i32, (String, u16)>,
    /// `bootstrap.servers`, parsed.
    pub bootstrap: Vec<(String, u16)>,
    /// The bootstrap address to dial next (round robin).
    pub bootstrap_next: usize,
    /// A Metadata request is out.
    pub metadata_in_flight: bool,
    /// Metadata is asked for (a leader lost, an error saying ours is stale).
    pub metadata_needed: bool,
    /// When the last usable Metadata answer came (the clock of `metadata.max.age.ms`).
    pub metadata_last: Option<Instant>,
    /// Failed Metadata attempts in a row, for the retry backoff.
    pub metadata_attempts: u32,
    /// Since when metadata is wanted without a usable answer (the clock of
    /// `metadata.recovery.rebootstrap.trigger.ms`).
    pub metadata_wanted_since: Option<Instant>,
    /// When each leader last had batches ready and last took them
    /// (`partitioner.availability.timeout.ms`).
    pub drains: super::partitioner::NodeDrains,
}

impl Cluster {
    /// Knows only the bootstrap addresses.
    pub fn new(bootstrap: Vec<(String, u16)>) -> Self {
        Cluster {
            brokers: BTreeMap::new(),
            bootstrap,
            bootstrap_next: 0,
            metadata_in_flight: false,
            metadata_needed: false,
            metadata_last: None,
            metadata_attempts: 0,
            metadata_wanted_since: None,
            drains: Default::default(),
        }
    }
}

impl Producer {
    pub(super) fn maintain_cluster(&mut self, now: Instant) {
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
            .cluster
            .metadata_last
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.metadata_max_age)
            && !self.topics.is_empty();
        let due = self.cluster.metadata_needed || any_pending_topic || leaderless || aged;
        if due {
            self.rebootstrap_if_stuck(now);
        } else {
            self.cluster.metadata_wanted_since = None;
        }
        // A fatal error ends the producer: it asks the cluster for nothing more.
        let want_metadata = due
            && !self.cluster.metadata_in_flight
            && self
                .timers
                .get(Timer::MetadataRetry)
                .is_none_or(|t| t <= now)
            && self.fatal.is_none();
        let want_pid = matches!(
            self.idempotence.pid,
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
            if self.net.conns.values().any(|c| c.node == Some(node)) {
                continue;
            }
            if let Some(addr) = self.cluster.brokers.get(&node).cloned() {
                if self.net.reconnect.get(&addr).is_none_or(|r| r.0 <= now) {
                    self.open_connection(Some(node), addr, now);
                }
            }
        }
        leaders.clear();
        self.scratch_nodes = leaders;
    }

    /// A ready connection with room for one more request, fewest in flight first.
    pub(super) fn any_ready_connection(&self, now: Instant) -> Option<ConnId> {
        self.net
            .conns
            .iter()
            .filter(|(_, c)| c.can_send(self.config.max_in_flight.max(1), now))
            .min_by_key(|(id, c)| (c.in_flight.len(), c.node.is_none(), **id))
            .map(|(id, _)| *id)
    }

    /// KIP-1102: metadata wanted for `metadata.recovery.rebootstrap.trigger.ms`
    /// without a usable answer means the cluster view is lost: rebootstrap.
    fn rebootstrap_if_stuck(&mut self, now: Instant) {
        let since = *self.cluster.metadata_wanted_since.get_or_insert(now);
        if self.rebootstrap_trigger(since).is_some_and(|t| t <= now) {
            log::info!(
                "no metadata for {:?}: rebootstrapping",
                now.saturating_duration_since(since)
            );
            self.rebootstrap(now);
        }
    }

    /// When metadata wanted since `since` triggers a rebootstrap, if it can.
    pub(super) fn rebootstrap_trigger(&self, since: Instant) -> Option<Instant> {
        (self.config.metadata_recovery_strategy == MetadataRecoveryStrategy::Rebootstrap)
            .then(|| since.checked_add(self.config.metadata_recovery_rebootstrap_trigger))
            .flatten()
    }

    /// Opens a connection for cluster requests when none is open or opening:
    /// to a known broker, else to a bootstrap address (while no broker is
    /// known, or with `metadata.recovery.strategy=rebootstrap`).
    pub(super) fn ensure_some_connection(&mut self, now: Instant) {
        if self
            .net
            .conns
            .values()
            .any(|c| !c.retired && (c.state != ConnState::Ready || c.in_flight.is_empty()))
        {
            return;
        }
        // Known brokers first (round robin by backoff), else bootstrap servers.
        let known: Vec<(Option<i32>, (String, u16))> = self
            .cluster
            .brokers
            .iter()
            .map(|(id, a)| (Some(*id), a.clone()))
            .collect();
        let mut pick = self.first_connectable(known, now);
        let rebootstrap =
            self.config.metadata_recovery_strategy == MetadataRecoveryStrategy::Rebootstrap;
        if pick.is_none()
            && rebootstrap
            && !self.cluster.brokers.is_empty()
            && self.net.conns.values().all(|c| c.retired)
        {
            // KIP-899: no broker of the known cluster can be reached.
            self.rebootstrap(now);
        }
        let n = self.cluster.bootstrap.len();
        if pick.is_none() && (rebootstrap || self.cluster.brokers.is_empty()) {
            let bootstrap = (0..n)
                .map(|k| {
                    (
                        None,
                        self.cluster.bootstrap[(self.cluster.bootstrap_next + k) % n].clone(),
                    )
                })
                .collect();
            pick = self.first_connectable(bootstrap, now);
        }
        if let Some((node, addr)) = pick {
            if node.is_none() {
                self.cluster.bootstrap_next = (self.cluster.bootstrap_next + 1) % n.max(1);
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
                    .net
                    .conns
                    .values()
                    .any(|c| (!c.retired && c.addr == *a) || (node.is_some() && c.node == *node))
            })
            .find(|(_, a)| self.net.reconnect.get(a).is_none_or(|r| r.0 <= now))
    }

    /// Builds and sends a Metadata request for every topic in use on `conn`.
    pub(crate) fn send_metadata(&mut self, conn: ConnId, now: Instant) {
        let Some(version) = self.net.conns[&conn].version(ApiKey::Metadata) else {
            // Its ApiVersions answer had no Metadata version in our range
            // (`on_api_versions` made that fatal): nothing to ask it.
            self.set_fatal(ErrorCode::UnsupportedVersion);
            return;
        };
        // Topics idle past metadata.max.idle.ms are left out, as Java
        // forgets them; one that records wait for or batches carry is not idle.
        let idle = self.config.metadata_max_idle;
        let mut topics = Vec::with_capacity(self.topics.len());
        for i in 0..self.topics.len() {
            let t = self.topics.at(i);
            let used = t
                .last_used
                .is_some_and(|u| now.saturating_duration_since(u) < idle)
                || !t.pending.is_empty()
                || t.parts.iter().any(|&p| self.parts[p].has_batches());
            if !used {
                if !t.forgotten {
                    log::debug!(
                        "Topic {} idle for {idle:?}: its metadata is no longer asked for",
                        self.topics.names()[i]
                    );
                }
                self.topics.at_mut(i).forgotten = true;
                continue;
            }
            topics.push(MetadataRequestTopic {
                name: Some(self.topics.names()[i].to_string()),
                ..Default::default()
            });
        }
        let req = MetadataRequest {
            topics: Some(topics),
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        if self.send_request(conn, version, &req, RequestKind::Metadata, now) {
            self.cluster.metadata_in_flight = true;
            self.cluster.metadata_needed = false;
            self.metrics.metadata_requests += 1;
        }
    }

    /// A Metadata answer, as Java's `DefaultMetadataUpdater` takes it: a
    /// top-level REBOOTSTRAP_REQUIRED (KIP-1102) rebootstraps when
    /// `metadata.recovery.strategy` is `rebootstrap`; any other answer without
    /// brokers is a failed refresh, retried with backoff; the rest is used,
    /// whatever its top-level error says (Java only logs it).
    pub(super) fn on_metadata(&mut self, conn: ConnId, resp: MetadataResponse, now: Instant) {
        let top_error = error_of(resp.error_code);
        if top_error == Some(ErrorCode::RebootstrapRequired)
            && self.config.metadata_recovery_strategy == MetadataRecoveryStrategy::Rebootstrap
        {
            log::info!("Metadata on {conn:?}: rebootstrap required by the broker");
            // Not a failed refresh (Java's updater calls no `failedUpdate`
            // here): no retry backoff is added, and the next request goes
            // out once a bootstrap connection is up, paced by the reconnect
            // backoff of the connections the rebootstrap closed.
            self.rebootstrap(now);
            return;
        }
        if let Some(code) = top_error {
            log::warn!("Metadata on {conn:?} carries top-level error {code}");
        }
        if resp.brokers.is_empty() {
            // A broker starting up (or a proxy failing the request) lists
            // none: nothing here can be used.
            log::debug!("Metadata on {conn:?} lists no broker; retrying");
            self.retry_metadata_later(now);
            return;
        }
        self.cluster.metadata_last = Some(now);
        self.cluster.metadata_wanted_since = None;
        // A broker answered usably: an older connection failure is not why
        // records wait from now on.
        self.net.last_error = None;
        // The answer's broker list replaces ours, as Java's cluster view: a
        // broker that left is no longer dialed. (Connections to it stay until
        // they break or their answers are in; partitions it led get the
        // leaders this answer names.)
        self.cluster.brokers.clear();
        for b in &resp.brokers {
            if let Ok(port) = u16::try_from(b.port) {
                self.cluster
                    .brokers
                    .insert(b.node_id, (b.host.clone(), port));
            }
        }
        // A leader that is not listed any more is unknown (a partition this
        // answer does not cover would otherwise wait for a broker that left).
        for p in &mut self.parts {
            if p.leader
                .is_some_and(|l| !self.cluster.brokers.contains_key(&l))
            {
                p.leader = None;
            }
        }
        // Brokers in this client's rack, for `partitioner.rack.aware`.
        let rack = &self.config.client_rack;
        let in_rack: Vec<i32> = if self.config.partitioner_rack_aware && !rack.is_empty() {
            resp.brokers
                .iter()
                .filter(|b| b.rack.as_deref() == Some(rack.as_str()))
                .map(|b| b.node_id)
                .collect()
        } else {
            Vec::new()
        };
        let mut retry_soon = false;
        for t in resp.topics {
            let Some(name) = t.name else { continue };
            let Some(i) = self.topics.position(&name) else {
                continue;
            };
            let code = error_of(t.error_code);
            match code {
                None => {}
                Some(c) if c.is_retriable() => {
                    // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE...: wait, up to max.block.ms.
                    self.topics.at_mut(i).error = Some(c);
                    retry_soon = true;
                    continue;
                }
                Some(c) => {
                    // Authorization and the like: fail what waits for this topic.
                    self.topics.at_mut(i).error = Some(c);
                    self.fail_topic(i, DeliveryErrorKind::Broker(c));
                    continue;
                }
            }
            let ts = self.topics.at_mut(i);
            ts.error = None;
            // Zero below Metadata v10: Produce then names the topic (v12 at most).
            ts.id = t.topic_id;
            let mut partitions: Vec<_> = t.partitions;
            partitions.sort_by_key(|p| p.partition_index);
            let count = partitions
                .iter()
                .map(|p| p.partition_index + 1)
                .max()
                .unwrap_or(0)
                .max(ts.parts.len() as i32);
            while (self.topics.at(i).parts.len() as i32) < count {
                let n = self.topics.at(i).parts.len() as i32;
                self.parts
                    .push(PartitionState::new(self.topics.names()[i].clone(), i, n));
                let idx = self.parts.len() - 1;
                self.topics.at_mut(i).parts.push(idx);
            }
            let mut available = Vec::new();
            let mut local = Vec::new();
            for p in partitions {
                let idx = self.topics.at(i).parts[p.partition_index as usize];
                let leader = (p.leader_id >= 0 && self.cluster.brokers.contains_key(&p.leader_id))
                    .then_some(p.leader_id);
                if leader.is_none() {
                    retry_soon = true;
                } else {
                    available.push(p.partition_index);
                    if in_rack.contains(&p.leader_id) {
                        local.push(p.partition_index);
                    }
                }
                let part = &mut self.parts[idx];
                if part.leader != leader {
                    // Java logs metadata changes at debug, never per refresh at info.
                    log::debug!(
                        "leader of {}-{} is now {leader:?} (was {:?})",
                        part.topic,
                        part.partition,
                        part.leader
                    );
                }
                part.leader = leader;
            }
            let ts = self.topics.at_mut(i);
            ts.available = available;
            ts.in_rack = local;
            self.place_pending(i, now);
        }
        if retry_soon {
            self.retry_metadata_later(now);
        } else {
            self.cluster.metadata_attempts = 0;
            self.timers.set(Timer::MetadataRetry, None);
        }
    }

    /// Asks for metadata again after the backoff of one more failed attempt.
    pub(super) fn retry_metadata_later(&mut self, now: Instant) {
        self.cluster.metadata_needed = true;
        self.cluster.metadata_attempts += 1;
        let wait = self.backoff(self.cluster.metadata_attempts);
        self.timers.set(Timer::MetadataRetry, Some(now + wait));
    }

    /// Java's rebootstrap: the cluster view (brokers and leaders) is
    /// replaced by `bootstrap.servers`, so that the next connection, and the
    /// next Metadata request, go to a bootstrap address. Connections of the
    /// old view take no new request. Unlike Java (which aborts what is in
    /// flight on them, KAFKA-18085), those carrying batches are kept until
    /// the batches are answered: without idempotence a resend of a batch the
    /// broker already appended would be a duplicate. The others are closed.
    pub(crate) fn rebootstrap(&mut self, now: Instant) {
        log::info!("rebootstrapping with {:?}", self.cluster.bootstrap);
        self.metrics.rebootstraps += 1;
        self.cluster.brokers.clear();
        for p in &mut self.parts {
            p.leader = None;
        }
        let conns: Vec<ConnId> = self.net.conns.keys().copied().collect();
        for conn in conns {
            if self.net.conns[&conn].carries_batches() {
                self.retire(conn);
            } else {
                self.on_disconnected(conn, now, End::Close);
            }
        }
        self.cluster.metadata_needed = true;
        // As Java's: the trigger's clock starts again.
        self.cluster.metadata_wanted_since = Some(now);
    }

    /// Keeps `conn` only for the answers to the batches it carries; its other
    /// requests are redone on the new cluster view.
    fn retire(&mut self, conn: ConnId) {
        let c = self.net.conns.get_mut(&conn).expect("connection");
        c.retired = true;
        let stale: Vec<RequestKind> = c
            .in_flight
            .iter_mut()
            .filter(|f| !matches!(f.kind, RequestKind::Produce(_)))
            .map(|f| std::mem::replace(&mut f.kind, RequestKind::Stale))
            .collect();
        for kind in &stale {
            self.unmark_request(kind);
        }
    }

    /// Places records that waited for metadata or for memory, once both are there.
    pub(super) fn place_waiting(&mut self, now: Instant) {
        for i in 0..self.topics.len() {
            let t = self.topics.at(i);
            if !t.pending.is_empty() && !t.parts.is_empty() {
                self.place_pending(i, now);
            }
        }
    }

    /// Partitions and appends the records that waited for the metadata of
    /// the topic at position `i`, in order.
    pub(crate) fn place_pending(&mut self, i: usize, now: Instant) {
        // What the records held is given back at once, and their batches
        // account for themselves. Given back record by record, the batch
        // opened for the first would be sized to what the others still hold
        // left free: a record's worth, so one record a batch, and buffers of
        // a size the pool does not keep.
        let (mut pending, mut left) = self.take_pending(i);
        while let Some(r) = pending.pop_front() {
            let ts = r.record.timestamp.expect("filled at send");
            let size = r.size - super::BATCH_OVERHEAD;
            match self.choose_partition(i, &r.record) {
                Ok((p, sticky)) => {
                    let part = self.topics.at(i).parts[p as usize];
                    let appended = self.append(part, r.id, &r.record, ts, size, now);
                    if appended.is_ok() && sticky {
                        self.sticky_appended(part, size);
                    }
                    if appended.is_err() {
                        // No memory for a batch now: this record and the ones
                        // behind it wait, in order, for deliveries to free
                        // some. They hold what they held as far as memory
                        // allows: the batches just opened may have taken more
                        // than their records held (one partly filled), and
                        // buffer.memory is never exceeded.
                        pending.push_front(r);
                        let held = left.min(
                            self.config
                                .buffer_memory
                                .saturating_sub(self.memory.buffered),
                        );
                        self.memory.hold(held);
                        let t = self.topics.at_mut(i);
                        t.pending = pending;
                        t.pending_held = held;
                        return;
                    }
                    left = left.saturating_sub(r.size);
                }
                Err(partitions) => {
                    left = left.saturating_sub(r.size);
                    let mut ids = super::RecordIds::default();
                    ids.push(super::RecordId(r.id));
                    self.complete_failed(
                        self.topics.names()[i].clone(),
                        r.record.partition.unwrap_or(-1),
                        ids,
                        0,
                        super::DeliveryError::InvalidPartition {
                            partition: r.record.partition.unwrap_or(-1),
                            partitions,
                        },
                    );
                }
            }
        }
    }

    /// Fails the records still waiting for the metadata of the topic at position `i`.
    pub(crate) fn fail_topic(&mut self, i: usize, why: DeliveryErrorKind) {
        let topic = self.topics.names()[i].clone();
        for r in self.take_pending(i).0 {
            let mut ids = super::RecordIds::default();
            ids.push(super::RecordId(r.id));
            let error = match &why {
                DeliveryErrorKind::Broker(code) => super::DeliveryError::Broker {
                    code: *code,
                    message: None,
                    maybe_persisted: false,
                },
                DeliveryErrorKind::NotFound(ms) => super::DeliveryError::TopicNotFound(*ms),
                DeliveryErrorKind::Unavailable(ms, cause) => {
                    super::DeliveryError::BrokerUnavailable {
                        waited_ms: *ms,
                        cause: cause.clone(),
                    }
                }
            };
            self.complete_failed(topic.clone(), -1, ids, 0, error);
        }
    }

    /// The earliest `max.block.ms` after `now` of records waiting for their
    /// topic's metadata.
    pub(super) fn max_block_deadline(&self, now: Instant) -> Option<Instant> {
        let max_block = self.config.max_block;
        earliest(
            now,
            self.topics
                .values()
                .filter_map(|t| t.pending.front())
                .map(|r| r.since + max_block),
        )
    }
}

/// Why the records of a topic fail before they had a partition.
#[derive(Debug, Clone)]
pub(crate) enum DeliveryErrorKind {
    Broker(ErrorCode),
    NotFound(u64),
    /// No broker answered usably within `max.block.ms` (ms), for this reason.
    Unavailable(u64, ConnectionError),
}

/// Splits `host:port` (IPv6 in brackets allowed).
pub(super) fn parse_host_port(s: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::invalid("bootstrap.servers", s, "expected host:port");
    let s = s.trim();
    // A listener name in front (`SASL_SSL://host:port`) is dropped, as Java does.
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
}
