//! `framecast serve --publish-moq`: the CLI publishes to one `moq-relay`; a subscriber on a
//! second, clustered relay decodes the test card. Uses the relay harness of framecast-moq's
//! own tests.
#![cfg(feature = "moq")]

#[path = "../../framecast-moq/tests/common/mod.rs"]
mod moq;

use framecast_core::{convert, ColorSpace};
use framecast_encode::decode::H264Decoder;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_to_a_relay_cluster() {
    let Some(bin) = moq::relay_binary() else {
        return;
    };
    let first = moq::Relay::start(&bin, None).await;
    let second = moq::Relay::start(&bin, Some(&first)).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["serve", "--pattern", "testcard", "--size", "320x240"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--publish-moq",
            &first.url("lab"),
        ])
        .args(["--moq-fingerprint", &first.fingerprint])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("framecast runs");
    let stderr = child.stderr.take().unwrap();
    let states = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("MoQ relay"))
            .take(2)
            .collect::<Vec<_>>()
    });
    let mut watching = moq::watch(&second.url(""), &second.fingerprint, "lab").await;
    let rendition = &watching.catalog.video.renditions[framecast_moq::VIDEO_TRACK];
    assert_eq!(
        (rendition.coded_width, rendition.coded_height),
        (Some(320), Some(240))
    );
    let mut decoder = H264Decoder::new().unwrap();
    let mut last = None;
    for _ in 0..10 {
        let frame = tokio::time::timeout(Duration::from_secs(10), watching.video.read())
            .await
            .expect("a frame within 10 s")
            .unwrap()
            .unwrap();
        last = decoder.decode(&frame.payload).unwrap();
    }
    let rgba = convert::yuv420_to_rgba(&last.expect("pictures"), ColorSpace::default());
    if let Some(m) = framecast_io::test_card_mismatch(&rgba, 320, 240, 4, 8) {
        panic!("through two relays: {m}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines = states.join().unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("/lab: connecting"), "{lines:?}");
    assert!(lines[1].ends_with("/lab: connected"), "{lines:?}");
}
