//! The mock's view of stored batches: records read back with their absolute
//! offsets and sequences, on top of [`protocol::record`](crate::protocol::record)
//! (which checks length, magic and CRC-32C and decompresses every codec).

use bytes::Bytes;

use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::record::{increment_sequence, RecordBatch};

/// Sequence of the last record of `batch`, wrapping after `i32::MAX` to 0 as Kafka does.
pub(crate) fn last_sequence(batch: &RecordBatch) -> i32 {
    increment_sequence(batch.base_sequence, batch.last_offset_delta)
}

/// One record read back from a mock log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRecord {
    /// Absolute offset in the partition.
    pub offset: i64,
    /// Absolute timestamp (base timestamp + delta).
    pub timestamp: i64,
    /// Key, `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, `None` for a null value (tombstone).
    pub value: Option<Bytes>,
    /// Headers in order: (key, value or null).
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Producer id of the batch (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch of the batch.
    pub producer_epoch: i16,
    /// Sequence of this record (-1 when not idempotent).
    pub sequence: i32,
}

/// Decodes the records of one whole stored batch, whatever its compression.
pub(crate) fn decode_records(batch: &Bytes) -> Result<Vec<MockRecord>> {
    let mut buf = batch.clone();
    let h = RecordBatch::decode(&mut buf)?;
    if !buf.is_empty() {
        return Err(ProtocolError::TrailingBytes(buf.len()));
    }
    Ok(h.records()?
        .into_iter()
        .map(|r| MockRecord {
            offset: h.base_offset + r.offset_delta as i64,
            timestamp: h.base_timestamp.wrapping_add(r.timestamp_delta),
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            sequence: if h.base_sequence < 0 {
                -1
            } else {
                increment_sequence(h.base_sequence, r.offset_delta)
            },
        })
        .collect())
}
