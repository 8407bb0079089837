//! The mock's transaction coordinator and group offsets: FindCoordinator,
//! InitProducerId with a transactional id (fencing the previous epoch),
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn, which
//! writes commit or abort markers into the partitions of the transaction;
//! the last stable offset and the aborted ranges that a `read_committed`
//! Fetch reports. With [`MockCluster::set_transaction_version`] 2 the
//! cluster speaks transactions v2 (KIP-890): Produce v12+ adds partitions,
//! TxnOffsetCommit v5 adds the group, EndTxn bumps the epoch.
//!
//! The coordinator of a key is broker `sum of its bytes % brokers` unless
//! moved with [`MockCluster::move_coordinator`]; every transition completes
//! at once (no PREPARE state is observable), so CONCURRENT_TRANSACTIONS
//! and COORDINATOR_LOAD_IN_PROGRESS come only from queued faults.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;

use super::batch::{decode_records, MockRecord};
use super::cluster::ProducerEntry;
use super::produce::init_failed;
use super::{MockCluster, StoredBatch};
use crate::protocol::control::{ControlType, EndTxnMarker};
use crate::protocol::error::ProtocolError;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::add_offsets_to_txn::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
};
use crate::protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult, AddPartitionsToTxnTopic, AddPartitionsToTxnTopicResult,
};
use crate::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
use crate::protocol::messages::fetch::AbortedTransaction;
use crate::protocol::messages::find_coordinator::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse, KEY_TYPE_GROUP,
    KEY_TYPE_TRANSACTION,
};
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
};
use crate::protocol::record::RecordBatch;

/// Kafka's default `transaction.max.timeout.ms` (15 minutes).
pub const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;

/// One transactional id's state at its coordinator.
#[derive(Debug, Clone)]
struct TxnEntry {
    producer_id: i64,
    epoch: i16,
    /// Partitions of the open transaction (empty: no transaction open).
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    pending_offsets: BTreeMap<(String, String, i32), i64>,
    /// The last transaction's end (`committed`, epoch it was ended with),
    /// so that a retried EndTxn is answered as the first was.
    last_end: Option<(bool, i16)>,
}

/// An aborted transaction on one partition.
#[derive(Debug, Clone, Copy)]
struct AbortedRange {
    producer_id: i64,
    first_offset: i64,
    marker_offset: i64,
}

/// The transaction an AddPartitionsToTxn names.
struct TxnOf<'a> {
    transactional_id: &'a str,
    producer_id: i64,
    epoch: i16,
}

/// The coordinator state of a [`MockCluster`].
#[derive(Debug, Clone, Default)]
pub(super) struct TxnCoordinator {
    transaction_version: i16,
    coordinator_epoch: i32,
    moved: BTreeMap<String, i32>,
    txns: BTreeMap<String, TxnEntry>,
    /// First offset of each producer's open transaction, per partition.
    open: BTreeMap<(String, i32), BTreeMap<i64, i64>>,
    /// Aborted transactions per partition.
    aborted: BTreeMap<(String, i32), Vec<AbortedRange>>,
    committed_offsets: BTreeMap<(String, String, i32), i64>,
    markers_written: u64,
}

/// One result per partition of `topics`, with the error `code_of` gives.
pub(super) fn partition_results(
    topics: &[AddPartitionsToTxnTopic],
    code_of: impl Fn(&str, i32) -> ErrorCode,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|p| AddPartitionsToTxnPartitionResult {
                    partition_index: *p,
                    partition_error_code: code_of(&t.name, *p).code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// Checks a request's producer id and epoch against the coordinator's entry.
fn check_epoch(entry: Option<&TxnEntry>, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
    let e = entry.ok_or(ErrorCode::InvalidProducerIdMapping)?;
    if e.producer_id != producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if e.epoch != epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    Ok(())
}

impl MockCluster {
    /// Sets the finalized `transaction.version` that ApiVersions reports
    /// (0 and 1: transactions v1; 2: transactions v2, KIP-890).
    pub fn set_transaction_version(&mut self, level: i16) {
        self.txn.transaction_version = level;
    }

    /// The finalized `transaction.version` in effect.
    pub fn transaction_version(&self) -> i16 {
        self.txn.transaction_version
    }

    /// Moves the coordinator of `key` (a transactional id or a group id) to
    /// `node`: requests for it elsewhere answer NOT_COORDINATOR, and the
    /// coordinator epoch goes up, as after a Kafka coordinator failover.
    pub fn move_coordinator(&mut self, key: &str, node: i32) {
        self.txn.moved.insert(key.to_owned(), node);
        self.txn.coordinator_epoch += 1;
    }

    /// The broker coordinating `key`.
    pub fn coordinator_of(&self, key: &str) -> i32 {
        if let Some(n) = self.txn.moved.get(key) {
            return *n;
        }
        let sum: u64 = key.bytes().map(u64::from).sum();
        (sum % self.brokers.len() as u64) as i32
    }

    /// The producer id and epoch the coordinator holds for a transactional id.
    pub fn transactional_producer(&self, transactional_id: &str) -> Option<(i64, i16)> {
        self.txn
            .txns
            .get(transactional_id)
            .map(|e| (e.producer_id, e.epoch))
    }

    /// The partitions of the open transaction of a transactional id.
    pub fn transaction_partitions(&self, transactional_id: &str) -> Vec<(String, i32)> {
        self.txn
            .txns
            .get(transactional_id)
            .map(|e| e.partitions.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The offset committed for a group's partition by a committed transaction.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.txn
            .committed_offsets
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .copied()
    }

    /// Commit and abort markers written since the cluster was created.
    pub fn markers_written(&self) -> u64 {
        self.txn.markers_written
    }

    /// The last stable offset of a partition: the first offset of its
    /// oldest open transaction, or the log end when none is open.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let end = self.log_end_offset(topic, partition)?;
        Some(
            self.txn
                .open
                .get(&(topic.to_owned(), partition))
                .and_then(|m| m.values().min().copied())
                .unwrap_or(end),
        )
    }

    /// The aborted transactions of a partition whose markers are at or
    /// after `from`, as a read_committed Fetch reports them.
    pub(super) fn aborted_transactions(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Vec<AbortedTransaction> {
        self.txn
            .aborted
            .get(&(topic.to_owned(), partition))
            .into_iter()
            .flatten()
            .filter(|a| a.marker_offset >= from && a.first_offset < to)
            .map(|a| AbortedTransaction {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                ..Default::default()
            })
            .collect()
    }

    /// The records a read_committed consumer sees: below the last stable
    /// offset, without control records and without records of aborted
    /// transactions (found with the aborted ranges, as a consumer does).
    pub fn committed_records(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<MockRecord>, ProtocolError> {
        let Some(p) = self.partition(topic, partition) else {
            return Ok(Vec::new());
        };
        let lso = self.last_stable_offset(topic, partition).unwrap_or(0);
        let aborted = self
            .txn
            .aborted
            .get(&(topic.to_owned(), partition))
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for b in p.log.iter().filter(|b| b.base_offset < lso) {
            let h = RecordBatch::decode(&mut b.bytes.clone())?;
            if h.is_control() {
                continue;
            }
            let in_aborted = h.is_transactional()
                && aborted.iter().any(|a| {
                    a.producer_id == h.producer_id
                        && b.base_offset >= a.first_offset
                        && b.base_offset < a.marker_offset
                });
            if !in_aborted {
                out.extend(decode_records(&b.bytes)?);
            }
        }
        Ok(out)
    }

    fn not_coordinator(&self, node_id: i32, key: &str) -> bool {
        self.coordinator_of(key) != node_id
    }

    /// NOT_COORDINATOR unless `node_id` coordinates `key`, then the
    /// transactional id's producer id and epoch.
    fn check_txn(
        &self,
        node_id: i32,
        key: &str,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), ErrorCode> {
        if self.not_coordinator(node_id, key) {
            return Err(ErrorCode::NotCoordinator);
        }
        check_epoch(self.txn.txns.get(transactional_id), producer_id, epoch)
    }

    pub(super) fn find_coordinator(
        &self,
        req: &FindCoordinatorRequest,
        version: i16,
    ) -> FindCoordinatorResponse {
        let keys = if version >= 4 {
            req.coordinator_keys.clone()
        } else {
            vec![req.key.clone()]
        };
        let coordinators: Vec<Coordinator> = keys
            .iter()
            .map(|key| {
                let mut c = Coordinator {
                    key: key.clone(),
                    node_id: -1,
                    port: -1,
                    ..Default::default()
                };
                if req.key_type != KEY_TYPE_GROUP && req.key_type != KEY_TYPE_TRANSACTION {
                    c.error_code = ErrorCode::InvalidRequest.code();
                    return c;
                }
                let node = self.coordinator_of(key);
                match self.broker(node) {
                    Some(b) if !b.down => {
                        c.node_id = node;
                        c.host = b.host.clone();
                        c.port = b.port;
                    }
                    _ => c.error_code = ErrorCode::CoordinatorNotAvailable.code(),
                }
                c
            })
            .collect();
        if version >= 4 {
            return FindCoordinatorResponse {
                coordinators,
                ..Default::default()
            };
        }
        let c = coordinators.into_iter().next().unwrap_or_default();
        FindCoordinatorResponse {
            error_code: c.error_code,
            node_id: c.node_id,
            host: c.host,
            port: c.port,
            ..Default::default()
        }
    }

    /// InitProducerId with a transactional id: a new producer id, or the
    /// next epoch of the id's producer, aborting its open transaction;
    /// KIP-360: a request naming an older id or epoch is fenced.
    pub(super) fn init_transactional_producer(
        &mut self,
        node_id: i32,
        transactional_id: &str,
        req: &InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let fail = init_failed;
        if self.not_coordinator(node_id, transactional_id) {
            return fail(ErrorCode::NotCoordinator);
        }
        if req.transaction_timeout_ms <= 0
            || req.transaction_timeout_ms > MAX_TRANSACTION_TIMEOUT_MS
        {
            return fail(ErrorCode::InvalidTransactionTimeout);
        }
        let existing = self.txn.txns.get(transactional_id).cloned();
        let Some(e) = existing else {
            let id = self.next_producer_id;
            self.next_producer_id += 1;
            self.txn.txns.insert(
                transactional_id.to_owned(),
                TxnEntry {
                    producer_id: id,
                    epoch: 0,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    pending_offsets: BTreeMap::new(),
                    last_end: None,
                },
            );
            return InitProducerIdResponse {
                producer_id: id,
                producer_epoch: 0,
                ..Default::default()
            };
        };
        if req.producer_id >= 0
            && (req.producer_id != e.producer_id || req.producer_epoch != e.epoch)
        {
            return fail(ErrorCode::ProducerFenced);
        }
        let (mut id, mut epoch) = (e.producer_id, e.epoch.saturating_add(1));
        if epoch >= i16::MAX - 1 {
            id = self.next_producer_id;
            self.next_producer_id += 1;
            epoch = 0;
        }
        if !e.partitions.is_empty() {
            // The previous instance's transaction is aborted with the new
            // epoch, which fences that instance on every partition.
            self.write_markers(&e.partitions, e.producer_id, epoch, ControlType::Abort);
        }
        let entry = self.txn.txns.get_mut(transactional_id).expect("present");
        entry.producer_id = id;
        entry.epoch = epoch;
        entry.partitions.clear();
        entry.groups.clear();
        entry.pending_offsets.clear();
        entry.last_end = None;
        InitProducerIdResponse {
            producer_id: id,
            producer_epoch: epoch,
            ..Default::default()
        }
    }

    fn add_partitions(
        &mut self,
        node_id: i32,
        txn: TxnOf<'_>,
        topics: &[AddPartitionsToTxnTopic],
        verify_only: bool,
        version: i16,
    ) -> Vec<AddPartitionsToTxnTopicResult> {
        let transactional_id = txn.transactional_id;
        let check = self
            .check_txn(
                node_id,
                transactional_id,
                transactional_id,
                txn.producer_id,
                txn.epoch,
            )
            .map_err(|e| {
                // PRODUCER_FENCED is answered from v2 (KIP-588).
                if e == ErrorCode::ProducerFenced && version < 2 {
                    ErrorCode::InvalidProducerEpoch
                } else {
                    e
                }
            });
        let unknown: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), *p)))
            .filter(|(t, p)| self.partition(t, *p).is_none())
            .collect();
        let code_of = |t: &str, p: i32| -> ErrorCode {
            match check {
                Err(e) => e,
                Ok(()) if unknown.is_empty() => ErrorCode::None,
                Ok(()) if unknown.iter().any(|(ut, up)| ut == t && *up == p) => {
                    ErrorCode::UnknownTopicOrPartition
                }
                Ok(()) => ErrorCode::OperationNotAttempted,
            }
        };
        let results = partition_results(topics, code_of);
        if check.is_ok() && unknown.is_empty() && !verify_only {
            let entry = self.txn.txns.get_mut(transactional_id).expect("checked");
            for t in topics {
                for p in &t.partitions {
                    entry.partitions.insert((t.name.clone(), *p));
                }
            }
        }
        results
    }

    pub(super) fn add_partitions_to_txn(
        &mut self,
        node_id: i32,
        req: &AddPartitionsToTxnRequest,
        version: i16,
    ) -> AddPartitionsToTxnResponse {
        if version >= 4 {
            let results_by_transaction = req
                .transactions
                .iter()
                .map(|t| AddPartitionsToTxnResult {
                    transactional_id: t.transactional_id.clone(),
                    topic_results: self.add_partitions(
                        node_id,
                        TxnOf {
                            transactional_id: &t.transactional_id,
                            producer_id: t.producer_id,
                            epoch: t.producer_epoch,
                        },
                        &t.topics,
                        t.verify_only,
                        version,
                    ),
                    ..Default::default()
                })
                .collect();
            return AddPartitionsToTxnResponse {
                results_by_transaction,
                ..Default::default()
            };
        }
        AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: self.add_partitions(
                node_id,
                TxnOf {
                    transactional_id: &req.v3_and_below_transactional_id,
                    producer_id: req.v3_and_below_producer_id,
                    epoch: req.v3_and_below_producer_epoch,
                },
                &req.v3_and_below_topics,
                false,
                version,
            ),
            ..Default::default()
        }
    }

    pub(super) fn add_offsets_to_txn(
        &mut self,
        node_id: i32,
        req: &AddOffsetsToTxnRequest,
    ) -> AddOffsetsToTxnResponse {
        let tid = &req.transactional_id;
        let check = self.check_txn(node_id, tid, tid, req.producer_id, req.producer_epoch);
        if check.is_ok() {
            let e = self
                .txn
                .txns
                .get_mut(&req.transactional_id)
                .expect("checked");
            e.groups.insert(req.group_id.clone());
        }
        AddOffsetsToTxnResponse {
            error_code: check.err().map_or(0, ErrorCode::code),
            ..Default::default()
        }
    }

    /// TxnOffsetCommit at the group's coordinator: the offsets wait for the
    /// transaction's commit. Before v5 (or under transactions v1) the group
    /// must have been added by AddOffsetsToTxn; v5 under v2 adds it.
    pub(super) fn txn_offset_commit(
        &mut self,
        node_id: i32,
        req: &TxnOffsetCommitRequest,
        version: i16,
    ) -> TxnOffsetCommitResponse {
        let implicit = version >= 5 && self.txn.transaction_version >= 2;
        let tid = &req.transactional_id;
        let check = self
            .check_txn(
                node_id,
                &req.group_id,
                tid,
                req.producer_id,
                req.producer_epoch,
            )
            .and_then(|()| {
                let e = &self.txn.txns[tid];
                if implicit || e.groups.contains(&req.group_id) {
                    Ok(())
                } else {
                    Err(ErrorCode::InvalidTxnState)
                }
            });
        if check.is_ok() {
            let e = self
                .txn
                .txns
                .get_mut(&req.transactional_id)
                .expect("checked");
            e.groups.insert(req.group_id.clone());
            for t in &req.topics {
                for p in &t.partitions {
                    e.pending_offsets.insert(
                        (req.group_id.clone(), t.name.clone(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        let code = check.err().map_or(0, ErrorCode::code);
        TxnOffsetCommitResponse {
            topics: req
                .topics
                .iter()
                .map(|t| TxnOffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// EndTxn: markers into every partition of the transaction, offsets
    /// committed on commit; under transactions v2 the epoch is bumped and
    /// returned (v5+).
    pub(super) fn end_txn(
        &mut self,
        node_id: i32,
        req: &EndTxnRequest,
        version: i16,
    ) -> EndTxnResponse {
        let fail = |e: ErrorCode| EndTxnResponse {
            error_code: e.code(),
            ..Default::default()
        };
        if self.not_coordinator(node_id, &req.transactional_id) {
            return fail(ErrorCode::NotCoordinator);
        }
        let v2 = self.txn.transaction_version >= 2 && version >= 5;
        let Some(e) = self.txn.txns.get(&req.transactional_id).cloned() else {
            return fail(ErrorCode::InvalidProducerIdMapping);
        };
        if e.producer_id != req.producer_id {
            return fail(ErrorCode::InvalidProducerIdMapping);
        }
        // A retry of the end just done (v2: sent with the epoch before the bump).
        let retried_epoch = if v2 { e.epoch - 1 } else { e.epoch };
        if e.partitions.is_empty() && e.groups.is_empty() {
            if let Some((committed, epoch)) = e.last_end {
                if epoch == req.producer_epoch && req.producer_epoch == retried_epoch {
                    return if committed == req.committed {
                        EndTxnResponse {
                            producer_id: if version >= 5 { e.producer_id } else { -1 },
                            producer_epoch: if version >= 5 { e.epoch } else { -1 },
                            ..Default::default()
                        }
                    } else {
                        fail(ErrorCode::InvalidTxnState)
                    };
                }
            }
        }
        if e.epoch != req.producer_epoch {
            return fail(if version >= 2 {
                ErrorCode::ProducerFenced
            } else {
                ErrorCode::InvalidProducerEpoch
            });
        }
        if e.partitions.is_empty() && e.groups.is_empty() && !v2 {
            return fail(ErrorCode::InvalidTxnState);
        }
        let control = if req.committed {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        let mut epoch = e.epoch;
        let mut id = e.producer_id;
        if v2 {
            // KIP-890: the markers carry the bumped epoch, which fences
            // anything still in flight from the ended transaction.
            epoch += 1;
            if epoch >= i16::MAX - 1 {
                id = self.next_producer_id;
                self.next_producer_id += 1;
                epoch = 0;
            }
        }
        self.write_markers(
            &e.partitions,
            e.producer_id,
            if v2 { e.epoch + 1 } else { e.epoch },
            control,
        );
        if req.committed {
            for (k, off) in &e.pending_offsets {
                self.txn.committed_offsets.insert(k.clone(), *off);
            }
        }
        let entry = self
            .txn
            .txns
            .get_mut(&req.transactional_id)
            .expect("present");
        entry.producer_id = id;
        entry.epoch = epoch;
        entry.partitions.clear();
        entry.groups.clear();
        entry.pending_offsets.clear();
        entry.last_end = Some((req.committed, req.producer_epoch));
        EndTxnResponse {
            producer_id: if version >= 5 { id } else { -1 },
            producer_epoch: if version >= 5 { epoch } else { -1 },
            ..Default::default()
        }
    }

    /// Appends a marker to each partition and closes the producer's open
    /// transaction there (an abort records the aborted range).
    fn write_markers(
        &mut self,
        partitions: &BTreeSet<(String, i32)>,
        producer_id: i64,
        epoch: i16,
        control: ControlType,
    ) {
        let marker = EndTxnMarker {
            control_type: control,
            coordinator_epoch: self.txn.coordinator_epoch,
        };
        for (topic, index) in partitions {
            let Some(p) = self.partition_mut(topic, *index) else {
                continue;
            };
            // The mock has no wall clock: the marker takes the time of the
            // partition's last batch.
            let ts = p
                .log
                .last()
                .and_then(|b| RecordBatch::decode(&mut b.bytes.clone()).ok())
                .map_or(0, |b| b.max_timestamp);
            let Ok(bytes) = marker.encode_batch(producer_id, epoch, ts) else {
                continue;
            };
            let base = p.next_offset;
            let mut bytes = BytesMut::from(&bytes[..]);
            bytes[0..8].copy_from_slice(&base.to_be_bytes());
            p.log.push(StoredBatch {
                base_offset: base,
                record_count: 1,
                producer_id,
                producer_epoch: epoch,
                base_sequence: -1,
                bytes: bytes.freeze(),
            });
            p.next_offset += 1;
            let entry = p.producers.entry(producer_id).or_insert(ProducerEntry {
                epoch,
                batches: Default::default(),
            });
            if entry.epoch < epoch {
                entry.epoch = epoch;
                entry.batches.clear();
            }
            let key = (topic.clone(), *index);
            let first = self
                .txn
                .open
                .get_mut(&key)
                .and_then(|m| m.remove(&producer_id));
            if control == ControlType::Abort {
                if let Some(first) = first {
                    self.txn.aborted.entry(key).or_default().push(AbortedRange {
                        producer_id,
                        first_offset: first,
                        marker_offset: base,
                    });
                }
            }
            self.txn.markers_written += 1;
        }
    }

    /// Checks a transactional Produce to one partition before its append:
    /// the transactional id's producer and epoch, and that the partition is
    /// in the transaction (under v2 with Produce v12+ it joins it).
    pub(super) fn check_transactional_produce(
        &mut self,
        transactional_id: &str,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        version: i16,
    ) -> Result<(), ErrorCode> {
        let Some(e) = self.txn.txns.get_mut(transactional_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        if e.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if epoch < e.epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        if epoch > e.epoch {
            return Err(ErrorCode::InvalidTxnState);
        }
        let key = (topic.to_owned(), partition);
        if !e.partitions.contains(&key) {
            if self.txn.transaction_version >= 2 && version >= 12 {
                e.partitions.insert(key);
            } else {
                return Err(ErrorCode::InvalidTxnState);
            }
        }
        Ok(())
    }

    /// Records the first offset of a producer's open transaction on a partition.
    pub(super) fn transactional_append(
        &mut self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        base_offset: i64,
    ) {
        self.txn
            .open
            .entry((topic.to_owned(), partition))
            .or_default()
            .entry(producer_id)
            .or_insert(base_offset);
    }
}
