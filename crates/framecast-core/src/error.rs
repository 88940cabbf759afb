use thiserror::Error;

/// Why a frame or an image could not be built or converted.
///
/// Every variant names the offending value, so the message alone tells a caller what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Width or height is zero.
    #[error("frame dimensions {width}x{height} are invalid: width and height must be at least 1")]
    ZeroDimension {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// Width or height exceeds [`crate::MAX_DIMENSION`].
    #[error(
        "frame dimensions {width}x{height} are too large: the maximum is {max} on either side"
    )]
    TooLarge {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// The limit.
        max: u32,
    },
    /// A plane's stride is shorter than one row of pixels.
    #[error("{plane} stride {stride} bytes is shorter than one row ({row_bytes} bytes for width {width})")]
    StrideTooShort {
        /// Which plane ("packed", "Y", "UV", "U", "V").
        plane: &'static str,
        /// The stride given.
        stride: usize,
        /// Bytes one row needs.
        row_bytes: usize,
        /// The frame width.
        width: u32,
    },
    /// A plane's buffer is shorter than its stride times its rows.
    #[error(
        "{plane} buffer holds {len} bytes but {needed} are needed ({rows} rows of stride {stride})"
    )]
    BufferTooShort {
        /// Which plane.
        plane: &'static str,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
        /// Rows in the plane.
        rows: usize,
        /// The stride.
        stride: usize,
    },
    /// A float plane is not aligned for its sample type.
    #[error("{format} data must be aligned to {align} bytes (buffer address is misaligned)")]
    Misaligned {
        /// The pixel format.
        format: &'static str,
        /// Required alignment.
        align: usize,
    },
    /// The source and destination images disagree on size.
    #[error("size mismatch: frame is {frame_width}x{frame_height} but the destination image is {image_width}x{image_height}")]
    SizeMismatch {
        /// Frame width.
        frame_width: u32,
        /// Frame height.
        frame_height: u32,
        /// Image width.
        image_width: u32,
        /// Image height.
        image_height: u32,
    },
    /// A tightly packed buffer of the wrong length.
    #[error("a tightly packed {width}x{height} {format} frame is {expected} bytes, but {len} were given")]
    PackedLength {
        /// The pixel format's name.
        format: &'static str,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// Bytes such a frame occupies.
        expected: usize,
        /// Bytes given.
        len: usize,
    },
    /// The conversion library refused the input (should not happen after validation).
    #[error("colour conversion failed: {0}")]
    Conversion(String),
}
