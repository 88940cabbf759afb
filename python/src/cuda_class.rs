//! `framecast.CudaConverter`: the CUDA conversion and its pinned readback ring, on their own
//! (what `Display.publish`, `Encoder.encode` and `Writer.write` use for CUDA arrays). For
//! measuring the path and for applications that want NV12 on the host themselves.

use crate::cuda::{cuda_error, read, CudaSlot};
use crate::errors::value_error;
use framecast_core::{ColorSpace, Planes};
use framecast_cuda::{CudaError, Ticket};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::collections::HashMap;

/// CUDA device arrays -> NV12 on their own GPU, read back through a ring of `depth` pinned
/// host buffers. `submit(frame)` queues a frame and returns a ticket at once; `wait(ticket)`,
/// `nv12(ticket)` and `release(ticket)` take tickets. NV12 bytes are `height` rows of Y, then
/// `ceil(height/2)` rows of CbCr, each `2*ceil(width/2)` bytes.
#[pyclass(module = "framecast._native", name = "CudaConverter")]
pub struct NativeCudaConverter {
    slot: std::sync::Mutex<CudaSlot>,
    depth: usize,
    color: ColorSpace,
    /// Each unreleased ticket's source object (array or DLPack capsule).
    keep: HashMap<Ticket, Py<PyAny>>,
}

impl NativeCudaConverter {
    fn conv(&mut self) -> PyResult<&mut framecast_cuda::CudaConverter> {
        self.slot
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .converter()
            .ok_or_else(|| value_error("nothing was submitted yet"))
    }
}

#[pymethods]
impl NativeCudaConverter {
    #[new]
    #[pyo3(signature = (*, depth = 2, color = "bt709", range = "limited"))]
    fn new(depth: usize, color: &str, range: &str) -> PyResult<Self> {
        if !(1..=16).contains(&depth) {
            return Err(cuda_error(CudaError::Depth(depth)));
        }
        Ok(NativeCudaConverter {
            slot: Default::default(),
            depth,
            color: crate::settings::color_space(color, range)?,
            keep: HashMap::new(),
        })
    }

    /// Queue one frame's conversion and readback; returns its ticket at once. Raises
    /// `BlockingIOError` when `depth` frames are unreleased.
    #[pyo3(signature = (frame, *, pixel_format = None))]
    fn submit(
        &mut self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        pixel_format: Option<&str>,
    ) -> PyResult<Ticket> {
        let depth = self.depth;
        let slot = self.slot.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(f) = read(slot, frame, pixel_format, depth)? else {
            return Err(crate::errors::type_error(
                "CudaConverter takes CUDA device arrays (CuPy, PyTorch, JAX, Numba)",
            ));
        };
        let conv = slot.converter().expect("read() made the converter");
        let (src, color) = (f.frame, self.color);
        let ticket = py
            .detach(|| conv.submit(&src, color))
            .map_err(|e| match e {
                CudaError::RingFull => pyo3::exceptions::PyBlockingIOError::new_err(
                    "every readback slot is in use: wait() for and release() the oldest ticket",
                ),
                other => cuda_error(other),
            })?;
        self.keep.insert(ticket, f.keep.unbind());
        Ok(ticket)
    }

    /// Block (without the GIL) until `ticket`'s NV12 is in host memory.
    fn wait(&mut self, py: Python<'_>, ticket: Ticket) -> PyResult<()> {
        let conv = self.conv()?;
        py.detach(|| conv.wait(ticket)).map_err(cuda_error)
    }

    /// Whether `ticket`'s NV12 is in host memory (never blocks).
    fn ready(&mut self, ticket: Ticket) -> PyResult<bool> {
        self.conv()?.is_ready(ticket).map_err(cuda_error)
    }

    /// `ticket`'s NV12 as bytes (`height` rows of Y, then `ceil(height/2)` rows of CbCr,
    /// each `2*ceil(width/2)` bytes), copied out of the pinned buffer. Waits if needed.
    fn nv12<'py>(&mut self, py: Python<'py>, ticket: Ticket) -> PyResult<Bound<'py, PyBytes>> {
        self.wait(py, ticket)?;
        let conv = self.conv()?;
        let frame = conv.frame(ticket).map_err(cuda_error)?;
        let Planes::Nv12 { y, uv, .. } = *frame.planes() else {
            unreachable!("the ring holds NV12")
        };
        let len = y.len() + uv.len();
        // The planes are adjacent in one pinned buffer.
        // SAFETY: `y` starts the buffer and `uv` follows it directly (HostNv12's layout).
        let all = unsafe { std::slice::from_raw_parts(y.as_ptr(), len) };
        Ok(PyBytes::new(py, all))
    }

    /// Return `ticket`'s slot to the ring (and let go of its source array).
    fn release(&mut self, ticket: Ticket) -> PyResult<()> {
        self.conv()?.release(ticket).map_err(cuda_error)?;
        self.keep.remove(&ticket);
        Ok(())
    }

    /// The oldest unreleased ticket, or None.
    #[getter]
    fn oldest(&mut self) -> Option<Ticket> {
        self.conv().ok().and_then(|c| c.oldest())
    }

    /// Tickets submitted and not yet released.
    #[getter]
    fn in_flight(&mut self) -> usize {
        self.conv().map(|c| c.in_flight()).unwrap_or(0)
    }

    /// Slots in the ring.
    #[getter]
    fn depth(&self) -> usize {
        self.depth
    }

    /// The device of the last frame, as a dict (None before the first).
    #[getter]
    fn device<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Ok(conv) = self.conv() else {
            return Ok(None);
        };
        let info = conv.device().clone();
        let d = PyDict::new(py);
        d.set_item("ordinal", info.ordinal)?;
        d.set_item("name", info.name)?;
        d.set_item("compute_capability", info.compute_capability)?;
        d.set_item("total_memory", info.total_memory)?;
        Ok(Some(d))
    }
}
