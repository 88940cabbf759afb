//! H.264 bitstream toolkit for framecast. Pure functions on bytes, no I/O.
//!
//! - [`nal`]: NAL unit types, Annex B and AVCC (length-prefixed) framing and conversion.
//! - [`rbsp`]: emulation prevention and a bit reader/writer (exp-Golomb).
//! - [`sps`]: SPS parsing (via `h264-reader`) and a bit-exact rewriter that makes a stream
//!   low-latency friendly (VUI `max_num_reorder_frames = 0`, `max_dec_frame_buffering`), states
//!   its true colour (primaries, transfer, matrix, full range) and crops padded pictures.
//! - [`slice`]: slice headers reduced to reference facts (frame_num, long-term marks and
//!   references), for recovery without a keyframe.
//! - [`codec`]: RFC 6381 codec strings for WebCodecs/MSE.
//! - [`avcc`]: the `AVCDecoderConfigurationRecord` (MP4 `avcC`, WebCodecs `description`).
//!
//! Every parser returns an [`H264Error`] for malformed input; none panics.
//!
//! ```
//! use framecast_h264::{codec, nal, sps};
//!
//! // An x264 SPS (baseline, 1280x720) and PPS as an Annex B chunk.
//! let stream = [
//!     0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
//!     0, 0, 1, 0x68, 0xcb, 0x80, 0x65, 0x2c, 0x80,
//! ];
//! let sps_nal = nal::annexb_nals(&stream).find(|n| nal::nal_type(n) == Some(nal::NalType::Sps)).unwrap();
//! assert_eq!(codec::codec_string(sps_nal)?, "avc1.42C01F");
//!
//! // Tell decoders not to hold frames back, and what the colours are (BT.709, limited range).
//! let rewritten = sps::rewrite_sps(sps_nal, &sps::SpsRewrite {
//!     display_size: None,
//!     video_full_range_flag: false,
//!     colour_primaries: 1,
//!     transfer_characteristics: 1,
//!     matrix_coefficients: 1,
//!     max_dec_frame_buffering: None,
//!     max_num_reorder_frames: 0,
//!     gaps_in_frame_num_allowed: None,
//! })?;
//! let info = sps::parse_sps(&rewritten)?;
//! let restriction = info.vui.unwrap().bitstream_restriction.unwrap();
//! assert_eq!(restriction.max_num_reorder_frames, 0);
//! assert_eq!((info.width, info.height), (1280, 720));
//! # Ok::<(), framecast_h264::H264Error>(())
//! ```
#![warn(missing_docs)]

mod error;

pub mod avcc;
pub mod codec;
pub mod nal;
pub mod rbsp;
pub mod slice;
pub mod sps;

pub use error::H264Error;
