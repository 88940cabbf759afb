use framecast_core::FrameError;
use framecast_h264::H264Error;
use thiserror::Error;

/// Why an encoder could not be created or a frame could not be encoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The configuration is invalid; the message names the field and the value.
    #[error("invalid encoder configuration: {0}")]
    InvalidConfig(String),
    /// No backend with this name is compiled in.
    #[error("unknown encoder backend {name:?}; compiled-in backends: {available}")]
    UnknownBackend {
        /// The requested name.
        name: String,
        /// Comma-separated names of the compiled-in backends.
        available: String,
    },
    /// The backend exists but cannot run here (e.g. VideoToolbox off macOS).
    #[error("encoder backend {name:?} is unavailable: {reason}")]
    BackendUnavailable {
        /// Backend name.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The frame is not valid for this encoder (size differs from the configuration, ...).
    #[error("frame rejected: {0}")]
    Frame(#[from] FrameError),
    /// The backend library reported an error.
    #[error("{backend} encoder failed: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What the library said.
        message: String,
    },
    /// A decoder reported an error.
    #[error("{decoder} decoder failed: {message}")]
    Decoder {
        /// Decoder name (`openh264`, `libavcodec`).
        decoder: &'static str,
        /// What the library said.
        message: String,
    },
    /// The backend produced output that breaks the encoder contract (a bug in the backend).
    #[error("{backend} broke the encoder contract: {message}")]
    Contract {
        /// Backend name.
        backend: &'static str,
        /// Which invariant.
        message: String,
    },
    /// The backend's bitstream could not be parsed.
    #[error("malformed H.264 from the backend: {0}")]
    Bitstream(#[from] H264Error),
    /// The encoder was used after `flush()` or after its worker stopped.
    #[error("encoder is closed")]
    Closed,
}
