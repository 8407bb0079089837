//! InitProducerId and Produce: producer ids and epochs, appends, and Kafka
//! 4's idempotence checks per partition.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::batch::last_sequence;
use super::cluster::{BatchMeta, ProducerEntry};
use super::{MockCluster, StoredBatch, RETAINED_BATCHES};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::produce::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceData, PartitionProduceResponse, ProduceRequest,
    ProduceResponse, TopicProduceResponse, FIRST_TOPIC_ID_VERSION,
};
use crate::protocol::record::{RecordBatch, MAGIC, OFF_MAGIC};
use crate::protocol::Compression;

/// An InitProducerId answer with error `e` and no producer id.
pub(super) fn init_failed(e: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: e.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    }
}

/// Why a Produce for one partition was refused (or a duplicate).
enum Appended {
    New(i64),
    Duplicate(i64),
}

impl MockCluster {
    pub(super) fn init_producer_id(
        &mut self,
        req: &InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let fail = init_failed;
        if req.producer_id >= 0 {
            // Bump the epoch of a known id whose current epoch the client names.
            match self.producer_epochs.get(&req.producer_id) {
                Some(&epoch) if epoch == req.producer_epoch => {
                    if epoch < i16::MAX - 1 {
                        self.producer_epochs.insert(req.producer_id, epoch + 1);
                        return InitProducerIdResponse {
                            producer_id: req.producer_id,
                            producer_epoch: epoch + 1,
                            ..Default::default()
                        };
                    }
                    // Epoch exhausted: a fresh id, as Kafka does.
                }
                _ => return fail(ErrorCode::InvalidProducerEpoch),
            }
        }
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        self.producer_epochs.insert(id, 0);
        InitProducerIdResponse {
            producer_id: id,
            producer_epoch: 0,
            ..Default::default()
        }
    }

    pub(super) fn produce(
        &mut self,
        node_id: i32,
        req: &ProduceRequest,
        version: i16,
        pushed: Option<ErrorCode>,
    ) -> ProduceResponse {
        let request_error = if let Some(e) = pushed {
            Some(e)
        } else if !matches!(req.acks, -1..=1) {
            Some(ErrorCode::InvalidRequiredAcks)
        } else {
            None
        };
        let mut endpoints: Vec<NodeEndpoint> = Vec::new();
        let mut responses = Vec::with_capacity(req.topic_data.len());
        for t in &req.topic_data {
            // From v13 a topic is named by its id (KIP-516), which must be one
            // of a topic that exists: no topic is created from an id.
            let name = if version >= FIRST_TOPIC_ID_VERSION {
                self.topics
                    .iter()
                    .find(|(_, v)| v.id == t.topic_id)
                    .map(|(n, _)| n.clone())
            } else {
                Some(t.name.clone())
            };
            let mut parts = Vec::with_capacity(t.partition_data.len());
            for pd in &t.partition_data {
                let mut pr = PartitionProduceResponse {
                    index: pd.index,
                    base_offset: -1,
                    ..Default::default()
                };
                let outcome = match (request_error, &name) {
                    (Some(e), _) => Err(e),
                    (None, None) => Err(ErrorCode::UnknownTopicId),
                    (None, Some(n)) => self.produce_partition(
                        node_id,
                        n,
                        pd,
                        version,
                        req.transactional_id.as_deref(),
                    ),
                };
                match outcome {
                    Ok(Appended::New(off)) | Ok(Appended::Duplicate(off)) => {
                        pr.base_offset = off;
                        pr.log_start_offset = 0;
                    }
                    Err(e) => {
                        pr.error_code = e.code();
                        if e == ErrorCode::NotLeaderOrFollower && version >= 10 {
                            let known = name.as_deref().and_then(|n| self.partition(n, pd.index));
                            if let Some(p) = known {
                                pr.current_leader = LeaderIdAndEpoch {
                                    leader_id: p.leader,
                                    leader_epoch: p.leader_epoch,
                                    ..Default::default()
                                };
                                let b = &self.brokers[p.leader as usize];
                                if !endpoints.iter().any(|n| n.node_id == p.leader) {
                                    endpoints.push(NodeEndpoint {
                                        node_id: p.leader,
                                        host: b.host.clone(),
                                        port: b.port,
                                        rack: b.rack.clone(),
                                        ..Default::default()
                                    });
                                }
                            }
                        }
                    }
                }
                parts.push(pr);
            }
            // Named as the request named it: by id from v13, else by name.
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
                topic_id: t.topic_id,
                partition_responses: parts,
                ..Default::default()
            });
        }
        ProduceResponse {
            responses,
            throttle_time_ms: 0,
            node_endpoints: endpoints,
            ..Default::default()
        }
    }

    fn produce_partition(
        &mut self,
        node_id: i32,
        topic: &str,
        pd: &PartitionProduceData,
        version: i16,
        transactional_id: Option<&str>,
    ) -> Result<Appended, ErrorCode> {
        if !self.topics.contains_key(topic) {
            if !self.config.auto_create_topics {
                return Err(ErrorCode::UnknownTopicOrPartition);
            }
            let n = self.config.default_partitions;
            self.create_topic(topic, n)?;
        }
        let p = self
            .partition_mut(topic, pd.index)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != node_id {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        let records = match &pd.records {
            Some(r) if !r.is_empty() => r,
            _ => return Err(ErrorCode::InvalidRecord),
        };
        // Kafka (ProduceRequest.validateRecords): v3+ requires magic 2. The
        // magic is checked first: older message formats have another layout
        // (and may be shorter than a v2 batch header).
        if records.get(OFF_MAGIC).is_some_and(|&m| m as i8 != MAGIC) {
            return Err(ErrorCode::InvalidRecord);
        }
        let mut rest = records.clone();
        let h = RecordBatch::decode(&mut rest).map_err(|_| ErrorCode::CorruptMessage)?;
        // Kafka: a v3+ Produce carries exactly one batch per partition.
        if !rest.is_empty() {
            return Err(ErrorCode::InvalidRecord);
        }
        if h.record_count <= 0 || h.last_offset_delta != h.record_count - 1 {
            return Err(ErrorCode::InvalidRecord);
        }
        if h.is_control() {
            return Err(ErrorCode::InvalidRecord);
        }
        if h.compression() == Compression::Zstd && version < 7 {
            return Err(ErrorCode::UnsupportedCompressionType);
        }
        if h.producer_id >= 0 {
            if h.base_sequence < 0 || h.producer_epoch < 0 {
                return Err(ErrorCode::InvalidRecord);
            }
            if let Some(off) = check_producer(p.producers.get(&h.producer_id), &h)? {
                return Ok(Appended::Duplicate(off));
            }
        }
        // A transactional batch needs its transactional id, and the reverse.
        match (transactional_id, h.is_transactional()) {
            (Some(tid), true) => self.check_transactional_produce(
                tid,
                topic,
                pd.index,
                h.producer_id,
                h.producer_epoch,
                version,
            )?,
            (None, false) => {}
            _ => return Err(ErrorCode::InvalidRecord),
        }
        if h.is_transactional() {
            let base = self.log_end_offset(topic, pd.index).unwrap_or(0);
            self.transactional_append(topic, pd.index, h.producer_id, base);
        }
        let p = self
            .partition_mut(topic, pd.index)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        let base = p.next_offset;
        let mut bytes = BytesMut::from(&records[..]);
        bytes[0..8].copy_from_slice(&base.to_be_bytes());
        p.log.push(StoredBatch {
            base_offset: base,
            record_count: h.record_count,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            bytes: bytes.freeze(),
        });
        p.next_offset += h.record_count as i64;
        if h.producer_id >= 0 {
            let e = p.producers.entry(h.producer_id).or_insert(ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            });
            if e.epoch != h.producer_epoch {
                e.epoch = h.producer_epoch;
                e.batches.clear();
            }
            if e.batches.len() == RETAINED_BATCHES {
                e.batches.pop_front();
            }
            e.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: last_sequence(&h),
                base_offset: base,
            });
        }
        self.produced_batches += 1;
        self.produced_records += h.record_count as u64;
        Ok(Appended::New(base))
    }
}

/// Kafka 4's idempotence checks for one batch against what the partition
/// remembers of its producer: `Ok(Some(offset))` for a duplicate of a
/// retained batch, `Ok(None)` to append, or the error to answer.
fn check_producer(
    entry: Option<&ProducerEntry>,
    h: &RecordBatch,
) -> Result<Option<i64>, ErrorCode> {
    let Some(e) = entry else {
        // Unknown producer (never seen, or its state expired): Kafka 2.5+
        // (KIP-360) accepts any sequence instead of UNKNOWN_PRODUCER_ID.
        return Ok(None);
    };
    let last_seq = last_sequence(h);
    if h.producer_epoch == e.epoch {
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(Some(b.base_offset));
        }
    }
    if h.producer_epoch < e.epoch {
        return Err(ErrorCode::InvalidProducerEpoch);
    }
    if h.producer_epoch > e.epoch {
        return if h.base_sequence == 0 {
            Ok(None)
        } else {
            Err(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    let current = e.batches.back().map_or(-1, |b| b.last_seq);
    let in_sequence = h.base_sequence as i64 == current as i64 + 1
        || (h.base_sequence == 0 && current == i32::MAX);
    if in_sequence {
        Ok(None)
    } else {
        Err(ErrorCode::OutOfOrderSequenceNumber)
    }
}
