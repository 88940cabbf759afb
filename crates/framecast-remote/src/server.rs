//! The VTR1 server: a thin tokio shell around [`Vtr1ServerSession`] (the protocol) and
//! [`MediaSession`] (the codecs).
//!
//! One task per connection reads whole messages into the session and sleeps until the
//! session's deadline (which covers a whole message, so a client that trickles bytes is cut
//! off); one writer task per connection writes each message under a write deadline; the
//! media work (decompression, conversion, encoding, decoding) runs on a dedicated thread per
//! session, never on the async runtime. A session that fails sends ERROR and closes; it never
//! affects another session.

use crate::error::{ConfigureError, RemoteError, SessionFailure, WireError};
use crate::media::MediaSession;
use crate::server_session::{ReadFailure, ServerOutput, ServerSessionConfig, Vtr1ServerSession};
use crate::settings::{ServerCaps, SessionSettings};
use crate::timing::TimingStats;
use crate::wire::{error_code, ErrorMsg, Limits, Message, Vtr1Codec, DEFAULT_MAX_MESSAGE_BYTES};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, info, warn};

/// Server settings (the `framecast remote serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:5555`).
    pub listen: SocketAddr,
    /// Shared secret clients must send in HELLO (`None`: no authentication).
    pub token: Option<String>,
    /// Concurrent sessions; more get HELLO_ACK status 1 (busy).
    pub max_sessions: usize,
    /// Deadline for each of HELLO and CONFIGURE.
    pub handshake_timeout: Duration,
    /// Deadline for each message after the handshake.
    pub idle_timeout: Duration,
    /// Deadline for writing each message.
    pub write_timeout: Duration,
    /// Size cap for messages other than HELLO (64 KiB) and CONFIGURE (4 MiB).
    pub max_message_bytes: u32,
    /// Encoder backend (`None`: the first available).
    pub backend: Option<String>,
    /// Name sent in HELLO_ACK.
    pub server_name: String,
    /// Version sent in HELLO_ACK.
    pub server_version: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5555)),
            token: None,
            max_sessions: 4,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            backend: None,
            server_name: "framecast".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is out of range or names something this machine lacks.
    #[error("{0}")]
    Config(String),
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

struct Shared {
    session: Arc<ServerSessionConfig>,
    write_timeout: Duration,
    slots: Arc<Semaphore>,
    max_sessions: usize,
    next_id: AtomicU64,
}

/// A bound server; [`Server::run`] serves until the task is dropped.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.session)
            .finish()
    }
}

impl Server {
    /// Probe the machine's capabilities and bind the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        if config.max_sessions == 0 || config.max_sessions > u16::MAX as usize {
            return Err(ServerError::Config(format!(
                "max-sessions {} must be between 1 and 65535",
                config.max_sessions
            )));
        }
        let caps = ServerCaps::probe(config.backend.as_deref());
        if config.backend.is_some() && caps.backend.is_none() {
            return Err(ServerError::Config(format!(
                "encoder backend {:?} is not available here (see `framecast doctor`)",
                config.backend.as_deref().unwrap_or("")
            )));
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                slots: Arc::new(Semaphore::new(config.max_sessions)),
                max_sessions: config.max_sessions,
                write_timeout: config.write_timeout,
                next_id: AtomicU64::new(1),
                session: Arc::new(ServerSessionConfig {
                    token: config.token,
                    caps,
                    handshake_timeout: config.handshake_timeout,
                    idle_timeout: config.idle_timeout,
                    max_message_bytes: config.max_message_bytes,
                    server_name: config.server_name,
                    server_version: config.server_version,
                    max_sessions: config.max_sessions as u16,
                }),
            }),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// What HELLO_ACK advertises.
    pub fn capabilities(&self) -> &ServerCaps {
        &self.shared.session.caps
    }

    /// Accept and serve connections forever (each on its own task).
    pub async fn run(self) -> Result<(), RemoteError> {
        info!(
            addr = %self.local_addr(),
            caps = ?self.shared.session.caps.capabilities,
            max_sessions = self.shared.max_sessions,
            "VTR1 server listening"
        );
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let shared = self.shared.clone();
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                connection(shared, stream, peer, id).await;
            });
        }
    }
}

/// What goes to the writer task.
struct Outgoing {
    bytes: Vec<u8>,
    /// Close the connection after this message.
    close: bool,
}

/// The bytes of a message this server sends. A message that cannot be encoded (a string or
/// a count over its wire field) becomes an ERROR 5 that says so, and ends the session: the
/// peer never gets a silent empty message.
fn wire_bytes(m: &Message) -> (Vec<u8>, bool) {
    match m.encode() {
        Ok(b) => (b, false),
        Err(e) => {
            warn!(kind = %m.kind(), error = %e, "cannot encode a message for the client");
            (internal_error(&e), true)
        }
    }
}

fn internal_error(e: &WireError) -> Vec<u8> {
    let mut message = format!("internal: cannot send a message: {e}");
    message.truncate(1024);
    Message::Error(ErrorMsg {
        code: error_code::INTERNAL,
        message,
    })
    .encode()
    .expect("a short ERROR always encodes")
}

struct Reader {
    rd: OwnedReadHalf,
    codec: Vtr1Codec,
    bytes_in: u64,
}

impl Reader {
    /// The next whole message. Cancel-safe: partial input stays in the codec's buffer.
    async fn message(&mut self) -> Result<Message, ReadFailure> {
        loop {
            match self.codec.poll() {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(ReadFailure::Wire(e)),
            }
            match self.rd.read_buf(self.codec.buffer_mut()).await {
                Ok(0) => {
                    return Err(ReadFailure::Closed {
                        mid_message: self.codec.mid_message(),
                    })
                }
                Ok(n) => self.bytes_in += n as u64,
                Err(e) => return Err(ReadFailure::Io(e.to_string())),
            }
        }
    }

    /// After the write side is shut: read and discard what the peer still sends, so closing
    /// does not reset the connection before it has read our last message.
    async fn linger(&mut self, max: Duration) {
        let mut sink = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(max, async {
            loop {
                match self.rd.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

async fn writer_task(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    write_timeout: Duration,
    bytes_out: Arc<AtomicU64>,
) {
    while let Some(out) = rx.recv().await {
        match tokio::time::timeout(write_timeout, wr.write_all(&out.bytes)).await {
            Ok(Ok(())) => {
                bytes_out.fetch_add(out.bytes.len() as u64, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                debug!("write failed: {e}");
                break;
            }
            Err(_) => {
                warn!("write deadline of {write_timeout:?} passed; closing the session");
                break;
            }
        }
        if out.close {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}

async fn busy(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) {
    info!(%peer, "session limit reached: BUSY");
    let (bytes, _) = wire_bytes(&shared.session.busy_ack());
    let _ = tokio::time::timeout(shared.write_timeout, stream.write_all(&bytes)).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// How the media thread ended.
enum MediaEnd {
    /// DONE was sent after FLUSH.
    Done,
    /// ERROR was sent.
    Failed(SessionFailure),
    /// Its input or the writer went away.
    Stopped,
}

struct MediaReport {
    end: MediaEnd,
    inputs: u64,
    outputs: u64,
    dropped: u64,
    timing: TimingStats,
}

enum Work {
    Media(Message),
    Flush,
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, id: u64) {
    let _ = stream.set_nodelay(true);
    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
        busy(&shared, stream, peer).await;
        return;
    };
    let started = Instant::now();
    let active = (shared.max_sessions - shared.slots.available_permits()) as u16;
    let mut session = Vtr1ServerSession::new(shared.session.clone(), Duration::ZERO, active);
    let (rd, wr) = stream.into_split();
    let mut reader = Reader {
        rd,
        codec: Vtr1Codec::new(Limits::server(shared.session.max_message_bytes)),
        bytes_in: 0,
    };
    let bytes_out = Arc::new(AtomicU64::new(0));
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(64);
    let writer = tokio::spawn(writer_task(
        wr,
        out_rx,
        shared.write_timeout,
        bytes_out.clone(),
    ));
    let mut media: Option<(mpsc::Sender<Work>, oneshot::Receiver<MediaReport>)> = None;
    let mut report: Option<MediaReport> = None;
    let now = || started.elapsed();
    'session: loop {
        while let Some(output) = session.poll_output() {
            match output {
                ServerOutput::Send(m) => {
                    let (bytes, failed) = wire_bytes(&m);
                    let close = failed;
                    if out_tx.send(Outgoing { bytes, close }).await.is_err() || failed {
                        break 'session; // the writer is gone, or an ERROR 5 ended the session
                    }
                }
                ServerOutput::StartMedia(settings) => {
                    match start_media(*settings, &shared, out_tx.clone(), id) {
                        Ok(m) => media = Some(m),
                        Err(e) => {
                            let failure = SessionFailure::Configure(ConfigureError::Codec(
                                format!("cannot start the session thread: {e}"),
                            ));
                            let (bytes, _) = wire_bytes(&Message::Error(ErrorMsg {
                                code: failure.code(),
                                message: failure.to_string(),
                            }));
                            let _ = out_tx.send(Outgoing { bytes, close: true }).await;
                            session.handle_media_failure(&failure);
                        }
                    }
                }
                // If the media thread has ended, its report (below) says why.
                ServerOutput::Media(m) => {
                    if let Some((work, _)) = &media {
                        let _ = work.send(Work::Media(m)).await;
                    }
                }
                ServerOutput::FlushMedia => {
                    if let Some((work, _)) = &media {
                        let _ = work.send(Work::Flush).await;
                    }
                }
                ServerOutput::Close => break 'session,
            }
        }
        let deadline = session
            .poll_timeout()
            .map(|t| tokio::time::Instant::from_std(started + t));
        let media_end = async {
            match &mut media {
                Some((_, end)) => end.await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = reader.message() => match r {
                Ok(m) => session.handle_message(m, now()),
                Err(f) => session.handle_read_failure(f),
            },
            _ = sleep_until(deadline) => session.handle_timeout(now(), reader.codec.mid_message()),
            r = media_end => {
                media = None;
                match r {
                    Some(r) => {
                        match &r.end {
                            MediaEnd::Done => session.handle_media_done(),
                            MediaEnd::Failed(f) => session.handle_media_failure(f),
                            MediaEnd::Stopped => session.handle_read_failure(ReadFailure::Io("the connection's writer stopped".into())),
                        }
                        report = Some(r);
                    }
                    None => session.handle_read_failure(ReadFailure::Io("the session thread ended".into())),
                }
            }
        }
    }
    // Close the media thread's input: it flushes nothing more and reports.
    if let Some((work, end)) = media.take() {
        drop(work);
        report = end.await.ok().or(report);
    }
    drop(out_tx);
    let _ = writer.await;
    reader.linger(Duration::from_millis(500)).await;
    drop(permit);
    summary(
        id,
        peer,
        &session,
        report.as_ref(),
        reader.bytes_in,
        bytes_out.load(Ordering::Relaxed),
        started.elapsed(),
    );
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn summary(
    id: u64,
    peer: SocketAddr,
    session: &Vtr1ServerSession,
    media: Option<&MediaReport>,
    bytes_in: u64,
    bytes_out: u64,
    elapsed: Duration,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let (frames, outputs, dropped, avg, max) = media.map_or((0, 0, 0, 0.0, 0.0), |r| {
        (
            r.inputs,
            r.outputs,
            r.dropped,
            r.timing.mean(),
            r.timing.max(),
        )
    });
    info!(
        "SUMMARY session={id} peer={peer} mode={} frames={frames} outputs={outputs} dropped={dropped} \
         bytes_in={bytes_in} bytes_out={bytes_out} seconds={secs:.3} in_mbps={:.2} out_mbps={:.2} \
         avg_encode_ms={avg:.2} max_encode_ms={max:.2} end={}",
        session.mode().map_or("-", |m| m.name()),
        bytes_in as f64 * 8.0 / secs / 1e6,
        bytes_out as f64 * 8.0 / secs / 1e6,
        session.end_reason().unwrap_or("-")
    );
}

/// Start the media thread for `settings`. It answers CONFIGURE_ACK (or ERROR 1), then
/// processes FRAME/PACKET messages in order, and reports how it ended.
#[allow(clippy::type_complexity)]
fn start_media(
    settings: SessionSettings,
    shared: &Shared,
    out: mpsc::Sender<Outgoing>,
    id: u64,
) -> std::io::Result<(mpsc::Sender<Work>, oneshot::Receiver<MediaReport>)> {
    let (work_tx, work_rx) = mpsc::channel::<Work>(4);
    let (report_tx, report_rx) = oneshot::channel();
    let max_bytes = shared.session.max_message_bytes;
    std::thread::Builder::new()
        .name(format!("vtr1-session-{id}"))
        .spawn(move || {
            let report = media_worker(settings, max_bytes, work_rx, out);
            let _ = report_tx.send(report);
        })?;
    Ok((work_tx, report_rx))
}

fn media_worker(
    settings: SessionSettings,
    max_message_bytes: u32,
    mut work: mpsc::Receiver<Work>,
    out: mpsc::Sender<Outgoing>,
) -> MediaReport {
    // false: the writer is gone, or the message ended the session (an encoding failure).
    let send = |m: &Message, close: bool| {
        let (bytes, failed) = wire_bytes(m);
        out.blocking_send(Outgoing {
            bytes,
            close: close || failed,
        })
        .is_ok()
            && !failed
    };
    let fail = |f: SessionFailure| {
        info!("session failed: error {}: {f}", f.code());
        let _ = send(
            &Message::Error(ErrorMsg {
                code: f.code(),
                message: f.to_string(),
            }),
            true,
        );
        MediaEnd::Failed(f)
    };
    let (mut session, ack) = match MediaSession::new(&settings, max_message_bytes) {
        Ok(x) => x,
        Err(f) => {
            return MediaReport {
                end: fail(f),
                inputs: 0,
                outputs: 0,
                dropped: 0,
                timing: TimingStats::default(),
            }
        }
    };
    let mut end = MediaEnd::Stopped;
    if send(&Message::ConfigureAck(ack), false) {
        let mut buf = Vec::new();
        end = loop {
            buf.clear();
            let item = match work.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Disconnected) => break MediaEnd::Stopped,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing queued: hand out what the encoder finishes meanwhile.
                    match session.wait_output(&mut buf) {
                        Ok(true) => {
                            if !buf.iter().all(|m| send(m, false)) {
                                break MediaEnd::Stopped;
                            }
                            continue;
                        }
                        Ok(false) => {}
                        Err(f) => break fail(f),
                    }
                    match work.blocking_recv() {
                        Some(item) => item,
                        None => break MediaEnd::Stopped,
                    }
                }
            };
            buf.clear();
            let (result, last) = match item {
                Work::Media(m) => (session.handle(m, &mut buf), false),
                Work::Flush => (session.flush(&mut buf), true),
            };
            if !buf.iter().all(|m| send(m, false)) {
                break MediaEnd::Stopped;
            }
            if let Err(f) = result {
                break fail(f);
            }
            if last {
                let _ = send(&Message::Done, true);
                break MediaEnd::Done;
            }
        };
    }
    let s = session.stats().clone();
    MediaReport {
        end,
        inputs: s.inputs,
        outputs: s.outputs,
        dropped: s.dropped,
        timing: session.encode_timing().cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Limits, Vtr1Codec};

    #[test]
    fn a_message_that_cannot_be_encoded_becomes_error_5_not_empty_bytes() {
        let too_long = Message::Error(ErrorMsg {
            code: 2,
            message: "x".repeat(70_000),
        });
        let (bytes, ends_session) = wire_bytes(&too_long);
        assert!(ends_session);
        let mut codec = Vtr1Codec::new(Limits::client(1 << 20));
        codec.feed(&bytes);
        match codec.poll().unwrap() {
            Some(Message::Error(e)) => {
                assert_eq!(e.code, error_code::INTERNAL);
                assert!(e.message.contains("cannot send a message"), "{}", e.message);
                assert!(e.message.contains("65535"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        let (ok, ends) = wire_bytes(&Message::Pong);
        assert!(!ends && !ok.is_empty());
    }
}
