//! Encoded packets to files: `.h264` (Annex B) or fast-start `.mp4`, chosen by extension,
//! written atomically (nothing appears at the path unless [`PacketWriter::finish`] succeeds).

use crate::{EncodedPacket, OutputFormat};
use framecast_core::ColorSpace;
use framecast_io::{H264FileWriter, IoError, Mp4Config, Mp4Writer};
use std::path::{Path, PathBuf};

/// Why packets could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The output's extension names no container.
    #[error("output {}: unknown extension {extension:?}; use .h264 (Annex B) or .mp4", path.display())]
    UnknownExtension {
        /// The path.
        path: PathBuf,
        /// Its extension.
        extension: String,
    },
    /// An MP4 needs the stream's avcC and the encoder had none.
    #[error("the encoder produced no avcC record (needed for .mp4)")]
    NoAvcc,
    /// The file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Container of an output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Annex B elementary stream.
    H264,
    /// Fast-start MP4.
    Mp4,
}

impl Container {
    /// Pick by extension.
    pub fn from_path(path: &Path) -> Result<Self, WriteError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "h264" | "264" | "avc" => Ok(Container::H264),
            "mp4" | "m4v" => Ok(Container::Mp4),
            _ => Err(WriteError::UnknownExtension {
                path: path.to_path_buf(),
                extension: ext,
            }),
        }
    }

    /// The packet format the encoder should produce for this container.
    pub fn packet_format(self) -> OutputFormat {
        match self {
            Container::H264 => OutputFormat::AnnexB,
            Container::Mp4 => OutputFormat::Avcc,
        }
    }
}

/// Writes packets to a `.h264` or `.mp4`; nothing appears at the path unless `finish` succeeds.
pub enum PacketWriter {
    /// `.h264`
    H264(H264FileWriter),
    /// `.mp4`
    Mp4 {
        /// The writer.
        writer: Mp4Writer,
        /// dts of the first packet, so the track starts at 0.
        first_pts: Option<i64>,
        /// avcC already set.
        have_avcc: bool,
    },
}

const TIMESCALE: u32 = 90_000;

impl PacketWriter {
    /// Create the temporary output.
    pub fn create(
        path: &Path,
        container: Container,
        width: u32,
        height: u32,
        color: ColorSpace,
    ) -> Result<Self, WriteError> {
        Ok(match container {
            Container::H264 => PacketWriter::H264(H264FileWriter::create(path)?),
            Container::Mp4 => PacketWriter::Mp4 {
                writer: Mp4Writer::create(
                    path,
                    Mp4Config {
                        width,
                        height,
                        timescale: TIMESCALE,
                        avcc: Vec::new(),
                        color: Some((
                            color.primaries_code(),
                            color.transfer_code(),
                            color.matrix_code(),
                            color.full_range(),
                        )),
                    },
                )?,
                first_pts: None,
                have_avcc: false,
            },
        })
    }

    /// Append one packet; `avcc` is the encoder's current avcC (needed once for MP4).
    pub fn write(
        &mut self,
        p: &EncodedPacket,
        avcc: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<(), WriteError> {
        match self {
            PacketWriter::H264(w) => w.write_packet(&p.data)?,
            PacketWriter::Mp4 {
                writer,
                first_pts,
                have_avcc,
            } => {
                if !*have_avcc {
                    writer.set_avcc(avcc().ok_or(WriteError::NoAvcc)?)?;
                    *have_avcc = true;
                }
                // The track's time 0 is the first decode time (the first packet's dts: with
                // B-frames it is before its pts, and the MP4's edit list skips the gap).
                let first = *first_pts.get_or_insert(p.dts_ns);
                // Round to the nearest tick: 33_333_333 ns at 30 fps is 3000 ticks, not 2999.
                let ticks = |ns: i64| {
                    ((ns as i128 * TIMESCALE as i128 + 500_000_000) / 1_000_000_000) as u64
                };
                let duration = ticks(p.duration_ns).max(1) as u32;
                writer.write_sample_at(
                    &p.data,
                    ticks(p.dts_ns - first),
                    ticks(p.pts_ns - first),
                    duration,
                    p.keyframe,
                )?;
            }
        }
        Ok(())
    }

    /// Commit the file; returns its size in bytes.
    pub fn finish(self) -> Result<u64, WriteError> {
        Ok(match self {
            PacketWriter::H264(w) => w.finish()?,
            PacketWriter::Mp4 { writer, .. } => writer.finish()?.bytes,
        })
    }
}
