//! The loop's side of the shared state: one turn of the core under the lock,
//! and the outcomes fanned out to their waiters after it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::direct::{Direct, LOOP_RECHECK};
use super::engine::{Engine, Promise, Reply, Shared, Waiter, Waiters};
use super::{
    lock, queue, seeded, unix_ms, DeliveryResult, Error, Handle, Listener, StatisticsListener, Wake,
};
use crate::producer::{Event, Producer as Core, ProducerConfig, RecordMetadata, Transmit};

/// The loop's end of the shared state: it makes a producer, applies IO under
/// the lock, and carries out outputs (transmits, callbacks) outside it.
/// Dropping it marks the producer closed.
pub(super) struct LoopSide {
    pub(super) shared: Arc<Shared>,
    /// Batch outcomes and their records' waiters, taken under the lock and
    /// delivered after it is released: the per-record work is done outside
    /// the lock that senders wait for.
    pub(super) taken: Vec<Taken>,
    /// Waiters left when the producer closed (they get `Error::Closed`).
    pub(super) orphans: Vec<Waiter>,
    /// Emptied waiter lists, reused (no allocation per batch once warm).
    pub(super) spare: Vec<Vec<Option<Waiter>>>,
    /// Flushes and closes that completed, resolved after the outcomes: as in
    /// Java, a flush returns once the callbacks of its records have run.
    pub(super) completed: Vec<Promise<()>>,
    /// `statistics.interval.ms` (zero: never), and when the next statistics are due.
    pub(super) statistics_every: Duration,
    pub(super) statistics_due: Option<Instant>,
}

/// A batch's outcome with the waiters of its records: `waiters[i]` waits on
/// the event's `i`-th record (in the order of its ids), `None` when nobody does.
pub(super) struct Taken {
    pub(super) event: Event,
    pub(super) waiters: Vec<Option<Waiter>>,
}

impl LoopSide {
    /// A producer and the queue of its loop, which carries the driver's own
    /// IO news, `M`, from its helper threads.
    #[allow(clippy::type_complexity)]
    pub(super) fn new<M: Send + 'static>(
        config: ProducerConfig,
        waker: Option<Arc<dyn Wake>>,
    ) -> Result<(LoopSide, Handle, queue::Sender<M>, queue::Receiver<M>), Error> {
        let max_block = config.max_block;
        let statistics_every = config.statistics_interval;
        let now = Instant::now();
        let core = Core::new(seeded(config), now, unix_ms())?;
        let (tx, rx) = queue::queue(waker);
        let shared = Arc::new(Shared {
            engine: Mutex::new(Engine {
                core,
                waiters: Waiters::default(),
                flushes: Vec::new(),
                closes: Vec::new(),
                txn_calls: Vec::new(),
                listener: None,
                statistics: None,
                delivering: false,
                finished: false,
                direct: Direct::default(),
            }),
            room: Condvar::new(),
            blocked: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wake: tx.kicker(),
            max_block,
        });
        let handle = Handle {
            shared: shared.clone(),
        };
        Ok((
            LoopSide {
                shared,
                taken: Vec::new(),
                orphans: Vec::new(),
                spare: Vec::new(),
                completed: Vec::new(),
                statistics_every,
                statistics_due: (!statistics_every.is_zero()).then(|| now + statistics_every),
            },
            handle,
            tx,
            rx,
        ))
    }

    /// The engine, locked, for one IO input outside a turn (the next turn polls).
    #[cfg_attr(not(feature = "mio-driver"), allow(dead_code))]
    pub(super) fn lock(&self) -> MutexGuard<'_, Engine> {
        self.shared.lock()
    }

    /// True once the core emitted `Closed`.
    pub(super) fn finished(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// One turn of the loop: under the lock, `inputs` applies IO news to the
    /// core (and adds or removes the connections sending threads may write
    /// to), then the core's outputs are drained (transmits to `out`, after
    /// what a sending thread left to the loop). Outcomes are delivered to
    /// their waiters after the lock is released. Returns when the next turn
    /// is due: the core's next deadline, at most [`LOOP_RECHECK`] ahead.
    pub(super) fn turn(
        &mut self,
        out: &mut Vec<Transmit>,
        inputs: impl FnOnce(&mut Core, &mut Direct, Instant),
    ) -> Option<Instant> {
        // Clocks read before the lock, which senders wait for.
        let now = Instant::now();
        let wall = unix_ms();
        let mut g = lock(&self.shared.engine);
        let e = &mut *g;
        // What a sending thread left to the loop goes first: it was taken
        // from the core before anything this turn takes.
        while let Some(t) = e.direct.handoff.pop_front() {
            if let Transmit::Close { conn } = t {
                e.direct.remove(conn);
            }
            out.push(t);
        }
        e.core.handle_wall_clock(now, wall);
        inputs(&mut e.core, &mut e.direct, now);
        let mut freed = false;
        loop {
            while let Some(t) = g.core.poll_transmit(now) {
                g.direct.loop_took(&t);
                out.push(t);
            }
            let mut any = false;
            while let Some(ev) = g.core.poll_event() {
                any = true;
                g.on_event(
                    ev,
                    &mut self.taken,
                    &mut self.spare,
                    &mut self.orphans,
                    &mut self.completed,
                );
            }
            freed |= any;
            if !any {
                break;
            }
        }
        if !g.flushes.is_empty() {
            g.progress_flushes(&mut self.completed);
        }
        let mut timeout = g.core.poll_timeout();
        let statistics =
            due_statistics(&mut self.statistics_due, self.statistics_every, &mut g, now);
        if let Some(due) = self.statistics_due {
            timeout = Some(timeout.map_or(due, |t| t.min(due)));
        }
        // The loop sleeps at most LOOP_RECHECK: sending threads then need not
        // wake it for a deadline beyond that (see `Direct::turn`).
        let recheck = now + LOOP_RECHECK;
        let timeout = Some(timeout.map_or(recheck, |t| t.min(recheck)));
        g.direct.loop_wakes = timeout;
        let delivering = !self.taken.is_empty() || !self.orphans.is_empty();
        g.delivering = delivering;
        let listener = if delivering { g.listener.clone() } else { None };
        if g.finished {
            self.shared.closed.store(true, Ordering::Release);
        }
        if (freed || g.finished) && self.shared.blocked.load(Ordering::SeqCst) > 0 {
            // The core says when freed memory is worth a wake-up.
            if g.finished || g.core.has_room_for_blocked_senders() {
                // A sender that found no room counted itself in `blocked`
                // under this lock before waiting on `room`: it hears this.
                self.shared.room.notify_all();
            }
        }
        drop(g);
        for t in self.taken.drain(..) {
            let mut waiters = t.waiters;
            deliver(t.event, &mut waiters, listener.as_ref());
            waiters.clear();
            self.spare.push(waiters);
        }
        for w in self.orphans.drain(..) {
            w.resolve(Err(Error::Closed), listener.as_ref());
        }
        for p in self.completed.drain(..) {
            p.resolve(Ok(()));
        }
        if let Some((listener, json)) = statistics {
            listener(&json);
        }
        timeout
    }
}

/// The statistics JSON and its listener when they are `due` at `now` (built
/// under the lock, heard after it); schedules the next, `every` later.
fn due_statistics(
    due: &mut Option<Instant>,
    every: Duration,
    g: &mut Engine,
    now: Instant,
) -> Option<(StatisticsListener, String)> {
    if g.finished {
        // Closed: nothing more to report, and no more wake-ups for it.
        *due = None;
        return None;
    }
    let at = due.filter(|d| now >= *d)?;
    // On the interval's grid; after a stall, the next is an interval on.
    let next = at + every;
    *due = Some(if next > now { next } else { now + every });
    let listener = g.statistics.clone()?;
    #[cfg(feature = "json")]
    return Some((listener, g.core.statistics_json(now)));
    // Without the feature a producer with an interval is refused.
    #[cfg(not(feature = "json"))]
    {
        drop(listener);
        None
    }
}

/// Hands a batch's outcome to the waiters of its records (outside the lock).
/// Tagged records share one result, lent to the listener with each record's
/// offset and timestamp filled in.
pub(super) fn deliver(event: Event, waiters: &mut [Option<Waiter>], listener: Option<&Listener>) {
    match event {
        Event::Delivered(d) => {
            let md = |offset, timestamp| RecordMetadata {
                topic: d.topic.clone(),
                partition: d.partition,
                offset,
                timestamp,
            };
            let mut lent: Option<DeliveryResult> = None;
            for (w, (_, offset, timestamp)) in waiters.iter_mut().zip(d.offsets()) {
                let Some(mut w) = w.take() else { continue };
                match w.0.take() {
                    Some(Reply::Tag(tag)) => {
                        let r = lent.get_or_insert_with(|| Ok(md(offset, timestamp)));
                        if let Ok(m) = r {
                            m.offset = offset;
                            m.timestamp = timestamp;
                        }
                        // Set, as in `Waiter::resolve`.
                        if let Some(l) = listener {
                            l(tag, r);
                        }
                    }
                    reply => Waiter(reply).resolve(Ok(md(offset, timestamp)), listener),
                }
            }
        }
        Event::Failed(f) => {
            for w in waiters.iter_mut().filter_map(Option::take) {
                w.resolve(Err(Error::Delivery(f.error.clone())), listener);
            }
        }
        Event::Closed | Event::Transaction(_) => {}
    }
}

impl Drop for LoopSide {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}
