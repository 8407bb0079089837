//! The record codec's encoding side: exact record sizes, and one record
//! written with a handful of copies.

use bytes::{BufMut, BytesMut};

use super::{Header, Record};
use crate::protocol::primitives::{varint_len, varlong_len, zigzag32, zigzag64};

impl Record {
    /// Appends this record's wire form to `out`; returns the bytes written.
    pub fn encode(&self, out: &mut BytesMut) -> usize {
        encode_record(
            out,
            self.body_len(),
            self.attributes,
            self.timestamp_delta,
            self.offset_delta,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }

    /// Bytes [`Record::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        record_len(self.body_len())
    }

    fn body_len(&self) -> usize {
        body_len(
            self.timestamp_delta,
            self.offset_delta,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }
}

#[inline(always)]
fn nullable_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline]
fn headers_len(headers: &[Header]) -> usize {
    let mut n = varint_len(headers.len() as i32);
    for h in headers {
        n += varint_len(h.key.len() as i32) + h.key.len() + nullable_len(h.value.as_deref());
    }
    n
}

/// Bytes of a record after its length varint.
#[inline(always)]
pub(super) fn body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let h = if headers.is_empty() {
        1
    } else {
        headers_len(headers)
    };
    1 + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + h
}

/// Bytes of a record whose body is `body` bytes: the length varint and the body.
#[inline(always)]
pub(super) fn record_len(body: usize) -> usize {
    varint_len(body as i32) + body
}

/// Writes `v` as an unsigned LEB128 varint into `b` at `n`; returns the new end.
///
/// Indices are masked to the array size so that no bounds check is emitted;
/// callers never write more than 32 bytes before flushing (at most 26 here).
#[inline(always)]
fn scratch_uvarint(b: &mut [u8; 32], mut n: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        b[n & 31] = v as u8 | 0x80;
        n += 1;
        v >>= 7;
    }
    b[n & 31] = v as u8;
    n + 1
}

#[inline(always)]
fn scratch_varint(b: &mut [u8; 32], n: usize, v: i32) -> usize {
    scratch_uvarint(b, n, u64::from(zigzag32(v)))
}

#[inline(always)]
fn scratch_varlong(b: &mut [u8; 32], n: usize, v: i64) -> usize {
    scratch_uvarint(b, n, zigzag64(v))
}

#[inline(always)]
fn scratch_len(b: &mut [u8; 32], n: usize, field: Option<&[u8]>) -> usize {
    scratch_varint(b, n, field.map_or(-1, |f| f.len() as i32))
}

/// Writes one record whose [`body_len`] is `body`, taken from the caller, who
/// needs it anyway (for a limit check, or for the size it returns); returns
/// the bytes written. The varints around key and value go through a stack
/// buffer so that a record costs a handful of `extend_from_slice` calls.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn encode_record(
    out: &mut BytesMut,
    body: usize,
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let total = record_len(body);
    let mut s = [0u8; 32];
    let mut n = scratch_varint(&mut s, 0, body as i32);
    s[n & 31] = attributes as u8;
    n = scratch_varlong(&mut s, n + 1, timestamp_delta);
    n = scratch_varint(&mut s, n, offset_delta);
    n = scratch_len(&mut s, n, key);
    if let Some(k) = key {
        out.extend_from_slice(&s[..n]);
        out.extend_from_slice(k);
        n = 0;
    }
    n = scratch_len(&mut s, n, value);
    out.extend_from_slice(&s[..n]);
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    if headers.is_empty() {
        out.put_u8(0);
    } else {
        encode_headers(out, headers);
    }
    total
}

#[inline(never)]
fn encode_headers(out: &mut BytesMut, headers: &[Header]) {
    let mut s = [0u8; 32];
    let n = scratch_varint(&mut s, 0, headers.len() as i32);
    out.extend_from_slice(&s[..n]);
    for h in headers {
        let n = scratch_varint(&mut s, 0, h.key.len() as i32);
        out.extend_from_slice(&s[..n]);
        out.extend_from_slice(h.key.as_bytes());
        let n = scratch_len(&mut s, 0, h.value.as_deref());
        out.extend_from_slice(&s[..n]);
        if let Some(v) = &h.value {
            out.extend_from_slice(v);
        }
    }
}
