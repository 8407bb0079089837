//! Transactions in the producer: the [`TxnManager`] driven by the core.
//! Its requests go out on the connections like any other (to any broker,
//! or to the coordinator's node, dialed on demand), its answers come back
//! through `dispatch`; records join the transaction as they are appended
//! and their Produce waits for it (`may_produce`); the producer id and
//! epoch of every batch are the manager's. Records that fail make the
//! transaction abortable; an abort drops what is unsent; a fatal error
//! stops the producer. Also here: `purge`, dropping unsent records.

use std::time::Instant;

use bytes::Bytes;

use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{self, ApiKey};
use crate::protocol::messages::add_offsets_to_txn::AddOffsetsToTxnResponse;
use crate::protocol::messages::add_partitions_to_txn::AddPartitionsToTxnResponse;
use crate::protocol::messages::api_versions::{ApiVersionsResponse, TRANSACTION_VERSION_FEATURE};
use crate::protocol::messages::end_txn::EndTxnResponse;
use crate::protocol::messages::find_coordinator::{FindCoordinatorResponse, KEY_TYPE_GROUP};
use crate::protocol::messages::init_producer_id::InitProducerIdResponse;
use crate::protocol::messages::txn_offset_commit::TxnOffsetCommitResponse;
use crate::protocol::ProtocolError;

use super::connection::{ConnState, RequestKind};
use super::idempotence::PidState;
use super::record::{DeliveryError, Event, RecordId, RecordIds};
use super::timers::earliest;
use super::txn::{
    GroupOffsets, TxnCall, TxnError, TxnManager, TxnProtocol, TxnRequest, TxnSend, TxnState,
    TxnTarget,
};
use super::{ConnId, Producer};

/// The last Produce version before transactions v2: from v12 a broker
/// with `transaction.version` 2 adds partitions itself, so a v1 client
/// stays below it, as Java's `ProduceRequest` builder does.
const LAST_PRODUCE_VERSION_V1: i16 = 11;
/// The last EndTxn and TxnOffsetCommit versions before transactions v2.
const LAST_END_TXN_VERSION_V1: i16 = 4;
const LAST_TXN_OFFSET_COMMIT_VERSION_V1: i16 = 4;
/// Clients send AddPartitionsToTxn v0-3 (v4+ is the brokers' batched form).
const LAST_ADD_PARTITIONS_VERSION: i16 = 3;

/// What a transaction request in flight was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnKind {
    FindCoordinator,
    InitProducerId,
    AddPartitions,
    AddOffsets,
    TxnOffsetCommit,
    EndTxn,
}

impl TxnKind {
    pub(crate) fn api_key(self) -> ApiKey {
        match self {
            TxnKind::FindCoordinator => ApiKey::FindCoordinator,
            TxnKind::InitProducerId => ApiKey::InitProducerId,
            TxnKind::AddPartitions => ApiKey::AddPartitionsToTxn,
            TxnKind::AddOffsets => ApiKey::AddOffsetsToTxn,
            TxnKind::TxnOffsetCommit => ApiKey::TxnOffsetCommit,
            TxnKind::EndTxn => ApiKey::EndTxn,
        }
    }
}

/// A transactional producer's state besides the manager's own.
#[derive(Debug)]
pub(super) struct Txn {
    pub mgr: TxnManager,
    /// The manager's next request, taken from it, waiting for a connection.
    queued: Option<TxnSend>,
    /// The connection opened for the queued request's node, until it is
    /// ready: gone before that, the node is unreachable.
    dialing: Option<ConnId>,
    /// Per partition index, the transaction it last joined (see `generation`).
    joined: Vec<u64>,
    /// Counts `begin_transaction`s, so that a new transaction needs no
    /// clearing of `joined`.
    generation: u64,
    /// The producer id and epoch batches are stamped with.
    pid: (i64, i16),
}

impl Txn {
    pub fn new(mgr: TxnManager) -> Self {
        Txn {
            mgr,
            queued: None,
            dialing: None,
            joined: Vec::new(),
            generation: 0,
            pid: (-1, -1),
        }
    }
}

/// Produce errors that fail a transactional batch (making the transaction
/// abortable) where a non-transactional producer would bump its epoch or
/// stop: the coordinator owns the epoch, and KIP-588 makes a stale epoch
/// on Produce abortable.
pub(super) fn fails_transactional_batch(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::UnknownProducerId
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::InvalidProducerIdMapping
            | ErrorCode::InvalidTxnState
    )
}

impl Producer {
    /// Runs `f` on the transaction manager for the user call `call`.
    pub(super) fn txn_command(
        &mut self,
        call: TxnCall,
        now: Instant,
        f: impl FnOnce(&mut TxnManager) -> Result<(), TxnError>,
    ) -> Result<(), TxnError> {
        self.last_now = now;
        let t = self
            .txn
            .as_mut()
            .ok_or(TxnError::NotTransactional { call })?;
        f(&mut t.mgr)?;
        if call == TxnCall::BeginTransaction {
            t.generation += 1;
        }
        if call == TxnCall::Commit {
            // Java's commit flushes first: EndTxn waits for every record.
            self.flush_below = self.next_record_id;
        }
        self.dirty = true;
        Ok(())
    }

    /// `send_offsets_to_transaction` (see [`Producer::send_offsets_to_transaction`]).
    pub(super) fn txn_send_offsets(
        &mut self,
        offsets: GroupOffsets,
        now: Instant,
    ) -> Result<(), TxnError> {
        self.txn_command(TxnCall::SendOffsets, now, |m| m.send_offsets(offsets))
    }

    /// Whether a transactional producer takes a record now.
    pub(super) fn txn_check_send(&self) -> Result<(), TxnError> {
        match &self.txn {
            Some(t) => t.mgr.check_send(),
            None => Ok(()),
        }
    }

    /// A record is appended to partition `part`: the partition joins the
    /// transaction (once per transaction).
    pub(super) fn txn_join(&mut self, part: usize) {
        let Some(t) = &mut self.txn else { return };
        if t.joined.len() <= part {
            t.joined.resize(part + 1, 0);
        }
        if t.joined[part] == t.generation {
            return;
        }
        let p = &self.parts[part];
        if t.mgr.join_partition(&p.topic, p.partition).is_ok() {
            t.joined[part] = t.generation;
        }
    }

    /// Whether partition `part`'s batches may go out now (always, without
    /// a transaction).
    pub(super) fn txn_may_produce(&self, part: usize) -> bool {
        self.txn.as_ref().is_none_or(|t| {
            let p = &self.parts[part];
            t.mgr.may_produce(&p.topic, p.partition)
        })
    }

    /// The Produce version to use of the highest the connection speaks.
    pub(super) fn txn_produce_version(&self, version: i16) -> i16 {
        match &self.txn {
            Some(t) if t.mgr.protocol() == TxnProtocol::V1 => version.min(LAST_PRODUCE_VERSION_V1),
            _ => version,
        }
    }

    /// The transactional id Produce requests carry.
    pub(super) fn txn_id(&self) -> Option<String> {
        self.txn
            .as_ref()
            .map(|t| t.mgr.transactional_id().to_owned())
    }

    /// A connection's ApiVersions answer: the cluster's finalized
    /// `transaction.version` picks the protocol (v2 only where this
    /// broker also speaks Produce v12 and EndTxn v5).
    pub(super) fn txn_on_api_versions(&mut self, conn: ConnId, resp: &ApiVersionsResponse) {
        let Some(t) = &mut self.txn else { return };
        let Some(c) = self.net.conns.get(&conn) else {
            return;
        };
        let level = resp
            .finalized_feature_level(TRANSACTION_VERSION_FEATURE)
            .unwrap_or(0);
        let v2_apis = c.version(ApiKey::Produce).is_some_and(|v| v >= 12)
            && c.version(ApiKey::EndTxn).is_some_and(|v| v >= 5);
        let level = if level >= 2 && !v2_apis { 1 } else { level };
        t.mgr.set_transaction_version(level);
    }

    /// A record of the transaction failed with `e`: the transaction can no
    /// longer commit. Failures the transaction itself caused (an abort's
    /// purge, a fatal stop) change nothing.
    pub(super) fn txn_on_failure(&mut self, e: &DeliveryError) {
        let Some(t) = &mut self.txn else { return };
        if !matches!(
            t.mgr.state(),
            TxnState::InTransaction | TxnState::CommittingTransaction
        ) {
            return;
        }
        match e {
            DeliveryError::Broker { code, .. } => t.mgr.on_record_failed(*code),
            DeliveryError::Fatal { code, .. } => t.mgr.on_fatal(*code),
            DeliveryError::Timeout { .. } | DeliveryError::BrokerUnavailable { .. } => {
                t.mgr.on_record_timeout()
            }
            DeliveryError::Purged => t.mgr.on_records_purged(),
            DeliveryError::TransactionAborted => {}
            other => t.mgr.on_record_error(other.clone()),
        }
    }

    /// The transaction's part of a turn: a fatal error stops the producer,
    /// an abort drops what is unsent, the producer id follows the
    /// manager's, the next request goes out, finished calls become events.
    pub(super) fn txn_turn(&mut self, now: Instant) {
        let Some(t) = &self.txn else { return };
        let state = t.mgr.state();
        if state == TxnState::FatalError && self.fatal.is_none() {
            let code = match t.mgr.error() {
                Some(TxnError::Fatal(code)) => *code,
                _ => ErrorCode::UnknownServerError,
            };
            self.set_fatal(code);
        }
        if matches!(
            state,
            TxnState::AbortableError | TxnState::AbortingTransaction
        ) {
            self.purge_unsent(DeliveryError::TransactionAborted);
        }
        self.txn_sync_producer_id();
        if self.fatal.is_none() {
            self.txn_send(now);
        }
        let t = self.txn.as_mut().expect("transactional");
        while let Some(o) = t.mgr.poll_outcome() {
            self.events.push_back(Event::Transaction(o));
        }
    }

    /// Stamps batches with the manager's producer id and epoch: a new one
    /// (after InitProducerId, or EndTxn v5's bump) starts sequences at 0.
    /// It changes only when no batch is in flight (EndTxn and
    /// InitProducerId wait for every record).
    fn txn_sync_producer_id(&mut self) {
        let Some(t) = &mut self.txn else { return };
        let (id, epoch) = t.mgr.producer_id_and_epoch();
        if id < 0 || (id, epoch) == t.pid {
            return;
        }
        t.pid = (id, epoch);
        self.idempotence.pid = PidState::Ready { id, epoch };
        for p in &mut self.parts {
            p.next_seq = 0;
            p.acked_in_epoch = false;
        }
    }

    /// Takes the manager's next request and sends it once its target has
    /// a ready connection (dialing the coordinator's node when needed).
    fn txn_send(&mut self, now: Instant) {
        let pending = self.pending_records > 0;
        let Some(t) = &mut self.txn else { return };
        if t.queued.is_none() {
            t.queued = t.mgr.next_request(now, pending);
        }
        let Some(target) = t.queued.as_ref().map(|s| s.target) else {
            return;
        };
        let conn = match target {
            TxnTarget::AnyBroker => match self.any_ready_connection(now) {
                Some(c) => c,
                None => {
                    self.ensure_some_connection(now);
                    return;
                }
            },
            TxnTarget::TxnCoordinator(node) | TxnTarget::GroupCoordinator(node) => {
                match self.txn_node_connection(node, now) {
                    Ok(Some(c)) => c,
                    Ok(None) => return,
                    Err(()) => {
                        log::info!("coordinator {node} unreachable: looking it up again");
                        let t = self.txn.as_mut().expect("transactional");
                        t.queued = None;
                        t.mgr.on_request_failed(now);
                        return;
                    }
                }
            }
        };
        let send = self
            .txn
            .as_mut()
            .and_then(|t| t.queued.take())
            .expect("queued");
        self.txn_transmit(conn, send.request, now);
    }

    /// A ready connection to `node` with room for a request; `Ok(None)`
    /// while one is being opened (or busy, or backing off); `Err` when the
    /// node cannot be reached (its address is unknown, or the connection
    /// opened for it failed before it was ready).
    fn txn_node_connection(&mut self, node: i32, now: Instant) -> Result<Option<ConnId>, ()> {
        let max = self.config.max_in_flight;
        let found = self
            .net
            .conns
            .iter()
            .find(|(_, c)| c.node == Some(node) && !c.retired)
            .map(|(id, c)| (*id, c.state == ConnState::Ready, c.can_send(max, now)));
        let t = self.txn.as_mut().expect("transactional");
        if let Some((id, ready, can_send)) = found {
            if ready {
                t.dialing = None;
            }
            return Ok(can_send.then_some(id));
        }
        if t.dialing.take().is_some() {
            return Err(());
        }
        let Some(addr) = self.cluster.brokers.get(&node).cloned() else {
            return Err(());
        };
        if self.net.reconnect.get(&addr).is_some_and(|r| r.0 > now) {
            return Ok(None);
        }
        let id = self.open_connection(Some(node), addr, now);
        self.txn.as_mut().expect("transactional").dialing = Some(id);
        Ok(None)
    }

    /// Encodes and sends one transaction request on `conn`, at the highest
    /// version both sides speak within the protocol's limits.
    fn txn_transmit(&mut self, conn: ConnId, request: TxnRequest, now: Instant) {
        let t = self.txn.as_ref().expect("transactional");
        let v1 = t.mgr.protocol() == TxnProtocol::V1;
        let (kind, cap) = match &request {
            TxnRequest::FindCoordinator { .. } => (TxnKind::FindCoordinator, i16::MAX),
            TxnRequest::InitProducerId(_) => (TxnKind::InitProducerId, i16::MAX),
            TxnRequest::AddPartitionsToTxn(_) => {
                (TxnKind::AddPartitions, LAST_ADD_PARTITIONS_VERSION)
            }
            TxnRequest::AddOffsetsToTxn(_) => (TxnKind::AddOffsets, i16::MAX),
            TxnRequest::TxnOffsetCommit(_) if v1 => {
                (TxnKind::TxnOffsetCommit, LAST_TXN_OFFSET_COMMIT_VERSION_V1)
            }
            TxnRequest::TxnOffsetCommit(_) => (TxnKind::TxnOffsetCommit, i16::MAX),
            TxnRequest::EndTxn(_) if v1 => (TxnKind::EndTxn, LAST_END_TXN_VERSION_V1),
            TxnRequest::EndTxn(_) => (TxnKind::EndTxn, i16::MAX),
        };
        let version = self.net.conns[&conn]
            .version(kind.api_key())
            .map(|v| v.min(cap));
        // FindCoordinator v0 knows only groups.
        let version = version.filter(|&v| {
            v >= 1
                || !matches!(&request, TxnRequest::FindCoordinator { key_type, .. } if *key_type != KEY_TYPE_GROUP)
        });
        let Some(version) = version else {
            log::error!(
                "broker on {conn:?} speaks no usable {:?} version: transactions cannot go on",
                kind.api_key()
            );
            self.set_fatal(ErrorCode::UnsupportedVersion);
            return;
        };
        let k = RequestKind::Txn(kind);
        let sent = match &request {
            TxnRequest::FindCoordinator { key_type, key } => {
                let req = TxnManager::find_coordinator_request(*key_type, key, version);
                self.send_request(conn, version, &req, k, now)
            }
            TxnRequest::InitProducerId(r) => self.send_request(conn, version, r, k, now),
            TxnRequest::AddPartitionsToTxn(r) => self.send_request(conn, version, r, k, now),
            TxnRequest::AddOffsetsToTxn(r) => self.send_request(conn, version, r, k, now),
            TxnRequest::TxnOffsetCommit(r) => self.send_request(conn, version, r, k, now),
            TxnRequest::EndTxn(r) => self.send_request(conn, version, r, k, now),
        };
        if !sent {
            self.txn_request_lost();
        }
    }

    /// A transaction request will not be answered (its connection ended,
    /// or it could not be encoded): the manager retries it.
    pub(super) fn txn_request_lost(&mut self) {
        let now = self.last_now;
        if let Some(t) = &mut self.txn {
            t.mgr.on_request_failed(now);
        }
    }

    /// The answer to a transaction request of `kind`, asked at `version`.
    pub(super) fn on_txn_response(
        &mut self,
        conn: ConnId,
        kind: TxnKind,
        version: i16,
        frame: Bytes,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let res = self.feed_txn_response(conn, kind, version, frame, now);
        if res.is_err() {
            self.txn_request_lost();
        }
        res
    }

    fn feed_txn_response(
        &mut self,
        conn: ConnId,
        kind: TxnKind,
        version: i16,
        frame: Bytes,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        fn decode<M: crate::protocol::frame::ApiMessage>(
            p: &mut Producer,
            conn: ConnId,
            frame: Bytes,
            version: i16,
        ) -> Result<M, ProtocolError> {
            let (_, r, skipped) = frame::decode_response_lenient::<M>(frame, version)?;
            p.skipped(conn, M::API_KEY, version, skipped);
            Ok(r)
        }
        match kind {
            TxnKind::FindCoordinator => {
                let r: FindCoordinatorResponse = decode(self, conn, frame, version)?;
                self.learn_coordinators(&r, version);
                self.txn_mgr().on_find_coordinator(&r, version, now);
            }
            TxnKind::InitProducerId => {
                let r: InitProducerIdResponse = decode(self, conn, frame, version)?;
                self.txn_mgr().on_init_producer_id(&r, now);
            }
            TxnKind::AddPartitions => {
                let r: AddPartitionsToTxnResponse = decode(self, conn, frame, version)?;
                self.txn_mgr().on_add_partitions(&r, now);
            }
            TxnKind::AddOffsets => {
                let r: AddOffsetsToTxnResponse = decode(self, conn, frame, version)?;
                self.txn_mgr().on_add_offsets(&r, now);
            }
            TxnKind::TxnOffsetCommit => {
                let r: TxnOffsetCommitResponse = decode(self, conn, frame, version)?;
                self.txn_mgr().on_txn_offset_commit(&r, now);
            }
            TxnKind::EndTxn => {
                let r: EndTxnResponse = decode(self, conn, frame, version)?;
                self.txn_mgr().on_end_txn(&r, version, now);
            }
        }
        Ok(())
    }

    fn txn_mgr(&mut self) -> &mut TxnManager {
        &mut self
            .txn
            .as_mut()
            .expect("a transaction request was sent")
            .mgr
    }

    /// Keeps the addresses a FindCoordinator answer names, so that the
    /// coordinator can be dialed before Metadata lists it.
    fn learn_coordinators(&mut self, r: &FindCoordinatorResponse, version: i16) {
        let found: Vec<(i32, String, i32)> = if version >= 4 {
            r.coordinators
                .iter()
                .filter(|c| c.error_code == 0)
                .map(|c| (c.node_id, c.host.clone(), c.port))
                .collect()
        } else if r.error_code == 0 {
            vec![(r.node_id, r.host.clone(), r.port)]
        } else {
            Vec::new()
        };
        for (node, host, port) in found {
            if let (true, Ok(port)) = (node >= 0, u16::try_from(port)) {
                self.cluster.brokers.entry(node).or_insert((host, port));
            }
        }
    }

    /// When the transaction next needs a turn: the end of a backoff, or of
    /// a reconnect backoff its queued request waits for.
    pub(super) fn txn_deadline(&self, now: Instant) -> Option<Instant> {
        let t = self.txn.as_ref()?;
        let reconnect = t
            .queued
            .is_some()
            .then(|| earliest(now, self.net.reconnect.values().map(|r| r.0)))
            .flatten();
        earliest(now, t.mgr.next_deadline().into_iter().chain(reconnect))
    }

    /// Fails every record not sent yet with `error`: open batches, queued
    /// batches never sent (a batch that went out keeps its place: its
    /// sequence number is spoken for, and it may be in the log), and records
    /// waiting for metadata. Returns how many.
    pub(super) fn purge_unsent(&mut self, error: DeliveryError) -> usize {
        let mut purged = 0;
        for k in 0..self.active.len() {
            let i = self.active[k];
            let queue = std::mem::take(&mut self.parts[i].queue);
            for b in queue {
                if b.sequenced || b.maybe_persisted {
                    self.parts[i].queue.push_back(b);
                } else {
                    self.parts[i].queued_records -= b.count();
                    purged += b.count();
                    self.fail_batch(b, error.clone());
                }
            }
            if let Some(o) = self.parts[i].open.take() {
                self.parts[i].queued_records -= o.ids.len();
                purged += o.ids.len();
                let (t, p) = (self.parts[i].topic.clone(), self.parts[i].partition);
                self.complete_failed(t, p, o.ids, o.memory, error.clone());
                self.memory.recycle(o.builder.into_buffer());
            }
        }
        for i in 0..self.topics.len() {
            if self.topics.at(i).pending.is_empty() {
                continue;
            }
            let name = self.topics.names()[i].clone();
            for r in self.take_pending(i).0 {
                let mut ids = RecordIds::default();
                ids.push(RecordId(r.id));
                purged += 1;
                self.complete_failed(name.clone(), -1, ids, 0, error.clone());
            }
        }
        if purged > 0 {
            self.dirty = true;
        }
        purged
    }
}
