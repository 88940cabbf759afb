//! framecast-whip: push a framecast stream to a WebRTC SFU over WHIP (RFC 9725).
//!
//! [`WhipPublisher`] taps a stream like a viewer (its already-encoded H.264, no second
//! encode; see [`framecast_stream::PacketTap`]) and sends it as one sendonly video track to
//! any SFU that ingests WHIP (LiveKit, Cloudflare, mediamtx, Janus front-ends), with str0m
//! (sans-IO WebRTC) driven by a thin tokio shell:
//!
//! * [`exchange`]: the HTTP part — POST the SDP offer with a bearer token, read the answer
//!   and the session resource from `201 Created`, DELETE it at the end.
//! * [`estimate`] (pure): the SFU's bandwidth estimate (TWCC or REMB) → a rate cap for the
//!   stream's congestion controller.
//! * [`WhipPublisher`]: UDP socket + `str0m::Rtc` + the tap; PLI/FIR ask the stream for an
//!   IDR; lost sessions are set up again with backoff, one log line per state change.
//!
//! ```no_run
//! # async fn f(display: framecast_stream::Display) -> Result<(), framecast_whip::WhipError> {
//! use framecast_whip::{WhipOptions, WhipPublisher};
//! let opts = WhipOptions { token: Some("secret".into()), ..WhipOptions::default() };
//! let publisher = WhipPublisher::start(&display, "https://sfu.example/whip/room", opts).await?;
//! println!("{}", publisher.state().get());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
pub mod estimate;
pub mod exchange;
mod publisher;

pub use error::WhipError;
pub use framecast_stream::PublishState;
pub use publisher::{WhipOptions, WhipPublisher, WhipStats};
