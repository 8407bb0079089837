//! The mock's SASL listener against this crate's client mechanisms, request
//! by request on one connection id: PLAIN, SCRAM and OAUTHBEARER exchanges, Kafka's
//! refusals (requests before authentication, bad credentials, unknown
//! mechanism), session lifetimes, re-authentication and expiry.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::mock::{MockCluster, MockOAuthValidator, MockSaslError, SaslStats};
use kafka_sansio::producer::security::jaas::Credentials;
use kafka_sansio::producer::security::sasl::{
    OAuthBearerClient, PlainClient, SaslClient, ScramClient, ScramHash, Step, UnsecuredJwsProvider,
};
use kafka_sansio::producer::security::{Password, SaslMechanism};
use kafka_sansio::protocol::frame::{decode_response, Request};
use kafka_sansio::protocol::messages::api_versions::ApiVersionsRequest;
use kafka_sansio::protocol::messages::metadata::MetadataRequest;
use kafka_sansio::protocol::messages::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_sansio::protocol::{ApiKey, ErrorCode};

use super::frame;

/// One connection to broker 0 of a cluster, at a clock the test moves.
struct Conn<'a> {
    cluster: &'a mut MockCluster,
    id: u64,
    now: Instant,
}

impl Conn<'_> {
    /// The answer to `req`, and whether the broker closes the connection
    /// after it; `None` when it closes without answering.
    fn call<R: Request>(&mut self, version: i16, req: &R) -> (Option<R::Response>, bool) {
        let r = self
            .cluster
            .handle_connection_request(self.id, 0, frame(version, req), self.now);
        let body = r.response.map(|resp| {
            let (h, m) = decode_response::<R::Response>(resp.slice(4..), version).unwrap();
            assert_eq!(h.correlation_id, 7);
            m
        });
        (body, r.close)
    }

    /// Metadata served (true) or the connection closed without an answer (false).
    fn metadata_served(&mut self) -> bool {
        match self.call(12, &MetadataRequest::default()) {
            (Some(_), false) => true,
            (None, true) => false,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn handshake(&mut self, mechanism: &str) -> (i16, Vec<String>, bool) {
        let (r, close) = self.call(
            1,
            &SaslHandshakeRequest {
                mechanism: mechanism.into(),
            },
        );
        let r = r.expect("a SaslHandshake answer");
        (r.error_code, r.mechanisms, close)
    }

    fn token(&mut self, version: i16, bytes: Vec<u8>) -> (SaslAuthenticateResponse, bool) {
        let (r, close) = self.call(
            version,
            &SaslAuthenticateRequest {
                auth_bytes: Bytes::from(bytes),
                ..Default::default()
            },
        );
        (r.expect("a SaslAuthenticate answer"), close)
    }

    /// A whole exchange with `client` after a successful handshake: the last
    /// answer and whether the connection closes after it.
    fn exchange(&mut self, client: &mut SaslClient) -> (SaslAuthenticateResponse, bool) {
        let mut out = client.initial();
        loop {
            let (r, close) = self.token(2, out);
            if r.error_code != 0 || close {
                return (r, close);
            }
            match client
                .step(&r.auth_bytes)
                .expect("the mock's token is valid")
            {
                Step::Send(next) => out = next,
                Step::Done => return (r, close),
            }
        }
    }

    /// ApiVersions, SaslHandshake and the exchange; panics unless each succeeds.
    fn login(&mut self, client: &mut SaslClient) -> SaslAuthenticateResponse {
        let (v, close) = self.call(3, &ApiVersionsRequest::default());
        assert!(!close);
        let keys: Vec<i16> = v.unwrap().api_keys.iter().map(|k| k.api_key).collect();
        assert!(keys.contains(&ApiKey::SaslHandshake.code()));
        assert!(keys.contains(&ApiKey::SaslAuthenticate.code()));
        let (e, _, close) = self.handshake(client.mechanism().name());
        assert_eq!((e, close), (0, false));
        let (r, close) = self.exchange(client);
        assert_eq!((r.error_code, close), (0, false), "{:?}", r.error_message);
        r
    }
}

fn creds(user: &str, pw: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: Password::new(pw),
    }
}

fn client(m: SaslMechanism, user: &str, pw: &str) -> SaslClient {
    match m {
        SaslMechanism::Plain => SaslClient::Plain(PlainClient::new(creds(user, pw))),
        SaslMechanism::ScramSha256 => SaslClient::Scram(
            ScramClient::new(ScramHash::Sha256, creds(user, pw), &[3; 24]).unwrap(),
        ),
        SaslMechanism::ScramSha512 => SaslClient::Scram(
            ScramClient::new(ScramHash::Sha512, creds(user, pw), &[5; 24]).unwrap(),
        ),
        SaslMechanism::OAuthBearer => unreachable!(),
    }
}

const ALL: [SaslMechanism; 3] = [
    SaslMechanism::Plain,
    SaslMechanism::ScramSha256,
    SaslMechanism::ScramSha512,
];

fn sasl_cluster() -> MockCluster {
    let mut c = MockCluster::new(1);
    c.enable_sasl(&ALL).unwrap();
    for m in ALL {
        c.add_sasl_user(m, "alice", "alice-secret").unwrap();
        c.add_sasl_user(m, "b,o=b", "bob-secret").unwrap();
    }
    c
}

#[test]
fn every_mechanism_authenticates_then_requests_are_served() {
    let mut cluster = sasl_cluster();
    cluster.set_session_lifetime(Some(Duration::from_secs(60)));
    for (i, m) in ALL.into_iter().enumerate() {
        for user in ["alice", "b,o=b"] {
            let pw = if user == "alice" {
                "alice-secret"
            } else {
                "bob-secret"
            };
            let id = (i * 2 + usize::from(user != "alice")) as u64;
            let mut conn = Conn {
                cluster: &mut cluster,
                id,
                now: Instant::now(),
            };
            let r = conn.login(&mut client(m, user, pw));
            assert_eq!(r.session_lifetime_ms, 60_000);
            assert!(conn.metadata_served());
            assert_eq!(cluster.sasl_principal(id), Some(user));
        }
    }
    let s = cluster.sasl_stats();
    assert_eq!((s.handshakes, s.authentications, s.failures), (6, 6, 0));
}

#[test]
fn scram_credentials_are_salted_with_the_iterations_given() {
    let mut cluster = MockCluster::new(1);
    cluster.enable_sasl(&[SaslMechanism::ScramSha512]).unwrap();
    assert_eq!(
        cluster.add_scram_user(SaslMechanism::ScramSha512, "u", "p", 4095),
        Err(MockSaslError::TooFewIterations(4095))
    );
    assert_eq!(
        cluster.add_sasl_user(SaslMechanism::Plain, "u", "p"),
        Err(MockSaslError::NotEnabled("PLAIN"))
    );
    cluster
        .add_scram_user(SaslMechanism::ScramSha512, "u", "p", 8192)
        .unwrap();
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now: Instant::now(),
    };
    assert_eq!(conn.handshake("SCRAM-SHA-512").0, 0);
    let mut c = client(SaslMechanism::ScramSha512, "u", "p");
    let (first, _) = conn.token(2, c.initial());
    let text = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    let parts: Vec<&str> = text.split(',').collect();
    assert!(parts[0].starts_with(&format!("r={}", "BQUF")), "{text}");
    assert!(
        parts[1].starts_with("s=") && parts[1].len() == 2 + 44,
        "{text}"
    );
    assert_eq!(parts[2], "i=8192");
    assert_eq!(first.session_lifetime_ms, 0);
    let Step::Send(fin) = c.step(&first.auth_bytes).unwrap() else {
        panic!()
    };
    let (last, close) = conn.token(2, fin);
    assert_eq!((last.error_code, close), (0, false));
    assert_eq!(c.step(&last.auth_bytes), Ok(Step::Done));
    // No lifetime set: none reported.
    assert_eq!(last.session_lifetime_ms, 0);
}

/// An OAUTHBEARER client with an unsecured token for `principal`, issued at
/// `now_ms` for `lifetime_s`.
fn bearer(principal: &str, lifetime_s: i64, now_ms: i64) -> SaslClient {
    let mut p = UnsecuredJwsProvider {
        principal: principal.into(),
        lifetime_s,
        scope: vec![],
    };
    SaslClient::OAuthBearer(
        OAuthBearerClient::from_provider(&mut p, now_ms, vec![("traceId".into(), "t-1".into())])
            .unwrap(),
    )
}

#[test]
fn oauthbearer_sessions_end_with_their_tokens_and_refusals_follow_rfc_7628() {
    const WALL: i64 = 1_800_000_000_000;
    let t0 = Instant::now();
    let mut cluster = MockCluster::new(1);
    cluster.enable_sasl(&[SaslMechanism::OAuthBearer]).unwrap();
    assert_eq!(
        cluster.add_sasl_user(SaslMechanism::OAuthBearer, "u", "p"),
        Err(MockSaslError::NoUsers("OAUTHBEARER"))
    );
    cluster.set_wall_clock(t0, WALL);
    cluster.set_session_lifetime(Some(Duration::from_secs(60)));
    // The token's 10 s end before connections.max.reauth.ms's 60 s, then the other way round.
    for (id, max, want) in [(1, 60, 10_000), (2, 4, 4_000)] {
        cluster.set_session_lifetime(Some(Duration::from_secs(max)));
        let mut conn = Conn {
            cluster: &mut cluster,
            id,
            now: t0,
        };
        let r = conn.login(&mut bearer("svc", 10, WALL));
        assert_eq!(r.session_lifetime_ms, want);
        assert!(conn.metadata_served());
        assert_eq!(cluster.sasl_principal(id), Some("svc"));
    }
    // Without connections.max.reauth.ms the token alone bounds the session;
    // after it a request closes the connection.
    cluster.set_session_lifetime(None);
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 3,
        now: t0 + Duration::from_millis(500),
    };
    let r = conn.login(&mut bearer("svc", 10, WALL));
    assert_eq!(r.session_lifetime_ms, 9_500);
    conn.now = t0 + Duration::from_secs(10);
    assert!(!conn.metadata_served());

    // Refused tokens: the JSON status, the client's \x01, then
    // SASL_AUTHENTICATION_FAILED with that status, and a close.
    // A required scope the token lacks; a token expired by the broker's clock.
    let cases: [(&str, Duration, Vec<String>); 2] = [
        (
            r#"{"status":"insufficient_scope", "scope":"[kafka]"}"#,
            Duration::ZERO,
            vec!["kafka".into()],
        ),
        (
            r#"{"status":"invalid_token"}"#,
            Duration::from_secs(10),
            vec![],
        ),
    ];
    for (i, (status, late, required)) in cases.into_iter().enumerate() {
        cluster
            .set_oauthbearer_validator(MockOAuthValidator {
                required_scope: required,
                ..Default::default()
            })
            .unwrap();
        let mut conn = Conn {
            cluster: &mut cluster,
            id: 10 + i as u64,
            now: t0 + late,
        };
        assert_eq!(conn.handshake("OAUTHBEARER").0, 0);
        let mut c = bearer("svc", 10, WALL);
        let (r, close) = conn.token(2, c.initial());
        assert_eq!((r.error_code, close), (0, false));
        assert_eq!(r.auth_bytes, status.as_bytes());
        assert_eq!(c.step(&r.auth_bytes), Ok(Step::Send(vec![1])));
        let (r, close) = conn.token(2, vec![1]);
        assert_eq!(
            (r.error_code, r.error_message.as_deref(), close),
            (
                ErrorCode::SaslAuthenticationFailed.code(),
                Some(status),
                true
            )
        );
    }
    // Not an RFC 7628 first message: Kafka's generic refusal, at once.
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 20,
        now: t0,
    };
    assert_eq!(conn.handshake("OAUTHBEARER").0, 0);
    let (r, close) = conn.token(2, b"n,,auth=Bearer x".to_vec());
    assert_eq!(
        (r.error_code, r.error_message.as_deref(), close),
        (
            ErrorCode::SaslAuthenticationFailed.code(),
            Some("Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"),
            true
        )
    );
    let s = cluster.sasl_stats();
    assert_eq!(
        (
            s.authentications,
            s.token_rejections,
            s.failures,
            s.expired_closes
        ),
        (3, 2, 3, 1),
        "{s:?}"
    );
}

#[test]
fn requests_outside_the_sasl_order_close_the_connection() {
    let mut cluster = sasl_cluster();
    let now = Instant::now();
    // Metadata first.
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now,
    };
    assert!(!conn.metadata_served());
    // A second ApiVersions.
    conn.id = 2;
    assert!(!conn.call(3, &ApiVersionsRequest::default()).1);
    assert_eq!(conn.call(3, &ApiVersionsRequest::default()), (None, true));
    // SaslAuthenticate before SaslHandshake.
    conn.id = 3;
    assert_eq!(
        conn.call(2, &SaslAuthenticateRequest::default()),
        (None, true)
    );
    // Metadata in the middle of a SCRAM exchange.
    conn.id = 4;
    assert_eq!(conn.handshake("SCRAM-SHA-256").0, 0);
    let mut c = client(SaslMechanism::ScramSha256, "alice", "alice-secret");
    assert_eq!(conn.token(2, c.initial()).0.error_code, 0);
    assert!(!conn.metadata_served());
    // SaslHandshake v0 (raw tokens afterwards) is not served.
    conn.id = 5;
    assert_eq!(
        conn.call(
            0,
            &SaslHandshakeRequest {
                mechanism: "PLAIN".into()
            }
        ),
        (None, true)
    );
    // The connection-less entry point is a fresh connection every time.
    let r = cluster.handle_request(0, frame(12, &MetadataRequest::default()), now);
    assert!(r.close && r.response.is_none());
    assert_eq!(cluster.sasl_stats().unauthenticated_closes, 6);
}

#[test]
fn bad_credentials_fail_with_kafkas_messages_then_close() {
    let mut cluster = sasl_cluster();
    let cases = [
        (
            SaslMechanism::Plain,
            "alice",
            "wrong",
            "Authentication failed: Invalid username or password",
        ),
        (
            SaslMechanism::Plain,
            "nobody",
            "x",
            "Authentication failed: Invalid username or password",
        ),
        (
            SaslMechanism::ScramSha512,
            "alice",
            "wrong",
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        ),
        (
            SaslMechanism::ScramSha256,
            "nobody",
            "x",
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256",
        ),
    ];
    for (i, (m, user, pw, message)) in cases.into_iter().enumerate() {
        let mut conn = Conn {
            cluster: &mut cluster,
            id: i as u64,
            now: Instant::now(),
        };
        assert_eq!(conn.handshake(m.name()).0, 0);
        let (r, close) = conn.exchange(&mut client(m, user, pw));
        assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert_eq!(r.error_message.as_deref(), Some(message));
        assert!(close, "{m:?} {user}: the broker closes after the failure");
        // The id is free again: a fresh connection.
        assert_eq!(cluster.sasl_principal(i as u64), None);
    }
    // PLAIN's own refusals.
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 10,
        now: Instant::now(),
    };
    conn.handshake("PLAIN");
    let (r, close) = conn.token(2, b"\0alice\0".to_vec());
    assert_eq!(
        (r.error_message.as_deref(), close),
        (Some("Authentication failed: password not specified"), true)
    );
    conn.handshake("PLAIN");
    let (r, _) = conn.token(2, b"bob\0alice\0alice-secret".to_vec());
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed: Client requested an authorization id that is different from username")
    );
    assert_eq!(cluster.sasl_stats().failures, 6);
}

#[test]
fn a_mechanism_not_enabled_is_refused_with_the_enabled_list() {
    let mut cluster = MockCluster::new(1);
    cluster
        .enable_sasl(&[SaslMechanism::ScramSha512, SaslMechanism::Plain])
        .unwrap();
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now: Instant::now(),
    };
    let (e, list, close) = conn.handshake("SCRAM-SHA-256");
    assert_eq!(e, ErrorCode::UnsupportedSaslMechanism.code());
    assert_eq!(list, ["SCRAM-SHA-512", "PLAIN"]);
    assert!(close);
    // Names are compared exactly, as by Kafka.
    assert_eq!(
        conn.handshake("plain").0,
        ErrorCode::UnsupportedSaslMechanism.code()
    );
}

#[test]
fn sessions_expire_unless_renewed_by_reauthentication() {
    let mut cluster = sasl_cluster();
    cluster.set_session_lifetime(Some(Duration::from_millis(2_000)));
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now: t0,
    };
    let m = SaslMechanism::ScramSha512;
    assert_eq!(
        conn.login(&mut client(m, "alice", "alice-secret"))
            .session_lifetime_ms,
        2_000
    );
    conn.now = ms(1_999);
    assert!(conn.metadata_served());
    // Re-authentication: handshake and exchange again, no ApiVersions.
    conn.now = ms(1_500);
    assert_eq!(conn.handshake(m.name()).0, 0);
    // Nothing else while it runs.
    let (r, close) = conn.exchange(&mut client(m, "alice", "alice-secret"));
    assert_eq!(
        (r.error_code, close, r.session_lifetime_ms),
        (0, false, 2_000)
    );
    conn.now = ms(3_400);
    assert!(conn.metadata_served(), "the renewed session lasts to 3500");
    // A second re-authentication within a second of the first: refused, not closed.
    conn.now = ms(2_400);
    assert_eq!(
        conn.handshake(m.name()),
        (ErrorCode::IllegalSaslState.code(), vec![], false)
    );
    // SaslAuthenticate on an authenticated connection: refused, not closed.
    let (r, close) = conn.token(2, vec![]);
    assert_eq!(
        (r.error_code, close),
        (ErrorCode::IllegalSaslState.code(), false)
    );
    conn.now = ms(3_500);
    assert!(
        !conn.metadata_served(),
        "expired: closed on the next request"
    );
    // After expiry a SaslHandshake still renews (Kafka checks it first).
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 2,
        now: t0,
    };
    conn.login(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    conn.now = ms(5_000);
    assert_eq!(conn.handshake("PLAIN").0, 0);
    conn.exchange(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    assert!(conn.metadata_served());
    let s = cluster.sasl_stats();
    assert_eq!(
        s,
        SaslStats {
            handshakes: 4,
            authentications: 4,
            reauthentications: 2,
            failures: 0,
            expired_closes: 1,
            unauthenticated_closes: 0,
            token_rejections: 0,
        }
    );
}

#[test]
fn reauthentication_keeps_its_principal_and_mechanism() {
    let mut cluster = sasl_cluster();
    cluster.set_session_lifetime(Some(Duration::from_secs(10)));
    let t0 = Instant::now();
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now: t0,
    };
    conn.login(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    conn.now = t0 + Duration::from_secs(2);
    assert_eq!(conn.handshake("PLAIN").0, 0);
    let (r, close) = conn.exchange(&mut client(SaslMechanism::Plain, "b,o=b", "bob-secret"));
    assert_eq!(
        r.error_message.as_deref(),
        Some("Cannot change principals during re-authentication from User:alice: User:b,o=b")
    );
    assert!(close);
    conn.id = 2;
    conn.login(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    conn.now = t0 + Duration::from_secs(4);
    assert_eq!(conn.handshake("SCRAM-SHA-256").0, 0);
    let (r, close) = conn.exchange(&mut client(
        SaslMechanism::ScramSha256,
        "alice",
        "alice-secret",
    ));
    assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
    assert!(close);
    // Without a session lifetime there is no re-authentication (Kafka's default).
    cluster.set_session_lifetime(None);
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 3,
        now: t0,
    };
    conn.login(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    assert_eq!(
        conn.handshake("PLAIN"),
        (ErrorCode::IllegalSaslState.code(), vec![], false)
    );
    conn.now = t0 + Duration::from_secs(3600);
    assert!(conn.metadata_served());
}

#[test]
fn pushed_errors_answer_the_sasl_apis_and_close() {
    let mut cluster = sasl_cluster();
    cluster.push_errors(ApiKey::SaslHandshake, vec![ErrorCode::IllegalSaslState]);
    cluster.push_errors(
        ApiKey::SaslAuthenticate,
        vec![ErrorCode::SaslAuthenticationFailed],
    );
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now: Instant::now(),
    };
    let (e, _, close) = conn.handshake("PLAIN");
    assert_eq!((e, close), (ErrorCode::IllegalSaslState.code(), true));
    assert_eq!(conn.handshake("PLAIN").0, 0);
    let (r, close) = conn.token(
        2,
        client(SaslMechanism::Plain, "alice", "alice-secret").initial(),
    );
    assert_eq!(
        (r.error_code, close),
        (ErrorCode::SaslAuthenticationFailed.code(), true)
    );
    // The queues are used up: the next login works.
    conn.id = 2;
    conn.login(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    // A removed user cannot log in again.
    assert!(cluster.remove_sasl_user(SaslMechanism::Plain, "alice"));
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 3,
        now: Instant::now(),
    };
    conn.handshake("PLAIN");
    let (r, _) = conn.exchange(&mut client(SaslMechanism::Plain, "alice", "alice-secret"));
    assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
}

#[test]
fn without_sasl_the_apis_are_neither_advertised_nor_served() {
    let mut cluster = MockCluster::new(1);
    let mut conn = Conn {
        cluster: &mut cluster,
        id: 1,
        now: Instant::now(),
    };
    let keys: Vec<i16> = conn
        .call(3, &ApiVersionsRequest::default())
        .0
        .unwrap()
        .api_keys
        .iter()
        .map(|k| k.api_key)
        .collect();
    assert!(!keys.contains(&ApiKey::SaslHandshake.code()));
    assert!(conn.metadata_served());
    assert_eq!(
        conn.call(
            1,
            &SaslHandshakeRequest {
                mechanism: "PLAIN".into()
            }
        ),
        (None, true)
    );
}
