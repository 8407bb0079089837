//! Kafka's wire protocol: primitives, frames, RecordBatch v2 and the messages a
//! producer needs, encoded and decoded in both directions so that the producer
//! core and a test broker share one codec.

pub mod error;
pub mod frame;
pub mod primitives;

pub use error::ProtocolError;
pub use frame::{ApiKey, ApiMessage, Deframer, Request, RequestHeader, ResponseHeader};
pub mod compression;
pub mod record;

pub use compression::Compression;
pub use record::{BatchBuilder, ClosedBatch, Header, Record, RecordBatch};
