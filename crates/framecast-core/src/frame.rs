//! Borrowed frame views.

use crate::FrameError;

/// Largest accepted width or height. H.264 level 6.2 tops out at 8192x4320; 16384 leaves room for
/// tall/wide frames while still catching garbage (e.g. a negative size cast to u32).
pub const MAX_DIMENSION: u32 = 16384;

/// Pixel layout of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelFormat {
    /// 8-bit R, G, B, A per pixel (alpha ignored).
    Rgba8,
    /// 8-bit B, G, R, A per pixel (alpha ignored).
    Bgra8,
    /// 8-bit R, G, B per pixel.
    Rgb8,
    /// IEEE half-float R, G, B, A per pixel, 0.0–1.0 (native endian).
    RgbaF16,
    /// f32 R, G, B, A per pixel, 0.0–1.0 (native endian).
    RgbaF32,
    /// 4:2:0 with a Y plane and an interleaved CbCr plane.
    Nv12,
    /// 4:2:0 with separate Y, Cb and Cr planes.
    I420,
}

impl PixelFormat {
    /// Bytes per pixel for packed formats; `None` for planar YUV.
    pub fn bytes_per_pixel(self) -> Option<usize> {
        match self {
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => Some(4),
            PixelFormat::Rgb8 => Some(3),
            PixelFormat::RgbaF16 => Some(8),
            PixelFormat::RgbaF32 => Some(16),
            PixelFormat::Nv12 | PixelFormat::I420 => None,
        }
    }

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgba8 => "rgba",
            PixelFormat::Bgra8 => "bgra",
            PixelFormat::Rgb8 => "rgb24",
            PixelFormat::RgbaF16 => "rgba-f16",
            PixelFormat::RgbaF32 => "rgba-f32",
            PixelFormat::Nv12 => "nv12",
            PixelFormat::I420 => "i420",
        }
    }

    /// Whether this is one of the YUV 4:2:0 formats.
    pub fn is_yuv(self) -> bool {
        matches!(self, PixelFormat::Nv12 | PixelFormat::I420)
    }
}

/// The planes of a [`Frame`]. Strides are in bytes.
#[derive(Debug, Clone, Copy)]
pub enum Planes<'a> {
    /// One interleaved plane (RGBA8, BGRA8, RGB8, RGBA f16/f32).
    Packed {
        /// Pixel bytes.
        data: &'a [u8],
        /// Bytes from one row to the next.
        stride: usize,
    },
    /// NV12.
    Nv12 {
        /// Luma.
        y: &'a [u8],
        /// Luma stride.
        y_stride: usize,
        /// Interleaved Cb, Cr at half resolution.
        uv: &'a [u8],
        /// Chroma stride.
        uv_stride: usize,
    },
    /// I420.
    I420 {
        /// Luma.
        y: &'a [u8],
        /// Luma stride.
        y_stride: usize,
        /// Cb at half resolution.
        u: &'a [u8],
        /// Cb stride.
        u_stride: usize,
        /// Cr at half resolution.
        v: &'a [u8],
        /// Cr stride.
        v_stride: usize,
    },
}

/// A validated, borrowed view of one picture in CPU memory.
///
/// Construction checks dimensions, strides and buffer lengths, so code that receives a `Frame`
/// never indexes out of bounds. YUV frames may have odd dimensions; their chroma planes then
/// cover `ceil(width/2) x ceil(height/2)` samples.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    format: PixelFormat,
    width: u32,
    height: u32,
    planes: Planes<'a>,
}

pub(crate) fn check_dimensions(width: u32, height: u32) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::ZeroDimension { width, height });
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(FrameError::TooLarge {
            width,
            height,
            max: MAX_DIMENSION,
        });
    }
    Ok(())
}

fn check_plane(
    plane: &'static str,
    data: &[u8],
    stride: usize,
    row_bytes: usize,
    rows: usize,
    width: u32,
) -> Result<(), FrameError> {
    if stride < row_bytes {
        return Err(FrameError::StrideTooShort {
            plane,
            stride,
            row_bytes,
            width,
        });
    }
    // The last row only needs `row_bytes`, which lets callers pass tightly cropped buffers.
    let needed = stride * (rows - 1) + row_bytes;
    if data.len() < needed {
        return Err(FrameError::BufferTooShort {
            plane,
            len: data.len(),
            needed,
            rows,
            stride,
        });
    }
    Ok(())
}

impl<'a> Frame<'a> {
    fn packed(
        format: PixelFormat,
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let bpp = format.bytes_per_pixel().expect("packed format");
        check_plane(
            "packed",
            data,
            stride,
            width as usize * bpp,
            height as usize,
            width,
        )?;
        Ok(Frame {
            format,
            width,
            height,
            planes: Planes::Packed { data, stride },
        })
    }

    /// An RGBA8 frame; `stride` is bytes per row (at least `4 * width`).
    pub fn rgba8(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        Self::packed(PixelFormat::Rgba8, data, width, height, stride)
    }

    /// A BGRA8 frame; `stride` is bytes per row (at least `4 * width`).
    pub fn bgra8(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        Self::packed(PixelFormat::Bgra8, data, width, height, stride)
    }

    /// An RGB8 frame; `stride` is bytes per row (at least `3 * width`).
    pub fn rgb8(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        Self::packed(PixelFormat::Rgb8, data, width, height, stride)
    }

    /// An RGBA half-float frame (values 0.0–1.0) given as raw bytes; `stride` is bytes per row
    /// (at least `8 * width`) and the buffer must be 2-byte aligned.
    pub fn rgba_f16(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        if data.as_ptr() as usize % 2 != 0 || stride % 2 != 0 {
            return Err(FrameError::Misaligned {
                format: "rgba-f16",
                align: 2,
            });
        }
        Self::packed(PixelFormat::RgbaF16, data, width, height, stride)
    }

    /// An RGBA f32 frame (values 0.0–1.0) given as raw bytes; `stride` is bytes per row
    /// (at least `16 * width`) and the buffer must be 4-byte aligned.
    pub fn rgba_f32(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        if data.as_ptr() as usize % 4 != 0 || stride % 4 != 0 {
            return Err(FrameError::Misaligned {
                format: "rgba-f32",
                align: 4,
            });
        }
        Self::packed(PixelFormat::RgbaF32, data, width, height, stride)
    }

    /// An NV12 frame. The UV plane holds `ceil(height/2)` rows of `2*ceil(width/2)` bytes.
    pub fn nv12(
        y: &'a [u8],
        y_stride: usize,
        uv: &'a [u8],
        uv_stride: usize,
        width: u32,
        height: u32,
    ) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let (cw, ch) = chroma_size(width, height);
        check_plane("Y", y, y_stride, width as usize, height as usize, width)?;
        check_plane("UV", uv, uv_stride, 2 * cw, ch, width)?;
        Ok(Frame {
            format: PixelFormat::Nv12,
            width,
            height,
            planes: Planes::Nv12 {
                y,
                y_stride,
                uv,
                uv_stride,
            },
        })
    }

    /// An NV12 frame in one contiguous buffer: `height` rows of Y then `ceil(height/2)` rows of UV,
    /// both of stride `stride`.
    pub fn nv12_contiguous(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let split = (stride * height as usize).min(data.len());
        let (y, uv) = data.split_at(split);
        Self::nv12(y, stride, uv, stride, width, height)
    }

    /// An I420 frame. U and V hold `ceil(height/2)` rows of `ceil(width/2)` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn i420(
        y: &'a [u8],
        y_stride: usize,
        u: &'a [u8],
        u_stride: usize,
        v: &'a [u8],
        v_stride: usize,
        width: u32,
        height: u32,
    ) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let (cw, ch) = chroma_size(width, height);
        check_plane("Y", y, y_stride, width as usize, height as usize, width)?;
        check_plane("U", u, u_stride, cw, ch, width)?;
        check_plane("V", v, v_stride, cw, ch, width)?;
        Ok(Frame {
            format: PixelFormat::I420,
            width,
            height,
            planes: Planes::I420 {
                y,
                y_stride,
                u,
                u_stride,
                v,
                v_stride,
            },
        })
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
    /// The validated planes.
    pub fn planes(&self) -> &Planes<'a> {
        &self.planes
    }

    /// Each plane in storage order (packed: one; NV12: Y, UV; I420: Y, U, V) as
    /// `(bytes, stride, bytes per row, rows)`. Row `r` of a plane is
    /// `bytes[r * stride..r * stride + bytes_per_row]`, always in bounds.
    pub fn plane_rows(&self) -> Vec<(&'a [u8], usize, usize, usize)> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = chroma_size(self.width, self.height);
        match self.planes {
            Planes::Packed { data, stride } => {
                let bpp = self.format.bytes_per_pixel().expect("packed format");
                vec![(data, stride, w * bpp, h)]
            }
            Planes::Nv12 {
                y,
                y_stride,
                uv,
                uv_stride,
            } => vec![(y, y_stride, w, h), (uv, uv_stride, 2 * cw, ch)],
            Planes::I420 {
                y,
                y_stride,
                u,
                u_stride,
                v,
                v_stride,
            } => vec![
                (y, y_stride, w, h),
                (u, u_stride, cw, ch),
                (v, v_stride, cw, ch),
            ],
        }
    }
}

/// Chroma plane size `(ceil(w/2), ceil(h/2))` for a 4:2:0 picture of `width x height`.
pub(crate) fn chroma_size(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_and_huge() {
        let buf = [0u8; 16];
        assert_eq!(
            Frame::rgba8(&buf, 0, 1, 0).unwrap_err(),
            FrameError::ZeroDimension {
                width: 0,
                height: 1
            }
        );
        let e = Frame::rgba8(&buf, 20000, 1, 80000).unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { width: 20000, .. }));
        assert!(e.to_string().contains("20000x1"));
    }

    #[test]
    fn rejects_short_stride_and_buffer() {
        let buf = [0u8; 4 * 4 * 2];
        let e = Frame::rgba8(&buf, 4, 2, 15).unwrap_err();
        assert_eq!(
            e,
            FrameError::StrideTooShort {
                plane: "packed",
                stride: 15,
                row_bytes: 16,
                width: 4
            }
        );
        let e = Frame::rgba8(&buf, 4, 3, 16).unwrap_err();
        assert_eq!(
            e,
            FrameError::BufferTooShort {
                plane: "packed",
                len: 32,
                needed: 48,
                rows: 3,
                stride: 16
            }
        );
        assert!(e.to_string().contains("32 bytes"), "{e}");
        assert!(Frame::rgba8(&buf, 4, 2, 16).is_ok());
    }

    #[test]
    fn odd_nv12_needs_rounded_up_chroma() {
        // 3x3: Y 3 rows of 3, UV 2 rows of 4 bytes.
        let y = [0u8; 9];
        let uv = [0u8; 8];
        assert!(Frame::nv12(&y, 3, &uv, 4, 3, 3).is_ok());
        let e = Frame::nv12(&y, 3, &uv[..7], 4, 3, 3).unwrap_err();
        assert!(matches!(e, FrameError::BufferTooShort { plane: "UV", .. }));
        let e = Frame::nv12(&y, 3, &uv, 3, 3, 3).unwrap_err();
        assert!(matches!(e, FrameError::StrideTooShort { plane: "UV", .. }));
    }

    #[test]
    fn float_frames_check_alignment() {
        let buf = vec![0f32; 4 * 4];
        let bytes: &[u8] = bytemuck::cast_slice(&buf);
        assert!(Frame::rgba_f32(bytes, 2, 2, 32).is_ok());
        assert!(matches!(
            Frame::rgba_f32(&bytes[1..], 1, 1, 16),
            Err(FrameError::Misaligned { .. })
        ));
    }
}
