//! FindCoordinator (key 10), versions 0-6, flexible from 3, batched from 4
//! (KIP-699) (`FindCoordinatorRequest.json`, `FindCoordinatorResponse.json`):
//! the broker that coordinates a transactional id or a group.

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_tags, put_arr, put_nstr, put_str, put_tags};
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// `key_type` of a consumer group coordinator.
pub const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transaction coordinator.
pub const KEY_TYPE_TRANSACTION: i8 = 1;
/// `key_type` of a share group coordinator (v6+, KIP-932).
pub const KEY_TYPE_SHARE: i8 = 2;

/// FindCoordinator request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorRequest {
    /// The coordinator key (v0-3).
    pub key: String,
    /// The key type: group (0), transaction (1), share (2) (v1+).
    pub key_type: i8,
    /// The coordinator keys (v4+).
    pub coordinator_keys: Vec<String>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for FindCoordinatorRequest {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        if version <= 3 {
            if !self.coordinator_keys.is_empty() {
                return Err(ProtocolError::Invalid(
                    "FindCoordinator coordinator_keys before v4",
                ));
            }
            put_str(buf, &self.key, flex)?;
        } else {
            absent(&self.key.as_str(), &"", "FindCoordinator key from v4")?;
        }
        if version >= 1 {
            buf.put_i8(self.key_type);
        } else {
            absent(&self.key_type, &0, "FindCoordinator key_type in v0")?;
        }
        if version >= 4 {
            put_arr(buf, &self.coordinator_keys, flex, |b, k| {
                put_str(b, k, flex)
            })?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = FindCoordinatorRequest::default();
        if version <= 3 {
            r.key = get_string(buf, flex)?;
        }
        if version >= 1 {
            r.key_type = get_i8(buf)?;
        }
        if version >= 4 {
            r.coordinator_keys = get_array(buf, flex, |b| get_string(b, flex))?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}

impl Request for FindCoordinatorRequest {
    type Response = FindCoordinatorResponse;
}

/// FindCoordinator response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorResponse {
    /// Throttle time in milliseconds (v1+).
    pub throttle_time_ms: i32,
    /// The error code, or 0 (v0-3).
    pub error_code: i16,
    /// The error message, or null (v1-3).
    pub error_message: Option<String>,
    /// The coordinator's node id (v0-3).
    pub node_id: i32,
    /// The coordinator's host name (v0-3).
    pub host: String,
    /// The coordinator's port (v0-3).
    pub port: i32,
    /// One coordinator per requested key (v4+).
    pub coordinators: Vec<Coordinator>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// The coordinator of one key (FindCoordinator v4+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coordinator {
    /// The coordinator key.
    pub key: String,
    /// The node id.
    pub node_id: i32,
    /// The host name.
    pub host: String,
    /// The port.
    pub port: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// The error message, or null.
    pub error_message: Option<String>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl FindCoordinatorResponse {
    /// The answer as one coordinator per key whatever the version: the
    /// v4+ list, or the single v0-3 answer named `key`.
    pub fn coordinators_for(&self, key: &str, version: i16) -> Vec<Coordinator> {
        if version >= 4 {
            self.coordinators.clone()
        } else {
            vec![Coordinator {
                key: key.to_owned(),
                node_id: self.node_id,
                host: self.host.clone(),
                port: self.port,
                error_code: self.error_code,
                error_message: self.error_message.clone(),
                tagged_fields: TaggedFields::default(),
            }]
        }
    }
}

impl ApiMessage for FindCoordinatorResponse {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        if version <= 3 {
            if !self.coordinators.is_empty() {
                return Err(ProtocolError::Invalid(
                    "FindCoordinator coordinators before v4",
                ));
            }
            buf.put_i16(self.error_code);
            if version >= 1 {
                put_nstr(buf, self.error_message.as_deref(), flex)?;
            }
            buf.put_i32(self.node_id);
            put_str(buf, &self.host, flex)?;
            buf.put_i32(self.port);
        } else {
            absent(&self.error_code, &0, "FindCoordinator error_code from v4")?;
            absent(&self.node_id, &0, "FindCoordinator node_id from v4")?;
            absent(&self.host.as_str(), &"", "FindCoordinator host from v4")?;
            absent(&self.port, &0, "FindCoordinator port from v4")?;
            put_arr(buf, &self.coordinators, flex, |b, c| {
                put_str(b, &c.key, flex)?;
                b.put_i32(c.node_id);
                put_str(b, &c.host, flex)?;
                b.put_i32(c.port);
                b.put_i16(c.error_code);
                put_nstr(b, c.error_message.as_deref(), flex)?;
                put_tags(b, flex, &[], &c.tagged_fields)
            })?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = FindCoordinatorResponse::default();
        if version >= 1 {
            r.throttle_time_ms = get_i32(buf)?;
        }
        if version <= 3 {
            r.error_code = get_i16(buf)?;
            if version >= 1 {
                r.error_message = get_nullable_string(buf, flex)?;
            }
            r.node_id = get_i32(buf)?;
            r.host = get_string(buf, flex)?;
            r.port = get_i32(buf)?;
        } else {
            r.coordinators = get_array(buf, flex, |b| {
                Ok(Coordinator {
                    key: get_string(b, flex)?,
                    node_id: get_i32(b)?,
                    host: get_string(b, flex)?,
                    port: get_i32(b)?,
                    error_code: get_i16(b)?,
                    error_message: get_nullable_string(b, flex)?,
                    tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
                })
            })?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
