//! GPU RGBA→NV12 against the CPU SIMD path on the same frames.
//!
//! `cargo run --release -p framecast-gpu --example gpu_bench -- [--sizes 720p,1080p,4k] [--iters 200]`
//!
//! Rows per size:
//! * host frame: upload + convert + readback + copy into a Yuv420Image (what a CPU encoder sees);
//! * GPU-resident texture: convert + readback (a renderer that already has the frame on the GPU);
//! * kernel: the compute pass alone, from GPU timestamp queries, when the adapter has them;
//! * CPU: framecast-core's SIMD conversion of the same frame, one thread, in the same run.
//!
//! Then, for the GPU-resident texture, where the time beyond the kernel goes:
//! * sync `convert_texture` with and without timestamp queries (their readback is a second
//!   map and device wait);
//! * the non-blocking path (`submit_texture_async` + `Readback`): submit (host CPU),
//!   submit → NV12 mapped on the host, and copying out of mapped memory into an image, which
//!   `TextureRing` skips by lending the mapped planes to its sink.

use framecast_core::{convert, ColorSpace, Frame, Yuv420Image, YuvLayout};
use framecast_gpu::GpuConverter;
use std::time::Duration;
use std::time::Instant;

fn median_p95(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.95))
}

fn frame(w: u32, h: u32, i: u32) -> Vec<u8> {
    let mut v = vec![0u8; (w * h * 4) as usize];
    for y in 0..h {
        for x in 0..w {
            let o = ((y * w + x) * 4) as usize;
            let d = ((x as i32 - (w / 2 + i * 7) as i32).pow(2)
                + (y as i32 - (h / 2) as i32).pow(2))
                < (h as i32 / 6).pow(2);
            v[o] = (x * 255 / w) as u8;
            v[o + 1] = if d { 240 } else { (y * 255 / h) as u8 };
            v[o + 2] = if (x + i * 3) / 16 % 2 == 0 { 200 } else { 40 };
            v[o + 3] = 255;
        }
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let iters: usize = get("--iters").and_then(|v| v.parse().ok()).unwrap_or(200);
    let sizes: Vec<(u32, u32)> = get("--sizes")
        .unwrap_or_else(|| "720p,1080p,4k".into())
        .split(',')
        .map(|s| match s {
            "720p" => (1280, 720),
            "1080p" => (1920, 1080),
            "4k" => (3840, 2160),
            other => {
                let (w, h) = other.split_once('x').expect("size like 1920x1080");
                (w.parse().unwrap(), h.parse().unwrap())
            }
        })
        .collect();
    let mut gpu = GpuConverter::new().expect("a GPU adapter");
    println!("adapter: {}\n", gpu.adapter_summary());
    println!("| size | host frame: upload+convert+readback ms med / p95 | GPU-resident texture: convert+readback ms med / p95 | kernel only ms med / p95 | CPU SIMD (1 thread) ms med / p95 | host frame GPU / CPU |");
    println!("|---|---|---|---|---|---|");
    let cs = ColorSpace::default();
    for (w, h) in sizes {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(w, h, i)).collect();
        let mut dst = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
        let texture = framecast_gpu::texture_2d(
            gpu.device(),
            None,
            (w, h),
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        );
        framecast_gpu::write_texture(gpu.queue(), &texture, &frames[0], w * 4);
        let (mut host, mut resident, mut kernel, mut cpu) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..iters + 5 {
            let f = &frames[i % frames.len()];
            let view = Frame::rgba8(f, w, h, w as usize * 4).unwrap();
            let t = Instant::now();
            gpu.convert(&view, cs, &mut dst).unwrap();
            let host_ms = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let timings = gpu.convert_texture(&texture, cs, &mut dst).unwrap();
            let resident_ms = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            convert::to_yuv420(&view, cs, &mut dst).unwrap();
            let cpu_ms = t.elapsed().as_secs_f64() * 1e3;
            if i >= 5 {
                host.push(host_ms);
                resident.push(resident_ms);
                cpu.push(cpu_ms);
                if let Some(k) = timings.kernel_ms {
                    kernel.push(k);
                }
            }
        }
        let (hm, hp) = median_p95(&mut host);
        let (rm, rp) = median_p95(&mut resident);
        let (cm, cp) = median_p95(&mut cpu);
        let k = if kernel.is_empty() {
            "n/a (no timestamp queries)".to_string()
        } else {
            let (km, kp) = median_p95(&mut kernel);
            format!("{km:.3} / {kp:.3}")
        };
        println!("| {w}x{h} | {hm:.3} / {hp:.3} | {rm:.3} / {rp:.3} | {k} | {cm:.3} / {cp:.3} | {:.2}x |", hm / cm);
    }
    println!("\n({iters} iterations per size after 5 warm-up; BT.709 limited; NV12 out)");
    breakdown(&gpu, &sizes_again(&args), iters);
}

fn sizes_again(args: &[String]) -> Vec<(u32, u32)> {
    let v = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "720p,1080p,4k".into());
    v.split(',')
        .map(|s| match s {
            "720p" => (1280, 720),
            "1080p" => (1920, 1080),
            "4k" => (3840, 2160),
            other => {
                let (w, h) = other.split_once('x').expect("size like 1920x1080");
                (w.parse().unwrap(), h.parse().unwrap())
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fmt(v: &mut [f64]) -> String {
    let (m, p) = median_p95(v);
    format!("{m:.3} / {p:.3}")
}

/// Where a GPU-resident conversion's time goes beyond the kernel.
fn breakdown(gpu: &GpuConverter, sizes: &[(u32, u32)], iters: usize) {
    let device = gpu.device().clone();
    let queue = gpu.queue().clone();
    let info = gpu.adapter_info().clone();
    // The same device, with and without timestamp queries in the converter.
    let mut with_ts = GpuConverter::with_device(device.clone(), queue.clone(), info.clone());
    let mut no_ts = GpuConverter::with_device(device.clone(), queue.clone(), info);
    no_ts.disable_timestamps();
    println!("\nGPU-resident texture, where the time goes (ms, median / p95):\n");
    println!("| size | sync convert_texture (timestamps on) | sync, timestamps off | async: submit (host CPU) | async: submit -> NV12 mapped | async: copy out of mapped memory | async total, NV12 lent in place (TextureRing) | async total + copy out |");
    println!("|---|---|---|---|---|---|---|---|");
    let cs = ColorSpace::default();
    for &(w, h) in sizes {
        let texture = framecast_gpu::texture_2d(
            &device,
            None,
            (w, h),
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        );
        let mut dst = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
        let (mut sync_ts, mut sync_plain, mut submit, mut mapped, mut copy, mut lent, mut total) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in 0..iters + 5 {
            let t = Instant::now();
            with_ts.convert_texture(&texture, cs, &mut dst).unwrap();
            let a = ms(t.elapsed());
            let t = Instant::now();
            no_ts.convert_texture(&texture, cs, &mut dst).unwrap();
            let b = ms(t.elapsed());
            let t0 = Instant::now();
            let mut job = no_ts.submit_texture_async(&texture, cs).unwrap();
            let t1 = Instant::now();
            job.wait(&device).unwrap();
            let t2 = Instant::now();
            let touched = job.with_nv12(|f| f.width()).unwrap();
            let t3 = Instant::now();
            job.with_nv12(|f| {
                framecast_core::convert::to_yuv420(f, cs, &mut dst).unwrap();
            })
            .unwrap();
            let t4 = Instant::now();
            drop(job);
            assert_eq!(touched, w);
            if i >= 5 {
                sync_ts.push(a);
                sync_plain.push(b);
                submit.push(ms(t1 - t0));
                mapped.push(ms(t2 - t1));
                copy.push(ms(t4 - t3));
                lent.push(ms(t3 - t0));
                total.push(ms(t3 - t0) + ms(t4 - t3));
            }
        }
        println!(
            "| {w}x{h} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(&mut sync_ts),
            fmt(&mut sync_plain),
            fmt(&mut submit),
            fmt(&mut mapped),
            fmt(&mut copy),
            fmt(&mut lent),
            fmt(&mut total)
        );
    }
}
