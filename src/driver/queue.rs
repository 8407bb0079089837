//! The loop's inbox: IO news from helper threads, and wake-ups.
//!
//! Application threads append records to the core themselves (under the
//! engine's lock) and only [`Sender::kick`] the loop when the core has work
//! for it, through a [`Kicker`]. Helper threads (readers, writers,
//! connectors, resolvers) queue messages, of a type each driver defines for
//! its own news. Wake-ups are coalesced: after the first message or kick, more
//! cost one atomic load until the loop takes what is queued, and the mio
//! waker (an `eventfd` write) or the blocking loop's condvar is only touched
//! for that first one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::Wake;

struct State<M> {
    msgs: VecDeque<M>,
    /// The receiver is gone: sends fail (the loop ended).
    closed: bool,
    /// The blocking loop waits on the condvar.
    sleeping: bool,
}

struct Inner<M> {
    state: Mutex<State<M>>,
    ready: Condvar,
    /// The loop was told about work and has not taken it since.
    notified: AtomicBool,
    waker: Option<Arc<dyn Wake>>,
}

impl<M> Inner<M> {
    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the loop unless it was already told.
    fn notify(&self, s: Option<MutexGuard<'_, State<M>>>) {
        if self.notified.swap(true, Ordering::SeqCst) {
            return;
        }
        match &self.waker {
            Some(w) => {
                drop(s);
                w.wake();
            }
            None => {
                // Under the queue lock: the loop checks `notified` under it
                // before it sleeps, so this cannot slip in between.
                let mut s = s.unwrap_or_else(|| self.lock());
                if s.sleeping {
                    s.sleeping = false;
                    drop(s);
                    self.ready.notify_one();
                }
            }
        }
    }
}

/// Wakes the loop (coalesced: one atomic load while the loop has not yet
/// taken an earlier wake-up).
trait Kick: Send + Sync {
    fn kick(&self);
}

impl<M: Send> Kick for Inner<M> {
    fn kick(&self) {
        if !self.notified.load(Ordering::SeqCst) {
            self.notify(None);
        }
    }
}

/// The loop's wake-up without its messages, for the handles: cheap to clone.
#[derive(Clone)]
pub(super) struct Kicker(Arc<dyn Kick>);

impl Kicker {
    /// Wakes the loop to poll the core.
    pub(super) fn kick(&self) {
        self.0.kick();
    }
}

/// Sending end; cheap to clone.
pub(super) struct Sender<M>(Arc<Inner<M>>);

impl<M> Clone for Sender<M> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

/// The loop's end; dropping it fails later sends and drops what is queued.
pub(super) struct Receiver<M>(Arc<Inner<M>>);

/// A queue whose loop is woken by `waker` (mio) or sleeps in [`Receiver::wait`] (blocking).
pub(super) fn queue<M>(waker: Option<Arc<dyn Wake>>) -> (Sender<M>, Receiver<M>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            msgs: VecDeque::new(),
            closed: false,
            sleeping: false,
        }),
        ready: Condvar::new(),
        notified: AtomicBool::new(false),
        waker,
    });
    (Sender(inner.clone()), Receiver(inner))
}

impl<M: Send + 'static> Sender<M> {
    /// Queues a message; gives it back when the loop has gone.
    #[allow(clippy::result_large_err)]
    pub(super) fn send(&self, m: M) -> Result<(), M> {
        let i = &*self.0;
        let mut s = i.lock();
        if s.closed {
            return Err(m);
        }
        s.msgs.push_back(m);
        i.notify(Some(s));
        Ok(())
    }

    /// Wakes the loop to poll the core (coalesced: one atomic load while the
    /// loop has not yet taken an earlier wake-up).
    pub(super) fn kick(&self) {
        Kick::kick(&*self.0);
    }

    /// The wake-up alone, for the handles.
    pub(super) fn kicker(&self) -> Kicker {
        Kicker(self.0.clone())
    }
}

impl<M> Receiver<M> {
    /// Moves everything queued into `out` (which should be empty: its buffer
    /// is swapped in, so the two buffers are reused turn about), and clears
    /// the wake-up: a kick after this wakes the loop again.
    pub(super) fn drain(&self, out: &mut VecDeque<M>) {
        let mut s = self.0.lock();
        // Cleared before the loop polls the core: a kick after this wakes it again.
        self.0.notified.store(false, Ordering::SeqCst);
        take(&mut s, out);
    }

    /// Waits until something is queued or kicked, or `deadline` passes
    /// (forever when `None`); the blocking loop then drains under its own
    /// lock with [`Receiver::drain`].
    pub(super) fn wait(&self, deadline: Option<Instant>) {
        let i = &*self.0;
        let mut s = i.lock();
        while s.msgs.is_empty() && !i.notified.load(Ordering::SeqCst) {
            s.sleeping = true;
            match deadline {
                None => s = i.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    s = i
                        .ready
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        s.sleeping = false;
    }

    /// Fails later sends and drops what is queued (the loop ended).
    pub(super) fn close(&self) {
        let left = {
            let mut s = self.0.lock();
            s.closed = true;
            std::mem::take(&mut s.msgs)
        };
        drop(left);
    }
}

fn take<M>(s: &mut State<M>, out: &mut VecDeque<M>) {
    if out.is_empty() {
        std::mem::swap(&mut s.msgs, out);
    } else {
        out.extend(s.msgs.drain(..));
    }
}

impl<M> Drop for Receiver<M> {
    fn drop(&mut self) {
        self.close();
    }
}
