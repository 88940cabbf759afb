// Decodes with OpenH264.
#![cfg(feature = "openh264")]
//! `Display::tap`: the stream's encoded H.264 in process. It decodes to the test card, shares
//! the local viewers' encoder, asks for IDRs at its interval, and a tap that stops reading
//! never holds back a local viewer.

mod common;

use common::*;
use framecast_core::{convert, ColorSpace};
use framecast_encode::decode::H264Decoder;
use framecast_stream::protocol::{client, BinaryHeader, CAP_H264_ANNEXB};
use framecast_stream::TapOptions;
use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_decodes_to_the_test_card_and_gets_keyframes_at_its_interval() {
    let d = default_display().await;
    let mut tap = d
        .tap(TapOptions {
            keyframe_interval: Some(Duration::from_millis(500)),
            ..TapOptions::default()
        })
        .await
        .unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut keyframes = Vec::new();
    let mut last_ts = None;
    for n in 0..60 {
        let f = tokio::time::timeout(Duration::from_secs(5), tap.recv())
            .await
            .expect("a frame within 5 s")
            .expect("the stream is open");
        assert_eq!((f.width, f.height), (W, H));
        assert!(f.codec.starts_with("avc1."), "{}", f.codec);
        if n == 0 {
            assert!(f.keyframe, "the first access unit is an IDR");
        }
        if f.keyframe {
            keyframes.push(n);
        }
        assert!(last_ts < Some(f.timestamp_us), "timestamps increase");
        last_ts = Some(f.timestamp_us);
        let img = dec
            .decode(&f.data)
            .unwrap()
            .expect("a picture per access unit");
        if n == 0 || n == 59 {
            assert_patches(
                &convert::yuv420_to_rgba(&img, ColorSpace::default()),
                &format!("tapped frame {n}"),
            );
        }
    }
    // 60 frames at 30 fps are two seconds: the join's IDR and at least two asked for.
    assert!(keyframes.len() >= 3, "keyframes at {keyframes:?}");
    let m = d.metrics().await.unwrap();
    let v = m
        .viewers
        .iter()
        .find(|v| v.id == tap.viewer_id())
        .expect("the tap is a viewer of the stream");
    assert!(
        v.frames_acked >= 59,
        "the tap acknowledges what it takes: {v:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_shares_the_viewers_encoder_and_a_stalled_tap_does_not_hold_them_back() {
    let d = default_display().await;
    let mut ws = hello(&d.ws_url(), &[CAP_H264_ANNEXB], None).await;
    let _config = next_json(&mut ws).await;
    // A tap that is never read.
    let tap = d
        .tap(TapOptions {
            queue: 2,
            ..TapOptions::default()
        })
        .await
        .unwrap();
    // The WebSocket viewer acknowledges everything and keeps receiving long after the tap's
    // queue of two is full (were it held back, `next_binary` would time out).
    let mut dec = H264Decoder::new().unwrap();
    let mut got = 0;
    while got < 60 {
        let (h, payload) = next_binary(&mut ws).await;
        let BinaryHeader::VideoChunk(h) = h else {
            panic!("{h:?}")
        };
        ws.send(Message::text(client::ack(h.seq, 0))).await.unwrap();
        dec.decode(&payload).unwrap();
        got += 1;
    }
    let m = d.metrics().await.unwrap();
    assert_eq!(
        m.groups.len(),
        1,
        "one encoder for the viewer and the tap: {m:?}"
    );
    let tv = m.viewers.iter().find(|v| v.id == tap.viewer_id()).unwrap();
    assert!(
        tv.frames_dropped > 0,
        "the stalled tap missed frames: {tv:?}"
    );
    drop(tap);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        d.metrics().await.unwrap().viewers.len(),
        1,
        "a dropped tap leaves"
    );
}
