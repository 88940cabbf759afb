//! `framecast._native`: the Rust side of the `framecast` Python package. It only wraps the
//! crates' public APIs; the Python modules in `python/framecast/` hold the documented
//! surface (`serve`, `Display`, `Encoder`, `Writer`, `framecast.rfb`, `framecast.vtenc`).
//!
//! Threads: every blocking call releases the GIL (conversion, encoding, network waits);
//! Python code is never called from encoder or network threads. Servers and remote encoders
//! share one tokio runtime of two threads, started on first use.

mod assets;
mod convert;
mod cuda;
mod cuda_class;
mod cuda_publish;
mod display;
mod doctor;
mod encoder;
mod errors;
mod fanout;
mod frames;
mod remote;
mod runtime;
mod settings;
mod values;
mod writer;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<display::NativeServer>()?;
    m.add_class::<display::NativeDisplay>()?;
    m.add_class::<encoder::NativeEncoder>()?;
    m.add_class::<encoder::EncodedPacket>()?;
    m.add_class::<encoder::DroppedFrame>()?;
    m.add_class::<writer::NativeWriter>()?;
    m.add_class::<cuda_class::NativeCudaConverter>()?;
    m.add_class::<fanout::NativePublisher>()?;
    m.add_function(wrap_pyfunction!(doctor::doctor, m)?)?;
    m.add_function(wrap_pyfunction!(convert::to_nv12, m)?)?;
    m.add_function(wrap_pyfunction!(assets::viewer_file, m)?)?;
    Ok(())
}
