//! SASL client mechanisms as sans-IO state machines: each takes the server's
//! tokens (SaslAuthenticate `auth_bytes`) and returns the client's next token.
//!
//! The exchange: [`SaslClient::initial`] gives the first client token, then
//! every server token goes to [`SaslClient::step`] until it answers
//! [`Step::Done`]. No IO, no clock, no entropy: the SCRAM nonce is built from
//! bytes the caller hands in (the driver's or application's RNG), OAUTHBEARER
//! tokens come from a [`TokenProvider`] the application implements.

mod oauthbearer;
mod plain;
mod scram;

pub use oauthbearer::{OAuthBearerClient, OAuthBearerToken, TokenProvider, UnsecuredJwsProvider};
pub use plain::PlainClient;
pub use scram::{ScramClient, ScramHash};

use super::SaslMechanism;

pub use super::SaslError;

/// What the client does after a server token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes in the next SaslAuthenticate request.
    Send(Vec<u8>),
    /// The exchange is complete on the client side.
    Done,
}

/// A client mechanism in progress.
pub enum SaslClient {
    /// PLAIN.
    Plain(PlainClient),
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramClient),
    /// OAUTHBEARER.
    OAuthBearer(OAuthBearerClient),
}

impl std::fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mechanism().name())
    }
}

impl SaslClient {
    /// The mechanism this client speaks.
    pub fn mechanism(&self) -> SaslMechanism {
        match self {
            SaslClient::Plain(_) => SaslMechanism::Plain,
            SaslClient::Scram(c) => match c.hash() {
                ScramHash::Sha256 => SaslMechanism::ScramSha256,
                ScramHash::Sha512 => SaslMechanism::ScramSha512,
            },
            SaslClient::OAuthBearer(_) => SaslMechanism::OAuthBearer,
        }
    }

    /// The first client token.
    pub fn initial(&mut self) -> Vec<u8> {
        match self {
            SaslClient::Plain(c) => c.initial(),
            SaslClient::Scram(c) => c.initial(),
            SaslClient::OAuthBearer(c) => c.initial(),
        }
    }

    /// Takes a server token; returns the next client token or `Done`.
    pub fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match self {
            SaslClient::Plain(c) => c.step(server),
            SaslClient::Scram(c) => c.step(server),
            SaslClient::OAuthBearer(c) => c.step(server),
        }
    }
}
