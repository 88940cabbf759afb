//! `_native.Writer`: frames to an `.mp4` or `.h264` file, written atomically (nothing appears
//! at the path unless `close()` succeeds), as the CLI's `encode` writes.

use crate::errors::{encode_error, value_error, ClosedError, EncoderError};
use crate::settings::EncoderKeywords;
use framecast_encode::file::{Container, PacketWriter};
use framecast_encode::{Encoder, EncoderEvent, FrameMeta};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

struct Open {
    encoder: Encoder,
    file: PacketWriter,
}

/// Frames in, a file out.
#[pyclass(module = "framecast._native", name = "Writer")]
pub struct NativeWriter {
    /// In a `Mutex` only to make the class `Sync` (see `NativeEncoder`).
    open: std::sync::Mutex<Option<Open>>,
    path: PathBuf,
    width: u32,
    height: u32,
    frame_ns: i64,
    frames: u64,
    pixel_format: Option<String>,
    /// The file's colour space, which CUDA frames are converted with.
    color: framecast_core::ColorSpace,
    /// Converts CUDA frames on their GPU (made on the first one).
    cuda: std::sync::Mutex<crate::cuda::CudaSlot>,
}

fn write_error(e: framecast_encode::file::WriteError) -> PyErr {
    match e {
        framecast_encode::file::WriteError::UnknownExtension { .. } => value_error(e.to_string()),
        other => pyo3::exceptions::PyOSError::new_err(other.to_string()),
    }
}

fn drain(open: &mut Open) -> Result<(), PyErr> {
    while let Some(ev) = open.encoder.receive().map_err(encode_error)? {
        if let EncoderEvent::Packet(p) = ev {
            let enc = &open.encoder;
            open.file.write(&p, || enc.avcc()).map_err(write_error)?;
        }
    }
    Ok(())
}

#[pymethods]
impl NativeWriter {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        path, width, height, *, fps = 30.0, bitrate = None, gop = None, backend = "auto",
        color = "bt709", range = "limited", pixel_format = None
    ))]
    fn new(
        path: PathBuf,
        width: u32,
        height: u32,
        fps: f64,
        bitrate: Option<u32>,
        gop: Option<u32>,
        backend: &str,
        color: &str,
        range: &str,
        pixel_format: Option<String>,
    ) -> PyResult<Self> {
        let container = Container::from_path(&path).map_err(write_error)?;
        let mut config = EncoderKeywords {
            fps,
            bitrate,
            gop,
            backend,
            color,
            range,
        }
        .config(width, height)?;
        config.output = container.packet_format();
        let color = config.color;
        let encoder = Encoder::new(config).map_err(encode_error)?;
        let file =
            PacketWriter::create(&path, container, width, height, color).map_err(write_error)?;
        Ok(NativeWriter {
            open: std::sync::Mutex::new(Some(Open { encoder, file })),
            path,
            width,
            height,
            frame_ns: (1e9 / fps).round() as i64,
            frames: 0,
            pixel_format,
            color,
            cuda: Default::default(),
        })
    }

    /// Encode and append one frame.
    #[pyo3(signature = (frame, pts_ns = None, force_keyframe = false))]
    fn write(
        &mut self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        pts_ns: Option<i64>,
        force_keyframe: bool,
    ) -> PyResult<()> {
        let cuda = self.cuda.get_mut().unwrap_or_else(|e| e.into_inner());
        let input = crate::cuda::input(cuda, frame, self.pixel_format.as_deref(), self.color)?;
        let view = input.view();
        if (view.width(), view.height()) != (self.width, self.height) {
            return Err(value_error(format!(
                "frame is {}x{} but the file is {}x{}",
                view.width(),
                view.height(),
                self.width,
                self.height
            )));
        }
        let meta = FrameMeta {
            token: self.frames,
            pts_ns: pts_ns.unwrap_or(self.frames as i64 * self.frame_ns),
            force_keyframe,
        };
        let open = self
            .open
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .ok_or_else(|| ClosedError::new_err("the writer is closed"))?;
        py.detach(|| -> PyResult<()> {
            // SAFETY: `host` holds the array the view reads; it outlives this call.
            let frame = unsafe { view.frame() }.map_err(|e| value_error(e.to_string()))?;
            let _ = open
                .encoder
                .send_frame(&frame, meta)
                .map_err(encode_error)?;
            drain(open)
        })?;
        self.frames += 1;
        Ok(())
    }

    /// Finish the file (it appears at its path only now); returns `{"path", "frames",
    /// "bytes", "codec_string"}`. Closing twice is harmless.
    fn close<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(mut open) = self
            .open
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Ok(None);
        };
        let codec = open.encoder.codec_string().map(|c| c.to_string());
        let bytes = py.detach(|| -> PyResult<u64> {
            for ev in open.encoder.flush().map_err(encode_error)? {
                if let EncoderEvent::Packet(p) = ev {
                    let enc = &open.encoder;
                    open.file.write(&p, || enc.avcc()).map_err(write_error)?;
                }
            }
            if self.frames == 0 {
                return Err(EncoderError::new_err(format!(
                    "{}: no frames were written; the file was not created",
                    self.path.display()
                )));
            }
            open.file.finish().map_err(write_error)
        })?;
        let d = PyDict::new(py);
        d.set_item("path", self.path.clone())?;
        d.set_item("frames", self.frames)?;
        d.set_item("bytes", bytes)?;
        d.set_item("codec_string", codec)?;
        Ok(Some(d))
    }

    /// Discard the file: nothing appears at the path and the temporary file is removed (what
    /// `with Writer(...)` does when its block raises). Harmless after `close()`.
    fn abort(&mut self) {
        // Dropping the writer without `finish` deletes its temporary file.
        drop(
            self.open
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }

    /// Frames written so far.
    #[getter]
    fn frames(&self) -> u64 {
        self.frames
    }

    #[getter]
    fn closed(&self) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}
