#![cfg(feature = "openh264")]
//! Encode the test card and moving bands with each backend, decode with OpenH264 and with
//! ffmpeg, compare pixels.

use framecast_core::{convert, ColorSpace, Frame, Matrix, Range, Yuv420Image, YuvLayout};
use framecast_encode::decode::H264Decoder;
use framecast_encode::{Encoder, EncoderConfig, EncoderEvent, FrameMeta};
use framecast_io::{render_into, test_card_patches, PatternKind};
use std::process::Command;

struct Encoded {
    stream: Vec<u8>,
    inputs: Vec<Yuv420Image>,
    sources: Vec<Vec<u8>>,
}

fn encode(
    backend: &str,
    kind: PatternKind,
    w: u32,
    h: u32,
    frames: u64,
    color: ColorSpace,
) -> Encoded {
    let mut config = EncoderConfig::new(w, h);
    config.backend = backend.into();
    config.color = color;
    let mut enc = Encoder::new(config.clone()).unwrap();
    let mut out = Encoded {
        stream: Vec::new(),
        inputs: Vec::new(),
        sources: Vec::new(),
    };
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    for i in 0..frames {
        render_into(kind, i, w, h, &mut rgba).unwrap();
        let frame = Frame::rgba8(&rgba, w, h, w as usize * 4).unwrap();
        let mut input = Yuv420Image::new(w, h, YuvLayout::I420).unwrap();
        convert::to_yuv420(&frame, color, &mut input).unwrap();
        out.inputs.push(input);
        out.sources.push(rgba.clone());
        let _ = enc
            .send_frame(
                &frame,
                FrameMeta {
                    token: i,
                    pts_ns: i as i64 * 33_333_333,
                    force_keyframe: false,
                },
            )
            .unwrap();
        while let Some(ev) = enc.receive().unwrap() {
            let EncoderEvent::Packet(p) = ev else {
                panic!("sync encoder dropped a frame")
            };
            assert_eq!(p.token, i);
            out.stream.extend_from_slice(&p.data);
        }
    }
    for ev in enc.flush().unwrap() {
        let EncoderEvent::Packet(p) = ev else {
            panic!("dropped")
        };
        out.stream.extend_from_slice(&p.data);
    }
    out
}

fn decode_openh264(stream: &[u8]) -> Vec<Yuv420Image> {
    let mut dec = H264Decoder::new().unwrap();
    let mut pics = Vec::new();
    for au in split_access_units(stream) {
        if let Some(p) = dec.decode(&au).unwrap() {
            pics.push(p);
        }
    }
    pics.extend(dec.flush().unwrap());
    pics
}

/// Split an Annex B stream at each SPS or slice with first_mb_in_slice == 0 (first byte of the
/// slice header has its top bit set: ue(v) 0 is a single 1 bit).
fn split_access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut aus: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut current_has_slice = false;
    for nal in framecast_h264::nal::annexb_nals(stream) {
        let t = nal[0] & 0x1f;
        let starts_au = (t == 7) || ((t == 1 || t == 5) && nal.len() > 1 && nal[1] & 0x80 != 0);
        if starts_au && current_has_slice {
            aus.push(std::mem::take(&mut current));
            current_has_slice = false;
        }
        if t == 1 || t == 5 {
            current_has_slice = true;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
    }
    if !current.is_empty() {
        aus.push(current);
    }
    aus
}

fn yuv_psnr(a: &Yuv420Image, b: &Yuv420Image) -> f64 {
    let (ay, au, av) = a.planes();
    let (by, bu, bv) = b.planes();
    let mse = |x: &[u8], y: &[u8]| {
        assert_eq!(x.len(), y.len());
        x.iter()
            .zip(y)
            .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
            .sum::<f64>()
            / x.len() as f64
    };
    let m = (4.0 * mse(ay, by) + mse(au, bu) + mse(av, bv)) / 6.0;
    if m == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / m).log10()
    }
}

/// ffmpeg decodes the stream to raw I420 (`yuv420p`) and to RGB (converting with the colour
/// description it reads from the VUI).
fn decode_ffmpeg(stream: &[u8], pix_fmt: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.h264");
    std::fs::write(&input, stream).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&input)
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .expect("ffmpeg is required for this test: apt-get install ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffmpeg complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn check(backend: &str, kind: PatternKind, w: u32, h: u32, color: ColorSpace) {
    let frames = 20;
    let enc = encode(backend, kind, w, h, frames, color);
    let pics = decode_openh264(&enc.stream);
    assert_eq!(
        pics.len() as u64,
        frames,
        "OpenH264 decoded {} of {frames} frames",
        pics.len()
    );
    let mut worst = f64::INFINITY;
    for (i, (pic, input)) in pics.iter().zip(&enc.inputs).enumerate() {
        assert_eq!((pic.width(), pic.height()), (w, h), "frame {i} size");
        worst = worst.min(yuv_psnr(pic, input));
    }
    assert!(
        worst >= 38.0,
        "{backend} {kind:?} {w}x{h}: worst frame PSNR {worst:.2} dB < 38 dB at the default bitrate"
    );

    // ffmpeg, an independent decoder, must produce the same pictures bit for bit.
    // Full-range streams decode to ffmpeg's yuvj420p; asking for yuv420p would rescale them.
    let raw = decode_ffmpeg(
        &enc.stream,
        if color.full_range() {
            "yuvj420p"
        } else {
            "yuv420p"
        },
    );
    let frame_len = (w * h * 3 / 2) as usize;
    assert_eq!(
        raw.len(),
        frame_len * frames as usize,
        "ffmpeg decoded a different frame count or size"
    );
    for (i, pic) in pics.iter().enumerate() {
        let (y, u, v) = pic.planes();
        let ours: Vec<u8> = [y, u, v].concat();
        assert!(
            ours == raw[i * frame_len..(i + 1) * frame_len],
            "frame {i}: ffmpeg and OpenH264 decode differently"
        );
    }

    if kind == PatternKind::TestCard {
        // Colour patches survive the round trip through ffmpeg's YUV->RGB, which uses the
        // matrix and range signalled in the VUI: a mismatch shows up as wrong colours here.
        let rgb = decode_ffmpeg(&enc.stream, "rgb24");
        let last = (frames - 1) as usize;
        let pic = &rgb[last * (w * h * 3) as usize..];
        let patches = test_card_patches(w, h);
        assert!(
            patches.len() >= 8,
            "test card has {} patches",
            patches.len()
        );
        for p in patches {
            // The centre half of the patch, away from chroma bleeding at its edges.
            let (cx0, cy0) = (p.x + p.w / 4, p.y + p.h / 4);
            for y in cy0..cy0 + (p.h / 2).max(1) {
                for x in cx0..cx0 + (p.w / 2).max(1) {
                    let i = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        let d = pic[i + c] as i32 - p.rgb[c] as i32;
                        assert!(
                            d.abs() <= 6,
                            "{} patch at ({x},{y}) channel {c}: got {} expected {} ({color:?})",
                            p.name,
                            pic[i + c],
                            p.rgb[c]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn testcard_640x360() {
    check(
        "openh264",
        PatternKind::TestCard,
        640,
        360,
        ColorSpace::default(),
    );
}

#[test]
fn testcard_1280x720() {
    check(
        "openh264",
        PatternKind::TestCard,
        1280,
        720,
        ColorSpace::default(),
    );
}

#[test]
fn bands_640x360() {
    check(
        "openh264",
        PatternKind::MovingBands,
        640,
        360,
        ColorSpace::default(),
    );
}

#[test]
fn bands_1280x720() {
    check(
        "openh264",
        PatternKind::MovingBands,
        1280,
        720,
        ColorSpace::default(),
    );
}

#[test]
fn testcard_bt601_full_range() {
    check(
        "openh264",
        PatternKind::TestCard,
        640,
        360,
        ColorSpace::new(Matrix::Bt601, Range::Full),
    );
}

#[test]
fn testcard_bt709_full_range() {
    check(
        "openh264",
        PatternKind::TestCard,
        640,
        360,
        ColorSpace::new(Matrix::Bt709, Range::Full),
    );
}

#[cfg(feature = "x264")]
mod x264 {
    use super::*;
    use framecast_encode::{BackpressurePolicy, EncodeMode};

    /// NV12 frames reach x264 in place (synchronous, even size) or through the encoder's copy
    /// (pipelined; odd sizes, which need padding): every path decodes back to the frames
    /// given, in order.
    #[test]
    fn nv12_frames_in_place_and_copied_decode_back() {
        let pipelined = EncodeMode::Pipelined {
            max_in_flight: 2,
            policy: BackpressurePolicy::Block,
        };
        for (w, h, mode) in [
            (640, 360, EncodeMode::Sync),
            (640, 360, pipelined),
            (33, 17, EncodeMode::Sync),
        ] {
            let mut config = EncoderConfig::new(w, h);
            config.backend = "x264".into();
            config.mode = mode;
            let mut enc = Encoder::new(config).unwrap();
            let (mut stream, mut inputs) = (Vec::new(), Vec::new());
            let mut rgba = vec![0u8; (w * h * 4) as usize];
            for i in 0..12u64 {
                render_into(PatternKind::MovingBands, i, w, h, &mut rgba).unwrap();
                let rgba_frame = Frame::rgba8(&rgba, w, h, w as usize * 4).unwrap();
                let mut nv12 = Yuv420Image::new(w, h, YuvLayout::Nv12).unwrap();
                convert::to_yuv420(&rgba_frame, ColorSpace::default(), &mut nv12).unwrap();
                let mut i420 = Yuv420Image::new(w, h, YuvLayout::I420).unwrap();
                convert::to_yuv420(&rgba_frame, ColorSpace::default(), &mut i420).unwrap();
                inputs.push(i420);
                let meta = FrameMeta {
                    token: i,
                    pts_ns: i as i64 * 33_333_333,
                    force_keyframe: false,
                };
                let _ = enc.send_frame(&nv12.as_frame(), meta).unwrap();
                while let Some(EncoderEvent::Packet(p)) = enc.receive().unwrap() {
                    stream.extend_from_slice(&p.data);
                }
            }
            for ev in enc.flush().unwrap() {
                if let EncoderEvent::Packet(p) = ev {
                    stream.extend_from_slice(&p.data);
                }
            }
            let pics = decode_openh264(&stream);
            assert_eq!(pics.len(), 12, "{w}x{h} {mode:?}");
            for (i, (pic, input)) in pics.iter().zip(&inputs).enumerate() {
                let psnr = yuv_psnr(pic, input);
                assert!(psnr >= 38.0, "{w}x{h} {mode:?} frame {i}: {psnr:.2} dB");
            }
        }
    }

    #[test]
    fn testcard_640x360() {
        check(
            "x264",
            PatternKind::TestCard,
            640,
            360,
            ColorSpace::default(),
        );
    }

    #[test]
    fn bands_1280x720() {
        check(
            "x264",
            PatternKind::MovingBands,
            1280,
            720,
            ColorSpace::default(),
        );
    }

    #[test]
    fn testcard_bt601_full_range() {
        check(
            "x264",
            PatternKind::TestCard,
            640,
            360,
            ColorSpace::new(Matrix::Bt601, Range::Full),
        );
    }
}
