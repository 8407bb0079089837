//! Drivers: the IO loops around the sans-IO core.
//!
//! Both drivers share what is not IO: the application-facing [`Handle`]
//! (send, callbacks, tagged sends, flush, close), the [`DeliveryFuture`] a
//! send returns, the [`Error`] type, and the engine: the core plus the
//! records' waiters, behind one lock. A send appends its record to the core
//! in the sending thread, as Java's `KafkaProducer.send` appends to its
//! accumulator, waiting there (up to `max.block.ms`) while `buffer.memory` is
//! full; the loop is only woken when the core has new work (a new or full
//! batch), so its work is per batch and per request, not per record. The
//! loop applies IO to the core, takes its outputs under the lock, and writes
//! and runs callbacks after releasing it. The drivers only move bytes:
//! [`blocking`] with threads and `std::net`, `mio` (feature `mio-driver`)
//! with one event loop.

pub mod blocking;
mod direct;
mod engine;
mod handle;
mod loop_side;
#[cfg(feature = "mio-driver")]
pub mod mio;
mod outbox;
mod queue;
pub mod typed;

pub use handle::{DeliveryFuture, Handle};
pub use typed::{RecordPart, TypedProducer, TypedRecord};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::producer::txn::{TxnCall, TxnError};
use crate::producer::{
    ConfigError, DeliveryError, ProducerConfig, ProducerRecord, RecordMetadata, SendError,
};

use loop_side::LoopSide;

/// How long dropping the last handle of a producer waits for outstanding records.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the drivers' application API.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The record was refused; it is inside (`SendError::into_record`). A
    /// blocking send that waited `max.block.ms` for memory gives `BufferFull`.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The record was accepted but not delivered.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The producer's loop has stopped; no outcome will come.
    #[error("producer is closed")]
    Closed,
    /// A wait ran out of time before the outcome arrived.
    #[error("timed out")]
    Timeout,
    /// A transaction call was refused or failed (see [`TxnError`]: fatal,
    /// abortable, or not allowed in the current state).
    #[error(transparent)]
    Transaction(#[from] TxnError),
    /// A transaction call did not finish within its timeout. It goes on:
    /// calling it again waits for the same outcome, as in Java.
    #[error("{call} timed out")]
    TransactionTimeout {
        /// The call.
        call: TxnCall,
    },
    /// Starting the driver failed (thread spawn, poll creation).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A tagged send before any [`Handle::on_delivery`] listener was set: its
    /// outcome would reach no one, so the record (inside) was not sent.
    #[error("send_with_tag needs a listener: call on_delivery first (record for topic {})", .0.topic)]
    NoListener(Box<ProducerRecord>),
    /// A [`TypedProducer`]'s key or value serializer failed for this record;
    /// nothing was sent for it.
    #[error("cannot serialize the {part} of a record for topic {topic}: {source}")]
    Serialize {
        /// Whether the key or the value failed.
        part: RecordPart,
        /// The record's topic.
        topic: Arc<str>,
        /// The serializer's error.
        #[source]
        source: crate::serialize::SerializeError,
    },
}

impl Error {
    /// The refused record, for the errors that hand it back.
    pub fn into_record(self) -> Option<ProducerRecord> {
        match self {
            Error::Send(e) => Some(e.into_record()),
            Error::NoListener(r) => Some(*r),
            _ => None,
        }
    }

    /// True for a refusal because `buffer.memory` was full.
    pub fn is_buffer_full(&self) -> bool {
        matches!(self, Error::Send(SendError::BufferFull { .. }))
    }
}

/// The outcome of one record.
pub type DeliveryResult = Result<RecordMetadata, Error>;
/// A callback run with a record's outcome by the driver thread that took the
/// loop's turn (mio: its loop thread; blocking: the IO thread or a reader
/// thread), never two at once and in the order of the outcomes. Keep it short
/// and never call a blocking method (`wait`, `flush`, `close`) from it: the
/// loop would wait on itself.
pub type Callback = Box<dyn FnOnce(DeliveryResult) + Send + 'static>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The producer-wide function that hears the outcomes of records sent with
/// [`Handle::send_with_tag`], each with its tag; it runs where a [`Callback`]
/// runs, with the same rules.
/// The outcome is lent, not given: the loop reuses one per batch, so a
/// listener allocates and counts nothing per record unless it keeps a copy.
pub type Listener = Arc<dyn Fn(u64, &DeliveryResult) + Send + Sync + 'static>;

/// The function that hears the statistics JSON (see [`Handle::on_statistics`]).
pub type StatisticsListener = Arc<dyn Fn(&str) + Send + Sync + 'static>;

/// How the loop is woken when there is work for it.
trait Wake: Send + Sync {
    fn wake(&self);
}

/// `config` with the core's generator seeded from the OS when the seed is
/// the default: each producer's jitter, re-authentication points and SCRAM
/// nonces then differ from another's. A seed set explicitly is kept.
fn seeded(mut config: ProducerConfig) -> ProducerConfig {
    if config.rng_seed == crate::producer::DEFAULT_RNG_SEED {
        use std::hash::{BuildHasher, Hasher};
        // std's hasher keys come from the OS generator: a seed with no
        // dependency and no `unsafe`.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(unix_ms());
        config.rng_seed = h.finish();
    }
    config
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
