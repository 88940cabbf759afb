//! SIMD conversion against the scalar reference, textbook values, round trips, odd-size padding
//! and validation.

use framecast_core::reference;
use framecast_core::{
    convert, ColorSpace, Frame, FrameError, Matrix, PixelFormat, Range, Yuv420Image, YuvLayout,
};
use proptest::prelude::*;

const FORMATS: [PixelFormat; 7] = [
    PixelFormat::Rgba8,
    PixelFormat::Bgra8,
    PixelFormat::Rgb8,
    PixelFormat::RgbaF16,
    PixelFormat::RgbaF32,
    PixelFormat::Nv12,
    PixelFormat::I420,
];

fn all_cs() -> [ColorSpace; 4] {
    [
        ColorSpace::new(Matrix::Bt709, Range::Limited),
        ColorSpace::new(Matrix::Bt709, Range::Full),
        ColorSpace::new(Matrix::Bt601, Range::Limited),
        ColorSpace::new(Matrix::Bt601, Range::Full),
    ]
}

/// Tiny deterministic PRNG (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

/// Owned storage for a test frame of any format; `frame()` borrows it.
///
/// Buffers are `Vec<u32>`-backed so float views are aligned. `pad` extra bytes (rounded for
/// alignment) go at the end of every row; with `crop` the buffer stops right after the last pixel.
struct TestFrame {
    format: PixelFormat,
    w: u32,
    h: u32,
    /// Planes as (storage, stride, used bytes).
    planes: Vec<(Vec<u32>, usize, usize)>,
}

fn bytes(v: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(v)[..len]
}

impl TestFrame {
    /// `rgb(x, y)` gives the 8-bit colour of a pixel; float formats store `v / 255` (which the
    /// converter's quantiser maps back exactly), YUV formats get random samples.
    fn new(
        format: PixelFormat,
        w: u32,
        h: u32,
        pad: usize,
        crop: bool,
        seed: u64,
        rgb: &dyn Fn(usize, usize) -> [u8; 3],
    ) -> TestFrame {
        let (wu, hu) = (w as usize, h as usize);
        let mut rng = Rng(seed | 1);
        let plane = |row_bytes: usize,
                     rows: usize,
                     align: usize,
                     fill: &mut dyn FnMut(&mut [u8], usize)| {
            let stride = (row_bytes + pad).div_ceil(align) * align;
            let len = if crop {
                stride * (rows - 1) + row_bytes
            } else {
                stride * rows
            };
            let mut store = vec![0u32; len.div_ceil(4)];
            {
                let b: &mut [u8] = bytemuck::cast_slice_mut(&mut store);
                for (i, x) in b.iter_mut().enumerate() {
                    // Garbage in the padding, so reading it would show.
                    *x = (i as u8).wrapping_mul(31).wrapping_add(7);
                }
                for r in 0..rows {
                    fill(&mut b[r * stride..r * stride + row_bytes], r);
                }
            }
            (store, stride, len)
        };
        let planes = match format {
            PixelFormat::Rgba8 | PixelFormat::Bgra8 | PixelFormat::Rgb8 => {
                let bpp = format.bytes_per_pixel().unwrap();
                vec![plane(wu * bpp, hu, 1, &mut |row, r| {
                    for (x, px) in row.chunks_exact_mut(bpp).enumerate() {
                        let [cr, cg, cb] = rgb(x, r);
                        match format {
                            PixelFormat::Bgra8 => px.copy_from_slice(&[cb, cg, cr, 99]),
                            PixelFormat::Rgba8 => px.copy_from_slice(&[cr, cg, cb, 99]),
                            _ => px.copy_from_slice(&[cr, cg, cb]),
                        }
                    }
                })]
            }
            PixelFormat::RgbaF16 => vec![plane(wu * 8, hu, 2, &mut |row, r| {
                for (x, px) in row.chunks_exact_mut(8).enumerate() {
                    let c = rgb(x, r);
                    for (i, v) in [c[0], c[1], c[2], 255].into_iter().enumerate() {
                        let f = half::f16::from_f32(v as f32 / 255.0);
                        px[2 * i..2 * i + 2].copy_from_slice(&f.to_ne_bytes());
                    }
                }
            })],
            PixelFormat::RgbaF32 => vec![plane(wu * 16, hu, 4, &mut |row, r| {
                for (x, px) in row.chunks_exact_mut(16).enumerate() {
                    let c = rgb(x, r);
                    for (i, v) in [c[0], c[1], c[2], 255].into_iter().enumerate() {
                        px[4 * i..4 * i + 4].copy_from_slice(&(v as f32 / 255.0).to_ne_bytes());
                    }
                }
            })],
            PixelFormat::Nv12 | PixelFormat::I420 => {
                let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
                // Random but in-gamut samples (Y 64..192, Cb/Cr 112..144), so that decoding them
                // does not depend on how a decoder clips far out-of-gamut values.
                let mut vals = |row: &mut [u8], base: u8, div: u8| {
                    row.iter_mut().for_each(|b| *b = base + rng.byte() / div)
                };
                let y = plane(wu, hu, 1, &mut |row, _| vals(row, 64, 2));
                if format == PixelFormat::Nv12 {
                    vec![y, plane(2 * cw, ch, 1, &mut |row, _| vals(row, 112, 8))]
                } else {
                    let u = plane(cw, ch, 1, &mut |row, _| vals(row, 112, 8));
                    let v = plane(cw, ch, 1, &mut |row, _| vals(row, 112, 8));
                    vec![y, u, v]
                }
            }
            _ => unreachable!(),
        };
        TestFrame {
            format,
            w,
            h,
            planes,
        }
    }

    fn frame(&self) -> Frame<'_> {
        let p = |i: usize| bytes(&self.planes[i].0, self.planes[i].2);
        let s = |i: usize| self.planes[i].1;
        let (w, h) = (self.w, self.h);
        match self.format {
            PixelFormat::Rgba8 => Frame::rgba8(p(0), w, h, s(0)),
            PixelFormat::Bgra8 => Frame::bgra8(p(0), w, h, s(0)),
            PixelFormat::Rgb8 => Frame::rgb8(p(0), w, h, s(0)),
            PixelFormat::RgbaF16 => Frame::rgba_f16(p(0), w, h, s(0)),
            PixelFormat::RgbaF32 => Frame::rgba_f32(p(0), w, h, s(0)),
            PixelFormat::Nv12 => Frame::nv12(p(0), s(0), p(1), s(1), w, h),
            PixelFormat::I420 => Frame::i420(p(0), s(0), p(1), s(1), p(2), s(2), w, h),
            _ => unreachable!(),
        }
        .expect("test frame is valid")
    }
}

fn random_rgb(seed: u64, w: usize) -> impl Fn(usize, usize) -> [u8; 3] {
    // Hash of (seed, x, y): independent random content per pixel.
    move |x, y| {
        let mut r = Rng((seed ^ ((y * w + x) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        r.next();
        [r.byte(), r.byte(), r.byte()]
    }
}

/// Largest absolute sample difference between two images of the same geometry and layout.
fn max_diff(a: &Yuv420Image, b: &Yuv420Image) -> (u8, &'static str, usize) {
    let (ap, bp) = (a.planes(), b.planes());
    let mut worst = (0u8, "Y", 0usize);
    for (name, x, y) in [("Y", ap.0, bp.0), ("C0", ap.1, bp.1), ("C1", ap.2, bp.2)] {
        assert_eq!(x.len(), y.len(), "{name} plane size");
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            let d = p.abs_diff(*q);
            if d > worst.0 {
                worst = (d, name, i);
            }
        }
    }
    worst
}

fn check_against_reference(tf: &TestFrame, cs: ColorSpace, layout: YuvLayout) {
    let frame = tf.frame();
    let mut img = Yuv420Image::new(tf.w, tf.h, layout).unwrap();
    convert::to_yuv420(&frame, cs, &mut img).unwrap();
    let want = reference::to_yuv420(&frame, cs, layout);
    let (d, plane, idx) = max_diff(&img, &want);
    let limit = if tf.format.is_yuv() { 0 } else { 1 };
    assert!(
        d <= limit,
        "{:?} {}x{} {:?} {:?} {:?}: max diff {d} in {plane}[{idx}]",
        tf.format,
        tf.w,
        tf.h,
        layout,
        cs.matrix,
        cs.range
    );
}

#[test]
fn every_format_layout_matrix_range_and_size_matches_reference() {
    let sizes = [(1, 1), (2, 2), (3, 5), (33, 17), (640, 360), (1920, 16)];
    for (si, &(w, h)) in sizes.iter().enumerate() {
        for (fi, &format) in FORMATS.iter().enumerate() {
            let seed = (si * 10 + fi) as u64 + 1;
            // Alternate tight, padded and padded-and-cropped strides.
            let (pad, crop) = [(0, false), (24, false), (12, true)][(si + fi) % 3];
            let tf = TestFrame::new(format, w, h, pad, crop, seed, &random_rgb(seed, w as usize));
            for cs in all_cs() {
                for layout in [YuvLayout::I420, YuvLayout::Nv12] {
                    check_against_reference(&tf, cs, layout);
                }
            }
        }
    }
}

#[test]
fn full_1080p_rgba_matches_reference() {
    let (w, h) = (1920, 1080);
    let tf = TestFrame::new(PixelFormat::Rgba8, w, h, 0, false, 7, &random_rgb(7, 1920));
    check_against_reference(&tf, ColorSpace::default(), YuvLayout::Nv12);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn proptest_matches_reference(
        w in 1u32..72,
        h in 1u32..40,
        fi in 0usize..7,
        pad in 0usize..40,
        crop in any::<bool>(),
        seed in any::<u64>(),
        ci in 0usize..4,
        nv12 in any::<bool>(),
    ) {
        let format = FORMATS[fi];
        let tf = TestFrame::new(format, w, h, pad, crop, seed, &random_rgb(seed, w as usize));
        let layout = if nv12 { YuvLayout::Nv12 } else { YuvLayout::I420 };
        check_against_reference(&tf, all_cs()[ci], layout);
    }
}

fn convert_solid(rgb: [u8; 3], cs: ColorSpace, layout: YuvLayout) -> [u8; 3] {
    let px: Vec<u8> = (0..16)
        .flat_map(|_| [rgb[0], rgb[1], rgb[2], 255])
        .collect();
    let f = Frame::rgba8(&px, 4, 4, 16).unwrap();
    let mut img = Yuv420Image::new(4, 4, layout).unwrap();
    convert::to_yuv420(&f, cs, &mut img).unwrap();
    assert!(img.y().iter().all(|&y| y == img.y()[0]), "flat luma");
    let (cb, cr) = reference::chroma_at(&img, 1, 1);
    [img.y()[0], cb, cr]
}

#[test]
fn textbook_values() {
    // BT.709 limited (ITU-R BT.709-6 with 8-bit quantisation), BT.601 full (JPEG/JFIF).
    let bt709_limited: [([u8; 3], [u8; 3]); 7] = [
        ([255, 255, 255], [235, 128, 128]),
        ([0, 0, 0], [16, 128, 128]),
        ([128, 128, 128], [126, 128, 128]),
        ([255, 0, 0], [63, 102, 240]),
        ([0, 255, 0], [173, 42, 26]),
        ([0, 0, 255], [32, 240, 118]),
        ([255, 255, 0], [219, 16, 138]),
    ];
    let bt601_full: [([u8; 3], [u8; 3]); 6] = [
        ([255, 255, 255], [255, 128, 128]),
        ([0, 0, 0], [0, 128, 128]),
        ([128, 128, 128], [128, 128, 128]),
        ([255, 0, 0], [76, 85, 255]),
        ([0, 255, 0], [150, 44, 21]),
        ([0, 0, 255], [29, 255, 107]),
    ];
    let cases = [
        (ColorSpace::BT709_LIMITED, &bt709_limited[..]),
        (ColorSpace::new(Matrix::Bt601, Range::Full), &bt601_full[..]),
    ];
    for (cs, table) in cases {
        for &(rgb, want) in table {
            let r = reference::rgb_to_ycbcr(rgb.map(f64::from), cs).map(reference::to_u8);
            assert_eq!(r, want, "reference {rgb:?} {cs:?}");
            for layout in [YuvLayout::I420, YuvLayout::Nv12] {
                let got = convert_solid(rgb, cs, layout);
                for c in 0..3 {
                    assert!(
                        got[c].abs_diff(want[c]) <= 1,
                        "SIMD {rgb:?} {cs:?} {layout:?}: got {got:?}, want {want:?}"
                    );
                }
            }
        }
    }
    // Exact for the range end points, which decoders key on.
    assert_eq!(
        convert_solid([255, 255, 255], ColorSpace::BT709_LIMITED, YuvLayout::Nv12),
        [235, 128, 128]
    );
    assert_eq!(
        convert_solid([0, 0, 0], ColorSpace::BT709_LIMITED, YuvLayout::I420),
        [16, 128, 128]
    );
}

/// RGB→YUV→RGB with the SIMD or reference forward and inverse; returns (max error, fraction of
/// pixels off by more than 2, PSNR).
fn roundtrip(
    rgb: &[u8],
    (w, h): (u32, u32),
    cs: ColorSpace,
    layout: YuvLayout,
    simd_forward: bool,
    simd_inverse: bool,
) -> (u8, f64, f64) {
    let f = Frame::rgba8(rgb, w, h, w as usize * 4).unwrap();
    let img = if simd_forward {
        let mut img = Yuv420Image::new(w, h, layout).unwrap();
        convert::to_yuv420(&f, cs, &mut img).unwrap();
        img
    } else {
        reference::to_yuv420(&f, cs, layout)
    };
    let back = if simd_inverse {
        convert::yuv420_to_rgba(&img, cs)
    } else {
        reference::yuv420_to_rgba(&img, cs)
    };
    assert_eq!(back.len(), rgb.len());
    assert!(back.chunks_exact(4).all(|p| p[3] == 255), "alpha 255");
    let errs: Vec<u8> = rgb
        .chunks_exact(4)
        .zip(back.chunks_exact(4))
        .map(|(a, b)| (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap())
        .collect();
    let worst = *errs.iter().max().unwrap();
    let over2 = errs.iter().filter(|&&e| e > 2).count() as f64 / errs.len() as f64;
    (worst, over2, convert::psnr_rgb(rgb, &back))
}

/// Flat 2x2 blocks covering the RGB cube in steps of 5 (52³ colours).
fn colour_cube_blocks() -> (Vec<u8>, (u32, u32)) {
    let n = 52usize;
    let (w, h) = (2 * n, 2 * n * n);
    let mut px = vec![255u8; w * h * 4];
    for r in 0..n {
        for g in 0..n {
            for b in 0..n {
                let (bx, by) = (b, r * n + g);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let i = ((2 * by + dy) * w + 2 * bx + dx) * 4;
                    px[i..i + 3].copy_from_slice(&[(r * 5) as u8, (g * 5) as u8, (b * 5) as u8]);
                }
            }
        }
    }
    (px, (w as u32, h as u32))
}

#[test]
fn round_trip_flat_patches() {
    // Flat 2x2 blocks: chroma is exact per block, so only quantisation remains.
    let (rgb, size) = colour_cube_blocks();
    for cs in all_cs() {
        // Exact arithmetic both ways: within ±2 everywhere (quantisation alone).
        let (worst, _, _) = roundtrip(&rgb, size, cs, YuvLayout::I420, false, false);
        assert!(worst <= 2, "reference {cs:?}: max error {worst}");
        // The yuv crate's decoder on exactly rounded YUV: also within ±2.
        let (worst, _, _) = roundtrip(&rgb, size, cs, YuvLayout::Nv12, false, true);
        assert!(
            worst <= 2,
            "reference fwd + SIMD inv {cs:?}: max error {worst}"
        );
        // SIMD both ways: the 13-bit forward path is up to 1 code off exact, which adds up to
        // ±3 on a few limited-range colours (~0.05 % of the cube); full range stays within ±2.
        for layout in [YuvLayout::I420, YuvLayout::Nv12] {
            let (worst, over2, _) = roundtrip(&rgb, size, cs, layout, true, true);
            let limit = if cs.range == Range::Full { 2 } else { 3 };
            assert!(worst <= limit, "SIMD {cs:?} {layout:?}: max error {worst}");
            assert!(
                over2 < 0.001,
                "SIMD {cs:?} {layout:?}: {over2} of pixels off by > 2"
            );
        }
    }
}

#[test]
fn round_trip_smooth_content() {
    let (w, h) = (160u32, 90u32);
    let rgb: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let r = (x * 255 / (w - 1)) as u8;
            let g = (y * 255 / (h - 1)) as u8;
            let b = ((x + y) * 255 / (w + h - 2)) as u8;
            [r, g, b, 255]
        })
        .collect();
    for cs in all_cs() {
        for layout in [YuvLayout::I420, YuvLayout::Nv12] {
            // Gradients of up to ~3 levels per pixel: 4:2:0 chroma adds a little to
            // quantisation.
            let (worst, _, psnr) = roundtrip(&rgb, (w, h), cs, layout, true, true);
            assert!(worst <= 6, "{cs:?} {layout:?}: max error {worst}");
            assert!(psnr > 45.0, "{cs:?} {layout:?}: PSNR {psnr:.1} dB");
        }
    }
}

#[test]
fn reference_round_trip_matches_simd_round_trip() {
    let tf = TestFrame::new(PixelFormat::Rgba8, 37, 21, 8, false, 5, &random_rgb(5, 37));
    let f = tf.frame();
    for cs in all_cs() {
        let mut img = Yuv420Image::new(37, 21, YuvLayout::I420).unwrap();
        convert::to_yuv420(&f, cs, &mut img).unwrap();
        let a = convert::yuv420_to_rgba(&img, cs);
        let b = reference::yuv420_to_rgba(&img, cs);
        let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(
            worst <= 2,
            "{cs:?}: SIMD vs reference decode differ by {worst}"
        );
    }
}

#[test]
fn odd_sizes_pad_by_replicating_edges() {
    let (w, h) = (5u32, 3u32);
    let mut rng = Rng(3);
    let rgb: Vec<u8> = (0..w * h)
        .flat_map(|_| [rng.byte(), rng.byte(), rng.byte(), 255])
        .collect();
    let f = Frame::rgba8(&rgb, w, h, w as usize * 4).unwrap();
    let cs = ColorSpace::default();
    for layout in [YuvLayout::I420, YuvLayout::Nv12] {
        let mut img = Yuv420Image::new(w, h, layout).unwrap();
        convert::to_yuv420(&f, cs, &mut img).unwrap();
        assert_eq!((img.coded_width(), img.coded_height()), (6, 4));
        let s = img.y_stride();
        let y = img.y();
        for r in 0..3 {
            assert_eq!(
                y[r * s + 5],
                y[r * s + 4],
                "padded column repeats column 4, row {r}"
            );
        }
        assert_eq!(
            &y[3 * s..4 * s],
            &y[2 * s..3 * s],
            "padded row repeats row 2"
        );
        // The corner chroma sample covers pixel (4, 2) only (with its 3 replicas): its chroma is
        // that pixel's own.
        let p = &rgb[(2 * w as usize + 4) * 4..][..3];
        let want =
            reference::rgb_to_ycbcr([p[0], p[1], p[2]].map(f64::from), cs).map(reference::to_u8);
        let (cb, cr) = reference::chroma_at(&img, 2, 1);
        assert!(
            cb.abs_diff(want[1]) <= 1 && cr.abs_diff(want[2]) <= 1,
            "corner chroma"
        );
        // Edge chroma at (2, 0) averages pixels (4, 0) and (4, 1) (each twice).
        let a = &rgb[4 * 4..][..3];
        let b = &rgb[(w as usize + 4) * 4..][..3];
        let avg = [0, 1, 2].map(|c| (a[c] as f64 + b[c] as f64) / 2.0);
        let want = reference::rgb_to_ycbcr(avg, cs).map(reference::to_u8);
        let (cb, cr) = reference::chroma_at(&img, 2, 0);
        assert!(
            cb.abs_diff(want[1]) <= 1 && cr.abs_diff(want[2]) <= 1,
            "edge chroma"
        );
    }
}

#[test]
fn yuv_inputs_pad_luma_too() {
    // 3x3 I420 into NV12: the copy path must pad like the RGB path.
    let y: Vec<u8> = (10..19).collect();
    let (u, v) = ([1u8, 2, 3, 4], [5u8, 6, 7, 8]);
    let f = Frame::i420(&y, 3, &u, 2, &v, 2, 3, 3).unwrap();
    let mut img = Yuv420Image::new(3, 3, YuvLayout::Nv12).unwrap();
    convert::to_yuv420(&f, ColorSpace::default(), &mut img).unwrap();
    assert_eq!(
        img.y(),
        &[10, 11, 12, 12, 13, 14, 15, 15, 16, 17, 18, 18, 16, 17, 18, 18]
    );
    assert_eq!(img.uv(), &[1, 5, 2, 6, 3, 7, 4, 8]);
}

#[test]
fn size_mismatch_message_names_both_sizes() {
    let px = vec![0u8; 8 * 6 * 4];
    let f = Frame::rgba8(&px, 8, 6, 32).unwrap();
    let mut img = Yuv420Image::new(8, 4, YuvLayout::I420).unwrap();
    let e = convert::to_yuv420(&f, ColorSpace::default(), &mut img).unwrap_err();
    assert_eq!(
        e,
        FrameError::SizeMismatch {
            frame_width: 8,
            frame_height: 6,
            image_width: 8,
            image_height: 4
        }
    );
    let msg = e.to_string();
    assert!(msg.contains("8x6") && msg.contains("8x4"), "{msg}");
}

#[test]
fn frame_to_rgba8_for_every_format() {
    let (w, h) = (7u32, 5u32);
    let content = random_rgb(11, w as usize);
    let want: Vec<u8> = (0..h as usize)
        .flat_map(|y| (0..w as usize).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let c = content(x, y);
            [c[0], c[1], c[2], 255]
        })
        .collect();
    for format in FORMATS {
        let tf = TestFrame::new(format, w, h, 4, true, 11, &content);
        let got = convert::frame_to_rgba8(&tf.frame(), ColorSpace::default());
        assert_eq!(got.len(), (w * h * 4) as usize);
        if format.is_yuv() {
            // Random YUV: compare against the reference decode of the copied image.
            let img = reference::to_yuv420(&tf.frame(), ColorSpace::default(), YuvLayout::I420);
            let r = reference::yuv420_to_rgba(&img, ColorSpace::default());
            let worst = got
                .iter()
                .zip(&r)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(worst <= 2, "{format:?}: {worst}");
        } else {
            assert_eq!(got, want, "{format:?}");
        }
    }
}

#[test]
fn converter_struct_reuses_scratch_and_agrees() {
    let tf = TestFrame::new(PixelFormat::RgbaF32, 19, 9, 0, false, 4, &random_rgb(4, 19));
    let mut conv = convert::Converter::new();
    let mut a = Yuv420Image::new(19, 9, YuvLayout::Nv12).unwrap();
    let mut b = a.clone();
    conv.convert(&tf.frame(), ColorSpace::default(), &mut a)
        .unwrap();
    convert::to_yuv420(&tf.frame(), ColorSpace::default(), &mut b).unwrap();
    assert_eq!(a, b);
}
