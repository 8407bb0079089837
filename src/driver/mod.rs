//! Drivers: the IO loops around the sans-IO core.
//!
//! Both drivers share what is not IO: the application-facing [`Handle`]
//! (send, callbacks, flush, close), the [`DeliveryFuture`] a send returns, the
//! [`Error`] type, and the engine that owns the core, fans batch outcomes out
//! to the records' waiters and holds sends back while `buffer.memory` is full.
//! The drivers only move bytes: [`blocking`] with threads and `std::net`,
//! `mio` (feature `mio-driver`) with one event loop.

pub mod blocking;
#[cfg(feature = "mio-driver")]
pub mod mio;
mod queue;
pub mod typed;

pub use typed::{RecordPart, TypedProducer, TypedRecord};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// A callback run on the driver's loop thread with a record's outcome; keep it short and
/// never call a blocking method (`wait`, `flush`, `close`) from it: the loop would wait on itself.
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

/// A record's slot: its outcome, its core id once accepted, and whether a
/// waiter asked to skip linger.
struct RecordSlot {
    slot: Slot<DeliveryResult>,
    id: AtomicU64,
    expedite: AtomicBool,
}

const NO_ID: u64 = u64::MAX;

/// Who hears a record's outcome.
enum Reply {
    Future(Arc<RecordSlot>),
    Callback(Callback),
}

/// A reply the loop owes; dropped unresolved, it resolves with `Error::Closed`.
struct Waiter(Option<Reply>);

impl Waiter {
    fn resolve(mut self, r: DeliveryResult) {
        match self.0.take() {
            Some(Reply::Future(s)) => s.slot.set(r),
            Some(Reply::Callback(cb)) => cb(r),
            None => {}
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.0.is_some() {
            Waiter(self.0.take()).resolve(Err(Error::Closed));
        }
    }
}

/// The handle of one record sent with [`Handle::send`]: wait for its outcome,
/// or drop it (fire-and-forget: the record is still delivered).
pub struct DeliveryFuture {
    slot: Arc<RecordSlot>,
    tx: CommandSender,
    done: bool,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl DeliveryFuture {
    /// Blocks until the record's outcome (a synchronous send: its batch skips `linger.ms`).
    pub fn wait(mut self) -> DeliveryResult {
        self.expedite();
        self.done = true;
        self.slot.slot.take(None).unwrap_or(Err(Error::Closed))
    }

    /// Waits up to `timeout` (skipping linger); `Err(Error::Timeout)` when the
    /// outcome is not there yet (call again). The outcome is returned once;
    /// later calls give `Err(Error::Closed)`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> DeliveryResult {
        if self.done {
            return Err(Error::Closed);
        }
        self.expedite();
        match self.slot.slot.take(Some(Instant::now() + timeout)) {
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
        let r = self.slot.slot.take(Some(Instant::now()));
        self.done = r.is_some();
        r
    }

    fn expedite(&self) {
        if !self.slot.expedite.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Command::Expedite(self.slot.clone()));
        }
    }
}

// ---- commands from application threads --------------------------------------------

/// How a send treats a full `buffer.memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Wait (parked in the loop) up to `max.block.ms`.
    Block,
    /// Refuse at once.
    Try,
}

/// A message to the loop.
enum Command {
    Send {
        record: ProducerRecord,
        waiter: Option<Waiter>,
        mode: Mode,
        size: usize,
    },
    Expedite(Arc<RecordSlot>),
    Flush(Promise<()>),
    Close(Promise<()>),
    Abort,
}

/// How the loop is woken after a command is queued.
trait Wake: Send + Sync {
    fn wake(&self);
}

/// The loop's inbox, for commands (it wakes the loop itself, coalesced).
#[derive(Clone)]
struct CommandSender {
    tx: queue::Sender,
}

impl CommandSender {
    /// Queues a command; gives it back when the loop has gone.
    fn send(&self, c: Command) -> Result<(), Box<Command>> {
        match self.tx.send(Msg::Command(c)) {
            Ok(()) => Ok(()),
            Err(Msg::Command(c)) => Err(Box::new(c)),
            Err(_) => unreachable!("a command was sent"),
        }
    }
}

/// What the loop's channel carries: commands, and the drivers' own IO news.
enum Msg {
    Command(Command),
    #[cfg_attr(not(feature = "mio-driver"), allow(dead_code))]
    Io(IoMsg),
}

/// IO news from helper threads (readers, connectors, resolvers).
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

/// State shared by the handles and the loop.
struct Shared {
    /// Bytes of records queued in the channel, not yet taken by the loop.
    queued: AtomicUsize,
    /// The core's buffered bytes as of the loop's last poll: the channel may
    /// only hold what is left of `buffer.memory`, so that records in the
    /// channel and in the core together stay within it.
    core_buffered: AtomicUsize,
    /// Mirror of `Gate::full`, read without the lock on the send path.
    full: AtomicBool,
    /// Mirror of `Gate::blocked`: the loop locks the gate only when someone waits.
    blocked: AtomicUsize,
    /// Backpressure gate: `full` while sends are parked in the loop.
    gate: Mutex<Gate>,
    gate_cv: Condvar,
    /// Set once `close` started: sends are refused.
    closing: AtomicBool,
    /// Set once the loop finished.
    closed: AtomicBool,
    buffer_memory: usize,
    max_block: Duration,
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

    /// Takes the first waiter with an id in `from..end`.
    fn take_next(&mut self, from: u64, end: u64) -> Option<(u64, Waiter)> {
        let lo = from.max(self.base);
        let hi = end.min(self.base + self.slots.len() as u64);
        for id in lo..hi {
            let i = (id - self.base) as usize;
            if let Some(w) = self.slots[i].take() {
                self.live -= 1;
                // Trim resolved slots at the front so the window only spans
                // records still waited on.
                while let Some(None) = self.slots.front() {
                    self.slots.pop_front();
                    self.base += 1;
                }
                return Some((id, w));
            }
        }
        None
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.live = 0;
    }
}

#[derive(Default)]
struct Gate {
    full: bool,
    blocked: usize,
}

/// Bytes of records the channel holds before a blocking send waits for the
/// loop (records beyond it wait in the sending thread, not in memory).
const CHANNEL_BYTES: usize = 1 << 20;

/// A cheap, cloneable, thread-safe handle to a running producer (either driver).
#[derive(Clone)]
pub struct Handle {
    tx: CommandSender,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Bytes a queued send holds: its payload plus the queue entry itself.
fn record_size(r: &ProducerRecord) -> usize {
    let mut n = r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + std::mem::size_of::<Msg>();
    for h in &r.headers {
        n += h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 8;
    }
    n
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
        let slot = Arc::new(RecordSlot {
            slot: Slot {
                value: Mutex::new(None),
                ready: Condvar::new(),
            },
            id: AtomicU64::new(NO_ID),
            expedite: AtomicBool::new(false),
        });
        self.submit(record, Some(Reply::Future(slot.clone())), Mode::Block)?;
        Ok(DeliveryFuture {
            slot,
            tx: self.tx.clone(),
            done: false,
        })
    }

    /// Sends a record; `callback` runs on the loop thread with its outcome
    /// (an asynchronous send). Blocks like [`Handle::send`] while memory is full.
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
    }

    /// Sends a record with no per-record bookkeeping at all; only errors
    /// before acceptance are reported. Blocks like [`Handle::send`].
    pub fn send_and_forget(&self, record: ProducerRecord) -> Result<(), Error> {
        self.submit(record, None, Mode::Block)
    }

    /// Like [`Handle::send`] but never blocks for memory: a full buffer gives
    /// `Error::Send(SendError::BufferFull)` with the record, here or (when the
    /// loop finds the buffer full) as the future's outcome.
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        let slot = Arc::new(RecordSlot {
            slot: Slot {
                value: Mutex::new(None),
                ready: Condvar::new(),
            },
            id: AtomicU64::new(NO_ID),
            expedite: AtomicBool::new(false),
        });
        self.submit(record, Some(Reply::Future(slot.clone())), Mode::Try)?;
        Ok(DeliveryFuture {
            slot,
            tx: self.tx.clone(),
            done: false,
        })
    }

    fn submit(
        &self,
        mut record: ProducerRecord,
        reply: Option<Reply>,
        mode: Mode,
    ) -> Result<(), Error> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(SendError::Closed(Box::new(record)).into());
        }
        if record.timestamp.is_none() {
            record.timestamp = Some(unix_ms());
        }
        let size = record_size(&record);
        if let Err(()) = self.wait_for_room(size, mode) {
            let limit = self.shared.buffer_memory;
            return Err(SendError::BufferFull {
                record: Box::new(record),
                buffered: limit,
                limit,
            }
            .into());
        }
        self.shared.queued.fetch_add(size, Ordering::AcqRel);
        let cmd = Command::Send {
            record,
            waiter: reply.map(|r| Waiter(Some(r))),
            mode,
            size,
        };
        match self.tx.send(cmd).map_err(|c| *c) {
            Ok(()) => Ok(()),
            Err(Command::Send { record, size, .. }) => {
                self.shared.queued.fetch_sub(size, Ordering::AcqRel);
                Err(SendError::Closed(Box::new(record)).into())
            }
            Err(_) => Err(Error::Closed),
        }
    }

    /// Waits while the loop holds parked sends or the channel holds a whole
    /// buffer's worth of records; `Err` after `max.block.ms` (at once for `Try`).
    fn wait_for_room(&self, size: usize, mode: Mode) -> Result<(), ()> {
        let s = &self.shared;
        let over_memory = || {
            let queued = s.queued.load(Ordering::SeqCst);
            queued + s.core_buffered.load(Ordering::SeqCst) + size > s.buffer_memory.max(size)
                // A blocking send also waits while the channel holds a hand-off's
                // worth: the loop empties it continuously, and a short channel
                // keeps memory and queueing latency low.
                || (mode == Mode::Block && queued > 0 && queued + size > CHANNEL_BYTES)
        };
        // Fast path, no lock: nothing parked and room left.
        if !s.full.load(Ordering::SeqCst) && !over_memory() {
            return Ok(());
        }
        let over = |g: &Gate| g.full || over_memory();
        let mut g = lock(&s.gate);
        if !over(&g) {
            return Ok(());
        }
        if mode == Mode::Try {
            return Err(());
        }
        let deadline = Instant::now() + s.max_block;
        g.blocked += 1;
        s.blocked.fetch_add(1, Ordering::SeqCst);
        let res = loop {
            if !over(&g) || s.closed.load(Ordering::Acquire) || s.closing.load(Ordering::Acquire) {
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(());
            }
            g = s
                .gate_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        g.blocked -= 1;
        s.blocked.fetch_sub(1, Ordering::SeqCst);
        res
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
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let slot = Slot::new();
        if self
            .tx
            .send(Command::Flush(Promise(Some(slot.clone()))))
            .is_err()
        {
            return Ok(()); // the loop ended: nothing is pending any more
        }
        match slot.take(deadline) {
            Some(Err(Error::Closed)) => Ok(()),
            Some(r) => r,
            None => Err(Error::Timeout),
        }
    }

    /// Stops accepting records, waits up to `timeout` for the outstanding ones,
    /// then aborts the rest (they fail with `Aborted`/`UnknownOutcome`).
    /// `Err(Error::Timeout)` when the abort was needed.
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        self.shared.closing.store(true, Ordering::Release);
        self.wake_blocked();
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let slot = Slot::new();
        if self
            .tx
            .send(Command::Close(Promise(Some(slot.clone()))))
            .is_err()
        {
            return Ok(());
        }
        match slot.take(Some(Instant::now() + timeout)) {
            Some(_) => Ok(()),
            None => {
                let _ = self.tx.send(Command::Abort);
                // Abort completes every record at once; wait a little for the loop.
                let _ = slot.take(Some(Instant::now() + Duration::from_secs(5)));
                Err(Error::Timeout)
            }
        }
    }

    /// True once the producer's loop finished closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    fn wake_blocked(&self) {
        let _g = lock(&self.shared.gate);
        self.shared.gate_cv.notify_all();
    }
}

// ---- the engine: the core plus waiters, parked sends, flushes -----------------------

/// A send waiting for memory.
struct Parked {
    record: ProducerRecord,
    waiter: Option<Waiter>,
    deadline: Instant,
}

/// Everything a driver's loop needs besides sockets.
struct Engine {
    core: Core,
    shared: Arc<Shared>,
    /// Waiters by record id (only records someone waits on).
    waiters: Waiters,
    /// Bytes of sends taken from the channel since the last poll (subtracted
    /// from `Shared::queued` once per poll, not once per record).
    dequeued: usize,
    /// Slots by record id for waiters that may ask to expedite later.
    parked: VecDeque<Parked>,
    /// Parked sends ever made, and those handed on (to the core or failed).
    parked_in: u64,
    parked_out: u64,
    /// Flushes: waiting for parked sends below a count, then for a core token.
    flushes: Vec<(u64, Option<FlushToken>, Promise<()>)>,
    closes: Vec<Promise<()>>,
    close_requested: bool,
    core_closing: bool,
    finished: bool,
}

impl Engine {
    fn new(
        config: ProducerConfig,
        waker: Option<Arc<dyn Wake>>,
    ) -> Result<(Engine, Handle, queue::Receiver, queue::Sender), Error> {
        let buffer_memory = config.buffer_memory;
        let max_block = config.max_block;
        let core = Core::new(config, Instant::now(), unix_ms())?;
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            core_buffered: AtomicUsize::new(0),
            full: AtomicBool::new(false),
            blocked: AtomicUsize::new(0),
            gate: Mutex::new(Gate::default()),
            gate_cv: Condvar::new(),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            buffer_memory,
            max_block,
        });
        let (tx, rx) = queue::queue(waker);
        let handle = Handle {
            tx: CommandSender { tx: tx.clone() },
            shared: shared.clone(),
        };
        let engine = Engine {
            core,
            shared,
            waiters: Waiters::default(),
            dequeued: 0,
            parked: VecDeque::new(),
            parked_in: 0,
            parked_out: 0,
            flushes: Vec::new(),
            closes: Vec::new(),
            close_requested: false,
            core_closing: false,
            finished: false,
        };
        Ok((engine, handle, rx, tx))
    }

    /// The core, for IO inputs.
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    /// The core's configuration.
    fn config(&self) -> &ProducerConfig {
        self.core.config()
    }

    /// True once the core emitted `Closed`.
    fn finished(&self) -> bool {
        self.finished
    }

    /// Applies one command (call [`Engine::poll`] after a batch of them).
    fn command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Send {
                record,
                waiter,
                mode,
                size,
            } => {
                self.dequeued += size;
                if !self.parked.is_empty() {
                    // Keep send order: behind the parked ones.
                    self.park_or_refuse(record, waiter, mode, now);
                    return;
                }
                match self.core.send(record, now) {
                    Ok(id) => self.accepted(id, waiter, now),
                    Err(SendError::BufferFull { record, .. }) => {
                        self.park_or_refuse(*record, waiter, mode, now)
                    }
                    Err(e) => refuse(waiter, e),
                }
            }
            Command::Expedite(slot) => {
                let id = slot.id.load(Ordering::Acquire);
                if id != NO_ID {
                    self.core.expedite(RecordId(id), now);
                }
                // Not accepted yet: `accepted` sees the flag.
            }
            Command::Flush(p) => {
                let token = self.parked.is_empty().then(|| self.core.flush(now));
                self.flushes.push((self.parked_in, token, p));
            }
            Command::Close(p) => {
                self.close_requested = true;
                self.closes.push(p);
                if self.finished {
                    for p in self.closes.drain(..) {
                        p.resolve(Ok(()));
                    }
                }
            }
            Command::Abort => {
                self.close_requested = true;
                self.core_closing = true;
                for p in std::mem::take(&mut self.parked) {
                    self.parked_out += 1;
                    refuse(p.waiter, SendError::Closed(Box::new(p.record)));
                }
                self.core.abort(now);
            }
        }
    }

    fn accepted(&mut self, id: RecordId, waiter: Option<Waiter>, now: Instant) {
        if let Some(w) = waiter {
            if let Some(Reply::Future(s)) = &w.0 {
                s.id.store(id.0, Ordering::Release);
                if s.expedite.load(Ordering::Acquire) {
                    self.core.expedite(id, now);
                }
            }
            self.waiters.insert(id.0, w);
        }
    }

    fn park_or_refuse(
        &mut self,
        record: ProducerRecord,
        waiter: Option<Waiter>,
        mode: Mode,
        now: Instant,
    ) {
        if mode == Mode::Try {
            let buffered = self.core.buffered_bytes();
            let limit = self.core.config().buffer_memory;
            refuse(
                waiter,
                SendError::BufferFull {
                    record: Box::new(record),
                    buffered,
                    limit,
                },
            );
            return;
        }
        self.parked_in += 1;
        self.parked.push_back(Parked {
            record,
            waiter,
            deadline: now + self.core.config().max_block,
        });
    }

    /// Hands parked sends to the core while it takes them; expires old ones.
    fn unpark(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(p) = self.parked.pop_front() {
            if self.core_closing {
                self.parked_out += 1;
                refuse(p.waiter, SendError::Closed(Box::new(p.record)));
                continue;
            }
            match self.core.send(p.record, now) {
                Ok(id) => {
                    self.parked_out += 1;
                    moved = true;
                    self.accepted(id, p.waiter, now);
                }
                Err(SendError::BufferFull {
                    record,
                    buffered,
                    limit,
                }) => {
                    if now >= p.deadline {
                        self.parked_out += 1;
                        refuse(
                            p.waiter,
                            SendError::BufferFull {
                                record,
                                buffered,
                                limit,
                            },
                        );
                        continue;
                    }
                    self.parked.push_front(Parked {
                        record: *record,
                        waiter: p.waiter,
                        deadline: p.deadline,
                    });
                    break;
                }
                Err(e) => {
                    self.parked_out += 1;
                    refuse(p.waiter, e);
                }
            }
        }
        moved
    }

    /// Drains the core's outputs: transmits go to `out`, events to waiters.
    /// Call after every batch of inputs/commands, then apply `out`.
    fn poll(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        if self.dequeued > 0 {
            self.shared
                .queued
                .fetch_sub(std::mem::take(&mut self.dequeued), Ordering::AcqRel);
        }
        loop {
            while let Some(t) = self.core.poll_transmit(now) {
                out.push(t);
            }
            let mut freed = false;
            while let Some(ev) = self.core.poll_event() {
                freed = true;
                self.on_event(ev);
            }
            let mut changed = false;
            // Memory may have been freed: let parked sends in, then close once they are in.
            if !self.parked.is_empty()
                && (freed || self.parked.front().is_some_and(|p| now >= p.deadline))
            {
                let before = self.parked.len();
                changed |= self.unpark(now) || self.parked.len() != before;
            }
            if self.close_requested && !self.core_closing && self.parked.is_empty() {
                self.core_closing = true;
                self.core.close(now);
                changed = true;
            }
            if !self.flushes.is_empty() {
                changed |= self.progress_flushes(now);
            }
            if !changed {
                break;
            }
        }
        self.update_gate();
    }

    /// Resolves finished flushes; true when it asked the core for a new flush.
    fn progress_flushes(&mut self, now: Instant) -> bool {
        let parked_out = self.parked_out;
        let mut asked = false;
        let mut i = 0;
        while i < self.flushes.len() {
            let (below, token, _) = &mut self.flushes[i];
            if token.is_none() && parked_out >= *below {
                *token = Some(self.core.flush(now));
                asked = true;
            }
            let done = token.is_some_and(|t| self.core.is_flushed(t)) || self.finished;
            if done {
                let (_, _, p) = self.flushes.swap_remove(i);
                p.resolve(Ok(()));
            } else {
                i += 1;
            }
        }
        asked
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Delivered(d) => {
                if self.waiters.is_empty() {
                    return;
                }
                let mut index = 0usize;
                for &(start, n) in d.records.runs() {
                    let end = start + n as u64;
                    let mut k = start;
                    while let Some((id, w)) = self.waiters.take_next(k, end) {
                        k = id + 1;
                        let i = index + (id - start) as usize;
                        let md = RecordMetadata {
                            topic: d.topic.clone(),
                            partition: d.partition,
                            offset: if d.base_offset < 0 {
                                -1
                            } else {
                                d.base_offset + i as i64
                            },
                            timestamp: if d.log_append_time >= 0 {
                                d.log_append_time
                            } else {
                                d.timestamps.get(i).copied().unwrap_or(-1)
                            },
                        };
                        w.resolve(Ok(md));
                    }
                    index += n as usize;
                }
            }
            Event::Failed(f) => {
                if self.waiters.is_empty() {
                    log::debug!(
                        "{} record(s) to {}-{} failed: {}",
                        f.records.len(),
                        f.topic,
                        f.partition,
                        f.error
                    );
                    return;
                }
                for &(start, n) in f.records.runs() {
                    let end = start + n as u64;
                    let mut k = start;
                    while let Some((id, w)) = self.waiters.take_next(k, end) {
                        k = id + 1;
                        w.resolve(Err(Error::Delivery(f.error.clone())));
                    }
                }
            }
            Event::Closed => {
                self.finished = true;
                self.shared.closed.store(true, Ordering::Release);
                for p in self.closes.drain(..) {
                    p.resolve(Ok(()));
                }
                for (_, _, p) in self.flushes.drain(..) {
                    p.resolve(Ok(()));
                }
                // Every record has had its event; anything left never will.
                self.waiters.clear();
            }
        }
    }

    fn update_gate(&self) {
        let full = !self.parked.is_empty();
        self.shared
            .core_buffered
            .store(self.core.buffered_bytes(), Ordering::SeqCst);
        // Lock only when something changes or someone waits: not per poll.
        // (SeqCst: a sender that starts waiting after this load saw the
        // `core_buffered` stored above when it checked for room.)
        if full == self.shared.full.load(Ordering::SeqCst) {
            if self.shared.blocked.load(Ordering::SeqCst) > 0 {
                let _g = lock(&self.shared.gate);
                self.shared.gate_cv.notify_all();
            }
            return;
        }
        let mut g = lock(&self.shared.gate);
        g.full = full;
        self.shared.full.store(full, Ordering::Release);
        self.shared.gate_cv.notify_all();
    }

    /// The next deadline: the core's, or a parked send's `max.block.ms`.
    fn timeout(&mut self) -> Option<Instant> {
        let t = self.core.poll_timeout();
        match (t, self.parked.front().map(|p| p.deadline)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Marks the loop gone: handles see the producer closed, blocked senders wake.
    fn shutdown(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.closed.store(true, Ordering::Release);
        for p in std::mem::take(&mut self.parked) {
            refuse(p.waiter, SendError::Closed(Box::new(p.record)));
        }
        self.waiters.clear();
        let _g = lock(&self.shared.gate);
        self.shared.gate_cv.notify_all();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn refuse(waiter: Option<Waiter>, e: SendError) {
    match waiter {
        Some(w) => w.resolve(Err(Error::Send(e))),
        None => log::warn!("fire-and-forget record refused: {e}"),
    }
}
