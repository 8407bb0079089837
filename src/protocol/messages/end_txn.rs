//! EndTxn (key 26), versions 0-5, flexible from 3 (`EndTxnRequest.json`,
//! `EndTxnResponse.json`): commits or aborts a transaction; from v5
//! (KIP-890 part 2) the response carries the producer id and the epoch
//! bumped for the next transaction.

use bytes::{BufMut, Bytes, BytesMut};

use super::{get_tags, put_str, put_tags};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// EndTxn request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id of the transaction.
    pub producer_id: i64,
    /// The producer epoch of the transaction.
    pub producer_epoch: i16,
    /// True to commit, false to abort.
    pub committed: bool,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for EndTxnRequest {
    const API_KEY: ApiKey = ApiKey::EndTxn;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_str(buf, &self.transactional_id, flex)?;
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_u8(u8::from(self.committed));
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        Ok(EndTxnRequest {
            transactional_id: get_string(buf, flex)?,
            producer_id: get_i64(buf)?,
            producer_epoch: get_i16(buf)?,
            committed: get_bool(buf)?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}

impl Request for EndTxnRequest {
    type Response = EndTxnResponse;
}

/// EndTxn response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnResponse {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// The producer id for the next transaction, -1 before v5.
    pub producer_id: i64,
    /// The producer epoch for the next transaction, -1 before v5.
    pub producer_epoch: i16,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl Default for EndTxnResponse {
    fn default() -> Self {
        EndTxnResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: -1,
            producer_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl ApiMessage for EndTxnResponse {
    const API_KEY: ApiKey = ApiKey::EndTxn;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.throttle_time_ms);
        buf.put_i16(self.error_code);
        // Ignorable before v5: left out.
        if version >= 5 {
            buf.put_i64(self.producer_id);
            buf.put_i16(self.producer_epoch);
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = EndTxnResponse {
            throttle_time_ms: get_i32(buf)?,
            error_code: get_i16(buf)?,
            ..Default::default()
        };
        if version >= 5 {
            r.producer_id = get_i64(buf)?;
            r.producer_epoch = get_i16(buf)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
