//! Loopback remote encode vs local encode, same backend, same frames; wire Mb/s and CPU for
//! none / LZ4 / Zstd plane compression. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p framecast-remote --example remote_bench -- [--frames 240] [--repeats 3] [--sizes 720p,1080p] [--window 8]
//! ```
//!
//! The server runs in this process on 127.0.0.1 (its own session thread and encoder thread, as
//! in `framecast remote serve`); the client converts nothing (the frames are NV12 already) but
//! compresses each plane on a producer thread, like `framecast remote encode`. CPU is the whole
//! process's user+system time (client and server together) per frame, from /proc/self/stat.

use bytes::Bytes;
use framecast_core::{convert, ColorSpace, Frame, Yuv420Image, YuvLayout};
use framecast_encode::{
    BackpressurePolicy, EncodeMode, Encoder, EncoderConfig, EncoderEvent, FrameMeta,
};
use framecast_io::{FrameSource, PatternKind, PatternSource};
use framecast_remote::client::{run_stream, Client, ClientOptions, Credit};
use framecast_remote::compress::compress_plane;
use framecast_remote::server::{Server, ServerConfig};
use framecast_remote::wire::{pix_fmt, Configure, FrameMsg, Message, Plane};
use framecast_remote::Compression;
use std::sync::Arc;
use std::time::Instant;

struct Frames {
    w: u32,
    h: u32,
    planes: Vec<(Bytes, Bytes)>,
}

fn frames(w: u32, h: u32, distinct: u64) -> Frames {
    let mut src = PatternSource::new(PatternKind::Plasma, w, h, (30, 1), Some(distinct)).unwrap();
    let mut img = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
    let mut planes = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        convert::to_yuv420(&f.as_frame(), ColorSpace::default(), &mut img).unwrap();
        let y = Bytes::copy_from_slice(&img.y()[..w as usize * h as usize]);
        let uv = Bytes::copy_from_slice(&img.uv()[..w as usize * (h as usize / 2)]);
        planes.push((y, uv));
    }
    Frames { w, h, planes }
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

struct Measure {
    fps: f64,
    cpu_ms_per_frame: Option<f64>,
    up_mbps: f64,
    down_mbps: f64,
}

fn config(w: u32, h: u32) -> EncoderConfig {
    let mut c = EncoderConfig::new(w, h);
    c.keyframe_interval = 60;
    c.mode = EncodeMode::Pipelined {
        max_in_flight: 2,
        policy: BackpressurePolicy::Block,
    };
    c
}

fn local(f: &Frames, n: usize) -> Measure {
    let mut enc = Encoder::new(config(f.w, f.h)).unwrap();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut out = 0;
    for i in 0..n {
        let (y, uv) = &f.planes[i % f.planes.len()];
        let frame = Frame::nv12(y, f.w as usize, uv, f.w as usize, f.w, f.h).unwrap();
        let _ = enc
            .send_frame(
                &frame,
                FrameMeta {
                    token: i as u64,
                    pts_ns: i as i64,
                    force_keyframe: false,
                },
            )
            .unwrap();
        while let Some(EncoderEvent::Packet(_)) = enc.receive().unwrap() {
            out += 1;
        }
    }
    out += enc.flush().unwrap().len();
    assert_eq!(out, n);
    let secs = t0.elapsed().as_secs_f64();
    Measure {
        fps: n as f64 / secs,
        cpu_ms_per_frame: cpu_seconds()
            .zip(cpu0)
            .map(|(a, b)| (a - b) * 1e3 / n as f64),
        up_mbps: 0.0,
        down_mbps: 0.0,
    }
}

async fn remote(
    addr: std::net::SocketAddr,
    f: Arc<Frames>,
    n: usize,
    c: Compression,
    window: usize,
) -> Measure {
    let mut client = Client::connect(addr, ClientOptions::default())
        .await
        .unwrap();
    let mut cfg = Configure {
        width: f.w,
        height: f.h,
        pix_fmt: pix_fmt::NV12,
        tb_num: 1,
        tb_den: 30,
        fr_num: 30,
        fr_den: 1,
        ..Configure::default()
    };
    cfg.set_option("wire_compression", c.wire_value().to_string());
    cfg.set_option("gop", "60");
    client.configure(cfg).await.unwrap();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(window);
    let producer = {
        let f = f.clone();
        std::thread::spawn(move || {
            for i in 0..n {
                let (y, uv) = &f.planes[i % f.planes.len()];
                let plane = |d: &Bytes, h: u32| Plane {
                    stride: f.w,
                    height: h,
                    data: match c {
                        Compression::None => d.clone(),
                        _ => compress_plane(c, 0, d).expect("compression"),
                    },
                };
                let m = Message::Frame(FrameMsg {
                    pts: i as i64,
                    duration: 1,
                    flags: 0,
                    planes: vec![plane(y, f.h), plane(uv, f.h / 2)],
                    side_data: vec![],
                });
                if tx.blocking_send(m).is_err() {
                    break;
                }
            }
        })
    };
    let stats = run_stream(client, rx, window, Credit::PerOutput, |_| {
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .unwrap();
    producer.join().unwrap();
    assert_eq!(stats.outputs, n as u64);
    let secs = t0.elapsed().as_secs_f64();
    Measure {
        fps: n as f64 / secs,
        cpu_ms_per_frame: cpu_seconds()
            .zip(cpu0)
            .map(|(a, b)| (a - b) * 1e3 / n as f64),
        up_mbps: stats.bytes_sent as f64 * 8.0 / secs / 1e6,
        down_mbps: stats.bytes_received as f64 * 8.0 / secs / 1e6,
    }
}

fn median(mut v: Vec<Measure>) -> Measure {
    v.sort_by(|a, b| a.fps.total_cmp(&b.fps));
    v.swap_remove(v.len() / 2)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} logical cores available")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--frames").map_or(240, |v| v.parse().unwrap());
    let repeats: usize = arg(&args, "--repeats").map_or(3, |v| v.parse().unwrap());
    let window: usize = arg(&args, "--window").map_or(8, |v| v.parse().unwrap());
    let sizes = arg(&args, "--sizes").unwrap_or_else(|| "720p,1080p".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(async {
        let server = Server::bind(ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run());
        addr
    });
    println!("## Remote (VTR1 loopback) vs local encode\n");
    println!(
        "Machine: {}. Backend: {}. OpenH264 assembly: {}. Frames: {n} per run (60 distinct plasma \
         frames, NV12), median of {repeats} runs, in-flight window {window}, GOP 60, default bitrate.\n",
        machine(),
        framecast_encode::registry::default_backend_name(),
        framecast_encode::openh264_assembly()
    );
    println!(
        "Command: `cargo run --release -p framecast-remote --example remote_bench -- {}`\n",
        args[1..].join(" ")
    );
    println!(
        "| size | path | fps | vs local | wire up Mb/s | wire down Mb/s | CPU ms/frame (process) |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|");
    for size in sizes.split(',') {
        let (w, h) = match size {
            "720p" => (1280, 720),
            "1080p" => (1920, 1080),
            other => {
                let (a, b) = other.split_once('x').expect("size like 1280x720");
                (a.parse().unwrap(), b.parse().unwrap())
            }
        };
        let f = Arc::new(frames(w, h, 60));
        let loc = median((0..repeats).map(|_| local(&f, n)).collect());
        let row = |name: &str, m: &Measure, base: f64| {
            println!(
                "| {size} | {name} | {:.1} | {:.1} % | {:.1} | {:.2} | {} |",
                m.fps,
                100.0 * m.fps / base,
                m.up_mbps,
                m.down_mbps,
                m.cpu_ms_per_frame
                    .map_or("n/a".into(), |c| format!("{c:.2}"))
            );
        };
        row("local", &loc, loc.fps);
        for &c in Compression::ALL {
            let m = median(
                (0..repeats)
                    .map(|_| rt.block_on(remote(addr, f.clone(), n, c, window)))
                    .collect(),
            );
            row(&format!("remote {}", c.name()), &m, loc.fps);
        }
    }
}
