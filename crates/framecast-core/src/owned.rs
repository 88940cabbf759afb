//! Owned, tightly packed frames.

use crate::{Frame, FrameError, PixelFormat, MAX_DIMENSION};

/// Bytes one tightly packed frame of `format` at `width x height` occupies.
///
/// Packed formats: `width * height * bytes_per_pixel`. NV12 and I420: the luma plane plus
/// chroma covering `ceil(width/2) x ceil(height/2)` samples (two bytes per sample pair).
/// Returns `None` on overflow.
pub fn frame_len(format: PixelFormat, width: u32, height: u32) -> Option<usize> {
    let (w, h) = (width as usize, height as usize);
    if format.is_yuv() {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        w.checked_mul(h)?
            .checked_add(cw.checked_mul(ch)?.checked_mul(2)?)
    } else {
        w.checked_mul(h)?
            .checked_mul(format.bytes_per_pixel().unwrap_or(0))
    }
}

/// A frame that owns its pixels, tightly packed.
///
/// Packed formats have `stride = width * bytes_per_pixel`. NV12 stores the Y plane (`stride =
/// width`) followed by the interleaved CbCr plane (`ceil(height/2)` rows of `2*ceil(width/2)`
/// bytes); I420 stores Y, then Cb, then Cr (`ceil(height/2)` rows of `ceil(width/2)` bytes each).
///
/// The buffer is validated once, in [`OwnedFrame::new`], so [`OwnedFrame::as_frame`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    format: PixelFormat,
    width: u32,
    height: u32,
    data: Vec<u8>,
    stride: usize,
}

impl OwnedFrame {
    /// Wraps `data` as a tightly packed frame; `data.len()` must equal
    /// [`frame_len`]`(format, width, height)`. Float formats must also be aligned for their
    /// sample type (which a `Vec<u8>` from the global allocator normally is).
    pub fn new(
        format: PixelFormat,
        width: u32,
        height: u32,
        data: Vec<u8>,
    ) -> Result<Self, FrameError> {
        let expected = frame_len(format, width, height).ok_or(FrameError::TooLarge {
            width,
            height,
            max: MAX_DIMENSION,
        })?;
        if data.len() != expected {
            return Err(FrameError::PackedLength {
                format: format.name(),
                width,
                height,
                expected,
                len: data.len(),
            });
        }
        let stride = match format.bytes_per_pixel() {
            Some(bpp) => width as usize * bpp,
            None => width as usize,
        };
        let frame = OwnedFrame {
            format,
            width,
            height,
            data,
            stride,
        };
        frame.try_as_frame()?;
        Ok(frame)
    }

    /// A frame of `format` filled with zero bytes (for YUV: Y=0, chroma 0; overwrite it).
    pub fn zeroed(format: PixelFormat, width: u32, height: u32) -> Result<Self, FrameError> {
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            // Reject before allocating; framecast-core produces its usual message.
            Frame::rgba8(&[], width, height, 0)?;
        }
        let len = frame_len(format, width, height).ok_or(FrameError::TooLarge {
            width,
            height,
            max: MAX_DIMENSION,
        })?;
        Self::new(format, width, height, vec![0; len])
    }

    fn try_as_frame(&self) -> Result<Frame<'_>, FrameError> {
        let (w, h) = (self.width, self.height);
        let d = &self.data[..];
        match self.format {
            PixelFormat::Rgba8 => Frame::rgba8(d, w, h, self.stride),
            PixelFormat::Bgra8 => Frame::bgra8(d, w, h, self.stride),
            PixelFormat::Rgb8 => Frame::rgb8(d, w, h, self.stride),
            PixelFormat::RgbaF16 => Frame::rgba_f16(d, w, h, self.stride),
            PixelFormat::RgbaF32 => Frame::rgba_f32(d, w, h, self.stride),
            PixelFormat::Nv12 => {
                let (y, uv) = d.split_at((w as usize * h as usize).min(d.len()));
                Frame::nv12(y, w as usize, uv, 2 * w.div_ceil(2) as usize, w, h)
            }
            PixelFormat::I420 => {
                let cw = w.div_ceil(2) as usize;
                let csize = cw * h.div_ceil(2) as usize;
                let (y, c) = d.split_at((w as usize * h as usize).min(d.len()));
                let (u, v) = c.split_at(csize.min(c.len()));
                Frame::i420(y, w as usize, u, cw, v, cw, w, h)
            }
        }
    }

    /// A borrowed, validated view of this frame.
    pub fn as_frame(&self) -> Frame<'_> {
        self.try_as_frame()
            .expect("OwnedFrame is validated when it is built")
    }

    /// The pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Bytes per row of the first (or only) plane.
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// All pixel bytes (planes concatenated for YUV).
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// All pixel bytes, mutably (the length cannot change, so the frame stays valid).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    /// Copy any valid frame view into a new tightly packed frame (rows are repacked, so a
    /// strided view of a larger buffer becomes a compact frame).
    pub fn copy_from(frame: &Frame<'_>) -> Result<Self, FrameError> {
        let mut owned = Self::zeroed(frame.format(), frame.width(), frame.height())?;
        owned.copy_rows_from(frame)?;
        Ok(owned)
    }

    /// Overwrite this frame's pixels with `frame`'s (same format and size; rows repacked).
    pub fn copy_rows_from(&mut self, frame: &Frame<'_>) -> Result<(), FrameError> {
        if (frame.format(), frame.width(), frame.height()) != (self.format, self.width, self.height)
        {
            return Err(FrameError::SizeMismatch {
                frame_width: frame.width(),
                frame_height: frame.height(),
                image_width: self.width,
                image_height: self.height,
            });
        }
        let mut at = 0;
        for (plane, stride, row_bytes, rows) in frame.plane_rows() {
            for r in 0..rows {
                let row = &plane[r * stride..r * stride + row_bytes];
                self.data[at..at + row_bytes].copy_from_slice(row);
                at += row_bytes;
            }
        }
        Ok(())
    }

    /// The pixel bytes, consuming the frame.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}
