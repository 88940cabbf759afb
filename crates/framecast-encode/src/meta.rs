//! What the caller says about each frame besides its pixels.

/// Per-frame metadata passed to [`crate::Encoder::send_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Caller token, returned in the packet (or drop report) of this frame.
    pub token: u64,
    /// Presentation time in nanoseconds.
    pub pts_ns: i64,
    /// Encode this frame as an IDR (if the frame is dropped, the next encoded frame is).
    pub force_keyframe: bool,
}
