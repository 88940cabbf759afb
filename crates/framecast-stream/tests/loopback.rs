//! The server over real loopback sockets, driven by a Rust WebSocket client.

use framecast_core::{convert, ColorSpace, PixelFormat};
use framecast_encode::decode::H264Decoder;
use framecast_io::{render_into, PatternKind};
use framecast_stream::protocol::{
    client, BinaryHeader, PointerEvent, ViewerEvent, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG,
};
use framecast_stream::{serve, ServerConfig, StreamConfig};
use futures_util::SinkExt;
use serde_json::Value;
use std::time::{Duration, Instant};

mod common;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_chunks_decode_to_the_test_card() {
    // With congestion control (the default) the encoder makes no periodic IDRs: a loopback
    // viewer that keeps up gets only the first chunk as a keyframe.
    let keyframes = decode_45_chunks(true).await;
    assert_eq!(keyframes, [0], "keyframes at {keyframes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_adaptation_the_gop_is_one_second_as_pdum_rfbs() {
    let keyframes = decode_45_chunks(false).await;
    assert!(
        keyframes.len() >= 2 && keyframes[1] <= 32,
        "GOP ≈ 1 s: keyframes at {keyframes:?}"
    );
}

/// 45 chunks of the test card from a stream with congestion control on or off: each checked
/// and decoded (the first and last compared with the card), acked on receipt. Returns the
/// indices of the keyframes.
async fn decode_45_chunks(adaptive: bool) -> Vec<u64> {
    let d = start(
        StreamConfig {
            adaptive,
            ..StreamConfig::new(W, H)
        },
        ServerConfig::default(),
    )
    .await;
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG, CAP_PNG, CAP_H264_ANNEXB], None).await;
    let config = next_json(&mut ws).await;
    assert_eq!(config["type"], "config");
    assert_eq!(config["transport"], "webcodecs");
    assert_eq!(config["coords"], "frame-pixels");
    assert!(config["codec"].as_str().unwrap().starts_with("avc1."));
    let mut decoder = H264Decoder::new().unwrap();
    let mut keyframes = vec![];
    let started = Instant::now();
    for n in 0..45u64 {
        let (h, payload) = next_binary(&mut ws).await;
        let BinaryHeader::VideoChunk(h) = h else {
            panic!("{h:?}")
        };
        assert_eq!(h.seq, n, "seq counts from 0 per viewer");
        assert_eq!((h.width, h.height), (W, H));
        assert_eq!(h.bitstream, "annexb");
        assert_eq!(h.duration_us, Some(33333));
        assert!(h.codec.starts_with("avc1.42"), "{}", h.codec);
        if n == 0 {
            assert!(h.keyframe, "first chunk is a keyframe");
            assert!(payload.starts_with(&[0, 0, 0, 1]) || payload.starts_with(&[0, 0, 1]));
        }
        if h.keyframe {
            keyframes.push(n);
        }
        let img = decoder
            .decode(&payload)
            .unwrap()
            .expect("a picture per chunk");
        if n == 0 || n == 44 {
            let rgba = convert::yuv420_to_rgba(&img, ColorSpace::default());
            assert_patches(&rgba, &format!("chunk {n}"));
        }
        ws.send(Message::text(client::ack(h.seq, 0))).await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(secs < 4.0, "45 frames at 30 fps took {secs:.1} s");
    d.close().await;
    keyframes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_transport_sends_jpeg_that_decodes_to_the_test_card() {
    let d = default_display().await;
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG, CAP_PNG], None).await;
    let config = next_json(&mut ws).await;
    assert_eq!(config["transport"], "image");
    assert!(config.get("codec").is_none());
    let (h, payload) = next_binary(&mut ws).await;
    let BinaryHeader::ImageFrame(h) = h else {
        panic!("{h:?}")
    };
    assert_eq!(h.mime, "image/jpeg");
    let mut dec = jpeg_decoder::Decoder::new(&payload[..]);
    let rgb = dec.decode().unwrap();
    let info = dec.info().unwrap();
    assert_eq!((info.width as u32, info.height as u32), (W, H));
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    assert_patches(&rgba, "jpeg");
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn still_after_settle_sends_a_png() {
    let mut cfg = StreamConfig::new(64, 48);
    cfg.still_after = Some(Duration::from_millis(200));
    let d = serve(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        },
        cfg,
    )
    .await
    .unwrap();
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG, CAP_PNG], None).await;
    next_json(&mut ws).await;
    d.publish_with(PixelFormat::Rgba8, 64, 48, |b| b.fill(200))
        .unwrap();
    let (h, _) = next_binary(&mut ws).await;
    ws.send(Message::text(client::ack(h.seq(), 0)))
        .await
        .unwrap();
    let (h, png) = next_binary(&mut ws).await;
    let BinaryHeader::ImageFrame(h) = h else {
        panic!()
    };
    assert_eq!((h.seq, &*h.mime), (1, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_poll_events_in_frame_pixels() {
    let d = default_display().await;
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG], None).await;
    next_json(&mut ws).await;
    let ev = ViewerEvent::PointerDown(PointerEvent {
        x: 100.5,
        y: 42.0,
        inside: true,
        pixel_ratio: 2.0,
        button: 1,
        buttons: vec![1],
        modifiers: vec!["Shift".into()],
        timestamp: 12.5,
    });
    ws.send(Message::text(client::event(&ev))).await.unwrap();
    ws.send(Message::text(client::set_viewport(640.0, 480.0, 1.0)))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), d.next_event())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.event, ev);
    let mut got = vec![];
    let until = Instant::now() + Duration::from_secs(5);
    while got.is_empty() && Instant::now() < until {
        got = d.poll_events();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        matches!(&got[..], [e] if matches!(&e.event, ViewerEvent::Resize(r) if r.width == 640.0)),
        "{got:?}"
    );
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_closes_4401_before_any_frame() {
    let mut cfg = StreamConfig::new(W, H);
    cfg.token = Some("s3cret".into());
    let d = start(cfg, ServerConfig::default()).await;
    let mut bad = hello(&d.ws_url(), &[CAP_JPEG], Some("guess")).await;
    assert_eq!(close_code(&mut bad).await, (4401, "unauthorized".into()));
    let mut none = hello(&d.ws_url(), &[CAP_JPEG], None).await;
    assert_eq!(close_code(&mut none).await.0, 4401);
    let mut good = hello(&d.ws_url(), &[CAP_JPEG], Some("s3cret")).await;
    assert_eq!(next_json(&mut good).await["type"], "config");
    let mut query = hello(&format!("{}?token=s3cret", d.ws_url()), &[CAP_JPEG], None).await;
    assert_eq!(next_json(&mut query).await["type"], "config");
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stream_closes_4404() {
    let d = default_display().await;
    let url = format!("ws://{}/nope", d.local_addr());
    let mut ws = hello(&url, &[CAP_JPEG], None).await;
    assert_eq!(
        close_code(&mut ws).await,
        (4404, "unknown stream 'nope'".into())
    );
    // No common transport: 1003.
    let mut ws = hello(&d.ws_url(), &["image/webp"], None).await;
    assert_eq!(
        close_code(&mut ws).await,
        (1003, "no supported transport".into())
    );
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_closes_that_viewer_only() {
    let d = default_display().await;
    let mut a = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    let mut b = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    next_json(&mut a).await;
    next_json(&mut b).await;
    a.send(Message::text("{\"type\": \"ack\", \"seq\": \"zero\"}"))
        .await
        .unwrap();
    assert_eq!(close_code_after(&mut a, true).await.0, 1008);
    // An oversized message closes too (1009).
    let mut c = hello(&d.ws_url(), &[CAP_JPEG], None).await;
    next_json(&mut c).await;
    let _ = c.send(Message::text("x".repeat(200_000))).await;
    // The server keeps the socket open after its close frame, so no reset hides the code.
    assert_eq!(close_code_after(&mut c, true).await.0, 1009);
    for _ in 0..10 {
        let (h, _) = next_binary(&mut b).await;
        b.send(Message::text(client::ack(h.seq(), 0)))
            .await
            .unwrap();
    }
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_viewer_does_not_stall_another() {
    let d = default_display().await;
    let mut stalled = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    // The stalled viewer reads its config and nothing more, and never acks.
    next_json(&mut stalled).await;
    let mut live = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    next_json(&mut live).await;
    let start = Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let (h, _) = next_binary(&mut live).await;
        live.send(Message::text(client::ack(h.seq(), 0)))
            .await
            .unwrap();
        frames += 1;
    }
    assert!(
        frames >= 60,
        "live viewer got {frames} frames in 3 s at 30 fps"
    );
    let m = d.metrics().await.unwrap();
    assert_eq!(m.groups.len(), 1, "both share one encoder");
    let stalled_m = m.viewers.iter().find(|v| v.frames_acked == 0).unwrap();
    assert!(stalled_m.frames_sent <= 6, "{stalled_m:?}");
    assert!(stalled_m.backstops >= 1);
    drop(stalled);
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints() {
    let d = start(
        StreamConfig::new(W, H),
        ServerConfig {
            remote_control: true,
            ..ServerConfig::default()
        },
    )
    .await;
    let addr = d.local_addr();
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    next_json(&mut ws).await;
    for _ in 0..3 {
        let (h, _) = next_binary(&mut ws).await;
        ws.send(Message::text(client::ack(h.seq(), 0)))
            .await
            .unwrap();
    }
    let (status, body) = get(addr, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );
    let (_, body) = get(addr, "/streams").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["name"], "default");
    assert_eq!(
        (v[0]["width"].as_u64(), v[0]["clients"].as_u64()),
        (Some(W as u64), Some(1))
    );
    let (status, body) = get(addr, "/streams/default/metrics").await;
    assert_eq!(status, 200);
    let m: Value = serde_json::from_str(&body).unwrap();
    assert!(m["frames_published"].as_u64().unwrap() >= 3, "{m}");
    assert!(
        m["viewers"][0]["frames_acked"].as_u64().unwrap() >= 2, // the last ack may be in flight
        "{m}"
    );
    assert!(m["groups"][0]["encode_ms"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(get(addr, "/streams/nope/metrics").await.0, 404);
    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<"), "{page}");
    assert_eq!(get(addr, "/viewer/does-not-exist.js").await.0, 404);
    // Live control: switch to images.
    let (status, body) = get(addr, "/control").await;
    assert_eq!(status, 200, "{body}");
    let body_json = r#"{"transport":"image","bitrate":2000000,"scene":"plasma"}"#;
    let (status, body) = http(
        addr,
        &format!(
            "POST /control HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body_json}",
            body_json.len()
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (state["transport"].as_str(), state["bitrate"].as_u64()),
        (Some("image"), Some(2_000_000))
    );
    assert_eq!(d.poll_control()[0]["scene"], "plasma");
    let config = next_json(&mut ws).await;
    assert_eq!(config["transport"], "image", "{config}");
    let (h, _) = next_binary(&mut ws).await;
    assert!(matches!(h, BinaryHeader::ImageFrame(_)), "{h:?}");
    let bad = r#"{"transport":"carrier-pigeon"}"#;
    let (status, _) = http(
        addr,
        &format!("POST /control HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{bad}", bad.len()),
    )
    .await;
    assert_eq!(status, 400);
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_is_refused() {
    let d = default_display().await;
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(d.ws_url())
            .unwrap();
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    d.close().await;
}

/// `GET <path>` as JSON `{timestamp_us, unix_us}`.
async fn clock_of(addr: std::net::SocketAddr, path: &str) -> (u64, u64) {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let v = if v.get("clock").is_some() {
        &v["clock"]
    } else {
        &v
    };
    (
        v["timestamp_us"].as_u64().unwrap(),
        v["unix_us"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_pair_is_monotonic_and_consistent() {
    let d = default_display().await;
    let addr = d.local_addr();
    let mut pairs = vec![d.clock()];
    for path in [
        "/time",
        "/streams/default/time",
        "/streams/default/metrics",
        "/time",
    ] {
        pairs.push(clock_of(addr, path).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pairs.push(d.clock());
    for w in pairs.windows(2) {
        let ((t0, u0), (t1, u1)) = (w[0], w[1]);
        assert!(t1 > t0, "stream clock advances: {pairs:?}");
        // Both clocks advance together: the mapping unix - stream is stable to a few ms.
        let offset = |t: u64, u: u64| u as i64 - t as i64;
        let drift = (offset(t1, u1) - offset(t0, u0)).abs();
        assert!(drift < 5_000, "offset drifted {drift} µs: {pairs:?}");
        assert!(u1 >= u0);
    }
    assert_eq!(get(addr, "/streams/nope/time").await.0, 404);
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_timestamp_is_the_publish_time() {
    let d = serve(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        },
        StreamConfig::new(W, H),
    )
    .await
    .unwrap();
    let mut video = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    let mut image = hello(&d.ws_url(), &[CAP_JPEG, CAP_PNG], None).await;
    let config = next_json(&mut video).await;
    assert_eq!(
        (config["transport"].as_str(), config["backend"].as_str()),
        (Some("webcodecs"), Some("openh264")),
        "{config}"
    );
    let config = next_json(&mut image).await;
    assert_eq!(
        (config["transport"].as_str(), config["backend"].as_str()),
        (Some("image"), Some("jpeg")),
        "{config}"
    );
    let mut last = None;
    for i in 0..10u64 {
        let before = d.clock().0;
        d.publish_with(PixelFormat::Rgba8, W, H, |rgba| {
            render_into(PatternKind::TestCard, i, W, H, rgba).unwrap();
        })
        .unwrap();
        let after = d.clock().0;
        // Let the encoders and the socket take a while: the header must not move with them.
        tokio::time::sleep(Duration::from_millis(30)).await;
        for ws in [&mut video, &mut image] {
            let (h, _) = next_binary(ws).await;
            let received = d.clock().0;
            let ts = match &h {
                BinaryHeader::VideoChunk(h) => h.timestamp_us,
                BinaryHeader::ImageFrame(h) => h.timestamp_us,
            };
            assert!(
                (before..=after).contains(&ts),
                "frame {i}: timestamp {ts} outside publish [{before}, {after}]"
            );
            assert!(ts <= received, "frame {i}: {ts} after receipt {received}");
            ws.send(Message::text(client::ack(h.seq(), 0)))
                .await
                .unwrap();
        }
        assert!(last.is_none_or(|l| l < before));
        last = Some(after);
    }
    d.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_timestamps_precede_receipt_under_load() {
    let d = default_display().await;
    let mut ws = hello(&d.ws_url(), &[CAP_JPEG, CAP_H264_ANNEXB], None).await;
    next_json(&mut ws).await;
    let mut prev = 0;
    for _ in 0..30 {
        let (h, _) = next_binary(&mut ws).await;
        let received = d.clock().0;
        let ts = match &h {
            BinaryHeader::VideoChunk(h) => h.timestamp_us,
            BinaryHeader::ImageFrame(h) => h.timestamp_us,
        };
        assert!(ts <= received && ts > prev, "{prev} < {ts} <= {received}");
        assert!(received - ts < 2_000_000, "{ts} vs {received}");
        prev = ts;
        ws.send(Message::text(client::ack(h.seq(), 0)))
            .await
            .unwrap();
    }
    d.close().await;
}

/// Send `hello` and a burst of further messages without reading anything.
async fn hello_and_chatter(url: &str, caps: &[&str], token: Option<&str>) -> Ws {
    let mut ws = hello(url, caps, token).await;
    for i in 0..200u64 {
        let m = match i % 3 {
            0 => client::set_viewport(640.0, 480.0, 1.0),
            1 => client::ack(i, 0),
            _ => client::event(&ViewerEvent::PointerMove(PointerEvent {
                x: i as f64,
                y: 1.0,
                inside: true,
                pixel_ratio: 1.0,
                button: 0,
                buttons: vec![],
                modifiers: vec![],
                timestamp: 0.0,
            })),
        };
        if ws.send(Message::text(m)).await.is_err() {
            break;
        }
    }
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes_survive_a_chatty_client() {
    let mut cfg = StreamConfig::new(W, H);
    cfg.token = Some("s3cret".into());
    let d = start(cfg, ServerConfig::default()).await;
    let nope = format!("ws://{}/nope", d.local_addr());
    for round in 0..10 {
        let mut ws = hello_and_chatter(&nope, &[CAP_JPEG], None).await;
        assert_eq!(close_code(&mut ws).await.0, 4404, "round {round}");
        let mut ws = hello_and_chatter(&d.ws_url(), &[CAP_JPEG], Some("guess")).await;
        assert_eq!(close_code(&mut ws).await.0, 4401, "round {round}");
        let mut ws = hello_and_chatter(&d.ws_url(), &["image/webp"], Some("s3cret")).await;
        assert_eq!(close_code(&mut ws).await.0, 1003, "round {round}");
    }
    // A malformed message in the middle of a burst: 1008, frames may come first.
    for round in 0..3 {
        let mut ws = hello(&d.ws_url(), &[CAP_JPEG], Some("s3cret")).await;
        ws.send(Message::text("{\"type\": \"ack\", \"seq\": \"zero\"}"))
            .await
            .unwrap();
        for i in 0..200 {
            if ws.send(Message::text(client::ack(i, 0))).await.is_err() {
                break;
            }
        }
        assert_eq!(
            close_code_after(&mut ws, true).await.0,
            1008,
            "round {round}"
        );
    }
    d.close().await;
}

/// A client frame: FIN, `opcode`, masked with a zero key (RFC 6455 allows any key).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A raw-TCP WebSocket client that writes the upgrade request, `texts` and more in one go
/// (as a viewer does: `hello`, `set_viewport`, events), waits, reads the server's close frame,
/// keeps talking a little (a viewer that has not read the close yet), answers the close and
/// reads to the end of the stream. Returns the close code and whether everything after the
/// close frame went through without a connection reset (a reset makes browsers report 1006
/// instead of the code).
async fn raw_close(addr: std::net::SocketAddr, path: &str, texts: &[String]) -> (u16, bool) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    for t in texts {
        out.extend(client_frame(0x1, t.as_bytes()));
    }
    s.write_all(&out).await.unwrap();
    // The server decides and sends its close meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let code = 'outer: loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("a close frame within 5 s")
            .expect("read");
        assert!(n > 0, "end of stream before a close frame");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        assert!(
            buf.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        // Server frames are unmasked; skip any before the close frame.
        let mut i = end + 4;
        while i + 2 <= buf.len() {
            let (op, len7) = (buf[i] & 0x0f, (buf[i + 1] & 0x7f) as usize);
            let (len, hdr) = match len7 {
                126 if i + 4 <= buf.len() => {
                    (u16::from_be_bytes([buf[i + 2], buf[i + 3]]) as usize, 4)
                }
                127 if i + 10 <= buf.len() => (
                    u64::from_be_bytes(buf[i + 2..i + 10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n, 2),
            };
            if i + hdr + len > buf.len() {
                break;
            }
            if op == 0x8 {
                let p = &buf[i + hdr..i + hdr + len];
                break 'outer u16::from_be_bytes([p[0], p[1]]);
            }
            i += hdr + len;
        }
    };
    // Still talking: a closed-and-gone server answers these with a reset.
    let mut ok = true;
    for seq in 0..3 {
        let ack = client_frame(0x1, client::ack(seq, 0).as_bytes());
        ok &= s.write_all(&ack).await.is_ok();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Answer the close, as a browser does, and wait for the server to end the stream.
    ok &= s
        .write_all(&client_frame(0x8, &code.to_be_bytes()))
        .await
        .is_ok();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Err(_) => panic!("no end of stream within 5 s after the close handshake"),
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                ok = false;
                break;
            }
        }
    }
    (code, ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_end_with_a_close_handshake_not_a_reset() {
    let mut cfg = StreamConfig::new(W, H);
    cfg.token = Some("s3cret".into());
    let d = start(cfg, ServerConfig::default()).await;
    let addr = d.local_addr();
    // More than the HTTP layer reads ahead with the upgrade request (a few KiB).
    let chatter: Vec<String> = (0..4000).map(|i| client::ack(i, 0)).collect();
    let with = |hello: String| -> Vec<String> {
        std::iter::once(hello)
            .chain(chatter.iter().cloned())
            .collect()
    };
    let cases = [
        ("/nope", with(client::hello(&[CAP_JPEG], None)), 4404),
        ("/", with(client::hello(&[CAP_JPEG], Some("guess"))), 4401),
        (
            "/",
            with(client::hello(&["image/webp"], Some("s3cret"))),
            1003,
        ),
        ("/", with(r#"{"type":"ack"}"#.into()), 1008),
        (
            "/",
            std::iter::once(client::hello(&[CAP_JPEG], Some("s3cret")))
                .chain(std::iter::once(r#"{"type":"ack","seq":"zero"}"#.into()))
                .chain(chatter.iter().cloned())
                .collect(),
            1008,
        ),
    ];
    for (path, texts, want) in &cases {
        let (code, clean) = raw_close(addr, path, texts).await;
        assert_eq!(code, *want, "{path} {}", texts[0]);
        assert!(
            clean,
            "{path} {want}: the server reset the connection instead of closing it"
        );
    }
    d.close().await;
}

/// Recovery without a keyframe, end to end: two viewers share one encoder; B stops acking
/// for 300 ms, so the server leaves it behind (it misses frames and loses sync). When B acks
/// again it is brought back by a recovery P-frame, not an IDR: B's decoder, which never saw
/// the frames it missed, decodes the frames from then on to the same pixels as A's, which
/// saw everything, and the group encoded no keyframe besides the two joins'. (Congestion
/// control may later move B to a lower tier, which starts with a keyframe of that tier's
/// bitstream; the comparison stops there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_missed_frames_recovers_without_a_keyframe() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    let d = default_display().await;
    let caps = [CAP_JPEG, CAP_H264_ANNEXB];
    let mut a = hello(&d.ws_url(), &caps, None).await;
    next_json(&mut a).await;
    let mut b = hello(&d.ws_url(), &caps, None).await;
    next_json(&mut b).await;
    // A: acks and decodes everything, keeping each picture by its frame timestamp.
    let seen_a: Arc<Mutex<BTreeMap<u64, framecast_core::Yuv420Image>>> = Arc::default();
    let keep = seen_a.clone();
    let viewer_a = tokio::spawn(async move {
        let mut dec = H264Decoder::new().unwrap();
        loop {
            let Ok(Some(Ok(msg))) = tokio::time::timeout(
                Duration::from_secs(2),
                futures_util::StreamExt::next(&mut a),
            )
            .await
            else {
                break;
            };
            let Message::Binary(data) = msg else { continue };
            let (h, payload) = framecast_stream::protocol::decode_envelope(&data).unwrap();
            let BinaryHeader::VideoChunk(h) = h else {
                continue;
            };
            if let Some(img) = dec.decode(payload).unwrap() {
                keep.lock().unwrap().insert(h.timestamp_us, img);
            }
            if a.send(Message::text(client::ack(h.seq, 0))).await.is_err() {
                break;
            }
        }
    });
    let mut dec = H264Decoder::new().unwrap();
    let mut recovered_at = None;
    let mut b_pictures = Vec::new();
    let start = Instant::now();
    let stall = Duration::from_millis(1200)..Duration::from_millis(1500);
    // B displays late: what arrives during the stall is acked when it ends.
    let mut unacked = None;
    while start.elapsed() < Duration::from_secs(3) {
        if !stall.contains(&start.elapsed()) {
            if let Some(seq) = unacked.take() {
                b.send(Message::text(client::ack(seq, 0))).await.unwrap();
            }
        }
        let Ok(msg) = tokio::time::timeout(Duration::from_millis(20), next_binary(&mut b)).await
        else {
            continue;
        };
        let (h, payload) = msg;
        let BinaryHeader::VideoChunk(h) = h else {
            panic!("{h:?}")
        };
        let img = dec.decode(&payload).unwrap();
        if start.elapsed() > stall.end && recovered_at.is_none() {
            recovered_at = Some(h.timestamp_us);
        }
        if recovered_at.is_some() {
            let img = img.expect("a picture per chunk after recovery");
            b_pictures.push((h.timestamp_us, (h.keyframe, img)));
        }
        unacked = Some(h.seq);
    }
    let m = d.metrics().await.unwrap();
    drop(b);
    d.close().await;
    let _ = viewer_a.await;
    let vb = m
        .viewers
        .iter()
        .find(|v| v.recoveries > 0)
        .expect("B lost sync");
    let first = m
        .groups
        .iter()
        .find(|g| g.id == 1)
        .expect("the first group");
    // One IDR per join (one for both when B joined before the first encode).
    assert!(
        first.keyframes_encoded <= 2,
        "only the joins' IDRs: {first:?}"
    );
    assert!(first.recovery_frames >= 1, "{first:?}");
    assert!(vb.recovered_without_keyframe >= 1, "{vb:?}");
    let (_, (after_key, _)) = b_pictures.first().expect("B got frames after the stall");
    assert!(
        !after_key,
        "B's first chunk after the stall is a recovery P-frame, not an IDR"
    );
    // Up to a tier move's keyframe, if congestion control makes one.
    let b_pictures: Vec<_> = b_pictures
        .iter()
        .enumerate()
        .take_while(|(i, (_, (key, _)))| *i == 0 || !key)
        .map(|(_, p)| p)
        .collect();
    let seen_a = seen_a.lock().unwrap();
    let mut compared = 0;
    for (ts, (_, img)) in &b_pictures {
        if let Some(ai) = seen_a.get(ts) {
            assert!(ai == img, "frame {ts}: B's picture differs from A's");
            compared += 1;
        }
    }
    assert!(compared >= 15, "compared {compared} pictures");
    let (_, (_, last)) = b_pictures.last().unwrap();
    assert_patches(
        &convert::yuv420_to_rgba(last, ColorSpace::default()),
        "B after recovery",
    );
}
