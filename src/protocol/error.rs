//! Typed errors of the wire codec, for decoding and encoding alike.

/// Why bytes could not be decoded, or a value encoded, as Kafka's protocol.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The input ended before the value did.
    #[error("truncated input: {needed} more byte(s) needed")]
    Truncated {
        /// How many more bytes the value needed at least.
        needed: usize,
    },
    /// A length prefix is negative (where null is not allowed), larger than the
    /// input, or larger than the field allows (a string: 32767 bytes, as in Kafka).
    #[error("invalid length {0}")]
    BadLength(i64),
    /// A varint ran over its maximum width.
    #[error("varint longer than {0} bytes")]
    BadVarint(usize),
    /// A string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    BadString,
    /// A RecordBatch's CRC-32C does not match its contents.
    #[error("bad CRC-32C: batch says {expected:#010x}, contents give {computed:#010x}")]
    BadCrc {
        /// CRC stored in the batch.
        expected: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// A RecordBatch with a magic byte other than 2.
    #[error("unsupported record batch magic {0}")]
    BadMagic(i8),
    /// An API version outside the range this codec implements.
    #[error("unsupported version {version} of API key {api_key}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The requested version.
        version: i16,
    },
    /// An API key this codec does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A frame larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Size the frame header announced.
        size: i64,
        /// Configured maximum.
        max: usize,
    },
    /// Bytes left over after a message that should have used the whole frame.
    #[error("{0} trailing byte(s) after the message")]
    TrailingBytes(usize),
    /// A value that is well-formed but not allowed here (with what and why).
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// Compressed records could not be (de)compressed.
    #[error("compression: {0}")]
    Compression(String),
}

/// Result alias of the codec.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
