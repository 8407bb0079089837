//! The guides of `docs/` in the repository, shown here so that they sit next
//! to the API they describe: each module below is one of those files.
//!
//! Links between the guides, and from them to the API, are written as
//! reference links whose targets the files define for reading them in the
//! repository; the definitions given here come first, and so take precedence,
//! to point at the modules and items instead.

/// One guide: the link definitions for rustdoc, then the file.
macro_rules! guide {
    ($name:ident, $file:literal) => {
        #[doc = "[architecture.md]: crate::docs::architecture"]
        #[doc = "[semantics.md]: crate::docs::semantics"]
        #[doc = "[performance.md]: crate::docs::performance"]
        #[doc = "[testing.md]: crate::docs::testing"]
        #[doc = "[configuration.md]: crate::docs::configuration"]
        #[doc = "[`Producer`]: crate::producer::Producer"]
        #[doc = "[`Transmit`]: crate::producer::Transmit"]
        #[doc = "[`Event`]: crate::producer::Event"]
        #[doc = "[`DeliveryError`]: crate::producer::DeliveryError"]
        #[doc = "[`ProducerConfig`]: crate::producer::ProducerConfig"]
        #[doc = "[`Handle`]: crate::driver::Handle"]
        #[doc = "[`MockCluster`]: crate::mock::MockCluster"]
        #[doc = include_str!($file)]
        pub mod $name {}
    };
}

guide!(architecture, "../docs/architecture.md");
guide!(semantics, "../docs/semantics.md");
guide!(performance, "../docs/performance.md");
guide!(testing, "../docs/testing.md");
guide!(configuration, "../docs/configuration.md");

/// The README's examples, compiled by `cargo test --doc` so that they stay
/// in step with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;
