//! Scalar reference conversions used by tests to check the SIMD paths.
//!
//! Written straight from the BT.601 / BT.709 equations in `f64`, with no lookup tables and no
//! `yuv` crate, so that it can serve as an independent oracle:
//!
//! ```text
//! E'y  = Kr·R' + Kg·G' + Kb·B'            (Kg = 1 - Kr - Kb; R', G', B' = code / 255)
//! E'cb = (B' - E'y) / (2·(1 - Kb))         (-0.5 ..= 0.5)
//! E'cr = (R' - E'y) / (2·(1 - Kr))
//! limited: Y = 16 + 219·E'y,  Cb/Cr = 128 + 224·E'c
//! full:    Y =      255·E'y,  Cb/Cr = 128 + 255·E'c   (clipped to 0..=255)
//! ```
//!
//! Full range scales chroma by 255 (not 256), as JPEG/JFIF, FFmpeg's swscale and the `yuv` crate
//! do, and as decoders invert when `video_full_range_flag` is 1.
//!
//! 4:2:0 chroma is the 2x2 box average of the four pixels' **RGB** values (exact, in `f64`),
//! converted once; at odd edges the missing pixels repeat the last column/row, as in
//! [`crate::convert`]. Float inputs are quantised to 8 bits first (clamp to 0..=1, ×255, round),
//! exactly as the SIMD path does.

use crate::{ColorSpace, Frame, PixelFormat, Planes, Range, Yuv420Image, YuvLayout};

/// (Y scale, Y offset, C scale) for the range.
fn range_params(cs: ColorSpace) -> (f64, f64, f64) {
    match cs.range {
        Range::Limited => (219.0, 16.0, 224.0),
        Range::Full => (255.0, 0.0, 255.0),
    }
}

/// RGB code values (0..=255, may be fractional) to unrounded Y, Cb, Cr code values.
pub fn rgb_to_ycbcr(rgb: [f64; 3], cs: ColorSpace) -> [f64; 3] {
    let (kr, kb) = cs.kr_kb();
    let kg = 1.0 - kr - kb;
    let [r, g, b] = rgb.map(|v| v / 255.0);
    let ey = kr * r + kg * g + kb * b;
    let ecb = (b - ey) / (2.0 * (1.0 - kb));
    let ecr = (r - ey) / (2.0 * (1.0 - kr));
    let (ys, yo, cscale) = range_params(cs);
    [yo + ys * ey, 128.0 + cscale * ecb, 128.0 + cscale * ecr]
}

/// Unrounded R, G, B code values (0..=255 before clipping) from Y, Cb, Cr code values: the exact
/// inverse of [`rgb_to_ycbcr`].
pub fn ycbcr_to_rgb(ycc: [f64; 3], cs: ColorSpace) -> [f64; 3] {
    let (kr, kb) = cs.kr_kb();
    let kg = 1.0 - kr - kb;
    let (ys, yo, cscale) = range_params(cs);
    let ey = (ycc[0] - yo) / ys;
    let ecb = (ycc[1] - 128.0) / cscale;
    let ecr = (ycc[2] - 128.0) / cscale;
    let r = ey + 2.0 * (1.0 - kr) * ecr;
    let b = ey + 2.0 * (1.0 - kb) * ecb;
    let g = (ey - kr * r - kb * b) / kg;
    [r * 255.0, g * 255.0, b * 255.0]
}

/// Round to the nearest integer and clip to 0..=255.
pub fn to_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Quantise a float sample (0.0–1.0) to 8 bits: clamp, ×255, round half up; NaN → 0.
pub fn quantise(v: f32) -> u8 {
    if v.is_nan() {
        return 0;
    }
    (v.clamp(0.0, 1.0) as f64 * 255.0 + 0.5).floor() as u8
}

/// The 8-bit RGB of pixel (x, y) of a packed frame. Panics for YUV frames.
pub fn pixel_rgb(frame: &Frame<'_>, x: usize, y: usize) -> [u8; 3] {
    let Planes::Packed { data, stride } = *frame.planes() else {
        panic!("pixel_rgb on a YUV frame");
    };
    let fmt = frame.format();
    let bpp = fmt.bytes_per_pixel().expect("packed");
    let p = &data[y * stride + x * bpp..y * stride + (x + 1) * bpp];
    match fmt {
        PixelFormat::Rgba8 | PixelFormat::Rgb8 => [p[0], p[1], p[2]],
        PixelFormat::Bgra8 => [p[2], p[1], p[0]],
        PixelFormat::RgbaF16 => std::array::from_fn(|c| {
            quantise(half::f16::from_ne_bytes([p[2 * c], p[2 * c + 1]]).to_f32())
        }),
        PixelFormat::RgbaF32 => std::array::from_fn(|c| {
            quantise(f32::from_ne_bytes(p[4 * c..4 * c + 4].try_into().unwrap()))
        }),
        _ => unreachable!(),
    }
}

/// The Y, Cb, Cr samples of a YUV frame at luma (x, y) (chroma of the 2x2 block holding it).
fn yuv_sample(frame: &Frame<'_>, x: usize, y: usize) -> [u8; 3] {
    match *frame.planes() {
        Planes::Nv12 {
            y: yp,
            y_stride,
            uv,
            uv_stride,
        } => {
            let c = (y / 2) * uv_stride + (x / 2) * 2;
            [yp[y * y_stride + x], uv[c], uv[c + 1]]
        }
        Planes::I420 {
            y: yp,
            y_stride,
            u,
            u_stride,
            v,
            v_stride,
        } => [
            yp[y * y_stride + x],
            u[(y / 2) * u_stride + x / 2],
            v[(y / 2) * v_stride + x / 2],
        ],
        Planes::Packed { .. } => panic!("yuv_sample on a packed frame"),
    }
}

/// Reference conversion of any frame into a new `layout` image (coded at even size, padded by
/// repeating the last column/row).
pub fn to_yuv420(frame: &Frame<'_>, cs: ColorSpace, layout: YuvLayout) -> Yuv420Image {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mut img = Yuv420Image::new(w as u32, h as u32, layout).expect("valid frame size");
    let (cw, ch) = (img.coded_width() as usize, img.coded_height() as usize);
    let y_stride = img.y_stride();
    let c_stride = img.chroma_stride();
    // Edge replication: coded (x, y) reads the real pixel (min(x, w-1), min(y, h-1)).
    let at = |x: usize, y: usize| (x.min(w - 1), y.min(h - 1));
    let is_yuv = frame.format().is_yuv();
    let (yp, c0, c1) = img.planes_mut();
    for y in 0..ch {
        for x in 0..cw {
            let (sx, sy) = at(x, y);
            yp[y * y_stride + x] = if is_yuv {
                yuv_sample(frame, sx, sy)[0]
            } else {
                let rgb = pixel_rgb(frame, sx, sy).map(f64::from);
                to_u8(rgb_to_ycbcr(rgb, cs)[0])
            };
        }
    }
    for cy in 0..ch / 2 {
        for cx in 0..cw / 2 {
            let (cb, cr) = if is_yuv {
                let (sx, sy) = at(2 * cx, 2 * cy);
                let s = yuv_sample(frame, sx, sy);
                (s[1], s[2])
            } else {
                let mut sum = [0f64; 3];
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (sx, sy) = at(2 * cx + dx, 2 * cy + dy);
                    let p = pixel_rgb(frame, sx, sy);
                    for c in 0..3 {
                        sum[c] += p[c] as f64;
                    }
                }
                let ycc = rgb_to_ycbcr(sum.map(|s| s / 4.0), cs);
                (to_u8(ycc[1]), to_u8(ycc[2]))
            };
            match layout {
                YuvLayout::I420 => {
                    c0[cy * c_stride + cx] = cb;
                    c1[cy * c_stride + cx] = cr;
                }
                YuvLayout::Nv12 => {
                    c0[cy * c_stride + 2 * cx] = cb;
                    c0[cy * c_stride + 2 * cx + 1] = cr;
                }
            }
        }
    }
    img
}

/// The (Cb, Cr) of the chroma sample at chroma coordinates (cx, cy) of an image.
pub fn chroma_at(img: &Yuv420Image, cx: usize, cy: usize) -> (u8, u8) {
    let s = img.chroma_stride();
    match img.layout() {
        YuvLayout::I420 => (img.u()[cy * s + cx], img.v()[cy * s + cx]),
        YuvLayout::Nv12 => (img.uv()[cy * s + 2 * cx], img.uv()[cy * s + 2 * cx + 1]),
    }
}

/// Reference inverse: display-size RGBA8 (alpha 255), chroma upsampled by repetition.
pub fn yuv420_to_rgba(img: &Yuv420Image, cs: ColorSpace) -> Vec<u8> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let luma = img.y()[y * img.y_stride() + x] as f64;
            let (cb, cr) = chroma_at(img, x / 2, y / 2);
            let rgb = ycbcr_to_rgb([luma, cb as f64, cr as f64], cs);
            out.extend_from_slice(&[to_u8(rgb[0]), to_u8(rgb[1]), to_u8(rgb[2]), 255]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Matrix;

    #[test]
    fn textbook_values_bt709_limited() {
        let cs = ColorSpace::BT709_LIMITED;
        let q = |rgb: [f64; 3]| rgb_to_ycbcr(rgb, cs).map(to_u8);
        assert_eq!(q([255.0, 255.0, 255.0]), [235, 128, 128]);
        assert_eq!(q([0.0, 0.0, 0.0]), [16, 128, 128]);
        assert_eq!(q([255.0, 0.0, 0.0]), [63, 102, 240]);
        assert_eq!(q([0.0, 255.0, 0.0]), [173, 42, 26]);
        assert_eq!(q([0.0, 0.0, 255.0]), [32, 240, 118]);
    }

    #[test]
    fn inverse_is_exact_in_f64() {
        for cs in [
            ColorSpace::new(Matrix::Bt601, Range::Full),
            ColorSpace::new(Matrix::Bt709, Range::Limited),
        ] {
            let rgb = [12.0, 200.0, 99.0];
            let back = ycbcr_to_rgb(rgb_to_ycbcr(rgb, cs), cs);
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 1e-9);
            }
        }
    }
}
