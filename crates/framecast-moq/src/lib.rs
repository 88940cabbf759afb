//! framecast-moq: hand a framecast stream to Media over QUIC fan-out.
//!
//! A framecast server encodes once per group of viewers on one machine. For a whole class or
//! a public audience, [`MoqPublisher`] publishes the stream's already-encoded H.264 (no second
//! encode: it taps the stream like a viewer, see [`framecast_stream::PacketTap`]) as a
//! broadcast on a MoQ relay (`moq-relay`, which clusters), in the MoQ project's own media
//! format (hang: a JSON catalog plus one avc3 H.264 track, a group per IDR), using the
//! project's crates (`moq-tokio` for the session and reconnects, `moq-mux` for the format).
//! Browsers watch through the relay over WebTransport with WebCodecs.
//!
//! * [`MoqTarget`] (pure): `https://relay:4443/[scope/]name` → session URL and broadcast.
//! * [`MoqPublisher`]: the shell (tap → importer → relay session).
//!
//! ```no_run
//! # async fn f(display: framecast_stream::Display) -> Result<(), framecast_moq::MoqError> {
//! use framecast_moq::{MoqOptions, MoqPublisher, MoqTarget};
//! let target: MoqTarget = "https://relay.example:4443/lab".parse()?;
//! let publisher = MoqPublisher::start(&display, target, MoqOptions::default()).await?;
//! println!("{}", publisher.state().get());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod publisher;
mod target;

pub use error::MoqError;
pub use framecast_stream::{PublishState, StateLog};
pub use publisher::{MoqOptions, MoqPublisher, MoqStats, VIDEO_TRACK};
pub use target::MoqTarget;
