//! Errors of MoQ publishing.

/// Why a MoQ publisher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MoqError {
    /// The relay URL is not usable.
    #[error("MoQ target {url:?}: {why}")]
    Target {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The stream cannot be tapped (closed, or full of viewers).
    #[error("cannot tap the stream: {0}")]
    Stream(#[from] framecast_stream::StreamError),
    /// The MoQ client could not be set up (TLS, sockets).
    #[error("MoQ client: {0}")]
    Client(String),
    /// The broadcast could not be created.
    #[error("MoQ broadcast {name:?}: {message}")]
    Broadcast {
        /// Its name.
        name: String,
        /// What the MoQ library said.
        message: String,
    },
}
