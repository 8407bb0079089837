//! Turning application keys and values into record bytes, modelled on the Java
//! client's `org.apache.kafka.common.serialization.Serializer`.
//!
//! A [`Serializer`] is called with the topic, the record's headers (which it may
//! extend, as Java's `serialize(topic, headers, data)` may) and the data, and
//! returns the bytes to send, or `None` for a null key or value.
//!
//! The built-ins write exactly the bytes Java's built-ins write, so records
//! produced here read back with Java's (or librdkafka's) matching deserializers:
//!
//! | Rust                  | Java                    | bytes                                  |
//! |-----------------------|-------------------------|----------------------------------------|
//! | [`BytesSerializer`]   | `ByteArraySerializer`   | the data as is                         |
//! | [`StringSerializer`]  | `StringSerializer`      | UTF-8                                  |
//! | [`ShortSerializer`]   | `ShortSerializer`       | `i16`, 2 bytes big-endian              |
//! | [`IntegerSerializer`] | `IntegerSerializer`     | `i32`, 4 bytes big-endian              |
//! | [`LongSerializer`]    | `LongSerializer`        | `i64`, 8 bytes big-endian              |
//! | [`FloatSerializer`]   | `FloatSerializer`       | IEEE-754 `f32` bits, big-endian        |
//! | [`DoubleSerializer`]  | `DoubleSerializer`      | IEEE-754 `f64` bits, big-endian        |
//! | [`BooleanSerializer`] | `BooleanSerializer`     | one byte, `01` or `00`                 |
//! | [`UuidSerializer`]    | `UUIDSerializer`        | the 36-character lowercase text, UTF-8 |
//! | [`VoidSerializer`]    | `VoidSerializer`        | always null                            |
//!
//! Every built-in also serializes `Option<T>` for each `T` it takes, `None`
//! becoming a null key or value (Java's serializers map a Java `null` to null).
//!
//! A closure `Fn(&str, &T) -> Result<Option<Bytes>, SerializeError>` (topic and
//! data) is a serializer too. `JsonSerializer` (feature `json`) writes any
//! `serde::Serialize` type as JSON; the `avro` module (feature `avro`) writes
//! Avro in the Confluent Schema Registry wire format and reads it back with
//! schema evolution.

use std::error::Error as StdError;

use bytes::Bytes;

/// Implements `Serializer<Option<T>>` for `$ser` for every `T` it serializes:
/// `None` is a null key or value (the built-ins and the Avro serializer).
macro_rules! null_for_none {
    ($ser:ty) => {
        impl<T> $crate::serialize::Serializer<Option<T>> for $ser
        where
            $ser: $crate::serialize::Serializer<T>,
        {
            fn serialize(
                &self,
                topic: &str,
                headers: &mut Vec<$crate::serialize::Header>,
                data: &Option<T>,
            ) -> Result<Option<::bytes::Bytes>, $crate::serialize::SerializeError> {
                match data {
                    Some(d) => {
                        $crate::serialize::Serializer::<T>::serialize(self, topic, headers, d)
                    }
                    None => Ok(None),
                }
            }
        }
    };
}

mod builtin;
#[cfg(feature = "json")]
mod json;

#[cfg(feature = "avro")]
pub mod avro;

pub use builtin::{
    BooleanSerializer, BytesSerializer, DoubleSerializer, FloatSerializer, IntegerSerializer,
    LongSerializer, ShortSerializer, StringSerializer, UuidSerializer, VoidSerializer,
};
#[cfg(feature = "json")]
pub use json::JsonSerializer;

pub use crate::protocol::record::Header;

/// Serializes a key or a value of type `T` for a topic.
///
/// Implementations must be cheap to share between threads: the producer holds
/// one serializer for all records of a type.
pub trait Serializer<T: ?Sized>: Send + Sync {
    /// Serializes `data` for `topic`.
    ///
    /// `headers` are the record's headers so far; a serializer may add to them
    /// (for example a schema id or a content type). `Ok(None)` is a null key or
    /// value.
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: &T,
    ) -> Result<Option<Bytes>, SerializeError>;
}

/// Any `Fn(&str, &T) -> Result<Option<Bytes>, SerializeError>` (topic and data)
/// is a serializer, for one-off formats that need no headers.
impl<T, F> Serializer<T> for F
where
    T: ?Sized,
    F: Fn(&str, &T) -> Result<Option<Bytes>, SerializeError> + Send + Sync,
{
    fn serialize(
        &self,
        topic: &str,
        _headers: &mut Vec<Header>,
        data: &T,
    ) -> Result<Option<Bytes>, SerializeError> {
        self(topic, data)
    }
}

/// Why a key or value could not be serialized (or, for the Avro deserializer,
/// deserialized).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerializeError {
    /// The data does not match the Avro schema it is written (or read) with.
    #[error("topic {topic}: data does not match Avro schema {schema}: {reason}")]
    SchemaMismatch {
        /// The topic the record is for.
        topic: String,
        /// The full name of the schema (or its type, when it has no name).
        schema: String,
        /// What does not match, and where.
        reason: String,
    },
    /// Any other Avro failure: a bad schema, a datum that cannot be decoded.
    #[error("topic {topic}: Avro: {message}")]
    Avro {
        /// The topic the record is for.
        topic: String,
        /// What went wrong.
        message: String,
        /// The Avro library's error, when there is one.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// JSON serialization failed.
    #[error("topic {topic}: JSON: {source}")]
    Json {
        /// The topic the record is for.
        topic: String,
        /// The JSON library's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The schema registry refused or failed a request.
    #[error("schema registry: {context}: {message}")]
    SchemaRegistry {
        /// What was asked: a subject, a schema id.
        context: String,
        /// What went wrong.
        message: String,
    },
    /// Bytes being read are not in the expected framing (for example no
    /// Confluent magic byte, or too short).
    #[error("topic {topic}: malformed data: {message}")]
    Malformed {
        /// The topic the record is from.
        topic: String,
        /// What is wrong with the bytes.
        message: String,
    },
    /// A user serializer's own error.
    #[error("{0}")]
    Custom(Box<dyn StdError + Send + Sync>),
}

impl SerializeError {
    /// Wraps any error as [`SerializeError::Custom`].
    pub fn custom<E: Into<Box<dyn StdError + Send + Sync>>>(error: E) -> Self {
        SerializeError::Custom(error.into())
    }

    /// The topic the error is about, when it names one.
    pub fn topic(&self) -> Option<&str> {
        match self {
            SerializeError::SchemaMismatch { topic, .. }
            | SerializeError::Avro { topic, .. }
            | SerializeError::Json { topic, .. }
            | SerializeError::Malformed { topic, .. } => Some(topic),
            SerializeError::SchemaRegistry { .. } | SerializeError::Custom(_) => None,
        }
    }
}
