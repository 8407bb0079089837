//! kafka-sansio: a Kafka producer whose protocol logic is a synchronous,
//! deterministic state machine with no IO of its own.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod driver;
pub mod mock;
pub mod producer;
pub mod protocol;
pub mod serialize;
