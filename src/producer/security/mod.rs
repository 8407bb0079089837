//! Security building blocks of a connection, free of IO: the secret newtype,
//! `security.protocol`, the `sasl.jaas.config` parser, the SASL client
//! mechanisms (feature `sasl`) and a TLS layer over in-memory buffers
//! (feature `tls`).
//!
//! Randomness and time: nothing here reads entropy or a clock. The SCRAM
//! client nonce is made from bytes the caller hands in (the producer core
//! draws them from its seeded generator, hashed; see
//! [`Producer`](crate::producer::Producer)); TLS randomness comes from the
//! rustls crypto provider (ring's `SystemRandom`, the OS generator), and the
//! time TLS checks certificates against is the one the caller feeds in (the
//! core's wall clock).

pub mod jaas;
#[cfg(feature = "sasl")]
pub mod sasl;
#[cfg(feature = "tls")]
pub mod tls;

use std::fmt;

/// A secret (password, token, key passphrase): its `Debug` and `Display`
/// print `[redacted]`, so it never reaches logs or error messages.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself, for the code that must send or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a TLS connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The broker's certificate does not chain to a trusted root.
    #[error("TLS: the broker's certificate is not signed by a trusted CA")]
    UntrustedCertificate,
    /// The broker's certificate is expired (or not yet valid) at the core's time.
    #[error("TLS: the broker's certificate is expired or not yet valid")]
    ExpiredCertificate,
    /// The broker's certificate does not name the host connected to.
    #[error("TLS: the broker's certificate does not match host `{0}`")]
    NameMismatch(String),
    /// Another certificate problem (revoked, bad signature, wrong usage).
    #[error("TLS: bad broker certificate: {0}")]
    BadCertificate(String),
    /// The broker sent a TLS alert (e.g. `CertificateRequired` when it needs a client certificate).
    #[error("TLS: alert from the broker: {0}")]
    Alert(String),
    /// Bytes that are not TLS (e.g. a plaintext broker) or break the protocol.
    #[error("TLS: protocol error: {0}")]
    Protocol(String),
    /// The host name is not a valid DNS name or IP address.
    #[error("TLS: invalid server name `{0}`")]
    InvalidServerName(String),
    /// The peer closed the TLS session (close_notify).
    #[error("TLS: the broker closed the session")]
    Closed,
}

/// Why a SASL exchange failed on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The server's SCRAM nonce does not extend the client's.
    #[error("SCRAM: the server nonce does not start with the client nonce")]
    BadServerNonce,
    /// The server's final message carries a signature that does not match:
    /// the server does not know the password (or is not the server).
    #[error("SCRAM: server signature mismatch")]
    ServerSignatureMismatch,
    /// The server answered with a SCRAM `e=` error.
    #[error("SCRAM: server error `{0}`")]
    ServerError(String),
    /// A server message that does not follow the mechanism's grammar.
    #[error("{mechanism}: malformed server message: {reason}")]
    Malformed {
        /// The mechanism.
        mechanism: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An iteration count below RFC 5802's minimum of 4096 or absurdly high.
    #[error("SCRAM: iteration count {0} out of range 4096..=1000000")]
    BadIterations(u32),
    /// The server sent a token after the exchange was complete.
    #[error("{0}: server token after the exchange completed")]
    Unexpected(&'static str),
    /// The server rejected the OAUTHBEARER token (its JSON error status).
    #[error("OAUTHBEARER: the server rejected the token: {0}")]
    TokenRejected(String),
    /// The token provider could not give a token.
    #[error("OAUTHBEARER: no token: {0}")]
    NoToken(String),
    /// The caller's nonce bytes are too few (at least 16 are needed).
    #[error("SCRAM: {0} nonce bytes given, at least 16 needed")]
    ShortNonce(usize),
}

/// `security.protocol`: whether a connection uses TLS and/or SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL (the default).
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL over a plaintext connection.
    SaslPlaintext,
    /// SASL inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses Java's names (case-insensitive, as Java does).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    /// Java's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// True when the connection runs TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True when the connection authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `sasl.mechanism`: the SASL mechanisms this crate's client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN (RFC 4616).
    Plain,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-512 (RFC 5802 with SHA-512).
    ScramSha512,
    /// OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

impl SaslMechanism {
    /// Parses the IANA name Kafka uses (exact, as the broker compares it).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "PLAIN" => SaslMechanism::Plain,
            "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
            "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
            "OAUTHBEARER" => SaslMechanism::OAuthBearer,
            _ => return None,
        })
    }

    /// The name sent in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// The `ssl.*` settings, as given; [`tls::client_config`] (feature `tls`)
/// turns them into a rustls configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl.truststore.type` (only `PEM` is read).
    pub truststore_type: Option<String>,
    /// `ssl.truststore.location`: a PEM file of trusted CA certificates.
    pub truststore_location: Option<String>,
    /// `ssl.truststore.certificates`: trusted CA certificates as PEM text.
    pub truststore_certificates: Option<String>,
    /// librdkafka's `ssl.ca.location`: a PEM file of trusted CA certificates.
    pub ca_location: Option<String>,
    /// `ssl.keystore.type` (only `PEM` is read).
    pub keystore_type: Option<String>,
    /// `ssl.keystore.location`: a PEM file holding the client key and its chain.
    pub keystore_location: Option<String>,
    /// `ssl.keystore.key`: the client key as PEM text.
    pub keystore_key: Option<Password>,
    /// `ssl.keystore.certificate.chain`: the client chain as PEM text.
    pub keystore_certificate_chain: Option<String>,
    /// `ssl.key.password`: the passphrase of an encrypted key.
    pub key_password: Option<Password>,
    /// librdkafka's `ssl.certificate.location`: the client chain, a PEM file.
    pub certificate_location: Option<String>,
    /// librdkafka's `ssl.key.location`: the client key, a PEM file.
    pub key_location: Option<String>,
    /// `ssl.endpoint.identification.algorithm`: `https` (true, the default)
    /// checks the broker's host name against its certificate; empty disables it.
    pub endpoint_identification: bool,
    /// `ssl.enabled.protocols`: whether TLS 1.2 and TLS 1.3 may be negotiated.
    pub enabled_protocols: (bool, bool),
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            truststore_type: None,
            truststore_location: None,
            truststore_certificates: None,
            ca_location: None,
            keystore_type: None,
            keystore_location: None,
            keystore_key: None,
            keystore_certificate_chain: None,
            key_password: None,
            certificate_location: None,
            key_location: None,
            endpoint_identification: true,
            enabled_protocols: (true, true),
        }
    }
}

/// Java's `sasl.login.refresh.*`: when a token held is replaced by a new one
/// from the provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginRefresh {
    /// `sasl.login.refresh.window.factor`: the share of the token's lifetime
    /// after which it is replaced.
    pub window_factor: f64,
    /// `sasl.login.refresh.window.jitter`: up to this share of the lifetime added at random.
    pub window_jitter: f64,
    /// `sasl.login.refresh.min.period.seconds`: at least this long between refreshes.
    pub min_period_s: u64,
    /// `sasl.login.refresh.buffer.seconds`: replaced at least this long before it expires.
    pub buffer_s: u64,
}

impl Default for LoginRefresh {
    fn default() -> Self {
        LoginRefresh {
            window_factor: 0.8,
            window_jitter: 0.05,
            min_period_s: 60,
            buffer_s: 300,
        }
    }
}

impl LoginRefresh {
    /// When a token received at `now_ms` that expires at `expires_ms` is
    /// replaced, `unit` a draw in 0..1: as Java's login refresh, the window
    /// point, moved to keep `buffer_s` before the expiry and `min_period_s`
    /// after now where the token lives long enough for both.
    pub fn refresh_at(&self, now_ms: i64, expires_ms: i64, unit: f64) -> i64 {
        let left = (expires_ms - now_ms).max(0);
        let at = now_ms + (left as f64 * (self.window_factor + self.window_jitter * unit)) as i64;
        let min = (self.min_period_s * 1000) as i64;
        let buffer = (self.buffer_s * 1000) as i64;
        if min + buffer > left {
            return at;
        }
        at.min(expires_ms - buffer).max(now_ms + min)
    }
}

/// A ready rustls configuration the application passes instead of the
/// `ssl.*` keys; compared by identity.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub struct TlsClientConfig(pub std::sync::Arc<rustls::ClientConfig>);

#[cfg(feature = "tls")]
impl PartialEq for TlsClientConfig {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The security settings of a producer: `security.protocol`, `sasl.*`, `ssl.*`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// `sasl.mechanism` (`None`: Java's default, GSSAPI, which is not supported).
    pub sasl_mechanism: Option<SaslMechanism>,
    /// `sasl.jaas.config`, parsed.
    pub sasl_jaas_config: Option<jaas::JaasConfig>,
    /// librdkafka's `sasl.username`.
    pub sasl_username: Option<String>,
    /// librdkafka's `sasl.password`.
    pub sasl_password: Option<Password>,
    /// librdkafka's `sasl.oauthbearer.extensions`: `key=value` pairs sent with the token.
    pub sasl_oauthbearer_extensions: Vec<(String, String)>,
    /// The `ssl.*` settings.
    pub tls: TlsSettings,
    /// When an OAUTHBEARER token is replaced (`sasl.login.refresh.*`).
    pub sasl_login_refresh: LoginRefresh,
    /// A ready rustls configuration; when set, the `ssl.*` keys are not read.
    /// Its time provider is replaced by the core's wall clock.
    #[cfg(feature = "tls")]
    pub tls_client_config: Option<TlsClientConfig>,
    /// The OAUTHBEARER token provider; when unset, `sasl.jaas.config`'s
    /// `OAuthBearerLoginModule` options make unsecured tokens (test clusters only).
    #[cfg(feature = "sasl")]
    pub sasl_oauthbearer_token_provider: Option<SharedTokenProvider>,
}

/// An OAUTHBEARER token provider shared by a producer's connections (set in
/// [`SecurityConfig::sasl_oauthbearer_token_provider`]); compared by identity.
///
/// The core calls it, under its lock, when a connection authenticates and
/// the token it holds is past 80% of its lifetime (Java's
/// `sasl.login.refresh.window.factor`): it must answer at once, from a token
/// the application fetched (and refreshes) on its own threads.
#[cfg(feature = "sasl")]
#[derive(Clone)]
pub struct SharedTokenProvider(pub std::sync::Arc<std::sync::Mutex<dyn sasl::TokenProvider>>);

#[cfg(feature = "sasl")]
impl SharedTokenProvider {
    /// Shares `provider`.
    pub fn new(provider: impl sasl::TokenProvider + 'static) -> Self {
        SharedTokenProvider(std::sync::Arc::new(std::sync::Mutex::new(provider)))
    }
}

#[cfg(feature = "sasl")]
impl fmt::Debug for SharedTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedTokenProvider")
    }
}

#[cfg(feature = "sasl")]
impl PartialEq for SharedTokenProvider {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SecurityConfig {
    /// The PLAIN/SCRAM credentials: `sasl.jaas.config` with a Plain or Scram
    /// login module first, else `sasl.username` and `sasl.password`.
    pub fn credentials(&self) -> Option<jaas::Credentials> {
        use jaas::LoginModule;
        if let Some(j) = self
            .sasl_jaas_config
            .as_ref()
            .filter(|j| matches!(j.module, LoginModule::Plain | LoginModule::Scram))
        {
            return j.credentials().ok();
        }
        Some(jaas::Credentials {
            username: self.sasl_username.clone()?,
            password: self.sasl_password.clone()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?} {p}"), "[redacted] [redacted]");
        assert_eq!(p.expose(), "hunter2");
    }

    #[test]
    fn names_round_trip() {
        for p in ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] {
            assert_eq!(SecurityProtocol::parse(p).unwrap().name(), p);
        }
        assert_eq!(
            SecurityProtocol::parse("sasl_ssl"),
            Some(SecurityProtocol::SaslSsl)
        );
        assert_eq!(SecurityProtocol::parse("TLS"), None);
        for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
            assert_eq!(SaslMechanism::parse(m).unwrap().name(), m);
        }
        assert_eq!(SaslMechanism::parse("GSSAPI"), None);
    }

    #[test]
    fn login_refresh_follows_javas_window_buffer_and_min_period() {
        let r = LoginRefresh::default();
        let hour = 3_600_000;
        // The window point: 80% of the lifetime, plus up to 5% jitter.
        assert_eq!(r.refresh_at(0, hour, 0.0), 2_880_000);
        assert_eq!(r.refresh_at(0, hour, 1.0), 3_060_000);
        // Kept 300 s before the expiry...
        let late = LoginRefresh {
            window_factor: 0.95,
            ..r
        };
        assert_eq!(late.refresh_at(0, hour, 0.0), hour - 300_000);
        // ... also when that leaves less than the window (400 s: 100 s, not 200 s).
        let early = LoginRefresh {
            window_factor: 0.5,
            ..r
        };
        assert_eq!(early.refresh_at(0, 400_000, 0.0), 100_000);
        // At least min.period.seconds after now (300 s, not 200 s).
        let patient = LoginRefresh {
            min_period_s: 300,
            buffer_s: 60,
            ..early
        };
        assert_eq!(patient.refresh_at(0, 400_000, 0.0), 300_000);
        // A token too short for both: the window point alone.
        assert_eq!(r.refresh_at(0, 10_000, 0.0), 8_000);
    }
}
