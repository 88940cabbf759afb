//! `Display.publish_moq` and `Display.publish_whip`: the stream's H.264 to a Media over QUIC
//! relay ([`framecast_moq::MoqPublisher`]) or a WebRTC SFU ([`framecast_whip::WhipPublisher`]),
//! on the shared runtime, behind one Python class.

use crate::runtime::runtime;
use framecast_moq::{MoqError, MoqOptions, MoqPublisher, MoqTarget};
use framecast_stream::{Display, PublishState, TapOptions};
use framecast_whip::{WhipError, WhipOptions, WhipPublisher};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

fn moq_error(e: MoqError) -> PyErr {
    match e {
        MoqError::Target { .. } => PyValueError::new_err(e.to_string()),
        MoqError::Stream(s) => crate::errors::stream_error(s),
        other => PyOSError::new_err(other.to_string()),
    }
}

fn whip_error(e: WhipError) -> PyErr {
    match e {
        WhipError::Url { .. } => PyValueError::new_err(e.to_string()),
        WhipError::Stream(s) => crate::errors::stream_error(s),
        other => PyOSError::new_err(other.to_string()),
    }
}

fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    if s.is_finite() && s > 0.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, not {s}"
        )))
    }
}

/// Start publishing `display` to the MoQ relay at `url`.
pub(crate) fn start_moq(
    py: Python<'_>,
    display: &Display,
    url: &str,
    fingerprints: Vec<String>,
    insecure: bool,
    keyframe_interval: f64,
) -> PyResult<NativePublisher> {
    let target = MoqTarget::parse(url).map_err(moq_error)?;
    let opts = MoqOptions {
        fingerprints,
        insecure,
        tap: TapOptions {
            keyframe_interval: Some(seconds("keyframe_interval", keyframe_interval)?),
            ..TapOptions::default()
        },
        ..MoqOptions::default()
    };
    let d = display.clone();
    let p = py
        .detach(|| runtime().block_on(MoqPublisher::start(&d, target, opts)))
        .map_err(moq_error)?;
    Ok(NativePublisher::new(url, Sink::Moq(p)))
}

/// Start pushing `display` to the WHIP endpoint at `url`.
pub(crate) fn start_whip(
    py: Python<'_>,
    display: &Display,
    url: &str,
    token: Option<String>,
    follow_estimate: bool,
) -> PyResult<NativePublisher> {
    let opts = WhipOptions {
        token,
        follow_estimate,
        ..WhipOptions::default()
    };
    let d = display.clone();
    let url_owned = url.to_owned();
    let p = py
        .detach(|| runtime().block_on(WhipPublisher::start(&d, &url_owned, opts)))
        .map_err(whip_error)?;
    Ok(NativePublisher::new(url, Sink::Whip(p)))
}

enum Sink {
    Moq(MoqPublisher),
    Whip(WhipPublisher),
}

impl Sink {
    fn state(&self) -> PublishState {
        match self {
            Sink::Moq(p) => p.state().get(),
            Sink::Whip(p) => p.state().get(),
        }
    }
    fn states(&self) -> watch::Receiver<PublishState> {
        match self {
            Sink::Moq(p) => p.state().changes(),
            Sink::Whip(p) => p.state().changes(),
        }
    }
    fn frames(&self) -> u64 {
        match self {
            Sink::Moq(p) => p.stats().frames(),
            Sink::Whip(p) => p.stats().frames(),
        }
    }
    fn estimate_bps(&self) -> Option<u64> {
        match self {
            Sink::Moq(_) => None,
            Sink::Whip(p) => Some(p.stats().estimate_bps()).filter(|&b| b > 0),
        }
    }
    async fn stop(self) {
        match self {
            Sink::Moq(p) => p.stop().await,
            Sink::Whip(p) => p.stop().await,
        }
    }
}

/// A running fan-out publisher (MoQ or WHIP).
#[pyclass(module = "framecast._native", name = "Publisher", frozen)]
pub struct NativePublisher {
    inner: Mutex<Option<Sink>>,
    url: String,
}

impl NativePublisher {
    fn new(url: &str, sink: Sink) -> Self {
        NativePublisher {
            inner: Mutex::new(Some(sink)),
            url: url.to_owned(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Sink) -> T) -> Option<T> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }
}

#[pymethods]
impl NativePublisher {
    /// `connecting`, `connected`, `disconnected (reconnecting with backoff)`, ... or `stopped`.
    #[getter]
    fn state(&self) -> String {
        self.with(|p| p.state().to_string())
            .unwrap_or_else(|| PublishState::Stopped.to_string())
    }

    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Access units handed to the relay or SFU.
    #[getter]
    fn frames(&self) -> u64 {
        self.with(Sink::frames).unwrap_or(0)
    }

    /// WHIP: the SFU's latest bandwidth estimate (bits/s), once it has given one.
    #[getter]
    fn estimate_bps(&self) -> Option<u64> {
        self.with(Sink::estimate_bps).flatten()
    }

    /// Wait up to `timeout` seconds for the session; True once connected.
    fn wait_connected(&self, py: Python<'_>, timeout: f64) -> bool {
        let Some(mut states) = self.with(Sink::states) else {
            return false;
        };
        let wait = Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0));
        py.detach(|| {
            runtime().block_on(async {
                tokio::time::timeout(wait, states.wait_for(|s| *s == PublishState::Connected))
                    .await
                    .is_ok_and(|r| r.is_ok())
            })
        })
    }

    /// End the session and leave the stream (idempotent).
    fn stop(&self, py: Python<'_>) {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = p {
            py.detach(|| runtime().block_on(p.stop()));
        }
    }
}
