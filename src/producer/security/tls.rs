//! A TLS client layer over in-memory buffers: rustls' `ClientConnection`
//! driven with `read_tls`/`write_tls` on byte slices, no sockets. The
//! connection puts received ciphertext in with [`TlsSession::ciphertext_in`],
//! takes the decrypted bytes with [`TlsSession::plaintext_out`], writes
//! requests with [`TlsSession::write_plaintext`] and sends what
//! [`TlsSession::ciphertext_to_send`] returns.
//!
//! Crypto provider: ring, because it builds with a C compiler alone (aws-lc-rs
//! needs cmake, and on some targets NASM or bindgen). Its `SystemRandom` gives
//! the TLS randomness. Time: certificates are checked against a [`TlsClock`]
//! the core sets from its own wall clock, never the system clock. Root
//! certificates when none are configured: the Mozilla set compiled in by
//! `webpki-roots`, so a container without `ca-certificates` and a core that
//! reads nothing at run time still verify public brokers the same way.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
};

use super::TlsSettings;

pub use super::TlsError;

impl TlsError {
    /// The typed error for a rustls failure on a session to `host`.
    pub(crate) fn from_rustls(e: rustls::Error, host: &str) -> Self {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsError::UntrustedCertificate,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => TlsError::ExpiredCertificate,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    TlsError::NameMismatch(host.to_string())
                }
                other => TlsError::BadCertificate(format!("{other:?}")),
            },
            E::AlertReceived(a) => TlsError::Alert(format!("{a:?}")),
            other => TlsError::Protocol(other.to_string()),
        }
    }
}

/// Why the `ssl.*` settings do not make a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A JKS or PKCS12 store: only PEM is read.
    #[error("{key}={value} is not supported: use {key}=PEM with {pem_keys}")]
    UnsupportedStoreType {
        /// `ssl.truststore.type` or `ssl.keystore.type`.
        key: &'static str,
        /// The type given.
        value: String,
        /// The PEM keys to use instead.
        pem_keys: &'static str,
    },
    /// A PEM file could not be read.
    #[error("cannot read `{path}` ({key}): {source}")]
    Read {
        /// The setting naming the file.
        key: &'static str,
        /// The path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// PEM that holds no certificate or no key, or does not parse.
    #[error("{key}: {reason}")]
    Pem {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An encrypted PKCS#8 key: rustls and this crate read only unencrypted keys.
    #[error("{key}: encrypted private keys are not supported; decrypt it first (`openssl pkcs8 -in key.pem -out plain.pem`) and drop ssl.key.password")]
    EncryptedKey {
        /// The setting holding the key.
        key: &'static str,
    },
    /// A client certificate without its key, or the reverse.
    #[error("a client certificate needs both a chain and a key: {0}")]
    IncompleteClientCert(&'static str),
    /// rustls rejected the configuration (e.g. a key that does not match its certificate).
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// The time TLS checks certificates against: set by the core from its wall
/// clock before it feeds bytes in; shared by every connection's verifier.
#[derive(Debug, Clone, Default)]
pub struct TlsClock(Arc<AtomicU64>);

impl TlsClock {
    /// Sets the time, milliseconds since the Unix epoch.
    pub fn set_unix_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

impl rustls::time_provider::TimeProvider for TlsClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_millis(
            self.0.load(Ordering::Relaxed),
        )))
    }
}

/// Checks the chain and validity period but not the host name
/// (`ssl.endpoint.identification.algorithm` empty).
#[derive(Debug)]
struct NoHostnameVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, after chain and time: a name error
        // means everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn read_file(key: &'static str, path: &str) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        key,
        path: path.to_string(),
        source,
    })
}

fn certs(key: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsConfigError::Pem {
            key,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Pem {
            key,
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn private_key(key: &'static str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    if pem
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
        return Err(TlsConfigError::EncryptedKey { key });
    }
    // The error names no key material: pki-types' PEM errors carry none.
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsConfigError::Pem {
        key,
        reason: e.to_string(),
    })
}

fn check_store_type(
    key: &'static str,
    value: Option<&str>,
    pem_keys: &'static str,
) -> Result<(), TlsConfigError> {
    match value {
        None => Ok(()),
        Some(v) if v.eq_ignore_ascii_case("PEM") => Ok(()),
        Some(v) => Err(TlsConfigError::UnsupportedStoreType {
            key,
            value: v.to_string(),
            pem_keys,
        }),
    }
}

/// Builds a rustls client configuration from the `ssl.*` settings, reading
/// the PEM files they name (at configuration time, not on the connection path).
pub fn client_config(s: &TlsSettings, clock: &TlsClock) -> Result<ClientConfig, TlsConfigError> {
    check_store_type(
        "ssl.truststore.type",
        s.truststore_type.as_deref(),
        "ssl.truststore.location or ssl.truststore.certificates (or ssl.ca.location)",
    )?;
    check_store_type(
        "ssl.keystore.type",
        s.keystore_type.as_deref(),
        "ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain (or ssl.certificate.location and ssl.key.location)",
    )?;
    let mut roots = RootCertStore::empty();
    let mut trusted = Vec::new();
    if let Some(p) = &s.truststore_location {
        trusted.extend(certs(
            "ssl.truststore.location",
            &read_file("ssl.truststore.location", p)?,
        )?);
    }
    if let Some(t) = &s.truststore_certificates {
        trusted.extend(certs("ssl.truststore.certificates", t.as_bytes())?);
    }
    if let Some(p) = &s.ca_location {
        trusted.extend(certs("ssl.ca.location", &read_file("ssl.ca.location", p)?)?);
    }
    if trusted.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        for c in trusted {
            roots
                .add(c)
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        }
    }

    let client_cert = if let Some(p) = &s.keystore_location {
        let pem = read_file("ssl.keystore.location", p)?;
        Some((
            certs("ssl.keystore.location", &pem)?,
            private_key("ssl.keystore.location", &pem)?,
        ))
    } else if s.keystore_key.is_some() || s.keystore_certificate_chain.is_some() {
        let (Some(k), Some(c)) = (&s.keystore_key, &s.keystore_certificate_chain) else {
            return Err(TlsConfigError::IncompleteClientCert(
                "ssl.keystore.key and ssl.keystore.certificate.chain go together",
            ));
        };
        Some((
            certs("ssl.keystore.certificate.chain", c.as_bytes())?,
            private_key("ssl.keystore.key", k.expose().as_bytes())?,
        ))
    } else if s.certificate_location.is_some() || s.key_location.is_some() {
        let (Some(c), Some(k)) = (&s.certificate_location, &s.key_location) else {
            return Err(TlsConfigError::IncompleteClientCert(
                "ssl.certificate.location and ssl.key.location go together",
            ));
        };
        Some((
            certs(
                "ssl.certificate.location",
                &read_file("ssl.certificate.location", c)?,
            )?,
            private_key("ssl.key.location", &read_file("ssl.key.location", k)?)?,
        ))
    } else {
        None
    };

    // Deprecated only for lacking post-quantum key exchange; ring is kept
    // for building with a C compiler alone (see the module docs).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // `ssl.enabled.protocols`, validated to name at least one of the two.
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match s.enabled_protocols {
        (true, false) => vec![&rustls::version::TLS12],
        (false, true) => vec![&rustls::version::TLS13],
        _ => rustls::DEFAULT_VERSIONS.to_vec(),
    };
    let builder = ClientConfig::builder_with_details(provider.clone(), Arc::new(clock.clone()))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    let roots = Arc::new(roots);
    let builder = if s.endpoint_identification {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier(inner)))
    };
    match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsConfigError::Rustls(e.to_string())),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// One TLS client session over in-memory buffers.
pub struct TlsSession {
    conn: ClientConnection,
    host: String,
    plaintext: Vec<u8>,
    closed: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("host", &self.host)
            .field("handshaking", &self.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// A session to `host` (the name the certificate must match, or an IP
    /// address), with a configuration from [`client_config`] or the application.
    pub fn new(config: Arc<ClientConfig>, host: &str) -> Result<Self, TlsError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::InvalidServerName(host.to_string()))?;
        let mut conn =
            ClientConnection::new(config, name).map_err(|e| TlsError::from_rustls(e, host))?;
        // The buffers are memory, drained after every write: rustls' default
        // 64 KiB limit would cut a larger request short. What waits here is
        // bounded by the caller (the core holds at most one request's worth
        // of unwritten bytes per connection).
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn,
            host: host.to_string(),
            plaintext: Vec::new(),
            closed: false,
        })
    }

    /// True until the handshake completes.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True once the broker sent close_notify.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Takes ciphertext from the broker; decrypted bytes become available in
    /// [`plaintext_out`](Self::plaintext_out). After an error the session is dead
    /// (its alert, if any, is still in [`ciphertext_to_send`](Self::ciphertext_to_send)).
    pub fn ciphertext_in(&mut self, mut data: &[u8]) -> Result<(), TlsError> {
        while !data.is_empty() {
            let n = self
                .conn
                .read_tls(&mut data)
                .map_err(|e| TlsError::Protocol(e.to_string()))?;
            if n == 0 {
                break;
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| TlsError::from_rustls(e, &self.host))?;
            let avail = state.plaintext_bytes_to_read();
            if avail > 0 {
                let start = self.plaintext.len();
                self.plaintext.resize(start + avail, 0);
                self.conn
                    .reader()
                    .read_exact(&mut self.plaintext[start..])
                    .map_err(|e| TlsError::Protocol(e.to_string()))?;
            }
            if state.peer_has_closed() {
                self.closed = true;
            }
        }
        Ok(())
    }

    /// The plaintext decrypted so far (taken: a second call returns only newer bytes).
    pub fn plaintext_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.plaintext)
    }

    /// Encrypts application bytes (buffered by rustls until the handshake is done).
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<(), TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| TlsError::Protocol(e.to_string()))
    }

    /// The ciphertext to send to the broker now (handshake records, alerts, data).
    pub fn ciphertext_to_send(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(&mut out).unwrap_or(0) == 0 {
                break;
            }
        }
        out
    }

    /// Queues close_notify (send [`ciphertext_to_send`](Self::ciphertext_to_send) after).
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }
}
