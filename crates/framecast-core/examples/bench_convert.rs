//! RGBA→NV12 / RGBA→I420 conversion benchmark, against FFmpeg's swscale measured in the same run.
//!
//! ```text
//! cargo run --release -p framecast-core --example bench_convert -- \
//!     [--sizes 720p,1080p,4k] [--iters 200] [--json] [--verify] [--no-ffmpeg] [--sws-flags area]
//! ```
//!
//! Single thread. "hot" converts one source frame over and over (it stays in cache where it
//! fits); "cold" cycles through enough distinct source frames (≥128 MB, ≥8 frames) to overflow
//! the L3, as a frame fresh from a GPU readback would be. The frames are synthetic "rendered"
//! content: gradient + disc + stripes + ±6 noise.
//!
//! swscale is timed by running `ffmpeg -benchmark -threads 1 -filter_threads 1` over the same
//! frames (≥200 conversions via `-stream_loop`), once converting to NV12 and once passing RGBA
//! through, and taking the difference of the two `rtime=`/`utime=` figures per frame.
//! swscale runs with `flags=area` by default (`--sws-flags` to change): its 2:1 chroma filter is
//! then the same 2x2 box we use. `--verify` also decodes swscale's NV12 of the first frame and checks that it is within ±2 of
//! ours, so the two sides do the same work.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use framecast_core::{convert, ColorSpace, Frame, Yuv420Image, YuvLayout};

struct Args {
    sizes: Vec<(String, u32, u32)>,
    iters: usize,
    json: bool,
    verify: bool,
    ffmpeg: bool,
    sws_flags: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: Vec::new(),
        iters: 200,
        json: false,
        verify: false,
        ffmpeg: true,
        sws_flags: "area".into(),
    };
    let mut sizes = "720p,1080p,4k".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => sizes = it.next().expect("--sizes needs a value"),
            "--iters" => {
                args.iters = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--iters needs a number")
            }
            "--json" => args.json = true,
            "--verify" => args.verify = true,
            "--no-ffmpeg" => args.ffmpeg = false,
            "--sws-flags" => args.sws_flags = it.next().expect("--sws-flags needs a value"),
            "-h" | "--help" => {
                println!("bench_convert [--sizes 720p,1080p,4k] [--iters N] [--json] [--verify] [--no-ffmpeg]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    for s in sizes.split(',') {
        let (w, h) = match s.trim().to_ascii_lowercase().as_str() {
            "720p" => (1280, 720),
            "1080p" => (1920, 1080),
            "1440p" => (2560, 1440),
            "4k" | "2160p" => (3840, 2160),
            other => {
                let (w, h) = other
                    .split_once('x')
                    .unwrap_or_else(|| panic!("bad size {other}"));
                (w.parse().unwrap(), h.parse().unwrap())
            }
        };
        args.sizes.push((s.trim().to_string(), w, h));
    }
    args
}

/// Synthetic "rendered" frame `index`: gradient background, a disc that moves with the index,
/// scrolling diagonal stripes and ±6 noise.
fn rendered_frame(w: u32, h: u32, index: u32) -> Vec<u8> {
    let (wf, hf) = (w as f32, h as f32);
    let (cx, cy) = (
        wf * (0.3 + 0.05 * index as f32 % 0.4),
        hf * (0.5 + 0.1 * ((index as f32) * 0.7).sin()),
    );
    let radius = hf * 0.2;
    let mut seed =
        0x1234_5678_9abc_def0u64 ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut noise = move || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        ((seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 58) % 13) as i32 - 6
    };
    let mut out = vec![0u8; w as usize * h as usize * 4];
    for (y, row) in out.chunks_exact_mut(w as usize * 4).enumerate() {
        for (x, px) in row.chunks_exact_mut(4).enumerate() {
            let (xf, yf) = (x as f32, y as f32);
            let mut rgb = [
                xf / wf * 255.0,
                yf / hf * 255.0,
                128.0 + 64.0 * (xf / wf - 0.5),
            ];
            if ((x + y + 8 * index as usize) / 24) % 4 == 0 {
                rgb = [rgb[0] * 0.5 + 100.0, rgb[1] * 0.5 + 100.0, rgb[2] * 0.5];
            }
            let (dx, dy) = (xf - cx, yf - cy);
            if dx * dx + dy * dy < radius * radius {
                rgb = [230.0, 60.0, 40.0];
            }
            for c in 0..3 {
                px[c] = (rgb[c] as i32 + noise()).clamp(0, 255) as u8;
            }
            px[3] = 255;
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    median_ms: f64,
    p95_ms: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Stats {
        median_ms: pick(0.5),
        p95_ms: pick(0.95),
    }
}

fn time_ours(frames: &[Vec<u8>], w: u32, h: u32, layout: YuvLayout, iters: usize) -> Stats {
    let cs = ColorSpace::BT709_LIMITED;
    let mut dst = Yuv420Image::new(w, h, layout).unwrap();
    let mut conv = convert::Converter::new();
    let views: Vec<Frame<'_>> = frames
        .iter()
        .map(|f| Frame::rgba8(f, w, h, w as usize * 4).unwrap())
        .collect();
    // Warm-up: page in the destination and the code.
    for v in views.iter().take(3) {
        conv.convert(v, cs, &mut dst).unwrap();
    }
    let mut ms = Vec::with_capacity(iters);
    for i in 0..iters {
        let v = &views[i % views.len()];
        let t = Instant::now();
        conv.convert(v, cs, &mut dst).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(dst.y());
    }
    stats(ms)
}

/// (rtime s, utime s) from ffmpeg's `-benchmark` line.
fn run_ffmpeg(args: &[String]) -> Result<(f64, f64, String), String> {
    let out = Command::new("ffmpeg")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!(
            "ffmpeg failed: {}",
            text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().rev().find(|l| l.contains("bench: utime="))?;
        let rest = &line[line.find(name)? + name.len()..];
        rest.split(|c: char| c == 's' || c.is_whitespace())
            .next()?
            .parse()
            .ok()
    };
    match (field("rtime="), field("utime=")) {
        (Some(r), Some(u)) => Ok((r, u, text)),
        _ => Err("no `bench:` line in ffmpeg's output".into()),
    }
}

fn ffmpeg_args(
    extra_out: &[&str],
    input: &Path,
    w: u32,
    h: u32,
    loops: usize,
    convert_to_nv12: bool,
    out: &str,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-benchmark",
        "-threads",
        "1",
        "-filter_threads",
        "1",
        "-stream_loop",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(loops.to_string());
    a.extend(
        ["-f", "rawvideo", "-pix_fmt", "rgba", "-s"]
            .iter()
            .map(|s| s.to_string()),
    );
    a.push(format!("{w}x{h}"));
    a.push("-i".into());
    a.push(input.display().to_string());
    if convert_to_nv12 {
        // RGB input is always full range; out_range=tv + out_color_matrix=bt709 gives BT.709
        // limited. `area` (the default --sws-flags) makes the 2:1 chroma filter a 2x2 box, the
        // same work we do (--verify: within ±1); `bilinear` uses a wider 4-tap tent vertically.
        a.push("-vf".into());
        a.push(format!(
            "scale=flags={}:in_range=pc:out_range=tv:out_color_matrix=bt709",
            sws_flags()
        ));
        a.extend(["-pix_fmt", "nv12"].iter().map(|s| s.to_string()));
    } else {
        a.extend(["-pix_fmt", "rgba"].iter().map(|s| s.to_string()));
    }
    a.extend(extra_out.iter().map(|s| s.to_string()));
    a.extend(["-f", "rawvideo", "-y", out].iter().map(|s| s.to_string()));
    a
}

static SWS_FLAGS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn sws_flags() -> &'static str {
    SWS_FLAGS.get().map(String::as_str).unwrap_or("area")
}

struct SwsResult {
    rtime_ms: f64,
    utime_ms: f64,
    frames: usize,
}

fn time_swscale(
    path: &Path,
    n_distinct: usize,
    w: u32,
    h: u32,
    min_frames: usize,
) -> Result<SwsResult, String> {
    let loops = min_frames.div_ceil(n_distinct) - 1;
    let frames = n_distinct * (loops + 1);
    let (rc, uc, _) = run_ffmpeg(&ffmpeg_args(&[], path, w, h, loops, true, "/dev/null"))?;
    let (rp, up, _) = run_ffmpeg(&ffmpeg_args(&[], path, w, h, loops, false, "/dev/null"))?;
    Ok(SwsResult {
        rtime_ms: (rc - rp) * 1e3 / frames as f64,
        utime_ms: (uc - up) * 1e3 / frames as f64,
        frames,
    })
}

fn verify(path: &Path, first: &[u8], w: u32, h: u32, dir: &Path) -> Result<String, String> {
    let out = dir.join("sws.nv12");
    let mut args = ffmpeg_args(
        &["-frames:v", "1"],
        path,
        w,
        h,
        0,
        true,
        &out.display().to_string(),
    );
    args.extend(["-loglevel", "debug"].iter().map(|s| s.to_string()));
    let (_, _, log) = run_ffmpeg(&args)?;
    let sws_line = log
        .lines()
        .find(|l| l.contains("fmt:rgba") && l.contains("fmt:nv12"))
        .unwrap_or("(no swscale configuration line found)")
        .trim()
        .to_string();
    let theirs = std::fs::read(&out).map_err(|e| e.to_string())?;
    let mut ours = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
    let f = Frame::rgba8(first, w, h, w as usize * 4).unwrap();
    convert::to_yuv420(&f, ColorSpace::BT709_LIMITED, &mut ours).unwrap();
    let (y, uv, _) = ours.planes();
    if theirs.len() != y.len() + uv.len() {
        return Err(format!(
            "swscale wrote {} bytes, expected {}",
            theirs.len(),
            y.len() + uv.len()
        ));
    }
    let diff = |a: &[u8], b: &[u8]| -> (u8, f64) {
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        let off = a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64;
        (max, off)
    };
    let (ymax, yoff) = diff(y, &theirs[..y.len()]);
    let (cmax, coff) = diff(uv, &theirs[y.len()..]);
    let verdict = if ymax <= 2 && cmax <= 2 {
        "OK"
    } else {
        "MISMATCH"
    };
    Ok(format!(
        "{verdict}: Y max diff {ymax} ({:.2}% differ), UV max diff {cmax} ({:.2}% differ); swscale: {sws_line}",
        yoff * 100.0,
        coff * 100.0
    ))
}

fn main() {
    let args = parse_args();
    SWS_FLAGS.set(args.sws_flags.clone()).unwrap();
    let tmp = std::env::temp_dir().join(format!("bench_convert_{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (name, w, h) in &args.sizes {
        let (w, h) = (*w, *h);
        let frame_bytes = w as usize * h as usize * 4;
        // Cold set: at least 128 MB (4x a 32 MB L3) and at least 8 frames.
        let n_cold = (128usize << 20).div_ceil(frame_bytes).max(8);
        eprintln!("{name}: generating {n_cold} frames of {w}x{h}...");
        let frames: Vec<Vec<u8>> = (0..n_cold as u32)
            .map(|i| rendered_frame(w, h, i))
            .collect();
        let moved = frame_bytes as f64 + w as f64 * h as f64 * 1.5;
        let gbps = |ms: f64| moved / (ms * 1e-3) / 1e9;
        let mut sws: Option<SwsResult> = None;
        if args.ffmpeg {
            let path = tmp.join(format!("{name}.rgba"));
            {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
                for fr in &frames {
                    f.write_all(fr).unwrap();
                }
            }
            eprintln!("{name}: timing swscale...");
            match time_swscale(&path, n_cold, w, h, args.iters.max(200)) {
                Ok(r) => sws = Some(r),
                Err(e) => notes.push(format!("{name}: swscale not timed: {e}")),
            }
            if args.verify {
                match verify(&path, &frames[0], w, h, &tmp) {
                    Ok(v) => notes.push(format!("{name} verify vs swscale: {v}")),
                    Err(e) => notes.push(format!("{name} verify failed: {e}")),
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        for layout in [YuvLayout::Nv12, YuvLayout::I420] {
            eprintln!("{name}: timing ours ({layout:?})...");
            let hot = time_ours(&frames[..1], w, h, layout, args.iters);
            let cold = time_ours(&frames, w, h, layout, args.iters.max(n_cold * 3));
            rows.push((
                name.clone(),
                w,
                h,
                layout,
                hot,
                cold,
                gbps(hot.median_ms),
                gbps(cold.median_ms),
            ));
        }
        if let Some(s) = &sws {
            rows.push((
                name.clone(),
                w,
                h,
                YuvLayout::Nv12,
                Stats {
                    median_ms: f64::NAN,
                    p95_ms: f64::NAN,
                },
                Stats {
                    median_ms: s.rtime_ms,
                    p95_ms: s.utime_ms,
                },
                f64::NAN,
                s.frames as f64,
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);

    // Group per size: ours NV12/I420 rows plus an optional swscale row (marked by NaN hot).
    if args.json {
        let mut items = Vec::new();
        for (name, w, h, layout, hot, cold, hg, cg) in &rows {
            if hot.median_ms.is_nan() {
                items.push(format!(
                    "{{\"size\":\"{name}\",\"width\":{w},\"height\":{h},\"impl\":\"swscale\",\"output\":\"nv12\",\"ms_per_frame_rtime\":{:.4},\"ms_per_frame_utime\":{:.4},\"frames\":{}}}",
                    cold.median_ms, cold.p95_ms, *cg as usize
                ));
            } else {
                items.push(format!(
                    "{{\"size\":\"{name}\",\"width\":{w},\"height\":{h},\"impl\":\"framecast\",\"output\":\"{}\",\"hot_median_ms\":{:.4},\"hot_p95_ms\":{:.4},\"hot_gbps\":{:.2},\"cold_median_ms\":{:.4},\"cold_p95_ms\":{:.4},\"cold_gbps\":{:.2}}}",
                    format!("{layout:?}").to_lowercase(), hot.median_ms, hot.p95_ms, hg, cold.median_ms, cold.p95_ms, cg
                ));
            }
        }
        println!(
            "{{\"results\":[{}],\"notes\":{:?}}}",
            items.join(","),
            notes
        );
        return;
    }
    println!("| size | conversion | hot median ms | hot p95 ms | hot GB/s | cold median ms | cold p95 ms | cold GB/s | swscale ms/frame (rtime / utime) | speed-up vs swscale rtime (hot / cold) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, _, _, layout, hot, cold, hg, cg) in &rows {
        if hot.median_ms.is_nan() {
            continue;
        }
        let sws = rows
            .iter()
            .find(|r| &r.0 == name && r.4.median_ms.is_nan())
            .map(|r| (r.5.median_ms, r.5.p95_ms));
        let (sws_s, ratio) = match (sws, layout) {
            (Some((rt, ut)), YuvLayout::Nv12) => (
                format!("{rt:.2} / {ut:.2}"),
                format!("{:.1}x / {:.1}x", rt / hot.median_ms, rt / cold.median_ms),
            ),
            (Some(_), YuvLayout::I420) => ("(NV12 only)".into(), "–".into()),
            _ => ("–".into(), "–".into()),
        };
        println!(
            "| {name} | RGBA→{layout:?} | {:.3} | {:.3} | {:.1} | {:.3} | {:.3} | {:.1} | {sws_s} | {ratio} |",
            hot.median_ms, hot.p95_ms, hg, cold.median_ms, cold.p95_ms, cg
        );
    }
    for n in &notes {
        println!("\n- {n}");
    }
}
