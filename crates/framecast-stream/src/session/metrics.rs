//! What a stream reports about itself: the counters of `/streams/<name>/metrics` and the
//! [`StreamSnapshot`] the shell publishes after every step of the core.

use super::config::{EncoderSettings, GroupKind, TransportPolicy};
use super::congestion::CcSnapshot;
use super::ids::{GroupId, ViewerId};
use serde::Serialize;
use std::sync::Arc;

/// One viewer's counters.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerMetrics {
    /// Viewer id.
    pub id: ViewerId,
    /// Its group's transport.
    pub transport: GroupKind,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames acked (displayed).
    pub frames_acked: u64,
    /// Keyframes sent.
    pub keyframes_sent: u64,
    /// Published frames this viewer did not get (skipped while its in-flight window was
    /// full, or waiting for a keyframe).
    pub frames_dropped: u64,
    /// Times this viewer missed a frame the rest of its group got, so it needed a keyframe.
    pub recoveries: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Frames in flight.
    pub inflight: usize,
    /// EMA of send → displayed ack.
    pub rtt_ms: f64,
    /// Sent fps over the last second.
    pub fps_sent: f64,
    /// Acked fps over the last second.
    pub fps_acked: f64,
    /// Bitrate over the last second.
    pub bitrate_bps: u64,
    /// Last reported decode queue.
    pub decode_queue_size: u32,
    /// Input events dropped by the rate cap.
    pub events_dropped: u64,
    /// `decoder_reset` messages received.
    pub decoder_resets: u64,
    /// Backstop trips.
    pub backstops: u64,
    /// `request_keyframe` messages received.
    pub keyframe_requests: u64,
    /// Its group.
    pub group: GroupId,
    /// Moves between encoder tiers.
    pub tier_moves: u64,
    /// Times a recovery P-frame brought it back in sync instead of a keyframe.
    pub recovered_without_keyframe: u64,
    /// Congestion control (absent when adaptation is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub congestion: Option<CcSnapshot>,
}

/// One encoder group's counters.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    /// Group id.
    pub id: GroupId,
    /// What it produces.
    pub kind: GroupKind,
    /// Viewers in it.
    pub viewers: usize,
    /// Frames encoded.
    pub frames_encoded: u64,
    /// Keyframes encoded (forced or on the encoder's cadence).
    pub keyframes_encoded: u64,
    /// EMA of encode time.
    pub encode_ms: f64,
    /// Median encode time of the last 256 frames.
    pub encode_ms_p50: f64,
    /// 95th percentile encode time of the last 256 frames.
    pub encode_ms_p95: f64,
    /// Codec string in force.
    pub codec: Option<Arc<str>>,
    /// Failed encodes.
    pub failures: u64,
    /// Recovery P-frames encoded (viewers that missed frames brought back without an IDR).
    pub recovery_frames: u64,
    /// Tier among the groups of its kind (0 = best).
    pub tier: usize,
    /// Bitrate its encoder runs at.
    pub target_bitrate: u32,
    /// Frame rate its encoder runs at.
    pub target_fps: f64,
}

/// A stream's counters.
#[derive(Debug, Clone, Serialize)]
pub struct StreamMetrics {
    /// Frames published.
    pub frames_published: u64,
    /// Frames published that no group encoded (superseded or no ready viewer).
    pub frames_not_encoded: u64,
    /// Current frame size.
    pub width: u32,
    /// Current frame size.
    pub height: u32,
    /// Encoder settings in force.
    pub encoder: Arc<EncoderSettings>,
    /// Transport policy in force.
    pub transports: TransportPolicy,
    /// Groups.
    pub groups: Vec<GroupMetrics>,
    /// Viewers.
    pub viewers: Vec<ViewerMetrics>,
}

/// The state other threads may read without asking the stream task: one value, published
/// by the shell after each step of the core (the single source of truth for size, target,
/// settings and viewer count).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSnapshot {
    /// Size of the latest published frame (the configured size before the first).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// `match_client`: the size viewers want, once known.
    pub target: Option<(u32, u32)>,
    /// Encoder settings in force.
    pub encoder: Arc<EncoderSettings>,
    /// Transport policy in force.
    pub transports: TransportPolicy,
    /// Connected viewers (past `hello`).
    pub viewers: usize,
    /// Frames the core has seen published (superseded frames are counted too).
    pub frames_published: u64,
}
