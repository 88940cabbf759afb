//! framecast publishes to one `moq-relay`; a subscriber on a second relay, clustered with
//! the first on loopback, reads the catalog and decodes the test card. A relay that dies
//! and comes back on the same port gets the broadcast again.

mod common;

use common::*;
use framecast_core::{convert, ColorSpace};
use framecast_encode::decode::H264Decoder;
use framecast_io::test_card_mismatch;
use framecast_moq::{MoqOptions, MoqPublisher, MoqTarget, PublishState};
use std::time::Duration;

fn assert_patches(rgba: &[u8], what: &str) {
    if let Some(m) = test_card_mismatch(rgba, W, H, 4, 8) {
        panic!("{what}: {m}");
    }
}

fn options(fingerprint: &str) -> MoqOptions {
    MoqOptions {
        fingerprints: vec![fingerprint.to_string()],
        backoff_max: Duration::from_secs(1),
        ..MoqOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_the_second_relay_decodes_the_test_card() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let Some(bin) = relay_binary() else { return };
    let first = Relay::start(&bin, None).await;
    let second = Relay::start(&bin, Some(&first)).await;
    let display = test_card_display(W, H, 30.0).await;
    let target: MoqTarget = first.url("card").parse().unwrap();
    let publisher = MoqPublisher::start(&display, target, options(&first.fingerprint))
        .await
        .unwrap();
    assert_eq!(
        publisher.state().wait_for(PublishState::Connected).await,
        PublishState::Connected
    );

    let mut watching = watch(&second.url(""), &second.fingerprint, "card").await;
    let config = &watching.catalog.video.renditions[framecast_moq::VIDEO_TRACK];
    let codec = config.codec.to_string();
    assert!(
        codec.starts_with("avc3.") || codec.starts_with("avc1."),
        "{codec}"
    );
    assert_eq!(
        (config.coded_width, config.coded_height),
        (Some(W), Some(H))
    );

    let mut decoder = H264Decoder::new().unwrap();
    let mut last_ts = None;
    for n in 0..45 {
        let frame = tokio::time::timeout(Duration::from_secs(10), watching.video.read())
            .await
            .expect("a frame within 10 s")
            .expect("the track reads")
            .expect("the track goes on");
        if n == 0 {
            assert!(frame.keyframe, "a subscriber starts at a keyframe");
        }
        let ts = frame.timestamp.as_micros();
        assert!(
            last_ts < Some(ts),
            "timestamps increase: {last_ts:?} then {ts}"
        );
        last_ts = Some(ts);
        let img = decoder
            .decode(&frame.payload)
            .unwrap()
            .expect("a picture per frame");
        if n == 0 || n == 44 {
            assert_patches(
                &convert::yuv420_to_rgba(&img, ColorSpace::default()),
                &format!("frame {n} through two relays"),
            );
        }
    }
    assert!(publisher.stats().frames() >= 45);
    publisher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_relay_is_redialled_and_gets_the_broadcast_back() {
    let Some(bin) = relay_binary() else { return };
    let mut relay = Relay::start(&bin, None).await;
    let display = test_card_display(W, H, 30.0).await;
    // The relay comes back with a new self-signed certificate: this test is about the
    // redial, so it accepts any certificate.
    let opts = MoqOptions {
        insecure: true,
        fingerprints: vec![],
        ..options(&relay.fingerprint)
    };
    let publisher = MoqPublisher::start(&display, relay.url("again").parse().unwrap(), opts)
        .await
        .unwrap();
    assert_eq!(
        publisher.state().wait_for(PublishState::Connected).await,
        PublishState::Connected
    );
    let port = relay.port;
    relay.kill();
    assert_eq!(
        publisher.state().wait_for(PublishState::Disconnected).await,
        PublishState::Disconnected
    );
    // The local stream goes on while the relay is away, and so does the tap.
    let (frames, published) = (publisher.stats().frames(), display.frames_published());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(display.frames_published() > published + 10);
    assert!(publisher.stats().frames() > frames + 10);
    let relay = Relay::start_on(&bin, port, None).await;
    assert_eq!(
        publisher.state().wait_for(PublishState::Connected).await,
        PublishState::Connected
    );
    // Connecting, connected, disconnected, connected: each change once.
    assert_eq!(publisher.state().change_count(), 4);
    let mut watching = watch(&relay.url(""), &relay.fingerprint, "again").await;
    let frame = tokio::time::timeout(Duration::from_secs(10), watching.video.read())
        .await
        .expect("a frame within 10 s")
        .unwrap()
        .unwrap();
    assert!(frame.keyframe, "the broadcast resumes at a keyframe");
    publisher.stop().await;
}
