//! The one error type of this crate.

use std::path::PathBuf;

use framecast_core::FrameError;
use thiserror::Error;

/// Why reading frames or writing a file failed.
///
/// Every message names the file (or `<stdin>`) and the offending value, and where there is an
/// obvious fix (a missing `--size`, a colourspace to convert with ffmpeg) it says so.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// An input file could not be opened.
    #[error("cannot open input {}: {source}{}", path.display(), not_found_hint(source))]
    Open {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading from an input failed (not end-of-file: a real I/O error).
    #[error("{name}: read failed: {source}")]
    Read {
        /// File name or `<stdin>`.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Creating, writing, syncing or renaming an output file failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Write {
        /// The file involved (a temporary file or the final path).
        path: PathBuf,
        /// What was being done ("create temporary file", "write", "fsync", "rename into place").
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A frame ended before all of its bytes arrived.
    #[error("{name}: frame {frame} is truncated: got {got} of {expected} bytes")]
    Truncated {
        /// File name or `<stdin>`.
        name: String,
        /// 0-based index of the truncated frame.
        frame: u64,
        /// Bytes that were present.
        got: u64,
        /// Bytes one frame needs.
        expected: u64,
    },
    /// A raw file's length is not a whole number of frames.
    #[error(
        "{name}: size {len} bytes is not a multiple of the {width}x{height} {format} frame size \
         {frame_size} bytes: is --size right?"
    )]
    RawSizeMismatch {
        /// File name or `<stdin>`.
        name: String,
        /// File length in bytes.
        len: u64,
        /// Frame width given.
        width: u32,
        /// Frame height given.
        height: u32,
        /// Pixel format name.
        format: &'static str,
        /// Bytes per frame for that size and format.
        frame_size: u64,
    },
    /// A YUV4MPEG2 stream or frame header is malformed.
    #[error("{name}: invalid YUV4MPEG2 data: {reason}")]
    Y4mHeader {
        /// File name or `<stdin>`.
        name: String,
        /// What was wrong, with the offending bytes.
        reason: String,
    },
    /// The input uses a feature this crate does not read (a y4m colourspace, a pixel format).
    #[error("{name}: unsupported {what}")]
    Unsupported {
        /// File name, `<stdin>` or the API involved.
        name: String,
        /// What is unsupported and how to get around it.
        what: String,
    },
    /// A raw input was given without its frame size.
    #[error(
        "{}: raw input needs its frame size: pass --size WIDTHxHEIGHT (e.g. --size 1920x1080)",
        path.display()
    )]
    MissingSize {
        /// The input path (`-` for stdin).
        path: PathBuf,
    },
    /// A raw input was given without its pixel format and the extension does not imply one.
    #[error(
        "{}: cannot tell the pixel format of a raw input: pass --format (rgba, bgra, rgb24, nv12 \
         or i420) or use the extension .rgba, .bgra, .rgb, .nv12 or .yuv",
        path.display()
    )]
    MissingFormat {
        /// The input path (`-` for stdin).
        path: PathBuf,
    },
    /// The input's extension is not one this crate knows.
    #[error(
        "{}: unknown input type {ext:?}: use a .y4m file, a raw .rgba/.bgra/.rgb/.nv12/.yuv/.raw \
         file, or pass --format and --size",
        path.display()
    )]
    UnknownInput {
        /// The input path.
        path: PathBuf,
        /// Its extension ("" if none).
        ext: String,
    },
    /// A pattern name did not match any [`crate::PatternKind`].
    #[error("unknown pattern {name:?}: valid patterns are testcard, bands, gradient, plasma")]
    UnknownPattern {
        /// The name given.
        name: String,
    },
    /// A caller-supplied value is invalid (a buffer too small, a zero timescale, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// An MP4 could not be produced from what was written.
    #[error("{}: {reason}", path.display())]
    Mp4 {
        /// The output path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Frame dimensions or buffer sizes were rejected by framecast-core.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

fn not_found_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::NotFound {
        " (check the path; use - to read from stdin)"
    } else {
        ""
    }
}
