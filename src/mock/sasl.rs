//! Server-side SASL of the mock (feature `sasl`): PLAIN (RFC 4616),
//! SCRAM-SHA-256/512 (RFC 5802, RFC 7677) and OAUTHBEARER (RFC 7628, with
//! Kafka's unsecured-token validator: `oauthbearer.rs`) as Kafka's broker
//! speaks them, with its per-connection rules (Kafka's
//! `SaslServerAuthenticator` and `KafkaChannel`):
//!
//! - before authentication only ApiVersions (once, first), SaslHandshake v1
//!   and then SaslAuthenticate are served; anything else closes the connection;
//! - a mechanism the listener does not enable is answered
//!   UNSUPPORTED_SASL_MECHANISM with the enabled list, then the connection
//!   closes; bad credentials are answered SASL_AUTHENTICATION_FAILED with
//!   Kafka's message, then it closes;
//! - with a session lifetime (`connections.max.reauth.ms`) the final
//!   SaslAuthenticate response carries `session_lifetime_ms`; a SaslHandshake
//!   on an authenticated connection starts re-authentication (KIP-368, at
//!   most one per second, same mechanism and principal); any other request
//!   after the session expired closes the connection;
//! - an OAUTHBEARER session ends when its token does if that comes first:
//!   the lifetime is min(token `exp` - now, `connections.max.reauth.ms`),
//!   token times read against the mock's wall clock
//!   ([`MockCluster::set_wall_clock`]).
//!
//! SCRAM credentials are kept as Kafka keeps them (salt, StoredKey,
//! ServerKey, iterations), never the password. Salts and server nonces come
//! from the cluster's seeded generator, so a run repeats byte for byte.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;

use super::oauthbearer::{self, MockOAuthValidator};
use super::{HandleResult, MockCluster};
use crate::producer::rng::Rng;
use crate::producer::security::sasl::ScramHash;
use crate::producer::security::{Password, SaslMechanism};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

/// Kafka's minimum SCRAM iteration count (`ScramMechanism.minIterations`).
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// Kafka lets a connection start re-authenticating at most once a second
/// (`KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`).
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// A session end that stands for "never" (a century).
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why SASL settings of a mock cluster were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockSaslError {
    /// The mock has no server side for this mechanism.
    #[error("the mock cluster does not serve SASL mechanism {0}")]
    UnsupportedMechanism(&'static str),
    /// SCRAM iterations below Kafka's minimum.
    #[error("SCRAM iterations {0} below the minimum {MIN_SCRAM_ITERATIONS}")]
    TooFewIterations(u32),
    /// A user for a mechanism the listener does not enable.
    #[error("SASL mechanism {0} is not enabled on the mock cluster")]
    NotEnabled(&'static str),
    /// A user for OAUTHBEARER, whose tokens name their principal themselves.
    #[error("SASL mechanism {0} has no users: its tokens carry the principal")]
    NoUsers(&'static str),
}

/// Counts of what the mock's SASL listener did, for tests to check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaslStats {
    /// SaslHandshake requests answered without error (first and re-authentication).
    pub handshakes: u64,
    /// Exchanges completed successfully, re-authentications included.
    pub authentications: u64,
    /// Of those, re-authentications of an authenticated connection.
    pub reauthentications: u64,
    /// Exchanges answered SASL_AUTHENTICATION_FAILED or UNSUPPORTED_SASL_MECHANISM.
    pub failures: u64,
    /// Connections closed because a request came after the session expired.
    pub expired_closes: u64,
    /// Connections closed for a request that SASL's state does not allow.
    pub unauthenticated_closes: u64,
    /// OAUTHBEARER tokens answered with a JSON error status (`invalid_token`,
    /// `insufficient_scope`); each exchange then fails, counted in `failures`.
    pub token_rejections: u64,
}

/// A SCRAM credential as Kafka stores it (`ScramCredential`).
#[derive(Clone, PartialEq, Eq)]
struct ScramCredential {
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    iterations: u32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn scram_hash(m: SaslMechanism) -> Option<ScramHash> {
    match m {
        SaslMechanism::ScramSha256 => Some(ScramHash::Sha256),
        SaslMechanism::ScramSha512 => Some(ScramHash::Sha512),
        SaslMechanism::Plain | SaslMechanism::OAuthBearer => None,
    }
}

/// A mechanism exchange in progress on the server side.
#[derive(Debug, Clone)]
enum Exchange {
    Plain,
    ScramFirst(ScramHash),
    ScramFinal {
        hash: ScramHash,
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    /// OAUTHBEARER; `rejected` is the JSON error sent for the last token,
    /// which the client acknowledges with `\x01`.
    OAuthBearer {
        rejected: Option<String>,
    },
}

/// Where one connection is in Kafka's SASL state machine.
#[derive(Debug, Clone)]
enum ConnAuth {
    /// Nothing yet: ApiVersions or SaslHandshake may come.
    Start,
    /// ApiVersions answered: only SaslHandshake may come.
    Versions,
    /// SaslHandshake answered: SaslAuthenticate tokens until the exchange ends.
    Authenticating {
        mechanism: SaslMechanism,
        exchange: Exchange,
        /// When re-authenticating: the session being renewed.
        reauth: Option<Renewal>,
    },
    /// Authenticated as `principal` until `expires` (no limit when `None`).
    Ready {
        principal: String,
        mechanism: SaslMechanism,
        expires: Option<Instant>,
        last_reauth: Option<Instant>,
    },
}

/// The session a re-authentication renews.
#[derive(Debug, Clone)]
struct Renewal {
    principal: String,
    mechanism: SaslMechanism,
    started: Instant,
}

/// The SASL side of a mock cluster's listener: mechanisms, users, sessions.
#[derive(Debug, Clone)]
pub(super) struct SaslListener {
    mechanisms: Vec<SaslMechanism>,
    plain: BTreeMap<String, Password>,
    scram: BTreeMap<(&'static str, String), ScramCredential>,
    session_lifetime: Option<Duration>,
    oauth: MockOAuthValidator,
    rng: Rng,
    conns: BTreeMap<u64, ConnAuth>,
    stats: SaslStats,
}

/// One mechanism step's result on the server side.
enum Evaluated {
    /// Send this token, wait for the next.
    Continue(Vec<u8>, Exchange),
    /// Authenticated as the principal; send this final token. The
    /// credential's end (Unix ms), for mechanisms whose credentials expire.
    Complete(String, Vec<u8>, Option<i64>),
}

/// Kafka's answer to a SaslException: the same message whatever the cause.
fn invalid_credentials(mechanism: SaslMechanism, reauth: bool) -> String {
    format!(
        "Authentication failed during {} due to invalid credentials with SASL mechanism {}",
        if reauth {
            "re-authentication"
        } else {
            "authentication"
        },
        mechanism.name()
    )
}

/// RFC 5802 `saslname` decoding: `=2C` is `,`, `=3D` is `=`, any other `=` is invalid.
fn unescape_sasl_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = t;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

impl SaslListener {
    fn new(mechanisms: Vec<SaslMechanism>, seed: u64) -> Self {
        SaslListener {
            mechanisms,
            plain: BTreeMap::new(),
            scram: BTreeMap::new(),
            session_lifetime: None,
            oauth: MockOAuthValidator::default(),
            rng: Rng::new(seed),
            conns: BTreeMap::new(),
            stats: SaslStats::default(),
        }
    }

    fn enabled_names(&self) -> Vec<String> {
        self.mechanisms
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    }

    fn random_hex(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| format!("{:016x}", self.rng.next_u64()))
            .collect()
    }

    /// A step of `exchange` with the client's `token` at `now_ms` (the
    /// mock's wall clock); `Err` is the message of SASL_AUTHENTICATION_FAILED.
    fn evaluate(
        &mut self,
        mechanism: SaslMechanism,
        exchange: Exchange,
        token: &[u8],
        reauth: bool,
        now_ms: i64,
    ) -> Result<Evaluated, String> {
        let invalid = || invalid_credentials(mechanism, reauth);
        match exchange {
            Exchange::Plain => {
                let text = std::str::from_utf8(token).map_err(|_| invalid())?;
                let parts: Vec<&str> = text.split('\0').collect();
                let [authzid, user, password] = parts[..] else {
                    return Err(invalid());
                };
                if user.is_empty() {
                    return Err("Authentication failed: username not specified".into());
                }
                if password.is_empty() {
                    return Err("Authentication failed: password not specified".into());
                }
                if self.plain.get(user).is_none_or(|p| p.expose() != password) {
                    return Err("Authentication failed: Invalid username or password".into());
                }
                if !authzid.is_empty() && authzid != user {
                    return Err("Authentication failed: Client requested an authorization id that is different from username".into());
                }
                Ok(Evaluated::Complete(user.to_owned(), Vec::new(), None))
            }
            Exchange::ScramFirst(hash) => {
                let text = std::str::from_utf8(token).map_err(|_| invalid())?;
                let (flag, rest) = text.split_at_checked(2).ok_or_else(invalid)?;
                if flag != "n," && flag != "y," {
                    return Err(invalid());
                }
                let (authz, bare) = rest.split_once(',').ok_or_else(invalid)?;
                let gs2_header = format!("{flag}{authz},");
                let authzid = match authz {
                    "" => None,
                    a => Some(
                        a.strip_prefix("a=")
                            .and_then(unescape_sasl_name)
                            .ok_or_else(invalid)?,
                    ),
                };
                let mut attrs = bare.split(',');
                let user = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("n="))
                    .and_then(unescape_sasl_name)
                    .ok_or_else(invalid)?;
                let cnonce = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("r="))
                    .filter(|n| !n.is_empty())
                    .ok_or_else(invalid)?;
                // Kafka knows one extension, tokenauth (delegation tokens,
                // which the mock does not issue): any extension fails.
                if attrs.next().is_some() {
                    return Err(invalid());
                }
                let credential = self
                    .scram
                    .get(&(mechanism.name(), user.clone()))
                    .cloned()
                    .ok_or_else(invalid)?;
                if authzid.is_some_and(|a| a != user) {
                    return Err("Authentication failed: Client requested an authorization id that is different from username".into());
                }
                let nonce = format!("{cnonce}{}", self.random_hex(2));
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    STANDARD.encode(&credential.salt),
                    credential.iterations
                );
                Ok(Evaluated::Continue(
                    server_first.clone().into_bytes(),
                    Exchange::ScramFinal {
                        hash,
                        user,
                        credential,
                        gs2_header,
                        client_first_bare: bare.to_owned(),
                        server_first,
                        nonce,
                    },
                ))
            }
            Exchange::ScramFinal {
                hash,
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let text = std::str::from_utf8(token).map_err(|_| invalid())?;
                let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(invalid)?;
                let mut attrs = without_proof.split(',');
                let binding = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("c="))
                    .and_then(|c| STANDARD.decode(c).ok())
                    .ok_or_else(invalid)?;
                if binding != gs2_header.as_bytes() {
                    return Err(invalid());
                }
                if attrs.next().and_then(|a| a.strip_prefix("r=")) != Some(nonce.as_str()) {
                    return Err(invalid());
                }
                let proof = STANDARD.decode(proof).map_err(|_| invalid())?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let signature = hash.hmac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != signature.len() {
                    return Err(invalid());
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                if hash.hash(&client_key) != credential.stored_key {
                    return Err(invalid());
                }
                let server_signature = hash.hmac(&credential.server_key, auth_message.as_bytes());
                Ok(Evaluated::Complete(
                    user,
                    format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
                    None,
                ))
            }
            Exchange::OAuthBearer { rejected } => {
                // After an error the client's `\x01` ends the exchange with
                // that error; anything else is a fresh first message.
                if let (Some(json), [0x01]) = (&rejected, token) {
                    return Err(json.clone());
                }
                let first = oauthbearer::parse_initial(token).map_err(|why| {
                    log::debug!("mock SASL: {why}");
                    invalid()
                })?;
                match oauthbearer::validate(&first.token, &self.oauth, now_ms) {
                    Err(refusal) => {
                        log::debug!("mock SASL: OAUTHBEARER token refused: {}", refusal.reason);
                        self.stats.token_rejections += 1;
                        let json = refusal.json();
                        Ok(Evaluated::Continue(
                            json.clone().into_bytes(),
                            Exchange::OAuthBearer {
                                rejected: Some(json),
                            },
                        ))
                    }
                    Ok(t) if !first.authzid.is_empty() && first.authzid != t.principal => Err(format!(
                        "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
                        first.authzid, t.principal
                    )),
                    Ok(t) => Ok(Evaluated::Complete(t.principal, Vec::new(), Some(t.lifetime_ms))),
                }
            }
        }
    }
}

/// The outcome of SASL's look at one request.
pub(super) enum Gate {
    /// Authenticated (or ApiVersions before it): serve the request as usual.
    Serve,
    /// SASL answers (or closes) itself.
    Answer(HandleResult),
}

/// The request SASL looks at, decoded as far as the header.
pub(super) struct Incoming<'a> {
    pub(super) conn: Option<u64>,
    pub(super) api: ApiKey,
    pub(super) version: i16,
    pub(super) cid: i32,
    pub(super) body: &'a Bytes,
    pub(super) pushed: Option<ErrorCode>,
    pub(super) due: Instant,
    pub(super) now: Instant,
}

impl MockCluster {
    /// Turns SASL on for every broker (a SASL_PLAINTEXT or, with TLS,
    /// SASL_SSL listener) with these mechanisms, in the order SaslHandshake
    /// lists them; users are added with [`Self::add_sasl_user`]. Connections
    /// then authenticate first: use [`Self::handle_connection_request`] so the
    /// mock can tell them apart.
    ///
    /// OAUTHBEARER takes no users: any unsecured token that passes
    /// [`Self::set_oauthbearer_validator`]'s checks authenticates its principal.
    ///
    /// Errors: none today; the `Result` leaves room for mechanisms the mock
    /// does not serve.
    pub fn enable_sasl(&mut self, mechanisms: &[SaslMechanism]) -> Result<(), MockSaslError> {
        let mut list = Vec::new();
        for m in mechanisms {
            if !list.contains(m) {
                list.push(*m);
            }
        }
        match &mut self.sasl {
            Some(s) => s.mechanisms = list,
            None => self.sasl = Some(SaslListener::new(list, 0x5a51_5e55)),
        }
        Ok(())
    }

    /// The mechanisms SaslHandshake accepts; empty when SASL is off.
    pub fn sasl_mechanisms(&self) -> Vec<SaslMechanism> {
        self.sasl
            .as_ref()
            .map(|s| s.mechanisms.clone())
            .unwrap_or_default()
    }

    /// Adds (or replaces) a user of `mechanism`: PLAIN keeps the password as
    /// Kafka's `user_<name>` JAAS option does; SCRAM stores a salted credential
    /// with [`MIN_SCRAM_ITERATIONS`] (see [`Self::add_scram_user`]).
    ///
    /// Errors: a mechanism [`Self::enable_sasl`] did not enable; OAUTHBEARER.
    pub fn add_sasl_user(
        &mut self,
        mechanism: SaslMechanism,
        user: &str,
        password: &str,
    ) -> Result<(), MockSaslError> {
        if mechanism == SaslMechanism::OAuthBearer {
            return Err(MockSaslError::NoUsers(mechanism.name()));
        }
        match scram_hash(mechanism) {
            Some(_) => self.add_scram_user(mechanism, user, password, MIN_SCRAM_ITERATIONS),
            None => {
                let s = self.sasl_enabled_for(mechanism)?;
                s.plain.insert(user.to_owned(), Password::new(password));
                Ok(())
            }
        }
    }

    /// Adds (or replaces) a SCRAM user as `kafka-configs --add-config
    /// 'SCRAM-SHA-512=[iterations=N,password=P]'` does: a fresh 32-byte
    /// salt, then StoredKey and ServerKey from `Hi(password, salt, N)`.
    ///
    /// Errors: not a SCRAM mechanism or not enabled; fewer iterations than Kafka allows.
    pub fn add_scram_user(
        &mut self,
        mechanism: SaslMechanism,
        user: &str,
        password: &str,
        iterations: u32,
    ) -> Result<(), MockSaslError> {
        let Some(hash) = scram_hash(mechanism) else {
            return Err(MockSaslError::UnsupportedMechanism(mechanism.name()));
        };
        if iterations < MIN_SCRAM_ITERATIONS {
            return Err(MockSaslError::TooFewIterations(iterations));
        }
        let s = self.sasl_enabled_for(mechanism)?;
        let salt: Vec<u8> = (0..4)
            .flat_map(|_| s.rng.next_u64().to_be_bytes())
            .collect();
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let credential = ScramCredential {
            stored_key: hash.hash(&hash.hmac(&salted, b"Client Key")),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        };
        s.scram
            .insert((mechanism.name(), user.to_owned()), credential);
        Ok(())
    }

    /// Removes a user of `mechanism`; its authenticated connections stay
    /// until they re-authenticate, as on Kafka. Returns whether it existed.
    pub fn remove_sasl_user(&mut self, mechanism: SaslMechanism, user: &str) -> bool {
        let Some(s) = &mut self.sasl else {
            return false;
        };
        if mechanism == SaslMechanism::OAuthBearer {
            return false;
        }
        match scram_hash(mechanism) {
            Some(_) => s
                .scram
                .remove(&(mechanism.name(), user.to_owned()))
                .is_some(),
            None => s.plain.remove(user).is_some(),
        }
    }

    /// `connections.max.reauth.ms`: sessions last `lifetime` after each
    /// authentication (reported in SaslAuthenticate v1+ as
    /// `session_lifetime_ms`); `None` (Kafka's default 0) for no limit.
    /// Applies to authentications from now on.
    pub fn set_session_lifetime(&mut self, lifetime: Option<Duration>) {
        if let Some(s) = &mut self.sasl {
            s.session_lifetime = lifetime.filter(|d| !d.is_zero());
        }
    }

    /// Kafka's unsecured OAUTHBEARER validator options for the listener
    /// (principal and scope claim names, required scope, clock skew).
    ///
    /// Errors: OAUTHBEARER not enabled.
    pub fn set_oauthbearer_validator(
        &mut self,
        validator: MockOAuthValidator,
    ) -> Result<(), MockSaslError> {
        self.sasl_enabled_for(SaslMechanism::OAuthBearer)?.oauth = validator;
        Ok(())
    }

    /// Anchors the wall clock that OAUTHBEARER token times (`iat`, `exp`)
    /// are checked against: `unix_ms` at `now`, the mock's clock running on
    /// from there. Unanchored, it is the system clock. A simulation anchors
    /// it where it anchored the producer's, so that runs repeat.
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        self.wall_clock = Some((now, unix_ms));
    }

    /// Unix milliseconds at `now` by the mock's wall clock.
    fn unix_ms(&self, now: Instant) -> i64 {
        let (base, base_ms) = self.wall_clock.unwrap_or_else(|| {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            (Instant::now(), ms)
        });
        if now >= base {
            base_ms + now.duration_since(base).as_millis() as i64
        } else {
            base_ms - base.duration_since(now).as_millis() as i64
        }
    }

    /// What the SASL listener has done so far (all zero when SASL is off).
    pub fn sasl_stats(&self) -> SaslStats {
        self.sasl.as_ref().map(|s| s.stats).unwrap_or_default()
    }

    /// The principal connection `conn` is authenticated as, if it is.
    pub fn sasl_principal(&self, conn: u64) -> Option<&str> {
        match self.sasl.as_ref()?.conns.get(&conn)? {
            ConnAuth::Ready { principal, .. } => Some(principal),
            _ => None,
        }
    }

    fn sasl_enabled_for(
        &mut self,
        mechanism: SaslMechanism,
    ) -> Result<&mut SaslListener, MockSaslError> {
        match &mut self.sasl {
            Some(s) if s.mechanisms.contains(&mechanism) => Ok(s),
            _ => Err(MockSaslError::NotEnabled(mechanism.name())),
        }
    }

    /// Forgets the SASL state of `conn` once it closed.
    pub(super) fn sasl_connection_closed(&mut self, conn: u64) {
        if let Some(s) = &mut self.sasl {
            s.conns.remove(&conn);
        }
    }

    /// Kafka's SASL rules for one request on a SASL listener.
    pub(super) fn sasl_gate(&mut self, mut r: Incoming<'_>) -> Gate {
        if self.sasl.is_none() {
            return Gate::Serve;
        }
        // Errors pushed for the SASL APIs are theirs; other APIs' stay queued
        // for the request handlers.
        if matches!(r.api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
            r.pushed = self
                .pushed_errors
                .get_mut(&r.api.code())
                .and_then(std::collections::VecDeque::pop_front);
        }
        let now_ms = self.unix_ms(r.now);
        let Some(s) = &mut self.sasl else {
            return Gate::Serve;
        };
        let close = HandleResult {
            response: None,
            close: true,
            due: r.due,
        };
        // A request without a connection is one on a fresh connection.
        let state = r
            .conn
            .and_then(|c| s.conns.get(&c).cloned())
            .unwrap_or(ConnAuth::Start);
        let (next, gate) = match state {
            ConnAuth::Start if r.api == ApiKey::ApiVersions => (ConnAuth::Versions, Gate::Serve),
            ConnAuth::Start | ConnAuth::Versions if r.api == ApiKey::SaslHandshake => {
                handshake(s, &r, None)
            }
            ConnAuth::Start | ConnAuth::Versions => {
                log::debug!(
                    "mock SASL: {:?} before authentication, closing the connection",
                    r.api
                );
                s.stats.unauthenticated_closes += 1;
                (ConnAuth::Start, Gate::Answer(close))
            }
            ConnAuth::Authenticating {
                mechanism,
                exchange,
                reauth,
            } => {
                if r.api != ApiKey::SaslAuthenticate {
                    log::debug!("mock SASL: {:?} during SASL authentication, closing", r.api);
                    s.stats.unauthenticated_closes += 1;
                    (ConnAuth::Start, Gate::Answer(close))
                } else {
                    authenticate(s, &r, now_ms, mechanism, exchange, reauth)
                }
            }
            ConnAuth::Ready {
                principal,
                mechanism,
                expires,
                last_reauth,
            } => {
                let ready = |last_reauth| ConnAuth::Ready {
                    principal: principal.clone(),
                    mechanism,
                    expires,
                    last_reauth,
                };
                let reauth_allowed = expires.is_some()
                    && last_reauth.is_none_or(|t| r.now.duration_since(t) >= MIN_REAUTH_INTERVAL);
                match r.api {
                    ApiKey::SaslHandshake if reauth_allowed => {
                        let renewal = Renewal {
                            principal: principal.clone(),
                            mechanism,
                            started: r.now,
                        };
                        handshake(s, &r, Some(renewal))
                    }
                    _ if expires.is_some_and(|t| r.now >= t) => {
                        log::debug!("mock SASL: session of {principal} expired, closing");
                        s.stats.expired_closes += 1;
                        (ConnAuth::Start, Gate::Answer(close))
                    }
                    // Served by the request handlers in Kafka, which refuse both.
                    ApiKey::SaslHandshake => (
                        ready(last_reauth),
                        Gate::Answer(answer(
                            &r,
                            &SaslHandshakeResponse {
                                error_code: ErrorCode::IllegalSaslState.code(),
                                mechanisms: Vec::new(),
                            },
                            false,
                        )),
                    ),
                    ApiKey::SaslAuthenticate => (
                        ready(last_reauth),
                        Gate::Answer(answer(
                            &r,
                            &SaslAuthenticateResponse {
                                error_code: ErrorCode::IllegalSaslState.code(),
                                error_message: Some(
                                    "SaslAuthenticate request received after successful authentication"
                                        .into(),
                                ),
                                ..Default::default()
                            },
                            false,
                        )),
                    ),
                    _ => (ready(last_reauth), Gate::Serve),
                }
            }
        };
        if let Some(c) = r.conn {
            if matches!(&gate, Gate::Answer(h) if h.close) {
                s.conns.remove(&c);
            } else {
                s.conns.insert(c, next);
            }
        }
        gate
    }
}

/// Encodes a SASL answer; `close` closes the connection after it.
fn answer<M: crate::protocol::frame::ApiMessage>(
    r: &Incoming<'_>,
    m: &M,
    close: bool,
) -> HandleResult {
    let mut h = super::dispatch::respond(r.cid, r.version, m, r.due);
    h.close |= close;
    h
}

/// SaslHandshake, first or re-authenticating (`reauth` names the session then).
fn handshake(s: &mut SaslListener, r: &Incoming<'_>, reauth: Option<Renewal>) -> (ConnAuth, Gate) {
    let close = |s: &mut SaslListener| {
        s.stats.unauthenticated_closes += 1;
        (
            ConnAuth::Start,
            Gate::Answer(HandleResult {
                response: None,
                close: true,
                due: r.due,
            }),
        )
    };
    // v0 sends the tokens as raw frames (before KIP-152), which the mock does not read.
    if r.version < 1 {
        log::debug!("mock SASL: SaslHandshake v0 is not served, closing");
        return close(s);
    }
    let mut body = r.body.clone();
    let Ok(req) =
        <SaslHandshakeRequest as crate::protocol::frame::ApiMessage>::decode(&mut body, r.version)
    else {
        return close(s);
    };
    let enabled = s.enabled_names();
    let fail = |s: &mut SaslListener, code: ErrorCode| {
        s.stats.failures += 1;
        let resp = SaslHandshakeResponse {
            error_code: code.code(),
            mechanisms: enabled.clone(),
        };
        (ConnAuth::Start, Gate::Answer(answer(r, &resp, true)))
    };
    if let Some(e) = r.pushed {
        return fail(s, e);
    }
    let Some(mechanism) = s
        .mechanisms
        .iter()
        .copied()
        .find(|m| m.name() == req.mechanism)
    else {
        log::debug!(
            "mock SASL: mechanism {:?} not enabled ({enabled:?})",
            req.mechanism
        );
        return fail(s, ErrorCode::UnsupportedSaslMechanism);
    };
    s.stats.handshakes += 1;
    let exchange = match (mechanism, scram_hash(mechanism)) {
        (SaslMechanism::OAuthBearer, _) => Exchange::OAuthBearer { rejected: None },
        (_, Some(h)) => Exchange::ScramFirst(h),
        (_, None) => Exchange::Plain,
    };
    let resp = SaslHandshakeResponse {
        error_code: 0,
        mechanisms: enabled,
    };
    (
        ConnAuth::Authenticating {
            mechanism,
            exchange,
            reauth,
        },
        Gate::Answer(answer(r, &resp, false)),
    )
}

/// One SaslAuthenticate token of the exchange in progress, at `now_ms` by
/// the mock's wall clock.
fn authenticate(
    s: &mut SaslListener,
    r: &Incoming<'_>,
    now_ms: i64,
    mechanism: SaslMechanism,
    exchange: Exchange,
    reauth: Option<Renewal>,
) -> (ConnAuth, Gate) {
    let mut body = r.body.clone();
    let Ok(req) = <SaslAuthenticateRequest as crate::protocol::frame::ApiMessage>::decode(
        &mut body, r.version,
    ) else {
        s.stats.unauthenticated_closes += 1;
        return (
            ConnAuth::Start,
            Gate::Answer(HandleResult {
                response: None,
                close: true,
                due: r.due,
            }),
        );
    };
    let fail = |s: &mut SaslListener, code: ErrorCode, message: String| {
        log::debug!("mock SASL: {mechanism:?} failed: {message}");
        s.stats.failures += 1;
        let resp = SaslAuthenticateResponse {
            error_code: code.code(),
            error_message: Some(message),
            ..Default::default()
        };
        (ConnAuth::Start, Gate::Answer(answer(r, &resp, true)))
    };
    if let Some(e) = r.pushed {
        return fail(s, e, format!("injected {}", e.name()));
    }
    if let Some(p) = reauth
        .as_ref()
        .map(|o| o.mechanism)
        .filter(|p| *p != mechanism)
    {
        return fail(
            s,
            ErrorCode::SaslAuthenticationFailed,
            format!(
                "SASL mechanism '{}' requested by client is not supported for re-authentication of mechanism '{}'",
                mechanism.name(),
                p.name()
            ),
        );
    }
    match s.evaluate(
        mechanism,
        exchange,
        &req.auth_bytes,
        reauth.is_some(),
        now_ms,
    ) {
        Err(message) => fail(s, ErrorCode::SaslAuthenticationFailed, message),
        Ok(Evaluated::Continue(token, exchange)) => {
            let resp = SaslAuthenticateResponse {
                auth_bytes: Bytes::from(token),
                ..Default::default()
            };
            (
                ConnAuth::Authenticating {
                    mechanism,
                    exchange,
                    reauth,
                },
                Gate::Answer(answer(r, &resp, false)),
            )
        }
        Ok(Evaluated::Complete(principal, token, credential_end_ms)) => {
            if let Some(old) = reauth
                .as_ref()
                .map(|o| &o.principal)
                .filter(|old| **old != principal)
            {
                return fail(
                    s,
                    ErrorCode::SaslAuthenticationFailed,
                    format!("Cannot change principals during re-authentication from User:{old}: User:{principal}"),
                );
            }
            s.stats.authentications += 1;
            if reauth.is_some() {
                s.stats.reauthentications += 1;
            }
            // Kafka's session: the shorter of connections.max.reauth.ms and
            // what is left of the credential, never negative.
            let max = s.session_lifetime;
            let lifetime = match credential_end_ms {
                None => max,
                Some(end) => {
                    let left = Duration::from_millis(u64::try_from(end - now_ms).unwrap_or(0));
                    Some(max.map_or(left, |m| m.min(left)))
                }
            };
            let resp = SaslAuthenticateResponse {
                auth_bytes: Bytes::from(token),
                session_lifetime_ms: if r.version >= 1 {
                    lifetime.map_or(0, |d| d.as_millis() as i64)
                } else {
                    0
                },
                ..Default::default()
            };
            (
                ConnAuth::Ready {
                    principal,
                    mechanism,
                    // A token's `exp` may lie past what an Instant holds.
                    expires: lifetime.map(|d| r.now.checked_add(d).unwrap_or(r.now + FAR_FUTURE)),
                    last_reauth: reauth.map(|o| o.started),
                },
                Gate::Answer(answer(r, &resp, false)),
            )
        }
    }
}
