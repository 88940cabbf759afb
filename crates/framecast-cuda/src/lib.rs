//! framecast-cuda: RGB(A) → NV12 for frames that live in CUDA device memory (CuPy, PyTorch,
//! JAX, Numba arrays), converted on their own GPU.
//!
//! - **No toolkit to build, no second context.** The driver and NVRTC are loaded at run time
//!   (cudarc's dynamic loading); the kernel (`rgb_to_nv12.cu`) is compiled by NVRTC for the
//!   device on first use; it runs in the device's *primary* context, the one the array
//!   libraries use. A machine without a driver gets [`CudaError::NoDriver`].
//! - **Same pixels as the CPU path.** The equations, ranges, 2×2 RGB chroma averaging, float
//!   quantisation and odd-size edge replication of `framecast_core::reference`: within ±1.
//! - **In order with the frame's stream.** The conversion is queued on the stream the array
//!   names ([`DeviceFrame::stream`]); later work there (rendering the next frame into the same
//!   buffer) waits for the read. Only NV12 crosses the bus, through a ring of pinned host
//!   buffers read back on a copy stream of framecast's own, so frame k's readback overlaps
//!   frame k+1's rendering. [`CudaConverter::submit`] returns at once.
//!
//! ```no_run
//! use framecast_core::{ColorSpace, PixelFormat};
//! use framecast_cuda::{CudaConverter, DeviceFrame};
//! # fn device_pointer() -> u64 { 0 }
//! let mut conv = CudaConverter::new(0, 2)?;
//! let frame = DeviceFrame {
//!     ptr: device_pointer(),
//!     format: PixelFormat::Rgba8,
//!     width: 1920,
//!     height: 1080,
//!     pitch: 1920 * 4,
//!     stream: None,
//! };
//! let ticket = conv.submit(&frame, ColorSpace::default())?;
//! conv.wait(ticket)?;
//! let y_bytes = conv.frame(ticket)?.width();
//! conv.release(ticket)?;
//! # let _ = y_bytes;
//! # Ok::<(), framecast_cuda::CudaError>(())
//! ```

#![warn(missing_docs)]

mod driver;
mod ring;

pub use driver::{pointer_device, probe, CudaInfo, DeviceInfo};
pub use ring::{Completion, CudaConverter, HostNv12, Ticket};

use framecast_core::{FrameError, PixelFormat};
use thiserror::Error;

/// Why a CUDA frame could not be converted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CudaError {
    /// No usable NVIDIA driver.
    #[error("no CUDA driver: {0}")]
    NoDriver(String),
    /// NVRTC, which compiles the conversion kernel, is missing.
    #[error("cannot compile the CUDA conversion kernel: {0}")]
    NoNvrtc(String),
    /// NVRTC rejected the kernel (a framecast bug: please report it with the log).
    #[error("NVRTC failed to compile the conversion kernel: {0}")]
    Compile(String),
    /// A driver call failed.
    #[error("{call} failed: {detail}")]
    Driver {
        /// The driver function.
        call: &'static str,
        /// The driver's message.
        detail: String,
    },
    /// The pointer is not CUDA device memory the driver knows.
    #[error("not a CUDA device pointer: {0}")]
    NotDeviceMemory(String),
    /// The format has no CUDA path.
    #[error("pixel format {0} has no CUDA conversion path (use RGB8, RGBA8, BGRA8, RGBA f16/f32 or NV12)")]
    UnsupportedFormat(&'static str),
    /// The frame's geometry does not describe valid memory.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Every slot is in use (or the size changed while frames are in flight): wait for and
    /// release the oldest ticket.
    #[error("all readback slots are in use: wait for and release the oldest frame first")]
    RingFull,
    /// The ticket is not in the ring (never submitted, or already released).
    #[error("no frame is in the ring for ticket {0}")]
    UnknownTicket(Ticket),
    /// The frame was asked for before its readback finished.
    #[error("ticket {0} is still being converted")]
    NotReady(Ticket),
    /// Ring depth out of range.
    #[error("ring depth must be 1..=16, got {0}")]
    Depth(usize),
}

/// A frame in CUDA device memory: a pitched 2-D array of pixels (or, for NV12, `height` rows
/// of Y followed by `ceil(height/2)` rows of interleaved CbCr, all `pitch` bytes apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFrame {
    /// Device address of the first pixel.
    pub ptr: u64,
    /// RGB8, RGBA8, BGRA8, RGBA f16, RGBA f32 or NV12.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from one row to the next.
    pub pitch: usize,
    /// The CUDA stream (`CUstream` handle; 1 = legacy default, 2 = per-thread default) whose
    /// work produces the frame: the conversion is queued on it. `None`: the frame is ready
    /// now (or was made ready on [`CudaConverter::stream_handle`]), and framecast's own
    /// stream reads it.
    pub stream: Option<u64>,
}

impl DeviceFrame {
    /// Check sizes, pitch and the alignment the kernel's loads need.
    pub fn validate(&self) -> Result<(), CudaError> {
        let (bpp, align) = match self.format {
            PixelFormat::Rgb8 => (3, 1),
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => (4, 4),
            PixelFormat::RgbaF16 => (8, 2),
            PixelFormat::RgbaF32 => (16, 4),
            PixelFormat::Nv12 => (1, 1),
            other => return Err(CudaError::UnsupportedFormat(other.name())),
        };
        if self.width == 0 || self.height == 0 {
            return Err(FrameError::Conversion(format!(
                "empty frame ({}x{})",
                self.width, self.height
            ))
            .into());
        }
        if self.format == PixelFormat::Nv12 && self.width % 2 != 0 {
            return Err(FrameError::Conversion(format!(
                "an NV12 device frame needs an even width (got {})",
                self.width
            ))
            .into());
        }
        let row = self.width as usize * bpp;
        if self.pitch < row {
            return Err(FrameError::Conversion(format!(
                "row pitch {} is shorter than a row of {} bytes",
                self.pitch, row
            ))
            .into());
        }
        if self.ptr % align != 0 || self.pitch % align as usize != 0 {
            return Err(FrameError::Conversion(format!(
                "{} device frames must be {align}-byte aligned (pointer {:#x}, pitch {}): pass \
                 a contiguous array (cupy.ascontiguousarray / tensor.contiguous())",
                self.format.name(),
                self.ptr,
                self.pitch
            ))
            .into());
        }
        Ok(())
    }
}
