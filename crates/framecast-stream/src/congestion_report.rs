//! What congestion control reports about a viewer (in `stats`, `/metrics` and the overlay):
//! shared by the sans-IO session, which fills it, and the wire protocol, which carries it.

use serde::{Deserialize, Serialize};

/// The controller's phase, as shown in stats, `/metrics` and the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CcState {
    /// Adaptation is off: the configured rate, frame rate and window.
    Off,
    /// At full quality, nothing to do.
    Full,
    /// Congested: stepping down.
    BackingOff,
    /// Waiting after a decrease before probing.
    Holding,
    /// Healthy below full quality: stepping up.
    Probing,
}

/// A snapshot of the controller for stats and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CcSnapshot {
    /// Phase.
    pub state: CcState,
    /// Target bitrate for this viewer's link.
    pub target_bitrate: u32,
    /// Target frame rate.
    pub target_fps: f64,
    /// In-flight window.
    pub window: usize,
    /// Payload bits displayed per second (last second).
    pub delivery_bps: u64,
    /// Frame queueing delay (EMA), ms.
    pub queue_ms: f64,
    /// TCP queueing delay from the last transport sample, ms (0 without one).
    pub tcp_queue_ms: f64,
    /// Least send → ack time in the last 10 s, ms.
    pub min_rtt_ms: f64,
    /// Share of the last second's encodes this viewer skipped.
    pub skipped: f64,
    /// Decreases so far.
    pub decreases: u64,
    /// Increases so far.
    pub increases: u64,
}
