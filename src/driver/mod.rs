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
#[cfg(feature = "mio-driver")]
pub mod mio;
mod queue;
pub mod typed;

pub use typed::{RecordPart, TypedProducer, TypedRecord};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::producer::{
    ConfigError, DeliveryError, Event, FlushToken, Producer as Core, ProducerConfig,
    ProducerRecord, RecordId, RecordMetadata, SendError, Transmit,
};

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

// ---- one-shot slots -----------------------------------------------------------

/// A value set once by the loop and awaited by an application thread.
struct Slot<T> {
    value: Mutex<Option<T>>,
    ready: Condvar,
}

impl<T> Slot<T> {
    fn new() -> Arc<Self> {
        Arc::new(Slot {
            value: Mutex::new(None),
            ready: Condvar::new(),
        })
    }

    fn set(&self, v: T) {
        let mut g = lock(&self.value);
        if g.is_none() {
            *g = Some(v);
            self.ready.notify_all();
        }
    }

    /// Takes the value, waiting until `deadline` (forever when `None`).
    fn take(&self, deadline: Option<Instant>) -> Option<T> {
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The loop's end of a slot: resolving it twice is a no-op, dropping it
/// unresolved resolves it with [`Error::Closed`], so no waiter can hang.
struct Promise<T>(Option<Arc<Slot<Result<T, Error>>>>);

impl<T> Promise<T> {
    fn resolve(mut self, v: Result<T, Error>) {
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

/// The producer-wide function that hears the outcomes of records sent with
/// [`Handle::send_with_tag`], each with its tag; it runs where a [`Callback`]
/// runs, with the same rules.
/// The outcome is lent, not given: the loop reuses one per batch, so a
/// listener allocates and counts nothing per record unless it keeps a copy.
pub type Listener = Arc<dyn Fn(u64, &DeliveryResult) + Send + Sync + 'static>;

/// Who hears a record's outcome.
enum Reply {
    Future(Arc<Slot<DeliveryResult>>),
    Callback(Callback),
    /// The listener, with this tag: nothing allocated per record.
    Tag(u64),
}

/// A reply the loop owes; dropped unresolved, it resolves with `Error::Closed`
/// (a tagged one is resolved by whoever holds the listener, see [`Shared::shutdown`]).
struct Waiter(Option<Reply>);

impl Waiter {
    fn resolve(mut self, r: DeliveryResult, listener: Option<&Listener>) {
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

/// The handle of one record sent with [`Handle::send`]: wait for its outcome,
/// or drop it (fire-and-forget: the record is still delivered).
pub struct DeliveryFuture {
    slot: Arc<Slot<DeliveryResult>>,
    id: RecordId,
    shared: Arc<Shared>,
    expedited: bool,
    done: bool,
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

    fn expedite(&mut self) {
        if !self.expedited {
            self.expedited = true;
            self.shared.command(|core, now| core.expedite(self.id, now));
        }
    }
}

// ---- state shared by application threads and the loop -------------------------------

/// How a send treats a full `buffer.memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Wait up to `max.block.ms` for memory.
    Block,
    /// Refuse at once.
    Try,
}

/// How the loop is woken when there is work for it.
trait Wake: Send + Sync {
    fn wake(&self);
}

/// IO news from helper threads (readers, writers, connectors, resolvers).
enum IoMsg {
    /// Blocking driver: connected; the stream to write to.
    Connected(crate::producer::ConnId, std::net::TcpStream),
    /// Blocking driver: bytes read.
    Data(crate::producer::ConnId, Vec<u8>),
    /// Blocking driver: the writer thread wrote this many bytes.
    Written(crate::producer::ConnId, usize),
    /// Connect failed, or the peer closed, or reading failed.
    Disconnected(crate::producer::ConnId),
    /// mio driver: a name resolved.
    #[cfg_attr(not(feature = "mio-driver"), allow(dead_code))]
    Resolved(crate::producer::ConnId, Vec<std::net::SocketAddr>),
}

/// The core and what fans its outcomes out, behind one lock. Application
/// threads append records in their own thread (as Java's `send` appends to
/// its accumulator): no hand-off of each record to the loop, whose work is
/// then per batch and per request, not per record.
struct Engine {
    core: Core,
    /// Waiters by record id (only records someone waits on).
    waiters: Waiters,
    /// Flushes waiting for their token.
    flushes: Vec<(FlushToken, Promise<()>)>,
    closes: Vec<Promise<()>>,
    /// Hears tagged records' outcomes.
    listener: Option<Listener>,
    /// The last turn took outcomes that the loop may still be delivering
    /// (outside the lock): a flush then waits for the next turn.
    delivering: bool,
    /// The core emitted `Closed`, or the loop is gone.
    finished: bool,
}

/// Attempts a send makes at the engine's lock before it waits for it.
const SEND_LOCK_SPINS: u32 = 2000;

/// State shared by the handles and the loop.
struct Shared {
    engine: Mutex<Engine>,
    /// Signalled when memory may have been freed, or on close: senders
    /// waiting for room re-check (paired with `engine`'s lock).
    room: Condvar,
    /// Senders waiting on `room`: the loop signals only when some wait.
    blocked: AtomicUsize,
    /// Set once `close` started: sends are refused.
    closing: AtomicBool,
    /// Set once the loop finished.
    closed: AtomicBool,
    /// Wakes the loop (it also carries the helper threads' IO news).
    wake: queue::Sender,
    max_block: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    /// The lock for a send: the loop holds it for a turn of a few
    /// microseconds, shorter than parking and waking a thread costs, so a
    /// sender tries a while before it waits (std's mutex spins only briefly).
    fn lock_spinning(&self) -> MutexGuard<'_, Engine> {
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
    fn command<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let now = Instant::now();
        let mut g = self.lock();
        let r = f(&mut g.core, now);
        let wake = g.core.needs_poll();
        drop(g);
        if wake {
            self.wake.kick();
        }
        r
    }

    /// Marks the loop gone: handles see the producer closed, waiters get
    /// `Error::Closed`, flushes and closes return, blocked senders wake.
    fn shutdown(&self) {
        self.closing.store(true, Ordering::Release);
        let (waiters, flushes, closes, listener) = {
            let mut g = self.lock();
            g.finished = true;
            self.closed.store(true, Ordering::Release);
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
struct Waiters {
    base: u64,
    slots: VecDeque<Option<Waiter>>,
    /// Slots holding a waiter.
    live: usize,
}

impl Waiters {
    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn insert(&mut self, id: u64, w: Waiter) {
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
    fn take_run(&mut self, start: u64, n: u32, out: &mut Vec<Option<Waiter>>) {
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

/// A cheap, cloneable, thread-safe handle to a running producer (either driver).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Handle {
    /// Sends a record and returns a handle on its outcome; blocks up to
    /// `max.block.ms` while `buffer.memory` is full. Dropping the handle is
    /// fire-and-forget.
    pub fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.send_future(record, Mode::Block)
    }

    /// Sends a record; `callback` runs on a driver thread with its outcome
    /// (an asynchronous send; see [`Callback`]). Blocks like [`Handle::send`] while memory is full.
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

    fn send_future(&self, record: ProducerRecord, mode: Mode) -> Result<DeliveryFuture, Error> {
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
    fn submit(
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
                    let wake = g.core.needs_poll();
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
                    s.blocked.fetch_add(1, Ordering::SeqCst);
                    g = s
                        .room
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    s.blocked.fetch_sub(1, Ordering::SeqCst);
                    now = Instant::now();
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

    fn flush_inner(&self, deadline: Option<Instant>) -> Result<(), Error> {
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

    /// A snapshot of the core's counters (requests, batches, retries), as
    /// Java's `producer.metrics()` gives them.
    pub fn metrics(&self) -> crate::producer::Metrics {
        self.shared.lock().core.metrics().clone()
    }

    /// True once the producer's loop finished closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

// ---- the loop's side ---------------------------------------------------------------

/// The loop's end of the shared state: it makes a producer, applies IO under
/// the lock, and carries out outputs (transmits, callbacks) outside it.
/// Dropping it marks the producer closed.
struct LoopSide {
    shared: Arc<Shared>,
    /// Batch outcomes and their records' waiters, taken under the lock and
    /// delivered after it is released: the per-record work is done outside
    /// the lock that senders wait for.
    taken: Vec<Taken>,
    /// Waiters left when the producer closed (they get `Error::Closed`).
    orphans: Vec<Waiter>,
    /// Emptied waiter lists, reused (no allocation per batch once warm).
    spare: Vec<Vec<Option<Waiter>>>,
    /// Flushes and closes that completed, resolved after the outcomes: as in
    /// Java, a flush returns once the callbacks of its records have run.
    completed: Vec<Promise<()>>,
}

/// A batch's outcome with the waiters of its records: `waiters[i]` waits on
/// the event's `i`-th record (in the order of its ids), `None` when nobody does.
struct Taken {
    event: Event,
    waiters: Vec<Option<Waiter>>,
}

impl LoopSide {
    fn new(
        config: ProducerConfig,
        waker: Option<Arc<dyn Wake>>,
    ) -> Result<(LoopSide, Handle, queue::Receiver), Error> {
        let max_block = config.max_block;
        let core = Core::new(config, Instant::now(), unix_ms())?;
        let (tx, rx) = queue::queue(waker);
        let shared = Arc::new(Shared {
            engine: Mutex::new(Engine {
                core,
                waiters: Waiters::default(),
                flushes: Vec::new(),
                closes: Vec::new(),
                listener: None,
                delivering: false,
                finished: false,
            }),
            room: Condvar::new(),
            blocked: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wake: tx,
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
            },
            handle,
            rx,
        ))
    }

    /// A sender for helper threads' IO news.
    fn sender(&self) -> queue::Sender {
        self.shared.wake.clone()
    }

    /// The engine, locked, for one IO input outside a turn (the next turn polls).
    #[cfg_attr(not(feature = "mio-driver"), allow(dead_code))]
    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.shared.lock()
    }

    /// True once the core emitted `Closed`.
    fn finished(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// One turn of the loop: under the lock, `inputs` applies IO news to the
    /// core, then the core's outputs are drained (transmits to `out`).
    /// Outcomes are delivered to their waiters after the lock is released.
    /// Returns the core's next deadline.
    fn turn(
        &mut self,
        out: &mut Vec<Transmit>,
        inputs: impl FnOnce(&mut Core, Instant),
    ) -> Option<Instant> {
        // Clocks read before the lock, which senders wait for.
        let now = Instant::now();
        let wall = unix_ms();
        let mut g = lock(&self.shared.engine);
        g.core.handle_wall_clock(now, wall);
        inputs(&mut g.core, now);
        let mut freed = false;
        loop {
            while let Some(t) = g.core.poll_transmit(now) {
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
        let timeout = g.core.poll_timeout();
        let delivering = !self.taken.is_empty() || !self.orphans.is_empty();
        g.delivering = delivering;
        let listener = if delivering { g.listener.clone() } else { None };
        if g.finished {
            self.shared.closed.store(true, Ordering::Release);
        }
        if (freed || g.finished) && self.shared.blocked.load(Ordering::SeqCst) > 0 {
            // Senders waiting for memory are woken once an eighth of it (at
            // least a batch) is free, not per freed batch: against a slow
            // broker, waking per batch costs a wake-up, a failed append and a
            // wait per batch. A record that needs more is woken again by each
            // later turn that frees memory, until all of it is free.
            let c = g.core.config();
            let enough = c.batch_size.max(c.buffer_memory / 8).min(c.buffer_memory);
            let free = c.buffer_memory.saturating_sub(g.core.buffered_bytes());
            if free >= enough || g.finished || g.core.buffered_bytes() == 0 {
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
        timeout
    }
}

/// Hands a batch's outcome to the waiters of its records (outside the lock).
/// Tagged records share one result, lent to the listener with each record's
/// offset and timestamp filled in.
fn deliver(event: Event, waiters: &mut [Option<Waiter>], listener: Option<&Listener>) {
    match event {
        Event::Delivered(d) => {
            let md = |offset, timestamp| RecordMetadata {
                topic: d.topic.clone(),
                partition: d.partition,
                offset,
                timestamp,
            };
            let mut lent: Option<DeliveryResult> = None;
            let timestamps = d.timestamps.iter().chain(std::iter::repeat(-1));
            for ((i, w), create_time) in waiters.iter_mut().enumerate().zip(timestamps) {
                let Some(mut w) = w.take() else { continue };
                let offset = if d.base_offset < 0 {
                    -1
                } else {
                    d.base_offset + i as i64
                };
                let timestamp = if d.log_append_time >= 0 {
                    d.log_append_time
                } else {
                    create_time
                };
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
        Event::Closed => {}
    }
}

impl Drop for LoopSide {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

impl Engine {
    /// Resolves the flushes whose records all have their outcome.
    fn progress_flushes(&mut self, completed: &mut Vec<Promise<()>>) {
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

    fn on_event(
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
                    Event::Closed => unreachable!("matched above"),
                };
                let mut waiters = spare.pop().unwrap_or_default();
                for &(start, n) in records.runs() {
                    self.waiters.take_run(start, n, &mut waiters);
                }
                taken.push(Taken { event: ev, waiters });
            }
            Event::Closed => {
                self.finished = true;
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
