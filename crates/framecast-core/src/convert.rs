//! CPU colour conversion (SIMD through the `yuv` crate).
//!
//! To be implemented: see the crate docs.

use crate::{ColorSpace, Frame, FrameError, Yuv420Image};

/// Convert any [`Frame`] into `dst` (I420 or NV12 layout), padding odd sizes to even.
pub fn to_yuv420(
    frame: &Frame<'_>,
    cs: ColorSpace,
    dst: &mut Yuv420Image,
) -> Result<(), FrameError> {
    let _ = (frame, cs, dst);
    unimplemented!("conversion is being written")
}
