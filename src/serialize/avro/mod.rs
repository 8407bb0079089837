//! Avro in the Confluent Schema Registry wire format, with schema evolution
//! (feature `avro`, on the `apache-avro` crate).
//!
//! (One file of about 700 lines: the serializer and deserializer share the
//! framing, the schema cache and the resolution rules; the registry client
//! is `registry.rs`.)
//!
//! Every serialized key or value is framed as the Schema Registry's
//! serializers frame it, so Confluent's deserializers (Java, librdkafka-based
//! clients) read it:
//!
//! | bytes | content                                                   |
//! |-------|-----------------------------------------------------------|
//! | 0     | magic byte `0`                                            |
//! | 1..5  | the writer schema's registry id, 4 bytes big-endian       |
//! | 5..   | the Avro binary encoding of the datum (no container file) |
//!
//! [`AvroSerializer`] writes [`apache_avro::types::Value`]s and
//! [`AvroSerdeSerializer`] any `serde::Serialize` type, each with one writer
//! schema, which they register (once per subject, then cached) in a
//! [`SchemaRegistry`] under the subject chosen by a [`SubjectNameStrategy`]
//! (`<topic>-value` / `<topic>-key` by default), as Confluent's serializers do
//! with `auto.register.schemas=true`. Data that does not match the schema is a
//! [`SerializeError::SchemaMismatch`] naming the topic and what does not match.
//!
//! [`AvroDeserializer`] reads the frame back: it fetches the writer schema by
//! id and resolves the datum into a reader schema by Avro's schema resolution
//! rules, so data written with older or newer versions of a schema reads as
//! the reader's version (fields the reader added get their default, fields it
//! removed are dropped).
//!
//! # Schema evolution, end to end
//!
//! Version 1 of `User` has an optional `fax_number`; version 2 adds an optional
//! `email` with default `null`. Records written with either version read back
//! with the version 2 reader schema:
//!
//! ```
//! use std::sync::Arc;
//! use apache_avro::{types::Value, Schema};
//! use kafka_sansio::serialize::avro::{
//!     field_str, AvroDeserializer, AvroSerializer, InMemorySchemaRegistry, SchemaRegistry,
//! };
//! use kafka_sansio::serialize::Serializer;
//!
//! let v1 = Schema::parse_str(r#"{"type": "record", "name": "User", "fields": [
//!     {"name": "name", "type": "string"},
//!     {"name": "fax_number", "type": ["null", "string"], "default": null}]}"#)?;
//! let v2 = Schema::parse_str(r#"{"type": "record", "name": "User", "fields": [
//!     {"name": "name", "type": "string"},
//!     {"name": "fax_number", "type": ["null", "string"], "default": null},
//!     {"name": "email", "type": ["null", "string"], "default": null}]}"#)?;
//!
//! let registry = Arc::new(InMemorySchemaRegistry::new());
//! let old_app = AvroSerializer::new(registry.clone(), v1);
//! let new_app = AvroSerializer::new(registry.clone(), v2.clone());
//!
//! let mut headers = Vec::new();
//! let ann = Value::Record(vec![
//!     ("name".into(), Value::String("Ann".into())),
//!     ("fax_number".into(), Value::Union(1, Box::new(Value::String("555-0100".into())))),
//! ]);
//! let old = old_app.serialize("users", &mut headers, &ann)?.unwrap();
//! let bob = Value::Record(vec![
//!     ("name".into(), Value::String("Bob".into())),
//!     ("fax_number".into(), Value::Union(0, Box::new(Value::Null))),
//!     ("email".into(), Value::Union(1, Box::new(Value::String("bob@example.com".into())))),
//! ]);
//! let new = new_app.serialize("users", &mut headers, &bob)?.unwrap();
//! assert_eq!(registry.versions("users-value"), vec![1, 2]);
//!
//! // The consumer side reads both with the newest schema.
//! let reader = AvroDeserializer::with_reader_schema(registry.clone(), v2);
//! let (id, user) = reader.decode_with_id("users", &old)?;
//! assert_eq!((id, field_str(&user, "fax_number"), field_str(&user, "email")),
//!            (1, Some("555-0100"), None));
//! let (id, user) = reader.decode_with_id("users", &new)?;
//! assert_eq!((id, field_str(&user, "fax_number"), field_str(&user, "email")),
//!            (2, None, Some("bob@example.com")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use apache_avro::error::Details;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema, SchemaKind};
use apache_avro::writer::datum::GenericDatumWriter;
use bytes::Bytes;

use super::{Header, SerializeError, Serializer};

mod registry;

pub use registry::{Compatibility, InMemorySchemaRegistry, SchemaRegistry};

/// The `apache-avro` crate this module is built on, so applications use the
/// same version of its `Schema` and `Value` without depending on it.
pub use apache_avro;
pub use apache_avro::{types::Value, Schema};

/// The first byte of the Confluent wire format.
pub const MAGIC_BYTE: u8 = 0;

/// The length of the frame before the Avro datum: magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// Frames an Avro binary datum written with schema `id` in the Confluent wire
/// format.
pub fn frame(id: u32, datum: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    Bytes::from(out)
}

/// Splits Confluent-framed bytes read from `topic` into the writer schema id
/// and the Avro datum.
pub fn unframe<'a>(topic: &str, data: &'a [u8]) -> Result<(u32, &'a [u8]), SerializeError> {
    let malformed = |message: String| SerializeError::Malformed {
        topic: topic.to_owned(),
        message,
    };
    if data.len() < HEADER_LEN {
        return Err(malformed(format!(
            "{} bytes is shorter than the 5-byte Schema Registry header",
            data.len()
        )));
    }
    if data[0] != MAGIC_BYTE {
        return Err(malformed(format!(
            "unknown magic byte {:#04x}, expected 0x00",
            data[0]
        )));
    }
    let id = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
    Ok((id, &data[HEADER_LEN..]))
}

/// How a serializer names the registry subject its schema is registered
/// under, as the Schema Registry serializers' `*.subject.name.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubjectNameStrategy {
    /// `<topic>-key` or `<topic>-value`: one schema (and its versions) per
    /// topic. The default.
    #[default]
    TopicName,
    /// The schema's full name, e.g. `com.example.User`: one schema across
    /// topics. Needs a named schema (record, enum or fixed).
    RecordName,
    /// `<topic>-<full name>`: several record types in one topic.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for `schema` on `topic`, for a key or a value.
    pub fn subject(
        &self,
        topic: &str,
        is_key: bool,
        schema: &Schema,
    ) -> Result<String, SerializeError> {
        let record_name = || {
            schema
                .name()
                .map(|n| n.fullname(None))
                .ok_or_else(|| SerializeError::SchemaRegistry {
                    context: format!("topic {topic}"),
                    message: format!(
                        "{self:?} strategy needs a named schema, got {:?}",
                        SchemaKind::from(schema)
                    ),
                })
        };
        Ok(match self {
            SubjectNameStrategy::TopicName => {
                format!("{topic}-{}", if is_key { "key" } else { "value" })
            }
            SubjectNameStrategy::RecordName => record_name()?,
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{}", record_name()?),
        })
    }
}

/// Writes [`apache_avro::types::Value`]s with one writer schema in the
/// Confluent wire format. For `serde::Serialize` types use
/// [`AvroSerdeSerializer`] (or [`AvroSerializer::into_serde`]).
///
/// The schema is registered on first use for each subject and its id cached;
/// data is validated against the schema before anything is registered, so a
/// record that does not match leaves the registry untouched.
pub struct AvroSerializer {
    registry: Arc<dyn SchemaRegistry>,
    schema: Schema,
    is_key: bool,
    strategy: SubjectNameStrategy,
    /// Subject -> schema id, filled on first use.
    ids: Mutex<BTreeMap<String, u32>>,
}

impl std::fmt::Debug for AvroSerializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroSerializer")
            .field("schema", &schema_label(&self.schema))
            .field("is_key", &self.is_key)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl AvroSerializer {
    /// A value serializer writing with `schema`, registering it in `registry`
    /// under `<topic>-value`.
    pub fn new(registry: Arc<dyn SchemaRegistry>, schema: Schema) -> Self {
        AvroSerializer {
            registry,
            schema,
            is_key: false,
            strategy: SubjectNameStrategy::default(),
            ids: Mutex::default(),
        }
    }

    /// Makes this a key serializer (subject `<topic>-key` with the default
    /// strategy).
    pub fn for_keys(mut self) -> Self {
        self.is_key = true;
        self
    }

    /// Chooses how subjects are named.
    pub fn subject_name_strategy(mut self, strategy: SubjectNameStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The same serializer for any `serde::Serialize` type.
    pub fn into_serde(self) -> AvroSerdeSerializer {
        AvroSerdeSerializer(self)
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Encodes `value` for `topic` in the wire format.
    pub fn encode_value(&self, topic: &str, value: &Value) -> Result<Bytes, SerializeError> {
        let writer = self.writer(topic)?;
        let mut out = vec![0u8; HEADER_LEN];
        if let Err(e) = writer.write_value_ref(&mut out, value) {
            return Err(match explain_mismatch(value, &self.schema) {
                Some(reason) => self.mismatch(topic, reason),
                None if matches!(e.details(), Details::Validation) => {
                    self.mismatch(topic, "the value is not valid for the schema".to_owned())
                }
                None => avro_error(topic, "cannot encode the value", e),
            });
        }
        self.finish(topic, out)
    }

    /// Encodes any `serde::Serialize` `data` for `topic` in the wire format,
    /// serializing it straight against the schema (so `Option` fields match
    /// unions with `null` in any position).
    pub fn encode<T: serde::Serialize + ?Sized>(
        &self,
        topic: &str,
        data: &T,
    ) -> Result<Bytes, SerializeError> {
        let writer = self.writer(topic)?;
        let mut out = vec![0u8; HEADER_LEN];
        writer
            .write_ser(&mut out, &data)
            .map_err(|e| self.mismatch(topic, e.to_string()))?;
        self.finish(topic, out)
    }

    fn writer(&self, topic: &str) -> Result<GenericDatumWriter<'_>, SerializeError> {
        GenericDatumWriter::builder(&self.schema)
            .build()
            .map_err(|e| avro_error(topic, "unusable writer schema", e))
    }

    fn mismatch(&self, topic: &str, reason: String) -> SerializeError {
        SerializeError::SchemaMismatch {
            topic: topic.to_owned(),
            schema: schema_label(&self.schema),
            reason,
        }
    }

    /// Fills in the header of `out` (which starts with `HEADER_LEN` bytes of
    /// room) with the schema id for `topic`'s subject.
    fn finish(&self, topic: &str, mut out: Vec<u8>) -> Result<Bytes, SerializeError> {
        let id = self.schema_id(topic)?;
        out[0] = MAGIC_BYTE;
        out[1..HEADER_LEN].copy_from_slice(&id.to_be_bytes());
        Ok(Bytes::from(out))
    }

    /// The schema's id under `topic`'s subject, registering it on first use.
    pub fn schema_id(&self, topic: &str) -> Result<u32, SerializeError> {
        let subject = self.strategy.subject(topic, self.is_key, &self.schema)?;
        if let Some(&id) = lock(&self.ids).get(&subject) {
            return Ok(id);
        }
        // Not under the lock: the registry may be slow (HTTP). Two threads
        // racing here both register; registering is idempotent.
        let id = self.registry.register(&subject, &self.schema)?;
        lock(&self.ids).insert(subject, id);
        Ok(id)
    }
}

impl Serializer<Value> for AvroSerializer {
    fn serialize(
        &self,
        topic: &str,
        _headers: &mut Vec<Header>,
        data: &Value,
    ) -> Result<Option<Bytes>, SerializeError> {
        self.encode_value(topic, data).map(Some)
    }
}

null_for_none!(AvroSerializer);

/// Writes any `serde::Serialize` type with one writer schema in the Confluent
/// wire format (see [`AvroSerializer`], which it wraps). A top-level `None`
/// of an `Option<T>` is a null record, as Java's serializers write `null`,
/// unless the schema itself is a union with `null`, in which case it is
/// written as the Avro null branch.
#[derive(Debug)]
pub struct AvroSerdeSerializer(AvroSerializer);

impl AvroSerdeSerializer {
    /// A value serializer writing with `schema`, registering it in `registry`
    /// under `<topic>-value`.
    pub fn new(registry: Arc<dyn SchemaRegistry>, schema: Schema) -> Self {
        AvroSerdeSerializer(AvroSerializer::new(registry, schema))
    }

    /// Makes this a key serializer (subject `<topic>-key` with the default
    /// strategy).
    pub fn for_keys(self) -> Self {
        AvroSerdeSerializer(self.0.for_keys())
    }

    /// Chooses how subjects are named.
    pub fn subject_name_strategy(self, strategy: SubjectNameStrategy) -> Self {
        AvroSerdeSerializer(self.0.subject_name_strategy(strategy))
    }

    /// The wrapped [`AvroSerializer`], for its other methods.
    pub fn inner(&self) -> &AvroSerializer {
        &self.0
    }
}

impl<T: serde::Serialize + ?Sized> Serializer<T> for AvroSerdeSerializer {
    fn serialize(
        &self,
        topic: &str,
        _headers: &mut Vec<Header>,
        data: &T,
    ) -> Result<Option<Bytes>, SerializeError> {
        match self.0.encode(topic, data) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if !matches!(self.0.schema, Schema::Union(_)) && is_none(data) => {
                drop(e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether `data` serializes as a bare `null` (an `Option::None`, a unit).
fn is_none<T: serde::Serialize + ?Sized>(data: &T) -> bool {
    match apache_avro::to_value(data) {
        Ok(Value::Null) => true,
        // How `to_value` writes `Option::None`.
        Ok(Value::Union(0, inner)) => *inner == Value::Null,
        _ => false,
    }
}

/// Reads Confluent-framed Avro: fetches the writer schema by its id from the
/// registry (once per id, then cached) and, when given a reader schema,
/// resolves the datum into it by Avro's schema resolution rules.
pub struct AvroDeserializer {
    registry: Arc<dyn SchemaRegistry>,
    reader_schema: Option<Schema>,
    /// Schema id -> writer schema, filled on first use.
    writers: Mutex<BTreeMap<u32, Arc<Schema>>>,
}

impl std::fmt::Debug for AvroDeserializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDeserializer")
            .field(
                "reader_schema",
                &self.reader_schema.as_ref().map(schema_label),
            )
            .finish_non_exhaustive()
    }
}

impl AvroDeserializer {
    /// A deserializer that returns data as it was written (in its writer
    /// schema).
    pub fn new(registry: Arc<dyn SchemaRegistry>) -> Self {
        AvroDeserializer {
            registry,
            reader_schema: None,
            writers: Mutex::default(),
        }
    }

    /// A deserializer that resolves all data into `reader_schema`, whichever
    /// (compatible) schema it was written with.
    pub fn with_reader_schema(registry: Arc<dyn SchemaRegistry>, reader_schema: Schema) -> Self {
        AvroDeserializer {
            reader_schema: Some(reader_schema),
            ..AvroDeserializer::new(registry)
        }
    }

    /// Reads a key or value from `topic`; a null one is `None`.
    pub fn deserialize(
        &self,
        topic: &str,
        data: Option<&[u8]>,
    ) -> Result<Option<Value>, SerializeError> {
        data.map(|d| self.decode(topic, d)).transpose()
    }

    /// Reads a framed datum from `topic`.
    pub fn decode(&self, topic: &str, data: &[u8]) -> Result<Value, SerializeError> {
        self.decode_with_id(topic, data).map(|(_, v)| v)
    }

    /// Reads a framed datum from `topic` into a `serde::Deserialize` type.
    pub fn decode_into<T: serde::de::DeserializeOwned>(
        &self,
        topic: &str,
        data: &[u8],
    ) -> Result<T, SerializeError> {
        let value = self.decode(topic, data)?;
        apache_avro::from_value(&value).map_err(|e| avro_error(topic, "cannot convert datum", e))
    }

    /// Reads a framed datum from `topic`, returning also the id of the schema
    /// it was written with.
    pub fn decode_with_id(&self, topic: &str, data: &[u8]) -> Result<(u32, Value), SerializeError> {
        let (id, mut datum) = unframe(topic, data)?;
        let writer_schema = self.writer_schema(id)?;
        let value = GenericDatumReader::builder(&writer_schema)
            .build()
            .and_then(|r| r.read_value(&mut datum))
            .map_err(|e| {
                avro_error(
                    topic,
                    &format!("cannot decode datum written with schema id {id}"),
                    e,
                )
            })?;
        if !datum.is_empty() {
            return Err(SerializeError::Malformed {
                topic: topic.to_owned(),
                message: format!(
                    "{} bytes left after the datum written with schema id {id}",
                    datum.len()
                ),
            });
        }
        let Some(reader_schema) = &self.reader_schema else {
            return Ok((id, value));
        };
        let value = ResolvedSchema::try_from(reader_schema)
            .and_then(|names| value.resolve_with_names(reader_schema, names.get_names()))
            .map_err(|e| SerializeError::SchemaMismatch {
                topic: topic.to_owned(),
                schema: schema_label(reader_schema),
                reason: format!("data written with schema id {id} cannot be read with it: {e}"),
            })?;
        Ok((id, value))
    }

    fn writer_schema(&self, id: u32) -> Result<Arc<Schema>, SerializeError> {
        if let Some(schema) = lock(&self.writers).get(&id) {
            return Ok(schema.clone());
        }
        let schema = Arc::new(self.registry.schema_by_id(id)?);
        lock(&self.writers).insert(id, schema.clone());
        Ok(schema)
    }
}

/// The value of field `name` of a record, with a union around it unwrapped
/// (`None` when the value is not a record or has no such field).
pub fn field<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    let Value::Record(fields) = record else {
        return None;
    };
    let value = fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)?;
    Some(match value {
        Value::Union(_, inner) => inner,
        other => other,
    })
}

/// The string in field `name` of a record (through a union): `None` when it
/// is null, absent or not a string. Handy for optional string fields such as
/// `["null", "string"]`.
pub fn field_str<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    match field(record, name)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps behind these locks are caches updated by single inserts.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn avro_error(topic: &str, what: &str, e: apache_avro::Error) -> SerializeError {
    SerializeError::Avro {
        topic: topic.to_owned(),
        message: format!("{what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// A schema's full name, or its kind when it has none.
fn schema_label(schema: &Schema) -> String {
    match schema.name() {
        Some(name) => name.fullname(None),
        None => format!("{:?}", SchemaKind::from(schema)).to_lowercase(),
    }
}

/// Explains where `value` does not match `schema`: the path of the first
/// mismatch (`.field`, `[index]`, `["key"]`) and what was expected there.
/// `None` when no mismatch is found by these (structural) checks.
fn explain_mismatch(value: &Value, schema: &Schema) -> Option<String> {
    let resolved = ResolvedSchema::try_from(schema).ok()?;
    let names: BTreeMap<String, &Schema> = resolved
        .get_names()
        .iter()
        .map(|(n, s)| (n.fullname(None), *s))
        .collect();
    let mut path = String::new();
    explain(value, schema, &names, None, &mut path).map(|reason| {
        if path.is_empty() {
            reason
        } else {
            format!("at {path}: {reason}")
        }
    })
}

fn short(value: &Value) -> String {
    let mut s = format!("{value:?}");
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

fn explain(
    value: &Value,
    schema: &Schema,
    names: &BTreeMap<String, &Schema>,
    namespace: Option<&str>,
    path: &mut String,
) -> Option<String> {
    let expected = |what: &str| Some(format!("expected {what}, got {}", short(value)));
    match schema {
        Schema::Ref { name } => {
            let full = name.fullname(namespace);
            let target = names.get(&full)?;
            explain(value, target, names, namespace_of(name), path)
        }
        Schema::Record(record) => {
            let ns = namespace_of(&record.name).or(namespace);
            let fields: Vec<(&str, &Value)> = match value {
                Value::Record(fields) => fields.iter().map(|(n, v)| (n.as_str(), v)).collect(),
                Value::Map(map) => map.iter().map(|(n, v)| (n.as_str(), v)).collect(),
                _ => return expected(&format!("record {}", record.name.fullname(None))),
            };
            for (name, _) in &fields {
                if !record.fields.iter().any(|f| f.name == *name) {
                    return Some(format!(
                        "field `{name}` is not in record {}",
                        record.name.fullname(None)
                    ));
                }
            }
            for field in &record.fields {
                let at = path.len();
                path.push('.');
                path.push_str(&field.name);
                match fields.iter().find(|(n, _)| *n == field.name) {
                    Some((_, v)) => {
                        if let Some(reason) = explain(v, &field.schema, names, ns, path) {
                            return Some(reason);
                        }
                    }
                    // The encoder needs every field, even those with a
                    // default (a default is for readers).
                    None => return Some("missing field".to_owned()),
                }
                path.truncate(at);
            }
            None
        }
        Schema::Union(union) => {
            let variants = union.variants();
            if let Value::Union(index, inner) = value {
                let Some(variant) = variants.get(*index as usize) else {
                    return Some(format!(
                        "union branch {index} does not exist, the union has {}",
                        variants.len()
                    ));
                };
                return explain(inner, variant, names, namespace, path);
            }
            let at = path.len();
            let some_branch_matches = variants.iter().any(|variant| {
                let reason = explain(value, variant, names, namespace, path);
                path.truncate(at);
                reason.is_none()
            });
            if some_branch_matches {
                return None;
            }
            let kinds: Vec<String> = variants.iter().map(schema_label).collect();
            expected(&format!("one of the union branches {kinds:?}"))
        }
        Schema::Array(array) => {
            let Value::Array(items) = value else {
                return expected("an array");
            };
            for (i, item) in items.iter().enumerate() {
                let at = path.len();
                path.push_str(&format!("[{i}]"));
                if let Some(reason) = explain(item, &array.items, names, namespace, path) {
                    return Some(reason);
                }
                path.truncate(at);
            }
            None
        }
        Schema::Map(map) => {
            let Value::Map(entries) = value else {
                return expected("a map");
            };
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            for key in keys {
                let at = path.len();
                path.push_str(&format!("[{key:?}]"));
                if let Some(reason) = explain(&entries[key], &map.types, names, namespace, path) {
                    return Some(reason);
                }
                path.truncate(at);
            }
            None
        }
        Schema::Enum(e) => match value {
            Value::Enum(_, symbol) | Value::String(symbol) if e.symbols.contains(symbol) => None,
            Value::Enum(_, symbol) | Value::String(symbol) => Some(format!(
                "`{symbol}` is not a symbol of enum {} {:?}",
                e.name.fullname(None),
                e.symbols
            )),
            _ => expected(&format!("enum {}", e.name.fullname(None))),
        },
        Schema::Fixed(f) => match value {
            Value::Fixed(n, _) if *n == f.size => None,
            Value::Bytes(b) if b.len() == f.size => None,
            _ => expected(&format!(
                "{} bytes (fixed {})",
                f.size,
                f.name.fullname(None)
            )),
        },
        Schema::Null => (!matches!(value, Value::Null)).then(|| expected("null"))?,
        Schema::Boolean => (!matches!(value, Value::Boolean(_))).then(|| expected("a boolean"))?,
        Schema::Int => (!matches!(value, Value::Int(_))).then(|| expected("an int"))?,
        Schema::Long => {
            (!matches!(value, Value::Long(_) | Value::Int(_))).then(|| expected("a long"))?
        }
        Schema::Float => (!matches!(value, Value::Float(_) | Value::Int(_) | Value::Long(_)))
            .then(|| expected("a float"))?,
        Schema::Double => (!matches!(
            value,
            Value::Double(_) | Value::Float(_) | Value::Int(_) | Value::Long(_)
        ))
        .then(|| expected("a double"))?,
        Schema::Bytes => (!matches!(value, Value::Bytes(_))).then(|| expected("bytes"))?,
        Schema::String => (!matches!(value, Value::String(_))).then(|| expected("a string"))?,
        // Logical types: leave the verdict to the library's own validation.
        _ => None,
    }
}

fn namespace_of(name: &Name) -> Option<&str> {
    name.namespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(s: &str) -> Schema {
        Schema::parse_str(s).unwrap()
    }

    #[test]
    fn frame_and_unframe() {
        let b = frame(0x0102_0304, &[9, 8]);
        assert_eq!(&b[..], &[0, 1, 2, 3, 4, 9, 8]);
        assert_eq!(unframe("t", &b).unwrap(), (0x0102_0304, &[9u8, 8][..]));
        assert!(matches!(
            unframe("t", &[0, 0, 0]),
            Err(SerializeError::Malformed { .. })
        ));
        let e = unframe("t", &[1, 0, 0, 0, 1]).unwrap_err();
        assert!(e.to_string().contains("magic byte 0x01"), "{e}");
    }

    #[test]
    fn subjects() {
        let named =
            schema(r#"{"type":"record","name":"User","namespace":"com.example","fields":[]}"#);
        let s = SubjectNameStrategy::TopicName;
        assert_eq!(s.subject("t", false, &named).unwrap(), "t-value");
        assert_eq!(s.subject("t", true, &named).unwrap(), "t-key");
        let s = SubjectNameStrategy::RecordName;
        assert_eq!(s.subject("t", false, &named).unwrap(), "com.example.User");
        assert!(s.subject("t", false, &Schema::String).is_err());
        let s = SubjectNameStrategy::TopicRecordName;
        assert_eq!(s.subject("t", true, &named).unwrap(), "t-com.example.User");
    }

    #[test]
    fn explains_nested_mismatches() {
        let s = schema(
            r#"{"type":"record","name":"R","fields":[
                {"name":"tags","type":{"type":"array","items":"string"}},
                {"name":"inner","type":["null",{"type":"record","name":"I","fields":[{"name":"n","type":"long"}]}]}]}"#,
        );
        let v = Value::Record(vec![
            ("tags".into(), Value::Array(vec!["a".into(), Value::Int(1)])),
            ("inner".into(), Value::Null),
        ]);
        assert_eq!(
            explain_mismatch(&v, &s).unwrap(),
            "at .tags[1]: expected a string, got Int(1)"
        );
        let v = Value::Record(vec![
            ("tags".into(), Value::Array(vec![])),
            (
                "inner".into(),
                Value::Union(
                    1,
                    Box::new(Value::Record(vec![("n".into(), Value::String("x".into()))])),
                ),
            ),
        ]);
        assert_eq!(
            explain_mismatch(&v, &s).unwrap(),
            "at .inner.n: expected a long, got String(\"x\")"
        );
        let v = Value::Record(vec![("tags".into(), Value::Array(vec![]))]);
        assert_eq!(
            explain_mismatch(&v, &s).unwrap(),
            "at .inner: missing field"
        );
    }
}
