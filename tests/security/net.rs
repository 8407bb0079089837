//! A simulated network for the security tests: the core on one side, a
//! broker that speaks SASL (PLAIN, SCRAM-SHA-256/512) in front
//! of a [`MockCluster`] on the other, optionally behind a rustls server
//! (TLS on the broker's side of every link). The core's `Transmit::Send`s are
//! the wire: ciphertext under TLS, decrypted here by the server session.
//!
//! The broker holds the core to Kafka's rules: nothing but ApiVersions and
//! the SASL requests before authentication, nothing but SASL during a
//! re-authentication, nothing after the session lifetime ran out; a breach
//! is recorded in [`SaslBroker::violations`].

use std::collections::{BTreeMap, VecDeque};
#[cfg(feature = "tls")]
use std::io::{Read, Write};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use kafka_sansio::mock::MockCluster;
use kafka_sansio::producer::{ConnId, Event, Producer, Transmit};
use kafka_sansio::protocol::frame::{encode_response, ApiKey, Deframer, RequestHeader};
use kafka_sansio::protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
use kafka_sansio::protocol::messages::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_sansio::protocol::{ApiMessage, ErrorCode};

/// What one connection's SASL state is on the broker.
#[derive(Debug, Clone)]
enum Auth {
    /// No SaslHandshake yet.
    New,
    /// Mechanism chosen; waiting for the first token.
    Mechanism(String),
    /// SCRAM server-first sent.
    ScramFirst {
        sha512: bool,
        user: String,
        auth_message_head: String,
        nonce: String,
        salt: Vec<u8>,
    },
    /// Authenticated until `expires` (or for good).
    Done { expires: Option<Instant> },
}

/// A SASL broker in front of a mock cluster.
pub struct SaslBroker {
    /// The cluster that answers everything but ApiVersions and SASL.
    pub cluster: MockCluster,
    /// Whether connections must authenticate (false: a plaintext broker).
    pub sasl: bool,
    /// The mechanisms enabled.
    pub mechanisms: Vec<&'static str>,
    /// Users and passwords (PLAIN and SCRAM).
    pub users: Vec<(String, String)>,
    /// `session_lifetime_ms` given to a successful authentication (0: none).
    pub lifetime_ms: i64,
    /// Stops answering SaslAuthenticate requests (a broker that hangs mid-handshake).
    pub stall_authenticate: bool,
    /// Breaches of Kafka's rules by the client.
    pub violations: Vec<String>,
    /// Successful authentications per connection (re-authentications included).
    pub auths: BTreeMap<ConnId, u32>,
    /// Every client-first SCRAM message seen, in order.
    pub scram_firsts: Vec<String>,
    conns: BTreeMap<ConnId, Auth>,
    /// Requests in order per connection: (api key, correlation id).
    pub requests: BTreeMap<ConnId, Vec<(i16, i32)>>,
}

fn hmac(sha512: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    if sha512 {
        let mut m = Hmac::<Sha512>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
}

fn hash(sha512: bool, data: &[u8]) -> Vec<u8> {
    if sha512 {
        Sha512::digest(data).to_vec()
    } else {
        Sha256::digest(data).to_vec()
    }
}

fn salted(sha512: bool, password: &[u8], salt: &[u8], i: u32) -> Vec<u8> {
    if sha512 {
        pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, i).to_vec()
    } else {
        pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, i).to_vec()
    }
}

/// A response frame (size prefix included).
fn frame<M: ApiMessage>(correlation_id: i32, version: i16, msg: &M) -> Bytes {
    let mut buf = BytesMut::new();
    encode_response(&mut buf, correlation_id, version, msg).unwrap();
    buf.freeze()
}

impl SaslBroker {
    /// A one-broker cluster with SASL on (PLAIN and SCRAM enabled), user `alice`/`secret-pw`.
    pub fn new() -> SaslBroker {
        SaslBroker {
            cluster: MockCluster::new(1),
            sasl: true,
            mechanisms: vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
            users: vec![("alice".into(), "secret-pw".into())],
            lifetime_ms: 0,
            stall_authenticate: false,
            violations: Vec::new(),
            auths: BTreeMap::new(),
            scram_firsts: Vec::new(),
            conns: BTreeMap::new(),
            requests: BTreeMap::new(),
        }
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }

    /// Answers one request frame (no size prefix): the response (if any)
    /// and whether the broker closes the connection after it.
    pub fn handle(
        &mut self,
        conn: ConnId,
        frame_bytes: Bytes,
        now: Instant,
    ) -> (Option<Bytes>, bool) {
        let mut body = frame_bytes.clone();
        let header = RequestHeader::decode(&mut body).unwrap();
        self.requests
            .entry(conn)
            .or_default()
            .push((header.api_key, header.correlation_id));
        let key = ApiKey::from_code(header.api_key);
        let (cid, v) = (header.correlation_id, header.api_version);
        let state = self.conns.entry(conn).or_insert(Auth::New).clone();
        match key {
            Some(ApiKey::ApiVersions) => {
                let resp = ApiVersionsResponse {
                    api_keys: ApiKey::ALL
                        .iter()
                        .filter(|k| {
                            self.sasl
                                || !matches!(k, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
                        })
                        .map(|k| ApiVersion {
                            api_key: k.code(),
                            min_version: k.versions().0,
                            max_version: k.versions().1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                return (Some(frame(cid, v, &resp)), false);
            }
            Some(ApiKey::SaslHandshake) if self.sasl => {
                let req = SaslHandshakeRequest::decode(&mut body, v).unwrap();
                let enabled = self.mechanisms.contains(&req.mechanism.as_str());
                let reauth = matches!(state, Auth::Done { .. });
                if !matches!(state, Auth::New | Auth::Done { .. }) {
                    self.violations
                        .push(format!("{conn:?}: SaslHandshake mid-exchange"));
                }
                let resp = SaslHandshakeResponse {
                    error_code: if enabled {
                        0
                    } else {
                        ErrorCode::UnsupportedSaslMechanism.code()
                    },
                    mechanisms: self.mechanisms.iter().map(|m| m.to_string()).collect(),
                };
                if enabled {
                    let _ = reauth;
                    self.conns.insert(conn, Auth::Mechanism(req.mechanism));
                }
                return (Some(frame(cid, v, &resp)), !enabled);
            }
            Some(ApiKey::SaslAuthenticate) if self.sasl => {
                if self.stall_authenticate {
                    return (None, false);
                }
                let req = SaslAuthenticateRequest::decode(&mut body, v).unwrap();
                let (resp, close) = self.authenticate(conn, state, &req.auth_bytes, now);
                return (Some(frame(cid, v, &resp)), close);
            }
            _ => {}
        }
        if self.sasl {
            match state {
                Auth::Done { expires } => {
                    if expires.is_some_and(|e| now >= e) {
                        self.violations
                            .push(format!("{conn:?}: {key:?} after the session expired"));
                        return (None, true);
                    }
                }
                other => {
                    self.violations.push(format!(
                        "{conn:?}: {key:?} before authentication ({other:?})"
                    ));
                    return (None, true);
                }
            }
        }
        let r = self.cluster.handle_request(0, frame_bytes, now);
        (r.response, r.close)
    }

    fn ok(
        &mut self,
        conn: ConnId,
        bytes: Vec<u8>,
        now: Instant,
        lifetime_ms: i64,
    ) -> SaslAuthenticateResponse {
        *self.auths.entry(conn).or_default() += 1;
        let expires = (lifetime_ms > 0).then(|| now + Duration::from_millis(lifetime_ms as u64));
        self.conns.insert(conn, Auth::Done { expires });
        SaslAuthenticateResponse {
            auth_bytes: bytes.into(),
            session_lifetime_ms: lifetime_ms,
            ..Default::default()
        }
    }

    fn refuse(&mut self, conn: ConnId, message: &str) -> (SaslAuthenticateResponse, bool) {
        self.conns.insert(conn, Auth::New);
        (
            SaslAuthenticateResponse {
                error_code: ErrorCode::SaslAuthenticationFailed.code(),
                error_message: Some(message.into()),
                ..Default::default()
            },
            true,
        )
    }

    fn authenticate(
        &mut self,
        conn: ConnId,
        state: Auth,
        token: &[u8],
        now: Instant,
    ) -> (SaslAuthenticateResponse, bool) {
        let text = String::from_utf8_lossy(token).into_owned();
        match state {
            Auth::Mechanism(m) if m == "PLAIN" => {
                let parts: Vec<&str> = text.split('\0').collect();
                let good = parts.len() == 3 && self.password(parts[1]) == Some(parts[2]);
                if good {
                    let l = self.lifetime_ms;
                    (self.ok(conn, vec![], now, l), false)
                } else {
                    self.refuse(conn, "Authentication failed: Invalid username or password")
                }
            }
            Auth::Mechanism(m) if m.starts_with("SCRAM") => {
                self.scram_firsts.push(text.clone());
                let sha512 = m.ends_with("512");
                let bare = text.strip_prefix("n,,").expect("gs2 header n,,");
                let mut user = String::new();
                let mut cnonce = String::new();
                for a in bare.split(',') {
                    if let Some(u) = a.strip_prefix("n=") {
                        user = u.to_string();
                    } else if let Some(r) = a.strip_prefix("r=") {
                        cnonce = r.to_string();
                    }
                }
                let nonce = format!("{cnonce}srvnonce{}", conn.0);
                let salt = b"test-salt".to_vec();
                let server_first = format!("r={nonce},s={},i=4096", B64.encode(&salt));
                self.conns.insert(
                    conn,
                    Auth::ScramFirst {
                        sha512,
                        user,
                        auth_message_head: format!("{bare},{server_first}"),
                        nonce,
                        salt,
                    },
                );
                (
                    SaslAuthenticateResponse {
                        auth_bytes: server_first.into_bytes().into(),
                        ..Default::default()
                    },
                    false,
                )
            }
            Auth::ScramFirst {
                sha512,
                user,
                auth_message_head,
                nonce,
                salt,
            } => {
                let (without_proof, proof) = text.rsplit_once(",p=").expect("client-final has p=");
                assert_eq!(without_proof, format!("c=biws,r={nonce}"));
                let auth_message = format!("{auth_message_head},{without_proof}");
                let Some(password) = self.password(&user).map(String::from) else {
                    return self.refuse(conn, "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM");
                };
                let sp = salted(sha512, password.as_bytes(), &salt, 4096);
                let client_key = hmac(sha512, &sp, b"Client Key");
                let stored = hash(sha512, &client_key);
                let sig = hmac(sha512, &stored, auth_message.as_bytes());
                let proof = B64.decode(proof).unwrap();
                let recovered: Vec<u8> = proof.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
                if hash(sha512, &recovered) != stored {
                    return self.refuse(conn, "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM");
                }
                let server_key = hmac(sha512, &sp, b"Server Key");
                let server_sig = hmac(sha512, &server_key, auth_message.as_bytes());
                let final_msg = format!("v={}", B64.encode(server_sig)).into_bytes();
                let l = self.lifetime_ms;
                (self.ok(conn, final_msg, now, l), false)
            }
            other => {
                self.violations
                    .push(format!("{conn:?}: SaslAuthenticate in state {other:?}"));
                self.refuse(conn, "illegal state")
            }
        }
    }

    /// Whether `conn` authenticated (and is not re-authenticating).
    pub fn is_authenticated(&self, conn: ConnId) -> bool {
        matches!(self.conns.get(&conn), Some(Auth::Done { .. }))
    }

    /// The connection is gone.
    pub fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }
}

/// The TLS side of the broker, for every link.
pub enum ServerTls {
    /// No TLS: a plaintext listener.
    None,
    /// TLS with this configuration.
    #[cfg(feature = "tls")]
    Tls(Arc<rustls::ServerConfig>),
}

/// The broker's TLS session of one link.
#[cfg(feature = "tls")]
type ServerSession = rustls::ServerConnection;
/// Without `tls` no link has one.
#[cfg(not(feature = "tls"))]
type ServerSession = std::convert::Infallible;

/// Takes the client's ciphertext: the plaintext, the broker's ciphertext
/// (handshake, alerts), and whether the session failed.
#[cfg(feature = "tls")]
fn server_read(tls: &mut ServerSession, mut data: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut failed = false;
    while !data.is_empty() {
        tls.read_tls(&mut data).unwrap();
        if tls.process_new_packets().is_err() {
            failed = true;
            break;
        }
        let _ = tls.reader().read_to_end(&mut out);
    }
    (out, server_flush(tls), failed)
}

/// Encrypts an answer.
#[cfg(feature = "tls")]
fn server_write(tls: &mut ServerSession, data: &[u8]) -> Vec<u8> {
    tls.writer().write_all(data).unwrap();
    server_flush(tls)
}

#[cfg(feature = "tls")]
fn server_flush(tls: &mut ServerSession) -> Vec<u8> {
    let mut w = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut w).unwrap();
    }
    w
}

#[cfg(not(feature = "tls"))]
fn server_read(tls: &mut ServerSession, _: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    match *tls {}
}

#[cfg(not(feature = "tls"))]
fn server_write(tls: &mut ServerSession, _: &[u8]) -> Vec<u8> {
    match *tls {}
}

struct Link {
    tls: Option<ServerSession>,
    requests: Deframer,
    /// Bytes for the core, in order, each due at its instant.
    answers: VecDeque<(Instant, Bytes)>,
    /// The broker closes once its answers are delivered.
    closing: bool,
}

/// The core, the broker, and the links between them.
pub struct Net {
    /// The core.
    pub p: Producer,
    /// The clock.
    pub now: Instant,
    /// The broker.
    pub broker: SaslBroker,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// The delay of every answer.
    pub latency: Duration,
    /// When set, the broker's TLS side never answers (stops mid-handshake).
    pub mute_tls: bool,
    /// Answers still on their way to the core when a re-authentication's
    /// SaslHandshake reached the broker, one entry per re-authentication.
    pub reauth_in_flight: Vec<usize>,
    /// Connects asked for, with when.
    pub dialed: Vec<Instant>,
    tls: ServerTls,
    links: BTreeMap<ConnId, Link>,
}

/// The wall clock at the start of every net (2027-01-15).
pub const WALL_MS: i64 = 1_800_000_000_000;

impl Net {
    /// A core for `props` (bootstrap `localhost:9092` added) against `broker`.
    pub fn new(props: &[(&str, &str)], broker: SaslBroker, tls: ServerTls) -> Net {
        Self::with_config(
            kafka_sansio::producer::ProducerConfig::from_properties(
                [("bootstrap.servers", "localhost:9092")]
                    .into_iter()
                    .chain(props.iter().copied()),
            )
            .expect("valid config"),
            broker,
            tls,
        )
    }

    /// A core for `config` against `broker`.
    pub fn with_config(
        config: kafka_sansio::producer::ProducerConfig,
        broker: SaslBroker,
        tls: ServerTls,
    ) -> Net {
        let now = Instant::now();
        Net {
            p: Producer::new(config, now, WALL_MS).expect("core"),
            now,
            broker,
            events: Vec::new(),
            latency: Duration::from_millis(1),
            mute_tls: false,
            reauth_in_flight: Vec::new(),
            dialed: Vec::new(),
            tls,
            links: BTreeMap::new(),
        }
    }

    /// One round at `now`: the core's outputs carried out, due answers delivered.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        while let Some(t) = self.p.poll_transmit(now) {
            progressed = true;
            match t {
                Transmit::Connect { conn, .. } => {
                    self.dialed.push(now);
                    let tls = match &self.tls {
                        ServerTls::None => None,
                        #[cfg(feature = "tls")]
                        ServerTls::Tls(c) => {
                            Some(rustls::ServerConnection::new(c.clone()).unwrap())
                        }
                    };
                    self.links.insert(
                        conn,
                        Link {
                            tls,
                            // Kafka's socket.request.max.bytes.
                            requests: Deframer::new(100 * 1024 * 1024),
                            answers: VecDeque::new(),
                            closing: false,
                        },
                    );
                    self.p.handle_connected(conn, now);
                }
                Transmit::Send { conn, data } => {
                    if self.links.contains_key(&conn) {
                        self.p.handle_written(conn, data.len(), now);
                        self.carry(conn, &data);
                    }
                }
                Transmit::Close { conn } => {
                    if self.links.remove(&conn).is_some() {
                        self.broker.closed(conn);
                    }
                }
                other => panic!("unknown transmit {other:?}"),
            }
        }
        while let Some(e) = self.p.poll_event() {
            progressed = true;
            self.events.push(e);
        }
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            while let Some(link) = self.links.get_mut(&conn) {
                match link.answers.front() {
                    Some((due, _)) if *due <= now => {
                        let (_, bytes) = link.answers.pop_front().unwrap();
                        progressed = true;
                        self.p.handle_data(conn, &bytes, now);
                    }
                    Some(_) => break,
                    None => {
                        if link.closing {
                            progressed = true;
                            self.links.remove(&conn);
                            self.broker.closed(conn);
                            self.p.handle_disconnected(conn, now);
                        }
                        break;
                    }
                }
            }
        }
        progressed
    }

    /// The broker's side of bytes the core wrote on `conn`.
    fn carry(&mut self, conn: ConnId, data: &[u8]) {
        let now = self.now;
        let due = now + self.latency;
        let mute = self.mute_tls;
        let link = self.links.get_mut(&conn).unwrap();
        if link.closing {
            return;
        }
        let plaintext = match &mut link.tls {
            None => data.to_vec(),
            Some(tls) => {
                if mute {
                    return;
                }
                let (out, wire, failed) = server_read(tls, data);
                if !wire.is_empty() {
                    link.answers.push_back((due, wire.into()));
                }
                if failed {
                    link.closing = true;
                    return;
                }
                out
            }
        };
        link.requests.push(&plaintext);
        loop {
            let link = self.links.get_mut(&conn).unwrap();
            let f = match link.requests.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    // An oversized "request" (a TLS hello on a plaintext
                    // listener): Kafka drops the connection.
                    link.closing = true;
                    break;
                }
            };
            let reauth = self.broker.is_authenticated(conn)
                && RequestHeader::decode(&mut f.clone()).map(|h| h.api_key)
                    == Ok(ApiKey::SaslHandshake.code());
            if reauth {
                self.reauth_in_flight.push(link.answers.len());
            }
            let (resp, close) = self.broker.handle(conn, f, now);
            let link = self.links.get_mut(&conn).unwrap();
            if let Some(r) = resp {
                let wire: Bytes = match &mut link.tls {
                    None => r,
                    Some(tls) => server_write(tls, &r).into(),
                };
                link.answers.push_back((due, wire));
            }
            if close {
                link.closing = true;
                break;
            }
        }
    }

    /// Ends the TLS session of every link with close_notify (mid-stream).
    #[cfg(feature = "tls")]
    pub fn tls_close_notify_all(&mut self) {
        let due = self.now + self.latency;
        for link in self.links.values_mut() {
            if let Some(tls) = &mut link.tls {
                tls.send_close_notify();
                let w = server_flush(tls);
                link.answers.push_back((due, w.into()));
            }
        }
    }

    /// Corrupts the next bytes every TLS link delivers (a broken record mid-stream).
    #[cfg(feature = "tls")]
    pub fn garble_all(&mut self) {
        let due = self.now + self.latency;
        for link in self.links.values_mut() {
            link.answers.push_back((
                due,
                Bytes::from_static(&[0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]),
            ));
        }
    }

    /// Steps until nothing happens now.
    pub fn idle(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiet in 100000 steps");
    }

    /// Runs until `cond`, time jumping to the next deadline or answer, at
    /// most `limit` of simulated time; true when `cond` held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.idle();
            if cond(self) {
                return true;
            }
            let answer = self
                .links
                .values()
                .filter_map(|l| l.answers.front().map(|a| a.0))
                .min();
            let timer = self.p.poll_timeout();
            let Some(next) = [answer, timer].into_iter().flatten().min() else {
                return false;
            };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            self.p.handle_timeout(self.now);
        }
    }

    /// Moves the clock by `d`, running everything due on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(d, |_| false);
        self.now = end;
        self.p.handle_timeout(end);
        self.idle();
    }
}
