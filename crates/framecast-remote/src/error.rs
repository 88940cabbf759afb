//! Errors of the wire codec and of the client/server shells.

use crate::wire::MessageType;

/// Something wrong with bytes on the wire: a bad header, a size over the limit, a malformed body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The first four bytes of a header were not `VTR1`.
    #[error("bad magic 0x{found:08x} (expected 0x56545231 \"VTR1\")")]
    BadMagic {
        /// What was received.
        found: u32,
    },
    /// The header's version was not 1.
    #[error("unsupported protocol version {found} (this implementation speaks version 1)")]
    BadVersion {
        /// What was received.
        found: u16,
    },
    /// The header announced a payload larger than the limit for that message type.
    #[error("message too large: {kind} of {length} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Message type named in the header.
        kind: MessageType,
        /// Payload length announced in the header.
        length: u32,
        /// The limit in force for that type.
        limit: u32,
    },
    /// A payload ended before a field could be read.
    #[error("{kind} payload truncated: {field} needs {needed} more bytes, {remaining} left")]
    Truncated {
        /// Message being parsed.
        kind: MessageType,
        /// Field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the payload.
        remaining: usize,
    },
    /// A string field was not valid UTF-8.
    #[error("{kind}: field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Message being parsed.
        kind: MessageType,
        /// Field being read.
        field: &'static str,
    },
    /// A value does not fit its on-wire field (encoding side).
    #[error("{kind}: field {field} value {value} does not fit on the wire (max {max})")]
    FieldOverflow {
        /// Message being encoded.
        kind: MessageType,
        /// Field.
        field: &'static str,
        /// Value that did not fit.
        value: u64,
        /// Largest value the field holds.
        max: u64,
    },
}

/// Plane compression or decompression failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// The `wire_compression` value is not 0, 1 or 2.
    #[error("unsupported wire compression mode {0} (the server accepts 0 none, 1 lz4, 2 zstd)")]
    UnknownMode(String),
    /// Decompressed data did not have the expected size, or the stream was corrupt.
    #[error("{codec} plane {plane}: {detail}")]
    Corrupt {
        /// "lz4" or "zstd".
        codec: &'static str,
        /// Plane index.
        plane: usize,
        /// What went wrong.
        detail: String,
    },
}

/// Error of the async client or server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// Socket-level failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The peer sent bytes that do not parse.
    #[error("protocol error: {0}")]
    Wire(#[from] WireError),
    /// Plane (de)compression failed.
    #[error("wire compression: {0}")]
    Compression(#[from] CompressionError),
    /// The server answered HELLO with status 1.
    #[error("server {server} is busy ({active}/{max} sessions); try again later")]
    Busy {
        /// Server name and version.
        server: String,
        /// Active sessions it reported.
        active: u16,
        /// Its session limit.
        max: u16,
    },
    /// The server answered HELLO with status 2.
    #[error("server {server} refused the token (authentication failed)")]
    AuthFailed {
        /// Server name and version.
        server: String,
    },
    /// The server sent an ERROR message.
    #[error("server error {code}: {message}")]
    Server {
        /// VTR1 error code.
        code: u32,
        /// Its message.
        message: String,
    },
    /// The peer sent a message that is valid but not expected now.
    #[error("unexpected {got} while waiting for {expected}")]
    Unexpected {
        /// What arrived.
        got: MessageType,
        /// What was expected.
        expected: &'static str,
    },
    /// The peer closed the connection.
    #[error("connection closed by the peer {0}")]
    Closed(&'static str),
    /// A deadline passed.
    #[error("timed out after {after:?} {what}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The deadline.
        after: std::time::Duration,
    },
    /// A request the client or server cannot honour (bad configuration, missing capability).
    #[error("{0}")]
    Unsupported(String),
    /// Encoding or decoding failed.
    #[error("codec: {0}")]
    Codec(#[from] framecast_encode::EncodeError),
}

impl RemoteError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RemoteError::Io {
            context: context.into(),
            source,
        }
    }
}
