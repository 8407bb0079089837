//! CRC-32C (Castagnoli), the checksum of a RecordBatch.
//!
//! The `crc32c` crate by default. With the `crc-fast` feature the bulk CRC of
//! a batch comes from the `crc-fast` crate instead, which folds with
//! PCLMULQDQ next to the CRC32 instruction: on CPUs whose CRC32 instruction
//! is slow (AMD family 23 issues one per three cycles) the carry-less
//! multiplies run beside it, so a large batch hashes faster (figures in
//! docs/performance.md). Both give the same value; a test checks them against
//! each other.
//!
//! Next to the bulk CRC, arithmetic on polynomials over GF(2) modulo the
//! Castagnoli polynomial (bit-reflected, as the CRC registers are) updates a
//! CRC without rehashing unchanged data: `replace_prefix` swaps a batch's
//! header under the CRC of its records. [`crc32c_append`] carries a CRC on
//! over more bytes.

/// The CRC-32C of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(feature = "crc-fast")]
    {
        crc_fast::crc32_iscsi(data)
    }
    #[cfg(not(feature = "crc-fast"))]
    {
        crc32c::crc32c(data)
    }
}

/// The CRC-32C of `a || data`, given `crc` = the CRC-32C of `a`.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(feature = "crc-fast")]
    {
        // The register holds the CRC before its final XOR.
        let mut d = crc_fast::Digest::new_with_init_state(
            crc_fast::CrcAlgorithm::Crc32Iscsi,
            u64::from(!crc),
        );
        d.update(data);
        d.finalize() as u32
    }
    #[cfg(not(feature = "crc-fast"))]
    {
        crc32c::crc32c_append(crc, data)
    }
}

/// The CRC-32C of `first` followed by `rest`.
#[inline]
pub fn crc32c_concat(first: &[u8], rest: &[u8]) -> u32 {
    crc32c_append(crc32c(first), rest)
}

/// The Castagnoli polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;
/// x^0 in the reflected representation.
const ONE: u32 = 1 << 31;

/// a(x) * b(x) mod P(x).
///
/// Without branches on the operands' bits: they are random, and a
/// mispredicted branch per bit made a multiplication cost hundreds of cycles.
const fn mul(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut i = 31;
    loop {
        // All ones when bit i of `a` (x^(31-i)) is set, else zero.
        p ^= b & 0u32.wrapping_sub((a >> i) & 1);
        if i == 0 {
            break;
        }
        b = (b >> 1) ^ (POLY & 0u32.wrapping_sub(b & 1));
        i -= 1;
    }
    p
}

/// `POWERS[k]` = x^(8 * 2^k) mod P(x), computed at compile time: a
/// shift then costs one multiplication per set bit of its length, not a
/// squaring per bit as well (stamping runs once per batch sent).
const POWERS: [u32; 64] = {
    let mut t = [0u32; 64];
    t[0] = ONE >> 8; // x^8
    let mut k = 1;
    while k < 64 {
        t[k] = mul(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// x^(8 * bytes) mod P(x).
fn shift_bytes(bytes: usize) -> u32 {
    let mut result = ONE;
    let mut n = bytes as u64;
    let mut k = 0;
    while n != 0 {
        if n & 1 != 0 {
            result = mul(result, POWERS[k]);
        }
        n >>= 1;
        k += 1;
    }
    result
}

/// The CRC of `new || tail` given `crc` = CRC of `old || tail`, where `old`
/// and `new` have the same length and `tail` is `tail_len` bytes.
///
/// For equal lengths the CRC's init and final XOR cancel, so
/// crc(new||tail) ^ crc(old||tail) = (crc(new) ^ crc(old)) * x^(8*tail_len).
pub(crate) fn replace_prefix(crc: u32, old: &[u8], new: &[u8], tail_len: usize) -> u32 {
    debug_assert_eq!(old.len(), new.len());
    let delta = crc32c::crc32c(old) ^ crc32c::crc32c(new);
    if delta == 0 {
        return crc;
    }
    crc ^ mul(delta, shift_bytes(tail_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The catalogue's check value for CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_concat(b"1234", b"56789"), 0xE306_9283);
        assert_eq!(crc32c_append(crc32c(b""), b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_append(crc32c(b"123456789"), b""), 0xE306_9283);
    }

    #[test]
    fn append_matches_one_pass() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for len in [0, 1, 15, 64, 1000, 16_385, 70_000] {
            let d = &data[..len];
            for cut in [0, len / 3, len] {
                let (a, b) = d.split_at(cut);
                assert_eq!(crc32c_append(crc32c(a), b), crc32c::crc32c(d), "{len}");
            }
        }
    }

    #[test]
    fn replace_prefix_matches_full_crc() {
        let tail: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for tail_len in [0, 1, 7, 8, 9, 1000, 65_536, 70_000] {
            let tail = &tail[..tail_len];
            let old = b"the old header bytes, forty of them....!";
            let new = b"THE new header bytes, forty of them....?";
            let full = |h: &[u8]| crc32c::crc32c_append(crc32c::crc32c(h), tail);
            assert_eq!(
                replace_prefix(full(old), old, new, tail_len),
                full(new),
                "{tail_len}"
            );
        }
    }

    #[cfg(feature = "crc-fast")]
    #[test]
    fn agrees_with_the_crc32c_crate() {
        // Lengths around the SIMD implementations' block sizes and tails.
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for len in [
            0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 1000, 4096, 16_385, 70_000,
        ] {
            let d = &data[..len];
            assert_eq!(crc32c(d), crc32c::crc32c(d), "{len}");
            let cut = len / 3;
            assert_eq!(
                crc32c_concat(&d[..cut], &d[cut..]),
                crc32c::crc32c(d),
                "{len}"
            );
        }
    }
}
