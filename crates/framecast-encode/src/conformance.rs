//! The conformance suite every backend must pass, whatever its platform.
//!
//! Run it against a backend with [`run`]; each [`Check`] encodes synthetic moving frames and
//! verifies one invariant of the encoder contract by parsing the packets (never by trusting the
//! encoder's own flags). `cargo test -p framecast-encode --test conformance` runs it over every
//! compiled-in backend, synchronous and pipelined; on a Mac the same test covers VideoToolbox.

use crate::{
    EncodeError, EncodeMode, EncodedPacket, Encoder, EncoderConfig, EncoderEvent, FrameMeta,
    OutputFormat, SendOutcome,
};
use framecast_core::{ColorSpace, Frame, Matrix, Range, Yuv420Image};
use framecast_h264::codec::codec_string;
use framecast_h264::nal::{annexb_nals, avcc_nals, nal_type, NalType};
use framecast_h264::sps::parse_sps;

/// Outcome of one check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// `Err` holds what was wrong.
    pub result: Result<(), String>,
}

/// Synthetic RGBA frame `index` of `w x h`: a gradient with a moving square, so that encoders see
/// both texture and motion.
pub fn synthetic_frame(w: u32, h: u32, index: u64) -> Vec<u8> {
    let mut buf = vec![0u8; (w * h * 4) as usize];
    let t = index as u32;
    let (sx, sy) = ((t * 7) % w.max(1), (t * 3) % h.max(1));
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let inside = x >= sx && x < sx + w / 5 + 1 && y >= sy && y < sy + h / 5 + 1;
            buf[i] = if inside {
                240
            } else {
                (x * 255 / w.max(1)) as u8
            };
            buf[i + 1] = if inside {
                40
            } else {
                (y * 255 / h.max(1)) as u8
            };
            buf[i + 2] = ((x + y + t * 4) % 256) as u8;
            buf[i + 3] = 255;
        }
    }
    buf
}

fn nals_of(p: &EncodedPacket) -> Result<Vec<&[u8]>, String> {
    match p.format {
        OutputFormat::AnnexB => Ok(annexb_nals(&p.data).collect()),
        OutputFormat::Avcc => avcc_nals(&p.data, 4)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string()),
    }
}

fn types_of(p: &EncodedPacket) -> Result<Vec<NalType>, String> {
    Ok(nals_of(p)?.iter().filter_map(|n| nal_type(n)).collect())
}

/// Encode `frames` synthetic frames; `force` lists frame indices to force as IDRs. Returns
/// every event in order.
fn encode(
    config: &EncoderConfig,
    frames: u64,
    force: &[u64],
) -> Result<(Vec<EncoderEvent>, Encoder), EncodeError> {
    let mut enc = Encoder::new(config.clone())?;
    let mut events = Vec::new();
    let dur = config.frame_duration_ns();
    for i in 0..frames {
        let rgba = synthetic_frame(config.width, config.height, i);
        let frame = Frame::rgba8(
            &rgba,
            config.width,
            config.height,
            config.width as usize * 4,
        )?;
        let meta = FrameMeta {
            token: 0xF00D_0000 + i * 3,
            pts_ns: 1_000 + i as i64 * dur,
            force_keyframe: force.contains(&i),
        };
        while enc.send_frame(&frame, meta)? == SendOutcome::Busy {
            // FailFast: make room by taking what the worker has finished.
            if let Some(ev) = enc.receive_blocking()? {
                events.push(ev);
            }
        }
        while let Some(ev) = enc.receive()? {
            events.push(ev);
        }
    }
    events.extend(enc.flush()?);
    Ok((events, enc))
}

fn packets(events: &[EncoderEvent]) -> Vec<&EncodedPacket> {
    events
        .iter()
        .filter_map(|e| {
            if let EncoderEvent::Packet(p) = e {
                Some(p)
            } else {
                None
            }
        })
        .collect()
}

fn base_config(backend: &str, mode: EncodeMode, w: u32, h: u32) -> EncoderConfig {
    let mut c = EncoderConfig::new(w, h);
    c.backend = backend.to_string();
    c.mode = mode;
    c.keyframe_interval = 30;
    c
}

/// Expected IDR frame indices for `frames` frames with `interval` and forced frames, all
/// frames encoded.
pub fn expected_keyframes(frames: u64, interval: u32, forced: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut since: Option<u64> = None;
    for i in 0..frames {
        let idr = match since {
            None => true,
            Some(n) => forced.contains(&i) || (interval > 0 && n >= interval as u64),
        };
        if idr {
            out.push(i);
            since = Some(1);
        } else {
            since = since.map(|n| n + 1);
        }
    }
    out
}

fn check_stream(config: &EncoderConfig, frames: u64, force: &[u64]) -> Result<(), String> {
    let (events, enc) = encode(config, frames, force).map_err(|e| e.to_string())?;
    let pk = packets(&events);
    let dropped = events.len() - pk.len();
    if dropped != 0 {
        return Err(format!("{dropped} frames dropped under a blocking policy"));
    }
    if pk.len() as u64 != frames {
        return Err(format!("{} packets for {} frames", pk.len(), frames));
    }
    // Order, tokens, timestamps.
    let dur = config.frame_duration_ns();
    for (i, p) in pk.iter().enumerate() {
        let i = i as u64;
        if p.token != 0xF00D_0000 + i * 3 {
            return Err(format!(
                "packet {i} carries token {:#x}, expected {:#x}",
                p.token,
                0xF00D_0000 + i * 3
            ));
        }
        if p.pts_ns != 1_000 + i as i64 * dur || p.dts_ns != p.pts_ns {
            return Err(format!(
                "packet {i}: pts {} dts {} (expected both {})",
                p.pts_ns,
                p.dts_ns,
                1_000 + i as i64 * dur
            ));
        }
        if p.frame_index != i {
            return Err(format!("packet {i} has frame_index {}", p.frame_index));
        }
        if p.format != config.output {
            return Err(format!(
                "packet {i} is {:?}, configured {:?}",
                p.format, config.output
            ));
        }
    }
    // First packet: SPS, PPS, then IDR; SPS/PPS before every IDR; keyflag == IDR present.
    let mut keyframes = Vec::new();
    for (i, p) in pk.iter().enumerate() {
        let types = types_of(p)?;
        let idr = types.contains(&NalType::IdrSlice);
        if idr != p.keyframe {
            return Err(format!(
                "packet {i}: keyframe flag {} but IDR slice present = {idr}",
                p.keyframe
            ));
        }
        if idr {
            keyframes.push(i as u64);
            let sps = types.iter().position(|t| *t == NalType::Sps);
            let pps = types.iter().position(|t| *t == NalType::Pps);
            let first_idr = types
                .iter()
                .position(|t| *t == NalType::IdrSlice)
                .unwrap_or(0);
            match (sps, pps) {
                (Some(s), Some(q)) if s < q && q < first_idr => {}
                _ => {
                    return Err(format!(
                        "packet {i}: IDR without SPS then PPS in front of it (NAL types {types:?})"
                    ))
                }
            }
        }
        if i == 0 && !idr {
            return Err(format!("first packet is not an IDR (NAL types {types:?})"));
        }
        if types
            .iter()
            .any(|t| matches!(t, NalType::NonIdrSlice | NalType::IdrSlice))
            && types.contains(&NalType::Aud)
        {
            return Err(format!("packet {i} carries an access unit delimiter"));
        }
    }
    let expected = expected_keyframes(frames, config.keyframe_interval, force);
    if keyframes != expected {
        return Err(format!("keyframes at {keyframes:?}, expected {expected:?}"));
    }
    // SPS: VUI, colour, size, codec string.
    for (i, p) in pk.iter().enumerate().filter(|(_, p)| p.keyframe) {
        let nals = nals_of(p)?;
        let sps_nal = nals
            .iter()
            .find(|n| nal_type(n) == Some(NalType::Sps))
            .expect("checked above");
        let sps = parse_sps(sps_nal).map_err(|e| format!("packet {i}: SPS does not parse: {e}"))?;
        let vui = sps
            .vui
            .as_ref()
            .ok_or(format!("packet {i}: SPS has no VUI"))?;
        let br = vui
            .bitstream_restriction
            .as_ref()
            .ok_or(format!("packet {i}: VUI has no bitstream_restriction"))?;
        if br.max_num_reorder_frames != 0 {
            return Err(format!(
                "packet {i}: max_num_reorder_frames = {}",
                br.max_num_reorder_frames
            ));
        }
        if br.max_dec_frame_buffering != sps.max_num_ref_frames.max(1)
            && br.max_dec_frame_buffering != sps.max_num_ref_frames
        {
            return Err(format!(
                "packet {i}: max_dec_frame_buffering {} but max_num_ref_frames {}",
                br.max_dec_frame_buffering, sps.max_num_ref_frames
            ));
        }
        let cs = config.color;
        let colour = vui
            .colour
            .as_ref()
            .ok_or(format!("packet {i}: VUI has no colour description"))?;
        let got = (
            vui.video_full_range_flag,
            colour.colour_primaries,
            colour.transfer_characteristics,
            colour.matrix_coefficients,
        );
        let want = (
            cs.full_range(),
            cs.primaries_code(),
            cs.transfer_code(),
            cs.matrix_code(),
        );
        if got != want {
            return Err(format!(
                "packet {i}: VUI colour (full, prim, trc, matrix) = {got:?}, expected {want:?}"
            ));
        }
        let want_size = (config.width.div_ceil(2) * 2, config.height.div_ceil(2) * 2);
        if (sps.width, sps.height) != want_size {
            return Err(format!(
                "packet {i}: SPS crops to {}x{}, expected {}x{}",
                sps.width, sps.height, want_size.0, want_size.1
            ));
        }
        let from_bytes = format!(
            "avc1.{:02X}{:02X}{:02X}",
            sps_nal[1], sps_nal[2], sps_nal[3]
        );
        let parsed = codec_string(sps_nal).map_err(|e| e.to_string())?;
        if *p.codec != *from_bytes || parsed != from_bytes {
            return Err(format!(
                "packet {i}: codec string {} but SPS bytes say {from_bytes} (parser: {parsed})",
                p.codec
            ));
        }
    }
    if config.output == OutputFormat::Avcc {
        let avcc = enc.avcc().ok_or("AVCC output but no avcC record")?;
        let rec = framecast_h264::avcc::AvcDecoderConfig::parse(&avcc)
            .map_err(|e| format!("avcC does not parse: {e}"))?;
        let last_key = pk.iter().rev().find(|p| p.keyframe).expect("first is key");
        let nals = nals_of(last_key)?;
        let sps = nals
            .iter()
            .find(|n| nal_type(n) == Some(NalType::Sps))
            .expect("checked");
        if rec.sps.first().map(|s| s.as_slice()) != Some(*sps) {
            return Err("avcC SPS differs from the in-band SPS".into());
        }
    }
    #[cfg(feature = "openh264")]
    {
        let mut dec = crate::decode::H264Decoder::new().map_err(|e| e.to_string())?;
        let mut decoded = 0;
        for p in &pk {
            let annexb = match p.format {
                OutputFormat::AnnexB => p.data.to_vec(),
                OutputFormat::Avcc => {
                    framecast_h264::nal::avcc_to_annexb(&p.data, 4).map_err(|e| e.to_string())?
                }
            };
            if let Some(img) = dec
                .decode(&annexb)
                .map_err(|e| format!("decoding packet {decoded}: {e}"))?
            {
                let want = (config.width.div_ceil(2) * 2, config.height.div_ceil(2) * 2);
                if (img.width(), img.height()) != want {
                    return Err(format!(
                        "decoded {}x{}, expected {}x{}",
                        img.width(),
                        img.height(),
                        want.0,
                        want.1
                    ));
                }
                decoded += 1;
            }
        }
        decoded += dec.flush().map_err(|e| e.to_string())?.len();
        if decoded as u64 != frames {
            return Err(format!(
                "OpenH264 decoded {decoded} pictures from {frames} packets (1-in-1-out broken)"
            ));
        }
    }
    Ok(())
}

/// Mean absolute difference between decoded luma and the luma of `rgba` (limited range; the
/// smaller of the BT.601 and BT.709 readings, so the check does not depend on the matrix).
fn luma_error(img: &Yuv420Image, rgba: &[u8], w: u32, h: u32) -> f64 {
    let mut err = [0f64; 2];
    for y in 0..h as usize {
        for x in 0..w as usize {
            let i = (y * w as usize + x) * 4;
            let (r, g, b) = (rgba[i] as f64, rgba[i + 1] as f64, rgba[i + 2] as f64);
            let got = img.y()[y * img.y_stride() + x] as f64;
            for (e, (kr, kb)) in err.iter_mut().zip([(0.299, 0.114), (0.2126, 0.0722)]) {
                let luma = kr * r + (1.0 - kr - kb) * g + kb * b;
                *e += (16.0 + luma * 219.0 / 255.0 - got).abs();
            }
        }
    }
    err[0].min(err[1]) / (w as f64 * h as f64)
}

/// Submit synthetic frame `i` (token `i`) to a synchronous encoder, which must accept it.
fn send_synthetic(enc: &mut Encoder, config: &EncoderConfig, i: u64) -> Result<(), String> {
    let (w, h) = (config.width, config.height);
    let rgba = synthetic_frame(w, h, i);
    let frame = Frame::rgba8(&rgba, w, h, w as usize * 4).map_err(|e| e.to_string())?;
    let meta = FrameMeta {
        token: i,
        pts_ns: i as i64 * config.frame_duration_ns(),
        force_keyframe: false,
    };
    if enc.send_frame(&frame, meta).map_err(|e| e.to_string())? != SendOutcome::Accepted {
        return Err(format!(
            "frame {i} was not accepted by a synchronous encoder"
        ));
    }
    Ok(())
}

/// A live rate change ([`Encoder::set_rate`]) takes effect without an IDR: the frames after a
/// cut from 4 Mb/s to 250 kb/s are much smaller, those after a raise to 8 Mb/s (above the
/// creation rate) much larger again, none is an IDR, and the stream decodes to the source
/// picture. Backends that cannot change the rate live say so (`Ok(false)`).
fn check_live_rate(config: &EncoderConfig) -> Result<(), String> {
    let mut config = config.clone();
    config.keyframe_interval = 0;
    config.bitrate = 4_000_000;
    let mut enc = Encoder::new(config.clone()).map_err(|e| e.to_string())?;
    let mut pk = Vec::new();
    // Down to 250 kb/s at frame 30, then up to 8 Mb/s — above the rate the encoder was
    // created with, as a lower tier climbing back does — at frame 60.
    for i in 0..90u64 {
        let change = match i {
            30 => Some(250_000),
            60 => Some(8_000_000),
            _ => None,
        };
        if let Some(bitrate) = change {
            match enc.set_rate(bitrate, config.fps) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(format!("set_rate({bitrate}) at frame {i}: {e}")),
            }
        }
        send_synthetic(&mut enc, &config, i)?;
        while let Some(ev) = enc.receive().map_err(|e| e.to_string())? {
            if let EncoderEvent::Packet(p) = ev {
                pk.push(p);
            }
        }
    }
    pk.extend(
        packets(&enc.flush().map_err(|e| e.to_string())?)
            .into_iter()
            .cloned(),
    );
    if pk.len() != 90 {
        return Err(format!("{} packets for 90 frames", pk.len()));
    }
    if let Some(p) = pk.iter().skip(1).find(|p| p.keyframe) {
        return Err(format!("the rate change cost an IDR (frame {})", p.token));
    }
    let bytes = |r: std::ops::Range<usize>| pk[r].iter().map(|p| p.data.len()).sum::<usize>();
    let (before, after, back) = (bytes(10..30), bytes(40..60), bytes(70..90));
    if after * 3 > before {
        return Err(format!(
            "frames 40..60 after the cut to 250 kb/s took {after} bytes, frames 10..30 at 4 Mb/s {before}: not a third"
        ));
    }
    if back < after * 3 {
        return Err(format!(
            "frames 70..90 after the raise to 8 Mb/s took {back} bytes, frames 40..60 at 250 kb/s {after}: not three times"
        ));
    }
    #[cfg(feature = "openh264")]
    {
        let mut dec = crate::decode::H264Decoder::new().map_err(|e| e.to_string())?;
        let mut pictures = Vec::new();
        for p in &pk {
            pictures.extend(dec.decode(&p.data).map_err(|e| e.to_string())?);
        }
        pictures.extend(dec.flush().map_err(|e| e.to_string())?);
        if pictures.len() != 90 {
            return Err(format!("decoded {} pictures of 90", pictures.len()));
        }
        for i in [59, 89] {
            let (w, h) = (config.width, config.height);
            let err = luma_error(&pictures[i], &synthetic_frame(w, h, i as u64), w, h);
            if err > 12.0 {
                return Err(format!(
                    "picture {i} after the rate changes is off by {err:.1} luma levels on average"
                ));
            }
        }
    }
    Ok(())
}

/// Recovery without a keyframe ([`Encoder::recover`]). Two decoders watch one stream; what
/// both have displayed is reported with [`Encoder::displayed`] (three frames behind). Twice,
/// decoder B stops displaying (after frames 40 and 75) and misses the frames up to a recovery
/// frame asked for it (50 and 85). Each recovery packet must be a P-frame naming a reference
/// B displayed, no IDR may follow the first, and B — fed only what it got — must decode every
/// frame it got after each recovery bit-identical to A, which decoded everything, and close
/// to the source. The second stall catches long-term references marked in frames B missed
/// the first time. Backends whose descriptor says they cannot recover must answer `None`.
/// A backend that recovers by predicting from a frame before the missed ones (x264) declares
/// frame_num gaps in its SPS; that stream is checked with the decoders that run H.264's gap
/// process (FFmpeg's; OpenH264's decoder does not).
fn check_recovery(config: &EncoderConfig, decoders: &[DecoderFactory]) -> Result<(), String> {
    let supported = crate::registry::find(&config.backend)
        .map_err(|e| e.to_string())?
        .recovery;
    let mut config = config.clone();
    config.keyframe_interval = 0;
    config.recovery = true;
    let (w, h) = (config.width, config.height);
    let mut enc = Encoder::new(config.clone()).map_err(|e| e.to_string())?;
    // (last frame B displays, the recovery frame it gets next)
    const STALLS: [(u64, u64); 2] = [(40, 50), (53, 63)];
    const FRAMES: u64 = 80;
    const LAG: u64 = 3;
    let b_gets = |i: u64| !STALLS.iter().any(|&(last, back)| i > last && i < back);
    // What B has displayed when frame i is encoded: LAG behind, except that from a stall
    // until its recovery frame is displayed it stays at its last frame.
    let b_displayed = |i: u64| {
        let d = i.saturating_sub(LAG);
        STALLS
            .iter()
            .find(|&&(last, back)| d > last && d < back)
            .map_or(d, |&(last, _)| last)
    };
    let mut pk = Vec::new();
    let mut promised = Vec::new();
    for i in 0..FRAMES {
        if i > LAG {
            enc.displayed(b_displayed(i)).map_err(|e| e.to_string())?;
        }
        if let Some(&(last, _)) = STALLS.iter().find(|&&(_, back)| back == i) {
            let reference = enc.recover(last).map_err(|e| e.to_string())?;
            match (supported, reference) {
                (false, None) => return Ok(()),
                (false, Some(r)) => {
                    return Err(format!(
                        "the backend says it cannot recover, yet offered reference {r}"
                    ))
                }
                (true, None) => return Err(format!("no recovery reference at frame {i}")),
                (true, Some(r)) if r > last => {
                    return Err(format!(
                        "recovery reference {r} is later than B's last displayed frame {last}"
                    ))
                }
                _ => {}
            }
            promised.push((i, reference));
        }
        send_synthetic(&mut enc, &config, i)?;
        while let Some(ev) = enc.receive().map_err(|e| e.to_string())? {
            if let EncoderEvent::Packet(p) = ev {
                pk.push(p);
            }
        }
    }
    if pk.len() as u64 != FRAMES {
        return Err(format!("{} packets for {FRAMES} frames", pk.len()));
    }
    if let Some(p) = pk.iter().skip(1).find(|p| p.keyframe) {
        return Err(format!("frame {} is an IDR", p.token));
    }
    for p in &pk {
        let want = promised
            .iter()
            .find(|(at, _)| *at == p.token)
            .and_then(|(_, r)| *r);
        if p.recovery_from != want {
            return Err(format!(
                "frame {}: recovery_from {:?}, expected {want:?}",
                p.token, p.recovery_from
            ));
        }
    }
    // A backend that recovers by skipping frames declares frame_num gaps in its SPS; only
    // decoders that run the gap process (8.2.5.2) are held to it.
    let gaps = pk
        .first()
        .and_then(|p| {
            let nals = nals_of(p).ok()?;
            let sps = nals
                .into_iter()
                .find(|n| nal_type(n) == Some(NalType::Sps))?;
            parse_sps(sps).ok()
        })
        .is_some_and(|sps| sps.gaps_in_frame_num_allowed);
    let mut checked = 0;
    for factory in decoders {
        let (mut a, mut b) = (factory()?, factory()?);
        let name = b.name();
        if gaps && !b.infers_missing_frames() {
            continue;
        }
        checked += 1;
        let mut seen_a = Vec::new();
        for p in &pk {
            seen_a.extend(a.send(&p.data, Some(p.pts_ns)).map_err(|e| e.to_string())?);
        }
        seen_a.extend(a.drain().map_err(|e| e.to_string())?);
        if seen_a.len() != pk.len() {
            return Err(format!(
                "{name}: A decoded {} of {} pictures",
                seen_a.len(),
                pk.len()
            ));
        }
        for p in pk.iter().filter(|p| b_gets(p.token)) {
            let i = p.token as usize;
            // No reordering: the newest picture out is the one just sent (a decoder may also
            // output concealed pictures for the frame_num gap before it).
            let got = b
                .send(&p.data, Some(p.pts_ns))
                .map_err(|e| format!("{name}: B at frame {i}: {e}"))?;
            let after_a_stall = STALLS.iter().any(|&(_, back)| p.token >= back);
            if !after_a_stall {
                continue;
            }
            let pic = got
                .last()
                .ok_or(format!("{name}: B output no picture for frame {i}"))?;
            if pic.image != seen_a[i].image {
                return Err(format!(
                    "{name}: after recovery, B's picture {i} differs from A's"
                ));
            }
            let err = luma_error(&pic.image, &synthetic_frame(w, h, i as u64), w, h);
            if err > 12.0 {
                return Err(format!(
                    "{name}: B's picture {i} is off the source by {err:.1} luma levels"
                ));
            }
        }
    }
    if checked == 0 && !decoders.is_empty() {
        return Err(
            "the stream relies on frame_num gaps and no compiled-in decoder runs the gap \
             process (8.2.5.2); build with the `libav` feature to check it"
                .into(),
        );
    }
    Ok(())
}

/// Makes a fresh decoder for [`check_recovery`].
type DecoderFactory = fn() -> Result<Box<dyn crate::decode::VideoDecoder>, String>;

/// Every decoder compiled in, for checks that must hold for each.
fn decoders() -> Vec<DecoderFactory> {
    vec![
        #[cfg(feature = "openh264")]
        || {
            crate::decode::H264Decoder::new()
                .map(|d| Box::new(d) as Box<dyn crate::decode::VideoDecoder>)
                .map_err(|e| e.to_string())
        },
        #[cfg(feature = "libav")]
        || {
            crate::decode::LibavDecoder::new()
                .map(|d| Box::new(d) as Box<dyn crate::decode::VideoDecoder>)
                .map_err(|e| e.to_string())
        },
    ]
}

/// Every submitted frame comes out exactly once, as a packet or a drop report, under a
/// dropping policy with a small in-flight limit.
fn check_accounting(config: &EncoderConfig) -> Result<(), String> {
    let frames = 40;
    let (events, _) = encode(config, frames, &[5]).map_err(|e| e.to_string())?;
    let mut seen: Vec<u64> = events
        .iter()
        .map(|e| match e {
            EncoderEvent::Packet(p) => p.token,
            EncoderEvent::Dropped(d) => d.token,
        })
        .collect();
    let in_order = seen.windows(2).all(|w| w[0] < w[1]);
    seen.sort_unstable();
    seen.dedup();
    if seen.len() as u64 != frames || events.len() as u64 != frames {
        return Err(format!(
            "{} events for {frames} frames ({} distinct tokens)",
            events.len(),
            seen.len()
        ));
    }
    let pk = packets(&events);
    if !pk.first().is_some_and(|p| p.keyframe) {
        return Err("first packet after drops is not an IDR".into());
    }
    if !in_order {
        return Err("events are not in submission order".into());
    }
    // A forced keyframe that was dropped must move to the next encoded frame.
    let forced_token = 0xF00D_0000 + 5 * 3;
    let dropped_forced = events
        .iter()
        .any(|e| matches!(e, EncoderEvent::Dropped(d) if d.token == forced_token));
    if dropped_forced {
        let next = pk
            .iter()
            .find(|p| p.token > forced_token)
            .ok_or("nothing encoded after the forced frame")?;
        if !next.keyframe {
            return Err(
                "forced keyframe was dropped and the next encoded frame is not an IDR".into(),
            );
        }
    } else if !pk.iter().any(|p| p.token == forced_token && p.keyframe) {
        return Err("forced frame was encoded but is not an IDR".into());
    }
    Ok(())
}

/// Every picture `dec` outputs for `pk` (each sent with its pts), then what it still holds.
fn decode_all(
    dec: &mut dyn crate::decode::VideoDecoder,
    pk: &[&EncodedPacket],
) -> Result<Vec<crate::decode::Picture>, String> {
    let mut pictures = Vec::new();
    for p in pk {
        pictures.extend(
            dec.send(&p.data, Some(p.pts_ns))
                .map_err(|e| e.to_string())?,
        );
    }
    pictures.extend(dec.drain().map_err(|e| e.to_string())?);
    Ok(pictures)
}

/// The B-frame profile ([`EncoderConfig::bframes`]): every frame comes out once, in decode
/// order (some frames really reordered), with strictly increasing dts never later than the
/// pts; IDRs land where asked; the SPS declares the reordering; and a decoder that reorders
/// restores presentation order, each picture close to its source.
fn check_bframes(config: &EncoderConfig) -> Result<(), String> {
    const FRAMES: u64 = 40;
    let forced = [17u64];
    let (events, _) = encode(config, FRAMES, &forced).map_err(|e| e.to_string())?;
    let pk = packets(&events);
    if pk.len() as u64 != FRAMES || events.len() != pk.len() {
        return Err(format!(
            "{} packets ({} events) for {FRAMES} frames",
            pk.len(),
            events.len()
        ));
    }
    let index = |p: &EncodedPacket| (p.token - 0xF00D_0000) / 3;
    let mut seen: Vec<u64> = pk.iter().map(|p| index(p)).collect();
    let reordered = seen.windows(2).any(|w| w[0] > w[1]);
    seen.sort_unstable();
    if seen != (0..FRAMES).collect::<Vec<_>>() {
        return Err("not every frame came out exactly once".into());
    }
    if !reordered {
        return Err("no frame was reordered: B-frames were not used".into());
    }
    let dur = config.frame_duration_ns();
    for (k, p) in pk.iter().enumerate() {
        if p.pts_ns != 1_000 + index(p) as i64 * dur {
            return Err(format!("packet {k}: pts {} is not its frame's", p.pts_ns));
        }
        if p.dts_ns > p.pts_ns {
            return Err(format!(
                "packet {k}: dts {} after pts {}",
                p.dts_ns, p.pts_ns
            ));
        }
        if k > 0 && p.dts_ns <= pk[k - 1].dts_ns {
            return Err(format!(
                "packet {k}: dts {} not after {}",
                p.dts_ns,
                pk[k - 1].dts_ns
            ));
        }
        let idr = types_of(p)?.contains(&NalType::IdrSlice);
        if idr != p.keyframe {
            return Err(format!(
                "packet {k}: keyframe flag {} but IDR = {idr}",
                p.keyframe
            ));
        }
    }
    if !pk[0].keyframe {
        return Err("the first packet is not an IDR".into());
    }
    let mut keyframes: Vec<u64> = pk.iter().filter(|p| p.keyframe).map(|p| index(p)).collect();
    keyframes.sort_unstable();
    let expected = expected_keyframes(FRAMES, config.keyframe_interval, &forced);
    if keyframes != expected {
        return Err(format!("keyframes at {keyframes:?}, expected {expected:?}"));
    }
    let sps_nal = nals_of(pk[0])?
        .into_iter()
        .find(|n| nal_type(n) == Some(NalType::Sps))
        .ok_or("first packet has no SPS")?;
    let sps = parse_sps(sps_nal).map_err(|e| e.to_string())?;
    let reorder = sps
        .vui
        .as_ref()
        .and_then(|v| v.bitstream_restriction.as_ref())
        .map(|b| b.max_num_reorder_frames)
        .ok_or("SPS has no bitstream restriction")?;
    if reorder == 0 {
        return Err("B-frames but the SPS says max_num_reorder_frames = 0".into());
    }
    let mut checked = 0;
    for factory in decoders() {
        let mut dec = factory()?;
        if !dec.reorders() {
            continue;
        }
        checked += 1;
        let name = dec.name();
        let pictures = decode_all(dec.as_mut(), &pk)?;
        let pts: Vec<Option<i64>> = pictures.iter().map(|p| p.pts).collect();
        let want: Vec<Option<i64>> = (0..FRAMES).map(|i| Some(1_000 + i as i64 * dur)).collect();
        if pts != want {
            return Err(format!("{name}: pictures out in pts order {pts:?}"));
        }
        let (w, h) = (config.width, config.height);
        for (i, pic) in pictures.iter().enumerate() {
            let err = luma_error(&pic.image, &synthetic_frame(w, h, i as u64), w, h);
            if err > 12.0 {
                return Err(format!(
                    "{name}: picture {i} is off by {err:.1} luma levels"
                ));
            }
        }
    }
    if checked == 0 {
        return Err("no compiled-in decoder reorders; build with the `libav` feature".into());
    }
    Ok(())
}

/// Intra refresh ([`EncoderConfig::intra_refresh`]): only the first frame and the forced one
/// (a joining viewer) are IDRs, every other frame is a P picture (the refresh is intra
/// macroblocks inside them), and the stream decodes to the source.
fn check_intra_refresh(config: &EncoderConfig) -> Result<(), String> {
    const FRAMES: u64 = 60;
    let forced = [33u64];
    let (events, _) = encode(config, FRAMES, &forced).map_err(|e| e.to_string())?;
    let pk = packets(&events);
    if pk.len() as u64 != FRAMES {
        return Err(format!("{} packets for {FRAMES} frames", pk.len()));
    }
    let keyframes: Vec<u64> = pk
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, _)| i as u64)
        .collect();
    if keyframes != [0, 33] {
        return Err(format!("IDRs at {keyframes:?}, expected [0, 33]"));
    }
    // The refresh is intra macroblocks inside P slices: no other frame is an I picture.
    let mut reader = framecast_h264::slice::RefReader::new();
    for (i, p) in pk.iter().enumerate() {
        let annexb = match p.format {
            OutputFormat::AnnexB => p.data.to_vec(),
            OutputFormat::Avcc => {
                framecast_h264::nal::avcc_to_annexb(&p.data, 4).map_err(|e| e.to_string())?
            }
        };
        let refs = reader
            .read_annexb(&annexb)
            .map_err(|e| format!("packet {i}: {e}"))?
            .ok_or(format!("packet {i} has no slice"))?;
        if refs.intra && !p.keyframe {
            return Err(format!("frame {i} is an I picture"));
        }
    }
    for factory in decoders() {
        let mut dec = factory()?;
        let name = dec.name();
        let pictures = decode_all(dec.as_mut(), &pk)?;
        if pictures.len() as u64 != FRAMES {
            return Err(format!("{name}: decoded {} of {FRAMES}", pictures.len()));
        }
        let (w, h) = (config.width, config.height);
        for i in [10, 32, 59] {
            let err = luma_error(&pictures[i].image, &synthetic_frame(w, h, i as u64), w, h);
            if err > 12.0 {
                return Err(format!(
                    "{name}: picture {i} is off by {err:.1} luma levels"
                ));
            }
        }
    }
    Ok(())
}

/// Run the whole suite against `backend` in `mode`.
pub fn run(backend: &str, mode: EncodeMode) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut add = |name, result| checks.push(Check { name, result });

    let c = base_config(backend, mode, 320, 240);
    add("stream invariants: IDR first, SPS/PPS on every IDR, order, tokens, pts==dts, VUI, codec string, decodes 1-in-1-out", check_stream(&c, 45, &[]));

    let mut c = base_config(backend, mode, 320, 240);
    c.keyframe_interval = 10;
    add(
        "keyframe cadence equals the interval (10)",
        check_stream(&c, 35, &[]),
    );

    let c = base_config(backend, mode, 320, 240);
    add(
        "forced keyframes land on exactly those frames and restart the cadence",
        check_stream(&c, 50, &[7, 8, 23]),
    );

    let mut c = base_config(backend, mode, 320, 240);
    c.keyframe_interval = 0;
    add(
        "interval 0: only the first and forced frames are IDRs",
        check_stream(&c, 40, &[31]),
    );

    let mut c = base_config(backend, mode, 320, 240);
    c.color = ColorSpace::new(Matrix::Bt601, Range::Full);
    add(
        "VUI carries BT.601 full-range colour when configured",
        check_stream(&c, 5, &[]),
    );

    let mut c = base_config(backend, mode, 320, 240);
    c.output = OutputFormat::Avcc;
    add(
        "AVCC output: length-prefixed packets, avcC matches the in-band SPS",
        check_stream(&c, 12, &[4]),
    );

    let c = base_config(backend, mode, 33, 17);
    add(
        "odd size 33x17 is accepted, padded and cropped",
        check_stream(&c, 6, &[]),
    );

    let c = base_config(backend, mode, 1280, 720);
    add("720p stream", check_stream(&c, 8, &[3]));

    let descriptor = crate::registry::find(backend).ok();
    if descriptor.is_some_and(|d| d.bframes) {
        let mut c = base_config(backend, mode, 320, 240);
        c.bframes = 2;
        c.profile = crate::ProfileHint::High;
        add(
            "B-frame profile: decode order, monotonic dts <= pts, IDRs where asked, SPS declares reordering, a reordering decoder restores pts order",
            check_bframes(&c),
        );
    }
    if descriptor.is_some_and(|d| d.intra_refresh) {
        let mut c = base_config(backend, mode, 320, 240);
        c.intra_refresh = true;
        c.keyframe_interval = 15;
        add(
            "intra refresh: IDRs only first and forced, every other frame a P picture, decodes",
            check_intra_refresh(&c),
        );
    }

    if mode == EncodeMode::Sync {
        let c = base_config(backend, mode, 640, 360);
        add(
            "live rate change down and back above the creation rate: no IDR, frames follow the rate, decodes to the source",
            check_live_rate(&c),
        );
        let c = base_config(backend, mode, 320, 240);
        add(
            "recovery without a keyframe: a decoder that twice missed 9 frames decodes every recovery P-frame and what follows bit-exactly",
            check_recovery(&c, &decoders()),
        );
    }

    if let EncodeMode::Pipelined { .. } = mode {
        for policy in [
            crate::BackpressurePolicy::DropOld,
            crate::BackpressurePolicy::DropNew,
            crate::BackpressurePolicy::FailFast,
        ] {
            let c = base_config(
                backend,
                EncodeMode::Pipelined {
                    max_in_flight: 1,
                    policy,
                },
                640,
                360,
            );
            let name = match policy {
                crate::BackpressurePolicy::DropOld => "DropOld: every frame is encoded or reported dropped, in order; forced IDR survives",
                crate::BackpressurePolicy::DropNew => "DropNew: every frame is encoded or reported dropped, in order; forced IDR survives",
                _ => "FailFast: Busy leaves the frame with the caller; nothing is lost",
            };
            add(name, check_accounting(&c));
        }
    }
    checks
}
