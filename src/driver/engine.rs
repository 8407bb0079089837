//! The state shared by application threads and the loop: the engine (the
//! core and the records' waiters, behind one lock), the one-shot slots a
//! waiter is resolved through, and the lock discipline around them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::direct::Direct;
use super::loop_side::Taken;
use super::{lock, queue, Callback, DeliveryResult, Error, Listener, StatisticsListener};
use crate::producer::txn::TxnCall;
use crate::producer::{Event, FlushToken, Producer as Core};

/// A value set once by the loop and awaited by an application thread.
pub(super) struct Slot<T> {
    pub(super) value: Mutex<Option<T>>,
    pub(super) ready: Condvar,
}

impl<T> Slot<T> {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Slot {
            value: Mutex::new(None),
            ready: Condvar::new(),
        })
    }

    pub(super) fn set(&self, v: T) {
        let mut g = lock(&self.value);
        if g.is_none() {
            *g = Some(v);
            self.ready.notify_all();
        }
    }

    /// Takes the value, waiting until `deadline` (forever when `None`).
    pub(super) fn take(&self, deadline: Option<Instant>) -> Option<T> {
        let mut g = lock(&self.value);
        loop {
            if let Some(v) = g.take() {
                return Some(v);
            }
            match deadline {
                None => g = self.ready.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    g = self
                        .ready
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// The loop's end of a slot: resolving it twice is a no-op, dropping it
/// unresolved resolves it with [`Error::Closed`], so no waiter can hang.
pub(super) struct Promise<T>(pub(super) Option<Arc<Slot<Result<T, Error>>>>);

impl<T> Promise<T> {
    pub(super) fn resolve(mut self, v: Result<T, Error>) {
        if let Some(s) = self.0.take() {
            s.set(v);
        }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.set(Err(Error::Closed));
        }
    }
}

/// Who hears a record's outcome.
pub(super) enum Reply {
    Future(Arc<Slot<DeliveryResult>>),
    Callback(Callback),
    /// The listener, with this tag: nothing allocated per record.
    Tag(u64),
}

/// A reply the loop owes; dropped unresolved, it resolves with `Error::Closed`
/// (a tagged one is resolved by whoever holds the listener, see [`Shared::shutdown`]).
pub(super) struct Waiter(pub(super) Option<Reply>);

impl Waiter {
    pub(super) fn resolve(mut self, r: DeliveryResult, listener: Option<&Listener>) {
        match self.0.take() {
            Some(Reply::Future(s)) => s.set(r),
            Some(Reply::Callback(cb)) => cb(r),
            // Always set: tagged sends are refused until a listener is, and
            // a listener is only ever replaced.
            Some(Reply::Tag(tag)) => {
                if let Some(l) = listener {
                    l(tag, &r);
                }
            }
            None => {}
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.0.is_some() {
            Waiter(self.0.take()).resolve(Err(Error::Closed), None);
        }
    }
}

/// The core and what fans its outcomes out, behind one lock. Application
/// threads append records in their own thread (as Java's `send` appends to
/// its accumulator): no hand-off of each record to the loop, whose work is
/// then per batch and per request, not per record.
pub(super) struct Engine {
    pub(super) core: Core,
    /// Waiters by record id (only records someone waits on).
    pub(super) waiters: Waiters,
    /// Flushes waiting for their token.
    pub(super) flushes: Vec<(FlushToken, Promise<()>)>,
    pub(super) closes: Vec<Promise<()>>,
    /// Transaction calls waiting for their outcome.
    pub(super) txn_calls: Vec<(TxnCall, Promise<()>)>,
    /// Hears tagged records' outcomes.
    pub(super) listener: Option<Listener>,
    /// Hears the statistics JSON every `statistics.interval.ms`.
    pub(super) statistics: Option<StatisticsListener>,
    /// The last turn took outcomes that the loop may still be delivering
    /// (outside the lock): a flush then waits for the next turn.
    pub(super) delivering: bool,
    /// The core emitted `Closed`, or the loop is gone.
    pub(super) finished: bool,
    /// The sockets sending threads may write to themselves.
    pub(super) direct: Direct,
}

/// Attempts a send makes at the engine's lock before it waits for it.
pub(super) const SEND_LOCK_SPINS: u32 = 2000;

/// State shared by the handles and the loop.
pub(super) struct Shared {
    pub(super) engine: Mutex<Engine>,
    /// Signalled when memory may have been freed, or on close: senders
    /// waiting for room re-check (paired with `engine`'s lock).
    pub(super) room: Condvar,
    /// Senders waiting on `room`: the loop signals only when some wait.
    pub(super) blocked: AtomicUsize,
    /// Set once `close` started: sends are refused.
    pub(super) closing: AtomicBool,
    /// Set once the loop finished.
    pub(super) closed: AtomicBool,
    /// Wakes the loop.
    pub(super) wake: queue::Kicker,
    pub(super) max_block: Duration,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    /// The lock for a send: the loop holds it for a turn of a few
    /// microseconds, shorter than parking and waking a thread costs, so a
    /// sender tries a while before it waits (std's mutex spins only briefly).
    pub(super) fn lock_spinning(&self) -> MutexGuard<'_, Engine> {
        for _ in 0..SEND_LOCK_SPINS {
            match self.engine.try_lock() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
            }
        }
        self.lock()
    }

    /// Runs a command on the core and wakes the loop when it has work.
    pub(super) fn command<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let now = Instant::now();
        let mut g = self.lock();
        let r = f(&mut g.core, now);
        let wake = g.core.needs_poll() && g.command_turn(now);
        drop(g);
        if wake {
            self.wake.kick();
        }
        r
    }

    /// Marks the loop gone: handles see the producer closed, waiters get
    /// `Error::Closed`, flushes and closes return, blocked senders wake.
    pub(super) fn shutdown(&self) {
        self.closing.store(true, Ordering::Release);
        let (waiters, flushes, closes, listener) = {
            let mut g = self.lock();
            g.finished = true;
            self.closed.store(true, Ordering::Release);
            // Dropped unresolved: the transaction calls get `Error::Closed`.
            g.txn_calls.clear();
            (
                std::mem::take(&mut g.waiters),
                std::mem::take(&mut g.flushes),
                std::mem::take(&mut g.closes),
                g.listener.clone(),
            )
        };
        self.room.notify_all();
        // Outside the lock: callbacks may call into a handle.
        for w in waiters.slots.into_iter().flatten() {
            w.resolve(Err(Error::Closed), listener.as_ref());
        }
        for (_, p) in flushes {
            p.resolve(Ok(()));
        }
        for p in closes {
            p.resolve(Ok(()));
        }
    }
}

/// Waiters of accepted records, by record id. Ids grow by one per accepted
/// record, so this is a window `[base, base + len)` over a ring buffer, not a
/// tree: insert and lookup are index arithmetic, and nothing is allocated per
/// record once the ring has grown to the number of records in flight.
#[derive(Default)]
pub(super) struct Waiters {
    pub(super) base: u64,
    pub(super) slots: VecDeque<Option<Waiter>>,
    /// Slots holding a waiter.
    pub(super) live: usize,
}

impl Waiters {
    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub(super) fn insert(&mut self, id: u64, w: Waiter) {
        if self.live == 0 {
            self.slots.clear();
            self.base = id;
        }
        if id < self.base {
            // Not expected (ids only grow); keep the window contiguous anyway.
            for _ in id..self.base {
                self.slots.push_front(None);
            }
            self.base = id;
        }
        let i = (id - self.base) as usize;
        while self.slots.len() <= i {
            self.slots.push_back(None);
        }
        if self.slots[i].replace(w).is_none() {
            self.live += 1;
        }
    }

    /// Moves the waiters of ids `start..start + n` to `out`, one entry per
    /// id (`None` where nobody waits). A batch's ids are usually the oldest
    /// waited on, at the ring's front: then the slots move out wholesale.
    pub(super) fn take_run(&mut self, start: u64, n: u32, out: &mut Vec<Option<Waiter>>) {
        let end = start + u64::from(n);
        let lo = start.max(self.base).min(end);
        let hi = end.min(self.base + self.slots.len() as u64).max(lo);
        out.extend((start..lo).map(|_| None));
        if lo < hi {
            let from = (lo - self.base) as usize;
            let to = (hi - self.base) as usize;
            let before = out.len();
            if from == 0 {
                out.extend(self.slots.drain(..to));
                self.base += to as u64;
            } else {
                out.extend(self.slots.range_mut(from..to).map(Option::take));
            }
            self.live -= out[before..].iter().filter(|w| w.is_some()).count();
        }
        out.extend((hi..end).map(|_| None));
        // Trim resolved slots at the front so the window only spans records
        // still waited on.
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

impl Engine {
    /// After a command that made output due: the sending thread's direct
    /// write (see [`Direct`]); true when the loop must be woken.
    pub(super) fn command_turn(&mut self, now: Instant) -> bool {
        let Engine { core, direct, .. } = self;
        direct.turn(core, now)
    }

    /// Resolves the flushes whose records all have their outcome.
    pub(super) fn progress_flushes(&mut self, completed: &mut Vec<Promise<()>>) {
        let mut i = 0;
        while i < self.flushes.len() {
            if self.core.is_flushed(self.flushes[i].0) || self.finished {
                let (_, p) = self.flushes.swap_remove(i);
                completed.push(p);
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn on_event(
        &mut self,
        ev: Event,
        taken: &mut Vec<Taken>,
        spare: &mut Vec<Vec<Option<Waiter>>>,
        orphans: &mut Vec<Waiter>,
        completed: &mut Vec<Promise<()>>,
    ) {
        match ev {
            Event::Delivered(_) | Event::Failed(_) => {
                if self.waiters.is_empty() {
                    if let Event::Failed(f) = &ev {
                        log::debug!(
                            "{} record(s) to {}-{} failed: {}",
                            f.records.len(),
                            f.topic,
                            f.partition,
                            f.error
                        );
                    }
                    return;
                }
                let records = match &ev {
                    Event::Delivered(d) => &d.records,
                    Event::Failed(f) => &f.records,
                    Event::Closed | Event::Transaction(_) => unreachable!("matched above"),
                };
                let mut waiters = spare.pop().unwrap_or_default();
                for &(start, n) in records.runs() {
                    self.waiters.take_run(start, n, &mut waiters);
                }
                taken.push(Taken { event: ev, waiters });
            }
            Event::Transaction(o) => {
                // Setting a slot runs no user code: resolved under the lock.
                let (done, waiting) = std::mem::take(&mut self.txn_calls)
                    .into_iter()
                    .partition(|(call, _)| *call == o.call);
                self.txn_calls = waiting;
                for (_, p) in done {
                    p.resolve(o.result.clone().map_err(Error::Transaction));
                }
            }
            Event::Closed => {
                self.finished = true;
                self.txn_calls.clear();
                completed.append(&mut self.closes);
                completed.extend(self.flushes.drain(..).map(|(_, p)| p));
                // Every record has had its event; anything left never will.
                orphans.extend(
                    std::mem::take(&mut self.waiters)
                        .slots
                        .into_iter()
                        .flatten(),
                );
            }
        }
    }
}
