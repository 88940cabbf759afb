// The healthy session alongside the battery uses Zstd planes.
#![cfg(feature = "zstd")]
//! Bad input against a running server: each case gets the right ERROR (or HELLO_ACK status, or
//! close), and a healthy session running alongside keeps encoding throughout.

mod common;

use common::*;
use framecast_remote::client::{Client, ClientOptions};
use framecast_remote::wire::*;
use framecast_remote::{Compression, RemoteError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "s3cret-token";
const W: u32 = 160;
const H: u32 = 96;

impl Raw {
    async fn send(&mut self, m: &Message) {
        self.bytes(&m.encode().unwrap()).await;
    }
    async fn expect_error(&mut self, code: u32, needle: &str) {
        match self.next().await {
            Some(Message::Error(e)) => {
                assert_eq!(e.code, code, "error code for {needle:?}: {}", e.message);
                assert!(
                    e.message.to_lowercase().contains(&needle.to_lowercase()),
                    "{:?} should mention {needle:?}",
                    e.message
                );
            }
            other => panic!("expected ERROR {code} ({needle}), got {other:?}"),
        }
        self.expect_closed().await;
    }
    async fn hello(&mut self, token: &str) -> HelloAck {
        self.send(&Message::Hello(Hello {
            token: token.into(),
            codec: "h264".into(),
            client_name: "battery".into(),
            build: "0".into(),
        }))
        .await;
        match self.next().await {
            Some(Message::HelloAck(a)) => a,
            other => panic!("expected HELLO_ACK, got {other:?}"),
        }
    }
    async fn configured(addr: SocketAddr) -> Raw {
        let mut r = Raw::new(addr).await;
        assert_eq!(r.hello(TOKEN).await.status, status::OK);
        r.send(&Message::Configure(encode_configure(
            W,
            H,
            pix_fmt::NV12,
            &[],
        )))
        .await;
        match r.next().await {
            Some(Message::ConfigureAck(a)) => assert_eq!(a.status, 0),
            other => panic!("expected CONFIGURE_ACK, got {other:?}"),
        }
        r
    }
}

fn token_opts() -> ClientOptions {
    ClientOptions {
        token: TOKEN.into(),
        ..opts()
    }
}

/// An encode session that sends a frame every 40 ms until `stop`, then drains; returns
/// (frames sent, packets received).
async fn healthy(addr: SocketAddr, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut client = Client::connect(addr, token_opts()).await.unwrap();
    client
        .configure(encode_configure(
            W,
            H,
            pix_fmt::NV12,
            &[("wire_compression", "2")],
        ))
        .await
        .unwrap();
    let frames = nv12_frames(W, H, 8);
    let (mut sent, mut got) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) || sent < 10 {
        let (y, uv) = &frames[sent as usize % frames.len()];
        client
            .send(&nv12_msg(W, y, uv, sent as i64, Compression::Zstd))
            .await
            .unwrap();
        sent += 1;
        match tokio::time::timeout(Duration::from_secs(5), client.recv()).await {
            Ok(Ok(Message::Packet(p))) => {
                assert_eq!(p.pts, got as i64);
                got += 1;
            }
            other => panic!("healthy session broke: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    client.send(&Message::Flush).await.unwrap();
    loop {
        match client.recv().await.unwrap() {
            Message::Packet(_) => got += 1,
            Message::Done => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    (sent, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn battery_with_a_healthy_session_alongside() {
    let mut cfg = config();
    cfg.token = Some(TOKEN.into());
    cfg.max_sessions = 16;
    cfg.max_message_bytes = 1 << 20;
    let addr = start(cfg).await;
    let stop = Arc::new(AtomicBool::new(false));
    let h = tokio::spawn(healthy(addr, stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Wrong magic.
    let mut r = Raw::new(addr).await;
    r.bytes(b"VTR2\x00\x01\x00\x01\x00\x00\x00\x00").await;
    r.expect_error(error_code::BAD_REQUEST, "bad magic").await;

    // Wrong version.
    let mut r = Raw::new(addr).await;
    r.bytes(&[0x56, 0x54, 0x52, 0x31, 0, 9, 0, 1, 0, 0, 0, 0])
        .await;
    r.expect_error(error_code::BAD_REQUEST, "version 9").await;

    // Oversized HELLO, refused from its header.
    let mut r = Raw::new(addr).await;
    r.bytes(&[0x56, 0x54, 0x52, 0x31, 0, 1, 0, 1, 0, 0x10, 0, 0])
        .await;
    r.expect_error(error_code::BAD_REQUEST, "message too large")
        .await;

    // Oversized FRAME after the handshake (max-message-bytes is 1 MiB here).
    let mut r = Raw::configured(addr).await;
    r.bytes(&[0x56, 0x54, 0x52, 0x31, 0, 1, 0, 5, 0x7F, 0, 0, 0])
        .await;
    r.expect_error(error_code::BAD_REQUEST, "message too large")
        .await;

    // Malformed body: HELLO whose first string runs past the payload.
    let mut r = Raw::new(addr).await;
    r.bytes(&[0x56, 0x54, 0x52, 0x31, 0, 1, 0, 1, 0, 0, 0, 3, 0, 50, b'x'])
        .await;
    r.expect_error(error_code::BAD_REQUEST, "truncated").await;

    // Truncated message: half a HELLO, then the client goes away. Nothing to answer.
    let mut r = Raw::new(addr).await;
    r.bytes(&[0x56, 0x54, 0x52, 0x31, 0, 1, 0, 1, 0, 0, 0, 40, 0, 2])
        .await;
    r.s.shutdown().await.unwrap();
    r.expect_closed().await;

    // Wrong token: HELLO_ACK status 2, then close.
    let mut r = Raw::new(addr).await;
    let ack = r.hello("wrong").await;
    assert_eq!(ack.status, status::AUTH_FAIL);
    r.expect_closed().await;
    let err = Client::connect(addr, opts()).await.unwrap_err();
    assert!(matches!(err, RemoteError::AuthFailed { .. }), "{err}");

    // Unexpected type before HELLO and after CONFIGURE.
    let mut r = Raw::new(addr).await;
    r.send(&Message::Done).await;
    r.expect_error(error_code::BAD_REQUEST, "expected HELLO")
        .await;
    for m in [
        Message::Done,
        Message::HelloAck(HelloAck::default()),
        Message::ConfigureAck(ConfigureAck::default()),
        Message::PacketAck,
    ] {
        let mut r = Raw::configured(addr).await;
        let kind = m.kind();
        r.send(&m).await;
        r.expect_error(
            error_code::BAD_REQUEST,
            &format!("unexpected message type {}", kind.0),
        )
        .await;
    }

    // PACKET in encode mode is a bad request too.
    let mut r = Raw::configured(addr).await;
    r.send(&Message::Packet(PacketMsg {
        pts: 0,
        dts: 0,
        duration: 1,
        flags: 0,
        data: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        side_data: vec![],
    }))
    .await;
    r.expect_error(error_code::BAD_REQUEST, "unexpected PACKET")
        .await;

    // Unknown type: skipped; the session goes on (PING answered after it).
    let mut r = Raw::configured(addr).await;
    r.bytes(&[0x56, 0x54, 0x52, 0x31, 0, 1, 0, 99, 0, 0, 0, 3, 1, 2, 3])
        .await;
    r.send(&Message::Ping).await;
    assert_eq!(r.next().await, Some(Message::Pong));
    r.send(&Message::Flush).await;
    assert_eq!(r.next().await, Some(Message::Done));
    r.expect_closed().await;

    // Wrong plane count and wrong geometry.
    let frames = nv12_frames(W, H, 1);
    let (y, uv) = &frames[0];
    let mut r = Raw::configured(addr).await;
    let Message::Frame(mut f) = nv12_msg(W, y, uv, 0, Compression::None) else {
        unreachable!()
    };
    f.planes.pop();
    r.send(&Message::Frame(f)).await;
    r.expect_error(error_code::PROCESSING_FAILED, "expected 2 planes")
        .await;
    let mut r = Raw::configured(addr).await;
    let Message::Frame(mut f) = nv12_msg(W, y, uv, 0, Compression::None) else {
        unreachable!()
    };
    f.planes[1].height = H;
    r.send(&Message::Frame(f)).await;
    r.expect_error(error_code::PROCESSING_FAILED, "invalid plane height")
        .await;
    let mut r = Raw::configured(addr).await;
    let Message::Frame(mut f) = nv12_msg(W, y, uv, 0, Compression::None) else {
        unreachable!()
    };
    f.planes[0].stride = W - 2;
    r.send(&Message::Frame(f)).await;
    r.expect_error(error_code::PROCESSING_FAILED, "stride")
        .await;

    // Corrupt compressed plane.
    let mut r = Raw::new(addr).await;
    r.hello(TOKEN).await;
    r.send(&Message::Configure(encode_configure(
        W,
        H,
        pix_fmt::NV12,
        &[("wire_compression", "1")],
    )))
    .await;
    assert!(matches!(r.next().await, Some(Message::ConfigureAck(_))));
    let Message::Frame(mut f) = nv12_msg(W, y, uv, 0, Compression::Lz4) else {
        unreachable!()
    };
    f.planes[0].data = bytes::Bytes::from_static(&[0xF0, 1, 2]);
    r.send(&Message::Frame(f)).await;
    r.expect_error(error_code::PROCESSING_FAILED, "lz4").await;

    // CONFIGURE failures: ERROR 1.
    for (opts, needle) in [
        (vec![("profile", "12345")], "profile"),
        (vec![("wire_compression", "7")], "wire compression"),
    ] {
        let mut r = Raw::new(addr).await;
        r.hello(TOKEN).await;
        r.send(&Message::Configure(encode_configure(
            W,
            H,
            pix_fmt::NV12,
            &opts,
        )))
        .await;
        r.expect_error(error_code::CONFIGURE_FAILED, needle).await;
    }
    let mut r = Raw::new(addr).await;
    r.hello(TOKEN).await;
    r.send(&Message::Configure(encode_configure(
        W,
        H,
        pix_fmt::P010,
        &[],
    )))
    .await;
    r.expect_error(error_code::CONFIGURE_FAILED, "p010").await;

    // Slow-loris: a HELLO trickled a byte every 300 ms is cut off by the 2 s handshake
    // deadline, long before it is complete.
    let hello = Message::Hello(Hello {
        token: TOKEN.into(),
        codec: "h264".into(),
        client_name: "slow".into(),
        build: "loris".into(),
    })
    .encode()
    .unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    let mut cut_off = false;
    for b in &hello {
        if s.write_all(&[*b]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            _ => {}
        }
    }
    assert!(cut_off, "a trickling client must be disconnected");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());

    stop.store(true, Ordering::Relaxed);
    let (sent, got) = h.await.unwrap();
    assert!(sent >= 10);
    assert_eq!(sent, got, "the healthy session got every packet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_past_max_sessions_and_slots_are_released() {
    let mut cfg = config();
    cfg.max_sessions = 2;
    cfg.token = Some(TOKEN.into());
    let addr = start(cfg).await;
    let stop = Arc::new(AtomicBool::new(false));
    let h = tokio::spawn(healthy(addr, stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let holder = Client::connect(addr, token_opts()).await.unwrap();
    assert_eq!(holder.hello_ack().active_sessions, 2);
    // Third client: BUSY straight away, with the server's name and version.
    let mut r = Raw::new(addr).await;
    match r.next().await {
        Some(Message::HelloAck(a)) => {
            assert_eq!(a.status, status::BUSY);
            assert_eq!(a.server_version, env!("CARGO_PKG_VERSION"));
            assert_eq!(a.max_sessions, 2);
        }
        other => panic!("expected BUSY, got {other:?}"),
    }
    r.expect_closed().await;
    let err = Client::connect(addr, token_opts()).await.unwrap_err();
    assert!(matches!(err, RemoteError::Busy { .. }), "{err}");

    // The holder leaves abruptly; its slot comes back.
    drop(holder);
    let t0 = Instant::now();
    loop {
        match Client::connect(addr, token_opts()).await {
            Ok(_) => break,
            Err(RemoteError::Busy { .. }) if t0.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("slot not released: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, got) = h.await.unwrap();
    assert_eq!(sent, got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_session_is_closed_after_the_idle_timeout() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(500);
    let addr = start(cfg).await;
    let mut r = Raw::new(addr).await;
    r.hello("").await;
    r.send(&Message::Configure(encode_configure(
        W,
        H,
        pix_fmt::NV12,
        &[],
    )))
    .await;
    assert!(matches!(r.next().await, Some(Message::ConfigureAck(_))));
    let t0 = Instant::now();
    r.expect_closed().await;
    assert!(t0.elapsed() < Duration::from_secs(5));
}
