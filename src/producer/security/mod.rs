//! Security building blocks of a connection, free of IO: the secret newtype,
//! `security.protocol`, the `sasl.jaas.config` parser, the SASL client
//! mechanisms (feature `sasl`) and a TLS layer over in-memory buffers
//! (feature `tls`).
//!
//! Randomness and time: nothing here reads entropy or a clock. The SCRAM
//! client nonce is made from bytes the caller hands in; TLS randomness comes
//! from the rustls crypto provider (ring's `SystemRandom`), and the time TLS
//! checks certificates against is the one the caller feeds in.

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
        }
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
    /// A ready rustls configuration; when set, the `ssl.*` keys are not read.
    #[cfg(feature = "tls")]
    pub tls_client_config: Option<TlsClientConfig>,
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
}
