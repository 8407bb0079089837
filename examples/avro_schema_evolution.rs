//! Avro schema evolution end to end: two versions of a `User` schema written
//! with the typed producer and `AvroSerializer`, read back from the broker
//! with a Fetch loop and decoded with the newest schema.
//!
//! ```text
//! cargo run --features avro --example avro_schema_evolution              # built-in mock cluster
//! cargo run --features avro --example avro_schema_evolution -- -b 127.0.0.1:9092 -t users
//! ```
//!
//! Version 1 of `User` has an optional `fax_number`; version 2 adds an optional
//! `email` (both unions with null, default null). An "old" application writes
//! users with version 1 and a "new" one with version 2, through one producer,
//! to partition 0 of the topic. Both schemas are registered in an in-memory
//! Schema Registry (subject `<topic>-value`, versions 1 and 2), and every value
//! carries its writer schema's id in the Confluent wire format.
//!
//! The reader fetches the records back from the broker and resolves each one
//! into version 2: old users print their fax number and no email (the field
//! takes its default), new users their email and no fax. The reader code only
//! handles the optional fields; nothing in it depends on which version wrote
//! a record.
//!
//! With `-b` the topic must exist (with a partition 0) on brokers that do not
//! create topics on demand, such as tansu (`tests/interop/tansu-topic.sh`).

#[cfg(feature = "avro")]
#[path = "support/reader.rs"]
mod reader;

/// The example's logic, also run by `tests/typed.rs` against the mock.
#[cfg(feature = "avro")]
#[allow(dead_code)] // the test that includes this file uses `run` only
pub mod evolution {
    use std::sync::Arc;
    use std::time::Duration;

    use kafka_sansio::driver::{TypedProducer, TypedRecord};
    use kafka_sansio::producer::ProducerConfig;
    use kafka_sansio::serialize::avro::{
        field_str, AvroDeserializer, AvroSerializer, InMemorySchemaRegistry, Schema, Value,
    };
    use kafka_sansio::serialize::StringSerializer;

    use super::reader::PartitionReader;

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    /// Version 1: a name and an optional fax number.
    pub const USER_V1: &str = r#"{
        "type": "record", "name": "User", "namespace": "com.example",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "fax_number", "type": ["null", "string"], "default": null}
        ]}"#;

    /// Version 2: adds an optional email, default null (a backward-compatible change).
    pub const USER_V2: &str = r#"{
        "type": "record", "name": "User", "namespace": "com.example",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "fax_number", "type": ["null", "string"], "default": null},
            {"name": "email", "type": ["null", "string"], "default": null}
        ]}"#;

    /// One user as read back.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct UserRow {
        /// The record's offset in partition 0.
        pub offset: i64,
        /// The record key.
        pub key: String,
        /// The registry id of the schema the record was written with.
        pub schema_id: u32,
        /// The user's name.
        pub name: String,
        /// The fax number, if any.
        pub fax_number: Option<String>,
        /// The email, if any (always none for version 1 records).
        pub email: Option<String>,
    }

    fn optional(s: Option<&str>) -> Value {
        match s {
            Some(s) => Value::Union(1, Box::new(Value::String(s.to_owned()))),
            None => Value::Union(0, Box::new(Value::Null)),
        }
    }

    /// A version 1 user (what the old application writes).
    fn user_v1(name: &str, fax: Option<&str>) -> Value {
        Value::Record(vec![
            ("name".into(), Value::String(name.into())),
            ("fax_number".into(), optional(fax)),
        ])
    }

    /// A version 2 user (what the new application writes).
    fn user_v2(name: &str, fax: Option<&str>, email: Option<&str>) -> Value {
        Value::Record(vec![
            ("name".into(), Value::String(name.into())),
            ("fax_number".into(), optional(fax)),
            ("email".into(), optional(email)),
        ])
    }

    /// Produces two version 1 and two version 2 users to partition 0 of
    /// `topic` on `bootstrap`, reads them back with Fetch and decodes them
    /// with version 2. Returns the users in offset order.
    pub fn run(bootstrap: &str, topic: &str) -> Result<Vec<UserRow>, BoxError> {
        let v1 = Schema::parse_str(USER_V1)?;
        let v2 = Schema::parse_str(USER_V2)?;
        let registry = Arc::new(InMemorySchemaRegistry::new());

        // ---- write: an old and a new application, one producer ----------------
        let config = ProducerConfig::builder()
            .bootstrap_servers(bootstrap)
            .linger(Duration::from_millis(5))
            .request_timeout(Duration::from_secs(10))
            .delivery_timeout(Duration::from_secs(30))
            .build()?;
        let old_app = TypedProducer::blocking(
            config,
            StringSerializer,
            AvroSerializer::new(registry.clone(), v1),
        )?;
        let new_app = TypedProducer::<String, Value>::new(
            old_app.handle().clone(),
            StringSerializer,
            AvroSerializer::new(registry.clone(), v2.clone()),
        );
        let users = [
            (&old_app, user_v1("ann", Some("+1-555-0100"))),
            (&old_app, user_v1("bob", Some("+44-20-7946-0000"))),
            (&new_app, user_v2("cleo", None, Some("cleo@example.com"))),
            (&new_app, user_v2("dan", None, Some("dan@example.org"))),
        ];
        let mut first_offset = None;
        for (app, user) in users {
            let name = field_str(&user, "name").unwrap_or_default().to_owned();
            let md = app
                .send(TypedRecord::new(topic, user).key(name).partition(0))?
                .wait()?;
            first_offset.get_or_insert(md.offset);
        }
        old_app.close(Duration::from_secs(10))?;
        let first_offset = first_offset.expect("four records were sent");
        println!(
            "wrote 4 users to {topic}-0 from offset {first_offset}; subject {topic}-value has versions {:?}",
            registry.versions(&format!("{topic}-value"))
        );

        // ---- read back from the broker, decode with the newest schema ----------
        let mut reader = PartitionReader::connect(bootstrap, topic, 0)?;
        let records = reader.read(first_offset, 4, Duration::from_secs(20))?;
        if records.len() != 4 {
            return Err(format!("read {} of 4 records back", records.len()).into());
        }
        let deserializer = AvroDeserializer::with_reader_schema(registry, v2);
        let mut rows = Vec::new();
        for r in records {
            let value = r.value.as_deref().ok_or("a user record has no value")?;
            let (schema_id, user) = deserializer.decode_with_id(topic, value)?;
            let text = |field: &str| field_str(&user, field).map(str::to_owned);
            rows.push(UserRow {
                offset: r.offset,
                key: String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                schema_id,
                name: text("name").unwrap_or_default(),
                fax_number: text("fax_number"),
                email: text("email"),
            });
        }
        if let Some((earliest, latest)) = reader.offsets()? {
            println!("{topic}-0 holds offsets {earliest}..{latest} (ListOffsets)");
        }
        Ok(rows)
    }

    /// Prints a user the way an application that knows version 2 would.
    pub fn print(row: &UserRow) {
        let contact = match (&row.fax_number, &row.email) {
            (Some(fax), Some(email)) => format!("fax {fax}, email {email}"),
            (Some(fax), None) => format!("fax {fax}, no email"),
            (None, Some(email)) => format!("email {email}, no fax"),
            (None, None) => "no contact".to_owned(),
        };
        println!(
            "offset {:>3}  key {:<5} schema id {}  {:<5} {contact}",
            row.offset, row.key, row.schema_id, row.name
        );
    }
}

#[cfg(feature = "avro")]
#[allow(dead_code)] // a test includes this file for `run` and does not call `main`
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut bootstrap = None;
    let mut topic = "users".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("-b", Some(b)) => bootstrap = Some(b),
            ("-t", Some(t)) => topic = t,
            _ => {
                eprintln!("usage: avro_schema_evolution [-b host:port] [-t topic]");
                std::process::exit(2);
            }
        }
    }
    // Without -b: the built-in mock cluster, for as long as the example runs.
    let mock;
    let bootstrap = match bootstrap {
        Some(b) => b,
        None => {
            mock = kafka_sansio::mock::MockServer::start(1)?;
            println!("started the mock cluster at {}", mock.bootstrap_servers());
            mock.bootstrap_servers()
        }
    };
    for row in evolution::run(&bootstrap, &topic)? {
        evolution::print(&row);
    }
    Ok(())
}

#[cfg(not(feature = "avro"))]
fn main() {
    eprintln!("this example needs the avro feature: cargo run --features avro --example avro_schema_evolution");
    std::process::exit(2);
}
