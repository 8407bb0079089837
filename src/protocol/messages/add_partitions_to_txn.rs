//! AddPartitionsToTxn (key 24), versions 0-5, flexible from 3
//! (`AddPartitionsToTxnRequest.json`, `AddPartitionsToTxnResponse.json`):
//! adds partitions to a transaction before records are produced to them.
//! Versions 0-3 carry one transaction (the client's form), 4+ a batch of
//! them (the broker's form, KIP-890).

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_i32_arr, get_tags, put_arr, put_i32_arr, put_str, put_tags};
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// AddPartitionsToTxn request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnRequest {
    /// The transactions to add partitions to (v4+).
    pub transactions: Vec<AddPartitionsToTxnTransaction>,
    /// The transactional id (v0-3).
    pub v3_and_below_transactional_id: String,
    /// The producer id (v0-3).
    pub v3_and_below_producer_id: i64,
    /// The producer epoch (v0-3).
    pub v3_and_below_producer_epoch: i16,
    /// The partitions to add (v0-3).
    pub v3_and_below_topics: Vec<AddPartitionsToTxnTopic>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// One transaction of a batched AddPartitionsToTxn request (v4+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnTransaction {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// True to only check that the partitions are in the transaction.
    pub verify_only: bool,
    /// The partitions to add.
    pub topics: Vec<AddPartitionsToTxnTopic>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A topic's partitions to add to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnTopic {
    /// The topic name.
    pub name: String,
    /// The partition indexes.
    pub partitions: Vec<i32>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

fn put_topics(buf: &mut BytesMut, topics: &[AddPartitionsToTxnTopic], flex: bool) -> Result<()> {
    put_arr(buf, topics, flex, |b, t| {
        put_str(b, &t.name, flex)?;
        put_i32_arr(b, &t.partitions, flex)?;
        put_tags(b, flex, &[], &t.tagged_fields)
    })
}

fn get_topics(buf: &mut Bytes, flex: bool) -> Result<Vec<AddPartitionsToTxnTopic>> {
    get_array(buf, flex, |b| {
        Ok(AddPartitionsToTxnTopic {
            name: get_string(b, flex)?,
            partitions: get_i32_arr(b, flex)?,
            tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
        })
    })
}

impl ApiMessage for AddPartitionsToTxnRequest {
    const API_KEY: ApiKey = ApiKey::AddPartitionsToTxn;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        if version >= 4 {
            let v3 = (
                self.v3_and_below_transactional_id.as_str(),
                self.v3_and_below_producer_id,
                self.v3_and_below_producer_epoch,
                self.v3_and_below_topics.is_empty(),
            );
            absent(
                &v3,
                &("", 0, 0, true),
                "AddPartitionsToTxn v3 fields from v4",
            )?;
            put_arr(buf, &self.transactions, flex, |b, t| {
                put_str(b, &t.transactional_id, flex)?;
                b.put_i64(t.producer_id);
                b.put_i16(t.producer_epoch);
                b.put_u8(u8::from(t.verify_only));
                put_topics(b, &t.topics, flex)?;
                put_tags(b, flex, &[], &t.tagged_fields)
            })?;
        } else {
            if !self.transactions.is_empty() {
                return Err(ProtocolError::Invalid(
                    "AddPartitionsToTxn transactions before v4",
                ));
            }
            put_str(buf, &self.v3_and_below_transactional_id, flex)?;
            buf.put_i64(self.v3_and_below_producer_id);
            buf.put_i16(self.v3_and_below_producer_epoch);
            put_topics(buf, &self.v3_and_below_topics, flex)?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = AddPartitionsToTxnRequest::default();
        if version >= 4 {
            r.transactions = get_array(buf, flex, |b| {
                Ok(AddPartitionsToTxnTransaction {
                    transactional_id: get_string(b, flex)?,
                    producer_id: get_i64(b)?,
                    producer_epoch: get_i16(b)?,
                    verify_only: get_bool(b)?,
                    topics: get_topics(b, flex)?,
                    tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
                })
            })?;
        } else {
            r.v3_and_below_transactional_id = get_string(buf, flex)?;
            r.v3_and_below_producer_id = get_i64(buf)?;
            r.v3_and_below_producer_epoch = get_i16(buf)?;
            r.v3_and_below_topics = get_topics(buf, flex)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}

impl Request for AddPartitionsToTxnRequest {
    type Response = AddPartitionsToTxnResponse;
}

/// AddPartitionsToTxn response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnResponse {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// The top-level error code (v4+).
    pub error_code: i16,
    /// Results per transaction (v4+).
    pub results_by_transaction: Vec<AddPartitionsToTxnResult>,
    /// Results per topic (v0-3).
    pub results_by_topic_v3_and_below: Vec<AddPartitionsToTxnTopicResult>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// The results of one transaction (v4+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnResult {
    /// The transactional id.
    pub transactional_id: String,
    /// Results per topic.
    pub topic_results: Vec<AddPartitionsToTxnTopicResult>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// The results of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnTopicResult {
    /// The topic name.
    pub name: String,
    /// Results per partition.
    pub results_by_partition: Vec<AddPartitionsToTxnPartitionResult>,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// The result of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnPartitionResult {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, or 0.
    pub partition_error_code: i16,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

fn put_topic_results(
    buf: &mut BytesMut,
    topics: &[AddPartitionsToTxnTopicResult],
    flex: bool,
) -> Result<()> {
    put_arr(buf, topics, flex, |b, t| {
        put_str(b, &t.name, flex)?;
        put_arr(b, &t.results_by_partition, flex, |b, p| {
            b.put_i32(p.partition_index);
            b.put_i16(p.partition_error_code);
            put_tags(b, flex, &[], &p.tagged_fields)
        })?;
        put_tags(b, flex, &[], &t.tagged_fields)
    })
}

fn get_topic_results(buf: &mut Bytes, flex: bool) -> Result<Vec<AddPartitionsToTxnTopicResult>> {
    get_array(buf, flex, |b| {
        Ok(AddPartitionsToTxnTopicResult {
            name: get_string(b, flex)?,
            results_by_partition: get_array(b, flex, |b| {
                Ok(AddPartitionsToTxnPartitionResult {
                    partition_index: get_i32(b)?,
                    partition_error_code: get_i16(b)?,
                    tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
                })
            })?,
            tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
        })
    })
}

impl ApiMessage for AddPartitionsToTxnResponse {
    const API_KEY: ApiKey = ApiKey::AddPartitionsToTxn;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i32(self.throttle_time_ms);
        if version >= 4 {
            if !self.results_by_topic_v3_and_below.is_empty() {
                return Err(ProtocolError::Invalid(
                    "AddPartitionsToTxn results_by_topic_v3_and_below from v4",
                ));
            }
            buf.put_i16(self.error_code);
            put_arr(buf, &self.results_by_transaction, flex, |b, t| {
                put_str(b, &t.transactional_id, flex)?;
                put_topic_results(b, &t.topic_results, flex)?;
                put_tags(b, flex, &[], &t.tagged_fields)
            })?;
        } else {
            // The top-level error code is ignorable: left out before v4.
            if !self.results_by_transaction.is_empty() {
                return Err(ProtocolError::Invalid(
                    "AddPartitionsToTxn results_by_transaction before v4",
                ));
            }
            put_topic_results(buf, &self.results_by_topic_v3_and_below, flex)?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = AddPartitionsToTxnResponse {
            throttle_time_ms: get_i32(buf)?,
            ..Default::default()
        };
        if version >= 4 {
            r.error_code = get_i16(buf)?;
            r.results_by_transaction = get_array(buf, flex, |b| {
                Ok(AddPartitionsToTxnResult {
                    transactional_id: get_string(b, flex)?,
                    topic_results: get_topic_results(b, flex)?,
                    tagged_fields: get_tags(b, flex, |_, _| Ok(false))?,
                })
            })?;
        } else {
            r.results_by_topic_v3_and_below = get_topic_results(buf, flex)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
