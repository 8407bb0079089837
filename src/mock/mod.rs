//! A mock Kafka cluster: an in-process, Kafka-compatible test broker built on
//! this crate's own [`protocol`](crate::protocol) codec, so that examples and
//! tests run with no Kafka installed (in the spirit of librdkafka's mock
//! cluster and franz-go's kfake).
//!
//! Two layers, like the producer itself:
//! - [`MockCluster`] is sans-IO: request frames in, response frames out, time
//!   passed in as `now`. A deterministic simulation drives it directly.
//! - [`MockServer`] puts a `MockCluster` behind loopback TCP listeners (one per
//!   broker) on background threads, for the drivers, the examples and real
//!   clients such as kcat/librdkafka.
//!
//! What the mock answers: ApiVersions (v0-4, with the KIP-511 v0 fallback),
//! Metadata (v1-13, topic ids from v10), InitProducerId (v0-5, idempotent
//! producers only) and Produce (v3-13; from v13 topics are named by id, an
//! unknown id answered UNKNOWN_TOPIC_ID), with Kafka 4's idempotent-producer
//! rules per partition
//! (duplicates of the last 5 batches answered with their original offset,
//! INVALID_PRODUCER_EPOCH for an old epoch, OUT_OF_ORDER_SEQUENCE_NUMBER for
//! gaps, any sequence accepted from an unknown producer as Kafka 2.5+ does).
//! Faults are deterministic: queued error codes per API, lost responses after
//! append, leader moves, brokers down, latency, throttling.
//!
//! Driving the core without IO (what a simulation does): feed each request
//! frame the producer wrote to broker `n` (deframed, without the 4-byte size
//! prefix) to [`MockCluster::handle_request`]; deliver `response` (which has
//! its size prefix, ready for the wire) at `due`; close the connection at
//! `due` when `close` is set and drop whatever the producer sent after it.
//!
//! ```
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use kafka_sansio::mock::MockCluster;
//! use kafka_sansio::protocol::frame::{decode_response, encode_request};
//! use kafka_sansio::protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
//!
//! let mut cluster = MockCluster::new(3);
//! cluster.create_topic("events", 6).unwrap();
//! let mut wire = BytesMut::new();
//! encode_request(&mut wire, 1, Some("sim"), 3, &ApiVersionsRequest::default()).unwrap();
//! let frame = wire.freeze().slice(4..); // the core takes frames without the size prefix
//! let r = cluster.handle_request(0, frame, Instant::now());
//! assert!(!r.close);
//! let response = r.response.unwrap(); // size prefix included
//! let (_, body) = decode_response::<ApiVersionsResponse>(response.slice(4..), 3).unwrap();
//! assert_eq!(body.error_code, 0);
//! ```
//!
//! Real clients: librdkafka (kcat) produces RecordBatch v2 only when the
//! broker advertises Fetch v4 or later, which the mock does: it answers
//! Fetch and ListOffsets from its logs, so librdkafka consumers (kcat -C,
//! confluent-kafka) read back what was produced; in-process,
//! [`MockCluster::records`] does the same.
//!
//! SASL (feature `sasl`): [`MockCluster::enable_sasl`] makes every broker a
//! SASL listener for PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (unsecured
//! tokens, checked as Kafka's default validator does) with Kafka's rules (only
//! ApiVersions, SaslHandshake v1 and SaslAuthenticate before
//! authentication; SASL_AUTHENTICATION_FAILED or UNSUPPORTED_SASL_MECHANISM
//! then a close; session lifetimes, KIP-368 re-authentication, expired
//! sessions closed on their next request). SASL state is per connection, so
//! such a cluster is driven through [`MockCluster::handle_connection_request`]
//! (as [`Pair`] and [`MockServer`] do).
//!
//! TLS (feature `tls`): [`MockCluster::set_tls`] with a [`MockTls`] from PEM
//! (optionally requiring client certificates) puts rustls under every
//! connection of [`MockServer`] and [`Pair`].
//!
//! Transactions: a transaction coordinator (FindCoordinator, InitProducerId
//! with a transactional id, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn) writes commit and abort markers into the logs; a
//! `read_committed` Fetch stops at the last stable offset and lists the
//! aborted transactions; transactions v2 (KIP-890) with
//! [`MockCluster::set_transaction_version`].
//!
//! What it is not: there are no fetch sessions, no consumer groups (only the
//! offsets of transactions are kept), no replication (each partition has exactly
//! its leader as replica), no retention. Unknown API keys close
//! the connection. Differences from Kafka worth knowing: topics are also
//! auto-created by Produce (Kafka creates them only on Metadata), and
//! InitProducerId with a known producer id and its current epoch bumps the
//! epoch (Kafka hands a non-transactional producer a fresh id instead).

mod batch;
mod cluster;
mod dispatch;
mod faults;
mod fetch;
mod harness;
mod metadata;
#[cfg(feature = "sasl")]
mod oauthbearer;
mod produce;
#[cfg(feature = "sasl")]
mod sasl;
mod server;
#[cfg(feature = "tls")]
mod tls;
mod txn;

pub use batch::MockRecord;
pub use cluster::{
    HandleResult, MockCluster, MockConfig, StoredBatch, FIRST_PRODUCER_ID, RETAINED_BATCHES,
};
pub use harness::{Broker, Pair, Scripted};
#[cfg(feature = "sasl")]
pub use oauthbearer::MockOAuthValidator;
#[cfg(feature = "sasl")]
pub use sasl::{MockSaslError, SaslStats, MIN_SCRAM_ITERATIONS};
pub use server::MockServer;
#[cfg(feature = "tls")]
pub use tls::{MockTls, MockTlsError};
pub use txn::MAX_TRANSACTION_TIMEOUT_MS;
