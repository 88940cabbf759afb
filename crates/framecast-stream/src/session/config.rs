//! What a stream offers and how its sessions behave: transports, encoder settings, resize
//! policy, and the delivery knobs of [`SessionConfig`].

use super::congestion::AdaptiveConfig;
use crate::protocol::{WireColor, CAP_H264_ANNEXB, CAP_JPEG, CAP_PNG};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Image formats of the image transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG (lossy, the default).
    Jpeg,
    /// PNG (lossless).
    Png,
}

impl ImageFormat {
    /// The MIME type on the wire.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => CAP_JPEG,
            ImageFormat::Png => CAP_PNG,
        }
    }

    /// The name used as `config.backend` (`jpeg` or `png`).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
        }
    }
}

/// What an encoder group produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// H.264 Annex B for WebCodecs.
    Video,
    /// One image per frame.
    Image(ImageFormat),
}

/// Which transports a stream offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportPolicy {
    /// H.264 to viewers that advertise WebCodecs H.264, images to the others.
    #[default]
    Auto,
    /// H.264 only; viewers without WebCodecs H.264 are closed with 1003.
    Video,
    /// Images only, even to WebCodecs-capable viewers.
    Image,
}

/// A transport name that is not `auto`, `video` or `image`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport {0:?}: use video, image or auto")]
pub struct UnknownTransport(pub String);

impl std::str::FromStr for TransportPolicy {
    type Err = UnknownTransport;
    fn from_str(s: &str) -> Result<Self, UnknownTransport> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "video" | "webcodecs" | "h264" => Ok(Self::Video),
            "image" | "jpeg" => Ok(Self::Image),
            _ => Err(UnknownTransport(s.to_owned())),
        }
    }
}

/// Pick a group kind for a viewer's capabilities (pdum.rfb `select_transport`, with the
/// server's policy). `None` means no match (close 1003).
pub fn select_transport(
    supported: &[String],
    policy: TransportPolicy,
    video_available: bool,
    preferred_image: ImageFormat,
) -> Option<GroupKind> {
    let has = |cap: &str| supported.iter().any(|s| s == cap);
    if policy != TransportPolicy::Image && video_available && has(CAP_H264_ANNEXB) {
        return Some(GroupKind::Video);
    }
    if policy == TransportPolicy::Video {
        return None;
    }
    [preferred_image, ImageFormat::Png, ImageFormat::Jpeg]
        .into_iter()
        .find(|f| has(f.mime()))
        .map(GroupKind::Image)
}

/// How `set_viewport` affects the published size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ResizePolicy {
    /// The publisher decides the size; `set_viewport` is informational (a `resize` event).
    #[default]
    Publisher,
    /// The viewers' backing size becomes the display's target size, debounced, last writer
    /// wins, clamped to `max_dimension` (aspect preserved), even, at least 2.
    MatchClient {
        /// Debounce (pdum.rfb: 0.12 s).
        debounce: Duration,
        /// Clamp for the larger side.
        max_dimension: Option<u32>,
    },
}

/// Encoder settings shared by the video groups of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderSettings {
    /// Backend registry name.
    pub backend: String,
    /// Target bitrate, bits/s.
    pub bitrate: u32,
    /// Frame rate (advisory: GOP length and `duration_us`).
    pub fps: f64,
    /// Seconds between the encoder's own IDRs (0: only when a viewer needs one). Viewers
    /// get a keyframe when they join, reset or miss a frame whatever this is.
    pub keyframe_interval_s: f64,
    /// JPEG quality 1-100.
    pub jpeg_quality: u8,
    /// Encoder speed preset (x264: `ultrafast` … `placebo`); `None` = the backend's default.
    pub preset: Option<String>,
    /// Periodic intra refresh instead of IDRs (x264): no keyframe-sized spikes; joins and
    /// resets still get an IDR.
    pub intra_refresh: bool,
}

/// Policy knobs of a stream's sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Unacked payloads allowed per viewer before drop-before-encode (default 2).
    pub max_inflight: usize,
    /// Backstop: clear in-flight state when the oldest unacked frame is this old (2 s).
    pub inflight_timeout: Duration,
    /// Send the resting frame once more, losslessly, after this long without a publish.
    pub still_after: Option<Duration>,
    /// Push `stats` at most this often (on ack handling).
    pub stats_interval: Option<Duration>,
    /// Transports offered.
    pub transports: TransportPolicy,
    /// Whether an H.264 encoder is available.
    pub video_available: bool,
    /// Image format preferred for the image transport.
    pub image_format: ImageFormat,
    /// Encoder settings (shared with every encode job, never copied per frame).
    pub encoder: Arc<EncoderSettings>,
    /// Resize policy.
    pub resize: ResizePolicy,
    /// Input events accepted per viewer per second (excess dropped).
    pub max_events_per_second: u32,
    /// Viewers allowed at once; one more is refused with 1013.
    pub max_viewers: usize,
    /// In a group where other viewers are in sync, a keyframe forced to recover one viewer
    /// (after it missed a frame, asked for one, or reset its decoder) is sent at most this
    /// often; meanwhile that viewer waits, and nobody else pays. A group whose every viewer
    /// needs one, a join and an encoder rebuild get theirs at once. Default 500 ms.
    pub recovery_interval: Duration,
    /// A group with an in-sync viewer whose in-flight window is full waits for its ack
    /// until its usual round trip (RTT EMA) after its oldest frame in flight, plus this,
    /// before encoding for the others (which would cost that viewer a keyframe). Viewers on
    /// one link stay in step; a viewer later than that is left behind and recovered.
    /// Default 100 ms.
    pub sync_wait: Duration,
    /// `pixel_ratio` tag for headers and `config`.
    pub pixel_ratio: Option<f64>,
    /// `color` tag for headers and `config`.
    pub color: Option<Arc<WireColor>>,
    /// Congestion control, on by default: each video viewer's link sets its bitrate, frame
    /// rate and in-flight window, and viewers on much slower links move to lower encoder
    /// tiers. `None`: everyone gets the configured quality and `max_inflight`.
    pub adaptive: Option<AdaptiveConfig>,
    /// The encoder backend makes recovery P-frames (`framecast_encode` backends whose
    /// descriptor says `recovery`): a viewer that missed frames is brought back with a
    /// P-frame predicted from a frame every viewer displayed, not an IDR that every viewer of
    /// its group pays for. The shell sets it from the backend; default off.
    pub recovery: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_inflight: 2,
            inflight_timeout: Duration::from_secs(2),
            still_after: None,
            stats_interval: None,
            transports: TransportPolicy::Auto,
            video_available: true,
            image_format: ImageFormat::Jpeg,
            encoder: Arc::new(EncoderSettings {
                backend: "openh264".into(),
                bitrate: 12_000_000,
                fps: 30.0,
                keyframe_interval_s: 1.0,
                jpeg_quality: 80,
                preset: None,
                intra_refresh: false,
            }),
            resize: ResizePolicy::Publisher,
            max_events_per_second: 1000,
            max_viewers: 64,
            recovery_interval: Duration::from_millis(500),
            sync_wait: Duration::from_millis(100),
            pixel_ratio: None,
            color: None,
            adaptive: Some(AdaptiveConfig::default()),
            recovery: false,
        }
    }
}

/// `match_client` target: clamp the larger side to `max`, keep the aspect, even, ≥ 2.
pub fn target_dims(w: f64, h: f64, max: Option<u32>) -> (u32, u32) {
    let (mut w, mut h) = (w.max(2.0), h.max(2.0));
    if let Some(m) = max {
        let m = m.max(2) as f64;
        let scale = (m / w.max(h)).min(1.0);
        w *= scale;
        h *= scale;
    }
    let even = |x: f64| ((x.round() as u32) & !1).max(2);
    (even(w), even(h))
}
