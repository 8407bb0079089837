//! The guides of `docs/` in the repository, shown here so that they sit next
//! to the API they describe: each module below is one of those files.

#[doc = include_str!("../docs/architecture.md")]
pub mod architecture {}

#[doc = include_str!("../docs/semantics.md")]
pub mod semantics {}

#[doc = include_str!("../docs/performance.md")]
pub mod performance {}

#[doc = include_str!("../docs/testing.md")]
pub mod testing {}

/// The README's examples, compiled by `cargo test --doc` so that they stay
/// in step with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;
