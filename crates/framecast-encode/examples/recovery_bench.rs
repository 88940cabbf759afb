//! Recovery of a viewer that missed frames: a recovery P-frame (long-term reference,
//! [`Encoder::recover`]) against the IDR a keyframe-only server sends, on the same frames.
//!
//! Two encoders take the same input. Both report "every viewer displayed up to frame i - lag"
//! (a round trip of `lag` frames). Every `every` frames a viewer that stalled `missed` frames
//! earlier comes back: encoder L is asked for a recovery P-frame (`recover`), encoder K is
//! forced to an IDR. For each event: the recovery frame's bytes (every viewer of the shared
//! encoder receives it) and encode time, its PSNR against the source (decoded through the
//! whole stream, as the viewers that never missed a frame see it), and the peak one-second
//! bitrate around it.
//!
//! ```text
//! cargo run --release -p framecast-encode --example recovery_bench -- \
//!     [INPUT] [--size 1920x1080] [--bitrate 8M] [--frames 600] [--every 30] [--lag 3] [--missed 5] [--qp N]
//!     [--backend openh264|x264]
//! ```
//! INPUT: `pattern:plasma` (default), `pattern:testcard`, or a `.y4m` file (e.g. ffmpeg's
//! testsrc2). `--qp N`: constant QP instead of rate control, so both runs code at the same
//! quality and the sizes show the coding cost alone. Prints a Markdown table: median and p95
//! over the events.

use framecast_core::convert::{psnr_plane, to_yuv420};
use framecast_core::{ColorSpace, Yuv420Image, YuvLayout};
use framecast_encode::decode::H264Decoder;
use framecast_encode::{EncodedPacket, Encoder, EncoderConfig, EncoderEvent, FrameMeta};
use framecast_io::{open_input, FrameSource, InputHint, PatternKind, PatternSource};
use std::path::Path;
use std::time::Instant;

struct Args {
    input: String,
    size: (u32, u32),
    bitrate: u32,
    frames: u64,
    every: u64,
    lag: u64,
    missed: u64,
    /// Constant QP instead of rate control (equal quality: the coding cost alone).
    qp: Option<u8>,
    /// Backend (default: the registry's default).
    backend: String,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        input: "pattern:plasma".into(),
        size: (1920, 1080),
        bitrate: 8_000_000,
        frames: 600,
        every: 30,
        lag: 3,
        missed: 5,
        qp: None,
        backend: framecast_encode::registry::default_backend_name().into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
        match k.as_str() {
            "--size" => {
                let s = v()?;
                let (w, h) = s.split_once('x').ok_or(format!("--size {s}: want WxH"))?;
                a.size = (
                    w.parse().map_err(|_| format!("--size {s}"))?,
                    h.parse().map_err(|_| format!("--size {s}"))?,
                );
            }
            "--bitrate" => {
                let s = v()?;
                let (n, m) = match s.strip_suffix(['M', 'm']) {
                    Some(n) => (n, 1e6),
                    None => (s.as_str(), 1.0),
                };
                a.bitrate = (n.parse::<f64>().map_err(|e| format!("{s}: {e}"))? * m) as u32;
            }
            "--frames" => a.frames = num(v()?)?,
            "--every" => a.every = num(v()?)?,
            "--lag" => a.lag = num(v()?)?,
            "--missed" => a.missed = num(v()?)?,
            "--qp" => a.qp = Some(num(v()?)?.min(51) as u8),
            "--backend" => a.backend = v()?,
            "-h" | "--help" => {
                return Err("usage: recovery_bench [INPUT] [--size WxH] [--bitrate 8M] [--frames N] [--every N] [--lag N] [--missed N] [--qp N] [--backend NAME]".into())
            }
            _ if !k.starts_with('-') => a.input = k,
            _ => return Err(format!("unknown flag {k}")),
        }
    }
    if a.every <= a.lag + a.missed {
        return Err("--every must exceed --lag + --missed".into());
    }
    Ok(a)
}

fn source(a: &Args) -> Result<Box<dyn FrameSource>, String> {
    match a.input.strip_prefix("pattern:") {
        Some(name) => {
            let kind: PatternKind = name.parse().map_err(|e| format!("{e}"))?;
            let (w, h) = a.size;
            Ok(Box::new(
                PatternSource::new(kind, w, h, (30, 1), Some(a.frames))
                    .map_err(|e| e.to_string())?,
            ))
        }
        None => open_input(Path::new(&a.input), InputHint::default()).map_err(|e| e.to_string()),
    }
}

/// One encoder under test and what it produced.
struct Run {
    enc: Encoder,
    packets: Vec<(EncodedPacket, f64)>,
    dec: H264Decoder,
    psnr: Vec<f64>,
}

impl Run {
    /// `recovery`: long-term references on (the recovery run) or off (the IDR run, as
    /// framecast encodes without them).
    fn new(w: u32, h: u32, a: &Args, recovery: bool) -> Result<Self, String> {
        let mut c = EncoderConfig::new(w, h);
        c.backend = a.backend.clone();
        c.bitrate = a.bitrate;
        if let Some(qp) = a.qp {
            c.rate_control = framecast_encode::RateControl::ConstantQp(qp);
        }
        c.keyframe_interval = 0;
        c.recovery = recovery;
        Ok(Run {
            enc: Encoder::new(c).map_err(|e| e.to_string())?,
            packets: Vec::new(),
            dec: H264Decoder::new().map_err(|e| e.to_string())?,
            psnr: Vec::new(),
        })
    }

    fn encode(
        &mut self,
        frame: &framecast_core::OwnedFrame,
        meta: FrameMeta,
        source_y: &Yuv420Image,
    ) -> Result<(), String> {
        let t = Instant::now();
        let _ = self
            .enc
            .send_frame(&frame.as_frame(), meta)
            .map_err(|e| e.to_string())?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        while let Some(ev) = self.enc.receive().map_err(|e| e.to_string())? {
            if let EncoderEvent::Packet(p) = ev {
                let img = self
                    .dec
                    .decode(&p.data)
                    .map_err(|e| e.to_string())?
                    .ok_or("no picture")?;
                let (w, h) = (source_y.width() as usize, source_y.height() as usize);
                let crop = |im: &Yuv420Image| -> Vec<u8> {
                    (0..h)
                        .flat_map(|r| im.y()[r * im.y_stride()..r * im.y_stride() + w].to_vec())
                        .collect()
                };
                self.psnr.push(psnr_plane(&crop(&img), &crop(source_y)));
                self.packets.push((p, ms));
            }
        }
        Ok(())
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    if let Err(e) = run() {
        eprintln!("recovery_bench: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let a = parse()?;
    let mut src = source(&a)?;
    let (w, h) = (src.width(), src.height());
    let mut ltr = Run::new(w, h, &a, true)?;
    let mut idr = Run::new(w, h, &a, false)?;
    let mut events = Vec::new();
    let mut yuv = Yuv420Image::new(w, h, YuvLayout::I420).map_err(|e| e.to_string())?;
    let mut i = 0u64;
    while i < a.frames {
        let Some(frame) = src.next_frame().map_err(|e| e.to_string())? else {
            break;
        };
        to_yuv420(&frame.as_frame(), ColorSpace::default(), &mut yuv).map_err(|e| e.to_string())?;
        let event = i >= a.every && i % a.every == 0;
        // The viewers displayed up to i - lag. The one that comes back at the next event
        // stopped displaying `missed` frames before it, so from then on nothing newer than
        // its last displayed frame is displayed by every viewer.
        let next_event = i.div_ceil(a.every) * a.every;
        let watermark = if next_event >= a.every && next_event - i <= a.missed {
            next_event.checked_sub(a.lag + a.missed)
        } else {
            i.checked_sub(a.lag)
        };
        for r in [&mut ltr, &mut idr] {
            if let Some(t) = watermark {
                r.enc.displayed(t).map_err(|e| e.to_string())?;
            }
        }
        let mut force = false;
        if event {
            let last = watermark.expect("event after lag + missed");
            match ltr.enc.recover(last).map_err(|e| e.to_string())? {
                Some(_) => events.push(i),
                None => eprintln!("frame {i}: no confirmed reference, skipped"),
            }
            force = true;
        }
        let meta = |force| FrameMeta {
            token: i,
            pts_ns: i as i64 * 33_333_333,
            force_keyframe: force,
        };
        ltr.encode(&frame, meta(false), &yuv)?;
        idr.encode(&frame, meta(force), &yuv)?;
        i += 1;
        if i % 100 == 0 {
            eprintln!("{i}/{} frames", a.frames);
        }
    }
    let fps = 30.0;
    let window = fps as usize;
    let peak = |r: &Run, at: usize| -> f64 {
        // Largest bitrate over any one-second window that contains frame `at`.
        (at.saturating_sub(window - 1)..=at)
            .filter(|s| s + window <= r.packets.len())
            .map(|s| {
                r.packets[s..s + window]
                    .iter()
                    .map(|(p, _)| p.data.len() as f64 * 8.0)
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
            / 1e6
    };
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
    type Metric = (&'static str, fn(&Run, usize, f64) -> f64);
    let metrics: [Metric; 4] = [
        ("recovery frame, kB", |r, at, _| {
            r.packets[at].0.data.len() as f64 / 1e3
        }),
        ("vs the median P-frame, ×", |r, at, _| {
            let mut around: Vec<f64> = r.packets[at.saturating_sub(10)..at]
                .iter()
                .map(|(p, _)| p.data.len() as f64)
                .collect();
            r.packets[at].0.data.len() as f64 / quantile(&mut around, 0.5)
        }),
        ("encode, ms", |r, at, _| r.packets[at].1),
        ("PSNR Y, dB", |r, at, _| r.psnr[at]),
    ];
    for (name, f) in metrics {
        let l: Vec<f64> = events
            .iter()
            .map(|&e| f(&ltr, e as usize, a.bitrate as f64))
            .collect();
        let k: Vec<f64> = events
            .iter()
            .map(|&e| f(&idr, e as usize, a.bitrate as f64))
            .collect();
        rows.push((name, l, k));
    }
    let lp: Vec<f64> = events.iter().map(|&e| peak(&ltr, e as usize)).collect();
    let kp: Vec<f64> = events.iter().map(|&e| peak(&idr, e as usize)).collect();
    rows.push(("peak 1 s bitrate around it, Mb/s", lp, kp));
    // The frames no recovery touched (the event and the 10 after it excluded): what a
    // recovery frame is compared with.
    let plain: Vec<usize> = (1..ltr.packets.len())
        .filter(|&j| {
            !events
                .iter()
                .any(|&e| j >= e as usize && j <= e as usize + 10)
        })
        .collect();
    let median = |f: &dyn Fn(usize) -> f64| {
        quantile(&mut plain.iter().map(|&j| f(j)).collect::<Vec<_>>(), 0.5)
    };
    let plain_kb = median(&|j| ltr.packets[j].0.data.len() as f64 / 1e3);
    let plain_psnr = median(&|j| ltr.psnr[j]);
    let plain_ms = median(&|j| ltr.packets[j].1);
    let recovered = events
        .iter()
        .filter(|&&e| ltr.packets[e as usize].0.recovery_from.is_some())
        .count();
    let idr_frames = ltr.packets.iter().filter(|(p, _)| p.keyframe).count();
    let rate = match a.qp {
        Some(qp) => format!("constant QP {qp}"),
        None => format!("{} Mb/s", a.bitrate as f64 / 1e6),
    };
    println!(
        "{} {}x{} at {rate}, {} frames, {} recoveries (a viewer {} frames behind, round trip {} frames); LTR run: {} of them recovery P-frames, {} IDR in all",
        a.input,
        w,
        h,
        i,
        events.len(),
        a.missed,
        a.lag,
        recovered,
        idr_frames
    );
    println!(
        "ordinary P-frames (LTR run, away from the recoveries): median {plain_kb:.2} kB, {plain_ms:.2} ms to encode, PSNR Y {plain_psnr:.2} dB"
    );
    println!();
    println!("| per recovery | recovery P-frame p50 | p95 | IDR p50 | p95 |");
    println!("|---|---|---|---|---|");
    for (name, mut l, mut k) in rows {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            quantile(&mut l, 0.5),
            quantile(&mut l, 0.95),
            quantile(&mut k, 0.5),
            quantile(&mut k, 0.95)
        );
    }
    Ok(())
}
