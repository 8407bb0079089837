//! Produce (key 0), versions 3-13, flexible from 9 (`ProduceRequest.json`,
//! `ProduceResponse.json`). Records stay raw RecordBatch bytes, zero-copy.
//!
//! v12 has v11's layout (KIP-890 only changes what the broker does with
//! transactional batches). v13 (KIP-516) names each topic by its `TopicId`
//! instead of its `Name`, in the request and in the response: `Name` is
//! versions 0-12 and `TopicId` 13+, both ignorable, so the field a version
//! does not carry is left out without error.

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_tags, put_arr, put_nstr, put_str, put_tags, tagged_done};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// Produce request: record batches for topic partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRequest {
    /// The transactional id, or null if the producer is not transactional (v3+).
    pub transactional_id: Option<String>,
    /// Required acks: 0 none, 1 leader only, -1 all in-sync replicas.
    pub acks: i16,
    /// How long the broker may wait for the acks, in milliseconds.
    pub timeout_ms: i32,
    /// Each topic to produce to.
    pub topic_data: Vec<TopicProduceData>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

/// The data of one topic in a produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicProduceData {
    /// The topic name (v3-12; empty when decoded from v13+).
    pub name: String,
    /// The topic id (v13+; all zero when decoded from an earlier version).
    pub topic_id: [u8; 16],
    /// Each partition to produce to.
    pub partition_data: Vec<PartitionProduceData>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

/// The data of one partition in a produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionProduceData {
    /// The partition index.
    pub index: i32,
    /// The RecordBatch bytes (nullable), kept raw.
    pub records: Option<Bytes>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl ProduceRequest {
    /// Encodes the body, writing each records field's length prefix and then
    /// handing the records to `records` (to copy into `buf`, or to leave out).
    fn encode_with(
        &self,
        buf: &mut BytesMut,
        version: i16,
        mut records: impl FnMut(&mut BytesMut, &Bytes),
    ) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_nstr(buf, self.transactional_id.as_deref(), flex)?;
        buf.put_i16(self.acks);
        buf.put_i32(self.timeout_ms);
        put_arr(buf, &self.topic_data, flex, |buf, t| {
            put_topic_key(buf, &t.name, &t.topic_id, version)?;
            put_arr(buf, &t.partition_data, flex, |buf, p| {
                buf.put_i32(p.index);
                if let Some(r) = &p.records {
                    if r.len() > i32::MAX as usize - 1 {
                        return Err(crate::protocol::ProtocolError::Invalid(
                            "records larger than i32::MAX",
                        ));
                    }
                }
                put_nullable_bytes_len(buf, p.records.as_ref().map(Bytes::len), flex);
                if let Some(r) = &p.records {
                    records(buf, r);
                }
                put_tags(buf, flex, &[], &p.tagged_fields)
            })?;
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }
}

/// First version that names topics by id (KIP-516) instead of by name.
pub const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// Writes what identifies a topic entry at `version`: its name up to v12, its
/// id from v13. Both fields are ignorable, so the other one is left out
/// whatever it holds (as Kafka's generated code does).
fn put_topic_key(buf: &mut BytesMut, name: &str, id: &[u8; 16], version: i16) -> Result<()> {
    if version >= FIRST_TOPIC_ID_VERSION {
        buf.put_slice(id);
        Ok(())
    } else {
        put_str(buf, name, ApiKey::Produce.is_flexible(version))
    }
}

/// Reads what identifies a topic entry at `version`: `(name, id)`, the field
/// the version does not carry at its default (empty name, zero id).
fn get_topic_key(buf: &mut Bytes, version: i16) -> Result<(String, [u8; 16])> {
    if version >= FIRST_TOPIC_ID_VERSION {
        Ok((String::new(), get_uuid(buf)?))
    } else {
        Ok((
            get_string(buf, ApiKey::Produce.is_flexible(version))?,
            [0; 16],
        ))
    }
}

impl ApiMessage for ProduceRequest {
    const API_KEY: ApiKey = ApiKey::Produce;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        self.encode_with(buf, version, |buf, r| buf.put_slice(r))
    }

    /// Leaves every partition's records out: batches go on the wire as the
    /// producer's own buffers.
    fn encode_split(
        &self,
        buf: &mut BytesMut,
        version: i16,
        holes: &mut Vec<(usize, Bytes)>,
    ) -> Result<()> {
        self.encode_with(buf, version, |buf, r| holes.push((buf.len(), r.clone())))
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        Ok(ProduceRequest {
            transactional_id: get_nullable_string(buf, flex)?,
            acks: get_i16(buf)?,
            timeout_ms: get_i32(buf)?,
            topic_data: get_array(buf, flex, |buf| {
                let (name, topic_id) = get_topic_key(buf, version)?;
                Ok(TopicProduceData {
                    name,
                    topic_id,
                    partition_data: get_array(buf, flex, |buf| {
                        Ok(PartitionProduceData {
                            index: get_i32(buf)?,
                            records: get_nullable_bytes(buf, flex)?,
                            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
                        })
                    })?,
                    tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
                })
            })?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}

impl Request for ProduceRequest {
    type Response = ProduceResponse;
}

/// Produce response: the outcome per topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    /// Each topic produced to.
    pub responses: Vec<TopicProduceResponse>,
    /// Throttle time in milliseconds (v1+).
    pub throttle_time_ms: i32,
    /// Endpoints of the current leaders named in NOT_LEADER_OR_FOLLOWER
    /// partition responses (tag 0, v10+).
    pub node_endpoints: Vec<NodeEndpoint>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

/// The outcome for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicProduceResponse {
    /// The topic name (v3-12; empty when decoded from v13+).
    pub name: String,
    /// The topic id (v13+; all zero when decoded from an earlier version).
    pub topic_id: [u8; 16],
    /// Each partition produced to.
    pub partition_responses: Vec<PartitionProduceResponse>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

/// The outcome for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceResponse {
    /// The partition index.
    pub index: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// The base offset of the appended batch.
    pub base_offset: i64,
    /// The broker's append time if the topic uses LogAppendTime, else -1 (v2+).
    pub log_append_time_ms: i64,
    /// The log start offset, -1 if unknown (v5+).
    pub log_start_offset: i64,
    /// Records that caused the batch to be dropped (v8+).
    pub record_errors: Vec<BatchIndexAndErrorMessage>,
    /// The global error message for the dropped batch (v8+, nullable).
    pub error_message: Option<String>,
    /// The current leader, when the broker knows a newer one (tag 0, v10+).
    pub current_leader: LeaderIdAndEpoch,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl Default for PartitionProduceResponse {
    fn default() -> Self {
        PartitionProduceResponse {
            index: 0,
            error_code: 0,
            base_offset: 0,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: LeaderIdAndEpoch::default(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A record that caused its batch to be dropped (v8+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchIndexAndErrorMessage {
    /// The index of the record in its batch.
    pub batch_index: i32,
    /// The error message for that record (nullable).
    pub batch_index_error_message: Option<String>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

/// A partition's current leader and epoch (v10+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    /// The id of the current leader, -1 if unknown.
    pub leader_id: i32,
    /// The latest known leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for LeaderIdAndEpoch {
    fn default() -> Self {
        LeaderIdAndEpoch {
            leader_id: -1,
            leader_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A broker endpoint (v10+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeEndpoint {
    /// The broker id.
    pub node_id: i32,
    /// The broker hostname.
    pub host: String,
    /// The broker port.
    pub port: i32,
    /// The rack of the broker, or null.
    pub rack: Option<String>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

fn encode_partition_response(
    buf: &mut BytesMut,
    p: &PartitionProduceResponse,
    version: i16,
) -> Result<()> {
    let flex = version >= 9;
    buf.put_i32(p.index);
    buf.put_i16(p.error_code);
    buf.put_i64(p.base_offset);
    if version >= 2 {
        buf.put_i64(p.log_append_time_ms);
    }
    if version >= 5 {
        buf.put_i64(p.log_start_offset);
    }
    if version >= 8 {
        put_arr(buf, &p.record_errors, flex, |buf, e| {
            buf.put_i32(e.batch_index);
            put_nstr(buf, e.batch_index_error_message.as_deref(), flex)?;
            put_tags(buf, flex, &[], &e.tagged_fields)
        })?;
        put_nstr(buf, p.error_message.as_deref(), flex)?;
    }
    let mut known = Vec::new();
    if version >= 10 {
        if p.current_leader != LeaderIdAndEpoch::default() {
            let mut b = BytesMut::new();
            b.put_i32(p.current_leader.leader_id);
            b.put_i32(p.current_leader.leader_epoch);
            put_tags(&mut b, true, &[], &p.current_leader.tagged_fields)?;
            known.push((0, b));
        }
    } else {
        absent(
            &p.current_leader,
            &LeaderIdAndEpoch::default(),
            "Produce current_leader before v10",
        )?;
    }
    put_tags(buf, flex, &known, &p.tagged_fields)
}

fn decode_partition_response(buf: &mut Bytes, version: i16) -> Result<PartitionProduceResponse> {
    let flex = version >= 9;
    let mut p = PartitionProduceResponse {
        index: get_i32(buf)?,
        error_code: get_i16(buf)?,
        base_offset: get_i64(buf)?,
        ..Default::default()
    };
    if version >= 2 {
        p.log_append_time_ms = get_i64(buf)?;
    }
    if version >= 5 {
        p.log_start_offset = get_i64(buf)?;
    }
    if version >= 8 {
        p.record_errors = get_array(buf, flex, |buf| {
            Ok(BatchIndexAndErrorMessage {
                batch_index: get_i32(buf)?,
                batch_index_error_message: get_nullable_string(buf, flex)?,
                tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
            })
        })?;
        p.error_message = get_nullable_string(buf, flex)?;
    }
    let mut leader = LeaderIdAndEpoch::default();
    p.tagged_fields = get_tags(buf, flex, |tag, field| {
        if tag == 0 && version >= 10 {
            leader = LeaderIdAndEpoch {
                leader_id: get_i32(field)?,
                leader_epoch: get_i32(field)?,
                tagged_fields: get_unknown_tagged_fields(field)?,
            };
            tagged_done(field)?;
            // At its default value it stays raw (see get_tagged_fields).
            Ok(leader != LeaderIdAndEpoch::default())
        } else {
            Ok(false)
        }
    })?;
    p.current_leader = leader;
    Ok(p)
}

fn encode_node_endpoint(buf: &mut BytesMut, e: &NodeEndpoint) -> Result<()> {
    buf.put_i32(e.node_id);
    put_str(buf, &e.host, true)?;
    buf.put_i32(e.port);
    put_nstr(buf, e.rack.as_deref(), true)?;
    put_tags(buf, true, &[], &e.tagged_fields)
}

fn decode_node_endpoint(buf: &mut Bytes) -> Result<NodeEndpoint> {
    Ok(NodeEndpoint {
        node_id: get_i32(buf)?,
        host: get_string(buf, true)?,
        port: get_i32(buf)?,
        rack: get_nullable_string(buf, true)?,
        tagged_fields: get_unknown_tagged_fields(buf)?,
    })
}

impl ApiMessage for ProduceResponse {
    const API_KEY: ApiKey = ApiKey::Produce;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_arr(buf, &self.responses, flex, |buf, t| {
            put_topic_key(buf, &t.name, &t.topic_id, version)?;
            put_arr(buf, &t.partition_responses, flex, |b, p| {
                encode_partition_response(b, p, version)
            })?;
            put_tags(buf, flex, &[], &t.tagged_fields)
        })?;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        let mut known = Vec::new();
        if version >= 10 {
            if !self.node_endpoints.is_empty() {
                let mut b = BytesMut::new();
                put_arr(&mut b, &self.node_endpoints, true, encode_node_endpoint)?;
                known.push((0, b));
            }
        } else {
            absent(
                &self.node_endpoints,
                &Vec::new(),
                "Produce node_endpoints before v10",
            )?;
        }
        put_tags(buf, flex, &known, &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = ProduceResponse {
            responses: get_array(buf, flex, |buf| {
                let (name, topic_id) = get_topic_key(buf, version)?;
                Ok(TopicProduceResponse {
                    name,
                    topic_id,
                    partition_responses: get_array(buf, flex, |b| {
                        decode_partition_response(b, version)
                    })?,
                    tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
                })
            })?,
            ..Default::default()
        };
        if version >= 1 {
            r.throttle_time_ms = get_i32(buf)?;
        }
        let mut endpoints = Vec::new();
        r.tagged_fields = get_tags(buf, flex, |tag, field| {
            if tag == 0 && version >= 10 {
                endpoints = get_array(field, true, decode_node_endpoint)?;
                tagged_done(field)?;
                Ok(!endpoints.is_empty())
            } else {
                Ok(false)
            }
        })?;
        r.node_endpoints = endpoints;
        Ok(r)
    }
}
