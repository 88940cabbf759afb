//! Shared helpers: a server on an ephemeral loopback port with short timeouts, frame builders.

#![allow(dead_code)]

use bytes::Bytes;
use framecast_core::{convert, ColorSpace, Yuv420Image, YuvLayout};
use framecast_io::{FrameSource, PatternKind, PatternSource};
use framecast_remote::client::{Client, ClientOptions};
use framecast_remote::compress::compress_plane;
use framecast_remote::server::{Server, ServerConfig};
use framecast_remote::wire::{Configure, FrameMsg, Limits, Message, Plane, Vtr1Codec};
use framecast_remote::Compression;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(3),
        max_message_bytes: 16 * 1024 * 1024,
        ..ServerConfig::default()
    }
}

pub async fn start(cfg: ServerConfig) -> SocketAddr {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let server = Server::bind(cfg).await.expect("bind");
    let addr = server.local_addr();
    tokio::spawn(server.run());
    addr
}

pub fn opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

pub fn encode_configure(w: u32, h: u32, fmt: u8, opts: &[(&str, &str)]) -> Configure {
    Configure {
        width: w,
        height: h,
        pix_fmt: fmt,
        tb_num: 1,
        tb_den: 30,
        fr_num: 30,
        fr_den: 1,
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        extradata: Bytes::new(),
    }
}

/// Test-card frames as tight NV12 (Y then UV), converted with framecast's converter.
pub fn nv12_frames(w: u32, h: u32, n: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut src = PatternSource::new(PatternKind::TestCard, w, h, (30, 1), Some(n)).unwrap();
    let mut img = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        convert::to_yuv420(&f.as_frame(), ColorSpace::default(), &mut img).unwrap();
        let (cw, ch) = (img.coded_width() as usize, h as usize);
        let y: Vec<u8> = (0..ch)
            .flat_map(|r| img.y()[r * cw..r * cw + w as usize].to_vec())
            .collect();
        let uvw = 2 * (w as usize).div_ceil(2);
        let uv: Vec<u8> = (0..(h as usize).div_ceil(2))
            .flat_map(|r| img.uv()[r * img.chroma_stride()..r * img.chroma_stride() + uvw].to_vec())
            .collect();
        out.push((y, uv));
    }
    out
}

/// Test-card frames as BGRA.
pub fn bgra_frames(w: u32, h: u32, n: u64) -> Vec<Vec<u8>> {
    let mut src = PatternSource::new(PatternKind::TestCard, w, h, (30, 1), Some(n)).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        let rgba = f.data();
        let mut bgra = rgba.to_vec();
        for px in bgra.chunks_exact_mut(4) {
            px.swap(0, 2);
        }
        out.push(bgra);
    }
    out
}

pub fn nv12_msg(w: u32, y: &[u8], uv: &[u8], pts: i64, c: Compression) -> Message {
    let h = (y.len() / w as usize) as u32;
    let uvw = 2 * w.div_ceil(2);
    Message::Frame(FrameMsg {
        pts,
        duration: 1,
        flags: 0,
        planes: vec![
            Plane {
                stride: w,
                height: h,
                data: compress_plane(c, 0, y).unwrap(),
            },
            Plane {
                stride: uvw,
                height: h.div_ceil(2),
                data: compress_plane(c, 1, uv).unwrap(),
            },
        ],
        side_data: vec![],
    })
}

pub async fn connect(addr: SocketAddr) -> Client {
    Client::connect(addr, opts()).await.expect("connect")
}

pub fn have_ffmpeg() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Decode an Annex B stream with ffmpeg to raw RGB24 frames.
pub fn ffmpeg_decode_rgb(h264: &[u8], w: u32, h: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.h264");
    std::fs::write(&p, h264).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&p)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = (w * h * 3) as usize;
    assert_eq!(out.stdout.len() % n, 0);
    out.stdout.chunks(n).map(|c| c.to_vec()).collect()
}

/// Check every test-card patch centre in an RGB24 frame within ±tol.
pub fn check_patches(rgb: &[u8], w: u32, h: u32, tol: i32) {
    for p in framecast_io::test_card_patches(w, h) {
        if p.w < 4 || p.h < 4 {
            continue;
        }
        let (cx, cy) = ((p.x + p.w / 2) as usize, (p.y + p.h / 2) as usize);
        let i = (cy * w as usize + cx) * 3;
        for c in 0..3 {
            let d = rgb[i + c] as i32 - p.rgb[c] as i32;
            assert!(
                d.abs() <= tol,
                "patch {} channel {c}: got {:?}, want {:?}",
                p.name,
                &rgb[i..i + 3],
                p.rgb
            );
        }
    }
}

/// A raw VTR1 connection: bytes out, parsed messages in (for tests that must control every
/// byte a client sends).
pub struct Raw {
    pub s: TcpStream,
    pub codec: Vtr1Codec,
}

impl Raw {
    pub async fn new(addr: SocketAddr) -> Raw {
        Raw {
            s: TcpStream::connect(addr).await.unwrap(),
            codec: Vtr1Codec::new(Limits::client(1 << 26)),
        }
    }

    /// Write bytes; the server may already have closed, so a failed write is not an error here
    /// (the next read tells).
    pub async fn bytes(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b).await;
    }

    /// The next message, or None on close; panics after 20 s.
    pub async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(m) = self.codec.poll().unwrap() {
                    return Some(m);
                }
                let mut b = vec![0u8; 1 << 16];
                match self.s.read(&mut b).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.codec.feed(&b[..n]),
                }
            }
        })
        .await
        .expect("server neither answered nor closed within 20 s")
    }

    /// Nothing more arrives; the server closes.
    pub async fn expect_closed(&mut self) {
        let next = self.next().await;
        assert!(next.is_none(), "expected close, got {next:?}");
    }
}
