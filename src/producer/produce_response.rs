//! Produce answers: each batch delivered, retried with backoff, split
//! (MESSAGE_TOO_LARGE), or failed, and the hints an answer carries about
//! leaders and throttling.

use std::time::Instant;

use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::produce::{ProduceResponse, FIRST_TOPIC_ID_VERSION};

use super::accumulator::Batch;
use super::idempotence::PidState;
use super::record::DeliveryError;
use super::{error_of, ConnId, Producer};

/// Is this error one that says our metadata is stale? (Java's
/// `InvalidMetadataException` subclasses, UNKNOWN_TOPIC_ID among them: the
/// topic id we sent at Produce v13 is gone, e.g. the topic was recreated.)
fn invalidates_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::UnknownTopicId
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::KafkaStorageError
            | ErrorCode::NotCoordinator
    )
}

/// Errors after which the producer cannot go on.
fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ProducerFenced
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::ClusterAuthorizationFailed
            | ErrorCode::TransactionalIdAuthorizationFailed
            | ErrorCode::UnsupportedVersion
            | ErrorCode::UnsupportedForMessageFormat
            | ErrorCode::InvalidProducerIdMapping
            | ErrorCode::InvalidTxnState
    )
}

impl Producer {
    pub(crate) fn on_produce_response(
        &mut self,
        conn: ConnId,
        version: i16,
        batches: Vec<Batch>,
        resp: ProduceResponse,
        now: Instant,
    ) {
        let w = self.window();
        self.sensors
            .throttle
            .record(f64::from(resp.throttle_time_ms.max(0)), now, &w);
        if resp.throttle_time_ms > 0 {
            if let Some(c) = self.net.conns.get_mut(&conn) {
                c.throttled_until =
                    Some(now + std::time::Duration::from_millis(resp.throttle_time_ms as u64));
            }
        }
        // A retired connection answers for the cluster view given up: its
        // hints about brokers and leaders are not taken.
        let current = self.net.conns.get(&conn).is_some_and(|c| !c.retired);
        for n in resp.node_endpoints.iter().filter(|_| current) {
            if let Ok(port) = u16::try_from(n.port) {
                self.cluster
                    .brokers
                    .insert(n.node_id, (n.host.clone(), port));
            }
        }
        for b in batches {
            self.off_the_wire(&b);
            let (topic, partition) = (
                self.parts[b.part].topic.clone(),
                self.parts[b.part].partition,
            );
            // From v13 the answer names topics by the ids the request used.
            let answer = resp
                .responses
                .iter()
                .filter(|t| {
                    if version >= FIRST_TOPIC_ID_VERSION {
                        t.topic_id == b.topic_id
                    } else {
                        *t.name == *topic
                    }
                })
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == partition);
            let Some(answer) = answer else {
                log::warn!("Produce response lacks {topic}-{partition}; retrying");
                self.retry_or_fail(b, ErrorCode::UnknownServerError, None, now);
                continue;
            };
            let code = error_of(answer.error_code);
            let (base_offset, log_append_time) = (answer.base_offset, answer.log_append_time_ms);
            let message = answer.error_message.clone();
            match code {
                None => self.deliver(b, base_offset, log_append_time),
                // The broker had this batch already: an earlier attempt was appended.
                Some(ErrorCode::DuplicateSequenceNumber) => {
                    self.deliver(b, base_offset, log_append_time)
                }
                Some(c)
                    if self.txn.is_some() && super::transactions::fails_transactional_batch(c) =>
                {
                    let maybe_persisted = b.maybe_persisted;
                    self.fail_batch(
                        b,
                        DeliveryError::Broker {
                            code: c,
                            message,
                            maybe_persisted,
                        },
                    );
                }
                Some(c @ (ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId))
                    if self.idempotence.pid != PidState::Disabled =>
                {
                    self.on_sequence_error(b, c, now)
                }
                // Java splits such a batch and retries the parts: the
                // record over the limit then fails alone.
                Some(ErrorCode::MessageTooLarge) if b.count() > 1 => {
                    self.split_and_requeue(b, message)
                }
                Some(c) if is_fatal(c) => {
                    let maybe_persisted = b.maybe_persisted;
                    self.fail_batch(
                        b,
                        DeliveryError::Fatal {
                            code: c,
                            maybe_persisted,
                        },
                    );
                    self.set_fatal(c);
                }
                Some(c) if c.is_retriable() => {
                    // KIP-951: a v10+ answer may name the new leader; use it at
                    // once instead of waiting for a metadata round trip.
                    let new_leader = answer.current_leader.leader_id;
                    if c == ErrorCode::NotLeaderOrFollower
                        && current
                        && new_leader >= 0
                        && self.cluster.brokers.contains_key(&new_leader)
                    {
                        self.parts[b.part].leader = Some(new_leader);
                    } else if invalidates_metadata(c) {
                        self.cluster.metadata_needed = true;
                    }
                    self.retry_or_fail(b, c, message, now);
                }
                Some(c) => {
                    let maybe_persisted = b.maybe_persisted;
                    self.fail_batch(
                        b,
                        DeliveryError::Broker {
                            code: c,
                            message,
                            maybe_persisted,
                        },
                    );
                }
            }
        }
    }

    /// MESSAGE_TOO_LARGE on a batch of several records: the broker appended
    /// nothing; both halves go back, in order, ahead of later batches, and
    /// are sent again at once (a smaller batch is not a retry of the same
    /// request, so no backoff). A batch that cannot be split fails as answered.
    fn split_and_requeue(&mut self, b: Batch, message: Option<String>) {
        let part = b.part;
        match b.split_in_two(self.config.compression_level()) {
            Ok((first, second)) => {
                self.metrics.records_retried += b.count() as u64;
                self.list_active(part);
                let p = &mut self.parts[part];
                p.requeue(first);
                p.requeue(second);
                if let Some(buf) = b.closed.into_buffer() {
                    self.memory.recycle(buf);
                }
            }
            Err(why) => {
                log::warn!("MESSAGE_TOO_LARGE batch not split: {why}");
                let maybe_persisted = b.maybe_persisted;
                self.fail_batch(
                    b,
                    DeliveryError::Broker {
                        code: ErrorCode::MessageTooLarge,
                        message,
                        maybe_persisted,
                    },
                );
            }
        }
    }

    /// Batches whose request got no answer: they may be in the log. Retried
    /// (same sequence under idempotence, so the broker deduplicates).
    pub(crate) fn retry_unknown(&mut self, batches: Vec<Batch>, now: Instant) {
        for mut b in batches {
            self.off_the_wire(&b);
            b.maybe_persisted = true;
            self.retry_or_fail(b, ErrorCode::RequestTimedOut, None, now);
        }
    }

    /// Puts a batch back with backoff, or fails it when retries or delivery time ran out.
    pub(super) fn retry_or_fail(
        &mut self,
        mut b: Batch,
        code: ErrorCode,
        message: Option<String>,
        now: Instant,
    ) {
        let elapsed = now.saturating_duration_since(b.created);
        if elapsed >= self.config.delivery_timeout {
            let e = DeliveryError::Timeout {
                elapsed_ms: elapsed.as_millis() as u64,
                maybe_persisted: b.maybe_persisted,
            };
            self.fail_batch(b, e);
            return;
        }
        if b.attempts > self.config.retries {
            let e = DeliveryError::Broker {
                code,
                message,
                maybe_persisted: b.maybe_persisted,
            };
            self.fail_batch(b, e);
            return;
        }
        let wait = self.backoff(b.attempts);
        b.retry_at = Some(now + wait);
        let part = b.part;
        // Once per batch and attempt, with the error, at warn as Java's Sender.
        log::warn!(
            "retrying a batch of {} records to {}-{} in {wait:?} ({} attempts left): {code}",
            b.count(),
            self.parts[part].topic,
            self.parts[part].partition,
            self.config.retries.saturating_sub(b.attempts)
        );
        self.list_active(part);
        self.parts[part].requeue(b);
    }
}
