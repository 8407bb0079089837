//! TxnOffsetCommit (key 28), versions 0-5, flexible from 3
//! (`TxnOffsetCommitRequest.json`, `TxnOffsetCommitResponse.json`): commits
//! a consumer group's offsets as part of a transaction. Under transactions
//! v2 (KIP-890), v5 also does AddOffsetsToTxn's work.

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_tags, put_arr, put_nstr, put_str, put_tags};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// TxnOffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The consumer group id.
    pub group_id: String,
    /// The producer id of the transaction.
    pub producer_id: i64,
    /// The producer epoch of the transaction.
    pub producer_epoch: i16,
    /// The consumer's generation (classic groups) or member epoch (v3+, -1).
    pub generation_id_or_member_epoch: i32,
    /// The member id assigned by the group coordinator (v3+, "").
    pub member_id: String,
    /// The static member's instance id, or null (v3+).
    pub group_instance_id: Option<String>,
    /// The offsets to commit, per topic.
    pub topics: Vec<TxnOffsetCommitRequestTopic>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl Default for TxnOffsetCommitRequest {
    fn default() -> Self {
        TxnOffsetCommitRequest {
            transactional_id: String::new(),
            group_id: String::new(),
            producer_id: 0,
            producer_epoch: 0,
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A topic's offsets to commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitRequestTopic {
    /// The topic name.
    pub name: String,
    /// The partitions' offsets.
    pub partitions: Vec<TxnOffsetCommitRequestPartition>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequestPartition {
    /// The partition index.
    pub partition_index: i32,
    /// The offset to commit (the next record to consume).
    pub committed_offset: i64,
    /// The leader epoch of the last consumed record, or -1 (v2+).
    pub committed_leader_epoch: i32,
    /// Metadata kept with the offset, or null.
    pub committed_metadata: Option<String>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl Default for TxnOffsetCommitRequestPartition {
    fn default() -> Self {
        TxnOffsetCommitRequestPartition {
            partition_index: 0,
            committed_offset: 0,
            committed_leader_epoch: -1,
            committed_metadata: None,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl ApiMessage for TxnOffsetCommitRequest {
    const API_KEY: ApiKey = ApiKey::TxnOffsetCommit;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_str(buf, &self.transactional_id, flex)?;
        put_str(buf, &self.group_id, flex)?;
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        if version >= 3 {
            buf.put_i32(self.generation_id_or_member_epoch);
            put_str(buf, &self.member_id, flex)?;
            put_nstr(buf, self.group_instance_id.as_deref(), flex)?;
        } else {
            let group = (
                self.generation_id_or_member_epoch,
                self.member_id.as_str(),
                self.group_instance_id.as_deref(),
            );
            absent(
                &group,
                &(-1, "", None),
                "TxnOffsetCommit group member before v3",
            )?;
        }
        put_arr(buf, &self.topics, flex, |b, t| {
            put_str(b, &t.name, flex)?;
            put_arr(b, &t.partitions, flex, |b, p| {
                b.put_i32(p.partition_index);
                b.put_i64(p.committed_offset);
                // Ignorable before v2: left out.
                if version >= 2 {
                    b.put_i32(p.committed_leader_epoch);
                }
                put_nstr(b, p.committed_metadata.as_deref(), flex)?;
                put_tags(b, flex, &[], &p.tagged_fields)
            })?;
            put_tags(b, flex, &[], &t.tagged_fields)
        })?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = TxnOffsetCommitRequest {
            transactional_id: get_string(buf, flex)?,
            group_id: get_string(buf, flex)?,
            producer_id: get_i64(buf)?,
            producer_epoch: get_i16(buf)?,
            ..Default::default()
        };
        if version >= 3 {
            r.generation_id_or_member_epoch = get_i32(buf)?;
            r.member_id = get_string(buf, flex)?;
            r.group_instance_id = get_nullable_string(buf, flex)?;
        }
        r.topics = get_array(buf, flex, |b| {
            Ok(TxnOffsetCommitRequestTopic {
                name: get_string(b, flex)?,
                partitions: get_array(b, flex, |b| {
                    let mut p = TxnOffsetCommitRequestPartition {
                        partition_index: get_i32(b)?,
                        committed_offset: get_i64(b)?,
                        ..Default::default()
                    };
                    if version >= 2 {
                        p.committed_leader_epoch = get_i32(b)?;
                    }
                    p.committed_metadata = get_nullable_string(b, flex)?;
                    p.tagged_fields = get_tags(b, flex, |_, _| Ok(false))?;
                    Ok(p)
                })?,
                tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
            })
        })?;
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}

impl Request for TxnOffsetCommitRequest {
    type Response = TxnOffsetCommitResponse;
}

/// TxnOffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitResponse {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// Results per topic.
    pub topics: Vec<TxnOffsetCommitResponseTopic>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// The results of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitResponseTopic {
    /// The topic name.
    pub name: String,
    /// Results per partition.
    pub partitions: Vec<TxnOffsetCommitResponsePartition>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// The result of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitResponsePartition {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for TxnOffsetCommitResponse {
    const API_KEY: ApiKey = ApiKey::TxnOffsetCommit;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.throttle_time_ms);
        put_arr(buf, &self.topics, flex, |b, t| {
            put_str(b, &t.name, flex)?;
            put_arr(b, &t.partitions, flex, |b, p| {
                b.put_i32(p.partition_index);
                b.put_i16(p.error_code);
                put_tags(b, flex, &[], &p.tagged_fields)
            })?;
            put_tags(b, flex, &[], &t.tagged_fields)
        })?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        Ok(TxnOffsetCommitResponse {
            throttle_time_ms: get_i32(buf)?,
            topics: get_array(buf, flex, |b| {
                Ok(TxnOffsetCommitResponseTopic {
                    name: get_string(b, flex)?,
                    partitions: get_array(b, flex, |b| {
                        Ok(TxnOffsetCommitResponsePartition {
                            partition_index: get_i32(b)?,
                            error_code: get_i16(b)?,
                            tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
                        })
                    })?,
                    tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
                })
            })?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}
