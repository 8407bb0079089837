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

/// Why a SASL exchange failed on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The server's SCRAM nonce does not extend the client's.
    #[error("SCRAM: the server nonce does not start with the client nonce")]
    BadServerNonce,
    /// The server's final message carries a signature that does not match:
    /// the server does not know the password (or is not the server).
    #[error("SCRAM: server signature mismatch")]
    ServerSignatureMismatch,
    /// The server answered with a SCRAM `e=` error.
    #[error("SCRAM: server error `{0}`")]
    ServerError(String),
    /// A server message that does not follow the mechanism's grammar.
    #[error("{mechanism}: malformed server message: {reason}")]
    Malformed {
        /// The mechanism.
        mechanism: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An iteration count below RFC 5802's minimum of 4096 or absurdly high.
    #[error("SCRAM: iteration count {0} out of range 4096..=1000000")]
    BadIterations(u32),
    /// The server sent a token after the exchange was complete.
    #[error("{0}: server token after the exchange completed")]
    Unexpected(&'static str),
    /// The server rejected the OAUTHBEARER token (its JSON error status).
    #[error("OAUTHBEARER: the server rejected the token: {0}")]
    TokenRejected(String),
    /// The token provider could not give a token.
    #[error("OAUTHBEARER: no token: {0}")]
    NoToken(String),
    /// The caller's nonce bytes are too few (at least 16 are needed).
    #[error("SCRAM: {0} nonce bytes given, at least 16 needed")]
    ShortNonce(usize),
}

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
