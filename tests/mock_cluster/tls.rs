//! The mock's TLS listener over loopback TCP, with this crate's TLS client
//! layer and certificates made by rcgen: requests over TLS (with SASL
//! inside), client certificates required, a plaintext client on the TLS
//! port and a TLS client on a plaintext port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_sansio::mock::{MockServer, MockTls, MockTlsError};
use kafka_sansio::producer::security::tls::{client_config, TlsClock, TlsError, TlsSession};
use kafka_sansio::producer::security::TlsSettings;
use kafka_sansio::protocol::frame::{decode_response, encode_request, Request};
use kafka_sansio::protocol::messages::api_versions::ApiVersionsRequest;
use kafka_sansio::protocol::messages::metadata::MetadataRequest;

use crate::certs::Ca;

fn request<R: Request>(version: i16, req: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 7, Some("tls-test"), version, req).unwrap();
    buf.to_vec()
}

/// A TLS client over a blocking socket.
struct Client {
    stream: TcpStream,
    tls: TlsSession,
    plain: Vec<u8>,
}

impl Client {
    fn connect(server: &MockServer, settings: &TlsSettings) -> Client {
        let clock = TlsClock::default();
        // 2027-01-15, inside rcgen's default validity.
        clock.set_unix_ms(1_800_000_000_000);
        let config = Arc::new(client_config(settings, &clock).unwrap());
        let stream = TcpStream::connect(server.addresses()[0]).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Client {
            stream,
            tls: TlsSession::new(config, "127.0.0.1").unwrap(),
            plain: Vec::new(),
        }
    }

    /// Sends one request and reads its answer's frame; `Err` on a TLS
    /// error or when the broker closes first (`TlsError::Closed`).
    fn call<R: Request>(&mut self, version: i16, req: &R) -> Result<R::Response, TlsError> {
        self.tls.write_plaintext(&request(version, req))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 16 * 1024];
        loop {
            let out = self.tls.ciphertext_to_send();
            if !out.is_empty() && self.stream.write_all(&out).is_err() {
                return Err(TlsError::Closed);
            }
            if self.plain.len() >= 4 {
                let n = u32::from_be_bytes(self.plain[..4].try_into().unwrap()) as usize;
                if self.plain.len() >= 4 + n {
                    let frame: Vec<u8> = self.plain.drain(..4 + n).collect();
                    let (_, m) =
                        decode_response::<R::Response>(Bytes::from(frame).slice(4..), version)
                            .unwrap();
                    return Ok(m);
                }
            }
            assert!(Instant::now() < deadline, "no answer within 5 s");
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(TlsError::Closed),
                Ok(n) => {
                    self.tls.ciphertext_in(&buf[..n])?;
                    self.plain.extend(self.tls.plaintext_out());
                    if self.tls.is_closed() && self.plain.is_empty() {
                        return Err(TlsError::Closed);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(TlsError::Closed),
            }
        }
    }
}

fn trusting(ca: &Ca) -> TlsSettings {
    TlsSettings {
        truststore_type: Some("PEM".into()),
        truststore_certificates: Some(ca.pem()),
        ..Default::default()
    }
}

fn tls_server(ca: &Ca, client_ca: Option<&Ca>) -> MockServer {
    let (cert, key) = ca.leaf("127.0.0.1", None);
    let client_ca = client_ca.map(Ca::pem);
    let tls = MockTls::from_pem(
        cert.as_bytes(),
        key.as_bytes(),
        client_ca.as_deref().map(str::as_bytes),
    )
    .unwrap();
    let server = MockServer::start(1).unwrap();
    server.with_cluster(|c| c.set_tls(Some(tls)));
    server
}

/// Reads until the broker closes (bounded); everything it sent.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn requests_are_served_over_tls() {
    let ca = Ca::new("mock CA");
    let server = tls_server(&ca, None);
    let mut c = Client::connect(&server, &trusting(&ca));
    let v = c.call(3, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(v.error_code, 0);
    let m = c.call(12, &MetadataRequest::default()).unwrap();
    assert_eq!(m.brokers.len(), 1);
    // A second connection gets its own session.
    let mut c2 = Client::connect(&server, &trusting(&ca));
    assert_eq!(
        c2.call(3, &ApiVersionsRequest::default())
            .unwrap()
            .error_code,
        0
    );
}

#[cfg(feature = "sasl")]
#[test]
fn sasl_runs_inside_tls() {
    use kafka_sansio::producer::security::SaslMechanism;
    use kafka_sansio::protocol::messages::sasl::{SaslAuthenticateRequest, SaslHandshakeRequest};
    let ca = Ca::new("mock CA");
    let server = tls_server(&ca, None);
    server.with_cluster(|c| {
        c.enable_sasl(&[SaslMechanism::Plain]).unwrap();
        c.add_sasl_user(SaslMechanism::Plain, "alice", "pw")
            .unwrap();
    });
    let mut c = Client::connect(&server, &trusting(&ca));
    let h = c
        .call(
            1,
            &SaslHandshakeRequest {
                mechanism: "PLAIN".into(),
            },
        )
        .unwrap();
    assert_eq!(h.error_code, 0);
    let a = c
        .call(
            2,
            &SaslAuthenticateRequest {
                auth_bytes: Bytes::from_static(b"\0alice\0pw"),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(a.error_code, 0);
    assert_eq!(
        c.call(12, &MetadataRequest::default())
            .unwrap()
            .brokers
            .len(),
        1
    );
    assert_eq!(server.cluster().sasl_stats().authentications, 1);
}

#[test]
fn client_certificates_are_required_when_a_client_ca_is_set() {
    let ca = Ca::new("mock CA");
    let client_ca = Ca::new("client CA");
    let server = tls_server(&ca, Some(&client_ca));
    // Without a certificate: the broker's alert, then nothing is served.
    let mut c = Client::connect(&server, &trusting(&ca));
    match c.call(3, &ApiVersionsRequest::default()) {
        Err(TlsError::Alert(a)) => assert!(a.contains("CertificateRequired"), "{a}"),
        other => panic!("expected the broker's alert, got {other:?}"),
    }
    // With one signed by another CA: refused too.
    let (cert, key) = ca.leaf("client", None);
    let mut s = trusting(&ca);
    s.keystore_certificate_chain = Some(cert);
    s.keystore_key = Some(kafka_sansio::producer::security::Password::new(key));
    let mut c = Client::connect(&server, &s);
    assert!(matches!(
        c.call(3, &ApiVersionsRequest::default()),
        Err(TlsError::Alert(_))
    ));
    // With one the client CA signed: served.
    let (cert, key) = client_ca.leaf("client", None);
    s.keystore_certificate_chain = Some(cert);
    s.keystore_key = Some(kafka_sansio::producer::security::Password::new(key));
    let mut c = Client::connect(&server, &s);
    assert_eq!(
        c.call(3, &ApiVersionsRequest::default())
            .unwrap()
            .error_code,
        0
    );
}

#[test]
fn plaintext_on_the_tls_port_and_tls_on_a_plaintext_port_are_closed() {
    let ca = Ca::new("mock CA");
    let server = tls_server(&ca, None);
    let mut s = TcpStream::connect(server.addresses()[0]).unwrap();
    s.write_all(&request(3, &ApiVersionsRequest::default()))
        .unwrap();
    let got = read_to_close(&mut s);
    // A TLS alert record (content type 21), then the close: no Kafka answer.
    assert_eq!(got.first(), Some(&21), "{got:02x?}");
    assert!(got.len() < 16, "{got:02x?}");

    let plain = MockServer::start(1).unwrap();
    let mut c = Client::connect(&plain, &trusting(&ca));
    // The ClientHello's first bytes read as a frame size over the mock's
    // 100 MiB limit: closed, as a Kafka broker does.
    assert_eq!(
        c.call(3, &ApiVersionsRequest::default()).unwrap_err(),
        TlsError::Closed
    );
}

#[test]
fn bad_pem_is_a_typed_error() {
    assert!(matches!(
        MockTls::from_pem(b"", b"", None),
        Err(MockTlsError::Pem {
            what: "certificate chain",
            ..
        })
    ));
    let ca = Ca::new("mock CA");
    let (cert, _) = ca.leaf("localhost", None);
    let (_, other_key) = ca.leaf("localhost", None);
    assert!(matches!(
        MockTls::from_pem(cert.as_bytes(), b"nope", None),
        Err(MockTlsError::Pem {
            what: "private key",
            ..
        })
    ));
    assert!(matches!(
        MockTls::from_pem(cert.as_bytes(), other_key.as_bytes(), None),
        Err(MockTlsError::Rustls(_))
    ));
}
