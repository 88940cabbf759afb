// Encodes and decodes with OpenH264.
#![cfg(feature = "openh264")]
//! Client ↔ server on loopback: encode (NV12 and BGRA, every wire compression), decode and
//! transcode, checked with ffmpeg and against local framecast encode/decode of the same frames.

mod common;

use bytes::Bytes;
use common::*;
use framecast_encode::decode::H264Decoder;
use framecast_h264::avcc::AvcDecoderConfig;
use framecast_h264::nal::{annexb_nals, nal_type, NalType};
use framecast_remote::client::{run_stream, Credit};
use framecast_remote::wire::{pix_fmt, Configure, FrameMsg, Message, PacketMsg, Plane};
use framecast_remote::{compress, Compression, RemoteError};
use tokio::sync::mpsc;

const W: u32 = 320;
const H: u32 = 240;

async fn remote_encode(
    addr: std::net::SocketAddr,
    frames: &[(Vec<u8>, Vec<u8>)],
    c: Compression,
    gop: u32,
) -> (Bytes, Vec<PacketMsg>) {
    let mut client = connect(addr).await;
    let wc = c.wire_value().to_string();
    let g = gop.to_string();
    let ack = client
        .configure(encode_configure(
            W,
            H,
            pix_fmt::NV12,
            &[
                ("mode", "encode"),
                ("wire_compression", &wc),
                ("gop", &g),
                ("bitrate", "1500000"),
            ],
        ))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let msgs: Vec<Message> = frames
        .iter()
        .enumerate()
        .map(|(i, (y, uv))| nv12_msg(W, y, uv, i as i64, c))
        .collect();
    tokio::spawn(async move {
        for m in msgs {
            tx.send(m).await.unwrap();
        }
    });
    let mut packets = Vec::new();
    let stats = run_stream(client, rx, 3, Credit::PerOutput, |m| {
        if let Message::Packet(p) = m {
            packets.push(p);
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .unwrap();
    assert_eq!(stats.inputs, frames.len() as u64);
    assert_eq!(stats.outputs, frames.len() as u64);
    (ack.extradata, packets)
}

fn check_stream(avcc: &[u8], packets: &[PacketMsg], n: usize, gop: usize) {
    assert_eq!(packets.len(), n);
    // CONFIGURE_ACK's avcC carries exactly the SPS/PPS the stream uses.
    let rec = AvcDecoderConfig::parse(avcc).expect("CONFIGURE_ACK extradata is an avcC");
    let first: Vec<&[u8]> = annexb_nals(&packets[0].data).collect();
    let sps = first
        .iter()
        .find(|n| nal_type(n) == Some(NalType::Sps))
        .expect("SPS in the first packet");
    let pps = first
        .iter()
        .find(|n| nal_type(n) == Some(NalType::Pps))
        .expect("PPS");
    assert_eq!(rec.sps[0], *sps);
    assert_eq!(rec.pps[0], *pps);
    let mut last_dts = i64::MIN;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, i as i64, "pts carried through");
        assert!(p.dts <= p.pts, "DTS ≤ PTS");
        assert!(p.dts > last_dts, "DTS strictly increasing");
        last_dts = p.dts;
        assert_eq!(p.is_keyframe(), i % gop == 0, "keyframe cadence at {i}");
        assert!(p.data.starts_with(&[0, 0, 0, 1]), "Annex B");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encode_nv12_every_compression_gives_identical_streams() {
    let addr = start(config()).await;
    let frames = nv12_frames(W, H, 12);
    let mut streams = Vec::new();
    for &c in Compression::ALL {
        let (avcc, packets) = remote_encode(addr, &frames, c, 5).await;
        check_stream(&avcc, &packets, 12, 5);
        let all: Vec<u8> = packets.iter().flat_map(|p| p.data.to_vec()).collect();
        streams.push(all);
    }
    assert_eq!(streams[0], streams[1], "lz4 planes encode like raw ones");
    assert_eq!(streams[0], streams[2], "zstd planes encode like raw ones");
    if have_ffmpeg() {
        let rgb = ffmpeg_decode_rgb(&streams[0], W, H);
        assert_eq!(rgb.len(), 12, "ffmpeg decodes every frame");
        check_patches(rgb.last().unwrap(), W, H, 6);
    } else {
        panic!("ffmpeg is required (apt-get install ffmpeg)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encode_bgra_is_converted_by_the_server() {
    let addr = start(config()).await;
    let mut client = connect(addr).await;
    assert!(client.hello_ack().has("pixfmt.bgra"));
    client
        .configure(encode_configure(
            W,
            H,
            pix_fmt::BGRA,
            &[("wire_compression", "1")],
        ))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let frames = bgra_frames(W, H, 4);
    tokio::spawn(async move {
        for (i, f) in frames.into_iter().enumerate() {
            let m = Message::Frame(FrameMsg {
                pts: i as i64,
                duration: 1,
                flags: 0,
                planes: vec![Plane {
                    stride: W * 4,
                    height: H,
                    data: compress::compress_plane(Compression::Lz4, 0, &f).unwrap(),
                }],
                side_data: vec![],
            });
            tx.send(m).await.unwrap();
        }
    });
    let mut stream = Vec::new();
    run_stream(client, rx, 2, Credit::PerOutput, |m| {
        if let Message::Packet(p) = m {
            stream.extend_from_slice(&p.data);
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .unwrap();
    let rgb = ffmpeg_decode_rgb(&stream, W, H);
    assert_eq!(rgb.len(), 4);
    check_patches(&rgb[3], W, H, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_pts_is_dropped_and_forced_keyframes_land() {
    let addr = start(config()).await;
    let mut client = connect(addr).await;
    client
        .configure(encode_configure(W, H, pix_fmt::NV12, &[("gop", "0")]))
        .await
        .unwrap();
    let frames = nv12_frames(W, H, 5);
    let pts = [0i64, 1, 1, 2, 3];
    for (i, (y, uv)) in frames.iter().enumerate() {
        let mut m = nv12_msg(W, y, uv, pts[i], Compression::None);
        if let Message::Frame(f) = &mut m {
            f.flags = u32::from(i == 3);
        }
        client.send(&m).await.unwrap();
    }
    client.send(&Message::Flush).await.unwrap();
    let mut got = Vec::new();
    loop {
        match client.recv().await.unwrap() {
            Message::Packet(p) => got.push((p.pts, p.dts, p.is_keyframe())),
            Message::Done => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![(0, 0, true), (1, 1, false), (2, 2, true), (3, 3, false)]
    );
}

/// A local framecast encode of the test card (Annex B access units + avcC).
fn local_stream(n: u64) -> (Vec<Vec<u8>>, Vec<u8>) {
    use framecast_encode::{Encoder, EncoderConfig, EncoderEvent, FrameMeta};
    let mut cfg = EncoderConfig::new(W, H);
    cfg.keyframe_interval = 4;
    let mut enc = Encoder::new(cfg).unwrap();
    let mut aus = Vec::new();
    for (i, (y, uv)) in nv12_frames(W, H, n).iter().enumerate() {
        let f = framecast_core::Frame::nv12(y, W as usize, uv, W as usize, W, H).unwrap();
        let _ = enc
            .send_frame(
                &f,
                FrameMeta {
                    token: i as u64,
                    pts_ns: i as i64,
                    force_keyframe: false,
                },
            )
            .unwrap();
        while let Some(EncoderEvent::Packet(p)) = enc.receive().unwrap() {
            aus.push(p.data.to_vec());
        }
    }
    for ev in enc.flush().unwrap() {
        if let EncoderEvent::Packet(p) = ev {
            aus.push(p.data.to_vec());
        }
    }
    let avcc = enc.avcc().unwrap();
    (aus, avcc)
}

async fn remote_decode(aus: &[Vec<u8>], avcc: &[u8], c: Compression) -> Vec<(i64, Vec<u8>)> {
    let addr = start(config()).await;
    let mut client = connect(addr).await;
    let mut cfg = encode_configure(W, H, pix_fmt::NV12, &[("mode", "decode")]);
    cfg.set_option("wire_compression", c.wire_value().to_string());
    cfg.extradata = Bytes::copy_from_slice(avcc);
    client.configure(cfg).await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    let msgs: Vec<Message> = aus
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Message::Packet(PacketMsg {
                pts: i as i64,
                dts: i as i64,
                duration: 1,
                flags: 0,
                data: Bytes::copy_from_slice(d),
                side_data: vec![],
            })
        })
        .collect();
    tokio::spawn(async move {
        for m in msgs {
            tx.send(m).await.unwrap();
        }
    });
    let mut frames = Vec::new();
    run_stream(client, rx, 4, Credit::Unlimited, |m| {
        let Message::Frame(f) = m else {
            return Err(RemoteError::Unsupported("not a frame".into()));
        };
        assert_eq!(f.planes.len(), 2);
        assert_eq!((f.planes[0].stride, f.planes[0].height), (W, H));
        assert_eq!((f.planes[1].stride, f.planes[1].height), (W, H / 2));
        let mut all = Vec::new();
        for (i, p) in f.planes.iter().enumerate() {
            let n = (p.stride * p.height) as usize;
            all.extend_from_slice(&compress::decompress_plane(c, i, &p.data, n).unwrap());
        }
        frames.push((f.pts, all));
        Ok(())
    })
    .await
    .unwrap();
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_matches_a_local_decode_under_every_compression() {
    let (aus, avcc) = local_stream(8);
    // Local reference: framecast's decoder, as NV12.
    let mut dec = H264Decoder::new().unwrap();
    let mut local = Vec::new();
    for au in &aus {
        if let Some(img) = dec.decode(au).unwrap() {
            let (y, u, v) = img.planes();
            let cs = img.chroma_stride();
            let mut nv12 = Vec::new();
            for r in 0..H as usize {
                nv12.extend_from_slice(&y[r * img.y_stride()..r * img.y_stride() + W as usize]);
            }
            for r in 0..(H / 2) as usize {
                for x in 0..(W / 2) as usize {
                    nv12.push(u[r * cs + x]);
                    nv12.push(v[r * cs + x]);
                }
            }
            local.push(nv12);
        }
    }
    assert_eq!(local.len(), 8);
    for &c in Compression::ALL {
        let remote = remote_decode(&aus, &avcc, c).await;
        assert_eq!(remote.len(), 8, "{c:?}");
        for (i, (pts, data)) in remote.iter().enumerate() {
            assert_eq!(*pts, i as i64);
            assert!(
                data == &local[i],
                "{c:?}: frame {i} differs from a local decode"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcode_resizes_with_packet_ack_credits() {
    let (aus, _avcc) = local_stream(8);
    let addr = start(config()).await;
    let mut client = connect(addr).await;
    assert!(client.hello_ack().has("packet_ack.v1"));
    let cfg = Configure {
        options: vec![
            ("mode".into(), "transcode".into()),
            ("out_width".into(), "160".into()),
            ("out_height".into(), "120".into()),
            ("gop".into(), "3".into()),
            ("packet_ack.v1".into(), "1".into()),
        ],
        ..encode_configure(W, H, pix_fmt::NV12, &[])
    };
    let ack = client.configure(cfg).await.unwrap();
    assert!(AvcDecoderConfig::parse(&ack.extradata).is_ok());
    // Count acks through a raw exchange so the credit accounting is visible.
    for (i, au) in aus.iter().enumerate() {
        client
            .send(&Message::Packet(PacketMsg {
                pts: i as i64 * 10,
                dts: i as i64 * 10,
                duration: 10,
                flags: 0,
                data: Bytes::copy_from_slice(au),
                side_data: vec![],
            }))
            .await
            .unwrap();
    }
    client.send(&Message::Flush).await.unwrap();
    let (mut acks, mut packets) = (0, Vec::new());
    loop {
        match client.recv().await.unwrap() {
            Message::PacketAck => acks += 1,
            Message::Packet(p) => packets.push(p),
            Message::Done => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acks, aus.len(), "one PACKET_ACK per input PACKET");
    assert_eq!(packets.len(), aus.len());
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, i as i64 * 10);
        assert_eq!(p.duration, 10);
        assert_eq!(p.is_keyframe(), i % 3 == 0, "gop 3 at {i}");
    }
    let stream: Vec<u8> = packets.iter().flat_map(|p| p.data.to_vec()).collect();
    let rgb = ffmpeg_decode_rgb(&stream, 160, 120);
    assert_eq!(rgb.len(), aus.len());
    // The source patches, scaled by 1/2, survive (wider tolerance for two generations).
    let last = rgb.last().unwrap();
    for p in framecast_io::test_card_patches(W, H) {
        let (cx, cy) = (
            ((p.x + p.w / 2) / 2) as usize,
            ((p.y + p.h / 2) / 2) as usize,
        );
        let i = (cy * 160 + cx) * 3;
        for c in 0..3 {
            let d = last[i + c] as i32 - p.rgb[c] as i32;
            assert!(
                d.abs() <= 12,
                "patch {} got {:?} want {:?}",
                p.name,
                &last[i..i + 3],
                p.rgb
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcode_through_run_stream_with_ack_window() {
    let (aus, _) = local_stream(10);
    let addr = start(config()).await;
    let mut client = connect(addr).await;
    let cfg = Configure {
        options: vec![
            ("mode".into(), "transcode".into()),
            ("packet_ack.v1".into(), "1".into()),
        ],
        ..encode_configure(W, H, pix_fmt::NV12, &[])
    };
    client.configure(cfg).await.unwrap();
    let (tx, rx) = mpsc::channel(2);
    let n = aus.len();
    tokio::spawn(async move {
        for (i, au) in aus.into_iter().enumerate() {
            let m = Message::Packet(PacketMsg {
                pts: i as i64,
                dts: i as i64,
                duration: 1,
                flags: 0,
                data: Bytes::from(au),
                side_data: vec![],
            });
            tx.send(m).await.unwrap();
        }
    });
    let mut count = 0;
    let stats = run_stream(client, rx, 2, Credit::PacketAck, |_| {
        count += 1;
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .unwrap();
    assert_eq!(count, n);
    assert_eq!(stats.inputs, n as u64);
}
