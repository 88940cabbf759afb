//! Acking viewers for measurements: connects N WebSocket viewers to a running framecast (or
//! pdum.rfb) server, acks every payload on receipt, and reports what they got.
//!
//! ```text
//! cargo run --release -p framecast-stream --example probe -- \
//!     --url ws://127.0.0.1:8765/ [--viewers 1] [--seconds 30] [--warmup 3] \
//!     [--image] [--churn] [--json] [--samples FILE]
//! ```
//!
//! Publish → receive latency uses the server's clock pair (`GET /time`: the stream clock of
//! header `timestamp_us` and the Unix clock, read back to back), so the probe and the server
//! must share a clock: the same machine (network namespaces included). For a server without
//! `/time` (pdum.rfb), pass `--clock-offset-us` (Unix µs minus header µs). Frames received during
//! the warm-up are not counted. With `--churn` each viewer stays 5–60 s, leaves, waits up to
//! 5 s and joins again, for the whole run (the soak benchmark's load); the report then counts
//! connections too.
//!
//! Output: one line per run (or JSON with `--json`): delivered fps per viewer, keyframes per
//! second, publish→receive latency p50/p95/p99, the longest gap between two frames of one
//! viewer, and the received bitrate. `--samples FILE` also writes one line per frame (tab
//! separated: Unix seconds at receipt, publish→receive ms, bytes, keyframe 0/1), for figures
//! over part of a run (scripts/bench/drop_report.py).

use framecast_stream::protocol::{client, decode_envelope, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG};
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    url: String,
    viewers: usize,
    seconds: f64,
    warmup: f64,
    image: bool,
    churn: bool,
    json: bool,
    clock_offset_us: Option<i64>,
    samples: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "ws://127.0.0.1:8765/".into(),
        viewers: 1,
        seconds: 30.0,
        warmup: 3.0,
        image: false,
        churn: false,
        json: false,
        clock_offset_us: None,
        samples: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = || argv.get(i + 1).cloned().expect("option needs a value");
        match argv[i].as_str() {
            "--url" => a.url = v(),
            "--viewers" => a.viewers = v().parse().expect("--viewers N"),
            "--seconds" => a.seconds = v().parse().expect("--seconds S"),
            "--warmup" => a.warmup = v().parse().expect("--warmup S"),
            "--clock-offset-us" => {
                a.clock_offset_us = Some(v().parse().expect("--clock-offset-us N"))
            }
            "--samples" => a.samples = Some(v()),
            "--image" => {
                a.image = true;
                i -= 1;
            }
            "--churn" => {
                a.churn = true;
                i -= 1;
            }
            "--json" => {
                a.json = true;
                i -= 1;
            }
            other => panic!("unknown option {other} (see the file's header)"),
        }
        i += 2;
    }
    a
}

fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64
}

/// `unix_us - timestamp_us` of the stream clock, from `GET /time` (pdum.rfb has no such
/// endpoint: then 0, and latency is not reported).
async fn clock_offset(url: &str) -> Option<i64> {
    let rest = url.split_once("://")?.1;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let time_path = if path.is_empty() {
        "/time".to_string()
    } else {
        format!("/streams/{}/time", path.trim_end_matches('/'))
    };
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    let req = format!("GET {time_path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out);
    let body = text.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(v["unix_us"].as_i64()? - v["timestamp_us"].as_i64()?)
}

#[derive(Default)]
struct Tally {
    frames: u64,
    keyframes: u64,
    bytes: u64,
    latencies_ms: Vec<f64>,
    max_gap_ms: f64,
    connections: u64,
    closes: Vec<u16>,
    /// (Unix seconds at receipt, publish → receive ms, bytes, keyframe) per frame.
    samples: Vec<(f64, f64, usize, bool)>,
}

/// One viewer session until `until` (or until the server closes it).
async fn view(
    args: &Args,
    offset: Option<i64>,
    count_from: Instant,
    until: Instant,
    tally: &Mutex<Tally>,
) {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(args.url.as_str()).await else {
        return;
    };
    let caps: &[&str] = if args.image {
        &[CAP_JPEG, CAP_PNG]
    } else {
        &[CAP_JPEG, CAP_PNG, CAP_H264_ANNEXB]
    };
    if ws
        .send(Message::text(client::hello(caps, None)))
        .await
        .is_err()
    {
        return;
    }
    tally.lock().unwrap().connections += 1;
    let mut last: Option<Instant> = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until.into(), ws.next()).await {
        match m {
            Message::Binary(b) => {
                let received = Instant::now();
                let now_us = unix_us();
                let Ok((h, payload)) = decode_envelope(&b) else {
                    continue;
                };
                let seq = h.seq();
                let (timestamp_us, keyframe) = match &h {
                    framecast_stream::protocol::BinaryHeader::VideoChunk(v) => {
                        (v.timestamp_us, v.keyframe)
                    }
                    framecast_stream::protocol::BinaryHeader::ImageFrame(i) => {
                        (i.timestamp_us, true)
                    }
                };
                let _ = ws.send(Message::text(client::ack(seq, 0))).await;
                if received < count_from {
                    last = Some(received);
                    continue;
                }
                let mut t = tally.lock().unwrap();
                t.frames += 1;
                t.keyframes += keyframe as u64;
                t.bytes += payload.len() as u64;
                if let Some(o) = offset {
                    let latency = (now_us - (timestamp_us as i64 + o)) as f64 / 1e3;
                    t.latencies_ms.push(latency);
                    t.samples
                        .push((now_us as f64 / 1e6, latency, payload.len(), keyframe));
                }
                if let Some(prev) = last {
                    t.max_gap_ms = t.max_gap_ms.max((received - prev).as_secs_f64() * 1e3);
                }
                last = Some(received);
            }
            Message::Close(f) => {
                let code = f.map(|f| u16::from(f.code)).unwrap_or(1005);
                tally.lock().unwrap().closes.push(code);
                return;
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Arc::new(parse_args());
    let offset = match args.clock_offset_us {
        Some(o) => Some(o),
        None => clock_offset(&args.url).await,
    };
    let start = Instant::now();
    let count_from = start + Duration::from_secs_f64(args.warmup);
    let until = count_from + Duration::from_secs_f64(args.seconds);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for v in 0..args.viewers {
        let (args, tally) = (args.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            // A small xorshift per viewer: churn timings differ between viewers, repeatably.
            let mut rng =
                0x9E37_79B9_7F4A_7C15u64 ^ (v as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng % 10_000) as f64 / 10_000.0
            };
            loop {
                let stay = if args.churn {
                    (Instant::now() + Duration::from_secs_f64(5.0 + 55.0 * next())).min(until)
                } else {
                    until
                };
                view(&args, offset, count_from, stay, &tally).await;
                if !args.churn || Instant::now() >= until {
                    break;
                }
                tokio::time::sleep(Duration::from_secs_f64(5.0 * next())).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let t = tally.lock().unwrap();
    if let Some(path) = &args.samples {
        let mut lines = String::new();
        for (at, ms, bytes, key) in &t.samples {
            lines.push_str(&format!("{at:.4}\t{ms:.3}\t{bytes}\t{}\n", *key as u8));
        }
        std::fs::write(path, lines).expect("--samples: cannot write the file");
    }
    let mut lat = t.latencies_ms.clone();
    lat.sort_by(f64::total_cmp);
    let secs = args.seconds;
    let per_viewer = t.frames as f64 / secs / args.viewers as f64;
    let report = serde_json::json!({
        "viewers": args.viewers,
        "seconds": secs,
        "fps_per_viewer": (per_viewer * 10.0).round() / 10.0,
        "keyframes_per_s_per_viewer": ((t.keyframes as f64 / secs / args.viewers as f64) * 100.0).round() / 100.0,
        "latency_ms": {"p50": pct(&lat, 0.5), "p95": pct(&lat, 0.95), "p99": pct(&lat, 0.99)},
        "max_gap_ms": (t.max_gap_ms * 10.0).round() / 10.0,
        "mbps": ((t.bytes as f64 * 8.0 / secs / 1e6) * 100.0).round() / 100.0,
        "connections": t.connections,
        "server_closes": t.closes,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "viewers {} | {:.1} fps each | {:.2} keyframes/s | publish->receive p50 {:.1} p95 {:.1} p99 {:.1} ms | longest gap {:.0} ms | {:.2} Mb/s | {} connections",
            args.viewers,
            per_viewer,
            t.keyframes as f64 / secs / args.viewers as f64,
            pct(&lat, 0.5),
            pct(&lat, 0.95),
            pct(&lat, 0.99),
            t.max_gap_ms,
            t.bytes as f64 * 8.0 / secs / 1e6,
            t.connections
        );
    }
}
