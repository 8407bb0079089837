//! AddOffsetsToTxn (key 25), versions 0-4, flexible from 3
//! (`AddOffsetsToTxnRequest.json`, `AddOffsetsToTxnResponse.json`): puts a
//! consumer group's offsets partition into a transaction, before
//! TxnOffsetCommit.

use bytes::{BufMut, Bytes, BytesMut};

use super::{get_tags, put_str, put_tags};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// AddOffsetsToTxn request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddOffsetsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id of the transaction.
    pub producer_id: i64,
    /// The producer epoch of the transaction.
    pub producer_epoch: i16,
    /// The consumer group whose offsets join the transaction.
    pub group_id: String,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for AddOffsetsToTxnRequest {
    const API_KEY: ApiKey = ApiKey::AddOffsetsToTxn;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_str(buf, &self.transactional_id, flex)?;
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        put_str(buf, &self.group_id, flex)?;
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        Ok(AddOffsetsToTxnRequest {
            transactional_id: get_string(buf, flex)?,
            producer_id: get_i64(buf)?,
            producer_epoch: get_i16(buf)?,
            group_id: get_string(buf, flex)?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}

impl Request for AddOffsetsToTxnRequest {
    type Response = AddOffsetsToTxnResponse;
}

/// AddOffsetsToTxn response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddOffsetsToTxnResponse {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for AddOffsetsToTxnResponse {
    const API_KEY: ApiKey = ApiKey::AddOffsetsToTxn;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.throttle_time_ms);
        buf.put_i16(self.error_code);
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        Ok(AddOffsetsToTxnResponse {
            throttle_time_ms: get_i32(buf)?,
            error_code: get_i16(buf)?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}
