//! The bytes queued for one socket and their vectored writes, shared by both
//! drivers: a Produce request comes as several pieces (the encoded bytes
//! around each batch, and the batches themselves, uncopied), and up to
//! [`WRITE_PIECES`] of them go out in one `write_vectored` instead of a
//! syscall each.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::Bytes;

/// Most pieces one vectored write takes (a Produce request is two per batch).
pub(super) const WRITE_PIECES: usize = 64;

/// Pieces waiting to be written, in order; the front one `written` bytes in.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pieces: VecDeque<Bytes>,
    written: usize,
}

impl Outbox {
    /// Queues a piece after the others.
    pub(super) fn push(&mut self, piece: Bytes) {
        self.pieces.push_back(piece);
    }

    /// True when every byte was written.
    pub(super) fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Pieces queued (the front one counts while any of it is left).
    pub(super) fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Bytes not yet written.
    pub(super) fn bytes(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum::<usize>() - self.written
    }

    /// Takes the bytes not yet written, in order (the front piece without
    /// what was written of it), leaving the outbox empty.
    pub(super) fn take(&mut self) -> impl Iterator<Item = Bytes> + '_ {
        let written = std::mem::take(&mut self.written);
        if let Some(front) = self.pieces.front_mut() {
            let _ = front.split_to(written);
        }
        self.pieces.drain(..)
    }

    /// Writes from the front until everything is written or the socket is
    /// full (`WouldBlock`, or `TimedOut` after a send timeout); returns the
    /// bytes written, and the error that ended the write, if one did (a
    /// socket that takes nothing is `WriteZero`). Written pieces are dropped
    /// before it returns: a delivered batch's buffer is then unshared, and
    /// the core can reuse it.
    pub(super) fn write_to(&mut self, w: &mut impl Write) -> (usize, io::Result<()>) {
        let mut done = 0;
        loop {
            // Written pieces (and empty ones, which a write would report as 0) go.
            while self.pieces.front().is_some_and(|f| self.written >= f.len()) {
                self.pieces.pop_front();
                self.written = 0;
            }
            if self.pieces.is_empty() {
                return (done, Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); WRITE_PIECES];
            let mut n = 0;
            for (slice, piece) in slices.iter_mut().zip(&self.pieces) {
                *slice = IoSlice::new(if n == 0 {
                    &piece[self.written..]
                } else {
                    piece
                });
                n += 1;
            }
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
                Ok(k) => {
                    done += k;
                    self.advance(k);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_full(&e) => return (done, Ok(())),
                Err(e) => return (done, Err(e)),
            }
        }
    }

    /// Moves past `k` written bytes: whole pieces, then into the front one.
    fn advance(&mut self, mut k: usize) {
        while let Some(front) = self.pieces.front() {
            let left = front.len() - self.written;
            if k < left {
                self.written += k;
                return;
            }
            k -= left;
            self.pieces.pop_front();
            self.written = 0;
        }
    }
}

/// Errors of a socket that takes nothing now: nonblocking (mio) or past its
/// send timeout (the blocking driver's direct writes).
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `per_call` bytes a call, from several
    /// slices at once, and `room` bytes in all, then reports itself full.
    struct Socket {
        out: Vec<u8>,
        per_call: usize,
        room: usize,
        calls: usize,
    }

    impl Socket {
        fn new(per_call: usize, room: usize) -> Self {
            Socket {
                out: Vec::new(),
                per_call,
                room,
                calls: 0,
            }
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // A prefix of the bytes.
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(self.room - n).min(self.per_call - n);
                self.out.extend_from_slice(&b[..k]);
                n += k;
                if k < b.len() {
                    break;
                }
            }
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn outbox(pieces: &[Bytes]) -> Outbox {
        let mut o = Outbox::default();
        for p in pieces {
            o.push(p.clone());
        }
        o
    }

    #[test]
    fn vectored_writes_resume_after_partial_writes_in_order() {
        let pieces: Vec<Bytes> = (0..150u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 7)]))
            .collect();
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        for max in [1, 5, 64, 1 << 20] {
            let mut w = Socket::new(max, usize::MAX);
            let mut o = outbox(&pieces);
            let (n, r) = o.write_to(&mut w);
            r.unwrap();
            assert_eq!(n, want.len(), "max {max}");
            assert!(o.is_empty());
            assert_eq!(w.out, want, "max {max}");
            if max == 1 << 20 {
                // One call per WRITE_PIECES pieces, not one per piece.
                assert_eq!(w.calls, pieces.len().div_ceil(WRITE_PIECES));
            }
        }
    }

    /// A write (the blocking driver's direct one) stops where the socket is
    /// full, and what it did not take is exactly the rest of the bytes, in
    /// order.
    #[test]
    fn direct_write_hands_on_exactly_the_rest() {
        let pieces: Vec<Bytes> = (0..40u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 5)]))
            .collect();
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        for room in [0, 1, 7, 33, want.len() - 1, want.len(), want.len() + 10] {
            let mut w = Socket::new(5, room);
            let mut o = outbox(&pieces);
            let (n, r) = o.write_to(&mut w);
            r.unwrap();
            assert_eq!(n, room.min(want.len()), "room {room}");
            assert_eq!(o.bytes(), want.len() - n);
            let mut all = w.out.clone();
            all.extend(o.take().flat_map(|p| p.to_vec()));
            assert!(o.is_empty());
            assert_eq!(all, want, "room {room}");
        }
    }

    #[test]
    fn a_socket_that_takes_nothing_is_write_zero() {
        let mut w = Socket::new(0, usize::MAX);
        let mut o = outbox(&[Bytes::from_static(b"abc")]);
        let (n, r) = o.write_to(&mut w);
        assert_eq!(n, 0);
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WriteZero);
        assert_eq!(o.bytes(), 3);
    }
}
