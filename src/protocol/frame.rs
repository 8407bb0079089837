//! Framing: the size prefix, request and response headers, the `ApiMessage`
//! trait every message implements, and a deframer for stream bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{ProtocolError, Result};
use super::primitives::*;

/// Kafka API keys this crate speaks (the numbers are Kafka's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ApiKey {
    /// Produce (0).
    Produce,
    /// Metadata (3).
    Metadata,
    /// ApiVersions (18).
    ApiVersions,
    /// InitProducerId (22).
    InitProducerId,
    /// Fetch (1).
    Fetch,
    /// ListOffsets (2).
    ListOffsets,
    /// FindCoordinator (10).
    FindCoordinator,
    /// AddPartitionsToTxn (24).
    AddPartitionsToTxn,
    /// AddOffsetsToTxn (25).
    AddOffsetsToTxn,
    /// EndTxn (26).
    EndTxn,
    /// TxnOffsetCommit (28).
    TxnOffsetCommit,
}

impl ApiKey {
    /// Kafka's numeric key.
    pub const fn code(self) -> i16 {
        match self {
            ApiKey::Produce => 0,
            ApiKey::Metadata => 3,
            ApiKey::ApiVersions => 18,
            ApiKey::InitProducerId => 22,
            ApiKey::Fetch => 1,
            ApiKey::ListOffsets => 2,
            ApiKey::FindCoordinator => 10,
            ApiKey::AddPartitionsToTxn => 24,
            ApiKey::AddOffsetsToTxn => 25,
            ApiKey::EndTxn => 26,
            ApiKey::TxnOffsetCommit => 28,
        }
    }

    /// The key for a numeric code, if this crate speaks it.
    pub const fn from_code(code: i16) -> Option<ApiKey> {
        Some(match code {
            0 => ApiKey::Produce,
            3 => ApiKey::Metadata,
            18 => ApiKey::ApiVersions,
            22 => ApiKey::InitProducerId,
            1 => ApiKey::Fetch,
            2 => ApiKey::ListOffsets,
            10 => ApiKey::FindCoordinator,
            24 => ApiKey::AddPartitionsToTxn,
            25 => ApiKey::AddOffsetsToTxn,
            26 => ApiKey::EndTxn,
            28 => ApiKey::TxnOffsetCommit,
            _ => return None,
        })
    }

    /// Every key this crate speaks (new keys are appended, so indexes stay stable).
    pub const ALL: [ApiKey; 11] = [
        ApiKey::Produce,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::InitProducerId,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::FindCoordinator,
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::EndTxn,
        ApiKey::TxnOffsetCommit,
    ];

    /// Versions of this API that the codec implements, `(min, max)`.
    pub const fn versions(self) -> (i16, i16) {
        match self {
            // Produce v12 is Kafka 4.0 (KIP-890), v13 Kafka 4.1 (KIP-516: topics by
            // id); Metadata v13 is Kafka 4.0 (KIP-1102: a top-level error code).
            ApiKey::Produce => (3, 13),
            ApiKey::Metadata => (1, 13),
            ApiKey::ApiVersions => (0, 4),
            // v6 is KIP-939 (two-phase commit).
            ApiKey::InitProducerId => (0, 6),
            // v4 is the first to read RecordBatch v2; v13 names topics by id.
            ApiKey::Fetch => (4, 12),
            ApiKey::ListOffsets => (1, 7),
            // v4+ batches keys (KIP-699); v6 adds share groups (KIP-932).
            ApiKey::FindCoordinator => (0, 6),
            // v4+ is the brokers' batched form; clients send v0-3 (KIP-890).
            ApiKey::AddPartitionsToTxn => (0, 5),
            ApiKey::AddOffsetsToTxn => (0, 4),
            // v5 bumps the epoch at every transaction end (KIP-890 part 2).
            ApiKey::EndTxn => (0, 5),
            // v6 names topics by id (KIP-1319), not spoken.
            ApiKey::TxnOffsetCommit => (0, 5),
        }
    }

    /// First flexible version (compact encodings, tagged fields).
    pub const fn first_flexible(self) -> i16 {
        match self {
            ApiKey::Produce => 9,
            ApiKey::Metadata => 9,
            ApiKey::ApiVersions => 3,
            ApiKey::InitProducerId => 2,
            ApiKey::Fetch => 12,
            ApiKey::ListOffsets => 6,
            ApiKey::FindCoordinator => 3,
            ApiKey::AddPartitionsToTxn => 3,
            ApiKey::AddOffsetsToTxn => 3,
            ApiKey::EndTxn => 3,
            ApiKey::TxnOffsetCommit => 3,
        }
    }

    /// True when `version` of this API uses the flexible encodings.
    pub const fn is_flexible(self, version: i16) -> bool {
        version >= self.first_flexible()
    }

    /// Request header version for `version` of this API (1, or 2 when flexible).
    pub const fn request_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) {
            2
        } else {
            1
        }
    }

    /// Response header version for `version` of this API (0, or 1 when
    /// flexible; ApiVersions responses always use 0 so that a client can read
    /// the answer before it knows which versions the broker speaks).
    pub const fn response_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) && !matches!(self, ApiKey::ApiVersions) {
            1
        } else {
            0
        }
    }

    /// Fails with `UnsupportedVersion` when the codec does not implement `version`.
    pub fn check_version(self, version: i16) -> Result<()> {
        let (min, max) = self.versions();
        if version < min || version > max {
            return Err(ProtocolError::UnsupportedVersion {
                api_key: self.code(),
                version,
            });
        }
        Ok(())
    }
}

/// A message body (request or response) of one API, encodable and decodable
/// at every version in `API_KEY.versions()`.
pub trait ApiMessage: Sized {
    /// The API this message belongs to.
    const API_KEY: ApiKey;
    /// Appends the body at `version`; fails on versions outside the range or
    /// values the version cannot carry.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()>;
    /// [`ApiMessage::encode`], except that the message may leave byte fields
    /// it holds as `Bytes` out of `buf` (Produce leaves out its records):
    /// each is pushed on `holes` with the offset in `buf` where it belongs,
    /// for [`encode_request_split`] to send as it is instead of copying it.
    /// By default nothing is left out.
    fn encode_split(
        &self,
        buf: &mut BytesMut,
        version: i16,
        holes: &mut Vec<(usize, Bytes)>,
    ) -> Result<()> {
        let _ = holes;
        self.encode(buf, version)
    }
    /// Decodes the body at `version` from `buf`, leaving any bytes after it.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self>;
}

/// A request message, tied to its response type.
pub trait Request: ApiMessage {
    /// The response message of this API.
    type Response: ApiMessage;
}

/// Request header (v1, or v2 for flexible versions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// API key of the request body.
    pub api_key: i16,
    /// API version of the request body.
    pub api_version: i16,
    /// Correlation id echoed by the response.
    pub correlation_id: i32,
    /// Client id (a classic nullable string in both header versions).
    pub client_id: Option<String>,
    /// Unknown tagged fields (v2).
    pub tagged_fields: TaggedFields,
}

impl RequestHeader {
    /// Appends the header in `header_version` (1 or 2); fails, writing
    /// nothing, when the client id is longer than 32767 bytes.
    pub fn encode(&self, buf: &mut impl BufMut, header_version: i16) -> Result<()> {
        // Checked before the first byte because a `BufMut` cannot be rolled
        // back, and with an error that names the field at fault.
        if self
            .client_id
            .as_ref()
            .is_some_and(|c| c.len() > MAX_STRING_LEN)
        {
            return Err(ProtocolError::Invalid("client id longer than 32767 bytes"));
        }
        buf.put_i16(self.api_key);
        buf.put_i16(self.api_version);
        buf.put_i32(self.correlation_id);
        put_nullable_string(buf, self.client_id.as_deref(), false)?;
        if header_version >= 2 {
            put_unknown_tagged_fields(buf, &self.tagged_fields);
        }
        Ok(())
    }

    /// Decodes a request header, choosing v1 or v2 from the API key and
    /// version it carries; unknown API keys are read as v1.
    pub fn decode(buf: &mut Bytes) -> Result<Self> {
        let api_key = get_i16(buf)?;
        let api_version = get_i16(buf)?;
        let correlation_id = get_i32(buf)?;
        let client_id = get_nullable_string(buf, false)?;
        let flexible = ApiKey::from_code(api_key)
            .map(|k| k.request_header_version(api_version) >= 2)
            .unwrap_or(false);
        let tagged_fields = if flexible {
            get_unknown_tagged_fields(buf)?
        } else {
            TaggedFields::default()
        };
        Ok(RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
            tagged_fields,
        })
    }
}

/// Response header (v0, or v1 with tagged fields).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHeader {
    /// Correlation id of the request answered.
    pub correlation_id: i32,
    /// Unknown tagged fields (v1).
    pub tagged_fields: TaggedFields,
}

impl ResponseHeader {
    /// Appends the header in `header_version` (0 or 1).
    pub fn encode(&self, buf: &mut impl BufMut, header_version: i16) {
        buf.put_i32(self.correlation_id);
        if header_version >= 1 {
            put_unknown_tagged_fields(buf, &self.tagged_fields);
        }
    }

    /// Decodes a response header of `header_version` (0 or 1).
    pub fn decode(buf: &mut Bytes, header_version: i16) -> Result<Self> {
        let correlation_id = get_i32(buf)?;
        let tagged_fields = if header_version >= 1 {
            get_unknown_tagged_fields(buf)?
        } else {
            TaggedFields::default()
        };
        Ok(ResponseHeader {
            correlation_id,
            tagged_fields,
        })
    }
}

/// Appends the header of an `R` request at `version`, in the header version it takes.
fn put_request_header<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
) -> Result<()> {
    RequestHeader {
        api_key: R::API_KEY.code(),
        api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        tagged_fields: TaggedFields::default(),
    }
    .encode(buf, R::API_KEY.request_header_version(version))
}

/// Appends a whole request frame (size, header, body) to `buf`.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
) -> Result<()> {
    R::API_KEY.check_version(version)?;
    let start = buf.len();
    buf.put_i32(0);
    let encoded = put_request_header::<R>(buf, correlation_id, client_id, version)
        .and_then(|()| request.encode(buf, version));
    if let Err(e) = encoded {
        buf.truncate(start);
        return Err(e);
    }
    patch_size(buf, start);
    Ok(())
}

/// Encodes a whole request frame as consecutive pieces appended to `out`,
/// whose concatenation is byte for byte what [`encode_request`] writes;
/// returns the frame's length (the pieces' total).
///
/// The fields the message leaves out ([`ApiMessage::encode_split`], e.g.
/// Produce records) are pieces of their own, reference-counted clones of the
/// message's `Bytes`: a 1 MiB record batch is not copied into the request,
/// and an in-flight request does not hold a second copy of it. Empty pieces
/// are not emitted.
pub fn encode_request_split<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
    out: &mut Vec<Bytes>,
) -> Result<usize> {
    R::API_KEY.check_version(version)?;
    // Without its records a request is small: one allocation, no regrowth.
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    put_request_header::<R>(&mut buf, correlation_id, client_id, version)?;
    let mut holes = Vec::new();
    request.encode_split(&mut buf, version, &mut holes)?;
    let total = holes.iter().map(|(_, b)| b.len()).sum::<usize>() + buf.len();
    let size = i32::try_from(total - 4)
        .map_err(|_| ProtocolError::Invalid("request larger than i32::MAX"))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    let mut encoded = buf.freeze();
    let mut at = 0;
    for (offset, data) in holes {
        if offset > at {
            out.push(encoded.split_to(offset - at));
            at = offset;
        }
        if !data.is_empty() {
            out.push(data);
        }
    }
    if !encoded.is_empty() {
        out.push(encoded);
    }
    Ok(total)
}

/// Appends a whole response frame (size, header, body) to `buf`.
pub fn encode_response<M: ApiMessage>(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    response: &M,
) -> Result<()> {
    M::API_KEY.check_version(version)?;
    let start = buf.len();
    buf.put_i32(0);
    ResponseHeader {
        correlation_id,
        tagged_fields: TaggedFields::default(),
    }
    .encode(buf, M::API_KEY.response_header_version(version));
    if let Err(e) = response.encode(buf, version) {
        buf.truncate(start);
        return Err(e);
    }
    patch_size(buf, start);
    Ok(())
}

fn patch_size(buf: &mut BytesMut, start: usize) {
    let size = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Decodes a response body of `version` after its header, from a whole frame
/// (without the size prefix), requiring the body to use the frame exactly.
pub fn decode_response<M: ApiMessage>(frame: Bytes, version: i16) -> Result<(ResponseHeader, M)> {
    M::API_KEY.check_version(version)?;
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, M::API_KEY.response_header_version(version))?;
    let body = M::decode(&mut buf, version)?;
    if buf.has_remaining() {
        return Err(ProtocolError::TrailingBytes(buf.remaining()));
    }
    Ok((header, body))
}

/// Decodes a response as Java's generated readers do: the fields of
/// `version`, and whatever follows them skipped, so that a broker that
/// appends bytes a version does not define (librdkafka 2.12's mock cluster
/// after Metadata v12) is still understood. Returns the header, the body and
/// how many bytes were skipped. A body that is short, or whose fields are out
/// of range, stays an error; [`decode_response`] is the strict form.
pub fn decode_response_lenient<M: ApiMessage>(
    frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, M, usize)> {
    M::API_KEY.check_version(version)?;
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, M::API_KEY.response_header_version(version))?;
    let body = M::decode(&mut buf, version)?;
    Ok((header, body, buf.remaining()))
}

/// Reads only the correlation id at the start of a response frame.
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32> {
    if frame.len() < 4 {
        return Err(ProtocolError::Truncated {
            needed: 4 - frame.len(),
        });
    }
    Ok(i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]))
}

/// Default cap on one incoming frame (Kafka's `socket.request.max.bytes`, 100 MiB).
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// Turns stream bytes, in any split, into whole frames (the bytes after each
/// 4-byte size prefix).
///
/// Memory is bounded: a frame larger than `max_frame` is an error as soon as
/// its size prefix arrives, before any of its bytes are buffered.
#[derive(Debug)]
pub struct Deframer {
    buf: BytesMut,
    max_frame: usize,
}

impl Deframer {
    /// A deframer that rejects frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Deframer {
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends received stream bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    ///
    /// After an error the stream is out of sync; the connection must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 {
            return Err(ProtocolError::BadLength(size as i64));
        }
        if size as usize > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                size: size as i64,
                max: self.max_frame,
            });
        }
        let size = size as usize;
        if self.buf.len() < 4 + size {
            // Reserve what the frame needs (bounded by max_frame) to avoid
            // repeated regrowth on large frames.
            self.buf.reserve(4 + size - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// Drops everything buffered (after a reconnect).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframes_any_split() {
        let mut stream = Vec::new();
        for i in 0..5u8 {
            stream.extend_from_slice(&(i as i32).to_be_bytes());
            stream.extend(std::iter::repeat_n(i, i as usize));
        }
        for chunk in 1..stream.len() {
            let mut d = Deframer::new(100);
            let mut frames = Vec::new();
            for c in stream.chunks(chunk) {
                d.push(c);
                while let Some(f) = d.next_frame().unwrap() {
                    frames.push(f);
                }
            }
            assert_eq!(frames.len(), 5);
            for (i, f) in frames.iter().enumerate() {
                assert_eq!(f.len(), i);
                assert!(f.iter().all(|b| *b as usize == i));
            }
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn rejects_oversized_and_negative_frames() {
        let mut d = Deframer::new(10);
        d.push(&11i32.to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(ProtocolError::FrameTooLarge { size: 11, max: 10 })
        );
        let mut d = Deframer::new(10);
        d.push(&(-5i32).to_be_bytes());
        assert_eq!(d.next_frame(), Err(ProtocolError::BadLength(-5)));
    }
}
