//! framecast-core: the types every other framecast crate shares.
//!
//! * [`Frame`]: a borrowed, validated view of one picture in CPU memory (RGBA8, BGRA8, RGB8,
//!   RGBA f16, RGBA f32, NV12 or I420) with explicit strides.
//! * [`ColorSpace`]: matrix, range, primaries and transfer, with their H.264 VUI code points.
//! * [`Yuv420Image`]: an owned 4:2:0 picture (I420 or NV12) padded to even dimensions, which is
//!   what encoders consume; conversion into it lives in [`convert`].
//!
//! ```
//! use framecast_core::{convert, ColorSpace, Frame, Yuv420Image, YuvLayout};
//!
//! let (w, h) = (33, 17); // odd sizes are fine: the image is padded to 34x18 internally
//! let rgba = vec![128u8; w * h * 4];
//! let frame = Frame::rgba8(&rgba, w as u32, h as u32, w * 4).unwrap();
//! let mut yuv = Yuv420Image::new(w as u32, h as u32, YuvLayout::I420).unwrap();
//! convert::to_yuv420(&frame, ColorSpace::default(), &mut yuv).unwrap();
//! assert_eq!((yuv.coded_width(), yuv.coded_height()), (34, 18));
//! ```

#![warn(missing_docs)]

mod color;
pub mod convert;
mod error;
mod frame;
mod image;
mod owned;
mod rate;
pub mod reference;

pub use color::{ColorSpace, Matrix, Primaries, Range, Transfer};
pub use error::FrameError;
pub use frame::{Frame, PixelFormat, Planes, MAX_DIMENSION};
pub use image::{Yuv420Image, YuvLayout};
pub use owned::{frame_len, OwnedFrame};
pub use rate::fps_ratio;
