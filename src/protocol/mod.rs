//! Kafka's wire protocol: primitives, frames, RecordBatch v2 and the messages a
//! producer needs, encoded and decoded in both directions so that the producer
//! core and a test broker share one codec.

pub mod checksum;
pub mod compression;
pub mod control;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod messages;
pub mod primitives;
pub mod record;

pub use compression::Compression;
pub use error::ProtocolError;
pub use error_code::ErrorCode;
pub use frame::{ApiKey, ApiMessage, Deframer, Request, RequestHeader, ResponseHeader};
pub use messages::{negotiate, NegotiatedVersions};
pub use record::{BatchBuilder, ClosedBatch, Header, Record, RecordBatch};
