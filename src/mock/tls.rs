//! TLS listeners of the mock (feature `tls`): a rustls server configuration
//! from PEM (certificate chain and key, and for client-certificate
//! authentication the CA that signs client certificates), which
//! [`MockServer`](super::MockServer) and [`Pair`](super::Pair) put under
//! every connection of a cluster given one with [`MockCluster::set_tls`].
//! Same crypto provider as the client side (ring).

use std::io::Read;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use super::MockCluster;

/// Why PEM does not make a mock TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockTlsError {
    /// PEM without the expected block, or one that does not parse.
    #[error("mock TLS: {what}: {reason}")]
    Pem {
        /// Which input: "certificate chain", "private key" or "client CA".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match its certificate).
    #[error("mock TLS: {0}")]
    Rustls(String),
}

/// A TLS listener's configuration, shared by every connection of the cluster.
#[derive(Debug, Clone)]
pub struct MockTls {
    config: Arc<ServerConfig>,
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Deprecated only for lacking post-quantum key exchange; ring matches
    // the client side, which builds with a C compiler alone.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, MockTlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| MockTlsError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(MockTlsError::Pem {
            what,
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

impl MockTls {
    /// A listener presenting `chain_pem` (leaf first) with `key_pem`; with
    /// `client_ca_pem`, clients must present a certificate it signed (mTLS,
    /// Kafka's `ssl.client.auth=required`).
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        client_ca_pem: Option<&[u8]>,
    ) -> Result<MockTls, MockTlsError> {
        let chain = certs("certificate chain", chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| MockTlsError::Pem {
            what: "private key",
            reason: e.to_string(),
        })?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| MockTlsError::Rustls(e.to_string()))?;
        let builder = match client_ca_pem {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs("client CA", ca)? {
                    roots
                        .add(c)
                        .map_err(|e| MockTlsError::Rustls(e.to_string()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| MockTlsError::Rustls(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| MockTlsError::Rustls(e.to_string()))?;
        Ok(MockTls {
            config: Arc::new(config),
        })
    }

    /// A listener with a rustls configuration made elsewhere.
    pub fn from_config(config: Arc<ServerConfig>) -> MockTls {
        MockTls { config }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// A server session for one new connection.
    pub(super) fn session(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(Arc::clone(&self.config))
    }
}

impl MockCluster {
    /// Puts TLS under every broker's connections from now on (an SSL or,
    /// with [`Self::enable_sasl`], a SASL_SSL listener); `None` for plaintext.
    pub fn set_tls(&mut self, tls: Option<MockTls>) {
        self.tls = tls;
    }

    /// The TLS listener configuration, if any.
    pub fn tls(&self) -> Option<&MockTls> {
        self.tls.as_ref()
    }
}

/// Takes ciphertext from the client: the decrypted bytes go to `plain`;
/// `Ok(true)` once the client sent close_notify. After an error the alert
/// to send is queued in `tls`.
pub(super) fn ciphertext_in(
    tls: &mut ServerConnection,
    mut data: &[u8],
    plain: &mut Vec<u8>,
) -> Result<bool, rustls::Error> {
    while !data.is_empty() {
        // Reading from a slice cannot fail.
        match tls.read_tls(&mut data) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let state = tls.process_new_packets()?;
        let n = state.plaintext_bytes_to_read();
        if n > 0 {
            let start = plain.len();
            plain.resize(start + n, 0);
            tls.reader()
                .read_exact(&mut plain[start..])
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        }
        if state.peer_has_closed() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Everything `tls` has to send now (handshake records, alerts, data).
pub(super) fn ciphertext_out(tls: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while tls.wants_write() {
        // Writing into a Vec cannot fail.
        if tls.write_tls(&mut out).unwrap_or(0) == 0 {
            break;
        }
    }
    out
}
