//! What names a viewer, an encoder group and a published frame, and a frame's display tags.

use crate::protocol::WireColor;
use std::sync::Arc;

/// Identifies one connected viewer within a stream.
pub type ViewerId = u64;
/// Identifies one encoder group (unique for the life of the stream; a rebuilt group gets a
/// new id).
pub type GroupId = u64;

/// A published frame, as the core sees it (the pixels stay with the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Increasing publish counter (superseded frames leave gaps).
    pub id: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Publish time, µs since the display started.
    pub timestamp_us: u64,
}

/// How a frame is to be shown, tagged by the publisher (pdum.rfb's per-frame `pixel_ratio`
/// and `color`); `None` fields fall back to the stream's configuration. Tags, never
/// conversions: the pixels must already be in the declared space.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameTags {
    /// Render device pixel ratio (device pixels per logical pixel).
    pub pixel_ratio: Option<f64>,
    /// Colour description.
    pub color: Option<Arc<WireColor>>,
}
