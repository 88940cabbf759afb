//! The server shell: axum HTTP + WebSocket routes, the per-stream task that drives a
//! [`StreamCore`], and the per-connection reader/writer tasks.
//!
//! Threads and tasks: one tokio task per stream owns its `StreamCore` and the viewers'
//! outbound queues; one OS thread per encoder group encodes (never on a tokio worker); each
//! connection has a reader task and a writer task. A viewer's outbound queue is bounded and
//! written with `try_send`: a stalled socket fills its own queue, the frames it misses are
//! counted as drops for that viewer alone, and nobody waits for it.

use crate::assets;
use crate::config::{ServerConfig, StreamConfig, StreamError};
use crate::display::Display;
use crate::protocol::{self, close, BinaryHeader, ClientMessage};
use crate::session::{
    Action, EncodedFrame, EncoderSettings, FrameInfo, GroupId, InputEvent, Rejection, StreamCore,
    StreamMetrics, TransportPolicy, ViewerId,
};
use crate::worker::{GroupWorker, SharedFrame, WorkerJob};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch, Notify};

/// The name of the stream served at `/`.
pub const DEFAULT_STREAM: &str = "default";
/// Paths that cannot be stream names.
const RESERVED: [&str; 7] = [
    "viewer",
    "health",
    "streams",
    "metrics",
    "control",
    "time",
    "favicon.ico",
];
const OUTBOUND_QUEUE: usize = 16;
const TICK: Duration = Duration::from_millis(20);
/// After its close frame the server keeps reading (and discarding) until the viewer's close
/// frame, the end of the stream, or this long: dropping a socket with unread input makes the
/// kernel send a reset, and a browser that sees the reset before the close frame reports 1006
/// instead of the code (4401, 4404, 1003, 1008, 1009), then reconnects.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Equal-length-independent constant-time comparison of two secrets.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= (x ^ y) as u64;
    }
    std::hint::black_box(diff) == 0
}

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(String),
    Binary(Bytes),
    Close(u16, String),
}

pub(crate) enum Cmd {
    Join {
        id: ViewerId,
        supported: Vec<String>,
        tx: mpsc::Sender<Outbound>,
        reply: oneshot::Sender<Result<(), Rejection>>,
    },
    Text {
        id: ViewerId,
        text: String,
    },
    Leave {
        id: ViewerId,
    },
    EncodeDone {
        group: GroupId,
        job: u64,
        result: Result<EncodedFrame, String>,
    },
    Metrics(oneshot::Sender<StreamMetrics>),
    Reconfigure {
        settings: EncoderSettings,
        transports: TransportPolicy,
    },
    Shutdown,
}

/// A published frame with its timestamp.
pub(crate) type Published = Option<(SharedFrame, u64)>;

/// State of one stream shared by its task, its `Display` handles and the HTTP handlers.
pub(crate) struct StreamShared {
    pub name: String,
    pub config: StreamConfig,
    pub start: Instant,
    pub cmd: mpsc::UnboundedSender<Cmd>,
    pub frames: watch::Sender<Published>,
    pub events: Mutex<VecDeque<InputEvent>>,
    pub events_dropped: AtomicU64,
    pub events_notify: Notify,
    pub control: Mutex<VecDeque<Value>>,
    pub app_state: Mutex<Value>,
    pub clients: AtomicUsize,
    pub size: Mutex<(u32, u32)>,
    pub target: Mutex<Option<(u32, u32)>>,
    pub settings: Mutex<(EncoderSettings, TransportPolicy)>,
    pub closed: AtomicBool,
    pub published: AtomicU64,
    pub pool: Mutex<Vec<SharedFrame>>,
}

impl StreamShared {
    pub(crate) fn push_event(&self, e: InputEvent) {
        let mut q = lock(&self.events);
        if q.len() >= self.config.event_queue_size.max(1) {
            q.pop_front();
            self.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(e);
        drop(q);
        self.events_notify.notify_waiters();
        self.events_notify.notify_one();
    }

    /// The stream clock (the one of frame headers' `timestamp_us`: µs since the stream
    /// started, monotonic) and the wall clock (µs since the Unix epoch), read back to back.
    /// `unix_us - timestamp_us` maps a header timestamp to wall-clock time.
    pub(crate) fn clock_pair(&self) -> (u64, u64) {
        let mono = self.start.elapsed();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (mono.as_micros() as u64, unix.as_micros() as u64)
    }

    /// `{"timestamp_us", "unix_us"}` (see [`StreamShared::clock_pair`]).
    pub(crate) fn clock_json(&self) -> Value {
        let (timestamp_us, unix_us) = self.clock_pair();
        json!({"timestamp_us": timestamp_us, "unix_us": unix_us})
    }

    fn info(&self) -> Value {
        let (w, h) = *lock(&self.size);
        json!({
            "name": self.name,
            "width": w,
            "height": h,
            "fps": self.config.fps,
            "clients": self.clients.load(Ordering::Relaxed),
        })
    }
}

/// The hub: shared by the HTTP handlers and `Server`/`Display` handles.
pub(crate) struct Hub {
    pub config: ServerConfig,
    pub streams: RwLock<BTreeMap<String, Arc<StreamShared>>>,
    pub next_viewer: AtomicU64,
    pub local_addr: SocketAddr,
    pub shutdown: watch::Sender<bool>,
    pub server_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub runtime: tokio::runtime::Handle,
}

impl Hub {
    fn stream(&self, name: &str) -> Option<Arc<StreamShared>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn add_stream(
        self: &Arc<Self>,
        name: &str,
        config: StreamConfig,
    ) -> Result<Arc<StreamShared>, StreamError> {
        config.validate()?;
        if name.is_empty() || name.contains('/') || RESERVED.contains(&name) {
            return Err(StreamError::InvalidConfig(format!(
                "stream name {name:?} is empty, contains '/', or is reserved"
            )));
        }
        let video_available = framecast_encode::registry::find(&config.backend).is_ok();
        if !video_available && config.transports == TransportPolicy::Video {
            return Err(StreamError::Backend(format!(
                "video transport requested but backend {:?} is not in this build",
                config.backend
            )));
        }
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams.contains_key(name) {
            return Err(StreamError::DuplicateStream(name.into()));
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (frames, frames_rx) = watch::channel(None);
        let shared = Arc::new(StreamShared {
            name: name.into(),
            start: Instant::now(),
            cmd: cmd_tx,
            frames,
            events: Mutex::new(VecDeque::new()),
            events_dropped: AtomicU64::new(0),
            events_notify: Notify::new(),
            control: Mutex::new(VecDeque::new()),
            app_state: Mutex::new(json!({})),
            clients: AtomicUsize::new(0),
            size: Mutex::new((config.width, config.height)),
            target: Mutex::new(None),
            settings: Mutex::new((config.encoder_settings(), config.transports)),
            closed: AtomicBool::new(false),
            published: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
            config: config.clone(),
        });
        let core = StreamCore::new(config.session_config(video_available));
        self.runtime
            .spawn(run_stream(shared.clone(), core, cmd_rx, frames_rx));
        streams.insert(name.into(), shared.clone());
        tracing::info!(stream = name, "stream added");
        Ok(shared)
    }

    pub(crate) fn remove_stream(&self, name: &str) -> bool {
        let removed = self
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Some(s) = &removed {
            s.closed.store(true, Ordering::Relaxed);
            let _ = s.cmd.send(Cmd::Shutdown);
        }
        removed.is_some()
    }

    pub(crate) async fn close(&self) {
        let names: Vec<String> = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for n in names {
            self.remove_stream(&n);
        }
        // Let the stream tasks send their close frames.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = self.shutdown.send(true);
        let task = lock(&self.server_task).take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
    }
}

/// A running hub: several named streams on one port, picked by URL path.
///
/// ```no_run
/// # async fn f() -> Result<(), framecast_stream::StreamError> {
/// use framecast_stream::{Server, ServerConfig, StreamConfig};
/// let server = Server::bind(ServerConfig::default()).await?;
/// let main = server.add_stream("default", StreamConfig::new(1280, 720))?; // ws://host/
/// let aux = server.add_stream("aux", StreamConfig::new(640, 360))?; // ws://host/aux
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    pub(crate) hub: Arc<Hub>,
}

impl Server {
    /// Listen on `config.listen` and start serving (within the current tokio runtime).
    pub async fn bind(config: ServerConfig) -> Result<Server, StreamError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StreamError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StreamError::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let hub = Arc::new(Hub {
            config,
            streams: RwLock::new(BTreeMap::new()),
            next_viewer: AtomicU64::new(1),
            local_addr,
            shutdown,
            server_task: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
        });
        let app = router(hub.clone());
        let task = tokio::spawn(async move {
            let result = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.wait_for(|s| *s).await;
            })
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "server stopped");
            }
        });
        *lock(&hub.server_task) = Some(task);
        tracing::info!(%local_addr, "framecast server listening");
        Ok(Server { hub })
    }

    /// Add a stream served at `/<name>` (`default` is also `/`).
    pub fn add_stream(&self, name: &str, config: StreamConfig) -> Result<Display, StreamError> {
        let shared = self.hub.add_stream(name, config)?;
        Ok(Display::new(shared, self.hub.clone(), false))
    }

    /// Remove a stream; its viewers are closed with 1001.
    pub fn remove_stream(&self, name: &str) -> bool {
        self.hub.remove_stream(name)
    }

    /// A handle to an existing stream.
    pub fn stream(&self, name: &str) -> Option<Display> {
        self.hub
            .stream(name)
            .map(|s| Display::new(s, self.hub.clone(), false))
    }

    /// Names of the streams.
    pub fn streams(&self) -> Vec<String> {
        self.hub
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.hub.local_addr
    }

    /// Close every stream and stop listening.
    pub async fn close(&self) {
        self.hub.close().await
    }
}

/// Start a server with one stream, `default`, served at `/` (pdum.rfb `serve()`).
/// [`Display::close`] stops the server.
pub async fn serve(server: ServerConfig, stream: StreamConfig) -> Result<Display, StreamError> {
    let s = Server::bind(server).await?;
    let shared = s.hub.add_stream(DEFAULT_STREAM, stream)?;
    Ok(Display::new(shared, s.hub, true))
}

// -------------------------------------------------------------------------------------------
// The stream task
// -------------------------------------------------------------------------------------------

async fn run_stream(
    shared: Arc<StreamShared>,
    mut core: StreamCore,
    mut cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    mut frames_rx: watch::Receiver<Published>,
) {
    let mut viewers: HashMap<ViewerId, mpsc::Sender<Outbound>> = HashMap::new();
    let mut workers: HashMap<GroupId, GroupWorker> = HashMap::new();
    let mut latest: Option<SharedFrame> = None;
    let mut frame_id = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut frames_open = true;
    let now = |s: &StreamShared| s.start.elapsed();
    loop {
        tokio::select! {
            cmd = cmd_rx.recv() => {
                let Some(cmd) = cmd else { break };
                match cmd {
                    Cmd::Shutdown => break,
                    Cmd::Join { id, supported, tx, reply } => {
                        match core.add_viewer(id, supported, now(&shared)) {
                            Ok(()) => {
                                viewers.insert(id, tx);
                                let _ = reply.send(Ok(()));
                            }
                            Err(r) => { let _ = reply.send(Err(r)); }
                        }
                    }
                    Cmd::Text { id, text } => core.handle_text(id, &text, now(&shared)),
                    Cmd::Leave { id } => {
                        viewers.remove(&id);
                        core.remove_viewer(id);
                    }
                    Cmd::EncodeDone { group, job, result } => {
                        core.encode_done(group, job, result, now(&shared));
                    }
                    Cmd::Metrics(reply) => { let _ = reply.send(core.metrics(now(&shared))); }
                    Cmd::Reconfigure { settings, transports } => {
                        tracing::info!(stream = %shared.name, ?settings, ?transports, "reconfigure");
                        core.reconfigure(settings, transports, now(&shared));
                    }
                }
            }
            changed = frames_rx.changed(), if frames_open => {
                if changed.is_err() {
                    frames_open = false;
                } else {
                    let published = frames_rx.borrow_and_update().clone();
                    if let Some((frame, ts)) = published {
                        frame_id += 1;
                        let info = FrameInfo {
                            id: frame_id,
                            width: frame.width(),
                            height: frame.height(),
                            timestamp_us: ts,
                        };
                        latest = Some(frame);
                        core.publish(info, now(&shared));
                    }
                }
            }
            _ = tick.tick() => core.handle_timeout(now(&shared)),
        }
        while let Some(action) = core.poll_action() {
            match action {
                Action::Encode(job) => {
                    let Some(frame) = latest.clone() else {
                        continue;
                    };
                    let group = job.group;
                    if let std::collections::hash_map::Entry::Vacant(e) = workers.entry(group) {
                        let cmd = shared.cmd.clone();
                        let report = Box::new(move |group, job, result| {
                            let _ = cmd.send(Cmd::EncodeDone { group, job, result });
                        });
                        match GroupWorker::spawn(group, job.kind, report) {
                            Ok(w) => {
                                e.insert(w);
                            }
                            Err(err) => {
                                core.encode_done(
                                    group,
                                    job.job,
                                    Err(format!("cannot start an encoder thread: {err}")),
                                    now(&shared),
                                );
                                continue;
                            }
                        }
                    }
                    let jobno = job.job;
                    if workers[&group].submit(WorkerJob { job, frame }).is_err() {
                        workers.remove(&group);
                        core.encode_done(
                            group,
                            jobno,
                            Err("encoder thread ended".into()),
                            now(&shared),
                        );
                    }
                }
                Action::CloseGroup(group) => {
                    workers.remove(&group);
                }
                Action::SendText { viewer, text } => {
                    if let Some(tx) = viewers.get(&viewer) {
                        if tx.try_send(Outbound::Text(text)).is_err() {
                            core.send_failed(viewer, None);
                        }
                    }
                }
                Action::SendPayload {
                    viewer,
                    header,
                    payload,
                } => {
                    if let Some(tx) = viewers.get(&viewer) {
                        let seq = header.seq();
                        let msg = envelope(&header, &payload);
                        if tx.try_send(Outbound::Binary(msg)).is_err() {
                            core.send_failed(viewer, Some(seq));
                        }
                    }
                }
                Action::Close {
                    viewer,
                    code,
                    reason,
                } => {
                    if let Some(tx) = viewers.remove(&viewer) {
                        let _ = tx.try_send(Outbound::Close(code, reason));
                    }
                }
                Action::Event(e) => shared.push_event(e),
                Action::TargetSize { width, height } => {
                    *lock(&shared.target) = Some((width, height));
                }
            }
        }
        if let Some(f) = core.latest() {
            *lock(&shared.size) = (f.width, f.height);
        }
    }
    for (_, tx) in viewers.drain() {
        let _ = tx.try_send(Outbound::Close(
            close::GOING_AWAY,
            "server shutting down".into(),
        ));
    }
    shared.events_notify.notify_waiters();
    tracing::info!(stream = %shared.name, "stream closed");
}

/// The wire message for one viewer: the per-viewer header in front of the shared payload.
/// (tungstenite copies every message into its write buffer anyway; this is that one copy.)
fn envelope(header: &BinaryHeader, payload: &Bytes) -> Bytes {
    Bytes::from(protocol::encode_envelope(header, payload))
}

// -------------------------------------------------------------------------------------------
// HTTP
// -------------------------------------------------------------------------------------------

type HubState = State<Arc<Hub>>;

fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/streams", get(streams))
        .route("/metrics", get(default_metrics))
        .route("/streams/{name}/metrics", get(stream_metrics))
        .route("/time", get(default_time))
        .route("/streams/{name}/time", get(stream_time))
        .route("/control", get(control_get).post(control_post))
        .route("/viewer/{*path}", get(asset))
        .route("/{name}", get(named))
        .with_state(hub)
}

async fn health(State(hub): HubState) -> Json<Value> {
    let n = hub.streams.read().unwrap_or_else(|e| e.into_inner()).len();
    Json(json!({"status": "ok", "streams": n}))
}

async fn streams(State(hub): HubState) -> Json<Value> {
    let list: Vec<Value> = hub
        .streams
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|s| s.info())
        .collect();
    Json(Value::Array(list))
}

async fn metrics_of(hub: &Hub, name: &str) -> Response {
    let Some(s) = hub.stream(name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": close::unknown_stream_reason(name)})),
        )
            .into_response();
    };
    let (tx, rx) = oneshot::channel();
    if s.cmd.send(Cmd::Metrics(tx)).is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), rx).await {
        Ok(Ok(m)) => {
            let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.insert("name".into(), json!(s.name));
                o.insert("clients".into(), json!(s.clients.load(Ordering::Relaxed)));
                o.insert("fps".into(), json!(s.config.fps));
                o.insert(
                    "events_dropped".into(),
                    json!(s.events_dropped.load(Ordering::Relaxed)),
                );
                o.insert("clock".into(), s.clock_json());
            }
            Json(v).into_response()
        }
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn default_metrics(State(hub): HubState) -> Response {
    metrics_of(&hub, DEFAULT_STREAM).await
}

async fn stream_metrics(State(hub): HubState, Path(name): Path<String>) -> Response {
    metrics_of(&hub, &name).await
}

fn time_of(hub: &Hub, name: &str) -> Response {
    match hub.stream(name) {
        Some(s) => ([(header::CACHE_CONTROL, "no-store")], Json(s.clock_json())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": close::unknown_stream_reason(name)})),
        )
            .into_response(),
    }
}

async fn default_time(State(hub): HubState) -> Response {
    time_of(&hub, DEFAULT_STREAM)
}

async fn stream_time(State(hub): HubState, Path(name): Path<String>) -> Response {
    time_of(&hub, &name)
}

async fn asset(Path(path): Path<String>) -> Response {
    match assets::viewer_file(&path) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, assets::mime_for(&path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such viewer file").into_response(),
    }
}

fn page() -> Response {
    match assets::viewer_file("index.html") {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            assets::NO_VIEWER_PAGE,
        )
            .into_response(),
    }
}

/// `Origin` check for upgrades and control posts.
pub(crate) fn origin_allowed(config: &ServerConfig, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser
    };
    if !config.allowed_origins.is_empty() {
        return config
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    }
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        if host.eq_ignore_ascii_case(origin_host) {
            return true;
        }
    }
    let bare = match origin_host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => origin_host,
    };
    matches!(bare, "localhost" | "127.0.0.1" | "[::1]")
}

fn request_token(query: &HashMap<String, String>, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

type Upgrade = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

async fn root(
    State(hub): HubState,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    page_or_socket(hub, DEFAULT_STREAM.to_owned(), query, headers, ws)
}

async fn named(
    State(hub): HubState,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    page_or_socket(hub, name, query, headers, ws)
}

fn page_or_socket(
    hub: Arc<Hub>,
    name: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let Ok(ws) = ws else {
        return page();
    };
    if !origin_allowed(&hub.config, &headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), "WebSocket upgrade refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let token = request_token(&query, &headers);
    let max = hub.config.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection(hub, name, token, socket))
}

/// Send a close frame, then finish the closing handshake (see [`CLOSE_LINGER`]).
async fn close_socket(socket: &mut WebSocket, code: u16, reason: &str) {
    let sent = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    if sent.is_ok() {
        drain_until_close(socket, tokio::time::Instant::now() + CLOSE_LINGER).await;
    }
}

/// Read and discard until the peer's close frame, the end of the stream, or `deadline`. A
/// read error (an oversized or broken frame) repeats without consuming input, so after one
/// the socket is just held open until `deadline`, time for the peer to read our close frame.
async fn drain_until_close<S>(source: &mut S, deadline: tokio::time::Instant)
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout_at(deadline, source.next()).await {
            Err(_) | Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => {
                tokio::time::sleep_until(deadline).await;
                return;
            }
        }
    }
}

async fn connection(hub: Arc<Hub>, name: String, url_token: Option<String>, mut socket: WebSocket) {
    let Some(stream) = hub.stream(&name) else {
        tracing::info!(stream = %name, "connection to an unknown stream closed (4404)");
        close_socket(
            &mut socket,
            close::UNKNOWN_STREAM,
            &close::unknown_stream_reason(&name),
        )
        .await;
        return;
    };
    // hello
    let first = tokio::time::timeout(hub.config.hello_timeout, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(t))) => return Ok(Some(t.to_string())),
                Some(Ok(Message::Binary(_)))
                | Some(Ok(Message::Ping(_)))
                | Some(Ok(Message::Pong(_))) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(Message::Close(_))) | None => return Ok(None),
            }
        }
    })
    .await;
    let text = match first {
        Ok(Ok(Some(t))) => t,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            let (code, reason) = read_error_close(&error);
            tracing::warn!(stream = %name, %error, code, "closing connection: read error before hello");
            let sent = socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
            if sent.is_ok() {
                // The input cannot be parsed any more: hold the socket for the close frame.
                tokio::time::sleep(CLOSE_LINGER).await;
            }
            return;
        }
        Err(_) => {
            close_socket(&mut socket, close::MALFORMED, "no hello").await;
            return;
        }
    };
    let (supported, hello_token) = match protocol::parse_client_message(&text) {
        Ok(ClientMessage::Hello {
            supported, token, ..
        }) => (supported, token),
        Ok(_) => {
            tracing::warn!(stream = %name, "closing viewer: first message is not hello");
            close_socket(&mut socket, close::MALFORMED, "expected hello").await;
            return;
        }
        Err(e) => {
            tracing::warn!(stream = %name, error = %e, "closing viewer: malformed hello");
            close_socket(&mut socket, close::MALFORMED, "malformed control message").await;
            return;
        }
    };
    if let Some(expected) = &stream.config.token {
        let given = hello_token.or(url_token).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            tracing::warn!(stream = %name, "closing viewer: unauthorized (4401)");
            close_socket(&mut socket, close::UNAUTHORIZED, close::UNAUTHORIZED_REASON).await;
            return;
        }
    }
    if stream.clients.fetch_add(1, Ordering::SeqCst) >= stream.config.max_viewers {
        stream.clients.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(stream = %name, max = stream.config.max_viewers, "closing viewer: stream full");
        close_socket(&mut socket, close::STREAM_FULL, "stream full").await;
        return;
    }
    let id = hub.next_viewer.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (reply_tx, reply_rx) = oneshot::channel();
    let joined = stream
        .cmd
        .send(Cmd::Join {
            id,
            supported,
            tx: tx.clone(),
            reply: reply_tx,
        })
        .is_ok();
    let result = if joined { reply_rx.await.ok() } else { None };
    match result {
        Some(Ok(())) => {}
        Some(Err(rejection)) => {
            stream.clients.fetch_sub(1, Ordering::SeqCst);
            tracing::info!(stream = %name, code = rejection.code, reason = %rejection.reason, "viewer rejected");
            close_socket(&mut socket, rejection.code, &rejection.reason).await;
            return;
        }
        None => {
            stream.clients.fetch_sub(1, Ordering::SeqCst);
            close_socket(&mut socket, close::GOING_AWAY, "stream closed").await;
            return;
        }
    }
    tracing::info!(stream = %name, viewer = id, "viewer connected");
    let (sink, mut source) = socket.split();
    let (closing_tx, mut closing_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, rx, closing_tx));
    // Set when our close frame is out (or the writer is gone): finish the handshake by then.
    let mut linger_until = None;
    loop {
        let next = tokio::select! {
            next = source.next() => next,
            _ = &mut closing_rx => {
                linger_until = Some(Linger::Drain(tokio::time::Instant::now() + CLOSE_LINGER));
                break;
            }
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                if stream
                    .cmd
                    .send(Cmd::Text {
                        id,
                        text: t.to_string(),
                    })
                    .is_err()
                {
                    break;
                }
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {} // binary, ping, pong: ignored
            Some(Err(e)) => {
                let text = e.to_string();
                tracing::warn!(stream = %name, viewer = id, error = %text, "closing viewer: read error");
                let (code, reason) = read_error_close(&text);
                let _ = tx.try_send(Outbound::Close(code, reason.into()));
                linger_until = Some(Linger::Hold(tokio::time::Instant::now() + CLOSE_LINGER));
                break;
            }
        }
    }
    drop(tx);
    let _ = stream.cmd.send(Cmd::Leave { id });
    stream.clients.fetch_sub(1, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    match linger_until {
        Some(Linger::Drain(deadline)) => drain_until_close(&mut source, deadline).await,
        // After a read error the input cannot be parsed any more (the stream has ended):
        // just hold the socket open for the peer to read our close frame.
        Some(Linger::Hold(deadline)) => tokio::time::sleep_until(deadline).await,
        None => {}
    }
    tracing::info!(stream = %name, viewer = id, "viewer disconnected");
}

/// The close code for a WebSocket read error: 1009 for an oversized message, else 1008.
fn read_error_close(error: &str) -> (u16, &'static str) {
    if error.contains("too long") || error.contains("size") {
        (close::TOO_BIG, "message too big")
    } else {
        (close::MALFORMED, "protocol error")
    }
}

/// How a connection ends after the server's close frame (see [`CLOSE_LINGER`]).
enum Linger {
    /// Read and discard until the peer's close frame or the deadline.
    Drain(tokio::time::Instant),
    /// The input is unusable (read error): keep the socket open until the deadline.
    Hold(tokio::time::Instant),
}

/// Writes a connection's outbound queue; `closing` fires once its close frame is out.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    closing: oneshot::Sender<()>,
) {
    while let Some(m) = rx.recv().await {
        let r = match m {
            Outbound::Text(t) => sink.send(Message::Text(t.into())).await,
            Outbound::Binary(b) => sink.send(Message::Binary(b)).await,
            Outbound::Close(code, reason) => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                let _ = closing.send(());
                break;
            }
        };
        if r.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}

// -------------------------------------------------------------------------------------------
// /control
// -------------------------------------------------------------------------------------------

fn control_state(hub: &Hub, s: &StreamShared) -> Value {
    let (settings, transports) = lock(&s.settings).clone();
    let mut v = json!({
        "stream": s.name,
        "backend": settings.backend,
        "bitrate": settings.bitrate,
        "fps": settings.fps,
        "transport": transports,
        "backends": framecast_encode::registry::backends().iter().map(|b| b.name).collect::<Vec<_>>(),
        "transports": ["auto", "video", "image"],
    });
    let _ = hub;
    if let (Value::Object(o), Value::Object(app)) = (&mut v, lock(&s.app_state).clone()) {
        for (k, val) in app {
            o.insert(k, val);
        }
    }
    v
}

#[allow(clippy::result_large_err)] // the error is the HTTP answer itself
fn control_target(
    hub: &Hub,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body_stream: Option<&str>,
) -> Result<Arc<StreamShared>, Response> {
    if !hub.config.remote_control {
        return Err((StatusCode::NOT_FOUND, "remote control is disabled").into_response());
    }
    if !origin_allowed(&hub.config, headers) {
        return Err((StatusCode::FORBIDDEN, "origin not allowed").into_response());
    }
    let name = body_stream
        .or(query.get("stream").map(String::as_str))
        .unwrap_or(DEFAULT_STREAM);
    let Some(s) = hub.stream(name) else {
        return Err((StatusCode::NOT_FOUND, close::unknown_stream_reason(name)).into_response());
    };
    if let Some(expected) = &s.config.token {
        let given = request_token(query, headers).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err((StatusCode::UNAUTHORIZED, "unauthorized").into_response());
        }
    }
    Ok(s)
}

async fn control_get(
    State(hub): HubState,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match control_target(&hub, &query, &headers, None) {
        Ok(s) => Json(control_state(&hub, &s)).into_response(),
        Err(r) => r,
    }
}

async fn control_post(
    State(hub): HubState,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > hub.config.max_message_bytes {
        return (StatusCode::PAYLOAD_TOO_LARGE, "control body too large").into_response();
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body must be a JSON object").into_response();
    };
    let s = match control_target(
        &hub,
        &query,
        &headers,
        req.get("stream").and_then(Value::as_str),
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (mut settings, mut transports) = lock(&s.settings).clone();
    let mut changed = false;
    if let Some(b) = req.get("backend") {
        let Some(name) = b.as_str() else {
            return (StatusCode::BAD_REQUEST, "backend must be a string").into_response();
        };
        if let Err(e) = framecast_encode::registry::find(name) {
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
        changed |= settings.backend != name;
        settings.backend = name.to_owned();
    }
    if let Some(b) = req.get("bitrate") {
        let Some(bitrate) = b
            .as_f64()
            .filter(|b| (10_000.0..=500_000_000.0).contains(b))
        else {
            return (
                StatusCode::BAD_REQUEST,
                "bitrate must be a number between 10000 and 500000000 (b/s)",
            )
                .into_response();
        };
        changed |= settings.bitrate != bitrate as u32;
        settings.bitrate = bitrate as u32;
    }
    if let Some(t) = req.get("transport") {
        let parsed = t.as_str().map(str::parse::<TransportPolicy>);
        let Some(Ok(policy)) = parsed else {
            return (
                StatusCode::BAD_REQUEST,
                "transport must be video, image or auto",
            )
                .into_response();
        };
        changed |= transports != policy;
        transports = policy;
    }
    if changed {
        *lock(&s.settings) = (settings.clone(), transports);
        let _ = s.cmd.send(Cmd::Reconfigure {
            settings,
            transports,
        });
    }
    let mut q = lock(&s.control);
    if q.len() >= 64 {
        q.pop_front();
    }
    q.push_back(Value::Object(req));
    drop(q);
    s.events_notify.notify_waiters();
    Json(control_state(&hub, &s)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        let c = ServerConfig::default();
        assert!(origin_allowed(&c, &h));
        h.insert(header::HOST, "example.com:8765".parse().unwrap());
        h.insert(header::ORIGIN, "http://example.com:8765".parse().unwrap());
        assert!(origin_allowed(&c, &h));
        h.insert(header::ORIGIN, "http://evil.com".parse().unwrap());
        assert!(!origin_allowed(&c, &h));
        h.insert(header::ORIGIN, "http://localhost:3000".parse().unwrap());
        assert!(origin_allowed(&c, &h));
        let c = ServerConfig {
            allowed_origins: vec!["http://evil.com".into()],
            ..ServerConfig::default()
        };
        h.insert(header::ORIGIN, "http://evil.com".parse().unwrap());
        assert!(origin_allowed(&c, &h));
        h.insert(header::ORIGIN, "http://localhost:3000".parse().unwrap());
        assert!(!origin_allowed(&c, &h));
    }
}
