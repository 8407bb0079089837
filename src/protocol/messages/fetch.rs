//! Fetch (key 1), versions 4-12, flexible from 12 (`FetchRequest.json`,
//! `FetchResponse.json`). Topics are named (topic ids arrive in v13, which
//! this codec does not speak). Records stay raw RecordBatch bytes, zero-copy:
//! decode them with [`RecordBatch::decode_all`](crate::protocol::RecordBatch::decode_all)
//! (a broker may cut the last batch short at `max_bytes`; a reader keeps the
//! whole batches and fetches again from after the last one).

use bytes::{BufMut, Bytes, BytesMut};

use super::produce::LeaderIdAndEpoch;
use super::{
    absent, get_i32_arr, get_tags, put_arr, put_i32_arr, put_nstr, put_str, put_tags, tagged_done,
};
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// `isolation_level` READ_UNCOMMITTED: every record is visible.
pub const READ_UNCOMMITTED: i8 = 0;
/// `isolation_level` READ_COMMITTED: records up to the last stable offset.
pub const READ_COMMITTED: i8 = 1;

/// Fetch request: reads record batches from topic partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The cluster id, if known (tag 0, v12+; ignorable).
    pub cluster_id: Option<String>,
    /// The follower's broker id, or -1 for a consumer.
    pub replica_id: i32,
    /// The longest time the broker may wait for `min_bytes`, in milliseconds.
    pub max_wait_ms: i32,
    /// The fewest bytes to accumulate before answering.
    pub min_bytes: i32,
    /// The most bytes to return in all (v3+, default `i32::MAX`; KIP-74: the
    /// first batch is returned whole even when larger).
    pub max_bytes: i32,
    /// [`READ_UNCOMMITTED`] or [`READ_COMMITTED`] (v4+).
    pub isolation_level: i8,
    /// The fetch session id, 0 for none (v7+, ignorable).
    pub session_id: i32,
    /// The fetch session epoch, -1 for no session (v7+, ignorable).
    pub session_epoch: i32,
    /// The topics to fetch.
    pub topics: Vec<FetchTopic>,
    /// Partitions to remove from an incremental fetch session (v7+).
    pub forgotten_topics_data: Vec<ForgottenTopic>,
    /// The consumer's rack (v11+, ignorable).
    pub rack_id: String,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            cluster_id: None,
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            isolation_level: READ_UNCOMMITTED,
            session_id: 0,
            session_epoch: -1,
            topics: Vec::new(),
            forgotten_topics_data: Vec::new(),
            rack_id: String::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopic {
    /// The topic name.
    pub topic: String,
    /// The partitions to fetch.
    pub partitions: Vec<FetchPartition>,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

/// One partition of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    /// The partition index.
    pub partition: i32,
    /// The leader epoch the fetcher knows, -1 for none (v9+, ignorable).
    pub current_leader_epoch: i32,
    /// The offset to read from.
    pub fetch_offset: i64,
    /// The epoch of the last fetched record, -1 for none (v12+).
    pub last_fetched_epoch: i32,
    /// A follower's log start offset, -1 for a consumer (v5+, ignorable).
    pub log_start_offset: i64,
    /// The most bytes to return for this partition (KIP-74 as for `max_bytes`).
    pub partition_max_bytes: i32,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

impl Default for FetchPartition {
    fn default() -> Self {
        FetchPartition {
            partition: 0,
            current_leader_epoch: -1,
            fetch_offset: 0,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// Partitions to drop from an incremental fetch session (v7+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForgottenTopic {
    /// The topic name.
    pub topic: String,
    /// The partition indexes to forget.
    pub partitions: Vec<i32>,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for FetchRequest {
    const API_KEY: ApiKey = ApiKey::Fetch;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.replica_id);
        buf.put_i32(self.max_wait_ms);
        buf.put_i32(self.min_bytes);
        buf.put_i32(self.max_bytes);
        buf.put_i8(self.isolation_level);
        if version >= 7 {
            buf.put_i32(self.session_id);
            buf.put_i32(self.session_epoch);
        }
        put_arr(buf, &self.topics, flex, |buf, t| {
            put_str(buf, &t.topic, flex)?;
            put_arr(buf, &t.partitions, flex, |buf, p| {
                buf.put_i32(p.partition);
                if version >= 9 {
                    buf.put_i32(p.current_leader_epoch);
                }
                buf.put_i64(p.fetch_offset);
                if version >= 12 {
                    buf.put_i32(p.last_fetched_epoch);
                } else {
                    absent(
                        &p.last_fetched_epoch,
                        &-1,
                        "Fetch last_fetched_epoch before v12",
                    )?;
                }
                if version >= 5 {
                    buf.put_i64(p.log_start_offset);
                }
                buf.put_i32(p.partition_max_bytes);
                put_tags(buf, flex, &[], &p.tagged_fields)
            })?;
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?;
        if version >= 7 {
            put_arr(buf, &self.forgotten_topics_data, flex, |buf, f| {
                put_str(buf, &f.topic, flex)?;
                put_i32_arr(buf, &f.partitions, flex)?;
                put_tags(buf, flex, &[], &f.tagged_fields)
            })?;
        } else {
            absent(
                &self.forgotten_topics_data,
                &Vec::new(),
                "Fetch forgotten_topics_data before v7",
            )?;
        }
        if version >= 11 {
            put_str(buf, &self.rack_id, flex)?;
        }
        let mut known = Vec::new();
        if flex && self.cluster_id.is_some() {
            let mut b = BytesMut::new();
            put_nstr(&mut b, self.cluster_id.as_deref(), true)?;
            known.push((0, b));
        }
        put_tags(buf, flex, &known, &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = FetchRequest {
            replica_id: get_i32(buf)?,
            max_wait_ms: get_i32(buf)?,
            min_bytes: get_i32(buf)?,
            max_bytes: get_i32(buf)?,
            isolation_level: get_i8(buf)?,
            ..Default::default()
        };
        if version >= 7 {
            r.session_id = get_i32(buf)?;
            r.session_epoch = get_i32(buf)?;
        }
        r.topics = get_array(buf, flex, |buf| {
            Ok(FetchTopic {
                topic: get_string(buf, flex)?,
                partitions: get_array(buf, flex, |buf| {
                    let mut p = FetchPartition {
                        partition: get_i32(buf)?,
                        ..Default::default()
                    };
                    if version >= 9 {
                        p.current_leader_epoch = get_i32(buf)?;
                    }
                    p.fetch_offset = get_i64(buf)?;
                    if version >= 12 {
                        p.last_fetched_epoch = get_i32(buf)?;
                    }
                    if version >= 5 {
                        p.log_start_offset = get_i64(buf)?;
                    }
                    p.partition_max_bytes = get_i32(buf)?;
                    p.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
                    Ok(p)
                })?,
                tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
            })
        })?;
        if version >= 7 {
            r.forgotten_topics_data = get_array(buf, flex, |buf| {
                Ok(ForgottenTopic {
                    topic: get_string(buf, flex)?,
                    partitions: get_i32_arr(buf, flex)?,
                    tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
                })
            })?;
        }
        if version >= 11 {
            r.rack_id = get_string(buf, flex)?;
        }
        let mut cluster_id = None;
        r.tagged_fields = get_tags(buf, flex, |tag, field| {
            if tag == 0 {
                cluster_id = get_nullable_string(field, true)?;
                tagged_done(field)?;
                Ok(true)
            } else {
                Ok(false)
            }
        })?;
        r.cluster_id = cluster_id;
        Ok(r)
    }
}

impl Request for FetchRequest {
    type Response = FetchResponse;
}

/// Fetch response: record batches (or an error) per topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    /// Throttle time in milliseconds (v1+).
    pub throttle_time_ms: i32,
    /// The top-level error code (v7+, ignorable).
    pub error_code: i16,
    /// The fetch session id, 0 when not in a session (v7+).
    pub session_id: i32,
    /// The response topics.
    pub responses: Vec<FetchableTopicResponse>,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

/// One topic of a fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchableTopicResponse {
    /// The topic name.
    pub topic: String,
    /// The topic's partitions.
    pub partitions: Vec<PartitionData>,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

/// A leader epoch and its end offset (v12+, tagged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The epoch, -1 for none.
    pub epoch: i32,
    /// Its end offset, -1 for none.
    pub end_offset: i64,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for EpochEndOffset {
    fn default() -> Self {
        EpochEndOffset {
            epoch: -1,
            end_offset: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// The snapshot a follower should fetch instead (v12+, tagged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotId {
    /// The snapshot's end offset, -1 for none.
    pub end_offset: i64,
    /// The snapshot's epoch, -1 for none.
    pub epoch: i32,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for SnapshotId {
    fn default() -> Self {
        SnapshotId {
            end_offset: -1,
            epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One partition of a fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionData {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// The high watermark: the offset after the last committed record.
    pub high_watermark: i64,
    /// The last stable offset, -1 if unknown (v4+).
    pub last_stable_offset: i64,
    /// The log start offset, -1 if unknown (v5+, ignorable).
    pub log_start_offset: i64,
    /// Where the fetcher's log diverges (tag 0, v12+).
    pub diverging_epoch: EpochEndOffset,
    /// The current leader, when the broker knows a newer one (tag 1, v12+).
    pub current_leader: LeaderIdAndEpoch,
    /// The snapshot to fetch when the offset is below the log start (tag 2, v12+).
    pub snapshot_id: SnapshotId,
    /// The aborted transactions in the returned range (v4+, nullable).
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// The replica the consumer should fetch from next, -1 for the leader (v11+).
    pub preferred_read_replica: i32,
    /// The RecordBatch bytes (nullable), kept raw; the last batch may be partial.
    pub records: Option<Bytes>,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

impl Default for PartitionData {
    fn default() -> Self {
        PartitionData {
            partition_index: 0,
            error_code: 0,
            high_watermark: 0,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: EpochEndOffset::default(),
            current_leader: LeaderIdAndEpoch::default(),
            snapshot_id: SnapshotId::default(),
            aborted_transactions: Some(Vec::new()),
            preferred_read_replica: -1,
            records: None,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// An aborted transaction in a fetched range (v4+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AbortedTransaction {
    /// The producer id of the aborted transaction.
    pub producer_id: i64,
    /// The first offset of the aborted transaction.
    pub first_offset: i64,
    /// Unknown tagged fields (v12+).
    pub tagged_fields: TaggedFields,
}

fn encode_partition_data(buf: &mut BytesMut, p: &PartitionData, version: i16) -> Result<()> {
    let flex = ApiKey::Fetch.is_flexible(version);
    buf.put_i32(p.partition_index);
    buf.put_i16(p.error_code);
    buf.put_i64(p.high_watermark);
    buf.put_i64(p.last_stable_offset);
    if version >= 5 {
        buf.put_i64(p.log_start_offset);
    }
    match &p.aborted_transactions {
        None => put_array_len(buf, None, flex),
        Some(a) => put_arr(buf, a, flex, |buf, t| {
            buf.put_i64(t.producer_id);
            buf.put_i64(t.first_offset);
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?,
    }
    if version >= 11 {
        buf.put_i32(p.preferred_read_replica);
    } else {
        absent(
            &p.preferred_read_replica,
            &-1,
            "Fetch preferred_read_replica before v11",
        )?;
    }
    if let Some(r) = &p.records {
        if r.len() > i32::MAX as usize - 1 {
            return Err(ProtocolError::Invalid("records larger than i32::MAX"));
        }
    }
    put_nullable_bytes(buf, p.records.as_deref(), flex);
    let mut known = Vec::new();
    if flex {
        if p.diverging_epoch != EpochEndOffset::default() {
            let mut b = BytesMut::new();
            b.put_i32(p.diverging_epoch.epoch);
            b.put_i64(p.diverging_epoch.end_offset);
            put_tags(&mut b, true, &[], &p.diverging_epoch.tagged_fields)?;
            known.push((0, b));
        }
        if p.current_leader != LeaderIdAndEpoch::default() {
            let mut b = BytesMut::new();
            b.put_i32(p.current_leader.leader_id);
            b.put_i32(p.current_leader.leader_epoch);
            put_tags(&mut b, true, &[], &p.current_leader.tagged_fields)?;
            known.push((1, b));
        }
        if p.snapshot_id != SnapshotId::default() {
            let mut b = BytesMut::new();
            b.put_i64(p.snapshot_id.end_offset);
            b.put_i32(p.snapshot_id.epoch);
            put_tags(&mut b, true, &[], &p.snapshot_id.tagged_fields)?;
            known.push((2, b));
        }
    } else {
        absent(
            &p.diverging_epoch,
            &EpochEndOffset::default(),
            "Fetch diverging_epoch before v12",
        )?;
        absent(
            &p.current_leader,
            &LeaderIdAndEpoch::default(),
            "Fetch current_leader before v12",
        )?;
        absent(
            &p.snapshot_id,
            &SnapshotId::default(),
            "Fetch snapshot_id before v12",
        )?;
    }
    put_tags(buf, flex, &known, &p.tagged_fields)
}

fn decode_partition_data(buf: &mut Bytes, version: i16) -> Result<PartitionData> {
    let flex = ApiKey::Fetch.is_flexible(version);
    let mut p = PartitionData {
        partition_index: get_i32(buf)?,
        error_code: get_i16(buf)?,
        high_watermark: get_i64(buf)?,
        last_stable_offset: get_i64(buf)?,
        ..Default::default()
    };
    if version >= 5 {
        p.log_start_offset = get_i64(buf)?;
    }
    p.aborted_transactions = get_nullable_array(buf, flex, |buf| {
        Ok(AbortedTransaction {
            producer_id: get_i64(buf)?,
            first_offset: get_i64(buf)?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    })?;
    if version >= 11 {
        p.preferred_read_replica = get_i32(buf)?;
    }
    p.records = get_nullable_bytes(buf, flex)?;
    let mut diverging = EpochEndOffset::default();
    let mut leader = LeaderIdAndEpoch::default();
    let mut snapshot = SnapshotId::default();
    p.tagged_fields = get_tags(buf, flex, |tag, field| {
        match tag {
            0 => {
                diverging = EpochEndOffset {
                    epoch: get_i32(field)?,
                    end_offset: get_i64(field)?,
                    tagged_fields: get_unknown_tagged_fields(field)?,
                };
            }
            1 => {
                leader = LeaderIdAndEpoch {
                    leader_id: get_i32(field)?,
                    leader_epoch: get_i32(field)?,
                    tagged_fields: get_unknown_tagged_fields(field)?,
                };
            }
            2 => {
                snapshot = SnapshotId {
                    end_offset: get_i64(field)?,
                    epoch: get_i32(field)?,
                    tagged_fields: get_unknown_tagged_fields(field)?,
                };
            }
            _ => return Ok(false),
        }
        tagged_done(field)?;
        Ok(true)
    })?;
    p.diverging_epoch = diverging;
    p.current_leader = leader;
    p.snapshot_id = snapshot;
    Ok(p)
}

impl ApiMessage for FetchResponse {
    const API_KEY: ApiKey = ApiKey::Fetch;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.throttle_time_ms);
        if version >= 7 {
            buf.put_i16(self.error_code);
            buf.put_i32(self.session_id);
        } else {
            absent(&self.session_id, &0, "Fetch session_id before v7")?;
        }
        put_arr(buf, &self.responses, flex, |buf, t| {
            put_str(buf, &t.topic, flex)?;
            put_arr(buf, &t.partitions, flex, |buf, p| {
                encode_partition_data(buf, p, version)
            })?;
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = FetchResponse {
            throttle_time_ms: get_i32(buf)?,
            ..Default::default()
        };
        if version >= 7 {
            r.error_code = get_i16(buf)?;
            r.session_id = get_i32(buf)?;
        }
        r.responses = get_array(buf, flex, |buf| {
            Ok(FetchableTopicResponse {
                topic: get_string(buf, flex)?,
                partitions: get_array(buf, flex, |buf| decode_partition_data(buf, version))?,
                tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
            })
        })?;
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
