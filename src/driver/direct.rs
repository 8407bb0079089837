//! Direct writes: a sending thread whose command gives the core a request
//! for a connection with nothing queued writes the request to the socket
//! itself, under the engine's lock, instead of waking the loop to write it.
//! At low rates each record is then one wake-up (the loop's, or a reader's,
//! for the answer) instead of two: the loop is not woken to write, then
//! again to read. (Waiting for an empty pipeline instead would rarely help:
//! a broker that answers late, as librdkafka's mock does until the next
//! request carries its ACK, keeps one request in flight at any rate.)
//!
//! The loop stays the owner of every socket; this thread only writes to a
//! connection the loop has nothing queued for (`queued`: bytes of sends the
//! loop took and has not written, counted under the lock, so nothing overtakes
//! them), and only when the request fits at once. Anything else (a connect, a
//! close, a socket that did not take everything) goes to the loop in order
//! through `handoff`, and wakes it. Outcomes stay in the core for the loop:
//! callbacks never run inside a send.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use crate::producer::{ConnId, Producer as Core, Transmit};

/// The longest a loop sleeps between turns: a command whose new deadline
/// lies beyond its wake-up (a request's timeout, seconds away) then needs
/// no wake-up; the loop's next turn sees the deadline.
pub(super) const LOOP_RECHECK: Duration = Duration::from_secs(1);

/// The largest request a sending thread writes itself: an idle socket takes
/// that at once (the blocking driver's sockets have a send timeout, which a
/// sender holding the lock must not wait out); larger ones go to the loop.
const DIRECT_MAX: usize = 64 * 1024;

/// A connection the sending threads may write to.
struct DirectConn {
    conn: ConnId,
    /// The loop's socket (a second handle on it).
    stream: TcpStream,
    /// Bytes of sends the loop took and has not yet written; shared with the
    /// driver, which subtracts what it writes. Added to under the lock only.
    queued: Arc<AtomicUsize>,
}

/// The engine's part of direct writes (see the module).
#[derive(Default)]
pub(super) struct Direct {
    conns: Vec<DirectConn>,
    /// Transmits a sending thread took from the core but left to the loop,
    /// in order; the loop carries them out before anything newer.
    pub(super) handoff: VecDeque<Transmit>,
    /// When the loop takes its next turn at the latest, as of its last turn.
    pub(super) loop_wakes: Option<Instant>,
    /// Scratch for a sender's turn, kept so that it allocates nothing.
    taken: Vec<Transmit>,
    out: Outbox,
}

impl Direct {
    /// Lets sending threads write to `conn` through `stream` while `queued` is zero.
    pub(super) fn add(&mut self, conn: ConnId, stream: TcpStream, queued: Arc<AtomicUsize>) {
        self.remove(conn);
        self.conns.push(DirectConn {
            conn,
            stream,
            queued,
        });
    }

    /// Stops direct writes to `conn` (it is closed or broken).
    pub(super) fn remove(&mut self, conn: ConnId) {
        self.conns.retain(|c| c.conn != conn);
    }

    /// Books a transmit the loop took from the core (under the lock): a
    /// send's bytes are the loop's to write now, a close ends direct writes.
    pub(super) fn loop_took(&mut self, t: &Transmit) {
        match t {
            Transmit::Send { conn, data } => {
                if let Some(c) = self.conns.iter().find(|c| c.conn == *conn) {
                    c.queued.fetch_add(data.len(), Ordering::AcqRel);
                }
            }
            Transmit::Close { conn } => self.remove(*conn),
            _ => {}
        }
    }

    /// A sending thread's turn after its command made output due: writes
    /// the core's request itself when its connection has nothing queued. Returns true
    /// when the loop must be woken: something was left to it, an outcome
    /// waits for it, or the core's deadline comes before the loop's wake-up.
    pub(super) fn turn(&mut self, core: &mut Core, now: Instant) -> bool {
        if self.conns.is_empty() || !self.handoff.is_empty() {
            return true;
        }
        loop {
            while let Some(t) = core.poll_transmit(now) {
                self.taken.push(t);
            }
            if self.taken.is_empty() {
                break;
            }
            let written = self.write_taken();
            if let Some((conn, n)) = written {
                core.handle_written(conn, n, now);
            }
            // Written reports may make more output due (acks=0).
            if !core.needs_poll() || !self.handoff.is_empty() {
                break;
            }
        }
        if !self.handoff.is_empty() || core.has_events() {
            return true;
        }
        match (core.poll_timeout(), self.loop_wakes) {
            (Some(d), Some(w)) => d < w,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Writes the taken transmits when they are sends to one idle
    /// connection that fit at once; hands the rest to the loop. Returns the
    /// connection and the bytes written.
    fn write_taken(&mut self) -> Option<(ConnId, usize)> {
        let target = self.direct_target();
        let Some(i) = target else {
            for t in self.taken.drain(..) {
                if let Transmit::Send { conn, data } = &t {
                    if let Some(c) = self.conns.iter().find(|c| c.conn == *conn) {
                        c.queued.fetch_add(data.len(), Ordering::AcqRel);
                    }
                }
                self.handoff.push_back(t);
            }
            return None;
        };
        for t in self.taken.drain(..) {
            if let Transmit::Send { data, .. } = t {
                self.out.push(data);
            }
        }
        let c = &self.conns[i];
        // An error or a partial write leaves the rest to the loop, which
        // writes it or finds the connection broken.
        let (n, _) = self.out.write_to(&mut &c.stream);
        let rest = self.out.bytes();
        if rest > 0 {
            c.queued.fetch_add(rest, Ordering::AcqRel);
            let conn = c.conn;
            self.handoff
                .extend(self.out.take().map(|data| Transmit::Send { conn, data }));
        }
        Some((c.conn, n))
    }

    /// The connection the taken transmits can be written to directly: all
    /// sends to one connection with nothing queued, small enough.
    fn direct_target(&self) -> Option<usize> {
        let mut target: Option<ConnId> = None;
        let mut bytes = 0;
        for t in &self.taken {
            let Transmit::Send { conn, data } = t else {
                return None;
            };
            if target.is_some_and(|c| c != *conn) {
                return None;
            }
            target = Some(*conn);
            bytes += data.len();
        }
        if bytes > DIRECT_MAX {
            return None;
        }
        let conn = target?;
        self.conns
            .iter()
            .position(|c| c.conn == conn && c.queued.load(Ordering::Acquire) == 0)
    }
}
