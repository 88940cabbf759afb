//! YUV4MPEG2 (`.y4m`) writing: 4:2:0 frames (`C420jpeg`), atomically.

use crate::{AtomicFile, IoError};
use framecast_core::{convert, ColorSpace, Frame, Yuv420Image, YuvLayout};
use std::path::Path;

/// Writes 4:2:0 frames to a `.y4m` file through an [`AtomicFile`]: nothing appears at the
/// path unless [`Y4mWriter::finish`] succeeds. The size comes from the first frame; every
/// frame must have it.
#[derive(Debug)]
pub struct Y4mWriter {
    file: AtomicFile,
    fps: (u32, u32),
    image: Option<Yuv420Image>,
    frames: u64,
}

impl Y4mWriter {
    /// Start writing `path` at `fps` (numerator, denominator).
    pub fn create(path: impl AsRef<Path>, fps: (u32, u32)) -> Result<Self, IoError> {
        Ok(Y4mWriter {
            file: AtomicFile::create(path)?,
            fps,
            image: None,
            frames: 0,
        })
    }

    /// Append one frame. NV12 and I420 frames are copied as they are (NV12 chroma is
    /// de-interleaved); RGB frames are converted with `cs`.
    pub fn write(&mut self, frame: &Frame<'_>, cs: ColorSpace) -> Result<(), IoError> {
        let (w, h) = (frame.width(), frame.height());
        match &self.image {
            None => {
                let header = format!(
                    "YUV4MPEG2 W{w} H{h} F{}:{} Ip A1:1 C420jpeg\n",
                    self.fps.0, self.fps.1
                );
                self.file.write_all(header.as_bytes())?;
                self.image = Some(Yuv420Image::new(w, h, YuvLayout::I420)?);
            }
            Some(img) if (img.width(), img.height()) != (w, h) => {
                return Err(IoError::InvalidArgument(format!(
                    "frame {} is {w}x{h}, but the y4m stream is {}x{}",
                    self.frames,
                    img.width(),
                    img.height()
                )))
            }
            Some(_) => {}
        }
        let img = self.image.as_mut().expect("set above");
        convert::to_yuv420(frame, cs, img)?;
        self.file.write_all(b"FRAME\n")?;
        let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        let (ys, cs_) = (img.y_stride(), img.chroma_stride());
        let (y, u, v) = img.planes();
        for r in 0..h as usize {
            self.file.write_all(&y[r * ys..r * ys + w as usize])?;
        }
        for plane in [u, v] {
            for r in 0..ch {
                self.file.write_all(&plane[r * cs_..r * cs_ + cw])?;
            }
        }
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Commit the file; returns its size in bytes. An empty stream (no frame) is an error.
    pub fn finish(self) -> Result<u64, IoError> {
        if self.frames == 0 {
            return Err(IoError::InvalidArgument(format!(
                "{}: no frames to write",
                self.file.path().display()
            )));
        }
        let bytes = self.file.bytes_written();
        self.file.commit()?;
        Ok(bytes)
    }
}
