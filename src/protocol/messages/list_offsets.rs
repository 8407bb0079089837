//! ListOffsets (key 2), versions 1-7, flexible from 6 (`ListOffsetsRequest.json`,
//! `ListOffsetsResponse.json`): the earliest or latest offset of a partition,
//! or the first offset at or after a timestamp.

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_tags, put_arr, put_str, put_tags};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// `timestamp` asking for the latest offset (the log end, or the last stable
/// offset with READ_COMMITTED).
pub const LATEST_TIMESTAMP: i64 = -1;
/// `timestamp` asking for the earliest offset (the log start).
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// `timestamp` asking for the offset of the record with the largest
/// timestamp (v7+, KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;

/// ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// The requesting broker's id, or -1 for a client.
    pub replica_id: i32,
    /// READ_UNCOMMITTED (0) or READ_COMMITTED (1) (v2+).
    pub isolation_level: i8,
    /// The topics asked about.
    pub topics: Vec<ListOffsetsTopic>,
    /// Unknown tagged fields (v6+).
    pub tagged_fields: TaggedFields,
}

impl Default for ListOffsetsRequest {
    fn default() -> Self {
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopic {
    /// The topic name.
    pub name: String,
    /// The partitions asked about.
    pub partitions: Vec<ListOffsetsPartition>,
    /// Unknown tagged fields (v6+).
    pub tagged_fields: TaggedFields,
}

/// One partition of a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    /// The partition index.
    pub partition_index: i32,
    /// The leader epoch the client knows, -1 for none (v4+, ignorable).
    pub current_leader_epoch: i32,
    /// A timestamp in Unix ms, or [`LATEST_TIMESTAMP`], [`EARLIEST_TIMESTAMP`],
    /// [`MAX_TIMESTAMP`].
    pub timestamp: i64,
    /// Unknown tagged fields (v6+).
    pub tagged_fields: TaggedFields,
}

impl Default for ListOffsetsPartition {
    fn default() -> Self {
        ListOffsetsPartition {
            partition_index: 0,
            current_leader_epoch: -1,
            timestamp: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl ApiMessage for ListOffsetsRequest {
    const API_KEY: ApiKey = ApiKey::ListOffsets;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.replica_id);
        if version >= 2 {
            buf.put_i8(self.isolation_level);
        } else {
            absent(
                &self.isolation_level,
                &0,
                "ListOffsets isolation_level before v2",
            )?;
        }
        put_arr(buf, &self.topics, flex, |buf, t| {
            put_str(buf, &t.name, flex)?;
            put_arr(buf, &t.partitions, flex, |buf, p| {
                buf.put_i32(p.partition_index);
                if version >= 4 {
                    buf.put_i32(p.current_leader_epoch);
                }
                buf.put_i64(p.timestamp);
                put_tags(buf, flex, &[], &p.tagged_fields)
            })?;
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let replica_id = get_i32(buf)?;
        let isolation_level = if version >= 2 { get_i8(buf)? } else { 0 };
        let topics = get_array(buf, flex, |buf| {
            Ok(ListOffsetsTopic {
                name: get_string(buf, flex)?,
                partitions: get_array(buf, flex, |buf| {
                    let partition_index = get_i32(buf)?;
                    let current_leader_epoch = if version >= 4 { get_i32(buf)? } else { -1 };
                    Ok(ListOffsetsPartition {
                        partition_index,
                        current_leader_epoch,
                        timestamp: get_i64(buf)?,
                        tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
                    })
                })?,
                tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
            })
        })?;
        Ok(ListOffsetsRequest {
            replica_id,
            isolation_level,
            topics,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}

impl Request for ListOffsetsRequest {
    type Response = ListOffsetsResponse;
}

/// ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsResponse {
    /// Throttle time in milliseconds (v2+, ignorable).
    pub throttle_time_ms: i32,
    /// Each topic asked about.
    pub topics: Vec<ListOffsetsTopicResponse>,
    /// Unknown tagged fields (v6+).
    pub tagged_fields: TaggedFields,
}

/// One topic of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopicResponse {
    /// The topic name.
    pub name: String,
    /// Each partition asked about.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
    /// Unknown tagged fields (v6+).
    pub tagged_fields: TaggedFields,
}

/// One partition of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// The timestamp of the returned offset, -1 for none.
    pub timestamp: i64,
    /// The offset found, -1 for none.
    pub offset: i64,
    /// The leader epoch of the offset, -1 for none (v4+).
    pub leader_epoch: i32,
    /// Unknown tagged fields (v6+).
    pub tagged_fields: TaggedFields,
}

impl Default for ListOffsetsPartitionResponse {
    fn default() -> Self {
        ListOffsetsPartitionResponse {
            partition_index: 0,
            error_code: 0,
            timestamp: -1,
            offset: -1,
            leader_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl ApiMessage for ListOffsetsResponse {
    const API_KEY: ApiKey = ApiKey::ListOffsets;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        if version >= 2 {
            buf.put_i32(self.throttle_time_ms);
        }
        put_arr(buf, &self.topics, flex, |buf, t| {
            put_str(buf, &t.name, flex)?;
            put_arr(buf, &t.partitions, flex, |buf, p| {
                buf.put_i32(p.partition_index);
                buf.put_i16(p.error_code);
                buf.put_i64(p.timestamp);
                buf.put_i64(p.offset);
                if version >= 4 {
                    buf.put_i32(p.leader_epoch);
                } else {
                    absent(&p.leader_epoch, &-1, "ListOffsets leader_epoch before v4")?;
                }
                put_tags(buf, flex, &[], &p.tagged_fields)
            })?;
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let throttle_time_ms = if version >= 2 { get_i32(buf)? } else { 0 };
        let topics = get_array(buf, flex, |buf| {
            Ok(ListOffsetsTopicResponse {
                name: get_string(buf, flex)?,
                partitions: get_array(buf, flex, |buf| {
                    let mut p = ListOffsetsPartitionResponse {
                        partition_index: get_i32(buf)?,
                        error_code: get_i16(buf)?,
                        timestamp: get_i64(buf)?,
                        offset: get_i64(buf)?,
                        ..Default::default()
                    };
                    if version >= 4 {
                        p.leader_epoch = get_i32(buf)?;
                    }
                    p.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
                    Ok(p)
                })?,
                tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
            })
        })?;
        Ok(ListOffsetsResponse {
            throttle_time_ms,
            topics,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}
