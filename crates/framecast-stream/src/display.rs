//! [`Display`]: what an application holds to publish frames and read viewer input.

use crate::error::StreamError;
use crate::hub::{Hub, DEFAULT_STREAM};
use crate::session::{EncoderSettings, FrameTags, InputEvent, StreamMetrics, TransportPolicy};
use crate::stream::{lock, Cmd, StreamShared};
use crate::tap::{PacketTap, TapOptions};
use crate::worker::SharedFrame;
use framecast_core::{Frame, OwnedFrame, PixelFormat};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Buffers kept for reuse by [`Display::publish_with`] and [`Display::publish_copy`].
const POOL: usize = 4;

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
        if self.shared.closed() {
            return Err(StreamError::Closed(self.shared.name.to_string()));
        }
        Ok(())
    }

    /// Publish a frame. Never blocks and never copies: the frame is shared (by `Arc`) with
    /// the encoder threads; a newer publish replaces a frame not yet taken (latest wins).
    pub fn publish(&self, frame: impl Into<SharedFrame>) -> Result<(), StreamError> {
        self.publish_tagged(frame, FrameTags::default())
    }

    /// [`Display::publish`] with the frame's own `pixel_ratio`/`color` tags (`None` fields:
    /// the stream's). Viewers get a fresh `config` when the tags change.
    pub fn publish_tagged(
        &self,
        frame: impl Into<SharedFrame>,
        tags: FrameTags,
    ) -> Result<(), StreamError> {
        self.check_open()?;
        let frame = frame.into();
        // The header's `timestamp_us` is the publish time (pdum.rfb: a shared monotonic µs
        // clock), not the encode or send time: publish → displayed latency is measured from it.
        let ts = self.shared.start.elapsed().as_micros() as u64;
        let id = self.shared.published.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.frames.send_replace(Some((frame, ts, id, tags)));
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
        self.recycle_and_publish(frame, FrameTags::default())
    }

    /// Publish a copy of any frame view (any supported format, strided or not), with its
    /// tags: one copy into a recycled, tightly packed buffer; the caller's memory is free
    /// again on return.
    pub fn publish_copy(&self, frame: &Frame<'_>, tags: FrameTags) -> Result<(), StreamError> {
        self.check_open()?;
        let mut owned = self.take_buffer(frame.format(), frame.width(), frame.height())?;
        Arc::get_mut(&mut owned)
            .expect("pool buffers are unshared")
            .copy_rows_from(frame)?;
        self.recycle_and_publish(owned, tags)
    }

    /// Publish tightly packed RGBA8 pixels (copied once into a recycled buffer).
    pub fn publish_rgba(&self, rgba: &[u8], width: u32, height: u32) -> Result<(), StreamError> {
        let frame = Frame::rgba8(rgba, width, height, width as usize * 4)?;
        self.publish_copy(&frame, FrameTags::default())
    }

    fn recycle_and_publish(&self, frame: SharedFrame, tags: FrameTags) -> Result<(), StreamError> {
        let mut pool = lock(&self.shared.pool);
        if pool.len() < POOL {
            pool.push(frame.clone());
        }
        drop(pool);
        self.publish_tagged(frame, tags)
    }

    fn take_buffer(
        &self,
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<SharedFrame, StreamError> {
        let mut pool = lock(&self.shared.pool);
        let fits =
            |f: &SharedFrame| f.format() == format && f.width() == width && f.height() == height;
        if let Some(i) = pool
            .iter()
            .position(|f| Arc::strong_count(f) == 1 && fits(f))
        {
            return Ok(pool.swap_remove(i));
        }
        // Forget buffers of another shape once they are free.
        pool.retain(|f| Arc::strong_count(f) > 1 || fits(f));
        drop(pool);
        Ok(Arc::new(OwnedFrame::zeroed(format, width, height)?))
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
            if self.shared.closed() {
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
        self.shared.snapshot.borrow().viewers
    }

    /// `match_client` policy: the size viewers want, once known.
    pub fn target_size(&self) -> Option<(u32, u32)> {
        self.shared.snapshot.borrow().target
    }

    /// Encoder settings and transport policy in force.
    pub fn settings(&self) -> (EncoderSettings, TransportPolicy) {
        let s = self.shared.snapshot.borrow();
        ((*s.encoder).clone(), s.transports)
    }

    /// Change backend, bitrate or transports live: encoders are rebuilt, `config` is re-sent
    /// and every viewer gets a keyframe. Applied by the stream task shortly after this
    /// returns ([`Display::settings`] shows it then).
    pub fn reconfigure(
        &self,
        settings: EncoderSettings,
        transports: TransportPolicy,
    ) -> Result<(), StreamError> {
        self.check_open()?;
        framecast_encode::registry::find(&settings.backend)?;
        let cmd = self.shared.cmd.clone();
        // Callable from any thread, in or out of the runtime: the send waits on the runtime.
        self.hub.runtime.spawn(async move {
            let _ = cmd
                .send(Cmd::Reconfigure {
                    settings,
                    transports,
                    applied: None,
                })
                .await;
        });
        Ok(())
    }

    /// The stream's encoded H.264 in process, for a fan-out sink (see [`PacketTap`]): joins
    /// the stream as a viewer that never holds the others back.
    pub async fn tap(&self, opts: TapOptions) -> Result<PacketTap, StreamError> {
        self.check_open()?;
        let id = self.hub.next_viewer.fetch_add(1, Ordering::Relaxed);
        PacketTap::join(&self.shared, id, opts).await
    }

    /// Counters of the stream (same as `GET /streams/<name>/metrics`).
    pub async fn metrics(&self) -> Option<StreamMetrics> {
        self.shared.metrics().await
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

    /// Whether the stream (or its server) has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed()
    }

    fn path(&self) -> String {
        if &*self.shared.name == DEFAULT_STREAM {
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
    /// server. Returns once the viewers have been told (bounded by a deadline).
    pub async fn close(&self) {
        if self.owns_server {
            self.hub.close().await;
        } else {
            self.hub.remove_stream(&self.shared.name);
        }
        self.shared.stop.send_replace(true);
        self.shared.events_notify.notify_waiters();
    }
}
