//! Compression codecs of RecordBatch v2: gzip, snappy, lz4 and zstd, each
//! behind its cargo feature (`gzip`, `snappy`, `lz4`, `zstd`, or all of them
//! with `compression`).
//!
//! Wire formats, as Kafka clients write and read them:
//! - gzip: a plain gzip stream (RFC 1952); several members are accepted on read.
//! - snappy: written in the xerial framing the Java client uses
//!   (`SnappyOutputStream`: magic `\x82SNAPPY\0`, version 1, compatible version 1,
//!   then `[i32 length][raw snappy block]` chunks of at most 32 KiB input each).
//!   Read in both that framing and as one plain raw snappy block, which is what
//!   librdkafka writes.
//! - lz4: the standard LZ4 frame format (with the header checksum fixed by
//!   KIP-57), 64 KiB independent blocks, no checksums, as the Java client writes.
//!   The level is accepted (1..=17, as Java) but `lz4_flex` has one fast
//!   compressor only, so it does not change the output.
//! - zstd: a zstd frame; the level is respected (default 3, as Java).
//!
//! Decompression is bounded: output larger than `max_output` is an error
//! (`ProtocolError::Compression`), so a decompression bomb costs at most
//! `max_output` bytes of memory.

use bytes::{Bytes, BytesMut};

use super::error::{ProtocolError, Result};

/// The compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (0).
    #[default]
    None,
    /// gzip (1).
    Gzip,
    /// snappy (2).
    Snappy,
    /// lz4 (3).
    Lz4,
    /// zstd (4).
    Zstd,
}

impl Compression {
    /// Every codec, in attribute order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec named by bits 0-2 of batch attributes; `None` for 5..=7.
    pub fn from_attributes(attributes: i16) -> Option<Compression> {
        Self::ALL.get((attributes & 0x07) as usize).copied()
    }

    /// The attribute bits (0..=4) of this codec.
    pub fn attribute_bits(self) -> i16 {
        self as i16
    }

    /// The codec of a `compression.type` value ("none", "gzip", "snappy", "lz4", "zstd").
    pub fn from_name(name: &str) -> Option<Compression> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The `compression.type` name of this codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this codec is compiled in (its cargo feature is enabled).
    pub fn is_available(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[allow(dead_code)]
fn not_compiled(c: Compression) -> ProtocolError {
    ProtocolError::Compression(format!(
        "{0} support is not compiled in (enable the `{0}` feature)",
        c.name()
    ))
}

/// The module of a codec whose feature is off: the same two functions as the
/// real one, failing with [`not_compiled`].
#[allow(unused_macros)]
macro_rules! codec_not_compiled {
    ($module:ident, $codec:ident) => {
        mod $module {
            use super::*;
            pub(super) fn compress(_: Option<i32>, _: &[u8], _: &mut BytesMut) -> Result<()> {
                Err(not_compiled(Compression::$codec))
            }
            pub(super) fn decompress(_: &[u8], _: usize) -> Result<Vec<u8>> {
                Err(not_compiled(Compression::$codec))
            }
        }
    };
}

#[allow(dead_code)]
fn codec_err(c: Compression, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Compression(format!("{}: {e}", c.name()))
}

#[allow(dead_code)]
fn too_large(c: Compression, max: usize) -> ProtocolError {
    ProtocolError::Compression(format!(
        "{}: decompressed size exceeds the limit of {max} bytes",
        c.name()
    ))
}

/// Compresses `input` with codec `c` and appends the result to `out`.
///
/// `level` is the codec's level (`compression.<codec>.level` in the Java
/// client); `None` takes Java's default. `Compression::None` copies `input`.
pub fn compress(
    c: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    match c {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => gzip::compress(level, input, out),
        Compression::Snappy => snappy::compress(level, input, out),
        Compression::Lz4 => lz4::compress(level, input, out),
        Compression::Zstd => zstd::compress(level, input, out),
    }
}

/// Decompresses `input` (codec `c`), failing if the output would exceed `max_output` bytes.
pub fn decompress(c: Compression, input: &[u8], max_output: usize) -> Result<Bytes> {
    match c {
        Compression::None => {
            if input.len() > max_output {
                return Err(too_large(c, max_output));
            }
            Ok(Bytes::copy_from_slice(input))
        }
        Compression::Gzip => gzip::decompress(input, max_output).map(Bytes::from),
        Compression::Snappy => snappy::decompress(input, max_output).map(Bytes::from),
        Compression::Lz4 => lz4::decompress(input, max_output).map(Bytes::from),
        Compression::Zstd => zstd::decompress(input, max_output).map(Bytes::from),
    }
}

/// Reads all of `r` into a vector, failing once more than `max` bytes come out.
#[allow(dead_code)]
fn read_bounded(
    c: Compression,
    r: impl std::io::Read,
    input_len: usize,
    max: usize,
) -> Result<Vec<u8>> {
    use std::io::Read;
    // A guess of the output size, bounded by the limit: no allocation is sized by
    // anything but the input we hold and the caller's limit.
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(max).min(1 << 20));
    r.take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| codec_err(c, e))?;
    if out.len() > max {
        return Err(too_large(c, max));
    }
    Ok(out)
}

#[cfg(feature = "gzip")]
mod gzip {
    use super::*;
    use bytes::BufMut;
    use std::io::Write;

    pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut BytesMut) -> Result<()> {
        // Java accepts 1..=9 and -1 (zlib's default, 6).
        let level = match level {
            None | Some(-1) => flate2::Compression::default(),
            Some(l @ 1..=9) => flate2::Compression::new(l as u32),
            Some(l) => {
                return Err(ProtocolError::Compression(format!(
                    "gzip level {l} is outside 1..=9"
                )))
            }
        };
        let mut enc = flate2::write::GzEncoder::new(out.writer(), level);
        enc.write_all(input)
            .and_then(|_| enc.try_finish())
            .map_err(|e| codec_err(Compression::Gzip, e))
    }

    pub(super) fn decompress(input: &[u8], max: usize) -> Result<Vec<u8>> {
        read_bounded(
            Compression::Gzip,
            flate2::read::MultiGzDecoder::new(input),
            input.len(),
            max,
        )
    }
}

#[cfg(not(feature = "gzip"))]
codec_not_compiled!(gzip, Gzip);

/// The header of xerial snappy-java's `SnappyOutputStream`: magic, version 1,
/// minimum compatible version 1.
pub const XERIAL_SNAPPY_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];

/// Input bytes per xerial chunk: snappy-java's default block size, which the
/// Java client uses.
pub const XERIAL_SNAPPY_BLOCK_SIZE: usize = 32 * 1024;

#[cfg(feature = "snappy")]
mod snappy {
    use super::*;

    pub(super) fn compress(_level: Option<i32>, input: &[u8], out: &mut BytesMut) -> Result<()> {
        let mut enc = snap::raw::Encoder::new();
        out.reserve(16 + input.len() / 2);
        out.extend_from_slice(&XERIAL_SNAPPY_HEADER);
        for chunk in input.chunks(XERIAL_SNAPPY_BLOCK_SIZE) {
            let start = out.len();
            out.resize(start + 4 + snap::raw::max_compress_len(chunk.len()), 0);
            let n = enc
                .compress(chunk, &mut out[start + 4..])
                .map_err(|e| codec_err(Compression::Snappy, e))?;
            out[start..start + 4].copy_from_slice(&(n as u32).to_be_bytes());
            out.truncate(start + 4 + n);
        }
        Ok(())
    }

    fn raw_block(
        dec: &mut snap::raw::Decoder,
        block: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<()> {
        let n = snap::raw::decompress_len(block).map_err(|e| codec_err(Compression::Snappy, e))?;
        if n > max - out.len() {
            return Err(too_large(Compression::Snappy, max));
        }
        let start = out.len();
        out.resize(start + n, 0);
        let written = dec
            .decompress(block, &mut out[start..])
            .map_err(|e| codec_err(Compression::Snappy, e))?;
        out.truncate(start + written);
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], max: usize) -> Result<Vec<u8>> {
        let mut dec = snap::raw::Decoder::new();
        let mut out = Vec::new();
        if !input.starts_with(&XERIAL_SNAPPY_HEADER[..8]) {
            // librdkafka and others: one raw snappy block.
            raw_block(&mut dec, input, &mut out, max)?;
            return Ok(out);
        }
        if input.len() < 16 {
            return Err(codec_err(Compression::Snappy, "truncated xerial header"));
        }
        let mut rest = &input[16..];
        while !rest.is_empty() {
            // snappy-java reads concatenated streams, each with its own header.
            if rest.len() >= 16 && rest.starts_with(&XERIAL_SNAPPY_HEADER[..8]) {
                rest = &rest[16..];
                continue;
            }
            if rest.len() < 4 {
                return Err(codec_err(
                    Compression::Snappy,
                    "truncated xerial chunk length",
                ));
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            rest = &rest[4..];
            if len > rest.len() {
                return Err(codec_err(Compression::Snappy, "truncated xerial chunk"));
            }
            raw_block(&mut dec, &rest[..len], &mut out, max)?;
            rest = &rest[len..];
        }
        Ok(out)
    }
}

#[cfg(not(feature = "snappy"))]
codec_not_compiled!(snappy, Snappy);

#[cfg(feature = "lz4")]
mod lz4 {
    use super::*;
    use bytes::BufMut;
    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
    use std::io::Write;

    pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut BytesMut) -> Result<()> {
        if let Some(l) = level {
            if !(1..=17).contains(&l) {
                return Err(ProtocolError::Compression(format!(
                    "lz4 level {l} is outside 1..=17"
                )));
            }
        }
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Independent);
        let mut enc = FrameEncoder::with_frame_info(info, out.writer());
        enc.write_all(input)
            .map_err(|e| codec_err(Compression::Lz4, e))?;
        enc.finish().map_err(|e| codec_err(Compression::Lz4, e))?;
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], max: usize) -> Result<Vec<u8>> {
        read_bounded(Compression::Lz4, FrameDecoder::new(input), input.len(), max)
    }
}

#[cfg(not(feature = "lz4"))]
codec_not_compiled!(lz4, Lz4);

#[cfg(feature = "zstd")]
mod zstd {
    use super::*;
    use std::cell::RefCell;

    /// Java's default `compression.zstd.level`.
    const DEFAULT_LEVEL: i32 = 3;

    thread_local! {
        // A compression context is costly to set up (hundreds of KiB), so each
        // thread keeps one and only changes its level.
        static COMPRESSOR: RefCell<Option<(i32, ::zstd::bulk::Compressor<'static>)>> =
            const { RefCell::new(None) };
    }

    pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut BytesMut) -> Result<()> {
        let level = level.unwrap_or(DEFAULT_LEVEL);
        if !::zstd::compression_level_range().contains(&level) {
            return Err(ProtocolError::Compression(format!(
                "zstd level {level} is outside {:?}",
                ::zstd::compression_level_range()
            )));
        }
        let err = |e| codec_err(Compression::Zstd, e);
        COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            match slot.as_mut() {
                Some((l, _)) if *l == level => {}
                Some((l, c)) => {
                    c.set_compression_level(level).map_err(err)?;
                    *l = level;
                }
                None => *slot = Some((level, ::zstd::bulk::Compressor::new(level).map_err(err)?)),
            }
            let (_, c) = slot.as_mut().expect("set above");
            let start = out.len();
            out.resize(start + ::zstd::zstd_safe::compress_bound(input.len()), 0);
            let n = c
                .compress_to_buffer(input, &mut out[start..])
                .map_err(err)?;
            out.truncate(start + n);
            Ok(())
        })
    }

    pub(super) fn decompress(input: &[u8], max: usize) -> Result<Vec<u8>> {
        let err = |e| codec_err(Compression::Zstd, e);
        let mut dec = ::zstd::stream::read::Decoder::with_buffer(input).map_err(err)?;
        // Bound the window the decoder may allocate: never more than the output
        // may hold, but at least what level 19 (window log 23) needs.
        let log = (usize::BITS - max.max(1).saturating_sub(1).leading_zeros()).clamp(23, 27);
        dec.window_log_max(log).map_err(err)?;
        read_bounded(Compression::Zstd, dec, input.len(), max)
    }
}

#[cfg(not(feature = "zstd"))]
codec_not_compiled!(zstd, Zstd);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_name(c.name()), Some(c));
            assert_eq!(Compression::from_attributes(c.attribute_bits()), Some(c));
            // Only bits 0-2 count.
            assert_eq!(
                Compression::from_attributes(c.attribute_bits() | 0x78),
                Some(c)
            );
        }
        assert_eq!(Compression::from_attributes(5), None);
        assert_eq!(Compression::from_attributes(7), None);
        assert_eq!(Compression::from_name("GZIP"), None);
        assert_eq!(Compression::Zstd.attribute_bits(), 4);
    }

    #[test]
    fn unavailable_codecs_say_which_feature() {
        for c in Compression::ALL {
            let mut out = BytesMut::new();
            let r = compress(c, None, b"abc", &mut out);
            if c.is_available() {
                assert!(r.is_ok(), "{c}: {r:?}");
            } else {
                assert_eq!(
                    r,
                    Err(ProtocolError::Compression(format!(
                        "{0} support is not compiled in (enable the `{0}` feature)",
                        c.name()
                    )))
                );
            }
        }
    }
}
