//! GPU conversion against framecast-core's scalar reference, on whatever adapter the machine has
//! (lavapipe, Mesa's Vulkan-on-CPU, in CI: `./scripts/test.sh` installs mesa-vulkan-drivers).

use framecast_core::{reference, ColorSpace, Frame, Matrix, Planes, Range, Yuv420Image, YuvLayout};
use framecast_gpu::GpuConverter;

fn converter() -> GpuConverter {
    GpuConverter::new().unwrap_or_else(|e| {
        panic!("{e}\nThe GPU tests need a Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1")
    })
}

/// Deterministic "rendered" content with sharp colour edges and gradients.
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
            v.extend_from_slice(&[r, g, b, 255]);
        }
    }
    v
}

fn max_diff(a: &Yuv420Image, b: &Yuv420Image) -> (u8, u8) {
    let (ay, au, av) = a.planes();
    let (by, bu, bv) = b.planes();
    let d = |x: &[u8], y: &[u8]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| p.abs_diff(*q))
            .max()
            .unwrap_or(0)
    };
    (d(ay, by), d(au, bu).max(d(av, bv)))
}

#[test]
fn rgba8_matches_reference_all_colour_spaces_and_layouts() {
    let mut gpu = converter();
    eprintln!("adapter: {}", gpu.adapter_summary());
    for (w, h) in [
        (64, 36),
        (33, 17),
        (1, 1),
        (2, 2),
        (5, 3),
        (640, 360),
        (1283, 721),
    ] {
        let rgba = content(w, h, w + h);
        let frame = Frame::rgba8(&rgba, w, h, w as usize * 4).unwrap();
        for cs in [
            ColorSpace::default(),
            ColorSpace::new(Matrix::Bt601, Range::Limited),
            ColorSpace::new(Matrix::Bt709, Range::Full),
            ColorSpace::new(Matrix::Bt601, Range::Full),
        ] {
            for layout in [YuvLayout::Nv12, YuvLayout::I420] {
                let want = reference::to_yuv420(&frame, cs, layout);
                let mut got = Yuv420Image::new(w, h, layout).unwrap();
                gpu.convert(&frame, cs, &mut got).unwrap();
                let (dy, dc) = max_diff(&got, &want);
                assert!(
                    dy <= 1 && dc <= 1,
                    "{w}x{h} {cs:?} {layout:?}: luma off by {dy}, chroma by {dc}"
                );
            }
        }
    }
}

#[test]
fn padded_stride_bgra_and_float_inputs() {
    let mut gpu = converter();
    let (w, h) = (97u32, 31u32);
    let rgba = content(w, h, 7);
    let want = reference::to_yuv420(
        &Frame::rgba8(&rgba, w, h, w as usize * 4).unwrap(),
        ColorSpace::default(),
        YuvLayout::Nv12,
    );
    let check = |gpu: &mut GpuConverter, frame: Frame<'_>, what: &str| {
        let mut got = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
        gpu.convert(&frame, ColorSpace::default(), &mut got)
            .unwrap();
        let (dy, dc) = max_diff(&got, &want);
        assert!(
            dy <= 1 && dc <= 1,
            "{what}: luma off by {dy}, chroma by {dc}"
        );
    };
    // RGBA with a padded stride (garbage in the padding must be ignored).
    let stride = w as usize * 4 + 36;
    let mut padded = vec![0xEEu8; stride * h as usize];
    for y in 0..h as usize {
        padded[y * stride..y * stride + w as usize * 4]
            .copy_from_slice(&rgba[y * w as usize * 4..(y + 1) * w as usize * 4]);
    }
    check(
        &mut gpu,
        Frame::rgba8(&padded, w, h, stride).unwrap(),
        "rgba padded stride",
    );
    // BGRA.
    let bgra: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0], p[3]])
        .collect();
    check(
        &mut gpu,
        Frame::bgra8(&bgra, w, h, w as usize * 4).unwrap(),
        "bgra",
    );
    // f32 and f16 (exact code values / 255).
    let f32s: Vec<f32> = rgba.iter().map(|&v| v as f32 / 255.0).collect();
    check(
        &mut gpu,
        Frame::rgba_f32(bytemuck_bytes(&f32s), w, h, w as usize * 16).unwrap(),
        "rgba f32",
    );
    let f16s: Vec<u16> = rgba.iter().map(|&v| half_bits(v as f32 / 255.0)).collect();
    check(
        &mut gpu,
        Frame::rgba_f16(bytemuck_bytes(&f16s), w, h, w as usize * 8).unwrap(),
        "rgba f16",
    );
}

#[test]
fn readback_ring_keeps_three_frames_in_flight() {
    let mut gpu = converter();
    let (w, h) = (128u32, 72u32);
    let frames: Vec<Vec<u8>> = (0..3).map(|i| content(w, h, 100 + i)).collect();
    let textures: Vec<_> = frames
        .iter()
        .map(|rgba| {
            let t = rgba_texture(gpu.device(), w, h);
            framecast_gpu::write_texture(gpu.queue(), &t, rgba, w * 4);
            t
        })
        .collect();
    let tickets: Vec<u64> = textures
        .iter()
        .map(|t| gpu.submit_texture(t, ColorSpace::default()).unwrap())
        .collect();
    // Finish out of order: each ticket must come back with its own frame.
    for &i in &[2usize, 0, 1] {
        let mut got = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
        gpu.finish(tickets[i], &mut got).unwrap();
        let want = reference::to_yuv420(
            &Frame::rgba8(&frames[i], w, h, w as usize * 4).unwrap(),
            ColorSpace::default(),
            YuvLayout::Nv12,
        );
        let (dy, dc) = max_diff(&got, &want);
        assert!(
            dy <= 1 && dc <= 1,
            "ticket {i}: luma off by {dy}, chroma by {dc}"
        );
    }
    assert!(
        gpu.finish(
            tickets[0],
            &mut Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap()
        )
        .is_err(),
        "a finished ticket cannot be finished twice"
    );
}

#[test]
fn rejects_yuv_input_and_size_mismatch() {
    let mut gpu = converter();
    let y = vec![0u8; 16];
    let uv = vec![0u8; 8];
    let nv12 = Frame::nv12(&y, 4, &uv, 4, 4, 4).unwrap();
    let mut dst = Yuv420Image::new(4, 4, YuvLayout::Nv12).unwrap();
    let e = gpu
        .convert(&nv12, ColorSpace::default(), &mut dst)
        .unwrap_err();
    assert!(e.to_string().contains("nv12"), "{e}");
    let rgba = vec![0u8; 64];
    let frame = Frame::rgba8(&rgba, 4, 4, 16).unwrap();
    let mut wrong = Yuv420Image::new(8, 4, YuvLayout::Nv12).unwrap();
    let e = gpu
        .convert(&frame, ColorSpace::default(), &mut wrong)
        .unwrap_err();
    assert!(
        e.to_string().contains("4x4") && e.to_string().contains("8x4"),
        "{e}"
    );
}

fn rgba_texture(device: &wgpu::Device, w: u32, h: u32) -> wgpu::Texture {
    framecast_gpu::texture_2d(
        device,
        None,
        (w, h),
        wgpu::TextureFormat::Rgba8Unorm,
        wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
    )
}

fn bytemuck_bytes<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

fn half_bits(v: f32) -> u16 {
    half::f16::from_f32(v).to_bits()
}

/// The non-blocking path: `TextureRing` hands every frame to its sink once, in order, read
/// straight from mapped memory, while the caller keeps submitting (the same texture is
/// rewritten after each submit: the queue orders that write after the conversion).
#[test]
fn texture_ring_delivers_every_frame_once_in_order() {
    use std::sync::{Arc, Mutex};
    let gpu = converter();
    let (w, h) = (97u32, 31u32);
    let device = gpu.device().clone();
    let queue = gpu.queue().clone();
    let texture = rgba_texture(&device, w, h);
    let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink_got = got.clone();
    let mut ring = framecast_gpu::TextureRing::new(gpu, ColorSpace::default(), move |f| {
        let Planes::Nv12 {
            y,
            y_stride,
            uv,
            uv_stride,
        } = *f.planes()
        else {
            return Err("not NV12".into());
        };
        let mut planes = Vec::new();
        for row in 0..h as usize {
            planes.extend_from_slice(&y[row * y_stride..][..w as usize]);
        }
        for row in 0..h.div_ceil(2) as usize {
            planes.extend_from_slice(&uv[row * uv_stride..][..2 * w.div_ceil(2) as usize]);
        }
        sink_got.lock().unwrap().push(planes);
        Ok(())
    });
    let frames: Vec<Vec<u8>> = (0..12).map(|i| content(w, h, 300 + i)).collect();
    for rgba in &frames {
        framecast_gpu::write_texture(&queue, &texture, rgba, w * 4);
        ring.publish(&texture).unwrap();
    }
    ring.flush().unwrap();
    let got = got.lock().unwrap();
    assert_eq!(got.len(), frames.len(), "every frame once");
    for (i, (planes, rgba)) in got.iter().zip(&frames).enumerate() {
        let want = reference::to_yuv420(
            &Frame::rgba8(rgba, w, h, w as usize * 4).unwrap(),
            ColorSpace::default(),
            YuvLayout::Nv12,
        );
        let mut expect = Vec::new();
        for row in 0..h as usize {
            expect.extend_from_slice(&want.y()[row * want.y_stride()..][..w as usize]);
        }
        for row in 0..h.div_ceil(2) as usize {
            expect.extend_from_slice(
                &want.uv()[row * want.chroma_stride()..][..2 * w.div_ceil(2) as usize],
            );
        }
        let diff = planes
            .iter()
            .zip(&expect)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(diff <= 1, "frame {i} (in order): off by {diff}");
    }
}
