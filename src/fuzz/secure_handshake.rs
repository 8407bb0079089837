//! The SASL and TLS handshake states of the core driven by fuzzer bytes: the
//! entry point of the `secure_handshake` cargo-fuzz target, shared with the
//! stable replay test `tests/fuzz_corpus.rs` (features `sasl` and `tls`).
//!
//! A [`Pair`] with its network held connects the producer to one mock broker
//! speaking SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), over TLS or not.
//! The broker's SaslHandshake and SaslAuthenticate answers are the mock's own
//! unless the input forges the next one: bytes written over it, a body of the
//! fuzzer's, or fields of the fuzzer's (error code, mechanism list, message,
//! session lifetime, and auth bytes shaped as SCRAM server-first or
//! server-final messages around the client's nonce). Raw bytes, bare or
//! framed as TLS records (handshake, alert, application data), reach the
//! core's TLS layer; answers are cut into pieces, lost, connections broken,
//! sessions shortened so that re-authentication runs.
//!
//! One file: the broker wrapper and the op interpreter share the session's state.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};

use super::input::{pick, Input};
use crate::mock::{Broker, HandleResult, MockCluster, MockTls, Pair};
use crate::producer::security::SaslMechanism;
use crate::producer::{ConnId, Event, Producer, ProducerConfig, ProducerRecord};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{encode_response, ApiKey, ApiMessage, RequestHeader};
use crate::protocol::messages::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeResponse,
};

/// The broker's certificate (for `b0`, valid 2026 to 2126), its key and CA.
const BROKER_CERT: &str = include_str!("certs/b0.pem");
const BROKER_KEY: &str = include_str!("certs/b0.key");
const CA_CERT: &str = include_str!("certs/ca.pem");
/// The core's wall clock at the start: 2030, inside the certificate's validity.
const START_UNIX_MS: i64 = 1_900_000_000_000;

const USER: &str = "fuzz-user";
/// Never to appear in an event, an error's `Display` or its `Debug`.
const PASSWORD: &str = "fz-Secret-9q";
const MECHANISMS: [SaslMechanism; 3] = [
    SaslMechanism::Plain,
    SaslMechanism::ScramSha256,
    SaslMechanism::ScramSha512,
];
/// Codes a forged or injected SASL answer carries.
const CODES: [ErrorCode; 7] = [
    ErrorCode::None,
    ErrorCode::SaslAuthenticationFailed,
    ErrorCode::UnsupportedSaslMechanism,
    ErrorCode::IllegalSaslState,
    ErrorCode::UnsupportedVersion,
    ErrorCode::UnknownServerError,
    ErrorCode::NetworkException,
];
const DELIVERY_TIMEOUT_MS: u64 = 3_000;
const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// `max.block.ms`: how long a record may wait for metadata before its batch
/// (and its delivery timeout) starts.
const MAX_BLOCK_MS: u64 = 2_000;

/// How the next SaslHandshake or SaslAuthenticate answer is forged.
#[derive(Debug)]
enum Forge {
    /// The mock's answer with `bytes` written over it from `at` (size prefix kept).
    Overwrite { at: usize, bytes: Vec<u8> },
    /// The mock's header (size and correlation id) with this body.
    Body(Vec<u8>),
    /// SaslHandshake with this code and mechanism list.
    Handshake { code: i16, mechanisms: Vec<String> },
    /// SaslAuthenticate with these fields.
    Authenticate {
        code: i16,
        message: Option<String>,
        auth: Auth,
        lifetime_ms: i64,
    },
}

/// The auth bytes of a forged SaslAuthenticate answer.
#[derive(Debug)]
enum Auth {
    Raw(Vec<u8>),
    /// `r=<client nonce><suffix>,s=<salt>,i=<iterations><extra>`.
    ServerFirst {
        suffix: String,
        salt: Vec<u8>,
        iterations: u32,
        extra: String,
    },
    /// `v=<signature>`.
    ServerFinal(Vec<u8>),
    /// `e=<message>`.
    ServerError(String),
}

/// The mock broker, with forged SASL answers on demand, checking that a
/// SCRAM client never goes past authentication without the broker's proof.
struct FuzzBroker {
    cluster: MockCluster,
    forges: VecDeque<Forge>,
    scram: bool,
    /// The client's SCRAM nonce per connection, from its client-first message.
    nonces: BTreeMap<ConnId, String>,
}

impl FuzzBroker {
    fn forge(
        &mut self,
        f: Forge,
        conn: ConnId,
        header: &RequestHeader,
        r: HandleResult,
    ) -> HandleResult {
        let cid = header.correlation_id;
        let version = header.api_version;
        let encoded = |m: &dyn Fn(&mut BytesMut) -> crate::protocol::error::Result<()>| {
            let mut buf = BytesMut::new();
            m(&mut buf).ok().map(|()| buf.freeze())
        };
        let response = match f {
            Forge::Overwrite { at, bytes } => r.response.as_ref().map(|resp| {
                let mut v = resp.to_vec();
                // Past the size prefix, so that the frame stays one frame.
                for (i, b) in bytes.iter().enumerate() {
                    let j = 4 + (at + i) % (v.len().max(5) - 4);
                    if j < v.len() {
                        v[j] = *b;
                    }
                }
                Bytes::from(v)
            }),
            Forge::Body(body) => {
                let mut v = BytesMut::new();
                v.put_i32(4 + body.len() as i32);
                v.put_i32(cid);
                v.put_slice(&body);
                Some(v.freeze())
            }
            Forge::Handshake { code, mechanisms } => {
                let m = SaslHandshakeResponse {
                    error_code: code,
                    mechanisms,
                };
                encoded(&|b| encode_response(b, cid, version.clamp(0, 1), &m))
            }
            Forge::Authenticate {
                code,
                message,
                auth,
                lifetime_ms,
            } => {
                let nonce = self.nonces.get(&conn).cloned().unwrap_or_default();
                let b64 = base64::engine::general_purpose::STANDARD;
                let auth_bytes = match auth {
                    Auth::Raw(b) => b,
                    Auth::ServerFirst {
                        suffix,
                        salt,
                        iterations,
                        extra,
                    } => format!(
                        "r={nonce}{suffix},s={},i={iterations}{extra}",
                        b64.encode(salt)
                    )
                    .into_bytes(),
                    Auth::ServerFinal(sig) => format!("v={}", b64.encode(sig)).into_bytes(),
                    Auth::ServerError(e) => format!("e={e}").into_bytes(),
                };
                let m = SaslAuthenticateResponse {
                    error_code: code,
                    error_message: message,
                    auth_bytes: Bytes::from(auth_bytes),
                    session_lifetime_ms: lifetime_ms,
                    ..Default::default()
                };
                encoded(&|b| encode_response(b, cid, version.clamp(0, 2), &m))
            }
        };
        HandleResult {
            response,
            close: r.close,
            due: r.due,
        }
    }
}

impl Broker for FuzzBroker {
    fn node(&self, host: &str, port: u16) -> Option<i32> {
        Broker::node(&self.cluster, host, port)
    }

    fn handle_request(
        &mut self,
        conn: ConnId,
        node: i32,
        frame: Bytes,
        now: Instant,
    ) -> Option<HandleResult> {
        let mut body = frame.clone();
        let header = RequestHeader::decode(&mut body).ok();
        let api = header.as_ref().and_then(|h| ApiKey::from_code(h.api_key));
        let sasl = matches!(api, Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate));
        if self.scram && !sasl && api != Some(ApiKey::ApiVersions) {
            // Only the broker's genuine server-final message (which proves it
            // knows the password) may let a SCRAM client through; a forged
            // one never verifies, so the mock's view is the client's.
            assert!(
                self.cluster.sasl_principal(conn.0).is_some(),
                "{api:?} on {conn:?}, which the broker never authenticated"
            );
        }
        if let (Some(ApiKey::SaslAuthenticate), Some(h)) = (api, &header) {
            if let Ok(req) = SaslAuthenticateRequest::decode(&mut body, h.api_version) {
                let token = String::from_utf8_lossy(&req.auth_bytes);
                if let Some(bare) = token.strip_prefix("n,,") {
                    if let Some(n) = bare.split(',').find_map(|p| p.strip_prefix("r=")) {
                        self.nonces.insert(conn, n.to_string());
                    }
                }
            }
        }
        let r = self
            .cluster
            .handle_connection_request(conn.0, node, frame, now);
        match (sasl, header) {
            (true, Some(h)) => match self.forges.pop_front() {
                Some(f) => Some(self.forge(f, conn, &h, r)),
                None => Some(r),
            },
            _ => Some(r),
        }
    }

    fn closed(&mut self, conn: ConnId) {
        self.nonces.remove(&conn);
        self.cluster.connection_closed(conn.0);
    }

    fn max_request_size(&self) -> usize {
        Broker::max_request_size(&self.cluster)
    }

    fn tls(&self, node: i32) -> Option<MockTls> {
        Broker::tls(&self.cluster, node)
    }
}

struct Session {
    pair: Pair<FuzzBroker>,
    /// Accepted record ids and whether each has its outcome.
    ids: BTreeMap<u64, bool>,
    closed_events: usize,
    start: Instant,
}

/// Runs one fuzzer-driven secured session; panics when an invariant breaks.
///
/// Input: 2 config bytes (mechanism, TLS, session lifetime, seed), then ops
/// until the input ends:
/// - op byte % 12: 0 advance time by `b*b/8` ms; 1 advance to the next
///   deadline; 2 send a record; 3 connect pending connection `k`;
///   4 disconnect open connection `k`; 5 deliver `n` (0: all) waiting answer
///   bytes on connection `k`; 6 raw bytes on connection `k`, bare or as a TLS
///   record of a chosen content type; 7 forge the next SASL answer (see
///   [`Forge`]); 8 a mock fault (an error for the next SaslHandshake or
///   SaslAuthenticate, a new session lifetime, the user removed or back);
///   9 lose the answers waiting on connection `k`; 10 flush; 11 a cooperative
///   round (connect everything, deliver everything).
///
/// Invariants: the pair's driver contract (sends only on open connections,
/// nothing after a close); a SCRAM client sends nothing but SASL requests
/// before the broker authenticated the connection; at most one outcome per
/// record; no event shows the password; at the end the producer closes (or
/// aborts) with every record answered and its memory returned.
pub fn fuzz_secure_handshake(data: &[u8]) {
    let mut input = Input(data);
    let mut s = Session::new(&mut input);
    s.drain();
    let mut ops = 0;
    while !input.is_empty() && ops < 1_000 {
        ops += 1;
        s.op(&mut input);
        s.drain();
    }
    s.finish();
}

impl Session {
    fn new(input: &mut Input) -> Session {
        let (c0, c1) = (input.byte(), input.byte());
        let mechanism = MECHANISMS[c0 as usize % 3];
        let tls = c0 & 0x04 != 0;
        let lifetime = (c0 & 0x08 != 0).then(|| Duration::from_millis(1_000 + 50 * c1 as u64));

        let mut cluster = MockCluster::new(1);
        cluster.set_broker_address(0, "b0", 9000);
        cluster
            .create_topic("a", 1)
            .expect("a fresh cluster takes a topic");
        cluster
            .enable_sasl(&MECHANISMS)
            .expect("the mock serves PLAIN and SCRAM");
        for m in MECHANISMS {
            cluster
                .add_sasl_user(m, USER, PASSWORD)
                .expect("mechanism enabled");
        }
        cluster.set_session_lifetime(lifetime);
        if tls {
            let t = MockTls::from_pem(BROKER_CERT.as_bytes(), BROKER_KEY.as_bytes(), None)
                .expect("the fuzz certificate loads");
            cluster.set_tls(Some(t));
        }
        let seed = u64::from_be_bytes([c0, c1, 0, 0, 0, 0, 0, 1]).to_string();
        let delivery = DELIVERY_TIMEOUT_MS.to_string();
        let request = REQUEST_TIMEOUT_MS.to_string();
        let max_block = MAX_BLOCK_MS.to_string();
        let mut props = vec![
            ("bootstrap.servers", "b0:9000"),
            (
                "security.protocol",
                if tls { "SASL_SSL" } else { "SASL_PLAINTEXT" },
            ),
            ("sasl.mechanism", mechanism.name()),
            ("sasl.username", USER),
            ("sasl.password", PASSWORD),
            ("delivery.timeout.ms", delivery.as_str()),
            ("request.timeout.ms", request.as_str()),
            ("max.block.ms", max_block.as_str()),
            ("linger.ms", "0"),
            ("retry.backoff.ms", "20"),
            ("retry.backoff.max.ms", "200"),
            ("kafka_sansio.rng.seed", seed.as_str()),
        ];
        if tls {
            props.extend([
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.certificates", CA_CERT),
            ]);
        }
        let config = ProducerConfig::from_properties(props).expect("the fuzz config is valid");
        let now = Instant::now();
        let producer = Producer::new(config, now, START_UNIX_MS).expect("valid config");
        let broker = FuzzBroker {
            cluster,
            forges: VecDeque::new(),
            scram: mechanism != SaslMechanism::Plain,
            nonces: BTreeMap::new(),
        };
        let mut pair = Pair::new(producer, broker, now);
        pair.hold_network(true);
        Session {
            pair,
            ids: BTreeMap::new(),
            closed_events: 0,
            start: now,
        }
    }

    fn open(&self) -> Vec<ConnId> {
        self.pair.connections().map(|(c, _)| c).collect()
    }

    fn op(&mut self, input: &mut Input) {
        match input.byte() % 12 {
            0 => {
                let b = input.byte() as u64;
                self.pair.advance(Duration::from_millis(b * b / 8));
            }
            1 => {
                if let Some(t) = self.pair.producer.poll_timeout() {
                    self.pair.now = self.pair.now.max(t);
                }
                self.pair.core(|p, now| p.handle_timeout(now));
            }
            2 => {
                let size = input.byte() as usize;
                let r = ProducerRecord::new("a", vec![b'v'; size]);
                if let Ok(id) = self.pair.core(|p, now| p.send(r, now)) {
                    assert!(
                        self.ids.insert(id.0, false).is_none(),
                        "record id {} reused",
                        id.0
                    );
                }
            }
            3 => {
                let k = input.byte();
                if let Some(conn) = pick(k, self.pair.connecting()) {
                    self.pair.answer_connect(conn);
                }
            }
            4 => {
                let k = input.byte();
                if let Some(conn) = pick(k, self.open()) {
                    self.pair.disconnect(conn);
                }
            }
            5 => {
                let (k, n) = (input.byte(), input.byte());
                if let Some(conn) = pick(k, self.pair.deliverable()) {
                    let n = if n == 0 { usize::MAX } else { n as usize };
                    self.pair.deliver_answers(conn, n);
                }
            }
            6 => {
                let (k, kind) = (input.byte(), input.byte());
                let body = input.chunk();
                let bytes = match kind % 6 {
                    // Handshake, alert, application data, change cipher spec, the fuzzer's type.
                    0..=3 => tls_record([22, 21, 23, 20][kind as usize % 6], 0x03, &body),
                    4 => tls_record(input.byte(), input.byte(), &body),
                    _ => body,
                };
                if let Some(conn) = pick(k, self.open()) {
                    self.pair.deliver(conn, &bytes);
                }
            }
            7 => {
                let f = forge(input);
                self.pair.broker.forges.push_back(f);
            }
            8 => {
                let (f, a) = (input.byte(), input.byte());
                let c = &mut self.pair.broker.cluster;
                match f % 4 {
                    0 => c.push_errors(ApiKey::SaslHandshake, vec![CODES[a as usize % 7]]),
                    1 => c.push_errors(ApiKey::SaslAuthenticate, vec![CODES[a as usize % 7]]),
                    2 => c.set_session_lifetime(
                        (a != 0).then(|| Duration::from_millis(500 + 20 * a as u64)),
                    ),
                    _ => {
                        let m = MECHANISMS[a as usize % 3];
                        if !c.remove_sasl_user(m, USER) {
                            c.add_sasl_user(m, USER, PASSWORD)
                                .expect("mechanism enabled");
                        }
                    }
                }
            }
            9 => {
                let k = input.byte();
                if let Some(conn) = pick(k, self.open()) {
                    self.pair.lose_answers(conn);
                }
            }
            10 => {
                let _ = self.pair.core(|p, now| p.flush(now));
            }
            _ => self.cooperate(),
        }
    }

    fn cooperate(&mut self) {
        for _ in 0..8 {
            let connecting = self.pair.connecting();
            let deliverable = self.pair.deliverable();
            if connecting.is_empty() && deliverable.is_empty() {
                return;
            }
            for conn in connecting {
                self.pair.answer_connect(conn);
            }
            for conn in deliverable {
                self.pair.deliver_answers(conn, usize::MAX);
            }
            self.drain();
        }
    }

    fn drain(&mut self) {
        self.pair.run_until_idle();
        for e in std::mem::take(&mut self.pair.events) {
            self.event(e);
        }
        let _ = self.pair.producer.poll_timeout();
        // No reconnect storm: each of the two connections (bootstrap and
        // node) waits reconnect.backoff.ms (50, jitter down to 40) at least.
        let elapsed = (self.pair.now - self.start).as_millis() as usize;
        let dials = self.pair.dialed().len();
        assert!(
            dials <= 4 + 2 * elapsed / 40,
            "{dials} connects in {elapsed} ms"
        );
    }

    fn event(&mut self, e: Event) {
        assert_eq!(self.closed_events, 0, "event after Closed: {e:?}");
        let shown = format!("{e:?}");
        assert!(
            !shown.contains(PASSWORD),
            "the password in an event: {shown}"
        );
        let mut outcome = |id: u64| match self.ids.get_mut(&id) {
            Some(done) => {
                assert!(!*done, "second outcome for record {id}");
                *done = true;
            }
            None => panic!("outcome for unknown record {id}"),
        };
        match e {
            Event::Delivered(d) => {
                for (id, _) in d.metadata() {
                    outcome(id.0);
                }
            }
            Event::Failed(f) => {
                let shown = f.error.to_string();
                assert!(
                    !shown.contains(PASSWORD),
                    "the password in an error: {shown}"
                );
                for id in f.records.iter() {
                    outcome(id.0);
                }
            }
            Event::Closed => self.closed_events += 1,
            _ => {}
        }
    }

    /// Closes, runs a cooperative driver until every record has its outcome
    /// (max.block.ms + delivery.timeout.ms + request.timeout.ms after the
    /// close at most),
    /// then aborts if still open.
    fn finish(mut self) {
        self.pair.broker.forges.clear();
        self.pair.core(|p, now| p.close(now));
        self.drain();
        let closed_at = self.pair.now;
        let deadline =
            // A record waits for metadata up to max.block.ms, then its batch up
            // to delivery.timeout.ms, then its request up to request.timeout.ms.
            closed_at + Duration::from_millis(MAX_BLOCK_MS + DELIVERY_TIMEOUT_MS + REQUEST_TIMEOUT_MS + 1);
        let mut steps = 0;
        while !self.pair.producer.is_closed() && self.pair.now < deadline && steps < 10_000 {
            steps += 1;
            self.cooperate();
            let Some(t) = self.pair.producer.poll_timeout() else {
                break;
            };
            self.pair.now = self.pair.now.max(t).min(deadline);
            self.pair.core(|p, now| p.handle_timeout(now));
            self.drain();
        }
        if steps < 10_000 {
            assert_eq!(
                self.pair.producer.pending_records(),
                0,
                "records without an outcome {} ms after close",
                (self.pair.now - closed_at).as_millis()
            );
        }
        if !self.pair.producer.is_closed() {
            self.pair.core(|p, now| p.abort(now));
            self.drain();
        }
        assert_eq!(self.closed_events, 1, "no Closed after abort");
        assert!(self.ids.values().all(|d| *d), "a record without an outcome");
        assert_eq!(
            self.pair.producer.buffered_bytes(),
            0,
            "memory not returned"
        );
    }
}

/// A TLS record: content type, version `3.minor`, length, body.
fn tls_record(content_type: u8, minor: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![content_type, 3, minor];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn forge(input: &mut Input) -> Forge {
    let kind = input.byte();
    let code = || CODES[kind as usize / 8 % 7].code();
    match kind % 8 {
        0 => Forge::Overwrite {
            at: input.byte() as usize,
            bytes: input.chunk(),
        },
        1 => Forge::Body(input.chunk()),
        2 => {
            let n = input.byte() % 4;
            let mechanisms = (0..n)
                .map(|i| match input.byte() % 5 {
                    0 => "PLAIN".to_string(),
                    1 => "SCRAM-SHA-256".to_string(),
                    2 => "SCRAM-SHA-512".to_string(),
                    3 => "GSSAPI".to_string(),
                    _ => format!("{}{i}", input.text()),
                })
                .collect();
            Forge::Handshake {
                code: code(),
                mechanisms,
            }
        }
        k => {
            let lifetime_ms = match input.byte() % 4 {
                0 => 0,
                1 => 1_000 + 40 * input.byte() as i64,
                2 => -1,
                _ => i64::from(input.byte()) * 3,
            };
            let message = input.byte().is_multiple_of(2).then(|| input.text());
            let auth = match k {
                3 => Auth::Raw(input.chunk()),
                4 | 5 => Auth::ServerFirst {
                    suffix: input.text(),
                    salt: input.chunk(),
                    iterations: [4096, 4095, 10_000, 0, 1_000_001][input.byte() as usize % 5],
                    extra: input.text(),
                },
                6 => Auth::ServerFinal(input.chunk()),
                _ => Auth::ServerError(input.text()),
            };
            Forge::Authenticate {
                code: if k == 5 { 0 } else { code() },
                message,
                auth,
                lifetime_ms,
            }
        }
    }
}
