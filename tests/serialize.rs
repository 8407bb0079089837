//! The built-in serializers write exactly the bytes of the Java client's
//! `org.apache.kafka.common.serialization` serializers.

use bytes::Bytes;
use kafka_sansio::serialize::{
    BooleanSerializer, BytesSerializer, DoubleSerializer, FloatSerializer, Header,
    IntegerSerializer, LongSerializer, SerializeError, Serializer, ShortSerializer,
    StringSerializer, UuidSerializer, VoidSerializer,
};

fn ser<T: ?Sized, S: Serializer<T>>(s: &S, data: &T) -> Option<Bytes> {
    let mut headers = Vec::new();
    let out = s.serialize("topic", &mut headers, data).unwrap();
    assert!(headers.is_empty(), "built-ins add no headers");
    out
}

fn bytes<T: ?Sized, S: Serializer<T>>(s: &S, data: &T) -> Vec<u8> {
    ser(s, data).expect("not null").to_vec()
}

#[test]
fn integer_is_4_bytes_big_endian() {
    assert_eq!(bytes(&IntegerSerializer, &1), [0x00, 0x00, 0x00, 0x01]);
    assert_eq!(bytes(&IntegerSerializer, &-1), [0xff, 0xff, 0xff, 0xff]);
    assert_eq!(bytes(&IntegerSerializer, &0x0102_0304), [1, 2, 3, 4]);
    assert_eq!(bytes(&IntegerSerializer, &i32::MIN), [0x80, 0, 0, 0]);
    assert_eq!(
        bytes(&IntegerSerializer, &i32::MAX),
        [0x7f, 0xff, 0xff, 0xff]
    );
}

#[test]
fn short_is_2_bytes_big_endian() {
    assert_eq!(bytes(&ShortSerializer, &1), [0x00, 0x01]);
    assert_eq!(bytes(&ShortSerializer, &0x0102), [0x01, 0x02]);
    assert_eq!(bytes(&ShortSerializer, &-2), [0xff, 0xfe]);
    assert_eq!(bytes(&ShortSerializer, &i16::MIN), [0x80, 0x00]);
}

#[test]
fn long_is_8_bytes_big_endian() {
    assert_eq!(bytes(&LongSerializer, &1), [0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        bytes(&LongSerializer, &0x0102_0304_0506_0708),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(bytes(&LongSerializer, &-1), [0xff; 8]);
    assert_eq!(
        bytes(&LongSerializer, &i64::MIN),
        [0x80, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn float_is_ieee754_big_endian() {
    assert_eq!(bytes(&FloatSerializer, &1.0), [0x3f, 0x80, 0x00, 0x00]);
    assert_eq!(bytes(&FloatSerializer, &-2.5), [0xc0, 0x20, 0x00, 0x00]);
    assert_eq!(bytes(&FloatSerializer, &0.0), [0, 0, 0, 0]);
    assert_eq!(bytes(&FloatSerializer, &-0.0), [0x80, 0, 0, 0]);
    assert_eq!(
        bytes(&FloatSerializer, &f32::INFINITY),
        [0x7f, 0x80, 0x00, 0x00]
    );
    // floatToRawIntBits: a NaN's payload is written as is.
    let nan = f32::from_bits(0x7fc0_0001);
    assert_eq!(bytes(&FloatSerializer, &nan), [0x7f, 0xc0, 0x00, 0x01]);
}

#[test]
fn double_is_ieee754_big_endian() {
    assert_eq!(
        bytes(&DoubleSerializer, &1.0),
        [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        bytes(&DoubleSerializer, &0.1),
        [0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
    );
    assert_eq!(
        bytes(&DoubleSerializer, &-2.0),
        [0xc0, 0x00, 0, 0, 0, 0, 0, 0]
    );
    let nan = f64::from_bits(0x7ff8_0000_0000_0001);
    assert_eq!(
        bytes(&DoubleSerializer, &nan),
        [0x7f, 0xf8, 0, 0, 0, 0, 0, 0x01]
    );
}

#[test]
fn string_is_utf8() {
    assert_eq!(bytes(&StringSerializer, "héllo"), b"h\xc3\xa9llo");
    assert_eq!(
        bytes(&StringSerializer, &"€".to_owned()),
        [0xe2, 0x82, 0xac]
    );
    assert_eq!(bytes(&StringSerializer, &"key"), b"key");
    // An empty string is an empty value, not a null one.
    assert_eq!(ser(&StringSerializer, ""), Some(Bytes::new()));
}

#[test]
fn bytes_pass_through() {
    assert_eq!(
        bytes(&BytesSerializer, &Bytes::from_static(b"\x00\x01")),
        [0, 1]
    );
    assert_eq!(bytes(&BytesSerializer, &vec![7u8, 8]), [7, 8]);
    assert_eq!(bytes(&BytesSerializer, &[9u8][..]), [9]);
    let slice: &[u8] = b"ab";
    assert_eq!(bytes(&BytesSerializer, &slice), b"ab");
    assert_eq!(ser(&BytesSerializer, &Vec::<u8>::new()), Some(Bytes::new()));
}

#[test]
fn boolean_is_one_byte() {
    assert_eq!(bytes(&BooleanSerializer, &true), [0x01]);
    assert_eq!(bytes(&BooleanSerializer, &false), [0x00]);
}

#[test]
fn uuid_is_its_text_form() {
    let id: u128 = 0x550e8400_e29b_41d4_a716_446655440000;
    assert_eq!(
        bytes(&UuidSerializer, &id),
        b"550e8400-e29b-41d4-a716-446655440000"
    );
    assert_eq!(bytes(&UuidSerializer, &id.to_be_bytes()).len(), 36);
}

#[test]
fn none_is_a_null_key_or_value() {
    assert_eq!(ser(&IntegerSerializer, &None::<i32>), None);
    assert_eq!(ser(&ShortSerializer, &None::<i16>), None);
    assert_eq!(ser(&LongSerializer, &None::<i64>), None);
    assert_eq!(ser(&FloatSerializer, &None::<f32>), None);
    assert_eq!(ser(&DoubleSerializer, &None::<f64>), None);
    assert_eq!(ser(&StringSerializer, &None::<String>), None);
    assert_eq!(ser(&BytesSerializer, &None::<Bytes>), None);
    assert_eq!(ser(&BooleanSerializer, &None::<bool>), None);
    assert_eq!(ser(&UuidSerializer, &None::<u128>), None);
    assert_eq!(ser(&VoidSerializer, &()), None);
    // Some(x) is x.
    assert_eq!(bytes(&IntegerSerializer, &Some(1)), [0, 0, 0, 1]);
    assert_eq!(bytes(&StringSerializer, &Some("a")), b"a");
}

#[test]
fn closures_are_serializers() {
    let upper = |_topic: &str, s: &str| -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(Bytes::from(s.to_uppercase())))
    };
    assert_eq!(bytes(&upper, "abc"), b"ABC");

    let failing = |topic: &str, _: &i32| -> Result<Option<Bytes>, SerializeError> {
        Err(SerializeError::custom(format!("no ints on {topic}")))
    };
    let e = failing
        .serialize("numbers", &mut Vec::new(), &1)
        .unwrap_err();
    assert!(matches!(e, SerializeError::Custom(_)));
    assert_eq!(e.to_string(), "no ints on numbers");
}

#[test]
fn serializers_are_object_safe_and_shareable() {
    let serializers: Vec<Box<dyn Serializer<str>>> =
        vec![Box::new(StringSerializer), Box::new(ContentTypeSerializer)];
    for s in &serializers {
        assert_eq!(
            s.serialize("t", &mut Vec::new(), "x").unwrap().unwrap(),
            "x"
        );
    }
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StringSerializer>();
    assert_send_sync::<Box<dyn Serializer<str>>>();
}

/// A user serializer that adds a header, as Java serializers may.
struct ContentTypeSerializer;

impl Serializer<str> for ContentTypeSerializer {
    fn serialize(
        &self,
        _topic: &str,
        headers: &mut Vec<Header>,
        data: &str,
    ) -> Result<Option<Bytes>, SerializeError> {
        headers.push(Header {
            key: "content-type".to_owned(),
            value: Some(Bytes::from_static(b"text/plain")),
        });
        Ok(Some(Bytes::copy_from_slice(data.as_bytes())))
    }
}

#[test]
fn a_serializer_may_add_headers() {
    let mut headers = vec![Header {
        key: "trace".to_owned(),
        value: None,
    }];
    ContentTypeSerializer
        .serialize("t", &mut headers, "x")
        .unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[1].key, "content-type");
    assert_eq!(headers[1].value.as_deref(), Some(&b"text/plain"[..]));
}

#[cfg(feature = "json")]
mod json {
    use super::*;
    use kafka_sansio::serialize::JsonSerializer;

    #[derive(serde::Serialize)]
    struct User {
        name: String,
        age: u32,
        email: Option<String>,
    }

    #[test]
    fn writes_compact_json() {
        let u = User {
            name: "Ann".into(),
            age: 30,
            email: None,
        };
        assert_eq!(
            bytes(&JsonSerializer, &u),
            br#"{"name":"Ann","age":30,"email":null}"#
        );
        assert_eq!(bytes(&JsonSerializer, "é"), b"\"\xc3\xa9\"");
        assert_eq!(bytes(&JsonSerializer, &[1, 2]), b"[1,2]");
    }

    #[test]
    fn top_level_none_is_null() {
        assert_eq!(ser(&JsonSerializer, &None::<User>), None);
        assert_eq!(bytes(&JsonSerializer, &Some(1)), b"1");
    }

    #[test]
    fn errors_name_the_topic() {
        use std::collections::BTreeMap;
        // JSON object keys must be strings.
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1);
        let e = JsonSerializer
            .serialize("events", &mut Vec::new(), &m)
            .unwrap_err();
        assert!(matches!(&e, SerializeError::Json { topic, .. } if topic == "events"));
        assert_eq!(e.topic(), Some("events"));
        assert!(e.to_string().starts_with("topic events: JSON:"), "{e}");
    }
}
