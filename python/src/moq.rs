//! `Display.publish_moq`: the stream's H.264 to a Media over QUIC relay
//! ([`framecast_moq::MoqPublisher`] on the shared runtime).

use crate::runtime::runtime;
use framecast_moq::{MoqError, MoqOptions, MoqPublisher, MoqTarget};
use framecast_stream::{Display, TapOptions};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use std::sync::Mutex;
use std::time::Duration;

fn moq_error(e: MoqError) -> PyErr {
    match e {
        MoqError::Target { .. } => PyValueError::new_err(e.to_string()),
        MoqError::Stream(s) => crate::errors::stream_error(s),
        other => PyOSError::new_err(other.to_string()),
    }
}

/// Start publishing `display` to `url` (see the Python wrapper for the arguments).
pub(crate) fn start(
    py: Python<'_>,
    display: &Display,
    url: &str,
    fingerprints: Vec<String>,
    insecure: bool,
    keyframe_interval: f64,
) -> PyResult<NativeMoqPublisher> {
    let target = MoqTarget::parse(url).map_err(moq_error)?;
    if !(keyframe_interval.is_finite() && keyframe_interval > 0.0) {
        return Err(PyValueError::new_err(format!(
            "keyframe_interval must be a positive number of seconds, not {keyframe_interval}"
        )));
    }
    let opts = MoqOptions {
        fingerprints,
        insecure,
        tap: TapOptions {
            keyframe_interval: Some(Duration::from_secs_f64(keyframe_interval)),
            ..TapOptions::default()
        },
        ..MoqOptions::default()
    };
    let d = display.clone();
    let publisher = py
        .detach(|| runtime().block_on(MoqPublisher::start(&d, target, opts)))
        .map_err(moq_error)?;
    Ok(NativeMoqPublisher {
        inner: Mutex::new(Some(publisher)),
        url: url.to_owned(),
    })
}

/// A running MoQ publisher.
#[pyclass(module = "framecast._native", name = "MoqPublisher", frozen)]
pub struct NativeMoqPublisher {
    inner: Mutex<Option<MoqPublisher>>,
    url: String,
}

impl NativeMoqPublisher {
    fn with<T>(&self, f: impl FnOnce(&MoqPublisher) -> T) -> Option<T> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }
}

#[pymethods]
impl NativeMoqPublisher {
    /// `connecting`, `connected`, `disconnected (reconnecting with backoff)`, ... or `stopped`.
    #[getter]
    fn state(&self) -> String {
        self.with(|p| p.state().to_string())
            .unwrap_or_else(|| "stopped".into())
    }

    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Access units written to the broadcast.
    #[getter]
    fn frames(&self) -> u64 {
        self.with(|p| p.stats().frames()).unwrap_or(0)
    }

    /// Wait up to `timeout` seconds for the relay session; True once connected.
    fn wait_connected(&self, py: Python<'_>, timeout: f64) -> bool {
        let Some(mut states) = self.with(|p| p.states()) else {
            return false;
        };
        let wait = Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0));
        py.detach(|| {
            runtime().block_on(async {
                tokio::time::timeout(
                    wait,
                    states.wait_for(|s| *s == framecast_moq::PublishState::Connected),
                )
                .await
                .is_ok_and(|r| r.is_ok())
            })
        })
    }

    /// End the broadcast and leave the stream (idempotent).
    fn stop(&self, py: Python<'_>) {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = p {
            py.detach(|| runtime().block_on(p.stop()));
        }
    }
}
