//! YUV4MPEG2 (`.y4m`) reading.
//!
//! The format (as written by ffmpeg, x264 and mjpegtools): one ASCII stream header
//! `YUV4MPEG2 W<width> H<height> F<num>:<den> I<p|t|b|m> A<num>:<den> C<colourspace> X<extension>`
//! (parameters separated by single spaces, any order, ended by `\n`), then for every frame a
//! `FRAME` line (optionally with its own space-separated parameters) followed by the raw planes:
//! Y, then Cb, then Cr, 8-bit, tightly packed. A missing `C` means `420jpeg`.

use std::io::{ErrorKind, Read};

use framecast_core::{PixelFormat, Range, MAX_DIMENSION};

use crate::{FrameSource, IoError, OwnedFrame};

/// Longest stream or frame header line accepted; anything longer is garbage, not a header.
const MAX_HEADER_LINE: usize = 4096;

/// The colourspaces (`C` parameter) this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Y4mColorspace {
    /// `C420jpeg` (and the default when `C` is absent): 4:2:0, chroma centred.
    C420Jpeg,
    /// `C420paldv`: 4:2:0, PAL-DV chroma siting.
    C420Paldv,
    /// `C420mpeg2`: 4:2:0, MPEG-2 chroma siting (left).
    C420Mpeg2,
    /// `C420`: 4:2:0, siting unspecified.
    C420,
    /// `C444`: full-resolution chroma; downsampled to 4:2:0 by 2x2 averaging.
    C444,
    /// `Cmono`: luma only; chroma is filled with 128 (neutral).
    Mono,
}

impl Y4mColorspace {
    /// The header tag without its `C` (e.g. `"420jpeg"`).
    pub fn tag(self) -> &'static str {
        match self {
            Y4mColorspace::C420Jpeg => "420jpeg",
            Y4mColorspace::C420Paldv => "420paldv",
            Y4mColorspace::C420Mpeg2 => "420mpeg2",
            Y4mColorspace::C420 => "420",
            Y4mColorspace::C444 => "444",
            Y4mColorspace::Mono => "mono",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "420jpeg" => Y4mColorspace::C420Jpeg,
            "420paldv" => Y4mColorspace::C420Paldv,
            "420mpeg2" => Y4mColorspace::C420Mpeg2,
            "420" => Y4mColorspace::C420,
            "444" => Y4mColorspace::C444,
            "mono" => Y4mColorspace::Mono,
            _ => return None,
        })
    }

    /// Bytes one frame of this colourspace occupies in the file.
    fn frame_bytes(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            Y4mColorspace::C444 => 3 * w * h,
            Y4mColorspace::Mono => w * h,
            _ => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        }
    }
}

/// Reads a YUV4MPEG2 stream and yields I420 [`OwnedFrame`]s.
///
/// 4:2:0 colourspaces pass through unchanged; `C444` chroma is averaged over each 2x2 block
/// (over the 1 or 2 samples that exist at odd right/bottom edges, rounding half up); `Cmono`
/// gets neutral chroma (128). Other colourspaces (4:2:2, 4:1:1, high bit depth, alpha) are
/// rejected when the header is read, naming the tag. Interlaced streams are returned as
/// progressive frames (fields are not separated).
pub struct Y4mReader<R> {
    reader: R,
    name: String,
    width: u32,
    height: u32,
    fps: Option<(u32, u32)>,
    pixel_aspect: Option<(u32, u32)>,
    interlace: char,
    colorspace: Y4mColorspace,
    color_range: Option<Range>,
    frame_count_hint: Option<u64>,
    next_index: u64,
    scratch: Vec<u8>,
    done: bool,
}

impl<R: Read> Y4mReader<R> {
    /// Reads the stream header from `reader`; errors name the input `"y4m input"`.
    pub fn new(reader: R) -> Result<Self, IoError> {
        Self::with_name(reader, "y4m input", None)
    }

    /// Reads the stream header; `name` (a file name, `<stdin>`) prefixes error messages and
    /// `total_len` (the file size, if known) gives [`FrameSource::frame_count_hint`].
    pub fn with_name(
        mut reader: R,
        name: impl Into<String>,
        total_len: Option<u64>,
    ) -> Result<Self, IoError> {
        let name = name.into();
        let bad = |reason: String| IoError::Y4mHeader {
            name: name.clone(),
            reason,
        };
        let line = match read_line(&mut reader, &name)? {
            Line::Complete(l) => l,
            Line::Eof => {
                return Err(bad(
                    "the input is empty (expected a YUV4MPEG2 header)".into()
                ))
            }
            Line::Partial(l) | Line::TooLong(l) => {
                if !l.starts_with(b"YUV4MPEG2") {
                    return Err(bad(format!(
                        "the input does not start with \"YUV4MPEG2 \" (found {}): is it a y4m file?",
                        show(&l)
                    )));
                }
                return Err(bad(format!(
                    "the stream header {} is not terminated by a newline within {MAX_HEADER_LINE} bytes",
                    show(&l)
                )));
            }
        };
        let header_len = line.len() as u64 + 1;
        let rest = match line.strip_prefix(b"YUV4MPEG2 ") {
            Some(rest) => rest,
            None if line == b"YUV4MPEG2" => &[][..],
            None => {
                return Err(bad(format!(
                    "the input does not start with \"YUV4MPEG2 \" (found {}): is it a y4m file?",
                    show(&line)
                )))
            }
        };
        // ASCII, not just UTF-8: each parameter is a one-byte tag and a value.
        let rest = std::str::from_utf8(rest)
            .ok()
            .filter(|r| r.is_ascii())
            .ok_or_else(|| bad(format!("the stream header {} is not ASCII", show(&line))))?;

        let (mut width, mut height) = (None, None);
        let mut fps = None;
        let mut pixel_aspect = None;
        let mut interlace = 'p';
        let mut colorspace = Y4mColorspace::C420Jpeg;
        let mut color_range = None;
        for token in rest.split(' ').filter(|t| !t.is_empty()) {
            let (tag, value) = token.split_at(1);
            match tag {
                "W" => width = Some(parse_dim(value, "width", &bad)?),
                "H" => height = Some(parse_dim(value, "height", &bad)?),
                "F" => fps = parse_ratio(value, "frame rate F", &bad)?,
                "A" => pixel_aspect = parse_ratio(value, "pixel aspect A", &bad)?,
                "I" => {
                    interlace = match value {
                        "p" | "t" | "b" | "m" | "?" => value.chars().next().unwrap_or('p'),
                        _ => {
                            return Err(bad(format!(
                                "unknown interlacing I{value} (expected Ip, It, Ib or Im)"
                            )))
                        }
                    }
                }
                "C" => {
                    colorspace =
                        Y4mColorspace::from_tag(value).ok_or_else(|| IoError::Unsupported {
                            name: name.clone(),
                            what: format!(
                                "y4m colourspace C{value}: framecast reads 8-bit C420jpeg, \
                                 C420paldv, C420mpeg2, C420, C444 and Cmono; convert with \
                                 `ffmpeg -i INPUT -pix_fmt yuv420p OUTPUT.y4m`"
                            ),
                        })?
                }
                "X" => match value {
                    "COLORRANGE=FULL" => color_range = Some(Range::Full),
                    "COLORRANGE=LIMITED" => color_range = Some(Range::Limited),
                    _ => {}
                },
                // Unknown parameters are ignored, as the format asks of readers.
                _ => {}
            }
        }
        let width =
            width.ok_or_else(|| bad("the stream header has no width (W parameter)".into()))?;
        let height =
            height.ok_or_else(|| bad("the stream header has no height (H parameter)".into()))?;
        let frame_bytes = colorspace.frame_bytes(width, height) as u64;
        let frame_count_hint = total_len
            .and_then(|len| len.checked_sub(header_len))
            .map(|body| body / (frame_bytes + b"FRAME\n".len() as u64));
        Ok(Y4mReader {
            reader,
            name,
            width,
            height,
            fps,
            pixel_aspect,
            interlace,
            colorspace,
            color_range,
            frame_count_hint,
            next_index: 0,
            scratch: Vec::new(),
            done: false,
        })
    }

    /// The stream's colourspace (`C` parameter).
    pub fn colorspace(&self) -> Y4mColorspace {
        self.colorspace
    }
    /// The interlacing tag (`'p'`, `'t'`, `'b'`, `'m'` or `'?'`); frames are read as progressive.
    pub fn interlace(&self) -> char {
        self.interlace
    }
    /// Pixel aspect ratio (`A` parameter), `None` when absent or `0:0` (unknown).
    pub fn pixel_aspect(&self) -> Option<(u32, u32)> {
        self.pixel_aspect
    }
    /// Sample range from ffmpeg's `XCOLORRANGE=` extension, when present.
    pub fn color_range(&self) -> Option<Range> {
        self.color_range
    }

    fn read_frame(&mut self) -> Result<Option<OwnedFrame>, IoError> {
        let index = self.next_index;
        let name = &self.name;
        let line = match read_line(&mut self.reader, name)? {
            Line::Eof => return Ok(None),
            Line::Complete(l) => l,
            Line::Partial(l) if b"FRAME".starts_with(&l) || l.starts_with(b"FRAME") => {
                return Err(IoError::Y4mHeader {
                    name: name.clone(),
                    reason: format!("frame {index}: the FRAME header {} is truncated", show(&l)),
                })
            }
            Line::Partial(l) | Line::TooLong(l) => {
                return Err(IoError::Y4mHeader {
                    name: name.clone(),
                    reason: format!("frame {index}: expected a FRAME header, found {}", show(&l)),
                })
            }
        };
        if !(line == b"FRAME" || line.starts_with(b"FRAME ")) {
            return Err(IoError::Y4mHeader {
                name: name.clone(),
                reason: format!(
                    "frame {index}: expected a FRAME header, found {}",
                    show(&line)
                ),
            });
        }

        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let expected = self.colorspace.frame_bytes(self.width, self.height);
        let mut out = vec![0u8; w * h + 2 * cw * ch];
        let truncated = |got: usize| IoError::Truncated {
            name: name.clone(),
            frame: index,
            got: got as u64,
            expected: expected as u64,
        };
        match self.colorspace {
            Y4mColorspace::C444 => {
                self.scratch.resize(expected, 0);
                let got = read_full(&mut self.reader, &mut self.scratch, name)?;
                if got < expected {
                    return Err(truncated(got));
                }
                let (y, chroma) = self.scratch.split_at(w * h);
                let (cb, cr) = chroma.split_at(w * h);
                out[..w * h].copy_from_slice(y);
                let (_, outc) = out.split_at_mut(w * h);
                let (outu, outv) = outc.split_at_mut(cw * ch);
                downsample_2x2(cb, w, h, outu);
                downsample_2x2(cr, w, h, outv);
            }
            Y4mColorspace::Mono => {
                let got = read_full(&mut self.reader, &mut out[..w * h], name)?;
                if got < expected {
                    return Err(truncated(got));
                }
                out[w * h..].fill(128);
            }
            _ => {
                let got = read_full(&mut self.reader, &mut out, name)?;
                if got < expected {
                    return Err(truncated(got));
                }
            }
        }
        self.next_index += 1;
        Ok(Some(OwnedFrame::new(
            PixelFormat::I420,
            self.width,
            self.height,
            out,
        )?))
    }
}

impl<R> std::fmt::Debug for Y4mReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mReader")
            .field("name", &self.name)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("colorspace", &self.colorspace)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Send> FrameSource for Y4mReader<R> {
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
        let r = self.read_frame();
        if !matches!(r, Ok(Some(_))) {
            // After the end or an error, keep returning end-of-stream rather than reading on
            // from the middle of a frame.
            self.done = true;
        }
        r
    }
}

/// Averages each 2x2 block of a `w x h` plane into `out` (`ceil(w/2) x ceil(h/2)`), counting only
/// the samples that exist at odd right/bottom edges and rounding half up.
pub(crate) fn downsample_2x2(src: &[u8], w: usize, h: usize, out: &mut [u8]) {
    let cw = w.div_ceil(2);
    for (cy, row) in out.chunks_exact_mut(cw).enumerate() {
        let y0 = 2 * cy;
        let y1 = (y0 + 1).min(h - 1);
        let rows = if y1 == y0 { 1 } else { 2 };
        for (cx, o) in row.iter_mut().enumerate() {
            let x0 = 2 * cx;
            let x1 = (x0 + 1).min(w - 1);
            let cols = if x1 == x0 { 1 } else { 2 };
            let mut sum = 0u32;
            for y in [y0, y1].iter().take(rows) {
                for x in [x0, x1].iter().take(cols) {
                    sum += src[y * w + x] as u32;
                }
            }
            let n = (rows * cols) as u32;
            *o = ((sum + n / 2) / n) as u8;
        }
    }
}

enum Line {
    /// A full line, without its `\n`.
    Complete(Vec<u8>),
    /// End of input before any byte.
    Eof,
    /// End of input in the middle of a line.
    Partial(Vec<u8>),
    /// No `\n` within [`MAX_HEADER_LINE`] bytes.
    TooLong(Vec<u8>),
}

fn read_line<R: Read>(reader: &mut R, name: &str) -> Result<Line, IoError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(Line::Eof),
            Ok(0) => return Ok(Line::Partial(line)),
            Ok(_) if byte[0] == b'\n' => return Ok(Line::Complete(line)),
            Ok(_) => {
                line.push(byte[0]);
                if line.len() > MAX_HEADER_LINE {
                    return Ok(Line::TooLong(line));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(IoError::Read {
                    name: name.to_owned(),
                    source: e,
                })
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    name: &str,
) -> Result<usize, IoError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(IoError::Read {
                    name: name.to_owned(),
                    source: e,
                })
            }
        }
    }
    Ok(got)
}

/// At most 40 bytes of `bytes`, quoted and escaped, for error messages.
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(40)];
    let mut s = format!("{:?}", String::from_utf8_lossy(shown));
    if bytes.len() > 40 {
        s.push_str("...");
    }
    s
}

fn parse_dim(value: &str, what: &str, bad: &impl Fn(String) -> IoError) -> Result<u32, IoError> {
    match value.parse::<u32>() {
        Ok(v) if (1..=MAX_DIMENSION).contains(&v) => Ok(v),
        _ => Err(bad(format!(
            "{what} {value:?} in the stream header is not a number from 1 to {MAX_DIMENSION}"
        ))),
    }
}

fn parse_ratio(
    value: &str,
    what: &str,
    bad: &impl Fn(String) -> IoError,
) -> Result<Option<(u32, u32)>, IoError> {
    let parsed = value
        .split_once(':')
        .and_then(|(n, d)| Some((n.parse::<u32>().ok()?, d.parse::<u32>().ok()?)));
    match parsed {
        Some((0, _)) | Some((_, 0)) => Ok(None), // 0:0 means "unknown"
        Some(r) => Ok(Some(r)),
        None => Err(bad(format!(
            "{what} {value:?} in the stream header is not of the form NUM:DEN"
        ))),
    }
}
