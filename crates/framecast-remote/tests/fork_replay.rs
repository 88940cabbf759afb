#![cfg(feature = "zstd")]
//! Replays of what FFmpeg's vtremote client (davelindo/videotoolbox_remote, FFmpeg fork at
//! commit 77d0479) puts on the wire, byte for byte, against a running server. The bytes are
//! built here the way the fork's C code builds them (`libavcodec/vtremote_proto.c`:
//! `vtremote_payload_hello/configure/frame/packet`, big-endian header of magic, u16 version,
//! u16 type, u32 length; `vtremote_enc_common.c` and `vtremote_dec_common.c` for what goes in),
//! not with framecast's own encoder, so a shared misreading of the protocol cannot hide.
//! Each test pins a failure the fork found, or a quirk of it that must keep working.

mod common;

use common::*;
use framecast_remote::wire::{ConfigureAck, Message, PacketMsg};

// --- the fork's byte builders (vtremote_proto.c), written from its C source ------------------

const HELLO: u16 = 1;
const CONFIGURE: u16 = 3;
const FRAME: u16 = 5;
const PACKET: u16 = 6;
const FLUSH: u16 = 7;

#[derive(Default)]
struct WBuf(Vec<u8>);

impl WBuf {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `vtremote_wbuf_put_str`: u16 length, then the bytes (no terminator).
    fn str(&mut self, s: &str) -> &mut Self {
        self.u16(s.len() as u16);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// `vtremote_build_message`: the 12-byte header, then the payload.
fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = WBuf::default();
    m.u32(0x5654_5231)
        .u16(1)
        .u16(kind)
        .u32(payload.len() as u32);
    m.bytes(payload);
    m.0
}

/// `vtremote_payload_hello(token, codec, "ffmpeg-vtremote", FFMPEG_VERSION)`.
fn hello() -> Vec<u8> {
    let mut p = WBuf::default();
    p.str("")
        .str("h264")
        .str("ffmpeg-vtremote")
        .str("N-77d0479");
    message(HELLO, &p.0)
}

/// `vtremote_payload_configure`.
#[allow(clippy::too_many_arguments)]
fn configure(
    w: u32,
    h: u32,
    pix_fmt: u8,
    tb: (u32, u32),
    fr: (u32, u32),
    options: &[(&str, &str)],
    extradata: &[u8],
) -> Vec<u8> {
    let mut p = WBuf::default();
    p.u32(w).u32(h).u8(pix_fmt);
    p.u32(tb.0).u32(tb.1).u32(fr.0).u32(fr.1);
    p.u16(options.len() as u16);
    for (k, v) in options {
        p.str(k).str(v);
    }
    p.u32(extradata.len() as u32).bytes(extradata);
    message(CONFIGURE, &p.0)
}

/// `vtremote_payload_frame` with the encoder's plane heights: `height` and `height / 2`
/// (`vtremote_enc_common.c`, the floor the fork sends for an odd height), uncompressed
/// (wire_compression 0), no side data.
fn frame(pts: i64, stride: u32, height: u32, y: &[u8], uv: &[u8]) -> Vec<u8> {
    let heights = [height, height / 2];
    let mut p = WBuf::default();
    p.u64(pts as u64).u64(1).u32(0).u8(2);
    for (i, data) in [y, uv].into_iter().enumerate() {
        let size = stride * heights[i];
        p.u32(stride).u32(heights[i]).u32(size);
        p.bytes(&data[..size as usize]);
    }
    message(FRAME, &p.0)
}

/// `vtremote_payload_packet`; the decoder sets flag 1 on key packets.
fn packet(pts: i64, dts: i64, key: bool, data: &[u8]) -> Vec<u8> {
    let mut p = WBuf::default();
    p.u64(pts as u64)
        .u64(dts as u64)
        .u64(0)
        .u32(key as u32)
        .u32(data.len() as u32)
        .bytes(data);
    message(PACKET, &p.0)
}

// --- a raw connection ----------------------------------------------------------------------------

impl Raw {
    /// The next message; the server must not close first.
    async fn recv(&mut self) -> Message {
        self.next().await.expect("the server closed the connection")
    }
    /// HELLO then CONFIGURE; returns the CONFIGURE_ACK (panics on an ERROR).
    async fn open(&mut self, configure: &[u8]) -> ConfigureAck {
        self.bytes(&hello()).await;
        assert!(matches!(self.recv().await, Message::HelloAck(a) if a.status == 0));
        self.bytes(configure).await;
        match self.recv().await {
            Message::ConfigureAck(a) => a,
            other => panic!("expected CONFIGURE_ACK, got {other:?}"),
        }
    }
    /// Send NV12 frames (PTS 0, 1, ...) the fork's way, then FLUSH; the PACKETs up to DONE.
    async fn encode(
        &mut self,
        frames: &[(Vec<u8>, Vec<u8>)],
        stride: u32,
        h: u32,
    ) -> Vec<PacketMsg> {
        for (i, (y, uv)) in frames.iter().enumerate() {
            self.bytes(&frame(i as i64, stride, h, y, uv)).await;
        }
        self.bytes(&message(FLUSH, &[])).await;
        packets(self.until_done().await)
    }
    /// Everything up to DONE.
    async fn until_done(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        loop {
            match self.recv().await {
                Message::Done => return out,
                Message::Error(e) => panic!("server error {}: {}", e.code, e.message),
                m => out.push(m),
            }
        }
    }
}

fn packets(messages: Vec<Message>) -> Vec<PacketMsg> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            Message::Packet(p) => Some(p),
            _ => None,
        })
        .collect()
}

// --- the streams the fork was run with -----------------------------------------------------------

/// Test-card frames as NV12 in FFmpeg's layout: `stride` bytes per row (linesize), the UV plane
/// with ceil(h/2) rows of which the fork sends floor(h/2).
fn padded_nv12(w: u32, h: u32, stride: u32, n: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    nv12_frames(w, h, n)
        .into_iter()
        .map(|(y, uv)| {
            let (w, stride) = (w as usize, stride as usize);
            let cw = 2 * w.div_ceil(2);
            let pad = |src: &[u8], row: usize| -> Vec<u8> {
                src.chunks(row)
                    .flat_map(|r| {
                        let mut v = r.to_vec();
                        v.resize(stride, 0);
                        v
                    })
                    .collect()
            };
            (pad(&y, w), pad(&uv, cw))
        })
        .collect()
}

/// The fork's encoder CONFIGURE for `-bf 2 -profile:v <profile> -b:v 1M` with its defaults
/// (`vtremote_enc_common.c`: keys in its order; only set options are sent; gop 12 is FFmpeg's
/// default gop_size; entropy 0, a53_cc 1 and the colour tags come from its option table).
fn encoder_configure(w: u32, h: u32, profile: &str) -> Vec<u8> {
    configure(
        w,
        h,
        1,
        (1, 30),
        (30, 1),
        &[
            ("mode", "encode"),
            ("bitrate", "1000000"),
            ("gop", "12"),
            ("max_b_frames", "2"),
            ("profile", profile),
            ("entropy", "0"),
            ("a53_cc", "1"),
        ],
        &[],
    )
}

#[tokio::test]
async fn fork_encode_with_b_frames_and_other_profiles_is_accepted_with_warnings() {
    let addr = start(config()).await;
    for (profile, warning) in [
        ("612", "profile 612: encoding High without B-frames"),
        ("88", "profile 88: encoding Constrained Baseline"),
    ] {
        let mut c = Raw::new(addr).await;
        let ack = c.open(&encoder_configure(160, 96, profile)).await;
        assert_eq!(ack.status, 0);
        assert_eq!(ack.warnings.len(), 2, "{:?}", ack.warnings);
        assert!(
            ack.warnings[0].starts_with("max_b_frames=2:") && ack.warnings[0].contains("with 0"),
            "{:?}",
            ack.warnings
        );
        assert!(ack.warnings[1].starts_with(warning), "{:?}", ack.warnings);
        let packets = c.encode(&padded_nv12(160, 96, 192, 6), 192, 96).await;
        assert_eq!(packets.len(), 6, "profile {profile}");
        assert!(
            packets.iter().all(|p| p.dts == p.pts),
            "no B-frames, so DTS = PTS"
        );
    }
}

#[tokio::test]
async fn fork_encode_at_an_odd_size_sends_floor_chroma_rows() {
    // 321x181: the fork sends 90 chroma rows where NV12 has 91 (`heights[1] = height / 2`).
    let (w, h, stride) = (321, 181, 384);
    let addr = start(config()).await;
    let mut c = Raw::new(addr).await;
    let ack = c
        .open(&configure(
            w,
            h,
            1,
            (1, 30),
            (30, 1),
            &[("mode", "encode")],
            &[],
        ))
        .await;
    assert_eq!(ack.status, 0);
    let stream: Vec<u8> = c
        .encode(&padded_nv12(w, h, stride, 4), stride, h)
        .await
        .iter()
        .flat_map(|p| p.data.to_vec())
        .collect();
    if !have_ffmpeg() {
        eprintln!("skipping the decode check: ffmpeg is not installed");
        return;
    }
    // 4:2:0 crops in steps of 2, so the stream codes 322x182 (the fork's container carries
    // 321x181); the picture's top-left 321x181 is the input.
    let rgb = ffmpeg_decode_rgb(&stream, w + 1, h + 1);
    assert_eq!(rgb.len(), 4);
    let cropped: Vec<u8> = rgb[3]
        .chunks(3 * (w as usize + 1))
        .take(h as usize)
        .flat_map(|row| row[..3 * w as usize].to_vec())
        .collect();
    check_patches(&cropped, w, h, 16);
}

#[tokio::test]
async fn fork_quirks_a_duplicate_frame_and_a_flush_per_drain_call() {
    let addr = start(config()).await;
    let mut c = Raw::new(addr).await;
    c.open(&encoder_configure(160, 96, "100")).await;
    let frames = padded_nv12(160, 96, 160, 5);
    for (i, (y, uv)) in frames.iter().enumerate() {
        c.bytes(&frame(i as i64, 160, 96, y, uv)).await;
        if i == 2 {
            // At its in-flight limit the fork sends the same frame (same PTS) again.
            c.bytes(&frame(i as i64, 160, 96, y, uv)).await;
        }
    }
    // ... and a FLUSH on every drain call: 12 of them.
    for _ in 0..12 {
        c.bytes(&message(FLUSH, &[])).await;
    }
    let out = c.until_done().await;
    let pts: Vec<i64> = out
        .iter()
        .filter_map(|m| match m {
            Message::Packet(p) => Some(p.pts),
            _ => None,
        })
        .collect();
    assert_eq!(
        pts,
        [0, 1, 2, 3, 4],
        "the duplicate is dropped, nothing else"
    );
    // The extra FLUSHes do no harm: one DONE, then the session ends with a clean close (no
    // ERROR for the FLUSHes that arrived while draining).
    c.expect_closed().await;
}

/// x264 High profile with B-frames (what cameras and ordinary files carry): Annex B with an
/// access unit delimiter per picture, packet PTS/DTS as ffprobe reads them from an MP4, and the
/// reference decode in presentation order, all by the system ffmpeg.
#[cfg(feature = "libav")]
struct BFrameStream {
    access_units: Vec<Vec<u8>>,
    /// (pts, dts, key) per access unit, in decode order.
    stamps: Vec<(i64, i64, bool)>,
    extradata: Vec<u8>,
    reference_nv12: Vec<Vec<u8>>,
}

#[cfg(feature = "libav")]
fn b_frame_stream(w: u32, h: u32, n: u32) -> BFrameStream {
    use framecast_h264::nal::{annexb_nals, nal_type, write_annexb, NalType};
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("b.mp4");
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let mp4s = mp4.to_str().unwrap();
    run(&[
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={w}x{h}:rate=30"),
        "-frames:v",
        &n.to_string(),
        "-c:v",
        "libx264",
        "-profile:v",
        "high",
        "-bf",
        "2",
        "-x264-params",
        "aud=1",
        "-pix_fmt",
        "yuv420p",
        mp4s,
    ]);
    let annexb = run(&[
        "ffmpeg",
        "-v",
        "error",
        "-i",
        mp4s,
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        "-",
    ]);
    let probe = String::from_utf8(run(&[
        "ffprobe",
        "-v",
        "error",
        "-show_entries",
        "packet=pts,dts,flags",
        "-of",
        "csv=p=0",
        mp4s,
    ]))
    .unwrap();
    let stamps: Vec<(i64, i64, bool)> = probe
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].starts_with('K'),
            )
        })
        .collect();
    let reference = run(&[
        "ffmpeg", "-v", "error", "-i", mp4s, "-pix_fmt", "nv12", "-f", "rawvideo", "-",
    ]);
    let frame_bytes = (w * h * 3 / 2) as usize;
    // Split at each access unit delimiter. h264_mp4toannexb puts the parameter sets in front
    // of the first AUD: they join the first access unit and become the extradata.
    let mut access_units: Vec<Vec<u8>> = Vec::new();
    let mut extradata = Vec::new();
    let mut prefix = Vec::new();
    for nal in annexb_nals(&annexb) {
        let t = nal_type(nal);
        if matches!(t, Some(NalType::Sps) | Some(NalType::Pps)) && access_units.len() <= 1 {
            write_annexb([nal], &mut extradata);
        }
        if t == Some(NalType::Aud) {
            access_units.push(std::mem::take(&mut prefix));
        }
        match access_units.last_mut() {
            Some(au) => write_annexb([nal], au),
            None => write_annexb([nal], &mut prefix),
        }
    }
    assert_eq!(access_units.len(), stamps.len());
    BFrameStream {
        access_units,
        stamps,
        extradata,
        reference_nv12: reference.chunks(frame_bytes).map(<[u8]>::to_vec).collect(),
    }
}

/// The fork's decoder CONFIGURE: time base 0/1 (`avctx->time_base`, unset in a decoder), frame
/// rate 30/1, `mode=decode`, its default wire compression 2 (zstd), the stream's extradata.
#[cfg(feature = "libav")]
#[tokio::test]
async fn fork_decode_of_x264_high_with_b_frames_is_bit_exact_in_presentation_order() {
    if !have_ffmpeg() {
        eprintln!("skipping: ffmpeg (with libx264) is not installed");
        return;
    }
    let (w, h, n) = (192, 108, 24);
    let s = b_frame_stream(w, h, n);
    let addr = start(config()).await;
    let mut c = Raw::new(addr).await;
    let ack = c
        .open(&configure(
            w,
            h,
            1,
            (0, 1),
            (30, 1),
            &[("mode", "decode"), ("wire_compression", "2")],
            &s.extradata,
        ))
        .await;
    assert_eq!(ack.status, 0, "time base 0/1 must be accepted");
    for (au, &(pts, dts, key)) in s.access_units.iter().zip(&s.stamps) {
        c.bytes(&packet(pts, dts, key, au)).await;
    }
    c.bytes(&message(FLUSH, &[])).await;
    let frames: Vec<_> = c
        .until_done()
        .await
        .into_iter()
        .filter_map(|m| match m {
            Message::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), n as usize);
    let mut want_pts: Vec<i64> = s.stamps.iter().map(|t| t.0).collect();
    want_pts.sort_unstable();
    let got_pts: Vec<i64> = frames.iter().map(|f| f.pts).collect();
    assert_eq!(
        got_pts, want_pts,
        "presentation order, each picture with its own PTS"
    );
    for (i, (f, want)) in frames.iter().zip(&s.reference_nv12).enumerate() {
        let mut nv12 = Vec::new();
        for (p, rows) in f.planes.iter().zip([h, h / 2]) {
            let data = framecast_remote::compress::decompress_plane(
                framecast_remote::Compression::Zstd,
                0,
                &p.data,
                (p.stride * p.height) as usize,
            )
            .unwrap();
            for r in 0..rows as usize {
                let row = &data[r * p.stride as usize..];
                nv12.extend_from_slice(&row[..w as usize]);
            }
        }
        assert!(nv12 == *want, "frame {i} differs from ffmpeg's own decode");
    }
}

/// The fork's decoder sends its unset time base 0/1; vtremoted clamps the numerator to 1 and so
/// must we (every fork decode and transcode failed at CONFIGURE before). Stream: the server's
/// own encode, as avcC extradata plus Annex B packets with the key flag on the IDR.
#[tokio::test]
async fn fork_decode_configure_with_time_base_0_1_is_accepted() {
    let addr = start(config()).await;
    let mut enc = Raw::new(addr).await;
    let ack = enc.open(&encoder_configure(160, 96, "100")).await;
    let packets = enc.encode(&padded_nv12(160, 96, 160, 3), 160, 96).await;
    assert_eq!(packets.len(), 3);

    let mut dec = Raw::new(addr).await;
    let opts = [("mode", "decode")];
    let dack = dec
        .open(&configure(
            160,
            96,
            1,
            (0, 1),
            (0, 1),
            &opts,
            &ack.extradata,
        ))
        .await;
    assert_eq!(dack.status, 0);
    for p in &packets {
        let key = p.flags & 1 != 0;
        dec.bytes(&packet(p.pts, p.dts, key, &p.data)).await;
    }
    dec.bytes(&message(FLUSH, &[])).await;
    let pts: Vec<i64> = dec
        .until_done()
        .await
        .into_iter()
        .filter_map(|m| match m {
            Message::Frame(f) => Some(f.pts),
            _ => None,
        })
        .collect();
    assert_eq!(pts, [0, 1, 2]);
}

/// Against an x264 server, the fork's `max_b_frames=2` with High profile is honoured as
/// vtremoted honours it: no warning, packets in decode order with DTS strictly increasing and
/// never after PTS, some reordered, every frame's PTS once; and libavcodec decodes them back in
/// presentation order.
#[cfg(feature = "x264")]
#[tokio::test]
async fn fork_encode_with_b_frames_on_x264_reorders_with_correct_dts() {
    let addr = start(framecast_remote::server::ServerConfig {
        backend: Some("x264".into()),
        ..config()
    })
    .await;
    let mut c = Raw::new(addr).await;
    let ack = c.open(&encoder_configure(160, 96, "100")).await;
    assert_eq!(ack.status, 0);
    assert!(ack.warnings.is_empty(), "{:?}", ack.warnings);
    let packets = c.encode(&padded_nv12(160, 96, 192, 24), 192, 96).await;
    assert_eq!(packets.len(), 24);
    assert!(
        packets.windows(2).all(|w| w[0].dts < w[1].dts),
        "DTS must increase"
    );
    assert!(packets.iter().all(|p| p.dts <= p.pts), "DTS after PTS");
    assert!(
        packets.iter().any(|p| p.pts > p.dts),
        "nothing was reordered"
    );
    let mut pts: Vec<i64> = packets.iter().map(|p| p.pts).collect();
    pts.sort_unstable();
    assert_eq!(pts, (0..24).collect::<Vec<i64>>());
    #[cfg(feature = "libav")]
    {
        use framecast_encode::decode::{LibavDecoder, VideoDecoder};
        let mut dec = LibavDecoder::new().unwrap();
        let mut shown = Vec::new();
        for p in &packets {
            shown.extend(dec.send(&p.data, Some(p.pts)).unwrap());
        }
        shown.extend(dec.drain().unwrap());
        let order: Vec<Option<i64>> = shown.iter().map(|p| p.pts).collect();
        assert_eq!(order, (0..24).map(Some).collect::<Vec<_>>());
    }
}
