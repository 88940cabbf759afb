//! Sustained fps and CPU with N simulated viewers sharing one encoder.
//!
//! ```text
//! cargo run --release -p framecast-stream --example viewers_bench -- \
//!     [--viewers 1,4,8] [--size 1920x1080] [--fps 30] [--seconds 10] \
//!     [--patterns testcard,bands] [--backend openh264] [--transport video|image]
//! ```
//!
//! Each run starts a server on a loopback port, publishes pre-rendered frames at `fps` (60
//! distinct frames, cycled, so rendering costs nothing during the measurement), and connects
//! N Rust WebSocket viewers that advertise WebCodecs H.264 (or images only) and ack each
//! payload as soon as it arrives. After a 2 s warm-up it measures for `seconds`: process CPU
//! (user + system from /proc/self/stat, viewers included), per-frame encode time (median and
//! p95 over the last 256 frames), frames encoded per second (frames published while the
//! shared encoder was still busy are superseded: latest wins), delivered fps per viewer and
//! frames dropped for a viewer (skipped because it had `max_inflight` frames unacked).

use framecast_core::PixelFormat;
use framecast_io::{render_into, OwnedFrame, PatternKind};
use framecast_stream::protocol::{client, decode_envelope, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG};
use framecast_stream::{serve, ServerConfig, StreamConfig, TransportPolicy};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ")".
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

struct Args {
    viewers: Vec<usize>,
    size: (u32, u32),
    fps: f64,
    seconds: f64,
    patterns: Vec<PatternKind>,
    backend: Option<String>,
    transport: TransportPolicy,
}

fn parse_args() -> Args {
    let mut a = Args {
        viewers: vec![1, 4, 8],
        size: (1920, 1080),
        fps: 30.0,
        seconds: 10.0,
        patterns: vec![PatternKind::TestCard, PatternKind::MovingBands],
        backend: None,
        transport: TransportPolicy::Video,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--viewers" => a.viewers = v.split(',').map(|x| x.parse().expect("viewers")).collect(),
            "--size" => {
                let (w, h) = v.split_once('x').expect("WxH");
                a.size = (w.parse().expect("width"), h.parse().expect("height"));
            }
            "--fps" => a.fps = v.parse().expect("fps"),
            "--seconds" => a.seconds = v.parse().expect("seconds"),
            "--patterns" => {
                a.patterns = v.split(',').map(|p| p.parse().expect("pattern")).collect()
            }
            "--backend" => a.backend = Some(v),
            "--transport" => a.transport = v.parse().expect("transport"),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    a
}

struct RunResult {
    fps_per_viewer: Vec<f64>,
    cpu_percent: f64,
    encode_p50: f64,
    encode_p95: f64,
    dropped: u64,
    published_fps: f64,
    encoded_fps: f64,
}

async fn run(a: &Args, pattern: PatternKind, viewers: usize) -> RunResult {
    let (w, h) = a.size;
    let mut cfg = StreamConfig::new(w, h);
    cfg.fps = a.fps;
    cfg.bitrate = framecast_encode::default_bitrate(w, h, a.fps);
    cfg.transports = a.transport;
    if let Some(b) = &a.backend {
        cfg.backend = b.clone();
    }
    let display = serve(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        },
        cfg,
    )
    .await
    .expect("server");
    let frames: Vec<Arc<OwnedFrame>> = (0..60)
        .map(|i| {
            let mut f = OwnedFrame::zeroed(PixelFormat::Rgba8, w, h).unwrap();
            render_into(pattern, i, w, h, f.data_mut()).unwrap();
            Arc::new(f)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (d, stop, published) = (display.clone(), stop.clone(), published.clone());
        let period = Duration::from_secs_f64(1.0 / a.fps);
        std::thread::spawn(move || {
            let mut next = Instant::now();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                d.publish(frames[i % frames.len()].clone()).unwrap();
                published.fetch_add(1, Ordering::Relaxed);
                i += 1;
                next += period;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    let caps: Vec<&str> = match a.transport {
        TransportPolicy::Image => vec![CAP_JPEG, CAP_PNG],
        _ => vec![CAP_JPEG, CAP_PNG, CAP_H264_ANNEXB],
    };
    let counters: Vec<Arc<AtomicU64>> = (0..viewers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut tasks = vec![];
    for c in &counters {
        let (url, c, caps) = (display.ws_url(), c.clone(), caps.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("connect");
            ws.send(Message::text(client::hello(&caps, None)))
                .await
                .unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Binary(b) = m {
                    let Ok((h, _)) = decode_envelope(&b) else {
                        break;
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    if ws
                        .send(Message::text(client::ack(h.seq(), 0)))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let dropped_before: u64 = display
        .metrics()
        .await
        .map(|m| m.viewers.iter().map(|v| v.frames_dropped).sum())
        .unwrap_or(0);
    let pub_before = published.load(Ordering::Relaxed);
    let encoded_before = display
        .metrics()
        .await
        .and_then(|m| m.groups.iter().map(|g| g.frames_encoded).max())
        .unwrap_or(0);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    let (cpu1, elapsed) = (cpu_seconds(), t0.elapsed().as_secs_f64());
    let after: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let pub_after = published.load(Ordering::Relaxed);
    let m = display.metrics().await.expect("metrics");
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    display.close().await;
    for t in tasks {
        t.abort();
    }
    let g = m.groups.iter().max_by_key(|g| g.frames_encoded);
    RunResult {
        fps_per_viewer: before
            .iter()
            .zip(&after)
            .map(|(b, a)| (a - b) as f64 / elapsed)
            .collect(),
        cpu_percent: (cpu1 - cpu0) / elapsed * 100.0,
        encode_p50: g.map(|g| g.encode_ms_p50).unwrap_or(0.0),
        encode_p95: g.map(|g| g.encode_ms_p95).unwrap_or(0.0),
        dropped: m
            .viewers
            .iter()
            .map(|v| v.frames_dropped)
            .sum::<u64>()
            .saturating_sub(dropped_before),
        published_fps: (pub_after - pub_before) as f64 / elapsed,
        encoded_fps: g
            .map(|g| g.frames_encoded.saturating_sub(encoded_before))
            .unwrap_or(0) as f64
            / elapsed,
    }
}

fn main() {
    let a = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "viewers_bench: {}x{} @ {} fps, {} s per run, transport {:?}, backend {}, {} CPUs online",
        a.size.0,
        a.size.1,
        a.fps,
        a.seconds,
        a.transport,
        a.backend
            .clone()
            .unwrap_or_else(|| framecast_encode::registry::default_backend_name().into()),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    );
    println!("| pattern | viewers | published fps | encoded fps | delivered fps/viewer (min / median) | dropped | encode ms p50 | encode ms p95 | CPU % (of one core) |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for &pattern in &a.patterns {
        for &n in &a.viewers {
            let r = rt.block_on(run(&a, pattern, n));
            let mut f = r.fps_per_viewer.clone();
            f.sort_by(f64::total_cmp);
            println!(
                "| {} | {n} | {:.1} | {:.1} | {:.1} / {:.1} | {} | {:.2} | {:.2} | {:.0} |",
                pattern.name(),
                r.published_fps,
                r.encoded_fps,
                f.first().copied().unwrap_or(0.0),
                f.get(f.len() / 2).copied().unwrap_or(0.0),
                r.dropped,
                r.encode_p50,
                r.encode_p95,
                r.cpu_percent,
            );
        }
    }
}
