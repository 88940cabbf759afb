//! Server and stream configuration (the knobs of pdum.rfb's `serve()`), and errors.

use crate::error::StreamError;
use crate::protocol::WireColor;
use crate::session::{EncoderSettings, ImageFormat, ResizePolicy, SessionConfig, TransportPolicy};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The default listen address, `127.0.0.1:8765` (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8765";

/// Settings of the HTTP/WebSocket server (the hub).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Default `127.0.0.1:8765`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Allowed `Origin` values for WebSocket upgrades and `POST /control` (`*` allows any).
    /// Empty: requests without an `Origin` (non-browser clients) and same-host or loopback
    /// origins are allowed.
    pub allowed_origins: Vec<String>,
    /// Largest message a viewer may send (bytes); larger closes that viewer (1009).
    pub max_message_bytes: usize,
    /// Serve `GET/POST /control` (live scene/backend/bitrate/transport switching, for demos).
    pub remote_control: bool,
    /// How long a new connection may take to send `hello`.
    pub hello_timeout: Duration,
    /// How long a client may take to send a complete HTTP request head (before the
    /// WebSocket upgrade, and between requests on a kept-alive connection); slower
    /// connections are closed. Default 10 s.
    pub header_timeout: Duration,
    /// Connections that have not upgraded to a WebSocket yet, at most; further connections
    /// are closed at once until one finishes. With `header_timeout`, this bounds what
    /// half-open requests can hold (descriptors, memory). Default 256.
    pub max_pending_connections: usize,
    /// Text messages a viewer may send per second (a one-second burst allowed); a viewer
    /// over it is closed with 1008 before its messages reach the stream. Default 2000.
    pub max_messages_per_second: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid address"),
            allowed_origins: Vec::new(),
            max_message_bytes: 64 * 1024,
            remote_control: false,
            hello_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_pending_connections: 256,
            max_messages_per_second: 2000,
        }
    }
}

/// Settings of one stream (pdum.rfb `serve()` / `add_stream()`).
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Initial frame width (until the first publish).
    pub width: u32,
    /// Initial frame height.
    pub height: u32,
    /// Frame rate: GOP length (1 s), `duration_us`, stats targets. Default 30.
    pub fps: f64,
    /// H.264 target bitrate, bits/s. Default 12 Mb/s (pdum.rfb's).
    pub bitrate: u32,
    /// Encoder backend by registry name (`openh264`, ...). Default: the registry's default.
    pub backend: String,
    /// Unacked payloads per viewer before drop-before-encode. Default 2.
    pub max_inflight: usize,
    /// Transports offered. Default auto (H.264 when the viewer can, JPEG otherwise).
    pub transports: TransportPolicy,
    /// Image format of the image transport (JPEG by default; PNG is lossless).
    pub image_format: ImageFormat,
    /// JPEG quality, 1-100 (default 80, pdum.rfb's).
    pub jpeg_quality: u8,
    /// Resend the resting frame losslessly after this long without a publish.
    pub still_after: Option<Duration>,
    /// Push `stats` to viewers at most this often.
    pub stats_interval: Option<Duration>,
    /// Viewers must present this token (`hello.token`, `?token=` or `Authorization: Bearer`);
    /// compared in constant time; failure closes 4401 before any frame.
    pub token: Option<String>,
    /// Resize policy.
    pub resize: ResizePolicy,
    /// Viewers allowed at once (more are closed with 1013).
    pub max_viewers: usize,
    /// Input events accepted per viewer per second.
    pub max_events_per_second: u32,
    /// Input events kept for `poll_events()`; the oldest is dropped when full (4096).
    pub event_queue_size: usize,
    /// `pixel_ratio` tag sent in headers and `config` (omitted when 1).
    pub pixel_ratio: Option<f64>,
    /// `color` tag sent in headers and `config`.
    pub color: Option<WireColor>,
    /// Congestion control (on by default): each video viewer's link sets its bitrate, frame
    /// rate and in-flight window below `bitrate`/`fps`, and a viewer on a much slower link
    /// moves to a lower encoder tier; the encoder makes no periodic IDRs (joins and decoder
    /// resets still get one). `false`: everyone gets `bitrate` and `fps`, with an IDR every
    /// second (pdum.rfb's default, `adaptive=False`).
    pub adaptive: bool,
    /// Encoder speed preset (x264: `ultrafast` … `placebo`); `None` = the backend's default
    /// (x264: `ultrafast`, the live choice). Backends without presets refuse one.
    pub encoder_preset: Option<String>,
    /// Periodic intra refresh instead of IDRs (x264 only): no keyframe-sized bitrate spikes;
    /// viewers that join or reset still get an IDR. Recovery P-frames are off with it (x264
    /// cannot invalidate references while refreshing): a viewer that misses a frame gets an IDR.
    pub intra_refresh: bool,
}

impl StreamConfig {
    /// Defaults for a `width`×`height` stream.
    pub fn new(width: u32, height: u32) -> Self {
        StreamConfig {
            width,
            height,
            fps: 30.0,
            bitrate: 12_000_000,
            backend: framecast_encode::registry::default_backend_name().to_owned(),
            max_inflight: 2,
            transports: TransportPolicy::Auto,
            image_format: ImageFormat::Jpeg,
            jpeg_quality: 80,
            still_after: None,
            stats_interval: None,
            token: None,
            resize: ResizePolicy::Publisher,
            max_viewers: 64,
            max_events_per_second: 1000,
            event_queue_size: 4096,
            pixel_ratio: None,
            color: None,
            adaptive: true,
            encoder_preset: None,
            intra_refresh: false,
        }
    }

    /// The encoder settings part.
    pub fn encoder_settings(&self) -> EncoderSettings {
        EncoderSettings {
            backend: self.backend.clone(),
            bitrate: self.bitrate,
            fps: self.fps,
            // pdum.rfb's encoders make an IDR every second. With congestion control the
            // periodic IDR is the largest latency spike on a slow link (a 1080p IDR is several
            // frames' worth, a freeze of a quarter second at 3 Mb/s), and nobody needs it:
            // every frame is acknowledged, joins and decoder resets get an IDR, and viewers
            // that miss frames a recovery P-frame. So none at all.
            keyframe_interval_s: if self.adaptive { 0.0 } else { 1.0 },
            jpeg_quality: self.jpeg_quality,
            preset: self.encoder_preset.clone(),
            intra_refresh: self.intra_refresh,
        }
    }

    pub(crate) fn session_config(&self, video_available: bool) -> SessionConfig {
        SessionConfig {
            max_inflight: self.max_inflight.max(1),
            still_after: self.still_after,
            stats_interval: self.stats_interval,
            transports: self.transports,
            video_available,
            image_format: self.image_format,
            encoder: Arc::new(self.encoder_settings()),
            resize: self.resize,
            max_events_per_second: self.max_events_per_second,
            max_viewers: self.max_viewers,
            pixel_ratio: self.pixel_ratio,
            color: self.color.clone().map(Arc::new),
            adaptive: self.adaptive.then(crate::session::AdaptiveConfig::default),
            recovery: backend_recovers(&self.backend) && !self.intra_refresh,
            ..SessionConfig::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StreamError> {
        let bad = |m: String| Err(StreamError::InvalidConfig(m));
        if self.token.as_deref() == Some("") {
            return bad("an empty token would admit anyone: give a token or none".into());
        }
        if self.width == 0 || self.height == 0 {
            return bad(format!(
                "size {}x{} must be at least 1x1",
                self.width, self.height
            ));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return bad(format!("fps {} must be between 0 and 1000", self.fps));
        }
        if self.bitrate < 10_000 {
            return bad(format!("bitrate {} b/s is below 10 kb/s", self.bitrate));
        }
        if self.max_viewers == 0 {
            return bad("max_viewers 0 admits nobody".into());
        }
        Ok(())
    }
}

/// Whether `backend` makes recovery P-frames ([`SessionConfig::recovery`]).
pub(crate) fn backend_recovers(backend: &str) -> bool {
    framecast_encode::registry::find(backend).is_ok_and(|d| d.recovery)
}
