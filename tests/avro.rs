//! Avro in the Confluent Schema Registry wire format, and schema evolution.
#![cfg(feature = "avro")]

use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::Schema;
use bytes::Bytes;
use kafka_sansio::serialize::avro::{
    field, field_str, frame, AvroDeserializer, AvroSerdeSerializer, AvroSerializer,
    InMemorySchemaRegistry, SchemaRegistry, SubjectNameStrategy,
};
use kafka_sansio::serialize::{SerializeError, Serializer};

const PERSON: &str = r#"{"type": "record", "name": "Person", "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}]}"#;

/// Version 1 of `User`: an optional fax number.
const USER_V1: &str = r#"{"type": "record", "name": "User", "fields": [
    {"name": "name", "type": "string"},
    {"name": "fax_number", "type": ["null", "string"], "default": null}]}"#;

/// Version 2 of `User`: version 1 plus an optional email, default null.
const USER_V2: &str = r#"{"type": "record", "name": "User", "fields": [
    {"name": "name", "type": "string"},
    {"name": "fax_number", "type": ["null", "string"], "default": null},
    {"name": "email", "type": ["null", "string"], "default": null}]}"#;

fn schema(s: &str) -> Schema {
    Schema::parse_str(s).unwrap()
}

fn person(name: &str, age: i32) -> Value {
    Value::Record(vec![
        ("name".into(), Value::String(name.into())),
        ("age".into(), Value::Int(age)),
    ])
}

fn some_str(s: &str) -> Value {
    Value::Union(1, Box::new(Value::String(s.into())))
}

fn null() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

fn ser<T: ?Sized, S: Serializer<T>>(s: &S, topic: &str, data: &T) -> Bytes {
    s.serialize(topic, &mut Vec::new(), data).unwrap().unwrap()
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Person {
    name: String,
    age: i32,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct UserV1 {
    name: String,
    fax_number: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct UserV2 {
    name: String,
    fax_number: Option<String>,
    email: Option<String>,
}

#[test]
fn confluent_wire_format_is_byte_exact() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let s = AvroSerializer::new(registry.clone(), schema(PERSON));
    // magic 0, schema id 1 (4 bytes big-endian), then the Avro binary datum:
    // "Ann" is its length 3 as a zigzag varint (6) and its UTF-8 bytes, and
    // the int 30 is the zigzag varint 60.
    let expected = [0x00, 0, 0, 0, 1, 0x06, b'A', b'n', b'n', 0x3c];
    assert_eq!(&ser(&s, "people", &person("Ann", 30))[..], &expected);
    // The same bytes from a serde type.
    let typed = AvroSerdeSerializer::new(registry.clone(), schema(PERSON));
    let ann = Person {
        name: "Ann".into(),
        age: 30,
    };
    assert_eq!(&ser(&typed, "people", &ann)[..], &expected);
    // Negative ints zigzag to odd numbers; 300 zigzags to 600, a 2-byte varint
    // (low 7 bits first, continuation bit set): 0xd8 0x04.
    assert_eq!(
        &ser(&s, "people", &person("", -1))[..],
        &[0, 0, 0, 0, 1, 0x00, 0x01]
    );
    assert_eq!(
        &ser(&s, "people", &person("", 300))[..],
        &[0, 0, 0, 0, 1, 0x00, 0xd8, 0x04]
    );
    assert_eq!(frame(1, &[0x00, 0x01])[..], [0, 0, 0, 0, 1, 0x00, 0x01]);
}

#[test]
fn schema_is_registered_under_topic_subject_once() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let values = AvroSerializer::new(registry.clone(), schema(PERSON));
    let keys = AvroSerializer::new(registry.clone(), Schema::String).for_keys();
    for _ in 0..3 {
        ser(&values, "people", &person("a", 1));
    }
    let key = ser(&keys, "people", &Value::String("k".into()));
    // The string schema is the registry's second schema.
    assert_eq!(&key[..], &[0, 0, 0, 0, 2, 0x02, b'k']);
    ser(&values, "staff", &person("b", 2));
    assert_eq!(
        registry.subjects(),
        ["people-key", "people-value", "staff-value"]
    );
    assert_eq!(registry.versions("people-value"), [1]);
    assert_eq!(
        registry.versions("staff-value"),
        [1],
        "same schema, same id"
    );
    assert_eq!(registry.versions("people-key"), [2]);
    assert_eq!(values.schema_id("people").unwrap(), 1);
}

#[test]
fn record_name_strategies() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let s = AvroSerializer::new(registry.clone(), schema(PERSON))
        .subject_name_strategy(SubjectNameStrategy::RecordName);
    ser(&s, "people", &person("a", 1));
    let t = AvroSerdeSerializer::new(registry.clone(), schema(PERSON))
        .subject_name_strategy(SubjectNameStrategy::TopicRecordName);
    ser(
        &t,
        "people",
        &Person {
            name: "b".into(),
            age: 2,
        },
    );
    assert_eq!(
        registry.subjects(),
        ["com.example.Person", "people-com.example.Person"]
    );
}

#[test]
fn round_trip_without_reader_schema() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let s = AvroSerializer::new(registry.clone(), schema(PERSON));
    let bytes = ser(&s, "people", &person("Ann", 30));
    let d = AvroDeserializer::new(registry.clone());
    assert_eq!(d.decode("people", &bytes).unwrap(), person("Ann", 30));
    let typed: Person = d.decode_into("people", &bytes).unwrap();
    assert_eq!(
        typed,
        Person {
            name: "Ann".into(),
            age: 30
        }
    );
}

#[test]
fn null_keys_and_values() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let s = AvroSerializer::new(registry.clone(), schema(PERSON));
    assert_eq!(
        s.serialize("people", &mut Vec::new(), &None::<Value>)
            .unwrap(),
        None
    );
    let typed = AvroSerdeSerializer::new(registry.clone(), schema(PERSON));
    assert_eq!(
        typed
            .serialize("people", &mut Vec::new(), &None::<Person>)
            .unwrap(),
        None
    );
    // Nothing was registered for a null.
    assert!(registry.subjects().is_empty());
    // A schema that is itself a union with null writes None as the null branch.
    let nullable = AvroSerdeSerializer::new(registry.clone(), schema(r#"["null", "string"]"#));
    assert_eq!(
        &ser(&nullable, "t", &None::<String>)[..],
        &[0, 0, 0, 0, 1, 0x00]
    );
    assert_eq!(
        &ser(&nullable, "t", &Some("a"))[..],
        &[0, 0, 0, 0, 1, 0x02, 0x02, b'a']
    );
    let d = AvroDeserializer::new(registry);
    assert_eq!(d.deserialize("t", None).unwrap(), None);
}

#[test]
fn schema_evolution_fax_number_then_email() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let v1 = AvroSerializer::new(registry.clone(), schema(USER_V1));
    let v2 = AvroSerializer::new(registry.clone(), schema(USER_V2));
    let topic = "users";

    let old_with_fax = ser(
        &v1,
        topic,
        &Value::Record(vec![
            ("name".into(), Value::String("Ann".into())),
            ("fax_number".into(), some_str("555-0100")),
        ]),
    );
    let old_without_fax = ser(
        &v1,
        topic,
        &Value::Record(vec![
            ("name".into(), Value::String("Al".into())),
            ("fax_number".into(), null()),
        ]),
    );
    let new_with_email = ser(
        &v2,
        topic,
        &Value::Record(vec![
            ("name".into(), Value::String("Bob".into())),
            ("fax_number".into(), null()),
            ("email".into(), some_str("bob@example.com")),
        ]),
    );
    // A v2 writer from a serde type that still knows the fax number.
    let typed_v2 = AvroSerdeSerializer::new(registry.clone(), schema(USER_V2));
    let new_with_both = ser(
        &typed_v2,
        topic,
        &UserV2 {
            name: "Cy".into(),
            fax_number: Some("555-0199".into()),
            email: Some("cy@example.com".into()),
        },
    );
    assert_eq!(registry.versions("users-value"), [1, 2]);
    assert_eq!(&old_with_fax[..5], &[0, 0, 0, 0, 1]);
    assert_eq!(&new_with_email[..5], &[0, 0, 0, 0, 2]);

    let reader = AvroDeserializer::with_reader_schema(registry.clone(), schema(USER_V2));
    let read = |b: &Bytes| reader.decode_with_id(topic, b).unwrap();

    // Old users: their fax number, and no email (the reader's default).
    let (id, ann) = read(&old_with_fax);
    assert_eq!(id, 1);
    assert_eq!(field_str(&ann, "name"), Some("Ann"));
    assert_eq!(field_str(&ann, "fax_number"), Some("555-0100"));
    assert_eq!(field(&ann, "email"), Some(&Value::Null));
    let (_, al) = read(&old_without_fax);
    assert_eq!(
        (field_str(&al, "fax_number"), field_str(&al, "email")),
        (None, None)
    );
    // New users: their email, and no fax number.
    let (id, bob) = read(&new_with_email);
    assert_eq!(id, 2);
    assert_eq!(field_str(&bob, "email"), Some("bob@example.com"));
    assert_eq!(field(&bob, "fax_number"), Some(&Value::Null));
    // Whole records in the reader's field order.
    assert_eq!(
        ann,
        Value::Record(vec![
            ("name".into(), Value::String("Ann".into())),
            ("fax_number".into(), some_str("555-0100")),
            ("email".into(), null()),
        ])
    );

    // Into serde types of the newest version.
    let all: Vec<UserV2> = [
        &old_with_fax,
        &old_without_fax,
        &new_with_email,
        &new_with_both,
    ]
    .into_iter()
    .map(|b| reader.decode_into(topic, b).unwrap())
    .collect();
    let user = |name: &str, fax: Option<&str>, email: Option<&str>| UserV2 {
        name: name.into(),
        fax_number: fax.map(Into::into),
        email: email.map(Into::into),
    };
    assert_eq!(
        all,
        [
            user("Ann", Some("555-0100"), None),
            user("Al", None, None),
            user("Bob", None, Some("bob@example.com")),
            user("Cy", Some("555-0199"), Some("cy@example.com")),
        ]
    );

    // And an old reader reads new data, dropping the field it does not know.
    let old_reader = AvroDeserializer::with_reader_schema(registry.clone(), schema(USER_V1));
    let cy: UserV1 = old_reader.decode_into(topic, &new_with_both).unwrap();
    assert_eq!(
        cy,
        UserV1 {
            name: "Cy".into(),
            fax_number: Some("555-0199".into())
        }
    );
}

#[test]
fn a_record_that_does_not_match_its_schema_is_a_typed_error() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let s = AvroSerializer::new(registry.clone(), schema(PERSON));
    let bad = Value::Record(vec![
        ("name".into(), Value::String("Ann".into())),
        ("age".into(), Value::String("thirty".into())),
    ]);
    let e = s.serialize("people", &mut Vec::new(), &bad).unwrap_err();
    match &e {
        SerializeError::SchemaMismatch {
            topic,
            schema,
            reason,
        } => {
            assert_eq!(topic, "people");
            assert_eq!(schema, "com.example.Person");
            assert_eq!(reason, "at .age: expected an int, got String(\"thirty\")");
        }
        other => panic!("expected SchemaMismatch, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "topic people: data does not match Avro schema com.example.Person: \
         at .age: expected an int, got String(\"thirty\")"
    );

    let missing = Value::Record(vec![("name".into(), Value::String("Ann".into()))]);
    let e = s
        .serialize("people", &mut Vec::new(), &missing)
        .unwrap_err();
    assert!(
        matches!(&e, SerializeError::SchemaMismatch { reason, .. } if reason.contains(".age") && reason.contains("missing")),
        "{e}"
    );
    let unknown = Value::Record(vec![
        ("name".into(), Value::String("Ann".into())),
        ("age".into(), Value::Int(1)),
        ("shoe_size".into(), Value::Int(9)),
    ]);
    let e = s
        .serialize("people", &mut Vec::new(), &unknown)
        .unwrap_err();
    assert!(e.to_string().contains("`shoe_size`"), "{e}");
    let e = s
        .serialize("people", &mut Vec::new(), &Value::Int(3))
        .unwrap_err();
    assert!(
        e.to_string().contains("expected record com.example.Person"),
        "{e}"
    );

    // A serde type that does not fit names the field too.
    #[derive(serde::Serialize)]
    struct Wrong {
        name: String,
        age: String,
    }
    let typed = AvroSerdeSerializer::new(registry.clone(), schema(PERSON));
    let e = typed
        .serialize(
            "people",
            &mut Vec::new(),
            &Wrong {
                name: "A".into(),
                age: "x".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(&e, SerializeError::SchemaMismatch { topic, reason, .. } if topic == "people" && reason.contains("'age'")),
        "{e}"
    );

    // Nothing that failed was registered.
    assert!(registry.subjects().is_empty());
}

#[test]
fn every_field_must_be_given_even_optional_ones() {
    // Defaults are for readers; a writer writes every field, as Java's
    // GenericDatumWriter does.
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let s = AvroSerializer::new(registry.clone(), schema(USER_V2));
    let partial = Value::Record(vec![("name".into(), Value::String("Di".into()))]);
    let e = s.serialize("users", &mut Vec::new(), &partial).unwrap_err();
    assert!(
        matches!(&e, SerializeError::SchemaMismatch { reason, .. } if reason == "at .fax_number: missing field"),
        "{e}"
    );
    let full = Value::Record(vec![
        ("name".into(), Value::String("Di".into())),
        ("fax_number".into(), null()),
        ("email".into(), null()),
    ]);
    // Each null union branch is the branch index 0 as a zigzag varint.
    assert_eq!(
        &ser(&s, "users", &full)[..],
        &[0, 0, 0, 0, 1, 0x04, b'D', b'i', 0x00, 0x00]
    );
}

#[test]
fn incompatible_reader_schema_is_a_typed_error() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let v1 = AvroSerializer::new(registry.clone(), schema(USER_V1));
    let bytes = ser(
        &v1,
        "users",
        &Value::Record(vec![
            ("name".into(), Value::String("Ann".into())),
            ("fax_number".into(), null()),
        ]),
    );
    // A reader that needs a field the writer never had, with no default.
    let strict = schema(
        r#"{"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}"#,
    );
    let d = AvroDeserializer::with_reader_schema(registry.clone(), strict);
    let e = d.decode("users", &bytes).unwrap_err();
    assert!(
        matches!(&e, SerializeError::SchemaMismatch { topic, schema, reason }
            if topic == "users" && schema == "User" && reason.contains("schema id 1")),
        "{e}"
    );
}

#[test]
fn registry_refuses_an_incompatible_new_version() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    ser(
        &AvroSerializer::new(registry.clone(), schema(USER_V1)),
        "users",
        &Value::Record(vec![
            ("name".into(), Value::String("Ann".into())),
            ("fax_number".into(), null()),
        ]),
    );
    // A required email without a default cannot read version 1 data.
    let breaking = schema(
        r#"{"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}"#,
    );
    let s = AvroSerializer::new(registry.clone(), breaking);
    let record = Value::Record(vec![
        ("name".into(), Value::String("Bob".into())),
        ("email".into(), Value::String("b@x".into())),
    ]);
    let e = s.serialize("users", &mut Vec::new(), &record).unwrap_err();
    assert!(
        matches!(&e, SerializeError::SchemaRegistry { context, .. } if context == "subject users-value"),
        "{e}"
    );
    assert_eq!(registry.versions("users-value"), [1]);
}

#[test]
fn malformed_frames_and_unknown_ids() {
    let registry = Arc::new(InMemorySchemaRegistry::new());
    let d = AvroDeserializer::new(registry.clone());
    let e = d.decode("t", &[0, 0, 0]).unwrap_err();
    assert!(matches!(e, SerializeError::Malformed { .. }), "{e}");
    let e = d.decode("t", b"{\"json\":1}").unwrap_err();
    assert!(e.to_string().contains("magic byte 0x7b"), "{e}");
    let e = d.decode("t", &[0, 0, 0, 0, 9, 0]).unwrap_err();
    assert!(
        matches!(&e, SerializeError::SchemaRegistry { context, .. } if context == "schema id 9"),
        "{e}"
    );
    let id = registry.register("t-value", &schema(PERSON)).unwrap();
    // Truncated datum.
    let e = d.decode("t", &frame(id, &[0x06, b'A'])).unwrap_err();
    assert!(
        matches!(&e, SerializeError::Avro { topic, .. } if topic == "t"),
        "{e}"
    );
    // Bytes after the datum.
    let e = d.decode("t", &frame(id, &[0x00, 0x02, 0xff])).unwrap_err();
    assert!(e.to_string().contains("1 bytes left"), "{e}");
}

#[test]
fn serializers_are_shared_across_threads() {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(InMemorySchemaRegistry::new());
    let s = Arc::new(AvroSerializer::new(registry.clone(), schema(PERSON)));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || ser(&*s, "people", &person("x", i)))
        })
        .collect();
    for h in handles {
        assert_eq!(&h.join().unwrap()[..5], &[0, 0, 0, 0, 1]);
    }
}
