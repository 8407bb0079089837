//! The request and response bodies a producer needs (transactions included),
//! and Fetch and ListOffsets
//! to read records back, byte-exact to Kafka's JSON message specs
//! (`clients/src/main/resources/common/message/*.json`).
//!
//! Conventions shared by every message here:
//! - One Rust struct per JSON struct, fields in Kafka's order, named in snake_case.
//! - Error codes stay raw `i16` so that codes unknown to
//!   [`ErrorCode`](crate::protocol::error_code::ErrorCode) survive a round trip.
//! - `Default` gives Kafka's defaults (`-1` epochs, `null` strings, ...).
//! - Encoding a field that the version does not carry: an *ignorable* field is
//!   silently left out; a non-ignorable field with a non-default value is an
//!   `Invalid` error, as Kafka's generated code does. A null in a version where
//!   the field is not nullable is an error too.
//! - Flexible versions: known tagged fields decode into typed fields and are
//!   written only when they differ from their default; unknown tags are kept in
//!   `tagged_fields` and re-emitted merged by tag.
//! - Decoding never panics and allocates no more than the input justifies.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod api_versions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod txn_offset_commit;

pub use api_versions::{negotiate, NegotiatedVersions};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{ProtocolError, Result};
use super::primitives::{
    get_array, get_i32, get_tagged_fields, put_array_len, put_nullable_string, put_tagged_fields,
    TaggedFields,
};

/// Writes a string, failing when it is longer than Kafka allows (32767 bytes).
pub(crate) fn put_str(buf: &mut BytesMut, s: &str, flexible: bool) -> Result<()> {
    put_nstr(buf, Some(s), flexible)
}

/// Writes a nullable string, failing when it is longer than Kafka allows (32767 bytes).
pub(crate) fn put_nstr(buf: &mut BytesMut, s: Option<&str>, flexible: bool) -> Result<()> {
    put_nullable_string(buf, s, flexible)
}

/// Writes a string that is nullable only in some versions.
pub(crate) fn put_nstr_in(
    buf: &mut BytesMut,
    s: Option<&str>,
    flexible: bool,
    nullable: bool,
    what: &'static str,
) -> Result<()> {
    if s.is_none() && !nullable {
        return Err(ProtocolError::Invalid(what));
    }
    put_nstr(buf, s, flexible)
}

/// Writes an array whose elements may fail to encode.
pub(crate) fn put_arr<T>(
    buf: &mut BytesMut,
    items: &[T],
    flexible: bool,
    mut f: impl FnMut(&mut BytesMut, &T) -> Result<()>,
) -> Result<()> {
    if items.len() > i32::MAX as usize {
        return Err(ProtocolError::Invalid("array longer than i32::MAX"));
    }
    put_array_len(buf, Some(items.len()), flexible);
    for it in items {
        f(buf, it)?;
    }
    Ok(())
}

/// Writes an `[]int32` array.
pub(crate) fn put_i32_arr(buf: &mut BytesMut, items: &[i32], flexible: bool) -> Result<()> {
    put_arr(buf, items, flexible, |b, v| {
        b.put_i32(*v);
        Ok(())
    })
}

/// Reads an `[]int32` array.
pub(crate) fn get_i32_arr(buf: &mut Bytes, flexible: bool) -> Result<Vec<i32>> {
    get_array(buf, flexible, get_i32)
}

/// Fails with `Invalid(what)` when a non-ignorable field absent from the
/// version holds a value other than its default.
pub(crate) fn absent<T: PartialEq>(value: &T, default: &T, what: &'static str) -> Result<()> {
    if value == default {
        Ok(())
    } else {
        Err(ProtocolError::Invalid(what))
    }
}

/// Writes a tagged-field section: `known` (tag order, already encoded) merged
/// with the unknown fields, which must not reuse a known tag.
pub(crate) fn put_tagged(
    buf: &mut BytesMut,
    known: &[(u32, BytesMut)],
    unknown: &TaggedFields,
) -> Result<()> {
    if unknown
        .0
        .iter()
        .any(|(t, _)| known.iter().any(|(k, _)| k == t))
    {
        return Err(ProtocolError::Invalid(
            "unknown tagged field reuses a known tag",
        ));
    }
    let refs: Vec<(u32, &[u8])> = known.iter().map(|(t, b)| (*t, &b[..])).collect();
    put_tagged_fields(buf, &refs, unknown);
    Ok(())
}

/// Writes the tagged-field section in flexible versions; in other versions
/// fails when unknown tagged fields are set (they cannot be carried).
pub(crate) fn put_tags(
    buf: &mut BytesMut,
    flexible: bool,
    known: &[(u32, BytesMut)],
    unknown: &TaggedFields,
) -> Result<()> {
    if flexible {
        put_tagged(buf, known, unknown)
    } else if unknown.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::Invalid(
            "tagged fields set in a non-flexible version",
        ))
    }
}

/// Reads the tagged-field section in flexible versions (none otherwise).
pub(crate) fn get_tags(
    buf: &mut Bytes,
    flexible: bool,
    known: impl FnMut(u32, &mut Bytes) -> Result<bool>,
) -> Result<TaggedFields> {
    if flexible {
        get_tagged_fields(buf, known)
    } else {
        Ok(TaggedFields::default())
    }
}

/// Fails unless a known tagged field's decoder used all of the field's bytes.
pub(crate) fn tagged_done(field: &Bytes) -> Result<()> {
    if field.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::Invalid("tagged field longer than its value"))
    }
}
