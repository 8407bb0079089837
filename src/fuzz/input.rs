//! What the session targets read their fuzzer bytes with.

use crate::producer::ConnId;

/// Reads the input front to back; past the end every read is 0.
pub(super) struct Input<'a>(pub(super) &'a [u8]);

impl Input<'_> {
    pub(super) fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// Up to `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }

    /// A length byte, then that many bytes (owned: callers read on while they keep it).
    #[cfg_attr(not(all(feature = "sasl", feature = "tls")), allow(dead_code))]
    pub(super) fn chunk(&mut self) -> Vec<u8> {
        let n = self.byte() as usize;
        self.take(n).to_vec()
    }

    /// A [`Self::chunk`] as text.
    #[cfg_attr(not(all(feature = "sasl", feature = "tls")), allow(dead_code))]
    pub(super) fn text(&mut self) -> String {
        String::from_utf8_lossy(&self.chunk()).into_owned()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The `k`-th (mod count) of `conns`.
pub(super) fn pick(k: u8, conns: Vec<ConnId>) -> Option<ConnId> {
    (!conns.is_empty()).then(|| conns[k as usize % conns.len()])
}
