//! The core's deadlines: one slot per kind of timer (as quinn-proto's
//! `TimerTable`), each kept by the concern it belongs to, and the next one
//! for `poll_timeout`.
//!
//! A slot holds the earliest deadline of its kind. The kinds that stand for
//! many deadlines (every batch's, every connection's) are armed at the end
//! of each turn from their concern's own `*_deadline`; a kind with a single
//! deadline is set where that deadline is decided.

use std::time::Instant;

use super::idempotence::PidState;
use super::Producer;

/// A kind of deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Metadata may be asked again after a failed attempt's backoff.
    MetadataRetry,
    /// Metadata wanted this long without a usable answer rebootstraps
    /// (`metadata.recovery.rebootstrap.trigger.ms`).
    Rebootstrap,
    /// The cluster view is refreshed at `metadata.max.age.ms`.
    MetadataAge,
    /// InitProducerId may be asked again after its backoff.
    ProducerIdRetry,
    /// The earliest of the batches' linger, delivery timeout and retry backoff.
    Batches,
    /// The earliest of the connections' request and connect timeouts and throttles.
    Connections,
    /// Records waiting for their topic's metadata reach `max.block.ms`.
    MaxBlock,
    /// A reconnect backoff ends while records wait.
    Reconnect,
    /// A transaction request's backoff ends.
    Transaction,
}

impl Timer {
    /// Slots in a table: the last kind's index, plus one.
    const COUNT: usize = Timer::Transaction as usize + 1;

    fn index(self) -> usize {
        self as usize
    }
}

/// The earliest deadline of each kind.
#[derive(Debug, Clone, Default)]
pub(super) struct TimerTable {
    data: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// Sets (`Some`) or stops (`None`) the timer.
    pub fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.data[timer.index()] = at;
    }

    /// The timer's deadline, if it runs.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer.index()]
    }

    /// The earliest deadline after `now`: what is due at `now` was handled
    /// by the turn, or waits for an input (an answer, a connection) that
    /// starts another.
    pub fn next_after(&self, now: Instant) -> Option<Instant> {
        earliest(now, self.data.iter().flatten().copied())
    }
}

/// The earliest of `deadlines` after `now`.
pub(super) fn earliest(now: Instant, deadlines: impl Iterator<Item = Instant>) -> Option<Instant> {
    deadlines.filter(|&t| t > now).min()
}

impl Producer {
    /// Arms the timers that stand for many deadlines, and those derived from
    /// state other concerns keep, for the turn that just ran at `now`.
    pub(super) fn arm_timers(&mut self, now: Instant) {
        let rebootstrap = self
            .cluster
            .metadata_wanted_since
            .and_then(|s| self.rebootstrap_trigger(s));
        let age = self
            .cluster
            .metadata_last
            .filter(|_| !self.topics.is_empty())
            .map(|t| t + self.config.metadata_max_age);
        let pid = match self.idempotence.pid {
            PidState::Unknown { retry_at, .. } => retry_at,
            _ => None,
        };
        let batches = self.batches_deadline(now);
        let connections = self.connections_deadline(now);
        let max_block = self.max_block_deadline(now);
        let reconnect = self.reconnect_deadline(now);
        let txn = self.txn_deadline(now);
        let t = &mut self.timers;
        t.set(Timer::Rebootstrap, rebootstrap);
        t.set(Timer::MetadataAge, age);
        t.set(Timer::ProducerIdRetry, pid);
        t.set(Timer::Batches, batches);
        t.set(Timer::Connections, connections);
        t.set(Timer::MaxBlock, max_block);
        t.set(Timer::Reconnect, reconnect);
        t.set(Timer::Transaction, txn);
    }
}
