//! H.264 decoders: OpenH264 (verification, and streams without B-frames) and, with the `libav`
//! feature, libavcodec (everything cameras and x264 produce: Main/High profile, B-frames, output
//! in presentation order with each picture's own timestamp).

#[cfg(feature = "libav")]
mod libav;
#[cfg(feature = "openh264")]
mod openh264;
mod picture;

#[cfg(feature = "libav")]
pub use libav::LibavDecoder;
#[cfg(feature = "openh264")]
pub use openh264::H264Decoder;

pub use picture::{Picture, VideoDecoder};

use crate::EncodeError;

/// The most capable decoder compiled in: libavcodec when built with `libav`, else OpenH264.
pub fn best() -> Result<Box<dyn VideoDecoder>, EncodeError> {
    #[cfg(feature = "libav")]
    return Ok(Box::new(LibavDecoder::new()?));
    #[cfg(all(not(feature = "libav"), feature = "openh264"))]
    return Ok(Box::new(H264Decoder::new()?));
    #[cfg(not(any(feature = "libav", feature = "openh264")))]
    Err(EncodeError::InvalidConfig(
        "this build has no H.264 decoder (rebuild with feature openh264 or libav)".into(),
    ))
}

/// What a decoder can do, known without creating one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderInfo {
    /// [`VideoDecoder::name`].
    pub name: &'static str,
    /// [`VideoDecoder::reorders`]: B-frames decode, in presentation order.
    pub b_frames: bool,
}

/// The decoder [`best`] returns (`None`: this build has none).
pub fn best_info() -> Option<DecoderInfo> {
    if cfg!(feature = "libav") {
        Some(DecoderInfo {
            name: "libavcodec",
            b_frames: true,
        })
    } else if cfg!(feature = "openh264") {
        Some(DecoderInfo {
            name: "openh264",
            b_frames: false,
        })
    } else {
        None
    }
}
