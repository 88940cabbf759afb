//! Soak: a server with the library's defaults (stats off) publishing 1080p30 for M minutes
//! while N acking viewers join and leave at random; RSS and open descriptors sampled every
//! 10 s. A benchmark program, not a test.
//!
//! ```text
//! cargo build --release -p framecast-stream --example soak --example probe
//! target/release/examples/soak [--minutes 30] [--viewers 8] [--size 1920x1080] [--fps 30]
//! ```
//!
//! The viewers run in a child process (`examples/probe --churn`, found next to this binary),
//! so the figures are the server's alone. Output: one line per sample (seconds, RSS MB, open
//! descriptors, viewers connected, frames published), then a summary: RSS at start, after the
//! first minute, maximum and end; growth after the first minute; descriptors at baseline and
//! at the end (after the viewers left); panics caught.

use framecast_core::{OwnedFrame, PixelFormat};
use framecast_io::{render_into, PatternKind};
use framecast_stream::{serve, ServerConfig, StreamConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static PANICS: AtomicU64 = AtomicU64::new(0);

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

struct Args {
    minutes: f64,
    viewers: usize,
    size: (u32, u32),
    fps: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        minutes: 30.0,
        viewers: 8,
        size: (1920, 1080),
        fps: 30.0,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).expect("option needs a value");
        match pair[0].as_str() {
            "--minutes" => a.minutes = v.parse().expect("--minutes M"),
            "--viewers" => a.viewers = v.parse().expect("--viewers N"),
            "--fps" => a.fps = v.parse().expect("--fps F"),
            "--size" => {
                let (w, h) = v.split_once('x').expect("--size WxH");
                a.size = (w.parse().expect("width"), h.parse().expect("height"));
            }
            other => panic!("unknown option {other}"),
        }
    }
    a
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let a = parse_args();
    let (w, h) = a.size;
    // 60 distinct frames, cycled: rendering costs nothing during the run.
    let frames: Vec<Arc<OwnedFrame>> = (0..60)
        .map(|i| {
            let mut f = OwnedFrame::zeroed(PixelFormat::Rgba8, w, h).unwrap();
            render_into(PatternKind::MovingBands, i, w, h, f.data_mut()).unwrap();
            Arc::new(f)
        })
        .collect();
    let fds_before = open_fds();
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let mut stream = StreamConfig::new(w, h);
    stream.fps = a.fps;
    assert!(
        stream.stats_interval.is_none(),
        "library default: stats off"
    );
    let display = serve(server, stream).await.unwrap();
    let fds_baseline = open_fds();
    let probe = std::env::current_exe().unwrap().with_file_name("probe");
    let seconds = a.minutes * 60.0;
    let mut child = tokio::process::Command::new(&probe)
        .args([
            "--url",
            &display.ws_url(),
            "--viewers",
            &a.viewers.to_string(),
            "--seconds",
            &seconds.to_string(),
            "--warmup",
            "0",
            "--churn",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build the probe example)",
                probe.display()
            )
        });
    let d = display.clone();
    let period = Duration::from_secs_f64(1.0 / a.fps);
    let publisher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        for i in 0usize.. {
            tick.tick().await;
            if d.publish(frames[i % frames.len()].clone()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    println!("seconds,rss_mb,fds,viewers,frames_published");
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let sample = |samples: &mut Vec<(f64, f64)>| {
        let t = start.elapsed().as_secs_f64();
        let rss = rss_mb();
        samples.push((t, rss));
        println!(
            "{t:.0},{rss:.1},{},{},{}",
            open_fds(),
            display.client_count(),
            display.frames_published()
        );
    };
    sample(&mut samples);
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(10),
        Duration::from_secs(10),
    );
    loop {
        tokio::select! {
            _ = every.tick() => sample(&mut samples),
            out = child.wait() => {
                out.unwrap();
                break;
            }
        }
    }
    let mut probe_out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        let _ = stdout.read_to_string(&mut probe_out).await;
    }
    // Let the server notice the last disconnects, then look again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sample(&mut samples);
    let fds_end = open_fds();
    let after_minute = samples
        .iter()
        .find(|(t, _)| *t >= 60.0)
        .map_or(samples[0].1, |s| s.1);
    let max = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let end = samples.last().unwrap().1;
    println!("probe: {}", probe_out.trim());
    println!(
        "summary: rss start {:.1} MB, after 1 min {after_minute:.1} MB, max {max:.1} MB, end {end:.1} MB; growth after the first minute {:+.1} %",
        samples[0].1,
        (end / after_minute - 1.0) * 100.0
    );
    println!(
        "summary: descriptors before the server {fds_before}, with the server idle {fds_baseline}, at the end {fds_end}; panics {}",
        PANICS.load(Ordering::Relaxed)
    );
    publisher.abort();
    display.close().await;
}
