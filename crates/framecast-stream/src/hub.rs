//! The hub: the named streams of one server, shared by the HTTP handlers and every
//! `Server`/`Display` handle, and the orderly shutdown of all of it.

use crate::config::{ServerConfig, StreamConfig};
use crate::error::StreamError;
use crate::session::{StreamCore, TransportPolicy};
use crate::stream::{self, lock, StreamShared};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

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
/// How long closing waits for stream tasks and then for connections to say goodbye.
const CLOSE_DEADLINE: Duration = Duration::from_secs(3);

pub(crate) struct Hub {
    pub config: ServerConfig,
    pub streams: RwLock<BTreeMap<String, Arc<StreamShared>>>,
    stream_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub next_viewer: AtomicU64,
    pub local_addr: SocketAddr,
    /// Set once: stops the accept loop and every HTTP connection.
    pub shutdown: watch::Sender<bool>,
    /// Every connection task (HTTP and upgraded WebSocket) and the accept loop.
    pub tasks: TaskTracker,
    pub runtime: tokio::runtime::Handle,
}

impl Hub {
    pub fn new(config: ServerConfig, local_addr: SocketAddr) -> Self {
        Hub {
            config,
            streams: RwLock::new(BTreeMap::new()),
            stream_tasks: Mutex::new(Vec::new()),
            next_viewer: AtomicU64::new(1),
            local_addr,
            shutdown: watch::channel(false).0,
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn stream(&self, name: &str) -> Option<Arc<StreamShared>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all_streams(&self) -> Vec<Arc<StreamShared>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn add_stream(
        &self,
        name: &str,
        config: StreamConfig,
    ) -> Result<Arc<StreamShared>, StreamError> {
        config.validate()?;
        if name.is_empty() || name.contains('/') || RESERVED.contains(&name) {
            return Err(StreamError::InvalidName(name.into()));
        }
        let video_available = framecast_encode::registry::find(&config.backend).is_ok();
        if !video_available && config.transports == TransportPolicy::Video {
            return Err(StreamError::NoVideoBackend(config.backend.clone()));
        }
        if *self.shutdown.borrow() {
            return Err(StreamError::Closed(name.into()));
        }
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams.contains_key(name) {
            return Err(StreamError::DuplicateStream(name.into()));
        }
        let core = StreamCore::with_size(
            config.session_config(video_available),
            (config.width, config.height),
        );
        let (shared, task) = stream::spawn(name, config, core, &self.runtime);
        let mut tasks = lock(&self.stream_tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        streams.insert(name.into(), shared.clone());
        tracing::info!(stream = name, "stream added");
        Ok(shared)
    }

    /// Remove a stream: its task closes its viewers (1001) and ends.
    pub fn remove_stream(&self, name: &str) -> bool {
        let removed = self
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Some(s) = &removed {
            s.stop.send_replace(true);
        }
        removed.is_some()
    }

    /// Close every stream, wait for the stream tasks to hand their viewers a close frame,
    /// stop accepting, and wait for the connections to finish their closing handshakes —
    /// each wait bounded by a deadline.
    pub async fn close(&self) {
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
        let tasks: Vec<_> = lock(&self.stream_tasks).drain(..).collect();
        let streams_done = futures_util::future::join_all(tasks);
        if tokio::time::timeout(CLOSE_DEADLINE, streams_done)
            .await
            .is_err()
        {
            tracing::warn!("a stream task did not finish within {CLOSE_DEADLINE:?}");
        }
        self.shutdown.send_replace(true);
        self.tasks.close();
        if tokio::time::timeout(CLOSE_DEADLINE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.tasks.len(),
                "connections still open {CLOSE_DEADLINE:?} after shutdown; dropping them"
            );
        }
    }
}
