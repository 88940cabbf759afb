//! What names a viewer, an encoder group and a published frame.

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
