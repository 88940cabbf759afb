//! The embedded browser viewer's files, for the Jupyter widget (which serves them to the
//! notebook page itself when the page cannot reach the framecast server).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The viewer file at `path` (e.g. `"framecast.js"`), or None.
#[pyfunction]
pub(crate) fn viewer_file<'py>(py: Python<'py>, path: &str) -> Option<Bound<'py, PyBytes>> {
    framecast_stream::assets::viewer_file(path).map(|b| PyBytes::new(py, b))
}
