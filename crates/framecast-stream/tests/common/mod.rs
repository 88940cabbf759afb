//! Helpers shared by the loopback test binaries: a server publishing the test card, a
//! WebSocket client, raw HTTP.
#![allow(dead_code)] // each test binary uses its own subset

use framecast_core::PixelFormat;
use framecast_io::{render_into, test_card_patches, PatternKind};
use framecast_stream::protocol::{client, decode_envelope, BinaryHeader};
use framecast_stream::{serve, Display, ServerConfig, StreamConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

pub const W: u32 = 320;
pub const H: u32 = 240;
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn start(mut stream: StreamConfig, server: ServerConfig) -> Display {
    stream.fps = 30.0;
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..server
    };
    let display = serve(server, stream).await.unwrap();
    let d = display.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        for i in 0u64.. {
            tick.tick().await;
            let r = d.publish_with(PixelFormat::Rgba8, W, H, |rgba| {
                render_into(PatternKind::TestCard, i, W, H, rgba).unwrap();
            });
            if r.is_err() {
                break;
            }
        }
    });
    display
}

pub async fn default_display() -> Display {
    start(StreamConfig::new(W, H), ServerConfig::default()).await
}

pub async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

pub async fn hello(url: &str, caps: &[&str], token: Option<&str>) -> Ws {
    let mut ws = connect(url).await;
    ws.send(Message::text(client::hello(caps, token)))
        .await
        .unwrap();
    ws
}

/// Next message within 5 s.
pub async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("timed out waiting for a message")
        .expect("stream ended")
        .expect("websocket error")
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        if let Message::Text(t) = next(ws).await {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

pub async fn next_binary(ws: &mut Ws) -> (BinaryHeader, Vec<u8>) {
    loop {
        if let Message::Binary(b) = next(ws).await {
            let (h, p) = decode_envelope(&b).unwrap();
            return (h, p.to_vec());
        }
    }
}

/// The close code and reason; frames before it are an error (auth, routing, negotiation).
pub async fn close_code(ws: &mut Ws) -> (u16, String) {
    close_code_after(ws, false).await
}

pub async fn close_code_after(ws: &mut Ws, frames_allowed: bool) -> (u16, String) {
    loop {
        match next(ws).await {
            Message::Close(Some(f)) => return (f.code.into(), f.reason.to_string()),
            Message::Close(None) => return (1005, String::new()),
            Message::Binary(_) if !frames_allowed => {
                panic!("no frame may arrive before the close")
            }
            _ => {}
        }
    }
}

pub fn assert_patches(rgba: &[u8], what: &str) {
    for p in test_card_patches(W, H) {
        if p.w < 8 || p.h < 8 {
            continue;
        }
        let (cx, cy) = (p.x + p.w / 2, p.y + p.h / 2);
        let i = ((cy * W + cx) * 4) as usize;
        for c in 0..3 {
            let (got, want) = (rgba[i + c] as i32, p.rgb[c] as i32);
            assert!(
                (got - want).abs() <= 6,
                "{what}: patch {} channel {c}: got {got}, want {want}",
                p.name
            );
        }
    }
}

pub async fn http(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}
