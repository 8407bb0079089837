//! The schema registry interface and an in-memory registry.

use std::collections::BTreeMap;
use std::sync::Mutex;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use crate::serialize::SerializeError;

/// A Confluent-style schema registry: schemas get global ids, and subjects
/// (by default `<topic>-value` / `<topic>-key`) hold versions of a schema.
///
/// The methods are blocking and take `&self`, so an HTTP client for a real
/// Schema Registry can implement this trait (with its own caching) without
/// changing the serializers that use it.
pub trait SchemaRegistry: Send + Sync {
    /// Registers `schema` under `subject` and returns its global id. Registering
    /// a schema that is already registered (under any subject) returns the
    /// same id; registering it again under the same subject adds no version.
    fn register(&self, subject: &str, schema: &Schema) -> Result<u32, SerializeError>;

    /// The schema with the global id `id`.
    fn schema_by_id(&self, id: u32) -> Result<Schema, SerializeError>;

    /// The id and schema of the newest version registered under `subject`.
    fn latest(&self, subject: &str) -> Result<(u32, Schema), SerializeError>;
}

/// Which new schemas a subject accepts, checked against its latest version as
/// the Schema Registry does (its non-transitive levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compatibility {
    /// Any schema is accepted.
    None,
    /// Readers using the new schema can read data written with the latest one
    /// (fields may be removed, or added with a default). The Schema
    /// Registry's default.
    #[default]
    Backward,
    /// Readers using the latest schema can read data written with the new one.
    Forward,
    /// Both [`Compatibility::Backward`] and [`Compatibility::Forward`].
    Full,
}

#[derive(Debug, Default)]
struct Inner {
    /// Schemas by id - 1, with the full JSON text they are keyed by.
    schemas: Vec<Schema>,
    /// Full JSON text (docs and defaults included) -> id.
    ids: BTreeMap<String, u32>,
    /// Subject -> ids of its versions, version 1 first.
    subjects: BTreeMap<String, Vec<u32>>,
}

/// A schema registry held in memory, for tests, examples and applications
/// that own all their schemas.
///
/// Ids start at 1 and are global: the same schema gets the same id under
/// every subject. Schemas are the same when their full JSON form is (so two
/// schemas differing only in a field default are different schemas, because
/// a default changes how data is read). New versions of a subject are checked
/// against its latest version with a [`Compatibility`] level, `Backward` by
/// default, as the Schema Registry does.
#[derive(Debug, Default)]
pub struct InMemorySchemaRegistry {
    compatibility: Compatibility,
    inner: Mutex<Inner>,
}

impl InMemorySchemaRegistry {
    /// An empty registry checking `Backward` compatibility.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry checking `compatibility` for new versions.
    pub fn with_compatibility(compatibility: Compatibility) -> Self {
        InMemorySchemaRegistry {
            compatibility,
            inner: Mutex::default(),
        }
    }

    /// The subjects registered so far, in name order.
    pub fn subjects(&self) -> Vec<String> {
        self.lock().subjects.keys().cloned().collect()
    }

    /// The schema ids of `subject`'s versions, version 1 first (empty for an
    /// unknown subject).
    pub fn versions(&self, subject: &str) -> Vec<u32> {
        self.lock()
            .subjects
            .get(subject)
            .cloned()
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated:
        // every update is a push or insert after all checks.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The text a schema is identified by: its full JSON form.
pub(crate) fn schema_key(schema: &Schema) -> Result<String, String> {
    serde_json::to_string(schema).map_err(|e| e.to_string())
}

fn check(
    level: Compatibility,
    latest: &Schema,
    new: &Schema,
    subject: &str,
) -> Result<(), SerializeError> {
    let backward = || SchemaCompatibility::can_read(latest, new);
    let forward = || SchemaCompatibility::can_read(new, latest);
    let result = match level {
        Compatibility::None => Ok(()),
        Compatibility::Backward => backward().map(drop),
        Compatibility::Forward => forward().map(drop),
        Compatibility::Full => backward().and_then(|_| forward()).map(drop),
    };
    result.map_err(|e| SerializeError::SchemaRegistry {
        context: format!("subject {subject}"),
        message: format!("schema is not {level:?} compatible with the latest version: {e}"),
    })
}

impl SchemaRegistry for InMemorySchemaRegistry {
    fn register(&self, subject: &str, schema: &Schema) -> Result<u32, SerializeError> {
        let key = schema_key(schema).map_err(|message| SerializeError::SchemaRegistry {
            context: format!("subject {subject}"),
            message,
        })?;
        let mut inner = self.lock();
        let existing = inner.ids.get(&key).copied();
        if let Some(id) = existing {
            if inner
                .subjects
                .get(subject)
                .is_some_and(|versions| versions.contains(&id))
            {
                return Ok(id);
            }
        }
        if let Some(&latest) = inner.subjects.get(subject).and_then(|v| v.last()) {
            check(
                self.compatibility,
                &inner.schemas[latest as usize - 1],
                schema,
                subject,
            )?;
        }
        let id = match existing {
            Some(id) => id,
            None => {
                let id = u32::try_from(inner.schemas.len() + 1).map_err(|_| {
                    SerializeError::SchemaRegistry {
                        context: format!("subject {subject}"),
                        message: "registry is full".to_owned(),
                    }
                })?;
                inner.schemas.push(schema.clone());
                inner.ids.insert(key, id);
                id
            }
        };
        inner
            .subjects
            .entry(subject.to_owned())
            .or_default()
            .push(id);
        Ok(id)
    }

    fn schema_by_id(&self, id: u32) -> Result<Schema, SerializeError> {
        let inner = self.lock();
        id.checked_sub(1)
            .and_then(|i| inner.schemas.get(i as usize))
            .cloned()
            .ok_or_else(|| SerializeError::SchemaRegistry {
                context: format!("schema id {id}"),
                message: "schema not found".to_owned(),
            })
    }

    fn latest(&self, subject: &str) -> Result<(u32, Schema), SerializeError> {
        let inner = self.lock();
        let id = inner
            .subjects
            .get(subject)
            .and_then(|v| v.last())
            .copied()
            .ok_or_else(|| SerializeError::SchemaRegistry {
                context: format!("subject {subject}"),
                message: "subject not found".to_owned(),
            })?;
        Ok((id, inner.schemas[id as usize - 1].clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Schema {
        Schema::parse_str(s).unwrap()
    }

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
        {"name":"b","type":"string","default":"x"}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
        {"name":"b","type":"string"}]}"#;

    #[test]
    fn ids_are_global_and_stable() {
        let r = InMemorySchemaRegistry::new();
        assert_eq!(r.register("t-value", &parse(V1)).unwrap(), 1);
        assert_eq!(r.register("t-value", &parse(V1)).unwrap(), 1);
        assert_eq!(r.register("u-value", &parse(V1)).unwrap(), 1);
        assert_eq!(r.register("t-value", &parse(V2)).unwrap(), 2);
        assert_eq!(r.versions("t-value"), vec![1, 2]);
        assert_eq!(r.versions("u-value"), vec![1]);
        assert_eq!(
            r.subjects(),
            vec!["t-value".to_owned(), "u-value".to_owned()]
        );
        let (id, latest) = r.latest("t-value").unwrap();
        assert_eq!(id, 2);
        assert_eq!(latest.canonical_form(), parse(V2).canonical_form());
        assert_eq!(
            r.schema_by_id(1).unwrap().canonical_form(),
            parse(V1).canonical_form()
        );
    }

    #[test]
    fn unknown_ids_and_subjects_are_errors() {
        let r = InMemorySchemaRegistry::new();
        assert!(matches!(
            r.schema_by_id(0),
            Err(SerializeError::SchemaRegistry { .. })
        ));
        assert!(matches!(
            r.schema_by_id(1),
            Err(SerializeError::SchemaRegistry { .. })
        ));
        let e = r.latest("nope-value").unwrap_err();
        assert!(e.to_string().contains("nope-value"), "{e}");
    }

    #[test]
    fn backward_compatibility_is_checked_against_latest() {
        let r = InMemorySchemaRegistry::new();
        r.register("t-value", &parse(V1)).unwrap();
        // A new field without a default cannot read old data.
        let e = r.register("t-value", &parse(V2_NO_DEFAULT)).unwrap_err();
        assert!(e.to_string().contains("Backward"), "{e}");
        assert_eq!(r.versions("t-value"), vec![1]);
        // Nothing was assigned for the refused schema.
        assert!(r.schema_by_id(2).is_err());

        let none = InMemorySchemaRegistry::with_compatibility(Compatibility::None);
        none.register("t-value", &parse(V1)).unwrap();
        assert_eq!(none.register("t-value", &parse(V2_NO_DEFAULT)).unwrap(), 2);
    }

    #[test]
    fn defaults_make_schemas_distinct() {
        let r = InMemorySchemaRegistry::with_compatibility(Compatibility::None);
        let a = r.register("s", &parse(V2)).unwrap();
        let b = r.register("s", &parse(V2_NO_DEFAULT)).unwrap();
        assert_ne!(a, b);
    }
}
