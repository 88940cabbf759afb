//! CPU colour conversion (SIMD through the `yuv` crate).
//!
//! [`to_yuv420`] turns any [`Frame`] into a [`Yuv420Image`] (I420 or NV12, whichever layout the
//! destination has). RGB inputs go through the `yuv` crate's SIMD kernels (AVX2/SSE4.1 picked at
//! run time on x86, NEON on aarch64) in its `Balanced` mode (13-bit fixed point). Float inputs are
//! first quantised to RGBA8 in a reusable scratch buffer; YUV inputs are copied (and reshuffled
//! between NV12 and I420) honouring the source strides.
//!
//! # Conventions
//!
//! * **Chroma siting and averaging**: 4:2:0 chroma is the 2x2 box average, taken over the *RGB*
//!   values of the four pixels, which are then converted once (what the `yuv` crate, libyuv and
//!   swscale's bilinear path do). [`crate::reference`] does the same in exact arithmetic.
//! * **Ranges**: limited is `Y = 16 + 219·Y'`, `C = 128 + 224·C'`; full is `Y = 255·Y'`,
//!   `C = 128 + 255·C'` clipped to 0..=255 (the JPEG/JFIF, swscale and `yuv` crate convention,
//!   which is what decoders invert when `video_full_range_flag` is set).
//! * **Odd sizes**: the image is coded at the even size. The padded column/row of luma repeats the
//!   last real column/row, and the edge chroma samples are the average including the repeated
//!   pixels (so they equal the average of the real ones).

use std::cell::RefCell;

use yuv::{
    BufferStoreMut, YuvBiPlanarImage, YuvBiPlanarImageMut, YuvConversionMode, YuvPlanarImage,
    YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};

use crate::{
    ColorSpace, Frame, FrameError, Matrix, PixelFormat, Planes, Range, Yuv420Image, YuvLayout,
};

/// Packed 8-bit RGB orders the `yuv` crate converts directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packed8 {
    Rgba,
    Bgra,
    Rgb,
}

impl Packed8 {
    fn channels(self) -> usize {
        match self {
            Packed8::Rgba | Packed8::Bgra => 4,
            Packed8::Rgb => 3,
        }
    }
}

fn yuv_range(cs: ColorSpace) -> YuvRange {
    match cs.range {
        Range::Limited => YuvRange::Limited,
        Range::Full => YuvRange::Full,
    }
}

fn yuv_matrix(cs: ColorSpace) -> YuvStandardMatrix {
    match cs.matrix {
        Matrix::Bt601 => YuvStandardMatrix::Bt601,
        Matrix::Bt709 => YuvStandardMatrix::Bt709,
    }
}

fn conv_err(e: yuv::YuvError) -> FrameError {
    FrameError::Conversion(e.to_string())
}

fn to_u32(v: usize, what: &str) -> Result<u32, FrameError> {
    u32::try_from(v).map_err(|_| FrameError::Conversion(format!("{what} {v} does not fit in u32")))
}

/// A converter that keeps scratch buffers between frames, so that converting float frames or
/// tightly cropped strided frames allocates nothing after the first frame of a given size.
///
/// [`to_yuv420`] uses one of these per thread; hold your own when you want control over where the
/// scratch memory lives.
#[derive(Debug, Default)]
pub struct Converter {
    /// Quantised RGBA8 rows of a float frame.
    scratch: Vec<u8>,
    /// The last two rows of a packed frame whose buffer ends right after the last pixel.
    tail: Vec<u8>,
}

impl Converter {
    /// A converter with empty scratch buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Convert `frame` into `dst` (see [`to_yuv420`]).
    pub fn convert(
        &mut self,
        frame: &Frame<'_>,
        cs: ColorSpace,
        dst: &mut Yuv420Image,
    ) -> Result<(), FrameError> {
        let (w, h) = (frame.width(), frame.height());
        if (w, h) != (dst.width(), dst.height()) {
            return Err(FrameError::SizeMismatch {
                frame_width: w,
                frame_height: h,
                image_width: dst.width(),
                image_height: dst.height(),
            });
        }
        match (*frame.planes(), frame.format()) {
            (Planes::Packed { data, stride }, PixelFormat::Rgba8) => {
                self.packed8(Packed8::Rgba, data, stride, cs, dst)?
            }
            (Planes::Packed { data, stride }, PixelFormat::Bgra8) => {
                self.packed8(Packed8::Bgra, data, stride, cs, dst)?
            }
            (Planes::Packed { data, stride }, PixelFormat::Rgb8) => {
                self.packed8(Packed8::Rgb, data, stride, cs, dst)?
            }
            (
                Planes::Packed { data, stride },
                fmt @ (PixelFormat::RgbaF16 | PixelFormat::RgbaF32),
            ) => {
                let mut scratch = std::mem::take(&mut self.scratch);
                quantise_float_rows(fmt, data, stride, w as usize, h as usize, &mut scratch);
                let r = self.packed8(Packed8::Rgba, &scratch, w as usize * 4, cs, dst);
                self.scratch = scratch;
                r?
            }
            (planes, _) => copy_yuv(&planes, w as usize, h as usize, dst),
        }
        pad_luma(dst);
        Ok(())
    }

    fn packed8(
        &mut self,
        kind: Packed8,
        data: &[u8],
        stride: usize,
        cs: ColorSpace,
        dst: &mut Yuv420Image,
    ) -> Result<(), FrameError> {
        let (w, h) = (dst.width() as usize, dst.height() as usize);
        let row_bytes = w * kind.channels();
        // The `yuv` crate walks row pairs with `chunks_exact(2 * stride)`, so for an even height
        // whose buffer stops right after the last pixel (which `Frame` allows) it would silently
        // skip the last two rows. Convert those two rows from a tight copy instead.
        if h % 2 == 0 && data.len() < stride * h {
            let main = h - 2;
            if main > 0 {
                convert_rows(kind, &data[..stride * main], stride, w, main, 0, cs, dst)?;
            }
            let tail = &mut self.tail;
            tail.clear();
            for r in main..h {
                let start = r * stride;
                tail.extend_from_slice(&data[start..start + row_bytes]);
            }
            convert_rows(kind, tail, row_bytes, w, 2, main, cs, dst)
        } else {
            convert_rows(kind, data, stride, w, h, 0, cs, dst)
        }
    }
}

/// Convert `rows` rows of packed RGB starting at image row `row0` (even) into `dst`.
#[allow(clippy::too_many_arguments)]
fn convert_rows(
    kind: Packed8,
    src: &[u8],
    stride: usize,
    w: usize,
    rows: usize,
    row0: usize,
    cs: ColorSpace,
    dst: &mut Yuv420Image,
) -> Result<(), FrameError> {
    debug_assert!(row0 % 2 == 0);
    let y_stride = dst.y_stride();
    let c_stride = dst.chroma_stride();
    let layout = dst.layout();
    let c_rows = rows.div_ceil(2);
    let (y, c0, c1) = dst.planes_mut();
    // Exactly `rows` luma rows: the crate finds the odd last row as the remainder of row pairs.
    let y = &mut y[row0 * y_stride..(row0 + rows) * y_stride];
    let c_off = row0 / 2 * c_stride;
    let (width, height) = (to_u32(w, "width")?, to_u32(rows, "height")?);
    let src_stride = to_u32(stride, "stride")?;
    let (range, matrix, mode) = (yuv_range(cs), yuv_matrix(cs), YuvConversionMode::Balanced);
    match layout {
        YuvLayout::I420 => {
            let mut img = YuvPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(y),
                y_stride: y_stride as u32,
                u_plane: BufferStoreMut::Borrowed(&mut c0[c_off..c_off + c_rows * c_stride]),
                u_stride: c_stride as u32,
                v_plane: BufferStoreMut::Borrowed(&mut c1[c_off..c_off + c_rows * c_stride]),
                v_stride: c_stride as u32,
                width,
                height,
            };
            match kind {
                Packed8::Rgba => {
                    yuv::rgba_to_yuv420(&mut img, src, src_stride, range, matrix, mode)
                }
                Packed8::Bgra => {
                    yuv::bgra_to_yuv420(&mut img, src, src_stride, range, matrix, mode)
                }
                Packed8::Rgb => yuv::rgb_to_yuv420(&mut img, src, src_stride, range, matrix, mode),
            }
        }
        YuvLayout::Nv12 => {
            let mut img = YuvBiPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(y),
                y_stride: y_stride as u32,
                uv_plane: BufferStoreMut::Borrowed(&mut c0[c_off..c_off + c_rows * c_stride]),
                uv_stride: c_stride as u32,
                width,
                height,
            };
            match kind {
                Packed8::Rgba => {
                    yuv::rgba_to_yuv_nv12(&mut img, src, src_stride, range, matrix, mode)
                }
                Packed8::Bgra => {
                    yuv::bgra_to_yuv_nv12(&mut img, src, src_stride, range, matrix, mode)
                }
                Packed8::Rgb => {
                    yuv::rgb_to_yuv_nv12(&mut img, src, src_stride, range, matrix, mode)
                }
            }
        }
    }
    .map_err(conv_err)
}

/// Quantise one float sample (0.0–1.0) to 8 bits: clamp, scale by 255, round half up.
/// NaN becomes 0.
#[inline(always)]
fn quantise(v: f32) -> u8 {
    // `as u8` saturates and maps NaN to 0.
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// Quantise an RGBA f16/f32 frame into tight RGBA8 rows (`w * 4` bytes each) in `out`.
fn quantise_float_rows(
    fmt: PixelFormat,
    data: &[u8],
    stride: usize,
    w: usize,
    h: usize,
    out: &mut Vec<u8>,
) {
    out.resize(w * h * 4, 0);
    for (r, dst) in out.chunks_exact_mut(w * 4).enumerate() {
        let start = r * stride;
        match fmt {
            PixelFormat::RgbaF32 => {
                // `Frame::rgba_f32` checked the 4-byte alignment of the buffer and the stride.
                let row: &[f32] = bytemuck::cast_slice(&data[start..start + w * 16]);
                for (d, s) in dst.iter_mut().zip(row) {
                    *d = quantise(*s);
                }
            }
            _ => {
                let row: &[u16] = bytemuck::cast_slice(&data[start..start + w * 8]);
                for (d, s) in dst.iter_mut().zip(row) {
                    *d = quantise(half::f16::from_bits(*s).to_f32());
                }
            }
        }
    }
}

/// Copy a YUV 4:2:0 frame into `dst`, converting between NV12 and I420 where needed. The source
/// chroma planes already cover `ceil(w/2) x ceil(h/2)`, i.e. exactly the coded chroma size.
fn copy_yuv(planes: &Planes<'_>, w: usize, h: usize, dst: &mut Yuv420Image) {
    let y_stride = dst.y_stride();
    let c_stride = dst.chroma_stride();
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let layout = dst.layout();
    let (dy, dc0, dc1) = dst.planes_mut();
    let (sy, sy_stride) = match *planes {
        Planes::Nv12 { y, y_stride, .. } | Planes::I420 { y, y_stride, .. } => (y, y_stride),
        Planes::Packed { .. } => unreachable!("packed frames are converted, not copied"),
    };
    for r in 0..h {
        dy[r * y_stride..r * y_stride + w].copy_from_slice(&sy[r * sy_stride..r * sy_stride + w]);
    }
    match (*planes, layout) {
        (Planes::Nv12 { uv, uv_stride, .. }, YuvLayout::Nv12) => {
            for r in 0..ch {
                dc0[r * c_stride..r * c_stride + 2 * cw]
                    .copy_from_slice(&uv[r * uv_stride..r * uv_stride + 2 * cw]);
            }
        }
        (Planes::Nv12 { uv, uv_stride, .. }, YuvLayout::I420) => {
            for r in 0..ch {
                let src = &uv[r * uv_stride..r * uv_stride + 2 * cw];
                let du = &mut dc0[r * c_stride..r * c_stride + cw];
                let dv = &mut dc1[r * c_stride..r * c_stride + cw];
                for ((pair, u), v) in src.chunks_exact(2).zip(du).zip(dv) {
                    *u = pair[0];
                    *v = pair[1];
                }
            }
        }
        (
            Planes::I420 {
                u,
                u_stride,
                v,
                v_stride,
                ..
            },
            YuvLayout::I420,
        ) => {
            for r in 0..ch {
                dc0[r * c_stride..r * c_stride + cw]
                    .copy_from_slice(&u[r * u_stride..r * u_stride + cw]);
                dc1[r * c_stride..r * c_stride + cw]
                    .copy_from_slice(&v[r * v_stride..r * v_stride + cw]);
            }
        }
        (
            Planes::I420 {
                u,
                u_stride,
                v,
                v_stride,
                ..
            },
            YuvLayout::Nv12,
        ) => {
            for r in 0..ch {
                let su = &u[r * u_stride..r * u_stride + cw];
                let sv = &v[r * v_stride..r * v_stride + cw];
                let d = &mut dc0[r * c_stride..r * c_stride + 2 * cw];
                for ((pair, u), v) in d.chunks_exact_mut(2).zip(su).zip(sv) {
                    pair[0] = *u;
                    pair[1] = *v;
                }
            }
        }
        (Planes::Packed { .. }, _) => unreachable!(),
    }
}

/// Fill the padded luma column/row of an odd-sized image by repeating the last real one.
fn pad_luma(dst: &mut Yuv420Image) {
    let (w, h) = (dst.width() as usize, dst.height() as usize);
    let stride = dst.y_stride();
    let y = dst.y_mut();
    if w % 2 == 1 {
        for r in 0..h {
            y[r * stride + w] = y[r * stride + w - 1];
        }
    }
    if h % 2 == 1 {
        y.copy_within((h - 1) * stride..h * stride, h * stride);
    }
}

thread_local! {
    static CONVERTER: RefCell<Converter> = RefCell::new(Converter::new());
}

/// Convert any [`Frame`] into `dst` (I420 or NV12 layout), padding odd sizes to even.
///
/// `dst` must have the frame's display size, else [`FrameError::SizeMismatch`]. RGB inputs are
/// converted with `cs` (matrix and range); YUV inputs are copied as they are (they are assumed
/// to be in `cs` already). Uses a per-thread [`Converter`], so float frames do not allocate after
/// the first frame on a thread.
pub fn to_yuv420(
    frame: &Frame<'_>,
    cs: ColorSpace,
    dst: &mut Yuv420Image,
) -> Result<(), FrameError> {
    CONVERTER.with(|c| match c.try_borrow_mut() {
        Ok(mut c) => c.convert(frame, cs, dst),
        // Only reachable through re-entrancy, which cannot happen today; stay correct anyway.
        Err(_) => Converter::new().convert(frame, cs, dst),
    })
}

/// Convert a 4:2:0 image back to RGBA8 of its display size (`width x height`, stride
/// `width * 4`, alpha 255), for verification and PSNR. Chroma is upsampled by repetition.
pub fn yuv420_to_rgba(img: &Yuv420Image, cs: ColorSpace) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let mut out = vec![0u8; w as usize * h as usize * 4];
    let (range, matrix) = (yuv_range(cs), yuv_matrix(cs));
    let r = match img.layout() {
        YuvLayout::I420 => {
            let planar = YuvPlanarImage {
                y_plane: img.y(),
                y_stride: img.y_stride() as u32,
                u_plane: img.u(),
                u_stride: img.chroma_stride() as u32,
                v_plane: img.v(),
                v_stride: img.chroma_stride() as u32,
                width: w,
                height: h,
            };
            yuv::yuv420_to_rgba(&planar, &mut out, w * 4, range, matrix)
        }
        YuvLayout::Nv12 => {
            let bi = YuvBiPlanarImage {
                y_plane: img.y(),
                y_stride: img.y_stride() as u32,
                uv_plane: img.uv(),
                uv_stride: img.chroma_stride() as u32,
                width: w,
                height: h,
            };
            yuv::yuv_nv12_to_rgba(
                &bi,
                &mut out,
                w * 4,
                range,
                matrix,
                YuvConversionMode::Balanced,
            )
        }
    };
    // The image's planes are consistent by construction, so the crate cannot refuse them.
    r.expect("Yuv420Image planes are always valid for the yuv crate");
    out
}

/// Any [`Frame`] as tight RGBA8 of its display size (alpha 255). Float frames are quantised as
/// [`to_yuv420`] does; YUV frames are converted to RGB with `cs`.
pub fn frame_to_rgba8(frame: &Frame<'_>, cs: ColorSpace) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    match (*frame.planes(), frame.format()) {
        (Planes::Packed { data, stride }, fmt) => {
            let mut out = Vec::with_capacity(w * h * 4);
            match fmt {
                PixelFormat::RgbaF16 | PixelFormat::RgbaF32 => {
                    quantise_float_rows(fmt, data, stride, w, h, &mut out);
                    for px in out.chunks_exact_mut(4) {
                        px[3] = 255;
                    }
                }
                _ => {
                    let bpp = fmt.bytes_per_pixel().unwrap_or(4);
                    for r in 0..h {
                        let row = &data[r * stride..r * stride + w * bpp];
                        for px in row.chunks_exact(bpp) {
                            match fmt {
                                PixelFormat::Bgra8 => {
                                    out.extend_from_slice(&[px[2], px[1], px[0], 255])
                                }
                                _ => out.extend_from_slice(&[px[0], px[1], px[2], 255]),
                            }
                        }
                    }
                }
            }
            out
        }
        (_, _) => {
            let mut img = Yuv420Image::new(w as u32, h as u32, YuvLayout::I420)
                .expect("a valid frame has valid dimensions");
            to_yuv420(frame, cs, &mut img).expect("sizes match by construction");
            yuv420_to_rgba(&img, cs)
        }
    }
}

fn psnr_from_mse(sum_sq: u64, n: u64) -> f64 {
    if sum_sq == 0 || n == 0 {
        return f64::INFINITY;
    }
    let mse = sum_sq as f64 / n as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// PSNR in dB over the R, G and B channels of two same-size RGBA8 buffers (alpha ignored);
/// `f64::INFINITY` when they are identical.
///
/// # Panics
/// If the lengths differ or are not a multiple of 4.
pub fn psnr_rgb(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "psnr_rgb: buffers differ in length");
    assert_eq!(a.len() % 4, 0, "psnr_rgb: length is not a multiple of 4");
    let mut sum = 0u64;
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..3 {
            let d = pa[c] as i64 - pb[c] as i64;
            sum += (d * d) as u64;
        }
    }
    psnr_from_mse(sum, (a.len() / 4 * 3) as u64)
}

/// PSNR in dB between two same-size 8-bit planes; `f64::INFINITY` when identical.
///
/// # Panics
/// If the lengths differ.
pub fn psnr_plane(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "psnr_plane: planes differ in length");
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as i64 - y as i64;
            (d * d) as u64
        })
        .sum();
    psnr_from_mse(sum, a.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_clamps_and_rounds() {
        assert_eq!(quantise(-1.0), 0);
        assert_eq!(quantise(2.0), 255);
        assert_eq!(quantise(f32::NAN), 0);
        assert_eq!(quantise(0.5), 128);
        assert_eq!(quantise(1.0 / 255.0), 1);
        assert_eq!(quantise(0.4 / 255.0), 0);
    }

    #[test]
    fn psnr_identical_is_infinite() {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(psnr_rgb(&a, &a), f64::INFINITY);
        assert_eq!(psnr_plane(&a, &a), f64::INFINITY);
        // Alpha is ignored.
        let b = [1u8, 2, 3, 0, 5, 6, 7, 0];
        assert_eq!(psnr_rgb(&a, &b), f64::INFINITY);
        // One channel off by 1 in 6 samples: MSE 1/6.
        let c = [2u8, 2, 3, 4, 5, 6, 7, 8];
        let expect = 10.0 * (255.0f64 * 255.0 * 6.0).log10();
        assert!((psnr_rgb(&a, &c) - expect).abs() < 1e-9);
    }

    #[test]
    fn size_mismatch_names_both_sizes() {
        let px = [0u8; 4 * 4 * 3];
        let f = Frame::rgba8(&px, 4, 3, 16).unwrap();
        let mut img = Yuv420Image::new(4, 4, YuvLayout::Nv12).unwrap();
        let e = to_yuv420(&f, ColorSpace::default(), &mut img).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("4x3") && msg.contains("4x4"), "{msg}");
    }

    #[test]
    fn tight_cropped_buffer_converts_last_rows() {
        // 2 rows, stride 12 for width 2: the buffer stops right after the last pixel.
        let mut px = vec![0u8; 12 + 8];
        px[12..20].copy_from_slice(&[255, 255, 255, 255, 255, 255, 255, 255]);
        let f = Frame::rgba8(&px, 2, 2, 12).unwrap();
        let mut img = Yuv420Image::new(2, 2, YuvLayout::I420).unwrap();
        to_yuv420(&f, ColorSpace::default(), &mut img).unwrap();
        assert_eq!(img.y(), &[16, 16, 235, 235]);
    }
}
