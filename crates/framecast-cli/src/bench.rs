//! `framecast bench`: encode time per frame, ours against ffmpeg's libx264 on the same frames.
//!
//! Method: N frames of a pattern (or of an input file, e.g. a `testsrc2` .y4m) are encoded
//! synchronously (1-in-1-out); each packet's encode time is recorded (conversion is reported
//! separately) and, untimed, the packet is decoded back for PSNR against its source. The same
//! frames, converted to the YUV layout the backend encodes from, are written to a raw file and
//! encoded by `ffmpeg -c:v libx264 -tune zerolatency` with the settings framecast's x264 backend
//! uses (same preset and threads, ABR with a one-second VBV, a fixed GOP, no scene cuts) and
//! `-benchmark_all`, whose per-call `encode_video` timings give the peer's per-frame encode time
//! in the same run.

use crate::args::{parse_bitrate, parse_size};
use crate::psnr::PsnrCheck;
use crate::{exit, Failure, WithCode};
use anyhow::{bail, Context};
use clap::Args;
use framecast_core::{convert, ColorSpace, Frame, Yuv420Image, YuvLayout};
use framecast_encode::{Encoder, EncoderConfig, EncoderEvent, FrameMeta};
use framecast_io::{render_into, PatternKind};
use std::io::Write;
use std::process::Command;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Comma-separated sizes (WxH or 720p/1080p/4k).
    #[arg(long, default_value = "720p,1080p,4k", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<(u32, u32)>,
    /// Frames per size.
    #[arg(long, default_value_t = 120)]
    frames: u64,
    /// Pattern to encode (testcard, bands, gradient, plasma).
    #[arg(long, default_value = "bands")]
    pattern: String,
    /// Encode the frames of this file (.y4m, e.g. `ffmpeg -f lavfi -i testsrc2=size=1920x1080`)
    /// instead of a pattern; its own size replaces --sizes.
    #[arg(long, value_name = "FILE")]
    input: Option<std::path::PathBuf>,
    /// Speed preset for framecast's x264 backend and for the ffmpeg peer (default ultrafast).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Encoder backend.
    #[arg(long, default_value_t = framecast_encode::registry::default_backend_name().to_string())]
    backend: String,
    /// Encoder threads for framecast's backend (0 = backend's choice).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Bitrate for both encoders; default scales with size (8M at 1080p30).
    #[arg(long, value_parser = parse_bitrate)]
    bitrate: Option<u32>,
    /// Skip the ffmpeg/libx264 peer.
    #[arg(long)]
    no_peer: bool,
}

/// Median and 95th percentile of `v` (nearest-rank).
pub fn median_p95(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    (rank(0.5), rank(0.95))
}

struct Row {
    size: (u32, u32),
    ours: (f64, f64),
    convert: (f64, f64),
    ours_kbps: f64,
    psnr: Option<f64>,
    peer: Option<(f64, f64, f64)>,
}

/// The peer's settings: those of framecast's x264 backend.
struct PeerSettings<'a> {
    fps: u32,
    bitrate: u32,
    keyint: u32,
    threads: u32,
    preset: &'a str,
}

fn peer_x264(frames: &[Yuv420Image], s: &PeerSettings<'_>) -> anyhow::Result<(f64, f64, f64)> {
    let PeerSettings {
        fps,
        bitrate,
        keyint,
        threads,
        preset,
    } = *s;
    let (w, h) = (frames[0].coded_width(), frames[0].coded_height());
    let dir = std::env::temp_dir().join(format!("framecast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let yuv = dir.join("in.yuv");
    let out = dir.join("out.h264");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&yuv)?);
        for img in frames {
            match img.layout() {
                YuvLayout::I420 => {
                    let (y, u, v) = img.planes();
                    f.write_all(y)?;
                    f.write_all(u)?;
                    f.write_all(v)?;
                }
                YuvLayout::Nv12 => {
                    f.write_all(img.y())?;
                    f.write_all(img.uv())?;
                }
            }
        }
    }
    let pix_fmt = match frames[0].layout() {
        YuvLayout::I420 => "yuv420p",
        YuvLayout::Nv12 => "nv12",
    };
    let kbps = (bitrate / 1000).to_string();
    // framecast's x264 backend: VBV of one second at the target, IDRs only where the GOP says.
    // Sliced threads, as the backend (FFmpeg would otherwise pick frame threads, a frame of delay).
    let x264_params = format!("vbv-maxrate={kbps}:vbv-bufsize={kbps}:scenecut=0:sliced-threads=1");
    let output = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-benchmark_all",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
        ])
        .args(["-s", &format!("{w}x{h}"), "-r", &fps.to_string(), "-i"])
        .arg(&yuv)
        .args([
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-tune",
            "zerolatency",
            "-bf",
            "0",
            "-x264-params",
            &x264_params,
            "-keyint_min",
            &keyint.to_string(),
        ])
        .args([
            "-threads",
            &threads.to_string(),
            "-b:v",
            &bitrate.to_string(),
            "-g",
            &keyint.to_string(),
        ])
        .args(["-f", "h264", "-y"])
        .arg(&out)
        .output()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    if !output.status.success() {
        bail!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    // `-benchmark_all` prints "bench: U user S sys R real encode_video ..." (microseconds) for
    // each call into the encoder; consecutive encode_video lines belong to one frame.
    let text = String::from_utf8_lossy(&output.stderr);
    let mut per_frame = Vec::new();
    let mut acc: Option<f64> = None;
    for line in text.split("bench:").skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let real = f
            .iter()
            .position(|t| *t == "real")
            .and_then(|i| f.get(i.wrapping_sub(1)))
            .and_then(|v| v.parse::<f64>().ok());
        let is_encode = f.contains(&"encode_video");
        match (is_encode, real) {
            (true, Some(us)) => *acc.get_or_insert(0.0) += us / 1000.0,
            _ => {
                if let Some(v) = acc.take() {
                    per_frame.push(v);
                }
            }
        }
    }
    if let Some(v) = acc {
        per_frame.push(v);
    }
    if per_frame.len() < frames.len() / 2 {
        bail!(
            "could not read ffmpeg's per-frame timings ({} values for {} frames)",
            per_frame.len(),
            frames.len()
        );
    }
    let (m, p) = median_p95(&per_frame);
    let kbps = size as f64 * 8.0 / (frames.len() as f64 / fps as f64) / 1000.0;
    Ok((m, p, kbps))
}

/// Where the bench's frames come from.
enum Frames {
    Pattern(PatternKind),
    File(Box<dyn framecast_io::FrameSource>),
}

pub fn run(a: BenchArgs) -> Result<(), Failure> {
    let fps = 30u32;
    let keyint = 60;
    let preset = a.preset.clone().unwrap_or_else(|| "ultrafast".to_owned());
    let sizes = match &a.input {
        Some(path) => {
            let src = framecast_io::open_input(path, Default::default()).code(exit::INPUT)?;
            vec![(src.width(), src.height())]
        }
        None => a.sizes.clone(),
    };
    let mut rows = Vec::new();
    for &(w, h) in &sizes {
        let mut frames = match &a.input {
            Some(path) => {
                Frames::File(framecast_io::open_input(path, Default::default()).code(exit::INPUT)?)
            }
            None => Frames::Pattern(a.pattern.parse().code(exit::USAGE)?),
        };
        eprintln!("{w}x{h}: encoding {} frames...", a.frames);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        let mut config = EncoderConfig::new(w, h);
        config.backend = a.backend.clone();
        config.fps = fps as f64;
        config.keyframe_interval = keyint;
        config.threads = a.threads;
        config.bitrate = a.bitrate.unwrap_or(config.bitrate);
        config.preset = a.preset.clone();
        let mut enc = Encoder::new(config.clone()).code(exit::ENCODER)?;
        let mut psnr = PsnrCheck::new(ColorSpace::default()).ok();
        let (mut enc_ms, mut conv_ms, mut bytes) = (Vec::new(), Vec::new(), 0usize);
        let mut yuv_frames = Vec::new();
        for i in 0..a.frames {
            let owned;
            let frame = match &mut frames {
                Frames::Pattern(kind) => {
                    render_into(*kind, i, w, h, &mut rgba).code(exit::USAGE)?;
                    Frame::rgba8(&rgba, w, h, w as usize * 4).code(exit::USAGE)?
                }
                Frames::File(src) => match src.next_frame().code(exit::INPUT)? {
                    Some(f) => {
                        owned = f;
                        owned.as_frame()
                    }
                    None => break,
                },
            };
            if !a.no_peer {
                let mut img = Yuv420Image::new(w, h, enc.input_layout()).code(exit::USAGE)?;
                convert::to_yuv420(&frame, ColorSpace::default(), &mut img).code(exit::USAGE)?;
                yuv_frames.push(img);
            }
            if let Some(p) = psnr.as_mut() {
                p.push_source(i, &frame).code(exit::ENCODER)?;
            }
            let _ = enc
                .send_frame(
                    &frame,
                    FrameMeta {
                        token: i,
                        pts_ns: i as i64 * 33_333_333,
                        force_keyframe: false,
                    },
                )
                .code(exit::ENCODER)?;
            while let Some(ev) = enc.receive().code(exit::ENCODER)? {
                if let EncoderEvent::Packet(p) = ev {
                    enc_ms.push(p.timings.encode_ms);
                    conv_ms.push(p.timings.convert_ms);
                    bytes += p.data.len();
                    if let Some(check) = psnr.as_mut() {
                        check.packet(&p).code(exit::ENCODER)?;
                    }
                }
            }
        }
        let _ = enc.flush().code(exit::ENCODER)?;
        let n = enc_ms.len().max(1) as f64;
        let ours_kbps = bytes as f64 * 8.0 / (n / fps as f64) / 1000.0;
        let peer = if a.no_peer {
            None
        } else {
            eprintln!("{w}x{h}: ffmpeg libx264 on the same frames...");
            let settings = PeerSettings {
                fps,
                bitrate: config.bitrate,
                keyint,
                threads: a.threads.max(1),
                preset: &preset,
            };
            Some(peer_x264(&yuv_frames, &settings).code(exit::ENCODER)?)
        };
        rows.push(Row {
            size: (w, h),
            ours: median_p95(&enc_ms),
            convert: median_p95(&conv_ms),
            ours_kbps,
            psnr: psnr.map(|p| p.result().yuv[3]),
            peer,
        });
    }
    println!(
        "| size | {} encode ms med / p95 | convert ms med / p95 | {} kb/s | {} PSNR dB | ffmpeg libx264 {preset} ms med / p95 | libx264 kb/s | ours / libx264 (median) |",
        a.backend, a.backend, a.backend
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (pm, pp, pk, ratio) = match r.peer {
            Some((m, p, k)) => (
                format!("{m:.2}"),
                format!("{p:.2}"),
                format!("{k:.0}"),
                format!("{:.2}x", r.ours.0 / m),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let psnr = r.psnr.map_or("-".into(), |p| format!("{p:.2}"));
        println!(
            "| {}x{} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} | {psnr} | {pm} / {pp} | {pk} | {ratio} |",
            r.size.0, r.size.1, r.ours.0, r.ours.1, r.convert.0, r.convert.1, r.ours_kbps
        );
    }
    println!(
        "\n(threads: framecast {} = {}, libx264 = {}; {} frames per size, {fps} fps, keyint {keyint}, preset {preset})",
        a.backend,
        a.threads,
        a.threads.max(1),
        a.frames
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median_p95;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(median_p95(&v), (50.0, 95.0));
        assert_eq!(median_p95(&[3.0]), (3.0, 3.0));
    }
}
