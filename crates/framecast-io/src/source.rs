//! The [`FrameSource`] trait, raw-file reading and [`open_input`].

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use framecast_core::PixelFormat;

use crate::y4m::read_full;
use crate::{frame_len, IoError, OwnedFrame, Y4mReader};

/// Something that yields frames one at a time: a file reader, a pattern generator.
pub trait FrameSource: Send {
    /// Frame width in pixels.
    fn width(&self) -> u32;
    /// Frame height in pixels.
    fn height(&self) -> u32;
    /// Frame rate as `(numerator, denominator)`, if the source knows it.
    fn fps(&self) -> Option<(u32, u32)>;
    /// How many frames the source expects to yield, if it can tell (for progress bars).
    fn frame_count_hint(&self) -> Option<u64>;
    /// The next frame, `Ok(None)` at the end.
    fn next_frame(&mut self) -> Result<Option<OwnedFrame>, IoError>;
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn width(&self) -> u32 {
        (**self).width()
    }
    fn height(&self) -> u32 {
        (**self).height()
    }
    fn fps(&self) -> Option<(u32, u32)> {
        (**self).fps()
    }
    fn frame_count_hint(&self) -> Option<u64> {
        (**self).frame_count_hint()
    }
    fn next_frame(&mut self) -> Result<Option<OwnedFrame>, IoError> {
        (**self).next_frame()
    }
}

/// Reads headerless frames of one pixel format back to back (`.rgba`, `.nv12`, `.yuv`, ...).
pub struct RawReader<R> {
    reader: R,
    name: String,
    format: PixelFormat,
    width: u32,
    height: u32,
    fps: Option<(u32, u32)>,
    frame_size: usize,
    frame_count_hint: Option<u64>,
    next_index: u64,
    done: bool,
}

impl<R: Read> RawReader<R> {
    /// A reader of `format` frames of `width x height`. `format` must be RGBA8, BGRA8, RGB8,
    /// NV12 or I420 (I420 is what `.yuv` files usually hold). When `total_len` (a file's size)
    /// is given it must be a whole number of frames; otherwise a trailing partial frame is
    /// reported as truncated when it is reached.
    pub fn new(
        reader: R,
        format: PixelFormat,
        width: u32,
        height: u32,
        fps: Option<(u32, u32)>,
        total_len: Option<u64>,
    ) -> Result<Self, IoError> {
        Self::with_name(reader, "raw input", format, width, height, fps, total_len)
    }

    /// Like [`RawReader::new`], naming the input in error messages.
    pub fn with_name(
        reader: R,
        name: impl Into<String>,
        format: PixelFormat,
        width: u32,
        height: u32,
        fps: Option<(u32, u32)>,
        total_len: Option<u64>,
    ) -> Result<Self, IoError> {
        let name = name.into();
        if !matches!(
            format,
            PixelFormat::Rgba8
                | PixelFormat::Bgra8
                | PixelFormat::Rgb8
                | PixelFormat::Nv12
                | PixelFormat::I420
        ) {
            return Err(IoError::Unsupported {
                name,
                what: format!(
                    "raw pixel format {}: raw inputs may be rgba, bgra, rgb24, nv12 or i420",
                    format.name()
                ),
            });
        }
        // Reject zero or huge sizes with framecast-core's messages.
        if width == 0
            || height == 0
            || width > framecast_core::MAX_DIMENSION
            || height > framecast_core::MAX_DIMENSION
        {
            framecast_core::Frame::rgba8(&[], width, height, 0)?;
        }
        let frame_size = frame_len(format, width, height).unwrap_or(usize::MAX);
        let mut frame_count_hint = None;
        if let Some(len) = total_len {
            if len % frame_size as u64 != 0 {
                return Err(IoError::RawSizeMismatch {
                    name: name.clone(),
                    len,
                    width,
                    height,
                    format: format.name(),
                    frame_size: frame_size as u64,
                });
            }
            frame_count_hint = Some(len / frame_size as u64);
        }
        Ok(RawReader {
            reader,
            name,
            format,
            width,
            height,
            fps,
            frame_size,
            frame_count_hint,
            next_index: 0,
            done: false,
        })
    }

    /// The pixel format of the frames.
    pub fn format(&self) -> PixelFormat {
        self.format
    }
}

impl<R> std::fmt::Debug for RawReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Send> FrameSource for RawReader<R> {
    fn width(&self) -> u32 {
        self.width
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn fps(&self) -> Option<(u32, u32)> {
        self.fps
    }
    fn frame_count_hint(&self) -> Option<u64> {
        self.frame_count_hint
    }
    fn next_frame(&mut self) -> Result<Option<OwnedFrame>, IoError> {
        if self.done {
            return Ok(None);
        }
        let mut data = vec![0u8; self.frame_size];
        let got = read_full(&mut self.reader, &mut data, &self.name);
        let got = match got {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        if got == 0 {
            self.done = true;
            return Ok(None);
        }
        if got < self.frame_size {
            self.done = true;
            return Err(IoError::Truncated {
                name: self.name.clone(),
                frame: self.next_index,
                got: got as u64,
                expected: self.frame_size as u64,
            });
        }
        self.next_index += 1;
        Ok(Some(OwnedFrame::new(
            self.format,
            self.width,
            self.height,
            data,
        )?))
    }
}

/// What the caller knows about an input that the input itself may not say (command-line flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputHint {
    /// Pixel format of a raw input (`--format`); overrides the one implied by the extension.
    pub format: Option<PixelFormat>,
    /// Frame size of a raw input (`--size WxH`); ignored for y4m, whose header has it.
    pub size: Option<(u32, u32)>,
    /// Frame rate (`--fps`); overrides the y4m header's `F` when given.
    pub fps: Option<(u32, u32)>,
}

/// Opens a frame file, or stdin when `path` is `-`.
///
/// * `.y4m` is read with [`Y4mReader`].
/// * `.rgba`, `.bgra`, `.rgb`, `.nv12`, `.yuv` (I420) and `.raw` are read with [`RawReader`];
///   they need `hint.size`, and `.raw` also needs `hint.format`.
/// * Other extensions are read as raw when both `hint.format` and `hint.size` are given.
/// * stdin is read as y4m when it starts with `YUV4MPEG2 `, otherwise as raw using the hint.
pub fn open_input(path: &Path, hint: InputHint) -> Result<Box<dyn FrameSource>, IoError> {
    if path.as_os_str() == "-" {
        return open_stdin(hint);
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ext_format = match ext.as_str() {
        "y4m" => None,
        "rgba" => Some(PixelFormat::Rgba8),
        "bgra" => Some(PixelFormat::Bgra8),
        "rgb" => Some(PixelFormat::Rgb8),
        "nv12" => Some(PixelFormat::Nv12),
        "yuv" => Some(PixelFormat::I420),
        "raw" => None,
        _ if hint.format.is_some() && hint.size.is_some() => None,
        _ => {
            return Err(IoError::UnknownInput {
                path: path.to_owned(),
                ext,
            })
        }
    };
    let name = path.display().to_string();
    let open = |p: &Path| -> Result<(File, u64), IoError> {
        let open_err = |source| IoError::Open {
            path: p.to_owned(),
            source,
        };
        let file = File::open(p).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        Ok((file, len))
    };
    if ext == "y4m" {
        let (file, len) = open(path)?;
        let reader = Y4mReader::with_name(BufReader::new(file), name, Some(len))?;
        return Ok(with_fps(Box::new(reader), hint.fps));
    }
    let format = hint
        .format
        .or(ext_format)
        .ok_or_else(|| IoError::MissingFormat {
            path: path.to_owned(),
        })?;
    let (width, height) = hint.size.ok_or_else(|| IoError::MissingSize {
        path: path.to_owned(),
    })?;
    let (file, len) = open(path)?;
    let reader = RawReader::with_name(
        BufReader::new(file),
        name,
        format,
        width,
        height,
        hint.fps,
        Some(len),
    )?;
    Ok(Box::new(reader))
}

fn open_stdin(hint: InputHint) -> Result<Box<dyn FrameSource>, IoError> {
    open_reader(Box::new(BufReader::new(std::io::stdin())), "<stdin>", hint)
}

/// Chooses y4m or raw for a stream whose first bytes are `head` (already part of `reader`).
fn open_stream(
    reader: Box<dyn Read + Send>,
    head: &[u8],
    name: &str,
    hint: InputHint,
) -> Result<Box<dyn FrameSource>, IoError> {
    if head == b"YUV4MPEG2 " {
        let reader = Y4mReader::with_name(reader, name, None)?;
        return Ok(with_fps(Box::new(reader), hint.fps));
    }
    let path = PathBuf::from("-");
    let format = hint
        .format
        .ok_or_else(|| IoError::MissingFormat { path: path.clone() })?;
    let (width, height) = hint.size.ok_or(IoError::MissingSize { path })?;
    Ok(Box::new(RawReader::with_name(
        reader, name, format, width, height, hint.fps, None,
    )?))
}

/// Opens any byte stream the way [`open_input`] opens stdin: y4m when it starts with
/// `YUV4MPEG2 `, raw otherwise (then `hint.format` and `hint.size` are required).
pub fn open_reader(
    mut reader: Box<dyn Read + Send>,
    name: &str,
    hint: InputHint,
) -> Result<Box<dyn FrameSource>, IoError> {
    let mut head = [0u8; 10];
    let got = read_full(&mut reader, &mut head, name)?;
    let chained: Box<dyn Read + Send> = Box::new(Cursor::new(head[..got].to_vec()).chain(reader));
    open_stream(chained, &head[..got], name, hint)
}

fn with_fps(source: Box<dyn FrameSource>, fps: Option<(u32, u32)>) -> Box<dyn FrameSource> {
    match fps {
        None => source,
        Some(fps) => Box::new(FpsOverride { inner: source, fps }),
    }
}

struct FpsOverride {
    inner: Box<dyn FrameSource>,
    fps: (u32, u32),
}

impl FrameSource for FpsOverride {
    fn width(&self) -> u32 {
        self.inner.width()
    }
    fn height(&self) -> u32 {
        self.inner.height()
    }
    fn fps(&self) -> Option<(u32, u32)> {
        Some(self.fps)
    }
    fn frame_count_hint(&self) -> Option<u64> {
        self.inner.frame_count_hint()
    }
    fn next_frame(&mut self) -> Result<Option<OwnedFrame>, IoError> {
        self.inner.next_frame()
    }
}
