//! Scaffolding shared by the message codec tests (`protocol_messages.rs`,
//! `fetch.rs`): quickcheck generators, the per-version normalization trait,
//! the round-trip property and the hand-built vector check. Kept in one place
//! so that both files test their messages by the same rules.

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck};

use kafka_sansio::protocol::primitives::TaggedFields;
use kafka_sansio::protocol::ApiMessage;

// ---------------------------------------------------------------- generators

/// A length from 0 to `max`, so that generated messages stay small.
pub fn small_len(g: &mut Gen, max: usize) -> usize {
    usize::arbitrary(g) % (max + 1)
}

/// A short string, with multi-byte characters so that byte and char lengths differ.
pub fn s(g: &mut Gen) -> String {
    let n = small_len(g, 12);
    (0..n)
        .map(|_| {
            *g.choose(&['a', 'b', 'z', '-', '.', '_', '0', 'é', '€'])
                .unwrap()
        })
        .collect()
}

/// A vector of up to `max` elements made by `f`.
pub fn vec_of<T>(g: &mut Gen, max: usize, mut f: impl FnMut(&mut Gen) -> T) -> Vec<T> {
    let n = small_len(g, max);
    (0..n).map(|_| f(g)).collect()
}

/// Unknown tagged fields in tag order; tags start at 10 so that they never
/// collide with a known tag of the messages under test.
pub fn tags(g: &mut Gen) -> TaggedFields {
    let mut v: Vec<(u32, Bytes)> = vec_of(g, 2, |g| {
        let tag = 10 + u32::arbitrary(g) % 300;
        let data: Vec<u8> = vec_of(g, 5, u8::arbitrary);
        (tag, Bytes::from(data))
    });
    v.sort_by_key(|t| t.0);
    v.dedup_by_key(|t| t.0);
    TaggedFields(v)
}

/// A generated message, normalized per version before use.
#[derive(Debug, Clone)]
pub struct Arb<T>(pub T);

// ---------------------------------------------------------------- normalization

/// Resets what version `v` cannot carry to its default, so that a round trip
/// is the identity: fields absent from a version go back to their default,
/// nulls stay only where the version allows them, tagged fields only in
/// flexible versions.
pub trait Normalize {
    /// Normalizes `self` for version `v`.
    fn normalize(&mut self, v: i16);
}

/// Clears tagged fields in a version that is not flexible (they cannot be carried).
pub fn untag(t: &mut TaggedFields, flex: bool) {
    if !flex {
        *t = TaggedFields::default();
    }
}

// ---------------------------------------------------------------- checks

/// Encodes `m` at version `v`; a value normalized for `v` must encode.
pub fn encode<M: ApiMessage>(m: &M, v: i16) -> Bytes {
    let mut b = BytesMut::new();
    m.encode(&mut b, v).expect("normalized value encodes");
    b.freeze()
}

/// encode → decode → equal; encode again → same bytes; every truncation → Err.
pub fn check_round_trip<M>(m: &M, v: i16) -> bool
where
    M: ApiMessage + Normalize + Clone + PartialEq + std::fmt::Debug,
{
    let mut m = m.clone();
    m.normalize(v);
    let bytes = encode(&m, v);
    let mut r = bytes.clone();
    let back = match M::decode(&mut r, v) {
        Ok(back) => back,
        Err(e) => panic!("v{v}: {e} decoding {m:?}"),
    };
    assert!(r.is_empty(), "v{v}: {} byte(s) left", r.len());
    assert_eq!(back, m, "v{v}");
    assert_eq!(encode(&back, v), bytes, "v{v}: re-encoding differs");
    for cut in 0..bytes.len() {
        let mut short = bytes.slice(..cut);
        assert!(
            M::decode(&mut short, v).is_err(),
            "v{v}: prefix {cut} decoded"
        );
    }
    true
}

/// Runs [`check_round_trip`] at every version of `M`'s API on 200 generated values.
pub fn qc<M>()
where
    M: ApiMessage + Normalize + Clone + PartialEq + std::fmt::Debug + 'static,
    Arb<M>: Arbitrary,
{
    fn prop<M>(a: Arb<M>) -> bool
    where
        M: ApiMessage + Normalize + Clone + PartialEq + std::fmt::Debug,
    {
        let (lo, hi) = M::API_KEY.versions();
        (lo..=hi).all(|v| check_round_trip(&a.0, v))
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop::<M> as fn(Arb<M>) -> bool);
}

// ---------------------------------------------------------------- spec vectors

/// Bytes from hex digits; white space is ignored so that vectors can be
/// written field by field.
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `m` encodes at version `v` to exactly `wire` (hex) and decodes back from it.
pub fn vector<M: ApiMessage + PartialEq + std::fmt::Debug>(m: &M, v: i16, wire: &str) {
    let wire = hex(wire);
    assert_eq!(&encode(m, v)[..], &wire[..], "encode v{v}");
    let mut r = Bytes::from(wire);
    assert_eq!(&M::decode(&mut r, v).unwrap(), m, "decode v{v}");
    assert!(r.is_empty());
}
