//! [`Handle`]: the application's side of a running producer (either driver),
//! and the [`DeliveryFuture`] a send returns.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{Promise, Reply, Shared, Slot, Waiter};
use super::{DeliveryResult, Error};
use crate::producer::txn::{GroupOffsets, TxnCall, TxnError};
use crate::producer::{Producer as Core, ProducerRecord, RecordId, SendError};

/// The handle of one record sent with [`Handle::send`]: wait for its outcome,
/// or drop it (fire-and-forget: the record is still delivered).
pub struct DeliveryFuture {
    pub(super) slot: Arc<Slot<DeliveryResult>>,
    pub(super) id: RecordId,
    pub(super) shared: Arc<Shared>,
    pub(super) expedited: bool,
    pub(super) done: bool,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("id", &self.id)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl DeliveryFuture {
    /// Blocks until the record's outcome (a synchronous send: its batch skips `linger.ms`).
    pub fn wait(mut self) -> DeliveryResult {
        self.expedite();
        self.done = true;
        self.slot.take(None).unwrap_or(Err(Error::Closed))
    }

    /// Waits up to `timeout` (skipping linger); `Err(Error::Timeout)` when the
    /// outcome is not there yet (call again). The outcome is returned once;
    /// later calls give `Err(Error::Closed)`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> DeliveryResult {
        if self.done {
            return Err(Error::Closed);
        }
        self.expedite();
        match self.slot.take(Some(Instant::now() + timeout)) {
            Some(r) => {
                self.done = true;
                r
            }
            None => Err(Error::Timeout),
        }
    }

    /// The outcome if it is already there, without waiting or expediting.
    pub fn try_result(&mut self) -> Option<DeliveryResult> {
        if self.done {
            return None;
        }
        let r = self.slot.take(Some(Instant::now()));
        self.done = r.is_some();
        r
    }

    pub(super) fn expedite(&mut self) {
        if !self.expedited {
            self.expedited = true;
            self.shared.command(|core, now| core.expedite(self.id, now));
        }
    }
}

/// How a send treats a full `buffer.memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Wait up to `max.block.ms` for memory.
    Block,
    /// Refuse at once.
    Try,
}

/// A cheap, cloneable, thread-safe handle to a running producer (either driver).
#[derive(Clone)]
pub struct Handle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// Sends a record and returns a handle on its outcome; blocks up to
    /// `max.block.ms` while `buffer.memory` is full. Dropping the handle is
    /// fire-and-forget.
    pub fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.send_future(record, Mode::Block)
    }

    /// Sends a record; `callback` runs on a driver thread with its outcome
    /// (an asynchronous send; see [`Callback`](super::Callback)). Blocks like [`Handle::send`] while memory is full.
    pub fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(DeliveryResult) + Send + 'static,
    ) -> Result<(), Error> {
        self.submit(
            record,
            Some(Reply::Callback(Box::new(callback))),
            Mode::Block,
        )
        .map(drop)
    }

    /// Sends a record whose outcome goes to the listener set with
    /// [`Handle::on_delivery`], with `tag` (an asynchronous send that
    /// allocates nothing per record, like librdkafka's per-message opaque).
    /// Blocks like [`Handle::send`] while memory is full. Without a listener
    /// the record is refused with [`Error::NoListener`].
    pub fn send_with_tag(&self, record: ProducerRecord, tag: u64) -> Result<(), Error> {
        self.submit(record, Some(Reply::Tag(tag)), Mode::Block)
            .map(drop)
    }

    /// Sets the listener of records sent with [`Handle::send_with_tag`]
    /// (replacing an earlier one); set it before sending them.
    pub fn on_delivery(&self, listener: impl Fn(u64, &DeliveryResult) + Send + Sync + 'static) {
        self.shared.lock().listener = Some(Arc::new(listener));
    }

    /// Sets the function that hears librdkafka-style statistics JSON every
    /// `statistics.interval.ms` (replacing an earlier one); it runs on a
    /// driver thread, with a [`Callback`](super::Callback)'s rules. See
    /// [`Producer::statistics_json`](crate::producer::Producer::statistics_json).
    #[cfg(feature = "json")]
    pub fn on_statistics(&self, listener: impl Fn(&str) + Send + Sync + 'static) {
        self.shared.lock().statistics = Some(std::sync::Arc::new(listener));
    }

    /// Sends a record with no per-record bookkeeping at all; only errors
    /// before acceptance are reported. Blocks like [`Handle::send`].
    pub fn send_and_forget(&self, record: ProducerRecord) -> Result<(), Error> {
        self.submit(record, None, Mode::Block).map(drop)
    }

    /// Like [`Handle::send`] but never blocks for memory: a full buffer gives
    /// `Error::Send(SendError::BufferFull)` with the record.
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.send_future(record, Mode::Try)
    }

    pub(super) fn send_future(
        &self,
        record: ProducerRecord,
        mode: Mode,
    ) -> Result<DeliveryFuture, Error> {
        let slot = Slot::new();
        let id = self.submit(record, Some(Reply::Future(slot.clone())), mode)?;
        Ok(DeliveryFuture {
            slot,
            id,
            shared: self.shared.clone(),
            expedited: false,
            done: false,
        })
    }

    /// Appends the record to the core under the lock, in this thread;
    /// waits for memory (`Mode::Block`) up to `max.block.ms`.
    pub(super) fn submit(
        &self,
        mut record: ProducerRecord,
        reply: Option<Reply>,
        mode: Mode,
    ) -> Result<RecordId, Error> {
        let s = &*self.shared;
        if s.closing.load(Ordering::Acquire) {
            return Err(SendError::Closed(Box::new(record)).into());
        }
        let mut deadline: Option<Instant> = None;
        // The clock is read outside the lock, which senders and the loop share.
        let mut now = Instant::now();
        let mut g = s.lock_spinning();
        if matches!(reply, Some(Reply::Tag(_))) && g.listener.is_none() {
            return Err(Error::NoListener(Box::new(record)));
        }
        loop {
            match g.core.send(record, now) {
                Ok(id) => {
                    if let Some(r) = reply {
                        g.waiters.insert(id.0, Waiter(Some(r)));
                    }
                    let wake = g.core.needs_poll() && g.command_turn(now);
                    drop(g);
                    if wake {
                        s.wake.kick();
                    }
                    return Ok(id);
                }
                Err(SendError::BufferFull {
                    record: r,
                    buffered,
                    limit,
                }) if mode == Mode::Block => {
                    let d = *deadline.get_or_insert(now + s.max_block);
                    if s.closing.load(Ordering::Acquire) || g.finished {
                        return Err(SendError::Closed(r).into());
                    }
                    if now >= d {
                        return Err(SendError::BufferFull {
                            record: r,
                            buffered,
                            limit,
                        }
                        .into());
                    }
                    record = *r;
                    // The loop frees memory as batches complete and signals `room`.
                    let waiting = s.blocked.fetch_add(1, Ordering::SeqCst) + 1;
                    g.core.set_waiting_threads(waiting);
                    g = s
                        .room
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    let waiting = s.blocked.fetch_sub(1, Ordering::SeqCst) - 1;
                    let waited = now;
                    now = Instant::now();
                    // The core keeps `waiting-threads` and `bufferpool-wait-time-ns-total`.
                    g.core.set_waiting_threads(waiting);
                    g.core.record_buffer_wait(now - waited);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Blocks until every record sent (through any handle) before this call has its outcome.
    pub fn flush(&self) -> Result<(), Error> {
        self.flush_inner(None)
    }

    /// Like [`Handle::flush`], giving up with `Error::Timeout` after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.flush_inner(Some(Instant::now() + timeout))
    }

    pub(super) fn flush_inner(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let slot = Slot::new();
        {
            let mut g = self.shared.lock();
            if g.finished {
                return Ok(());
            }
            let token = g.core.flush(Instant::now());
            if g.core.is_flushed(token) && !g.delivering {
                return Ok(());
            }
            g.flushes.push((token, Promise(Some(slot.clone()))));
        }
        self.shared.wake.kick();
        match slot.take(deadline) {
            Some(Err(Error::Closed)) => Ok(()),
            Some(r) => r,
            None => Err(Error::Timeout),
        }
    }

    /// Stops accepting records (senders blocked for memory give up with
    /// `Closed`), waits up to `timeout` for the outstanding ones, then aborts
    /// the rest (they fail with `Aborted`/`UnknownOutcome`).
    /// `Err(Error::Timeout)` when the abort was needed.
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        let s = &*self.shared;
        s.closing.store(true, Ordering::Release);
        let slot = Slot::new();
        {
            let mut g = s.lock();
            s.room.notify_all();
            if g.finished {
                return Ok(());
            }
            g.core.close(Instant::now());
            g.closes.push(Promise(Some(slot.clone())));
        }
        s.wake.kick();
        match slot.take(Some(Instant::now() + timeout)) {
            Some(_) => Ok(()),
            None => {
                s.command(|core, now| core.abort(now));
                // Abort completes every record at once; wait a little for the loop.
                let _ = slot.take(Some(Instant::now() + Duration::from_secs(5)));
                Err(Error::Timeout)
            }
        }
    }

    /// Obtains the producer id for `transactional.id` (fencing an earlier
    /// producer with the same id); waits up to `timeout`.
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), Error> {
        self.txn_call(TxnCall::InitTransactions, timeout, |core, now| {
            core.init_transactions(now)
        })
    }

    /// Opens a transaction (no request is sent).
    pub fn begin_transaction(&self) -> Result<(), Error> {
        let r = self.shared.command(|core, now| core.begin_transaction(now));
        Ok(r?)
    }

    /// Commits `offsets` of a consumer group with the open transaction;
    /// waits up to `timeout`.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: GroupOffsets,
        timeout: Duration,
    ) -> Result<(), Error> {
        let mut offsets = Some(offsets);
        self.txn_call(TxnCall::SendOffsets, timeout, move |core, now| {
            core.send_offsets_to_transaction(offsets.take().expect("called once"), now)
        })
    }

    /// Flushes, then commits the open transaction; waits up to `timeout`.
    /// Fails when any record of the transaction failed (abort it then).
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), Error> {
        self.txn_call(TxnCall::Commit, timeout, |core, now| {
            core.commit_transaction(now)
        })
    }

    /// Aborts the open transaction (its unsent records fail with
    /// `TransactionAborted`); waits up to `timeout`.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), Error> {
        self.txn_call(TxnCall::Abort, timeout, |core, now| {
            core.abort_transaction(now)
        })
    }

    /// Fails every record not sent yet with
    /// [`DeliveryError::Purged`](crate::producer::DeliveryError::Purged);
    /// the producer stays open.
    pub fn purge(&self) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.finished {
            return Err(Error::Closed);
        }
        g.core.purge(Instant::now());
        drop(g);
        self.shared.wake.kick();
        Ok(())
    }

    /// Runs a transaction call on the core and waits up to `timeout` for
    /// its outcome. A call still running from an earlier, timed-out
    /// attempt is waited for again instead of refused.
    fn txn_call(
        &self,
        call: TxnCall,
        timeout: Duration,
        f: impl FnOnce(&mut Core, Instant) -> Result<(), TxnError>,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let slot = Slot::new();
        {
            let mut g = self.shared.lock();
            if g.finished {
                return Err(Error::Closed);
            }
            match f(&mut g.core, Instant::now()) {
                Ok(()) => {}
                Err(TxnError::Pending { pending, .. }) if pending == call => {}
                Err(e) => return Err(e.into()),
            }
            g.txn_calls.push((call, Promise(Some(slot.clone()))));
        }
        self.shared.wake.kick();
        slot.take(Some(deadline))
            .unwrap_or(Err(Error::TransactionTimeout { call }))
    }

    /// A snapshot of the core's counters (requests, batches, retries), as
    /// Java's `producer.metrics()` gives them.
    pub fn metrics(&self) -> crate::producer::Metrics {
        self.shared.lock().core.metrics().clone()
    }

    /// Java's producer metrics now, by group, name and tags
    /// ([`Producer::metrics_snapshot`](crate::producer::Producer::metrics_snapshot)).
    pub fn metrics_snapshot(&self) -> Vec<crate::producer::Metric> {
        let now = Instant::now();
        self.shared.lock().core.metrics_snapshot(now)
    }

    /// True once the producer's loop finished closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}
