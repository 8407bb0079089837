//! An OAUTHBEARER token provider for tests that counts the tokens it gives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kafka_sansio::producer::security::sasl::{
    OAuthBearerToken, TokenProvider, UnsecuredJwsProvider,
};

/// Unsecured tokens, each one counted in the shared counter.
pub struct Counting(pub UnsecuredJwsProvider, pub Arc<AtomicUsize>);

impl TokenProvider for Counting {
    fn token(&mut self, now_ms: i64) -> Result<OAuthBearerToken, String> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.token(now_ms)
    }
}
