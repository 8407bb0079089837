//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the
//! stable replay tests (`tests/fuzz_corpus.rs`, `tests/record_batch.rs`).
//! Hidden from the docs: they are test support, not API.
//!
//! Each function takes arbitrary bytes, must never panic on its own, and
//! panics (with a message) when a property it checks does not hold.

mod frames;
mod input;
mod producer_session;
mod record_batch;
#[cfg(all(feature = "sasl", feature = "tls"))]
mod secure_handshake;

pub use frames::fuzz_frames;
pub use producer_session::fuzz_producer_session;
pub use record_batch::fuzz_record_batch;
#[cfg(all(feature = "sasl", feature = "tls"))]
pub use secure_handshake::fuzz_secure_handshake;
