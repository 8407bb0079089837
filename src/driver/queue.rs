//! The loop's inbox: IO news from helper threads, and wake-ups.
//!
//! Application threads append records to the core themselves (under the
//! engine's lock) and only [`Sender::kick`] the loop when the core has work
//! for it. Helper threads (readers, writers, connectors, resolvers) queue
//! [`IoMsg`]s. Wake-ups are coalesced: after the first message or kick, more
//! cost one atomic load until the loop takes what is queued, and the mio
//! waker (an `eventfd` write) or the blocking loop's condvar is only touched
//! for that first one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::{IoMsg, Wake};

struct State {
    msgs: VecDeque<IoMsg>,
    /// The receiver is gone: sends fail (the loop ended).
    closed: bool,
    /// The blocking loop waits on the condvar.
    sleeping: bool,
}

struct Inner {
    state: Mutex<State>,
    ready: Condvar,
    /// The loop was told about work and has not taken it since.
    notified: AtomicBool,
    waker: Option<Arc<dyn Wake>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the loop unless it was already told.
    fn notify(&self, s: Option<MutexGuard<'_, State>>) {
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

/// Sending end; cheap to clone.
#[derive(Clone)]
pub(super) struct Sender(Arc<Inner>);

/// The loop's end; dropping it fails later sends and drops what is queued.
pub(super) struct Receiver(Arc<Inner>);

/// A queue whose loop is woken by `waker` (mio) or sleeps in [`Receiver::wait`] (blocking).
pub(super) fn queue(waker: Option<Arc<dyn Wake>>) -> (Sender, Receiver) {
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

impl Sender {
    /// Queues a message; gives it back when the loop has gone.
    #[allow(clippy::result_large_err)]
    pub(super) fn send(&self, m: IoMsg) -> Result<(), IoMsg> {
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
        if !self.0.notified.load(Ordering::SeqCst) {
            self.0.notify(None);
        }
    }
}

impl Receiver {
    /// Moves everything queued into `out` (which should be empty: its buffer
    /// is swapped in, so the two buffers are reused turn about), and clears
    /// the wake-up: a kick after this wakes the loop again.
    pub(super) fn drain(&self, out: &mut VecDeque<IoMsg>) {
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

fn take(s: &mut State, out: &mut VecDeque<IoMsg>) {
    if out.is_empty() {
        std::mem::swap(&mut s.msgs, out);
    } else {
        out.extend(s.msgs.drain(..));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}
