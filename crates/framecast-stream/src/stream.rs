//! One stream's shell: the task that owns its [`StreamCore`], the state its `Display`
//! handles and HTTP handlers share, and the commands they send it.
//!
//! The task sleeps until the next input or [`StreamCore::poll_timeout`]; it never polls.
//! Inputs: commands (bounded channel), published frames (a watch: latest wins) and the stop
//! signal. After each step it carries out the core's actions and publishes one
//! [`StreamSnapshot`]: the only copy of size, target, settings and viewer count that other
//! threads read.

use crate::config::StreamConfig;
use crate::protocol::close;
use crate::session::{
    Action, EncodeFailure, EncodedFrame, EncoderSettings, FrameInfo, FrameTags, GroupId,
    InputEvent, Rejection, StreamCore, StreamMetrics, StreamSnapshot, TransportPolicy,
    TransportSample, ViewerId,
};
use crate::worker::{GroupWorker, SharedFrame, WorkerJob};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch, Notify};

/// Commands a stream task accepts at once before senders wait.
pub(crate) const COMMAND_QUEUE: usize = 256;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(String),
    /// A payload: the writer builds `chunk.envelope(seq)` on its own task.
    Payload {
        chunk: Arc<crate::protocol::EnvelopeTemplate>,
        seq: u64,
    },
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
    /// A message from an in-process viewer (a tap), already typed: no JSON on the way.
    Message {
        id: ViewerId,
        msg: crate::protocol::ClientMessage,
    },
    Leave {
        id: ViewerId,
    },
    /// A `TCP_INFO` sample of a viewer's connection.
    Transport {
        id: ViewerId,
        sample: TransportSample,
    },
    /// A tap's own transport estimate of what it can carry.
    RateCap {
        id: ViewerId,
        bps: Option<u32>,
    },
    EncodeDone {
        group: GroupId,
        job: u64,
        result: Result<EncodedFrame, EncodeFailure>,
    },
    Metrics(oneshot::Sender<StreamMetrics>),
    Reconfigure {
        settings: EncoderSettings,
        transports: TransportPolicy,
        /// Answered once the core has applied it (and the snapshot shows it).
        applied: Option<oneshot::Sender<()>>,
    },
}

/// A published frame: the pixels, the publish time (µs on the stream clock), its id, and
/// its display tags.
pub(crate) type Published = Option<(SharedFrame, u64, u64, FrameTags)>;

/// State of one stream shared by its task, its `Display` handles and the HTTP handlers.
pub(crate) struct StreamShared {
    pub name: Arc<str>,
    pub config: StreamConfig,
    pub start: Instant,
    pub cmd: mpsc::Sender<Cmd>,
    pub frames: watch::Sender<Published>,
    pub snapshot: watch::Receiver<StreamSnapshot>,
    pub stop: watch::Sender<bool>,
    pub events: Mutex<VecDeque<InputEvent>>,
    pub events_dropped: AtomicU64,
    pub events_notify: Notify,
    pub control: Mutex<VecDeque<Value>>,
    pub app_state: Mutex<Value>,
    /// Publish counter: the id of the next frame (ids start at 1).
    pub published: AtomicU64,
    pub pool: Mutex<Vec<SharedFrame>>,
}

impl StreamShared {
    pub(crate) fn closed(&self) -> bool {
        *self.stop.borrow()
    }

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

    /// The entry of `/streams`.
    pub(crate) fn info(&self) -> Value {
        let s = self.snapshot.borrow();
        json!({
            "name": &*self.name,
            "width": s.width,
            "height": s.height,
            "fps": s.encoder.fps,
            "clients": s.viewers,
        })
    }

    /// Ask the task for its counters (`None` once it has stopped).
    pub(crate) async fn metrics(&self) -> Option<StreamMetrics> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(Cmd::Metrics(tx)).await.ok()?;
        tokio::time::timeout(Duration::from_secs(2), rx)
            .await
            .ok()?
            .ok()
    }
}

/// Start the task of a new stream on `runtime`.
pub(crate) fn spawn(
    name: &str,
    config: StreamConfig,
    core: StreamCore,
    runtime: &tokio::runtime::Handle,
) -> (Arc<StreamShared>, tokio::task::JoinHandle<()>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (frames, frames_rx) = watch::channel(None);
    let (snapshot_tx, snapshot) = watch::channel(core.snapshot());
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(StreamShared {
        name: name.into(),
        start: Instant::now(),
        cmd: cmd_tx,
        frames,
        snapshot,
        stop,
        events: Mutex::new(VecDeque::new()),
        events_dropped: AtomicU64::new(0),
        events_notify: Notify::new(),
        control: Mutex::new(VecDeque::new()),
        app_state: Mutex::new(json!({})),
        published: AtomicU64::new(0),
        pool: Mutex::new(Vec::new()),
        config,
    });
    let task = StreamTask {
        shared: shared.clone(),
        core,
        viewers: HashMap::new(),
        workers: HashMap::new(),
        latest: None,
        snapshot: snapshot_tx,
        applied: Vec::new(),
    };
    let handle = runtime.spawn(task.run(cmd_rx, frames_rx, stop_rx));
    (shared, handle)
}

struct StreamTask {
    shared: Arc<StreamShared>,
    core: StreamCore,
    viewers: HashMap<ViewerId, mpsc::Sender<Outbound>>,
    workers: HashMap<GroupId, GroupWorker>,
    latest: Option<SharedFrame>,
    snapshot: watch::Sender<StreamSnapshot>,
    /// Reconfigure requests to answer once the snapshot shows them.
    applied: Vec<oneshot::Sender<()>>,
}

impl StreamTask {
    fn now(&self) -> Duration {
        self.shared.start.elapsed()
    }

    async fn run(
        mut self,
        mut cmd_rx: mpsc::Receiver<Cmd>,
        mut frames_rx: watch::Receiver<Published>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut frames_open = true;
        loop {
            let wake = self
                .core
                .poll_timeout()
                .map(|t| tokio::time::Instant::from_std(self.shared.start + t));
            tokio::select! {
                cmd = cmd_rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                changed = frames_rx.changed(), if frames_open => {
                    if changed.is_err() {
                        frames_open = false;
                    } else {
                        let published = frames_rx.borrow_and_update().clone();
                        if let Some((frame, timestamp_us, id, tags)) = published {
                            let info = FrameInfo {
                                id,
                                width: frame.width(),
                                height: frame.height(),
                                timestamp_us,
                            };
                            self.latest = Some(frame);
                            let now = self.now();
                            self.core.publish_tagged(info, tags, now);
                        }
                    }
                }
                _ = raised(&mut stop) => break,
                _ = sleep_until(wake) => {
                    let now = self.now();
                    self.core.handle_timeout(now);
                }
            }
            self.carry_out();
            let snapshot = self.core.snapshot();
            self.snapshot.send_if_modified(|s| {
                let changed = *s != snapshot;
                *s = snapshot;
                changed
            });
            for a in self.applied.drain(..) {
                let _ = a.send(());
            }
        }
        for (_, tx) in self.viewers.drain() {
            let _ = tx.try_send(Outbound::Close(
                close::GOING_AWAY,
                "server shutting down".into(),
            ));
        }
        // Whoever still holds a Display learns the stream is gone.
        self.shared.stop.send_replace(true);
        self.shared.events_notify.notify_waiters();
        tracing::info!(stream = %self.shared.name, "stream closed");
    }

    fn command(&mut self, cmd: Cmd) {
        let now = self.now();
        match cmd {
            Cmd::Join {
                id,
                supported,
                tx,
                reply,
            } => {
                let joined = self.core.add_viewer(id, supported, now);
                if joined.is_ok() {
                    self.viewers.insert(id, tx);
                }
                let _ = reply.send(joined);
            }
            Cmd::Text { id, text } => self.core.handle_text(id, &text, now),
            Cmd::Message { id, msg } => self.core.handle_message(id, msg, now),
            Cmd::Transport { id, sample } => self.core.transport_sample(id, sample, now),
            Cmd::RateCap { id, bps } => self.core.rate_cap(id, bps, now),
            Cmd::Leave { id } => {
                self.viewers.remove(&id);
                self.core.remove_viewer(id, now);
            }
            Cmd::EncodeDone { group, job, result } => {
                self.core.encode_done(group, job, result, now);
            }
            Cmd::Metrics(reply) => {
                let mut m = self.core.metrics(now);
                m.frames_published = m
                    .frames_published
                    .max(self.shared.published.load(Ordering::Relaxed));
                let _ = reply.send(m);
            }
            Cmd::Reconfigure {
                settings,
                transports,
                applied,
            } => {
                tracing::info!(stream = %self.shared.name, ?settings, ?transports, "reconfigure");
                self.core
                    .set_recovery(crate::config::backend_recovers(&settings.backend));
                self.core.reconfigure(settings, transports, now);
                self.applied.extend(applied);
            }
        }
    }

    fn carry_out(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Encode(job) => self.encode(job),
                Action::CloseGroup(group) => {
                    self.workers.remove(&group);
                }
                Action::SendText { viewer, text } => {
                    if let Some(tx) = self.viewers.get(&viewer) {
                        if tx.try_send(Outbound::Text(text)).is_err() {
                            self.core
                                .send_failed(viewer, None, self.shared.start.elapsed());
                        }
                    }
                }
                Action::SendPayload { viewer, seq, chunk } => {
                    if let Some(tx) = self.viewers.get(&viewer) {
                        if tx.try_send(Outbound::Payload { chunk, seq }).is_err() {
                            self.core
                                .send_failed(viewer, Some(seq), self.shared.start.elapsed());
                        }
                    }
                }
                Action::Close {
                    viewer,
                    code,
                    reason,
                } => {
                    if let Some(tx) = self.viewers.remove(&viewer) {
                        let _ = tx.try_send(Outbound::Close(code, reason));
                    }
                }
                Action::Event(e) => self.shared.push_event(e),
            }
        }
    }

    fn encode(&mut self, job: crate::session::EncodeJob) {
        let Some(frame) = self.latest.clone() else {
            return;
        };
        let (group, number) = (job.group, job.job);
        if let std::collections::hash_map::Entry::Vacant(e) = self.workers.entry(group) {
            let cmd = self.shared.cmd.clone();
            // Worker threads are not on the runtime: they may wait for room in the queue.
            let report = Box::new(move |group, job, result| {
                let _ = cmd.blocking_send(Cmd::EncodeDone { group, job, result });
            });
            match GroupWorker::spawn(group, job.kind, report) {
                Ok(w) => {
                    e.insert(w);
                }
                Err(err) => {
                    let failure = EncodeFailure::Thread(err.to_string());
                    self.core
                        .encode_done(group, number, Err(failure), self.now());
                    return;
                }
            }
        }
        if self.workers[&group]
            .submit(WorkerJob { job, frame })
            .is_err()
        {
            self.workers.remove(&group);
            let failure = EncodeFailure::Thread("the encoder thread ended".into());
            self.core
                .encode_done(group, number, Err(failure), self.now());
        }
    }
}

/// Resolves once `flag` is (or becomes) true, or its sender is gone.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await;
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
