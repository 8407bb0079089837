//! The TLS layer against an in-memory rustls server with certificates made by
//! rcgen: handshake, data both ways, untrusted CA, expired certificate (the
//! core's clock past notAfter), host-name mismatch and its opt-out, client
//! certificates, non-TLS bytes, and the `ssl.*` settings' typed errors.
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::sync::Arc;

use kafka_sansio::producer::security::tls::{
    client_config, TlsClock, TlsConfigError, TlsError, TlsSession,
};
use kafka_sansio::producer::security::{Password, TlsSettings};
use rustls::ServerConnection;

mod certs;
use certs::{server_config, Ca};

/// 2027-01-15, inside rcgen's default validity (1975 to 4096).
const NOW_MS: u64 = 1_800_000_000_000;

fn trusting(ca: &Ca) -> TlsSettings {
    TlsSettings {
        truststore_type: Some("PEM".into()),
        truststore_certificates: Some(ca.pem()),
        ..Default::default()
    }
}

fn session(settings: &TlsSettings, host: &str, now_ms: u64) -> TlsSession {
    let clock = TlsClock::default();
    clock.set_unix_ms(now_ms);
    TlsSession::new(Arc::new(client_config(settings, &clock).unwrap()), host).unwrap()
}

/// Moves bytes both ways until neither side has any to send (bounded);
/// returns the client's first error.
fn pump(client: &mut TlsSession, server: &mut ServerConnection) -> Result<(), TlsError> {
    for _ in 0..20 {
        let c2s = client.ciphertext_to_send();
        let mut moved = !c2s.is_empty();
        let mut slice = &c2s[..];
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
            // A server error becomes an alert the client reads below.
            if server.process_new_packets().is_err() {
                break;
            }
        }
        let mut s2c = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut s2c).unwrap();
        }
        moved |= !s2c.is_empty();
        client.ciphertext_in(&s2c)?;
        if !moved {
            return Ok(());
        }
    }
    panic!("handshake did not settle in 20 rounds");
}

#[test]
fn handshake_and_data_both_ways() {
    let ca = Ca::new("cluster CA");
    let (cert, key) = ca.leaf("broker.test", None);
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&trusting(&ca), "broker.test", NOW_MS);
    assert!(client.is_handshaking());
    client.write_plaintext(b"ApiVersions request").unwrap();
    pump(&mut client, &mut server).unwrap();
    assert!(!client.is_handshaking());
    let mut got = vec![0; 19];
    server.reader().read_exact(&mut got).unwrap();
    assert_eq!(got, b"ApiVersions request");
    server.writer().write_all(b"response bytes").unwrap();
    pump(&mut client, &mut server).unwrap();
    assert_eq!(client.plaintext_out(), b"response bytes");
    assert!(client.plaintext_out().is_empty());
    // close_notify from the broker ends the session.
    server.send_close_notify();
    pump(&mut client, &mut server).unwrap();
    assert!(client.is_closed());
    assert_eq!(client.write_plaintext(b"x"), Err(TlsError::Closed));
}

#[test]
fn untrusted_ca_is_rejected() {
    let (ca, other) = (Ca::new("cluster CA"), Ca::new("other CA"));
    let (cert, key) = ca.leaf("broker.test", None);
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&trusting(&other), "broker.test", NOW_MS);
    assert_eq!(
        pump(&mut client, &mut server),
        Err(TlsError::UntrustedCertificate)
    );
    // The client's alert for the broker is still there to send.
    assert!(!client.ciphertext_to_send().is_empty());
}

#[test]
fn expired_certificate_by_the_core_clock() {
    let ca = Ca::new("cluster CA");
    let (cert, key) = ca.leaf("broker.test", Some(2030));
    // 2029: valid.
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&trusting(&ca), "broker.test", 1_890_000_000_000);
    pump(&mut client, &mut server).unwrap();
    assert!(!client.is_handshaking());
    // 2031: past notAfter.
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&trusting(&ca), "broker.test", 1_930_000_000_000);
    assert_eq!(
        pump(&mut client, &mut server),
        Err(TlsError::ExpiredCertificate)
    );
}

#[test]
fn host_name_mismatch_and_opt_out() {
    let ca = Ca::new("cluster CA");
    let (cert, key) = ca.leaf("broker.test", None);
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&trusting(&ca), "other.test", NOW_MS);
    assert_eq!(
        pump(&mut client, &mut server),
        Err(TlsError::NameMismatch("other.test".into()))
    );
    // ssl.endpoint.identification.algorithm= (empty): the chain is still checked.
    let mut s = trusting(&ca);
    s.endpoint_identification = false;
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&s, "other.test", NOW_MS);
    pump(&mut client, &mut server).unwrap();
    assert!(!client.is_handshaking());
    let mut s = trusting(&Ca::new("other CA"));
    s.endpoint_identification = false;
    let mut server = ServerConnection::new(server_config(&cert, &key, None)).unwrap();
    let mut client = session(&s, "other.test", NOW_MS);
    assert_eq!(
        pump(&mut client, &mut server),
        Err(TlsError::UntrustedCertificate)
    );
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("kafka-sansio-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn client_certificate_auth() {
    let ca = Ca::new("cluster CA");
    let (cert, key) = ca.leaf("broker.test", None);
    let (ccert, ckey) = ca.leaf("client", None);
    let cfg = server_config(&cert, &key, Some(&ca.pem()));

    // Without a client certificate the broker ends the handshake with an alert.
    let mut server = ServerConnection::new(cfg.clone()).unwrap();
    let mut client = session(&trusting(&ca), "broker.test", NOW_MS);
    client.write_plaintext(b"req").unwrap();
    assert!(matches!(
        pump(&mut client, &mut server),
        Err(TlsError::Alert(_))
    ));

    // Each of the three ways to give the client certificate.
    let both = format!("{ckey}{ccert}");
    let ways = [
        TlsSettings {
            keystore_type: Some("PEM".into()),
            keystore_key: Some(Password::new(ckey.clone())),
            keystore_certificate_chain: Some(ccert.clone()),
            ..trusting(&ca)
        },
        TlsSettings {
            keystore_type: Some("PEM".into()),
            keystore_location: Some(temp_file("keystore.pem", &both)),
            ..trusting(&ca)
        },
        TlsSettings {
            certificate_location: Some(temp_file("client.pem", &ccert)),
            key_location: Some(temp_file("client.key", &ckey)),
            ca_location: Some(temp_file("ca.pem", &ca.pem())),
            truststore_certificates: None,
            ..Default::default()
        },
    ];
    for s in &ways {
        let mut server = ServerConnection::new(cfg.clone()).unwrap();
        let mut client = session(s, "broker.test", NOW_MS);
        client.write_plaintext(b"req").unwrap();
        pump(&mut client, &mut server).unwrap();
        let mut got = [0; 3];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"req");
        assert!(server.peer_certificates().is_some());
    }
}

#[test]
fn plaintext_bytes_are_a_protocol_error() {
    let ca = Ca::new("cluster CA");
    let mut client = session(&trusting(&ca), "broker.test", NOW_MS);
    let _hello = client.ciphertext_to_send();
    // A plaintext broker's ApiVersions response: not a TLS record.
    let e = client
        .ciphertext_in(&[0, 0, 0, 10, 0, 0, 0, 1, 0, 35, 0, 0, 0, 0])
        .unwrap_err();
    assert!(matches!(e, TlsError::Protocol(_)), "{e:?}");
}

#[test]
fn settings_errors_are_typed() {
    let clock = TlsClock::default();
    let jks = TlsSettings {
        truststore_type: Some("JKS".into()),
        ..Default::default()
    };
    let e = client_config(&jks, &clock).unwrap_err();
    assert!(matches!(
        e,
        TlsConfigError::UnsupportedStoreType {
            key: "ssl.truststore.type",
            ..
        }
    ));
    assert!(e.to_string().contains("ssl.truststore.location"), "{e}");
    let p12 = TlsSettings {
        keystore_type: Some("PKCS12".into()),
        ..Default::default()
    };
    assert!(client_config(&p12, &clock)
        .unwrap_err()
        .to_string()
        .contains("ssl.keystore.type=PEM"));

    let secret = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nTUlJQ3NlY3JldA==\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let ca = Ca::new("cluster CA");
    let (ccert, _) = ca.leaf("client", None);
    let enc = TlsSettings {
        keystore_key: Some(Password::new(secret)),
        keystore_certificate_chain: Some(ccert),
        key_password: Some(Password::new("pass")),
        ..Default::default()
    };
    let e = client_config(&enc, &clock).unwrap_err();
    assert!(matches!(
        e,
        TlsConfigError::EncryptedKey {
            key: "ssl.keystore.key"
        }
    ));
    assert!(!e.to_string().contains("TUlJQ3"));

    let half = TlsSettings {
        certificate_location: Some("/nonexistent".into()),
        ..Default::default()
    };
    assert!(matches!(
        client_config(&half, &clock),
        Err(TlsConfigError::IncompleteClientCert(_))
    ));
    let missing = TlsSettings {
        ca_location: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    };
    assert!(matches!(
        client_config(&missing, &clock),
        Err(TlsConfigError::Read {
            key: "ssl.ca.location",
            ..
        })
    ));
    let garbage = TlsSettings {
        truststore_certificates: Some("not pem".into()),
        ..Default::default()
    };
    assert!(matches!(
        client_config(&garbage, &clock),
        Err(TlsConfigError::Pem { .. })
    ));
    // No trust settings: the compiled-in web roots.
    assert!(client_config(&TlsSettings::default(), &clock).is_ok());
}
