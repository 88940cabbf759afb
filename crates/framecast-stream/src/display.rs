//! [`Display`]: what an application holds to publish frames and read viewer input, and
//! [`BlockingDisplay`], the same for applications without an async runtime.

use crate::config::{ServerConfig, StreamConfig, StreamError};
use crate::server::{Cmd, Hub, StreamShared, DEFAULT_STREAM};
use crate::session::{EncoderSettings, InputEvent, StreamMetrics, TransportPolicy};
use crate::worker::SharedFrame;
use framecast_core::PixelFormat;
use framecast_io::OwnedFrame;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const POOL: usize = 4;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One stream's publishing end. Cheap to clone; all clones drive the same stream.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use framecast_stream::{serve, ServerConfig, StreamConfig};
/// use framecast_core::PixelFormat;
/// let display = serve(ServerConfig::default(), StreamConfig::new(640, 360)).await?;
/// println!("open {}", display.url());
/// for i in 0..300u64 {
///     display.publish_with(PixelFormat::Rgba8, 640, 360, |rgba| {
///         framecast_io::render_into(framecast_io::PatternKind::Plasma, i, 640, 360, rgba).ok();
///     })?;
///     for event in display.poll_events() {
///         println!("{:?}", event.event);
///     }
///     tokio::time::sleep(std::time::Duration::from_millis(33)).await;
/// }
/// display.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Display {
    shared: Arc<StreamShared>,
    hub: Arc<Hub>,
    owns_server: bool,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display")
            .field("stream", &self.shared.name)
            .field("addr", &self.hub.local_addr)
            .finish()
    }
}

impl Display {
    pub(crate) fn new(shared: Arc<StreamShared>, hub: Arc<Hub>, owns_server: bool) -> Self {
        Display {
            shared,
            hub,
            owns_server,
        }
    }

    fn check_open(&self) -> Result<(), StreamError> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(StreamError::Closed(self.shared.name.clone()));
        }
        Ok(())
    }

    /// Publish a frame. Never blocks and never copies: the frame is shared (by `Arc`) with
    /// the encoder threads; a newer publish replaces a frame not yet taken (latest wins).
    pub fn publish(&self, frame: impl Into<SharedFrame>) -> Result<(), StreamError> {
        self.check_open()?;
        let frame = frame.into();
        // The header's `timestamp_us` is the publish time (pdum.rfb: a shared monotonic µs
        // clock), not the encode or send time: publish → displayed latency is measured from it.
        let ts = self.shared.start.elapsed().as_micros() as u64;
        self.shared.published.fetch_add(1, Ordering::Relaxed);
        self.shared.frames.send_replace(Some((frame, ts)));
        Ok(())
    }

    /// Publish a frame drawn in place into a recycled buffer (tightly packed `format`,
    /// `width`×`height`): buffers come back to the pool once every encoder is done with them,
    /// so a steady publisher allocates nothing.
    pub fn publish_with(
        &self,
        format: PixelFormat,
        width: u32,
        height: u32,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), StreamError> {
        self.check_open()?;
        let mut frame = self.take_buffer(format, width, height)?;
        let buf = Arc::get_mut(&mut frame).expect("pool buffers are unshared");
        fill(buf.data_mut());
        let mut pool = lock(&self.shared.pool);
        if pool.len() < POOL {
            pool.push(frame.clone());
        }
        drop(pool);
        self.publish(frame)
    }

    /// Publish tightly packed RGBA8 pixels (copied once into a recycled buffer).
    pub fn publish_rgba(&self, rgba: &[u8], width: u32, height: u32) -> Result<(), StreamError> {
        let need = width as usize * height as usize * 4;
        if rgba.len() != need {
            return Err(StreamError::Frame(format!(
                "{} bytes for {width}x{height} RGBA8; expected {need}",
                rgba.len()
            )));
        }
        self.publish_with(PixelFormat::Rgba8, width, height, |buf| {
            buf.copy_from_slice(rgba)
        })
    }

    fn take_buffer(
        &self,
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<SharedFrame, StreamError> {
        let mut pool = lock(&self.shared.pool);
        let idx = pool.iter().position(|f| {
            Arc::strong_count(f) == 1
                && f.format() == format
                && f.width() == width
                && f.height() == height
        });
        if let Some(i) = idx {
            return Ok(pool.swap_remove(i));
        }
        // Forget buffers of another shape once they are free.
        pool.retain(|f| {
            Arc::strong_count(f) > 1
                || (f.format() == format && f.width() == width && f.height() == height)
        });
        drop(pool);
        OwnedFrame::zeroed(format, width, height)
            .map(Arc::new)
            .map_err(|e| StreamError::Frame(e.to_string()))
    }

    /// Input events received since the last call (oldest first).
    pub fn poll_events(&self) -> Vec<InputEvent> {
        lock(&self.shared.events).drain(..).collect()
    }

    /// Wait for the next input event; `None` once the stream is closed.
    pub async fn next_event(&self) -> Option<InputEvent> {
        loop {
            let notified = self.shared.events_notify.notified();
            if let Some(e) = lock(&self.shared.events).pop_front() {
                return Some(e);
            }
            if self.shared.closed.load(Ordering::Relaxed) {
                return None;
            }
            notified.await;
        }
    }

    /// The input events as an async stream (ends when the stream closes).
    pub fn events(&self) -> impl futures_util::Stream<Item = InputEvent> + Send + 'static {
        let d = self.clone();
        futures_util::stream::unfold(d, |d| async move {
            let e = d.next_event().await?;
            Some((e, d))
        })
    }

    /// Requests posted to `POST /control` since the last call (the JSON objects as sent;
    /// `backend`/`bitrate`/`transport` are already applied, the rest, e.g. `scene`, is the
    /// application's to act on).
    pub fn poll_control(&self) -> Vec<Value> {
        lock(&self.shared.control).drain(..).collect()
    }

    /// Fields merged into the `GET /control` answer (e.g. `{"scene": .., "scenes": [..]}`).
    pub fn set_app_state(&self, state: Value) {
        *lock(&self.shared.app_state) = state;
    }

    /// Connected viewers.
    pub fn client_count(&self) -> usize {
        self.shared.clients.load(Ordering::Relaxed)
    }

    /// `match_client` policy: the size viewers want, once known.
    pub fn target_size(&self) -> Option<(u32, u32)> {
        *lock(&self.shared.target)
    }

    /// Encoder settings and transport policy in force.
    pub fn settings(&self) -> (EncoderSettings, TransportPolicy) {
        lock(&self.shared.settings).clone()
    }

    /// Change backend, bitrate or transports live: encoders are rebuilt, `config` is re-sent
    /// and every viewer gets a keyframe.
    pub fn reconfigure(
        &self,
        settings: EncoderSettings,
        transports: TransportPolicy,
    ) -> Result<(), StreamError> {
        self.check_open()?;
        framecast_encode::registry::find(&settings.backend)
            .map_err(|e| StreamError::Backend(e.to_string()))?;
        *lock(&self.shared.settings) = (settings.clone(), transports);
        self.shared
            .cmd
            .send(Cmd::Reconfigure {
                settings,
                transports,
            })
            .map_err(|_| StreamError::Closed(self.shared.name.clone()))
    }

    /// Counters of the stream (same as `GET /streams/<name>/metrics`).
    pub async fn metrics(&self) -> Option<StreamMetrics> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared.cmd.send(Cmd::Metrics(tx)).ok()?;
        rx.await.ok()
    }

    /// The stream's clock pair, read back to back: `(timestamp_us, unix_us)`, where
    /// `timestamp_us` is the clock of frame headers (µs since the stream started, monotonic;
    /// a frame's header carries its publish time on it) and `unix_us` the wall clock (µs since
    /// the Unix epoch). Same as `GET /streams/<name>/time`.
    pub fn clock(&self) -> (u64, u64) {
        self.shared.clock_pair()
    }

    /// Frames published so far.
    pub fn frames_published(&self) -> u64 {
        self.shared.published.load(Ordering::Relaxed)
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The server's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.hub.local_addr
    }

    fn path(&self) -> String {
        if self.shared.name == DEFAULT_STREAM {
            "/".into()
        } else {
            format!("/{}", self.shared.name)
        }
    }

    /// The viewer page, e.g. `http://127.0.0.1:8765/`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.hub.local_addr, self.path())
    }

    /// The WebSocket URL, e.g. `ws://127.0.0.1:8765/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.hub.local_addr, self.path())
    }

    /// Close the stream (viewers get 1001); a display from [`crate::serve`] also stops the
    /// server.
    pub async fn close(&self) {
        if self.owns_server {
            self.hub.close().await;
        } else {
            self.hub.remove_stream(&self.shared.name);
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.events_notify.notify_waiters();
    }
}

/// [`Display`] for applications without async: owns a small tokio runtime on its own threads.
///
/// ```no_run
/// use framecast_stream::{BlockingDisplay, ServerConfig, StreamConfig};
/// let display = BlockingDisplay::serve(ServerConfig::default(), StreamConfig::new(640, 360))?;
/// let rgba = vec![128u8; 640 * 360 * 4];
/// display.publish_rgba(&rgba, 640, 360)?;
/// display.close();
/// # Ok::<(), framecast_stream::StreamError>(())
/// ```
pub struct BlockingDisplay {
    display: Display,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingDisplay {
    /// Start a server with one `default` stream on a private runtime.
    pub fn serve(server: ServerConfig, stream: StreamConfig) -> Result<Self, StreamError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("framecast-net")
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?;
        let display = runtime.block_on(crate::serve(server, stream))?;
        Ok(BlockingDisplay {
            display,
            runtime: Some(runtime),
        })
    }

    /// The async handle (its methods that are not `async` work from any thread).
    pub fn display(&self) -> &Display {
        &self.display
    }

    /// See [`Display::publish`].
    pub fn publish(&self, frame: impl Into<SharedFrame>) -> Result<(), StreamError> {
        self.display.publish(frame)
    }

    /// See [`Display::publish_with`].
    pub fn publish_with(
        &self,
        format: PixelFormat,
        width: u32,
        height: u32,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), StreamError> {
        self.display.publish_with(format, width, height, fill)
    }

    /// See [`Display::publish_rgba`].
    pub fn publish_rgba(&self, rgba: &[u8], width: u32, height: u32) -> Result<(), StreamError> {
        self.display.publish_rgba(rgba, width, height)
    }

    /// See [`Display::poll_events`].
    pub fn poll_events(&self) -> Vec<InputEvent> {
        self.display.poll_events()
    }

    /// Block until an input event arrives or `timeout` passes.
    pub fn wait_event(&self, timeout: std::time::Duration) -> Option<InputEvent> {
        let rt = self.runtime.as_ref()?;
        rt.block_on(async {
            tokio::time::timeout(timeout, self.display.next_event())
                .await
                .ok()
                .flatten()
        })
    }

    /// See [`Display::poll_control`].
    pub fn poll_control(&self) -> Vec<Value> {
        self.display.poll_control()
    }

    /// See [`Display::metrics`].
    pub fn metrics(&self) -> Option<StreamMetrics> {
        let rt = self.runtime.as_ref()?;
        rt.block_on(self.display.metrics())
    }

    /// See [`Display::url`].
    pub fn url(&self) -> String {
        self.display.url()
    }

    /// Close the server and stop the runtime.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.block_on(self.display.close());
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

impl Drop for BlockingDisplay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::ops::Deref for BlockingDisplay {
    type Target = Display;
    fn deref(&self) -> &Display {
        &self.display
    }
}
