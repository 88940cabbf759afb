//! Errors of the streaming library.

use std::net::SocketAddr;

/// Errors of the streaming library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid stream configuration: {0}")]
    InvalidConfig(String),
    /// A stream name that is empty, contains `/` or is reserved for an endpoint.
    #[error("stream name {0:?} is empty, contains '/', or is reserved")]
    InvalidName(String),
    /// A stream of that name already exists.
    #[error("a stream named {0:?} already exists")]
    DuplicateStream(String),
    /// The stream or server was closed.
    #[error("the stream {0:?} is closed")]
    Closed(String),
    /// A published frame could not be used.
    #[error("bad frame: {0}")]
    Frame(#[from] framecast_core::FrameError),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The encoder backend is unknown or not in this build.
    #[error("{0}")]
    Backend(#[from] framecast_encode::EncodeError),
    /// The GPU conversion of a published texture failed.
    #[cfg(feature = "gpu")]
    #[error("GPU texture path: {0}")]
    Gpu(#[from] framecast_gpu::GpuError),
    /// Video transport was required but no H.264 backend is in this build.
    #[error("video transport requested but backend {0:?} is not in this build")]
    NoVideoBackend(String),
}
