//! kafka-sansio: a Kafka producer whose whole protocol logic is a synchronous,
//! deterministic state machine with no IO of its own (sans-IO), with two
//! ready-made drivers around it.
//!
//! # Layers
//!
//! - [`protocol`]: the wire codec (frames, RecordBatch v2 with its compression
//!   codecs, and the messages a producer needs: ApiVersions, Metadata,
//!   InitProducerId, Produce), encode and decode, client and broker side.
//! - [`producer`]: the sans-IO core, [`producer::Producer`]: configuration
//!   (Java keys and defaults), partitioning, batching, sequences and
//!   idempotence, retries, metadata, connections and timers. No sockets, no
//!   clocks, no threads: records, bytes and `now` in; transmits, events and a
//!   deadline out.
//! - [`driver`]: the IO loops around the core: [`driver::blocking`] (threads
//!   and `std::net`) and `driver::mio` (one event loop, feature `mio-driver`,
//!   on by default), both behind the same [`driver::Handle`] API.
//! - [`mock`]: a Kafka-compatible mock cluster, sans-IO
//!   ([`mock::MockCluster`]) and on loopback TCP ([`mock::MockServer`]), so
//!   examples and tests run with no Kafka installed.
//! - [`serialize`]: key/value serializers (built-in types; JSON and Avro with
//!   the `json` and `avro` features).
//!
//! # The core's run loop
//!
//! Every driver does the same: give the core an input or a command with
//! `now`, drain `poll_transmit` and `poll_event` until they return `None`,
//! then wait for IO or for `poll_timeout`. Here the "network" is a
//! [`mock::MockCluster`] in memory: the bytes of each `Transmit::Send` go
//! through a [`protocol::Deframer`] into the cluster, and its response bytes
//! come back through `handle_data`. No sockets, no threads, no sleeping.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Instant;
//!
//! use kafka_sansio::mock::MockCluster;
//! use kafka_sansio::producer::{ConnId, Event, Producer, ProducerConfig, ProducerRecord, Transmit};
//! use kafka_sansio::protocol::frame::{Deframer, DEFAULT_MAX_FRAME};
//!
//! // One broker, advertised as localhost:9092 (node n at port 9092 + n).
//! let mut cluster = MockCluster::new(1);
//! let mut now = Instant::now();
//! let config = ProducerConfig::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .build()?;
//! // The core reads no clock: `now` and the wall-clock time at `now` anchor it.
//! let mut producer = Producer::new(config, now, 1_700_000_000_000)?;
//!
//! // A command: the record is accepted at once and its outcome comes later as an event.
//! let id = producer.send(ProducerRecord::new("greetings", "hello").key("k"), now)?;
//!
//! // The driver's side: connection id -> (broker node, request deframer).
//! let mut conns: BTreeMap<ConnId, (i32, Deframer)> = BTreeMap::new();
//! let mut delivered = None;
//! for _ in 0..100 {
//!     // Outputs: carry out every transmit; each result is an input.
//!     while let Some(t) = producer.poll_transmit(now) {
//!         match t {
//!             Transmit::Connect { conn, port, .. } => {
//!                 conns.insert(conn, (i32::from(port - 9092), Deframer::new(DEFAULT_MAX_FRAME)));
//!                 producer.handle_connected(conn, now);
//!             }
//!             Transmit::Send { conn, data } => {
//!                 let (node, deframer) = conns.get_mut(&conn).expect("connected");
//!                 deframer.push(&data);
//!                 // Written (here: at once); acks=0 completes on this.
//!                 producer.handle_written(conn, data.len(), now);
//!                 while let Some(frame) = deframer.next_frame()? {
//!                     let answer = cluster.handle_request(*node, frame, now);
//!                     if let Some(bytes) = answer.response {
//!                         producer.handle_data(conn, &bytes, now);
//!                     }
//!                 }
//!             }
//!             Transmit::Close { conn } => {
//!                 conns.remove(&conn);
//!             }
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     // Events: outcomes travel per batch; `metadata()` fans them out per record.
//!     while let Some(event) = producer.poll_event() {
//!         match event {
//!             Event::Delivered(d) => delivered = d.metadata().find(|(r, _)| *r == id),
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     if delivered.is_some() {
//!         break;
//!     }
//!     // Nothing left to do now: time passes to the next deadline (here linger.ms).
//!     now = producer.poll_timeout().expect("a record is waiting");
//!     producer.handle_timeout(now);
//! }
//!
//! let (_, md) = delivered.expect("delivered");
//! assert_eq!((&*md.topic, md.partition, md.offset), ("greetings", 0, 0));
//! assert_eq!(cluster.records("greetings", 0)?[0].value.as_deref(), Some(&b"hello"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Tests do not write this loop: [`mock::Pair`] runs it once for all of
//! them (the crate's own tests and fuzz target, and a user's), with a
//! simulated clock and network, fault injection and `step`/`run_until`.
//! Applications use a driver instead, e.g. [`driver::blocking::Producer`]:
//! see its docs, the README and the examples.
//!
//! # Guides
//!
//! - [`docs::architecture`]: the layers, the core's contract and the order
//!   of calls, how to write a driver.
//! - [`docs::semantics`]: delivery guarantees, ordering, idempotence, epoch
//!   bumps, rebootstrap.
//! - [`docs::performance`]: how to measure, the current figures against
//!   librdkafka, what bounds them.
//! - [`docs::testing`]: the simulation, fuzzing, the real peers, replaying a
//!   seed.
//! - [`docs::configuration`]: every key of Java's `ProducerConfig`, honoured
//!   or a no-op, and why.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod docs;
pub mod driver;
#[doc(hidden)]
pub mod fuzz;
pub mod mock;
pub mod producer;
pub mod protocol;
pub mod serialize;
