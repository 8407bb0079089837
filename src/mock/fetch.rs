//! Reading back: Fetch and ListOffsets answered from the partition logs.

use bytes::{Bytes, BytesMut};

use super::cluster::Partition;
use super::{MockCluster, StoredBatch};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchResponse, FetchableTopicResponse, PartitionData,
    READ_COMMITTED,
};
use crate::protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
use crate::protocol::record::{attributes, RecordBatch};

/// The longest a Fetch with no data waits before its empty answer (the
/// request's `max_wait_ms`, capped so that a mock never stalls a test).
pub(super) const MAX_FETCH_WAIT_MS: i32 = 500;

impl MockCluster {
    /// Finds a partition for a read on `node_id`: the partition, or the error
    /// to answer (unknown, not the leader, a stale or future leader epoch).
    fn readable(
        &self,
        node_id: i32,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<&Partition, ErrorCode> {
        let p = self
            .partition(topic, partition)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != node_id {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if current_leader_epoch >= 0 {
            if current_leader_epoch > p.leader_epoch {
                return Err(ErrorCode::UnknownLeaderEpoch);
            }
            if current_leader_epoch < p.leader_epoch {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
        }
        Ok(p)
    }

    /// Answers a Fetch from the partition logs: whole stored batches from the
    /// one holding `fetch_offset` on, each partition within its
    /// `partition_max_bytes` and what is left of the request's `max_bytes`
    /// (spent in request order; a later partition still gets batches that
    /// fit), except that until some partition has returned data the first
    /// batch comes whole even when larger (KIP-74), so that a consumer always
    /// moves on. That is Kafka's ReplicaManager.readFromLocalLog, but Kafka
    /// may end a partition with part of a batch; the mock never cuts one.
    /// Fetch sessions (KIP-227) are not offered: every answer is a full one
    /// with session id 0.
    pub(super) fn fetch(
        &self,
        node_id: i32,
        req: &FetchRequest,
        version: i16,
        pushed: Option<ErrorCode>,
    ) -> FetchResponse {
        let mut budget = req.max_bytes.max(0) as usize;
        let mut first = true;
        let mut responses = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for fp in &t.partitions {
                let read = match pushed {
                    Some(e) => Err((e, -1, -1)),
                    None => self.fetch_partition(
                        node_id,
                        &t.topic,
                        fp,
                        req.isolation_level == READ_COMMITTED,
                        &mut budget,
                        &mut first,
                    ),
                };
                partitions.push(match read {
                    Ok(data) => data,
                    Err((e, hw, log_start)) => {
                        let mut data = PartitionData {
                            partition_index: fp.partition,
                            error_code: e.code(),
                            high_watermark: hw,
                            last_stable_offset: hw,
                            log_start_offset: log_start,
                            aborted_transactions: None,
                            records: Some(Bytes::new()),
                            ..Default::default()
                        };
                        if e == ErrorCode::NotLeaderOrFollower && version >= 12 {
                            if let Some(p) = self.partition(&t.topic, fp.partition) {
                                data.current_leader.leader_id = p.leader;
                                data.current_leader.leader_epoch = p.leader_epoch;
                            }
                        }
                        data
                    }
                });
            }
            responses.push(FetchableTopicResponse {
                topic: t.topic.clone(),
                partitions,
                ..Default::default()
            });
        }
        FetchResponse {
            responses,
            ..Default::default()
        }
    }

    /// One partition of a Fetch; errors carry the high watermark and log
    /// start to report (-1 when the partition is unknown).
    fn fetch_partition(
        &self,
        node_id: i32,
        topic: &str,
        fp: &FetchPartition,
        read_committed: bool,
        budget: &mut usize,
        first: &mut bool,
    ) -> Result<PartitionData, (ErrorCode, i64, i64)> {
        let p = self
            .readable(node_id, topic, fp.partition, fp.current_leader_epoch)
            .map_err(|e| match self.partition(topic, fp.partition) {
                Some(p) if e != ErrorCode::NotLeaderOrFollower => (e, p.next_offset, p.log_start),
                _ => (e, -1, -1),
            })?;
        if fp.fetch_offset < p.log_start || fp.fetch_offset > p.next_offset {
            return Err((ErrorCode::OffsetOutOfRange, p.next_offset, p.log_start));
        }
        // The batch holding fetch_offset: the last one starting at or before it.
        let start = p
            .log
            .partition_point(|b| b.base_offset <= fp.fetch_offset)
            .saturating_sub(1);
        let limit = (fp.partition_max_bytes.max(0) as usize).min(*budget);
        let lso = self
            .last_stable_offset(topic, fp.partition)
            .unwrap_or(p.next_offset);
        // READ_COMMITTED: nothing at or after the last stable offset.
        let visible_end = if read_committed { lso } else { p.next_offset };
        let mut out = BytesMut::new();
        let mut end = fp.fetch_offset;
        for b in p.log.iter().skip(start) {
            if b.base_offset + b.record_count as i64 <= fp.fetch_offset {
                continue;
            }
            if b.base_offset >= visible_end {
                break;
            }
            if out.len() + b.bytes.len() > limit && !(*first && out.is_empty()) {
                break;
            }
            out.extend_from_slice(&b.bytes);
            end = b.base_offset + b.record_count as i64;
        }
        if !out.is_empty() {
            *first = false;
            *budget = budget.saturating_sub(out.len());
        }
        Ok(PartitionData {
            partition_index: fp.partition,
            error_code: 0,
            high_watermark: p.next_offset,
            last_stable_offset: lso,
            log_start_offset: p.log_start,
            // The consumer drops the records of these (read_committed only).
            aborted_transactions: read_committed
                .then(|| self.aborted_transactions(topic, fp.partition, fp.fetch_offset, end)),
            records: Some(out.freeze()),
            ..Default::default()
        })
    }

    /// Answers a ListOffsets: the log start, the log end, the offset with the
    /// largest timestamp (v7+), or the first offset whose record timestamp is
    /// at or after the one asked for (-1 when there is none). Creates no topic.
    pub(super) fn list_offsets(
        &self,
        node_id: i32,
        req: &ListOffsetsRequest,
        version: i16,
        pushed: Option<ErrorCode>,
    ) -> ListOffsetsResponse {
        let topics = req
            .topics
            .iter()
            .map(|t| ListOffsetsTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|lp| {
                        let found = match pushed {
                            Some(e) => Err(e),
                            None => self.list_partition(
                                node_id,
                                &t.name,
                                lp,
                                version,
                                req.isolation_level == READ_COMMITTED,
                            ),
                        };
                        let mut r = ListOffsetsPartitionResponse {
                            partition_index: lp.partition_index,
                            ..Default::default()
                        };
                        match found {
                            Ok((offset, timestamp, epoch)) => {
                                r.offset = offset;
                                r.timestamp = timestamp;
                                if version >= 4 {
                                    r.leader_epoch = epoch;
                                }
                            }
                            Err(e) => r.error_code = e.code(),
                        }
                        r
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ListOffsetsResponse {
            topics,
            ..Default::default()
        }
    }

    /// `(offset, timestamp, leader epoch)` for one ListOffsets partition.
    fn list_partition(
        &self,
        node_id: i32,
        topic: &str,
        lp: &ListOffsetsPartition,
        version: i16,
        read_committed: bool,
    ) -> Result<(i64, i64, i32), ErrorCode> {
        let p = self.readable(node_id, topic, lp.partition_index, lp.current_leader_epoch)?;
        let epoch = p.leader_epoch;
        match lp.timestamp {
            EARLIEST_TIMESTAMP => Ok((p.log_start, -1, epoch)),
            // READ_COMMITTED: the last stable offset.
            LATEST_TIMESTAMP if read_committed => Ok((
                self.last_stable_offset(topic, lp.partition_index)
                    .unwrap_or(p.next_offset),
                -1,
                epoch,
            )),
            LATEST_TIMESTAMP => Ok((p.next_offset, -1, epoch)),
            MAX_TIMESTAMP if version >= 7 => {
                let mut best: Option<(i64, i64)> = None;
                for (offset, ts) in record_times(&p.log)? {
                    if best.is_none_or(|(_, t)| ts > t) {
                        best = Some((offset, ts));
                    }
                }
                Ok(best.map_or((-1, -1, -1), |(o, t)| (o, t, epoch)))
            }
            MAX_TIMESTAMP => Err(ErrorCode::UnsupportedVersion),
            ts if ts < 0 => Err(ErrorCode::InvalidRequest),
            ts => {
                let hit = record_times(&p.log)?.find(|&(_, t)| t >= ts);
                Ok(hit.map_or((-1, -1, -1), |(o, t)| (o, t, epoch)))
            }
        }
    }
}

/// `(offset, timestamp)` of every record of a log, in offset order (the
/// batches' create times; LogAppendTime batches carry their max timestamp).
fn record_times(log: &[StoredBatch]) -> Result<impl Iterator<Item = (i64, i64)>, ErrorCode> {
    let mut out = Vec::new();
    for b in log {
        let batch =
            RecordBatch::decode(&mut b.bytes.clone()).map_err(|_| ErrorCode::CorruptMessage)?;
        let log_append = batch.attributes & attributes::TIMESTAMP_TYPE_LOG_APPEND != 0;
        for r in batch.records().map_err(|_| ErrorCode::CorruptMessage)? {
            let ts = if log_append {
                batch.max_timestamp
            } else {
                batch.base_timestamp + r.timestamp_delta
            };
            out.push((batch.base_offset + r.offset_delta as i64, ts));
        }
    }
    Ok(out.into_iter())
}
