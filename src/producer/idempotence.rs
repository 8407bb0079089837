//! Idempotence: the producer id and epoch (InitProducerId), sequence
//! errors, and KIP-360 epoch bumps.

use std::time::Instant;

use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};

use super::accumulator::Batch;
use super::connection::RequestKind;
use super::record::DeliveryError;
use super::{error_of, ConnId, Producer};

/// Producer id and epoch state (idempotence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PidState {
    /// Idempotence is off.
    Disabled,
    /// InitProducerId must be sent (or is in flight).
    Unknown {
        in_flight: bool,
        retry_at: Option<Instant>,
    },
    /// Known and in use.
    Ready { id: i64, epoch: i16 },
    /// An epoch bump is needed once nothing is in flight (KIP-360).
    NeedsBump { id: i64, epoch: i16 },
    /// Transactional: the transaction manager obtains the id and epoch
    /// (InitProducerId with the transactional id); none yet.
    Transactional,
}

/// The idempotent producer's state.
#[derive(Debug)]
pub(super) struct Idempotence {
    /// Producer id and epoch.
    pub pid: PidState,
    /// Failed InitProducerId attempts in a row, for the retry backoff.
    pub attempts: u32,
}

impl Idempotence {
    /// Before the first InitProducerId, or `Disabled`; `Transactional`
    /// when the transaction manager owns the producer id.
    pub fn new(enabled: bool, transactional: bool) -> Self {
        let pid = if transactional {
            PidState::Transactional
        } else if enabled {
            PidState::Unknown {
                in_flight: false,
                retry_at: None,
            }
        } else {
            PidState::Disabled
        };
        Idempotence { pid, attempts: 0 }
    }
}

impl Producer {
    /// Sends InitProducerId on `conn` (a fresh id, or a new epoch after an exhausted one).
    pub(crate) fn send_init_producer_id(&mut self, conn: ConnId, now: Instant) {
        let Some(version) = self.net.conns[&conn].version(ApiKey::InitProducerId) else {
            // A broker without InitProducerId cannot do idempotence.
            self.set_fatal(ErrorCode::UnsupportedVersion);
            return;
        };
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        if self.send_request(conn, version, &req, RequestKind::InitProducerId, now) {
            self.idempotence.pid = PidState::Unknown {
                in_flight: true,
                retry_at: None,
            };
        }
    }

    pub(super) fn on_init_producer_id(&mut self, resp: InitProducerIdResponse, now: Instant) {
        match error_of(resp.error_code) {
            None => {
                self.idempotence.attempts = 0;
                self.idempotence.pid = PidState::Ready {
                    id: resp.producer_id,
                    epoch: resp.producer_epoch,
                };
                for p in &mut self.parts {
                    p.next_seq = 0;
                    p.acked_in_epoch = false;
                }
            }
            Some(c) if c.is_retriable() || matches!(c, ErrorCode::CoordinatorLoadInProgress) => {
                self.idempotence.attempts += 1;
                let wait = self.backoff(self.idempotence.attempts);
                self.idempotence.pid = PidState::Unknown {
                    in_flight: false,
                    retry_at: Some(now + wait),
                };
            }
            Some(c) => self.set_fatal(c),
        }
    }

    /// KIP-360: once nothing is in flight, bump the epoch locally and restart
    /// sequences at 0. Batches that may already be in the log cannot be sent
    /// again under the new epoch without risking a duplicate: they fail with
    /// `UnknownOutcome` instead.
    pub(super) fn maybe_bump_epoch(&mut self, _now: Instant) {
        let PidState::NeedsBump { id, epoch } = self.idempotence.pid else {
            return;
        };
        if self.in_flight_batches > 0 {
            return;
        }
        self.metrics.epoch_bumps += 1;
        if epoch == i16::MAX {
            self.idempotence.pid = PidState::Unknown {
                in_flight: false,
                retry_at: None,
            };
        } else {
            self.idempotence.pid = PidState::Ready {
                id,
                epoch: epoch + 1,
            };
        }
        log::info!("bumping producer epoch of {id} from {epoch}");
        for i in 0..self.parts.len() {
            self.parts[i].next_seq = 0;
            self.parts[i].acked_in_epoch = false;
            let queue = std::mem::take(&mut self.parts[i].queue);
            for mut b in queue {
                if b.maybe_persisted {
                    self.parts[i].queued_records -= b.count();
                    self.fail_batch(b, DeliveryError::UnknownOutcome);
                } else {
                    b.sequenced = false;
                    self.parts[i].queue.push_back(b);
                }
            }
        }
    }

    /// OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID: the broker did not
    /// append the batch. If an older batch of the partition is still
    /// unresolved, that one explains the gap: retry in order. Otherwise the
    /// broker's idea of our sequence is gone for good: bump the epoch (KIP-360).
    pub(super) fn on_sequence_error(&mut self, b: Batch, code: ErrorCode, now: Instant) {
        let part = b.part;
        let older_pending = self.older_in_flight(part, b.order)
            || self.parts[part]
                .queue
                .iter()
                .any(|h| h.attempts > 0 && h.order < b.order);
        if !older_pending {
            if let PidState::Ready { id, epoch } = self.idempotence.pid {
                let p = &self.parts[part];
                log::warn!(
                    "{code} on {}-{}: producer epoch bump needed",
                    p.topic,
                    p.partition
                );
                self.idempotence.pid = PidState::NeedsBump { id, epoch };
            }
        }
        self.retry_or_fail(b, code, None, now);
    }

    /// True when a batch of partition `part` older than `order` is in flight.
    fn older_in_flight(&self, part: usize, order: u64) -> bool {
        self.in_flight_batches_iter()
            .any(|x| x.part == part && x.order < order)
    }
}
