//! The loop's inbox: a mutex-guarded queue that the loop empties in one swap.
//!
//! Replaces `std::sync::mpsc` on the per-record path. A send is one short
//! lock and a push into a buffer that is reused (no per-message or
//! per-block allocation once warm); the loop takes everything queued with
//! one lock. Wake-ups are coalesced: the mio waker (an `eventfd` write) is
//! rung only for the first message after the loop last emptied the queue,
//! and the blocking loop's condvar only while that loop actually sleeps. So
//! a burst of sends costs the loop one wake-up, not one per record.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::{Msg, Wake};

struct State {
    msgs: VecDeque<Msg>,
    /// The receiver is gone: sends fail (the loop ended).
    closed: bool,
    /// The blocking loop waits on the condvar.
    sleeping: bool,
    /// The waker was rung and the loop has not emptied the queue since.
    notified: bool,
}

struct Inner {
    state: Mutex<State>,
    ready: Condvar,
    waker: Option<Arc<dyn Wake>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
            notified: false,
        }),
        ready: Condvar::new(),
        waker,
    });
    (Sender(inner.clone()), Receiver(inner))
}

impl Sender {
    /// Queues a message; gives it back when the loop has gone.
    // The message is returned by value, as `mpsc::SendError` did: moved, not copied to the heap.
    #[allow(clippy::result_large_err)]
    pub(super) fn send(&self, m: Msg) -> Result<(), Msg> {
        let i = &*self.0;
        let mut s = i.lock();
        if s.closed {
            return Err(m);
        }
        s.msgs.push_back(m);
        let ring = i.waker.is_some() && !s.notified;
        if ring {
            s.notified = true;
        }
        let signal = s.sleeping;
        if signal {
            s.sleeping = false;
        }
        drop(s);
        if ring {
            if let Some(w) = &i.waker {
                w.wake();
            }
        }
        if signal {
            i.ready.notify_one();
        }
        Ok(())
    }
}

impl Receiver {
    /// Moves everything queued into `out` (which should be empty: its buffer
    /// is swapped in, so the two buffers are reused turn about).
    pub(super) fn drain(&self, out: &mut VecDeque<Msg>) {
        let mut s = self.0.lock();
        s.notified = false;
        if out.is_empty() {
            std::mem::swap(&mut s.msgs, out);
        } else {
            out.extend(s.msgs.drain(..));
        }
    }

    /// Waits until something is queued or `deadline` passes (forever when
    /// `None`), then drains like [`Receiver::drain`].
    pub(super) fn wait(&self, deadline: Option<Instant>, out: &mut VecDeque<Msg>) {
        let i = &*self.0;
        let mut s = i.lock();
        while s.msgs.is_empty() {
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
        s.notified = false;
        if out.is_empty() {
            std::mem::swap(&mut s.msgs, out);
        } else {
            out.extend(s.msgs.drain(..));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let left = {
            let mut s = self.0.lock();
            s.closed = true;
            std::mem::take(&mut s.msgs)
        };
        // Dropped outside the lock: unresolved waiters run callbacks with `Closed`.
        drop(left);
    }
}
