//! The server's defences over real sockets: a viewer that floods messages, clients that never
//! finish a request, a token that guards the metrics, and a shutdown that tells everyone.

use framecast_stream::protocol::{client, CAP_H264_ANNEXB, CAP_JPEG};
use framecast_stream::{ServerConfig, StreamConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::*;

/// Read until the peer closes the connection; `None` if it is still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_viewer_loses_only_its_own_connection() {
    let d = start(
        StreamConfig::new(W, H),
        ServerConfig {
            max_messages_per_second: 200,
            ..ServerConfig::default()
        },
    )
    .await;
    let mut calm = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    next_json(&mut calm).await;
    let mut flood = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    next_json(&mut flood).await;
    // 5,000 events as fast as the socket takes them: far over 200/s with a 1 s burst.
    let event = r#"{"type":"event","event":{"type":"key_down","key":"a","code":"KeyA","modifiers":[],"timestamp":1}}"#;
    for _ in 0..5000 {
        if flood.send(Message::text(event)).await.is_err() {
            break;
        }
    }
    let (code, reason) = close_code_after(&mut flood, true).await;
    assert_eq!((code, reason.as_str()), (1008, "too many messages"));
    // The calm viewer keeps getting frames, and the application did not get 5,000 events.
    for _ in 0..10 {
        let (h, _) = next_binary(&mut calm).await;
        calm.send(Message::text(client::ack(h.seq(), 0)))
            .await
            .unwrap();
    }
    let events = d.poll_events().len();
    assert!(events <= 400, "{events} events reached the application");
    assert_eq!(d.client_count(), 1);
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_cut_off_at_the_header_deadline() {
    let d = start(
        StreamConfig::new(W, H),
        ServerConfig {
            header_timeout: Duration::from_millis(500),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut half = TcpStream::connect(d.local_addr()).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let took = closed_within(&mut half, Duration::from_secs(5)).await;
    let took = took.expect("a half-sent request must not hold its socket");
    assert!(took >= Duration::from_millis(400), "closed after {took:?}");
    // An idle kept-alive connection is closed too.
    let mut idle = TcpStream::connect(d.local_addr()).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5))
        .await
        .is_some());
    // A viewer is unaffected by the deadline once upgraded.
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG], None).await;
    next_json(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (h, _) = next_binary(&mut ws).await;
    ws.send(Message::text(client::ack(h.seq(), 0)))
        .await
        .unwrap();
    next_binary(&mut ws).await;
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_connections_are_capped_and_viewers_get_in_when_they_time_out() {
    let d = start(
        StreamConfig::new(W, H),
        ServerConfig {
            max_pending_connections: 8,
            header_timeout: Duration::from_millis(700),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut stuck = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(d.local_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        stuck.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A ninth connection is closed at once while the eight hold their slots.
    let mut ninth = TcpStream::connect(d.local_addr()).await.unwrap();
    let closed = closed_within(&mut ninth, Duration::from_millis(300)).await;
    assert!(closed.is_some(), "the ninth pending connection was kept");
    // Once the deadline frees the slots, a viewer gets in.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG], None).await;
    assert_eq!(next_json(&mut ws).await["type"], "config");
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_stream_list_need_the_token() {
    let mut config = StreamConfig::new(W, H);
    config.token = Some("s3cret".into());
    let d = start(config, ServerConfig::default()).await;
    let addr = d.local_addr();
    assert_eq!(get(addr, "/metrics").await.0, 401);
    assert_eq!(
        get(addr, "/streams/default/metrics?token=nope").await.0,
        401
    );
    assert_eq!(
        get(addr, "/streams/default/metrics?token=s3cret").await.0,
        200
    );
    let with_bearer = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http(addr, &with_bearer).await.0, 200);
    let (status, body) = get(addr, "/streams").await;
    assert_eq!(status, 200);
    assert_eq!(
        body.trim(),
        "[]",
        "a guarded stream is not listed without its token"
    );
    let (_, body) = get(addr, "/streams?token=s3cret").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["name"], "default");
    assert_eq!(get(addr, "/health").await.0, 200, "health stays open");
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_token_is_refused_at_configuration() {
    let mut config = StreamConfig::new(W, H);
    config.token = Some(String::new());
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let e = framecast_stream::serve(server, config).await.unwrap_err();
    assert!(e.to_string().contains("empty token"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_returns_after_every_viewer_got_its_close_frame() {
    let d = default_display().await;
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut ws = hello(&d.ws_url(), &[CAP_JPEG], None).await;
        next_json(&mut ws).await;
        viewers.push(ws);
    }
    // The viewers answer close frames (as browsers do) from their own tasks.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for mut ws in viewers {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Close(Some(f)) = m {
                    let _ = tx.send((u16::from(f.code), Instant::now()));
                }
            }
        });
    }
    d.close().await;
    let closed_at = Instant::now();
    for _ in 0..3 {
        let (code, at) = tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, 1001);
        assert!(
            at <= closed_at,
            "a close frame arrived after close() returned"
        );
    }
    assert!(d
        .publish_rgba(&vec![0; (W * H * 4) as usize], W, H)
        .is_err());
}
