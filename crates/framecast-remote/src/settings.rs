//! What a session is asked to do: CONFIGURE mapped onto framecast's types and checked
//! against what this server can do ([`ServerCaps`]).

use crate::compress::Compression;
use crate::error::ConfigureError;
use crate::wire::{pix_fmt, Configure};
use bytes::Bytes;
use framecast_core::{ColorSpace, Matrix, Primaries, Range, Transfer};
pub use framecast_encode::decode::DecoderInfo;
use framecast_encode::{EncoderConfig, OutputFormat, ProfileHint};

/// What the server can do, advertised in HELLO_ACK and enforced at CONFIGURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCaps {
    /// Capability strings, in advertising order.
    pub capabilities: Vec<String>,
    /// Encoder backend used for encode and transcode (`None`: no usable encoder here).
    pub backend: Option<String>,
    /// The H.264 decoder of decode and transcode modes (`None`: those modes are unavailable).
    pub decoder: Option<DecoderInfo>,
}

/// Capability string naming the decoder: the C client ignores strings it does not know, and a
/// person reading HELLO_ACK learns whether B-frames will decode.
pub const DECODER_CAP_PREFIX: &str = "x-framecast.decoder.";

/// Said when a decoder without B-frame support is asked to decode (CONFIGURE_ACK warning, and
/// the ERROR when a packet fails).
pub const NO_B_FRAMES: &str = "it does not decode B-frames; a server built with --features \
                               libav decodes Main/High profile with B-frames";

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
        let decoder = framecast_encode::decode::best_info();
        let mut capabilities = Vec::new();
        if backend.is_some() || decoder.is_some() {
            capabilities.push("h264".to_string());
        }
        if backend.is_some() {
            capabilities.push("pixfmt.nv12".to_string());
            capabilities.push("pixfmt.bgra".to_string());
        }
        if backend.is_some() && decoder.is_some() {
            capabilities.push("packet_ack.v1".to_string());
        }
        if let Some(d) = decoder {
            capabilities.push(format!("{DECODER_CAP_PREFIX}{}", d.name));
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
    /// Pictures held to restore presentation order in decode output (`decode_reorder_depth`,
    /// 0..=64). Default 0, not vtremoted's 2: VideoToolbox hands pictures out in decode order,
    /// while both decoders here already output presentation order, so a window would only add
    /// latency (and, with FFmpeg's vtremote decoder, a socket timeout per held picture).
    pub decode_reorder_depth: usize,
    /// What was asked and done differently (CONFIGURE_ACK's warning list).
    pub warnings: Vec<String>,
}

/// The most pictures `decode_reorder_depth` may hold.
pub const MAX_DECODE_REORDER_DEPTH: usize = 64;

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

fn bad_value(key: &str, v: &str, expected: &'static str) -> ConfigureError {
    ConfigureError::BadValue {
        key: key.into(),
        value: v.into(),
        expected,
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigureError> {
    v.trim()
        .parse()
        .map_err(|_| bad_value(key, v, "is not a valid number"))
}

fn parse_flag(key: &str, v: &str) -> Result<bool, ConfigureError> {
    match v.trim() {
        "0" | "false" | "no" => Ok(false),
        "1" | "true" | "yes" => Ok(true),
        _ => Err(bad_value(key, v, "should be 0 or 1")),
    }
}

fn unsupported(what: impl Into<String>, supported: impl Into<String>) -> ConfigureError {
    ConfigureError::Unsupported {
        what: what.into(),
        supported: supported.into(),
    }
}

/// Map CONFIGURE onto [`SessionSettings`]. The error becomes an ERROR code 1
/// "configure failed: ..." message.
pub fn parse_configure(
    c: &Configure,
    hello_codec: &str,
    caps: &ServerCaps,
    max_message_bytes: u32,
) -> Result<SessionSettings, ConfigureError> {
    if !hello_codec.eq_ignore_ascii_case("h264") {
        return Err(ConfigureError::UnsupportedCodec(hello_codec.into()));
    }
    let mode = match c.option("mode").map(str::trim) {
        None | Some("") | Some("encode") => Mode::Encode,
        Some("decode") => Mode::Decode,
        Some("transcode") => Mode::Transcode,
        Some(other) => return Err(ConfigureError::Mode(other.into())),
    };
    let compression = match c.option("wire_compression") {
        None => Compression::None,
        Some(v) => Compression::from_option(v)
            .map_err(|e| unsupported(format!("wire_compression {v:?}"), e.to_string()))?,
    };
    let max = framecast_core::MAX_DIMENSION;
    if c.width == 0 || c.height == 0 || c.width > max || c.height > max {
        return Err(ConfigureError::Size {
            width: c.width,
            height: c.height,
            max,
        });
    }
    if c.tb_den == 0 || c.tb_den > i32::MAX as u32 {
        return Err(ConfigureError::TimeBase {
            num: c.tb_num,
            den: c.tb_den,
        });
    }
    let frame_bytes = (c.width as u64) * (c.height as u64) * 4;
    if frame_bytes > max_message_bytes as u64 {
        return Err(ConfigureError::FrameTooLarge {
            width: c.width,
            height: c.height,
            bytes: frame_bytes,
            limit: max_message_bytes,
        });
    }
    let scale_keys = ["out_width", "out_height", "scale_mode", "out_codec"];
    if mode != Mode::Transcode {
        if let Some(k) = scale_keys.iter().find(|k| c.option(k).is_some()) {
            return Err(ConfigureError::TranscodeOnly {
                key: k,
                mode: mode.name(),
            });
        }
    }
    if mode == Mode::Encode && (c.fr_num == 0 || c.fr_den == 0) {
        return Err(ConfigureError::FrameRate {
            num: c.fr_num,
            den: c.fr_den,
        });
    }
    let mut warnings = Vec::new();
    if mode != Mode::Encode {
        match caps.decoder {
            None => return Err(ConfigureError::NoDecoder { mode: mode.name() }),
            Some(d) if !d.b_frames => warnings.push(format!("decoder {}: {NO_B_FRAMES}", d.name)),
            Some(_) => {}
        }
    }
    let decode_reorder_depth = match c.option("decode_reorder_depth") {
        None => 0,
        Some(v) => {
            let d: usize = parse_num("decode_reorder_depth", v)?;
            if d > MAX_DECODE_REORDER_DEPTH {
                return Err(bad_value(
                    "decode_reorder_depth",
                    v,
                    "must be between 0 and 64",
                ));
            }
            d
        }
    };
    if let Some(v) = c.option("decode_async") {
        // Decoding is synchronous per session here; the flag changes nothing observable.
        parse_flag("decode_async", v)?;
    }
    match mode {
        Mode::Encode => {
            let cap = match c.pix_fmt {
                pix_fmt::NV12 => "pixfmt.nv12",
                pix_fmt::BGRA => "pixfmt.bgra",
                other => {
                    return Err(unsupported(
                        format!("pixel format {other} ({})", pix_fmt::name(other)),
                        "this server accepts nv12 (1) and bgra (3)",
                    ))
                }
            };
            if !caps.has(cap) {
                return Err(unsupported(
                    format!("pixel format {cap}"),
                    format!("this server offers {}", caps.capabilities.join(", ")),
                ));
            }
        }
        Mode::Decode => {
            if !matches!(c.pix_fmt, 0 | pix_fmt::NV12) {
                return Err(unsupported(
                    format!(
                        "decode output pixel format {} ({})",
                        c.pix_fmt,
                        pix_fmt::name(c.pix_fmt)
                    ),
                    "this server outputs nv12 (1)",
                ));
            }
            if c.extradata.is_empty() {
                return Err(ConfigureError::NoExtradata);
            }
        }
        Mode::Transcode => {}
    }
    if let Some(codec) = c.option("out_codec") {
        if !codec.eq_ignore_ascii_case("h264") {
            return Err(unsupported(
                format!("out_codec {codec:?}"),
                "this server transcodes to h264 only",
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
                return Err(ConfigureError::OutputSize {
                    width: w,
                    height: h,
                });
            }
            Some((w, h))
        }
        _ => return Err(ConfigureError::HalfOutputSize),
    };
    if let Some(sm) = c.option("scale_mode") {
        match sm.trim() {
            "stretch" | "resize" | "scale" => {}
            "aspect" | "fit" | "letterbox" | "aspect_fill" | "aspectfill" | "fill" | "crop" => {
                return Err(unsupported(
                    format!("scale_mode {sm:?}"),
                    "this server scales with stretch only",
                ))
            }
            other => {
                return Err(unsupported(
                    format!("scale_mode {other:?} (unknown)"),
                    "use stretch, aspect or aspect_fill",
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
        let backend = caps.backend.clone().ok_or(ConfigureError::NoBackend)?;
        let (w, h) = out_size.unwrap_or((c.width, c.height));
        let mut e = EncoderConfig::new(w, h);
        e.backend = backend;
        e.output = OutputFormat::AnnexB;
        if c.fr_num > 0 && c.fr_den > 0 {
            e.fps = c.fr_num as f64 / c.fr_den as f64;
        }
        e.bitrate = framecast_encode::default_bitrate(w, h, e.fps);
        e.keyframe_interval = (e.fps.round() as u32).max(1) * 2;
        apply_encoder_options(c, &mut e, &mut warnings)?;
        e.validate()
            .map_err(|err| ConfigureError::Codec(err.to_string()))?;
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
        // FFmpeg's decoders send their unset 0/1; vtremoted clamps the numerator to 1.
        time_base: (c.tb_num.max(1), c.tb_den),
        frame_rate: (c.fr_num, c.fr_den),
        encoder,
        packet_ack,
        out_size,
        extradata: c.extradata.clone(),
        decode_reorder_depth,
        warnings,
    })
}

/// Rate control, GOP, B-frames, profile and colour options → [`EncoderConfig`].
/// What cannot be honoured exactly but has a close equivalent is changed and reported in
/// `warnings` (a VideoToolbox server accepts these too), not refused.
fn apply_encoder_options(
    c: &Configure,
    e: &mut EncoderConfig,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigureError> {
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
    let profile = c.option("profile").map(map_profile).transpose()?.flatten();
    if let Some(p) = &profile {
        e.profile = p.hint;
    }
    if let Some(b) = c.option("max_b_frames") {
        // A maximum: FFmpeg's -bf, VideoToolbox's MaxFrameDelayCount. Negative means "default".
        let b: i64 = parse_num("max_b_frames", b)?;
        let reorders = framecast_encode::registry::find(&e.backend).is_ok_and(|d| d.bframes);
        if b > 0 && !reorders {
            warnings.push(format!(
                "max_b_frames={b}: the {} encoder produces no B-frames; encoding with 0",
                e.backend
            ));
        } else if let Some(p) = profile.as_ref().filter(|p| b > 0 && !p.b_frames) {
            warnings.push(format!(
                "max_b_frames={b}: profile {} has no B-frames; encoding with 0",
                p.asked
            ));
        } else if b > 0 {
            // Like VideoToolbox, which reorders only in Main and High: no profile asked means
            // the encoder's best.
            if profile.is_none() {
                e.profile = ProfileHint::High;
            }
            e.bframes = b.min(16) as u32;
        }
    }
    warnings.extend(profile.and_then(|p| p.warning));
    if let Some(r) = c.option("realtime") {
        // OpenH264 always runs in real-time mode; accept the flag.
        let _ = parse_num::<i64>("realtime", r)?;
    }
    e.color = colour_from_options(c)?;
    Ok(())
}

/// A profile a client asked for, as this encoder will honour it.
#[derive(Debug)]
struct AskedProfile {
    /// What was asked, as written (lower case).
    asked: String,
    /// The nearest profile the encoder produces.
    hint: ProfileHint,
    /// Said to the client when `hint` differs from what was asked.
    warning: Option<String>,
    /// The asked profile allows B-frames (not Baseline, Extended or Constrained High).
    b_frames: bool,
}

/// An FFmpeg H.264 profile (`AV_PROFILE_H264_*` number or name) → the nearest profile the
/// encoder produces (8-bit 4:2:0), with a warning when it differs. `None`: keep the default
/// (FFmpeg's unset -99).
fn map_profile(p: &str) -> Result<Option<AskedProfile>, ConfigureError> {
    use ProfileHint::{ConstrainedBaseline, High, Main};
    let v = p.trim().to_ascii_lowercase();
    let asked = |hint: ProfileHint, b_frames: bool, why: Option<&str>| {
        Some(AskedProfile {
            asked: v.clone(),
            hint,
            warning: why.map(|why| format!("profile {v}: {why}")),
            b_frames,
        })
    };
    Ok(match v.as_str() {
        "-99" | "" => None,
        "66" | "578" | "baseline" | "constrained_baseline" => {
            asked(ConstrainedBaseline, false, None)
        }
        "77" | "main" => asked(Main, true, None),
        "100" | "high" => asked(High, true, None),
        // Extended (88) decoders play Constrained Baseline; nothing here makes SP/SI slices.
        "88" | "extended" => asked(
            ConstrainedBaseline,
            false,
            Some("encoding Constrained Baseline, which extended-profile decoders play"),
        ),
        // Constrained High (100 | AV_PROFILE_H264_CONSTRAINED) is High without B-frames.
        "612" | "constrained_high" => asked(
            High,
            false,
            Some(
                "encoding High without B-frames (what constrained High allows), signalled as High",
            ),
        ),
        // 10-bit, 4:2:2, 4:4:4 and their intra variants.
        "110" | "2158" | "high10" | "high10_intra" | "122" | "2170" | "high422"
        | "high422_intra" | "244" | "2292" | "high444" | "high444_predictive" | "high444_intra"
        | "44" | "cavlc444" => asked(
            High,
            true,
            Some("this encoder makes 8-bit 4:2:0 only; encoding High"),
        ),
        other => {
            return Err(unsupported(
                format!("profile {other}"),
                "use an H.264 profile: 66/578 (baseline), 77 (main), 88 (extended), \
                 100/612 (high), 110, 122, 244, 44",
            ))
        }
    })
}

/// FFmpeg's AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic
/// numbers → [`ColorSpace`]. Unspecified (0 or 2) keeps the default (BT.709 limited).
fn colour_from_options(c: &Configure) -> Result<ColorSpace, ConfigureError> {
    let num = |key: &str| -> Result<Option<i64>, ConfigureError> {
        c.option(key).map(|v| parse_num::<i64>(key, v)).transpose()
    };
    let range = match num("color_range")? {
        None | Some(0) | Some(1) => Range::Limited,
        Some(2) => Range::Full,
        Some(v) => return Err(unsupported(format!("color_range {v}"), "1 tv, 2 pc")),
    };
    let matrix = match num("colorspace")? {
        None | Some(1) | Some(2) => Matrix::Bt709,
        Some(5) | Some(6) => Matrix::Bt601,
        Some(v) => {
            return Err(unsupported(
                format!("colorspace {v}"),
                "1 bt709, 5 bt470bg, 6 smpte170m",
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
            return Err(unsupported(
                format!("color_primaries {v}"),
                "1 bt709, 5 bt470bg, 6 smpte170m",
            ))
        }
    }
    match num("color_trc")? {
        None | Some(2) => {}
        Some(1) => cs.transfer = Transfer::Bt709,
        Some(6) => cs.transfer = Transfer::Smpte170m,
        Some(13) => cs.transfer = Transfer::Srgb,
        Some(v) => {
            return Err(unsupported(
                format!("color_trc {v}"),
                "1 bt709, 6 smpte170m, 13 iec61966-2-1",
            ))
        }
    }
    Ok(cs)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// On a server whose backend reorders, `max_b_frames` is honoured where the asked profile
    /// allows B-frames (High when none is asked) and refused, with a warning, where it does
    /// not (Baseline, Extended, Constrained High).
    #[cfg(feature = "x264")]
    #[test]
    fn b_frames_follow_the_asked_profile_on_a_reordering_backend() {
        let caps = ServerCaps::probe(Some("x264"));
        let parse = |opts: &[(&str, &str)]| {
            let s = parse_configure(&configure(opts), "h264", &caps, 1 << 28).unwrap();
            let e = s.encoder.unwrap();
            (e.bframes, e.profile, s.warnings)
        };
        assert_eq!(
            parse(&[("max_b_frames", "2")]),
            (2, ProfileHint::High, vec![])
        );
        assert_eq!(
            parse(&[("max_b_frames", "3"), ("profile", "77")]),
            (3, ProfileHint::Main, vec![])
        );
        for profile in ["66", "88", "612"] {
            let (bframes, _, warnings) = parse(&[("max_b_frames", "2"), ("profile", profile)]);
            assert_eq!(bframes, 0, "profile {profile}");
            assert!(
                warnings[0]
                    == format!(
                        "max_b_frames=2: profile {profile} has no B-frames; encoding with 0"
                    ),
                "{warnings:?}"
            );
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
            parse_configure(&configure(opts), "h264", &caps, 1 << 28)
                .unwrap_err()
                .to_string()
        };
        let warns = |opts: &[(&str, &str)]| {
            parse_configure(&configure(opts), "h264", &caps, 1 << 28)
                .unwrap()
                .warnings
        };
        let w = warns(&[("max_b_frames", "2")]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("max_b_frames=2") && w[0].contains("with 0"),
            "{w:?}"
        );
        assert!(warns(&[("max_b_frames", "0")]).is_empty());
        assert!(warns(&[("max_b_frames", "-1")]).is_empty());
        for (asked, got) in [
            ("612", ProfileHint::High),
            ("88", ProfileHint::ConstrainedBaseline),
            ("110", ProfileHint::High),
        ] {
            let s =
                parse_configure(&configure(&[("profile", asked)]), "h264", &caps, 1 << 28).unwrap();
            assert_eq!(s.encoder.unwrap().profile, got, "profile {asked}");
            assert_eq!(s.warnings.len(), 1, "profile {asked}: {:?}", s.warnings);
            assert!(s.warnings[0].starts_with(&format!("profile {asked}:")));
        }
        assert!(warns(&[("profile", "77")]).is_empty());
        assert!(err(&[("decode_reorder_depth", "65")]).contains("between 0 and 64"));
        assert!(err(&[("decode_async", "maybe")]).contains("decode_async"));
        assert!(err(&[("wire_compression", "3")]).contains("wire compression mode 3"));
        assert!(err(&[("mode", "x")]).contains("mode"));
        assert!(err(&[("out_width", "32")]).contains("transcode"));
        assert!(err(&[("mode", "transcode"), ("out_width", "32")]).contains("together"));
        assert!(err(&[("mode", "decode")]).contains("extradata"));
        assert!(err(&[("profile", "12345")]).contains("profile"));
        assert!(parse_configure(&configure(&[]), "hevc", &caps, 1 << 28)
            .unwrap_err()
            .to_string()
            .contains("hevc"));
        let mut c = configure(&[]);
        c.pix_fmt = pix_fmt::P010;
        assert!(parse_configure(&c, "h264", &caps, 1 << 28)
            .unwrap_err()
            .to_string()
            .contains("p010"));
        c.pix_fmt = pix_fmt::NV12;
        c.fr_num = 0;
        assert!(parse_configure(&c, "h264", &caps, 1 << 28)
            .unwrap_err()
            .to_string()
            .contains("frame rate"));
    }
}
