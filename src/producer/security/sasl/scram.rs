//! SCRAM-SHA-256 and SCRAM-SHA-512 clients (RFC 5802, RFC 7677), without
//! channel binding (`n,,`), as Kafka's brokers expect.
//!
//! The client nonce is the base64 of bytes the caller hands in (at least 16,
//! from a cryptographic RNG the driver or application owns): the core reads
//! no entropy itself. The password is used as given; like Java's client this
//! applies no SASLprep normalisation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::{SaslError, Step};
use crate::producer::security::jaas::Credentials;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this hash's HMAC.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            ScramHash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

enum State {
    Initial,
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

/// A SCRAM client exchange: client-first, server-first, client-final, server-final.
pub struct ScramClient {
    hash: ScramHash,
    credentials: Credentials,
    nonce: String,
    client_first_bare: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.credentials.username)
            .finish_non_exhaustive()
    }
}

/// RFC 5802 `saslname`: `=` and `,` escaped.
fn sasl_name(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// A client; `nonce_bytes` are fresh random bytes from the caller (>= 16).
    pub fn new(
        hash: ScramHash,
        credentials: Credentials,
        nonce_bytes: &[u8],
    ) -> Result<Self, SaslError> {
        if nonce_bytes.len() < 16 {
            return Err(SaslError::ShortNonce(nonce_bytes.len()));
        }
        Ok(Self::with_nonce(
            hash,
            credentials,
            STANDARD.encode(nonce_bytes),
        ))
    }

    /// A client with a printable nonce as is (no `,`), for test vectors.
    fn with_nonce(hash: ScramHash, credentials: Credentials, nonce: String) -> Self {
        let client_first_bare = format!("n={},r={}", sasl_name(&credentials.username), nonce);
        ScramClient {
            hash,
            credentials,
            nonce,
            client_first_bare,
            state: State::Initial,
        }
    }

    /// The hash this client uses.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// The client-first message, `n,,n=user,r=nonce`.
    pub fn initial(&mut self) -> Vec<u8> {
        self.state = State::SentFirst;
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes server-first (answers client-final) or server-final (answers `Done`).
    pub fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        let malformed = |reason| SaslError::Malformed {
            mechanism: "SCRAM",
            reason,
        };
        let text = std::str::from_utf8(server).map_err(|_| malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::SentFirst => {
                let (final_msg, server_signature) = self.client_final(text)?;
                self.state = State::SentFinal { server_signature };
                Ok(Step::Send(final_msg.into_bytes()))
            }
            State::SentFinal { server_signature } => {
                let attr = |k: &str| text.split(',').find_map(|a| a.strip_prefix(k));
                if let Some(e) = attr("e=") {
                    return Err(SaslError::ServerError(e.to_string()));
                }
                let v = attr("v=").ok_or(malformed("server-final has no v="))?;
                let v = STANDARD
                    .decode(v)
                    .map_err(|_| malformed("server signature is not base64"))?;
                if v != server_signature {
                    return Err(SaslError::ServerSignatureMismatch);
                }
                Ok(Step::Done)
            }
            State::Initial | State::Done => Err(SaslError::Unexpected("SCRAM")),
        }
    }

    fn client_final(&self, server_first: &str) -> Result<(String, Vec<u8>), SaslError> {
        let malformed = |reason| SaslError::Malformed {
            mechanism: "SCRAM",
            reason,
        };
        if server_first.starts_with("m=") {
            return Err(malformed("mandatory extension not supported"));
        }
        if let Some(e) = server_first.strip_prefix("e=") {
            return Err(SaslError::ServerError(e.to_string()));
        }
        let mut parts = server_first.split(',');
        let nonce = parts
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(malformed("server-first has no r="))?;
        let salt = parts
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or(malformed("server-first has no s="))?;
        let iterations = parts
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .ok_or(malformed("server-first has no i="))?;
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(SaslError::BadServerNonce);
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| malformed("iteration count is not a number"))?;
        if !(4096..=1_000_000).contains(&iterations) {
            return Err(SaslError::BadIterations(iterations));
        }
        let h = self.hash;
        let salted = h.salted_password(
            self.credentials.password.expose().as_bytes(),
            &salt,
            iterations,
        );
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, server_first, without_proof
        );
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        let server_signature = h.hmac(&server_key, auth_message.as_bytes());
        Ok((
            format!("{without_proof},p={}", STANDARD.encode(proof)),
            server_signature,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::security::Password;

    fn creds(user: &str, pw: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: Password::new(pw),
        }
    }

    /// RFC 7677 section 3.
    #[test]
    fn rfc7677_vector() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha256,
            creds("user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(c.initial(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let Step::Send(fin) = c.step(server_first.as_bytes()).unwrap() else {
            panic!("client-final expected")
        };
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            c.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(Step::Done)
        );
        assert_eq!(c.step(b"v=x"), Err(SaslError::Unexpected("SCRAM")));
    }

    /// A server side per RFC 5802 section 3: verifies the client's proof from
    /// the stored key and returns server-final.
    struct Server {
        hash: ScramHash,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    }

    impl Server {
        fn new(hash: ScramHash, password: &str) -> Self {
            let salt = b"kafka-salt-16byt".to_vec();
            let salted = hash.salted_password(password.as_bytes(), &salt, 4096);
            Server {
                hash,
                stored_key: hash.hash(&hash.hmac(&salted, b"Client Key")),
                server_key: hash.hmac(&salted, b"Server Key"),
                salt,
                iterations: 4096,
            }
        }

        /// Runs the exchange; `Err` when the server rejects the proof.
        fn run(&self, c: &mut ScramClient, tamper: bool) -> Result<Step, SaslError> {
            let first = String::from_utf8(c.initial()).unwrap();
            let bare = first.strip_prefix("n,,").unwrap();
            let cnonce = bare.split(',').nth(1).unwrap().strip_prefix("r=").unwrap();
            let server_first = format!(
                "r={cnonce}srvNonce,s={},i={}",
                STANDARD.encode(&self.salt),
                self.iterations
            );
            let Step::Send(fin) = c.step(server_first.as_bytes())? else {
                panic!()
            };
            let fin = String::from_utf8(fin).unwrap();
            let (without_proof, proof) = fin.rsplit_once(",p=").unwrap();
            let auth = format!("{bare},{server_first},{without_proof}");
            let sig = self.hash.hmac(&self.stored_key, auth.as_bytes());
            let client_key: Vec<u8> = STANDARD
                .decode(proof)
                .unwrap()
                .iter()
                .zip(&sig)
                .map(|(a, b)| a ^ b)
                .collect();
            if self.hash.hash(&client_key) != self.stored_key {
                return c.step(b"e=invalid-proof");
            }
            let mut server_sig = self.hash.hmac(&self.server_key, auth.as_bytes());
            if tamper {
                server_sig[0] ^= 1;
            }
            c.step(format!("v={}", STANDARD.encode(server_sig)).as_bytes())
        }
    }

    #[test]
    fn both_hashes_against_a_verifying_server() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            let server = Server::new(hash, "s3cret,=pw");
            let mut c = ScramClient::new(hash, creds("al=ice,", "s3cret,=pw"), &[7; 18]).unwrap();
            assert_eq!(server.run(&mut c, false), Ok(Step::Done));
            let mut c = ScramClient::new(hash, creds("alice", "wrong"), &[7; 18]).unwrap();
            assert_eq!(
                server.run(&mut c, false),
                Err(SaslError::ServerError("invalid-proof".into()))
            );
            let mut c = ScramClient::new(hash, creds("alice", "s3cret,=pw"), &[9; 16]).unwrap();
            assert_eq!(
                server.run(&mut c, true),
                Err(SaslError::ServerSignatureMismatch)
            );
        }
    }

    #[test]
    fn bad_server_messages_are_typed() {
        let mk = || {
            let mut c = ScramClient::new(ScramHash::Sha512, creds("u", "p"), &[1; 16]).unwrap();
            c.initial();
            c
        };
        let n = STANDARD.encode([1u8; 16]);
        assert_eq!(
            mk().step(b"r=someoneelse,s=AAAA,i=4096"),
            Err(SaslError::BadServerNonce)
        );
        assert_eq!(
            mk().step(format!("r={n},s=AAAA,i=4096").as_bytes()),
            Err(SaslError::BadServerNonce)
        );
        assert_eq!(
            mk().step(format!("r={n}x,s=AAAA,i=1").as_bytes()),
            Err(SaslError::BadIterations(1))
        );
        assert!(matches!(
            mk().step(format!("r={n}x,i=4096").as_bytes()),
            Err(SaslError::Malformed { .. })
        ));
        assert!(matches!(
            mk().step(&[0xff]),
            Err(SaslError::Malformed { .. })
        ));
        assert_eq!(
            ScramClient::new(ScramHash::Sha256, creds("u", "p"), &[0; 8]).unwrap_err(),
            SaslError::ShortNonce(8)
        );
        let c = ScramClient::new(ScramHash::Sha256, creds("u", "Zq9secret"), &[0; 16]).unwrap();
        assert!(!format!("{c:?}").contains("Zq9secret"));
    }
}
