//! The CUDA kernel against framecast-core's scalar reference, for every input format, odd
//! sizes, padded pitches and both ranges; and the ring's order. Needs an NVIDIA GPU with a
//! driver and NVRTC: elsewhere (CI) each test prints what is missing and passes without
//! running (`FRAMECAST_REQUIRE_CUDA=1` makes a missing GPU a failure, as on the GPU machine).

use cudarc::driver::result;
use framecast_core::{reference, ColorSpace, Frame, Matrix, PixelFormat, Range, YuvLayout};
use framecast_cuda::{CudaConverter, CudaError, DeviceFrame};

fn converter(depth: usize) -> Option<CudaConverter> {
    match CudaConverter::new(0, depth) {
        Ok(c) => Some(c),
        Err(e @ (CudaError::NoDriver(_) | CudaError::NoNvrtc(_))) => {
            if std::env::var_os("FRAMECAST_REQUIRE_CUDA").is_some() {
                panic!("FRAMECAST_REQUIRE_CUDA is set but: {e}");
            }
            eprintln!("skipped: {e}");
            None
        }
        Err(CudaError::Driver {
            call: "cuDeviceGet",
            detail,
        }) => {
            eprintln!("skipped: no CUDA device ({detail})");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Device memory holding `bytes` (freed on drop).
struct DeviceBuf(u64);

impl DeviceBuf {
    fn upload(bytes: &[u8]) -> Self {
        // SAFETY: a fresh allocation of exactly `bytes.len()` bytes, filled synchronously.
        unsafe {
            let p = result::malloc_sync(bytes.len()).unwrap();
            result::memcpy_htod_sync(p, bytes).unwrap();
            DeviceBuf(p)
        }
    }
}

impl Drop for DeviceBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `upload`; every use was waited for.
        unsafe { result::free_sync(self.0).unwrap() };
    }
}

/// Deterministic content with edges, gradients and noise (RGBA8).
fn content(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 4) as usize);
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    for y in 0..h {
        for x in 0..w {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let noise = (s % 13) as i32 - 6;
            let r = ((x * 255 / w.max(1)) as i32 + noise).clamp(0, 255) as u8;
            let g = ((y * 255 / h.max(1)) as i32 + noise).clamp(0, 255) as u8;
            let b = if (x / 7 + y / 5) % 2 == 0 { 230 } else { 20 };
            v.extend_from_slice(&[r, g, b, (s % 256) as u8]);
        }
    }
    v
}

/// `rgba` re-encoded as `format`, rows `pitch` bytes apart (padding filled with 0xEE).
fn as_format(rgba: &[u8], w: u32, h: u32, format: PixelFormat, pitch: usize) -> Vec<u8> {
    let mut out = vec![0xEEu8; pitch * h as usize];
    for y in 0..h as usize {
        let row = &mut out[y * pitch..];
        for x in 0..w as usize {
            let p = &rgba[(y * w as usize + x) * 4..][..4];
            match format {
                PixelFormat::Rgb8 => row[x * 3..x * 3 + 3].copy_from_slice(&p[..3]),
                PixelFormat::Rgba8 => row[x * 4..x * 4 + 4].copy_from_slice(p),
                PixelFormat::Bgra8 => {
                    row[x * 4..x * 4 + 4].copy_from_slice(&[p[2], p[1], p[0], p[3]])
                }
                PixelFormat::RgbaF16 => {
                    for c in 0..4 {
                        let v = half::f16::from_f32(p[c] as f32 / 255.0).to_bits();
                        row[x * 8 + c * 2..][..2].copy_from_slice(&v.to_ne_bytes());
                    }
                }
                PixelFormat::RgbaF32 => {
                    for c in 0..4 {
                        // Slightly out of range values must clamp like the CPU path.
                        let v = p[c] as f32 / 255.0 * 1.02 - 0.01;
                        row[x * 16 + c * 4..][..4].copy_from_slice(&v.to_ne_bytes());
                    }
                }
                _ => unreachable!(),
            }
        }
    }
    out
}

fn host_frame(data: &[u8], format: PixelFormat, w: u32, h: u32, pitch: usize) -> Frame<'_> {
    match format {
        PixelFormat::Rgb8 => Frame::rgb8(data, w, h, pitch),
        PixelFormat::Rgba8 => Frame::rgba8(data, w, h, pitch),
        PixelFormat::Bgra8 => Frame::bgra8(data, w, h, pitch),
        PixelFormat::RgbaF16 => Frame::rgba_f16(data, w, h, pitch),
        PixelFormat::RgbaF32 => Frame::rgba_f32(data, w, h, pitch),
        _ => unreachable!(),
    }
    .unwrap()
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(p, q)| p.abs_diff(*q))
        .max()
        .unwrap_or(0)
}

#[test]
fn every_format_and_odd_size_matches_the_cpu_reference() {
    let Some(mut conv) = converter(2) else { return };
    eprintln!("device: {:?}", conv.device());
    let formats = [
        (PixelFormat::Rgb8, 3),
        (PixelFormat::Rgba8, 4),
        (PixelFormat::Bgra8, 4),
        (PixelFormat::RgbaF16, 8),
        (PixelFormat::RgbaF32, 16),
    ];
    for (w, h) in [(1, 1), (2, 2), (5, 3), (33, 17), (640, 360), (1283, 721)] {
        let rgba = content(w, h, w * 31 + h);
        for (format, bpp) in formats {
            // Tight rows, and rows padded to a 256-byte pitch (as pitched allocations are).
            for pitch in [
                w as usize * bpp,
                (w as usize * bpp).div_ceil(256) * 256 + 256,
            ] {
                let pitch = pitch.div_ceil(16) * 16;
                let host = as_format(&rgba, w, h, format, pitch);
                let dev = DeviceBuf::upload(&host);
                let frame = host_frame(&host, format, w, h, pitch);
                for cs in [
                    ColorSpace::default(),
                    ColorSpace::new(Matrix::Bt601, Range::Full),
                ] {
                    let want = reference::to_yuv420(&frame, cs, YuvLayout::Nv12);
                    let src = DeviceFrame {
                        ptr: dev.0,
                        format,
                        width: w,
                        height: h,
                        pitch,
                        stream: None,
                    };
                    let (dy, dc) = conv
                        .convert(&src, cs, |got| {
                            let Some((y, ys, uv, uvs)) = nv12_planes(got) else {
                                panic!("not NV12")
                            };
                            let mut dy = 0;
                            let mut dc = 0;
                            for row in 0..h as usize {
                                let g = &y[row * ys..][..w as usize];
                                let r = &want.y()[row * want.y_stride()..][..w as usize];
                                dy = dy.max(max_diff(g, r));
                            }
                            let cw = 2 * (w as usize).div_ceil(2);
                            for row in 0..(h as usize).div_ceil(2) {
                                let g = &uv[row * uvs..][..cw];
                                let r = &want.uv()[row * want.chroma_stride()..][..cw];
                                dc = dc.max(max_diff(g, r));
                            }
                            (dy, dc)
                        })
                        .unwrap();
                    assert!(
                        dy <= 1 && dc <= 1,
                        "{format:?} {w}x{h} pitch {pitch} {cs:?}: luma off by {dy}, chroma by {dc}"
                    );
                }
            }
        }
    }
}

fn nv12_planes<'a>(f: &Frame<'a>) -> Option<(&'a [u8], usize, &'a [u8], usize)> {
    match *f.planes() {
        framecast_core::Planes::Nv12 {
            y,
            y_stride,
            uv,
            uv_stride,
        } => Some((y, y_stride, uv, uv_stride)),
        _ => None,
    }
}

#[test]
fn nv12_in_is_copied_through_unchanged() {
    let Some(mut conv) = converter(1) else { return };
    let (w, h) = (66u32, 35u32);
    let pitch = 128usize;
    let rows = h as usize + (h as usize).div_ceil(2);
    let host: Vec<u8> = (0..pitch * rows).map(|i| (i * 7 % 251) as u8).collect();
    let dev = DeviceBuf::upload(&host);
    let src = DeviceFrame {
        ptr: dev.0,
        format: PixelFormat::Nv12,
        width: w,
        height: h,
        pitch,
        stream: None,
    };
    conv.convert(&src, ColorSpace::default(), |got| {
        let (y, ys, uv, uvs) = nv12_planes(got).unwrap();
        for row in 0..h as usize {
            assert_eq!(
                &y[row * ys..][..w as usize],
                &host[row * pitch..][..w as usize]
            );
        }
        for row in 0..(h as usize).div_ceil(2) {
            assert_eq!(
                &uv[row * uvs..][..w as usize],
                &host[(h as usize + row) * pitch..][..w as usize]
            );
        }
    })
    .unwrap();
}

#[test]
fn the_ring_returns_every_frame_once_in_order() {
    let Some(mut conv) = converter(3) else { return };
    let (w, h) = (320u32, 180u32);
    // Ten frames of flat grey levels, submitted three at a time: each ticket's Y must be
    // its own level, in submission order.
    let levels: Vec<u8> = (0..10).map(|i| 20 + i * 20).collect();
    let bufs: Vec<DeviceBuf> = levels
        .iter()
        .map(|&l| DeviceBuf::upload(&vec![l; (w * h * 4) as usize]))
        .collect();
    let cs = ColorSpace::new(Matrix::Bt709, Range::Full);
    let mut seen = Vec::new();
    let mut next = 0;
    while seen.len() < levels.len() {
        while next < levels.len() {
            let src = DeviceFrame {
                ptr: bufs[next].0,
                format: PixelFormat::Rgba8,
                width: w,
                height: h,
                pitch: w as usize * 4,
                stream: None,
            };
            match conv.submit(&src, cs) {
                Ok(t) => {
                    assert_eq!(t, next as u64);
                    next += 1;
                }
                Err(CudaError::RingFull) => {
                    assert_eq!(conv.in_flight(), 3);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let t = conv.oldest().unwrap();
        conv.wait(t).unwrap();
        let y = conv.frame(t).unwrap();
        let (yp, _, _, _) = nv12_planes(&y).unwrap();
        seen.push((t, yp[0]));
        conv.release(t).unwrap();
        assert!(matches!(conv.release(t), Err(CudaError::UnknownTicket(_))));
    }
    let want: Vec<(u64, u8)> = levels
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u64, l))
        .collect();
    assert_eq!(seen, want);
}
