//! Errors of the wire codec and of the client/server shells.

use crate::codes::MessageType;

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
    /// Compressing a plane failed (the compressor's own error).
    #[error("{codec} compression of plane {plane} failed: {detail}")]
    Compress {
        /// "zstd".
        codec: &'static str,
        /// Plane index.
        plane: usize,
        /// What the compressor said.
        detail: String,
    },
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

/// Why a CONFIGURE was refused: sent as ERROR 1, "configure failed: " and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigureError {
    /// HELLO asked for a codec other than H.264.
    #[error("codec {0:?} is not supported: this server does h264 only")]
    UnsupportedCodec(String),
    /// `mode` is not encode, decode or transcode.
    #[error("mode {0:?} is unknown: use encode, decode or transcode")]
    Mode(String),
    /// An option's value does not parse.
    #[error("option {key}={value:?} {expected}")]
    BadValue {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// What it should have been ("is not a valid number", "should be 0 or 1").
        expected: &'static str,
    },
    /// A value this server does not support, with what it does support.
    #[error("{what} is not supported: {supported}")]
    Unsupported {
        /// The value, named ("pixel format 4 (p010)", "scale_mode \"fit\"").
        what: String,
        /// What the server accepts instead.
        supported: String,
    },
    /// Width or height out of range.
    #[error("size {width}x{height}: width and height must be between 1 and {max}")]
    Size {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Largest side this server takes.
        max: u32,
    },
    /// The time base denominator is 0 or too large.
    #[error("time base {num}/{den}: the denominator must be between 1 and 2147483647")]
    TimeBase {
        /// Numerator.
        num: u32,
        /// Denominator.
        den: u32,
    },
    /// One frame at this size would exceed the message size limit.
    #[error("a {width}x{height} frame ({bytes} bytes) exceeds max-message-bytes {limit}")]
    FrameTooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes of one BGRA frame.
        bytes: u64,
        /// The limit.
        limit: u32,
    },
    /// A transcode-only option in another mode.
    #[error("option {key} is only valid in transcode mode (mode is {mode})")]
    TranscodeOnly {
        /// The option.
        key: &'static str,
        /// The mode asked for.
        mode: &'static str,
    },
    /// Encode mode without a frame rate.
    #[error("frame rate {num}/{den}: encode mode needs a frame rate > 0")]
    FrameRate {
        /// Numerator.
        num: u32,
        /// Denominator.
        den: u32,
    },
    /// Decode or transcode on a build without a decoder.
    #[error("{mode} mode needs an H.264 decoder, which this build lacks")]
    NoDecoder {
        /// The mode asked for.
        mode: &'static str,
    },
    /// Decode mode without SPS/PPS.
    #[error("decode mode needs extradata (avcC or Annex B SPS/PPS) in CONFIGURE")]
    NoExtradata,
    /// Only one of `out_width` and `out_height`.
    #[error("out_width and out_height must be given together")]
    HalfOutputSize,
    /// Output size out of range.
    #[error("output size {width}x{height} is out of range")]
    OutputSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// No encoder backend works here.
    #[error("no encoder backend is available on this server")]
    NoBackend,
    /// The extradata is neither Annex B nor avcC, or the decoder refused it.
    #[error("extradata {0}")]
    Extradata(String),
    /// The encoder or decoder could not be created.
    #[error("{0}")]
    Codec(String),
    /// The output stream's avcC does not fit CONFIGURE_ACK's 16-bit length.
    #[error("the output stream's avcC is {len} bytes, more than CONFIGURE_ACK can carry (65535)")]
    AvccTooLong {
        /// Its length.
        len: usize,
    },
}

/// Why the planes of an input FRAME were refused (sent as ERROR 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaneError {
    /// Wrong number of planes for the pixel format.
    #[error("expected {expected} planes, got {got}")]
    Count {
        /// Planes the format has.
        expected: usize,
        /// Planes received.
        got: usize,
    },
    /// Zero stride or height.
    #[error("plane {plane}: invalid plane geometry {stride}x{height}")]
    Geometry {
        /// Plane index.
        plane: usize,
        /// Stride.
        stride: u32,
        /// Rows.
        height: u32,
    },
    /// Row count that is not the format's.
    #[error("plane {plane}: invalid plane height {height}, expected {expected}")]
    Height {
        /// Plane index.
        plane: usize,
        /// Rows received.
        height: u32,
        /// Rows expected (the chroma plane may have either the rounded-down or up count).
        expected: String,
    },
    /// Stride shorter than a row.
    #[error("plane {plane}: invalid plane stride {stride}, minimum {minimum}")]
    Stride {
        /// Plane index.
        plane: usize,
        /// Stride received.
        stride: u32,
        /// One row's bytes.
        minimum: u32,
    },
    /// Decoded size over the limit.
    #[error("plane {plane}: decoded plane size {size} exceeds limit {limit}")]
    TooLarge {
        /// Plane index.
        plane: usize,
        /// Stride × height.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Raw data shorter than stride × height.
    #[error("plane {plane}: plane too small: {len} bytes, stride {stride} x height {height} needs {needed}")]
    TooSmall {
        /// Plane index.
        plane: usize,
        /// Bytes received.
        len: usize,
        /// Stride.
        stride: u32,
        /// Rows.
        height: u32,
        /// Bytes needed.
        needed: u64,
    },
    /// A compressed plane with no bytes.
    #[error("plane {plane}: empty compressed plane")]
    Empty {
        /// Plane index.
        plane: usize,
    },
    /// Decompression failed.
    #[error(transparent)]
    Compression(#[from] CompressionError),
}

/// Why a session's media work failed: sent to the peer as ERROR [`SessionFailure::code`]
/// with this message, then the session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionFailure {
    /// CONFIGURE could not be honoured (code 1).
    #[error("configure failed: {0}")]
    Configure(#[from] ConfigureError),
    /// An input FRAME's planes were refused (code 2).
    #[error(transparent)]
    Planes(#[from] PlaneError),
    /// The planes do not make a picture (code 2).
    #[error("bad frame: {0}")]
    Frame(#[from] framecast_core::FrameError),
    /// The encoder failed (code 2).
    #[error("encode failed: {0}")]
    Encode(String),
    /// The decoder failed (code 2).
    #[error("decode failed: {0}")]
    Decode(String),
    /// An output plane could not be compressed (code 2).
    #[error("output: {0}")]
    Output(#[from] CompressionError),
    /// A message the session's mode does not take (code 4).
    #[error("unexpected {got} in {mode} mode")]
    Unexpected {
        /// What arrived.
        got: MessageType,
        /// The session's mode.
        mode: &'static str,
    },
}

impl SessionFailure {
    /// The VTR1 ERROR code to send.
    pub fn code(&self) -> u32 {
        use crate::codes::error_code;
        match self {
            SessionFailure::Configure(_) => error_code::CONFIGURE_FAILED,
            SessionFailure::Unexpected { .. } => error_code::BAD_REQUEST,
            _ => error_code::PROCESSING_FAILED,
        }
    }
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
    /// The server refused CONFIGURE.
    #[error("the server refused CONFIGURE with status {0}")]
    ConfigureRefused(u8),
    /// The server answered HELLO with a status this client does not know.
    #[error("server {server} answered HELLO with unknown status {status}")]
    UnknownStatus {
        /// Server name and version.
        server: String,
        /// The status byte.
        status: u8,
    },
    /// The session ended without any output (nothing to write).
    #[error("the server returned no {0}")]
    NoOutput(&'static str),
    /// Encoding or decoding failed.
    #[error("codec: {0}")]
    Codec(#[from] framecast_encode::EncodeError),
    /// No server of a [`crate::failover::ServerPool`] took the session.
    #[error("no VTR1 server took the session ({} attempts): {}", attempts.len(), ServerAttempt::list(attempts))]
    NoServer {
        /// Each server tried, in order, with why it was passed over.
        attempts: Vec<ServerAttempt>,
    },
    /// An encode session lost mid-stream that no server of the pool took up again.
    #[error(
        "the session on {server} was lost mid-stream ({error}), and resuming it failed: {resume}"
    )]
    Lost {
        /// The server whose connection died.
        server: String,
        /// How it died.
        error: Box<RemoteError>,
        /// Why no server took the session again.
        resume: Box<RemoteError>,
    },
}

/// One server a [`crate::failover::ServerPool`] tried and passed over.
#[derive(Debug)]
pub struct ServerAttempt {
    /// Its address.
    pub server: String,
    /// Why it did not take the session.
    pub error: Box<RemoteError>,
}

impl ServerAttempt {
    fn list(attempts: &[ServerAttempt]) -> String {
        attempts
            .iter()
            .map(|a| format!("{}: {}", a.server, a.error))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl RemoteError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RemoteError::Io {
            context: context.into(),
            source,
        }
    }
}
