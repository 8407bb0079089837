//! [`RecordBatch`]: a batch decoded without copying, its header checked
//! (length, magic, CRC-32C), its records decoded on demand.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    attributes, be, Header, Record, DEFAULT_MAX_RECORDS_SIZE, LENGTH_OVERHEAD, MAGIC,
    MIN_RECORD_SIZE, OFF_ATTRIBUTES, OFF_CRC, OFF_LENGTH, OFF_MAGIC, RECORD_BATCH_OVERHEAD,
};
use crate::protocol::checksum::{crc32c, crc32c_concat};
use crate::protocol::compression::{self, Compression};
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::primitives::Cursor;

/// A decoded RecordBatch v2; `records` is the records section as on the wire
/// (compressed when the codec is not none), a zero-copy slice of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record (0 from a producer).
    pub base_offset: i64,
    /// Leader epoch stamped by the broker (-1 from a producer).
    pub partition_leader_epoch: i32,
    /// Magic byte, always 2.
    pub magic: i8,
    /// CRC-32C stored in the batch (checked on decode).
    pub crc: u32,
    /// Attribute bits, see [`attributes`].
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to.
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Producer id, -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, -1 without idempotence.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 without idempotence.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
    /// Records section as on the wire.
    pub records: Bytes,
}

impl RecordBatch {
    /// Decodes one batch from the front of `buf`, checking its length, magic 2
    /// and CRC-32C. On error `buf` is left as it was.
    pub fn decode(buf: &mut Bytes) -> Result<RecordBatch> {
        let b: &[u8] = buf;
        if b.len() < RECORD_BATCH_OVERHEAD {
            return Err(ProtocolError::Truncated {
                needed: RECORD_BATCH_OVERHEAD - b.len(),
            });
        }
        let length = i32::from_be_bytes(be(b, OFF_LENGTH));
        if length < LENGTH_OVERHEAD as i32 {
            return Err(ProtocolError::BadLength(length as i64));
        }
        let total = 12 + length as usize;
        if b.len() < total {
            return Err(ProtocolError::Truncated {
                needed: total - b.len(),
            });
        }
        let magic = b[OFF_MAGIC] as i8;
        if magic != MAGIC {
            return Err(ProtocolError::BadMagic(magic));
        }
        let crc = u32::from_be_bytes(be(b, OFF_CRC));
        let computed = crc32c(&b[OFF_ATTRIBUTES..total]);
        if crc != computed {
            return Err(ProtocolError::BadCrc {
                expected: crc,
                computed,
            });
        }
        let attributes = i16::from_be_bytes(be(b, OFF_ATTRIBUTES));
        if Compression::from_attributes(attributes).is_none() {
            return Err(ProtocolError::Invalid(
                "unknown compression codec in batch attributes",
            ));
        }
        let batch = RecordBatch {
            base_offset: i64::from_be_bytes(be(b, 0)),
            partition_leader_epoch: i32::from_be_bytes(be(b, 12)),
            magic,
            crc,
            attributes,
            last_offset_delta: i32::from_be_bytes(be(b, 23)),
            base_timestamp: i64::from_be_bytes(be(b, 27)),
            max_timestamp: i64::from_be_bytes(be(b, 35)),
            producer_id: i64::from_be_bytes(be(b, 43)),
            producer_epoch: i16::from_be_bytes(be(b, 51)),
            base_sequence: i32::from_be_bytes(be(b, 53)),
            record_count: i32::from_be_bytes(be(b, 57)),
            records: buf.slice(RECORD_BATCH_OVERHEAD..total),
        };
        let _ = buf.split_to(total);
        Ok(batch)
    }

    /// Decodes every batch of `bytes` (the records field of a Produce request or
    /// a Fetch response partition). A trailing partial batch is an error.
    pub fn decode_all(mut bytes: Bytes) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            out.push(Self::decode(&mut bytes)?);
        }
        Ok(out)
    }

    /// Codec of the records section.
    pub fn compression(&self) -> Compression {
        // `decode` rejects codecs 5..=7; a batch built by hand with one reads as none.
        Compression::from_attributes(self.attributes).unwrap_or(Compression::None)
    }

    /// Whether the transactional bit is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & attributes::TRANSACTIONAL != 0
    }

    /// Whether this is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & attributes::CONTROL != 0
    }

    /// Decompresses (at most [`DEFAULT_MAX_RECORDS_SIZE`] bytes) and decodes the records.
    pub fn records(&self) -> Result<Vec<Record>> {
        self.records_with_limit(DEFAULT_MAX_RECORDS_SIZE)
    }

    /// Like [`RecordBatch::records`] with an explicit bound on the decompressed size.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Vec<Record>> {
        if self.record_count < 0 {
            return Err(ProtocolError::BadLength(self.record_count as i64));
        }
        let codec = Compression::from_attributes(self.attributes).ok_or(ProtocolError::Invalid(
            "unknown compression codec in batch attributes",
        ))?;
        let data = match codec {
            Compression::None => self.records.clone(),
            c => compression::decompress(c, &self.records, max_decompressed)?,
        };
        decode_records(&data, self.record_count)
    }

    /// Appends the batch's wire form, exactly as decoded (stored CRC included).
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(RECORD_BATCH_OVERHEAD + self.records.len());
        out.put_i64(self.base_offset);
        out.put_i32((LENGTH_OVERHEAD + self.records.len()) as i32);
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(self.magic);
        out.put_u32(self.crc);
        out.put_i16(self.attributes);
        out.put_i32(self.last_offset_delta);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.record_count);
        out.put_slice(&self.records);
    }

    /// The CRC-32C the batch's current fields and records give (what `crc` should be).
    pub fn compute_crc(&self) -> u32 {
        let mut h = [0u8; RECORD_BATCH_OVERHEAD - OFF_ATTRIBUTES];
        {
            let mut w = &mut h[..];
            w.put_i16(self.attributes);
            w.put_i32(self.last_offset_delta);
            w.put_i64(self.base_timestamp);
            w.put_i64(self.max_timestamp);
            w.put_i64(self.producer_id);
            w.put_i16(self.producer_epoch);
            w.put_i32(self.base_sequence);
            w.put_i32(self.record_count);
        }
        crc32c_concat(&h, &self.records)
    }
}

/// Decodes exactly `count` records filling all of `data` (an uncompressed
/// records section); keys, values and header values are zero-copy slices of it.
pub fn decode_records(data: &Bytes, count: i32) -> Result<Vec<Record>> {
    if count < 0 || count as usize > data.len() / MIN_RECORD_SIZE {
        return Err(ProtocolError::BadLength(count as i64));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut c = Cursor::new(data, 0);
    for _ in 0..count {
        out.push(decode_record(data, &mut c)?);
    }
    if c.pos() != data.len() {
        return Err(ProtocolError::TrailingBytes(data.len() - c.pos()));
    }
    Ok(out)
}

#[inline]
fn decode_record(data: &Bytes, outer: &mut Cursor<'_>) -> Result<Record> {
    let len = outer.varint()?;
    if len < 0 {
        return Err(ProtocolError::BadLength(len as i64));
    }
    let range = outer.take(len as usize)?;
    let mut c = Cursor::new(&data[..range.end], range.start);
    let attributes = c.u8()? as i8;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = nullable(&mut c)?.map(|r| data.slice(r));
    let value = nullable(&mut c)?.map(|r| data.slice(r));
    let n = c.varint()?;
    // Each header takes at least two bytes.
    if n < 0 || n as usize > (range.end - c.pos()) / 2 {
        return Err(ProtocolError::BadLength(n as i64));
    }
    let mut headers = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let klen = c.varint()?;
        if klen < 0 {
            return Err(ProtocolError::BadLength(klen as i64));
        }
        let k = c.take(klen as usize)?;
        let key = std::str::from_utf8(&data[k])
            .map_err(|_| ProtocolError::BadString)?
            .to_owned();
        let value = nullable(&mut c)?.map(|r| data.slice(r));
        headers.push(Header { key, value });
    }
    if c.pos() != range.end {
        return Err(ProtocolError::TrailingBytes(range.end - c.pos()));
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// A record field with a varint length: `Ok(None)` for -1, its byte range otherwise.
#[inline(always)]
fn nullable(c: &mut Cursor<'_>) -> Result<Option<Range<usize>>> {
    let len = c.varint()?;
    if len < 0 {
        return if len == -1 {
            Ok(None)
        } else {
            Err(ProtocolError::BadLength(len as i64))
        };
    }
    c.take(len as usize).map(Some)
}
