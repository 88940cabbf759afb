//! framecast-encode: one H.264 encoder contract, many backends.
//!
//! [`Encoder`] takes [`framecast_core::Frame`]s and hands out [`EncodedPacket`]s. Whatever the
//! backend, the packets obey the same invariants, enforced by the shared normaliser and checked
//! by the [`conformance`] suite:
//!
//! * the first packet is an IDR with SPS and PPS in band, and SPS/PPS precede every IDR;
//! * output order equals input order and `dts == pts` (no B-frames), unless B-frames were asked
//!   for ([`EncoderConfig::bframes`]): then decode order, monotonic `dts <= pts`, and the SPS
//!   declares the reordering;
//! * the SPS's VUI says `max_num_reorder_frames = 0` (without B-frames) and carries the true
//!   colour description;
//! * a forced keyframe lands on exactly that frame, and the cadence equals the interval;
//! * the codec string matches the SPS bytes, and every packet carries its frame's token.
//!
//! Backends: `openh264` (default feature), `x264` (feature `x264`: links the system libx264,
//! which makes the binary GPL), `videotoolbox` (macOS). See [`registry`].
//!
//! ```no_run
//! use framecast_encode::{Encoder, EncoderConfig, EncodeMode, BackpressurePolicy};
//! let mut config = EncoderConfig::new(1280, 720);
//! config.mode = EncodeMode::Pipelined { max_in_flight: 2, policy: BackpressurePolicy::DropOld };
//! let encoder = Encoder::new(config)?;
//! # Ok::<(), framecast_encode::EncodeError>(())
//! ```

#![warn(missing_docs)]

pub mod backend;
mod backends;
mod config;
pub mod conformance;
pub mod decode;
mod driver;
mod dts;
mod encoder;
mod error;
pub mod file;
mod keyframes;
#[cfg(feature = "openh264")]
mod ltr;
mod meta;
pub mod normalize;
mod packet;
mod pipeline;
pub mod registry;
#[cfg(feature = "x264")]
mod short_refs;

pub use config::{
    default_bitrate, BackpressurePolicy, EncodeMode, EncoderConfig, OutputFormat, ProfileHint,
    RateControl,
};
pub use encoder::Encoder;
pub use error::EncodeError;
pub use meta::FrameMeta;
pub use packet::{
    DropReason, DroppedFrame, EncodedPacket, EncoderEvent, PacketTimings, SendOutcome,
};

/// Whether the linked OpenH264 has its assembly, asked of the library at run time.
#[cfg(feature = "openh264")]
pub use backends::openh264_asm::Assembly as OpenH264Assembly;

/// Whether the linked OpenH264 has its assembly (see [`OpenH264Assembly`]).
#[cfg(feature = "openh264")]
pub fn openh264_assembly() -> OpenH264Assembly {
    OpenH264Assembly::probe()
}
