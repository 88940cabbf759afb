//! framecast-io: getting frames in and encoded video out, without any network or async code.
//!
//! * Readers implementing [`FrameSource`]: [`Y4mReader`] (YUV4MPEG2: 4:2:0, 4:4:4, mono),
//!   [`RawReader`] (headerless RGBA/BGRA/RGB/NV12/I420) and [`open_input`], which picks one from
//!   a path (or `-` for stdin) and an [`InputHint`] carrying `--format/--size/--fps`.
//! * Synthetic patterns: [`PatternSource`] and the allocation-free [`render_into`] draw a test
//!   card with flat colour patches at known places ([`test_card_patches`]), moving bands, a
//!   gradient and a plasma, deterministically from the frame index.
//! * Writers: [`AtomicFile`] (temp file + fsync + rename), [`H264FileWriter`] (Annex B `.h264`)
//!   and [`Mp4Writer`] (fast-start `.mp4`: `moov` before `mdat`).
//!
//! Every failure is an [`IoError`] whose message names the file and the value involved.
//!
//! ```
//! use framecast_io::{FrameSource, PatternKind, PatternSource, H264FileWriter};
//!
//! let mut source = PatternSource::new(PatternKind::TestCard, 64, 48, (30, 1), Some(2))?;
//! let mut frames = 0;
//! while let Some(frame) = source.next_frame()? {
//!     let view = frame.as_frame(); // a framecast_core::Frame, ready for conversion/encoding
//!     assert_eq!((view.width(), view.height()), (64, 48));
//!     frames += 1;
//! }
//! assert_eq!(frames, 2);
//!
//! // Outputs appear atomically: nothing at `path` until `finish` succeeds.
//! let dir = std::env::temp_dir();
//! let path = dir.join(format!("framecast-io-doc-{}.h264", std::process::id()));
//! let mut out = H264FileWriter::create(&path)?;
//! out.write_packet(&[0, 0, 0, 1, 0x09, 0x10])?; // an access unit delimiter
//! assert_eq!(out.finish()?, 6);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), framecast_io::IoError>(())
//! ```

#![warn(missing_docs)]

mod atomic;
mod error;
mod mp4;
mod pattern;
mod source;
mod y4m;
mod y4m_writer;

pub use atomic::{AtomicFile, H264FileWriter};
pub use error::IoError;
pub use mp4::{Mp4Config, Mp4Summary, Mp4Writer};
// The owned frame type lives in framecast-core (streams need it without the file layer).
pub use framecast_core::{frame_len, OwnedFrame};
pub use pattern::{
    render_into, test_card_mismatch, test_card_patches, ColourPatch, PatternKind, PatternSource,
};
pub use source::{open_input, open_reader, FrameSource, InputHint, RawReader};
pub use y4m::{Y4mColorspace, Y4mReader};
pub use y4m_writer::Y4mWriter;
