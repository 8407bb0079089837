//! OAUTHBEARER (RFC 7628): the client's initial response
//! `n,,\x01auth=Bearer <token>\x01[key=value\x01]*\x01`, a token from a
//! [`TokenProvider`] the application implements, and [`UnsecuredJwsProvider`],
//! the unsigned (`alg: none`) JWS that Java's `OAuthBearerLoginModule` makes
//! from its `unsecuredLogin*` options, for test clusters only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{SaslError, Step};
use crate::producer::security::jaas::JaasOptions;
use crate::producer::security::Password;

/// A bearer token and when it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearerToken {
    /// The compact-serialised token.
    pub value: Password,
    /// Expiry, milliseconds since the Unix epoch (the core refreshes before it).
    pub lifetime_ms: i64,
    /// The principal the token names, for logs.
    pub principal: String,
}

/// Gives OAUTHBEARER tokens; the application implements it (e.g. over an
/// OIDC client-credentials flow its own runtime performs).
pub trait TokenProvider: Send {
    /// A token valid at `now_ms` (milliseconds since the Unix epoch, the core's wall clock).
    fn token(&mut self, now_ms: i64) -> Result<OAuthBearerToken, String>;
}

/// Unsigned JWS tokens as Java's unsecured login callback handler makes them:
/// header `{"alg":"none"}`, claims `sub`, `iat`, `exp` and optionally `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredJwsProvider {
    /// The `sub` claim (`unsecuredLoginStringClaim_sub`).
    pub principal: String,
    /// Token lifetime in seconds (`unsecuredLoginLifetimeSeconds`, default 3600).
    pub lifetime_s: i64,
    /// The `scope` claim (`unsecuredLoginListClaim_scope`, Java's list form:
    /// its first character is the delimiter, e.g. `,read,write`).
    pub scope: Vec<String>,
}

/// A JSON string literal, escaping what JSON requires.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl UnsecuredJwsProvider {
    /// From the OAuthBearerLoginModule options; `sub` is required, as in Java.
    pub fn from_options(options: &JaasOptions) -> Result<Self, String> {
        let principal = options
            .get("unsecuredLoginStringClaim_sub")
            .ok_or("OAuthBearerLoginModule needs unsecuredLoginStringClaim_sub")?
            .to_string();
        let lifetime_s = match options.get("unsecuredLoginLifetimeSeconds") {
            Some(v) => v
                .parse()
                .map_err(|_| "unsecuredLoginLifetimeSeconds is not a number".to_string())?,
            None => 3600,
        };
        let scope = options
            .get("unsecuredLoginListClaim_scope")
            .and_then(|v| {
                let delimiter = v.chars().next()?;
                Some(
                    v[delimiter.len_utf8()..]
                        .split(delimiter)
                        .filter(|e| !e.is_empty())
                        .map(String::from)
                        .collect(),
                )
            })
            .unwrap_or_default();
        Ok(UnsecuredJwsProvider {
            principal,
            lifetime_s,
            scope,
        })
    }
}

impl TokenProvider for UnsecuredJwsProvider {
    fn token(&mut self, now_ms: i64) -> Result<OAuthBearerToken, String> {
        let iat = now_ms / 1000;
        let exp = iat + self.lifetime_s;
        let mut claims = format!(
            "{{\"sub\":{},\"iat\":{iat},\"exp\":{exp}",
            json_str(&self.principal)
        );
        if !self.scope.is_empty() {
            let list: Vec<String> = self.scope.iter().map(|s| json_str(s)).collect();
            claims.push_str(&format!(",\"scope\":[{}]", list.join(",")));
        }
        claims.push('}');
        let value = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        );
        Ok(OAuthBearerToken {
            value: Password::new(value),
            lifetime_ms: exp * 1000,
            principal: self.principal.clone(),
        })
    }
}

enum State {
    Initial,
    Sent,
    Rejected(String),
    Done,
}

/// The OAUTHBEARER client: one message; on failure the server sends a JSON
/// error, which the client acknowledges with `\x01` as RFC 7628 section 3.2.3 asks.
pub struct OAuthBearerClient {
    token: OAuthBearerToken,
    extensions: Vec<(String, String)>,
    state: State,
}

impl std::fmt::Debug for OAuthBearerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthBearerClient")
            .field("principal", &self.token.principal)
            .finish_non_exhaustive()
    }
}

impl OAuthBearerClient {
    /// A client sending `token` with SASL extensions (`sasl.oauthbearer.extensions`).
    pub fn new(token: OAuthBearerToken, extensions: Vec<(String, String)>) -> Self {
        OAuthBearerClient {
            token,
            extensions,
            state: State::Initial,
        }
    }

    /// A client with a token from `provider` at `now_ms`.
    pub fn from_provider(
        provider: &mut dyn TokenProvider,
        now_ms: i64,
        extensions: Vec<(String, String)>,
    ) -> Result<Self, SaslError> {
        let token = provider.token(now_ms).map_err(SaslError::NoToken)?;
        Ok(Self::new(token, extensions))
    }

    /// The token's expiry (milliseconds since the Unix epoch).
    pub fn token_lifetime_ms(&self) -> i64 {
        self.token.lifetime_ms
    }

    /// The client's initial response.
    pub fn initial(&mut self) -> Vec<u8> {
        self.state = State::Sent;
        let mut m = format!("n,,\x01auth=Bearer {}\x01", self.token.value.expose());
        for (k, v) in &self.extensions {
            m.push_str(&format!("{k}={v}\x01"));
        }
        m.push('\x01');
        m.into_bytes()
    }

    /// An empty token is success; a non-empty one is the server's error,
    /// answered with `\x01`, after which the next token fails the exchange.
    pub fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Sent if server.is_empty() => Ok(Step::Done),
            State::Sent => {
                let status = String::from_utf8_lossy(server).into_owned();
                self.state = State::Rejected(status);
                Ok(Step::Send(vec![0x01]))
            }
            State::Rejected(status) => Err(SaslError::TokenRejected(status)),
            State::Initial | State::Done => Err(SaslError::Unexpected("OAUTHBEARER")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::security::jaas::JaasConfig;

    #[test]
    fn unsecured_token_and_message() {
        let j = JaasConfig::parse(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredLoginLifetimeSeconds="60";"#,
        )
        .unwrap();
        let mut p = UnsecuredJwsProvider::from_options(&j.options).unwrap();
        let scoped = JaasConfig::parse(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredLoginListClaim_scope="|read|write||";"#,
        )
        .unwrap();
        assert_eq!(
            UnsecuredJwsProvider::from_options(&scoped.options)
                .unwrap()
                .scope,
            ["read", "write"]
        );
        let mut c = OAuthBearerClient::from_provider(
            &mut p,
            1_700_000_000_123,
            vec![("k".into(), "v".into())],
        )
        .unwrap();
        assert_eq!(c.token_lifetime_ms(), 1_700_000_060_000);
        let msg = String::from_utf8(c.initial()).unwrap();
        let token = msg
            .strip_prefix("n,,\x01auth=Bearer ")
            .and_then(|m| m.strip_suffix("\x01k=v\x01\x01"))
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"none"}"#
        );
        assert_eq!(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap(),
            r#"{"sub":"admin","iat":1700000000,"exp":1700000060}"#
        );
        assert_eq!(parts[2], "");
        assert_eq!(c.step(b""), Ok(Step::Done));
        assert!(!format!("{c:?}").contains(parts[1]));
    }

    #[test]
    fn rejection_is_acknowledged_then_typed() {
        let mut p = UnsecuredJwsProvider {
            principal: "u".into(),
            lifetime_s: 1,
            scope: vec!["a".into()],
        };
        let mut c = OAuthBearerClient::from_provider(&mut p, 0, vec![]).unwrap();
        c.initial();
        let err = br#"{"status":"invalid_token"}"#;
        assert_eq!(c.step(err), Ok(Step::Send(vec![1])));
        assert_eq!(
            c.step(b""),
            Err(SaslError::TokenRejected(
                r#"{"status":"invalid_token"}"#.into()
            ))
        );
        struct Failing;
        impl TokenProvider for Failing {
            fn token(&mut self, _: i64) -> Result<OAuthBearerToken, String> {
                Err("idp down".into())
            }
        }
        assert_eq!(
            OAuthBearerClient::from_provider(&mut Failing, 0, vec![]).unwrap_err(),
            SaslError::NoToken("idp down".into())
        );
    }
}
