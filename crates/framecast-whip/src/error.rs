//! Errors of WHIP publishing.

/// Why a WHIP session could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhipError {
    /// The endpoint URL is not usable.
    #[error("WHIP endpoint {url:?}: {why}")]
    Url {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The HTTP exchange failed (connection, TLS).
    #[error("WHIP request to {url}: {message}")]
    Request {
        /// The endpoint or resource.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The endpoint answered with an error status.
    #[error("WHIP endpoint {url} answered {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its body (the endpoint's reason).
        body: String,
    },
    /// The SDP answer was not usable.
    #[error("WHIP answer from {url}: {message}")]
    Answer {
        /// The endpoint.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The local UDP socket could not be set up.
    #[error("WHIP media socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The stream cannot be tapped (closed, or full of viewers).
    #[error("cannot tap the stream: {0}")]
    Stream(#[from] framecast_stream::StreamError),
    /// WebRTC (str0m) refused a step.
    #[error("WebRTC: {0}")]
    Rtc(String),
}
