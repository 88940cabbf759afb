//! Encoder configuration.

use crate::EncodeError;
use framecast_core::{ColorSpace, MAX_DIMENSION};

/// How the encoder spends bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RateControl {
    /// Average bitrate close to [`EncoderConfig::bitrate`], frame sizes free to vary (the default).
    #[default]
    Bitrate,
    /// Constant quantiser (`qp`, 0–51); bitrate is ignored.
    ConstantQp(u8),
}

/// H.264 profile the caller would like. Backends may pick a compatible one; the packets'
/// codec string always reports what was actually emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProfileHint {
    /// Constrained Baseline: decodable everywhere, including Safari/Firefox WebRTC stacks.
    #[default]
    ConstrainedBaseline,
    /// Main profile.
    Main,
    /// High profile.
    High,
}

/// Byte format of [`crate::EncodedPacket::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Start-code delimited NAL units (4-byte start codes), SPS/PPS in band before every IDR.
    #[default]
    AnnexB,
    /// 4-byte length-prefixed NAL units; the avcC record is available from
    /// [`crate::Encoder::avcc`]. SPS/PPS are also kept in band before every IDR.
    Avcc,
}

/// What to do when a pipelined encoder already holds `max_in_flight` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackpressurePolicy {
    /// Wait until the encoder has room (the default for offline encoding).
    #[default]
    Block,
    /// Refuse the new frame: `send_frame` returns [`crate::SendOutcome::Busy`] and the caller keeps it.
    FailFast,
    /// Drop the new frame; reported as [`crate::EncoderEvent::Dropped`].
    DropNew,
    /// Drop the oldest frame that has not started encoding and queue the new one (latest frame
    /// wins, for live streaming); reported as [`crate::EncoderEvent::Dropped`]. When every
    /// in-flight frame is already inside the encoder there is nothing to drop, so this waits
    /// like `Block`.
    DropOld,
}

/// Synchronous or pipelined operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodeMode {
    /// 1-in-1-out: `send_frame` converts and encodes on the calling thread and the packet is
    /// available immediately after it returns.
    #[default]
    Sync,
    /// Conversion on the calling thread, encoding on a worker thread; at most `max_in_flight`
    /// frames are queued or encoding at once.
    Pipelined {
        /// Frames allowed in flight (≥ 1).
        max_in_flight: usize,
        /// What happens when that many are in flight.
        policy: BackpressurePolicy,
    },
}

/// Everything needed to build an [`crate::Encoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Backend name from [`crate::registry`] (e.g. "openh264").
    pub backend: String,
    /// Display width in pixels (odd values allowed).
    pub width: u32,
    /// Display height in pixels (odd values allowed).
    pub height: u32,
    /// Nominal frame rate, used for rate control and packet durations.
    pub fps: f64,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// An IDR every `keyframe_interval` frames (counting from the last IDR, forced or not);
    /// 0 = only the first frame and forced keyframes.
    pub keyframe_interval: u32,
    /// Rate control mode.
    pub rate_control: RateControl,
    /// Colour conversion and signalling.
    pub color: ColorSpace,
    /// Preferred profile.
    pub profile: ProfileHint,
    /// Packet byte format.
    pub output: OutputFormat,
    /// Synchronous or pipelined.
    pub mode: EncodeMode,
    /// Encoder threads; 0 lets the backend choose (OpenH264 uses one: it parallelises only
    /// across slices, and encodes one slice per picture here).
    pub threads: u32,
    /// Keep long-term references so [`crate::Encoder::recover`] can bring back a decoder that
    /// missed frames with a P-frame instead of an IDR (live streams with several viewers).
    /// Backends without the mechanism ignore it. Off by default: a file has one decoder that
    /// misses nothing.
    pub recovery: bool,
    /// Speed/quality preset of backends that have them (x264: `ultrafast` … `placebo`);
    /// `None` = the backend's live default (x264: `ultrafast`). Backends without presets
    /// refuse `Some`.
    pub preset: Option<String>,
    /// B-frames between reference frames (0 = none, the default: live streams want none).
    /// Above 0, packets come out in decode order with `dts_ns < pts_ns` where frames are
    /// reordered, and the SPS declares the reordering; only backends that can (x264) accept it,
    /// with the Main or High profile.
    pub bframes: u32,
    /// Periodic intra refresh instead of periodic IDRs (x264): a column of intra macroblocks
    /// sweeps the picture every `keyframe_interval` frames, so no frame is an I-frame-sized
    /// spike; forced keyframes (a joining viewer) are still IDRs. Backends without it refuse.
    pub intra_refresh: bool,
}

impl EncoderConfig {
    /// A configuration with framecast's defaults: OpenH264, 30 fps, a bitrate scaled to the
    /// picture size (8 Mb/s at 1080p30), an IDR every 2 s, BT.709 limited, Annex B, synchronous.
    pub fn new(width: u32, height: u32) -> Self {
        EncoderConfig {
            backend: crate::registry::default_backend_name().to_string(),
            width,
            height,
            fps: 30.0,
            bitrate: default_bitrate(width, height, 30.0),
            keyframe_interval: 60,
            rate_control: RateControl::Bitrate,
            color: ColorSpace::default(),
            profile: ProfileHint::default(),
            output: OutputFormat::AnnexB,
            mode: EncodeMode::Sync,
            threads: 0,
            recovery: false,
            preset: None,
            bframes: 0,
            intra_refresh: false,
        }
    }

    /// Check every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let bad = |m: String| Err(EncodeError::InvalidConfig(m));
        if self.width == 0 || self.height == 0 {
            return bad(format!(
                "size {}x{}: width and height must be at least 1",
                self.width, self.height
            ));
        }
        if self.width > MAX_DIMENSION || self.height > MAX_DIMENSION {
            return bad(format!(
                "size {}x{} exceeds the maximum {MAX_DIMENSION}",
                self.width, self.height
            ));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return bad(format!("fps {}: must be between 0 and 1000", self.fps));
        }
        if self.bitrate < 10_000 {
            return bad(format!(
                "bitrate {} b/s is below the 10 kb/s minimum",
                self.bitrate
            ));
        }
        if let RateControl::ConstantQp(qp) = self.rate_control {
            if qp > 51 {
                return bad(format!("qp {qp}: H.264 allows 0-51"));
            }
        }
        if self.bframes > 16 {
            return bad(format!(
                "bframes {}: H.264 encoders allow 0-16",
                self.bframes
            ));
        }
        if self.bframes > 0 && self.profile == ProfileHint::ConstrainedBaseline {
            return bad(format!(
                "bframes {}: Constrained Baseline has no B-frames; ask for the Main or High profile",
                self.bframes
            ));
        }
        if self.intra_refresh && self.bframes > 0 {
            return bad(
                "intra refresh and B-frames together: pick one (intra refresh is for live \
                 streams, B-frames for files)"
                    .into(),
            );
        }
        if let EncodeMode::Pipelined { max_in_flight, .. } = self.mode {
            if max_in_flight == 0 {
                return bad("max_in_flight 0: a pipelined encoder needs at least 1".into());
            }
        }
        Ok(())
    }

    /// Refuse the options a backend without presets, B-frames or intra refresh cannot honour,
    /// naming the backend that can (for backends' `create`, in-tree or not).
    pub fn refuse_x264_only_options(&self, backend: &str) -> Result<(), EncodeError> {
        let what = if self.preset.is_some() {
            "presets"
        } else if self.bframes > 0 {
            "B-frames"
        } else if self.intra_refresh {
            "intra refresh"
        } else {
            return Ok(());
        };
        Err(EncodeError::InvalidConfig(format!(
            "the {backend} backend has no {what}; use the x264 backend (a build with the `x264` feature)"
        )))
    }

    /// Duration of one frame in nanoseconds.
    pub fn frame_duration_ns(&self) -> i64 {
        (1e9 / self.fps).round() as i64
    }
}

/// framecast's default bitrate: 8 Mb/s at 1080p30, scaled linearly by pixel rate, clamped to
/// 0.5–50 Mb/s.
pub fn default_bitrate(width: u32, height: u32, fps: f64) -> u32 {
    let pixel_rate = width as f64 * height as f64 * fps;
    let reference = 1920.0 * 1080.0 * 30.0;
    (8_000_000.0 * pixel_rate / reference).clamp(500_000.0, 50_000_000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_scale() {
        let c = EncoderConfig::new(1920, 1080);
        c.validate().unwrap();
        assert_eq!(c.bitrate, 8_000_000);
        assert_eq!(default_bitrate(640, 360, 30.0), 888_888);
        assert_eq!(c.frame_duration_ns(), 33_333_333);
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut c = EncoderConfig::new(0, 10);
        assert!(c.validate().unwrap_err().to_string().contains("0x10"));
        c = EncoderConfig::new(64, 64);
        c.fps = 0.0;
        assert!(c.validate().unwrap_err().to_string().contains("fps 0"));
        c = EncoderConfig::new(64, 64);
        c.mode = EncodeMode::Pipelined {
            max_in_flight: 0,
            policy: BackpressurePolicy::Block,
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_in_flight 0"));
        c = EncoderConfig::new(64, 64);
        c.rate_control = RateControl::ConstantQp(60);
        assert!(c.validate().unwrap_err().to_string().contains("qp 60"));
    }
}
