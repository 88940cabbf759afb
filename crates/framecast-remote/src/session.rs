//! The media side of one server session, synchronous and free of sockets: CONFIGURE → settings
//! → [`MediaSession`] (an encoder, a decoder, or both), then FRAME/PACKET in, messages out.
//!
//! The server shell runs a [`MediaSession`] on a dedicated thread per connection, so encoding
//! never blocks the async runtime.

use crate::compress::{compress_plane, decompress_plane, Compression};
use crate::wire::{
    error_code, pix_fmt, Configure, ConfigureAck, FrameMsg, Message, PacketMsg, Plane, SideData,
    FLAG_KEYFRAME, NOPTS,
};
use bytes::Bytes;
use framecast_core::{ColorSpace, Frame, Matrix, Primaries, Range, Transfer, Yuv420Image};
use framecast_encode::{
    BackpressurePolicy, EncodeMode, EncodedPacket, Encoder, EncoderConfig, EncoderEvent, FrameMeta,
    OutputFormat, ProfileHint,
};
use framecast_h264::avcc::AvcDecoderConfig;
use std::collections::{BTreeMap, HashMap, VecDeque};

#[cfg(feature = "openh264")]
use framecast_encode::decode::H264Decoder;

/// Stand-in when the build has no decoder: decode and transcode modes fail at CONFIGURE.
#[cfg(not(feature = "openh264"))]
struct H264Decoder;

#[cfg(not(feature = "openh264"))]
impl H264Decoder {
    fn new() -> Result<Self, framecast_encode::EncodeError> {
        Err(framecast_encode::EncodeError::InvalidConfig(
            "this build has no H.264 decoder (rebuild with feature openh264)".into(),
        ))
    }
    fn decode(&mut self, _: &[u8]) -> Result<Option<Yuv420Image>, framecast_encode::EncodeError> {
        Ok(None)
    }
    fn flush(&mut self) -> Result<Vec<Yuv420Image>, framecast_encode::EncodeError> {
        Ok(Vec::new())
    }
}

/// What the server can do, advertised in HELLO_ACK and enforced at CONFIGURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCaps {
    /// Capability strings, in advertising order.
    pub capabilities: Vec<String>,
    /// Encoder backend used for encode and transcode (`None`: no usable encoder here).
    pub backend: Option<String>,
    /// Whether H.264 decoding (decode and transcode modes) is available.
    pub decoder: bool,
}

impl ServerCaps {
    /// Probe this machine: `h264` only when an encoder backend is available, pixel formats
    /// NV12 and BGRA (BGRA is converted by framecast's converter), `packet_ack.v1` when
    /// transcoding is possible. No hardware-frame, HEVC, 10-bit or typed side-data claims.
    pub fn probe(preferred_backend: Option<&str>) -> Self {
        let available: Vec<&'static str> = framecast_encode::registry::probe_all()
            .into_iter()
            .filter(|s| {
                matches!(
                    s.availability,
                    framecast_encode::backend::Availability::Available { .. }
                )
            })
            .map(|s| s.name)
            .collect();
        let backend = match preferred_backend {
            Some(name) => available
                .iter()
                .find(|n| n.eq_ignore_ascii_case(name))
                .map(|n| n.to_string()),
            None => available.first().map(|n| n.to_string()),
        };
        let decoder = cfg!(feature = "openh264");
        let mut capabilities = Vec::new();
        if backend.is_some() || decoder {
            capabilities.push("h264".to_string());
        }
        if backend.is_some() {
            capabilities.push("pixfmt.nv12".to_string());
            capabilities.push("pixfmt.bgra".to_string());
        }
        if backend.is_some() && decoder {
            capabilities.push("packet_ack.v1".to_string());
        }
        ServerCaps {
            capabilities,
            backend,
            decoder,
        }
    }

    /// Whether `cap` is advertised.
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

/// Session mode (CONFIGURE option `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// FRAME in, PACKET out (the default).
    Encode,
    /// PACKET in, FRAME out.
    Decode,
    /// PACKET in, PACKET out.
    Transcode,
}

impl Mode {
    /// Option value.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Encode => "encode",
            Mode::Decode => "decode",
            Mode::Transcode => "transcode",
        }
    }
}

/// A CONFIGURE, validated and mapped onto framecast's types.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Mode.
    pub mode: Mode,
    /// Picture width from CONFIGURE.
    pub width: u32,
    /// Picture height from CONFIGURE.
    pub height: u32,
    /// Wire pixel format of FRAMEs (input in encode mode; NV12 output otherwise).
    pub pix_fmt: u8,
    /// FRAME plane compression.
    pub compression: Compression,
    /// Time base (num, den).
    pub time_base: (u32, u32),
    /// Frame rate (num, den); (0, 0) when unknown (decode/transcode).
    pub frame_rate: (u32, u32),
    /// Encoder configuration (encode and transcode).
    pub encoder: Option<EncoderConfig>,
    /// PACKET_ACK credits negotiated (transcode).
    pub packet_ack: bool,
    /// Output size in transcode mode.
    pub out_size: Option<(u32, u32)>,
    /// CONFIGURE extradata.
    pub extradata: Bytes,
}

impl SessionSettings {
    /// Nominal duration of one frame in time-base units (at least 1).
    pub fn frame_duration(&self) -> i64 {
        let (tn, td) = self.time_base;
        let (fnum, fden) = if self.frame_rate.0 > 0 && self.frame_rate.1 > 0 {
            self.frame_rate
        } else {
            (30, 1)
        };
        let d = (td as f64 * fden as f64) / (tn.max(1) as f64 * fnum as f64);
        (d.round() as i64).max(1)
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("option {key}={v:?} is not a valid number"))
}

fn parse_flag(key: &str, v: &str) -> Result<bool, String> {
    match v.trim() {
        "0" | "false" | "no" => Ok(false),
        "1" | "true" | "yes" => Ok(true),
        _ => Err(format!("option {key}={v:?} should be 0 or 1")),
    }
}

/// Map CONFIGURE onto [`SessionSettings`]. The error text becomes an ERROR code 1
/// "configure failed: ..." message.
pub fn parse_configure(
    c: &Configure,
    hello_codec: &str,
    caps: &ServerCaps,
    max_message_bytes: u32,
) -> Result<SessionSettings, String> {
    if !hello_codec.eq_ignore_ascii_case("h264") {
        return Err(format!(
            "codec {hello_codec:?} is not supported: this server does h264 only"
        ));
    }
    let mode = match c.option("mode").map(str::trim) {
        None | Some("") | Some("encode") => Mode::Encode,
        Some("decode") => Mode::Decode,
        Some("transcode") => Mode::Transcode,
        Some(other) => {
            return Err(format!(
                "mode {other:?} is unknown: use encode, decode or transcode"
            ))
        }
    };
    let compression = match c.option("wire_compression") {
        None => Compression::None,
        Some(v) => Compression::from_option(v).map_err(|e| e.to_string())?,
    };
    let max_dim = i32::MAX as u32;
    if c.width == 0 || c.height == 0 || c.width > max_dim || c.height > max_dim {
        return Err(format!(
            "size {}x{}: width and height must be between 1 and {max_dim}",
            c.width, c.height
        ));
    }
    if c.width > framecast_core::MAX_DIMENSION || c.height > framecast_core::MAX_DIMENSION {
        return Err(format!(
            "size {}x{} exceeds this server's maximum of {} per side",
            c.width,
            c.height,
            framecast_core::MAX_DIMENSION
        ));
    }
    if c.tb_num == 0 || c.tb_den == 0 || c.tb_den > i32::MAX as u32 {
        return Err(format!(
            "time base {}/{}: numerator must be > 0 and denominator between 1 and {}",
            c.tb_num,
            c.tb_den,
            i32::MAX
        ));
    }
    let frame_bytes = (c.width as u64) * (c.height as u64) * 4;
    if frame_bytes > max_message_bytes as u64 {
        return Err(format!(
            "a {}x{} frame ({frame_bytes} bytes) exceeds max-message-bytes {max_message_bytes}",
            c.width, c.height
        ));
    }
    let scale_keys = ["out_width", "out_height", "scale_mode", "out_codec"];
    if mode != Mode::Transcode {
        if let Some(k) = scale_keys.iter().find(|k| c.option(k).is_some()) {
            return Err(format!(
                "option {k} is only valid in transcode mode (mode is {})",
                mode.name()
            ));
        }
    }
    if mode == Mode::Encode && (c.fr_num == 0 || c.fr_den == 0) {
        return Err(format!(
            "frame rate {}/{}: encode mode needs a frame rate > 0",
            c.fr_num, c.fr_den
        ));
    }
    if mode != Mode::Encode && !caps.decoder {
        return Err(format!(
            "{} mode needs an H.264 decoder, which this build lacks",
            mode.name()
        ));
    }
    match mode {
        Mode::Encode => {
            let cap = match c.pix_fmt {
                pix_fmt::NV12 => "pixfmt.nv12",
                pix_fmt::BGRA => "pixfmt.bgra",
                other => {
                    return Err(format!(
                        "pixel format {other} ({}) is not supported; this server accepts nv12 (1) and bgra (3)",
                        pix_fmt::name(other)
                    ))
                }
            };
            if !caps.has(cap) {
                return Err(format!(
                    "pixel format {cap} is not available on this server"
                ));
            }
        }
        Mode::Decode => {
            if !matches!(c.pix_fmt, 0 | pix_fmt::NV12) {
                return Err(format!(
                    "decode output pixel format {} ({}) is not supported; this server outputs nv12 (1)",
                    c.pix_fmt,
                    pix_fmt::name(c.pix_fmt)
                ));
            }
            if c.extradata.is_empty() {
                return Err(
                    "decode mode needs extradata (avcC or Annex B SPS/PPS) in CONFIGURE".into(),
                );
            }
        }
        Mode::Transcode => {}
    }
    if let Some(codec) = c.option("out_codec") {
        if !codec.eq_ignore_ascii_case("h264") {
            return Err(format!(
                "out_codec {codec:?} is not supported: this server transcodes to h264 only"
            ));
        }
    }
    let out_size = match (c.option("out_width"), c.option("out_height")) {
        (None, None) => None,
        (Some(w), Some(h)) => {
            let w: u32 = parse_num("out_width", w)?;
            let h: u32 = parse_num("out_height", h)?;
            if w == 0
                || h == 0
                || w > framecast_core::MAX_DIMENSION
                || h > framecast_core::MAX_DIMENSION
            {
                return Err(format!("output size {w}x{h} is out of range"));
            }
            Some((w, h))
        }
        _ => return Err("out_width and out_height must be given together".into()),
    };
    if let Some(sm) = c.option("scale_mode") {
        match sm.trim() {
            "stretch" | "resize" | "scale" => {}
            "aspect" | "fit" | "letterbox" | "aspect_fill" | "aspectfill" | "fill" | "crop" => {
                return Err(format!(
                    "scale_mode {sm:?} is not supported by this server yet; use stretch"
                ))
            }
            other => {
                return Err(format!(
                    "scale_mode {other:?} is unknown: use stretch, aspect or aspect_fill"
                ))
            }
        }
    }
    let packet_ack = match c.option("packet_ack.v1") {
        Some(v) => parse_flag("packet_ack.v1", v)? && mode == Mode::Transcode,
        None => false,
    };

    let encoder = if mode == Mode::Decode {
        None
    } else {
        let backend = caps
            .backend
            .clone()
            .ok_or("no encoder backend is available on this server")?;
        let (w, h) = out_size.unwrap_or((c.width, c.height));
        let mut e = EncoderConfig::new(w, h);
        e.backend = backend;
        e.output = OutputFormat::AnnexB;
        if c.fr_num > 0 && c.fr_den > 0 {
            e.fps = c.fr_num as f64 / c.fr_den as f64;
        }
        e.bitrate = framecast_encode::default_bitrate(w, h, e.fps);
        e.keyframe_interval = (e.fps.round() as u32).max(1) * 2;
        apply_encoder_options(c, &mut e)?;
        e.validate().map_err(|err| err.to_string())?;
        Some(e)
    };
    Ok(SessionSettings {
        mode,
        width: c.width,
        height: c.height,
        pix_fmt: if mode == Mode::Encode {
            c.pix_fmt
        } else {
            pix_fmt::NV12
        },
        compression,
        time_base: (c.tb_num, c.tb_den),
        frame_rate: (c.fr_num, c.fr_den),
        encoder,
        packet_ack,
        out_size,
        extradata: c.extradata.clone(),
    })
}

/// Rate control, GOP, B-frames, profile and colour options → [`EncoderConfig`].
fn apply_encoder_options(c: &Configure, e: &mut EncoderConfig) -> Result<(), String> {
    let bitrate = c
        .option("bitrate")
        .map(|v| parse_num::<u64>("bitrate", v))
        .transpose()?;
    let maxrate = c
        .option("maxrate")
        .map(|v| parse_num::<u64>("maxrate", v))
        .transpose()?
        .filter(|&m| m > 0);
    if let Some(b) = bitrate.filter(|&b| b > 0) {
        e.bitrate = b.min(u32::MAX as u64) as u32;
    }
    // No VBV in the encoder contract: maxrate caps the average target (and is the target when
    // no bitrate was given).
    if let Some(m) = maxrate {
        let m = m.min(u32::MAX as u64) as u32;
        if bitrate.is_none() || e.bitrate > m {
            e.bitrate = m;
        }
    }
    if let Some(g) = c.option("gop") {
        e.keyframe_interval = parse_num("gop", g)?;
    }
    if let Some(b) = c.option("max_b_frames") {
        let b: i64 = parse_num("max_b_frames", b)?;
        if b != 0 {
            return Err(format!(
                "max_b_frames={b} is not supported: this server encodes without B-frames (use 0)"
            ));
        }
    }
    if let Some(p) = c.option("profile") {
        e.profile = match p.trim().to_ascii_lowercase().as_str() {
            "66" | "578" | "baseline" | "constrained_baseline" => ProfileHint::ConstrainedBaseline,
            "77" | "main" => ProfileHint::Main,
            "100" | "high" => ProfileHint::High,
            "-99" | "" => e.profile,
            other => {
                return Err(format!(
                "profile {other} is not supported: use 66/578 (baseline), 77 (main) or 100 (high)"
            ))
            }
        };
    }
    if let Some(r) = c.option("realtime") {
        // OpenH264 always runs in real-time mode; accept the flag.
        let _ = parse_num::<i64>("realtime", r)?;
    }
    e.color = colour_from_options(c)?;
    Ok(())
}

/// FFmpeg's AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic
/// numbers → [`ColorSpace`]. Unspecified (0 or 2) keeps the default (BT.709 limited).
fn colour_from_options(c: &Configure) -> Result<ColorSpace, String> {
    let num = |key: &str| -> Result<Option<i64>, String> {
        c.option(key).map(|v| parse_num::<i64>(key, v)).transpose()
    };
    let range = match num("color_range")? {
        None | Some(0) | Some(1) => Range::Limited,
        Some(2) => Range::Full,
        Some(v) => return Err(format!("color_range {v} is unknown (1 tv, 2 pc)")),
    };
    let matrix = match num("colorspace")? {
        None | Some(1) | Some(2) => Matrix::Bt709,
        Some(5) | Some(6) => Matrix::Bt601,
        Some(v) => {
            return Err(format!(
                "colorspace {v} is not supported (1 bt709, 5 bt470bg, 6 smpte170m)"
            ))
        }
    };
    let mut cs = ColorSpace::new(matrix, range);
    match num("color_primaries")? {
        None | Some(2) => {}
        Some(1) => cs.primaries = Primaries::Bt709,
        Some(5) => cs.primaries = Primaries::Bt601Pal,
        Some(6) => cs.primaries = Primaries::Bt601Ntsc,
        Some(v) => {
            return Err(format!(
                "color_primaries {v} is not supported (1 bt709, 5 bt470bg, 6 smpte170m)"
            ))
        }
    }
    match num("color_trc")? {
        None | Some(2) => {}
        Some(1) => cs.transfer = Transfer::Bt709,
        Some(6) => cs.transfer = Transfer::Smpte170m,
        Some(13) => cs.transfer = Transfer::Srgb,
        Some(v) => {
            return Err(format!(
                "color_trc {v} is not supported (1 bt709, 6 smpte170m, 13 iec61966-2-1)"
            ))
        }
    }
    Ok(cs)
}

/// Server timestamp rules (the reference's `TimestampTracker`): a frame whose PTS duplicates a
/// recent one is dropped; output DTS is kept ≤ PTS and made strictly increasing.
#[derive(Debug, Default, Clone)]
pub struct TimestampTracker {
    recent: VecDeque<i64>,
    last_dts: Option<i64>,
    last_pts: Option<i64>,
}

const RECENT_PTS: usize = 32;

impl TimestampTracker {
    /// A fresh tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Input side: `Some(pts)` to accept (a missing PTS becomes previous + `duration`), `None`
    /// when the PTS duplicates one of the recent inputs and the frame must be dropped.
    pub fn admit(&mut self, pts: i64, duration: i64) -> Option<i64> {
        let pts = if pts == NOPTS {
            self.last_pts
                .map_or(0, |p| p.saturating_add(duration.max(1)))
        } else {
            pts
        };
        if self.recent.contains(&pts) {
            return None;
        }
        if self.recent.len() == RECENT_PTS {
            self.recent.pop_front();
        }
        self.recent.push_back(pts);
        self.last_pts = Some(pts);
        Some(pts)
    }

    /// Output side: `(pts, dts)` for a packet of `pts` with no reordering: DTS = PTS, pushed to
    /// last DTS + 1 if needed, and PTS raised to DTS if that pushed it past PTS.
    pub fn stamp(&mut self, pts: i64) -> (i64, i64) {
        let mut dts = pts;
        if let Some(last) = self.last_dts {
            if dts <= last {
                dts = last.saturating_add(1);
            }
        }
        self.last_dts = Some(dts);
        (pts.max(dts), dts)
    }
}

/// A media failure during the session, sent as ERROR `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFailure {
    /// VTR1 error code.
    pub code: u32,
    /// Message.
    pub message: String,
}

impl SessionFailure {
    fn processing(message: impl Into<String>) -> Self {
        SessionFailure {
            code: error_code::PROCESSING_FAILED,
            message: message.into(),
        }
    }
    fn configure(message: impl Into<String>) -> Self {
        SessionFailure {
            code: error_code::CONFIGURE_FAILED,
            message: format!("configure failed: {}", message.into()),
        }
    }
}

/// Expected geometry of one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Minimum stride (bytes of one row).
    pub row_bytes: u32,
    /// Exact number of rows.
    pub height: u32,
}

/// The plane layouts of a wire pixel format at `width x height` (`None`: not a format this
/// server handles).
pub fn plane_layouts(fmt: u8, width: u32, height: u32) -> Option<Vec<PlaneLayout>> {
    let cw = width.div_ceil(2);
    let ch = height.div_ceil(2);
    match fmt {
        pix_fmt::NV12 => Some(vec![
            PlaneLayout {
                row_bytes: width,
                height,
            },
            PlaneLayout {
                row_bytes: 2 * cw,
                height: ch,
            },
        ]),
        pix_fmt::BGRA => Some(vec![PlaneLayout {
            row_bytes: width.checked_mul(4)?,
            height,
        }]),
        _ => None,
    }
}

/// Validate the planes of an input FRAME and decompress them (the reference's
/// `FramePlaneValidation`: plane count, exact heights, stride ≥ row bytes, size limits,
/// raw data ≥ stride × height, compressed data non-empty).
pub fn validate_and_decompress(
    planes: &[Plane],
    layouts: &[PlaneLayout],
    compression: Compression,
    max_decoded_bytes: u64,
) -> Result<Vec<Bytes>, String> {
    if planes.len() != layouts.len() {
        return Err(format!(
            "expected {} planes, got {}",
            layouts.len(),
            planes.len()
        ));
    }
    let mut total: u64 = 0;
    let mut out = Vec::with_capacity(planes.len());
    for (i, (p, l)) in planes.iter().zip(layouts).enumerate() {
        if p.stride == 0 || p.height == 0 {
            return Err(format!(
                "plane {i}: invalid plane geometry {}x{}",
                p.stride, p.height
            ));
        }
        if p.height != l.height {
            return Err(format!(
                "plane {i}: invalid plane height {}, expected {}",
                p.height, l.height
            ));
        }
        if p.stride < l.row_bytes {
            return Err(format!(
                "plane {i}: invalid plane stride {}, minimum {}",
                p.stride, l.row_bytes
            ));
        }
        let size = p.stride as u64 * p.height as u64;
        total += size;
        if size > max_decoded_bytes || total > max_decoded_bytes {
            return Err(format!(
                "plane {i}: decoded plane size {size} exceeds limit"
            ));
        }
        match compression {
            Compression::None if (p.data.len() as u64) < size => {
                return Err(format!(
                    "plane {i}: plane too small: {} bytes, stride {} x height {} needs {size}",
                    p.data.len(),
                    p.stride,
                    p.height
                ))
            }
            c if c != Compression::None && p.data.is_empty() => {
                return Err(format!("plane {i}: empty compressed plane"))
            }
            _ => {}
        }
        out.push(
            decompress_plane(compression, i, &p.data, size as usize).map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// Bytes of `planes` as NV12 output planes (tight strides) of an I420 picture.
fn nv12_planes(img: &Yuv420Image, compression: Compression) -> Vec<Plane> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let ys = img.y_stride();
    let cs = img.chroma_stride();
    let (y, u, v) = img.planes();
    let mut yb = Vec::with_capacity(w * h);
    for r in 0..h {
        yb.extend_from_slice(&y[r * ys..r * ys + w]);
    }
    let mut uv = Vec::with_capacity(2 * cw * ch);
    for r in 0..ch {
        let ur = &u[r * cs..r * cs + cw];
        let vr = &v[r * cs..r * cs + cw];
        for (a, b) in ur.iter().zip(vr) {
            uv.push(*a);
            uv.push(*b);
        }
    }
    vec![
        Plane {
            stride: w as u32,
            height: h as u32,
            data: compress_or_move(compression, yb),
        },
        Plane {
            stride: (2 * cw) as u32,
            height: ch as u32,
            data: compress_or_move(compression, uv),
        },
    ]
}

fn compress_or_move(compression: Compression, data: Vec<u8>) -> Bytes {
    match compression {
        Compression::None => Bytes::from(data),
        c => compress_plane(c, &data),
    }
}

/// Bilinear resize of one 8-bit plane.
fn resize_plane(src: &[u8], sw: usize, sh: usize, ss: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh];
    if sw == 0 || sh == 0 {
        return out;
    }
    for y in 0..dh {
        let fy = ((y as f64 + 0.5) * sh as f64 / dh as f64 - 0.5).max(0.0);
        let y0 = (fy as usize).min(sh - 1);
        let y1 = (y0 + 1).min(sh - 1);
        let wy = ((fy - y0 as f64) * 256.0) as u32;
        for x in 0..dw {
            let fx = ((x as f64 + 0.5) * sw as f64 / dw as f64 - 0.5).max(0.0);
            let x0 = (fx as usize).min(sw - 1);
            let x1 = (x0 + 1).min(sw - 1);
            let wx = ((fx - x0 as f64) * 256.0) as u32;
            let p = |xx: usize, yy: usize| src[yy * ss + xx] as u32;
            let top = p(x0, y0) * (256 - wx) + p(x1, y0) * wx;
            let bot = p(x0, y1) * (256 - wx) + p(x1, y1) * wx;
            out[y * dw + x] = ((top * (256 - wy) + bot * wy + 32768) >> 16) as u8;
        }
    }
    out
}

/// Encode a frame through a throw-away encoder with the same configuration and return its
/// avcC. The framecast `Encoder` only knows its parameter sets after the first packet, but
/// CONFIGURE_ACK must carry them before any frame arrives; OpenH264's SPS/PPS depend only on
/// the configuration, so they equal what the session's own encoder will emit (the loopback
/// tests check this). This is the reference's older "warm-up" approach, done on a separate
/// encoder so the session's first frame is still a natural IDR.
pub fn prime_avcc(config: &EncoderConfig) -> Result<Vec<u8>, String> {
    let mut cfg = config.clone();
    cfg.mode = EncodeMode::Sync;
    cfg.output = OutputFormat::AnnexB;
    let mut enc = Encoder::new(cfg).map_err(|e| e.to_string())?;
    let (w, h) = (config.width as usize, config.height as usize);
    let y = vec![16u8; w * h];
    let uv = vec![128u8; 2 * w.div_ceil(2) * h.div_ceil(2)];
    let frame = Frame::nv12(&y, w, &uv, 2 * w.div_ceil(2), config.width, config.height)
        .map_err(|e| e.to_string())?;
    let _ = enc
        .send_frame(
            &frame,
            FrameMeta {
                token: 0,
                pts_ns: 0,
                force_keyframe: true,
            },
        )
        .map_err(|e| e.to_string())?;
    let _ = enc.flush().map_err(|e| e.to_string())?;
    enc.avcc()
        .ok_or_else(|| "the encoder produced no parameter sets".to_string())
}

struct Pending {
    pts: i64,
    duration: i64,
    side_data: Vec<SideData>,
}

/// The encoder half shared by encode and transcode.
struct EncodeHalf {
    encoder: Encoder,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    ts: TimestampTracker,
    frame_duration: i64,
    encode_ms: Vec<f64>,
}

impl EncodeHalf {
    fn new(config: &EncoderConfig, frame_duration: i64) -> Result<Self, String> {
        let mut cfg = config.clone();
        // Conversion/decompression on the session thread overlaps encoding on the encoder's.
        cfg.mode = EncodeMode::Pipelined {
            max_in_flight: 2,
            policy: BackpressurePolicy::Block,
        };
        Ok(EncodeHalf {
            encoder: Encoder::new(cfg).map_err(|e| e.to_string())?,
            pending: HashMap::new(),
            next_token: 0,
            ts: TimestampTracker::new(),
            frame_duration,
            encode_ms: Vec::new(),
        })
    }

    fn send(
        &mut self,
        frame: &Frame<'_>,
        pts: i64,
        duration: i64,
        force: bool,
        side_data: Vec<SideData>,
        out: &mut Vec<Message>,
    ) -> Result<(), SessionFailure> {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(
            token,
            Pending {
                pts,
                duration: if duration > 0 {
                    duration
                } else {
                    self.frame_duration
                },
                side_data,
            },
        );
        let _ = self
            .encoder
            .send_frame(
                frame,
                FrameMeta {
                    token,
                    pts_ns: pts,
                    force_keyframe: force,
                },
            )
            .map_err(|e| SessionFailure::processing(format!("encode failed: {e}")))?;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        while let Some(ev) = self
            .encoder
            .receive()
            .map_err(|e| SessionFailure::processing(format!("encode failed: {e}")))?
        {
            self.event(ev, out);
        }
        Ok(())
    }

    fn event(&mut self, ev: EncoderEvent, out: &mut Vec<Message>) {
        match ev {
            EncoderEvent::Packet(p) => {
                let msg = self.packet(p);
                out.push(msg);
            }
            EncoderEvent::Dropped(d) => {
                self.pending.remove(&d.token);
            }
        }
    }

    fn packet(&mut self, p: EncodedPacket) -> Message {
        let info = self.pending.remove(&p.token).unwrap_or(Pending {
            pts: p.pts_ns,
            duration: self.frame_duration,
            side_data: Vec::new(),
        });
        self.encode_ms
            .push(p.timings.encode_ms + p.timings.convert_ms);
        let (pts, dts) = self.ts.stamp(info.pts);
        Message::Packet(PacketMsg {
            pts,
            dts,
            duration: info.duration,
            flags: if p.keyframe { FLAG_KEYFRAME } else { 0 },
            data: p.data,
            side_data: info.side_data,
        })
    }

    /// Wait for one event while frames are inside the encoder; `false` when none are.
    fn wait_one(&mut self, out: &mut Vec<Message>) -> Result<bool, SessionFailure> {
        if self.encoder.in_flight() == 0 {
            return Ok(false);
        }
        match self
            .encoder
            .receive_blocking()
            .map_err(|e| SessionFailure::processing(format!("encode failed: {e}")))?
        {
            Some(ev) => {
                self.event(ev, out);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn flush(&mut self, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let events = self
            .encoder
            .flush()
            .map_err(|e| SessionFailure::processing(format!("encode flush failed: {e}")))?;
        for ev in events {
            self.event(ev, out);
        }
        Ok(())
    }
}

/// The decoder half shared by decode and transcode.
struct DecodeHalf {
    decoder: H264Decoder,
    /// Length size when the extradata was avcC and packets may be length-prefixed.
    avcc_length: Option<u8>,
    /// PTS of packets fed but not yet output; a picture takes the smallest (display order).
    pending: BTreeMap<i64, (u32, i64, Vec<SideData>)>,
    frame_duration: i64,
    last_pts: Option<i64>,
}

fn is_annexb(d: &[u8]) -> bool {
    d.starts_with(&[0, 0, 1]) || d.starts_with(&[0, 0, 0, 1])
}

impl DecodeHalf {
    fn new(extradata: &[u8], frame_duration: i64) -> Result<Self, String> {
        let mut decoder = H264Decoder::new().map_err(|e| e.to_string())?;
        let mut avcc_length = None;
        if !extradata.is_empty() {
            let annexb = if is_annexb(extradata) {
                extradata.to_vec()
            } else {
                let rec = AvcDecoderConfig::parse(extradata)
                    .map_err(|e| format!("extradata is neither Annex B nor a valid avcC: {e}"))?;
                avcc_length = Some(rec.length_size);
                rec.parameter_sets_annexb()
            };
            decoder
                .decode(&annexb)
                .map_err(|e| format!("extradata rejected by the decoder: {e}"))?;
        }
        Ok(DecodeHalf {
            decoder,
            avcc_length,
            pending: BTreeMap::new(),
            frame_duration,
            last_pts: None,
        })
    }

    /// Feed one packet; returns decoded pictures with (pts, flags, duration, side data).
    #[allow(clippy::type_complexity)]
    fn feed(
        &mut self,
        p: PacketMsg,
    ) -> Result<Vec<(Yuv420Image, i64, u32, i64, Vec<SideData>)>, SessionFailure> {
        let data: std::borrow::Cow<'_, [u8]> = match self.avcc_length {
            Some(n) if !is_annexb(&p.data) => framecast_h264::nal::avcc_to_annexb(&p.data, n)
                .map(Into::into)
                .map_err(|e| {
                    SessionFailure::processing(format!("bad length-prefixed packet: {e}"))
                })?,
            _ => (&p.data[..]).into(),
        };
        let mut pts = p.pts;
        if pts == NOPTS {
            pts = if p.dts != NOPTS {
                p.dts
            } else {
                self.last_pts.map_or(0, |l| l + self.frame_duration)
            };
        }
        self.last_pts = Some(pts);
        let duration = if p.duration > 0 {
            p.duration
        } else {
            self.frame_duration
        };
        self.pending
            .entry(pts)
            .or_insert((p.flags & FLAG_KEYFRAME, duration, p.side_data));
        let mut out = Vec::new();
        if let Some(img) = self
            .decoder
            .decode(&data)
            .map_err(|e| SessionFailure::processing(format!("decode failed: {e}")))?
        {
            out.push(self.stamp(img));
        }
        Ok(out)
    }

    fn stamp(&mut self, img: Yuv420Image) -> (Yuv420Image, i64, u32, i64, Vec<SideData>) {
        match self.pending.pop_first() {
            Some((pts, (flags, dur, sd))) => (img, pts, flags, dur, sd),
            None => {
                let pts = self.last_pts.map_or(0, |l| l + self.frame_duration);
                self.last_pts = Some(pts);
                (img, pts, 0, self.frame_duration, Vec::new())
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn flush(
        &mut self,
    ) -> Result<Vec<(Yuv420Image, i64, u32, i64, Vec<SideData>)>, SessionFailure> {
        let pics = self
            .decoder
            .flush()
            .map_err(|e| SessionFailure::processing(format!("decode flush failed: {e}")))?;
        Ok(pics.into_iter().map(|img| self.stamp(img)).collect())
    }
}

enum Kind {
    Encode {
        enc: EncodeHalf,
        layouts: Vec<PlaneLayout>,
        pix_fmt: u8,
        width: u32,
        height: u32,
        max_frame_bytes: u64,
    },
    Decode {
        dec: DecodeHalf,
        ts: TimestampTracker,
    },
    Transcode {
        dec: DecodeHalf,
        enc: EncodeHalf,
        out: (u32, u32),
    },
}

/// Counters of one session for the SUMMARY line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    /// FRAMEs (encode) or PACKETs (decode/transcode) accepted.
    pub inputs: u64,
    /// Inputs dropped for a duplicate PTS.
    pub dropped: u64,
    /// PACKETs or FRAMEs produced.
    pub outputs: u64,
}

/// One configured session.
pub struct MediaSession {
    kind: Kind,
    compression: Compression,
    packet_ack: bool,
    stats: MediaStats,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("compression", &self.compression)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// Build the encoder and/or decoder and the CONFIGURE_ACK (with the avcC of the output
    /// stream in encode and transcode modes). Errors are ERROR code 1 "configure failed: ...".
    pub fn new(
        s: &SessionSettings,
        max_message_bytes: u32,
    ) -> Result<(MediaSession, ConfigureAck), SessionFailure> {
        let dur = s.frame_duration();
        let mut extradata = Bytes::new();
        let kind = match s.mode {
            Mode::Encode => {
                let cfg = s
                    .encoder
                    .as_ref()
                    .ok_or_else(|| SessionFailure::configure("no encoder configuration"))?;
                extradata = Bytes::from(prime_avcc(cfg).map_err(SessionFailure::configure)?);
                Kind::Encode {
                    enc: EncodeHalf::new(cfg, dur).map_err(SessionFailure::configure)?,
                    layouts: plane_layouts(s.pix_fmt, s.width, s.height).ok_or_else(|| {
                        SessionFailure::configure(format!("pixel format {} unsupported", s.pix_fmt))
                    })?,
                    pix_fmt: s.pix_fmt,
                    width: s.width,
                    height: s.height,
                    max_frame_bytes: max_message_bytes as u64,
                }
            }
            Mode::Decode => Kind::Decode {
                dec: DecodeHalf::new(&s.extradata, dur).map_err(SessionFailure::configure)?,
                ts: TimestampTracker::new(),
            },
            Mode::Transcode => {
                let cfg = s
                    .encoder
                    .as_ref()
                    .ok_or_else(|| SessionFailure::configure("no encoder configuration"))?;
                extradata = Bytes::from(prime_avcc(cfg).map_err(SessionFailure::configure)?);
                Kind::Transcode {
                    dec: DecodeHalf::new(&s.extradata, dur).map_err(SessionFailure::configure)?,
                    enc: EncodeHalf::new(cfg, dur).map_err(SessionFailure::configure)?,
                    out: (cfg.width, cfg.height),
                }
            }
        };
        if extradata.len() > u16::MAX as usize {
            extradata.truncate(u16::MAX as usize);
        }
        let ack = ConfigureAck {
            status: 0,
            extradata,
            pix_fmt: s.pix_fmt,
            warnings: Vec::new(),
        };
        Ok((
            MediaSession {
                kind,
                compression: s.compression,
                packet_ack: s.packet_ack,
                stats: MediaStats::default(),
            },
            ack,
        ))
    }

    /// Counters so far.
    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    /// Per-frame encode times in ms (convert + encode), for the SUMMARY line.
    pub fn encode_ms(&self) -> &[f64] {
        match &self.kind {
            Kind::Encode { enc, .. } | Kind::Transcode { enc, .. } => &enc.encode_ms,
            Kind::Decode { .. } => &[],
        }
    }

    /// Process one FRAME or PACKET; outputs are appended to `out`. A message of the wrong
    /// kind for the mode is a bad request (code 4).
    pub fn handle(&mut self, msg: Message, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let before = out.len();
        let r = self.handle_inner(msg, out);
        self.stats.outputs += out[before..]
            .iter()
            .filter(|m| matches!(m, Message::Packet(_) | Message::Frame(_)))
            .count() as u64;
        r
    }

    fn handle_inner(&mut self, msg: Message, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let compression = self.compression;
        match (&mut self.kind, msg) {
            (
                Kind::Encode {
                    enc,
                    layouts,
                    pix_fmt: fmt,
                    width,
                    height,
                    max_frame_bytes,
                },
                Message::Frame(f),
            ) => {
                let planes =
                    validate_and_decompress(&f.planes, layouts, compression, *max_frame_bytes)
                        .map_err(SessionFailure::processing)?;
                let duration = if f.duration > 0 {
                    f.duration
                } else {
                    enc.frame_duration
                };
                let Some(pts) = enc.ts.admit(f.pts, duration) else {
                    self.stats.dropped += 1;
                    tracing::debug!(pts = f.pts, "duplicate PTS: frame dropped");
                    return Ok(());
                };
                self.stats.inputs += 1;
                let frame = match *fmt {
                    pix_fmt::NV12 => Frame::nv12(
                        &planes[0],
                        f.planes[0].stride as usize,
                        &planes[1],
                        f.planes[1].stride as usize,
                        *width,
                        *height,
                    ),
                    _ => Frame::bgra8(&planes[0], *width, *height, f.planes[0].stride as usize),
                }
                .map_err(|e| SessionFailure::processing(format!("bad frame: {e}")))?;
                enc.send(
                    &frame,
                    pts,
                    duration,
                    f.flags & FLAG_KEYFRAME != 0,
                    f.side_data,
                    out,
                )
            }
            (Kind::Decode { dec, ts }, Message::Packet(p)) => {
                self.stats.inputs += 1;
                for (img, pts, flags, dur, sd) in dec.feed(p)? {
                    let (pts, _) = ts.stamp(pts);
                    out.push(Message::Frame(FrameMsg {
                        pts,
                        duration: dur,
                        flags,
                        planes: nv12_planes(&img, compression),
                        side_data: sd,
                    }));
                }
                Ok(())
            }
            (
                Kind::Transcode {
                    dec,
                    enc,
                    out: size,
                },
                Message::Packet(p),
            ) => {
                self.stats.inputs += 1;
                for (img, pts, _flags, dur, sd) in dec.feed(p)? {
                    transcode_picture(enc, *size, &img, pts, dur, sd, out)?;
                }
                if self.packet_ack {
                    out.push(Message::PacketAck);
                }
                Ok(())
            }
            (kind, m) => {
                let mode = match kind {
                    Kind::Encode { .. } => "encode",
                    Kind::Decode { .. } => "decode",
                    Kind::Transcode { .. } => "transcode",
                };
                Err(SessionFailure {
                    code: error_code::BAD_REQUEST,
                    message: format!("unexpected {} in {mode} mode", m.kind()),
                })
            }
        }
    }

    /// Block until the encoder hands out one more packet, if it holds any frame; returns
    /// whether it did. Lets the shell emit packets as soon as they are ready when no input is
    /// waiting (a client with a small in-flight window waits for them).
    pub fn wait_output(&mut self, out: &mut Vec<Message>) -> Result<bool, SessionFailure> {
        let before = out.len();
        let r = match &mut self.kind {
            Kind::Encode { enc, .. } | Kind::Transcode { enc, .. } => enc.wait_one(out),
            Kind::Decode { .. } => Ok(false),
        };
        self.stats.outputs += (out.len() - before) as u64;
        r
    }

    /// FLUSH: everything still inside the codecs, in order (DONE is the caller's to send).
    pub fn flush(&mut self, out: &mut Vec<Message>) -> Result<(), SessionFailure> {
        let before = out.len();
        let compression = self.compression;
        let r = match &mut self.kind {
            Kind::Encode { enc, .. } => enc.flush(out),
            Kind::Decode { dec, ts } => dec.flush().map(|pics| {
                for (img, pts, flags, dur, sd) in pics {
                    let (pts, _) = ts.stamp(pts);
                    out.push(Message::Frame(FrameMsg {
                        pts,
                        duration: dur,
                        flags,
                        planes: nv12_planes(&img, compression),
                        side_data: sd,
                    }));
                }
            }),
            Kind::Transcode {
                dec,
                enc,
                out: size,
            } => (|| {
                for (img, pts, _f, dur, sd) in dec.flush()? {
                    transcode_picture(enc, *size, &img, pts, dur, sd, out)?;
                }
                enc.flush(out)
            })(),
        };
        self.stats.outputs += out[before..]
            .iter()
            .filter(|m| matches!(m, Message::Packet(_) | Message::Frame(_)))
            .count() as u64;
        r
    }
}

fn transcode_picture(
    enc: &mut EncodeHalf,
    (ow, oh): (u32, u32),
    img: &Yuv420Image,
    pts: i64,
    dur: i64,
    side_data: Vec<SideData>,
    out: &mut Vec<Message>,
) -> Result<(), SessionFailure> {
    let bad =
        |e: framecast_core::FrameError| SessionFailure::processing(format!("bad picture: {e}"));
    let (w, h) = (img.width(), img.height());
    let (y, u, v) = img.planes();
    if (w, h) == (ow, oh) {
        let cs = img.chroma_stride();
        let frame = Frame::i420(y, img.y_stride(), u, cs, v, cs, w, h).map_err(bad)?;
        return enc.send(&frame, pts, dur, false, side_data, out);
    }
    let (ow_, oh_) = (ow as usize, oh as usize);
    let (ocw, och) = (ow_.div_ceil(2), oh_.div_ceil(2));
    let (cw, ch) = ((w as usize).div_ceil(2), (h as usize).div_ceil(2));
    let ry = resize_plane(y, w as usize, h as usize, img.y_stride(), ow_, oh_);
    let ru = resize_plane(u, cw, ch, img.chroma_stride(), ocw, och);
    let rv = resize_plane(v, cw, ch, img.chroma_stride(), ocw, och);
    let frame = Frame::i420(&ry, ow_, &ru, ocw, &rv, ocw, ow, oh).map_err(bad)?;
    enc.send(&frame, pts, dur, false, side_data, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_rules() {
        let mut t = TimestampTracker::new();
        assert_eq!(t.admit(0, 1), Some(0));
        assert_eq!(t.admit(1, 1), Some(1));
        assert_eq!(t.admit(1, 1), None, "duplicate PTS dropped");
        assert_eq!(
            t.admit(NOPTS, 1),
            Some(2),
            "missing PTS follows the previous"
        );
        assert_eq!(t.stamp(0), (0, 0));
        assert_eq!(t.stamp(5), (5, 5));
        // A PTS that went backwards: DTS stays strictly increasing and PTS ≥ DTS.
        assert_eq!(t.stamp(3), (6, 6));
        assert_eq!(t.stamp(10), (10, 10));
    }

    #[test]
    fn plane_validation() {
        let layouts = plane_layouts(pix_fmt::NV12, 4, 3).unwrap();
        let p = |stride, height, len| Plane {
            stride,
            height,
            data: Bytes::from(vec![0u8; len]),
        };
        assert!(validate_and_decompress(
            &[p(4, 3, 12), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20
        )
        .is_ok());
        let e = validate_and_decompress(&[p(4, 3, 12)], &layouts, Compression::None, 1 << 20)
            .unwrap_err();
        assert!(e.contains("expected 2 planes"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 2, 12), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.contains("invalid plane height 2, expected 3"), "{e}");
        let e = validate_and_decompress(
            &[p(3, 3, 12), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.contains("stride 3, minimum 4"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 3, 11), p(4, 2, 8)],
            &layouts,
            Compression::None,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.contains("plane too small"), "{e}");
        let e = validate_and_decompress(
            &[p(4, 3, 0), p(4, 2, 8)],
            &layouts,
            Compression::Lz4,
            1 << 20,
        )
        .unwrap_err();
        assert!(e.contains("empty compressed plane"), "{e}");
        let e =
            validate_and_decompress(&[p(4, 3, 12), p(4, 2, 8)], &layouts, Compression::None, 10)
                .unwrap_err();
        assert!(e.contains("exceeds limit"), "{e}");
    }

    fn configure(opts: &[(&str, &str)]) -> Configure {
        Configure {
            width: 64,
            height: 48,
            pix_fmt: pix_fmt::NV12,
            tb_num: 1,
            tb_den: 30,
            fr_num: 30,
            fr_den: 1,
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extradata: Bytes::new(),
        }
    }

    #[test]
    fn options_map_onto_the_encoder() {
        let caps = ServerCaps::probe(None);
        let s = parse_configure(
            &configure(&[
                ("bitrate", "2000000"),
                ("maxrate", "1500000"),
                ("gop", "12"),
                ("max_b_frames", "0"),
                ("profile", "100"),
                ("color_range", "2"),
                ("colorspace", "6"),
                ("color_primaries", "6"),
                ("color_trc", "6"),
                ("realtime", "1"),
                ("unknown_key", "whatever"),
            ]),
            "h264",
            &caps,
            1 << 28,
        )
        .unwrap();
        let e = s.encoder.unwrap();
        assert_eq!(e.bitrate, 1_500_000, "maxrate caps bitrate");
        assert_eq!(e.keyframe_interval, 12);
        assert_eq!(e.profile, ProfileHint::High);
        assert_eq!(e.color.range, Range::Full);
        assert_eq!(e.color.matrix, Matrix::Bt601);
        assert_eq!(e.color.transfer, Transfer::Smpte170m);
        assert_eq!(s.compression, Compression::None);

        let err = |opts: &[(&str, &str)]| {
            parse_configure(&configure(opts), "h264", &caps, 1 << 28).unwrap_err()
        };
        assert!(err(&[("max_b_frames", "2")]).contains("without B-frames"));
        assert!(err(&[("wire_compression", "3")]).contains("wire compression mode 3"));
        assert!(err(&[("mode", "x")]).contains("mode"));
        assert!(err(&[("out_width", "32")]).contains("transcode"));
        assert!(err(&[("mode", "transcode"), ("out_width", "32")]).contains("together"));
        assert!(err(&[("mode", "decode")]).contains("extradata"));
        assert!(err(&[("profile", "110")]).contains("profile"));
        assert!(parse_configure(&configure(&[]), "hevc", &caps, 1 << 28)
            .unwrap_err()
            .contains("hevc"));
        let mut c = configure(&[]);
        c.pix_fmt = pix_fmt::P010;
        assert!(parse_configure(&c, "h264", &caps, 1 << 28)
            .unwrap_err()
            .contains("p010"));
        c.pix_fmt = pix_fmt::NV12;
        c.fr_num = 0;
        assert!(parse_configure(&c, "h264", &caps, 1 << 28)
            .unwrap_err()
            .contains("frame rate"));
    }
}
