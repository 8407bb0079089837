//! ApiVersions (key 18), versions 0-4, flexible from 3 (`ApiVersionsRequest.json`,
//! `ApiVersionsResponse.json`), plus version negotiation.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{get_tags, put_arr, put_str, put_tagged, put_tags, tagged_done};
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// ApiVersions request: asks a broker which versions of each API it speaks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest {
    /// The name of the client (v3+).
    pub client_software_name: String,
    /// The version of the client (v3+).
    pub client_software_version: String,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for ApiVersionsRequest {
    const API_KEY: ApiKey = ApiKey::ApiVersions;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        if version >= 3 {
            put_str(buf, &self.client_software_name, flex)?;
            put_str(buf, &self.client_software_version, flex)?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = ApiVersionsRequest::default();
        if version >= 3 {
            r.client_software_name = get_string(buf, flex)?;
            r.client_software_version = get_string(buf, flex)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}

impl Request for ApiVersionsRequest {
    type Response = ApiVersionsResponse;
}

/// One API the broker supports, with its version range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersion {
    /// The API index.
    pub api_key: i16,
    /// The minimum supported version, inclusive.
    pub min_version: i16,
    /// The maximum supported version, inclusive.
    pub max_version: i16,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

/// A feature the broker supports (tagged field 0, v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupportedFeatureKey {
    /// The name of the feature.
    pub name: String,
    /// The minimum supported version for the feature.
    pub min_version: i16,
    /// The maximum supported version for the feature.
    pub max_version: i16,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A cluster-wide finalized feature (tagged field 2, v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FinalizedFeatureKey {
    /// The name of the feature.
    pub name: String,
    /// The cluster-wide finalized max version level for the feature.
    pub max_version_level: i16,
    /// The cluster-wide finalized min version level for the feature.
    pub min_version_level: i16,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// Name of the feature whose finalized level selects the transaction
/// protocol (KIP-890, KIP-1022).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// ApiVersions response: the APIs and versions the broker supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    /// The top-level error code.
    pub error_code: i16,
    /// The APIs supported by the broker.
    pub api_keys: Vec<ApiVersion>,
    /// Throttle time in milliseconds (v1+).
    pub throttle_time_ms: i32,
    /// Features supported by the broker (tag 0, v3+).
    pub supported_features: Vec<SupportedFeatureKey>,
    /// Epoch of the finalized features, -1 if unknown (tag 1, v3+).
    pub finalized_features_epoch: i64,
    /// Cluster-wide finalized features (tag 2, v3+).
    pub finalized_features: Vec<FinalizedFeatureKey>,
    /// Set by a KRaft controller ready for ZK migration (tag 3, v3+).
    pub zk_migration_ready: bool,
    /// Unknown tagged fields (v3+).
    pub tagged_fields: TaggedFields,
}

impl Default for ApiVersionsResponse {
    fn default() -> Self {
        ApiVersionsResponse {
            error_code: 0,
            api_keys: Vec::new(),
            throttle_time_ms: 0,
            supported_features: Vec::new(),
            finalized_features_epoch: -1,
            finalized_features: Vec::new(),
            zk_migration_ready: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

fn encode_supported(buf: &mut BytesMut, f: &SupportedFeatureKey) -> Result<()> {
    put_str(buf, &f.name, true)?;
    buf.put_i16(f.min_version);
    buf.put_i16(f.max_version);
    put_tagged(buf, &[], &f.tagged_fields)
}

fn decode_supported(buf: &mut Bytes) -> Result<SupportedFeatureKey> {
    Ok(SupportedFeatureKey {
        name: get_string(buf, true)?,
        min_version: get_i16(buf)?,
        max_version: get_i16(buf)?,
        tagged_fields: get_unknown_tagged_fields(buf)?,
    })
}

fn encode_finalized(buf: &mut BytesMut, f: &FinalizedFeatureKey) -> Result<()> {
    put_str(buf, &f.name, true)?;
    buf.put_i16(f.max_version_level);
    buf.put_i16(f.min_version_level);
    put_tagged(buf, &[], &f.tagged_fields)
}

fn decode_finalized(buf: &mut Bytes) -> Result<FinalizedFeatureKey> {
    Ok(FinalizedFeatureKey {
        name: get_string(buf, true)?,
        max_version_level: get_i16(buf)?,
        min_version_level: get_i16(buf)?,
        tagged_fields: get_unknown_tagged_fields(buf)?,
    })
}

impl ApiMessage for ApiVersionsResponse {
    const API_KEY: ApiKey = ApiKey::ApiVersions;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i16(self.error_code);
        put_arr(buf, &self.api_keys, flex, |buf, k| {
            buf.put_i16(k.api_key);
            buf.put_i16(k.min_version);
            buf.put_i16(k.max_version);
            put_tags(buf, flex, &[], &k.tagged_fields)
        })?;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        let mut known = Vec::new();
        if flex {
            if !self.supported_features.is_empty() {
                let mut b = BytesMut::new();
                put_arr(&mut b, &self.supported_features, true, encode_supported)?;
                known.push((0, b));
            }
            if self.finalized_features_epoch != -1 {
                let mut b = BytesMut::new();
                b.put_i64(self.finalized_features_epoch);
                known.push((1, b));
            }
            if !self.finalized_features.is_empty() {
                let mut b = BytesMut::new();
                put_arr(&mut b, &self.finalized_features, true, encode_finalized)?;
                known.push((2, b));
            }
            if self.zk_migration_ready {
                let mut b = BytesMut::new();
                b.put_u8(1);
                known.push((3, b));
            }
        }
        // The typed tagged fields are ignorable: left out before v3.
        put_tags(buf, flex, &known, &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = ApiVersionsResponse {
            error_code: get_i16(buf)?,
            ..Default::default()
        };
        r.api_keys = get_array(buf, flex, |buf| {
            Ok(ApiVersion {
                api_key: get_i16(buf)?,
                min_version: get_i16(buf)?,
                max_version: get_i16(buf)?,
                tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
            })
        })?;
        if version >= 1 {
            r.throttle_time_ms = get_i32(buf)?;
        }
        if flex {
            let mut supported = Vec::new();
            let mut epoch = -1;
            let mut finalized = Vec::new();
            let mut zk = false;
            r.tagged_fields = get_tagged_fields(buf, |tag, field| {
                // A field at its default value stays raw (see get_tagged_fields).
                let typed = match tag {
                    0 => {
                        supported = get_array(field, true, decode_supported)?;
                        !supported.is_empty()
                    }
                    1 => {
                        epoch = get_i64(field)?;
                        epoch != -1
                    }
                    2 => {
                        finalized = get_array(field, true, decode_finalized)?;
                        !finalized.is_empty()
                    }
                    3 => {
                        zk = get_bool(field)?;
                        zk
                    }
                    _ => return Ok(false),
                };
                tagged_done(field)?;
                Ok(typed)
            })?;
            r.supported_features = supported;
            r.finalized_features_epoch = epoch;
            r.finalized_features = finalized;
            r.zk_migration_ready = zk;
        }
        Ok(r)
    }
}

impl ApiVersionsResponse {
    /// Decodes a whole response body (the frame after its v0 header) to a
    /// request of `requested_version`, falling back to version 0 as the Java
    /// client does: a broker that does not speak the requested version answers
    /// UNSUPPORTED_VERSION (35) with a version 0 body (KIP-511).
    ///
    /// The body is first decoded at `requested_version`; when that fails, does
    /// not use the body exactly, or yields error 35, it is decoded again at
    /// version 0. If neither reads the body exactly, the fields of
    /// `requested_version` are taken with whatever follows them skipped (as
    /// Java reads any response) unless they carry error 35. If the body
    /// starts with error 35 and no version reads it, the result is a response
    /// with only `error_code` 35 set (the rest of such a body is not trusted;
    /// some brokers, e.g. librdkafka's mock cluster, send a malformed one):
    /// the caller then retries at the version `negotiate` gives for the
    /// returned ApiVersions entry, or at 0 when there is none. Otherwise the
    /// first error is returned. `buf` is consumed entirely on success.
    pub fn decode_fallback(buf: &mut Bytes, requested_version: i16) -> Result<Self> {
        Self::decode_fallback_counted(buf, requested_version).map(|(r, _)| r)
    }

    /// [`ApiVersionsResponse::decode_fallback`], also returning how many bytes
    /// after the last field of the version it took were skipped.
    pub fn decode_fallback_counted(
        buf: &mut Bytes,
        requested_version: i16,
    ) -> Result<(Self, usize)> {
        let original = buf.clone();
        let mut first_buf = original.clone();
        let first = ApiVersionsResponse::decode(&mut first_buf, requested_version);
        let left = first_buf.remaining();
        let fallback_needed = requested_version != 0
            && match &first {
                Ok(r) => left > 0 || r.error_code == ErrorCode::UnsupportedVersion.code(),
                Err(_) => true,
            };
        if fallback_needed {
            let mut v0_buf = original.clone();
            if let Ok(r) = ApiVersionsResponse::decode(&mut v0_buf, 0) {
                if !v0_buf.has_remaining() {
                    buf.advance(buf.remaining());
                    return Ok((r, 0));
                }
            }
        }
        let (r, skipped) = match first {
            // Read at the requested version with bytes after its last field:
            // those are skipped, unless the answer is error 35, whose body is
            // a version 0 one (read above when it is whole).
            Ok(r) if r.error_code != ErrorCode::UnsupportedVersion.code() || left == 0 => (r, left),
            first => {
                // Neither version reads the body, but it starts with error 35:
                // act on the error and trust nothing else (librdkafka's mock
                // cluster sends such bodies). The caller retries with v0.
                let code =
                    (original.len() >= 2).then(|| i16::from_be_bytes([original[0], original[1]]));
                if code == Some(ErrorCode::UnsupportedVersion.code()) && requested_version != 0 {
                    let bare = ApiVersionsResponse {
                        error_code: ErrorCode::UnsupportedVersion.code(),
                        ..Default::default()
                    };
                    (bare, 0)
                } else {
                    return Err(first.err().unwrap_or(ProtocolError::TrailingBytes(left)));
                }
            }
        };
        buf.advance(buf.remaining());
        Ok((r, skipped))
    }

    /// The cluster's finalized max version level of feature `name`, or
    /// `None` when the feature is not finalized (not listed, or level 0).
    pub fn finalized_feature_level(&self, name: &str) -> Option<i16> {
        self.finalized_features
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.max_version_level)
            .filter(|l| *l > 0)
    }

    /// The finalized `transaction.version` (KIP-890): 2 or more means
    /// transactions v2 (partitions added by Produce, epoch bumped by EndTxn);
    /// 0 when the broker does not report it.
    pub fn transaction_version(&self) -> i16 {
        self.finalized_feature_level(TRANSACTION_VERSION_FEATURE)
            .unwrap_or(0)
    }

    /// The broker's entry for `key`, if it lists that API.
    pub fn api_version(&self, key: ApiKey) -> Option<&ApiVersion> {
        self.api_keys.iter().find(|k| k.api_key == key.code())
    }
}

/// Highest version in both `ours` (`(min, max)`) and the broker's range, or
/// `None` when the ranges do not overlap.
pub fn negotiate(ours: (i16, i16), broker: &ApiVersion) -> Option<i16> {
    let lo = ours.0.max(broker.min_version);
    let hi = ours.1.min(broker.max_version);
    (lo <= hi).then_some(hi)
}

/// The version to use for each API this crate speaks, negotiated with one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NegotiatedVersions {
    versions: [Option<i16>; ApiKey::ALL.len()],
}

impl NegotiatedVersions {
    /// Negotiates every API in [`ApiKey::ALL`] against the codec's ranges
    /// ([`ApiKey::versions`]).
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        Self::with_ranges(response, ApiKey::versions)
    }

    /// Negotiates with our own range per API given by `ours` (e.g. a
    /// configuration that caps a version).
    pub fn with_ranges(
        response: &ApiVersionsResponse,
        ours: impl Fn(ApiKey) -> (i16, i16),
    ) -> Self {
        let mut versions = [None; ApiKey::ALL.len()];
        for (slot, key) in versions.iter_mut().zip(ApiKey::ALL) {
            *slot = response
                .api_version(key)
                .and_then(|b| negotiate(ours(key), b));
        }
        NegotiatedVersions { versions }
    }

    /// The version to use for `key`, `None` when the broker lacks the API or
    /// the ranges do not overlap.
    pub fn get(&self, key: ApiKey) -> Option<i16> {
        ApiKey::ALL
            .iter()
            .position(|k| *k == key)
            .and_then(|i| self.versions[i])
    }
}
