//! [`MoqPublisher`]: a stream's encoded H.264 as a hang broadcast on a MoQ relay.

use crate::error::MoqError;
use crate::target::MoqTarget;
use framecast_stream::{
    Display, PacketTap, PublishState, StateReporter, StateWatch, TapOptions, TappedFrame,
};
use moq_mux::import::{Track, VideoFormat, VideoInit};
use moq_tokio::moq_net;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The name of the video track in the broadcast's catalog.
pub const VIDEO_TRACK: &str = "video";

/// Settings of a [`MoqPublisher`].
#[derive(Debug, Clone)]
pub struct MoqOptions {
    /// Trust a relay certificate with one of these SHA-256 fingerprints (hex), as browsers
    /// do with WebTransport's `serverCertificateHashes`: for a relay with a self-signed
    /// certificate (`moq-relay --tls-generate`; it serves the hash at
    /// `http://relay:port/certificate.sha256`). Empty: the system roots.
    pub fingerprints: Vec<String>,
    /// Accept any certificate (testing only; `fingerprints` are then ignored).
    pub insecure: bool,
    /// The stream tap (IDR interval: late subscribers start at the newest group).
    pub tap: TapOptions,
    /// Longest wait between reconnect attempts (the first is after 1 s, doubling).
    pub backoff_max: Duration,
}

impl Default for MoqOptions {
    fn default() -> Self {
        MoqOptions {
            fingerprints: Vec::new(),
            insecure: false,
            tap: TapOptions::default(),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Counters of a [`MoqPublisher`].
#[derive(Debug, Default)]
pub struct MoqStats {
    frames: AtomicU64,
    keyframes: AtomicU64,
    bytes: AtomicU64,
}

impl MoqStats {
    /// Access units written to the broadcast.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
    /// IDRs among them (each opens a MoQ group).
    pub fn keyframes(&self) -> u64 {
        self.keyframes.load(Ordering::Relaxed)
    }
    /// Payload bytes written.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Publishes one stream to a MoQ relay until stopped or the stream closes. The broadcast
/// carries the hang catalog and one H.264 track ([`VIDEO_TRACK`], avc3: Annex B with SPS/PPS
/// in band), one MoQ group per IDR. The relay session reconnects on its own (1 s backoff,
/// doubling to [`MoqOptions::backoff_max`], without end); frames encoded while the relay is
/// away are not queued for it, and local viewers never wait for it.
#[derive(Debug)]
pub struct MoqPublisher {
    target: MoqTarget,
    state: StateWatch,
    stats: Arc<MoqStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MoqPublisher {
    /// Tap `display` and start publishing to `target`. Returns once the broadcast exists
    /// locally; the relay is dialled in the background (see [`Self::state`]).
    pub async fn start(
        display: &Display,
        target: MoqTarget,
        opts: MoqOptions,
    ) -> Result<MoqPublisher, MoqError> {
        let client = client(&target, &opts).await?;
        let origin = moq_tokio::origin::spawn();
        let broadcast_err = |e: &dyn std::fmt::Display| MoqError::Broadcast {
            name: target.broadcast.clone(),
            message: e.to_string(),
        };
        let mut broadcast = origin
            .create_broadcast(target.broadcast.as_str())
            .map_err(|e| broadcast_err(&e))?;
        let catalog =
            moq_mux::catalog::Producer::new(&mut broadcast, moq_mux::catalog::Config::default())
                .map_err(|e| broadcast_err(&e))?;
        let request = broadcast
            .reserve_track(VIDEO_TRACK)
            .map_err(|e| broadcast_err(&e))?;
        // avc3: the codec configuration comes from the first IDR's SPS (framecast puts it in
        // band on every IDR), so nothing is needed up front.
        let track = Track::video(
            request,
            catalog.reserve(),
            VideoInit::new(VideoFormat::Avc3, bytes::Bytes::new()),
        )
        .map_err(|e| broadcast_err(&e))?;
        broadcast
            .announce(Default::default())
            .map_err(|e| broadcast_err(&e))?;
        let tap = display.tap(opts.tap.clone()).await?;
        let connection = client
            .with_publisher(&origin)
            .connect(target.connect.clone());
        let (reporter, state) = StateReporter::new(format!("MoQ relay {target}"));
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(MoqStats::default());
        let run = Run {
            target: target.clone(),
            tap,
            track,
            connection,
            state: reporter,
            stats: stats.clone(),
            _keep: (origin, broadcast, catalog),
        };
        let task = tokio::spawn(run.run(stop_rx));
        Ok(MoqPublisher {
            target,
            state,
            stats,
            stop,
            task,
        })
    }

    /// Where it publishes.
    pub fn target(&self) -> &MoqTarget {
        &self.target
    }

    /// The relay session's state (now, its changes, waiting for one).
    pub fn state(&self) -> &StateWatch {
        &self.state
    }

    /// Counters.
    pub fn stats(&self) -> &MoqStats {
        &self.stats
    }

    /// End the broadcast (subscribers see it retracted) and leave the stream.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The MoQ client for `target`: the relay's certificate by fingerprint, or the system roots.
async fn client(target: &MoqTarget, opts: &MoqOptions) -> Result<moq_tokio::Client, MoqError> {
    let mut config = moq_tokio::connect::Config::default();
    if opts.insecure {
        // Every certificate is accepted: pinned fingerprints would mean nothing.
        config.tls.insecure = Some(true);
    } else {
        config.tls.fingerprint = opts.fingerprints.clone();
    }
    // Reconnect without end: a relay restarted an hour later gets the broadcast back.
    config.backoff.timeout = Duration::ZERO;
    config.backoff.max = opts.backoff_max;
    // Dial from the relay's address family (a dual-stack socket is not always there).
    let host = target.connect.host_str().unwrap_or_default();
    let port = target.connect.port_or_known_default().unwrap_or(443);
    // Resolved on the runtime's blocking pool, not on an async worker.
    let v4 = tokio::net::lookup_host((host, port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| a.is_ipv4());
    config.bind = Some(if v4 {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    });
    config
        .init(Default::default())
        .map_err(|e| MoqError::Client(e.to_string()))
}

/// The publishing task.
struct Run {
    target: MoqTarget,
    tap: PacketTap,
    track: Track,
    connection: moq_tokio::Connection,
    state: StateReporter,
    stats: Arc<MoqStats>,
    /// The origin, broadcast and catalog live as long as the task.
    _keep: (
        moq_net::origin::Producer,
        moq_net::broadcast::Producer,
        moq_mux::catalog::Producer,
    ),
}

impl Run {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                frame = self.tap.recv() => match frame {
                    Some(f) => self.write(f),
                    None => break,
                },
                status = self.connection.status() => match status {
                    Ok(s) => self.state.report(match s {
                        moq_tokio::Status::Connected => PublishState::Connected,
                        moq_tokio::Status::Migrating => PublishState::Migrating,
                        _ => PublishState::Disconnected,
                    }),
                    Err(e) => {
                        tracing::warn!(target = %self.target, error = %e, "MoQ connection loop ended");
                        break;
                    }
                },
                _ = stop.changed() => break,
            }
        }
        if let Err(e) = self.track.finish() {
            tracing::debug!(error = %e, "finishing the MoQ track");
        }
        self.connection.abort(moq_net::Error::Cancel);
        self.state.report(PublishState::Stopped);
    }

    fn write(&mut self, f: TappedFrame) {
        let Ok(pts) = moq_net::Timestamp::from_micros(f.timestamp_us) else {
            return;
        };
        let len = f.data.len() as u64;
        match self.track.decode(f.data, Some(pts)) {
            Ok(()) => {
                self.stats.frames.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(len, Ordering::Relaxed);
                if f.keyframe {
                    self.stats.keyframes.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                // A frame the importer refuses (none should be): ask for a fresh IDR so the
                // broadcast goes on from a clean group.
                tracing::warn!(target = %self.target, error = %e, "MoQ import refused an access unit");
                self.tap.request_keyframe("MoQ import error");
            }
        }
    }
}
