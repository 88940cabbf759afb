//! `framecast.to_nv12`: the CPU colour conversion on its own (the SIMD path the encoders use
//! for host frames), for applications that want NV12 and for measuring the conversion.

use crate::errors::value_error;
use crate::frames::host_frame;
use framecast_core::{convert::Converter, Yuv420Image, YuvLayout};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// NV12 of a host frame (`height` rows of Y, then `ceil(height/2)` rows of CbCr, each
/// `2*ceil(width/2)` bytes), converted on the CPU with the GIL released.
#[pyfunction]
#[pyo3(signature = (frame, *, pixel_format = None, color = "bt709", range = "limited"))]
pub(crate) fn to_nv12<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    pixel_format: Option<&str>,
    color: &str,
    range: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let cs = crate::settings::color_space(color, range)?;
    let host = host_frame(frame, pixel_format)?;
    let view = host.view();
    let out = py.detach(|| {
        // SAFETY: `host` holds the array the view reads; it outlives this call.
        let frame = unsafe { view.frame() }.map_err(|e| e.to_string())?;
        let mut img = Yuv420Image::new(frame.width(), frame.height(), YuvLayout::Nv12)
            .map_err(|e| e.to_string())?;
        Converter::new()
            .convert(&frame, cs, &mut img)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(img)
    });
    let img = out.map_err(value_error)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let stride = 2 * w.div_ceil(2);
    let mut bytes = Vec::with_capacity(stride * (h + h.div_ceil(2)));
    for row in img.y().chunks(img.y_stride()).take(h) {
        bytes.extend_from_slice(&row[..stride]);
    }
    for row in img.uv().chunks(img.chroma_stride()).take(h.div_ceil(2)) {
        bytes.extend_from_slice(&row[..stride]);
    }
    Ok(PyBytes::new(py, &bytes))
}
