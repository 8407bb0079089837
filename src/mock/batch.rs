//! The mock's own view of a RecordBatch v2: the fixed 61-byte header (checked
//! for length, magic and CRC-32C) and, for reading logs back in tests, an
//! uncompressed record-section parser.
//!
//! TEMPORARY: both parts duplicate what `protocol::record` will provide; at
//! merge, replace [`BatchHeader::parse`] and [`decode_records`] with
//! `protocol::record::RecordBatch`.

use bytes::{Buf, Bytes};

use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::primitives::{get_i8, get_varint, get_varlong};

/// Size of the fixed part of a RecordBatch v2 (up to the first record).
pub const BATCH_OVERHEAD: usize = 61;
/// Bytes before `batchLength` counts (baseOffset and batchLength itself).
const LOG_OVERHEAD: usize = 12;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// The fixed header fields of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (rewritten by the broker on append).
    pub base_offset: i64,
    /// Length of the batch after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Magic byte (2).
    pub magic: i8,
    /// CRC-32C of bytes 21..end.
    pub crc: u32,
    /// Attributes: compression (bits 0-2), timestamp type (3), transactional (4), control (5).
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, -1 when not idempotent.
    pub producer_id: i64,
    /// Producer epoch, -1 when not idempotent.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 when not idempotent.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parses and checks the batch at the start of `bytes`, returning the
    /// header and the batch's total size (so several batches can be walked).
    ///
    /// Fails on a truncated input, a `batchLength` below the fixed header or
    /// beyond the input, a magic other than 2, or a CRC mismatch.
    pub fn parse(bytes: &[u8]) -> Result<(BatchHeader, usize)> {
        // The magic first: older message formats have another layout.
        if let Some(&m) = bytes.get(16) {
            if m as i8 != 2 {
                return Err(ProtocolError::BadMagic(m as i8));
            }
        }
        if bytes.len() < BATCH_OVERHEAD {
            return Err(ProtocolError::Truncated {
                needed: BATCH_OVERHEAD - bytes.len(),
            });
        }
        let batch_length = be_i32(bytes, 8);
        if batch_length < (BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
            return Err(ProtocolError::BadLength(batch_length as i64));
        }
        let total = LOG_OVERHEAD + batch_length as usize;
        if total > bytes.len() {
            return Err(ProtocolError::BadLength(batch_length as i64));
        }
        let magic = bytes[16] as i8;
        let crc = u32::from_be_bytes([
            bytes[CRC_OFFSET],
            bytes[CRC_OFFSET + 1],
            bytes[CRC_OFFSET + 2],
            bytes[CRC_OFFSET + 3],
        ]);
        let computed = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..total]);
        if computed != crc {
            return Err(ProtocolError::BadCrc {
                expected: crc,
                computed,
            });
        }
        Ok((
            BatchHeader {
                base_offset: be_i64(bytes, 0),
                batch_length,
                partition_leader_epoch: be_i32(bytes, 12),
                magic,
                crc,
                attributes: be_i16(bytes, 21),
                last_offset_delta: be_i32(bytes, 23),
                base_timestamp: be_i64(bytes, 27),
                max_timestamp: be_i64(bytes, 35),
                producer_id: be_i64(bytes, 43),
                producer_epoch: be_i16(bytes, 51),
                base_sequence: be_i32(bytes, 53),
                record_count: be_i32(bytes, 57),
            },
            total,
        ))
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }

    /// True for a transactional batch.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// True for a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Sequence of the last record, wrapping after `i32::MAX` to 0 as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `seq + delta` in Kafka's sequence space, which wraps from `i32::MAX` to 0.
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
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

fn get_var_bytes(buf: &mut Bytes) -> Result<Option<Bytes>> {
    let len = get_varint(buf)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if len > buf.remaining() {
        return Err(ProtocolError::BadLength(len as i64));
    }
    Ok(Some(buf.split_to(len)))
}

/// Decodes the records of one whole, checked, uncompressed batch.
///
/// TEMPORARY (see module docs). Compressed batches are an error here: the
/// mock stores them untouched but only `protocol::record` will inflate them.
pub fn decode_records(batch: &Bytes) -> Result<Vec<MockRecord>> {
    let (h, total) = BatchHeader::parse(batch)?;
    if h.compression() != 0 {
        return Err(ProtocolError::Compression(format!(
            "mock log reader cannot decode compression codec {} (needs protocol::record)",
            h.compression()
        )));
    }
    let mut buf = batch.slice(BATCH_OVERHEAD..total);
    let mut out = Vec::new();
    for _ in 0..h.record_count.max(0) {
        let len = get_varint(&mut buf)?;
        if len < 0 || len as usize > buf.remaining() {
            return Err(ProtocolError::BadLength(len as i64));
        }
        let mut rec = buf.split_to(len as usize);
        let _attributes = get_i8(&mut rec)?;
        let ts_delta = get_varlong(&mut rec)?;
        let offset_delta = get_varint(&mut rec)?;
        let key = get_var_bytes(&mut rec)?;
        let value = get_var_bytes(&mut rec)?;
        let n_headers = get_varint(&mut rec)?;
        if n_headers < 0 || n_headers as usize > rec.remaining() {
            return Err(ProtocolError::BadLength(n_headers as i64));
        }
        let mut headers = Vec::with_capacity(n_headers as usize);
        for _ in 0..n_headers {
            let k = get_var_bytes(&mut rec)?.ok_or(ProtocolError::BadLength(-1))?;
            let k = String::from_utf8(k.to_vec()).map_err(|_| ProtocolError::BadString)?;
            headers.push((k, get_var_bytes(&mut rec)?));
        }
        if rec.has_remaining() {
            return Err(ProtocolError::TrailingBytes(rec.remaining()));
        }
        out.push(MockRecord {
            offset: h.base_offset + offset_delta as i64,
            timestamp: h.base_timestamp.wrapping_add(ts_delta),
            key,
            value,
            headers,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            sequence: if h.base_sequence < 0 {
                -1
            } else {
                increment_sequence(h.base_sequence, offset_delta)
            },
        });
    }
    if buf.has_remaining() {
        return Err(ProtocolError::TrailingBytes(buf.remaining()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
    }
}
