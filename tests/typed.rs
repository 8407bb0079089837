//! The typed producer (`driver::typed`) against `kafka_sansio::mock::MockServer`,
//! with both drivers: built-in serializers, JSON, serializers adding headers,
//! and a failing serializer that fails only its own record.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use kafka_sansio::driver::{blocking, Error, RecordPart, TypedProducer, TypedRecord};
use kafka_sansio::mock::MockServer;
use kafka_sansio::producer::ProducerConfig;
use kafka_sansio::protocol::RecordBatch;
use kafka_sansio::serialize::{
    Header, IntegerSerializer, LongSerializer, SerializeError, Serializer, StringSerializer,
    VoidSerializer,
};

const WAIT: Duration = Duration::from_secs(20);

fn config(bootstrap: &str) -> ProducerConfig {
    ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .linger(Duration::from_millis(5))
        .request_timeout(Duration::from_secs(3))
        .delivery_timeout(Duration::from_secs(10))
        .max_block(Duration::from_secs(3))
        .build()
        .expect("config")
}

/// One record as read back from the mock's log with the protocol's batch decoder.
#[derive(Debug, PartialEq)]
struct Stored {
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
}

fn read_back(server: &MockServer, topic: &str, partition: i32) -> Vec<Stored> {
    let batches = server.cluster().batches(topic, partition);
    let mut out = Vec::new();
    for b in batches {
        for batch in RecordBatch::decode_all(b.bytes).expect("stored batch decodes") {
            for r in batch.records().expect("records decode") {
                out.push(Stored {
                    offset: batch.base_offset + r.offset_delta as i64,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
        }
    }
    out
}

/// Starts a typed producer on one driver.
trait Driver {
    fn start<K: 'static, V: 'static>(
        config: ProducerConfig,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> TypedProducer<K, V>;
}

struct Blocking;
impl Driver for Blocking {
    fn start<K: 'static, V: 'static>(
        config: ProducerConfig,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> TypedProducer<K, V> {
        TypedProducer::blocking(config, key, value).expect("start blocking producer")
    }
}

#[cfg(feature = "mio-driver")]
struct Mio;
#[cfg(feature = "mio-driver")]
impl Driver for Mio {
    fn start<K: 'static, V: 'static>(
        config: ProducerConfig,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> TypedProducer<K, V> {
        TypedProducer::mio(config, key, value).expect("start mio driver")
    }
}

// ---- serializers for the tests ----------------------------------------------------------------

/// UTF-8 like `StringSerializer`, but refuses any text containing "bad".
struct PickyStrings;

impl Serializer<String> for PickyStrings {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: &String,
    ) -> Result<Option<Bytes>, SerializeError> {
        if data.contains("bad") {
            return Err(SerializeError::custom(format!(
                "refusing {data:?} for {topic}"
            )));
        }
        StringSerializer.serialize(topic, headers, data)
    }
}

/// Writes `i32`s as decimal text and says so in a header, as Java
/// serializers may add headers.
struct TaggedDecimal;

impl Serializer<i32> for TaggedDecimal {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: &i32,
    ) -> Result<Option<Bytes>, SerializeError> {
        headers.push(Header::new("content-type", "text/plain"));
        headers.push(Header::new("topic-seen", topic.to_owned()));
        Ok(Some(Bytes::from(data.to_string())))
    }
}

// ---- the cases --------------------------------------------------------------------------------

/// String keys and values: bytes as Java's StringSerializer writes them,
/// keyed records land where the key says, offsets in order.
fn strings<D: Driver>() {
    let server = MockServer::start(1).expect("mock");
    server
        .with_cluster(|c| c.create_topic("strings", 1))
        .unwrap();
    let p = D::start(
        config(&server.bootstrap_servers()),
        StringSerializer,
        StringSerializer,
    );
    for i in 0..5 {
        let md = p
            .send(TypedRecord::new("strings", format!("välue-{i}")).key(format!("k{i}")))
            .expect("send")
            .wait()
            .expect("delivered");
        assert_eq!(md.offset, i);
        assert_eq!(&*md.topic, "strings");
    }
    p.send(TypedRecord::tombstone("strings", "k0".to_owned()))
        .unwrap()
        .wait()
        .unwrap();
    p.close(WAIT).expect("close");
    let got = read_back(&server, "strings", 0);
    assert_eq!(got.len(), 6);
    for (i, r) in got.iter().take(5).enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(
            r.value.as_deref(),
            Some(format!("välue-{i}").as_bytes()),
            "UTF-8 bytes"
        );
        assert!(r.headers.is_empty());
    }
    assert_eq!(got[5].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(got[5].value, None, "a tombstone is a null value");
}

/// Integer values as 4 and 8 bytes big-endian, with a null key from the
/// void serializer and explicit partitions.
fn integers<D: Driver>() {
    let server = MockServer::start(1).expect("mock");
    server.with_cluster(|c| c.create_topic("ints", 2)).unwrap();
    let ints = D::start(
        config(&server.bootstrap_servers()),
        VoidSerializer,
        IntegerSerializer,
    );
    let longs =
        TypedProducer::<i32, i64>::new(ints.handle().clone(), IntegerSerializer, LongSerializer);
    let a = ints
        .send(TypedRecord::new("ints", -2i32).partition(1))
        .unwrap();
    let b = longs
        .send(TypedRecord::new("ints", 1i64 << 40).key(7).partition(1))
        .unwrap();
    let c = ints
        .send(TypedRecord::new("ints", 258i32).partition(0))
        .unwrap();
    assert_eq!(a.wait().unwrap().partition, 1);
    assert_eq!(b.wait().unwrap().offset, 1);
    assert_eq!(c.wait().unwrap().partition, 0);
    ints.close(WAIT).unwrap();
    let p1 = read_back(&server, "ints", 1);
    assert_eq!(p1[0].key, None);
    assert_eq!(p1[0].value.as_deref(), Some(&[0xff, 0xff, 0xff, 0xfe][..]));
    assert_eq!(p1[1].key.as_deref(), Some(&[0, 0, 0, 7][..]));
    assert_eq!(p1[1].value.as_deref(), Some(&[0, 0, 1, 0, 0, 0, 0, 0][..]));
    let p0 = read_back(&server, "ints", 0);
    assert_eq!(p0.len(), 1);
    assert_eq!(p0[0].value.as_deref(), Some(&[0, 0, 1, 2][..]));
}

/// A failing value or key serializer fails only its own record, with a
/// typed error naming the part; the records around it are delivered in
/// order with contiguous offsets, and nothing of it reaches the log.
fn failing_serializer<D: Driver>() {
    let server = MockServer::start(1).expect("mock");
    server.with_cluster(|c| c.create_topic("picky", 1)).unwrap();
    let p = D::start(
        config(&server.bootstrap_servers()),
        PickyStrings,
        PickyStrings,
    );
    let mut futures = Vec::new();
    for i in 0..6 {
        let value = if i == 2 {
            "bad value".to_owned()
        } else {
            format!("v{i}")
        };
        let key = if i == 4 {
            "bad key".to_owned()
        } else {
            format!("k{i}")
        };
        match p.send(TypedRecord::new("picky", value).key(key)) {
            Ok(f) => futures.push(f),
            Err(Error::Serialize {
                part,
                topic,
                source,
            }) => {
                assert_eq!(&*topic, "picky");
                assert_eq!(
                    part,
                    if i == 2 {
                        RecordPart::Value
                    } else {
                        RecordPart::Key
                    }
                );
                assert!(source.to_string().contains("refusing \"bad"), "{source}");
                assert!(i == 2 || i == 4, "record {i} failed");
            }
            Err(e) => panic!("record {i}: unexpected {e}"),
        }
    }
    assert_eq!(futures.len(), 4);
    let offsets: Vec<i64> = futures
        .into_iter()
        .map(|f| f.wait().expect("delivered").offset)
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3]);

    // The same through the callback and fire-and-forget paths: the failure is
    // returned at once and the callback is never called for it.
    let (tx, rx) = mpsc::channel();
    for v in ["v6", "bad v7", "v8"] {
        let tx = tx.clone();
        let r = p.send_with_callback(TypedRecord::new("picky", v.to_owned()), move |r| {
            tx.send(r.map(|md| md.offset)).unwrap();
        });
        assert_eq!(r.is_err(), v.starts_with("bad"), "{v}: {r:?}");
    }
    drop(tx);
    let e = p
        .send_and_forget(TypedRecord::new("picky", "bad v9".to_owned()))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Serialize {
                part: RecordPart::Value,
                ..
            }
        ),
        "{e}"
    );
    p.send_and_forget(TypedRecord::new("picky", "v10".to_owned()))
        .unwrap();
    p.flush().expect("flush");
    let mut called: Vec<i64> = rx.iter().map(|r| r.expect("delivered")).collect();
    called.sort();
    assert_eq!(called, vec![4, 5]);
    p.close(WAIT).unwrap();

    let values: Vec<String> = read_back(&server, "picky", 0)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, ["v0", "v1", "v3", "v5", "v6", "v8", "v10"]);
}

/// Serializers see the topic and the record's headers and may add to them;
/// the record's own headers come first.
fn serializer_headers<D: Driver>() {
    let server = MockServer::start(1).expect("mock");
    let p = D::start(
        config(&server.bootstrap_servers()),
        VoidSerializer,
        TaggedDecimal,
    );
    p.send(TypedRecord::new("hdrs", 1234).header("trace", "abc"))
        .unwrap()
        .wait()
        .unwrap();
    p.close(WAIT).unwrap();
    let got = read_back(&server, "hdrs", 0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value.as_deref(), Some(&b"1234"[..]));
    assert_eq!(
        got[0].headers,
        vec![
            Header::new("trace", "abc"),
            Header::new("content-type", "text/plain"),
            Header::new("topic-seen", "hdrs"),
        ]
    );
}

/// JSON values through serde, as Kafka Connect's schemaless JsonConverter reads them.
#[cfg(feature = "json")]
fn json<D: Driver>() {
    use kafka_sansio::serialize::JsonSerializer;

    #[derive(serde::Serialize)]
    struct Order {
        id: u32,
        item: String,
        qty: Option<u8>,
    }

    let server = MockServer::start(1).expect("mock");
    let p = D::start(
        config(&server.bootstrap_servers()),
        StringSerializer,
        JsonSerializer,
    );
    let order = Order {
        id: 7,
        item: "tea \"green\"".into(),
        qty: None,
    };
    p.send(TypedRecord::new("orders", order).key("o-7".to_owned()))
        .unwrap()
        .wait()
        .unwrap();
    p.close(WAIT).unwrap();
    let got = read_back(&server, "orders", 0);
    assert_eq!(
        got[0].value.as_deref(),
        Some(&br#"{"id":7,"item":"tea \"green\"","qty":null}"#[..])
    );
    assert_eq!(got[0].key.as_deref(), Some(&b"o-7"[..]));
}

/// Dropping the last clone of an owned typed producer delivers what was sent.
fn drop_delivers<D: Driver>() {
    let server = MockServer::start(1).expect("mock");
    let p = D::start(
        config(&server.bootstrap_servers()),
        VoidSerializer,
        StringSerializer,
    );
    let q = p.clone();
    let t = std::thread::spawn(move || {
        for i in 0..50 {
            q.send_and_forget(TypedRecord::new("dropped", format!("{i}")))
                .unwrap();
        }
    });
    t.join().unwrap();
    drop(p);
    let got = read_back(&server, "dropped", 0);
    assert_eq!(got.len(), 50);
}

macro_rules! both_drivers {
    ($($case:ident $(#[$attr:meta])?),* $(,)?) => {
        mod blocking_driver {
            $($(#[$attr])? #[test] fn $case() { super::$case::<super::Blocking>() })*
        }
        #[cfg(feature = "mio-driver")]
        mod mio_driver {
            $($(#[$attr])? #[test] fn $case() { super::$case::<super::Mio>() })*
        }
    };
}

both_drivers!(
    strings,
    integers,
    failing_serializer,
    serializer_headers,
    json #[cfg(feature = "json")],
    drop_delivers,
);

/// A typed producer over the handle of an application-owned blocking producer.
#[test]
fn typed_view_of_an_application_handle() {
    let server = MockServer::start(1).expect("mock");
    let producer = blocking::Producer::new(config(&server.bootstrap_servers())).unwrap();
    let typed = producer.handle().typed(StringSerializer, LongSerializer);
    let shared: Arc<dyn Serializer<String>> = Arc::new(StringSerializer);
    let again = TypedProducer::<String, String>::with_serializers(
        producer.handle(),
        shared.clone(),
        shared,
    );
    let md = typed
        .send(TypedRecord::new("view", 5i64).key("five".to_owned()))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(md.offset, 0);
    again
        .send(TypedRecord::new("view", "text".to_owned()))
        .unwrap()
        .wait()
        .unwrap();
    // Closing a view closes the producer behind the handle.
    typed.close(WAIT).unwrap();
    assert!(producer.is_closed());
    assert!(matches!(
        again.send(TypedRecord::new("view", "late".to_owned())),
        Err(Error::Send(_))
    ));
    let got = read_back(&server, "view", 0);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].value.as_deref(), Some(&5i64.to_be_bytes()[..]));
}

/// The Avro schema evolution example, end to end against the mock: version 1
/// and version 2 users written with the typed producer and AvroSerializer,
/// fetched back from the broker and read with version 2.
#[cfg(feature = "avro")]
#[path = "../examples/avro_schema_evolution.rs"]
mod avro_example;

#[cfg(feature = "avro")]
#[test]
fn avro_schema_evolution_example() {
    use avro_example::evolution::{run, UserRow};

    let server = MockServer::start(1).expect("mock");
    // Something else in the log first, so that the reader must start mid-log.
    let p = blocking::Producer::new(config(&server.bootstrap_servers())).unwrap();
    p.send(kafka_sansio::producer::ProducerRecord::new("users", "not a user").partition(0))
        .unwrap()
        .wait()
        .unwrap();
    p.close(WAIT).unwrap();

    let rows = run(&server.bootstrap_servers(), "users").expect("the example runs");
    let row = |offset, key: &str, schema_id, fax: Option<&str>, email: Option<&str>| UserRow {
        offset,
        key: key.into(),
        schema_id,
        name: key.into(),
        fax_number: fax.map(Into::into),
        email: email.map(Into::into),
    };
    assert_eq!(
        rows,
        vec![
            row(1, "ann", 1, Some("+1-555-0100"), None),
            row(2, "bob", 1, Some("+44-20-7946-0000"), None),
            row(3, "cleo", 2, None, Some("cleo@example.com")),
            row(4, "dan", 2, None, Some("dan@example.org")),
        ]
    );
    // What the broker holds is the Confluent wire format: magic 0, schema id.
    let stored = read_back(&server, "users", 0);
    assert_eq!(stored.len(), 5);
    assert_eq!(&stored[1].value.as_ref().unwrap()[..5], &[0, 0, 0, 0, 1]);
    assert_eq!(&stored[4].value.as_ref().unwrap()[..5], &[0, 0, 0, 0, 2]);
}
