//! InitProducerId (key 22), versions 0-6, flexible from 2, two-phase commit
//! fields from 6 (KIP-939)
//! (`InitProducerIdRequest.json`, `InitProducerIdResponse.json`).

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_tags, put_nstr, put_tags};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// InitProducerId request: obtains a producer id and epoch (idempotence and
/// transactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// The transactional id, or null for an idempotent-only producer.
    pub transactional_id: Option<String>,
    /// The transaction timeout in milliseconds.
    pub transaction_timeout_ms: i32,
    /// The current producer id, or -1 (v3+, to bump the epoch of an existing id).
    pub producer_id: i64,
    /// The current producer epoch, or -1 (v3+).
    pub producer_epoch: i16,
    /// True when the transactions of this id take part in a two-phase commit (v6+).
    pub enable_2pc: bool,
    /// True to keep a prepared transaction instead of aborting it (v6+).
    pub keep_prepared_txn: bool,
    /// Unknown tagged fields (v2+).
    pub tagged_fields: TaggedFields,
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
            enable_2pc: false,
            keep_prepared_txn: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl ApiMessage for InitProducerIdRequest {
    const API_KEY: ApiKey = ApiKey::InitProducerId;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_nstr(buf, self.transactional_id.as_deref(), flex)?;
        buf.put_i32(self.transaction_timeout_ms);
        if version >= 3 {
            buf.put_i64(self.producer_id);
            buf.put_i16(self.producer_epoch);
        } else {
            absent(
                &self.producer_id,
                &-1,
                "InitProducerId producer_id before v3",
            )?;
            absent(
                &self.producer_epoch,
                &-1,
                "InitProducerId producer_epoch before v3",
            )?;
        }
        if version >= 6 {
            buf.put_u8(u8::from(self.enable_2pc));
            buf.put_u8(u8::from(self.keep_prepared_txn));
        } else {
            let two_pc = (self.enable_2pc, self.keep_prepared_txn);
            absent(
                &two_pc,
                &(false, false),
                "InitProducerId 2PC fields before v6",
            )?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = InitProducerIdRequest {
            transactional_id: get_nullable_string(buf, flex)?,
            transaction_timeout_ms: get_i32(buf)?,
            ..Default::default()
        };
        if version >= 3 {
            r.producer_id = get_i64(buf)?;
            r.producer_epoch = get_i16(buf)?;
        }
        if version >= 6 {
            r.enable_2pc = get_bool(buf)?;
            r.keep_prepared_txn = get_bool(buf)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}

impl Request for InitProducerIdRequest {
    type Response = InitProducerIdResponse;
}

/// InitProducerId response: the assigned producer id and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, or 0.
    pub error_code: i16,
    /// The producer id (-1 on error).
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The producer id of a prepared transaction kept by `keep_prepared_txn`,
    /// or -1 (v6+).
    pub ongoing_txn_producer_id: i64,
    /// The epoch of that prepared transaction, or -1 (v6+).
    pub ongoing_txn_producer_epoch: i16,
    /// Unknown tagged fields (v2+).
    pub tagged_fields: TaggedFields,
}

impl Default for InitProducerIdResponse {
    fn default() -> Self {
        InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: -1,
            producer_epoch: 0,
            ongoing_txn_producer_id: -1,
            ongoing_txn_producer_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl ApiMessage for InitProducerIdResponse {
    const API_KEY: ApiKey = ApiKey::InitProducerId;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.throttle_time_ms);
        buf.put_i16(self.error_code);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        if version >= 6 {
            buf.put_i64(self.ongoing_txn_producer_id);
            buf.put_i16(self.ongoing_txn_producer_epoch);
        } else {
            let ongoing = (
                self.ongoing_txn_producer_id,
                self.ongoing_txn_producer_epoch,
            );
            absent(
                &ongoing,
                &(-1, -1),
                "InitProducerId ongoing transaction before v6",
            )?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = InitProducerIdResponse {
            throttle_time_ms: get_i32(buf)?,
            error_code: get_i16(buf)?,
            producer_id: get_i64(buf)?,
            producer_epoch: get_i16(buf)?,
            ..Default::default()
        };
        if version >= 6 {
            r.ongoing_txn_producer_id = get_i64(buf)?;
            r.ongoing_txn_producer_epoch = get_i16(buf)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
