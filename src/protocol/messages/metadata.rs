//! Metadata (key 3), versions 1-13, flexible from 9 (`MetadataRequest.json`,
//! `MetadataResponse.json`).
//!
//! The v13 request is v12's; the v13 response (KIP-1102) appends a top-level
//! `ErrorCode` after the topics (and after v8-10's cluster authorized
//! operations), before the tagged fields. It is ignorable: left out below v13.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    absent, get_i32_arr, get_tags, put_arr, put_i32_arr, put_nstr, put_nstr_in, put_str, put_tags,
};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// Kafka's default for authorized-operations fields (`INT32_MIN`: not requested).
pub const AUTHORIZED_OPERATIONS_UNKNOWN: i32 = i32::MIN;

/// Metadata request: asks for brokers and topic partition leaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// The topics to fetch metadata for; `None` means all topics.
    pub topics: Option<Vec<MetadataRequestTopic>>,
    /// Whether the broker may auto-create requested topics (v4+, default true).
    pub allow_auto_topic_creation: bool,
    /// Whether to include cluster authorized operations (v8-10).
    pub include_cluster_authorized_operations: bool,
    /// Whether to include topic authorized operations (v8+).
    pub include_topic_authorized_operations: bool,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataRequest {
    fn default() -> Self {
        MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of a metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataRequestTopic {
    /// The topic id (v10+; all zero when asking by name).
    pub topic_id: [u8; 16],
    /// The topic name (nullable from v10, when asking by id).
    pub name: Option<String>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for MetadataRequest {
    const API_KEY: ApiKey = ApiKey::Metadata;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        match &self.topics {
            None => put_array_len(buf, None, flex),
            Some(topics) => put_arr(buf, topics, flex, |buf, t| {
                if version >= 10 {
                    buf.put_slice(&t.topic_id);
                } else {
                    absent(&t.topic_id, &[0; 16], "Metadata topic_id before v10")?;
                }
                put_nstr_in(
                    buf,
                    t.name.as_deref(),
                    flex,
                    version >= 10,
                    "Metadata topic name null before v10",
                )?;
                put_tags(buf, flex, &[], &t.tagged_fields)
            })?,
        }
        if version >= 4 {
            buf.put_u8(self.allow_auto_topic_creation as u8);
        } else {
            absent(
                &self.allow_auto_topic_creation,
                &true,
                "Metadata allow_auto_topic_creation=false before v4",
            )?;
        }
        if (8..=10).contains(&version) {
            buf.put_u8(self.include_cluster_authorized_operations as u8);
        } else {
            absent(
                &self.include_cluster_authorized_operations,
                &false,
                "Metadata include_cluster_authorized_operations outside v8-10",
            )?;
        }
        if version >= 8 {
            buf.put_u8(self.include_topic_authorized_operations as u8);
        } else {
            absent(
                &self.include_topic_authorized_operations,
                &false,
                "Metadata include_topic_authorized_operations before v8",
            )?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = MetadataRequest {
            topics: get_nullable_array(buf, flex, |buf| {
                let topic_id = if version >= 10 {
                    get_uuid(buf)?
                } else {
                    [0; 16]
                };
                let name = if version >= 10 {
                    get_nullable_string(buf, flex)?
                } else {
                    Some(get_string(buf, flex)?)
                };
                Ok(MetadataRequestTopic {
                    topic_id,
                    name,
                    tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
                })
            })?,
            ..Default::default()
        };
        if version >= 4 {
            r.allow_auto_topic_creation = get_bool(buf)?;
        }
        if (8..=10).contains(&version) {
            r.include_cluster_authorized_operations = get_bool(buf)?;
        }
        if version >= 8 {
            r.include_topic_authorized_operations = get_bool(buf)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}

impl Request for MetadataRequest {
    type Response = MetadataResponse;
}

/// Metadata response: brokers, cluster id, controller and topic partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Throttle time in milliseconds (v3+).
    pub throttle_time_ms: i32,
    /// The brokers of the cluster.
    pub brokers: Vec<MetadataResponseBroker>,
    /// The cluster id (v2+, nullable).
    pub cluster_id: Option<String>,
    /// The id of the controller broker, -1 if unknown (v1+).
    pub controller_id: i32,
    /// Each topic in the response.
    pub topics: Vec<MetadataResponseTopic>,
    /// Cluster authorized operations bitfield (v8-10).
    pub cluster_authorized_operations: i32,
    /// The top-level error code, or 0 (v13+, KIP-1102; e.g. REBOOTSTRAP_REQUIRED).
    pub error_code: i16,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataResponse {
    fn default() -> Self {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: Vec::new(),
            cluster_id: None,
            controller_id: -1,
            topics: Vec::new(),
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_UNKNOWN,
            error_code: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One broker of a metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataResponseBroker {
    /// The broker id.
    pub node_id: i32,
    /// The broker hostname.
    pub host: String,
    /// The broker port.
    pub port: i32,
    /// The rack of the broker, or null (v1+).
    pub rack: Option<String>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

/// One topic of a metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponseTopic {
    /// The topic error code, or 0.
    pub error_code: i16,
    /// The topic name (nullable from v12).
    pub name: Option<String>,
    /// The topic id (v10+).
    pub topic_id: [u8; 16],
    /// True if the topic is internal (v1+).
    pub is_internal: bool,
    /// Each partition of the topic.
    pub partitions: Vec<MetadataResponsePartition>,
    /// Topic authorized operations bitfield (v8+).
    pub topic_authorized_operations: i32,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataResponseTopic {
    fn default() -> Self {
        MetadataResponseTopic {
            error_code: 0,
            name: Some(String::new()),
            topic_id: [0; 16],
            is_internal: false,
            partitions: Vec::new(),
            topic_authorized_operations: AUTHORIZED_OPERATIONS_UNKNOWN,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One partition of a metadata response topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponsePartition {
    /// The partition error code, or 0.
    pub error_code: i16,
    /// The partition index.
    pub partition_index: i32,
    /// The id of the leader broker (-1 when none).
    pub leader_id: i32,
    /// The leader epoch, -1 if unknown (v7+).
    pub leader_epoch: i32,
    /// The replica brokers.
    pub replica_nodes: Vec<i32>,
    /// The in-sync replica brokers.
    pub isr_nodes: Vec<i32>,
    /// The offline replica brokers (v5+).
    pub offline_replicas: Vec<i32>,
    /// Unknown tagged fields (v9+).
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataResponsePartition {
    fn default() -> Self {
        MetadataResponsePartition {
            error_code: 0,
            partition_index: 0,
            leader_id: 0,
            leader_epoch: -1,
            replica_nodes: Vec::new(),
            isr_nodes: Vec::new(),
            offline_replicas: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

fn encode_partition(buf: &mut BytesMut, p: &MetadataResponsePartition, version: i16) -> Result<()> {
    let flex = version >= 9;
    buf.put_i16(p.error_code);
    buf.put_i32(p.partition_index);
    buf.put_i32(p.leader_id);
    if version >= 7 {
        buf.put_i32(p.leader_epoch);
    }
    put_i32_arr(buf, &p.replica_nodes, flex)?;
    put_i32_arr(buf, &p.isr_nodes, flex)?;
    if version >= 5 {
        put_i32_arr(buf, &p.offline_replicas, flex)?;
    }
    put_tags(buf, flex, &[], &p.tagged_fields)
}

fn decode_partition(buf: &mut Bytes, version: i16) -> Result<MetadataResponsePartition> {
    let flex = version >= 9;
    let mut p = MetadataResponsePartition {
        error_code: get_i16(buf)?,
        partition_index: get_i32(buf)?,
        leader_id: get_i32(buf)?,
        ..Default::default()
    };
    if version >= 7 {
        p.leader_epoch = get_i32(buf)?;
    }
    p.replica_nodes = get_i32_arr(buf, flex)?;
    p.isr_nodes = get_i32_arr(buf, flex)?;
    if version >= 5 {
        p.offline_replicas = get_i32_arr(buf, flex)?;
    }
    p.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
    Ok(p)
}

fn encode_topic(buf: &mut BytesMut, t: &MetadataResponseTopic, version: i16) -> Result<()> {
    let flex = version >= 9;
    buf.put_i16(t.error_code);
    put_nstr_in(
        buf,
        t.name.as_deref(),
        flex,
        version >= 12,
        "Metadata response topic name null before v12",
    )?;
    if version >= 10 {
        buf.put_slice(&t.topic_id);
    }
    if version >= 1 {
        buf.put_u8(t.is_internal as u8);
    }
    put_arr(buf, &t.partitions, flex, |b, p| {
        encode_partition(b, p, version)
    })?;
    if version >= 8 {
        buf.put_i32(t.topic_authorized_operations);
    } else {
        absent(
            &t.topic_authorized_operations,
            &AUTHORIZED_OPERATIONS_UNKNOWN,
            "Metadata topic_authorized_operations before v8",
        )?;
    }
    put_tags(buf, flex, &[], &t.tagged_fields)
}

fn decode_topic(buf: &mut Bytes, version: i16) -> Result<MetadataResponseTopic> {
    let flex = version >= 9;
    let mut t = MetadataResponseTopic {
        error_code: get_i16(buf)?,
        ..Default::default()
    };
    t.name = if version >= 12 {
        get_nullable_string(buf, flex)?
    } else {
        Some(get_string(buf, flex)?)
    };
    if version >= 10 {
        t.topic_id = get_uuid(buf)?;
    }
    if version >= 1 {
        t.is_internal = get_bool(buf)?;
    }
    t.partitions = get_array(buf, flex, |b| decode_partition(b, version))?;
    if version >= 8 {
        t.topic_authorized_operations = get_i32(buf)?;
    }
    t.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
    Ok(t)
}

impl ApiMessage for MetadataResponse {
    const API_KEY: ApiKey = ApiKey::Metadata;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        if version >= 3 {
            buf.put_i32(self.throttle_time_ms);
        }
        put_arr(buf, &self.brokers, flex, |buf, b| {
            buf.put_i32(b.node_id);
            put_str(buf, &b.host, flex)?;
            buf.put_i32(b.port);
            if version >= 1 {
                put_nstr(buf, b.rack.as_deref(), flex)?;
            }
            put_tags(buf, flex, &[], &b.tagged_fields)
        })?;
        if version >= 2 {
            put_nstr(buf, self.cluster_id.as_deref(), flex)?;
        }
        if version >= 1 {
            buf.put_i32(self.controller_id);
        }
        put_arr(buf, &self.topics, flex, |b, t| encode_topic(b, t, version))?;
        if (8..=10).contains(&version) {
            buf.put_i32(self.cluster_authorized_operations);
        } else {
            absent(
                &self.cluster_authorized_operations,
                &AUTHORIZED_OPERATIONS_UNKNOWN,
                "Metadata cluster_authorized_operations outside v8-10",
            )?;
        }
        if version >= 13 {
            buf.put_i16(self.error_code);
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = MetadataResponse::default();
        if version >= 3 {
            r.throttle_time_ms = get_i32(buf)?;
        }
        r.brokers = get_array(buf, flex, |buf| {
            let mut b = MetadataResponseBroker {
                node_id: get_i32(buf)?,
                host: get_string(buf, flex)?,
                port: get_i32(buf)?,
                ..Default::default()
            };
            if version >= 1 {
                b.rack = get_nullable_string(buf, flex)?;
            }
            b.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
            Ok(b)
        })?;
        if version >= 2 {
            r.cluster_id = get_nullable_string(buf, flex)?;
        }
        if version >= 1 {
            r.controller_id = get_i32(buf)?;
        }
        r.topics = get_array(buf, flex, |b| decode_topic(b, version))?;
        if (8..=10).contains(&version) {
            r.cluster_authorized_operations = get_i32(buf)?;
        }
        if version >= 13 {
            r.error_code = get_i16(buf)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
