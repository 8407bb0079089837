//! Kafka's primitive types on `bytes`: fixed-width big-endian integers, zigzag
//! varints (records), unsigned varints (flexible versions), strings, bytes,
//! arrays and tagged fields.
//!
//! Decoders take `&mut Bytes` so that byte fields are zero-copy slices of the
//! frame. They never panic and never allocate more than the bytes actually
//! present justify, whatever a length prefix claims. Encoders take any `BufMut`.
//!
//! Functions with a `flexible: bool` argument write the compact form (unsigned
//! varint length + 1) when a message version is flexible and the classic form
//! (i16/i32 length) otherwise.
//!
//! One file of about 700 lines, 200 of them tests: every primitive with the
//! edge cases its decoder guards against, in one place.

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes};

use super::error::{ProtocolError, Result};

/// Fails with `Truncated` unless `buf` holds at least `n` more bytes.
#[inline]
pub fn need(buf: &Bytes, n: usize) -> Result<()> {
    if buf.remaining() < n {
        Err(ProtocolError::Truncated {
            needed: n - buf.remaining(),
        })
    } else {
        Ok(())
    }
}

macro_rules! fixed {
    ($name:ident, $ty:ty, $get:ident, $n:expr) => {
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        #[inline]
        pub fn $name(buf: &mut Bytes) -> Result<$ty> {
            need(buf, $n)?;
            Ok(buf.$get())
        }
    };
}

fixed!(get_i8, i8, get_i8, 1);
fixed!(get_i16, i16, get_i16, 2);
fixed!(get_i32, i32, get_i32, 4);
fixed!(get_i64, i64, get_i64, 8);
fixed!(get_u16, u16, get_u16, 2);
fixed!(get_u32, u32, get_u32, 4);
fixed!(get_f64, f64, get_f64, 8);

/// Reads a boolean (one byte, non-zero is true).
#[inline]
pub fn get_bool(buf: &mut Bytes) -> Result<bool> {
    Ok(get_i8(buf)? != 0)
}

/// Reads a UUID (16 raw bytes).
#[inline]
pub fn get_uuid(buf: &mut Bytes) -> Result<[u8; 16]> {
    need(buf, 16)?;
    let mut u = [0u8; 16];
    buf.copy_to_slice(&mut u);
    Ok(u)
}

/// A bounds-checked reader over a byte slice, by position: the one varint
/// decoder, under both the `Bytes` getters here and the records decoder
/// (which reads a records section by position, with no reference count
/// taken per field).
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `b`, at `pos`.
    #[inline(always)]
    pub(crate) fn new(b: &'a [u8], pos: usize) -> Self {
        Cursor { b, pos }
    }

    /// Position of the next byte.
    #[inline(always)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Reads one byte.
    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Result<u8> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or(ProtocolError::Truncated { needed: 1 })?;
        self.pos += 1;
        Ok(v)
    }

    /// Reads an unsigned LEB128 number of at most `max_len` bytes (bits past
    /// the 64th are dropped).
    #[inline(always)]
    pub(crate) fn leb128(&mut self, max_len: usize) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..max_len {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtocolError::BadVarint(max_len))
    }

    /// Reads a zigzag-encoded varint (32 bits).
    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<i32> {
        Ok(unzigzag32(self.leb128(5)? as u32))
    }

    /// Reads a zigzag-encoded varlong (64 bits).
    #[inline(always)]
    pub(crate) fn varlong(&mut self) -> Result<i64> {
        Ok(unzigzag64(self.leb128(10)?))
    }

    /// Skips `n` bytes; returns their range.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Result<Range<usize>> {
        let left = self.b.len() - self.pos;
        if n > left {
            return Err(ProtocolError::Truncated { needed: n - left });
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Ok(r)
    }
}

/// Zigzag encoding of an i32: small magnitudes of either sign get short varints.
#[inline(always)]
pub(crate) fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Zigzag encoding of an i64.
#[inline(always)]
pub(crate) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag32`].
#[inline(always)]
pub(crate) fn unzigzag32(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

/// Inverse of [`zigzag64`].
#[inline(always)]
pub(crate) fn unzigzag64(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Reads an unsigned LEB128 number of at most `max_len` bytes from the front of `buf`.
#[inline]
fn get_leb128(buf: &mut Bytes, max_len: usize) -> Result<u64> {
    let mut c = Cursor::new(buf, 0);
    let v = c.leb128(max_len)?;
    buf.advance(c.pos());
    Ok(v)
}

/// Reads an unsigned LEB128 varint of at most 5 bytes (bits past the 32nd are
/// dropped).
#[inline]
pub fn get_uvarint(buf: &mut Bytes) -> Result<u32> {
    get_leb128(buf, 5).map(|v| v as u32)
}

/// Reads an unsigned LEB128 varlong of at most 10 bytes (64 bits).
#[inline]
pub fn get_uvarlong(buf: &mut Bytes) -> Result<u64> {
    get_leb128(buf, 10)
}

/// Reads a zigzag-encoded signed varint (32 bits), as in record fields.
#[inline]
pub fn get_varint(buf: &mut Bytes) -> Result<i32> {
    Ok(unzigzag32(get_uvarint(buf)?))
}

/// Reads a zigzag-encoded signed varlong (64 bits), as in record fields.
#[inline]
pub fn get_varlong(buf: &mut Bytes) -> Result<i64> {
    Ok(unzigzag64(get_uvarlong(buf)?))
}

/// Writes an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(buf: &mut impl BufMut, v: u32) {
    put_uvarlong(buf, u64::from(v))
}

/// Writes an unsigned LEB128 varlong.
#[inline]
pub fn put_uvarlong(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes a zigzag-encoded signed varint.
#[inline]
pub fn put_varint(buf: &mut impl BufMut, v: i32) {
    put_uvarint(buf, zigzag32(v))
}

/// Writes a zigzag-encoded signed varlong.
#[inline]
pub fn put_varlong(buf: &mut impl BufMut, v: i64) {
    put_uvarlong(buf, zigzag64(v))
}

/// Bytes of a varint of `bits` significant bits (1..=64): one per started
/// group of 7. Equal to `bits.div_ceil(7)` there, as a multiply, an add and
/// a shift (`div_ceil` also computes a remainder): a record's size is
/// computed from five of these.
#[inline(always)]
fn groups_of_7(bits: usize) -> usize {
    (bits * 9 + 64) >> 6
}

/// Number of bytes `put_uvarint` writes for `v`.
#[inline]
pub fn uvarint_len(v: u32) -> usize {
    let bits = 32 - (v | 1).leading_zeros() as usize;
    groups_of_7(bits)
}

/// Number of bytes `put_varint` writes for `v`.
#[inline]
pub fn varint_len(v: i32) -> usize {
    uvarint_len(zigzag32(v))
}

/// Number of bytes `put_varlong` writes for `v`.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let u = zigzag64(v);
    let bits = 64 - (u | 1).leading_zeros() as usize;
    groups_of_7(bits)
}

/// The longest string, in bytes, that Kafka's protocol carries: a classic
/// string's length is an i16, and Kafka's generated code holds compact
/// strings to the same limit, on reading and on writing.
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// Reads a length prefix: i16/i32 classic or compact (uvarint, 0 = null) when
/// `flexible`. `None` is null. A non-null length larger than the remaining
/// input fails with `Truncated`, so callers may allocate it.
///
/// `wide` is false for strings only (i16 classic length); their lengths above
/// [`MAX_STRING_LEN`] fail with `BadLength`.
fn get_len(buf: &mut Bytes, flexible: bool, wide: bool) -> Result<Option<usize>> {
    let len: i64 = if flexible {
        get_uvarint(buf)? as i64 - 1
    } else if wide {
        get_i32(buf)? as i64
    } else {
        get_i16(buf)? as i64
    };
    if len < -1 {
        return Err(ProtocolError::BadLength(len));
    }
    // Only a compact string can claim more than an i16 holds. Kafka's
    // generated readers refuse it ("string field ... had invalid length"),
    // before looking at the input, so we do too: the same bytes are then an
    // error for both, whatever follows them, and a string we decode is one
    // we can encode again.
    if !wide && len > MAX_STRING_LEN as i64 {
        return Err(ProtocolError::BadLength(len));
    }
    if len == -1 {
        return Ok(None);
    }
    need(buf, len as usize)?;
    Ok(Some(len as usize))
}

fn put_len(buf: &mut impl BufMut, len: Option<usize>, flexible: bool, wide: bool) {
    match (flexible, wide, len) {
        (true, _, None) => put_uvarint(buf, 0),
        (true, _, Some(n)) => put_uvarint(buf, n as u32 + 1),
        (false, true, None) => buf.put_i32(-1),
        (false, true, Some(n)) => buf.put_i32(n as i32),
        (false, false, None) => buf.put_i16(-1),
        (false, false, Some(n)) => buf.put_i16(n as i16),
    }
}

/// Reads a nullable string (STRING/NULLABLE_STRING or COMPACT_* when `flexible`).
pub fn get_nullable_string(buf: &mut Bytes, flexible: bool) -> Result<Option<String>> {
    match get_len(buf, flexible, false)? {
        None => Ok(None),
        Some(n) => {
            let b = buf.split_to(n);
            String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| ProtocolError::BadString)
        }
    }
}

/// Reads a non-nullable string; null is reported as `BadLength(-1)`.
pub fn get_string(buf: &mut Bytes, flexible: bool) -> Result<String> {
    get_nullable_string(buf, flexible)?.ok_or(ProtocolError::BadLength(-1))
}

/// Writes a nullable string; a string longer than [`MAX_STRING_LEN`] bytes
/// fails with `Invalid` and writes nothing.
pub fn put_nullable_string(buf: &mut impl BufMut, s: Option<&str>, flexible: bool) -> Result<()> {
    // A classic length would wrap to a negative i16 and a compact one would
    // be refused by every Kafka reader: either way the frame would be wrong,
    // so refuse here, as Kafka's generated writers do.
    if s.is_some_and(|s| s.len() > MAX_STRING_LEN) {
        return Err(ProtocolError::Invalid("string longer than 32767 bytes"));
    }
    put_len(buf, s.map(str::len), flexible, false);
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a non-nullable string; see [`put_nullable_string`] for the length limit.
pub fn put_string(buf: &mut impl BufMut, s: &str, flexible: bool) -> Result<()> {
    put_nullable_string(buf, Some(s), flexible)
}

/// Reads nullable bytes (BYTES/NULLABLE_BYTES with i32 length, or COMPACT_* when `flexible`), zero-copy.
pub fn get_nullable_bytes(buf: &mut Bytes, flexible: bool) -> Result<Option<Bytes>> {
    Ok(get_len(buf, flexible, true)?.map(|n| buf.split_to(n)))
}

/// Reads non-nullable bytes; null is reported as `BadLength(-1)`.
pub fn get_bytes(buf: &mut Bytes, flexible: bool) -> Result<Bytes> {
    get_nullable_bytes(buf, flexible)?.ok_or(ProtocolError::BadLength(-1))
}

/// Writes nullable bytes.
pub fn put_nullable_bytes(buf: &mut impl BufMut, b: Option<&[u8]>, flexible: bool) {
    put_nullable_bytes_len(buf, b.map(<[u8]>::len), flexible);
    if let Some(b) = b {
        buf.put_slice(b);
    }
}

/// Writes only the length prefix of nullable bytes (`None`: null), for
/// callers that send the bytes themselves separately, uncopied.
pub fn put_nullable_bytes_len(buf: &mut impl BufMut, len: Option<usize>, flexible: bool) {
    put_len(buf, len, flexible, true);
}

/// Writes non-nullable bytes.
pub fn put_bytes(buf: &mut impl BufMut, b: &[u8], flexible: bool) {
    put_nullable_bytes(buf, Some(b), flexible)
}

/// Reads an array length (i32, or compact when `flexible`); `None` is a null array.
///
/// The length is checked against the remaining input assuming every element
/// takes at least one byte, so `Vec::with_capacity(len)` is bounded by the input.
pub fn get_array_len(buf: &mut Bytes, flexible: bool) -> Result<Option<usize>> {
    get_len(buf, flexible, true)
}

/// Writes an array length; `None` writes a null array.
pub fn put_array_len(buf: &mut impl BufMut, len: Option<usize>, flexible: bool) {
    put_len(buf, len, flexible, true)
}

/// Reads a non-nullable array, decoding each element with `f`; a null
/// array is `BadLength(-1)`.
pub fn get_array<T>(
    buf: &mut Bytes,
    flexible: bool,
    f: impl FnMut(&mut Bytes) -> Result<T>,
) -> Result<Vec<T>> {
    get_nullable_array(buf, flexible, f)?.ok_or(ProtocolError::BadLength(-1))
}

/// Reads a nullable array, decoding each element with `f`.
pub fn get_nullable_array<T>(
    buf: &mut Bytes,
    flexible: bool,
    mut f: impl FnMut(&mut Bytes) -> Result<T>,
) -> Result<Option<Vec<T>>> {
    match get_array_len(buf, flexible)? {
        None => Ok(None),
        Some(n) => {
            // get_array_len checked n against the remaining bytes (>= 1 byte
            // per element), so the allocation is bounded by the input.
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(f(buf)?);
            }
            Ok(Some(v))
        }
    }
}

/// Writes an array, encoding each element with `f`.
pub fn put_array<B: BufMut, T>(
    buf: &mut B,
    items: &[T],
    flexible: bool,
    mut f: impl FnMut(&mut B, &T),
) {
    put_array_len(buf, Some(items.len()), flexible);
    for it in items {
        f(buf, it);
    }
}

/// Writes a nullable array.
pub fn put_nullable_array<B: BufMut, T>(
    buf: &mut B,
    items: Option<&[T]>,
    flexible: bool,
    mut f: impl FnMut(&mut B, &T),
) {
    put_array_len(buf, items.map(<[T]>::len), flexible);
    for it in items.unwrap_or(&[]) {
        f(buf, it);
    }
}

/// Tagged fields of a flexible-version struct that this codec does not interpret:
/// kept in order so that re-encoding gives the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaggedFields(pub Vec<(u32, Bytes)>);

impl TaggedFields {
    /// True when there are no unknown tagged fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads a tagged-field section, handing each tag to `known`; tags for which
/// `known` returns `Ok(false)` are kept, unchanged, in the returned
/// `TaggedFields`. Decoders return `Ok(false)` for a known tag whose value is
/// its default: Kafka never writes those, but some brokers do, and keeping
/// the raw field makes re-encoding byte-exact.
///
/// `known` receives the tag and the field's bytes (exactly its declared size).
pub fn get_tagged_fields(
    buf: &mut Bytes,
    mut known: impl FnMut(u32, &mut Bytes) -> Result<bool>,
) -> Result<TaggedFields> {
    let n = get_uvarint(buf)? as usize;
    // Each tagged field takes at least two bytes (tag, size).
    need(buf, n.saturating_mul(2))?;
    let mut unknown = Vec::new();
    for _ in 0..n {
        let tag = get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        need(buf, size)?;
        let field = buf.split_to(size);
        // The decoder reads a cheap clone, so that a field it declines to
        // keep typed (unknown, or written out at its default value) is kept
        // whole and re-encoded byte for byte.
        if !known(tag, &mut field.clone())? {
            unknown.push((tag, field));
        }
    }
    Ok(TaggedFields(unknown))
}

/// Reads a tagged-field section with no known tags.
pub fn get_unknown_tagged_fields(buf: &mut Bytes) -> Result<TaggedFields> {
    get_tagged_fields(buf, |_, _| Ok(false))
}

/// Writes a tagged-field section: `known` fields (already encoded, tag order)
/// merged with `unknown` ones by ascending tag, as the spec requires.
pub fn put_tagged_fields(buf: &mut impl BufMut, known: &[(u32, &[u8])], unknown: &TaggedFields) {
    put_uvarint(buf, (known.len() + unknown.0.len()) as u32);
    let mut k = known.iter().peekable();
    let mut u = unknown.0.iter().peekable();
    loop {
        let take_known = match (k.peek(), u.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a.0 <= b.0,
        };
        let (tag, data): (u32, &[u8]) = if take_known {
            let (t, d) = k.next().expect("peeked");
            (*t, d)
        } else {
            let (t, d) = u.next().expect("peeked");
            (*t, d)
        };
        put_uvarint(buf, tag);
        put_uvarint(buf, data.len() as u32);
        buf.put_slice(data);
    }
}

/// Writes the unknown tagged fields only (no known tags).
pub fn put_unknown_tagged_fields(buf: &mut impl BufMut, unknown: &TaggedFields) {
    put_tagged_fields(buf, &[], unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use quickcheck::quickcheck;

    #[test]
    fn groups_of_7_is_div_ceil() {
        for bits in 1..=64 {
            assert_eq!(groups_of_7(bits), bits.div_ceil(7), "{bits}");
        }
        // And the lengths at every group boundary, as written.
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1] {
                let mut b = BytesMut::new();
                put_uvarlong(&mut b, v);
                assert_eq!(varlong_len(unzigzag64(v)), b.len(), "{v}");
            }
        }
    }

    #[test]
    fn varint_vectors() {
        // From the protobuf/Kafka zigzag description.
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (v, bytes) in cases {
            let mut b = BytesMut::new();
            put_varint(&mut b, *v);
            assert_eq!(&b[..], *bytes, "{v}");
            assert_eq!(varint_len(*v), bytes.len());
            let mut r = Bytes::copy_from_slice(bytes);
            assert_eq!(get_varint(&mut r).unwrap(), *v);
        }
    }

    /// The widest encodings: a fifth (tenth) byte's bits past 32 (64) are
    /// dropped, not an error.
    #[test]
    fn widest_varints_keep_their_low_bits() {
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(get_uvarint(&mut r), Ok(u32::MAX));
        let mut r = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x11]);
        assert_eq!(get_uvarint(&mut r), Ok(1 << 28));
        let mut ten = [0xffu8; 10];
        ten[9] = 0x7f;
        let mut r = Bytes::copy_from_slice(&ten);
        assert_eq!(get_uvarlong(&mut r), Ok(u64::MAX));
        let mut b = BytesMut::new();
        put_uvarint(&mut b, u32::MAX);
        assert_eq!(&b[..], &[0xff, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut r = Bytes::from_static(&[0xff; 6]);
        assert_eq!(get_uvarint(&mut r), Err(ProtocolError::BadVarint(5)));
        let mut r = Bytes::from_static(&[0x80]);
        assert!(matches!(
            get_uvarint(&mut r),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        let mut r = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(
            get_array_len(&mut r, false),
            Err(ProtocolError::Truncated {
                needed: 0x7fff_ffff - 2
            })
        );
        let mut r = Bytes::from_static(&[0xff, 0xfe]);
        assert_eq!(
            get_nullable_string(&mut r, false),
            Err(ProtocolError::BadLength(-2))
        );
    }

    /// A string's length prefix (compact or classic) followed by `n` bytes of 'a'.
    fn string_of(n: usize, flexible: bool) -> Bytes {
        let mut b = BytesMut::new();
        if flexible {
            put_uvarint(&mut b, n as u32 + 1);
        } else {
            // 32768 is written as the u16 it is; read as i16 it is negative.
            b.put_u16(n as u16);
        }
        b.put_slice(&vec![b'a'; n]);
        b.freeze()
    }

    #[test]
    fn strings_longer_than_32767_bytes_do_not_decode() {
        // Compact: the length is refused as such, bytes present or not.
        let mut r = string_of(32768, true);
        assert_eq!(
            get_string(&mut r, true),
            Err(ProtocolError::BadLength(32768))
        );
        let mut r = string_of(32768, true).slice(..3);
        assert_eq!(
            get_nullable_string(&mut r, true),
            Err(ProtocolError::BadLength(32768))
        );
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            get_nullable_string(&mut r, true),
            Err(ProtocolError::BadLength(u32::MAX as i64 - 1))
        );
        // Classic: an i16 cannot say 32768; its bytes read as -32768.
        let mut r = string_of(32768, false);
        assert_eq!(
            get_string(&mut r, false),
            Err(ProtocolError::BadLength(-32768))
        );
        let mut r = string_of(32768, false);
        assert_eq!(
            get_nullable_string(&mut r, false),
            Err(ProtocolError::BadLength(-32768))
        );
    }

    #[test]
    fn strings_of_32767_bytes_round_trip() {
        let s = "a".repeat(MAX_STRING_LEN);
        for flexible in [false, true] {
            let mut r = string_of(MAX_STRING_LEN, flexible);
            assert_eq!(get_string(&mut r, flexible).as_deref(), Ok(&s[..]));
            assert!(r.is_empty());
            let mut b = BytesMut::new();
            put_string(&mut b, &s, flexible).unwrap();
            assert_eq!(b.freeze(), string_of(MAX_STRING_LEN, flexible));
        }
    }

    #[test]
    fn strings_longer_than_32767_bytes_do_not_encode() {
        let s = "a".repeat(MAX_STRING_LEN + 1);
        for flexible in [false, true] {
            let mut b = BytesMut::new();
            let invalid = Err(ProtocolError::Invalid("string longer than 32767 bytes"));
            assert_eq!(put_string(&mut b, &s, flexible), invalid);
            assert_eq!(put_nullable_string(&mut b, Some(&s), flexible), invalid);
            assert!(b.is_empty(), "nothing written");
        }
    }

    #[test]
    fn bytes_have_no_32767_limit() {
        // Only strings are limited; BYTES lengths are i32 or a full uvarint.
        let data = vec![7u8; 40_000];
        for flexible in [false, true] {
            let mut b = BytesMut::new();
            put_bytes(&mut b, &data, flexible);
            let mut r = b.freeze();
            assert_eq!(get_bytes(&mut r, flexible).unwrap(), &data[..]);
            assert!(r.is_empty());
        }
    }

    quickcheck! {
        fn varlong_roundtrip(v: i64) -> bool {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            b.len() == varlong_len(v) && get_varlong(&mut b.freeze()).unwrap() == v
        }
        fn uvarint_roundtrip(v: u32) -> bool {
            let mut b = BytesMut::new();
            put_uvarint(&mut b, v);
            b.len() == uvarint_len(v) && get_uvarint(&mut b.freeze()).unwrap() == v
        }
        fn string_roundtrip(s: Option<String>, flexible: bool) -> bool {
            let s = s.map(|s| s.chars().take(1000).collect::<String>());
            let mut b = BytesMut::new();
            put_nullable_string(&mut b, s.as_deref(), flexible).unwrap();
            let mut r = b.freeze();
            get_nullable_string(&mut r, flexible).unwrap() == s && r.is_empty()
        }
        fn tagged_roundtrip(tags: Vec<(u16, Vec<u8>)>) -> bool {
            let mut tags: Vec<(u32, Bytes)> = tags.into_iter().map(|(t, d)| (t as u32, Bytes::from(d))).collect();
            tags.sort_by_key(|t| t.0);
            tags.dedup_by_key(|t| t.0);
            let tf = TaggedFields(tags);
            let mut b = BytesMut::new();
            put_unknown_tagged_fields(&mut b, &tf);
            let mut r = b.freeze();
            get_unknown_tagged_fields(&mut r).unwrap() == tf && r.is_empty()
        }
    }
}
