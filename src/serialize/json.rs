//! JSON via serde (feature `json`).

use bytes::Bytes;

use super::{Header, SerializeError, Serializer};

/// Writes any `serde::Serialize` value as compact JSON in UTF-8, with no schema
/// and no framing (what Kafka Connect's `JsonConverter` with schemas disabled
/// reads).
///
/// A value that serializes to a bare JSON `null` (such as `Option::None` or
/// `serde_json::Value::Null`) becomes a null record, as Java's JSON
/// serializers turn a `null` into a null record, so `Option<T>` works as with
/// the other built-ins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonSerializer;

impl<T: serde::Serialize + ?Sized> Serializer<T> for JsonSerializer {
    fn serialize(
        &self,
        topic: &str,
        _headers: &mut Vec<Header>,
        data: &T,
    ) -> Result<Option<Bytes>, SerializeError> {
        let bytes = serde_json::to_vec(data).map_err(|e| SerializeError::Json {
            topic: topic.to_owned(),
            source: Box::new(e),
        })?;
        if bytes == b"null" {
            return Ok(None);
        }
        Ok(Some(Bytes::from(bytes)))
    }
}
