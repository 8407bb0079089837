//! Fuzz entry points for the wire codec, shared by the cargo-fuzz targets in
//! `fuzz/` and by the stable replay test `tests/fuzz_corpus.rs`.
//!
//! Each function takes arbitrary bytes, must never panic on its own, and
//! panics (with a message) when a property of the codec does not hold.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use super::error::ProtocolError;
use super::frame::{decode_response, ApiKey, ApiMessage, Deframer, RequestHeader, ResponseHeader};
use super::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use super::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use super::messages::metadata::{MetadataRequest, MetadataResponse};
use super::messages::produce::{ProduceRequest, ProduceResponse};

/// Largest frame the `frames` target lets the deframer accept.
const MAX_FRAME: usize = 1 << 16;

/// Frames: `data[0]` picks the deframer's max frame size, `data[1]` how the
/// stream is split into pushes, the rest is the stream (size-prefixed frames).
///
/// Checks: the deframer returns the same frames and the same error for any
/// split as a one-shot reference parser does, and never buffers more than it
/// was given; every frame is decoded as each response type at each version
/// the codec supports (ApiVersions also through `decode_fallback`) and as a
/// request (header, then each request type at each version); whatever decodes
/// re-encodes, decodes again to an equal value, and re-encodes to the same
/// bytes. Encoding may refuse only with `ProtocolError::Invalid` (a value the
/// version cannot carry).
pub fn fuzz_frames(data: &[u8]) {
    let (max_frame, split, stream) = match data {
        [a, b, rest @ ..] => ([8, 64, 512, 4096, MAX_FRAME][*a as usize % 5], *b, rest),
        _ => return,
    };
    let (expected, expected_err) = reference_frames(stream, max_frame);
    let mut d = Deframer::new(max_frame);
    let mut frames = Vec::new();
    let mut err = None;
    let mut pushed = 0;
    let mut rng = u32::from(split) | 1;
    let mut rest = stream;
    'push: while !rest.is_empty() {
        let n = if split == 0 {
            rest.len()
        } else {
            // xorshift32: a different split for each value of data[1].
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            1 + rng as usize % (1 + (split as usize % 32)).min(rest.len())
        };
        d.push(&rest[..n]);
        pushed += n;
        rest = &rest[n..];
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break 'push;
                }
            }
        }
        let consumed: usize = frames.iter().map(|f| 4 + f.len()).sum();
        assert_eq!(
            d.buffered(),
            pushed - consumed,
            "deframer lost or kept bytes"
        );
    }
    assert_eq!(frames, expected, "frames depend on the split");
    assert_eq!(err, expected_err, "deframer error depends on the split");
    for f in frames {
        decode_frame(f);
    }
}

/// The frames of `stream` and the error that stops it, parsed in one go.
fn reference_frames(mut stream: &[u8], max_frame: usize) -> (Vec<Bytes>, Option<ProtocolError>) {
    let mut out = Vec::new();
    while stream.len() >= 4 {
        let size = i32::from_be_bytes([stream[0], stream[1], stream[2], stream[3]]);
        if size < 0 {
            return (out, Some(ProtocolError::BadLength(size as i64)));
        }
        if size as usize > max_frame {
            return (
                out,
                Some(ProtocolError::FrameTooLarge {
                    size: size as i64,
                    max: max_frame,
                }),
            );
        }
        let end = 4 + size as usize;
        if stream.len() < end {
            break;
        }
        out.push(Bytes::copy_from_slice(&stream[4..end]));
        stream = &stream[end..];
    }
    (out, None)
}

/// Decodes one frame body every way a client or a broker could read it.
pub fn decode_frame(frame: Bytes) {
    responses::<ApiVersionsResponse>(&frame);
    responses::<MetadataResponse>(&frame);
    responses::<ProduceResponse>(&frame);
    responses::<InitProducerIdResponse>(&frame);
    api_versions_fallback(&frame);

    let mut body = frame.clone();
    let Ok(header) = RequestHeader::decode(&mut body) else {
        return;
    };
    let header_version = ApiKey::from_code(header.api_key)
        .map_or(1, |k| k.request_header_version(header.api_version));
    let mut again = BytesMut::new();
    header
        .encode(&mut again, header_version)
        .expect("a decoded header re-encodes");
    assert_eq!(
        RequestHeader::decode(&mut again.freeze()).as_ref(),
        Ok(&header),
        "request header round trip"
    );
    requests::<ApiVersionsRequest>(&body);
    requests::<MetadataRequest>(&body);
    requests::<ProduceRequest>(&body);
    requests::<InitProducerIdRequest>(&body);
}

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (lo, hi) = key.versions();
    lo..=hi
}

/// Decodes `frame` as a whole response of `M` at every version.
fn responses<M: ApiMessage + PartialEq + Debug>(frame: &Bytes) {
    for v in versions(M::API_KEY) {
        let Ok((header, body)) = decode_response::<M>(frame.clone(), v) else {
            continue;
        };
        let hv = M::API_KEY.response_header_version(v);
        let mut h = BytesMut::new();
        header.encode(&mut h, hv);
        let mut h = h.freeze();
        assert_eq!(
            ResponseHeader::decode(&mut h, hv).as_ref(),
            Ok(&header),
            "{:?} v{v} response header round trip",
            M::API_KEY
        );
        assert!(h.is_empty());
        roundtrip(&body, v, "response");
    }
}

/// Decodes a request body (after its header) as `M` at every version.
fn requests<M: ApiMessage + PartialEq + Debug>(body: &Bytes) {
    for v in versions(M::API_KEY) {
        let mut b = body.clone();
        if let Ok(m) = M::decode(&mut b, v) {
            roundtrip(&m, v, "request");
        }
    }
}

/// The KIP-511 fallback reader, as the producer uses it, at every requested version.
fn api_versions_fallback(frame: &Bytes) {
    let mut body = frame.clone();
    if ResponseHeader::decode(&mut body, 0).is_err() {
        return;
    }
    for v in versions(ApiKey::ApiVersions) {
        let mut b = body.clone();
        if let Ok(r) = ApiVersionsResponse::decode_fallback(&mut b, v) {
            assert!(b.is_empty(), "decode_fallback left bytes");
            // What it returns is some version's reading of the body (the
            // requested one may leave bytes after its last field), or the
            // bare error 35 it answers when no version reads it.
            let readable = [0, v].iter().any(|&at| {
                let mut b = body.clone();
                ApiVersionsResponse::decode(&mut b, at)
                    .is_ok_and(|x| x == r && (b.is_empty() || at == v))
            });
            let bare = r
                == ApiVersionsResponse {
                    error_code: 35,
                    ..Default::default()
                };
            assert!(readable || bare, "decode_fallback(v{v}) invented {r:?}");
        }
    }
}

/// `m` (decoded at `version`) encodes, decodes to itself, and encodes to the same bytes.
fn roundtrip<M: ApiMessage + PartialEq + Debug>(m: &M, version: i16, what: &str) {
    let key = M::API_KEY;
    let mut first = BytesMut::new();
    match m.encode(&mut first, version) {
        Ok(()) => {}
        Err(ProtocolError::Invalid(_)) => return,
        Err(e) => panic!("{key:?} v{version} {what}: decoded but encoding fails: {e}\n{m:?}"),
    }
    let first = first.freeze();
    let mut b = first.clone();
    let again = M::decode(&mut b, version).unwrap_or_else(|e| {
        panic!("{key:?} v{version} {what}: own encoding does not decode: {e}\n{m:?}")
    });
    assert!(
        b.is_empty(),
        "{key:?} v{version} {what}: own encoding has {} bytes left over",
        b.len()
    );
    assert_eq!(&again, m, "{key:?} v{version} {what}: decode/encode/decode");
    let mut second = BytesMut::new();
    again
        .encode(&mut second, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version} {what}: second encode fails: {e}"));
    assert_eq!(
        second, first,
        "{key:?} v{version} {what}: encoding is not stable"
    );
}
