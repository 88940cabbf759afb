//! Fan-out through two clustered `moq-relay` processes: `framecast serve --publish-moq` (a
//! separate process, so its CPU is its own) publishes to the first relay; N subscribers are
//! split between the relays (the odd one on the second). For each N it reports framecast's
//! CPU, each hop's publish→receive latency and the fps delivered.
//!
//! ```text
//! cargo build --release -p framecast-cli
//! cargo run --release -p framecast-moq --example moq_fanout_bench -- \
//!     --subscribers 1,10,50 --seconds 15 --size 1920x1080 --fps 30
//! ```
//!
//! Latency: a frame's timestamp is its publish time on the stream clock; `GET /time` on the
//! framecast server maps it to the wall clock (same machine, same clock), so a subscriber's
//! receive time minus that is publish → receive, encode included. The second relay's figure
//! minus the first's is what the extra hop adds.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    subscribers: Vec<usize>,
    seconds: f64,
    size: (u32, u32),
    fps: f64,
    framecast: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        subscribers: vec![1, 10, 50],
        seconds: 15.0,
        size: (1920, 1080),
        fps: 30.0,
        framecast: std::env::var("FRAMECAST_BIN").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/release/framecast"
            )
            .into()
        }),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--subscribers" => {
                a.subscribers = value
                    .split(',')
                    .map(|n| n.parse().expect("a count"))
                    .collect()
            }
            "--seconds" => a.seconds = value.parse().expect("seconds"),
            "--fps" => a.fps = value.parse().expect("fps"),
            "--size" => {
                let (w, h) = value.split_once('x').expect("WxH");
                a.size = (w.parse().expect("width"), h.parse().expect("height"));
            }
            "--framecast" => a.framecast = value,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

#[derive(Default)]
struct Samples {
    latency_ms: Vec<f64>,
    frames: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = parse_args();
    let bin = common::relay_binary().expect("moq-relay (MOQ_RELAY=... or .tools/)");
    let first = common::Relay::start(&bin, None).await;
    let second = common::Relay::start(&bin, Some(&first)).await;
    let (w, h) = a.size;
    let mut child = Command::new(&a.framecast)
        .args([
            "serve",
            "--pattern",
            "plasma",
            "--size",
            &format!("{w}x{h}"),
        ])
        .args(["--fps", &a.fps.to_string(), "--listen", "127.0.0.1:0"])
        .args([
            "--publish-moq",
            &first.url("bench"),
            "--moq-fingerprint",
            &first.fingerprint,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (cargo build --release -p framecast-cli)",
                a.framecast
            )
        });
    let pid = child.id();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // Keep reading what it prints: a closed pipe would end it at its next line.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let time = server_clock(port).await;
    let offset = time.1 - time.0; // unix_us - stream timestamp_us
    println!(
        "| subscribers | framecast CPU (% of one core) | hop 1 p50 / p95 ms | via hop 2 p50 / p95 ms | hop 2 adds (p50) | fps delivered (min / median) |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in &a.subscribers {
        let on_second = n.div_ceil(2);
        let mut tasks = Vec::new();
        let stats: Vec<Arc<Mutex<Samples>>> = (0..n).map(|_| Default::default()).collect();
        for (i, s) in stats.iter().enumerate() {
            let (url, fp, hop) = if i < on_second {
                (second.url(""), second.fingerprint.clone(), 2)
            } else {
                (first.url(""), first.fingerprint.clone(), 1)
            };
            let s = s.clone();
            tasks.push((
                hop,
                tokio::spawn(async move {
                    let mut watching = common::watch(&url, &fp, "bench").await;
                    // Warm-up: the first group may be a cached one.
                    let warm = Instant::now() + Duration::from_secs(2);
                    while let Ok(Some(f)) = watching.video.read().await {
                        if Instant::now() < warm {
                            continue;
                        }
                        let ms =
                            (unix_us() - (f.timestamp.as_micros() as i64 + offset)) as f64 / 1000.0;
                        let mut s = s.lock().unwrap();
                        s.latency_ms.push(ms);
                        s.frames += 1;
                    }
                }),
            ));
        }
        tokio::time::sleep(Duration::from_secs(3)).await; // joins and warm-up
        for s in &stats {
            *s.lock().unwrap() = Samples::default();
        }
        let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
        let (cpu1, secs) = (cpu_seconds(pid), t0.elapsed().as_secs_f64());
        let (mut hop1, mut hop2, mut fps) = (Vec::new(), Vec::new(), Vec::new());
        for ((hop, _), s) in tasks.iter().zip(&stats) {
            let s = s.lock().unwrap();
            fps.push(s.frames as f64 / secs);
            if *hop == 1 {
                hop1.extend(&s.latency_ms);
            } else {
                hop2.extend(&s.latency_ms);
            }
        }
        for (_, t) in &tasks {
            t.abort();
        }
        let (h1_50, h1_95) = (percentile(&mut hop1, 0.5), percentile(&mut hop1, 0.95));
        let (h2_50, h2_95) = (percentile(&mut hop2, 0.5), percentile(&mut hop2, 0.95));
        let (fmin, fmed) = (
            fps.iter().copied().fold(f64::INFINITY, f64::min),
            percentile(&mut fps, 0.5),
        );
        let fmt = |x: f64| {
            if x.is_nan() {
                "–".to_string()
            } else {
                format!("{x:.1}")
            }
        };
        println!(
            "| {n} | {:.0} | {} / {} | {} / {} | {} | {fmin:.1} / {fmed:.1} |",
            (cpu1 - cpu0) / secs * 100.0,
            fmt(h1_50),
            fmt(h1_95),
            fmt(h2_50),
            fmt(h2_95),
            fmt(h2_50 - h1_50),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `GET /time` of the framecast server: (timestamp_us, unix_us).
async fn server_clock(port: u16) -> (i64, i64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let body = buf.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    (
        v["timestamp_us"].as_i64().unwrap(),
        v["unix_us"].as_i64().unwrap(),
    )
}
