//! `framecast.doctor()`: what this build and machine can do, as a dict.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Backends, their availability, OpenH264's assembly, the CUDA driver and devices, and which
/// path `publish` takes for each kind of frame.
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
    let cuda = PyDict::new(py);
    let cuda_path = match framecast_cuda::probe() {
        Ok(info) => {
            cuda.set_item(
                "driver",
                format!("CUDA {}.{}", info.driver_version.0, info.driver_version.1),
            )?;
            match &info.nvrtc {
                Ok((a, b)) => cuda.set_item("nvrtc", format!("{a}.{b}"))?,
                Err(e) => cuda.set_item("nvrtc", format!("missing: {e}"))?,
            }
            let devices = PyList::empty(py);
            for dev in &info.devices {
                devices.append(format!(
                    "{}: {} (compute {}.{}, {} MiB)",
                    dev.ordinal,
                    dev.name,
                    dev.compute_capability.0,
                    dev.compute_capability.1,
                    dev.total_memory >> 20
                ))?;
            }
            cuda.set_item("devices", devices)?;
            match (&info.nvrtc, info.devices.is_empty()) {
                (Ok(_), false) => "converted to NV12 on the array's GPU (NVRTC kernel, in order \
                                   with its stream); only NV12 is read back, through a ring of \
                                   pinned buffers"
                    .to_string(),
                (Err(_), _) => "unavailable: NVRTC is missing (see cuda.nvrtc)".to_string(),
                (_, true) => "unavailable: the driver sees no CUDA device".to_string(),
            }
        }
        Err(e) => {
            cuda.set_item("driver", format!("unavailable: {e}"))?;
            format!("unavailable ({e}): pass host memory (cupy.asnumpy(x), tensor.cpu())")
        }
    };
    d.set_item("cuda", cuda)?;
    d.set_item(
        "wgpu",
        "the Python package takes no wgpu textures; `framecast doctor` (the CLI) reports the adapter",
    )?;
    let paths = PyDict::new(py);
    paths.set_item(
        "numpy / buffer-protocol (host memory, evaluated MLX arrays)",
        "one copy into a recycled buffer, SIMD RGB->YUV on the CPU",
    )?;
    paths.set_item("CUDA arrays (CuPy, PyTorch, JAX, Numba)", cuda_path)?;
    d.set_item("publish_paths", paths)?;
    Ok(d)
}
