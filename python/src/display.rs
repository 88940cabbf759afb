//! `_native.Server` and `_native.Display`: a framecast server hub and one stream's publishing
//! end, wrapped for Python (the documented classes are in `framecast/_display.py`).

use crate::cuda_publish::CudaPublisher;
use crate::errors::{stream_error, value_error, ClosedError};
use crate::frames::host_frame;
use crate::runtime::runtime;
use crate::values::to_py;
use framecast_stream::session::TransportPolicy;
use framecast_stream::{
    Display, FrameTags, ResizePolicy, Server, ServerConfig, StreamConfig, StreamError,
};
use pyo3::prelude::*;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running server: named streams on one port.
#[pyclass(module = "framecast._native", name = "Server", frozen)]
pub struct NativeServer {
    server: Server,
}

fn resolve(host: &str, port: u16) -> PyResult<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| value_error(format!("cannot resolve host {host:?}: {e}")))?
        .next()
        .ok_or_else(|| value_error(format!("host {host:?} has no address")))
}

fn seconds(what: &str, v: Option<f64>) -> PyResult<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(0.0) => Ok(None),
        Some(s) => Err(value_error(format!(
            "{what} must be a positive number of seconds, got {s}"
        ))),
    }
}

#[pymethods]
impl NativeServer {
    #[new]
    #[pyo3(signature = (host = "127.0.0.1", port = 8765, origins = None, remote_control = false))]
    fn new(
        py: Python<'_>,
        host: &str,
        port: u16,
        origins: Option<Vec<String>>,
        remote_control: bool,
    ) -> PyResult<Self> {
        let config = ServerConfig {
            listen: resolve(host, port)?,
            allowed_origins: origins.unwrap_or_default(),
            remote_control,
            ..ServerConfig::default()
        };
        let server = py
            .detach(|| runtime().block_on(Server::bind(config)))
            .map_err(stream_error)?;
        Ok(NativeServer { server })
    }

    /// Add a stream served at `/<name>` (`default` is also `/`).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        name, width, height, *, fps = 30.0, bitrate = None, max_inflight = 2, token = None,
        transport = "auto", backend = None, stats_interval = None, still_after = None,
        resize_policy = "publisher", max_render_dimension = None, image_format = "jpeg",
        jpeg_quality = 80, pixel_ratio = None, color = None, adaptive = true
    ))]
    fn add_stream(
        &self,
        name: &str,
        width: u32,
        height: u32,
        fps: f64,
        bitrate: Option<u32>,
        max_inflight: usize,
        token: Option<&Bound<'_, PyAny>>,
        transport: &str,
        backend: Option<String>,
        stats_interval: Option<f64>,
        still_after: Option<f64>,
        resize_policy: &str,
        max_render_dimension: Option<u32>,
        image_format: &str,
        jpeg_quality: u8,
        pixel_ratio: Option<f64>,
        color: Option<&Bound<'_, PyAny>>,
        adaptive: bool,
    ) -> PyResult<NativeDisplay> {
        let mut c = StreamConfig::new(width, height);
        c.adaptive = adaptive;
        c.fps = fps;
        c.bitrate =
            bitrate.unwrap_or_else(|| framecast_encode::default_bitrate(width, height, fps));
        c.max_inflight = max_inflight;
        c.token = match token.filter(|t| !t.is_none()) {
            None => None,
            Some(t) => Some(t.extract::<String>().map_err(|_| {
                crate::errors::type_error(format!(
                    "token must be a str, got {}",
                    t.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?),
        };
        c.transports = transport
            .parse::<TransportPolicy>()
            .map_err(|e| value_error(e.to_string()))?;
        if let Some(b) = backend.filter(|b| b != "auto") {
            c.backend = framecast_encode::registry::find(&b)
                .map_err(crate::errors::encode_error)?
                .name
                .to_owned();
        }
        c.stats_interval = seconds("stats_interval", stats_interval)?;
        c.still_after = seconds("still_after", still_after)?;
        c.resize = match resize_policy {
            "publisher" => ResizePolicy::Publisher,
            "match_client" => ResizePolicy::MatchClient {
                debounce: Duration::from_millis(120),
                max_dimension: max_render_dimension,
            },
            other => {
                return Err(value_error(format!(
                    "resize_policy {other:?}: use \"publisher\" or \"match_client\""
                )))
            }
        };
        c.image_format = match image_format {
            "jpeg" => framecast_stream::ImageFormat::Jpeg,
            "png" => framecast_stream::ImageFormat::Png,
            other => {
                return Err(value_error(format!(
                    "image_format {other:?}: use \"jpeg\" or \"png\""
                )))
            }
        };
        c.jpeg_quality = jpeg_quality;
        c.pixel_ratio = pixel_ratio;
        c.color = crate::values::color(color)?;
        let display = self.server.add_stream(name, c).map_err(stream_error)?;
        Ok(NativeDisplay::new(display))
    }

    /// The bound port (the actual one with port 0).
    #[getter]
    fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    /// The bound host address.
    #[getter]
    fn host(&self) -> String {
        self.server.local_addr().ip().to_string()
    }

    /// Names of the streams.
    #[getter]
    fn streams(&self) -> Vec<String> {
        self.server.streams()
    }

    /// Remove a stream (its viewers get 1001).
    fn remove_stream(&self, name: &str) -> bool {
        self.server.remove_stream(name)
    }

    /// Close every stream and stop listening (waits for the viewers' close handshakes, a
    /// few seconds at most).
    fn close(&self, py: Python<'_>) {
        let server = self.server.clone();
        py.detach(|| runtime().block_on(server.close()));
    }
}

/// One stream's publishing end.
#[pyclass(module = "framecast._native", name = "Display", frozen)]
pub struct NativeDisplay {
    display: Display,
    /// CUDA frames' converter and readback ring (made on the first CUDA frame).
    cuda: Mutex<Option<CudaPublisher>>,
    cuda_depth: Mutex<usize>,
}

impl NativeDisplay {
    fn new(display: Display) -> Self {
        NativeDisplay {
            display,
            cuda: Mutex::new(None),
            cuda_depth: Mutex::new(crate::cuda_publish::DEFAULT_DEPTH),
        }
    }

    /// The CUDA side; waits for the lock without the GIL (its holder may be waiting for the
    /// GIL while it drains the ring).
    fn cuda(&self, py: Python<'_>) -> std::sync::MutexGuard<'_, Option<CudaPublisher>> {
        use pyo3::sync::MutexExt;
        self.cuda
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl NativeDisplay {
    /// Publish a frame: one copy into a recycled buffer, made without the GIL.
    #[pyo3(signature = (frame, *, pixel_format = None, pixel_ratio = None, color = None))]
    fn publish(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        pixel_format: Option<&str>,
        pixel_ratio: Option<f64>,
        color: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if self.display.is_closed() {
            return Err(ClosedError::new_err(format!(
                "publish() on a closed display (stream {:?})",
                self.display.name()
            )));
        }
        if let Some(r) = pixel_ratio.filter(|r| !(r.is_finite() && *r > 0.0)) {
            return Err(value_error(format!("pixel_ratio must be > 0, got {r}")));
        }
        let tags = FrameTags {
            pixel_ratio,
            color: crate::values::color(color)?.map(Arc::new),
        };
        if crate::frames::is_cuda(frame) {
            let mut cuda = self.cuda(py);
            let depth = *self.cuda_depth.lock().unwrap_or_else(|e| e.into_inner());
            let publisher =
                cuda.get_or_insert_with(|| CudaPublisher::new(self.display.clone(), depth));
            if publisher.publish(frame, pixel_format, tags.clone())? {
                return Ok(());
            }
        }
        let host = host_frame(frame, pixel_format)?;
        let view = host.view();
        let display = &self.display;
        py.detach(|| {
            // SAFETY: `host` (alive until after this call) holds the array `view` points into.
            let frame = unsafe { view.frame() }.map_err(StreamError::from)?;
            display.publish_copy(&frame, tags)
        })
        .map_err(stream_error)
    }

    /// Input events since the last call, oldest first, as dicts.
    fn poll_events<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.display
            .poll_events()
            .iter()
            .map(|e| event_to_py(py, e))
            .collect()
    }

    /// The next input event within `timeout` seconds (None when none came, or the stream is
    /// closed). Waits without the GIL.
    fn next_event<'py>(
        &self,
        py: Python<'py>,
        timeout: f64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = self.display.clone();
        let limit = Duration::from_secs_f64(timeout.max(0.0));
        let event = py.detach(|| {
            runtime().block_on(async {
                tokio::time::timeout(limit, d.next_event())
                    .await
                    .ok()
                    .flatten()
            })
        });
        event.map(|e| event_to_py(py, &e)).transpose()
    }

    /// Counters of the stream (`GET /streams/<name>/metrics`), or None once closed.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = self.display.clone();
        let m = py.detach(|| runtime().block_on(d.metrics()));
        match m {
            None => Ok(None),
            Some(m) => {
                let v = serde_json::to_value(&m).map_err(|e| value_error(e.to_string()))?;
                Ok(Some(to_py(py, &v)?))
            }
        }
    }

    #[getter]
    fn client_count(&self) -> usize {
        self.display.client_count()
    }

    #[getter]
    fn url(&self) -> String {
        self.display.url()
    }

    #[getter]
    fn ws_url(&self) -> String {
        self.display.ws_url()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.display.local_addr().port()
    }

    #[getter]
    fn name(&self) -> String {
        self.display.name().to_owned()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.display.is_closed()
    }

    #[getter]
    fn frames_published(&self) -> u64 {
        self.display.frames_published()
    }

    /// `match_client`: the size the viewers want, once known.
    #[getter]
    fn target_size(&self) -> Option<(u32, u32)> {
        self.display.target_size()
    }

    /// `(timestamp_us, unix_us)`: the stream clock of frame headers and the Unix clock.
    fn clock(&self) -> (u64, u64) {
        self.display.clock()
    }

    /// CUDA frames in flight at once (1..=16, default 2): each frame's NV12 readback
    /// overlaps the next frame's rendering; `publish` blocks only when all are in use.
    #[getter]
    fn cuda_ring_depth(&self) -> usize {
        *self.cuda_depth.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[setter]
    fn set_cuda_ring_depth(&self, py: Python<'_>, depth: usize) -> PyResult<()> {
        if let Some(p) = self.cuda(py).as_mut() {
            p.set_depth(py, depth)?;
        } else if !(1..=16).contains(&depth) {
            return Err(value_error(format!(
                "cuda_ring_depth must be 1..=16, got {depth}"
            )));
        }
        *self.cuda_depth.lock().unwrap_or_else(|e| e.into_inner()) = depth;
        Ok(())
    }

    /// Wait until every CUDA frame published so far has reached the stream.
    fn flush_cuda(&self, py: Python<'_>) {
        if let Some(p) = self.cuda(py).as_mut() {
            p.drain(py);
        }
    }

    /// Publish this stream to a Media over QUIC relay (see `Display.publish_moq`).
    #[pyo3(signature = (url, *, fingerprint = None, insecure = false, keyframe_interval = 2.0))]
    fn publish_moq(
        &self,
        py: Python<'_>,
        url: &str,
        fingerprint: Option<Vec<String>>,
        insecure: bool,
        keyframe_interval: f64,
    ) -> PyResult<crate::fanout::NativePublisher> {
        crate::fanout::start_moq(
            py,
            &self.display,
            url,
            fingerprint.unwrap_or_default(),
            insecure,
            keyframe_interval,
        )
    }

    /// Push this stream to a WHIP endpoint (see `Display.publish_whip`).
    #[pyo3(signature = (url, *, token = None, follow_estimate = true))]
    fn publish_whip(
        &self,
        py: Python<'_>,
        url: &str,
        token: Option<String>,
        follow_estimate: bool,
    ) -> PyResult<crate::fanout::NativePublisher> {
        crate::fanout::start_whip(py, &self.display, url, token, follow_estimate)
    }

    /// Close this stream (its viewers get 1001); CUDA frames in flight are delivered first.
    fn close(&self, py: Python<'_>) {
        if let Some(mut p) = self.cuda(py).take() {
            p.close(py);
        }
        let d = self.display.clone();
        py.detach(|| runtime().block_on(d.close()));
    }
}

fn event_to_py<'py>(
    py: Python<'py>,
    e: &framecast_stream::InputEvent,
) -> PyResult<Bound<'py, PyAny>> {
    let mut v = serde_json::to_value(&e.event).map_err(|err| value_error(err.to_string()))?;
    if let serde_json::Value::Object(o) = &mut v {
        o.insert("viewer".into(), e.viewer.into());
        o.insert("received_us".into(), e.received_us.into());
    }
    to_py(py, &v)
}
