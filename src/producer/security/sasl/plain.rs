//! SASL PLAIN (RFC 4616): one message, `authzid NUL authcid NUL password`,
//! with an empty authorization id as Kafka's client sends.

use super::{SaslError, Step};
use crate::producer::security::jaas::Credentials;

/// The PLAIN client: sends the credentials, then expects an empty server token.
#[derive(Debug)]
pub struct PlainClient {
    credentials: Credentials,
    sent: bool,
}

impl PlainClient {
    /// A client for these credentials.
    pub fn new(credentials: Credentials) -> Self {
        PlainClient {
            credentials,
            sent: false,
        }
    }

    /// `NUL username NUL password`.
    pub fn initial(&mut self) -> Vec<u8> {
        self.sent = true;
        let mut out = Vec::new();
        out.push(0);
        out.extend_from_slice(self.credentials.username.as_bytes());
        out.push(0);
        out.extend_from_slice(self.credentials.password.expose().as_bytes());
        out
    }

    /// The broker answers success with an empty token; PLAIN has no more steps.
    pub fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        if !self.sent || !server.is_empty() {
            return Err(SaslError::Unexpected("PLAIN"));
        }
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::security::Password;

    #[test]
    fn plain_message() {
        let mut c = PlainClient::new(Credentials {
            username: "alice".into(),
            password: Password::new("pw"),
        });
        assert_eq!(c.initial(), b"\0alice\0pw");
        assert_eq!(c.step(b""), Ok(Step::Done));
        assert_eq!(c.step(b"x"), Err(SaslError::Unexpected("PLAIN")));
        assert!(!format!("{c:?}").contains("pw"));
    }
}
