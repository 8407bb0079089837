//! SaslHandshake (key 17), versions 0-1, never flexible, and SaslAuthenticate
//! (key 36), versions 0-2, flexible from 2 (`SaslHandshakeRequest.json`,
//! `SaslHandshakeResponse.json`, `SaslAuthenticateRequest.json`,
//! `SaslAuthenticateResponse.json`).
//!
//! SaslHandshake v1 announces that the SASL tokens follow in SaslAuthenticate
//! requests (KIP-152); v0 sent them as raw size-prefixed frames, which this
//! crate does not speak beyond the handshake message itself.

use bytes::{BufMut, Bytes, BytesMut};

use super::{absent, get_tags, put_arr, put_nstr, put_str, put_tags};
use crate::protocol::error::Result;
use crate::protocol::frame::{ApiKey, ApiMessage, Request};
use crate::protocol::primitives::*;

/// SaslHandshake request: names the SASL mechanism the client will use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeRequest {
    /// The SASL mechanism chosen by the client (e.g. `SCRAM-SHA-512`).
    pub mechanism: String,
}

impl ApiMessage for SaslHandshakeRequest {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        put_str(buf, &self.mechanism, false)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        Ok(SaslHandshakeRequest {
            mechanism: get_string(buf, false)?,
        })
    }
}

impl Request for SaslHandshakeRequest {
    type Response = SaslHandshakeResponse;
}

/// SaslHandshake response: an error code and the mechanisms the broker enables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    /// The error code, or 0 (`UNSUPPORTED_SASL_MECHANISM` when the broker
    /// does not enable the requested mechanism).
    pub error_code: i16,
    /// The mechanisms enabled in the broker.
    pub mechanisms: Vec<String>,
}

impl ApiMessage for SaslHandshakeResponse {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        buf.put_i16(self.error_code);
        put_arr(buf, &self.mechanisms, false, |b, m| put_str(b, m, false))
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        Ok(SaslHandshakeResponse {
            error_code: get_i16(buf)?,
            mechanisms: get_array(buf, false, |b| get_string(b, false))?,
        })
    }
}

/// SaslAuthenticate request: one client token of the SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateRequest {
    /// The SASL authentication bytes from the client, as the mechanism defines them.
    pub auth_bytes: Bytes,
    /// Unknown tagged fields (v2+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for SaslAuthenticateRequest {
    const API_KEY: ApiKey = ApiKey::SaslAuthenticate;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        put_bytes(buf, &self.auth_bytes, flex);
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        Ok(SaslAuthenticateRequest {
            auth_bytes: get_bytes(buf, flex)?,
            tagged_fields: get_tags(buf, flex, |_, _| Ok(false))?,
        })
    }
}

impl Request for SaslAuthenticateRequest {
    type Response = SaslAuthenticateResponse;
}

/// SaslAuthenticate response: the broker's token, or why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    /// The error code, or 0 (`SASL_AUTHENTICATION_FAILED` on bad credentials).
    pub error_code: i16,
    /// The error message, or null.
    pub error_message: Option<String>,
    /// The SASL authentication bytes from the server, as the mechanism defines them.
    pub auth_bytes: Bytes,
    /// Milliseconds after which the broker closes the connection unless the
    /// client re-authenticates (v1+, KIP-368; 0: no limit).
    pub session_lifetime_ms: i64,
    /// Unknown tagged fields (v2+).
    pub tagged_fields: TaggedFields,
}

impl ApiMessage for SaslAuthenticateResponse {
    const API_KEY: ApiKey = ApiKey::SaslAuthenticate;

    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        buf.put_i16(self.error_code);
        put_nstr(buf, self.error_message.as_deref(), flex)?;
        put_bytes(buf, &self.auth_bytes, flex);
        if version >= 1 {
            buf.put_i64(self.session_lifetime_ms);
        } else {
            absent(
                &self.session_lifetime_ms,
                &0,
                "SaslAuthenticate session_lifetime_ms before v1",
            )?;
        }
        put_tags(buf, flex, &[], &self.tagged_fields)
    }

    fn decode(buf: &mut Bytes, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        let flex = Self::API_KEY.is_flexible(version);
        let mut r = SaslAuthenticateResponse {
            error_code: get_i16(buf)?,
            error_message: get_nullable_string(buf, flex)?,
            auth_bytes: get_bytes(buf, flex)?,
            ..Default::default()
        };
        if version >= 1 {
            r.session_lifetime_ms = get_i64(buf)?;
        }
        r.tagged_fields = get_tags(buf, flex, |_, _| Ok(false))?;
        Ok(r)
    }
}
