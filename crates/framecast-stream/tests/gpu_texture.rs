//! `Display::publish_texture`: a texture on the application's own wgpu device reaches a viewer
//! through the GPU conversion and the non-blocking readback ring, and decodes to the test
//! card. Runs on whatever adapter the machine has (lavapipe in CI: `./scripts/test.sh`
//! installs mesa-vulkan-drivers).
#![cfg(feature = "gpu")]

use framecast_core::{convert, ColorSpace};
use framecast_encode::decode::H264Decoder;
use framecast_gpu::GpuConverter;
use framecast_io::{render_into, PatternKind};
use framecast_stream::protocol::{client, BinaryHeader, CAP_H264_ANNEXB};
use framecast_stream::{serve, ServerConfig, StreamConfig};
use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::*;

fn card_texture(device: &wgpu::Device, queue: &wgpu::Queue, frame: u64) -> wgpu::Texture {
    let mut rgba = vec![0u8; (W * H * 4) as usize];
    render_into(PatternKind::TestCard, frame, W, H, &mut rgba).unwrap();
    let texture = framecast_gpu::texture_2d(
        device,
        Some("app frame"),
        (W, H),
        wgpu::TextureFormat::Rgba8Unorm,
        wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
    );
    framecast_gpu::write_texture(queue, &texture, &rgba, W * 4);
    texture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_texture_reaches_a_viewer_and_decodes_to_the_card() {
    let (device, queue, info) = framecast_gpu::open_device().unwrap_or_else(|e| {
        panic!("{e}\nThe GPU tests need a Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1")
    });
    eprintln!("adapter: {} ({:?})", info.name, info.backend);
    let mut stream = StreamConfig::new(W, H);
    stream.fps = 30.0;
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let display = serve(server, stream).await.unwrap();
    let texture = card_texture(&device, &queue, 0);
    let mut ring = display.texture_ring(GpuConverter::with_device(device, queue, info));
    // Publish from a render thread, as an application would.
    let d = display.clone();
    let publisher = std::thread::spawn(move || {
        let mut published = 0u64;
        while !d.is_closed() && published < 600 {
            if d.publish_texture(&mut ring, &texture).is_err() {
                break;
            }
            published += 1;
            std::thread::sleep(Duration::from_millis(33));
        }
        // Frames still in the ring at the close fail to publish: that is reported, not lost.
        let _ = ring.flush();
        published
    });
    let mut ws = hello(&display.ws_url(), &[CAP_H264_ANNEXB], None).await;
    let config = next_json(&mut ws).await;
    assert_eq!(config["transport"], "webcodecs");
    let mut decoder = H264Decoder::new().unwrap();
    for n in 0..10u64 {
        let (h, payload) = next_binary(&mut ws).await;
        let BinaryHeader::VideoChunk(h) = h else {
            panic!("{h:?}")
        };
        assert_eq!((h.seq, h.width, h.height), (n, W, H));
        let img = decoder
            .decode(&payload)
            .unwrap()
            .expect("a picture per chunk");
        let rgba = convert::yuv420_to_rgba(&img, ColorSpace::default());
        assert_patches(&rgba, &format!("chunk {n}"));
        ws.send(Message::text(client::ack(h.seq, 0))).await.unwrap();
    }
    let before = display.frames_published();
    display.close().await;
    let published = publisher.join().unwrap();
    assert!(
        before >= 10 && before <= published,
        "{before} of {published}"
    );
}
