//! SASL as a step of the connection's handshake (KIP-152): after ApiVersions,
//! SaslHandshake v1 names `sasl.mechanism`, then SaslAuthenticate requests
//! carry the mechanism's tokens until it is done; only then is the
//! connection ready, and only a connection that got that far resets the
//! reconnect backoff.
//!
//! Re-authentication (KIP-368): when the broker gives the session a
//! lifetime (`session_lifetime_ms`), the same exchange runs again on the
//! live connection at 85-95% of it (the point drawn from the core's
//! generator, as Java's jitter), counted from when the last token was sent.
//! The connection takes no new request meanwhile; requests already in
//! flight are answered first, since a broker answers a connection's
//! requests in order, so their answers come before SaslHandshake's and
//! are matched by correlation id as always: nothing in flight is lost or
//! reordered.
//!
//! Randomness: the SCRAM client nonce is 24 bytes of SHA-256 over draws from
//! a generator seeded from `kafka_sansio.rng.seed` (which the drivers seed
//! from the OS), separate from the jitter generator and hashed so that a
//! nonce seen on the wire tells nothing of the generator's state. The same
//! seed gives the same nonces: the core stays deterministic.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use super::config::ConfigError;
use super::connection::{ConnState, RequestKind};
use super::rng::Rng;
use super::security::jaas::{Credentials, LoginModule};
use super::security::sasl::{
    OAuthBearerClient, OAuthBearerToken, PlainClient, SaslClient, ScramClient, ScramHash, Step,
    UnsecuredJwsProvider,
};
use super::security::{SaslError, SaslMechanism, SecurityConfig, SharedTokenProvider};
use super::timers::earliest;
use super::{error_of, ConnId, ConnectionError, Producer};

/// What SASL needs producer-wide: the mechanism and its credentials, token
/// or nonces.
pub(crate) struct SaslSetup {
    mechanism: SaslMechanism,
    /// PLAIN and SCRAM.
    credentials: Option<Credentials>,
    /// OAUTHBEARER.
    tokens: Option<TokenCache>,
    /// `sasl.oauthbearer.extensions`.
    extensions: Vec<(String, String)>,
    /// The SCRAM nonces' generator.
    nonces: Rng,
}

/// The OAUTHBEARER token in use and when to ask the provider for the next.
struct TokenCache {
    provider: SharedTokenProvider,
    /// The token, and the Unix ms from which a new one is asked for
    /// (`refresh`: by default 80-85% of its lifetime, as Java's).
    token: Option<(OAuthBearerToken, i64)>,
    /// `sasl.login.refresh.*`.
    refresh: crate::producer::security::LoginRefresh,
}

/// Where one connection's SASL step stands.
#[derive(Debug)]
pub(crate) struct SaslConn {
    phase: SaslPhase,
    /// When to re-authenticate (KIP-368), once authenticated.
    reauth_at: Option<Instant>,
}

#[derive(Debug)]
enum SaslPhase {
    /// SaslHandshake in flight.
    Handshake,
    /// A SaslAuthenticate in flight, the mechanism's client waiting for its answer.
    Authenticate(SaslClient),
    /// Authenticated: requests may go.
    Done,
}

impl SaslConn {
    /// Authenticated, and not re-authenticating.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, SaslPhase::Done)
    }
}

/// Mixed into the seed so that the nonce stream differs from the jitter stream.
const NONCE_STREAM: u64 = 0x5343_5241_4d5f_4e4f; // "SCRAM_NO"

impl SaslSetup {
    /// The setup for `sec` (validated: SASL on, a mechanism set).
    pub fn new(sec: &SecurityConfig, seed: u64) -> Result<Self, ConfigError> {
        let mechanism = sec.sasl_mechanism.expect("validated: a mechanism");
        let tokens = if mechanism == SaslMechanism::OAuthBearer {
            let provider = match (&sec.sasl_oauthbearer_token_provider, &sec.sasl_jaas_config) {
                (Some(p), _) => p.clone(),
                (None, Some(j)) if j.module == LoginModule::OAuthBearer => {
                    SharedTokenProvider::new(
                        UnsecuredJwsProvider::from_options(&j.options).map_err(|e| {
                            ConfigError::invalid("sasl.jaas.config", "[redacted]", &e)
                        })?,
                    )
                }
                _ => return Err(oauthbearer_unset()),
            };
            Some(TokenCache {
                provider,
                token: None,
                refresh: sec.sasl_login_refresh,
            })
        } else {
            None
        };
        Ok(SaslSetup {
            mechanism,
            credentials: sec.credentials(),
            tokens,
            extensions: sec.sasl_oauthbearer_extensions.clone(),
            nonces: Rng::new(seed ^ NONCE_STREAM),
        })
    }

    /// A fresh SCRAM client nonce.
    fn nonce(&mut self) -> [u8; 24] {
        let mut h = Sha256::new();
        for _ in 0..4 {
            h.update(self.nonces.next_u64().to_le_bytes());
        }
        let digest = h.finalize();
        let mut out = [0; 24];
        out.copy_from_slice(&digest[..24]);
        out
    }
}

impl TokenCache {
    /// The token to send at `now_ms`: the one held until its refresh point,
    /// then a new one from the provider.
    fn token(&mut self, now_ms: i64, rng: &mut Rng) -> Result<OAuthBearerToken, SaslError> {
        if let Some((t, refresh_at)) = &self.token {
            if now_ms < *refresh_at {
                return Ok(t.clone());
            }
        }
        let t = self
            .provider
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .token(now_ms)
            .map_err(SaslError::NoToken)?;
        if t.lifetime_ms <= now_ms {
            return Err(SaslError::NoToken(format!(
                "the provider's token for `{}` expired at {} (now {now_ms})",
                t.principal, t.lifetime_ms
            )));
        }
        let refresh_at = self.refresh.refresh_at(now_ms, t.lifetime_ms, rng.unit());
        self.token = Some((t.clone(), refresh_at));
        Ok(t)
    }
}

impl Producer {
    /// Starts (or, on a ready connection, restarts) the SASL exchange on `conn`.
    pub(super) fn start_sasl(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        let supported = c.version(ApiKey::SaslHandshake) == Some(1)
            && c.version(ApiKey::SaslAuthenticate).is_some();
        if !supported {
            let addr = c.addr_string();
            self.reset(conn, now, ConnectionError::SaslUnsupported { addr });
            return;
        }
        c.sasl = Some(SaslConn {
            phase: SaslPhase::Handshake,
            reauth_at: None,
        });
        let mechanism = self.sasl_setup().mechanism.name().to_string();
        log::debug!(
            "SASL {mechanism} with {} on {conn:?}",
            self.net.conns[&conn].addr_string()
        );
        let req = SaslHandshakeRequest { mechanism };
        self.send_request(conn, 1, &req, RequestKind::SaslHandshake, now);
    }

    fn sasl_setup(&mut self) -> &mut SaslSetup {
        self.security.sasl.as_mut().expect("SASL is configured")
    }

    pub(super) fn on_sasl_handshake(
        &mut self,
        conn: ConnId,
        resp: SaslHandshakeResponse,
        now: Instant,
    ) {
        let mechanism = self.sasl_setup().mechanism.name();
        let addr = self.net.conns[&conn].addr_string();
        if let Some(code) = error_of(resp.error_code) {
            let error = if code == ErrorCode::UnsupportedSaslMechanism {
                ConnectionError::UnsupportedSaslMechanism {
                    addr,
                    mechanism,
                    enabled: resp.mechanisms,
                }
            } else {
                ConnectionError::SaslAuthentication {
                    addr,
                    mechanism,
                    code,
                    message: None,
                }
            };
            self.reset(conn, now, error);
            return;
        }
        match self.sasl_client(now) {
            Ok(mut client) => {
                let token = client.initial();
                self.send_sasl_token(conn, client, token, now);
            }
            Err(error) => self.reset(conn, now, ConnectionError::Sasl { addr, error }),
        }
    }

    /// The client for a new exchange: PLAIN and SCRAM from the credentials
    /// (a fresh nonce each), OAUTHBEARER with the provider's token.
    fn sasl_client(&mut self, now: Instant) -> Result<SaslClient, SaslError> {
        let now_ms = self.wall_clock_ms(now);
        let s = self.security.sasl.as_mut().expect("SASL is configured");
        let credentials = s.credentials.clone();
        let credentials = move || credentials.expect("validated: credentials");
        Ok(match s.mechanism {
            SaslMechanism::Plain => SaslClient::Plain(PlainClient::new(credentials())),
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash = if s.mechanism == SaslMechanism::ScramSha256 {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let nonce = s.nonce();
                SaslClient::Scram(ScramClient::new(hash, credentials(), &nonce)?)
            }
            SaslMechanism::OAuthBearer => {
                let tokens = s.tokens.as_mut().expect("validated: a token provider");
                let token = tokens.token(now_ms, &mut self.rng)?;
                SaslClient::OAuthBearer(OAuthBearerClient::new(token, s.extensions.clone()))
            }
        })
    }

    /// Sends one client token in a SaslAuthenticate request; `client` waits for its answer.
    fn send_sasl_token(&mut self, conn: ConnId, client: SaslClient, token: Vec<u8>, now: Instant) {
        let c = self.net.conns.get_mut(&conn).expect("connection");
        let version = c.version(ApiKey::SaslAuthenticate).expect("checked");
        if let Some(s) = c.sasl.as_mut() {
            s.phase = SaslPhase::Authenticate(client);
        }
        let req = SaslAuthenticateRequest {
            auth_bytes: token.into(),
            ..Default::default()
        };
        self.send_request(conn, version, &req, RequestKind::SaslAuthenticate, now);
    }

    /// A SaslAuthenticate answer to the token sent at `sent`.
    pub(super) fn on_sasl_authenticate(
        &mut self,
        conn: ConnId,
        sent: Instant,
        resp: SaslAuthenticateResponse,
        now: Instant,
    ) {
        let mechanism = self.sasl_setup().mechanism.name();
        let c = self.net.conns.get_mut(&conn).expect("connection");
        let addr = c.addr_string();
        if let Some(code) = error_of(resp.error_code) {
            let error = ConnectionError::SaslAuthentication {
                addr,
                mechanism,
                code,
                message: resp.error_message,
            };
            self.reset(conn, now, error);
            return;
        }
        let phase = c
            .sasl
            .as_mut()
            .map(|s| std::mem::replace(&mut s.phase, SaslPhase::Handshake));
        let Some(SaslPhase::Authenticate(mut client)) = phase else {
            let error = SaslError::Unexpected(mechanism);
            self.reset(conn, now, ConnectionError::Sasl { addr, error });
            return;
        };
        match client.step(&resp.auth_bytes) {
            Ok(Step::Send(token)) => self.send_sasl_token(conn, client, token, now),
            Ok(Step::Done) => {
                let lifetime = u64::try_from(resp.session_lifetime_ms).unwrap_or(0);
                let reauth_at = (lifetime > 0).then(|| {
                    // Java's window: 85% of the lifetime plus up to 10% jitter.
                    let f = 0.85 + 0.10 * self.rng.unit();
                    sent + Duration::from_micros((lifetime as f64 * 1000.0 * f) as u64)
                });
                let c = self.net.conns.get_mut(&conn).expect("connection");
                let again = c.state == ConnState::Ready;
                c.state = ConnState::Ready;
                c.sasl = Some(SaslConn {
                    phase: SaslPhase::Done,
                    reauth_at,
                });
                log::debug!(
                    "{} with {addr} on {conn:?} as {mechanism}{}",
                    if again {
                        "re-authenticated"
                    } else {
                        "authenticated"
                    },
                    if lifetime > 0 {
                        format!("; session lifetime {lifetime} ms")
                    } else {
                        String::new()
                    }
                );
            }
            Err(error) => self.reset(conn, now, ConnectionError::Sasl { addr, error }),
        }
    }

    /// Starts re-authenticating the ready connections whose time has come.
    pub(super) fn maybe_reauthenticate(&mut self, now: Instant) {
        let due: Vec<ConnId> = self
            .net
            .conns
            .iter()
            .filter(|(_, c)| c.state == ConnState::Ready && !c.retired)
            .filter(|(_, c)| {
                c.sasl
                    .as_ref()
                    .is_some_and(|s| s.is_done() && s.reauth_at.is_some_and(|t| t <= now))
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in due {
            self.start_sasl(conn, now);
        }
    }

    /// The earliest re-authentication after `now`.
    pub(super) fn reauth_deadline(&self, now: Instant) -> Option<Instant> {
        earliest(
            now,
            self.net
                .conns
                .values()
                .filter(|c| !c.retired)
                .filter_map(|c| c.sasl.as_ref())
                .filter(|s| s.is_done())
                .filter_map(|s| s.reauth_at),
        )
    }
}

/// `sasl.mechanism=OAUTHBEARER` with neither a token provider nor the
/// `OAuthBearerLoginModule` options.
pub(super) fn oauthbearer_unset() -> ConfigError {
    ConfigError::invalid(
        "sasl.jaas.config",
        "",
        "sasl.mechanism=OAUTHBEARER needs OAuthBearerLoginModule options (unsecured tokens, \
         for test clusters) or a token provider (SecurityConfig::sasl_oauthbearer_token_provider)",
    )
}
