//! The security of the core's connections as the producer holds it: the TLS
//! configuration and clock every connection's session shares (feature
//! `tls`), what SASL needs producer-wide (feature `sasl`, see
//! `authenticate`), and the TLS layer between a connection's requests and
//! the bytes the driver moves.
//!
//! Under TLS the driver is still a byte pipe: `Transmit::Send` carries
//! ciphertext, `handle_data` takes ciphertext and `handle_written` counts it.
//! A connection's `sent_bytes`/`written_bytes` are ciphertext, so that the
//! acks=0 marks and the hold on unwritten bytes compare like with like; the
//! request and response metrics count the plaintext, as Java's do.

use bytes::Bytes;

use super::config::ConfigError;
use super::security::SecurityConfig;
use super::{ConnId, Producer, Transmit};

/// The producer-wide security state.
#[derive(Default)]
pub(super) struct SecurityState {
    /// The rustls configuration of every session, and the clock its
    /// certificate checks read (SSL, SASL_SSL).
    #[cfg(feature = "tls")]
    pub tls: Option<(
        std::sync::Arc<rustls::ClientConfig>,
        super::security::tls::TlsClock,
    )>,
    /// The mechanism and what it needs (SASL_PLAINTEXT, SASL_SSL).
    #[cfg(feature = "sasl")]
    pub sasl: Option<super::authenticate::SaslSetup>,
}

impl SecurityState {
    /// The state for `security.protocol` and its settings (validated);
    /// `seed` seeds the SCRAM nonces, `wall_ms` sets the TLS clock.
    pub fn new(sec: &SecurityConfig, seed: u64, wall_ms: i64) -> Result<Self, ConfigError> {
        let _ = (sec, seed, wall_ms);
        #[allow(unused_mut)]
        let mut state = SecurityState::default();
        #[cfg(feature = "tls")]
        if sec.protocol.uses_tls() {
            use super::security::tls::{client_config, TlsClock};
            let clock = TlsClock::default();
            clock.set_unix_ms(wall_ms.max(0) as u64);
            let config = match &sec.tls_client_config {
                // The application's configuration, with the core's clock:
                // certificates are checked at the core's time, not the system's.
                Some(c) => {
                    let mut c = (*c.0).clone();
                    c.time_provider = std::sync::Arc::new(clock.clone());
                    c
                }
                None => {
                    client_config(&sec.tls, &clock).map_err(|e| ConfigError::Tls(e.to_string()))?
                }
            };
            state.tls = Some((std::sync::Arc::new(config), clock));
        }
        #[cfg(feature = "sasl")]
        if sec.protocol.uses_sasl() {
            state.sasl = Some(super::authenticate::SaslSetup::new(sec, seed)?);
        }
        Ok(state)
    }
}

impl Producer {
    /// Queues the pieces of one request on `conn` as `Transmit::Send`s
    /// (emptying `segments`), through its TLS session if it has one.
    pub(super) fn put_wire(&mut self, conn: ConnId, segments: &mut Vec<Bytes>) {
        let c = self.net.conns.get_mut(&conn).expect("connection exists");
        #[cfg(feature = "tls")]
        if let Some(tls) = c.tls.as_mut() {
            for s in segments.drain(..) {
                if let Err(error) = tls.write_plaintext(&s) {
                    // Only a session the broker closed refuses bytes: the
                    // next turn resets the connection.
                    let addr = format!("{}:{}", c.addr.0, c.addr.1);
                    c.failed
                        .get_or_insert(super::ConnectionError::Tls { addr, error });
                }
            }
            self.flush_tls(conn);
            return;
        }
        for data in segments.drain(..) {
            c.sent_bytes += data.len() as u64;
            self.transmits.push_back(Transmit::Send { conn, data });
        }
    }
}

#[cfg(feature = "tls")]
impl Producer {
    /// Starts the TLS session of `conn`, just connected: its ClientHello
    /// goes out; ApiVersions waits for the handshake. False when the session
    /// cannot start (the connection is reset).
    pub(super) fn start_tls(&mut self, conn: ConnId, now: std::time::Instant) -> bool {
        use super::security::tls::TlsSession;
        let Some((config, _)) = &self.security.tls else {
            return true;
        };
        let config = config.clone();
        let c = self.net.conns.get_mut(&conn).expect("connection exists");
        match TlsSession::new(config, &c.addr.0) {
            Ok(s) => {
                c.tls = Some(s);
                c.handshake_deadline = Some(now + c.setup_timeout);
                self.flush_tls(conn);
                true
            }
            Err(error) => {
                let addr = c.addr_string();
                self.reset(
                    conn,
                    now,
                    super::ConnectionError::TlsHandshake { addr, error },
                );
                false
            }
        }
    }

    /// Hands the ciphertext `conn`'s session has to send to the driver.
    fn flush_tls(&mut self, conn: ConnId) {
        let c = self.net.conns.get_mut(&conn).expect("connection exists");
        let Some(tls) = c.tls.as_mut() else { return };
        let out = tls.ciphertext_to_send();
        if !out.is_empty() {
            c.sent_bytes += out.len() as u64;
            self.transmits.push_back(Transmit::Send {
                conn,
                data: Bytes::from(out),
            });
        }
    }

    /// Takes ciphertext received on `conn`: answers the handshake, and once
    /// it is done sends ApiVersions; returns the plaintext, `None` when the
    /// session failed (the connection is reset, its alert sent first).
    pub(super) fn tls_in(
        &mut self,
        conn: ConnId,
        data: &[u8],
        now: std::time::Instant,
    ) -> Option<Vec<u8>> {
        use super::ConnectionError;
        let wall = self.wall_clock_ms(now);
        if let Some((_, clock)) = &self.security.tls {
            clock.set_unix_ms(wall.max(0) as u64);
        }
        let c = self.net.conns.get_mut(&conn).expect("connection exists");
        let tls = c.tls.as_mut().expect("a TLS connection");
        let handshaking = tls.is_handshaking();
        let res = tls.ciphertext_in(data);
        let plaintext = tls.plaintext_out();
        let established = handshaking && !tls.is_handshaking();
        self.flush_tls(conn);
        let c = self.net.conns.get_mut(&conn).expect("connection exists");
        if let Err(error) = res {
            let addr = c.addr_string();
            let error = if handshaking {
                ConnectionError::TlsHandshake { addr, error }
            } else {
                ConnectionError::Tls { addr, error }
            };
            self.reset(conn, now, error);
            return None;
        }
        if established {
            c.handshake_deadline = None;
            log::debug!(
                "TLS with {} established on {conn:?}; asking for API versions",
                c.addr_string()
            );
            self.send_api_versions(conn, super::handshake::API_VERSIONS_MAX, now);
        }
        Some(plaintext)
    }
}
