//! `framecast.doctor()`: what this build and machine can do, as a dict.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Backends, their availability, OpenH264's assembly, and which path `publish` takes for
/// each kind of frame.
#[pyfunction]
pub(crate) fn doctor(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    use framecast_encode::backend::Availability;
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item(
        "platform",
        format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    )?;
    let backends = PyList::empty(py);
    for s in framecast_encode::registry::probe_all() {
        let b = PyDict::new(py);
        b.set_item("name", s.name)?;
        b.set_item("hardware", s.hardware)?;
        let (ok, detail) = match &s.availability {
            Availability::Available { detail } => (true, detail.clone()),
            Availability::Unavailable { reason } => (false, reason.clone()),
        };
        b.set_item("available", ok)?;
        b.set_item("detail", detail)?;
        backends.append(b)?;
    }
    d.set_item("backends", backends)?;
    #[cfg(feature = "openh264")]
    d.set_item(
        "openh264_assembly",
        framecast_encode::openh264_assembly().to_string(),
    )?;
    let paths = PyDict::new(py);
    paths.set_item(
        "numpy / buffer-protocol (host memory)",
        "one copy into a recycled buffer, SIMD RGB->YUV on the CPU",
    )?;
    paths.set_item(
        "CUDA arrays",
        "not yet: pass host memory (cupy.asnumpy(x), tensor.cpu().numpy())",
    )?;
    d.set_item("publish_paths", paths)?;
    Ok(d)
}
