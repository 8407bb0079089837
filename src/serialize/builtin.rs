//! The serializers Kafka ships with, byte-compatible with Java's.

use bytes::Bytes;

use super::{Header, SerializeError, Serializer};

/// Writes the 36-character lowercase hyphenated form of a UUID, as Java's
/// `UUID.toString()` does.
fn uuid_text(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Implements `Serializer<$ty>` for `$ser` from a conversion to `Bytes`, and
/// `Serializer<Option<T>>` for every `T` it takes (`None` is null).
macro_rules! simple_serializer {
    ($ser:ident { $($ty:ty => |$d:ident| $body:expr;)+ }) => {
        $(
            impl Serializer<$ty> for $ser {
                fn serialize(
                    &self,
                    _topic: &str,
                    _headers: &mut Vec<Header>,
                    $d: &$ty,
                ) -> Result<Option<Bytes>, SerializeError> {
                    Ok(Some($body))
                }
            }
        )+

        null_for_none!($ser);
    };
}

/// Raw bytes as they are (Java's `ByteArraySerializer`, `BytesSerializer`,
/// `ByteBufferSerializer`). `Bytes` is passed on without a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesSerializer;

simple_serializer!(BytesSerializer {
    Bytes => |d| d.clone();
    Vec<u8> => |d| Bytes::copy_from_slice(d);
    [u8] => |d| Bytes::copy_from_slice(d);
    &[u8] => |d| Bytes::copy_from_slice(d);
});

/// Text as UTF-8 (Java's `StringSerializer` with its default encoding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringSerializer;

simple_serializer!(StringSerializer {
    str => |d| Bytes::copy_from_slice(d.as_bytes());
    String => |d| Bytes::copy_from_slice(d.as_bytes());
    &str => |d| Bytes::copy_from_slice(d.as_bytes());
});

/// `i16` as 2 bytes big-endian (Java's `ShortSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShortSerializer;

simple_serializer!(ShortSerializer {
    i16 => |d| Bytes::copy_from_slice(&d.to_be_bytes());
});

/// `i32` as 4 bytes big-endian (Java's `IntegerSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegerSerializer;

simple_serializer!(IntegerSerializer {
    i32 => |d| Bytes::copy_from_slice(&d.to_be_bytes());
});

/// `i64` as 8 bytes big-endian (Java's `LongSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LongSerializer;

simple_serializer!(LongSerializer {
    i64 => |d| Bytes::copy_from_slice(&d.to_be_bytes());
});

/// `f32` as its IEEE-754 bits, 4 bytes big-endian (Java's `FloatSerializer`,
/// which writes `Float.floatToRawIntBits`: NaN payloads are kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloatSerializer;

simple_serializer!(FloatSerializer {
    f32 => |d| Bytes::copy_from_slice(&d.to_bits().to_be_bytes());
});

/// `f64` as its IEEE-754 bits, 8 bytes big-endian (Java's `DoubleSerializer`,
/// which writes `Double.doubleToRawLongBits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoubleSerializer;

simple_serializer!(DoubleSerializer {
    f64 => |d| Bytes::copy_from_slice(&d.to_bits().to_be_bytes());
});

/// `bool` as one byte, `01` for true and `00` for false (Java's
/// `BooleanSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BooleanSerializer;

simple_serializer!(BooleanSerializer {
    bool => |d| Bytes::from_static(if *d { &[1] } else { &[0] });
});

/// A UUID as the UTF-8 bytes of its 36-character lowercase hyphenated text,
/// e.g. `123e4567-e89b-12d3-a456-426614174000` (Java's `UUIDSerializer`, which
/// writes `uuid.toString()`). Takes the UUID's 16 bytes in big-endian (RFC 4122)
/// order, or the same as a `u128`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UuidSerializer;

simple_serializer!(UuidSerializer {
    [u8; 16] => |d| Bytes::from(uuid_text(d));
    u128 => |d| Bytes::from(uuid_text(&d.to_be_bytes()));
});

/// Always null (Java's `VoidSerializer`), for topics without keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoidSerializer;

impl Serializer<()> for VoidSerializer {
    fn serialize(
        &self,
        _topic: &str,
        _headers: &mut Vec<Header>,
        _data: &(),
    ) -> Result<Option<Bytes>, SerializeError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser<T: ?Sized, S: Serializer<T>>(s: &S, data: &T) -> Option<Bytes> {
        s.serialize("t", &mut Vec::new(), data).unwrap()
    }

    #[test]
    fn uuid_text_matches_java_to_string() {
        let id: u128 = 0x123e4567_e89b_12d3_a456_426614174000;
        assert_eq!(
            ser(&UuidSerializer, &id).unwrap(),
            &b"123e4567-e89b-12d3-a456-426614174000"[..]
        );
        assert_eq!(
            ser(&UuidSerializer, &[0u8; 16]).unwrap(),
            &b"00000000-0000-0000-0000-000000000000"[..]
        );
        assert_eq!(
            ser(&UuidSerializer, &u128::MAX).unwrap(),
            &b"ffffffff-ffff-ffff-ffff-ffffffffffff"[..]
        );
    }

    #[test]
    fn option_of_option_is_null_only_at_none() {
        assert_eq!(
            ser(&IntegerSerializer, &Some(Some(1i32))).unwrap(),
            &[0, 0, 0, 1][..]
        );
        assert_eq!(ser(&IntegerSerializer, &Some(None::<i32>)), None);
    }

    #[test]
    fn bytes_are_not_copied() {
        let b = Bytes::from(vec![1u8, 2, 3]);
        let out = ser(&BytesSerializer, &b).unwrap();
        assert_eq!(out.as_ptr(), b.as_ptr());
    }
}
