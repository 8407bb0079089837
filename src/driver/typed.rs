//! A typed front on either driver: records of application types `K` and `V`,
//! turned into bytes by [`Serializer`]s before they reach the core (Java's
//! `KafkaProducer<K, V>` with its `key.serializer` and `value.serializer`).
//!
//! Serialization runs on the sending thread, as in Java: the key first, then
//! the value, both with the record's topic and its headers (a serializer may
//! add headers, for example a content type). A serializer that fails fails
//! that one record with [`Error::Serialize`], which says whether the key or
//! the value failed; nothing is sent for it and no other record is affected.
//!
//! ```
//! use std::time::Duration;
//! use kafka_sansio::driver::typed::{TypedProducer, TypedRecord};
//! use kafka_sansio::mock::MockServer;
//! use kafka_sansio::producer::ProducerConfig;
//! use kafka_sansio::serialize::{LongSerializer, StringSerializer};
//!
//! let cluster = MockServer::start(1)?;
//! let config = ProducerConfig::builder()
//!     .bootstrap_servers(&cluster.bootstrap_servers())
//!     .build()?;
//! let producer = TypedProducer::blocking(config, StringSerializer, LongSerializer)?;
//! let md = producer
//!     .send(TypedRecord::new("totals", 42i64).key("alice".to_owned()))?
//!     .wait()?;
//! assert_eq!(md.offset, 0);
//! producer.close(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "mio-driver")]
use std::sync::Mutex;
use std::time::Duration;

use super::{blocking, DeliveryFuture, DeliveryResult, Error, Handle};
use crate::producer::record::record_builders;
use crate::producer::{ProducerConfig, ProducerRecord};
use crate::serialize::{Header, Serializer};

/// Which part of a record a serializer failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPart {
    /// The key serializer failed.
    Key,
    /// The value serializer failed.
    Value,
}

impl fmt::Display for RecordPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordPart::Key => "key",
            RecordPart::Value => "value",
        })
    }
}

/// A record of application types, serialized by a [`TypedProducer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedRecord<K, V> {
    /// Topic name.
    pub topic: Arc<str>,
    /// Explicit partition; `None` lets the partitioner choose (by the
    /// serialized key, when there is one).
    pub partition: Option<i32>,
    /// Key; `None` is a null key (the serializer is not called).
    pub key: Option<K>,
    /// Value; `None` is a null value, a tombstone (the serializer is not called).
    pub value: Option<V>,
    /// Headers, in order; the serializers see them and may add to them.
    pub headers: Vec<Header>,
    /// Create time in Unix milliseconds; `None` takes the driver's clock.
    pub timestamp: Option<i64>,
}

impl<K, V> TypedRecord<K, V> {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<Arc<str>>, value: V) -> Self {
        TypedRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A record with a key and a null value (a tombstone for compacted topics).
    pub fn tombstone(topic: impl Into<Arc<str>>, key: K) -> Self {
        TypedRecord {
            topic: topic.into(),
            partition: None,
            key: Some(key),
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: K) -> Self {
        self.key = Some(key);
        self
    }

    record_builders!();
}

/// What keeps the driver behind a [`TypedProducer`] running.
enum Owner {
    /// The application owns the driver (the producer was made from a [`Handle`]).
    None,
    /// A blocking producer started by [`TypedProducer::blocking`].
    Blocking(blocking::Producer),
    /// A mio driver thread started by [`TypedProducer::mio`].
    #[cfg(feature = "mio-driver")]
    Mio {
        handle: Handle,
        thread: Mutex<Option<std::thread::JoinHandle<std::io::Result<()>>>>,
    },
}

impl Owner {
    fn close(&self, handle: &Handle, timeout: Duration) -> Result<(), Error> {
        match self {
            Owner::None => handle.close(timeout),
            Owner::Blocking(p) => p.close(timeout),
            #[cfg(feature = "mio-driver")]
            Owner::Mio { handle, thread } => {
                let r = handle.close(timeout);
                let t = thread.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(t) = t {
                    match t.join() {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return r.and(Err(Error::Io(e))),
                        Err(_) => {
                            return r.and(Err(Error::Io(std::io::Error::other(
                                "the mio driver thread panicked",
                            ))))
                        }
                    }
                }
                r
            }
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // The blocking producer closes itself when dropped; a bare handle is
        // the application's to close.
        #[cfg(feature = "mio-driver")]
        if let Owner::Mio { handle, .. } = self {
            let h = handle.clone();
            let _ = self.close(&h, super::DEFAULT_CLOSE_TIMEOUT);
        }
    }
}

/// A producer of records with keys of type `K` and values of type `V`, on
/// either driver. `Clone` shares the producer; it is `Send + Sync`.
///
/// Made from any [`Handle`] with [`TypedProducer::new`] (or
/// [`Handle::typed`]), in which case the application keeps its driver
/// running and closes it, or started with its own driver by
/// [`TypedProducer::blocking`] / [`TypedProducer::mio`], in which case
/// [`TypedProducer::close`] (or dropping the last clone) stops it.
pub struct TypedProducer<K, V> {
    handle: Handle,
    key: Arc<dyn Serializer<K>>,
    value: Arc<dyn Serializer<V>>,
    owner: Arc<Owner>,
}

impl<K, V> Clone for TypedProducer<K, V> {
    fn clone(&self) -> Self {
        TypedProducer {
            handle: self.handle.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            owner: self.owner.clone(),
        }
    }
}

impl<K, V> fmt::Debug for TypedProducer<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedProducer")
            .field("handle", &self.handle)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// A [`TypedProducer`] sending through this handle with these serializers.
    pub fn typed<K, V>(
        &self,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> TypedProducer<K, V> {
        TypedProducer::new(self.clone(), key, value)
    }
}

impl<K, V> TypedProducer<K, V> {
    /// A typed producer sending through `handle` (of either driver); the
    /// application keeps the driver running (for the blocking driver: keeps
    /// its `Producer` alive) and closes it.
    pub fn new(
        handle: Handle,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> Self {
        TypedProducer::with_serializers(handle, Arc::new(key), Arc::new(value))
    }

    /// Like [`TypedProducer::new`], with serializers that are already shared.
    pub fn with_serializers(
        handle: Handle,
        key: Arc<dyn Serializer<K>>,
        value: Arc<dyn Serializer<V>>,
    ) -> Self {
        TypedProducer {
            handle,
            key,
            value,
            owner: Arc::new(Owner::None),
        }
    }

    /// Starts a blocking-driver producer for `config` that this typed producer
    /// owns: closing it (or dropping the last clone) stops it.
    pub fn blocking(
        config: ProducerConfig,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> Result<Self, Error> {
        let producer = blocking::Producer::new(config)?;
        let mut p = TypedProducer::new(producer.handle(), key, value);
        p.owner = Arc::new(Owner::Blocking(producer));
        Ok(p)
    }

    /// Starts a mio driver for `config` on its own thread, owned by this typed
    /// producer: closing it (or dropping the last clone) stops the thread.
    #[cfg(feature = "mio-driver")]
    pub fn mio(
        config: ProducerConfig,
        key: impl Serializer<K> + 'static,
        value: impl Serializer<V> + 'static,
    ) -> Result<Self, Error> {
        let (handle, thread) = super::mio::Driver::spawn(config)?;
        let mut p = TypedProducer::new(handle.clone(), key, value);
        p.owner = Arc::new(Owner::Mio {
            handle,
            thread: Mutex::new(Some(thread)),
        });
        Ok(p)
    }

    /// Serializes `record` into the bytes record the core takes: the key, then
    /// the value, each with the topic and the headers. Fails with
    /// [`Error::Serialize`] naming the part that failed.
    pub fn serialize(&self, record: TypedRecord<K, V>) -> Result<ProducerRecord, Error> {
        let TypedRecord {
            topic,
            partition,
            key,
            value,
            mut headers,
            timestamp,
        } = record;
        let fail = |part, source| Error::Serialize {
            part,
            topic: topic.clone(),
            source,
        };
        let key = match &key {
            Some(k) => self
                .key
                .serialize(&topic, &mut headers, k)
                .map_err(|e| fail(RecordPart::Key, e))?,
            None => None,
        };
        let value = match &value {
            Some(v) => self
                .value
                .serialize(&topic, &mut headers, v)
                .map_err(|e| fail(RecordPart::Value, e))?,
            None => None,
        };
        Ok(ProducerRecord {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        })
    }

    /// Serializes and sends a record; see [`Handle::send`]. A serializer
    /// failure is `Err(Error::Serialize)` here, and nothing is sent.
    pub fn send(&self, record: TypedRecord<K, V>) -> Result<DeliveryFuture, Error> {
        self.handle.send(self.serialize(record)?)
    }

    /// Serializes and sends a record with a callback; see
    /// [`Handle::send_with_callback`]. A serializer failure is returned here
    /// and the callback is not called.
    pub fn send_with_callback(
        &self,
        record: TypedRecord<K, V>,
        callback: impl FnOnce(DeliveryResult) + Send + 'static,
    ) -> Result<(), Error> {
        self.handle
            .send_with_callback(self.serialize(record)?, callback)
    }

    /// Serializes and sends a record whose outcome goes to the listener; see
    /// [`Handle::send_with_tag`] and [`Handle::on_delivery`] (on [`TypedProducer::handle`]).
    /// A serializer failure is returned here and the listener is not called.
    pub fn send_with_tag(&self, record: TypedRecord<K, V>, tag: u64) -> Result<(), Error> {
        self.handle.send_with_tag(self.serialize(record)?, tag)
    }

    /// Serializes and sends a record without tracking it; see
    /// [`Handle::send_and_forget`]. A serializer failure is returned here.
    pub fn send_and_forget(&self, record: TypedRecord<K, V>) -> Result<(), Error> {
        self.handle.send_and_forget(self.serialize(record)?)
    }

    /// Serializes and sends without blocking for memory; see [`Handle::try_send`].
    pub fn try_send(&self, record: TypedRecord<K, V>) -> Result<DeliveryFuture, Error> {
        self.handle.try_send(self.serialize(record)?)
    }

    /// Blocks until every record sent before has its outcome; see [`Handle::flush`].
    pub fn flush(&self) -> Result<(), Error> {
        self.handle.flush()
    }

    /// [`TypedProducer::flush`] with a time limit.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.handle.flush_timeout(timeout)
    }

    /// Delivers what was sent (up to `timeout`, then aborts) and closes the
    /// producer; a driver started by this typed producer is stopped too.
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        self.owner.close(&self.handle, timeout)
    }

    /// True once the producer is closed.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// A snapshot of the core's counters ([`Handle::metrics`]).
    pub fn metrics(&self) -> crate::producer::Metrics {
        self.handle.metrics()
    }

    /// Java's producer metrics now ([`Handle::metrics_snapshot`]).
    pub fn metrics_snapshot(&self) -> Vec<crate::producer::Metric> {
        self.handle.metrics_snapshot()
    }

    /// The untyped handle, for records that are bytes already.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}
